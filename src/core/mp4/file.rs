//! A progressive MP4 file made of stored segments: `ftyp`, a `moov` whose sample tables come from
//! the segments' recorded [`Run`]s, and one `mdat` holding the segments' bodies back to back
//! (ARCHITECTURE.md, "Clips as files"). Nothing here reads media: the header is written from the
//! tables alone, and the chunk offsets point into the bodies where the samples lie (an fMP4
//! segment's `moof` boxes stay in the `mdat` as bytes no sample names).
//!
//! Sample timing is the tables' durations laid end to end: a track's timeline is continuous across
//! segments and discontinuities, and a segment's last sample is stretched or shortened to meet
//! the next segment where the two are within one sample of each other.

use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::{
    Audio, Avc1, Avcc, Co64, Codec, Ctts, CttsEntry, Dinf, Dref, Edts, Elst, ElstEntry, Encode, Esds, FourCC, Ftyp,
    Hdlr, Mdhd, Mdia, Minf, Moov, Mp4a, Mvhd, Smhd, Stbl, Stco, Stsc, StscEntry, Stsd, Stss, Stsz, StszSamples, Stts,
    SttsEntry, Tkhd, Trak, Url, Visual,
};

use super::samples::{Run, TrackKind};
use super::ts::Config;

/// The movie's timescale: milliseconds.
const MOVIE_TIMESCALE: u32 = 1000;

/// One track of the file: its segments' runs in order, each with the index of the body (piece)
/// it lies in, and where its sample description comes from.
pub struct TrackPlan<'a> {
    pub kind: TrackKind,
    /// fMP4: the init segment's track, whose sample description is kept; None for a remuxed
    /// MPEG-TS track (made from the runs' codec configuration).
    pub trak: Option<&'a Trak>,
    pub runs: Vec<(usize, &'a Run)>,
}

impl TrackPlan<'_> {
    /// What the source's own edit list takes off every composition time (an encoder's delay
    /// for B-frames, or AAC priming), in the track's timescale: tracks line up on what is
    /// presented, not on raw timestamps.
    fn presentation_offset(&self) -> i64 {
        let edits = self.trak.and_then(|t| t.edts.as_ref()).and_then(|e| e.elst.as_ref());
        edits.and_then(|e| e.entries.iter().find_map(|x| x.media_time)).map_or(0, |m| m as i64)
    }
}

/// The file: its header (everything before the first body byte) and its length.
#[derive(Debug)]
pub struct File {
    pub header: Vec<u8>,
    pub len: u64,
    /// Presentation length, in ms.
    pub duration_ms: u64,
}

/// Lays out a file of `bodies` (the pieces' lengths, in file order) and its tracks.
pub fn write(bodies: &[u64], tracks: &[TrackPlan]) -> Result<File, String> {
    if tracks.is_empty() || tracks.iter().any(|t| t.runs.is_empty()) {
        return Err("nothing to put in the file".into());
    }
    let media: u64 = bodies.iter().sum();
    let ftyp = ftyp()?;
    let starts = |header: u64| {
        let mut at = header;
        bodies
            .iter()
            .map(|l| {
                at += l;
                at - l
            })
            .collect::<Vec<u64>>()
    };
    // Offsets are written at a fixed width, so the moov's size does not depend on them: lay it
    // out once with the header's length unknown, then with it known.
    let mut large = false;
    loop {
        let mdat_header = if media + 8 > u32::MAX as u64 { 16 } else { 8 };
        let draft = moov(tracks, &starts(0), large)?;
        let header = (ftyp.len() + draft.moov.len() + mdat_header) as u64;
        if !large && header + media > u32::MAX as u64 {
            large = true;
            continue;
        }
        let done = moov(tracks, &starts(header), large)?;
        debug_assert_eq!(done.moov.len(), draft.moov.len());
        let mut out = ftyp;
        out.extend_from_slice(&done.moov);
        if mdat_header == 16 {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(b"mdat");
            out.extend_from_slice(&(media + 16).to_be_bytes());
        } else {
            out.extend_from_slice(&((media + 8) as u32).to_be_bytes());
            out.extend_from_slice(b"mdat");
        }
        return Ok(File { len: out.len() as u64 + media, header: out, duration_ms: done.duration_ms });
    }
}

