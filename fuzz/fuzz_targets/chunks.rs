//! Chunk rows as a store may return them, corrupt ones included: a blob's metadata is either
//! refused or describes chunks that add up to the blob exactly; segment bytes are whole or not.
#![no_main]

// Each binary runs one of the shared bodies.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::chunks(data));
