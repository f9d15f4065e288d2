//! MPEG-TS segments remuxed for an MP4 file: H.264 access units from Annex B to length-prefixed
//! NAL units (parameter sets move to the sample description), AAC from ADTS frames to raw
//! frames. The uploader runs [`remux`] once to record the sample table; the edge runs it again
//! on the same stored bytes to produce the file's bytes, and checks that both agree.
//!
//! One access unit per video PES packet, as segmenters write them. Anything the remux cannot
//! carry (H.265, MP3, no PAT/PMT) is an error: the segment has no sample table, and a clip over
//! it is refused with the reason rather than made wrong.

use super::samples::{Chunk, Run, Sample, SegmentSamples, TrackKind};

const PACKET: usize = 188;
const VIDEO_ID: u32 = 1;
const AUDIO_ID: u32 = 2;
const CLOCK: u32 = 90_000;
/// Samples in one AAC frame.
const AAC_FRAME: u32 = 1024;
const AAC_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// A remuxed track's codec configuration, kept in its sample table (`Run::config`) and made into
/// the file's sample description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// H.264: the first SPS and PPS.
    Avc { sps: Vec<u8>, pps: Vec<u8> },
    /// AAC: object type, sampling frequency index, channel configuration.
    Aac { object_type: u8, freq_index: u8, channels: u8 },
}

impl Config {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Config::Avc { sps, pps } => {
                let mut b = vec![b'h'];
                for p in [sps, pps] {
                    b.extend_from_slice(&(p.len() as u16).to_be_bytes());
                    b.extend_from_slice(p);
                }
                b
            }
            Config::Aac { object_type, freq_index, channels } => vec![b'a', *object_type, *freq_index, *channels],
        }
    }

    pub fn decode(b: &[u8]) -> Result<Config, String> {
        let bad = || "a corrupt codec configuration".to_string();
        match b.first() {
            Some(b'h') => {
                let mut at = 1;
                let mut take = || {
                    let n =
                        u16::from_be_bytes(b.get(at..at + 2).ok_or_else(bad)?.try_into().expect("2 bytes")) as usize;
                    let v = b.get(at + 2..at + 2 + n).ok_or_else(bad)?.to_vec();
                    at += 2 + n;
                    Ok::<_, String>(v)
                };
                Ok(Config::Avc { sps: take()?, pps: take()? })
            }
            Some(b'a') if b.len() == 4 => Ok(Config::Aac { object_type: b[1], freq_index: b[2], channels: b[3] }),
            _ => Err(bad()),
        }
    }

    /// AAC's sampling rate.
    pub fn sample_rate(&self) -> Option<u32> {
        match self {
            Config::Aac { freq_index, .. } => AAC_RATES.get(*freq_index as usize).copied(),
            Config::Avc { .. } => None,
        }
    }
}

/// A segment remuxed: its sample table (chunk offsets into `body`) and the bytes.
#[derive(Debug)]
pub struct Remuxed {
    pub samples: SegmentSamples,
    pub body: Vec<u8>,
}

struct Pes {
    pts: Option<i64>,
    dts: Option<i64>,
    data: Vec<u8>,
}

#[derive(Default)]
struct Demux {
    pmt_pid: Option<u16>,
    video_pid: Option<u16>,
    audio_pid: Option<u16>,
    /// Elementary streams the remux cannot carry, for the error.
    unsupported: Vec<u8>,
    video: Vec<Pes>,
    audio: Vec<Pes>,
}

/// Remuxes a whole MPEG-TS segment.
pub fn remux(data: &[u8]) -> Result<Remuxed, String> {
    if data.is_empty() || !data.len().is_multiple_of(PACKET) {
        return Err(format!("{} bytes are not whole 188-byte TS packets", data.len()));
    }
    let mut d = Demux::default();
    for (i, p) in data.chunks_exact(PACKET).enumerate() {
        if p[0] != 0x47 {
            return Err(format!("TS packet {i} has no sync byte"));
        }
        d.packet(p);
    }
    if d.video_pid.is_none() && d.audio_pid.is_none() {
        return Err(match d.unsupported.first() {
            Some(t) => format!("stream type 0x{t:02x} cannot be put in an MP4 file here (H.264 and AAC can)"),
            None => "no H.264 or AAC stream in the PMT".into(),
        });
    }
    let mut body = Vec::with_capacity(data.len());
    let mut runs = Vec::new();
    if !d.video.is_empty() {
        runs.push(video(&d.video, &mut body)?);
    }
    if !d.audio.is_empty() {
        runs.push(audio(&d.audio, &mut body)?);
    }
    if runs.is_empty() {
        return Err("no audio or video samples".into());
    }
    Ok(Remuxed { samples: SegmentSamples { runs }, body })
}

