//! Markers as they arrive (ARCHITECTURE.md, "Markers"): in a segmenter's playlist
//! (`EXT-X-DATERANGE`, `EXT-X-CUE-OUT` / `EXT-X-CUE-IN`), or as encoders, ad systems and scripts
//! send them (`POST /ingest/{stream}/markers`, `hls-dvr-upload mark`): one JSON object, checked
//! whole before anything is stored.
//!
//! `{"id", "start", "duration" | "planned_duration", "class", "scte35_out" | "scte35_in" |
//! "scte35_cmd", "attributes": {"X-...": value}, "cue"}`: `start` in the playlists' time forms
//! (epoch seconds, ISO 8601 with a zone, `now`, `-SECONDS`), durations in seconds, SCTE-35 as
//! `0x` hex, attribute values as strings (written quoted, or as hex when they start with `0x`)
//! or numbers. `cue` (default: whether `scte35_out` is given) lists it as an ad break in the
//! CUE-OUT/CUE-IN form too.

use std::collections::HashMap;

use serde_json::{Map, Value};

use hls_dvr_core::clock::parse_iso8601;
use hls_dvr_core::markers::Marker;
use hls_dvr_core::params::parse_time;

/// The largest marker body read.
pub const MAX_BODY: usize = 64 * 1024;

const FIELDS: [&str; 10] = [
    "id",
    "start",
    "duration",
    "planned_duration",
    "class",
    "scte35_out",
    "scte35_in",
    "scte35_cmd",
    "attributes",
    "cue",
];

/// The marker a JSON body describes, or why it does not describe one.
pub fn from_json(body: &[u8], now_ms: i64) -> Result<Marker, String> {
    if body.len() > MAX_BODY {
        return Err(format!("a marker is at most {MAX_BODY} bytes"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(o) = value else { return Err("expected a JSON object".into()) };
    if let Some(k) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {k:?} (known: {})", FIELDS.join(", ")));
    }
    let id = text(&o, "id")?.ok_or("id is required")?;
    let start = text(&o, "start")?.ok_or("start is required")?;
    let start_ms = parse_time(&start, now_ms).map_err(|e| format!("start: {e}"))?;
    let scte35_out = text(&o, "scte35_out")?;
    let cue = match o.get("cue") {
        None => scte35_out.is_some(),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("cue: expected true or false".into()),
    };
    let attributes = match o.get("attributes") {
        None => Vec::new(),
        Some(Value::Object(a)) => a.iter().map(|(k, v)| attribute(k, v)).collect::<Result<_, _>>()?,
        Some(_) => return Err("attributes: expected an object of X- names".into()),
    };
    let m = Marker {
        id,
        class: text(&o, "class")?,
        start_ms,
        duration_us: seconds(&o, "duration")?,
        planned_duration_us: seconds(&o, "planned_duration")?,
        scte35_out,
        scte35_in: text(&o, "scte35_in")?,
        scte35_cmd: text(&o, "scte35_cmd")?,
        attributes,
        cue,
    };
    m.check()?;
    Ok(m)
}

fn text(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        // A time may come as epoch seconds.
        Some(Value::Number(n)) if key == "start" => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{key}: expected a string")),
    }
}

fn seconds(o: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(Some((s * 1e6).round() as i64)),
            _ => Err(format!("{key}: expected 0 to 86400 seconds")),
        },
        Some(_) => Err(format!("{key}: expected a number of seconds")),
    }
}

/// A client attribute's value as a playlist writes it.
fn attribute(name: &str, v: &Value) -> Result<(String, String), String> {
    let written = match v {
        Value::String(s) if s.starts_with("0x") || s.starts_with("0X") => s.clone(),
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        _ => return Err(format!("attribute {name}: expected a string or a number")),
    };
    Ok((name.to_string(), written))
}

