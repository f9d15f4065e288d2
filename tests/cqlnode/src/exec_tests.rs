//! Semantics of statements run directly against the store (no network).

use super::*;
use crate::parse::parse;
use std::net::Ipv4Addr;

struct Db {
    store: Store,
    me: NodeIdentity,
    now_ms: i64,
}

fn int(v: i32) -> Value {
    Value::Set(Bytes::copy_from_slice(&v.to_be_bytes()))
}
fn big(v: i64) -> Value {
    Value::Set(Bytes::copy_from_slice(&v.to_be_bytes()))
}
fn text(s: &str) -> Value {
    Value::Set(Bytes::copy_from_slice(s.as_bytes()))
}
fn as_i64(b: &Option<Bytes>) -> i64 {
    let b = b.as_ref().expect("non-null");
    match b.len() {
        4 => i32::from_be_bytes(b[..].try_into().unwrap()) as i64,
        8 => i64::from_be_bytes(b[..].try_into().unwrap()),
        n => panic!("not an integer: {n} bytes"),
    }
}
fn as_text(b: &Option<Bytes>) -> String {
    String::from_utf8(b.as_ref().expect("non-null").to_vec()).unwrap()
}

impl Db {
    fn new() -> Self {
        let mut db = Db {
            store: Store::default(),
            me: NodeIdentity { host_id: [7; 16], cluster_name: "test".into(), rpc_port: 9042, generation: 1 },
            now_ms: crate::store::now_millis(),
        };
        db.ok("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
        db
    }
    fn run_p(&mut self, cql: &str, values: &[Value], p: &Params) -> Result<Outcome, CqlError> {
        let parsed = parse(cql)?;
        let env = Env { keyspace: Some("ks"), local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), me: &self.me };
        execute(&mut self.store, &env, &parsed, values, p, self.now_ms)
    }
    fn run(&mut self, cql: &str, values: &[Value]) -> Result<Outcome, CqlError> {
        self.run_p(cql, values, &Params::default())
    }
    fn ok(&mut self, cql: &str) -> Outcome {
        self.run(cql, &[]).unwrap_or_else(|e| panic!("{cql}: {e:?}"))
    }
    fn okv(&mut self, cql: &str, values: &[Value]) {
        self.run(cql, values).unwrap_or_else(|e| panic!("{cql}: {e:?}"));
    }
    fn rows_v(&mut self, cql: &str, values: &[Value]) -> Vec<Vec<Option<Bytes>>> {
        match self.run(cql, values) {
            Ok(Outcome::Rows(r)) => r.rows,
            other => panic!("{cql}: {other:?}"),
        }
    }
    fn rows(&mut self, cql: &str) -> Vec<Vec<Option<Bytes>>> {
        self.rows_v(cql, &[])
    }
    /// First column of every row, as integers.
    fn ints(&mut self, cql: &str) -> Vec<i64> {
        self.rows(cql).iter().map(|r| as_i64(&r[0])).collect()
    }
    fn err(&mut self, cql: &str) -> CqlError {
        match self.run(cql, &[]) {
            Err(e) => e,
            Ok(o) => panic!("{cql}: expected an error, got {o:?}"),
        }
    }
    fn seg_table(&mut self, order: &str) {
        self.ok(&format!(
            "CREATE TABLE seg (s text, b bigint, msn bigint, v text, PRIMARY KEY ((s, b), msn)) WITH CLUSTERING ORDER BY (msn {order})"
        ));
        for m in [3, 1, 5, 2, 4] {
            self.ok(&format!("INSERT INTO seg (s, b, msn, v) VALUES ('x', 0, {m}, 'v{m}')"));
        }
        self.ok("INSERT INTO seg (s, b, msn, v) VALUES ('x', 1, 100, 'other partition')");
    }
}

#[test]
fn clustering_order_asc_and_desc() {
    let mut db = Db::new();
    db.seg_table("ASC");
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0"), vec![1, 2, 3, 4, 5]);
    let mut db = Db::new();
    db.seg_table("DESC");
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0"), vec![5, 4, 3, 2, 1]);
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0 ORDER BY msn ASC"), vec![1, 2, 3, 4, 5]);
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0 ORDER BY msn DESC"), vec![5, 4, 3, 2, 1]);
}

