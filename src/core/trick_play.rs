//! Trick play (ARCHITECTURE.md, "Trick play"), for the same views as the media playlist (live,
//! delay, start-over, clip), so scrubbing covers exactly what plays:
//! - I-frame playlists (RFC 8216bis 4.4.3.6, `EXT-X-I-FRAMES-ONLY`): each segment's first key
//!   frame by byte range of the segment itself, found by the uploader when it stored it;
//! - image playlists (`EXT-X-IMAGES-ONLY`, as Roku and Shaka Player read them): a thumbnail of
//!   each segment's first frame, `{msn}.jpg`, one tile per image.

use std::fmt::Write as _;

use crate::clock::iso8601;
use crate::model::{Container, IndexEntry, Rendition};
use crate::playlist::{seconds, target_duration, PDT_SLACK_MS};
use crate::window::{Item, PlaylistType, View};

/// The I-frame playlist of `view`. A key frame is shown until the next one, so each entry lasts
/// its segment (segments start with key frames); segments without a key frame found (gaps, data
/// from before it was recorded) are left out, and the next entry carries its date again.
pub fn iframes(r: &Rendition, view: &View, args: &str) -> String {
    // EXT-X-I-FRAMES-ONLY needs version 4; with EXT-X-MAP, 5 (RFC 8216bis 7).
    let version = if r.container == Container::Fmp4 { 5 } else { 4 };
    let ext = r.container.segment_ext();
    let mut init = None;
    let map = |e: &IndexEntry, out: &mut String| {
        if r.container == Container::Fmp4 && e.init_msn.is_some() && e.init_msn != init {
            init = e.init_msn;
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4{args}\"", e.init_msn.unwrap_or(0));
        }
    };
    let entry = |e: &IndexEntry, out: &mut String| {
        // Kept entries have one (`keep` below).
        if let Some(k) = e.key_frame {
            let _ = write!(out, "#EXT-X-BYTERANGE:{}@{}\n{}.{ext}{args}\n", k.length, k.offset, e.msn);
        }
    };
    listing(r, view, version, "#EXT-X-I-FRAMES-ONLY\n", |e| e.key_frame.is_some(), map, entry)
}

/// The image playlist of `view`: each segment with a thumbnail, one `WxH` tile lasting the
/// segment.
pub fn images(r: &Rendition, size: &str, view: &View, args: &str) -> String {
    let entry = |e: &IndexEntry, out: &mut String| {
        let _ = write!(out, "#EXT-X-TILES:RESOLUTION={size},LAYOUT=1x1,DURATION=");
        seconds(e.duration_us, out);
        let _ = write!(out, "\n{}.jpg{args}\n", e.msn);
    };
    listing(r, view, 7, "#EXT-X-IMAGES-ONLY\n", |e| e.thumbnail, |_, _| {}, entry)
}

