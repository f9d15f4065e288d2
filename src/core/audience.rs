//! Who is watching, as plain data: where a request puts its viewer (live, shifted, clip), the
//! rows edges store once a minute and once an hour, the `hls_dvr_stats` query, and the points
//! it answers, combined from any number of edges' rows (ARCHITECTURE.md, "Audience").
//!
//! Minute rows hold sketches of the minute's distinct sessions, so edges combine exactly: a
//! viewer seen by two edges counts once. Hour rows hold the hour's distinct sessions as one
//! sketch and each minute's counts, so a month is read from hundreds of rows; the per-minute
//! counts of two edges are added, which counts twice a viewer who used both edges in the same
//! minute (a player keeps one connection's edge, so that is rare).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::params::{decode, parse_time, PlaylistQuery};
use crate::sketch::Sketch;
use crate::status::string;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Where a request puts its viewer in the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// At the live edge.
    Live,
    /// Behind it: a delayed view, or segments well behind the newest.
    Shifted,
    /// A clip or start-over view (a range with a start).
    Clip,
}

/// A segment more than this many behind the newest is being watched shifted: a live player
/// holds back three target durations and fetches a few ahead.
pub const SHIFTED_SEGMENTS: i64 = 6;

impl Place {
    pub const ALL: [Place; 3] = [Place::Live, Place::Shifted, Place::Clip];

    /// Where a media playlist request puts its viewer.
    pub fn of_playlist(q: &PlaylistQuery) -> Place {
        if q.start_ms.is_some() {
            Place::Clip
        } else if q.delay_ms.unwrap_or(0) > 0 {
            Place::Shifted
        } else {
            Place::Live
        }
    }

    /// Where a media playlist request puts its viewer, from its query as it came (undecoded):
    /// read without allocating, on every playlist request of a counted location.
    pub fn of_query(query: &str) -> Place {
        let mut place = Place::Live;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "start" | "vbegin" => return Place::Clip,
                "delay" if v.bytes().any(|b| (b'1'..=b'9').contains(&b)) => place = Place::Shifted,
                _ => {}
            }
        }
        place
    }

    /// Where a segment request puts its viewer, given the newest segment the edge knows of.
    pub fn of_segment(msn: i64, newest_msn: i64) -> Place {
        if newest_msn.saturating_sub(msn) > SHIFTED_SEGMENTS {
            Place::Shifted
        } else {
            Place::Live
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Place::Live => "live",
            Place::Shifted => "shifted",
            Place::Clip => "clip",
        }
    }
}

/// What one edge counted for a stream (`rendition` empty) or one of its renditions over one
/// minute or hour: a row of the store's `viewer_stats` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub stream: String,
    pub rendition: String,
    /// 60 (a minute row) or 3600 (an hour row).
    pub step_s: i32,
    /// The minute's or hour's start, ms since the epoch.
    pub t_ms: i64,
    pub edge: String,
    /// An hour row: the first minute its edge counted in the hour (a restarted edge starts a
    /// new row rather than overwrite the one before). A minute row: `t_ms`.
    pub since_ms: i64,
    /// Distinct sessions.
    pub sessions: Sketch,
    /// Distinct sessions at each [`Place`] (stream rows only).
    pub places: [Sketch; 3],
    /// Distinct made-up session ids (stream rows only): counted apart, never as viewers.
    pub forged: Sketch,
    pub new_sessions: i64,
    /// Media delivered, from the segments' durations.
    pub watch_ms: i64,
    pub bytes: i64,
    /// Hour rows: each minute's viewers, then at each place (`[viewers, live, shifted, clip]`),
    /// by minute of the hour.
    pub minutes: Vec<[u32; 4]>,
}

impl Row {
    /// The minutes' counts in their stored form: four little-endian u32 per minute.
    pub fn minutes_bytes(&self) -> Vec<u8> {
        self.minutes.iter().flat_map(|m| m.iter().flat_map(|v| v.to_le_bytes())).collect()
    }

