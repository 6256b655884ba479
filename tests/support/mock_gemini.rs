//! A mock Google Gemini vendor: the Generative Language API wire format over
//! the shared raw HTTP/1.1 server in `mock_http`.
//!
//! `POST /v1beta/models/{model}:generateContent` and
//! `POST /v1beta/models/{model}:streamGenerateContent` consume scripted
//! [`Reply`]s; the model is taken from the path (see `Recorded::path`).
//! Streaming with `?alt=sse` sends `data: <GenerateContentResponse>\r\n\r\n`
//! events (Google frames SSE with CRLF); without it, a JSON array of the
//! same responses, as the real API does. `GET /v1beta/models` and unknown
//! paths always answer the same way. Like the real API, known paths first
//! check the key, without consuming a scripted reply (only the
//! `x-goog-api-key` header counts, so tests see whether the gateway sends it
//! there rather than in `?key=`):
//! - no `x-goog-api-key`: 403 `PERMISSION_DENIED`;
//! - `x-goog-api-key: bad-key`: 400 `INVALID_ARGUMENT` / `API_KEY_INVALID`.
//!
//! Generate requests with a field Google does not know (top level or in
//! `generationConfig`) get Google's 400 `Invalid JSON payload received.
//! Unknown name "max_tokens": Cannot find field.`, also without consuming
//! a reply.
//!
//! `POST /v1beta/models/{model}:countTokens` (after the same key check)
//! answers Google's `CountTokensResponse`,
//! `{"totalTokens": N, "promptTokensDetails": [{"modality": "TEXT",
//! "tokenCount": N}]}` with N = body bytes / 4; the body must hold exactly
//! one of `contents` and `generateContentRequest` (Google's 400 otherwise),
//! and a `generateContentRequest` is checked like a generate body. No
//! scripted reply is consumed.
//!
//! The k-th request (any path) is answered with `responseId` `resp_k` and
//! tool-call `thoughtSignature` `c2lnX<kkk>` (k zero-padded to three
//! digits: valid base64, which Google's SDKs insist on).
//!
//! Content replies (text "Hello from <name>", one chunk per word, the last
//! chunk carrying finishReason STOP and usageMetadata):
//! - `ToolCall`: one `functionCall` part (`args` = parsed arguments) with a
//!   `thoughtSignature`, finishReason STOP; streamed as a single chunk.
//! - `Thinking`: a `{"text":..,"thought":true}` part before the answer;
//!   streamed one thought chunk per word first; usage adds
//!   `thoughtsTokenCount`.
//! - `StreamError`: one chunk, then the stream ends cleanly without any
//!   finishReason (a truncated answer). Non-streaming: 503 `UNAVAILABLE`.
//! - `StreamThenDrop { events }`: `events` SSE chunks (answer words
//!   cycling, no finishReason), then the connection closes abruptly.
#![allow(dead_code)]

use serde_json::{json, Value};

// Re-exported so `support::<mock>::Reply` works; not every test binary
// uses them.
use super::mock_http::{
    argument_tokens, arguments_value, words, Call, Content, MockServer, MockUsage, Response, Route,
    StreamEnd, Vendor,
};
#[allow(unused_imports)]
pub use super::mock_http::{Recorded, Reply};

/// Handle to a running mock Gemini vendor (see [`MockServer`] for methods).
pub type MockGemini = MockServer<Gemini>;

/// The Google Generative Language API wire format.
pub struct Gemini;

/// What Google sends as content-type for JSON.
const JSON_TYPE: &str = "application/json; charset=UTF-8";

/// How a scripted request wants its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `:generateContent`
    Unary,
    /// `:streamGenerateContent?alt=sse`
    Sse,
    /// `:streamGenerateContent` without `alt=sse`: a streamed JSON array.
    JsonArray,
}

/// A scripted request: the model named in the path and the answer mode.
pub struct Target {
    model: String,
    mode: Mode,
}

/// A Google-shaped error answer.
fn error(code: u16, status: &str, message: &str, details: Option<Value>) -> Response {
    let mut err = json!({"code": code, "message": message, "status": status});
    if let Some(details) = details {
        err["details"] = details;
    }
    Response::full(
        code,
        &[("content-type", JSON_TYPE)],
        json!({ "error": err }).to_string(),
    )
}

impl Vendor for Gemini {
    const LABEL: &'static str = "mock_gemini";
    const BASE_PATH: &'static str = "/v1beta";
    // Google sends no request id header worth imitating.
    const REQUEST_ID_HEADER: Option<&'static str> = None;
    type Target = Target;

