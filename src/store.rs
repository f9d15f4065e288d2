//! The store layer: typed rows over the `scylla` driver, shared by the uploader and the nginx module.
//!
//! Every statement is prepared once per session. Reads of the index are always bounded from below
//! (by time bucket, and by sequence number where the caller knows one). Blobs are written in chunks
//! of at most [`MAX_CHUNK`] bytes and read back chunk by chunk, each chunk checked against the
//! segment's recorded size, so a missing chunk or a short read is an error, never a truncated segment.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use scylla::value::CqlTimestamp;

use crate::schema::{bucket_of, is_identifier, SchemaOptions, MAX_CHUNK};

/// Why a store operation failed. Callers map these to HTTP statuses and retry decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No connection, node down, unavailable replicas: try again later (HTTP 503).
    Unavailable(String),
    /// The request did not finish within its timeout (HTTP 504).
    Timeout(String),
    /// The data in the store is inconsistent: a missing chunk, a size mismatch (HTTP 502).
    Corrupt(String),
    /// A bad request or configuration: retrying will not help.
    Invalid(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StoreError::Timeout(m) => write!(f, "store timeout: {m}"),
            StoreError::Corrupt(m) => write!(f, "corrupt data in store: {m}"),
            StoreError::Invalid(m) => write!(f, "store request rejected: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}

fn exec_err(what: &str, e: ExecutionError) -> StoreError {
    use scylla::errors::{DbError, RequestAttemptError};
    let msg = format!("{what}: {e}");
    match &e {
        ExecutionError::RequestTimeout(_) => StoreError::Timeout(msg),
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => match db {
            DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => StoreError::Timeout(msg),
            DbError::SyntaxError | DbError::Invalid | DbError::AlreadyExists { .. } | DbError::Unauthorized => {
                StoreError::Invalid(msg)
            }
            _ => StoreError::Unavailable(msg),
        },
        ExecutionError::BadQuery(_) | ExecutionError::PrepareError(_) => StoreError::Invalid(msg),
        _ => StoreError::Unavailable(msg),
    }
}

fn classify(m: String) -> StoreError {
    if m.to_ascii_lowercase().contains("timeout") || m.to_ascii_lowercase().contains("timed out") {
        StoreError::Timeout(m)
    } else {
        StoreError::Unavailable(m)
    }
}

fn page_err(what: &str, e: scylla::errors::NextPageError) -> StoreError {
    use scylla::errors::NextPageError;
    match e {
        NextPageError::TypeCheckError(_) | NextPageError::ResultMetadataParseError(_) => {
            StoreError::Corrupt(format!("{what}: {e}"))
        }
        other => classify(format!("{what}: {other}")),
    }
}

fn pager_err(what: &str, e: scylla::errors::PagerExecutionError) -> StoreError {
    use scylla::errors::PagerExecutionError;
    match e {
        PagerExecutionError::NextPageError(e) => page_err(what, e),
        PagerExecutionError::PrepareError(_) | PagerExecutionError::SerializationError(_) => {
            StoreError::Invalid(format!("{what}: {e}"))
        }
        other => classify(format!("{what}: {other}")),
    }
}

fn row_err(what: &str, e: scylla::errors::NextRowError) -> StoreError {
    use scylla::errors::NextRowError;
    match e {
        NextRowError::NextPageError(e) => page_err(what, e),
        NextRowError::RowDeserializationError(_) => StoreError::Corrupt(format!("{what}: {e}")),
        other => classify(format!("{what}: {other}")),
    }
}

/// Parses a consistency level the way cqlsh spells it (`LOCAL_QUORUM`, `one`, ...).
pub fn parse_consistency(s: &str) -> Result<Consistency, String> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        _ => {
            return Err(format!(
                "unknown consistency level {s:?} (one of ONE, TWO, THREE, QUORUM, ALL, LOCAL_ONE, \
                 LOCAL_QUORUM, EACH_QUORUM, ANY)"
            ))
        }
    })
}

/// How to reach the store and how hard to try.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `host:port` contact points.
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub read_consistency: Consistency,
    pub write_consistency: Consistency,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub connect_timeout: Duration,
}

