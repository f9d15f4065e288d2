//! Driver of `scripts/bench-upload --push`: pushes pre-encoded CMAF into a receiver
//! (`hls-dvr-upload --listen`) as live encoders do (one chunked PUT per segment, each fragment
//! sent at its real-time moment), for many streams at once, and measures by polling the store
//! how long each segment takes from its last byte sent to a readable index row; samples the
//! receiver's CPU and memory; and, as the same run's baseline, times the same segments written
//! straight through the store layer.
//!
//! usage: bench_push --src DIR --receiver BIN --cassandra HOST:PORT --keyspace K
//!                   [--streams 27] [--seconds 600] [--probe-ms 5]
//!
//! `--src` holds what ffmpeg's dash muxer wrote once: `init-streamR.m4s` and
//! `chunk-streamR-NNNNN.m4s` per rendition R.

#[path = "index_probe.rs"]
mod index_probe;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hls_dvr_core::clock::now_ms;
use hls_dvr_store::{Store, StoreConfig};
use hls_dvr_upload::push::boxes::{parse_init, Splitter};

/// One source segment: its bytes cut into fragments, each with its start in the segment (s).
struct Seg {
    fragments: Vec<(Vec<u8>, f64)>,
    duration_s: f64,
}

struct Rend {
    name: String,
    init: Vec<u8>,
    segs: Vec<Seg>,
}

type Key = (usize, usize, i64); // stream, rendition, segment number (msn)

#[derive(Default)]
struct Log {
    /// When the segment's last byte was sent, and its size.
    sent: HashMap<Key, (Instant, usize)>,
    readable: HashMap<Key, Instant>,
}

fn arg(args: &[String], name: &str, default: Option<&str>) -> String {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).cloned().unwrap_or_else(|| panic!("{name} needs a value")),
        None => default.map(str::to_string).unwrap_or_else(|| panic!("{name} is required")),
    }
}

fn load(src: &Path) -> Vec<Rend> {
    let mut out = Vec::new();
    for r in 0.. {
        let Ok(init) = fs::read(src.join(format!("init-stream{r}.m4s"))) else { break };
        let info = parse_init(&init).expect("an init segment");
        let mut segs = Vec::new();
        for n in 1.. {
            let Ok(bytes) = fs::read(src.join(format!("chunk-stream{r}-{n:05}.m4s"))) else { break };
            let mut split = Splitter::new(info.default_sample_duration);
            let frags = split.push(&bytes).expect("CMAF fragments");
            let (mut at, mut fragments) = (0.0, Vec::new());
            for f in &frags {
                fragments.push((bytes[f.start as usize..f.end as usize].to_vec(), at));
                at += f.duration as f64 / info.timescale as f64;
            }
            segs.push(Seg { fragments, duration_s: at });
        }
        assert!(!segs.is_empty(), "no segments for stream{r} in {}", src.display());
        out.push(Rend { name: format!("stream{r}"), init, segs });
    }
    assert!(!out.is_empty(), "no init-stream0.m4s in {}", src.display());
    out
}

/// The status of one answer read from `c`.
fn status(c: &mut TcpStream) -> u16 {
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return 0,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    // Answers carry a short body (Content-Length): read it so the connection stays usable.
    let text = String::from_utf8_lossy(&got).into_owned();
    let len: usize = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let body_have = got.len() - (text.find("\r\n\r\n").unwrap() + 4);
    let mut rest = vec![0u8; len.saturating_sub(body_have)];
    let _ = c.read_exact(&mut rest);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// One encoder's track: the init segment, then segment after segment, fragments at their time.
#[allow(clippy::too_many_arguments)]
fn encoder(
    port: u16,
    s: usize,
    r: usize,
    rend: &Rend,
    start: Instant,
    end: Instant,
    log: &Mutex<Log>,
    sent: &AtomicU64,
) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to the receiver");
    c.set_nodelay(true).unwrap();
    let path = |name: &str| format!("/ingest/s{s:02}/{name}");
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        path(&format!("init-{}.m4s", rend.name)),
        rend.init.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&rend.init).unwrap();
    assert_eq!(status(&mut c), 201, "init segment refused");
    let mut at = start;
    for n in 0i64.. {
        let seg = &rend.segs[n as usize % rend.segs.len()];
        if at >= end {
            break;
        }
        let name = format!("chunk-{}-{:05}.m4s", rend.name, n + 1);
        let head = format!("PUT {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", path(&name));
        c.write_all(head.as_bytes()).unwrap();
        let mut size = 0;
        for (bytes, offset) in &seg.fragments {
            // A fragment is sent when it would be complete at the encoder.
            let due = at + Duration::from_secs_f64(offset + 0.5);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            c.write_all(format!("{:x}\r\n", bytes.len()).as_bytes()).unwrap();
            c.write_all(bytes).unwrap();
            c.write_all(b"\r\n").unwrap();
            size += bytes.len();
        }
        c.write_all(b"0\r\n\r\n").unwrap();
        log.lock().unwrap().sent.insert((s, r, n), (Instant::now(), size));
        sent.fetch_add(size as u64, Relaxed);
        assert_eq!(status(&mut c), 201, "segment {name} of s{s:02} refused");
        at += Duration::from_secs_f64(seg.duration_s);
    }
}

