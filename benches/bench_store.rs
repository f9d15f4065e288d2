//! Driver of the cold-segment part of `scripts/bench`: what the store alone delivers on this
//! machine, the limit beside which the module's figure for segments from the store (no cache) is read.
//!
//! usage: bench_store HOST:PORT KEYSPACE CONNECTIONS SECONDS
//!
//! A plain client of the store layer reads the 2 MiB segment `bench/hi/3599` written by `bench_fill`
//! whole, over and over, as the module does for each request: chunk 0 (it says how many there are),
//! then the others one after the other, as the module's pump asks for each once the one before is
//! sent. CONNECTIONS loops read concurrently for SECONDS seconds on 2 worker threads, as `wrk -t2`
//! loads nginx. Prints a human line and `store segments_per_s N` (whole segments per second).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hls_dvr_store::{parse_nodes, BlobKind, Store, StoreConfig};

const STREAM: &str = "bench";
const RENDITION: &str = "hi";
const MSN: i64 = 3599;
const SEGMENT_BYTES: u64 = 2 * 1024 * 1024;
/// The module's default `hls_dvr_speculative_retry`, which the benchmark's nginx runs with.
const SPECULATIVE_RETRY: Duration = Duration::from_millis(100);

/// One whole segment, each chunk awaited before the next is asked for.
async fn read_segment(store: &Store) -> Result<(), String> {
    let kind = BlobKind::Segment;
    let (meta, first) = store
        .blob_first(kind, STREAM, RENDITION, MSN)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{STREAM}/{RENDITION}/{MSN} is not stored (did bench_fill fill this keyspace?)"))?;
    let mut bytes = first.len() as u64;
    for i in 1..meta.chunks {
        let chunk = store.blob_chunk(kind, STREAM, RENDITION, MSN, &meta, i).await.map_err(|e| e.to_string())?;
        bytes += chunk.len() as u64;
    }
    if bytes != SEGMENT_BYTES {
        return Err(format!("read {bytes} bytes of {STREAM}/{RENDITION}/{MSN}, not {SEGMENT_BYTES}"));
    }
    Ok(())
}

fn fail(m: impl std::fmt::Display) -> ! {
    eprintln!("bench_store: {m}");
    std::process::exit(1);
}

// Two worker threads, as wrk's -t2: the client takes no more of the 2 cores than wrk does.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, addr, ks, c, s] => match (parse_nodes(addr), c.parse::<usize>(), s.parse::<u64>()) {
            (Ok(nodes), Ok(c), Ok(s)) if c > 0 && s > 0 => Some((nodes, ks, c, s)),
            _ => None,
        },
        _ => None,
    };
    let Some((nodes, ks, connections, seconds)) = parsed else {
        eprintln!("usage: bench_store HOST:PORT KEYSPACE CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let mut cfg = StoreConfig::new(nodes, ks);
    cfg.speculative_retry = Some(SPECULATIVE_RETRY);
    let store = match Store::connect(&cfg).await {
        Ok(s) => Arc::new(s),
        Err(e) => fail(e),
    };
    // Once before the clock starts: a keyspace without the segment fails here, not as errors.
    if let Err(e) = read_segment(&store).await {
        fail(e);
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let loops: Vec<_> = (0..connections)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let (mut took, mut errors, mut first_error) = (Vec::new(), 0u64, None);
                loop {
                    let start = Instant::now();
                    if start >= deadline {
                        break;
                    }
                    // A read unfinished at the deadline is not counted, as wrk drops its unfinished requests.
                    match tokio::time::timeout_at(deadline.into(), read_segment(&store)).await {
                        Err(_) => break,
                        Ok(Ok(())) => took.push(start.elapsed()),
                        Ok(Err(e)) => {
                            errors += 1;
                            first_error = first_error.or(Some(e));
                        }
                    }
                }
                (took, errors, first_error)
            })
        })
        .collect();
    let (mut took, mut errors, mut first_error) = (Vec::<Duration>::new(), 0u64, None);
    for l in loops {
        let (t, e, f) = l.await.expect("a read loop panicked");
        took.extend(t);
        errors += e;
        first_error = first_error.or(f);
    }
    if let Some(e) = &first_error {
        eprintln!("bench_store: {errors} reads failed, the first: {e}");
    }
    let n = took.len();
    if n == 0 {
        fail(format!("no segment read in {seconds} s"));
    }
    took.sort_unstable();
    let ms = |q: f64| took[((n as f64 * q).ceil() as usize).clamp(1, n) - 1].as_secs_f64() * 1e3;
    let rate = n as f64 / seconds as f64;
    println!(
        "store client, {connections} loops for {seconds} s: {n} segments of 2 MiB, {errors} errors, {:.1} MB/s, \
         p50 {:.2} ms, p99 {:.2} ms",
        rate * SEGMENT_BYTES as f64 / (1024.0 * 1024.0),
        ms(0.50),
        ms(0.99)
    );
    println!("store segments_per_s {rate:.2}");
}