impl StoreConfig {
    pub fn new(nodes: Vec<String>, keyspace: &str) -> Self {
        StoreConfig {
            nodes,
            keyspace: keyspace.to_string(),
            read_consistency: Consistency::LocalQuorum,
            write_consistency: Consistency::LocalQuorum,
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Checks a `host:port[,host:port...]` list: non-empty hosts, numeric ports.
pub fn parse_nodes(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let (host, port) = n.rsplit_once(':').ok_or_else(|| format!("{n:?}: expected HOST:PORT"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{n:?}: expected HOST:PORT with a port in 1..65535"));
        }
        out.push(n.to_string());
    }
    if out.is_empty() {
        return Err("no Cassandra contact point given (HOST:PORT[,HOST:PORT...])".into());
    }
    Ok(out)
}

async fn session(nodes: &[String], connect_timeout: Duration) -> Result<Session, StoreError> {
    let builder = SessionBuilder::new().known_nodes(nodes).connection_timeout(connect_timeout);
    let build = builder.build();
    // The driver retries contact points itself; bound the whole start-up so callers get an answer.
    match tokio::time::timeout(connect_timeout + Duration::from_secs(1), build).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("cannot connect to {}: {e}", nodes.join(",")))),
        Err(_) => Err(StoreError::Timeout(format!("connecting to {} timed out", nodes.join(",")))),
    }
}

/// Creates the keyspace and tables (idempotent) and waits for schema agreement.
pub async fn create_schema(nodes: &[String], opts: &SchemaOptions) -> Result<(), StoreError> {
    if !is_identifier(&opts.keyspace) {
        return Err(StoreError::Invalid(format!("bad keyspace name {:?}", opts.keyspace)));
    }
    let s = session(nodes, Duration::from_secs(5)).await?;
    for stmt in opts.statements() {
        s.query_unpaged(stmt.as_str(), ()).await.map_err(|e| exec_err("creating schema", e))?;
    }
    s.await_schema_agreement().await.map_err(|e| StoreError::Unavailable(format!("schema agreement: {e}")))?;
    Ok(())
}

/// Container of a rendition's media segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Ts,
    Fmp4,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "fmp4",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ts" => Some(Container::Ts),
            "fmp4" => Some(Container::Fmp4),
            _ => None,
        }
    }
    /// File extension of media segments in URLs.
    pub fn segment_ext(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "m4s",
        }
    }
}

/// Where the uploader stopped in the segmenter's output, so a restart resumes exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcePos {
    pub uri: String,
    /// The segmenter's own media sequence number of that segment.
    pub msn: i64,
    pub size: i64,
    /// Modification time of the file, in nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// One rendition of a stream, with its head (the newest stored segment).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub name: String,
    pub container: Container,
    pub target_duration: i32,
    pub bandwidth: Option<i64>,
    pub codecs: Option<String>,
    pub resolution: Option<String>,
    pub frame_rate: Option<f64>,
    pub head_msn: i64,
    pub head_disc_seq: i64,
    /// Program date-time of the head segment, ms since the epoch.
    pub head_pdt_ms: i64,
    pub source: SourcePos,
    pub updated_ms: i64,
}

/// One segment in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub msn: i64,
    pub duration_us: i64,
    /// Program date-time of the segment's first sample, ms since the epoch.
    pub pdt_ms: i64,
    /// An EXT-X-DISCONTINUITY precedes this segment.
    pub discontinuity: bool,
    /// Discontinuities up to and including this segment's own.
    pub disc_seq: i64,
    /// The init segment (fMP4), named by the first media sequence number that used it.
    pub init_msn: Option<i64>,
    pub size: i64,
    /// When the uploader stored it, ms since the epoch (decides the bucket).
    pub added_ms: i64,
}

/// Which blob table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Segment,
    Init,
}

/// What chunk 0 of a blob says about the whole blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub chunks: u32,
    pub chunk_size: u32,
}

impl BlobMeta {
    pub fn for_size(size: usize, chunk_size: usize) -> BlobMeta {
        let chunk_size = chunk_size.clamp(1, MAX_CHUNK);
        BlobMeta { size: size as u64, chunks: size.div_ceil(chunk_size).max(1) as u32, chunk_size: chunk_size as u32 }
    }

