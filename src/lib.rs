//! hls-dvr: live HLS with a DVR window, served by nginx straight out of Cassandra / ScyllaDB.
//!
//! Plain-Rust logic (schema, store, playlists, windows, routes, the uploader) lives in modules that
//! build without nginx; the nginx glue is the
//! `ngx-http-hls-dvr-module` package in `src/module`, a thin layer on top.

pub mod clock;
pub mod duration;
pub mod edge_metrics;
pub mod head_watch;
pub mod index_cache;
pub mod params;
pub mod playlist;
pub mod prometheus;
pub mod route;
pub mod schema;
pub mod serve;
pub mod status;
pub mod store;
pub mod upload;
pub mod window;