    fn route(call: &Call<'_>) -> Route<Target> {
        let req = call.req;
        let route = req.route();
        if let Some(fixed) = count_tokens(call) {
            return Route::Fixed(fixed);
        }
        let target = route
            .strip_prefix("/v1beta/models/")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(model, _)| !model.is_empty() && !model.contains('/'));
        let mode = match (req.method.as_str(), target) {
            ("POST", Some((_, "generateContent"))) => Some(Mode::Unary),
            ("POST", Some((_, "streamGenerateContent"))) => {
                Some(if req.query("alt") == Some("sse") {
                    Mode::Sse
                } else {
                    Mode::JsonArray
                })
            }
            _ => None,
        };
        let list = req.method == "GET" && route == "/v1beta/models";
        if mode.is_none() && !list {
            return Route::Fixed(error(
                404,
                "NOT_FOUND",
                "Requested entity was not found.",
                None,
            ));
        }
        match req.header("x-goog-api-key").as_deref() {
            None => {
                return Route::Fixed(error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                    None,
                ))
            }
            Some("bad-key") => {
                return Route::Fixed(error(
                    400,
                    "INVALID_ARGUMENT",
                    "API key not valid. Please pass a valid API key.",
                    Some(json!([{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }])),
                ))
            }
            Some(_) => {}
        }
        if mode.is_some() {
            if let Some(why) = signature_violation(&req.json()) {
                return Route::Fixed(error(400, "INVALID_ARGUMENT", &why, None));
            }
            if let Some(unknown) = unknown_field(&req.json()) {
                return Route::Fixed(error(
                    400,
                    "INVALID_ARGUMENT",
                    &unknown,
                    Some(json!([{
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"description": unknown}],
                    }])),
                ));
            }
        }
        match (target, mode) {
            (Some((model, _)), Some(mode)) => Route::Scripted(Target {
                model: model.to_string(),
                mode,
            }),
            _ => {
                let body = json!({"models": [{
                    "name": "models/mock-model",
                    "version": "001",
                    "displayName": call.name,
                    "inputTokenLimit": 1048576,
                    "outputTokenLimit": 65536,
                    "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
                }]});
                Route::Fixed(Response::full(
                    200,
                    &[("content-type", JSON_TYPE)],
                    body.to_string(),
                ))
            }
        }
    }

    fn render(call: &Call<'_>, target: Target, reply: Content<'_>) -> Response {
        let ans = Answer::new(call, &target.model, reply);
        match (reply, target.mode) {
            (Content::StreamThenDrop { events }, _) => {
                let chunks = (ans.answer.iter().cycle())
                    .map(|w| ans.chunk(vec![json!({"text": w})], false))
                    .take(events);
                ans.stream(Mode::Sse, chunks.collect(), StreamEnd::Drop)
            }
            (Content::StreamError, Mode::Unary) => error(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
                None,
            ),
            (Content::StreamError, mode) => {
                let first = ans.chunk(vec![json!({"text": ans.answer[0]})], false);
                ans.stream(mode, vec![first], StreamEnd::Finish)
            }
            (_, Mode::Unary) => {
                Response::full(200, &[("content-type", JSON_TYPE)], ans.json().to_string())
            }
            (_, mode) => ans.stream(mode, ans.chunks(), StreamEnd::Finish),
        }
    }
}

/// `GenerateContentRequest` fields (v1beta).
const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "labels",
];

/// `GenerationConfig` fields (v1beta).
const GENERATION_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

/// Google's protobuf JSON parser refuses unknown fields: the message it
/// sends for the first one, as the real API words it.
fn unknown_field(body: &Value) -> Option<String> {
    let obj = body.as_object()?;
    if let Some(k) = obj.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
        return Some(format!(
            "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
        ));
    }
    let config = obj.get("generationConfig").and_then(Value::as_object)?;
    let k = config
        .keys()
        .find(|k| !GENERATION_FIELDS.contains(&k.as_str()))?;
    Some(format!(
        "Invalid JSON payload received. Unknown name \"{k}\" at 'generation_config': Cannot find field."
    ))
}

/// The answer being rendered.
struct Answer {
    n: usize,
    model: String,
    prompt_tokens: usize,
    /// The `Complete` answer words ("Hello", " from", " <name>").
    answer: Vec<String>,
    /// Thought words (`Thinking`), sent before the answer.
    thoughts: Vec<String>,
    /// `(name, arguments)` when the answer is a function call.
    tool: Option<(String, String)>,
    /// Exact usage set by the test.
    exact: Option<MockUsage>,
}

