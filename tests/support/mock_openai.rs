//! A mock OpenAI-compatible vendor: the OpenAI wire format over the shared
//! raw HTTP/1.1 server in `mock_http`.
//!
//! Only `POST /v1/chat/completions` consumes scripted [`Reply`]s; `GET
//! /v1/models` and unknown paths always answer the same way, so background
//! probes cannot eat replies a test scripted. Every request on every path is
//! recorded before it is answered. The k-th request a mock receives (any
//! path) is answered with ids `chatcmpl-k` and `x-request-id: req_k`.
//!
//! Content replies:
//! - `Complete`: "Hello from <name>", one content delta per word when streaming.
//! - `ToolCall`: `message.tool_calls` (content null, finish_reason
//!   "tool_calls"); streamed as a first delta with id/type/name and empty
//!   arguments, then 3 argument pieces.
//! - `Thinking`: DeepSeek-style `reasoning_content` on the message, or
//!   `reasoning_content` deltas before the content deltas.
//! - `StreamError`: one content chunk, then an in-stream `{"error":..}`
//!   event, then the stream ends cleanly (no finish chunk, no `[DONE]`).
//!   Non-streaming: 500 with the same error body.
//!
//! `POST /v1/responses` (the Responses API, for Responses-native providers)
//! takes the same replies: `Complete` is a `response` object with one
//! `message` item (streamed as `response.created` … `response.completed`,
//! one `output_text.delta` per word), `ToolCall` a `function_call` item,
//! `StreamThenDrop` a cut stream. The body is checked against the
//! documented request shape first: an unknown field, input item or tool
//! type gets OpenAI's 400 (`invalid_request_error` naming the `param`).
//! `POST /v1/responses/compact` answers a `response.compaction` object.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

// Re-exported so `support::<mock>::Reply` works; not every test binary
// uses them.
use super::mock_http::{
    argument_tokens, js, split_in, sse_data, words, Call, Content, MockServer, MockUsage, Response,
    Route, StreamEnd, Vendor,
};
#[allow(unused_imports)]
pub use super::mock_http::{Recorded, Reply};

/// Handle to a running mock OpenAI vendor (see [`MockServer`] for methods).
pub type MockOpenAi = MockServer<OpenAi>;

/// The OpenAI wire format.
pub struct OpenAi;

/// The error OpenAI sends inside a stream (and as a 500 body) when the
/// model server fails mid-answer.
const SERVER_ERROR: &str = r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#;

impl Vendor for OpenAi {
    const LABEL: &'static str = "mock_openai";
    const BASE_PATH: &'static str = "/v1";
    const REQUEST_ID_HEADER: Option<&'static str> = Some("x-request-id");
    type Target = ();

    fn route(call: &Call<'_>) -> Route<()> {
        match (call.req.method.as_str(), call.req.route()) {
            ("POST", "/v1/chat/completions") => Route::Scripted(()),
            ("POST", "/v1/responses" | "/v1/responses/compact") => {
                match responses::check(&call.req.json()) {
                    Ok(()) => Route::Scripted(()),
                    Err((param, message)) => Route::Fixed(Response::full(
                        400,
                        &[],
                        format!(
                            r#"{{"error":{{"message":{},"type":"invalid_request_error","param":{},"code":null}}}}"#,
                            js(&message),
                            js(&param)
                        ),
                    )),
                }
            }
            ("GET", "/v1/models") => Route::Fixed(Response::full(
                200,
                &[],
                format!(
                    r#"{{"object":"list","data":[{{"id":"mock-model","object":"model","created":1700000000,"owned_by":{}}}]}}"#,
                    js(call.name)
                ),
            )),
            _ => Route::Fixed(Response::full(
                404,
                &[],
                r#"{"error":{"message":"Unknown path","type":"invalid_request_error","param":null,"code":"not_found"}}"#,
            )),
        }
    }

