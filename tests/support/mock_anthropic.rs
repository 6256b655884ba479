//! A mock Anthropic vendor: the Messages API wire format over the shared raw
//! HTTP/1.1 server in `mock_http`.
//!
//! Only `POST /v1/messages` consumes scripted [`Reply`]s; `GET /v1/models`
//! and unknown paths always answer the same way. Like the real API, known
//! paths first check the headers, without consuming a scripted reply:
//! - no `x-api-key` (or the value `bad-key`): 401 `authentication_error`
//!   "invalid x-api-key";
//! - no `anthropic-version`: 400 `invalid_request_error`
//!   "anthropic-version: header is required";
//! - a top-level field the Messages API does not have: 400
//!   `invalid_request_error` "<field>: Extra inputs are not permitted";
//!   no `max_tokens`: 400 "max_tokens: Field required".
//!
//! `POST /v1/messages/count_tokens` (same header checks; its own field
//! list: no `max_tokens`, `model` and `messages` required) answers
//! `{"input_tokens": <body bytes / 4>}` without consuming a reply.
//!
//! Thinking, as the API enforces it (documented): when a request enables
//! `thinking` and its last assistant message holds a `tool_use` (a tool
//! loop in progress), that message must start with a `thinking` or
//! `redacted_thinking` block; and every `thinking` block sent back must
//! carry a signature this mock issued (`sig_<k>`), else 400
//! `invalid_request_error`. With thinking enabled, a `ToolCall` reply
//! starts with a signed thinking block ("Checking the tool.").
//!
//! The k-th request (any path) is answered with ids `msg_k`, `toolu_k`,
//! signature `sig_k` and header `request-id: req_k`.
//!
//! Content replies (text "Hello from <name>", one `text_delta` per word):
//! - `Complete`: one text block, stop_reason "end_turn".
//! - `ToolCall`: a text block "Let me check." then a `tool_use` block
//!   (`input` = parsed arguments), stop_reason "tool_use"; streamed as a
//!   `tool_use` start with `input: {}`, then `input_json_delta`s: an empty
//!   one (as the real API sends) and 3 pieces of the arguments text.
//! - `Thinking`: a `thinking` block (signature `sig_<n>`) before the text;
//!   streamed as `thinking_delta`s per word then one `signature_delta`.
//! - `StreamError`: message_start, then `event: error` with an
//!   `overloaded_error`, then the stream ends cleanly. Non-streaming: 529
//!   with the same error body, as the API answers when overloaded.
//! - `StreamThenDrop { events }`: the first `events` events of a text stream
//!   (message_start, content_block_start, ping, text deltas cycling).
#![allow(dead_code)]

use serde_json::{json, Value};

// Re-exported so `support::<mock>::Reply` works; not every test binary
// uses them.
use super::mock_http::{
    argument_tokens, arguments_value, split_in, words, Call, Content, MockServer, MockUsage,
    Response, Route, StreamEnd, Vendor,
};
#[allow(unused_imports)]
pub use super::mock_http::{Recorded, Reply};

/// Handle to a running mock Anthropic vendor (see [`MockServer`] for methods).
pub type MockAnthropic = MockServer<Anthropic>;

/// The Anthropic Messages API wire format.
pub struct Anthropic;

const OVERLOADED: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;

/// An Anthropic-shaped error answer.
fn error(call: &Call<'_>, status: u16, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    Response::full(status, &[("request-id", &req_id(call))], body.to_string())
}

fn req_id(call: &Call<'_>) -> String {
    format!("req_{}", call.n)
}

/// Top-level Messages API fields: Anthropic refuses any other ("Extra
/// inputs are not permitted") and requires `max_tokens`.
const REQUEST_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "output_format",
    "output_config",
];

impl Vendor for Anthropic {
    const LABEL: &'static str = "mock_anthropic";
    const BASE_PATH: &'static str = "/v1";
    const REQUEST_ID_HEADER: Option<&'static str> = Some("request-id");
    type Target = ();

