//! Stored segments as one MP4 file (clips as files; ARCHITECTURE.md, "Clips as files").
//!
//! - [`samples`]: a segment's sample table, recorded when it is stored.
//! - [`fmp4`]: sample tables of fMP4 segments, and the init segment's tracks.
//! - [`ts`]: MPEG-TS remuxed to MP4 samples (H.264, AAC).
//! - [`file`]: the file's header (`ftyp`, `moov`, the `mdat` header) from sample tables alone.
//! - [`clip`]: which segments of which renditions a clip is made of, and why one cannot be made.

pub mod clip;
pub mod file;
pub mod fmp4;
pub mod samples;
pub mod ts;
