//! What a segmenter wrote: playlists parsed with m3u8-rs, plus the exact values m3u8-rs loses.
//!
//! m3u8-rs keeps EXTINF as an `f32` (off by a microsecond past 16 s), only accepts strict RFC 3339
//! program date-times (ffmpeg writes `+0000`, which it then files as an unknown tag) and attaches
//! EXT-X-MAP to the first segment after the tag only. So the structure comes from m3u8-rs and a
//! line scan of the same text supplies exact durations, date-times and the map in force; the two
//! must agree on every segment URI, or the playlist counts as unreadable (retried next poll).

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use m3u8_rs::Playlist;

use hls_dvr_core::clock::parse_iso8601;
use hls_dvr_core::model::Container;

pub use crate::groups::VariantInfo;

/// Identity of a file on disk: a rewritten file (same name, new content) differs in one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub size: i64,
    pub mtime_ns: i64,
    /// Inode number; 0 when not known (a position restored from the store).
    pub ino: u64,
}

impl FileId {
    /// Whether this is still the file first seen as `listed`: the same inode, at least as long
    /// (a segment still being written grows); without inodes, the same size and time.
    pub fn same_file(&self, listed: &FileId) -> bool {
        if self.ino != 0 && listed.ino != 0 {
            self.ino == listed.ino && self.size >= listed.size
        } else {
            self.size == listed.size && self.mtime_ns == listed.mtime_ns
        }
    }
}

/// The file's identity, or None when it does not exist (or is not a regular file).
pub fn file_id(path: &Path) -> Option<FileId> {
    let md = std::fs::metadata(path).ok()?;
    if !md.is_file() {
        return None;
    }
    let mtime_ns =
        md.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i64);
    Some(FileId { size: md.len() as i64, mtime_ns, ino: std::os::unix::fs::MetadataExt::ino(&md) })
}

/// One segment as a media playlist lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEntry {
    /// The segmenter's media sequence number (EXT-X-MEDIA-SEQUENCE + position).
    pub seg_msn: i64,
    pub uri: String,
    /// EXTINF, exactly, in microseconds.
    pub duration_us: i64,
    /// EXT-X-PROGRAM-DATE-TIME of this segment when the segmenter gave one, ms since the epoch.
    pub pdt_ms: Option<i64>,
    /// An EXT-X-DISCONTINUITY precedes it.
    pub discontinuity: bool,
    /// URI of the EXT-X-MAP in force for it.
    pub map: Option<String>,
}

/// A parsed media playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub target_duration: i32,
    pub container: Container,
    pub entries: Vec<MediaEntry>,
    /// EXT-X-ENDLIST: the segmenter finished the stream.
    pub ended: bool,
    /// Its markers (EXT-X-DATERANGE, ad breaks from EXT-X-CUE-OUT/IN).
    pub markers: Vec<hls_dvr_core::markers::Marker>,
}

/// A playlist that parsed, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Media playlists it names (URIs as written), with their attributes.
    Master(Vec<(String, VariantInfo)>),
    Media(MediaInfo),
}

/// Parses a playlist of either kind. A playlist read while being written is an error: try again
/// next poll. Written means: its last line is cut (no trailing newline, unless that line is the
/// final EXT-X-ENDLIST, which some segmenters write without one), or m3u8-rs and the line scan
/// disagree on it. The files it lists are checked whole when uploaded.
pub fn parse(text: &[u8]) -> Result<Parsed, String> {
    if !text.ends_with(b"\n") && !text.trim_ascii_end().ends_with(b"#EXT-X-ENDLIST") {
        return Err("playlist does not end with a newline (being written?)".into());
    }
    match m3u8_rs::parse_playlist_res(text) {
        Ok(Playlist::MasterPlaylist(m)) => Ok(Parsed::Master(crate::groups::declared(&m))),
        Ok(Playlist::MediaPlaylist(p)) => media_from(text, p).map(Parsed::Media),
        Err(e) => Err(format!("unparsable playlist: {}", short_nom_err(&e))),
    }
}

