//! Low-latency HLS end to end: ffmpeg pushes CMAF (dash muxer in streaming mode, 2 s segments of
//! 0.5 s fragments) to the built receiver, against Cassandra; nginx with the module serves the
//! parts. Playlists are checked against RFC 8216bis's part rules with the test's own reading of
//! them; blocked requests, hinted parts and players (hls.js and Shaka Player in low-latency mode)
//! run against the real thing.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::push::{cmaf_encoder, finish, receiver};
use common::{free_port, get, http, keyspace, reported, wait_for, Cql, Nginx, TempDir};

/// A part as a playlist lists it.
#[derive(Debug, Clone, PartialEq)]
struct ListedPart {
    uri: String,
    duration: f64,
    independent: bool,
}

/// A media playlist with parts, read line by line (not with the module's own code).
#[derive(Debug, Default)]
struct LlPlaylist {
    part_target: f64,
    part_hold_back: f64,
    media_sequence: i64,
    skipped: i64,
    /// Whole segments (msn, EXTINF, the parts listed before it).
    segments: Vec<(i64, f64, Vec<ListedPart>)>,
    /// Parts after the last whole segment.
    progress: Vec<ListedPart>,
    hint: Option<String>,
    /// Rendition reports: URI -> (LAST-MSN, LAST-PART).
    reports: HashMap<String, (i64, Option<i64>)>,
    /// What came after the preload hint, but for reports.
    after_hint: Vec<String>,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => &rest[..rest.find(',').unwrap_or(rest.len())],
    })
}

fn read_ll(text: &str) -> LlPlaylist {
    let mut p = LlPlaylist::default();
    let mut parts = Vec::new();
    let mut extinf = None;
    let mut msn = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
            p.part_target = attr(v, "PART-TARGET").unwrap().parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            p.part_hold_back = attr(v, "PART-HOLD-BACK").map_or(0.0, |x| x.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().unwrap();
            msn = Some(p.media_sequence);
        } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
            p.skipped = attr(v, "SKIPPED-SEGMENTS").unwrap().parse().unwrap();
            msn = msn.map(|m| m + p.skipped);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            assert!(p.hint.is_none(), "a part after the preload hint:\n{text}");
            parts.push(ListedPart {
                uri: attr(v, "URI").unwrap().to_string(),
                duration: attr(v, "DURATION").unwrap().parse().unwrap(),
                independent: attr(v, "INDEPENDENT") == Some("YES"),
            });
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            assert!(p.hint.is_none(), "two preload hints:\n{text}");
            assert_eq!(attr(v, "TYPE"), Some("PART"));
            p.hint = Some(attr(v, "URI").unwrap().to_string());
        } else if let Some(v) = line.strip_prefix("#EXT-X-RENDITION-REPORT:") {
            let last_part = attr(v, "LAST-PART").map(|x| x.parse().unwrap());
            p.reports.insert(
                attr(v, "URI").unwrap().to_string(),
                (attr(v, "LAST-MSN").unwrap().parse().unwrap(), last_part),
            );
        } else if p.hint.is_some() {
            p.after_hint.push(line.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let m = msn.expect("a media sequence before segments");
            assert_eq!(line.split(['.', '?']).next().unwrap(), m.to_string(), "segment URIs follow the sequence");
            p.segments.push((m, extinf.take().expect("EXTINF before a URI"), std::mem::take(&mut parts)));
            msn = Some(m + 1);
        }
    }
    p.progress = parts;
    p
}

/// The types of the top-level MP4 boxes of `data`, which must be whole boxes.
fn top_level_boxes(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && at + size <= data.len(), "a cut box at {at} of {}", data.len());
        out.push(String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned());
        at += size;
    }
    out
}

/// Where a part URI points: (msn, part).
fn part_pos(uri: &str) -> (i64, i64) {
    let name = uri.split('?').next().unwrap().trim_end_matches(".m4s");
    let (m, p) = name.split_once('.').expect("MSN.PART.m4s");
    (m.parse().unwrap(), p.parse().unwrap())
}

