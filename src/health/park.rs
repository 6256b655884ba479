//! How long a vendor key is parked after a 429, read from the vendor's own
//! signals instead of a fixed cooldown.
//!
//! The signals, strongest first (the first that yields a time wins):
//!
//! 1. Billing / daily quota, which a short wait would not cure: OpenAI
//!    `error.code = "insufficient_quota"` (park for [`QUOTA_CAP`]), Gemini
//!    `google.rpc.QuotaFailure` naming a per-day quota (park until the next
//!    midnight US Pacific time, when Google resets daily quotas).
//! 2. `retry-after-ms` / `Retry-After` (delta-seconds or HTTP-date), any vendor.
//! 3. OpenAI `x-ratelimit-reset-{requests,tokens}` (Go durations such as
//!    `6m0s`, `20ms`) and Anthropic `anthropic-ratelimit-{requests,tokens,
//!    input-tokens,output-tokens}-reset` (RFC 3339): the resets whose
//!    `…-remaining` is 0 (or absent), the latest of them.
//! 4. Gemini `google.rpc.RetryInfo.retryDelay` (`"37s"`) in `error.details`.
//!
//! Nothing usable (garbage, absent) -> the configured fixed cooldown. Every
//! wait is bounded: at least [`MIN_PARK`], at most the configured
//! `routing.max_retry_after_secs` for rate limits and [`QUOTA_CAP`] for
//! quota exhaustion.
//!
//! Only called on 429 answers, so parsing the (bounded) body is fine.

use crate::protocol::chat::Family;
use serde_json::Value;
use std::time::Duration;

/// No key is parked for less: a vendor saying `20ms` would otherwise be
/// retried in a tight loop by concurrent requests.
pub const MIN_PARK: Duration = Duration::from_secs(1);
/// The longest park for an exhausted quota or billing limit: such a key is
/// tried again at least once a day, so a topped-up account comes back alone.
pub const QUOTA_CAP: Duration = Duration::from_secs(24 * 3600);

/// Where a park's time came from (shown by the health endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum ResetSource {
    /// No usable signal: `routing.rate_limit_cooldown_secs`.
    #[default]
    Fixed = 0,
    RetryAfter = 1,
    OpenAiHeaders = 2,
    AnthropicHeaders = 3,
    GeminiRetryInfo = 4,
    GeminiDailyQuota = 5,
    InsufficientQuota = 6,
}

impl ResetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetSource::Fixed => "fixed cooldown (no reset time from the vendor)",
            ResetSource::RetryAfter => "retry-after",
            ResetSource::OpenAiHeaders => "x-ratelimit-reset-*",
            ResetSource::AnthropicHeaders => "anthropic-ratelimit-*-reset",
            ResetSource::GeminiRetryInfo => "google.rpc.RetryInfo retryDelay",
            ResetSource::GeminiDailyQuota => "google.rpc.QuotaFailure (daily quota)",
            ResetSource::InsufficientQuota => "insufficient_quota (billing)",
        }
    }

    pub(super) fn from_u8(v: u8) -> ResetSource {
        match v {
            1 => ResetSource::RetryAfter,
            2 => ResetSource::OpenAiHeaders,
            3 => ResetSource::AnthropicHeaders,
            4 => ResetSource::GeminiRetryInfo,
            5 => ResetSource::GeminiDailyQuota,
            6 => ResetSource::InsufficientQuota,
            _ => ResetSource::Fixed,
        }
    }

    fn is_quota(self) -> bool {
        matches!(
            self,
            ResetSource::GeminiDailyQuota | ResetSource::InsufficientQuota
        )
    }
}

/// What a 429 said, before the configured bounds are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reset {
    /// The vendor's wait, `None` when it gave none that could be read.
    pub wait: Option<Duration>,
    pub source: ResetSource,
}

/// A decided park: how long, why, and from which signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Park {
    pub wait: Duration,
    /// A spent quota or billing limit rather than a rate limit (the key's
    /// reason becomes `QuotaExhausted`, see `KeyState::park`).
    pub quota: bool,
    pub source: ResetSource,
}

