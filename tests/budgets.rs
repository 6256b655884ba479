//! Budgets of client keys (issue #17): token and cost budgets per UTC day,
//! month or in total, enforced on the data plane with a 429 in the
//! caller's API format naming the budget; spend reloaded from the request
//! log after a restart, and shared across instances through Redis.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::db::Postgres;
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_http::MockUsage;
use support::mock_openai::MockOpenAi;
use support::redis::RedisServer;

/// 150 tokens a request; on gpt-4o-mini (input 0.15, output 0.60 USD per
/// million) 100 x 0.15 + 50 x 0.60 = 45 micro-dollars.
const USAGE: MockUsage = MockUsage {
    input: 100,
    cached_read: 0,
    cache_write_5m: 0,
    cache_write_1h: 0,
    output: 50,
    reasoning: 0,
};

/// Spend is counted when a request ends, right after its answer went out;
/// a short pause keeps the next request from racing that.
const SETTLE: Duration = Duration::from_millis(150);

async fn vendor() -> MockOpenAi {
    let mock = MockOpenAi::start("vendor").await;
    mock.set_usage(Some(USAGE));
    mock
}

fn config(mock: &MockOpenAi) -> String {
    provider(
        "vendor",
        &mock.base_url(),
        &["sk-vendor-000000000001"],
        "models = [\"gpt-4o-mini\"]",
    )
}

async fn create(gw: &Gateway, body: Value) -> (String, i64) {
    let (secret, key) = gw.create_key(body).await;
    (secret, key["id"].as_i64().expect("id"))
}

/// One chat completion: status, Retry-After, body.
async fn chat(gw: &Gateway, secret: &str) -> (u16, Option<String>, Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(secret)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("chat");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r.json().await.unwrap_or(Value::Null);
    tokio::time::sleep(SETTLE).await;
    (status, retry, body)
}

