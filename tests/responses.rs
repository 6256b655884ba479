//! OpenAI Responses clients (`POST /v1/responses`) through the real
//! gateway: translated to mock OpenAI-chat, Anthropic and Gemini vendors,
//! and passed through to a Responses-native mock OpenAI.

mod support;

use serde_json::{json, Value};
use support::gateway::{typed_provider, Gateway, TOKEN};
use support::mock_anthropic::MockAnthropic;
use support::mock_gemini::MockGemini;
use support::mock_openai::{MockOpenAi, Reply};

const AN_KEY: &str = "sk-ant-api03-000000000001";
const GE_KEY: &str = "AIzaSy-gemini-0000000001";
const OA_KEY: &str = "sk-openai-0000000000001";

/// SSE text -> (event name, data as JSON).
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            let v = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{data}: {e}"));
            (name, v)
        })
        .collect()
}

/// The first output item of this type (Null when none).
fn item_of<'v>(output: &'v Value, kind: &str) -> &'v Value {
    output
        .as_array()
        .and_then(|o| o.iter().find(|i| i["type"] == kind))
        .unwrap_or(&Value::Null)
}

async fn post(gw: &Gateway, body: &Value) -> reqwest::Response {
    gw.post(
        "/v1/responses",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        body,
    )
    .await
}

/// The three translated vendors, each behind its own gateway.
struct Vendors {
    oa: MockOpenAi,
    an: MockAnthropic,
    ge: MockGemini,
    gws: Vec<(&'static str, Gateway)>,
}

async fn vendors() -> Vendors {
    let oa = MockOpenAi::start("oai").await;
    let an = MockAnthropic::start("claude").await;
    let ge = MockGemini::start("gem").await;
    let mut gws = Vec::new();
    for (kind, name, url, key) in [
        ("openai", "oai", oa.base_url(), OA_KEY),
        ("anthropic", "claude", an.base_url(), AN_KEY),
        ("gemini", "gem", ge.base_url(), GE_KEY),
    ] {
        let toml = typed_provider(kind, name, &url, &[key], "");
        gws.push((kind, Gateway::start(&toml).await));
    }
    Vendors { oa, an, ge, gws }
}

impl Vendors {
    fn push(&self, kind: &str, reply: Reply) {
        match kind {
            "openai" => self.oa.push(reply),
            "anthropic" => self.an.push(reply),
            _ => self.ge.push(reply),
        }
    }

