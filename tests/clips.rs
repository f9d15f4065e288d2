//! Clips as files end to end, against Cassandra and nginx: a range of MPEG-TS and fMP4 folders
//! and of a CMAF push downloads as one progressive MP4 whose duration ffprobe puts within a frame
//! of the clip playlist's, every frame of which decodes, which Chromium's own `<video>` plays to
//! its end and seeks in; HEAD, Range, If-Range and a `curl -C -` resume give the same bytes, and
//! so does `hls-dvr-upload export`; a TS rendition's `clip.ts` is its segments; bad ranges get
//! the playlists' errors, an unfinished one 409, a relative one a redirect.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::push::{cmaf_encoder, receiver};
use common::{get, http, keyspace, upload_bin, uploader, wait_for, Container, Cql, Nginx, TempDir};
use hls_dvr_core::clock::{now_ms, parse_iso8601};

/// One frame at 25 fps, the sources' rate.
const FRAME_S: f64 = 0.04;

/// Each segment a media playlist lists: its program date-time (ms) and EXTINF (s), and its URI.
fn segments(text: &str) -> Vec<(i64, f64, String)> {
    let (mut pdt, mut dur, mut out) = (None::<i64>, None::<f64>, Vec::new());
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(parse_iso8601(t).expect("an ISO 8601 date"));
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            dur = Some(d.trim_end_matches(',').split(',').next().unwrap().parse().unwrap());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (at, d) = (pdt.expect("a date before each segment"), dur.take().unwrap());
            out.push((at, d, line.to_string()));
            pdt = Some(at + (d * 1000.0).round() as i64);
        }
    }
    out
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn probe(file: &Path, what: &str) -> String {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_entries", what, "-of", "csv=p=0"]).arg(file).output();
    String::from_utf8_lossy(&out.expect("ffprobe").stdout).trim().to_string()
}

/// Every frame of `file` decodes, with nothing said on the way.
fn decodes(file: &Path) {
    let out =
        Command::new("ffmpeg").args(["-v", "error", "-nostdin", "-i"]).arg(file).args(["-f", "null", "-"]).output();
    let out = out.expect("ffmpeg");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{}: {said}", file.display());
}

/// Downloads a clip file and checks what every client relies on; returns its bytes.
fn check_file(ng: &Nginx, path: &str, work: &Path, listed_s: f64, codecs: &str) -> Vec<u8> {
    let url = ng.url(path);
    let r = get(&url);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("Content-Type"), Some("video/mp4"));
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()), "{path}");
    let disposition = r.header("Content-Disposition").unwrap();
    assert!(disposition.starts_with("attachment; filename=\"") && disposition.ends_with("Z.mp4\""), "{disposition}");
    let file = work.join("clip.mp4");
    std::fs::write(&file, &r.body).unwrap();
    let duration: f64 = probe(&file, "format=duration").parse().unwrap();
    assert!((duration - listed_s).abs() <= FRAME_S + 0.001, "{path}: {duration} s, its playlist lists {listed_s} s");
    assert_eq!(probe(&file, "stream=codec_name").replace('\n', ","), codecs, "{path}");
    decodes(&file);
    // HEAD: the same headers, no body.
    let h = http("HEAD", &url, &[]).unwrap();
    assert_eq!((h.status, h.header("Content-Length")), (200, r.header("Content-Length")));
    assert!(h.body.is_empty());
    // Range, honoured while If-Range names this version, and the whole file when it does not.
    let etag = r.header("ETag").expect("an ETag").to_string();
    let part = http("GET", &url, &[("Range", "bytes=1000-99999"), ("If-Range", &etag)]).unwrap();
    assert_eq!(part.status, 206);
    assert!(part.body == r.body[1000..100_000]);
    let stale = http("GET", &url, &[("Range", "bytes=1000-99999"), ("If-Range", "\"another\"")]).unwrap();
    assert!(stale.status == 200 && stale.body == r.body, "If-Range of another version: the whole file");
    let past = http("GET", &url, &[("Range", &format!("bytes={}-", r.body.len()))]).unwrap();
    assert_eq!(past.status, 416);
    // A download cut short and resumed by curl gives the identical file.
    let resumed = work.join("resumed.mp4");
    std::fs::write(&resumed, &r.body[..r.body.len() / 3]).unwrap();
    let st = Command::new("curl").args(["-s", "-f", "-C", "-", "-o"]).arg(&resumed).arg(&url).status().unwrap();
    assert!(st.success());
    assert!(std::fs::read(&resumed).unwrap() == r.body, "{path}: curl -C - resumed a different file");
    // Chromium's own <video> plays it to the end and seeks in it.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/clip.mjs");
    let out = Command::new("node").arg(&script).arg(&url).output().expect("node");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(report["ok"], true, "{path}: {report:#} {}", String::from_utf8_lossy(&out.stderr));
    let shown = report["duration"].as_f64().unwrap();
    assert!((shown - listed_s).abs() < 0.1, "{path}: Chromium says {shown} s");
    r.body
}