    /// Bytes that chunk `i` must hold.
    pub fn chunk_len(&self, i: u32) -> u64 {
        if i + 1 < self.chunks {
            self.chunk_size as u64
        } else {
            self.size - (self.chunks as u64 - 1) * self.chunk_size as u64
        }
    }

    /// Checks the metadata is self-consistent: corrupt rows must not make us loop or overflow.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunks == 0 || self.chunk_size == 0 || self.chunk_size as usize > MAX_CHUNK {
            return Err(format!("bad blob metadata {self:?}"));
        }
        let max = self.chunks as u64 * self.chunk_size as u64;
        let min = (self.chunks as u64 - 1) * self.chunk_size as u64;
        if self.size > max || (self.size <= min && self.chunks > 1) {
            return Err(format!("blob size {} does not fit {} chunks of {}", self.size, self.chunks, self.chunk_size));
        }
        Ok(())
    }

    /// Chunks covering bytes `start..=end` of the blob.
    pub fn chunks_for(&self, start: u64, end: u64) -> std::ops::RangeInclusive<u32> {
        let cs = self.chunk_size as u64;
        ((start / cs) as u32)..=((end / cs) as u32)
    }
}

type HeadRow = (
    String,
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<i64>,
    Option<i64>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<CqlTimestamp>,
);

const HEAD_COLUMNS: &str = "rendition, container, target_duration, bandwidth, codecs, resolution, \
     frame_rate, head_msn, head_disc_seq, head_pdt, src_uri, src_msn, src_size, src_mtime, updated";

fn head_from_row(r: HeadRow) -> Result<Rendition, StoreError> {
    let container =
        r.1.as_deref()
            .and_then(Container::parse)
            .ok_or_else(|| StoreError::Corrupt(format!("rendition {:?} has bad container {:?}", r.0, r.1)))?;
    Ok(Rendition {
        name: r.0,
        container,
        target_duration: r.2.unwrap_or(0),
        bandwidth: r.3,
        codecs: r.4,
        resolution: r.5,
        frame_rate: r.6,
        head_msn: r.7.unwrap_or(-1),
        head_disc_seq: r.8.unwrap_or(0),
        head_pdt_ms: r.9.map_or(0, |t| t.0),
        source: SourcePos {
            uri: r.10.unwrap_or_default(),
            msn: r.11.unwrap_or(-1),
            size: r.12.unwrap_or(0),
            mtime_ns: r.13.unwrap_or(0),
        },
        updated_ms: r.14.map_or(0, |t| t.0),
    })
}

type IndexRow = (i64, i64, CqlTimestamp, bool, i64, Option<i64>, i64, CqlTimestamp);

const INDEX_COLUMNS: &str = "msn, duration_us, pdt, discontinuity, disc_seq, init_msn, size, added";

fn index_from_row(r: IndexRow) -> IndexEntry {
    IndexEntry {
        msn: r.0,
        duration_us: r.1,
        pdt_ms: r.2 .0,
        discontinuity: r.3,
        disc_seq: r.4,
        init_msn: r.5,
        size: r.6,
        added_ms: r.7 .0,
    }
}

struct Statements {
    insert_chunk: [PreparedStatement; 2],
    select_chunk: [PreparedStatement; 2],
    insert_index: PreparedStatement,
    insert_head: PreparedStatement,
    select_heads: PreparedStatement,
    select_head: PreparedStatement,
    select_bucket: PreparedStatement,
    select_bucket_after: PreparedStatement,
}

/// A connected store with its statements prepared.
pub struct Store {
    session: Session,
    st: Statements,
    chunk_size: usize,
}

fn blob_table(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::Segment => "segment_chunks",
        BlobKind::Init => "init_chunks",
    }
}

fn kind_idx(kind: BlobKind) -> usize {
    match kind {
        BlobKind::Segment => 0,
        BlobKind::Init => 1,
    }
}

