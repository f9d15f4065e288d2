//! The shared cache (`hls_dvr_cache_zone NAME SIZE;` and `hls_dvr_cache NAME;`): segments, init
//! segments and playlists in an nginx shared memory zone, for all workers of an edge.
//!
//! Live viewers ask for the same few newest segments within seconds of each other: the first
//! request reads the store, every other one, in any worker, is served from the zone without
//! touching the store or the worker's runtime. A key's first requester claims it (`Loading`);
//! requests meanwhile, in any worker, wait for that fill (polling the zone, see handler.rs) and
//! take it over if the filler dies or stalls. Segments never change once stored, so nothing is
//! invalidated: they leave the zone least recently used first, or once older than the store's
//! retention; playlists leave after `hls_dvr_playlist_cache`.
//!
//! Layout: the zone's slab pool holds a [`ZoneHeader`] (nginx's string rbtree of entries by key,
//! and an LRU queue) and, per entry, an [`Entry`] and its bytes. Everything is changed only under the
//! slab pool's mutex, which nginx's master releases if a worker dies holding it.
//!
//! Bytes handed to nginx point into the zone: the entry is pinned by the request (a count per
//! worker pid) and unpinned by its pool cleanup, and a pinned entry is never freed. Pins of a
//! worker that died are dropped when eviction meets them.
//!
//! Safety: every function runs on a worker's nginx thread (or in the master while the zone is
//! set up); zone memory is mapped at the same address in every process of the cycle, so the
//! pointers inside it (tree, queue, an entry's key and bytes) are valid in every process. A
//! [`Cache`] is made only from a zone this module set up ([`Cache::new`]), and the zone is read
//! or changed only while [`Locked`] holds its mutex.

use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::ptr::{self, NonNull};

use ngx::ffi::{
    kill, ngx_int_t, ngx_pid, ngx_pid_t, ngx_queue_init, ngx_queue_insert_after, ngx_queue_remove, ngx_queue_t,
    ngx_rbtree_delete, ngx_rbtree_init, ngx_rbtree_insert, ngx_rbtree_node_t, ngx_rbtree_t, ngx_shm_zone_t,
    ngx_slab_alloc_locked, ngx_slab_free_locked, ngx_slab_pool_t, ngx_str_node_t, ngx_str_rbtree_insert_value,
    ngx_str_rbtree_lookup, ngx_str_t,
};

use ngx::core::slab::{LockedSlabPool, SlabPool};

use hls_dvr_core::hash::fnv1a;
use hls_dvr_core::model::Container;

/// Longest key: segment keys are short; playlist keys carry the request's query.
const KEY_MAX: usize = 512;
/// Workers that may pin one entry at once; beyond that a request is served around the cache.
const PINNERS: usize = 16;

/// What an entry holds, which decides its response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Playlist {
        max_age_s: u32,
    },
    Segment(Container),
    Init,
    /// A low-latency part (fMP4).
    Part,
    /// A segment's thumbnail (JPEG).
    Thumbnail,
}

