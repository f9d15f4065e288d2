//! Push ingest end to end: ffmpeg pushes HLS (hls muxer, `-method PUT`) and CMAF (dash muxer in
//! streaming mode) to the built `hls-dvr-upload --listen`, against Cassandra; what is stored is
//! compared byte for byte with what the same encode wrote to a folder through ffmpeg's `tee`,
//! and played back through nginx. Bad pushes and two receivers fed by one encoder too.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::push::{cmaf_encoder, finish, hls_encoder, live_source, receiver, receiver_on};
use common::relay::Relay;
use common::upload::{listed, wait_exit, Reader};
use common::{
    free_port, get, keyspace, master_playlist, media_playlist, reported, Container, Cql, Nginx, Player, TempDir,
};
use hls_dvr_core::model::IndexEntry;
use hls_dvr_store::BlobKind;

/// Checks the stored segments are ffmpeg's files, in order, under consecutive numbers from 0.
fn assert_stored_as_written(r: &Reader, stream: &str, rend: &str, dir: &Path) -> Vec<IndexEntry> {
    let files = listed(&dir.join(format!("{rend}.m3u8")));
    assert!(files.len() >= 4, "ffmpeg wrote {} segments", files.len());
    // ffmpeg 5.1 sends no final playlist for the last variant when it stops: its last segment
    // may never be listed to a receiver.
    let idx = r.wait_for(stream, rend, files.len() - 1, Duration::from_secs(20));
    for (k, (e, l)) in idx.iter().zip(&files).enumerate() {
        assert_eq!(e.msn, k as i64, "{rend}: numbers consecutive from 0");
        assert_eq!(e.duration_us, l.duration_us, "duration of {}", l.uri);
        // Each tee output is its own hls muxer, which reads the clock for its first date itself:
        // the pushed playlist's dates may differ from the written one's by a millisecond or two.
        let pdt = l.pdt_ms.expect("program_date_time");
        assert!((e.pdt_ms - pdt).abs() <= 5, "program date-time of {}: {} vs {pdt}", l.uri, e.pdt_ms);
        let want = fs::read(dir.join(&l.uri)).unwrap();
        assert!(r.blob(BlobKind::Segment, stream, rend, e.msn) == want, "{stream}/{rend} {} is not {}", e.msn, l.uri);
        if let Some(map) = &l.map {
            let init = fs::read(dir.join(map)).unwrap();
            let init_msn = e.init_msn.expect("an fMP4 segment names its init segment");
            assert!(r.blob(BlobKind::Init, stream, rend, init_msn) == init, "init segment of {}", l.uri);
        }
    }
    idx
}

fn hls_push_is_stored_as_written(test: &str, kind: Container) {
    let cql = Cql::start();
    let ks = keyspace(test);
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new(test);
    let (up, port) = receiver(&cql, &ks, &s, "receiver", &[]);
    let dir = s.dir("local");
    let url = format!("http://127.0.0.1:{port}/ingest/live/out_%v.m3u8");
    finish(hls_encoder(&dir, kind, 10, std::slice::from_ref(&url)));
    let r = Reader::new(&cql, &ks);
    for rend in ["out_0", "out_1"] {
        assert_stored_as_written(&r, "live", rend, &dir);
        let h = r.head("live", rend).expect("head");
        assert_eq!(h.container, kind);
        // From the pushed master playlist.
        assert_eq!(h.resolution.as_deref(), Some(if rend == "out_0" { "320x180" } else { "160x90" }));
        assert!(h.bandwidth.is_some());
    }
    // The encoder restarts (numbering from 0 again): numbers go on, with a discontinuity.
    let before = r.index("live", "out_0").len() as i64;
    let dir2 = s.dir("local2");
    finish(hls_encoder(&dir2, kind, 5, &[url]));
    let idx = r.wait_for("live", "out_0", before as usize + 2, Duration::from_secs(20));
    let restarted = idx.iter().find(|e| e.msn == before).expect("the restarted encoder's first segment");
    assert!(restarted.discontinuity && restarted.disc_seq == 1, "{restarted:?}");
    let first = listed(&dir2.join("out_0.m3u8"));
    assert!(r.blob(BlobKind::Segment, "live", "out_0", before) == fs::read(dir2.join(&first[0].uri)).unwrap());
    up.stop();
}

#[test]
fn hls_push_ts_is_stored_as_written() {
    hls_push_is_stored_as_written("push_ts", Container::Ts);
}

