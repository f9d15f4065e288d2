//! What a request under an `hls_dvr` location asks for.
//!
//! `{stream}/master.m3u8`, `{stream}/{rendition}/index.m3u8` (and `iframes.m3u8`, `images.m3u8`),
//! `{stream}/{rendition}/{msn}.ts|.m4s|.vtt|.jpg`,
//! `{stream}/{rendition}/init-{msn}.mp4` and the parts `{stream}/{rendition}/{msn}.{part}.m4s`,
//! relative to the location's prefix. Names are
//! restricted to a safe alphabet so they can be logged and echoed without escaping.

use std::fmt;

use crate::model::Container;
use crate::mp4::clip::Format;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Master {
        stream: &'a str,
    },
    Media {
        stream: &'a str,
        rendition: &'a str,
    },
    /// The rendition's I-frame playlist (trick play): `iframes.m3u8`.
    IFrames {
        stream: &'a str,
        rendition: &'a str,
    },
    /// The rendition's image playlist (thumbnails): `images.m3u8`.
    Images {
        stream: &'a str,
        rendition: &'a str,
    },
    /// A segment's thumbnail: `{msn}.jpg`.
    Thumbnail {
        stream: &'a str,
        rendition: &'a str,
        msn: i64,
    },
    /// A media segment; its extension names the container the player expects.
    Segment {
        stream: &'a str,
        rendition: &'a str,
        msn: i64,
        container: Container,
    },
    Init {
        stream: &'a str,
        rendition: &'a str,
        msn: i64,
    },
    /// A range as one file: `clip.mp4` (or `clip.ts`), of a rendition or, without one, of the
    /// stream's best video with its audio (ARCHITECTURE.md, "Clips as files").
    Clip {
        stream: &'a str,
        rendition: Option<&'a str>,
        format: Format,
    },
    /// A low-latency part of an fMP4 segment: `{msn}.{part}.m4s`.
    Part {
        stream: &'a str,
        rendition: &'a str,
        msn: i64,
        part: i32,
    },
}

impl fmt::Display for Route<'_> {
    /// The path this route is parsed from: `parse(&route.to_string())` gives the route back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Master { stream } => write!(f, "{stream}/master.m3u8"),
            Route::Media { stream, rendition } => write!(f, "{stream}/{rendition}/index.m3u8"),
            Route::IFrames { stream, rendition } => write!(f, "{stream}/{rendition}/iframes.m3u8"),
            Route::Images { stream, rendition } => write!(f, "{stream}/{rendition}/images.m3u8"),
            Route::Thumbnail { stream, rendition, msn } => write!(f, "{stream}/{rendition}/{msn}.jpg"),
            Route::Segment { stream, rendition, msn, container } => {
                write!(f, "{stream}/{rendition}/{msn}.{}", container.segment_ext())
            }
            Route::Init { stream, rendition, msn } => write!(f, "{stream}/{rendition}/init-{msn}.mp4"),
            Route::Part { stream, rendition, msn, part } => write!(f, "{stream}/{rendition}/{msn}.{part}.m4s"),
            Route::Clip { stream, rendition: Some(r), format } => write!(f, "{stream}/{r}/clip.{}", format.ext()),
            Route::Clip { stream, rendition: None, format } => write!(f, "{stream}/clip.{}", format.ext()),
        }
    }
}

/// Why a path is not one of ours: always a client error (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub String);

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Stream and rendition names: `[A-Za-z0-9_-]`, 1 to 64 characters (the uploader's rule too).
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn name<'a>(s: &'a str, what: &str) -> Result<&'a str, BadPath> {
    if is_name(s) {
        Ok(s)
    } else {
        Err(BadPath(format!("bad {what} name (allowed: A-Z a-z 0-9 _ -, at most 64)")))
    }
}

