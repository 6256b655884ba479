//! What vendors send back, taken at its word only when it deserves it: the
//! real gateway binary against mock vendors that echo keys, answer garbage,
//! deny a model, list their models, or stream while the gateway is told to
//! stop (issue 13, "Nothing silently lost" and "First run").

mod support;

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::gateway::{provider, typed_provider, Gateway, TOKEN};
use support::mock_anthropic::MockAnthropic;
use support::mock_gemini::MockGemini;
use support::mock_openai::{MockOpenAi, Reply};
use tokio::io::{AsyncBufReadExt, BufReader};

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

/// Passive health only, and slow to call a provider unhealthy, so the
/// tests decide which provider answers.
const PASSIVE: &str = "[health]\nenabled = false\nmax_errors = 1000\n";

async fn admin_get(gw: &Gateway, path: &str) -> String {
    reqwest::Client::new()
        .get(gw.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin call")
        .text()
        .await
        .expect("admin body")
}

// ------------------------------------------------------------ anthropic-beta

#[tokio::test]
async fn two_anthropic_beta_headers_both_reach_anthropic() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&typed_provider(
        "anthropic",
        "claude",
        &mock.base_url(),
        &["sk-ant-api03-000000000001"],
        "",
    ))
    .await;
    // As Claude Code sends them: one header per flag.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", TOKEN)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .header("anthropic-beta", "fine-grained-tool-streaming-2025-05-14")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 20,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let seen = &mock.requests()[0];
    let betas: Vec<&String> = seen
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("anthropic-beta"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        betas,
        ["interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14"],
        "{:?}",
        seen.headers
    );
}

// ------------------------------------------------------------ key disabling