fn short_nom_err(e: &dyn std::fmt::Debug) -> String {
    let mut s = format!("{e:?}");
    if s.len() > 160 {
        s.truncate(160);
        s.push_str("...");
    }
    s
}

/// Per segment, what the line scan reads: (uri, exact EXTINF, date-time, map in force).
type Scanned = (String, Option<i64>, Option<i64>, Option<String>);

fn scan_lines(text: &str) -> Vec<Scanned> {
    let mut out = Vec::new();
    let (mut extinf, mut pdt, mut map) = (None, None, None::<String>);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(v) = line.strip_prefix("#EXTINF:") {
            extinf = parse_duration_us(v.split(',').next().unwrap_or(""));
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = parse_iso8601(v);
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            map = attribute(v, "URI");
        } else if !line.starts_with('#') {
            out.push((line.to_string(), extinf.take(), pdt.take(), map.clone()));
        }
    }
    out
}

/// Value of `NAME=` in an attribute list (quoted or not).
fn attribute(list: &str, name: &str) -> Option<String> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value.to_string());
        }
        rest = next;
    }
    None
}

fn media_from(text: &[u8], p: m3u8_rs::MediaPlaylist) -> Result<MediaInfo, String> {
    let text = std::str::from_utf8(text).map_err(|_| "playlist is not UTF-8".to_string())?;
    let scanned = scan_lines(text);
    if scanned.len() != p.segments.len() {
        return Err(format!("m3u8-rs found {} segments, the line scan {}", p.segments.len(), scanned.len()));
    }
    let base = p.media_sequence as i64;
    let mut entries = Vec::with_capacity(p.segments.len());
    let (mut fmp4, mut vtt) = (false, false);
    for (i, (seg, (uri, extinf, pdt, map))) in p.segments.iter().zip(scanned).enumerate() {
        if seg.uri.trim() != uri {
            return Err(format!("segment {i}: m3u8-rs read {:?}, the line scan {uri:?}", seg.uri));
        }
        if seg.byte_range.is_some() || seg.map.as_ref().is_some_and(|m| m.byte_range.is_some()) {
            return Err("byte-range segments (single-file HLS) are not supported".into());
        }
        let duration_us = extinf.ok_or_else(|| format!("segment {uri:?} has no valid EXTINF"))?;
        let pdt_ms = pdt.or_else(|| seg.program_date_time.map(|d| d.timestamp_millis()));
        let path = uri_path(&uri);
        if map.is_some() || path.ends_with(".m4s") || path.ends_with(".mp4") {
            fmp4 = true;
        }
        if path.ends_with(".vtt") || path.ends_with(".webvtt") {
            vtt = true;
        }
        entries.push(MediaEntry {
            seg_msn: base + i as i64,
            uri,
            duration_us,
            pdt_ms,
            discontinuity: seg.discontinuity,
            map,
        });
    }
    Ok(MediaInfo {
        target_duration: p.target_duration.min(i32::MAX as u64) as i32,
        container: match (vtt, fmp4) {
            (true, _) => Container::WebVtt,
            (false, true) => Container::Fmp4,
            (false, false) => Container::Ts,
        },
        entries,
        ended: p.end_list,
        markers: crate::marker::from_playlist(text),
    })
}

/// The path part of a URI (no query, no fragment).
fn uri_path(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    &uri[..end]
}

/// Where a URI in a playlist at `playlist` points on disk, or None for absolute URLs.
pub fn resolve(playlist: &Path, uri: &str) -> Option<PathBuf> {
    let p = uri_path(uri);
    if p.is_empty() || p.contains("://") {
        return None;
    }
    let p = Path::new(p);
    Some(normalize(&if p.is_absolute() {
        p.to_path_buf()
    } else {
        playlist.parent().unwrap_or(Path::new(".")).join(p)
    }))
}

/// `a/./b/../c` → `a/c`, without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Where a listed file is, seen from the stream's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// In the folder, symlinks resolved.
    Inside(PathBuf),
    /// Would be in the folder, but is not there (yet).
    Missing(PathBuf),
    /// Outside the folder (`..`, an absolute path elsewhere, a symlink leading out): never read.
    Outside(PathBuf),
    /// A URL: not a file.
    Remote,
}

