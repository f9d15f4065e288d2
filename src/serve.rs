//! What the nginx module asks of the store, as plain async Rust: one [`Job`] in, one [`Reply`] out.
//!
//! The nginx glue runs these on its tokio runtime and never sees the store; this module never sees
//! nginx.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};

use crate::index_cache::IndexCache;
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
    Playlist {
        text: Bytes,
        max_age_s: u32,
    },
    /// Nothing by that name (or it expired).
    NotFound(String),
    /// The first chunk of a blob and the blob's metadata.
    Blob {
        meta: BlobMeta,
        first: Bytes,
    },
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
    run_with(store, None, job).await
}

/// [`run`], reading media playlists' index rows through the worker's [`IndexCache`] when given.
pub async fn run_with(store: &Store, index: Option<&IndexCache>, job: Job) -> Result<Reply, StoreError> {
    match job {
        Job::Master { stream } => {
            let renditions = store.renditions(&stream).await?;
            if renditions.is_empty() {
                return Ok(Reply::NotFound(format!("no stream {stream:?}")));
            }
            let td = renditions.iter().map(|r| r.target_duration as i64).max().unwrap_or(1);
            Ok(Reply::Playlist { text: playlist::master(&renditions).into(), max_age_s: playlist_max_age(td) })
        }
        Job::Media { stream, rendition, window_us } => {
            let Some(r) = store.rendition(&stream, &rendition).await? else {
                return Ok(Reply::NotFound(format!("no rendition {stream:?}/{rendition:?}")));
            };
            let now = now_ms();
            let min_us = 3 * (r.target_duration.max(1) as i64) * 1_000_000;
            let from = window::read_from_ms(now, window_us, min_us);
            let entries = match index {
                Some(cache) => {
                    let key = format!("{stream}/{rendition}/{window_us}");
                    cache.range(store, key, &stream, &rendition, r.head_msn, from, now).await?
                }
                None => store.index_range(&stream, &rendition, from, now).await?,
            };
            let win = window::select(&entries, window_us, min_us);
            if win.is_empty() {
                return Ok(Reply::NotFound(format!("no segments of {stream:?}/{rendition:?} in the window")));
            }
            let td = playlist::target_duration(r.target_duration, win);
            Ok(Reply::Playlist { text: playlist::media(&r, win).into(), max_age_s: playlist_max_age(td) })
        }
        Job::BlobFirst { kind, stream, rendition, msn } => {
            Ok(match store.blob_first(kind, &stream, &rendition, msn).await? {
                Some((meta, first)) => Reply::Blob { meta, first },
                None => Reply::NotFound(format!("no segment {stream}/{rendition}/{msn}")),
            })
        }
        Job::BlobChunk { kind, stream, rendition, msn, meta, chunk } => {
            Ok(Reply::Chunk(store.blob_chunk(kind, &stream, &rendition, msn, &meta, chunk).await?))
        }
    }
}

type SharedReply = Shared<BoxFuture<'static, Result<Reply, StoreError>>>;

/// Every viewer of a live stream reloads the same playlist about once per target duration: a
/// worker answers identical playlist requests that arrive together with one store read, and keeps
/// the answer for `ttl` (well under the half target duration clients may cache it anyway).
/// Errors are shared only by the requests that waited for them, never kept.
pub struct PlaylistCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, SharedReply)>>,
}

impl PlaylistCache {
    pub fn new(ttl: Duration) -> Self {
        PlaylistCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub async fn get<F>(&self, key: String, make: impl FnOnce() -> F) -> Result<Reply, StoreError>
    where
        F: Future<Output = Result<Reply, StoreError>> + Send + 'static,
    {
        let (born, fut) = {
            let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some((born, f)) if born.elapsed() < self.ttl => (*born, f.clone()),
                _ => {
                    let ttl = self.ttl;
                    map.retain(|_, (born, _)| born.elapsed() < ttl);
                    let f = make().boxed().shared();
                    let born = Instant::now();
                    map.insert(key.clone(), (born, f.clone()));
                    (born, f)
                }
            }
        };
        let res = fut.await;
        if res.is_err() {
            let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(&key).is_some_and(|(b, _)| *b == born) {
                map.remove(&key);
            }
        }
        res
    }
}

/// [`run_with`], with playlists going through the worker's cache (when its ttl is not zero).
pub async fn run_cached(
    store: Arc<Store>,
    cache: &PlaylistCache,
    index: Option<&'static IndexCache>,
    job: Job,
) -> Result<Reply, StoreError> {
    match job {
        Job::Master { .. } | Job::Media { .. } if !cache.ttl.is_zero() => {
            let key = format!("{job:?}");
            cache.get(key, move || async move { run_with(&store, index, job).await }).await
        }
        job => run_with(&store, index, job).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn text(s: &'static str) -> Result<Reply, StoreError> {
        Ok(Reply::Playlist { text: Bytes::from_static(s.as_bytes()), max_age_s: 1 })
    }

    #[tokio::test]
    async fn cache_coalesces_keeps_for_ttl_and_forgets_errors() {
        let cache = Arc::new(PlaylistCache::new(Duration::from_millis(200)));
        let calls = Arc::new(AtomicUsize::new(0));
        let call = |answer: Result<Reply, StoreError>| {
            let calls = calls.clone();
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                answer
            }
        };
        // Ten requests together: one store read.
        let waits: Vec<_> = (0..10).map(|_| cache.get("a".into(), call(text("one")))).collect();
        for r in futures::future::join_all(waits).await {
            assert!(matches!(r, Ok(Reply::Playlist { ref text, .. }) if &text[..] == b"one"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another key is another read.
        cache.get("b".into(), call(text("two"))).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // After the ttl, a fresh read.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = cache.get("a".into(), call(text("three"))).await;
        assert!(matches!(r, Ok(Reply::Playlist { ref text, .. }) if &text[..] == b"three"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Errors are not kept.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let e = cache.get("a".into(), call(Err(StoreError::Unavailable("down".into())))).await;
        assert!(e.is_err());
        let r = cache.get("a".into(), call(text("four"))).await;
        assert!(matches!(r, Ok(Reply::Playlist { ref text, .. }) if &text[..] == b"four"));
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn playlist_cache_is_half_a_target_duration() {
        assert_eq!(playlist_max_age(2), 1);
        assert_eq!(playlist_max_age(1), 1);
        assert_eq!(playlist_max_age(6), 3);
        assert_eq!(playlist_max_age(1000), 30);
    }
}
