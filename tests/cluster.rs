//! Faults of a 3-node cluster under a live stream and its viewers (`scripts/faults` starts the
//! cluster and runs these): a node killed and restarted, the whole cluster gone for a minute, a
//! slow node. Each prints one row: fault, load, requests made and failed, segments lost or
//! duplicated, recovery time.
//!
//! The stream: ffmpeg -> hls-dvr-upload -> Cassandra (replication 3, LOCAL_QUORUM both ways)
//! -> nginx (2 workers) -> viewer threads reloading playlists and fetching the newest segments;
//! for the node kill also wrk on playlists and segments, and hls.js playing in Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::*;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::bucket_of;
use hls_dvr_store::{BlobKind, Store, StoreConfig};

/// The cluster of `scripts/faults`: contact points and its scripts/cassandra folder.
fn cluster() -> (String, PathBuf) {
    let nodes = std::env::var("HLS_DVR_CLUSTER").expect("HLS_DVR_CLUSTER: run scripts/faults");
    let dir = std::env::var("HLS_DVR_CLUSTER_DIR").expect("HLS_DVR_CLUSTER_DIR: run scripts/faults");
    (nodes, PathBuf::from(dir))
}

/// `scripts/cassandra start` again with the settings the cluster in `dir` was made with (a start
/// with other ones would wipe it).
fn restart_all(dir: &Path) {
    let env = std::fs::read_to_string(dir.join("cluster.env")).unwrap();
    let get = |k: &str| env.lines().find_map(|l| l.strip_prefix(&format!("c_{k}="))).unwrap().to_string();
    let (n, port, storage) = (get("nodes"), get("port"), get("storage"));
    cassandra(&["start", "--nodes", &n, "--port", &port, "--storage-port", &storage], dir);
}

fn cassandra(args: &[&str], dir: &Path) {
    let st = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cassandra"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "scripts/cassandra {args:?}");
}

/// A keyspace replicated on all three nodes. With `durable_writes` on, a node killed with SIGKILL
/// keeps what it acknowledged (its commit log is in the page cache) and hints bring the rest;
/// without, it loses its unflushed writes until a repair, while quorum reads still see them.
fn schema3(nodes: &str, tag: &str, durable: bool) -> String {
    let ks = keyspace(tag);
    let out = Command::new(upload_bin())
        .args(["schema", "--cassandra", nodes, "--keyspace", &ks, "--replication", "SimpleStrategy:3"])
        .args(["--dvr-depth", "1h", "--durable-writes", if durable { "true" } else { "false" }])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ks
}

/// Viewers: each reloads a playlist and fetches its newest segment, over and over.
struct Viewers {
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    /// The slowest answer, for outages: ms.
    slowest: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Viewers {
    fn start(ng: &Nginx, n: usize, accept: fn(u16) -> bool) -> Viewers {
        let (stop, made, slowest) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..n)
            .map(|i| {
                let (stop, made, failed, slowest) = (stop.clone(), made.clone(), failed.clone(), slowest.clone());
                let base = ng.url("/live/demo");
                let rendition = if i % 2 == 0 { "stream_hi" } else { "stream_lo" };
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let fetch = |url: String| {
                            let t = Instant::now();
                            let r = http("GET", &url, &[]);
                            made.fetch_add(1, Ordering::Relaxed);
                            slowest.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                            match r {
                                Ok(r) if r.status == 200 => Some(r),
                                Ok(r) if accept(r.status) => None,
                                Ok(r) => {
                                    failed.lock().unwrap().push(format!("{url}: {}", r.status));
                                    None
                                }
                                Err(e) => {
                                    failed.lock().unwrap().push(format!("{url}: {e}"));
                                    None
                                }
                            }
                        };
                        if let Some(pl) = fetch(format!("{base}/{rendition}/index.m3u8")) {
                            if let Some(last) = pl.text().lines().rev().find(|l| l.ends_with(".ts")) {
                                fetch(format!("{base}/{rendition}/{last}"));
                            }
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })
            })
            .collect();
        Viewers { stop, made, failed, slowest, threads }
    }

    /// Stops them: (requests made, failures).
    fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (self.made.load(Ordering::Relaxed), self.failed.lock().unwrap().clone())
    }
}

