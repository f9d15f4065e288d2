//! The shared cache of segments and playlists (`hls_dvr_cache_zone`): identical bytes from any
//! worker and after eviction, one store read however many requests arrive together, a zone that
//! holds what fits and serves the rest around itself, and a worker killed holding the zone's
//! lock. Store reads are counted by a proxy in front of Cassandra.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::proxy::Proxy;
use common::*;
use hls_dvr_core::clock::now_ms;

const KIB: usize = 1024;

/// Segments of stream `demo`, rendition `hi`, in 64 KiB chunks, and nginx reading them through a
/// counting proxy with a shared cache of `zone` (2 workers).
struct Edge {
    data: Vec<Bytes>,
    proxy: Proxy,
    ng: Nginx,
    _cql: Cql,
}

impl Edge {
    fn new(tag: &str, sizes: &[usize], zone: &str) -> Edge {
        let cql = Cql::start();
        let ks = keyspace(tag);
        let rt = rt();
        let store = schema_and_store(&cql, &ks, &rt).with_chunk_size(64 * KIB);
        let now = now_ms();
        let data: Vec<Bytes> = sizes.iter().enumerate().map(|(i, n)| bytes_of(i as u64 + 7, *n)).collect();
        for (i, d) in data.iter().enumerate() {
            let e = entry(i as i64, now - (sizes.len() - i) as i64 * 2000, d.len());
            store_segment(&rt, &store, "demo", &e, d, &head_of("hi", &e, false));
        }
        let proxy = cql.proxy();
        let ng = Nginx::start(
            &proxy.addr(),
            &ks,
            2,
            // Identical playlist requests within the cache time share one build: its longest, so that
            // twelve clients started on a busy machine all arrive within it.
            &format!("hls_dvr_cache_zone edge {zone}; hls_dvr_timeout 5s; hls_dvr_playlist_cache 5s;"),
            // A short window: a playlist build reads the head and two or three index buckets.
            "hls_dvr_cache edge; hls_dvr_window 30s;",
        );
        // Both workers connected (their start-up requests are done): counts are the tests' own.
        wait_for("both workers to connect", Duration::from_secs(20), || {
            ng.error_log().matches("hls_dvr: connected to").count() == 2
        });
        Edge { data, proxy, ng, _cql: cql }
    }

    fn segment(&self, msn: usize) -> Response {
        get(&self.ng.url(&format!("/live/demo/hi/{msn}.ts")))
    }

    /// Store requests while `f` runs.
    fn reads(&self, f: impl FnOnce()) -> u64 {
        let before = self.proxy.executes();
        f();
        self.proxy.executes() - before
    }
}

fn chunks(len: usize) -> u64 {
    len.div_ceil(64 * KIB) as u64
}

#[test]
fn cached_segments_are_identical_from_every_worker_and_after_eviction() {
    // Six segments of 600-700 KB in a 2 MiB zone: two or three fit at a time.
    let sizes: Vec<usize> = (0..6).map(|i| 600 * KIB + i * 20_000).collect();
    let edge = Edge::new("cache", &sizes, "2m");
    // First pass: every segment is read from the store once (all its chunks).
    for (i, d) in edge.data.iter().enumerate() {
        let n = edge.reads(|| {
            let r = edge.segment(i);
            assert_eq!(r.status, 200);
            assert!(r.body == *d, "segment {i} differs");
        });
        assert_eq!(n, chunks(d.len()), "segment {i}: one read per chunk");
    }
    // The newest is cached: many requests (on fresh connections, so both workers serve) read
    // nothing, and get the same bytes, ranges included.
    let last = edge.data.len() - 1;
    let d = &edge.data[last];
    let n = edge.reads(|| {
        for _ in 0..20 {
            assert!(edge.segment(last).body == *d);
        }
        let r = http("GET", &edge.ng.url(&format!("/live/demo/hi/{last}.ts")), &[("Range", "bytes=100000-200000")])
            .unwrap();
        assert_eq!(r.status, 206);
        assert!(r.body == d[100_000..=200_000]);
        let h = http("HEAD", &edge.ng.url(&format!("/live/demo/hi/{last}.ts")), &[]).unwrap();
        assert_eq!(h.header("Content-Length"), Some(d.len().to_string().as_str()));
        assert!(h.body.is_empty());
    });
    assert_eq!(n, 0, "cached requests read the store");
    // The oldest left the zone to make room: read again, the same bytes.
    let n = edge.reads(|| assert!(edge.segment(0).body == edge.data[0]));
    assert_eq!(n, chunks(edge.data[0].len()), "segment 0 should have been evicted");
    let log = edge.ng.error_log();
    assert!(!log.contains("[alert]") && !log.contains("[crit]") && !log.contains("exited on signal"), "{log}");
}

