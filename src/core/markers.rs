//! Timed markers of a stream: ad breaks, program boundaries, timed metadata (ARCHITECTURE.md,
//! "Markers"). What one is, the checks it passes before it is stored, which markers a playlist
//! lists, and how: `EXT-X-DATERANGE` (RFC 8216bis 4.4.5.1, SCTE-35 as its appendix maps it), and
//! for older ad systems `EXT-X-CUE-OUT` / `EXT-X-CUE-OUT-CONT` / `EXT-X-CUE-IN` around the
//! segments of a break.

use std::fmt::Write as _;

use crate::clock::iso8601;
use crate::playlist::seconds;

/// One marker of a stream, shared by every rendition's playlists. Markers are keyed by `id`:
/// the same id again replaces the marker (an ad break's end arriving after its start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub id: String,
    pub class: Option<String>,
    pub start_ms: i64,
    /// DURATION, when known.
    pub duration_us: Option<i64>,
    /// PLANNED-DURATION: what a break was scheduled to last, before its end is known.
    pub planned_duration_us: Option<i64>,
    /// SCTE35-OUT, SCTE35-IN, SCTE35-CMD: the splice_info_section, as `0x` and hex digits.
    pub scte35_out: Option<String>,
    pub scte35_in: Option<String>,
    pub scte35_cmd: Option<String>,
    /// Client attributes (`X-...`), each with its value as written in a playlist: a quoted
    /// string, a hexadecimal sequence or a decimal number.
    pub attributes: Vec<(String, String)>,
    /// An ad break: listed with CUE-OUT/CUE-IN in the cue form. Markers with SCTE35-OUT are;
    /// so are those read from a segmenter's EXT-X-CUE-OUT.
    pub cue: bool,
}

/// How playlists list markers (`hls_dvr_ad_markers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MarkerForm {
    #[default]
    Daterange,
    Cue,
    Both,
    Off,
}

impl MarkerForm {
    pub fn parse(s: &str) -> Option<MarkerForm> {
        Some(match s {
            "daterange" => MarkerForm::Daterange,
            "cue" => MarkerForm::Cue,
            "both" => MarkerForm::Both,
            "off" => MarkerForm::Off,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MarkerForm::Daterange => "daterange",
            MarkerForm::Cue => "cue",
            MarkerForm::Both => "both",
            MarkerForm::Off => "off",
        }
    }
    pub fn dateranges(self) -> bool {
        matches!(self, MarkerForm::Daterange | MarkerForm::Both)
    }
    pub fn cues(self) -> bool {
        matches!(self, MarkerForm::Cue | MarkerForm::Both)
    }
}

/// The longest a marker may last: a day (a program boundary, a long break).
pub const MAX_DURATION_US: i64 = 86_400_000_000;
/// The most client attributes one marker carries.
pub const MAX_ATTRIBUTES: usize = 32;
/// The longest SCTE-35 section, in hex digits (the section's length field is 12 bits).
const MAX_HEX: usize = 2 + 2 * 4096;

impl Marker {
    /// Where the marker ends: its DURATION, else its PLANNED-DURATION, else where it starts.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.duration_us.or(self.planned_duration_us).unwrap_or(0) / 1000
    }

