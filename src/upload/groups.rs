//! What a segmenter's multivariant playlist declares of each rendition it names: a variant's
//! BANDWIDTH, CODECS and the groups it plays with; an alternative's EXT-X-MEDIA attributes
//! (ARCHITECTURE.md, "Groups"). Kept on the rendition's head so the module's multivariant
//! playlist declares the same groups, languages and defaults.

use m3u8_rs::{AlternativeMedia, AlternativeMediaType, ClosedCaptionGroupId, MasterPlaylist};

use hls_dvr_core::model::{Caption, Grouping, MediaType};

/// What a multivariant playlist says about one rendition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantInfo {
    pub bandwidth: Option<i64>,
    pub codecs: Option<String>,
    pub resolution: Option<String>,
    pub frame_rate: Option<f64>,
    pub media: MediaType,
    pub grouping: Grouping,
}

/// Every media playlist a multivariant playlist names (URIs as written), with what it says of
/// each: variants first, then alternatives with a URI (closed captions have none: they are
/// carried in the video, and declared on the variants that name their group).
pub fn declared(m: &MasterPlaylist) -> Vec<(String, VariantInfo)> {
    let mut out: Vec<(String, VariantInfo)> = Vec::new();
    for v in m.variants.iter().filter(|v| !v.is_i_frame) {
        let captions = match &v.closed_captions {
            Some(ClosedCaptionGroupId::GroupId(g)) => m
                .alternatives
                .iter()
                .filter(|a| a.media_type == AlternativeMediaType::ClosedCaptions && a.group_id == *g)
                .filter_map(caption)
                .collect(),
            _ => Vec::new(),
        };
        let info = VariantInfo {
            bandwidth: Some(v.bandwidth as i64),
            codecs: v.codecs.clone(),
            resolution: v.resolution.map(|r| format!("{}x{}", r.width, r.height)),
            frame_rate: v.frame_rate,
            media: MediaType::Muxed,
            grouping: Grouping {
                audio: v.audio.clone(),
                subtitles: v.subtitles.clone(),
                captions,
                ..Grouping::default()
            },
        };
        if !out.iter().any(|(u, _)| *u == v.uri) {
            out.push((v.uri.clone(), info));
        }
    }
    for a in &m.alternatives {
        let Some(uri) = &a.uri else { continue };
        let media = match a.media_type {
            AlternativeMediaType::Audio => MediaType::Audio,
            AlternativeMediaType::Subtitles => MediaType::Subtitles,
            // Another camera angle plays as a variant of its own.
            _ => MediaType::Muxed,
        };
        let grouping = if media.is_alternative() {
            Grouping {
                group: Some(a.group_id.clone()),
                label: Some(a.name.clone()),
                language: a.language.clone(),
                default: a.default,
                autoselect: a.autoselect,
                characteristics: a.characteristics.clone(),
                channels: a.channels.clone(),
                ..Grouping::default()
            }
        } else {
            Grouping::default()
        };
        if !out.iter().any(|(u, _)| u == uri) {
            out.push((uri.clone(), VariantInfo { media, grouping, ..VariantInfo::default() }));
        }
    }
    out
}

fn caption(a: &AlternativeMedia) -> Option<Caption> {
    let instream_id = a.instream_id.as_ref()?.to_string();
    Caption::valid_instream_id(&instream_id).then(|| Caption {
        group: a.group_id.clone(),
        instream_id,
        label: a.name.clone(),
        language: a.language.clone(),
        default: a.default,
        autoselect: a.autoselect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(text: &str) -> MasterPlaylist {
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn variant_attributes() {
        let m = master(
            "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-STREAM-INF:BANDWIDTH=510400,RESOLUTION=320x180,CODECS=\"avc1.42c014,mp4a.40.2\",FRAME-RATE=25.000
out_0.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=235400,RESOLUTION=160x90,CODECS=\"avc1.42c00c,mp4a.40.2\"
out_1.m3u8
",
        );
        let v = declared(&m);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, "out_0.m3u8");
        assert_eq!(v[0].1.bandwidth, Some(510_400));
        assert_eq!(v[0].1.codecs.as_deref(), Some("avc1.42c014,mp4a.40.2"));
        assert_eq!(v[0].1.resolution.as_deref(), Some("320x180"));
        assert_eq!(v[0].1.frame_rate, Some(25.0));
        assert_eq!(v[0].1.media, MediaType::Muxed);
        assert_eq!(v[0].1.grouping, Grouping::default());
        assert_eq!(v[1].1.frame_rate, None);
    }

    /// ffmpeg 5.1's `-var_stream_map` output, with captions a segmenter declares.
    #[test]
    fn groups_languages_subtitles_and_captions() {
        let m = master(
            "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"audio_2\",DEFAULT=YES,LANGUAGE=\"por\",URI=\"out_Portugues.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"audio_3\",DEFAULT=NO,LANGUAGE=\"eng\",CHANNELS=\"2\",URI=\"out_English.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"subtitle_0\",DEFAULT=NO,URI=\"out_0_vtt.m3u8\"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",LANGUAGE=\"por\",AUTOSELECT=YES,INSTREAM-ID=\"CC1\"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"Bad\",INSTREAM-ID=\"CC7\"
#EXT-X-STREAM-INF:BANDWIDTH=75900,RESOLUTION=320x180,CODECS=\"avc1.42c00c,mp4a.40.2\",AUDIO=\"group_aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"
out_0.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=75900,RESOLUTION=320x180,CODECS=\"avc1.42c00c,mp4a.40.2\",AUDIO=\"group_aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=NONE
out_1.m3u8
",
        );
        let v = declared(&m);
        let uris: Vec<_> = v.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(uris, ["out_0.m3u8", "out_1.m3u8", "out_Portugues.m3u8", "out_English.m3u8", "out_0_vtt.m3u8"]);
        let g = &v[0].1.grouping;
        assert_eq!((g.audio.as_deref(), g.subtitles.as_deref()), (Some("group_aud"), Some("subs")));
        assert_eq!(g.captions.len(), 1, "CC7 is no caption channel");
        assert_eq!(g.captions[0].instream_id, "CC1");
        assert_eq!(g.captions[0].language.as_deref(), Some("por"));
        assert!(v[1].1.grouping.captions.is_empty());
        let por = &v[2].1;
        assert_eq!(por.media, MediaType::Audio);
        assert_eq!(por.grouping.group.as_deref(), Some("group_aud"));
        assert_eq!(por.grouping.label.as_deref(), Some("audio_2"));
        assert_eq!(por.grouping.language.as_deref(), Some("por"));
        assert!(por.grouping.default);
        assert_eq!(v[3].1.grouping.channels.as_deref(), Some("2"));
        assert_eq!(v[4].1.media, MediaType::Subtitles);
        assert!(!v[4].1.grouping.default);
    }
}
