//! The multivariant playlist (RFC 8216bis 4.4.6): the stream's variants, and the alternative
//! audio, subtitles and closed captions they refer to (ARCHITECTURE.md, "Groups").
//!
//! Groups come from the segmenter's own multivariant playlist when it wrote one (its GROUP-IDs,
//! names, languages and defaults, kept by the uploader). A CMAF push has none: its audio
//! renditions form one group, `audio`, the first by name the default, and every video variant
//! names it, its BANDWIDTH and CODECS then counting the largest audio rendition too, as RFC
//! 8216bis asks (a segmenter's own BANDWIDTH counts its groups already).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{Caption, MediaType, Rendition};

/// GROUP-ID of alternatives that came without one (a CMAF push).
const IMPLICIT_AUDIO: &str = "audio";
const IMPLICIT_SUBTITLES: &str = "subtitles";

/// BANDWIDTH is mandatory: a rendition whose bandwidth is not known yet is listed with 1, so
/// players treat it as the lowest variant until the uploader learns it. `variant_query` (empty,
/// or `?...`) follows every URI, so each rendition's playlist shows the range the multivariant
/// playlist was asked for.
pub fn master(renditions: &[Rendition], variant_query: &str) -> String {
    let mut out = String::with_capacity(128 + renditions.len() * 160);
    let groups = Groups::of(renditions);
    let captions = captions(renditions);
    // INSTREAM-ID SERVICEn needs version 7 (RFC 8216bis 7).
    let version = if captions.iter().any(|c| c.instream_id.starts_with("SERVICE")) { 7 } else { 3 };
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for ((kind, id), members) in &groups.0 {
        write_group(*kind, id, members, variant_query, &mut out);
    }
    for c in &captions {
        let _ = write!(out, "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"{}\",NAME=\"{}\"", c.group, c.label);
        if let Some(l) = &c.language {
            let _ = write!(out, ",LANGUAGE=\"{l}\"");
        }
        let _ = writeln!(
            out,
            ",DEFAULT={},AUTOSELECT={},INSTREAM-ID=\"{}\"",
            yes(c.default),
            yes(c.autoselect || c.default),
            c.instream_id
        );
    }
    let mut variants: Vec<&Rendition> = renditions.iter().filter(|r| !r.media.is_alternative()).collect();
    // Lowest bandwidth first: players that start at the first variant start fast.
    variants.sort_by(|a, b| a.bandwidth.unwrap_or(0).cmp(&b.bandwidth.unwrap_or(0)).then(a.name.cmp(&b.name)));
    for r in variants {
        let g = &r.grouping;
        let explicit_audio = g.audio.as_deref().filter(|id| groups.has(MediaType::Audio, id));
        // A CMAF push's video names the implicit audio group, and counts it.
        let implicit_audio = explicit_audio.is_none() && r.media == MediaType::Video;
        let implicit = implicit_audio.then(|| groups.get(MediaType::Audio, IMPLICIT_AUDIO)).flatten();
        let audio = explicit_audio.or(implicit.map(|_| IMPLICIT_AUDIO));
        let added_bw = implicit.map_or(0, |m| m.iter().filter_map(|a| a.bandwidth).max().unwrap_or(0));
        let bandwidth = r.bandwidth.filter(|b| *b > 0).map(|b| b + added_bw);
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", bandwidth.unwrap_or(1));
        if let Some(c) = r.codecs.as_deref().filter(|c| is_attr_safe(c)) {
            let added = implicit.and_then(|m| m.first()).and_then(|a| a.codecs.as_deref()).filter(|c| is_attr_safe(c));
            match added {
                Some(a) => {
                    let _ = write!(out, ",CODECS=\"{c},{a}\"");
                }
                None => {
                    let _ = write!(out, ",CODECS=\"{c}\"");
                }
            }
        }
        if let Some(res) = r.resolution.as_deref().filter(|s| is_resolution(s)) {
            let _ = write!(out, ",RESOLUTION={res}");
        }
        if let Some(fr) = r.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
            let _ = write!(out, ",FRAME-RATE={fr:.3}");
        }
        if let Some(a) = audio {
            let _ = write!(out, ",AUDIO=\"{a}\"");
        }
        let subtitles = g.subtitles.as_deref().filter(|id| groups.has(MediaType::Subtitles, id));
        if let Some(s) = subtitles {
            let _ = write!(out, ",SUBTITLES=\"{s}\"");
        }
        if let Some(c) = captions.iter().find(|c| g.captions.iter().any(|own| own.group == c.group)) {
            let _ = write!(out, ",CLOSED-CAPTIONS=\"{}\"", c.group);
        }
        let _ = write!(out, "\n{}/index.m3u8{variant_query}\n", r.name);
    }
    // Trick play: an I-frame playlist for each variant whose key frames the uploader recorded.
    // Its BANDWIDTH is the variant's: an upper bound of what its key frames take.
    for r in renditions.iter().filter(|r| r.key_frames && !r.media.is_alternative()) {
        let _ = write!(out, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={}", r.bandwidth.filter(|b| *b > 0).unwrap_or(1));
        let video: Vec<&str> =
            r.codecs.iter().flat_map(|c| c.split(',')).map(str::trim).filter(|c| is_video_codec(c)).collect();
        if !video.is_empty() && video.iter().all(|c| is_attr_safe(c)) {
            let _ = write!(out, ",CODECS=\"{}\"", video.join(","));
        }
        if let Some(res) = r.resolution.as_deref().filter(|s| is_resolution(s)) {
            let _ = write!(out, ",RESOLUTION={res}");
        }
        let _ = writeln!(out, ",URI=\"{}/iframes.m3u8{variant_query}\"", r.name);
    }
    // Scrubbing thumbnails: an image playlist (as Roku and Shaka Player read them) for each
    // variant the uploader makes thumbnails of. Its BANDWIDTH: a 10 KB image per 2 s.
    for r in renditions.iter().filter(|r| !r.media.is_alternative()) {
        let Some(size) = r.thumbnails.as_deref().filter(|s| is_resolution(s)) else { continue };
        let _ = writeln!(
            out,
            "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=40000,RESOLUTION={size},CODECS=\"jpeg\",URI=\"{}/images.m3u8{variant_query}\"",
            r.name
        );
    }
    out
}