/// Checks one playlist against RFC 8216bis's part rules, and against the one before it.
fn check_part_rules(text: &str, before: Option<&LlPlaylist>, td: f64) -> LlPlaylist {
    let p = read_ll(text);
    assert!(p.part_target > 0.0, "no PART-INF:\n{text}");
    assert!((p.part_hold_back - 3.0 * p.part_target).abs() < 1e-6, "PART-HOLD-BACK is three part targets:\n{text}");
    let all_parts = p.segments.iter().flat_map(|s| &s.2).chain(&p.progress);
    for part in all_parts.clone() {
        assert!(part.duration <= p.part_target + 1e-9, "{part:?} is longer than PART-TARGET {}", p.part_target);
    }
    // Parts of a whole segment add up to it and start with an independent one.
    for (msn, d, parts) in &p.segments {
        if !parts.is_empty() {
            let sum: f64 = parts.iter().map(|x| x.duration).sum();
            assert!((sum - d).abs() < 0.0015, "parts of {msn} add up to {sum}, its EXTINF is {d}");
            assert!(parts[0].independent, "part 0 of {msn} starts with a key frame");
            for (i, x) in parts.iter().enumerate() {
                assert_eq!(part_pos(&x.uri), (*msn, i as i64), "part URIs are MSN.PART");
            }
        }
    }
    // Parts cover at least the last three target durations.
    let with_parts: f64 = p.segments.iter().rev().take_while(|s| !s.2.is_empty()).map(|s| s.1).sum();
    let progress: f64 = p.progress.iter().map(|x| x.duration).sum();
    assert!(with_parts + progress >= 3.0 * td - 0.1, "parts cover {with_parts} + {progress} s:\n{text}");
    // The hint names the part after the last one listed; only reports follow it.
    let last = all_parts.clone().last().map(|x| part_pos(&x.uri)).unwrap();
    let hint = part_pos(p.hint.as_deref().expect("a preload hint"));
    let last_msn = p.segments.last().unwrap().0;
    if p.progress.is_empty() {
        assert_eq!(hint, (last_msn + 1, 0), "{text}");
    } else {
        // The next part of the segment in progress, or the next segment's first once the
        // segment in progress is as long as a whole one.
        assert!(hint == (last.0, last.1 + 1) || hint == (last.0 + 1, 0), "{text}");
    }
    assert!(p.after_hint.iter().all(|l| l.is_empty()), "after the hint: {:?}", p.after_hint);
    if let Some(b) = before {
        assert_eq!(b.part_target, p.part_target, "PART-TARGET never changes");
        assert!(p.media_sequence >= b.media_sequence);
        let b_last = b.progress.last().or(b.segments.last().and_then(|s| s.2.last())).map(|x| part_pos(&x.uri));
        assert!(Some(last) >= b_last, "the newest part went back: {last:?} after {b_last:?}");
        // A part listed before keeps its duration (its URI never changes meaning).
        let now: HashMap<&str, f64> = all_parts.map(|x| (x.uri.as_str(), x.duration)).collect();
        for x in b.segments.iter().flat_map(|s| &s.2).chain(&b.progress) {
            if let Some(d) = now.get(x.uri.as_str()) {
                assert_eq!(*d, x.duration, "{} changed", x.uri);
            }
        }
    }
    p
}

