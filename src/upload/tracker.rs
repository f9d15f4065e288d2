//! Sequence numbers: which listed segments are new, and what the store calls them. Pure logic.
//!
//! Two halves, because the store msn is assigned at upload time and not when a segment is seen:
//! - [`Tracker`] compares each poll's playlist with the last source position enqueued and tells
//!   which entries are new and which of them start a discontinuity (segmenter restart, a lag that
//!   skipped segments, a listed segment that never showed up on disk).
//! - [`Sequencer`] numbers stored segments 0, 1, 2, ... per rendition (also across segmenter and
//!   uploader restarts) and counts discontinuities, including those of segments lost between being
//!   seen and being uploaded.
//! - [`PdtChain`] dates segments the segmenter did not date.

use hls_dvr_core::model::{Rendition, SourcePos};

use super::source::FileId;

/// One playlist entry as the tracker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen<'a> {
    pub seg_msn: i64,
    pub uri: &'a str,
    /// None: the file does not exist (now).
    pub file: Option<FileId>,
    /// The segmenter tagged it with EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
    /// Outside the stream's folder: never read, so skipped at once.
    pub refused: bool,
}

impl Seen<'_> {
    fn ready(&self) -> bool {
        self.file.is_some_and(|f| f.size > 0)
    }
}

/// The last source position enqueued. `file: None` matches any file (a skipped entry, or a
/// position restored without an identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last {
    pub seg_msn: i64,
    pub uri: String,
    pub file: Option<FileId>,
}

/// How this poll's playlist relates to the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing uploaded yet for this rendition: everything listed is new.
    First,
    /// The last enqueued entry is still listed: what follows it is new.
    Continue,
    /// Same run, but the last enqueued entry already left the playlist. `gap`: segments were
    /// missed in between.
    Lag { gap: bool },
    /// The segmenter started over (numbering went back, or a name now holds another file).
    Restart,
    /// Empty playlist.
    Empty,
}

/// What to do with this poll's playlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// Entries to enqueue, by index into the playlist, in order, each with whether the stored
    /// segment starts a discontinuity.
    pub enqueue: Vec<(usize, bool)>,
    /// Listed entries given up on: their files never appeared while later ones did.
    pub skipped: Vec<usize>,
    /// The entry that holds the queue back (file missing or empty): retried next poll.
    pub waiting: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    seg_msn: i64,
    uri: String,
    since_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    last: Option<Last>,
    /// A discontinuity to put on the next enqueued entry.
    carry_disc: bool,
    block: Option<Block>,
    /// How long a listed entry whose file is missing may hold the queue back while later entries
    /// are on disk.
    stall_ms: i64,
}

impl Tracker {
    pub fn new(stall_ms: i64) -> Tracker {
        Tracker { last: None, carry_disc: false, block: None, stall_ms }
    }

    /// Resumes after the source position the store's head records.
    pub fn resume(head: Option<&SourcePos>, stall_ms: i64) -> Tracker {
        let mut t = Tracker::new(stall_ms);
        if let Some(s) = head.filter(|s| s.seg_msn >= 0 && !s.uri.is_empty()) {
            let file = (s.size > 0).then_some(FileId { size: s.size, mtime_ns: s.mtime_ns, ino: 0 });
            t.last = Some(Last { seg_msn: s.seg_msn, uri: s.uri.clone(), file });
        }
        t
    }

    pub fn last(&self) -> Option<&Last> {
        self.last.as_ref()
    }

    /// How `entries` (a playlist, in order) relate to the last position.
    pub fn change_in(&self, entries: &[Seen]) -> (Change, usize) {
        if entries.is_empty() {
            return (Change::Empty, 0);
        }
        let Some(last) = &self.last else { return (Change::First, 0) };
        if let Some(i) = entries.iter().position(|e| e.seg_msn == last.seg_msn && e.uri == last.uri) {
            let e = &entries[i];
            let same = match (e.file, last.file) {
                // Missing now: deleted after upload (or by the segmenter's window), not rewritten.
                (None, _) | (_, None) => true,
                (Some(now), Some(listed)) => now.same_file(&listed),
            };
            return if same { (Change::Continue, i + 1) } else { (Change::Restart, 0) };
        }
        if entries.iter().all(|e| e.seg_msn > last.seg_msn) {
            (Change::Lag { gap: entries[0].seg_msn != last.seg_msn + 1 }, 0)
        } else {
            (Change::Restart, 0)
        }
    }

