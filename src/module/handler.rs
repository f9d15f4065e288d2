//! Requests under an `hls_dvr` location: route, submit to the store, answer when the reply comes.
//!
//! A request's state (`Ctx`) lives in its pool's cleanup data. The cleanup cancels the job and the
//! timer, so however nginx frees the request (client abort, HTTP/2 reset, timeout), nothing
//! touches it afterwards: a late reply finds no pending id and is dropped.
//!
//! Safety: every function here runs on the worker's nginx thread and takes a request `r` that is
//! alive for the call: nginx guarantees it for the handlers it calls (content handler, write and
//! timer events, which the cleanup disarms), and the bridge only delivers a reply for an id still
//! pending, which the cleanup removes before the pool is freed. Buffers handed to nginx point into
//! `Bytes` kept in the `Ctx` (or into the request pool), so they outlive every use nginx makes.

use std::ffi::c_void;
use std::mem::{size_of, MaybeUninit};
use std::ptr;

use bytes::Bytes;
use ngx::ffi::{
    ngx_add_timer, ngx_buf_t, ngx_chain_t, ngx_del_timer, ngx_event_t, ngx_handle_write_event,
    ngx_http_core_loc_conf_t, ngx_http_discard_request_body, ngx_http_finalize_request, ngx_http_output_filter,
    ngx_http_request_t, ngx_http_run_posted_requests, ngx_http_send_header, ngx_http_test_reading, ngx_int_t,
    ngx_list_push, ngx_msec_t, ngx_palloc, ngx_pcalloc, ngx_pool_cleanup_add, ngx_str_t, ngx_table_elt_t,
    NGX_HTTP_BAD_REQUEST, NGX_HTTP_GATEWAY_TIME_OUT, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_NOT_ALLOWED, NGX_HTTP_NOT_FOUND, NGX_HTTP_OPTIONS, NGX_HTTP_PARTIAL_CONTENT,
    NGX_HTTP_RANGE_NOT_SATISFIABLE, NGX_HTTP_REQUEST_TIME_OUT, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, NGX_LOG_INFO,
    NGX_LOG_WARN,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};
use ngx::ngx_log_error;

use crate::bridge::{self, Refused};
use crate::config::LocConf;
use crate::HlsDvr;
use hls_dvr::route::{self, ByteRange, Route};
use hls_dvr::serve::{Job, Reply};
use hls_dvr::store::{BlobKind, BlobMeta, StoreError};

const NGX_OK: ngx_int_t = 0;
const NGX_ERROR: ngx_int_t = -1;
const NGX_DONE: ngx_int_t = -4;

/// Segments never change once stored: cache them for a day.
const SEGMENT_CACHE: &str = "public, max-age=86400, immutable";

/// What kind of answer a request expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Playlist,
    Blob(&'static str),
}

/// A blob being streamed chunk by chunk.
struct Streaming {
    job: Job,
    meta: BlobMeta,
    /// Bytes `start..=end` of the blob are sent.
    start: u64,
    end: u64,
    /// Next chunk to fetch, and the last one needed.
    next: u32,
    last: u32,
    fetching: bool,
    /// A fetched chunk not yet handed to nginx.
    ready: Option<(u32, Bytes)>,
}

struct Ctx {
    r: *mut ngx_http_request_t,
    job_id: Option<u64>,
    want: Want,
    timeout: ngx_msec_t,
    /// Fires when the store does not answer in time. Non-cancelable: a reloading worker waits.
    timer: ngx_event_t,
    /// The blob's keys, for fetching its later chunks.
    blob_job: Option<Job>,
    stream: Option<Streaming>,
    /// Chunks handed to nginx: their memory must live until the request is freed.
    sent: Vec<Bytes>,
}

/// Pool cleanup: the request is being freed.
unsafe extern "C" fn drop_ctx(data: *mut c_void) {
    let ctx = data as *mut Ctx;
    if let Some(id) = (*ctx).job_id.take() {
        bridge::cancel(id);
    }
    if (*ctx).timer.timer_set() != 0 {
        ngx_del_timer(&mut (*ctx).timer);
    }
    ptr::drop_in_place(ctx);
}

unsafe fn ctx_of(r: *mut ngx_http_request_t) -> *mut Ctx {
    *(*r).ctx.add(HlsDvr::module().ctx_index) as *mut Ctx
}

