//! What the tables hold, as Rust types, and the rows that carry them. Rows are read and written
//! by column name (the driver's `DeserializeRow` / `SerializeRow`): a column is named by its
//! field here and in the column list beside it, nowhere else.

use scylla::value::CqlTimestamp;
use scylla::{DeserializeRow, SerializeRow};

use hls_dvr_core::model::{Container, IndexEntry, Rendition, SourcePos};

use crate::error::StoreError;
use crate::schema::MAX_CHUNK;

/// Which blob table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Segment,
    Init,
}

impl BlobKind {
    pub(crate) fn table(self) -> &'static str {
        match self {
            BlobKind::Segment => "segment_chunks",
            BlobKind::Init => "init_chunks",
        }
    }
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What chunk 0 of a blob says about the whole blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub chunks: u32,
    pub chunk_size: u32,
}

impl BlobMeta {
    pub fn for_size(size: usize, chunk_size: usize) -> BlobMeta {
        let chunk_size = chunk_size.clamp(1, MAX_CHUNK);
        BlobMeta { size: size as u64, chunks: size.div_ceil(chunk_size).max(1) as u32, chunk_size: chunk_size as u32 }
    }

    /// Bytes that chunk `i` must hold.
    pub fn chunk_len(&self, i: u32) -> u64 {
        if i + 1 < self.chunks {
            self.chunk_size as u64
        } else {
            self.size - (self.chunks as u64 - 1) * self.chunk_size as u64
        }
    }

    /// Checks the metadata is self-consistent: corrupt rows must not make us loop or overflow.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunks == 0 || self.chunk_size == 0 || self.chunk_size as usize > MAX_CHUNK {
            return Err(format!("bad blob metadata {self:?}"));
        }
        let max = self.chunks as u64 * self.chunk_size as u64;
        let min = (self.chunks as u64 - 1) * self.chunk_size as u64;
        if self.size > max || (self.size <= min && self.chunks > 1) {
            return Err(format!("blob size {} does not fit {} chunks of {}", self.size, self.chunks, self.chunk_size));
        }
        Ok(())
    }

    /// Chunks covering bytes `start..=end` of the blob.
    pub fn chunks_for(&self, start: u64, end: u64) -> std::ops::RangeInclusive<u32> {
        let cs = self.chunk_size as u64;
        ((start / cs) as u32)..=((end / cs) as u32)
    }

    /// Checks that chunk `i` of this blob holds exactly the bytes it must.
    pub fn check_chunk(&self, i: u32, data: &[u8]) -> Result<(), StoreError> {
        if i >= self.chunks {
            return Err(StoreError::Corrupt(format!("chunk {i} beyond {} chunks", self.chunks)));
        }
        let want = self.chunk_len(i);
        if data.len() as u64 != want {
            return Err(StoreError::Corrupt(format!("chunk {i} holds {} bytes, expected {want}", data.len())));
        }
        Ok(())
    }
}

/// A row of `streams` without its partition key. Every column but the key may be null: the
/// uploader writes them all, but a row edited by hand must not crash a reader.
#[derive(Debug, DeserializeRow, SerializeRow)]
pub(crate) struct RenditionRow {
    rendition: String,
    container: Option<String>,
    target_duration: Option<i32>,
    bandwidth: Option<i64>,
    codecs: Option<String>,
    resolution: Option<String>,
    frame_rate: Option<f64>,
    head_msn: Option<i64>,
    head_disc_seq: Option<i64>,
    head_pdt: Option<CqlTimestamp>,
    src_uri: Option<String>,
    src_msn: Option<i64>,
    src_size: Option<i64>,
    src_mtime: Option<i64>,
    updated: Option<CqlTimestamp>,
    ended: Option<bool>,
}

impl RenditionRow {
    pub(crate) const COLUMNS: &'static str = "rendition, container, target_duration, bandwidth, codecs, resolution, \
         frame_rate, head_msn, head_disc_seq, head_pdt, src_uri, src_msn, src_size, src_mtime, updated, ended";

