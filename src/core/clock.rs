//! Wall-clock time: now, and ISO 8601 date-times read and written (program date-times, and the
//! times viewers ask for in playlist URLs). Times are ms since the Unix epoch, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// ISO 8601 UTC with milliseconds, from ms since the epoch.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm), valid for the whole i64 day range we can meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// An ISO 8601 date-time as segmenters write it (`2024-05-01T10:00:00.123Z`, `+00:00`, `+0000`,
/// `+00`), as ms since the epoch.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(f) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &f.as_bytes()[..n];
        for (i, place) in [100, 10, 1].iter().enumerate() {
            if let Some(d) = digits.get(i) {
                ms += (d - b'0') as i64 * place;
            }
        }
        rest = &f[n..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        "" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let t = rest[1..].replace(':', "");
            if !(t.len() == 2 || t.len() == 4) || !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let oh: i64 = t[..2].parse().ok()?;
            let om: i64 = if t.len() == 4 { t[2..].parse().ok()? } else { 0 };
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_s) * 1000) + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_round_trips_with_zones() {
        let t = parse_iso8601("2026-11-25T18:00:00.250Z").unwrap();
        assert_eq!(iso8601(t), "2026-11-25T18:00:00.250Z");
        assert_eq!(parse_iso8601("2026-11-25T19:00:00.250+01:00"), Some(t));
        assert_eq!(parse_iso8601("2026-11-25T17:00:00.250-0100"), Some(t));
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
        for bad in ["", "2026-11-25", "2026-13-01T00:00:00Z", "2026-11-25T18:00:00+1", "2026-11-25T18:00:00Q"] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn date_times_in_the_forms_segmenters_write() {
        let z = parse_iso8601("2024-05-01T10:00:00.123Z").unwrap();
        assert_eq!(z, 1_714_557_600_123);
        assert_eq!(parse_iso8601("2024-05-01T10:00:00.123+0000"), Some(z));
        assert_eq!(parse_iso8601("2024-05-01T12:00:00.123+02:00"), Some(z));
        assert_eq!(parse_iso8601("2024-05-01T08:30:00.123-0130"), Some(z));
        assert_eq!(parse_iso8601("2024-05-01T11:00:00.123456+01"), Some(z));
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_iso8601("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("2024-05-01 10:00"), None);
        assert_eq!(parse_iso8601("2024-05-01T10:00:00.Z"), None);
        assert_eq!(parse_iso8601("2024-05-01T10:00:00+1"), None);
    }

    #[test]
    fn dates_are_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
