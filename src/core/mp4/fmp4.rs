//! Sample tables of fragmented MP4 segments, read from their `moof` boxes, and what a clip's
//! `moov` keeps of the init segment. The boxes are decoded by `mp4-atom`; this module only
//! resolves the defaults (trun, then tfhd, then the init segment's trex) and where each run's
//! bytes lie.

use mp4_atom::{Atom, Decode, FourCC, Moof, Moov, Trak};

use super::samples::{Chunk, Run, Sample, SegmentSamples, TrackKind};

/// `sample_is_non_sync_sample` in a sample's flags (ISO/IEC 14496-12 8.8.3.1).
const NON_SYNC: u32 = 0x0001_0000;

/// What the init segment says of a track.
#[derive(Debug, Clone)]
pub struct InitTrack {
    pub track_id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    default_duration: u32,
    default_size: u32,
    default_flags: u32,
}

/// The init segment: its `moov`, and the audio and video tracks in it.
#[derive(Debug, Clone)]
pub struct Init {
    pub moov: Moov,
    pub tracks: Vec<InitTrack>,
}

impl Init {
    pub fn parse(data: &[u8]) -> Result<Init, String> {
        let moov = top_boxes(data)?.into_iter().find(|b| b.kind == Moov::KIND).ok_or("the init segment has no moov")?;
        // `decode` reads a box from its header on.
        let moov = Moov::decode(&mut &data[moov.start..moov.end]).map_err(|e| format!("init segment moov: {e}"))?;
        let trex = moov.mvex.as_ref().map(|m| m.trex.as_slice()).unwrap_or_default();
        let tracks = moov
            .trak
            .iter()
            .filter_map(|t| {
                let kind = kind_of(t)?;
                let id = t.tkhd.track_id;
                let x = trex.iter().find(|x| x.track_id == id);
                Some(InitTrack {
                    track_id: id,
                    kind,
                    timescale: t.mdia.mdhd.timescale,
                    default_duration: x.map_or(0, |x| x.default_sample_duration),
                    default_size: x.map_or(0, |x| x.default_sample_size),
                    default_flags: x.map_or(0, |x| x.default_sample_flags),
                })
            })
            .collect();
        Ok(Init { moov, tracks })
    }

    pub fn trak(&self, track_id: u32) -> Option<&Trak> {
        self.moov.trak.iter().find(|t| t.tkhd.track_id == track_id)
    }
}

/// Audio or video by the track's handler; other tracks (timed text, metadata) are left out.
pub fn kind_of(t: &Trak) -> Option<TrackKind> {
    match &<[u8; 4]>::from(t.mdia.hdlr.handler) {
        b"vide" => Some(TrackKind::Video),
        b"soun" => Some(TrackKind::Audio),
        _ => None,
    }
}

/// A top-level box: its type, where it starts, its header's length, where it ends.
#[derive(Debug)]
struct Bx {
    kind: FourCC,
    start: usize,
    header: usize,
    end: usize,
}

/// The top-level boxes of `data`; a box that runs past the end is an error (a stored segment's
/// boxes are whole, and so is a stored fragment's).
fn top_boxes(data: &[u8]) -> Result<Vec<Bx>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while data.len() - at >= 8 {
        let size32 = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as u64;
        let kind = FourCC::new(data[at + 4..at + 8].try_into().expect("4 bytes"));
        let (header, size) = match size32 {
            0 => (8usize, (data.len() - at) as u64),
            1 if data.len() - at >= 16 => (16, u64::from_be_bytes(data[at + 8..at + 16].try_into().expect("8 bytes"))),
            1 => return Err("a box's 64-bit size is cut short".into()),
            n => (8, n),
        };
        if size < header as u64 || (at as u64).checked_add(size).is_none_or(|end| end > data.len() as u64) {
            return Err(format!("box {kind} at {at} runs past the end"));
        }
        let end = at + size as usize;
        out.push(Bx { kind, start: at, header, end });
        at = end;
    }
    Ok(out)
}

/// Adds the samples of the `moof`s in `data` (a segment, or a fragment of one stored from byte
/// `base` of it) to `into`, one run per track of `init`.
pub fn add_fragments(data: &[u8], base: u64, init: &Init, into: &mut SegmentSamples) -> Result<(), String> {
    let boxes = top_boxes(data)?;
    for (i, b) in boxes.iter().enumerate() {
        if b.kind != Moof::KIND {
            continue;
        }
        let start = b.start;
        let moof = Moof::decode(&mut &data[start..b.end]).map_err(|e| format!("moof at {start}: {e}"))?;
        // Where a run without a data offset starts: the next mdat's payload.
        let mdat = boxes[i + 1..].iter().find(|b| b.kind == FourCC::new(b"mdat")).map(|b| (b.start + b.header) as u64);
        for traf in &moof.traf {
            let Some(t) = init.tracks.iter().find(|t| t.track_id == traf.tfhd.track_id) else { continue };
            let h = &traf.tfhd;
            let run = match into.runs.iter().position(|r| r.track_id == t.track_id) {
                Some(p) => &mut into.runs[p],
                None => {
                    let start = traf.tfdt.as_ref().map_or(0, |d| d.base_media_decode_time) as i64;
                    into.runs.push(Run::new(t.track_id, t.kind, t.timescale, start));
                    into.runs.last_mut().expect("just pushed")
                }
            };
            let origin = h.base_data_offset.unwrap_or(start as u64);
            let mut next = mdat;
            for trun in &traf.trun {
                let offset = match trun.data_offset {
                    Some(o) => origin.checked_add_signed(o as i64).ok_or("negative data offset")?,
                    None => next.ok_or("a track run without a data offset or an mdat")?,
                };
                let mut bytes = 0u64;
                let mut count = 0u32;
                for e in trun.samples.iter() {
                    let flags = e.flags.or(h.default_sample_flags).unwrap_or(t.default_flags);
                    let s = Sample {
                        size: e.size.or(h.default_sample_size).unwrap_or(t.default_size),
                        duration: e.duration.or(h.default_sample_duration).unwrap_or(t.default_duration),
                        cto: i32::try_from(e.cts.unwrap_or(0)).map_err(|_| "composition offset out of range")?,
                        sync: flags & NON_SYNC == 0,
                    };
                    bytes += s.size as u64;
                    count += 1;
                    run.samples.push(s);
                }
                if count > 0 {
                    run.chunks.push(Chunk { offset: base.saturating_add(offset), count });
                }
                next = Some(offset.saturating_add(bytes));
            }
        }
    }
    Ok(())
}

/// The sample table of a whole fMP4 segment.
pub fn segment_samples(data: &[u8], init: &Init) -> Result<SegmentSamples, String> {
    let mut t = SegmentSamples::default();
    add_fragments(data, 0, init, &mut t)?;
    if t.runs.is_empty() {
        return Err("no audio or video samples".into());
    }
    t.check(data.len() as u64)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_size_past_the_end_is_an_error_even_at_u64_max() {
        // A 64-bit size of all ones (found by the media fuzz target): no overflow, no panic.
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(b"moof");
        b.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(top_boxes(&b).unwrap_err().contains("runs past the end"));
        b[8..16].copy_from_slice(&(u64::MAX - 7).to_be_bytes());
        assert!(top_boxes(&b).is_err());
        assert!(Init::parse(&b).is_err());
        // A box that fits is read.
        let mut ok = 12u32.to_be_bytes().to_vec();
        ok.extend_from_slice(b"free\0\0\0\0");
        assert_eq!(top_boxes(&ok).unwrap().len(), 1);
    }
}
