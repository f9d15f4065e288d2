//! The uploader's counters (`--metrics ADDR`): segments and bytes stored per stream and
//! rendition, the delay from a segment's file being written to its index row, retries and store
//! errors, and the age of each rendition's newest segment (in seconds, and in target durations for
//! the ingest-stalled alert of nginx-conf/prometheus/); served in Prometheus's text format by a
//! small HTTP/1.1 listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{debug, info};

use hls_dvr_core::clock::now_ms;
use hls_dvr_core::prometheus::{latency_bucket, Text, CONTENT_TYPE, LATENCY_BOUNDS_S};
use hls_dvr_store::StoreError;

#[derive(Default)]
struct Rendition {
    segments: u64,
    bytes: u64,
    delay: [u64; LATENCY_BOUNDS_S.len() + 1],
    delay_sum_s: f64,
    /// Program date-time of the newest segment stored, and where it ends.
    newest_end_ms: Option<i64>,
    /// The rendition's target duration, seconds, as of its newest segment.
    target_duration_s: i32,
    /// Pushed: fragments stored as they arrived.
    fragments: u64,
    /// Pushed: segments another receiver stored (this one's copy was dropped).
    copies: u64,
    /// Pushed: copies that came after newer segments were stored, dropped.
    late: u64,
}

#[derive(Default)]
pub struct UploadMetrics {
    renditions: Mutex<BTreeMap<(String, String), Rendition>>,
    retries: AtomicU64,
    /// By [`StoreError::index`].
    errors: [AtomicU64; StoreError::KINDS.len()],
    /// Push requests answered, by status.
    requests: Mutex<BTreeMap<u16, u64>>,
    /// Bytes pushed, by stream.
    received: Mutex<BTreeMap<String, u64>>,
}

impl UploadMetrics {
    /// A segment's rows are written: `delay` after its file was, its media ending at `end_ms`, in a
    /// rendition of `target_duration_s`.
    pub fn stored(
        &self,
        stream: &str,
        rendition: &str,
        bytes: usize,
        delay: Duration,
        end_ms: i64,
        target_duration_s: i32,
    ) {
        let mut all = self.renditions.lock().unwrap_or_else(|p| p.into_inner());
        let r = all.entry((stream.to_string(), rendition.to_string())).or_default();
        r.segments += 1;
        r.bytes += bytes as u64;
        r.delay[latency_bucket(delay.as_secs_f64())] += 1;
        r.delay_sum_s += delay.as_secs_f64();
        r.newest_end_ms = Some(r.newest_end_ms.map_or(end_ms, |e| e.max(end_ms)));
        r.target_duration_s = target_duration_s;
    }