impl Answer {
    fn new(call: &Call<'_>, model: &str, reply: Content<'_>) -> Answer {
        let (thoughts, tool) = match reply {
            Content::Thinking { thinking } => (words(thinking), None),
            Content::ToolCall { name, arguments } => {
                (Vec::new(), Some((name.to_string(), arguments.to_string())))
            }
            _ => (Vec::new(), None),
        };
        Answer {
            n: call.n,
            model: model.to_string(),
            prompt_tokens: call.prompt_tokens(),
            answer: call.answer_words(),
            thoughts,
            tool,
            exact: call.usage,
        }
    }

    fn usage(&self) -> Value {
        if let Some(u) = self.exact {
            // promptTokenCount includes cachedContentTokenCount;
            // candidatesTokenCount excludes thoughtsTokenCount. No
            // cache-write class (context caches are created apart).
            let prompt = u.input + u.cached_read + u.cache_write_5m + u.cache_write_1h;
            return json!({
                "promptTokenCount": prompt,
                "cachedContentTokenCount": u.cached_read,
                "candidatesTokenCount": u.output,
                "thoughtsTokenCount": u.reasoning,
                "totalTokenCount": prompt + u.output + u.reasoning,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            });
        }
        let candidates = match &self.tool {
            Some((_, arguments)) => argument_tokens(arguments),
            None => self.answer.len(),
        };
        let thoughts = self.thoughts.len();
        let mut usage = json!({
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": self.prompt_tokens + candidates + thoughts,
        });
        if thoughts > 0 {
            usage["thoughtsTokenCount"] = thoughts.into();
        }
        usage
    }

    fn function_call(&self, name: &str, arguments: &str) -> Value {
        json!({
            "functionCall": {"name": name, "args": arguments_value(arguments)},
            "thoughtSignature": format!("c2lnX{:03}", self.n),
        })
    }

    /// One GenerateContentResponse with these parts; `last` adds
    /// finishReason STOP and usageMetadata.
    fn chunk(&self, parts: Vec<Value>, last: bool) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}});
        if last {
            candidate["finishReason"] = "STOP".into();
        }
        candidate["index"] = 0.into();
        let mut response = json!({ "candidates": [candidate] });
        if last {
            response["usageMetadata"] = self.usage();
        }
        response["modelVersion"] = self.model.as_str().into();
        response["responseId"] = format!("resp_{}", self.n).into();
        response
    }

    /// The non-streaming answer.
    fn json(&self) -> Value {
        let mut parts = Vec::new();
        if let Some((name, arguments)) = &self.tool {
            parts.push(self.function_call(name, arguments));
        } else {
            if !self.thoughts.is_empty() {
                parts.push(json!({"text": self.thoughts.concat(), "thought": true}));
            }
            parts.push(json!({"text": self.answer.concat()}));
        }
        self.chunk(parts, true)
    }

    /// The responses of a normal stream.
    fn chunks(&self) -> Vec<Value> {
        if let Some((name, arguments)) = &self.tool {
            // Gemini never splits a function call across chunks.
            return vec![self.chunk(vec![self.function_call(name, arguments)], true)];
        }
        let parts: Vec<Value> = (self.thoughts.iter())
            .map(|t| json!({"text": t, "thought": true}))
            .chain(self.answer.iter().map(|w| json!({"text": w})))
            .collect();
        let last = parts.len().saturating_sub(1);
        (parts.into_iter().enumerate())
            .map(|(i, part)| self.chunk(vec![part], i == last))
            .collect()
    }

    /// Frames `chunks` as SSE events or as pieces of a JSON array.
    fn stream(&self, mode: Mode, chunks: Vec<Value>, end: StreamEnd) -> Response {
        let (content_type, events) = if mode == Mode::JsonArray {
            let mut pieces: Vec<String> = (chunks.iter().enumerate())
                .map(|(i, c)| format!("{}{c}", if i == 0 { "[" } else { ",\r\n" }))
                .collect();
            if end == StreamEnd::Finish {
                pieces.push(if chunks.is_empty() { "[]" } else { "]" }.to_string());
            }
            (JSON_TYPE, pieces)
        } else {
            let events = chunks
                .iter()
                .map(|c| format!("data: {c}\r\n\r\n"))
                .collect();
            ("text/event-stream", events)
        };
        Response::Stream {
            headers: vec![("content-type".to_string(), content_type.to_string())],
            events,
            end,
        }
    }
}

// ------------------------------------------------------------ countTokens

