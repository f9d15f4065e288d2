//! `ngx_http_hls_dvr_module`: the nginx glue. Module tables, configuration hooks and the worker's
//! start and stop; requests are in `handler`, the thread bridge in `bridge`.
//!
//! Raw nginx pointers stay at the entry points nginx calls (handlers, events, zone and
//! configuration callbacks) and in `http`, the one adapter over nginx's request; every `unsafe`
//! block says why it holds.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod audience;
mod bridge;
mod cache;
mod config;
mod handler;
mod http;
mod metrics;
mod pump;
mod response;
mod variables;
mod zone;

use std::ffi::{c_char, c_void};
use std::ptr::{addr_of, addr_of_mut};

use ngx::core::{Status, NGX_CONF_ERROR};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_cycle_t, ngx_http_module_t, ngx_int_t, ngx_module_t, ngx_uint_t, NGX_CONF_1MORE,
    NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE2, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF,
    NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_MODULE, NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf};
use ngx::{ngx_conf_log_error, ngx_modules, ngx_string};

use config::{LocConf, MainConf};

pub struct HlsDvr;

impl HttpModule for HlsDvr {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the module table is only written by nginx while loading configuration.
        unsafe { &*addr_of!(ngx_http_hls_dvr_module) }
    }

    unsafe extern "C" fn init_main_conf(cf: *mut ngx_conf_t, conf: *mut c_void) -> *mut c_char {
        // SAFETY: nginx calls this with its live configuration or cycle, on the thread that owns them.
        unsafe {
            // SAFETY: nginx passes the main conf this module created.
            let c = &mut *(conf as *mut MainConf);
            match config::check_main(c).and_then(|()| config::add_metrics_zone(cf, c)) {
                Ok(()) => std::ptr::null_mut(),
                Err(msg) => {
                    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{}", msg);
                    NGX_CONF_ERROR
                }
            }
        }
    }

    unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: nginx calls this with its live configuration or cycle, on the thread that owns them.
        unsafe {
            match variables::add(cf) {
                Ok(()) => Status::NGX_OK.into(),
                Err(()) => Status::NGX_ERROR.into(),
            }
        }
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: nginx calls this with its live configuration or cycle, on the thread that owns them.
        unsafe {
            match metrics::add_log_handler(cf) {
                Ok(()) => Status::NGX_OK.into(),
                Err(()) => Status::NGX_ERROR.into(),
            }
        }
    }
}

/// Merges a location's configuration into its parent's, then checks what only the merged
/// configuration can tell (sessions need a secret or a key, wherever each was given).
unsafe extern "C" fn merge_loc_conf(cf: *mut ngx_conf_t, prev: *mut c_void, conf: *mut c_void) -> *mut c_char {
    // SAFETY: nginx calls this with its configuration and two LocConfs this module created.
    unsafe {
        let rc = HlsDvr::merge_loc_conf(cf, prev, conf);
        if !rc.is_null() {
            return rc;
        }
        if let Err(msg) = config::check_loc(&*(conf as *const LocConf)) {
            ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{}", msg);
            return NGX_CONF_ERROR;
        }
        rc
    }
}

// SAFETY: MainConf and LocConf are the types create_main_conf / create_loc_conf allocate.
unsafe impl HttpModuleMainConf for HlsDvr {
    type MainConf = MainConf;
}
// SAFETY: as above.
unsafe impl HttpModuleLocationConf for HlsDvr {
    type LocationConf = LocConf;
}

static NGX_HTTP_HLS_DVR_MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(HlsDvr::preconfiguration),
    postconfiguration: Some(HlsDvr::postconfiguration),
    create_main_conf: Some(HlsDvr::create_main_conf),
    init_main_conf: Some(HlsDvr::init_main_conf),
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(HlsDvr::create_loc_conf),
    merge_loc_conf: Some(merge_loc_conf),
};

const MAIN: ngx_uint_t = NGX_HTTP_MAIN_CONF as ngx_uint_t;
const LOC: ngx_uint_t = (NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF) as ngx_uint_t;

type SetFn = unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char;

const fn command(name: ngx::ffi::ngx_str_t, type_: ngx_uint_t, set: SetFn, conf: usize) -> ngx_command_t {
    ngx_command_t { name, type_, set: Some(set), conf, offset: 0, post: std::ptr::null_mut() }
}

