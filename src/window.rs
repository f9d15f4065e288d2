//! Which segments a live playlist lists: the DVR window.
//!
//! The window is measured in media time (the sum of segment durations), not wall-clock time, so a
//! 2 h window holds 2 h of video even after the uploader caught up on a backlog. It only ever lists
//! consecutive media sequence numbers, because a playlist implies them: a hole in the index (data
//! lost or expired) ends the window there rather than mislabelling every older segment.

use crate::schema::BUCKET_MS;
use crate::store::IndexEntry;

/// How far back in ingest time the index must be read to cover `window_us` of media: the window,
/// plus one bucket of slack for segments stored after a backlog, and never less than `min_us`.
pub fn read_from_ms(now_ms: i64, window_us: i64, min_us: i64) -> i64 {
    let span_ms = window_us.max(min_us) / 1000;
    now_ms - span_ms - BUCKET_MS
}

/// The newest run of consecutive segments whose durations add up to at least `window_us`
/// (or all of the run when it is shorter). `entries` must be sorted by msn without duplicates.
/// `min_us` is the floor a live playlist needs: three target durations (RFC 8216bis 6.2.2).
pub fn select(entries: &[IndexEntry], window_us: i64, min_us: i64) -> &[IndexEntry] {
    let want = window_us.max(min_us);
    let Some(last) = entries.len().checked_sub(1) else { return entries };
    let mut start = last;
    let mut total = entries[last].duration_us;
    while start > 0 && total < want {
        if entries[start - 1].msn + 1 != entries[start].msn {
            break;
        }
        start -= 1;
        total += entries[start].duration_us;
    }
    &entries[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(msn: i64, dur_s: f64) -> IndexEntry {
        IndexEntry {
            msn,
            duration_us: (dur_s * 1e6) as i64,
            pdt_ms: msn * 2000,
            discontinuity: false,
            disc_seq: 0,
            init_msn: None,
            size: 100,
            added_ms: msn * 2000,
        }
    }

    #[test]
    fn takes_newest_segments_covering_the_window() {
        let all: Vec<_> = (0..100).map(|i| seg(i, 2.0)).collect();
        let w = select(&all, 10_000_000, 0);
        assert_eq!(w.first().unwrap().msn, 95);
        assert_eq!(w.last().unwrap().msn, 99);
        // A window that is not a multiple of the segment duration includes the partial segment.
        let w = select(&all, 9_000_000, 0);
        assert_eq!(w.first().unwrap().msn, 95);
    }

    #[test]
    fn never_shorter_than_the_minimum() {
        let all: Vec<_> = (0..100).map(|i| seg(i, 2.0)).collect();
        let w = select(&all, 1_000_000, 6_000_000);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn short_history_gives_everything() {
        let all: Vec<_> = (0..3).map(|i| seg(i, 2.0)).collect();
        assert_eq!(select(&all, 3_600_000_000, 0).len(), 3);
        assert!(select(&[], 10, 0).is_empty());
    }

    #[test]
    fn stops_at_a_hole_in_the_sequence() {
        let mut all: Vec<_> = (0..10).map(|i| seg(i, 2.0)).collect();
        all.remove(6);
        let w = select(&all, 100_000_000, 0);
        assert_eq!(w.iter().map(|e| e.msn).collect::<Vec<_>>(), vec![7, 8, 9]);
    }

    #[test]
    fn read_bound_covers_window_and_slack() {
        let now = 10 * BUCKET_MS;
        assert_eq!(read_from_ms(now, 7_200_000_000, 0), now - 7_200_000 - BUCKET_MS);
        assert_eq!(read_from_ms(now, 1_000_000, 30_000_000), now - 30_000 - BUCKET_MS);
    }
}
