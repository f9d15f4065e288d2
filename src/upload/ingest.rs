//! Stores one segment, in the order readers rely on (ARCHITECTURE.md, "Data model and write
//! order"): init segment blob when it changed, segment blob, index row, head row. Each step is an
//! idempotent upsert retried with exponential backoff until it succeeds: a slow or absent store
//! delays, never drops.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, error, info, warn};

use hls_dvr_core::clock::now_ms;
use hls_dvr_core::markers::Marker;
use hls_dvr_core::model::{ByteRange, Container, IndexEntry, Rendition};
use hls_dvr_store::keeper::Keeper;
use hls_dvr_store::{BlobKind, Store, StoreError};

use super::metrics::UploadMetrics;
use super::source::{file_id, FileId};
use super::tracker::Assigned;

/// The current init segment is written again this often, so it outlives the tables' TTL while in use.
pub const INIT_REFRESH: Duration = Duration::from_secs(600);

/// 100 ms, 200 ms, ... 5 s, 5 s, ...
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Backoff::MIN }
    }
}

impl Backoff {
    pub const MIN: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(5);

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Backoff::MAX);
        d
    }
}

/// What the uploads of all renditions share.
#[derive(Clone)]
pub struct Uploads {
    /// The session, replaced when it keeps failing (a long outage of the whole cluster).
    pub keeper: Arc<Keeper>,
    /// Segment uploads in flight at once, over all streams.
    pub slots: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    pub delete_after_upload: bool,
    /// X-TIMESTAMP-MAP of subtitle segments that have none (`--vtt-mpegts`).
    pub vtt_mpegts: i64,
    /// `--thumbnails`: the width of the thumbnails made of each segment with a key frame.
    pub thumbnail_width: Option<u32>,
    pub metrics: Arc<UploadMetrics>,
}

impl Uploads {
    /// Runs one store request on the current session, and tells the keeper how it went: every
    /// request of the uploader goes through here, so a session that keeps failing is replaced.
    pub async fn with_store<T, Fut>(&self, f: impl FnOnce(Arc<Store>) -> Fut) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let store = self.keeper.get().expect("the uploader's session is set before it starts");
        let res = f(store).await;
        self.keeper.report(&res);
        res
    }
}

/// The init segment last stored for a rendition.
#[derive(Debug, Clone)]
pub struct InitState {
    pub bytes: Bytes,
    /// Key of the stored blob: the msn of the first segment that used it.
    pub msn: i64,
    pub written_at: Instant,
}

/// One segment to store, with everything decided beforehand.
#[derive(Debug, Clone)]
pub struct Upload {
    pub stream: Arc<str>,
    pub uri: String,
    pub path: PathBuf,
    /// The file as it was when listed: a different file under that name is not this segment.
    pub file: FileId,
    pub assigned: Assigned,
    pub duration_us: i64,
    pub pdt_ms: i64,
    /// EXT-X-MAP in force: (URI, file).
    pub map: Option<(String, PathBuf)>,
    pub init: Option<InitState>,
    /// The head row to write once the index row is stored (`updated_ms` is set then).
    pub head: Rendition,
}

#[derive(Debug)]
pub enum Outcome {
    /// `head`: the head row as written (what was found in the segment included).
    Stored { init: Option<InitState>, bytes: usize, head: Box<Rendition> },
    /// The segment cannot be stored any more (its file vanished or was replaced).
    Lost(String),
    /// The stream's end is stored (its head, marked ended).
    Ended(Box<Rendition>),
    /// Shutting down while the store was failing.
    Aborted,
}

/// The init blob to write before segment `msn` whose EXT-X-MAP holds `bytes`: a new one keyed by
/// `msn` when the content changed, the current one again when due for a refresh, else none.
pub fn init_to_write(bytes: Bytes, current: Option<&InitState>, msn: i64, now: Instant) -> Option<InitState> {
    match current {
        Some(cur) if cur.bytes == bytes => (now.saturating_duration_since(cur.written_at) >= INIT_REFRESH)
            .then_some(InitState { bytes, msn: cur.msn, written_at: now }),
        _ => Some(InitState { bytes, msn, written_at: now }),
    }
}

