//! Google's Gemini API as a client API, through the real gateway against
//! each vendor mock: Gemini vendors pass through (key swapped), OpenAI and
//! Anthropic vendors are translated.

mod support;

use serde_json::{json, Value};
use support::gateway::{typed_provider, Gateway, TOKEN};
use support::mock_anthropic::MockAnthropic;
use support::mock_gemini::MockGemini;
use support::mock_openai::{MockOpenAi, Recorded, Reply};

const KEYS: [(&str, &str); 3] = [
    ("openai", "sk-openai-0000000000001"),
    ("anthropic", "sk-ant-api03-000000000001"),
    ("gemini", "AIzaSy-gemini-0000000001"),
];

/// One vendor mock of any kind, behind one handle.
enum Mock {
    OpenAi(MockOpenAi),
    Anthropic(MockAnthropic),
    Gemini(MockGemini),
}

impl Mock {
    async fn start(kind: &str, name: &str) -> Mock {
        match kind {
            "openai" => Mock::OpenAi(MockOpenAi::start(name).await),
            "anthropic" => Mock::Anthropic(MockAnthropic::start(name).await),
            _ => Mock::Gemini(MockGemini::start(name).await),
        }
    }
    fn base_url(&self) -> String {
        match self {
            Mock::OpenAi(m) => m.base_url(),
            Mock::Anthropic(m) => m.base_url(),
            Mock::Gemini(m) => m.base_url(),
        }
    }
    fn push(&self, r: Reply) {
        match self {
            Mock::OpenAi(m) => m.push(r),
            Mock::Anthropic(m) => m.push(r),
            Mock::Gemini(m) => m.push(r),
        }
    }
    fn requests(&self) -> Vec<Recorded> {
        match self {
            Mock::OpenAi(m) => m.requests(),
            Mock::Anthropic(m) => m.requests(),
            Mock::Gemini(m) => m.requests(),
        }
    }
}

/// A gateway with one provider of `kind` serving `m-test`.
async fn setup(kind: &str) -> (Mock, Gateway) {
    let mock = Mock::start(kind, kind).await;
    let key = KEYS.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v);
    let toml = typed_provider(
        kind,
        "p",
        &mock.base_url(),
        &[key.unwrap_or_default()],
        "models = [\"m-test\"]",
    );
    let gw = Gateway::start(&toml).await;
    (mock, gw)
}

async fn call(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    gw.post(path, &[("x-goog-api-key", TOKEN)], body).await
}

fn hello() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.2, "stopSequences": ["END"]},
    })
}

fn texts(resp: &Value) -> String {
    (resp["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten())
    .filter(|p| p["thought"] != json!(true))
    .filter_map(|p| p["text"].as_str())
    .collect()
}

/// `data:` events of an SSE body, as JSON.
fn sse_chunks(text: &str) -> Vec<Value> {
    text.split("\r\n\r\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an SSE data event: {e:?}"));
            serde_json::from_str(data).unwrap_or_else(|err| panic!("bad chunk {data}: {err}"))
        })
        .collect()
}

#[tokio::test]
async fn generate_content_is_served_by_every_vendor_type() {
    for (kind, key) in KEYS {
        let (mock, gw) = setup(kind).await;
        let r = call(&gw, "/v1beta/models/m-test:generateContent", &hello()).await;
        assert_eq!(r.status(), 200, "{kind}");
        let v: Value = r.json().await.expect("json");
        assert_eq!(texts(&v), format!("Hello from {kind}"), "{kind}: {v}");
        assert_eq!(v["candidates"][0]["finishReason"], "STOP", "{kind}: {v}");
        assert_eq!(v["candidates"][0]["content"]["role"], "model", "{kind}");
        let usage = &v["usageMetadata"];
        assert!(
            usage["promptTokenCount"].as_u64().unwrap_or(0) > 0,
            "{kind}: {v}"
        );
        assert!(
            usage["totalTokenCount"].as_u64().unwrap_or(0) > 0,
            "{kind}: {v}"
        );
        assert!(
            v["responseId"].is_string() && v["modelVersion"].is_string(),
            "{v}"
        );

        let seen = &mock.requests()[0];
        let body = seen.json();
        match kind {
            "openai" => {
                assert_eq!(body["model"], "m-test");
                assert_eq!(body["messages"][0]["role"], "system");
                assert_eq!(body["messages"][0]["content"], "Be brief.");
                assert_eq!(body["stop"], json!(["END"]));
                assert_eq!(
                    seen.header("authorization").as_deref(),
                    Some(&*format!("Bearer {key}"))
                );
            }
            "anthropic" => {
                assert_eq!(body["model"], "m-test");
                assert_eq!(body["max_tokens"], 64);
                assert_eq!(seen.header("x-api-key").as_deref(), Some(key));
                assert!(body["system"].to_string().contains("Be brief."), "{body}");
            }
            _ => {
                // Pass-through: the client's bytes, the vendor's key, the
                // model in the URL.
                assert_eq!(seen.body, serde_json::to_vec(&hello()).expect("json"));
                assert_eq!(seen.route(), "/v1beta/models/m-test:generateContent");
                assert_eq!(seen.header("x-goog-api-key").as_deref(), Some(key));
            }
        }
    }
}

