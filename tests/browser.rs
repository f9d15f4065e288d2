//! A viewer in a real browser: hls.js in Debian's headless Chromium plays the stream from a page on
//! another origin (so CORS is exercised), seeks 60 s back into the DVR window and keeps playing,
//! asking for delta updates and blocking reloads as they are offered; then plays a catch-up clip
//! to its end. And the demo's DVR player page, driven through its own controls.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn hls_js_plays_seeks_back_60s_and_keeps_playing() {
    let page_dir = player_page();
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let cql = Cql::start();
    let ks = keyspace("browser");
    create_schema(&cql, &ks, "1h");
    let dir = TempDir::new("browser");

    // 80 s of history, made faster than real time, then the encoder restarts live in the same
    // folder (numbering reset: the uploader records a discontinuity).
    let backlog = Command::new("ffmpeg")
        .current_dir(dir.path())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=80"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=80"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0"])
        .args(["-hls_flags", "program_date_time+independent_segments"])
        .args(["-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0,name:hi"])
        .args(["-hls_segment_filename", "seg_%v_%05d.ts", "stream_%v.m3u8"])
        .status()
        .unwrap();
    assert!(backlog.success());
    let _up = uploader(&cql, &ks, "demo", dir.path(), &[]);
    let page_port = free_port();
    let ng = Nginx::start(&cql.addr, &ks, 2, &player_server(page_port, page_dir.path()), "hls_dvr_window 1h;");
    wait_for("the backlog in the store", Duration::from_secs(60), || {
        http("GET", &ng.url("/live/demo/stream_hi/index.m3u8"), &[])
            .is_ok_and(|r| r.status == 200 && media_playlist(&r.text()).segments.len() >= 40)
    });
    let _live = {
        let mut cmd = Command::new("ffmpeg");
        cmd.current_dir(dir.path())
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-threads", "1"])
            .args(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k"])
            .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "0"])
            .args(["-hls_flags", "program_date_time+independent_segments"])
            .args(["-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0,name:hi"])
            .args(["-hls_segment_filename", "seg_%v_%05d.ts", "stream_%v.m3u8"]);
        Proc(cmd.spawn().unwrap())
    };
    wait_for("the live part after the restart", Duration::from_secs(30), || {
        http("GET", &ng.url("/live/demo/stream_hi/index.m3u8"), &[])
            .is_ok_and(|r| r.status == 200 && media_playlist(&r.text()).segments.len() >= 43)
    });
    let pl = media_playlist(&get(&ng.url("/live/demo/stream_hi/index.m3u8")).text());
    assert!(pl.segments.iter().skip(1).any(|s| s.discontinuity), "the encoder restart should be a discontinuity");

    let play = |src: &str, mode: &str| {
        let page = player_url(page_port, &ng.url(src));
        let out = Command::new("node").arg(browser_dir.join("play.mjs")).arg(&page).arg(mode).output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "browser playback failed: {report}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(report.contains("\"ok\":true"), "{report}");
        eprintln!("browser: {report}");
        report
    };
    play("/live/demo/master.m3u8", "60");
    // The playlists advertise delta updates and blocking reloads: hls.js uses both.
    let access = std::fs::read_to_string(ng.dir.path().join("logs/access.log")).unwrap();
    let asked =
        |what: &str| access.lines().filter(|l| l.contains("/stream_hi/index.m3u8?") && l.contains(what)).count();
    assert!(
        asked("_HLS_skip=YES") > 0 && asked("_HLS_msn=") > 0,
        "no delta update or blocking reload asked for:\n{access}"
    );

    // The first 10 s of the backlog, as a clip, play to their end. (The backlog was made faster
    // than real time, so only its start is surely older than the live part that followed.)
    let pl = get(&ng.url("/live/demo/stream_hi/index.m3u8")).text();
    let first = pl.lines().find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:")).unwrap();
    let t0 = hls_dvr_core::clock::parse_iso8601(first).unwrap();
    let secs = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let clip = format!("/live/demo/master.m3u8?start={}&end={}", secs(t0), secs(t0 + 10_000));
    let variant = get(&ng.url(&clip)).text();
    let variant = master_playlist(&variant).variants[0].uri.clone();
    assert!(get(&ng.url(&format!("/live/demo/{variant}"))).text().contains("#EXT-X-PLAYLIST-TYPE:VOD"));
    let report = play(&clip, "ended");
    assert!(report.contains("\"duration\":10"), "a 10 s clip: {report}");
}

/// The demo's DVR player page (nginx-conf/player/index.html), driven through its own controls:
/// it lists the stream from the status endpoint, plays, seeks to a wall-clock time typed in, its
/// LIVE button returns to the edge, and its download link names an MP4 file nginx sends. A screenshot is left in target/dvr-page.png.
#[test]
fn the_dvr_page_lists_plays_seeks_to_a_time_and_returns_live() {
    let page_dir = player_page();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cql = Cql::start();
    let ks = keyspace("dvrpage");
    create_schema(&cql, &ks, "1h");
    let dir = TempDir::new("dvrpage");
    let _ffmpeg = ffmpeg_live(dir.path(), Container::Ts, 2);
    let _up = uploader(&cql, &ks, "demo", dir.path(), &[]);
    // Served as the demo serves it: /status and /live/ on the page's own server.
    let page_port = free_port();
    let ng = Nginx::start(
        &cql.addr,
        &ks,
        2,
        &format!(
            "types {{ text/html html; application/javascript js; }}\n\
             server {{ listen 127.0.0.1:{page_port};\n\
               location /player/ {{ alias {}/; index index.html; }}\n\
               location /live/ {{ hls_dvr; }}\n\
               location = /status {{ hls_dvr_status; }} }}",
            page_dir.path().display()
        ),
        "",
    );
    // 50 s of history: enough to seek 40 s back.
    wait_for("50 s of the live stream", Duration::from_secs(90), || {
        http("GET", &ng.url("/live/demo/stream_hi/index.m3u8"), &[])
            .is_ok_and(|r| r.status == 200 && media_playlist(&r.text()).segments.len() >= 25)
    });
    let shot = root.join("target/dvr-page.png");
    let out = Command::new("node")
        .arg(root.join("tests/browser/dvr_page.mjs"))
        .arg(format!("http://127.0.0.1:{page_port}/player/"))
        .arg("demo")
        .arg(&shot)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the DVR page failed: {report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("\"ok\":true"), "{report}");
    eprintln!("dvr page: {report}");
}
