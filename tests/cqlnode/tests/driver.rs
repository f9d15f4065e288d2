use hls_dvr_cqlnode::Node;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use std::time::{Duration, Instant};

async fn connect(node: &Node) -> Session {
    SessionBuilder::new().known_node(node.addr().to_string()).build().await.expect("session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_test_writer().try_init();
    let node = Node::spawn("127.0.0.1:0").unwrap();
    let t = Instant::now();
    let s = connect(&node).await;
    eprintln!("connected in {:?}", t.elapsed());
    s.query_unpaged("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", ()).await.unwrap();
    eprintln!("ks in {:?}", t.elapsed());
    s.query_unpaged("CREATE TABLE ks.t (k text, c int, v blob, PRIMARY KEY (k, c))", ()).await.unwrap();
    eprintln!("table in {:?}", t.elapsed());
    s.query_unpaged("INSERT INTO ks.t (k, c, v) VALUES ('a', 1, 0x01)", ()).await.unwrap();
    let r = s.query_unpaged("SELECT k, c, v FROM ks.t", ()).await.unwrap().into_rows_result().unwrap();
    let rows: Vec<(String, i32, Vec<u8>)> = r.rows().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows, vec![("a".to_string(), 1, vec![1u8])]);
    let _ = Duration::from_secs(1);
}
