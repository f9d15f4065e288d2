//! Low-latency HLS at the live edge (RFC 8216bis 4.4.4.9 to 4.4.5.2, 6.2.5.2, 6.2.6): which
//! parts a live playlist lists, the part it hints next, what a blocking request waits for, and
//! the reports of the other renditions. A rendition has parts when it is pushed fragment by
//! fragment (ARCHITECTURE.md, "Parts"); everything else keeps its playlists as they were.

use crate::model::{Part, PartPos, Rendition};
use crate::window::{Item, PlaylistType, View};

/// How far ahead of the newest part a blocking request may ask (RFC 8216bis 6.2.5.2).
pub const ADVANCE_PART_LIMIT: i32 = 3;

/// Parts are listed for the segments of at least this many target durations from the end.
pub const PART_TARGET_DURATIONS: i64 = 3;

/// PART-TARGET for parts as long as `longest_us`: rounded up to 10 ms, so that frame jitter of
/// "0.5 s" parts (0.48-0.52 s at 25 fps, 0.512 s for AAC) stays within it.
pub fn part_target_us(longest_us: i64) -> i64 {
    (longest_us.max(1) + 9_999) / 10_000 * 10_000
}

/// PART-HOLD-BACK: how far behind the newest part players start (three part targets).
pub fn part_hold_back_us(target_us: i64) -> i64 {
    3 * target_us
}

/// Whether a view of `head` shows parts: the live playlist at the edge (not delayed, not a
/// start-over or clip), of a rendition that has them.
pub fn shows_parts(head: &Rendition, view: &View) -> bool {
    head.parts.is_some() && view.kind == PlaylistType::Live && view.at_edge && !view.ended
}

/// The first segment whose parts a live playlist lists: enough whole segments at the end to
/// cover [`PART_TARGET_DURATIONS`] target durations.
pub fn first_listed_msn(items: &[Item], target_duration_us: i64) -> Option<i64> {
    let want = PART_TARGET_DURATIONS * target_duration_us;
    let mut covered = 0;
    let mut first = None;
    for item in items.iter().rev() {
        if covered >= want {
            break;
        }
        covered += item.duration_us();
        first = Some(item.msn());
    }
    first
}

/// The segment in progress whose parts may follow the last listed segment: the one right after
/// it, with the parts stored so far, unless it starts a discontinuity (its init segment may not
/// be stored until it ends; it is listed whole then).
pub fn in_progress(last_listed: i64, parts: &[Part]) -> &[Part] {
    let from = parts.partition_point(|p| p.msn <= last_listed);
    let next = &parts[from..];
    let run = next.iter().take_while(|p| p.msn == last_listed + 1).count();
    let next = &next[..run];
    // Parts are listed from part 0 on, without holes.
    let whole = next.iter().enumerate().take_while(|(i, p)| p.index == *i as i32).count();
    match next.first() {
        Some(p) if p.discontinuity => &[],
        _ => &next[..whole],
    }
}

/// EXT-X-PRELOAD-HINT: the part after the last one listed (`last_listed` the last whole segment,
/// lasting `segment_us`; `progress` the parts listed after it). When the segment in progress is
/// already about as long as the last whole one, its next part would mostly lie past where the
/// encoder cuts segments: the hint names part 0 of the next segment instead. A hint that names
/// a part which never comes gets 404, which some players (Shaka Player) take as fatal.
pub fn hint(last_listed: i64, segment_us: i64, progress: &[Part]) -> PartPos {
    let Some(p) = progress.last() else { return PartPos { msn: last_listed + 1, part: 0 } };
    let so_far: i64 = progress.iter().map(|p| p.duration_us).sum();
    if so_far + p.duration_us / 2 >= segment_us {
        PartPos { msn: p.msn + 1, part: 0 }
    } else {
        PartPos { msn: p.msn, part: p.index + 1 }
    }
}

/// One EXT-X-RENDITION-REPORT: where another rendition of the stream stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub rendition: String,
    pub last_msn: i64,
    pub last_part: Option<i32>,
}

impl Report {
    pub fn of(r: &Rendition) -> Report {
        match r.parts.and_then(|p| p.newest).filter(|n| n.msn >= r.head_msn) {
            Some(n) => Report { rendition: r.name.clone(), last_msn: n.msn, last_part: Some(n.part) },
            None => Report { rendition: r.name.clone(), last_msn: r.head_msn, last_part: None },
        }
    }
}

