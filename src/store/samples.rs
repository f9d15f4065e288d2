//! Segments' sample tables (ARCHITECTURE.md, "Clips as files"): written by the uploader before
//! the segment's index row, in the same bucket, and read only to write a clip's header.

use std::collections::HashMap;

use bytes::Bytes;
use hls_dvr_core::model::{bucket_of, IndexEntry};

use crate::error::StoreError;
use crate::latency::Op;
use crate::Store;

impl Store {
    /// Stores segment `msn`'s sample table (its stored form) in the bucket of `added_ms`, the
    /// bucket its index row goes to.
    pub async fn write_samples(
        &self,
        stream: &str,
        rendition: &str,
        added_ms: i64,
        msn: i64,
        table: &[u8],
    ) -> Result<(), StoreError> {
        let row = (stream, rendition, bucket_of(added_ms), msn, table);
        self.write(Op::WriteIndex, "writing a sample table", &self.st.insert_samples, row).await
    }

    /// The sample tables of `entries` (index rows of one rendition), by msn; a segment stored
    /// without one is absent. One read per bucket the rows are in, concurrently.
    pub async fn samples(
        &self,
        stream: &str,
        rendition: &str,
        entries: &[&IndexEntry],
    ) -> Result<HashMap<i64, Bytes>, StoreError> {
        let mut buckets: HashMap<i64, (i64, i64)> = HashMap::new();
        for e in entries {
            let span = buckets.entry(bucket_of(e.added_ms)).or_insert((e.msn, e.msn));
            span.0 = span.0.min(e.msn);
            span.1 = span.1.max(e.msn);
        }
        let reads = buckets.into_iter().map(|(bucket, (from, to))| async move {
            let st = &self.st.select_samples;
            let key = (stream, rendition, bucket, from, to);
            self.all_rows::<(i64, Vec<u8>)>(Op::ReadIndex, "reading sample tables", "sample_tables", st, key).await
        });
        let found = futures::future::try_join_all(reads).await?;
        Ok(found.into_iter().flatten().map(|(msn, t)| (msn, Bytes::from(t))).collect())
    }
}