/// `hls-dvr-upload export` of the same range.
fn export(cql: &Cql, ks: &str, args: &[&str], out: &Path) -> std::process::Output {
    Command::new(upload_bin())
        .args(["export", "--cassandra", &cql.addr, "--keyspace", ks])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run hls-dvr-upload export")
}

#[test]
fn clips_download_as_files_that_play_seek_resume_and_export_alike() {
    let cql = Cql::start();
    let ks = keyspace("clips");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("clips");
    let (ts, fmp4) = (s.dir("ts"), s.dir("fmp4"));
    common::encode_ladder(&ts, Container::Ts, &["-bf", "2", "-b:v:0", "600k", "-b:v:1", "200k"]);
    common::encode_ladder(&fmp4, Container::Fmp4, &["-bf", "2", "-b:v:0", "600k", "-b:v:1", "200k"]);
    let mut up_ts = uploader(&cql, &ks, "ts", &ts, &[]);
    let mut up_fmp4 = uploader(&cql, &ks, "fmp4", &fmp4, &[]);
    let (push, port) = receiver(&cql, &ks, &s, "receiver", &[]);
    let mut enc = cmaf_encoder(12, &format!("http://127.0.0.1:{port}/ingest/cmaf/manifest.mpd"), &[]);
    let ng = Nginx::start(&cql.addr, &ks, 2, "", "");
    let work = s.dir("work");
    for stream in ["ts", "fmp4"] {
        wait_for("the stream stored", Duration::from_secs(60), || {
            ["out_0", "out_1"].iter().all(|r| {
                let text = get(&ng.url(&format!("/live/{stream}/{r}/index.m3u8"))).text();
                text.contains("#EXT-X-ENDLIST") && segments(&text).len() == 10
            })
        });
    }
    // The other worker may still answer a playlist it built before the end, for up to
    // hls_dvr_playlist_cache.
    std::thread::sleep(Duration::from_millis(600));
    for stream in ["ts", "fmp4"] {
        let base = format!("/live/{stream}/out_0");
        let all = segments(&get(&ng.url(&format!("{base}/index.m3u8"))).text());
        assert_eq!(all.len(), 10, "{stream}");
        // Segments 2 to 6: the range's ends inside segments, as a viewer marks them.
        let (start, end) = (all[2].0 + 700, all[7].0 - 300);
        let q = format!("start={}&end={}", secs(start), secs(end));
        let clip = segments(&get(&ng.url(&format!("{base}/index.m3u8?{q}"))).text());
        assert_eq!(clip.len(), 5, "{stream}");
        let listed: f64 = clip.iter().map(|c| c.1).sum();
        let body = check_file(&ng, &format!("{base}/clip.mp4?{q}"), &work, listed, "h264,aac");
        // The export writes the same bytes from the store.
        let out = work.join(format!("{stream}.mp4"));
        let (from, to) = (secs(start), secs(end));
        let e = export(&cql, &ks, &["--stream", stream, "--rendition", "out_0", "--start", &from, "--end", &to], &out);
        assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
        assert!(std::fs::read(&out).unwrap() == body, "{stream}: the export differs from the download");
        // The stream's clip: its highest-bandwidth video, whose segments carry its audio.
        let whole = get(&ng.url(&format!("/live/{stream}/clip.mp4?{q}")));
        assert!(whole.status == 200 && whole.body == body, "{stream}: out_0 is the best video");
        // Relative times redirect to the absolute range, and that answer is not cached.
        let moved = http("GET", &ng.url(&format!("{base}/clip.mp4?start=-30&end=-10&token=t")), &[]).unwrap();
        assert_eq!(moved.status, 302);
        let location = moved.header("Location").unwrap();
        assert!(
            location.starts_with(&format!("{base}/clip.mp4?start=")) && location.ends_with("&token=t"),
            "{location}"
        );
        assert_eq!(moved.header("Cache-Control"), Some("no-store"));
    }
    // clip.ts: a TS rendition's segments, one after another; no remux.
    let all = segments(&get(&ng.url("/live/ts/out_1/index.m3u8")).text());
    let (from, to) = (secs(all[1].0), secs(all[4].0));
    let q = format!("start={from}&end={to}");
    let listed = segments(&get(&ng.url(&format!("/live/ts/out_1/index.m3u8?{q}"))).text());
    let expected: Vec<u8> = listed.iter().flat_map(|s| get(&ng.url(&format!("/live/ts/out_1/{}", s.2))).body).collect();
    let ts_file = get(&ng.url(&format!("/live/ts/out_1/clip.ts?{q}")));
    assert_eq!((ts_file.status, ts_file.header("Content-Type")), (200, Some("video/mp2t")));
    assert!(ts_file.body == expected, "clip.ts is the listed segments");
    let out = work.join("out_1.ts");
    let e = export(&cql, &ks, &["--stream", "ts", "--rendition", "out_1", "--start", &from, "--end", &to], &out);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    assert!(std::fs::read(&out).unwrap() == expected);
    let not_ts = get(&ng.url(&format!("/live/fmp4/out_1/clip.ts?{q}")));
    assert_eq!(not_ts.status, 409, "{}", not_ts.text());
    // Bad ranges get the playlists' answers.
    let recent = secs(now_ms() - 60_000);
    for (query, status, why) in [
        ("start=soon&end=now".to_string(), 400, "start=\"soon\""),
        (format!("start={recent}"), 400, "needs start and end"),
        ("start=1000&end=1010".into(), 404, "nothing is stored"),
        ("start=1000&end=2000000000".into(), 400, "more than the"),
    ] {
        let r = get(&ng.url(&format!("/live/ts/out_0/clip.mp4?{query}")));
        assert_eq!(r.status, status, "{query}: {}", r.text());
        assert!(r.text().contains(why), "{query}: {}", r.text());
    }
    let bad = get(&ng.url(&format!("/live/ts/nope/clip.mp4?start={recent}&end={}", secs(now_ms() - 50_000))));
    assert_eq!(bad.status, 404, "{}", bad.text());
    // A CMAF push: video and audio are separate renditions, muxed into one file. A range whose end
    // is not stored yet is refused while the stream is live.
    wait_for("the push stored", Duration::from_secs(30), || {
        segments(&get(&ng.url("/live/cmaf/stream0/index.m3u8")).text()).len() >= 3
    });
    let live = format!("start={}&end={}", secs(now_ms() - 2000), secs(now_ms() + 60_000));
    let early = get(&ng.url(&format!("/live/cmaf/clip.mp4?{live}")));
    assert_eq!(early.status, 409, "{}", early.text());
    assert!(early.text().contains("ends after the newest stored segment"), "{}", early.text());
    let _ = enc.wait();
    // ffmpeg's 12 s make six segments of each track; five of each are enough.
    wait_for("the push stored", Duration::from_secs(30), || {
        ["stream0", "stream1"]
            .iter()
            .all(|r| segments(&get(&ng.url(&format!("/live/cmaf/{r}/index.m3u8"))).text()).len() >= 5)
    });
    let all = segments(&get(&ng.url("/live/cmaf/stream0/index.m3u8")).text());
    let q = format!("start={}&end={}", secs(all[1].0), secs(all[4].0));
    let listed: f64 =
        segments(&get(&ng.url(&format!("/live/cmaf/stream0/index.m3u8?{q}"))).text()).iter().map(|s| s.1).sum();
    check_file(&ng, &format!("/live/cmaf/clip.mp4?{q}"), &work, listed, "h264,aac");
    let log = ng.error_log();
    assert!(!log.contains("[alert]") && !log.contains("[crit]") && !log.contains("exited on signal"), "{log}");
    up_ts.terminate(Duration::from_secs(10));
    up_fmp4.terminate(Duration::from_secs(10));
    push.stop();
}
