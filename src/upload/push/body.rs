//! Request bodies, read frame by frame as hyper receives them: nothing is read ahead, so a
//! receiver waiting on the store stops reading and TCP slows the encoder (back-pressure).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Why a body did not arrive whole.
#[derive(Debug)]
pub enum BodyError {
    /// Over the size limit (413).
    TooLarge(usize),
    /// Nothing arrived for the idle time.
    Idle(Duration),
    /// The connection broke or the chunked encoding was bad.
    Cut(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "body over the limit of {limit} bytes"),
            BodyError::Idle(d) => write!(f, "nothing received for {d:?}"),
            BodyError::Cut(e) => write!(f, "body cut: {e}"),
        }
    }
}

/// The next bytes of a body, None at its end.
pub async fn next(body: &mut Incoming, idle: Duration) -> Result<Option<Bytes>, BodyError> {
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::Idle(idle)),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(BodyError::Cut(e.to_string())),
            Ok(Some(Ok(frame))) => {
                // Trailers carry nothing we use.
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// A whole body, at most `limit` bytes (a Content-Length over it is refused before reading).
pub async fn whole(body: &mut Incoming, limit: usize, idle: Duration) -> Result<Bytes, BodyError> {
    use hyper::body::Body as _;
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge(limit));
    }
    let mut out = BytesMut::new();
    while let Some(data) = next(body, idle).await? {
        if out.len() + data.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        out.extend_from_slice(&data);
    }
    Ok(out.freeze())
}