#[test]
fn range_bounds_on_both_orders() {
    for order in ["ASC", "DESC"] {
        let mut db = Db::new();
        db.seg_table(order);
        let q = |c: &str| format!("SELECT msn FROM seg WHERE s = 'x' AND b = 0 AND {c} ORDER BY msn ASC");
        assert_eq!(db.ints(&q("msn > 2")), vec![3, 4, 5], "{order}");
        assert_eq!(db.ints(&q("msn >= 2")), vec![2, 3, 4, 5], "{order}");
        assert_eq!(db.ints(&q("msn < 4")), vec![1, 2, 3], "{order}");
        assert_eq!(db.ints(&q("msn <= 4")), vec![1, 2, 3, 4], "{order}");
        assert_eq!(db.ints(&q("msn > 1 AND msn <= 4")), vec![2, 3, 4], "{order}");
        assert_eq!(db.ints(&q("msn >= 2 AND msn < 2")), Vec::<i64>::new(), "{order}");
        assert_eq!(db.ints(&q("msn > 5")), Vec::<i64>::new(), "{order}");
        assert_eq!(db.ints(&q("msn = 3")), vec![3], "{order}");
        assert_eq!(db.ints(&q("msn > -100")), vec![1, 2, 3, 4, 5], "{order}");
    }
}

#[test]
fn prefix_and_slice_on_two_clustering_columns() {
    let mut db = Db::new();
    db.ok(
        "CREATE TABLE t (p int, a text, b int, v int, PRIMARY KEY (p, a, b)) WITH CLUSTERING ORDER BY (a ASC, b DESC)",
    );
    for (a, b) in [("x", 1), ("x", 2), ("x", 3), ("y", 1), ("w", 9), ("x\u{0}", 7)] {
        db.ok(&format!("INSERT INTO t (p, a, b, v) VALUES (1, '{a}', {b}, {b})"));
    }
    let rows = db.rows("SELECT a, b FROM t WHERE p = 1");
    let got: Vec<(String, i64)> = rows.iter().map(|r| (as_text(&r[0]), as_i64(&r[1]))).collect();
    let want: Vec<(String, i64)> = [("w", 9), ("x", 3), ("x", 2), ("x", 1), ("x\u{0}", 7), ("y", 1)]
        .iter()
        .map(|(a, b)| (a.to_string(), *b))
        .collect();
    assert_eq!(got, want);
    assert_eq!(db.ints("SELECT b FROM t WHERE p = 1 AND a = 'x'"), vec![3, 2, 1]);
    assert_eq!(db.ints("SELECT b FROM t WHERE p = 1 AND a = 'x' AND b >= 2"), vec![3, 2]);
    assert_eq!(db.ints("SELECT b FROM t WHERE p = 1 AND a = 'x' AND b < 3 ORDER BY a DESC, b ASC"), vec![1, 2]);
    assert_eq!(db.rows("SELECT b FROM t WHERE p = 1 AND a > 'x'").len(), 2);
    // Mixed directions relative to the table are not a valid ORDER BY.
    assert_eq!(db.err("SELECT b FROM t WHERE p = 1 ORDER BY a DESC, b DESC").code, code::INVALID);
    // A slice on b without an equality on a needs filtering.
    assert_eq!(db.err("SELECT b FROM t WHERE p = 1 AND b > 1").code, code::INVALID);
    assert_eq!(db.ints("SELECT b FROM t WHERE p = 1 AND b > 2 ALLOW FILTERING"), vec![9, 3, 7]);
}

#[test]
fn limit_applies_after_order_by() {
    let mut db = Db::new();
    db.seg_table("ASC");
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0 ORDER BY msn DESC LIMIT 2"), vec![5, 4]);
    assert_eq!(
        db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0 AND msn >= 2 ORDER BY msn DESC LIMIT 2"),
        vec![5, 4]
    );
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0 AND msn < 5 ORDER BY msn DESC LIMIT 1"), vec![4]);
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b = 0 LIMIT 2"), vec![1, 2]);
    let r =
        db.rows_v("SELECT msn FROM seg WHERE s = ? AND b = ? ORDER BY msn DESC LIMIT ?", &[text("x"), big(0), int(3)]);
    assert_eq!(r.iter().map(|r| as_i64(&r[0])).collect::<Vec<_>>(), vec![5, 4, 3]);
    assert_eq!(db.err("SELECT msn FROM seg WHERE s = 'x' AND b = 0 LIMIT 0").code, code::INVALID);
    // ORDER BY needs the partition restricted.
    assert_eq!(db.err("SELECT msn FROM seg ORDER BY msn DESC").code, code::INVALID);
}

