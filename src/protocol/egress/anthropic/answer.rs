//! Anthropic answers and errors decoded into the chat model.

use crate::protocol::chat::{
    generated_id, now_unix, Answer, ChatError, ErrorKind, Family, Finish, Part, Reasoning,
    Signature, Str, Text, ToolCall, ToolKind, Usage,
};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// serde borrows a `Cow<str>` only when it is the field's whole type.
pub(super) fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Str<'a>>, D::Error> {
    Ok(Option::<Key<'a>>::deserialize(d)?.map(|k| k.0))
}

/// Anthropic's usage counters; a later report replaces what it names.
#[derive(Deserialize, Default, Clone, Copy)]
pub(super) struct WireUsage {
    #[serde(default, deserialize_with = "count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_creation_input_tokens: Option<u64>,
}

/// A token count; vendors occasionally send floats or nulls.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    Ok(n.and_then(|n| {
        n.as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    }))
}

impl WireUsage {
    pub(super) fn update(&mut self, u: &WireUsage) {
        self.input_tokens = u.input_tokens.or(self.input_tokens);
        self.output_tokens = u.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = u.cache_read_input_tokens.or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = u
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }

    /// Canonical usage: the prompt counts cache reads and writes too.
    pub(super) fn usage(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(read)
            .saturating_add(write);
        let output = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: output,
            total_tokens: prompt.saturating_add(output),
            cached_tokens: read,
            cache_write_tokens: write,
            reasoning_tokens: 0,
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

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    model: Option<Str<'a>>,
    #[serde(borrow, default)]
    content: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    stop_reason: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    stop_sequence: Option<Str<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// Every field of an answer's content block, a stream's block start or
/// delta, flat.
#[derive(Deserialize, Default)]
pub(super) struct Flat<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    pub(super) kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) text: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) thinking: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) signature: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) data: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) name: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) partial_json: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) stop_reason: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) stop_sequence: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(super) input: Option<&'a RawValue>,
}

fn sig(family: Family, value: Option<Str<'_>>) -> Option<Signature<'_>> {
    value
        .filter(|v| !v.is_empty())
        .map(|value| Signature { family, value })
}

pub(super) fn decode(body: &[u8]) -> Result<Answer<'_>, ChatError> {
    let msg: Message = serde_json::from_slice(body)
        .map_err(|e| ChatError::upstream(format!("malformed Anthropic answer: {e}")))?;
    if msg.kind.as_deref() == Some("error") {
        // An error body on a success status: the status its type documents.
        return Err(error(0, body));
    }
    let content = msg
        .content
        .ok_or_else(|| ChatError::upstream("Anthropic answer has no content array"))?;
    let mut parts = Vec::with_capacity(content.len());
    for raw in content {
        let b: Flat = serde_json::from_str(raw.get())
            .map_err(|e| ChatError::upstream(format!("malformed Anthropic content block: {e}")))?;
        parts.push(match b.kind.as_deref() {
            Some("text") => Part::Text(Text::plain(b.text.unwrap_or_default())),
            Some("thinking") => Part::Reasoning(Reasoning {
                text: b.thinking.unwrap_or_default(),
                signature: sig(Family::Anthropic, b.signature),
                redacted: None,
            }),
            Some("redacted_thinking") => Part::Reasoning(Reasoning {
                text: Cow::Borrowed(""),
                signature: None,
                redacted: sig(Family::Anthropic, b.data),
            }),
            Some("tool_use") => Part::ToolCall(ToolCall {
                id: b.id.unwrap_or_default(),
                name: b.name.unwrap_or_default(),
                kind: ToolKind::Function,
                arguments: Cow::Borrowed(b.input.map(RawValue::get).unwrap_or("{}")),
                signature: None,
            }),
            // Server tool calls and results ran at Anthropic.
            _ => Part::Opaque {
                family: Family::Anthropic,
                raw: Cow::Borrowed(raw),
            },
        });
    }
    Ok(Answer {
        id: msg
            .id
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| Cow::Owned(generated_id("msg_"))),
        model: msg.model.unwrap_or_default(),
        created: now_unix(),
        parts,
        finish: msg
            .stop_reason
            .map(|r| finish(&r, msg.stop_sequence.as_deref())),
        usage: msg.usage.unwrap_or_default().usage(),
    })
}

