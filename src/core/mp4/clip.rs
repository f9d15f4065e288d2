//! What a clip file is made of: the segments a range lists on each rendition it takes, checked
//! for what would make a wrong file (a gap, a codec change, a segment without a sample table),
//! and laid out as pieces (one per segment) behind the header [`file::write`] makes.
//!
//! The segments are the ones the same range's playlist lists (`window::select`), so a clip file
//! and the clip's playlist hold the same media.

use std::collections::HashMap;

use crate::clock::iso8601;
use crate::model::{Container, IndexEntry};

use super::file::{self, File, TrackPlan};
use super::fmp4::Init;
use super::samples::{SegmentSamples, TrackKind};

/// Which file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mp4,
    /// A TS rendition's segments as stored, one after another.
    Ts,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Ts => "ts",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Mp4 => "video/mp4",
            Format::Ts => "video/mp2t",
        }
    }
}

/// Two segments further apart than this in program date-time leave a gap in the recording.
const GAP_MS: i64 = 1000;

/// A segment of a source, with its recorded sample table when it has one.
pub struct Segment<'a> {
    pub entry: &'a IndexEntry,
    pub samples: Option<&'a SegmentSamples>,
}

/// A rendition a clip takes tracks from.
pub struct Source<'a> {
    pub rendition: &'a str,
    pub container: Container,
    /// The tracks taken from it.
    pub kinds: &'a [TrackKind],
    pub segments: Vec<Segment<'a>>,
    /// fMP4: its init segments by the msn that names them.
    pub inits: &'a HashMap<i64, Init>,
}

/// One body in the file: a stored segment, as stored (fMP4, MPEG-TS for `clip.ts`) or remuxed
/// (MPEG-TS in an MP4 file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Index into the sources.
    pub source: usize,
    pub msn: i64,
    /// Its bytes in the file.
    pub len: u64,
    pub remux: bool,
}

#[derive(Debug)]
pub struct Plan {
    /// `None` for `clip.ts`: the segments alone.
    pub file: Option<File>,
    pub pieces: Vec<Piece>,
}

impl Plan {
    pub fn header_len(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.header.len() as u64)
    }
    pub fn len(&self) -> u64 {
        self.header_len() + self.pieces.iter().map(|p| p.len).sum::<u64>()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a clip cannot be made of what is stored (answered 409): the segments are listed in order
/// with no gap, or this says where one is.
fn check_continuous(s: &Source) -> Result<(), String> {
    for w in s.segments.windows(2) {
        let (a, b) = (w[0].entry, w[1].entry);
        if b.msn != a.msn + 1 {
            return Err(format!(
                "segments {}..{} of {} are missing (a gap in the recording)",
                a.msn + 1,
                b.msn - 1,
                s.rendition
            ));
        }
        let hole = b.pdt_ms - (a.pdt_ms + a.duration_us / 1000);
        if hole > GAP_MS {
            return Err(format!(
                "{} has a gap of {:.1} s before segment {} ({})",
                s.rendition,
                hole as f64 / 1000.0,
                b.msn,
                iso8601(b.pdt_ms)
            ));
        }
    }
    Ok(())
}

fn samples<'a>(s: &Source<'a>, seg: &Segment<'a>) -> Result<&'a SegmentSamples, String> {
    seg.samples.ok_or_else(|| {
        format!(
            "segment {} of {} has no sample table (stored before clips as files, or its media could not be read)",
            seg.entry.msn, s.rendition
        )
    })
}

/// The MP4 file of the sources' segments.
pub fn mp4(sources: &[Source]) -> Result<Plan, String> {
    let mut pieces = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        if s.segments.is_empty() {
            return Err(format!("no segments of {} in the range", s.rendition));
        }
        check_continuous(s)?;
        let remux = match s.container {
            Container::Ts => true,
            Container::Fmp4 => false,
            Container::WebVtt => return Err(format!("{} is subtitles: no MP4 file", s.rendition)),
        };
        for seg in &s.segments {
            let t = samples(s, seg)?;
            let len = if remux { t.runs.iter().map(|r| r.bytes()).sum() } else { seg.entry.size as u64 };
            pieces.push((seg.entry.pdt_ms, Piece { source: i, msn: seg.entry.msn, len, remux }));
        }
    }
    // Interleaved by time, so a player reading the file front to back finds audio and video
    // near each other.
    pieces.sort_by_key(|(pdt, p)| (*pdt, p.source));
    let index: HashMap<(usize, i64), usize> =
        pieces.iter().enumerate().map(|(k, (_, p))| ((p.source, p.msn), k)).collect();
    let mut tracks = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        for kind in s.kinds {
            tracks.push(track(s, i, *kind, &index)?);
        }
    }
    let pieces: Vec<Piece> = pieces.into_iter().map(|(_, p)| p).collect();
    let bodies: Vec<u64> = pieces.iter().map(|p| p.len).collect();
    let file = file::write(&bodies, &tracks)?;
    Ok(Plan { file: Some(file), pieces })
}

