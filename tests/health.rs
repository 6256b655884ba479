//! Health and resilience, as chaos scenarios: scripted faults on mock
//! vendors, the client outcome, the states the health endpoint shows, and
//! recovery once the fault clears.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::{MockOpenAi, Reply};

fn hello() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
}

fn down() -> Reply {
    Reply::status(
        503,
        r#"{"error":{"message":"unavailable","type":"server_error","param":null,"code":null}}"#,
    )
}

/// Passive health only (no active checks), fast retry and recovery.
const FAST_HEALTH: &str =
    "[health]\nenabled = false\nmax_errors = 3\nretry_secs = 1.0\nrecover_successes = 2\n";

async fn health(gw: &Gateway) -> Value {
    let r = reqwest::Client::new()
        .get(gw.url("/api/providers/health"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("health endpoint");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

#[tokio::test]
async fn failing_provider_goes_unhealthy_stops_being_chosen_and_recovers() {
    let flaky = MockOpenAi::start("flaky").await;
    let steady = MockOpenAi::start("steady").await;
    flaky.set_default(down());
    let toml = format!(
        "{FAST_HEALTH}{}{}",
        provider(
            "flaky",
            &flaky.base_url(),
            &["sk-f-000000000001"],
            "weight = 1000"
        ),
        provider(
            "steady",
            &steady.base_url(),
            &["sk-s-000000000001"],
            "weight = 1"
        )
    );
    let gw = Gateway::start(&toml).await;
    // While degraded the provider keeps half its weight, so how many requests
    // it takes to reach max_errors varies; every one of them succeeds.
    for _ in 0..200 {
        if flaky.count() >= 3 {
            break;
        }
        assert_eq!(
            gw.chat(&hello()).await.status(),
            200,
            "clients never see the faulty provider"
        );
    }
    for _ in 0..10 {
        assert_eq!(gw.chat(&hello()).await.status(), 200);
    }
    assert_eq!(
        flaky.count(),
        3,
        "after max_errors = 3 the provider is no longer chosen"
    );
    let p = gw.provider_health("flaky").await;
    assert_eq!(p["state"], "unhealthy");
    assert_eq!(p["consecutive_errors"], 3);
    assert_eq!(p["last_error"]["status"], 503);
    assert!(p["next_trial_ms"].as_u64().is_some());
    assert_eq!(gw.provider_health("steady").await["state"], "healthy");

    // The fault clears; after retry_secs one trial request goes through,
    // then recover_successes = 2 successes make it healthy again.
    flaky.set_default(Reply::Complete);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.provider_health("flaky").await["state"] != "healthy" {
        assert!(Instant::now() < deadline, "no recovery");
        assert_eq!(gw.chat(&hello()).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = gw.provider_health("flaky").await;
    assert_eq!(
        p["transitions"], 4,
        "healthy->degraded->unhealthy->degraded->healthy: {p}"
    );
    assert!(p["last_success_ms"].as_u64().is_some());
    assert!(gw.logs().matches("provider health changed").count() >= 4);
}

#[tokio::test]
async fn an_unhealthy_provider_gets_exactly_one_trial_per_period() {
    let dead = MockOpenAi::start("dead").await;
    dead.set_default(down());
    let toml = format!(
        "[health]\nenabled = false\nmax_errors = 1\nretry_secs = 3600\n{}",
        provider("dead", &dead.base_url(), &["sk-d-000000000001"], "")
    );
    let gw = Gateway::start(&toml).await;
    assert_eq!(
        gw.chat(&hello()).await.status(),
        503,
        "the vendor's own error"
    );
    for _ in 0..5 {
        let r = gw.chat(&hello()).await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "no_healthy_provider", "{body}");
    }
    assert_eq!(
        dead.count(),
        1,
        "no traffic to an unhealthy provider before its trial is due"
    );
}

#[tokio::test]
async fn client_errors_never_count_against_a_provider() {
    let mock = MockOpenAi::start("a").await;
    mock.set_default(Reply::status(
        400,
        r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
    ));
    let gw = Gateway::start(&format!(
        "{FAST_HEALTH}{}",
        provider("a", &mock.base_url(), &["sk-a-000000000001"], "")
    ))
    .await;
    for _ in 0..6 {
        assert_eq!(gw.chat(&hello()).await.status(), 400);
    }
    let p = gw.provider_health("a").await;
    assert_eq!(p["state"], "healthy");
    assert_eq!(p["consecutive_errors"], 0);
    assert_eq!(mock.count(), 6);
}

#[tokio::test]
async fn rate_limited_key_shows_as_cooling_and_is_never_used_while_cooling() {
    let mock = MockOpenAi::start("a").await;
    mock.push(Reply::Status {
        status: 429,
        headers: vec![("retry-after".into(), "30".into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
    });
    let gw = Gateway::start(&format!(
        "{FAST_HEALTH}{}",
        provider(
            "a",
            &mock.base_url(),
            &["sk-one-0000000001", "sk-two-0000000002"],
            ""
        )
    ))
    .await;
    assert_eq!(gw.chat(&hello()).await.status(), 200);
    let limited = mock.requests()[0].header("authorization").expect("auth");
    let p = gw.provider_health("a").await;
    let cooling: Vec<&Value> = p["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["state"] == "cooling")
        .collect();
    assert_eq!(cooling.len(), 1, "{p}");
    let remaining = cooling[0]["cooldown_remaining_secs"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        remaining > 20.0 && remaining <= 30.0,
        "Retry-After honoured: {remaining}"
    );
    assert_eq!(
        p["state"], "healthy",
        "a 429 is about the key, not the provider"
    );
    for _ in 0..8 {
        assert_eq!(gw.chat(&hello()).await.status(), 200);
    }
    assert!(mock.requests()[1..]
        .iter()
        .all(|r| r.header("authorization").as_deref() != Some(&limited)));
    // The key material never appears in the health document.
    assert!(!health(&gw).await.to_string().contains("0000000001"));
}

#[tokio::test]
async fn rejected_key_is_disabled_until_an_active_recheck_accepts_it() {
    let mock = MockOpenAi::start("a").await;
    mock.push(Reply::status(401, r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#));
    let toml = format!(
        "[health]\nenabled = true\ninterval_secs = 0.3\n[routing]\nauth_failure_cooldown_secs = 3600\n{}",
        provider("a", &mock.base_url(), &["sk-revoked-0000001", "sk-spare-00000002"], "")
    );
    let gw = Gateway::start(&toml).await;
    assert_eq!(
        gw.chat(&hello()).await.status(),
        200,
        "served by the second key"
    );
    let p = gw.provider_health("a").await;
    let shown_disabled = p["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .any(|k| k["state"] == "disabled");
    // An active pass (every 0.3 s) may already have re-validated the key
    // between the request and this read; then the log says so.
    assert!(
        shown_disabled || gw.logs().contains("key accepted again"),
        "{p}"
    );
    // The vendor accepts the key again (the mock's model list answers 200):
    // the next active pass re-validates it, long before the cooldown ends.
    gw.wait_provider("a", Duration::from_secs(10), |p| {
        p["keys"]
            .as_array()
            .is_some_and(|ks| ks.iter().all(|k| k["state"] == "available"))
    })
    .await;
    let probes: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.route() == "/v1/models")
        .collect();
    assert!(!probes.is_empty());
    assert!(
        probes.iter().all(|r| r.method == "GET"),
        "the default probe spends no tokens"
    );
    assert!(
        gw.wait_log("key accepted again", Duration::from_secs(5))
            .await
    );
}

#[tokio::test]
async fn active_checks_find_a_dead_provider_without_any_traffic() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}/v1", closed.local_addr().expect("addr"));
    drop(closed);
    let toml = format!(
        "[health]\nenabled = true\ninterval_secs = 0.2\nmax_errors = 2\nretry_secs = 3600\n{}",
        provider("dead", &dead_url, &["sk-d-000000000001"], "")
    );
    let gw = Gateway::start(&toml).await;
    let p = gw
        .wait_provider("dead", Duration::from_secs(10), |p| {
            p["state"] == "unhealthy"
        })
        .await;
    assert!(
        p["last_error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("active check"),
        "{p}"
    );
    let r = gw.chat(&hello()).await;
    assert_eq!(r.status(), 503);
}

#[tokio::test]
async fn hang_reset_and_mid_stream_death_all_count_as_provider_errors() {
    let a = MockOpenAi::start("a").await;
    let toml = format!(
        "{FAST_HEALTH}{}",
        provider(
            "a",
            &a.base_url(),
            &["sk-a-000000000001"],
            "[providers.timeouts]\nfirst_byte_secs = 0.3"
        )
    );
    let gw = Gateway::start(&toml).await;
    a.push(Reply::Hang);
    assert_eq!(gw.chat(&hello()).await.status(), 504);
    let p = gw.provider_health("a").await;
    assert_eq!(
        (p["state"].as_str(), p["consecutive_errors"].as_u64()),
        (Some("degraded"), Some(1))
    );
    assert!(
        p["last_error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("timeout"),
        "{p}"
    );

    a.push(Reply::Reset);
    assert_eq!(gw.chat(&hello()).await.status(), 502);
    assert_eq!(gw.provider_health("a").await["consecutive_errors"], 2);

    a.push(Reply::StreamThenDrop { events: 2 });
    let r = gw
        .chat(&json!({"model": "m", "stream": true, "messages": []}))
        .await;
    assert!(r.text().await.expect("body").contains("stream_interrupted"));
    let p = gw.provider_health("a").await;
    assert_eq!(p["state"], "unhealthy", "third consecutive error: {p}");
    assert!(
        p["last_error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("mid-stream"),
        "{p}"
    );
}

#[tokio::test]
async fn soak_flapping_faults_never_reach_clients_while_one_provider_is_healthy() {
    let flappy = MockOpenAi::start("flappy").await;
    let hangy = MockOpenAi::start("hangy").await;
    let solid = MockOpenAi::start("solid").await;
    let toml = format!(
        "[health]\nenabled = false\nmax_errors = 2\nretry_secs = 0.3\nrecover_successes = 2\n{}{}{}",
        provider("flappy", &flappy.base_url(), &["sk-f-000000000001"], "weight = 5"),
        provider("hangy", &hangy.base_url(), &["sk-h-000000000001"], "weight = 5\n[providers.timeouts]\nfirst_byte_secs = 0.2"),
        provider("solid", &solid.base_url(), &["sk-s-000000000001"], "weight = 1")
    );
    let gw = Gateway::start(&toml).await;

    // Faults flip on and off while the load runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (flappy, hangy, stop) = (flappy.clone(), hangy.clone(), stop.clone());
        tokio::spawn(async move {
            let mut on = true;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                flappy.set_default(if on { down() } else { Reply::Complete });
                hangy.set_default(if on { Reply::Hang } else { Reply::Reset });
                on = !on;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = gw.url("/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut failures = 0;
            for i in 0..30 {
                let body = json!({"model": "m", "stream": i % 3 == 0, "messages": [{"role": "user", "content": "Hi"}]});
                let r = client.post(&url).bearer_auth(TOKEN).json(&body).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let text = r.text().await.unwrap_or_default();
                        if text.contains("\"error\"") {
                            failures += 1;
                        }
                    }
                    _ => failures += 1,
                }
            }
            failures
        }));
    }
    let mut failures = 0;
    for t in tasks {
        failures += t.await.expect("task");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.await.expect("flipper");
    assert_eq!(
        failures, 0,
        "client-visible failures while `solid` was healthy"
    );
    assert!(
        flappy.count() + hangy.count() > 0,
        "the faulty providers were exercised"
    );
    assert!(solid.count() > 0);
}

#[tokio::test]
async fn completion_probe_sends_a_one_token_request_in_the_vendors_format() {
    let mock = MockOpenAi::start("a").await;
    let toml = format!(
        "[health]\nenabled = true\ninterval_secs = 0.2\nprobe = \"completion\"\n{}",
        provider(
            "a",
            &mock.base_url(),
            &["sk-a-000000000001"],
            "models = [\"gpt-4o-mini\"]"
        )
    );
    let gw = Gateway::start(&toml).await;
    assert!(
        mock.wait_for_count(1, Duration::from_secs(10)).await,
        "no probe arrived"
    );
    let probe = &mock.requests()[0];
    assert_eq!(
        (probe.method.as_str(), probe.route()),
        ("POST", "/v1/chat/completions")
    );
    let body = probe.json();
    assert_eq!(body["max_tokens"], 1);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        probe.header("authorization").as_deref(),
        Some("Bearer sk-a-000000000001")
    );
    let p = gw
        .wait_provider("a", Duration::from_secs(5), |p| {
            p["last_success_ms"].is_u64()
        })
        .await;
    assert_eq!(p["state"], "healthy");
}
