//! The segment pump: a blob streamed out of the store chunk by chunk, one chunk fetched ahead
//! while nginx sends the current one, so a slow client holds two chunks of memory at most.
//! Ranges are served from the chunks that cover them.
//!
//! Safety: every function takes a request `r` alive for the call and its context `ctx`, on the
//! worker's nginx thread (see handler.rs). Borrows of the context end before any call that may
//! finalize the request, and nothing touches `r` or `ctx` after such a call.

use std::mem::size_of;
use std::ptr;

use bytes::Bytes;
use ngx::ffi::{
    ngx_add_timer, ngx_buf_t, ngx_chain_t, ngx_del_timer, ngx_handle_write_event, ngx_http_core_loc_conf_t,
    ngx_http_finalize_request, ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header, ngx_int_t, ngx_palloc,
    ngx_pcalloc, NGX_HTTP_PARTIAL_CONTENT, NGX_HTTP_RANGE_NOT_SATISFIABLE, NGX_HTTP_REQUEST_TIME_OUT, NGX_LOG_INFO,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};
use ngx::ngx_log_error;

use crate::handler::{ctx_of, submit, Ctx, NGX_ERROR, NGX_OK};
use crate::headers;
use hls_dvr_core::route::{self, ByteRange};
use hls_dvr_edge::serve::Job;
use hls_dvr_store::{BlobKind, BlobMeta};

/// What a segment or init segment request fetches.
#[derive(Debug, Clone)]
pub struct Blob {
    pub kind: BlobKind,
    pub stream: String,
    pub rendition: String,
    pub msn: i64,
    pub content_type: &'static str,
}

impl Blob {
    /// Chunk 0 with the blob's metadata.
    pub fn first_job(&self) -> Job {
        Job::BlobFirst {
            kind: self.kind,
            stream: self.stream.clone(),
            rendition: self.rendition.clone(),
            msn: self.msn,
        }
    }
}

/// A blob being streamed.
pub struct Streaming {
    blob: Blob,
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

impl Streaming {
    fn wants_fetch(&self) -> bool {
        !self.fetching && self.ready.is_none() && self.next <= self.last
    }

    fn fetch_job(&mut self) -> Job {
        let b = &self.blob;
        let job = Job::BlobChunk {
            kind: b.kind,
            stream: b.stream.clone(),
            rendition: b.rendition.clone(),
            msn: b.msn,
            meta: self.meta,
            chunk: self.next,
        };
        self.next += 1;
        self.fetching = true;
        job
    }

    /// The chunk the store just sent.
    pub fn arrived(&mut self, data: Bytes) {
        self.fetching = false;
        self.ready = Some((self.next - 1, data));
    }