    fn rendition(&self, stream: &str, rendition: &str, f: impl FnOnce(&mut Rendition)) {
        let mut all = self.renditions.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry((stream.to_string(), rendition.to_string())).or_default());
    }

    /// A fragment of a pushed segment is stored.
    pub fn fragment(&self, stream: &str, rendition: &str) {
        self.rendition(stream, rendition, |r| r.fragments += 1);
    }

    /// Another receiver stored a segment this one also received.
    pub fn copy(&self, stream: &str, rendition: &str) {
        self.rendition(stream, rendition, |r| r.copies += 1);
    }

    /// A pushed segment came too late to be placed.
    pub fn late(&self, stream: &str, rendition: &str) {
        self.rendition(stream, rendition, |r| r.late += 1);
    }

    /// A push request was answered.
    pub fn request(&self, status: u16) {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry(status).or_default() += 1;
    }

    /// Bytes of a push body arrived.
    pub fn received(&self, stream: &str, bytes: usize) {
        let mut all = self.received.lock().unwrap_or_else(|p| p.into_inner());
        match all.get_mut(stream) {
            Some(n) => *n += bytes as u64,
            None => {
                all.insert(stream.to_string(), bytes as u64);
            }
        }
    }

    /// A write failed and is tried again.
    pub fn retried(&self, e: &StoreError) {
        self.retries.fetch_add(1, Relaxed);
        self.errors[e.index()].fetch_add(1, Relaxed);
    }

    pub fn render(&self, now_ms: i64) -> String {
        let all = self.renditions.lock().unwrap_or_else(|p| p.into_inner());
        let mut t = Text::default();
        type Value = fn(&Rendition) -> u64;
        let families: [(&str, &str, Value); 5] = [
            ("hls_dvr_upload_segments_total", "Segments stored.", |r| r.segments),
            ("hls_dvr_upload_bytes_total", "Segment bytes stored.", |r| r.bytes),
            ("hls_dvr_upload_fragments_total", "Fragments of pushed segments stored as they arrived.", |r| r.fragments),
            ("hls_dvr_upload_copies_total", "Pushed segments another receiver stored.", |r| r.copies),
            ("hls_dvr_upload_late_total", "Pushed segments that came after newer ones, dropped.", |r| r.late),
        ];
        for (name, help, value) in families {
            t.family(name, "counter", help);
            for (key, r) in all.iter() {
                t.sample(name, &labels(key), value(r));
            }
        }
        let name = "hls_dvr_upload_delay_seconds";
        t.family(
            name,
            "histogram",
            "From a segment's last byte written (a file) or received (a push) to its index row stored.",
        );
        for (key, r) in all.iter() {
            t.histogram(name, &labels(key), &r.delay, r.delay_sum_s);
        }
        let name = "hls_dvr_upload_newest_segment_age_seconds";
        t.family(name, "gauge", "Time since the end of the newest stored segment (by program date-time).");
        for (key, r) in all.iter() {
            if let Some(end) = r.newest_end_ms {
                t.sample(name, &labels(key), (now_ms - end) as f64 / 1000.0);
            }
        }
        // Players reload about once a target duration: the age in target durations says how many
        // reloads found nothing new, whatever the segment length.
        let name = "hls_dvr_upload_newest_segment_age_target_durations";
        t.family(
            name,
            "gauge",
            "Time since the end of the newest stored segment, in the rendition's target durations.",
        );
        for (key, r) in all.iter() {
            if let (Some(end), td) = (r.newest_end_ms, r.target_duration_s) {
                if td > 0 {
                    t.sample(name, &labels(key), (now_ms - end) as f64 / 1000.0 / td as f64);
                }
            }
        }
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if !requests.is_empty() {
            let name = "hls_dvr_upload_push_requests_total";
            t.family(name, "counter", "Push requests answered, by status.");
            for (status, n) in requests.iter() {
                t.sample(name, &[("status", &status.to_string())], *n);
            }
            let name = "hls_dvr_upload_push_received_bytes_total";
            t.family(name, "counter", "Bytes of push request bodies received.");
            for (stream, n) in self.received.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                t.sample(name, &[("stream", stream)], *n);
            }
        }
        t.family("hls_dvr_upload_retries_total", "counter", "Store writes tried again after a failure.");
        t.sample("hls_dvr_upload_retries_total", &[], self.retries.load(Relaxed));
        t.family("hls_dvr_upload_store_errors_total", "counter", "Store writes that failed, by kind of failure.");
        for (kind, n) in StoreError::KINDS.iter().zip(&self.errors) {
            t.sample("hls_dvr_upload_store_errors_total", &[("kind", kind)], n.load(Relaxed));
        }
        t.out
    }
}

fn labels((stream, rendition): &(String, String)) -> [(&'static str, &str); 2] {
    [("stream", stream), ("rendition", rendition)]
}

/// Binds `addr` now (so a taken port is an error at start), then serves `GET /metrics`.
pub async fn serve(addr: SocketAddr, metrics: Arc<UploadMetrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    info!("metrics at http://{addr}/metrics");
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { continue };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                // One request per connection; a slow client gets 5 s to send its request line.
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                let read = async {
                    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return false,
                            Ok(k) => n += k,
                        }
                    }
                    true
                };
                if !tokio::time::timeout(Duration::from_secs(5), read).await.unwrap_or(false) {
                    return;
                }
                let line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string();
                let reply = match line.split(' ').collect::<Vec<_>>()[..] {
                    ["GET", "/metrics", _] => {
                        let body = metrics.render(now_ms());
                        format!("HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    }
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                };
                if let Err(e) = conn.write_all(reply.as_bytes()).await {
                    debug!("metrics client: {e}");
                }
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_rendition_counters_and_ages() {
        let m = UploadMetrics::default();
        m.stored("news", "hi", 1000, Duration::from_millis(120), 10_000, 2);
        m.stored("news", "hi", 500, Duration::from_millis(3), 12_000, 2);
        m.retried(&StoreError::Unavailable("x".into()));
        let text = m.render(14_500);
        assert!(text.contains("hls_dvr_upload_segments_total{stream=\"news\",rendition=\"hi\"} 2\n"), "{text}");
        assert!(text.contains("hls_dvr_upload_bytes_total{stream=\"news\",rendition=\"hi\"} 1500\n"));
        assert!(text.contains("hls_dvr_upload_delay_seconds_bucket{stream=\"news\",rendition=\"hi\",le=\"0.005\"} 1\n"));
        assert!(text.contains("hls_dvr_upload_delay_seconds_count{stream=\"news\",rendition=\"hi\"} 2\n"));
        assert!(text.contains("hls_dvr_upload_newest_segment_age_seconds{stream=\"news\",rendition=\"hi\"} 2.5\n"));
        let age = "hls_dvr_upload_newest_segment_age_target_durations{stream=\"news\",rendition=\"hi\"} 1.25\n";
        assert!(text.contains(age), "{text}");
        assert!(text.contains("hls_dvr_upload_retries_total 1\n"));
        assert!(text.contains("hls_dvr_upload_store_errors_total{kind=\"unavailable\"} 1\n"));
    }
}
