//! Shapes both the whole answer (`mod.rs`) and the stream encoder
//! (`stream.rs`) write: blocks, the message, stop reasons, usage and error
//! bodies. A leaf, so neither file imports the other.

use crate::protocol::chat::{ChatError, ErrorKind, Family, Finish, Signature, Usage};
use crate::protocol::json::{push_count, push_str};
use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One SSE event with its JSON data, written straight into `out`.
pub(super) fn write_event(out: &mut BytesMut, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Compact JSON has no line break; writing into memory cannot fail.
    let _ = serde_json::to_writer((&mut *out).writer(), data);
    out.extend_from_slice(b"\n\n");
}

/// Marks a Gemini thought signature in a `thinking` block's `signature`
/// (Anthropic's are base64: no `:`), so the client's next turn gives it
/// back to Gemini. An empty such block right before a `tool_use` holds
/// that call's signature.
pub(super) const GEMINI_SIGNATURE: &str = "gemini:";

/// A signature as an Anthropic client keeps it (Gemini's marked); `None`
/// for other families'.
pub(super) fn client_signature<'r>(s: &'r Signature<'_>) -> Option<Cow<'r, str>> {
    match s.family {
        Family::Anthropic => Some(Cow::Borrowed(&s.value)),
        Family::Gemini => Some(Cow::Owned(format!("{GEMINI_SIGNATURE}{}", s.value))),
        Family::OpenAi | Family::OpenAiResponses => None,
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum BlockOut<'r> {
    Text {
        text: &'r str,
    },
    Thinking {
        thinking: &'r str,
        signature: Cow<'r, str>,
    },
    RedactedThinking {
        data: &'r str,
    },
    ToolUse {
        id: &'r str,
        name: &'r str,
        input: Cow<'r, RawValue>,
    },
    #[serde(untagged)]
    Raw(&'r RawValue),
}

impl BlockOut<'_> {
    /// The block's JSON: text (nearly every block) by hand.
    pub(super) fn write(&self, out: &mut BytesMut) {
        match self {
            BlockOut::Text { text } => {
                out.extend_from_slice(br#"{"type":"text","text":"#);
                push_str(out, text);
                out.extend_from_slice(b"}");
            }
            // Writing into memory cannot fail.
            other => drop(serde_json::to_writer(out.writer(), other)),
        }
    }
}

/// A message object, written by hand (serde's struct writer cost ~3k
/// instructions per answer); `stop` is `None` in `message_start`.
pub(super) fn message(
    out: &mut BytesMut,
    id: &str,
    model: &str,
    content: &[BlockOut<'_>],
    stop: Option<(&str, Option<&str>)>,
    usage: &Usage,
) {
    out.extend_from_slice(br#"{"id":"#);
    push_str(out, id);
    out.extend_from_slice(br#","type":"message","role":"assistant","model":"#);
    push_str(out, model);
    out.extend_from_slice(br#","content":["#);
    for (i, block) in content.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        block.write(out);
    }
    out.extend_from_slice(b"],");
    stop_members(out, stop);
    out.extend_from_slice(br#","usage":"#);
    usage_out(out, usage);
    out.extend_from_slice(b"}");
}

/// `"stop_reason":…,"stop_sequence":…` (null when not known yet).
pub(super) fn stop_members(out: &mut BytesMut, stop: Option<(&str, Option<&str>)>) {
    let (reason, sequence) = stop.map_or((None, None), |(r, s)| (Some(r), s));
    for (key, v) in [
        (&br#""stop_reason":"#[..], reason),
        (br#","stop_sequence":"#, sequence),
    ] {
        out.extend_from_slice(key);
        match v {
            Some(v) => push_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// Anthropic's `stop_reason` (and `stop_sequence`) for a finish. Some
/// vendors say "stop" after tool calls or a refusal; Anthropic clients run
/// tools only on `tool_use`.
pub(super) fn stop_reason(
    finish: Option<&Finish>,
    tools: bool,
    refused: bool,
) -> (&'static str, Option<&str>) {
    match finish {
        Some(Finish::StopSequence(seq)) => ("stop_sequence", seq.as_deref()),
        Some(Finish::Length) => ("max_tokens", None),
        Some(Finish::ToolCalls) => ("tool_use", None),
        Some(Finish::ContentFilter | Finish::Refusal) => ("refusal", None),
        Some(Finish::Pause) => ("pause_turn", None),
        _ if tools => ("tool_use", None),
        _ if refused => ("refusal", None),
        _ => ("end_turn", None),
    }
}

/// Anthropic's usage: input tokens exclude the cache reads and writes it
/// reports apart.
pub(super) fn usage_out(out: &mut BytesMut, u: &Usage) {
    let (read, write) = (u.cached_tokens, u.cache_write_tokens);
    out.extend_from_slice(b"{");
    let input = u.prompt_tokens.saturating_sub(read).saturating_sub(write);
    push_count(out, "input_tokens", input);
    push_count(out, "cache_creation_input_tokens", write);
    push_count(out, "cache_read_input_tokens", read);
    push_count(out, "output_tokens", u.completion_tokens);
    out.extend_from_slice(b"}");
}

#[derive(Serialize)]
pub(super) struct ErrorBody<'r> {
    r#type: &'static str,
    error: ErrorInner<'r>,
}

#[derive(Serialize)]
struct ErrorInner<'r> {
    r#type: &'r str,
    message: Cow<'r, str>,
}

/// Anthropic's error types: a vendor's own word is kept when it is one.
const TYPES: &str = "invalid_request_error authentication_error billing_error permission_error \
    not_found_error request_too_large rate_limit_error api_error timeout_error overloaded_error";

pub(super) fn error_body(err: &ChatError) -> ErrorBody<'_> {
    let r#type = match err.vendor_type.as_deref() {
        Some(t) if TYPES.split_whitespace().any(|x| x == t) => t,
        _ => match err.kind {
            ErrorKind::InvalidRequest | ErrorKind::ContextLength => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Upstream => "api_error",
        },
    };
    // Anthropic has no `param`: the field goes in front of the message.
    let message = match &err.param {
        Some(p) => Cow::Owned(format!("{p}: {}", err.message)),
        None => Cow::Borrowed(err.message.as_str()),
    };
    ErrorBody {
        r#type: "error",
        error: ErrorInner { r#type, message },
    }
}
