//! What the nginx module asks of the store, as plain async Rust: one [`Job`] in, one [`Reply`] out.
//!
//! The nginx glue runs these on its tokio runtime and never sees the store; this module never sees
//! nginx.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};

use crate::head_watch::HeadWatch;
use crate::index_cache::IndexCache;
use crate::part_cache::PartCache;
use hls_dvr_core::audience::{self, StatsQuery, MINUTE_MS};
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::markers::MarkerForm;
use hls_dvr_core::model::{Part, PartPos, Rendition};
use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_core::parts::{self, Report, Wait};
use hls_dvr_core::status::{self, RenditionStatus, StreamStatus};
use hls_dvr_core::window;
use hls_dvr_core::{multivariant, playlist, trick_play};
use hls_dvr_store::clip::{self, ClipFile, Format, Piece, Refusal};
use hls_dvr_store::markers::DAY_MS;
use hls_dvr_store::{BlobKind, BlobMeta, Store, StoreError};

/// A request's store work. Owned data only: it crosses to the runtime's thread.
#[derive(Debug, Clone)]
pub enum Job {
    /// `variant_query` follows every variant URI (see [`PlaylistQuery::for_variants`]).
    Master {
        stream: String,
        variant_query: String,
    },
    /// A playlist of a rendition's view; `window_us`: the location's live window.
    Media {
        stream: String,
        rendition: String,
        window_us: i64,
        query: PlaylistQuery,
        listing: Listing,
    },
    /// A low-latency part; one not stored yet is waited for while it may still come.
    Part {
        stream: String,
        rendition: String,
        at: PartPos,
    },
    BlobFirst {
        kind: BlobKind,
        stream: String,
        rendition: String,
        msn: i64,
    },
    BlobChunk {
        kind: BlobKind,
        stream: String,
        rendition: String,
        msn: i64,
        meta: BlobMeta,
        chunk: u32,
    },
    /// A whole blob at once, to fill a cache.
    BlobWhole {
        kind: BlobKind,
        stream: String,
        rendition: String,
        msn: i64,
    },
    /// The status document; the oldest segments are looked for from `since_ms` (now less the
    /// store's retention) on.
    Status {
        since_ms: i64,
    },
    /// A clip file's plan (ARCHITECTURE.md, "Clips as files"); `rendition` None: the stream's
    /// best video with its audio.
    Clip {
        stream: String,
        rendition: Option<String>,
        query: PlaylistQuery,
        format: Format,
    },
    /// A unit of a clip file: consecutive segments, as the file holds them.
    ClipUnit(Vec<Piece>),
    /// Viewer statistics (`hls_dvr_stats`).
    Stats(StatsQuery),
}

impl Job {
    /// The longest a job may take besides the store's own timeouts: a blocking reload waits for
    /// its segment up to three target durations (of at most [`MAX_BLOCK_TARGET`] each).
    pub fn wait_limit(&self) -> Duration {
        match self {
            Job::Media { query, .. } if query.block_msn.is_some() => MAX_BLOCK_TARGET * 3,
            Job::Part { .. } => MAX_PART_TARGET * 3,
            _ => Duration::ZERO,
        }
    }
}

/// What names a job's answer in a cache. The worker's playlist cache and the shared cache zone
/// both key by it, so two requests share an answer exactly when they ask the same of the store:
/// the same stream and rendition, the same window, the same query (the passed-on parameters too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Job {
    /// The key of this job's answer; None for what is never cached (the status document, a
    /// chunk of a blob being streamed).
    pub fn cache_key(&self) -> Option<CacheKey> {
        let blob = |kind: &BlobKind, stream: &str, rendition: &str, msn: &i64| {
            let tag = match kind {
                BlobKind::Segment => "s",
                BlobKind::Init => "i",
                BlobKind::Thumbnail => "j",
            };
            format!("{tag}:{stream}/{rendition}/{msn}")
        };
        Some(CacheKey(match self {
            Job::Master { stream, variant_query } => format!("m:{stream}{variant_query}"),
            Job::Media { stream, rendition, window_us, query, listing } => {
                let what = match listing {
                    Listing::Media(markers) => markers.as_str(),
                    Listing::IFrames => "iframes",
                    Listing::Images => "images",
                };
                format!("p:{stream}/{rendition}/{window_us}/{what}/{}", query.key())
            }
            Job::BlobFirst { kind, stream, rendition, msn } | Job::BlobWhole { kind, stream, rendition, msn } => {
                blob(kind, stream, rendition, msn)
            }
            Job::Part { stream, rendition, at } => format!("t:{stream}/{rendition}/{}.{}", at.msn, at.part),
            Job::BlobChunk { .. } | Job::Status { .. } | Job::Clip { .. } | Job::ClipUnit(_) | Job::Stats(_) => {
                return None
            }
        }))
    }
}

