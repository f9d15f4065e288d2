//! The uploader end to end: the built `hls-dvr-upload` binary on a folder that a live ffmpeg
//! writes, against Cassandra (tests/common), read back through the store layer and compared byte
//! for byte with what ffmpeg wrote.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::upload::{listed, Ffmpeg, Listed, Reader, Uploader};
use common::{keyspace, upload_bin, Container, Cql, TempDir};
use hls_dvr_core::model::IndexEntry;
use hls_dvr_store::BlobKind;

/// Checks consecutive store msns `first..` against ffmpeg's segments: same bytes, same durations,
/// same dates, in order.
fn assert_same(r: &Reader, stream: &str, rend: &str, dir: &Path, idx: &[IndexEntry], files: &[Listed], first: i64) {
    for (k, (e, l)) in idx.iter().zip(files).enumerate() {
        assert_eq!(e.msn, first + k as i64, "msns consecutive");
        assert_eq!(e.duration_us, l.duration_us, "duration of {}", l.uri);
        if let Some(p) = l.pdt_ms {
            assert_eq!(e.pdt_ms, p, "program date-time of {}", l.uri);
        }
        let want = fs::read(dir.join(&l.uri)).unwrap();
        assert_eq!(e.size, want.len() as i64, "size of {}", l.uri);
        let got = r.blob(BlobKind::Segment, stream, rend, e.msn);
        assert!(got == want, "{stream}/{rend} msn {} differs from {}", e.msn, l.uri);
    }
}

fn run_and_compare(test: &str, kind: Container) {
    let cql = Cql::start();
    let ks = keyspace(test);
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new(test);
    let dir = s.dir("live");
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &[], s.0.join("uploader.log"));
    // 2 s segments, as segmenters are usually set up.
    Ffmpeg::start_with(&dir, kind, 10, 2, &[]).finish();
    let r = Reader::new(&cql, &ks);
    for rend in ["out_0", "out_1"] {
        let files = listed(&dir.join(format!("{rend}.m3u8")));
        assert!(files.len() >= 5, "ffmpeg wrote {} segments", files.len());
        let idx = r.wait_for("live", rend, files.len(), Duration::from_secs(20));
        assert_eq!(idx.len(), files.len(), "exactly the listed segments");
        assert_same(&r, "live", rend, &dir, &idx, &files, 0);
        assert!(idx.iter().all(|e| !e.discontinuity && e.disc_seq == 0));
        let h = r.head("live", rend).expect("head row");
        assert_eq!(h.head_msn, files.len() as i64 - 1);
        assert_eq!(h.source.uri, files.last().unwrap().uri);
        assert_eq!(h.container, kind);
        assert_eq!(h.target_duration, 2);
        assert_eq!(h.resolution.as_deref(), Some(if rend == "out_0" { "320x180" } else { "160x90" }));
        assert!(h.codecs.as_deref().is_some_and(|c| c.contains("avc1") && c.contains("mp4a")), "{:?}", h.codecs);
        // The master's BANDWIDTH, not a measured one.
        let master = fs::read_to_string(dir.join("master.m3u8")).unwrap();
        let bw = h.bandwidth.expect("bandwidth");
        assert!(master.contains(&format!("BANDWIDTH={bw},")), "bandwidth {bw} not from {master}");
        if kind == Container::Fmp4 {
            let map = files[0].map.clone().expect("EXT-X-MAP");
            assert!(idx.iter().all(|e| e.init_msn == Some(0)), "every segment names init 0");
            let init = r.blob(BlobKind::Init, "live", rend, 0);
            assert!(init == fs::read(dir.join(&map)).unwrap(), "init segment differs from {map}");
        } else {
            assert!(idx.iter().all(|e| e.init_msn.is_none()));
        }
    }
    up.stop();
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn mpegts_two_renditions_are_stored_byte_identical_in_order() {
    run_and_compare("ts", Container::Ts);
}