fn stopping(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

/// Runs `f` until it succeeds, holding an upload slot while it runs. Err: shutting down while
/// the store was failing.
pub async fn retry<T, F, Fut>(
    sh: &Uploads,
    permit: &mut Option<OwnedSemaphorePermit>,
    what: &str,
    mut f: F,
) -> Result<T, ()>
where
    F: FnMut(Arc<Store>) -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::default();
    let mut failures = 0u32;
    loop {
        if permit.is_none() {
            *permit = Some(sh.slots.clone().acquire_owned().await.map_err(|_| ())?);
        }
        match sh.with_store(&mut f).await {
            Ok(v) => {
                if failures > 0 {
                    info!("{what}: done after {failures} failed attempts");
                }
                return Ok(v);
            }
            Err(e) => {
                failures += 1;
                sh.metrics.retried(&e);
                if stopping(&sh.shutdown) {
                    warn!("{what}: {e}; shutting down, giving up (it is uploaded again after a restart)");
                    return Err(());
                }
                let d = backoff.next_delay();
                if matches!(e, StoreError::Invalid(_) | StoreError::Corrupt(_)) {
                    error!("{what}: {e}; retrying in {d:?}");
                } else {
                    warn!("{what}: {e}; retrying in {d:?}");
                }
                // Let other renditions use the slot while this one waits.
                *permit = None;
                let mut rx = sh.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = rx.wait_for(|s| *s) => {}
                }
            }
        }
    }
}

/// A segment listed before it was whole is waited for while it changes, at most this long.
const GROWTH_WAIT: Duration = Duration::from_secs(10);
/// A file that stopped changing this long ago is as whole as it gets: stored as it is.
const SETTLED: Duration = Duration::from_secs(2);