/// A blocking reload waits at most three target durations, counting no target duration longer
/// than this (a misconfigured segmenter must not hold requests for minutes).
pub const MAX_BLOCK_TARGET: Duration = Duration::from_secs(30);

/// A request for a part not stored yet waits at most three part targets, counting none longer
/// than this.
pub const MAX_PART_TARGET: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub enum Reply {
    /// A playlist, with how long clients may cache it.
    Playlist {
        text: Bytes,
        max_age_s: u32,
    },
    /// Refused, with the reason for the response body: 400, 404, 409 or 503.
    Refused {
        status: u16,
        reason: String,
    },
    /// The first chunk of a blob and the blob's metadata.
    Blob {
        meta: BlobMeta,
        first: Bytes,
    },
    Chunk(Bytes),
    /// A whole blob, as its chunks.
    Whole(Vec<Bytes>),
    /// A JSON document.
    Json(Bytes),
    /// A clip file's plan: its header and the pieces to fetch.
    Clip(Arc<ClipFile>),
    /// A unit of a clip file: its segments as the file holds them.
    ClipUnit(Vec<Bytes>),
}

impl Reply {
    fn not_found(reason: String) -> Reply {
        Reply::Refused { status: 404, reason }
    }
}

/// Playlists may be cached for about half a target duration: players reload about once per
/// target duration, and a stale playlist must not hide the newest segment for longer than that.
fn playlist_max_age(target_duration: i64) -> u32 {
    (target_duration / 2).clamp(1, 30) as u32
}

/// A part request joins one for the same part that started this recently (a part never
/// changes; one that does not exist yet is waited for once).
const PART_SHARE: Duration = Duration::from_secs(1);

/// A finished clip never changes: cached as long as segments are.
const CLIP_MAX_AGE_S: u32 = 86_400;

/// What a worker keeps between jobs: its shared playlist and part replies, its copies of index
/// windows and of whole segments' parts, and the head polls of blocking requests.
pub struct Edge {
    pub playlists: ReplyCache,
    /// Requests for one part arriving together (a crowd waiting for the part a playlist hints)
    /// share one wait and one read.
    pub part_replies: ReplyCache,
    pub index: IndexCache,
    pub parts: PartCache,
    pub heads: HeadWatch,
}

impl Edge {
    pub fn new(playlist_ttl: Duration) -> Edge {
        Edge {
            playlists: ReplyCache::new(playlist_ttl),
            part_replies: ReplyCache::new(PART_SHARE),
            index: IndexCache::new(),
            parts: PartCache::new(),
            heads: HeadWatch::new(),
        }
    }
}

/// Runs a job; identical playlist jobs arriving together share one build (when the playlist
/// cache is on).
pub async fn run(store: Arc<Store>, edge: &'static Edge, job: Job) -> Result<Reply, StoreError> {
    match job {
        Job::Master { .. } | Job::Media { .. } if !edge.playlists.ttl.is_zero() => {
            let key = job.cache_key().expect("playlists have a key");
            edge.playlists.get(key, move || async move { build(&store, edge, job).await }).await
        }
        Job::Part { .. } => {
            let key = job.cache_key().expect("parts have a key");
            edge.part_replies.get(key, move || async move { build(&store, edge, job).await }).await
        }
        // Boxed: the state of a build is large, and a task that waits on a shared playlist (10,000
        // blocked reloads, say) should not carry room for one.
        job => Box::pin(build(&store, edge, job)).await,
    }
}

