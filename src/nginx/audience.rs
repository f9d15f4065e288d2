//! Viewers counted by nginx (ARCHITECTURE.md, "Audience"): the audience zone, the session a
//! request belongs to, and what its log phase adds to the board.
//!
//! The zone holds one [`Audience`] of atomics (src/edge/audience.rs), mapped at the same address
//! in every worker: plain shared memory, never an nginx structure, so the runtime's threads seal
//! and read it too.

use std::ffi::c_void;
use std::mem::size_of;

use ngx::ffi::{ngx_int_t, ngx_shm_zone_t};
use ngx::http::Request;

use crate::config::LocConf;
use crate::handler::Ctx;
use crate::http::RequestExt;
use hls_dvr_core::audience::Place;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::route::{self, ByteRange};
use hls_dvr_core::session;
use hls_dvr_edge::audience::{self, Audience, Viewer, Visit};
use hls_dvr_edge::counters::RequestKind;
use hls_dvr_edge::serve::Job;
use hls_dvr_edge::session::viewer_hash;

/// The zone's name in nginx (one per configuration).
pub const ZONE: &str = "hls_dvr_audience";

/// The board, and room for the slab pool's own bookkeeping (a descriptor per 4 KiB page).
pub fn zone_size() -> usize {
    let board = size_of::<Audience>();
    (board + board / 32 + (64 << 10)).next_multiple_of(4096)
}

/// Called by nginx when the zone is mapped: a board of zeros, or the previous configuration's
/// (a reload loses no minute).
pub unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls this with this module's zone, mapped, in the master; all-zero bytes
    // are a valid, empty `Audience` (atomics only).
    unsafe { crate::zone::zeroed_data::<Audience>(zone, old) }
}

/// Makes the configuration's board this worker's (a worker starting).
///
/// # Safety
/// `zone` is the audience zone of the running cycle, initialised by [`init_zone`].
pub unsafe fn attach(zone: *mut ngx_shm_zone_t) {
    // SAFETY: as the caller promises: the zone stays mapped for the worker's life.
    audience::attach(unsafe { &*((*zone).data as *const Audience) });
}

/// The session id a playlist's answer carries in the URIs it lists, and whether the request
/// begins the session: the id it came with, or a new one for a multivariant playlist without
/// one. None where ids are not carried (sessions off, or the site's own key) and for what is not
/// a playlist (its id, if any, is read from its query when it is counted).
pub fn session_for(r: &Request, lc: &LocConf, job: &Job) -> (Option<String>, bool) {
    if !matches!(job, Job::Master { .. } | Job::Media { .. }) {
        return (None, false);
    }
    let Some(key) = lc.session_secret.as_ref().filter(|_| lc.sessions() && lc.session_key.is_none()) else {
        return (None, false);
    };
    let args = std::str::from_utf8(r.args()).unwrap_or("");
    match session::find(args) {
        Some(id) => (Some(id.to_string()), false),
        None if matches!(job, Job::Master { .. }) => (Some(key.issue()), true),
        None => (None, false),
    }
}

/// Counts a finished request of a location with `hls_dvr_sessions on` on the board, as
/// `viewer` (see [`viewer`]): what it asked for (`kind`; stream, rendition, and the segment's
/// msn for a segment) and its status.
pub fn count(
    r: &Request,
    viewer: Viewer,
    new_session: bool,
    kind: RequestKind,
    (stream, rendition, msn): (&str, &str, Option<i64>),
    status: u16,
) {
    let Some(board) = audience::board() else { return };
    // Viewers are who got media or playlists: not errors, not bad paths.
    if stream.is_empty() || !(200..400).contains(&status) {
        return;
    }
    let place = match kind {
        RequestKind::Media => Some(Place::of_query(std::str::from_utf8(r.args()).unwrap_or(""))),
        RequestKind::Clip => Some(Place::Clip),
        _ => None,
    };
    // A whole segment's media time counts as watched, not a range of it. Players such as ffmpeg
    // ask for every segment with `Range: bytes=0-`, which is the whole of it (206).
    let whole = status == 200
        || (status == 206
            && r.range().and_then(|h| std::str::from_utf8(h).ok()).is_some_and(|h| {
                // Against the largest size: a range open from 0 stays open.
                matches!(route::parse_range(h, u64::MAX), ByteRange::Part { start: 0, end } if end == u64::MAX - 1)
            }));
    let segment = msn.filter(|_| whole);
    let bytes = r.bytes_sent();
    board.record(now_ms(), &Visit { stream, rendition, viewer, place, new_session, bytes, segment });
}

/// Ids this worker verified lately, by hash (direct-mapped): a viewer's every request need not
/// compute the HMAC again. Only the nginx thread uses it.
const VERIFIED: usize = 8192;
thread_local! {
    static RECENTLY_VERIFIED: std::cell::RefCell<Vec<u64>> = std::cell::RefCell::new(vec![0; VERIFIED]);
}

/// Whether the id of hash `h` is genuine: remembered, or `check`ed (and remembered if so).
fn verified(h: u64, check: impl FnOnce() -> bool) -> bool {
    RECENTLY_VERIFIED.with(|v| {
        let mut v = v.borrow_mut();
        let slot = (h as usize) % VERIFIED;
        if v[slot] == h && h != 0 {
            return true;
        }
        let ok = check();
        if ok {
            v[slot] = h;
        }
        ok
    })
}

/// Who a request counts as, and whether it began its session: the site's key, else its session
/// id (checked against the secret), else its address and user agent.
pub fn viewer(r: &mut Request, lc: &LocConf, ctx: Option<&Ctx>) -> (Viewer, bool) {
    let new_session = ctx.is_some_and(|c| c.new_session);
    if let Some(index) = lc.session_key {
        if let Some(v) = r.variable(index) {
            return (Viewer::Session(viewer_hash(&[b"key", v])), new_session);
        }
    }
    let args = std::str::from_utf8(r.args()).unwrap_or("");
    if let Some(id) = ctx.and_then(|c| c.session.as_deref()).or_else(|| session::find(args)) {
        let h = viewer_hash(&[b"id", id.as_bytes()]);
        return match &lc.session_secret {
            Some(key) if !verified(h, || key.verify(id)) => (Viewer::Forged(h), false),
            _ => (Viewer::Session(h), new_session),
        };
    }
    let (addr, agent) = r.client();
    (Viewer::Session(viewer_hash(&[b"client", addr, agent])), new_session)
}
