//! Variables for `log_format` (and any directive that takes variables, such as
//! `secure_link_md5`): `$hls_dvr_stream` and `$hls_dvr_rendition`, read from the request's path
//! so they exist from the rewrite phase on; `$hls_dvr_store_ms` and `$hls_dvr_cache`, read from
//! the request's state once the module has answered. Each is "not found" (empty in logs) where it
//! does not apply.
//!
//! Values point into the request's URI or pool, or at static strings, all of which outlive the
//! request's use of them.

use ngx::core::Status;
use ngx::ffi::{ngx_conf_t, ngx_http_add_variable, ngx_http_get_variable_pt, ngx_str_t, ngx_variable_value_t};
use ngx::http::{HttpModuleLocationConf, Request};
use ngx::http_variable_get;

use crate::handler::{ctx_of, Ctx};
use crate::http::RequestExt;
use crate::metrics::request_series;
use crate::HlsDvr;

const VARIABLES: [(&str, ngx_http_get_variable_pt); 4] = [
    ("hls_dvr_stream", Some(stream)),
    ("hls_dvr_rendition", Some(rendition)),
    ("hls_dvr_store_ms", Some(store_ms)),
    ("hls_dvr_cache", Some(cache)),
];

/// Declares the variables (preconfiguration).
///
/// # Safety
/// `cf` is the `ngx_conf_t` nginx passes to preconfiguration.
pub unsafe fn add(cf: *mut ngx_conf_t) -> Result<(), ()> {
    for (name, get) in VARIABLES {
        let mut n = ngx_str_t { len: name.len(), data: name.as_ptr() as *mut u8 };
        // SAFETY: as the caller promises; nginx copies the name.
        let v = unsafe { ngx_http_add_variable(cf, &mut n, ngx::ffi::NGX_HTTP_VAR_NOCACHEABLE as usize) };
        if v.is_null() {
            return Err(());
        }
        // SAFETY: a variable nginx just made.
        unsafe { (*v).get_handler = get };
    }
    Ok(())
}

/// What a getter answers: bytes that live as long as the request, or nothing.
fn set(v: *mut ngx_variable_value_t, value: Option<&[u8]>) -> Status {
    // SAFETY: nginx passes the variable's value to fill, on its thread.
    let v = unsafe { &mut *v };
    match value {
        Some(bytes) => {
            v.set_len(bytes.len() as u32);
            v.set_valid(1);
            v.set_no_cacheable(1);
            v.set_not_found(0);
            v.data = bytes.as_ptr() as *mut u8;
        }
        None => v.set_not_found(1),
    }
    Status::NGX_OK
}

/// The stream or rendition named by the path of a request in an `hls_dvr` location.
fn name(r: &Request, rendition: bool) -> Option<&[u8]> {
    let lc = HlsDvr::location_conf(r).filter(|lc| lc.enabled)?;
    // The names borrow the request's URI, which lives as long as the request.
    let (_, stream, rend) = request_series(r, &lc.prefix);
    Some(if rendition { rend } else { stream }).filter(|s| !s.is_empty()).map(str::as_bytes)
}

http_variable_get!(stream, |r: &mut Request, v: *mut ngx_variable_value_t, _: usize| set(v, name(r, false)));

http_variable_get!(rendition, |r: &mut Request, v: *mut ngx_variable_value_t, _: usize| set(v, name(r, true)));

/// The request's state, once the module's handler made one.
fn state(r: &Request) -> Option<&Ctx> {
    let lc = HlsDvr::location_conf(r)?;
    if !(lc.enabled || lc.status) {
        return None;
    }
    // SAFETY: read only, within the getter; no other reference to the state is held while
    // nginx evaluates a variable.
    unsafe { ctx_of(r) }.map(|c| &*c)
}

http_variable_get!(store_ms, |r: &mut Request, v: *mut ngx_variable_value_t, _: usize| {
    let text = state(r).and_then(|c| c.store_ms).map(|ms| ms.to_string());
    match text {
        Some(t) => match r.pool_copy(t.as_bytes()) {
            Some(copy) => set(v, Some(copy)),
            None => Status::NGX_ERROR,
        },
        None => set(v, None),
    }
});

http_variable_get!(cache, |r: &mut Request, v: *mut ngx_variable_value_t, _: usize| {
    set(v, state(r).and_then(|c| c.cache_status).map(str::as_bytes))
});
