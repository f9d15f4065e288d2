//! Fills a keyspace for `scripts/bench`: full 2 h DVR windows (3,600 index rows of 2 s segments
//! spread over the last two hours) and one 2 MiB segment (the newest) per rendition, whose bytes
//! it also writes to a file so nginx can serve the same bytes from disk as the baseline.
//!
//! usage: bench_fill HOST:PORT KEYSPACE FILE [STREAMS]
//!
//! Without STREAMS: stream `bench`, rendition `hi`. With it: streams `soak00`... each with
//! renditions `r0`, `r1`, `r2` (27 streams x 3 renditions is the 2014 system's load).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{Container, IndexEntry, Rendition, SourcePos};
use hls_dvr_store::{BlobKind, Store, StoreConfig};

const SEGMENTS: i64 = 3600;
const SEGMENT_BYTES: usize = 2 * 1024 * 1024;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (addr, ks, file, streams) = match args.as_slice() {
        [_, addr, ks, file] => (addr, ks, file, None),
        [_, addr, ks, file, n] => (addr, ks, file, Some(n.parse::<usize>().expect("STREAMS is a number"))),
        _ => {
            eprintln!("usage: bench_fill HOST:PORT KEYSPACE FILE [STREAMS]");
            std::process::exit(2);
        }
    };
    let renditions: Vec<(String, String)> = match streams {
        None => vec![("bench".into(), "hi".into())],
        Some(n) => (0..n).flat_map(|s| (0..3).map(move |r| (format!("soak{s:02}"), format!("r{r}")))).collect(),
    };
    let mut cfg = StoreConfig::new(vec![addr.clone()], ks);
    cfg.write_timeout = Duration::from_secs(30);
    let store = Store::connect(&cfg).await.unwrap_or_else(|e| {
        eprintln!("bench_fill: {e}");
        std::process::exit(1);
    });
    let now = now_ms();
    let data: Bytes = (0..SEGMENT_BYTES).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>().into();
    for (stream, rendition) in &renditions {
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
                    key_frame: None,
                    thumbnail: false,
                };
                store.write_index(stream, rendition, &e).await
            }
        });
        let mut s = futures::stream::iter(writes).buffer_unordered(64);
        while let Some(r) = s.next().await {
            r.expect("index write");
        }
        store.write_blob(BlobKind::Segment, stream, rendition, SEGMENTS - 1, &data).await.expect("blob");
        let head = Rendition {
            name: rendition.clone(),
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
            media: hls_dvr_core::model::MediaType::Muxed,
            parts: None,
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        };
        store.write_head(stream, &head).await.expect("head");
    }
    std::fs::write(file, &data).expect("write baseline file");
    println!("filled {} renditions of {SEGMENTS} index rows and a {} byte segment", renditions.len(), data.len());
}