/// Pages through `cql`, returning the first column of each page.
fn pages(db: &mut Db, cql: &str, values: &[Value], size: usize) -> Vec<Vec<i64>> {
    let mut out = Vec::new();
    let mut state = None;
    loop {
        let p = Params { page_size: Some(size), paging_state: state.take(), timestamp: None };
        let Ok(Outcome::Rows(r)) = db.run_p(cql, values, &p) else { panic!("{cql}") };
        out.push(r.rows.iter().map(|r| as_i64(&r[0])).collect());
        match r.paging_state {
            Some(s) => state = Some(s),
            None => return out,
        }
        assert!(out.len() < 100, "paging does not terminate");
    }
}

#[test]
fn paging_resumes_after_the_last_row() {
    let mut db = Db::new();
    db.seg_table("ASC");
    let q = "SELECT msn FROM seg WHERE s = 'x' AND b = 0";
    assert_eq!(pages(&mut db, q, &[], 2), vec![vec![1, 2], vec![3, 4], vec![5]]);
    // Exactly full last page: no empty extra page, no state.
    assert_eq!(
        pages(&mut db, "SELECT msn FROM seg WHERE s = 'x' AND b = 0 AND msn <= 4", &[], 2),
        vec![vec![1, 2], vec![3, 4]]
    );
    assert_eq!(
        pages(&mut db, "SELECT msn FROM seg WHERE s = 'x' AND b = 0 ORDER BY msn DESC", &[], 2),
        vec![vec![5, 4], vec![3, 2], vec![1]]
    );
    // LIMIT counts across pages.
    assert_eq!(
        pages(&mut db, "SELECT msn FROM seg WHERE s = 'x' AND b = 0 LIMIT 3", &[], 2),
        vec![vec![1, 2], vec![3]]
    );
    assert_eq!(
        pages(&mut db, "SELECT msn FROM seg WHERE s = 'x' AND b = 0 AND msn > 1 ORDER BY msn DESC LIMIT 3", &[], 2),
        vec![vec![5, 4], vec![3]]
    );
    // Whole-table scans page across partitions.
    let all: Vec<i64> = pages(&mut db, "SELECT msn FROM seg", &[], 2).concat();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 2, 3, 4, 5, 100]);
    assert_eq!(all, pages(&mut db, "SELECT msn FROM seg", &[], 1000).concat(), "same order whatever the page size");
    // A row inserted behind the cursor is not returned; one ahead is.
    let p = Params { page_size: Some(2), ..Default::default() };
    let Ok(Outcome::Rows(r)) = db.run_p(q, &[], &p) else { panic!() };
    db.ok("INSERT INTO seg (s, b, msn) VALUES ('x', 0, 0)");
    db.ok("INSERT INTO seg (s, b, msn) VALUES ('x', 0, 6)");
    let p = Params { page_size: Some(10), paging_state: r.paging_state, timestamp: None };
    let Ok(Outcome::Rows(r)) = db.run_p(q, &[], &p) else { panic!() };
    assert_eq!(r.rows.iter().map(|r| as_i64(&r[0])).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
    // Garbage paging state is a protocol error, not a panic.
    let p = Params { page_size: Some(2), paging_state: Some(vec![1, 2, 3]), timestamp: None };
    assert_eq!(db.run_p(q, &[], &p).unwrap_err().code, code::PROTOCOL_ERROR);
}

#[test]
fn ttl_expiry_with_one_second_ttl() {
    let mut db = Db::new();
    db.ok("CREATE TABLE t (k int, c int, v text, w text, PRIMARY KEY (k, c))");
    db.ok("CREATE TABLE d (k int PRIMARY KEY, v text) WITH default_time_to_live = 1");
    db.ok("INSERT INTO t (k, c, v) VALUES (1, 1, 'a') USING TTL 1");
    db.ok("INSERT INTO t (k, c, v) VALUES (1, 2, 'b')");
    db.ok("INSERT INTO t (k, c, w) VALUES (1, 2, 'short') USING TTL 1");
    db.ok("INSERT INTO d (k, v) VALUES (1, 'x')");
    db.ok("INSERT INTO d (k, v) VALUES (2, 'y') USING TTL 0");
    db.ok("INSERT INTO d (k, v) VALUES (3, 'z') USING TTL 100");
    assert_eq!(db.ints("SELECT c FROM t WHERE k = 1"), vec![1, 2]);
    assert_eq!(db.ints("SELECT k FROM d").len(), 3);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    db.now_ms = crate::store::now_millis();
    // The TTL'd row is gone; the other row stays but loses its expired cell.
    let rows = db.rows("SELECT c, v, w FROM t WHERE k = 1");
    assert_eq!(rows.len(), 1);
    assert_eq!((as_i64(&rows[0][0]), as_text(&rows[0][1]), rows[0][2].clone()), (2, "b".to_string(), None));
    // Table default TTL applies unless USING TTL says otherwise (0 = never expire).
    let mut ks = db.ints("SELECT k FROM d");
    ks.sort();
    assert_eq!(ks, vec![2, 3]);
    assert_eq!(db.rows("SELECT COUNT(*) FROM t").len(), 1);
    assert_eq!(as_i64(&db.rows("SELECT COUNT(*) FROM t")[0][0]), 1);
    // Purging after expiry keeps what is live.
    db.store.purge(db.now_ms);
    assert_eq!(db.ints("SELECT c FROM t WHERE k = 1"), vec![2]);
}

