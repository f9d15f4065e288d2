//! What the integration tests share: a Cassandra cluster (`HLS_DVR_CASSANDRA`, or a local node
//! that `scripts/cassandra` starts), a proxy in front of it for faults, temp folders, ffmpeg as a
//! live segmenter, the uploader, Debian's nginx with the built module, and a tiny HTTP/1.1 client
//! (no dependency, and it lets tests misbehave like real clients do).
#![allow(dead_code)]

pub mod proxy;
pub mod push;
pub mod relay;
pub mod upload;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proxy::Proxy;

/// The Cassandra cluster the tests run against.
pub struct Cql {
    /// Contact points, `host:port[,host:port...]`.
    pub addr: String,
}

impl Cql {
    /// `HLS_DVR_CASSANDRA` when set (scripts/test sets it), else the local node of
    /// `scripts/cassandra start`, started if needed and left running for the next test run.
    pub fn start() -> Cql {
        static ADDR: OnceLock<String> = OnceLock::new();
        let addr = ADDR.get_or_init(|| match std::env::var("HLS_DVR_CASSANDRA") {
            Ok(addr) if !addr.trim().is_empty() => addr,
            _ => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cassandra");
                let out =
                    Command::new(&script).arg("start").stderr(Stdio::inherit()).output().expect("scripts/cassandra");
                let text = String::from_utf8_lossy(&out.stdout);
                let line = text.lines().last().unwrap_or("");
                assert!(out.status.success(), "scripts/cassandra start failed: {text}");
                line.strip_prefix("cassandra: ").expect("scripts/cassandra's last line").trim().to_string()
            }
        });
        Cql { addr: addr.clone() }
    }

    /// The first contact point.
    pub fn first_node(&self) -> &str {
        self.addr.split(',').next().unwrap_or("").trim()
    }

    /// A proxy in front of the first node, for faults. It listens on the node's own address, so
    /// a fault test cannot run against a node elsewhere: it fails and says why, rather than pass
    /// without having run.
    pub fn proxy(&self) -> Proxy {
        Proxy::start(self.first_node()).unwrap_or_else(|| {
            panic!(
                "this fault test needs the Cassandra node on this machine (a proxy listens on the node's own \
                 address), not {}: run it against the local node (without HLS_DVR_CASSANDRA)",
                self.addr
            )
        })
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A keyspace name unique to this test run.
pub fn keyspace(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000_000;
    format!("t_{tag}_{}_{t}_{n}", std::process::id())
}

/// The uploader built by `cargo build` (scripts/test builds it first).
pub fn upload_bin() -> PathBuf {
    built("hls-dvr-upload", &["src/core", "src/store", "src/upload"])
}

/// Creates the schema through the uploader's own command.
pub fn create_schema(cql: &Cql, ks: &str, depth: &str) {
    let out = Command::new(upload_bin())
        .args(["schema", "--cassandra", &cql.addr, "--keyspace", ks, "--dvr-depth", depth, "--durable-writes", "false"])
        .output()
        .expect("run hls-dvr-upload schema");
    assert!(out.status.success(), "schema failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("hls-dvr-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A folder inside, made if missing.
    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.0.join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

impl Drop for TempDir {
    /// Kept for a look when the test failed, or with HLS_DVR_KEEP set.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else if std::env::var_os("HLS_DVR_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
    /// SIGTERM, then wait (at most `t`).
    pub fn terminate(&mut self, t: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + t;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub use hls_dvr_core::model::Container;

/// ffmpeg as a live segmenter: a synthetic source at real-time speed, two renditions
/// (`stream_hi`, `stream_lo`) and a master playlist, `seg_secs` segments.
pub fn ffmpeg_live(dir: &Path, container: Container, seg_secs: u32) -> Proc {
    let fps = 25;
    let gop = (fps * seg_secs).to_string();
    let (seg_type, seg_name) = match container {
        Container::Ts => ("mpegts", "seg_%v_%05d.ts"),
        Container::Fmp4 => ("fmp4", "seg_%v_%05d.m4s"),
        Container::WebVtt => panic!("subtitles come with a video container"),
    };
    let mut cmd = Command::new("ffmpeg");
    cmd.current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size=640x360:rate={fps}")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-filter_complex", "[0:v]split=2[v1][v2];[v2]scale=320:180[v2o]"])
        .args(["-map", "[v1]", "-map", "[v2o]", "-map", "1:a", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-threads", "1"])
        .args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
        .args(["-b:v:0", "800k", "-b:v:1", "300k", "-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "hls", "-hls_time", &seg_secs.to_string(), "-hls_list_size", "0"])
        .args(["-hls_flags", "program_date_time+independent_segments"])
        .args(["-hls_segment_type", seg_type])
        .args(["-master_pl_name", "master.m3u8"])
        .args(["-var_stream_map", "v:0,a:0,name:hi v:1,a:1,name:lo"])
        .args(["-hls_segment_filename", seg_name]);
    if container == Container::Fmp4 {
        cmd.args(["-hls_fmp4_init_filename", "init_%v.mp4"]);
    }
    cmd.arg("stream_%v.m3u8").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    Proc(cmd.spawn().expect("ffmpeg (scripts/setup installs it)"))
}

/// ffmpeg as fast as it goes: 20 s of two renditions (`out_0` 320x180, `out_1` 160x90, each with
/// its audio) in 2 s `kind` segments with program date-times and a master playlist; `extra` are
/// more output options (B-frames, bitrates).
pub fn encode_ladder(dir: &Path, kind: Container, extra: &[&str]) {
    let (seg_type, name) = match kind {
        Container::Ts => ("mpegts", "seg_%v_%03d.ts"),
        _ => ("fmp4", "seg_%v_%03d.m4s"),
    };
    let st = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", "20", "-map", "0:v", "-map", "0:v", "-map", "1:a", "-map", "1:a", "-s:v:1", "160x90"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(extra)
        .args(["-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_segment_type", seg_type])
        .args(["-hls_flags", "program_date_time", "-hls_fmp4_init_filename", "init_%v.mp4"])
        .args(["-hls_segment_filename", name, "-var_stream_map", "v:0,a:0 v:1,a:1"])
        .args(["-master_pl_name", "master.m3u8", "out_%v.m3u8"])
        .status()
        .expect("ffmpeg (scripts/setup installs it)");
    assert!(st.success());
}

/// `hls-dvr-upload` on `dir` as stream `stream`.
pub fn uploader(cql: &Cql, ks: &str, stream: &str, dir: &Path, extra: &[&str]) -> Proc {
    let child = Command::new(upload_bin())
        .args(["--cassandra", &cql.addr, "--keyspace", ks, "--poll-interval", "100ms"])
        .args(extra)
        .args(["--stream", stream])
        .arg(dir)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start uploader");
    Proc(child)
}

/// Waits until `f` is true, polling; panics with `what` after `t`.
pub fn wait_for(what: &str, t: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + t;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {t:?} waiting for {what}");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The module built by `cargo build` (scripts/test builds it first), or `HLS_DVR_MODULE`.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("HLS_DVR_MODULE") {
        return PathBuf::from(p);
    }
    built("libngx_http_hls_dvr_module.so", &["src/core", "src/store", "src/edge", "src/nginx"])
}

/// A file `cargo build` made from the crates in `sources`. `cargo test` builds the tests, not the
/// other packages' binaries and cdylib: an older build would be tested silently.
fn built(file: &str, sources: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let p = target.join(profile).join(file);
    assert!(p.is_file(), "{} is missing: run `cargo build` first (scripts/test does)", p.display());
    let built = std::fs::metadata(&p).and_then(|m| m.modified()).unwrap();
    for dir in sources {
        if let Some(newer) = newest_source(&root.join(dir)).filter(|(t, _)| *t > built) {
            panic!("{} is older than {}: run `cargo build` first (scripts/test does)", p.display(), newer.1.display());
        }
    }
    p
}

/// The most recently modified file under `dir`.
fn newest_source(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let path = e.path();
        let found = if path.is_dir() {
            newest_source(&path)
        } else {
            e.metadata().and_then(|m| m.modified()).ok().map(|t| (t, path))
        };
        if let Some(f) = found.filter(|f| newest.as_ref().is_none_or(|n| f.0 > n.0)) {
            newest = Some(f);
        }
    }
    newest
}

/// nginx.conf of the test nginx in `d`.
fn conf(d: &Path, port: u16, store: &str, ks: &str, workers: u32, http_extra: &str, loc_extra: &str) -> String {
    format!(
        "load_module {module};\n\
         worker_processes {workers};\n\
         error_log {d}/logs/error.log info;\n\
         pid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           access_log {d}/logs/access.log;\n\
           client_body_temp_path {d}/tmp;\n\
           proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
           hls_dvr_cassandra {store};\n\
           hls_dvr_keyspace {ks};\n\
           {http_extra}\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             location /live/ {{ hls_dvr; {loc_extra} }}\n\
             location /files/ {{ alias {d}/files/; sendfile on; }}\n\
           }}\n\
         }}\n",
        module = module_path().display(),
        d = d.display(),
        store = store.replace(',', " "),
    )
}

/// Debian's nginx with the module, on a free port, master in the foreground.
pub struct Nginx {
    pub dir: TempDir,
    pub port: u16,
    pub master: Proc,
}

impl Nginx {
    /// `store`: contact points (a cluster's or a proxy's). `http_extra` goes into the http block,
    /// `loc_extra` into `location /live/`.
    pub fn start(store: &str, ks: &str, workers: u32, http_extra: &str, loc_extra: &str) -> Nginx {
        let dir = TempDir::new("nginx");
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            conf(dir.path(), port, store, ks, workers, http_extra, loc_extra),
        )
        .unwrap();
        let master = Proc(
            Command::new("nginx")
                .args(["-p", &dir.path().display().to_string(), "-c", "nginx.conf", "-g", "daemon off;"])
                .stdin(Stdio::null())
                .spawn()
                .expect("start nginx (scripts/setup installs it)"),
        );
        let n = Nginx { dir, port, master };
        wait_for("nginx to listen", Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).is_ok());
        n
    }

    /// A new configuration, as an operator changes one: rewritten, then `nginx -s reload`.
    pub fn reconfigure(&self, store: &str, ks: &str, workers: u32, http_extra: &str, loc_extra: &str) {
        let text = conf(self.dir.path(), self.port, store, ks, workers, http_extra, loc_extra);
        std::fs::write(self.dir.path().join("nginx.conf"), text).unwrap();
        self.signal("reload");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("nginx")
            .args(["-p", &self.dir.path().display().to_string(), "-c", "nginx.conf", "-s", sig])
            .status()
            .unwrap();
        assert!(st.success(), "nginx -s {sig}");
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }

    /// Waits until the workers are connected to the store (they answer 503 until then).
    pub fn wait_ready(&self, path: &str) {
        wait_for("nginx to reach the store", Duration::from_secs(20), || {
            http("GET", &self.url(path), &[]).is_ok_and(|r| r.status != 503)
        });
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.master.terminate(Duration::from_secs(5));
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let body = raw[split + 4..].to_vec();
    let resp = Response { status, headers, body };
    if method != "HEAD" {
        if let Some(len) = resp.header("Content-Length").and_then(|l| l.parse::<usize>().ok()) {
            if resp.body.len() != len {
                return Err(std::io::Error::other(format!("short body: {} of {len} bytes for {url}", resp.body.len())));
            }
        }
    }
    Ok(resp)
}

