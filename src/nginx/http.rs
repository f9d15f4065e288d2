//! The one adapter between the module and nginx's request structure: what the module needs of a
//! request that ngx's [`Request`] does not offer. Everything else in the module takes
//! `&mut Request` and calls these methods; no other file reads or writes the request's fields.
//!
//! Safety: a `&mut Request` is a live request on the worker's nginx thread. nginx guarantees it
//! for the handlers it calls; the bridge hands out a request only while its job is pending, and
//! the request's pool cleanup removes the job before the request is freed (handler.rs). Two
//! operations end that guarantee and are `unsafe` for it: [`RequestExt::finalize`] may free the
//! request, and [`RequestExt::send_held`] lends nginx memory that must outlive the request.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::{self, NonNull};

use ngx::ffi::{
    ngx_add_timer, ngx_buf_t, ngx_chain_t, ngx_connection_t, ngx_del_timer, ngx_event_t, ngx_handle_write_event,
    ngx_http_core_loc_conf_t, ngx_http_event_handler_pt, ngx_http_finalize_request, ngx_http_output_filter,
    ngx_http_run_posted_requests, ngx_http_send_header, ngx_http_test_reading, ngx_int_t, ngx_palloc, ngx_pcalloc,
    ngx_pnalloc, ngx_pool_cleanup_add, ngx_str_t,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule, Request};

pub const NGX_OK: ngx_int_t = 0;
pub const NGX_ERROR: ngx_int_t = -1;
pub const NGX_DONE: ngx_int_t = -4;

fn bytes(s: &ngx_str_t) -> &[u8] {
    if s.len == 0 || s.data.is_null() {
        &[]
    } else {
        // SAFETY: nginx strings point at `len` readable bytes that live as long as their owner.
        unsafe { std::slice::from_raw_parts(s.data, s.len) }
    }
}

/// The event a request's timers fire, and the request they belong to (set as the event's data).
///
/// # Safety
/// `ev` is an event whose data [`RequestExt::arm`] set to a request that is still alive: the
/// request's cleanup deletes its timers before the request is freed.
pub unsafe fn request_of<'a>(ev: *mut ngx_event_t) -> &'a mut Request {
    // SAFETY: as the caller promises; `Request` is a transparent wrapper of nginx's request.
    unsafe { &mut *((*ev).data as *mut Request) }
}

/// Runs the requests a finalization posted (subrequests, HTTP/2 streams): the last step of an
/// event handler that is not nginx's own request handler.
pub fn run_posted(c: *mut ngx_connection_t) {
    // SAFETY: `c` is the connection of a request handled in this event, taken before it was
    // finalized; nginx keeps a connection at least until its posted requests ran.
    unsafe { ngx_http_run_posted_requests(c) }
}

pub trait RequestExt {
    /// The path, undecoded.
    fn uri(&self) -> &[u8];
    /// The query string, undecoded, without its `?`.
    fn args(&self) -> &[u8];
    /// The `Range` header's value, if any.
    fn range(&self) -> Option<&[u8]>;
    /// The `If-Range` header's value.
    fn if_range(&self) -> Option<&[u8]>;

    /// Whether the method is one of `mask` (`NGX_HTTP_GET | ...`).
    fn method_in(&self, mask: u32) -> bool;
    fn set_status_code(&mut self, status: u16);
    /// The status set so far (0 when none was).
    fn status_code(&self) -> usize;
    fn set_content_length(&mut self, n: u64);
    fn set_content_type(&mut self, t: &'static str);
    fn add_header(&mut self, key: &str, value: &str);
    fn header_sent(&self) -> bool;
    /// Bytes sent to the client on the request's connection.
    fn bytes_sent(&self) -> u64;
    /// `s` copied into the request's pool, so it lives as long as the request.
    fn pool_copy(&self, s: &[u8]) -> Option<&[u8]>;
    /// Sends the header; an error or a header-only answer comes back as what to finalize with.
    fn send_header_rc(&mut self) -> Result<(), ngx_int_t>;
    /// Lends nginx `data` as the next body buffer (the last one when `last`) and runs the
    /// output filters.
    ///
    /// # Safety
    /// `data` stays valid and unchanged until the request is freed (the caller keeps it in the
    /// request's state, its pool or a pinned cache entry).
    unsafe fn send_held(&mut self, data: &[u8], last: bool) -> ngx_int_t;
    /// Lets nginx write what it holds (output filters with no new buffer).
    fn flush(&mut self) -> ngx_int_t;
    /// nginx holds output it could not write yet.
    fn blocked(&self) -> bool;
    /// Ends the request with `rc`.
    ///
    /// # Safety
    /// Nothing touches the request or its state afterwards: it may be freed.
    unsafe fn finalize(&mut self, rc: ngx_int_t);
    /// The request stays open after the content handler returns (`NGX_DONE`), for an answer
    /// that comes later; a client that goes away meanwhile is noticed.
    fn keep_open(&mut self);
    /// Waits for the client to take more output: `on_writable` runs when it can (or times out).
    /// False when nginx could not watch the connection.
    fn wait_writable(&mut self, on_writable: ngx_http_event_handler_pt) -> bool;
    /// The write wait timed out (and the connection is marked so); otherwise its timer is
    /// cleared.
    fn write_timed_out(&mut self) -> bool;
    /// A timer event of this request: `handler` runs with the request as the event's data.
    fn arm(&mut self, ev: &mut ngx_event_t, handler: unsafe extern "C" fn(*mut ngx_event_t));
    /// Room for a `T` in the request's pool, dropped by `cleanup` when the pool is freed. The
    /// memory is uninitialised: the caller writes it before the pool can be freed.
    fn add_cleanup<T>(&mut self, cleanup: unsafe extern "C" fn(*mut c_void)) -> Option<NonNull<T>>;
    /// The module context slot `index` of this request.
    fn ctx_slot(&self, index: usize) -> *mut c_void;
    fn set_ctx_slot(&mut self, index: usize, value: *mut c_void);
    /// The client's address as text, and its `User-Agent` (empty when absent).
    fn client(&self) -> (&[u8], &[u8]);
    /// The value of the variable of index `index` (from `ngx_http_get_variable_index`), if set.
    fn variable(&mut self, index: usize) -> Option<&[u8]>;
}

impl RequestExt for Request {
    fn client(&self) -> (&[u8], &[u8]) {
        let r = self.as_ref();
        let ua = r.headers_in.user_agent;
        // SAFETY: a live request's connection, and its non-null header element.
        unsafe { (bytes(&(*r.connection).addr_text), if ua.is_null() { &[] } else { bytes(&(*ua).value) }) }
    }

