//! One rendition: polls its media playlist, queues new segments, uploads them one after the other.
//!
//! Polling goes on while an upload waits for the store, so segments keep being queued during an
//! outage; a queued segment is uploaded as long as its file is on disk, listed or not.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, error, info, warn, Instrument, Span};

use hls_dvr_core::model::{Container, Rendition, SourcePos};

use super::ingest::{self, Backoff, InitState, Outcome, Upload, Uploads};
use super::source::{self, file_id, FileId, Located, MediaInfo, Parsed, VariantInfo};
use super::tracker::{Assigned, Change, PdtChain, Seen, Sequencer, Tracker};
use hls_dvr_core::clock::now_ms;

/// A listed segment whose file is missing holds later ones back at most this long.
const STALL: Duration = Duration::from_secs(10);
/// An unchanged playlist is still parsed again this often.
const REPARSE: Duration = Duration::from_secs(2);

/// What the stream watcher tells a rendition.
pub struct Spec {
    pub stream: Arc<str>,
    pub name: String,
    pub playlist: PathBuf,
    /// Attributes from the master playlist, when there is one.
    pub variant: Arc<Mutex<Option<VariantInfo>>>,
    pub poll_interval: Duration,
    /// Playlist writes in the stream's folder (inotify): poll at once.
    pub changes: tokio::sync::watch::Receiver<u64>,
    /// The stream's folder, canonical: nothing outside it is read.
    pub dir: PathBuf,
}

/// A segment seen in a playlist, waiting for its upload.
#[derive(Debug, Clone)]
struct Pending {
    seg_msn: i64,
    uri: String,
    path: PathBuf,
    file: FileId,
    duration_us: i64,
    pdt_ms: i64,
    discontinuity: bool,
    map: Option<(String, PathBuf)>,
}

struct State {
    tracker: Tracker,
    seq: Sequencer,
    pdt: PdtChain,
    queue: VecDeque<Pending>,
    init: Option<InitState>,
    container: Option<Container>,
    target_duration: i32,
    /// Peak of size*8/duration over stored segments, when no master playlist gives BANDWIDTH.
    peak_bw: Option<i64>,
    /// The upload in flight: its numbers and the head it writes.
    current: Option<(Assigned, Rendition)>,
    /// Playlist identity at the last parse, and when that was.
    last_read: Option<(FileId, Instant)>,
    /// Something was left waiting at the last poll: poll again even if the playlist is unchanged.
    waiting: bool,
    /// The playlist, at the last parse, had EXT-X-ENDLIST.
    source_ended: bool,
    /// The last head stored, and whether it says the stream ended.
    last_head: Option<Rendition>,
    /// Listed URIs outside the folder, warned about once.
    refused: std::collections::HashSet<String>,
    /// Markers the playlist carried, and those to store next.
    markers: crate::marker::Seen,
    due_markers: Vec<hls_dvr_core::markers::Marker>,
    bad_reads: u32,
}

impl State {
    fn new(head: Option<&Rendition>) -> State {
        State {
            tracker: Tracker::resume(head.map(|h| &h.source), STALL.as_millis() as i64),
            seq: Sequencer::resume(head),
            pdt: PdtChain::default(),
            queue: VecDeque::new(),
            init: None,
            container: head.map(|h| h.container),
            target_duration: head.map_or(0, |h| h.target_duration),
            peak_bw: head.and_then(|h| h.bandwidth),
            current: None,
            last_read: None,
            waiting: false,
            source_ended: false,
            last_head: head.cloned(),
            refused: Default::default(),
            markers: Default::default(),
            due_markers: Vec::new(),
            bad_reads: 0,
        }
    }

