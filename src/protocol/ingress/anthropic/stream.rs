//! Canonical stream events written as Anthropic's event sequence:
//! `message_start`, per block `content_block_start` / `_delta` / `_stop`,
//! then `message_delta` (stop reason, usage) and `message_stop`.
//!
//! `message_start` is held back until the first event after `Start` that is
//! not `Usage`, so it carries the input usage when the vendor reported it
//! up front (as Anthropic does); `message_delta` repeats every count. A
//! reasoning block opens when its first delta shows whether it is readable
//! (`thinking`) or encrypted (`redacted_thinking`, whose data Anthropic
//! sends in the block start).

use super::wire::{stop_reason, ErrorBody, UsageOut};
use crate::protocol::chat::{generated_id, Block, Delta, Event, Family, StreamEncoder, Usage};
use bytes::{BufMut, BytesMut};
use serde::Serialize;

/// One SSE event with its JSON data, written straight into `out`.
pub(super) fn write_event(out: &mut BytesMut, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Compact JSON has no line break; writing into memory cannot fail.
    let _ = serde_json::to_writer((&mut *out).writer(), data);
    out.extend_from_slice(b"\n\n");
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text,
    Tool,
    /// A reasoning block whose start has not been written yet.
    PendingReasoning,
    Thinking,
    Redacted,
}

pub(super) struct Encoder {
    model: String,
    id: Option<String>,
    /// `Start` came; `message_start` is not written yet.
    pending: bool,
    started: bool,
    stopped: bool,
    usage: Usage,
    /// The open block: its kind and the index the client sees.
    open: Option<(Open, usize)>,
    next: usize,
    tools: bool,
    refused: bool,
}

impl Encoder {
    pub(super) fn new(model: &str) -> Self {
        Encoder {
            model: model.to_string(),
            id: None,
            pending: false,
            started: false,
            stopped: false,
            usage: Usage::default(),
            open: None,
            next: 0,
            tools: false,
            refused: false,
        }
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let id = self.id.take().unwrap_or_else(|| generated_id("msg_"));
        let data = serde_json::json!({
            "type": "message_start",
            "message": {
                "id": id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": UsageOut::from(&self.usage),
            }
        });
        write_event(out, "message_start", &data);
    }

    fn block_start(&mut self, kind: Open, block: &impl Serialize, out: &mut BytesMut) -> usize {
        let index = match self.open {
            Some((Open::PendingReasoning, i)) => i,
            _ => {
                self.next += 1;
                self.next - 1
            }
        };
        self.open = Some((kind, index));
        write_event(
            out,
            "content_block_start",
            &StartData {
                kind: "content_block_start",
                index,
                content_block: block,
            },
        );
        index
    }

    fn close(&mut self, out: &mut BytesMut) {
        match self.open.take() {
            None => {}
            Some((Open::PendingReasoning, i)) => {
                self.open = Some((Open::PendingReasoning, i));
                self.block_start(Open::Thinking, &thinking_block(), out);
                self.close(out);
            }
            Some((_, index)) => write_event(
                out,
                "content_block_stop",
                &StopData {
                    kind: "content_block_stop",
                    index,
                },
            ),
        }
    }

    fn delta(&mut self, delta: &Delta<'_>, out: &mut BytesMut) {
        let Some((open, mut index)) = self.open else {
            return;
        };
        let d = match delta {
            Delta::Text(t) | Delta::Refusal(t) => DeltaOut::TextDelta { text: t },
            Delta::ToolArguments(a) if !a.is_empty() => {
                DeltaOut::InputJsonDelta { partial_json: a }
            }
            Delta::Reasoning(t) => {
                if open == Open::PendingReasoning {
                    index = self.block_start(Open::Thinking, &thinking_block(), out);
                }
                DeltaOut::ThinkingDelta { thinking: t }
            }
            Delta::Signature(s) if s.family == Family::Anthropic => {
                if open == Open::PendingReasoning {
                    index = self.block_start(Open::Thinking, &thinking_block(), out);
                }
                DeltaOut::SignatureDelta {
                    signature: &s.value,
                }
            }
            Delta::Redacted(r)
                if r.family == Family::Anthropic && open == Open::PendingReasoning =>
            {
                let block = serde_json::json!({"type": "redacted_thinking", "data": r.value});
                self.block_start(Open::Redacted, &block, out);
                return;
            }
            // Other families' signatures and encrypted reasoning mean
            // nothing to Anthropic clients.
            _ => return,
        };
        write_event(
            out,
            "content_block_delta",
            &DeltaData {
                kind: "content_block_delta",
                index,
                delta: d,
            },
        );
    }
}

fn thinking_block() -> serde_json::Value {
    serde_json::json!({"type": "thinking", "thinking": "", "signature": ""})
}

#[derive(Serialize)]
struct StartData<'r, B: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: &'r B,
}