/// Adds an output header. Header names and values here are ASCII we produce ourselves.
unsafe fn add_header(r: *mut ngx_http_request_t, key: &'static str, value: &str) -> bool {
    let h = ngx_list_push(&mut (*r).headers_out.headers) as *mut ngx_table_elt_t;
    if h.is_null() {
        return false;
    }
    let v = ngx_pnalloc_str(r, value);
    if v.data.is_null() && !value.is_empty() {
        (*h).hash = 0;
        return false;
    }
    (*h).hash = 1;
    (*h).key = ngx_str_t { len: key.len(), data: key.as_ptr() as *mut u8 };
    (*h).value = v;
    (*h).lowcase_key = ptr::null_mut();
    true
}

unsafe fn ngx_pnalloc_str(r: *mut ngx_http_request_t, s: &str) -> ngx_str_t {
    if s.is_empty() {
        return ngx_str_t { len: 0, data: ptr::null_mut() };
    }
    let p = ngx_palloc((*r).pool, s.len()) as *mut u8;
    if !p.is_null() {
        ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
    }
    ngx_str_t { len: s.len(), data: p }
}

unsafe fn set_content_type(r: *mut ngx_http_request_t, t: &'static str) {
    (*r).headers_out.content_type = ngx_str_t { len: t.len(), data: t.as_ptr() as *mut u8 };
    (*r).headers_out.content_type_len = t.len();
    (*r).headers_out.content_type_lowcase = ptr::null_mut();
}

unsafe fn loc_conf(r: *mut ngx_http_request_t) -> &'static LocConf {
    HlsDvr::location_conf(&*r).expect("hls_dvr location conf")
}

unsafe fn cors(r: *mut ngx_http_request_t) {
    if let Some(origin) = loc_conf(r).allow_origin() {
        add_header(r, "Access-Control-Allow-Origin", origin);
        add_header(r, "Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges");
    }
}

fn status_for(e: &StoreError) -> ngx_int_t {
    (match e {
        StoreError::Unavailable(_) => NGX_HTTP_SERVICE_UNAVAILABLE,
        StoreError::Timeout(_) => NGX_HTTP_GATEWAY_TIME_OUT,
        StoreError::Corrupt(_) => ngx::ffi::NGX_HTTP_BAD_GATEWAY,
        StoreError::Invalid(_) => NGX_HTTP_INTERNAL_SERVER_ERROR,
    }) as ngx_int_t
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
    let lc = loc_conf(r);
    cors(r);
    if method == NGX_HTTP_OPTIONS {
        return preflight(r);
    }

    let uri = std::slice::from_raw_parts((*r).uri.data, (*r).uri.len);
    let rest = std::str::from_utf8(uri).ok().and_then(|u| u.strip_prefix(lc.prefix.as_str()));
    let parsed = match rest.map(route::parse) {
        Some(Ok(route)) => route,
        Some(Err(e)) => {
            ngx_log_error!(NGX_LOG_INFO, (*(*r).connection).log, "hls_dvr: bad request path: {}", e);
            return NGX_HTTP_BAD_REQUEST as ngx_int_t;
        }
        None => return NGX_HTTP_BAD_REQUEST as ngx_int_t,
    };
    let window_us = lc.window().as_micros().min(i64::MAX as u128) as i64;
    let (job, want) = match parsed {
        Route::Master { stream } => (Job::Master { stream: stream.into() }, Want::Playlist),
        Route::Media { stream, rendition } => {
            (Job::Media { stream: stream.into(), rendition: rendition.into(), window_us }, Want::Playlist)
        }
        Route::Segment { stream, rendition, msn, container } => (
            Job::BlobFirst { kind: BlobKind::Segment, stream: stream.into(), rendition: rendition.into(), msn },
            Want::Blob(container.content_type()),
        ),
        Route::Init { stream, rendition, msn } => (
            Job::BlobFirst { kind: BlobKind::Init, stream: stream.into(), rendition: rendition.into(), msn },
            Want::Blob(route::INIT_TYPE),
        ),
    };

    // The request's state, freed with its pool whatever ends the request.
    let cln = ngx_pool_cleanup_add((*r).pool, size_of::<Ctx>());
    if cln.is_null() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    let main = HlsDvr::main_conf(&*r).expect("hls_dvr main conf");
    let ctx = (*cln).data as *mut Ctx;
    ptr::write(
        ctx,
        Ctx {
            r,
            job_id: None,
            want,
            timeout: main.timeout().as_millis().min(u32::MAX as u128) as ngx_msec_t,
            // SAFETY: an all-zero ngx_event_t is nginx's own initial state (ngx_pcalloc).
            timer: MaybeUninit::zeroed().assume_init(),
            blob_job: matches!(want, Want::Blob(_)).then(|| job.clone()),
            stream: None,
            sent: Vec::new(),
        },
    );
    (*cln).handler = Some(drop_ctx);
    *(*r).ctx.add(HlsDvr::module().ctx_index) = ctx as *mut c_void;
    (*ctx).timer.handler = Some(on_timeout);
    (*ctx).timer.data = r as *mut c_void;
    (*ctx).timer.log = (*(*r).connection).log;

    if let Err(status) = submit(ctx, job) {
        return status;
    }
    // Watch for the client going away while the store works.
    (*r).read_event_handler = Some(ngx_http_test_reading);
    (*(*r).main).set_count((*(*r).main).count() + 1);
    NGX_DONE
}

