//! Clips as files (ARCHITECTURE.md, "Clips as files"): a range of a stream as one MP4 file (or
//! one MPEG-TS file of a TS rendition), planned from index reads alone and then read a unit of
//! stored segments at a time, so a 2 h clip costs a reader two units of memory.
//!
//! [`plan`] reads the heads, the range's index rows (the segments its playlist lists), their
//! sample tables and, for fMP4, the init segments; core's `mp4::clip` checks and lays them out.
//! [`unit`] reads consecutive segments and gives their bytes as the file holds them (remuxed for
//! TS in MP4), checked against the plan. The edge (for nginx) and `hls-dvr-upload export` both
//! use these, so a download and an export of one range are the same bytes.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;

use crate::{BlobKind, Store, StoreError};
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::hash::fnv1a;
use hls_dvr_core::model::{Container, IndexEntry, MediaType, Rendition};
pub use hls_dvr_core::mp4::clip::Format;
use hls_dvr_core::mp4::clip::{self, Segment, Source};
use hls_dvr_core::mp4::fmp4::Init;
use hls_dvr_core::mp4::samples::{SegmentSamples, TrackKind};
use hls_dvr_core::mp4::ts;
use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_core::window::{self, Item, PlaylistType};

/// One stored segment's bytes in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub stream: String,
    pub rendition: String,
    pub msn: i64,
    pub len: u64,
    /// Remuxed from MPEG-TS (else as stored).
    pub remux: bool,
}

/// A clip file, planned: its header (`ftyp`, `moov`, the `mdat` header; empty for TS), then the
/// pieces, read a unit (a few consecutive pieces, read together) at a time. `starts[u]` is where
/// unit `u` begins in the file.
#[derive(Debug)]
pub struct ClipFile {
    pub format: Format,
    pub header: Bytes,
    pub pieces: Vec<Piece>,
    pub units: Vec<Range<usize>>,
    pub starts: Vec<u64>,
    pub len: u64,
    /// `Content-Disposition`'s file name.
    pub name: String,
    /// A strong validator: the same segments make the same bytes.
    pub etag: String,
}

/// Why a clip is not made: the status and the reason for the body (404 nothing stored, 409
/// stored but not as one file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn refuse(status: u16, reason: String) -> Result<Result<ClipFile, Refusal>, StoreError> {
    Ok(Err(Refusal { status, reason }))
}

/// The renditions a clip takes: the one asked for, or the highest-bandwidth video and, when its
/// segments carry no audio, its group's default audio.
fn choose<'a>(heads: &'a [Rendition], rendition: Option<&str>) -> Result<Vec<&'a Rendition>, String> {
    if let Some(name) = rendition {
        return heads.iter().find(|h| h.name == name).map(|h| vec![h]).ok_or_else(|| format!("no rendition {name:?}"));
    }
    let video = heads
        .iter()
        .filter(|h| matches!(h.media, MediaType::Video | MediaType::Muxed))
        .max_by_key(|h| (h.bandwidth.unwrap_or(0), std::cmp::Reverse(h.name.clone())))
        .ok_or("no video rendition")?;
    let audios = heads.iter().filter(|h| h.media == MediaType::Audio);
    let group = video.grouping.audio.as_deref();
    let in_group: Vec<&Rendition> =
        audios.filter(|a| group.is_none() || a.grouping.group.as_deref() == group).collect();
    let audio = in_group.iter().find(|a| a.grouping.default).or(in_group.first()).copied();
    Ok(std::iter::once(video).chain(audio).collect())
}