    /// Whether a playlist listing `[from_ms, to_ms)` lists it: its span overlaps, or it is an
    /// instant within.
    pub fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.start_ms < to_ms && (self.end_ms() > from_ms || self.start_ms >= from_ms)
    }

    /// Checks everything a playlist will carry, so a marker that is stored can always be listed.
    pub fn check(&self) -> Result<(), String> {
        if !is_quotable(&self.id) {
            return Err("id: expected 1 to 256 characters, no double quote or control character".into());
        }
        if let Some(c) = &self.class {
            if !is_quotable(c) {
                return Err("class: expected 1 to 256 characters, no double quote or control character".into());
            }
        }
        for (what, d) in [("duration", self.duration_us), ("planned_duration", self.planned_duration_us)] {
            if d.is_some_and(|d| !(0..=MAX_DURATION_US).contains(&d)) {
                return Err(format!("{what}: expected 0 to 86400 seconds"));
            }
        }
        for (what, h) in
            [("scte35_out", &self.scte35_out), ("scte35_in", &self.scte35_in), ("scte35_cmd", &self.scte35_cmd)]
        {
            if h.as_deref().is_some_and(|h| !is_hex(h)) {
                return Err(format!("{what}: expected 0x and an even number of hex digits (a splice_info_section)"));
            }
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(format!("attributes: at most {MAX_ATTRIBUTES}"));
        }
        for (name, value) in &self.attributes {
            if !is_client_attribute(name) {
                return Err(format!("attribute {name:?}: names are X- then A-Z, 0-9 and -"));
            }
            if !is_attribute_value(value) {
                return Err(format!("attribute {name}: expected a quoted string, 0x hex or a decimal number"));
            }
        }
        Ok(())
    }

    /// The EXT-X-DATERANGE line.
    pub fn write_daterange(&self, out: &mut String) {
        let _ = write!(out, "#EXT-X-DATERANGE:ID=\"{}\"", self.id);
        if let Some(c) = &self.class {
            let _ = write!(out, ",CLASS=\"{c}\"");
        }
        let _ = write!(out, ",START-DATE=\"{}\"", iso8601(self.start_ms));
        if let Some(d) = self.duration_us {
            out.push_str(",DURATION=");
            seconds(d, out);
        }
        if let Some(d) = self.planned_duration_us {
            out.push_str(",PLANNED-DURATION=");
            seconds(d, out);
        }
        for (name, value) in &self.attributes {
            let _ = write!(out, ",{name}={value}");
        }
        for (name, hex) in
            [("SCTE35-CMD", &self.scte35_cmd), ("SCTE35-OUT", &self.scte35_out), ("SCTE35-IN", &self.scte35_in)]
        {
            if let Some(h) = hex {
                let _ = write!(out, ",{name}={h}");
            }
        }
        out.push('\n');
    }
}

/// What the cue form writes before a segment spanning `[start_ms, start_ms + duration_us)`:
/// CUE-OUT before the segment a break starts in, CUE-OUT-CONT before each later one within it
/// (the first listed included: a playlist may start inside a break), CUE-IN before the first
/// segment after it.
pub fn write_cues(markers: &[Marker], start_ms: i64, duration_us: i64, out: &mut String) {
    let end_ms = start_ms + duration_us / 1000;
    for m in markers.iter().filter(|m| m.cue) {
        let length = m.duration_us.or(m.planned_duration_us);
        if (start_ms..end_ms).contains(&m.start_ms) {
            out.push_str("#EXT-X-CUE-OUT");
            if let Some(d) = length {
                out.push(':');
                seconds(d, out);
            }
            out.push('\n');
        } else if m.start_ms < start_ms && m.end_ms() > start_ms {
            out.push_str("#EXT-X-CUE-OUT-CONT:ElapsedTime=");
            seconds((start_ms - m.start_ms) * 1000, out);
            if let Some(d) = length {
                out.push_str(",Duration=");
                seconds(d, out);
            }
            out.push('\n');
        } else if length.is_some() && m.end_ms() <= start_ms && m.end_ms() > start_ms - duration_us / 1000 {
            out.push_str("#EXT-X-CUE-IN\n");
        }
    }
}

/// A value that can be written inside double quotes as it is.
pub fn is_quotable(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c != '"' && !c.is_control())
}