async fn build(store: &Arc<Store>, edge: &Edge, job: Job) -> Result<Reply, StoreError> {
    match job {
        Job::Master { stream, variant_query } => {
            let renditions = store.renditions(&stream).await?;
            if renditions.is_empty() {
                return Ok(Reply::not_found(format!("no stream {stream:?}")));
            }
            let td = renditions.iter().map(|r| r.target_duration as i64).max().unwrap_or(1);
            let text = multivariant::master(&renditions, &variant_query);
            Ok(Reply::Playlist { text: text.into(), max_age_s: playlist_max_age(td) })
        }
        Job::Media { stream, rendition, window_us, query, listing } => {
            media(store, edge, &stream, &rendition, window_us, &query, listing).await
        }
        Job::Part { stream, rendition, at } => part(store, edge, &stream, &rendition, at).await,
        Job::BlobFirst { kind, stream, rendition, msn } => {
            Ok(match store.blob_first(kind, &stream, &rendition, msn).await? {
                Some((meta, first)) => Reply::Blob { meta, first },
                None => Reply::not_found(format!("no segment {stream}/{rendition}/{msn}")),
            })
        }
        Job::BlobChunk { kind, stream, rendition, msn, meta, chunk } => {
            Ok(Reply::Chunk(store.blob_chunk(kind, &stream, &rendition, msn, &meta, chunk).await?))
        }
        Job::BlobWhole { kind, stream, rendition, msn } => {
            Ok(match store.read_chunks(kind, &stream, &rendition, msn).await? {
                Some(chunks) => Reply::Whole(chunks),
                None => Reply::not_found(format!("no segment {stream}/{rendition}/{msn}")),
            })
        }
        Job::Status { since_ms } => status(store, since_ms).await,
        Job::Clip { stream, rendition, query, format } => {
            Ok(match clip::plan(store, &stream, rendition.as_deref(), &query, format).await? {
                Ok(file) => Reply::Clip(Arc::new(file)),
                Err(Refusal { status, reason }) => Reply::Refused { status, reason },
            })
        }
        Job::ClipUnit(pieces) => Ok(Reply::ClipUnit(clip::unit(store, &pieces).await?)),
        Job::Stats(q) => stats(store, &q).await,
    }
}

/// Viewer statistics: a stream's points, from every edge's rows of the range; or, without a
/// stream, each stream's viewers in the last whole minute.
async fn stats(store: &Arc<Store>, q: &StatsQuery) -> Result<Reply, StoreError> {
    let now = now_ms();
    let doc = match &q.stream {
        Some(stream) => {
            let (from, to) = q.rows_range();
            let rows = store.stats(stream, q.row_step_s(), from, to).await?;
            audience::document(stream, q.step_s, &audience::points(q, &rows, now))
        }
        None => {
            let minute = now.div_euclid(MINUTE_MS) * MINUTE_MS - MINUTE_MS;
            let last = StatsQuery { stream: None, start_ms: minute, end_ms: minute + 1, step_s: 60 };
            let streams = store.streams().await?;
            let points = futures::future::try_join_all(streams.into_iter().map(|name| {
                let last = &last;
                async move {
                    let rows = store.stats(&name, 60, minute, minute + MINUTE_MS).await?;
                    let p = audience::points(last, &rows, now).pop().unwrap_or_default();
                    Ok::<_, StoreError>((name, p))
                }
            }))
            .await?;
            audience::now_document(now, minute, &points)
        }
    };
    Ok(Reply::Json(doc.into()))
}

/// Reads every stream's heads, and each rendition's oldest stored segment, concurrently.
async fn status(store: &Arc<Store>, since_ms: i64) -> Result<Reply, StoreError> {
    let now = now_ms();
    let streams = futures::future::try_join_all(store.streams().await?.into_iter().map(|name| async move {
        let heads = store.renditions(&name).await?;
        let name_ref = &name;
        let renditions = futures::future::try_join_all(heads.into_iter().map(|head| async move {
            let oldest = store.oldest(name_ref, &head.name, since_ms, now).await?;
            Ok::<_, StoreError>(RenditionStatus { head, oldest })
        }))
        .await?;
        let markers = store.markers(&name, since_ms, now + DAY_MS).await?;
        Ok::<_, StoreError>(StreamStatus { name, renditions, markers })
    }))
    .await?;
    Ok(Reply::Json(status::document(now, &streams).into()))
}

/// Which playlist of a rendition's view: the media playlist (with markers in a form), its
/// I-frame playlist, or its image playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Media(MarkerForm),
    IFrames,
    Images,
}

