//! Client-key limits (issue #17): rpm, tpm and max_concurrent, enforced on
//! every client API with a 429 in the caller's format, exact across
//! instances sharing one real redis-server, and still serving (per
//! instance) when Redis goes away.

mod support;

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_http::Reply;
use support::mock_openai::MockOpenAi;
use support::redis::RedisServer;

fn config(mock: &MockOpenAi) -> String {
    provider(
        "vendor",
        &mock.base_url(),
        &["sk-vendor-000000000001"],
        "models = [\"gpt-4o-mini\"]",
    )
}

/// A real redis-server, the vendor mock, and `n` gateways sharing both.
struct OnRedis {
    redis: RedisServer,
    mock: MockOpenAi,
    gws: Vec<Gateway>,
}

async fn on_redis(n: usize) -> OnRedis {
    let redis = RedisServer::start().await;
    let mock = MockOpenAi::start("vendor").await;
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let mut gws = Vec::new();
    for _ in 0..n {
        gws.push(Gateway::start_with(&config(&mock), &env).await);
    }
    OnRedis { redis, mock, gws }
}

async fn redis_conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url().as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

fn hello() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
}

/// POST `body` to `path` with `secret` as a bearer token: status, the
/// Retry-After header, the body.
async fn post(gw: &Gateway, path: &str, secret: &str, body: &Value) -> (u16, Option<u64>, Value) {
    post_with(&reqwest::Client::new(), gw, path, secret, body).await
}

async fn post_with(
    client: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    secret: &str,
    body: &Value,
) -> (u16, Option<u64>, Value) {
    let r = client
        .post(gw.url(path))
        .bearer_auth(secret)
        .timeout(Duration::from_secs(30))
        .json(body)
        .send()
        .await
        .expect("reached the gateway");
    answer(r).await
}

async fn answer(r: reqwest::Response) -> (u16, Option<u64>, Value) {
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, retry, body)
}

async fn create_key(gw: &Gateway, body: Value) -> String {
    gw.create_key(body).await.0
}

