//! Playlist text, built from store rows (RFC 8216bis).
//!
//! Rules users hit (ARCHITECTURE.md, "Playlists"): the target duration never shrinks below any listed
//! segment; media and discontinuity sequence numbers come from the index so they only increase;
//! program date-times come from the uploader, consistent across renditions; a sliding live
//! playlist carries no EXT-X-PLAYLIST-TYPE and no EXT-X-ENDLIST.

use std::fmt::Write as _;

use crate::clock::iso8601;
use crate::markers::{self, Marker, MarkerForm};
use crate::model::{Container, Part, PartPos, Rendition};
use crate::parts::{self, Report};
use crate::window::{Item, PlaylistType, View};

/// EXT-X-TARGETDURATION: each EXTINF rounded to the nearest integer must not exceed it.
pub fn target_duration(stored: i32, items: &[Item]) -> i64 {
    let longest = items.iter().map(Item::duration_us).max().unwrap_or(0);
    ((longest + 500_000) / 1_000_000).max(stored as i64).max(1)
}

/// Formats microseconds as decimal seconds without float rounding: 2000000 -> "2.000", 1960000 -> "1.960".
pub(crate) fn seconds(us: i64, out: &mut String) {
    let us = us.max(0);
    let _ = write!(out, "{}.{:06}", us / 1_000_000, us % 1_000_000);
    // Keep at least millisecond precision, drop trailing zeros beyond it.
    while out.ends_with('0') && out.len() >= 4 && out.as_bytes()[out.len() - 4] != b'.' {
        out.pop();
    }
}

/// Largest gap between a segment's date-time and its predecessor's end that still counts as
/// continuous; beyond it the segment carries its own EXT-X-PROGRAM-DATE-TIME.
pub(crate) const PDT_SLACK_MS: i64 = 50;

/// Delta updates may skip segments older than this many target durations (RFC 8216bis
/// 4.4.3.8: at least six).
pub const SKIP_TARGET_DURATIONS: i64 = 6;

/// The low-latency edge of a live playlist (see [`crate::parts`]).
#[derive(Debug, Clone, Copy)]
pub struct LowLatency<'a> {
    pub target_us: i64,
    /// Parts of the last listed segments and of the segment in progress, by msn and index.
    pub parts: &'a [Part],
    /// The other renditions of the stream.
    pub reports: &'a [Report],
}

/// The markers a media playlist lists, and in which form (`hls_dvr_ad_markers`).
#[derive(Debug, Clone, Copy)]
pub struct Marks<'a> {
    /// Markers overlapping what the view lists, by start.
    pub list: &'a [Marker],
    pub form: MarkerForm,
}

impl Marks<'_> {
    pub const NONE: Marks<'static> = Marks { list: &[], form: MarkerForm::Off };
}

