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
    let mut uris: Vec<_> = master.variants.iter().map(|v| (v.is_i_frame, v.uri.clone())).collect();
    uris.sort();
    // Each with its I-frame playlist (trick play).
    let listed = |i, u: &str| (i, u.to_string());
    assert_eq!(
        uris,
        [
            listed(false, "stream_hi/index.m3u8"),
            listed(false, "stream_lo/index.m3u8"),
            listed(true, "stream_hi/iframes.m3u8"),
            listed(true, "stream_lo/iframes.m3u8")
        ]
    );
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

/// Program date-time and msn of every segment of a media playlist, from its tags and durations.
fn dated(text: &str) -> Vec<(i64, i64)> {
    let pl = media_playlist(text);
    let mut at = None;
    let mut out = Vec::new();
    for (i, s) in pl.segments.iter().enumerate() {
        if let Some(pdt) = s.program_date_time {
            at = Some(pdt.timestamp_millis());
        }
        let t = at.expect("a date-time on the first segment");
        out.push((pl.media_sequence as i64 + i as i64, t));
        at = Some(t + (s.duration * 1000.0).round() as i64);
    }
    out
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[test]
fn a_catch_up_clip_plays_to_its_end_and_a_finished_stream_ends() {
    // 80 s of 2 s segments made at once, dated by their files: the first written 150 s ago.
    let cql = Cql::start();
    let ks = keyspace("clip");
    create_schema(&cql, &ks, "1h");
    let dir = TempDir::new("clip");
    let made = Command::new("ffmpeg")
        .current_dir(dir.path())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=80"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_segment_filename", "s%03d.ts", "clip.m3u8"])
        .status()
        .unwrap();
    assert!(made.success());
    let past = hls_dvr_core::clock::now_ms() / 1000 - 150;
    assert!(Command::new("touch")
        .arg("-d")
        .arg(format!("@{past}"))
        .arg(dir.path().join("s000.ts"))
        .status()
        .unwrap()
        .success());
    let _up = uploader(&cql, &ks, "demo", dir.path(), &[]);
    let ng = Nginx::start(&cql.addr, &ks, 2, "", "hls_dvr_window 1h;");
    // ffmpeg ended its playlist: once everything is stored, so does ours. The ended playlist is
    // checked itself: another worker may still answer from its own playlist cache, up to
    // `hls_dvr_playlist_cache` older.
    let mut live = String::new();
    wait_for("the whole stream, ended", Duration::from_secs(40), || {
        live = http("GET", &ng.url("/live/demo/clip/index.m3u8"), &[]).map(|r| r.text()).unwrap_or_default();
        live.ends_with("#EXT-X-ENDLIST\n")
    });
    assert_eq!(media_playlist(&live).segments.len(), 40);
    assert!(!live.contains("SERVER-CONTROL"));

    // 40 s from 20 s in: a VOD playlist that ffmpeg plays to its end.
    let t0 = dated(&live)[0].1;
    let url = ng.url(&format!("/live/demo/clip/index.m3u8?start={}&end={}", secs(t0 + 20_000), secs(t0 + 60_000)));
    let clip = get(&url).text();
    assert!(clip.contains("#EXT-X-PLAYLIST-TYPE:VOD") && clip.ends_with("#EXT-X-ENDLIST\n"));
    let out_file = dir.path().join("played.ts");
    let played = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i", &url, "-c", "copy", "-f", "mpegts"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(played.status.success(), "{}", String::from_utf8_lossy(&played.stderr));
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(&out_file)
        .output()
        .unwrap();
    let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
    assert!((duration - 40.0).abs() <= 2.0, "the clip played for {duration} s");
}

#[test]
fn start_over_grows_and_a_delayed_view_trails_the_live_edge() {
    let live = start(Container::Ts, "startover");
    let r = "stream_hi";
    wait_for("14 s of live stream", Duration::from_secs(40), || segments_served(&live, r) >= 14);
    let media = |q: &str| get(&live.ng.url(&format!("/live/demo/{r}/index.m3u8{q}"))).text();

    // Start-over from 8 s ago: an EVENT playlist whose first segment is within a target duration
    // of the start, and that only grows.
    let start_ms = hls_dvr_core::clock::now_ms() - 8000;
    let q = format!("?start={}", secs(start_ms));
    let event = media(&q);
    let pl = media_playlist(&event);
    assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Event));
    let first = dated(&event)[0].1;
    assert!((first - start_ms).abs() <= pl.target_duration as i64 * 1000, "starts {} ms from start", first - start_ms);
    std::thread::sleep(Duration::from_secs(3));
    let later = media(&q);
    let (a, b) = (dated(&event), dated(&later));
    assert!(b.len() > a.len() && b[..a.len()] == a[..], "the start-over did not only grow");

    // 5 s behind the live edge: the newest listed segment trails the newest live one by the
    // delay, within a target duration.
    let (edge, delayed) = (media(""), media("?delay=5"));
    let lag = dated(&edge).last().unwrap().1 - dated(&delayed).last().unwrap().1;
    assert!((lag - 5000).abs() <= 1000 + 500, "the delayed view trails by {lag} ms");
}