    pub fn minutes_from(b: &[u8]) -> Result<Vec<[u32; 4]>, String> {
        if !b.len().is_multiple_of(16) || b.len() > 60 * 16 {
            return Err(format!("per-minute counts of {} bytes", b.len()));
        }
        Ok(b.chunks_exact(16)
            .map(|m| std::array::from_fn(|i| u32::from_le_bytes(m[i * 4..i * 4 + 4].try_into().expect("4 bytes"))))
            .collect())
    }
}

/// The day a row's partition is, days since the epoch.
pub fn day_of(t_ms: i64) -> i32 {
    t_ms.div_euclid(DAY_MS) as i32
}

/// A `hls_dvr_stats` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// None: every stream's viewers now.
    pub stream: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// 60, 3600 or 86400.
    pub step_s: i64,
}

/// Most points one answer may hold: a day of minutes, or two months of hours.
pub const MAX_POINTS: i64 = 1500;

impl StatsQuery {
    /// `stream`, `start`, `end` (the playlists' time forms; default the last hour, up to now),
    /// `step` (60, 3600 or 86400; default 60). Bad or oversized queries are refused with the
    /// reason.
    pub fn parse(query: &str, now_ms: i64) -> Result<StatsQuery, String> {
        let (mut stream, mut start, mut end, mut step) = (None, None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            let slot = match k.as_str() {
                "stream" => &mut stream,
                "start" => &mut start,
                "end" => &mut end,
                "step" => &mut step,
                _ => return Err(format!("{k}: not a parameter of the statistics (stream, start, end, step)")),
            };
            if slot.replace(v).is_some() {
                return Err(format!("{k} is given twice"));
            }
        }
        if let Some(s) = &stream {
            if s.is_empty() || s.contains('/') {
                return Err(format!("stream={s:?}: not a stream name"));
            }
        }
        let step_s = match step.as_deref() {
            None => 60,
            Some("60") => 60,
            Some("3600") => 3600,
            Some("86400") => 86400,
            Some(s) => return Err(format!("step={s:?}: expected 60, 3600 or 86400")),
        };
        let time = |v: Option<String>, name: &str, default: i64| match v {
            None => Ok(default),
            Some(v) => parse_time(&v, now_ms).map_err(|e| format!("{name}={v:?}: {e}")),
        };
        let end_ms = time(end, "end", now_ms)?;
        let start_ms = time(start, "start", end_ms - HOUR_MS)?;
        if end_ms <= start_ms {
            return Err("end is not after start".into());
        }
        let step_ms = step_s * 1000;
        let points = (end_ms.div_euclid(step_ms) - start_ms.div_euclid(step_ms)) + 1;
        if points > MAX_POINTS {
            return Err(format!("{points} points asked for, more than {MAX_POINTS}: use a longer step"));
        }
        Ok(StatsQuery { stream, start_ms, end_ms, step_s })
    }

    /// Rows of which step answer this query: minute rows for minutes, hour rows otherwise.
    pub fn row_step_s(&self) -> i32 {
        if self.step_s == 60 {
            60
        } else {
            3600
        }
    }

    /// The rows' time range to read, aligned to the step.
    pub fn rows_range(&self) -> (i64, i64) {
        let step_ms = self.step_s * 1000;
        (self.start_ms.div_euclid(step_ms) * step_ms, (self.end_ms.div_euclid(step_ms) + 1) * step_ms)
    }
}

/// One point of the answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    pub t_ms: i64,
    pub viewers: f64,
    pub peak_viewers: u64,
    pub unique_viewers: u64,
    pub new_sessions: i64,
    pub watch_seconds: f64,
    pub bytes: i64,
    /// Viewers at each [`Place`].
    pub places: [f64; 3],
    pub renditions: BTreeMap<String, f64>,
    /// Distinct made-up session ids.
    pub forged_sessions: u64,
}

