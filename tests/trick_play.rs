//! Trick play end to end, against Cassandra and nginx: for MPEG-TS and fMP4 folders and for a
//! CMAF push, the multivariant playlist lists an I-frame playlist per video rendition, and each
//! of its byte ranges, fetched through nginx with a Range request, decodes alone to exactly one
//! key frame (ffprobe; for fMP4 after its EXT-X-MAP); with `--thumbnails`, an image playlist of
//! 160-pixel JPEGs, one per segment, which Shaka Player offers as thumbnails.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::push::{cmaf_encoder, receiver};
use common::{get, http, keyspace, uploader, wait_for, Container, Cql, Nginx, TempDir};

/// Each entry of an I-frame playlist: (map URI in force, length, offset, URI).
fn entries(text: &str) -> Vec<(Option<String>, u64, u64, String)> {
    let (mut map, mut range, mut out) = (None, None, Vec::new());
    assert!(text.contains("\n#EXT-X-I-FRAMES-ONLY\n"), "{text}");
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            map = Some(m.trim_end_matches('"').to_string());
        } else if let Some(r) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (len, off) = r.split_once('@').unwrap();
            range = Some((len.parse().unwrap(), off.parse().unwrap()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let (len, off) = range.take().expect("a byte range before each URI");
            out.push((map.clone(), len, off, line.to_string()));
        }
    }
    out
}

/// Checks every key frame an I-frame playlist names; returns how many there were.
fn check_key_frames(ng: &Nginx, base: &str, playlist: &str, work: &Path) -> usize {
    let list = entries(playlist);
    for (i, (map, len, off, uri)) in list.iter().enumerate() {
        let range = format!("bytes={off}-{}", off + len - 1);
        let r = http("GET", &ng.url(&format!("{base}/{uri}")), &[("Range", &range)]).unwrap();
        assert_eq!(r.status, 206, "{uri} {range}");
        assert_eq!(r.body.len() as u64, *len);
        let mut bytes = map.as_ref().map(|m| get(&ng.url(&format!("{base}/{m}"))).body).unwrap_or_default();
        bytes.extend_from_slice(&r.body);
        let file = work.join(format!("key_{i}.bin"));
        std::fs::write(&file, &bytes).unwrap();
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v",
                "-show_entries",
                "frame=key_frame,pict_type",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let frames = String::from_utf8_lossy(&out.stdout);
        let frames: Vec<&str> = frames.lines().map(|l| l.trim_end_matches(',')).filter(|l| !l.is_empty()).collect();
        assert_eq!(frames, ["1,I"], "{base}/{uri} {range}: exactly one key frame");
    }
    list.len()
}

/// Checks every thumbnail an image playlist lists: a JPEG `width` pixels wide; returns how many.
fn check_thumbnails(ng: &Nginx, base: &str, work: &Path, width: u32) -> usize {
    let text = get(&ng.url(&format!("{base}/images.m3u8"))).text();
    assert!(text.contains("\n#EXT-X-IMAGES-ONLY\n"), "{text}");
    let uris: Vec<&str> = text.lines().filter(|l| l.ends_with(".jpg")).collect();
    for uri in &uris {
        let r = get(&ng.url(&format!("{base}/{uri}")));
        assert_eq!((r.status, r.header("Content-Type")), (200, Some("image/jpeg")), "{uri}");
        let file = work.join("thumb.jpg");
        std::fs::write(&file, &r.body).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_name,width", "-of", "csv=p=0"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("mjpeg,{width}"), "{base}/{uri}");
    }
    uris.len()
}