/// The media playlist of `view`. `delta`: the client asked for a delta update (`_HLS_skip`); it
/// is given one when the playlist can change (no EXT-X-ENDLIST).
/// `args` follows every segment and init URI (see [`crate::params::PlaylistQuery::for_segments`]).
/// `ll`: the parts at the live edge, for a rendition that has them (none in other views).
/// `marks`: each marker is written once, before the first segment listed that it starts in or
/// before (so a delta update keeps those of the segments it skips, as RFC 8216bis asks).
pub fn media(r: &Rendition, view: &View, delta: bool, args: &str, ll: Option<&LowLatency>, marks: &Marks) -> String {
    let items = &view.items;
    let mut out = String::with_capacity(512 + items.len() * 64);
    let td = target_duration(r.target_duration, items);
    // Delta updates and blocking reloads are offered while the playlist can still change.
    let live = !view.ended;
    let gaps = items.iter().any(|i| matches!(i, Item::Gap { .. }));
    let version = match (live, gaps, r.container) {
        (true, _, _) => 9,
        (false, true, _) => 8,
        (false, false, Container::Fmp4) => 6,
        (false, false, Container::Ts | Container::WebVtt) => 3,
    };
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{td}\n");
    let (first_msn, first_disc) = items.first().map_or((r.head_msn + 1, r.head_disc_seq), |i| (i.msn(), i.disc_seq()));
    // The first segment's own discontinuity tag is not written (it would lead the playlist), so
    // the sequence is that segment's own discontinuity number.
    let _ = write!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}\n#EXT-X-DISCONTINUITY-SEQUENCE:{first_disc}\n");
    match view.kind {
        PlaylistType::Live => {}
        PlaylistType::Event => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-START:TIME-OFFSET=0\n"),
        PlaylistType::Vod => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
    }
    let skip_until_us = SKIP_TARGET_DURATIONS * td * 1_000_000;
    if live {
        let _ = write!(out, "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL={}.0", skip_until_us / 1_000_000);
        if view.at_edge {
            out.push_str(",CAN-BLOCK-RELOAD=YES");
        }
        if let Some(ll) = ll {
            out.push_str(",PART-HOLD-BACK=");
            seconds(parts::part_hold_back_us(ll.target_us), &mut out);
            out.push_str("\n#EXT-X-PART-INF:PART-TARGET=");
            seconds(ll.target_us, &mut out);
        }
        out.push('\n');
    }
    let skipped = if delta && live { skippable(items, skip_until_us) } else { 0 };
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let ext = r.container.segment_ext();
    let mut init: Option<i64> = None;
    let mut expect_pdt: Option<i64> = None;
    // Markers written so far (they are sorted by start).
    let mut dated = 0;
    for (i, item) in items.iter().enumerate().skip(skipped) {
        let e = match item {
            Item::Segment(e) => e,
            Item::Gap { msn, duration_us, .. } => {
                out.push_str("#EXT-X-GAP\n#EXTINF:");
                seconds(*duration_us, &mut out);
                let _ = write!(out, ",\n{msn}.{ext}{args}\n");
                expect_pdt = expect_pdt.map(|t| t + duration_us / 1000);
                continue;
            }
        };
        let disc = i > 0 && e.discontinuity;
        if disc {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        // After a skip, the first segment listed carries its map and date again: what the
        // skipped lines said is not repeated, but what applies to listed segments is.
        if r.container == Container::Fmp4 && e.init_msn.is_some() && (e.init_msn != init || disc) {
            init = e.init_msn;
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4{args}\"", e.init_msn.unwrap_or(0));
        }
        if disc || expect_pdt.is_none_or(|x| (e.pdt_ms - x).abs() > PDT_SLACK_MS) {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(e.pdt_ms));
        }
        expect_pdt = Some(e.pdt_ms + e.duration_us / 1000);
        if marks.form.dateranges() {
            let due = marks.list[dated..].partition_point(|m| m.start_ms < e.pdt_ms + e.duration_us / 1000);
            for m in &marks.list[dated..dated + due] {
                m.write_daterange(&mut out);
            }
            dated += due;
        }
        if marks.form.cues() {
            markers::write_cues(marks.list, e.pdt_ms, e.duration_us, &mut out);
        }
        if let Some(ll) = ll {
            let from = ll.parts.partition_point(|p| p.msn < e.msn);
            let to = ll.parts.partition_point(|p| p.msn <= e.msn);
            write_parts(&ll.parts[from..to], ext, args, &mut out);
        }
        out.push_str("#EXTINF:");
        seconds(e.duration_us, &mut out);
        let _ = write!(out, ",\n{}.{ext}{args}\n", e.msn);
    }
    if let Some(ll) = ll {
        let last = items.last().map_or(r.head_msn, Item::msn);
        let progress = parts::in_progress(last, ll.parts);
        write_parts(progress, ext, args, &mut out);
        let segment_us = items.last().map_or(td * 1_000_000, Item::duration_us);
        let PartPos { msn, part } = parts::hint(last, segment_us, progress);
        let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{msn}.{part}.{ext}{args}\"");
        for report in ll.reports {
            let _ = write!(
                out,
                "#EXT-X-RENDITION-REPORT:URI=\"../{}/index.m3u8\",LAST-MSN={}",
                report.rendition, report.last_msn
            );
            if let Some(p) = report.last_part {
                let _ = write!(out, ",LAST-PART={p}");
            }
            out.push('\n');
        }
    }
    if view.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// EXT-X-PART lines; a part's URI is `{msn}.{index}.{ext}` and never changes.