#[test]
fn low_latency_playlists_parts_and_blocking_requests() {
    let cql = Cql::start();
    let ks = keyspace("low_latency");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("low_latency");
    let (up, port) = receiver(&cql, &ks, &s, "receiver", &[]);
    let enc = cmaf_encoder(32, &format!("http://127.0.0.1:{port}/ingest/ll/manifest.mpd"), &["-tune", "zerolatency"]);
    let ops_port = free_port();
    let http_extra = format!(
        "hls_dvr_cache_zone edge 16m;\n\
         server {{ listen 127.0.0.1:{ops_port}; location = /metrics {{ hls_dvr_metrics; }} }}"
    );
    let ng = Nginx::start(&cql.addr, &ks, 2, &http_extra, "hls_dvr_cache edge;");
    let video = ng.url("/live/ll/stream0/index.m3u8");
    wait_for("a playlist with parts", Duration::from_secs(40), || {
        http("GET", &video, &[]).is_ok_and(|r| r.status == 200 && r.text().contains("#EXT-X-PART-INF"))
    });
    // Long enough to cover three target durations with parts.
    wait_for("four whole segments", Duration::from_secs(20), || read_ll(&get(&video).text()).segments.len() >= 4);

    // Reloaded every 150 ms for 6 s: every playlist follows the rules and the one before it.
    let mut before: Option<LlPlaylist> = None;
    let until = Instant::now() + Duration::from_secs(6);
    let mut seen_progress = false;
    while Instant::now() < until {
        let r = get(&video);
        assert_eq!(r.status, 200);
        let p = check_part_rules(&r.text(), before.as_ref(), 2.0);
        seen_progress |= !p.progress.is_empty();
        let audio = p.reports.get("../stream1/index.m3u8").expect("a report of the audio rendition");
        assert!(audio.1.is_some(), "the audio rendition has parts too: {audio:?}");
        before = Some(p);
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(seen_progress, "some playlist listed parts of a segment in progress");

    // A blocking request for the hinted part is answered once it is listed.
    let p = read_ll(&get(&video).text());
    let (m, n) = part_pos(p.hint.as_deref().unwrap());
    let r = get(&format!("{video}?_HLS_msn={m}&_HLS_part={n}"));
    assert_eq!(r.status, 200);
    let after = check_part_rules(&r.text(), Some(&p), 2.0);
    let listed: Vec<(i64, i64)> =
        after.segments.iter().flat_map(|s| &s.2).chain(&after.progress).map(|x| part_pos(&x.uri)).collect();
    assert!(listed.contains(&(m, n)) || listed.contains(&(m + 1, 0)), "{m}.{n} in {listed:?}");

    // The hinted part itself, asked for before it exists, is held and served once stored. A
    // hint may name a part its segment ends without (404, RFC 8216bis 6.2.6); then the next
    // hint is tried, and one of a few must be served.
    let mut served = false;
    for _ in 0..5 {
        let p = read_ll(&get(&video).text());
        let hint = p.hint.clone().unwrap();
        let r = get(&ng.url(&format!("/live/ll/stream0/{hint}")));
        let (_, hn) = part_pos(&hint);
        if r.status == 404 {
            assert!(hn > 0, "part 0 always exists once hinted");
            continue;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("Content-Type"), Some("video/iso.segment"));
        // Whole boxes: a fragment (styp first in part 0, prft where the encoder wrote one).
        let boxes = top_level_boxes(&r.body);
        assert!(boxes.ends_with(&["moof".to_string(), "mdat".to_string()]), "{boxes:?}");
        assert!(hn > 0 || boxes[0] == "styp", "{boxes:?}");
        served = true;
        break;
    }
    assert!(served, "no hinted part was served in five tries");

    // A whole segment is the concatenation of its parts; a part is served with Range too.
    let p = read_ll(&get(&video).text());
    let (msn, _, parts) = p.segments.iter().rev().find(|s| !s.2.is_empty()).unwrap().clone();
    let whole = get(&ng.url(&format!("/live/ll/stream0/{msn}.m4s"))).body;
    let joined: Vec<u8> =
        parts.iter().flat_map(|x| get(&ng.url(&format!("/live/ll/stream0/{}", x.uri))).body).collect();
    assert!(joined == whole, "segment {msn}: {} bytes of parts, {} whole", joined.len(), whole.len());
    let r = http("GET", &ng.url(&format!("/live/ll/stream0/{}", parts[1].uri)), &[("Range", "bytes=0-99")]).unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), 100);
    // A part past the segment's last will never exist: 404 at once.
    let r = get(&ng.url(&format!("/live/ll/stream0/{msn}.{}.m4s", parts.len())));
    assert_eq!(r.status, 404, "{}", r.text());

    // What RFC 8216bis refuses.
    let p = read_ll(&get(&video).text());
    let newest = p.progress.last().map_or((p.segments.last().unwrap().0, 0), |x| part_pos(&x.uri));
    for (query, why) in [
        // Far enough ahead that the stream cannot catch up while the request travels.
        (format!("_HLS_msn={}", newest.0 + 10), "more than two segments"),
        (format!("_HLS_msn={}&_HLS_part=50", newest.0 + 1), "more than 3 parts"),
        ("_HLS_part=1".to_string(), "needs _HLS_msn"),
    ] {
        let t = Instant::now();
        let r = get(&format!("{video}?{query}"));
        assert_eq!(r.status, 400, "{query} after {:?} ({newest:?}): {}", t.elapsed(), r.text());
        assert!(r.text().contains(why), "{query}: {}", r.text());
    }
    // A delta update keeps the parts.
    let delta = get(&format!("{video}?_HLS_skip=YES")).text();
    let d = check_part_rules(&delta, None, 2.0);
    assert!(d.skipped > 0 && !d.segments.is_empty(), "{delta}");

    // Parts are counted by kind.
    let metrics = get(&format!("http://127.0.0.1:{ops_port}/metrics")).text();
    assert!(metrics.contains("kind=\"part\",status=\"200\",stream=\"ll\",rendition=\"stream0\""), "{metrics}");
    let misses = metrics.lines().find(|l| l.starts_with("hls_dvr_cache_misses_total{content=\"part\"}")).unwrap();
    assert!(!misses.ends_with(" 0"), "parts go through the cache zone: {misses}");

    // Once the encoder stops, the hinted part never comes: 503 after three part targets.
    finish(enc);
    std::thread::sleep(Duration::from_secs(3));
    let p = read_ll(&get(&video).text());
    let r = get(&ng.url(&format!("/live/ll/stream0/{}", p.hint.unwrap())));
    assert_eq!(r.status, 503, "{}", r.text());
    up.stop();
}

