//! `streamGenerateContent?alt=sse`: each `data:` is a whole
//! `GenerateContentResponse` holding the next parts. Text and thought parts
//! become deltas of open blocks; a function call arrives whole and becomes
//! one block (start, its arguments, its signature, stop). Usage is
//! cumulative on every chunk; the chunk with the finishReason carries the
//! final one, and `Stop` follows it.

use super::decode::{self, Item};
use crate::protocol::chat::{
    generated_id, Block, ChatError, Delta, Event, EventSink, Family, Finish, Signature,
    StreamDecoder, Usage,
};
use std::borrow::Cow;

#[derive(Default)]
pub(super) struct Decoder {
    started: bool,
    salt: Option<String>,
    /// Index of the next block.
    next: usize,
    /// The open text or reasoning block: (index, is_reasoning).
    open: Option<(usize, bool)>,
    calls: usize,
    usage: Option<Usage>,
    sent_usage: Option<Usage>,
    /// The finish reason, held until the usage that goes with it.
    finish: Option<Finish>,
    /// Stop or an error was emitted: nothing follows.
    done: bool,
}

impl Decoder {
    fn close(&mut self, sink: &mut dyn EventSink) {
        if let Some((index, _)) = self.open.take() {
            sink.event(Event::BlockStop { index });
        }
    }

    fn start_block(&mut self, block: Block<'_>, sink: &mut dyn EventSink) -> usize {
        self.close(sink);
        let index = self.next;
        self.next += 1;
        sink.event(Event::BlockStart { index, block });
        index
    }

    /// The open block of this kind, or a new one.
    fn ensure(&mut self, reasoning: bool, sink: &mut dyn EventSink) -> usize {
        match self.open {
            Some((index, r)) if r == reasoning => index,
            _ => {
                let block = if reasoning {
                    Block::Reasoning
                } else {
                    Block::Text
                };
                let index = self.start_block(block, sink);
                self.open = Some((index, reasoning));
                index
            }
        }
    }

    fn item(&mut self, item: Item<'_>, sink: &mut dyn EventSink) {
        let signature = |value| {
            Delta::Signature(Signature {
                family: Family::Gemini,
                value,
            })
        };
        match item {
            Item::Text(t) => {
                let index = self.ensure(false, sink);
                sink.event(Event::Delta {
                    index,
                    delta: Delta::Text(t),
                });
            }
            Item::Reasoning(text, sig) => {
                let index = self.ensure(true, sink);
                if !text.is_empty() {
                    sink.event(Event::Delta {
                        index,
                        delta: Delta::Reasoning(text),
                    });
                }
                if let Some(sig) = sig {
                    // The signature closes what it signs.
                    sink.event(Event::Delta {
                        index,
                        delta: signature(sig),
                    });
                    self.close(sink);
                }
            }
            Item::Call(c) => {
                let block = Block::ToolCall {
                    id: c.id,
                    name: c.name,
                    kind: c.kind,
                };
                let index = self.start_block(block, sink);
                // The signature first: encoders that hold a call's first
                // chunk (OpenAI) put it there, with the id and name, as
                // Google's own OpenAI endpoint does.
                if let Some(sig) = c.signature {
                    sink.event(Event::Delta {
                        index,
                        delta: signature(sig.value),
                    });
                }
                let delta = Delta::ToolArguments(c.arguments);
                sink.event(Event::Delta { index, delta });
                sink.event(Event::BlockStop { index });
            }
        }
    }

    fn report_usage(&mut self, sink: &mut dyn EventSink) {
        if self.usage.is_some() && self.usage != self.sent_usage {
            self.sent_usage = self.usage;
            sink.event(Event::Usage(self.usage.unwrap_or_default()));
        }
    }

    fn stop(&mut self, sink: &mut dyn EventSink) {
        self.close(sink);
        self.report_usage(sink);
        let finish = self.finish.take().unwrap_or(Finish::Stop);
        sink.event(Event::Stop { finish });
        self.done = true;
    }

    fn fail(&mut self, err: ChatError, sink: &mut dyn EventSink) {
        self.done = true;
        sink.event(Event::Error(err));
    }
}

impl StreamDecoder for Decoder {
    fn push(
        &mut self,
        _event: &str,
        data: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), ChatError> {
        let data = data.trim();
        if self.done || data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let resp = decode::parse_chunk(data)?;
        if let Some(e) = &resp.error {
            self.fail(decode::google_error(Some(e), 502, data.as_bytes()), sink);
            return Ok(());
        }
        if !self.started {
            self.started = true;
            self.salt = decode::call_salt(resp.response_id.as_deref());
            let id = match &resp.response_id {
                Some(id) if !id.is_empty() => id.clone(),
                _ => Cow::Owned(generated_id("chatcmpl-")),
            };
            let model = resp.model_version.clone().unwrap_or_default();
            sink.event(Event::Start { id, model });
        }
        let has_usage = resp.usage_metadata.is_some();
        if let Some(u) = &resp.usage_metadata {
            self.usage = Some(u.usage());
        }
        match resp.candidates.into_iter().next() {
            Some(cand) => {
                let (salt, mut calls) = (self.salt.take(), self.calls);
                let parts = cand.content.map(|c| c.parts).unwrap_or_default();
                decode::read_parts(parts, &mut calls, salt.as_deref(), |item| {
                    self.item(item, sink)
                });
                (self.salt, self.calls) = (salt, calls);
                if let Some(reason) = cand.finish_reason.as_deref() {
                    let msg = cand.finish_message.as_deref();
                    match decode::finish(reason, self.calls > 0, msg) {
                        Ok(f) => {
                            self.close(sink);
                            self.finish = Some(f);
                        }
                        Err(e) => {
                            self.fail(e, sink);
                            return Ok(());
                        }
                    }
                }
            }
            None => {
                // A blocked prompt: one chunk without candidates.
                if let Some(msg) = decode::block_message(resp.prompt_feedback.as_ref()) {
                    let index = self.start_block(Block::Refusal, sink);
                    let delta = Delta::Refusal(Cow::Owned(msg));
                    sink.event(Event::Delta { index, delta });
                    sink.event(Event::BlockStop { index });
                    self.finish = Some(Finish::ContentFilter);
                }
            }
        }
        if self.finish.is_some() && has_usage {
            self.stop(sink);
        } else {
            self.report_usage(sink);
        }
        Ok(())
    }

    fn finish(&mut self, clean: bool, sink: &mut dyn EventSink) -> Result<(), ChatError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if !clean {
            return Err(ChatError::upstream(
                "Gemini stream was cut off before the response finished",
            ));
        }
        if self.finish.is_none() {
            // Gemini always ends with a finishReason: without one the
            // answer is truncated, however the connection ended.
            return Err(ChatError::upstream(
                "Gemini stream ended without a finishReason; the response is incomplete",
            ));
        }
        self.stop(sink);
        Ok(())
    }
}