pub fn get(url: &str) -> Response {
    http("GET", url, &[]).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Parses a media playlist, panicking with the text when it does not parse.
pub fn media_playlist(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist ({other:?}):\n{text}"),
    }
}

pub fn master_playlist(text: &str) -> m3u8_rs::MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
        other => panic!("not a master playlist ({other:?}):\n{text}"),
    }
}

/// A fresh keyspace (2 h DVR depth) created through the store layer, and a store connected to it.
pub fn schema_and_store(cql: &Cql, ks: &str, rt: &tokio::runtime::Runtime) -> hls_dvr_store::Store {
    use hls_dvr_store::schema::{Replication, SchemaOptions};
    use hls_dvr_store::{create_schema, Store, StoreConfig};
    let opts = SchemaOptions {
        keyspace: ks.to_string(),
        replication: Replication::Simple(1),
        durable_writes: false,
        dvr_depth: Duration::from_secs(7200),
        stats_retention: hls_dvr_store::schema::DEFAULT_STATS_RETENTION,
    };
    let cfg = StoreConfig::new(cql.addr.split(',').map(|s| s.trim().to_string()).collect(), ks);
    rt.block_on(create_schema(&cfg, &opts)).expect("schema");
    rt.block_on(Store::connect(&cfg)).expect("connect")
}