/// `POST /v1beta/models/{model}:countTokens` (same key checks as the other
/// routes): a documented `CountTokensRequest` — `contents`, or a
/// `generateContentRequest` naming `models/{model}` (never both; unknown
/// fields refused as for generate) — answered `{"totalTokens": N,
/// "promptTokensDetails": [...]}` with N = body bytes / 4. `None` for other
/// paths.
fn count_tokens(call: &Call<'_>) -> Option<Response> {
    let req = call.req;
    let model = req
        .route()
        .strip_prefix("/v1beta/models/")?
        .strip_suffix(":countTokens")?;
    if req.method != "POST" || model.is_empty() || model.contains('/') {
        return None;
    }
    match req.header("x-goog-api-key").as_deref() {
        None => return Some(error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", None)),
        Some("bad-key") => return Some(error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", Some(json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])))),
        Some(_) => {}
    }
    let body = req.json();
    let invalid = |msg: &str| Some(error(400, "INVALID_ARGUMENT", msg, None));
    let Some(obj) = body.as_object() else {
        return invalid("Invalid JSON payload received.");
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["contents", "generateContentRequest"].contains(&k.as_str()))
    {
        return invalid(&format!(
            "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
        ));
    }
    match (obj.get("contents"), obj.get("generateContentRequest")) {
        (Some(_), Some(_)) => {
            return invalid("generateContentRequest and contents are mutually exclusive.")
        }
        (None, None) => return invalid("contents or generateContentRequest is required."),
        (None, Some(inner)) => {
            let mut inner = inner.clone();
            let named = inner.as_object_mut().and_then(|o| o.remove("model"));
            if named.as_ref().and_then(Value::as_str) != Some(&format!("models/{model}")) {
                return invalid(
                    "generateContentRequest.model must name the model in the URL (models/{model}).",
                );
            }
            if let Some(unknown) = unknown_field(&inner) {
                return invalid(&unknown);
            }
        }
        (Some(_), None) => {}
    }
    let n = call.prompt_tokens();
    let body = json!({
        "totalTokens": n,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}],
    });
    Some(Response::full(
        200,
        &[("content-type", JSON_TYPE)],
        body.to_string(),
    ))
}

// ------------------------------------------------------------ thought signatures

/// Google's documented placeholders for a call whose signature is unknown.
const PLACEHOLDERS: [&str; 2] = [
    "skip_thought_signature_validator",
    "context_engineering_is_the_way_to_go",
];

/// The documented thought-signature rules (Gemini 3 function calling), or
/// `None` when met:
/// - in the current turn (the model contents after the last user content
///   with ordinary parts, i.e. not only functionResponses), the first
///   functionCall part of each model step carries a `thoughtSignature`;
/// - a signature goes back on the kind of part it came on: this mock
///   issues `c2lnX<k>` on functionCall parts only, so one on another part
///   (or a value it never issued, other than the placeholders) is
///   corrupted.
fn signature_violation(body: &Value) -> Option<String> {
    let contents = body["contents"].as_array()?;
    let issued = |s: &str| {
        s.strip_prefix("c2lnX")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
    };
    for content in contents {
        for part in content["parts"].as_array().into_iter().flatten() {
            let Some(sig) = part["thoughtSignature"].as_str() else {
                continue;
            };
            let on_call = part.get("functionCall").is_some();
            let ok = (on_call && (issued(sig) || PLACEHOLDERS.contains(&sig)))
                || (!on_call && PLACEHOLDERS.contains(&sig));
            if !ok {
                return Some("Corrupted thought signature.".to_string());
            }
        }
    }
    let turn_start = contents
        .iter()
        .rposition(|c| {
            c["role"] == "user"
                && (c["parts"].as_array().into_iter().flatten())
                    .any(|p| p.get("functionResponse").is_none())
        })
        .map_or(0, |i| i + 1);
    for (i, content) in contents.iter().enumerate().skip(turn_start) {
        if content["role"] != "model" {
            continue;
        }
        let parts = content["parts"].as_array().into_iter().flatten();
        let first_call = parts
            .enumerate()
            .find(|(_, p)| p.get("functionCall").is_some());
        if let Some((j, call)) = first_call {
            if call.get("thoughtSignature").is_none() {
                let name = call["functionCall"]["name"].as_str().unwrap_or("");
                return Some(format!(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                    i * 100 + j + 1
                ));
            }
        }
    }
    None
}

/// A 429 `RESOURCE_EXHAUSTED` as the Gemini API sends it: a
/// `google.rpc.QuotaFailure` naming the quota (`quota_id`, e.g.
/// `GenerateRequestsPerMinutePerProjectPerModel-FreeTier` or a `PerDay`
/// one), `google.rpc.Help` and `google.rpc.RetryInfo` with `retry_delay`
/// (a protobuf duration such as `"37s"`).
pub fn resource_exhausted(quota_id: &str, retry_delay: &str) -> Reply {
    let body = json!({"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": "10"
            }]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
            }]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        ]
    }});
    Reply::status(429, body.to_string())
}
