//! Keeps a working session for a long-lived client (an nginx worker, the uploader): connects in
//! the background, and replaces a session that has failed every request for a while by a fresh
//! one.
//!
//! The driver reconnects a broken session by itself, but after a long outage its back-off has
//! grown to seconds; a new session connects at once. So while requests fail, a new session is
//! tried every [`RETRY`]; the first that connects takes over, and requests in flight finish on
//! the old one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Store, StoreConfig, StoreError};

/// How often a new session is tried while the store fails.
pub const RETRY: Duration = Duration::from_millis(250);
/// A session is given up after failing every request for this long (and at least [`STREAK`]).
pub const GIVE_UP: Duration = Duration::from_secs(1);
const STREAK: u32 = 3;

/// What happened, for the caller's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first session is up.
    Connected,
    /// A fresh session replaced one that kept failing.
    Replaced,
    /// Connecting failed (said once per distinct error).
    Failed(String),
    /// The store's retention could not be read.
    NoRetention(String),
}

pub struct Keeper {
    current: Mutex<Option<Arc<Store>>>,
    /// Requests failed for want of the store since the last success, and when that was.
    failures: AtomicU32,
    last_success: Mutex<Option<Instant>>,
}

impl Default for Keeper {
    fn default() -> Self {
        Keeper::new()
    }
}

impl Keeper {
    pub const fn new() -> Keeper {
        Keeper { current: Mutex::new(None), failures: AtomicU32::new(0), last_success: Mutex::new(None) }
    }

    /// Starts from a session the caller made (the uploader connects first, to fail fast); `run`
    /// then only replaces it when it keeps failing.
    pub fn set(&self, store: Arc<Store>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
        *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    pub fn get(&self) -> Option<Arc<Store>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records how a request went: only unavailability counts against the session.
    pub fn report<T>(&self, res: &Result<T, StoreError>) {
        match res {
            Err(StoreError::Unavailable(_)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.failures.store(0, Ordering::Relaxed);
                *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
        }
    }

    fn failing(&self) -> bool {
        let since = *self.last_success.lock().unwrap_or_else(|p| p.into_inner());
        should_replace(self.failures.load(Ordering::Relaxed), since.map(|t| t.elapsed()))
    }

    /// Connects, then watches: runs for the client's life. `on` hears what happened; `retention`
    /// receives the store's retention whenever a session is made.
    pub async fn run(&self, cfg: StoreConfig, on: impl Fn(Event), retention: impl Fn(Option<Duration>)) {
        let mut backoff = Duration::from_millis(200);
        let mut last_error = String::new();
        loop {
            let replacing = self.get().is_some();
            if replacing && !self.failing() {
                tokio::time::sleep(RETRY).await;
                continue;
            }
            match Store::connect(&cfg).await {
                Ok(s) => {
                    match s.retention().await {
                        Ok(r) => retention(r),
                        Err(e) => on(Event::NoRetention(e.to_string())),
                    }
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(s));
                    self.failures.store(0, Ordering::Relaxed);
                    *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                    on(if replacing { Event::Replaced } else { Event::Connected });
                    last_error.clear();
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    let e = e.to_string();
                    if e != last_error {
                        on(Event::Failed(e.clone()));
                        last_error = e;
                    }
                    // Before the first session, back off; afterwards, an outage ends when it ends.
                    let pause = if replacing { RETRY } else { backoff };
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// A session that failed `failures` requests in a row, the last success `since` ago, is given up.
fn should_replace(failures: u32, since: Option<Duration>) -> bool {
    failures >= STREAK && since.is_none_or(|d| d >= GIVE_UP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_given_up_after_failing_for_a_while_only() {
        assert!(!should_replace(0, None));
        assert!(!should_replace(2, Some(Duration::from_secs(60))));
        assert!(!should_replace(100, Some(Duration::from_millis(200))), "a burst of errors right after a success");
        assert!(should_replace(3, Some(GIVE_UP)));
        assert!(should_replace(3, None));
    }

    #[test]
    fn only_unavailability_counts() {
        let k = Keeper::new();
        for _ in 0..5 {
            k.report::<()>(&Err(StoreError::Unavailable("down".into())));
        }
        assert_eq!(k.failures.load(Ordering::Relaxed), 5);
        k.report::<()>(&Err(StoreError::Corrupt("bad row".into())));
        assert_eq!(k.failures.load(Ordering::Relaxed), 0);
        k.report::<()>(&Err(StoreError::Timeout("slow".into())));
        assert!(!k.failing());
    }
}