#[test]
fn ttl_values_are_checked_and_null_or_unset_ttl_follow_cassandra() {
    let mut db = Db::new();
    db.ok("CREATE TABLE d (k int PRIMARY KEY, v text) WITH default_time_to_live = 1");
    assert_eq!(db.err("INSERT INTO d (k, v) VALUES (1, 'x') USING TTL -1").code, code::INVALID);
    assert_eq!(db.err("INSERT INTO d (k, v) VALUES (1, 'x') USING TTL 630720001").code, code::INVALID);
    db.okv("INSERT INTO d (k, v) VALUES (?, ?) USING TTL ?", &[int(1), text("null ttl"), Value::Null]);
    db.okv("INSERT INTO d (k, v) VALUES (?, ?) USING TTL ?", &[int(2), text("unset ttl"), Value::Unset]);
    db.now_ms += 1500;
    assert_eq!(db.ints("SELECT k FROM d"), vec![1], "null TTL = no expiry, unset = table default");
}

#[test]
fn last_write_wins_by_timestamp() {
    let mut db = Db::new();
    db.ok("CREATE TABLE t (k int PRIMARY KEY, v text)");
    db.ok("INSERT INTO t (k, v) VALUES (1, 'new') USING TIMESTAMP 10");
    db.ok("INSERT INTO t (k, v) VALUES (1, 'old') USING TIMESTAMP 5");
    assert_eq!(as_text(&db.rows("SELECT v FROM t WHERE k = 1")[0][0]), "new");
    // Equal timestamps: the greater value wins, whatever the arrival order.
    db.ok("INSERT INTO t (k, v) VALUES (2, 'b') USING TIMESTAMP 7");
    db.ok("INSERT INTO t (k, v) VALUES (2, 'a') USING TIMESTAMP 7");
    assert_eq!(as_text(&db.rows("SELECT v FROM t WHERE k = 2")[0][0]), "b");
    // Client timestamps from the frame order writes too; USING TIMESTAMP overrides them.
    let p = |ts| Params { timestamp: Some(ts), ..Default::default() };
    db.run_p("INSERT INTO t (k, v) VALUES (3, 'second')", &[], &p(200)).unwrap();
    db.run_p("INSERT INTO t (k, v) VALUES (3, 'first')", &[], &p(100)).unwrap();
    assert_eq!(as_text(&db.rows("SELECT v FROM t WHERE k = 3")[0][0]), "second");
    db.run_p("INSERT INTO t (k, v) VALUES (3, 'explicit') USING TIMESTAMP 300", &[], &p(1)).unwrap();
    assert_eq!(as_text(&db.rows("SELECT v FROM t WHERE k = 3")[0][0]), "explicit");
    // Server timestamps are strictly increasing, so back-to-back writes keep their order.
    for i in 0..50 {
        db.ok(&format!("INSERT INTO t (k, v) VALUES (4, 'v{i:02}')"));
    }
    assert_eq!(as_text(&db.rows("SELECT v FROM t WHERE k = 4")[0][0]), "v49");
    // A null with an older timestamp does not delete a newer value.
    db.ok("INSERT INTO t (k, v) VALUES (5, 'kept') USING TIMESTAMP 50");
    db.ok("INSERT INTO t (k, v) VALUES (5, null) USING TIMESTAMP 40");
    assert_eq!(as_text(&db.rows("SELECT v FROM t WHERE k = 5")[0][0]), "kept");
}