/// A video codec of a CODECS list (RFC 6381 names).
fn is_video_codec(c: &str) -> bool {
    ["avc1", "avc3", "hvc1", "hev1", "vp09", "av01", "mp4v", "dvh1", "dvhe"].iter().any(|p| c.starts_with(p))
}

/// The alternatives by type and GROUP-ID, each group in name order.
struct Groups<'a>(BTreeMap<(MediaType, String), Vec<&'a Rendition>>);

impl<'a> Groups<'a> {
    fn of(renditions: &'a [Rendition]) -> Groups<'a> {
        let mut map: BTreeMap<(MediaType, String), Vec<&Rendition>> = BTreeMap::new();
        for r in renditions.iter().filter(|r| r.media.is_alternative()) {
            let implicit = if r.media == MediaType::Audio { IMPLICIT_AUDIO } else { IMPLICIT_SUBTITLES };
            let id = r.grouping.group.as_deref().filter(|g| is_attr_safe(g)).unwrap_or(implicit);
            map.entry((r.media, id.to_string())).or_default().push(r);
        }
        for members in map.values_mut() {
            members.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Groups(map)
    }

    fn get(&self, kind: MediaType, id: &str) -> Option<&[&'a Rendition]> {
        self.0.get(&(kind, id.to_string())).map(Vec::as_slice)
    }

    fn has(&self, kind: MediaType, id: &str) -> bool {
        self.get(kind, id).is_some()
    }
}

/// One group's EXT-X-MEDIA lines. At most one DEFAULT=YES: the first that says so; in the
/// implicit group, the first (a declared group may have none: subtitles off until chosen).
/// NAMEs unique within the group (a repeated one gives way to the rendition's name).
fn write_group(kind: MediaType, id: &str, members: &[&Rendition], query: &str, out: &mut String) {
    let declared = members.iter().any(|r| r.grouping.group.is_some());
    let default = members.iter().position(|r| r.grouping.default).or((!declared).then_some(0));
    let mut names: Vec<&str> = Vec::with_capacity(members.len());
    let kind_attr = if kind == MediaType::Audio { "AUDIO" } else { "SUBTITLES" };
    for (i, r) in members.iter().enumerate() {
        let g = &r.grouping;
        let label = g.label.as_deref().filter(|l| is_attr_safe(l) && !names.contains(l)).unwrap_or(&r.name);
        names.push(label);
        let _ = write!(out, "#EXT-X-MEDIA:TYPE={kind_attr},GROUP-ID=\"{id}\",NAME=\"{label}\"");
        if let Some(l) = g.language.as_deref().filter(|l| is_language(l)) {
            let _ = write!(out, ",LANGUAGE=\"{l}\"");
        }
        let is_default = default == Some(i);
        let _ = write!(out, ",DEFAULT={},AUTOSELECT={}", yes(is_default), yes(is_default || g.autoselect));
        if let Some(c) = g.characteristics.as_deref().filter(|c| is_attr_safe(c)) {
            let _ = write!(out, ",CHARACTERISTICS=\"{c}\"");
        }
        if let Some(c) = g.channels.as_deref().filter(|c| kind == MediaType::Audio && is_attr_safe(c)) {
            let _ = write!(out, ",CHANNELS=\"{c}\"");
        }
        let _ = writeln!(out, ",URI=\"{}/index.m3u8{query}\"", r.name);
    }
}

/// The caption channels the variants declare, once each, valid ones only.
fn captions(renditions: &[Rendition]) -> Vec<&Caption> {
    let mut out: Vec<&Caption> = Vec::new();
    for c in renditions.iter().filter(|r| !r.media.is_alternative()).flat_map(|r| &r.grouping.captions) {
        let fits = is_attr_safe(&c.group)
            && is_attr_safe(&c.label)
            && Caption::valid_instream_id(&c.instream_id)
            && c.language.as_deref().is_none_or(is_language);
        let taken = out.iter().any(|o| o.group == c.group && (o.instream_id == c.instream_id || o.label == c.label));
        if fits && !taken {
            out.push(c);
        }
    }
    out
}

fn yes(b: bool) -> &'static str {
    if b {
        "YES"
    } else {
        "NO"
    }
}

/// A quoted-string attribute value: printable ASCII without `"`, so it is written as is.
/// (Language tags and labels from other scripts are percent-free UTF-8 in RFC 8216bis, but a
/// player-visible label is the segmenter's to choose: non-ASCII ones are allowed too.)
pub fn is_attr_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c != '"' && !c.is_control())
}

