//! Go 1.19 `time.Time` JSON round trip: `UnmarshalJSON` (RFC 3339 layout parse) followed by
//! `MarshalJSON` (RFC3339Nano print), as distribution 2.8.2 applies it to every history `created`
//! (history-conversion.md §4.2).
//!
//! Go 1.19 parses with the generic layout engine, not the strict RFC 3339 parser Go 1.20 added, so
//! its quirks are part of the output contract: the hour may have one digit, a comma may introduce
//! the fraction, more than nine fraction digits are truncated, and the zone offset is not range
//! checked (`+99:99` prints as `+100:39`).

use std::fmt::Write as _;

/// A parsed wall-clock time with its zone offset, exactly what Go keeps for printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GoTime {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    nanos: u32,
    /// Seconds east of UTC; 0 prints as `Z`.
    offset: i32,
}

/// Go's zero `time.Time`, printed for a missing or `null` `created`.
pub(crate) const ZERO: GoTime = GoTime {
    year: 1,
    month: 1,
    day: 1,
    hour: 0,
    minute: 0,
    second: 0,
    nanos: 0,
    offset: 0,
};

/// Why Go would refuse a time; the conversion fails with it (or an extension steps in).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not accepted by Go 1.19's RFC 3339 layout parse.
    #[error("cannot parse {0:?} as RFC 3339")]
    Parse(String),
    /// Go 1.19's `MarshalJSON` refuses years outside 0..=9999.
    #[error("year {0} is outside of range [0,9999]")]
    YearRange(i32),
}

impl GoTime {
    /// Parses the contents of a JSON string literal **as written** (escapes included), the way
    /// Go's `Time.UnmarshalJSON` hands the raw bytes to `time.Parse`.
    pub(crate) fn parse(text: &str) -> Result<GoTime, TimeError> {
        let fail = || TimeError::Parse(text.to_owned());
        let mut p = Cursor(text.as_bytes());
        // "2006": four bytes through Go's atoi, which takes an optional sign.
        let year = p.year().ok_or_else(fail)?;
        p.literal(b'-').ok_or_else(fail)?;
        let month = p
            .digits(true)
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(fail)?;
        p.literal(b'-').ok_or_else(fail)?;
        let day = p.digits(true).ok_or_else(fail)?;
        p.literal(b'T').ok_or_else(fail)?;
        // "15" is stdHour, which Go 1.19 reads with getnum(fixed = false): one digit is enough.
        let hour = p.digits(false).filter(|h| *h < 24).ok_or_else(fail)?;
        p.literal(b':').ok_or_else(fail)?;
        let minute = p.digits(true).filter(|m| *m < 60).ok_or_else(fail)?;
        p.literal(b':').ok_or_else(fail)?;
        let second = p.digits(true).filter(|s| *s < 60).ok_or_else(fail)?;
        let nanos = p.fraction();
        let offset = p.zone().ok_or_else(fail)?;
        if !p.0.is_empty() || day < 1 || day > days_in(month, year) {
            return Err(fail());
        }
        let t = GoTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset,
        };
        if !(0..=9999).contains(&year) {
            return Err(TimeError::YearRange(year));
        }
        Ok(t)
    }

    /// The extension of history-conversion.md §11: also accept lower-case `t`/`z`, a space
    /// separator and `±hhmm` offsets. Used only where distribution would have failed.
    pub(crate) fn parse_lenient(text: &str) -> Option<GoTime> {
        let mut s = text.as_bytes().to_vec();
        if let Some(sep @ (b't' | b' ')) = s.get(10).copied() {
            let _ = sep;
            s[10] = b'T';
        }
        if s.last() == Some(&b'z') {
            *s.last_mut()? = b'Z';
        }
        let n = s.len();
        if n >= 5
            && matches!(s[n - 5], b'+' | b'-')
            && s[n - 4..].iter().all(u8::is_ascii_digit)
            && s.iter().filter(|b| **b == b':').count() == 2
        {
            s.insert(n - 2, b':');
        }
        GoTime::parse(std::str::from_utf8(&s).ok()?).ok()
    }

    /// Seconds since the Unix epoch (the fraction dropped), for times registries send such as a
    /// token's `issued_at`.
    pub(crate) fn unix_seconds(&self) -> i64 {
        // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset)
    }

    /// Go's `RFC3339Nano` rendering: trailing fraction zeros trimmed, `Z` for a zero offset.
    pub(crate) fn format(&self) -> String {
        let mut out = String::with_capacity(35);
        let year = self.year;
        let _ = write!(
            out,
            "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let minutes = self.offset / 60;
            out.push(if minutes < 0 { '-' } else { '+' });
            let minutes = minutes.abs();
            let _ = write!(out, "{:02}:{:02}", minutes / 60, minutes % 60);
        }
        out
    }
}

