//! Anthropic answers and errors decoded into the chat model.

use crate::protocol::chat::{
    id_or_new, now_unix, Answer, ChatError, ErrorKind, Family, Finish, Part, Signature, Text,
    ToolCall, ToolKind, Usage,
};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

pub(super) use crate::protocol::json::{s, S as Key};

/// A token count; vendors occasionally send floats (a negative one counts
/// as not sent).
#[derive(Clone, Copy)]
pub(super) struct Count(Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        Ok(Count(n.as_u64().or_else(|| {
            n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)
        })))
    }
}

/// Anthropic's usage counters; a later report replaces what it names.
#[derive(Deserialize, Default, Clone, Copy)]
pub struct WireUsage {
    input_tokens: Option<Count>,
    output_tokens: Option<Count>,
    cache_read_input_tokens: Option<Count>,
    cache_creation_input_tokens: Option<Count>,
    /// The newer split of `cache_creation_input_tokens` by lifetime.
    cache_creation: Option<CacheCreation>,
}
#[derive(Deserialize, Default, Clone, Copy)]
pub struct CacheCreation {
    ephemeral_1h_input_tokens: Option<Count>,
}

impl WireUsage {
    pub fn update(&mut self, u: &WireUsage) {
        for (new, old) in [
            (u.input_tokens, &mut self.input_tokens),
            (u.output_tokens, &mut self.output_tokens),
            (u.cache_read_input_tokens, &mut self.cache_read_input_tokens),
            (
                u.cache_creation_input_tokens,
                &mut self.cache_creation_input_tokens,
            ),
        ] {
            if new.is_some_and(|c| c.0.is_some()) {
                *old = new;
            }
        }
        self.cache_creation = u.cache_creation.or(self.cache_creation);
    }

    /// Canonical usage: the prompt counts cache reads and writes too.
    pub fn usage(&self) -> Usage {
        let n = |c: Option<Count>| c.and_then(|c| c.0).unwrap_or(0);
        let (read, write) = (
            n(self.cache_read_input_tokens),
            n(self.cache_creation_input_tokens),
        );
        let prompt = n(self.input_tokens)
            .saturating_add(read)
            .saturating_add(write);
        let output = n(self.output_tokens);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: output,
            total_tokens: prompt.saturating_add(output),
            cached_tokens: read,
            cache_write_tokens: write,
            reasoning_tokens: 0,
            cache_write_1h_tokens: n(self
                .cache_creation
                .and_then(|c| c.ephemeral_1h_input_tokens))
            .min(write),
        }
    }
}

pub(super) fn finish(stop_reason: &str, stop_sequence: Option<&str>) -> Finish {
    match stop_reason {
        "end_turn" => Finish::Stop,
        "stop_sequence" => Finish::StopSequence(stop_sequence.map(str::to_string)),
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "tool_use" => Finish::ToolCalls,
        "refusal" => Finish::Refusal,
        "pause_turn" => Finish::Pause,
        other => Finish::Other(other.to_string()),
    }
}

/// A stream event's `message`, a block start or a delta: every field any
/// of them has, flat.
#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct Flat<'a> {
    pub(super) r#type: Option<Key<'a>>,
    pub(super) id: Option<Key<'a>>,
    pub(super) model: Option<Key<'a>>,
    pub(super) stop_reason: Option<Key<'a>>,
    pub(super) stop_sequence: Option<Key<'a>>,
    pub(super) usage: Option<WireUsage>,
    pub(super) text: Option<Key<'a>>,
    pub(super) thinking: Option<Key<'a>>,
    pub(super) signature: Option<Key<'a>>,
    pub(super) data: Option<Key<'a>>,
    pub(super) name: Option<Key<'a>>,
    pub(super) partial_json: Option<Key<'a>>,
    pub(super) input: Option<&'a RawValue>,
}

/// A whole answer, its content blocks read in the same pass (`B` is
/// [`BlockW`]) or, to keep the bytes of blocks this model does not know,
/// as raw JSON (`B` is `&RawValue`).
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a, B: Deserialize<'de>"))]
struct MessageW<'a, B> {
    r#type: Option<Key<'a>>,
    id: Option<Key<'a>>,
    model: Option<Key<'a>>,
    content: Option<Vec<B>>,
    stop_reason: Option<Key<'a>>,
    stop_sequence: Option<Key<'a>>,
    usage: Option<WireUsage>,
}

/// A content block of an answer.
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct BlockW<'a> {
    r#type: Option<Key<'a>>,
    id: Option<Key<'a>>,
    name: Option<Key<'a>>,
    text: Option<Key<'a>>,
    thinking: Option<Key<'a>>,
    signature: Option<Key<'a>>,
    data: Option<Key<'a>>,
    input: Option<&'a RawValue>,
}