#[test]
fn hls_push_fmp4_is_stored_as_written() {
    hls_push_is_stored_as_written("push_fmp4", Container::Fmp4);
}

/// ffprobe's duration of a URL, in seconds.
fn probe_duration(url: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", url])
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0)
}

#[test]
fn cmaf_push_is_stored_fragment_by_fragment_and_plays_through_nginx() {
    let cql = Cql::start();
    let ks = keyspace("push_cmaf");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("push_cmaf");
    let (up, port) = receiver(&cql, &ks, &s, "receiver", &[]);
    let enc = cmaf_encoder(11, &format!("http://127.0.0.1:{port}/ingest/cm/manifest.mpd"), &[]);
    let r = Reader::new(&cql, &ks);
    // A segment's fragments are readable (as chunks) before it ends: its index row is not
    // there yet, its first chunk is.
    common::wait_for("the first fragments", Duration::from_secs(30), || {
        let first = r.rt.block_on(r.store.arriving_chunk("cm", "stream0", 0, 0)).expect("read a part");
        first.is_some() && r.index("cm", "stream0").is_empty()
    });
    finish(enc);
    for (rend, codec) in [("stream0", "avc1."), ("stream1", "mp4a.40.2")] {
        let idx = r.wait_for("cm", rend, 4, Duration::from_secs(20));
        for (k, e) in idx.iter().enumerate() {
            assert_eq!(e.msn, k as i64);
            assert!((1_900_000..=2_100_000).contains(&e.duration_us), "{rend} {}: {} us", e.msn, e.duration_us);
            let bytes = r.blob(BlobKind::Segment, "cm", rend, e.msn);
            assert_eq!(bytes.len() as i64, e.size);
            // A whole CMAF segment: styp, then fragments.
            assert_eq!(&bytes[4..8], b"styp");
        }
        // Dates from prft, 2 s apart.
        assert!(idx.windows(2).all(|w| (w[1].pdt_ms - w[0].pdt_ms - 2000).abs() < 100), "{idx:?}");
        let h = r.head("cm", rend).unwrap();
        assert!(h.codecs.as_deref().is_some_and(|c| c.starts_with(codec)), "{:?}", h.codecs);
    }
    // Played through nginx: audio as a group of the video variant.
    let ng = Nginx::start(&cql.addr, &ks, 1, "", "");
    ng.wait_ready("/live/cm/master.m3u8");
    let master = master_playlist(&get(&ng.url("/live/cm/master.m3u8")).text());
    // The video variant, and its I-frame playlist; audio has no key frames to list.
    assert_eq!(master.variants.len(), 2);
    assert_eq!(master.variants[0].audio.as_deref(), Some("audio"));
    assert!(master.variants[1].is_i_frame && master.variants[1].uri == "stream0/iframes.m3u8");
    assert_eq!(master.alternatives[0].uri.as_deref(), Some("stream1/index.m3u8"));
    let video = media_playlist(&get(&ng.url("/live/cm/stream0/index.m3u8")).text());
    assert!(video.segments.len() >= 4);
    let idx = r.index("cm", "stream0");
    // Half a second inside the video's first four segments: the audio track's dates (from its
    // own prft) are some milliseconds apart from the video's, and a range selects every
    // segment it touches.
    let (from, to) = (idx[0].pdt_ms + 500, idx[3].pdt_ms + idx[3].duration_us / 1000 - 500);
    let clip = format!("/live/cm/master.m3u8?start={:.3}&end={:.3}", from as f64 / 1e3, to as f64 / 1e3);
    let d = probe_duration(&ng.url(&clip));
    assert!((7.5..=8.6).contains(&d), "ffprobe read {d} s of {clip} through nginx");
    up.stop();
    // hls.js in Chromium plays the same range to its end: video with its audio group.
    let (page, page_port) = (common::player_page(), free_port());
    ng.reconfigure(&cql.addr, &ks, 1, &common::player_server(page_port, page.path()), "");
    common::wait_for("the player page", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", page_port)).is_ok()
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(common::player_url(page_port, &ng.url(&clip)))
        .arg("ended")
        .output()
        .expect("node (scripts/setup installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && report.contains("\"ok\":true"), "hls.js: {report}");
    assert!((7.5..=8.6).contains(&reported(&report, "duration")), "{report}");
    // The encoder restarts: segment numbers and media times begin again, and the segments are
    // new ones (a discontinuity), not copies of the first run's.
    let up = receiver_on(port, &cql, &ks, &s, "receiver", &[]);
    let before = r.index("cm", "stream0").len();
    finish(cmaf_encoder(5, &format!("http://127.0.0.1:{port}/ingest/cm/manifest.mpd"), &[]));
    let idx = r.wait_for("cm", "stream0", before + 2, Duration::from_secs(20));
    // ffmpeg leaves the first run's last, partial segment unfinished: its number is a gap.
    assert!(idx[before].msn > idx[before - 1].msn, "{idx:?}");
    assert!(idx[before].discontinuity && idx[before].disc_seq == 1, "{:?}", idx[before]);
    up.stop();
}

