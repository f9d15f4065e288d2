//! Push ingest helpers: a receiver (`hls-dvr-upload --listen`) and ffmpeg encoders pushing HLS
//! and CMAF to it in real time.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::upload::{wait_exit, Uploader};
use super::{free_port, Container, Cql, TempDir};

/// A receiver on a free port, pushing to nothing but its store.
pub fn receiver(cql: &Cql, ks: &str, s: &TempDir, tag: &str, extra: &[&str]) -> (Uploader, u16) {
    let port = free_port();
    (receiver_on(port, cql, ks, s, tag, extra), port)
}

/// A receiver on `port` (a restarted one takes its old port), its log `{tag}.log` (appended to).
pub fn receiver_on(port: u16, cql: &Cql, ks: &str, s: &TempDir, tag: &str, extra: &[&str]) -> Uploader {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["--listen", &listen];
    args.extend_from_slice(extra);
    let up = Uploader::start(&cql.addr, ks, &[], &args, s.0.join(format!("{tag}.log")));
    super::wait_for("the receiver to listen", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    up
}

/// The options of one `tee` slave of ffmpeg's hls muxer (colons in values escaped twice).
pub fn hls_slave(kind: Container, extra: &str) -> String {
    let seg = if kind == Container::Ts { "mpegts" } else { "fmp4" };
    format!(
        "f=hls:hls_time=2:hls_flags=program_date_time:hls_segment_type={seg}:hls_list_size=0:\
         master_pl_name=master.m3u8:var_stream_map=v\\\\:0,a\\\\:0 v\\\\:1,a\\\\:1{extra}"
    )
}

/// ffmpeg reading a test picture and tone in real time (inputs 0 and 1).
pub fn live_source() -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-re", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:sample_rate=48000"]);
    cmd
}

/// A live ffmpeg encoding two renditions for `seconds`, its hls muxer writing into `dir` and
/// pushing the same bytes to every URL of `pushes` (`.../out_%v.m3u8`).
pub fn hls_encoder(dir: &Path, kind: Container, seconds: u32, pushes: &[String]) -> Child {
    let mut outs = vec![format!("[{}]{}/out_%v.m3u8", hls_slave(kind, ""), dir.display())];
    for url in pushes {
        // onfail=ignore: a receiver that fails does not stop the others.
        outs.push(format!(
            "[{}:onfail=ignore]{url}",
            hls_slave(kind, ":method=PUT:http_persistent=1:ignore_io_errors=1")
        ));
    }
    live_source()
        .args(["-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-s:v:1", "160x90", "-b:v:0", "300k", "-b:v:1", "100k", "-c:a", "aac", "-b:a", "48k"])
        .args(["-t", &seconds.to_string(), "-f", "tee", &outs.join("|")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

/// A live ffmpeg pushing CMAF with its dash muxer in streaming mode: 2 s segments of 0.5 s
/// fragments, video and audio as separate tracks.
pub fn cmaf_encoder(seconds: u32, url: &str, extra: &[&str]) -> Child {
    live_source()
        .args([
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-keyint_min",
            "50",
        ])
        .args(["-sc_threshold", "0", "-c:a", "aac", "-b:a", "48k", "-t", &seconds.to_string()])
        .args(["-f", "dash", "-streaming", "1", "-ldash", "1", "-seg_duration", "2", "-frag_type", "duration"])
        .args(["-frag_duration", "0.5", "-use_template", "1", "-use_timeline", "0", "-write_prft", "1"])
        // Without a timing URL ffmpeg 5.1 writes no prft; it only copies the URL into the MPD.
        .args(["-utc_timing_url", "https://time.akamai.com/?iso"])
        .args(["-method", "PUT", "-http_persistent", "1", "-adaptation_sets", "id=0,streams=v id=1,streams=a"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

pub fn finish(mut c: Child) {
    let st = wait_exit(&mut c, Duration::from_secs(90));
    assert!(st.success(), "ffmpeg failed: {st}");
}
