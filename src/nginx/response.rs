//! Responses: content types, caching and CORS headers, the status a store error maps to, and the
//! sends every answer goes through (a playlist, a body copied into the request's pool, bytes
//! held elsewhere, a segment's headers with its `Range`).

use ngx::ffi::{
    ngx_int_t, NGX_HTTP_BAD_GATEWAY, NGX_HTTP_GATEWAY_TIME_OUT, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_MOVED_TEMPORARILY, NGX_HTTP_PARTIAL_CONTENT, NGX_HTTP_RANGE_NOT_SATISFIABLE, NGX_HTTP_SERVICE_UNAVAILABLE,
};
use ngx::http::{HttpModuleLocationConf, Request};

use crate::config::LocConf;
use crate::http::{RequestExt, NGX_ERROR};
use crate::HlsDvr;
use hls_dvr_core::route::{self, ByteRange};
use hls_dvr_store::clip::ClipFile;
use hls_dvr_store::StoreError;

/// Segments never change once stored: cache them for a day.
pub const SEGMENT_CACHE: &str = "public, max-age=86400, immutable";
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
pub const INIT_TYPE: &str = "video/mp4";
/// `Content-Type` of thumbnails.
pub const THUMBNAIL_TYPE: &str = "image/jpeg";
pub const TEXT_TYPE: &str = "text/plain; charset=utf-8";
pub const JSON_TYPE: &str = "application/json";

/// The `hls_dvr` location's configuration of a request the module handles.
pub fn loc_conf(r: &Request) -> &'static LocConf {
    HlsDvr::location_conf(r).expect("hls_dvr location conf")
}

/// CORS for web players on other origins, on every answer (errors too, so players can read them).
pub fn cors(r: &mut Request) {
    if let Some(origin) = loc_conf(r).allow_origin() {
        r.add_header("Access-Control-Allow-Origin", origin);
        r.add_header("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges");
    }
}

/// The answer to a CORS preflight.
pub fn preflight(r: &mut Request) {
    r.add_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    r.add_header("Access-Control-Allow-Headers", "Range");
    r.add_header("Access-Control-Max-Age", "86400");
}

pub fn status_for(e: &StoreError) -> ngx_int_t {
    (match e {
        StoreError::Unavailable(_) => NGX_HTTP_SERVICE_UNAVAILABLE,
        StoreError::Timeout(_) => NGX_HTTP_GATEWAY_TIME_OUT,
        StoreError::Corrupt(_) => NGX_HTTP_BAD_GATEWAY,
        StoreError::Invalid(_) => NGX_HTTP_INTERNAL_SERVER_ERROR,
    }) as ngx_int_t
}

/// Sends a playlist held elsewhere for as long as the request lives; `private` when it is one
/// viewer's (it carries a session id). Returns what to finalize with.
///
/// # Safety
/// As [`RequestExt::send_held`]: `text` outlives the request.
pub unsafe fn playlist(r: &mut Request, text: &[u8], max_age_s: u32, private: bool) -> ngx_int_t {
    r.set_status_code(200);
    r.set_content_length(text.len() as u64);
    r.set_content_type(PLAYLIST_TYPE);
    let scope = if private { "private, " } else { "" };
    r.add_header("Cache-Control", &format!("{scope}max-age={max_age_s}"));
    // SAFETY: as the caller promises.
    unsafe { held(r, text) }
}

/// Sends the header, then `data` as the whole body. Returns what to finalize with.
///
/// # Safety
/// As [`RequestExt::send_held`]: `data` outlives the request.
pub unsafe fn held(r: &mut Request, data: &[u8]) -> ngx_int_t {
    if let Err(rc) = r.send_header_rc() {
        return rc;
    }
    // SAFETY: as the caller promises.
    unsafe { r.send_held(data, true) }
}

