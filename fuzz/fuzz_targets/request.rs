//! A request's path and query, as any client may send them: never a panic, and what parses
//! round-trips.
#![no_main]

// Each binary runs one of the shared bodies.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::request(data));
