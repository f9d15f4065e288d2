//! ISO-BMFF / CMAF box parsing for pushed ingest.
//!
//! Encoders push fragmented MP4 over chunked HTTP: an init segment (ftyp + moov) per track, then
//! media as `[styp] ([prft] moof mdat)*` (DASH) or as one endless `ftyp moov (moof mdat)*` body
//! (DASH-IF Interface 1). HTTP chunk boundaries mean nothing, so fragments are found by walking
//! boxes. [`parse_init`] reads what a track is; [`Splitter`] finds fragments in a byte stream
//! without keeping media payload.
//!
//! Std only, and no input may panic: every read is bounds-checked and every size is checked
//! against the bytes that are really there before it is trusted.

use std::fmt::Write as _;

/// Largest moof the splitter will buffer; real ones are a few KiB, so bigger means garbage.
const MAX_MOOF: u64 = 16 << 20;
/// Largest prft body accepted (a v1 prft body is 24 bytes).
const MAX_PRFT: u64 = 64;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;
/// `sample_is_non_sync_sample` in ISO-BMFF sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// What an init segment says about its (single) track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    /// tkhd track_ID, which the fragments' tfhd refer to.
    pub track_id: u32,
    /// What the handler (hdlr) says the track carries.
    pub kind: TrackKind,
    /// mdhd timescale: ticks per second of every media time of this track (never 0).
    pub timescale: u32,
    /// RFC 6381 codec string (e.g. "avc1.64001f", "mp4a.40.2"); None if not recognised.
    pub codec: Option<String>,
    /// Coded width from the visual sample entry.
    pub width: Option<u32>,
    /// Coded height from the visual sample entry.
    pub height: Option<u32>,
    /// Sample rate in Hz from the audio sample entry.
    pub sample_rate: Option<u32>,
    /// Channel count from the audio sample entry.
    pub channels: Option<u16>,
    /// trex default_sample_duration (None when absent or 0); pass it to [`Splitter::new`].
    pub default_sample_duration: Option<u32>,
    /// mdhd ISO-639-2/T language; None for "und" or an invalid code.
    pub language: Option<String>,
}

/// The kind of media a track carries, from its hdlr handler_type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// 'vide'
    Video,
    /// 'soun'
    Audio,
    /// 'text', 'subt' or 'sbtl'
    Subtitles,
    /// Any other handler.
    Other,
}

/// One fragment: everything from the first box after the previous fragment's mdat (styp, prft,
/// emsg... included) through its mdat, as a byte range of the stream fed to the splitter.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// Offset of the fragment's first byte in the fed stream.
    pub start: u64,
    /// Offset just past the end of its mdat.
    pub end: u64,
    /// tfdt baseMediaDecodeTime of the first traf.
    pub base_decode_time: u64,
    /// Sum of sample durations, in the track's timescale.
    pub duration: u64,
    /// Number of samples in the first traf.
    pub samples: u32,
    /// Whether the first sample is a sync sample (a fragment can be joined here).
    pub starts_with_key: bool,
    /// NTP timestamp of the prft that preceded this fragment's moof, if any.
    pub prft_ntp: Option<u64>,
    /// That prft's media_time (ffmpeg writes a negative value as two's complement for AAC priming).
    pub prft_media_time: Option<u64>,
}

/// NTP 64-bit timestamp -> milliseconds since the Unix epoch.
///
/// Follows RFC 4330's era rule: seconds with the top bit clear are taken to be in era 1
/// (from February 2036), since no live encoder stamps 1900-1968.
pub fn ntp_to_unix_ms(ntp: u64) -> i64 {
    let mut secs = ntp >> 32;
    if secs & 0x8000_0000 == 0 {
        secs += 1 << 32;
    }
    let frac_ms = ((ntp & 0xffff_ffff) * 1000) >> 32;
    // secs < 2^33 and frac_ms < 1000, so the casts are lossless.
    (secs as i64 - NTP_UNIX_OFFSET) * 1000 + frac_ms as i64
}

// ---------------------------------------------------------------------------------------------
// Byte helpers

/// Big-endian value of up to 8 bytes.
fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |a, &x| (a << 8) | u64::from(x))
}

/// Big-endian value of `n` bytes at `at`, if they are there.
fn be_at(b: &[u8], at: usize, n: usize) -> Option<u64> {
    b.get(at..at.checked_add(n)?).map(be)
}

/// A box type for messages; unprintable bytes shown as '?'.
fn fourcc(t: &[u8; 4]) -> String {
    t.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '?' }).collect()
}

/// Real box types are printable ASCII; anything else means we are not looking at a box header.
fn check_type(t: &[u8; 4], at: u64) -> Result<(), String> {
    if t.iter().all(|b| (0x20..0x7f).contains(b)) {
        Ok(())
    } else {
        Err(format!("bytes at {at} are not a box: type {:02x?} is not printable", t))
    }
}

/// A box inside a buffer, with absolute offsets for error messages.
#[derive(Clone, Copy)]
struct Bx<'a> {
    typ: [u8; 4],
    off: u64,
    body: &'a [u8],
    body_off: u64,
}

/// Splits `data` (which starts at absolute offset `base`) into boxes. Strict mode fails on the
/// first malformed box; lenient mode (for sample-entry extensions, which some muxers pad with
/// zeros) stops there and keeps what it has.
fn boxes(data: &[u8], base: u64, strict: bool) -> Result<Vec<Bx<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut off = base;
    while !rest.is_empty() {
        match one_box(rest, off) {
            Ok((bx, len)) => {
                out.push(bx);
                rest = rest.get(len..).unwrap_or_default();
                off += len as u64;
            }
            Err(e) if strict => return Err(e),
            Err(_) => break,
        }
    }
    Ok(out)
}

