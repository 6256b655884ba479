//! Anthropic Messages clients (`POST /v1/messages`): requests decoded into
//! the chat model ([`request`]), answers, stream events ([`stream`]) and
//! errors encoded back in Anthropic's shapes.
//!
//! Answers from other families: reasoning without an Anthropic signature
//! becomes a `thinking` block with an empty signature (readable, not
//! replayable), other families' encrypted reasoning is dropped, a refusal
//! is text with `stop_reason: refusal`, and tool-call arguments that are not
//! a JSON object are kept as `{"arguments": "<text>"}` (the client's tool
//! validation then tells the model, rather than a paid answer failing).

mod request;
mod stream;

use crate::protocol::chat::{
    Answer, ChatError, ErrorKind, Family, Finish, Ingress, Part, Request, StreamEncoder, Usage,
};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

pub struct AnthropicMessages;

impl Ingress for AnthropicMessages {
    fn family(&self) -> Family {
        Family::Anthropic
    }

    fn decode_request<'a>(&self, body: &'a [u8]) -> Result<Request<'a>, ChatError> {
        request::decode(body)
    }

    fn encode_answer(&self, answer: &Answer<'_>, model: &str) -> Bytes {
        let mut content = Vec::with_capacity(answer.parts.len());
        let mut tools = false;
        let mut refused = false;
        for part in &answer.parts {
            match part {
                Part::Text(t) if !t.text.is_empty() => {
                    content.push(Item::Block(Block::Text { text: &t.text }))
                }
                Part::Refusal(r) => {
                    refused = true;
                    content.push(Item::Block(Block::Text { text: r }));
                }
                Part::Reasoning(r) => content.extend(reasoning_block(r)),
                Part::ToolCall(c) => {
                    tools = true;
                    content.push(Item::Block(Block::ToolUse {
                        id: &c.id,
                        name: &c.name,
                        input: tool_input(&c.arguments),
                    }));
                }
                Part::Opaque {
                    family: Family::Anthropic,
                    raw,
                } => content.push(Item::Raw(raw)),
                _ => {}
            }
        }
        let (stop_reason, stop_sequence) = stop_reason(answer.finish.as_ref(), tools, refused);
        let msg = Message {
            id: &answer.id,
            kind: "message",
            role: "assistant",
            model,
            content,
            stop_reason,
            stop_sequence,
            usage: UsageOut::from(&answer.usage),
        };
        let mut out = BytesMut::with_capacity(256).writer();
        // Serialising borrowed strings into memory cannot fail.
        let _ = serde_json::to_writer(&mut out, &msg);
        out.into_inner().freeze()
    }

    fn stream_encoder(&self, model: &str, _include_usage: bool) -> Box<dyn StreamEncoder> {
        Box::new(stream::Encoder::new(model))
    }

    fn encode_error(&self, err: &ChatError) -> Bytes {
        let mut out = BytesMut::with_capacity(128).writer();
        let _ = serde_json::to_writer(&mut out, &ErrorBody::new(err));
        out.into_inner().freeze()
    }

    fn stream_error(&self, err: &ChatError) -> Bytes {
        let mut out = BytesMut::with_capacity(128);
        stream::write_event(&mut out, "error", &ErrorBody::new(err));
        out.freeze()
    }
}

#[derive(Serialize)]
struct Message<'r> {
    id: &'r str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'r str,
    content: Vec<Item<'r>>,
    stop_reason: &'static str,
    stop_sequence: Option<&'r str>,
    usage: UsageOut,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'r> {
    Block(Block<'r>),
    Raw(&'r RawValue),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'r> {
    Thinking {
        thinking: &'r str,
        signature: &'r str,
    },
    RedactedThinking {
        data: &'r str,
    },
    Text {
        text: &'r str,
    },
    ToolUse {
        id: &'r str,
        name: &'r str,
        input: Cow<'r, RawValue>,
    },
}

fn reasoning_block<'r>(r: &'r crate::protocol::chat::Reasoning<'_>) -> Option<Item<'r>> {
    if let Some(d) = r
        .redacted
        .as_ref()
        .filter(|d| d.family == Family::Anthropic)
    {
        return Some(Item::Block(Block::RedactedThinking { data: &d.value }));
    }
    let signature = match &r.signature {
        Some(s) if s.family == Family::Anthropic => &s.value,
        _ if r.text.is_empty() => return None,
        _ => "",
    };
    Some(Item::Block(Block::Thinking {
        thinking: &r.text,
        signature,
    }))
}

/// Tool-call arguments as Anthropic's `input` object (see the module docs).
fn tool_input(args: &str) -> Cow<'_, RawValue> {
    let trimmed = args.trim();
    if trimmed.starts_with('{') {
        if let Ok(raw) = serde_json::from_str::<&RawValue>(trimmed) {
            return Cow::Borrowed(raw);
        }
    }
    let text = if trimmed.is_empty() {
        "{}".to_string()
    } else {
        let mut s = String::from(r#"{"arguments":"#);
        s.push_str(&serde_json::to_string(args).unwrap_or_default());
        s.push('}');
        s
    };
    match RawValue::from_string(text) {
        Ok(raw) => Cow::Owned(raw),
        Err(_) => Cow::Owned(RawValue::from_string("{}".into()).unwrap_or_default()),
    }
}

/// Anthropic's `stop_reason` (and `stop_sequence`) for a finish. Some
/// vendors say "stop" after tool calls or a refusal; Anthropic clients run
/// tools only on `tool_use`.
fn stop_reason(
    finish: Option<&Finish>,
    tools: bool,
    refused: bool,
) -> (&'static str, Option<&str>) {
    match finish {
        Some(Finish::StopSequence(seq)) => ("stop_sequence", seq.as_deref()),
        Some(Finish::Length) => ("max_tokens", None),
        Some(Finish::ToolCalls) => ("tool_use", None),
        Some(Finish::ContentFilter) | Some(Finish::Refusal) => ("refusal", None),
        Some(Finish::Pause) => ("pause_turn", None),
        _ if tools => ("tool_use", None),
        _ if refused => ("refusal", None),
        _ => ("end_turn", None),
    }
}

/// Anthropic's usage: input tokens exclude the cache reads and writes it
/// reports apart.
#[derive(Serialize, Default, Clone, Copy)]
struct UsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        UsageOut {
            input_tokens: u
                .prompt_tokens
                .saturating_sub(u.cached_tokens)
                .saturating_sub(u.cache_write_tokens),
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cached_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorInner<'r>,
}

#[derive(Serialize)]
struct ErrorInner<'r> {
    #[serde(rename = "type")]
    kind: &'r str,
    message: Cow<'r, str>,
}

/// Anthropic's error types (a vendor's own word is kept when it is one).
const TYPES: [&str; 11] = [
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
    "error",
];

impl<'r> ErrorBody<'r> {
    fn new(err: &'r ChatError) -> Self {
        let kind = match err.vendor_type.as_deref() {
            Some(t) if TYPES[..10].contains(&t) => t,
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
            kind: "error",
            error: ErrorInner { kind, message },
        }
    }
}
