//! The module inside Debian's nginx, checked as a player would: playlists, segments, errors,
//! disconnects, reloads, two workers.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use hls_dvr_core::clock::now_ms;
use hls_dvr_store::Store;

struct Fixture {
    cql: Cql,
    ks: String,
    rt: tokio::runtime::Runtime,
    store: Store,
}

impl Fixture {
    /// A keyspace with `segments` segments of rendition `hi` of stream `demo`, stored in 64 KiB
    /// chunks so every segment spans several chunks.
    fn new(tag: &str, segments: i64, seg_len: usize) -> (Fixture, Vec<Bytes>) {
        let cql = Cql::start();
        let ks = keyspace(tag);
        let rt = rt();
        let store = schema_and_store(&cql, &ks, &rt).with_chunk_size(64 * 1024);
        let f = Fixture { cql, ks, rt, store };
        let data: Vec<Bytes> = (0..segments).map(|i| bytes_of(i as u64 + 1, seg_len + i as usize * 1000)).collect();
        let now = now_ms();
        for (i, d) in data.iter().enumerate() {
            let msn = i as i64;
            let mut e = entry(msn, now - (segments - msn) * 2000, d.len());
            (e.discontinuity, e.disc_seq) = (msn == 4, i64::from(msn >= 4));
            store_segment(&f.rt, &f.store, "demo", &e, d, &head_of("hi", &e, false));
        }
        (f, data)
    }
}

#[test]
fn serves_playlists_segments_and_clear_errors() {
    let (f, data) = Fixture::new("serve", 10, 150_000);
    let ng = Nginx::start(&f.cql.addr, &f.ks, 2, "hls_dvr_timeout 2s;", "hls_dvr_window 12s;");
    ng.wait_ready("/live/demo/master.m3u8");

    let m = get(&ng.url("/live/demo/master.m3u8"));
    assert_eq!(m.status, 200, "{}", m.text());
    assert_eq!(m.header("Content-Type"), Some("application/vnd.apple.mpegurl"));
    assert_eq!(m.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(m.header("Cache-Control"), Some("max-age=1"));
    let mp = master_playlist(&m.text());
    assert_eq!(mp.variants.len(), 1);
    assert_eq!(mp.variants[0].uri, "hi/index.m3u8");
    assert_eq!(mp.variants[0].bandwidth, 800_000);
    assert_eq!(mp.variants[0].resolution.map(|r| (r.width, r.height)), Some((640, 360)));

    // A 12 s window of 2 s segments: the newest 6, starting after the discontinuity.
    let p = get(&ng.url("/live/demo/hi/index.m3u8"));
    assert_eq!(p.status, 200);
    let pl = media_playlist(&p.text());
    assert_eq!(pl.media_sequence, 4);
    assert_eq!(pl.discontinuity_sequence, 1);
    assert_eq!(pl.target_duration, 2);
    assert!(pl.playlist_type.is_none() && !pl.end_list);
    assert_eq!(
        pl.segments.iter().map(|s| s.uri.as_str()).collect::<Vec<_>>(),
        ["4.ts", "5.ts", "6.ts", "7.ts", "8.ts", "9.ts"]
    );
    assert!(pl.segments[0].program_date_time.is_some());

    for (msn, want) in data.iter().enumerate().skip(4) {
        let r = get(&ng.url(&format!("/live/demo/hi/{msn}.ts")));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("video/mp2t"));
        assert_eq!(r.header("Cache-Control"), Some("public, max-age=86400, immutable"));
        assert_eq!(r.header("Content-Length").unwrap(), want.len().to_string());
        assert!(r.body == *want, "segment {msn} differs from what was stored");
    }

    // HEAD: same headers, no body.
    let h = http("HEAD", &ng.url("/live/demo/hi/5.ts"), &[]).unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.header("Content-Length").unwrap(), data[5].len().to_string());
    assert!(h.body.is_empty());
    let h = http("HEAD", &ng.url("/live/demo/hi/index.m3u8"), &[]).unwrap();
    assert_eq!((h.status, h.body.len()), (200, 0));

    // Ranges across chunk boundaries, suffix ranges, and past the end.
    let d = &data[7];
    for (spec, start, end) in [
        ("bytes=0-9", 0usize, 9usize),
        ("bytes=65530-65545", 65530, 65545),
        ("bytes=100000-", 100_000, d.len() - 1),
        ("bytes=-100", d.len() - 100, d.len() - 1),
        ("bytes=70000-140000", 70_000, 140_000),
    ] {
        let r = http("GET", &ng.url("/live/demo/hi/7.ts"), &[("Range", spec)]).unwrap();
        assert_eq!(r.status, 206, "{spec}");
        assert_eq!(r.header("Content-Range").unwrap(), format!("bytes {start}-{end}/{}", d.len()));
        assert!(r.body == d[start..=end], "{spec}: wrong bytes");
    }
    let r = http("GET", &ng.url("/live/demo/hi/7.ts"), &[("Range", "bytes=999999-")]).unwrap();
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range").unwrap(), format!("bytes */{}", d.len()));

    // Errors: unknown things 404, malformed 400, other methods 405; never cached.
    for (path, want) in [
        ("/live/nope/master.m3u8", 404),
        ("/live/demo/nope/index.m3u8", 404),
        ("/live/demo/hi/99.ts", 404),
        ("/live/demo/hi/init-0.mp4", 404),
        ("/live/demo/hi/abc.ts", 400),
        ("/live/demo/hi/1.exe", 400),
        ("/live/demo", 400),
        ("/live/de%20mo/master.m3u8", 400),
        ("/live/demo/hi/99999999999999999999.ts", 400),
    ] {
        let r = get(&ng.url(path));
        assert_eq!(r.status, want, "{path}");
        assert!(r.header("Cache-Control").is_none(), "{path} must not be cached");
        // Web players on other origins can read the error too.
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"), "{path}");
    }
    assert_eq!(http("POST", &ng.url("/live/demo/master.m3u8"), &[("Content-Length", "0")]).unwrap().status, 405);

    // CORS preflight.
    let o = http(
        "OPTIONS",
        &ng.url("/live/demo/hi/4.ts"),
        &[("Origin", "https://player.example"), ("Access-Control-Request-Method", "GET")],
    )
    .unwrap();
    assert_eq!(o.status, 204);
    assert_eq!(o.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(o.header("Access-Control-Allow-Methods").unwrap().contains("GET"));
    assert!(o.header("Access-Control-Allow-Headers").unwrap().contains("Range"));

    assert!(!ng.error_log().contains("[alert]"), "{}", ng.error_log());
    assert!(!ng.error_log().contains("exited on signal"), "{}", ng.error_log());
}

