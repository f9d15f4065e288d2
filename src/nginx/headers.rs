//! Response headers: content types, caching, CORS, and the status a store error maps to; plus the
//! short text bodies that carry a refusal's reason.
//!
//! Safety: every function takes a request `r` alive for the call, on the worker's nginx thread
//! (see handler.rs). Strings handed to nginx are `'static` or copied into the request's pool.

use std::ptr;

use ngx::ffi::{
    ngx_http_request_t, ngx_int_t, ngx_list_push, ngx_palloc, ngx_str_t, ngx_table_elt_t, NGX_HTTP_BAD_GATEWAY,
    NGX_HTTP_GATEWAY_TIME_OUT, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_SERVICE_UNAVAILABLE,
};
use ngx::http::HttpModuleLocationConf;

use crate::config::LocConf;
use crate::HlsDvr;
use hls_dvr_store::StoreError;

/// Segments never change once stored: cache them for a day.
pub const SEGMENT_CACHE: &str = "public, max-age=86400, immutable";
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
pub const INIT_TYPE: &str = "video/mp4";
pub const TEXT_TYPE: &str = "text/plain; charset=utf-8";
pub const JSON_TYPE: &str = "application/json";

/// # Safety
/// `r` is a live request of an `hls_dvr` location.
pub unsafe fn loc_conf(r: *mut ngx_http_request_t) -> &'static LocConf {
    HlsDvr::location_conf(&*r).expect("hls_dvr location conf")
}

/// Adds an output header. Header names and values here are ASCII we produce ourselves.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn add(r: *mut ngx_http_request_t, key: &'static str, value: &str) -> bool {
    let h = ngx_list_push(&mut (*r).headers_out.headers) as *mut ngx_table_elt_t;
    if h.is_null() {
        return false;
    }
    let v = pool_str(r, value);
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

/// A copy of `s` in the request's pool.
unsafe fn pool_str(r: *mut ngx_http_request_t, s: &str) -> ngx_str_t {
    if s.is_empty() {
        return ngx_str_t { len: 0, data: ptr::null_mut() };
    }
    let p = ngx_palloc((*r).pool, s.len()) as *mut u8;
    if !p.is_null() {
        ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
    }
    ngx_str_t { len: s.len(), data: p }
}

/// # Safety
/// `r` is a live request.
pub unsafe fn content_type(r: *mut ngx_http_request_t, t: &'static str) {
    (*r).headers_out.content_type = ngx_str_t { len: t.len(), data: t.as_ptr() as *mut u8 };
    (*r).headers_out.content_type_len = t.len();
    (*r).headers_out.content_type_lowcase = ptr::null_mut();
}

/// CORS for web players on other origins, on every answer (errors too, so players can read them).
///
/// # Safety
/// `r` is a live request of an `hls_dvr` location.
pub unsafe fn cors(r: *mut ngx_http_request_t) {
    if let Some(origin) = loc_conf(r).allow_origin() {
        add(r, "Access-Control-Allow-Origin", origin);
        add(r, "Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges");
    }
}

/// The answer to a CORS preflight.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn preflight(r: *mut ngx_http_request_t) {
    add(r, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    add(r, "Access-Control-Allow-Headers", "Range");
    add(r, "Access-Control-Max-Age", "86400");
}

/// # Safety
/// `r` is a live request.
pub unsafe fn max_age(r: *mut ngx_http_request_t, seconds: u32) {
    add(r, "Cache-Control", &format!("max-age={seconds}"));
}

pub fn status_for(e: &StoreError) -> ngx_int_t {
    (match e {
        StoreError::Unavailable(_) => NGX_HTTP_SERVICE_UNAVAILABLE,
        StoreError::Timeout(_) => NGX_HTTP_GATEWAY_TIME_OUT,
        StoreError::Corrupt(_) => NGX_HTTP_BAD_GATEWAY,
        StoreError::Invalid(_) => NGX_HTTP_INTERNAL_SERVER_ERROR,
    }) as ngx_int_t
}
