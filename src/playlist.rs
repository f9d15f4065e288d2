//! Playlist text, built from store rows (RFC 8216bis).
//!
//! Rules users hit (ARCHITECTURE.md, "Playlists"): the target duration never shrinks below any listed
//! segment; media and discontinuity sequence numbers come from the index so they only increase;
//! program date-times come from the uploader, consistent across renditions; a sliding live
//! playlist carries no EXT-X-PLAYLIST-TYPE and no EXT-X-ENDLIST.

use std::fmt::Write as _;

use crate::store::{Container, IndexEntry, Rendition};

/// The multivariant playlist. BANDWIDTH is mandatory: a rendition whose bandwidth is not known yet
/// is listed with 1, so players treat it as the lowest variant until the uploader learns it.
pub fn master(renditions: &[Rendition]) -> String {
    let mut out = String::with_capacity(128 + renditions.len() * 128);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut sorted: Vec<&Rendition> = renditions.iter().collect();
    // Lowest bandwidth first: players that start at the first variant start fast.
    sorted.sort_by(|a, b| a.bandwidth.unwrap_or(0).cmp(&b.bandwidth.unwrap_or(0)).then(a.name.cmp(&b.name)));
    for r in sorted {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", r.bandwidth.filter(|b| *b > 0).unwrap_or(1));
        if let Some(c) = r.codecs.as_deref().filter(|c| is_attr_safe(c)) {
            let _ = write!(out, ",CODECS=\"{c}\"");
        }
        if let Some(res) = r.resolution.as_deref().filter(|s| is_resolution(s)) {
            let _ = write!(out, ",RESOLUTION={res}");
        }
        if let Some(fr) = r.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
            let _ = write!(out, ",FRAME-RATE={fr:.3}");
        }
        let _ = write!(out, "\n{}/index.m3u8\n", r.name);
    }
    out
}

fn is_attr_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"')
}

fn is_resolution(s: &str) -> bool {
    match s.split_once('x') {
        Some((w, h)) => w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok(),
        None => false,
    }
}

/// EXT-X-TARGETDURATION: each EXTINF rounded to the nearest integer must not exceed it.
pub fn target_duration(stored: i32, window: &[IndexEntry]) -> i64 {
    let longest = window.iter().map(|e| e.duration_us).max().unwrap_or(0);
    ((longest + 500_000) / 1_000_000).max(stored as i64).max(1)
}

/// Formats microseconds as decimal seconds without float rounding: 2000000 -> "2.000", 1960000 -> "1.960".
fn seconds(us: i64, out: &mut String) {
    let us = us.max(0);
    let _ = write!(out, "{}.{:06}", us / 1_000_000, us % 1_000_000);
    // Keep at least millisecond precision, drop trailing zeros beyond it.
    while out.ends_with('0') && out.len() >= 4 && out.as_bytes()[out.len() - 4] != b'.' {
        out.pop();
    }
}

/// ISO 8601 UTC with milliseconds, from ms since the epoch.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm), valid for the whole i64 day range we can meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// Largest gap between a segment's date-time and its predecessor's end that still counts as
/// continuous; beyond it the segment carries its own EXT-X-PROGRAM-DATE-TIME.
const PDT_SLACK_MS: i64 = 50;