    pub(crate) fn from_rendition(r: &Rendition) -> RenditionRow {
        RenditionRow {
            rendition: r.name.clone(),
            container: Some(r.container.as_str().to_string()),
            target_duration: Some(r.target_duration),
            bandwidth: r.bandwidth,
            codecs: r.codecs.clone(),
            resolution: r.resolution.clone(),
            frame_rate: r.frame_rate,
            head_msn: Some(r.head_msn),
            head_disc_seq: Some(r.head_disc_seq),
            head_pdt: Some(CqlTimestamp(r.head_pdt_ms)),
            src_uri: Some(r.source.uri.clone()),
            src_msn: Some(r.source.seg_msn),
            src_size: Some(r.source.size),
            src_mtime: Some(r.source.mtime_ns),
            updated: Some(CqlTimestamp(r.updated_ms)),
            ended: Some(r.ended),
        }
    }

    pub(crate) fn into_rendition(self) -> Result<Rendition, StoreError> {
        let container = self.container.as_deref().and_then(Container::parse).ok_or_else(|| {
            StoreError::Corrupt(format!("rendition {:?} has bad container {:?}", self.rendition, self.container))
        })?;
        Ok(Rendition {
            name: self.rendition,
            container,
            target_duration: self.target_duration.unwrap_or(0),
            bandwidth: self.bandwidth,
            codecs: self.codecs,
            resolution: self.resolution,
            frame_rate: self.frame_rate,
            head_msn: self.head_msn.unwrap_or(-1),
            head_disc_seq: self.head_disc_seq.unwrap_or(0),
            head_pdt_ms: self.head_pdt.map_or(0, |t| t.0),
            source: SourcePos {
                uri: self.src_uri.unwrap_or_default(),
                seg_msn: self.src_msn.unwrap_or(-1),
                size: self.src_size.unwrap_or(0),
                mtime_ns: self.src_mtime.unwrap_or(0),
            },
            updated_ms: self.updated.map_or(0, |t| t.0),
            ended: self.ended.unwrap_or(false),
        })
    }
}

/// A `streams` row as written: the partition key and the head.
#[derive(SerializeRow)]
pub(crate) struct RenditionWrite<'a> {
    pub stream: &'a str,
    #[scylla(flatten)]
    pub row: RenditionRow,
}

/// A row of `segment_index` without its partition key.
#[derive(Debug, DeserializeRow, SerializeRow)]
pub(crate) struct IndexRow {
    msn: i64,
    duration_us: i64,
    pdt: CqlTimestamp,
    discontinuity: bool,
    disc_seq: i64,
    init_msn: Option<i64>,
    size: i64,
    added: CqlTimestamp,
}

impl IndexRow {
    pub(crate) const COLUMNS: &'static str = "msn, duration_us, pdt, discontinuity, disc_seq, init_msn, size, added";

    pub(crate) fn from_entry(e: &IndexEntry) -> IndexRow {
        IndexRow {
            msn: e.msn,
            duration_us: e.duration_us,
            pdt: CqlTimestamp(e.pdt_ms),
            discontinuity: e.discontinuity,
            disc_seq: e.disc_seq,
            init_msn: e.init_msn,
            size: e.size,
            added: CqlTimestamp(e.added_ms),
        }
    }

    pub(crate) fn into_entry(self) -> IndexEntry {
        IndexEntry {
            msn: self.msn,
            duration_us: self.duration_us,
            pdt_ms: self.pdt.0,
            discontinuity: self.discontinuity,
            disc_seq: self.disc_seq,
            init_msn: self.init_msn,
            size: self.size,
            added_ms: self.added.0,
        }
    }
}

/// A `segment_index` row as written: the partition key and the entry.
#[derive(SerializeRow)]
pub(crate) struct IndexWrite<'a> {
    pub stream: &'a str,
    pub rendition: &'a str,
    pub bucket: i64,
    #[scylla(flatten)]
    pub row: IndexRow,
}

/// A row of a chunk table without its key. Nullable: a half-written or hand-edited row is
/// reported as corrupt, not taken for a whole one.
#[derive(Debug, DeserializeRow)]
pub(crate) struct ChunkRow {
    size: Option<i64>,
    chunks: Option<i32>,
    chunk_size: Option<i32>,
    data: Option<Vec<u8>>,
}

impl ChunkRow {
    pub(crate) const COLUMNS: &'static str = "size, chunks, chunk_size, data";

