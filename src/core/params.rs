//! What a playlist URL's query string asks for, parsed once into [`PlaylistQuery`]: a wall-clock
//! range (start-over, catch-up clips), a delayed or shorter live window, and the low-latency HLS
//! directives `_HLS_skip` (delta updates), `_HLS_msn` and `_HLS_part` (blocking reload). Anything else in the
//! query is left alone (cache busters, tokens of other modules). A bad value is a client error,
//! answered 400 with the reason.

use std::fmt::Write as _;

use crate::clock::{iso8601, parse_iso8601};

/// A playlist request's parameters, times resolved against the request's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PlaylistQuery {
    /// `start` (or `vbegin`): the range begins here, ms since the epoch.
    pub start_ms: Option<i64>,
    /// `end` (or `vend`): the range ends here.
    pub end_ms: Option<i64>,
    /// `delay`: a live window that far behind the live edge.
    pub delay_ms: Option<i64>,
    /// `window`: a live window this long (never longer than the location's).
    pub window_ms: Option<i64>,
    /// `_HLS_skip=YES` (or `v2`): a delta update.
    pub skip: bool,
    /// `_HLS_msn=N`: answer once segment N is in the playlist.
    pub block_msn: Option<i64>,
    /// `_HLS_part=P` (with `_HLS_msn`): answer once part P of segment N is.
    pub block_part: Option<i32>,
    /// The query's other parameters (tokens of `secure_link`, cache busters), as they came:
    /// passed on to every URI the playlist lists (`hls_dvr_pass_args`), so that a signed
    /// playlist's segments stay signed.
    pub passed: String,
    /// `start` or `end` was given relative to now (`now`, `-SECONDS`): a clip file redirects to
    /// its absolute form (see [`PlaylistQuery::for_variants`]).
    pub relative_times: bool,
}

/// The latest time a URL may name: year 3000, far beyond any stream, well within i64 ms.
const MAX_TIME_MS: i64 = 32_503_680_000_000;

