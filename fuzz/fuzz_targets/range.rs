//! `Range` headers against any body length: a part is always inside the body.
#![no_main]

use hls_dvr_core::route::{parse_range, ByteRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, header)) = data.split_first_chunk::<8>() else { return };
    let len = u64::from_le_bytes(*len) % (1 << 40);
    if let ByteRange::Part { start, end } = parse_range(&String::from_utf8_lossy(header), len) {
        assert!(start <= end && end < len, "{start}-{end} of {len}");
    }
});
