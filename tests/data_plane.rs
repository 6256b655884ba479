//! The data plane end to end: the real gateway binary against mock OpenAI
//! vendors on loopback.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::{MockOpenAi, Reply};

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error body is JSON");
    assert!(
        body["error"]["message"].is_string(),
        "OpenAI error format: {body}"
    );
    (status, body)
}

#[tokio::test]
async fn health_needs_no_auth() {
    let gw = Gateway::start("").await;
    let r = reqwest::get(gw.url("/health")).await.expect("health");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["providers"], 0);
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_and_never_reaches_a_vendor() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start(&provider("a", &mock.base_url(), &["sk-a-000000000001"], "")).await;
    let client = reqwest::Client::new();
    let none = client
        .post(gw.url("/v1/chat/completions"))
        .json(&hello("m"))
        .send()
        .await
        .expect("send");
    let (status, body) = error_of(none).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let wrong = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("test-token-0123456780")
        .json(&hello("m"))
        .send()
        .await
        .expect("send");
    assert_eq!(error_of(wrong).await.0, 401);
    let models = client.get(gw.url("/v1/models")).send().await.expect("send");
    assert_eq!(error_of(models).await.0, 401);
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn non_streaming_chat_is_relayed_with_the_key_and_body_untouched() {
    let mock = MockOpenAi::start("alpha").await;
    let gw = Gateway::start(&provider(
        "alpha",
        &mock.base_url(),
        &["sk-alpha-0000000001"],
        "",
    ))
    .await;
    let req = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.3, "vendor_extension": {"x": [1, 2]}});
    let raw = serde_json::to_vec(&req).expect("encode");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-orchestrator-provider"], "alpha");
    assert_eq!(r.headers()["x-request-id"], "req_1");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello from alpha");
    assert_eq!(body["model"], "gpt-4o-mini");

    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Bearer sk-alpha-0000000001")
    );
    assert_eq!(seen.header("accept-encoding").as_deref(), Some("identity"));
    assert_eq!(seen.body, raw, "body must reach the vendor byte for byte");
}

#[tokio::test]
async fn streaming_relays_every_event_as_it_arrives_with_usage() {
    let mock = MockOpenAi::start("streamer").await;
    mock.set_stream_delay(Duration::from_millis(300));
    let gw = Gateway::start(&provider(
        "s",
        &mock.base_url(),
        &["sk-s-0000000000001"],
        "",
    ))
    .await;
    let mut r = gw
        .chat(
            &json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/event-stream"));
    let start = std::time::Instant::now();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = r.chunk().await.expect("stream chunk") {
        arrivals.push(start.elapsed());
        text.push_str(std::str::from_utf8(&chunk).expect("utf8"));
    }
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e.trim_start_matches("data: ")).expect("chunk json"))
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from streamer");
    let usage = &chunks.last().expect("usage chunk")["usage"];
    assert!(
        usage["total_tokens"].as_u64().unwrap_or(0) > 0,
        "usage chunk relayed: {usage}"
    );
    // Events 300 ms apart must reach the client spread out, not in one batch.
    assert!(
        arrivals.len() >= 4,
        "events arrived in {} reads",
        arrivals.len()
    );
    let spread = *arrivals.last().expect("some") - arrivals[0];
    assert!(
        spread >= Duration::from_millis(900),
        "events were batched: {arrivals:?}"
    );
}