/// Every segment ffmpeg listed is stored once, in order, byte for byte: (stored, lost, duplicated).
fn check_segments(store: &Store, rt: &tokio::runtime::Runtime, dir: &Path, since_ms: i64) -> (usize, usize, usize) {
    let (mut stored, mut lost, mut dup) = (0, 0, 0);
    for rend in ["stream_hi", "stream_lo"] {
        let text = std::fs::read_to_string(dir.join(format!("{rend}.m3u8"))).unwrap();
        let files: Vec<&str> = text.lines().filter(|l| l.ends_with(".ts")).collect();
        let idx = rt.block_on(store.index_range("demo", rend, since_ms, now_ms() + 60_000)).unwrap();
        stored += idx.len();
        lost += files.len().saturating_sub(idx.len());
        dup += idx.len().saturating_sub(files.len());
        for (e, f) in idx.iter().zip(&files) {
            let want = std::fs::read(dir.join(f)).unwrap();
            let got = rt.block_on(store.read_blob(BlobKind::Segment, "demo", rend, e.msn)).unwrap().unwrap();
            assert!(got == want, "{rend} msn {} is not {f}", e.msn);
        }
        assert!(idx.windows(2).all(|w| w[1].msn == w[0].msn + 1), "{rend}: msns not consecutive");
    }
    (stored, lost, dup)
}

/// `segments`: stored, lost, duplicated.
fn row(fault: &str, load: &str, made: u64, failed: usize, segments: (usize, usize, usize), recovery: &str) {
    let (stored, lost, dup) = segments;
    println!("| {fault} | {load} | {made} | {failed} | {stored} stored, {lost} lost, {dup} duplicated | {recovery} |");
}

struct Live {
    dir: TempDir,
    ffmpeg: Proc,
    uploader: Proc,
    ng: Nginx,
}

impl Live {
    /// Stops the segmenter, waits until the store holds every segment it listed (the uploader
    /// catching up after a fault), then stops the uploader.
    fn finish(&mut self, store: &Store, rt: &tokio::runtime::Runtime, since_ms: i64) {
        self.ffmpeg.terminate(Duration::from_secs(5));
        let listed = |r: &str| {
            std::fs::read_to_string(self.dir.path().join(format!("{r}.m3u8")))
                .unwrap()
                .lines()
                .filter(|l| l.ends_with(".ts"))
                .count()
        };
        wait_for("every listed segment stored", Duration::from_secs(90), || {
            ["stream_hi", "stream_lo"].iter().all(|r| {
                rt.block_on(store.index_range("demo", r, since_ms, now_ms() + 60_000))
                    .is_ok_and(|i| i.len() >= listed(r))
            })
        });
        self.uploader.terminate(Duration::from_secs(10));
    }
}

fn live(nodes: &str, ks: &str, tag: &str, http_extra: &str) -> Live {
    let dir = TempDir::new(tag);
    let ffmpeg = ffmpeg_live(dir.path(), Container::Ts, 1);
    let uploader = uploader(&Cql { addr: nodes.into() }, ks, "demo", dir.path(), &[]);
    let ng = Nginx::start(nodes, ks, 2, &format!("hls_dvr_timeout 2s; {http_extra}"), "hls_dvr_window 10m;");
    wait_for("both renditions live through nginx", Duration::from_secs(60), || {
        ["stream_hi", "stream_lo"]
            .iter()
            .all(|r| http("GET", &ng.url(&format!("/live/demo/{r}/index.m3u8")), &[]).is_ok_and(|r| r.status == 200))
    });
    Live { dir, ffmpeg, uploader, ng }
}

