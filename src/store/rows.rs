//! What the tables hold, as Rust types, and the rows that carry them. Rows are read and written
//! by column name (the driver's `DeserializeRow` / `SerializeRow`): a column is named by its
//! field here and in the column list beside it, nowhere else.

use scylla::deserialize::value::DeserializeValue;
use scylla::deserialize::{DeserializationError, FrameSlice, TypeCheckError};
use scylla::frame::response::result::ColumnType;
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::{CellWriter, WrittenCellProof};
use scylla::serialize::SerializationError;
use scylla::value::CqlTimestamp;
use scylla::{DeserializeRow, SerializeRow};

use std::sync::Arc;

use hls_dvr_core::markers::Marker;
use hls_dvr_core::model::{
    ByteRange, Caption, Claim, Container, Grouping, IndexEntry, MediaType, Part, PartHead, PartPos, Rendition,
    SourcePos,
};

use crate::error::StoreError;
use crate::schema::MAX_CHUNK;

/// Which blob table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Segment,
    Init,
    /// A segment's thumbnail (JPEG), for scrubbing.
    Thumbnail,
}

impl BlobKind {
    pub(crate) fn table(self) -> &'static str {
        match self {
            BlobKind::Segment => "segment_chunks",
            BlobKind::Init => "init_chunks",
            BlobKind::Thumbnail => "thumbnail_chunks",
        }
    }
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What chunk 0 of a blob says about the whole blob.
///
/// Two layouts: chunks of one size (`chunk_size`, the last one shorter), as a whole file is cut;
/// or chunks of varying sizes (`chunk_size` 0, `ends` set), as a pushed segment is stored
/// fragment by fragment while it arrives (ARCHITECTURE.md, "Push ingest").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub chunks: u32,
    pub chunk_size: u32,
    /// Where each chunk ends, for varying chunks: strictly increasing, the last one `size`.
    pub ends: Option<Arc<[u64]>>,
}

impl BlobMeta {
    pub fn for_size(size: usize, chunk_size: usize) -> BlobMeta {
        let chunk_size = chunk_size.clamp(1, MAX_CHUNK);
        BlobMeta {
            size: size as u64,
            chunks: size.div_ceil(chunk_size).max(1) as u32,
            chunk_size: chunk_size as u32,
            ends: None,
        }
    }

    /// Chunks of the given sizes, in order.
    pub fn varying(sizes: &[u64]) -> BlobMeta {
        let ends: Arc<[u64]> = sizes.iter().scan(0u64, |at, n| Some(std::mem::replace(at, *at + n) + n)).collect();
        BlobMeta {
            size: ends.last().copied().unwrap_or(0),
            chunks: sizes.len() as u32,
            chunk_size: 0,
            ends: Some(ends),
        }
    }

    /// Where chunk `i` starts in the blob.
    pub fn chunk_start(&self, i: u32) -> u64 {
        match &self.ends {
            Some(ends) if i == 0 => 0,
            Some(ends) => ends.get(i as usize - 1).copied().unwrap_or(self.size),
            None => i as u64 * self.chunk_size as u64,
        }
    }

    /// Bytes that chunk `i` must hold.
    pub fn chunk_len(&self, i: u32) -> u64 {
        match &self.ends {
            Some(ends) => ends.get(i as usize).copied().unwrap_or(self.size).saturating_sub(self.chunk_start(i)),
            None if i + 1 < self.chunks => self.chunk_size as u64,
            None => self.size - (self.chunks as u64 - 1) * self.chunk_size as u64,
        }
    }