#[tokio::test]
async fn models_lists_served_models_and_aliases() {
    let mock = MockOpenAi::start("a").await;
    let toml = format!(
        "[aliases]\nfast = \"gpt-4o-mini\"\n{}",
        provider(
            "a",
            &mock.base_url(),
            &["sk-a-000000000001"],
            "models = [\"gpt-4o-mini\", \"gpt-4o\", \"o3*\"]"
        )
    );
    let gw = Gateway::start(&toml).await;
    let r = reqwest::Client::new()
        .get(gw.url("/v1/models"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["gpt-4o", "gpt-4o-mini", "fast"]);
    assert!(body["data"]
        .as_array()
        .expect("data")
        .iter()
        .all(|m| m["object"] == "model"));
}

#[tokio::test]
async fn aliases_model_map_and_overrides_rewrite_the_upstream_body() {
    let mock = MockOpenAi::start("a").await;
    let toml = format!(
        r#"
[aliases]
fast = "gpt-4o-mini"
[overrides]
set = {{ max_tokens = 256 }}
default = {{ temperature = 0.1 }}
{}"#,
        provider(
            "a",
            &mock.base_url(),
            &["sk-a-000000000001"],
            "model_map = { \"gpt-4o-mini\" = \"vendor-mini-2024\" }\n[providers.overrides]\nset = { user = \"gateway\" }\ndrop = [\"seed\"]\n[providers.overrides.vendor]\ndrop = [\"logit_bias\"]"
        )
    );
    let gw = Gateway::start(&toml).await;
    let r = gw
        .chat(&json!({"model": "fast", "messages": [], "max_tokens": 9000, "logit_bias": {"1": 1}, "seed": 7, "top_p": 0.5}))
        .await;
    assert_eq!(r.status(), 200);
    let sent = mock.requests()[0].json();
    assert_eq!(sent["model"], "vendor-mini-2024");
    assert_eq!(sent["max_tokens"], 256);
    assert_eq!(sent["temperature"], 0.1);
    assert_eq!(sent["user"], "gateway");
    assert_eq!(sent["top_p"], 0.5);
    assert!(
        sent.get("logit_bias").is_none() && sent.get("seed").is_none(),
        "{sent}"
    );
}

#[tokio::test]
async fn weights_hold_statistically() {
    let heavy = MockOpenAi::start("heavy").await;
    let light = MockOpenAi::start("light").await;
    let toml = format!(
        "{}{}",
        provider(
            "heavy",
            &heavy.base_url(),
            &["sk-h-000000000001"],
            "weight = 3"
        ),
        provider(
            "light",
            &light.base_url(),
            &["sk-l-000000000001"],
            "weight = 1"
        )
    );
    let gw = Gateway::start(&toml).await;
    let total = 400;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = gw.url("/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..total / 8 {
                let r = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&hello("m"))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(r.status(), 200);
                r.bytes().await.expect("body");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let share = heavy.count() as f64 / total as f64;
    assert_eq!(heavy.count() + light.count(), total);
    // Expected 0.75; the binomial standard deviation at n=400 is ~0.022.
    assert!(
        (share - 0.75).abs() < 0.08,
        "heavy got {share:.3} of the traffic"
    );
}

#[tokio::test]
async fn fails_over_to_the_next_provider_on_5xx() {
    for status in [500u16, 502, 503, 504, 529] {
        let bad = MockOpenAi::start("bad").await;
        let good = MockOpenAi::start("good").await;
        bad.set_default(Reply::status(
            status,
            r#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#,
        ));
        let toml = format!(
            "{}{}",
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
        let gw = Gateway::start(&toml).await;
        for _ in 0..5 {
            let r = gw.chat(&hello("m")).await;
            assert_eq!(r.status(), 200, "status {status} must fail over");
            assert_eq!(r.headers()["x-llm-orchestrator-provider"], "good");
        }
        assert!(bad.count() >= 1);
        assert_eq!(good.count(), 5);
    }
}

#[tokio::test]
async fn multi_mib_body_fails_over_and_arrives_whole() {
    let bad = MockOpenAi::start("bad").await;
    let good = MockOpenAi::start("good").await;
    bad.set_default(Reply::status(
        503,
        r#"{"error":{"message":"unavailable","type":"server_error","param":null,"code":null}}"#,
    ));
    let toml = format!(
        "{}{}",
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
    let gw = Gateway::start(&toml).await;
    let long: String = (0..4 * 1024 * 1024 / 16)
        .map(|i| format!("{i:015} "))
        .collect();
    let req = json!({"model": "m", "messages": [{"role": "user", "content": long}]});
    let raw = serde_json::to_vec(&req).expect("encode");
    assert!(raw.len() > 4 * 1024 * 1024);
    // `bad` is drawn first with probability 1000/1001; repeat in the rare
    // case the weighted draw went straight to `good`.
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-llm-orchestrator-provider"], "good");
        if bad.count() > 0 {
            break;
        }
    }
    assert_eq!(
        bad.requests()[0].body.len(),
        raw.len(),
        "first provider got the full body"
    );
    assert_eq!(
        good.requests().last().map(|r| r.body.clone()),
        Some(raw),
        "second provider got the full body"
    );
}

#[tokio::test]
async fn rate_limited_key_cools_down_and_the_next_key_serves() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start(&provider(
        "a",
        &mock.base_url(),
        &["sk-first-00000001", "sk-second-0000002"],
        "",
    ))
    .await;
    let keys_seen = |m: &MockOpenAi| -> Vec<String> {
        m.requests()
            .iter()
            .filter_map(|r| r.header("authorization"))
            .collect()
    };
    mock.push(Reply::Status {
        status: 429,
        headers: vec![("retry-after".into(), "30".into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
    });
    let r = gw.chat(&hello("m")).await;
    assert_eq!(r.status(), 200);
    let seen = keys_seen(&mock);
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0], seen[1], "never the same key twice in one request");
    let limited = seen[0].clone();
    // For the next 30 s the limited key is skipped.
    for _ in 0..6 {
        assert_eq!(gw.chat(&hello("m")).await.status(), 200);
    }
    let later = keys_seen(&mock);
    assert!(
        later[2..].iter().all(|k| *k != limited),
        "a cooling key was used: {later:?}"
    );
}

#[tokio::test]
async fn rejected_key_is_skipped_for_the_next_key() {
    for status in [401u16, 403] {
        let mock = MockOpenAi::start("a").await;
        let gw = Gateway::start(&provider(
            "a",
            &mock.base_url(),
            &["sk-revoked-000001", "sk-valid-0000002"],
            "",
        ))
        .await;
        mock.push(Reply::status(status, r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#));
        let r = gw.chat(&hello("m")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(mock.count(), 2);
    }
}

#[tokio::test]
async fn client_errors_are_returned_without_failover() {
    for status in [400u16, 404, 413, 422] {
        let a = MockOpenAi::start("a").await;
        let b = MockOpenAi::start("b").await;
        let vendor_body = format!(
            r#"{{"error":{{"message":"bad thing {status}","type":"invalid_request_error","param":"messages","code":null}}}}"#
        );
        a.set_default(Reply::status(status, vendor_body.clone()));
        b.set_default(Reply::status(status, vendor_body.clone()));
        let toml = format!(
            "{}{}",
            provider("a", &a.base_url(), &["sk-a-000000000001"], ""),
            provider("b", &b.base_url(), &["sk-b-000000000001"], "")
        );
        let gw = Gateway::start(&toml).await;
        let r = gw.chat(&hello("m")).await;
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(r.text().await.expect("body"), vendor_body);
        assert_eq!(
            a.count() + b.count(),
            1,
            "status {status} must not fail over"
        );
    }
}

#[tokio::test]
async fn when_all_fail_the_client_gets_the_last_upstream_error() {
    let a = MockOpenAi::start("a").await;
    let b = MockOpenAi::start("b").await;
    a.set_default(Reply::status(502, "<html>bad gateway</html>"));
    b.set_default(Reply::Status {
        status: 503,
        headers: vec![("content-type".into(), "text/html".into())],
        body: "<html>upstream down</html>".into(),
    });
    let toml = format!(
        "{}{}",
        provider("a", &a.base_url(), &["sk-a-000000000001"], "weight = 1000"),
        provider("b", &b.base_url(), &["sk-b-000000000001"], "weight = 1")
    );
    let gw = Gateway::start(&toml).await;
    let r = gw.chat(&hello("m")).await;
    let (status, body) = error_of(r).await;
    // Both were tried; the client sees whichever answered last — `b` unless
    // the weighted draw (1000:1) happened to try it first.
    assert_eq!(a.count() + b.count(), 2);
    let msg = body["error"]["message"].as_str().unwrap_or("");
    match status {
        503 => assert!(
            msg.contains("upstream down") && msg.contains("`b`"),
            "{msg}"
        ),
        502 => assert!(msg.contains("bad gateway") && msg.contains("`a`"), "{msg}"),
        other => panic!("unexpected status {other}: {msg}"),
    }

    // A vendor's own OpenAI-format error is relayed unchanged.
    let vendor = r#"{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":null}}"#;
    b.set_default(Reply::status(500, vendor));
    a.set_default(Reply::status(500, vendor));
    let r = gw.chat(&hello("m")).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.text().await.expect("body"), vendor);
}

#[tokio::test]
async fn attempts_are_bounded_and_keys_never_repeat() {
    let mocks = [
        MockOpenAi::start("a").await,
        MockOpenAi::start("b").await,
        MockOpenAi::start("c").await,
    ];
    for m in &mocks {
        m.set_default(Reply::status(
            503,
            r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#,
        ));
    }
    let toml = format!(
        "[routing]\nmax_attempts = 2\n{}{}{}",
        provider("a", &mocks[0].base_url(), &["sk-a-000000000001"], ""),
        provider("b", &mocks[1].base_url(), &["sk-b-000000000001"], ""),
        provider("c", &mocks[2].base_url(), &["sk-c-000000000001"], "")
    );
    let gw = Gateway::start(&toml).await;
    assert_eq!(gw.chat(&hello("m")).await.status(), 503);
    let calls: Vec<usize> = mocks.iter().map(MockOpenAi::count).collect();
    assert_eq!(calls.iter().sum::<usize>(), 2, "{calls:?}");
    assert!(
        calls.iter().all(|&c| c <= 1),
        "a provider (single key) was tried twice: {calls:?}"
    );
}

#[tokio::test]
async fn connection_failures_fail_over() {
    let replies = [
        ("drop", Reply::Drop),
        ("reset", Reply::Reset),
        ("garbage", Reply::Garbage),
        ("200-then-close", Reply::StreamThenDrop { events: 0 }),
    ];
    for (what, reply) in replies {
        let bad = MockOpenAi::start("bad").await;
        let good = MockOpenAi::start("good").await;
        bad.set_default(reply);
        let toml = format!(
            "{}{}",
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
        let gw = Gateway::start(&toml).await;
        // `bad` is drawn first with probability 1000/1001; repeat in the
        // rare case the draw went straight to `good`.
        for _ in 0..5 {
            let r = gw.chat(&hello("m")).await;
            assert_eq!(r.status(), 200, "{what} must fail over");
            assert_eq!(r.headers()["x-llm-orchestrator-provider"], "good", "{what}");
            if bad.count() > 0 {
                break;
            }
        }
        assert_eq!(bad.count(), 1, "{what}");
    }
}

#[tokio::test]
async fn refused_connection_fails_over_and_all_refused_is_502() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}/v1", closed.local_addr().expect("addr"));
    drop(closed);
    let good = MockOpenAi::start("good").await;
    let toml = format!(
        "{}{}",
        provider("dead", &dead_url, &["sk-d-000000000001"], "weight = 1000"),
        provider(
            "good",
            &good.base_url(),
            &["sk-g-000000000001"],
            "weight = 1"
        )
    );
    let gw = Gateway::start(&toml).await;
    assert_eq!(gw.chat(&hello("m")).await.status(), 200);

    let only_dead = Gateway::start(&provider("dead", &dead_url, &["sk-d-000000000001"], "")).await;
    let (status, body) = error_of(only_dead.chat(&hello("m")).await).await;
    assert_eq!(status, 502);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("dead"),
        "{body}"
    );
}

#[tokio::test]
async fn hung_vendor_costs_one_first_byte_timeout() {
    let hung = MockOpenAi::start("hung").await;
    let good = MockOpenAi::start("good").await;
    hung.set_default(Reply::Hang);
    let toml = format!(
        "{}{}",
        provider(
            "hung",
            &hung.base_url(),
            &["sk-h-000000000001"],
            "weight = 1000\n[providers.timeouts]\nfirst_byte_secs = 0.5"
        ),
        provider(
            "good",
            &good.base_url(),
            &["sk-g-000000000001"],
            "weight = 1"
        )
    );
    let gw = Gateway::start(&toml).await;
    let r = gw.chat(&hello("m")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-orchestrator-provider"], "good");

    let alone = Gateway::start(&provider(
        "hung",
        &hung.base_url(),
        &["sk-h-000000000001"],
        "[providers.timeouts]\nfirst_byte_secs = 0.3",
    ))
    .await;
    let (status, _) = error_of(alone.chat(&hello("m")).await).await;
    assert_eq!(status, 504);
}

#[tokio::test]
async fn stream_cut_after_the_first_byte_ends_with_an_error_event() {
    let mock = MockOpenAi::start("flaky").await;
    let other = MockOpenAi::start("other").await;
    mock.set_default(Reply::StreamThenDrop { events: 2 });
    let toml = format!(
        "{}{}",
        provider(
            "flaky",
            &mock.base_url(),
            &["sk-f-000000000001"],
            "weight = 1000"
        ),
        provider(
            "other",
            &other.base_url(),
            &["sk-o-000000000001"],
            "weight = 1"
        )
    );
    let gw = Gateway::start(&toml).await;
    // `flaky` is drawn first with probability 1000/1001; repeat in the rare
    // case the draw went to `other` (whose stream is complete).
    let mut text = String::new();
    let mut other_during = 0;
    for _ in 0..5 {
        let before = other.count();
        let r = gw
            .chat(&json!({"model": "m", "stream": true, "messages": []}))
            .await;
        assert_eq!(r.status(), 200);
        text = r
            .text()
            .await
            .expect("the stream ends cleanly at the HTTP level");
        if mock.count() > 0 {
            other_during = other.count() - before;
            break;
        }
    }
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3, "{text}");
    let last: Value =
        serde_json::from_str(events[2].trim_start_matches("data: ")).expect("error event json");
    assert_eq!(last["error"]["code"], "stream_interrupted");
    assert!(!text.contains("[DONE]"));
    assert_eq!(other_during, 0, "no failover once bytes reached the client");
}

#[tokio::test]
async fn bad_input_gets_a_precise_error_and_never_reaches_a_vendor() {
    let mock = MockOpenAi::start("a").await;
    let toml = format!(
        "[server]\nmax_body_bytes = 2048\n{}",
        provider(
            "a",
            &mock.base_url(),
            &["sk-a-000000000001"],
            "models = [\"gpt-4o-mini\"]"
        )
    );
    let gw = Gateway::start(&toml).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (s, b) = error_of(
        post(b"{\"model\": \"gpt-4o-mini\", ".to_vec())
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("not valid JSON"));
    let (s, b) = error_of(post(br#"{"messages": []}"#.to_vec()).await.expect("send")).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("model")));
    let (s, b) = error_of(
        post(br#"{"model": "gpt-5", "messages": []}"#.to_vec())
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    assert!(b["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("/v1/models"));
    let (s, b) = error_of(
        post(br#"{"model": "gpt-4o-mini", "stream": "yes"}"#.to_vec())
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("stream")));
    let big = format!(
        r#"{{"model": "gpt-4o-mini", "messages": [{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    let (s, b) = error_of(post(big.into_bytes()).await.expect("send")).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("request_too_large"))
    );
    let (s, _) = error_of(
        client
            .get(gw.url("/v1/chat/completions"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 405);
    let (s, _) = error_of(
        client
            .post(gw.url("/v1/nothing"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(mock.count(), 0);
    // The gateway is still fine afterwards.
    assert_eq!(gw.chat(&hello("gpt-4o-mini")).await.status(), 200);
}

#[tokio::test]
async fn all_keys_cooling_is_a_clear_429() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start(&provider("a", &mock.base_url(), &["sk-only-000000001"], "")).await;
    mock.push(Reply::Status {
        status: 429,
        headers: vec![("retry-after".into(), "20".into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
    });
    // The vendor's own 429 is what the first client sees.
    assert_eq!(gw.chat(&hello("m")).await.status(), 429);
    let r = gw.chat(&hello("m")).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let (status, body) = error_of(r).await;
    assert_eq!(status, 429);
    assert!((1..=20).contains(&retry_after), "retry-after {retry_after}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cooling down"),
        "{body}"
    );
    assert_eq!(mock.count(), 1, "no request may be sent with a cooling key");
}

#[tokio::test]
async fn keyless_provider_sends_no_authorization() {
    let mock = MockOpenAi::start("local").await;
    let gw = Gateway::start(&provider("local", &mock.base_url(), &[], "")).await;
    assert_eq!(gw.chat(&hello("llama")).await.status(), 200);
    assert_eq!(mock.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn secrets_never_reach_logs_or_responses() {
    let secret = "sk-live-SECRETSECRET-9f8e";
    let mock = MockOpenAi::start("a").await;
    mock.push(Reply::status(401, r#"{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#));
    let gw = Gateway::start(&provider(
        "a",
        &mock.base_url(),
        &[secret, "sk-live-OTHERSECRET-1234"],
        "",
    ))
    .await;
    let r = gw.chat(&hello("m")).await;
    let headers = format!("{:?}", r.headers());
    let body = r.text().await.expect("body");
    assert!(!headers.contains("SECRET") && !body.contains("SECRET"));
    assert!(
        gw.wait_log("key=\"sk-…", Duration::from_secs(5)).await,
        "masked key logged:\n{}",
        gw.logs()
    );
    assert!(
        !gw.logs().contains("SECRET"),
        "a key leaked into the log:\n{}",
        gw.logs()
    );
    assert!(!gw.logs().contains(TOKEN));
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start(&provider("a", &mock.base_url(), &["sk-a-000000000001"], "")).await;
    for _ in 0..10 {
        assert_eq!(gw.chat(&hello("m")).await.status(), 200);
    }
    let stream = gw
        .chat(&json!({"model": "m", "stream": true, "messages": []}))
        .await;
    stream.text().await.expect("stream");
    assert_eq!(gw.chat(&hello("m")).await.status(), 200);
    assert_eq!(
        mock.connections(),
        1,
        "sequential requests share one pooled connection"
    );
}

#[tokio::test]
async fn client_hanging_up_before_the_answer_releases_the_vendor() {
    let hung = MockOpenAi::start("hung").await;
    hung.set_default(Reply::Hang);
    let gw = Gateway::start(&provider(
        "hung",
        &hung.base_url(),
        &["sk-h-000000000001"],
        "",
    ))
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let r = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .json(&hello("m"))
        .send()
        .await;
    assert!(r.is_err(), "the client gave up");
    assert!(
        hung.wait_abandoned(1, Duration::from_secs(5)).await,
        "the gateway must close the vendor connection when the client leaves"
    );
}

#[tokio::test]
async fn client_hanging_up_mid_stream_stops_the_vendor_stream() {
    let mock = MockOpenAi::start("slow").await;
    // Long silences between events, like a reasoning model thinking: the
    // gateway must notice the client leaving without waiting for a write.
    mock.set_stream_delay(Duration::from_secs(20));
    let gw = Gateway::start(&provider(
        "slow",
        &mock.base_url(),
        &["sk-s-000000000001"],
        "",
    ))
    .await;
    let mut r = gw
        .chat(&json!({"model": "m", "stream": true, "messages": []}))
        .await;
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.expect("first chunk");
    assert!(first.is_some());
    drop(r);
    assert!(
        mock.wait_abandoned(1, Duration::from_secs(10)).await,
        "the vendor stream must be cut when the client leaves"
    );
}

#[tokio::test]
async fn the_request_deadline_bounds_all_attempts() {
    let a = MockOpenAi::start("a").await;
    let b = MockOpenAi::start("b").await;
    a.set_default(Reply::Hang);
    b.set_default(Reply::Hang);
    let toml = format!(
        "[routing]\nrequest_timeout_secs = 1.0\n{}{}",
        provider(
            "a",
            &a.base_url(),
            &["sk-a-000000000001"],
            "[providers.timeouts]\nfirst_byte_secs = 30.0"
        ),
        provider(
            "b",
            &b.base_url(),
            &["sk-b-000000000001"],
            "[providers.timeouts]\nfirst_byte_secs = 30.0"
        )
    );
    let gw = Gateway::start(&toml).await;
    let started = std::time::Instant::now();
    let (status, _) = error_of(gw.chat(&hello("m")).await).await;
    assert_eq!(status, 504);
    // Far below the 30 s first-byte timeouts: the 1 s deadline cut it.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        a.count() + b.count(),
        1,
        "the deadline passed during the first attempt"
    );
}

/// A vendor that keeps the first connection alive after one answer and
/// then closes it on the next request without answering (what a vendor's
/// idle timeout looks like to a pooled connection); later connections are
/// served normally. Returns the base URL and every request head it read.
/// With `idle_close`, the first connection is closed that long after its
/// answer, while idle (the vendor's keep-alive timeout), instead.
async fn stale_after_one_vendor(
    idle_close: Option<std::time::Duration>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut sock, _)) = listener.accept().await {
            let answers = if std::mem::take(&mut first) {
                1
            } else {
                usize::MAX
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut served = 0;
                loop {
                    // One request: head, then a Content-Length body.
                    let mut buf = Vec::new();
                    let head_end = loop {
                        let mut chunk = [0u8; 4096];
                        let read = match idle_close {
                            Some(after) if answers == 1 && served == 1 => {
                                match tokio::time::timeout(after, sock.read(&mut chunk)).await {
                                    Ok(r) => r,
                                    Err(_) => return, // idle too long: closed
                                }
                            }
                            _ => sock.read(&mut chunk).await,
                        };
                        match read {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    seen.lock().expect("lock").push(head);
                    if served == answers {
                        return; // closes the connection without an answer
                    }
                    served += 1;
                    let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/v1"), heads)
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_vendor_is_retried_on_a_new_one() {
    let (url, heads) = stale_after_one_vendor(None).await;
    let gw = Gateway::start(&provider("a", &url, &["sk-a-000000000001"], "")).await;
    for i in 0..2 {
        let r = gw.chat(&hello("m")).await;
        assert_eq!(r.status(), 200, "request {i}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["choices"][0]["message"]["content"], "fine");
    }
    let heads = heads.lock().expect("lock").clone();
    // The second request went out twice: on the pooled connection (closed
    // unanswered) and again, with the whole request rebuilt, on a new one.
    assert_eq!(heads.len(), 3, "{heads:?}");
    assert_eq!(heads[1], heads[2]);
    assert!(
        heads[2].contains("authorization: Bearer sk-a-000000000001"),
        "{}",
        heads[2]
    );
    let health = gw.provider_health("a").await;
    assert_eq!(
        (
            health["state"].as_str(),
            health["consecutive_errors"].as_u64()
        ),
        (Some("healthy"), Some(0)),
        "a stale pooled connection is not a provider failure: {health}"
    );
}

#[tokio::test]
async fn a_pooled_connection_the_vendor_closed_while_idle_is_not_used() {
    let idle = std::time::Duration::from_millis(100);
    let (url, heads) = stale_after_one_vendor(Some(idle)).await;
    let gw = Gateway::start(&provider("a", &url, &["sk-a-000000000001"], "")).await;
    for i in 0..2 {
        let r = gw.chat(&hello("m")).await;
        assert_eq!(r.status(), 200, "request {i}");
        // Past the vendor's idle close.
        tokio::time::sleep(idle * 4).await;
    }
    // The pool saw the close: the second request went out once, on a new
    // connection, not first on the closed one.
    let heads = heads.lock().expect("lock").clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
}
