//! Shared memory zones of the module (the cache's, the counters'): what their init callbacks have
//! in common.

use std::ffi::c_void;

use ngx::ffi::{ngx_int_t, ngx_shm_zone_t, ngx_slab_pool_t};

/// A shared zone's data as nginx maps it: the previous cycle's after a reload, the one already in
/// the zone for a new cycle, or, the first time, a new one that `make` allocates from the zone's
/// slab pool (null when it cannot). Both zones' init callbacks go through it.
///
/// # Safety
/// `zone` is a zone nginx has just mapped, in the master, and `old` the previous cycle's data of
/// the same zone, or null; `make` is safe to call with the zone's slab pool.
pub unsafe fn zone_data(
    zone: *mut ngx_shm_zone_t,
    old: *mut c_void,
    make: impl FnOnce(*mut ngx_slab_pool_t) -> *mut c_void,
) -> ngx_int_t {
    // SAFETY: as the caller promises; nothing else runs in the zone yet.
    unsafe {
        let shpool = (*zone).shm.addr as *mut ngx_slab_pool_t;
        let data = if !old.is_null() {
            old
        } else if (*zone).shm.exists != 0 {
            (*shpool).data
        } else {
            let data = make(shpool);
            if data.is_null() {
                return -1;
            }
            (*shpool).data = data;
            data
        };
        (*zone).data = data;
    }
    0
}

/// [`zone_data`] for a zone holding one `T` that is valid when all zero (the counters, the
/// audience board): allocated from the slab pool and zeroed the first time.
///
/// # Safety
/// As [`zone_data`]; and all-zero bytes are a valid `T`.
pub unsafe fn zeroed_data<T>(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: as the caller promises.
    unsafe {
        zone_data(zone, old, |pool| {
            let data = ngx::ffi::ngx_slab_alloc(pool, std::mem::size_of::<T>());
            if !data.is_null() {
                std::ptr::write_bytes(data as *mut u8, 0, std::mem::size_of::<T>());
            }
            data
        })
    }
}