#[test]
fn store_outage_is_503_and_slow_store_is_504_within_the_timeout() {
    let (f, _) = Fixture::new("faults", 4, 10_000);
    let node = f.cql.proxy();
    let ng = Nginx::start(&node.addr(), &f.ks, 2, "hls_dvr_timeout 1s; hls_dvr_playlist_cache off;", "");
    ng.wait_ready("/live/demo/master.m3u8");
    assert_eq!(get(&ng.url("/live/demo/hi/index.m3u8")).status, 200);

    node.set_delay(Duration::from_secs(3));
    let t = Instant::now();
    let r = get(&ng.url("/live/demo/hi/index.m3u8"));
    // 504 (the module's 1 s timeout), not the 200 the node sends 3 s late.
    assert_eq!(r.status, 504, "{}", r.text());
    println!("504 after {} ms", t.elapsed().as_millis());
    let r = get(&ng.url("/live/demo/hi/1.ts"));
    assert_eq!(r.status, 504);
    node.set_delay(Duration::ZERO);

    node.set_down(true);
    let t = Instant::now();
    for path in ["/live/demo/hi/index.m3u8", "/live/demo/hi/2.ts", "/live/demo/master.m3u8"] {
        let r = get(&ng.url(path));
        assert!(r.status == 503 || r.status == 504, "{path}: {}", r.status);
        assert!(r.header("Cache-Control").is_none());
    }
    println!("three answers during the outage in {} ms", t.elapsed().as_millis());
    node.set_down(false);
    wait_for("recovery after the outage", Duration::from_secs(30), || {
        http("GET", &ng.url("/live/demo/hi/2.ts"), &[]).is_ok_and(|r| r.status == 200)
    });
    assert!(!ng.error_log().contains("exited on signal"));
}

