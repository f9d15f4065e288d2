//! Index rows as a store may hold them (holes, odd dates and durations, a corrupt row): every
//! view and its playlist text, delta updates included, come out without a panic.
#![no_main]

use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_core::playlist;
use hls_dvr_core::model::{sort_newest_per_msn, Container, IndexEntry, Rendition, SourcePos};
use hls_dvr_core::window;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_764_093_600_000;

fuzz_target!(|data: &[u8]| {
    let Some((q, rows)) = data.split_first_chunk::<12>() else { return };
    let mut entries: Vec<IndexEntry> = rows
        .chunks_exact(12)
        .map(|r| {
            let n = |a: usize, b: usize| i32::from_le_bytes([r[a], r[b], r[(a + 2) % 12], r[(b + 3) % 12]]) as i64;
            IndexEntry {
                msn: n(0, 1).rem_euclid(10_000),
                duration_us: n(4, 5) * 1000,
                pdt_ms: NOW + n(8, 9) * 10,
                discontinuity: r[2] & 1 == 1,
                disc_seq: (r[3] % 8) as i64,
                init_msn: (r[6] & 1 == 1).then_some(r[7] as i64),
                size: 1000,
                added_ms: NOW,
            }
        })
        .collect();
    sort_newest_per_msn(&mut entries);
    let head = Rendition {
        name: "r".into(),
        container: if q[0] & 1 == 0 { Container::Ts } else { Container::Fmp4 },
        target_duration: q[1] as i32,
        bandwidth: None,
        codecs: None,
        resolution: None,
        frame_rate: None,
        head_msn: entries.last().map_or(-1, |e| e.msn),
        head_disc_seq: 0,
        head_pdt_ms: NOW,
        source: SourcePos::default(),
        updated_ms: NOW,
        ended: q[2] & 1 == 1,
    };
    let secs = |b: u8| (b as i64 - 128) * 1000;
    let query = match q[3] % 3 {
        0 => PlaylistQuery { delay_ms: Some(secs(q[4]).abs()), window_ms: Some(secs(q[5]).abs() + 1), ..Default::default() },
        1 => PlaylistQuery { start_ms: Some(NOW + secs(q[4]) * 10), end_ms: Some(NOW + secs(q[5]) * 10), ..Default::default() },
        _ => PlaylistQuery { start_ms: Some(NOW + secs(q[4]) * 10), ..Default::default() },
    };
    let window_us = (q[6] as i64 + 1) * 10_000_000;
    if let Ok(view) = window::select(&entries, &head, &query, window_us, 6_000_000, NOW) {
        let text = playlist::media(&head, &view, q[7] & 1 == 1, "");
        assert!(text.starts_with("#EXTM3U\n"));
    }
});