/// Resolves `uri` of the playlist at `playlist` and checks it stays inside `dir` (canonical).
pub fn locate(dir: &Path, playlist: &Path, uri: &str) -> Located {
    match resolve(playlist, uri) {
        Some(path) => confine(dir, path),
        None => Located::Remote,
    }
}

/// Checks that `path` (resolved, normalized) stays inside `dir` (canonical), symlinks followed.
pub fn confine(dir: &Path, path: PathBuf) -> Located {
    if !path.starts_with(dir) {
        return Located::Outside(path);
    }
    match std::fs::canonicalize(&path) {
        Ok(real) if real.starts_with(dir) => Located::Inside(real),
        Ok(real) => Located::Outside(real),
        Err(_) => Located::Missing(path),
    }
}

/// `12.345678` → 12_345_678 µs, exactly (rounded half up past six decimals).
pub fn parse_duration_us(s: &str) -> Option<i64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 9
    {
        return None;
    }
    let mut us: i64 = if int.is_empty() { 0 } else { int.parse::<i64>().ok()? * 1_000_000 };
    let fb = frac.as_bytes();
    for (i, place) in [100_000, 10_000, 1_000, 100, 10, 1].iter().enumerate() {
        if let Some(d) = fb.get(i) {
            us += (d - b'0') as i64 * place;
        }
    }
    if fb.get(6).is_some_and(|d| *d >= b'5') {
        us += 1;
    }
    Some(us)
}

/// Whether `data` is a whole segment of `container`: complete MPEG-TS packets, complete MP4
/// boxes end to end, or a WebVTT file ending with a line break. A file caught while being written
/// fails this (or changes while read).
pub fn whole(container: Container, data: &[u8]) -> Result<(), String> {
    match container {
        Container::Ts => {
            if data.is_empty() || !data.len().is_multiple_of(188) {
                return Err(format!("{} bytes is not a whole number of MPEG-TS packets", data.len()));
            }
            match data.chunks(188).position(|p| p[0] != 0x47) {
                Some(i) => Err(format!("MPEG-TS packet {i} does not start with a sync byte")),
                None => Ok(()),
            }
        }
        Container::Fmp4 => {
            let mut at = 0usize;
            while at < data.len() {
                let rest = &data[at..];
                let size = match rest.get(..8).map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]])) {
                    Some(1) => rest.get(8..16).map(|s| u64::from_be_bytes(s.try_into().unwrap())),
                    Some(0) => Some(rest.len() as u64),
                    Some(n) => Some(n as u64),
                    None => None,
                };
                match size {
                    Some(n) if n >= 8 && n <= rest.len() as u64 => at += n as usize,
                    _ => return Err(format!("an MP4 box at byte {at} runs past the end ({} bytes)", data.len())),
                }
            }
            if data.is_empty() {
                return Err("empty".into());
            }
            Ok(())
        }
        Container::WebVtt => crate::vtt::whole(data),
    }
}

/// Stream and rendition names: the rule the nginx module's URLs accept.
pub use hls_dvr_core::route::is_name as valid_name;

