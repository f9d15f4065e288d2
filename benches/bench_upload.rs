//! Driver of `scripts/bench-upload`: replays pre-generated HLS segments into many stream folders at
//! real-time pace, runs one `hls-dvr-upload` on them, and measures by polling the store how long
//! each segment takes from being listed on disk to having a readable index row.
//!
//! usage: bench_upload --src DIR --out DIR --uploader BIN --cassandra HOST:PORT --keyspace K
//!                     [--streams 27] [--seconds 60] [--backlog 10] [--probe-ms 5]
//!
//! `--src` holds a master playlist and its media playlists (what ffmpeg wrote once). Phase 1
//! (catch-up): `--backlog` segments per rendition are on disk before the uploader starts. Phase 2
//! (live): every stream lists one more segment per rendition every segment duration, the streams'
//! clocks staggered evenly.

#[path = "index_probe.rs"]
mod index_probe;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hls_dvr_store::{Store, StoreConfig};
use hls_dvr_upload::source::{self, Parsed};

struct Seg {
    bytes: Vec<u8>,
    duration_us: i64,
}

struct Rend {
    name: String,
    segs: Vec<Seg>,
}

type Key = (usize, usize, i64); // stream, rendition, msn

#[derive(Default)]
struct Log {
    /// When listed (monotonic, wall ms) and the segment's size.
    listed: HashMap<Key, (Instant, i64, usize)>,
    /// When the prober first read its index row, and the row's `added` (wall ms).
    readable: HashMap<Key, (Instant, i64)>,
}

fn arg(args: &[String], name: &str, default: Option<&str>) -> String {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).cloned().unwrap_or_else(|| panic!("{name} needs a value")),
        None => default.map(str::to_string).unwrap_or_else(|| panic!("{name} is required")),
    }
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn load_source(src: &Path) -> Vec<Rend> {
    let master = fs::read(src.join("master.m3u8")).expect("master.m3u8 in --src");
    let Ok(Parsed::Master(variants)) = source::parse(&master) else { panic!("bad master playlist") };
    variants
        .iter()
        .map(|(uri, _)| {
            let pl = src.join(uri);
            let Ok(Parsed::Media(m)) = source::parse(&fs::read(&pl).unwrap()) else { panic!("bad {uri}") };
            let segs = m
                .entries
                .iter()
                .map(|e| Seg {
                    bytes: fs::read(pl.parent().unwrap().join(&e.uri)).unwrap(),
                    duration_us: e.duration_us,
                })
                .collect();
            Rend { name: Path::new(uri).file_stem().unwrap().to_string_lossy().into_owned(), segs }
        })
        .collect()
}

/// One stream folder the replay writes.
struct Out {
    dir: PathBuf,
    /// Per rendition: listed (msn, uri, duration) window.
    lists: Vec<Vec<(i64, String, i64)>>,
}

/// Segments a replayed playlist lists (the backlog must fit: the store numbers from the first listed).
const WINDOW: usize = 12;