impl Store {
    pub async fn connect(cfg: &StoreConfig) -> Result<Store, StoreError> {
        if !is_identifier(&cfg.keyspace) {
            return Err(StoreError::Invalid(format!("bad keyspace name {:?}", cfg.keyspace)));
        }
        let session = session(&cfg.nodes, cfg.connect_timeout).await?;
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
        let chunk_insert = |t: &str| {
            format!(
                "INSERT INTO {ks}.{t} (stream, rendition, msn, chunk, size, chunks, chunk_size, data) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )
        };
        let chunk_select = |t: &str| {
            format!(
                "SELECT size, chunks, chunk_size, data FROM {ks}.{t} \
                 WHERE stream = ? AND rendition = ? AND msn = ? AND chunk = ?"
            )
        };
        let st = Statements {
            insert_chunk: [
                prep(chunk_insert(blob_table(BlobKind::Segment)), true).await?,
                prep(chunk_insert(blob_table(BlobKind::Init)), true).await?,
            ],
            select_chunk: [
                prep(chunk_select(blob_table(BlobKind::Segment)), false).await?,
                prep(chunk_select(blob_table(BlobKind::Init)), false).await?,
            ],
            insert_index: prep(
                format!(
                    "INSERT INTO {ks}.segment_index (stream, rendition, bucket, {INDEX_COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                true,
            )
            .await?,
            insert_head: prep(
                format!(
                    "INSERT INTO {ks}.streams (stream, {HEAD_COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                true,
            )
            .await?,
            select_heads: prep(format!("SELECT {HEAD_COLUMNS} FROM {ks}.streams WHERE stream = ?"), false).await?,
            select_head: prep(
                format!("SELECT {HEAD_COLUMNS} FROM {ks}.streams WHERE stream = ? AND rendition = ?"),
                false,
            )
            .await?,
            select_bucket: prep(
                format!(
                    "SELECT {INDEX_COLUMNS} FROM {ks}.segment_index \
                     WHERE stream = ? AND rendition = ? AND bucket = ?"
                ),
                false,
            )
            .await?,
            select_bucket_after: prep(
                format!(
                    "SELECT {INDEX_COLUMNS} FROM {ks}.segment_index \
                     WHERE stream = ? AND rendition = ? AND bucket = ? AND msn > ?"
                ),
                false,
            )
            .await?,
        };
        Ok(Store { session, st, chunk_size: MAX_CHUNK })
    }

    /// Smaller chunks, for tests that exercise multi-chunk blobs with small files.
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size.clamp(1, MAX_CHUNK);
        self
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
        let st = &self.st.insert_chunk[kind_idx(kind)];
        let writes = (0..meta.chunks).map(|i| {
            let start = i as usize * meta.chunk_size as usize;
            let end = (start + meta.chunk_size as usize).min(data.len());
            let chunk = &data[start..end];
            async move {
                self.session
                    .execute_unpaged(
                        st,
                        (
                            stream,
                            rendition,
                            msn,
                            i as i32,
                            meta.size as i64,
                            meta.chunks as i32,
                            meta.chunk_size as i32,
                            chunk,
                        ),
                    )
                    .await
                    .map_err(|e| exec_err("writing chunk", e))
            }
        });
        // A few chunks in flight at once: enough to fill the pipe, not enough to swamp a node.
        futures::stream::iter(writes).buffer_unordered(4).try_for_each(|_| async { Ok(()) }).await
    }

    pub async fn write_index(&self, stream: &str, rendition: &str, e: &IndexEntry) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.st.insert_index,
                (
                    stream,
                    rendition,
                    bucket_of(e.added_ms),
                    e.msn,
                    e.duration_us,
                    CqlTimestamp(e.pdt_ms),
                    e.discontinuity,
                    e.disc_seq,
                    e.init_msn,
                    e.size,
                    CqlTimestamp(e.added_ms),
                ),
            )
            .await
            .map_err(|e| exec_err("writing index", e))?;
        Ok(())
    }

