//! The audience board: what an edge's workers count of their viewers, minute by minute, in one
//! shared zone (ARCHITECTURE.md, "Audience").
//!
//! Like [`crate::counters::Counters`], the board is plain memory of atomics (`#[repr(C)]`, valid
//! when all zero): every worker records into it from the log phase with no allocation and no
//! lock, and any worker's runtime seals a finished minute into rows for the store.
//!
//! Frames: two per slot, by minute parity. A frame's state word (`minute << 2 | state`) says
//! which minute it counts and whether it is open, being sealed, or free. A request records into
//! its minute's frame only while that frame is open; a frame is sealed a few seconds after its
//! minute ends (rows made, then zeroed, then freed), so the frame of minute m + 2 finds it free.
//! A request that finds its frame still busy is not counted, and counted as lost.
//!
//! Hours: each slot accumulates its hour (sessions merged, totals added, each minute's counts),
//! and every sealed minute rewrites the hour's row. The row is keyed by the minute the
//! accumulator started, so an edge restarted mid-hour adds a row rather than overwrite one.

use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

use hls_dvr_core::audience::{Place, Row, HOUR_MS, MINUTE_MS};
use hls_dvr_core::prometheus::Text;
use hls_dvr_core::sketch::{position, Sketch, M};

use crate::slots::{find_or_claim, SlotName};

/// Streams counted at once; more count as lost.
pub const STREAMS: usize = 32;
/// Renditions counted at once, over all streams.
pub const RENDITIONS: usize = 128;
/// Segment durations kept per rendition (about an hour of 2 s segments).
const DURATIONS: usize = 2048;
/// A minute is sealed this long after it ends: requests finishing then are still counted.
pub const SEAL_GRACE_MS: i64 = 2_000;

const FREE: u64 = 0;
const OPEN: u64 = 1;
const SEALING: u64 = 2;

#[repr(C)]
struct Registers([AtomicU8; M]);

impl Registers {
    fn insert(&self, hash: u64) {
        let (i, rank) = position(hash);
        // Most inserts of a known viewer change nothing: a load spares the cache line a write.
        if self.0[i].load(Relaxed) < rank {
            self.0[i].fetch_max(rank, Relaxed);
        }
    }
    fn snapshot(&self) -> Sketch {
        Sketch::from_registers(self.0.iter().map(|r| r.load(Relaxed)))
    }
    fn merge_from(&self, other: &Registers) {
        for (a, b) in self.0.iter().zip(&other.0) {
            let v = b.load(Relaxed);
            if v > 0 {
                a.fetch_max(v, Relaxed);
            }
        }
    }
    fn clear(&self) {
        self.0.iter().for_each(|r| r.store(0, Relaxed));
    }
}

#[repr(C)]
#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    new_sessions: AtomicU64,
    watch_ms: AtomicU64,
    bytes: AtomicU64,
}

impl Totals {
    fn add_to(&self, to: &Totals) {
        to.requests.fetch_add(self.requests.load(Relaxed), Relaxed);
        to.new_sessions.fetch_add(self.new_sessions.load(Relaxed), Relaxed);
        to.watch_ms.fetch_add(self.watch_ms.load(Relaxed), Relaxed);
        to.bytes.fetch_add(self.bytes.load(Relaxed), Relaxed);
    }
    fn clear(&self) {
        for a in [&self.requests, &self.new_sessions, &self.watch_ms, &self.bytes] {
            a.store(0, Relaxed);
        }
    }
    fn fill(&self, r: &mut Row) {
        r.new_sessions = self.new_sessions.load(Relaxed) as i64;
        r.watch_ms = self.watch_ms.load(Relaxed) as i64;
        r.bytes = self.bytes.load(Relaxed) as i64;
    }
}

/// One minute of a stream.
#[repr(C)]
struct StreamFrame {
    sessions: Registers,
    places: [Registers; 3],
    forged: Registers,
    totals: Totals,
}

/// One minute of a rendition.
#[repr(C)]
struct RenditionFrame {
    sessions: Registers,
    totals: Totals,
}

