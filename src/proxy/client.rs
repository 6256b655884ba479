//! The client APIs the gateway serves, one [`ClientApi`] each: the ingress
//! adapter that speaks its body format (`crate::protocol::ingress`) plus
//! what the data plane needs around it — how the client presents the
//! gateway token, which of its headers same-family vendors must see, and
//! how usage is read off a pass-through answer without translating it.
//!
//! Adding a client API: an ingress adapter, one `ClientSpec` static here,
//! and its route in `proxy::Gateway::handle`.

use crate::protocol::chat::{Family, Ingress, Usage};
use crate::protocol::ingress;
use serde_json::Value;

/// A client API: a small `Copy` key to its static description.
#[derive(Clone, Copy)]
pub struct ClientApi(&'static ClientSpec);

struct ClientSpec {
    name: &'static str,
    ingress: &'static dyn Ingress,
    /// A header that carries the gateway token besides `Authorization:
    /// Bearer` (and wins over it, as with the vendor's own API).
    key_header: Option<&'static str>,
    /// What a client without a token is told.
    missing_key: &'static str,
    /// Client headers a same-family vendor must see (feature flags that
    /// change the wire format). Repeated headers are joined with ", ".
    forward: &'static [&'static str],
    /// Where a stream event's data keeps its usage object, if anywhere.
    event_usage: fn(&Value) -> Option<&Value>,
    /// Folds a usage object of this API into the running total; `false`
    /// when it is not one.
    usage: fn(&mut Usage, &Value) -> bool,
}

static OPENAI: ClientSpec = ClientSpec {
    name: "openai",
    ingress: &ingress::openai::OpenAiChat,
    key_header: None,
    missing_key: "Missing bearer token: send `Authorization: Bearer <AUTH_TOKEN>`",
    forward: &[],
    event_usage: top_level_usage,
    usage: openai_usage,
};

static ANTHROPIC: ClientSpec = ClientSpec {
    name: "anthropic",
    ingress: &ingress::anthropic::AnthropicMessages,
    // SDKs before 2026-10-21 send `x-api-key`, newer ones a bearer token.
    key_header: Some("x-api-key"),
    missing_key:
        "Missing API key: send `x-api-key: <AUTH_TOKEN>` or `Authorization: Bearer <AUTH_TOKEN>`",
    // The client's version is the wire format it speaks: forwarded as sent
    // (the provider's configured one is used only when it sent none).
    forward: &["anthropic-beta", "anthropic-version"],
    event_usage: anthropic_event_usage,
    usage: anthropic_usage,
};

const GEMINI_SPEC: ClientSpec = ClientSpec {
    name: "gemini",
    ingress: &ingress::gemini::GeminiNative::SSE,
    // Google's SDKs send `x-goog-api-key`; `?key=` is read by the route
    // (`proxy::gemini_native`).
    key_header: Some("x-goog-api-key"),
    missing_key: "Missing API key: send `x-goog-api-key: <AUTH_TOKEN>` or `?key=<AUTH_TOKEN>`",
    forward: &[],
    event_usage: gemini_event_usage,
    usage: gemini_usage,
};
static GEMINI: ClientSpec = GEMINI_SPEC;

/// Gemini streams without `alt=sse`: the same API, streamed as a JSON
/// array. The gateway always asks Gemini vendors for SSE, so these streams
/// are re-encoded even from a Gemini vendor.
static GEMINI_ARRAY: ClientSpec = ClientSpec {
    name: "gemini",
    ingress: &ingress::gemini::GeminiNative::ARRAY,
    ..GEMINI_SPEC
};

impl ClientApi {
    /// Gemini `generateContent` / `streamGenerateContent?alt=sse`
    /// (`POST /v1beta/models/{model}:...`).
    pub const GEMINI: ClientApi = ClientApi(&GEMINI);
    /// Gemini `streamGenerateContent` without `alt=sse` (a JSON array).
    pub const GEMINI_ARRAY: ClientApi = ClientApi(&GEMINI_ARRAY);