/// Requests until the first refusal; returns how many were answered and
/// the refusal.
async fn until_refused(gw: &Gateway, secret: &str, max: usize) -> (usize, Option<String>, Value) {
    for n in 0..max {
        let (s, retry, body) = chat(gw, secret).await;
        if s != 200 {
            assert_eq!(s, 429, "{body}");
            return (n, retry, body);
        }
    }
    panic!("no refusal within {max} requests");
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn budgets_trip_at_the_right_request_per_period_and_survive_a_restart() {
    let mock = vendor().await;
    let gw = Gateway::start(&config(&mock)).await;

    // 400 tokens a day: 150, 300, 450 -> the 4th request is refused.
    let (daily, daily_id) = create(
        &gw,
        json!({"name": "daily", "budgets": [{"period": "day", "tokens": 400}]}),
    )
    .await;
    let (n, retry, body) = until_refused(&gw, &daily, 10).await;
    assert_eq!(n, 3, "{body}");
    assert_eq!(
        message(&body),
        "daily token budget of 400 tokens reached for this key"
    );
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=86_400).contains(&retry), "{retry}");

    // In the caller's format: Anthropic's error shape.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", &daily)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("messages");
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");

    // $0.0001 a month at 45 micro-dollars a request: 45, 90, 135 -> the 4th.
    let (monthly, _) = create(
        &gw,
        json!({"name": "monthly", "budgets": [{"period": "month", "cost_usd": 0.0001}]}),
    )
    .await;
    let (n, retry, body) = until_refused(&gw, &monthly, 10).await;
    assert_eq!(n, 3, "{body}");
    assert_eq!(
        message(&body),
        "monthly cost budget of $0.0001 reached for this key"
    );
    assert!(retry.is_some());

    // 150 tokens in total: one request, then refused for good (no
    // Retry-After: a total budget does not reset).
    let (total, _) = create(
        &gw,
        json!({"name": "total", "budgets": [{"period": "total", "tokens": 150}]}),
    )
    .await;
    let (n, retry, body) = until_refused(&gw, &total, 10).await;
    assert_eq!(n, 1, "{body}");
    assert_eq!(
        message(&body),
        "total token budget of 150 tokens reached for this key"
    );
    assert_eq!(retry, None);

    // Keys without budgets and the master token are not affected.
    let (free, _) = create(&gw, json!({"name": "free"})).await;
    assert_eq!(chat(&gw, &free).await.0, 200);
    assert_eq!(chat(&gw, TOKEN).await.0, 200);

    // Bad budgets are refused with the field named.
    let r = reqwest::Client::new()
        .post(gw.url("/api/keys"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "bad", "budgets": [{"period": "day"}]}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap_or_default().contains("budgets"));

    // After a restart the day's spend comes back from the request log.
    let gw = gw.restart().await;
    let (s, _, body) = chat(&gw, &daily).await;
    assert_eq!(s, 429, "spend forgotten after restart: {body}");
    assert_eq!(chat(&gw, &total).await.0, 429);

    // Raising the budget lets the key through again.
    let r = reqwest::Client::new()
        .patch(gw.url(&format!("/api/keys/{daily_id}")))
        .bearer_auth(TOKEN)
        .json(&json!({"budgets": [{"period": "day", "tokens": 1000}]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 200);
    assert_eq!(chat(&gw, &daily).await.0, 200);

    // Per-key usage and cost in /api/stats.
    let stats: Value = reqwest::Client::new()
        .get(gw.url("/api/stats?group_by=key"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let rows = stats["data"].as_array().cloned().unwrap_or_default();
    let of = |name: &str| {
        rows.iter()
            .find(|r| r["group"].as_str().is_some_and(|g| g.contains(name)))
            .cloned()
            .unwrap_or_else(|| panic!("no row for {name}: {stats}"))
    };
    // 3 answered + 2 refused (OpenAI and Anthropic formats) + 1 after the
    // restart + 1 after the raise; only the answered ones cost.
    let monthly_row = of(" monthly ");
    assert_eq!(monthly_row["cost_micros"], 3 * 45, "{stats}");
    assert_eq!(monthly_row["prompt_tokens"], 300, "{stats}");
    let daily_row = of(" daily ");
    assert_eq!(daily_row["cost_micros"], 4 * 45, "{stats}");
}

/// Two instances on one database and one real redis-server: a daily budget
/// of 400 tokens trips at the 4th request whichever instance served the
/// first three (without Redis, each would count only its own).
#[tokio::test]
async fn budgets_trip_at_the_right_request_across_instances() {
    let db = Postgres::start().await;
    let redis = RedisServer::start().await;
    let mock = vendor().await;
    let toml = config(&mock);
    let url = redis.url();
    let start = |name: &'static str| {
        let env = [
            ("AUTH_TOKEN", TOKEN.to_string()),
            ("DATABASE_TYPE", "postgres".to_string()),
            ("DATABASE_URL", db.url()),
            ("INSTANCE_NAME", name.to_string()),
            ("REDIS_ENABLED", "true".to_string()),
            ("REDIS_URL", url.clone()),
        ];
        let toml = toml.clone();
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Gateway::start_with(&toml, &env).await
        }
    };
    let a = start("gw-a").await;
    let b = start("gw-b").await;
    let (secret, _) = create(
        &a,
        json!({"name": "shared", "budgets": [{"period": "day", "tokens": 400}]}),
    )
    .await;
    // B loads the key from the shared database within its poll interval.
    let deadline = Instant::now() + Duration::from_secs(10);
    while reqwest::Client::new()
        .get(b.url("/v1/models"))
        .bearer_auth(&secret)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "B never learned the key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A, B, A: 450 tokens spent; B refuses the 4th.
    for (i, gw) in [&a, &b, &a].into_iter().enumerate() {
        let (s, _, body) = chat(gw, &secret).await;
        assert_eq!(s, 200, "request {}: {body}", i + 1);
    }
    let (s, _, body) = chat(&b, &secret).await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(
        message(&body),
        "daily token budget of 400 tokens reached for this key"
    );
    let (s, _, _) = chat(&a, &secret).await;
    assert_eq!(s, 429);
}

/// Redis killed mid-test: requests still succeed (no Redis wait on the
/// request path beyond its bound), and the budget still trips at the right
/// request from this instance's own count.
#[tokio::test]
async fn redis_down_falls_back_to_this_instances_spend() {
    let mut redis = RedisServer::start().await;
    let mock = vendor().await;
    let url = redis.url();
    let gw = Gateway::start_with(
        &config(&mock),
        &[
            ("AUTH_TOKEN", TOKEN),
            ("REDIS_ENABLED", "true"),
            ("REDIS_URL", url.as_str()),
        ],
    )
    .await;
    let (secret, _) = create(
        &gw,
        json!({"name": "outage", "budgets": [{"period": "day", "tokens": 400}]}),
    )
    .await;
    assert_eq!(chat(&gw, &secret).await.0, 200);
    redis.stop();
    for _ in 0..2 {
        let started = Instant::now();
        let (s, _, body) = chat(&gw, &secret).await;
        assert_eq!(s, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let (s, _, body) = chat(&gw, &secret).await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(
        message(&body),
        "daily token budget of 400 tokens reached for this key"
    );
}
