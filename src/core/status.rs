//! The status endpoint's document (`hls_dvr_status`): every stream, its renditions, the newest
//! and oldest segment still stored, how far behind live each one is, and the stream's markers. JSON, written by hand:
//! a dozen fields do not need a serialisation framework.

use std::fmt::Write as _;

use crate::markers::Marker;
use crate::model::{IndexEntry, Rendition};

/// One stream as the status shows it.
pub struct StreamStatus {
    pub name: String,
    pub renditions: Vec<RenditionStatus>,
    /// Its markers still stored, by start.
    pub markers: Vec<Marker>,
}

/// One rendition as the status shows it.
pub struct RenditionStatus {
    pub head: Rendition,
    /// The oldest segment still stored, if the index was read.
    pub oldest: Option<IndexEntry>,
}

/// The document for `streams` at `now_ms`.
pub fn document(now_ms: i64, streams: &[StreamStatus]) -> String {
    let mut out = format!("{{\"now_ms\":{now_ms},\"streams\":[");
    for (i, StreamStatus { name, renditions, markers }) in streams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"stream\":");
        string(&mut out, name);
        out.push_str(",\"renditions\":[");
        for (j, r) in renditions.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            rendition(&mut out, now_ms, r);
        }
        out.push_str("],\"markers\":[");
        for (j, m) in markers.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            marker(&mut out, m);
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
    out
}

fn rendition(out: &mut String, now_ms: i64, r: &RenditionStatus) {
    let h = &r.head;
    out.push_str("{\"rendition\":");
    string(out, &h.name);
    out.push_str(",\"container\":");
    string(out, h.container.as_str());
    out.push_str(",\"bandwidth\":");
    match h.bandwidth {
        Some(b) => {
            let _ = write!(out, "{b}");
        }
        None => out.push_str("null"),
    }
    for (key, value) in [("resolution", &h.resolution), ("codecs", &h.codecs)] {
        let _ = write!(out, ",\"{key}\":");
        match value {
            Some(v) => string(out, v),
            None => out.push_str("null"),
        }
    }
    let _ = write!(
        out,
        ",\"target_duration_s\":{},\"newest_msn\":{},\"newest_ms\":{},\"oldest_ms\":",
        h.target_duration, h.head_msn, h.head_pdt_ms
    );
    match &r.oldest {
        Some(e) => {
            let _ = write!(out, "{},\"oldest_msn\":{}", e.pdt_ms, e.msn);
        }
        None => out.push_str("null,\"oldest_msn\":null"),
    }
    let behind = (now_ms - h.head_pdt_ms) as f64 / 1000.0;
    let _ = write!(out, ",\"behind_live_s\":{behind:.3},\"ended\":{}}}", h.ended);
}

fn marker(out: &mut String, m: &Marker) {
    out.push_str("{\"id\":");
    string(out, &m.id);
    out.push_str(",\"class\":");
    match &m.class {
        Some(c) => string(out, c),
        None => out.push_str("null"),
    }
    let _ = write!(out, ",\"start_ms\":{}", m.start_ms);
    for (key, d) in [("duration_s", m.duration_us), ("planned_duration_s", m.planned_duration_us)] {
        match d {
            Some(us) => {
                let _ = write!(out, ",\"{key}\":{:.3}", us as f64 / 1e6);
            }
            None => {
                let _ = write!(out, ",\"{key}\":null");
            }
        }
    }
    let _ = write!(
        out,
        ",\"scte35\":{},\"cue\":{}}}",
        m.scte35_out.is_some() || m.scte35_in.is_some() || m.scte35_cmd.is_some(),
        m.cue
    );
}

/// A JSON string literal (RFC 8259: quote, backslash and control characters escaped).
pub(crate) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Container, SourcePos};

    fn head(name: &str) -> Rendition {
        Rendition {
            name: name.into(),
            container: Container::Ts,
            target_duration: 2,
            bandwidth: Some(800_000),
            codecs: Some("avc1.64001f,\"x\"\n".into()),
            resolution: None,
            frame_rate: None,
            head_msn: 40,
            head_disc_seq: 0,
            head_pdt_ms: 1_000_000,
            source: SourcePos::default(),
            updated_ms: 1_000_500,
            ended: false,
            media: crate::model::MediaType::Muxed,
            parts: None,
            grouping: Default::default(),
            key_frames: false,
            thumbnails: None,
        }
    }

    #[test]
    fn document_lists_streams_renditions_and_ages() {
        let oldest = IndexEntry {
            msn: 3,
            duration_us: 2_000_000,
            pdt_ms: 926_000,
            discontinuity: false,
            disc_seq: 0,
            init_msn: None,
            size: 10,
            added_ms: 926_100,
            key_frame: None,
            thumbnail: false,
        };
        let doc = document(
            1_002_500,
            &[
                StreamStatus {
                    name: "a".into(),
                    renditions: vec![RenditionStatus { head: head("hi"), oldest: Some(oldest) }],
                    markers: vec![Marker {
                        id: "break \"1\"".into(),
                        class: None,
                        start_ms: 990_000,
                        duration_us: Some(30_000_000),
                        planned_duration_us: None,
                        scte35_out: Some("0xFC".into()),
                        scte35_in: None,
                        scte35_cmd: None,
                        attributes: vec![],
                        cue: true,
                    }],
                },
                StreamStatus {
                    name: "b".into(),
                    renditions: vec![RenditionStatus { head: head("lo"), oldest: None }],
                    markers: vec![],
                },
            ],
        );
        assert_eq!(
            doc,
            "{\"now_ms\":1002500,\"streams\":[{\"stream\":\"a\",\"renditions\":[{\"rendition\":\"hi\",\
             \"container\":\"ts\",\"bandwidth\":800000,\"resolution\":null,\"codecs\":\"avc1.64001f,\\\"x\\\"\\u000a\",\
             \"target_duration_s\":2,\"newest_msn\":40,\"newest_ms\":1000000,\"oldest_ms\":926000,\"oldest_msn\":3,\
             \"behind_live_s\":2.500,\"ended\":false}],\"markers\":[{\"id\":\"break \\\"1\\\"\",\"class\":null,\
             \"start_ms\":990000,\"duration_s\":30.000,\"planned_duration_s\":null,\"scte35\":true,\"cue\":true}]},\
             {\"stream\":\"b\",\"renditions\":[{\"rendition\":\"lo\",\
             \"container\":\"ts\",\"bandwidth\":800000,\"resolution\":null,\"codecs\":\"avc1.64001f,\\\"x\\\"\\u000a\",\
             \"target_duration_s\":2,\"newest_msn\":40,\"newest_ms\":1000000,\"oldest_ms\":null,\"oldest_msn\":null,\
             \"behind_live_s\":2.500,\"ended\":false}],\"markers\":[]}]}\n"
        );
    }
}
