//! `streamGenerateContent?alt=sse`: each `data:` is a whole
//! `GenerateContentResponse` holding the next parts. Text and thought parts
//! become deltas of open blocks; a function call arrives whole and becomes
//! one block (start, its signature, its arguments, stop). Usage is
//! cumulative on every chunk; the chunk with the finishReason carries the
//! final one, and `Stop` follows it.

use super::decode::{google_error, Read};
use super::wire::GResponse;
use crate::protocol::chat::{
    Block, ChatError, Delta, Event, EventSink, Finish, Part, StreamDecoder, Usage,
};

#[derive(Default)]
pub(super) struct Decoder {
    /// Call ids and the salt for them; `None` until `Start` was sent.
    read: Option<Read>,
    /// Index of the next block.
    next: usize,
    /// The open text or reasoning block: (index, is_reasoning).
    open: Option<(usize, bool)>,
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

    /// Starts a block, closing the open one; text and reasoning blocks stay
    /// open for the deltas that follow (an open one of the kind is reused).
    fn block(&mut self, block: Block<'_>, sink: &mut dyn EventSink) -> usize {
        let kind = match block {
            Block::Text => Some(false),
            Block::Reasoning => Some(true),
            _ => None,
        };
        if let (Some((index, open)), Some(kind)) = (self.open, kind) {
            if open == kind {
                return index;
            }
        }
        self.close(sink);
        let index = self.next;
        self.next += 1;
        self.open = kind.map(|k| (index, k));
        sink.event(Event::BlockStart { index, block });
        index
    }

    fn part(&mut self, part: Part<'_>, sink: &mut dyn EventSink) {
        let delta = |index, delta| Event::Delta { index, delta };
        match part {
            Part::Text(t) => {
                let index = self.block(Block::Text, sink);
                sink.event(delta(index, Delta::Text(t.text)));
            }
            Part::Reasoning(r) => {
                let index = self.block(Block::Reasoning, sink);
                if !r.text.is_empty() {
                    sink.event(delta(index, Delta::Reasoning(r.text)));
                }
                if let Some(sig) = r.signature {
                    // The signature closes what it signs.
                    sink.event(delta(index, Delta::Signature(sig)));
                    self.close(sink);
                }
            }
            Part::ToolCall(c) => {
                let block = Block::ToolCall {
                    id: c.id,
                    name: c.name,
                    kind: c.kind,
                };
                let index = self.block(block, sink);
                // The signature first: encoders that hold a call's first
                // chunk (OpenAI) put it there, with the id and name, as
                // Google's own OpenAI endpoint does.
                if let Some(sig) = c.signature {
                    sink.event(delta(index, Delta::Signature(sig)));
                }
                sink.event(delta(index, Delta::ToolArguments(c.arguments)));
                sink.event(Event::BlockStop { index });
            }
            Part::Refusal(text) => {
                let index = self.block(Block::Refusal, sink);
                sink.event(delta(index, Delta::Refusal(text)));
                sink.event(Event::BlockStop { index });
            }
            _ => {}
        }
    }

    fn report_usage(&mut self, sink: &mut dyn EventSink) {
        if let Some(u) = self.usage.filter(|u| Some(*u) != self.sent_usage) {
            self.sent_usage = Some(u);
            sink.event(Event::Usage(u));
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
        let mut resp = GResponse::parse(data, "stream event")?;
        if let Some(e) = &resp.error {
            self.fail(google_error(Some(e), 502, data.as_bytes()), sink);
            return Ok(());
        }
        let mut read = match self.read.take() {
            Some(read) => read,
            None => {
                let (id, model) = resp.id_and_model();
                sink.event(Event::Start { id, model });
                Read::new(resp.response_id.as_deref())
            }
        };
        let has_usage = resp.usage_metadata.is_some();
        self.usage = resp.usage_metadata.map(|u| u.usage()).or(self.usage);
        let finish = read.parts(&mut resp, |p| self.part(p, sink));
        self.read = Some(read);
        match finish {
            Ok(None) => {}
            Ok(Some(f)) => {
                self.close(sink);
                self.finish = Some(f);
            }
            Err(e) => {
                self.fail(e, sink);
                return Ok(());
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
            let msg = "Gemini stream was cut off before the response finished";
            return Err(ChatError::upstream(msg));
        }
        if self.finish.is_none() {
            // Gemini always ends with a finishReason: without one the
            // answer is truncated, however the connection ended.
            let msg = "Gemini stream ended without a finishReason; the response is incomplete";
            return Err(ChatError::upstream(msg));
        }
        self.stop(sink);
        Ok(())
    }
}