async fn metrics(gw: &Gateway) -> String {
    reqwest::Client::new()
        .get(gw.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Fire `n` chats at once at each gateway; the statuses, and every 429's
/// Retry-After and message. One client for the burst: building a client
/// per request (it loads the system's root certificates) takes long
/// enough in a debug build that, with hundreds queued on the test's one
/// thread, the first connections sat past the gateway's 10 s head timeout
/// before their requests were written, and were closed unanswered.
async fn burst(gws: &[&Gateway], secret: &str, n: usize) -> Vec<(u16, Option<u64>, Value)> {
    let body = hello();
    let client = reqwest::Client::new();
    let calls = gws
        .iter()
        .flat_map(|gw| (0..n).map(move |_| *gw))
        .map(|gw| post_with(&client, gw, "/v1/chat/completions", secret, &body));
    join_all(calls).await
}

fn count(results: &[(u16, Option<u64>, Value)], status: u16) -> usize {
    results.iter().filter(|r| r.0 == status).count()
}

/// Wait until a key created on one instance is in `gw`'s table (it lists
/// it): the admin API does not spend the key's requests.
async fn wait_key(gw: &Gateway, n: usize) {
    for _ in 0..100 {
        let v: Value = reqwest::Client::new()
            .get(gw.url("/api/keys"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin")
            .json()
            .await
            .expect("json");
        if v["data"].as_array().map_or(0, Vec::len) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the key never reached the other instance");
}

#[tokio::test]
async fn rpm_is_exact_on_one_instance_and_across_three_on_one_redis() {
    let s = on_redis(3).await;
    let (one, two, three) = (&s.gws[0], &s.gws[1], &s.gws[2]);

    // One instance: 20 at once, exactly 6 through.
    let secret = create_key(one, json!({"name": "solo", "rpm": 6})).await;
    let results = burst(&[one], &secret, 20).await;
    assert_eq!(count(&results, 200), 6, "{results:?}");
    assert_eq!(count(&results, 429), 14, "{results:?}");
    let refused = results.iter().find(|r| r.0 == 429).expect("a 429");
    assert!(
        refused.1.is_some_and(|s| (1..=61).contains(&s)),
        "Retry-After in whole seconds: {refused:?}"
    );
    assert_eq!(
        refused.2["error"]["type"], "rate_limit_error",
        "{refused:?}"
    );
    let message = refused.2["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("rpm limit of 6 reached for this key"),
        "{message}"
    );

    // The key reached the other instances through Redis (each has its own
    // SQLite copy); 10 at each instance at once: still exactly 6 in all.
    let shared = create_key(one, json!({"name": "shared", "rpm": 6})).await;
    wait_key(two, 2).await;
    wait_key(three, 2).await;
    let results = burst(&[one, two, three], &shared, 10).await;
    assert_eq!(count(&results, 200), 6, "{results:?}");
    assert_eq!(count(&results, 429), 24, "{results:?}");

    // Keys without limits and the master token are not limited.
    let free = create_key(one, json!({"name": "free"})).await;
    assert_eq!(count(&burst(&[one], &free, 10).await, 200), 10);
    assert_eq!(count(&burst(&[two], TOKEN, 10).await, 200), 10);

    let m = metrics(one).await;
    assert!(
        metric(&m, "llm_limited_requests_total{limit=\"rpm\"}").is_some_and(|v| v >= 14.0),
        "{m}"
    );
    assert_eq!(metric(&m, "llm_limit_fallback "), Some(0.0), "{m}");
}

#[tokio::test]
async fn tpm_reserves_the_estimate_and_settles_with_real_usage() {
    let s = on_redis(1).await;
    let (gw, mock) = (&s.gws[0], &s.mock);
    let body = hello();
    let est = serde_json::to_vec(&body).expect("json").len().div_ceil(4) as u64;

    // Reservations: 3 estimates fit, so of 10 at once exactly 3 pass.
    let secret = create_key(gw, json!({"name": "tpm", "tpm": 3 * est})).await;
    let results = burst(&[gw], &secret, 10).await;
    assert_eq!(count(&results, 200), 3, "{results:?}");
    let refused = results.iter().find(|r| r.0 == 429).expect("a 429");
    let message = refused.2["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(&format!("tpm limit of {} reached for this key", 3 * est)),
        "{message}"
    );

    // Charged: the vendor reports far more than the estimate, so the next
    // request no longer fits although two estimates would.
    let charged = create_key(gw, json!({"name": "charged", "tpm": 10 * est})).await;
    mock.push(Reply::status(
        200,
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
               "model": "gpt-4o-mini",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                            "logprobs": null, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 10 * est, "completion_tokens": 1,
                         "total_tokens": 10 * est + 1}})
        .to_string(),
    ));
    let (s, _, b) = post(gw, "/v1/chat/completions", &charged, &body).await;
    assert_eq!(s, 200, "{b}");
    let mut settled = false;
    for _ in 0..50 {
        let (s, _, _) = post(gw, "/v1/chat/completions", &charged, &body).await;
        if s == 429 {
            settled = true;
            break;
        }
        // Settling runs after the answer: give it a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(settled, "the real usage was charged");

    // Refunded: a failed request reports no usage, so its reservation is
    // given back and the next one fits a limit of one estimate.
    let refunded = create_key(gw, json!({"name": "refunded", "tpm": est})).await;
    mock.push(Reply::status(
        400,
        r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
    ));
    let (s, _, _) = post(gw, "/v1/chat/completions", &refunded, &body).await;
    assert_eq!(s, 400);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (s, _, _) = post(gw, "/v1/chat/completions", &refunded, &body).await;
        if s == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the failed request's reservation was refunded");
}

#[tokio::test]
async fn concurrency_is_limited_and_released_when_requests_end_or_clients_leave() {
    let s = on_redis(1).await;
    let (gw, mock) = (&s.gws[0], &s.mock);
    mock.set_default(Reply::Complete.after(Duration::from_millis(800)));
    let secret = create_key(gw, json!({"name": "two at once", "max_concurrent": 2})).await;

    let results = burst(&[gw], &secret, 5).await;
    assert_eq!(count(&results, 200), 2, "{results:?}");
    let refused = results.iter().find(|r| r.0 == 429).expect("a 429");
    assert_eq!(refused.1, Some(1), "{refused:?}");
    let message = refused.2["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("max_concurrent limit of 2 reached for this key"),
        "{message}"
    );
    // Both finished: both slots are free again.
    assert_eq!(count(&burst(&[gw], &secret, 2).await, 200), 2);

    // A client that hangs up releases its slot too.
    let one = create_key(gw, json!({"name": "one at once", "max_concurrent": 1})).await;
    mock.set_default(Reply::Complete.after(Duration::from_secs(5)));
    let gone = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&one)
        .timeout(Duration::from_millis(300))
        .json(&hello())
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    mock.set_default(Reply::Complete);
    let mut released = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if post(gw, "/v1/chat/completions", &one, &hello()).await.0 == 200 {
            released = true;
            break;
        }
    }
    assert!(released, "the slot came back after the client left");
}

#[tokio::test]
async fn every_client_api_gets_its_own_429_without_redis() {
    let mock = MockOpenAi::start("vendor").await;
    let gw = Gateway::start(&config(&mock)).await;
    let secret = create_key(&gw, json!({"name": "one a minute", "rpm": 1})).await;
    let (s, _, b) = post(&gw, "/v1/chat/completions", &secret, &hello()).await;
    assert_eq!(s, 200, "{b}");

    // OpenAI chat and Responses.
    for path in ["/v1/chat/completions", "/v1/responses"] {
        let body = if path == "/v1/responses" {
            json!({"model": "gpt-4o-mini", "input": "Hi"})
        } else {
            hello()
        };
        let (s, retry, b) = post(&gw, path, &secret, &body).await;
        assert_eq!(s, 429, "{path}: {b}");
        assert!(retry.is_some_and(|r| (1..=61).contains(&r)), "{path}");
        assert_eq!(b["error"]["type"], "rate_limit_error", "{path}: {b}");
        assert_eq!(b["error"]["code"], "rate_limit_exceeded", "{path}: {b}");
        let m = b["error"]["message"].as_str().unwrap_or("");
        assert!(m.starts_with("rpm limit of 1 reached"), "{path}: {m}");
    }

    // Anthropic, with its own key header.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", &secret)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("messages");
    let (s, retry, b) = answer(r).await;
    assert_eq!(s, 429, "{b}");
    assert!(retry.is_some(), "{b}");
    assert_eq!(b["type"], "error", "{b}");
    assert_eq!(b["error"]["type"], "rate_limit_error", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("rpm limit of 1 reached")),
        "{b}"
    );

    // Gemini-native, with its key header.
    let r = reqwest::Client::new()
        .post(gw.url("/v1beta/models/gpt-4o-mini:generateContent"))
        .header("x-goog-api-key", &secret)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}))
        .send()
        .await
        .expect("gemini");
    let (s, retry, b) = answer(r).await;
    assert_eq!(s, 429, "{b}");
    assert!(retry.is_some(), "{b}");
    assert_eq!(b["error"]["code"], 429, "{b}");
    assert_eq!(b["error"]["status"], "RESOURCE_EXHAUSTED", "{b}");

    // Token counting and model lists spend no limit (they use no vendor
    // tokens; the OpenAI-type provider's count is the gateway's estimate).
    for _ in 0..3 {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/messages/count_tokens"))
            .header("x-api-key", &secret)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "gpt-4o-mini",
                          "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .expect("count_tokens");
        let (s, _, b) = answer(r).await;
        assert_eq!(s, 200, "{b}");
        assert!(b["input_tokens"].as_u64().is_some_and(|n| n > 0), "{b}");
        let r = reqwest::Client::new()
            .get(gw.url("/v1/models"))
            .bearer_auth(&secret)
            .send()
            .await
            .expect("models");
        assert_eq!(r.status(), 200);
    }

    let m = metrics(&gw).await;
    assert_eq!(
        metric(&m, "llm_limited_requests_total{limit=\"rpm\"}"),
        Some(4.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "llm_limit_fallback "),
        Some(0.0),
        "no Redis is no outage: {m}"
    );
    assert!(
        !gw.logs().contains("client-key limits"),
        "no warning without Redis"
    );
    assert_eq!(mock.count(), 1, "refused requests never reach the vendor");
}