    /// Compares this poll's playlist with the last position and advances past what is enqueued.
    pub fn diff(&mut self, entries: &[Seen], now_ms: i64) -> (Change, Diff) {
        let (change, start) = self.change_in(entries);
        let mut d = Diff::default();
        match change {
            Change::Restart | Change::Lag { gap: true } => self.carry_disc = true,
            _ => {}
        }
        let mut i = start;
        while i < entries.len() {
            let e = &entries[i];
            if e.refused {
                d.skipped.push(i);
                self.carry_disc = true;
                self.last = Some(Last { seg_msn: e.seg_msn, uri: e.uri.to_string(), file: None });
                i += 1;
                continue;
            }
            if e.ready() {
                d.enqueue.push((i, e.discontinuity || self.carry_disc));
                self.carry_disc = false;
                self.last = Some(Last { seg_msn: e.seg_msn, uri: e.uri.to_string(), file: e.file });
                if self.block.as_ref().is_some_and(|b| b.seg_msn == e.seg_msn && b.uri == e.uri) {
                    self.block = None;
                }
                i += 1;
                continue;
            }
            let blocked_since = match &self.block {
                Some(b) if b.seg_msn == e.seg_msn && b.uri == e.uri => b.since_ms,
                _ => {
                    self.block = Some(Block { seg_msn: e.seg_msn, uri: e.uri.to_string(), since_ms: now_ms });
                    now_ms
                }
            };
            let later_ready = entries[i + 1..].iter().any(Seen::ready);
            if later_ready && now_ms - blocked_since >= self.stall_ms {
                // Gone for good: the segmenter wrote later segments, this one never appeared.
                d.skipped.push(i);
                self.carry_disc = true;
                self.last = Some(Last { seg_msn: e.seg_msn, uri: e.uri.to_string(), file: None });
                self.block = None;
                i += 1;
                continue;
            }
            d.waiting = Some(i);
            break;
        }
        (change, d)
    }
}

/// What the store calls one uploaded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub msn: i64,
    pub discontinuity: bool,
    pub disc_seq: i64,
}

/// Store sequence numbers of one rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequencer {
    next_msn: i64,
    disc_seq: i64,
    /// A segment was lost since the last one stored: the next one starts a discontinuity.
    lost: bool,
}

impl Sequencer {
    /// Continues after the store's head (a new rendition starts at 0).
    pub fn resume(head: Option<&Rendition>) -> Sequencer {
        match head {
            Some(h) if h.head_msn >= 0 => {
                Sequencer { next_msn: h.head_msn + 1, disc_seq: h.head_disc_seq, lost: false }
            }
            _ => Sequencer { next_msn: 0, disc_seq: 0, lost: false },
        }
    }

    /// Numbers for the next segment to upload (`discontinuity` as enqueued); not consumed until
    /// [`Sequencer::commit`].
    pub fn peek(&self, discontinuity: bool) -> Assigned {
        let disc = discontinuity || self.lost;
        Assigned { msn: self.next_msn, discontinuity: disc, disc_seq: self.disc_seq + disc as i64 }
    }

    /// The segment numbered by `a` is stored.
    pub fn commit(&mut self, a: Assigned) {
        debug_assert_eq!(a.msn, self.next_msn);
        self.next_msn = a.msn + 1;
        self.disc_seq = a.disc_seq;
        self.lost = false;
    }

    /// A segment seen in a playlist could not be uploaded (its file vanished or changed).
    pub fn lose(&mut self) {
        self.lost = true;
    }

    pub fn next_msn(&self) -> i64 {
        self.next_msn
    }
}

/// Program date-times for segments the segmenter did not date: the previous segment's date plus
/// its duration within a run, else the file's modification time minus the duration.
#[derive(Debug, Clone, Default)]
pub struct PdtChain {
    /// End of the previous segment of this run, µs since the epoch.
    end_us: Option<i64>,
}