#[test]
fn corrupt_store_data_is_an_error_not_a_truncated_segment() {
    let (f, data) = Fixture::new("corrupt", 2, 1000);
    // Rows written behind the store layer's back, as a crash or a bad tool would leave them.
    let session =
        f.rt.block_on(scylla::client::session_builder::SessionBuilder::new().known_node(&f.cql.addr).build()).unwrap();
    let insert = format!(
        "INSERT INTO {}.segment_chunks (stream, rendition, msn, chunk, size, chunks, chunk_size, data) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        f.ks
    );
    let row = |msn: i64, chunk: i32, size: i64, chunks: i32, cs: i32, d: Option<Vec<u8>>| {
        f.rt.block_on(session.query_unpaged(insert.as_str(), ("demo", "hi", msn, chunk, size, chunks, cs, d))).unwrap();
    };
    // 10: chunk 1 of 3 is missing. Headers are out before it is found: the connection is cut.
    row(10, 0, 150_000, 3, 65_536, Some(vec![1; 65_536]));
    row(10, 2, 150_000, 3, 65_536, Some(vec![3; 150_000 - 2 * 65_536]));
    // 11: chunk 0 holds fewer bytes than its metadata says.
    row(11, 0, 100, 1, 65_536, Some(vec![1; 50]));
    // 12: no data at all.
    row(12, 0, 100, 1, 65_536, None);
    // 13: metadata that cannot be (size beyond chunks * chunk_size).
    row(13, 0, 1_000_000, 1, 65_536, Some(vec![0; 65_536]));

    let ng = Nginx::start(&f.cql.addr, &f.ks, 1, "", "");
    ng.wait_ready("/live/demo/master.m3u8");
    match http("GET", &ng.url("/live/demo/hi/10.ts"), &[]) {
        Err(e) => assert!(e.to_string().contains("short body"), "{e}"),
        Ok(r) => panic!("a segment with a missing chunk was served whole: {} with {} bytes", r.status, r.body.len()),
    }
    for msn in [11, 12, 13] {
        let r = get(&ng.url(&format!("/live/demo/hi/{msn}.ts")));
        assert_eq!(r.status, 502, "segment {msn}");
    }
    // The worker is fine and good segments are still served.
    let r = get(&ng.url("/live/demo/hi/1.ts"));
    assert!(r.status == 200 && r.body == data[1]);
    let log = ng.error_log();
    assert!(log.contains("corrupt data in store"), "{log}");
    assert!(!log.contains("exited on signal"), "{log}");
}

