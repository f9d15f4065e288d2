//! A worker's copy of the parts of whole segments, so a live playlist with parts re-reads only
//! the parts of the segment in progress: a whole segment's parts never change
//! (ARCHITECTURE.md, "Parts").

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hls_dvr_core::model::Part;
use hls_dvr_store::{Store, StoreError};

/// Copies unused for this long are dropped (they have left every playlist's last segments).
const IDLE: Duration = Duration::from_secs(60);

/// A segment's parts, and when they were last used.
type Kept = (Instant, Arc<[Part]>);

#[derive(Default)]
pub struct PartCache {
    whole: Mutex<HashMap<String, Kept>>,
}

impl PartCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The parts of segments `msns`, in order; those up to `whole_upto` (segments that ended)
    /// come from the copy once read.
    pub async fn read(
        &self,
        store: &Store,
        stream: &str,
        rendition: &str,
        msns: RangeInclusive<i64>,
        whole_upto: i64,
    ) -> Result<Vec<Part>, StoreError> {
        let key = |msn: i64| format!("{stream}/{rendition}/{msn}");
        let reads = msns.map(|msn| {
            let kept = (msn <= whole_upto).then(|| self.get(&key(msn))).flatten();
            async move {
                if let Some(parts) = kept {
                    return Ok(parts);
                }
                let parts: Arc<[Part]> = store.parts(stream, rendition, msn).await?.into();
                if msn <= whole_upto {
                    self.put(key(msn), parts.clone());
                }
                Ok::<_, StoreError>(parts)
            }
        });
        let lists = futures::future::try_join_all(reads).await?;
        Ok(lists.iter().flat_map(|l| l.iter().cloned()).collect())
    }

    fn get(&self, key: &str) -> Option<Arc<[Part]>> {
        let mut map = self.whole.lock().unwrap_or_else(|p| p.into_inner());
        map.get_mut(key).map(|(used, parts)| {
            *used = Instant::now();
            parts.clone()
        })
    }

    fn put(&self, key: String, parts: Arc<[Part]>) {
        let mut map = self.whole.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (used, _)| used.elapsed() < IDLE);
        map.insert(key, (Instant::now(), parts));
    }
}