/// The box at the start of `rest`, and its total length.
fn one_box(rest: &[u8], off: u64) -> Result<(Bx<'_>, usize), String> {
    let short = || format!("{} bytes at byte {off} are too short for a box header", rest.len());
    let h = rest.get(..8).ok_or_else(short)?;
    let typ = [h[4], h[5], h[6], h[7]];
    check_type(&typ, off)?;
    let name = fourcc(&typ);
    let (size, hl) = match be(&h[..4]) {
        0 => (rest.len() as u64, 8), // "to the end of the enclosing data": fine in a whole file
        1 => (be(rest.get(8..16).ok_or_else(short)?), 16),
        s => (s, 8),
    };
    if size < hl {
        return Err(format!("box '{name}' at byte {off} has invalid size {size}"));
    }
    let len = usize::try_from(size).ok().filter(|&l| l <= rest.len());
    let len = len.ok_or_else(|| format!("box '{name}' at byte {off} runs past the end"))?;
    let body = rest.get(hl as usize..len).unwrap_or_default();
    Ok((Bx { typ, off, body, body_off: off + hl }, len))
}

/// The first box of a type in a list.
fn find<'a>(list: &[Bx<'a>], t: &[u8; 4]) -> Option<Bx<'a>> {
    list.iter().find(|b| &b.typ == t).copied()
}

/// The first box of a type, or an error naming what is missing where.
fn need<'a>(list: &[Bx<'a>], t: &[u8; 4], parent: &str) -> Result<Bx<'a>, String> {
    find(list, t).ok_or_else(|| format!("{parent} has no {} box", fourcc(t)))
}

/// Bounds-checked cursor over a box body; truncation errors name the box.
struct Rd<'a> {
    b: &'a [u8],
    p: usize,
    typ: [u8; 4],
    off: u64,
}

impl<'a> Rd<'a> {
    fn new(bx: &Bx<'a>) -> Self {
        Rd { b: bx.body, p: 0, typ: bx.typ, off: bx.off }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self.p.checked_add(n).and_then(|e| self.b.get(self.p..e));
        let s = s.ok_or_else(|| format!("box '{}' at byte {} is truncated", fourcc(&self.typ), self.off))?;
        self.p += n;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.bytes(n).map(|_| ())
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(be(self.bytes(1)?) as u8)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(be(self.bytes(4)?) as u32)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(be(self.bytes(8)?))
    }
    /// A u32 that is only there when its flag is set.
    fn opt_u32(&mut self, present: bool) -> Result<Option<u32>, String> {
        if present {
            self.u32().map(Some)
        } else {
            Ok(None)
        }
    }
    fn left(&self) -> usize {
        self.b.len().saturating_sub(self.p)
    }
}

// ---------------------------------------------------------------------------------------------
// Init segments

/// Parses ftyp+moov (an init segment). Errors (with the reason, e.g. "no moov box", "moov has 2
/// tracks; one track per init segment", "box 'trak' at byte 123 runs past the end") on garbage,
/// truncation, or a track count other than one.
pub fn parse_init(data: &[u8]) -> Result<TrackInfo, String> {
    let top = boxes(data, 0, true)?;
    let moov = find(&top, b"moov").ok_or("no moov box")?;
    let mk = boxes(moov.body, moov.body_off, true)?;
    let traks: Vec<Bx> = mk.iter().filter(|b| &b.typ == b"trak").copied().collect();
    let trak = match traks.as_slice() {
        [t] => *t,
        [] => return Err("moov has no tracks".into()),
        many => return Err(format!("moov has {} tracks; one track per init segment", many.len())),
    };
    let tk = boxes(trak.body, trak.body_off, true)?;

    let mut r = Rd::new(&need(&tk, b"tkhd", "trak")?);
    let v = r.u8()?;
    r.skip(3 + if v == 1 { 16 } else { 8 })?; // flags, creation and modification times
    let track_id = r.u32()?;

    let mdia = need(&tk, b"mdia", "trak")?;
    let md = boxes(mdia.body, mdia.body_off, true)?;
    let mdhd = need(&md, b"mdhd", "mdia")?;
    let mut r = Rd::new(&mdhd);
    let v = r.u8()?;
    r.skip(3 + if v == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    r.skip(if v == 1 { 8 } else { 4 })?; // duration
    let language = unpack_language(be(r.bytes(2)?) as u16);
    if timescale == 0 {
        return Err(format!("mdhd at byte {} has timescale 0", mdhd.off));
    }

    let mut r = Rd::new(&need(&md, b"hdlr", "mdia")?);
    r.skip(8)?; // FullBox header, pre_defined
    let kind = match r.bytes(4)? {
        b"vide" => TrackKind::Video,
        b"soun" => TrackKind::Audio,
        b"text" | b"subt" | b"sbtl" => TrackKind::Subtitles,
        _ => TrackKind::Other,
    };

    let mut info = TrackInfo {
        track_id,
        kind,
        timescale,
        codec: None,
        width: None,
        height: None,
        sample_rate: None,
        channels: None,
        default_sample_duration: None,
        language,
    };

    // mdia/minf/stbl/stsd: the first sample entry describes the codec.
    let mut level = md;
    for t in [b"minf", b"stbl"] {
        let Some(b) = find(&level, t) else { break };
        level = boxes(b.body, b.body_off, true)?;
    }
    if let Some(stsd) = find(&level, b"stsd") {
        let entries = stsd.body.get(8..).unwrap_or_default(); // FullBox header, entry_count
        if let Some(e) = boxes(entries, stsd.body_off + 8, true)?.first() {
            sample_entry(&mut info, e);
        }
    }

    // mvex/trex: the fallback sample duration for fragments whose tfhd/trun give none.
    if let Some(mvex) = find(&mk, b"mvex") {
        for trex in boxes(mvex.body, mvex.body_off, true)?.iter().filter(|b| &b.typ == b"trex") {
            let mut r = Rd::new(trex);
            r.skip(4)?;
            if r.u32()? == track_id {
                r.skip(4)?; // default_sample_description_index
                info.default_sample_duration = Some(r.u32()?).filter(|&d| d != 0);
            }
        }
    }
    Ok(info)
}

/// mdhd language: three 5-bit letters offset by 0x60; "und" and non-letters mean "not known".
fn unpack_language(v: u16) -> Option<String> {
    let s: String = [10u16, 5, 0].iter().map(|sh| char::from((((v >> sh) & 0x1f) as u8).wrapping_add(0x60))).collect();
    Some(s).filter(|s| s != "und" && s.chars().all(|c| c.is_ascii_lowercase()))
}

/// Fills dimensions / audio format and the codec string from the first stsd entry.
fn sample_entry(info: &mut TrackInfo, e: &Bx) {
    let b = e.body;
    let small = |x: Option<u64>| x.filter(|&v| v != 0);
    // Where the entry's child boxes start depends on the sample entry layout (ISO 14496-12 12.x).
    let kids_at = match info.kind {
        TrackKind::Video => {
            info.width = small(be_at(b, 24, 2)).map(|v| v as u32);
            info.height = small(be_at(b, 26, 2)).map(|v| v as u32);
            78
        }
        TrackKind::Audio => {
            info.channels = small(be_at(b, 16, 2)).map(|v| v as u16);
            info.sample_rate = small(be_at(b, 24, 4).map(|v| v >> 16)).map(|v| v as u32);
            // A QuickTime v1 sound description has 16 more fixed bytes (v2 is not CMAF; ignored).
            if be_at(b, 8, 2) == Some(1) {
                44
            } else {
                28
            }
        }
        _ => 8,
    };
    let kids = match b.get(kids_at..) {
        Some(k) => boxes(k, e.body_off + kids_at as u64, false).unwrap_or_default(),
        None => Vec::new(),
    };
    info.codec = codec_string(&e.typ, &kids);
    // ffmpeg (mp4 mode) writes a fixed channelcount of 2 for AAC, so the AudioSpecificConfig is
    // the better source; its rate is only a fallback (with SBR it is the core's half rate).
    if &e.typ == b"mp4a" {
        let asc = find(&kids, b"esds").and_then(|e| esds_config(e.body)).and_then(|c| c.1).and_then(parse_asc);
        if let Some((_, rate, channels)) = asc {
            info.channels = channels.or(info.channels);
            info.sample_rate = info.sample_rate.or(rate);
        }
    }
}

/// RFC 6381 codec string from the sample entry format and its configuration box.
fn codec_string(fmt: &[u8; 4], kids: &[Bx]) -> Option<String> {
    let conf = |t: &[u8; 4]| find(kids, t).map(|b| b.body);
    let f = fourcc(fmt);
    match fmt {
        b"avc1" | b"avc3" => {
            let &[p, c, l] = conf(b"avcC")?.get(1..4)? else { return None };
            Some(format!("{f}.{p:02x}{c:02x}{l:02x}"))
        }
        b"hvc1" | b"hev1" => hevc_string(&f, conf(b"hvcC")?),
        b"mp4a" => esds_codec(conf(b"esds")?),
        b"ac-3" | b"ec-3" | b"wvtt" | b"stpp" => Some(f),
        b"Opus" => Some("opus".into()),
        b"fLaC" => Some("flac".into()),
        _ => None,
    }
}

/// "hvc1.<space><profile>.<compat reversed>.<tier><level>[.<constraint bytes>]" (14496-15 E.3).
fn hevc_string(f: &str, c: &[u8]) -> Option<String> {
    let b1 = *c.get(1)?;
    let compat = be(c.get(2..6)?) as u32;
    let cons = c.get(6..12)?;
    let level = *c.get(12)?;
    let space = ["", "A", "B", "C"].get(usize::from(b1 >> 6))?;
    let tier = if b1 & 0x20 != 0 { 'H' } else { 'L' };
    let mut s = format!("{f}.{space}{}.{:X}.{tier}{level}", b1 & 0x1f, compat.reverse_bits());
    let used = cons.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1); // trailing zeros omitted
    for x in cons.iter().take(used) {
        let _ = write!(s, ".{x:02X}");
    }
    Some(s)
}

