//! HLS push, as ffmpeg's hls muxer sends it (`-method PUT`): each segment whole once it is cut,
//! then the playlist that lists it. Pushed files wait in memory until a playlist lists them;
//! from there a rendition goes the way of a folder's (the same tracker, dates and rows), except
//! that its sequence numbers come from claims shared with any other receiver of the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use tokio::sync::mpsc;
use tracing::{error, info, info_span, warn, Instrument};

use hls_dvr_core::clock::now_ms;
use hls_dvr_core::hash::fnv1a;
use hls_dvr_core::model::{Container, Rendition, SourcePos};

use super::claims::{self, Claims, Placed, Proposal};
use super::path::{self, Target};
use super::server::{shutting_down, Reply};
use super::Receiver;
use crate::ingest::{self, write_whole, InitState, Outcome, Uploads, Whole};
use crate::source::{self, sanitize_name, FileId, MediaInfo, Parsed, VariantInfo};
use crate::tracker::{Assigned, Change, PdtChain, Seen, Tracker};

/// Pushed files not listed after this long are dropped (an encoder's retry, a stray file).
const UNLISTED_FOR: Duration = Duration::from_secs(120);
/// Segments of a rendition queued for the store at most; past it, the playlist's request waits
/// (and with it the encoder).
const QUEUE: usize = 4;

/// A pushed file.
#[derive(Debug, Clone)]
struct Pushed {
    data: Bytes,
    at: Instant,
    /// When it arrived: the date of a segment its playlist does not date, as a file's mtime is.
    arrived_ns: i64,
    /// Its identity for the tracker, by content (the hash stands where a file's modification
    /// time would): the same at every receiver and after a restart, so a receiver resuming from
    /// the store's head finds its place; an encoder that restarted and pushed new content under
    /// an old name is told apart.
    id: FileId,
}

/// One stream's HLS push.
pub struct HlsStream {
    name: Arc<str>,
    /// Pushed files not listed yet, by name.
    files: Mutex<HashMap<String, Pushed>>,
    /// What the master playlist says, by media playlist name.
    variants: Mutex<HashMap<String, VariantInfo>>,
    /// Markers the playlists carried.
    markers: Mutex<crate::marker::Seen>,
    renditions: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Feed>>>>,
}

/// A segment for a rendition's store task.
struct Queued {
    seg_msn: i64,
    uri: String,
    data: Bytes,
    id: FileId,
    duration_us: i64,
    pdt_ms: i64,
    discontinuity: bool,
    map: Option<(String, Bytes)>,
    container: Container,
    target_duration: i32,
    received: Instant,
}

enum Job {
    Segment(Queued),
    /// The playlist says the stream ended (EXT-X-ENDLIST).
    End,
}

/// The playlist side of a rendition: what its playlists listed so far.
struct Feed {
    tracker: Tracker,
    pdt: PdtChain,
    /// The init segment in force, kept: encoders push it once.
    map: Option<(String, Bytes, FileId)>,
    target_duration: i32,
    /// The newest date stored or queued: a playlist wholly older than it is a relay's backlog.
    newest_pdt_ms: i64,
    tx: mpsc::Sender<Job>,
}

impl HlsStream {
    pub fn new(name: &str) -> HlsStream {
        HlsStream {
            name: Arc::from(name),
            files: Mutex::default(),
            variants: Mutex::default(),
            markers: Mutex::default(),
            renditions: tokio::sync::Mutex::default(),
        }
    }

    /// Keeps a pushed segment or init segment until a playlist lists it.
    pub fn file(&self, name: &str, data: Bytes) {
        let mut f = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let id = FileId { size: data.len() as i64, mtime_ns: fnv1a(data.iter().copied()) as i64, ino: 0 };
        let now = Instant::now();
        f.retain(|n, p| {
            let keep = now.duration_since(p.at) < UNLISTED_FOR;
            if !keep {
                warn!("{n} was pushed {UNLISTED_FOR:?} ago and no playlist listed it: dropped");
            }
            keep
        });
        f.insert(name.to_string(), Pushed { data, at: now, arrived_ns: now_ms() * 1_000_000, id });
    }

