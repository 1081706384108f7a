//! UTC timestamps for audit records: RFC 3339 with microseconds, formatted and parsed without chrono.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds). Times before 1970 are clamped to the
/// epoch: an audit record cannot have been written then, and a panic in the audit path would be worse.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, secs_of_day) = split(d.as_secs());
    let (y, m, day) = date;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        d.subsec_micros()
    )
}

/// A compact, file-name-safe and lexically sortable form: `YYYYMMDDTHHMMSS.ffffffZ`.
pub fn compact(t: SystemTime) -> String {
    rfc3339(t).replace(['-', ':'], "")
}

fn split(secs: u64) -> ((i64, u32, u32), u64) {
    let days = (secs / 86_400) as i64;
    (civil_from_days(days), secs % 86_400)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00Z`, optional fraction, `Z` or `±HH:MM` offset). Also
/// accepts a bare date (`2024-05-01`, midnight UTC), which is what people type in a `--since`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let mut secs = days * 86_400;
    let mut nanos = 0u32;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        secs += i64::from(h * 3600 + mi * 60 + se);
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let frac = s.get(start..i)?;
            if frac.is_empty() {
                return None;
            }
            let mut digits: String = frac.chars().take(9).collect();
            while digits.len() < 9 {
                digits.push('0');
            }
            nanos = digits.parse().ok()?;
        }
        match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => {}
            Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
                let off = i64::from(num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60);
                secs -= if *sign == b'+' { off } else { -off };
            }
            _ => return None,
        }
    }
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Parses a relative duration such as `90s`, `15m`, `1h`, `7d` (a bare number means seconds).
pub fn parse_relative(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(mult)?))
}

/// A `--since`/`--until` argument: RFC 3339, a date, or a duration back from `now` (`1h`, `30m`).
pub fn parse_time_arg(s: &str, now: SystemTime) -> Option<SystemTime> {
    parse_rfc3339(s).or_else(|| now.checked_sub(parse_relative(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 3661, 123_456_789);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01.123456Z");
        assert_eq!(compact(t), "20000229T010101.123456Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339(t), "2099-12-31T23:59:59.000000Z");
    }

    #[test]
    fn parse_round_trips_and_offsets() {
        let t = UNIX_EPOCH + Duration::new(1_714_564_800, 250_000_000);
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(parse_rfc3339("2024-05-01T14:00:00.25+02:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2024-05-01"),
            Some(UNIX_EPOCH + Duration::from_secs(1_714_521_600))
        );
        for bad in [
            "",
            "2024-13-01",
            "2024-05-01T25:00:00Z",
            "2024-05-01T12:00:00",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn relative_durations() {
        assert_eq!(parse_relative("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_relative("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_relative("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_relative("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_relative("1y"), None);
    }

    proptest::proptest! {
        #[test]
        fn format_parse_round_trip(secs in 0u64..8_000_000_000, micros in 0u32..1_000_000) {
            let t = UNIX_EPOCH + Duration::new(secs, micros * 1000);
            proptest::prop_assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
    }
}