impl Reset {
    /// Read a 429's headers and body. `now_wall_ms` is Unix ms (dates in
    /// headers are absolute).
    pub fn read(family: Family, headers: &http::HeaderMap, body: &[u8], now_wall_ms: u64) -> Reset {
        let json = serde_json::from_slice::<Value>(body).ok();
        // Gemini's stream endpoint without alt=sse wraps the error in an array.
        let err = json.as_ref().map(|v| match v {
            Value::Array(items) => items.first().unwrap_or(&Value::Null),
            other => other,
        });
        let err = err.map(|v| v.get("error").unwrap_or(v));
        let found = |wait, source| Reset {
            wait: Some(wait),
            source,
        };
        if let Some(e) = err {
            if matches!(family, Family::OpenAi | Family::OpenAiResponses)
                && ["code", "type"]
                    .iter()
                    .any(|f| e.get(f).and_then(Value::as_str) == Some("insufficient_quota"))
            {
                return found(QUOTA_CAP, ResetSource::InsufficientQuota);
            }
            if family == Family::Gemini && gemini_daily_quota(e) {
                return found(
                    until_pacific_midnight(now_wall_ms),
                    ResetSource::GeminiDailyQuota,
                );
            }
        }
        if let Some(w) = retry_after(headers, now_wall_ms) {
            return found(w, ResetSource::RetryAfter);
        }
        let openai = latest_reset(headers, "x-ratelimit-", &["requests", "tokens"], |s| {
            go_duration(s)
        });
        if let Some(w) = openai {
            return found(w, ResetSource::OpenAiHeaders);
        }
        let anthropic = latest_reset(
            headers,
            "anthropic-ratelimit-",
            &["requests", "tokens", "input-tokens", "output-tokens"],
            |s| rfc3339_ms(s).map(|at| Duration::from_millis(at.saturating_sub(now_wall_ms))),
        );
        if let Some(w) = anthropic {
            return found(w, ResetSource::AnthropicHeaders);
        }
        if let Some(w) = err.and_then(gemini_retry_delay) {
            return found(w, ResetSource::GeminiRetryInfo);
        }
        Reset::default()
    }

    /// Apply the bounds: `fixed` when the vendor gave nothing, rate waits
    /// capped at `rate_cap`, quota waits at [`QUOTA_CAP`], all at least
    /// [`MIN_PARK`].
    pub fn decide(self, fixed: Duration, rate_cap: Duration) -> Park {
        let quota = self.source.is_quota();
        let cap = if quota { QUOTA_CAP } else { rate_cap };
        let wait = self.wait.unwrap_or(fixed).min(cap).max(MIN_PARK);
        Park {
            wait,
            quota,
            source: self.source,
        }
    }
}

/// `retry-after-ms` (OpenAI's SDKs read it) or `Retry-After`:
/// delta-seconds (fractions accepted) or an IMF-fixdate HTTP-date.
fn retry_after(headers: &http::HeaderMap, now_wall_ms: u64) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64((ms / 1000.0).min(1e9)));
        }
    }
    let v = text("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    http_date_ms(v).map(|at| Duration::from_millis(at.saturating_sub(now_wall_ms)))
}

/// The latest `{prefix}reset-{kind}` / `{prefix}{kind}-reset` among the
/// kinds whose remaining count is 0 or not given.
fn latest_reset(
    headers: &http::HeaderMap,
    prefix: &str,
    kinds: &[&str],
    parse: impl Fn(&str) -> Option<Duration>,
) -> Option<Duration> {
    let openai = prefix == "x-ratelimit-";
    let get = |name: String| {
        headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
    };
    kinds
        .iter()
        .filter_map(|kind| {
            let (reset, remaining) = if openai {
                (
                    format!("{prefix}reset-{kind}"),
                    format!("{prefix}remaining-{kind}"),
                )
            } else {
                (
                    format!("{prefix}{kind}-reset"),
                    format!("{prefix}{kind}-remaining"),
                )
            };
            let reset = get(reset)?;
            let exhausted = get(remaining).is_none_or(|r| r.parse::<f64>().is_ok_and(|n| n <= 0.0));
            exhausted.then(|| parse(&reset)).flatten()
        })
        .max()
}