static mut NGX_HTTP_HLS_DVR_COMMANDS: [ngx_command_t; 30] = [
    command(
        ngx_string!("hls_dvr_cassandra"),
        MAIN | NGX_CONF_1MORE as ngx_uint_t,
        config::set_cassandra,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_keyspace"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_keyspace,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_consistency"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_consistency,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_timeout"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_timeout,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_connect_timeout"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_connect_timeout,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_max_in_flight"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_max_in_flight,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_playlist_cache"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_playlist_cache,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_username"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_username,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_password_file"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_password_file,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_tls_ca"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_tls_ca,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_tls_cert"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_tls_cert,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_tls_key"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_tls_key,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_speculative_retry"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_speculative_retry,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_local_dc"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_local_dc,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_cache_zone"),
        MAIN | NGX_CONF_TAKE2 as ngx_uint_t,
        config::set_cache_zone,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_cache"),
        LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_cache,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr"),
        NGX_HTTP_LOC_CONF as ngx_uint_t | NGX_CONF_NOARGS as ngx_uint_t,
        config::set_hls_dvr,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_window"),
        LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_window,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_max_range"),
        LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_max_range,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_pass_args"),
        LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_pass_args,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_ad_markers"),
        LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_ad_markers,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_status"),
        NGX_HTTP_LOC_CONF as ngx_uint_t | NGX_CONF_NOARGS as ngx_uint_t,
        config::set_status,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_metrics"),
        NGX_HTTP_LOC_CONF as ngx_uint_t | NGX_CONF_NOARGS as ngx_uint_t,
        config::set_metrics,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_stats"),
        NGX_HTTP_LOC_CONF as ngx_uint_t | NGX_CONF_NOARGS as ngx_uint_t,
        config::set_stats,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_sessions"),
        MAIN | LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_sessions,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_session_secret"),
        MAIN | LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_session_secret,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_session_key"),
        MAIN | LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_session_key,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_edge_name"),
        MAIN | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_edge_name,
        NGX_HTTP_MAIN_CONF_OFFSET,
    ),
    command(
        ngx_string!("hls_dvr_allow_origin"),
        LOC | NGX_CONF_TAKE1 as ngx_uint_t,
        config::set_allow_origin,
        NGX_HTTP_LOC_CONF_OFFSET,
    ),
    ngx_command_t::empty(),
];

ngx_modules!(ngx_http_hls_dvr_module);

#[used]
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static mut ngx_http_hls_dvr_module: ngx_module_t = ngx_module_t {
    ctx: addr_of!(NGX_HTTP_HLS_DVR_MODULE_CTX) as _,
    // nginx reads the table while loading configuration; nothing else touches it.
    commands: addr_of_mut!(NGX_HTTP_HLS_DVR_COMMANDS) as *mut ngx_command_t,
    type_: NGX_HTTP_MODULE as _,
    init_process: Some(init_process),
    exit_process: Some(exit_process),
    ..ngx_module_t::default()
};

/// Workers only (the master never calls it): tokio is not fork-safe, so the runtime is born here.
unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: nginx calls this with its live configuration or cycle, on the thread that owns them.
    unsafe {
        // SAFETY: nginx passes the live cycle.
        let cycle = &*cycle;
        // Cache manager and loader processes run init_process too: they serve no requests.
        let process = ngx::ffi::ngx_process as u32;
        if process != ngx::ffi::NGX_PROCESS_WORKER && process != ngx::ffi::NGX_PROCESS_SINGLE {
            return Status::NGX_OK.into();
        }
        let Some(main) = HlsDvr::main_conf(cycle) else { return Status::NGX_OK.into() };
        if let Some(zone) = main.metrics_zone {
            metrics::attach(zone.as_ptr());
        }
        if let Some(zone) = main.audience_zone {
            audience::attach(zone.as_ptr());
        }
        if !main.used {
            return Status::NGX_OK.into();
        }
        match bridge::start(cycle, main) {
            Ok(()) => Status::NGX_OK.into(),
            Err(e) => {
                ngx::ngx_log_error!(NGX_LOG_EMERG, cycle.log, "hls_dvr: cannot start worker: {}", e);
                Status::NGX_ERROR.into()
            }
        }
    }
}

unsafe extern "C" fn exit_process(_cycle: *mut ngx_cycle_t) {
    bridge::stop();
}