#[tokio::test]
async fn requests_are_served_when_redis_dies_with_a_per_instance_share() {
    let mut s = on_redis(2).await;
    let (gw, peer) = (&s.gws[0], &s.gws[1]);
    let secret = create_key(gw, json!({"name": "survivor", "rpm": 6})).await;
    wait_key(peer, 1).await;
    assert_eq!(count(&burst(&[gw], &secret, 2).await, 200), 2);

    // Both instances have beaten in Redis, and each has read the count of
    // two since (beats are 5 s apart).
    let mut conn = redis_conn(&s.redis).await;
    for _ in 0..100 {
        let n: usize = redis::cmd("HLEN")
            .arg("llm-orchestrator:limit-instances")
            .query_async(&mut conn)
            .await
            .expect("HLEN");
        if n == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(5500)).await;

    s.redis.stop();
    // Served by this instance alone, on its share: 6 / 2 instances.
    let results = burst(&[gw], &secret, 8).await;
    assert_eq!(count(&results, 200), 3, "{results:?}");
    assert_eq!(count(&results, 429), 5, "{results:?}");
    let results = burst(&[gw], &secret, 3).await;
    assert_eq!(count(&results, 429), 3, "{results:?}");
    let m = metrics(gw).await;
    assert_eq!(metric(&m, "llm_limit_fallback "), Some(1.0), "{m}");
    let logs = gw.logs();
    assert_eq!(
        logs.matches("client-key limits: redis is not answering")
            .count(),
        1,
        "one warning per outage: {logs}"
    );
    assert!(logs.contains("limit / 2"), "{logs}");
}

