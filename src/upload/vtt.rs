//! WebVTT subtitle segments: checked whole, and given the `X-TIMESTAMP-MAP` that ties their cue
//! times to the media's timestamps (RFC 8216bis 3.1.4), so players place cues right after any
//! seek (ARCHITECTURE.md, "Subtitles").
//!
//! Without the map, a player must take cue time 0 for media timestamp 0. A segmenter that writes
//! cue times on the media's own clock minus an offset (ffmpeg 5.1's hls muxer: its MPEG-TS output
//! starts 1.4 s in, its cues at 0, and it writes no map) then shows every cue early by that
//! offset; the uploader adds the map it omits, with the offset the operator gives
//! (`--vtt-mpegts`). A segment that has a map keeps it.

use bytes::{BufMut, Bytes, BytesMut};

/// The MPEG-TS timestamp (90 kHz) of cue time 0 in ffmpeg's MPEG-TS output: its muxer's
/// default start, 1.4 s.
pub const FFMPEG_TS_MPEGTS: i64 = 126_000;

/// Whether `data` is a whole WebVTT file: UTF-8, starting with the `WEBVTT` signature, ending
/// with a line break (a file caught mid-write ends mid-line).
pub fn whole(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("WebVTT is not UTF-8: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let signed = text.strip_prefix("WEBVTT").is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\n', '\r']));
    if !signed {
        return Err("WebVTT does not start with WEBVTT".into());
    }
    if !text.ends_with('\n') {
        return Err("WebVTT does not end with a line break (being written?)".into());
    }
    Ok(())
}

/// `data` with `X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000` added to its header, unless
/// it carries one already. The map goes right after the signature line, where the header's
/// metadata lines are.
pub fn with_timestamp_map(data: &Bytes, mpegts: i64) -> Bytes {
    let Ok(text) = std::str::from_utf8(data) else { return data.clone() };
    let header_end = text.find("\n\n").or_else(|| text.find("\r\n\r\n")).unwrap_or(text.len());
    if text[..header_end].contains("X-TIMESTAMP-MAP=") {
        return data.clone();
    }
    let line_end = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut out = BytesMut::with_capacity(data.len() + 48);
    out.put_slice(&data[..line_end]);
    if line_end == text.len() && !text.ends_with('\n') {
        out.put_u8(b'\n');
    }
    out.put_slice(format!("X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n").as_bytes());
    out.put_slice(&data[line_end..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_is_added_after_the_signature_once() {
        let seg = Bytes::from_static(b"WEBVTT\n\n00:03.022 --> 00:04.522\ncue three\n");
        let out = with_timestamp_map(&seg, FFMPEG_TS_MPEGTS);
        assert_eq!(
            &out[..],
            b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:03.022 --> 00:04.522\ncue three\n"
        );
        assert!(whole(&out).is_ok());
        assert_eq!(with_timestamp_map(&out, 0), out, "a map is never added twice");
        // ffmpeg's segment without cues.
        let empty = with_timestamp_map(&Bytes::from_static(b"WEBVTT\n\n"), 0);
        assert_eq!(&empty[..], b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n");
    }

    #[test]
    fn a_segmenter_map_is_kept() {
        let seg = Bytes::from_static(b"WEBVTT\r\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:900000\r\n\r\n");
        assert_eq!(with_timestamp_map(&seg, 1), seg);
    }

    #[test]
    fn cut_or_foreign_files_are_not_whole() {
        assert!(whole(b"WEBVTT\n\n00:01.000 --> 00:02.000\ncue").is_err());
        assert!(whole(b"\xef\xbb\xbfWEBVTT\n\n").is_ok());
        assert!(whole(b"WEBVTTX\n").is_err());
        assert!(whole(b"\x47\x40\x00").is_err());
        assert!(whole(b"WEBVTT\n\xff\n").is_err());
    }
}