/// Plans the file of range `q` (start and end required) of `stream`, from `rendition` or from
/// the stream's best video and its audio.
pub async fn plan(
    store: &Store,
    stream: &str,
    rendition: Option<&str>,
    q: &PlaylistQuery,
    format: Format,
) -> Result<Result<ClipFile, Refusal>, StoreError> {
    let (Some(start_ms), Some(end_ms)) = (q.start_ms, q.end_ms) else {
        return refuse(400, "a clip file needs start and end".into());
    };
    let heads = store.renditions(stream).await?;
    if heads.is_empty() {
        return refuse(404, format!("no stream {stream:?}"));
    }
    let chosen = match choose(&heads, rendition) {
        Ok(c) => c,
        Err(why) => return refuse(404, format!("{stream}: {why}")),
    };
    if format == Format::Ts && chosen.len() > 1 {
        return refuse(409, format!("{stream}: clip.ts is made of one TS rendition: ask for STREAM/RENDITION/clip.ts"));
    }
    let now = now_ms();
    // Each rendition's segments over the range, as its playlist lists them.
    let mut lists: Vec<(&Rendition, Vec<IndexEntry>)> = Vec::new();
    for head in &chosen {
        let min_us = 3 * (head.target_duration.max(1) as i64) * 1_000_000;
        let range = window::index_range(stream, &head.name, q, 0, min_us, now);
        let entries = store.index_range(stream, &head.name, range.from_ms, range.to_ms).await?;
        let view = match window::select(&entries, head, q, 0, min_us, now) {
            Ok(v) => v,
            Err(window::Empty(why)) => return refuse(404, format!("{stream}/{}{}: {why}", head.name, q.describe())),
        };
        if view.kind != PlaylistType::Vod {
            let why = format!(
                "{stream}/{}: the range ends after the newest stored segment; a clip file is made once its end is stored \
                 (its playlist plays now)",
                head.name
            );
            return refuse(409, why);
        }
        let mut listed = Vec::with_capacity(view.items.len());
        for item in &view.items {
            match item {
                Item::Segment(e) => listed.push((*e).clone()),
                Item::Gap { msn, .. } => {
                    return refuse(
                        409,
                        format!("{stream}/{}: segment {msn} is missing (a gap in the recording)", head.name),
                    );
                }
            }
        }
        lists.push((head, listed));
    }
    let (tables, inits) = match format {
        Format::Mp4 => read_tables(store, stream, &lists).await?,
        Format::Ts => (Vec::new(), Vec::new()),
    };
    // A video rendition whose own segments carry audio needs no other.
    if lists.len() > 1 && has_audio(&tables, &lists[0].1) {
        lists.truncate(1);
    }
    // One rendition gives all its tracks, video first; with two, the video of the first and the
    // audio of the second.
    let kinds: Vec<Vec<TrackKind>> = (0..lists.len())
        .map(|i| match (lists.len(), i) {
            (1, _) => {
                let first = lists[0].1.first().and_then(|e| tables.first().and_then(|t| t.get(&e.msn)));
                let mut k: Vec<TrackKind> = first.map(|t| t.runs.iter().map(|r| r.kind).collect()).unwrap_or_default();
                k.sort_by_key(|k| *k != TrackKind::Video);
                k.dedup();
                k
            }
            (_, 0) => vec![TrackKind::Video],
            _ => vec![TrackKind::Audio],
        })
        .collect();
    let sources: Vec<Source> = lists
        .iter()
        .enumerate()
        .map(|(i, (head, entries))| Source {
            rendition: &head.name,
            container: head.container,
            kinds: &kinds[i],
            segments: entries
                .iter()
                .map(|e| Segment { entry: e, samples: tables.get(i).and_then(|t| t.get(&e.msn)) })
                .collect(),
            inits: inits.get(i).unwrap_or(&EMPTY),
        })
        .collect();
    let planned = match format {
        Format::Mp4 => clip::mp4(&sources),
        Format::Ts => clip::ts(&sources[0]),
    };
    let planned = match planned {
        Ok(p) => p,
        Err(why) => return refuse(409, format!("{stream}: {why}")),
    };
    let header = Bytes::from(planned.file.map(|f| f.header).unwrap_or_default());
    let pieces: Vec<Piece> = planned
        .pieces
        .into_iter()
        .map(|p| Piece {
            stream: stream.to_string(),
            rendition: lists[p.source].0.name.clone(),
            msn: p.msn,
            len: p.len,
            remux: p.remux,
        })
        .collect();
    let units = units(&pieces);
    let mut starts = Vec::with_capacity(units.len());
    let mut at = header.len() as u64;
    for u in &units {
        starts.push(at);
        at += pieces[u.clone()].iter().map(|p| p.len).sum::<u64>();
    }
    let identity: String =
        pieces.iter().map(|p| format!("{}/{}:{}:{};", p.stream, p.rendition, p.msn, p.len)).collect();
    let etag = format!("\"{:016x}-{at:x}\"", fnv1a(identity.bytes().chain(header.len().to_le_bytes())));
    let name = clip::file_name(stream, rendition, start_ms, end_ms, format.ext());
    Ok(Ok(ClipFile { format, header, pieces, units, starts, len: at, name, etag }))
}

/// What one unit reads at most: the pieces are read concurrently, so several small segments
/// come in one store round trip, and a request holds two units (the one sent, the one read
/// ahead), as a segment request holds two chunks.
const UNIT_BYTES: u64 = 2 << 20;
const UNIT_PIECES: usize = 8;

/// Consecutive pieces grouped into units of at most [`UNIT_BYTES`] (a larger piece alone).
fn units(pieces: &[Piece]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for (i, p) in pieces.iter().enumerate() {
        match out.last_mut() {
            Some(u) if bytes + p.len <= UNIT_BYTES && u.len() < UNIT_PIECES => {
                u.end = i + 1;
                bytes += p.len;
            }
            _ => {
                out.push(i..i + 1);
                bytes = p.len;
            }
        }
    }
    out
}

