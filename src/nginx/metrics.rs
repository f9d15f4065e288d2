//! The shared counters in nginx: their zone, the log-phase handler that counts every request of
//! an `hls_dvr` location, and `hls_dvr_metrics`, which answers them in Prometheus's text format.
//!
//! The zone holds one [`Counters`] of atomics (src/edge/counters.rs), mapped at the same address in every
//! worker. A worker keeps its address in [`COUNTERS`] from `init_process` on; the runtime's threads
//! add store latencies to it through the store's observer. That is plain shared memory, never an
//! nginx structure, so it is safe from any thread.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use ngx::core::Status;
use ngx::ffi::{
    ngx_array_push, ngx_conf_t, ngx_http_handler_pt, ngx_http_phases_NGX_HTTP_LOG_PHASE, ngx_int_t, ngx_shm_zone_t,
    NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_NOT_ALLOWED,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule, Request};
use ngx::http_request_handler;

use crate::handler::ctx_of;
use crate::http::{RequestExt, NGX_ERROR, NGX_OK};
use crate::response;
use crate::HlsDvr;
use hls_dvr_core::prometheus::{Text, CONTENT_TYPE};
use hls_dvr_core::route::{self, Route};
use hls_dvr_edge::counters::{Counters, RequestKind};

/// The zone's name in nginx (one per configuration).
pub const ZONE: &str = "hls_dvr_metrics";

/// The counters, and room for the slab pool's own bookkeeping.
pub fn zone_size() -> usize {
    (size_of::<Counters>() + (64 << 10)).next_multiple_of(4096)
}

/// This worker's counters, set once the worker starts; null in the master.
static COUNTERS: AtomicPtr<Counters> = AtomicPtr::new(ptr::null_mut());

/// The counters, once the worker counts.
pub fn counters() -> Option<&'static Counters> {
    // SAFETY: set from the zone, which stays mapped for the worker's life; `Counters` are atomics.
    unsafe { COUNTERS.load(Ordering::Acquire).as_ref() }
}

/// Called by nginx when the zone is mapped: counters of zeros, or the previous configuration's
/// (counters survive `nginx -s reload`).
pub unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls this with this module's zone, mapped, in the master; all-zero bytes
    // are a valid, empty `Counters` (atomics only).
    unsafe { crate::zone::zeroed_data::<Counters>(zone, old) }
}

/// Takes the counters of the configuration's zone (a worker starting).
///
/// # Safety
/// `zone` is the metrics zone of the running cycle, initialised by [`init_zone`].
pub unsafe fn attach(zone: *mut ngx_shm_zone_t) {
    // SAFETY: as the caller promises.
    COUNTERS.store(unsafe { (*zone).data } as *mut Counters, Ordering::Release);
}

/// Puts [`log_handler`] into the log phase (postconfiguration).
///
/// # Safety
/// `cf` is the `ngx_conf_t` nginx passes to postconfiguration.
pub unsafe fn add_log_handler(cf: *mut ngx_conf_t) -> Result<(), ()> {
    // SAFETY: as the caller promises; the phase's handler array belongs to the http core's main
    // configuration, alive for the cycle.
    unsafe {
        let cmcf = NgxHttpCoreModule::main_conf_mut(&*cf).ok_or(())?;
        let h = ngx_array_push(&mut cmcf.phases[ngx_http_phases_NGX_HTTP_LOG_PHASE as usize].handlers)
            as *mut ngx_http_handler_pt;
        if h.is_null() {
            return Err(());
        }
        *h = Some(log_handler);
    }
    Ok(())
}

/// What a request of an `hls_dvr` location asked for: its kind, stream and rendition (empty for
/// a master playlist or a bad path), borrowed from its path. `prefix` is the location's.
pub fn request_series<'a>(r: &'a Request, prefix: &str) -> (RequestKind, &'a str, &'a str) {
    series(request_route(r, prefix).as_ref())
}