/// A media sequence number in a URL: plain decimal digits, no sign, no leading zeros, fits i64.
fn msn(s: &str) -> Result<i64, BadPath> {
    let bad = || BadPath("bad media sequence number".into());
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

fn clip_format(file: &str) -> Option<Format> {
    match file {
        "clip.mp4" => Some(Format::Mp4),
        "clip.ts" => Some(Format::Ts),
        _ => None,
    }
}

/// Parses the part of the path after the location prefix (no leading slash, no query string).
pub fn parse(rest: &str) -> Result<Route<'_>, BadPath> {
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [stream, "master.m3u8"] => Ok(Route::Master { stream: name(stream, "stream")? }),
        [stream, file] if clip_format(file).is_some() => Ok(Route::Clip {
            stream: name(stream, "stream")?,
            rendition: None,
            format: clip_format(file).expect("matched"),
        }),
        [stream, rendition, file] => {
            let stream = name(stream, "stream")?;
            let rendition = name(rendition, "rendition")?;
            if *file == "index.m3u8" {
                return Ok(Route::Media { stream, rendition });
            }
            if let Some(format) = clip_format(file) {
                return Ok(Route::Clip { stream, rendition: Some(rendition), format });
            }
            if *file == "iframes.m3u8" {
                return Ok(Route::IFrames { stream, rendition });
            }
            if *file == "images.m3u8" {
                return Ok(Route::Images { stream, rendition });
            }
            if let Some(n) = file.strip_suffix(".jpg") {
                return Ok(Route::Thumbnail { stream, rendition, msn: msn(n)? });
            }
            if let Some(n) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
                return Ok(Route::Init { stream, rendition, msn: msn(n)? });
            }
            let Some((n, container)) =
                file.rsplit_once('.').and_then(|(n, ext)| Some((n, Container::from_segment_ext(ext)?)))
            else {
                return Err(BadPath(format!(
                    "unknown file {file:?} (expected index.m3u8, iframes.m3u8, images.m3u8, clip.mp4, clip.ts, MSN.ts, \
                     MSN.m4s, MSN.vtt, MSN.jpg, MSN.PART.m4s or init-MSN.mp4)"
                )));
            };
            if let (Some((n, part)), Container::Fmp4) = (n.split_once('.'), container) {
                let part = msn(part).ok().and_then(|p| i32::try_from(p).ok());
                let part = part.ok_or_else(|| BadPath("bad part number".into()))?;
                return Ok(Route::Part { stream, rendition, msn: msn(n)?, part });
            }
            Ok(Route::Segment { stream, rendition, msn: msn(n)?, container })
        }
        _ => Err(BadPath(
            "expected STREAM/master.m3u8, STREAM/clip.mp4, STREAM/RENDITION/index.m3u8 or STREAM/RENDITION/SEGMENT"
                .into(),
        )),
    }
}

/// A single `Range: bytes=...` request resolved against a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range: send the whole body (RFC 9110 lets servers ignore what they do not support,
    /// such as multiple ranges).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