    /// The part of the ready chunk inside the range, and whether it is the last.
    fn take_ready(&mut self) -> Option<(Bytes, bool)> {
        let (i, data) = self.ready.take()?;
        let base = i as u64 * self.meta.chunk_size as u64;
        let from = self.start.saturating_sub(base).min(data.len() as u64) as usize;
        let to = (self.end + 1 - base).min(data.len() as u64) as usize;
        Some((data.slice(from..to.max(from)), i == self.last))
    }
}

/// The headers of a segment or init segment of `size` bytes: 200, or 206 for a satisfiable
/// `Range`. The bytes to send, or the status to finalize with (416).
///
/// # Safety
/// `r` is a live request whose header is not sent yet.
pub unsafe fn blob_headers(
    r: *mut ngx_http_request_t,
    size: u64,
    content_type: &'static str,
) -> Result<(u64, u64), ngx_int_t> {
    let range = if (*r).headers_in.range.is_null() {
        ByteRange::Whole
    } else {
        let v = (*(*r).headers_in.range).value;
        match std::str::from_utf8(std::slice::from_raw_parts(v.data, v.len)) {
            Ok(h) => route::parse_range(h, size),
            Err(_) => ByteRange::Whole,
        }
    };
    headers::add(r, "Accept-Ranges", "bytes");
    let (start, end) = match range {
        ByteRange::Unsatisfiable => {
            headers::add(r, "Content-Range", &format!("bytes */{size}"));
            return Err(NGX_HTTP_RANGE_NOT_SATISFIABLE as _);
        }
        ByteRange::Part { start, end } => {
            (*r).headers_out.status = NGX_HTTP_PARTIAL_CONTENT as usize;
            headers::add(r, "Content-Range", &format!("bytes {start}-{end}/{size}"));
            (start, end)
        }
        ByteRange::Whole => {
            (*r).headers_out.status = 200;
            (0, size.saturating_sub(1))
        }
    };
    (*r).headers_out.content_length_n = if size == 0 { 0 } else { (end - start + 1) as _ };
    headers::content_type(r, content_type);
    headers::add(r, "Cache-Control", headers::SEGMENT_CACHE);
    Ok((start, end))
}

/// Sends the header and then `data`, whose memory the caller keeps until the request is freed.
/// Returns what to finalize the request with.
///
/// # Safety
/// `r` is a live request with its headers set.
pub unsafe fn send_held(r: *mut ngx_http_request_t, data: &[u8]) -> ngx_int_t {
    let rc = ngx_http_send_header(r);
    if rc == NGX_ERROR || rc > NGX_OK || (*r).header_only() != 0 {
        return rc;
    }
    let cl = memory_chain(r, data, true);
    if cl.is_null() {
        NGX_ERROR
    } else {
        ngx_http_output_filter(r, cl)
    }
}

/// Chunk 0 arrived: sends the header (200 or 206, or 416) and starts streaming.
///
/// # Safety
/// See the module's safety note.
pub unsafe fn start(r: *mut ngx_http_request_t, ctx: *mut Ctx, meta: BlobMeta, first: Bytes) {
    let Some(blob) = (*ctx).blob.take() else {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    };
    let (start, end) = match blob_headers(r, meta.size, blob.content_type) {
        Ok(range) => range,
        Err(rc) => {
            ngx_http_finalize_request(r, rc);
            return;
        }
    };
    let rc = ngx_http_send_header(r);
    if rc == NGX_ERROR || rc > NGX_OK || (*r).header_only() != 0 {
        ngx_http_finalize_request(r, rc);
        return;
    }
    if meta.size == 0 {
        send_last(r, ctx, Bytes::new());
        return;
    }
    let chunks = meta.chunks_for(start, end);
    let (first_chunk, last_chunk) = (*chunks.start(), *chunks.end());
    let mut s = Streaming { blob, meta, start, end, next: first_chunk, last: last_chunk, fetching: false, ready: None };
    if first_chunk == 0 {
        s.ready = Some((0, first));
        s.next = 1;
    }
    (*ctx).stream = Some(s);
    pump(r, ctx);
}

/// Moves the stream forward: flush what nginx holds, hand it the next chunk, fetch ahead.
///
/// # Safety
/// See the module's safety note.
pub unsafe fn pump(r: *mut ngx_http_request_t, ctx: *mut Ctx) {
    while (*ctx).stream.is_some() {
        // Output nginx could not write yet (postponed small output, such as the header alone,
        // does not count: it leaves with the next buffer).
        if blocked(r) {
            if ngx_http_output_filter(r, ptr::null_mut()) == NGX_ERROR {
                ngx_http_finalize_request(r, NGX_ERROR);
                return;
            }
            if blocked(r) {
                // Wait for the client; meanwhile keep one chunk fetched ahead.
                if fetch_ahead(r, ctx) {
                    wait_for_client(r);
                }
                return;
            }
        }
        // Everything handed to nginx so far is on the wire: its chunks may go.
        (*ctx).sent.clear();
        let Some((part, last)) = (*ctx).stream.as_mut().and_then(Streaming::take_ready) else {
            fetch_ahead(r, ctx);
            return;
        };
        if last {
            (*ctx).stream = None;
            send_last(r, ctx, part);
            return;
        }
        let cl = memory_chain(r, &part, false);
        (*ctx).sent.push(part);
        if cl.is_null() {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }
        // The next chunk is fetched while nginx sends this one.
        if !fetch_ahead(r, ctx) {
            return;
        }
        if ngx_http_output_filter(r, cl) == NGX_ERROR {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }
    }
}

/// Hands nginx the body's last buffer and finalizes: nginx finishes sending on its own, and the
/// bytes stay in the context until the request is freed.
unsafe fn send_last(r: *mut ngx_http_request_t, ctx: *mut Ctx, data: Bytes) {
    let cl = memory_chain(r, &data, true);
    (*ctx).sent.push(data);
    let rc = if cl.is_null() { NGX_ERROR } else { ngx_http_output_filter(r, cl) };
    ngx_http_finalize_request(r, rc);
}

unsafe fn blocked(r: *mut ngx_http_request_t) -> bool {
    (*(*r).connection).buffered() != 0 || (*r).buffered() != 0
}

/// Asks the store for the next chunk when one is due. False when the request was finalized
/// instead (the headers are out: cutting the connection is the only honest answer).
unsafe fn fetch_ahead(r: *mut ngx_http_request_t, ctx: *mut Ctx) -> bool {
    let job = match (*ctx).stream.as_mut() {
        Some(s) if s.wants_fetch() => s.fetch_job(),
        _ => return true,
    };
    if submit(ctx, job).is_err() {
        ngx_http_finalize_request(r, NGX_ERROR);
        return false;
    }
    true
}

unsafe fn wait_for_client(r: *mut ngx_http_request_t) {
    (*r).write_event_handler = Some(on_writable);
    let wev = (*(*r).connection).write;
    let clcf = NgxHttpCoreModule::location_conf(&*r).expect("core loc conf") as *const ngx_http_core_loc_conf_t;
    if (*wev).ready() == 0 && (*wev).delayed() == 0 {
        ngx_add_timer(wev, (*clcf).send_timeout);
    }
    if ngx_handle_write_event(wev, (*clcf).send_lowat) != NGX_OK {
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}

/// The client can take more data.
unsafe extern "C" fn on_writable(r: *mut ngx_http_request_t) {
    let c = (*r).connection;
    let wev = (*c).write;
    if (*wev).timedout() != 0 {
        (*c).set_timedout(1);
        ngx_log_error!(NGX_LOG_INFO, (*c).log, "hls_dvr: client timed out");
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT as _);
        return;
    }
    if (*wev).timer_set() != 0 {
        ngx_del_timer(wev);
    }
    pump(r, ctx_of(r));
}

/// A buffer over `data`, which the caller keeps alive until the request is freed.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn memory_chain(r: *mut ngx_http_request_t, data: &[u8], last: bool) -> *mut ngx_chain_t {
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