    pub async fn write_head(&self, stream: &str, r: &Rendition) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.st.insert_head,
                (
                    stream,
                    &r.name,
                    r.container.as_str(),
                    r.target_duration,
                    r.bandwidth,
                    &r.codecs,
                    &r.resolution,
                    r.frame_rate,
                    r.head_msn,
                    r.head_disc_seq,
                    CqlTimestamp(r.head_pdt_ms),
                    &r.source.uri,
                    r.source.msn,
                    r.source.size,
                    r.source.mtime_ns,
                    CqlTimestamp(r.updated_ms),
                ),
            )
            .await
            .map_err(|e| exec_err("writing head", e))?;
        Ok(())
    }

    /// All renditions of a stream, in name order.
    pub async fn renditions(&self, stream: &str) -> Result<Vec<Rendition>, StoreError> {
        let rows = self
            .session
            .execute_iter(self.st.select_heads.clone(), (stream,))
            .await
            .map_err(|e| pager_err("reading stream", e))?
            .rows_stream::<HeadRow>()
            .map_err(|e| StoreError::Corrupt(format!("streams table: {e}")))?;
        let rows: Vec<HeadRow> = rows.try_collect().await.map_err(|e| row_err("reading stream", e))?;
        rows.into_iter().map(head_from_row).collect()
    }

    pub async fn rendition(&self, stream: &str, rendition: &str) -> Result<Option<Rendition>, StoreError> {
        let res = self
            .session
            .execute_unpaged(&self.st.select_head, (stream, rendition))
            .await
            .map_err(|e| exec_err("reading head", e))?
            .into_rows_result()
            .map_err(|e| StoreError::Corrupt(format!("streams table: {e}")))?;
        let row = res.maybe_first_row::<HeadRow>().map_err(|e| StoreError::Corrupt(format!("streams table: {e}")))?;
        row.map(head_from_row).transpose()
    }

    /// Index rows of one bucket, in msn order, optionally only those after `after`.
    pub async fn index_bucket(
        &self,
        stream: &str,
        rendition: &str,
        bucket: i64,
        after: Option<i64>,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let pager = match after {
            Some(a) => {
                self.session.execute_iter(self.st.select_bucket_after.clone(), (stream, rendition, bucket, a)).await
            }
            None => self.session.execute_iter(self.st.select_bucket.clone(), (stream, rendition, bucket)).await,
        }
        .map_err(|e| pager_err("reading index", e))?;
        let rows =
            pager.rows_stream::<IndexRow>().map_err(|e| StoreError::Corrupt(format!("segment_index table: {e}")))?;
        let rows: Vec<IndexRow> = rows.try_collect().await.map_err(|e| row_err("reading index", e))?;
        Ok(rows.into_iter().map(index_from_row).collect())
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
        let Some((meta, data)) = self.chunk_row(kind, stream, rendition, msn, 0).await? else {
            return Ok(None);
        };
        meta.validate().map_err(StoreError::Corrupt)?;
        check_chunk(&meta, 0, &data)?;
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
        if m != *meta {
            return Err(StoreError::Corrupt(format!("{} disagrees with chunk 0: {m:?} vs {meta:?}", what())));
        }
        check_chunk(meta, i, &data)?;
        Ok(data)
    }

    /// A whole blob, every chunk checked.
    pub async fn read_blob(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
    ) -> Result<Option<Bytes>, StoreError> {
        let Some((meta, first)) = self.blob_first(kind, stream, rendition, msn).await? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(meta.size as usize);
        out.extend_from_slice(&first);
        for i in 1..meta.chunks {
            out.extend_from_slice(&self.blob_chunk(kind, stream, rendition, msn, &meta, i).await?);
        }
        Ok(Some(Bytes::from(out)))
    }

    async fn chunk_row(
        &self,
        kind: BlobKind,
        stream: &str,
        rendition: &str,
        msn: i64,
        i: u32,
    ) -> Result<Option<(BlobMeta, Bytes)>, StoreError> {
        let res = self
            .session
            .execute_unpaged(&self.st.select_chunk[kind_idx(kind)], (stream, rendition, msn, i as i32))
            .await
            .map_err(|e| exec_err("reading chunk", e))?
            .into_rows_result()
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", blob_table(kind))))?;
        let row = res
            .maybe_first_row::<(Option<i64>, Option<i32>, Option<i32>, Option<Vec<u8>>)>()
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", blob_table(kind))))?;
        let Some((size, chunks, chunk_size, data)) = row else { return Ok(None) };
        match (size, chunks, chunk_size, data) {
            (Some(size), Some(chunks), Some(chunk_size), Some(data)) if size >= 0 && chunks > 0 && chunk_size > 0 => {
                let meta = BlobMeta { size: size as u64, chunks: chunks as u32, chunk_size: chunk_size as u32 };
                Ok(Some((meta, Bytes::from(data))))
            }
            other => Err(StoreError::Corrupt(format!(
                "{}/{rendition}/{msn} chunk {i} has incomplete columns: size={:?} chunks={:?} chunk_size={:?} data={}",
                stream,
                other.0,
                other.1,
                other.2,
                other.3.as_ref().map_or("null".to_string(), |d| d.len().to_string())
            ))),
        }
    }
}