fn ftyp() -> Result<Vec<u8>, String> {
    let f = Ftyp {
        major_brand: FourCC::new(b"isom"),
        minor_version: 512,
        compatible_brands: [b"isom", b"iso2", b"avc1", b"mp41"].into_iter().map(FourCC::new).collect(),
    };
    encode(&f)
}

fn encode(a: &impl Encode) -> Result<Vec<u8>, String> {
    let mut b = Vec::new();
    a.encode(&mut b).map_err(|e| format!("writing the file's header: {e}"))?;
    Ok(b)
}

struct Made {
    moov: Vec<u8>,
    duration_ms: u64,
}

/// One track's samples laid end to end.
struct Table {
    timescale: u32,
    durations: Vec<u32>,
    ctos: Vec<i32>,
    sizes: Vec<u32>,
    sync: Vec<u32>,
    /// (offset, samples) per chunk.
    chunks: Vec<(u64, u32)>,
    /// Decode time of the first sample and the first sample's composition offset.
    start: i64,
    first_cto: i32,
    /// See [`TrackPlan::presentation_offset`].
    offset: i64,
}

fn table(t: &TrackPlan, starts: &[u64]) -> Result<Table, String> {
    let first = t.runs[0].1;
    let mut tb = Table {
        timescale: first.timescale,
        durations: Vec::new(),
        ctos: Vec::new(),
        sizes: Vec::new(),
        sync: Vec::new(),
        chunks: Vec::new(),
        start: first.start,
        first_cto: first.samples.first().map_or(0, |s| s.cto),
        offset: t.presentation_offset(),
    };
    for (k, (piece, run)) in t.runs.iter().enumerate() {
        if run.timescale != tb.timescale {
            return Err(format!("the {} timescale changes from {} to {}", kind(t.kind), tb.timescale, run.timescale));
        }
        let base = *starts.get(*piece).ok_or("a run names no body")?;
        for s in &run.samples {
            if s.sync {
                tb.sync.push(tb.sizes.len() as u32 + 1);
            }
            tb.durations.push(s.duration);
            tb.ctos.push(s.cto);
            tb.sizes.push(s.size);
        }
        for c in &run.chunks {
            tb.chunks.push((base + c.offset, c.count));
        }
        // Meet the next segment where it follows within a sample; across a jump, keep the
        // recorded duration (the timeline closes the jump).
        if let (Some((_, next)), Some(last)) = (t.runs.get(k + 1), tb.durations.last_mut()) {
            let adjust = next.start - run.end();
            let fixed = *last as i64 + adjust;
            if adjust != 0 && adjust.abs() <= *last as i64 && fixed > 0 {
                *last = fixed as u32;
            }
        }
    }
    Ok(tb)
}

fn kind(k: TrackKind) -> &'static str {
    match k {
        TrackKind::Video => "video",
        TrackKind::Audio => "audio",
    }
}

