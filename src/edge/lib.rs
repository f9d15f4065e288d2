//! hls-dvr's edge runtime: what an nginx worker asks of the store and how, as plain async Rust
//! that never sees an nginx pointer (ARCHITECTURE.md, "The thread bridge").
//!
//! - [`serve`]: a request's store work (`Job`) and its answer (`Reply`); the worker's `Edge`.
//! - [`index_cache`]: each watched rendition's index window, refreshed by reading only new rows.
//! - [`part_cache`]: the parts of whole segments a live playlist lists, read once.
//! - [`head_watch`]: blocking requests (reloads, hinted parts), one head poll per watched rendition.
//! - [`counters`]: the edge's counters, atomics laid out to live in a shared memory zone.
//! - [`audience`]: who is watching, counted per minute in a shared zone and sealed into rows.
//! - [`stats_writer`]: sealed minutes written to the store, kept while it is away.
//! - [`session`]: session ids, issued and checked with the site's secret.
//! - [`slots`]: named slots claimed in shared memory without a lock.

pub mod audience;
pub mod counters;
pub mod head_watch;
pub mod index_cache;
pub mod part_cache;
pub mod serve;
pub mod session;
pub mod slots;
pub mod stats_writer;