    fn variable(&mut self, index: usize) -> Option<&[u8]> {
        // SAFETY: a live request on its thread and an index nginx gave at configuration; the
        // value lives in the request's pool.
        unsafe {
            let v = ngx::ffi::ngx_http_get_indexed_variable(self.as_mut(), index);
            if v.is_null() || (*v).not_found() != 0 || (*v).valid() == 0 || (*v).len() == 0 {
                return None;
            }
            Some(std::slice::from_raw_parts((*v).data, (*v).len() as usize))
        }
    }

    fn uri(&self) -> &[u8] {
        bytes(&self.as_ref().uri)
    }

    fn args(&self) -> &[u8] {
        bytes(&self.as_ref().args)
    }

    fn range(&self) -> Option<&[u8]> {
        let h = self.as_ref().headers_in.range;
        // SAFETY: a non-null header element of a live request.
        (!h.is_null()).then(|| bytes(unsafe { &(*h).value }))
    }

    fn if_range(&self) -> Option<&[u8]> {
        let h = self.as_ref().headers_in.if_range;
        // SAFETY: a non-null header element of a live request.
        (!h.is_null()).then(|| bytes(unsafe { &(*h).value }))
    }

    fn method_in(&self, mask: u32) -> bool {
        self.as_ref().method as u32 & mask != 0
    }

    fn set_status_code(&mut self, status: u16) {
        self.as_mut().headers_out.status = status as usize;
    }

    fn status_code(&self) -> usize {
        self.as_ref().headers_out.status
    }

    fn set_content_length(&mut self, n: u64) {
        self.as_mut().headers_out.content_length_n = n as _;
    }

    fn set_content_type(&mut self, t: &'static str) {
        let h = &mut self.as_mut().headers_out;
        h.content_type = ngx_str_t { len: t.len(), data: t.as_ptr() as *mut u8 };
        h.content_type_len = t.len();
        h.content_type_lowcase = ptr::null_mut();
    }

    fn add_header(&mut self, key: &str, value: &str) {
        // A header that does not fit the pool is left out: nginx logs the allocation failure.
        let _ = self.add_header_out(key, value);
    }

    fn header_sent(&self) -> bool {
        self.as_ref().header_sent() != 0
    }

    fn bytes_sent(&self) -> u64 {
        // SAFETY: a live request's connection.
        unsafe { (*self.connection()).sent.max(0) as u64 }
    }

    fn pool_copy(&self, s: &[u8]) -> Option<&[u8]> {
        if s.is_empty() {
            return Some(&[]);
        }
        // SAFETY: the request's pool; the copy lives until the pool (the request) is freed.
        unsafe {
            let p = ngx_pnalloc(self.as_ref().pool, s.len()) as *mut u8;
            if p.is_null() {
                return None;
            }
            ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
            Some(std::slice::from_raw_parts(p, s.len()))
        }
    }

    fn send_header_rc(&mut self) -> Result<(), ngx_int_t> {
        // SAFETY: a live request whose headers are set.
        let rc = unsafe { ngx_http_send_header(self.as_mut()) };
        if rc == NGX_ERROR || rc > NGX_OK || self.header_only() {
            return Err(rc);
        }
        Ok(())
    }

