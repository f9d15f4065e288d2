//! Playlists as a segmenter (or a broken disk) may leave them: parsed or refused, never a panic.
#![no_main]

use hls_dvr_upload::source::{self, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Media(m)) = source::parse(data) {
        for e in &m.entries {
            assert!(e.duration_us >= 0);
            let _ = source::resolve(std::path::Path::new("/d/x.m3u8"), &e.uri);
        }
    }
});
