//! Sequence numbers for pushed segments, shared by every receiver of a stream (ARCHITECTURE.md,
//! "Two receivers").
//!
//! A receiver proposes the number after the last one it knows of. The store's lightweight
//! transaction gives it to exactly one copy; a receiver that finds a number held looks at the
//! holder: the same segment (the other receiver's copy, which it then need not store), an older
//! segment of the stream (it moves on to the next number), or a newer one (its own copy came too
//! late to be placed in order, and is dropped). So numbers only increase, a segment holds one
//! number whichever receiver stored it, and the values written for it (date, discontinuity,
//! bucket) are the claim's, the same everywhere.

use std::time::{Duration, Instant};

use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{Claim, Rendition};
use hls_dvr_store::Claimed;

use super::super::ingest::{retry, Uploads};

/// A segment about to be claimed.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The encoder's own number for it: numbers that follow on are one run of the encoder.
    pub seg_no: i64,
    /// What identifies this copy's content at every receiver (media time or a hash of the bytes).
    pub content: String,
    pub pdt_ms: i64,
    pub duration_us: i64,
    /// The encoder or the receiver's own tracking says a discontinuity comes before it.
    pub discontinuity: bool,
}

impl Proposal {
    /// The claim's `source`: the same string at every receiver for the same segment.
    pub fn source(&self) -> String {
        format!("{}:{}", self.seg_no, self.content)
    }
}

/// How a claim ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Ours: this receiver stores the segment under `msn`, with the claim's values.
    Won { msn: i64, claim: Claim },
    /// Another receiver claimed the same segment: it stores it (this copy is kept until it has).
    Copy { msn: i64, claim: Claim },
    /// Newer segments hold the numbers already: this copy arrived too late to be placed.
    Late { newer: Claim },
}

/// What a number's holder means for a copy that wanted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The same segment.
    Same,
    /// A newer segment: the copy is late.
    Late,
    /// An older segment: try the next number.
    Pass,
}

/// Judges a number's holder against a proposal. The same segment is the same source at about
/// the same date: an encoder restarted with the same settings may send a segment with the same
/// number and the same media time (or, from a test pattern, the same bytes) again, later.
pub fn judge(p: &Proposal, source: &str, held: &Claim) -> Verdict {
    // Dates of one segment differ between receivers only when they come from arrival times:
    // half a segment (at least 250 ms) of slack tells a later segment from the same one.
    let slack = (p.duration_us / 2000).max(250);
    if held.source == source && (held.pdt_ms - p.pdt_ms).abs() <= slack {
        Verdict::Same
    } else if held.pdt_ms > p.pdt_ms + slack {
        Verdict::Late
    } else {
        Verdict::Pass
    }
}

/// Whether a segment numbered `seg_no` follows the claim before it in the same encoder run.
pub fn follows(prev_source: &str, seg_no: i64) -> bool {
    prev_source.split(':').next().and_then(|n| n.parse::<i64>().ok()).is_some_and(|n| n + 1 == seg_no)
}

/// One rendition's numbers, as this receiver knows them.
#[derive(Debug, Clone)]
pub struct Claims {
    receiver: String,
    next_msn: i64,
    /// The claim on `next_msn - 1`, when known: it decides discontinuities.
    prev: Option<Claim>,
    prev_disc_seq: i64,
}

impl Claims {
    /// Continues after the store's head (a new rendition starts at 0).
    pub fn resume(receiver: &str, head: Option<&Rendition>) -> Claims {
        let (next_msn, prev_disc_seq) = match head {
            Some(h) if h.head_msn >= 0 => (h.head_msn + 1, h.head_disc_seq),
            _ => (0, 0),
        };
        Claims { receiver: receiver.to_string(), next_msn, prev: None, prev_disc_seq }
    }

    /// A rendition's numbers as the store has them now: after its head, knowing the claim before.
    /// Returns the head too. None: shutting down first.
    pub async fn start(
        sh: &Uploads,
        receiver: &str,
        stream: &str,
        rendition: &str,
    ) -> Option<(Claims, Option<Rendition>)> {
        let head = crate::rendition::read_head(sh, stream, rendition).await?;
        let mut claims = Claims::resume(receiver, head.as_ref());
        claims.learn_prev(sh, stream, rendition).await.ok()?;
        Some((claims, head))
    }