impl Content {
    /// The `Content-Type` of a segment, init segment or part.
    pub fn blob_type(self) -> &'static str {
        match self {
            Content::Segment(container) => container.content_type(),
            Content::Part => Container::Fmp4.content_type(),
            Content::Thumbnail => crate::response::THUMBNAIL_TYPE,
            Content::Init | Content::Playlist { .. } => crate::response::INIT_TYPE,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Pin {
    pid: ngx_pid_t,
    count: u32,
}

const LOADING: u32 = 1;
const READY: u32 = 2;
/// Out of the tree (expired or replaced) but still pinned: freed by the last unpin.
const DETACHED: u32 = 3;

/// The zone's header.
#[repr(C)]
struct ZoneHeader {
    tree: ngx_rbtree_t,
    sentinel: ngx_rbtree_node_t,
    /// Ready entries, most recently used first.
    lru: ngx_queue_t,
}

#[repr(C)]
struct Entry {
    /// In the tree by its key (`node.str` points at `key`).
    node: ngx_str_node_t,
    lru: ngx_queue_t,
    state: u32,
    content: u32,
    max_age_s: u32,
    /// Loading: the worker filling it, and since when.
    loader: ngx_pid_t,
    loading_since_ms: i64,
    /// Ready: gone after this.
    expires_ms: i64,
    data: *mut u8,
    size: usize,
    pins: [Pin; PINNERS],
    key: [u8; KEY_MAX],
}

/// A look-up's outcome.
pub enum Lookup {
    Hit(Pinned),
    /// Another request is filling it: ask again shortly.
    Wait,
    /// This request is to fill it ([`Cache::fill`] or [`Cache::abandon`]).
    Fill,
    /// Not cacheable now (key too long, zone full of pinned entries): serve around the cache.
    Bypass,
}

/// Bytes in the zone, pinned for a request until [`Cache::unpin`].
pub struct Pinned {
    entry: NonNull<Entry>,
    pub content: Content,
    data: *const u8,
    len: usize,
}

impl Pinned {
    /// The entry's bytes: unchanged and in place while the pin is held.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            &[]
        } else {
            // SAFETY: a pinned entry's bytes are never freed or changed until it is unpinned,
            // which takes this `Pinned` (see `Cache::unpin`).
            unsafe { std::slice::from_raw_parts(self.data, self.len) }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

/// The zone a location caches in.
#[derive(Debug, Clone, Copy)]
pub struct Cache {
    zone: NonNull<ngx_shm_zone_t>,
}

/// The tree's hash of a key (nginx's string rbtree orders by it first, then by the bytes).
fn hash(key: &[u8]) -> u32 {
    fnv1a(key.iter().copied()) as u32
}

fn encode(c: Content) -> (u32, u32) {
    match c {
        Content::Playlist { max_age_s } => (0, max_age_s),
        Content::Segment(Container::Ts) => (1, 0),
        Content::Segment(Container::Fmp4) => (2, 0),
        Content::Init => (3, 0),
        Content::Part => (4, 0),
        Content::Segment(Container::WebVtt) => (5, 0),
        Content::Thumbnail => (6, 0),
    }
}

fn decode(content: u32, max_age_s: u32) -> Content {
    match content {
        0 => Content::Playlist { max_age_s },
        1 => Content::Segment(Container::Ts),
        2 => Content::Segment(Container::Fmp4),
        4 => Content::Part,
        5 => Content::Segment(Container::WebVtt),
        6 => Content::Thumbnail,
        _ => Content::Init,
    }
}

/// The zone's init callback: a new header, or the one of the previous cycle after a reload.
pub unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls this with this module's zone, mapped, in the master (see `zone_data`).
    unsafe {
        crate::zone::zone_data(zone, old, |shpool| {
            let sh = ngx_slab_alloc_locked(shpool, size_of::<ZoneHeader>()) as *mut ZoneHeader;
            if sh.is_null() {
                return ptr::null_mut();
            }
            ngx_rbtree_init(
                ptr::addr_of_mut!((*sh).tree),
                ptr::addr_of_mut!((*sh).sentinel),
                Some(ngx_str_rbtree_insert_value),
            );
            ngx_queue_init(ptr::addr_of_mut!((*sh).lru));
            // A full zone is normal (entries are then evicted): no "no memory" line for each
            // allocation that fails first.
            (*shpool).set_log_nomem(0);
            sh as *mut c_void
        })
    }
}

/// The zone's lock (ngx's, released when dropped), with the zone's pool and header. Everything in
/// the zone is touched through it.
struct Locked {
    _guard: LockedSlabPool,
    pool: *mut ngx_slab_pool_t,
    sh: *mut ZoneHeader,
}

impl Cache {
    /// # Safety
    /// `zone` is a shared zone of this module, set up by [`init_zone`].
    pub unsafe fn new(zone: NonNull<ngx_shm_zone_t>) -> Cache {
        Cache { zone }
    }

    fn lock(&self) -> Locked {
        // SAFETY: a zone set up by `init_zone` (see `Cache::new`), mapped for the worker's life:
        // its slab pool and header.
        unsafe {
            let zone = self.zone.as_ref();
            let pool = SlabPool::from_shm_zone(zone).expect("a mapped zone");
            Locked {
                _guard: pool.lock(),
                pool: zone.shm.addr as *mut ngx_slab_pool_t,
                sh: zone.data as *mut ZoneHeader,
            }
        }
    }

    /// Finds `key`, pinning it on a hit, or claims it for this request to fill. `stall_ms`: a fill
    /// older than this is taken over.
    pub fn lookup(&self, key: &[u8], now_ms: i64, stall_ms: i64) -> Lookup {
        if key.len() > KEY_MAX {
            return Lookup::Bypass;
        }
        let l = self.lock();
        // SAFETY: under the zone's lock; entries found or made are the zone's.
        unsafe {
            if let Some(e) = l.find(key) {
                match (*e).state {
                    READY if (*e).expires_ms > now_ms => {
                        return match pin(e) {
                            true => {
                                l.touch(e);
                                Lookup::Hit(pinned(e))
                            }
                            false => Lookup::Bypass,
                        };
                    }
                    LOADING if (*e).loading_since_ms > now_ms - stall_ms && alive((*e).loader) => {
                        return Lookup::Wait;
                    }
                    LOADING => {
                        // Its filler died or stalled: ours now.
                        (*e).loader = ngx_pid;
                        (*e).loading_since_ms = now_ms;
                        return Lookup::Fill;
                    }
                    _ => l.detach(e), // expired
                }
            }
            let Some(e) = l.alloc(size_of::<Entry>()) else { return Lookup::Bypass };
            let e = e as *mut Entry;
            ptr::write_bytes(e, 0, 1);
            (*e).state = LOADING;
            (*e).loader = ngx_pid;
            (*e).loading_since_ms = now_ms;
            (&mut (*e).key)[..key.len()].copy_from_slice(key);
            (*e).node.str_ = ngx_str_t { len: key.len(), data: ptr::addr_of_mut!((*e).key) as *mut u8 };
            (*e).node.node.key = hash(key) as _;
            ngx_queue_init(ptr::addr_of_mut!((*e).lru));
            ngx_rbtree_insert(ptr::addr_of_mut!((*l.sh).tree), ptr::addr_of_mut!((*e).node.node));
        }
        Lookup::Fill
    }

    /// Stores the bytes of a key this request claimed, and pins them for it. None when the zone
    /// cannot hold them (the caller serves its own copy) or the claim was lost.
    pub fn fill(&self, key: &[u8], content: Content, expires_ms: i64, parts: &[&[u8]]) -> Option<Pinned> {
        let l = self.lock();
        // SAFETY: under the zone's lock; the copy goes into memory just allocated for `size`.
        unsafe {
            let e = l.find(key).filter(|e| (**e).state == LOADING && (**e).loader == ngx_pid)?;
            let size: usize = parts.iter().map(|p| p.len()).sum();
            let Some(data) = l.alloc(size.max(1)) else {
                l.detach(e);
                return None;
            };
            let mut at = data;
            for p in parts {
                ptr::copy_nonoverlapping(p.as_ptr(), at, p.len());
                at = at.add(p.len());
            }
            (*e).data = data;
            (*e).size = size;
            ((*e).content, (*e).max_age_s) = encode(content);
            (*e).expires_ms = expires_ms;
            (*e).state = READY;
            ngx_queue_insert_after(ptr::addr_of_mut!((*l.sh).lru), ptr::addr_of_mut!((*e).lru));
            if !pin(e) {
                return None;
            }
            Some(pinned(e))
        }
    }

    /// Gives up a claim (the store failed, or the request went away): waiters then claim it.
    pub fn abandon(&self, key: &[u8]) {
        let l = self.lock();
        // SAFETY: under the zone's lock.
        unsafe {
            if let Some(e) = l.find(key).filter(|e| (**e).state == LOADING && (**e).loader == ngx_pid) {
                l.detach(e);
            }
        }
    }

    /// Releases a request's pin (its cleanup does, once).
    pub fn unpin(&self, p: &Pinned) {
        let l = self.lock();
        // SAFETY: under the zone's lock; a pinned entry is never freed, so `p.entry` is alive.
        unsafe {
            let e = p.entry.as_ptr();
            if let Some(pin) = (*e).pins.iter_mut().find(|pin| pin.pid == ngx_pid && pin.count > 0) {
                pin.count -= 1;
                if pin.count == 0 {
                    pin.pid = 0;
                }
            }
            if (*e).state == DETACHED && !pinned_by_anyone(e) {
                l.free_entry(e);
            }
        }
    }
}

// Every function below runs under the zone's lock (`&Locked`, or called from one that does) on
// entries of the zone.

impl Locked {
    unsafe fn find(&self, key: &[u8]) -> Option<*mut Entry> {
        let mut name = ngx_str_t { len: key.len(), data: key.as_ptr() as *mut u8 };
        // SAFETY: the zone's tree, under its lock; nginx only reads `name`.
        let node = unsafe { ngx_str_rbtree_lookup(ptr::addr_of_mut!((*self.sh).tree), &mut name, hash(key)) };
        // SAFETY: every node in the tree is the `node` of an `Entry`.
        (!node.is_null()).then(|| unsafe { (node as *mut u8).sub(offset_of!(Entry, node)) as *mut Entry })
    }

    unsafe fn touch(&self, e: *mut Entry) {
        // SAFETY: a ready entry, in the LRU queue.
        unsafe {
            ngx_queue_remove(ptr::addr_of_mut!((*e).lru));
            ngx_queue_insert_after(ptr::addr_of_mut!((*self.sh).lru), ptr::addr_of_mut!((*e).lru));
        }
    }

    /// Takes an entry out of the tree and the LRU queue; frees it unless pinned.
    unsafe fn detach(&self, e: *mut Entry) {
        // SAFETY: an entry in the tree (and, when ready, in the queue).
        unsafe {
            ngx_rbtree_delete(ptr::addr_of_mut!((*self.sh).tree), ptr::addr_of_mut!((*e).node.node));
            if (*e).state == READY {
                ngx_queue_remove(ptr::addr_of_mut!((*e).lru));
            }
            (*e).state = DETACHED;
            if !pinned_by_anyone(e) {
                self.free_entry(e);
            }
        }
    }

    unsafe fn free_entry(&self, e: *mut Entry) {
        // SAFETY: an entry out of the tree and the queue, pinned by nobody: its memory and its
        // bytes' are the zone's to free.
        unsafe {
            if !(*e).data.is_null() {
                ngx_slab_free_locked(self.pool, (*e).data as *mut c_void);
            }
            ngx_slab_free_locked(self.pool, e as *mut c_void);
        }
    }

    /// Allocates `size` bytes, evicting least recently used entries nobody pins until it fits.
    unsafe fn alloc(&self, size: usize) -> Option<*mut u8> {
        loop {
            // SAFETY: the zone's pool, under its lock.
            let p = unsafe { ngx_slab_alloc_locked(self.pool, size) } as *mut u8;
            if !p.is_null() {
                return Some(p);
            }
            // SAFETY: under the lock.
            if !unsafe { self.evict_one() } {
                return None;
            }
        }
    }

    /// Frees the least recently used entry that nobody pins. False when there is none.
    unsafe fn evict_one(&self) -> bool {
        // SAFETY: the zone's LRU queue; every element is the `lru` of a ready `Entry`.
        unsafe {
            let head = ptr::addr_of_mut!((*self.sh).lru);
            let mut q = (*head).prev;
            while q != head {
                let e = (q as *mut u8).sub(offset_of!(Entry, lru)) as *mut Entry;
                q = (*q).prev;
                if !pinned_by_anyone(e) {
                    self.detach(e);
                    return true;
                }
            }
        }
        false
    }
}

fn alive(pid: ngx_pid_t) -> bool {
    const ESRCH: i32 = 3;
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { kill(pid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() != Some(ESRCH) }
}

/// # Safety
/// `e` is an entry of a locked zone.
unsafe fn pin(e: *mut Entry) -> bool {
    // SAFETY: as the caller promises; `ngx_pid` is this process's pid, set by nginx at start.
    let (pins, me) = unsafe { (&mut (*e).pins, ngx_pid) };
    if let Some(p) = pins.iter_mut().find(|p| p.pid == me) {
        p.count += 1;
        return true;
    }
    match pins.iter_mut().find(|p| p.count == 0) {
        Some(p) => {
            *p = Pin { pid: me, count: 1 };
            true
        }
        None => false,
    }
}

/// # Safety
/// `e` is a ready entry of a locked zone, pinned for the caller.
unsafe fn pinned(e: *mut Entry) -> Pinned {
    // SAFETY: as the caller promises.
    unsafe {
        Pinned {
            entry: NonNull::new_unchecked(e),
            content: decode((*e).content, (*e).max_age_s),
            data: (*e).data,
            len: (*e).size,
        }
    }
}

/// True when some live worker pins the entry; the pins of dead workers are dropped.
///
/// # Safety
/// `e` is an entry of a locked zone.
unsafe fn pinned_by_anyone(e: *mut Entry) -> bool {
    let mut any = false;
    // SAFETY: as the caller promises.
    for p in unsafe { (*e).pins.iter_mut() }.filter(|p| p.count > 0) {
        // SAFETY: reading this process's pid.
        if p.pid == unsafe { ngx_pid } || alive(p.pid) {
            any = true;
        } else {
            *p = Pin { pid: 0, count: 0 };
        }
    }
    any
}
