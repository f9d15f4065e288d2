//! The edge's counters: what nginx's workers served, how the store and the cache did. One
//! [`Counters`] lives in an nginx shared zone, so every worker adds to the same counters and
//! `/metrics` shows their sum (ARCHITECTURE.md, "Counters").
//!
//! The board is plain memory of atomics (`#[repr(C)]`, valid when all zero): it can be placed in
//! any zeroed memory, shared between processes, and written from any thread. Series per stream
//! and rendition are claimed in a fixed open-addressing table; names that do not fit, or streams
//! beyond its size, count under the stream `_other`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::*};
use std::time::Duration;

use hls_dvr_core::prometheus::{latency_bucket, Text, LATENCY_BOUNDS_S};
use hls_dvr_store::{Op, StoreError};

#[cfg(test)]
use crate::slots::NAME_MAX;
use crate::slots::{find_or_claim, SlotName};

/// Stream and rendition series; streams number in tens, renditions a few each.
pub const SERIES: usize = 512;
/// Series 0 counts requests whose path names no stream.
const NO_STREAM: usize = 0;
/// Series 1 counts streams beyond the table or with overlong names.
const OTHER: usize = 1;

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Master,
    Media,
    Segment,
    Init,
    /// A low-latency part of a segment.
    Part,
    /// A range as one file (`clip.mp4`, `clip.ts`).
    Clip,
    /// Not one of ours: a bad path.
    Invalid,
}

impl RequestKind {
    const ALL: [RequestKind; 7] = [
        RequestKind::Master,
        RequestKind::Media,
        RequestKind::Segment,
        RequestKind::Init,
        RequestKind::Part,
        RequestKind::Clip,
        RequestKind::Invalid,
    ];
    fn name(self) -> &'static str {
        match self {
            RequestKind::Master => "master",
            RequestKind::Media => "media",
            RequestKind::Segment => "segment",
            RequestKind::Init => "init",
            RequestKind::Part => "part",
            RequestKind::Clip => "clip",
            RequestKind::Invalid => "invalid",
        }
    }
}

/// Statuses counted by code; any other counts as `other`.
const STATUSES: [u16; 18] = [200, 204, 206, 302, 304, 400, 403, 404, 405, 409, 412, 416, 499, 500, 502, 503, 504, 0];

fn status_slot(status: u16) -> usize {
    STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len() - 1)
}

/// What the shared cache holds, for its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Playlist,
    Segment,
    Init,
    Part,
}

const CACHE_KINDS: [(CacheKind, &str); 4] = [
    (CacheKind::Playlist, "playlist"),
    (CacheKind::Segment, "segment"),
    (CacheKind::Init, "init"),
    (CacheKind::Part, "part"),
];

#[repr(C)]
struct Series {
    name: SlotName,
    requests: [[AtomicU64; STATUSES.len()]; RequestKind::ALL.len()],
    bytes: [AtomicU64; RequestKind::ALL.len()],
}

#[repr(C)]
struct Histogram {
    counts: [AtomicU64; LATENCY_BOUNDS_S.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn record(&self, d: Duration) {
        self.counts[latency_bucket(d.as_secs_f64())].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }
}

/// The counters, all zero when new.
#[repr(C)]
pub struct Counters {
    series: [Series; SERIES],
    /// Store reads by [`Op::READS`] order.
    reads: [Histogram; Op::READS.len()],
    errors: [AtomicU64; StoreError::KINDS.len()],
    /// Per [`CACHE_KINDS`]: hits, misses, bytes served from the zone.
    cache: [[AtomicU64; 3]; CACHE_KINDS.len()],
    /// Playlist requests held until their segment exists (`_HLS_msn`).
    blocked: AtomicI64,
}

impl Counters {
    /// A board on the heap (tests, and anything outside nginx).
    pub fn boxed() -> Box<Counters> {
        // SAFETY: a Counters is atomics only, valid when all zero, and not zero-sized.
        unsafe { crate::slots::boxed_zeroed() }
    }

    /// A request answered: its kind, stream and rendition (empty for a master playlist or a bad
    /// path), status and bytes sent.
    pub fn request(&self, kind: RequestKind, stream: &str, rendition: &str, status: u16, bytes: u64) {
        let s = &self.series[self.series_of(stream, rendition)];
        s.requests[kind as usize][status_slot(status)].fetch_add(1, Relaxed);
        s.bytes[kind as usize].fetch_add(bytes, Relaxed);
    }

