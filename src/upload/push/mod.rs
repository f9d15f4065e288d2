//! The push receiver (`--listen ADDR`): encoders push HLS or CMAF over HTTP/1.1 and every
//! segment goes straight to the store, nothing on disk (ARCHITECTURE.md, "Push ingest").
//!
//! - [`path`]: what a request's path names.
//! - [`access`]: who may push.
//! - [`body`]: reading request bodies within limits of size and idle time.
//! - [`boxes`]: MP4 boxes: init segments and fragments, found as the bytes arrive.
//! - [`claims`]: sequence numbers shared by every receiver of a stream.
//! - [`hls`]: HLS push: segments kept until a playlist lists them, then stored as a folder's are.
//! - [`fragments`]: a pushed segment stored fragment by fragment while it arrives.
//! - [`cmaf`]: CMAF push: per-track init segments, segments as chunked PUTs, Interface 1 tracks.
//! - [`server`]: the HTTP server (hyper) and the routing of requests.

pub mod access;
pub mod body;
pub mod boxes;
pub mod claims;
pub mod cmaf;
pub mod fragments;
pub mod hls;
pub mod path;
pub mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ingest::Uploads;

/// Settings of the receiver, from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub access: access::Access,
    /// A segment, fragment, init segment or playlist over this many bytes gets 413.
    pub max_segment: usize,
    /// A request whose body sends nothing for this long is closed.
    pub idle: Duration,
    /// The length of a segment cut from an Interface 1 track (at the next key frame after it).
    pub track_segment: Duration,
}

/// What every request of the receiver shares.
pub struct Receiver {
    pub uploads: Uploads,
    pub settings: Settings,
    /// This process, as named in the claims it makes: a receiver restarted is another one.
    pub id: String,
    hls: Mutex<HashMap<String, Arc<hls::HlsStream>>>,
    cmaf: Mutex<HashMap<(String, String), SharedTrack>>,
}

/// A pushed track, used by one request at a time.
type SharedTrack = Arc<tokio::sync::Mutex<cmaf::Track>>;

impl Receiver {
    pub fn new(uploads: Uploads, settings: Settings) -> Receiver {
        let id = format!("{}-{}-{:x}", hostname(), std::process::id(), hls_dvr_core::clock::now_ms());
        Receiver { uploads, settings, id, hls: Mutex::default(), cmaf: Mutex::default() }
    }

    /// The HLS push state of a stream, made on first use.
    fn hls_stream(&self, stream: &str) -> Arc<hls::HlsStream> {
        let mut all = self.hls.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(stream.to_string()).or_insert_with(|| Arc::new(hls::HlsStream::new(stream))).clone()
    }

    /// The CMAF state of a stream's track, made on first use.
    fn track(&self, stream: &str, rendition: &str) -> SharedTrack {
        let mut all = self.cmaf.lock().unwrap_or_else(|p| p.into_inner());
        all.entry((stream.to_string(), rendition.to_string()))
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(cmaf::Track::new(stream, rendition))))
            .clone()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into())
}