static EMPTY: std::sync::LazyLock<HashMap<i64, Init>> = std::sync::LazyLock::new(HashMap::new);

fn has_audio(tables: &[HashMap<i64, SegmentSamples>], entries: &[IndexEntry]) -> bool {
    let first = entries.first().and_then(|e| tables.first().and_then(|t| t.get(&e.msn)));
    first.is_some_and(|t| t.run(TrackKind::Audio).is_some())
}

type Tables = Vec<HashMap<i64, SegmentSamples>>;
type Inits = Vec<HashMap<i64, Init>>;

/// The sample tables of every listed segment, and the fMP4 init segments they use. A table or
/// init segment that cannot be read is corrupt data (502), as a short blob is.
async fn read_tables(
    store: &Store,
    stream: &str,
    lists: &[(&Rendition, Vec<IndexEntry>)],
) -> Result<(Tables, Inits), StoreError> {
    let mut tables = Vec::new();
    let mut inits = Vec::new();
    for (head, entries) in lists {
        let refs: Vec<&IndexEntry> = entries.iter().collect();
        let stored = store.samples(stream, &head.name, &refs).await?;
        let mut decoded = HashMap::with_capacity(stored.len());
        for e in entries {
            let Some(bytes) = stored.get(&e.msn) else { continue };
            // An fMP4 table points into the stored segment: its chunks must lie within it.
            let bound = if head.container == Container::Fmp4 { e.size.max(0) as u64 } else { u64::MAX };
            let t = SegmentSamples::decode(bytes).and_then(|t| t.check(bound).map(|()| t)).map_err(|why| {
                StoreError::Corrupt(format!("sample table of {stream}/{}/{}: {why}", head.name, e.msn))
            })?;
            decoded.insert(e.msn, t);
        }
        tables.push(decoded);
        let mut by_msn = HashMap::new();
        if head.container == Container::Fmp4 {
            let mut wanted: Vec<i64> = entries.iter().filter_map(|e| e.init_msn).collect();
            wanted.sort_unstable();
            wanted.dedup();
            for m in wanted {
                let Some(bytes) = store.read_blob(BlobKind::Init, stream, &head.name, m).await? else { continue };
                let init = Init::parse(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("init segment {stream}/{}/{m}: {e}", head.name)))?;
                by_msn.insert(m, init);
            }
        }
        inits.push(by_msn);
    }
    Ok((tables, inits))
}

/// A unit's bytes as the file holds them: its pieces read concurrently, in order.
pub async fn unit(store: &Store, pieces: &[Piece]) -> Result<Vec<Bytes>, StoreError> {
    let parts = futures::future::try_join_all(pieces.iter().map(|p| piece(store, p))).await?;
    Ok(parts.into_iter().flatten().collect())
}

/// A piece's bytes as the file holds them; anything that disagrees with the plan is corrupt
/// data (the headers are out by then: the connection is cut rather than the file made wrong).
pub async fn piece(store: &Store, p: &Piece) -> Result<Vec<Bytes>, StoreError> {
    let name = format!("{}/{}/{}", p.stream, p.rendition, p.msn);
    let chunks = store
        .read_chunks(BlobKind::Segment, &p.stream, &p.rendition, p.msn)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("segment {name} of a clip is gone")))?;
    let out = if p.remux {
        let whole = chunks.concat();
        let r = ts::remux(&whole).map_err(|e| StoreError::Corrupt(format!("segment {name}: {e}")))?;
        vec![Bytes::from(r.body)]
    } else {
        chunks
    };
    let len: u64 = out.iter().map(|b| b.len() as u64).sum();
    if len != p.len {
        return Err(StoreError::Corrupt(format!("segment {name} gives {len} bytes, its clip plan {}", p.len)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_hold_consecutive_pieces_up_to_their_size() {
        let piece = |len| Piece { stream: "s".into(), rendition: "r".into(), msn: 0, len, remux: false };
        let small: Vec<Piece> = (0..20).map(|_| piece(300_000)).collect();
        assert_eq!(units(&small), vec![0..6, 6..12, 12..18, 18..20]);
        let tiny: Vec<Piece> = (0..10).map(|_| piece(1000)).collect();
        assert_eq!(units(&tiny), vec![0..8, 8..10]);
        let mixed = [piece(100), piece(3 << 20), piece(100), piece(100)];
        assert_eq!(units(&mixed), vec![0..1, 1..2, 2..4]);
        assert!(units(&[]).is_empty());
    }
}