/// An MPEG-4 descriptor header: tag and (1-4 byte, 7 bits each) length.
fn descriptor(b: &[u8], p: &mut usize) -> Option<(u8, usize)> {
    let tag = *b.get(*p)?;
    *p += 1;
    let mut len = 0usize;
    for _ in 0..4 {
        let x = *b.get(*p)?;
        *p += 1;
        len = (len << 7) | usize::from(x & 0x7f);
        if x & 0x80 == 0 {
            break;
        }
    }
    Some((tag, len))
}

/// objectTypeIndication and DecoderSpecificInfo (the AudioSpecificConfig for AAC) of an esds body.
fn esds_config(b: &[u8]) -> Option<(u8, Option<&[u8]>)> {
    let mut p = 4; // FullBox header
    if descriptor(b, &mut p)?.0 != 0x03 {
        return None; // not an ES_Descriptor
    }
    let flags = u32::from(*b.get(p + 2)?);
    p += 3 + on(flags, 0x80, 2); // ES_ID, flags, dependsOn_ES_ID
    if flags & 0x40 != 0 {
        p += 1 + usize::from(*b.get(p)?); // URL
    }
    p += on(flags, 0x20, 2); // OCR_ES_Id
    if descriptor(b, &mut p)?.0 != 0x04 {
        return None; // not a DecoderConfigDescriptor
    }
    let oti = *b.get(p)?;
    p += 13; // oti, streamType, bufferSizeDB, maxBitrate, avgBitrate
    match descriptor(b, &mut p) {
        Some((0x05, len)) => Some((oti, b.get(p..p.saturating_add(len)).or_else(|| b.get(p..)))),
        _ => Some((oti, None)),
    }
}

/// "mp4a.<objectTypeIndication>[.<audioObjectType>]" from an esds body (14496-1 / 14496-3).
fn esds_codec(b: &[u8]) -> Option<String> {
    match esds_config(b)? {
        (0x40, Some(asc)) => Some(format!("mp4a.40.{}", parse_asc(asc)?.0)),
        (0x40, None) => Some("mp4a.40".into()),
        (oti, _) => Some(format!("mp4a.{oti:02x}")),
    }
}

