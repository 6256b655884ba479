//! The Claude Code contract, through the real gateway in front of the
//! vendor mocks: `POST /v1/messages/count_tokens` on each vendor type,
//! `anthropic-beta` / `anthropic-version` as the vendor sees them (and the
//! per-provider `strip_betas`), `GET /v1/models` in both shapes, and
//! thinking blocks with signatures through 3-turn tool loops per vendor.

mod support;

use serde_json::{json, Value};
use support::gateway::{typed_provider, Gateway, TOKEN};
use support::mock_anthropic::{MockAnthropic, Recorded, Reply};
use support::mock_gemini::MockGemini;
use support::mock_openai::MockOpenAi;

const MODEL: &str = "claude-test";

fn config(kind: &str, url: &str, extra: &str) -> String {
    typed_provider(
        kind,
        "p",
        url,
        &["vendor-key-000000000001"],
        &format!("models = [\"{MODEL}\"]\n{extra}"),
    )
}

/// POST `body` to `path` as an Anthropic client, with these extra headers
/// (repeated names are sent as separate headers).
async fn anthropic_post(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(gw.url(path))
        .header("x-api-key", TOKEN)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request reached the gateway")
}

/// Every value of header `name` the vendor saw.
fn header_values(r: &Recorded, name: &str) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

fn count_body() -> Value {
    json!({
        "model": MODEL,
        "system": "You are a coding agent.",
        "tools": [{"name": "read_file", "description": "Read a file",
                   "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "What is in README.md?"}],
    })
}

// ------------------------------------------------------------ count_tokens

#[tokio::test]
async fn count_tokens_is_forwarded_to_anthropic_byte_for_byte() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&config("anthropic", &mock.base_url(), "")).await;
    let body = count_body();
    let r = anthropic_post(
        &gw,
        "/v1/messages/count_tokens",
        &[VERSION, ("anthropic-beta", "token-counting-2024-11-01")],
        &body,
    )
    .await;
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("json");
    let seen = mock.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let seen = &seen[0];
    assert_eq!(seen.path, "/v1/messages/count_tokens");
    assert_eq!(seen.body, serde_json::to_vec(&body).expect("bytes"));
    assert_eq!(
        header_values(seen, "x-api-key"),
        ["vendor-key-000000000001"]
    );
    assert_eq!(
        header_values(seen, "anthropic-beta"),
        ["token-counting-2024-11-01"]
    );
    assert_eq!(got, json!({"input_tokens": seen.body.len() / 4}));

    // Auth as for /v1/messages; GET is not the method.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages/count_tokens"))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["type"], "error", "{err}");
    let r = reqwest::Client::new()
        .get(gw.url("/v1/messages/count_tokens"))
        .header("x-api-key", TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 405);
    // An unknown model is Anthropic's 404; nothing reaches the vendor.
    let r = anthropic_post(
        &gw,
        "/v1/messages/count_tokens",
        &[VERSION],
        &json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(mock.count(), 1);
}

#[tokio::test]
async fn count_tokens_on_a_mapped_model_sends_the_upstream_name() {
    let mock = MockAnthropic::start("claude").await;
    let extra = "model_map = { \"claude-test\" = \"claude-upstream\" }";
    let gw = Gateway::start(&config("anthropic", &mock.base_url(), extra)).await;
    let r = anthropic_post(&gw, "/v1/messages/count_tokens", &[VERSION], &count_body()).await;
    assert_eq!(r.status(), 200, "{}", gw.logs());
    let sent = mock.requests()[0].json();
    assert_eq!(sent["model"], "claude-upstream");
    assert_eq!(sent["system"], "You are a coding agent.");
}

#[tokio::test]
async fn count_tokens_on_gemini_uses_count_tokens_with_the_whole_request() {
    let mock = MockGemini::start("gem").await;
    let gw = Gateway::start(&config("gemini", &mock.base_url(), "")).await;
    let r = anthropic_post(
        &gw,
        "/v1/messages/count_tokens",
        &[VERSION, ("anthropic-beta", "token-counting-2024-11-01")],
        &count_body(),
    )
    .await;
    let status = r.status();
    let got: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{got}\n{}", gw.logs());
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, format!("/v1beta/models/{MODEL}:countTokens"));
    assert!(header_values(seen, "anthropic-beta").is_empty());
    assert!(header_values(seen, "anthropic-version").is_empty());
    let sent = seen.json();
    let inner = &sent["generateContentRequest"];
    assert_eq!(inner["model"], format!("models/{MODEL}"), "{sent}");
    assert_eq!(
        inner["systemInstruction"]["parts"][0]["text"],
        "You are a coding agent."
    );
    assert_eq!(
        inner["tools"][0]["functionDeclarations"][0]["name"],
        "read_file"
    );
    assert_eq!(got, json!({"input_tokens": seen.body.len() / 4}));
}

