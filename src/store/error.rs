//! Why a store operation failed, sorted by what a caller can do about it.

use std::fmt;

use scylla::errors::{
    DbError, ExecutionError, NextPageError, NextRowError, PagerExecutionError, RequestAttemptError, RequestError,
};

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

// The driver's errors, classified by their types: a timeout is a timeout wherever the driver
// reports it (the request's own timeout, a replica's read or write timeout), never found in text.

/// What a failed attempt on a node says.
fn attempt_err(msg: String, e: &RequestAttemptError) -> StoreError {
    match e {
        RequestAttemptError::DbError(db, _) => match db {
            DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => StoreError::Timeout(msg),
            DbError::SyntaxError | DbError::Invalid | DbError::AlreadyExists { .. } | DbError::Unauthorized => {
                StoreError::Invalid(msg)
            }
            _ => StoreError::Unavailable(msg),
        },
        _ => StoreError::Unavailable(msg),
    }
}

pub(crate) fn exec_err(what: &str, e: ExecutionError) -> StoreError {
    let msg = format!("{what}: {e}");
    match &e {
        ExecutionError::RequestTimeout(_) => StoreError::Timeout(msg),
        ExecutionError::LastAttemptError(a) => attempt_err(msg, a),
        ExecutionError::BadQuery(_) | ExecutionError::PrepareError(_) => StoreError::Invalid(msg),
        _ => StoreError::Unavailable(msg),
    }
}

/// A page's request failed as a whole request does.
fn request_err(msg: String, e: &RequestError) -> StoreError {
    match e {
        RequestError::RequestTimeout(_) => StoreError::Timeout(msg),
        RequestError::LastAttemptError(a) => attempt_err(msg, a),
        _ => StoreError::Unavailable(msg),
    }
}

fn page_err(what: &str, e: &NextPageError) -> StoreError {
    let msg = format!("{what}: {e}");
    match e {
        NextPageError::RequestFailure(r) => request_err(msg, r),
        NextPageError::TypeCheckError(_) | NextPageError::ResultMetadataParseError(_) => StoreError::Corrupt(msg),
        NextPageError::PartitionKeyError(_) => StoreError::Invalid(msg),
        _ => StoreError::Unavailable(msg),
    }
}

pub(crate) fn pager_err(what: &str, e: PagerExecutionError) -> StoreError {
    match &e {
        PagerExecutionError::NextPageError(p) => page_err(what, p),
        PagerExecutionError::PrepareError(_) | PagerExecutionError::SerializationError(_) => {
            StoreError::Invalid(format!("{what}: {e}"))
        }
        _ => StoreError::Unavailable(format!("{what}: {e}")),
    }
}

pub(crate) fn row_err(what: &str, e: NextRowError) -> StoreError {
    match &e {
        NextRowError::NextPageError(p) => page_err(what, p),
        NextRowError::RowDeserializationError(_) => StoreError::Corrupt(format!("{what}: {e}")),
        _ => StoreError::Unavailable(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timeouts_are_found_by_type_wherever_the_driver_reports_them() {
        let d = Duration::from_millis(5);
        assert!(matches!(exec_err("read", ExecutionError::RequestTimeout(d)), StoreError::Timeout(_)));
        let page = || NextPageError::RequestFailure(RequestError::RequestTimeout(d));
        assert!(matches!(pager_err("read", PagerExecutionError::NextPageError(page())), StoreError::Timeout(_)));
        assert!(matches!(row_err("read", NextRowError::NextPageError(page())), StoreError::Timeout(_)));
        let empty = NextPageError::RequestFailure(RequestError::EmptyPlan);
        assert!(matches!(pager_err("read", PagerExecutionError::NextPageError(empty)), StoreError::Unavailable(_)));
        assert!(matches!(exec_err("read", ExecutionError::EmptyPlan), StoreError::Unavailable(_)));
    }
}
