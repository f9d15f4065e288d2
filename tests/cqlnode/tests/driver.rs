//! The node against the real `scylla` 1.9 driver with default session settings.

use futures::TryStreamExt;
use hls_dvr_cqlnode::Node;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::Statement;
use scylla::value::{CqlTimestamp, MaybeUnset};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// hls-dvr's schema (src/schema.rs) for keyspace `ks`, TTL 9000 s.
const SCHEMA: &[&str] = &[
    "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'} AND durable_writes = true",
    "CREATE TABLE IF NOT EXISTS ks.streams (stream text, rendition text, container text, target_duration int, bandwidth bigint, codecs text, resolution text, frame_rate double, head_msn bigint, head_disc_seq bigint, head_pdt timestamp, src_uri text, src_msn bigint, src_size bigint, src_mtime bigint, updated timestamp, PRIMARY KEY ((stream), rendition)) WITH compaction = {'class': 'LeveledCompactionStrategy'} AND default_time_to_live = 9000 AND gc_grace_seconds = 3600",
    "CREATE TABLE IF NOT EXISTS ks.segment_index (stream text, rendition text, bucket bigint, msn bigint, duration_us bigint, pdt timestamp, discontinuity boolean, disc_seq bigint, init_msn bigint, size bigint, added timestamp, PRIMARY KEY ((stream, rendition, bucket), msn)) WITH CLUSTERING ORDER BY (msn ASC) AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', 'compaction_window_size': '6'} AND default_time_to_live = 9000 AND gc_grace_seconds = 3600",
    "CREATE TABLE IF NOT EXISTS ks.segment_chunks (stream text, rendition text, msn bigint, chunk int, size bigint, chunks int, chunk_size int, data blob, PRIMARY KEY ((stream, rendition, msn), chunk)) WITH CLUSTERING ORDER BY (chunk ASC) AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', 'compaction_window_size': '6'} AND default_time_to_live = 9000 AND gc_grace_seconds = 3600",
    "CREATE TABLE IF NOT EXISTS ks.init_chunks (stream text, rendition text, msn bigint, chunk int, size bigint, chunks int, chunk_size int, data blob, PRIMARY KEY ((stream, rendition, msn), chunk)) WITH CLUSTERING ORDER BY (chunk ASC) AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', 'compaction_window_size': '6'} AND default_time_to_live = 9000 AND gc_grace_seconds = 3600",
];

