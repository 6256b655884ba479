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
mod wire;

use crate::protocol::chat::{Answer, ChatError, Family, Ingress, Part, Request, StreamEncoder};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use wire::{stop_reason, ErrorBody, UsageOut};

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

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;
    use crate::protocol::chat::{ErrorKind, Finish, Reasoning, Signature, Text, ToolCall, ToolKind, Usage};

    fn answer(parts: Vec<Part<'static>>, finish: Option<Finish>) -> Answer<'static> {
        Answer {
            id: "msg_1".into(),
            model: "vendor-model".into(),
            created: 1,
            parts,
            finish,
            usage: Usage {
                prompt_tokens: 100,
                completion_tokens: 20,
                total_tokens: 120,
                cached_tokens: 30,
                cache_write_tokens: 10,
                reasoning_tokens: 5,
            },
        }
    }

    fn call(args: &'static str) -> Part<'static> {
        Part::ToolCall(ToolCall { id: "call_1".into(), name: "f".into(), kind: ToolKind::Function, arguments: args.into(), signature: None })
    }

    fn reasoning(text: &'static str, sig: Option<(Family, &'static str)>) -> Part<'static> {
        Part::Reasoning(Reasoning { text: text.into(), signature: sig.map(|(family, v)| Signature { family, value: v.into() }), redacted: None })
    }

    #[test]
    fn answers_encode_as_anthropic_messages() {
        const USAGE: &str = r#""usage":{"input_tokens":60,"cache_creation_input_tokens":10,"cache_read_input_tokens":30,"output_tokens":20}}"#;
        let redacted = Part::Reasoning(Reasoning {
            text: "".into(),
            signature: None,
            redacted: Some(Signature { family: Family::Anthropic, value: "ENC".into() }),
        });
        let raw = RawValue::from_string(r#"{"type":"server_tool_use","id":"s"}"#.into()).ok();
        let cases: Vec<(Answer<'static>, &str)> = vec![
            (
                answer(vec![Part::Text(Text::plain("Hi"))], Some(Finish::Stop)),
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"client-model","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"#,
            ),
            (
                answer(
                    vec![
                        reasoning("think", Some((Family::Anthropic, "sig"))),
                        redacted,
                        Part::Opaque { family: Family::Anthropic, raw: Cow::Owned(raw.unwrap_or_default()) },
                        Part::Text(Text::plain("")),
                        call(r#"{"a":1}"#),
                        call(""),
                        call("{bad"),
                    ],
                    Some(Finish::ToolCalls),
                ),
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"client-model","content":[{"type":"thinking","thinking":"think","signature":"sig"},{"type":"redacted_thinking","data":"ENC"},{"type":"server_tool_use","id":"s"},{"type":"tool_use","id":"call_1","name":"f","input":{"a":1}},{"type":"tool_use","id":"call_1","name":"f","input":{}},{"type":"tool_use","id":"call_1","name":"f","input":{"arguments":"{bad"}}],"stop_reason":"tool_use","stop_sequence":null,"#,
            ),
            // Other families: readable reasoning without a signature, a
            // "stop" after tool calls reads tool_use, a refusal is text.
            (
                answer(vec![reasoning("r", Some((Family::Gemini, "g"))), call("{}")], Some(Finish::Stop)),
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"client-model","content":[{"type":"thinking","thinking":"r","signature":""},{"type":"tool_use","id":"call_1","name":"f","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"#,
            ),
            (
                answer(vec![Part::Refusal("No.".into())], None),
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"client-model","content":[{"type":"text","text":"No."}],"stop_reason":"refusal","stop_sequence":null,"#,
            ),
            (
                answer(vec![], Some(Finish::StopSequence(Some("END".into())))),
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"client-model","content":[],"stop_reason":"stop_sequence","stop_sequence":"END","#,
            ),
        ];
        for (a, want) in cases {
            let got = AnthropicMessages.encode_answer(&a, "client-model");
            assert_eq!(String::from_utf8_lossy(&got), format!("{want}{USAGE}"));
        }
        for (finish, reason) in [
            (Finish::Length, "max_tokens"),
            (Finish::ContentFilter, "refusal"),
            (Finish::Pause, "pause_turn"),
            (Finish::Other("x".into()), "end_turn"),
        ] {
            assert_eq!(stop_reason(Some(&finish), false, false).0, reason);
        }
    }

    #[test]
    fn errors_render_in_anthropic_shape() {
        let cases = [
            (
                ChatError::invalid("messages[0].role", "bad role"),
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages[0].role: bad role"}}"#,
            ),
            (
                ChatError::new(ErrorKind::Authentication, 401, "no key"),
                r#"{"type":"error","error":{"type":"authentication_error","message":"no key"}}"#,
            ),
            (ChatError::new(ErrorKind::Permission, 403, "m"), r#"{"type":"error","error":{"type":"permission_error","message":"m"}}"#),
            (ChatError::new(ErrorKind::NotFound, 404, "m"), r#"{"type":"error","error":{"type":"not_found_error","message":"m"}}"#),
            (ChatError::new(ErrorKind::RequestTooLarge, 413, "m"), r#"{"type":"error","error":{"type":"request_too_large","message":"m"}}"#),
            (ChatError::new(ErrorKind::RateLimited, 429, "m"), r#"{"type":"error","error":{"type":"rate_limit_error","message":"m"}}"#),
            (ChatError::new(ErrorKind::Overloaded, 503, "m"), r#"{"type":"error","error":{"type":"overloaded_error","message":"m"}}"#),
            (ChatError::new(ErrorKind::ContextLength, 400, "m"), r#"{"type":"error","error":{"type":"invalid_request_error","message":"m"}}"#),
            (ChatError::new(ErrorKind::Upstream, 502, "m"), r#"{"type":"error","error":{"type":"api_error","message":"m"}}"#),
            (ChatError::new(ErrorKind::Timeout, 504, "m"), r#"{"type":"error","error":{"type":"timeout_error","message":"m"}}"#),
            (
                ChatError { vendor_type: Some("billing_error".into()), ..ChatError::new(ErrorKind::Authentication, 402, "pay") },
                r#"{"type":"error","error":{"type":"billing_error","message":"pay"}}"#,
            ),
            (
                ChatError { vendor_type: Some("RESOURCE_EXHAUSTED".into()), ..ChatError::new(ErrorKind::RateLimited, 429, "m") },
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"m"}}"#,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(String::from_utf8_lossy(&AnthropicMessages.encode_error(&err)), want);
        }
        let ev = AnthropicMessages.stream_error(&ChatError::new(ErrorKind::Overloaded, 529, "busy"));
        assert_eq!(
            String::from_utf8_lossy(&ev),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n"
        );
    }
}