    unsafe fn send_held(&mut self, data: &[u8], last: bool) -> ngx_int_t {
        let main = self.is_main();
        let pool = self.as_ref().pool;
        // SAFETY: buffers from the request's pool over memory the caller keeps (see above);
        // read-only, so filters copy rather than modify it.
        unsafe {
            let b = ngx_pcalloc(pool, size_of::<ngx_buf_t>()) as *mut ngx_buf_t;
            let cl = ngx_palloc(pool, size_of::<ngx_chain_t>()) as *mut ngx_chain_t;
            if b.is_null() || cl.is_null() {
                return NGX_ERROR;
            }
            let p = data.as_ptr() as *mut u8;
            (*b).start = p;
            (*b).pos = p;
            (*b).last = p.add(data.len());
            (*b).end = (*b).last;
            (*b).set_memory(u32::from(!data.is_empty()));
            if last {
                if main {
                    (*b).set_last_buf(1);
                }
                (*b).set_last_in_chain(1);
            } else {
                (*b).set_flush(1);
            }
            (*cl).buf = b;
            (*cl).next = ptr::null_mut();
            ngx_http_output_filter(self.as_mut(), cl)
        }
    }

    fn flush(&mut self) -> ngx_int_t {
        // SAFETY: a live request; no new buffer.
        unsafe { ngx_http_output_filter(self.as_mut(), ptr::null_mut()) }
    }

    fn blocked(&self) -> bool {
        // SAFETY: a live request's connection.
        unsafe { (*self.connection()).buffered() != 0 || self.as_ref().buffered() != 0 }
    }

    unsafe fn finalize(&mut self, rc: ngx_int_t) {
        // SAFETY: a live request; the caller does not touch it afterwards.
        unsafe { ngx_http_finalize_request(self.as_mut(), rc) }
    }

    fn keep_open(&mut self) {
        let r = self.as_mut();
        r.read_event_handler = Some(ngx_http_test_reading);
        // SAFETY: the main request of a live request.
        unsafe { (*r.main).set_count((*r.main).count() + 1) };
    }

    fn wait_writable(&mut self, on_writable: ngx_http_event_handler_pt) -> bool {
        let Some(clcf) = NgxHttpCoreModule::location_conf(self) else { return false };
        let clcf: &ngx_http_core_loc_conf_t = clcf;
        let (send_timeout, send_lowat) = (clcf.send_timeout, clcf.send_lowat);
        self.as_mut().write_event_handler = on_writable;
        // SAFETY: the write event of a live request's connection.
        unsafe {
            let wev = (*self.connection()).write;
            if (*wev).ready() == 0 && (*wev).delayed() == 0 {
                ngx_add_timer(wev, send_timeout);
            }
            ngx_handle_write_event(wev, send_lowat) == NGX_OK
        }
    }

    fn write_timed_out(&mut self) -> bool {
        // SAFETY: the write event of a live request's connection.
        unsafe {
            let c = self.connection();
            let wev = (*c).write;
            if (*wev).timedout() != 0 {
                (*c).set_timedout(1);
                return true;
            }
            if (*wev).timer_set() != 0 {
                ngx_del_timer(wev);
            }
        }
        false
    }

    fn arm(&mut self, ev: &mut ngx_event_t, handler: unsafe extern "C" fn(*mut ngx_event_t)) {
        ev.handler = Some(handler);
        ev.data = self as *mut Request as *mut c_void;
        ev.log = self.log();
    }

    fn add_cleanup<T>(&mut self, cleanup: unsafe extern "C" fn(*mut c_void)) -> Option<NonNull<T>> {
        // SAFETY: the request's pool; nginx aligns cleanup data for any type.
        unsafe {
            let cln = ngx_pool_cleanup_add(self.as_ref().pool, size_of::<T>());
            if cln.is_null() {
                return None;
            }
            (*cln).handler = Some(cleanup);
            NonNull::new((*cln).data as *mut T)
        }
    }

    fn ctx_slot(&self, index: usize) -> *mut c_void {
        // SAFETY: every request has a context slot per HTTP module; `index` is a module's.
        unsafe { *self.as_ref().ctx.add(index) }
    }

    fn set_ctx_slot(&mut self, index: usize, value: *mut c_void) {
        // SAFETY: as for `ctx_slot`.
        unsafe { *self.as_ref().ctx.add(index) = value };
    }
}

/// Starts a timer of a request's event.
pub fn add_timer(ev: &mut ngx_event_t, ms: ngx::ffi::ngx_msec_t) {
    // SAFETY: an event of a live request, armed by `RequestExt::arm`; the cleanup deletes it.
    unsafe { ngx_add_timer(ev, ms) }
}

/// Stops a timer if it runs.
pub fn del_timer(ev: &mut ngx_event_t) {
    if ev.timer_set() != 0 {
        // SAFETY: a timer set by `add_timer` on this thread.
        unsafe { ngx_del_timer(ev) }
    }
}
