//! The store layer: typed rows over the `scylla` driver, shared by the uploader and the nginx module.
//!
//! Every statement is prepared once per session. Reads of the index are always bounded from below
//! (by time bucket, and by sequence number where the caller knows one). Blobs are written in chunks
//! of at most [`MAX_CHUNK`] bytes and read back chunk by chunk, each chunk checked against the
//! segment's recorded size, so a missing chunk or a short read is an error, never a truncated segment.
//!
//! - [`clip`]: clip files (one MP4 or TS file of a range): planned from index reads, read a unit
//!   of segments at a time.
//! - [`connect`]: contact points, credentials, TLS, local datacenter; the schema command.
//! - [`rows`]: the tables' contents as Rust types, read and written by column name.
//! - [`error`]: what went wrong, sorted by what a caller can do about it.
//! - [`latency`]: how long each kind of request takes.
//! - [`keeper`]: a session kept working for a long-lived client (an nginx worker).
//! - [`schema`]: the tables as CQL, their TTLs and compaction.
//! - [`markers`]: a stream's timed markers (ad breaks, timed metadata).
//! - [`samples`]: segments' sample tables (clips as files).
//! - [`audience`]: viewer statistics, a row per edge, stream and rendition each minute and hour.

pub mod audience;
pub mod clip;
pub mod connect;
pub mod error;
pub mod keeper;
pub mod latency;
pub mod markers;
pub mod push;
pub mod rows;
pub mod samples;
pub mod schema;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;

pub use connect::{
    create_schema, parse_consistency, parse_datacenter, parse_nodes, Credentials, Observer, Secrets, StoreConfig, Tls,
};
pub use error::StoreError;
pub use latency::{Latencies, Op};
pub use push::Claimed;
pub use rows::{BlobKind, BlobMeta};

use hls_dvr_core::model::{bucket_of, sort_newest_per_msn, IndexEntry, Rendition};

use crate::schema::{is_identifier, MAX_CHUNK};
use error::{exec_err, pager_err, row_err};
use rows::{ChunkRow, ChunkWrite, ClaimRow, IndexRow, IndexWrite, MarkerRow, PartRow, RenditionRow, RenditionWrite};

struct Statements {
    /// Per [`BlobKind`].
    insert_chunk: [PreparedStatement; 3],
    select_chunk: [PreparedStatement; 3],
    insert_index: PreparedStatement,
    insert_rendition: PreparedStatement,
    select_renditions: PreparedStatement,
    select_rendition: PreparedStatement,
    select_bucket: PreparedStatement,
    select_bucket_after: PreparedStatement,
    select_bucket_first: PreparedStatement,
    select_streams: PreparedStatement,
    insert_arriving: PreparedStatement,
    seal_segment: PreparedStatement,
    insert_claim: PreparedStatement,
    select_claim: PreparedStatement,
    advance_head: PreparedStatement,
    create_head: PreparedStatement,
    insert_source: PreparedStatement,
    select_source: PreparedStatement,
    insert_part: PreparedStatement,
    select_parts: PreparedStatement,
    select_part: PreparedStatement,
    set_part_head: PreparedStatement,
    insert_marker: PreparedStatement,
    select_markers: PreparedStatement,
    delete_marker: PreparedStatement,
    insert_marker_id: PreparedStatement,
    select_marker_id: PreparedStatement,
    insert_samples: PreparedStatement,
    select_samples: PreparedStatement,
    insert_stats: PreparedStatement,
    select_stats: PreparedStatement,
}

/// A connected store with its statements prepared.
pub struct Store {
    session: Session,
    keyspace: String,
    st: Statements,
    chunk_size: usize,
    latency: Latencies,
    observer: Option<Observer>,
}