/// Each minute's counts of an hour: `[viewers, live, shifted, clip]`.
type Minutes = [[AtomicU32; 4]; 60];

#[repr(C)]
struct StreamSlot {
    name: SlotName,
    frames: [StreamFrame; 2],
    hour_sessions: Registers,
    hour_forged: Registers,
    hour_totals: Totals,
    hour_minutes: Minutes,
    /// The last sealed minute's viewers (the Prometheus gauge), as `minute << 32 | viewers`:
    /// a minute with no request is never sealed, so the gauge reads 0 once its minute is old.
    viewers: AtomicU64,
}

#[repr(C)]
struct RenditionSlot {
    name: SlotName,
    frames: [RenditionFrame; 2],
    hour_totals: Totals,
    hour_minutes: Minutes,
    /// The newest segment this edge knows of: a segment far behind it is watched shifted.
    newest_msn: AtomicI64,
    /// Segment durations by msn: `msn << 24 | ms` at `msn % DURATIONS`.
    durations: [AtomicU64; DURATIONS],
    /// The last duration noted, for a segment older than the ring.
    last_duration_ms: AtomicU64,
}

/// Who a request counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// A session (an id the edge issued, the site's key, or address and user agent), hashed.
    Session(u64),
    /// A made-up session id, hashed: counted apart.
    Forged(u64),
}

/// One finished request of a viewer.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub stream: &'a str,
    /// Empty for a multivariant playlist.
    pub rendition: &'a str,
    pub viewer: Viewer,
    /// Where a media playlist puts the viewer; segments are placed by their distance to the newest.
    pub place: Option<Place>,
    /// The request began a session (a multivariant playlist without one).
    pub new_session: bool,
    pub bytes: u64,
    /// A whole segment delivered: its msn, whose duration counts as watched.
    pub segment: Option<i64>,
}

/// The board, all zero when new.
#[repr(C)]
pub struct Audience {
    frames: [AtomicU64; 2],
    /// The minute (since the epoch) the hour accumulators started, plus one; 0: none yet.
    hour_since: AtomicU64,
    /// One sealer at a time (a worker's runtime): the hour accumulators are its alone.
    sealing: AtomicU32,
    streams: [StreamSlot; STREAMS],
    renditions: [RenditionSlot; RENDITIONS],
    /// Requests not counted: the table was full or the frame busy.
    lost: AtomicU64,
    /// Sealed minutes dropped unwritten (the store was away too long).
    dropped_minutes: AtomicU64,
    /// Rows written to the store.
    rows_written: AtomicU64,
}

fn minute_of(ms: i64) -> u64 {
    ms.div_euclid(MINUTE_MS).max(0) as u64
}

impl Audience {
    /// A board on the heap (tests, benchmarks).
    pub fn boxed() -> Box<Audience> {
        // SAFETY: a Audience is atomics only, valid when all zero, and not zero-sized.
        unsafe { crate::slots::boxed_zeroed() }
    }

    /// The open frame of `minute`, opening it if it is free.
    fn frame(&self, minute: u64) -> Option<usize> {
        let i = (minute % 2) as usize;
        let open = (minute << 2) | OPEN;
        let w = self.frames[i].load(Acquire);
        if w == open {
            return Some(i);
        }
        if w & 3 == FREE {
            return match self.frames[i].compare_exchange(w, open, AcqRel, Acquire) {
                Ok(_) => Some(i),
                Err(now) if now == open => Some(i),
                Err(_) => None,
            };
        }
        None
    }