    /// Streams of this API are never relayed as the vendor framed them,
    /// even from a same-family vendor (see [`ClientApi::GEMINI_ARRAY`]).
    pub fn reframes_streams(self) -> bool {
        self == ClientApi::GEMINI_ARRAY
    }

    /// What a translated stream of this API is sent as.
    pub fn stream_content_type(self) -> &'static str {
        if self.reframes_streams() {
            "application/json; charset=UTF-8"
        } else {
            "text/event-stream; charset=utf-8"
        }
    }
}

static RESPONSES: ClientSpec = ClientSpec {
    name: "responses",
    ingress: &ingress::responses::OpenAiResponses,
    key_header: None,
    missing_key: "Missing bearer token: send `Authorization: Bearer <AUTH_TOKEN>`",
    forward: &[],
    event_usage: responses_event_usage,
    usage: responses_usage,
};

/// `POST /v1/responses/compact`: served only by Responses-native providers.
static RESPONSES_COMPACT: ClientSpec = ClientSpec {
    name: "responses_compact",
    ingress: &ingress::responses::OpenAiResponses,
    key_header: None,
    missing_key: "Missing bearer token: send `Authorization: Bearer <AUTH_TOKEN>`",
    forward: &[],
    event_usage: responses_event_usage,
    usage: responses_usage,
};

impl ClientApi {
    /// OpenAI Responses (`POST /v1/responses`).
    pub const RESPONSES: ClientApi = ClientApi(&RESPONSES);
    /// OpenAI Responses compaction (`POST /v1/responses/compact`).
    pub const RESPONSES_COMPACT: ClientApi = ClientApi(&RESPONSES_COMPACT);

    /// Does `p` speak this client's API itself (the body passes through,
    /// the answer is relayed)? Same family, or a Responses client on a
    /// provider that is Responses-native.
    pub fn native_at(self, p: &crate::config::Provider) -> bool {
        if self == ClientApi::RESPONSES || self == ClientApi::RESPONSES_COMPACT {
            return p.responses_native;
        }
        self.family() == p.vendor.family()
    }

    /// The upstream path when `p` serves this API natively at a path other
    /// than its chat path (Responses: `{base_path}/responses`).
    pub fn native_path(self, p: &crate::config::Provider) -> Option<String> {
        let suffix = if self == ClientApi::RESPONSES {
            "/responses"
        } else if self == ClientApi::RESPONSES_COMPACT {
            "/responses/compact"
        } else {
            return None;
        };
        p.responses_native
            .then(|| format!("{}{suffix}", p.endpoint.base_path))
    }

    /// Only providers that speak this API natively can serve it (nothing
    /// translates a compaction).
    pub fn native_only(self) -> bool {
        self == ClientApi::RESPONSES_COMPACT
    }

    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    pub const OPENAI: ClientApi = ClientApi(&OPENAI);
    /// Anthropic Messages (`POST /v1/messages`).
    pub const ANTHROPIC: ClientApi = ClientApi(&ANTHROPIC);

    pub fn ingress(self) -> &'static dyn Ingress {
        self.0.ingress
    }

    pub fn family(self) -> Family {
        self.0.ingress.family()
    }

    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    pub fn key_header(self) -> Option<&'static str> {
        self.0.key_header
    }

    pub fn missing_key(self) -> &'static str {
        self.0.missing_key
    }

    pub fn forward(self) -> &'static [&'static str] {
        self.0.forward
    }

    /// Folds the usage one stream event's data carries (if any) into
    /// `acc`; `false` when it carries none.
    pub fn read_event_usage(self, acc: &mut Usage, event: &Value) -> bool {
        (self.0.event_usage)(event).is_some_and(|u| (self.0.usage)(acc, u))
    }

    /// Folds a whole answer's `usage` object into `acc`.
    pub fn read_usage(self, acc: &mut Usage, usage: &Value) -> bool {
        (self.0.usage)(acc, usage)
    }
}

impl Default for ClientApi {
    fn default() -> Self {
        ClientApi::OPENAI
    }
}