    fn render(call: &Call<'_>, _: (), reply: Content<'_>) -> Response {
        if call.req.route().starts_with("/v1/responses") {
            return responses::render(call, reply);
        }
        let chat = Chat::new(call, reply);
        let stream = call.req.json()["stream"].as_bool() == Some(true);
        match reply {
            Content::StreamThenDrop { events } => {
                let evs = (0..events).map(|i| chat.content_chunk(i)).collect();
                chat.stream(evs, StreamEnd::Drop)
            }
            Content::StreamError if stream => chat.stream(
                vec![chat.content_chunk(0), SERVER_ERROR.to_string()],
                StreamEnd::Finish,
            ),
            Content::StreamError => Response::Full {
                status: 500,
                headers: chat.headers(),
                body: SERVER_ERROR.to_string(),
            },
            _ if stream => chat.stream(chat.events(), StreamEnd::Finish),
            _ => Response::Full {
                status: 200,
                headers: chat.headers(),
                body: chat.completion(),
            },
        }
    }
}

/// The answer being rendered, in the shape of a chat completion.
struct Chat<'a> {
    n: usize,
    created: u64,
    model: String,
    include_usage: bool,
    prompt_tokens: usize,
    /// Content deltas, one per word ("Hello", " from", " <name>").
    words: Vec<String>,
    /// Reasoning deltas (`Thinking`), streamed before the content.
    reasoning: Vec<String>,
    /// `(name, arguments)` when the answer is a tool call.
    tool: Option<(&'a str, &'a str)>,
    /// Exact usage set by the test.
    exact: Option<MockUsage>,
}

