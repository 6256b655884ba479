//! Vendor keys parked until the reset time the vendor gives (issue #17):
//! each vendor mock answers 429 with that vendor's real headers or body,
//! and the gateway parks the key for exactly that long — not for the fixed
//! `routing.rate_limit_cooldown_secs` — uses the next key meanwhile, and
//! answers 429 with the earliest reset when every key is parked.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::gateway::{typed_provider, Gateway, TOKEN};
use support::mock_anthropic::{self, MockAnthropic};
use support::mock_gemini::{self, MockGemini};
use support::mock_openai::{self, MockOpenAi};

/// No active checks (they would use keys on their own); a fixed cooldown
/// that differs from every vendor time used below.
const BASE: &str = "[health]\nenabled = false\n[routing]\nrate_limit_cooldown_secs = 30.0\n";

const KEY_A: &str = "sk-first-key-0000000001";
const KEY_B: &str = "sk-second-key-000000002";

fn hello(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "max_tokens": 50,
           "messages": [{"role": "user", "content": "Hi"}]})
}

/// Which keys (their header values) the mock saw, in order.
fn keys_seen(reqs: &[support::mock_http::Recorded], header: &str) -> Vec<String> {
    reqs.iter().filter_map(|r| r.header(header)).collect()
}

fn used(seen: &[String], key: &str) -> bool {
    seen.iter().any(|s| s.contains(key))
}

/// The health endpoint's entry for `key` (its masked form keeps the last
/// four characters).
async fn key_health(gw: &Gateway, provider: &str, key: &str) -> Value {
    let p = gw.provider_health(provider).await;
    p["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| {
            k["key"]
                .as_str()
                .is_some_and(|m| m.ends_with(&key[key.len() - 4..]))
        })
        .cloned()
        .unwrap_or_else(|| panic!("key {key} not in {p}"))
}

fn remaining(k: &Value) -> f64 {
    k["cooldown_remaining_secs"].as_f64().unwrap_or(0.0)
}

/// An RFC 3339 UTC timestamp `secs_from_now` ahead.
fn rfc3339_in(secs_from_now: u64) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + secs_from_now;
    let (days, rem) = (t / 86_400, t % 86_400);
    // civil_from_days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test]
async fn openai_reset_header_parks_the_key_for_exactly_that_long() {
    let mock = MockOpenAi::start("oa").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}",
        typed_provider("openai", "oa", &mock.base_url(), &[KEY_A, KEY_B], "")
    ))
    .await;
    mock.push(mock_openai::rate_limited("2s"));
    let t0 = Instant::now();
    assert_eq!(gw.chat(&hello(false)).await.status(), 200, "next key used");
    let first = keys_seen(&mock.requests(), "authorization");
    assert_eq!(first.len(), 2);
    let limited = if first[0].contains(KEY_A) {
        KEY_A
    } else {
        KEY_B
    };

    let k = key_health(&gw, "oa", limited).await;
    assert_eq!(k["state"], "cooling", "{k}");
    assert_eq!(k["reset_from"], "x-ratelimit-reset-*", "{k}");
    assert!(remaining(&k) <= 2.0 && remaining(&k) > 0.5, "{k}");

    // Until the reset: never the parked key.
    while t0.elapsed() < Duration::from_millis(1500) {
        assert_eq!(gw.chat(&hello(false)).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = keys_seen(&mock.requests(), "authorization");
    assert!(!used(&before[2..], limited), "parked key used: {before:?}");

    // After it (the fixed cooldown would last 30 s): back in rotation.
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(t0.elapsed())).await;
    let n = mock.count();
    for _ in 0..4 {
        assert_eq!(gw.chat(&hello(false)).await.status(), 200);
    }
    let after = keys_seen(&mock.requests(), "authorization");
    assert!(used(&after[n..], limited), "key still parked: {after:?}");
    assert!(
        gw.wait_log(
            "key parked until the vendor's reset time",
            Duration::from_secs(2)
        )
        .await,
        "the park is logged"
    );
    assert!(
        !gw.logs().contains(limited),
        "the key itself is never logged"
    );
}

