//! A request's path and query, as any client may send them: never a panic, and what parses
//! round-trips.
#![no_main]

use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_core::route;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_764_093_600_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    if let Ok(route) = route::parse(path) {
        assert_eq!(route.to_string(), path);
    }
    if let Ok(q) = PlaylistQuery::parse(query, NOW, 86_400_000) {
        // What a multivariant playlist passes on parses to the same range.
        let passed = q.for_variants();
        let again = PlaylistQuery::parse(passed.trim_start_matches('?'), NOW, 86_400_000).expect("passed on");
        assert_eq!((again.start_ms, again.end_ms, again.delay_ms, again.window_ms), (q.start_ms, q.end_ms, q.delay_ms, q.window_ms));
        let _ = q.describe();
    }
});