#[tokio::test]
async fn the_openai_and_anthropic_sdks_see_rate_limit_errors() {
    let mock = MockOpenAi::start("vendor").await;
    let gw = Gateway::start(&config(&mock)).await;
    let secret = create_key(&gw, json!({"name": "sdk", "rpm": 1})).await;
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(format!(
                "{}/tests/sdk/limits_sdk.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .args([gw.base.as_str(), &secret, "gpt-4o-mini"])
            .output(),
    )
    .await
    .expect("python finished in time")
    .expect("python3 runs (./scripts/bootstrap test installs the SDKs)");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}\n{}", gw.logs());
    for line in [
        "openai first ok",
        "openai rate limited ok",
        "anthropic rate limited ok",
    ] {
        assert!(output.contains(line), "{line}: {output}");
    }
}

/// Redis's count of script calls so far (admissions and settlements).
async fn script_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1))
        .filter_map(|v| v.split(',').next())
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// The requests counted in the key's RPM window in Redis.
async fn counted(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("llm-orchestrator:limit:*:rpm")
        .query_async(conn)
        .await
        .expect("KEYS");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let buckets: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(&keys[0])
        .query_async(conn)
        .await
        .expect("HGETALL");
    buckets.values().sum()
}

#[tokio::test]
async fn a_busy_key_takes_requests_ahead_and_gives_back_what_it_did_not_use() {
    let s = on_redis(2).await;
    let (one, two) = (&s.gws[0], &s.gws[1]);
    let secret = create_key(one, json!({"name": "busy", "rpm": 400})).await;
    wait_key(two, 1).await;
    let mut conn = redis_conn(&s.redis).await;

    // Far from the limit, one round trip admits many requests.
    let before = script_calls(&mut conn).await;
    let results = burst(&[one], &secret, 100).await;
    assert_eq!(count(&results, 200), 100, "{results:?}");
    let calls = script_calls(&mut conn).await - before;
    assert!(calls <= 40, "{calls} script calls for 100 requests");
    // What was taken and not used goes back within a second.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(counted(&mut conn).await, 100);

    // Up to the limit from both instances at once: never more than the
    // limit, and once the unused grants are back, exactly the limit.
    let results = burst(&[one, two], &secret, 200).await;
    let first = count(&results, 200);
    assert!(first <= 300, "{first} admitted, 300 were left");
    assert_eq!(count(&results, 429), 400 - first, "{results:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(counted(&mut conn).await, 100 + first as u64);
    let results = burst(&[one, two], &secret, 30).await;
    assert_eq!(
        first + count(&results, 200),
        300,
        "the rest of the minute's 400: {results:?}"
    );
    assert_eq!(counted(&mut conn).await, 400);
}