impl PdtChain {
    /// `new_run`: the segment starts a discontinuity (dates do not carry over).
    pub fn next(&mut self, given_ms: Option<i64>, duration_us: i64, mtime_ns: i64, new_run: bool) -> i64 {
        if new_run {
            self.end_us = None;
        }
        let start_us = match (given_ms, self.end_us) {
            (Some(ms), _) => ms * 1000,
            (None, Some(end)) => end,
            (None, None) => mtime_ns / 1000 - duration_us,
        };
        self.end_us = Some(start_us + duration_us);
        start_us.div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> Option<FileId> {
        Some(FileId { size: 1000 + n, mtime_ns: n * 1_000_000_000, ino: 0 })
    }

    /// A playlist of segmenter msns `range`, files `seg{msn}.ts` with identity from `gen`.
    fn pl(range: std::ops::Range<i64>, names: &[String], gen: i64) -> Vec<Seen<'_>> {
        range
            .map(|m| Seen {
                seg_msn: m,
                uri: &names[m as usize],
                file: id(m + gen * 1000),
                discontinuity: false,
                refused: false,
            })
            .collect()
    }

    fn names() -> Vec<String> {
        (0..100).map(|i| format!("seg{i}.ts")).collect()
    }

    fn idx(d: &Diff) -> Vec<(usize, bool)> {
        d.enqueue.clone()
    }

    #[test]
    fn first_poll_takes_everything_then_only_new_entries() {
        let n = names();
        let mut t = Tracker::new(10_000);
        let (c, d) = t.diff(&pl(0..3, &n, 0), 0);
        assert_eq!(c, Change::First);
        assert_eq!(idx(&d), vec![(0, false), (1, false), (2, false)]);
        let (c, d) = t.diff(&pl(0..3, &n, 0), 0);
        assert_eq!(c, Change::Continue);
        assert!(d.enqueue.is_empty());
        let (c, d) = t.diff(&pl(0..5, &n, 0), 0);
        assert_eq!(c, Change::Continue);
        assert_eq!(idx(&d), vec![(3, false), (4, false)]);
        // Sliding window.
        let (c, d) = t.diff(&pl(2..7, &n, 0), 0);
        assert_eq!(c, Change::Continue);
        assert_eq!(idx(&d), vec![(3, false), (4, false)]);
        assert_eq!(t.last().unwrap().seg_msn, 6);
        // Empty playlist: nothing.
        assert_eq!(t.diff(&[], 0), (Change::Empty, Diff::default()));
    }

    #[test]
    fn lag_without_and_with_a_gap() {
        let n = names();
        let mut t = Tracker::new(10_000);
        t.diff(&pl(0..3, &n, 0), 0);
        // Window moved past the last entry, but contiguous: no discontinuity.
        let (c, d) = t.diff(&pl(3..6, &n, 0), 0);
        assert_eq!(c, Change::Lag { gap: false });
        assert_eq!(idx(&d), vec![(0, false), (1, false), (2, false)]);
        // Segments 6 and 7 were never seen: discontinuity on the first new one.
        let (c, d) = t.diff(&pl(8..10, &n, 0), 0);
        assert_eq!(c, Change::Lag { gap: true });
        assert_eq!(idx(&d), vec![(0, true), (1, false)]);
    }

    #[test]
    fn segmenter_restart_by_numbering_or_by_rewritten_file() {
        let n = names();
        let mut t = Tracker::new(10_000);
        t.diff(&pl(0..5, &n, 0), 0);
        // Numbering went back: restart, all new, first one a discontinuity.
        let (c, d) = t.diff(&pl(0..2, &n, 1), 0);
        assert_eq!(c, Change::Restart);
        assert_eq!(idx(&d), vec![(0, true), (1, false)]);
        // Continues within the new run.
        let (c, d) = t.diff(&pl(0..3, &n, 1), 0);
        assert_eq!(c, Change::Continue);
        assert_eq!(idx(&d), vec![(2, false)]);

        // Restarted and already past the old position when we look: seg2.ts is a new file.
        let mut t = Tracker::new(10_000);
        t.diff(&pl(0..3, &n, 0), 0);
        let (c, d) = t.diff(&pl(0..6, &n, 1), 0);
        assert_eq!(c, Change::Restart);
        assert_eq!(d.enqueue.len(), 6);
        assert_eq!(d.enqueue[0], (0, true));
        // Mixed: some entries above, some at or below the last number, last not listed.
        let mut t = Tracker::new(10_000);
        t.diff(&pl(0..5, &n, 0), 0);
        let other: Vec<String> = (0..100).map(|i| format!("other{i}.ts")).collect();
        let (c, _) = t.diff(&pl(3..8, &other, 0), 0);
        assert_eq!(c, Change::Restart);
    }

