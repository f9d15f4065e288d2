//! Requests under an `hls_dvr` location: route the path and parse the query, then answer from the
//! shared cache (cache.rs) when the location has one, or submit a job to the store and answer when
//! the reply comes. Headers are in headers.rs, segment streaming in pump.rs.
//!
//! A request's state (`Ctx`) lives in its pool's cleanup data. The cleanup cancels the job and the
//! timer, so however nginx frees the request (client abort, HTTP/2 reset, timeout), nothing
//! touches it afterwards: a late reply finds no pending id and is dropped.
//!
//! Safety: every function here runs on the worker's nginx thread and takes a request `r` that is
//! alive for the call: nginx guarantees it for the handlers it calls (content handler, write and
//! timer events, which the cleanup disarms), and the bridge only delivers a reply for an id still
//! pending, which the cleanup removes before the pool is freed. Borrows of `r` or its context end
//! before any call that may finalize the request, which is the last thing a function does with
//! them. Buffers handed to nginx point into `Bytes` kept in the `Ctx` (or into the request pool),
//! so they outlive every use nginx makes.

use std::ffi::c_void;
use std::mem::{size_of, MaybeUninit};
use std::ptr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ngx::ffi::{
    ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_http_discard_request_body, ngx_http_finalize_request,
    ngx_http_output_filter, ngx_http_request_t, ngx_http_run_posted_requests, ngx_http_send_header,
    ngx_http_test_reading, ngx_int_t, ngx_msec_t, ngx_pool_cleanup_add, NGX_HTTP_BAD_REQUEST,
    NGX_HTTP_GATEWAY_TIME_OUT, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED,
    NGX_HTTP_NO_CONTENT, NGX_HTTP_OPTIONS, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_WARN,
};
use ngx::http::{HttpModule, HttpModuleMainConf};
use ngx::ngx_log_error;

use crate::bridge::{self, SubmitError};
use crate::cache::{Cache, Content, Lookup, Pinned};
use crate::headers;
use crate::metrics;
use crate::pump::{self, Blob, Streaming};
use crate::HlsDvr;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::Container;
use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_core::route::{self, Route};
use hls_dvr_edge::counters::CacheKind;
use hls_dvr_edge::serve::{Job, Reply};
use hls_dvr_store::{BlobKind, StoreError};

pub const NGX_OK: ngx_int_t = 0;
pub const NGX_ERROR: ngx_int_t = -1;
const NGX_DONE: ngx_int_t = -4;

/// A request's state, in its pool's cleanup data.
pub struct Ctx {
    r: *mut ngx_http_request_t,
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
    /// The location's shared cache, and this request's key in it.
    cache: Option<(Cache, Vec<u8>, Content)>,
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
}

/// How often a request waiting for another's fill looks at the zone.
const POLL_MS: ngx_msec_t = 10;

/// Pool cleanup: the request is being freed.
unsafe extern "C" fn drop_ctx(data: *mut c_void) {
    let ctx = data as *mut Ctx;
    if let Some(id) = (*ctx).job_id.take() {
        bridge::cancel(id);
    }
    if (*ctx).timer.timer_set() != 0 {
        ngx_del_timer(&mut (*ctx).timer);
    }
    if (*ctx).poll.timer_set() != 0 {
        ngx_del_timer(&mut (*ctx).poll);
    }
    if (*ctx).blocked {
        if let Some(b) = metrics::board() {
            b.blocked(-1);
        }
    }
    if let Some((cache, key, _)) = (*ctx).cache.as_ref() {
        if (*ctx).filling {
            cache.abandon(key);
        }
        if let Some(p) = (*ctx).pinned.take() {
            cache.unpin(&p);
        }
    }
    ptr::drop_in_place(ctx);
}

/// # Safety
/// `r` is a live request that went through [`content_handler`].
pub unsafe fn ctx_of(r: *mut ngx_http_request_t) -> *mut Ctx {
    *(*r).ctx.add(HlsDvr::module().ctx_index) as *mut Ctx
}