#[test]
fn fmp4_two_renditions_store_segments_and_their_init_segment() {
    run_and_compare("fmp4", Container::Fmp4);
}

#[test]
fn segmenter_restart_gives_a_discontinuity_and_increasing_msns() {
    let cql = Cql::start();
    let ks = keyspace("restart");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("restart");
    let dir = s.dir("live");
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &[], s.0.join("uploader.log"));
    let r = Reader::new(&cql, &ks);

    // First run, killed mid-stream.
    let ff = Ffmpeg::start(&dir, Container::Fmp4, 60, &[]);
    let pl = dir.join("out_0.m3u8");
    common::wait_for("ffmpeg to list 4 segments", Duration::from_secs(20), || listed(&pl).len() >= 4);
    ff.kill();
    let first = listed(&pl);
    // Everything listed gets stored before the restart overwrites the names; keep copies.
    r.wait_for("live", "out_0", first.len(), Duration::from_secs(10));
    let keep = s.dir("first-run");
    for l in &first {
        fs::copy(dir.join(&l.uri), keep.join(&l.uri)).unwrap();
    }
    fs::copy(dir.join("init_0.mp4"), keep.join("init_0.mp4")).unwrap();

    // Second run in the same folder: numbering and names start over.
    Ffmpeg::start(&dir, Container::Fmp4, 4, &[]).finish();
    let second = listed(&pl);
    assert_eq!(second[0].uri, first[0].uri, "ffmpeg reuses names");
    let n1 = first.len();
    let idx = r.wait_for("live", "out_0", n1 + second.len(), Duration::from_secs(20));
    assert_eq!(idx.len(), n1 + second.len());
    assert_same(&r, "live", "out_0", &keep, &idx[..n1], &first, 0);
    assert_same(&r, "live", "out_0", &dir, &idx[n1..], &second, n1 as i64);
    for (i, e) in idx.iter().enumerate() {
        assert_eq!(e.discontinuity, i == n1, "discontinuity only at the restart (msn {})", e.msn);
        assert_eq!(e.disc_seq, (i >= n1) as i64);
    }
    // Each run's segments name an init segment holding that run's init bytes; a changed init is
    // stored under the first msn that uses it.
    let (old_init, new_init) = (fs::read(keep.join("init_0.mp4")).unwrap(), fs::read(dir.join("init_0.mp4")).unwrap());
    assert!(idx[..n1].iter().all(|e| e.init_msn == Some(0)));
    assert!(r.blob(BlobKind::Init, "live", "out_0", 0) == old_init);
    let m = idx[n1].init_msn.expect("init of the second run");
    assert!(idx[n1..].iter().all(|e| e.init_msn == Some(m)));
    assert_eq!(m, if old_init == new_init { 0 } else { n1 as i64 });
    assert!(r.blob(BlobKind::Init, "live", "out_0", m) == new_init);
    let h = r.head("live", "out_0").unwrap();
    assert_eq!((h.head_msn, h.head_disc_seq), ((n1 + second.len()) as i64 - 1, 1));
    up.stop();
    assert!(log_has(&s.0.join("uploader.log"), "segmenter restart"));
}

#[test]
fn segmenter_restarted_while_uploader_was_down_is_noticed_on_resume() {
    let cql = Cql::start();
    let ks = keyspace("restart_down");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("restart_down");
    let dir = s.dir("live");
    let log = s.0.join("uploader.log");
    let r = Reader::new(&cql, &ks);
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &[], log.clone());
    let ff = Ffmpeg::start(&dir, Container::Ts, 60, &[]);
    let pl = dir.join("out_0.m3u8");
    common::wait_for("ffmpeg to list 3 segments", Duration::from_secs(20), || listed(&pl).len() >= 3);
    ff.kill();
    let first = listed(&pl);
    let n1 = first.len();
    r.wait_for("live", "out_0", n1, Duration::from_secs(10));
    up.stop();
    let head = r.head("live", "out_0").unwrap();
    assert_eq!(head.source.uri, first[n1 - 1].uri);

    // The new run passes the old numbering before the uploader is back: the stored head's
    // (number, name) is listed again, as another file.
    Ffmpeg::start(&dir, Container::Ts, n1 as u32 + 3, &[]).finish();
    let second = listed(&pl);
    assert!(second.len() > n1 && second.iter().any(|l| l.uri == head.source.uri));
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &[], log.clone());
    let idx = r.wait_for("live", "out_0", n1 + second.len(), Duration::from_secs(8));
    up.stop();
    assert_eq!(idx.len(), n1 + second.len());
    assert_same(&r, "live", "out_0", &dir, &idx[n1..], &second, n1 as i64);
    for (i, e) in idx.iter().enumerate() {
        assert_eq!(e.discontinuity, i == n1, "discontinuity exactly at the restart (msn {})", e.msn);
    }
}