impl PlaylistQuery {
    /// Parses `query` (the part after `?`, undecoded). `max_range_ms` bounds how long a range
    /// may be (`hls_dvr_max_range`).
    pub fn parse(query: &str, now_ms: i64, max_range_ms: i64) -> Result<PlaylistQuery, String> {
        let mut q = PlaylistQuery::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key)?;
            let name: &'static str = match key.as_str() {
                "start" | "vbegin" => "start",
                "end" | "vend" => "end",
                "delay" => "delay",
                "window" => "window",
                "_HLS_skip" => "_HLS_skip",
                "_HLS_msn" => "_HLS_msn",
                "_HLS_part" => "_HLS_part",
                // A viewer's session id: added to each answer as it is sent, never part of what
                // the answer is (crate::session).
                crate::session::PARAM => continue,
                _ => {
                    // Listed in playlist lines and quoted attributes: nothing that could end them.
                    if !pair.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
                        return Err(format!("{key}: the value must be URL-encoded"));
                    }
                    if !q.passed.is_empty() {
                        q.passed.push('&');
                    }
                    q.passed.push_str(pair);
                    continue;
                }
            };
            if seen.contains(&name) {
                return Err(format!("{name} is given twice"));
            }
            seen.push(name);
            let value = decode(raw_value)?;
            if matches!(name, "start" | "end") && (value == "now" || value.starts_with('-')) {
                q.relative_times = true;
            }
            let bad = |what: &str| format!("{key}={value:?}: {what}");
            match name {
                "start" => q.start_ms = Some(parse_time(&value, now_ms).map_err(|e| bad(&e))?),
                "end" => q.end_ms = Some(parse_time(&value, now_ms).map_err(|e| bad(&e))?),
                "delay" => {
                    q.delay_ms = Some(parse_seconds(&value).ok_or_else(|| bad("expected seconds, such as 3600"))?)
                }
                "window" => {
                    let w = parse_seconds(&value).ok_or_else(|| bad("expected seconds, such as 600"))?;
                    if w == 0 {
                        return Err(bad("must be more than 0"));
                    }
                    q.window_ms = Some(w);
                }
                "_HLS_skip" => match value.as_str() {
                    "YES" | "v2" => q.skip = true,
                    _ => return Err(bad("expected YES or v2")),
                },
                "_HLS_msn" => {
                    let n = value.parse::<i64>().ok().filter(|n| *n >= 0);
                    q.block_msn = Some(n.ok_or_else(|| bad("expected a media sequence number"))?);
                }
                "_HLS_part" => {
                    let n = value.parse::<i32>().ok().filter(|n| *n >= 0);
                    q.block_part = Some(n.ok_or_else(|| bad("expected a part index"))?);
                }
                _ => unreachable!("every name above is handled"),
            }
        }
        q.check(now_ms, max_range_ms)?;
        Ok(q)
    }

    fn check(&self, now_ms: i64, max_range_ms: i64) -> Result<(), String> {
        if self.block_part.is_some() && self.block_msn.is_none() {
            return Err("_HLS_part needs _HLS_msn".into());
        }
        let hours = |ms: i64| format!("{:.1} h", ms as f64 / 3_600_000.0);
        match (self.start_ms, self.end_ms) {
            (None, Some(_)) => return Err("end needs a start".into()),
            (Some(s), Some(e)) if e <= s => return Err("end is not after start".into()),
            (Some(s), end) => {
                let span = end.unwrap_or(now_ms) - s;
                if span > max_range_ms {
                    return Err(format!(
                        "the range spans {}, more than the {} one request may cover",
                        hours(span),
                        hours(max_range_ms)
                    ));
                }
                if self.delay_ms.is_some() || self.window_ms.is_some() {
                    return Err("delay and window apply to the live playlist, not to a start/end range".into());
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// A wall-clock range (start-over or clip) rather than the live window.
    pub fn is_range(&self) -> bool {
        self.start_ms.is_some()
    }

    /// The query a multivariant playlist passes on to every variant: the same range, with times
    /// made absolute, so that every rendition shows the same span and a relative `start` does not
    /// slide as players reload. Empty when there is nothing to pass on.
    pub fn for_variants(&self) -> String {
        let mut out = String::new();
        let mut add = |k: &str, v: String| {
            out.push(if out.is_empty() { '?' } else { '&' });
            let _ = write!(out, "{k}={v}");
        };
        let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        if let Some(s) = self.start_ms {
            add("start", secs(s));
        }
        if let Some(e) = self.end_ms {
            add("end", secs(e));
        }
        if let Some(d) = self.delay_ms {
            add("delay", secs(d));
        }
        if let Some(w) = self.window_ms {
            add("window", secs(w));
        }
        if !self.passed.is_empty() {
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(&self.passed);
        }
        out
    }

    /// What follows a segment or init URI: the passed-on parameters, if any.
    pub fn for_segments(&self) -> String {
        if self.passed.is_empty() {
            String::new()
        } else {
            format!("?{}", self.passed)
        }
    }

    /// Everything that decides the answer, in one canonical text: the part of a cache key that
    /// comes from the query (two queries with the same key get the same playlist).
    pub fn key(&self) -> String {
        let mut s = String::new();
        let mut add = |k: &str, v: Option<i64>| {
            if let Some(v) = v {
                let _ = write!(s, "{k}{v};");
            }
        };
        add("s", self.start_ms);
        add("e", self.end_ms);
        add("d", self.delay_ms);
        add("w", self.window_ms);
        add("m", self.block_msn);
        add("n", self.block_part.map(i64::from));
        if self.skip {
            s.push_str("k;");
        }
        if !self.passed.is_empty() {
            let _ = write!(s, "?{}", self.passed);
        }
        s
    }

    /// For logs and error messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(t) = self.start_ms {
            let _ = write!(s, " from {}", iso8601(t));
        }
        if let Some(t) = self.end_ms {
            let _ = write!(s, " to {}", iso8601(t));
        }
        if let Some(d) = self.delay_ms {
            let _ = write!(s, " delayed {} s", d / 1000);
        }
        s
    }
}

/// A time as a URL may give it: epoch seconds (`1764093600`, `1764093600.5`), ISO 8601 with a zone
/// (`2026-11-25T18:00:00Z`, `...+01:00`), or relative to now (`now`, `-3600`).
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = if s == "now" {
        now_ms
    } else if let Some(rel) = s.strip_prefix('-') {
        let back = parse_seconds(rel).ok_or("expected seconds after '-', such as -3600")?;
        now_ms.checked_sub(back).ok_or("too far back")?
    } else if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) && !s.contains('T') {
        parse_seconds(s).ok_or("expected epoch seconds, ISO 8601 with a zone, now, or -SECONDS")?
    } else {
        if !has_zone(s) {
            return Err("an ISO 8601 time needs a zone (Z or +hh:mm)".into());
        }
        parse_iso8601(s).ok_or("not an ISO 8601 date-time (2026-11-25T18:00:00Z)")?
    };
    if !(0..=MAX_TIME_MS).contains(&t) {
        return Err("out of range".into());
    }
    Ok(t)
}

