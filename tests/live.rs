//! The whole path, live: ffmpeg segments a synthetic source in real time, the uploader stores it,
//! nginx serves it, and ffprobe/ffmpeg read it back as players.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

struct Live {
    _dir: TempDir,
    dir: std::path::PathBuf,
    _ffmpeg: Proc,
    _uploader: Proc,
    ng: Nginx,
    _cql: Cql,
}

fn start(container: Container, tag: &str) -> Live {
    let cql = Cql::start();
    let ks = keyspace(tag);
    create_schema(&cql, &ks, "1h");
    let dir = TempDir::new(tag);
    let ffmpeg = ffmpeg_live(dir.path(), container, 1);
    let up = uploader(&cql, &ks, "demo", dir.path(), &[]);
    let ng = Nginx::start(&cql.addr, &ks, 2, "", "hls_dvr_window 1h;");
    Live { dir: dir.path().to_path_buf(), _dir: dir, _ffmpeg: ffmpeg, _uploader: up, ng, _cql: cql }
}

fn segments_served(live: &Live, rendition: &str) -> usize {
    match http("GET", &live.ng.url(&format!("/live/demo/{rendition}/index.m3u8")), &[]) {
        Ok(r) if r.status == 200 => media_playlist(&r.text()).segments.len(),
        _ => 0,
    }
}

/// ffmpeg's own playlist for a rendition: (file name, duration) in order.
fn ffmpeg_segments(dir: &Path, rendition: &str) -> (Vec<(String, f32)>, Option<String>) {
    let text = std::fs::read_to_string(dir.join(format!("{rendition}.m3u8"))).unwrap();
    let pl = media_playlist(&text);
    let map = pl.segments.iter().find_map(|s| s.map.as_ref().map(|m| m.uri.clone()));
    (pl.segments.iter().map(|s| (s.uri.clone(), s.duration)).collect(), map)
}

fn check_live(container: Container, tag: &str) {
    let live = start(container, tag);
    let renditions = ["stream_hi", "stream_lo"];
    for r in renditions {
        wait_for(&format!("6 segments of {r} through nginx"), Duration::from_secs(40), || {
            segments_served(&live, r) >= 6
        });
    }

    // The multivariant playlist lists both renditions with what the segmenter's master said.
    let master = master_playlist(&get(&live.ng.url("/live/demo/master.m3u8")).text());
    let mut uris: Vec<_> = master.variants.iter().map(|v| v.uri.clone()).collect();
    uris.sort();
    assert_eq!(uris, ["stream_hi/index.m3u8", "stream_lo/index.m3u8"]);
    assert!(master.variants.iter().all(|v| v.bandwidth > 1000 && v.codecs.is_some()));

    let ext = if container == Container::Ts { "ts" } else { "m4s" };
    let mut last_seen = Vec::new();
    for r in renditions {
        let text = get(&live.ng.url(&format!("/live/demo/{r}/index.m3u8"))).text();
        let ours = media_playlist(&text);
        let (theirs, map) = ffmpeg_segments(&live.dir, r);
        assert!(ours.segments.len() <= theirs.len());
        // Every segment in the window is byte-identical to what ffmpeg wrote, in order, with its duration.
        for (i, seg) in ours.segments.iter().enumerate() {
            let msn = ours.media_sequence + i as u64;
            assert_eq!(seg.uri, format!("{msn}.{ext}"));
            let (file, dur) = &theirs[msn as usize];
            assert!((seg.duration - dur).abs() < 1e-3, "{r} {msn}: duration {} vs ffmpeg's {dur}", seg.duration);
            let body = get(&live.ng.url(&format!("/live/demo/{r}/{}", seg.uri)));
            assert_eq!(body.status, 200);
            let want = std::fs::read(live.dir.join(file)).unwrap();
            assert!(body.body == want, "{r} {msn} differs from {file}");
        }
        if container == Container::Fmp4 {
            let map_uri = &ours.segments[0].map.as_ref().expect("EXT-X-MAP").uri;
            let init = get(&live.ng.url(&format!("/live/demo/{r}/{map_uri}")));
            assert_eq!(init.status, 200);
            assert_eq!(init.header("Content-Type"), Some("video/mp4"));
            assert!(init.body == std::fs::read(live.dir.join(map.unwrap())).unwrap(), "init segment differs");
        } else {
            assert!(ours.segments.iter().all(|s| s.map.is_none()));
        }
        last_seen.push((ours.media_sequence, ours.media_sequence + ours.segments.len() as u64, ours.target_duration));
    }

    // While the stream runs, the playlist grows and never goes back.
    std::thread::sleep(Duration::from_secs(3));
    for (i, r) in renditions.iter().enumerate() {
        let pl = media_playlist(&get(&live.ng.url(&format!("/live/demo/{r}/index.m3u8"))).text());
        let (first, end, td) = last_seen[i];
        assert!(pl.media_sequence >= first);
        assert!(pl.media_sequence + pl.segments.len() as u64 > end, "{r} did not grow");
        assert_eq!(pl.target_duration, td, "target duration changed");
        assert!(pl.playlist_type.is_none() && !pl.end_list);
    }

    // ffprobe reads the master playlist and finds both renditions' video.
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,width,height", "-of", "csv=p=0"])
        .arg(live.ng.url("/live/demo/master.m3u8"))
        .output()
        .unwrap();
    let probe = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    assert!(probe.contains("video,640,360") && probe.contains("video,320,180"), "ffprobe saw:\n{probe}");

    // ffmpeg plays the whole window from its first segment without an error.
    for r in renditions {
        let pl = media_playlist(&get(&live.ng.url(&format!("/live/demo/{r}/index.m3u8"))).text());
        let total: f32 = pl.segments.iter().map(|s| s.duration).sum();
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-live_start_index", "0", "-i"])
            .arg(live.ng.url(&format!("/live/demo/{r}/index.m3u8")))
            .args(["-t", &format!("{:.2}", total - 0.5), "-c", "copy", "-f", "null", "-"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.trim().is_empty(), "ffmpeg reading {r}: {err}");
    }
    let log = live.ng.error_log();
    assert!(!log.contains("exited on signal") && !log.contains("[alert]"), "{log}");
}

#[test]
fn live_mpegts_stream_through_nginx() {
    check_live(Container::Ts, "livets");
}

#[test]
fn live_fmp4_stream_through_nginx() {
    check_live(Container::Fmp4, "livefmp4");
}