    /// Counts a finished request at `now_ms`.
    pub fn record(&self, now_ms: i64, v: &Visit) {
        let Some(f) = self.frame(minute_of(now_ms)) else {
            self.lost.fetch_add(1, Relaxed);
            return;
        };
        let Some(si) = find_or_claim(&self.streams, |s| &s.name, 0, v.stream, "") else {
            self.lost.fetch_add(1, Relaxed);
            return;
        };
        let stream = &self.streams[si].frames[f];
        let rendition = match v.rendition {
            "" => None,
            r => match find_or_claim(&self.renditions, |s| &s.name, 0, v.stream, r) {
                Some(ri) => Some(&self.renditions[ri]),
                None => {
                    self.lost.fetch_add(1, Relaxed);
                    None
                }
            },
        };
        let place = match (v.place, v.segment, rendition) {
            (Some(p), _, _) => Some(p),
            (None, Some(msn), Some(r)) => {
                let newest = r.newest_msn.fetch_max(msn, Relaxed).max(msn);
                Some(Place::of_segment(msn, newest))
            }
            _ => None,
        };
        let watch_ms = match (v.segment, rendition) {
            (Some(msn), Some(r)) => r.duration_ms(msn),
            _ => 0,
        };
        let counted = |t: &Totals| {
            t.requests.fetch_add(1, Relaxed);
            t.bytes.fetch_add(v.bytes, Relaxed);
            t.watch_ms.fetch_add(watch_ms, Relaxed);
            if v.new_session {
                t.new_sessions.fetch_add(1, Relaxed);
            }
        };
        match v.viewer {
            Viewer::Forged(h) => {
                stream.forged.insert(h);
                stream.totals.bytes.fetch_add(v.bytes, Relaxed);
            }
            Viewer::Session(h) => {
                stream.sessions.insert(h);
                if let Some(p) = place {
                    stream.places[p as usize].insert(h);
                }
                counted(&stream.totals);
                if let Some(r) = rendition {
                    r.frames[f].sessions.insert(h);
                    counted(&r.frames[f].totals);
                }
            }
        }
    }

    /// Notes segment durations of a rendition (from a playlist the edge built) and its newest
    /// segment, so segment requests count their media time and their place.
    pub fn note_segments(
        &self,
        stream: &str,
        rendition: &str,
        newest_msn: i64,
        segments: impl IntoIterator<Item = (i64, i64)>,
    ) {
        let Some(ri) = find_or_claim(&self.renditions, |s| &s.name, 0, stream, rendition) else { return };
        let r = &self.renditions[ri];
        r.newest_msn.fetch_max(newest_msn, Relaxed);
        let mut last = None;
        for (msn, ms) in segments {
            last = Some(ms);
            if msn < 0 || !(0..1 << 24).contains(&ms) {
                continue;
            }
            let v = ((msn as u64) << 24) | ms as u64;
            let slot = &r.durations[msn as usize % DURATIONS];
            if slot.load(Relaxed) != v {
                slot.store(v, Relaxed);
            }
        }
        if let Some(ms) = last {
            r.last_duration_ms.store(ms.max(0) as u64, Relaxed);
        }
    }

