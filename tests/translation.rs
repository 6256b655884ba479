//! Any client API to any vendor, through the real gateway: OpenAI and
//! Anthropic clients against mock OpenAI, Anthropic and Gemini vendors that
//! speak the real wire formats.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::gateway::{typed_provider, Gateway, TOKEN};
use support::mock_anthropic::MockAnthropic;
use support::mock_gemini::MockGemini;
use support::mock_openai::{MockOpenAi, Reply};

const AN_KEY: &str = "sk-ant-api03-000000000001";
const GE_KEY: &str = "AIzaSy-gemini-0000000001";
const OA_KEY: &str = "sk-openai-0000000000001";

/// SSE text -> (event name, data) pairs.
fn sse(text: &str) -> Vec<(String, String)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut event = String::new();
            let mut data = Vec::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v);
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// OpenAI stream text -> (chunks, saw [DONE]).
fn openai_chunks(text: &str) -> (Vec<Value>, bool) {
    let mut done = false;
    let mut chunks = Vec::new();
    for (_, data) in sse(text) {
        if data == "[DONE]" {
            done = true;
        } else {
            chunks.push(
                serde_json::from_str(&data).unwrap_or_else(|e| panic!("bad chunk {data}: {e}")),
            );
        }
    }
    (chunks, done)
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn anthropic_gateway_config(url: &str, extra: &str) -> String {
    typed_provider("anthropic", "claude", url, &[AN_KEY], extra)
}

#[tokio::test]
async fn openai_client_on_anthropic_vendor_non_streaming() {
    let mock = MockAnthropic::start("claude").await;
    let toml = anthropic_gateway_config(
        &mock.base_url(),
        "model_map = { \"gpt-4o\" = \"claude-sonnet-4-5\" }",
    );
    let gw = Gateway::start(&toml).await;
    let r = gw
        .chat(&json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"}
            ],
            "temperature": 1.6,
            "stop": "END",
            "vendor_extension": true
        }))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-orchestrator-provider"], "claude");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from claude"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 0);
    assert_eq!(
        body["usage"]["total_tokens"].as_u64(),
        Some(
            body["usage"]["prompt_tokens"].as_u64().unwrap_or(0)
                + body["usage"]["completion_tokens"].as_u64().unwrap_or(0)
        )
    );

    let seen = &mock.requests()[0];
    assert_eq!(seen.route(), "/v1/messages");
    assert_eq!(seen.header("x-api-key").as_deref(), Some(AN_KEY));
    assert_eq!(
        seen.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        seen.header("authorization"),
        None,
        "the client's token never reaches the vendor"
    );
    let sent = seen.json();
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "You are terse.");
    assert_eq!(sent["max_tokens"], 4096, "default max_tokens for Anthropic");
    assert_eq!(sent["temperature"], 1.0, "clamped to Anthropic's range");
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    assert_eq!(sent["messages"][0]["role"], "user");
    assert!(
        sent.get("vendor_extension").is_none(),
        "untranslated fields are dropped on cross-format routes"
    );
}

#[tokio::test]
async fn openai_client_on_anthropic_vendor_streams_text_and_usage() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&anthropic_gateway_config(&mock.base_url(), "")).await;
    let r = gw
        .chat(
            &json!({"model": "claude-x", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/event-stream"));
    let (chunks, done) = openai_chunks(&r.text().await.expect("body"));
    assert!(done, "ends with [DONE]");
    assert_eq!(content_of(&chunks), "Hello from claude");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let usage = &chunks.last().expect("usage chunk")["usage"];
    assert!(
        usage["completion_tokens"].as_u64().unwrap_or(0) > 0,
        "{usage}"
    );
    assert_eq!(mock.requests()[0].json()["stream"], true);
    assert!(
        gw.wait_log("completion_tokens=3", Duration::from_secs(5))
            .await,
        "usage in the request log:\n{}",
        gw.logs()
    );
}

#[tokio::test]
async fn openai_client_on_anthropic_vendor_streams_tool_call_arguments() {
    let mock = MockAnthropic::start("claude").await;
    mock.push(Reply::tool_call(
        "get_weather",
        r#"{"city":"Paris","unit":"celsius"}"#,
    ));
    mock.push(Reply::tool_call(
        "get_weather",
        r#"{"city":"Paris","unit":"celsius"}"#,
    ));
    let gw = Gateway::start(&anthropic_gateway_config(&mock.base_url(), "")).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}}}]);

    let r = gw
        .chat(&json!({"model": "c", "messages": [{"role": "user", "content": "Weather?"}], "tools": tools, "tool_choice": "required"}))
        .await;
    let body: Value = r.json().await.expect("json");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or(""))
        .expect("arguments json");
    assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let sent = mock.requests()[0].json();
    assert_eq!(sent["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));

    let r = gw
        .chat(&json!({"model": "c", "stream": true, "messages": [{"role": "user", "content": "Weather?"}], "tools": tools}))
        .await;
    let (chunks, done) = openai_chunks(&r.text().await.expect("body"));
    assert!(done);
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]
                .as_object()
                .map(|_| &c["choices"][0]["delta"]["tool_calls"][0])
        })
        .collect();
    assert!(
        deltas.len() >= 3,
        "arguments streamed in pieces: {deltas:?}"
    );
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    assert!(deltas[0]["id"].as_str().unwrap_or("").starts_with("toolu_"));
    let joined: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&joined).expect("joined json"),
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn tool_results_keep_their_ids_across_turns() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&anthropic_gateway_config(&mock.base_url(), "")).await;
    let r = gw
        .chat(&json!({"model": "c", "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C"}
        ]}))
        .await;
    assert_eq!(r.status(), 200);
    let sent = mock.requests()[0].json();
    let msgs = sent["messages"].as_array().expect("messages");
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "toolu_01A");
}