fn weather_tools() -> Value {
    json!([{"functionDeclarations": [{
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
    }]}])
}

#[tokio::test]
async fn function_calling_over_two_turns_on_every_vendor_type() {
    for (kind, _) in KEYS {
        let (mock, gw) = setup(kind).await;
        mock.push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
        mock.push(Reply::Complete);
        let user = json!({"role": "user", "parts": [{"text": "Weather in Paris?"}]});
        let first = json!({
            "contents": [user],
            "tools": weather_tools(),
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        });
        let r = call(&gw, "/v1beta/models/m-test:generateContent", &first).await;
        assert_eq!(r.status(), 200, "{kind}");
        let v: Value = r.json().await.expect("json");
        let parts = v["candidates"][0]["content"]["parts"].clone();
        let part = (parts.as_array().into_iter().flatten())
            .find(|p| p.get("functionCall").is_some())
            .unwrap_or_else(|| panic!("{kind}: a function call: {v}"));
        let fc = &part["functionCall"];
        assert_eq!(fc["name"], "get_weather", "{kind}: {v}");
        assert_eq!(fc["args"], json!({"city": "Paris"}), "{kind}: {v}");
        if kind == "gemini" {
            assert_eq!(part["thoughtSignature"], "c2lnX001", "{v}");
        } else {
            assert!(fc["id"].is_string(), "{kind}: the call's id is kept: {v}");
            assert!(part.get("thoughtSignature").is_none(), "{kind}: {v}");
        }

        // The model's turn goes back as it came, with the function's answer.
        let second = json!({
            "contents": [
                user,
                {"role": "model", "parts": parts},
                {"role": "user", "parts": [{"functionResponse": {
                    "name": "get_weather", "id": fc["id"], "response": {"temperature": 21}}}]},
            ],
            "tools": weather_tools(),
        });
        let second = if kind == "gemini" {
            // Google's API has no call ids: pairing by name must do.
            let mut s = second;
            s["contents"][2]["parts"][0]["functionResponse"]
                .as_object_mut()
                .map(|o| o.remove("id"));
            s
        } else {
            second
        };
        let r = call(&gw, "/v1beta/models/m-test:generateContent", &second).await;
        assert_eq!(r.status(), 200, "{kind}");
        let v: Value = r.json().await.expect("json");
        assert_eq!(texts(&v), format!("Hello from {kind}"), "{kind}: {v}");

        let seen = mock.requests();
        let (one, two) = (seen[0].json(), seen[1].json());
        match kind {
            "openai" => {
                let params = &one["tools"][0]["function"]["parameters"];
                assert_eq!(
                    params["type"], "object",
                    "Google's upper-case types become JSON schema"
                );
                assert_eq!(params["properties"]["city"]["type"], "string");
                let call_id = &two["messages"][1]["tool_calls"][0]["id"];
                assert_eq!(call_id, &fc["id"]);
                assert_eq!(two["messages"][2]["role"], "tool");
                assert_eq!(&two["messages"][2]["tool_call_id"], call_id);
                assert_eq!(two["messages"][2]["content"], r#"{"temperature":21}"#);
            }
            "anthropic" => {
                assert_eq!(one["tools"][0]["input_schema"]["type"], "object");
                let tool_use = &two["messages"][1]["content"][1];
                assert_eq!(tool_use["type"], "tool_use");
                assert_eq!(tool_use["id"], fc["id"]);
                let result = &two["messages"][2]["content"][0];
                assert_eq!(result["type"], "tool_result");
                assert_eq!(result["tool_use_id"], fc["id"]);
            }
            _ => {
                assert_eq!(
                    two["contents"][1]["parts"][0]["thoughtSignature"], "c2lnX001",
                    "the signature goes back to Gemini: {two}"
                );
            }
        }
    }
}

#[tokio::test]
async fn streams_in_both_framings_on_every_vendor_type() {
    for (kind, _) in KEYS {
        let (mock, gw) = setup(kind).await;
        let path = "/v1beta/models/m-test:streamGenerateContent";
        let r = call(&gw, &format!("{path}?alt=sse"), &hello()).await;
        assert_eq!(r.status(), 200, "{kind}");
        let ct = r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "{kind}: {ct}");
        let chunks = sse_chunks(&r.text().await.expect("body"));
        assert!(chunks.len() >= 3, "{kind}: streamed in pieces: {chunks:?}");
        let text: String = chunks.iter().map(texts).collect();
        assert_eq!(text, format!("Hello from {kind}"), "{kind}");
        let last = chunks.last().expect("a chunk");
        assert_eq!(
            last["candidates"][0]["finishReason"], "STOP",
            "{kind}: {last}"
        );
        assert!(
            last["usageMetadata"]["totalTokenCount"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{last}"
        );

        let r = call(&gw, path, &hello()).await;
        assert_eq!(r.status(), 200, "{kind}");
        let ct = r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("application/json"), "{kind}: {ct}");
        let body = r.text().await.expect("body");
        assert!(
            body.starts_with("[{") && body.ends_with("}]"),
            "{kind}: {body}"
        );
        assert!(
            body.contains("}\r\n,{") || body.contains("},\r\n{"),
            "{kind}: Google's separators: {body}"
        );
        let array: Vec<Value> = serde_json::from_str(&body).expect("a JSON array");
        let text: String = array.iter().map(texts).collect();
        assert_eq!(text, format!("Hello from {kind}"), "{kind}");
        assert_eq!(
            array.last().expect("chunk")["candidates"][0]["finishReason"],
            "STOP"
        );

        if kind == "gemini" {
            // The gateway always asks Gemini for SSE.
            for seen in mock.requests() {
                assert_eq!(seen.query("alt"), Some("sse"), "{}", seen.path);
            }
        }
    }
}

