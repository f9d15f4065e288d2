//! Every input kept in `fuzz/corpus/TARGET/` replayed once through its fuzz target's body, so that
//! a corpus that fails is caught on the day it is committed, without a fuzzing toolchain.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

#[path = "../fuzz/targets.rs"]
mod targets;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no input", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: {} of {} inputs fail: {failed:#?}", failed.len(), files.len());
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn request_corpus() {
    replay("request", targets::request);
}

#[test]
fn range_corpus() {
    replay("range", targets::range);
}

#[test]
fn playlist_corpus() {
    replay("playlist", targets::playlist);
}

#[test]
fn chunks_corpus() {
    replay("chunks", targets::chunks);
}

#[test]
fn views_corpus() {
    replay("views", targets::views);
}

#[test]
fn media_corpus() {
    replay("media", targets::media);
}

#[test]
fn audience_corpus() {
    replay("audience", targets::audience);
}
