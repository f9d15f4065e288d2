//! Variables for `log_format` (and any directive that takes variables, such as
//! `secure_link_md5`): `$hls_dvr_stream` and `$hls_dvr_rendition`, read from the request's path
//! so they exist from the rewrite phase on; `$hls_dvr_store_ms` and `$hls_dvr_cache`, read from
//! the request's state once the module has answered. Each is "not found" (empty in logs) where it
//! does not apply.
//!
//! Safety: nginx calls the getters on the worker's nginx thread with a live request; values point
//! into the request's URI or pool, or at static strings, all of which outlive the request's use.

use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t, ngx_pnalloc,
    ngx_str_t, NGX_HTTP_VAR_NOCACHEABLE,
};
use ngx::http::HttpModuleLocationConf;

use crate::handler::{ctx_of, NGX_ERROR, NGX_OK};
use crate::metrics::request_series;
use crate::HlsDvr;

type Getter = unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_http_variable_value_t, usize) -> ngx_int_t;

const VARIABLES: [(&str, Getter); 4] = [
    ("hls_dvr_stream", stream),
    ("hls_dvr_rendition", rendition),
    ("hls_dvr_store_ms", store_ms),
    ("hls_dvr_cache", cache),
];

/// Declares the variables (preconfiguration).
///
/// # Safety
/// `cf` is the `ngx_conf_t` nginx passes to preconfiguration.
pub unsafe fn add(cf: *mut ngx_conf_t) -> Result<(), ()> {
    for (name, get) in VARIABLES {
        let mut n = ngx_str_t { len: name.len(), data: name.as_ptr() as *mut u8 };
        let v = ngx_http_add_variable(cf, &mut n, NGX_HTTP_VAR_NOCACHEABLE as usize);
        if v.is_null() {
            return Err(());
        }
        (*v).get_handler = Some(get);
    }
    Ok(())
}

unsafe fn not_found(v: *mut ngx_http_variable_value_t) -> ngx_int_t {
    (*v).set_not_found(1);
    NGX_OK
}

/// Sets `v` to `bytes`, which live at least as long as the request.
unsafe fn found(v: *mut ngx_http_variable_value_t, bytes: &[u8]) -> ngx_int_t {
    (*v).set_len(bytes.len() as u32);
    (*v).set_valid(1);
    (*v).set_no_cacheable(1);
    (*v).set_not_found(0);
    (*v).data = bytes.as_ptr() as *mut u8;
    NGX_OK
}

/// The stream or rendition named by the path of a request in an `hls_dvr` location.
unsafe fn name(r: *mut ngx_http_request_t, v: *mut ngx_http_variable_value_t, rendition: bool) -> ngx_int_t {
    let Some(lc) = HlsDvr::location_conf(&*r) else { return not_found(v) };
    if !lc.enabled {
        return not_found(v);
    }
    // The names borrow the request's URI, which lives as long as the request.
    let (_, stream, rend) = request_series(r, &lc.prefix);
    match if rendition { rend } else { stream } {
        "" => not_found(v),
        s => found(v, s.as_bytes()),
    }
}

unsafe extern "C" fn stream(r: *mut ngx_http_request_t, v: *mut ngx_http_variable_value_t, _: usize) -> ngx_int_t {
    name(r, v, false)
}

unsafe extern "C" fn rendition(r: *mut ngx_http_request_t, v: *mut ngx_http_variable_value_t, _: usize) -> ngx_int_t {
    name(r, v, true)
}

/// The request's state, once the module's handler made one.
unsafe fn state(r: *mut ngx_http_request_t) -> Option<&'static crate::handler::Ctx> {
    let lc = HlsDvr::location_conf(&*r)?;
    if !(lc.enabled || lc.status) {
        return None;
    }
    ctx_of(r).as_ref()
}

unsafe extern "C" fn store_ms(r: *mut ngx_http_request_t, v: *mut ngx_http_variable_value_t, _: usize) -> ngx_int_t {
    let Some(ms) = state(r).and_then(|c| c.store_ms) else { return not_found(v) };
    let text = ms.to_string();
    let p = ngx_pnalloc((*r).pool, text.len()) as *mut u8;
    if p.is_null() {
        return NGX_ERROR;
    }
    std::ptr::copy_nonoverlapping(text.as_ptr(), p, text.len());
    found(v, std::slice::from_raw_parts(p, text.len()))
}

unsafe extern "C" fn cache(r: *mut ngx_http_request_t, v: *mut ngx_http_variable_value_t, _: usize) -> ngx_int_t {
    match state(r).and_then(|c| c.cache_status) {
        Some(s) => found(v, s.as_bytes()),
        None => not_found(v),
    }
}
