//! Which segments a media playlist lists, for each way viewers watch:
//!
//! - **live**: the newest `window` of media, optionally ending `delay` behind the live edge;
//! - **start-over** (`start` alone, or an `end` not reached yet): an EVENT playlist from `start`
//!   that grows with the stream and ends once `end` is stored;
//! - **catch-up clip** (`start` and `end`, all of it stored): a VOD playlist that never changes.
//!
//! Windows are measured in media time (the sum of durations), so a 2 h window holds 2 h of video
//! even after the uploader caught up on a backlog; ranges are matched against program date-times
//! (wall clock), a segment belonging to a range when its time span overlaps it. A segment missing
//! from the index inside what is listed (lost, or expired early) becomes an EXT-X-GAP entry, so
//! older history stays reachable; a hole longer than what is left of the window ends it instead.

use crate::clock::iso8601;
use crate::model::BUCKET_MS;
use crate::model::{IndexEntry, Rendition};
use crate::params::PlaylistQuery;

/// One entry of a media playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Segment(&'a IndexEntry),
    /// A segment the index lacks, listed with EXT-X-GAP; its duration is estimated.
    Gap {
        msn: i64,
        duration_us: i64,
        disc_seq: i64,
    },
}

impl Item<'_> {
    pub fn msn(&self) -> i64 {
        match self {
            Item::Segment(e) => e.msn,
            Item::Gap { msn, .. } => *msn,
        }
    }
    pub fn duration_us(&self) -> i64 {
        match self {
            Item::Segment(e) => e.duration_us,
            Item::Gap { duration_us, .. } => *duration_us,
        }
    }
    pub fn disc_seq(&self) -> i64 {
        match self {
            Item::Segment(e) => e.disc_seq,
            Item::Gap { disc_seq, .. } => *disc_seq,
        }
    }
}

/// EXT-X-PLAYLIST-TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// A sliding window: no type.
    Live,
    /// Start-over: only ever appended to.
    Event,
    /// A finished clip: never changes.
    Vod,
}

/// What a media playlist lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View<'a> {
    pub items: Vec<Item<'a>>,
    pub kind: PlaylistType,
    /// EXT-X-ENDLIST: nothing will be added.
    pub ended: bool,
    /// The view follows the live edge (no delay), so a blocking reload can wait for its next segment.
    pub at_edge: bool,
}

impl View<'_> {
    /// The program date-times the view lists, `[first segment's, last segment's end)`: what its
    /// markers must overlap.
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        let mut segments = self.items.iter().filter_map(|i| match i {
            Item::Segment(e) => Some(*e),
            Item::Gap { .. } => None,
        });
        let first = segments.next()?;
        let last = segments.next_back().unwrap_or(first);
        Some((first.pdt_ms, last.pdt_ms + last.duration_us / 1000))
    }
}

/// What to read from the index (ingest time, ms) to build a view, and under which name a worker
/// may keep a copy of those rows. The reads start one bucket early: rows are bucketed by when
/// they were stored, a little after their program date-time (or much later, after an outage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRange {
    pub from_ms: i64,
    pub to_ms: i64,
    /// None for a finished clip: nobody reloads it, so a copy would not be read again.
    pub copy_key: Option<String>,
}

pub fn index_range(
    stream: &str,
    rendition: &str,
    q: &PlaylistQuery,
    window_us: i64,
    min_us: i64,
    now_ms: i64,
) -> IndexRange {
    let slack = BUCKET_MS;
    match (q.start_ms, q.end_ms) {
        (Some(start), Some(end)) if end < now_ms - slack => IndexRange {
            from_ms: start - slack,
            // Rows of the range stored after it (a backlog) within a bucket or two still count.
            to_ms: (end + 2 * slack).min(now_ms),
            copy_key: None,
        },
        (Some(start), _) => IndexRange {
            from_ms: start - slack,
            to_ms: now_ms,
            copy_key: Some(format!("{stream}/{rendition}/from/{}", crate::model::bucket_of(start - slack))),
        },
        (None, _) => {
            let span_ms = window_us.max(min_us) / 1000 + q.delay_ms.unwrap_or(0);
            IndexRange {
                from_ms: now_ms - span_ms - slack,
                to_ms: now_ms,
                copy_key: Some(format!("{stream}/{rendition}/live/{window_us}/{}", q.delay_ms.unwrap_or(0))),
            }
        }
    }
}

/// Why nothing can be listed: answered 404 with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Empty(pub String);

