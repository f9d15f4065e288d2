//! Named slots in shared memory: a fixed open-addressing table whose slots are claimed by
//! (stream, rendition) on first use, by any process, without a lock. The counters and the
//! audience board both keep their series this way.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::*};

use hls_dvr_core::hash::fnv1a;

/// Longest `stream` + `rendition` kept by name.
pub const NAME_MAX: usize = 120;

const FREE: u32 = 0;
const CLAIMING: u32 = 1;
const READY: u32 = 2;

/// A `T` on the heap, all zero (a board outside nginx: tests, benchmarks).
///
/// # Safety
/// All-zero bytes are a valid `T` (atomics only, say), and `T` is not zero-sized.
pub unsafe fn boxed_zeroed<T>() -> Box<T> {
    let layout = std::alloc::Layout::new::<T>();
    // SAFETY: a layout of non-zero size (the contract above); the memory is the global
    // allocator's, as Box expects, and its zero bytes a valid T.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut T;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(p)
    }
}

/// A slot's name; all zero is a free slot.
#[repr(C)]
pub struct SlotName {
    state: AtomicU32,
    hash: AtomicU64,
    /// Length of the stream's name, then of the rendition's, in `name`.
    stream_len: AtomicU32,
    rendition_len: AtomicU32,
    name: [AtomicU8; NAME_MAX],
}

/// A name's hash: the same in every worker, never 0.
fn name_hash(stream: &str, rendition: &str) -> u64 {
    fnv1a(stream.bytes().chain([0]).chain(rendition.bytes())) | 1
}

impl SlotName {
    fn is(&self, stream: &str, rendition: &str) -> bool {
        self.stream_len.load(Relaxed) as usize == stream.len()
            && self.rendition_len.load(Relaxed) as usize == rendition.len()
            && self.name.iter().zip(stream.bytes().chain(rendition.bytes())).all(|(a, b)| a.load(Relaxed) == b)
    }

    /// The stream and rendition of a claimed slot.
    pub fn names(&self) -> Option<(String, String)> {
        if self.state.load(Acquire) != READY {
            return None;
        }
        let sl = self.stream_len.load(Relaxed) as usize;
        let rl = self.rendition_len.load(Relaxed) as usize;
        let bytes: Vec<u8> = self.name[..(sl + rl).min(NAME_MAX)].iter().map(|b| b.load(Relaxed)).collect();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Some((text(&bytes[..sl.min(bytes.len())]), text(&bytes[sl.min(bytes.len())..])))
    }
}

/// The index in `table` of the slot named (stream, rendition), claimed if new; `skip` slots at
/// the start are reserved by the caller. None when the name is too long or the table is full.
pub fn find_or_claim<T>(
    table: &[T],
    name_of: impl Fn(&T) -> &SlotName,
    skip: usize,
    stream: &str,
    rendition: &str,
) -> Option<usize> {
    if stream.len() + rendition.len() > NAME_MAX || table.len() <= skip {
        return None;
    }
    let n = table.len() - skip;
    let hash = name_hash(stream, rendition);
    let first = (hash as usize) % n;
    for probe in 0..n {
        let i = skip + (first + probe) % n;
        let s = name_of(&table[i]);
        loop {
            match s.state.load(Acquire) {
                READY if s.hash.load(Relaxed) == hash && s.is(stream, rendition) => return Some(i),
                READY => break,
                FREE => {
                    if s.state.compare_exchange(FREE, CLAIMING, Acquire, Relaxed).is_ok() {
                        s.hash.store(hash, Relaxed);
                        s.stream_len.store(stream.len() as u32, Relaxed);
                        s.rendition_len.store(rendition.len() as u32, Relaxed);
                        for (d, b) in s.name.iter().zip(stream.bytes().chain(rendition.bytes())) {
                            d.store(b, Relaxed);
                        }
                        s.state.store(READY, Release);
                        return Some(i);
                    }
                }
                // Another process is writing this slot's name: a few stores, so wait.
                _ => std::hint::spin_loop(),
            }
        }
    }
    None
}