    fn route(call: &Call<'_>) -> Route<()> {
        let req = call.req;
        let known = matches!(
            (req.method.as_str(), req.route()),
            ("POST", "/v1/messages")
                | ("GET", "/v1/models")
                | ("POST", "/v1/messages/count_tokens")
        );
        if !known {
            return Route::Fixed(error(call, 404, "not_found_error", "Not Found"));
        }
        if req.header("x-api-key").is_none_or(|k| k == "bad-key") {
            return Route::Fixed(error(
                call,
                401,
                "authentication_error",
                "invalid x-api-key",
            ));
        }
        if req.header("anthropic-version").is_none() {
            return Route::Fixed(error(
                call,
                400,
                "invalid_request_error",
                "anthropic-version: header is required",
            ));
        }
        if req.method == "GET" {
            let body = json!({
                "data": [{
                    "type": "model",
                    "id": "mock-model",
                    "display_name": call.name,
                    "created_at": "2025-01-01T00:00:00Z",
                }],
                "has_more": false,
                "first_id": "mock-model",
                "last_id": "mock-model",
            });
            return Route::Fixed(Response::full(
                200,
                &[("request-id", &req_id(call))],
                body.to_string(),
            ));
        }
        let body = req.json();
        if req.route() == "/v1/messages/count_tokens" {
            return Route::Fixed(count_tokens(call, &body));
        }
        if let Some(why) = thinking_violation(&body) {
            return Route::Fixed(error(call, 400, "invalid_request_error", &why));
        }
        if let Some(obj) = body.as_object() {
            if let Some(k) = obj.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
                return Route::Fixed(error(
                    call,
                    400,
                    "invalid_request_error",
                    &format!("{k}: Extra inputs are not permitted"),
                ));
            }
            if !obj.contains_key("max_tokens") {
                return Route::Fixed(error(
                    call,
                    400,
                    "invalid_request_error",
                    "max_tokens: Field required",
                ));
            }
        }
        Route::Scripted(())
    }

    fn render(call: &Call<'_>, _: (), reply: Content<'_>) -> Response {
        let msg = Message::new(call, reply);
        let stream = call.req.json()["stream"].as_bool() == Some(true);
        match reply {
            Content::StreamThenDrop { events } => {
                let head = [
                    msg.start(),
                    block_start(0, json!({"type": "text", "text": ""})),
                    ping(),
                ];
                let deltas = (msg.answer.iter().cycle())
                    .map(|w| block_delta(0, json!({"type": "text_delta", "text": w})));
                let evs = head.into_iter().chain(deltas).take(events).collect();
                msg.stream(evs, StreamEnd::Drop)
            }
            Content::StreamError if stream => msg.stream(
                vec![msg.start(), event("error", OVERLOADED)],
                StreamEnd::Finish,
            ),
            Content::StreamError => {
                Response::full(529, &[("request-id", &req_id(call))], OVERLOADED)
            }
            _ if stream => msg.stream(msg.events(), StreamEnd::Finish),
            _ => Response::full(
                200,
                &[
                    ("request-id", &req_id(call)),
                    ("content-type", "application/json"),
                ],
                msg.json().to_string(),
            ),
        }
    }
}

/// One content block of the answer.
enum Block {
    Thinking(Vec<String>),
    Text(Vec<String>),
    ToolUse { name: String, arguments: String },
}

/// The answer being rendered.
struct Message {
    n: usize,
    model: String,
    input_tokens: usize,
    /// The `Complete` answer words, also used by `StreamThenDrop`.
    answer: Vec<String>,
    blocks: Vec<Block>,
    stop_reason: &'static str,
    /// Exact usage set by the test.
    exact: Option<MockUsage>,
}

impl Message {
    fn new(call: &Call<'_>, reply: Content<'_>) -> Message {
        let answer = call.answer_words();
        let thinking_on = call.req.json()["thinking"]["type"] == "enabled";
        let (blocks, stop_reason) = match reply {
            Content::ToolCall { name, arguments } => (
                (thinking_on.then(|| Block::Thinking(words("Checking the tool."))))
                    .into_iter()
                    .chain([
                        Block::Text(words("Let me check.")),
                        Block::ToolUse {
                            name: name.to_string(),
                            arguments: arguments.to_string(),
                        },
                    ])
                    .collect(),
                "tool_use",
            ),
            Content::Thinking { thinking } => (
                vec![
                    Block::Thinking(words(thinking)),
                    Block::Text(answer.clone()),
                ],
                "end_turn",
            ),
            _ => (vec![Block::Text(answer.clone())], "end_turn"),
        };
        Message {
            n: call.n,
            model: call.req.json()["model"]
                .as_str()
                .unwrap_or("mock-model")
                .to_string(),
            input_tokens: call.prompt_tokens(),
            answer,
            blocks,
            stop_reason,
            exact: call.usage,
        }
    }

