//! Requests under an `hls_dvr` location: route the path and parse the query, then answer from the
//! shared cache (cache.rs) when the location has one, or submit a job to the store and answer when
//! the reply comes. Responses are in response.rs, segment streaming in pump.rs.
//!
//! A request's state (`Ctx`) lives in its pool's cleanup data. The cleanup cancels the job and the
//! timers, so however nginx frees the request (client abort, HTTP/2 reset, timeout), nothing
//! touches it afterwards: a late reply finds no pending id and is dropped.
//!
//! Safety: the entry points here (the content handler, the timer handlers, the cleanup, and
//! [`complete`] for the bridge) run on the worker's nginx thread with a live request; each takes
//! the request's `Ctx` once, as the one reference to it, and uses neither after a call that may
//! finalize the request ([`RequestExt::finalize`], which is the last thing a path does). Bytes
//! handed to nginx live in the `Ctx` (`sent`, `pinned`) or the request's pool, so they outlive
//! every use nginx makes of them.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ngx::core::Status;
use ngx::ffi::{
    ngx_event_t, ngx_http_handler_pt, ngx_int_t, ngx_msec_t, NGX_HTTP_BAD_REQUEST, NGX_HTTP_GATEWAY_TIME_OUT,
    NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED, NGX_HTTP_NO_CONTENT,
    NGX_HTTP_OPTIONS, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_WARN,
};
use ngx::http::{HttpModule, HttpModuleMainConf, Request};
use ngx::{http_request_handler, ngx_log_error};

use crate::audience;
use crate::bridge::{self, SubmitError};
use crate::cache::{Cache, Content, Lookup, Pinned};
use crate::http::{self, request_of, RequestExt, NGX_DONE, NGX_ERROR, NGX_OK};
use crate::metrics;
use crate::pump::{self, Blob, Streaming};
use crate::response;
use crate::HlsDvr;
use hls_dvr_core::audience::StatsQuery;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{Container, PartPos};
use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_core::route::{self, Route};
use hls_dvr_core::session;
use hls_dvr_edge::counters::CacheKind;
use hls_dvr_edge::serve::{Job, Listing, Reply};
use hls_dvr_store::{BlobKind, StoreError};

/// A request's state, in its pool's cleanup data.
pub struct Ctx {
    job_id: Option<u64>,
    /// How long a job may take before the request gets 504.
    timeout: ngx_msec_t,
    /// Fires when the store does not answer in time. Non-cancelable: a reloading worker waits.
    timer: ngx_event_t,
    /// A segment or init request, until its first chunk arrives.
    pub blob: Option<Blob>,
    pub stream: Option<Streaming>,
    /// Bytes handed to nginx: their memory must live until the request is freed.
    pub sent: Vec<Bytes>,
    /// The location's shared cache, this request's key in it, and what the entry holds.
    cache: Option<(Cache, Vec<u8>, Content)>,
    /// What a whole blob read in one job is (a part, or a segment for the cache).
    content: Option<Content>,
    /// This request claimed its key and fills it: given up by the cleanup if it goes first.
    filling: bool,
    /// Zone bytes handed to nginx: released by the cleanup.
    pinned: Option<Pinned>,
    /// Another request fills the key: the job to run if that takes too long, and a timer to look
    /// again.
    waiting: Option<Job>,
    wait_until_ms: i64,
    poll: ngx_event_t,
    /// Time spent waiting for the store so far (`$hls_dvr_store_ms`), and since when the
    /// current job waits.
    pub store_ms: Option<u64>,
    store_since: Option<Instant>,
    /// `HIT` or `MISS` where the shared cache applies (`$hls_dvr_cache`).
    pub cache_status: Option<&'static str>,
    /// A blocked playlist reload, counted in the shared counters until the request is freed.
    blocked: bool,
    /// The viewer's session id, added to every URI the playlist answered lists (audience.rs).
    pub session: Option<String>,
    /// The request began its session (a new id was issued).
    pub new_session: bool,
}

/// How often a request waiting for another's fill looks at the zone.
const POLL_MS: ngx_msec_t = 10;