/// (user + system CPU seconds, resident kB) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |x| x.1).split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let rss = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()))
        .unwrap_or(0);
    (ticks / 100.0, rss)
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
    let receiver = arg(&args, "--receiver", None);
    let nodes = arg(&args, "--cassandra", None);
    let ks = arg(&args, "--keyspace", None);
    let streams: usize = arg(&args, "--streams", Some("27")).parse().unwrap();
    let seconds: u64 = arg(&args, "--seconds", Some("600")).parse().unwrap();
    let probe = Duration::from_millis(arg(&args, "--probe-ms", Some("5")).parse().unwrap());
    let out = PathBuf::from(arg(&args, "--out", None));
    fs::create_dir_all(&out).unwrap();

    let rends = Arc::new(load(&src));
    let nrend = rends.len();
    eprintln!(
        "bench: pushing {streams} streams x {nrend} renditions of CMAF ({} segments of ~{:.2} s, {} fragments each) for {seconds} s",
        rends[0].segs.len(),
        rends[0].segs[0].duration_s,
        rends[0].segs[0].fragments.len()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let up_log = out.join("receiver.log");
    let mut up = Command::new(&receiver)
        .args(["--cassandra", &nodes, "--keyspace", &ks, "--write-consistency", "ONE"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn,hls_dvr_store::latency=info")
        .stdin(Stdio::null())
        .stderr(fs::File::create(&up_log).unwrap())
        .spawn()
        .expect("start the receiver");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "the receiver did not listen; see {}", up_log.display());
        std::thread::sleep(Duration::from_millis(50));
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store =
        Arc::new(rt.block_on(Store::connect(&StoreConfig::new(vec![nodes.clone()], &ks))).expect("connect prober"));
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    // The prober: every `probe`, the index rows past the last seen of each rendition with a sent
    // segment not readable yet.
    let prober = {
        let (store, log, stop, rends) = (store.clone(), log.clone(), stop.clone(), rends.clone());
        rt.spawn(async move {
            let names: Vec<String> = rends.iter().map(|r| r.name.clone()).collect();
            let mut last = HashMap::new();
            let mut tick = tokio::time::interval(probe);
            while !stop.load(Relaxed) {
                tick.tick().await;
                let waiting: Vec<_> = {
                    let l = log.lock().unwrap();
                    l.sent.keys().filter(|k| !l.readable.contains_key(*k)).map(|k| (k.0, k.1)).collect()
                };
                let rows = index_probe::new_rows(&store, &names, waiting, &mut last).await;
                let mut l = log.lock().unwrap();
                for ((s, r), e, at) in rows {
                    l.readable.entry((s, r, e.msn)).or_insert(at);
                }
            }
        })
    };

    // The receiver's CPU and memory, sampled every 5 s.
    let pid = up.id();
    let samples = Arc::new(Mutex::new(Vec::<(f64, f64, u64)>::new())); // (s since start, cpu s, rss kB)
    let start = Instant::now();
    let sampler = {
        let (samples, stop) = (samples.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                let (cpu, rss) = usage(pid);
                samples.lock().unwrap().push((start.elapsed().as_secs_f64(), cpu, rss));
                std::thread::sleep(Duration::from_secs(5));
            }
        })
    };
    let sent = Arc::new(AtomicU64::new(0));
    let end = start + Duration::from_secs(seconds);
    let encoders: Vec<_> = (0..streams)
        .flat_map(|s| (0..nrend).map(move |r| (s, r)))
        .map(|(s, r)| {
            let (rends, log, sent) = (rends.clone(), log.clone(), sent.clone());
            // Streams staggered over a segment, as independent encoders are.
            let at = start + Duration::from_secs_f64(rends[r].segs[0].duration_s * s as f64 / streams as f64);
            std::thread::spawn(move || encoder(port, s, r, &rends[r], at, end, &log, &sent))
        })
        .collect();
    for e in encoders {
        e.join().expect("an encoder failed");
    }
    let wall = start.elapsed().as_secs_f64();
    let (cpu_end, _) = usage(pid);
    let total = log.lock().unwrap().sent.len();
    let t = Instant::now();
    while log.lock().unwrap().readable.len() < total && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Relaxed);
    let _ = rt.block_on(prober);
    let _ = sampler.join();
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let st = up.wait().unwrap();

    let l = log.lock().unwrap();
    let mut delay = Vec::new();
    let mut missing = 0;
    for (k, (at, _)) in &l.sent {
        match l.readable.get(k) {
            Some(r) => delay.push(r.saturating_duration_since(*at).as_secs_f64() * 1000.0),
            None => missing += 1,
        }
    }
    let bytes = sent.load(Relaxed) as f64;
    let gbit_s = bytes * 8.0 / 1e9 / wall;
    println!("receiver: {streams} streams, {} renditions; {st}", streams * nrend);
    println!(
        "pushed: {total} segments, {:.1} MB in {wall:.0} s ({:.1} Mbit/s); {missing} not readable at the end",
        bytes / 1e6,
        gbit_s * 1e3
    );
    let n = delay.len();
    let (p50, p90, p99) = (pct(&mut delay, 0.5), pct(&mut delay, 0.9), pct(&mut delay, 0.99));
    let max = delay.iter().cloned().fold(f64::NAN, f64::max);
    println!(
        "delay, last byte sent -> index row readable ({n} segments, store polled every {} ms): p50 {p50:.0} ms, p90 {p90:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        probe.as_millis()
    );
    println!("push p50_ms {p50:.0} p99_ms {p99:.0}");
    let cores = cpu_end / wall;
    println!(
        "receiver CPU: {cpu_end:.1} s over {wall:.0} s ({:.1}% of a core) at {:.3} Gbit/s: {:.2} cores per Gbit/s",
        cores * 100.0,
        gbit_s,
        cores / gbit_s
    );
    let s = samples.lock().unwrap();
    let max_in = |from: f64, to: f64| s.iter().filter(|x| x.0 >= from && x.0 < to).map(|x| x.2).max().unwrap_or(0);
    let last = max_in(wall - 60.0, wall + 1.0);
    if wall >= 180.0 {
        let second = max_in(60.0, 120.0);
        println!(
            "receiver RSS: second minute max {} MB, last minute max {} MB: ratio {:.3} (goal: within 5%)",
            second / 1024,
            last / 1024,
            last as f64 / second.max(1) as f64
        );
    } else {
        println!("receiver RSS: last minute max {} MB (a run of 3 minutes or more compares minutes)", last / 1024);
    }
    // Baseline, same run: segments of the same sizes written straight through the store layer
    // (blob, then index row), one after the other, each timed.
    let direct: Vec<f64> = rt.block_on(async {
        use hls_dvr_core::model::IndexEntry;
        use hls_dvr_store::BlobKind;
        let mut out = Vec::new();
        for (i, seg) in rends[0].segs.iter().cycle().take(200).enumerate() {
            let data: Vec<u8> = seg.fragments.iter().flat_map(|f| f.0.clone()).collect();
            let data = bytes::Bytes::from(data);
            let t = Instant::now();
            store.write_blob(BlobKind::Segment, "direct", "r", i as i64, &data).await.expect("direct blob");
            let now = now_ms();
            let e = IndexEntry {
                msn: i as i64,
                duration_us: (seg.duration_s * 1e6) as i64,
                pdt_ms: now,
                discontinuity: false,
                disc_seq: 0,
                init_msn: None,
                size: data.len() as i64,
                added_ms: now,
                key_frame: None,
                thumbnail: false,
            };
            store.write_index("direct", "r", &e).await.expect("direct index");
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        out
    });
    let mut direct = direct;
    let (d50, d99) = (pct(&mut direct, 0.5), pct(&mut direct, 0.99));
    println!("baseline: a whole segment written straight through the store layer (blob, index row), 200 times: p50 {d50:.1} ms, p99 {d99:.1} ms");
    println!("push delay / baseline: p50 {:.2}, p99 {:.2}", p50 / d50, p99 / d99);
    let writes = fs::read_to_string(&up_log)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.split_once("store writes: ").map(|(_, s)| s.to_string()))
        .unwrap_or_else(|| "not logged".into());
    println!("store writes as the receiver saw them: {writes}");
    if missing > 0 || !st.success() {
        std::process::exit(1);
    }
}