/// The view a request asks for. `entries` are sorted by msn without duplicates; `window_us` is
/// the live window (the location's, or the shorter one the query asks for); `min_us` the floor of
/// a live playlist, three target durations (RFC 8216bis 6.2.2).
pub fn select<'a>(
    entries: &'a [IndexEntry],
    head: &Rendition,
    q: &PlaylistQuery,
    window_us: i64,
    min_us: i64,
    now_ms: i64,
) -> Result<View<'a>, Empty> {
    let Some(last) = entries.last() else {
        return Err(Empty(match q.start_ms {
            Some(s) if s > head.head_pdt_ms => {
                format!("the range starts after the newest stored segment ({})", iso8601(head.head_pdt_ms))
            }
            Some(_) => "nothing is stored in the range (it expired, or was never recorded)".into(),
            None => "no segments stored in the live window".into(),
        }));
    };
    let td_us = (head.target_duration.max(1) as i64) * 1_000_000;
    let Some(start) = q.start_ms else {
        return live(entries, head, q.delay_ms, window_us, min_us, td_us);
    };
    // Start-over or clip: the segments whose span overlaps [start, end).
    let end = q.end_ms.unwrap_or(i64::MAX);
    let overlaps = |e: &IndexEntry| e.pdt_ms < end && e.pdt_ms + e.duration_us / 1000 > start;
    let Some(first) = entries.iter().position(overlaps) else {
        let oldest = entries[0].pdt_ms;
        return Err(Empty(if end <= oldest {
            format!("the range ends before the oldest stored segment ({})", iso8601(oldest))
        } else {
            format!("the range starts after the newest stored segment ({})", iso8601(last.pdt_ms))
        }));
    };
    let after = entries[first..].iter().position(|e| !overlaps(e)).map_or(entries.len(), |n| first + n);
    let items = with_gaps(&entries[first..after], td_us);
    let stored_to = last.pdt_ms + last.duration_us / 1000;
    // Complete once the store holds the range's end, the stream stopped, or the end is so long
    // past that a segment of it would have arrived by now.
    let complete = q.end_ms.is_some_and(|e| e <= stored_to || e < now_ms - 3 * td_us / 1000 - BUCKET_MS)
        || (head.ended && after == entries.len());
    let kind = if q.end_ms.is_some() && complete { PlaylistType::Vod } else { PlaylistType::Event };
    Ok(View { items, kind, ended: complete, at_edge: !complete })
}

fn live<'a>(
    entries: &'a [IndexEntry],
    head: &Rendition,
    delay_ms: Option<i64>,
    window_us: i64,
    min_us: i64,
    td_us: i64,
) -> Result<View<'a>, Empty> {
    let last = entries.len() - 1;
    let newest = match delay_ms {
        Some(d) if d > 0 => {
            let cutoff = entries[last].pdt_ms - d;
            entries
                .iter()
                .rposition(|e| e.pdt_ms <= cutoff)
                .ok_or_else(|| Empty(format!("a delay of {} s reaches before the oldest stored segment", d / 1000)))?
        }
        _ => last,
    };
    // Walk back from the newest until the window is covered, keeping msns consecutive.
    let want = window_us.max(min_us);
    let mut start = newest;
    let mut total = entries[newest].duration_us;
    while start > 0 && total < want {
        let (prev, cur) = (&entries[start - 1], &entries[start]);
        let missing = cur.msn - prev.msn - 1;
        if missing > 0 {
            let gap_us = gap_duration(prev, cur, missing, td_us) * missing;
            // A hole longer than what is left of the window ends it (and bounds the playlist).
            if gap_us >= want - total {
                break;
            }
            total += gap_us;
        }
        start -= 1;
        total += entries[start].duration_us;
    }
    let ended = head.ended && newest == last;
    Ok(View {
        items: with_gaps(&entries[start..=newest], td_us),
        kind: PlaylistType::Live,
        ended,
        at_edge: delay_ms.unwrap_or(0) == 0 && !ended,
    })
}

/// Each missing segment's estimated duration: the time between its neighbours shared out, or
/// the target duration when the dates do not tell. Never over the target duration, which a
/// playlist's EXTINF may not exceed.
fn gap_duration(prev: &IndexEntry, next: &IndexEntry, missing: i64, td_us: i64) -> i64 {
    let between_us = (next.pdt_ms - prev.pdt_ms) * 1000 - prev.duration_us;
    if between_us > 0 {
        (between_us / missing).clamp(1, td_us)
    } else {
        td_us
    }
}