impl Store {
    pub async fn connect(cfg: &StoreConfig) -> Result<Store, StoreError> {
        if !is_identifier(&cfg.keyspace) {
            return Err(StoreError::Invalid(format!("bad keyspace name {:?}", cfg.keyspace)));
        }
        let session = connect::session(cfg).await?;
        let ks = &cfg.keyspace;
        let prep = |text: String, write: bool| {
            let session = &session;
            async move {
                let mut p = session.prepare(text.as_str()).await.map_err(|e| {
                    let m = format!("preparing {text:?}: {e} (was the schema created with `hls-dvr-upload schema`?)");
                    StoreError::Invalid(m)
                })?;
                if write {
                    p.set_consistency(cfg.write_consistency);
                    p.set_request_timeout(Some(cfg.write_timeout));
                } else {
                    p.set_consistency(cfg.read_consistency);
                    p.set_request_timeout(Some(cfg.read_timeout));
                }
                // Every statement is an upsert or a read: safe to retry on another node.
                p.set_is_idempotent(true);
                Ok::<_, StoreError>(p)
            }
        };
        let chunk_insert = |kind: BlobKind| {
            format!(
                "INSERT INTO {ks}.{} (stream, rendition, msn, chunk, size, chunks, chunk_size, data) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                kind.table()
            )
        };
        let chunk_select = |kind: BlobKind| {
            format!(
                "SELECT {} FROM {ks}.{} WHERE stream = ? AND rendition = ? AND msn = ? AND chunk = ?",
                ChunkRow::COLUMNS,
                kind.table()
            )
        };
        let marks = |columns: &str| vec!["?"; columns.split(',').count()].join(", ");
        let index_select = format!(
            "SELECT {} FROM {ks}.segment_index WHERE stream = ? AND rendition = ? AND bucket = ?",
            IndexRow::COLUMNS
        );
        let insert_index = format!(
            "INSERT INTO {ks}.segment_index (stream, rendition, bucket, {}) VALUES (?, ?, ?, {})",
            IndexRow::COLUMNS,
            marks(IndexRow::COLUMNS)
        );
        let insert_rendition = format!(
            "INSERT INTO {ks}.streams (stream, {}) VALUES (?, {})",
            RenditionRow::COLUMNS,
            marks(RenditionRow::COLUMNS)
        );
        let heads = format!("SELECT {} FROM {ks}.streams WHERE stream = ?", RenditionRow::COLUMNS);
        // Push ingest (push.rs).
        let insert_arriving = format!(
            "INSERT INTO {ks}.{} (stream, rendition, msn, chunk, data) VALUES (?, ?, ?, ?, ?)",
            BlobKind::Segment.table()
        );
        let seal_segment = format!(
            "UPDATE {ks}.{} SET size = ?, chunks = ?, chunk_size = 0, ends = ? \
             WHERE stream = ? AND rendition = ? AND msn = ? AND chunk = 0",
            BlobKind::Segment.table()
        );
        let insert_claim = format!(
            "INSERT INTO {ks}.ingest_claims (stream, rendition, msn, {}) VALUES (?, ?, ?, {}) IF NOT EXISTS",
            ClaimRow::COLUMNS,
            marks(ClaimRow::COLUMNS)
        );
        let select_claim = format!(
            "SELECT {} FROM {ks}.ingest_claims WHERE stream = ? AND rendition = ? AND msn = ?",
            ClaimRow::COLUMNS
        );
        let head_sets: Vec<String> = RenditionRow::COLUMNS
            .split(',')
            .map(str::trim)
            .filter(|c| *c != "rendition")
            .map(|c| format!("{c} = ?"))
            .collect();
        let advance_head = format!(
            "UPDATE {ks}.streams SET {} WHERE stream = ? AND rendition = ? IF head_msn <= :at_most",
            head_sets.join(", ")
        );
        let create_head = format!("{insert_rendition} IF NOT EXISTS");
        let insert_source =
            format!("INSERT INTO {ks}.ingest_sources (stream, rendition, source, msn) VALUES (?, ?, ?, ?)");
        let select_source =
            format!("SELECT msn FROM {ks}.ingest_sources WHERE stream = ? AND rendition = ? AND source = ?");
        // Prepared together: a new session (a worker after a reload, say) is ready after one round
        // trip, not one per statement (the three groups below run at once too).
        let serving = async {
            futures::try_join!(
                prep(chunk_insert(BlobKind::Segment), true),
                prep(chunk_insert(BlobKind::Init), true),
                prep(chunk_select(BlobKind::Segment), false),
                prep(chunk_select(BlobKind::Init), false),
                prep(insert_index, true),
                prep(insert_rendition, true),
                prep(heads.clone(), false),
                prep(format!("{heads} AND rendition = ?"), false),
                prep(index_select.clone(), false),
                prep(format!("{index_select} AND msn > ?"), false),
                prep(format!("{index_select} LIMIT 1"), false),
                // Partition keys only: one row per stream, tens of them.
                prep(format!("SELECT DISTINCT stream FROM {ks}.streams"), false),
            )
        };
        let pushing = async {
            futures::try_join!(
                prep(insert_arriving, true),
                prep(seal_segment, true),
                prep(insert_claim, true),
                prep(select_claim, false),
                prep(advance_head, true),
                prep(create_head, true),
                prep(insert_source, true),
                prep(select_source, false),
            )
        };
        // Low-latency parts (push.rs).
        let parts =
            format!("SELECT {} FROM {ks}.parts WHERE stream = ? AND rendition = ? AND msn = ?", PartRow::COLUMNS);
        let insert_part = format!(
            "INSERT INTO {ks}.parts (stream, rendition, msn, {}) VALUES (?, ?, ?, {})",
            PartRow::COLUMNS,
            marks(PartRow::COLUMNS)
        );
        let set_part_head =
            format!("UPDATE {ks}.streams SET part_msn = ?, part_no = ? WHERE stream = ? AND rendition = ?");
        let low_latency = async {
            futures::try_join!(
                prep(insert_part, true),
                prep(parts.clone(), false),
                prep(format!("{parts} AND part = ?"), false),
                prep(set_part_head, true),
            )
        };
        // Markers (markers.rs).
        let insert_marker = format!(
            "INSERT INTO {ks}.markers (stream, day, {}) VALUES (?, ?, {})",
            MarkerRow::COLUMNS,
            marks(MarkerRow::COLUMNS)
        );
        let select_markers = format!(
            "SELECT {} FROM {ks}.markers WHERE stream = ? AND day IN ? AND start >= ? AND start < ?",
            MarkerRow::COLUMNS
        );
        let thumbnails = async {
            futures::try_join!(
                prep(chunk_insert(BlobKind::Thumbnail), true),
                prep(chunk_select(BlobKind::Thumbnail), false),
                prep(
                    format!(
                        "INSERT INTO {ks}.sample_tables (stream, rendition, bucket, msn, samples) VALUES (?, ?, ?, ?, ?)"
                    ),
                    true
                ),
                prep(
                    format!(
                        "SELECT msn, samples FROM {ks}.sample_tables WHERE stream = ? AND rendition = ? AND bucket = ? \
                         AND msn >= ? AND msn <= ?"
                    ),
                    false
                ),
            )
        };
        let marking = async {
            futures::try_join!(
                prep(insert_marker, true),
                prep(select_markers, false),
                prep(format!("DELETE FROM {ks}.markers WHERE stream = ? AND day = ? AND start = ? AND id = ?"), true),
                prep(format!("INSERT INTO {ks}.marker_ids (stream, id, start) VALUES (?, ?, ?)"), true),
                prep(format!("SELECT start FROM {ks}.marker_ids WHERE stream = ? AND id = ?"), false),
            )
        };
        // Viewer statistics (audience.rs).
        let audience = async {
            let columns = audience::COLUMNS;
            futures::try_join!(
                prep(
                    format!(
                        "INSERT INTO {ks}.viewer_stats (stream, day, step, {columns}) VALUES (?, ?, ?, {})",
                        marks(columns)
                    ),
                    true
                ),
                prep(
                    format!(
                        "SELECT {columns} FROM {ks}.viewer_stats WHERE stream = ? AND day = ? AND step = ? \
                         AND t >= ? AND t < ?"
                    ),
                    false
                ),
            )
        };
        let (
            (chunk_w, init_w, chunk_r, init_r, index_w, head_w, heads_r, head_r, bucket, after, first, streams),
            (
                insert_arriving,
                seal_segment,
                insert_claim,
                select_claim,
                advance_head,
                create_head,
                insert_source,
                select_source,
            ),
            (insert_part, select_parts, select_part, set_part_head),
            (insert_marker, select_markers, delete_marker, insert_marker_id, select_marker_id),
            (thumb_w, thumb_r, insert_samples, select_samples),
            (insert_stats, select_stats),
        ) = futures::try_join!(serving, pushing, low_latency, marking, thumbnails, audience)?;
        let mut select_claim = select_claim;
        // A claim is read back to learn who holds a number: only a SERIAL read sees every claim
        // that won, including one whose write has not reached a quorum of plain reads yet.
        select_claim.set_consistency(scylla::statement::Consistency::LocalSerial);
        let st = Statements {
            insert_chunk: [chunk_w, init_w, thumb_w],
            select_chunk: [chunk_r, init_r, thumb_r],
            insert_index: index_w,
            insert_rendition: head_w,
            select_renditions: heads_r,
            select_rendition: head_r,
            select_bucket: bucket,
            select_bucket_after: after,
            select_bucket_first: first,
            select_streams: streams,
            insert_arriving,
            seal_segment,
            insert_claim,
            select_claim,
            advance_head,
            create_head,
            insert_source,
            select_source,
            insert_part,
            select_parts,
            select_part,
            set_part_head,
            insert_marker,
            select_markers,
            delete_marker,
            insert_marker_id,
            select_marker_id,
            insert_samples,
            select_samples,
            insert_stats,
            select_stats,
        };
        Ok(Store {
            session,
            keyspace: ks.clone(),
            st,
            chunk_size: MAX_CHUNK,
            latency: Latencies::default(),
            observer: cfg.observer.clone(),
        })
    }