impl PartialEq for ClientApi {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for ClientApi {}

impl std::fmt::Debug for ClientApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

/// A token count as vendors write it (some send floats).
fn count(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        _ => 0,
    }
}

fn top_level_usage(event: &Value) -> Option<&Value> {
    event.get("usage")
}

/// Anthropic events: `message_start.message.usage`, `message_delta.usage`.
fn anthropic_event_usage(event: &Value) -> Option<&Value> {
    match event.get("message") {
        Some(m) if event.get("type").and_then(Value::as_str) == Some("message_start") => {
            m.get("usage")
        }
        _ => event.get("usage"),
    }
}

/// Gemini chunks and answers keep theirs in `usageMetadata`.
fn gemini_event_usage(event: &Value) -> Option<&Value> {
    event.get("usageMetadata")
}

/// Gemini `usageMetadata` (cumulative on every chunk): thinking is billed
/// as output, as the Gemini egress adapter counts it.
fn gemini_usage(acc: &mut Usage, u: &Value) -> bool {
    if !u.is_object() {
        return false;
    }
    let prompt = count(u.get("promptTokenCount"));
    let thoughts = count(u.get("thoughtsTokenCount"));
    let completion = count(u.get("candidatesTokenCount")).saturating_add(thoughts);
    let total = match count(u.get("totalTokenCount")) {
        0 => prompt.saturating_add(completion),
        t => t,
    };
    *acc = Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        cached_tokens: count(u.get("cachedContentTokenCount")).min(prompt),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
        cache_write_1h_tokens: 0,
    };
    true
}

/// Responses events: the final `response` object's usage
/// (`response.completed`, `.incomplete`, `.failed`).
fn responses_event_usage(event: &Value) -> Option<&Value> {
    match event.get("type").and_then(Value::as_str) {
        Some("response.completed" | "response.incomplete" | "response.failed") => {
            event.get("response").and_then(|r| r.get("usage"))
        }
        _ => None,
    }
}

/// Responses `usage`: `input_tokens` (cached included), `output_tokens`
/// (reasoning included) and their details.
fn responses_usage(acc: &mut Usage, u: &Value) -> bool {
    if !u.is_object() {
        return false;
    }
    let prompt = count(u.get("input_tokens"));
    let completion = count(u.get("output_tokens"));
    let total = match count(u.get("total_tokens")) {
        0 => prompt.saturating_add(completion),
        t => t,
    };
    let detail = |d: &str, k: &str| count(u.get(d).and_then(|d| d.get(k)));
    *acc = Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        cached_tokens: detail("input_tokens_details", "cached_tokens").min(prompt),
        cache_write_tokens: 0,
        reasoning_tokens: detail("output_tokens_details", "reasoning_tokens"),
        cache_write_1h_tokens: 0,
    };
    true
}

/// OpenAI `usage` (whole answers and the usage chunk of a stream): the
/// latest one is the total. DeepSeek names cache hits
/// `prompt_cache_hit_tokens`; cached is capped at prompt.
fn openai_usage(acc: &mut Usage, u: &Value) -> bool {
    if !u.is_object() {
        return false;
    }
    let prompt = count(u.get("prompt_tokens"));
    let completion = count(u.get("completion_tokens"));
    let total = match count(u.get("total_tokens")) {
        0 => prompt.saturating_add(completion),
        t => t,
    };
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .filter(|c| !c.is_null())
        .or_else(|| u.get("prompt_cache_hit_tokens"));
    let reasoning = u
        .get("completion_tokens_details")
        .and_then(|d| d.get("reasoning_tokens"));
    *acc = Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        cached_tokens: count(cached).min(prompt),
        cache_write_tokens: 0,
        reasoning_tokens: count(reasoning),
        cache_write_1h_tokens: 0,
    };
    true
}