#[tokio::test]
async fn thinking_reaches_openai_clients_as_reasoning_content() {
    let mock = MockAnthropic::start("claude").await;
    mock.push(Reply::thinking("Let me think about it"));
    mock.push(Reply::thinking("Let me think about it"));
    let gw = Gateway::start(&anthropic_gateway_config(&mock.base_url(), "")).await;
    let body: Value = gw
        .chat(&json!({"model": "c", "messages": [{"role": "user", "content": "Hi"}]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from claude"
    );
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        "Let me think about it"
    );

    let r = gw
        .chat(
            &json!({"model": "c", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    let text = r.text().await.expect("body");
    let (chunks, done) = openai_chunks(&text);
    assert!(done);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning.trim(), "Let me think about it");
    assert_eq!(content_of(&chunks), "Hello from claude");
    assert!(
        !text.contains("sig_"),
        "signatures have no place in the OpenAI format"
    );
}

#[tokio::test]
async fn anthropic_api_version_2026_drops_sampling_parameters() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&anthropic_gateway_config(
        &mock.base_url(),
        "anthropic_version = \"2026-10-21\"",
    ))
    .await;
    let r = gw
        .chat(&json!({"model": "c", "temperature": 0.7, "top_p": 0.9, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.header("anthropic-version").as_deref(),
        Some("2026-10-21")
    );
    let sent = seen.json();
    assert!(
        sent.get("temperature").is_none() && sent.get("top_p").is_none(),
        "{sent}"
    );
}

#[tokio::test]
async fn anthropic_vendor_errors_reach_openai_clients_in_openai_format() {
    let mock = MockAnthropic::start("claude").await;
    mock.push(Reply::status(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}"#,
    ));
    let gw = Gateway::start(&anthropic_gateway_config(&mock.base_url(), "")).await;
    let r = gw
        .chat(&json!({"model": "c", "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["message"], "messages: roles must alternate");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(mock.count(), 1, "a 400 is not failed over");
}

#[tokio::test]
async fn anthropic_overloaded_529_fails_over() {
    let busy = MockAnthropic::start("busy").await;
    let spare = MockAnthropic::start("spare").await;
    busy.set_default(Reply::status(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ));
    let toml = format!(
        "{}{}",
        typed_provider(
            "anthropic",
            "busy",
            &busy.base_url(),
            &[AN_KEY],
            "weight = 1000"
        ),
        typed_provider(
            "anthropic",
            "spare",
            &spare.base_url(),
            &[AN_KEY],
            "weight = 1"
        )
    );
    let gw = Gateway::start(&toml).await;
    let r = gw
        .chat(&json!({"model": "c", "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-llm-orchestrator-provider"], "spare");
}

#[tokio::test]
async fn translated_streams_that_die_end_with_an_error_event() {
    // Anthropic stream cut mid-answer, an Anthropic `error` event, and a
    // Gemini stream that ends without a finish reason.
    let an = MockAnthropic::start("claude").await;
    let ge = MockGemini::start("gem").await;
    an.push(Reply::StreamThenDrop { events: 4 });
    an.push(Reply::StreamError);
    ge.push(Reply::StreamError);
    // Events 100 ms apart: each failure comes after the first read, when
    // the answer is already the client's (an error event in the first read
    // is failed over instead: `upstream_edge.rs`).
    an.set_stream_delay(std::time::Duration::from_millis(100));
    ge.set_stream_delay(std::time::Duration::from_millis(100));
    let gw_an = Gateway::start(&anthropic_gateway_config(&an.base_url(), "")).await;
    let gw_ge = Gateway::start(&typed_provider(
        "gemini",
        "gem",
        &ge.base_url(),
        &[GE_KEY],
        "",
    ))
    .await;
    let req =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    for (gw, what) in [
        (&gw_an, "anthropic cut"),
        (&gw_an, "anthropic error event"),
        (&gw_ge, "gemini truncated"),
    ] {
        let r = gw.chat(&req).await;
        assert_eq!(r.status(), 200, "{what}");
        let (chunks, done) = openai_chunks(&r.text().await.expect("body"));
        assert!(!done, "{what}: no [DONE] after a failure");
        let last = chunks.last().expect("some chunks");
        assert!(
            last["error"]["message"].is_string(),
            "{what}: last event is an error: {last}"
        );
    }
}

#[tokio::test]
async fn openai_client_on_gemini_vendor() {
    let mock = MockGemini::start("gem").await;
    let toml = typed_provider(
        "gemini",
        "gem",
        &mock.base_url(),
        &[GE_KEY],
        "model_map = { \"fast\" = \"gemini-2.5-flash\" }",
    );
    let gw = Gateway::start(&toml).await;
    let r = gw
        .chat(&json!({"model": "fast", "max_tokens": 100, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again"}
        ]}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello from gem");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["model"], "fast");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0);

    let seen = &mock.requests()[0];
    assert_eq!(
        seen.route(),
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(seen.header("x-goog-api-key").as_deref(), Some(GE_KEY));
    let sent = seen.json();
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "Be brief.");
    let roles: Vec<&str> = sent["contents"]
        .as_array()
        .expect("contents")
        .iter()
        .filter_map(|c| c["role"].as_str())
        .collect();
    assert_eq!(roles, vec!["user", "model", "user"]);
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 100);
    assert!(
        sent.get("model").is_none(),
        "Gemini takes the model in the path"
    );

    // Streaming uses streamGenerateContent with alt=sse.
    let r = gw
        .chat(
            &json!({"model": "fast", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    let (chunks, done) = openai_chunks(&r.text().await.expect("body"));
    assert!(done);
    assert_eq!(content_of(&chunks), "Hello from gem");
    assert!(
        chunks.last().expect("usage")["usage"]["total_tokens"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    let seen = &mock.requests()[1];
    assert_eq!(
        seen.route(),
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(seen.query("alt"), Some("sse"));
}

#[tokio::test]
async fn gemini_tool_calls_keep_thought_signatures_across_turns() {
    let mock = MockGemini::start("gem").await;
    mock.push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
    let gw = Gateway::start(&typed_provider(
        "gemini",
        "gem",
        &mock.base_url(),
        &[GE_KEY],
        "",
    ))
    .await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#",
                       "properties": {"city": {"type": ["string", "null"]}}, "required": ["city"]}}}]);
    let r = gw.chat(&json!({"model": "gemini-3-pro", "messages": [{"role": "user", "content": "Weather?"}], "tools": tools})).await;
    let body: Value = r.json().await.expect("json");
    let call = body["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap_or(""))
            .expect("args"),
        json!({"city": "Paris"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let signature = call["extra_content"]["google"]["thought_signature"]
        .as_str()
        .expect("signature kept")
        .to_string();

    // The schema was cleaned of keywords Gemini rejects.
    let params = &mock.requests()[0].json()["tools"][0]["functionDeclarations"][0]["parameters"];
    assert!(
        params.get("additionalProperties").is_none() && params.get("$schema").is_none(),
        "{params}"
    );
    assert_eq!(params["properties"]["city"]["nullable"], true);

    // Next turn: the signature goes back on the functionCall part.
    let r = gw
        .chat(
            &json!({"model": "gemini-3-pro", "tools": tools, "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "{\"temp\": 18}"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let sent = mock.requests()[1].json();
    let model_turn = &sent["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(
        model_turn["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    assert_eq!(
        model_turn["parts"][0]["thoughtSignature"],
        signature.as_str()
    );
    let response_turn = &sent["contents"][2];
    assert_eq!(
        response_turn["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
    assert_eq!(
        response_turn["parts"][0]["functionResponse"]["response"],
        json!({"temp": 18})
    );
}

#[tokio::test]
async fn gemini_invalid_key_fails_over_to_the_next_key() {
    let mock = MockGemini::start("gem").await;
    let gw = Gateway::start(&typed_provider(
        "gemini",
        "gem",
        &mock.base_url(),
        &["bad-key", GE_KEY],
        "",
    ))
    .await;
    for _ in 0..3 {
        let r = gw.chat(&json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]})).await;
        assert_eq!(r.status(), 200);
    }
    let keys: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r.header("x-goog-api-key"))
        .collect();
    assert_eq!(
        keys.iter().filter(|k| *k == "bad-key").count(),
        1,
        "the invalid key cools down after one try: {keys:?}"
    );
}

#[tokio::test]
async fn anthropic_client_on_openai_vendor() {
    let mock = MockOpenAi::start("oai").await;
    let gw = Gateway::start(&typed_provider(
        "openai",
        "oai",
        &mock.base_url(),
        &[OA_KEY],
        "",
    ))
    .await;
    let r = gw
        .messages(
            &json!({"model": "gpt-4o", "max_tokens": 50, "system": "Be brief.",
                          "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(
        body["content"][0],
        json!({"type": "text", "text": "Hello from oai"})
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0);
    let sent = mock.requests()[0].json();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        mock.requests()[0].header("authorization").as_deref(),
        Some(&*format!("Bearer {OA_KEY}"))
    );

    // Streaming: the documented Anthropic event sequence.
    let r = gw
        .messages(&json!({"model": "gpt-4o", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    let events = sse(&r.text().await.expect("body"));
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(
        names.contains(&"content_block_start")
            && names.contains(&"content_block_stop")
            && names.contains(&"message_delta")
    );
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "content_block_delta")
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "Hello from oai");
    for (event, data) in &events {
        let v: Value = serde_json::from_str(data).expect("event json");
        assert_eq!(
            v["type"],
            event.as_str(),
            "data.type matches the event name"
        );
    }
}

#[tokio::test]
async fn a_clients_anthropic_version_replaces_the_configured_one_and_each_header_goes_once() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&anthropic_gateway_config(
        &mock.base_url(),
        "anthropic_version = \"2026-10-21\"",
    ))
    .await;
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(r#"{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let seen = &mock.requests()[0];
    let count = |name: &str| {
        seen.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    };
    assert_eq!(count("anthropic-version"), 1, "{:?}", seen.headers);
    assert_eq!(
        seen.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    // The head the gateway writes itself: every header once, the length
    // the body's.
    for name in [
        "host",
        "content-type",
        "content-length",
        "accept",
        "accept-encoding",
        "user-agent",
        "x-api-key",
    ] {
        assert_eq!(count(name), 1, "{name}: {:?}", seen.headers);
    }
    assert_eq!(
        seen.header("content-length").as_deref(),
        Some(seen.body.len().to_string().as_str())
    );
    assert_eq!(seen.header("accept-encoding").as_deref(), Some("identity"));
    assert!(
        seen.header("authorization").is_none(),
        "the client's token stays here"
    );
}

#[tokio::test]
async fn anthropic_client_on_anthropic_vendor_is_a_faithful_pass_through() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&anthropic_gateway_config(&mock.base_url(), "")).await;
    let req = json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "metadata": {"user_id": "u1"},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}],
        // A field the gateway's model has no name for (the strict mock,
        // like Anthropic, knows it): relayed with the rest, byte for byte.
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}});
    let raw = serde_json::to_vec(&req).expect("encode");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["id"], "msg_1");
    assert_eq!(body["content"][0]["text"], "Hello from claude");
    let seen = &mock.requests()[0];
    assert_eq!(seen.body, raw, "body untouched");
    assert_eq!(
        seen.header("x-api-key").as_deref(),
        Some(AN_KEY),
        "the provider's key replaces the client's token"
    );
    assert_eq!(
        seen.header("anthropic-beta").as_deref(),
        Some("prompt-caching-2024-07-31")
    );

    // Streams are relayed event for event.
    let r = gw.messages(&json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]})).await;
    let events = sse(&r.text().await.expect("body"));
    assert_eq!(events.first().map(|e| e.0.as_str()), Some("message_start"));
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("message_stop"));
    assert!(
        events.iter().any(|(e, _)| e == "ping"),
        "even pings pass through"
    );
    assert!(
        gw.wait_log("api=\"anthropic\"", Duration::from_secs(5))
            .await
    );
    assert!(
        gw.wait_log("completion_tokens=3", Duration::from_secs(5))
            .await,
        "usage read from the relayed stream:\n{}",
        gw.logs()
    );
}

#[tokio::test]
async fn anthropic_client_on_gemini_vendor_with_tools() {
    let mock = MockGemini::start("gem").await;
    mock.push(Reply::Complete);
    mock.push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
    let gw = Gateway::start(&typed_provider(
        "gemini",
        "gem",
        &mock.base_url(),
        &[GE_KEY],
        "",
    ))
    .await;
    let r = gw
        .messages(&json!({"model": "gemini-2.5-flash", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    let events = sse(&r.text().await.expect("body"));
    assert_eq!(events.first().map(|e| e.0.as_str()), Some("message_start"));
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("message_stop"));
    let delta = events
        .iter()
        .find(|(e, _)| e == "message_delta")
        .expect("message_delta");
    let delta: Value = serde_json::from_str(&delta.1).expect("json");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0);

    let r = gw
        .messages(&json!({"model": "gemini-2.5-flash", "max_tokens": 50,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "messages": [{"role": "user", "content": "Weather?"}]}))
        .await;
    let body: Value = r.json().await.expect("json");
    let tool = body["content"]
        .as_array()
        .expect("content")
        .iter()
        .find(|b| b["type"] == "tool_use")
        .cloned()
        .expect("tool_use block");
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["input"], json!({"city": "Paris"}));
    assert_eq!(body["stop_reason"], "tool_use");
}

#[tokio::test]
async fn anthropic_clients_get_anthropic_errors_and_both_auth_forms_work() {
    let mock = MockOpenAi::start("oai").await;
    let gw = Gateway::start(&typed_provider(
        "openai",
        "oai",
        &mock.base_url(),
        &[OA_KEY],
        "models = [\"gpt-4o\"]",
    ))
    .await;
    let req = json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]});
    let ok = gw
        .post(
            "/v1/messages",
            &[("authorization", &format!("Bearer {TOKEN}"))],
            &req,
        )
        .await;
    assert_eq!(ok.status(), 200, "new SDKs send a bearer token");
    let ok = gw.post("/v1/messages", &[("x-api-key", TOKEN)], &req).await;
    assert_eq!(ok.status(), 200, "older SDKs send x-api-key");
    let both = gw
        .post(
            "/v1/messages",
            &[("x-api-key", TOKEN), ("authorization", "Bearer wrong")],
            &req,
        )
        .await;
    assert_eq!(both.status(), 200, "x-api-key wins when both are present");

    let bad = gw
        .post("/v1/messages", &[("x-api-key", "wrong")], &req)
        .await;
    assert_eq!(bad.status(), 401);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let unknown = gw
        .messages(&json!({"model": "nope", "max_tokens": 10, "messages": []}))
        .await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.expect("json");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("nope"));

    let malformed = gw
        .post(
            "/v1/messages",
            &[("x-api-key", TOKEN), ("content-type", "application/json")],
            &json!("not an object"),
        )
        .await;
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(mock.count(), 3);
}