#[derive(Serialize)]
struct StopData {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

#[derive(Serialize)]
struct DeltaData<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: DeltaOut<'r>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // Anthropic's own names
enum DeltaOut<'r> {
    TextDelta { text: &'r str },
    ThinkingDelta { thinking: &'r str },
    SignatureDelta { signature: &'r str },
    InputJsonDelta { partial_json: &'r str },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut<'r> {
    Text {
        text: &'static str,
    },
    ToolUse {
        id: &'r str,
        name: &'r str,
        input: Empty,
    },
}

#[derive(Serialize)]
struct Empty {}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &Event<'_>, out: &mut BytesMut) {
        if self.stopped {
            return;
        }
        match ev {
            Event::Start { id, .. } => {
                if !self.started && !id.is_empty() {
                    self.id = Some(id.to_string());
                }
                self.pending = !self.started;
                return;
            }
            Event::Usage(u) => {
                self.usage = *u;
                return;
            }
            Event::Error(e) => {
                // The vendor's in-band error: Anthropic's `event: error`
                // ends the stream, with or without a message_start before.
                if self.pending {
                    self.start(out);
                }
                write_event(out, "error", &ErrorBody::new(e));
                self.stopped = true;
                return;
            }
            _ => self.start(out),
        }
        match ev {
            Event::BlockStart { block, .. } => {
                self.close(out);
                match block {
                    Block::Text | Block::Refusal => {
                        self.refused |= matches!(block, Block::Refusal);
                        self.block_start(Open::Text, &BlockOut::Text { text: "" }, out);
                    }
                    Block::ToolCall { id, name, .. } => {
                        self.tools = true;
                        let b = BlockOut::ToolUse {
                            id,
                            name,
                            input: Empty {},
                        };
                        self.block_start(Open::Tool, &b, out);
                    }
                    Block::Reasoning => {
                        self.open = Some((Open::PendingReasoning, self.next));
                        self.next += 1;
                    }
                }
            }
            Event::Delta { delta, .. } => self.delta(delta, out),
            Event::BlockStop { .. } => self.close(out),
            Event::Stop { finish } => {
                self.close(out);
                let (reason, seq) = stop_reason(Some(finish), self.tools, self.refused);
                let data = serde_json::json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": seq},
                    "usage": UsageOut::from(&self.usage),
                });
                write_event(out, "message_delta", &data);
                write_event(
                    out,
                    "message_stop",
                    &serde_json::json!({"type": "message_stop"}),
                );
                self.stopped = true;
            }
            _ => {}
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        if !self.stopped {
            // The vendor's stream ended without a finish: a normal end.
            self.start(out);
            self.event(
                &Event::Stop {
                    finish: crate::protocol::chat::Finish::Stop,
                },
                out,
            );
        }
    }
}

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;
    use crate::protocol::chat::{Finish, Signature, ToolKind};

    fn run(events: &[Event<'_>], finish: bool) -> String {
        let mut enc = Encoder::new("client-model");
        let mut out = BytesMut::new();
        for ev in events {
            enc.event(ev, &mut out);
        }
        if finish {
            enc.finish(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn usage() -> Usage {
        Usage { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40, cached_tokens: 8, cache_write_tokens: 2, reasoning_tokens: 0 }
    }

    const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"client-model\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":15,\"cache_creation_input_tokens\":2,\"cache_read_input_tokens\":8,\"output_tokens\":15}}}\n\n";

    fn delta(i: usize, d: &str) -> String {
        format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{i},\"delta\":{d}}}\n\n")
    }
    fn start(i: usize, b: &str) -> String {
        format!("event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{b}}}\n\n")
    }
    fn stop(i: usize) -> String {
        format!("event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{i}}}\n\n")
    }
    fn end(reason: &str) -> String {
        format!("event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{reason}\",\"stop_sequence\":null}},\"usage\":{{\"input_tokens\":15,\"cache_creation_input_tokens\":2,\"cache_read_input_tokens\":8,\"output_tokens\":15}}}}\n\nevent: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n")
    }

    #[test]
    fn canonical_events_encode_as_anthropic_events() {
        let sig = |f, v: &'static str| Signature { family: f, value: v.into() };
        let events = [
            Event::Start { id: "msg_1".into(), model: "vendor".into() },
            Event::Usage(usage()),
            Event::BlockStart { index: 0, block: Block::Reasoning },
            Event::Delta { index: 0, delta: Delta::Reasoning("Hmm".into()) },
            Event::Delta { index: 0, delta: Delta::Signature(sig(Family::Anthropic, "sig")) },
            Event::BlockStop { index: 0 },
            Event::BlockStart { index: 1, block: Block::Reasoning },
            Event::Delta { index: 1, delta: Delta::Redacted(sig(Family::Anthropic, "ENC")) },
            Event::BlockStop { index: 1 },
            Event::BlockStart { index: 2, block: Block::Text },
            Event::Delta { index: 2, delta: Delta::Text("Hi \"x\"\n".into()) },
            Event::BlockStop { index: 2 },
            Event::BlockStart { index: 3, block: Block::ToolCall { id: "toolu_1".into(), name: "f".into(), kind: ToolKind::Function } },
            Event::Delta { index: 3, delta: Delta::ToolArguments("".into()) },
            Event::Delta { index: 3, delta: Delta::ToolArguments("{\"a\":".into()) },
            Event::Delta { index: 3, delta: Delta::ToolArguments("1}".into()) },
            Event::Delta { index: 3, delta: Delta::Signature(sig(Family::Gemini, "g")) },
            Event::BlockStop { index: 3 },
            Event::Usage(usage()),
            Event::Stop { finish: Finish::Stop },
        ];
        let want = [
            START.to_string(),
            start(0, r#"{"type":"thinking","thinking":"","signature":""}"#),
            delta(0, r#"{"type":"thinking_delta","thinking":"Hmm"}"#),
            delta(0, r#"{"type":"signature_delta","signature":"sig"}"#),
            stop(0),
            start(1, r#"{"type":"redacted_thinking","data":"ENC"}"#),
            stop(1),
            start(2, r#"{"type":"text","text":""}"#),
            delta(2, r#"{"type":"text_delta","text":"Hi \"x\"\n"}"#),
            stop(2),
            start(3, r#"{"type":"tool_use","id":"toolu_1","name":"f","input":{}}"#),
            delta(3, r#"{"type":"input_json_delta","partial_json":"{\"a\":"}"#),
            delta(3, r#"{"type":"input_json_delta","partial_json":"1}"}"#),
            stop(3),
            end("tool_use"),
        ]
        .concat();
        assert_eq!(run(&events, true), want);
    }

    #[test]
    fn unclosed_blocks_and_missing_stop_are_closed() {
        // No BlockStop before Stop; blocks opened without BlockStop.
        let events = [
            Event::Start { id: "msg_1".into(), model: "v".into() },
            Event::Usage(usage()),
            Event::BlockStart { index: 0, block: Block::Refusal },
            Event::Delta { index: 0, delta: Delta::Refusal("No".into()) },
            Event::BlockStart { index: 1, block: Block::Reasoning },
        ];
        let want = [
            START.to_string(),
            start(0, r#"{"type":"text","text":""}"#),
            delta(0, r#"{"type":"text_delta","text":"No"}"#),
            stop(0),
            start(1, r#"{"type":"thinking","thinking":"","signature":""}"#),
            stop(1),
            end("refusal"),
        ]
        .concat();
        assert_eq!(run(&events, true), want);
        // Nothing after Stop; an id is made up when the vendor gave none.
        let out = run(&[Event::Stop { finish: Finish::Length }, Event::Stop { finish: Finish::Stop }], true);
        assert!(out.starts_with("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_"), "{out}");
        assert_eq!(out.matches("message_stop").count(), 2, "{out}");
        assert!(out.contains("\"stop_reason\":\"max_tokens\""), "{out}");
    }

    /// Anthropic -> chat model -> Anthropic: the re-encoded stream decodes
    /// into the events the recorded one did (the model named as the client
    /// asked), in-band errors included.
    #[test]
    fn recorded_streams_survive_translation_back_to_anthropic() {
        use crate::protocol::chat::{Egress, Translation};
        use crate::protocol::egress::anthropic::AnthropicMessages as Vendor;
        use crate::protocol::sse::SseParser;
        let events = |sse: &[u8]| {
            let mut dec = Vendor.stream_decoder();
            let mut got = Vec::new();
            let mut sink = |ev: Event<'_>| got.push(match ev { Event::Start { .. } => "start".to_string(), ev => format!("{ev:?}") });
            for ev in SseParser::default().push(sse) {
                assert_eq!(dec.push(&ev.event, &ev.data, &mut sink), Ok(()));
            }
            let _ = dec.finish(true, &mut sink);
            got
        };
        let error = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        for fixture in [
            include_str!("../../../../tests/fixtures/anthropic_text_stream.sse"),
            include_str!("../../../../tests/fixtures/anthropic_thinking_stream.sse"),
            include_str!("../../../../tests/fixtures/anthropic_tool_stream.sse"),
            error,
        ] {
            let mut t = Translation::new(Vendor.stream_decoder(), Box::new(Encoder::new("client-model")));
            let mut out = BytesMut::new();
            for ev in SseParser::default().push(fixture.as_bytes()) {
                assert_eq!(t.push(&ev.event, &ev.data, &mut out), Ok(()));
            }
            assert_eq!(t.finish(true, &mut out), Ok(()));
            assert_eq!(events(&out), events(fixture.as_bytes()), "{}", String::from_utf8_lossy(&out));
            assert!(String::from_utf8_lossy(&out).contains("\"model\":\"client-model\"") || t.failure().is_some());
        }
    }
}