/// The points of `q` from an edge's or many edges' rows of the stream (those of `q.row_step_s`).
/// `now_ms` bounds the minutes the current step has had, for its mean.
pub fn points(q: &StatsQuery, rows: &[Row], now_ms: i64) -> Vec<Point> {
    let step_ms = q.step_s * 1000;
    let mut groups: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.step_s == q.row_step_s()) {
        let t = r.t_ms.div_euclid(step_ms) * step_ms;
        if t >= q.start_ms.div_euclid(step_ms) * step_ms && t <= q.end_ms {
            groups.entry(t).or_default().push(r);
        }
    }
    groups.into_iter().map(|(t, rows)| point(t, step_ms, &rows, now_ms)).collect()
}

fn point(t_ms: i64, step_ms: i64, rows: &[&Row], now_ms: i64) -> Point {
    let mut p = Point { t_ms, ..Point::default() };
    let mut sessions = Sketch::new();
    let mut forged = Sketch::new();
    let mut places: [Sketch; 3] = Default::default();
    // Per rendition ("" the stream): its sessions merged (minute rows), or its per-minute
    // counts added across edges (hour rows), by minute of the step.
    let mut merged: BTreeMap<&str, Sketch> = BTreeMap::new();
    let step_minutes = (step_ms / MINUTE_MS).max(1) as usize;
    let mut by_minute: BTreeMap<&str, Vec<[u64; 4]>> = BTreeMap::new();
    let minute_rows = rows.first().is_some_and(|r| r.step_s == 60);
    for r in rows {
        if r.rendition.is_empty() {
            sessions.merge(&r.sessions);
            forged.merge(&r.forged);
            for (a, b) in places.iter_mut().zip(&r.places) {
                a.merge(b);
            }
            p.new_sessions += r.new_sessions;
            p.watch_ms_add(r.watch_ms);
            p.bytes += r.bytes;
        }
        if minute_rows {
            merged.entry(&r.rendition).or_default().merge(&r.sessions);
        } else {
            let minutes = by_minute.entry(&r.rendition).or_insert_with(|| vec![[0; 4]; step_minutes]);
            let first = ((r.t_ms - t_ms) / MINUTE_MS).max(0) as usize;
            for (slot, counts) in minutes.iter_mut().skip(first).zip(&r.minutes) {
                for (a, b) in slot.iter_mut().zip(counts) {
                    *a += *b as u64;
                }
            }
        }
    }
    p.unique_viewers = sessions.estimate().round() as u64;
    p.forged_sessions = forged.estimate().round() as u64;
    if minute_rows {
        let viewers = sessions.estimate().round();
        p.viewers = viewers;
        p.peak_viewers = viewers as u64;
        for (i, s) in places.iter().enumerate() {
            p.places[i] = s.estimate().round();
        }
        for (name, s) in merged.into_iter().filter(|(n, _)| !n.is_empty()) {
            p.renditions.insert(name.to_string(), s.estimate().round());
        }
    } else {
        // The mean over the step's minutes so far (all of them once the step is over).
        let minutes = ((step_ms.min(now_ms - t_ms + MINUTE_MS - 1)) / MINUTE_MS).max(1) as f64;
        let mean = |sum: u64| (sum as f64 / minutes * 10.0).round() / 10.0;
        for (name, counts) in by_minute {
            let total: u64 = counts.iter().map(|c| c[0]).sum();
            if name.is_empty() {
                p.viewers = mean(total);
                p.peak_viewers = counts.iter().map(|c| c[0]).max().unwrap_or(0);
                for i in 0..3 {
                    p.places[i] = mean(counts.iter().map(|c| c[i + 1]).sum());
                }
            } else {
                p.renditions.insert(name.to_string(), mean(total));
            }
        }
    }
    p
}

impl Point {
    fn watch_ms_add(&mut self, ms: i64) {
        self.watch_seconds = ((self.watch_seconds * 1000.0).round() + ms as f64) / 1000.0;
    }
}

