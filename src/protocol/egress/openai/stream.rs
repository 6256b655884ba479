//! chat.completion.chunk streams decoded into canonical events.
//!
//! OpenAI streams have no blocks: text, reasoning and refusal deltas just
//! arrive, tool calls carry `index` (and id/name on their first delta
//! only). A block opens when the kind of delta changes and closes when the
//! next one opens or the choice finishes. Some servers send each parallel
//! call whole at index 0, or no index at all: a new id at a known index is
//! a new call, a missing index is the call's position in the chunk. A late
//! argument delta for a call whose block already closed (a server
//! interleaving parallel calls) goes to that call's block index.
//!
//! The usage chunk comes after the finish chunk: `Stop` waits for usage
//! (or `[DONE]`, or the end of the body).

use super::read::{args_text, decode_error, finish, gemini_sig, CallW, ExtraW, UsageW, S};
use crate::protocol::chat::{
    id_or_new, Block, ChatError, Delta, Event, EventSink, Finish, Str, StreamDecoder, ToolKind,
};
use crate::protocol::json::Canon;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ChunkW<'a> {
    id: Option<S<'a>>,
    model: Option<S<'a>>,
    choices: Option<Vec<ChoiceW<'a>>>,
    usage: Option<UsageW>,
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ChoiceW<'a> {
    index: Option<u64>,
    delta: Option<DeltaW<'a>>,
    finish_reason: Option<S<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct DeltaW<'a> {
    content: Option<S<'a>>,
    reasoning_content: Option<S<'a>>,
    reasoning: Option<S<'a>>,
    refusal: Option<S<'a>>,
    tool_calls: Option<Vec<CallW<'a>>>,
    extra_content: Option<ExtraW<'a>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Reasoning,
    Refusal,
    Tool,
}

struct Call {
    oa_index: u64,
    /// Empty when the server sent none.
    vendor_id: String,
    block: usize,
}

#[derive(Default)]
pub(super) struct ChunkDecoder {
    started: bool,
    /// `Stop` or `Error` went out: nothing follows.
    done: bool,
    open: Option<(Kind, usize)>,
    next_block: usize,
    calls: Vec<Call>,
    /// The finish word, once seen.
    finish: Option<String>,
    refused: bool,
}

impl ChunkDecoder {
    fn start(&mut self, id: Option<&str>, model: Option<&str>, sink: &mut dyn EventSink) {
        if self.started {
            return;
        }
        self.started = true;
        sink.event(Event::Start {
            id: id_or_new(id.map(Cow::Borrowed), "chatcmpl-"),
            model: Cow::Borrowed(model.unwrap_or_default()),
        });
    }

    fn close(&mut self, sink: &mut dyn EventSink) {
        if let Some((_, index)) = self.open.take() {
            sink.event(Event::BlockStop { index });
        }
    }

    /// The open block of `kind` (opened now if another kind is open).
    fn block(&mut self, kind: Kind, sink: &mut dyn EventSink) -> usize {
        match self.open {
            Some((k, i)) if k == kind => i,
            _ => {
                self.close(sink);
                let index = self.next_block;
                self.next_block += 1;
                self.open = Some((kind, index));
                let block = match kind {
                    Kind::Text => Block::Text,
                    Kind::Reasoning => Block::Reasoning,
                    _ => Block::Refusal,
                };
                sink.event(Event::BlockStart { index, block });
                index
            }
        }
    }

    fn call(&mut self, pos: usize, c: CallW<'_>, sink: &mut dyn EventSink) {
        let oa_index = c.index.unwrap_or(pos as u64);
        let vendor_id =
            c.id.as_ref()
                .map(|s| s.0.as_ref())
                .filter(|s| !s.is_empty());
        let known = self.calls.iter().rev().find(|t| {
            t.oa_index == oa_index
                && vendor_id.is_none_or(|id| t.vendor_id.is_empty() || t.vendor_id == id)
        });
        let block = match known {
            Some(t) => t.block,
            None => {
                self.close(sink);
                let index = self.next_block;
                self.next_block += 1;
                self.open = Some((Kind::Tool, index));
                self.calls.push(Call {
                    oa_index,
                    vendor_id: vendor_id.unwrap_or_default().to_string(),
                    block: index,
                });
                let custom = c.kind.as_ref().is_some_and(|k| k.0 == "custom") || c.custom.is_some();
                let name = match (&c.function, &c.custom) {
                    (_, Some(f)) if custom => f.name.clone(),
                    (Some(f), _) => f.name.clone(),
                    _ => None,
                };
                sink.event(Event::BlockStart {
                    index,
                    block: Block::ToolCall {
                        id: id_or_new(vendor_id.map(Cow::Borrowed), "call_"),
                        name: name.map(|n| n.0).unwrap_or_default(),
                        kind: if custom {
                            ToolKind::Custom
                        } else {
                            ToolKind::Function
                        },
                    },
                });
                index
            }
        };
        if let Some(sig) = gemini_sig(c.extra_content) {
            sink.event(Event::Delta {
                index: block,
                delta: Delta::Signature(sig),
            });
        }
        let args = match (c.function, c.custom) {
            (_, Some(f)) => f.input.map(|i| i.0),
            (Some(f), None) => f.arguments.map(|a| args_text(Some(a))),
            (None, None) => None,
        };
        if let Some(a) = args.filter(|a| !a.is_empty()) {
            sink.event(Event::Delta {
                index: block,
                delta: Delta::ToolArguments(a),
            });
        }
    }