async fn media(
    store: &Arc<Store>,
    edge: &Edge,
    stream: &str,
    rendition: &str,
    window_us: i64,
    q: &PlaylistQuery,
    listing: Listing,
) -> Result<Reply, StoreError> {
    let Some(mut head) = store.rendition(stream, rendition).await? else {
        return Ok(Reply::not_found(format!("no rendition {stream:?}/{rendition:?}")));
    };
    let td = Duration::from_secs(head.target_duration.max(1) as u64).min(MAX_BLOCK_TARGET);
    // A blocking reload (RFC 8216bis 6.2.5.2), where the playlist can still grow at the edge.
    let blocking = !head.ended && q.delay_ms.unwrap_or(0) == 0 && q.end_ms.is_none_or(|e| e > head.head_pdt_ms);
    if let (Some(n), true) = (q.block_msn, blocking) {
        let wait = match parts::wait_for(&head, n, q.block_part) {
            Ok(w) => w,
            Err(reason) => return Ok(Reply::Refused { status: 400, reason }),
        };
        if wait != Wait::Now {
            if !edge.heads.wait(store, stream, rendition, wait, td * 3).await {
                let what = match wait {
                    Wait::Part(p) | Wait::PartOrEnd(p) => format!("part {}.{}", p.msn, p.part),
                    _ => format!("segment {n}"),
                };
                let reason = format!("{what} did not arrive within three target durations");
                return Ok(Reply::Refused { status: 503, reason });
            }
            head = store.rendition(stream, rendition).await?.unwrap_or(head);
        }
    }
    let now = now_ms();
    let window_us = q.window_ms.map_or(window_us, |w| (w * 1000).min(window_us));
    let min_us = 3 * (head.target_duration.max(1) as i64) * 1_000_000;
    let range = window::index_range(stream, rendition, q, window_us, min_us, now);
    let entries = match range.copy_key {
        Some(key) => edge.index.range(store, key, stream, rendition, head.head_msn, range.from_ms, range.to_ms).await?,
        None => store.index_range(stream, rendition, range.from_ms, range.to_ms).await?,
    };
    let view = match window::select(&entries, &head, q, window_us, min_us, now) {
        Ok(v) => v,
        Err(window::Empty(why)) => {
            return Ok(Reply::not_found(format!("{stream}/{rendition}{}: {why}", q.describe())));
        }
    };
    if let Some(board) = crate::audience::board() {
        let durations = view.items.iter().map(|i| (i.msn(), i.duration_us() / 1000));
        board.note_segments(stream, rendition, head.head_msn, durations);
    }
    let max_age_s = match view.kind {
        window::PlaylistType::Vod => CLIP_MAX_AGE_S,
        _ => playlist_max_age(playlist::target_duration(head.target_duration, &view.items)),
    };
    let args = q.for_segments();
    let form = match (listing, head.thumbnails.as_deref()) {
        (Listing::IFrames, _) if !head.key_frames => {
            let why = format!("{stream}/{rendition} has no key frames recorded (no I-frame playlist)");
            return Ok(Reply::not_found(why));
        }
        (Listing::IFrames, _) => {
            return Ok(Reply::Playlist { text: trick_play::iframes(&head, &view, &args).into(), max_age_s });
        }
        (Listing::Images, None) => {
            return Ok(Reply::not_found(format!("{stream}/{rendition} has no thumbnails (no image playlist)")));
        }
        (Listing::Images, Some(size)) => {
            let text = trick_play::images(&head, size, &view, &args);
            return Ok(Reply::Playlist { text: text.into(), max_age_s });
        }
        (Listing::Media(form), _) => form,
    };
    // The stream's markers over what the view lists: the same on every rendition's playlist.
    let listed = match view.span_ms() {
        Some((from, to)) if form != MarkerForm::Off => store.markers(stream, from, to).await?,
        _ => Vec::new(),
    };
    let marks = playlist::Marks { list: &listed, form };
    let text = if parts::shows_parts(&head, &view) {
        let (list, reports) = low_latency(store, edge, stream, &head, &view).await?;
        let target_us = head.parts.map_or(0, |p| p.target_us);
        let ll = playlist::LowLatency { target_us, parts: &list, reports: &reports };
        playlist::media(&head, &view, q.skip, &args, Some(&ll), &marks)
    } else {
        playlist::media(&head, &view, q.skip, &args, None, &marks)
    };
    Ok(Reply::Playlist { text: text.into(), max_age_s })
}

