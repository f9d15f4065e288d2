//! CMAF push: ffmpeg's dash muxer in streaming mode (an init segment per track, then each
//! segment as one chunked PUT whose fragments arrive as they are encoded) and DASH-IF Live Media
//! Ingest Interface 1 (one long POST per track: its init segment, then fragments, cut into
//! segments here at the first key frame after `--track-segment`). Each track is a rendition of
//! its own; fragments are found by parsing boxes and stored as they complete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::StatusCode;
use tracing::{debug, info, warn};

use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{Claim, Container, MediaType, PartHead, Rendition, SourcePos};
use hls_dvr_core::mp4::fmp4::Init;
use hls_dvr_core::parts;

use super::boxes::{ntp_to_unix_ms, parse_init, Fragment, Splitter, TrackInfo, TrackKind};
use super::claims::{self, Claims, Placed, Proposal};
use super::fragments::Writing;
use super::server::{body_failure, shutting_down, Reply};
use super::{body, Receiver};
use crate::ingest::{store_thumbnail, write_index_and_head, write_init, Found, InitState, Whole};
use crate::tracker::Assigned;

/// One pushed track: a rendition.
pub struct Track {
    stream: Arc<str>,
    rendition: String,
    info: Option<TrackInfo>,
    init: Option<Bytes>,
    /// The init segment as the sample tables read it (None when it cannot be).
    tables_init: Option<Arc<Init>>,
    stored_init: Option<InitState>,
    /// None until the store's head was read (the first segment).
    claims: Option<Claims>,
    peak_bw: Option<i64>,
    target_duration: i32,
    /// PART-TARGET, once the first segment has ended (ARCHITECTURE.md, "Parts").
    part_target_us: Option<i64>,
    /// Media time and date of the last segment's end, to date segments sent without `prft`.
    anchor: Option<(u64, i64)>,
}

/// A segment in progress.
struct Current {
    writing: Writing,
    claim: Claim,
    /// Another receiver holds the claim: this copy is stored only if it does not.
    copy: bool,
    seg_no: i64,
    uri: String,
    last_end: u64,
}

impl Current {
    /// Stores (or holds) fragment `f` of the segment, with its part.
    async fn add(
        &mut self,
        rx: &Receiver,
        stream: &str,
        rendition: &str,
        f: &Fragment,
        bytes: Bytes,
    ) -> Result<(), (StatusCode, String)> {
        let sh = &rx.uploads;
        self.writing
            .add(sh, stream, rendition, bytes, f.duration, f.starts_with_key)
            .await
            .map_err(|()| shutting_down())?;
        self.last_end = f.base_decode_time + f.duration;
        sh.metrics.fragment(stream, rendition);
        Ok(())
    }
}

impl Track {
    pub fn new(stream: &str, rendition: &str) -> Track {
        Track {
            stream: Arc::from(stream),
            rendition: rendition.to_string(),
            info: None,
            init: None,
            tables_init: None,
            stored_init: None,
            claims: None,
            peak_bw: None,
            target_duration: 0,
            part_target_us: None,
            anchor: None,
        }
    }

    /// A pushed init segment: what the track is. Garbage gets 400 and changes nothing.
    pub fn set_init(&mut self, data: Bytes) -> Reply {
        let info = parse_init(&data).map_err(|e| (StatusCode::BAD_REQUEST, format!("not a CMAF init segment: {e}")))?;
        if self.info.as_ref().is_none_or(|i| *i != info) {
            info!(
                "{}/{}: {:?} track, codec {}, timescale {}",
                self.stream,
                self.rendition,
                info.kind,
                info.codec.as_deref().unwrap_or("unknown"),
                info.timescale
            );
        }
        self.info = Some(info);
        self.tables_init =
            Init::parse(&data).map(Arc::new).map_err(|e| debug!("{}: no sample tables: {e}", self.rendition)).ok();
        self.init = Some(data);
        Ok(StatusCode::CREATED)
    }

    async fn ensure_claims(&mut self, rx: &Receiver) -> Result<(), (StatusCode, String)> {
        if self.claims.is_some() {
            return Ok(());
        }
        let (claims, head) =
            Claims::start(&rx.uploads, &rx.id, &self.stream, &self.rendition).await.ok_or_else(shutting_down)?;
        if let Some(h) = &head {
            self.peak_bw = h.bandwidth;
            self.target_duration = h.target_duration;
            self.part_target_us = h.parts.map(|p| p.target_us);
        }
        self.claims = Some(claims);
        Ok(())
    }

