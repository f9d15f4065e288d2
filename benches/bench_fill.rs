//! Fills a keyspace for `scripts/bench`: a full 2 h DVR window (3,600 index rows of 2 s segments
//! spread over the last two hours) and one 2 MiB segment, whose bytes it also writes to a file so
//! nginx can serve the same bytes from disk as the baseline.
//!
//! usage: bench_fill HOST:PORT KEYSPACE FILE

use std::time::Duration;

use bytes::Bytes;
use hls_dvr::clock::now_ms;
use hls_dvr::store::{BlobKind, Container, IndexEntry, Rendition, SourcePos, Store, StoreConfig};

const SEGMENTS: i64 = 3600;
const SEGMENT_BYTES: usize = 2 * 1024 * 1024;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, ks, file] = args.as_slice() else {
        eprintln!("usage: bench_fill HOST:PORT KEYSPACE FILE");
        std::process::exit(2);
    };
    let mut cfg = StoreConfig::new(vec![addr.clone()], ks);
    cfg.write_timeout = Duration::from_secs(30);
    let store = Store::connect(&cfg).await.unwrap_or_else(|e| {
        eprintln!("bench_fill: {e}");
        std::process::exit(1);
    });
    let now = now_ms();
    let writes = (0..SEGMENTS).map(|msn| {
        let store = &store;
        async move {
            let at = now - (SEGMENTS - msn) * 2000;
            let e = IndexEntry {
                msn,
                duration_us: 2_000_000,
                pdt_ms: at,
                discontinuity: false,
                disc_seq: 0,
                init_msn: None,
                size: SEGMENT_BYTES as i64,
                added_ms: at,
            };
            store.write_index("bench", "hi", &e).await
        }
    });
    use futures::StreamExt;
    let mut s = futures::stream::iter(writes).buffer_unordered(64);
    while let Some(r) = s.next().await {
        r.expect("index write");
    }
    let data: Bytes = (0..SEGMENT_BYTES).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>().into();
    store.write_blob(BlobKind::Segment, "bench", "hi", SEGMENTS - 1, &data).await.expect("blob");
    let head = Rendition {
        name: "hi".into(),
        container: Container::Ts,
        target_duration: 2,
        bandwidth: Some(8_000_000),
        codecs: None,
        resolution: None,
        frame_rate: None,
        head_msn: SEGMENTS - 1,
        head_disc_seq: 0,
        head_pdt_ms: now,
        source: SourcePos::default(),
        updated_ms: now,
        ended: false,
    };
    store.write_head("bench", &head).await.expect("head");
    std::fs::write(file, &data).expect("write baseline file");
    println!("filled {SEGMENTS} index rows and a {} byte segment", data.len());
}
