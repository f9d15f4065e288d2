//! The Prometheus rules shipped in nginx-conf/prometheus/: Debian's `promtool` checks them and runs
//! their unit tests (a series for each alert, firing and quiet), and a real Prometheus scraping a
//! live edge and uploader evaluates them: recording rules fill while the stream runs, and the
//! ingest-stalled alert fires for the stream once its segmenter stops.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("nginx-conf/prometheus")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .current_dir(rules_dir())
        .args(args)
        .output()
        .expect("promtool (scripts/setup installs Debian's prometheus)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?}:\n{said}");
    said
}

#[test]
fn promtool_checks_the_rules_and_every_alert_fires_on_its_series() {
    let checked = promtool(&["check", "rules", "hls-dvr.rules.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert the rules define has a test that expects it to fire.
    let rules = std::fs::read_to_string(rules_dir().join("hls-dvr.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(rules_dir().join("alerts.test.yml")).unwrap();
    for alert in rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        let fires = tests.lines().collect::<Vec<_>>().windows(3).any(|w| {
            w[0].trim() == format!("alertname: {alert}")
                && w[1].trim() == "exp_alerts:"
                && w[2].trim().starts_with("- exp_labels")
        });
        assert!(fires, "{alert} has no test in which it fires");
    }
}

/// Prometheus on `port`, scraping `targets` (job, host:port) every second, with the rules.
fn prometheus(dir: &Path, port: u16, targets: &[(&str, String)]) -> Child {
    let mut conf = String::from("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files:\n");
    conf.push_str(&format!("  - {}\nscrape_configs:\n", rules_dir().join("hls-dvr.rules.yml").display()));
    for (job, target) in targets {
        conf.push_str(&format!("  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n"));
    }
    std::fs::write(dir.join("prometheus.yml"), conf).unwrap();
    Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (scripts/setup installs it)")
}

/// A PromQL query's result, as Prometheus's JSON says it.
fn query(port: u16, q: &str) -> serde_json::Value {
    let enc: String = q
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let r = get(&format!("http://127.0.0.1:{port}/api/v1/query?query={enc}"));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["data"]["result"].clone()
}

fn firing(port: u16, alert: &str) -> Vec<serde_json::Value> {
    let r = get(&format!("http://127.0.0.1:{port}/api/v1/alerts"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let all = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
    all.into_iter().filter(|a| a["labels"]["alertname"] == alert && a["state"] == "firing").collect()
}

#[test]
fn a_real_prometheus_sees_the_stream_and_alerts_when_its_segmenter_stops() {
    let cql = Cql::start();
    let ks = keyspace("alerts");
    create_schema(&cql, &ks, "1h");
    let dir = TempDir::new("alerts");
    let mut ffmpeg = ffmpeg_live(dir.path(), Container::Ts, 1);
    let up_port = free_port();
    let up_addr = format!("127.0.0.1:{up_port}");
    let mut up = uploader(&cql, &ks, "demo", dir.path(), &["--metrics", &up_addr]);
    let ops_port = free_port();
    let ng = Nginx::start(
        &cql.addr,
        &ks,
        2,
        &format!("server {{ listen 127.0.0.1:{ops_port}; location = /metrics {{ hls_dvr_metrics; }} }}"),
        "",
    );
    wait_for("the stream stored", Duration::from_secs(60), || {
        get(&ng.url("/live/demo/stream_hi/index.m3u8")).text().matches("#EXTINF").count() >= 3
    });
    let prom_port = free_port();
    let prom_dir = dir.dir("prometheus");
    let mut prom =
        prometheus(&prom_dir, prom_port, &[("edge", format!("127.0.0.1:{ops_port}")), ("uploader", up_addr)]);
    wait_for("prometheus ready", Duration::from_secs(30), || {
        http("GET", &format!("http://127.0.0.1:{prom_port}/-/ready"), &[]).is_ok_and(|r| r.status == 200)
    });
    // Viewers' requests, for the edge's series.
    for _ in 0..5 {
        get(&ng.url("/live/demo/stream_hi/index.m3u8"));
    }
    wait_for("both targets up and the recording rules filled", Duration::from_secs(60), || {
        let up = query(prom_port, "sum(up)");
        let age = query(prom_port, "stream_rendition:hls_dvr_newest_segment_age_target_durations:min{stream=\"demo\"}");
        up.get(0).is_some_and(|r| r["value"][1] == "2") && age.as_array().is_some_and(|a| a.len() == 2)
    });
    // Live: fresh segments, nothing fires.
    let age =
        query(prom_port, "max(stream_rendition:hls_dvr_newest_segment_age_target_durations:min{stream=\"demo\"})");
    let age: f64 = age[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(age < 3.0, "{age} target durations while live");
    assert!(firing(prom_port, "HlsDvrIngestStalled").is_empty());
    let served = query(prom_port, "sum(hls_dvr_requests_total{stream=\"demo\",kind=\"media\"})");
    assert!(served[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= 5.0, "{served}");
    // The segmenter stops: three target durations later, and the rule's 30 s after that, the
    // stream alerts, once.
    ffmpeg.terminate(Duration::from_secs(5));
    wait_for("HlsDvrIngestStalled firing", Duration::from_secs(120), || {
        !firing(prom_port, "HlsDvrIngestStalled").is_empty()
    });
    let alerts = firing(prom_port, "HlsDvrIngestStalled");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["labels"]["stream"], "demo");
    assert_eq!(alerts[0]["annotations"]["summary"], "Ingest of demo stalled");
    let _ = prom.kill();
    let _ = prom.wait();
    up.terminate(Duration::from_secs(10));
}
