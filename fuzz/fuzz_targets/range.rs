//! `Range` headers against any body length: a part is always inside the body.
#![no_main]

// Each binary runs one of the shared bodies.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::range(data));