impl Out {
    /// Writes segment `n` of every rendition, then lists it (segmenters write, then list).
    fn publish(&mut self, rends: &[Rend], n: i64, target: i64, s: usize, log: &Mutex<Log>) {
        for (r, rend) in rends.iter().enumerate() {
            let seg = &rend.segs[n as usize % rend.segs.len()];
            let uri = format!("{}_{n}.ts", rend.name);
            fs::write(self.dir.join(&uri), &seg.bytes).unwrap();
            let l = &mut self.lists[r];
            l.push((n, uri, seg.duration_us));
            if l.len() > WINDOW {
                l.remove(0);
            }
            let mut text = format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
                l[0].0
            );
            for (_, u, d) in l.iter() {
                text.push_str(&format!("#EXTINF:{}.{:06},\n{u}\n", d / 1_000_000, d % 1_000_000));
            }
            let tmp = self.dir.join(format!("{}.m3u8.tmp", rend.name));
            fs::write(&tmp, text).unwrap();
            fs::rename(&tmp, self.dir.join(format!("{}.m3u8", rend.name))).unwrap();
            log.lock().unwrap().listed.insert((s, r, n), (Instant::now(), wall_ms(), seg.bytes.len()));
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let src = PathBuf::from(arg(&args, "--src", None));
    let out = PathBuf::from(arg(&args, "--out", None));
    let uploader = arg(&args, "--uploader", None);
    let nodes = arg(&args, "--cassandra", None);
    let ks = arg(&args, "--keyspace", None);
    let streams: usize = arg(&args, "--streams", Some("27")).parse().unwrap();
    let seconds: u64 = arg(&args, "--seconds", Some("60")).parse().unwrap();
    let backlog: i64 = arg(&args, "--backlog", Some("10")).parse().unwrap();
    assert!(backlog as usize <= WINDOW, "--backlog at most {WINDOW}");
    let probe = Duration::from_millis(arg(&args, "--probe-ms", Some("5")).parse().unwrap());

    let rends = Arc::new(load_source(&src));
    let seg_us = rends[0].segs.iter().map(|s| s.duration_us).sum::<i64>() / rends[0].segs.len() as i64;
    let target = rends.iter().flat_map(|r| &r.segs).map(|s| (s.duration_us + 999_999) / 1_000_000).max().unwrap();
    let nrend = rends.len();
    eprintln!(
        "bench: {streams} streams x {nrend} renditions, {} source segments of ~{:.2} s, backlog {backlog}, live {seconds} s",
        rends[0].segs.len(),
        seg_us as f64 / 1e6
    );
    let _ = fs::remove_dir_all(&out);
    let log = Arc::new(Mutex::new(Log::default()));
    let mut outs: Vec<Out> = (0..streams)
        .map(|s| {
            let dir = out.join(format!("s{s:02}"));
            fs::create_dir_all(&dir).unwrap();
            fs::copy(src.join("master.m3u8"), dir.join("master.m3u8")).unwrap();
            Out { dir, lists: vec![Vec::new(); nrend] }
        })
        .collect();

    // Phase 1: a backlog on disk before the uploader starts.
    for (s, o) in outs.iter_mut().enumerate() {
        for n in 0..backlog {
            o.publish(&rends, n, target, s, &log);
        }
    }
    let mut cmd = Command::new(&uploader);
    cmd.args(["--cassandra", &nodes, "--keyspace", &ks, "--write-consistency", "ONE"]);
    for o in &outs {
        cmd.arg("--stream").arg(o.dir.file_name().unwrap()).arg(&o.dir);
    }
    let up_log = out.join("uploader.log");
    let mut up = cmd
        .env("RUST_LOG", "warn,hls_dvr_store::latency=info")
        .stdin(Stdio::null())
        .stderr(fs::File::create(&up_log).unwrap())
        .spawn()
        .expect("start uploader");
    let up_started = Instant::now();
    let up_started_ms = wall_ms();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store =
        Arc::new(rt.block_on(Store::connect(&StoreConfig::new(vec![nodes.clone()], &ks))).expect("connect prober"));

    // The prober: every `probe`, the index rows after the last one seen of each rendition with a
    // listed segment not seen yet (so a short period costs little: few are pending at a time).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (store, log, stop, rends) = (store.clone(), log.clone(), stop.clone(), rends.clone());
        rt.spawn(async move {
            let names: Vec<String> = rends.iter().map(|r| r.name.clone()).collect();
            let mut last = HashMap::new();
            let mut tick = tokio::time::interval(probe);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let waiting: Vec<_> = {
                    let l = log.lock().unwrap();
                    l.listed.keys().filter(|k| !l.readable.contains_key(*k)).map(|k| (k.0, k.1)).collect()
                };
                let rows = index_probe::new_rows(&store, &names, waiting, &mut last).await;
                let mut l = log.lock().unwrap();
                for ((s, r), e, at) in rows {
                    l.readable.entry((s, r, e.msn)).or_insert((at, e.added_ms));
                }
            }
        })
    };

    // Wait for the backlog: the catch-up throughput.
    let backlog_total = streams * nrend * backlog as usize;
    let backlog_bytes: usize = {
        let l = log.lock().unwrap();
        l.listed.values().map(|v| v.2).sum()
    };
    let t = Instant::now();
    loop {
        let n = log.lock().unwrap().readable.len();
        if n >= backlog_total {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            eprintln!("bench: backlog not stored after 60 s ({n} of {backlog_total}); see {}", up_log.display());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let catchup = up_started.elapsed();

    // Phase 2: live, staggered.
    let live_start = Instant::now();
    let period = Duration::from_micros(seg_us as u64);
    let mut next: Vec<(Instant, i64)> =
        (0..streams).map(|s| (live_start + period.mul_f64(s as f64 / streams as f64), backlog)).collect();
    let end = live_start + Duration::from_secs(seconds);
    loop {
        let (s, &(at, n)) = next.iter().enumerate().min_by_key(|(_, v)| v.0).unwrap();
        if at >= end {
            break;
        }
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        outs[s].publish(&rends, n, target, s, &log);
        next[s] = (at + period, n + 1);
    }
    let live_elapsed = live_start.elapsed();
    // Drain.
    let total = log.lock().unwrap().listed.len();
    let t = Instant::now();
    while log.lock().unwrap().readable.len() < total && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = rt.block_on(prober);
    let _ = Command::new("kill").arg("-TERM").arg(up.id().to_string()).status();
    let st = up.wait().unwrap();

    let l = log.lock().unwrap();
    let mut live_delay = Vec::new();
    let mut added_delay = Vec::new();
    let mut live_bytes = 0usize;
    let mut live_segs = 0usize;
    let mut missing = 0usize;
    for (k, (at, at_ms, size)) in &l.listed {
        if k.2 < backlog {
            continue;
        }
        live_segs += 1;
        live_bytes += size;
        match l.readable.get(k) {
            Some((r, added)) => {
                live_delay.push(r.saturating_duration_since(*at).as_secs_f64() * 1000.0);
                added_delay.push((added - at_ms) as f64);
            }
            None => missing += 1,
        }
    }
    let backlog_added_last = l.readable.iter().filter(|(k, _)| k.2 < backlog).map(|(_, v)| v.1).max().unwrap_or(0);
    let backlog_missing = (0..streams)
        .flat_map(|s| (0..nrend).flat_map(move |r| (0..backlog).map(move |n| (s, r, n))))
        .filter(|k| !l.readable.contains_key(k))
        .count();
    let mb = |b: usize| b as f64 / 1e6;
    println!("uploader: {} streams, {} renditions; {st}", streams, streams * nrend);
    println!(
        "catch-up: {backlog_total} backlog segments ({:.1} MB) readable {:.2} s after the uploader started: {:.0} segments/s, {:.1} MB/s{}",
        mb(backlog_bytes),
        catchup.as_secs_f64(),
        backlog_total as f64 / catchup.as_secs_f64(),
        mb(backlog_bytes) / catchup.as_secs_f64(),
        if backlog_missing > 0 { format!(" ({backlog_missing} MISSING)") } else { String::new() }
    );
    println!(
        "catch-up cross-check: the last backlog index row was written {} ms after the uploader started",
        backlog_added_last - up_started_ms
    );
    println!(
        "live: {live_segs} segments ({:.1} MB) in {:.1} s: {:.1} segments/s, {:.2} MB/s; {missing} not readable at the end",
        mb(live_bytes),
        live_elapsed.as_secs_f64(),
        live_segs as f64 / live_elapsed.as_secs_f64(),
        mb(live_bytes) / live_elapsed.as_secs_f64()
    );
    let n = live_delay.len();
    let (p50, p90, p99, max) = (
        pct(&mut live_delay, 0.5),
        pct(&mut live_delay, 0.9),
        pct(&mut live_delay, 0.99),
        live_delay.iter().cloned().fold(f64::NAN, f64::max),
    );
    println!(
        "live delay, listed on disk -> index row readable ({n} segments, store polled every {} ms): \
         p50 {p50:.0} ms, p90 {p90:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        probe.as_millis()
    );
    println!("ingest p50_ms {p50:.0} p99_ms {p99:.0}");
    println!(
        "live delay, listed on disk -> uploader starts the index write (row's added): p50 {:.0} ms, p99 {:.0} ms",
        pct(&mut added_delay, 0.5),
        pct(&mut added_delay, 0.99)
    );
    // Baseline, same run: the same backlog written straight through the store layer (blob, then
    // index row), as many at a time as the uploader's default --max-concurrent (16).
    let direct = {
        use futures::StreamExt;
        use hls_dvr_core::model::IndexEntry;
        use hls_dvr_store::BlobKind;
        let jobs: Vec<(usize, usize, i64)> =
            (0..streams).flat_map(|s| (0..nrend).flat_map(move |r| (0..backlog).map(move |n| (s, r, n)))).collect();
        let t = Instant::now();
        rt.block_on(
            futures::stream::iter(jobs.into_iter().map(|(s, r, n)| {
                let (store, rends) = (store.clone(), rends.clone());
                async move {
                    let seg = &rends[r].segs[n as usize % rends[r].segs.len()];
                    let bytes = bytes::Bytes::copy_from_slice(&seg.bytes);
                    let stream = format!("direct{s:02}");
                    store.write_blob(BlobKind::Segment, &stream, &rends[r].name, n, &bytes).await.expect("direct blob");
                    let now = wall_ms();
                    let e = IndexEntry {
                        msn: n,
                        duration_us: seg.duration_us,
                        pdt_ms: now,
                        discontinuity: false,
                        disc_seq: 0,
                        init_msn: None,
                        size: bytes.len() as i64,
                        added_ms: now,
                        key_frame: None,
                        thumbnail: false,
                    };
                    store.write_index(&stream, &rends[r].name, &e).await.expect("direct index");
                }
            }))
            .buffer_unordered(16)
            .collect::<Vec<()>>(),
        );
        t.elapsed()
    };
    println!(
        "baseline: the same {backlog_total} segments written directly through the store layer, 16 at a time: \
         {:.2} s, {:.0} segments/s, {:.1} MB/s",
        direct.as_secs_f64(),
        backlog_total as f64 / direct.as_secs_f64(),
        mb(backlog_bytes) / direct.as_secs_f64()
    );
    println!(
        "catch-up / baseline throughput: {:.2} (the uploader adds file reads, playlist parsing and head rows)",
        direct.as_secs_f64() / catchup.as_secs_f64()
    );
    let uploader_writes = fs::read_to_string(&up_log)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.split_once("store writes: ").map(|(_, s)| s.to_string()))
        .unwrap_or_else(|| "not logged".into());
    println!("store writes as the uploader saw them (seed target on 4 nodes: p99 write 30 ms): {uploader_writes}");
    println!("store writes of the direct baseline: {}", store.latencies().summary(&hls_dvr_store::Op::WRITES));
    if missing > 0 || backlog_missing > 0 || !st.success() {
        std::process::exit(1);
    }
}