/// A valid name made of `s`: other characters become `_`, long names are cut.
pub fn sanitize_name(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(64).collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG_FMP4: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:5
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init_0.mp4\"
#EXTINF:1.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T13:00:08.866+0000
seg_0_5.m4s
#EXTINF:0.760000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T13:00:09.866+0000
seg_0_6.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init_0b.mp4\"
#EXTINF:17.123457,
seg_0_7.m4s
";

    #[test]
    fn media_playlist_exact_values_and_map_in_force() {
        let Parsed::Media(m) = parse(FFMPEG_FMP4.as_bytes()).unwrap() else { panic!("not media") };
        assert_eq!(m.target_duration, 1);
        assert_eq!(m.container, Container::Fmp4);
        let e = &m.entries;
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].seg_msn, e[1].seg_msn, e[2].seg_msn), (5, 6, 7));
        assert_eq!(e[0].uri, "seg_0_5.m4s");
        assert_eq!((e[0].duration_us, e[1].duration_us, e[2].duration_us), (1_000_000, 760_000, 17_123_457));
        assert_eq!(e[0].pdt_ms, Some(parse_iso8601("2026-11-25T13:00:08.866Z").unwrap()));
        assert_eq!(e[1].pdt_ms.unwrap() - e[0].pdt_ms.unwrap(), 1000);
        assert_eq!(e[2].pdt_ms, None);
        assert_eq!((e[0].discontinuity, e[1].discontinuity, e[2].discontinuity), (false, false, true));
        // m3u8-rs only puts the map on the first segment after the tag; the map stays in force.
        assert_eq!(e[1].map.as_deref(), Some("init_0.mp4"));
        assert_eq!(e[2].map.as_deref(), Some("init_0b.mp4"));
    }

    #[test]
    fn ts_playlists_and_container_detection() {
        let ts = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.002,\na0.ts\n#EXTINF:1.96,\na1.ts\n";
        let Parsed::Media(m) = parse(ts.as_bytes()).unwrap() else { panic!() };
        assert_eq!(m.container, Container::Ts);
        assert_eq!(m.entries[0].seg_msn, 0);
        assert_eq!(m.entries[1].duration_us, 1_960_000);
        assert_eq!(m.entries[0].map, None);
        // .m4s without a map still is fMP4.
        let f = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na0.m4s?x=1\n";
        let Parsed::Media(m) = parse(f.as_bytes()).unwrap() else { panic!() };
        assert_eq!(m.container, Container::Fmp4);
        // An empty live playlist is fine.
        let e = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n";
        let Parsed::Media(m) = parse(e.as_bytes()).unwrap() else { panic!() };
        assert!(m.entries.is_empty());
    }

    #[test]
    fn partial_or_broken_playlists_are_errors() {
        // Cut mid-line: retried next poll, never a truncated URI.
        let cut = &FFMPEG_FMP4[..FFMPEG_FMP4.len() - 4];
        assert!(parse(cut.as_bytes()).is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"garbage\n").is_err());
        assert!(parse(b"#EXTM3U\n#EXTINF:abc,\nx.ts\n").is_err());
        // Single-file HLS is refused, not stored as whole files.
        let br = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:1000@0\nall.ts\n";
        assert!(parse(br.as_bytes()).unwrap_err().contains("byte-range"));
    }

    #[test]
    fn a_final_playlist_without_a_trailing_newline_is_whole() {
        // What GStreamer's hlssink2 writes at the end of a stream.
        let last = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nsegment00000.ts\n\
                    #EXTINF:1.5,\nsegment00001.ts\n#EXT-X-ENDLIST";
        let Parsed::Media(m) = parse(last.as_bytes()).unwrap() else { panic!() };
        assert!(m.ended);
        assert_eq!(m.entries.len(), 2);
        // The same cut anywhere before the end is still a playlist being written.
        for cut in [last.len() - 3, last.len() - 20] {
            assert!(parse(&last.as_bytes()[..cut]).is_err(), "{:?}", &last[..cut]);
        }
        let Parsed::Media(live) = parse(FFMPEG_FMP4.as_bytes()).unwrap() else { panic!() };
        assert!(!live.ended);
    }

    #[test]
    fn durations_are_exact() {
        assert_eq!(parse_duration_us("2"), Some(2_000_000));
        assert_eq!(parse_duration_us("2.002"), Some(2_002_000));
        assert_eq!(parse_duration_us("19.999999"), Some(19_999_999));
        assert_eq!(parse_duration_us("1.0000005"), Some(1_000_001));
        assert_eq!(parse_duration_us(".5"), Some(500_000));
        assert_eq!(parse_duration_us(""), None);
        assert_eq!(parse_duration_us("-1"), None);
        assert_eq!(parse_duration_us("1e3"), None);
    }

    #[test]
    fn names() {
        assert!(valid_name("out_0"));
        assert!(valid_name("A-b_9"));
        assert!(!valid_name(""));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(&"x".repeat(65)));
        assert_eq!(sanitize_name("stream 1.hd"), "stream_1_hd");
        assert_eq!(sanitize_name(""), "_");
        assert_eq!(sanitize_name(&"é".repeat(70)).len(), 64);
    }

    #[test]
    fn uris_resolve_next_to_their_playlist() {
        let pl = Path::new("/d/sub/out.m3u8");
        assert_eq!(resolve(pl, "a.ts?t=1"), Some(PathBuf::from("/d/sub/a.ts")));
        assert_eq!(resolve(pl, "/abs/a.ts"), Some(PathBuf::from("/abs/a.ts")));
        assert_eq!(resolve(pl, "http://cdn/a.ts"), None);
        assert_eq!(resolve(pl, "../x/./b.ts"), Some(PathBuf::from("/d/x/b.ts")));
    }

    #[test]
    fn whole_segments_are_told_from_cut_ones() {
        let ts: Vec<u8> = (0..10).flat_map(|_| std::iter::once(0x47).chain(std::iter::repeat_n(0u8, 187))).collect();
        assert!(whole(Container::Ts, &ts).is_ok());
        assert!(whole(Container::Ts, &ts[..1000]).is_err());
        let mut bad = ts.clone();
        bad[188 * 3] = 0;
        assert!(whole(Container::Ts, &bad).unwrap_err().contains("packet 3"));
        assert!(whole(Container::Ts, &[]).is_err());
        let boxed = |t: &[u8; 4], body: usize| {
            let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(t);
            b.extend(std::iter::repeat_n(1u8, body));
            b
        };
        let frag = [boxed(b"styp", 4), boxed(b"moof", 100), boxed(b"mdat", 5000)].concat();
        assert!(whole(Container::Fmp4, &frag).is_ok());
        assert!(whole(Container::Fmp4, &frag[..frag.len() - 1]).unwrap_err().contains("runs past the end"));
        assert!(whole(Container::Fmp4, &frag[..10]).is_err());
        assert!(whole(Container::Fmp4, &[0, 0, 0, 4, b'x', b'x', b'x', b'x']).is_err());
    }

    #[test]
    fn listed_files_stay_inside_the_folder() {
        let root = std::env::temp_dir().join(format!("hls-dvr-locate-{}", std::process::id()));
        let dir = root.join("stream");
        std::fs::create_dir_all(dir.join("hd")).unwrap();
        std::fs::write(dir.join("hd/a.ts"), b"a").unwrap();
        std::fs::write(root.join("secret.ts"), b"s").unwrap();
        std::os::unix::fs::symlink(root.join("secret.ts"), dir.join("hd/link.ts")).unwrap();
        std::os::unix::fs::symlink(dir.join("hd/a.ts"), dir.join("hd/ok.ts")).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        let pl = dir.join("hd/index.m3u8");
        assert_eq!(locate(&dir, &pl, "a.ts"), Located::Inside(dir.join("hd/a.ts")));
        assert_eq!(locate(&dir, &pl, "ok.ts"), Located::Inside(dir.join("hd/a.ts")));
        assert_eq!(locate(&dir, &pl, "later.ts"), Located::Missing(dir.join("hd/later.ts")));
        assert!(matches!(locate(&dir, &pl, "link.ts"), Located::Outside(_)));
        assert!(matches!(locate(&dir, &pl, "../../secret.ts"), Located::Outside(_)));
        assert!(matches!(locate(&dir, &pl, "/etc/passwd"), Located::Outside(_)));
        assert!(matches!(locate(&dir, &pl, "../hd/../../stream/hd/a.ts"), Located::Inside(_)));
        assert_eq!(locate(&dir, &pl, "https://cdn/a.ts"), Located::Remote);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn attributes() {
        assert_eq!(attribute("URI=\"init.mp4\",BYTERANGE=\"10@0\"", "URI").as_deref(), Some("init.mp4"));
        assert_eq!(attribute("BYTERANGE=\"10@0\",URI=\"i,n.mp4\"", "URI").as_deref(), Some("i,n.mp4"));
        assert_eq!(attribute("X=1", "URI"), None);
    }
}