#[test]
fn null_deletes_and_unset_keeps() {
    let mut db = Db::new();
    db.ok("CREATE TABLE t (k int PRIMARY KEY, a text, b text)");
    db.okv("INSERT INTO t (k, a, b) VALUES (?, ?, ?)", &[int(1), text("a1"), text("b1")]);
    db.okv("INSERT INTO t (k, a, b) VALUES (?, ?, ?)", &[int(1), Value::Null, Value::Unset]);
    let r = db.rows("SELECT a, b FROM t WHERE k = 1");
    assert_eq!((r[0][0].clone(), as_text(&r[0][1])), (None, "b1".to_string()));
    // The row marker keeps a row with only null cells visible.
    db.okv("INSERT INTO t (k, a, b) VALUES (?, ?, ?)", &[int(2), Value::Null, Value::Null]);
    assert_eq!(
        db.rows("SELECT * FROM t WHERE k = 2"),
        vec![vec![Some(Bytes::copy_from_slice(&2i32.to_be_bytes())), None, None]]
    );
    // Keys must be set and non-null.
    assert_eq!(
        db.run("INSERT INTO t (k, a) VALUES (?, ?)", &[Value::Null, text("x")]).unwrap_err().code,
        code::INVALID
    );
    assert_eq!(
        db.run("INSERT INTO t (k, a) VALUES (?, ?)", &[Value::Unset, text("x")]).unwrap_err().code,
        code::INVALID
    );
    assert_eq!(db.run("SELECT a FROM t WHERE k = ?", &[Value::Null]).unwrap_err().code, code::INVALID);
}

#[test]
fn errors_for_unsupported_and_invalid_statements() {
    let mut db = Db::new();
    db.seg_table("ASC");
    let unsupported = [
        "UPDATE seg SET v = 'x' WHERE s = 'x' AND b = 0 AND msn = 1",
        "DELETE FROM seg WHERE s = 'x' AND b = 0",
        "ALTER TABLE seg ADD z int",
        "CREATE INDEX ON seg (v)",
        "INSERT INTO seg (s, b, msn) VALUES ('x', 0, 9) IF NOT EXISTS",
        "SELECT * FROM seg WHERE token(s, b) > 0",
        "SELECT DISTINCT s, b FROM seg",
        "CREATE TABLE c (k int PRIMARY KEY, n counter)",
    ];
    for q in unsupported {
        let e = db.err(q);
        assert_eq!(e.code, code::INVALID, "{q}: {e:?}");
        assert!(e.message.contains("not supported") || e.message.contains("not implemented"), "{q}: {}", e.message);
    }
    for q in ["SELEKT * FROM seg", "INSERT INTO seg VALUES", "SELECT * FROM seg WHERE"] {
        assert_eq!(db.err(q).code, code::SYNTAX_ERROR, "{q}");
    }
    let invalid = [
        "INSERT INTO seg (s, msn) VALUES ('x', 1)", // partition key part missing
        "INSERT INTO seg (s, b) VALUES ('x', 1)",   // clustering key missing
        "INSERT INTO seg (s, b, msn, nope) VALUES ('x', 1, 1, 1)", // unknown column
        "INSERT INTO seg (s, b, msn) VALUES ('x', 'text', 1)", // wrong literal type
        "SELECT * FROM seg WHERE s = 'x'",          // partial partition key
        "SELECT * FROM seg WHERE v = 'x'",          // regular column
        "SELECT * FROM seg WHERE s = 'x' AND b = 0 AND msn = 1 AND msn > 0",
        "SELECT * FROM seg WHERE s = 'x' AND b = 0 AND msn > 1 AND msn > 0",
        "SELECT * FROM seg WHERE s = 'x' AND b = 0 ORDER BY v",
        "SELECT * FROM nope",
        "SELECT * FROM nope.seg",
        "SELECT nope FROM seg",
        "INSERT INTO system.local (key) VALUES ('x')",
        "USE nope",
        "CREATE TABLE seg2 (k int)", // no primary key
        "CREATE TABLE seg2 (k int, PRIMARY KEY (z))",
        "CREATE TABLE seg2 (k int, c int, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (k DESC)",
    ];
    for q in invalid {
        let e = db.err(q);
        assert!(e.code == code::INVALID || e.code == code::UNAUTHORIZED, "{q}: {e:?}");
    }
    // ALLOW FILTERING makes the filtering ones work.
    assert_eq!(db.ints("SELECT msn FROM seg WHERE v = 'v3' ALLOW FILTERING"), vec![3]);
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' ALLOW FILTERING").len(), 6);
    // Bind-count mismatch.
    assert_eq!(db.run("SELECT * FROM seg WHERE s = ? AND b = ?", &[text("x")]).unwrap_err().code, code::INVALID);
    // A value of the wrong size for the column type.
    assert_eq!(
        db.run("SELECT * FROM seg WHERE s = ? AND b = ?", &[text("x"), int(0)]).unwrap_err().code,
        code::INVALID
    );
}