    #[test]
    fn segmenter_discontinuity_tags_are_carried() {
        let n = names();
        let mut t = Tracker::new(10_000);
        let mut p = pl(0..4, &n, 0);
        p[2].discontinuity = true;
        let (_, d) = t.diff(&p, 0);
        assert_eq!(idx(&d), vec![(0, false), (1, false), (2, true), (3, false)]);
    }

    #[test]
    fn deleted_files_still_match_their_position() {
        let n = names();
        let mut t = Tracker::new(10_000);
        t.diff(&pl(0..3, &n, 0), 0);
        // Uploaded and deleted (--delete-after-upload): still listed, file gone.
        let mut p = pl(0..4, &n, 0);
        for e in &mut p[..3] {
            e.file = None;
        }
        let (c, d) = t.diff(&p, 0);
        assert_eq!(c, Change::Continue);
        assert_eq!(idx(&d), vec![(3, false)]);
    }

    #[test]
    fn missing_listed_file_waits_then_is_skipped_with_a_discontinuity() {
        let n = names();
        let mut t = Tracker::new(5_000);
        let mut p = pl(0..4, &n, 0);
        p[1].file = None;
        let (_, d) = t.diff(&p, 1_000);
        assert_eq!(idx(&d), vec![(0, false)]);
        assert_eq!(d.waiting, Some(1));
        // Still missing, not yet past the stall time: waits, nothing after it is enqueued.
        let (c, d) = t.diff(&p, 5_999);
        assert_eq!(c, Change::Continue);
        assert!(d.enqueue.is_empty());
        assert_eq!(d.waiting, Some(1));
        // Past it: skipped, the next one carries the discontinuity.
        let (_, d) = t.diff(&p, 6_000);
        assert_eq!(d.skipped, vec![1]);
        assert_eq!(idx(&d), vec![(2, true), (3, false)]);
        assert_eq!(d.waiting, None);
    }

    #[test]
    fn missing_file_that_appears_is_taken_and_empty_files_wait() {
        let n = names();
        let mut t = Tracker::new(5_000);
        let mut p = pl(0..3, &n, 0);
        p[1].file = Some(FileId { size: 0, mtime_ns: 1, ino: 0 });
        let (_, d) = t.diff(&p, 0);
        assert_eq!(idx(&d), vec![(0, false)]);
        assert_eq!(d.waiting, Some(1));
        let p = pl(0..3, &n, 0);
        let (_, d) = t.diff(&p, 1_000);
        assert_eq!(idx(&d), vec![(1, false), (2, false)]);
        // The last listed file missing never gets skipped (nothing later is on disk).
        let mut p = pl(0..4, &n, 0);
        p[3].file = None;
        let (_, d) = t.diff(&p, 100_000);
        assert!(d.skipped.is_empty());
        assert_eq!(d.waiting, Some(3));
    }

    #[test]
    fn restart_noticed_while_first_new_file_is_missing_keeps_the_discontinuity() {
        let n = names();
        let mut t = Tracker::new(5_000);
        t.diff(&pl(0..5, &n, 0), 0);
        let mut p = pl(0..2, &n, 1);
        p[0].file = None;
        let (c, d) = t.diff(&p, 0);
        assert_eq!(c, Change::Restart);
        assert!(d.enqueue.is_empty());
        let (c, d) = t.diff(&pl(0..2, &n, 1), 100);
        assert_eq!(c, Change::Restart);
        assert_eq!(idx(&d), vec![(0, true), (1, false)]);
    }