#[tokio::test]
async fn stream_of_a_function_call_carries_it_whole() {
    for (kind, _) in KEYS {
        let (mock, gw) = setup(kind).await;
        mock.push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "Weather?"}]}], "tools": weather_tools()});
        let r = call(
            &gw,
            "/v1beta/models/m-test:streamGenerateContent?alt=sse",
            &body,
        )
        .await;
        let chunks = sse_chunks(&r.text().await.expect("body"));
        let calls: Vec<&Value> = (chunks.iter())
            .flat_map(|c| {
                c["candidates"][0]["content"]["parts"]
                    .as_array()
                    .into_iter()
                    .flatten()
            })
            .filter(|p| p.get("functionCall").is_some())
            .collect();
        assert_eq!(calls.len(), 1, "{kind}: {chunks:?}");
        assert_eq!(
            calls[0]["functionCall"]["args"],
            json!({"city": "Paris"}),
            "{kind}"
        );
        let last = chunks.last().expect("chunk");
        assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{kind}");
    }
}

/// `?key=` is percent-decoded: a token with `+`, `/` or `=` (as a base64
/// secret has) works when the client encodes it, as SDKs and curl do.
#[tokio::test]
async fn a_percent_encoded_query_key_is_decoded() {
    let mock = Mock::start("gemini", "gemini").await;
    let toml = typed_provider(
        "gemini",
        "p",
        &mock.base_url(),
        &["AIzaSy-gemini-0000000001"],
        "models = [\"m-test\"]",
    );
    let token = "tok+en/with=chars-0123456789";
    let gw = Gateway::start_with(&toml, &[("AUTH_TOKEN", token)]).await;
    let path = "/v1beta/models/m-test:generateContent";
    let client = reqwest::Client::new();
    let r = client
        .post(gw.url(&format!("{path}?key=tok%2Ben%2Fwith%3Dchars-0123456789")))
        .json(&hello())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200, "the encoded token is the token");
    let r = client
        .post(gw.url(&format!("{path}?key=tok%2Ben%2Fwith%3Dchars-012345678X")))
        .json(&hello())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn key_via_header_or_query_and_google_errors() {
    let (_mock, gw) = setup("gemini").await;
    let path = "/v1beta/models/m-test:generateContent";
    let client = reqwest::Client::new();

    let r = client
        .post(gw.url(&format!("{path}?key={TOKEN}")))
        .json(&hello())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200, "?key= is accepted");
    let r = gw
        .post(
            path,
            &[("authorization", &format!("Bearer {TOKEN}"))],
            &hello(),
        )
        .await;
    assert_eq!(r.status(), 200, "a bearer token is accepted");

    let r = client
        .post(gw.url(&format!("{path}?key=wrong-key")))
        .json(&hello())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], 401, "{v}");
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED", "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    let r = gw
        .post(path, &[("x-goog-api-key", "wrong")], &hello())
        .await;
    assert_eq!(r.status(), 401);
    let r = gw.post(path, &[], &hello()).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("x-goog-api-key"),
        "{v}"
    );

    let r = call(
        &gw,
        "/v1beta/models/no-such-model:generateContent",
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["status"], "NOT_FOUND", "{v}");
    assert_eq!(v["error"]["code"], 404, "{v}");

    for bad in [
        json!({"contents": "nope"}),
        json!([1, 2]),
        json!({"contents": []}),
    ] {
        let r = call(&gw, path, &bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["error"]["status"], "INVALID_ARGUMENT", "{v}");
    }
    let r = call(&gw, "/v1beta/models/m-test:unknownMethod", &hello()).await;
    assert_eq!(r.status(), 404);

    // The key in the URL is never written to the log.
    assert!(
        gw.wait_log(
            "/v1beta/models/m-test:generateContent",
            std::time::Duration::from_secs(5)
        )
        .await
    );
    assert!(
        !gw.logs().contains(TOKEN),
        "the token leaked into the log:\n{}",
        gw.logs()
    );
    assert!(
        !gw.logs().contains("wrong-key"),
        "a key leaked into the log"
    );
}