/// The route of a request of an `hls_dvr` location, if its path is one.
fn request_route<'a>(r: &'a Request, prefix: &str) -> Option<Route<'a>> {
    std::str::from_utf8(r.uri()).ok().and_then(|u| u.strip_prefix(prefix)).and_then(|p| route::parse(p).ok())
}

/// What a route asks for (see [`request_series`]).
fn series<'a>(route: Option<&Route<'a>>) -> (RequestKind, &'a str, &'a str) {
    match route.copied() {
        Some(Route::Master { stream }) => (RequestKind::Master, stream, ""),
        Some(
            Route::Media { stream, rendition }
            | Route::IFrames { stream, rendition }
            | Route::Images { stream, rendition },
        ) => (RequestKind::Media, stream, rendition),
        // A thumbnail is counted with the segment it shows.
        Some(Route::Thumbnail { stream, rendition, .. }) => (RequestKind::Segment, stream, rendition),
        Some(Route::Segment { stream, rendition, .. }) => (RequestKind::Segment, stream, rendition),
        Some(Route::Init { stream, rendition, .. }) => (RequestKind::Init, stream, rendition),
        Some(Route::Part { stream, rendition, .. }) => (RequestKind::Part, stream, rendition),
        Some(Route::Clip { stream, rendition, .. }) => (RequestKind::Clip, stream, rendition.unwrap_or("")),
        None => (RequestKind::Invalid, "", ""),
    }
}

http_request_handler!(log_handler, |r: &mut Request| {
    count(r);
    Status::NGX_OK
});

/// Counts a finished request of an `hls_dvr` location: kind, stream, rendition, status, bytes;
/// and, where sessions are on, its viewer (audience.rs).
fn count(r: &mut Request) {
    let Some(counters) = counters() else { return };
    let Some(lc) = HlsDvr::location_conf(r) else { return };
    if !lc.enabled || !r.is_main() {
        return;
    }
    // Who the viewer is, first: reading a variable needs the request alone.
    let viewer = lc.sessions().then(|| {
        // SAFETY: the log phase holds no other reference to the request's state.
        let ctx = unsafe { ctx_of(r) }.map(|c| &*c);
        crate::audience::viewer(r, lc, ctx)
    });
    let route = request_route(r, &lc.prefix);
    let (kind, stream, rendition) = series(route.as_ref());
    // nginx logs a client that went away before the answer as 499, with no status set.
    let status = match r.status_code() {
        0 => 499,
        s => s.min(u16::MAX as usize) as u16,
    };
    counters.request(kind, stream, rendition, status, r.bytes_sent());
    if let Some((viewer, new_session)) = viewer {
        let segment = match route {
            Some(Route::Segment { msn, .. }) => Some(msn),
            _ => None,
        };
        crate::audience::count(r, viewer, new_session, kind, (stream, rendition, segment), status);
    }
}

http_request_handler!(handler, |r: &mut Request| Status(metrics(r)));

/// The content handler of `hls_dvr_metrics` locations.
pub const HANDLER: ngx_http_handler_pt = Some(handler);

/// `hls_dvr_metrics`'s content handler: the counters of every worker, as one text.
fn metrics(r: &mut Request) -> ngx_int_t {
    if !r.method_in(NGX_HTTP_GET | NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    let rc = r.discard_request_body().0;
    if rc != NGX_OK {
        return rc;
    }
    let mut text = Text::default();
    match HlsDvr::main_conf(r).and_then(|m| m.metrics_zone) {
        // SAFETY: a zone of the running configuration, set up by init_zone; `Counters` are atomics.
        Some(zone) => unsafe { (*((*zone.as_ptr()).data as *const Counters)).render(&mut text) },
        None => return NGX_ERROR,
    }
    if let Some(board) = hls_dvr_edge::audience::board() {
        board.render(hls_dvr_core::clock::now_ms(), &mut text);
    }
    response::body(r, 200, CONTENT_TYPE, text.out.as_bytes(), Some("no-store"))
}