    pub fn store_read(&self, op: Op, took: Duration) {
        if let Some(i) = Op::READS.iter().position(|o| *o == op) {
            self.reads[i].record(took);
        }
    }

    pub fn store_error(&self, e: &StoreError) {
        self.errors[e.index()].fetch_add(1, Relaxed);
    }

    pub fn cache_hit(&self, kind: CacheKind, bytes: usize) {
        self.cache[kind as usize][0].fetch_add(1, Relaxed);
        self.cache[kind as usize][2].fetch_add(bytes as u64, Relaxed);
    }

    pub fn cache_miss(&self, kind: CacheKind) {
        self.cache[kind as usize][1].fetch_add(1, Relaxed);
    }

    pub fn blocked(&self, delta: i64) {
        self.blocked.fetch_add(delta, Relaxed);
    }

    /// The series of a stream and rendition, claimed on first use.
    fn series_of(&self, stream: &str, rendition: &str) -> usize {
        if stream.is_empty() {
            return NO_STREAM;
        }
        find_or_claim(&self.series, |s| &s.name, 2, stream, rendition).unwrap_or(OTHER)
    }

    /// Renders every counter in the Prometheus text format. Request series appear once used.
    pub fn render(&self, t: &mut Text) {
        let mut series: Vec<(String, String, &Series)> = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let (stream, rendition) = match i {
                NO_STREAM => (String::new(), String::new()),
                OTHER => ("_other".to_string(), String::new()),
                _ => match s.name.names() {
                    Some(names) => names,
                    None => continue,
                },
            };
            series.push((stream, rendition, s));
        }
        series.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