    /// Reads the playlist and queues what is new.
    fn poll(&mut self, spec: &Spec) {
        let Some(pl_id) = file_id(&spec.playlist) else { return };
        if let Some((id, at)) = self.last_read {
            if id == pl_id && !self.waiting && at.elapsed() < REPARSE {
                return;
            }
        }
        let text = match std::fs::read(&spec.playlist) {
            Ok(t) => t,
            Err(e) => {
                debug!("cannot read {}: {e}", spec.playlist.display());
                return;
            }
        };
        let info = match source::parse(&text) {
            Ok(Parsed::Media(m)) => m,
            Ok(Parsed::Master(_)) => {
                self.bad_read(spec, "is a master playlist, not a media playlist");
                return;
            }
            Err(e) => {
                self.bad_read(spec, &e);
                return;
            }
        };
        self.bad_reads = 0;
        self.last_read = Some((pl_id, Instant::now()));
        let news = self.markers.news(info.markers.clone());
        self.due_markers.extend(news);
        self.take(spec, &info);
    }

    fn bad_read(&mut self, spec: &Spec, why: &str) {
        self.bad_reads += 1;
        // A playlist caught mid-write is normal; one that stays unreadable is not.
        if self.bad_reads == 25 {
            warn!("{} unreadable for {} polls: {why}", spec.playlist.display(), self.bad_reads);
        } else {
            debug!("{} unreadable, retrying: {why}", spec.playlist.display());
        }
    }

    fn take(&mut self, spec: &Spec, info: &MediaInfo) {
        if self.container.is_some_and(|c| c != info.container) {
            warn!("container changed to {}", info.container.as_str());
        }
        self.container = Some(info.container);
        self.target_duration = self.target_duration.max(info.target_duration);
        self.source_ended = info.ended;

        let resolved: Vec<Option<PathBuf>> =
            info.entries.iter().map(|e| source::resolve(&spec.playlist, &e.uri)).collect();
        // Only the last position and what follows it need checking and a stat (a long playlist
        // stays cheap).
        let from = self
            .tracker
            .last()
            .and_then(|l| info.entries.iter().position(|e| e.seg_msn == l.seg_msn && e.uri == l.uri));
        let from = from.unwrap_or(0);
        let n = resolved.len();
        let (mut paths, mut refused, mut files) = (vec![None; n], vec![false; n], vec![None; n]);
        let mut check =
            |st: &mut Self, range: std::ops::Range<usize>, files: &mut [Option<FileId>], refused: &mut [bool]| {
                for i in range {
                    (paths[i], refused[i]) = st.confine(spec, &info.entries[i].uri, resolved[i].clone());
                    files[i] = paths[i].as_deref().and_then(file_id);
                }
            };
        check(self, from..n, &mut files, &mut refused);
        let seen_of = |files: &[Option<FileId>], refused: &[bool]| -> Vec<Seen> {
            info.entries
                .iter()
                .enumerate()
                .map(|(i, e)| Seen {
                    seg_msn: e.seg_msn,
                    uri: &e.uri,
                    file: files[i],
                    discontinuity: e.discontinuity,
                    refused: refused[i],
                })
                .collect()
        };
        // Unless the last position is still listed as the same file, everything listed may be
        // new (a restart that reused the name, a lag): those entries need their files too.
        if from > 0 && self.tracker.change_in(&seen_of(&files, &refused)).0 != Change::Continue {
            check(self, 0..from, &mut files, &mut refused);
        }
        let seen = seen_of(&files, &refused);
        let (change, diff) = self.tracker.diff(&seen, now_ms());
        match change {
            Change::Restart => info!(
                "segmenter restart in {} (numbering back to {}): discontinuity",
                spec.playlist.display(),
                info.entries[0].seg_msn
            ),
            Change::Lag { gap: true } => warn!(
                "segments before {} left the playlist unseen: discontinuity",
                info.entries[diff.enqueue.first().map_or(0, |e| e.0)].uri
            ),
            _ => {}
        }
        for &i in diff.skipped.iter().filter(|i| !seen[**i].refused) {
            error!(
                "segment {} listed but its file never appeared; skipped, a discontinuity follows",
                info.entries[i].uri
            );
        }
        self.waiting = diff.waiting.is_some();
        for (i, disc) in diff.enqueue {
            let e = &info.entries[i];
            let (Some(path), Some(file)) = (paths[i].clone(), seen[i].file) else { continue };
            if disc && e.discontinuity && change != Change::Restart {
                info!("segmenter discontinuity before {}", e.uri);
            }
            let pdt_ms = self.pdt.next(e.pdt_ms, e.duration_us, file.mtime_ns, disc);
            let map = e.map.as_ref().and_then(|m| self.locate(spec, m).map(|p| (m.clone(), p)));
            self.queue.push_back(Pending {
                seg_msn: e.seg_msn,
                uri: e.uri.clone(),
                path,
                file,
                duration_us: e.duration_us,
                pdt_ms,
                discontinuity: disc,
                map,
            });
        }
    }

