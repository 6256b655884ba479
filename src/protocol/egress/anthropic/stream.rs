//! Anthropic's event stream decoded into canonical events.
//!
//! Anthropic's blocks map one to one; blocks of server tools (searches run
//! at Anthropic) are skipped with their deltas, so canonical indices count
//! only the blocks kept. A `tool_use` block whose `input` arrives whole in
//! its start (no `input_json_delta`) yields that input as one arguments
//! delta. `Stop` is held until `message_stop`, after the last `Usage`.

use super::answer::{error, finish, opt_str, WireUsage};
use crate::protocol::chat::{
    generated_id, Block, ChatError, Delta, Event, EventSink, Family, Finish, Signature, Str,
    StreamDecoder, ToolKind,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Default)]
pub(super) struct Decoder {
    started: bool,
    /// `message_stop` or an error came: nothing more is read.
    done: bool,
    usage: WireUsage,
    finish: Option<Finish>,
    next: usize,
    open: Option<Open>,
}

struct Open {
    /// Canonical index; `None` for a skipped block.
    index: Option<usize>,
    tool: bool,
    sent_args: bool,
    /// A tool's whole input from the block start, sent if no delta comes.
    input: Option<String>,
}

#[derive(Deserialize)]
struct Ev<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    message: Option<EvMessage<'a>>,
    #[serde(borrow, default)]
    content_block: Option<EvBlock<'a>>,
    #[serde(borrow, default)]
    delta: Option<EvDelta<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct EvMessage<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    model: Option<Str<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// A block start's block and a delta share these fields.
#[derive(Deserialize)]
struct EvBlock<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    text: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    thinking: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    signature: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    data: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    name: Option<Str<'a>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EvDelta<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    text: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    thinking: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    signature: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    partial_json: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    stop_reason: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    stop_sequence: Option<Str<'a>>,
}

fn anthropic(value: Str<'_>) -> Signature<'_> {
    Signature {
        family: Family::Anthropic,
        value,
    }
}

impl Decoder {
    fn start(&mut self, id: Option<Str<'_>>, model: Option<Str<'_>>, sink: &mut dyn EventSink) {
        if !self.started {
            self.started = true;
            let id = id
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| Cow::Owned(generated_id("msg_")));
            sink.event(Event::Start {
                id,
                model: model.unwrap_or_default(),
            });
        }
    }

    fn close(&mut self, sink: &mut dyn EventSink) {
        let Some(open) = self.open.take() else { return };
        let Some(index) = open.index else { return };
        if let (Some(input), false) = (open.input, open.sent_args) {
            sink.event(Event::Delta {
                index,
                delta: Delta::ToolArguments(Cow::Owned(input)),
            });
        }
        sink.event(Event::BlockStop { index });
    }

    fn block_start(&mut self, b: EvBlock<'_>, sink: &mut dyn EventSink) {
        self.close(sink);
        let index = self.next;
        let mut deltas: Vec<Delta<'_>> = Vec::new();
        let block = match b.kind.as_deref() {
            Some("text") => {
                deltas.extend(b.text.filter(|t| !t.is_empty()).map(Delta::Text));
                Block::Text
            }
            Some("thinking") => {
                deltas.extend(b.thinking.filter(|t| !t.is_empty()).map(Delta::Reasoning));
                deltas.extend(
                    b.signature
                        .filter(|t| !t.is_empty())
                        .map(|s| Delta::Signature(anthropic(s))),
                );
                Block::Reasoning
            }
            Some("redacted_thinking") => {
                deltas.extend(b.data.map(|d| Delta::Redacted(anthropic(d))));
                Block::Reasoning
            }
            Some("tool_use") => {
                let input = b.input.map(RawValue::get).filter(|i| {
                    let t: String = i.chars().filter(|c| !c.is_whitespace()).collect();
                    t != "{}"
                });
                self.open = Some(Open {
                    index: Some(index),
                    tool: true,
                    sent_args: false,
                    input: input.map(str::to_string),
                });
                self.next += 1;
                sink.event(Event::BlockStart {
                    index,
                    block: Block::ToolCall {
                        id: b.id.unwrap_or_default(),
                        name: b.name.unwrap_or_default(),
                        kind: ToolKind::Function,
                    },
                });
                return;
            }
            other => {
                tracing::debug!(block = ?other, "Anthropic stream block with no canonical equivalent skipped");
                self.open = Some(Open {
                    index: None,
                    tool: false,
                    sent_args: false,
                    input: None,
                });
                return;
            }
        };
        self.open = Some(Open {
            index: Some(index),
            tool: false,
            sent_args: false,
            input: None,
        });
        self.next += 1;
        sink.event(Event::BlockStart { index, block });
        for delta in deltas {
            sink.event(Event::Delta { index, delta });
        }
    }

    fn delta(&mut self, d: EvDelta<'_>, sink: &mut dyn EventSink) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let Some(index) = open.index else { return };
        let delta = match d.kind.as_deref() {
            Some("text_delta") => d.text.map(Delta::Text),
            Some("thinking_delta") => d.thinking.map(Delta::Reasoning),
            Some("signature_delta") => d.signature.map(|s| Delta::Signature(anthropic(s))),
            Some("input_json_delta") if open.tool => {
                d.partial_json.filter(|p| !p.is_empty()).map(|p| {
                    open.sent_args = true;
                    Delta::ToolArguments(p)
                })
            }
            // citations_delta and kinds added later.
            _ => None,
        };
        if let Some(delta) =
            delta.filter(|d| !matches!(d, Delta::Text(t) | Delta::Reasoning(t) if t.is_empty()))
        {
            sink.event(Event::Delta { index, delta });
        }
    }
}

