//! Why a store operation failed, sorted by what a caller can do about it.

use std::fmt;

use scylla::errors::{ExecutionError, NextPageError, NextRowError, PagerExecutionError};

/// Callers map these to HTTP statuses (the module) and retry decisions (the uploader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No connection, node down, unavailable replicas: try again later (HTTP 503).
    Unavailable(String),
    /// The request did not finish within its timeout (HTTP 504).
    Timeout(String),
    /// The data in the store is inconsistent: a missing chunk, a size mismatch (HTTP 502).
    Corrupt(String),
    /// A bad request or configuration: retrying will not help.
    Invalid(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StoreError::Timeout(m) => write!(f, "store timeout: {m}"),
            StoreError::Corrupt(m) => write!(f, "corrupt data in store: {m}"),
            StoreError::Invalid(m) => write!(f, "store request rejected: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// The kinds' names, in [`StoreError::index`] order: metrics count failures by them.
    pub const KINDS: [&'static str; 4] = ["timeout", "unavailable", "corrupt", "invalid"];

    /// This error's place in [`StoreError::KINDS`].
    pub fn index(&self) -> usize {
        match self {
            StoreError::Timeout(_) => 0,
            StoreError::Unavailable(_) => 1,
            StoreError::Corrupt(_) => 2,
            StoreError::Invalid(_) => 3,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}

pub(super) fn exec_err(what: &str, e: ExecutionError) -> StoreError {
    use scylla::errors::{DbError, RequestAttemptError};
    let msg = format!("{what}: {e}");
    match &e {
        ExecutionError::RequestTimeout(_) => StoreError::Timeout(msg),
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => match db {
            DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => StoreError::Timeout(msg),
            DbError::SyntaxError | DbError::Invalid | DbError::AlreadyExists { .. } | DbError::Unauthorized => {
                StoreError::Invalid(msg)
            }
            _ => StoreError::Unavailable(msg),
        },
        ExecutionError::BadQuery(_) | ExecutionError::PrepareError(_) => StoreError::Invalid(msg),
        _ => StoreError::Unavailable(msg),
    }
}

/// Paging errors carry no structured timeout: their text is all there is.
fn classify(m: String) -> StoreError {
    let lower = m.to_ascii_lowercase();
    if lower.contains("timeout") || lower.contains("timed out") {
        StoreError::Timeout(m)
    } else {
        StoreError::Unavailable(m)
    }
}

fn page_err(what: &str, e: NextPageError) -> StoreError {
    match e {
        NextPageError::TypeCheckError(_) | NextPageError::ResultMetadataParseError(_) => {
            StoreError::Corrupt(format!("{what}: {e}"))
        }
        other => classify(format!("{what}: {other}")),
    }
}

pub(super) fn pager_err(what: &str, e: PagerExecutionError) -> StoreError {
    match e {
        PagerExecutionError::NextPageError(e) => page_err(what, e),
        PagerExecutionError::PrepareError(_) | PagerExecutionError::SerializationError(_) => {
            StoreError::Invalid(format!("{what}: {e}"))
        }
        other => classify(format!("{what}: {other}")),
    }
}

pub(super) fn row_err(what: &str, e: NextRowError) -> StoreError {
    match e {
        NextRowError::NextPageError(e) => page_err(what, e),
        NextRowError::RowDeserializationError(_) => StoreError::Corrupt(format!("{what}: {e}")),
        other => classify(format!("{what}: {other}")),
    }
}
