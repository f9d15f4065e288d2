//! A segment's sample table: what the uploader records of each segment when it stores it, so that
//! an MP4 file's `moov` can be written from index reads alone (ARCHITECTURE.md, "Clips as
//! files"). One [`Run`] per track: its samples (size, duration, composition offset, key frame),
//! the chunks they lie in, and for a remuxed MPEG-TS segment the codec configuration the file's
//! sample description is made from.
//!
//! Stored as a small versioned binary (LEB128 numbers): about 1 KB for a 2 s segment at 30 fps.

use crate::leb128::{put, Reader};

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub size: u32,
    /// In the track's timescale.
    pub duration: u32,
    /// Composition time less decode time.
    pub cto: i32,
    pub sync: bool,
}

/// Consecutive samples stored together: `count` samples from byte `offset` of the segment's
/// file body (the stored segment for fMP4, its remuxed form for MPEG-TS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub count: u32,
}

/// One track's samples in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The fMP4 track id (MPEG-TS: 1 video, 2 audio).
    pub track_id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    /// Decode time of the first sample, in the timescale.
    pub start: i64,
    pub chunks: Vec<Chunk>,
    pub samples: Vec<Sample>,
    /// A remuxed MPEG-TS track's codec configuration (see `ts::Config`); empty for fMP4, whose
    /// sample description is the init segment's.
    pub config: Vec<u8>,
}

impl Run {
    pub fn new(track_id: u32, kind: TrackKind, timescale: u32, start: i64) -> Run {
        Run { track_id, kind, timescale, start, chunks: Vec::new(), samples: Vec::new(), config: Vec::new() }
    }

    /// Decode time just past the last sample.
    pub fn end(&self) -> i64 {
        self.start + self.samples.iter().map(|s| s.duration as i64).sum::<i64>()
    }

    /// Bytes of the chunks.
    pub fn bytes(&self) -> u64 {
        self.samples.iter().map(|s| s.size as u64).sum()
    }
}

/// A segment's sample table: one run per track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentSamples {
    pub runs: Vec<Run>,
}

/// Format version of the stored form.
const VERSION: u8 = 1;
const SYNC: u64 = 1;

impl SegmentSamples {
    pub fn run(&self, kind: TrackKind) -> Option<&Run> {
        self.runs.iter().find(|r| r.kind == kind)
    }

    /// Checks what a clip relies on: every chunk's samples are listed, and no chunk reaches past
    /// `body_len` bytes.
    pub fn check(&self, body_len: u64) -> Result<(), String> {
        for r in &self.runs {
            let listed: u64 = r.chunks.iter().map(|c| c.count as u64).sum();
            if listed != r.samples.len() as u64 {
                return Err(format!("track {}: chunks list {listed} samples of {}", r.track_id, r.samples.len()));
            }
            if r.timescale == 0 {
                return Err(format!("track {}: timescale 0", r.track_id));
            }
            let mut i = 0usize;
            for c in &r.chunks {
                let size: u64 = r.samples[i..i + c.count as usize].iter().map(|s| s.size as u64).sum();
                i += c.count as usize;
                if c.offset.checked_add(size).is_none_or(|end| end > body_len) {
                    return Err(format!("track {}: a chunk ends past the segment's {body_len} bytes", r.track_id));
                }
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![VERSION];
        put(&mut b, self.runs.len() as u64);
        for r in &self.runs {
            put(&mut b, r.track_id as u64);
            b.push(match r.kind {
                TrackKind::Video => b'v',
                TrackKind::Audio => b'a',
            });
            put(&mut b, r.timescale as u64);
            put(&mut b, zigzag(r.start));
            put(&mut b, r.config.len() as u64);
            b.extend_from_slice(&r.config);
            put(&mut b, r.chunks.len() as u64);
            for c in &r.chunks {
                put(&mut b, c.offset);
                put(&mut b, c.count as u64);
            }
            put(&mut b, r.samples.len() as u64);
            for s in &r.samples {
                put(&mut b, (s.size as u64) << 1 | if s.sync { SYNC } else { 0 });
                put(&mut b, s.duration as u64);
                put(&mut b, zigzag(s.cto as i64));
            }
        }
        b
    }

    /// Reads the stored form; a corrupt one is an error, never a panic.
    pub fn decode(b: &[u8]) -> Result<SegmentSamples, String> {
        let mut r = Reader::new(b, "sample table");
        let v = r.byte()?;
        if v != VERSION {
            return Err(format!("sample table version {v}, expected {VERSION}"));
        }
        let n = r.count(16)?;
        let mut runs = Vec::with_capacity(n);
        for _ in 0..n {
            let track_id = r.u32()?;
            let kind = match r.byte()? {
                b'v' => TrackKind::Video,
                b'a' => TrackKind::Audio,
                k => return Err(format!("track kind {k}")),
            };
            let timescale = r.u32()?;
            let start = unzigzag(r.num()?);
            let len = r.count(1 << 16)?;
            let config = r.take(len)?.to_vec();
            let chunks = (0..r.count(1 << 20)?)
                .map(|_| Ok(Chunk { offset: r.num()?, count: r.u32()? }))
                .collect::<Result<Vec<_>, String>>()?;
            let samples = (0..r.count(1 << 22)?)
                .map(|_| {
                    let sz = r.num()?;
                    let size = u32::try_from(sz >> 1).map_err(|_| "sample size".to_string())?;
                    let duration = r.u32()?;
                    let cto = i32::try_from(unzigzag(r.num()?)).map_err(|_| "composition offset".to_string())?;
                    Ok(Sample { size, duration, cto, sync: sz & SYNC != 0 })
                })
                .collect::<Result<Vec<_>, String>>()?;
            runs.push(Run { track_id, kind, timescale, start, chunks, samples, config });
        }
        r.done()?;
        Ok(SegmentSamples { runs })
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_reads_back_and_rejects_damage() {
        let mut v = Run::new(1, TrackKind::Video, 90_000, 1_234_567);
        v.samples = vec![
            Sample { size: 40_000, duration: 3000, cto: 6000, sync: true },
            Sample { size: 900, duration: 3000, cto: -3000, sync: false },
        ];
        v.chunks = vec![Chunk { offset: 700, count: 2 }];
        let mut a = Run::new(2, TrackKind::Audio, 48_000, 0);
        a.samples = vec![Sample { size: 300, duration: 1024, cto: 0, sync: true }];
        a.chunks = vec![Chunk { offset: 50_000, count: 1 }];
        a.config = vec![0x11, 0x90];
        let t = SegmentSamples { runs: vec![v, a] };
        let b = t.encode();
        assert_eq!(SegmentSamples::decode(&b).unwrap(), t);
        assert!(t.check(50_300).is_ok());
        assert!(t.check(50_299).unwrap_err().contains("past the segment"));
        for cut in 0..b.len() {
            assert!(SegmentSamples::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(SegmentSamples::decode(&longer).is_err());
        assert!(SegmentSamples::decode(&[VERSION, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }
}