    /// The blob's metadata and this chunk's bytes, when every column is there and sane.
    pub(crate) fn into_parts(self) -> Result<(BlobMeta, Vec<u8>), String> {
        match self {
            ChunkRow { size: Some(size), chunks: Some(chunks), chunk_size: Some(cs), data: Some(data) }
                if size >= 0 && chunks > 0 && cs > 0 =>
            {
                Ok((BlobMeta { size: size as u64, chunks: chunks as u32, chunk_size: cs as u32 }, data))
            }
            other => Err(format!(
                "incomplete columns: size={:?} chunks={:?} chunk_size={:?} data={}",
                other.size,
                other.chunks,
                other.chunk_size,
                other.data.as_ref().map_or("null".to_string(), |d| format!("{} bytes", d.len()))
            )),
        }
    }
}

/// A chunk row as written.
#[derive(SerializeRow)]
pub(crate) struct ChunkWrite<'a> {
    pub stream: &'a str,
    pub rendition: &'a str,
    pub msn: i64,
    pub chunk: i32,
    pub size: i64,
    pub chunks: i32,
    pub chunk_size: i32,
    pub data: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_meta_chunking() {
        let m = BlobMeta::for_size(2_500_000, MAX_CHUNK);
        assert_eq!(m.chunks, 3);
        assert_eq!(m.chunk_len(0), MAX_CHUNK as u64);
        assert_eq!(m.chunk_len(2), 2_500_000 - 2 * MAX_CHUNK as u64);
        assert!(m.validate().is_ok());
        assert_eq!(m.chunks_for(0, 0), 0..=0);
        assert_eq!(m.chunks_for(MAX_CHUNK as u64 - 1, MAX_CHUNK as u64), 0..=1);
        // Empty blobs still have one (empty) chunk so chunk 0 carries the metadata.
        let e = BlobMeta::for_size(0, MAX_CHUNK);
        assert_eq!((e.chunks, e.chunk_len(0)), (1, 0));
        assert!(e.validate().is_ok());
        // Exactly one chunk's worth.
        let x = BlobMeta::for_size(MAX_CHUNK, MAX_CHUNK);
        assert_eq!((x.chunks, x.chunk_len(0)), (1, MAX_CHUNK as u64));
    }

    #[test]
    fn blob_meta_rejects_inconsistent_rows() {
        assert!(BlobMeta { size: 10, chunks: 0, chunk_size: 4 }.validate().is_err());
        assert!(BlobMeta { size: 13, chunks: 3, chunk_size: 4 }.validate().is_err());
        assert!(BlobMeta { size: 8, chunks: 3, chunk_size: 4 }.validate().is_err());
        assert!(BlobMeta { size: 9, chunks: 3, chunk_size: 4 }.validate().is_ok());
        assert!(BlobMeta { size: 9, chunks: 1, chunk_size: (MAX_CHUNK + 1) as u32 }.validate().is_err());
        let m = BlobMeta { size: 9, chunks: 3, chunk_size: 4 };
        assert!(m.check_chunk(2, b"x").is_ok());
        assert!(m.check_chunk(1, b"xyz").is_err());
        assert!(m.check_chunk(3, b"").is_err());
    }

    #[test]
    fn chunk_rows_with_missing_columns_are_refused() {
        let whole = ChunkRow { size: Some(3), chunks: Some(1), chunk_size: Some(4), data: Some(vec![1, 2, 3]) };
        assert_eq!(whole.into_parts().unwrap().0, BlobMeta { size: 3, chunks: 1, chunk_size: 4 });
        let no_data = ChunkRow { size: Some(3), chunks: Some(1), chunk_size: Some(4), data: None };
        assert!(no_data.into_parts().unwrap_err().contains("data=null"));
        let negative = ChunkRow { size: Some(-1), chunks: Some(1), chunk_size: Some(4), data: Some(vec![]) };
        assert!(negative.into_parts().is_err());
    }

    #[test]
    fn head_rows_round_trip_and_bad_containers_are_corrupt() {
        let r = Rendition {
            name: "hi".into(),
            container: Container::Fmp4,
            target_duration: 2,
            bandwidth: Some(1),
            codecs: None,
            resolution: Some("1x1".into()),
            frame_rate: Some(25.0),
            head_msn: 7,
            head_disc_seq: 1,
            head_pdt_ms: 5,
            source: SourcePos { uri: "a.m4s".into(), seg_msn: 3, size: 4, mtime_ns: 6 },
            updated_ms: 8,
            ended: true,
        };
        assert_eq!(RenditionRow::from_rendition(&r).into_rendition().unwrap(), r);
        let mut bad = RenditionRow::from_rendition(&r);
        bad.container = Some("mkv".into());
        assert!(matches!(bad.into_rendition(), Err(StoreError::Corrupt(_))));
    }
}