    /// Where a listed file is on disk, if inside the stream's folder (`resolved`: its path), and
    /// whether it is refused: a file outside the folder is never read, and is warned about once.
    fn confine(&mut self, spec: &Spec, uri: &str, resolved: Option<PathBuf>) -> (Option<PathBuf>, bool) {
        match resolved.map(|p| source::confine(&spec.dir, p)) {
            Some(Located::Inside(p) | Located::Missing(p)) => (Some(p), false),
            Some(Located::Outside(p)) => {
                if self.refused.len() > 1000 {
                    self.refused.clear();
                }
                if self.refused.insert(uri.to_string()) {
                    let (playlist, dir) = (spec.playlist.display(), spec.dir.display());
                    warn!("{playlist} lists {uri}, which is {} outside {dir}: never read", p.display());
                }
                (None, true)
            }
            Some(Located::Remote) | None => (None, false),
        }
    }

    /// Where an init segment (EXT-X-MAP) is, if inside the stream's folder.
    fn locate(&mut self, spec: &Spec, uri: &str) -> Option<PathBuf> {
        self.confine(spec, uri, source::resolve(&spec.playlist, uri)).0
    }

    /// The upload for the oldest queued segment.
    fn next_upload(&mut self, spec: &Spec) -> Option<Upload> {
        let p = self.queue.front()?.clone();
        let a = self.seq.peek(p.discontinuity);
        let variant = spec.variant.lock().unwrap().clone();
        let seg_bw = (p.duration_us > 0).then(|| (p.file.size as i128 * 8 * 1_000_000 / p.duration_us as i128) as i64);
        let bandwidth = match variant.as_ref().and_then(|v| v.bandwidth) {
            Some(b) => Some(b),
            None => self.peak_bw.max(seg_bw),
        };
        let rounded_s = ((p.duration_us + 500_000) / 1_000_000) as i32;
        let v = variant.unwrap_or_default();
        let head = Rendition {
            name: spec.name.clone(),
            container: self.container.unwrap_or(Container::Ts),
            target_duration: self.target_duration.max(rounded_s).max(1),
            bandwidth,
            codecs: v.codecs,
            resolution: v.resolution,
            frame_rate: v.frame_rate,
            head_msn: a.msn,
            head_disc_seq: a.disc_seq,
            head_pdt_ms: p.pdt_ms,
            source: SourcePos { uri: p.uri.clone(), seg_msn: p.seg_msn, size: p.file.size, mtime_ns: p.file.mtime_ns },
            updated_ms: 0,
            ended: false,
            media: v.media,
            parts: None,
            grouping: v.grouping,
            // What the stored segments show decides (`ingest::write_index_and_head`).
            key_frames: !v.media.is_alternative(),
            thumbnails: None,
        };
        self.current = Some((a, head.clone()));
        Some(Upload {
            stream: spec.stream.clone(),
            uri: p.uri,
            path: p.path,
            file: p.file,
            assigned: a,
            duration_us: p.duration_us,
            pdt_ms: p.pdt_ms,
            map: p.map,
            init: self.init.clone(),
            head,
        })
    }

    /// The head to store once the segmenter has ended the stream and everything it listed is
    /// stored: the last head, marked ended.
    fn end_to_store(&self) -> Option<Rendition> {
        let head = self.last_head.as_ref()?;
        let done = self.source_ended && self.queue.is_empty() && !self.waiting && self.current.is_none();
        (done && !head.ended).then(|| Rendition { ended: true, ..head.clone() })
    }

