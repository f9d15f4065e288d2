//! What an operator watches and controls: the edge's Prometheus metrics (summed over workers),
//! the status document, the log variables, signed URLs behind nginx's own `secure_link`, and the
//! uploader's metrics. Metrics are read with the Prometheus project's own parser.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hls_dvr_core::clock::now_ms;
use hls_dvr_store::Store;

/// Samples of a Prometheus text: `name{k=v,...}` (labels sorted) to value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/prometheus.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup installs it and python3-prometheus-client)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the text:\n{}\n{text}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let (name, labels, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            (format!("{name}{{{labels}}}"), value.parse::<f64>().unwrap())
        })
        .collect()
}

fn scrape(url: &str) -> HashMap<String, f64> {
    let r = get(url);
    assert_eq!(r.status, 200, "{url}: {}", r.text());
    assert_eq!(r.header("Content-Type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    parse_metrics(&r.text())
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

struct Stored {
    cql: Cql,
    ks: String,
    rt: tokio::runtime::Runtime,
    store: Store,
}

impl Stored {
    /// `segments` segments of rendition `hi` of each stream, 2 s apart up to now.
    fn new(tag: &str, streams: &[(&str, i64)]) -> (Stored, HashMap<(String, i64), Bytes>) {
        let cql = Cql::start();
        let ks = keyspace(tag);
        let rt = rt();
        let store = schema_and_store(&cql, &ks, &rt);
        let mut data = HashMap::new();
        let now = now_ms();
        for (si, (stream, segments)) in streams.iter().enumerate() {
            for msn in 0..*segments {
                let d = bytes_of((si as u64) << 32 | msn as u64, 40_000 + msn as usize * 100);
                let e = entry(msn, now - (segments - msn) * 2000, d.len());
                store_segment(&rt, &store, stream, &e, &d, &head_of("hi", &e, false));
                data.insert((stream.to_string(), msn), d);
            }
        }
        (Stored { cql, ks, rt, store }, data)
    }
}

#[test]
fn metrics_status_and_log_variables_follow_the_requests_per_stream() {
    let (s, data) = Stored::new("observe", &[("news", 10), ("sport", 5)]);
    let logs = TempDir::new("observe-logs");
    let ops_port = free_port();
    let http_extra = format!(
        "hls_dvr_cache_zone edge 16m;\n\
         log_format dvr '$hls_dvr_stream|$hls_dvr_rendition|$status|$hls_dvr_cache|$hls_dvr_store_ms|$request_uri';\n\
         server {{ listen 127.0.0.1:{ops_port};\n\
           location = /metrics {{ hls_dvr_metrics; }}\n\
           location = /status {{ hls_dvr_status; }} }}"
    );
    let loc_extra = format!("hls_dvr_cache edge; access_log {}/dvr.log dvr;", logs.path().display());
    let ng = Nginx::start(&s.cql.addr, &s.ks, 2, &http_extra, &loc_extra);
    ng.wait_ready("/live/news/master.m3u8");
    let metrics_url = format!("http://127.0.0.1:{ops_port}/metrics");
    let before = scrape(&metrics_url);

    for _ in 0..3 {
        assert_eq!(get(&ng.url("/live/news/hi/index.m3u8")).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(&ng.url("/live/sport/master.m3u8")).status, 200);
    }
    for _ in 0..3 {
        let r = get(&ng.url("/live/news/hi/3.ts"));
        assert_eq!((r.status, Bytes::from(r.body)), (200, data[&("news".to_string(), 3)].clone()));
    }
    assert_eq!(get(&ng.url("/live/news/hi/99.ts")).status, 404);
    assert_eq!(get(&ng.url("/live/news/hi/abc.ts")).status, 400);

    // Requests are counted once logged, just after their last byte: wait for the last one.
    let key = |name: &str, labels: &str| format!("{name}{{{labels}}}");
    let req = |kind: &str, status: u16, stream: &str, rendition: &str| {
        key("hls_dvr_requests_total", &format!("kind={kind},rendition={rendition},status={status},stream={stream}"))
    };
    let mut after = HashMap::new();
    wait_for("the bad path to be counted", Duration::from_secs(5), || {
        after = scrape(&metrics_url);
        value(&after, &req("invalid", 400, "", "")) > value(&before, &req("invalid", 400, "", ""))
    });
    let delta = |k: &str| value(&after, k) - value(&before, k);
    assert_eq!(delta(&req("media", 200, "news", "hi")), 3.0);
    assert_eq!(delta(&req("master", 200, "sport", "")), 2.0);
    assert_eq!(delta(&req("segment", 200, "news", "hi")), 3.0);
    assert_eq!(delta(&req("segment", 404, "news", "hi")), 1.0);
    assert_eq!(delta(&req("invalid", 400, "", "")), 1.0);
    assert_eq!(delta(&req("media", 200, "sport", "hi")), 0.0);
    let seg_len = data[&("news".to_string(), 3)].len() as f64;
    assert!(delta(&key("hls_dvr_sent_bytes_total", "kind=segment,rendition=hi,stream=news")) >= 3.0 * seg_len);
    // One fill from the store, then two answers from the zone (whichever worker took them); the
    // missing segment is a miss too.
    assert_eq!(delta(&key("hls_dvr_cache_misses_total", "content=segment")), 2.0);
    assert_eq!(delta(&key("hls_dvr_cache_hits_total", "content=segment")), 2.0);
    assert_eq!(delta(&key("hls_dvr_cache_sent_bytes_total", "content=segment")), 2.0 * seg_len);
    assert!(delta(&key("hls_dvr_store_read_seconds_count", "query=chunk")) >= 1.0);
    assert!(value(&after, &key("hls_dvr_store_read_seconds_bucket", "le=+Inf,query=head")) >= 1.0);
    // Every kind is exposed; none occurred during these requests (a node just started may time
    // out before, while nginx waits to be ready).
    for kind in ["timeout", "unavailable", "corrupt", "invalid"] {
        let k = key("hls_dvr_store_errors_total", &format!("kind={kind}"));
        assert!(after.contains_key(&k), "{k} missing");
        assert_eq!(delta(&k), 0.0, "{k}");
    }

    // A blocked reload shows in the gauge until its segment arrives.
    let blocked = key("hls_dvr_blocked_reloads", "");
    let url = ng.url("/live/news/hi/index.m3u8?_HLS_msn=10");
    let waiter = std::thread::spawn(move || get(&url));
    wait_for("the blocked reload in the gauge", Duration::from_secs(5), || {
        value(&scrape(&metrics_url), &blocked) == 1.0
    });
    let e = entry(10, now_ms() - 1000, 1000);
    store_segment(&s.rt, &s.store, "news", &e, &bytes_of(99, 1000), &head_of("hi", &e, false));
    let r = waiter.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\n10.ts\n"), "{}", r.text());
    wait_for("the gauge back to 0", Duration::from_secs(5), || value(&scrape(&metrics_url), &blocked) == 0.0);

    // The access log's variables.
    let log = std::fs::read_to_string(logs.path().join("dvr.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let miss = lines.iter().find(|l| l.starts_with("news|hi|200|MISS|") && l.ends_with("|/live/news/hi/3.ts"));
    let store_ms: u64 =
        miss.unwrap_or_else(|| panic!("no MISS line in\n{log}")).split('|').nth(4).unwrap().parse().unwrap();
    assert!(store_ms < 2000, "{store_ms}");
    assert_eq!(lines.iter().filter(|l| **l == "news|hi|200|HIT|-|/live/news/hi/3.ts").count(), 2, "{log}");
    assert!(lines.contains(&"-|-|400|-|-|/live/news/hi/abc.ts"), "{log}");
    assert!(lines.iter().any(|l| l.starts_with("sport|-|200|") && l.ends_with("|/live/sport/master.m3u8")), "{log}");

    // The status document.
    let st = get(&format!("http://127.0.0.1:{ops_port}/status"));
    assert_eq!(st.status, 200);
    assert_eq!(st.header("Content-Type"), Some("application/json"));
    let summary = Command::new("/usr/bin/python3")
        .args(["-c", "import json,sys\nd=json.load(sys.stdin)\nfor s in d['streams']:\n for r in s['renditions']:\n  print(s['stream'], r['rendition'], r['newest_msn'], r['oldest_msn'], r['behind_live_s'] < 30, r['ended'])"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&st.body)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(summary.status.success(), "not JSON: {}", st.text());
    assert_eq!(String::from_utf8_lossy(&summary.stdout), "news hi 10 0 True False\nsport hi 4 0 True False\n");
}

/// `secure_link_md5`'s token: MD5, base64url without padding.
fn token(expires: i64, stream: &str) -> String {
    let digest =
        openssl::hash::hash(openssl::hash::MessageDigest::md5(), format!("{expires}{stream} s3cret").as_bytes())
            .unwrap();
    openssl::base64::encode_block(&digest).replace('+', "-").replace('/', "_").trim_end_matches('=').to_string()
}

#[test]
fn signed_playlists_keep_their_segments_signed() {
    let (s, _) = Stored::new("signed", &[("news", 6), ("sport", 6)]);
    let plain_port = free_port();
    // One token per stream and expiry: every playlist and segment of the stream takes it.
    let loc_extra = "secure_link $arg_md5,$arg_expires; \
                     secure_link_md5 \"$secure_link_expires$hls_dvr_stream s3cret\"; \
                     if ($secure_link != \"1\") { return 403; }";
    let http_extra =
        format!("server {{ listen 127.0.0.1:{plain_port}; location /plain/ {{ hls_dvr; hls_dvr_pass_args off; }} }}");
    let ng = Nginx::start(&s.cql.addr, &s.ks, 1, &http_extra, loc_extra);
    let exp = now_ms() / 1000 + 3600;
    let good = format!("md5={}&expires={exp}", token(exp, "news"));
    wait_for("nginx to reach the store", Duration::from_secs(20), || {
        http("GET", &ng.url(&format!("/live/news/master.m3u8?{good}")), &[]).is_ok_and(|r| r.status == 200)
    });

    let old = now_ms() / 1000 - 10;
    for (what, path) in [
        ("no token", "/live/news/master.m3u8".to_string()),
        ("a wrong token", format!("/live/news/master.m3u8?md5={}&expires={exp}", token(exp + 1, "news"))),
        ("an expired token", format!("/live/news/master.m3u8?md5={}&expires={old}", token(old, "news"))),
        ("another stream's token", format!("/live/sport/master.m3u8?{good}")),
        ("a bare segment", "/live/news/hi/2.ts".to_string()),
    ] {
        assert_eq!(get(&ng.url(&path)).status, 403, "{what}");
    }

    let master = get(&ng.url(&format!("/live/news/master.m3u8?{good}")));
    assert_eq!(master.status, 200);
    let variant = master_playlist(&master.text()).variants[0].uri.clone();
    assert_eq!(variant, format!("hi/index.m3u8?{good}"));
    let media = get(&ng.url(&format!("/live/news/{variant}")));
    assert_eq!(media.status, 200, "{}", media.text());
    let pl = media_playlist(&media.text());
    assert!(!pl.segments.is_empty());
    for seg in &pl.segments {
        assert!(seg.uri.ends_with(&format!(".ts?{good}")), "{}", seg.uri);
        assert_eq!(get(&ng.url(&format!("/live/news/hi/{}", seg.uri))).status, 200, "{}", seg.uri);
    }
    // Range parameters given to the master reach the variants along with the token.
    let clip = get(&ng.url(&format!("/live/news/master.m3u8?start=-8&{good}")));
    let v = master_playlist(&clip.text()).variants[0].uri.clone();
    assert!(v.starts_with("hi/index.m3u8?start=") && v.ends_with(&format!("&{good}")), "{v}");

    // With hls_dvr_pass_args off, the query stays with the playlist.
    let plain = get(&format!("http://127.0.0.1:{plain_port}/plain/news/hi/index.m3u8?session=42"));
    assert_eq!(plain.status, 200);
    assert!(media_playlist(&plain.text()).segments.iter().all(|s| !s.uri.contains('?')), "{}", plain.text());
}

#[test]
fn the_uploader_counts_what_it_stores() {
    let cql = Cql::start();
    let ks = keyspace("upmetrics");
    create_schema(&cql, &ks, "1h");
    let dir = TempDir::new("upmetrics");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut up = uploader(&cql, &ks, "demo", dir.path(), &["--metrics", &addr]);
    let mut ffmpeg = ffmpeg_live(dir.path(), Container::Ts, 1);
    let url = format!("http://{addr}/metrics");
    let segments = "hls_dvr_upload_segments_total{rendition=stream_hi,stream=demo}";
    wait_for("5 segments stored", Duration::from_secs(40), || {
        http("GET", &url, &[]).is_ok_and(|r| value(&parse_metrics(&r.text()), segments) >= 5.0)
    });
    ffmpeg.terminate(Duration::from_secs(5));
    // Once the last segments have landed, the counters agree with what the store holds.
    let rt = rt();
    let store = store_at(cql.first_node(), &ks, &rt);
    let mut m = scrape(&url);
    let mut rows = Vec::new();
    wait_for("the uploader's count of segments to match the store's", Duration::from_secs(20), || {
        m = scrape(&url);
        rows = rt.block_on(store.index_range("demo", "stream_hi", now_ms() - 600_000, now_ms())).unwrap();
        value(&m, segments) == rows.len() as f64
    });
    let bytes: i64 = rows.iter().map(|r| r.size).sum();
    assert_eq!(value(&m, "hls_dvr_upload_bytes_total{rendition=stream_hi,stream=demo}"), bytes as f64);
    assert_eq!(value(&m, "hls_dvr_upload_delay_seconds_count{rendition=stream_hi,stream=demo}"), rows.len() as f64);
    let age = value(&m, "hls_dvr_upload_newest_segment_age_seconds{rendition=stream_lo,stream=demo}");
    assert!(age > 0.0 && age < 15.0, "{age}");
    assert_eq!(value(&m, "hls_dvr_upload_retries_total{}"), 0.0);
    assert_eq!(get(&format!("http://{addr}/other")).status, 404);
    up.terminate(Duration::from_secs(10));
}