/// The location's content handler.
pub unsafe extern "C" fn content_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    let method = (*r).method as u32;
    if method & (NGX_HTTP_GET | NGX_HTTP_HEAD | NGX_HTTP_OPTIONS) == 0 {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    let rc = ngx_http_discard_request_body(r);
    if rc != NGX_OK {
        return rc;
    }
    headers::cors(r);
    if method == NGX_HTTP_OPTIONS {
        headers::preflight(r);
        (*r).headers_out.status = NGX_HTTP_NO_CONTENT as usize;
        (*r).headers_out.content_length_n = 0;
        (*r).set_header_only(1);
        return ngx_http_send_header(r);
    }
    let lc = headers::loc_conf(r);
    let (job, blob) = match route_request(r) {
        Ok(j) => j,
        Err(reason) => {
            ngx_log_error!(NGX_LOG_INFO, (*(*r).connection).log, "hls_dvr: 400: {}", reason);
            return send_text(r, NGX_HTTP_BAD_REQUEST as u16, &reason);
        }
    };

    // The request's state, freed with its pool whatever ends the request.
    let cln = ngx_pool_cleanup_add((*r).pool, size_of::<Ctx>());
    if cln.is_null() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    let main = HlsDvr::main_conf(&*r).expect("hls_dvr main conf");
    // A job that waits for a segment (blocking reload) has that wait besides the store's time.
    let timeout = main.timeout() + job.wait_limit();
    let ctx = (*cln).data as *mut Ctx;
    ptr::write(
        ctx,
        Ctx {
            r,
            job_id: None,
            timeout: timeout.as_millis().min(u32::MAX as u128) as ngx_msec_t,
            // SAFETY: an all-zero ngx_event_t is nginx's own initial state (ngx_pcalloc).
            timer: MaybeUninit::zeroed().assume_init(),
            cache: lc.cache().zip(cache_entry(&job, blob.as_ref())).map(|(z, (k, c))| (Cache::new(z), k, c)),
            blob,
            stream: None,
            sent: Vec::new(),
            filling: false,
            pinned: None,
            waiting: None,
            wait_until_ms: now_ms() + main.timeout().as_millis() as i64,
            // SAFETY: as for `timer`.
            poll: MaybeUninit::zeroed().assume_init(),
            store_ms: None,
            store_since: None,
            cache_status: None,
            blocked: false,
        },
    );
    (*cln).handler = Some(drop_ctx);
    *(*r).ctx.add(HlsDvr::module().ctx_index) = ctx as *mut c_void;
    for (ev, handler) in [(&mut (*ctx).timer, on_timeout as unsafe extern "C" fn(_)), (&mut (*ctx).poll, on_poll)] {
        ev.handler = Some(handler);
        ev.data = r as *mut c_void;
        ev.log = (*(*r).connection).log;
    }

    let blocking = !job.wait_limit().is_zero();
    match start(ctx, job) {
        Step::Answered(rc) | Step::Failed(rc) => rc,
        Step::Pending => {
            if blocking {
                if let Some(b) = metrics::board() {
                    b.blocked(1);
                    (*ctx).blocked = true;
                }
            }
            // Watch for the client going away while the store works.
            (*r).read_event_handler = Some(ngx_http_test_reading);
            (*(*r).main).set_count((*(*r).main).count() + 1);
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
        (_, Some(b)) => match b.kind {
            BlobKind::Init => Content::Init,
            BlobKind::Segment if b.content_type == Container::Fmp4.content_type() => Content::Segment(Container::Fmp4),
            BlobKind::Segment => Content::Segment(Container::Ts),
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
unsafe fn start(ctx: *mut Ctx, mut job: Job) -> Step {
    if let Some((cache, key, _)) = (*ctx).cache.as_ref() {
        let main = HlsDvr::main_conf(&*(*ctx).r).expect("hls_dvr main conf");
        // A fill older than two store timeouts has failed silently: taken over.
        let stall_ms = 2 * main.timeout().as_millis() as i64;
        match cache.lookup(key, now_ms(), stall_ms) {
            Lookup::Hit(p) => {
                (*ctx).cache_status = Some("HIT");
                if let Some(b) = metrics::board() {
                    b.cache_hit(cache_kind(p.content), p.bytes().len());
                }
                return Step::Answered(send_pinned(ctx, p));
            }
            Lookup::Wait => {
                (*ctx).waiting = Some(job);
                ngx_add_timer(&mut (*ctx).poll, POLL_MS);
                return Step::Pending;
            }
            Lookup::Fill => {
                (*ctx).filling = true;
                (*ctx).cache_status = Some("MISS");
                if let (Some(b), Some((_, _, content))) = (metrics::board(), (*ctx).cache.as_ref()) {
                    b.cache_miss(cache_kind(*content));
                }
                // The cache holds whole segments: read them in one job.
                if let Job::BlobFirst { kind, stream, rendition, msn } = job {
                    job = Job::BlobWhole { kind, stream, rendition, msn };
                }
            }
            Lookup::Bypass => (*ctx).cache = None,
        }
    }
    match submit(ctx, job) {
        Ok(()) => Step::Pending,
        Err(status) => Step::Failed(status),
    }
}

fn cache_kind(c: Content) -> CacheKind {
    match c {
        Content::Playlist { .. } => CacheKind::Playlist,
        Content::Segment(_) => CacheKind::Segment,
        Content::Init => CacheKind::Init,
    }
}

/// Another request was filling the key this one waits for: look again.
unsafe extern "C" fn on_poll(ev: *mut ngx_event_t) {
    let r = (*ev).data as *mut ngx_http_request_t;
    let c = (*r).connection;
    let ctx = ctx_of(r);
    let Some(job) = (*ctx).waiting.take() else { return };
    if now_ms() > (*ctx).wait_until_ms {
        // The fill takes too long: read the store directly.
        (*ctx).cache = None;
    }
    match start(ctx, job) {
        Step::Answered(rc) | Step::Failed(rc) => ngx_http_finalize_request(r, rc),
        Step::Pending => {}
    }
    ngx_http_run_posted_requests(c);
}

/// Sends zone bytes, pinned until the request is freed. Returns what to finalize with.
unsafe fn send_pinned(ctx: *mut Ctx, p: Pinned) -> ngx_int_t {
    let r = (*ctx).r;
    let content = p.content;
    let data = (*ctx).pinned.insert(p).bytes();
    match content {
        Content::Playlist { max_age_s } => {
            (*r).headers_out.status = 200;
            (*r).headers_out.content_length_n = data.len() as _;
            headers::content_type(r, headers::PLAYLIST_TYPE);
            headers::max_age(r, max_age_s);
            pump::send_held(r, data)
        }
        Content::Segment(_) | Content::Init => {
            let content_type = match content {
                Content::Segment(container) => container.content_type(),
                _ => headers::INIT_TYPE,
            };
            match pump::blob_headers(r, data.len() as u64, content_type) {
                Ok((start, end)) if !data.is_empty() => pump::send_held(r, &data[start as usize..=end as usize]),
                Ok(_) => pump::send_held(r, &[]),
                Err(rc) => rc,
            }
        }
    }
}

/// The store's answer to a request that claimed its key: into the zone and out to the client,
/// or, when the zone cannot take it, out from the worker's memory.
unsafe fn fill(ctx: *mut Ctx, parts: Vec<Bytes>, content: Content) -> ngx_int_t {
    let r = (*ctx).r;
    let Some((cache, key, _)) = (*ctx).cache.as_ref() else { return NGX_ERROR };
    let main = HlsDvr::main_conf(&*r).expect("hls_dvr main conf");
    let now = now_ms();
    let expires_ms = match content {
        Content::Playlist { .. } => now + main.playlist_cache().as_millis() as i64,
        _ => bridge::retention_ms().map_or(i64::MAX, |ms| now + ms),
    };
    let slices: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
    let filled = cache.fill(key, content, expires_ms, &slices);
    (*ctx).filling = false;
    if let Some(p) = filled {
        return send_pinned(ctx, p);
    }
    // Not kept: served from the bytes the store sent, held by the request.
    let whole = Bytes::from(parts.concat());
    (*ctx).sent.push(whole.clone());
    match content {
        Content::Playlist { max_age_s } => {
            (*r).headers_out.status = 200;
            (*r).headers_out.content_length_n = whole.len() as _;
            headers::content_type(r, headers::PLAYLIST_TYPE);
            headers::max_age(r, max_age_s);
            pump::send_held(r, &whole)
        }
        Content::Segment(container) => send_blob_bytes(r, &whole, container.content_type()),
        Content::Init => send_blob_bytes(r, &whole, headers::INIT_TYPE),
    }
}

unsafe fn send_blob_bytes(r: *mut ngx_http_request_t, data: &Bytes, content_type: &'static str) -> ngx_int_t {
    match pump::blob_headers(r, data.len() as u64, content_type) {
        Ok((start, end)) if !data.is_empty() => pump::send_held(r, &data[start as usize..=end as usize]),
        Ok(_) => pump::send_held(r, &[]),
        Err(rc) => rc,
    }
}

/// The job a request's path and query ask for, or why they are not understood (400).
unsafe fn route_request(r: *mut ngx_http_request_t) -> Result<(Job, Option<Blob>), String> {
    let lc = headers::loc_conf(r);
    let uri = std::slice::from_raw_parts((*r).uri.data, (*r).uri.len);
    let rest = std::str::from_utf8(uri)
        .ok()
        .and_then(|u| u.strip_prefix(lc.prefix.as_str()))
        .ok_or_else(|| "the path is not UTF-8 or not under the location".to_string())?;
    let args = if (*r).args.len == 0 { &[][..] } else { std::slice::from_raw_parts((*r).args.data, (*r).args.len) };
    let args = std::str::from_utf8(args).map_err(|_| "the query string is not UTF-8".to_string())?;
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
    Ok(match route::parse(rest).map_err(|e| e.0)? {
        Route::Master { stream } => {
            (Job::Master { stream: stream.into(), variant_query: query()?.for_variants() }, None)
        }
        Route::Media { stream, rendition } => {
            let window_us = lc.window().as_micros().min(i64::MAX as u128) as i64;
            let job = Job::Media { stream: stream.into(), rendition: rendition.into(), window_us, query: query()? };
            (job, None)
        }
        Route::Segment { stream, rendition, msn, container } => {
            blob(BlobKind::Segment, stream, rendition, msn, container.content_type())
        }
        Route::Init { stream, rendition, msn } => blob(BlobKind::Init, stream, rendition, msn, headers::INIT_TYPE),
    })
}

/// Starts a store job for this request and arms its timeout.
///
/// # Safety
/// `ctx` is the live context of a live request.
pub unsafe fn submit(ctx: *mut Ctx, job: Job) -> Result<(), ngx_int_t> {
    let r = (*ctx).r;
    // Leave the timer the last word: the job gives up waiting for a session a little earlier.
    let store_time = Duration::from_millis((*ctx).timeout as u64).saturating_sub(job.wait_limit());
    let session_wait = store_time * 9 / 10;
    match bridge::submit(r, job, session_wait) {
        Ok(id) => {
            (*ctx).job_id = Some(id);
            (*ctx).store_since = Some(Instant::now());
            ngx_add_timer(&mut (*ctx).timer, (*ctx).timeout);
            Ok(())
        }
        Err(why) => {
            let msg = match why {
                SubmitError::NotReady => "the worker has no store runtime",
                SubmitError::Busy => "too many requests in flight (hls_dvr_max_in_flight)",
            };
            ngx_log_error!(NGX_LOG_WARN, (*(*r).connection).log, "hls_dvr: 503: {}", msg);
            Err(NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t)
        }
    }
}

/// The store did not answer in time.
unsafe extern "C" fn on_timeout(ev: *mut ngx_event_t) {
    let r = (*ev).data as *mut ngx_http_request_t;
    let c = (*r).connection;
    let ctx = ctx_of(r);
    if let Some(id) = (*ctx).job_id.take() {
        bridge::cancel(id);
    }
    waited(ctx);
    if let Some(b) = metrics::board() {
        b.store_error(&StoreError::Timeout(String::new()));
    }
    ngx_log_error!(NGX_LOG_ERR, (*c).log, "hls_dvr: store did not answer within {}ms", (*ctx).timeout);
    let rc = if (*r).header_sent() == 0 { NGX_HTTP_GATEWAY_TIME_OUT as ngx_int_t } else { NGX_ERROR };
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}

/// The current job stopped waiting for the store: its time counts in `$hls_dvr_store_ms`.
unsafe fn waited(ctx: *mut Ctx) {
    if let Some(t) = (*ctx).store_since.take() {
        *(*ctx).store_ms.get_or_insert(0) += t.elapsed().as_millis() as u64;
    }
}

/// A reply for request `r` arrived (called from the bridge, on the nginx thread).
///
/// # Safety
/// `r` is a live request: its id was still pending, and the pool cleanup removes it first.
pub unsafe fn complete(r: *mut ngx_http_request_t, id: u64, res: Result<Reply, StoreError>) {
    let c = (*r).connection;
    let ctx = ctx_of(r);
    // An internal redirect clears module contexts; such a request no longer waits for this reply.
    if ctx.is_null() || (*ctx).job_id != Some(id) {
        return;
    }
    (*ctx).job_id = None;
    waited(ctx);
    if (*ctx).timer.timer_set() != 0 {
        ngx_del_timer(&mut (*ctx).timer);
    }
    // A claimed key whose fill failed: other requests may try.
    if (*ctx).filling && !matches!(res, Ok(Reply::Whole(_) | Reply::Playlist { .. })) {
        if let Some((cache, key, _)) = (*ctx).cache.as_ref() {
            cache.abandon(key);
        }
        (*ctx).filling = false;
    }
    match res {
        Err(e) => {
            if let Some(b) = metrics::board() {
                b.store_error(&e);
            }
            // Without a session, the connect loop has logged why once; each request needs no line.
            let level = match &e {
                StoreError::Unavailable(m) if m == bridge::NOT_CONNECTED => NGX_LOG_INFO,
                _ => NGX_LOG_ERR,
            };
            ngx_log_error!(level, (*c).log, "hls_dvr: {}", e);
            let rc = if (*r).header_sent() == 0 { headers::status_for(&e) } else { NGX_ERROR };
            ngx_http_finalize_request(r, rc);
        }
        Ok(Reply::Refused { status, reason }) => {
            ngx_log_error!(NGX_LOG_INFO, (*c).log, "hls_dvr: {}: {}", status, reason);
            ngx_http_finalize_request(r, send_text(r, status, &reason));
        }
        Ok(Reply::Playlist { text, max_age_s }) if (*ctx).filling => {
            ngx_http_finalize_request(r, fill(ctx, vec![text], Content::Playlist { max_age_s }));
        }
        Ok(Reply::Playlist { text, max_age_s }) => send_playlist(r, ctx, text, max_age_s),
        Ok(Reply::Json(doc)) => {
            ngx_http_finalize_request(r, send_body(r, 200, headers::JSON_TYPE, &doc, Some("no-store")))
        }
        Ok(Reply::Whole(chunks)) => {
            let content = (*ctx).cache.as_ref().map_or(Content::Init, |c| c.2);
            ngx_http_finalize_request(r, fill(ctx, chunks, content));
        }
        Ok(Reply::Blob { meta, first }) => pump::start(r, ctx, meta, first),
        Ok(Reply::Chunk(data)) => {
            if let Some(s) = (*ctx).stream.as_mut() {
                s.arrived(data);
            }
            pump::pump(r, ctx);
        }
    }
    ngx_http_run_posted_requests(c);
}

unsafe fn send_playlist(r: *mut ngx_http_request_t, ctx: *mut Ctx, text: Bytes, max_age_s: u32) {
    (*r).headers_out.status = 200;
    (*r).headers_out.content_length_n = text.len() as _;
    headers::content_type(r, headers::PLAYLIST_TYPE);
    headers::max_age(r, max_age_s);
    let rc = ngx_http_send_header(r);
    if rc == NGX_ERROR || rc > NGX_OK || (*r).header_only() != 0 {
        ngx_http_finalize_request(r, rc);
        return;
    }
    // The text may be shared with other requests (playlist cache): nginx reads it in place, and
    // the request keeps a reference until it is freed.
    let cl = pump::memory_chain(r, &text, true);
    (*ctx).sent.push(text);
    let rc = if cl.is_null() { NGX_ERROR } else { ngx_http_output_filter(r, cl) };
    ngx_http_finalize_request(r, rc);
}

/// Sends `status` with `reason` as a short text body; returns what to finalize the request with.
unsafe fn send_text(r: *mut ngx_http_request_t, status: u16, reason: &str) -> ngx_int_t {
    send_body(r, status, headers::TEXT_TYPE, format!("{reason}\n").as_bytes(), None)
}

/// Sends `body` (copied into the request's pool, so it needs no owner) with `status` and
/// `content_type`; returns what to finalize the request with.
///
/// # Safety
/// `r` is a live request whose header is not sent yet.
pub unsafe fn send_body(
    r: *mut ngx_http_request_t,
    status: u16,
    content_type: &'static str,
    body: &[u8],
    cache_control: Option<&str>,
) -> ngx_int_t {
    (*r).headers_out.status = status as usize;
    (*r).headers_out.content_length_n = body.len() as _;
    headers::content_type(r, content_type);
    if let Some(c) = cache_control {
        headers::add(r, "Cache-Control", c);
    }
    let rc = ngx_http_send_header(r);
    if rc == NGX_ERROR || rc > NGX_OK || (*r).header_only() != 0 {
        return rc;
    }
    let copy = ngx::ffi::ngx_pnalloc((*r).pool, body.len()) as *mut u8;
    if copy.is_null() {
        return NGX_ERROR;
    }
    ptr::copy_nonoverlapping(body.as_ptr(), copy, body.len());
    let cl = pump::memory_chain(r, std::slice::from_raw_parts(copy, body.len()), true);
    if cl.is_null() {
        return NGX_ERROR;
    }
    ngx_http_output_filter(r, cl)
}
