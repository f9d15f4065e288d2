//! The fuzz targets' bodies, shared by the libFuzzer binaries in `fuzz_targets/` (scripts/fuzz)
//! and by `tests/fuzz_corpora.rs`, which replays every kept corpus through them in the suite.

use hls_dvr_core::model::{
    sort_newest_per_msn, Container, IndexEntry, MediaType, Part, PartHead, PartPos, Rendition, SourcePos,
};
use hls_dvr_core::mp4::file::{self, TrackPlan};
use hls_dvr_core::mp4::fmp4::{self, Init};
use hls_dvr_core::mp4::samples::SegmentSamples;
use hls_dvr_core::mp4::ts;
use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_core::route::{self, parse_range, ByteRange};
use hls_dvr_core::{parts, playlist, window};
use hls_dvr_store::BlobMeta;
use hls_dvr_upload::source::{self, whole, Parsed};

const NOW: i64 = 1_764_093_600_000;

/// A request's path and query, as any client may send them: never a panic, and what parses
/// round-trips.
pub fn request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    if let Ok(route) = route::parse(path) {
        assert_eq!(route.to_string(), path);
    }
    if let Ok(q) = PlaylistQuery::parse(query, NOW, 86_400_000) {
        // What a multivariant playlist passes on parses to the same range.
        let passed = q.for_variants();
        // One `?` starts the query; a parameter passed on may itself begin with one.
        let again =
            PlaylistQuery::parse(passed.strip_prefix('?').unwrap_or(&passed), NOW, 86_400_000).expect("passed on");
        assert_eq!(
            (again.start_ms, again.end_ms, again.delay_ms, again.window_ms),
            (q.start_ms, q.end_ms, q.delay_ms, q.window_ms)
        );
        let _ = q.describe();
    }
}

/// `Range` headers against any body length: a part is always inside the body.
pub fn range(data: &[u8]) {
    let Some((len, header)) = data.split_first_chunk::<8>() else { return };
    let len = u64::from_le_bytes(*len) % (1 << 40);
    if let ByteRange::Part { start, end } = parse_range(&String::from_utf8_lossy(header), len) {
        assert!(start <= end && end < len, "{start}-{end} of {len}");
    }
}

/// Playlists as a segmenter (or a broken disk) may leave them: parsed or refused, never a panic.
pub fn playlist(data: &[u8]) {
    if let Ok(Parsed::Media(m)) = source::parse(data) {
        for e in &m.entries {
            assert!(e.duration_us >= 0);
            let _ = source::resolve(std::path::Path::new("/d/x.m3u8"), &e.uri);
        }
    }
}

/// Chunk rows as a store may return them, corrupt ones included: a blob's metadata is either
/// refused or describes chunks that add up to the blob exactly; segment bytes are whole or not.
pub fn chunks(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<16>() else { return };
    let size = u64::from_le_bytes(head[..8].try_into().unwrap()) % (1 << 36);
    let chunks = u32::from_le_bytes(head[8..12].try_into().unwrap()) % 100_000;
    let fixed = BlobMeta { size, chunks, chunk_size: u32::from_le_bytes(head[12..16].try_into().unwrap()), ends: None };
    // Varying chunks (a pushed segment): ends made of the input's bytes, sane or not.
    let ends: std::sync::Arc<[u64]> =
        rest.chunks(3).map(|c| c.iter().fold(0u64, |a, b| a * 256 + *b as u64)).take(64).collect();
    let varying = BlobMeta { size, chunks: ends.len() as u32, chunk_size: 0, ends: Some(ends) };
    for meta in [fixed, varying] {
        check_meta(&meta, rest);
    }
    let _ = whole(Container::Ts, rest);
    let _ = whole(Container::Fmp4, rest);
}

fn check_meta(meta: &BlobMeta, rest: &[u8]) {
    if meta.validate().is_ok() {
        let total: u64 = (0..meta.chunks).map(|i| meta.chunk_len(i)).sum();
        assert_eq!(total, meta.size);
        if meta.size > 0 {
            let r = meta.chunks_for(0, meta.size - 1);
            assert!(*r.start() == 0 && *r.end() < meta.chunks);
        }
        let i = rest.len() as u32 % meta.chunks;
        assert_eq!(meta.check_chunk(i, rest).is_ok(), rest.len() as u64 == meta.chunk_len(i));
        for b in [0, meta.size / 2, meta.size.saturating_sub(1)] {
            let c = *meta.chunks_for(b, b).start();
            assert!(meta.size == 0 || (meta.chunk_start(c) <= b && b < meta.chunk_start(c) + meta.chunk_len(c)));
        }
    }
}

