//! What a push request's path names. Everything a stream pushes lives under `/ingest/{stream}/`:
//! HLS playlists and the files they list (ffmpeg's hls muxer), CMAF init segments and media
//! segments named as ffmpeg's dash muxer names them (`init-{rendition}.m4s`,
//! `chunk-{rendition}-{number}.m4s`), its DASH manifest, and DASH-IF Interface 1 tracks
//! (`Streams({rendition})`).

use hls_dvr_core::route::is_name;

/// A push request's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/ingest/{stream}/markers`: a marker posted as JSON.
    Markers { stream: &'a str },
    /// A playlist of an HLS push (`*.m3u8`).
    Playlist { stream: &'a str, name: &'a str },
    /// Any other file of an HLS push: a segment or init segment, kept until a playlist lists it.
    File { stream: &'a str, name: &'a str },
    /// A CMAF track's init segment.
    CmafInit { stream: &'a str, rendition: &'a str },
    /// A CMAF media segment, sent as it is encoded (one chunked PUT).
    CmafSegment { stream: &'a str, rendition: &'a str, number: i64 },
    /// A DASH manifest: answered, not stored (renditions come from the init segments).
    Manifest { stream: &'a str },
    /// A DASH-IF Interface 1 track: one long POST of an init segment, then fragments.
    Track { stream: &'a str, rendition: &'a str },
    /// Anything else (404).
    Unknown,
}

/// Longest file name accepted.
const MAX_NAME: usize = 200;

/// Parses a request path (no query). Anything else than the shapes above is [`Target::Unknown`].
pub fn parse(path: &str) -> Target<'_> {
    let Some(rest) = path.strip_prefix("/ingest/") else { return Target::Unknown };
    let Some((stream, name)) = rest.split_once('/') else { return Target::Unknown };
    if !is_name(stream) || name.is_empty() || name.len() > MAX_NAME || name.contains('/') || name.starts_with('.') {
        return Target::Unknown;
    }
    if let Some(r) = name.strip_prefix("Streams(").and_then(|n| n.strip_suffix(')')) {
        return if is_name(r) { Target::Track { stream, rendition: r } } else { Target::Unknown };
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Target::Unknown;
    }
    if name == "markers" {
        return Target::Markers { stream };
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    match ext {
        "m3u8" => return Target::Playlist { stream, name },
        "mpd" => return Target::Manifest { stream },
        _ => {}
    }
    if let Some(r) = stem.strip_prefix("init-").filter(|r| is_name(r)) {
        return Target::CmafInit { stream, rendition: r };
    }
    if let Some((r, n)) = stem.strip_prefix("chunk-").and_then(|s| s.rsplit_once('-')) {
        if let (true, Ok(number)) = (is_name(r), n.parse::<i64>()) {
            return Target::CmafSegment { stream, rendition: r, number };
        }
    }
    Target::File { stream, name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hls_push_paths() {
        assert_eq!(parse("/ingest/news/stream_0.m3u8"), Target::Playlist { stream: "news", name: "stream_0.m3u8" });
        assert_eq!(parse("/ingest/news/master.m3u8"), Target::Playlist { stream: "news", name: "master.m3u8" });
        assert_eq!(parse("/ingest/news/markers"), Target::Markers { stream: "news" });
        assert_eq!(parse("/ingest/news/stream_0_12.m4s"), Target::File { stream: "news", name: "stream_0_12.m4s" });
        assert_eq!(parse("/ingest/news/init_0.mp4"), Target::File { stream: "news", name: "init_0.mp4" });
        assert_eq!(parse("/ingest/news/a12.ts"), Target::File { stream: "news", name: "a12.ts" });
    }

    #[test]
    fn cmaf_push_paths() {
        assert_eq!(parse("/ingest/n/init-stream0.m4s"), Target::CmafInit { stream: "n", rendition: "stream0" });
        assert_eq!(
            parse("/ingest/n/chunk-stream1-00042.m4s"),
            Target::CmafSegment { stream: "n", rendition: "stream1", number: 42 }
        );
        assert_eq!(parse("/ingest/n/manifest.mpd"), Target::Manifest { stream: "n" });
        assert_eq!(parse("/ingest/n/Streams(video-hd)"), Target::Track { stream: "n", rendition: "video-hd" });
        // A chunk name without a number is an ordinary file.
        assert_eq!(parse("/ingest/n/chunk-x.m4s"), Target::File { stream: "n", name: "chunk-x.m4s" });
    }

    #[test]
    fn everything_else_is_unknown() {
        for p in [
            "/",
            "/ingest/",
            "/ingest/news",
            "/ingest/news/",
            "/ingest/bad.name/a.ts",
            "/ingest/news/sub/a.ts",
            "/ingest/news/..",
            "/ingest/news/.hidden",
            "/ingest/news/a%2Fb.ts",
            "/ingest/news/Streams(a/b)",
            "/ingest/news/Streams()",
            "/other/news/a.ts",
        ] {
            assert_eq!(parse(p), Target::Unknown, "{p}");
        }
        assert_eq!(parse(&format!("/ingest/n/{}.ts", "a".repeat(300))), Target::Unknown);
    }
}