/// Sends `status` with `body` (copied into the request's pool, so it needs no owner). Returns
/// what to finalize with.
pub fn body(r: &mut Request, status: u16, content_type: &'static str, body: &[u8], cache: Option<&str>) -> ngx_int_t {
    r.set_status_code(status);
    r.set_content_length(body.len() as u64);
    r.set_content_type(content_type);
    if let Some(c) = cache {
        r.add_header("Cache-Control", c);
    }
    // The copy lives in the pool, as long as the request.
    let Some(copy) = r.pool_copy(body).map(|c| c as *const [u8]) else { return NGX_ERROR };
    // SAFETY: pool memory outlives every use nginx makes of the request's buffers.
    unsafe { held(r, &*copy) }
}

/// Sends `status` with `reason` as a short text body. Returns what to finalize with.
pub fn text(r: &mut Request, status: u16, reason: &str) -> ngx_int_t {
    body(r, status, TEXT_TYPE, format!("{reason}\n").as_bytes(), None)
}

/// The headers of a segment or init segment of `size` bytes: 200, or 206 for a satisfiable
/// `Range`. The bytes to send, or the status to finalize with (416).
pub fn blob_headers(r: &mut Request, size: u64, content_type: &'static str) -> Result<(u64, u64), ngx_int_t> {
    ranged(r, size, content_type, true)
}

/// The headers of a clip file (ARCHITECTURE.md, "Clips as files"): its length before the
/// first byte, `Range` honoured unless an `If-Range` names another version, an `ETag`, and a
/// download's file name. A finished clip never changes: cached for a day.
pub fn file_headers(r: &mut Request, file: &ClipFile) -> Result<(u64, u64), ngx_int_t> {
    r.add_header("ETag", &file.etag);
    r.add_header("Content-Disposition", &format!("attachment; filename=\"{}\"", file.name));
    let same = r.if_range().is_none_or(|v| v == file.etag.as_bytes());
    ranged(r, file.len, file.format.content_type(), same)
}

/// A `302` to the same path with `query`: a clip asked in relative times, sent to its absolute
/// form (which is cached; this answer, whose meaning moves with the clock, is not).
pub fn moved(r: &mut Request, query: &str) -> ngx_int_t {
    let path = String::from_utf8_lossy(r.uri()).into_owned();
    r.add_header("Location", &format!("{path}{query}"));
    body(r, NGX_HTTP_MOVED_TEMPORARILY as u16, TEXT_TYPE, format!("see {path}{query}\n").as_bytes(), Some("no-store"))
}

/// 200 or 206 headers for a body of `size` bytes; `Range` is read only when `use_range`.
fn ranged(r: &mut Request, size: u64, content_type: &'static str, use_range: bool) -> Result<(u64, u64), ngx_int_t> {
    let range = match r.range().map(std::str::from_utf8) {
        Some(Ok(h)) if use_range => route::parse_range(h, size),
        _ => ByteRange::Whole,
    };
    r.add_header("Accept-Ranges", "bytes");
    let (start, end) = match range {
        ByteRange::Unsatisfiable => {
            r.add_header("Content-Range", &format!("bytes */{size}"));
            return Err(NGX_HTTP_RANGE_NOT_SATISFIABLE as _);
        }
        ByteRange::Part { start, end } => {
            r.set_status_code(NGX_HTTP_PARTIAL_CONTENT as u16);
            r.add_header("Content-Range", &format!("bytes {start}-{end}/{size}"));
            (start, end)
        }
        ByteRange::Whole => {
            r.set_status_code(200);
            (0, size.saturating_sub(1))
        }
    };
    r.set_content_length(if size == 0 { 0 } else { end - start + 1 });
    r.set_content_type(content_type);
    r.add_header("Cache-Control", SEGMENT_CACHE);
    Ok((start, end))
}

/// A whole segment or init segment held elsewhere, with its headers (and `Range`). Returns what to
/// finalize with.
///
/// # Safety
/// As [`RequestExt::send_held`]: `data` outlives the request.
pub unsafe fn blob(r: &mut Request, data: &[u8], content_type: &'static str) -> ngx_int_t {
    match blob_headers(r, data.len() as u64, content_type) {
        // SAFETY: as the caller promises.
        Ok((start, end)) if !data.is_empty() => unsafe { held(r, &data[start as usize..=end as usize]) },
        // SAFETY: an empty slice.
        Ok(_) => unsafe { held(r, &[]) },
        Err(rc) => rc,
    }
}