/// Runs `tests/browser/low_latency.mjs` and returns its report (`"ok":true` when it passed).
fn browser(mode: &str, url: &str, arg: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/low_latency.mjs");
    let out =
        Command::new("node").arg(script).args([mode, url, arg]).output().expect("node (scripts/setup installs it)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn hls_js_and_shaka_play_at_low_latency_and_hls_js_seeks_back() {
    let cql = Cql::start();
    let ks = keyspace("ll_players");
    common::create_schema(&cql, &ks, "1h");
    let s = TempDir::new("ll_players");
    let (up, port) = receiver(&cql, &ks, &s, "receiver", &[]);
    let enc = cmaf_encoder(150, &format!("http://127.0.0.1:{port}/ingest/ll/manifest.mpd"), &["-tune", "zerolatency"]);
    let (page, page_port) = (common::player_page(), free_port());
    let ng = Nginx::start(&cql.addr, &ks, 2, &common::player_server(page_port, page.path()), "");
    wait_for("the player page", Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", page_port)).is_ok());
    let master = ng.url("/live/ll/master.m3u8");
    // Players start once the playlists are three target durations long, as RFC 8216bis asks of
    // live playlists (Shaka Player fails on a shorter one).
    for rendition in ["stream0", "stream1"] {
        let url = ng.url(&format!("/live/ll/{rendition}/index.m3u8"));
        wait_for("playlists with parts", Duration::from_secs(40), || {
            http("GET", &url, &[]).is_ok_and(|r| r.status == 200 && read_ll(&r.text()).segments.len() >= 4)
        });
    }
    // Shaka Player in low-latency mode plays 10 s, fetching parts.
    let shaka = browser("shaka", &master, "10");
    assert!(shaka.contains("\"ok\":true") && shaka.contains("\"live\":true"), "Shaka: {shaka}");
    assert!(reported(&shaka, "partsFetched") > 0.0, "Shaka fetched no part: {shaka}");
    assert!(reported(&shaka, "playedS") > 7.0, "Shaka: {shaka}");
    // hls.js plays at the edge from parts, goes 60 s back into the DVR window, and returns.
    let hlsjs = browser("hlsjs", &common::player_url(page_port, &master), "60");
    eprintln!("Shaka: {shaka}\nhls.js: {hlsjs}");
    assert!(hlsjs.contains("\"ok\":true") && hlsjs.contains("\"lowLatencyMode\":true"), "hls.js: {hlsjs}");
    assert!(reported(&hlsjs, "partsFetched") > 0.0, "hls.js fetched no part: {hlsjs}");
    // Where it plays, not how fast: a minute further back after seeking, and back at the edge
    // (a minute nearer) after returning. scripts/bench measures the latency itself.
    let (live, back, returned) =
        (reported(&hlsjs, "liveLatencyS"), reported(&hlsjs, "seekBackLatencyS"), reported(&hlsjs, "returnedLatencyS"));
    assert!(back > live + 50.0, "hls.js: {hlsjs}");
    assert!(returned < back - 50.0, "hls.js: {hlsjs}");
    drop(page);
    let mut enc = enc;
    let _ = enc.kill();
    let _ = enc.wait();
    up.stop();
}