#[tokio::test]
async fn untranslatable_requests_are_rejected_clearly() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&anthropic_gateway_config(&mock.base_url(), "")).await;
    let r = gw
        .chat(&json!({"model": "c", "n": 3, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unsupported_for_provider");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("claude"),
        "{body}"
    );
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn anthropic_clients_get_an_anthropic_error_event_when_a_stream_dies() {
    // Pass-through (Anthropic vendor) and translated (OpenAI vendor) streams.
    let an = MockAnthropic::start("claude").await;
    let oa = MockOpenAi::start("oai").await;
    an.push(Reply::StreamThenDrop { events: 3 });
    oa.push(Reply::StreamThenDrop { events: 2 });
    let gw_an = Gateway::start(&anthropic_gateway_config(&an.base_url(), "")).await;
    let gw_oa = Gateway::start(&typed_provider(
        "openai",
        "oai",
        &oa.base_url(),
        &[OA_KEY],
        "",
    ))
    .await;
    let req = json!({"model": "m", "max_tokens": 20, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    for (gw, what) in [(&gw_an, "pass-through"), (&gw_oa, "translated")] {
        let r = gw.messages(&req).await;
        assert_eq!(r.status(), 200, "{what}");
        let events = sse(&r.text().await.expect("body"));
        let (name, data) = events.last().expect("events");
        assert_eq!(name, "error", "{what}: {events:?}");
        let v: Value = serde_json::from_str(data).expect("json");
        assert_eq!(v["type"], "error");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("provider"),
            "{what}: {v}"
        );
        assert!(
            !events.iter().any(|(e, _)| e == "message_stop"),
            "{what}: no clean end after a failure"
        );
    }
}

#[tokio::test]
async fn images_reach_vendors_in_their_own_format() {
    let an = MockAnthropic::start("claude").await;
    let ge = MockGemini::start("gem").await;
    let toml = format!(
        "{}{}",
        typed_provider(
            "anthropic",
            "claude",
            &an.base_url(),
            &[AN_KEY],
            "models = [\"claude-x\"]"
        ),
        typed_provider(
            "gemini",
            "gem",
            &ge.base_url(),
            &[GE_KEY],
            "models = [\"gemini-x\"]"
        )
    );
    let gw = Gateway::start(&toml).await;
    let content = json!([
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    ]);
    for model in ["claude-x", "gemini-x"] {
        let r = gw
            .chat(&json!({"model": model, "messages": [{"role": "user", "content": content}]}))
            .await;
        assert_eq!(r.status(), 200, "{model}");
    }
    let block = &an.requests()[0].json()["messages"][0]["content"][1];
    assert_eq!(
        block,
        &json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
    );
    let part = &ge.requests()[0].json()["contents"][0]["parts"][1];
    assert_eq!(
        part,
        &json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
}

#[tokio::test]
async fn untranslated_fields_are_dropped_with_a_debug_log_and_kept_on_same_format_routes() {
    let an = MockAnthropic::start("claude").await;
    let oa = MockOpenAi::start("oai").await;
    let toml = format!(
        "{}{}",
        typed_provider(
            "anthropic",
            "claude",
            &an.base_url(),
            &[AN_KEY],
            "models = [\"claude-x\"]"
        ),
        typed_provider(
            "openai",
            "oai",
            &oa.base_url(),
            &[OA_KEY],
            "models = [\"gpt-x\"]"
        )
    );
    let gw = Gateway::start_with(&toml, &[("AUTH_TOKEN", TOKEN), ("LOG_LEVEL", "debug")]).await;
    for model in ["claude-x", "gpt-x"] {
        let r = gw
            .chat(
                &json!({"model": model, "logit_bias": {"50256": -100}, "vendor_extension": 1,
                          "messages": [{"role": "user", "content": "Hi"}]}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let to_anthropic = an.requests()[0].json();
    assert!(
        to_anthropic.get("vendor_extension").is_none() && to_anthropic.get("logit_bias").is_none()
    );
    let to_openai = oa.requests()[0].json();
    assert_eq!(
        to_openai["vendor_extension"], 1,
        "same-format routes pass unknown fields through"
    );
    assert!(
        gw.wait_log("fields with no equivalent", Duration::from_secs(5))
            .await,
        "{}",
        gw.logs()
    );
    assert!(gw.logs().contains("vendor_extension"));
}

#[tokio::test]
async fn failover_across_vendor_types_retranslates_per_attempt() {
    // OpenAI client: Anthropic (503, translated request) -> OpenAI (pass-through).
    let an = MockAnthropic::start("claude").await;
    let oa = MockOpenAi::start("oai").await;
    an.set_default(Reply::status(
        503,
        r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
    ));
    let toml = format!(
        "{}{}",
        typed_provider(
            "anthropic",
            "claude",
            &an.base_url(),
            &[AN_KEY],
            "weight = 1000"
        ),
        typed_provider("openai", "oai", &oa.base_url(), &[OA_KEY], "weight = 1")
    );
    let gw = Gateway::start(&toml).await;
    let req = json!({"model": "m", "stream": true, "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]});
    for _ in 0..5 {
        let r = gw.chat(&req).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-llm-orchestrator-provider"], "oai");
        let (chunks, done) = openai_chunks(&r.text().await.expect("body"));
        assert!(done);
        assert_eq!(content_of(&chunks), "Hello from oai");
        if an.count() > 0 {
            break;
        }
    }
    let to_anthropic = an.requests()[0].json();
    assert_eq!(
        to_anthropic["system"], "S",
        "first attempt in Anthropic's format"
    );
    let to_openai = oa
        .requests()
        .last()
        .map(|r| r.json())
        .expect("second attempt");
    assert_eq!(
        to_openai["messages"][0]["role"], "system",
        "second attempt in OpenAI's format"
    );

    // Anthropic client: Anthropic (503, pass-through) -> OpenAI (translated).
    let r = gw
        .messages(&json!({"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "Hello from oai");
}