    /// Learns the claim on the number before the next one (a receiver restarted mid-stream
    /// then continues a run without a discontinuity). Err: shutting down.
    async fn learn_prev(&mut self, sh: &Uploads, stream: &str, rendition: &str) -> Result<(), ()> {
        if self.next_msn == 0 {
            return Ok(());
        }
        let msn = self.next_msn - 1;
        let what = format!("reading the claim on {stream}/{rendition} {msn}");
        let got =
            retry(sh, &mut None, &what, |store| async move { store.read_claim(stream, rendition, msn).await }).await?;
        if let Some(c) = got {
            self.prev_disc_seq = c.disc_seq;
            self.prev = Some(c);
        }
        Ok(())
    }

    /// The claim this receiver would make on the next number.
    fn ours(&self, p: &Proposal, source: &str) -> Claim {
        // A segment that does not follow the one before it starts a discontinuity: an encoder
        // restarted (maybe against the other receiver), or segments in between were lost.
        let follows = self.prev.as_ref().is_none_or(|c| follows(&c.source, p.seg_no));
        let disc = p.discontinuity || !follows || (self.prev.is_none() && self.next_msn > 0);
        Claim {
            source: source.to_string(),
            receiver: self.receiver.clone(),
            pdt_ms: p.pdt_ms,
            duration_us: p.duration_us,
            discontinuity: disc,
            disc_seq: self.prev_disc_seq + disc as i64,
            added_ms: now_ms(),
        }
    }

    fn took(&mut self, msn: i64, c: &Claim) {
        self.next_msn = msn + 1;
        self.prev_disc_seq = c.disc_seq;
        self.prev = Some(c.clone());
    }

    /// Places a segment: claims numbers from the next one on until one is ours or holds the
    /// same segment, or a newer segment shows this copy is late. Err: shutting down while the
    /// store was failing.
    pub async fn place(&mut self, sh: &Uploads, stream: &str, rendition: &str, p: &Proposal) -> Result<Placed, ()> {
        let source = p.source();
        let mut permit = None;
        // Placed already (a copy catching up after a restart): its number, not a new one.
        let what = format!("looking up {stream}/{rendition} {source}");
        let src = &source;
        let placed =
            retry(sh, &mut permit, &what, |store| async move { store.source_msn(stream, rendition, src).await })
                .await?;
        if let Some(msn) = placed {
            let what = format!("reading the claim on {stream}/{rendition} {msn}");
            let held =
                retry(sh, &mut permit, &what, |store| async move { store.read_claim(stream, rendition, msn).await })
                    .await?;
            if let Some(claim) = held.filter(|c| judge(p, &source, c) == Verdict::Same) {
                return Ok(Placed::Copy { msn, claim });
            }
        }
        loop {
            let msn = self.next_msn;
            let ours = self.ours(p, &source);
            let what = format!("claim of {stream}/{rendition} {msn} for {source}");
            let ours_ref = &ours;
            let got =
                retry(
                    sh,
                    &mut permit,
                    &what,
                    |store| async move { store.claim(stream, rendition, msn, ours_ref).await },
                )
                .await?;
            match got {
                Claimed::Won => {
                    self.took(msn, &ours);
                    let what = format!("recording the claim of {stream}/{rendition} {msn}");
                    retry(sh, &mut permit, &what, |store| async move {
                        store.record_source(stream, rendition, src, msn).await
                    })
                    .await?;
                    return Ok(Placed::Won { msn, claim: ours });
                }
                Claimed::Held(held) => match judge(p, &source, &held) {
                    Verdict::Same => {
                        self.took(msn, &held);
                        return Ok(Placed::Copy { msn, claim: held });
                    }
                    Verdict::Late => return Ok(Placed::Late { newer: held }),
                    Verdict::Pass => self.took(msn, &held),
                },
            }
        }
    }
}

/// How long a receiver leaves a segment to the receiver holding its claim: a live holder stores
/// a segment in milliseconds, so one target duration and a second mean it died on the way. (A
/// holder that is only slow costs an identical second write, nothing more.)
pub fn holder_wait(target_duration_s: i32) -> Duration {
    Duration::from_secs(target_duration_s.max(1) as u64 + 1)
}