#[test]
fn ddl_if_not_exists_already_exists_and_drop() {
    let mut db = Db::new();
    assert!(matches!(
        db.ok("CREATE TABLE t (k int PRIMARY KEY)"),
        Outcome::SchemaChange { change: "CREATED", target: "TABLE", .. }
    ));
    assert_eq!(db.ok("CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY)"), Outcome::Void);
    let e = db.err("CREATE TABLE t (k int PRIMARY KEY)");
    assert_eq!(e.code, code::ALREADY_EXISTS);
    assert_eq!(e.extra, ErrorExtra::AlreadyExists { keyspace: "ks".into(), table: "t".into() });
    assert_eq!(
        db.err("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").code,
        code::ALREADY_EXISTS
    );
    assert_eq!(
        db.ok(
            "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        ),
        Outcome::Void
    );
    db.ok("INSERT INTO t (k) VALUES (1)");
    db.ok("TRUNCATE t");
    assert!(db.rows("SELECT * FROM t").is_empty());
    db.ok("INSERT INTO t (k) VALUES (1)");
    db.ok("DROP TABLE t");
    assert_eq!(db.err("SELECT * FROM t").code, code::INVALID);
    db.ok("CREATE TABLE t (k int PRIMARY KEY)");
    assert!(db.rows("SELECT * FROM t").is_empty(), "a re-created table starts empty");
    assert_eq!(db.ok("DROP TABLE IF EXISTS nope"), Outcome::Void);
    assert_ne!(db.err("DROP TABLE nope").code, 0);
    db.ok("DROP KEYSPACE ks");
    assert_eq!(db.ok("DROP KEYSPACE IF EXISTS ks"), Outcome::Void);
    assert_eq!(db.err("SELECT * FROM ks.t").code, code::INVALID);
    assert_eq!(db.err("DROP KEYSPACE system").code, code::UNAUTHORIZED);
}

/// The project's schema (hls-dvr src/schema.rs) and its statements.
const PROJECT_SCHEMA: &[&str] = &[
    "CREATE KEYSPACE IF NOT EXISTS dvr WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'} AND durable_writes = false",
    "CREATE TABLE IF NOT EXISTS dvr.streams (stream text, rendition text, container text, target_duration int, bandwidth bigint, codecs text, resolution text, frame_rate double, head_msn bigint, head_disc_seq bigint, head_pdt timestamp, src_uri text, src_msn bigint, src_size bigint, src_mtime bigint, updated timestamp, PRIMARY KEY ((stream), rendition)) WITH compaction = {'class': 'LeveledCompactionStrategy'} AND default_time_to_live = 9000 AND gc_grace_seconds = 3600",
    "CREATE TABLE IF NOT EXISTS dvr.segment_index (stream text, rendition text, bucket bigint, msn bigint, duration_us bigint, pdt timestamp, discontinuity boolean, disc_seq bigint, init_msn bigint, size bigint, added timestamp, PRIMARY KEY ((stream, rendition, bucket), msn)) WITH CLUSTERING ORDER BY (msn ASC) AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', 'compaction_window_size': '6'} AND default_time_to_live = 9000 AND gc_grace_seconds = 3600",
    "CREATE TABLE IF NOT EXISTS dvr.segment_chunks (stream text, rendition text, msn bigint, chunk int, size bigint, chunks int, chunk_size int, data blob, PRIMARY KEY ((stream, rendition, msn), chunk)) WITH CLUSTERING ORDER BY (chunk ASC) AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', 'compaction_window_size': '6'} AND default_time_to_live = 9000 AND gc_grace_seconds = 3600",
];

#[test]
fn project_schema_and_prepared_metadata() {
    let mut db = Db::new();
    for s in PROJECT_SCHEMA {
        db.ok(s);
        db.ok(s); // idempotent
    }
    let env = Env { keyspace: None, local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), me: &db.me };
    let p = parse("INSERT INTO dvr.segment_index (stream, rendition, bucket, msn, duration_us, pdt, discontinuity, disc_seq, init_msn, size, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").unwrap();
    let info = prepare_info(&db.store, &env, &p).unwrap();
    assert_eq!(info.pk_indexes, vec![0, 1, 2]);
    assert_eq!(info.bind.columns.len(), 11);
    assert_eq!(info.bind.columns[6], ColSpec { name: "discontinuity".into(), typ: CqlType::Boolean });
    assert_eq!(info.result, None);
    let p = parse("SELECT msn, duration_us, pdt FROM dvr.segment_index WHERE rendition = ? AND stream = ? AND bucket = ? AND msn > ? ORDER BY msn DESC LIMIT ?").unwrap();
    let info = prepare_info(&db.store, &env, &p).unwrap();
    assert_eq!(info.pk_indexes, vec![1, 0, 2], "indexes follow partition key order");
    assert_eq!(info.bind.columns[4], ColSpec { name: "[limit]".into(), typ: CqlType::Int });
    let res = info.result.unwrap();
    assert_eq!(res.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["msn", "duration_us", "pdt"]);
    assert_eq!(res.columns[2].typ, CqlType::Timestamp);
    // Unknown columns fail at PREPARE already.
    let p = parse("SELECT nope FROM dvr.streams WHERE stream = ?").unwrap();
    assert_eq!(prepare_info(&db.store, &env, &p).unwrap_err().code, code::INVALID);
    // Options are stored and shown in system_schema.tables.
    let rows = db.rows("SELECT default_time_to_live, gc_grace_seconds, compaction FROM system_schema.tables WHERE keyspace_name = 'dvr' AND table_name = 'segment_index'");
    assert_eq!((as_i64(&rows[0][0]), as_i64(&rows[0][1])), (9000, 3600));
    let compaction = rows[0][2].clone().unwrap();
    assert!(std::str::from_utf8(&compaction)
        .unwrap()
        .contains("org.apache.cassandra.db.compaction.TimeWindowCompactionStrategy"));
    assert_eq!(db.store.keyspaces["dvr"].table_count(), 3);
}