#[test]
fn client_disconnects_mid_segment_do_not_hurt_the_worker() {
    let (f, data) = Fixture::new("abort", 2, 4 * 1024 * 1024);
    let node = f.cql.proxy();
    let ng = Nginx::start(&node.addr(), &f.ks, 2, "", "");
    ng.wait_ready("/live/demo/master.m3u8");
    node.set_delay(Duration::from_millis(5)); // stretch the 64-chunk stream out
    for i in 0..30 {
        let mut s = TcpStream::connect(("127.0.0.1", ng.port)).unwrap();
        write!(s, "GET /live/demo/hi/{}.ts HTTP/1.1\r\nHost: x\r\n\r\n", i % 2).unwrap();
        let mut buf = vec![0u8; 1 + (i * 7919) % 300_000];
        let _ = s.read_exact(&mut buf);
        drop(s); // mid-body
    }
    // Disconnect while the store is still working on the first chunk.
    for _ in 0..10 {
        let mut s = TcpStream::connect(("127.0.0.1", ng.port)).unwrap();
        write!(s, "GET /live/demo/hi/1.ts HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        drop(s);
    }
    node.set_delay(Duration::ZERO);
    wait_for("the segment once the node is fast again", Duration::from_secs(10), || {
        http("GET", &ng.url("/live/demo/hi/1.ts"), &[]).is_ok_and(|r| r.status == 200 && r.body == data[1])
    });
    let log = ng.error_log();
    assert!(!log.contains("exited on signal"), "a worker crashed:\n{log}");
    assert!(!log.contains("[alert]"), "{log}");
}

#[test]
fn reload_under_load_loses_no_request() {
    let (f, data) = Fixture::new("reload", 6, 300_000);
    let node = f.cql.proxy();
    let ng = Nginx::start(&node.addr(), &f.ks, 2, "", "");
    ng.wait_ready("/live/demo/master.m3u8");
    node.set_delay(Duration::from_millis(20)); // keep requests in flight across reloads
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let data = Arc::new(data);
    let port = ng.port;
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (stop, ok, data) = (stop.clone(), ok.clone(), data.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let msn = i % 6;
                    i += 1;
                    let (path, want): (String, Option<&Bytes>) = if i % 3 == 0 {
                        ("/live/demo/hi/index.m3u8".into(), None)
                    } else {
                        (format!("/live/demo/hi/{msn}.ts"), Some(&data[msn]))
                    };
                    match http("GET", &format!("http://127.0.0.1:{port}{path}"), &[]) {
                        Ok(r) if r.status == 200 && want.is_none_or(|w| r.body == *w) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failures.push(format!("{path}: {}", r.status)),
                        Err(e) => failures.push(format!("{path}: {e}")),
                    }
                }
                failures
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        ng.signal("reload");
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(
        failures.is_empty(),
        "{} requests failed across reloads: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(ok.load(Ordering::Relaxed) > 50, "too few requests: {}", ok.load(Ordering::Relaxed));
    assert!(!ng.error_log().contains("exited on signal"));
}

#[test]
fn reload_with_a_new_keyspace_window_and_contact_points_under_load() {
    // Two keyspaces with different histories, each reached through its own proxy.
    let (a, _) = Fixture::new("reloada", 10, 1000);
    let (b, _) = Fixture::new("reloadb", 30, 1000);
    let (pa, pb) = (a.cql.proxy(), b.cql.proxy());
    let ng = Nginx::start(&pa.addr(), &a.ks, 2, "", "hls_dvr_window 12s;");
    ng.wait_ready("/live/demo/master.m3u8");
    let first = media_playlist(&get(&ng.url("/live/demo/hi/index.m3u8")).text());
    assert_eq!((first.media_sequence, first.segments.len()), (4, 6));
    let stop = Arc::new(AtomicBool::new(false));
    let port = ng.port;
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let path = if i % 2 == 0 {
                        "/live/demo/hi/index.m3u8".to_string()
                    } else {
                        format!("/live/demo/hi/{}.ts", i % 10)
                    };
                    match http("GET", &format!("http://127.0.0.1:{port}{path}"), &[]) {
                        Ok(r) if r.status == 200 => {}
                        Ok(r) => failures.push(format!("{path}: {}", r.status)),
                        Err(e) => failures.push(format!("{path}: {e}")),
                    }
                }
                failures
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let through_b = pb.executes();
    ng.reconfigure(&pb.addr(), &b.ks, 2, "", "hls_dvr_window 20s;");
    // The new settings take effect: the other keyspace, window and contact point.
    wait_for("the new keyspace and window", Duration::from_secs(20), || {
        http("GET", &ng.url("/live/demo/hi/index.m3u8"), &[]).is_ok_and(|r| {
            r.status == 200 && {
                let pl = media_playlist(&r.text());
                pl.media_sequence == 20 && pl.segments.len() == 10
            }
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(
        failures.is_empty(),
        "{} requests failed across the reload: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(pb.executes() > through_b, "the new contact point is not used");
    assert!(!ng.error_log().contains("exited on signal"));
}

#[test]
fn two_workers_both_serve() {
    let (f, _) = Fixture::new("workers", 3, 1000);
    let ng = Nginx::start(&f.cql.addr, &f.ks, 2, "", "");
    ng.wait_ready("/live/demo/master.m3u8");
    // Each worker connects on its own; connections spread over both.
    let log_has_both = || {
        let log = ng.error_log();
        let pids: HashSet<&str> = log
            .lines()
            .filter(|l| l.contains("hls_dvr: connected to"))
            .filter_map(|l| l.split_whitespace().nth(3).and_then(|p| p.split('#').next()))
            .collect();
        pids.len() == 2
    };
    wait_for("both workers to connect", Duration::from_secs(20), log_has_both);
    for _ in 0..50 {
        assert_eq!(get(&ng.url("/live/demo/hi/index.m3u8")).status, 200);
    }
}

#[test]
fn http2_clients_that_vanish_mid_segment_do_not_hurt_the_worker() {
    let (f, data) = Fixture::new("h2", 2, 4 * 1024 * 1024);
    let h2_port = free_port();
    let node = f.cql.proxy();
    let ng = Nginx::start(
        &node.addr(),
        &f.ks,
        2,
        &format!("server {{ listen 127.0.0.1:{h2_port} http2; location /live/ {{ hls_dvr; }} }}"),
        "",
    );
    ng.wait_ready("/live/demo/master.m3u8");
    // 64 chunks: the stream takes a while.
    node.set_delay(Duration::from_millis(5));
    // Several streams per connection, the client giving up at different points (RST/close).
    let url = format!("http://127.0.0.1:{h2_port}/live/demo/hi/1.ts");
    let curls: Vec<_> = (0..12)
        .map(|i| {
            std::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "--http2-prior-knowledge", "--parallel", "--parallel-max", "3"])
                .args(["--max-time", &format!("0.{}", 1 + i % 5)])
                .args([&url, &url, &url])
                // curl prints a progress meter for --parallel even with -s.
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in curls {
        let _ = c.wait();
    }
    node.set_delay(Duration::ZERO);
    // HTTP/2 still serves whole segments afterwards, and so does HTTP/1.1.
    let out = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-w", "%{http_version} %{http_code}", "-o"])
        .arg(ng.dir.path().join("seg"))
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
    assert!(std::fs::read(ng.dir.path().join("seg")).unwrap() == data[1]);
    assert!(get(&ng.url("/live/demo/hi/0.ts")).body == data[0]);
    // Some HTTP/2 responses really were cut mid-body (bytes sent below the segment's size).
    let access = std::fs::read_to_string(ng.dir.path().join("logs/access.log")).unwrap();
    let cut = access
        .lines()
        .filter(|l| l.contains("/live/demo/hi/1.ts HTTP/2.0\" 200 "))
        .filter_map(|l| l.split("\" 200 ").nth(1)?.split_whitespace().next()?.parse::<usize>().ok())
        .filter(|&sent| sent > 0 && sent < data[1].len())
        .count();
    assert!(cut > 0, "no HTTP/2 response was cut mid-segment:\n{access}");
    let log = ng.error_log();
    assert!(!log.contains("exited on signal") && !log.contains("[alert]"), "{log}");
}