// ---------------------------------------------------------------- errors

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorInner>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorInner {
    Text(String),
    Object {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
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
        Ok(ErrorBody {
            error: Some(ErrorInner::Object { kind, message }),
            message: m2,
        }) => (kind, message.or(m2)),
        Ok(ErrorBody {
            error: Some(ErrorInner::Text(t)),
            ..
        }) => (None, Some(t)),
        Ok(ErrorBody {
            error: None,
            message,
        }) => (None, message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            // Enough to diagnose an HTML error page, not a whole one.
            let cut: String = text.trim().chars().take(500).collect();
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
        let a = decode(body).map_err(|e| e.message);
        let a = a.as_ref().map(|a| {
            let parts: Vec<String> = a
                .parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => format!("text {}", t.text),
                    Part::Reasoning(r) => {
                        format!("reasoning {} {:?} {:?}", r.text, r.signature.as_ref().map(|s| &s.value), r.redacted.as_ref().map(|s| &s.value))
                    }
                    Part::ToolCall(c) => format!("call {} {} {}", c.id, c.name, c.arguments),
                    Part::Opaque { raw, .. } => format!("opaque {}", raw.get()),
                    _ => "?".into(),
                })
                .collect();
            (a.id.to_string(), a.model.to_string(), parts, a.finish.clone(), a.usage)
        });
        assert_eq!(
            a,
            Ok((
                "msg_1".into(),
                "claude-x".into(),
                vec![
                    "reasoning Hmm Some(\"sig\") None".into(),
                    "reasoning  None Some(\"ENC\")".into(),
                    "text I'll check.".into(),
                    "call toolu_1 f {\"a\":1}".into(),
                    "opaque {\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\",\"input\":{}}".into(),
                ],
                Some(Finish::ToolCalls),
                Usage { prompt_tokens: 15, completion_tokens: 7, total_tokens: 22, cached_tokens: 3, cache_write_tokens: 2, reasoning_tokens: 0 },
            ))
        );
        for (reason, want) in [
            ("end_turn", Finish::Stop),
            ("max_tokens", Finish::Length),
            ("model_context_window_exceeded", Finish::Length),
            ("refusal", Finish::Refusal),
            ("pause_turn", Finish::Pause),
            ("new_reason", Finish::Other("new_reason".into())),
        ] {
            assert_eq!(finish(reason, None), want);
        }
        // Error-shaped and malformed answers fail.
        for body in [&br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#[..], b"{}", b"<html>"] {
            assert!(decode(body).is_err());
        }
    }

    #[test]
    fn error_bodies_decode_into_chat_errors() {
        type Case<'c> = (u16, &'c str, ErrorKind, u16, &'c str, Option<&'c str>);
        let cases: &[Case] = &[
            (
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                ErrorKind::Overloaded,
                529,
                "Overloaded",
                Some("overloaded_error"),
            ),
            (
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
                ErrorKind::RateLimited,
                429,
                "slow",
                Some("rate_limit_error"),
            ),
            (
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
                ErrorKind::Authentication,
                401,
                "invalid x-api-key",
                Some("authentication_error"),
            ),
            (
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}"#,
                ErrorKind::ContextLength,
                400,
                "prompt is too long: 300000 tokens > 200000 maximum",
                Some("invalid_request_error"),
            ),
            (
                413,
                r#"{"type":"error","error":{"type":"request_too_large","message":"big"}}"#,
                ErrorKind::RequestTooLarge,
                413,
                "big",
                Some("request_too_large"),
            ),
            // An error body on a 200: the status its type documents.
            (
                200,
                r#"{"type":"error","error":{"type":"not_found_error","message":"no model"}}"#,
                ErrorKind::NotFound,
                404,
                "no model",
                Some("not_found_error"),
            ),
            (0, r#"{"type":"error","error":{"type":"weird","message":"w"}}"#, ErrorKind::Upstream, 502, "w", Some("weird")),
            (502, "<html><body>Bad gateway</body></html>", ErrorKind::Upstream, 502, "<html><body>Bad gateway</body></html>", None),
            (503, "", ErrorKind::Overloaded, 503, "upstream returned HTTP 503", None),
            (500, r#"{"error":"plain text"}"#, ErrorKind::Upstream, 500, "plain text", None),
            (
                400,
                r#"{"error":{"message":"openai style","type":"invalid_request_error"}}"#,
                ErrorKind::InvalidRequest,
                400,
                "openai style",
                Some("invalid_request_error"),
            ),
        ];
        for (status, body, kind, want_status, message, vendor) in cases {
            let e = error(*status, body.as_bytes());
            assert_eq!((e.kind, e.status, e.message.as_str(), e.vendor_type.as_deref()), (*kind, *want_status, *message, *vendor), "{body}");
        }
        let long = "x".repeat(2000);
        assert_eq!(error(500, long.as_bytes()).message.len(), 500);
    }
}
