//! How long each kind of store request takes, as seen by the client: lock-free histograms that
//! the uploader and each nginx worker keep, and summarise when they stop.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Kinds of store requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ReadHead,
    ReadIndex,
    ReadChunk,
    WriteChunk,
    WriteIndex,
    WriteHead,
    /// A lightweight transaction of push ingest: a claim, or its SERIAL read.
    Claim,
    /// Low-latency parts: which chunks make a part, and the newest part.
    ReadPart,
    WritePart,
    /// Markers (ad breaks, timed metadata).
    ReadMarker,
    WriteMarker,
    /// Viewer statistics.
    ReadStats,
    WriteStats,
}

impl Op {
    pub const READS: [Op; 6] =
        [Op::ReadHead, Op::ReadIndex, Op::ReadChunk, Op::ReadPart, Op::ReadMarker, Op::ReadStats];
    pub const WRITES: [Op; 7] =
        [Op::WriteChunk, Op::WriteIndex, Op::WriteHead, Op::Claim, Op::WritePart, Op::WriteMarker, Op::WriteStats];

    pub fn name(self) -> &'static str {
        match self {
            Op::ReadHead | Op::WriteHead => "head",
            Op::ReadIndex | Op::WriteIndex => "index",
            Op::ReadChunk | Op::WriteChunk => "chunk",
            Op::Claim => "claim",
            Op::ReadPart | Op::WritePart => "part",
            Op::ReadMarker | Op::WriteMarker => "marker",
            Op::ReadStats | Op::WriteStats => "stats",
        }
    }
}

/// Buckets grow by 2^(1/4) (about 19%) from 10 us: bucket `i` holds latencies up to
/// 10 us * 2^(i/4); the last one, everything longer than about 84 s.
const BUCKETS: usize = 93;
const BASE_US: f64 = 10.0;

pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

fn bucket_of(d: Duration) -> usize {
    let us = d.as_secs_f64() * 1e6;
    if us <= BASE_US {
        return 0;
    }
    ((us / BASE_US).log2() * 4.0).ceil().min((BUCKETS - 1) as f64) as usize
}

fn upper_bound(i: usize) -> Duration {
    Duration::from_secs_f64(BASE_US * 2f64.powf(i as f64 / 4.0) / 1e6)
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        self.counts[bucket_of(d)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The latency that a fraction `q` of requests did not exceed, to within one bucket (rounded
    /// up to the bucket's bound). None before the first request.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_bound(i));
            }
        }
        Some(upper_bound(BUCKETS - 1))
    }
}

/// One histogram per kind of request.
#[derive(Default)]
pub struct Latencies {
    ops: [Histogram; Op::READS.len() + Op::WRITES.len()],
}

impl Latencies {
    pub fn record(&self, op: Op, d: Duration) {
        self.get(op).record(d);
    }

    pub fn get(&self, op: Op) -> &Histogram {
        &self.ops[op as usize]
    }

    /// `head n=12 p50=0.42ms p99=1.20ms; index ...` for the kinds given that saw requests.
    pub fn summary(&self, ops: &[Op]) -> String {
        let mut s = String::new();
        for &op in ops {
            let h = self.get(op);
            let (Some(p50), Some(p99)) = (h.quantile(0.5), h.quantile(0.99)) else { continue };
            if !s.is_empty() {
                s.push_str("; ");
            }
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let _ = write!(s, "{} n={} p50={:.2}ms p99={:.2}ms", op.name(), h.count(), ms(p50), ms(p99));
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        // 1..=1000 ms, one each.
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 1000);
        for (q, truth) in [(0.5, 500.0), (0.99, 990.0), (0.01, 10.0)] {
            let got = h.quantile(q).unwrap().as_secs_f64() * 1e3;
            assert!(got >= truth && got <= truth * 1.2, "q{q}: {got} ms for {truth} ms");
        }
        // Out of range on both sides lands in the end buckets.
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(1000));
        assert_eq!(h.quantile(0.0).unwrap(), upper_bound(0));
        assert_eq!(h.quantile(1.0).unwrap(), upper_bound(BUCKETS - 1));
    }

    #[test]
    fn summaries_name_the_kinds_that_saw_requests() {
        let l = Latencies::default();
        assert_eq!(l.summary(&Op::READS), "none");
        l.record(Op::ReadIndex, Duration::from_millis(2));
        let s = l.summary(&Op::READS);
        assert!(s.starts_with("index n=1 p50=2.") && !s.contains("head"), "{s}");
        assert_eq!(l.summary(&Op::WRITES), "none");
    }
}