fn moov(tracks: &[TrackPlan], starts: &[u64], large: bool) -> Result<Made, String> {
    let tables = tracks.iter().map(|t| table(t, starts)).collect::<Result<Vec<_>, _>>()?;
    // The file shows the video's span: segments are cut at video key frames, so audio frames
    // before the first picture or after the last one are left out by the edit lists (an
    // audio-only file shows all of its audio). Times in ms of presentation.
    // In i128: the tables come from the store, and no value in them may overflow a sum.
    let ms = |t: i128, tb: &Table| {
        (t * 1000 / tb.timescale.max(1) as i128).clamp(i64::MIN as i128 / 4, i64::MAX as i128 / 4) as i64
    };
    let begin = |tb: &Table| ms(tb.start as i128 + tb.first_cto.max(0) as i128 - tb.offset as i128, tb);
    let shown = |tb: &Table| ms(tb.durations.iter().map(|d| *d as i128).sum::<i128>(), tb);
    let video = tracks.iter().zip(&tables).find(|(t, _)| t.kind == TrackKind::Video).map(|(_, tb)| tb);
    let (zero, end) = match video {
        Some(v) => (begin(v), begin(v) + shown(v)),
        None => {
            (tables.iter().map(begin).min().unwrap_or(0), tables.iter().map(|t| begin(t) + shown(t)).max().unwrap_or(0))
        }
    };
    let mut traks = Vec::new();
    let mut longest = 0u64;
    for (i, (t, tb)) in tracks.iter().zip(&tables).enumerate() {
        let media_duration: u64 = tb.durations.iter().map(|d| *d as u64).sum();
        let (from, to) = (begin(tb).max(zero), (begin(tb) + shown(tb)).min(end));
        let delay_ms = (from - zero) as u64;
        let shown_ms = (to - from).max(0) as u64;
        let skip = (from - begin(tb)) * tb.timescale as i64 / 1000;
        longest = longest.max(delay_ms + shown_ms);
        let mut edits = Vec::new();
        if delay_ms > 0 {
            edits.push(ElstEntry { segment_duration: delay_ms, media_time: None, media_rate: 1.into() });
        }
        edits.push(ElstEntry {
            segment_duration: shown_ms,
            media_time: Some((tb.first_cto.max(0) as i64 + skip) as u64),
            media_rate: 1.into(),
        });
        let mut trak = match t.trak {
            Some(init) => init.clone(),
            None => remuxed_trak(t)?,
        };
        trak.tkhd.track_id = i as u32 + 1;
        trak.tkhd.duration = delay_ms + shown_ms;
        trak.tkhd.enabled = true;
        trak.tkhd.in_movie = true;
        trak.edts = Some(Edts { elst: Some(Elst { entries: edits }) });
        trak.mdia.mdhd.duration = media_duration;
        trak.mdia.mdhd.timescale = tb.timescale;
        let stsd = trak.mdia.minf.stbl.stsd.clone();
        trak.mdia.minf.stbl = stbl(stsd, tb, large);
        traks.push(trak);
    }
    let moov = Moov {
        mvhd: Mvhd {
            timescale: MOVIE_TIMESCALE,
            duration: longest,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: traks.len() as u32 + 1,
            ..Default::default()
        },
        trak: traks,
        ..Default::default()
    };
    Ok(Made { moov: encode(&moov)?, duration_ms: longest })
}

fn stbl(stsd: Stsd, tb: &Table, large: bool) -> Stbl {
    let mut stts: Vec<SttsEntry> = Vec::new();
    for d in &tb.durations {
        match stts.last_mut() {
            Some(e) if e.sample_delta == *d => e.sample_count += 1,
            _ => stts.push(SttsEntry { sample_count: 1, sample_delta: *d }),
        }
    }
    let ctts = tb.ctos.iter().any(|c| *c != 0).then(|| {
        let mut entries: Vec<CttsEntry> = Vec::new();
        for c in &tb.ctos {
            match entries.last_mut() {
                Some(e) if e.sample_offset == *c as i64 => e.sample_count += 1,
                _ => entries.push(CttsEntry { sample_count: 1, sample_offset: *c as i64 }),
            }
        }
        Ctts { entries }
    });
    let mut stsc: Vec<StscEntry> = Vec::new();
    for (i, (_, n)) in tb.chunks.iter().enumerate() {
        if stsc.last().is_none_or(|e| e.samples_per_chunk != *n) {
            stsc.push(StscEntry { first_chunk: i as u32 + 1, samples_per_chunk: *n, sample_description_index: 1 });
        }
    }
    let offsets = tb.chunks.iter().map(|c| c.0);
    Stbl {
        stsd,
        stts: Stts { entries: stts },
        ctts,
        // Omitted when every sample is a sync sample (audio).
        stss: (tb.sync.len() != tb.sizes.len()).then(|| Stss { entries: tb.sync.clone() }),
        stsc: Stsc { entries: stsc },
        stsz: Stsz { samples: StszSamples::Different { sizes: tb.sizes.clone() } },
        stco: (!large).then(|| Stco { entries: offsets.clone().map(|o| o as u32).collect() }),
        co64: large.then(|| Co64 { entries: offsets.collect() }),
        ..Default::default()
    }
}

