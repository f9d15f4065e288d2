//! Viewer statistics' stored rows, statistics queries and playlists given session ids: read
//! exactly or refused, never a panic.
#![no_main]

// Each binary runs one of the shared bodies.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::audience(data));
