//! Blocking playlist reloads wait here for a rendition's head to reach a segment.
//!
//! However many requests wait on a rendition, one task per worker polls its head row, and only
//! while someone waits; each waiter is a watch receiver, a few dozen bytes. The head is written
//! right after a segment's index row, so a waiter wakes within one poll of the row being readable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use hls_dvr_store::Store;

/// How often a watched head is read.
pub const POLL: Duration = Duration::from_millis(50);

type Watches = Arc<Mutex<HashMap<String, watch::Sender<i64>>>>;

#[derive(Default)]
pub struct HeadWatch {
    watches: Watches,
}

impl HeadWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until the head of `stream`/`rendition` is at `msn` or later: true, or false once
    /// `limit` has passed. Store errors while polling count as "not yet".
    pub async fn wait_for(&self, store: &Arc<Store>, stream: &str, rendition: &str, msn: i64, limit: Duration) -> bool {
        let mut rx = {
            let mut map = self.watches.lock().unwrap_or_else(|p| p.into_inner());
            let key = format!("{stream}/{rendition}");
            match map.get(&key) {
                Some(tx) => tx.subscribe(),
                None => {
                    let (tx, rx) = watch::channel(-1);
                    map.insert(key.clone(), tx.clone());
                    let poll = poll(self.watches.clone(), key, tx, store.clone(), stream.into(), rendition.into());
                    tokio::spawn(poll);
                    rx
                }
            }
        };
        let reached = matches!(tokio::time::timeout(limit, rx.wait_for(|head| *head >= msn)).await, Ok(Ok(_)));
        reached
    }

    /// Renditions being polled now.
    pub fn watched(&self) -> usize {
        self.watches.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

async fn poll(
    watches: Watches,
    key: String,
    tx: watch::Sender<i64>,
    store: Arc<Store>,
    stream: String,
    rendition: String,
) {
    loop {
        if let Ok(Some(r)) = store.rendition(&stream, &rendition).await {
            tx.send_if_modified(|head| {
                let newer = r.head_msn > *head;
                if newer {
                    *head = r.head_msn;
                }
                newer
            });
        }
        tokio::time::sleep(POLL).await;
        // Under the lock, so that a waiter arriving now either finds this poller or starts one.
        let mut map = watches.lock().unwrap_or_else(|p| p.into_inner());
        if tx.receiver_count() == 0 {
            map.remove(&key);
            return;
        }
    }
}
