//! Ad markers and timed metadata through the DVR, against Cassandra and nginx: markers a
//! segmenter's playlist carries (EXT-X-DATERANGE with SCTE-35, EXT-X-CUE-OUT/IN), markers posted
//! to the receiver and stored with `hls-dvr-upload mark` appear in live, start-over and clip
//! playlists at their START-DATE, only where their span overlaps what is listed, the same in
//! every rendition's playlist; the cue form marks the segments of a break; Shaka Player reports
//! them as timeline regions.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::push::receiver_on;
use common::{free_port, get, keyspace, upload_bin, wait_for, Cql, Nginx, TempDir};
use hls_dvr_core::clock::iso8601;
use serde_json::Value;

/// 40 s of two renditions, encoded as fast as it goes (the test dates the segments itself).
fn encode(dir: &Path) {
    let st = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", "40", "-map", "0:v", "-map", "0:v", "-map", "1:a", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0"])
        .args(["-hls_segment_filename", "seg_%v_%03d.ts", "-var_stream_map", "v:0,a:0 v:1,a:1"])
        .args(["-master_pl_name", "master.m3u8", "out_%v.m3u8"])
        .status()
        .expect("ffmpeg (scripts/setup installs it)");
    assert!(st.success());
}

/// Rewrites ffmpeg's media playlist `out_{v}.m3u8` as a segmenter that dates its segments from
/// `first_ms` and marks breaks writes it: a DATERANGE with SCTE-35 before segment 2, a CUE-OUT
/// of 6 s at segment 5 and its CUE-IN at segment 8.
fn with_markers(dir: &Path, v: u32, first_ms: i64) {
    let path = dir.join(format!("out_{v}.m3u8"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let (mut n, mut at) = (0, first_ms);
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            match n {
                2 => {
                    out += &format!(
                        "#EXT-X-DATERANGE:ID=\"splice-1\",START-DATE=\"{}\",PLANNED-DURATION=4.0,\
                     SCTE35-OUT=0xFC302000000000000000FFF00F05000000017FEFFE00527A7C0000000000,X-AD-SYSTEM=\"test\"\n",
                        iso8601(at)
                    )
                }
                5 => out += "#EXT-X-CUE-OUT:6.000\n",
                8 => out += "#EXT-X-CUE-IN\n",
                _ => {}
            }
            out += &format!("#EXT-X-PROGRAM-DATE-TIME:{}\n", iso8601(at));
            at += (d.trim_end_matches(',').parse::<f64>().unwrap() * 1000.0).round() as i64;
            n += 1;
        }
        out += line;
        out.push('\n');
    }
    let tmp = dir.join(format!(".out_{v}.tmp"));
    std::fs::write(&tmp, out).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// A POST with a body; (status, body).
fn post(url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    (status, resp.split_once("\r\n\r\n").map_or("", |r| r.1).to_string())
}

/// The DATERANGE lines of a playlist, by ID: (START-DATE, the whole line).
fn dateranges(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-DATERANGE:"))
        .map(|l| {
            let id = l.split("ID=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
            (id, l.to_string())
        })
        .collect();
    out.sort();
    out
}

fn ids(text: &str) -> Vec<String> {
    dateranges(text).into_iter().map(|(id, _)| id).collect()
}

#[test]
fn markers_from_segmenters_posts_and_scripts_appear_where_they_belong() {
    let cql = Cql::start();
    let ks = keyspace("markers");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("markers");
    let dir = s.dir("segmenter");
    encode(&dir);
    // The stream began two minutes ago.
    let first = hls_dvr_core::clock::now_ms() - 120_000;
    let at = |seconds: i64| first + seconds * 1000;
    for v in 0..2 {
        with_markers(&dir, v, first);
    }
    let port = free_port();
    let stream = format!("{}", dir.display());
    let up = receiver_on(port, &cql, &ks, &s, "receiver", &["--stream", "game", &stream]);
    let (cue_port, status_port) = (free_port(), free_port());
    let extra = format!(
        "server {{ listen 127.0.0.1:{cue_port}; location /cue/ {{ hls_dvr; hls_dvr_ad_markers both; }} \
         location /off/ {{ hls_dvr; hls_dvr_ad_markers off; }} }}\n\
         server {{ listen 127.0.0.1:{status_port}; location /status {{ hls_dvr_status; }} }}"
    );
    let ng = Nginx::start(&cql.addr, &ks, 2, &extra, "");
    let live = |r: &str, q: &str| get(&ng.url(&format!("/live/game/out_{r}/index.m3u8{q}"))).text();
    // Both renditions stored to their end, and the segmenter's markers with them.
    wait_for("the segmenter's markers stored", Duration::from_secs(60), || {
        ["0", "1"].iter().all(|r| {
            let t = live(r, "");
            t.contains("#EXT-X-ENDLIST") && t.contains("ID=\"cue-")
        })
    });

    // Posted: an ad break at 20 s (SCTE-35, planned), then the same id moved to 24 s with its
    // real duration; timed metadata at 30 s. Malformed posts are refused with their reason.
    let markers_url = format!("http://127.0.0.1:{port}/ingest/game/markers");
    let posted = |start: i64, body: &str| post(&markers_url, &body.replace("START", &iso8601(start)));
    let (st, _) = posted(at(20), r#"{"id": "ad-7", "start": "START", "planned_duration": 8, "scte35_out": "0xFC30"}"#);
    assert_eq!(st, 201);
    let (st, _) = posted(
        at(24),
        r#"{"id": "ad-7", "start": "START", "duration": 4, "scte35_out": "0xFC30", "class": "com.example.ad", "attributes": {"X-AD-ID": "spot 7"}}"#,
    );
    assert_eq!(st, 201);
    for (body, why) in [
        (r#"{"id": "x", "start": "START", "duration": "4"}"#, "duration: expected a number"),
        (r#"{"id": "x", "start": "soon"}"#, "start:"),
        (r#"{"id": "x", "start": "START", "scte35_out": "FC30"}"#, "scte35_out:"),
        ("not json", "not JSON"),
    ] {
        let (st, text) = posted(at(10), body);
        assert_eq!(st, 400, "{body}: {text}");
        assert!(text.starts_with(why), "{body}: {text}");
    }
    // A script stores timed metadata with the uploader's `mark`.
    let mark = Command::new(upload_bin())
        .args(["mark", "--cassandra", &cql.addr, "--keyspace", &ks, "--stream", "game"])
        .arg(format!(r#"{{"id": "score", "start": "{}", "attributes": {{"X-SCORE": "1-0"}}}}"#, iso8601(at(30))))
        .output()
        .unwrap();
    assert!(mark.status.success(), "{}", String::from_utf8_lossy(&mark.stderr));
    let bad = Command::new(upload_bin())
        .args(["mark", "--cassandra", &cql.addr, "--keyspace", &ks, "--stream", "game", r#"{"id": 1}"#])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));

    // The whole stream (it ended): every marker, at its START-DATE, the same in both renditions.
    // A worker answers a playlist it built up to hls_dvr_playlist_cache (500 ms) ago: the posted
    // markers are in the next build.
    wait_for("the posted markers listed", Duration::from_secs(10), || {
        ["0", "1"].iter().all(|r| dateranges(&live(r, "")).len() == 4)
    });
    let whole = live("0", "");
    let cue_id = format!("cue-{}", at(10));
    assert_eq!(ids(&whole), ["ad-7", cue_id.as_str(), "score", "splice-1"]);
    assert_eq!(dateranges(&whole), dateranges(&live("1", "")));
    let line = |id: &str| dateranges(&whole).into_iter().find(|(i, _)| i == id).unwrap().1;
    assert_eq!(
        line("splice-1"),
        format!(
            "#EXT-X-DATERANGE:ID=\"splice-1\",START-DATE=\"{}\",PLANNED-DURATION=4.000,X-AD-SYSTEM=\"test\",\
             SCTE35-OUT=0xFC302000000000000000FFF00F05000000017FEFFE00527A7C0000000000",
            iso8601(at(4))
        )
    );
    assert_eq!(
        line("ad-7"),
        format!(
            "#EXT-X-DATERANGE:ID=\"ad-7\",CLASS=\"com.example.ad\",START-DATE=\"{}\",DURATION=4.000,\
             X-AD-ID=\"spot 7\",SCTE35-OUT=0xFC30",
            iso8601(at(24))
        )
    );
    let cue_line = format!("#EXT-X-DATERANGE:ID=\"{cue_id}\",START-DATE=\"{}\",DURATION=6.000", iso8601(at(10)));
    assert_eq!(line(&cue_id), cue_line);
    assert_eq!(
        line("score"),
        format!("#EXT-X-DATERANGE:ID=\"score\",START-DATE=\"{}\",X-SCORE=\"1-0\"", iso8601(at(30)))
    );
    // A DATERANGE comes before the segment it starts in.
    let before_seg = |id: &str, seg: &str| {
        let d = whole.find(&format!("ID=\"{id}\"")).unwrap();
        let u = whole.find(&format!("\n{seg}\n")).unwrap();
        assert!(d < u && !whole[d..u].contains(".ts\n"), "{id} is not just before {seg}:\n{whole}");
    };
    before_seg("ad-7", "12.ts");
    before_seg("score", "15.ts");

    // Start-over from 18 s: only what overlaps it (the break at 10 s ended at 16 s).
    let from = |s: i64| format!("?start={}", iso8601(at(s)));
    assert_eq!(ids(&live("0", &from(18))), ["ad-7", "score"]);
    // A clip of 22 s to 28 s: the posted break alone, in both renditions.
    let clip = format!("?start={}&end={}", iso8601(at(22)), iso8601(at(28)));
    assert_eq!(ids(&live("0", &clip)), ["ad-7"]);
    assert_eq!(ids(&live("1", &clip)), ["ad-7"]);
    // A clip before every marker lists none.
    assert!(ids(&live("1", &format!("?start={}&end={}", iso8601(at(0)), iso8601(at(3))))).is_empty());

    // The cue form: the segments of a break.
    let cue = get(&format!("http://127.0.0.1:{cue_port}/cue/game/out_0/index.m3u8")).text();
    let before = |tag: &str, seg: &str| {
        let u = cue.find(&format!("\n{seg}\n")).unwrap();
        let prev = cue[..u].rfind(".ts\n").unwrap();
        assert!(cue[prev..u].contains(tag), "{tag} not before {seg}:\n{cue}");
    };
    before("#EXT-X-CUE-OUT:6.000", "5.ts");
    before("#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000", "6.ts");
    before("#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6.000", "7.ts");
    before("#EXT-X-CUE-IN", "8.ts");
    before("#EXT-X-CUE-OUT:4.000", "12.ts");
    before("#EXT-X-CUE-IN", "14.ts");
    assert!(cue.contains("#EXT-X-DATERANGE"), "both forms");
    let off = get(&format!("http://127.0.0.1:{cue_port}/off/game/out_0/index.m3u8")).text();
    assert!(!off.contains("DATERANGE") && !off.contains("CUE"), "{off}");

    // The status document lists them.
    let status: Value = serde_json::from_str(&get(&format!("http://127.0.0.1:{status_port}/status")).text()).unwrap();
    let listed: Vec<&str> =
        status["streams"][0]["markers"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 4, "{status:#}");
    assert!(listed.contains(&"ad-7") && listed.contains(&"splice-1"), "{status:#}");

    // hls-parser's strict mode reads them; Shaka Player reports them as timeline regions.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/tracks.mjs");
    let node = |args: &[&str]| -> Value {
        let out = Command::new("node").arg(&script).args(args).output().expect("node");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let urls = [ng.url("/live/game/out_0/index.m3u8"), ng.url(&format!("/live/game/out_1/index.m3u8{clip}"))];
    let strict = node(&["strict", &urls[0], &urls[1]]);
    assert_eq!(strict["ok"], true, "{strict:#}");
    let shaka = node(&["shaka", &ng.url("/live/game/master.m3u8")]);
    assert_eq!(shaka["ok"], true, "{shaka:#}");
    // Each where it starts on the stream's timeline (which starts at its first segment).
    let mut regions: Vec<(String, i64)> = shaka["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), (r["startTime"].as_f64().unwrap() * 10.0).round() as i64))
        .collect();
    regions.sort();
    regions.dedup();
    let expected = [("ad-7".to_string(), 240), (cue_id.clone(), 100), ("score".into(), 300), ("splice-1".into(), 40)];
    assert_eq!(regions, expected, "{shaka:#}");
    up.stop();
}
