//! The usage and cost ledger (issue #17): every vendor's token classes,
//! streamed and whole, same-format and translated, priced by the price
//! table into integer micro-dollars in the request-log row, `/api/stats`
//! and `/metrics`.
//!
//! Costs are computed by hand below from the vendors' public prices in
//! src/ledger/prices.toml (USD per million tokens, so tokens x price is
//! micro-dollars).

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{typed_provider, Gateway, TOKEN};
use support::mock_anthropic::MockAnthropic;
use support::mock_gemini::MockGemini;
use support::mock_http::MockUsage;
use support::mock_openai::MockOpenAi;

/// The token classes OpenAI and Gemini report (no cache writes).
const NO_WRITES: MockUsage = MockUsage {
    input: 1000,
    cached_read: 4000,
    cache_write_5m: 0,
    cache_write_1h: 0,
    output: 300,
    reasoning: 200,
};
/// Every class Anthropic reports (its thinking is part of output).
const ALL: MockUsage = MockUsage {
    input: 1000,
    cached_read: 4000,
    cache_write_5m: 2000,
    cache_write_1h: 500,
    output: 300,
    reasoning: 200,
};

/// gpt-4o: input 2.50, cached 1.25, output 10.00 (reasoning as output).
const GPT_4O: u64 = 1000 * 5 / 2 + 4000 * 5 / 4 + 300 * 10 + 200 * 10;
/// o4-mini as configured below: input 1.10, cached 0.275, output 4.40,
/// reasoning 8.00 (priced apart).
const O4_MINI: u64 = 1000 * 11 / 10 + 4000 * 275 / 1000 + 300 * 44 / 10 + 200 * 8;
/// claude-sonnet-4-5: input 3, cache read 0.30, 5 min write 3.75, 1 h
/// write 6, output 15 (thinking included).
const SONNET: u64 = 1000 * 3 + 4000 * 3 / 10 + 2000 * 375 / 100 + 500 * 6 + 500 * 15;
/// gemini-2.5-flash: input 0.30, cached 0.03, output 2.50 (thoughts
/// included).
const FLASH: u64 = 1000 * 3 / 10 + 4000 * 3 / 100 + 300 * 25 / 10 + 200 * 25 / 10;

struct Setup {
    openai: MockOpenAi,
    anthropic: MockAnthropic,
    gemini: MockGemini,
    gw: Gateway,
}

async fn setup() -> Setup {
    let openai = MockOpenAi::start("oa").await;
    let anthropic = MockAnthropic::start("an").await;
    let gemini = MockGemini::start("ge").await;
    openai.set_usage(Some(NO_WRITES));
    anthropic.set_usage(Some(ALL));
    gemini.set_usage(Some(NO_WRITES));
    let toml = format!(
        "{}{}{}\n[[prices]]\nmodel = \"o4-mini*\"\ninput = 1.10\ncached_read = 0.275\noutput = 4.40\nreasoning = 8.00\n",
        typed_provider(
            "openai",
            "oa",
            &openai.base_url(),
            &["sk-openai-0000000000001"],
            "models = [\"gpt-4o\", \"o4-mini\"]"
        ),
        typed_provider(
            "anthropic",
            "an",
            &anthropic.base_url(),
            &["sk-ant-api03-000000000001"],
            "models = [\"claude-sonnet-4-5\"]"
        ),
        typed_provider(
            "gemini",
            "ge",
            &gemini.base_url(),
            &["AIzaSy-gemini-0000000001"],
            "models = [\"gemini-2.5-flash\"]"
        ),
    );
    let gw = Gateway::start(&toml).await;
    Setup {
        openai,
        anthropic,
        gemini,
        gw,
    }
}

/// What one exchange must record.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Want {
    prompt: u64,
    completion: u64,
    cached: u64,
    write: u64,
    write_1h: u64,
    reasoning: u64,
    cost: u64,
}

const OPENAI_WANT: Want = Want {
    prompt: 5000,
    completion: 500,
    cached: 4000,
    write: 0,
    write_1h: 0,
    reasoning: 200,
    cost: GPT_4O,
};
const ANTHROPIC_WANT: Want = Want {
    prompt: 7500,
    completion: 500,
    cached: 4000,
    write: 2500,
    write_1h: 500,
    reasoning: 0,
    cost: SONNET,
};
const GEMINI_WANT: Want = Want {
    prompt: 5000,
    completion: 500,
    cached: 4000,
    write: 0,
    write_1h: 0,
    reasoning: 200,
    cost: FLASH,
};

