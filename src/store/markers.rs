//! A stream's timed markers (ARCHITECTURE.md, "Markers"): one row per marker in the partition of
//! its start's day, and one per id saying where it is, so that posting an id again replaces the
//! marker wherever it started. Reads are bounded from below by time, like index reads.

use scylla::value::CqlTimestamp;

use hls_dvr_core::markers::{Marker, MAX_DURATION_US};

use crate::error::StoreError;
use crate::latency::Op;
use crate::rows::{MarkerRow, MarkerWrite};
use crate::Store;

/// Markers are partitioned by the day (UTC) they start.
pub const DAY_MS: i64 = 86_400_000;

fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

impl Store {
    /// Stores a marker, replacing the one with its id (moved, when its start changed). Checked
    /// first: what is stored can always be listed.
    pub async fn write_marker(&self, stream: &str, m: &Marker) -> Result<(), StoreError> {
        m.check().map_err(StoreError::Invalid)?;
        let st = &self.st.select_marker_id;
        let was: Option<(CqlTimestamp,)> =
            self.first_row(Op::ReadMarker, "finding a marker", "marker_ids", st, (stream, &m.id)).await?;
        let row = MarkerWrite { stream, day: day_of(m.start_ms), row: MarkerRow::from_marker(m) };
        self.write(Op::WriteMarker, "storing a marker", &self.st.insert_marker, row).await?;
        let at = (stream, &m.id, CqlTimestamp(m.start_ms));
        self.write(Op::WriteMarker, "storing a marker's id", &self.st.insert_marker_id, at).await?;
        if let Some((old,)) = was.filter(|(old,)| old.0 != m.start_ms) {
            // The id moved: its old row goes (a marker post is rare; no read path deletes).
            let key = (stream, day_of(old.0), old, &m.id);
            self.write(Op::WriteMarker, "moving a marker", &self.st.delete_marker, key).await?;
        }
        Ok(())
    }

    /// The markers whose span overlaps `[from_ms, to_ms)`, by start. Markers last at most a day,
    /// so the rows read start within a day before `from_ms`.
    pub async fn markers(&self, stream: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Marker>, StoreError> {
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        let earliest = from_ms - MAX_DURATION_US / 1000;
        // One request for the day or two (three for a day-long span) the rows may be in.
        let days: Vec<i64> = (day_of(earliest)..=day_of(to_ms - 1)).collect();
        let bounds = (stream, days, CqlTimestamp(earliest), CqlTimestamp(to_ms));
        let st = &self.st.select_markers;
        let rows: Vec<MarkerRow> = self.all_rows(Op::ReadMarker, "reading markers", "markers", st, bounds).await?;
        let mut out = Vec::new();
        for row in rows {
            let m = row.into_marker()?;
            if m.overlaps(from_ms, to_ms) {
                out.push(m);
            }
        }
        out.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
        Ok(out)
    }
}