/// The live media playlist for `window` (consecutive msns, oldest first).
pub fn media(r: &Rendition, window: &[IndexEntry]) -> String {
    let mut out = String::with_capacity(256 + window.len() * 64);
    let version = if r.container == Container::Fmp4 { 6 } else { 3 };
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{}\n",
        target_duration(r.target_duration, window)
    );
    let (first_msn, first_disc) = window.first().map_or((r.head_msn + 1, r.head_disc_seq), |e| (e.msn, e.disc_seq));
    // The first segment's own tag is not written (it would be a leading tag with no segment
    // before it), so the sequence is that segment's own discontinuity number.
    let _ = write!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}\n#EXT-X-DISCONTINUITY-SEQUENCE:{first_disc}\n");
    let ext = r.container.segment_ext();
    let mut init: Option<i64> = None;
    let mut expect_pdt: Option<i64> = None;
    for (i, e) in window.iter().enumerate() {
        let disc = i > 0 && e.discontinuity;
        if disc {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if r.container == Container::Fmp4 && e.init_msn.is_some() && (e.init_msn != init || disc) {
            init = e.init_msn;
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", e.init_msn.unwrap_or(0));
        }
        if disc || expect_pdt.is_none_or(|x| (e.pdt_ms - x).abs() > PDT_SLACK_MS) {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(e.pdt_ms));
        }
        expect_pdt = Some(e.pdt_ms + e.duration_us / 1000);
        out.push_str("#EXTINF:");
        seconds(e.duration_us, &mut out);
        let _ = write!(out, ",\n{}.{ext}\n", e.msn);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SourcePos;

    fn rendition(container: Container) -> Rendition {
        Rendition {
            name: "hd".into(),
            container,
            target_duration: 2,
            bandwidth: Some(2_000_000),
            codecs: Some("avc1.64001f,mp4a.40.2".into()),
            resolution: Some("1280x720".into()),
            frame_rate: Some(25.0),
            head_msn: 9,
            head_disc_seq: 1,
            head_pdt_ms: 0,
            source: SourcePos::default(),
            updated_ms: 0,
        }
    }

    fn seg(msn: i64, disc: bool, disc_seq: i64, init: Option<i64>) -> IndexEntry {
        IndexEntry {
            msn,
            duration_us: 2_000_000,
            pdt_ms: 1_700_000_000_000 + msn * 2000,
            discontinuity: disc,
            disc_seq,
            init_msn: init,
            size: 1000,
            added_ms: 0,
        }
    }

    #[test]
    fn media_playlist_parses_and_keeps_sequences() {
        let r = rendition(Container::Ts);
        let w = vec![seg(5, false, 0, None), seg(6, true, 1, None), seg(7, false, 1, None)];
        let text = media(&r, &w);
        let pl = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
            other => panic!("not a media playlist: {other:?}\n{text}"),
        };
        assert_eq!(pl.media_sequence, 5);
        assert_eq!(pl.discontinuity_sequence, 0);
        assert_eq!(pl.target_duration, 2);
        assert!(pl.playlist_type.is_none());
        assert!(!pl.end_list);
        assert_eq!(pl.segments.len(), 3);
        assert_eq!(pl.segments[0].uri, "5.ts");
        assert!(pl.segments[1].discontinuity);
        assert!(!pl.segments[0].discontinuity);
        assert_eq!(pl.segments[1].duration, 2.0);
        // Date-time on the first segment and after the discontinuity only.
        assert!(pl.segments[0].program_date_time.is_some());
        assert!(pl.segments[1].program_date_time.is_some());
        assert!(pl.segments[2].program_date_time.is_none());

        // Sliding past the discontinuity: the sequence counts it, the tag goes.
        let text = media(&r, &w[1..]);
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn fmp4_playlist_names_init_segments() {
        let r = rendition(Container::Fmp4);
        let w = vec![seg(3, false, 0, Some(0)), seg(4, false, 0, Some(0)), seg(5, true, 1, Some(5))];
        let text = media(&r, &w);
        assert!(text.contains("#EXT-X-VERSION:6\n"));
        assert_eq!(text.matches("#EXT-X-MAP:URI=\"init-0.mp4\"").count(), 1);
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-5.mp4\""));
        assert!(text.contains("\n3.m4s\n"));
        let pl = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(pl.segments[0].map.as_ref().unwrap().uri, "init-0.mp4");
    }

    #[test]
    fn target_duration_covers_the_longest_segment() {
        let mut w = vec![seg(1, false, 0, None)];
        w[0].duration_us = 2_600_000;
        assert_eq!(target_duration(2, &w), 3);
        w[0].duration_us = 2_400_000;
        assert_eq!(target_duration(2, &w), 2);
        assert_eq!(target_duration(6, &w), 6);
        assert_eq!(target_duration(0, &[]), 1);
    }

    #[test]
    fn durations_are_exact() {
        let mut s = String::new();
        seconds(1_960_000, &mut s);
        assert_eq!(s, "1.960");
        s.clear();
        seconds(2_000_000, &mut s);
        assert_eq!(s, "2.000");
        s.clear();
        seconds(3_333_333, &mut s);
        assert_eq!(s, "3.333333");
    }

    #[test]
    fn dates_are_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn master_lists_renditions_with_attributes() {
        let mut low = rendition(Container::Ts);
        low.name = "sd".into();
        low.bandwidth = Some(500_000);
        low.resolution = Some("bad\"res".into());
        let mut unknown = rendition(Container::Ts);
        unknown.name = "x".into();
        unknown.bandwidth = None;
        unknown.codecs = None;
        let text = master(&[rendition(Container::Ts), low, unknown]);
        let pl = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
            other => panic!("{other:?}"),
        };
        let uris: Vec<_> = pl.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(uris, vec!["x/index.m3u8", "sd/index.m3u8", "hd/index.m3u8"]);
        assert_eq!(pl.variants[2].bandwidth, 2_000_000);
        assert_eq!(pl.variants[2].codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert!(pl.variants[1].resolution.is_none());
        assert_eq!(pl.variants[0].bandwidth, 1);
    }
}