    /// The answer is over: close what is open and say why it ended.
    fn end(&mut self, sink: &mut dyn EventSink) {
        if self.done {
            return;
        }
        self.start(None, None, sink);
        self.close(sink);
        self.done = true;
        let calls = !self.calls.is_empty();
        let why = match &self.finish {
            Some(w) => finish(w, calls, self.refused),
            None if calls => Finish::ToolCalls,
            None => Finish::Stop,
        };
        sink.event(Event::Stop { finish: why });
    }
}

impl StreamDecoder for ChunkDecoder {
    fn push(
        &mut self,
        _event: &str,
        data: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), ChatError> {
        let data = data.trim();
        if self.done || data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.end(sink);
            return Ok(());
        }
        // Most chunks of an answer are text deltas: read without a parse.
        if let Some((id, model, text)) = text_chunk(data) {
            self.start(Some(&id), Some(&model), sink);
            if !text.is_empty() {
                let index = self.block(Kind::Text, sink);
                sink.event(Event::Delta {
                    index,
                    delta: Delta::Text(text),
                });
            }
            return Ok(());
        }
        self.parsed(data, sink)
    }

    fn finish(&mut self, clean: bool, sink: &mut dyn EventSink) -> Result<(), ChatError> {
        if self.done {
            return Ok(());
        }
        if !clean && self.finish.is_none() {
            return Err(ChatError::upstream(
                "the OpenAI stream was cut off before the answer finished",
            ));
        }
        self.end(sink);
        Ok(())
    }
}

/// A text-delta chunk exactly as OpenAI writes it:
/// `{"id":"…","object":"chat.completion.chunk","created":N,"model":"…",`
/// then optionally `"service_tier":"…",` and `"system_fingerprint":"…"`
/// (or `null`), then `"choices":[{"index":0,"delta":{"content":"…"},`,
/// optionally `"logprobs":null,`, then `"finish_reason":null}]`, optionally
/// `,"usage":null` and `,"obfuscation":"…"`, and `}`. Returns the id, the
/// model and the text; `None` for anything else (whitespace, another key
/// order, more members), which the serde parse reads.
pub(super) fn text_chunk(data: &str) -> Option<(Str<'_>, Str<'_>, Str<'_>)> {
    let mut c = Canon(data);
    if !c.lit(r#"{"id":"#) {
        return None;
    }
    let id = c.string()?;
    if !c.lit(r#","object":"chat.completion.chunk","created":"#) {
        return None;
    }
    c.int()?;
    if !c.lit(r#","model":"#) {
        return None;
    }
    let model = c.string()?;
    if c.lit(r#","service_tier":"#) {
        c.string()?;
    }
    if c.lit(r#","system_fingerprint":"#) && !c.lit("null") {
        c.string()?;
    }
    if !c.lit(r#","choices":[{"index":0,"delta":{"content":"#) {
        return None;
    }
    let text = c.string()?;
    if !c.lit("},") {
        return None;
    }
    c.lit(r#""logprobs":null,"#);
    if !c.lit(r#""finish_reason":null}]"#) {
        return None;
    }
    c.lit(r#","usage":null"#);
    if c.lit(r#","obfuscation":"#) {
        c.string()?;
    }
    (c.lit("}") && c.done()).then_some((id, model, text))
}

impl ChunkDecoder {
    /// A chunk read by the serde parse (every form).
    pub(super) fn parsed(&mut self, data: &str, sink: &mut dyn EventSink) -> Result<(), ChatError> {
        let chunk: ChunkW<'_> = serde_json::from_str(data)
            .map_err(|e| ChatError::upstream(format!("malformed OpenAI stream chunk: {e}")))?;
        if let Some(e) = chunk.error.filter(|e| e.get() != "null") {
            self.done = true;
            let body = format!("{{\"error\":{}}}", e.get());
            sink.event(Event::Error(decode_error(200, body.as_bytes())));
            return Ok(());
        }
        self.start(
            chunk.id.as_ref().map(|s| s.0.as_ref()),
            chunk.model.as_ref().map(|s| s.0.as_ref()),
            sink,
        );
        for choice in chunk.choices.unwrap_or_default() {
            // n > 1 cannot be expressed: the first choice only.
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(d) = choice.delta {
                if let Some(r) = d
                    .reasoning_content
                    .or(d.reasoning)
                    .filter(|r| !r.0.is_empty())
                {
                    let index = self.block(Kind::Reasoning, sink);
                    sink.event(Event::Delta {
                        index,
                        delta: Delta::Reasoning(r.0),
                    });
                }
                if let Some(t) = d.content.filter(|t| !t.0.is_empty()) {
                    let index = self.block(Kind::Text, sink);
                    sink.event(Event::Delta {
                        index,
                        delta: Delta::Text(t.0),
                    });
                }
                if let Some(r) = d.refusal.filter(|r| !r.0.is_empty()) {
                    self.refused = true;
                    let index = self.block(Kind::Refusal, sink);
                    sink.event(Event::Delta {
                        index,
                        delta: Delta::Refusal(r.0),
                    });
                }
                // Google's endpoint signs text parts on the delta itself.
                if let Some(sig) = gemini_sig(d.extra_content) {
                    let index = match self.open {
                        Some((_, i)) => i,
                        None => self.block(Kind::Reasoning, sink),
                    };
                    sink.event(Event::Delta {
                        index,
                        delta: Delta::Signature(sig),
                    });
                }
                for (pos, c) in d.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    self.call(pos, c, sink);
                }
            }
            if let Some(w) = choice.finish_reason {
                self.close(sink);
                self.finish = Some(w.0.into_owned());
            }
        }
        if let Some(u) = chunk.usage {
            sink.event(Event::Usage(u.read()));
            if self.finish.is_some() {
                self.end(sink);
            }
        }
        Ok(())
    }
}