#[test]
fn every_i_frame_range_decodes_alone_to_one_key_frame() {
    let cql = Cql::start();
    let ks = keyspace("trick_play");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("trick_play");
    let (ts, fmp4) = (s.dir("ts"), s.dir("fmp4"));
    common::encode_ladder(&ts, Container::Ts, &[]);
    common::encode_ladder(&fmp4, Container::Fmp4, &[]);
    let mut up_ts = uploader(&cql, &ks, "ts", &ts, &["--thumbnails"]);
    let mut up_fmp4 = uploader(&cql, &ks, "fmp4", &fmp4, &["--thumbnails", "96"]);
    let (push, port) = receiver(&cql, &ks, &s, "receiver", &["--thumbnails"]);
    let mut enc = cmaf_encoder(12, &format!("http://127.0.0.1:{port}/ingest/cmaf/manifest.mpd"), &[]);
    let (page, page_port) = (common::player_page(), common::free_port());
    let ng = Nginx::start(&cql.addr, &ks, 2, &common::player_server(page_port, page.path()), "");
    let work = s.dir("work");
    for (stream, renditions, segments) in [("ts", ["out_0", "out_1"], 10), ("fmp4", ["out_0", "out_1"], 10)] {
        // Every rendition stored to its end (the uploader stores them side by side).
        wait_for("the stream stored", Duration::from_secs(60), || {
            renditions
                .iter()
                .all(|r| get(&ng.url(&format!("/live/{stream}/{r}/index.m3u8"))).text().contains("#EXT-X-ENDLIST"))
        });
        let master = get(&ng.url(&format!("/live/{stream}/master.m3u8"))).text();
        for r in renditions {
            let uri = format!("URI=\"{r}/iframes.m3u8\"");
            let listed =
                master.lines().any(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=") && l.ends_with(&uri));
            assert!(listed, "{r}:\n{master}");
            let base = format!("/live/{stream}/{r}");
            let text = get(&ng.url(&format!("{base}/iframes.m3u8"))).text();
            assert_eq!(check_key_frames(&ng, &base, &text, &work), segments, "{stream}/{r}:\n{text}");
            // Thumbnails: one JPEG per segment, of the width asked, in an image playlist.
            let width = if stream == "ts" { 160 } else { 96 };
            assert!(master.contains(&format!("CODECS=\"jpeg\",URI=\"{r}/images.m3u8\"")), "{master}");
            assert_eq!(check_thumbnails(&ng, &base, &work, width), segments, "{stream}/{r}");
            // The clip view of the same rendition lists its part of them.
            let clip = get(&ng.url(&format!("{base}/iframes.m3u8?start=0&end=1"))).status;
            assert_eq!(clip, 404, "a range before the stream");
        }
    }
    // hls-parser's strict mode accepts the multivariant and I-frame playlists.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/tracks.mjs");
    let urls: Vec<String> = ["ts", "fmp4"]
        .iter()
        .flat_map(|st| {
            [
                format!("/live/{st}/master.m3u8"),
                format!("/live/{st}/out_0/iframes.m3u8"),
                format!("/live/{st}/out_1/iframes.m3u8"),
            ]
        })
        .map(|p| ng.url(&p))
        .collect();
    let out = Command::new("node").arg(&script).arg("strict").args(&urls).output().expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // A CMAF push: its video track has key frames found fragment by fragment; audio has none.
    let _ = enc.wait();
    wait_for("the push stored", Duration::from_secs(30), || {
        entries(&get(&ng.url("/live/cmaf/stream0/iframes.m3u8")).text()).len() >= 4
    });
    let text = get(&ng.url("/live/cmaf/stream0/iframes.m3u8")).text();
    assert!(check_key_frames(&ng, "/live/cmaf/stream0", &text, &work) >= 4);
    assert!(check_thumbnails(&ng, "/live/cmaf/stream0", &work, 160) >= 4);
    // Shaka Player offers the thumbnails of the whole stream.
    let shaka = Command::new("node").arg(&script).args(["shaka", &ng.url("/live/ts/master.m3u8")]).output().unwrap();
    let shaka: serde_json::Value = serde_json::from_slice(&shaka.stdout).unwrap();
    assert_eq!(shaka["ok"], true, "{shaka:#}");
    assert_eq!(shaka["thumbnail"]["width"], 160, "{shaka:#}");
    assert!(shaka["thumbnail"]["uri"].as_str().unwrap().ends_with(".jpg"), "{shaka:#}");
    // The player page shows the thumbnail of where the pointer is on the scrubber: at 30% of
    // the ten segments of the finished stream, segment 3 (give or take the edges).
    let shot = std::env::var("HLS_DVR_SCREENSHOT").unwrap_or_default();
    let url = common::player_url(page_port, &ng.url("/live/ts/master.m3u8"));
    let page_report = Command::new("node").arg(&script).args(["thumbnails", &url, &shot]).output().unwrap();
    let page_report: serde_json::Value = serde_json::from_slice(&page_report.stdout).unwrap();
    assert_eq!(page_report["ok"], true, "{page_report:#}");
    assert_eq!(page_report["shown"]["width"], 160, "{page_report:#}");
    let src = page_report["shown"]["src"].as_str().unwrap();
    let msn: i64 = src.rsplit('/').next().unwrap().trim_end_matches(".jpg").parse().unwrap();
    assert!((2..=4).contains(&msn), "{page_report:#}");
    let audio = get(&ng.url("/live/cmaf/stream1/iframes.m3u8"));
    assert_eq!(audio.status, 404, "{}", audio.text());
    up_ts.terminate(Duration::from_secs(10));
    up_fmp4.terminate(Duration::from_secs(10));
    push.stop();
}