#[test]
fn system_tables_describe_the_node_and_schema() {
    let mut db = Db::new();
    db.ok("CREATE TABLE t (p text, c bigint, v blob, PRIMARY KEY (p, c)) WITH CLUSTERING ORDER BY (c DESC)");
    let r = db.rows("SELECT key, rpc_address, data_center, tokens, release_version, partitioner FROM system.local WHERE key = 'local'");
    assert_eq!(r.len(), 1);
    assert_eq!(as_text(&r[0][0]), "local");
    assert_eq!(r[0][1].as_deref(), Some(&[127u8, 0, 0, 1][..]));
    assert_eq!(as_text(&r[0][2]), "datacenter1");
    assert_eq!(r[0][3], crate::types::enc_text_list(&["0"]));
    assert_eq!(as_text(&r[0][4]), "4.0.11");
    assert!(db.rows("SELECT * FROM system.peers").is_empty());
    assert_eq!(db.rows("SELECT * FROM system.local").len(), 1);
    let cols = db.rows("SELECT column_name, kind, position, clustering_order, type FROM system_schema.columns WHERE keyspace_name = 'ks' AND table_name = 't'");
    let got: Vec<(String, String, i64, String, String)> =
        cols.iter().map(|r| (as_text(&r[0]), as_text(&r[1]), as_i64(&r[2]), as_text(&r[3]), as_text(&r[4]))).collect();
    assert_eq!(
        got,
        vec![
            ("c".into(), "clustering".into(), 0, "desc".into(), "bigint".into()),
            ("p".into(), "partition_key".into(), 0, "none".into(), "text".into()),
            ("v".into(), "regular".into(), -1, "none".into(), "blob".into()),
        ]
    );
    let ks: Vec<String> =
        db.rows("SELECT keyspace_name FROM system_schema.keyspaces").iter().map(|r| as_text(&r[0])).collect();
    assert!(ks.contains(&"ks".to_string()) && ks.contains(&"system".to_string()));
    let v: Vec<String> = db
        .rows("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name IN ('ks', 'nope')")
        .iter()
        .map(|r| as_text(&r[0]))
        .collect();
    assert_eq!(v, vec!["ks"]);
    for t in ["views", "types", "functions", "aggregates", "indexes", "triggers", "dropped_columns"] {
        assert!(db.rows(&format!("SELECT * FROM system_schema.{t}")).is_empty(), "{t}");
    }
    // ScyllaDB-only tables do not exist: drivers detect Cassandra by this Invalid error.
    assert_eq!(db.err("SELECT keyspace_name, initial_tablets FROM system_schema.scylla_keyspaces").code, code::INVALID);
    // The schema version changes with every schema change.
    let v1 = db.rows("SELECT schema_version FROM system.local")[0][0].clone();
    db.ok("CREATE TABLE t2 (k int PRIMARY KEY)");
    assert_ne!(v1, db.rows("SELECT schema_version FROM system.local")[0][0]);
}

