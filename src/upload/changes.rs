//! Playlist changes in a stream folder, as inotify reports them (through the `notify` crate): the
//! uploader reads a playlist as soon as the segmenter has written it, instead of at its next poll.
//! Polling stays as the fallback (a file system without inotify, a full inotify table) and the
//! safety net (an event lost in an overflow).

use std::path::Path;
use std::sync::Arc;

use notify::{Event, RecursiveMode, Watcher as _};
use tokio::sync::watch;
use tracing::warn;

/// Counts the playlist changes seen in a folder; renditions wait on receivers of it.
pub struct Changes {
    tx: Arc<watch::Sender<u64>>,
    /// Dropped with the folder's watcher, which stops the events.
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Changes {
    /// Watches `dir` and its subfolders for changes to `*.m3u8` files.
    pub fn watch(dir: &Path) -> Changes {
        let tx = Arc::new(watch::channel(0u64).0);
        let sender = tx.clone();
        let on_event = move |res: notify::Result<Event>| {
            let Ok(ev) = res else { return };
            let playlist = |p: &Path| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("m3u8"));
            // Segment writes are not changes: a segment only counts once a playlist lists it.
            if !ev.kind.is_access() && ev.paths.iter().any(|p| playlist(p)) {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        };
        let watcher = notify::recommended_watcher(on_event).and_then(|mut w| {
            w.watch(dir, RecursiveMode::Recursive)?;
            Ok(w)
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                warn!("cannot watch {} for changes ({e}); polling only", dir.display());
                None
            }
        };
        Changes { tx, _watcher: watcher }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}