impl<'a> Chat<'a> {
    fn new(call: &Call<'_>, reply: Content<'a>) -> Chat<'a> {
        let body = call.req.json();
        let (reasoning, tool) = match reply {
            Content::Thinking { thinking } => (words(thinking), None),
            Content::ToolCall { name, arguments } => (Vec::new(), Some((name, arguments))),
            _ => (Vec::new(), None),
        };
        Chat {
            n: call.n,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: body["model"].as_str().unwrap_or("mock-model").to_string(),
            include_usage: body["stream_options"]["include_usage"].as_bool() == Some(true),
            prompt_tokens: call.prompt_tokens(),
            words: call.answer_words(),
            reasoning,
            tool,
            exact: call.usage,
        }
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("x-request-id".to_string(), format!("req_{}", self.n)),
            ("openai-processing-ms".to_string(), "1".to_string()),
        ]
    }

    fn stream(&self, events: Vec<String>, end: StreamEnd) -> Response {
        let mut headers = vec![("cache-control".to_string(), "no-cache".to_string())];
        headers.extend(self.headers());
        Response::Stream {
            headers,
            events: events.iter().map(|e| sse_data(e)).collect(),
            end,
        }
    }

    fn usage(&self) -> String {
        if let Some(u) = self.exact {
            // OpenAI: prompt_tokens counts cached tokens too
            // (prompt_tokens_details.cached_tokens); completion_tokens counts
            // reasoning (completion_tokens_details.reasoning_tokens). No
            // cache-write class.
            let prompt = u.input + u.cached_read + u.cache_write_5m + u.cache_write_1h;
            let completion = u.output + u.reasoning;
            return format!(
                r#"{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{},"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":{},"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}"#,
                prompt + completion,
                u.cached_read,
                u.reasoning
            );
        }
        let c = match self.tool {
            Some((_, arguments)) => argument_tokens(arguments),
            None => self.words.len() + self.reasoning.len(),
        };
        // Reasoning models report their thinking share, as OpenAI o-series and DeepSeek do.
        let details = if self.reasoning.is_empty() {
            String::new()
        } else {
            format!(
                r#","completion_tokens_details":{{"reasoning_tokens":{}}}"#,
                self.reasoning.len()
            )
        };
        format!(
            r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}{details}}}"#,
            self.prompt_tokens,
            c,
            self.prompt_tokens + c
        )
    }

    fn finish_reason(&self) -> &'static str {
        if self.tool.is_some() {
            "tool_calls"
        } else {
            "stop"
        }
    }

    fn message(&self) -> String {
        if let Some((name, arguments)) = self.tool {
            return format!(
                r#"{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_{}","type":"function","function":{{"name":{},"arguments":{}}}}}],"refusal":null}}"#,
                self.n,
                js(name),
                js(arguments)
            );
        }
        let reasoning = if self.reasoning.is_empty() {
            String::new()
        } else {
            format!(r#","reasoning_content":{}"#, js(&self.reasoning.concat()))
        };
        format!(
            r#"{{"role":"assistant","content":{}{reasoning},"refusal":null}}"#,
            js(&self.words.concat())
        )
    }

    fn completion(&self) -> String {
        format!(
            r#"{{"id":"chatcmpl-{}","object":"chat.completion","created":{},"model":{},"choices":[{{"index":0,"message":{},"logprobs":null,"finish_reason":"{}"}}],"usage":{},"system_fingerprint":"fp_mock"}}"#,
            self.n,
            self.created,
            js(&self.model),
            self.message(),
            self.finish_reason(),
            self.usage()
        )
    }

    /// One `chat.completion.chunk` with the given delta and finish_reason JSON.
    fn chunk(&self, delta: &str, finish: &str) -> String {
        let usage = if self.include_usage {
            r#","usage":null"#
        } else {
            ""
        };
        format!(
            r#"{{"id":"chatcmpl-{}","object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":"fp_mock","choices":[{{"index":0,"delta":{},"logprobs":null,"finish_reason":{}}}]{}}}"#,
            self.n,
            self.created,
            js(&self.model),
            delta,
            finish,
            usage
        )
    }

    fn content_chunk(&self, i: usize) -> String {
        let word = &self.words[i % self.words.len()];
        self.chunk(&format!(r#"{{"content":{}}}"#, js(word)), "null")
    }

    fn usage_chunk(&self) -> String {
        format!(
            r#"{{"id":"chatcmpl-{}","object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":"fp_mock","choices":[],"usage":{}}}"#,
            self.n,
            self.created,
            js(&self.model),
            self.usage()
        )
    }

    /// The `data:` payloads of a normal stream, `[DONE]` included.
    fn events(&self) -> Vec<String> {
        let mut events = Vec::new();
        if let Some((name, arguments)) = self.tool {
            // As OpenAI streams tool calls: id, type and name come once with
            // empty arguments, then the arguments arrive in pieces.
            events.push(self.chunk(
                &format!(
                    r#"{{"role":"assistant","content":null,"tool_calls":[{{"index":0,"id":"call_{}","type":"function","function":{{"name":{},"arguments":""}}}}],"refusal":null}}"#,
                    self.n,
                    js(name)
                ),
                "null",
            ));
            events.extend(split_in(arguments, 3).iter().map(|piece| {
                self.chunk(
                    &format!(
                        r#"{{"tool_calls":[{{"index":0,"function":{{"arguments":{}}}}}]}}"#,
                        js(piece)
                    ),
                    "null",
                )
            }));
        } else {
            events.push(self.chunk(
                r#"{"role":"assistant","content":"","refusal":null}"#,
                "null",
            ));
            // DeepSeek streams reasoning with content null, then content.
            events.extend(self.reasoning.iter().map(|w| {
                self.chunk(
                    &format!(r#"{{"content":null,"reasoning_content":{}}}"#, js(w)),
                    "null",
                )
            }));
            events.extend((0..self.words.len()).map(|i| self.content_chunk(i)));
        }
        events.push(self.chunk("{}", &js(self.finish_reason())));
        if self.include_usage {
            events.push(self.usage_chunk());
        }
        events.push("[DONE]".to_string());
        events
    }
}

/// The Responses API side of the mock.
mod responses {
    use super::super::mock_http::{js, sse_data, Call, Content, Response, StreamEnd};
    use serde_json::{json, Value};

    const TOP: &[&str] = &[
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "text",
        "metadata",
        "stream",
        "stream_options",
        "include",
        "store",
        "previous_response_id",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
        "truncation",
        "background",
        "max_tool_calls",
        "top_logprobs",
        "conversation",
        "prompt",
        "client_metadata",
    ];
    // Input item and tool types of the Responses API (the `openai`
    // package's `ResponseInputItemParam` and `ToolParam`).
    const ITEMS: &[&str] = &[
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "reasoning",
        "item_reference",
        "compaction",
        "compaction_trigger",
        "file_search_call",
        "web_search_call",
        "computer_call",
        "computer_call_output",
        "image_generation_call",
        "code_interpreter_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "tool_search_call",
        "tool_search_output",
        "additional_tools",
        "program",
        "program_output",
    ];
    const TOOLS: &[&str] = &[
        "function",
        "custom",
        "namespace",
        "file_search",
        "computer",
        "computer_use_preview",
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "mcp",
        "code_interpreter",
        "programmatic_tool_calling",
        "image_generation",
        "local_shell",
        "shell",
        "tool_search",
        "apply_patch",
    ];

    /// The request against the documented shape: `Err((param, message))`.
    pub fn check(body: &Value) -> Result<(), (String, String)> {
        let bad = |p: String, m: &str| Err((p, m.to_string()));
        let Some(obj) = body.as_object() else {
            return bad(String::new(), "body must be a JSON object");
        };
        for k in obj.keys() {
            if !TOP.contains(&k.as_str()) {
                return bad(k.clone(), "Unrecognized request argument supplied");
            }
        }
        // The mock keeps no responses: every id is unknown, as OpenAI
        // answers for one it does not have.
        if let Some(id) = body["previous_response_id"].as_str() {
            return Err((
                "previous_response_id".into(),
                format!("Previous response with id '{id}' not found."),
            ));
        }
        if !body["model"].is_string() {
            return bad("model".into(), "Missing required parameter: 'model'.");
        }
        match &body["input"] {
            Value::String(_) => {}
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let kind = item["type"].as_str().unwrap_or("message");
                    if !ITEMS.contains(&kind) {
                        return bad(format!("input[{i}].type"), "Invalid value");
                    }
                    if kind == "message" && !item["role"].is_string() {
                        return bad(format!("input[{i}].role"), "Missing required parameter");
                    }
                    if kind.ends_with("call_output") && !item["call_id"].is_string() {
                        return bad(format!("input[{i}].call_id"), "Missing required parameter");
                    }
                }
            }
            _ => return bad("input".into(), "Invalid type for 'input'"),
        }
        for (i, t) in body["tools"].as_array().into_iter().flatten().enumerate() {
            if !t["type"].as_str().is_some_and(|k| TOOLS.contains(&k)) {
                return bad(format!("tools[{i}].type"), "Invalid value");
            }
        }
        Ok(())
    }

    fn usage(input: usize, output: usize) -> Value {
        json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
               "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": input + output})
    }

    pub fn render(call: &Call<'_>, reply: Content<'_>) -> Response {
        let body = call.req.json();
        let n = call.n;
        let model = body["model"].as_str().unwrap_or("mock-model").to_string();
        let words = call.answer_words();
        let input = call.prompt_tokens();
        let headers = vec![("x-request-id".to_string(), format!("req_{n}"))];
        if call.req.route().ends_with("/compact") {
            let out = json!({"id": format!("resp_{n}"), "object": "response.compaction", "created_at": 1700000000,
                "output": [{"id": format!("cmp_{n}"), "type": "compaction", "encrypted_content": "opaque"}],
                "usage": usage(input, 1)});
            return Response::Full {
                status: 200,
                headers,
                body: out.to_string(),
            };
        }
        let (item, output) = match reply {
            Content::ToolCall { name, arguments } => (
                json!({"id": format!("fc_{n}"), "type": "function_call", "status": "completed",
                       "call_id": format!("call_{n}"), "name": name, "arguments": arguments}),
                super::super::mock_http::argument_tokens(arguments),
            ),
            _ => (
                json!({"id": format!("msg_{n}"), "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": words.concat(), "annotations": [], "logprobs": []}]}),
                words.len(),
            ),
        };
        let response = |status: &str, output_items: Value, usage: Value| {
            json!({"id": format!("resp_{n}"), "object": "response", "created_at": 1700000000, "status": status,
                   "error": null, "incomplete_details": null, "model": model, "output": output_items,
                   "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "usage": usage})
        };
        if body["stream"].as_bool() != Some(true) {
            let out = response("completed", json!([item]), usage(input, output));
            return Response::Full {
                status: 200,
                headers,
                body: out.to_string(),
            };
        }
        let mut events: Vec<Value> = vec![
            json!({"type": "response.created", "response": response("in_progress", json!([]), Value::Null)}),
            json!({"type": "response.in_progress", "response": response("in_progress", json!([]), Value::Null)}),
        ];
        let mut added = item.clone();
        if item["type"] == "message" {
            added["content"] = json!([]);
            added["status"] = json!("in_progress");
            events.push(
                json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
            );
            events.push(json!({"type": "response.content_part.added", "item_id": item["id"], "output_index": 0, "content_index": 0,
                               "part": {"type": "output_text", "text": "", "annotations": []}}));
            for w in &words {
                events.push(json!({"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                                   "content_index": 0, "delta": w, "logprobs": []}));
            }
            events.push(json!({"type": "response.output_text.done", "item_id": item["id"], "output_index": 0,
                               "content_index": 0, "text": words.concat(), "logprobs": []}));
            events.push(json!({"type": "response.content_part.done", "item_id": item["id"], "output_index": 0,
                               "content_index": 0, "part": item["content"][0]}));
        } else {
            added["arguments"] = json!("");
            events.push(
                json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
            );
            events.push(
                json!({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                               "output_index": 0, "delta": item["arguments"]}),
            );
            events.push(
                json!({"type": "response.function_call_arguments.done", "item_id": item["id"],
                               "output_index": 0, "arguments": item["arguments"]}),
            );
        }
        events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
        events.push(json!({"type": "response.completed", "response": response("completed", json!([item]), usage(input, output))}));
        let end = match reply {
            Content::StreamThenDrop { events: k } => {
                events.truncate(k);
                StreamEnd::Drop
            }
            _ => StreamEnd::Finish,
        };
        let framed = events
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e["sequence_number"] = json!(i);
                let kind = e["type"].as_str().unwrap_or("").to_string();
                format!("event: {kind}\n{}", sse_data(&e.to_string()))
            })
            .collect();
        let _ = js;
        let mut headers = headers;
        headers.push(("cache-control".to_string(), "no-cache".to_string()));
        Response::Stream {
            headers,
            events: framed,
            end,
        }
    }
}

/// A 429 as OpenAI sends it when a rate limit is hit: the documented
/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers, with
/// `remaining-requests` 0 and `reset-requests` = `reset_requests` (a Go
/// duration such as `2s`, `6m0s`), and a `reset-tokens` that does not apply.
pub fn rate_limited(reset_requests: &str) -> Reply {
    Reply::Status {
        status: 429,
        headers: super::mock_http::owned(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "149000"),
            ("x-ratelimit-reset-requests", reset_requests),
            ("x-ratelimit-reset-tokens", "6ms"),
        ]),
        body: r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-test on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again later.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
    }
}

/// OpenAI's billing 429: `insufficient_quota` (no reset headers).
pub fn insufficient_quota() -> Reply {
    Reply::status(
        429,
        r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
    )
}