#[tokio::test]
async fn a_streamed_request_reads_the_reset_too() {
    let mock = MockOpenAi::start("oa").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}",
        typed_provider("openai", "oa", &mock.base_url(), &[KEY_A, KEY_B], "")
    ))
    .await;
    mock.push(mock_openai::rate_limited("2m0s"));
    let r = gw.chat(&hello(true)).await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    let seen = keys_seen(&mock.requests(), "authorization");
    let limited = if seen[0].contains(KEY_A) {
        KEY_A
    } else {
        KEY_B
    };
    let k = key_health(&gw, "oa", limited).await;
    assert_eq!(k["reset_from"], "x-ratelimit-reset-*", "{k}");
    assert!(
        remaining(&k) > 100.0 && remaining(&k) <= 120.0,
        "2m0s, not the fixed 30 s: {k}"
    );
}

#[tokio::test]
async fn anthropic_reset_an_hour_away_outlasts_the_fixed_cooldown() {
    let mock = MockAnthropic::start("an").await;
    // A fixed cooldown of 1 s: the key must stay parked well beyond it.
    let gw = Gateway::start(&format!(
        "[health]\nenabled = false\n[routing]\nrate_limit_cooldown_secs = 1.0\n{}",
        typed_provider("anthropic", "an", &mock.base_url(), &[KEY_A, KEY_B], "")
    ))
    .await;
    mock.push(mock_anthropic::rate_limited(None, &rfc3339_in(3600)));
    assert_eq!(gw.chat(&hello(false)).await.status(), 200);
    let seen = keys_seen(&mock.requests(), "x-api-key");
    let limited = if seen[0] == KEY_A { KEY_A } else { KEY_B };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..4 {
        assert_eq!(gw.chat(&hello(false)).await.status(), 200);
    }
    let seen = keys_seen(&mock.requests(), "x-api-key");
    assert!(!used(&seen[2..], limited), "parked key used: {seen:?}");
    let k = key_health(&gw, "an", limited).await;
    assert_eq!(k["state"], "cooling", "{k}");
    assert_eq!(k["reset_from"], "anthropic-ratelimit-*-reset", "{k}");
    assert!(remaining(&k) > 3500.0, "{k}");
}

#[tokio::test]
async fn every_anthropic_key_parked_is_a_429_in_anthropic_format() {
    let mock = MockAnthropic::start("an").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}",
        typed_provider("anthropic", "an", &mock.base_url(), &[KEY_A], "")
    ))
    .await;
    // No retry-after: the reset comes from the anthropic-ratelimit headers.
    mock.push(mock_anthropic::rate_limited(None, &rfc3339_in(5)));
    let first = gw.messages(&hello(false)).await;
    assert_eq!(first.status(), 429, "the vendor's own 429");
    // Every key parked: the gateway's own 429, in the Anthropic format,
    // with the earliest reset as Retry-After (not the fixed 30 s).
    let r = gw.messages(&hello(false)).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=5).contains(&retry), "retry-after {retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "error", "Anthropic error format: {body}");
    assert_eq!(mock.count(), 1, "no request with a parked key");
}

#[tokio::test]
async fn gemini_retry_info_parks_and_releases() {
    let mock = MockGemini::start("ge").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}",
        typed_provider("gemini", "ge", &mock.base_url(), &[KEY_A, KEY_B], "")
    ))
    .await;
    mock.push(mock_gemini::resource_exhausted(
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "2s",
    ));
    let t0 = Instant::now();
    assert_eq!(gw.chat(&hello(false)).await.status(), 200);
    let seen = keys_seen(&mock.requests(), "x-goog-api-key");
    let limited = if seen[0] == KEY_A { KEY_A } else { KEY_B };
    let k = key_health(&gw, "ge", limited).await;
    assert_eq!(k["reset_from"], "google.rpc.RetryInfo retryDelay", "{k}");
    assert!(remaining(&k) <= 2.0, "{k}");
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(t0.elapsed())).await;
    let n = mock.count();
    for _ in 0..4 {
        assert_eq!(gw.chat(&hello(false)).await.status(), 200);
    }
    let seen = keys_seen(&mock.requests(), "x-goog-api-key");
    assert!(used(&seen[n..], limited), "key still parked: {seen:?}");
}

