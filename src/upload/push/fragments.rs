//! A pushed segment stored fragment by fragment while it arrives (ARCHITECTURE.md, "Push
//! ingest"): each fragment (`moof`+`mdat`, with the boxes before it) becomes one or more chunks
//! of the segment's blob as soon as its last byte is in, cut at 1 MiB like any blob. The chunks
//! carry bytes alone until the segment ends; then chunk 0 gets the blob's metadata (chunks of
//! varying sizes), and only then the index row names the segment. A segment cut off before its
//! end leaves its fragments stored and no index row: its number is a gap.
//!
//! Each fragment is also a low-latency part (ARCHITECTURE.md, "Parts"): once its chunks are in,
//! a `parts` row says which chunks make it, and the rendition's newest part moves to it.

use std::sync::Arc;

use bytes::Bytes;

use hls_dvr_core::model::{ByteRange, Container, Part};
use hls_dvr_core::mp4::fmp4::{add_fragments, Init};
use hls_dvr_core::mp4::samples::SegmentSamples;
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
    timescale: u64,
    /// The parts so far, one per fragment.
    pub parts: Vec<Part>,
    discontinuity: bool,
    /// Moves the rendition's newest part as parts are stored (once its head row exists).
    publish: bool,
    /// The segment's first key frame, found in its first fragment, and its bytes.
    pub key_frame: Option<ByteRange>,
    pub key_frame_bytes: Option<Bytes>,
    /// The track's init segment, and the sample table read from the fragments so far (or why
    /// there is none; ARCHITECTURE.md, "Clips as files").
    init: Option<Arc<Init>>,
    samples: Result<SegmentSamples, String>,
}

impl Writing {
    pub fn new(
        msn: i64,
        writes: bool,
        timescale: u32,
        discontinuity: bool,
        publish: bool,
        init: Option<Arc<Init>>,
    ) -> Writing {
        Writing {
            msn,
            sizes: Vec::new(),
            writes,
            held: Vec::new(),
            fragments: 0,
            duration: 0,
            timescale: timescale.max(1) as u64,
            parts: Vec::new(),
            discontinuity,
            publish,
            key_frame: None,
            key_frame_bytes: None,
            init,
            samples: Ok(SegmentSamples::default()),
        }
    }

    /// The segment's sample table, stored form, once it is whole.
    pub fn sample_table(&self) -> Result<Vec<u8>, String> {
        let t = self.samples.as_ref()?;
        if t.runs.is_empty() {
            return Err("no samples".into());
        }
        t.check(self.size())?;
        Ok(t.encode())
    }

    /// Media time in microseconds, so that parts add up to their segment exactly.
    pub fn us(&self, duration: u64) -> i64 {
        (duration as u128 * 1_000_000 / self.timescale as u128) as i64
    }

    /// Bytes so far.
    pub fn size(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Adds a fragment of `duration` (in the track's timescale): stored at once with its part
    /// (each write retried until it is in), or held. Err: shutting down while the store was failing.
    pub async fn add(
        &mut self,
        sh: &Uploads,
        stream: &str,
        rendition: &str,
        fragment: Bytes,
        duration: u64,
        independent: bool,
    ) -> Result<(), ()> {
        let first_chunk = self.sizes.len() as u32;
        let before = self.size();
        self.samples = match (std::mem::replace(&mut self.samples, Ok(Default::default())), &self.init) {
            (Ok(mut t), Some(init)) => add_fragments(&fragment, before, init, &mut t).map(|()| t),
            (Ok(_), None) => Err("no init segment".into()),
            (failed, _) => failed,
        };
        if self.fragments == 0 && independent {
            let found = crate::key_frame::locate(Container::Fmp4, &fragment);
            self.key_frame_bytes = found.map(|k| fragment.slice(k.offset as usize..(k.offset + k.length) as usize));
            self.key_frame = found.map(|k| ByteRange { offset: k.offset + before, length: k.length });
        }
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
        let start_us = self.us(self.duration);
        self.duration += duration;
        let part = Part {
            msn: self.msn,
            index: self.parts.len() as i32,
            duration_us: self.us(self.duration) - start_us,
            independent,
            discontinuity: self.discontinuity,
            first_chunk,
            sizes: self.sizes[first_chunk as usize..].to_vec(),
        };
        if self.writes {
            write_part(sh, stream, rendition, &part).await?;
            if self.publish {
                let (what, at) = (format!("newest part of {stream}/{rendition}"), part.pos());
                retry(sh, &mut None, &what, |store| async move { store.set_part_head(stream, rendition, at).await })
                    .await?;
            }
        }
        self.parts.push(part);
        Ok(())
    }

    /// The longest part so far.
    pub fn longest_part_us(&self) -> i64 {
        self.parts.iter().map(|p| p.duration_us).max().unwrap_or(0)
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
        retry(sh, &mut None, &what, |store| async move {
            store.write_arriving_chunk(stream, rendition, msn, chunk, data).await
        })
        .await
    }

    /// Stores the chunks and parts held so far (the claim's holder did not store them).
    pub async fn write_held(&mut self, sh: &Uploads, stream: &str, rendition: &str) -> Result<(), ()> {
        for (i, data) in std::mem::take(&mut self.held).iter().enumerate() {
            self.write_chunk(sh, stream, rendition, i as u32, data).await?;
        }
        for part in &self.parts {
            write_part(sh, stream, rendition, part).await?;
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

/// Records a part whose chunks are stored.
async fn write_part(sh: &Uploads, stream: &str, rendition: &str, part: &Part) -> Result<(), ()> {
    let what = format!("part {}.{} of {stream}/{rendition}", part.msn, part.index);
    retry(sh, &mut None, &what, |store| async move { store.write_part(stream, rendition, part).await }).await
}