/// The answer to a query for one stream.
pub fn document(stream: &str, step_s: i64, points: &[Point]) -> String {
    let mut out = String::from("{\"stream\":");
    string(&mut out, stream);
    let _ = write!(out, ",\"step\":{step_s},\"points\":[");
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"t_ms\":{},\"viewers\":{},\"peak_viewers\":{},\"unique_viewers\":{},\"new_sessions\":{},\
             \"watch_seconds\":{},\"bytes\":{},\"live\":{},\"shifted\":{},\"clip\":{},\"forged_sessions\":{},\
             \"renditions\":{{",
            p.t_ms,
            p.viewers,
            p.peak_viewers,
            p.unique_viewers,
            p.new_sessions,
            p.watch_seconds,
            p.bytes,
            p.places[0],
            p.places[1],
            p.places[2],
            p.forged_sessions
        );
        for (j, (name, v)) in p.renditions.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            string(&mut out, name);
            let _ = write!(out, ":{v}");
        }
        out.push_str("}}");
    }
    out.push_str("]}\n");
    out
}

/// The answer without a stream: each stream's viewers in the last whole minute.
pub fn now_document(now_ms: i64, minute_ms: i64, streams: &[(String, Point)]) -> String {
    let mut out = format!("{{\"now_ms\":{now_ms},\"t_ms\":{minute_ms},\"streams\":[");
    for (i, (name, p)) in streams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"stream\":");
        string(&mut out, name);
        let _ = write!(
            out,
            ",\"viewers\":{},\"live\":{},\"shifted\":{},\"clip\":{}}}",
            p.viewers, p.places[0], p.places[1], p.places[2]
        );
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::mix;

    const T: i64 = 1_764_633_600_000; // a day's start

    fn sketch(ids: std::ops::Range<u64>) -> Sketch {
        let mut s = Sketch::new();
        ids.for_each(|i| s.insert(mix(i)));
        s
    }

    fn minute(edge: &str, rendition: &str, t_ms: i64, ids: std::ops::Range<u64>) -> Row {
        Row {
            stream: "debate".into(),
            rendition: rendition.into(),
            step_s: 60,
            t_ms,
            edge: edge.into(),
            since_ms: t_ms,
            places: [sketch(ids.clone()), Sketch::new(), Sketch::new()],
            sessions: sketch(ids),
            new_sessions: 3,
            watch_ms: 1500,
            bytes: 100,
            ..Row::default()
        }
    }

    #[test]
    fn the_query_takes_the_playlists_time_forms_and_refuses_bad_ones() {
        let now = T + 7_200_000;
        let q = StatsQuery::parse("stream=debate&start=-3600&step=60", now).unwrap();
        assert_eq!((q.start_ms, q.end_ms, q.step_s), (now - 3_600_000, now, 60));
        assert_eq!(StatsQuery::parse("", now).unwrap().stream, None);
        let q = StatsQuery::parse("stream=debate&start=2025-12-02T00:00:00Z&end=2025-12-03T00:00:00Z&step=3600", now);
        assert_eq!(q.unwrap().row_step_s(), 3600);
        for (bad, why) in [
            ("step=5", "expected 60, 3600 or 86400"),
            ("start=soon", "start=\"soon\""),
            ("start=-60&end=-120", "not after"),
            ("start=-172800&step=60", "use a longer step"),
            ("stream=a/b", "not a stream name"),
            ("who=1", "not a parameter"),
            ("step=60&step=60", "twice"),
        ] {
            let e = StatsQuery::parse(bad, now).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn minute_points_merge_edges_exactly() {
        // Edge a saw sessions 0..300, edge b 200..500: 500 viewers, not 600.
        let rows = vec![
            minute("a", "", T, 0..300),
            minute("b", "", T, 200..500),
            minute("a", "hi", T, 0..300),
            minute("b", "lo", T, 200..500),
            minute("a", "", T + MINUTE_MS, 0..10),
        ];
        let q = StatsQuery { stream: Some("debate".into()), start_ms: T, end_ms: T + 120_000, step_s: 60 };
        let p = points(&q, &rows, T + 180_000);
        assert_eq!(p.len(), 2);
        // Sketches estimate: within 2 % (their error here is about 0.5 %).
        let near = |v: f64, n: f64| (v - n).abs() <= n * 0.02;
        assert!(near(p[0].viewers, 500.0), "{:?}", p[0]);
        assert_eq!((p[0].peak_viewers, p[0].unique_viewers), (p[0].viewers as u64, p[0].viewers as u64));
        assert_eq!((p[0].new_sessions, p[0].watch_seconds, p[0].bytes), (6, 3.0, 200));
        assert_eq!(p[0].places, [p[0].viewers, 0.0, 0.0]);
        assert!(near(p[0].renditions["hi"], 300.0) && near(p[0].renditions["lo"], 300.0));
        assert_eq!(p[1].viewers, 10.0);
        let doc = document("debate", 60, &p);
        let head = format!(
            "{{\"stream\":\"debate\",\"step\":60,\"points\":[{{\"t_ms\":1764633600000,\"viewers\":{},",
            p[0].viewers
        );
        assert!(doc.starts_with(&head), "{doc}");
        let renditions =
            format!("\"renditions\":{{\"hi\":{},\"lo\":{}}}}}", p[0].renditions["hi"], p[0].renditions["lo"]);
        assert!(doc.contains(&renditions), "{doc}");
    }

    #[test]
    fn hour_points_add_minutes_and_merge_unique_viewers() {
        let hour = |edge: &str, since: i64, ids: std::ops::Range<u64>, per_minute: u32| Row {
            stream: "debate".into(),
            step_s: 3600,
            t_ms: T,
            edge: edge.into(),
            since_ms: since,
            sessions: sketch(ids),
            minutes: vec![[per_minute, per_minute, 0, 0]; 60],
            watch_ms: 10,
            ..Row::default()
        };
        let mut restarted = hour("a", T + 30 * MINUTE_MS, 1000..1100, 0);
        for m in 30..60 {
            restarted.minutes[m] = [50, 50, 0, 0];
        }
        let mut first = hour("a", T, 0..1000, 0);
        for m in 0..30 {
            first.minutes[m] = [100, 100, 0, 0];
        }
        first.minutes.truncate(30);
        let rows = vec![first, restarted, hour("b", T, 500..1500, 10)];
        let q = StatsQuery { stream: Some("debate".into()), start_ms: T, end_ms: T + HOUR_MS - 1, step_s: 3600 };
        let p = points(&q, &rows, T + 2 * HOUR_MS);
        assert_eq!(p.len(), 1);
        // Minutes 0-29: 100 + 10; 30-59: 50 + 10. Mean 85, peak 110.
        assert_eq!((p[0].viewers, p[0].peak_viewers), (85.0, 110));
        assert!((p[0].unique_viewers as f64 - 1500.0).abs() <= 30.0, "{:?}", p[0]);
        assert_eq!(p[0].watch_seconds, 0.03);
        // The hour in progress is averaged over its minutes so far (ten whole minutes here).
        let p = points(&q, &rows, T + 10 * MINUTE_MS);
        assert_eq!(p[0].viewers, (30.0 * 110.0 + 30.0 * 60.0) / 10.0);
    }

    #[test]
    fn minute_counts_round_trip_and_bad_ones_are_refused() {
        let r = Row { minutes: vec![[1, 2, 3, 4], [5, 6, 7, 8]], ..Row::default() };
        assert_eq!(Row::minutes_from(&r.minutes_bytes()).unwrap(), r.minutes);
        assert!(Row::minutes_from(&[0; 15]).is_err());
        assert!(Row::minutes_from(&[0; 61 * 16]).is_err());
    }

    #[test]
    fn places() {
        let q = |s: &str| PlaylistQuery::parse(s, T, DAY_MS).unwrap();
        assert_eq!(Place::of_playlist(&q("")), Place::Live);
        assert_eq!(Place::of_playlist(&q("delay=600")), Place::Shifted);
        assert_eq!(Place::of_playlist(&q("start=-600")), Place::Clip);
        for (query, place) in [
            ("", Place::Live),
            ("delay=600", Place::Shifted),
            ("delay=0", Place::Live),
            ("a=1&start=-60", Place::Clip),
            ("vbegin=1", Place::Clip),
        ] {
            assert_eq!(Place::of_query(query), place, "{query}");
        }
        assert_eq!(Place::of_segment(100, 103), Place::Live);
        assert_eq!(Place::of_segment(10, 103), Place::Shifted);
    }
}