/// audioObjectType, sampling frequency and channel count from an AudioSpecificConfig (14496-3
/// 1.6.2.1). The fields we need fit in its first 8 bytes.
fn parse_asc(a: &[u8]) -> Option<(u8, Option<u32>, Option<u16>)> {
    const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    let n = a.len().min(8);
    if n == 0 {
        return None;
    }
    let bits = be(a.get(..n)?) << (64 - 8 * n as u32);
    let mut pos = 0u32;
    let mut take = |k: u32| -> Option<u64> {
        if pos + k > 8 * n as u32 {
            return None;
        }
        let v = (bits << pos) >> (64 - k);
        pos += k;
        Some(v)
    };
    let mut aot = take(5)?;
    if aot == 31 {
        aot = 32 + take(6)?; // escape: 5 bits of 31, then 6 more
    }
    let rate = match take(4) {
        Some(15) => take(24).map(|r| r as u32),
        Some(i) => RATES.get(i as usize).copied(),
        None => None,
    };
    let channels = match (take(4), aot) {
        (Some(1), 29) => Some(2), // parametric stereo: a mono core decodes to stereo
        (Some(c @ 1..=6), _) => Some(c as u16),
        (Some(7), _) => Some(8),
        _ => None,
    };
    Some((aot as u8, rate, channels))
}

// ---------------------------------------------------------------------------------------------
// Fragment splitting

/// What the splitter is in the middle of.
#[derive(Default)]
enum State {
    /// Collecting a box header into `Splitter::hdr`.
    #[default]
    Header,
    /// Buffering a box body we must parse (moof, prft).
    Collect { typ: [u8; 4], start: u64, body_off: u64, buf: Vec<u8>, left: u64 },
    /// Counting down a body we do not keep (mdat payload, styp, free...).
    Skip { left: u64, mdat: bool },
}

/// A parsed moof waiting for its mdat.
struct Moof {
    start: u64,
    base_decode_time: u64,
    duration: u64,
    samples: u32,
    key: bool,
    prft: Option<(u64, u64)>,
}

/// Incremental splitter: feed bytes as they arrive; it yields complete fragments as soon as their
/// mdat is complete. It keeps no media (the caller keeps the bytes): only offsets, a pending box
/// header and the current moof.
#[derive(Default)]
pub struct Splitter {
    trex_duration: Option<u32>,
    pos: u64,
    hdr: [u8; 16],
    hdr_len: usize,
    box_start: u64,
    state: State,
    failed: Option<String>,
    frag_start: Option<u64>,
    prft: Option<(u64, u64)>,
    moof: Option<Moof>,
    seen_moof: bool,
    ftyp_at: Option<u64>,
    init: Option<(u64, u64)>,
}

impl Splitter {
    /// A splitter for one track; `default_sample_duration` is the init segment's trex default,
    /// used when neither tfhd nor trun gives durations.
    pub fn new(default_sample_duration: Option<u32>) -> Splitter {
        Splitter { trex_duration: default_sample_duration, ..Splitter::default() }
    }

    /// Feeds the next bytes. Returns the fragments completed by them (possibly several, possibly
    /// none). A box that cannot be a box (size < 8 and not 1, size 0, a moof over 16 MiB, a type
    /// with non-printable bytes, an mdat with no moof before it, a moof that does not parse) is
    /// an error with its byte offset; after an error the splitter stays failed.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Fragment>, String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        if let Err(e) = self.feed(data, &mut out) {
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(out)
    }

    /// Whether the bytes fed so far end exactly between boxes with no moof waiting for its mdat
    /// (a body that ends anywhere else was cut). False once the splitter has failed.
    pub fn at_boundary(&self) -> bool {
        self.failed.is_none() && matches!(self.state, State::Header) && self.hdr_len == 0 && self.moof.is_none()
    }

    /// Byte range of the leading ftyp+moov (from ftyp, or from moov if there is no ftyp), if the
    /// stream had one before its first moof: the init segment of an Interface 1 stream.
    pub fn init_range(&self) -> Option<(u64, u64)> {
        self.init
    }

    fn feed(&mut self, mut data: &[u8], out: &mut Vec<Fragment>) -> Result<(), String> {
        while !data.is_empty() {
            let n = match &mut self.state {
                State::Header => {
                    if self.hdr_len == 0 {
                        self.box_start = self.pos;
                    }
                    // A 32-bit size of 1 means a 64-bit largesize follows the type.
                    let need = if self.hdr_len >= 8 && be(&self.hdr[..4]) == 1 { 16 } else { 8 };
                    let n = (need - self.hdr_len).min(data.len());
                    self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[..n]);
                    self.hdr_len += n;
                    n
                }
                State::Collect { buf, left, .. } => {
                    let n = take(*left, data.len());
                    buf.extend_from_slice(&data[..n]);
                    *left -= n as u64;
                    n
                }
                State::Skip { left, .. } => {
                    let n = take(*left, data.len());
                    *left -= n as u64;
                    n
                }
            };
            self.pos += n as u64;
            data = &data[n..];
            self.step(out)?;
        }
        Ok(())
    }

    /// Acts on a completed header or body, if one just completed.
    fn step(&mut self, out: &mut Vec<Fragment>) -> Result<(), String> {
        if matches!(self.state, State::Header) {
            if self.hdr_len < 8 || (be(&self.hdr[..4]) == 1 && self.hdr_len < 16) {
                return Ok(());
            }
            self.hdr_len = 0;
            self.begin_box()?;
        }
        // A body may be complete right away (e.g. an empty mdat), so check after begin_box too.
        let done = match &self.state {
            State::Collect { left, .. } | State::Skip { left, .. } => *left == 0,
            State::Header => false,
        };
        if !done {
            return Ok(());
        }
        match std::mem::replace(&mut self.state, State::Header) {
            State::Collect { typ, start, body_off, buf, .. } if &typ == b"moof" => {
                let mut m = parse_moof(&buf, start, body_off, self.trex_duration)?;
                m.prft = self.prft.take();
                self.moof = Some(m);
                self.seen_moof = true;
            }
            State::Collect { typ, start, buf, .. } => {
                let bx = Bx { typ, off: start, body: &buf, body_off: 0 };
                let mut r = Rd::new(&bx);
                let v = r.u8()?;
                r.skip(7)?; // flags, reference_track_ID
                let ntp = r.u64()?;
                let media_time = if v == 0 { u64::from(r.u32()?) } else { r.u64()? };
                self.prft = Some((ntp, media_time));
            }
            State::Skip { mdat: true, .. } => {
                let m = self.moof.take().ok_or("internal: mdat without moof")?;
                out.push(Fragment {
                    start: self.frag_start.take().unwrap_or(m.start),
                    end: self.pos,
                    base_decode_time: m.base_decode_time,
                    duration: m.duration,
                    samples: m.samples,
                    starts_with_key: m.key,
                    prft_ntp: m.prft.map(|p| p.0),
                    prft_media_time: m.prft.map(|p| p.1),
                });
                self.prft = None; // a prft between moof and mdat describes nothing we know
            }
            State::Skip { .. } | State::Header => {}
        }
        Ok(())
    }

    /// Validates a complete header and decides what to do with the body.
    fn begin_box(&mut self) -> Result<(), String> {
        let at = self.box_start;
        let typ = [self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]];
        check_type(&typ, at)?;
        let name = fourcc(&typ);
        let (size, hl) = match be(&self.hdr[..4]) {
            0 => return Err(format!("box '{name}' at byte {at} has size 0 (to end of stream); not streamable")),
            1 => (be(&self.hdr[8..16]), 16),
            s => (s, 8),
        };
        if size < hl {
            return Err(format!("box '{name}' at byte {at} has invalid size {size}"));
        }
        let left = size - hl;
        let collect = |limit: u64| -> Result<State, String> {
            if size > limit {
                return Err(format!("box '{name}' at byte {at} is {size} bytes; the limit is {limit}"));
            }
            Ok(State::Collect { typ, start: at, body_off: at + hl, buf: Vec::new(), left })
        };
        self.state = match &typ {
            b"moof" => {
                if self.moof.is_some() {
                    return Err(format!("moof at byte {at} follows a moof that has no mdat"));
                }
                self.frag_start.get_or_insert(at);
                collect(MAX_MOOF)?
            }
            b"prft" => {
                self.frag_start.get_or_insert(at);
                collect(MAX_PRFT + hl)?
            }
            b"mdat" => {
                if self.moof.is_none() {
                    return Err(format!("mdat at byte {at} has no moof before it"));
                }
                State::Skip { left, mdat: true }
            }
            b"ftyp" | b"moov" => {
                if self.moof.is_some() {
                    return Err(format!("'{name}' at byte {at} sits between a moof and its mdat"));
                }
                // Init boxes belong to no fragment; only the leading ones are the stream's init.
                self.frag_start = None;
                self.prft = None;
                if !self.seen_moof {
                    if &typ == b"ftyp" {
                        self.ftyp_at = Some(at);
                    } else {
                        self.init = Some((self.ftyp_at.unwrap_or(at), at.saturating_add(size)));
                    }
                }
                State::Skip { left, mdat: false }
            }
            _ => {
                self.frag_start.get_or_insert(at);
                State::Skip { left, mdat: false }
            }
        };
        Ok(())
    }
}

