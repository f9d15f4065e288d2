//! The uploader's fixtures: the built `hls-dvr-upload` as a child process, ffmpeg as a live
//! segmenter with two renditions (`out_0`, `out_1`), its playlists read back independently, and
//! the store read back through the store layer.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{IndexEntry, Rendition};
use hls_dvr_store::{BlobKind, Store, StoreConfig};

use super::{rt, upload_bin, Container, Cql};

pub fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap();
    assert!(st.success(), "kill -{sig} failed");
}

pub fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(t.elapsed() < within, "process {} did not exit within {within:?}", child.id());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The uploader under test, its log in the scratch folder.
pub struct Uploader {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Uploader {
    /// `store`: contact points (the cluster's or a proxy's).
    pub fn start(store: &str, ks: &str, streams: &[(&str, &Path)], extra: &[&str], log: PathBuf) -> Uploader {
        let mut cmd = Command::new(upload_bin());
        cmd.args(["--cassandra", store, "--keyspace", ks, "--poll-interval", "100ms"]);
        for (name, dir) in streams {
            cmd.arg("--stream").arg(name).arg(dir);
        }
        cmd.args(extra);
        let f = fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = cmd
            .env("RUST_LOG", "info,hls_dvr=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("start hls-dvr-upload");
        Uploader { child: Some(child), log }
    }

    /// SIGTERM: it finishes what is in flight and exits 0.
    pub fn stop(mut self) {
        let mut c = self.child.take().unwrap();
        signal(&c, "TERM");
        let st = wait_exit(&mut c, Duration::from_secs(15));
        assert!(st.success(), "uploader exited with {st} after SIGTERM; log:\n{}", self.log_text());
    }

    pub fn kill(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let t = self.log_text();
            let tail: Vec<&str> = t.lines().rev().take(60).collect();
            eprintln!("--- uploader log tail ({}) ---", self.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A live ffmpeg segmenter: two renditions, real-time, with a master playlist.
pub struct Ffmpeg {
    pub child: Option<Child>,
}

impl Ffmpeg {
    /// `list`: extra list options (defaults to the whole event in the playlist).
    pub fn start(dir: &Path, kind: Container, seconds: u32, list: &[&str]) -> Ffmpeg {
        Self::start_with(dir, kind, seconds, 1, list)
    }

    /// `seg_secs`-second segments (a keyframe every segment).
    pub fn start_with(dir: &Path, kind: Container, seconds: u32, seg_secs: u32, list: &[&str]) -> Ffmpeg {
        let gop = (25 * seg_secs).to_string();
        let ext = if kind == Container::Ts { "ts" } else { "m4s" };
        let mut cmd = Command::new("ffmpeg");
        cmd.current_dir(dir)
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
            .args(["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
            .args(["-s:v:1", "160x90", "-b:v:0", "300k", "-b:v:1", "100k", "-c:a", "aac", "-b:a", "48k"])
            .args(["-t", &seconds.to_string()])
            .args(["-f", "hls", "-hls_time", &seg_secs.to_string(), "-hls_flags"]);
        let flags = if list.contains(&"delete_segments") {
            "program_date_time+independent_segments+delete_segments"
        } else {
            "program_date_time+independent_segments"
        };
        cmd.arg(flags);
        let list: Vec<&str> = list.iter().copied().filter(|a| *a != "delete_segments").collect();
        if list.is_empty() {
            cmd.args(["-hls_list_size", "0"]);
        } else {
            cmd.args(&list);
        }
        cmd.args(["-hls_segment_type", if kind == Container::Ts { "mpegts" } else { "fmp4" }])
            .args(["-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0 v:1,a:1"])
            .arg("-hls_segment_filename")
            .arg(format!("seg_%v_%d.{ext}"))
            .arg("out_%v.m3u8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Ffmpeg { child: Some(cmd.spawn().expect("start ffmpeg")) }
    }

    /// Waits for the natural end (`-t`).
    pub fn finish(mut self) {
        let mut c = self.child.take().unwrap();
        let st = wait_exit(&mut c, Duration::from_secs(60));
        let mut err = String::new();
        let _ = c.stderr.take().unwrap().read_to_string(&mut err);
        assert!(st.success(), "ffmpeg failed: {st}\n{err}");
    }

    pub fn kill(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One segment of ffmpeg's own playlist, read with a line scan independent of the uploader's
/// parsers (the oracle the uploader's results are checked against).
#[derive(Debug, Clone)]
pub struct Listed {
    pub uri: String,
    pub duration_us: i64,
    pub pdt_ms: Option<i64>,
    pub map: Option<String>,
}

pub fn listed(playlist: &Path) -> Vec<Listed> {
    let text = fs::read_to_string(playlist).unwrap_or_default();
    let mut out = Vec::new();
    let (mut dur, mut pdt, mut map) = (None, None, None);
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = l.strip_prefix("#EXTINF:") {
            // Independent of the uploader's parsers: float seconds, chrono's dates.
            dur = v.trim_end_matches(',').parse::<f64>().ok().map(|s| (s * 1e6).round() as i64);
        } else if let Some(v) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = chrono::DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z").ok().map(|t| t.timestamp_millis());
        } else if let Some(v) = l.strip_prefix("#EXT-X-MAP:URI=\"") {
            map = Some(v.trim_end_matches('"').to_string());
        } else if !l.starts_with('#') {
            out.push(Listed {
                uri: l.to_string(),
                duration_us: dur.take().expect("EXTINF"),
                pdt_ms: pdt.take(),
                map: map.clone(),
            });
        }
    }
    out
}

/// Reads the store back.
pub struct Reader {
    pub rt: tokio::runtime::Runtime,
    pub store: Store,
    pub since_ms: i64,
}

impl Reader {
    pub fn new(cql: &Cql, ks: &str) -> Reader {
        let rt = rt();
        let nodes = cql.addr.split(',').map(|s| s.trim().to_string()).collect();
        let store = rt.block_on(Store::connect(&StoreConfig::new(nodes, ks))).expect("connect reader");
        Reader { rt, store, since_ms: now_ms() - 60_000 }
    }

    pub fn index(&self, stream: &str, rendition: &str) -> Vec<IndexEntry> {
        self.rt
            .block_on(self.store.index_range(stream, rendition, self.since_ms, now_ms() + 60_000))
            .expect("index_range")
    }

    pub fn head(&self, stream: &str, rendition: &str) -> Option<Rendition> {
        self.rt.block_on(self.store.rendition(stream, rendition)).expect("rendition")
    }

    pub fn blob(&self, kind: BlobKind, stream: &str, rendition: &str, msn: i64) -> Vec<u8> {
        self.rt
            .block_on(self.store.read_blob(kind, stream, rendition, msn))
            .expect("read_blob")
            .unwrap_or_else(|| panic!("{kind:?} {stream}/{rendition}/{msn} missing"))
            .to_vec()
    }

    /// Waits until `n` index rows are readable (fails after `within`).
    pub fn wait_for(&self, stream: &str, rendition: &str, n: usize, within: Duration) -> Vec<IndexEntry> {
        let t = Instant::now();
        loop {
            // The reader's own session may still be reconnecting after an outage: retry.
            let res = self.rt.block_on(self.store.index_range(stream, rendition, self.since_ms, now_ms() + 60_000));
            let idx = match res {
                Ok(idx) if idx.len() >= n => return idx,
                Ok(idx) => format!("{} of {n} segments stored", idx.len()),
                Err(e) => format!("reading the index: {e}"),
            };
            assert!(t.elapsed() < within, "{stream}/{rendition}: {idx} after {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