/// A store of keyspace `ks` reached through `addr` (a node's or a proxy's).
pub fn store_at(addr: &str, ks: &str, rt: &tokio::runtime::Runtime) -> hls_dvr_store::Store {
    use hls_dvr_store::{Store, StoreConfig};
    rt.block_on(Store::connect(&StoreConfig::new(vec![addr.to_string()], ks))).expect("connect")
}

/// A folder with the demo's player page next to hls.js. nginx workers run unprivileged: a copy in
/// a world-readable folder.
pub fn player_page() -> TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new("page");
    std::fs::copy(root.join("nginx-conf/player/index.html"), dir.path().join("index.html")).unwrap();
    let js = root.join("tests/browser/node_modules/hls.js/dist/hls.min.js");
    assert!(js.is_file() && Path::new("/usr/bin/chromium").is_file(), "hls.js or chromium missing: run scripts/setup");
    std::fs::copy(js, dir.path().join("hls.min.js")).unwrap();
    dir
}

/// An nginx `server` serving the player page of [`player_page`] at `/player/` on `page_port`
/// (another origin than the stream's).
pub fn player_server(page_port: u16, page_dir: &Path) -> String {
    format!(
        "types {{ text/html html; application/javascript js; }}\n\
         server {{ listen 127.0.0.1:{page_port}; location /player/ {{ alias {}/; }} }}",
        page_dir.display()
    )
}