/// Waits until the receiver holding the claim on `msn` has stored the segment (the head has
/// reached it), at most `wait`. False: it has not (it may have died on the way), and this
/// receiver's copy must be stored instead. Err: shutting down.
pub async fn stored_by_holder(
    sh: &Uploads,
    stream: &str,
    rendition: &str,
    msn: i64,
    wait: Duration,
) -> Result<bool, ()> {
    let until = Instant::now() + wait;
    let mut shutdown = sh.shutdown.clone();
    loop {
        let head = sh.with_store(|store| async move { store.rendition(stream, rendition).await }).await;
        if head.is_ok_and(|h| h.is_some_and(|h| h.head_msn >= msn)) {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.wait_for(|s| *s) => return Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(source: &str, pdt_ms: i64) -> Claim {
        Claim {
            source: source.into(),
            receiver: "r2".into(),
            pdt_ms,
            duration_us: 2_000_000,
            discontinuity: false,
            disc_seq: 0,
            added_ms: 0,
        }
    }

    fn proposal(seg_no: i64, pdt_ms: i64) -> Proposal {
        Proposal { seg_no, content: format!("h{seg_no}"), pdt_ms, duration_us: 2_000_000, discontinuity: false }
    }

    #[test]
    fn holders_are_the_same_segment_an_older_one_or_a_newer_one() {
        let p = proposal(7, 14_000);
        assert_eq!(judge(&p, &p.source(), &claim("7:h7", 14_000)), Verdict::Same);
        // The same number with other content (an encoder restarted): not the same segment.
        assert_eq!(judge(&p, &p.source(), &claim("7:other", 14_000)), Verdict::Pass);
        assert_eq!(judge(&p, &p.source(), &claim("6:h6", 12_000)), Verdict::Pass);
        assert_eq!(judge(&p, &p.source(), &claim("8:h8", 16_000)), Verdict::Late);
        // Arrival-time dates a little apart still pass.
        assert_eq!(judge(&p, &p.source(), &claim("6:h6", 14_900)), Verdict::Pass);
        assert_eq!(judge(&p, &p.source(), &claim("7:h7", 14_300)), Verdict::Same);
        // The same source long before: an encoder restarted with the same settings, not a copy.
        assert_eq!(judge(&p, &p.source(), &claim("7:h7", 4_000)), Verdict::Pass);
    }

    #[test]
    fn runs_follow_on_by_the_encoders_numbers() {
        assert!(follows("6:abc", 7));
        assert!(!follows("6:abc", 1));
        assert!(!follows("garbage", 7));
        let mut c = Claims::resume("r1", None);
        let first = c.ours(&proposal(0, 0), "0:h0");
        assert_eq!((first.discontinuity, first.disc_seq), (false, 0));
        c.took(0, &first);
        let next = c.ours(&proposal(1, 2000), "1:h1");
        assert!(!next.discontinuity);
        c.took(1, &next);
        // The encoder restarted: numbering went back.
        let restarted = c.ours(&proposal(0, 9000), "0:x");
        assert_eq!((restarted.discontinuity, restarted.disc_seq), (true, 1));
    }

    #[test]
    fn a_receiver_resuming_after_the_head_starts_with_a_discontinuity() {
        let head = Rendition {
            name: "v".into(),
            container: hls_dvr_core::model::Container::Fmp4,
            target_duration: 2,
            bandwidth: None,
            codecs: None,
            resolution: None,
            frame_rate: None,
            head_msn: 41,
            head_disc_seq: 3,
            head_pdt_ms: 0,
            source: Default::default(),
            updated_ms: 0,
            ended: false,
            media: hls_dvr_core::model::MediaType::Video,
            parts: None,
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        };
        let c = Claims::resume("r1", Some(&head));
        let ours = c.ours(&proposal(100, 0), "100:h");
        // It cannot know the segment before: it says so with a discontinuity (a claim it
        // finds on the way replaces that guess).
        assert_eq!((c.next_msn, ours.discontinuity, ours.disc_seq), (42, true, 4));
    }
}
