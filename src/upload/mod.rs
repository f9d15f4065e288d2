//! The uploader.
