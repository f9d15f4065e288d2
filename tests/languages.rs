//! A whole broadcast stream through the DVR: two audio languages, WebVTT subtitles and declared
//! closed captions, from a live ffmpeg segmenter's folder to players, against Cassandra and
//! nginx. ffmpeg 5.1 writes the media playlists; the multivariant playlist is the test's own,
//! as a segmenter that declares captions writes it (ffmpeg cannot encode CEA-608).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{free_port, get, http, keyspace, uploader, wait_for, Cql, Nginx, Proc, TempDir};
use serde_json::Value;

/// Cue `N` starts at N s (even N) of the segmenter's timeline and says "N".
fn subtitles(dir: &Path, seconds: u32) {
    let ts = |ms: u32| format!("{:02}:{:02}:{:02},{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut srt = String::new();
    for (i, n) in (2..seconds).step_by(2).enumerate() {
        srt += &format!("{}\n{} --> {}\n{n}\n\n", i + 1, ts(n * 1000), ts(n * 1000 + 1500));
    }
    std::fs::write(dir.join("subs.srt"), srt).unwrap();
}

/// The multivariant playlist, as a segmenter declaring captions writes it.
const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Português\",LANGUAGE=\"por\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"out_por.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"eng\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"out_eng.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Legendas\",LANGUAGE=\"por\",DEFAULT=NO,AUTOSELECT=YES,URI=\"out_hi_vtt.m3u8\"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"Português (CC)\",LANGUAGE=\"por\",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID=\"CC1\"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360,CODECS=\"avc1.42c01e,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"
out_hi.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180,CODECS=\"avc1.42c00d,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"
out_lo.m3u8
";

/// ffmpeg at real-time speed: two video renditions, Portuguese and English audio (two tones),
/// WebVTT subtitles from `subs.srt`, 2 s segments dated by ffmpeg.
fn segmenter(dir: &Path) -> Proc {
    let child = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-re", "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000"])
        .args(["-i", "subs.srt"])
        .args(["-filter_complex", "[0:v]split=2[v1][v2];[v2]scale=320:180[v2o]"])
        .args(["-map", "[v1]", "-map", "[v2o]", "-map", "1:a", "-map", "2:a", "-map", "3:s"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-g", "50", "-keyint_min", "50"])
        .args(["-sc_threshold", "0", "-b:v:0", "600k", "-b:v:1", "200k", "-c:a", "aac", "-b:a", "48k", "-c:s", "webvtt"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_flags", "program_date_time"])
        .args(["-hls_segment_filename", "seg_%v_%05d.ts"])
        // ffmpeg 5.1 muxes subtitles with a video variant; an audio-only entry per language.
        .args(["-var_stream_map", "v:0,s:0,agroup:aud,sgroup:subs,name:hi v:1,agroup:aud,name:lo a:0,agroup:aud,name:por a:1,agroup:aud,name:eng"])
        .arg("out_%v.m3u8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ffmpeg (scripts/setup installs it)");
    Proc(child)
}

/// Runs `tests/browser/tracks.mjs` and returns its report.
fn node(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/tracks.mjs");
    let out = Command::new("node").arg(script).args(args).output().expect("node (scripts/setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// The program date-time of the first segment of a media playlist ffmpeg wrote.
fn first_date_ms(playlist: &Path) -> i64 {
    let text = std::fs::read_to_string(playlist).unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:")).expect("a date");
    hls_dvr_core::clock::parse_iso8601(line).expect("ffmpeg's date")
}

/// (first program date-time, summed EXTINF in ms, URIs) of a media playlist.
fn span(text: &str) -> (i64, i64, Vec<String>) {
    let mut first = None;
    let mut total_us = 0i64;
    let mut uris = Vec::new();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            first = first.or(hls_dvr_core::clock::parse_iso8601(d));
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            total_us += (d.trim_end_matches(',').parse::<f64>().unwrap() * 1e6).round() as i64;
        } else if !line.starts_with('#') && !line.is_empty() {
            uris.push(line.to_string());
        }
    }
    (first.expect("a dated playlist"), total_us / 1000, uris)
}

#[test]
fn audio_languages_subtitles_and_captions_survive_time_shift() {
    let cql = Cql::start();
    let ks = keyspace("languages");
    common::create_schema(&cql, &ks, "1h");
    let dir = TempDir::new("languages");
    subtitles(dir.path(), 600);
    std::fs::write(dir.path().join("master.m3u8"), MASTER).unwrap();
    let mut ff = segmenter(dir.path());
    let mut up = uploader(&cql, &ks, "debate", dir.path(), &[]);
    let (page, page_port) = (common::player_page(), free_port());
    let ng = Nginx::start(&cql.addr, &ks, 2, &common::player_server(page_port, page.path()), "");
    wait_for("the player page", Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", page_port)).is_ok());
    let master_url = ng.url("/live/debate/master.m3u8");
    let renditions = ["out_hi", "out_lo", "out_por", "out_eng", "out_hi_vtt"];
    for r in renditions {
        let url = ng.url(&format!("/live/debate/{r}/index.m3u8"));
        wait_for("every rendition stored", Duration::from_secs(60), || {
            http("GET", &url, &[]).is_ok_and(|r| r.status == 200 && span(&r.text()).2.len() >= 4)
        });
    }

    // The multivariant playlist declares what the segmenter declared.
    let master = get(&master_url).text();
    for line in [
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Português\",LANGUAGE=\"por\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"out_por/index.m3u8\"",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"eng\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"out_eng/index.m3u8\"",
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Legendas\",LANGUAGE=\"por\",DEFAULT=NO,AUTOSELECT=YES,URI=\"out_hi_vtt/index.m3u8\"",
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"Português (CC)\",LANGUAGE=\"por\",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID=\"CC1\"",
    ] {
        assert!(master.lines().any(|l| l == line), "missing {line}\n{master}");
    }
    let variants: Vec<&str> = master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF:")).collect();
    assert_eq!(variants.len(), 2, "{master}");
    for v in &variants {
        assert!(v.ends_with(",AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\""), "{v}");
    }

    // Subtitle segments are WebVTT with the timestamp map ffmpeg leaves out.
    let vtt = span(&get(&ng.url("/live/debate/out_hi_vtt/index.m3u8")).text()).2;
    assert!(vtt.iter().all(|u| u.ends_with(".vtt")), "{vtt:?}");
    let seg = get(&ng.url(&format!("/live/debate/out_hi_vtt/{}", vtt[1])));
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("content-type"), Some("text/vtt; charset=utf-8"));
    assert!(seg.text().starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n"), "{}", seg.text());

    // ffprobe reads each audio playlist as AAC audio alone.
    for r in ["out_por", "out_eng"] {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0"])
            .arg(ng.url(&format!("/live/debate/{r}/index.m3u8")))
            .output()
            .unwrap();
        // (ffprobe lists the stream under its program too.)
        let mut streams: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        streams.retain(|l| !l.is_empty());
        streams.dedup();
        assert_eq!(streams, ["aac,audio"], "{r}: {}", String::from_utf8_lossy(&out.stderr));
    }

    // The views' span is stored whole.
    let hi = ng.url("/live/debate/out_hi/index.m3u8");
    wait_for("36 s stored", Duration::from_secs(60), || span(&get(&hi).text()).2.len() >= 18);
    let first = first_date_ms(&dir.path().join("out_hi.m3u8"));
    let iso = hls_dvr_core::clock::iso8601;
    let mut strict = Vec::new();
    // (view, the span it asks for)
    let (from, to) = (first + 10_000, first + 30_000);
    let views = [
        (String::new(), None),
        (format!("?start={}", iso(from)), Some((from, None))),
        (format!("?start={}&end={}", iso(from), iso(to)), Some((from, Some(to)))),
        ("?delay=20".to_string(), None),
    ];
    for (view, asked) in &views {
        // Every playlist of a view covers the same span of program date-times, to the segment:
        // what was asked for, or (live views) the newest media of each.
        let spans: Vec<_> = renditions
            .iter()
            .map(|r| (r, span(&get(&ng.url(&format!("/live/debate/{r}/index.m3u8{view}"))).text())))
            .collect();
        let (_, (d0, _, _)) = &spans[0];
        for (r, (d, total, uris)) in &spans {
            let end = d + total;
            match asked {
                Some((from, to)) => {
                    assert!(*d <= from + 100 && *d > from - 2100, "{view}: {r} starts at {d}: {uris:?}");
                    if let Some(to) = to {
                        assert!(end >= to - 100 && end < to + 2100, "{view}: {r} ends at {end}: {uris:?}");
                    }
                }
                None => assert!((d - d0).abs() <= 2100, "{view}: {r} starts at {d}, out_hi at {d0}"),
            }
        }
        // hls-parser's strict mode wants CAN-BLOCK-RELOAD=YES wherever EXT-X-SERVER-CONTROL is;
        // RFC 8216bis does not, and a delayed view offers delta updates without blocking.
        if !view.contains("delay") {
            strict.push(format!("{master_url}{view}"));
            strict.extend(renditions.iter().map(|r| ng.url(&format!("/live/debate/{r}/index.m3u8{view}"))));
        }
    }
    // hls-parser's strict mode accepts every playlist of every view.
    let strict: Vec<&str> = strict.iter().map(String::as_str).collect();
    let report = node(&[&["strict"], strict.as_slice()].concat());
    assert_eq!(report["ok"], true, "{report:#}");

    // Shaka Player lists both languages and the subtitles.
    let shaka = node(&["shaka", &master_url]);
    assert_eq!(shaka["ok"], true, "{shaka:#}");
    let mut langs: Vec<&str> = shaka["audioLanguages"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    langs.sort();
    assert_eq!(langs, ["en", "pt"], "Shaka names ISO 639-2 codes by their short form: {shaka:#}");
    assert!(
        shaka["textTracks"].as_array().unwrap().iter().any(|t| t["language"] == "pt" && t["kind"] == "subtitle"),
        "{shaka:#}"
    );

    // hls.js: both audio tracks, a switch to English that loads English audio, and subtitles
    // shown where they belong a minute back in the DVR window.
    let hlsjs = node(&["hlsjs", &common::player_url(page_port, &master_url), "60"]);
    eprintln!("hls.js: {hlsjs}");
    assert_eq!(hlsjs["ok"], true, "{hlsjs:#}");
    let mut tracks: Vec<(&str, &str)> = hlsjs["audioTracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["lang"].as_str().unwrap()))
        .collect();
    tracks.sort();
    assert_eq!(tracks, [("English", "eng"), ("Português", "por")], "{hlsjs:#}");
    assert_eq!(hlsjs["switchedTo"], "eng");
    assert!(hlsjs["switchedFragment"].as_str().unwrap().contains("/out_eng/"), "{hlsjs:#}");
    assert_eq!(hlsjs["subtitleTracks"][0]["lang"], "por");
    // Cue N starts N s into the segmenter's timeline, which starts at its first date-time.
    for cue in hlsjs["cues"].as_array().unwrap() {
        let n: i64 = cue["text"].as_str().unwrap().trim().parse().unwrap();
        let date = cue["dateMs"].as_f64().expect("the cue plays in a dated fragment") as i64;
        let off = date - (first + n * 1000);
        assert!(off.abs() <= 300, "cue {n} plays {off} ms from where it belongs: {cue}");
    }

    up.terminate(Duration::from_secs(10));
    ff.terminate(Duration::from_secs(5));
}
