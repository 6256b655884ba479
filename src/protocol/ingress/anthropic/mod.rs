//! Anthropic Messages clients (`POST /v1/messages`): requests decoded into
//! the chat model ([`request`]), answers, stream events ([`stream`]) and
//! errors encoded back in Anthropic's shapes.
//!
//! Answers from other families: reasoning without an Anthropic signature
//! becomes a `thinking` block with an empty signature (readable, not
//! replayable; Gemini's travel marked, see `wire::GEMINI_SIGNATURE`); other families' encrypted reasoning is dropped, a refusal
//! is text with `stop_reason: refusal`, and tool-call arguments that are not
//! a JSON object are kept as `{"arguments": "<text>"}` (the client's tool
//! validation then tells the model, rather than a paid answer failing).

mod request;
mod stream;
mod wire;

use crate::protocol::chat::{
    Answer, ChatError, Family, Ingress, Part, Reasoning, Request, StreamEncoder,
};
use crate::protocol::json::{empty_object, to_bytes};
use bytes::{Bytes, BytesMut};
use serde_json::value::RawValue;
use std::borrow::Cow;
use wire::{error_body, stop_reason, write_event, BlockOut};

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
        let (mut tools, mut refused) = (false, false);
        for part in &answer.parts {
            let block = match part {
                Part::Text(t) if !t.text.is_empty() => Some(BlockOut::Text { text: &t.text }),
                Part::Refusal(r) => {
                    refused = true;
                    Some(BlockOut::Text { text: r })
                }
                Part::Reasoning(r) => reasoning_block(r),
                Part::ToolCall(c) => {
                    tools = true;
                    let signed = c.signature.as_ref().filter(|s| s.family == Family::Gemini);
                    let thinking = |signature| BlockOut::Thinking {
                        thinking: "",
                        signature,
                    };
                    content.extend(signed.and_then(wire::client_signature).map(thinking));
                    let input = tool_input(&c.arguments);
                    Some(BlockOut::ToolUse {
                        id: &c.id,
                        name: &c.name,
                        input,
                    })
                }
                Part::Opaque {
                    family: Family::Anthropic,
                    raw,
                } => Some(BlockOut::Raw(raw)),
                _ => None,
            };
            content.extend(block);
        }
        let stop = stop_reason(answer.finish.as_ref(), tools, refused);
        // ~320 bytes besides the answer's texts.
        let mut out = BytesMut::with_capacity(384 + model.len() + answer.buffer_hint());
        let (id, usage) = (&answer.id, &answer.usage);
        wire::message(&mut out, id, model, &content, Some(stop), usage);
        out.freeze()
    }

    fn stream_encoder(&self, model: &str, _include_usage: bool) -> Box<dyn StreamEncoder> {
        Box::new(stream::Encoder::new(model))
    }

    fn encode_error(&self, err: &ChatError) -> Bytes {
        to_bytes(&error_body(err), 128)
    }

    fn stream_error(&self, err: &ChatError) -> Bytes {
        let mut out = BytesMut::with_capacity(128);
        write_event(&mut out, "error", &error_body(err));
        out.freeze()
    }
}

fn reasoning_block<'r>(r: &'r Reasoning<'_>) -> Option<BlockOut<'r>> {
    let (thinking, anthropic) = (&r.text, Some(Family::Anthropic));
    match (
        &r.redacted,
        r.signature.as_ref().and_then(wire::client_signature),
    ) {
        (Some(d), _) if Some(d.family) == anthropic => {
            Some(BlockOut::RedactedThinking { data: &d.value })
        }
        (_, Some(signature)) => Some(BlockOut::Thinking {
            thinking,
            signature,
        }),
        _ if r.text.is_empty() => None,
        _ => Some(BlockOut::Thinking {
            thinking,
            signature: Cow::Borrowed(""),
        }),
    }
}

