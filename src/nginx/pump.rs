//! The segment pump: a blob streamed out of the store chunk by chunk, one chunk fetched ahead
//! while nginx sends the current one, so a slow client holds two chunks of memory at most.
//! Ranges are served from the chunks that cover them.
//!
//! Every function takes a live request and its state (see handler.rs), and finalizes the request
//! only as its last step: nothing touches either afterwards. Chunks handed to nginx stay in the
//! state's `sent` until nginx has written them (or the request is freed).

use bytes::Bytes;
use ngx::ffi::{ngx_int_t, NGX_HTTP_REQUEST_TIME_OUT, NGX_LOG_INFO};
use ngx::http::Request;
use ngx::ngx_log_error;

use crate::handler::{ctx_of, submit, Ctx};
use crate::http::{RequestExt, NGX_ERROR};
use crate::response;
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
            meta: self.meta.clone(),
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
        let base = self.meta.chunk_start(i);
        let from = self.start.saturating_sub(base).min(data.len() as u64) as usize;
        let to = (self.end + 1 - base).min(data.len() as u64) as usize;
        Some((data.slice(from..to.max(from)), i == self.last))
    }
}

/// Chunk 0 arrived: sends the header (200 or 206, or 416) and starts streaming.
pub fn start(r: &mut Request, ctx: &mut Ctx, meta: BlobMeta, first: Bytes) {
    let Some(blob) = ctx.blob.take() else {
        return end(r, NGX_ERROR);
    };
    let (start, end_byte) = match response::blob_headers(r, meta.size, blob.content_type) {
        Ok(range) => range,
        Err(rc) => return end(r, rc),
    };
    if let Err(rc) = r.send_header_rc() {
        return end(r, rc);
    }
    if meta.size == 0 {
        return send_last(r, ctx, Bytes::new());
    }
    let chunks = meta.chunks_for(start, end_byte);
    let (first_chunk, last_chunk) = (*chunks.start(), *chunks.end());
    let mut s = Streaming {
        blob,
        meta,
        start,
        end: end_byte,
        next: first_chunk,
        last: last_chunk,
        fetching: false,
        ready: None,
    };
    if first_chunk == 0 {
        s.ready = Some((0, first));
        s.next = 1;
    }
    ctx.stream = Some(s);
    pump(r, ctx);
}

/// Ends the request: the last use of it and its state on this path.
fn end(r: &mut Request, rc: ngx_int_t) {
    // SAFETY: every caller returns right after, touching neither the request nor its state.
    unsafe { r.finalize(rc) }
}

/// Moves the stream forward: flush what nginx holds, hand it the next chunk, fetch ahead.
pub fn pump(r: &mut Request, ctx: &mut Ctx) {
    while ctx.stream.is_some() {
        // Output nginx could not write yet (postponed small output, such as the header alone,
        // does not count: it leaves with the next buffer).
        if r.blocked() {
            if r.flush() == NGX_ERROR {
                return end(r, NGX_ERROR);
            }
            if r.blocked() {
                // Wait for the client; meanwhile keep one chunk fetched ahead.
                if fetch_ahead(r, ctx) && !r.wait_writable(Some(on_writable)) {
                    end(r, NGX_ERROR);
                }
                return;
            }
        }
        // Everything handed to nginx so far is on the wire: its chunks may go.
        ctx.sent.clear();
        let Some((part, last)) = ctx.stream.as_mut().and_then(Streaming::take_ready) else {
            fetch_ahead(r, ctx);
            return;
        };
        if last {
            ctx.stream = None;
            return send_last(r, ctx, part);
        }
        ctx.sent.push(part.clone());
        // The next chunk is fetched while nginx sends this one.
        if !fetch_ahead(r, ctx) {
            return;
        }
        // SAFETY: `part` shares its memory with the copy kept in `ctx.sent` until nginx wrote it.
        if unsafe { r.send_held(&part, false) } == NGX_ERROR {
            return end(r, NGX_ERROR);
        }
    }
}

/// Hands nginx the body's last buffer and finalizes: nginx finishes sending on its own, and the
/// bytes stay in the state until the request is freed.
fn send_last(r: &mut Request, ctx: &mut Ctx, data: Bytes) {
    ctx.sent.push(data.clone());
    // SAFETY: `data` shares its memory with the copy kept in `ctx.sent`.
    let rc = unsafe { r.send_held(&data, true) };
    end(r, rc);
}

/// Asks the store for the next chunk when one is due. False when the request was finalized
/// instead (the headers are out: cutting the connection is the only honest answer).
fn fetch_ahead(r: &mut Request, ctx: &mut Ctx) -> bool {
    let job = match ctx.stream.as_mut() {
        Some(s) if s.wants_fetch() => s.fetch_job(),
        _ => return true,
    };
    if submit(r, ctx, job).is_err() {
        end(r, NGX_ERROR);
        return false;
    }
    true
}

/// The client can take more data.
unsafe extern "C" fn on_writable(r: *mut ngx::ffi::ngx_http_request_t) {
    // SAFETY: nginx calls its request's write handler with the live request; the one reference to
    // its state in this event.
    let (r, ctx) = unsafe {
        let r = Request::from_ngx_http_request(r);
        {
            let ctx = ctx_of(r).expect("a streaming request has a context");
            (r, ctx)
        }
    };
    if r.write_timed_out() {
        ngx_log_error!(NGX_LOG_INFO, r.log(), "hls_dvr: client timed out");
        return end(r, NGX_HTTP_REQUEST_TIME_OUT as _);
    }
    pump(r, ctx);
}