/// A Go `time.Duration` string as OpenAI sends it (`6m0s`, `1s`, `20ms`,
/// `1h2m3.5s`), or plain seconds (`12`, as some compatible servers send).
pub fn go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total.min(1e9)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Unix ms of a civil UTC time, when every field is in range.
fn unix_ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u64) -> Option<u64> {
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, mo, d)).ok()?;
    Some((days * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(s)) * 1000 + ms)
}

/// An IMF-fixdate HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix ms.
pub fn http_date_ms(s: &str) -> Option<u64> {
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let d: u32 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let mo = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u32
        + 1;
    let y: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u32>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    unix_ms(y, mo, d, h, mi, sec, 0)
}

/// An RFC 3339 timestamp (`2026-12-02T18:30:05Z`, fractions and offsets
/// allowed) as Unix ms.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut ms = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if end == 0 {
            return None;
        }
        let digits = &frac[..end.min(3)];
        ms = digits.parse::<u64>().ok()? * 10u64.pow(3 - digits.len() as u32);
        rest = &frac[end..];
    }
    let at = unix_ms(y, mo, d, h, mi, sec, ms)?;
    match rest {
        "Z" | "z" => Some(at),
        off if off.len() == 6 && (off.starts_with('+') || off.starts_with('-')) => {
            let oh: u64 = off.get(1..3)?.parse().ok()?;
            let om: u64 = off.get(4..6)?.parse().ok()?;
            if off.as_bytes()[3] != b':' || oh > 23 || om > 59 {
                return None;
            }
            let shift = (oh * 60 + om) * 60_000;
            // Local time ahead of UTC: subtract the offset to get UTC.
            if off.starts_with('+') {
                at.checked_sub(shift)
            } else {
                Some(at + shift)
            }
        }
        _ => None,
    }
}

/// A protobuf JSON `Duration` (`"37s"`, `"0.5s"`) from Gemini's
/// `google.rpc.RetryInfo` in `error.details`.
fn gemini_retry_delay(err: &Value) -> Option<Duration> {
    details(err)
        .filter(|d| type_is(d, "google.rpc.RetryInfo"))
        .filter_map(|d| d.get("retryDelay")?.as_str())
        .filter_map(|s| {
            let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
            (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
        })
        .max()
}

/// Does a `google.rpc.QuotaFailure` name a per-day quota
/// (`quotaId` like `GenerateRequestsPerDayPerProjectPerModel-FreeTier`)?
fn gemini_daily_quota(err: &Value) -> bool {
    details(err)
        .filter(|d| type_is(d, "google.rpc.QuotaFailure"))
        .filter_map(|d| d.get("violations")?.as_array())
        .flatten()
        .any(|v| {
            ["quotaId", "quotaMetric"].iter().any(|f| {
                v.get(f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.to_ascii_lowercase().contains("perday"))
            })
        })
}

fn details(err: &Value) -> impl Iterator<Item = &Value> {
    err.get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(32)
}

fn type_is(detail: &Value, name: &str) -> bool {
    detail
        .get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.strip_prefix("type.googleapis.com/") == Some(name))
}