    fn last_sent(&self, kind: &str) -> Value {
        let reqs = match kind {
            "openai" => self.oa.requests(),
            "anthropic" => self.an.requests(),
            _ => self.ge.requests(),
        };
        reqs.last().expect("the vendor saw a request").json()
    }
}

#[tokio::test]
async fn text_answers_from_every_vendor_as_response_objects() {
    let v = vendors().await;
    for (kind, gw) in &v.gws {
        let r = post(
            gw,
            &json!({"model": "m", "instructions": "Be terse.", "input": "Hi", "store": false,
                    "max_output_tokens": 50, "temperature": 0.5}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["object"], "response", "{kind}");
        assert!(
            body["id"].as_str().unwrap_or("").starts_with("resp_"),
            "{kind}: {body}"
        );
        assert_eq!(body["status"], "completed", "{kind}");
        assert_eq!(body["model"], "m");
        let item = &body["output"][0];
        assert_eq!(item["type"], "message", "{kind}: {body}");
        assert_eq!(item["role"], "assistant");
        assert_eq!(item["content"][0]["type"], "output_text");
        assert!(
            item["content"][0]["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("Hello from"),
            "{kind}: {body}"
        );
        let u = &body["usage"];
        assert!(u["input_tokens"].as_u64().unwrap_or(0) > 0, "{kind}: {u}");
        assert!(u["output_tokens"].as_u64().unwrap_or(0) > 0, "{kind}: {u}");
        assert_eq!(
            u["total_tokens"].as_u64(),
            Some(
                u["input_tokens"].as_u64().unwrap_or(0) + u["output_tokens"].as_u64().unwrap_or(0)
            )
        );
        assert!(u["input_tokens_details"]["cached_tokens"].is_u64());
        assert!(u["output_tokens_details"]["reasoning_tokens"].is_u64());
    }
    // What each vendor was sent.
    let oa = v.last_sent("openai");
    assert_eq!(
        oa["messages"][0],
        json!({"role": "system", "content": "Be terse."})
    );
    assert_eq!(oa["messages"][1]["role"], "user");
    assert_eq!(oa["max_tokens"], 50);
    assert!(
        oa.get("store").is_none() && oa.get("input").is_none(),
        "{oa}"
    );
    let an = v.last_sent("anthropic");
    assert_eq!(an["system"], "Be terse.");
    assert_eq!(an["max_tokens"], 50);
    let ge = v.last_sent("gemini");
    assert_eq!(ge["systemInstruction"]["parts"][0]["text"], "Be terse.");
    assert_eq!(ge["generationConfig"]["maxOutputTokens"], 50);
}

#[tokio::test]
async fn function_tools_over_two_turns_on_every_vendor() {
    let v = vendors().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    for (kind, gw) in &v.gws {
        v.push(kind, Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
        let r = post(
            gw,
            &json!({"model": "m", "input": "Weather in Paris?", "tools": tools}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}");
        let body: Value = r.json().await.expect("json");
        let call = body["output"]
            .as_array()
            .and_then(|o| o.iter().find(|i| i["type"] == "function_call"))
            .unwrap_or_else(|| panic!("{kind}: no function_call in {body}"))
            .clone();
        assert_eq!(call["name"], "get_weather");
        let args: Value =
            serde_json::from_str(call["arguments"].as_str().unwrap_or("")).expect("args");
        assert_eq!(args, json!({"city": "Paris"}));
        let call_id = call["call_id"].as_str().expect("call_id").to_string();

        // Turn 2: the call and its output go back as items.
        let r = post(
            gw,
            &json!({"model": "m", "tools": tools, "input": [
                {"role": "user", "content": "Weather in Paris?"},
                call,
                {"type": "function_call_output", "call_id": call_id, "output": "18C and sunny"}
            ]}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["output"][0]["type"], "message", "{kind}: {body}");
        let sent = v.last_sent(kind);
        match *kind {
            "openai" => {
                let m = &sent["messages"];
                assert_eq!(m[1]["tool_calls"][0]["id"], call_id.as_str(), "{sent}");
                assert_eq!(m[1]["tool_calls"][0]["function"]["name"], "get_weather");
                assert_eq!(
                    m[2],
                    json!({"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"})
                );
            }
            "anthropic" => {
                let m = &sent["messages"];
                assert_eq!(m[1]["content"][0]["type"], "tool_use", "{sent}");
                assert_eq!(m[1]["content"][0]["id"], call_id.as_str());
                assert_eq!(m[1]["content"][0]["input"], json!({"city": "Paris"}));
                assert_eq!(m[2]["content"][0]["type"], "tool_result");
                assert_eq!(m[2]["content"][0]["tool_use_id"], call_id.as_str());
            }
            _ => {
                let c = &sent["contents"];
                assert_eq!(
                    c[1]["parts"][0]["functionCall"]["name"], "get_weather",
                    "{sent}"
                );
                assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "get_weather");
            }
        }
    }
}

#[tokio::test]
async fn custom_tools_are_functions_with_input_and_come_back_as_custom_calls() {
    let v = vendors().await;
    let tools = json!([{"type": "custom", "name": "apply_patch", "description": "Apply a patch",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]);
    let patch = "*** Begin Patch\n*** End Patch";
    for (kind, gw) in &v.gws {
        let args = json!({"input": patch}).to_string();
        v.push(kind, Reply::tool_call("apply_patch", args));
        let r = post(
            gw,
            &json!({"model": "m", "input": "Fix it", "tools": tools, "store": false}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}");
        let body: Value = r.json().await.expect("json");
        let call = item_of(&body["output"], "custom_tool_call");
        assert_eq!(call["type"], "custom_tool_call", "{kind}: {body}");
        assert_eq!(call["name"], "apply_patch");
        assert_eq!(call["input"], patch, "{kind}: {body}");
        let sent = v.last_sent(kind);
        let schema = match *kind {
            "openai" => sent["tools"][0]["function"]["parameters"].clone(),
            "anthropic" => sent["tools"][0]["input_schema"].clone(),
            _ => sent["tools"][0]["functionDeclarations"][0]["parameters"].clone(),
        };
        assert!(schema["properties"]["input"].is_object(), "{kind}: {sent}");

        // The call and its output go back.
        let call_id = call["call_id"].as_str().unwrap_or("").to_string();
        let r = post(
            gw,
            &json!({"model": "m", "tools": tools, "input": [
                {"role": "user", "content": "Fix it"},
                {"type": "custom_tool_call", "call_id": call_id, "name": "apply_patch", "input": patch},
                {"type": "custom_tool_call_output", "call_id": call_id, "output": "Done"}
            ]}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}");
        let sent = v.last_sent(kind).to_string();
        assert!(
            sent.contains("Begin Patch") && sent.contains("Done"),
            "{kind}: {sent}"
        );
    }
}

#[tokio::test]
async fn anthropic_reasoning_round_trips_in_encrypted_content_and_is_dropped_elsewhere() {
    let v = vendors().await;
    let gw = &v.gws[1].1;
    v.an.push(Reply::thinking("Let me think"));
    let r = post(
        gw,
        &json!({"model": "m", "input": "Hi", "store": false, "reasoning": {"effort": "low"},
                "include": ["reasoning.encrypted_content"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    let rs = &body["output"][0];
    assert_eq!(rs["type"], "reasoning", "{body}");
    assert_eq!(rs["summary"][0]["text"], "Let me think");
    let enc = rs["encrypted_content"]
        .as_str()
        .expect("encrypted_content")
        .to_string();
    assert!(enc.starts_with("gw1:anthropic:"), "{enc}");
    let sent = v.last_sent("anthropic");
    assert_eq!(sent["thinking"]["type"], "enabled", "{sent}");

    // Without `include`, no encrypted_content.
    v.an.push(Reply::thinking("Again"));
    let r = post(gw, &json!({"model": "m", "input": "Hi"})).await;
    let body: Value = r.json().await.expect("json");
    assert!(
        body["output"][0].get("encrypted_content").is_none(),
        "{body}"
    );

    // Back to Anthropic: the signed thinking block is replayed.
    let history = json!({"model": "m", "store": false, "input": [
        {"role": "user", "content": "Hi"},
        rs,
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
        {"role": "user", "content": "More"}
    ]});
    let r = post(gw, &history).await;
    assert_eq!(r.status(), 200);
    let sent = v.last_sent("anthropic");
    let block = &sent["messages"][1]["content"][0];
    assert_eq!(block["type"], "thinking", "{sent}");
    assert_eq!(block["thinking"], "Let me think");
    assert_eq!(block["signature"], enc.rsplit(':').next().unwrap_or(""));

    // To OpenAI chat and Gemini it is dropped without an error.
    for (kind, gw) in [("openai", &v.gws[0].1), ("gemini", &v.gws[2].1)] {
        let r = post(gw, &history).await;
        assert_eq!(r.status(), 200, "{kind}");
        let sent = v.last_sent(kind).to_string();
        assert!(!sent.contains("sig_"), "{kind}: {sent}");
    }
}

/// The event sequence the `openai` SDK stream helpers accept.
fn check_sequence(kind: &str, evs: &[(String, Value)]) {
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["type"].as_str(), Some(name.as_str()), "{kind}");
        assert_eq!(data["sequence_number"], i, "{kind}: {name}");
    }
    assert_eq!(evs[0].0, "response.created", "{kind}");
    assert_eq!(evs[1].0, "response.in_progress", "{kind}");
    let id = &evs[0].1["response"]["id"];
    let last = &evs[evs.len() - 1];
    assert_eq!(last.0, "response.completed", "{kind}: {evs:?}");
    assert_eq!(&last.1["response"]["id"], id);
    // Every item added is done, and the final output holds the done items.
    let done: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "response.output_item.done")
        .map(|(_, d)| &d["item"])
        .collect();
    let added = evs
        .iter()
        .filter(|(n, _)| n == "response.output_item.added")
        .count();
    assert_eq!(added, done.len(), "{kind}");
    let output: Vec<&Value> = last.1["response"]["output"]
        .as_array()
        .expect("output")
        .iter()
        .collect();
    assert_eq!(output, done, "{kind}");
}

#[tokio::test]
async fn streams_from_every_vendor_carry_the_full_event_sequence() {
    let v = vendors().await;
    for (kind, gw) in &v.gws {
        let r = post(gw, &json!({"model": "m", "input": "Hi", "stream": true})).await;
        assert_eq!(r.status(), 200, "{kind}");
        let evs = events(&r.text().await.expect("body"));
        check_sequence(kind, &evs);
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
        ] {
            assert!(names.contains(&want), "{kind}: {names:?}");
        }
        let text: String = evs
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .filter_map(|(_, d)| d["delta"].as_str())
            .collect();
        assert!(text.starts_with("Hello from"), "{kind}: {text}");
        let done = evs
            .iter()
            .find(|(n, _)| n == "response.output_text.done")
            .expect("done");
        assert_eq!(done.1["text"], text.as_str());
        let last = &evs[evs.len() - 1].1["response"];
        assert!(
            last["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0,
            "{kind}: {last}"
        );

        // Tool calls stream as argument deltas.
        v.push(kind, Reply::tool_call("f", r#"{"a":1}"#));
        let tools = json!([{"type": "function", "name": "f", "parameters": {"type": "object"}}]);
        let r = post(
            gw,
            &json!({"model": "m", "input": "Hi", "stream": true, "tools": tools}),
        )
        .await;
        let evs = events(&r.text().await.expect("body"));
        check_sequence(kind, &evs);
        let args: String = evs
            .iter()
            .filter(|(n, _)| n == "response.function_call_arguments.delta")
            .filter_map(|(_, d)| d["delta"].as_str())
            .collect();
        let args: Value = serde_json::from_str(&args).unwrap_or(Value::Null);
        assert_eq!(args, json!({"a": 1}), "{kind}: {evs:?}");
        let done = evs
            .iter()
            .find(|(n, _)| n == "response.function_call_arguments.done")
            .expect("arguments done");
        assert_eq!(
            serde_json::from_str::<Value>(done.1["arguments"].as_str().unwrap_or("")).ok(),
            Some(json!({"a": 1}))
        );
    }
}

#[tokio::test]
async fn streamed_custom_calls_and_reasoning() {
    let v = vendors().await;
    let gw = &v.gws[1].1;
    let tools = json!([{"type": "custom", "name": "apply_patch"}]);
    v.an.push(Reply::tool_call(
        "apply_patch",
        json!({"input": "diff"}).to_string(),
    ));
    let r = post(
        gw,
        &json!({"model": "m", "input": "Hi", "stream": true, "tools": tools}),
    )
    .await;
    let evs = events(&r.text().await.expect("body"));
    check_sequence("custom", &evs);
    let done = evs
        .iter()
        .find(|(n, _)| n == "response.custom_tool_call_input.done")
        .unwrap_or_else(|| panic!("{evs:?}"));
    assert_eq!(done.1["input"], "diff");
    let out = item_of(
        &evs[evs.len() - 1].1["response"]["output"],
        "custom_tool_call",
    );
    assert_eq!(out["type"], "custom_tool_call");
    assert_eq!(out["input"], "diff");

    v.an.push(Reply::thinking("Deep thought"));
    let r = post(
        gw,
        &json!({"model": "m", "input": "Hi", "stream": true, "include": ["reasoning.encrypted_content"]}),
    )
    .await;
    let evs = events(&r.text().await.expect("body"));
    check_sequence("reasoning", &evs);
    let summary: String = evs
        .iter()
        .filter(|(n, _)| n == "response.reasoning_summary_text.delta")
        .filter_map(|(_, d)| d["delta"].as_str())
        .collect();
    assert_eq!(summary, "Deep thought");
    let rs = &evs[evs.len() - 1].1["response"]["output"][0];
    assert_eq!(rs["type"], "reasoning");
    assert!(
        rs["encrypted_content"]
            .as_str()
            .unwrap_or("")
            .starts_with("gw1:anthropic:s:"),
        "{rs}"
    );
}

#[tokio::test]
async fn an_upstream_that_dies_mid_stream_ends_with_response_failed() {
    let v = vendors().await;
    // Events 100 ms apart: the failure comes after the first read, when the
    // answer is already the client's (an error event in the first read is
    // failed over instead: `upstream_edge.rs`).
    let apart = std::time::Duration::from_millis(100);
    v.oa.set_stream_delay(apart);
    v.an.set_stream_delay(apart);
    v.ge.set_stream_delay(apart);
    for (kind, gw) in &v.gws {
        v.push(kind, Reply::StreamThenDrop { events: 2 });
        let r = post(gw, &json!({"model": "m", "input": "Hi", "stream": true})).await;
        assert_eq!(r.status(), 200, "{kind}");
        let evs = events(&r.text().await.expect("body"));
        let (name, data) = evs.last().expect("events");
        assert_eq!(name, "response.failed", "{kind}: {evs:?}");
        assert_eq!(data["response"]["status"], "failed");
        assert_eq!(data["response"]["id"], evs[0].1["response"]["id"]);
        assert!(
            data["response"]["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("provider"),
            "{data}"
        );
        assert!(!evs.iter().any(|(n, _)| n == "response.completed"));

        // The vendor's own in-stream error: response.failed as well.
        v.push(kind, Reply::StreamError);
        let r = post(gw, &json!({"model": "m", "input": "Hi", "stream": true})).await;
        let evs = events(&r.text().await.expect("body"));
        assert_eq!(
            evs.last().map(|e| e.0.as_str()),
            Some("response.failed"),
            "{kind}: {evs:?}"
        );
    }
}

#[tokio::test]
async fn stateful_and_malformed_requests_get_400_naming_the_param() {
    let v = vendors().await;
    let gw = &v.gws[1].1;
    let cases = [
        (
            json!({"model": "m", "input": "Hi", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_txt", "text": "x"}]}]}),
            "input[0].content[0].type",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]}),
            "input[0].content[0].text",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}),
            "input[0].call_id",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
        ),
        (json!({"model": "m"}), "input"),
        (
            json!({"model": "m", "input": "Hi", "reasoning": {"effort": "huge"}}),
            "reasoning.effort",
        ),
    ];
    for (body, param) in cases {
        let r = post(gw, &body).await;
        assert_eq!(r.status(), 400, "{body}");
        let err: Value = r.json().await.expect("json");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert_eq!(err["error"]["param"], param, "{err}");
        assert!(err["error"]["message"].is_string());
    }
    assert_eq!(v.an.count(), 0, "nothing malformed reached the vendor");
    // Compaction needs a Responses-native provider.
    let r = gw
        .post(
            "/v1/responses/compact",
            &[("authorization", &format!("Bearer {TOKEN}"))],
            &json!({"model": "m", "input": "Hi"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.expect("json");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("natively"),
        "{err}"
    );
}

#[tokio::test]
async fn native_providers_get_the_body_unchanged_at_responses() {
    let oa = MockOpenAi::start("oai").await;
    let toml = typed_provider(
        "openai",
        "oai",
        &oa.base_url(),
        &[OA_KEY],
        "responses = \"native\"\nmodel_map = { \"alias\" = \"gpt-5\" }",
    );
    let gw = Gateway::start(&toml).await;
    let body = json!({"model": "gpt-5", "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        "store": false, "include": ["reasoning.encrypted_content"], "tools": [{"type": "custom", "name": "apply_patch"}]});
    let bytes = serde_json::to_vec(&body).expect("json");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/responses"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(bytes.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["object"], "response");
    let seen = &oa.requests()[0];
    assert_eq!(seen.route(), "/v1/responses");
    assert_eq!(seen.body, bytes, "byte for byte");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some(&*format!("Bearer {OA_KEY}"))
    );

    // Aliasing rewrites the model only; streams relay the vendor's events.
    let r = post(
        &gw,
        &json!({"model": "alias", "input": "Hi", "stream": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.expect("body"));
    assert_eq!(evs.last().map(|e| e.0.as_str()), Some("response.completed"));
    let sent = oa.requests()[1].json();
    assert_eq!(
        sent,
        json!({"model": "gpt-5", "input": "Hi", "stream": true})
    );
    // The request log has the usage of the relayed `response.completed`.
    gw.wait_log("prompt_tokens=11", std::time::Duration::from_secs(5))
        .await;
    assert!(
        gw.logs().lines().any(|l| l.contains("stream=true")
            && l.contains("prompt_tokens=11")
            && l.contains("completion_tokens=3")),
        "usage of the native stream is logged: {}",
        gw.logs()
    );
    // ... and a request-log row in the store, like every chat route's.
    let mut rows = serde_json::Value::Null;
    for _ in 0..50 {
        rows = reqwest::Client::new()
            .get(gw.url("/api/logs?limit=50"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("logs")
            .json()
            .await
            .expect("json");
        if rows.to_string().contains("\"prompt_tokens\":11") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        (rows["items"].as_array().into_iter().flatten())
            .any(|r| r["prompt_tokens"] == 11 && r["completion_tokens"] == 3),
        "a Responses request has its log row: {rows}"
    );

    // Chat clients on a native provider keep its chat endpoint.
    let r = gw
        .chat(&json!({"model": "gpt-5", "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(oa.requests()[2].route(), "/v1/chat/completions");

    // Compaction passes through too.
    let r = post_to(
        &gw,
        "/v1/responses/compact",
        &json!({"model": "gpt-5", "input": "Hi"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(oa.requests()[3].route(), "/v1/responses/compact");
}

async fn post_to(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    gw.post(path, &[("authorization", &format!("Bearer {TOKEN}"))], body)
        .await
}

#[tokio::test]
async fn a_codex_turn_is_served_by_every_vendor_and_passed_through_natively() {
    let body: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/codex_responses_request.json"
        ))
        .expect("fixture"),
    )
    .expect("json");
    let v = vendors().await;
    for (kind, gw) in &v.gws {
        let r = post(gw, &body).await;
        assert_eq!(r.status(), 200, "{kind}");
        let evs = events(&r.text().await.expect("body"));
        check_sequence(kind, &evs);
        let sent = v.last_sent(kind);
        let text = sent.to_string();
        // OpenAI's own encrypted reasoning is not for another vendor; the
        // hosted web_search tool cannot run there.
        assert!(!text.contains("gAAAAA"), "{kind}: {text}");
        assert!(!text.contains("web_search"), "{kind}: {text}");
        for want in [
            "Begin Patch",
            "README.md\\nsrc",
            "You are Codex",
            "permissions instructions",
            "Thanks, now run the tests.",
        ] {
            assert!(text.contains(want), "{kind}: {want} missing in {text}");
        }
        let tools = match *kind {
            "gemini" => sent["tools"][0]["functionDeclarations"].clone(),
            _ => sent["tools"].clone(),
        };
        assert_eq!(tools.as_array().map(Vec::len), Some(3), "{kind}: {tools}");
    }
    // Sent unchanged to a Responses-native provider.
    let oa = MockOpenAi::start("oai").await;
    let toml = typed_provider(
        "openai",
        "oai",
        &oa.base_url(),
        &[OA_KEY],
        "responses = \"native\"",
    );
    let gw = Gateway::start(&toml).await;
    let r = post(&gw, &body).await;
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.expect("body"));
    assert_eq!(evs.last().map(|e| e.0.as_str()), Some("response.completed"));
    assert_eq!(oa.requests()[0].json(), body);
}

/// The real Codex CLI (`codex exec`, a prompt with one tool round) against
/// the gateway in front of each vendor mock: OpenAI chat (the vLLM /
/// DeepSeek case), Anthropic and Gemini translated, and a Responses-native
/// OpenAI passed through. Runs when `LLMO_AGENTS_BIN` names the folder
/// holding `codex` (e.g. `node_modules/.bin` of `npm i @openai/codex`);
/// skipped, saying so, when it is unset.
#[tokio::test]
async fn codex_cli_completes_a_prompt_through_the_gateway() {
    let Some(bin) = support::agents_bin("codex") else {
        eprintln!("skipped: no `codex` in LLMO_AGENTS_BIN or tests/agents (./scripts/bootstrap test installs it)");
        return;
    };
    let v = vendors().await;
    for (kind, gw) in &v.gws {
        // A tool loop: the model runs a command, then answers.
        v.push(
            kind,
            Reply::tool_call("exec_command", r#"{"cmd":"echo codex-was-here"}"#),
        );
        v.push(kind, Reply::Complete);
        let before = match *kind {
            "openai" => v.oa.count(),
            "anthropic" => v.an.count(),
            _ => v.ge.count(),
        };
        let text = codex(&bin, gw).await;
        let name = match *kind {
            "openai" => "oai",
            "anthropic" => "claude",
            _ => "gem",
        };
        assert!(
            text.contains(&format!("Hello from {name}")),
            "{kind}: codex output:\n{text}\ngateway log:\n{}",
            gw.logs()
        );
        let reqs = match *kind {
            "openai" => v.oa.requests(),
            "anthropic" => v.an.requests(),
            _ => v.ge.requests(),
        };
        assert_eq!(reqs.len(), before + 2, "{kind}: two model calls");
        let second = reqs[before + 1].json().to_string();
        assert!(
            second.contains("codex-was-here"),
            "{kind}: the command's output went back: {second}"
        );
    }
    // Responses-native: the body passes through to /v1/responses.
    let oa = MockOpenAi::start("oai").await;
    oa.push(Reply::tool_call(
        "exec_command",
        r#"{"cmd":"echo codex-was-here"}"#,
    ));
    oa.push(Reply::Complete);
    let toml = typed_provider(
        "openai",
        "oai",
        &oa.base_url(),
        &[OA_KEY],
        "responses = \"native\"",
    );
    let gw = Gateway::start(&toml).await;
    let text = codex(&bin, &gw).await;
    assert!(
        text.contains("Hello from oai"),
        "native: codex output:\n{text}\ngateway log:\n{}",
        gw.logs()
    );
    let reqs = oa.requests();
    assert!(reqs.iter().all(|r| r.route() == "/v1/responses"), "native");
    assert!(
        reqs.len() >= 2 && reqs[1].json().to_string().contains("codex-was-here"),
        "native"
    );
}

/// `codex exec "Say hello"` with a temporary home whose config points a
/// model provider at `gw` (`wire_api = "responses"`); its output.
async fn codex(bin: &str, gw: &Gateway) -> String {
    let home = tempfile::tempdir().expect("tempdir");
    let codex_home = home.path().join(".codex");
    std::fs::create_dir_all(&codex_home).expect("mkdir");
    let config = format!(
        "model = \"gpt-5-codex\"\nmodel_provider = \"gateway\"\n\n[model_providers.gateway]\nname = \"gateway\"\nbase_url = {:?}\nenv_key = \"LLMO_TEST_TOKEN\"\nwire_api = \"responses\"\n\n[analytics]\nenabled = false\n",
        gw.url("/v1")
    );
    std::fs::write(codex_home.join("config.toml"), config).expect("config");
    let work = tempfile::tempdir().expect("workdir");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(format!("{bin}/codex"))
            .args([
                "exec",
                "--skip-git-repo-check",
                "--sandbox",
                "read-only",
                "Say hello",
            ])
            .current_dir(work.path())
            .env("HOME", home.path())
            .env("CODEX_HOME", &codex_home)
            .env("LLMO_TEST_TOKEN", TOKEN)
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("codex finished in time")
    .expect("codex runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn namespace_tools_are_flattened_for_vendors_and_split_back() {
    let v = vendors().await;
    let tools = json!([{"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents",
        "tools": [{"type": "function", "name": "close_agent", "parameters": {"type": "object", "properties": {"target": {"type": "string"}}}}]}]);
    for (kind, gw) in &v.gws {
        v.push(
            kind,
            Reply::tool_call("multi_agent_v1__close_agent", r#"{"target":"a1"}"#),
        );
        let r = post(
            gw,
            &json!({"model": "m", "input": "Close it", "tools": tools}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}");
        let body: Value = r.json().await.expect("json");
        let call = item_of(&body["output"], "function_call").clone();
        assert_eq!(call["namespace"], "multi_agent_v1", "{kind}: {body}");
        assert_eq!(call["name"], "close_agent", "{kind}: {body}");
        let sent = v.last_sent(kind).to_string();
        assert!(
            sent.contains("multi_agent_v1__close_agent"),
            "{kind}: {sent}"
        );

        let r = post(
            gw,
            &json!({"model": "m", "tools": tools, "input": [
                {"role": "user", "content": "Close it"}, call,
                {"type": "function_call_output", "call_id": call["call_id"], "output": "closed"}]}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind}");
        let sent = v.last_sent(kind).to_string();
        assert!(
            sent.matches("multi_agent_v1__close_agent").count() >= 2,
            "{kind}: the call went back under the flat name: {sent}"
        );
    }
}

#[tokio::test]
async fn gemini_call_signatures_ride_in_a_reasoning_item_and_go_back_on_the_call() {
    let v = vendors().await;
    let gw = &v.gws[2].1;
    let tools = json!([{"type": "function", "name": "f", "parameters": {"type": "object"}}]);
    for stream in [false, true] {
        v.ge.push(Reply::tool_call("f", r#"{"a":1}"#));
        let r = post(
            gw,
            &json!({"model": "m", "input": "Hi", "tools": tools, "stream": stream,
                    "include": ["reasoning.encrypted_content"], "store": false}),
        )
        .await;
        let text = r.text().await.expect("body");
        let output = if stream {
            let evs = events(&text);
            check_sequence("gemini", &evs);
            evs[evs.len() - 1].1["response"]["output"].clone()
        } else {
            serde_json::from_str::<Value>(&text).expect("json")["output"].clone()
        };
        let items = output.as_array().expect("output");
        let at = items
            .iter()
            .position(|i| i["type"] == "function_call")
            .expect("call");
        let sig = &items[at + 1];
        assert_eq!(sig["type"], "reasoning", "{output}");
        let enc = sig["encrypted_content"].as_str().unwrap_or("");
        assert!(enc.starts_with("gw1:gemini:c:c2lnX"), "{output}");

        // Back to Gemini: the signature is on the functionCall part.
        let mut input = vec![json!({"role": "user", "content": "Hi"})];
        input.extend(items.iter().cloned());
        input.push(json!({"type": "function_call_output", "call_id": items[at]["call_id"], "output": "ok"}));
        let r = post(gw, &json!({"model": "m", "input": input, "tools": tools})).await;
        assert_eq!(r.status(), 200);
        let sent = v.last_sent("gemini");
        let part = &sent["contents"][1]["parts"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p.get("functionCall").is_some()))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            part["thoughtSignature"].as_str(),
            enc.strip_prefix("gw1:gemini:c:"),
            "{sent}"
        );
    }
}