/// An RFC 5646 language tag, loosely: letters, digits and hyphens.
fn is_language(s: &str) -> bool {
    !s.is_empty() && s.len() <= 35 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_resolution(s: &str) -> bool {
    match s.split_once('x') {
        Some((w, h)) => w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Container, Grouping, SourcePos};

    fn rendition(name: &str, media: MediaType, bandwidth: i64, codecs: &str) -> Rendition {
        Rendition {
            name: name.into(),
            container: Container::Ts,
            target_duration: 2,
            bandwidth: Some(bandwidth),
            codecs: Some(codecs.into()),
            resolution: Some("1280x720".into()),
            frame_rate: Some(25.0),
            head_msn: 9,
            head_disc_seq: 1,
            head_pdt_ms: 0,
            source: SourcePos::default(),
            updated_ms: 0,
            ended: false,
            media,
            parts: None,
            grouping: Grouping::default(),
            key_frames: false,
            thumbnails: None,
        }
    }

    fn parse(text: &str) -> m3u8_rs::MasterPlaylist {
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
            other => panic!("{other:?}\n{text}"),
        }
    }

    #[test]
    fn variants_with_their_attributes_lowest_first() {
        let hd = rendition("hd", MediaType::Muxed, 2_000_000, "avc1.64001f,mp4a.40.2");
        let mut sd = rendition("sd", MediaType::Muxed, 500_000, "avc1.64001f,mp4a.40.2");
        sd.resolution = Some("bad\"res".into());
        let mut unknown = rendition("x", MediaType::Muxed, 0, "");
        unknown.bandwidth = None;
        unknown.codecs = None;
        let text = master(&[hd, sd, unknown], "");
        let pl = parse(&text);
        let uris: Vec<_> = pl.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(uris, vec!["x/index.m3u8", "sd/index.m3u8", "hd/index.m3u8"]);
        assert_eq!(pl.variants[2].bandwidth, 2_000_000);
        assert_eq!(pl.variants[2].codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert!(pl.variants[1].resolution.is_none());
        assert_eq!(pl.variants[0].bandwidth, 1);
        assert!(pl.alternatives.is_empty());
    }

    #[test]
    fn a_cmaf_push_audio_forms_the_implicit_group_and_is_counted() {
        let video = rendition("stream0", MediaType::Video, 1_000_000, "avc1.64001f");
        let audio = rendition("stream1", MediaType::Audio, 128_000, "mp4a.40.2");
        let text = master(&[video, audio], "?t=1");
        let pl = parse(&text);
        assert_eq!(pl.variants.len(), 1, "{text}");
        let v = &pl.variants[0];
        assert_eq!((v.uri.as_str(), v.bandwidth), ("stream0/index.m3u8?t=1", 1_128_000));
        assert_eq!(v.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(v.audio.as_deref(), Some("audio"));
        let a = &pl.alternatives[0];
        assert_eq!((a.group_id.as_str(), a.name.as_str(), a.default, a.autoselect), ("audio", "stream1", true, true));
        assert_eq!(a.uri.as_deref(), Some("stream1/index.m3u8?t=1"));
    }

    /// What ffmpeg's `-var_stream_map` declares: two audio languages, subtitles, and captions
    /// a segmenter declares for the video.
    fn declared() -> Vec<Rendition> {
        let mut v = rendition("out_0", MediaType::Muxed, 900_000, "avc1.42c00c,mp4a.40.2");
        v.grouping.audio = Some("aud".into());
        v.grouping.subtitles = Some("subs".into());
        v.grouping.captions = vec![Caption {
            group: "cc".into(),
            instream_id: "CC1".into(),
            label: "Português (CC)".into(),
            language: Some("por".into()),
            default: false,
            autoselect: true,
        }];
        let mut low = v.clone();
        low.name = "out_1".into();
        low.bandwidth = Some(300_000);
        let mut por = rendition("out_por", MediaType::Audio, 130_000, "mp4a.40.2");
        por.grouping = Grouping {
            group: Some("aud".into()),
            label: Some("Português".into()),
            language: Some("por".into()),
            default: true,
            autoselect: true,
            channels: Some("2".into()),
            ..Grouping::default()
        };
        let mut desc = rendition("out_ad", MediaType::Audio, 64_000, "mp4a.40.2");
        desc.grouping = Grouping {
            group: Some("aud".into()),
            label: Some("Audiodescrição".into()),
            language: Some("por".into()),
            characteristics: Some("public.accessibility.describes-video".into()),
            ..Grouping::default()
        };
        let mut subs = rendition("out_vtt", MediaType::Subtitles, 1_000, "wvtt");
        subs.container = Container::WebVtt;
        subs.grouping = Grouping {
            group: Some("subs".into()),
            label: Some("Legendas".into()),
            language: Some("por".into()),
            ..Grouping::default()
        };
        vec![v, low, por, desc, subs]
    }

    #[test]
    fn declared_groups_languages_subtitles_and_captions_are_listed() {
        let text = master(&declared(), "?start=1");
        let pl = parse(&text);
        assert_eq!(pl.variants.len(), 2, "{text}");
        for v in &pl.variants {
            assert_eq!(v.audio.as_deref(), Some("aud"));
            assert_eq!(v.subtitles.as_deref(), Some("subs"));
            assert_eq!(v.closed_captions, Some(m3u8_rs::ClosedCaptionGroupId::GroupId("cc".into())));
        }
        // The segmenter's BANDWIDTH and CODECS count the groups already.
        assert_eq!(pl.variants[1].bandwidth, 900_000);
        assert_eq!(pl.variants[1].codecs.as_deref(), Some("avc1.42c00c,mp4a.40.2"));
        let media: Vec<_> = pl
            .alternatives
            .iter()
            .map(|a| (a.media_type.to_string(), a.group_id.as_str(), a.name.as_str(), a.default, a.language.as_deref()))
            .collect();
        assert_eq!(
            media,
            vec![
                ("AUDIO".into(), "aud", "Audiodescrição", false, Some("por")),
                ("AUDIO".into(), "aud", "Português", true, Some("por")),
                ("SUBTITLES".into(), "subs", "Legendas", false, Some("por")),
                ("CLOSED-CAPTIONS".into(), "cc", "Português (CC)", false, Some("por")),
            ]
        );
        assert!(text.contains("CHARACTERISTICS=\"public.accessibility.describes-video\""), "{text}");
        assert!(text.contains("CHANNELS=\"2\""), "{text}");
        assert!(text.contains("INSTREAM-ID=\"CC1\""), "{text}");
        assert!(text.contains("URI=\"out_vtt/index.m3u8?start=1\""), "{text}");
        assert!(!text.contains("INSTREAM-ID=\"CC1\",URI"), "captions have no URI: {text}");
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"));
    }

    #[test]
    fn groups_not_stored_yet_and_bad_values_are_left_out() {
        let mut all = declared();
        // Only the variants arrived so far: they name no group that is not listed.
        all.truncate(2);
        all[0].grouping.captions[0].instream_id = "CC9".into();
        all[1].grouping.captions[0].label = "say \"hi\"".into();
        let text = master(&all, "");
        assert!(!text.contains("AUDIO="), "{text}");
        assert!(!text.contains("SUBTITLES="), "{text}");
        assert!(!text.contains("CLOSED-CAPTIONS"), "{text}");
        // Two defaults in one group: the first by name wins; a repeated label gives way to the
        // rendition's name.
        let mut all = declared();
        all[3].grouping.default = true;
        all[3].grouping.label = Some("Português".into());
        let text = master(&all, "");
        assert_eq!(text.matches("DEFAULT=YES").count(), 1, "{text}");
        assert!(text.contains("NAME=\"Português\",LANGUAGE=\"por\",DEFAULT=YES"), "{text}");
        assert!(text.contains("NAME=\"out_por\",LANGUAGE=\"por\",DEFAULT=NO"), "{text}");
    }

    #[test]
    fn service_captions_need_version_7() {
        let mut all = declared();
        all[0].grouping.captions[0].instream_id = "SERVICE3".into();
        assert!(master(&all, "").starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"));
        assert!(Caption::valid_instream_id("SERVICE63"));
        assert!(!Caption::valid_instream_id("SERVICE64"));
        assert!(!Caption::valid_instream_id("SERVICE01"));
        assert!(!Caption::valid_instream_id("CC0"));
    }

    #[test]
    fn variants_with_key_frames_have_i_frame_playlists() {
        let mut hd = rendition("hd", MediaType::Muxed, 2_000_000, "avc1.64001f,mp4a.40.2");
        hd.key_frames = true;
        let mut audio = rendition("aac", MediaType::Audio, 64_000, "mp4a.40.2");
        audio.key_frames = true;
        let sd = rendition("sd", MediaType::Muxed, 500_000, "avc1.42c01e,mp4a.40.2");
        let text = master(&[hd, audio, sd], "?start=1");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF")).collect();
        assert_eq!(
            lines,
            ["#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=2000000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,URI=\"hd/iframes.m3u8?start=1\""]
        );
        let pl = parse(&text);
        assert_eq!(pl.variants.iter().filter(|v| v.is_i_frame).count(), 1);
    }

    #[test]
    fn variants_with_thumbnails_have_image_playlists() {
        let mut sd = rendition("sd", MediaType::Muxed, 500_000, "avc1.42c01e,mp4a.40.2");
        sd.thumbnails = Some("160x90".into());
        let mut bad = rendition("x", MediaType::Muxed, 500_000, "avc1.42c01e");
        bad.thumbnails = Some("big".into());
        let text = master(&[sd, bad], "");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-IMAGE-STREAM-INF")).collect();
        assert_eq!(
            lines,
            ["#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=40000,RESOLUTION=160x90,CODECS=\"jpeg\",URI=\"sd/images.m3u8\""]
        );
    }

    #[test]
    fn the_range_is_passed_on() {
        let text = master(&[rendition("hd", MediaType::Muxed, 1, "avc1")], "?start=1.000&end=2.000");
        assert!(text.contains("\nhd/index.m3u8?start=1.000&end=2.000\n"), "{text}");
    }
}