/// Time until the next midnight in US Pacific time, when Google resets
/// daily quotas: UTC-7 while daylight saving time is in force (from the
/// second Sunday of March to the first Sunday of November), else UTC-8.
fn until_pacific_midnight(now_wall_ms: u64) -> Duration {
    let now = (now_wall_ms / 1000) as i64;
    let today = now.div_euclid(86_400);
    // The midnight that starts Pacific day `day` (a day number), in Unix s.
    let midnight = |day: i64| {
        let (y, _, _) = civil_from_days(day);
        let sunday_on_or_after = |m: u32, from: u32| {
            let n = days_from_civil(y, m, from);
            // 1970-01-01 was a Thursday: weekday 0 = Sunday is n + 4 mod 7.
            n + (7 - (n + 4).rem_euclid(7)) % 7
        };
        let dst_start = sunday_on_or_after(3, 8);
        let dst_end = sunday_on_or_after(11, 1);
        // At 00:00 the day's switch (at 02:00) has not happened yet.
        let offset = if day > dst_start && day <= dst_end {
            7
        } else {
            8
        };
        day * 86_400 + offset * 3600
    };
    let next = (today - 1..=today + 2)
        .map(midnight)
        .find(|&t| t > now)
        .unwrap_or(now + 86_400);
    Duration::from_millis(((next - now) as u64 * 1000).saturating_sub(now_wall_ms % 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    const NOW: u64 = 1_764_700_000_000; // 2025-12-02T18:26:40Z

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            go_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(
            go_duration("2m59.56s"),
            Some(Duration::from_millis(179_560))
        );
        assert_eq!(go_duration("12"), Some(Duration::from_secs(12)));
        for bad in ["", "soon", "5x", "m", "-1s", "1.2.3s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(http_date_ms("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date_ms("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(rfc3339_ms("1994-11-06T08:49:37Z"), Some(784_111_777_000));
        assert_eq!(
            rfc3339_ms("1994-11-06T08:49:37.250Z"),
            Some(784_111_777_250)
        );
        assert_eq!(
            rfc3339_ms("1994-11-06T09:49:37+01:00"),
            Some(784_111_777_000)
        );
        assert_eq!(
            rfc3339_ms("1994-11-06T00:49:37-08:00"),
            Some(784_111_777_000)
        );
        for bad in [
            "",
            "1994-11-06",
            "1994-13-06T08:49:37Z",
            "1994-11-06T08:49:37",
            "garbage-garbage-garbage",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let r = Reset::read(Family::OpenAi, &headers(&[("retry-after", "7")]), b"", NOW);
        assert_eq!(r.wait, Some(Duration::from_secs(7)));
        assert_eq!(r.source, ResetSource::RetryAfter);
        let date = "Tue, 02 Dec 2025 18:27:10 GMT"; // NOW + 30 s
        let r = Reset::read(
            Family::Anthropic,
            &headers(&[("retry-after", date)]),
            b"",
            NOW,
        );
        assert_eq!(r.wait, Some(Duration::from_secs(30)));
        let r = Reset::read(
            Family::OpenAi,
            &headers(&[("retry-after-ms", "1500")]),
            b"",
            NOW,
        );
        assert_eq!(r.wait, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn openai_reset_headers_follow_the_exhausted_limit() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-remaining-tokens", "1200"),
            ("x-ratelimit-reset-tokens", "20ms"),
        ]);
        let r = Reset::read(Family::OpenAi, &h, b"", NOW);
        assert_eq!(r.wait, Some(Duration::from_secs(360)));
        assert_eq!(r.source, ResetSource::OpenAiHeaders);
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "12"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "2s"),
        ]);
        assert_eq!(
            Reset::read(Family::OpenAi, &h, b"", NOW).wait,
            Some(Duration::from_secs(2))
        );
        // Retry-After is the vendor's answer for this very request.
        let h = headers(&[
            ("retry-after", "3"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "2s"),
        ]);
        assert_eq!(
            Reset::read(Family::OpenAi, &h, b"", NOW).wait,
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn anthropic_reset_headers() {
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "10"),
            ("anthropic-ratelimit-requests-reset", "2025-12-02T18:27:00Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2025-12-02T18:28:40Z",
            ),
        ]);
        let r = Reset::read(Family::Anthropic, &h, b"", NOW);
        assert_eq!(r.wait, Some(Duration::from_secs(120)));
        assert_eq!(r.source, ResetSource::AnthropicHeaders);
        // A reset already past: park the minimum, not forever nor never.
        let h = headers(&[("anthropic-ratelimit-tokens-reset", "2025-12-02T18:00:00Z")]);
        let park = Reset::read(Family::Anthropic, &h, b"", NOW)
            .decide(Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(park.wait, MIN_PARK);
    }

    #[test]
    fn gemini_retry_info_and_daily_quota() {
        let body = r#"{"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},"quotaValue":"15"}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
        let r = Reset::read(
            Family::Gemini,
            &http::HeaderMap::new(),
            body.as_bytes(),
            NOW,
        );
        assert_eq!(r.wait, Some(Duration::from_secs(37)));
        assert_eq!(r.source, ResetSource::GeminiRetryInfo);
        let daily = body.replace("PerMinute", "PerDay");
        let r = Reset::read(
            Family::Gemini,
            &http::HeaderMap::new(),
            daily.as_bytes(),
            NOW,
        );
        assert_eq!(r.source, ResetSource::GeminiDailyQuota);
        // 2025-12-02 18:26:40 UTC is 10:26:40 PST: midnight PST is 08:00 UTC next day.
        assert_eq!(r.wait, Some(Duration::from_secs(13 * 3600 + 33 * 60 + 20)));
        let park = r.decide(Duration::from_secs(30), Duration::from_secs(3600));
        assert!(park.quota);
        assert!(park.wait > Duration::from_secs(3600), "beyond the rate cap");
    }

    #[test]
    fn pacific_midnight_follows_daylight_saving_time() {
        // 2025-07-01T12:00:00Z = 05:00 PDT: midnight PDT is 07:00 UTC.
        let july = unix_ms(2025, 7, 1, 12, 0, 0, 0).expect("date");
        assert_eq!(until_pacific_midnight(july), Duration::from_secs(19 * 3600));
        // 2025-03-09 (DST starts at 02:00): 2025-03-09T07:30Z is 23:30 PST
        // on the 8th; the next midnight is 08:00 UTC.
        let spring = unix_ms(2025, 3, 9, 7, 30, 0, 0).expect("date");
        assert_eq!(until_pacific_midnight(spring), Duration::from_secs(1800));
        // After it, midnight of the 10th is PDT: 07:00 UTC.
        let after = unix_ms(2025, 3, 9, 12, 0, 0, 0).expect("date");
        assert_eq!(
            until_pacific_midnight(after),
            Duration::from_secs(19 * 3600)
        );
    }

    #[test]
    fn openai_insufficient_quota_is_a_long_park() {
        let body = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let r = Reset::read(
            Family::OpenAi,
            &headers(&[("retry-after", "20")]),
            body.as_bytes(),
            NOW,
        );
        let park = r.decide(Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(park.wait, QUOTA_CAP);
        assert!(park.quota);
    }

    #[test]
    fn garbage_falls_back_and_absurd_values_are_capped() {
        let fixed = Duration::from_secs(30);
        let cap = Duration::from_secs(3600);
        for h in [
            headers(&[("retry-after", "soon")]),
            headers(&[("retry-after", "-5")]),
            headers(&[("x-ratelimit-reset-tokens", "later")]),
            headers(&[("anthropic-ratelimit-tokens-reset", "tomorrow")]),
            http::HeaderMap::new(),
        ] {
            let park = Reset::read(Family::OpenAi, &h, b"<html>", NOW).decide(fixed, cap);
            assert_eq!(park.wait, fixed, "{h:?}");
            assert_eq!(park.source, ResetSource::Fixed);
        }
        let absurd = headers(&[("retry-after", "99999999999")]);
        assert_eq!(
            Reset::read(Family::OpenAi, &absurd, b"", NOW)
                .decide(fixed, cap)
                .wait,
            cap
        );
        let tiny = headers(&[("x-ratelimit-reset-requests", "20ms")]);
        assert_eq!(
            Reset::read(Family::OpenAi, &tiny, b"", NOW)
                .decide(fixed, cap)
                .wait,
            MIN_PARK
        );
        let far = body_retry("999999999s");
        assert_eq!(
            Reset::read(Family::Gemini, &http::HeaderMap::new(), far.as_bytes(), NOW)
                .decide(fixed, cap)
                .wait,
            cap
        );
    }

    fn body_retry(delay: &str) -> String {
        format!(
            r#"{{"error":{{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{delay}"}}]}}}}"#
        )
    }
}
