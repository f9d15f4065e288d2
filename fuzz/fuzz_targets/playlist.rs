//! Playlists as a segmenter (or a broken disk) may leave them: parsed or refused, never a panic.
#![no_main]

// Each binary runs one of the shared bodies.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::playlist(data));