fn write_parts(list: &[Part], ext: &str, args: &str, out: &mut String) {
    for p in list {
        out.push_str("#EXT-X-PART:DURATION=");
        seconds(p.duration_us, out);
        let _ = write!(out, ",URI=\"{}.{}.{ext}{args}\"", p.msn, p.index);
        if p.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

/// How many leading entries lie wholly before the skip boundary, `skip_until_us` from the end.
fn skippable(items: &[Item], skip_until_us: i64) -> usize {
    let total: i64 = items.iter().map(Item::duration_us).sum();
    let mut end = 0;
    items
        .iter()
        .take_while(|i| {
            end += i.duration_us();
            total - end >= skip_until_us
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IndexEntry, SourcePos};

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
            ended: false,
            media: crate::model::MediaType::Muxed,
            parts: None,
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        }
    }

    fn live(entries: &[IndexEntry]) -> View<'_> {
        View {
            items: entries.iter().map(Item::Segment).collect(),
            kind: PlaylistType::Live,
            ended: false,
            at_edge: true,
        }
    }

    fn parse(text: &str) -> m3u8_rs::MediaPlaylist {
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
            other => panic!("not a media playlist: {other:?}\n{text}"),
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
            key_frame: None,
            thumbnail: false,
        }
    }

    #[test]
    fn media_playlist_parses_and_keeps_sequences() {
        let r = rendition(Container::Ts);
        let w = vec![seg(5, false, 0, None), seg(6, true, 1, None), seg(7, false, 1, None)];
        let text = media(&r, &live(&w), false, "", None, &Marks::NONE);
        let pl = parse(&text);
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
        let text = media(&r, &live(&w[1..]), false, "", None, &Marks::NONE);
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn fmp4_playlist_names_init_segments() {
        let r = rendition(Container::Fmp4);
        let w = vec![seg(3, false, 0, Some(0)), seg(4, false, 0, Some(0)), seg(5, true, 1, Some(5))];
        let mut clip = live(&w);
        (clip.kind, clip.ended) = (PlaylistType::Vod, true);
        let text = media(&r, &clip, false, "", None, &Marks::NONE);
        assert!(text.contains("#EXT-X-VERSION:6\n"));
        assert_eq!(text.matches("#EXT-X-MAP:URI=\"init-0.mp4\"").count(), 1);
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-5.mp4\""));
        assert!(text.contains("\n3.m4s\n"));
        let pl = parse(&text);
        assert_eq!(pl.segments[0].map.as_ref().unwrap().uri, "init-0.mp4");
    }

    #[test]
    fn target_duration_covers_the_longest_segment() {
        let mut e = seg(1, false, 0, None);
        e.duration_us = 2_600_000;
        assert_eq!(target_duration(2, &[Item::Segment(&e)]), 3);
        e.duration_us = 2_400_000;
        assert_eq!(target_duration(2, &[Item::Segment(&e)]), 2);
        assert_eq!(target_duration(6, &[Item::Segment(&e)]), 6);
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
    fn kinds_of_playlists_carry_their_tags() {
        let r = rendition(Container::Ts);
        let w: Vec<_> = (0..5).map(|m| seg(m, false, 0, None)).collect();
        let live_text = media(&r, &live(&w), false, "", None, &Marks::NONE);
        assert!(live_text.contains("#EXT-X-VERSION:9\n"));
        assert!(live_text.contains("#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12.0,CAN-BLOCK-RELOAD=YES\n"));
        assert!(!live_text.contains("PLAYLIST-TYPE") && !live_text.contains("ENDLIST"));
        let mut delayed = live(&w);
        delayed.at_edge = false;
        assert!(media(&r, &delayed, false, "", None, &Marks::NONE).contains("CAN-SKIP-UNTIL=12.0\n"));
        let mut event = live(&w);
        event.kind = PlaylistType::Event;
        let text = media(&r, &event, false, "", None, &Marks::NONE);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-START:TIME-OFFSET=0\n"));
        let pl = parse(&text);
        assert!(pl.start.is_some() && pl.playlist_type == Some(m3u8_rs::MediaPlaylistType::Event));
        event.ended = true;
        let text = media(&r, &event, true, "", None, &Marks::NONE);
        assert!(text.ends_with("#EXT-X-ENDLIST\n") && !text.contains("SERVER-CONTROL") && !text.contains("SKIP:"));
        let mut vod = live(&w);
        (vod.kind, vod.ended) = (PlaylistType::Vod, true);
        let pl = parse(&media(&r, &vod, false, "", None, &Marks::NONE));
        assert!(pl.end_list && pl.playlist_type == Some(m3u8_rs::MediaPlaylistType::Vod));
    }

    fn parts_of(msns: std::ops::Range<i64>, per: i32) -> Vec<Part> {
        msns.flat_map(|msn| {
            (0..per).map(move |i| Part {
                msn,
                index: i,
                // 25 fps, "0.5 s" parts: 13 and 12 frames in turn; four of them make 2 s.
                duration_us: if i % 2 == 0 { 520_000 } else { 480_000 },
                independent: i == 0,
                discontinuity: false,
                first_chunk: i as u32,
                sizes: vec![1000],
            })
        })
        .collect()
    }

    #[test]
    fn low_latency_playlists_list_parts_hint_the_next_and_report_the_others() {
        let r = rendition(Container::Fmp4);
        let w: Vec<_> = (0..10).map(|m| seg(m, false, 0, Some(0))).collect();
        // Parts of the last segments, and two of segment 10 in progress.
        let mut parts = parts_of(6..10, 4);
        parts.extend(parts_of(10..11, 2));
        let reports = vec![
            Report { rendition: "audio".into(), last_msn: 10, last_part: Some(2) },
            Report { rendition: "folder".into(), last_msn: 9, last_part: None },
        ];
        let ll = LowLatency { target_us: 520_000, parts: &parts, reports: &reports };
        let text = media(&r, &live(&w), false, "?t=1", Some(&ll), &Marks::NONE);
        assert!(text.contains(
            "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12.0,CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.560\n\
             #EXT-X-PART-INF:PART-TARGET=0.520\n"
        ));
        // Each segment's parts come before its EXTINF and add up to its duration.
        let lines: Vec<&str> = text.lines().collect();
        let mut pending = 0f64;
        let mut listed = 0;
        for l in &lines {
            if let Some(d) = l.strip_prefix("#EXT-X-PART:DURATION=") {
                let d: f64 = d.split(',').next().unwrap().parse().unwrap();
                assert!(d <= 0.520);
                pending += d;
                listed += 1;
            } else if let Some(d) = l.strip_prefix("#EXTINF:") {
                let d: f64 = d.trim_end_matches(',').parse().unwrap();
                assert!(pending == 0.0 || (pending - d).abs() < 1e-6, "{pending} vs {d}");
                pending = 0.0;
            }
        }
        assert_eq!(listed, 4 * 4 + 2, "the last three target durations and the segment in progress");
        assert!(text.contains("#EXT-X-PART:DURATION=0.520,URI=\"6.0.m4s?t=1\",INDEPENDENT=YES\n"));
        assert!(text.contains("#EXT-X-PART:DURATION=0.480,URI=\"6.1.m4s?t=1\"\n#EXT-X-PART"));
        assert!(text
            .contains("#EXTINF:2.000,\n9.m4s?t=1\n#EXT-X-PART:DURATION=0.520,URI=\"10.0.m4s?t=1\",INDEPENDENT=YES\n"));
        // The hint is last but for the reports, which name the others.
        assert!(text.ends_with(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"10.2.m4s?t=1\"\n\
             #EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=10,LAST-PART=2\n\
             #EXT-X-RENDITION-REPORT:URI=\"../folder/index.m3u8\",LAST-MSN=9\n"
        ));
        // A delta update skips old segments and keeps every part.
        let delta = media(&r, &live(&w), true, "", Some(&ll), &Marks::NONE);
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"));
        assert_eq!(delta.matches("#EXT-X-PART:").count(), 18);
        // Right after a segment ends, the hint names part 0 of the next.
        let text = media(&r, &live(&w), false, "", Some(&LowLatency { parts: &parts[..16], ..ll }), &Marks::NONE);
        assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"10.0.m4s\"\n"));
        // Without parts, the playlist is what it always was.
        assert!(!media(&r, &live(&w), false, "", None, &Marks::NONE).contains("PART"));
    }

    #[test]
    fn gaps_are_listed_and_dated_around() {
        let r = rendition(Container::Ts);
        let (a, c) = (seg(4, false, 0, None), seg(6, false, 0, None));
        let view = View {
            items: vec![
                Item::Segment(&a),
                Item::Gap { msn: 5, duration_us: 2_000_000, disc_seq: 0 },
                Item::Segment(&c),
            ],
            kind: PlaylistType::Vod,
            ended: true,
            at_edge: false,
        };
        let text = media(&r, &view, false, "", None, &Marks::NONE);
        assert!(text.contains("#EXT-X-VERSION:8\n"));
        assert!(text.contains("#EXT-X-GAP\n#EXTINF:2.000,\n5.ts\n#EXTINF:2.000,\n6.ts\n"), "{text}");
        assert_eq!(parse(&text).segments.len(), 3);
    }

    #[test]
    fn delta_updates_skip_only_what_is_older_than_the_boundary() {
        // 20 segments of 2 s; skip boundary 6 x 2 s = 12 s: 14 segments end 12 s or more before
        // the end (the 14th ends at 28 s of 40 s).
        let mut w: Vec<_> = (0..20).map(|m| seg(m, m == 16, i64::from(m >= 16), Some(0))).collect();
        w[15].init_msn = Some(0);
        let r = rendition(Container::Fmp4);
        let full = media(&r, &live(&w), false, "", None, &Marks::NONE);
        let delta = media(&r, &live(&w), true, "", None, &Marks::NONE);
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=14\n"), "{delta}");
        assert!(delta.contains("#EXT-X-VERSION:9\n"));
        // What is listed is the full playlist's tail, with its map, date and discontinuity.
        let listed: Vec<&str> = delta.lines().skip_while(|l| !l.starts_with("#EXT-X-SKIP")).skip(1).collect();
        assert!(
            listed[0].starts_with("#EXT-X-MAP:URI=\"init-0.mp4\"") && listed[1].starts_with("#EXT-X-PROGRAM-DATE-TIME")
        );
        assert!(delta.contains("#EXT-X-DISCONTINUITY\n"));
        let full_tail: Vec<&str> = full.lines().skip_while(|l| *l != "13.m4s").skip(1).collect();
        assert_eq!(&listed[2..], &full_tail[..]);
        // Short playlists have nothing to skip; the same counting decides.
        assert!(!media(&r, &live(&w[..6]), true, "", None, &Marks::NONE).contains("EXT-X-SKIP"));
    }

    #[test]
    fn markers_are_written_once_before_their_segment_and_kept_by_delta_updates() {
        let r = rendition(Container::Ts);
        let w: Vec<_> = (0..20).map(|m| seg(m, false, 0, None)).collect();
        let at = |msn: i64| 1_700_000_000_000 + msn * 2000;
        // One before everything listed, one inside segment 3, one that starts in segment 18.
        let list = [
            crate::markers::ad_break("early", at(0) - 5000, Some(10)),
            crate::markers::ad_break("mid", at(3) + 500, Some(4)),
            crate::markers::ad_break("late", at(18), Some(2)),
        ];
        let marks = Marks { list: &list, form: MarkerForm::Both };
        let text = media(&r, &live(&w), false, "", None, &marks);
        let before = |id: &str, uri: &str| {
            let d = text.find(&format!("ID=\"{id}\"")).unwrap_or_else(|| panic!("{id} missing:\n{text}"));
            let u = text.find(&format!("\n{uri}\n")).unwrap();
            let prev = text[..u].rfind(".ts\n").unwrap_or(0);
            assert!(prev < d && d < u, "{id} is not right before {uri}:\n{text}");
        };
        before("early", "0.ts");
        before("mid", "3.ts");
        before("late", "18.ts");
        assert_eq!(text.matches("#EXT-X-DATERANGE").count(), 3);
        assert!(text.contains("#EXT-X-CUE-OUT:4.000\n#EXTINF:2.000,\n3.ts"), "{text}");
        assert!(text.contains("#EXT-X-CUE-OUT-CONT:ElapsedTime=1.500,Duration=4.000\n#EXTINF:2.000,\n4.ts"), "{text}");
        assert!(text.contains("#EXT-X-CUE-IN\n#EXTINF:2.000,\n6.ts"), "{text}");
        // A delta update skips segments but no marker.
        let delta = media(&r, &live(&w), true, "", None, &marks);
        assert!(delta.contains("#EXT-X-SKIP"), "{delta}");
        assert_eq!(delta.matches("#EXT-X-DATERANGE").count(), 3, "{delta}");
        // Each form alone, and none.
        let only = |form| media(&r, &live(&w), false, "", None, &Marks { list: &list, form });
        assert!(!only(MarkerForm::Daterange).contains("CUE"));
        assert!(!only(MarkerForm::Cue).contains("DATERANGE"));
        assert_eq!(only(MarkerForm::Off), media(&r, &live(&w), false, "", None, &Marks::NONE));
    }
}