impl Demux {
    fn packet(&mut self, p: &[u8]) {
        let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        let start = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        if afc & 1 == 0 {
            return;
        }
        let mut at = 4;
        if afc & 2 != 0 {
            at += 1 + p[4] as usize;
        }
        let Some(payload) = p.get(at..) else { return };
        if pid == 0 && start {
            self.pat(payload);
        } else if Some(pid) == self.pmt_pid && start {
            self.pmt(payload);
        } else if Some(pid) == self.video_pid || Some(pid) == self.audio_pid {
            let list = if Some(pid) == self.video_pid { &mut self.video } else { &mut self.audio };
            if start {
                if let Some(pes) = pes_start(payload) {
                    list.push(pes);
                }
            } else if let Some(last) = list.last_mut() {
                last.data.extend_from_slice(payload);
            }
        }
    }

    /// The PSI section after a payload's pointer field.
    fn section(payload: &[u8]) -> Option<&[u8]> {
        let skip = *payload.first()? as usize;
        let s = payload.get(1 + skip..)?;
        let len = (u16::from_be_bytes([*s.get(1)?, *s.get(2)?]) & 0x0fff) as usize;
        // Without the 4-byte CRC.
        s.get(..(3 + len).checked_sub(4)?)
    }

    fn pat(&mut self, payload: &[u8]) {
        let Some(s) = Self::section(payload) else { return };
        for e in s.get(8..).unwrap_or_default().chunks_exact(4) {
            let program = u16::from_be_bytes([e[0], e[1]]);
            if program != 0 {
                self.pmt_pid = Some(u16::from_be_bytes([e[2] & 0x1f, e[3]]));
                return;
            }
        }
    }

    fn pmt(&mut self, payload: &[u8]) {
        let Some(s) = Self::section(payload) else { return };
        let Some(info) = s.get(10..12) else { return };
        let mut at = 12 + (u16::from_be_bytes([info[0], info[1]]) & 0x0fff) as usize;
        while let Some(e) = s.get(at..at + 5) {
            let pid = u16::from_be_bytes([e[1] & 0x1f, e[2]]);
            match e[0] {
                0x1b if self.video_pid.is_none() => self.video_pid = Some(pid),
                0x0f if self.audio_pid.is_none() => self.audio_pid = Some(pid),
                0x1b | 0x0f => {}
                other => self.unsupported.push(other),
            }
            at += 5 + (u16::from_be_bytes([e[3], e[4]]) & 0x0fff) as usize;
        }
    }
}

fn pes_start(b: &[u8]) -> Option<Pes> {
    if b.get(..3)? != [0, 0, 1] {
        return None;
    }
    let flags = *b.get(7)? >> 6;
    let header = *b.get(8)? as usize;
    let pts = if flags & 2 != 0 { Some(timestamp(b.get(9..14)?)) } else { None };
    let dts = if flags == 3 { Some(timestamp(b.get(14..19)?)) } else { None };
    Some(Pes { pts, dts, data: b.get(9 + header..)?.to_vec() })
}

fn timestamp(b: &[u8]) -> i64 {
    (((b[0] as i64 >> 1) & 7) << 30)
        | ((b[1] as i64) << 22)
        | ((b[2] as i64 >> 1) << 15)
        | ((b[3] as i64) << 7)
        | (b[4] as i64 >> 1)
}

/// Annex B NAL units: what lies between start codes, without trailing zero bytes.
fn nal_units(b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(b.len(), |n| n - 3);
        while e > s && b[e - 1] == 0 {
            e -= 1;
        }
        if e > s {
            out.push(&b[s..e]);
        }
    }
    out
}