#[tokio::test]
async fn gemini_daily_quota_parks_until_pacific_midnight() {
    let mock = MockGemini::start("ge").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}",
        typed_provider("gemini", "ge", &mock.base_url(), &[KEY_A, KEY_B], "")
    ))
    .await;
    // Google's body also carries a short RetryInfo; a daily quota is not
    // back in 5 s.
    mock.push(mock_gemini::resource_exhausted(
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "5s",
    ));
    assert_eq!(gw.chat(&hello(false)).await.status(), 200);
    let seen = keys_seen(&mock.requests(), "x-goog-api-key");
    let limited = if seen[0] == KEY_A { KEY_A } else { KEY_B };
    let k = key_health(&gw, "ge", limited).await;
    assert_eq!(k["state"], "parked", "{k}");
    assert_eq!(k["reason"], "quota exhausted (429)", "{k}");
    assert_eq!(
        k["reset_from"], "google.rpc.QuotaFailure (daily quota)",
        "{k}"
    );
    // Midnight in Los Angeles, computed independently: UTC-8 or UTC-7.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let until = |offset: u64| {
        let local = now - offset * 3600;
        (86_400 - local % 86_400) as f64
    };
    let r = remaining(&k);
    assert!(
        (r - until(8)).abs() < 5.0 || (r - until(7)).abs() < 5.0,
        "parked {r} s; midnight PST in {} s, PDT in {} s",
        until(8),
        until(7)
    );
}

#[tokio::test]
async fn openai_insufficient_quota_parks_for_the_long_cap() {
    let mock = MockOpenAi::start("oa").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}",
        typed_provider("openai", "oa", &mock.base_url(), &[KEY_A, KEY_B], "")
    ))
    .await;
    mock.push(mock_openai::insufficient_quota());
    assert_eq!(gw.chat(&hello(false)).await.status(), 200, "next key used");
    let seen = keys_seen(&mock.requests(), "authorization");
    let limited = if seen[0].contains(KEY_A) {
        KEY_A
    } else {
        KEY_B
    };
    let k = key_health(&gw, "oa", limited).await;
    assert_eq!(k["state"], "parked", "{k}");
    assert_eq!(k["reset_from"], "insufficient_quota (billing)", "{k}");
    assert!(remaining(&k) > 86_000.0, "24 h, not the fixed 30 s: {k}");
    let metrics = reqwest::Client::new()
        .get(gw.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("reason=\"quota_exhausted\"} 0"),
        "metric names the park"
    );
}

#[tokio::test]
async fn every_key_parked_is_a_429_with_the_earliest_reset() {
    let a = MockOpenAi::start("a").await;
    let b = MockOpenAi::start("b").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}{}",
        typed_provider("openai", "a", &a.base_url(), &[KEY_A], ""),
        typed_provider("openai", "b", &b.base_url(), &[KEY_B], "")
    ))
    .await;
    a.push(mock_openai::rate_limited("6s"));
    b.push(mock_openai::rate_limited("9m0s"));
    // The first request meets both 429s (the last one is relayed).
    assert_eq!(gw.chat(&hello(false)).await.status(), 429);
    let r = gw.chat(&hello(false)).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((5..=6).contains(&retry), "the earliest reset: {retry}");
    let body: Value = r.json().await.expect("json");
    assert!(
        body["error"]["message"].is_string(),
        "OpenAI format: {body}"
    );
    assert_eq!(a.count() + b.count(), 2, "no request with a parked key");
}

#[tokio::test]
async fn gemini_native_count_tokens_reads_the_reset_too() {
    let mock = MockGemini::start("ge").await;
    let gw = Gateway::start(&format!(
        "{BASE}{}",
        typed_provider("gemini", "ge", &mock.base_url(), &[KEY_A, KEY_B], "")
    ))
    .await;
    let exhausted = json!({"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "120s"}]
    }});
    mock.set_fixed(
        "POST",
        "/v1beta/models/m:countTokens",
        429,
        exhausted.to_string(),
    );
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "How many?"}]}]});
    let r = gw
        .post(
            "/v1beta/models/m:countTokens",
            &[("x-goog-api-key", TOKEN)],
            &body,
        )
        .await;
    assert_eq!(r.status(), 429);
    for key in [KEY_A, KEY_B] {
        let k = key_health(&gw, "ge", key).await;
        assert_eq!(k["reset_from"], "google.rpc.RetryInfo retryDelay", "{k}");
        assert!(
            remaining(&k) > 100.0 && remaining(&k) <= 120.0,
            "120 s, not the fixed 30 s: {k}"
        );
    }
}