/// `n` if `bit` is set in `flags`: the size of an optional field.
fn on(flags: u32, bit: u32, n: usize) -> usize {
    if flags & bit != 0 {
        n
    } else {
        0
    }
}

/// How many of `avail` bytes belong to a body with `left` bytes to go.
fn take(left: u64, avail: usize) -> usize {
    usize::try_from(left).map_or(avail, |l| l.min(avail))
}

/// Timing of a moof's first traf: tfdt, summed durations, sample count, and whether the first
/// sample is a sync sample.
fn parse_moof(body: &[u8], at: u64, body_off: u64, trex_duration: Option<u32>) -> Result<Moof, String> {
    let kids = boxes(body, body_off, true)?;
    let where_ = format!("moof at byte {at}");
    let traf = need(&kids, b"traf", &where_)?;
    let tk = boxes(traf.body, traf.body_off, true)?;

    let mut r = Rd::new(&need(&tk, b"tfhd", &where_)?);
    let fl = r.u32()? & 0xff_ffff;
    r.skip(4 + on(fl, 0x01, 8) + on(fl, 0x02, 4))?; // track_ID, base_data_offset, sample_description_index
    let default_duration = r.opt_u32(fl & 0x08 != 0)?.or(trex_duration);
    r.skip(on(fl, 0x10, 4))?; // default_sample_size
    let default_flags = r.opt_u32(fl & 0x20 != 0)?;

    let mut r = Rd::new(&need(&tk, b"tfdt", &where_)?);
    let v = r.u8()?;
    r.skip(3)?;
    let base_decode_time = if v == 1 { r.u64()? } else { u64::from(r.u32()?) };

    let (mut duration, mut samples, mut key) = (0u64, 0u32, None);
    for trun in tk.iter().filter(|b| &b.typ == b"trun") {
        let mut r = Rd::new(trun);
        let fl = r.u32()? & 0xff_ffff;
        let count = r.u32()?;
        r.skip(on(fl, 0x01, 4))?; // data_offset
        let first_flags = r.opt_u32(fl & 0x04 != 0)?;
        let per_sample = on(fl, 0x100, 4) + on(fl, 0x200, 4) + on(fl, 0x400, 4) + on(fl, 0x800, 4);
        // Check the claim against the bytes present before looping, so a lying count cannot spin.
        if u64::from(count) * per_sample as u64 > r.left() as u64 {
            return Err(format!("trun at byte {} claims {count} samples in {} bytes", trun.off, r.left()));
        }
        let mut sample0_flags = None;
        for i in 0..if per_sample > 0 { count } else { 0 } {
            let d = r.opt_u32(fl & 0x100 != 0)?;
            r.skip(on(fl, 0x200, 4))?; // sample_size
            let f = r.opt_u32(fl & 0x400 != 0)?;
            r.skip(on(fl, 0x800, 4))?; // composition time offset
            duration = duration.saturating_add(u64::from(d.unwrap_or(0)));
            if i == 0 {
                sample0_flags = f;
            }
        }
        if fl & 0x100 == 0 && count > 0 {
            let d = default_duration.ok_or_else(|| {
                format!("trun at byte {} gives no sample durations and neither tfhd nor trex has a default", trun.off)
            })?;
            duration = duration.saturating_add(u64::from(count) * u64::from(d));
        }
        if key.is_none() && count > 0 {
            // No flags anywhere (typical audio) means every sample is a sync sample.
            let f = first_flags.or(sample0_flags).or(default_flags);
            key = Some(!matches!(f, Some(f) if f & NON_SYNC != 0));
        }
        samples = samples.saturating_add(count);
    }
    Ok(Moof { start: at, base_decode_time, duration, samples, key: key.unwrap_or(false), prft: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(t: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&(body.len() as u32 + 8).to_be_bytes()[..], t, body].concat()
    }
    /// A box with a 64-bit largesize header.
    fn big(t: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&1u32.to_be_bytes()[..], t, &(body.len() as u64 + 16).to_be_bytes(), body].concat()
    }
    fn full(t: &[u8; 4], v: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        bx(t, &[&((u32::from(v) << 24) | flags).to_be_bytes()[..], body].concat())
    }
    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn trak(handler: &[u8; 4], timescale: u32, lang: u16, entry: &[u8]) -> Vec<u8> {
        let tkhd = full(b"tkhd", 0, 3, &[&[0u8; 8][..], &7u32.to_be_bytes(), &[0u8; 68]].concat());
        let mdhd =
            full(b"mdhd", 0, 0, &[&[0u8; 8][..], &words(&[timescale, 0]), &lang.to_be_bytes(), &[0, 0]].concat());
        let hdlr = full(b"hdlr", 0, 0, &[&[0u8; 4][..], handler, &[0u8; 12], b"h\0"].concat());
        let stsd = full(b"stsd", 0, 0, &[&1u32.to_be_bytes()[..], entry].concat());
        let minf = bx(b"minf", &bx(b"stbl", &stsd));
        bx(b"trak", &[tkhd, bx(b"mdia", &[mdhd, hdlr, minf].concat())].concat())
    }
    fn init(traks: &[Vec<u8>], trex_duration: u32) -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"iso6\0\0\0\0iso6cmfc");
        let mvex = bx(b"mvex", &full(b"trex", 0, 0, &words(&[7, 1, trex_duration, 0, 0])));
        let moov = bx(b"moov", &[full(b"mvhd", 0, 0, &[0; 96]), traks.concat(), mvex].concat());
        [ftyp, moov].concat()
    }
    fn avc1(w: u16, h: u16) -> Vec<u8> {
        let mut b = vec![0u8; 78];
        b[7] = 1;
        b[24..26].copy_from_slice(&w.to_be_bytes());
        b[26..28].copy_from_slice(&h.to_be_bytes());
        b.extend(bx(b"avcC", &[1, 0x64, 0x00, 0x1f, 0xff, 0xe0, 0]));
        b.extend([0, 0, 0, 0]); // trailing padding some muxers write
        bx(b"avc1", &b)
    }
    fn esds(asc: &[u8]) -> Vec<u8> {
        let dsi = [&[0x05, asc.len() as u8][..], asc].concat();
        let dcd = [&[0x04, 13 + dsi.len() as u8, 0x40, 0x15, 0, 0, 0][..], &words(&[96000, 96000]), &dsi].concat();
        // 4-byte descriptor lengths, as ffmpeg writes them.
        let es = [&[0x03, 0x80, 0x80, 0x80, 3 + dcd.len() as u8 + 3, 0, 1, 0][..], &dcd, &[0x06, 1, 2]].concat();
        full(b"esds", 0, 0, &es)
    }
    fn mp4a() -> Vec<u8> {
        let mut b = vec![0u8; 28];
        b[7] = 1;
        b[17] = 2;
        b[19] = 16;
        b[24..28].copy_from_slice(&(48000u32 << 16).to_be_bytes());
        b.extend(esds(&[0x11, 0x90]));
        bx(b"mp4a", &b)
    }

    #[test]
    fn init_video_and_audio() {
        let v = parse_init(&init(&[trak(b"vide", 12800, 0x55c4, &avc1(320, 180))], 512)).unwrap();
        let want = TrackInfo {
            track_id: 7,
            kind: TrackKind::Video,
            timescale: 12800,
            codec: Some("avc1.64001f".into()),
            width: Some(320),
            height: Some(180),
            sample_rate: None,
            channels: None,
            default_sample_duration: Some(512),
            language: None, // "und"
        };
        assert_eq!(v, want);
        let a = parse_init(&init(&[trak(b"soun", 48000, 0x41f2, &mp4a())], 0)).unwrap();
        let (kind, codec, lang) = (TrackKind::Audio, Some("mp4a.40.2".into()), Some("por".into()));
        let want = TrackInfo { kind, timescale: 48000, codec, width: None, height: None, language: lang, ..want };
        // trex default 0 means "none"
        assert_eq!(a, TrackInfo { sample_rate: Some(48000), channels: Some(2), default_sample_duration: None, ..want });
    }

    #[test]
    fn codec_strings() {
        // Escaped audioObjectType: 31 then 6 bits (10) => 42 (USAC).
        assert_eq!(esds_codec(&esds(&[0xf9, 0x40])[8..]).as_deref(), Some("mp4a.40.42"));
        let hvcc = [1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93];
        assert_eq!(hevc_string("hvc1", &hvcc).as_deref(), Some("hvc1.1.6.L93.B0"));
        let sub =
            parse_init(&init(&[trak(b"text", 1000, 0x55c4, &bx(b"wvtt", &[0, 0, 0, 0, 0, 0, 0, 1]))], 0)).unwrap();
        assert_eq!((sub.kind, sub.codec.as_deref()), (TrackKind::Subtitles, Some("wvtt")));
    }

    #[test]
    fn init_errors() {
        let v = trak(b"vide", 12800, 0x55c4, &avc1(320, 180));
        let good = init(std::slice::from_ref(&v), 0);
        for cut in [1, 7, 8, 30, good.len() / 2, good.len() - 1] {
            assert!(parse_init(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_init(&good[..good.len() - 1]).unwrap_err().contains("runs past the end"));
        assert!(parse_init(b"\x00\x00\x00\x10\xff\xfe\x00\x01garbage!").is_err());
        assert!(parse_init(&[0u8; 64]).is_err());
        assert_eq!(parse_init(&bx(b"ftyp", b"iso6")).unwrap_err(), "no moov box");
        assert_eq!(parse_init(&init(&[v.clone(), v], 0)).unwrap_err(), "moov has 2 tracks; one track per init segment");
        assert_eq!(parse_init(&init(&[], 0)).unwrap_err(), "moov has no tracks");
        assert!(parse_init(&init(&[trak(b"vide", 0, 0, &avc1(1, 1))], 0)).unwrap_err().contains("timescale 0"));
    }

    #[test]
    fn ntp_conversion() {
        assert_eq!(ntp_to_unix_ms(2_208_988_800u64 << 32), 0);
        assert_eq!(ntp_to_unix_ms((2_208_988_801u64 << 32) | 0x8000_0000), 1500);
        assert_eq!(ntp_to_unix_ms(0xeebd_d5d4_0000_0000), 1_796_429_652_000);
        assert_eq!(ntp_to_unix_ms(0), ((1i64 << 32) - 2_208_988_800) * 1000); // era 1 (2036)
    }

    /// moof with one traf: tfhd(flags, fields), tfdt v1, trun(flags, count, fields).
    fn moof(tfhd: (u32, &[u32]), bdt: u64, trun: (u32, u32, &[u32])) -> Vec<u8> {
        let tfhd = full(b"tfhd", 0, tfhd.0, &words(&[&[1], tfhd.1].concat()));
        let tfdt = full(b"tfdt", 1, 0, &bdt.to_be_bytes());
        let trun = full(b"trun", 0, trun.0, &words(&[&[trun.1], trun.2].concat()));
        bx(b"moof", &[full(b"mfhd", 0, 0, &[0, 0, 0, 1]), bx(b"traf", &[tfhd, tfdt, trun].concat())].concat())
    }
    fn prft(ntp: u64, media_time: u64) -> Vec<u8> {
        full(b"prft", 1, 24, &[&1u32.to_be_bytes()[..], &ntp.to_be_bytes(), &media_time.to_be_bytes()].concat())
    }
    const NTP: u64 = 0xeebd_d5d4_8c08_3126;

    /// A dash segment: styp, then three fragments exercising prft, per-sample flags, largesize.
    fn segment() -> Vec<u8> {
        [
            bx(b"styp", b"msdh\0\0\0\0msdhmsix"),
            prft(NTP, 0),
            // ffmpeg video style: tfhd defaults (dur 512, size, non-sync flags), first-sample-flags key.
            moof((0x02_0038, &[512, 100, 0x0101_0000]), 0, (0x205, 3, &[0, 0x0200_0000, 90, 100, 110])),
            bx(b"mdat", &[7; 300]),
            prft(NTP + (1 << 32), 1536),
            // per-sample durations and flags; first sample non-sync.
            moof((0x02_0000, &[]), 1536, (0x701, 2, &[0, 400, 10, 0x0101_0000, 600, 10, 0x0200_0000])),
            big(b"mdat", &[8; 20]),
            bx(b"free", &[0; 5]),
            // no prft; largesize moof; empty mdat.
            big(b"moof", &moof((0x02_0008, &[1000]), 2536, (0x001, 4, &[0]))[8..]),
            bx(b"mdat", &[]),
        ]
        .concat()
    }

    fn split(data: &[u8], chunk: usize, trex: Option<u32>) -> (Result<Vec<Fragment>, String>, Splitter) {
        let mut s = Splitter::new(trex);
        let mut all = Vec::new();
        for c in data.chunks(chunk) {
            match s.push(c) {
                Ok(f) => all.extend(f),
                Err(e) => return (Err(e), s),
            }
        }
        (Ok(all), s)
    }

    #[test]
    fn splits_segment() {
        let seg = segment();
        let (frags, s) = split(&seg, seg.len(), None);
        let f = frags.unwrap();
        assert!(s.at_boundary());
        assert_eq!(s.init_range(), None);
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].start, f[2].end), (0, seg.len() as u64)); // styp belongs to fragment 1
        assert!(f.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!((f[0].base_decode_time, f[0].duration, f[0].samples), (0, 1536, 3));
        assert!(f[0].starts_with_key);
        assert_eq!((f[0].prft_ntp, f[0].prft_media_time), (Some(NTP), Some(0)));
        assert_eq!((f[1].base_decode_time, f[1].duration, f[1].samples), (1536, 1000, 2));
        assert!(!f[1].starts_with_key);
        assert_eq!(f[1].prft_media_time, Some(1536));
        assert_eq!((f[2].duration, f[2].samples, f[2].prft_ntp), (4000, 4, None));
        assert!(f[2].starts_with_key); // no flags anywhere => sync (audio)
        for chunk in 1..=seg.len() {
            let (g, s) = split(&seg, chunk, None);
            assert_eq!(g.as_ref(), Ok(&f), "chunk size {chunk}");
            assert!(s.at_boundary());
        }
    }

    #[test]
    fn fragment_over_several_pushes_and_at_boundary() {
        let m = moof((0x02_0008, &[1024]), 0, (0x001, 2, &[0]));
        let data = [bx(b"styp", b"cmfs"), m.clone(), bx(b"mdat", &[1; 40])].concat();
        let mut s = Splitter::new(None);
        assert!(s.at_boundary());
        assert_eq!(s.push(&data[..12]).unwrap(), vec![]); // styp alone is a whole box
        assert!(s.at_boundary());
        // Mid moof header, moof without its mdat, mid mdat: all cut.
        let cuts = [&data[12..17], &data[17..12 + m.len()], &data[12 + m.len()..data.len() - 1]];
        for (i, piece) in cuts.iter().enumerate() {
            assert_eq!(s.push(piece).unwrap(), vec![], "piece {i}");
            assert!(!s.at_boundary());
        }
        let f = s.push(&data[data.len() - 1..]).unwrap();
        assert_eq!((f.len(), f[0].start, f[0].end, f[0].duration), (1, 0, data.len() as u64, 2048));
        assert!(s.at_boundary());
    }

    #[test]
    fn interface1_init_range_and_trex_default() {
        let ini = init(&[trak(b"soun", 48000, 0x41f2, &mp4a())], 1024);
        let data = [ini.clone(), moof((0x02_0000, &[]), 0, (0x201, 3, &[0, 5, 6, 7])), bx(b"mdat", &[0; 18])].concat();
        let trex = parse_init(&ini).unwrap().default_sample_duration;
        let (f, s) = split(&data, 13, trex);
        let f = f.unwrap();
        assert_eq!(s.init_range(), Some((0, ini.len() as u64)));
        assert_eq!((f[0].start, f[0].duration, f[0].samples), (ini.len() as u64, 3072, 3));
        // Without any default the duration is unknown: an error, not a silent 0.
        assert!(split(&data, 64, None).0.unwrap_err().contains("no sample durations"));
    }

    #[test]
    fn splitter_errors() {
        let styp = bx(b"styp", b"msdh");
        let (r, mut s) = split(&[styp.clone(), bx(b"mdat", &[0; 4])].concat(), 5, None);
        assert_eq!(r.unwrap_err(), "mdat at byte 12 has no moof before it");
        assert!(s.push(&styp).is_err()); // stays failed
        assert!(!s.at_boundary());
        let bad: [&[u8]; 5] = [
            b"\x00\x00\x00\x04abcd",                                 // size < 8
            b"\x00\x00\x00\x10\x00\xffab",                           // unprintable type
            b"\x00\x00\x00\x00mdat",                                 // size 0
            b"\x01\x00\x00\x08moof",                                 // 16 MiB + 8 moof, never allocated
            b"\x00\x00\x00\x01moof\x00\x00\x00\x00\x00\x00\x00\x0c", // largesize < 16
        ];
        for b in bad {
            assert!(split(b, 3, None).0.is_err(), "{b:?}");
        }
        // A trun claiming 2^32-1 samples with per-sample durations in a tiny box.
        let lie = moof((0x02_0000, &[]), 0, (0x100, u32::MAX, &[1, 2]));
        assert!(split(&lie, 100, None).0.unwrap_err().contains("claims 4294967295 samples in 8 bytes"));
        // ... but with no per-sample fields such a count costs nothing.
        let cheap = [moof((0x02_0008, &[2]), 0, (0, u32::MAX, &[])), bx(b"mdat", &[])].concat();
        assert_eq!(split(&cheap, 7, None).0.unwrap()[0].duration, 2 * u64::from(u32::MAX));
        // A moof without tfdt cannot be timed.
        let no_tfdt = bx(b"moof", &bx(b"traf", &full(b"tfhd", 0, 0, &[0, 0, 0, 1])));
        assert!(split(&no_tfdt, 9, None).0.unwrap_err().contains("no tfdt"));
    }

    /// Runs ffmpeg in a fresh temp dir and returns it.
    fn run_ffmpeg(name: &str, args: &str, more: &[&str]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("boxes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = std::process::Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"]);
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]).current_dir(&dir);
        cmd.args(args.split_whitespace()).args(more);
        let st = cmd.status().expect("run ffmpeg");
        assert!(st.success(), "ffmpeg failed: {st}");
        dir
    }

    #[test]
    fn ffmpeg_dash_streaming() {
        // ffmpeg only writes prft when a utc_timing_url is set (it warns and drops -write_prft
        // otherwise); the URL is only copied into the MPD, never fetched.
        let args = "-t 3 -c:v libx264 -g 25 -c:a aac -f dash -seg_duration 2 -frag_type duration -frag_duration 0.5 \
            -use_template 1 -use_timeline 0 -write_prft 1 -utc_timing_url https://time.akamai.com/?iso -streaming 1 \
            -ldash 1 -adaptation_sets";
        let dir = run_ffmpeg("dash", args, &["id=0,streams=v id=1,streams=a", "manifest.mpd"]);
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let v = parse_init(&read("init-stream0.m4s")).unwrap();
        assert_eq!(v.kind, TrackKind::Video);
        assert!(v.codec.as_deref().unwrap().starts_with("avc1."), "{v:?}");
        assert_eq!((v.width, v.height), (Some(320), Some(180)));
        assert!(v.timescale > 0);
        let a = parse_init(&read("init-stream1.m4s")).unwrap();
        assert_eq!((a.kind, a.codec.as_deref()), (TrackKind::Audio, Some("mp4a.40.2")));
        assert_eq!((a.sample_rate, a.channels), (Some(48000), Some(1)));

        let seg = read("chunk-stream0-00001.m4s");
        let (whole, s) = split(&seg, seg.len(), v.default_sample_duration);
        let f = whole.unwrap();
        assert!(s.at_boundary());
        assert_eq!(split(&seg, 1000, v.default_sample_duration).0.unwrap(), f);
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f[0].starts_with_key);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for fr in &f {
            let secs = fr.duration as f64 / f64::from(v.timescale);
            assert!((0.4..=0.6).contains(&secs), "{fr:?}");
            let ntp = fr.prft_ntp.expect("prft before every moof");
            assert!((ntp_to_unix_ms(ntp) - now).abs() < 86_400_000, "{fr:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ffmpeg_interface1_stream() {
        let args = "-t 3 -map 0:v -c:v libx264 -g 25 -f mp4 -movflags +cmaf+empty_moov+default_base_moof+frag_keyframe";
        let dir = run_ffmpeg("cmaf", args, &["out.mp4"]);
        let data = std::fs::read(dir.join("out.mp4")).unwrap();
        let (f, s) = split(&data, 4096, None);
        let f = f.unwrap();
        let (a, b) = s.init_range().unwrap();
        let v = parse_init(&data[a as usize..b as usize]).unwrap();
        assert_eq!((v.kind, v.width), (TrackKind::Video, Some(320)));
        assert_eq!((f.len(), f[0].start), (3, b)); // one fragment per 1 s GOP
        assert!(f.iter().all(|f| f.starts_with_key && f.samples == 25));
        assert!(s.at_boundary()); // the trailing mfra is a whole box
        let _ = std::fs::remove_dir_all(&dir);
    }
}