fn id() -> String {
    format!("ledger-{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Send one request in a client API, read the whole answer; returns the
/// request id and the answer text.
async fn send(gw: &Gateway, api: &str, model: &str, stream: bool, usage: bool) -> (String, String) {
    let rid = id();
    let client = reqwest::Client::new();
    let req = match api {
        "openai" => {
            let mut body = json!({"model": model, "stream": stream,
                "messages": [{"role": "user", "content": "Hi"}]});
            if usage {
                body["stream_options"] = json!({"include_usage": true});
            }
            client
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(TOKEN)
                .json(&body)
        }
        "anthropic" => client
            .post(gw.url("/v1/messages"))
            .header("x-api-key", TOKEN)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": "Hi"}]})),
        _ => {
            let path = match stream {
                true => format!("/v1beta/models/{model}:streamGenerateContent?alt=sse"),
                false => format!("/v1beta/models/{model}:generateContent"),
            };
            client
                .post(gw.url(&path))
                .header("x-goog-api-key", TOKEN)
                .json(&json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}))
        }
    };
    let r = req
        .header("x-request-id", &rid)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("reached the gateway");
    assert_eq!(r.status(), 200, "{api} {model} stream={stream}");
    (rid, r.text().await.expect("answer"))
}

/// The request-log row of `rid`, once the writer has stored it.
async fn row(gw: &Gateway, rid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = reqwest::Client::new()
            .get(gw.url("/api/logs?limit=1000"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("logs")
            .json()
            .await
            .expect("json");
        if let Some(r) = page["items"]
            .as_array()
            .and_then(|items| items.iter().find(|r| r["request_id"] == rid))
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "no row for {rid}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn recorded(r: &Value) -> Want {
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    Want {
        prompt: n("prompt_tokens"),
        completion: n("completion_tokens"),
        cached: n("cached_tokens"),
        write: n("cache_write_tokens"),
        write_1h: n("cache_write_1h_tokens"),
        reasoning: n("reasoning_tokens"),
        cost: n("cost_micros"),
    }
}

#[test]
fn hand_computed_costs() {
    // The constants above, spelled out once more in dollars.
    assert_eq!(GPT_4O, 12_500); // $0.0125
    assert_eq!(O4_MINI, 5_120);
    assert_eq!(SONNET, 22_200); // $0.0222
    assert_eq!(FLASH, 1_670);
}

/// Each vendor, each token class, streamed and whole, in the vendor's own
/// client API (same-format pass-through: the usage sniffer) and through
/// another client API (translation: the egress adapter): the same usage
/// and the hand-computed cost every time.
#[tokio::test]
async fn every_vendor_and_token_class_is_priced_streamed_and_whole() {
    let s = setup().await;
    let cases: [(&str, &str, Want); 6] = [
        ("openai", "gpt-4o", OPENAI_WANT),
        ("anthropic", "gpt-4o", OPENAI_WANT),
        ("anthropic", "claude-sonnet-4-5", ANTHROPIC_WANT),
        ("openai", "claude-sonnet-4-5", ANTHROPIC_WANT),
        ("gemini", "gemini-2.5-flash", GEMINI_WANT),
        ("openai", "gemini-2.5-flash", GEMINI_WANT),
    ];
    for (api, model, want) in cases {
        for stream in [false, true] {
            let (rid, _) = send(&s.gw, api, model, stream, true).await;
            let r = row(&s.gw, &rid).await;
            assert_eq!(
                recorded(&r),
                want,
                "{api} client, {model}, stream={stream}: {r}"
            );
        }
    }
    // A configured price wins over the built-in one, and prices reasoning
    // apart from output.
    let (rid, _) = send(&s.gw, "openai", "o4-mini", false, false).await;
    assert_eq!(recorded(&row(&s.gw, &rid).await).cost, O4_MINI);

    // /api/stats by model: the costs add up per model.
    let stats: Value = reqwest::Client::new()
        .get(s.gw.url("/api/stats?group_by=model"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let by = |m: &str| {
        stats["data"]
            .as_array()
            .and_then(|d| d.iter().find(|r| r["group"] == m))
            .cloned()
            .unwrap_or_else(|| panic!("no {m} row: {stats}"))
    };
    assert_eq!(by("gpt-4o")["cost_micros"], 4 * GPT_4O, "{stats}");
    assert_eq!(by("claude-sonnet-4-5")["cost_micros"], 4 * SONNET);
    assert_eq!(by("claude-sonnet-4-5")["cache_write_tokens"], 4 * 2500);
    assert_eq!(by("gemini-2.5-flash")["reasoning_tokens"], 4 * 200);
    assert_eq!(by("o4-mini")["cost_micros"], O4_MINI);
    // By provider too.
    let stats: Value = reqwest::Client::new()
        .get(s.gw.url("/api/stats?group_by=provider"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let an = stats["data"]
        .as_array()
        .and_then(|d| d.iter().find(|r| r["group"] == "an"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(an["cost_micros"], 4 * SONNET, "{stats}");

    // /metrics: billed tokens by class and cost, per provider and model.
    let metrics = reqwest::Client::new()
        .get(s.gw.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "llm_billed_tokens_total{provider=\"an\",model=\"claude-sonnet-4-5\",class=\"cache_write_1h\"} 2000"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("llm_cost_usd_total{provider=\"an\",model=\"claude-sonnet-4-5\"} 0.088800"),
        "{metrics}"
    );
    drop((s.openai, s.anthropic, s.gemini));
}

/// An OpenAI client that streams without `stream_options.include_usage`
/// gets no usage chunk, yet the request is recorded with its usage: the
/// vendor was asked for it.
#[tokio::test]
async fn a_stream_without_include_usage_is_recorded_and_gets_no_usage_chunk() {
    let s = setup().await;
    let (rid, text) = send(&s.gw, "openai", "gpt-4o", true, false).await;
    assert!(text.contains("Hello"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(
        !text.contains("\"prompt_tokens\""),
        "a usage chunk reached the client: {text}"
    );
    let sent = s.openai.requests().last().expect("vendor call").json();
    assert_eq!(sent["stream_options"]["include_usage"], true, "{sent}");
    assert_eq!(recorded(&row(&s.gw, &rid).await), OPENAI_WANT);

    // The same through the translating path (another vendor's stream):
    // still no usage chunk, still recorded.
    let (rid, text) = send(&s.gw, "openai", "claude-sonnet-4-5", true, false).await;
    assert!(!text.contains("\"prompt_tokens\""), "{text}");
    assert_eq!(recorded(&row(&s.gw, &rid).await), ANTHROPIC_WANT);
}

/// A client that hangs up mid-stream: what the vendor had reported is
/// recorded (Anthropic's message_start carries the prompt's classes).
#[tokio::test]
async fn a_client_disconnect_records_partial_usage() {
    let s = setup().await;
    s.anthropic.set_stream_delay(Duration::from_millis(300));
    let rid = id();
    let mut r = reqwest::Client::new()
        .post(s.gw.url("/v1/messages"))
        .header("x-api-key", TOKEN)
        .header("anthropic-version", "2023-06-01")
        .header("x-request-id", &rid)
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), 200);
    // Two chunks (message_start, the first block), then hang up.
    let mut seen = String::new();
    while !seen.contains("content_block_start") {
        let chunk = r.chunk().await.expect("chunk").expect("more");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(r);
    let got = recorded(&row(&s.gw, &rid).await);
    // The prompt's classes and message_start's 1 output token.
    let partial = 1000 * 3 + 4000 * 3 / 10 + 2000 * 375 / 100 + 500 * 6 + 15;
    assert_eq!(
        got,
        Want {
            completion: 1,
            cost: partial,
            ..ANTHROPIC_WANT
        }
    );
}

/// `PUT /api/prices` replaces the API's entries, which win over the file's
/// and the built-in ones at once (the next request is priced by them);
/// bad entries are refused with their path; the write is audited.
#[tokio::test]
async fn prices_set_through_the_api_apply_to_the_next_request() {
    let s = setup().await;
    let client = reqwest::Client::new();
    let put = |body: Value| {
        client
            .put(s.gw.url("/api/prices"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let r = put(
        json!({"prices": [{"model": "gpt-4o", "input": 1.0, "output": 2.0, "cached_read": -1}]}),
    )
    .await
    .expect("put");
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["error"]["fields"][0]["field"], "prices[0].cached_read",
        "{body}"
    );

    let r = put(
        json!({"prices": [{"model": "gpt-4o", "provider": "oa", "input": 1.0, "output": 2.0}]}),
    )
    .await
    .expect("put");
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.expect("json");
    assert_eq!(list["data"][0]["source"], "api", "{list}");
    assert_eq!(list["data"][1]["model"], "o4-mini*", "{list}");
    assert_eq!(list["data"][1]["source"], "file", "{list}");
    assert_eq!(list["data"][2]["source"], "default", "{list}");
    assert_eq!(list["defaults_as_of"], "2025-11-30");

    // Cached reads default to the input price: 5000 x 1 + 500 x 2.
    let (rid, _) = send(&s.gw, "openai", "gpt-4o", false, false).await;
    assert_eq!(recorded(&row(&s.gw, &rid).await).cost, 6000);

    let audit: Value = client
        .get(s.gw.url("/api/audit"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert!(
        audit["data"].as_array().is_some_and(|rows| rows
            .iter()
            .any(|r| r["path"] == "/api/prices" && r["status"] == 200)),
        "{audit}"
    );

    // `[]` goes back to the file's and the built-in prices.
    assert_eq!(put(json!({"prices": []})).await.expect("put").status(), 200);
    let (rid, _) = send(&s.gw, "openai", "gpt-4o", false, false).await;
    assert_eq!(recorded(&row(&s.gw, &rid).await).cost, GPT_4O);
}

/// The official `openai` and `anthropic` SDKs with a client key: whole and
/// streamed, with and without `include_usage`; the key's rows in
/// `/api/stats?group_by=key` add up to the hand-computed costs.
#[tokio::test]
async fn sdk_requests_are_recorded_per_key() {
    let s = setup().await;
    let client = reqwest::Client::new();
    let (secret, _) = s.gw.create_key(json!({"name": "sdk app"})).await;
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(format!(
                "{}/tests/sdk/ledger_sdk.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .args([s.gw.base.as_str(), &secret, "gpt-4o", "claude-sonnet-4-5"])
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
    assert!(out.status.success(), "{output}\n{}", s.gw.logs());
    // The master token's request is grouped apart.
    send(&s.gw, "openai", "gpt-4o", false, false).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats: Value = client
            .get(s.gw.url("/api/stats?group_by=key"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        let rows = stats["data"].as_array().cloned().unwrap_or_default();
        let key = rows
            .iter()
            .find(|r| r["group"].as_str().is_some_and(|g| g.contains("sdk app")));
        let master = rows.iter().find(|r| r["group"].is_null());
        if let (Some(key), Some(master)) = (key, master) {
            if key["requests"] == 5 && master["requests"] == 1 {
                assert_eq!(key["cost_micros"], 3 * GPT_4O + 2 * SONNET, "{stats}");
                assert_eq!(key["cache_write_tokens"], 2 * 2500, "{stats}");
                assert_eq!(master["cost_micros"], GPT_4O, "{stats}");
                break;
            }
        }
        assert!(Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An OpenAI-format stream reports usage only at its end: a client that
/// hangs up before it still gets its prompt counted (the documented
/// estimate), priced as uncached input.
#[tokio::test]
async fn a_client_disconnect_before_openai_usage_records_the_estimated_prompt() {
    let s = setup().await;
    s.openai.set_stream_delay(Duration::from_millis(300));
    let rid = id();
    let mut r = reqwest::Client::new()
        .post(s.gw.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("x-request-id", &rid)
        .json(&json!({"model": "gpt-4o", "stream": true,
            "messages": [{"role": "user", "content": "Tell me a long story about the sea."}]}))
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.expect("chunk").expect("first chunk");
    assert!(!first.is_empty());
    drop(r);
    let row = row(&s.gw, &rid).await;
    assert_eq!(row["outcome"], "client_gone", "{row}");
    let prompt = row["prompt_tokens"].as_u64().expect("prompt estimated");
    assert!(prompt > 0, "{row}");
    assert_eq!(row["completion_tokens"], 0, "{row}");
    // gpt-4o input: 2.50 USD per million tokens.
    assert_eq!(
        row["cost_micros"],
        (prompt * 2_500_000 + 500_000) / 1_000_000,
        "{row}"
    );
}