    /// Seals the oldest finished minute, if one is due at `now_ms`: its rows, and the hour rows
    /// it updates, for edge `edge`. None when no minute is due (or another worker is sealing).
    pub fn seal(&self, now_ms: i64, edge: &str) -> Option<(i64, Vec<Row>)> {
        if self.sealing.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            return None;
        }
        let due = (0..2)
            .filter_map(|i| {
                let w = self.frames[i].load(Acquire);
                let minute = w >> 2;
                let ends = (minute as i64 + 1) * MINUTE_MS;
                (w & 3 == OPEN && now_ms >= ends + SEAL_GRACE_MS).then_some((minute, i, w))
            })
            .min();
        let out = due.and_then(|(minute, i, w)| {
            let sealing = (minute << 2) | SEALING;
            self.frames[i].compare_exchange(w, sealing, AcqRel, Acquire).ok()?;
            let rows = self.seal_frame(minute, i, edge);
            self.frames[i].store(minute << 2, Release);
            Some((minute as i64 * MINUTE_MS, rows))
        });
        self.sealing.store(0, Release);
        out
    }

    fn seal_frame(&self, minute: u64, f: usize, edge: &str) -> Vec<Row> {
        let hour = minute - minute % 60;
        let since = self.hour_since.load(Relaxed);
        if since == 0 || since - 1 < hour {
            // A new hour (or the board's first): the accumulators start again from this minute.
            for s in &self.streams {
                s.hour_sessions.clear();
                s.hour_forged.clear();
                s.hour_totals.clear();
                s.hour_minutes.iter().flatten().for_each(|c| c.store(0, Relaxed));
            }
            for r in &self.renditions {
                r.hour_totals.clear();
                r.hour_minutes.iter().flatten().for_each(|c| c.store(0, Relaxed));
            }
            self.hour_since.store(minute + 1, Relaxed);
        }
        let since_ms = (self.hour_since.load(Relaxed) - 1) as i64 * MINUTE_MS;
        let t_ms = minute as i64 * MINUTE_MS;
        let hour_ms = t_ms - t_ms.rem_euclid(HOUR_MS);
        let at = (minute % 60) as usize;
        let mut rows = Vec::new();
        let base = |stream: String, rendition: String, step_s: i32, t: i64, since: i64| Row {
            stream,
            rendition,
            step_s,
            t_ms: t,
            edge: edge.to_string(),
            since_ms: since,
            ..Row::default()
        };
        for s in &self.streams {
            let frame = &s.frames[f];
            let Some((name, _)) = s.name.names() else { continue };
            let active = frame.totals.requests.load(Relaxed) > 0 || frame.forged.0.iter().any(|r| r.load(Relaxed) > 0);
            if !active {
                s.viewers.store(minute << 32, Relaxed);
                continue;
            }
            let mut m = base(name.clone(), String::new(), 60, t_ms, t_ms);
            m.sessions = frame.sessions.snapshot();
            m.places = std::array::from_fn(|p| frame.places[p].snapshot());
            m.forged = frame.forged.snapshot();
            frame.totals.fill(&mut m);
            let count = |sketch: &Sketch| sketch.estimate().round() as u32;
            let viewers = count(&m.sessions);
            s.viewers.store((minute << 32) | viewers as u64, Relaxed);
            let counts = [viewers, count(&m.places[0]), count(&m.places[1]), count(&m.places[2])];
            for (c, v) in s.hour_minutes[at].iter().zip(counts) {
                c.store(v, Relaxed);
            }
            s.hour_sessions.merge_from(&frame.sessions);
            s.hour_forged.merge_from(&frame.forged);
            frame.totals.add_to(&s.hour_totals);
            let mut h = base(name, String::new(), 3600, hour_ms, since_ms);
            h.sessions = s.hour_sessions.snapshot();
            h.forged = s.hour_forged.snapshot();
            s.hour_totals.fill(&mut h);
            h.minutes = minutes(&s.hour_minutes, at);
            rows.push(m);
            rows.push(h);
            frame.sessions.clear();
            frame.places.iter().for_each(Registers::clear);
            frame.forged.clear();
            frame.totals.clear();
        }
        for r in &self.renditions {
            let frame = &r.frames[f];
            let Some((stream, rendition)) = r.name.names() else { continue };
            if frame.totals.requests.load(Relaxed) == 0 {
                continue;
            }
            let mut m = base(stream.clone(), rendition.clone(), 60, t_ms, t_ms);
            m.sessions = frame.sessions.snapshot();
            frame.totals.fill(&mut m);
            r.hour_minutes[at][0].store(m.sessions.estimate().round() as u32, Relaxed);
            frame.totals.add_to(&r.hour_totals);
            let mut h = base(stream, rendition, 3600, hour_ms, since_ms);
            r.hour_totals.fill(&mut h);
            h.minutes = minutes(&r.hour_minutes, at);
            rows.push(m);
            rows.push(h);
            frame.sessions.clear();
            frame.totals.clear();
        }
        rows
    }

    /// Sealed minutes dropped unwritten.
    pub fn dropped(&self, minutes: u64) {
        self.dropped_minutes.fetch_add(minutes, Relaxed);
    }

    pub fn written(&self, rows: u64) {
        self.rows_written.fetch_add(rows, Relaxed);
    }

    /// The board's gauges and counters in the Prometheus text format, at `now_ms`.
    pub fn render(&self, now_ms: i64, t: &mut Text) {
        t.family("hls_dvr_viewers", "gauge", "Distinct viewers of each stream on this edge in the last whole minute.");
        // The last whole minute is sealed a few seconds into the next one: until then the one
        // before still counts. Anything older had no requests since.
        let recent = minute_of(now_ms).saturating_sub(2);
        let viewers = |v: u64| if v >> 32 >= recent { v & 0xffff_ffff } else { 0 };
        let mut streams: Vec<(String, u64)> =
            self.streams.iter().filter_map(|s| Some((s.name.names()?.0, viewers(s.viewers.load(Relaxed))))).collect();
        streams.sort();
        for (name, n) in &streams {
            t.sample("hls_dvr_viewers", &[("stream", name)], *n);
        }
        t.family("hls_dvr_audience_lost_total", "counter", "Requests not counted as viewers (tables full).");
        t.sample("hls_dvr_audience_lost_total", &[], self.lost.load(Relaxed));
        t.family(
            "hls_dvr_audience_dropped_minutes_total",
            "counter",
            "Sealed minutes of viewer statistics dropped unwritten (the store was away over an hour).",
        );
        t.sample("hls_dvr_audience_dropped_minutes_total", &[], self.dropped_minutes.load(Relaxed));
        t.family("hls_dvr_audience_rows_total", "counter", "Rows of viewer statistics written to the store.");
        t.sample("hls_dvr_audience_rows_total", &[], self.rows_written.load(Relaxed));
    }
}

