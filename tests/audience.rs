//! Who is watching, end to end: two edges (nginx with the module, `hls_dvr_sessions on`) count
//! viewers of one stream in a real Cassandra, and `hls_dvr_stats` answers what both counted.
//! Whole minutes are real minutes here, so the test takes about four of them.
//!
//! - Session ids: a multivariant playlist without one gets a new one, on every URI it and the
//!   media playlists list, sent `private`; cached bodies stay without ids.
//! - Counting: distinct viewers across both edges (a viewer on both counts once), new sessions,
//!   watch time from the segments' durations, bytes; made-up ids counted apart.
//! - An edge killed mid-minute loses that minute and nothing before it; restarted under the
//!   same name, it counts again, and the hour's unique viewers are the union.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use hls_dvr_core::clock::now_ms;

const STREAM: &str = "debate";
const SEGMENT_BYTES: usize = 20_000;

/// A live stream of two renditions, 2 s segments up to now.
fn fill(cql: &Cql, ks: &str) {
    let rt = rt();
    let store = schema_and_store(cql, ks, &rt);
    let now = now_ms();
    for rendition in ["hi", "lo"] {
        let mut last = None;
        for msn in 0..30i64 {
            let e = entry(msn, now - (30 - msn) * 2000, SEGMENT_BYTES);
            let data = bytes_of(msn as u64, SEGMENT_BYTES);
            let head = head_of(rendition, &e, false);
            store_segment(&rt, &store, STREAM, &e, &data, &head);
            last = Some(e);
        }
        assert!(last.is_some());
    }
}

/// An edge named `name`, its statistics, metrics and statistics page on their own address;
/// playlists come from the shared cache zone (so a cached body is shared by viewers with
/// different ids).
fn edge(cql: &Cql, ks: &str, name: &str, dir: &Path, stats_port: u16) -> Nginx {
    let http = format!(
        "hls_dvr_edge_name {name}; hls_dvr_sessions on; hls_dvr_session_secret {d}/session.key; \
         hls_dvr_cache_zone z 8m; \
         server {{ listen 127.0.0.1:{stats_port}; location = /stats {{ hls_dvr_stats; }} \
         location = /metrics {{ hls_dvr_metrics; }} location /page/ {{ alias {d}/page/; \
         types {{ text/html html; application/javascript js; text/css css; }} }} }}",
        d = dir.display()
    );
    Nginx::start(&cql.addr, ks, 2, &http, "hls_dvr_cache z;")
}

/// What a viewer did, as the test counts it.
#[derive(Default)]
struct Tally {
    sessions: BTreeSet<String>,
    new_sessions: i64,
    segments: i64,
    body_bytes: usize,
    requests: usize,
}

/// One viewer: the multivariant playlist (getting an id unless it has one), a media playlist
/// and its last two segments, all with the id. Returns the id.
fn watch(ng: &Nginx, id: Option<&str>, rendition: &str, t: &mut Tally) -> String {
    let with = |path: &str, id: Option<&str>| match id {
        Some(id) => format!("{path}?hls_session={id}"),
        None => path.to_string(),
    };
    let master = get(&ng.url(&with(&format!("/live/{STREAM}/master.m3u8"), id)));
    assert_eq!(master.status, 200, "{}", master.text());
    t.requests += 1;
    t.body_bytes += master.body.len();
    let text = master.text();
    let listed: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let id = match id {
        Some(id) => id.to_string(),
        None => {
            t.new_sessions += 1;
            listed[0].split("hls_session=").nth(1).expect("an id on the variant URI").to_string()
        }
    };
    assert!(listed.iter().all(|l| l.ends_with(&format!("hls_session={id}"))), "{text}");
    assert_eq!(master.header("Cache-Control"), Some("private, max-age=1"));
    let media = get(&ng.url(&format!("/live/{STREAM}/{rendition}/index.m3u8?hls_session={id}")));
    assert_eq!(media.status, 200);
    t.requests += 1;
    t.body_bytes += media.body.len();
    let text = media.text();
    let segments: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert!(segments.iter().all(|l| l.ends_with(&format!("?hls_session={id}"))), "{text}");
    // The last two segments: the first as hls.js asks, the second as ffmpeg does (`Range:
    // bytes=0-`, answered 206 with the whole segment): both count as watched.
    let last = &segments[segments.len() - 2..];
    for (uri, range) in last.iter().zip([None, Some("bytes=0-")]) {
        let url = ng.url(&format!("/live/{STREAM}/{rendition}/{uri}"));
        let headers: Vec<(&str, &str)> = range.map(|r| ("Range", r)).into_iter().collect();
        let seg = http("GET", &url, &headers).unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = if range.is_some() { 206 } else { 200 };
        assert_eq!((seg.status, seg.body.len()), (status, SEGMENT_BYTES));
        t.requests += 1;
        t.segments += 1;
        t.body_bytes += seg.body.len();
    }
    t.sessions.insert(id.clone());
    id
}

