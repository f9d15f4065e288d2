//! Where a segment's first key frame lies, found when the segment is stored, so that an I-frame
//! playlist can name it by byte range (ARCHITECTURE.md, "Trick play"). Reads only what the
//! containers promise; anything else (no video, a segment that does not start with a key frame,
//! garbage) is no key frame, never an error: the segment is stored either way.
//!
//! - MPEG-TS: from the segment's first byte (so the range carries the PAT and PMT a decoder
//!   needs, which segmenters write first) to the end of the first video PES packet, which holds
//!   one access unit, the key frame a segment starts with.
//! - fMP4: from the first `moof` to the end of the video track's first sample in its `mdat`
//!   (the track whose first sample is the largest: a key frame outweighs an audio frame many
//!   times, and which track is video is in the init segment, not here); with the init segment,
//!   it decodes alone.

use hls_dvr_core::model::{ByteRange, Container};

/// The first key frame of a segment of `container`, if one is found.
pub fn locate(container: Container, data: &[u8]) -> Option<ByteRange> {
    match container {
        Container::Ts => ts(data),
        Container::Fmp4 => fmp4(data),
        Container::WebVtt => None,
    }
}

const PACKET: usize = 188;

/// The payload of a TS packet, and whether it starts a PES packet or section.
fn payload(p: &[u8]) -> Option<(&[u8], bool)> {
    if p.len() != PACKET || p[0] != 0x47 {
        return None;
    }
    let start = p[1] & 0x40 != 0;
    let at = match (p[3] >> 4) & 0x3 {
        1 => 4,
        3 => 5 + p[4] as usize,
        _ => return Some((&[], start)),
    };
    Some((p.get(at..)?, start))
}

fn pid(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[1] & 0x1f, p[2]])
}

/// A PSI section starting in `payload` (after its pointer field): (table_id, body up to CRC).
fn section(payload: &[u8]) -> Option<(u8, &[u8])> {
    let pointer = *payload.first()? as usize;
    let s = payload.get(1 + pointer..)?;
    let len = (u16::from_be_bytes([*s.get(1)?, *s.get(2)?]) & 0x0fff) as usize;
    // The 5 bytes after the length field, then the body, then 4 bytes of CRC.
    Some((s[0], s.get(8..(3 + len).checked_sub(4)?)?))
}

fn ts(data: &[u8]) -> Option<ByteRange> {
    if !data.len().is_multiple_of(PACKET) {
        return None;
    }
    let packets = || data.chunks_exact(PACKET);
    let (mut pmt, mut video) = (None, None);
    for p in packets() {
        let Some((body, true)) = payload(p) else { continue };
        match (pid(p), pmt) {
            (0, None) => {
                let (0, programs) = section(body)? else { return None };
                // The first program that is not the network PID.
                pmt = programs
                    .chunks_exact(4)
                    .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
                    .map(|e| u16::from_be_bytes([e[2] & 0x1f, e[3]]));
            }
            (id, Some(pmt_pid)) if id == pmt_pid => {
                let (2, body) = section(body)? else { continue };
                let info = (u16::from_be_bytes([*body.get(2)?, *body.get(3)?]) & 0x0fff) as usize;
                let mut es = body.get(4 + info..)?;
                while es.len() >= 5 {
                    let (kind, es_pid) = (es[0], u16::from_be_bytes([es[1] & 0x1f, es[2]]));
                    // MPEG-1/2, MPEG-4 part 2, H.264, H.265.
                    if matches!(kind, 0x01 | 0x02 | 0x10 | 0x1b | 0x24) {
                        video = Some(es_pid);
                        break;
                    }
                    let n = (u16::from_be_bytes([es[3], es[4]]) & 0x0fff) as usize;
                    es = es.get(5 + n..)?;
                }
                break;
            }
            _ => {}
        }
    }
    let video = video?;
    let mut starts = packets().enumerate().filter(|(_, p)| pid(p) == video && payload(p).is_some_and(|(_, s)| s));
    let (first, p) = starts.next()?;
    // The segment must start with a key frame: the random access indicator of its first video
    // packet, where the segmenter sets it.
    let adaptation = (p[3] >> 4) & 0x2 != 0 && p[4] > 0;
    if adaptation && p[5] & 0x40 == 0 {
        return None;
    }
    let end = starts.next().map_or(data.len(), |(i, _)| i * PACKET);
    (end > first * PACKET).then_some(ByteRange { offset: 0, length: end as u64 })
}

