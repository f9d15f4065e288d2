//! The uploader on segmenter folders that misbehave: files listed outside the folder (symlinks,
//! `..`, absolute paths), a segment still growing when listed, garbage and truncated playlists,
//! ten thousand stale files, the folder deleted and made again. It never reads outside the folder,
//! never stores half a file, says what is wrong once, and keeps going.
//!
//! A hand-written segmenter: real MPEG-TS segments made once by ffmpeg, listed by the test.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::IndexEntry;
use hls_dvr_store::{BlobKind, Store};

/// 2 s MPEG-TS segments made by ffmpeg, in order.
fn segments(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let st = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size=160x90:rate=25:duration={}", n * 2)])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_segment_filename", "src%d.ts", "src.m3u8"])
        .status()
        .unwrap();
    assert!(st.success());
    (0..n).map(|i| fs::read(dir.join(format!("src{i}.ts"))).unwrap()).collect()
}

/// Writes `index.m3u8` in `dir` listing `uris` (2 s each), as segmenters do: a temporary file
/// renamed into place.
fn playlist(dir: &Path, uris: &[&str], ended: bool) {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for u in uris {
        text.push_str(&format!("#EXTINF:2.000,\n{u}\n"));
    }
    if ended {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    fs::write(dir.join("index.m3u8.tmp"), text).unwrap();
    fs::rename(dir.join("index.m3u8.tmp"), dir.join("index.m3u8")).unwrap();
}

struct Setup {
    cql: Cql,
    ks: String,
    rt: tokio::runtime::Runtime,
    store: Store,
    root: TempDir,
    dir: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let cql = Cql::start();
        let ks = keyspace(tag);
        let rt = rt();
        let store = schema_and_store(&cql, &ks, &rt);
        let root = TempDir::new(tag);
        let dir = root.path().join("stream");
        fs::create_dir_all(&dir).unwrap();
        let log = root.path().join("uploader.log");
        Setup { cql, ks, rt, store, dir, log, root }
    }

    fn uploader(&self) -> Proc {
        let log = fs::File::create(&self.log).unwrap();
        let child = Command::new(upload_bin())
            .args(["--cassandra", &self.cql.addr, "--keyspace", &self.ks, "--poll-interval", "100ms"])
            .args(["--stream", "s"])
            .arg(&self.dir)
            .env("RUST_LOG", "info")
            .stderr(log)
            .spawn()
            .unwrap();
        Proc(child)
    }

    fn index(&self) -> Vec<IndexEntry> {
        self.rt.block_on(self.store.index_range("s", "index", now_ms() - 3_600_000, now_ms() + 60_000)).unwrap()
    }

    fn blob(&self, msn: i64) -> Vec<u8> {
        self.rt.block_on(self.store.read_blob(BlobKind::Segment, "s", "index", msn)).unwrap().unwrap().to_vec()
    }

    fn wait_stored(&self, n: usize) -> Vec<IndexEntry> {
        wait_for(&format!("{n} segments stored"), Duration::from_secs(30), || self.index().len() >= n);
        self.index()
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[test]
fn files_outside_the_folder_are_never_read() {
    let s = Setup::new("outside");
    let segs = segments(s.root.path(), 3);
    fs::write(s.dir.join("a.ts"), &segs[0]).unwrap();
    fs::write(s.dir.join("b.ts"), &segs[1]).unwrap();
    // Outside: a file next to the folder, reached by `..`, by an absolute path, by a symlink.
    let secret = s.root.path().join("secret.ts");
    fs::write(&secret, b"not for the store").unwrap();
    std::os::unix::fs::symlink(&secret, s.dir.join("link.ts")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", s.dir.join("passwd.ts")).unwrap();
    let abs = secret.display().to_string();
    let up = s.uploader();
    playlist(&s.dir, &["a.ts", "../secret.ts", &abs, "link.ts", "passwd.ts", "b.ts"], false);
    let idx = s.wait_stored(2);
    std::thread::sleep(Duration::from_secs(12)); // past the wait for files that never appear
    fs::write(s.dir.join("c.ts"), &segs[2]).unwrap();
    playlist(&s.dir, &["a.ts", "../secret.ts", &abs, "link.ts", "passwd.ts", "b.ts", "c.ts"], false);
    let idx2 = s.wait_stored(3);
    drop(up);
    assert_eq!(idx.len(), 2);
    assert_eq!(idx2.len(), 3, "only the three segments inside the folder");
    for (e, want) in idx2.iter().zip(&segs) {
        assert!(s.blob(e.msn) == *want, "msn {} is not the segment from inside the folder", e.msn);
    }
    let log = s.log_text();
    for uri in ["../secret.ts", abs.as_str(), "link.ts", "passwd.ts"] {
        assert_eq!(log.matches(&format!("lists {uri}, which is")).count(), 1, "{uri} warned once:\n{log}");
    }
}

#[test]
fn a_segment_still_growing_when_listed_is_stored_whole() {
    let s = Setup::new("growing");
    let segs = segments(s.root.path(), 3);
    let up = s.uploader();
    fs::write(s.dir.join("a.ts"), &segs[0]).unwrap();
    // b.ts is listed with about a third of its bytes (cut inside a packet), the rest written
    // over two seconds.
    let third = segs[1].len() / 3 / 188 * 188 + 100;
    fs::write(s.dir.join("b.ts"), &segs[1][..third]).unwrap();
    playlist(&s.dir, &["a.ts", "b.ts"], false);
    for part in [&segs[1][third..2 * third], &segs[1][2 * third..]] {
        std::thread::sleep(Duration::from_secs(1));
        use std::io::Write;
        fs::OpenOptions::new().append(true).open(s.dir.join("b.ts")).unwrap().write_all(part).unwrap();
    }
    fs::write(s.dir.join("c.ts"), &segs[2]).unwrap();
    playlist(&s.dir, &["a.ts", "b.ts", "c.ts"], true);
    let idx = s.wait_stored(3);
    wait_for("the end", Duration::from_secs(10), || {
        s.rt.block_on(s.store.rendition("s", "index")).unwrap().is_some_and(|h| h.ended)
    });
    drop(up);
    assert_eq!(idx.len(), 3, "{:?}", idx.iter().map(|e| e.msn).collect::<Vec<_>>());
    for (e, want) in idx.iter().zip(&segs) {
        assert_eq!(e.size, want.len() as i64, "msn {} stored with {} bytes", e.msn, e.size);
        assert!(s.blob(e.msn) == *want);
    }
    assert!(idx.iter().all(|e| !e.discontinuity), "nothing was lost");
}

#[test]
fn garbage_playlists_stale_files_and_a_folder_made_again() {
    let s = Setup::new("garbage");
    let segs = segments(s.root.path(), 4);
    // Ten thousand stale files the segmenter left behind.
    for i in 0..10_000 {
        fs::write(s.dir.join(format!("stale{i:05}.tmp")), b"x").unwrap();
    }
    let up = s.uploader();
    fs::write(s.dir.join("a.ts"), &segs[0]).unwrap();
    playlist(&s.dir, &["a.ts"], false);
    s.wait_stored(1);
    // Garbage, then a playlist cut in the middle of a line, for seconds.
    fs::write(s.dir.join("index.m3u8"), b"\x00\xffgarbage\n#EXTINF:x\n").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    fs::write(s.dir.join("b.ts"), &segs[1]).unwrap();
    fs::write(s.dir.join("index.m3u8"), b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\na.ts\n#EXTINF:2.000,\nb.t")
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    playlist(&s.dir, &["a.ts", "b.ts"], false);
    s.wait_stored(2);
    // The folder goes away, and a segmenter starts over in a new one of the same name.
    fs::remove_dir_all(&s.dir).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    fs::create_dir_all(&s.dir).unwrap();
    fs::write(s.dir.join("x.ts"), &segs[2]).unwrap();
    fs::write(s.dir.join("y.ts"), &segs[3]).unwrap();
    playlist(&s.dir, &["x.ts", "y.ts"], true);
    let idx = s.wait_stored(4);
    drop(up);
    assert_eq!(idx.len(), 4);
    for (e, want) in idx.iter().zip(&segs) {
        assert!(s.blob(e.msn) == *want, "msn {}", e.msn);
    }
    assert!(idx[2].discontinuity, "the new folder's stream starts a discontinuity");
    // Problems are said, not repeated for every poll.
    let log = s.log_text();
    let lines = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).count();
    assert!(lines < 20, "{lines} warnings:\n{log}");
}