    fn finish(&mut self, out: Outcome) -> bool {
        let current = self.current.take();
        match (out, current) {
            (Outcome::Ended(head), _) => {
                info!("the segmenter ended the stream: stored as ended after msn {}", head.head_msn);
                self.last_head = Some(*head);
                true
            }
            (Outcome::Stored { init, head: written, .. }, Some((a, head))) => {
                self.seq.commit(a);
                self.init = init;
                self.target_duration = head.target_duration;
                if self.peak_bw.is_none() || head.bandwidth > self.peak_bw {
                    self.peak_bw = head.bandwidth;
                }
                if a.discontinuity {
                    info!(msn = a.msn, disc_seq = a.disc_seq, "discontinuity stored before {}", head.source.uri);
                }
                self.last_head = Some(*written);
                self.queue.pop_front();
                true
            }
            (Outcome::Lost(why), Some(_)) => {
                let p = self.queue.pop_front();
                error!(
                    "segment {} lost: {why}; the next stored segment starts a discontinuity",
                    p.map_or_else(String::new, |p| p.uri)
                );
                self.seq.lose();
                true
            }
            (Outcome::Stored { .. } | Outcome::Lost(_), None) => true,
            (Outcome::Aborted, _) => false,
        }
    }
}

/// A rendition's head as the store holds it, read again until the store answers; None when
/// shutting down first.
pub async fn read_head(sh: &Uploads, stream: &str, name: &str) -> Option<Option<Rendition>> {
    let mut shutdown = sh.shutdown.clone();
    let mut backoff = Backoff::default();
    loop {
        match sh.with_store(|store| async move { store.rendition(stream, name).await }).await {
            Ok(h) => return Some(h),
            Err(e) => {
                let d = backoff.next_delay();
                warn!("reading the head of {stream}/{name}: {e}; retrying in {d:?}");
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.wait_for(|s| *s) => return None,
                }
            }
        }
    }
}

/// Runs a rendition until shutdown (then finishes the upload in flight).
pub async fn run(mut spec: Spec, sh: Uploads) {
    let mut shutdown = sh.shutdown.clone();
    // Resume where the store's head says the last run stopped.
    let Some(head) = read_head(&sh, &spec.stream, &spec.name).await else { return };
    match &head {
        Some(h) if h.head_msn >= 0 => info!(
            "rendition {} ({}): resuming after msn {} (source {} #{})",
            spec.name,
            spec.playlist.display(),
            h.head_msn,
            h.source.uri,
            h.source.seg_msn
        ),
        _ => info!("new rendition {} ({})", spec.name, spec.playlist.display()),
    }
    let mut st = State::new(head.as_ref());
    let mut tick = tokio::time::interval(spec.poll_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut inflight: Option<JoinHandle<Outcome>> = None;
    let mut stopping = *shutdown.borrow();
    loop {
        if inflight.is_none() && !stopping {
            if let Some(upload) = st.next_upload(&spec) {
                inflight = Some(tokio::spawn(ingest::store_segment(sh.clone(), upload).instrument(Span::current())));
            } else if let Some(head) = st.end_to_store() {
                let end = ingest::store_end(sh.clone(), spec.stream.clone(), head);
                inflight = Some(tokio::spawn(end.instrument(Span::current())));
            }
        }
        if stopping && inflight.is_none() {
            break;
        }
        tokio::select! {
            r = async { inflight.as_mut().unwrap().await }, if inflight.is_some() => {
                inflight = None;
                let out = r.unwrap_or(Outcome::Aborted);
                if !st.finish(out) {
                    break;
                }
            }
            _ = tick.tick(), if !stopping => st.poll(&spec),
            Ok(()) = spec.changes.changed(), if !stopping => st.poll(&spec),
            _ = shutdown.changed(), if !stopping => stopping = true,
        }
        if !st.due_markers.is_empty() {
            let (sh, stream, list) = (sh.clone(), spec.stream.clone(), std::mem::take(&mut st.due_markers));
            tokio::spawn(async move { ingest::store_markers(&sh, &stream, &list).await }.instrument(Span::current()));
        }
    }
    if !st.queue.is_empty() {
        info!("stopped with {} segments queued (uploaded after a restart while still listed)", st.queue.len());
    }
}