/// Sorts index rows by msn, keeping the newest copy of each: an uploader that crashed between an
/// index write and its head write rewrites that row, possibly into a later bucket.
pub fn sort_newest_per_msn(rows: &mut Vec<IndexEntry>) {
    rows.sort_by_key(|e| (e.msn, e.added_ms));
    rows.dedup_by(|later, earlier| {
        if later.msn == earlier.msn {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
}

fn check_chunk(meta: &BlobMeta, i: u32, data: &[u8]) -> Result<(), StoreError> {
    if i >= meta.chunks {
        return Err(StoreError::Corrupt(format!("chunk {i} beyond {} chunks", meta.chunks)));
    }
    let want = meta.chunk_len(i);
    if data.len() as u64 != want {
        return Err(StoreError::Corrupt(format!("chunk {i} holds {} bytes, expected {want}", data.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_meta_chunking() {
        let m = BlobMeta::for_size(2_500_000, MAX_CHUNK);
        assert_eq!(m.chunks, 3);
        assert_eq!(m.chunk_len(0), MAX_CHUNK as u64);
        assert_eq!(m.chunk_len(2), 2_500_000 - 2 * MAX_CHUNK as u64);
        assert!(m.validate().is_ok());
        assert_eq!(m.chunks_for(0, 0), 0..=0);
        assert_eq!(m.chunks_for(MAX_CHUNK as u64 - 1, MAX_CHUNK as u64), 0..=1);
        // Empty blobs still have one (empty) chunk so chunk 0 carries the metadata.
        let e = BlobMeta::for_size(0, MAX_CHUNK);
        assert_eq!((e.chunks, e.chunk_len(0)), (1, 0));
        assert!(e.validate().is_ok());
        // Exactly one chunk's worth.
        let x = BlobMeta::for_size(MAX_CHUNK, MAX_CHUNK);
        assert_eq!((x.chunks, x.chunk_len(0)), (1, MAX_CHUNK as u64));
    }

    #[test]
    fn blob_meta_rejects_inconsistent_rows() {
        assert!(BlobMeta { size: 10, chunks: 0, chunk_size: 4 }.validate().is_err());
        assert!(BlobMeta { size: 13, chunks: 3, chunk_size: 4 }.validate().is_err());
        assert!(BlobMeta { size: 8, chunks: 3, chunk_size: 4 }.validate().is_err());
        assert!(BlobMeta { size: 9, chunks: 3, chunk_size: 4 }.validate().is_ok());
        assert!(BlobMeta { size: 9, chunks: 1, chunk_size: (MAX_CHUNK + 1) as u32 }.validate().is_err());
        let m = BlobMeta { size: 9, chunks: 3, chunk_size: 4 };
        assert!(check_chunk(&m, 2, b"x").is_ok());
        assert!(check_chunk(&m, 1, b"xyz").is_err());
        assert!(check_chunk(&m, 3, b"").is_err());
    }

    #[test]
    fn consistency_and_nodes_parse() {
        assert_eq!(parse_consistency("local_quorum"), Ok(Consistency::LocalQuorum));
        assert!(parse_consistency("most").is_err());
        assert_eq!(parse_nodes("a:9042, b:9043").unwrap(), vec!["a:9042", "b:9043"]);
        assert!(parse_nodes("a").is_err());
        assert!(parse_nodes("a:0").is_err());
        assert!(parse_nodes("a:99999").is_err());
        assert!(parse_nodes(" , ").is_err());
        assert_eq!(parse_nodes("[::1]:9042").unwrap(), vec!["[::1]:9042"]);
    }
}