/// Tool-call arguments as Anthropic's `input` object (see the module docs).
fn tool_input(args: &str) -> Cow<'_, RawValue> {
    let trimmed = args.trim();
    if let Some(Ok(raw)) = trimmed
        .starts_with('{')
        .then(|| serde_json::from_str(trimmed))
    {
        return Cow::Borrowed(raw);
    }
    let text = match trimmed {
        "" => "{}".to_string(),
        _ => format!(
            r#"{{"arguments":{}}}"#,
            serde_json::to_string(args).unwrap_or_default()
        ),
    };
    let raw = RawValue::from_string(text);
    Cow::Owned(raw.unwrap_or_else(|_| empty_object().to_owned()))
}

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;
    use crate::protocol::chat::{ErrorKind, Finish, Signature, Text, ToolCall, ToolKind, Usage};

    fn answer(parts: Vec<Part<'static>>, finish: Option<Finish>) -> Answer<'static> {
        let usage = Usage { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, cached_tokens: 30, cache_write_tokens: 10, reasoning_tokens: 5, ..Usage::default() };
        Answer { id: "msg_1".into(), model: "vendor-model".into(), created: 1, parts, finish, usage }
    }
    fn call(args: &'static str) -> Part<'static> {
        Part::ToolCall(ToolCall { id: "call_1".into(), name: "f".into(), kind: ToolKind::Function, arguments: args.into(), signature: None })
    }
    fn sig(family: Family, v: &'static str) -> Option<Signature<'static>> { Some(Signature::new(family, v)) }
    fn reasoning(text: &'static str, signature: Option<Signature<'static>>, redacted: Option<Signature<'static>>) -> Part<'static> {
        Part::reasoning(text, signature, redacted)
    }

    #[test]
    fn answers_encode_as_anthropic_messages() {
        let raw = RawValue::from_string(r#"{"type":"server_tool_use","id":"s"}"#.into()).unwrap_or_default();
        let opaque = Part::Opaque { family: Family::Anthropic, raw: Cow::Owned(raw) };
        let cases: Vec<(Answer<'static>, &str, &str)> = vec![
            (answer(vec![Part::Text(Text::plain("Hi"))], Some(Finish::Stop)), r#"[{"type":"text","text":"Hi"}]"#, r#""end_turn","stop_sequence":null"#),
            (answer(vec![reasoning("think", sig(Family::Anthropic, "sig"), None), reasoning("", None, sig(Family::Anthropic, "ENC")), opaque, Part::Text(Text::plain("")), call(r#"{"a":1}"#), call(""), call("{bad")], Some(Finish::ToolCalls)),
             r#"[{"type":"thinking","thinking":"think","signature":"sig"},{"type":"redacted_thinking","data":"ENC"},{"type":"server_tool_use","id":"s"},{"type":"tool_use","id":"call_1","name":"f","input":{"a":1}},{"type":"tool_use","id":"call_1","name":"f","input":{}},{"type":"tool_use","id":"call_1","name":"f","input":{"arguments":"{bad"}}]"#, r#""tool_use","stop_sequence":null"#),
            // Other families: readable reasoning without a signature, a
            // "stop" after tool calls reads tool_use, a refusal is text.
            (answer(vec![reasoning("r", sig(Family::OpenAi, "o"), None), call("{}")], Some(Finish::Stop)),
             r#"[{"type":"thinking","thinking":"r","signature":""},{"type":"tool_use","id":"call_1","name":"f","input":{}}]"#, r#""tool_use","stop_sequence":null"#),
            // Gemini signatures travel marked: on reasoning, and a call's in
            // an empty thinking block before its tool_use.
            (answer(vec![reasoning("r", sig(Family::Gemini, "g"), None), Part::ToolCall(ToolCall { signature: sig(Family::Gemini, "c"), ..match call("{}") { Part::ToolCall(c) => c, _ => unreachable!() } })], Some(Finish::ToolCalls)),
             r#"[{"type":"thinking","thinking":"r","signature":"gemini:g"},{"type":"thinking","thinking":"","signature":"gemini:c"},{"type":"tool_use","id":"call_1","name":"f","input":{}}]"#, r#""tool_use","stop_sequence":null"#),
            (answer(vec![Part::Refusal("No.".into())], None), r#"[{"type":"text","text":"No."}]"#, r#""refusal","stop_sequence":null"#),
            (answer(vec![], Some(Finish::StopSequence(Some("END".into())))), "[]", r#""stop_sequence","stop_sequence":"END""#),
        ];
        for (a, content, stop) in cases {
            let want = format!(r#"{{"id":"msg_1","type":"message","role":"assistant","model":"client-model","content":{content},"stop_reason":{stop},"usage":{{"input_tokens":60,"cache_creation_input_tokens":10,"cache_read_input_tokens":30,"output_tokens":20}}}}"#);
            assert_eq!(String::from_utf8_lossy(&AnthropicMessages.encode_answer(&a, "client-model")), want);
        }
        for (finish, reason) in [(Finish::Length, "max_tokens"), (Finish::ContentFilter, "refusal"), (Finish::Pause, "pause_turn"), (Finish::Other("x".into()), "end_turn")] {
            assert_eq!(stop_reason(Some(&finish), false, false).0, reason);
        }
    }

    #[test]
    fn errors_render_in_anthropic_shape() {
        use ErrorKind::*;
        let vendor = |t: &str, e: ChatError| ChatError { vendor_type: Some(t.into()), ..e };
        let cases = [
            (ChatError::invalid("messages[0].role", "bad role"), "invalid_request_error", "messages[0].role: bad role"),
            (ChatError::new(Authentication, 401, "no key"), "authentication_error", "no key"),
            (ChatError::new(Permission, 403, "m"), "permission_error", "m"),
            (ChatError::new(NotFound, 404, "m"), "not_found_error", "m"),
            (ChatError::new(RequestTooLarge, 413, "m"), "request_too_large", "m"),
            (ChatError::new(RateLimited, 429, "m"), "rate_limit_error", "m"),
            (ChatError::new(Overloaded, 503, "m"), "overloaded_error", "m"),
            (ChatError::new(ContextLength, 400, "m"), "invalid_request_error", "m"),
            (ChatError::new(Upstream, 502, "m"), "api_error", "m"),
            (ChatError::new(Timeout, 504, "m"), "timeout_error", "m"),
            (vendor("billing_error", ChatError::new(Authentication, 402, "pay")), "billing_error", "pay"),
            (vendor("RESOURCE_EXHAUSTED", ChatError::new(RateLimited, 429, "m")), "rate_limit_error", "m"),
        ];
        for (err, kind, message) in cases {
            let want = format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}}}}"#);
            assert_eq!(String::from_utf8_lossy(&AnthropicMessages.encode_error(&err)), want);
        }
        let ev = AnthropicMessages.stream_error(&ChatError::new(Overloaded, 529, "busy"));
        assert_eq!(String::from_utf8_lossy(&ev), "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n");
    }
}
