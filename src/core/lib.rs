//! hls-dvr's pure HLS logic: what a request asks for and what a playlist says, with no tokio,
//! scylla or nginx (ARCHITECTURE.md, "Code map"). Everything here is exercised by unit tests alone.
//!
//! - [`model`]: renditions, index entries, containers, index buckets.
//! - [`route`]: request paths and `Range` headers.
//! - [`params`]: a playlist request's query.
//! - [`window`]: which segments a media playlist lists, and which index rows to read for it.
//! - [`parts`]: low-latency parts at the live edge: what is listed, hinted and waited for.
//! - [`playlist`]: media playlist text (RFC 8216bis).
//! - [`trick_play`]: I-frame and image (thumbnail) playlists.
//! - [`multivariant`]: the multivariant playlist, with its audio, subtitles and captions groups.
//! - [`markers`]: timed markers (ad breaks, timed metadata): checked, selected, written.
//! - [`mp4`]: stored segments as one MP4 file (clips as files).
//! - [`status`]: the status endpoint's JSON document.
//! - [`audience`], [`session`], [`sketch`]: who is watching: sessions carried in URIs, distinct
//!   viewers as mergeable sketches, the statistics' rows, query and points.
//! - [`prometheus`]: the Prometheus text format.
//! - [`clock`], [`duration`]: now, ISO 8601, and nginx's time syntax.
//! - [`hash`]: the one hash of keys kept in shared memory.
//! - [`leb128`]: the stored forms' numbers.

pub mod audience;
pub mod clock;
pub mod duration;
pub mod hash;
pub mod leb128;
pub mod markers;
pub mod model;
pub mod mp4;
pub mod multivariant;
pub mod params;
pub mod parts;
pub mod playlist;
pub mod prometheus;
pub mod route;
pub mod session;
pub mod sketch;
pub mod status;
pub mod trick_play;
pub mod window;