#[test]
fn without_a_master_each_media_playlist_is_a_rendition_with_measured_bandwidth() {
    let cql = Cql::start();
    let ks = keyspace("nomaster");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("nomaster");
    let dir = s.dir("live");
    let up = Uploader::start(&cql.addr, &ks, &[("cam-1", &dir)], &[], s.0.join("uploader.log"));
    // One rendition, no master playlist, a playlist name that needs sanitizing.
    let st = Command::new("ffmpeg")
        .current_dir(&dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-t", "4"])
        .args([
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "0",
            "-hls_segment_filename",
            "cam.%d.ts",
            "cam.main.m3u8",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let files = listed(&dir.join("cam.main.m3u8"));
    let r = Reader::new(&cql, &ks);
    let idx = r.wait_for("cam-1", "cam_main", files.len(), Duration::from_secs(20));
    assert_same(&r, "cam-1", "cam_main", &dir, &idx, &files, 0);
    up.stop();
    let rends = r.rt.block_on(r.store.renditions("cam-1")).unwrap();
    assert_eq!(rends.len(), 1, "one rendition");
    let h = &rends[0];
    assert_eq!((h.name.as_str(), h.container), ("cam_main", Container::Ts));
    // No PROGRAM-DATE-TIME from this segmenter: dates follow the durations within the run.
    // The first one is dated by its file: written (mtime) when it ended.
    assert!((idx[0].pdt_ms - r.since_ms - 60_000).abs() < 30_000, "first date near now");
    for w in idx.windows(2) {
        let step = w[1].pdt_ms - w[0].pdt_ms;
        assert!((step - w[0].duration_us / 1000).abs() <= 1, "dates chain by duration: step {step} ms");
    }
    let peak = idx.iter().map(|e| e.size * 8 * 1_000_000 / e.duration_us).max().unwrap();
    assert_eq!(h.bandwidth, Some(peak), "peak of size*8/duration");
    assert_eq!((h.codecs.as_deref(), h.resolution.as_deref()), (None, None));
}

fn log_has(log: &Path, what: &str) -> bool {
    fs::read_to_string(log).unwrap_or_default().contains(what)
}

#[test]
fn uploader_killed_and_restarted_loses_and_duplicates_nothing() {
    let cql = Cql::start();
    let ks = keyspace("crash");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("crash");
    let dir = s.dir("live");
    // A slow store makes the kill land mid-segment (between blob, index and head writes).
    let slow = cql.proxy();
    slow.set_delay(Duration::from_millis(40));
    let log = s.0.join("uploader.log");
    let ff = Ffmpeg::start(&dir, Container::Ts, 9, &[]);
    let r = Reader::new(&cql, &ks);
    for round in 0..2 {
        let up = Uploader::start(&slow.addr(), &ks, &[("live", &dir)], &[], log.clone());
        r.wait_for("live", "out_0", 2 + 3 * round, Duration::from_secs(20));
        r.wait_for("live", "out_1", 2 + 3 * round, Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(130));
        up.kill();
        // Segments pile up while no uploader runs.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let up = Uploader::start(&slow.addr(), &ks, &[("live", &dir)], &[], log.clone());
    ff.finish();
    for rend in ["out_0", "out_1"] {
        let files = listed(&dir.join(format!("{rend}.m3u8")));
        let idx = r.wait_for("live", rend, files.len(), Duration::from_secs(20));
        // wait_for returns at >= n: make sure no late duplicates follow.
        std::thread::sleep(Duration::from_millis(500));
        let idx2 = r.index("live", rend);
        assert_eq!(idx2.len(), idx.len());
        assert_eq!(idx.len(), files.len(), "{rend}: one stored segment per listed segment");
        assert_same(&r, "live", rend, &dir, &idx, &files, 0);
        assert!(idx.iter().all(|e| !e.discontinuity), "no discontinuity from an uploader restart");
    }
    up.stop();
    assert_eq!(
        fs::read_to_string(&log).unwrap().matches("resuming after msn").count(),
        4,
        "two restarts x two renditions"
    );
}

#[test]
fn store_outage_of_seconds_loses_nothing() {
    let cql = Cql::start();
    let node = cql.proxy();
    let ks = keyspace("outage");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("outage");
    let dir = s.dir("live");
    let log = s.0.join("uploader.log");
    let up = Uploader::start(&node.addr(), &ks, &[("live", &dir)], &[], log.clone());
    let ff = Ffmpeg::start(&dir, Container::Ts, 9, &[]);
    let r = Reader::new(&cql, &ks);
    r.wait_for("live", "out_0", 2, Duration::from_secs(20));
    node.set_down(true);
    std::thread::sleep(Duration::from_secs(4));
    node.set_down(false);
    ff.finish();
    for rend in ["out_0", "out_1"] {
        let files = listed(&dir.join(format!("{rend}.m3u8")));
        let idx = r.wait_for("live", rend, files.len(), Duration::from_secs(30));
        assert_eq!(idx.len(), files.len());
        assert_same(&r, "live", rend, &dir, &idx, &files, 0);
        assert!(idx.iter().all(|e| !e.discontinuity));
    }
    up.stop();
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("retrying in"), "the outage was noticed and retried");
}

#[test]
fn delete_after_upload_removes_stored_media_segments_only() {
    let cql = Cql::start();
    let ks = keyspace("delete");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("delete");
    let dir = s.dir("live");
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &["--delete-after-upload"], s.0.join("uploader.log"));
    Ffmpeg::start(&dir, Container::Fmp4, 4, &[]).finish();
    let r = Reader::new(&cql, &ks);
    let files = listed(&dir.join("out_0.m3u8"));
    let idx = r.wait_for("live", "out_0", files.len(), Duration::from_secs(20));
    r.wait_for("live", "out_1", listed(&dir.join("out_1.m3u8")).len(), Duration::from_secs(20));
    let kept = ["init_0.mp4", "init_1.mp4", "master.m3u8", "out_0.m3u8", "out_1.m3u8"];
    let left = || {
        let mut left: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        left
    };
    common::wait_for("every stored media segment removed", Duration::from_secs(10), || left() == kept);
    up.stop();
    assert_eq!(left(), kept, "the uploader removed a playlist or an init segment");
    // The stored copies are whole fMP4 fragments (moof first) of the listed sizes.
    for (e, l) in idx.iter().zip(&files) {
        let b = r.blob(BlobKind::Segment, "live", "out_0", e.msn);
        assert_eq!(b.len() as i64, e.size, "{}", l.uri);
        assert!(b.windows(4).take(64).any(|w| w == b"moof" || w == b"styp"), "{} is not a fragment", l.uri);
        assert_eq!(e.duration_us, l.duration_us);
    }
}

#[test]
fn uploader_down_longer_than_the_live_window_resumes_with_a_discontinuity() {
    let cql = Cql::start();
    let ks = keyspace("window");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("window");
    let dir = s.dir("live");
    let log = s.0.join("uploader.log");
    let ff = Ffmpeg::start(
        &dir,
        Container::Ts,
        11,
        &["-hls_list_size", "2", "-hls_delete_threshold", "1", "delete_segments"],
    );
    let r = Reader::new(&cql, &ks);
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &[], log.clone());
    let before = r.wait_for("live", "out_0", 3, Duration::from_secs(20)).len();
    up.kill();
    // Long enough for the stored head to leave the 2-segment window and be deleted.
    std::thread::sleep(Duration::from_secs(5));
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &[], log.clone());
    ff.finish();
    let last = listed(&dir.join("out_0.m3u8"));
    let idx = r.wait_for("live", "out_0", before + 3, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    up.stop();
    let idx = {
        let again = r.index("live", "out_0");
        assert!(again.len() >= idx.len());
        again
    };
    for (i, e) in idx.iter().enumerate() {
        assert_eq!(e.msn, i as i64, "consecutive msns across the gap");
        let b = r.blob(BlobKind::Segment, "live", "out_0", e.msn);
        assert!(b.len().is_multiple_of(188) && b.chunks(188).all(|p| p[0] == 0x47), "msn {} is not MPEG-TS", e.msn);
    }
    let discs: Vec<usize> = idx.iter().enumerate().filter(|(_, e)| e.discontinuity).map(|(i, _)| i).collect();
    assert_eq!(discs.len(), 1, "one discontinuity, at the resume point: {discs:?}");
    let d = discs[0];
    assert!(d >= 3, "after what the first run stored");
    assert!(idx[d..].iter().all(|e| e.disc_seq == 1) && idx[..d].iter().all(|e| e.disc_seq == 0));
    // The missed seconds show in the dates: more than the stored durations between them.
    let gap_ms = idx[d].pdt_ms - idx[d - 1].pdt_ms;
    assert!(gap_ms >= idx[d - 1].duration_us / 1000 + 2000, "gap of {gap_ms} ms");
    // The last stored segments are the ones ffmpeg still lists.
    let tail: Vec<i64> = idx.iter().rev().take(last.len()).rev().map(|e| e.duration_us).collect();
    assert_eq!(tail, last.iter().map(|l| l.duration_us).collect::<Vec<_>>());
    assert!(fs::read_to_string(&log).unwrap().contains("left the playlist unseen"));
}

#[test]
fn segmenters_that_end_their_stream_lose_nothing() {
    // A clean stop as users make one: GStreamer's hlssink2 (its final playlist has no trailing
    // newline) and ffmpeg (with one), both ending their playlist with EXT-X-ENDLIST.
    let cql = Cql::start();
    let ks = keyspace("ends");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("ends");
    let (gst_dir, ff_dir) = (s.dir("gst"), s.dir("ff"));
    let log = s.0.join("uploader.log");
    let up = Uploader::start(&cql.addr, &ks, &[("gst", &gst_dir), ("ff", &ff_dir)], &[], log.clone());
    let gst = Command::new("gst-launch-1.0")
        .current_dir(&gst_dir)
        .args(["-q", "-e", "videotestsrc", "is-live=true", "num-buffers=150", "!"])
        .args(["video/x-raw,width=320,height=180,framerate=25/1", "!"])
        .args(["x264enc", "key-int-max=25", "tune=zerolatency", "speed-preset=ultrafast", "!", "h264parse", "!"])
        .args(["hlssink2", "location=seg%05d.ts", "playlist-location=playlist.m3u8", "target-duration=1"])
        .args(["max-files=0", "playlist-length=0"])
        .status()
        .expect("gst-launch-1.0 (scripts/setup installs GStreamer)");
    assert!(gst.success());
    let last = fs::read(gst_dir.join("playlist.m3u8")).unwrap();
    assert!(last.ends_with(b"#EXT-X-ENDLIST"), "hlssink2 changed how it ends its playlist");
    Ffmpeg::start(&ff_dir, Container::Ts, 4, &[]).finish();
    let r = Reader::new(&cql, &ks);
    for (stream, rend, dir, playlist) in [
        ("gst", "playlist", &gst_dir, "playlist.m3u8"),
        ("ff", "out_0", &ff_dir, "out_0.m3u8"),
        ("ff", "out_1", &ff_dir, "out_1.m3u8"),
    ] {
        let files = listed(&dir.join(playlist));
        let idx = r.wait_for(stream, rend, files.len(), Duration::from_secs(20));
        assert_eq!(idx.len(), files.len(), "{stream}/{rend}: every listed segment stored");
        assert_same(&r, stream, rend, dir, &idx, &files, 0);
        common::wait_for(&format!("{stream}/{rend} stored as ended"), Duration::from_secs(10), || {
            r.head(stream, rend).is_some_and(|h| h.ended && h.head_msn == files.len() as i64 - 1)
        });
    }
    up.stop();
    assert!(
        !fs::read_to_string(&log).unwrap().contains("unreadable for"),
        "a final playlist was taken for a partial one"
    );
}

#[test]
fn playlist_writes_wake_the_uploader_without_polling() {
    // Polling once a minute: only inotify can store a live stream's segments as they come.
    let cql = Cql::start();
    let ks = keyspace("inotify");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("inotify");
    let dir = s.dir("live");
    let up = Uploader::start(&cql.addr, &ks, &[("live", &dir)], &["--poll-interval", "60s"], s.0.join("uploader.log"));
    std::thread::sleep(Duration::from_millis(500)); // watching, with nothing to read yet
    Ffmpeg::start(&dir, Container::Ts, 5, &[]).finish();
    let r = Reader::new(&cql, &ks);
    for rend in ["out_0", "out_1"] {
        let files = listed(&dir.join(format!("{rend}.m3u8")));
        let idx = r.wait_for("live", rend, files.len(), Duration::from_secs(10));
        assert_same(&r, "live", rend, &dir, &idx, &files, 0);
    }
    up.stop();
}

#[test]
fn help_and_bad_arguments() {
    let out = Command::new(upload_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--stream <NAME> <DIR>"));

    let s = TempDir::new("args");
    let dir = s.dir("d");
    let d = dir.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "--cassandra"),
        (&["--cassandra", "127.0.0.1:9", "--keyspace", "k"], "no streams"),
        (&["--cassandra", "127.0.0.1:9", "--keyspace", "k", "--stream", "bad.name", d], "stream name"),
        (
            &["--cassandra", "127.0.0.1:9", "--keyspace", "k", "--stream", "a", "/nonexistent/hls-dvr"],
            "/nonexistent/hls-dvr",
        ),
        (&["--cassandra", "127.0.0.1:9", "--keyspace", "k", "--stream", "a", d, "--frobnicate"], "unexpected argument"),
        (&["--cassandra", "nohost", "--keyspace", "k", "--stream", "a", d], "HOST:PORT"),
        (&["--cassandra", "127.0.0.1:9", "--keyspace", "k", "--stream", "a", d, "--poll-interval", "fast"], "duration"),
        (&["schema", "--cassandra", "127.0.0.1:9", "--keyspace", "k", "--replication", "Foo:1"], "replication"),
    ];
    for (args, want) in cases {
        let out = Command::new(upload_bin()).args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: stderr {err:?} lacks {want:?}");
    }
}

#[test]
fn unusable_store_exits_1_with_a_clear_message() {
    let s = TempDir::new("nostore");
    let dir = s.dir("d");
    // Nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = Command::new(upload_bin())
        .args(["--cassandra", &format!("127.0.0.1:{port}"), "--keyspace", "k", "--stream", "a"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot use the store") && err.contains(&port.to_string()), "{err}");

    // Reachable, but no schema: preparing fails.
    let cql = Cql::start();
    let out = Command::new(upload_bin())
        .args(["--cassandra", &cql.addr, "--keyspace", &keyspace("noschema"), "--stream", "a"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("hls-dvr-upload schema"), "{err}");
}