    /// Checks the metadata is self-consistent: corrupt rows must not make us loop or overflow.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(ends) = &self.ends {
            let increasing =
                ends.iter().try_fold(0u64, |prev, &e| (e > prev && e - prev <= MAX_CHUNK as u64).then_some(e));
            if self.chunks == 0 || ends.len() != self.chunks as usize || increasing != Some(self.size) {
                return Err(format!("bad varying chunk ends for {} bytes in {} chunks", self.size, self.chunks));
            }
            return Ok(());
        }
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
        match &self.ends {
            // The first chunk ending after the byte.
            Some(ends) => {
                let at = |b: u64| (ends.partition_point(|e| *e <= b) as u32).min(self.chunks.saturating_sub(1));
                at(start)..=at(end)
            }
            None => {
                let cs = self.chunk_size as u64;
                ((start / cs) as u32)..=((end / cs) as u32)
            }
        }
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
    media: Option<String>,
    part_target_us: Option<i64>,
    /// The newest part: written by [`crate::Store::set_part_head`] alone, left alone by head writes.
    part_msn: Unwritten<i64>,
    part_no: Unwritten<i32>,
    // The multivariant playlist's word on it (`Grouping`).
    grp: Option<String>,
    label: Option<String>,
    language: Option<String>,
    is_default: Option<bool>,
    autoselect: Option<bool>,
    characteristics: Option<String>,
    channels: Option<String>,
    audio_group: Option<String>,
    subtitles_group: Option<String>,
    captions: Option<Vec<CaptionValue>>,
    key_frames: Option<bool>,
    thumbnails: Option<String>,
}

/// A caption channel as a `captions` list element: (group, instream_id, label, language,
/// default, autoselect); no language is ''.
type CaptionValue = (String, String, String, String, bool, bool);

impl RenditionRow {
    pub(crate) const COLUMNS: &'static str = "rendition, container, target_duration, bandwidth, codecs, resolution, \
         frame_rate, head_msn, head_disc_seq, head_pdt, src_uri, src_msn, src_size, src_mtime, updated, ended, media, \
         part_target_us, part_msn, part_no, grp, label, language, is_default, autoselect, characteristics, channels, \
         audio_group, subtitles_group, captions, key_frames, thumbnails";

    pub(crate) fn from_rendition(r: &Rendition) -> RenditionRow {
        let g = &r.grouping;
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
            media: Some(r.media.as_str().to_string()),
            part_target_us: r.parts.map(|p| p.target_us),
            part_msn: Unwritten(None),
            part_no: Unwritten(None),
            grp: g.group.clone(),
            label: g.label.clone(),
            language: g.language.clone(),
            is_default: Some(g.default),
            autoselect: Some(g.autoselect),
            characteristics: g.characteristics.clone(),
            channels: g.channels.clone(),
            audio_group: g.audio.clone(),
            subtitles_group: g.subtitles.clone(),
            captions: Some(
                g.captions
                    .iter()
                    .map(|c| {
                        let language = c.language.clone().unwrap_or_default();
                        (c.group.clone(), c.instream_id.clone(), c.label.clone(), language, c.default, c.autoselect)
                    })
                    .collect(),
            ),
            key_frames: Some(r.key_frames),
            thumbnails: r.thumbnails.clone(),
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
            // Rows from before the column: every rendition was muxed then.
            media: self.media.as_deref().and_then(MediaType::parse).unwrap_or(MediaType::Muxed),
            parts: self.part_target_us.filter(|t| *t > 0).map(|target_us| PartHead {
                target_us,
                newest: self.part_msn.0.zip(self.part_no.0).map(|(msn, part)| PartPos { msn, part }),
            }),
            grouping: Grouping {
                group: self.grp,
                label: self.label,
                language: self.language,
                default: self.is_default.unwrap_or(false),
                autoselect: self.autoselect.unwrap_or(false),
                characteristics: self.characteristics,
                channels: self.channels,
                audio: self.audio_group,
                subtitles: self.subtitles_group,
                captions: (self.captions.unwrap_or_default().into_iter())
                    .map(|(group, instream_id, label, language, default, autoselect)| Caption {
                        group,
                        instream_id,
                        label,
                        language: Some(language).filter(|l| !l.is_empty()),
                        default,
                        autoselect,
                    })
                    .collect(),
            },
            key_frames: self.key_frames.unwrap_or(false),
            thumbnails: self.thumbnails,
        })
    }
}

/// A column that row writes leave as it is (bound as unset), read like an `Option`: the newest
/// part changes twice a second and has its own statement, which the head's writes must not undo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unwritten<T>(pub Option<T>);

