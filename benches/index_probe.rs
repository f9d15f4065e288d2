//! What the ingest benchmarks' probers share: the index rows stored since the last look, for
//! the renditions that still wait for a segment, read as a player's edge would find them.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{bucket_of, IndexEntry};
use hls_dvr_store::Store;

/// Rendition `(stream, rendition)` by index: stream `s{stream:02}`, rendition `names[rendition]`.
pub type Key = (usize, usize);

/// The rows of `waiting` renditions past the last seen (`last`, updated), each with when it was
/// read. The current bucket and the one 30 s back: rows are bucketed by when they were stored.
pub async fn new_rows(
    store: &Store,
    names: &[String],
    waiting: impl IntoIterator<Item = Key>,
    last: &mut HashMap<Key, i64>,
) -> Vec<(Key, IndexEntry, Instant)> {
    let now = now_ms();
    let mut buckets = vec![bucket_of(now)];
    if bucket_of(now - 30_000) != buckets[0] {
        buckets.insert(0, bucket_of(now - 30_000));
    }
    let mut keys: Vec<Key> = waiting.into_iter().collect();
    keys.sort_unstable();
    keys.dedup();
    let reads = futures::stream::iter(keys.into_iter().map(|(s, r)| {
        let (buckets, after) = (&buckets, last.get(&(s, r)).copied());
        async move {
            let mut rows = Vec::new();
            for b in buckets {
                if let Ok(mut v) = store.index_bucket(&format!("s{s:02}"), &names[r], *b, after).await {
                    rows.append(&mut v);
                }
            }
            ((s, r), rows, Instant::now())
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    let mut out = Vec::new();
    for (key, rows, at) in reads {
        for e in rows {
            let m = last.entry(key).or_insert(-1);
            *m = (*m).max(e.msn);
            out.push((key, e, at));
        }
    }
    out
}
