//! Viewer statistics (ARCHITECTURE.md, "Audience"): the rows edges write once a minute, and the
//! rows a `hls_dvr_stats` query reads, one partition per day of the range.

use scylla::value::CqlTimestamp;
use scylla::{DeserializeRow, SerializeRow};

use hls_dvr_core::audience::{day_of, Row};
use hls_dvr_core::sketch::Sketch;

use crate::error::StoreError;
use crate::latency::Op;
use crate::Store;

/// The columns after the key, as read and written.
pub(crate) const COLUMNS: &str = "rendition, edge, since, sessions, live, shifted, clip, forged, \
                                  new_sessions, watch_ms, bytes, minutes, t";

#[derive(SerializeRow)]
struct StatsWrite<'a> {
    stream: &'a str,
    day: i32,
    step: i32,
    rendition: &'a str,
    edge: &'a str,
    since: CqlTimestamp,
    sessions: Vec<u8>,
    live: Vec<u8>,
    shifted: Vec<u8>,
    clip: Vec<u8>,
    forged: Vec<u8>,
    new_sessions: i64,
    watch_ms: i64,
    bytes: i64,
    minutes: Vec<u8>,
    t: CqlTimestamp,
}

#[derive(DeserializeRow)]
struct StatsRead {
    rendition: String,
    edge: String,
    since: CqlTimestamp,
    sessions: Option<Vec<u8>>,
    live: Option<Vec<u8>>,
    shifted: Option<Vec<u8>>,
    clip: Option<Vec<u8>>,
    forged: Option<Vec<u8>>,
    new_sessions: Option<i64>,
    watch_ms: Option<i64>,
    bytes: Option<i64>,
    minutes: Option<Vec<u8>>,
    t: CqlTimestamp,
}

impl Store {
    /// Writes (or, for an hour row, rewrites) one edge's row.
    pub async fn write_stats(&self, r: &Row) -> Result<(), StoreError> {
        let row = StatsWrite {
            stream: &r.stream,
            day: day_of(r.t_ms),
            step: r.step_s,
            rendition: &r.rendition,
            edge: &r.edge,
            since: CqlTimestamp(r.since_ms),
            sessions: r.sessions.to_bytes(),
            live: r.places[0].to_bytes(),
            shifted: r.places[1].to_bytes(),
            clip: r.places[2].to_bytes(),
            forged: r.forged.to_bytes(),
            new_sessions: r.new_sessions,
            watch_ms: r.watch_ms,
            bytes: r.bytes,
            minutes: r.minutes_bytes(),
            t: CqlTimestamp(r.t_ms),
        };
        self.write(Op::WriteStats, "writing viewer statistics", &self.st.insert_stats, row).await
    }

    /// Every edge's rows of `step_s` (60 or 3600) for `stream` from `from_ms` (included) to
    /// `to_ms` (excluded): one read per day, concurrently. A corrupt sketch is an error.
    pub async fn stats(&self, stream: &str, step_s: i32, from_ms: i64, to_ms: i64) -> Result<Vec<Row>, StoreError> {
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        let days = day_of(from_ms)..=day_of(to_ms - 1);
        let reads = days.map(|day| async move {
            let key = (stream, day, step_s, CqlTimestamp(from_ms), CqlTimestamp(to_ms));
            let st = &self.st.select_stats;
            self.all_rows::<StatsRead>(Op::ReadStats, "reading viewer statistics", "viewer_stats", st, key).await
        });
        let found = futures::future::try_join_all(reads).await?;
        let corrupt = |e: String| StoreError::Corrupt(format!("viewer_stats of {stream:?}: {e}"));
        let sketch = |b: &Option<Vec<u8>>| Sketch::from_bytes(b.as_deref().unwrap_or_default()).map_err(corrupt);
        let mut rows = Vec::new();
        for r in found.into_iter().flatten() {
            rows.push(Row {
                stream: stream.to_string(),
                step_s,
                t_ms: r.t.0,
                since_ms: r.since.0,
                places: [sketch(&r.live)?, sketch(&r.shifted)?, sketch(&r.clip)?],
                sessions: sketch(&r.sessions)?,
                forged: sketch(&r.forged)?,
                new_sessions: r.new_sessions.unwrap_or(0),
                watch_ms: r.watch_ms.unwrap_or(0),
                bytes: r.bytes.unwrap_or(0),
                minutes: Row::minutes_from(r.minutes.as_deref().unwrap_or_default()).map_err(corrupt)?,
                rendition: r.rendition,
                edge: r.edge,
            });
        }
        Ok(rows)
    }
}
