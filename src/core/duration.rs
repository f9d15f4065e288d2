//! Durations as nginx writes them (its "Measurement units" syntax), for directives and the
//! uploader's flags alike: `500ms`, `90s`, `30m`, `2h`, `1h30m`, `1h 30m`, `1d`, `1w`, `1M`
//! (30 days), `1y` (365 days), or bare seconds. Units go from the most to the least significant,
//! each at most once, optionally separated by spaces; a number without a unit counts seconds.

use std::time::Duration;

/// The units, most significant first, with their length in milliseconds.
const UNITS: [(&str, u64); 8] = [
    ("y", 365 * 86_400_000),
    ("M", 30 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (examples: 500ms, 90s, 30m, 2h, 1h 30m)");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u64 = 0;
    // Index into UNITS of the next unit allowed: each part must be less significant than the last.
    let mut next = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let i = if unit.is_empty() {
            // A bare number is seconds, and must end the value.
            if !rest.trim_start().is_empty() {
                return Err(bad());
            }
            6
        } else {
            UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?
        };
        if i < next {
            return Err(bad());
        }
        next = i + 1;
        let part = n.checked_mul(UNITS[i].1).ok_or_else(bad)?;
        total_ms = total_ms.checked_add(part).ok_or_else(bad)?;
        rest = rest.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;

    #[test]
    fn parses_nginx_units_and_sums() {
        let cases = [
            ("2h", 2 * HOUR),
            ("1h30m", HOUR + 30 * MIN),
            ("1h 30m", HOUR + 30 * MIN),
            ("  1d  12h ", DAY + 12 * HOUR),
            ("90", 90),
            ("1h 30", HOUR + 30),
            ("1d", DAY),
            ("2w", 14 * DAY),
            ("1M", 30 * DAY),
            ("1y", 365 * DAY),
            ("1y1M1w1d1h1m1s", 365 * DAY + 30 * DAY + 7 * DAY + DAY + HOUR + MIN + 1),
        ];
        for (text, secs) in cases {
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text:?}");
        }
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1s 500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_what_nginx_refuses() {
        for bad in [
            "",
            " ",
            "h",
            "2x",
            "-1s",
            "1.5h",
            "2 h",
            "30m 1h",
            "1h1h",
            "1m 1M",
            "30 1h",
            "5 5",
            "1H",
            "99999999999999999999h",
            "600000000y",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