/// The segments with a gap entry for each msn missing between them.
fn with_gaps(run: &[IndexEntry], td_us: i64) -> Vec<Item<'_>> {
    let mut out = Vec::with_capacity(run.len());
    for (i, e) in run.iter().enumerate() {
        if let Some(prev) = i.checked_sub(1).map(|p| &run[p]) {
            let missing = e.msn - prev.msn - 1;
            let duration_us = gap_duration(prev, e, missing.max(1), td_us);
            out.extend((prev.msn + 1..e.msn).map(|msn| Item::Gap { msn, duration_us, disc_seq: prev.disc_seq }));
        }
        out.push(Item::Segment(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Container, SourcePos};

    const T0: i64 = 1_764_000_000_000;

    fn seg(msn: i64, dur_s: f64) -> IndexEntry {
        IndexEntry {
            msn,
            duration_us: (dur_s * 1e6) as i64,
            pdt_ms: T0 + msn * 2000,
            discontinuity: false,
            disc_seq: 0,
            init_msn: None,
            size: 100,
            added_ms: T0 + msn * 2000 + 2500,
            key_frame: None,
            thumbnail: false,
        }
    }

    fn head(ended: bool) -> Rendition {
        Rendition {
            name: "hd".into(),
            container: Container::Ts,
            target_duration: 2,
            bandwidth: None,
            codecs: None,
            resolution: None,
            frame_rate: None,
            head_msn: 99,
            head_disc_seq: 0,
            head_pdt_ms: T0 + 99 * 2000,
            source: SourcePos::default(),
            updated_ms: 0,
            ended,
            media: crate::model::MediaType::Muxed,
            parts: None,
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        }
    }

    fn msns(v: &View) -> Vec<i64> {
        v.items.iter().map(Item::msn).collect()
    }

    fn live_q() -> PlaylistQuery {
        PlaylistQuery::default()
    }

    fn range(start_s: f64, end_s: Option<f64>) -> PlaylistQuery {
        let t = |s: f64| T0 + (s * 1000.0) as i64;
        PlaylistQuery { start_ms: Some(t(start_s)), end_ms: end_s.map(t), ..Default::default() }
    }

    const NOW: i64 = T0 + 200_000;

    #[test]
    fn live_takes_the_newest_segments_covering_the_window() {
        let all: Vec<_> = (0..100).map(|i| seg(i, 2.0)).collect();
        let v = select(&all, &head(false), &live_q(), 10_000_000, 0, NOW).unwrap();
        assert_eq!(msns(&v), (95..100).collect::<Vec<_>>());
        assert_eq!((v.kind, v.ended, v.at_edge), (PlaylistType::Live, false, true));
        // A window that is not a multiple of the segment duration includes the partial segment.
        let v = select(&all, &head(false), &live_q(), 9_000_000, 0, NOW).unwrap();
        assert_eq!(v.items.len(), 5);
        // Never shorter than the minimum; a short history gives everything.
        assert_eq!(select(&all, &head(false), &live_q(), 1_000_000, 6_000_000, NOW).unwrap().items.len(), 3);
        assert_eq!(select(&all[..3], &head(false), &live_q(), 3_600_000_000, 0, NOW).unwrap().items.len(), 3);
        assert!(select(&[], &head(false), &live_q(), 10, 0, NOW).is_err());
    }

    #[test]
    fn delayed_live_ends_delay_behind_the_edge() {
        let all: Vec<_> = (0..100).map(|i| seg(i, 2.0)).collect();
        let q = PlaylistQuery { delay_ms: Some(60_000), ..Default::default() };
        let v = select(&all, &head(false), &q, 10_000_000, 0, NOW).unwrap();
        // The newest is 99 at T0+198 s; 60 s earlier is msn 69.
        assert_eq!(msns(&v), (65..70).collect::<Vec<_>>());
        assert!(!v.at_edge && !v.ended);
        let far = PlaylistQuery { delay_ms: Some(3_600_000), ..Default::default() };
        assert!(select(&all, &head(false), &far, 10_000_000, 0, NOW).unwrap_err().0.contains("delay of 3600 s"));
        // An ended stream ends the delayed view only once it reaches the end.
        assert!(!select(&all, &head(true), &q, 10_000_000, 0, NOW).unwrap().ended);
        assert!(select(&all, &head(true), &live_q(), 10_000_000, 0, NOW).unwrap().ended);
    }

    #[test]
    fn holes_become_gaps_and_long_holes_end_the_window() {
        let mut all: Vec<_> = (0..10).map(|i| seg(i, 2.0)).collect();
        all.remove(6);
        let v = select(&all, &head(false), &live_q(), 100_000_000, 0, NOW).unwrap();
        assert_eq!(msns(&v), (0..10).collect::<Vec<_>>());
        assert_eq!(v.items[6], Item::Gap { msn: 6, duration_us: 2_000_000, disc_seq: 0 });
        // A hole of 50 segments cannot fit in a 20 s window: the window stops at it.
        let mut sparse: Vec<_> = (0..10).map(|i| seg(i, 2.0)).collect();
        sparse.extend((60..65).map(|i| seg(i, 2.0)));
        let v = select(&sparse, &head(false), &live_q(), 20_000_000, 0, NOW).unwrap();
        assert_eq!(msns(&v), (60..65).collect::<Vec<_>>());
        // Gap durations come from the dates around them, capped at the target duration.
        let mut odd = vec![seg(0, 2.0), seg(3, 2.0)];
        odd[1].pdt_ms = odd[0].pdt_ms + 5000;
        let items = with_gaps(&odd, 2_000_000);
        assert_eq!(items[1], Item::Gap { msn: 1, duration_us: 1_500_000, disc_seq: 0 });
    }

    #[test]
    fn a_past_range_is_a_clip_and_a_running_one_an_event() {
        let all: Vec<_> = (0..100).map(|i| seg(i, 2.0)).collect();
        // 40 s from T0+21 s: segments overlapping [21, 61): msn 10 (20-22) to 30 (60-62).
        let v = select(&all, &head(false), &range(21.0, Some(61.0)), 0, 0, NOW).unwrap();
        assert_eq!(msns(&v), (10..=30).collect::<Vec<_>>());
        assert_eq!((v.kind, v.ended, v.at_edge), (PlaylistType::Vod, true, false));
        // Boundaries: a segment that ends exactly at start, or starts exactly at end, is out.
        let v = select(&all, &head(false), &range(20.0, Some(60.0)), 0, 0, NOW).unwrap();
        assert_eq!(msns(&v), (10..30).collect::<Vec<_>>());
        // Start alone: from start to the live edge, growing.
        let v = select(&all, &head(false), &range(150.0, None), 0, 0, NOW).unwrap();
        assert_eq!(msns(&v), (75..100).collect::<Vec<_>>());
        assert_eq!((v.kind, v.ended, v.at_edge), (PlaylistType::Event, false, true));
        // An end the store has not reached yet: an event until it has.
        let v = select(&all, &head(false), &range(190.0, Some(230.0)), 0, 0, NOW).unwrap();
        assert_eq!((v.kind, v.ended), (PlaylistType::Event, false));
        // The stream ended: the start-over ends too.
        let v = select(&all, &head(true), &range(150.0, None), 0, 0, NOW).unwrap();
        assert_eq!((v.kind, v.ended), (PlaylistType::Event, true));
        // An end long past with nothing after it (the encoder stopped without ENDLIST): a clip.
        let v = select(&all, &head(false), &range(190.0, Some(230.0)), 0, 0, NOW + 3_600_000).unwrap();
        assert_eq!(v.kind, PlaylistType::Vod);
    }

    #[test]
    fn ranges_outside_what_is_stored_say_so_and_partial_ones_are_clamped() {
        let all: Vec<_> = (50..100).map(|i| seg(i, 2.0)).collect();
        assert!(select(&all, &head(false), &range(0.0, Some(40.0)), 0, 0, NOW).unwrap_err().0.contains("ends before"));
        assert!(select(&all, &head(false), &range(300.0, None), 0, 0, NOW).unwrap_err().0.contains("starts after"));
        let v = select(&all, &head(false), &range(0.0, Some(110.0)), 0, 0, NOW).unwrap();
        assert_eq!(msns(&v), (50..55).collect::<Vec<_>>());
    }

    #[test]
    fn a_discontinuity_inside_a_range_and_a_range_over_a_gap() {
        let mut all: Vec<_> = (0..20).map(|i| seg(i, 2.0)).collect();
        for e in &mut all[8..] {
            e.disc_seq = 1;
        }
        all[8].discontinuity = true;
        all.remove(12);
        let v = select(&all, &head(false), &range(10.0, Some(30.0)), 0, 0, NOW).unwrap();
        assert_eq!(msns(&v), (5..15).collect::<Vec<_>>());
        assert!(matches!(v.items[3], Item::Segment(e) if e.discontinuity));
        assert_eq!(v.items[7], Item::Gap { msn: 12, duration_us: 2_000_000, disc_seq: 1 });
    }

    #[test]
    fn index_reads_cover_the_view_from_a_bucket_early() {
        let now = 100 * BUCKET_MS;
        let live = index_range("s", "r", &live_q(), 7_200_000_000, 0, now);
        assert_eq!((live.from_ms, live.to_ms), (now - 7_200_000 - BUCKET_MS, now));
        let delayed = PlaylistQuery { delay_ms: Some(3_600_000), ..Default::default() };
        assert_eq!(index_range("s", "r", &delayed, 600_000_000, 0, now).from_ms, now - 4_200_000 - BUCKET_MS);
        let clip = PlaylistQuery {
            start_ms: Some(now - 5 * BUCKET_MS),
            end_ms: Some(now - 4 * BUCKET_MS),
            ..Default::default()
        };
        let c = index_range("s", "r", &clip, 0, 0, now);
        assert_eq!((c.from_ms, c.to_ms, c.copy_key), (now - 6 * BUCKET_MS, now - 2 * BUCKET_MS, None));
        let event = PlaylistQuery { start_ms: Some(now - 5 * BUCKET_MS), ..Default::default() };
        assert!(index_range("s", "r", &event, 0, 0, now).copy_key.is_some());
    }
}