fn track<'a>(
    s: &'a Source<'a>,
    source: usize,
    kind: TrackKind,
    index: &HashMap<(usize, i64), usize>,
) -> Result<TrackPlan<'a>, String> {
    let what = match kind {
        TrackKind::Video => "video",
        TrackKind::Audio => "audio",
    };
    let mut runs = Vec::new();
    let mut first: Option<(&crate::mp4::samples::Run, Option<i64>)> = None;
    for seg in &s.segments {
        let t = samples(s, seg)?;
        let run = t.run(kind).ok_or_else(|| format!("segment {} of {} has no {what}", seg.entry.msn, s.rendition))?;
        match first {
            None => first = Some((run, seg.entry.init_msn)),
            Some((f, init)) => {
                let same = match s.container {
                    Container::Ts => f.config == run.config,
                    _ => {
                        init == seg.entry.init_msn
                            || same_description(s, init, seg.entry.init_msn, f.track_id, run.track_id)
                    }
                };
                if !same {
                    return Err(format!(
                        "the {what} codec of {} changes at segment {} ({}); its playlist still plays",
                        s.rendition,
                        seg.entry.msn,
                        iso8601(seg.entry.pdt_ms)
                    ));
                }
            }
        }
        runs.push((index[&(source, seg.entry.msn)], run));
    }
    let (run, init_msn) = first.expect("a source has segments");
    let trak = match s.container {
        Container::Ts => None,
        _ => {
            let init = init_msn.and_then(|m| s.inits.get(&m));
            let init = init.ok_or_else(|| format!("the init segment of {} is not stored", s.rendition))?;
            Some(
                init.trak(run.track_id)
                    .ok_or_else(|| format!("the init segment of {} has no track {}", s.rendition, run.track_id))?,
            )
        }
    };
    Ok(TrackPlan { kind, trak, runs })
}

/// Whether two init segments describe a track the same way.
fn same_description(s: &Source, a: Option<i64>, b: Option<i64>, ta: u32, tb: u32) -> bool {
    let desc = |m: Option<i64>, t: u32| {
        m.and_then(|m| s.inits.get(&m)).and_then(|i| i.trak(t)).map(|t| &t.mdia.minf.stbl.stsd)
    };
    matches!((desc(a, ta), desc(b, tb)), (Some(x), Some(y)) if x == y)
}

/// `clip.ts`: the segments as stored, in order.
pub fn ts(s: &Source) -> Result<Plan, String> {
    if s.container != Container::Ts {
        return Err(format!("{} is not MPEG-TS: ask for clip.mp4", s.rendition));
    }
    if s.segments.is_empty() {
        return Err(format!("no segments of {} in the range", s.rendition));
    }
    check_continuous(s)?;
    let pieces = s
        .segments
        .iter()
        .map(|seg| Piece { source: 0, msn: seg.entry.msn, len: seg.entry.size as u64, remux: false })
        .collect();
    Ok(Plan { file: None, pieces })
}

