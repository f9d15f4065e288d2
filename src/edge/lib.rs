//! hls-dvr's edge runtime: what an nginx worker asks of the store and how, as plain async Rust
//! that never sees an nginx pointer (ARCHITECTURE.md, "The thread bridge").
//!
//! - [`serve`]: a request's store work (`Job`) and its answer (`Reply`); the worker's `Edge`.
//! - [`index_cache`]: each watched rendition's index window, refreshed by reading only new rows.
//! - [`head_watch`]: blocking reloads, one head poll per watched rendition.
//! - [`counters`]: the edge's counters, atomics laid out to live in a shared memory zone.

pub mod counters;
pub mod head_watch;
pub mod index_cache;
pub mod serve;