/// Pool cleanup: the request is being freed.
unsafe extern "C" fn drop_ctx(data: *mut c_void) {
    // SAFETY: nginx passes the cleanup data `content_handler` wrote a `Ctx` into, once.
    let ctx = unsafe { &mut *(data as *mut Ctx) };
    if let Some(id) = ctx.job_id.take() {
        bridge::cancel(id);
    }
    http::del_timer(&mut ctx.timer);
    http::del_timer(&mut ctx.poll);
    if ctx.blocked {
        if let Some(c) = metrics::counters() {
            c.blocked(-1);
        }
    }
    if let Some((cache, key, _)) = ctx.cache.as_ref() {
        if ctx.filling {
            cache.abandon(key);
        }
        if let Some(p) = ctx.pinned.take() {
            cache.unpin(&p);
        }
    }
    // SAFETY: the pool frees this memory next; nothing reads the `Ctx` again.
    unsafe { ptr::drop_in_place(ctx) };
}

/// The request's state, once the content handler made one.
///
/// # Safety
/// The caller holds no other reference to the request's `Ctx`, and none past the request's end.
pub unsafe fn ctx_of<'a>(r: &Request) -> Option<&'a mut Ctx> {
    // SAFETY: the slot holds null or the `Ctx` the content handler wrote, alive with the pool;
    // unique as the caller promises.
    unsafe { (r.ctx_slot(HlsDvr::module().ctx_index) as *mut Ctx).as_mut() }
}

http_request_handler!(content_handler, |r: &mut Request| Status(content(r)));

/// The content handler of `hls_dvr` and `hls_dvr_status` locations.
pub const CONTENT_HANDLER: ngx_http_handler_pt = Some(content_handler);