/// The reasons nginx logged for 4xx answers, to explain a failure.
fn refusals(ng: &Nginx) -> String {
    ng.error_log().lines().filter(|l| l.contains("hls_dvr: 4")).collect::<Vec<_>>().join("\n")
}

/// wrk's script: both renditions' playlists, and segments a few behind the newest one a playlist
/// listed, each connection sending a request every 10 ms.
const WRK_LUA: &str = r#"
local n, newest = 0, nil
request = function()
  n = n + 1
  local r = (n % 2 == 0) and "stream_hi" or "stream_lo"
  if newest == nil or n % 3 == 0 then
    return wrk.format("GET", "/live/demo/" .. r .. "/index.m3u8")
  end
  return wrk.format("GET", "/live/demo/" .. r .. "/" .. (newest - 2 - n % 4) .. ".ts")
end
response = function(status, headers, body)
  if status ~= 200 or headers["Content-Type"] ~= "application/vnd.apple.mpegurl" then return end
  local last = nil
  for m in string.gmatch(body, "(%d+)%.ts") do last = tonumber(m) end
  if last ~= nil and last >= 6 then newest = last end
end
delay = function() return 10 end
"#;

/// wrk on 4 connections until [`Wrk::stop`] (SIGINT: it then prints its summary).
struct Wrk(std::process::Child);

