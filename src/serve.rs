//! What the nginx module asks of the store, as plain async Rust: one [`Job`] in, one [`Reply`] out.
//!
//! The nginx glue runs these on its tokio runtime and never sees the store; this module never sees
//! nginx. Tests drive it directly against a CQL node.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::playlist;
use crate::store::{BlobKind, BlobMeta, Store, StoreError};
use crate::window;

/// A request's store work. Owned data only: it crosses to the runtime's thread.
#[derive(Debug, Clone)]
pub enum Job {
    Master { stream: String },
    Media { stream: String, rendition: String, window_us: i64 },
    BlobFirst { kind: BlobKind, stream: String, rendition: String, msn: i64 },
    BlobChunk { kind: BlobKind, stream: String, rendition: String, msn: i64, meta: BlobMeta, chunk: u32 },
}

#[derive(Debug, Clone)]
pub enum Reply {
    /// A playlist, with how long clients may cache it.
    Playlist { text: String, max_age_s: u32 },
    /// Nothing by that name (or it expired).
    NotFound(String),
    /// The first chunk of a blob and the blob's metadata.
    Blob { meta: BlobMeta, first: Bytes },
    Chunk(Bytes),
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Playlists may be cached for about half a target duration: players reload about once per
/// target duration, and a stale playlist must not hide the newest segment for longer than that.
fn playlist_max_age(target_duration: i64) -> u32 {
    (target_duration / 2).clamp(1, 30) as u32
}

pub async fn run(store: &Store, job: Job) -> Result<Reply, StoreError> {
    match job {
        Job::Master { stream } => {
            let renditions = store.renditions(&stream).await?;
            if renditions.is_empty() {
                return Ok(Reply::NotFound(format!("no stream {stream:?}")));
            }
            let td = renditions.iter().map(|r| r.target_duration as i64).max().unwrap_or(1);
            Ok(Reply::Playlist { text: playlist::master(&renditions), max_age_s: playlist_max_age(td) })
        }
        Job::Media { stream, rendition, window_us } => {
            let Some(r) = store.rendition(&stream, &rendition).await? else {
                return Ok(Reply::NotFound(format!("no rendition {stream:?}/{rendition:?}")));
            };
            let now = now_ms();
            let min_us = 3 * (r.target_duration.max(1) as i64) * 1_000_000;
            let entries = store.index_range(&stream, &rendition, window::read_from_ms(now, window_us, min_us), now).await?;
            let win = window::select(&entries, window_us, min_us);
            if win.is_empty() {
                return Ok(Reply::NotFound(format!("no segments of {stream:?}/{rendition:?} in the window")));
            }
            let td = playlist::target_duration(r.target_duration, win);
            Ok(Reply::Playlist { text: playlist::media(&r, win), max_age_s: playlist_max_age(td) })
        }
        Job::BlobFirst { kind, stream, rendition, msn } => Ok(match store.blob_first(kind, &stream, &rendition, msn).await? {
            Some((meta, first)) => Reply::Blob { meta, first },
            None => Reply::NotFound(format!("no segment {stream}/{rendition}/{msn}")),
        }),
        Job::BlobChunk { kind, stream, rendition, msn, meta, chunk } => {
            Ok(Reply::Chunk(store.blob_chunk(kind, &stream, &rendition, msn, &meta, chunk).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_cache_is_half_a_target_duration() {
        assert_eq!(playlist_max_age(2), 1);
        assert_eq!(playlist_max_age(1), 1);
        assert_eq!(playlist_max_age(6), 3);
        assert_eq!(playlist_max_age(1000), 30);
    }
}