pub(super) fn sig(value: Option<Key<'_>>) -> Option<Signature<'_>> {
    let value = s(value).filter(|v| !v.is_empty())?;
    Some(Signature::new(Family::Anthropic, value))
}

pub(super) fn decode(body: &[u8]) -> Result<Answer<'_>, ChatError> {
    let bad = |what: &str, e: serde_json::Error| {
        ChatError::upstream(format!("malformed Anthropic {what}: {e}"))
    };
    let msg: MessageW<BlockW> =
        crate::protocol::json::from_body(body).map_err(|e| bad("answer", e))?;
    if msg.r#type.as_ref().is_some_and(|t| t.0 == "error") {
        // An error body on a success status: the status its type documents.
        return Err(error(0, body));
    }
    let content = msg
        .content
        .ok_or_else(|| ChatError::upstream("Anthropic answer has no content array"))?;
    // Blocks with no canonical equivalent (server tool calls and results,
    // which ran at Anthropic) are kept as their bytes: read the blocks again
    // as raw JSON only when there is one (rare; one pass otherwise).
    const KNOWN: [&str; 4] = ["text", "thinking", "redacted_thinking", "tool_use"];
    let known = |b: &BlockW<'_>| b.r#type.as_ref().is_some_and(|t| KNOWN.contains(&&*t.0));
    let raw = match content.iter().all(known) {
        true => Vec::new(),
        false => crate::protocol::json::from_body::<MessageW<&RawValue>>(body)
            .map_err(|e| bad("answer", e))?
            .content
            .unwrap_or_default(),
    };
    let mut parts = Vec::with_capacity(content.len());
    for (i, b) in content.into_iter().enumerate() {
        parts.extend(match s(b.r#type).as_deref() {
            Some("text") => Some(Part::Text(Text::plain(s(b.text).unwrap_or_default()))),
            Some("thinking") => Some(Part::reasoning(
                s(b.thinking).unwrap_or_default(),
                sig(b.signature),
                None,
            )),
            Some("redacted_thinking") => Some(Part::reasoning("", None, sig(b.data))),
            Some("tool_use") => Some(Part::ToolCall(ToolCall {
                id: s(b.id).unwrap_or_default(),
                name: s(b.name).unwrap_or_default(),
                kind: ToolKind::Function,
                arguments: Cow::Borrowed(b.input.map_or("{}", RawValue::get)),
                signature: None,
            })),
            _ => raw.get(i).map(|raw| Part::Opaque {
                family: Family::Anthropic,
                raw: Cow::Borrowed(*raw),
            }),
        });
    }
    let stop_sequence = s(msg.stop_sequence);
    Ok(Answer {
        id: id_or_new(s(msg.id), "msg_"),
        model: s(msg.model).unwrap_or_default(),
        created: now_unix(),
        parts,
        finish: msg
            .stop_reason
            .map(|r| finish(&r.0, stop_sequence.as_deref())),
        usage: msg.usage.unwrap_or_default().usage(),
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorInner>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorInner {
    Text(String),
    Object {
        r#type: Option<String>,
        message: Option<String>,
    },
}

/// Anthropic's error type -> (kind, the status it documents).
fn kind_for(t: &str) -> Option<(ErrorKind, u16)> {
    Some(match t {
        "invalid_request_error" => (ErrorKind::InvalidRequest, 400),
        "authentication_error" => (ErrorKind::Authentication, 401),
        "billing_error" => (ErrorKind::Authentication, 402),
        "permission_error" => (ErrorKind::Permission, 403),
        "not_found_error" => (ErrorKind::NotFound, 404),
        "request_too_large" => (ErrorKind::RequestTooLarge, 413),
        "rate_limit_error" => (ErrorKind::RateLimited, 429),
        "api_error" => (ErrorKind::Upstream, 500),
        "timeout_error" => (ErrorKind::Timeout, 504),
        "overloaded_error" => (ErrorKind::Overloaded, 529),
        _ => return None,
    })
}

/// An error body (Anthropic's, or whatever a proxy in between sent) in
/// canonical terms. The vendor's status is kept unless it is not an error
/// status (an error body on a 200, say): then the type's status, else 502.
pub(super) fn error(status: u16, body: &[u8]) -> ChatError {
    let (vendor_type, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => match b.error {
            Some(ErrorInner::Object { r#type, message }) => (r#type, message.or(b.message)),
            Some(ErrorInner::Text(t)) => (None, Some(t)),
            None => (None, b.message),
        },
        Err(_) => {
            // Enough to diagnose an HTML error page, not a whole one.
            let cut: String = String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(500)
                .collect();
            (None, (!cut.is_empty()).then_some(cut))
        }
    };
    let known = vendor_type.as_deref().and_then(kind_for);
    let status = match (status, known) {
        (400..=599, _) => status,
        (_, Some((_, s))) => s,
        _ => 502,
    };
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    let kind = match known {
        Some((ErrorKind::InvalidRequest, _)) if message.contains("prompt is too long") => {
            ErrorKind::ContextLength
        }
        Some((k, _)) => k,
        None => ErrorKind::for_status(status),
    };
    ChatError {
        code: vendor_type.clone(),
        vendor_type,
        ..ChatError::new(kind, status, message)
    }
}

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;

    #[test]
    fn answers_decode_into_the_chat_model() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[
            {"type":"thinking","thinking":"Hmm","signature":"sig"},{"type":"redacted_thinking","data":"ENC"},
            {"type":"text","text":"I'll check.","citations":null},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}},
            {"type":"server_tool_use","id":"s","name":"web_search","input":{}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":7.0,"service_tier":"standard"}}"#;
        let show = |p: &Part<'_>| match p {
            Part::Text(t) => format!("text {}", t.text),
            Part::Reasoning(r) => format!("reasoning {} {:?} {:?}", r.text, r.signature.as_ref().map(|s| &s.value), r.redacted.as_ref().map(|s| &s.value)),
            Part::ToolCall(c) => format!("call {} {} {}", c.id, c.name, c.arguments),
            Part::Opaque { raw, .. } => format!("opaque {}", raw.get()),
            _ => "?".into(),
        };
        let a = decode(body).map_err(|e| e.message);
        let a = a.as_ref().map(|a| (a.id.to_string(), a.model.to_string(), a.parts.iter().map(show).collect::<Vec<_>>(), a.finish.clone(), a.usage));
        let parts = ["reasoning Hmm Some(\"sig\") None", "reasoning  None Some(\"ENC\")", "text I'll check.", "call toolu_1 f {\"a\":1}",
            "opaque {\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\",\"input\":{}}"].map(String::from).to_vec();
        let usage = Usage { prompt_tokens: 15, completion_tokens: 7, total_tokens: 22, cached_tokens: 3, cache_write_tokens: 2, reasoning_tokens: 0, ..Usage::default() };
        assert_eq!(a, Ok(("msg_1".into(), "claude-x".into(), parts, Some(Finish::ToolCalls), usage)));
        for (reason, want) in [("end_turn", Finish::Stop), ("max_tokens", Finish::Length), ("model_context_window_exceeded", Finish::Length),
            ("refusal", Finish::Refusal), ("pause_turn", Finish::Pause), ("new_reason", Finish::Other("new_reason".into()))] {
            assert_eq!(finish(reason, None), want);
        }
        // Error-shaped and malformed answers fail.
        for body in [&br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#[..], b"{}", b"<html>"] {
            assert!(decode(body).is_err());
        }
    }

    /// (status, body, kind, status out, message, vendor type).
    type ErrorCase<'a> = (u16, &'a str, ErrorKind, u16, &'a str, Option<&'a str>);

    #[test]
    fn error_bodies_decode_into_chat_errors() {
        use ErrorKind::*;
        let cases: &[ErrorCase<'_>] = &[
            (529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, Overloaded, 529, "Overloaded", Some("overloaded_error")),
            (429, r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#, RateLimited, 429, "slow", Some("rate_limit_error")),
            (401, r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#, Authentication, 401, "invalid x-api-key", Some("authentication_error")),
            (400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}"#, ContextLength, 400, "prompt is too long: 300000 tokens > 200000 maximum", Some("invalid_request_error")),
            (413, r#"{"type":"error","error":{"type":"request_too_large","message":"big"}}"#, RequestTooLarge, 413, "big", Some("request_too_large")),
            // An error body on a 200: the status its type documents.
            (200, r#"{"type":"error","error":{"type":"not_found_error","message":"no model"}}"#, NotFound, 404, "no model", Some("not_found_error")),
            (0, r#"{"type":"error","error":{"type":"weird","message":"w"}}"#, Upstream, 502, "w", Some("weird")),
            (502, "<html><body>Bad gateway</body></html>", Upstream, 502, "<html><body>Bad gateway</body></html>", None),
            (503, "", Overloaded, 503, "upstream returned HTTP 503", None),
            (500, r#"{"error":"plain text"}"#, Upstream, 500, "plain text", None),
            (400, r#"{"error":{"message":"openai style","type":"invalid_request_error"}}"#, InvalidRequest, 400, "openai style", Some("invalid_request_error")),
        ];
        for (status, body, kind, want_status, message, vendor) in cases {
            let e = error(*status, body.as_bytes());
            assert_eq!((e.kind, e.status, e.message.as_str(), e.vendor_type.as_deref()), (*kind, *want_status, *message, *vendor), "{body}");
        }
        assert_eq!(error(500, "x".repeat(2000).as_bytes()).message.len(), 500);
    }
}