fn has_zone(s: &str) -> bool {
    let Some(time) = s.split_once(['T', 't']).map(|(_, t)| t) else { return false };
    time.ends_with(['Z', 'z']) || time.contains(['+', '-'])
}

/// Non-negative decimal seconds (`90`, `1.5`) as ms, with at most millisecond precision.
fn parse_seconds(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || int.len() > 12 || frac.len() > 3 {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms_frac = format!("{frac:0<3}").parse::<i64>().ok()?;
    int.parse::<i64>().ok()?.checked_mul(1000)?.checked_add(ms_frac)
}

/// Percent-decodes a query component. `+` stays `+`: this is not a form, and ISO 8601 zones use it.
pub(crate) fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| format!("bad percent escape in {s:?}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_093_600_000; // 2025-11-25T18:00:00Z
    const DAY: i64 = 86_400_000;

    fn q(s: &str) -> Result<PlaylistQuery, String> {
        PlaylistQuery::parse(s, NOW, DAY)
    }

    #[test]
    fn times_in_every_form() {
        assert_eq!(parse_time("1764093600", NOW), Ok(NOW));
        assert_eq!(parse_time("1764093600.25", NOW), Ok(NOW + 250));
        assert_eq!(parse_time("2025-11-25T18:00:00Z", NOW), Ok(NOW));
        assert_eq!(parse_time("2025-11-25T19:00:00+01:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2025-11-25T12:30:00.500-05:30", NOW), Ok(NOW + 500));
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("-3600", NOW), Ok(NOW - 3_600_000));
        assert_eq!(parse_time("-0.5", NOW), Ok(NOW - 500));
        for bad in
            ["", "yesterday", "2025-11-25T18:00:00", "2025-11-25", "1e9", "-x", "--1", "99999999999999", "1.2345"]
        {
            assert!(parse_time(bad, NOW).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_and_their_aliases() {
        let r = q("start=1764090000&end=1764090040").unwrap();
        assert_eq!((r.start_ms, r.end_ms), (Some(NOW - 3_600_000), Some(NOW - 3_560_000)));
        assert_eq!(q("vbegin=1764090000&vend=1764090040").unwrap(), r);
        // Percent-encoded and raw '+' zones both work.
        let a = q("start=2025-11-25T18%3A00%3A00%2B01%3A00").unwrap();
        let b = q("start=2025-11-25T18:00:00+01:00").unwrap();
        assert_eq!(a.start_ms, Some(NOW - 3_600_000));
        assert_eq!(a, b);
        assert!(r.is_range() && !q("").unwrap().is_range());
        assert!(!r.relative_times);
        let rel = q("start=-60&end=now&token=t").unwrap();
        assert!(rel.relative_times && q("start=-60").unwrap().relative_times);
        assert_eq!(rel.for_variants(), "?start=1764093540.000&end=1764093600.000&token=t");
    }

    #[test]
    fn live_options_and_low_latency_directives() {
        let l = q("delay=3600&window=600&_HLS_skip=YES&_HLS_msn=42&token=abc&t=1").unwrap();
        assert_eq!(l.delay_ms, Some(3_600_000));
        assert_eq!(l.window_ms, Some(600_000));
        assert!(l.skip);
        assert_eq!(l.block_msn, Some(42));
        let p = q("_HLS_msn=42&_HLS_part=3").unwrap();
        assert_eq!((p.block_msn, p.block_part), (Some(42), Some(3)));
        assert_ne!(p.key(), q("_HLS_msn=42&_HLS_part=2").unwrap().key());
        assert!(q("_HLS_skip=v2").unwrap().skip);
        assert_eq!(q("").unwrap(), PlaylistQuery::default());
    }

    #[test]
    fn every_bad_input_says_why() {
        for (query, why) in [
            ("start=soon", "start=\"soon\""),
            ("end=1764090040", "end needs a start"),
            ("start=1764090040&end=1764090000", "end is not after start"),
            ("start=1764090000&end=1764090000", "end is not after start"),
            ("start=1764000000&end=1764093600", "more than the 24.0 h"),
            ("start=-90000", "more than the 24.0 h"),
            ("start=-60&delay=10", "apply to the live playlist"),
            ("start=-60&window=10", "apply to the live playlist"),
            ("delay=-5", "expected seconds"),
            ("window=0", "more than 0"),
            ("_HLS_skip=NO", "expected YES or v2"),
            ("_HLS_msn=-1", "media sequence number"),
            ("_HLS_part=1", "_HLS_part needs _HLS_msn"),
            ("_HLS_msn=4&_HLS_part=-1", "expected a part index"),
            ("_HLS_msn=4&_HLS_part=x", "expected a part index"),
            ("start=-60&vbegin=-30", "start is given twice"),
            ("start=%zz", "percent escape"),
            ("start=%ff", "not UTF-8"),
        ] {
            let e = q(query).unwrap_err();
            assert!(e.contains(why), "{query}: {e:?} lacks {why:?}");
        }
    }

    #[test]
    fn variants_get_absolute_times() {
        let r = q("start=-3600.25&end=now&_HLS_msn=3&_HLS_skip=YES").unwrap();
        assert_eq!(r.for_variants(), "?start=1764089999.750&end=1764093600.000");
        assert_eq!(q("delay=90&window=30").unwrap().for_variants(), "?delay=90.000&window=30.000");
        assert_eq!(q("").unwrap().for_variants(), "");
    }

    #[test]
    fn other_parameters_pass_on_as_they_came() {
        let r = q("md5=a_B-c&start=-60&expires=17%2B3&_HLS_skip=YES&flag").unwrap();
        assert_eq!(r.passed, "md5=a_B-c&expires=17%2B3&flag");
        assert_eq!(r.for_segments(), "?md5=a_B-c&expires=17%2B3&flag");
        assert!(
            r.for_variants().starts_with("?start=") && r.for_variants().ends_with("&md5=a_B-c&expires=17%2B3&flag")
        );
        assert_eq!(q("md5=x").unwrap().for_variants(), "?md5=x");
        assert_eq!(q("_HLS_msn=3").unwrap().for_segments(), "");
        assert!(q("t=a\"b").unwrap_err().contains("URL-encoded"));
        // A session id is the viewer's, not the playlist's: never passed on, never in a key.
        let s = q("md5=x&hls_session=abc&start=-60").unwrap();
        assert_eq!(s.passed, "md5=x");
        assert_eq!(s.key(), q("md5=x&start=-60").unwrap().key());
    }

    /// Found by the `request` fuzz target: in `init-7.mp4??delay=60&win2ow=600&_HLS_msn=3` the
    /// query is `?delay=60&...`, whose first key is `?delay`, not `delay`. It is someone else's
    /// parameter, so it is passed on as it came (nginx gives the next request `?delay=60` as its
    /// query again, with the same meaning); a reader of a passed-on query strips the one `?` that
    /// starts it, not every `?`.
    #[test]
    fn a_key_that_begins_with_a_question_mark_is_passed_on_not_read() {
        let r = q("?delay=60&win2ow=600&_HLS_msn=3").unwrap();
        assert_eq!((r.delay_ms, r.window_ms, r.block_msn), (None, None, Some(3)));
        assert_eq!(r.passed, "?delay=60&win2ow=600");
        let variants = r.for_variants();
        assert_eq!(variants, "??delay=60&win2ow=600");
        let again = q(variants.strip_prefix('?').unwrap()).unwrap();
        assert_eq!((again.delay_ms, again.passed.as_str()), (None, "?delay=60&win2ow=600"));
    }

    #[test]
    fn keys_tell_apart_exactly_what_changes_the_playlist() {
        let key = |query: &str| q(query).unwrap().key();
        assert_eq!(key("start=-60&md5=x"), key("vbegin=-60&md5=x"));
        assert_eq!(key("delay=60.000"), key("delay=60"));
        let distinct = [
            "",
            "delay=60",
            "window=60",
            "start=-60",
            "start=-60&end=-30",
            "_HLS_skip=YES",
            "_HLS_msn=3",
            "md5=x",
            "a=1&b=2",
        ];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(key(a), key(b), "{a:?} and {b:?}");
            }
        }
    }
}