    /// The date of a segment whose first fragment is `f`: from its `prft` (the encoder's clock
    /// when it wrote the fragment, for the sample at `media_time`), else following on from the
    /// previous segment by media time, else the time it arrived.
    fn date(&self, f: &Fragment, timescale: u32) -> i64 {
        let ts = timescale.max(1) as i64;
        if let (Some(ntp), Some(media)) = (f.prft_ntp, f.prft_media_time) {
            // media_time is signed in effect: AAC priming makes the first one negative.
            let lead = media as i64 - f.base_decode_time as i64;
            return ntp_to_unix_ms(ntp) - lead * 1000 / ts;
        }
        match self.anchor {
            Some((end, date)) if f.base_decode_time >= end && f.base_decode_time - end < 10 * ts as u64 => {
                date + ((f.base_decode_time - end) as i64 * 1000 / ts)
            }
            _ => now_ms(),
        }
    }

    /// Places the segment whose first fragment is `f`: claims its number.
    async fn begin(
        &mut self,
        rx: &Receiver,
        seg_no: i64,
        uri: &str,
        f: &Fragment,
    ) -> Result<Option<Current>, (StatusCode, String)> {
        let timescale = self.info.as_ref().map_or(1, |i| i.timescale);
        self.ensure_claims(rx).await?;
        let p = Proposal {
            seg_no,
            content: f.base_decode_time.to_string(),
            pdt_ms: self.date(f, timescale),
            duration_us: 0,
            discontinuity: false,
        };
        let claims = self.claims.as_mut().expect("read just above");
        let placed =
            claims.place(&rx.uploads, &self.stream, &self.rendition, &p).await.map_err(|()| shutting_down())?;
        let (msn, claim, copy) = match placed {
            Placed::Won { msn, claim } => (msn, claim, false),
            Placed::Copy { msn, claim } => (msn, claim, true),
            Placed::Late { newer } => {
                warn!("{uri}: newer segments are stored already ({}): dropped", newer.source);
                rx.uploads.metrics.late(&self.stream, &self.rendition);
                return Ok(None);
            }
        };
        // The newest part is published once the head row exists (it carries the part target).
        let publish = self.part_target_us.is_some();
        Ok(Some(Current {
            writing: Writing::new(msn, !copy, timescale, claim.discontinuity, publish, self.tables_init.clone()),
            claim,
            copy,
            seg_no,
            uri: uri.to_string(),
            last_end: f.base_decode_time,
        }))
    }

