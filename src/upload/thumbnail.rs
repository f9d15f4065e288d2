//! Scrubbing thumbnails (`--thumbnails`): a small JPEG of a segment's first frame, made when the
//! segment is stored, by ffmpeg on the uploader's host, from the segment's key frame alone
//! (ARCHITECTURE.md, "Trick play"). A thumbnail that cannot be made is left out, never a reason
//! not to store the segment.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The longest a thumbnail may take: more means ffmpeg is stuck, and the segment goes on without.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest thumbnail kept (a 160-pixel JPEG is a few KB).
const MAX_JPEG: usize = 256 * 1024;

/// Checks that ffmpeg runs here, for `--thumbnails` at start-up.
pub fn ffmpeg_present() -> Result<(), String> {
    match std::process::Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("--thumbnails: `ffmpeg -version` exited with {s}")),
        Err(e) => Err(format!("--thumbnails needs ffmpeg on this host: {e}")),
    }
}

/// A JPEG `width` pixels wide of the first frame of `key_frame` (a segment's key frame, with the
/// init segment first for fMP4), and its size as `WxH`.
pub async fn make(key_frame: Bytes, width: u32) -> Result<(Bytes, String), String> {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-i", "pipe:0", "-frames:v", "1", "-an", "-sn"])
        .args(["-vf", &format!("scale={width}:-2"), "-q:v", "5", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    // All three were piped above.
    let (mut stdin, mut stdout, mut stderr) =
        (child.stdin.take().unwrap(), child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let run = async {
        // ffmpeg may stop reading once it has its frame: a closed pipe then is no error.
        let feed = async move {
            let _ = stdin.write_all(&key_frame).await;
        };
        let (mut jpeg, mut errors) = (Vec::new(), Vec::new());
        let (_, out, err) = tokio::join!(feed, stdout.read_to_end(&mut jpeg), stderr.read_to_end(&mut errors));
        out.and(err).map_err(|e| format!("reading ffmpeg: {e}"))?;
        let status = child.wait().await.map_err(|e| format!("ffmpeg: {e}"))?;
        if !status.success() || jpeg.is_empty() {
            let why = String::from_utf8_lossy(&errors);
            return Err(format!("ffmpeg exited with {status}: {}", why.lines().next().unwrap_or("no picture")));
        }
        Ok(jpeg)
    };
    let jpeg = tokio::time::timeout(TIMEOUT, run).await.map_err(|_| format!("ffmpeg took over {TIMEOUT:?}"))??;
    if jpeg.len() > MAX_JPEG {
        return Err(format!("a {} byte thumbnail is too large", jpeg.len()));
    }
    let (w, h) = jpeg_size(&jpeg).ok_or("ffmpeg's output is not a JPEG")?;
    Ok((Bytes::from(jpeg), format!("{w}x{h}")))
}

/// Width and height from a JPEG's start-of-frame marker.
pub fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    if jpeg.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut at = 2;
    loop {
        let (&ff, &marker) = (jpeg.get(at)?, jpeg.get(at + 1)?);
        if ff != 0xff {
            return None;
        }
        let len = u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]) as usize;
        // SOF0-SOF15, but DHT (C4), JPG (C8) and DAC (CC).
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            let h = u16::from_be_bytes([*jpeg.get(at + 5)?, *jpeg.get(at + 6)?]);
            let w = u16::from_be_bytes([*jpeg.get(at + 7)?, *jpeg.get(at + 8)?]);
            return Some((w, h));
        }
        at += 2 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_come_from_the_frame_header() {
        // SOI, an APP0 segment, SOF0 of 160x90.
        let jpeg =
            [&[0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0][..], &[0xff, 0xc0, 0, 11, 8, 0, 90, 0, 160, 1, 1, 0x11, 0]].concat();
        assert_eq!(jpeg_size(&jpeg), Some((160, 90)));
        assert_eq!(jpeg_size(b"GIF89a"), None);
        assert_eq!(jpeg_size(&jpeg[..10]), None);
    }
}
