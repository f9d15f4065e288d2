//! The pump: a body streamed out of the store unit by unit, one unit fetched ahead while nginx
//! sends the current one, so a slow client holds two units of memory at most. A segment's units
//! are its blob's chunks; a clip file's are its header and then its stored segments, a few at a
//! time (ARCHITECTURE.md, "Clips as files"). Ranges are served from the units that cover them.
//!
//! Every function takes a live request and its state (see handler.rs), and finalizes the request
//! only as its last step: nothing touches either afterwards. Chunks handed to nginx stay in the
//! state's `sent` until nginx has written them (or the request is freed).

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use ngx::ffi::{ngx_int_t, NGX_HTTP_REQUEST_TIME_OUT, NGX_LOG_INFO};
use ngx::http::Request;
use ngx::ngx_log_error;

use crate::handler::{ctx_of, submit, Ctx};
use crate::http::{RequestExt, NGX_ERROR, NGX_OK};
use crate::response;
use hls_dvr_edge::serve::Job;
use hls_dvr_store::clip::ClipFile;
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

/// What is streamed, and how its units are fetched.
enum Source {
    /// A blob: its chunks.
    Blob { blob: Blob, meta: BlobMeta },
    /// A clip file: unit 0 is its header (in memory), unit `k` its unit of pieces `k - 1`.
    File(Arc<ClipFile>),
}

impl Source {
    /// Where unit `i` starts in the body.
    fn unit_start(&self, i: u32) -> u64 {
        match self {
            Source::Blob { meta, .. } => meta.chunk_start(i),
            Source::File(_) if i == 0 => 0,
            Source::File(f) => f.starts.get(i as usize - 1).copied().unwrap_or(f.len),
        }
    }

    /// The units holding bytes `start..=end`.
    fn units_for(&self, start: u64, end: u64) -> RangeInclusive<u32> {
        match self {
            Source::Blob { meta, .. } => meta.chunks_for(start, end),
            Source::File(f) => {
                // The unit holding a byte: the last one starting at or before it.
                let at = |b: u64| f.starts.partition_point(|s| *s <= b) as u32;
                at(start)..=at(end)
            }
        }
    }

    fn job(&self, i: u32) -> Job {
        match self {
            Source::Blob { blob: b, meta } => Job::BlobChunk {
                kind: b.kind,
                stream: b.stream.clone(),
                rendition: b.rendition.clone(),
                msn: b.msn,
                meta: meta.clone(),
                chunk: i,
            },
            Source::File(f) => Job::ClipUnit(f.pieces[f.units[i as usize - 1].clone()].to_vec()),
        }
    }
}

/// A body being streamed.
pub struct Streaming {
    source: Source,
    /// Bytes `start..=end` of the body are sent.
    start: u64,
    end: u64,
    /// Next unit to fetch, and the last one needed.
    next: u32,
    last: u32,
    fetching: bool,
    /// A fetched unit not yet handed to nginx.
    ready: Option<(u32, Vec<Bytes>)>,
}

impl Streaming {
    fn new(source: Source, start: u64, end: u64) -> Streaming {
        let units = source.units_for(start, end);
        Streaming { source, start, end, next: *units.start(), last: *units.end(), fetching: false, ready: None }
    }

    fn wants_fetch(&self) -> bool {
        !self.fetching && self.ready.is_none() && self.next <= self.last
    }

    fn fetch_job(&mut self) -> Job {
        let job = self.source.job(self.next);
        self.next += 1;
        self.fetching = true;
        job
    }

    /// The unit the store just sent.
    pub fn arrived(&mut self, data: Vec<Bytes>) {
        self.fetching = false;
        self.ready = Some((self.next - 1, data));
    }

    /// The unit `i` at hand, without a fetch.
    fn have(&mut self, i: u32, data: Vec<Bytes>) {
        if self.next == i {
            self.ready = Some((i, data));
            self.next = i + 1;
        }
    }

    /// The parts of the ready unit inside the range, and whether it is the last.
    fn take_ready(&mut self) -> Option<(Vec<Bytes>, bool)> {
        let (i, data) = self.ready.take()?;
        let mut base = self.source.unit_start(i);
        let mut parts = Vec::with_capacity(data.len());
        for d in data {
            let from = self.start.saturating_sub(base).min(d.len() as u64) as usize;
            let to = (self.end + 1).saturating_sub(base).min(d.len() as u64) as usize;
            base += d.len() as u64;
            if to > from {
                parts.push(d.slice(from..to));
            }
        }
        Some((parts, i == self.last))
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
        return send_last(r, ctx, Vec::new());
    }
    let mut s = Streaming::new(Source::Blob { blob, meta }, start, end_byte);
    s.have(0, vec![first]);
    ctx.stream = Some(s);
    pump(r, ctx);
}

/// A clip file's plan arrived: sends the header (200 or 206, or 416) and starts streaming its
/// header and pieces. A HEAD request ends with the header: no piece is read.
pub fn start_file(r: &mut Request, ctx: &mut Ctx, file: Arc<ClipFile>) {
    let (start, end_byte) = match response::file_headers(r, &file) {
        Ok(range) => range,
        Err(rc) => return end(r, rc),
    };
    if let Err(rc) = r.send_header_rc() {
        return end(r, rc);
    }
    if r.header_only() {
        return end(r, NGX_OK);
    }
    if file.len == 0 {
        return send_last(r, ctx, Vec::new());
    }
    let header = file.header.clone();
    let mut s = Streaming::new(Source::File(file), start, end_byte);
    s.have(0, vec![header]);
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
        let Some((parts, last)) = ctx.stream.as_mut().and_then(Streaming::take_ready) else {
            fetch_ahead(r, ctx);
            return;
        };
        if last {
            ctx.stream = None;
            return send_last(r, ctx, parts);
        }
        ctx.sent.extend(parts.iter().cloned());
        // The next unit is fetched while nginx sends this one.
        if !fetch_ahead(r, ctx) {
            return;
        }
        for part in &parts {
            // SAFETY: `part` shares its memory with the copy kept in `ctx.sent` until nginx wrote it.
            if unsafe { r.send_held(part, false) } == NGX_ERROR {
                return end(r, NGX_ERROR);
            }
        }
    }
}

/// Hands nginx the body's last buffers and finalizes: nginx finishes sending on its own, and the
/// bytes stay in the state until the request is freed.
fn send_last(r: &mut Request, ctx: &mut Ctx, parts: Vec<Bytes>) {
    ctx.sent.extend(parts.iter().cloned());
    let (last, before) = match parts.split_last() {
        Some((last, before)) => (&last[..], before),
        None => (&[][..], &[][..]),
    };
    for part in before {
        // SAFETY: `part` shares its memory with the copy kept in `ctx.sent`.
        if unsafe { r.send_held(part, false) } == NGX_ERROR {
            return end(r, NGX_ERROR);
        }
    }
    // SAFETY: `last` shares its memory with the copy kept in `ctx.sent` (or is empty).
    let rc = unsafe { r.send_held(last, true) };
    end(r, rc);
}

/// Asks the store for the next unit when one is due. False when the request was finalized
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