fn is_hex(s: &str) -> bool {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => !h.is_empty() && h.len() % 2 == 0 && s.len() <= MAX_HEX && h.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

fn is_client_attribute(name: &str) -> bool {
    name.len() > 2
        && name.len() <= 64
        && name.starts_with("X-")
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

fn is_attribute_value(v: &str) -> bool {
    if let Some(q) = v.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
        return q.len() <= 1024 && q.chars().all(|c| c != '"' && !c.is_control());
    }
    is_hex(v)
        || (v.len() <= 32
            && !v.is_empty()
            && v.parse::<f64>().is_ok_and(f64::is_finite)
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-'))
}

/// An ad break for tests: SCTE35-OUT, listed in the cue form.
#[cfg(test)]
pub(crate) fn ad_break(id: &str, start_ms: i64, duration_s: Option<i64>) -> Marker {
    Marker {
        id: id.into(),
        class: None,
        start_ms,
        duration_us: duration_s.map(|d| d * 1_000_000),
        planned_duration_us: None,
        scte35_out: Some("0xFC30".into()),
        scte35_in: None,
        scte35_cmd: None,
        attributes: vec![],
        cue: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daterange_carries_every_attribute() {
        let mut m = ad_break("break-1", 1_700_000_000_000, Some(30));
        m.class = Some("com.example.ad".into());
        m.planned_duration_us = Some(30_500_000);
        m.attributes = vec![("X-AD-ID".into(), "\"spot 7\"".into()), ("X-COUNT".into(), "2".into())];
        m.check().unwrap();
        let mut out = String::new();
        m.write_daterange(&mut out);
        assert_eq!(
            out,
            "#EXT-X-DATERANGE:ID=\"break-1\",CLASS=\"com.example.ad\",START-DATE=\"2023-11-14T22:13:20.000Z\",\
             DURATION=30.000,PLANNED-DURATION=30.500,X-AD-ID=\"spot 7\",X-COUNT=2,SCTE35-OUT=0xFC30\n"
        );
    }

    #[test]
    fn bad_markers_say_why() {
        let ok = ad_break("a", 0, Some(1));
        let cases: Vec<(Marker, &str)> = vec![
            (Marker { id: "".into(), ..ok.clone() }, "id"),
            (Marker { id: "a\"b".into(), ..ok.clone() }, "id"),
            (Marker { class: Some("x\ny".into()), ..ok.clone() }, "class"),
            (Marker { duration_us: Some(-1), ..ok.clone() }, "duration"),
            (Marker { planned_duration_us: Some(MAX_DURATION_US + 1), ..ok.clone() }, "planned_duration"),
            (Marker { scte35_out: Some("FC30".into()), ..ok.clone() }, "scte35_out"),
            (Marker { scte35_in: Some("0xF".into()), ..ok.clone() }, "scte35_in"),
            (Marker { scte35_cmd: Some("0xZZ".into()), ..ok.clone() }, "scte35_cmd"),
            (Marker { attributes: vec![("AD".into(), "1".into())], ..ok.clone() }, "attribute"),
            (Marker { attributes: vec![("X-a".into(), "1".into())], ..ok.clone() }, "attribute"),
            (Marker { attributes: vec![("X-A".into(), "one".into())], ..ok.clone() }, "attribute X-A"),
            (Marker { attributes: vec![("X-A".into(), "\"a\"b\"".into())], ..ok.clone() }, "attribute X-A"),
        ];
        for (m, why) in cases {
            let e = m.check().unwrap_err();
            assert!(e.starts_with(why), "{m:?}: {e}");
        }
    }

    #[test]
    fn spans_overlap_and_instants_fall_within() {
        let m = ad_break("a", 10_000, Some(30));
        assert!(m.overlaps(0, 10_001));
        assert!(!m.overlaps(0, 10_000));
        assert!(m.overlaps(39_999, 50_000));
        assert!(!m.overlaps(40_000, 50_000));
        let instant = ad_break("b", 10_000, None);
        assert!(instant.overlaps(10_000, 12_000));
        assert!(!instant.overlaps(8_000, 10_000));
        assert!(!instant.overlaps(10_001, 12_000));
    }

    #[test]
    fn cues_mark_the_segments_of_a_break() {
        let m = [ad_break("a", 4_000, Some(6))];
        let at = |start_ms: i64| {
            let mut out = String::new();
            write_cues(&m, start_ms, 2_000_000, &mut out);
            out
        };
        assert_eq!(at(2_000), "");
        assert_eq!(at(4_000), "#EXT-X-CUE-OUT:6.000\n");
        assert_eq!(at(6_000), "#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000\n");
        assert_eq!(at(8_000), "#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6.000\n");
        assert_eq!(at(10_000), "#EXT-X-CUE-IN\n");
        assert_eq!(at(12_000), "");
        // Markers that are no break have no cue.
        let meta = [Marker { cue: false, ..m[0].clone() }];
        let mut out = String::new();
        write_cues(&meta, 4_000, 2_000_000, &mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn forms_parse() {
        assert_eq!(MarkerForm::parse("both"), Some(MarkerForm::Both));
        assert!(MarkerForm::Both.cues() && MarkerForm::Both.dateranges());
        assert!(!MarkerForm::Off.cues() && !MarkerForm::Off.dateranges());
        assert_eq!(MarkerForm::parse("scte"), None);
        for f in [MarkerForm::Daterange, MarkerForm::Cue, MarkerForm::Both, MarkerForm::Off] {
            assert_eq!(MarkerForm::parse(f.as_str()), Some(f));
        }
    }
}
