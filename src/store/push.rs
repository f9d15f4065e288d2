//! What pushed ingest writes besides today's rows (ARCHITECTURE.md, "Push ingest" and "Two
//! receivers"): segments stored fragment by fragment as they arrive, the claim that gives a
//! pushed segment its sequence number once whichever receiver holds a copy first, and a head
//! that only ever moves forward.

use scylla::value::{CqlValue, Row};

use hls_dvr_core::model::{Claim, Part, PartPos, Rendition};

use crate::error::StoreError;
use crate::latency::Op;
use crate::rows::{
    ArrivingChunkWrite, BlobMeta, ClaimRow, ClaimWrite, PartRow, PartWrite, RenditionRow, RenditionWrite, SealWrite,
};
use crate::Store;

/// How a claim went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The number is ours: our values are the segment's.
    Won,
    /// Another claim holds the number (another receiver's, or another segment's).
    Held(Claim),
}

/// Whether a lightweight transaction was applied: its first column, `[applied]`.
fn applied(row: Option<Row>) -> Result<bool, StoreError> {
    match row.and_then(|r| r.columns.into_iter().next()) {
        Some(Some(CqlValue::Boolean(b))) => Ok(b),
        other => Err(StoreError::Corrupt(format!("a conditional write answered {other:?}, not [applied]"))),
    }
}

impl Store {
    /// Chunk `chunk` of a segment stored as it arrives: bytes alone. The segment counts as not
    /// there until [`Store::seal_segment`] gives its chunk 0 the metadata.
    pub async fn write_arriving_chunk(
        &self,
        stream: &str,
        rendition: &str,
        msn: i64,
        chunk: u32,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let row = ArrivingChunkWrite { stream, rendition, msn, chunk: chunk as i32, data };
        self.write(Op::WriteChunk, "writing a fragment", &self.st.insert_arriving, row).await
    }

    /// Makes a segment stored by [`Store::write_arriving_chunk`] whole: its chunk 0 gets the metadata
    /// (chunks of varying sizes). Only once this returns may an index row name it.
    pub async fn seal_segment(
        &self,
        stream: &str,
        rendition: &str,
        msn: i64,
        meta: &BlobMeta,
    ) -> Result<(), StoreError> {
        let ends = meta.ends.as_deref().ok_or_else(|| StoreError::Invalid("sealing a blob of fixed chunks".into()))?;
        let row = SealWrite {
            size: meta.size as i64,
            chunks: meta.chunks as i32,
            ends: ends.iter().map(|e| *e as i64).collect(),
            stream,
            rendition,
            msn,
        };
        self.write(Op::WriteChunk, "sealing a segment", &self.st.seal_segment, row).await
    }

    /// Chunk `chunk` of a segment as stored so far, whether the segment is whole or still
    /// arriving (its chunks then carry no metadata): None when it is not there.
    pub async fn arriving_chunk(
        &self,
        stream: &str,
        rendition: &str,
        msn: i64,
        chunk: u32,
    ) -> Result<Option<bytes::Bytes>, StoreError> {
        Ok(self.chunk_row(crate::BlobKind::Segment, stream, rendition, msn, chunk).await?.map(|(_, data)| data))
    }

    /// Records a part of a segment whose chunks are stored (ARCHITECTURE.md, "Parts"): only
    /// then may the newest part name it.
    pub async fn write_part(&self, stream: &str, rendition: &str, part: &Part) -> Result<(), StoreError> {
        let row = PartWrite { stream, rendition, msn: part.msn, row: PartRow::from_part(part) };
        self.write(Op::WritePart, "recording a part", &self.st.insert_part, row).await
    }

    /// Moves a rendition's newest part (a plain write: only the receiver holding a segment's
    /// claim writes its parts, in order).
    pub async fn set_part_head(&self, stream: &str, rendition: &str, at: PartPos) -> Result<(), StoreError> {
        let values = (at.msn, at.part, stream, rendition);
        self.write(Op::WritePart, "moving the newest part", &self.st.set_part_head, values).await
    }

    /// The parts of segment `msn` stored so far, in order.
    pub async fn parts(&self, stream: &str, rendition: &str, msn: i64) -> Result<Vec<Part>, StoreError> {
        let st = &self.st.select_parts;
        let rows: Vec<PartRow> =
            self.all_rows(Op::ReadPart, "reading parts", "parts", st, (stream, rendition, msn)).await?;
        rows.into_iter().map(|r| r.into_part(msn)).collect()
    }

    /// One part, when it is stored.
    pub async fn part(&self, stream: &str, rendition: &str, at: PartPos) -> Result<Option<Part>, StoreError> {
        let st = &self.st.select_part;
        let row: Option<PartRow> =
            self.first_row(Op::ReadPart, "reading a part", "parts", st, (stream, rendition, at.msn, at.part)).await?;
        row.map(|r| r.into_part(at.msn)).transpose()
    }