    fn output_tokens(&self) -> usize {
        if let Some(u) = self.exact {
            // Thinking is billed as output and not reported apart.
            return (u.output + u.reasoning) as usize;
        }
        self.blocks
            .iter()
            .map(|b| match b {
                Block::Thinking(w) | Block::Text(w) => w.len(),
                Block::ToolUse { arguments, .. } => argument_tokens(arguments),
            })
            .sum()
    }

    fn signature(&self) -> String {
        format!("sig_{}", self.n)
    }

    fn tool_id(&self) -> String {
        format!("toolu_{}", self.n)
    }

    fn usage(&self, output_tokens: usize) -> Value {
        if let Some(u) = self.exact {
            // `input_tokens` excludes cache reads and writes; the writes
            // are split by lifetime in `cache_creation`.
            return json!({
                "input_tokens": u.input,
                "output_tokens": output_tokens,
                "cache_read_input_tokens": u.cached_read,
                "cache_creation_input_tokens": u.cache_write_5m + u.cache_write_1h,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": u.cache_write_5m,
                    "ephemeral_1h_input_tokens": u.cache_write_1h,
                },
                "service_tier": "standard",
            });
        }
        json!({
            "input_tokens": self.input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        })
    }

    /// The message object with this content, stop reason and output tokens.
    fn object(&self, content: Vec<Value>, stop_reason: Value, output_tokens: usize) -> Value {
        json!({
            "id": format!("msg_{}", self.n),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": self.usage(output_tokens),
        })
    }

    /// The non-streaming answer.
    fn json(&self) -> Value {
        let content = self
            .blocks
            .iter()
            .map(|b| match b {
                Block::Thinking(w) => json!({
                    "type": "thinking",
                    "thinking": w.concat(),
                    "signature": self.signature(),
                }),
                Block::Text(w) => json!({"type": "text", "text": w.concat()}),
                Block::ToolUse { name, arguments } => json!({
                    "type": "tool_use",
                    "id": self.tool_id(),
                    "name": name,
                    "input": arguments_value(arguments),
                }),
            })
            .collect();
        self.object(content, self.stop_reason.into(), self.output_tokens())
    }

    fn start(&self) -> String {
        // As the API does: empty content, no stop reason yet, 1 output token.
        let message = self.object(Vec::new(), Value::Null, 1);
        event(
            "message_start",
            &json!({"type": "message_start", "message": message}).to_string(),
        )
    }

    /// The events of a normal stream, message_stop included.
    fn events(&self) -> Vec<String> {
        let mut evs = vec![self.start()];
        for (i, block) in self.blocks.iter().enumerate() {
            let (start, deltas): (Value, Vec<Value>) = match block {
                Block::Thinking(w) => {
                    let mut deltas: Vec<Value> = w
                        .iter()
                        .map(|t| json!({"type": "thinking_delta", "thinking": t}))
                        .collect();
                    deltas.push(json!({"type": "signature_delta", "signature": self.signature()}));
                    (json!({"type": "thinking", "thinking": ""}), deltas)
                }
                Block::Text(w) => (
                    json!({"type": "text", "text": ""}),
                    w.iter()
                        .map(|t| json!({"type": "text_delta", "text": t}))
                        .collect(),
                ),
                Block::ToolUse { name, arguments } => {
                    // The API opens with an empty piece; the rest must be
                    // concatenated to get the arguments back.
                    let mut pieces = vec![String::new()];
                    pieces.extend(split_in(arguments, 3));
                    (
                        json!({"type": "tool_use", "id": self.tool_id(), "name": name, "input": {}}),
                        pieces
                            .iter()
                            .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                            .collect(),
                    )
                }
            };
            evs.push(block_start(i, start));
            if i == 0 {
                // The API sends a ping right after the first block opens.
                evs.push(ping());
            }
            evs.extend(deltas.into_iter().map(|d| block_delta(i, d)));
            evs.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": i}).to_string(),
            ));
        }
        evs.push(event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": self.output_tokens()},
            })
            .to_string(),
        ));
        evs.push(event("message_stop", r#"{"type":"message_stop"}"#));
        evs
    }

    fn stream(&self, events: Vec<String>, end: StreamEnd) -> Response {
        Response::Stream {
            headers: vec![
                ("content-type".to_string(), "text/event-stream".to_string()),
                ("cache-control".to_string(), "no-cache".to_string()),
                ("request-id".to_string(), format!("req_{}", self.n)),
            ],
            events,
            end,
        }
    }
}