/// Index rows as a store may hold them (holes, odd dates and durations, a corrupt row): every
/// view and its playlist text, delta updates and low-latency parts included, come out without a
/// panic.
pub fn views(data: &[u8]) {
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
                key_frame: None,
                thumbnail: false,
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
        media: MediaType::Muxed,
        parts: (q[8] & 1 == 1).then_some(PartHead {
            target_us: q[9] as i64 * 10_000,
            newest: Some(PartPos { msn: entries.last().map_or(0, |e| e.msn + 1), part: q[10] as i32 % 8 - 1 }),
        }),
        grouping: Default::default(),
        key_frames: false,
        thumbnails: None,
    };
    // Parts of the last segments and of one in progress, odd ones included (holes, a negative
    // duration from a bad row).
    let per = q[10] as i64 % 5;
    let list: Vec<Part> = entries
        .iter()
        .map(|e| e.msn)
        .chain(entries.last().map(|e| e.msn + 1))
        .flat_map(|msn| {
            (0..per).map(move |i| Part {
                msn,
                index: (i * (1 + q[11] as i64 % 2)) as i32,
                duration_us: (q[9] as i64 - 8) * 10_000,
                independent: i == 0,
                discontinuity: q[11] & 4 == 4,
                first_chunk: i as u32,
                sizes: vec![1],
            })
        })
        .collect();
    let secs = |b: u8| (b as i64 - 128) * 1000;
    let query = match q[3] % 3 {
        0 => PlaylistQuery {
            delay_ms: Some(secs(q[4]).abs()),
            window_ms: Some(secs(q[5]).abs() + 1),
            ..Default::default()
        },
        1 => PlaylistQuery {
            start_ms: Some(NOW + secs(q[4]) * 10),
            end_ms: Some(NOW + secs(q[5]) * 10),
            ..Default::default()
        },
        _ => PlaylistQuery { start_ms: Some(NOW + secs(q[4]) * 10), ..Default::default() },
    };
    let window_us = (q[6] as i64 + 1) * 10_000_000;
    if let Ok(view) = window::select(&entries, &head, &query, window_us, 6_000_000, NOW) {
        let text = playlist::media(&head, &view, q[7] & 1 == 1, "", None, &playlist::Marks::NONE);
        assert!(text.starts_with("#EXTM3U\n"));
        if let Some(p) = head.parts.filter(|_| parts::shows_parts(&head, &view)) {
            let reports = [parts::Report::of(&head)];
            let ll = playlist::LowLatency { target_us: p.target_us, parts: &list, reports: &reports };
            let text = playlist::media(&head, &view, q[7] & 1 == 1, "?t=1", Some(&ll), &playlist::Marks::NONE);
            assert_eq!(text.matches("#EXT-X-PRELOAD-HINT:").count(), 1);
        }
    }
}

/// Segment bytes as a segmenter or a store may hold them (clips as files): remuxed from MPEG-TS,
/// read as fMP4 (`[init length, u32 LE][init segment][segment]`), or refused, never a panic;
/// what is read checks out against its bytes. A sample table read back from the store makes a
/// file header or is refused.
pub fn media(data: &[u8]) {
    if let Ok(r) = ts::remux(data) {
        r.samples.check(r.body.len() as u64).expect("a remux's table points into its body");
        let bytes: u64 = r.samples.runs.iter().map(|run| run.bytes()).sum();
        assert_eq!(bytes, r.body.len() as u64);
    }
    if let Some((len, rest)) = data.split_first_chunk::<4>() {
        let cut = (u32::from_le_bytes(*len) as usize).min(rest.len());
        if let Ok(init) = Init::parse(&rest[..cut]) {
            if let Ok(t) = fmp4::segment_samples(&rest[cut..], &init) {
                t.check((rest.len() - cut) as u64).expect("checked when made");
            }
        }
    }
    if let Ok(t) = SegmentSamples::decode(data) {
        if t.check(u64::MAX).is_ok() {
            let plans: Vec<TrackPlan> =
                t.runs.iter().map(|r| TrackPlan { kind: r.kind, trak: None, runs: vec![(0, r)] }).collect();
            if let Ok(f) = file::write(&[t.runs.iter().map(|r| r.bytes()).sum()], &plans) {
                assert!(f.len >= f.header.len() as u64);
            }
        }
    }
}

/// Viewer statistics as a store may return them and queries as any client may send them:
/// sketches and per-minute counts are read back exactly or refused; a statistics query is parsed
/// or refused; a playlist given a session id lists every URI with it. Never a panic.
pub fn audience(data: &[u8]) {
    use hls_dvr_core::audience::{Row, StatsQuery, MAX_POINTS};
    use hls_dvr_core::session;
    use hls_dvr_core::sketch::Sketch;
    if let Ok(s) = Sketch::from_bytes(data) {
        let e = s.estimate();
        assert!(e.is_finite() && e >= 0.0, "{e}");
        assert_eq!(Sketch::from_bytes(&s.to_bytes()).expect("written, read"), s);
    }
    if let Ok(m) = Row::minutes_from(data) {
        assert_eq!(Row { minutes: m, ..Row::default() }.minutes_bytes(), data);
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(q) = StatsQuery::parse(&text, NOW) {
        assert!(q.start_ms < q.end_ms);
        let step_ms = q.step_s * 1000;
        assert!(q.end_ms.div_euclid(step_ms) - q.start_ms.div_euclid(step_ms) < MAX_POINTS);
    }
    let _ = session::find(&text);
    let out = String::from_utf8(session::add_to_uris(text.as_bytes(), "s1")).expect("UTF-8 in, UTF-8 out");
    assert_eq!(out.lines().count(), text.lines().count());
    for line in out.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(line.ends_with("hls_session=s1"), "{line:?}");
    }
}