    fn variant(&self, playlist: &str) -> Option<VariantInfo> {
        self.variants.lock().unwrap_or_else(|p| p.into_inner()).get(playlist).cloned()
    }
}

/// A pushed playlist: a master playlist's attributes are kept; a media playlist's new segments
/// go to its rendition's store task (waiting while that task's queue is full).
pub async fn playlist(rx: &Receiver, s: &Arc<HlsStream>, name: &str, text: &[u8]) -> Reply {
    let info = match source::parse(text) {
        Ok(Parsed::Master(variants)) => {
            let mut known = s.variants.lock().unwrap_or_else(|p| p.into_inner());
            for (uri, v) in variants {
                known.insert(uri, v);
            }
            return Ok(StatusCode::CREATED);
        }
        Ok(Parsed::Media(m)) => m,
        Err(e) => return Err((StatusCode::BAD_REQUEST, format!("{name}: {e}"))),
    };
    // The HLS playlists of a CMAF push (the dash muxer's `-hls_playlist`) list what the CMAF
    // path stores already.
    let cmaf = |uri: &str| matches!(path::parse(&format!("/ingest/{}/{uri}", s.name)), Target::CmafSegment { .. });
    if info.entries.iter().any(|e| cmaf(&e.uri)) {
        return Ok(StatusCode::NO_CONTENT);
    }
    let news = s.markers.lock().unwrap_or_else(|p| p.into_inner()).news(info.markers.clone());
    if !news.is_empty() {
        ingest::store_markers(&rx.uploads, &s.name, &news).await;
    }
    let feed = feed(rx, s, name).await?;
    let mut feed = feed.lock().await;
    let jobs = take(s, &mut feed, &info);
    for job in jobs {
        if feed.tx.send(job).await.is_err() {
            return Err(shutting_down());
        }
    }
    Ok(StatusCode::CREATED)
}

/// The rendition of media playlist `name`, started on its first playlist: its store task
/// resumes after the head the store holds.
async fn feed(
    rx: &Receiver,
    s: &Arc<HlsStream>,
    name: &str,
) -> Result<Arc<tokio::sync::Mutex<Feed>>, (StatusCode, String)> {
    let mut all = s.renditions.lock().await;
    if let Some(f) = all.get(name) {
        return Ok(f.clone());
    }
    let rendition = sanitize_name(name.strip_suffix(".m3u8").unwrap_or(name));
    let sh = &rx.uploads;
    let (claims, head) = Claims::start(sh, &rx.id, &s.name, &rendition).await.ok_or_else(shutting_down)?;
    match &head {
        Some(h) if h.head_msn >= 0 => {
            info!("pushed rendition {}/{rendition}: resuming after msn {}", s.name, h.head_msn)
        }
        _ => info!("new pushed rendition {}/{rendition}", s.name),
    }
    let (tx, jobs) = mpsc::channel(QUEUE);
    let task = Task {
        sh: sh.clone(),
        stream: s.clone(),
        playlist: name.to_string(),
        rendition: rendition.clone(),
        claims,
        init: None,
        peak_bw: head.as_ref().and_then(|h| h.bandwidth),
        last_head: head.clone(),
    };
    let span = info_span!("push", stream = %s.name, rendition = %rendition);
    tokio::spawn(task.run(jobs).instrument(span));
    // Pushed segments are there or never come: one listed and missing is skipped at once.
    let f = Feed {
        tracker: Tracker::resume(head.as_ref().map(|h| &h.source), 0),
        pdt: PdtChain::default(),
        map: None,
        target_duration: head.as_ref().map_or(0, |h| h.target_duration),
        newest_pdt_ms: head.as_ref().map_or(i64::MIN, |h| h.head_pdt_ms),
        tx,
    };
    let f = Arc::new(tokio::sync::Mutex::new(f));
    all.insert(name.to_string(), f.clone());
    Ok(f)
}