impl<T> SerializeValue for Unwritten<T> {
    fn serialize<'b>(
        &self,
        _: &ColumnType,
        writer: CellWriter<'b>,
    ) -> Result<WrittenCellProof<'b>, SerializationError> {
        Ok(writer.set_unset())
    }
}

impl<'f, 'm, T: DeserializeValue<'f, 'm>> DeserializeValue<'f, 'm> for Unwritten<T> {
    fn type_check(typ: &ColumnType) -> Result<(), TypeCheckError> {
        Option::<T>::type_check(typ)
    }
    fn deserialize(typ: &'m ColumnType<'m>, v: Option<FrameSlice<'f>>) -> Result<Self, DeserializationError> {
        Option::<T>::deserialize(typ, v).map(Unwritten)
    }
}

/// A row of `parts` without its partition key: one part of a segment, as chunks of its blob.
#[derive(Debug, DeserializeRow, SerializeRow)]
pub(crate) struct PartRow {
    part: i32,
    first_chunk: i32,
    sizes: Vec<i64>,
    duration_us: i64,
    independent: bool,
    discontinuity: bool,
}

impl PartRow {
    pub(crate) const COLUMNS: &'static str = "part, first_chunk, sizes, duration_us, independent, discontinuity";

    pub(crate) fn from_part(p: &Part) -> PartRow {
        PartRow {
            part: p.index,
            first_chunk: p.first_chunk as i32,
            sizes: p.sizes.iter().map(|s| *s as i64).collect(),
            duration_us: p.duration_us,
            independent: p.independent,
            discontinuity: p.discontinuity,
        }
    }

    /// The part, when the row makes sense (a row edited by hand must not crash a reader).
    pub(crate) fn into_part(self, msn: i64) -> Result<Part, StoreError> {
        let sizes: Option<Vec<u64>> =
            self.sizes.iter().map(|s| u64::try_from(*s).ok().filter(|s| *s > 0 && *s <= MAX_CHUNK as u64)).collect();
        match (sizes, u32::try_from(self.first_chunk)) {
            (Some(sizes), Ok(first_chunk)) if !sizes.is_empty() && self.part >= 0 && self.duration_us >= 0 => {
                Ok(Part {
                    msn,
                    index: self.part,
                    duration_us: self.duration_us,
                    independent: self.independent,
                    discontinuity: self.discontinuity,
                    first_chunk,
                    sizes,
                })
            }
            _ => Err(StoreError::Corrupt(format!("part {msn}.{} has a bad row: {self:?}", self.part))),
        }
    }
}

/// A row of `markers` without its partition key.
#[derive(Debug, DeserializeRow, SerializeRow)]
pub(crate) struct MarkerRow {
    start: CqlTimestamp,
    id: String,
    class: Option<String>,
    duration_us: Option<i64>,
    planned_duration_us: Option<i64>,
    scte35_out: Option<String>,
    scte35_in: Option<String>,
    scte35_cmd: Option<String>,
    attributes: Option<Vec<(String, String)>>,
    cue: Option<bool>,
}

impl MarkerRow {
    pub(crate) const COLUMNS: &'static str =
        "start, id, class, duration_us, planned_duration_us, scte35_out, scte35_in, scte35_cmd, attributes, cue";

    pub(crate) fn from_marker(m: &Marker) -> MarkerRow {
        MarkerRow {
            start: CqlTimestamp(m.start_ms),
            id: m.id.clone(),
            class: m.class.clone(),
            duration_us: m.duration_us,
            planned_duration_us: m.planned_duration_us,
            scte35_out: m.scte35_out.clone(),
            scte35_in: m.scte35_in.clone(),
            scte35_cmd: m.scte35_cmd.clone(),
            attributes: Some(m.attributes.clone()),
            cue: Some(m.cue),
        }
    }

