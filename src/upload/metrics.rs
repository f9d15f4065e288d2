//! The uploader's counters (`--metrics ADDR`): segments and bytes stored per stream and
//! rendition, the delay from a segment's file being written to its index row, retries and store
//! errors, and the age of each rendition's newest segment; served in Prometheus's text format by
//! a small HTTP/1.1 listener.

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
}

#[derive(Default)]
pub struct UploadMetrics {
    renditions: Mutex<BTreeMap<(String, String), Rendition>>,
    retries: AtomicU64,
    /// By [`StoreError::index`].
    errors: [AtomicU64; StoreError::KINDS.len()],
}

impl UploadMetrics {
    /// A segment's rows are written: `delay` after its file was, its media ending at `end_ms`.
    pub fn stored(&self, stream: &str, rendition: &str, bytes: usize, delay: Duration, end_ms: i64) {
        let mut all = self.renditions.lock().unwrap_or_else(|p| p.into_inner());
        let r = all.entry((stream.to_string(), rendition.to_string())).or_default();
        r.segments += 1;
        r.bytes += bytes as u64;
        r.delay[latency_bucket(delay.as_secs_f64())] += 1;
        r.delay_sum_s += delay.as_secs_f64();
        r.newest_end_ms = Some(r.newest_end_ms.map_or(end_ms, |e| e.max(end_ms)));
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
        let families: [(&str, &str, Value); 2] = [
            ("hls_dvr_upload_segments_total", "Segments stored.", |r| r.segments),
            ("hls_dvr_upload_bytes_total", "Segment bytes stored.", |r| r.bytes),
        ];
        for (name, help, value) in families {
            t.family(name, "counter", help);
            for (key, r) in all.iter() {
                t.sample(name, &labels(key), value(r));
            }
        }
        let name = "hls_dvr_upload_delay_seconds";
        t.family(name, "histogram", "From a segment's file last written to its index row stored.");
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
        m.stored("news", "hi", 1000, Duration::from_millis(120), 10_000);
        m.stored("news", "hi", 500, Duration::from_millis(3), 12_000);
        m.retried(&StoreError::Unavailable("x".into()));
        let text = m.render(14_500);
        assert!(text.contains("hls_dvr_upload_segments_total{stream=\"news\",rendition=\"hi\"} 2\n"), "{text}");
        assert!(text.contains("hls_dvr_upload_bytes_total{stream=\"news\",rendition=\"hi\"} 1500\n"));
        assert!(text.contains("hls_dvr_upload_delay_seconds_bucket{stream=\"news\",rendition=\"hi\",le=\"0.005\"} 1\n"));
        assert!(text.contains("hls_dvr_upload_delay_seconds_count{stream=\"news\",rendition=\"hi\"} 2\n"));
        assert!(text.contains("hls_dvr_upload_newest_segment_age_seconds{stream=\"news\",rendition=\"hi\"} 2.5\n"));
        assert!(text.contains("hls_dvr_upload_retries_total 1\n"));
        assert!(text.contains("hls_dvr_upload_store_errors_total{kind=\"unavailable\"} 1\n"));
    }
}
