//! Several gateway instances sharing health through a real redis-server.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::{MockOpenAi, Reply};
use support::redis::RedisServer;

fn hello() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn one_instance_finding_a_provider_unhealthy_protects_the_others() {
    let redis = RedisServer::start().await;
    let bad = MockOpenAi::start("bad").await;
    let good = MockOpenAi::start("good").await;
    bad.set_default(Reply::status(
        503,
        r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#,
    ));
    let toml = format!(
        "[health]\nenabled = false\nmax_errors = 2\nretry_secs = 3600\n{}{}",
        provider(
            "bad",
            &bad.base_url(),
            &["sk-b-000000000001"],
            "weight = 1000"
        ),
        provider(
            "good",
            &good.base_url(),
            &["sk-g-000000000001", "sk-g-000000000002"],
            "weight = 1"
        )
    );
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let one = Gateway::start_with(&toml, &env).await;
    let two = Gateway::start_with(&toml, &env).await;
    // No need to wait for the subscriptions: a late subscriber catches up
    // from the state stored in Redis.

    // Degraded providers keep only part of their weight, so it may take a
    // few requests for instance one to hit the failing provider twice.
    for _ in 0..100 {
        if bad.count() >= 2 {
            break;
        }
        assert_eq!(one.chat(&hello()).await.status(), 200);
    }
    assert_eq!(bad.count(), 2);
    let p = two
        .wait_provider("bad", Duration::from_secs(3), |p| p["state"] == "unhealthy")
        .await;
    assert!(p["next_trial_ms"].as_u64().is_some());
    for _ in 0..5 {
        assert_eq!(two.chat(&hello()).await.status(), 200);
    }
    assert_eq!(
        bad.count(),
        2,
        "instance two never tried the provider instance one found unhealthy"
    );
    assert!(
        two.wait_log("reported by a peer instance", Duration::from_secs(2))
            .await
    );

    // A key rate-limited on instance two cools on instance one too.
    good.push(Reply::Status {
        status: 429,
        headers: vec![("retry-after".into(), "60".into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
    });
    assert_eq!(two.chat(&hello()).await.status(), 200);
    let p = one
        .wait_provider("good", Duration::from_secs(3), |p| {
            p["keys"]
                .as_array()
                .is_some_and(|ks| ks.iter().any(|k| k["state"] == "cooling"))
        })
        .await;
    assert!(
        !p.to_string().contains("000000000001"),
        "no key material in the health document"
    );

    // A third instance starting later catches up from the stored state.
    let three = Gateway::start_with(&toml, &env).await;
    three
        .wait_provider("bad", Duration::from_secs(3), |p| p["state"] == "unhealthy")
        .await;
}

#[tokio::test]
async fn redis_down_never_stops_the_data_plane() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    redis.stop();
    let mock = MockOpenAi::start("a").await;
    mock.set_default(Reply::status(
        503,
        r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#,
    ));
    let good = MockOpenAi::start("b").await;
    let toml = format!(
        "[health]\nenabled = false\nmax_errors = 1\n{}{}",
        provider(
            "a",
            &mock.base_url(),
            &["sk-a-000000000001"],
            "weight = 1000"
        ),
        provider("b", &good.base_url(), &["sk-b-000000000001"], "weight = 1")
    );
    let gw = Gateway::start_with(
        &toml,
        &[
            ("AUTH_TOKEN", TOKEN),
            ("REDIS_ENABLED", "true"),
            ("REDIS_URL", &url),
        ],
    )
    .await;
    for _ in 0..20 {
        assert_eq!(gw.chat(&hello()).await.status(), 200);
    }
    assert!(
        gw.wait_log("redis unreachable", Duration::from_secs(5))
            .await,
        "{}",
        gw.logs()
    );
    assert_eq!(
        gw.logs().matches("redis unreachable").count(),
        1,
        "logged once (one shared connection), not per retry or per user"
    );
}

#[tokio::test]
async fn admin_changes_on_one_instance_reach_the_others_within_seconds() {
    let redis = RedisServer::start().await;
    let mock = MockOpenAi::start("shared").await;
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let one = Gateway::start_with("", &env).await;
    let two = Gateway::start_with("", &env).await;
    let created = reqwest::Client::new()
        .post(one.url("/api/providers"))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": "shared", "type": "openai", "base_url": mock.base_url(),
                      "api_keys": ["sk-shared-0000001"], "models": ["shared-model"]}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let started = Instant::now();
    while two.model_ids().await != ["shared-model"] {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "instance two did not converge within 2 s:\n{}",
            two.logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = two
        .chat(&json!({"model": "shared-model", "messages": []}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.requests()[0].header("authorization").as_deref(),
        Some("Bearer sk-shared-0000001")
    );

    // Instance two's own SQLite copy has it: it survives a restart even
    // without Redis.
    drop(redis);
    let two = two.restart().await;
    assert_eq!(two.model_ids().await, vec!["shared-model"]);
}

#[tokio::test]
async fn a_change_made_while_redis_is_down_reaches_the_others_when_it_returns() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let mock = MockOpenAi::start("late").await;
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let one = Gateway::start_with("", &env).await;
    let two = Gateway::start_with("", &env).await;
    redis.stop();

    // The write still commits on instance one and is live there.
    let created = reqwest::Client::new()
        .post(one.url("/api/providers"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "late", "type": "openai", "base_url": mock.base_url(), "models": ["late-model"]}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    assert_eq!(one.model_ids().await, vec!["late-model"]);
    assert!(
        two.model_ids().await.is_empty(),
        "no way to share it while Redis is down"
    );
    assert_eq!(
        two.chat(&json!({"model": "late-model", "messages": []}))
            .await
            .status(),
        404
    );

    // Redis returns: instance one publishes its pending change, two catches up.
    let _redis = RedisServer::start_on(port).await;
    let started = Instant::now();
    while two.model_ids().await != ["late-model"] {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no catch-up after Redis returned:\n{}",
            one.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        one.wait_log("redis unreachable", Duration::from_secs(1))
            .await
    );
}

/// `/api/stats?scope=cluster` sums every instance's requests (counters in
/// Redis); the default scope is the instance's own SQLite rows.
#[tokio::test]
async fn usage_statistics_have_cluster_wide_totals() {
    let redis = RedisServer::start().await;
    let mock = MockOpenAi::start("m").await;
    let toml = provider("m", &mock.base_url(), &["sk-m-000000000001"], "");
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let one = Gateway::start_with(&toml, &env).await;
    let two = Gateway::start_with(&toml, &env).await;
    for _ in 0..3 {
        assert_eq!(one.chat(&hello()).await.status(), 200);
    }
    for _ in 0..5 {
        assert_eq!(two.chat(&hello()).await.status(), 200);
    }
    // One error on instance two (a vendor 400 is relayed).
    mock.push(Reply::status(
        400,
        r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
    ));
    assert_eq!(two.chat(&hello()).await.status(), 400);
    let client = reqwest::Client::new();
    let stats = |gw: &Gateway, q: &str| {
        let req = client
            .get(gw.url(&format!("/api/stats?{q}")))
            .bearer_auth(TOKEN);
        async move {
            let r = req.send().await.expect("stats");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let cluster = loop {
        let (status, body) = stats(&one, "scope=cluster&group_by=provider").await;
        assert_eq!(status, 200, "{body}");
        if body["data"][0]["requests"] == 9 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "cluster totals never reached 9: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cluster["scope"], "cluster");
    assert_eq!(cluster["instances"], 2, "{cluster}");
    let row = &cluster["data"][0];
    assert_eq!(row["group"], "m");
    assert_eq!(row["errors"], 1);
    assert!(row["completion_tokens"].as_u64().unwrap_or(0) > 0, "{row}");
    assert!(row["avg_latency_ms"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
    assert!(
        row["p95_latency_ms"].is_null(),
        "percentiles stay per instance"
    );
    // The instance's own view: 3 on one, 6 on two (each from its SQLite
    // rows, which the writer commits right after feeding the counters).
    for (gw, q, want) in [(&one, "group_by=provider", 3), (&two, "", 6)] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, own) = stats(gw, q).await;
            assert_eq!(own["scope"], "instance");
            if own["data"][0]["requests"] == want {
                break;
            }
            assert!(Instant::now() < deadline, "expected {want}: {own}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (status, body) = stats(&one, "scope=galaxy").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn cluster_scope_without_redis_says_what_it_needs() {
    let gw = Gateway::start("").await;
    let r = reqwest::Client::new()
        .get(gw.url("/api/stats?scope=cluster"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("REDIS_ENABLED")),
        "{body}"
    );
}

/// Redis killed and restarted without its data: the shared version counter
/// starts again at 1, which instances that had seen higher versions used to
/// ignore forever. Changes keep flowing, and an instance that joins after
/// the restart still finds the shared configuration.
#[tokio::test]
async fn changes_keep_flowing_after_redis_restarts_empty() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let first = MockOpenAi::start("first").await;
    let second = MockOpenAi::start("second").await;
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let one = Gateway::start_with("", &env).await;
    let two = Gateway::start_with("", &env).await;
    let client = reqwest::Client::new();
    let create = |gw: &Gateway, name: &str, base: String| {
        let req = client
            .post(gw.url("/api/providers"))
            .bearer_auth(TOKEN)
            .json(&json!({"name": name, "type": "openai", "base_url": base,
                          "api_keys": ["sk-restart-000001"], "models": [format!("{name}-model")]}));
        async move { req.send().await.expect("create").status() }
    };
    assert_eq!(create(&one, "first", first.base_url()).await, 201);
    wait_models(&two, &["first-model"]).await;

    // kill -9, then an empty Redis on the same port.
    redis.stop();
    let _redis = RedisServer::start_on(port).await;

    assert_eq!(create(&one, "second", second.base_url()).await, 201);
    wait_models(&two, &["first-model", "second-model"]).await;
    let r = two
        .chat(&json!({"model": "second-model", "messages": []}))
        .await;
    assert_eq!(r.status(), 200);

    // A third instance with an empty database joins after the restart.
    let three = Gateway::start_with("", &env).await;
    wait_models(&three, &["first-model", "second-model"]).await;
}

/// Poll `GET /v1/models` until it lists exactly `want` (sorted), with a
/// deadline that covers the sync task's reconnect backoff.
async fn wait_models(gw: &Gateway, want: &[&str]) {
    let started = Instant::now();
    loop {
        let mut ids = gw.model_ids().await;
        ids.sort();
        if ids == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "models {ids:?}, want {want:?}:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Subscribers on `channel`, asked of Redis itself.
async fn subscribers(url: &str, channel: &str) -> i64 {
    let Ok(client) = redis::Client::open(url) else {
        return -1;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return -1;
    };
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    counts.first().map_or(-1, |(_, n)| *n)
}

async fn wait_subscribers(url: &str, want: i64) {
    let started = Instant::now();
    for channel in ["llm-orchestrator:health", "llm-orchestrator:config"] {
        while subscribers(url, channel).await != want {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{channel}: {} subscribers, want {want}",
                subscribers(url, channel).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The one shared connection subscribes again by itself after Redis
/// restarts, so health found afterwards still travels by pub/sub (health
/// has no poll to fall back on).
#[tokio::test]
async fn health_keeps_flowing_by_pubsub_after_redis_restarts() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let bad = MockOpenAi::start("bad").await;
    let good = MockOpenAi::start("good").await;
    bad.set_default(Reply::status(
        503,
        r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#,
    ));
    let toml = format!(
        "[health]\nenabled = false\nmax_errors = 2\nretry_secs = 3600\n{}{}",
        provider(
            "bad",
            &bad.base_url(),
            &["sk-b-000000000001"],
            "weight = 1000"
        ),
        provider(
            "good",
            &good.base_url(),
            &["sk-g-000000000001"],
            "weight = 1"
        )
    );
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let one = Gateway::start_with(&toml, &env).await;
    let two = Gateway::start_with(&toml, &env).await;
    wait_subscribers(&url, 2).await;

    redis.stop();
    let _redis = RedisServer::start_on(port).await;
    // Both instances are subscribed again on the new, empty server: what
    // instance one finds now reaches two as a message, not a catch-up.
    wait_subscribers(&url, 2).await;
    for _ in 0..100 {
        if bad.count() >= 2 {
            break;
        }
        assert_eq!(one.chat(&hello()).await.status(), 200);
    }
    assert_eq!(bad.count(), 2);
    two.wait_provider("bad", Duration::from_secs(3), |p| p["state"] == "unhealthy")
        .await;
    assert!(
        one.wait_log("redis reachable again", Duration::from_secs(5))
            .await,
        "{}",
        one.logs()
    );
}

/// `rediss://`: instances share configuration over TLS, verifying the
/// server's certificate against the trust store (here `SSL_CERT_FILE`
/// names the test CA, as an operator would for a private CA).
#[tokio::test]
async fn config_sync_works_over_rediss_with_a_verified_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start_tls(dir.path()).await;
    let url = redis.url();
    assert!(url.starts_with("rediss://"));
    let ca = dir.path().join("ca.pem").to_string_lossy().into_owned();
    let mock = MockOpenAi::start("tls").await;
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
        ("SSL_CERT_FILE", ca.as_str()),
    ];
    let one = Gateway::start_with("", &env).await;
    let two = Gateway::start_with("", &env).await;
    let created = reqwest::Client::new()
        .post(one.url("/api/providers"))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": "tls", "type": "openai", "base_url": mock.base_url(),
                      "api_keys": ["sk-tls-00000001"], "models": ["tls-model"]}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    wait_models(&two, &["tls-model"]).await;
    assert!(!two.logs().contains("redis unreachable"), "{}", two.logs());

    // Without the CA in the trust store the certificate is refused: the
    // connection is really verified, not just encrypted.
    let untrusted = Gateway::start_with(
        "",
        &[
            ("AUTH_TOKEN", TOKEN),
            ("REDIS_ENABLED", "true"),
            ("REDIS_URL", url.as_str()),
        ],
    )
    .await;
    assert!(
        untrusted
            .wait_log("redis unreachable", Duration::from_secs(10))
            .await,
        "{}",
        untrusted.logs()
    );
    assert!(untrusted.model_ids().await.is_empty());
}