/// The markers a segmenter's media playlist carries, valid ones only (a tag a playlist could not
/// carry again is left out): its EXT-X-DATERANGE tags, and each ad break its EXT-X-CUE-OUT tags
/// open (`cue-` and the break's start in ms as id, so every rendition names it alike), with
/// the duration the tag gives or, failing that, the time to the EXT-X-CUE-IN that closes it.
/// A break needs its segment's date: the playlist's, or the one before it plus its EXTINF.
pub fn from_playlist(text: &str) -> Vec<Marker> {
    let mut out: Vec<Marker> = Vec::new();
    let mut date: Option<i64> = None;
    let mut extinf_us: i64 = 0;
    let (mut cue_out, mut cue_in) = (None::<Option<i64>>, false);
    let mut open: Option<usize> = None;
    for line in text.lines().map(str::trim) {
        if let Some(list) = line.strip_prefix("#EXT-X-DATERANGE:") {
            out.extend(daterange(list));
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            date = parse_iso8601(v);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            extinf_us = crate::source::parse_duration_us(v.split(',').next().unwrap_or("")).unwrap_or(0);
        } else if line == "#EXT-X-CUE-OUT" {
            cue_out = Some(None);
        } else if let Some(v) = line.strip_prefix("#EXT-X-CUE-OUT:") {
            let v = v.strip_prefix("DURATION=").unwrap_or(v);
            cue_out = Some(crate::source::parse_duration_us(v.split(',').next().unwrap_or("")));
        } else if line == "#EXT-X-CUE-IN" {
            cue_in = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            // A segment: the cue tags before it happen at its start.
            if let Some(at) = date {
                if cue_in {
                    if let Some(m) = open.take().and_then(|i| out.get_mut(i)) {
                        m.duration_us = Some((at - m.start_ms).max(0) * 1000);
                    }
                }
                if let Some(duration_us) = cue_out {
                    let m = Marker {
                        id: format!("cue-{at}"),
                        class: None,
                        start_ms: at,
                        duration_us,
                        planned_duration_us: None,
                        scte35_out: None,
                        scte35_in: None,
                        scte35_cmd: None,
                        attributes: Vec::new(),
                        cue: true,
                    };
                    open = duration_us.is_none().then_some(out.len());
                    out.push(m);
                }
            }
            (cue_out, cue_in) = (None, false);
            date = date.map(|d| d + extinf_us / 1000);
        }
    }
    out.retain(|m| m.check().is_ok());
    out
}