    /// The segment ended whole: its init segment when it changed, its metadata, index row and
    /// head (or nothing, when the receiver holding its claim stored it).
    async fn finish(&mut self, rx: &Receiver, mut c: Current, received: Instant) -> Result<(), (StatusCode, String)> {
        let sh = &rx.uploads;
        let (stream, rendition) = (self.stream.clone(), self.rendition.clone());
        let info = self.info.clone().ok_or((StatusCode::BAD_REQUEST, "no init segment".to_string()))?;
        let duration_us = c.writing.us(c.writing.duration);
        self.anchor = Some((c.last_end, c.claim.pdt_ms + duration_us / 1000));
        // PART-TARGET from the first segment's longest part; raised if a longer one comes (a
        // frame rate change), since no part may be longer.
        let longest = parts::part_target_us(c.writing.longest_part_us());
        self.part_target_us = Some(self.part_target_us.map_or(longest, |t| t.max(longest)));
        if c.copy {
            let wait = claims::holder_wait(self.target_duration.max(2));
            if claims::stored_by_holder(sh, &stream, &rendition, c.writing.msn, wait)
                .await
                .map_err(|()| shutting_down())?
            {
                sh.metrics.copy(&stream, &rendition);
                return Ok(());
            }
            warn!("{} claimed by receiver {} but not stored by it: storing it here", c.uri, c.claim.receiver);
            c.writing.write_held(sh, &stream, &rendition).await.map_err(|()| shutting_down())?;
        }
        let size = c.writing.size();
        let seg_bw = (duration_us > 0).then(|| (size as i128 * 8 * 1_000_000 / duration_us as i128) as i64);
        self.peak_bw = self.peak_bw.max(seg_bw);
        self.target_duration = self.target_duration.max(((duration_us + 500_000) / 1_000_000) as i32).max(1);
        let media = match info.kind {
            TrackKind::Audio => MediaType::Audio,
            TrackKind::Video => MediaType::Video,
            TrackKind::Subtitles | TrackKind::Other => MediaType::Muxed,
        };
        let msn = c.writing.msn;
        let head = Rendition {
            name: rendition.clone(),
            container: Container::Fmp4,
            target_duration: self.target_duration,
            bandwidth: self.peak_bw,
            codecs: info.codec.clone(),
            resolution: info.width.zip(info.height).map(|(w, h)| format!("{w}x{h}")),
            frame_rate: None,
            head_msn: msn,
            head_disc_seq: c.claim.disc_seq,
            head_pdt_ms: c.claim.pdt_ms,
            source: SourcePos { uri: c.uri.clone(), seg_msn: c.seg_no, size: size as i64, mtime_ns: 0 },
            updated_ms: 0,
            ended: false,
            media,
            parts: self.part_target_us.map(|target_us| PartHead { target_us, newest: None }),
            grouping: Default::default(),
            key_frames: media == MediaType::Video,
            thumbnails: None,
        };
        let whole = Whole {
            stream: stream.clone(),
            uri: c.uri.clone(),
            assigned: Assigned { msn, discontinuity: c.claim.discontinuity, disc_seq: c.claim.disc_seq },
            duration_us,
            pdt_ms: c.claim.pdt_ms,
            added_ms: Some(c.claim.added_ms),
            map: None,
            init: self.stored_init.clone(),
            head,
            forward_only: true,
            since: Some(received),
        };
        let mut permit = None;
        let init = self.init.clone().ok_or((StatusCode::BAD_REQUEST, "no init segment".to_string()))?;
        let init_uri = format!("init-{rendition}");
        if let Some(new) = write_init(sh, &mut permit, &whole, &init_uri, &init).await.map_err(|()| shutting_down())? {
            self.stored_init = Some(new);
        }
        let init_msn = self.stored_init.as_ref().map(|i| i.msn);
        c.writing.seal(sh, &stream, &rendition).await.map_err(|()| shutting_down())?;
        let what = format!("segment {} as {stream}/{rendition} {msn}", c.uri);
        let samples = c.writing.sample_table().map_err(|why| debug!("no sample table for {}: {why}", c.uri)).ok();
        let key_frame = c.writing.key_frame.filter(|_| media == MediaType::Video);
        let mut found = Found { key_frame, thumbnail: None, samples };
        if let (Some(bytes), Some(width), true) =
            (&c.writing.key_frame_bytes, sh.thumbnail_width, found.key_frame.is_some())
        {
            let picture = Bytes::from([&init[..], &bytes[..]].concat());
            found.thumbnail =
                store_thumbnail(sh, &mut permit, &whole, picture, width).await.map_err(|()| shutting_down())?;
        }
        write_index_and_head(sh, &mut permit, &whole, init_msn, size as i64, found, &what)
            .await
            .map_err(|()| shutting_down())?;
        Ok(())
    }
}

/// Reads a CMAF body and hands each fragment, with its bytes, to `on_fragment` as soon as it is
/// whole. Ends Ok at the body's end if the body ended between fragments.
struct Reader {
    splitter: Splitter,
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    at: u64,
    total: usize,
    /// The init segment at the body's start (Interface 1), once whole; taken by the caller.
    init: Option<Bytes>,
}

impl Reader {
    fn new(info: Option<&TrackInfo>) -> Reader {
        Reader {
            splitter: Splitter::new(info.and_then(|i| i.default_sample_duration)),
            buf: BytesMut::new(),
            at: 0,
            total: 0,
            init: None,
        }
    }

    /// The next fragments, with their bytes; None at the body's end.
    async fn next(
        &mut self,
        rx: &Receiver,
        stream: &str,
        body: &mut Incoming,
    ) -> Result<Option<Vec<(Fragment, Bytes)>>, (StatusCode, String)> {
        let Some(data) = body::next(body, rx.settings.idle).await.map_err(body_failure)? else { return Ok(None) };
        self.total += data.len();
        rx.uploads.metrics.received(stream, data.len());
        if self.total > rx.settings.max_segment {
            return Err(body_failure(body::BodyError::TooLarge(rx.settings.max_segment)));
        }
        let frags = self.splitter.push(&data).map_err(|e| (StatusCode::BAD_REQUEST, format!("not CMAF: {e}")))?;
        self.buf.extend_from_slice(&data);
        // The leading ftyp+moov is still in the buffer (nothing before the first fragment has
        // been dropped yet): keep it before the fragments' bytes are cut out.
        if let (Some((from, to)), 0, None) = (self.splitter.init_range(), self.at, &self.init) {
            if let Some(init) = self.buf.get(from as usize..to as usize) {
                self.init = Some(Bytes::copy_from_slice(init));
            }
        }
        let mut out = Vec::with_capacity(frags.len());
        for f in frags {
            // Bytes before the fragment that belong to none (an Interface 1 init segment) go.
            let skip = f.start.saturating_sub(self.at) as usize;
            let _ = self.buf.split_to(skip.min(self.buf.len()));
            let take = (f.end - f.start) as usize;
            let bytes = self.buf.split_to(take.min(self.buf.len())).freeze();
            self.at = f.end;
            out.push((f, bytes));
        }
        Ok(Some(out))
    }
}