#[test]
fn count_in_and_text_batch() {
    let mut db = Db::new();
    db.seg_table("ASC");
    assert_eq!(as_i64(&db.rows("SELECT COUNT(*) FROM seg")[0][0]), 6);
    assert_eq!(as_i64(&db.rows("SELECT count(*) FROM seg WHERE s = 'x' AND b = 0 AND msn > 2")[0][0]), 3);
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'x' AND b IN (0, 1) AND msn >= 5").len(), 2);
    let list = Value::Set(Bytes::from(
        [&2i32.to_be_bytes()[..], &8i32.to_be_bytes(), &0i64.to_be_bytes(), &8i32.to_be_bytes(), &1i64.to_be_bytes()]
            .concat(),
    ));
    assert_eq!(db.rows_v("SELECT msn FROM seg WHERE s = 'x' AND b IN ?", &[list]).len(), 6);
    db.ok("BEGIN BATCH INSERT INTO seg (s, b, msn) VALUES ('y', 0, 1); INSERT INTO seg (s, b, msn) VALUES ('y', 0, 2); APPLY BATCH");
    assert_eq!(db.ints("SELECT msn FROM seg WHERE s = 'y' AND b = 0"), vec![1, 2]);
    // A failing statement leaves the whole batch unapplied.
    assert!(db.run("BEGIN BATCH INSERT INTO seg (s, b, msn) VALUES ('z', 0, 1); INSERT INTO seg (s, msn) VALUES ('z', 2); APPLY BATCH", &[]).is_err());
    assert!(db.rows("SELECT msn FROM seg WHERE s = 'z' AND b = 0").is_empty());
}

#[test]
fn use_sets_keyspace_and_unqualified_names_need_one() {
    let mut db = Db::new();
    assert_eq!(db.ok("USE ks"), Outcome::SetKeyspace("ks".into()));
    assert_eq!(db.ok("use \"system\""), Outcome::SetKeyspace("system".into()));
    let parsed = parse("SELECT * FROM t").unwrap();
    let env = Env { keyspace: None, local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), me: &db.me };
    let e = execute(&mut db.store, &env, &parsed, &[], &Params::default(), 0).unwrap_err();
    assert!(e.message.contains("No keyspace"), "{}", e.message);
}

#[test]
fn random_statements_never_panic() {
    // Token soup from CQL's vocabulary: every outcome must be Ok or a clean error.
    let words = [
        "SELECT",
        "INSERT",
        "INTO",
        "VALUES",
        "FROM",
        "WHERE",
        "AND",
        "ORDER",
        "BY",
        "LIMIT",
        "ALLOW",
        "FILTERING",
        "CREATE",
        "TABLE",
        "KEYSPACE",
        "IF",
        "NOT",
        "EXISTS",
        "DROP",
        "TRUNCATE",
        "USE",
        "PRIMARY",
        "KEY",
        "WITH",
        "CLUSTERING",
        "ASC",
        "DESC",
        "USING",
        "TTL",
        "TIMESTAMP",
        "IN",
        "COUNT",
        "(",
        ")",
        "*",
        ",",
        "=",
        "<",
        ">",
        "<=",
        ">=",
        "?",
        "'x'",
        "1",
        "-1",
        "0x00",
        "1.5",
        "{",
        "}",
        ":",
        "[",
        "]",
        ";",
        ".",
        "t",
        "ks",
        "seg",
        "s",
        "b",
        "msn",
        "v",
        "int",
        "text",
        "blob",
        "map",
        "<text,text>",
        "null",
        "true",
        "\"Q\"",
        "BEGIN",
        "BATCH",
        "APPLY",
        "frozen",
        "set",
        "list",
        "system",
        "local",
        "system_schema",
        "columns",
    ];
    let mut db = Db::new();
    db.seg_table("DESC");
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..20_000 {
        let mut q = String::new();
        let n = 1 + (x % 14) as usize;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            q.push_str(words[(x % words.len() as u64) as usize]);
            q.push(' ');
        }
        let markers = parse(&q).map(|p| p.markers).unwrap_or(0);
        let values: Vec<Value> = (0..markers).map(|i| if i % 3 == 0 { Value::Null } else { text("x") }).collect();
        let _ = db.run_p(&q, &values, &Params { page_size: Some(1 + (x % 3) as usize), ..Default::default() });
    }
    // And every real statement still works afterwards.
    assert!(!db.rows("SELECT * FROM system.local").is_empty());
}