pub fn parse_range(header: &str, len: u64) -> ByteRange {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return ByteRange::Whole };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return ByteRange::Whole };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last N bytes.
        return match num(b) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(n) if len > 0 => ByteRange::Part { start: len.saturating_sub(n), end: len - 1 },
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Whole,
        };
    }
    let Some(start) = num(a) else { return ByteRange::Whole };
    let end = if b.is_empty() {
        len.saturating_sub(1)
    } else {
        match num(b) {
            Some(e) if e >= start => e.min(len.saturating_sub(1)),
            Some(_) => return ByteRange::Whole,
            None => return ByteRange::Whole,
        }
    };
    if start >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part { start, end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route() {
        assert_eq!(parse("demo/master.m3u8"), Ok(Route::Master { stream: "demo" }));
        assert_eq!(parse("demo/hd/index.m3u8"), Ok(Route::Media { stream: "demo", rendition: "hd" }));
        assert_eq!(parse("demo/hd/iframes.m3u8"), Ok(Route::IFrames { stream: "demo", rendition: "hd" }));
        assert_eq!(parse("demo/hd/images.m3u8"), Ok(Route::Images { stream: "demo", rendition: "hd" }));
        assert_eq!(parse("demo/hd/12.jpg"), Ok(Route::Thumbnail { stream: "demo", rendition: "hd", msn: 12 }));
        assert!(parse("demo/hd/012.jpg").is_err());
        assert_eq!(
            parse("demo/subs/7.vtt"),
            Ok(Route::Segment { stream: "demo", rendition: "subs", msn: 7, container: Container::WebVtt })
        );
        assert_eq!(
            parse("demo/hd/42.ts"),
            Ok(Route::Segment { stream: "demo", rendition: "hd", msn: 42, container: Container::Ts })
        );
        assert_eq!(
            parse("demo/out_1/0.m4s"),
            Ok(Route::Segment { stream: "demo", rendition: "out_1", msn: 0, container: Container::Fmp4 })
        );
        assert_eq!(parse("demo/hd/init-7.mp4"), Ok(Route::Init { stream: "demo", rendition: "hd", msn: 7 }));
        assert_eq!(parse("demo/hd/7.3.m4s"), Ok(Route::Part { stream: "demo", rendition: "hd", msn: 7, part: 3 }));
        assert_eq!(parse("demo/clip.mp4"), Ok(Route::Clip { stream: "demo", rendition: None, format: Format::Mp4 }));
        assert_eq!(
            parse("demo/hd/clip.ts"),
            Ok(Route::Clip { stream: "demo", rendition: Some("hd"), format: Format::Ts })
        );
        for p in ["demo/clip.mp4", "demo/hd/clip.mp4", "demo/hd/clip.ts"] {
            assert_eq!(parse(p).unwrap().to_string(), p);
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        for p in [
            "",
            "demo",
            "demo/",
            "demo/index.m3u8",
            "demo/hd/",
            "demo/hd/x.ts",
            "demo/hd/-1.ts",
            "demo/hd/+1.ts",
            "demo/hd/01.ts",
            "demo/hd/1.mp3",
            "demo/hd/99999999999999999999.ts",
            "demo/hd/init-.mp4",
            "../etc/passwd/x.ts",
            "de mo/master.m3u8",
            "demo/h%64/1.ts",
            "demo/hd/1.ts/extra",
            "demo//1.ts",
            "demo/hd/1.2.ts",
            "demo/hd/1.02.m4s",
            "demo/hd/1..m4s",
            "demo/hd/1.2.3.m4s",
            "demo/hd/1.99999999999.m4s",
            "demo/clip.mov",
            "demo/hd/clip.m4s",
            "demo/hd/x/clip.mp4",
        ] {
            assert!(parse(p).is_err(), "{p:?} should be rejected");
        }
        let long = "a".repeat(65);
        assert!(parse(&format!("{long}/master.m3u8")).is_err());
        assert!(parse(&format!("{}/master.m3u8", &long[..64])).is_ok());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), ByteRange::Part { start: 0, end: 9 });
        assert_eq!(parse_range("bytes=90-", 100), ByteRange::Part { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=90-1000", 100), ByteRange::Part { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-10", 100), ByteRange::Part { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-1000", 100), ByteRange::Part { start: 0, end: 99 });
        assert_eq!(parse_range("bytes=100-", 100), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), ByteRange::Whole);
        assert_eq!(parse_range("bytes=5-1", 100), ByteRange::Whole);
        assert_eq!(parse_range("items=0-1", 100), ByteRange::Whole);
        assert_eq!(parse_range("bytes=a-b", 100), ByteRange::Whole);
        assert_eq!(parse_range("bytes=0-0", 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn random_paths_and_ranges_never_panic() {
        // Paths and headers come from anyone: nothing may panic, and what parses must round-trip.
        let alphabet = b"ab09_-./%\\\0 ~:+=,tsm4ix8nd\xff";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..50_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(route) = parse(&text) {
                assert_eq!(route.to_string(), text);
            }
            let len = next() % 5000;
            if let ByteRange::Part { start, end } = parse_range(&format!("bytes={text}"), len) {
                assert!(start <= end && end < len, "{text:?} over {len}: {start}-{end}");
            }
        }
    }
}