/// This worker's board, once it counts (set from the zone; see [`attach`]).
static BOARD: AtomicPtr<Audience> = AtomicPtr::new(std::ptr::null_mut());

/// Makes `board` the worker's board: playlists the edge builds note their segments in it.
pub fn attach(board: &'static Audience) {
    BOARD.store(board as *const Audience as *mut Audience, Release);
}

/// The worker's board, if it counts viewers.
pub fn board() -> Option<&'static Audience> {
    // SAFETY: only ever set from a `&'static Audience` (attach).
    unsafe { BOARD.load(Acquire).as_ref() }
}

fn minutes(m: &Minutes, upto: usize) -> Vec<[u32; 4]> {
    m[..=upto].iter().map(|c| std::array::from_fn(|k| c[k].load(Relaxed))).collect()
}

impl RenditionSlot {
    fn duration_ms(&self, msn: i64) -> u64 {
        if msn >= 0 {
            let v = self.durations[msn as usize % DURATIONS].load(Relaxed);
            if v >> 24 == msn as u64 {
                return v & 0xff_ffff;
            }
        }
        self.last_duration_ms.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hls_dvr_core::sketch::mix;

    const T: i64 = 1_764_633_600_000; // an hour's start

    fn visit<'a>(stream: &'a str, rendition: &'a str, id: u64) -> Visit<'a> {
        Visit {
            stream,
            rendition,
            viewer: Viewer::Session(mix(id)),
            place: None,
            new_session: false,
            bytes: 100,
            segment: None,
        }
    }

    #[test]
    fn a_minute_is_sealed_into_minute_and_hour_rows() {
        let b = Audience::boxed();
        b.note_segments("debate", "hi", 50, [(49, 2000), (50, 1960)]);
        for id in 0..500 {
            b.record(T + 1000, &Visit { new_session: true, ..visit("debate", "", id) });
            b.record(T + 2000, &Visit { segment: Some(50), ..visit("debate", "hi", id) });
        }
        b.record(T + 3000, &Visit { segment: Some(10), ..visit("debate", "hi", 7) });
        b.record(T + 3000, &Visit { viewer: Viewer::Forged(mix(99)), ..visit("debate", "hi", 0) });
        // Not due before the minute's end and its grace.
        assert!(b.seal(T + MINUTE_MS + 1000, "e1").is_none());
        let (t, rows) = b.seal(T + MINUTE_MS + SEAL_GRACE_MS, "e1").unwrap();
        assert_eq!(t, T);
        assert!(b.seal(T + MINUTE_MS + SEAL_GRACE_MS, "e1").is_none());
        let find = |step: i32, rendition: &str| {
            rows.iter().find(|r| r.step_s == step && r.rendition == rendition).unwrap().clone()
        };
        let m = find(60, "");
        let near = |v: f64, n: f64| (v - n).abs() <= n * 0.02;
        assert!(near(m.sessions.estimate(), 500.0));
        assert!(near(m.places[0].estimate(), 500.0));
        assert_eq!(m.places[1].estimate().round(), 1.0);
        assert_eq!(m.forged.estimate().round(), 1.0);
        assert_eq!((m.new_sessions, m.watch_ms), (500, 500 * 1960 + 1960));
        // 500 master playlists, 501 segments and the made-up id's request.
        assert_eq!(m.bytes, 1002 * 100);
        assert_eq!((m.edge.as_str(), m.t_ms, m.since_ms), ("e1", T, T));
        let h = find(3600, "");
        assert_eq!((h.t_ms, h.since_ms, h.minutes.len()), (T, T, 1));
        assert_eq!(h.minutes[0][0] as f64, m.sessions.estimate().round());
        let r = find(60, "hi");
        assert!(near(r.sessions.estimate(), 500.0));
        assert_eq!(find(3600, "hi").minutes[0][0] as f64, r.sessions.estimate().round());

        // The next minute adds to the hour; the frame was cleared.
        for id in 400..600 {
            b.record(T + MINUTE_MS + 5000, &visit("debate", "", id));
        }
        let (_, rows) = b.seal(T + 2 * MINUTE_MS + SEAL_GRACE_MS, "e1").unwrap();
        let m = rows.iter().find(|r| r.step_s == 60 && r.rendition.is_empty()).unwrap();
        assert!(near(m.sessions.estimate(), 200.0));
        let h = rows.iter().find(|r| r.step_s == 3600 && r.rendition.is_empty()).unwrap();
        assert!(near(h.sessions.estimate(), 600.0));
        assert_eq!(h.minutes.len(), 2);
        assert_eq!(h.new_sessions, 500);
        // A rendition without requests this minute writes no rows.
        assert!(rows.iter().all(|r| r.rendition.is_empty()));
    }

    #[test]
    fn a_busy_frame_loses_requests_and_a_new_hour_starts_over() {
        let b = Audience::boxed();
        b.record(T + 59 * MINUTE_MS, &visit("s", "", 1));
        // Two minutes later the frame of the same parity is still open (never sealed): lost.
        b.record(T + 61 * MINUTE_MS, &visit("s", "", 2));
        let mut t = Text::default();
        b.render(T + 61 * MINUTE_MS, &mut t);
        assert!(t.out.contains("hls_dvr_audience_lost_total 1"), "{}", t.out);
        let (_, rows) = b.seal(T + 61 * MINUTE_MS, "e").unwrap();
        let h = rows.iter().find(|r| r.step_s == 3600).unwrap();
        assert_eq!((h.t_ms, h.since_ms, h.minutes.len()), (T, T + 59 * MINUTE_MS, 60));
        b.record(T + 62 * MINUTE_MS, &visit("s", "", 3));
        let (_, rows) = b.seal(T + 63 * MINUTE_MS + SEAL_GRACE_MS, "e").unwrap();
        let h = rows.iter().find(|r| r.step_s == 3600).unwrap();
        assert_eq!((h.t_ms, h.since_ms, h.minutes.len()), (T + HOUR_MS, T + 62 * MINUTE_MS, 3));
        assert_eq!(h.sessions.estimate().round(), 1.0);
        let mut t = Text::default();
        b.render(T + 63 * MINUTE_MS + SEAL_GRACE_MS, &mut t);
        assert!(t.out.contains("hls_dvr_viewers{stream=\"s\"} 1"), "{}", t.out);
        // Nobody since: no minute is sealed, and the gauge falls to 0 as its minute ages.
        let mut t = Text::default();
        b.render(T + 70 * MINUTE_MS, &mut t);
        assert!(t.out.contains("hls_dvr_viewers{stream=\"s\"} 0"), "{}", t.out);
    }

    #[test]
    fn the_board_fits_a_zone() {
        // About 13 MB: the zone is sized from it.
        assert!(std::mem::size_of::<Audience>() < 16 << 20, "{}", std::mem::size_of::<Audience>());
    }
}