#[tokio::test]
async fn count_tokens_is_served_on_every_vendor_type() {
    let (mock, gw) = setup("gemini").await;
    let body =
        json!({"contents": [{"role": "user", "parts": [{"text": "How many tokens is this?"}]}]});
    let r = call(&gw, "/v1beta/models/m-test:countTokens", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["totalTokens"].as_u64().unwrap_or(0) > 0, "{v}");
    let seen = &mock.requests()[0];
    assert_eq!(seen.route(), "/v1beta/models/m-test:countTokens");
    assert_eq!(seen.header("x-goog-api-key").as_deref(), Some(KEYS[2].1));
    assert_eq!(seen.json(), body);
    // The vendor's own 400 is relayed as it is.
    let r = call(
        &gw,
        "/v1beta/models/m-test:countTokens",
        &json!({"bogus": 1}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT", "{v}");

    // OpenAI-compatible vendors have no counting call: the documented
    // estimate, nothing sent upstream.
    let (oai, gw) = setup("openai").await;
    let r = call(&gw, "/v1beta/models/m-test:countTokens", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    // "How many tokens is this?" = 24 bytes -> 6, + 3 per turn + 3.
    assert_eq!(v["totalTokens"], 12, "{v}");
    assert!(oai.requests().is_empty(), "no vendor call for an estimate");
    // Anthropic vendors count with their own count_tokens, translated.
    let (ant, gw) = setup("anthropic").await;
    let wrapped =
        json!({"generateContentRequest": {"model": "models/m-test", "contents": body["contents"]}});
    let r = call(&gw, "/v1beta/models/m-test:countTokens", &wrapped).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["totalTokens"].as_u64().unwrap_or(0) > 0, "{v}");
    let seen = &ant.requests()[0];
    assert_eq!(seen.route(), "/v1/messages/count_tokens");
    let sent = seen.json();
    assert_eq!(sent["messages"][0]["role"], "user", "{sent}");
    assert!(
        sent.to_string().contains("How many tokens is this?"),
        "{sent}"
    );
}

#[tokio::test]
async fn models_are_listed_in_googles_shape() {
    let (_mock, gw) = setup("openai").await;
    let client = reqwest::Client::new();
    let r = client
        .get(gw.url("/v1beta/models"))
        .header("x-goog-api-key", TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    let m = (v["models"].as_array().into_iter().flatten())
        .find(|m| m["name"] == "models/m-test")
        .unwrap_or_else(|| panic!("m-test listed: {v}"));
    assert_eq!(m["displayName"], "m-test");
    assert!(m["supportedGenerationMethods"]
        .as_array()
        .expect("methods")
        .contains(&json!("generateContent")));
    let r = client
        .get(gw.url("/v1beta/models/m-test"))
        .header("x-goog-api-key", TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["name"], "models/m-test");
    let r = client
        .get(gw.url("/v1beta/models/nope"))
        .header("x-goog-api-key", TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);
    let r = client
        .get(gw.url("/v1beta/models"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401, "listing needs the token too");
}

#[tokio::test]
async fn a_gemini_client_through_an_alias_is_re_encoded_for_gemini() {
    let mock = MockGemini::start("gemini").await;
    mock.push(Reply::Complete);
    let toml = format!(
        "[aliases]\nfast = \"m-test\"\n{}",
        typed_provider(
            "gemini",
            "p",
            &mock.base_url(),
            &[KEYS[2].1],
            "models = [\"m-test\"]"
        )
    );
    let gw = Gateway::start(&toml).await;
    let body = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnX009"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temperature": 21}}}]},
        ],
        "tools": weather_tools(),
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"maxOutputTokens": 32},
    });
    let r = call(&gw, "/v1beta/models/fast:generateContent", &body).await;
    assert_eq!(r.status(), 200, "{}", gw.logs());
    let v: Value = r.json().await.expect("json");
    assert_eq!(texts(&v), "Hello from gemini");
    let seen = &mock.requests()[0];
    assert_eq!(seen.route(), "/v1beta/models/m-test:generateContent");
    let sent = seen.json();
    let parts = &sent["contents"][1]["parts"][0];
    assert_eq!(parts["thoughtSignature"], "c2lnX009", "{sent}");
    assert_eq!(
        sent["contents"][2]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
    assert_eq!(
        sent["safetySettings"], body["safetySettings"],
        "Gemini extras reach Gemini"
    );
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 32);
}