    /// The marker, checked as it was when stored: a row edited into something a playlist cannot
    /// carry is corrupt, never written out.
    pub(crate) fn into_marker(self) -> Result<Marker, StoreError> {
        let m = Marker {
            id: self.id,
            class: self.class,
            start_ms: self.start.0,
            duration_us: self.duration_us,
            planned_duration_us: self.planned_duration_us,
            scte35_out: self.scte35_out,
            scte35_in: self.scte35_in,
            scte35_cmd: self.scte35_cmd,
            attributes: self.attributes.unwrap_or_default(),
            cue: self.cue.unwrap_or(false),
        };
        m.check().map_err(|e| StoreError::Corrupt(format!("marker {:?}: {e}", m.id)))?;
        Ok(m)
    }
}

/// A `markers` row as written.
#[derive(SerializeRow)]
pub(crate) struct MarkerWrite<'a> {
    pub stream: &'a str,
    pub day: i64,
    #[scylla(flatten)]
    pub row: MarkerRow,
}

/// A `parts` row as written.
#[derive(SerializeRow)]
pub(crate) struct PartWrite<'a> {
    pub stream: &'a str,
    pub rendition: &'a str,
    pub msn: i64,
    #[scylla(flatten)]
    pub row: PartRow,
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
    key_frame_offset: Option<i64>,
    key_frame_size: Option<i64>,
    thumbnail: Option<bool>,
}

impl IndexRow {
    pub(crate) const COLUMNS: &'static str =
        "msn, duration_us, pdt, discontinuity, disc_seq, init_msn, size, added, key_frame_offset, key_frame_size, \
         thumbnail";

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
            key_frame_offset: e.key_frame.map(|k| k.offset as i64),
            key_frame_size: e.key_frame.map(|k| k.length as i64),
            thumbnail: Some(e.thumbnail),
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
            // A range outside the segment (a row edited by hand) is no key frame.
            key_frame: match (self.key_frame_offset, self.key_frame_size) {
                (Some(offset), Some(length)) if offset >= 0 && length > 0 && offset + length <= self.size => {
                    Some(ByteRange { offset: offset as u64, length: length as u64 })
                }
                _ => None,
            },
            thumbnail: self.thumbnail.unwrap_or(false),
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
/// reported as corrupt, not taken for a whole one. Chunk 0 carries the blob's metadata; the
/// other chunks repeat it (one size) or carry none (varying sizes). Chunk 0 of a pushed segment
/// gets its metadata once the segment's last fragment is stored: until then it has data alone,
/// and the blob counts as not there.
#[derive(Debug, DeserializeRow)]
pub(crate) struct ChunkRow {
    size: Option<i64>,
    chunks: Option<i32>,
    chunk_size: Option<i32>,
    ends: Option<Vec<i64>>,
    data: Option<Vec<u8>>,
}

impl ChunkRow {
    pub(crate) const COLUMNS: &'static str = "size, chunks, chunk_size, ends, data";

    /// This chunk's bytes, with the blob's metadata when the row carries it, when every column
    /// is there and sane.
    pub(crate) fn into_parts(self) -> Result<(Option<BlobMeta>, Vec<u8>), String> {
        let meta = match (self.size, self.chunks, self.chunk_size, &self.ends) {
            (None, None, None, None) => None,
            (Some(size), Some(chunks), Some(cs), None) if size >= 0 && chunks > 0 && cs > 0 => {
                Some(BlobMeta { size: size as u64, chunks: chunks as u32, chunk_size: cs as u32, ends: None })
            }
            (Some(size), Some(chunks), Some(0), Some(ends))
                if size >= 0 && chunks > 0 && ends.len() == chunks as usize && ends.iter().all(|e| *e > 0) =>
            {
                let ends: Arc<[u64]> = ends.iter().map(|e| *e as u64).collect();
                Some(BlobMeta { size: size as u64, chunks: chunks as u32, chunk_size: 0, ends: Some(ends) })
            }
            _ => return Err(self.describe()),
        };
        match self.data {
            Some(data) => Ok((meta, data)),
            None => Err(self.describe()),
        }
    }