        t.family("hls_dvr_requests_total", "counter", "Requests answered, by kind, status, stream and rendition.");
        for (stream, rendition, s) in &series {
            for kind in RequestKind::ALL {
                for (j, status) in STATUSES.iter().enumerate() {
                    let n = s.requests[kind as usize][j].load(Relaxed);
                    if n > 0 {
                        let code = if *status == 0 { "other".to_string() } else { status.to_string() };
                        let labels =
                            [("kind", kind.name()), ("status", &code), ("stream", stream), ("rendition", rendition)];
                        t.sample("hls_dvr_requests_total", &labels, n);
                    }
                }
            }
        }
        t.family(
            "hls_dvr_sent_bytes_total",
            "counter",
            "Bytes sent to clients (headers and bodies), by kind, stream and rendition.",
        );
        for (stream, rendition, s) in &series {
            for kind in RequestKind::ALL {
                let n = s.bytes[kind as usize].load(Relaxed);
                if n > 0 {
                    t.sample(
                        "hls_dvr_sent_bytes_total",
                        &[("kind", kind.name()), ("stream", stream), ("rendition", rendition)],
                        n,
                    );
                }
            }
        }
        t.family("hls_dvr_store_read_seconds", "histogram", "Time each store read took, by query kind.");
        for (op, h) in Op::READS.iter().zip(&self.reads) {
            let counts: Vec<u64> = h.counts.iter().map(|c| c.load(Relaxed)).collect();
            t.histogram(
                "hls_dvr_store_read_seconds",
                &[("query", op.name())],
                &counts,
                h.sum_us.load(Relaxed) as f64 / 1e6,
            );
        }
        t.family("hls_dvr_store_errors_total", "counter", "Requests that failed at the store, by kind of failure.");
        for (name, n) in StoreError::KINDS.iter().zip(&self.errors) {
            t.sample("hls_dvr_store_errors_total", &[("kind", name)], n.load(Relaxed));
        }
        let cache = [
            ("hls_dvr_cache_hits_total", "Requests answered from the shared cache.", 0),
            ("hls_dvr_cache_misses_total", "Requests the shared cache could not answer, filled from the store.", 1),
            ("hls_dvr_cache_sent_bytes_total", "Body bytes answered from the shared cache.", 2),
        ];
        for (name, help, j) in cache {
            t.family(name, "counter", help);
            for (kind, label) in CACHE_KINDS {
                t.sample(name, &[("content", label)], self.cache[kind as usize][j].load(Relaxed));
            }
        }
        t.family(
            "hls_dvr_blocked_reloads",
            "gauge",
            "Requests waiting for a segment or part: blocking reloads (_HLS_msn, _HLS_part) and hinted parts.",
        );
        t.sample("hls_dvr_blocked_reloads", &[], self.blocked.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(b: &Counters) -> String {
        let mut t = Text::default();
        b.render(&mut t);
        t.out
    }

    #[test]
    fn requests_count_per_stream_rendition_kind_and_status() {
        let b = Counters::boxed();
        b.request(RequestKind::Media, "news", "hi", 200, 1000);
        b.request(RequestKind::Media, "news", "hi", 200, 500);
        b.request(RequestKind::Segment, "news", "lo", 404, 10);
        b.request(RequestKind::Master, "sport", "", 200, 300);
        b.request(RequestKind::Invalid, "", "", 400, 50);
        b.request(RequestKind::Segment, "news", "hi", 418, 1);
        let text = render(&b);
        assert!(text.contains(r#"hls_dvr_requests_total{kind="media",status="200",stream="news",rendition="hi"} 2"#));
        assert!(text.contains(r#"hls_dvr_requests_total{kind="segment",status="404",stream="news",rendition="lo"} 1"#));
        assert!(text.contains(r#"hls_dvr_requests_total{kind="master",status="200",stream="sport",rendition=""} 1"#));
        assert!(text.contains(r#"hls_dvr_requests_total{kind="invalid",status="400",stream="",rendition=""} 1"#));
        assert!(
            text.contains(r#"hls_dvr_requests_total{kind="segment",status="other",stream="news",rendition="hi"} 1"#)
        );
        assert!(text.contains(r#"hls_dvr_sent_bytes_total{kind="media",stream="news",rendition="hi"} 1500"#));
        // A name that shares a prefix is its own series.
        b.request(RequestKind::Media, "new", "shi", 200, 7);
        assert!(render(&b).contains(r#"hls_dvr_sent_bytes_total{kind="media",stream="new",rendition="shi"} 7"#));
    }

    #[test]
    fn a_full_table_and_long_names_count_as_other() {
        let b = Counters::boxed();
        for i in 0..SERIES + 10 {
            b.request(RequestKind::Segment, &format!("s{i}"), "r", 200, 1);
        }
        b.request(RequestKind::Segment, &"x".repeat(NAME_MAX), "r", 200, 1);
        let text = render(&b);
        let named =
            text.lines().filter(|l| l.starts_with("hls_dvr_sent_bytes_total{") && l.contains("stream=\"s")).count();
        assert_eq!(named, SERIES - 2);
        assert!(text.contains(r#"hls_dvr_sent_bytes_total{kind="segment",stream="_other",rendition=""} 13"#));
    }

    #[test]
    fn store_cache_and_blocked_counters() {
        let b = Counters::boxed();
        b.store_read(Op::ReadChunk, Duration::from_millis(3));
        b.store_read(Op::ReadChunk, Duration::from_millis(300));
        b.store_read(Op::WriteChunk, Duration::from_millis(3)); // not a read: not shown
        b.store_error(&StoreError::Timeout("x".into()));
        b.cache_hit(CacheKind::Segment, 4096);
        b.cache_miss(CacheKind::Playlist);
        b.blocked(2);
        b.blocked(-1);
        let text = render(&b);
        assert!(text.contains(r#"hls_dvr_store_read_seconds_bucket{query="chunk",le="0.005"} 1"#));
        assert!(text.contains(r#"hls_dvr_store_read_seconds_bucket{query="chunk",le="0.5"} 2"#));
        assert!(text.contains(r#"hls_dvr_store_read_seconds_count{query="chunk"} 2"#));
        assert!(text.contains(r#"hls_dvr_store_read_seconds_sum{query="chunk"} 0.303"#));
        assert!(text.contains(r#"hls_dvr_store_errors_total{kind="timeout"} 1"#));
        assert!(text.contains(r#"hls_dvr_cache_hits_total{content="segment"} 1"#));
        assert!(text.contains(r#"hls_dvr_cache_sent_bytes_total{content="segment"} 4096"#));
        assert!(text.contains(r#"hls_dvr_cache_misses_total{content="playlist"} 1"#));
        assert!(text.contains("hls_dvr_blocked_reloads 1\n"));
    }
}