    /// A part's bytes, chunk by chunk, each checked against the part's sizes: a short or missing
    /// chunk is corrupt data (502), never a truncated part.
    pub async fn part_chunks(
        &self,
        stream: &str,
        rendition: &str,
        part: &Part,
    ) -> Result<Vec<bytes::Bytes>, StoreError> {
        let reads = part.sizes.iter().enumerate().map(|(i, size)| async move {
            let chunk = part.first_chunk + i as u32;
            match self.arriving_chunk(stream, rendition, part.msn, chunk).await? {
                Some(data) if data.len() as u64 == *size => Ok(data),
                got => Err(StoreError::Corrupt(format!(
                    "part {}.{} of {stream}/{rendition}: chunk {chunk} holds {:?} bytes, expected {size}",
                    part.msn,
                    part.index,
                    got.map(|d| d.len())
                ))),
            }
        });
        futures::future::try_join_all(reads).await
    }

    /// Claims sequence number `msn` of a rendition for a pushed segment (a lightweight
    /// transaction: of two receivers claiming one number, exactly one wins). A claim that finds
    /// the number held reads the holder's values at SERIAL consistency, so it sees every claim
    /// that won, its own earlier attempt included (a timed-out write may have been applied).
    pub async fn claim(&self, stream: &str, rendition: &str, msn: i64, c: &Claim) -> Result<Claimed, StoreError> {
        let row = ClaimWrite { stream, rendition, msn, row: ClaimRow::from_claim(c) };
        let res: Option<Row> =
            self.first_row(Op::Claim, "claiming a segment", "ingest_claims", &self.st.insert_claim, row).await?;
        if applied(res)? {
            return Ok(Claimed::Won);
        }
        match self.read_claim(stream, rendition, msn).await? {
            Some(held) if held.receiver == c.receiver && held.source == c.source => Ok(Claimed::Won),
            Some(held) => Ok(Claimed::Held(held)),
            None => Err(StoreError::Unavailable(format!("claim {stream}/{rendition}/{msn} refused, then absent"))),
        }
    }

    /// Records which number the claim on `source` won, so a copy arriving later finds it.
    pub async fn record_source(&self, stream: &str, rendition: &str, source: &str, msn: i64) -> Result<(), StoreError> {
        let st = &self.st.insert_source;
        self.write(Op::Claim, "recording a claim's source", st, (stream, rendition, source, msn)).await
    }

    /// The number a segment's claim won, when one did.
    pub async fn source_msn(&self, stream: &str, rendition: &str, source: &str) -> Result<Option<i64>, StoreError> {
        let st = &self.st.select_source;
        let row: Option<(i64,)> = self
            .first_row(Op::Claim, "reading a claim's source", "ingest_sources", st, (stream, rendition, source))
            .await?;
        Ok(row.map(|(m,)| m))
    }

    /// The claim on a sequence number, read at SERIAL consistency.
    pub async fn read_claim(&self, stream: &str, rendition: &str, msn: i64) -> Result<Option<Claim>, StoreError> {
        let st = &self.st.select_claim;
        let row: Option<ClaimRow> =
            self.first_row(Op::Claim, "reading a claim", "ingest_claims", st, (stream, rendition, msn)).await?;
        Ok(row.map(ClaimRow::into_claim))
    }

    /// Writes a rendition's head unless the stored head is already past it (two receivers write
    /// heads in any order; the head never goes backwards). Returns whether it was written.
    pub async fn advance_head(&self, stream: &str, r: &Rendition) -> Result<bool, StoreError> {
        for _ in 0..3 {
            let row = HeadIf { stream, row: RenditionRow::from_rendition(r), at_most: r.head_msn };
            let res: Option<Row> =
                self.first_row(Op::WriteHead, "advancing head", "streams", &self.st.advance_head, row).await?;
            let Some(res) = res else { return Err(StoreError::Corrupt("a conditional write answered nothing".into())) };
            // Not applied: `[applied], head_msn`, with head_msn null when there is no row yet.
            let now = res.columns.get(1).cloned().flatten();
            if applied(Some(res))? {
                return Ok(true);
            }
            if now.is_some() {
                return Ok(false);
            }
            let row = RenditionWrite { stream, row: RenditionRow::from_rendition(r) };
            let res: Option<Row> =
                self.first_row(Op::WriteHead, "creating head", "streams", &self.st.create_head, row).await?;
            if applied(res)? {
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable(format!("head of {stream}/{} kept changing", r.name)))
    }
}

/// The conditional head write's values: the row, its key, and the bound on the stored head.
#[derive(scylla::SerializeRow)]
pub(crate) struct HeadIf<'a> {
    stream: &'a str,
    #[scylla(flatten)]
    row: RenditionRow,
    at_most: i64,
}
