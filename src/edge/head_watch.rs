//! Blocking requests wait here for a rendition's head to reach a segment or a part: blocking
//! playlist reloads (`_HLS_msn`, `_HLS_part`) and requests for the part a playlist hints next.
//!
//! However many requests wait on a rendition, one task per worker polls its head row, and only
//! while someone waits; each waiter is a watch receiver, a few dozen bytes. The head is written
//! right after a segment's index row, and the newest part right after the part's row, so a
//! waiter wakes within one poll of what it waits for being readable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use hls_dvr_core::model::PartPos;
use hls_dvr_core::parts::Wait;
use hls_dvr_store::Store;

/// How often a watched head is read.
pub const POLL: Duration = Duration::from_millis(50);

/// What a poll saw: the newest whole segment and the newest part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    head_msn: i64,
    newest: Option<PartPos>,
}

type Watches = Arc<Mutex<HashMap<String, watch::Sender<Seen>>>>;

#[derive(Default)]
pub struct HeadWatch {
    watches: Watches,
}

impl HeadWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until the head of `stream`/`rendition` has what `wait` asks for: true, or false once
    /// `limit` has passed. Store errors while polling count as "not yet".
    pub async fn wait(&self, store: &Arc<Store>, stream: &str, rendition: &str, wait: Wait, limit: Duration) -> bool {
        let mut rx = {
            let mut map = self.watches.lock().unwrap_or_else(|p| p.into_inner());
            let key = format!("{stream}/{rendition}");
            match map.get(&key) {
                Some(tx) => tx.subscribe(),
                None => {
                    let (tx, rx) = watch::channel(Seen { head_msn: -1, newest: None });
                    map.insert(key.clone(), tx.clone());
                    let poll = poll(self.watches.clone(), key, tx, store.clone(), stream.into(), rendition.into());
                    tokio::spawn(poll);
                    rx
                }
            }
        };
        let reached = rx.wait_for(|seen| wait.reached(seen.head_msn, seen.newest));
        let got = matches!(tokio::time::timeout(limit, reached).await, Ok(Ok(_)));
        got
    }

    /// Renditions being polled now.
    pub fn watched(&self) -> usize {
        self.watches.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

async fn poll(
    watches: Watches,
    key: String,
    tx: watch::Sender<Seen>,
    store: Arc<Store>,
    stream: String,
    rendition: String,
) {
    loop {
        if let Ok(Some(r)) = store.rendition(&stream, &rendition).await {
            let now = Seen { head_msn: r.head_msn, newest: r.parts.and_then(|p| p.newest) };
            tx.send_if_modified(|seen| {
                let newer = now.head_msn > seen.head_msn || now.newest > seen.newest;
                if newer {
                    seen.head_msn = seen.head_msn.max(now.head_msn);
                    seen.newest = seen.newest.max(now.newest);
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