/// What a media playlist adds: the new segments whose bytes were pushed, in order.
fn take(s: &HlsStream, feed: &mut Feed, info: &MediaInfo) -> Vec<Job> {
    feed.target_duration = feed.target_duration.max(info.target_duration);
    let mut files = s.files.lock().unwrap_or_else(|p| p.into_inner());
    let file_of = |uri: &str| {
        let name = uri.split(['?', '#']).next().unwrap_or(uri);
        files.get(name).map(|p| p.id)
    };
    let seen: Vec<Seen> = info
        .entries
        .iter()
        .map(|e| Seen {
            seg_msn: e.seg_msn,
            uri: &e.uri,
            file: file_of(&e.uri),
            discontinuity: e.discontinuity,
            refused: false,
        })
        .collect();
    // A playlist that seems to restart the numbering but whose newest segment is dated before
    // what is stored already is old, not new: a relay's backlog delivered to a receiver that
    // restarted after the other receiver moved on. It adds nothing.
    let newest = info.entries.last().and_then(|e| e.pdt_ms);
    if newest.is_some_and(|p| p <= feed.newest_pdt_ms) && feed.tracker.change_in(&seen).0 == Change::Restart {
        return Vec::new();
    }
    let (change, diff) = feed.tracker.diff(&seen, now_ms());
    if change == Change::Restart {
        info!("encoder restart (numbering back to {}): discontinuity", info.entries[0].seg_msn);
    }
    for &i in &diff.skipped {
        error!("segment {} listed but never pushed; skipped, a discontinuity follows", info.entries[i].uri);
    }
    let mut jobs = Vec::new();
    for (i, disc) in diff.enqueue {
        let e = &info.entries[i];
        let name = e.uri.split(['?', '#']).next().unwrap_or(&e.uri);
        let Some(p) = files.remove(name) else { continue };
        // The init segment in force: the pushed file when there is a newer one, else the kept.
        if let Some(uri) = &e.map {
            if let Some(init) = files.get(uri.as_str()) {
                if feed.map.as_ref().is_none_or(|(u, _, id)| u != uri || *id != init.id) {
                    feed.map = Some((uri.clone(), init.data.clone(), init.id));
                }
            }
        }
        let map = match (&e.map, &feed.map) {
            (Some(uri), Some((u, data, _))) if u == uri => Some((uri.clone(), data.clone())),
            (Some(uri), _) => {
                error!("segment {} needs init segment {uri}, which was never pushed: skipped", e.uri);
                continue;
            }
            (None, _) => None,
        };
        let pdt_ms = feed.pdt.next(e.pdt_ms, e.duration_us, p.arrived_ns, disc);
        feed.newest_pdt_ms = feed.newest_pdt_ms.max(pdt_ms);
        jobs.push(Job::Segment(Queued {
            seg_msn: e.seg_msn,
            uri: e.uri.clone(),
            data: p.data,
            id: p.id,
            duration_us: e.duration_us,
            pdt_ms,
            discontinuity: disc,
            map,
            container: info.container,
            target_duration: feed.target_duration,
            received: p.at,
        }));
    }
    if info.ended && diff.waiting.is_none() {
        jobs.push(Job::End);
    }
    jobs
}

/// A rendition's store task: claims each segment's number, then stores it (or leaves it to
/// the receiver whose claim holds it).
struct Task {
    sh: Uploads,
    stream: Arc<HlsStream>,
    playlist: String,
    rendition: String,
    claims: Claims,
    init: Option<InitState>,
    peak_bw: Option<i64>,
    last_head: Option<Rendition>,
}