/// What a live playlist with parts needs besides its segments: the parts of its last segments
/// and of the one in progress, and where the stream's other renditions stand.
async fn low_latency(
    store: &Arc<Store>,
    edge: &Edge,
    stream: &str,
    head: &Rendition,
    view: &window::View<'_>,
) -> Result<(Vec<Part>, Vec<Report>), StoreError> {
    let td_us = playlist::target_duration(head.target_duration, &view.items) * 1_000_000;
    let last = view.items.last().map_or(head.head_msn, window::Item::msn);
    let first = parts::first_listed_msn(&view.items, td_us).unwrap_or(last + 1);
    // The segment in progress, when it follows the last one listed.
    let newest = head.parts.and_then(|p| p.newest).map_or(last, |n| n.msn);
    let upto = if newest == last + 1 { last + 1 } else { last };
    let (list, others) = futures::try_join!(
        edge.parts.read(store, stream, &head.name, first..=upto, head.head_msn.min(last)),
        store.renditions(stream)
    )?;
    let reports = others.iter().filter(|r| r.name != head.name).map(Report::of).collect();
    Ok((list, reports))
}

/// A part's bytes. One not stored yet (the part a playlist hints next) is waited for until it
/// is stored (answered then), its segment ends without it (404: it will never exist, RFC 8216bis
/// 6.2.6), or three part targets pass (503).
async fn part(
    store: &Arc<Store>,
    edge: &Edge,
    stream: &str,
    rendition: &str,
    at: PartPos,
) -> Result<Reply, StoreError> {
    let name = format!("{stream}/{rendition}/{}.{}", at.msn, at.part);
    if let Some(p) = store.part(stream, rendition, at).await? {
        return Ok(Reply::Whole(store.part_chunks(stream, rendition, &p).await?));
    }
    let Some(head) = store.rendition(stream, rendition).await? else {
        return Ok(Reply::not_found(format!("no rendition {stream:?}/{rendition:?}")));
    };
    let Some(ph) = head.parts else {
        return Ok(Reply::not_found(format!("no part {name}: {stream}/{rendition} has no parts")));
    };
    let never = || Reply::not_found(format!("no part {name}: its segment ended before it"));
    if head.head_msn >= at.msn {
        return Ok(never());
    }
    // Only the next few parts are waited for; anything further is not about to exist.
    if let Err(why) = parts::wait_for(&head, at.msn, Some(at.part)) {
        return Ok(Reply::not_found(format!("no part {name}: {why}")));
    }
    let limit = Duration::from_micros(3 * ph.target_us.max(0) as u64).min(MAX_PART_TARGET * 3);
    if !edge.heads.wait(store, stream, rendition, Wait::PartOrEnd(at), limit).await {
        let reason = format!("part {name} was not stored within three part targets");
        return Ok(Reply::Refused { status: 503, reason });
    }
    Ok(match store.part(stream, rendition, at).await? {
        Some(p) => Reply::Whole(store.part_chunks(stream, rendition, &p).await?),
        None => never(),
    })
}

type SharedReply = Shared<BoxFuture<'static, Result<Reply, StoreError>>>;

/// Every viewer of a live stream reloads the same playlist about once per target duration, and
/// at low latency asks for the same hinted part: a worker answers identical requests that arrive
/// together with one store read, and keeps the answer for `ttl` (for playlists, well under the
/// half target duration clients may cache them anyway). Errors are shared only by the requests
/// that waited for them, never kept.
pub struct ReplyCache {
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Instant, SharedReply)>>,
}

impl ReplyCache {
    pub fn new(ttl: Duration) -> Self {
        ReplyCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub async fn get<F>(&self, key: CacheKey, make: impl FnOnce() -> F) -> Result<Reply, StoreError>
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn text(s: &'static str) -> Result<Reply, StoreError> {
        Ok(Reply::Playlist { text: Bytes::from_static(s.as_bytes()), max_age_s: 1 })
    }

    #[tokio::test]
    async fn cache_coalesces_keeps_for_ttl_and_forgets_errors() {
        let cache = Arc::new(ReplyCache::new(Duration::from_millis(200)));
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
        let waits: Vec<_> = (0..10).map(|_| cache.get(CacheKey("a".into()), call(text("one")))).collect();
        for r in futures::future::join_all(waits).await {
            assert!(matches!(r, Ok(Reply::Playlist { ref text, .. }) if &text[..] == b"one"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another key is another read.
        cache.get(CacheKey("b".into()), call(text("two"))).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // After the ttl, a fresh read.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = cache.get(CacheKey("a".into()), call(text("three"))).await;
        assert!(matches!(r, Ok(Reply::Playlist { ref text, .. }) if &text[..] == b"three"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Errors are not kept.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let e = cache.get(CacheKey("a".into()), call(Err(StoreError::Unavailable("down".into())))).await;
        assert!(e.is_err());
        let r = cache.get(CacheKey("a".into()), call(text("four"))).await;
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