/// A figure from a sketch: within one viewer (or 2 %) of the exact count.
fn near(v: &serde_json::Value, want: f64, point: &serde_json::Value) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v} in {point}"));
    assert!((got - want).abs() <= (want * 0.02).max(1.0), "{got} for {want} in {point}");
}

fn stats(port: u16, query: &str) -> serde_json::Value {
    let r = get(&format!("http://127.0.0.1:{port}/stats?{query}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

/// Waits until the wall clock is `secs` seconds into a minute that has at least `room` seconds
/// left, and returns that minute's start (ms).
fn at_second(secs: i64, room: i64) -> i64 {
    loop {
        let now = now_ms();
        let into = now.rem_euclid(60_000);
        if into >= secs * 1000 && into <= (60 - room) * 1000 {
            return now - into;
        }
        let wait = if into < secs * 1000 { secs * 1000 - into } else { 60_000 - into + secs * 1000 };
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
}

/// Waits for second `secs` of the minute after the one starting at `minute`; returns its start.
fn next_minute(minute: i64, secs: i64) -> i64 {
    let target = minute + 60_000 + secs * 1000;
    let now = now_ms();
    if now < target {
        std::thread::sleep(Duration::from_millis((target - now) as u64));
    }
    minute + 60_000
}

/// Kills nginx's master and workers at once, as a crash or a power cut would: nothing flushes.
fn kill_hard(ng: &Nginx) {
    let master = ng.master.0.id().to_string();
    // Stopped first: a running master would start new workers in place of the killed ones.
    let run = |args: &[&str]| assert!(Command::new(args[0]).args(&args[1..]).status().unwrap().success(), "{args:?}");
    run(&["kill", "-STOP", &master]);
    run(&["pkill", "-KILL", "-P", &master]);
    run(&["kill", "-KILL", &master]);
}

#[test]
fn two_edges_count_viewers_into_one_keyspace() {
    let cql = Cql::start();
    let ks = keyspace("audience");
    fill(&cql, &ks);
    let dir = TempDir::new("audience");
    std::fs::write(dir.path().join("session.key"), "a site secret of some length\n").unwrap();
    stats_page(&dir.path().join("page"));
    let (stats_a, stats_b) = (free_port(), free_port());
    let a = edge(&cql, &ks, "edge-a", dir.path(), stats_a);
    let b = edge(&cql, &ks, "edge-b", dir.path(), stats_b);
    // Ready checks ask for a stream that is not there: a 404 counts no viewer.
    a.wait_ready("/live/none/master.m3u8");
    b.wait_ready("/live/none/master.m3u8");

    // Minute m0: 50 viewers on a, 10 of them also on b, and 20 more on b; 5 made-up ids.
    let m0 = at_second(3, 25);
    let mut t0 = Tally::default();
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(watch(&a, None, if i % 2 == 0 { "hi" } else { "lo" }, &mut t0));
    }
    for id in &ids[40..] {
        watch(&b, Some(id), "hi", &mut t0);
    }
    for _ in 0..20 {
        watch(&b, None, "lo", &mut t0);
    }
    // Two viewers share nothing: the second master had a different id.
    assert_eq!(t0.sessions.len(), 70);
    let mut forged_bytes = 0;
    for i in 0..5 {
        let forged = format!("{:016x}{:016x}", 0xdead_0000u64 + i, 0u64);
        let r = get(&a.url(&format!("/live/{STREAM}/hi/index.m3u8?hls_session={forged}")));
        assert_eq!(r.status, 200);
        assert!(r.text().contains(&format!("?hls_session={forged}")));
        forged_bytes += r.body.len();
    }
    assert!(now_ms() < m0 + 60_000, "minute m0's visits took over a minute");

    // Minute m1: 3 new viewers on a; 10 on b, then b dies in the middle of the minute (m0 was
    // sealed and written a few seconds after it ended).
    let m1 = next_minute(m0, 15);
    let mut t1 = Tally::default();
    for _ in 0..3 {
        watch(&a, None, "hi", &mut t1);
    }
    for _ in 0..10 {
        watch(&b, None, "hi", &mut Tally::default());
    }
    kill_hard(&b);
    drop(b);
    // Restarted under the same name, it counts 5 viewers in minute m2.
    let b = edge(&cql, &ks, "edge-b", dir.path(), stats_b);
    b.wait_ready("/live/none/master.m3u8");
    assert!(now_ms() < m1 + 60_000, "restarting the edge took over a minute");
    let m2 = next_minute(m1, 2);
    let mut t2 = Tally::default();
    for _ in 0..5 {
        watch(&b, None, "lo", &mut t2);
    }

    // m2 is readable once sealed (its end and a grace) and written.
    let q = format!("stream={STREAM}&start={}&end={}&step=60", m0 / 1000, (m2 + 59_000) / 1000);
    let mut points = Vec::new();
    wait_for("minute m2 in the statistics", Duration::from_secs(80), || {
        let doc = stats(stats_a, &q);
        points = doc["points"].as_array().unwrap().clone();
        points.iter().any(|p| p["t_ms"].as_i64() == Some(m2))
    });
    let doc = stats(stats_b, &q);
    assert_eq!(doc["stream"], STREAM);
    assert_eq!(doc["step"], 60);
    assert_eq!(doc["points"].as_array().unwrap(), &points, "both edges answer the same");
    let point = |m: i64| points.iter().find(|p| p["t_ms"].as_i64() == Some(m)).unwrap_or_else(|| panic!("{m}"));

    // m0. Distinct counts come from sketches: two of 70 viewers may share a register (about one
    // run in seven), so they are checked to within one viewer.
    let p0 = point(m0);
    near(&p0["viewers"], 70.0, p0);
    near(&p0["unique_viewers"], 70.0, p0);
    near(&p0["peak_viewers"], 70.0, p0);
    assert_eq!(p0["new_sessions"], t0.new_sessions, "{p0}");
    near(&p0["forged_sessions"], 5.0, p0);
    // Every segment is 2 s long: media time delivered.
    assert_eq!(p0["watch_seconds"], (t0.segments * 2) as f64, "{p0}");
    // Bytes sent include response headers: more than the bodies, less than 1 KB a request more.
    let bytes = p0["bytes"].as_u64().unwrap() as usize;
    let bodies = t0.body_bytes + forged_bytes;
    assert!(bytes > bodies && bytes < bodies + 1000 * (t0.requests + 5), "{bytes} {p0}");
    near(&p0["live"], 70.0, p0);
    assert_eq!((p0["shifted"].as_f64(), p0["clip"].as_f64()), (Some(0.0), Some(0.0)));
    // hi: a's 25 even viewers, and on b the five odd ones of 40..49 (the even ones were counted).
    near(&p0["renditions"]["hi"], 30.0, p0);
    // lo: a's 25 odd viewers and b's 20.
    near(&p0["renditions"]["lo"], 45.0, p0);

    // m1: only a's three; b's ten died with it. m2: b's five.
    let p1 = point(m1);
    near(&p1["viewers"], 3.0, p1);
    assert_eq!(p1["new_sessions"], 3, "{p1}");
    let p2 = point(m2);
    near(&p2["viewers"], 5.0, p2);
    assert_eq!(p2["new_sessions"], 5, "{p2}");

    // Hours and days: unique viewers are the union of every row of both edges (b's two rows,
    // before and after its restart, included): 70 + 3 + 5, the dead minute's 10 lost.
    let day = format!("stream={STREAM}&start={}&end={}&step=86400", m0 / 1000, (m2 + 59_000) / 1000);
    let doc = stats(stats_a, &day);
    let days = doc["points"].as_array().unwrap();
    if days.len() == 1 {
        near(&days[0]["unique_viewers"], 78.0, &days[0]);
        // Hour rows add each edge's minute counts: the 10 viewers on both edges in m0 count on
        // each there (minute points merge them, as above).
        near(&days[0]["peak_viewers"], 80.0, &days[0]);
        assert_eq!(days[0]["new_sessions"], t0.new_sessions + 3 + 5, "{}", days[0]);
        near(&days[0]["forged_sessions"], 5.0, &days[0]);
    } else {
        // The minutes straddle midnight (UTC): each day has its own.
        let unique: i64 = days.iter().map(|d| d["unique_viewers"].as_i64().unwrap()).sum();
        assert!(unique >= 78, "{doc}");
    }

    // Without a stream: each stream's viewers in the last whole minute (m2's, or a later empty one).
    let now = stats(stats_a, "");
    let streams = now["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{now}");
    assert_eq!(streams[0]["stream"], STREAM);

    // The gauge: viewers of the last sealed minute on this edge; the rows written.
    let metrics = get(&format!("http://127.0.0.1:{stats_b}/metrics")).text();
    assert!(metrics.contains("hls_dvr_audience_rows_total"), "{metrics}");
    assert!(metrics.contains("hls_dvr_viewers{stream=\"debate\"}"), "{metrics}");

    // Bad queries: 400 with the reason.
    for (query, why) in
        [("stream=debate&step=7", "expected 60, 3600 or 86400"), ("stream=debate&start=-864000", "use a longer step")]
    {
        let r = get(&format!("http://127.0.0.1:{stats_a}/stats?{query}"));
        assert_eq!(r.status, 400, "{query}");
        assert!(r.text().contains(why), "{query}: {}", r.text());
    }
    assert_eq!((t1.sessions.len(), t2.sessions.len()), (3, 5));

    // The statistics page in Chromium draws the series: three charts, each well painted, the
    // peak the JSON's. Its screenshot is kept in target/ for a look.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/stats-page.png");
    let page = format!("http://127.0.0.1:{stats_a}/page/stats.html?stream={STREAM}&range=3600,60");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/stats.mjs");
    let out = Command::new("node").arg(&script).arg(&page).arg(&shot).output().expect("node");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    let peak = points.iter().filter_map(|p| p["peak_viewers"].as_u64()).max().unwrap().to_string();
    assert_eq!(
        (r["drawn"].as_str(), r["peak"].as_str(), r["renditions"].as_str()),
        (Some("3"), Some(peak.as_str()), Some("hi,lo")),
        "{r}"
    );
    assert!(r["points"].as_str().unwrap().parse::<usize>().unwrap() >= 3, "{r}");
    assert_eq!(r["legendsBelow"], true, "uPlot's stylesheet not applied: {r}");
    let painted: Vec<u64> = r["painted"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
    assert!(painted.len() == 3 && painted.iter().all(|p| *p > 2000), "{r}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
}

/// The statistics page and its charting library, as the package and the demo install them.
fn stats_page(to: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(to).unwrap();
    let uplot = root.join("tests/browser/node_modules/uplot/dist");
    for (from, name) in [
        (root.join("nginx-conf/player/stats.html"), "stats.html"),
        (uplot.join("uPlot.iife.min.js"), "uPlot.iife.min.js"),
        (uplot.join("uPlot.min.css"), "uPlot.min.css"),
    ] {
        std::fs::copy(&from, to.join(name))
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/setup installs it)", from.display()));
    }
}
