//! Index rows as a store may hold them (holes, odd dates and durations, a corrupt row): every
//! view and its playlist text, delta updates included, come out without a panic.
#![no_main]

// Each binary runs one of the shared bodies.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::views(data));