/// The player page of [`player_page`] served on `page_port`, playing `src` (a whole URL).
pub fn player_url(page_port: u16, src: &str) -> String {
    // The playlist URL as one query value of the page's URL.
    let src: String = src
        .chars()
        .map(|c| match c {
            '&' | '?' | '=' | '%' | '#' => format!("%{:02X}", c as u8),
            c => c.to_string(),
        })
        .collect();
    format!("http://127.0.0.1:{page_port}/player/index.html?src={src}")
}

/// hls.js in Chromium on the player page, playing the live stream until [`Player::stop`].
pub struct Player {
    child: std::process::Child,
    _page: TempDir,
}

impl Player {
    /// `page_port`: where nginx serves [`player_server`] for `page`; `path`: the playlist.
    pub fn start(ng: &Nginx, page: TempDir, page_port: u16, path: &str) -> Player {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
        let child = Command::new("node")
            .arg(script)
            .arg(player_url(page_port, &ng.url(path)))
            .arg("watch")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node (scripts/setup installs it)");
        Player { child, _page: page }
    }

    /// Closes its input, which ends the watch: its report (JSON, `"ok":true` when it played).
    pub fn stop(mut self) -> String {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A number from the player's JSON report.
pub fn reported(report: &str, key: &str) -> f64 {
    let at = report.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {report}"));
    let rest = &report[at + key.len() + 3..];
    rest[..rest.find([',', '}']).unwrap()].parse().unwrap()
}

/// What wrk's summary says.
#[derive(Debug)]
pub struct WrkSummary {
    pub requests: u64,
    /// Connect, read and write errors: requests that got no answer at all.
    pub unanswered: u64,
    /// Answers slower than wrk's 2 s, counted apart.
    pub timeouts: u64,
    /// Answers with a status other than 2xx or 3xx.
    pub non_2xx: u64,
}

impl WrkSummary {
    pub fn parse(out: &str) -> WrkSummary {
        let requests = out.lines().find_map(|l| l.trim().split(" requests in ").next()?.parse().ok()).unwrap_or(0);
        let non_2xx =
            out.lines().find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses: ")?.parse().ok()).unwrap_or(0);
        let errors = out.lines().find_map(|l| l.trim().strip_prefix("Socket errors: ")).unwrap_or("");
        let count = |what: &str| -> u64 {
            errors.split(", ").find_map(|kv| kv.strip_prefix(what)?.trim().parse().ok()).unwrap_or(0)
        };
        WrkSummary {
            requests,
            unanswered: count("connect ") + count("read ") + count("write "),
            timeouts: count("timeout "),
            non_2xx,
        }
    }
}

/// A tokio runtime for tests that talk to the store directly.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Deterministic bytes that differ per seed and per offset.
pub fn bytes_of(seed: u64, len: usize) -> bytes::Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// An index row of a 2 s segment dated `pdt_ms`, stored 2.5 s later.
pub fn entry(msn: i64, pdt_ms: i64, size: usize) -> hls_dvr_core::model::IndexEntry {
    hls_dvr_core::model::IndexEntry {
        msn,
        duration_us: 2_000_000,
        pdt_ms,
        discontinuity: false,
        disc_seq: 0,
        init_msn: None,
        size: size as i64,
        added_ms: (pdt_ms + 2500).min(hls_dvr_core::clock::now_ms()),
        key_frame: None,
        thumbnail: false,
    }
}

/// The head of an MPEG-TS rendition `name` with 2 s segments whose newest is `last`.
pub fn head_of(name: &str, last: &hls_dvr_core::model::IndexEntry, ended: bool) -> hls_dvr_core::model::Rendition {
    hls_dvr_core::model::Rendition {
        name: name.into(),
        container: hls_dvr_core::model::Container::Ts,
        target_duration: 2,
        bandwidth: Some(800_000),
        codecs: Some("avc1.42c01e,mp4a.40.2".into()),
        resolution: Some("640x360".into()),
        frame_rate: Some(25.0),
        head_msn: last.msn,
        head_disc_seq: last.disc_seq,
        head_pdt_ms: last.pdt_ms,
        source: hls_dvr_core::model::SourcePos::default(),
        updated_ms: hls_dvr_core::clock::now_ms(),
        ended,
        media: hls_dvr_core::model::MediaType::Muxed,
        parts: None,
        grouping: Default::default(),
        key_frames: false,
        thumbnails: None,
    }
}

/// Stores a segment the way the uploader does: its bytes, then its index row, then the head.
pub fn store_segment(
    rt: &tokio::runtime::Runtime,
    store: &hls_dvr_store::Store,
    stream: &str,
    e: &hls_dvr_core::model::IndexEntry,
    data: &bytes::Bytes,
    head: &hls_dvr_core::model::Rendition,
) {
    use hls_dvr_store::BlobKind;
    rt.block_on(store.write_blob(BlobKind::Segment, stream, &head.name, e.msn, data)).unwrap();
    rt.block_on(store.write_index(stream, &head.name, e)).unwrap();
    rt.block_on(store.write_head(stream, head)).unwrap();
}
