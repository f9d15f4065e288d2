//! Segments read for clip files: MPEG-TS remux, fMP4 fragments, stored sample tables.
#![no_main]

// Each binary runs one of the shared bodies.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::media(data));
