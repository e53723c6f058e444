//! Budget and key durations: LiteLLM's `\d+(s|m|h|d|w|mo)` plus the words `daily`, `weekly`,
//! `monthly`, `yearly`, and the calendar boundaries (UTC) at which budgets reset.

use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, TimeZone, Utc};

/// A parsed duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Seconds(i64),
    Minutes(i64),
    Hours(i64),
    Days(i64),
    Weeks(i64),
    Months(i64),
}

/// Parses `30s`, `5m`, `1h`, `1d`, `7d`, `2w`, `1mo`, `daily`, `weekly`, `monthly`, `yearly`.
pub fn parse(s: &str) -> Result<Span, String> {
    let t = s.trim().to_ascii_lowercase();
    let span = match t.as_str() {
        "daily" => return Ok(Span::Days(1)),
        "weekly" => return Ok(Span::Weeks(1)),
        "monthly" => return Ok(Span::Months(1)),
        "yearly" | "annually" => return Ok(Span::Months(12)),
        _ => {
            let digits = t.chars().take_while(char::is_ascii_digit).count();
            let (n, unit) = t.split_at(digits);
            let n: i64 = n.parse().map_err(|_| bad(s))?;
            if n <= 0 {
                return Err(bad(s));
            }
            match unit {
                "s" => Span::Seconds(n),
                "m" => Span::Minutes(n),
                "h" => Span::Hours(n),
                "d" => Span::Days(n),
                "w" => Span::Weeks(n),
                "mo" => Span::Months(n),
                _ => return Err(bad(s)),
            }
        }
    };
    Ok(span)
}

fn bad(s: &str) -> String {
    format!(
        "invalid duration \"{s}\": use a number and a unit (30s, 10m, 1h, 1d, 7d, 1w, 1mo) or daily, weekly, monthly, yearly"
    )
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0)
}

fn first_of_month_after(d: NaiveDate, months: i64) -> NaiveDate {
    let total = d.year() as i64 * 12 + d.month0() as i64 + months;
    NaiveDate::from_ymd_opt((total / 12) as i32, (total % 12) as u32 + 1, 1).unwrap_or(d)
}

/// When a budget with this duration next resets after `now_ms`, on UTC calendar boundaries:
/// `1d` → next midnight, `7d`/`1w` → next Monday, `30d`/`1mo`/`monthly` → the 1st of next
/// month, `Nh`/`Nm`/`Ns` → the next multiple of N within the day / hour / minute.
pub fn next_reset(span: Span, now_ms: i64) -> i64 {
    let now = at(now_ms);
    let today = now.date_naive();
    let next_monday = |weeks: i64| {
        let ahead = 7 - today.weekday().num_days_from_monday() as i64;
        midnight(today + Days::days(ahead + 7 * (weeks - 1)))
    };
    match span {
        Span::Seconds(n) => (now_ms.div_euclid(n * 1000) + 1) * n * 1000,
        Span::Minutes(n) => {
            let hour = now_ms - now_ms.rem_euclid(3_600_000);
            let minute = (now_ms - hour) / 60_000;
            (hour + (minute / n + 1) * n * 60_000).min(hour + 3_600_000)
        }
        Span::Hours(n) => {
            let day = midnight(today);
            let hour = (now_ms - day) / 3_600_000;
            (day + (hour / n + 1) * n * 3_600_000).min(day + 86_400_000)
        }
        Span::Days(7) => next_monday(1),
        Span::Days(30) => midnight(first_of_month_after(today, 1)),
        Span::Days(n) => midnight(today + Days::days(n)),
        Span::Weeks(n) => next_monday(n),
        Span::Months(n) => midnight(first_of_month_after(today, n)),
    }
}

/// `now + span` (key expiry: not aligned to the calendar).
pub fn add(span: Span, now_ms: i64) -> i64 {
    let now = at(now_ms);
    match span {
        Span::Seconds(n) => now_ms + n * 1000,
        Span::Minutes(n) => now_ms + n * 60_000,
        Span::Hours(n) => now_ms + n * 3_600_000,
        Span::Days(n) => now_ms + n * 86_400_000,
        Span::Weeks(n) => now_ms + n * 7 * 86_400_000,
        Span::Months(n) => now
            .checked_add_months(chrono::Months::new(n as u32))
            .map(|t| t.timestamp_millis())
            .unwrap_or(now_ms),
    }
}

/// ISO-8601 text of a unix-millisecond time, as LiteLLM returns datetimes.
pub fn iso(ms: i64) -> String {
    at(ms).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Parses an ISO datetime (`expires`, `budget_reset_at` in requests and imports).
pub fn parse_iso(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                .map(|t| t.and_utc().timestamp_millis())
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        parse_iso(s).unwrap()
    }

    #[test]
    fn parses_litellm_units_and_words() {
        assert_eq!(parse("30s"), Ok(Span::Seconds(30)));
        assert_eq!(parse("10m"), Ok(Span::Minutes(10)));
        assert_eq!(parse("1mo"), Ok(Span::Months(1)));
        assert_eq!(parse("monthly"), Ok(Span::Months(1)));
        assert_eq!(parse("daily"), Ok(Span::Days(1)));
        assert_eq!(parse("weekly"), Ok(Span::Weeks(1)));
        assert_eq!(parse("yearly"), Ok(Span::Months(12)));
        assert!(parse("1y").is_err());
        assert!(parse("0d").is_err());
        assert!(parse("d").is_err());
        assert!(parse("soon").is_err());
    }

    #[test]
    fn resets_on_calendar_boundaries() {
        // Wednesday 2026-11-25 10:30 UTC.
        let now = ms("2026-11-25T10:30:00Z");
        assert_eq!(next_reset(Span::Days(1), now), ms("2026-11-26T00:00:00Z"));
        assert_eq!(next_reset(Span::Days(7), now), ms("2026-11-30T00:00:00Z"));
        assert_eq!(next_reset(Span::Weeks(1), now), ms("2026-11-30T00:00:00Z"));
        assert_eq!(next_reset(Span::Days(30), now), ms("2026-12-01T00:00:00Z"));
        assert_eq!(next_reset(Span::Months(1), now), ms("2026-12-01T00:00:00Z"));
        assert_eq!(
            next_reset(Span::Months(12), now),
            ms("2027-11-01T00:00:00Z")
        );
        assert_eq!(next_reset(Span::Hours(1), now), ms("2026-11-25T11:00:00Z"));
        assert_eq!(next_reset(Span::Hours(6), now), ms("2026-11-25T12:00:00Z"));
        assert_eq!(
            next_reset(Span::Minutes(15), now),
            ms("2026-11-25T10:45:00Z")
        );
        assert_eq!(
            next_reset(Span::Seconds(30), now),
            ms("2026-11-25T10:30:30Z")
        );
        // December rolls into January; a Monday goes to the next Monday.
        let dec = ms("2026-12-31T23:59:59Z");
        assert_eq!(next_reset(Span::Months(1), dec), ms("2027-01-01T00:00:00Z"));
        let monday = ms("2026-11-30T00:00:00Z");
        assert_eq!(
            next_reset(Span::Weeks(1), monday),
            ms("2026-12-07T00:00:00Z")
        );
    }

    #[test]
    fn expiry_adds_calendar_months() {
        let now = ms("2026-01-31T00:00:00Z");
        assert_eq!(add(Span::Months(1), now), ms("2026-02-28T00:00:00Z"));
        assert_eq!(add(Span::Hours(2), now), now + 7_200_000);
    }
}