fn video(list: &[Pes], body: &mut Vec<u8>) -> Result<Run, String> {
    let (mut sps, mut pps) = (None, None);
    let mut frames: Vec<(i64, i64, u32, bool)> = Vec::new(); // dts, pts, size, sync
    let offset = body.len() as u64;
    for pes in list {
        let Some(pts) = pes.pts else { continue };
        let dts = pes.dts.unwrap_or(pts);
        let mut size = 0u32;
        let mut sync = false;
        for nal in nal_units(&pes.data) {
            match nal[0] & 0x1f {
                // Access unit delimiters go; parameter sets go to the sample description.
                9 => continue,
                7 => {
                    sps.get_or_insert_with(|| nal.to_vec());
                    continue;
                }
                8 => {
                    pps.get_or_insert_with(|| nal.to_vec());
                    continue;
                }
                5 => sync = true,
                _ => {}
            }
            body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            body.extend_from_slice(nal);
            size += 4 + nal.len() as u32;
        }
        if size > 0 {
            frames.push((dts, pts, size, sync));
        }
    }
    let (Some(sps), Some(pps)) = (sps, pps) else {
        return Err("the H.264 stream carries no SPS and PPS".into());
    };
    let first = frames.first().ok_or("no H.264 access units")?;
    let mut run = Run::new(VIDEO_ID, TrackKind::Video, CLOCK, first.0);
    for (i, f) in frames.iter().enumerate() {
        // The last frame lasts as long as the one before it; a clip evens it out against the
        // next segment.
        let next = frames.get(i + 1).map(|n| n.0 - f.0).or_else(|| (i > 0).then(|| f.0 - frames[i - 1].0));
        let duration = u32::try_from(next.unwrap_or(3000)).map_err(|_| "H.264 timestamps go backwards")?;
        let cto = i32::try_from(f.1 - f.0).map_err(|_| "H.264 composition offset out of range")?;
        run.samples.push(Sample { size: f.2, duration, cto, sync: f.3 });
    }
    run.chunks.push(Chunk { offset, count: run.samples.len() as u32 });
    run.config = Config::Avc { sps, pps }.encode();
    Ok(run)
}

fn audio(list: &[Pes], body: &mut Vec<u8>) -> Result<Run, String> {
    let offset = body.len() as u64;
    let mut config: Option<Config> = None;
    let mut start = None;
    let mut samples = Vec::new();
    for pes in list {
        let mut b = &pes.data[..];
        let mut first_in_pes = true;
        while b.len() >= 7 {
            if b[0] != 0xff || b[1] & 0xf0 != 0xf0 {
                return Err("AAC without an ADTS sync word".into());
            }
            let header = if b[1] & 1 == 1 { 7 } else { 9 };
            let len = ((b[3] as usize & 3) << 11) | ((b[4] as usize) << 3) | (b[5] as usize >> 5);
            if len <= header || len > b.len() {
                return Err("an ADTS frame is cut short".into());
            }
            let c = Config::Aac {
                object_type: (b[2] >> 6) + 1,
                freq_index: (b[2] >> 2) & 0x0f,
                channels: ((b[2] & 1) << 2) | (b[3] >> 6),
            };
            let rate = c.sample_rate().ok_or("AAC with a reserved sampling frequency")?;
            match &config {
                None => config = Some(c),
                Some(k) if *k != c => return Err("the AAC configuration changes within the segment".into()),
                Some(_) => {}
            }
            if first_in_pes && start.is_none() {
                if let Some(pts) = pes.pts {
                    start = Some(pts * rate as i64 / CLOCK as i64);
                }
            }
            first_in_pes = false;
            let blocks = (b[6] & 3) as u32 + 1;
            let raw = &b[header..len];
            body.extend_from_slice(raw);
            samples.push(Sample { size: raw.len() as u32, duration: AAC_FRAME * blocks, cto: 0, sync: true });
            b = &b[len..];
        }
    }
    let config = config.ok_or("no AAC frames")?;
    let rate = config.sample_rate().expect("checked above");
    let mut run = Run::new(AUDIO_ID, TrackKind::Audio, rate, start.ok_or("AAC without a timestamp")?);
    run.chunks.push(Chunk { offset, count: samples.len() as u32 });
    run.samples = samples;
    run.config = config.encode();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splits_on_three_and_four_byte_start_codes() {
        let b = [0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 0, 1, 0x41, 7];
        assert_eq!(nal_units(&b), vec![&[9, 0xf0][..], &[0x65, 1, 2][..], &[0x41, 7][..]]);
    }

    #[test]
    fn configs_read_back() {
        for c in [
            Config::Avc { sps: vec![0x67, 1, 2], pps: vec![0x68] },
            Config::Aac { object_type: 2, freq_index: 3, channels: 2 },
        ] {
            assert_eq!(Config::decode(&c.encode()).unwrap(), c);
        }
        assert!(Config::decode(&[b'h', 0, 9, 1]).is_err());
        assert_eq!(Config::Aac { object_type: 2, freq_index: 3, channels: 2 }.sample_rate(), Some(48000));
    }

    #[test]
    fn what_is_not_ts_is_an_error() {
        assert!(remux(&[0u8; 100]).is_err());
        assert!(remux(&[0u8; 188]).unwrap_err().contains("sync byte"));
        let mut p = [0xffu8; 188];
        p[0] = 0x47;
        assert!(remux(&p).unwrap_err().contains("PMT"));
    }
}