    fn describe(&self) -> String {
        format!(
            "incomplete columns: size={:?} chunks={:?} chunk_size={:?} ends={} data={}",
            self.size,
            self.chunks,
            self.chunk_size,
            self.ends.as_ref().map_or("null".to_string(), |e| format!("{} values", e.len())),
            self.data.as_ref().map_or("null".to_string(), |d| format!("{} bytes", d.len()))
        )
    }
}

/// A chunk row as written: one of a blob cut into chunks of one size, each carrying the
/// blob's metadata.
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

/// A chunk of a blob stored as it arrives: bytes only (chunk 0 gets the metadata at the end).
#[derive(SerializeRow)]
pub(crate) struct ArrivingChunkWrite<'a> {
    pub stream: &'a str,
    pub rendition: &'a str,
    pub msn: i64,
    pub chunk: i32,
    pub data: &'a [u8],
}

/// The metadata of a blob stored as it arrived, set on its chunk 0 once it is whole.
#[derive(SerializeRow)]
pub(crate) struct SealWrite<'a> {
    pub size: i64,
    pub chunks: i32,
    pub ends: Vec<i64>,
    pub stream: &'a str,
    pub rendition: &'a str,
    pub msn: i64,
}

/// A row of `ingest_claims` without its key: which receiver's copy of a segment holds a
/// sequence number, and the values every receiver then writes for it.
#[derive(Debug, Clone, DeserializeRow, SerializeRow)]
pub(crate) struct ClaimRow {
    source: String,
    receiver: String,
    pdt: CqlTimestamp,
    duration_us: i64,
    discontinuity: bool,
    disc_seq: i64,
    added: CqlTimestamp,
}

impl ClaimRow {
    pub(crate) const COLUMNS: &'static str = "source, receiver, pdt, duration_us, discontinuity, disc_seq, added";

    pub(crate) fn from_claim(c: &Claim) -> ClaimRow {
        ClaimRow {
            source: c.source.clone(),
            receiver: c.receiver.clone(),
            pdt: CqlTimestamp(c.pdt_ms),
            duration_us: c.duration_us,
            discontinuity: c.discontinuity,
            disc_seq: c.disc_seq,
            added: CqlTimestamp(c.added_ms),
        }
    }

    pub(crate) fn into_claim(self) -> Claim {
        Claim {
            source: self.source,
            receiver: self.receiver,
            pdt_ms: self.pdt.0,
            duration_us: self.duration_us,
            discontinuity: self.discontinuity,
            disc_seq: self.disc_seq,
            added_ms: self.added.0,
        }
    }
}