/// The location's content handler.
fn content(r: &mut Request) -> ngx_int_t {
    if !r.method_in(NGX_HTTP_GET | NGX_HTTP_HEAD | NGX_HTTP_OPTIONS) {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    let rc = r.discard_request_body().0;
    if rc != NGX_OK {
        return rc;
    }
    response::cors(r);
    if r.method_in(NGX_HTTP_OPTIONS) {
        response::preflight(r);
        r.set_status_code(NGX_HTTP_NO_CONTENT as u16);
        r.set_content_length(0);
        return match r.send_header_rc() {
            Ok(()) => NGX_OK,
            Err(rc) => rc,
        };
    }
    let lc = response::loc_conf(r);
    let (job, blob) = match route_request(r) {
        Ok(j) => j,
        Err(NotAJob::Bad(reason)) => {
            ngx_log_error!(NGX_LOG_INFO, r.log(), "hls_dvr: 400: {}", reason);
            return response::text(r, NGX_HTTP_BAD_REQUEST as u16, &reason);
        }
        Err(NotAJob::Moved(query)) => return response::moved(r, &query),
    };

    // The request's state, freed with its pool whatever ends the request.
    let Some(slot) = r.add_cleanup::<Ctx>(drop_ctx) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    let main = HlsDvr::main_conf(r).expect("hls_dvr main conf");
    let (session, new_session) = audience::session_for(r, lc, &job);
    // A job that waits for a segment (blocking reload) has that wait besides the store's time.
    let timeout = main.timeout() + job.wait_limit();
    let entry = cache_entry(&job, blob.as_ref());
    let ctx = Ctx {
        job_id: None,
        timeout: timeout.as_millis().min(u32::MAX as u128) as ngx_msec_t,
        // SAFETY: an all-zero ngx_event_t is nginx's own initial state (ngx_pcalloc).
        timer: unsafe { MaybeUninit::zeroed().assume_init() },
        // SAFETY: the zone of this location's `hls_dvr_cache`, set up by the cache's init_zone.
        cache: lc.cache().zip(entry.clone()).map(|(z, (k, c))| (unsafe { Cache::new(z) }, k, c)),
        content: entry.map(|(_, c)| c),
        blob,
        stream: None,
        sent: Vec::new(),
        filling: false,
        pinned: None,
        waiting: None,
        // A request for a part not stored yet may wait that long for another's fill.
        wait_until_ms: now_ms() + timeout.as_millis() as i64,
        // SAFETY: as for `timer`.
        poll: unsafe { MaybeUninit::zeroed().assume_init() },
        store_ms: None,
        store_since: None,
        cache_status: None,
        blocked: false,
        session,
        new_session,
    };
    // SAFETY: the cleanup's room for a `Ctx`, written before anything can free the pool.
    let ctx = unsafe {
        slot.as_ptr().write(ctx);
        &mut *slot.as_ptr()
    };
    r.set_ctx_slot(HlsDvr::module().ctx_index, slot.as_ptr() as *mut c_void);
    r.arm(&mut ctx.timer, on_timeout);
    r.arm(&mut ctx.poll, on_poll);

    let blocking = !job.wait_limit().is_zero();
    match start(r, ctx, job) {
        Step::Answered(rc) | Step::Failed(rc) => rc,
        Step::Pending => {
            if blocking {
                if let Some(c) = metrics::counters() {
                    c.blocked(1);
                    ctx.blocked = true;
                }
            }
            // Watch for the client going away while the store works.
            r.keep_open();
            NGX_DONE
        }
    }
}

/// A request's key in the shared cache (its job's, see [`Job::cache_key`]) and what the entry
/// holds. Blocking reloads are not cached: each waits for its own segment.
fn cache_entry(job: &Job, blob: Option<&Blob>) -> Option<(Vec<u8>, Content)> {
    let content = match (job, blob) {
        (Job::Media { query, .. }, _) if query.block_msn.is_some() => return None,
        (Job::Media { .. } | Job::Master { .. }, _) => Content::Playlist { max_age_s: 0 },
        (Job::Part { .. }, _) => Content::Part,
        (_, Some(b)) => match b.kind {
            BlobKind::Init => Content::Init,
            BlobKind::Thumbnail => Content::Thumbnail,
            BlobKind::Segment => Content::Segment(
                [Container::Fmp4, Container::WebVtt]
                    .into_iter()
                    .find(|c| c.content_type() == b.content_type)
                    .unwrap_or(Container::Ts),
            ),
        },
        _ => return None,
    };
    Some((job.cache_key()?.as_bytes().to_vec(), content))
}

/// Where a request stands after [`start`].
enum Step {
    /// Answered now: finalize with this.
    Answered(ngx_int_t),
    /// Waiting for the store or another request's fill.
    Pending,
    /// Could not start (503): finalize with this.
    Failed(ngx_int_t),
}

/// Answers from the shared cache, waits for another request's fill of the same key, or submits
/// the job to the store (filling the cache with the result when this request claimed the key).
fn start(r: &mut Request, ctx: &mut Ctx, mut job: Job) -> Step {
    if let Some((cache, key, content)) = ctx.cache.as_ref() {
        let main = HlsDvr::main_conf(r).expect("hls_dvr main conf");
        // A fill older than two store timeouts has failed silently: taken over.
        let stall_ms = 2 * main.timeout().as_millis() as i64;
        match cache.lookup(key, now_ms(), stall_ms) {
            Lookup::Hit(p) => {
                ctx.cache_status = Some("HIT");
                if let Some(c) = metrics::counters() {
                    c.cache_hit(cache_kind(p.content), p.len());
                }
                return Step::Answered(send_pinned(r, ctx, p));
            }
            // A part another request fills may not be stored yet: a crowd waiting for the hinted
            // part would poll the zone for up to three part targets. Its worker's runtime
            // shares one wait among them instead (`Edge::part_replies`).
            Lookup::Wait if matches!(job, Job::Part { .. }) => ctx.cache = None,
            Lookup::Wait => {
                ctx.waiting = Some(job);
                http::add_timer(&mut ctx.poll, POLL_MS);
                return Step::Pending;
            }
            Lookup::Fill => {
                ctx.filling = true;
                ctx.cache_status = Some("MISS");
                if let Some(c) = metrics::counters() {
                    c.cache_miss(cache_kind(*content));
                }
                // The cache holds whole segments: read them in one job.
                if let Job::BlobFirst { kind, stream, rendition, msn } = job {
                    job = Job::BlobWhole { kind, stream, rendition, msn };
                }
            }
            Lookup::Bypass => ctx.cache = None,
        }
    }
    match submit(r, ctx, job) {
        Ok(()) => Step::Pending,
        Err(status) => Step::Failed(status),
    }
}

fn cache_kind(c: Content) -> CacheKind {
    match c {
        Content::Playlist { .. } => CacheKind::Playlist,
        // A thumbnail is counted with the segment it shows.
        Content::Segment(_) | Content::Thumbnail => CacheKind::Segment,
        Content::Init => CacheKind::Init,
        Content::Part => CacheKind::Part,
    }
}

/// Another request was filling the key this one waits for: look again.
unsafe extern "C" fn on_poll(ev: *mut ngx_event_t) {
    // SAFETY: the poll timer of a live request (its cleanup deletes the timer), and the one
    // reference to its state in this event.
    let (r, ctx) = unsafe {
        let r = request_of(ev);
        {
            let ctx = ctx_of(r).expect("a request with a poll timer has a context");
            (r, ctx)
        }
    };
    let c = r.connection();
    let Some(job) = ctx.waiting.take() else { return };
    if now_ms() > ctx.wait_until_ms {
        // The fill takes too long: read the store directly.
        ctx.cache = None;
    }
    match start(r, ctx, job) {
        // SAFETY: the last use of the request in this event.
        Step::Answered(rc) | Step::Failed(rc) => unsafe { r.finalize(rc) },
        Step::Pending => {}
    }
    http::run_posted(c);
}

/// Sends zone bytes, pinned until the request is freed. Returns what to finalize with.
fn send_pinned(r: &mut Request, ctx: &mut Ctx, p: Pinned) -> ngx_int_t {
    let content = p.content;
    let data = ctx.pinned.insert(p).bytes();
    let content_type = match content {
        Content::Playlist { max_age_s } => {
            // SAFETY: the entry stays pinned, its bytes unchanged, until the request's cleanup
            // unpins it.
            return unsafe { send_playlist(r, &mut ctx.sent, ctx.session.as_deref(), data, max_age_s) };
        }
        blob => blob.blob_type(),
    };
    // SAFETY: as above.
    unsafe { response::blob(r, data, content_type) }
}

/// A whole answer from the store (a playlist or blob that fills the cache, or a part): into the
/// zone when this request claimed its key, and out to the client; from the worker's memory
/// when there is no zone or it cannot take it.
fn fill(r: &mut Request, ctx: &mut Ctx, parts: Vec<Bytes>, content: Content) -> ngx_int_t {
    if let Some((cache, key, _)) = ctx.cache.as_ref().filter(|_| ctx.filling) {
        let main = HlsDvr::main_conf(r).expect("hls_dvr main conf");
        let now = now_ms();
        let expires_ms = match content {
            Content::Playlist { .. } => now + main.playlist_cache().as_millis() as i64,
            _ => bridge::retention_ms().map_or(i64::MAX, |ms| now + ms),
        };
        let slices: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        let filled = cache.fill(key, content, expires_ms, &slices);
        ctx.filling = false;
        if let Some(p) = filled {
            return send_pinned(r, ctx, p);
        }
    }
    // Not kept: served from the bytes the store sent, held by the request (one chunk, as most
    // parts are, without a copy: many requests may share it).
    let whole = match <[Bytes; 1]>::try_from(parts) {
        Ok([one]) => one,
        Err(parts) => Bytes::from(parts.concat()),
    };
    ctx.sent.push(whole.clone());
    let content_type = match content {
        Content::Playlist { max_age_s } => {
            // SAFETY: `whole` shares its memory with the copy kept in `ctx.sent`.
            return unsafe { send_playlist(r, &mut ctx.sent, ctx.session.as_deref(), &whole, max_age_s) };
        }
        blob => blob.blob_type(),
    };
    // SAFETY: as above.
    unsafe { response::blob(r, &whole, content_type) }
}

/// Sends a playlist; with a session, a copy whose every URI carries the viewer's id, kept in
/// `sent` for the request's life, and marked private: one viewer's id must never reach another
/// through a shared cache in front.
///
/// # Safety
/// As [`response::playlist`]: `text` outlives the request.
unsafe fn send_playlist(
    r: &mut Request,
    sent: &mut Vec<Bytes>,
    session: Option<&str>,
    text: &[u8],
    max_age_s: u32,
) -> ngx_int_t {
    match session {
        None => {
            // SAFETY: as the caller promises.
            unsafe { response::playlist(r, text, max_age_s, false) }
        }
        Some(id) => {
            let own = Bytes::from(session::add_to_uris(text, id));
            sent.push(own.clone());
            // SAFETY: `own` shares its memory with the copy kept in `sent`.
            unsafe { response::playlist(r, &own, max_age_s, true) }
        }
    }
}

/// What a request gets instead of a job.
enum NotAJob {
    /// Not understood (400), with the reason.
    Bad(String),
    /// A clip file in relative times: redirected to this absolute query.
    Moved(String),
}

impl From<String> for NotAJob {
    fn from(reason: String) -> Self {
        NotAJob::Bad(reason)
    }
}

/// The job a request's path and query ask for, or what it gets instead.
fn route_request(r: &Request) -> Result<(Job, Option<Blob>), NotAJob> {
    let lc = response::loc_conf(r);
    let rest = std::str::from_utf8(r.uri())
        .ok()
        .and_then(|u| u.strip_prefix(lc.prefix.as_str()))
        .ok_or_else(|| NotAJob::Bad("the path is not UTF-8 or not under the location".into()))?;
    let args = std::str::from_utf8(r.args()).map_err(|_| NotAJob::Bad("the query string is not UTF-8".into()))?;
    if lc.stats {
        return Ok((Job::Stats(StatsQuery::parse(args, now_ms())?), None));
    }
    if lc.status {
        // Oldest segments are looked for where they may still be: within the store's retention.
        let retention = bridge::retention_ms().unwrap_or(lc.max_range().as_millis() as i64);
        return Ok((Job::Status { since_ms: now_ms() - retention }, None));
    }
    let query = || {
        let mut q = PlaylistQuery::parse(args, now_ms(), lc.max_range().as_millis() as i64)?;
        if !lc.pass_args() {
            q.passed.clear();
        }
        Ok::<_, String>(q)
    };
    let blob = |kind, stream: &str, rendition: &str, msn, content_type| {
        let b = Blob { kind, stream: stream.into(), rendition: rendition.into(), msn, content_type };
        (b.first_job(), Some(b))
    };
    let route = route::parse(rest).map_err(|e| e.0)?;
    Ok(match route {
        Route::Master { stream } => {
            (Job::Master { stream: stream.into(), variant_query: query()?.for_variants() }, None)
        }
        Route::Media { stream, rendition }
        | Route::IFrames { stream, rendition }
        | Route::Images { stream, rendition } => {
            let window_us = lc.window().as_micros().min(i64::MAX as u128) as i64;
            let listing = match route {
                Route::IFrames { .. } => Listing::IFrames,
                Route::Images { .. } => Listing::Images,
                _ => Listing::Media(lc.ad_markers()),
            };
            let (stream, rendition) = (stream.into(), rendition.into());
            (Job::Media { stream, rendition, window_us, query: query()?, listing }, None)
        }
        Route::Thumbnail { stream, rendition, msn } => {
            blob(BlobKind::Thumbnail, stream, rendition, msn, response::THUMBNAIL_TYPE)
        }
        Route::Segment { stream, rendition, msn, container } => {
            blob(BlobKind::Segment, stream, rendition, msn, container.content_type())
        }
        Route::Init { stream, rendition, msn } => blob(BlobKind::Init, stream, rendition, msn, response::INIT_TYPE),
        Route::Part { stream, rendition, msn, part } => {
            let at = PartPos { msn, part };
            (Job::Part { stream: stream.into(), rendition: rendition.into(), at }, None)
        }
        Route::Clip { stream, rendition, format } => {
            // The redirect keeps every other parameter (a signed URL's token), whatever
            // hls_dvr_pass_args says of playlists.
            let q = PlaylistQuery::parse(args, now_ms(), lc.max_range().as_millis() as i64)?;
            if q.relative_times {
                return Err(NotAJob::Moved(q.for_variants()));
            }
            let (stream, rendition) = (stream.into(), rendition.map(String::from));
            (Job::Clip { stream, rendition, query: q, format }, None)
        }
    })
}

/// Starts a store job for this request and arms its timeout.
pub fn submit(r: &mut Request, ctx: &mut Ctx, job: Job) -> Result<(), ngx_int_t> {
    // Leave the timer the last word: the job gives up waiting for a session a little earlier.
    let store_time = Duration::from_millis(ctx.timeout as u64).saturating_sub(job.wait_limit());
    let session_wait = store_time * 9 / 10;
    match bridge::submit(NonNull::from(&mut *r), job, session_wait) {
        Ok(id) => {
            ctx.job_id = Some(id);
            ctx.store_since = Some(Instant::now());
            http::add_timer(&mut ctx.timer, ctx.timeout);
            Ok(())
        }
        Err(why) => {
            let msg = match why {
                SubmitError::NotReady => "the worker has no store runtime",
                SubmitError::Busy => "too many requests in flight (hls_dvr_max_in_flight)",
            };
            ngx_log_error!(NGX_LOG_WARN, r.log(), "hls_dvr: 503: {}", msg);
            Err(NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t)
        }
    }
}

/// The store did not answer in time.
unsafe extern "C" fn on_timeout(ev: *mut ngx_event_t) {
    // SAFETY: the store timer of a live request (its cleanup deletes the timer), and the one
    // reference to its state in this event.
    let (r, ctx) = unsafe {
        let r = request_of(ev);
        {
            let ctx = ctx_of(r).expect("a request with a store timer has a context");
            (r, ctx)
        }
    };
    let c = r.connection();
    if let Some(id) = ctx.job_id.take() {
        bridge::cancel(id);
    }
    waited(ctx);
    if let Some(counters) = metrics::counters() {
        counters.store_error(&StoreError::Timeout(String::new()));
    }
    ngx_log_error!(NGX_LOG_ERR, r.log(), "hls_dvr: store did not answer within {}ms", ctx.timeout);
    let rc = if r.header_sent() { NGX_ERROR } else { NGX_HTTP_GATEWAY_TIME_OUT as ngx_int_t };
    // SAFETY: the last use of the request in this event.
    unsafe { r.finalize(rc) };
    http::run_posted(c);
}

/// The current job stopped waiting for the store: its time counts in `$hls_dvr_store_ms`.
fn waited(ctx: &mut Ctx) {
    if let Some(t) = ctx.store_since.take() {
        *ctx.store_ms.get_or_insert(0) += t.elapsed().as_millis() as u64;
    }
}

/// A reply for request `r` arrived (called from the bridge, on the nginx thread, with a request
/// whose job `id` was still pending: the pool cleanup cancels it first, so `r` is alive).
pub fn complete(r: &mut Request, id: u64, res: Result<Reply, StoreError>) {
    let c = r.connection();
    // SAFETY: the one reference to the request's state while the reply is handled.
    let Some(ctx) = (unsafe { ctx_of(r) }) else { return };
    // An internal redirect clears module contexts; such a request no longer waits for this reply.
    if ctx.job_id != Some(id) {
        return;
    }
    ctx.job_id = None;
    waited(ctx);
    http::del_timer(&mut ctx.timer);
    // A claimed key whose fill failed: other requests may try.
    if ctx.filling && !matches!(res, Ok(Reply::Whole(_) | Reply::Playlist { .. })) {
        if let Some((cache, key, _)) = ctx.cache.as_ref() {
            cache.abandon(key);
        }
        ctx.filling = false;
    }
    let rc = match res {
        Err(e) => {
            if let Some(counters) = metrics::counters() {
                counters.store_error(&e);
            }
            // Without a session, the connect loop has logged why once; each request needs no line.
            let level = match &e {
                StoreError::Unavailable(m) if m == bridge::NOT_CONNECTED => NGX_LOG_INFO,
                _ => NGX_LOG_ERR,
            };
            ngx_log_error!(level, r.log(), "hls_dvr: {}", e);
            Some(if r.header_sent() { NGX_ERROR } else { response::status_for(&e) })
        }
        Ok(Reply::Refused { status, reason }) => {
            ngx_log_error!(NGX_LOG_INFO, r.log(), "hls_dvr: {}: {}", status, reason);
            Some(response::text(r, status, &reason))
        }
        Ok(Reply::Playlist { text, max_age_s }) if ctx.filling => {
            Some(fill(r, ctx, vec![text], Content::Playlist { max_age_s }))
        }
        Ok(Reply::Playlist { text, max_age_s }) => {
            // The text may be shared with other requests (playlist cache): nginx reads it in
            // place, and the request keeps a reference until it is freed.
            ctx.sent.push(text.clone());
            // SAFETY: `text` shares its memory with the copy kept in `ctx.sent`.
            Some(unsafe { send_playlist(r, &mut ctx.sent, ctx.session.as_deref(), &text, max_age_s) })
        }
        Ok(Reply::Json(doc)) => Some(response::body(r, 200, response::JSON_TYPE, &doc, Some("no-store"))),
        Ok(Reply::Whole(chunks)) => {
            let content = ctx.content.unwrap_or(Content::Init);
            Some(fill(r, ctx, chunks, content))
        }
        Ok(Reply::Blob { meta, first }) => {
            pump::start(r, ctx, meta, first);
            None
        }
        Ok(Reply::Chunk(data)) => {
            if let Some(s) = ctx.stream.as_mut() {
                s.arrived(vec![data]);
            }
            pump::pump(r, ctx);
            None
        }
        Ok(Reply::Clip(file)) => {
            pump::start_file(r, ctx, file);
            None
        }
        Ok(Reply::ClipUnit(parts)) => {
            if let Some(s) = ctx.stream.as_mut() {
                s.arrived(parts);
            }
            pump::pump(r, ctx);
            None
        }
    };
    if let Some(rc) = rc {
        // SAFETY: the last use of the request for this reply.
        unsafe { r.finalize(rc) };
    }
    http::run_posted(c);
}