impl Task {
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(job) = jobs.recv().await {
            let done = match job {
                Job::Segment(q) => self.store(q).await,
                Job::End => self.end().await,
            };
            if done.is_err() {
                break;
            }
        }
    }

    fn head(&mut self, q: &Queued, msn: i64, claim: &hls_dvr_core::model::Claim) -> Rendition {
        let variant = self.stream.variant(&self.playlist).unwrap_or_default();
        let seg_bw = (q.duration_us > 0).then(|| (q.data.len() as i128 * 8 * 1_000_000 / q.duration_us as i128) as i64);
        self.peak_bw = self.peak_bw.max(seg_bw);
        let rounded_s = ((q.duration_us + 500_000) / 1_000_000) as i32;
        Rendition {
            name: self.rendition.clone(),
            container: q.container,
            target_duration: q.target_duration.max(rounded_s).max(1),
            bandwidth: variant.bandwidth.or(self.peak_bw),
            codecs: variant.codecs,
            resolution: variant.resolution,
            frame_rate: variant.frame_rate,
            head_msn: msn,
            head_disc_seq: claim.disc_seq,
            head_pdt_ms: claim.pdt_ms,
            source: SourcePos { uri: q.uri.clone(), seg_msn: q.seg_msn, size: q.id.size, mtime_ns: q.id.mtime_ns },
            updated_ms: 0,
            ended: false,
            key_frames: !variant.media.is_alternative(),
            media: variant.media,
            parts: None,
            grouping: variant.grouping,
            thumbnails: None,
        }
    }

    async fn store(&mut self, q: Queued) -> Result<(), ()> {
        let (stream, rendition) = (self.stream.name.clone(), self.rendition.clone());
        let p = Proposal {
            seg_no: q.seg_msn,
            content: format!("{:016x}", q.id.mtime_ns as u64),
            pdt_ms: q.pdt_ms,
            duration_us: q.duration_us,
            discontinuity: q.discontinuity,
        };
        let (msn, claim) = match self.claims.place(&self.sh, &stream, &rendition, &p).await? {
            Placed::Late { newer } => {
                warn!("segment {} came after newer ones were stored ({}): dropped", q.uri, newer.source);
                self.sh.metrics.late(&stream, &rendition);
                return Ok(());
            }
            Placed::Copy { msn, claim } => {
                let wait = claims::holder_wait(q.target_duration);
                if claims::stored_by_holder(&self.sh, &stream, &rendition, msn, wait).await? {
                    self.sh.metrics.copy(&stream, &rendition);
                    return Ok(());
                }
                warn!("segment {} claimed by receiver {} but not stored by it: storing it here", q.uri, claim.receiver);
                (msn, claim)
            }
            Placed::Won { msn, claim } => (msn, claim),
        };
        let head = self.head(&q, msn, &claim);
        let whole = Whole {
            stream: stream.clone(),
            uri: q.uri.clone(),
            assigned: Assigned { msn, discontinuity: claim.discontinuity, disc_seq: claim.disc_seq },
            duration_us: q.duration_us,
            pdt_ms: claim.pdt_ms,
            added_ms: Some(claim.added_ms),
            map: q.map.clone(),
            init: self.init.clone(),
            head: head.clone(),
            forward_only: true,
            since: Some(q.received),
        };
        match write_whole(&self.sh, &whole, &q.data).await {
            Outcome::Stored { init, head, .. } => {
                self.init = init;
                self.last_head = Some(*head);
                Ok(())
            }
            Outcome::Lost(why) => {
                error!("segment {} lost: {why}", q.uri);
                Ok(())
            }
            Outcome::Ended(_) | Outcome::Aborted => Err(()),
        }
    }

    async fn end(&mut self) -> Result<(), ()> {
        let Some(head) = self.last_head.clone().filter(|h| !h.ended) else { return Ok(()) };
        info!("the encoder ended the stream after msn {}", head.head_msn);
        let head = Rendition { ended: true, updated_ms: now_ms(), ..head };
        let (stream, row) = (&*self.stream.name, &head);
        crate::ingest::retry(&self.sh, &mut None, "end of stream", |store| async move {
            store.advance_head(stream, row).await.map(drop)
        })
        .await?;
        self.last_head = Some(head);
        Ok(())
    }
}