/// What a blocking playlist request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Nothing: answer now.
    Now,
    /// Segment `msn` whole (its index row and head stored).
    Segment(i64),
    /// Part `pos`, or any later one (a part index past a segment's last part means part 0 of
    /// the next segment, which comes after every part of that segment).
    Part(PartPos),
    /// Part `pos` itself, or the end of its segment (after which it will never exist).
    PartOrEnd(PartPos),
}

impl Wait {
    /// Whether a rendition whose head is `head_msn` and newest part `newest` has what is waited for.
    pub fn reached(&self, head_msn: i64, newest: Option<PartPos>) -> bool {
        match *self {
            Wait::Now => true,
            Wait::Segment(msn) => head_msn >= msn,
            Wait::Part(pos) => head_msn > pos.msn || newest.is_some_and(|n| n >= pos),
            Wait::PartOrEnd(pos) => head_msn >= pos.msn || newest.is_some_and(|n| n >= pos),
        }
    }
}

/// What `_HLS_msn=msn` (and `_HLS_part=part`) ask of `head`'s playlist: what to wait for, or
/// why the request is refused (400, RFC 8216bis 6.2.5.2).
pub fn wait_for(head: &Rendition, msn: i64, part: Option<i32>) -> Result<Wait, String> {
    let newest = head.parts.and_then(|p| p.newest);
    let last = newest.map_or(head.head_msn, |n| n.msn.max(head.head_msn));
    if msn > last + 2 {
        return Err(format!("_HLS_msn={msn} is more than two segments past the newest ({last})"));
    }
    // Without parts, _HLS_part is meaningless: the segment is waited for.
    let (Some(part), Some(_)) = (part, head.parts) else {
        return Ok(if msn > head.head_msn { Wait::Segment(msn) } else { Wait::Now });
    };
    let want = PartPos { msn, part };
    if let Some(n) = newest {
        let ahead = if msn == n.msn {
            part - n.part
        } else if msn > n.msn {
            part + 1
        } else {
            0
        };
        if ahead > ADVANCE_PART_LIMIT {
            return Err(format!(
                "_HLS_part={part} of segment {msn} is more than {ADVANCE_PART_LIMIT} parts past the newest ({}.{})",
                n.msn, n.part
            ));
        }
    }
    let wait = Wait::Part(want);
    Ok(if wait.reached(head.head_msn, newest) { Wait::Now } else { wait })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Container, IndexEntry, MediaType, PartHead, SourcePos};

    fn head(head_msn: i64, newest: Option<(i64, i32)>) -> Rendition {
        Rendition {
            name: "v".into(),
            container: Container::Fmp4,
            target_duration: 2,
            bandwidth: None,
            codecs: None,
            resolution: None,
            frame_rate: None,
            head_msn,
            head_disc_seq: 0,
            head_pdt_ms: 0,
            source: SourcePos::default(),
            updated_ms: 0,
            ended: false,
            media: MediaType::Video,
            parts: Some(PartHead { target_us: 520_000, newest: newest.map(|(msn, part)| PartPos { msn, part }) }),
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        }
    }

    fn part(msn: i64, index: i32) -> Part {
        Part {
            msn,
            index,
            duration_us: 500_000,
            independent: index == 0,
            discontinuity: false,
            first_chunk: index as u32,
            sizes: vec![100],
        }
    }

    #[test]
    fn part_targets_round_up_to_ten_ms() {
        assert_eq!(part_target_us(480_000), 480_000);
        assert_eq!(part_target_us(520_000), 520_000);
        assert_eq!(part_target_us(512_000), 520_000);
        assert_eq!(part_target_us(0), 10_000);
        assert_eq!(part_hold_back_us(520_000), 1_560_000);
    }

    #[test]
    fn parts_cover_the_last_three_target_durations() {
        let entries: Vec<IndexEntry> = (0..10)
            .map(|msn| IndexEntry {
                msn,
                duration_us: 2_000_000,
                pdt_ms: msn * 2000,
                discontinuity: false,
                disc_seq: 0,
                init_msn: Some(0),
                size: 1,
                added_ms: 0,
                key_frame: None,
                thumbnail: false,
            })
            .collect();
        let items: Vec<Item> = entries.iter().map(Item::Segment).collect();
        assert_eq!(first_listed_msn(&items, 2_000_000), Some(7));
        assert_eq!(first_listed_msn(&items, 6_000_000), Some(1));
        assert_eq!(first_listed_msn(&items[..2], 2_000_000), Some(0));
        assert_eq!(first_listed_msn(&[], 2_000_000), None);
    }

    #[test]
    fn in_progress_parts_follow_the_last_segment_without_holes() {
        let parts = vec![part(8, 0), part(8, 1), part(9, 0), part(9, 1), part(9, 3), part(10, 0)];
        let p = in_progress(8, &parts);
        assert_eq!(p.iter().map(|p| p.index).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(hint(8, 2_000_000, p), PartPos { msn: 9, part: 2 });
        assert!(in_progress(9, &parts[..4]).is_empty());
        assert_eq!(hint(9, 2_000_000, &[]), PartPos { msn: 10, part: 0 });
        // Four parts of 0.5 s make the 2 s segment: the next part is the next segment's first.
        let whole: Vec<Part> = (0..4).map(|i| part(9, i)).collect();
        assert_eq!(hint(8, 2_000_000, &whole[..3]), PartPos { msn: 9, part: 3 });
        assert_eq!(hint(8, 2_000_000, &whole), PartPos { msn: 10, part: 0 });
        // AAC: 0.512 s parts of a 2.005 s segment; the fourth is short.
        let mut aac: Vec<Part> = (0..4).map(|i| Part { duration_us: 512_000, ..part(9, i) }).collect();
        aac[3].duration_us = 469_333;
        assert_eq!(hint(8, 2_005_333, &aac[..3]), PartPos { msn: 9, part: 3 });
        assert_eq!(hint(8, 2_005_333, &aac), PartPos { msn: 10, part: 0 });
        // A segment after a discontinuity is listed once it is whole.
        let mut disc = vec![part(9, 0)];
        disc[0].discontinuity = true;
        assert!(in_progress(8, &disc).is_empty());
    }

    #[test]
    fn blocking_requests_wait_for_parts_and_refuse_what_is_too_far() {
        let h = head(10, Some((11, 1)));
        assert_eq!(wait_for(&h, 11, Some(1)), Ok(Wait::Now));
        assert_eq!(wait_for(&h, 11, Some(0)), Ok(Wait::Now));
        assert_eq!(wait_for(&h, 10, Some(9)), Ok(Wait::Now), "segment 10 is whole: its parts are all there");
        assert_eq!(wait_for(&h, 11, Some(2)), Ok(Wait::Part(PartPos { msn: 11, part: 2 })));
        assert_eq!(wait_for(&h, 11, Some(4)), Ok(Wait::Part(PartPos { msn: 11, part: 4 })));
        assert!(wait_for(&h, 11, Some(5)).unwrap_err().contains("more than 3 parts"));
        assert_eq!(wait_for(&h, 12, Some(2)), Ok(Wait::Part(PartPos { msn: 12, part: 2 })));
        assert!(wait_for(&h, 12, Some(3)).is_err());
        assert_eq!(wait_for(&h, 13, None), Ok(Wait::Segment(13)));
        assert!(wait_for(&h, 14, None).unwrap_err().contains("more than two segments"));
        assert_eq!(wait_for(&h, 11, None), Ok(Wait::Segment(11)));
        assert_eq!(wait_for(&h, 10, None), Ok(Wait::Now));
        // Without parts, _HLS_part is ignored.
        let mut plain = head(10, None);
        plain.parts = None;
        assert_eq!(wait_for(&plain, 11, Some(3)), Ok(Wait::Segment(11)));
        assert!(wait_for(&plain, 13, Some(0)).is_err());
    }

    #[test]
    fn a_part_past_a_segments_last_is_part_zero_of_the_next() {
        // Segment 11 ended with parts 0-3: (11, 4) is (12, 0), reached once 12.0 is stored.
        let want = Wait::Part(PartPos { msn: 11, part: 4 });
        assert!(!want.reached(10, Some(PartPos { msn: 11, part: 3 })));
        assert!(!want.reached(11, Some(PartPos { msn: 11, part: 3 })));
        assert!(want.reached(11, Some(PartPos { msn: 12, part: 0 })));
        assert!(want.reached(12, Some(PartPos { msn: 11, part: 3 })));
        // A request for the hinted part stops waiting when its segment ends without it.
        let hinted = Wait::PartOrEnd(PartPos { msn: 11, part: 4 });
        assert!(!hinted.reached(10, Some(PartPos { msn: 11, part: 3 })));
        assert!(hinted.reached(11, Some(PartPos { msn: 11, part: 3 })));
        assert!(hinted.reached(10, Some(PartPos { msn: 11, part: 4 })));
    }

    #[test]
    fn reports_name_the_newest_part() {
        let r = head(10, Some((11, 2)));
        assert_eq!(Report::of(&r), Report { rendition: "v".into(), last_msn: 11, last_part: Some(2) });
        let mut plain = r.clone();
        plain.parts = None;
        assert_eq!(Report::of(&plain), Report { rendition: "v".into(), last_msn: 10, last_part: None });
    }
}