/// The download's file name: the stream, the rendition when one is asked for, and the range's
/// times (`debate_hi_20261205T200000Z-20261205T201000Z.mp4`).
pub fn file_name(stream: &str, rendition: Option<&str>, start_ms: i64, end_ms: i64, ext: &str) -> String {
    let t = |ms: i64| {
        let s = iso8601(ms);
        // 2026-12-05T20:00:00.000Z -> 20261205T200000Z (no colons: a name every system accepts).
        let (date, time) = s.split_once('T').unwrap_or((&s, ""));
        let time = time.split('.').next().unwrap_or("").trim_end_matches('Z');
        format!("{}T{}Z", date.replace('-', ""), time.replace(':', ""))
    };
    match rendition {
        Some(r) => format!("{stream}_{r}_{}-{}.{ext}", t(start_ms), t(end_ms)),
        None => format!("{stream}_{}-{}.{ext}", t(start_ms), t(end_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::samples::{Chunk, Run, Sample};

    fn entry(msn: i64, pdt_ms: i64) -> IndexEntry {
        IndexEntry {
            msn,
            duration_us: 2_000_000,
            pdt_ms,
            discontinuity: false,
            disc_seq: 0,
            init_msn: None,
            size: 1000,
            added_ms: pdt_ms,
            key_frame: None,
            thumbnail: false,
        }
    }

    fn ts_table(start: i64, config: u8) -> SegmentSamples {
        let mut v = Run::new(1, TrackKind::Video, 90_000, start);
        v.samples = (0..60).map(|i| Sample { size: 100, duration: 3000, cto: 0, sync: i == 0 }).collect();
        v.chunks = vec![Chunk { offset: 0, count: 60 }];
        v.config = crate::mp4::ts::Config::Avc {
            // libx264's 640x360 High profile SPS.
            sps: vec![
                0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01,
                0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
            ],
            pps: vec![0x68, 0xcb, 0x83, 0xcb, 0x20, config],
        }
        .encode();
        SegmentSamples { runs: vec![v] }
    }

    #[test]
    fn a_clip_is_its_segments_behind_a_header_that_points_into_them() {
        let inits = HashMap::new();
        let entries = [entry(10, 0), entry(11, 2000), entry(12, 4000)];
        let tables = [ts_table(0, 0), ts_table(180_000, 0), ts_table(360_000, 0)];
        let src = Source {
            rendition: "hi",
            container: Container::Ts,
            kinds: &[TrackKind::Video],
            segments: entries.iter().zip(&tables).map(|(e, t)| Segment { entry: e, samples: Some(t) }).collect(),
            inits: &inits,
        };
        let plan = mp4(std::slice::from_ref(&src)).unwrap();
        let f = plan.file.as_ref().unwrap();
        assert_eq!(plan.pieces.len(), 3);
        assert!(plan.pieces.iter().all(|p| p.len == 6000 && p.remux));
        assert_eq!(plan.len(), f.header.len() as u64 + 18_000);
        assert_eq!(f.len, plan.len());
        assert_eq!(f.duration_ms, 6000);
        assert_eq!(&f.header[f.header.len() - 4..], b"mdat");
        // The first chunk starts right after the header.
        let stco = f.header.windows(4).position(|w| w == b"stco").unwrap();
        let first = u32::from_be_bytes(f.header[stco + 12..stco + 16].try_into().unwrap());
        assert_eq!(first as usize, f.header.len());
    }

    /// The reason a clip of these segments (rendition `hi`, video) is refused.
    fn refused(entries: &[IndexEntry], tables: &[Option<SegmentSamples>]) -> String {
        let inits = HashMap::new();
        let src = Source {
            rendition: "hi",
            container: Container::Ts,
            kinds: &[TrackKind::Video],
            segments: entries.iter().zip(tables).map(|(e, t)| Segment { entry: e, samples: t.as_ref() }).collect(),
            inits: &inits,
        };
        mp4(&[src]).unwrap_err()
    }

    #[test]
    fn gaps_codec_changes_and_missing_tables_are_refused_with_where() {
        let two = [Some(ts_table(0, 0)), Some(ts_table(180_000, 0))];
        let e = refused(&[entry(10, 0), entry(12, 4000)], &two);
        assert!(e.contains("segments 11..11 of hi are missing"), "{e}");
        let e = refused(&[entry(10, 0), entry(11, 9000)], &two);
        assert!(e.contains("gap of 7.0 s before segment 11"), "{e}");
        let ok = [entry(10, 0), entry(11, 2000)];
        let e = refused(&ok, &[Some(ts_table(0, 0)), Some(ts_table(180_000, 1))]);
        assert!(e.contains("video codec of hi changes at segment 11"), "{e}");
        let e = refused(&ok, &[Some(ts_table(0, 0)), None]);
        assert!(e.contains("segment 11 of hi has no sample table"), "{e}");
    }

    #[test]
    fn file_names_carry_the_stream_and_times() {
        assert_eq!(
            file_name("debate", Some("hi"), 1_764_964_800_000, 1_764_965_400_000, "mp4"),
            "debate_hi_20251205T200000Z-20251205T201000Z.mp4"
        );
        assert_eq!(
            file_name("debate", None, 1_764_964_800_500, 1_764_965_400_000, "ts"),
            "debate_20251205T200000Z-20251205T201000Z.ts"
        );
    }
}
