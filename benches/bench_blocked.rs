//! Driver of the blocking parts of `scripts/bench`: how much a blocked request costs an nginx
//! worker, and how fast all of them are answered once what they wait for is stored.
//!
//! usage: bench_blocked HOST:PORT WORKER_PID CASSANDRA KEYSPACE COUNT [segment|part]
//!
//! `segment` (the default): stores a rendition `bench/blocked` (10 s target duration, so requests
//! may wait 30 s), opens COUNT connections to nginx at HOST:PORT and measures the worker's RSS
//! with them idle (the baseline), then with each asking for the next segment (`_HLS_msn`), then
//! stores that segment and times every answer from the moment its head row is written.
//! `part`: the same with a low-latency rendition `bench/blocked_ll` (5 s part target, so
//! requests may wait 15 s), each request asking for the part its playlist hints next, timed
//! from the moment the newest part moves to it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{Container, IndexEntry, Part, PartHead, PartPos, Rendition, SourcePos};
use hls_dvr_store::{BlobKind, Store, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TARGET_DURATION: i32 = 10;
/// The part target of the low-latency rendition, in microseconds: long, so requests wait.
const PART_TARGET_US: i64 = 5_000_000;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the worker's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Segment `msn` of `rendition` (`blocked`, or `blocked_ll` with parts).
async fn store_segment(store: &Store, rendition: &str, msn: i64, t0: i64) {
    let data = Bytes::from(vec![0x47u8; 188 * 10]);
    store.write_blob(BlobKind::Segment, "bench", rendition, msn, &data).await.expect("blob");
    let at = t0 + msn * 10_000;
    let e = IndexEntry {
        msn,
        duration_us: 10_000_000,
        pdt_ms: at,
        discontinuity: false,
        disc_seq: 0,
        init_msn: None,
        size: data.len() as i64,
        added_ms: now_ms(),
        key_frame: None,
        thumbnail: false,
    };
    store.write_index("bench", rendition, &e).await.expect("index");
    let ll = rendition != "blocked";
    let head = Rendition {
        name: rendition.into(),
        container: if ll { Container::Fmp4 } else { Container::Ts },
        target_duration: TARGET_DURATION,
        bandwidth: Some(100_000),
        codecs: None,
        resolution: None,
        frame_rate: None,
        head_msn: msn,
        head_disc_seq: 0,
        head_pdt_ms: at,
        source: SourcePos::default(),
        updated_ms: now_ms(),
        ended: false,
        media: hls_dvr_core::model::MediaType::Muxed,
        parts: ll.then_some(PartHead { target_us: PART_TARGET_US, newest: None }),
        grouping: Default::default(),
        key_frames: false,
        thumbnails: None,
    };
    store.write_head("bench", &head).await.expect("head");
}

/// Part 0 of segment `msn` of `bench/blocked_ll`: its chunk, its row, then the newest part.
async fn store_part(store: &Store, msn: i64, data: &Bytes) {
    store.write_arriving_chunk("bench", "blocked_ll", msn, 0, data).await.expect("chunk");
    let part = Part {
        msn,
        index: 0,
        duration_us: 500_000,
        independent: true,
        discontinuity: false,
        first_chunk: 0,
        sizes: vec![data.len() as u64],
    };
    store.write_part("bench", "blocked_ll", &part).await.expect("part");
    store.set_part_head("bench", "blocked_ll", PartPos { msn, part: 0 }).await.expect("newest part");
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (nginx, pid, cassandra, ks, count, parts) = match args.as_slice() {
        [_, n, p, c, k, count] => (n, p, c, k, count, false),
        [_, n, p, c, k, count, kind] if kind == "segment" || kind == "part" => (n, p, c, k, count, kind == "part"),
        _ => {
            eprintln!("usage: bench_blocked HOST:PORT WORKER_PID CASSANDRA KEYSPACE COUNT [segment|part]");
            std::process::exit(2);
        }
    };
    let rendition = if parts { "blocked_ll" } else { "blocked" };
    let what = if parts { "blocked part requests" } else { "blocked reloads" };
    let pid: u32 = pid.parse().expect("pid");
    let count: usize = count.parse().expect("count");
    let store = Store::connect(&StoreConfig::new(vec![cassandra.clone()], ks)).await.expect("store");
    let t0 = now_ms() - 60_000;
    for msn in 0..5 {
        store_segment(&store, rendition, msn, t0).await;
    }
    let path = format!("/live/bench/{rendition}/index.m3u8");
    let ready = get_head(nginx, &path).await;
    assert!(ready.starts_with("HTTP/1.1 200"), "the rendition is not served: {ready}");

    let before = rss_kb(pid);
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        conns.push(TcpStream::connect(nginx.as_str()).await.expect("connect (raise ulimit -n?)"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kb(pid);

    // The part a playlist of the rendition hints next: 5.0.m4s.
    let asked = if parts { format!("/live/bench/{rendition}/5.0.m4s") } else { format!("{path}?_HLS_msn=5") };
    let request = format!("GET {asked} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    let part = Bytes::from(vec![0x5au8; 64 * 1024]);
    for c in &mut conns {
        c.write_all(request.as_bytes()).await.expect("send");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let blocked = rss_kb(pid);
    let waiting = conns.len();

    let answers: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let _ = c.read_to_end(&mut buf).await;
                let good = buf.starts_with(b"HTTP/1.1 200")
                    && if parts { buf.ends_with(&[0x5a; 1024]) } else { buf.windows(5).any(|w| w == b"\n5.ts") };
                (Instant::now(), good)
            })
        })
        .collect();
    if parts {
        store_part(&store, 5, &part).await;
    } else {
        store_segment(&store, rendition, 5, t0).await;
    }
    let stored = Instant::now();
    let mut ms = Vec::with_capacity(count);
    let mut ok = 0;
    for a in answers {
        let (at, good) = a.await.expect("reader");
        ms.push(at.saturating_duration_since(stored).as_secs_f64() * 1000.0);
        ok += usize::from(good);
    }
    ms.sort_by(f64::total_cmp);
    let kb = |k: u64| k as f64 / 1024.0;
    println!(
        "{what}: {waiting} requests held by one worker: RSS {:.1} MB before, {:.1} MB with {count} idle \
         connections (baseline), {:.1} MB with them blocked: {:.2} KB per blocked request beyond an idle connection",
        kb(before),
        kb(idle),
        kb(blocked),
        (blocked as f64 - idle as f64) / count as f64
    );
    println!(
        "{what}: {ok} of {count} answered 200 with what they waited for; after it was stored: p50 {:.0} ms, \
         p99 {:.0} ms, max {:.0} ms",
        pct(&ms, 0.5),
        pct(&ms, 0.99),
        ms.last().copied().unwrap_or(0.0)
    );
    if ok != count {
        std::process::exit(1);
    }
}

/// One GET on a fresh connection; the head of the answer.
async fn get_head(addr: &str, path: &str) -> String {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let path: &str = path;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf[..buf.len().min(200)]).into_owned()
}
