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

use super::wire::{
    client_signature, error_body, message, stop_members, stop_reason, usage_out, write_event,
    BlockOut,
};
use crate::protocol::chat::{
    generated_id, Block, Delta, Event, Family, Finish, StreamEncoder, Usage,
};
use crate::protocol::json::{empty_object, push_str, push_u64};
use bytes::BytesMut;
use serde::Serialize;
use std::borrow::Cow;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // Anthropic's own names
enum DeltaOut<'r> {
    ThinkingDelta { thinking: &'r str },
    SignatureDelta { signature: &'r str },
    InputJsonDelta { partial_json: &'r str },
}

/// Every event's data: `type` and the fields that event has.
#[derive(Serialize, Default)]
struct Ev<'r> {
    r#type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_block: Option<BlockOut<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<DeltaOut<'r>>,
}

fn ev(r#type: &'static str) -> Ev<'static> {
    let ev = Ev::default();
    Ev { r#type, ..ev }
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

#[derive(Default)]
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
    /// A tool call whose `tool_use` block is not written yet (id, name).
    pending_tool: Option<(String, String)>,
}

impl Encoder {
    pub(super) fn new(model: &str) -> Self {
        Encoder {
            model: model.to_string(),
            ..Encoder::default()
        }
    }

    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            let id = self.id.take().unwrap_or_else(|| generated_id("msg_"));
            out.extend_from_slice(
                b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":",
            );
            message(out, &id, &self.model, &[], None, &self.usage);
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn block_start(&mut self, kind: Open, block: BlockOut<'_>, out: &mut BytesMut) -> usize {
        let index = match self.open {
            Some((Open::PendingReasoning, i)) => i,
            _ => {
                self.next += 1;
                self.next - 1
            }
        };
        self.open = Some((kind, index));
        let data = Ev {
            index: Some(index),
            content_block: Some(block),
            ..ev("content_block_start")
        };
        write_event(out, data.r#type, &data);
        index
    }

    /// An empty `thinking` block (its text and signature follow as deltas).
    fn thinking(&mut self, out: &mut BytesMut) -> usize {
        let block = BlockOut::Thinking {
            thinking: "",
            signature: Cow::Borrowed(""),
        };
        self.block_start(Open::Thinking, block, out)
    }

    fn tool_start(&mut self, id: &str, name: &str, out: &mut BytesMut) {
        let input = Cow::Borrowed(empty_object());
        self.block_start(Open::Tool, BlockOut::ToolUse { id, name, input }, out);
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some((id, name)) = self.pending_tool.take() {
            self.tool_start(&id, &name, out);
        }
        match self.open {
            None => {}
            Some((Open::PendingReasoning, _)) => {
                self.thinking(out);
                self.close(out);
            }
            Some((_, index)) => {
                self.open = None;
                let data = Ev {
                    index: Some(index),
                    ..ev("content_block_stop")
                };
                write_event(out, data.r#type, &data);
            }
        }
    }

    fn delta(&mut self, delta: &Delta<'_>, out: &mut BytesMut) {
        if let Some((id, name)) = self.pending_tool.take() {
            // A Gemini call's signature (its decoder sends it first) goes
            // out before the tool_use block, in an empty thinking block.
            let signed = matches!(delta, Delta::Signature(s) if s.family == Family::Gemini);
            if signed {
                self.thinking(out);
                self.delta(delta, out);
                self.close(out);
            }
            self.tool_start(&id, &name, out);
            if signed {
                return;
            }
        }
        let Some((open, mut index)) = self.open else {
            return;
        };
        let pending = open == Open::PendingReasoning;
        let signature;
        let d = match delta {
            Delta::Text(t) | Delta::Refusal(t) => return text_delta(out, index, t),
            Delta::ToolArguments(a) if !a.is_empty() => {
                DeltaOut::InputJsonDelta { partial_json: a }
            }
            Delta::Reasoning(t) => {
                if pending {
                    index = self.thinking(out);
                }
                DeltaOut::ThinkingDelta { thinking: t }
            }
            Delta::Signature(s)
                if s.family != Family::OpenAi && (pending || open == Open::Thinking) =>
            {
                if pending {
                    index = self.thinking(out);
                }
                signature = client_signature(s);
                DeltaOut::SignatureDelta {
                    signature: signature.as_deref().unwrap_or(""),
                }
            }
            Delta::Redacted(r) if r.family == Family::Anthropic && pending => {
                let block = BlockOut::RedactedThinking { data: &r.value };
                self.block_start(Open::Redacted, block, out);
                return;
            }
            // Other families' signatures and encrypted reasoning mean
            // nothing to Anthropic clients.
            _ => return,
        };
        let data = Ev {
            index: Some(index),
            delta: Some(d),
            ..ev("content_block_delta")
        };
        write_event(out, data.r#type, &data);
    }
}

/// A text delta (the commonest event) written directly: the bytes
/// `write_event` writes for it (`tests::text_deltas_are_written_as_serde_writes_them`).
fn text_delta(out: &mut BytesMut, index: usize, text: &str) {
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    push_u64(out, index as u64);
    out.extend_from_slice(br#","delta":{"type":"text_delta","text":"#);
    push_str(out, text);
    out.extend_from_slice(b"}}\n\n");
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event<'_>, out: &mut BytesMut) {
        if self.stopped {
            return;
        }
        match event {
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
                write_event(out, "error", &error_body(e));
                self.stopped = true;
                return;
            }
            _ => self.start(out),
        }
        match event {
            Event::BlockStart { block, .. } => {
                self.close(out);
                match block {
                    Block::Text | Block::Refusal => {
                        self.refused |= matches!(block, Block::Refusal);
                        self.block_start(Open::Text, BlockOut::Text { text: "" }, out);
                    }
                    Block::ToolCall { id, name, .. } => {
                        self.tools = true;
                        self.pending_tool = Some((id.to_string(), name.to_string()));
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
                let stop = stop_reason(Some(finish), self.tools, self.refused);
                out.extend_from_slice(
                    b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{",
                );
                stop_members(out, Some(stop));
                out.extend_from_slice(br#"},"usage":"#);
                usage_out(out, &self.usage);
                out.extend_from_slice(
                    b"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
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
                    finish: Finish::Stop,
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
    use crate::protocol::chat::{Signature, ToolKind};

    fn run(events: &[Event<'_>]) -> String {
        let (mut enc, mut out) = (Encoder::new("client-model"), BytesMut::new());
        events.iter().for_each(|ev| enc.event(ev, &mut out));
        enc.finish(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    const USAGE: &str = r#"{"input_tokens":15,"cache_creation_input_tokens":2,"cache_read_input_tokens":8,"output_tokens":15}"#;
    fn usage() -> Event<'static> {
        Event::Usage(Usage { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40, cached_tokens: 8, cache_write_tokens: 2, reasoning_tokens: 0, ..Usage::default() })
    }
    fn sse(name: &str, rest: &str) -> String {
        format!("event: {name}\ndata: {{\"type\":\"{name}\",{rest}}}\n\n")
    }
    fn start() -> String {
        sse("message_start", &format!(r#""message":{{"id":"msg_1","type":"message","role":"assistant","model":"client-model","content":[],"stop_reason":null,"stop_sequence":null,"usage":{USAGE}}}"#))
    }
    fn open(i: usize, b: &str) -> String { sse("content_block_start", &format!(r#""index":{i},"content_block":{b}"#)) }
    fn delta(i: usize, d: &str) -> String { sse("content_block_delta", &format!(r#""index":{i},"delta":{d}"#)) }
    fn stop(i: usize) -> String { sse("content_block_stop", &format!(r#""index":{i}"#)) }
    fn end(reason: &str) -> String {
        sse("message_delta", &format!(r#""delta":{{"stop_reason":"{reason}","stop_sequence":null}},"usage":{USAGE}"#)) + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    }
    fn bs(index: usize, block: Block<'static>) -> Event<'static> { Event::BlockStart { index, block } }
    fn d(index: usize, delta: Delta<'static>) -> Event<'static> { Event::Delta { index, delta } }
    fn sig(family: Family, v: &'static str) -> Signature<'static> { Signature::new(family, v) }

    #[test]
    fn text_deltas_are_written_as_serde_writes_them() {
        for (i, t) in [(0, "Hello"), (12, "a\"b\\c\nd\u{1}é 日本")] {
            let mut out = BytesMut::new();
            text_delta(&mut out, i, t);
            let data = serde_json::json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": t}});
            assert_eq!(String::from_utf8_lossy(&out), format!("event: content_block_delta\ndata: {data}\n\n"));
        }
    }

    #[test]
    fn canonical_events_encode_as_anthropic_events() {
        let events = [
            Event::Start { id: "msg_1".into(), model: "vendor".into() }, usage(),
            bs(0, Block::Reasoning), d(0, Delta::Reasoning("Hmm".into())), d(0, Delta::Signature(sig(Family::Anthropic, "sig"))), Event::BlockStop { index: 0 },
            bs(1, Block::Reasoning), d(1, Delta::Redacted(sig(Family::Anthropic, "ENC"))), Event::BlockStop { index: 1 },
            bs(2, Block::Text), d(2, Delta::Text("Hi \"x\"\n".into())), Event::BlockStop { index: 2 },
            bs(3, Block::ToolCall { id: "toolu_1".into(), name: "f".into(), kind: ToolKind::Function }), d(3, Delta::ToolArguments("".into())),
            d(3, Delta::ToolArguments("{\"a\":".into())), d(3, Delta::ToolArguments("1}".into())), d(3, Delta::Signature(sig(Family::Gemini, "g"))), Event::BlockStop { index: 3 },
            usage(), Event::Stop { finish: Finish::Stop },
        ];
        let want = [
            start(),
            open(0, r#"{"type":"thinking","thinking":"","signature":""}"#), delta(0, r#"{"type":"thinking_delta","thinking":"Hmm"}"#),
            delta(0, r#"{"type":"signature_delta","signature":"sig"}"#), stop(0),
            open(1, r#"{"type":"redacted_thinking","data":"ENC"}"#), stop(1),
            open(2, r#"{"type":"text","text":""}"#), delta(2, r#"{"type":"text_delta","text":"Hi \"x\"\n"}"#), stop(2),
            open(3, r#"{"type":"tool_use","id":"toolu_1","name":"f","input":{}}"#), delta(3, r#"{"type":"input_json_delta","partial_json":"{\"a\":"}"#),
            delta(3, r#"{"type":"input_json_delta","partial_json":"1}"}"#), stop(3),
            end("tool_use"),
        ];
        assert_eq!(run(&events), want.concat());
    }

    #[test]
    fn gemini_signatures_travel_in_marked_thinking_blocks() {
        let events = [Event::Start { id: "msg_1".into(), model: "v".into() }, usage(), bs(0, Block::Reasoning), d(0, Delta::Signature(sig(Family::Gemini, "t"))),
            bs(1, Block::ToolCall { id: "toolu_1".into(), name: "f".into(), kind: ToolKind::Function }), d(1, Delta::Signature(sig(Family::Gemini, "c"))), d(1, Delta::ToolArguments("{}".into()))];
        let (think, sig) = (r#"{"type":"thinking","thinking":"","signature":""}"#, |s| format!(r#"{{"type":"signature_delta","signature":"gemini:{s}"}}"#));
        let want = [start(), open(0, think), delta(0, &sig("t")), stop(0), open(1, think), delta(1, &sig("c")), stop(1),
            open(2, r#"{"type":"tool_use","id":"toolu_1","name":"f","input":{}}"#), delta(2, r#"{"type":"input_json_delta","partial_json":"{}"}"#), stop(2), end("tool_use")];
        assert_eq!(run(&events), want.concat());
    }

    #[test]
    fn unclosed_blocks_and_missing_stop_are_closed() {
        // No BlockStop before Stop; blocks opened without BlockStop.
        let events = [Event::Start { id: "msg_1".into(), model: "v".into() }, usage(), bs(0, Block::Refusal), d(0, Delta::Refusal("No".into())), bs(1, Block::Reasoning)];
        let want = [start(), open(0, r#"{"type":"text","text":""}"#), delta(0, r#"{"type":"text_delta","text":"No"}"#), stop(0),
            open(1, r#"{"type":"thinking","thinking":"","signature":""}"#), stop(1), end("refusal")];
        assert_eq!(run(&events), want.concat());
        // Nothing after Stop; an id is made up when the vendor gave none.
        let out = run(&[Event::Stop { finish: Finish::Length }, Event::Stop { finish: Finish::Stop }]);
        assert!(out.starts_with("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_"), "{out}");
        assert_eq!(out.matches("message_stop").count(), 2, "{out}");
        assert!(out.contains("\"stop_reason\":\"max_tokens\""), "{out}");
    }
}