/// A byte cursor with Go's `getnum`/`skip` rules.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn literal(&mut self, b: u8) -> Option<()> {
        let (first, rest) = self.0.split_first()?;
        (*first == b).then(|| self.0 = rest)
    }

    /// Go's `getnum(s, fixed)`: two digits, or one when not fixed and the next is not a digit.
    fn digits(&mut self, fixed: bool) -> Option<u8> {
        let d0 = *self.0.first().filter(|b| b.is_ascii_digit())? - b'0';
        match self.0.get(1).filter(|b| b.is_ascii_digit()) {
            Some(d1) => {
                self.0 = &self.0[2..];
                Some(d0 * 10 + (d1 - b'0'))
            }
            None if fixed => None,
            None => {
                self.0 = &self.0[1..];
                Some(d0)
            }
        }
    }

    /// "2006": exactly four bytes, parsed by Go's `atoi` (optional sign, then only digits).
    fn year(&mut self) -> Option<i32> {
        let p = self.0.get(..4)?;
        self.0 = &self.0[4..];
        let (neg, digits) = match p[0] {
            b'-' => (true, &p[1..]),
            b'+' => (false, &p[1..]),
            _ => (false, p),
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = digits
            .iter()
            .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
        Some(if neg { -v } else { v })
    }

    /// An optional fraction: `.` or `,` followed by at least one digit; digits past nine are
    /// dropped, not rounded (Go's `parseNanoseconds`).
    fn fraction(&mut self) -> u32 {
        let s = self.0;
        if s.len() < 2 || !matches!(s[0], b'.' | b',') || !s[1].is_ascii_digit() {
            return 0;
        }
        let n = 1 + s[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        self.0 = &s[n..];
        let digits = &s[1..n.min(10)];
        let mut nanos = digits
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        for _ in digits.len()..9 {
            nanos *= 10;
        }
        nanos
    }

    /// "Z07:00": `Z`, or a sign and `hh:mm` with two digits each and no range check.
    fn zone(&mut self) -> Option<i32> {
        if self.literal(b'Z').is_some() {
            return Some(0);
        }
        let s = self.0;
        if s.len() < 6 || s[3] != b':' {
            return None;
        }
        let mut h = Cursor(&s[1..3]);
        let mut m = Cursor(&s[4..6]);
        let minutes = i32::from(h.digits(true)?) * 60 + i32::from(m.digits(true)?);
        let sign = match s[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.0 = &s[6..];
        Some(sign * minutes * 60)
    }
}

fn days_in(month: u8, year: i32) -> u8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) -> Result<String, TimeError> {
        GoTime::parse(s).map(|t| t.format())
    }

    #[test]
    fn unix_seconds() {
        let at = |s: &str| GoTime::parse(s).unwrap().unix_seconds();
        assert_eq!(at("1970-01-01T00:00:00Z"), 0);
        assert_eq!(at("2000-03-01T00:00:00Z"), 951_868_800);
        assert_eq!(at("2026-12-01T15:57:27.123456789Z"), 1_796_140_647);
        assert_eq!(at("2026-12-01T17:57:27+02:00"), 1_796_140_647);
        assert_eq!(at("1969-12-31T23:59:59Z"), -1);
    }

    #[test]
    fn documented_table() {
        let ok = [
            ("2023-05-01T00:00:01.120Z", "2023-05-01T00:00:01.12Z"),
            ("2020-01-01T00:00:00.000Z", "2020-01-01T00:00:00Z"),
            (
                "2020-01-01T00:00:00.1234567891Z",
                "2020-01-01T00:00:00.123456789Z",
            ),
            (
                "2020-01-01T00:00:00.100200300Z",
                "2020-01-01T00:00:00.1002003Z",
            ),
            ("2020-01-01T00:00:00,5Z", "2020-01-01T00:00:00.5Z"),
            ("2023-05-01T00:00:00+00:00", "2023-05-01T00:00:00Z"),
            ("2023-05-01T00:00:00-00:00", "2023-05-01T00:00:00Z"),
            (
                "2023-05-01T00:00:03.000000000-05:30",
                "2023-05-01T00:00:03-05:30",
            ),
            ("2020-01-01T10:00:00+14:00", "2020-01-01T10:00:00+14:00"),
            ("2020-01-01T10:00:00+24:00", "2020-01-01T10:00:00+24:00"),
            ("2020-01-01T00:00:00+99:99", "2020-01-01T00:00:00+100:39"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
            ("2020-01-01T1:02:03Z", "2020-01-01T01:02:03Z"),
            (
                "2023-05-01T10:00:00.500000000+02:00",
                "2023-05-01T10:00:00.5+02:00",
            ),
        ];
        for (input, want) in ok {
            assert_eq!(round(input).as_deref(), Ok(want), "{input}");
        }
        let bad = [
            "2020-01-01t00:00:00z",
            "2020-01-01 00:00:00Z",
            "2020-01-01T00:00:00+0200",
            "2020-01-01T00:00Z",
            "2020-01-01T00:00:00.Z",
            "2020-1-01T00:00:00Z",
            "2020-01-01T24:00:00Z",
            "2020-01-01T00:00:60Z",
            "2020-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2020-01-01T00:00:00Zjunk",
            "2020-01-01T00:00:00",
            "",
            "2020-01-01T00:00:00Z\\\"",
        ];
        for input in bad {
            assert!(round(input).is_err(), "{input} should fail");
        }
        assert_eq!(
            round("-999-01-01T00:00:00Z"),
            Err(TimeError::YearRange(-999))
        );
        assert_eq!(ZERO.format(), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn lenient_extension() {
        let f = |s| GoTime::parse_lenient(s).map(|t| t.format());
        assert_eq!(
            f("2020-01-01t00:00:00z").as_deref(),
            Some("2020-01-01T00:00:00Z")
        );
        assert_eq!(
            f("2020-01-01 00:00:00+0200").as_deref(),
            Some("2020-01-01T00:00:00+02:00")
        );
        assert_eq!(f("yesterday"), None);
    }
}
