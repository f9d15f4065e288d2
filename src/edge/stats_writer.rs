//! Writes what the audience board seals: each finished minute's rows, once a second's check
//! finds one due, in order. While the store is away the sealed minutes wait, up to an hour of
//! them; older ones are dropped and counted (ARCHITECTURE.md, "Audience").

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use hls_dvr_core::audience::Row;
use hls_dvr_core::clock::now_ms;
use hls_dvr_store::{Store, StoreError};

use crate::audience::Audience;

/// Sealed minutes kept while the store cannot be written.
pub const MAX_WAITING_MINUTES: usize = 60;

/// Seals and writes for as long as the worker runs. `store` gives the worker's session when it
/// has one; `log` reports a failure once, and the recovery.
pub async fn run(
    board: &'static Audience,
    edge: String,
    store: impl Fn() -> Option<Arc<Store>>,
    log: impl Fn(Result<String, String>),
) {
    let mut waiting: VecDeque<(i64, Vec<Row>)> = VecDeque::new();
    let mut failing = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        while let Some(sealed) = board.seal(now_ms(), &edge) {
            waiting.push_back(sealed);
        }
        while waiting.len() > MAX_WAITING_MINUTES {
            waiting.pop_front();
            board.dropped(1);
        }
        let Some(store) = store() else { continue };
        while let Some((minute, rows)) = waiting.front() {
            match write(&store, rows).await {
                Ok(()) => {
                    board.written(rows.len() as u64);
                    if failing {
                        log(Ok(format!("viewer statistics written again ({} minutes waited)", waiting.len())));
                        failing = false;
                    }
                    waiting.pop_front();
                }
                Err(e) => {
                    if !failing {
                        let msg = format!("viewer statistics of minute {minute} not written, kept to retry: {e}");
                        log(Err(msg));
                        failing = true;
                    }
                    break;
                }
            }
        }
    }
}

/// A minute's rows, written concurrently.
async fn write(store: &Store, rows: &[Row]) -> Result<(), StoreError> {
    futures::future::try_join_all(rows.iter().map(|r| store.write_stats(r))).await.map(|_| ())
}