/// Reads a listed segment, whole: a file that is not yet a whole segment of its container, or
/// that changes while read, is being written still, and is read again once it stops changing.
/// The upload's file identity (and the head's source position) become the final file's.
async fn read_segment(upload: &mut Upload) -> Result<Bytes, String> {
    let container = upload.head.container;
    let give_up = Instant::now() + GROWTH_WAIT;
    let mut last_change: Option<(FileId, Instant)> = None;
    loop {
        let before = match file_id(&upload.path) {
            None => return Err("file vanished before upload".into()),
            Some(f) if !f.same_file(&upload.file) => {
                return Err(format!("file was replaced before upload (listed {:?}, now {:?})", upload.file, f))
            }
            Some(f) => f,
        };
        let data = tokio::fs::read(&upload.path).await.map_err(|e| format!("cannot read: {e}"))?;
        let unchanged = file_id(&upload.path) == Some(before) && data.len() as i64 == before.size;
        let settled = last_change.is_some_and(|(id, since)| id == before && since.elapsed() >= SETTLED);
        let verdict = match (unchanged, super::source::whole(container, &data)) {
            (true, Ok(())) => Ok(()),
            (true, Err(why)) if settled => {
                warn!("{} is not a whole segment ({why}) but no longer changes: stored as it is", upload.uri);
                Ok(())
            }
            (false, _) => Err("it changed while read".to_string()),
            (true, Err(why)) => Err(why),
        };
        match verdict {
            Ok(()) => {
                if last_change.is_some() {
                    info!("{} was listed before it was whole: stored once complete ({} bytes)", upload.uri, data.len());
                }
                upload.file = before;
                upload.head.source.size = before.size;
                upload.head.source.mtime_ns = before.mtime_ns;
                return Ok(Bytes::from(data));
            }
            Err(why) => {
                if Instant::now() > give_up {
                    return Err(format!("not a whole segment after {GROWTH_WAIT:?}: {why}"));
                }
                match last_change {
                    None => warn!("{} is listed but not whole yet ({why}): waiting for it", upload.uri),
                    Some((id, _)) if id == before => {}
                    Some(_) => last_change = None,
                }
                last_change = last_change.or(Some((before, Instant::now())));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stores one segment of a folder. Returns once every row is written, the segment is lost, or
/// on shutdown.
pub async fn store_segment(sh: Uploads, mut upload: Upload) -> Outcome {
    let data = match read_segment(&mut upload).await {
        Ok(d) => d,
        Err(why) => return Outcome::Lost(why),
    };
    let map = match &upload.map {
        None => None,
        Some((uri, path)) => match tokio::fs::read(path).await {
            Ok(b) if !b.is_empty() => Some((uri.clone(), Bytes::from(b))),
            Ok(_) | Err(_) if upload.init.is_some() => {
                warn!("init segment {uri} unreadable; segment {} keeps the previous one", upload.uri);
                upload.init.as_ref().map(|i| (uri.clone(), i.bytes.clone()))
            }
            Ok(_) | Err(_) => return Outcome::Lost(format!("its init segment {uri} is unreadable")),
        },
    };
    let written = tokio::fs::metadata(&upload.path).await.and_then(|m| m.modified()).ok();
    let whole = Whole {
        stream: upload.stream.clone(),
        uri: upload.uri.clone(),
        assigned: upload.assigned,
        duration_us: upload.duration_us,
        pdt_ms: upload.pdt_ms,
        added_ms: None,
        map,
        init: upload.init.clone(),
        head: upload.head.clone(),
        forward_only: false,
        since: written.and_then(|t| t.elapsed().ok()).map(|d| Instant::now() - d),
    };
    let out = write_whole(&sh, &whole, &data).await;
    if matches!(out, Outcome::Stored { .. }) && sh.delete_after_upload && file_id(&upload.path) == Some(upload.file) {
        if let Err(e) = tokio::fs::remove_file(&upload.path).await {
            warn!("cannot delete {} after upload: {e}", upload.path.display());
        }
    }
    out
}

/// A whole segment in memory, with everything decided about it: what a folder's file or a
/// pushed segment becomes before its rows are written.
#[derive(Debug, Clone)]
pub struct Whole {
    pub stream: Arc<str>,
    /// What the segmenter called it (for logs).
    pub uri: String,
    pub assigned: Assigned,
    pub duration_us: i64,
    pub pdt_ms: i64,
    /// The index row's `added_ms`, when fixed beforehand (a claim); else the time it is written.
    pub added_ms: Option<i64>,
    /// The init segment in force (its URI and bytes), for fMP4.
    pub map: Option<(String, Bytes)>,
    /// The init segment last stored for the rendition.
    pub init: Option<InitState>,
    /// The head row to write once the index row is stored (`updated_ms` is set then).
    pub head: Rendition,
    /// Write the head only if the stored one is not past it (two receivers write heads).
    pub forward_only: bool,
    /// When the segment's last byte was written or received: the delay metric counts from it.
    pub since: Option<Instant>,
}

/// Writes a whole segment's rows in the order readers rely on: the init segment when it changed,
/// the segment's bytes, its index row, the head.
pub async fn write_whole(sh: &Uploads, w: &Whole, data: &Bytes) -> Outcome {
    let (stream, rendition, msn) = (&*w.stream, w.head.name.as_str(), w.assigned.msn);
    let mapped;
    let data = if w.head.container == Container::WebVtt {
        mapped = crate::vtt::with_timestamp_map(data, sh.vtt_mpegts);
        &mapped
    } else {
        data
    };
    let mut permit = None;

    // 1. The init segment, when it changed (or is due for a refresh).
    let mut init = w.init.clone();
    if let Some((uri, bytes)) = &w.map {
        match write_init(sh, &mut permit, w, uri, bytes).await {
            Ok(Some(new)) => init = Some(new),
            Ok(None) => {}
            Err(()) => return Outcome::Aborted,
        }
    }

    // 2. The segment's bytes.
    let what = format!("segment {} as {stream}/{rendition} {msn}", w.uri);
    if retry(sh, &mut permit, &what, |store| async move {
        store.write_blob(BlobKind::Segment, stream, rendition, msn, data).await
    })
    .await
    .is_err()
    {
        return Outcome::Aborted;
    }
    let init_msn = w.map.as_ref().and(init.as_ref()).map(|i| i.msn);
    let key_frame = crate::key_frame::locate(w.head.container, data);
    let init_bytes = w.map.as_ref().map(|(_, b)| &b[..]);
    let samples = crate::sample_table::record(w.head.container, data, init_bytes)
        .map_err(|why| debug!("no sample table for {}: {why}", w.uri))
        .ok();
    // The thumbnail is stored before the index row that says it is there.
    let mut found = Found { key_frame, thumbnail: None, samples };
    if let (Some(k), Some(width)) = (key_frame, sh.thumbnail_width) {
        let mut picture = w.map.as_ref().map(|(_, init)| init.to_vec()).unwrap_or_default();
        picture.extend_from_slice(&data[k.offset as usize..(k.offset + k.length) as usize]);
        match store_thumbnail(sh, &mut permit, w, Bytes::from(picture), width).await {
            Ok(size) => found.thumbnail = size,
            Err(()) => return Outcome::Aborted,
        }
    }
    match write_index_and_head(sh, &mut permit, w, init_msn, data.len() as i64, found, &what).await {
        Ok(head) => Outcome::Stored { init, bytes: data.len(), head: Box::new(head) },
        Err(()) => Outcome::Aborted,
    }
}

/// Writes the init segment `bytes` in force for segment `w` when it changed or is due for a
/// refresh; returns the init segment stored then, if one was.
pub async fn write_init(
    sh: &Uploads,
    permit: &mut Option<OwnedSemaphorePermit>,
    w: &Whole,
    uri: &str,
    bytes: &Bytes,
) -> Result<Option<InitState>, ()> {
    let (stream, rendition, msn) = (&*w.stream, w.head.name.as_str(), w.assigned.msn);
    let Some(new) = init_to_write(bytes.clone(), w.init.as_ref(), msn, Instant::now()) else { return Ok(None) };
    let what = format!("init segment {uri} as {stream}/{rendition} init {}", new.msn);
    let (init_msn, bytes) = (new.msn, &new.bytes);
    retry(sh, permit, &what, |store| async move {
        store.write_blob(BlobKind::Init, stream, rendition, init_msn, bytes).await
    })
    .await?;
    if new.msn == msn {
        info!(init_msn = new.msn, bytes = new.bytes.len(), "new init segment {uri}");
    }
    Ok(Some(new))
}

/// What the uploader found in a segment: its key frame and the thumbnail it stored of it
/// (ARCHITECTURE.md, "Trick play").
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub key_frame: Option<ByteRange>,
    /// The size (`WxH`) of its stored thumbnail.
    pub thumbnail: Option<String>,
    /// Its sample table, stored form (ARCHITECTURE.md, "Clips as files").
    pub samples: Option<Vec<u8>>,
}

/// Makes and stores a segment's thumbnail; `Ok(None)` when it cannot be made (the segment goes
/// on without), Err when shutting down while the store was failing.
pub async fn store_thumbnail(
    sh: &Uploads,
    permit: &mut Option<OwnedSemaphorePermit>,
    w: &Whole,
    key_frame: Bytes,
    width: u32,
) -> Result<Option<String>, ()> {
    let (stream, rendition, msn) = (&*w.stream, w.head.name.as_str(), w.assigned.msn);
    let (jpeg, size) = match crate::thumbnail::make(key_frame, width).await {
        Ok(t) => t,
        Err(why) => {
            warn!("no thumbnail of {}: {why}", w.uri);
            return Ok(None);
        }
    };
    let what = format!("thumbnail of {} as {stream}/{rendition} {msn}", w.uri);
    let jpeg = &jpeg;
    retry(sh, permit, &what, |store| async move {
        store.write_blob(BlobKind::Thumbnail, stream, rendition, msn, jpeg).await
    })
    .await?;
    Ok(Some(size))
}

/// Steps 3 and 4 of every segment, whole or stored fragment by fragment: its sample table and
/// index row (from now on readers may list it), then the head (the resume point of a restarted
/// uploader). Returns the head as written.
pub async fn write_index_and_head(
    sh: &Uploads,
    permit: &mut Option<OwnedSemaphorePermit>,
    w: &Whole,
    init_msn: Option<i64>,
    size: i64,
    found: Found,
    what: &str,
) -> Result<Rendition, ()> {
    let (stream, rendition, msn) = (&*w.stream, w.head.name.as_str(), w.assigned.msn);
    let entry = IndexEntry {
        msn,
        duration_us: w.duration_us,
        pdt_ms: w.pdt_ms,
        discontinuity: w.assigned.discontinuity,
        disc_seq: w.assigned.disc_seq,
        init_msn,
        size,
        added_ms: w.added_ms.unwrap_or_else(now_ms),
        key_frame: found.key_frame,
        thumbnail: found.thumbnail.is_some(),
    };
    // Before the index row, in its bucket: a clip finds the table of every segment listed.
    if let Some(table) = &found.samples {
        let added_ms = entry.added_ms;
        retry(sh, permit, &format!("sample table of {what}"), |store| async move {
            store.write_samples(stream, rendition, added_ms, msn, table).await
        })
        .await?;
    }
    let row = &entry;
    retry(sh, permit, &format!("index row of {what}"), |store| async move {
        store.write_index(stream, rendition, row).await
    })
    .await?;
    let delay = w.since.map(|t| t.elapsed()).unwrap_or_default();
    let end_ms = entry.pdt_ms + entry.duration_us / 1000;
    sh.metrics.stored(stream, rendition, size as usize, delay, end_ms, w.head.target_duration);

    let mut head = w.head.clone();
    head.updated_ms = now_ms();
    head.key_frames = found.key_frame.is_some();
    head.thumbnails = found.thumbnail;
    let row = &head;
    let what = format!("head row after {what}");
    let forward_only = w.forward_only;
    retry(sh, permit, &what, |store| async move {
        if forward_only {
            store.advance_head(stream, row).await.map(drop)
        } else {
            store.write_head(stream, row).await
        }
    })
    .await?;
    debug!(msn, disc_seq = entry.disc_seq, duration_us = entry.duration_us, bytes = size, "stored {}", w.uri);
    Ok(head)
}

/// Stores the markers a segmenter's playlist carries, each retried until stored or shutdown.
pub async fn store_markers(sh: &Uploads, stream: &str, markers: &[Marker]) {
    let mut permit = None;
    for m in markers {
        let what = format!("marker {:?} of {stream}", m.id);
        if retry(sh, &mut permit, &what, |store| async move { store.write_marker(stream, m).await }).await.is_ok() {
            debug!("stored marker {:?} at {}", m.id, hls_dvr_core::clock::iso8601(m.start_ms));
        }
    }
}

/// Stores that the segmenter ended the stream: the head, marked ended. Players then get
/// EXT-X-ENDLIST until a new segment is stored.
pub async fn store_end(sh: Uploads, stream: Arc<str>, mut head: Rendition) -> Outcome {
    head.updated_ms = now_ms();
    let mut permit = None;
    let what = format!("end of {stream}/{}", head.name);
    let (name, row) = (&*stream, &head);
    match retry(&sh, &mut permit, &what, |store| async move { store.write_head(name, row).await }).await {
        Ok(()) => Outcome::Ended(Box::new(head)),
        Err(()) => Outcome::Aborted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_written_when_changed_and_refreshed_under_its_first_msn() {
        let t0 = Instant::now();
        let a = Bytes::from_static(b"init-a");
        let first = init_to_write(a.clone(), None, 7, t0).expect("first init is written");
        assert_eq!(first.msn, 7);
        // Same content soon after: nothing to write.
        assert!(init_to_write(a.clone(), Some(&first), 8, t0 + Duration::from_secs(599)).is_none());
        // Same content after 10 minutes: written again under the same key.
        let again = init_to_write(a.clone(), Some(&first), 300, t0 + INIT_REFRESH).expect("refresh");
        assert_eq!((again.msn, again.written_at), (7, t0 + INIT_REFRESH));
        // New content: a new blob under the segment's msn.
        let b = init_to_write(Bytes::from_static(b"init-b"), Some(&again), 301, t0 + INIT_REFRESH).unwrap();
        assert_eq!(b.msn, 301);
    }

    #[test]
    fn backoff_doubles_to_five_seconds() {
        let mut b = Backoff::default();
        let d: Vec<u64> = (0..9).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }
}