/// (type, start, size) of the boxes of `data` starting at `at`, as far as they are whole.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], usize, usize)> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = data.get(at..at + 8)?;
        let size = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
            1 => usize::try_from(u64::from_be_bytes(data.get(at + 8..at + 16)?.try_into().ok()?)).ok()?,
            0 => data.len() - at,
            n => n as usize,
        };
        if size < 8 || at.checked_add(size)? > data.len() {
            return None;
        }
        let item = ([h[4], h[5], h[6], h[7]], at, size);
        at += size;
        Some(item)
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn fmp4(data: &[u8]) -> Option<ByteRange> {
    let (_, moof, moof_size) = boxes(data).find(|(t, _, _)| t == b"moof")?;
    // (first sample's size, where it ends) of the track with the largest first sample.
    let mut video: Option<(u32, usize)> = None;
    for (t, at, size) in boxes(&data[moof + 8..moof + moof_size]) {
        if &t != b"traf" {
            continue;
        }
        let traf = &data[moof + 8 + at + 8..moof + 8 + at + size];
        let (mut base, mut default_size) = (moof as u64, None);
        let (mut offset, mut first_size) = (None, None);
        for (t, at, size) in boxes(traf) {
            let b = &traf[at + 8..at + size];
            let flags = u32_at(b, 0)? & 0x00ff_ffff;
            match &t {
                b"tfhd" => {
                    let mut p = 8; // version/flags, track_ID
                    if flags & 0x01 != 0 {
                        base = u64::from_be_bytes(b.get(p..p + 8)?.try_into().ok()?);
                        p += 8;
                    }
                    p += if flags & 0x02 != 0 { 4 } else { 0 };
                    p += if flags & 0x08 != 0 { 4 } else { 0 };
                    if flags & 0x10 != 0 {
                        default_size = u32_at(b, p);
                    }
                }
                b"trun" if offset.is_none() => {
                    let mut p = 8; // version/flags, sample_count
                    if u32_at(b, 4)? == 0 {
                        continue;
                    }
                    if flags & 0x01 != 0 {
                        offset = Some(u32_at(b, p)? as i32 as i64);
                        p += 4;
                    }
                    p += if flags & 0x04 != 0 { 4 } else { 0 };
                    p += if flags & 0x100 != 0 { 4 } else { 0 };
                    first_size = if flags & 0x200 != 0 { u32_at(b, p) } else { default_size };
                }
                _ => {}
            }
        }
        let start = i64::try_from(base).ok()?.checked_add(offset?)?;
        let first_size = first_size?;
        let sample_end = usize::try_from(start).ok()?.checked_add(first_size as usize)?;
        if video.is_none_or(|(size, _)| first_size > size) {
            video = Some((first_size, sample_end));
        }
    }
    let end = video?.1;
    (end > moof && end <= data.len()).then_some(ByteRange { offset: moof as u64, length: (end - moof) as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TS packet of `pid`, starting a PES or section when `start`, with `random_access`.
    fn packet(pid: u16, start: bool, random_access: Option<bool>, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x47, ((pid >> 8) as u8 & 0x1f) | if start { 0x40 } else { 0 }, pid as u8];
        match random_access {
            Some(ra) => {
                p.push(0x30);
                p.push(1);
                p.push(if ra { 0x40 } else { 0 });
            }
            None => p.push(0x10),
        }
        p.extend_from_slice(payload);
        p.resize(PACKET, 0xff);
        p
    }

    fn psi(table: u8, body: &[u8]) -> Vec<u8> {
        let len = (5 + body.len() + 4) as u16;
        let mut s = vec![0, table, 0xb0 | (len >> 8) as u8, len as u8, 0, 1, 0xc1, 0, 0];
        s.extend_from_slice(body);
        s.extend_from_slice(&[0, 0, 0, 0]);
        s
    }

    fn segment(first_random_access: bool) -> Vec<u8> {
        let pat = packet(0, true, None, &psi(0, &[0, 1, 0xf0, 0x00]));
        // PCR PID, no program info; AAC on 0x101, H.264 on 0x100.
        let pmt = packet(
            0x1000,
            true,
            None,
            &psi(2, &[0xe1, 0x00, 0xf0, 0, 0x0f, 0xe1, 0x01, 0xf0, 0, 0x1b, 0xe1, 0x00, 0xf0, 0]),
        );
        [
            pat,
            pmt,
            packet(0x100, true, Some(first_random_access), b"\0\0\x01\xe0key"),
            packet(0x101, true, None, b"\0\0\x01\xc0aac"),
            packet(0x100, false, None, b"more of the key frame"),
            packet(0x100, true, Some(false), b"\0\0\x01\xe0next"),
        ]
        .concat()
    }

    #[test]
    fn a_ts_key_frame_runs_from_the_tables_to_the_next_video_pes() {
        assert_eq!(ts(&segment(true)), Some(ByteRange { offset: 0, length: 5 * 188 }));
        assert_eq!(ts(&segment(false)), None, "a segment that starts with no key frame");
        assert_eq!(ts(&segment(true)[..188 * 2]), None, "no video");
        assert_eq!(ts(&segment(true)[..100]), None);
        assert_eq!(ts(&[0u8; 188 * 3]), None);
    }

    fn bx(t: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&(body.len() as u32 + 8).to_be_bytes()[..], t, body].concat()
    }

    #[test]
    fn an_fmp4_key_frame_is_its_moof_and_first_samples() {
        // styp, then moof with one traf: tfhd (default-base-is-moof), trun with data offset and
        // sample sizes 30 and 10; then mdat.
        let tfhd = bx(b"tfhd", &[0, 0x02, 0, 0, 0, 0, 0, 1]);
        let trun_body = |off: u32| {
            [
                &[0u8, 0, 0x02, 0x01][..],
                &2u32.to_be_bytes(),
                &off.to_be_bytes(),
                &30u32.to_be_bytes(),
                &10u32.to_be_bytes(),
            ]
            .concat()
        };
        let moof_len = 8 + 8 + tfhd.len() + 8 + trun_body(0).len();
        let moof = bx(b"moof", &bx(b"traf", &[tfhd.clone(), bx(b"trun", &trun_body(moof_len as u32 + 8))].concat()));
        assert_eq!(moof.len(), moof_len);
        let styp = bx(b"styp", b"msdh");
        let data = [styp.clone(), moof, bx(b"mdat", &[7u8; 40])].concat();
        let at = styp.len() as u64;
        assert_eq!(fmp4(&data), Some(ByteRange { offset: at, length: moof_len as u64 + 8 + 30 }));
        // A data offset past the end, or no moof: none.
        let lying = bx(b"moof", &bx(b"traf", &[tfhd, bx(b"trun", &trun_body(9999))].concat()));
        assert_eq!(fmp4(&[lying, bx(b"mdat", &[0; 40])].concat()), None);
        assert_eq!(fmp4(&styp), None);
        // Muxed (ffmpeg's fMP4 HLS): video samples, then audio's, in one mdat; the range ends
        // with the video key frame, not with the audio track's first sample after all video.
        let trun = |off: u32, size: u32| {
            bx(
                b"trun",
                &[&[0u8, 0, 0x02, 0x01][..], &1u32.to_be_bytes(), &off.to_be_bytes(), &size.to_be_bytes()].concat(),
            )
        };
        let traf =
            |off: u32, size: u32| bx(b"traf", &[bx(b"tfhd", &[0, 0x02, 0, 0, 0, 0, 0, 1]), trun(off, size)].concat());
        let len = (8 + 2 * traf(0, 0).len()) as u32;
        let muxed =
            [bx(b"moof", &[traf(len + 8, 500), traf(len + 8 + 900, 20)].concat()), bx(b"mdat", &[0; 920])].concat();
        assert_eq!(fmp4(&muxed), Some(ByteRange { offset: 0, length: len as u64 + 8 + 500 }));
        assert_eq!(fmp4(b"garbage"), None);
    }
}