/// A track for remuxed MPEG-TS: H.264 or AAC, described from the first run's configuration.
fn remuxed_trak(t: &TrackPlan) -> Result<Trak, String> {
    let config = Config::decode(&t.runs[0].1.config)?;
    let (codec, handler, width, height) = match &config {
        Config::Avc { sps, pps } => {
            let (w, h) = dimensions(sps).ok_or("the H.264 SPS cannot be read")?;
            let avc1 = Avc1 {
                visual: Visual { data_reference_index: 1, width: w, height: h, ..Default::default() },
                avcc: Avcc::new(sps, pps).map_err(|e| format!("H.264 configuration: {e}"))?,
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                spatial: None,
            };
            (Codec::Avc1(avc1), b"vide", w, h)
        }
        Config::Aac { object_type, freq_index, channels } => {
            let rate = config.sample_rate().ok_or("AAC with a reserved sampling frequency")?;
            let mp4a = Mp4a {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: *channels as u16,
                    sample_size: 16,
                    sample_rate: (rate.min(u16::MAX as u32) as u16).into(),
                },
                esds: Esds {
                    es_desc: EsDescriptor {
                        es_id: 2,
                        dec_config: DecoderConfig {
                            object_type_indication: 0x40,
                            stream_type: 5,
                            dec_specific: Some(DecoderSpecific {
                                profile: *object_type,
                                freq_index: *freq_index,
                                chan_conf: *channels,
                                raw: Vec::new(),
                            }),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                },
                btrt: None,
                taic: None,
            };
            (Codec::Mp4a(mp4a), b"soun", 0, 0)
        }
    };
    let video = handler == b"vide";
    Ok(Trak {
        tkhd: Tkhd {
            width: width.into(),
            height: height.into(),
            volume: if video { 0.into() } else { 1.into() },
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { language: "und".into(), ..Default::default() },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: if video { "VideoHandler" } else { "SoundHandler" }.into(),
            },
            minf: Minf {
                vmhd: video.then(Default::default),
                smhd: (!video).then(|| Smhd { balance: 0.into() }),
                dinf: Dinf { dref: Dref { entries: vec![Url { location: String::new() }.into()] } },
                stbl: Stbl { stsd: Stsd { codecs: vec![codec] }, ..Default::default() },
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

/// Width and height from an H.264 SPS (with its NAL header), as its cropping leaves them
/// (ITU-T H.264 7.3.2.1.1).
fn dimensions(nal: &[u8]) -> Option<(u16, u16)> {
    // The SPS syntax is read from its RBSP: emulation prevention bytes out.
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal.get(1..)? {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits { b: &rbsp, at: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = r.ue()?;
        if chroma == 3 {
            r.bits(1)?;
        }
        r.ue()?; // bit depths
        r.ue()?;
        r.bits(1)?;
        if r.bits(1)? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bits(1)? == 1 {
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..if i < 6 { 16 } else { 64 } {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bits(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bits(1)? == 1;
    if !frame_mbs_only {
        r.bits(1)?;
    }
    r.bits(1)?; // direct_8x8_inference
    let crop = if r.bits(1)? == 1 { [r.ue()?, r.ue()?, r.ue()?, r.ue()?] } else { [0; 4] };
    let field = if frame_mbs_only { 1 } else { 2 };
    let (cx, cy) = match chroma {
        0 | 3 => (1, field),
        2 => (2, field),
        _ => (2, 2 * field),
    };
    let w = (width_mbs * 16).checked_sub((crop[0] + crop[1]) * cx)?;
    let h = (height_units * 16 * field).checked_sub((crop[2] + crop[3]) * cy)?;
    Some((u16::try_from(w).ok()?, u16::try_from(h).ok()?))
}

/// A bit reader for exp-Golomb coded syntax.
struct Bits<'a> {
    b: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bits(&mut self, n: u32) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            let byte = *self.b.get(self.at / 8)?;
            v = v << 1 | ((byte >> (7 - self.at % 8)) & 1) as u64;
            self.at += 1;
        }
        Some(v)
    }
    fn ue(&mut self) -> Option<u64> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u64 << zeros) - 1 + self.bits(zeros)?)
    }
    fn se(&mut self) -> Option<i64> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sps_dimensions_with_cropping() {
        // libx264 640x360 High: 368 lines coded, 8 cropped.
        let sps = [
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
        ];
        assert_eq!(dimensions(&sps), Some((640, 360)));
        assert_eq!(dimensions(&sps[..4]), None);
        // The same picture in 4:4:4 (profile 244): no chroma subsampling in the crop units.
        let sps444 = [
            0x67, 0xf4, 0x00, 0x1e, 0x91, 0x9b, 0x28, 0x14, 0x05, 0xff, 0x13, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08,
            0x00, 0x00, 0x03, 0x01, 0xe0, 0x78, 0xb1, 0x6c, 0xb0,
        ];
        assert_eq!(dimensions(&sps444), Some((640, 360)));
    }

    /// A video run of 60 frames of 3000 ticks (90 kHz), at `start`.
    fn frames(start: i64, config: &[u8]) -> Run {
        use crate::mp4::samples::{Chunk, Sample};
        let mut r = Run::new(1, TrackKind::Video, 90_000, start);
        r.samples = (0..60).map(|i| Sample { size: 100, duration: 3000, cto: 0, sync: i == 0 }).collect();
        r.chunks = vec![Chunk { offset: 0, count: 60 }];
        r.config = config.to_vec();
        r
    }

    fn sps_config() -> Vec<u8> {
        let sps = vec![
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
        ];
        Config::Avc { sps, pps: vec![0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0] }.encode()
    }

    /// The stts entries of the file's (one) track: (count, delta).
    fn stts(h: &[u8]) -> Vec<(u32, u32)> {
        let at = h.windows(4).position(|w| w == b"stts").unwrap() + 8;
        let n = u32::from_be_bytes(h[at..at + 4].try_into().unwrap()) as usize;
        (0..n)
            .map(|i| {
                let e = at + 4 + 8 * i;
                (
                    u32::from_be_bytes(h[e..e + 4].try_into().unwrap()),
                    u32::from_be_bytes(h[e + 4..e + 8].try_into().unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn timestamps_run_on_across_a_discontinuity_and_meet_a_near_neighbour() {
        let config = sps_config();
        // An encoder restart: the second segment's clock starts far from where the first ended.
        // The timeline closes the jump; the first segment keeps its last frame's duration.
        let (a, b) = (frames(0, &config), frames(900_000_000, &config));
        let plan = TrackPlan { kind: TrackKind::Video, trak: None, runs: vec![(0, &a), (1, &b)] };
        let f = write(&[6000, 6000], &[plan]).unwrap();
        assert_eq!(stts(&f.header), vec![(120, 3000)]);
        assert_eq!(f.duration_ms, 4000);
        // A neighbour 1000 ticks late (within a frame): the last frame stretches to meet it.
        let c = frames(181_000, &config);
        let plan = TrackPlan { kind: TrackKind::Video, trak: None, runs: vec![(0, &a), (1, &c)] };
        let f = write(&[6000, 6000], &[plan]).unwrap();
        assert_eq!(stts(&f.header), vec![(59, 3000), (1, 4000), (60, 3000)]);
    }

    #[test]
    fn files_over_4_gib_use_64_bit_offsets_and_mdat_size() {
        use crate::mp4::samples::{Chunk, Sample};
        let sps = vec![
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
        ];
        let config = Config::Avc { sps, pps: vec![0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0] }.encode();
        const GIB: u64 = 1 << 30;
        let run = |start: i64, size: u64| {
            let mut r = Run::new(1, TrackKind::Video, 90_000, start);
            r.samples = vec![Sample { size: size as u32, duration: 3000, cto: 0, sync: true }];
            r.chunks = vec![Chunk { offset: 0, count: 1 }];
            r.config = config.clone();
            r
        };
        // Two 2 GiB pieces (the samples' bytes are never read: the header is made from tables).
        let (a, b) = (run(0, 2 * GIB - 1), run(3000, 2 * GIB - 1));
        let plan = TrackPlan { kind: TrackKind::Video, trak: None, runs: vec![(0, &a), (1, &b)] };
        let f = write(&[2 * GIB - 1, 2 * GIB - 1], &[plan]).unwrap();
        let h = &f.header;
        assert!(h.windows(4).any(|w| w == b"co64") && !h.windows(4).any(|w| w == b"stco"));
        let n = h.len();
        assert_eq!(&h[n - 16..n - 8], &[0, 0, 0, 1, b'm', b'd', b'a', b't'], "a 64-bit mdat size");
        assert_eq!(u64::from_be_bytes(h[n - 8..].try_into().unwrap()), 4 * GIB - 2 + 16);
        assert_eq!(f.len, n as u64 + 4 * GIB - 2);
        let co64 = h.windows(4).position(|w| w == b"co64").unwrap();
        let second = u64::from_be_bytes(h[co64 + 20..co64 + 28].try_into().unwrap());
        assert_eq!(second, n as u64 + 2 * GIB - 1);
        // Under 4 GiB: 32-bit offsets.
        let small = TrackPlan { kind: TrackKind::Video, trak: None, runs: vec![(0, &a)] };
        assert!(write(&[2 * GIB - 1], &[small]).unwrap().header.windows(4).any(|w| w == b"stco"));
    }
}