/// An EXT-X-DATERANGE attribute list as a marker, when it makes a valid one.
fn daterange(list: &str) -> Option<Marker> {
    let attrs = attribute_list(list);
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let quoted = |k: &str| get(k).and_then(|v| v.strip_prefix('"')?.strip_suffix('"')).map(str::to_string);
    let secs = |k: &str| get(k).and_then(|v| v.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
    let start_ms = parse_iso8601(&quoted("START-DATE")?)?;
    let end = quoted("END-DATE").and_then(|e| parse_iso8601(&e)).filter(|e| *e >= start_ms);
    let scte = |k: &str| get(k).map(str::to_string);
    let m = Marker {
        id: quoted("ID")?,
        class: quoted("CLASS"),
        start_ms,
        duration_us: secs("DURATION").map(|s| (s * 1e6).round() as i64).or(end.map(|e| (e - start_ms) * 1000)),
        planned_duration_us: secs("PLANNED-DURATION").map(|s| (s * 1e6).round() as i64),
        scte35_out: scte("SCTE35-OUT"),
        scte35_in: scte("SCTE35-IN"),
        scte35_cmd: scte("SCTE35-CMD"),
        attributes: attrs.iter().filter(|(n, _)| n.starts_with("X-")).cloned().collect(),
        cue: get("SCTE35-OUT").is_some(),
    };
    Some(m)
}

/// `NAME=value` pairs of an attribute list, values as written (quoted strings keep their quotes).
fn attribute_list(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while let Some((name, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&after[..end + 2], q[end + 1..].trim_start_matches(',')),
                None => break,
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.push((name.trim().to_string(), value.trim().to_string()));
        rest = next.trim_start();
    }
    out
}

/// Markers already stored (or on their way), by id: a playlist read again stores only what is
/// new or changed.
#[derive(Debug, Default)]
pub struct Seen(HashMap<String, Marker>);

impl Seen {
    /// The markers of `list` that are new or changed since last time; they count as seen.
    pub fn news(&mut self, list: Vec<Marker>) -> Vec<Marker> {
        let mut out = Vec::new();
        for m in list {
            if self.0.get(&m.id) != Some(&m) {
                self.0.insert(m.id.clone(), m.clone());
                out.push(m);
            }
        }
        // Bounded: ids of a long stream are dropped once the map grows past what a playlist lists.
        if self.0.len() > 4096 {
            self.0.clear();
        }
        out
    }

    /// A marker that could not be stored: seen as new again next time.
    pub fn forget(&mut self, id: &str) {
        self.0.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_093_600_000;

    #[test]
    fn a_whole_marker() {
        let m = from_json(
            br#"{"id": "break-7", "start": "2025-11-25T18:00:00Z", "duration": 30, "class": "com.example.ad",
                "scte35_out": "0xFC3025", "attributes": {"X-AD-ID": "spot 7", "X-PRIORITY": 2, "X-DATA": "0xAB"}}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(m.id, "break-7");
        assert_eq!(m.start_ms, NOW);
        assert_eq!(m.duration_us, Some(30_000_000));
        assert!(m.cue, "a marker with SCTE35-OUT is an ad break");
        let mut attrs = m.attributes.clone();
        attrs.sort();
        assert_eq!(
            attrs,
            [
                ("X-AD-ID".into(), "\"spot 7\"".into()),
                ("X-DATA".into(), "0xAB".into()),
                ("X-PRIORITY".into(), "2".into())
            ]
        );
        // Relative and epoch times, planned durations, metadata that is no break.
        let m = from_json(br#"{"id": "m", "start": "-60", "planned_duration": 1.5}"#, NOW).unwrap();
        assert_eq!((m.start_ms, m.planned_duration_us, m.cue), (NOW - 60_000, Some(1_500_000), false));
        assert_eq!(from_json(br#"{"id": "m", "start": 1764093600}"#, NOW).unwrap().start_ms, NOW);
    }

    #[test]
    fn bad_bodies_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "not JSON"),
            (b"[1]", "expected a JSON object"),
            (br#"{"start": "now"}"#, "id is required"),
            (br#"{"id": "a"}"#, "start is required"),
            (br#"{"id": "a", "start": "yesterday"}"#, "start:"),
            (br#"{"id": "a", "start": "now", "duration": -1}"#, "duration:"),
            (br#"{"id": "a", "start": "now", "duration": "30"}"#, "duration: expected a number"),
            (br#"{"id": "a", "start": "now", "scte35_out": "FC30"}"#, "scte35_out:"),
            (br#"{"id": "a", "start": "now", "attributes": {"AD": 1}}"#, "attribute \"AD\""),
            (br#"{"id": "a", "start": "now", "attributes": {"X-A": [1]}}"#, "attribute X-A"),
            (br#"{"id": "a", "start": "now", "when": 1}"#, "unknown field \"when\""),
            (br#"{"id": "a\"b", "start": "now"}"#, "id:"),
            (br#"{"id": "a", "start": "now", "cue": "yes"}"#, "cue:"),
        ];
        for (body, why) in cases {
            let e = from_json(body, NOW).unwrap_err();
            assert!(e.starts_with(why), "{}: {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_segmenter_playlist_carries_dateranges_and_cue_breaks() {
        let text = "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-DATERANGE:ID=\"splice-6FFFFFF0\",CLASS=\"com.example\",START-DATE=\"2025-11-25T18:00:02.000Z\",PLANNED-DURATION=59.993,SCTE35-OUT=0xFC002F0000000000FF000014056FFFFFF000E011622DCAFF000052636200000000000A0008029896F50000008700000000,X-COM-EXAMPLE-AD-ID=\"XYZ123\"
#EXT-X-PROGRAM-DATE-TIME:2025-11-25T18:00:00.000Z
#EXTINF:2.000,
a.ts
#EXT-X-CUE-OUT:DURATION=4
#EXTINF:2.000,
b.ts
#EXT-X-CUE-OUT-CONT:ElapsedTime=2,Duration=4
#EXTINF:2.000,
c.ts
#EXT-X-CUE-IN
#EXTINF:2.000,
d.ts
#EXT-X-CUE-OUT
#EXTINF:2.000,
e.ts
#EXTINF:2.000,
f.ts
#EXT-X-CUE-IN
#EXTINF:2.000,
g.ts
#EXT-X-DATERANGE:ID=\"bad\",START-DATE=\"yesterday\"
";
        let m = from_playlist(text);
        let ids: Vec<_> = m.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["splice-6FFFFFF0", "cue-1764093602000", "cue-1764093608000"]);
        assert_eq!(m[0].start_ms, NOW + 2000);
        assert_eq!(m[0].planned_duration_us, Some(59_993_000));
        assert!(m[0].cue && m[0].scte35_out.as_deref().unwrap().starts_with("0xFC002F"));
        assert_eq!(m[0].attributes, [("X-COM-EXAMPLE-AD-ID".to_string(), "\"XYZ123\"".to_string())]);
        assert_eq!((m[1].start_ms, m[1].duration_us, m[1].cue), (NOW + 2000, Some(4_000_000), true));
        // A break without a duration lasts until the CUE-IN that closes it.
        assert_eq!((m[2].start_ms, m[2].duration_us), (NOW + 8000, Some(4_000_000)));
    }

    #[test]
    fn seen_markers_are_stored_once_until_they_change() {
        let mut seen = Seen::default();
        let a = from_json(br#"{"id": "a", "start": "now"}"#, NOW).unwrap();
        assert_eq!(seen.news(vec![a.clone()]).len(), 1);
        assert!(seen.news(vec![a.clone()]).is_empty());
        let longer = Marker { duration_us: Some(1), ..a.clone() };
        assert_eq!(seen.news(vec![longer.clone()]), std::slice::from_ref(&longer));
        seen.forget("a");
        assert_eq!(seen.news(vec![longer]).len(), 1);
    }
}