/// Starts a store job for this request and arms its timeout.
unsafe fn submit(ctx: *mut Ctx, job: Job) -> Result<(), ngx_int_t> {
    let r = (*ctx).r;
    // Leave the timer the last word: the job gives up waiting for a session a little earlier.
    let wait = std::time::Duration::from_millis((*ctx).timeout as u64 * 9 / 10);
    match bridge::submit(r, job, wait) {
        Ok(id) => {
            (*ctx).job_id = Some(id);
            ngx_add_timer(&mut (*ctx).timer, (*ctx).timeout);
            Ok(())
        }
        Err(why) => {
            let msg = match why {
                Refused::NotReady => "the worker has no store runtime",
                Refused::Busy => "too many requests in flight (hls_dvr_max_in_flight)",
            };
            ngx_log_error!(NGX_LOG_WARN, (*(*r).connection).log, "hls_dvr: 503: {}", msg);
            Err(NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t)
        }
    }
}

unsafe fn preflight(r: *mut ngx_http_request_t) -> ngx_int_t {
    add_header(r, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    add_header(r, "Access-Control-Allow-Headers", "Range");
    add_header(r, "Access-Control-Max-Age", "86400");
    (*r).headers_out.status = ngx::ffi::NGX_HTTP_NO_CONTENT as usize;
    (*r).headers_out.content_length_n = 0;
    (*r).set_header_only(1);
    ngx_http_send_header(r)
}

/// The store did not answer in time.
unsafe extern "C" fn on_timeout(ev: *mut ngx_event_t) {
    let r = (*ev).data as *mut ngx_http_request_t;
    let c = (*r).connection;
    let ctx = ctx_of(r);
    if let Some(id) = (*ctx).job_id.take() {
        bridge::cancel(id);
    }
    ngx_log_error!(NGX_LOG_ERR, (*c).log, "hls_dvr: store did not answer within {}ms", (*ctx).timeout);
    let rc = if (*r).header_sent() == 0 { NGX_HTTP_GATEWAY_TIME_OUT as ngx_int_t } else { NGX_ERROR };
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
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
    if (*ctx).timer.timer_set() != 0 {
        ngx_del_timer(&mut (*ctx).timer);
    }
    match res {
        Err(e) => {
            // Without a session, the connect loop has logged why once; each request needs no line.
            let level = match &e {
                StoreError::Unavailable(m) if m == bridge::NOT_CONNECTED => NGX_LOG_INFO,
                _ => NGX_LOG_ERR,
            };
            ngx_log_error!(level, (*c).log, "hls_dvr: {}", e);
            let rc = if (*r).header_sent() == 0 { status_for(&e) } else { NGX_ERROR };
            ngx_http_finalize_request(r, rc);
        }
        Ok(Reply::NotFound(what)) => {
            ngx_log_error!(NGX_LOG_INFO, (*c).log, "hls_dvr: 404: {}", what);
            ngx_http_finalize_request(r, NGX_HTTP_NOT_FOUND as ngx_int_t);
        }
        Ok(Reply::Playlist { text, max_age_s }) => send_playlist(r, ctx, text, max_age_s),
        Ok(Reply::Blob { meta, first }) => start_blob(r, ctx, meta, first),
        Ok(Reply::Chunk(data)) => {
            if let Some(s) = (*ctx).stream.as_mut() {
                s.fetching = false;
                s.ready = Some((s.next - 1, data));
            }
            pump(r, ctx);
        }
    }
    ngx_http_run_posted_requests(c);
}

/// A buffer over `data`, which the caller keeps alive until the request is freed.
unsafe fn memory_chain(r: *mut ngx_http_request_t, data: &[u8], last: bool) -> *mut ngx_chain_t {
    let b = ngx_pcalloc((*r).pool, size_of::<ngx_buf_t>()) as *mut ngx_buf_t;
    let cl = ngx_palloc((*r).pool, size_of::<ngx_chain_t>()) as *mut ngx_chain_t;
    if b.is_null() || cl.is_null() {
        return ptr::null_mut();
    }
    let p = data.as_ptr() as *mut u8;
    (*b).start = p;
    (*b).pos = p;
    (*b).last = p.add(data.len());
    (*b).end = (*b).last;
    // Read-only memory: filters must copy, not modify.
    (*b).set_memory(if data.is_empty() { 0 } else { 1 });
    if last {
        if r == (*r).main {
            (*b).set_last_buf(1);
        }
        (*b).set_last_in_chain(1);
    } else {
        (*b).set_flush(1);
    }
    (*cl).buf = b;
    (*cl).next = ptr::null_mut();
    cl
}

unsafe fn send_playlist(r: *mut ngx_http_request_t, ctx: *mut Ctx, text: Bytes, max_age_s: u32) {
    (*r).headers_out.status = 200;
    (*r).headers_out.content_length_n = text.len() as _;
    set_content_type(r, route::PLAYLIST_TYPE);
    add_header(r, "Cache-Control", &format!("max-age={max_age_s}"));
    let rc = ngx_http_send_header(r);
    if rc == NGX_ERROR || rc > NGX_OK || (*r).header_only() != 0 {
        ngx_http_finalize_request(r, rc);
        return;
    }
    // The text may be shared with other requests (playlist cache): nginx reads it in place, and
    // the request keeps a reference until it is freed.
    let cl = memory_chain(r, &text, true);
    (*ctx).sent.push(text);
    if cl.is_null() {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }
    ngx_http_finalize_request(r, ngx_http_output_filter(r, cl));
}

unsafe fn start_blob(r: *mut ngx_http_request_t, ctx: *mut Ctx, meta: BlobMeta, first: Bytes) {
    let Want::Blob(content_type) = (*ctx).want else {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
        return;
    };
    let range = if (*r).headers_in.range.is_null() {
        ByteRange::Whole
    } else {
        let v = (*(*r).headers_in.range).value;
        match std::str::from_utf8(std::slice::from_raw_parts(v.data, v.len)) {
            Ok(h) => route::parse_range(h, meta.size),
            Err(_) => ByteRange::Whole,
        }
    };
    add_header(r, "Accept-Ranges", "bytes");
    let (start, end) = match range {
        ByteRange::Unsatisfiable => {
            add_header(r, "Content-Range", &format!("bytes */{}", meta.size));
            ngx_http_finalize_request(r, NGX_HTTP_RANGE_NOT_SATISFIABLE as ngx_int_t);
            return;
        }
        ByteRange::Part { start, end } => {
            (*r).headers_out.status = NGX_HTTP_PARTIAL_CONTENT as usize;
            add_header(r, "Content-Range", &format!("bytes {start}-{end}/{}", meta.size));
            (start, end)
        }
        ByteRange::Whole => {
            (*r).headers_out.status = 200;
            (0, meta.size.saturating_sub(1))
        }
    };
    let len = if meta.size == 0 { 0 } else { end - start + 1 };
    (*r).headers_out.content_length_n = len as _;
    set_content_type(r, content_type);
    add_header(r, "Cache-Control", SEGMENT_CACHE);
    let rc = ngx_http_send_header(r);
    if rc == NGX_ERROR || rc > NGX_OK || (*r).header_only() != 0 || len == 0 {
        if len == 0 && rc == NGX_OK && (*r).header_only() == 0 {
            let cl = memory_chain(r, &[], true);
            ngx_http_finalize_request(r, if cl.is_null() { NGX_ERROR } else { ngx_http_output_filter(r, cl) });
            return;
        }
        ngx_http_finalize_request(r, rc);
        return;
    }
    let chunks = meta.chunks_for(start, end);
    let (first_chunk, last_chunk) = (*chunks.start(), *chunks.end());
    let Some(job) = (*ctx).blob_job.take() else {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
        return;
    };
    let mut s = Streaming { job, meta, start, end, next: first_chunk, last: last_chunk, fetching: false, ready: None };
    if first_chunk == 0 {
        s.ready = Some((0, first));
        s.next = 1;
    }
    (*ctx).stream = Some(s);
    pump(r, ctx);
}

/// Moves the stream forward: flush what nginx holds, hand it the next chunk, fetch ahead.
/// At most one chunk waits beside the one being sent, so a slow client costs two chunks of memory.
unsafe fn pump(r: *mut ngx_http_request_t, ctx: *mut Ctx) {
    let c = (*r).connection;
    loop {
        let Some(s) = (*ctx).stream.as_mut() else { return };
        // Output nginx could not write yet (postponed small output, such as the header alone,
        // does not count: it leaves with the next buffer).
        if blocked(r) {
            let rc = ngx_http_output_filter(r, ptr::null_mut());
            if rc == NGX_ERROR {
                ngx_http_finalize_request(r, NGX_ERROR);
                return;
            }
            if blocked(r) {
                // Wait for the client; meanwhile keep one chunk fetched ahead.
                if !s.fetching && s.ready.is_none() && s.next <= s.last && !fetch_next(r, ctx) {
                    return;
                }
                (*r).write_event_handler = Some(on_writable);
                let wev = (*c).write;
                let clcf =
                    NgxHttpCoreModule::location_conf(&*r).expect("core loc conf") as *const ngx_http_core_loc_conf_t;
                if (*wev).ready() == 0 && (*wev).delayed() == 0 {
                    ngx_add_timer(wev, (*clcf).send_timeout);
                }
                if ngx_handle_write_event(wev, (*clcf).send_lowat) != NGX_OK {
                    ngx_http_finalize_request(r, NGX_ERROR);
                }
                return;
            }
        }
        // Everything handed to nginx so far is on the wire: its chunks may go.
        (*ctx).sent.clear();
        let Some((i, data)) = s.ready.take() else {
            if !s.fetching && s.next <= s.last {
                fetch_next(r, ctx);
            }
            return;
        };
        let cs = s.meta.chunk_size as u64;
        let base = i as u64 * cs;
        let from = s.start.saturating_sub(base).min(data.len() as u64) as usize;
        let to = (s.end + 1 - base).min(data.len() as u64) as usize;
        let last = i == s.last;
        let slice = data.slice(from..to.max(from));
        let cl = memory_chain(r, &slice, last);
        (*ctx).sent.push(slice);
        if cl.is_null() {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }
        if !last && !s.fetching && s.next <= s.last && !fetch_next(r, ctx) {
            return;
        }
        let rc = ngx_http_output_filter(r, cl);
        if last {
            // nginx finishes sending on its own; our chunks live until the request is freed.
            (*ctx).stream = None;
            ngx_http_finalize_request(r, rc);
            return;
        }
        if rc == NGX_ERROR {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }
    }
}

unsafe fn blocked(r: *mut ngx_http_request_t) -> bool {
    (*(*r).connection).buffered() != 0 || (*r).buffered() != 0
}

/// Fetches the next chunk. False when the request was finalized instead.
unsafe fn fetch_next(r: *mut ngx_http_request_t, ctx: *mut Ctx) -> bool {
    let Some(s) = (*ctx).stream.as_mut() else { return false };
    let Job::BlobFirst { kind, stream, rendition, msn } = &s.job else {
        ngx_http_finalize_request(r, NGX_ERROR);
        return false;
    };
    let job = Job::BlobChunk {
        kind: *kind,
        stream: stream.clone(),
        rendition: rendition.clone(),
        msn: *msn,
        meta: s.meta,
        chunk: s.next,
    };
    s.next += 1;
    s.fetching = true;
    if submit(ctx, job).is_err() {
        // Headers are out: the only honest answer is to cut the connection.
        ngx_http_finalize_request(r, NGX_ERROR);
        return false;
    }
    true
}

/// The client can take more data.
unsafe extern "C" fn on_writable(r: *mut ngx_http_request_t) {
    let c = (*r).connection;
    let wev = (*c).write;
    if (*wev).timedout() != 0 {
        (*c).set_timedout(1);
        ngx_log_error!(NGX_LOG_INFO, (*c).log, "hls_dvr: client timed out");
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT as ngx_int_t);
        return;
    }
    if (*wev).timer_set() != 0 {
        ngx_del_timer(wev);
    }
    pump(r, ctx_of(r));
}