/// Sends a raw request and returns the status code.
fn raw(port: u16, request: &[u8]) -> u16 {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn put(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut req = format!("PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(port, &bytes)
}

#[test]
fn bad_pushes_get_clear_statuses_and_store_nothing_half() {
    let cql = Cql::start();
    let ks = keyspace("push_bad");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("push_bad");
    let tokens = s.0.join("tokens");
    fs::write(&tokens, "t0ken\n").unwrap();
    let (up, port) = receiver(
        &cql,
        &ks,
        &s,
        "receiver",
        &["--ingest-token-file", tokens.to_str().unwrap(), "--max-segment-size", "1m", "--ingest-idle-timeout", "1s"],
    );
    let auth = [("Authorization", "Bearer t0ken")];
    assert_eq!(put(port, "/ingest/x/a.ts", &[], b"x"), 401);
    assert_eq!(put(port, "/ingest/x/a.ts", &[("Authorization", "Bearer nope")], b"x"), 401);
    assert_eq!(put(port, "/ingest/x/a.ts", &auth, b"x"), 201);
    assert_eq!(put(port, "/nowhere", &auth, b""), 404);
    assert_eq!(put(port, "/ingest/bad.name/a.ts", &auth, b""), 404);
    assert_eq!(
        raw(
            port,
            b"DELETE /ingest/x/a.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nConnection: close\r\n\r\n"
        ),
        204
    );
    assert_eq!(
        raw(
            port,
            b"GET /ingest/x/a.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nConnection: close\r\n\r\n"
        ),
        405
    );
    assert_eq!(put(port, "/ingest/x/big.ts", &auth, &vec![0x47; 1_100_000]), 413);
    assert_eq!(put(port, "/ingest/x/out.m3u8", &auth, b"garbage\n"), 400);
    assert_eq!(put(port, "/ingest/x/init-v.m4s", &auth, b"\0\0\0\x10ftypisom\0\0\0\0"), 400);
    assert_eq!(put(port, "/ingest/x/chunk-w-00001.m4s", &auth, b"anything"), 400, "no init segment");
    // A real init segment, then a segment cut inside its fragment: 408 after the idle timeout,
    // and no index row.
    let dir = s.dir("dash");
    let mut enc = cmaf_encoder(3, &format!("{}/manifest.mpd", dir.display()), &["-streaming", "0"]);
    let _ = wait_exit(&mut enc, Duration::from_secs(60));
    let init = fs::read(dir.join("init-stream0.m4s")).unwrap();
    assert_eq!(put(port, "/ingest/x/init-stream0.m4s", &auth, &init), 201);
    let seg = fs::read(dir.join("chunk-stream0-00001.m4s")).unwrap();
    let head = format!("PUT /ingest/x/chunk-stream0-00001.m4s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nContent-Length: {}\r\n\r\n", seg.len());
    let mut cut = head.into_bytes();
    cut.extend_from_slice(&seg[..seg.len() - 100]);
    assert_eq!(raw(port, &cut), 408);
    let r = Reader::new(&cql, &ks);
    assert!(r.index("x", "stream0").is_empty(), "a cut segment has no index row");
    // Its fragments stay stored; the whole segment reads as absent.
    assert!(r.rt.block_on(r.store.read_blob(BlobKind::Segment, "x", "stream0", 0)).unwrap().is_none());
    // The same segment whole is stored under the next number (the cut one is a gap).
    assert_eq!(
        put(port, "/ingest/x/chunk-stream0-00002.m4s", &auth, &fs::read(dir.join("chunk-stream0-00002.m4s")).unwrap()),
        201
    );
    let idx = r.wait_for("x", "stream0", 1, Duration::from_secs(10));
    assert_eq!(idx[0].msn, 1);
    up.stop();
    let log = fs::read_to_string(s.0.join("receiver.log")).unwrap();
    assert!(log.contains("no index row names it"), "{log}");
}

#[test]
fn addresses_outside_the_allowed_ranges_are_refused() {
    let cql = Cql::start();
    let ks = keyspace("push_cidr");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("push_cidr");
    let (up, port) = receiver(&cql, &ks, &s, "r1", &["--ingest-allow", "10.0.0.0/8"]);
    assert_eq!(put(port, "/ingest/x/a.ts", &[], b"x"), 403);
    drop(up);
    let (up, port) = receiver(&cql, &ks, &s, "r2", &["--ingest-allow", "127.0.0.0/8"]);
    assert_eq!(put(port, "/ingest/x/a.ts", &[], b"x"), 201);
    up.stop();
}

/// Every stored segment of `rend`, by number: none twice, none missing.
fn assert_once_each(r: &Reader, stream: &str, rend: &str, dir: &Path) {
    let idx = assert_stored_as_written(r, stream, rend, dir);
    let mut seen = std::collections::HashSet::new();
    for e in &idx {
        assert!(seen.insert(e.pdt_ms), "{rend}: date {} stored twice", e.pdt_ms);
    }
}

#[test]
fn two_receivers_store_each_segment_once_and_survive_a_kill() {
    let cql = Cql::start();
    let ks = keyspace("push_two");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("push_two");
    let (a, pa) = receiver(&cql, &ks, &s, "a", &["--metrics", &format!("127.0.0.1:{}", free_port())]);
    let metrics_b = free_port();
    let (b, pb) = receiver(&cql, &ks, &s, "b", &["--metrics", &format!("127.0.0.1:{metrics_b}")]);
    let dir = s.dir("local");
    let urls = [pa, pb].map(|p| format!("http://127.0.0.1:{p}/ingest/two/out_%v.m3u8"));
    let enc = hls_encoder(&dir, Container::Ts, 16, &urls);
    let r = Reader::new(&cql, &ks);
    // Both receive everything for a while, then receiver a dies without warning.
    r.wait_for("two", "out_0", 3, Duration::from_secs(30));
    a.kill();
    finish(enc);
    for rend in ["out_0", "out_1"] {
        assert_once_each(&r, "two", rend, &dir);
    }
    // While both were up, b left to a what a had claimed; after the kill, b stored the rest.
    let text = get(&format!("http://127.0.0.1:{metrics_b}/metrics")).text();
    let sum = |family: &str| -> u64 {
        text.lines().filter(|l| l.starts_with(family)).filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum()
    };
    assert!(sum("hls_dvr_upload_segments_total") > 0, "{text}");
    assert!(sum("hls_dvr_upload_copies_total") + sum("hls_dvr_upload_segments_total") >= 10, "{text}");
    b.stop();
}

#[test]
fn interface_1_tracks_are_cut_into_segments_at_key_frames() {
    let cql = Cql::start();
    let ks = keyspace("push_if1");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("push_if1");
    let (up, port) = receiver(&cql, &ks, &s, "receiver", &[]);
    // One long chunked POST per track, as ffmpeg's mp4 muxer sends a live CMAF track.
    let track = |map: &str, codec: &[&str], name: &str| {
        live_source()
            .args(["-map", map])
            .args(codec)
            .args(["-t", "9", "-f", "mp4", "-movflags", "+cmaf+empty_moov+default_base_moof+frag_keyframe"])
            .args(["-frag_duration", "500000", "-method", "POST", "-chunked_post", "1"])
            .arg(format!("http://127.0.0.1:{port}/ingest/i1/Streams({name})"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ffmpeg")
    };
    let video = track("0:v", &["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50"], "video");
    let audio = track("1:a", &["-c:a", "aac"], "audio");
    finish(video);
    finish(audio);
    let r = Reader::new(&cql, &ks);
    for rend in ["video", "audio"] {
        let idx = r.wait_for("i1", rend, 3, Duration::from_secs(20));
        // Whole segments of about 2 s (the last one may be shorter), numbered from 0.
        for (k, e) in idx.iter().enumerate() {
            assert_eq!(e.msn, k as i64);
            assert!(e.duration_us <= 2_600_000, "{rend} {}: {} us", e.msn, e.duration_us);
            assert_eq!(r.blob(BlobKind::Segment, "i1", rend, e.msn).len() as i64, e.size);
        }
        assert!(idx.iter().take(3).all(|e| e.duration_us >= 1_900_000), "{rend}: {idx:?}");
        // The init segment came first in the body.
        let init = r.blob(BlobKind::Init, "i1", rend, idx[0].init_msn.expect("init"));
        assert_eq!(&init[4..8], b"ftyp");
    }
    up.stop();
}

#[test]
fn two_receivers_killed_one_after_the_other_lose_nothing_under_a_player() {
    let cql = Cql::start();
    let ks = keyspace("push_kills");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("push_kills");
    let (pa, pb) = (free_port(), free_port());
    let a = receiver_on(pa, &cql, &ks, &s, "a", &[]);
    let b = receiver_on(pb, &cql, &ks, &s, "b", &[]);
    // Each receiver behind a relay that retries, as MediaLive's outputs do.
    let (ra, rb) = (Relay::start(pa), Relay::start(pb));
    let dir = s.dir("local");
    let urls = [ra.port, rb.port].map(|p| format!("http://127.0.0.1:{p}/ingest/two/out_%v.m3u8"));
    let enc = hls_encoder(&dir, Container::Ts, 44, &urls);
    let r = Reader::new(&cql, &ks);
    r.wait_for("two", "out_0", 3, Duration::from_secs(30));
    let (page, page_port) = (common::player_page(), free_port());
    let ng = Nginx::start(&cql.addr, &ks, 1, &common::player_server(page_port, page.path()), "");
    ng.wait_ready("/live/two/master.m3u8");
    let player = Player::start(&ng, page, page_port, "/live/two/master.m3u8");
    std::thread::sleep(Duration::from_secs(6));
    // SIGKILL a; restarted 4 s later it resumes from the store and catches up through its relay;
    // then b is killed, and a carries the stream alone.
    a.kill();
    std::thread::sleep(Duration::from_secs(4));
    let a = receiver_on(pa, &cql, &ks, &s, "a", &[]);
    std::thread::sleep(Duration::from_secs(8));
    b.kill();
    finish(enc);
    for rend in ["out_0", "out_1"] {
        assert_once_each(&r, "two", rend, &dir);
    }
    let played = player.stop();
    let (watched, played_s) = (reported(&played, "wallS"), reported(&played, "playedS"));
    eprintln!("hls.js through both kills: {played}");
    assert!(played.contains("\"ok\":true") && !played.contains("networkError/"), "hls.js: {played}");
    // Played on through both kills (a stall on 2 busy cores aside).
    assert!(played_s > watched * 0.75, "hls.js played {played_s} s of {watched} s: {played}");
    a.stop();
}

#[test]
fn an_encoder_restarted_against_the_other_receiver_goes_on_with_a_discontinuity() {
    let cql = Cql::start();
    let ks = keyspace("push_failover");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("push_failover");
    let (a, pa) = receiver(&cql, &ks, &s, "a", &[]);
    let (b, pb) = receiver(&cql, &ks, &s, "b", &[]);
    let (d1, d2) = (s.dir("first"), s.dir("second"));
    finish(hls_encoder(&d1, Container::Fmp4, 7, &[format!("http://127.0.0.1:{pa}/ingest/fo/out_%v.m3u8")]));
    let r = Reader::new(&cql, &ks);
    let first = assert_stored_as_written(&r, "fo", "out_0", &d1);
    // The encoder fails over: a new run, numbered from 0 again, to the other receiver.
    finish(hls_encoder(&d2, Container::Fmp4, 7, &[format!("http://127.0.0.1:{pb}/ingest/fo/out_%v.m3u8")]));
    let n = listed(&d2.join("out_0.m3u8")).len();
    let all = r.wait_for("fo", "out_0", first.len() + n - 1, Duration::from_secs(20));
    let msns: Vec<i64> = all.iter().map(|e| e.msn).collect();
    assert_eq!(msns, (0..all.len() as i64).collect::<Vec<_>>(), "numbers go on, none reused");
    let next = &all[first.len()];
    assert!(next.discontinuity && next.disc_seq == 1, "{next:?}");
    assert!(all[first.len() + 1..].iter().all(|e| !e.discontinuity));
    let listed2 = listed(&d2.join("out_0.m3u8"));
    assert!(r.blob(BlobKind::Segment, "fo", "out_0", next.msn) == fs::read(d2.join(&listed2[0].uri)).unwrap());
    a.stop();
    b.stop();
}