/// The health endpoint's state of each key of `provider`.
async fn key_states(gw: &Gateway, provider: &str) -> Vec<String> {
    gw.provider_health(provider).await["keys"]
        .as_array()
        .map(|ks| {
            ks.iter()
                .map(|k| k["state"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_403_for_a_model_fails_over_without_disabling_the_key() {
    // Each vendor's documented "this key may not use this model" answer,
    // then its "this key is bad" answer.
    let openai_model = r#"{"error":{"message":"Project `proj_abc` does not have access to model `gpt-5`","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
    let openai_key = r#"{"error":{"message":"This API key has been revoked","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    let anthropic_model = r#"{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}"#;
    let anthropic_key =
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
    let gemini_model = r#"{"error":{"code":403,"message":"You do not have permission to access the tuned model tunedModels/abc.","status":"PERMISSION_DENIED"}}"#;
    let gemini_key = r#"{"error":{"code":403,"message":"Requests from this API key are blocked.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_SERVICE_BLOCKED","domain":"googleapis.com"}]}}"#;

    for (kind, model_denial, key_denial) in [
        ("openai", openai_model, openai_key),
        ("anthropic", anthropic_model, anthropic_key),
        ("gemini", gemini_model, gemini_key),
    ] {
        let (base, push): (String, Box<dyn Fn(Reply)>) = match kind {
            "openai" => {
                let m = MockOpenAi::start("v").await;
                (m.base_url(), Box::new(move |r| m.push(r)))
            }
            "anthropic" => {
                let m = MockAnthropic::start("v").await;
                (m.base_url(), Box::new(move |r| m.push(r)))
            }
            _ => {
                let m = MockGemini::start("v").await;
                (m.base_url(), Box::new(move |r| m.push(r)))
            }
        };
        let toml = format!(
            "{PASSIVE}{}",
            typed_provider(
                kind,
                "v",
                &base,
                &["key-one-00000000001", "key-two-00000000002"],
                "models = [\"m\"]"
            )
        );
        let gw = Gateway::start(&toml).await;

        push(Reply::status(403, model_denial));
        let r = gw.chat(&hello("m")).await;
        assert_eq!(r.status(), 200, "{kind}: the other key answers");
        assert_eq!(
            key_states(&gw, "v").await,
            ["available", "available"],
            "{kind}: a 403 for the model disabled a key"
        );
        // Both keys keep serving.
        for _ in 0..2 {
            assert_eq!(gw.chat(&hello("m")).await.status(), 200, "{kind}");
        }

        push(Reply::status(403, key_denial));
        let r = gw.chat(&hello("m")).await;
        assert_eq!(r.status(), 200, "{kind}");
        let states = key_states(&gw, "v").await;
        assert_eq!(
            states.iter().filter(|s| *s == "disabled").count(),
            1,
            "{kind}: a 403 naming the key disables it: {states:?}"
        );
    }
}

// ------------------------------------------------------------ masking

#[tokio::test]
async fn vendor_error_text_echoing_a_key_or_the_token_is_masked_everywhere() {
    let key = "sk-live-ECHOEDSECRET-4242";
    let mock = MockOpenAi::start("a").await;
    // A vendor that quotes back what it was sent.
    let echo = format!(
        r#"{{"error":{{"message":"upstream rejected Authorization: Bearer {key} (client token {TOKEN})","type":"server_error","param":null,"code":null}}}}"#
    );
    mock.set_default(Reply::status(503, echo.clone()));
    let gw = Gateway::start(&format!(
        "{PASSIVE}{}",
        provider("a", &mock.base_url(), &[key], "")
    ))
    .await;
    let r = gw.chat(&hello("m")).await;
    assert_eq!(r.status(), 503);
    let body = r.text().await.expect("body");
    assert!(
        !body.contains("ECHOEDSECRET") && !body.contains(TOKEN),
        "{body}"
    );
    assert!(body.contains("sk-…4242"), "masked form kept: {body}");

    // The stream route, and an Anthropic client, the same.
    let r = gw
        .messages(&json!({"model": "m", "max_tokens": 5, "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    let body = r.text().await.expect("body");
    assert!(
        !body.contains("ECHOEDSECRET") && !body.contains(TOKEN),
        "{body}"
    );

    // The log line, the stored row and the health endpoint.
    assert!(
        gw.wait_log("status=503", Duration::from_secs(5)).await,
        "{}",
        gw.logs()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = admin_get(&gw, "/api/logs").await;
        if rows.contains("sk-…4242") || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        rows.contains("sk-…4242"),
        "the row keeps the masked text: {rows}"
    );
    let health = admin_get(&gw, "/api/providers/health").await;
    for (what, text) in [("log", gw.logs()), ("rows", rows), ("health", health)] {
        assert!(
            !text.contains("ECHOEDSECRET") && !text.contains(TOKEN),
            "a secret leaked into the {what}:\n{text}"
        );
    }
}

#[tokio::test]
async fn trace_level_logs_never_print_a_vendor_key_or_the_token() {
    let oa = MockOpenAi::start("oa").await;
    let an = MockAnthropic::start("an").await;
    let ge = MockGemini::start("ge").await;
    let (k_oa, k_an, k_ge) = (
        "sk-TRACEOPENAI-000000001",
        "sk-ant-TRACEANTHROPIC-0001",
        "AIzaTRACEGEMINI-00000001",
    );
    let toml = format!(
        "[health]\nenabled = true\ninterval_secs = 0.3\n{}{}{}",
        provider("oa", &oa.base_url(), &[k_oa], "models = [\"gpt-4o\"]"),
        typed_provider(
            "anthropic",
            "an",
            &an.base_url(),
            &[k_an],
            "models = [\"claude-x\"]"
        ),
        typed_provider(
            "gemini",
            "ge",
            &ge.base_url(),
            &[k_ge],
            "models = [\"gemini-x\"]"
        ),
    );
    let gw = Gateway::start_with(&toml, &[("AUTH_TOKEN", TOKEN), ("LOG_LEVEL", "trace")]).await;
    for model in ["gpt-4o", "claude-x", "gemini-x"] {
        for stream in [false, true] {
            let r = gw
                .chat(&json!({"model": model, "stream": stream,
                    "messages": [{"role": "user", "content": "Hi"}]}))
                .await;
            assert_eq!(r.status(), 200, "{model}");
            let _ = r.text().await;
        }
    }
    let r = gw
        .messages(&json!({"model": "claude-x", "max_tokens": 5,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    // The active probes ran too (they carry the keys as well).
    assert!(oa.wait_for_count(7, Duration::from_secs(10)).await);
    assert!(
        gw.wait_log("request_id", Duration::from_secs(5)).await,
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(logs.contains("TRACE"), "the gateway logged at trace level");
    for secret in [k_oa, k_an, k_ge, TOKEN] {
        assert!(
            !logs.contains(secret),
            "{secret} in the trace log:\n{}",
            logs.lines()
                .filter(|l| l.contains(secret))
                .take(3)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

// ------------------------------------------------------------ garbage

/// Two providers of `kind` serving "m": `bad` answers `garbage` every time,
/// `good` answers normally. Requests until `bad` was tried 3 times: every
/// client answer must be the good vendor's, whole. The client speaks the
/// vendor's API, or the one named in `"<vendor> for <client>"`.
async fn garbage_fails_over(kind: &str, garbage: Reply, stream: bool) {
    let (kind, client) = kind.split_once(" for ").unwrap_or((kind, kind));
    let (bad_url, good_url, bad_count): (String, String, Box<dyn Fn() -> usize>) = match kind {
        "openai" => {
            let bad = MockOpenAi::start("bad").await;
            let good = MockOpenAi::start("good").await;
            bad.set_default(garbage.clone());
            let good_url = good.base_url();
            // The closure keeps both mocks alive for the test.
            (
                bad.base_url(),
                good_url,
                Box::new(move || {
                    let _ = &good;
                    bad.count()
                }),
            )
        }
        _ => {
            let bad = MockAnthropic::start("bad").await;
            let good = MockAnthropic::start("good").await;
            bad.set_default(garbage.clone());
            let good_url = good.base_url();
            // The closure keeps both mocks alive for the test.
            (
                bad.base_url(),
                good_url,
                Box::new(move || {
                    let _ = &good;
                    bad.count()
                }),
            )
        }
    };
    let toml = format!(
        "{PASSIVE}{}{}",
        typed_provider(kind, "bad", &bad_url, &["sk-bad-000000000001"], ""),
        typed_provider(kind, "good", &good_url, &["sk-good-00000000001"], "")
    );
    let gw = Gateway::start(&toml).await;
    let mut sent = 0;
    while bad_count() < 3 {
        sent += 1;
        assert!(sent < 60, "{kind}: the bad provider was never chosen");
        let r = if client == "openai" {
            gw.chat(&json!({"model": "m", "stream": stream,
                "messages": [{"role": "user", "content": "Hi"}]}))
                .await
        } else {
            gw.messages(&json!({"model": "m", "max_tokens": 5, "stream": stream,
                "messages": [{"role": "user", "content": "Hi"}]}))
                .await
        };
        assert_eq!(r.status(), 200, "{kind} {garbage:?}: {}", gw.logs());
        let provider = r
            .headers()
            .get("x-llm-orchestrator-provider")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.text().await.expect("body");
        assert_eq!(
            provider.as_deref(),
            Some("good"),
            "{kind} {garbage:?}: {body}"
        );
        if stream {
            assert!(
                body.contains("[DONE]") || body.contains("message_stop"),
                "{body}"
            );
        } else {
            let v: Value = serde_json::from_str(&body).expect("the good vendor's JSON");
            assert!(v["choices"].is_array() || v["content"].is_array(), "{v}");
        }
    }
    assert!(
        gw.wait_log(
            "provider answered garbage, failing over",
            Duration::from_secs(5)
        )
        .await
    );
}

fn html() -> Reply {
    Reply::Status {
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        body: "<html><body>Service temporarily unavailable</body></html>".into(),
    }
}

#[tokio::test]
async fn garbage_before_the_first_byte_on_the_pass_through_route_fails_over() {
    garbage_fails_over("openai", html(), false).await;
    garbage_fails_over("openai", html(), true).await;
    garbage_fails_over(
        "openai",
        Reply::status(200, r#"{"id":"chatcmpl-1","choices":[{"#),
        false,
    )
    .await;
    garbage_fails_over(
        "openai",
        Reply::status(
            200,
            r#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#,
        ),
        false,
    )
    .await;
    garbage_fails_over(
        "openai",
        Reply::RawStream {
            chunks: vec![
                "data: <html>oops</html>\n\n".into(),
                "data: [DONE]\n\n".into(),
            ],
        },
        true,
    )
    .await;
    garbage_fails_over("anthropic", html(), false).await;
    // Translated routes too: garbage fails over instead of becoming a 502.
    garbage_fails_over("anthropic for openai", html(), false).await;
    // A translated whole answer is checked by translating it (one walk of
    // the body): cut JSON, the vendor's error object, and JSON that is not
    // an answer (a 502 when the check only walked the JSON) all fail over.
    for body in [
        r#"{"id":"msg_1","type":"message","content":[{"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"id":"msg_1","type":"message","role":"assistant","content":"not blocks"}"#,
    ] {
        garbage_fails_over("anthropic for openai", Reply::status(200, body), false).await;
    }
    // A translated stream is checked by its translation (one decode of
    // each event): garbage, or the vendor's error event in the first read,
    // still fails over before anything reaches the client.
    for kind in ["anthropic", "anthropic for openai"] {
        garbage_fails_over(
            kind,
            Reply::RawStream {
                chunks: vec!["event: message_start\ndata: {\"type\":\"message_start\",\n\n".into()],
            },
            true,
        )
        .await;
    }
    garbage_fails_over(
        "anthropic for openai",
        Reply::RawStream {
            chunks: vec![concat!(
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
            )
            .into()],
        },
        true,
    )
    .await;
}

#[tokio::test]
async fn garbage_mid_stream_on_the_pass_through_route_ends_with_an_error_event() {
    let mock = MockOpenAi::start("a").await;
    let good = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
    mock.set_default(Reply::RawStream {
        chunks: vec![
            format!("data: {good}\n\n"),
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\n\n".into(),
            format!("data: {good}\n\n"),
            "data: [DONE]\n\n".into(),
        ],
    });
    // The garbage arrives after the first event was committed.
    mock.set_stream_delay(Duration::from_millis(100));
    let gw = Gateway::start(&format!(
        "{PASSIVE}{}",
        provider("a", &mock.base_url(), &["sk-a-000000000001"], "")
    ))
    .await;
    let r = gw
        .chat(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    let events: Vec<&str> = body
        .split("\n\n")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    assert_eq!(events.len(), 2, "{body}");
    assert_eq!(events[0], format!("data: {good}"));
    let err: Value =
        serde_json::from_str(events[1].trim_start_matches("data: ")).expect("error event");
    assert_eq!(err["error"]["code"], "stream_interrupted", "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
    assert!(
        gw.wait_log("outcome=\"stream_cut\"", Duration::from_secs(5))
            .await,
        "{}",
        gw.logs()
    );
}

// ------------------------------------------------------------ /v1/models

#[tokio::test]
async fn models_lists_what_glob_and_catch_all_providers_can_serve() {
    let oa = MockOpenAi::start("oa").await;
    oa.set_fixed(
        "GET",
        "/v1/models",
        200,
        r#"{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"gpt-4o-mini","object":"model"},{"id":"o3-mini","object":"model"},{"id":"dall-e-3","object":"model"}]}"#,
    );
    let ge = MockGemini::start("ge").await;
    ge.set_fixed(
        "GET",
        "/v1beta/models",
        200,
        r#"{"models":[{"name":"models/gemini-2.5-pro","displayName":"Gemini 2.5 Pro"},{"name":"models/gemini-2.5-flash"}]}"#,
    );
    let toml = format!(
        "[health]\nenabled = true\ninterval_secs = 0.3\n{}{}",
        provider(
            "oa",
            &oa.base_url(),
            &["sk-oa-000000000001"],
            "models = [\"gpt-4o*\", \"exact-name\"]"
        ),
        // No models list: serves whatever it is asked for.
        typed_provider("gemini", "ge", &ge.base_url(), &["AIza-ge-0000000001"], ""),
    );
    let gw = Gateway::start(&toml).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let ids = loop {
        let ids = gw.model_ids().await;
        if (ids.iter().any(|i| i == "gpt-4o-mini") && ids.iter().any(|i| i == "gemini-2.5-pro"))
            || Instant::now() > deadline
        {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for want in [
        "exact-name",
        "gpt-4o",
        "gpt-4o-mini",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
    ] {
        assert!(ids.iter().any(|i| i == want), "{want} missing: {ids:?}");
    }
    for not in ["o3-mini", "dall-e-3"] {
        assert!(
            !ids.iter().any(|i| i == not),
            "{not} is not served: {ids:?}"
        );
    }
    assert_eq!(
        ids.iter().filter(|i| *i == "gpt-4o").count(),
        1,
        "listed once: {ids:?}"
    );
    // What is listed can be called.
    assert_eq!(gw.chat(&hello("gpt-4o-mini")).await.status(), 200);
}

// ------------------------------------------------------------ SIGTERM

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

#[tokio::test]
async fn sigterm_ends_streams_still_running_after_the_grace_period_with_an_error_event_and_a_log_row(
) {
    // Long answers, one word a second: they outlive a 1 s grace period.
    let name = "one two three four five six seven eight nine ten eleven twelve";
    let oa = MockOpenAi::start(name).await;
    oa.set_stream_delay(Duration::from_millis(700));
    let an = MockAnthropic::start(name).await;
    an.set_stream_delay(Duration::from_millis(700));
    // And a vendor that never answers.
    let hang = MockOpenAi::start("hang").await;
    hang.set_default(Reply::Hang);
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}{}{}",
            provider(
                "hang",
                &hang.base_url(),
                &["sk-hang-0000000001"],
                "models = [\"hang-x\"]"
            ),
            provider(
                "oa",
                &oa.base_url(),
                &["sk-oa-000000000001"],
                "models = [\"gpt-4o\"]"
            ),
            typed_provider(
                "anthropic",
                "an",
                &an.base_url(),
                &["sk-an-000000000001"],
                "models = [\"claude-x\"]"
            ),
        ),
    )
    .expect("cfg");
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let db = dir.path().join("gw.db");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"))
        .arg("--config")
        .arg(&cfg)
        .env_clear()
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", free_port().to_string())
        .env("AUTH_TOKEN", TOKEN)
        .env("ADMIN_LISTEN", "")
        .env("GRACE_PERIOD_SECS", "1")
        .env("UPGRADE_SOCK", dir.path().join("upgrade.sock"))
        .env("DATABASE_URL", format!("sqlite:///{}", db.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("address in time")
            .expect("stdout")
            .expect("gateway exited early");
        if let Some(a) = line.strip_prefix("llm-orchestrator listening on ") {
            break a.to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "not listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let client = reqwest::Client::new();
    let openai = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("x-request-id", "sigterm-openai")
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("openai stream starts");
    let anthropic = client
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", TOKEN)
        .header("x-request-id", "sigterm-anthropic")
        .json(&json!({"model": "claude-x", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("anthropic stream starts");
    assert_eq!(
        (openai.status().as_u16(), anthropic.status().as_u16()),
        (200, 200)
    );
    let waiting = tokio::spawn(
        client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(TOKEN)
            .header("x-request-id", "sigterm-waiting")
            .json(&hello("hang-x"))
            .send(),
    );
    assert!(hang.wait_for_count(1, Duration::from_secs(10)).await);

    let pid = child.id().expect("running");
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());

    // Whatever arrives until the gateway closes (a cut connection is an
    // error for reqwest: keep what came before it).
    async fn all_of(r: reqwest::Response) -> String {
        use futures_util::StreamExt;
        let mut s = r.bytes_stream();
        let mut out = Vec::new();
        while let Some(Ok(chunk)) = s.next().await {
            out.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    let (openai, anthropic) = tokio::join!(all_of(openai), all_of(anthropic));
    let waiting = waiting
        .await
        .expect("task")
        .expect("the waiting request gets an answer");
    assert_eq!(waiting.status(), 503);
    let body: Value = waiting.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "shutting_down", "{body}");

    let last = openai
        .split("\n\n")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .last()
        .unwrap_or_default();
    let err: Value = serde_json::from_str(last.trim_start_matches("data: "))
        .unwrap_or_else(|e| panic!("last OpenAI event is not JSON ({e}): {openai}"));
    assert_eq!(err["error"]["code"], "shutting_down", "{openai}");
    assert!(!openai.contains("[DONE]"), "{openai}");
    let last = anthropic
        .split("\n\n")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .last()
        .unwrap_or_default();
    let data = last
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_default();
    let err: Value = serde_json::from_str(data)
        .unwrap_or_else(|e| panic!("last Anthropic event is not JSON ({e}): {anthropic}"));
    assert!(last.starts_with("event: error"), "{anthropic}");
    assert_eq!(err["error"]["type"], "api_error", "{anthropic}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("shutting down")),
        "{anthropic}"
    );
    assert!(!anthropic.contains("message_stop"), "{anthropic}");

    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exited in time")
        .expect("wait");
    assert!(status.success(), "{status:?}");

    let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
    for id in ["sigterm-openai", "sigterm-anthropic", "sigterm-waiting"] {
        assert!(
            logs.lines()
                .any(|l| l.contains(id) && l.contains("outcome=\"shutdown\"")),
            "no request line for {id}:\n{logs}"
        );
    }
    let conn = rusqlite::Connection::open(&db).expect("db");
    let mut rows: Vec<(String, String)> = conn
        .prepare("SELECT request_id, outcome FROM request_logs ORDER BY request_id")
        .expect("query")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .filter_map(Result::ok)
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("sigterm-anthropic".to_string(), "shutdown".to_string()),
            ("sigterm-openai".to_string(), "shutdown".to_string()),
            ("sigterm-waiting".to_string(), "shutdown".to_string())
        ],
        "{logs}"
    );
}
