//! A pushed segment stored fragment by fragment while it arrives (ARCHITECTURE.md, "Push
//! ingest"): each fragment (`moof`+`mdat`, with the boxes before it) becomes one or more chunks
//! of the segment's blob as soon as its last byte is in, cut at 1 MiB like any blob. The chunks
//! carry bytes alone until the segment ends; then chunk 0 gets the blob's metadata (chunks of
//! varying sizes), and only then the index row names the segment. A segment cut off before its
//! end leaves its fragments stored and no index row: its number is a gap.

use bytes::Bytes;

use hls_dvr_store::schema::MAX_CHUNK;
use hls_dvr_store::BlobMeta;

use crate::ingest::{retry, Uploads};

/// A segment being stored (or held, while another receiver's claim says it stores it).
#[derive(Debug)]
pub struct Writing {
    pub msn: i64,
    /// Chunks written (or held) so far, by size.
    sizes: Vec<u64>,
    /// This receiver writes the chunks as they come; else it keeps them in case the receiver
    /// holding the claim never finishes.
    writes: bool,
    held: Vec<Bytes>,
    pub fragments: u32,
    /// Summed fragment durations, in the track's timescale.
    pub duration: u64,
}

impl Writing {
    pub fn new(msn: i64, writes: bool) -> Writing {
        Writing { msn, sizes: Vec::new(), writes, held: Vec::new(), fragments: 0, duration: 0 }
    }

    /// Bytes so far.
    pub fn size(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Adds a fragment: stored at once (each chunk retried until it is in), or held. Err:
    /// shutting down while the store was failing.
    pub async fn add(&mut self, sh: &Uploads, stream: &str, rendition: &str, fragment: Bytes) -> Result<(), ()> {
        let mut at = 0;
        while at < fragment.len() {
            let piece = fragment.slice(at..(at + MAX_CHUNK).min(fragment.len()));
            at += piece.len();
            if self.writes {
                let chunk = self.sizes.len() as u32;
                self.write_chunk(sh, stream, rendition, chunk, &piece).await?;
            } else {
                self.held.push(piece.clone());
            }
            self.sizes.push(piece.len() as u64);
        }
        self.fragments += 1;
        Ok(())
    }

    async fn write_chunk(
        &self,
        sh: &Uploads,
        stream: &str,
        rendition: &str,
        chunk: u32,
        data: &Bytes,
    ) -> Result<(), ()> {
        let msn = self.msn;
        let what = format!("fragment chunk {chunk} of {stream}/{rendition} {msn}");
        retry(sh, &mut None, &what, |store| async move { store.write_part(stream, rendition, msn, chunk, data).await })
            .await
    }

    /// Stores the chunks held so far (the claim's holder did not store them).
    pub async fn write_held(&mut self, sh: &Uploads, stream: &str, rendition: &str) -> Result<(), ()> {
        for (i, data) in std::mem::take(&mut self.held).iter().enumerate() {
            self.write_chunk(sh, stream, rendition, i as u32, data).await?;
        }
        self.writes = true;
        Ok(())
    }

    /// Gives the stored chunks their metadata: from now on the segment reads whole.
    pub async fn seal(&self, sh: &Uploads, stream: &str, rendition: &str) -> Result<(), ()> {
        let (msn, meta) = (self.msn, &BlobMeta::varying(&self.sizes));
        let what = format!("sealing {stream}/{rendition} {msn}");
        retry(sh, &mut None, &what, |store| async move { store.seal_segment(stream, rendition, msn, meta).await }).await
    }
}