/// One named SSE event.
fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn ping() -> String {
    event("ping", r#"{"type":"ping"}"#)
}

fn block_start(index: usize, block: Value) -> String {
    event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index, "content_block": block}).to_string(),
    )
}

fn block_delta(index: usize, delta: Value) -> String {
    event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": delta}).to_string(),
    )
}

/// Top-level fields of a count_tokens request (the endpoint refuses others).
const COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
    "output_config",
    "output_format",
];

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, N = body bytes / 4.
fn count_tokens(call: &Call<'_>, body: &Value) -> Response {
    let Some(obj) = body.as_object() else {
        return error(
            call,
            400,
            "invalid_request_error",
            "Input should be an object",
        );
    };
    if let Some(k) = obj.keys().find(|k| !COUNT_FIELDS.contains(&k.as_str())) {
        let msg = format!("{k}: Extra inputs are not permitted");
        return error(call, 400, "invalid_request_error", &msg);
    }
    for field in ["model", "messages"] {
        if !obj.contains_key(field) {
            let msg = format!("{field}: Field required");
            return error(call, 400, "invalid_request_error", &msg);
        }
    }
    let body = json!({ "input_tokens": call.prompt_tokens() });
    Response::full(200, &[("request-id", &req_id(call))], body.to_string())
}

/// The API's thinking rules (see the module docs), or `None` when met.
fn thinking_violation(body: &Value) -> Option<String> {
    let messages = body["messages"].as_array()?;
    for (i, m) in messages.iter().enumerate() {
        for (j, b) in m["content"].as_array().into_iter().flatten().enumerate() {
            if b["type"] != "thinking" {
                continue;
            }
            let signed = b["signature"]
                .as_str()
                .and_then(|s| s.strip_prefix("sig_"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
            if !signed {
                return Some(format!(
                    "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                ));
            }
        }
    }
    if body["thinking"]["type"] != "enabled" {
        return None;
    }
    let (i, last) = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m["role"] == "assistant")?;
    let blocks = last["content"].as_array()?;
    let in_tool_loop = blocks.iter().any(|b| b["type"] == "tool_use");
    let first = blocks
        .first()
        .and_then(|b| b["type"].as_str())
        .unwrap_or("");
    if in_tool_loop && first != "thinking" && first != "redacted_thinking" {
        return Some(format!(
            "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{first}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        ));
    }
    None
}

/// A 429 `rate_limit_error` as Anthropic sends it: `retry-after` (whole
/// seconds) when `retry_after` is given, and the documented
/// `anthropic-ratelimit-*` headers with the input-token limit spent and
/// its reset at `reset_rfc3339` (RFC 3339).
pub fn rate_limited(retry_after: Option<&str>, reset_rfc3339: &str) -> Reply {
    let mut headers = super::mock_http::owned(&[
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "49"),
        ("anthropic-ratelimit-requests-reset", reset_rfc3339),
        ("anthropic-ratelimit-input-tokens-limit", "30000"),
        ("anthropic-ratelimit-input-tokens-remaining", "0"),
        ("anthropic-ratelimit-input-tokens-reset", reset_rfc3339),
        ("anthropic-ratelimit-output-tokens-limit", "8000"),
        ("anthropic-ratelimit-output-tokens-remaining", "8000"),
        ("anthropic-ratelimit-output-tokens-reset", reset_rfc3339),
        ("request-id", "req_011CRateLimited"),
    ]);
    if let Some(r) = retry_after {
        headers.push(("retry-after".into(), r.into()));
    }
    Reply::Status {
        status: 429,
        headers,
        body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 30,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."}}"#.into(),
    }
}