/// Anthropic `usage` (whole message, `message_start.message.usage`,
/// `message_delta.usage`), folded into the total: prompt tokens count
/// cache reads and writes too, so they compare with OpenAI's.
fn anthropic_usage(acc: &mut Usage, u: &Value) -> bool {
    if !u.is_object() {
        return false;
    }
    let n = |k: &str| u.get(k).filter(|v| v.is_number()).map(|v| count(Some(v)));
    let input = [
        n("input_tokens"),
        n("cache_read_input_tokens"),
        n("cache_creation_input_tokens"),
    ];
    if input.iter().any(Option::is_some) {
        acc.prompt_tokens = input
            .iter()
            .flatten()
            .fold(0u64, |a, n| a.saturating_add(*n));
        acc.cached_tokens = n("cache_read_input_tokens").unwrap_or(acc.cached_tokens);
        acc.cache_write_tokens = n("cache_creation_input_tokens").unwrap_or(acc.cache_write_tokens);
    }
    // The newer split of cache writes by lifetime; 1 h writes are priced
    // apart from 5 min ones.
    if let Some(h) = u
        .get("cache_creation")
        .and_then(|c| c.get("ephemeral_1h_input_tokens"))
        .filter(|v| v.is_number())
    {
        acc.cache_write_1h_tokens = count(Some(h)).min(acc.cache_write_tokens);
    }
    if let Some(out) = n("output_tokens") {
        acc.completion_tokens = out;
    }
    acc.total_tokens = acc.prompt_tokens.saturating_add(acc.completion_tokens);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_is_read_in_each_apis_shape() {
        let mut u = Usage::default();
        assert!(ClientApi::OPENAI.read_event_usage(
            &mut u,
            &json!({"usage": {"prompt_tokens": 10.0, "completion_tokens": 5, "prompt_cache_hit_tokens": 30}})
        ));
        assert_eq!(
            (u.prompt_tokens, u.total_tokens, u.cached_tokens),
            (10, 15, 10)
        );
        assert!(!ClientApi::OPENAI.read_event_usage(&mut u, &json!({"usage": null})));

        let mut u = Usage::default();
        let an = ClientApi::ANTHROPIC;
        assert!(an.read_event_usage(
            &mut u,
            &json!({"type": "message_start", "message": {"usage": {"input_tokens": 3, "cache_read_input_tokens": 7, "output_tokens": 1}}})
        ));
        assert!(an.read_event_usage(
            &mut u,
            &json!({"type": "message_delta", "usage": {"output_tokens": 9}})
        ));
        assert_eq!(
            (
                u.prompt_tokens,
                u.cached_tokens,
                u.completion_tokens,
                u.total_tokens
            ),
            (10, 7, 9, 19)
        );
        // A whole answer's usage object.
        let mut u = Usage::default();
        assert!(an.read_usage(&mut u, &json!({"input_tokens": 4, "output_tokens": 2})));
        assert_eq!(u.total_tokens, 6);

        // Gemini: usageMetadata on a chunk, thoughts billed as output.
        let mut u = Usage::default();
        assert!(ClientApi::GEMINI.read_event_usage(
            &mut u,
            &json!({"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 2, "totalTokenCount": 10}})
        ));
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.reasoning_tokens,
                u.total_tokens
            ),
            (5, 5, 2, 10)
        );
        assert!(!ClientApi::GEMINI.read_event_usage(&mut u, &json!({"usage": {}})));
    }

    #[test]
    fn responses_usage_is_read_from_the_final_event_and_whole_answers() {
        let r = ClientApi::RESPONSES;
        let mut u = Usage::default();
        assert!(!r.read_event_usage(
            &mut u,
            &json!({"type": "response.created", "response": {"usage": null}})
        ));
        assert!(r.read_event_usage(
            &mut u,
            &json!({"type": "response.completed", "response": {"usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15}}})
        ));
        assert_eq!(
            (
                u.prompt_tokens,
                u.cached_tokens,
                u.completion_tokens,
                u.reasoning_tokens,
                u.total_tokens
            ),
            (10, 4, 5, 2, 15)
        );
        let mut u = Usage::default();
        assert!(r.read_usage(&mut u, &json!({"input_tokens": 3, "output_tokens": 1})));
        assert_eq!(u.total_tokens, 4);
    }
}