impl StreamDecoder for Decoder {
    fn push(&mut self, event: &str, data: &str, sink: &mut dyn EventSink) -> Result<(), ChatError> {
        if self.done || data.trim().is_empty() {
            return Ok(());
        }
        let ev: Ev = serde_json::from_str(data).map_err(|e| {
            ChatError::upstream(format!("malformed Anthropic stream event '{event}': {e}"))
        })?;
        // The data's own type is authoritative; the event line may be absent.
        let kind = ev.kind.as_deref().unwrap_or(event);
        match kind {
            "message_start" => {
                let (id, model, usage) = match ev.message {
                    Some(m) => (m.id, m.model, m.usage),
                    None => (None, None, None),
                };
                self.start(id, model, sink);
                if let Some(u) = usage {
                    self.usage.update(&u);
                    sink.event(Event::Usage(self.usage.usage()));
                }
            }
            "content_block_start" => {
                self.start(None, None, sink);
                if let Some(b) = ev.content_block {
                    self.block_start(b, sink);
                }
            }
            "content_block_delta" => {
                if let Some(d) = ev.delta {
                    self.delta(d, sink);
                }
            }
            "content_block_stop" => self.close(sink),
            "message_delta" => {
                self.start(None, None, sink);
                if let Some(u) = ev.usage {
                    self.usage.update(&u);
                    sink.event(Event::Usage(self.usage.usage()));
                }
                if let Some(r) = ev.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    let seq = ev.delta.as_ref().and_then(|d| d.stop_sequence.as_deref());
                    self.finish = Some(finish(r, seq));
                }
            }
            "message_stop" => {
                self.start(None, None, sink);
                self.close(sink);
                sink.event(Event::Stop {
                    finish: self.finish.take().unwrap_or(Finish::Stop),
                });
                self.done = true;
            }
            "error" => {
                // The same body an error answer has; the status its type
                // documents (529 for overloaded_error).
                sink.event(Event::Error(error(0, data.as_bytes())));
                self.done = true;
            }
            // ping and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, clean: bool, sink: &mut dyn EventSink) -> Result<(), ChatError> {
        if self.done {
            return Ok(());
        }
        // Only message_stop missing after the stop reason: the answer is whole.
        if let (true, Some(finish)) = (clean, self.finish.take()) {
            self.close(sink);
            sink.event(Event::Stop { finish });
            self.done = true;
            return Ok(());
        }
        Err(ChatError::upstream(
            "the Anthropic stream ended before the answer was complete",
        ))
    }
}