#[tokio::test]
async fn usage_of_a_passed_through_gemini_answer_is_recorded() {
    let (_mock, gw) = setup("gemini").await;
    let r = call(
        &gw,
        "/v1beta/models/m-test:streamGenerateContent?alt=sse",
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    let seen = |gw: &Gateway| {
        gw.logs()
            .lines()
            .any(|l| l.contains(":streamGenerateContent") && l.contains("completion_tokens=3"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen(&gw) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        seen(&gw),
        "usageMetadata read off the relayed stream:\n{}",
        gw.logs()
    );
}

/// The real `@google/gemini-cli`, non-interactive, through the gateway in
/// front of the Gemini mock (temporary HOME, telemetry off, every endpoint
/// on loopback). Runs only when `LLMO_AGENTS_BIN` names the folder holding
/// the `gemini` executable (e.g. `node_modules/.bin`); skipped otherwise.
#[tokio::test]
async fn gemini_cli_completes_a_prompt_through_the_gateway() {
    let Some(bin) = support::agents_bin("gemini") else {
        eprintln!("skipped: no `gemini` in LLMO_AGENTS_BIN or tests/agents (./scripts/bootstrap test installs it)");
        return;
    };
    for (kind, key) in KEYS {
        gemini_cli_against(&bin, kind, key).await;
    }
}

async fn gemini_cli_against(bin: &str, kind: &str, key: &str) {
    let mock = Mock::start(kind, "gemini").await;
    let toml = typed_provider(
        kind,
        "p",
        &mock.base_url(),
        &[key],
        "models = [\"gemini-*\"]",
    );
    let gw = Gateway::start(&toml).await;
    let home = tempfile::tempdir().expect("temp dir");
    let settings = home.path().join(".gemini");
    std::fs::create_dir_all(&settings).expect("settings dir");
    std::fs::write(
        settings.join("settings.json"),
        json!({
            "privacy": {"usageStatisticsEnabled": false},
            "telemetry": {"enabled": false},
            "security": {"auth": {"selectedType": "gemini-api-key"}},
        })
        .to_string(),
    )
    .expect("settings");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(format!("{bin}/gemini"))
            .args([
                "-p",
                "Say hello",
                "-m",
                "gemini-2.5-flash",
                "--output-format",
                "text",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("GEMINI_API_KEY", TOKEN)
            .env("GOOGLE_GEMINI_BASE_URL", &gw.base)
            .env("GEMINI_TELEMETRY_ENABLED", "false")
            .env("NO_BROWSER", "true")
            .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
            .current_dir(home.path())
            .output(),
    )
    .await
    .expect("gemini-cli finished in time")
    .expect("gemini-cli runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let seen: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        out.status.success() && stdout.contains("Hello from gemini"),
        "gemini-cli on {kind} failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nmock saw: {seen:?}\ngateway log:\n{}",
        gw.logs()
    );
    if kind == "gemini" {
        for r in mock.requests() {
            assert_eq!(
                r.header("x-goog-api-key").as_deref(),
                Some(key),
                "{}",
                r.path
            );
        }
    }
    eprintln!("gemini-cli on {kind}: the vendor saw {seen:?}");
}