/// What both trick-play playlists share: the header with its `only` tag, then each segment
/// `keep` takes, with its discontinuity, `map` lines, date (again after a segment left out) and
/// EXTINF, then what `entry` writes of it; EXT-X-ENDLIST once the view is complete.
fn listing(
    r: &Rendition,
    view: &View,
    version: u8,
    only: &str,
    keep: impl Fn(&IndexEntry) -> bool,
    mut map: impl FnMut(&IndexEntry, &mut String),
    entry: impl Fn(&IndexEntry, &mut String),
) -> String {
    let items = &view.items;
    let mut out = String::with_capacity(256 + items.len() * 80);
    let td = target_duration(r.target_duration, items);
    let (first_msn, first_disc) = items.first().map_or((r.head_msn + 1, r.head_disc_seq), |i| (i.msn(), i.disc_seq()));
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{td}\n#EXT-X-MEDIA-SEQUENCE:{first_msn}\n\
         #EXT-X-DISCONTINUITY-SEQUENCE:{first_disc}\n"
    );
    match view.kind {
        PlaylistType::Live => {}
        PlaylistType::Event => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        PlaylistType::Vod => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
    }
    out.push_str(only);
    let (mut expect_pdt, mut disc_pending) = (None::<i64>, false);
    for (i, item) in items.iter().enumerate() {
        let Item::Segment(e) = item else {
            expect_pdt = None;
            continue;
        };
        disc_pending |= i > 0 && e.discontinuity;
        if !keep(e) {
            expect_pdt = None;
            continue;
        }
        let disc = std::mem::take(&mut disc_pending);
        if disc {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        map(e, &mut out);
        if disc || expect_pdt.is_none_or(|x| (e.pdt_ms - x).abs() > PDT_SLACK_MS) {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(e.pdt_ms));
        }
        expect_pdt = Some(e.pdt_ms + e.duration_us / 1000);
        out.push_str("#EXTINF:");
        seconds(e.duration_us, &mut out);
        out.push_str(",\n");
        entry(e, &mut out);
    }
    if view.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ByteRange, MediaType, SourcePos};

    fn seg(msn: i64, key: bool, discontinuity: bool) -> IndexEntry {
        IndexEntry {
            msn,
            duration_us: 2_000_000,
            pdt_ms: 1_700_000_000_000 + msn * 2000,
            discontinuity,
            disc_seq: discontinuity as i64,
            init_msn: Some(0),
            size: 100_000,
            added_ms: 0,
            key_frame: key.then_some(ByteRange { offset: 24, length: 30_000 + msn as u64 }),
            thumbnail: false,
        }
    }

    fn head(container: Container) -> Rendition {
        Rendition {
            name: "hd".into(),
            container,
            target_duration: 2,
            bandwidth: Some(1),
            codecs: None,
            resolution: None,
            frame_rate: None,
            head_msn: 5,
            head_disc_seq: 0,
            head_pdt_ms: 0,
            source: SourcePos::default(),
            updated_ms: 0,
            ended: false,
            media: MediaType::Video,
            parts: None,
            grouping: Default::default(),
            key_frames: true,
            thumbnails: None,
        }
    }

    #[test]
    fn key_frames_by_byte_range_with_dates_after_holes() {
        let w = [seg(1, true, false), seg(2, false, false), seg(3, true, false), seg(4, true, true)];
        let view = View {
            items: vec![Item::Segment(&w[0]), Item::Segment(&w[1]), Item::Segment(&w[2]), Item::Segment(&w[3])],
            kind: PlaylistType::Vod,
            ended: true,
            at_edge: false,
        };
        let text = iframes(&head(Container::Fmp4), &view, "?t=1");
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:5\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n\
             #EXT-X-MAP:URI=\"init-0.mp4?t=1\"\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n\
             #EXTINF:2.000,\n#EXT-X-BYTERANGE:30001@24\n1.m4s?t=1\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z\n#EXTINF:2.000,\n#EXT-X-BYTERANGE:30003@24\n3.m4s?t=1\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z\n#EXTINF:2.000,\n#EXT-X-BYTERANGE:30004@24\n4.m4s?t=1\n#EXT-X-ENDLIST\n"
        );
        let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
            other => panic!("{other:?}"),
        };
        assert!(parsed.i_frames_only);
        assert_eq!(parsed.segments.len(), 3);
    }

    #[test]
    fn thumbnails_one_tile_per_segment() {
        let mut w = [seg(1, true, false), seg(2, true, false), seg(3, true, false)];
        w[0].thumbnail = true;
        w[2].thumbnail = true;
        let view = View {
            items: w.iter().map(Item::Segment).collect(),
            kind: PlaylistType::Live,
            ended: false,
            at_edge: true,
        };
        let text = images(&head(Container::Ts), "160x90", &view, "");
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-IMAGES-ONLY\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n\
             #EXTINF:2.000,\n#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=1x1,DURATION=2.000\n1.jpg\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z\n#EXTINF:2.000,\n\
             #EXT-X-TILES:RESOLUTION=160x90,LAYOUT=1x1,DURATION=2.000\n3.jpg\n"
        );
    }
}
