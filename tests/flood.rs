//! Floods (`scripts/faults` runs these): a million requests of every kind against two workers,
//! and a hundred thousand with the workers under valgrind's memcheck. No worker may crash, the
//! workers' memory stays flat beyond the configured caches, and memcheck finds no invalid read
//! or write in the module.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hls_dvr_core::clock::now_ms;

/// Three 300 KB segments of `demo/hi` and a playlist of them.
fn fixture(tag: &str) -> (Cql, String) {
    let cql = Cql::start();
    let ks = keyspace(tag);
    let rt = rt();
    let store = schema_and_store(&cql, &ks, &rt).with_chunk_size(64 * 1024);
    let now = now_ms();
    for msn in 0..3 {
        let d = bytes_of(msn as u64, 300_000);
        let e = entry(msn, now - (3 - msn) * 2000, d.len());
        store_segment(&rt, &store, "demo", &e, &d, &head_of("hi", &e, false));
    }
    (cql, ks)
}

/// Requests of every kind, good and bad, for wrk to cycle through. (HEAD is sent by [`heads`]: wrk
/// waits for a body that a HEAD answer never has.)
const LUA: &str = r#"
local paths = {
  "/live/demo/hi/index.m3u8", "/live/demo/hi/index.m3u8?_HLS_skip=YES", "/live/demo/master.m3u8",
  "/live/demo/hi/index.m3u8?start=-60", "/live/demo/hi/index.m3u8?delay=2",
  "/live/demo/hi/0.ts", "/live/demo/hi/1.ts", "/live/demo/hi/2.ts", "/live/demo/hi/9.ts",
  "/live/demo/hi/index.m3u8?start=x%zz", "/live/demo/hi/index.m3u8?_HLS_msn=-1",
  "/live/de%00mo/hi/1.ts", "/live/demo/hi/../../etc/passwd", "/live/demo/hi/99999999999999999999.ts",
  "/live/demo/hi/1.ts?start=now&end=now", "/live/" .. string.rep("a", 3000) .. "/master.m3u8",
  "/live/demo/hi/index.m3u8?start=1&start=2", "/live/demo/hi/init-0.mp4"
}
local n = 0
request = function()
  n = n + 1
  local p = paths[(n % #paths) + 1]
  if n % 5 == 0 then return wrk.format("GET", "/live/demo/hi/1.ts", { Range = "bytes=" .. (n % 300000) .. "-" }) end
  if n % 11 == 0 then return wrk.format("GET", "/live/demo/hi/2.ts", { Range = "bytes=-" .. (n % 5000) .. ",1-2" }) end
  return wrk.format("GET", p)
end
"#;

fn workers(ng: &Nginx) -> Vec<u32> {
    let pid = std::fs::read_to_string(ng.dir.path().join("nginx.pid")).unwrap();
    let out = Command::new("pgrep").args(["-P", pid.trim()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The largest worker's private memory (RssAnon), in KB.
fn private_kb(ng: &Nginx) -> u64 {
    workers(ng)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines().find_map(|l| l.strip_prefix("RssAnon:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .max()
        .unwrap_or(0)
}

/// HEAD requests of every path of the mix, `n` of them, each checked to be answered.
fn heads(port: u16, n: u64) -> (u64, u64) {
    let paths = [
        "/live/demo/hi/index.m3u8",
        "/live/demo/master.m3u8",
        "/live/demo/hi/1.ts",
        "/live/demo/hi/9.ts",
        "/live/demo/hi/index.m3u8?start=x%zz",
        "/live/demo/hi/init-0.mp4",
    ];
    let mut failed = 0;
    for i in 0..n {
        let url = format!("http://127.0.0.1:{port}{}", paths[i as usize % paths.len()]);
        if http("HEAD", &url, &[]).is_err() {
            failed += 1;
        }
    }
    (n, failed)
}

/// Clients that vanish: a third half-way through their request, the rest after a random part of
/// the segment they asked for.
fn vanishing(port: u16, n: u64) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut x: u64 = 0x9E37_79B9 ^ t;
                for _ in 0..n / 4 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { continue };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let req = format!("GET /live/demo/hi/{}.ts HTTP/1.1\r\nHost: x\r\n\r\n", x % 3);
                    if x.is_multiple_of(3) {
                        // Gone half-way through its request.
                        let _ = s.write_all(&req.as_bytes()[..req.len() / 2]);
                    } else {
                        // Gone after some of the 300 KB body.
                        let _ = s.write_all(req.as_bytes());
                        let mut buf = vec![0u8; (x % 200_000) as usize + 1];
                        let _ = s.read(&mut buf);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed)
}

#[test]
#[ignore = "a flood of a million requests: scripts/faults"]
fn a_million_requests_of_every_kind() {
    let (cql, ks) = fixture("flood");
    let h2 = free_port();
    let ng = Nginx::start(
        &cql.addr,
        &ks,
        2,
        &format!(
            "hls_dvr_cache_zone edge 64m; hls_dvr_max_in_flight 4096;\n\
             server {{ listen 127.0.0.1:{h2} http2; location /live/ {{ hls_dvr; hls_dvr_cache edge; }} }}"
        ),
        "hls_dvr_cache edge;",
    );
    ng.wait_ready("/live/demo/master.m3u8");
    std::fs::write(ng.dir.path().join("flood.lua"), LUA).unwrap();
    let warm = |secs: u32| {
        Command::new("wrk")
            .args(["-t2", "-c64", &format!("-d{secs}s"), "-s"])
            .arg(ng.dir.path().join("flood.lua"))
            .arg(ng.url("/"))
            .output()
            .unwrap()
    };
    warm(5);
    let before = private_kb(&ng);
    let t = Instant::now();
    // HTTP/1.1 of every kind, HTTP/2 streams, and clients vanishing mid-body, at once.
    let wrk = Command::new("wrk")
        .args(["-t2", "-c64", "-d40s", "-s"])
        .arg(ng.dir.path().join("flood.lua"))
        .arg(ng.url("/"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let h2load = Command::new("h2load")
        .args(["-n", "150000", "-c", "16", "-m", "10", "-t", "1"])
        .arg(format!("http://127.0.0.1:{h2}/live/demo/hi/index.m3u8"))
        .arg(format!("http://127.0.0.1:{h2}/live/demo/hi/1.ts"))
        .arg(format!("http://127.0.0.1:{h2}/live/nope/hi/1.ts"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let port = ng.port;
    let head_thread = std::thread::spawn(move || heads(port, 20_000));
    let vanished = vanishing(ng.port, 120_000);
    let (head_done, head_failed) = head_thread.join().unwrap();
    let wrk = String::from_utf8_lossy(&wrk.wait_with_output().unwrap().stdout).into_owned();
    let h2 = String::from_utf8_lossy(&h2load.wait_with_output().unwrap().stdout).into_owned();
    let wrk = WrkSummary::parse(&wrk);
    let mut total = wrk.requests + vanished + head_done;
    let (mut unanswered, mut slow) = (wrk.unanswered + head_failed, wrk.timeouts);
    let h2_done: u64 = h2
        .lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .and_then(|l| l.split(" total").next()?.parse().ok())
        .unwrap_or(0);
    total += h2_done;
    // Top up to a million with more of the mix.
    let mut more = 0;
    while total + more < 1_000_000 {
        let out = WrkSummary::parse(&String::from_utf8_lossy(&warm(20).stdout));
        more += out.requests;
        (unanswered, slow) = (unanswered + out.unanswered, slow + out.timeouts);
    }
    total += more;
    let after = private_kb(&ng);
    std::thread::sleep(Duration::from_secs(3));
    let settled = private_kb(&ng);
    println!(
        "| none: a flood | HTTP/1.1 mix (bad paths and queries, Range), {head_done} HEAD, {h2_done} over HTTP/2, {vanished} clients vanishing mid-body, in {:.0} s | {total} | {unanswered} unanswered (connection errors), {slow} slower than wrk's 2 s timeout | - | workers' private memory {} MB before, {} MB after, {} MB settled |",
        t.elapsed().as_secs_f64(),
        before / 1024,
        after / 1024,
        settled / 1024
    );
    let log = ng.error_log();
    assert!(total >= 1_000_000);
    assert_eq!(unanswered, 0, "requests without an answer");
    assert!(
        !log.contains("exited on signal") && !log.contains("[alert]"),
        "{}",
        log.lines().filter(|l| l.contains("signal") || l.contains("[alert]")).collect::<Vec<_>>().join("\n")
    );
    assert!(settled < before + 32 * 1024, "private memory grew from {before} KB to {settled} KB");
}

#[test]
#[ignore = "the workers under valgrind: scripts/faults"]
fn under_valgrind_no_invalid_read_or_write_in_the_module() {
    let (cql, ks) = fixture("valgrind");
    let dir = TempDir::new("valgrind");
    let port = free_port();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let conf = format!(
        "load_module {module};\nworker_processes 2;\nerror_log {d}/logs/error.log notice;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;\n\
         uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
         hls_dvr_cassandra {cql}; hls_dvr_keyspace {ks}; hls_dvr_timeout 10s; hls_dvr_cache_zone edge 16m;\n\
         server {{ listen 127.0.0.1:{port}; location /live/ {{ hls_dvr; }} location /cached/ {{ hls_dvr; hls_dvr_cache edge; }} }} }}\n",
        module = module_path().display(),
        d = dir.path().display(),
        cql = cql.addr,
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let vlog = dir.path().join("valgrind.%p.log");
    let _nginx = Proc(
        Command::new("valgrind")
            .args(["--tool=memcheck", "--trace-children=yes", "--num-callers=30", "--error-limit=no"])
            .arg(format!("--log-file={}", vlog.display()))
            .args(["nginx", "-p"])
            .arg(dir.path())
            .args(["-c", "nginx.conf", "-g", "daemon off;"])
            .spawn()
            .expect("valgrind (scripts/setup installs it)"),
    );
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    wait_for("nginx under valgrind", Duration::from_secs(120), || {
        http("GET", &url("/live/demo/hi/index.m3u8"), &[]).is_ok_and(|r| r.status == 200)
    });
    std::fs::write(
        dir.path().join("flood.lua"),
        LUA.replace("\"/live/", "\"/cached/").replace("\"/cached/demo/hi/index", "\"/live/demo/hi/index"),
    )
    .unwrap();
    let mut total = 0;
    let t = Instant::now();
    while total < 100_000 {
        let out = Command::new("wrk")
            .args(["-t2", "-c16", "-d30s", "-s"])
            .arg(dir.path().join("flood.lua"))
            .arg(url("/"))
            .output()
            .unwrap();
        total += WrkSummary::parse(&String::from_utf8_lossy(&out.stdout)).requests;
        total += vanishing(port, 400) + heads(port, 200).0;
    }
    let st =
        Command::new("nginx").args(["-p"]).arg(dir.path()).args(["-c", "nginx.conf", "-s", "quit"]).status().unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_secs(20));
    // Every process's report: invalid accesses whose stack passes through the module.
    let mut invalid = Vec::new();
    let mut reports = 0;
    for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if !name.starts_with("valgrind.") {
            continue;
        }
        reports += 1;
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        for block in text.split("\n==").collect::<Vec<_>>().join("\n==").split("Invalid ").skip(1) {
            let frames: String = block.lines().take(30).collect::<Vec<_>>().join("\n");
            if frames.contains("hls_dvr") {
                invalid.push(frames);
            }
        }
    }
    println!(
        "| none: the workers under valgrind memcheck | the same mix and vanishing clients, in {:.0} s | {total} | {} invalid reads or writes in the module ({reports} process reports) | - | - |",
        t.elapsed().as_secs_f64(),
        invalid.len()
    );
    assert!(reports >= 3, "valgrind reports of the master and both workers");
    assert!(invalid.is_empty(), "{}", invalid.join("\n----\n"));
}