#[tokio::test]
async fn count_tokens_on_openai_is_an_estimate_without_a_vendor_call() {
    let mock = MockOpenAi::start("oai").await;
    let gw = Gateway::start(&config("openai", &mock.base_url(), "")).await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "x".repeat(400)}]});
    let r = anthropic_post(&gw, "/v1/messages/count_tokens", &[VERSION], &body).await;
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("json");
    // 400 bytes / 4 + 3 for the turn + 3 priming (README's formula).
    assert_eq!(got, json!({"input_tokens": 106}));
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        0
    );
}

// ------------------------------------------------------------ headers

fn hello() -> Value {
    json!({"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn anthropic_headers_reach_anthropic_as_sent_and_never_injected() {
    let mock = MockAnthropic::start("claude").await;
    // The provider's own version differs from the client's.
    let gw = Gateway::start(&config(
        "anthropic",
        &mock.base_url(),
        "anthropic_version = \"2026-10-21\"",
    ))
    .await;
    // Several beta headers, as Claude Code sends them: joined in order.
    let r = anthropic_post(
        &gw,
        "/v1/messages",
        &[
            VERSION,
            ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
        ],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 200);
    // No beta: none is made up; the client's version still wins.
    let r = anthropic_post(&gw, "/v1/messages", &[VERSION], &hello()).await;
    assert_eq!(r.status(), 200);
    // An OpenAI client: the provider's version, no beta even if sent.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let seen = mock.requests();
    assert_eq!(
        header_values(&seen[0], "anthropic-beta"),
        ["claude-code-20250219,oauth-2025-04-20, interleaved-thinking-2025-05-14"]
    );
    assert_eq!(header_values(&seen[0], "anthropic-version"), ["2023-06-01"]);
    assert!(header_values(&seen[1], "anthropic-beta").is_empty());
    assert_eq!(header_values(&seen[1], "anthropic-version"), ["2023-06-01"]);
    assert!(header_values(&seen[2], "anthropic-beta").is_empty());
    assert_eq!(header_values(&seen[2], "anthropic-version"), ["2026-10-21"]);
}

#[tokio::test]
async fn translated_same_family_requests_follow_the_clients_version_rules() {
    let mock = MockAnthropic::start("claude").await;
    // A mapped model makes the gateway re-encode the request; the client's
    // 2026-10-21 rejects temperature, so the egress must drop it although
    // the provider's own version (the default 2023-06-01) accepts it.
    let extra = "model_map = { \"claude-test\" = \"claude-upstream\" }";
    let gw = Gateway::start(&config("anthropic", &mock.base_url(), extra)).await;
    let mut body = hello();
    body["temperature"] = json!(0.5);
    let r = anthropic_post(
        &gw,
        "/v1/messages",
        &[("anthropic-version", "2026-10-21")],
        &body,
    )
    .await;
    assert_eq!(r.status(), 200);
    let seen = &mock.requests()[0];
    assert_eq!(header_values(seen, "anthropic-version"), ["2026-10-21"]);
    let sent = seen.json();
    assert_eq!(sent["model"], "claude-upstream");
    assert!(sent.get("temperature").is_none(), "{sent}");
}

#[tokio::test]
async fn betas_in_strip_betas_are_removed_for_that_provider() {
    let mock = MockAnthropic::start("claude").await;
    let extra = "strip_betas = [\"context-1m-2025-08-07\", \"files-api-2025-04-14\"]";
    let gw = Gateway::start(&config("anthropic", &mock.base_url(), extra)).await;
    for betas in [
        &["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"][..],
        &["context-1m-2025-08-07,files-api-2025-04-14"][..],
    ] {
        let mut headers = vec![VERSION];
        headers.extend(betas.iter().map(|b| ("anthropic-beta", *b)));
        let r = anthropic_post(&gw, "/v1/messages", &headers, &hello()).await;
        assert_eq!(r.status(), 200);
    }
    let r = anthropic_post(
        &gw,
        "/v1/messages/count_tokens",
        &[
            VERSION,
            (
                "anthropic-beta",
                "files-api-2025-04-14, token-counting-2024-11-01",
            ),
        ],
        &count_body(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let seen = mock.requests();
    assert_eq!(
        header_values(&seen[0], "anthropic-beta"),
        ["interleaved-thinking-2025-05-14"]
    );
    assert!(header_values(&seen[1], "anthropic-beta").is_empty());
    assert_eq!(
        header_values(&seen[2], "anthropic-beta"),
        ["token-counting-2024-11-01"]
    );
}

#[tokio::test]
async fn strip_betas_is_validated() {
    let mock = MockOpenAi::start("oai").await;
    for (kind, list) in [
        ("openai", "[\"x-1\"]"),
        ("anthropic", "[\"bad flag\"]"),
        ("anthropic", "[\"\"]"),
    ] {
        let toml = config(kind, &mock.base_url(), &format!("strip_betas = {list}"));
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, toml).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"))
            .args(["check", "--config"])
            .arg(&path)
            .env_clear()
            .output()
            .expect("run check");
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{kind} {list}: {text}");
        assert!(text.contains("strip_betas"), "{kind} {list}: {text}");
    }
}

#[tokio::test]
async fn anthropic_headers_never_reach_other_vendors() {
    let oai = MockOpenAi::start("oai").await;
    let gem = MockGemini::start("gem").await;
    for (kind, url) in [("openai", oai.base_url()), ("gemini", gem.base_url())] {
        let gw = Gateway::start(&config(kind, &url, "")).await;
        let r = anthropic_post(
            &gw,
            "/v1/messages",
            &[
                VERSION,
                ("anthropic-beta", "interleaved-thinking-2025-05-14"),
            ],
            &hello(),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}: {}", gw.logs());
    }
    for seen in oai.requests().iter().chain(gem.requests().iter()) {
        assert!(header_values(seen, "anthropic-beta").is_empty(), "{seen:?}");
        assert!(
            header_values(seen, "anthropic-version").is_empty(),
            "{seen:?}"
        );
    }
}

// ------------------------------------------------------------ models

async fn get_models(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn models_list_in_both_shapes_with_each_apis_auth() {
    let mock = MockOpenAi::start("oai").await;
    let toml = format!(
        "[aliases]\nfast = \"{MODEL}\"\n{}",
        typed_provider(
            "openai",
            "p",
            &mock.base_url(),
            &["sk-000000000001"],
            &format!("models = [\"{MODEL}\", \"claude-other\"]")
        )
    );
    let gw = Gateway::start(&toml).await;
    let bearer = format!("Bearer {TOKEN}");

    // OpenAI's shape without anthropic-version.
    let (status, oa) = get_models(&gw, "/v1/models", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(oa["object"], "list");
    assert_eq!(oa["data"][0]["object"], "model");
    // Anthropic's shape with it, by x-api-key or bearer.
    for auth in [("x-api-key", TOKEN), ("authorization", bearer.as_str())] {
        let (status, an) = get_models(&gw, "/v1/models", &[VERSION, auth]).await;
        assert_eq!(status, 200, "{an}");
        let ids: Vec<&str> = an["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|m| m["id"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(ids, ["claude-other", MODEL, "fast"], "{an}");
        for m in an["data"].as_array().expect("data") {
            assert_eq!(m["type"], "model");
            assert!(m["display_name"].is_string());
            assert_eq!(m["created_at"], "1970-01-01T00:00:00Z");
        }
        assert_eq!(an["has_more"], false);
        assert_eq!(an["first_id"], "claude-other");
        assert_eq!(an["last_id"], "fast");
        assert!(an.get("object").is_none());
    }
    // Paging as Anthropic documents it.
    let (_, page) = get_models(&gw, "/v1/models?limit=1", &[VERSION, ("x-api-key", TOKEN)]).await;
    assert_eq!(
        (page["has_more"].clone(), page["last_id"].clone()),
        (json!(true), json!("claude-other"))
    );
    let (_, page) = get_models(
        &gw,
        "/v1/models?limit=5&after_id=claude-other",
        &[VERSION, ("x-api-key", TOKEN)],
    )
    .await;
    assert_eq!(page["first_id"], MODEL);
    assert_eq!(page["has_more"], false);
    // Wrong or missing key: each API's error shape.
    let (status, err) = get_models(&gw, "/v1/models", &[VERSION, ("x-api-key", "wrong")]).await;
    assert_eq!(status, 401);
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["error"]["type"], "authentication_error", "{err}");
    let (status, err) = get_models(&gw, "/v1/models", &[]).await;
    assert_eq!(status, 401);
    assert!(err["error"]["message"].is_string(), "{err}");
    assert!(err.get("type").is_none(), "{err}");
}

#[tokio::test]
async fn one_model_is_retrieved_in_both_shapes() {
    let mock = MockOpenAi::start("oai").await;
    let gw = Gateway::start(&config("openai", &mock.base_url(), "")).await;
    let bearer = format!("Bearer {TOKEN}");
    let path = format!("/v1/models/{MODEL}");
    let (status, oa) = get_models(&gw, &path, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        oa,
        json!({"id": MODEL, "object": "model", "created": 0, "owned_by": "llm-orchestrator"})
    );
    let (status, an) = get_models(&gw, &path, &[VERSION, ("x-api-key", TOKEN)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        an,
        json!({"type": "model", "id": MODEL, "display_name": MODEL, "created_at": "1970-01-01T00:00:00Z"})
    );
    let (status, err) = get_models(&gw, "/v1/models/nope", &[VERSION, ("x-api-key", TOKEN)]).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["type"], "not_found_error", "{err}");
    let (status, _) = get_models(&gw, &path, &[VERSION]).await;
    assert_eq!(status, 401);
}

// ------------------------------------------------------------ thinking tool loops

fn tools() -> Value {
    json!([{"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
}

fn turn_request(messages: &[Value], stream: bool) -> Value {
    json!({
        "model": MODEL, "max_tokens": 2048, "stream": stream,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": tools(), "messages": messages,
    })
}

/// An Anthropic SSE stream folded back into the message's `content`, as
/// the SDKs' stream helpers do.
fn fold_stream(text: &str) -> (Vec<Value>, String) {
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_text: Vec<String> = Vec::new();
    let mut stop = String::new();
    for frame in text.split("\n\n") {
        let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
            continue;
        };
        let ev: Value = serde_json::from_str(data).expect("event json");
        match ev["type"].as_str().unwrap_or("") {
            "content_block_start" => {
                blocks.push(ev["content_block"].clone());
                json_text.push(String::new());
            }
            "content_block_delta" => {
                let i = ev["index"].as_u64().expect("index") as usize;
                let d = &ev["delta"];
                let b = &mut blocks[i];
                match d["type"].as_str().unwrap_or("") {
                    "text_delta" => {
                        b["text"] = json!(format!(
                            "{}{}",
                            b["text"].as_str().unwrap_or(""),
                            d["text"].as_str().unwrap_or("")
                        ))
                    }
                    "thinking_delta" => {
                        b["thinking"] = json!(format!(
                            "{}{}",
                            b["thinking"].as_str().unwrap_or(""),
                            d["thinking"].as_str().unwrap_or("")
                        ))
                    }
                    "signature_delta" => b["signature"] = d["signature"].clone(),
                    "input_json_delta" => {
                        json_text[i].push_str(d["partial_json"].as_str().unwrap_or(""))
                    }
                    other => panic!("unknown delta {other}"),
                }
            }
            "message_delta" => stop = ev["delta"]["stop_reason"].as_str().unwrap_or("").into(),
            _ => {}
        }
    }
    for (b, j) in blocks.iter_mut().zip(json_text) {
        if b["type"] == "tool_use" && !j.is_empty() {
            b["input"] = serde_json::from_str(&j).expect("tool input json");
        }
    }
    (blocks, stop)
}

/// Runs a 3-turn tool loop as Claude Code does (turn 2 streamed): each
/// assistant content is sent back unchanged with a tool_result for its
/// tool_use. Returns the assistant contents of the 3 turns.
async fn tool_loop(gw: &Gateway, history: Vec<Value>) -> Vec<Vec<Value>> {
    let mut messages = history;
    messages.push(json!({"role": "user", "content": "Weather in Paris, then Rome?"}));
    let mut contents = Vec::new();
    for turn in 0..3 {
        let stream = turn == 1;
        let r = anthropic_post(
            gw,
            "/v1/messages",
            &[VERSION],
            &turn_request(&messages, stream),
        )
        .await;
        let status = r.status();
        let text = r.text().await.expect("body");
        assert_eq!(status, 200, "turn {turn}: {text}\n{}", gw.logs());
        let (content, stop) = if stream {
            fold_stream(&text)
        } else {
            let m: Value = serde_json::from_str(&text).expect("json");
            (
                m["content"].as_array().expect("content").clone(),
                m["stop_reason"].as_str().unwrap_or("").to_string(),
            )
        };
        messages.push(json!({"role": "assistant", "content": content}));
        if turn < 2 {
            assert_eq!(stop, "tool_use", "turn {turn}: {content:?}");
            let id = content
                .iter()
                .find(|b| b["type"] == "tool_use")
                .and_then(|b| b["id"].as_str())
                .expect("a tool_use block")
                .to_string();
            messages.push(json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": id, "content": "18C, sunny"}]}));
        } else {
            assert_eq!(stop, "end_turn", "turn {turn}: {content:?}");
        }
        contents.push(content);
    }
    contents
}

fn script_loop(push: impl Fn(Reply)) {
    push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
    push(Reply::tool_call("get_weather", r#"{"city":"Rome"}"#));
    push(Reply::Complete);
}

#[tokio::test]
async fn thinking_signatures_survive_a_tool_loop_on_anthropic() {
    let mock = MockAnthropic::start("claude").await;
    script_loop(|r| mock.push(r));
    let gw = Gateway::start(&config("anthropic", &mock.base_url(), "")).await;
    let contents = tool_loop(&gw, Vec::new()).await;
    // Each tool turn starts with the signed thinking block the vendor sent.
    for (turn, content) in contents.iter().take(2).enumerate() {
        assert_eq!(content[0]["type"], "thinking", "{content:?}");
        assert_eq!(content[0]["signature"], format!("sig_{}", turn + 1));
    }
    // The vendor got them back verbatim (the mock also enforces its rules).
    let third = mock.requests()[2].json();
    let sent: Vec<&Value> = third["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| &m["content"][0])
        .collect();
    assert_eq!(sent[0], &contents[0][0]);
    assert_eq!(sent[1], &contents[1][0]);
}

#[tokio::test]
async fn gemini_thought_signatures_survive_an_anthropic_clients_tool_loop() {
    let mock = MockGemini::start("gem").await;
    script_loop(|r| mock.push(r));
    let gw = Gateway::start(&config("gemini", &mock.base_url(), "")).await;
    let contents = tool_loop(&gw, Vec::new()).await;
    // Each call's signature reaches the client in a marked thinking block
    // right before its tool_use (streamed or not).
    for (turn, content) in contents.iter().take(2).enumerate() {
        let types: Vec<&str> = content
            .iter()
            .map(|b| b["type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(types, ["thinking", "tool_use"], "turn {turn}: {content:?}");
        assert_eq!(content[0]["thinking"], "");
        assert_eq!(
            content[0]["signature"],
            format!("gemini:c2lnX{:03}", turn + 1)
        );
    }
    // Gemini got each back on its functionCall part, and nowhere else.
    let third = mock.requests()[2].json();
    let signed: Vec<(String, bool)> = third["contents"]
        .as_array()
        .expect("contents")
        .iter()
        .flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| {
            let sig = p["thoughtSignature"].as_str()?.to_string();
            Some((sig, p.get("functionCall").is_some()))
        })
        .collect();
    assert_eq!(
        signed,
        [
            ("c2lnX001".to_string(), true),
            ("c2lnX002".to_string(), true)
        ],
        "{third}"
    );
}

#[tokio::test]
async fn thinking_blocks_are_dropped_without_error_on_openai() {
    let mock = MockOpenAi::start("oai").await;
    script_loop(|r| mock.push(r));
    let gw = Gateway::start(&config("openai", &mock.base_url(), "")).await;
    // History from an Anthropic vendor and from Gemini (a client that
    // switched models): signed thinking the OpenAI API has no place for.
    let history = vec![
        json!({"role": "user", "content": "Earlier question"}),
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig_9"},
            {"type": "thinking", "thinking": "", "signature": "gemini:c2lnX9"},
            {"type": "text", "text": "Earlier answer"}]}),
    ];
    let contents = tool_loop(&gw, history).await;
    assert!(contents[2].iter().any(|b| b["type"] == "text"));
    // Anthropic's signature is dropped; a Gemini one goes only in Google's
    // own OpenAI codec (`extra_content.google`, for Google's endpoint),
    // never as the client's marked string.
    for r in mock.requests().iter().filter(|r| r.method == "POST") {
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains("sig_9") && !body.contains("gemini:"),
            "{body}"
        );
        assert!(!body.contains("thinking"), "{body}");
    }
}

#[tokio::test]
async fn gemini_signatures_are_not_replayed_to_anthropic() {
    // A conversation that started on Gemini continues on Anthropic: the
    // marked Gemini signatures must not reach Anthropic (which rejects an
    // invalid signature; the mock too).
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&config("anthropic", &mock.base_url(), "")).await;
    let body = json!({"model": MODEL, "max_tokens": 64, "tools": tools(), "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": "gemini:c2lnX1"},
            {"type": "tool_use", "id": "toolu_g", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_g", "content": "18C"}]}]});
    let r = anthropic_post(&gw, "/v1/messages", &[VERSION], &body).await;
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    let sent = String::from_utf8_lossy(&mock.requests()[0].body).into_owned();
    assert!(!sent.contains("gemini:"), "{sent}");
    assert!(sent.contains("toolu_g"), "{sent}");
}

// ------------------------------------------------------------ the real Claude Code

/// The real Claude Code CLI (`claude -p`, headless) through the gateway in
/// front of the Anthropic mock. Runs only when `LLMO_AGENTS_BIN` names the
/// directory holding the `claude` executable (e.g.
/// `node_modules/.bin` of `npm i @anthropic-ai/claude-code`); skipped
/// (passing) when it is unset.
#[tokio::test]
async fn real_claude_code_completes_a_prompt_through_the_gateway() {
    let Some(bin) = support::agents_bin("claude") else {
        eprintln!("skipped: no `claude` in LLMO_AGENTS_BIN or tests/agents (./scripts/bootstrap test installs it)");
        return;
    };
    let anthropic = MockAnthropic::start("claude").await;
    let gemini = MockGemini::start("gem").await;
    let openai = MockOpenAi::start("oai").await;
    let vendors = [
        ("anthropic", anthropic.base_url(), "claude"),
        ("gemini", gemini.base_url(), "gem"),
        ("openai", openai.base_url(), "oai"),
    ];
    for (kind, url, name) in vendors {
        let requests = || match kind {
            "anthropic" => anthropic.requests(),
            "gemini" => gemini.requests(),
            _ => openai.requests(),
        };
        run_claude_code(&bin, kind, &url, name, requests).await;
    }
}

async fn run_claude_code(
    bin: &str,
    kind: &str,
    url: &str,
    name: &str,
    requests: impl Fn() -> Vec<Recorded>,
) {
    let gw = Gateway::start(&typed_provider(
        kind,
        "p",
        url,
        &["vendor-key-000000000001"],
        "",
    ))
    .await;
    let home = tempfile::tempdir().expect("home");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(format!("{bin}/claude"))
            .args(["-p", "say hi"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("ANTHROPIC_BASE_URL", &gw.base)
            .env("ANTHROPIC_AUTH_TOKEN", TOKEN)
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("claude finished within 2 minutes")
    .expect("claude runs");
    let seen: Vec<String> = requests()
        .iter()
        .map(|r| {
            let keys: Vec<String> = (r.json().as_object())
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            let headers: Vec<String> = (r.headers.iter())
                .filter(|(k, _)| k.starts_with("anthropic") || k == "x-api-key")
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!(
                "{} {} fields {keys:?} headers {headers:?}",
                r.method, r.path
            )
        })
        .collect();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("Hello from {name}")),
        "{kind}: claude: {:?}\nstdout: {stdout}\nstderr: {}\nmock saw:\n{}\ngateway log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        seen.join("\n"),
        gw.logs()
    );
    eprintln!("{kind} mock saw:\n{}", seen.join("\n"));
}