#[test]
fn requests_arriving_together_read_the_store_once() {
    let edge = Edge::new("coalesce", &[300 * KIB, 300 * KIB], "8m");
    // A slow store: every request arrives while the first read is on its way.
    edge.proxy.set_delay(Duration::from_millis(400));
    let ng = Arc::new(edge.ng.url("/live/demo/hi/1.ts"));
    let n = edge.reads(|| {
        let clients: Vec<_> = (0..24)
            .map(|_| {
                let url = ng.clone();
                std::thread::spawn(move || get(&url).body)
            })
            .collect();
        for c in clients {
            assert!(c.join().unwrap() == edge.data[1]);
        }
    });
    assert_eq!(n, chunks(edge.data[1].len()), "24 requests together, across two workers");
    // Playlists too: identical requests within the cache time share one build.
    edge.proxy.set_delay(Duration::ZERO);
    let url = Arc::new(edge.ng.url("/live/demo/hi/index.m3u8?delay=0"));
    let n = edge.reads(|| {
        let clients: Vec<_> = (0..12)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || get(&url).status)
            })
            .collect();
        assert!(clients.into_iter().all(|c| c.join().unwrap() == 200));
    });
    // One build for all twelve: the head, the index buckets of the window plus a bucket of slack
    // (a 30 s window spans two buckets, or three when it starts in a bucket's last 30 s), and the
    // markers. Two builds would read at least 2 x 4.
    assert!(n <= 5, "{n} store requests for 12 identical playlist requests");
}

#[test]
fn a_segment_larger_than_the_zone_is_served_around_it() {
    let edge = Edge::new("toolarge", &[1536 * KIB, 100 * KIB], "1m");
    for _ in 0..2 {
        let r = edge.segment(0);
        assert!(r.status == 200 && r.body == edge.data[0]);
    }
    // The small one still fits, and is then served from the zone.
    assert!(edge.segment(1).body == edge.data[1]);
    assert_eq!(edge.reads(|| assert!(edge.segment(1).body == edge.data[1])), 0);
}

#[test]
fn a_worker_killed_holding_the_zone_lock_does_not_wedge_the_others() {
    let edge = Edge::new("lock", &[200 * KIB; 4], "4m");
    assert!(edge.segment(0).body == edge.data[0]);
    let pid = std::fs::read_to_string(edge.ng.dir.path().join("nginx.pid")).unwrap();
    let workers = String::from_utf8(Command::new("pgrep").args(["-P", pid.trim()]).output().unwrap().stdout).unwrap();
    let victim = workers.lines().next().expect("a worker").to_string();
    // gdb stops the worker as it is about to release the zone's lock, and kills it there.
    // No core file from gdb or its victim, and none in the source tree: a core limit of 0, and
    // nginx's own folder as the working directory.
    let mut gdb = Command::new("sh")
        .args(["-c", "ulimit -c 0 && exec gdb \"$@\"", "gdb", "-q", "-batch", "-p", &victim])
        .current_dir(edge.ng.dir.path())
        .args(["-ex", "break ngx_shmtx_unlock", "-ex", "continue", "-ex", "signal SIGKILL"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gdb (scripts/setup installs it)");
    // Requests until the victim, attached and continued, serves one (whichever worker accepts).
    let url = edge.ng.url("/live/demo/hi/1.ts");
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let killed = loop {
        let _ = http("GET", &url, &[]);
        if matches!(gdb.try_wait(), Ok(Some(_))) {
            break true;
        }
        if std::time::Instant::now() > until {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = gdb.kill();
    let out = gdb.wait_with_output().unwrap();
    assert!(killed, "the worker never took the lock: {}", String::from_utf8_lossy(&out.stdout));
    // The master released the lock and started a new worker: every request is answered.
    wait_for("the master to notice", Duration::from_secs(10), || edge.ng.error_log().contains("was locked by"));
    for i in 0..4 {
        for _ in 0..5 {
            let r = edge.segment(i);
            assert!(r.status == 200 && r.body == edge.data[i], "segment {i} after the kill: {}", r.status);
        }
    }
    let log = edge.ng.error_log();
    assert!(log.contains(&format!("shared memory zone \"edge\" was locked by {victim}")), "{log}");
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.contains("locked by") || l.contains("exited on signal"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