const INSERT_INDEX: &str = "INSERT INTO ks.segment_index (stream, rendition, bucket, msn, duration_us, pdt, discontinuity, disc_seq, init_msn, size, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_CHUNK: &str = "INSERT INTO ks.segment_chunks (stream, rendition, msn, chunk, size, chunks, chunk_size, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

async fn connect(node: &Node) -> Session {
    SessionBuilder::new().known_node(node.addr().to_string()).build().await.expect("session")
}

async fn with_schema() -> (Node, Session) {
    let node = Node::spawn("127.0.0.1:0").unwrap();
    let s = connect(&node).await;
    for q in SCHEMA {
        s.query_unpaged(*q, ()).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    (node, s)
}

async fn insert_index(s: &Session, msns: impl IntoIterator<Item = i64>) {
    let p = s.prepare(INSERT_INDEX).await.unwrap();
    for m in msns {
        s.execute_unpaged(
            &p,
            (
                "live",
                "720p",
                0i64,
                m,
                2_000_000i64,
                CqlTimestamp(1_700_000_000_000 + m * 2000),
                m == 3,
                0i64,
                0i64,
                1000 + m,
                CqlTimestamp(0),
            ),
        )
        .await
        .unwrap();
    }
}

async fn msns(s: &Session, q: &str, values: impl scylla::serialize::row::SerializeRow) -> Vec<i64> {
    let p = s.prepare(q).await.unwrap();
    let r = s.execute_unpaged(&p, values).await.unwrap().into_rows_result().unwrap();
    r.rows::<(i64,)>().unwrap().map(|r| r.unwrap().0).collect()
}

fn db_error(e: &ExecutionError) -> Option<&DbError> {
    match e {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => Some(db),
        ExecutionError::PrepareError(p) => {
            // Unprepared statements with values are prepared first; unwrap that layer.
            let s = format!("{p:?}");
            if s.contains("Invalid") {
                Some(&DbError::Invalid)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A tracing writer collecting the driver's log lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// current_thread: every driver task runs on this thread, so the thread-local subscriber
// sees all of the driver's logs (and none from other tests running in parallel).
#[tokio::test(flavor = "current_thread")]
async fn connects_fast_and_cleanly() {
    let logs = Logs::default();
    let w = logs.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || w.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(sub);

    let node = Node::spawn("127.0.0.1:0").unwrap();
    let t = Instant::now();
    let s = connect(&node).await;
    let connect_time = t.elapsed();
    for q in SCHEMA {
        s.query_unpaged(*q, ()).await.unwrap();
    }
    let ddl_time = t.elapsed() - connect_time;
    s.await_schema_agreement().await.unwrap();
    let md = s.get_cluster_state();
    let ks = md.get_keyspace("ks").expect("keyspace metadata fetched");
    let table = &ks.tables["segment_index"];
    assert_eq!(table.partition_key, vec!["stream", "rendition", "bucket"]);
    assert_eq!(table.clustering_key, vec!["msn"]);
    assert_eq!(md.get_nodes_info().len(), 1);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(connect_time < Duration::from_millis(1000), "connect took {connect_time:?}");
    assert!(ddl_time < Duration::from_millis(2000), "DDL took {ddl_time:?}");
    let bad: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.to_lowercase().contains("schema agreement"))
        .collect();
    assert!(bad.is_empty(), "driver complained:\n{}", bad.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_inserts_and_one_mib_blob() {
    let (_node, s) = with_schema().await;
    let ins = s.prepare(INSERT_CHUNK).await.unwrap();
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    s.execute_unpaged(&ins, ("live", "720p", 7i64, 0i32, (1i64 << 20) + 3, 2i32, 1i32 << 20, &big)).await.unwrap();
    s.execute_unpaged(&ins, ("live", "720p", 7i64, 1i32, (1i64 << 20) + 3, 2i32, 1i32 << 20, vec![1u8, 2, 3]))
        .await
        .unwrap();
    let sel = s.prepare("SELECT size, chunks, chunk_size, data FROM ks.segment_chunks WHERE stream = ? AND rendition = ? AND msn = ? AND chunk = ?").await.unwrap();
    let r = s.execute_unpaged(&sel, ("live", "720p", 7i64, 0i32)).await.unwrap().into_rows_result().unwrap();
    let (size, chunks, chunk_size, data): (i64, i32, i32, Vec<u8>) = r.single_row().unwrap();
    assert_eq!((size, chunks, chunk_size), ((1 << 20) + 3, 2, 1 << 20));
    assert!(data == big, "1 MiB blob round-trips");
    let r = s.execute_unpaged(&sel, ("live", "720p", 7i64, 1i32)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(r.single_row::<(i64, i32, i32, Vec<u8>)>().unwrap().3, vec![1, 2, 3]);
    let r = s.execute_unpaged(&sel, ("live", "720p", 8i64, 0i32)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(r.rows_num(), 0);

    // streams: all 16 columns, both reads.
    let ins = s
        .prepare("INSERT INTO ks.streams (stream, rendition, container, target_duration, bandwidth, codecs, resolution, frame_rate, head_msn, head_disc_seq, head_pdt, src_uri, src_msn, src_size, src_mtime, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .await
        .unwrap();
    for r in ["1080p", "720p"] {
        let v = (
            "live",
            r,
            "fmp4",
            2i32,
            5_000_000i64,
            "avc1.64001f,mp4a.40.2",
            "1280x720",
            29.97f64,
            100i64,
            0i64,
            CqlTimestamp(1_700_000_000_000),
            "file:///x",
            100i64,
            12345i64,
            99i64,
        );
        s.execute_unpaged(
            &ins,
            (v.0, v.1, v.2, v.3, v.4, v.5, v.6, v.7, v.8, v.9, v.10, v.11, v.12, v.13, v.14, CqlTimestamp(5)),
        )
        .await
        .unwrap();
    }
    let sel =
        s.prepare("SELECT rendition, container, frame_rate, head_pdt FROM ks.streams WHERE stream = ?").await.unwrap();
    let r = s.execute_unpaged(&sel, ("live",)).await.unwrap().into_rows_result().unwrap();
    let rows: Vec<(String, String, f64, CqlTimestamp)> = r.rows().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec!["1080p", "720p"]);
    assert_eq!((rows[1].2, rows[1].3), (29.97, CqlTimestamp(1_700_000_000_000)));
    let sel = s.prepare("SELECT head_msn, codecs FROM ks.streams WHERE stream = ? AND rendition = ?").await.unwrap();
    let r = s.execute_unpaged(&sel, ("live", "720p")).await.unwrap().into_rows_result().unwrap();
    assert_eq!(r.single_row::<(i64, String)>().unwrap(), (100, "avc1.64001f,mp4a.40.2".to_string()));

    // Unset leaves the previous value; null deletes it.
    s.execute_unpaged(
        &ins,
        (
            "live",
            "720p",
            MaybeUnset::Unset::<&str>,
            MaybeUnset::Unset::<i32>,
            MaybeUnset::Unset::<i64>,
            None::<&str>,
            MaybeUnset::Unset::<&str>,
            MaybeUnset::Unset::<f64>,
            101i64,
            MaybeUnset::Unset::<i64>,
            MaybeUnset::Unset::<CqlTimestamp>,
            MaybeUnset::Unset::<&str>,
            MaybeUnset::Unset::<i64>,
            MaybeUnset::Unset::<i64>,
            MaybeUnset::Unset::<i64>,
            MaybeUnset::Unset::<CqlTimestamp>,
        ),
    )
    .await
    .unwrap();
    let r = s
        .query_unpaged(
            "SELECT head_msn, codecs, container FROM ks.streams WHERE stream = 'live' AND rendition = '720p'",
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(r.single_row::<(i64, Option<String>, String)>().unwrap(), (101, None, "fmp4".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_selects_order_by_desc_and_limit() {
    let (_node, s) = with_schema().await;
    insert_index(&s, [5, 1, 4, 2, 3]).await;
    let base = "SELECT msn, duration_us, pdt, discontinuity, disc_seq, init_msn, size, added FROM ks.segment_index WHERE stream = ? AND rendition = ? AND bucket = ?";
    let key = ("live", "720p", 0i64);
    let p = s.prepare(base).await.unwrap();
    let r = s.execute_unpaged(&p, key).await.unwrap().into_rows_result().unwrap();
    type Row = (i64, i64, CqlTimestamp, bool, i64, i64, i64, CqlTimestamp);
    let rows: Vec<Row> = r.rows::<Row>().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert!(rows[2].3 && !rows[1].3);
    assert_eq!(rows[0].6, 1001);
    let base = "SELECT msn FROM ks.segment_index WHERE stream = ? AND rendition = ? AND bucket = ?";
    assert_eq!(msns(&s, &format!("{base} AND msn > ?"), (key.0, key.1, key.2, 2i64)).await, vec![3, 4, 5]);
    assert_eq!(msns(&s, &format!("{base} AND msn >= ?"), (key.0, key.1, key.2, 2i64)).await, vec![2, 3, 4, 5]);
    assert_eq!(msns(&s, &format!("{base} ORDER BY msn DESC LIMIT ?"), (key.0, key.1, key.2, 2i32)).await, vec![5, 4]);
    assert_eq!(
        msns(&s, &format!("{base} AND msn > ? ORDER BY msn DESC LIMIT ?"), (key.0, key.1, key.2, 3i64, 1i32)).await,
        vec![5]
    );
    assert_eq!(msns(&s, &format!("{base} AND msn >= ? LIMIT ?"), (key.0, key.1, key.2, 2i64, 2i32)).await, vec![2, 3]);
    assert_eq!(msns(&s, &format!("{base} AND msn > ?"), (key.0, key.1, 1i64, 0i64)).await, Vec::<i64>::new());
    // Simple (unprepared) statements with bound values work too.
    let r = s
        .query_unpaged(format!("{base} AND msn < ? ORDER BY msn DESC"), (key.0, key.1, key.2, 3i64))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(r.rows::<(i64,)>().unwrap().map(|r| r.unwrap().0).collect::<Vec<_>>(), vec![2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_with_page_size_two() {
    let (node, s) = with_schema().await;
    insert_index(&s, 1..=7).await;
    let q = "SELECT msn FROM ks.segment_index WHERE stream = ? AND rendition = ? AND bucket = ?";
    let mut p = s.prepare(q).await.unwrap();
    p.set_page_size(2);
    let before = node.requests();
    let got: Vec<(i64,)> = s
        .execute_iter(p.clone(), ("live", "720p", 0i64))
        .await
        .unwrap()
        .rows_stream::<(i64,)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.into_iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(node.requests() - before, 4, "7 rows in pages of 2");

    let st = Statement::new(format!("{q} ORDER BY msn DESC")).with_page_size(2);
    let got: Vec<(i64,)> = s
        .query_iter(st, ("live", "720p", 0i64))
        .await
        .unwrap()
        .rows_stream::<(i64,)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.into_iter().map(|r| r.0).collect::<Vec<_>>(), vec![7, 6, 5, 4, 3, 2, 1]);

    // A whole-table scan pages across partitions.
    insert_index(&s, []).await;
    s.query_unpaged(
        "INSERT INTO ks.segment_index (stream, rendition, bucket, msn) VALUES ('other', '720p', 0, 100)",
        (),
    )
    .await
    .unwrap();
    let st = Statement::new("SELECT msn FROM ks.segment_index").with_page_size(2);
    let mut all: Vec<i64> = s
        .query_iter(st, ())
        .await
        .unwrap()
        .rows_stream::<(i64,)>()
        .unwrap()
        .map_ok(|r| r.0)
        .try_collect()
        .await
        .unwrap();
    all.sort();
    assert_eq!(all, vec![1, 2, 3, 4, 5, 6, 7, 100]);

    // Single pages with explicit paging state.
    let mut p = s.prepare(format!("{q} LIMIT 5")).await.unwrap();
    p.set_page_size(3);
    let (r, state) =
        s.execute_single_page(&p, ("live", "720p", 0i64), scylla::response::PagingState::start()).await.unwrap();
    assert_eq!(
        r.into_rows_result().unwrap().rows::<(i64,)>().unwrap().map(|r| r.unwrap().0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let scylla::response::PagingStateResponse::HasMorePages { state } = state else { panic!("more pages expected") };
    let (r, state) = s.execute_single_page(&p, ("live", "720p", 0i64), state).await.unwrap();
    assert_eq!(
        r.into_rows_result().unwrap().rows::<(i64,)>().unwrap().map(|r| r.unwrap().0).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert!(state.finished(), "LIMIT 5 reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_prepared_and_simple_inserts() {
    let (_node, s) = with_schema().await;
    let ins = s.prepare(INSERT_CHUNK).await.unwrap();
    for kind in [BatchType::Logged, BatchType::Unlogged] {
        let msn = if kind == BatchType::Logged { 1i64 } else { 2 };
        let mut b = Batch::new(kind);
        b.append_statement(ins.clone());
        b.append_statement(ins.clone());
        b.append_statement(
            "INSERT INTO ks.segment_chunks (stream, rendition, msn, chunk, data) VALUES ('live', '720p', ?, 2, 0xff)",
        );
        let v = (
            ("live", "720p", msn, 0i32, 6i64, 3i32, 2i32, vec![0u8, 1]),
            ("live", "720p", msn, 1i32, 6i64, 3i32, 2i32, vec![2u8, 3]),
            (msn,),
        );
        s.batch(&b, v).await.unwrap();
        let r = s
            .query_unpaged(
                "SELECT chunk, data FROM ks.segment_chunks WHERE stream = 'live' AND rendition = '720p' AND msn = ?",
                (msn,),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        let rows: Vec<(i32, Vec<u8>)> = r.rows().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows, vec![(0, vec![0, 1]), (1, vec![2, 3]), (2, vec![0xff])]);
    }
    // A batch with a bad statement applies nothing.
    let mut b = Batch::new(BatchType::Logged);
    b.append_statement(ins.clone());
    b.append_statement("INSERT INTO ks.segment_chunks (stream, msn, chunk) VALUES ('live', 3, 0)");
    let e = s.batch(&b, (("live", "720p", 3i64, 0i32, 6i64, 3i32, 2i32, vec![0u8]), ())).await.unwrap_err();
    assert_eq!(db_error(&e), Some(&DbError::Invalid), "{e}");
    let r = s
        .query_unpaged(
            "SELECT chunk FROM ks.segment_chunks WHERE stream = 'live' AND rendition = '720p' AND msn = 3",
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(r.rows_num(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_statements_give_db_errors_not_hangs() {
    let (_node, s) = with_schema().await;
    for (q, want) in [
        ("UPDATE ks.streams SET codecs = 'x' WHERE stream = 'a' AND rendition = 'b'", DbError::Invalid),
        ("DELETE FROM ks.streams WHERE stream = 'a'", DbError::Invalid),
        ("ALTER TABLE ks.streams ADD foo int", DbError::Invalid),
        ("SELECT * FROM ks.streams WHERE codecs = 'x'", DbError::Invalid),
        ("SELECT * FROM ks.nope", DbError::Invalid),
        ("THIS IS NOT CQL", DbError::SyntaxError),
    ] {
        let e =
            tokio::time::timeout(Duration::from_secs(5), s.query_unpaged(q, ())).await.expect("no hang").unwrap_err();
        assert_eq!(db_error(&e), Some(&want), "{q}: {e}");
    }
    let e = s.prepare("SELECT nope FROM ks.streams").await.unwrap_err();
    assert!(format!("{e}").contains("Undefined column name nope"), "{e}");
    let e = s.query_unpaged(SCHEMA[1].replace(" IF NOT EXISTS", ""), ()).await.unwrap_err();
    assert!(matches!(db_error(&e), Some(DbError::AlreadyExists { .. })), "{e}");
    // The session still works afterwards.
    s.query_unpaged("SELECT * FROM ks.streams", ()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_keyspace_and_unqualified_names() {
    let (_node, s) = with_schema().await;
    s.use_keyspace("ks", false).await.unwrap();
    s.query_unpaged("INSERT INTO streams (stream, rendition, head_msn) VALUES ('a', 'b', 1)", ()).await.unwrap();
    let p = s.prepare("SELECT head_msn FROM streams WHERE stream = ?").await.unwrap();
    let r = s.execute_unpaged(&p, ("a",)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(r.single_row::<(i64,)>().unwrap().0, 1);
    let r = s.query_unpaged("SELECT COUNT(*) FROM streams", ()).await.unwrap().into_rows_result().unwrap();
    assert_eq!(r.single_row::<(i64,)>().unwrap().0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_survive_drop_and_recreate_with_new_columns() {
    let node = Node::spawn("127.0.0.1:0").unwrap();
    let s = connect(&node).await;
    s.query_unpaged(SCHEMA[0], ()).await.unwrap();
    s.query_unpaged("CREATE TABLE ks.x (k int PRIMARY KEY, v int)", ()).await.unwrap();
    s.query_unpaged("INSERT INTO ks.x (k, v) VALUES (1, 2)", ()).await.unwrap();
    let p = s.prepare("SELECT * FROM ks.x WHERE k = ?").await.unwrap();
    let r = s.execute_unpaged(&p, (1i32,)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(r.single_row::<(i32, i32)>().unwrap(), (1, 2));
    s.query_unpaged("DROP TABLE ks.x", ()).await.unwrap();
    s.query_unpaged("CREATE TABLE ks.x (k int PRIMARY KEY, v text, w text)", ()).await.unwrap();
    s.query_unpaged("INSERT INTO ks.x (k, v, w) VALUES (1, 'a', 'b')", ()).await.unwrap();
    let r = s.execute_unpaged(&p, (1i32,)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(r.single_row::<(i32, String, String)>().unwrap(), (1, "a".to_string(), "b".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_down_then_recovery() {
    let (node, s) = with_schema().await;
    insert_index(&s, [1]).await;
    let p =
        s.prepare("SELECT msn FROM ks.segment_index WHERE stream = ? AND rendition = ? AND bucket = ?").await.unwrap();
    node.set_down(true);
    let e = tokio::time::timeout(Duration::from_secs(10), s.execute_unpaged(&p, ("live", "720p", 0i64)))
        .await
        .expect("fails fast, no hang");
    assert!(e.is_err(), "node is down");
    node.set_down(false);
    // The driver reconnects on its own; data and prepared statements survived.
    let t = Instant::now();
    loop {
        match s.execute_unpaged(&p, ("live", "720p", 0i64)).await {
            Ok(r) => {
                assert_eq!(r.into_rows_result().unwrap().rows_num(), 1);
                break;
            }
            Err(e) if t.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery after 30 s: {e}"),
        }
    }
    eprintln!("recovered {:?} after set_down(false)", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_next_and_delay_and_request_count() {
    let (node, s) = with_schema().await;
    let p = s.prepare("SELECT head_msn FROM ks.streams WHERE stream = ?").await.unwrap();
    node.fail_next(2);
    for _ in 0..2 {
        let e = s.execute_unpaged(&p, ("a",)).await.unwrap_err();
        assert_eq!(db_error(&e), Some(&DbError::ServerError), "{e}");
    }
    let before = node.requests();
    s.execute_unpaged(&p, ("a",)).await.unwrap();
    assert_eq!(node.requests(), before + 1);

    node.set_delay(Duration::from_millis(200));
    let t = Instant::now();
    s.execute_unpaged(&p, ("a",)).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200), "{:?}", t.elapsed());
    // Requests are answered concurrently: ten delayed ones take about one delay.
    let t = Instant::now();
    let futs = (0..10).map(|_| s.execute_unpaged(&p, ("a",)));
    for r in futures::future::join_all(futs).await {
        r.unwrap();
    }
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    node.set_delay(Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expires_through_the_driver() {
    let (_node, s) = with_schema().await;
    s.query_unpaged("INSERT INTO ks.streams (stream, rendition, head_msn) VALUES ('t', 'a', 1) USING TTL ?", (1i32,))
        .await
        .unwrap();
    s.query_unpaged("INSERT INTO ks.streams (stream, rendition, head_msn) VALUES ('t', 'b', 2)", ()).await.unwrap();
    let count = || async {
        s.query_unpaged("SELECT rendition FROM ks.streams WHERE stream = 't'", ())
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows_num()
    };
    assert_eq!(count().await, 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_independent_and_shut_down() {
    let a = Node::spawn("127.0.0.1:0").unwrap();
    let b = Node::spawn("127.0.0.1:0").unwrap();
    assert_ne!(a.addr(), b.addr());
    let sa = connect(&a).await;
    sa.query_unpaged(SCHEMA[0], ()).await.unwrap();
    let sb = connect(&b).await;
    assert!(sb.query_unpaged("SELECT * FROM ks.streams", ()).await.is_err());
    let addr = a.addr();
    a.shutdown();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "listener closed");
    drop(sb);
    drop(b);
}