/// A claim as written: the key and the row.
#[derive(SerializeRow)]
pub(crate) struct ClaimWrite<'a> {
    pub stream: &'a str,
    pub rendition: &'a str,
    pub msn: i64,
    #[scylla(flatten)]
    pub row: ClaimRow,
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
        let fixed = |size, chunks, chunk_size| BlobMeta { size, chunks, chunk_size, ends: None };
        assert!(fixed(10, 0, 4).validate().is_err());
        assert!(fixed(13, 3, 4).validate().is_err());
        assert!(fixed(8, 3, 4).validate().is_err());
        assert!(fixed(9, 3, 4).validate().is_ok());
        assert!(fixed(9, 1, (MAX_CHUNK + 1) as u32).validate().is_err());
        let m = fixed(9, 3, 4);
        assert!(m.check_chunk(2, b"x").is_ok());
        assert!(m.check_chunk(1, b"xyz").is_err());
        assert!(m.check_chunk(3, b"").is_err());
    }

    #[test]
    fn varying_chunks_as_fragments_arrived() {
        let m = BlobMeta::varying(&[24, 1000, 500]);
        assert_eq!((m.size, m.chunks, m.chunk_size), (1524, 3, 0));
        assert!(m.validate().is_ok());
        assert_eq!((m.chunk_start(0), m.chunk_start(1), m.chunk_start(2)), (0, 24, 1024));
        assert_eq!((m.chunk_len(0), m.chunk_len(1), m.chunk_len(2)), (24, 1000, 500));
        assert_eq!(m.chunks_for(0, 23), 0..=0);
        assert_eq!(m.chunks_for(23, 24), 0..=1);
        assert_eq!(m.chunks_for(1024, 1523), 2..=2);
        assert_eq!(m.chunks_for(100, 99_999), 1..=2);
        assert!(m.check_chunk(1, &[0; 1000]).is_ok());
        assert!(m.check_chunk(1, &[0; 999]).is_err());
        // Ends that do not increase, do not reach the size or hold a chunk over 1 MiB are corrupt.
        let bad = |ends: &[u64], size, chunks| BlobMeta { size, chunks, chunk_size: 0, ends: Some(ends.into()) };
        assert!(bad(&[10, 10], 10, 2).validate().is_err());
        assert!(bad(&[10, 20], 25, 2).validate().is_err());
        assert!(bad(&[10, 20], 20, 3).validate().is_err());
        assert!(bad(&[(MAX_CHUNK + 1) as u64], (MAX_CHUNK + 1) as u64, 1).validate().is_err());
    }

    #[test]
    fn chunk_rows_with_missing_columns_are_refused() {
        let row = |size, chunks, chunk_size, ends: Option<Vec<i64>>, data: Option<Vec<u8>>| ChunkRow {
            size,
            chunks,
            chunk_size,
            ends,
            data,
        };
        let whole = row(Some(3), Some(1), Some(4), None, Some(vec![1, 2, 3]));
        assert_eq!(whole.into_parts().unwrap().0, Some(BlobMeta { size: 3, chunks: 1, chunk_size: 4, ends: None }));
        let no_data = row(Some(3), Some(1), Some(4), None, None);
        assert!(no_data.into_parts().unwrap_err().contains("data=null"));
        let negative = row(Some(-1), Some(1), Some(4), None, Some(vec![]));
        assert!(negative.into_parts().is_err());
        // A chunk of a pushed segment: bytes alone; its chunk 0 gets the metadata when whole.
        let part = row(None, None, None, None, Some(vec![7; 5]));
        assert_eq!(part.into_parts().unwrap(), (None, vec![7; 5]));
        let sealed = row(Some(9), Some(2), Some(0), Some(vec![5, 9]), Some(vec![7; 5]));
        assert_eq!(sealed.into_parts().unwrap().0, Some(BlobMeta::varying(&[5, 4])));
        let half = row(Some(9), None, Some(0), Some(vec![5, 9]), Some(vec![7; 5]));
        assert!(half.into_parts().is_err());
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
            media: MediaType::Audio,
            parts: None,
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        };
        assert_eq!(RenditionRow::from_rendition(&r).into_rendition().unwrap(), r);
        // What the multivariant playlist declared, captions with and without a language.
        let caption = |id: &str, language: Option<&str>| Caption {
            group: "cc".into(),
            instream_id: id.into(),
            label: format!("{id} label"),
            language: language.map(str::to_string),
            default: false,
            autoselect: true,
        };
        let grouped = Rendition {
            grouping: Grouping {
                group: Some("aud".into()),
                label: Some("Português".into()),
                language: Some("por".into()),
                default: true,
                autoselect: true,
                characteristics: Some("public.accessibility.describes-video".into()),
                channels: Some("2".into()),
                audio: Some("aud".into()),
                subtitles: Some("subs".into()),
                captions: vec![caption("CC1", Some("por")), caption("CC2", None)],
            },
            ..r.clone()
        };
        assert_eq!(RenditionRow::from_rendition(&grouped).into_rendition().unwrap(), grouped);
        // The part target is written with the head; the newest part only by its own statement.
        let ll = Rendition { parts: Some(PartHead { target_us: 520_000, newest: None }), ..r.clone() };
        let mut row = RenditionRow::from_rendition(&ll);
        assert_eq!(row.part_msn, Unwritten(None));
        (row.part_msn, row.part_no) = (Unwritten(Some(9)), Unwritten(Some(2)));
        let read = row.into_rendition().unwrap();
        assert_eq!(read.parts.and_then(|p| p.newest), Some(PartPos { msn: 9, part: 2 }));
        let mut bad = RenditionRow::from_rendition(&r);
        bad.container = Some("mkv".into());
        assert!(matches!(bad.into_rendition(), Err(StoreError::Corrupt(_))));
    }
}