impl Wrk {
    fn start(ng: &Nginx) -> Wrk {
        let script = ng.dir.path().join("live.lua");
        std::fs::write(&script, WRK_LUA).unwrap();
        let child = Command::new("wrk")
            .args(["-t1", "-c4", "-d1h", "-s"])
            .arg(&script)
            .arg(ng.url("/"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("wrk (scripts/setup installs it)");
        Wrk(child)
    }

    fn stop(self) -> WrkSummary {
        let _ = Command::new("kill").arg("-INT").arg(self.0.id().to_string()).status();
        let out = self.0.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let summary = WrkSummary::parse(&text);
        assert!(summary.requests > 0, "wrk made no request: {text}");
        summary
    }
}

fn reader(nodes: &str, ks: &str, rt: &tokio::runtime::Runtime) -> Store {
    let nodes = nodes.split(',').map(String::from).collect();
    rt.block_on(Store::connect(&StoreConfig::new(nodes, ks))).unwrap()
}

#[test]
#[ignore = "needs a 3-node cluster: scripts/faults"]
fn a_node_killed_under_load_loses_nothing_and_rejoins_whole() {
    let (nodes, cdir) = cluster();
    let ks = schema3(&nodes, "nodekill", true);
    let since = now_ms() - 60_000;
    let (page, page_port) = (player_page(), free_port());
    let mut l = live(&nodes, &ks, "nodekill", &player_server(page_port, page.path()));
    let viewers = Viewers::start(&l.ng, 6, |_| false);
    let wrk = Wrk::start(&l.ng);
    let player = Player::start(&l.ng, page, page_port, "/live/demo/master.m3u8");
    std::thread::sleep(Duration::from_secs(8));
    cassandra(&["stop", "--node", "3"], &cdir);
    let killed = now_ms();
    std::thread::sleep(Duration::from_secs(15));
    let t = Instant::now();
    cassandra(&["start", "--node", "3"], &cdir);
    let restart = t.elapsed();
    std::thread::sleep(Duration::from_secs(8));
    let (viewed, failed) = viewers.stop();
    let wrk = wrk.stop();
    let played = player.stop();
    eprintln!("player: {played}");
    let rt = rt();
    let store = reader(&nodes, &ks, &rt);
    l.finish(&store, &rt, since);
    let (stored, lost, dup) = check_segments(&store, &rt, l.dir.path(), since);
    // The restarted node, read alone at ONE, catches up on what it missed (hints).
    let t = Instant::now();
    let node3 = nodes.split(',').nth(2).unwrap().to_string();
    let session = rt
        .block_on(
            scylla::client::session_builder::SessionBuilder::new()
                .known_node(&node3)
                .host_filter(Arc::new(
                    scylla::policies::host_filter::AllowListHostFilter::new([node3.as_str()]).unwrap(),
                ))
                .build(),
        )
        .unwrap();
    let select =
        format!("SELECT msn FROM {ks}.segment_index WHERE stream = 'demo' AND rendition = 'stream_hi' AND bucket = ?");
    let mut stmt = rt.block_on(session.prepare(select.as_str())).unwrap();
    stmt.set_consistency(scylla::statement::Consistency::One);
    let total = rt.block_on(store.index_range("demo", "stream_hi", since, now_ms())).unwrap().len();
    let on_node3 = || -> usize {
        (bucket_of(since)..=bucket_of(now_ms()))
            .map(|b| match rt.block_on(session.execute_unpaged(&stmt, (b,))) {
                Ok(r) => r.into_rows_result().unwrap_or_else(|e| panic!("node 3: {e}")).rows_num(),
                Err(e) => {
                    eprintln!("node 3, bucket {b}: {e}");
                    0
                }
            })
            .sum()
    };
    wait_for("node 3 to hold every row", Duration::from_secs(120), || on_node3() >= total);
    let caught_up = t.elapsed();
    let wrk_failed = wrk.non_2xx + wrk.unanswered + wrk.timeouts;
    let player_failed = played.matches("networkError/").count();
    let (watched, played_s) = (reported(&played, "wallS"), reported(&played, "playedS"));
    row(
        "node 3 of 3 killed (SIGKILL), restarted 15 s later",
        &format!(
            "6 viewers (playlist + newest segment, 5/s each, {viewed} requests); wrk, 4 connections on \
             playlists and segments ({} requests); hls.js in Chromium; live ffmpeg; RF 3, LOCAL_QUORUM, \
             durable writes. hls.js played {played_s:.0} s of {watched:.0} s watched, {} stalls ({:.1} s)",
            wrk.requests,
            reported(&played, "stalls"),
            reported(&played, "stalledS")
        ),
        viewed + wrk.requests,
        failed.len() + wrk_failed as usize + player_failed,
        (stored, lost, dup),
        &format!(
            "node back in {:.0} s; its rows complete {:.1} s later; killed at {killed}",
            restart.as_secs_f64(),
            caught_up.as_secs_f64()
        ),
    );
    assert!(
        failed.is_empty(),
        "{} requests failed: {:?}\n{}",
        failed.len(),
        &failed[..failed.len().min(10)],
        refusals(&l.ng)
    );
    assert_eq!(wrk_failed, 0, "wrk: {wrk:?}\n{}", refusals(&l.ng));
    assert!(played.contains("\"ok\":true") && player_failed == 0, "hls.js: {played}");
    // Played on through the kill: most of the time watched (a stall on 2 busy cores aside).
    assert!(played_s > watched / 2.0, "hls.js played {played_s} s of {watched} s: {played}");
    assert_eq!((lost, dup), (0, 0));
    assert!(!l.ng.error_log().contains("exited on signal"));
}

#[test]
#[ignore = "needs a 3-node cluster: scripts/faults"]
fn the_whole_cluster_gone_for_a_minute() {
    let (nodes, cdir) = cluster();
    let ks = schema3(&nodes, "outage", false);
    let since = now_ms() - 60_000;
    let mut l = live(&nodes, &ks, "outage", "");
    // While the cluster is gone, 503 or 504 are the answers expected; each within the timeout.
    let viewers = Viewers::start(&l.ng, 4, |s| s == 503 || s == 504);
    std::thread::sleep(Duration::from_secs(5));
    cassandra(&["stop"], &cdir);
    std::thread::sleep(Duration::from_secs(60));
    let (made_down, failed_down) = (viewers.made.load(Ordering::Relaxed), viewers.failed.lock().unwrap().len());
    let slowest_down = viewers.slowest.load(Ordering::Relaxed);
    restart_all(&cdir);
    // Back: how long until nginx serves again.
    let back = Instant::now();
    wait_for("nginx to serve again", Duration::from_secs(60), || {
        http("GET", &l.ng.url("/live/demo/stream_hi/index.m3u8"), &[]).is_ok_and(|r| r.status == 200)
    });
    let recovered = back.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    let (made, failed) = viewers.stop();
    // The uploader stores what was written meanwhile.
    let rt = rt();
    let store = reader(&nodes, &ks, &rt);
    l.finish(&store, &rt, since);
    let (stored, lost, dup) = check_segments(&store, &rt, l.dir.path(), since);
    row(
        "all 3 nodes stopped for 60 s",
        "4 viewers, live ffmpeg",
        made,
        failed.len(),
        (stored, lost, dup),
        &format!(
            "{made_down} requests while down, all 503/504, slowest {slowest_down} ms; served again {:.2} s after the cluster answered CQL",
            recovered.as_secs_f64()
        ),
    );
    assert_eq!(failed_down, 0, "answers other than 503/504 while down: {failed:?}\n{}", refusals(&l.ng));
    assert!(slowest_down < 3500, "an answer took {slowest_down} ms with a 2 s timeout");
    assert_eq!((lost, dup), (0, 0));
    assert!(!l.ng.error_log().contains("exited on signal"));
}

#[test]
#[ignore = "needs a 3-node cluster: scripts/faults"]
fn a_slow_node_costs_little_with_speculative_retries() {
    let (nodes, _) = cluster();
    let ks = schema3(&nodes, "slow", false);
    let _l = live(&nodes, &ks, "slow", "");
    // A proxy in front of each node, on one port: node 2's answers are 500 ms late.
    let addrs: Vec<std::net::SocketAddr> = nodes.split(',').map(|n| n.parse().unwrap()).collect();
    let port = free_port();
    let proxies: Vec<Proxy> =
        addrs.iter().map(|a| Proxy::start_on(std::net::SocketAddr::new(a.ip(), port), *a).expect("proxy")).collect();
    proxies[1].set_delay(Duration::from_millis(500));
    let contact = proxies.iter().map(Proxy::addr).collect::<Vec<_>>().join(",");
    let mut results = Vec::new();
    for (name, spec) in [("speculative retry after 100 ms", "100ms"), ("no speculative retry", "off")] {
        let ng = Nginx::start(
            &contact,
            &ks,
            2,
            &format!("hls_dvr_timeout 2s; hls_dvr_playlist_cache off; hls_dvr_speculative_retry {spec};"),
            "hls_dvr_window 10m;",
        );
        // Both workers connected (through the slow proxy too) before measuring.
        let mut in_a_row = 0;
        wait_for("20 answers in a row", Duration::from_secs(60), || {
            let ok = http("GET", &ng.url("/live/demo/stream_hi/index.m3u8"), &[]).is_ok_and(|r| r.status == 200);
            in_a_row = if ok { in_a_row + 1 } else { 0 };
            in_a_row >= 20
        });
        let mut ms: Vec<f64> = (0..300)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(get(&ng.url("/live/demo/stream_hi/index.m3u8")).status, 200);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let p = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
        results.push((name, p(0.5), p(0.99)));
    }
    for (name, p50, p99) in &results {
        row(
            &format!("node 2 answers 500 ms late; {name}"),
            "300 playlist requests, one at a time, cache off",
            300,
            0,
            (0, 0, 0),
            &format!("p50 {p50:.0} ms, p99 {p99:.0} ms (timeout 2000 ms)"),
        );
    }
    assert!(results[0].2 < 400.0, "p99 {} ms with speculative retries", results[0].2);
}