    /// Smaller chunks, for tests that exercise multi-chunk blobs with small files.
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size.clamp(1, MAX_CHUNK);
        self
    }

    /// How long this store's requests took, by kind.
    pub fn latencies(&self) -> &Latencies {
        &self.latency
    }

    async fn timed<T>(&self, op: Op, f: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        let took = start.elapsed();
        self.latency.record(op, took);
        if let Some(o) = &self.observer {
            (o.0)(op, took);
        }
        out
    }

    /// Runs a write. `what` names it in errors.
    async fn write(
        &self,
        op: Op,
        what: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<(), StoreError> {
        self.timed(op, self.session.execute_unpaged(st, values)).await.map_err(|e| exec_err(what, e))?;
        Ok(())
    }

    /// Runs a read of at most one row and returns that row. `what` names the read in errors; a
    /// row that does not fit `R` is corrupt data in `table`.
    async fn first_row<R>(
        &self,
        op: Op,
        what: &str,
        table: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{table}: {e}"));
        let res = self
            .timed(op, self.session.execute_unpaged(st, values))
            .await
            .map_err(|e| exec_err(what, e))?
            .into_rows_result()
            .map_err(|e| corrupt(&e))?;
        res.maybe_first_row::<R>().map_err(|e| corrupt(&e))
    }

    /// Runs a read page by page and returns every row, as [`Store::first_row`] does one.
    async fn all_rows<R>(
        &self,
        op: Op,
        what: &str,
        table: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + 'static,
    {
        self.timed(op, async {
            self.session
                .execute_iter(st.clone(), values)
                .await
                .map_err(|e| pager_err(what, e))?
                .rows_stream::<R>()
                .map_err(|e| StoreError::Corrupt(format!("{table}: {e}")))?
                .try_collect()
                .await
                .map_err(|e| row_err(what, e))
        })
        .await
    }

    /// Writes a blob's chunks (concurrently). Only once this returns may an index row name it.
    pub async fn write_blob(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
        data: &Bytes,
    ) -> Result<(), StoreError> {
        let meta = BlobMeta::for_size(data.len(), self.chunk_size);
        let st = &self.st.insert_chunk[kind.index()];
        let writes = (0..meta.chunks).map(|i| {
            let start = i as usize * meta.chunk_size as usize;
            let end = (start + meta.chunk_size as usize).min(data.len());
            let row = ChunkWrite {
                stream,
                rendition,
                msn,
                chunk: i as i32,
                size: meta.size as i64,
                chunks: meta.chunks as i32,
                chunk_size: meta.chunk_size as i32,
                data: &data[start..end],
            };
            self.write(Op::WriteChunk, "writing chunk", st, row)
        });
        // A few chunks in flight at once: enough to fill the pipe, not enough to swamp a node.
        futures::stream::iter(writes).buffer_unordered(4).try_for_each(|_| async { Ok(()) }).await
    }

    pub async fn write_index(&self, stream: &str, rendition: &str, e: &IndexEntry) -> Result<(), StoreError> {
        let row = IndexWrite { stream, rendition, bucket: bucket_of(e.added_ms), row: IndexRow::from_entry(e) };
        self.write(Op::WriteIndex, "writing index", &self.st.insert_index, row).await
    }

    pub async fn write_head(&self, stream: &str, r: &Rendition) -> Result<(), StoreError> {
        let row = RenditionWrite { stream, row: RenditionRow::from_rendition(r) };
        self.write(Op::WriteHead, "writing head", &self.st.insert_rendition, row).await
    }

    /// All renditions of a stream, in name order.
    pub async fn renditions(&self, stream: &str) -> Result<Vec<Rendition>, StoreError> {
        let rows: Vec<RenditionRow> =
            self.all_rows(Op::ReadHead, "reading stream", "streams", &self.st.select_renditions, (stream,)).await?;
        rows.into_iter().map(RenditionRow::into_rendition).collect()
    }

    pub async fn rendition(&self, stream: &str, rendition: &str) -> Result<Option<Rendition>, StoreError> {
        let row: Option<RenditionRow> = self
            .first_row(Op::ReadHead, "reading head", "streams", &self.st.select_rendition, (stream, rendition))
            .await?;
        row.map(RenditionRow::into_rendition).transpose()
    }

    /// Every stream's name, in name order (the status endpoint).
    pub async fn streams(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            self.all_rows(Op::ReadHead, "listing streams", "streams", &self.st.select_streams, ()).await?;
        let mut names: Vec<String> = rows.into_iter().map(|(s,)| s).collect();
        names.sort();
        Ok(names)
    }

    /// The oldest segment still stored that was added at `from_ms` or later: the first row of
    /// the first bucket that has one, from `from_ms`'s bucket on (never below it).
    pub async fn oldest(
        &self,
        stream: &str,
        rendition: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<IndexEntry>, StoreError> {
        for bucket in bucket_of(from_ms)..=bucket_of(to_ms.max(from_ms)) {
            let st = &self.st.select_bucket_first;
            let row: Option<IndexRow> = self
                .first_row(Op::ReadIndex, "reading index", "segment_index", st, (stream, rendition, bucket))
                .await?;
            if let Some(r) = row {
                return Ok(Some(r.into_entry()));
            }
        }
        Ok(None)
    }

    /// Index rows of one bucket, in msn order, optionally only those after `after`.
    pub async fn index_bucket(
        &self,
        stream: &str,
        rendition: &str,
        bucket: i64,
        after: Option<i64>,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let (op, what, table) = (Op::ReadIndex, "reading index", "segment_index");
        let rows: Vec<IndexRow> = match after {
            Some(a) => {
                self.all_rows(op, what, table, &self.st.select_bucket_after, (stream, rendition, bucket, a)).await?
            }
            None => self.all_rows(op, what, table, &self.st.select_bucket, (stream, rendition, bucket)).await?,
        };
        Ok(rows.into_iter().map(IndexRow::into_entry).collect())
    }

    /// Index rows added in `[from_ms, to_ms]` (whole buckets; callers trim), read concurrently and
    /// returned in msn order without duplicates. The lower bound is what keeps reads off expired data.
    pub async fn index_range(
        &self,
        stream: &str,
        rendition: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let buckets = bucket_of(from_ms)..=bucket_of(to_ms.max(from_ms));
        let reads = buckets.map(|b| self.index_bucket(stream, rendition, b, None));
        let parts = futures::future::try_join_all(reads).await?;
        let mut all: Vec<IndexEntry> = parts.into_iter().flatten().collect();
        sort_newest_per_msn(&mut all);
        Ok(all)
    }

    /// Chunk 0 of a blob with its metadata, or None when the blob does not exist (or expired).
    pub async fn blob_first(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
    ) -> Result<Option<(BlobMeta, Bytes)>, StoreError> {
        // Chunk 0 without metadata: a pushed segment whose last fragment is not stored yet.
        let Some((Some(meta), data)) = self.chunk_row(kind, stream, rendition, msn, 0).await? else {
            return Ok(None);
        };
        meta.validate().map_err(StoreError::Corrupt)?;
        meta.check_chunk(0, &data)?;
        Ok(Some((meta, data)))
    }

    /// Chunk `i` of a blob whose metadata came from [`Store::blob_first`].
    pub async fn blob_chunk(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
        meta: &BlobMeta,
        i: u32,
    ) -> Result<Bytes, StoreError> {
        let what = || format!("{stream}/{rendition}/{msn} chunk {i}");
        let Some((m, data)) = self.chunk_row(kind, stream, rendition, msn, i).await? else {
            return Err(StoreError::Corrupt(format!("{} is missing", what())));
        };
        // Chunks of one size repeat chunk 0's metadata; varying chunks carry none.
        let agrees = match &m {
            Some(m) => m == meta,
            None => meta.ends.is_some(),
        };
        if !agrees {
            return Err(StoreError::Corrupt(format!("{} disagrees with chunk 0: {m:?} vs {meta:?}", what())));
        }
        meta.check_chunk(i, &data)?;
        Ok(data)
    }

    /// A whole blob as its chunks, in order, every one checked: chunk 0 first (it says how many
    /// there are), then the others together.
    pub async fn read_chunks(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
    ) -> Result<Option<Vec<Bytes>>, StoreError> {
        let Some((meta, first)) = self.blob_first(kind, stream, rendition, msn).await? else {
            return Ok(None);
        };
        let rest = (1..meta.chunks).map(|i| self.blob_chunk(kind, stream, rendition, msn, &meta, i));
        let mut chunks = Vec::with_capacity(meta.chunks as usize);
        chunks.push(first);
        chunks.extend(futures::future::try_join_all(rest).await?);
        Ok(Some(chunks))
    }

    /// A whole blob, every chunk checked.
    pub async fn read_blob(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
    ) -> Result<Option<Bytes>, StoreError> {
        Ok(self.read_chunks(kind, stream, rendition, msn).await?.map(|chunks| chunks.concat().into()))
    }

    /// How long the store keeps segments: the chunk table's default TTL (the schema's DVR depth
    /// plus its margin), or None when the table has none.
    pub async fn retention(&self) -> Result<Option<Duration>, StoreError> {
        let res = self
            .session
            .query_unpaged(
                "SELECT default_time_to_live FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
                (&self.keyspace, BlobKind::Segment.table()),
            )
            .await
            .map_err(|e| exec_err("reading the schema", e))?
            .into_rows_result()
            .map_err(|e| StoreError::Invalid(format!("reading the schema: {e}")))?;
        let ttl =
            res.maybe_first_row::<(i32,)>().map_err(|e| StoreError::Invalid(format!("reading the schema: {e}")))?;
        Ok(ttl.and_then(|(s,)| u64::try_from(s).ok()).filter(|s| *s > 0).map(Duration::from_secs))
    }

    async fn chunk_row(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
        i: u32,
    ) -> Result<Option<(Option<BlobMeta>, Bytes)>, StoreError> {
        let st = &self.st.select_chunk[kind.index()];
        let values = (stream, rendition, msn, i as i32);
        let row: Option<ChunkRow> = self.first_row(Op::ReadChunk, "reading chunk", kind.table(), st, values).await?;
        let Some(row) = row else { return Ok(None) };
        let (meta, data) = row
            .into_parts()
            .map_err(|e| StoreError::Corrupt(format!("{stream}/{rendition}/{msn} chunk {i} has {e}")))?;
        Ok(Some((meta, Bytes::from(data))))
    }
}
