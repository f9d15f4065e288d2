//! A worker's copy of each rendition's recent index rows, so a playlist refresh reads only what is
//! new: one or two small bucket reads instead of the whole window (13 partitions for 2 h).
//!
//! It returns what [`Store::index_range`] would for the same bounds: the rows of every bucket from
//! the lower bound's up to now, in msn order. Whenever the increment does not join the copy
//! cleanly (a hole, a stream that started over), it reads the whole range again, and it never
//! keeps a copy with a hole in it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hls_dvr_core::model::bucket_of;
use hls_dvr_core::model::{sort_newest_per_msn, IndexEntry};
use hls_dvr_store::{Store, StoreError};

/// Copies unused for this long are dropped (streams that ended, renditions nobody watches).
const IDLE: Duration = Duration::from_secs(600);

type Slot = Arc<tokio::sync::Mutex<Vec<IndexEntry>>>;

#[derive(Default)]
pub struct IndexCache {
    slots: Mutex<HashMap<String, (Instant, Slot)>>,
}

impl IndexCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, key: String) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !slots.contains_key(&key) {
            slots.retain(|_, (used, _)| used.elapsed() < IDLE);
        }
        let entry = slots.entry(key).or_insert_with(|| (Instant::now(), Slot::default()));
        entry.0 = Instant::now();
        entry.1.clone()
    }

    /// The index rows of buckets `bucket_of(from_ms)..=bucket_of(now_ms)`, given that the stream's
    /// head (read before calling) is `head_msn`. `key` names the copy (rendition and window).
    #[allow(clippy::too_many_arguments)]
    pub async fn range(
        &self,
        store: &Store,
        key: String,
        stream: &str,
        rendition: &str,
        head_msn: i64,
        from_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let slot = self.slot(key);
        // One refresh per rendition at a time; the others then find the copy up to date.
        let mut rows = slot.lock().await;
        let first_bucket = bucket_of(from_ms);
        rows.retain(|e| bucket_of(e.added_ms) >= first_bucket);
        let fresh = match rows.last() {
            Some(last) if last.msn == head_msn => false,
            Some(last) if last.msn < head_msn => {
                // Rows after the newest copied one. Its bucket and the one before: an uploader on
                // another host may stamp the next row slightly earlier.
                let from = (bucket_of(last.added_ms) - 1).max(first_bucket);
                let reads =
                    (from..=bucket_of(now_ms)).map(|b| store.index_bucket(stream, rendition, b, Some(last.msn)));
                let mut new: Vec<IndexEntry> =
                    futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
                sort_newest_per_msn(&mut new);
                match new.first() {
                    Some(n) if n.msn != last.msn + 1 => true,
                    _ => {
                        rows.extend(new);
                        false
                    }
                }
            }
            // Empty copy, or a head behind the copy (the stream started over): read it all.
            _ => true,
        };
        if fresh {
            *rows = store.index_range(stream, rendition, from_ms, now_ms).await?;
        }
        let out = rows.clone();
        // A hole may be a row not yet visible on the replica we read: never build on it.
        if !out.windows(2).all(|w| w[1].msn == w[0].msn + 1) {
            rows.clear();
        }
        Ok(out)
    }
}