/// A segment pushed by ffmpeg's dash muxer: one chunked PUT, fragments as they are encoded.
pub async fn segment(rx: &Receiver, track: &mut Track, uri: &str, seg_no: i64, body: &mut Incoming) -> Reply {
    if track.info.is_none() {
        let msg = format!("{uri}: no init segment was pushed for {} (init-{}.m4s)", track.rendition, track.rendition);
        return Err((StatusCode::BAD_REQUEST, msg));
    }
    let mut reader = Reader::new(track.info.as_ref());
    let mut current: Option<Current> = None;
    let mut late = false;
    let (stream, rendition) = (track.stream.clone(), track.rendition.clone());
    let cut = |current: &Option<Current>, why: &str| {
        if let Some(c) = current {
            warn!(
                "{uri} ({stream}/{rendition} {}): {why}; its {} fragments stay stored, no index row names it",
                c.writing.msn, c.writing.fragments
            );
        }
    };
    loop {
        let frags = match reader.next(rx, &stream, body).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                cut(&current, &e.1);
                return Err(e);
            }
        };
        for (f, bytes) in frags {
            if current.is_none() && !late {
                current = track.begin(rx, seg_no, uri, &f).await?;
                late = current.is_none();
            }
            if let Some(c) = &mut current {
                c.add(rx, &stream, &rendition, &f, bytes).await?;
            }
        }
    }
    let received = Instant::now();
    if !reader.splitter.at_boundary() {
        cut(&current, "the body ended inside a fragment");
        return Err((StatusCode::BAD_REQUEST, format!("{uri}: the body ended inside a fragment")));
    }
    match current {
        Some(c) => track.finish(rx, c, received).await.map(|()| StatusCode::CREATED),
        None if late => Ok(StatusCode::NO_CONTENT),
        None => Err((StatusCode::BAD_REQUEST, format!("{uri}: no fragment (moof+mdat) in the body"))),
    }
}

/// A DASH-IF Interface 1 track: one long POST, its init segment first, then fragments; cut into
/// segments at the first key frame (every fragment, for audio) once a segment lasts
/// `--track-segment`.
pub async fn track(rx: &Receiver, track: &mut Track, body: &mut Incoming) -> Reply {
    let mut reader = Reader::new(None);
    let mut current: Option<Current> = None;
    let (stream, rendition) = (track.stream.clone(), track.rendition.clone());
    let mut seg_no = 0i64;
    let mut have_init = false;
    let uri = |n: i64| format!("Streams({rendition}) segment {n}");
    loop {
        let frags = match reader.next(rx, &stream, body).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                if let Some(c) = &current {
                    warn!("{}: {}; its fragments stay stored, no index row names it", c.uri, e.1);
                }
                return Err(e);
            }
        };
        if let Some(init) = reader.init.take() {
            track.set_init(init)?;
            have_init = true;
        }
        for (f, bytes) in frags {
            let Some(info) = track.info.clone().filter(|_| have_init) else {
                return Err((StatusCode::BAD_REQUEST, "the track sent fragments before its init segment".into()));
            };
            let cut_here = current.as_ref().is_some_and(|c| {
                let lasted = Duration::from_secs_f64(c.writing.duration as f64 / info.timescale.max(1) as f64);
                lasted >= rx.settings.track_segment && (f.starts_with_key || info.kind == TrackKind::Audio)
            });
            if cut_here {
                let c = current.take().expect("checked above");
                track.finish(rx, c, Instant::now()).await?;
                seg_no += 1;
            }
            if current.is_none() {
                if !f.starts_with_key && info.kind == TrackKind::Video {
                    // A segment must start with a key frame: wait for one.
                    continue;
                }
                current = track.begin(rx, seg_no, &uri(seg_no), &f).await?;
                if current.is_none() {
                    seg_no += 1;
                    continue;
                }
            }
            if let Some(c) = &mut current {
                c.add(rx, &stream, &rendition, &f, bytes).await?;
            }
        }
    }
    match current {
        Some(c) if reader.splitter.at_boundary() => {
            track.finish(rx, c, Instant::now()).await.map(|()| StatusCode::CREATED)
        }
        Some(c) => {
            warn!("{}: the track ended inside a fragment; its fragments stay stored, no index row names it", c.uri);
            Err((StatusCode::BAD_REQUEST, "the body ended inside a fragment".into()))
        }
        None => Ok(StatusCode::CREATED),
    }
}