    #[test]
    fn resume_from_the_store_head() {
        let n = names();
        let f = id(3).unwrap();
        let src = SourcePos { uri: "seg3.ts".into(), seg_msn: 3, size: f.size, mtime_ns: f.mtime_ns };
        let mut t = Tracker::resume(Some(&src), 10_000);
        let (c, d) = t.diff(&pl(0..6, &n, 0), 0);
        assert_eq!(c, Change::Continue);
        assert_eq!(idx(&d), vec![(4, false), (5, false)]);
        // Head with no source yet behaves like a new rendition.
        let none = SourcePos { uri: String::new(), seg_msn: -1, size: 0, mtime_ns: 0 };
        let mut t = Tracker::resume(Some(&none), 10_000);
        assert_eq!(t.diff(&pl(0..2, &n, 0), 0).0, Change::First);
        // Segmenter restarted while we were down: seg3.ts is another file now.
        let mut t = Tracker::resume(Some(&src), 10_000);
        let (c, d) = t.diff(&pl(0..6, &n, 7), 0);
        assert_eq!(c, Change::Restart);
        assert_eq!(d.enqueue[0], (0, true));
    }

    fn head(msn: i64, disc: i64) -> Rendition {
        Rendition {
            name: "r".into(),
            container: hls_dvr_core::model::Container::Ts,
            target_duration: 2,
            bandwidth: None,
            codecs: None,
            resolution: None,
            frame_rate: None,
            head_msn: msn,
            head_disc_seq: disc,
            head_pdt_ms: 0,
            source: SourcePos::default(),
            updated_ms: 0,
            ended: false,
            media: hls_dvr_core::model::MediaType::Muxed,
            parts: None,
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        }
    }

    #[test]
    fn sequencer_numbers_consecutively_and_counts_discontinuities() {
        let mut s = Sequencer::resume(None);
        let a = s.peek(false);
        assert_eq!(a, Assigned { msn: 0, discontinuity: false, disc_seq: 0 });
        // Peeking again (a retried upload) gives the same numbers.
        assert_eq!(s.peek(false), a);
        s.commit(a);
        // Lost segment: no msn consumed, the next stored one is a discontinuity.
        s.lose();
        let b = s.peek(false);
        assert_eq!(b, Assigned { msn: 1, discontinuity: true, disc_seq: 1 });
        s.commit(b);
        let c = s.peek(false);
        assert_eq!(c, Assigned { msn: 2, discontinuity: false, disc_seq: 1 });
        s.commit(c);
        // A discontinuity and a loss together count once.
        s.lose();
        let d = s.peek(true);
        assert_eq!(d, Assigned { msn: 3, discontinuity: true, disc_seq: 2 });
        s.commit(d);
        assert_eq!(s.next_msn(), 4);
    }

    #[test]
    fn sequencer_resumes_after_head() {
        let mut s = Sequencer::resume(Some(&head(41, 3)));
        assert_eq!(s.peek(false), Assigned { msn: 42, discontinuity: false, disc_seq: 3 });
        s.commit(s.peek(true));
        assert_eq!(s.peek(false), Assigned { msn: 43, discontinuity: false, disc_seq: 4 });
        // A head row without a segment yet.
        assert_eq!(Sequencer::resume(Some(&head(-1, 0))).peek(false).msn, 0);
    }

    #[test]
    fn pdt_chain() {
        let mut p = PdtChain::default();
        // Given dates win.
        assert_eq!(p.next(Some(1_000_000), 2_000_000, 0, false), 1_000_000);
        // Then previous + duration, exactly in µs.
        assert_eq!(p.next(None, 1_960_000, 0, false), 1_002_000);
        assert_eq!(p.next(None, 2_000_000, 0, false), 1_003_960);
        // A new run without dates: mtime - duration.
        assert_eq!(p.next(None, 2_000_000, 9_000_000_000_000, true), 8_998_000);
        let mut q = PdtChain::default();
        assert_eq!(q.next(None, 500_000, 10_000_000_000, false), 9_500);
    }
}
