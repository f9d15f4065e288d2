//! Driver of `scripts/bench-viewers`: a viewer simulator against two edges sharing one keyspace,
//! compared with its own exact counts.
//!
//! usage: bench_viewers CASSANDRA KEYSPACE EDGE_A EDGE_B STATS SESSIONS MINUTES WORKER_A ACCESS_LOG...
//!
//! EDGE_A, EDGE_B: `host:port` of two nginx instances (`hls_dvr_sessions on` under `/live/`,
//! off under `/plain/`); STATS: `host:port` answering `/stats` (`hls_dvr_stats`); WORKER_A:
//! the pid of EDGE_A's one worker, whose CPU time prices its requests.
//!
//! 1. A live stream `sim` of two renditions (2 s segments of 2 and 1 KB: a low bitrate, so
//!    thousands of viewers fit on 2 cores) is stored as it goes, with ten minutes before it.
//! 2. SESSIONS viewers over MINUTES minutes: each starts at a random time, stays one to four
//!    minutes, and follows the multivariant playlist, a media playlist and its segments at real
//!    pace; 70 % live, 15 % ten minutes behind (`delay`), 15 % a start-over range; a fifth
//!    switch rendition and a tenth move to the other edge half-way.
//! 3. The statistics are polled each second: when each minute becomes readable.
//! 4. Per whole minute, per hour, watch time and bytes: the edges' figures against the exact
//!    ones. Then requests per second with sessions on against off (same edge, same stream),
//!    stored bytes per stream-day against the access log's, and a 30-day query at a one-hour
//!    step over rows filled at a faster clock.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hls_dvr_core::audience::{Row, HOUR_MS, MINUTE_MS};
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{Container, IndexEntry, Rendition, SourcePos};
use hls_dvr_core::sketch::{mix, Sketch};
use hls_dvr_store::{BlobKind, Store, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STREAM: &str = "sim";
const RENDITIONS: [(&str, usize); 2] = [("hi", 2000), ("lo", 1000)];

/// A keep-alive HTTP/1.1 connection: one request at a time.
struct Conn {
    addr: String,
    s: Option<TcpStream>,
    buf: Vec<u8>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    /// Bytes on the wire: status line, headers and body (what nginx counts as sent).
    wire: usize,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn { addr: addr.to_string(), s: None, buf: Vec::new() }
    }

    async fn get(&mut self, path: &str) -> std::io::Result<Answer> {
        for attempt in 0..2 {
            if self.s.is_none() {
                let s = TcpStream::connect(&self.addr).await?;
                s.set_nodelay(true)?;
                self.s = Some(s);
                self.buf.clear();
            }
            match self.exchange(path).await {
                Ok(a) => return Ok(a),
                // A keep-alive connection the server closed: once more on a new one.
                Err(e) if attempt == 0 => {
                    let _ = e;
                    self.s = None;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!()
    }

    async fn exchange(&mut self, path: &str) -> std::io::Result<Answer> {
        let s = self.s.as_mut().expect("connected");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: sim\r\nUser-Agent: viewer-simulator\r\n\r\n").as_bytes())
            .await?;
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 16384];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("closed mid-body"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        Ok(Answer { status, body, wire: head_end + len })
    }
}

/// What the simulator saw: per minute and hour, who watched; watch time and bytes.
#[derive(Default)]
struct Truth {
    minutes: BTreeMap<i64, HashSet<String>>,
    hours: BTreeMap<i64, HashSet<String>>,
    watch_ms: BTreeMap<i64, i64>,
    bytes: BTreeMap<i64, i64>,
    requests: u64,
    failed: u64,
}

impl Truth {
    fn saw(&mut self, id: &str, wire: usize, segment: bool) {
        let t = now_ms();
        let m = t.div_euclid(MINUTE_MS) * MINUTE_MS;
        self.minutes.entry(m).or_default().insert(id.to_string());
        self.hours.entry(t.div_euclid(HOUR_MS) * HOUR_MS).or_default().insert(id.to_string());
        *self.bytes.entry(m).or_default() += wire as i64;
        if segment {
            *self.watch_ms.entry(m).or_default() += 2000;
        }
        self.requests += 1;
    }
}

fn entry(msn: i64, pdt_ms: i64, size: usize) -> IndexEntry {
    IndexEntry {
        msn,
        duration_us: 2_000_000,
        pdt_ms,
        discontinuity: false,
        disc_seq: 0,
        init_msn: None,
        size: size as i64,
        added_ms: now_ms(),
        key_frame: None,
        thumbnail: false,
    }
}

fn head(name: &str, bandwidth: i64, last: &IndexEntry) -> Rendition {
    Rendition {
        name: name.into(),
        container: Container::Ts,
        target_duration: 2,
        bandwidth: Some(bandwidth),
        codecs: Some("avc1.42c01e,mp4a.40.2".into()),
        resolution: Some("320x180".into()),
        frame_rate: Some(25.0),
        head_msn: last.msn,
        head_disc_seq: 0,
        head_pdt_ms: last.pdt_ms,
        source: SourcePos::default(),
        updated_ms: now_ms(),
        ended: false,
        media: Default::default(),
        parts: None,
        grouping: Default::default(),
        key_frames: false,
        thumbnails: None,
    }
}

/// Stores the stream as it goes: ten minutes at once, then a segment every 2 s.
async fn live_stream(store: Arc<Store>, t0: i64, until: Instant) {
    let mut msn = 0i64;
    loop {
        let pdt = t0 + msn * 2000;
        if pdt > now_ms() {
            if Instant::now() > until {
                return;
            }
            tokio::time::sleep(Duration::from_millis((pdt - now_ms()).max(0) as u64)).await;
        }
        for (name, size) in RENDITIONS {
            let data = Bytes::from(vec![0x47u8; size]);
            let e = entry(msn, pdt, size);
            store.write_blob(BlobKind::Segment, STREAM, name, msn, &data).await.expect("segment");
            store.write_index(STREAM, name, &e).await.expect("index");
            store.write_head(STREAM, &head(name, size as i64 * 4, &e)).await.expect("head");
        }
        msn += 1;
    }
}

fn listed(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body).lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(String::from).collect()
}

/// A small deterministic generator: runs compare across runs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One viewer's session, from its start to its end.
async fn viewer(i: u64, edges: [String; 2], start_in: Duration, life: Duration, truth: Arc<Mutex<Truth>>) {
    let mut rng = Rng(i * 7919 + 1);
    tokio::time::sleep(start_in).await;
    let kind = rng.below(100);
    let switches = rng.below(5) == 0;
    let moves = rng.below(10) == 0;
    let mut edge = (i % 2) as usize;
    let mut rendition = if rng.below(2) == 0 { "hi" } else { "lo" };
    let query = match kind {
        0..70 => String::new(),
        70..85 => "delay=600".to_string(),
        _ => "start=-540&end=-60".to_string(),
    };
    let mut conns = [Conn::new(&edges[0]), Conn::new(&edges[1])];
    let fail = |truth: &Arc<Mutex<Truth>>| truth.lock().unwrap().failed += 1;
    let Ok(master) = conns[edge].get(&format!("/live/{STREAM}/master.m3u8")).await else { return fail(&truth) };
    let Some(id) = listed(&master.body).first().and_then(|u| u.split("hls_session=").nth(1)).map(String::from) else {
        return fail(&truth);
    };
    truth.lock().unwrap().saw(&id, master.wire, false);
    let began = Instant::now();
    let mut half_done = false;
    let mut last_seg: Option<String> = None;
    let mut queue: Vec<String> = Vec::new();
    let sep = if query.is_empty() { "" } else { "&" };
    while began.elapsed() < life {
        let tick = Instant::now();
        if !half_done && began.elapsed() > life / 2 {
            half_done = true;
            if switches {
                rendition = if rendition == "hi" { "lo" } else { "hi" };
                queue.clear();
                last_seg = None;
            }
            if moves {
                edge = 1 - edge;
            }
        }
        // Live and delayed views reload their playlist each target duration; a start-over range
        // is a finished playlist, read once.
        if queue.is_empty() {
            let path = format!("/live/{STREAM}/{rendition}/index.m3u8?{query}{sep}hls_session={id}");
            match conns[edge].get(&path).await {
                Ok(a) if a.status == 200 => {
                    truth.lock().unwrap().saw(&id, a.wire, false);
                    let segs = listed(&a.body);
                    queue = match (&last_seg, kind >= 85) {
                        // A start-over view plays its range from the start.
                        (_, true) => segs,
                        // Live and delayed: from three segments before the end, then what is new.
                        (None, false) => segs.iter().rev().take(3).rev().cloned().collect(),
                        (Some(l), false) => segs.iter().skip_while(|s| *s != l).skip(1).cloned().collect(),
                    };
                }
                _ => fail(&truth),
            }
        }
        if let Some(seg) = (!queue.is_empty()).then(|| queue.remove(0)) {
            match conns[edge].get(&format!("/live/{STREAM}/{rendition}/{seg}")).await {
                Ok(a) if a.status == 200 => truth.lock().unwrap().saw(&id, a.wire, true),
                _ => fail(&truth),
            }
            last_seg = Some(seg);
        }
        // Live views fetch the next segment's playlist again next time.
        if kind < 85 {
            queue.clear();
        }
        tokio::time::sleep(Duration::from_millis(2000).saturating_sub(tick.elapsed())).await;
    }
}

async fn stats(addr: &str, query: &str) -> serde_json::Value {
    let mut c = Conn::new(addr);
    let a = c.get(&format!("/stats?{query}")).await.expect("stats");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    serde_json::from_slice(&a.body).expect("JSON")
}

fn err_pct(got: f64, want: f64) -> f64 {
    if want == 0.0 {
        if got == 0.0 {
            0.0
        } else {
            100.0
        }
    } else {
        (got - want).abs() / want * 100.0
    }
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Closed-loop load on `prefix` for `secs`: requests answered. `query` goes before the session
/// id of each playlist request (`_HLS_skip=YES&` asks for delta updates, as hls.js does).
async fn hammer(addr: &str, prefix: &str, query: &str, id: &str, secs: u64, connections: usize) -> u64 {
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, prefix, query, id) = (addr.to_string(), prefix.to_string(), query.to_string(), id.to_string());
            tokio::spawn(async move {
                let mut c = Conn::new(&addr);
                let mut n = 0u64;
                while Instant::now() < until {
                    let path = format!("{prefix}{STREAM}/hi/index.m3u8?{query}hls_session={id}");
                    let p = c.get(&path).await.expect("playlist");
                    let seg = listed(&p.body).pop().expect("a segment");
                    let seg = seg.split('?').next().unwrap().to_string();
                    c.get(&format!("{prefix}{STREAM}/hi/{seg}?hls_session={id}")).await.expect("segment");
                    n += 2;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 9 {
        eprintln!(
            "usage: bench_viewers CASSANDRA KEYSPACE EDGE_A EDGE_B STATS SESSIONS MINUTES WORKER_A ACCESS_LOG..."
        );
        std::process::exit(2);
    }
    let (cassandra, ks, edges, stats_at) = (&a[0], &a[1], [a[2].clone(), a[3].clone()], a[4].clone());
    let sessions: u64 = a[5].parse().expect("SESSIONS");
    let minutes: u64 = a[6].parse().expect("MINUTES");
    let worker: u32 = a[7].parse().expect("WORKER_A");
    let logs = &a[8..];
    let store = Arc::new(Store::connect(&StoreConfig::new(vec![cassandra.clone()], ks)).await.expect("store"));

    // 1. The stream, with ten minutes before now.
    let run = Duration::from_secs(minutes * 60);
    let t0 = now_ms() - 600_000;
    tokio::spawn(live_stream(store.clone(), t0, Instant::now() + run + Duration::from_secs(120)));
    while store.rendition(STREAM, "lo").await.ok().flatten().is_none_or(|h| h.head_pdt_ms < now_ms() - 4000) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // MINUTES 0: only the load and the 30-day query (a quick look after a change).
    if minutes == 0 {
        load_and_month(&store, &edges, &stats_at, worker).await;
        return;
    }
    let log_sizes =
        |logs: &[String]| logs.iter().map(|l| std::fs::metadata(l).map(|m| m.len()).unwrap_or(0)).sum::<u64>();
    let log_before = log_sizes(logs);

    // 2. The viewers, and 3. the statistics polled meanwhile.
    let started = now_ms();
    let truth = Arc::new(Mutex::new(Truth::default()));
    let mut rng = Rng(42);
    let mut tasks = Vec::new();
    let span = run.as_secs().saturating_sub(60).max(1);
    for i in 0..sessions {
        let start_in = Duration::from_millis(rng.below(span * 1000));
        let left = run.saturating_sub(start_in);
        let life = Duration::from_secs(60 + rng.below(180)).min(left);
        tasks.push(tokio::spawn(viewer(i, edges.clone(), start_in, life, truth.clone())));
    }
    let first_seen: Arc<Mutex<BTreeMap<i64, i64>>> = Arc::default();
    let poll = {
        let (first_seen, stats_at) = (first_seen.clone(), stats_at.clone());
        tokio::spawn(async move {
            loop {
                let doc = stats(&stats_at, &format!("stream={STREAM}&start={}&step=60", started / 1000 - 60)).await;
                let now = now_ms();
                for p in doc["points"].as_array().unwrap() {
                    first_seen.lock().unwrap().entry(p["t_ms"].as_i64().unwrap()).or_insert(now);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    let ended = now_ms();
    let log_bytes = log_sizes(logs) - log_before;
    // The last minute is readable a few seconds after it ends.
    let last_minute = ended.div_euclid(MINUTE_MS) * MINUTE_MS;
    let deadline = Instant::now() + Duration::from_secs(150);
    while !first_seen.lock().unwrap().contains_key(&last_minute) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    poll.abort();

    // 4. The edges' figures against the simulator's.
    // Every viewer has finished: the simulator's counts are final.
    let truth = std::mem::take(&mut *truth.lock().unwrap());
    println!("viewers sessions {sessions} requests {} failed {}", truth.requests, truth.failed);
    let doc =
        stats(&stats_at, &format!("stream={STREAM}&start={}&end={}&step=60", started / 1000 - 60, ended / 1000 + 60))
            .await;
    let points: BTreeMap<i64, serde_json::Value> =
        doc["points"].as_array().unwrap().iter().map(|p| (p["t_ms"].as_i64().unwrap(), p.clone())).collect();
    let whole = |m: i64| m >= started && m + MINUTE_MS <= ended;
    let (mut worst, mut sum_watch, mut sum_bytes, mut want_watch, mut want_bytes) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for (m, ids) in &truth.minutes {
        let p = points.get(m);
        let got = p.map_or(0.0, |p| p["viewers"].as_f64().unwrap());
        sum_watch += p.map_or(0.0, |p| p["watch_seconds"].as_f64().unwrap());
        sum_bytes += p.map_or(0.0, |p| p["bytes"].as_f64().unwrap());
        want_watch += *truth.watch_ms.get(m).unwrap_or(&0) as f64 / 1000.0;
        want_bytes += *truth.bytes.get(m).unwrap_or(&0) as f64;
        let e = err_pct(got, ids.len() as f64);
        let mark = if whole(*m) { "whole" } else { "part" };
        println!("viewers minute {m} {mark} exact {} counted {got} error_pct {e:.2}", ids.len());
        if whole(*m) {
            worst = worst.max(e);
        }
    }
    println!("viewers minute_max_error_pct {worst:.2}");
    let hdoc =
        stats(&stats_at, &format!("stream={STREAM}&start={}&end={}&step=3600", started / 1000, ended / 1000)).await;
    let mut worst_hour = 0.0f64;
    for p in hdoc["points"].as_array().unwrap() {
        let h = p["t_ms"].as_i64().unwrap();
        let want = truth.hours.get(&h).map_or(0, |s| s.len()) as f64;
        let got = p["unique_viewers"].as_f64().unwrap();
        let e = err_pct(got, want);
        println!("viewers hour {h} unique exact {want} counted {got} error_pct {e:.2}");
        worst_hour = worst_hour.max(e);
    }
    println!("viewers hour_unique_max_error_pct {worst_hour:.2}");
    println!(
        "viewers watch_seconds exact {want_watch} counted {sum_watch} error_pct {:.3}",
        err_pct(sum_watch, want_watch)
    );
    println!("viewers bytes exact {want_bytes} counted {sum_bytes} error_pct {:.3}", err_pct(sum_bytes, want_bytes));
    let mut delays: Vec<f64> = first_seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| **m >= started.div_euclid(MINUTE_MS) * MINUTE_MS)
        .map(|(m, seen)| (seen - (m + MINUTE_MS)) as f64 / 1000.0)
        .collect();
    delays.sort_by(f64::total_cmp);
    if !delays.is_empty() {
        println!(
            "viewers readable_after_s p50 {:.1} p99 {:.1} max {:.1} minutes {}",
            pct(&delays, 0.5),
            pct(&delays, 0.99),
            delays[delays.len() - 1],
            delays.len()
        );
    }

    // Stored bytes per stream-day: the rows' contents (sketches and counts) this run wrote,
    // scaled to a day, against the access log's growth for the same traffic.
    let (from, to) = (started.div_euclid(MINUTE_MS) * MINUTE_MS, ended);
    let mut stored = 0usize;
    let mut minute_rows = 0usize;
    for step in [60, 3600] {
        for r in store.stats(STREAM, step, from - HOUR_MS, to + HOUR_MS).await.expect("rows") {
            stored += row_bytes(&r);
            if step == 60 {
                minute_rows += 1;
            }
        }
    }
    let run_minutes = ((ended - started) as f64 / 60_000.0).max(1.0);
    let per_day = stored as f64 / run_minutes * 1440.0;
    let log_per_day = log_bytes as f64 / run_minutes * 1440.0;
    println!("storage stats_bytes {stored} rows {minute_rows} per_stream_day_mb {:.1}", per_day / 1e6);
    println!("storage access_log_bytes {log_bytes} per_day_mb {:.1}", log_per_day / 1e6);
    println!("ratio stats-storage/access-log {:.4}", per_day / log_per_day.max(1.0));

    load_and_month(&store, &edges, &stats_at, worker).await;
}

/// Requests per second with sessions on against off, and the 30-day query.
async fn load_and_month(store: &Store, edges: &[String; 2], stats_at: &str, worker: u32) {
    // Requests per second with sessions on against off: the same edge and stream, closed loop.
    // The load generator shares the 2 cores and reads every byte: the requests a worker serves
    // per second of its own CPU time is the edge's capacity, whatever the client's speed.
    let mut master = Conn::new(&edges[0]);
    let m = master.get(&format!("/live/{STREAM}/master.m3u8")).await.expect("master");
    let id = listed(&m.body)[0].split("hls_session=").nth(1).unwrap().to_string();
    // Live players reload with delta updates (hls.js asks for them when the playlist offers
    // them); full playlists of the whole stored quarter hour are measured too: the id is added
    // to every URI a playlist lists, so its cost grows with the playlist.
    for (what, query) in [("", "_HLS_skip=YES&"), ("-full", "")] {
        let (mut on, mut off, mut on_cpu, mut off_cpu) = (0u64, 0u64, 0.0, 0.0);
        for _ in 0..3 {
            let t = cpu_s(worker);
            on += hammer(&edges[0], "/live/", query, &id, 5, 32).await;
            let u = cpu_s(worker);
            off += hammer(&edges[0], "/plain/", query, &id, 5, 32).await;
            on_cpu += u - t;
            off_cpu += cpu_s(worker) - u;
        }
        println!("load{what} sessions_on_req_s {:.0} sessions_off_req_s {:.0}", on as f64 / 15.0, off as f64 / 15.0);
        let (on_cap, off_cap) = (on as f64 / on_cpu, off as f64 / off_cpu);
        println!("load{what} worker_req_per_cpu_s on {on_cap:.0} off {off_cap:.0}");
        println!("ratio sessions-on/off{what} {:.3}", on_cap / off_cap);
        println!("ratio sessions-on/off{what}-closed-loop {:.3}", on as f64 / off as f64);
    }

    // A 30-day query at a one-hour step, over rows filled at a faster clock: two edges, the
    // stream and its two renditions, 720 hours, each hour's sketch of 2,000 viewers.
    let month_start = (now_ms() - 30 * 86_400_000).div_euclid(HOUR_MS) * HOUR_MS;
    let fill_began = Instant::now();
    let mut writes = Vec::new();
    for h in 0..720i64 {
        for edge in ["edge-a", "edge-b"] {
            for rendition in ["", "hi", "lo"] {
                let mut r = Row {
                    stream: "month".into(),
                    rendition: rendition.into(),
                    step_s: 3600,
                    t_ms: month_start + h * HOUR_MS,
                    edge: edge.into(),
                    since_ms: month_start + h * HOUR_MS,
                    minutes: vec![[1000, 800, 150, 50]; 60],
                    watch_ms: 3_600_000_000,
                    bytes: 1 << 30,
                    new_sessions: 500,
                    ..Row::default()
                };
                if rendition.is_empty() {
                    let mut s = Sketch::new();
                    for v in 0..2000u64 {
                        s.insert(mix(h as u64 * 1_000_000 + v));
                    }
                    r.sessions = s;
                }
                writes.push(r);
            }
        }
    }
    for chunk in writes.chunks(64) {
        futures::future::try_join_all(chunk.iter().map(|r| store.write_stats(r))).await.expect("fill");
    }
    println!("month filled rows {} in {:.1} s", writes.len(), fill_began.elapsed().as_secs_f64());
    let query = format!("stream=month&start={}&end={}&step=3600", month_start / 1000, now_ms() / 1000);
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let doc = stats(stats_at, &query).await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(doc["points"].as_array().unwrap().len() >= 720);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "month query_ms p50 {:.1} p99 {:.1} (720 hour points, {} rows)",
        pct(&times, 0.5),
        pct(&times, 0.99),
        writes.len()
    );
}

/// A process's CPU time so far (user and system), in seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the worker's /proc stat");
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // CLK_TCK is 100 on Linux.
    ticks / 100.0
}

/// What a row stores: its sketches and counts, and its key's text.
fn row_bytes(r: &Row) -> usize {
    let sketches: usize =
        [&r.sessions, &r.forged, &r.places[0], &r.places[1], &r.places[2]].iter().map(|s| s.to_bytes().len()).sum();
    sketches + r.minutes_bytes().len() + r.stream.len() + r.rendition.len() + r.edge.len() + 8 * 6 + 4 * 2
}
