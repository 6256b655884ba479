//! Anthropic's event stream decoded into canonical events.
//!
//! Anthropic's blocks map one to one; blocks of server tools (searches run
//! at Anthropic) are skipped with their deltas, so canonical indices count
//! only the blocks kept. A `tool_use` block whose `input` arrives whole in
//! its start (no `input_json_delta`) yields that input as one arguments
//! delta. `Stop` is held until `message_stop`, after the last `Usage`.

use super::answer::{error, finish, s, sig, Flat, Key, WireUsage};
use crate::protocol::chat::{
    id_or_new, Block, ChatError, Delta, Event, EventSink, Finish, Str, StreamDecoder, ToolKind,
};
use crate::protocol::json::Canon;
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
#[serde(bound(deserialize = "'de: 'a"))]
struct Ev<'a> {
    r#type: Option<Key<'a>>,
    message: Option<Flat<'a>>,
    content_block: Option<Flat<'a>>,
    delta: Option<Flat<'a>>,
    usage: Option<WireUsage>,
}

impl Decoder {
    fn start(&mut self, id: Option<Str<'_>>, model: Option<Str<'_>>, sink: &mut dyn EventSink) {
        if !self.started {
            self.started = true;
            sink.event(Event::Start {
                id: id_or_new(id, "msg_"),
                model: model.unwrap_or_default(),
            });
        }
    }

    fn close(&mut self, sink: &mut dyn EventSink) {
        let Some(Open {
            index: Some(index),
            input,
            sent_args,
            ..
        }) = self.open.take()
        else {
            return;
        };
        if let (Some(input), false) = (input, sent_args) {
            sink.event(Event::Delta {
                index,
                delta: Delta::ToolArguments(Cow::Owned(input)),
            });
        }
        sink.event(Event::BlockStop { index });
    }

    fn block_start(&mut self, b: Flat<'_>, sink: &mut dyn EventSink) {
        self.close(sink);
        let index = self.next;
        let (mut deltas, mut input) = (Vec::new(), None);
        let block = match s(b.r#type).as_deref() {
            Some("text") => {
                deltas.extend(s(b.text).filter(|t| !t.is_empty()).map(Delta::Text));
                Block::Text
            }
            Some("thinking") => {
                deltas.extend(
                    s(b.thinking)
                        .filter(|t| !t.is_empty())
                        .map(Delta::Reasoning),
                );
                deltas.extend(sig(b.signature).map(Delta::Signature));
                Block::Reasoning
            }
            Some("redacted_thinking") => {
                deltas.extend(sig(b.data).map(Delta::Redacted));
                Block::Reasoning
            }
            Some("tool_use") => {
                let whole = b.input.map(RawValue::get);
                input = whole.filter(|i| i.chars().filter(|c| !c.is_whitespace()).ne("{}".chars()));
                let (id, name) = (s(b.id).unwrap_or_default(), s(b.name).unwrap_or_default());
                Block::ToolCall {
                    id,
                    name,
                    kind: ToolKind::Function,
                }
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
        let tool = matches!(block, Block::ToolCall { .. });
        self.open = Some(Open {
            index: Some(index),
            tool,
            sent_args: false,
            input: input.map(str::to_string),
        });
        self.next += 1;
        sink.event(Event::BlockStart { index, block });
        for delta in deltas {
            sink.event(Event::Delta { index, delta });
        }
    }

    fn delta(&mut self, d: Flat<'_>, sink: &mut dyn EventSink) {
        let Some(Open {
            index: Some(index),
            tool,
            sent_args,
            ..
        }) = self.open.as_mut()
        else {
            return;
        };
        let delta = match s(d.r#type).as_deref() {
            Some("text_delta") => s(d.text).map(Delta::Text),
            Some("thinking_delta") => s(d.thinking).map(Delta::Reasoning),
            Some("signature_delta") => sig(d.signature).map(Delta::Signature),
            Some("input_json_delta") if *tool => {
                s(d.partial_json).filter(|p| !p.is_empty()).map(|p| {
                    *sent_args = true;
                    Delta::ToolArguments(p)
                })
            }
            // citations_delta and kinds added later.
            _ => None,
        };
        if let Some(delta) =
            delta.filter(|d| !matches!(d, Delta::Text(t) | Delta::Reasoning(t) if t.is_empty()))
        {
            sink.event(Event::Delta {
                index: *index,
                delta,
            });
        }
    }
}

/// The text of a text delta written exactly as Anthropic writes it
/// (`{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"…"}}`),
/// else `None` (the serde parse then reads the event). Deltas go to the
/// open block whatever their index, on both paths.
fn fast_text_delta(data: &str) -> Option<Str<'_>> {
    let mut c = Canon(data);
    let head = c.lit(r#"{"type":"content_block_delta","index":"#) && c.int().is_some();
    if !(head && c.lit(r#","delta":{"type":"text_delta","text":"#)) {
        return None;
    }
    let text = c.string()?;
    (c.lit("}}") && c.done()).then_some(text)
}

impl StreamDecoder for Decoder {
    fn push(&mut self, event: &str, data: &str, sink: &mut dyn EventSink) -> Result<(), ChatError> {
        if self.done || data.trim().is_empty() {
            return Ok(());
        }
        // Most events of an answer are text deltas: read without a parse.
        if let Some(text) = fast_text_delta(data) {
            let d = Flat {
                r#type: Some(Key(Cow::Borrowed("text_delta"))),
                text: Some(Key(text)),
                ..Flat::default()
            };
            self.delta(d, sink);
            return Ok(());
        }
        let ev: Ev = serde_json::from_str(data).map_err(|e| {
            ChatError::upstream(format!("malformed Anthropic stream event '{event}': {e}"))
        })?;
        // The data's own type is authoritative; the event line may be absent.
        let kind = ev.r#type.as_ref().map_or(event, |k| &k.0);
        if matches!(
            kind,
            "content_block_start" | "message_delta" | "message_stop"
        ) {
            self.start(None, None, sink);
        }
        match kind {
            "message_start" => {
                let m = ev.message.unwrap_or_default();
                self.start(s(m.id), s(m.model), sink);
                if let Some(u) = m.usage {
                    self.usage.update(&u);
                    sink.event(Event::Usage(self.usage.usage()));
                }
            }
            "content_block_start" => {
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
                if let Some(u) = ev.usage {
                    self.usage.update(&u);
                    sink.event(Event::Usage(self.usage.usage()));
                }
                if let Some(d) = ev.delta {
                    let seq = s(d.stop_sequence);
                    self.finish = s(d.stop_reason)
                        .map(|r| finish(&r, seq.as_deref()))
                        .or(self.finish.take());
                }
            }
            "message_stop" => {
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

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;
    use crate::protocol::sse::SseParser;

    /// Events in a compact golden form.
    fn show(ev: &Event<'_>) -> String {
        match ev {
            Event::Start { id, model } => format!("start {id} {model}"),
            Event::BlockStart { index, block } => format!("block {index} {block:?}"),
            Event::Delta { index, delta } => format!("delta {index} {delta:?}"),
            Event::BlockStop { index } => format!("stop {index}"),
            Event::Usage(u) => format!("usage in={} out={} read={} write={}", u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens),
            Event::Stop { finish } => format!("finish {finish:?}"),
            Event::Error(e) => format!("error {:?} {} {}", e.kind, e.status, e.message),
        }
    }

    /// The stream fed in `chunks` through the SSE parser: the events and the
    /// outcome of `finish`.
    fn decode(chunks: &[&[u8]], clean: bool) -> (Vec<String>, Result<(), ChatError>) {
        let (mut parser, mut dec, mut out) = (SseParser::default(), Decoder::default(), Vec::new());
        let mut sink = |ev: Event<'_>| out.push(show(&ev));
        for ev in chunks.iter().flat_map(|c| parser.push(c)) {
            if let Err(e) = dec.push(&ev.event, &ev.data, &mut sink) {
                return (out, Err(e));
            }
        }
        let r = dec.finish(clean, &mut sink);
        (out, r)
    }

    const TEXT: &str = include_str!("../../../../tests/fixtures/anthropic_text_stream.sse");
    const THINKING: &str = include_str!("../../../../tests/fixtures/anthropic_thinking_stream.sse");
    const TOOL: &str = include_str!("../../../../tests/fixtures/anthropic_tool_stream.sse");

    #[test]
    fn recorded_streams_decode_into_canonical_events() {
        let cases: [(&str, &[&str]); 3] = [
            (TEXT, &["start msg_01XFDUDYJgAACzvnptvVoYEL claude-sonnet-4-5-20250929", "usage in=33 out=1 read=8 write=0", "block 0 Text", "delta 0 Text(\"Hello\")",
                "delta 0 Text(\"! Here is a \\\"quoted\\\" word,\")", "delta 0 Text(\" a backslash \\\\ and a\\nnew line;\")", "delta 0 Text(\" some UTF-8: é 日本語 🦀\")",
                "delta 0 Text(\".\")", "delta 0 Text(\" Done.\")", "stop 0", "usage in=33 out=15 read=8 write=0", "finish Stop"]),
            (THINKING, &["start msg_01abc claude-sonnet-4-5", "usage in=10 out=1 read=0 write=0", "block 0 Reasoning",
                "delta 0 Reasoning(\"I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\\n\\n1071 = 2 × 462 + 147\")",
                "delta 0 Signature(Signature { family: Anthropic, value: \"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...\" })", "stop 0",
                "block 1 Text", "delta 1 Text(\"The greatest common divisor of 1071 and 462 is **21**.\")", "stop 1", "usage in=10 out=120 read=0 write=0", "finish Stop"]),
            (TOOL, &["start msg_014p7gG3wDgGV9EUtLvnow3U claude-sonnet-4-5", "usage in=472 out=2 read=0 write=0", "block 0 Text", "delta 0 Text(\"Okay\")",
                "delta 0 Text(\", let's check the weather for San Francisco, CA:\")", "stop 0",
                "block 1 ToolCall { id: \"toolu_01T1x1fJ34qAmk2tNTrN7Up6\", name: \"get_weather\", kind: Function }", "delta 1 ToolArguments(\"{\\\"location\\\":\")",
                "delta 1 ToolArguments(\" \\\"San Francisc\")", "delta 1 ToolArguments(\"o, CA\\\", \\\"unit\\\": \\\"fahrenheit\\\"}\")", "stop 1",
                "usage in=472 out=89 read=0 write=0", "finish ToolCalls"]),
        ];
        for (fixture, want) in cases {
            let (events, r) = decode(&[fixture.as_bytes()], true);
            assert_eq!((events.iter().map(String::as_str).collect::<Vec<_>>(), r), (want.to_vec(), Ok(())));
            // Split at every byte: the same events.
            let bytes = fixture.as_bytes();
            for cut in 1..bytes.len() {
                assert_eq!(decode(&[&bytes[..cut], &bytes[cut..]], true), (events.clone(), Ok(())), "cut at {cut}");
            }
        }
    }

    #[test]
    fn odd_streams_decode_as_anthropic_means_them() {
        let data = |lines: &[&str]| lines.iter().map(|l| format!("data: {l}\n\n")).collect::<String>();
        let ev = |name: &str, data: &str| format!("event: {name}\ndata: {data}\n\n");
        let cut = |at: &str| TEXT[..TEXT.find(at).unwrap_or(0)].to_string();
        let cases: Vec<(String, bool, &[&str], bool)> = vec![
            // No message_start, no event lines, whole tool input in the
            // start, a server tool block skipped, a stop sequence.
            (data(&[r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}"#,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#, r#"{"type":"content_block_stop","index":0}"#,
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"a": 1}}}"#, r#"{"type":"content_block_stop","index":1}"#,
                r#"{"type":"content_block_start","index":2,"content_block":{"type":"redacted_thinking","data":"ENC"}}"#, r#"{"type":"content_block_stop","index":2}"#,
                r#"{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":3,"cache_read_input_tokens":4}}"#,
                r#"{"type":"message_stop"}"#, r#"{"type":"message_stop"}"#]), true,
             &["start msg_", "block 0 ToolCall { id: \"t\", name: \"f\", kind: Function }", "delta 0 ToolArguments(\"{\\\"a\\\": 1}\")", "stop 0", "block 1 Reasoning",
               "delta 1 Redacted(Signature { family: Anthropic, value: \"ENC\" })", "stop 1", "usage in=4 out=3 read=4 write=0", "finish StopSequence(Some(\"END\"))"], true),
            // An in-band error ends it (nothing after it is read).
            (ev("message_start", r#"{"type":"message_start","message":{"id":"m","model":"c"}}"#) + &ev("ping", r#"{"type":"ping"}"#)
                + &ev("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#) + &ev("message_stop", r#"{"type":"message_stop"}"#),
             false, &["start m c", "error Overloaded 529 Overloaded"], true),
            // Cut: truncated mid-answer, or cleanly but before any finish.
            (cut("event: message_delta"), false, &[], false),
            (cut("event: message_delta"), true, &[], false),
            // Only message_stop missing after a clean end: whole.
            (cut("event: message_stop"), true, &[], true),
        ];
        for (body, clean, want, ok) in cases {
            let (events, r) = decode(&[body.as_bytes()], clean);
            assert_eq!(r.is_ok(), ok, "{body}: {r:?}");
            for (got, want) in events.iter().zip(want.iter()) {
                assert!(got.starts_with(want), "{got} != {want}");
            }
            assert!(want.is_empty() || events.len() == want.len(), "{events:?}");
        }
        let r = Decoder::default().push("content_block_delta", "{not json", &mut |_: Event<'_>| {});
        assert_eq!(r.map_err(|e| e.status), Err(502));
    }

    #[test]
    fn the_text_delta_fast_path_reads_what_serde_reads() {
        let mut seen = 0;
        let extra = [r#"{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"a\"b\u00e9"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"b"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","y":1}}"#];
        for ev in SseParser::default().push([TEXT, THINKING, TOOL].concat().as_bytes()).iter().map(|e| e.data.as_str()).chain(extra) {
            let slow = serde_json::from_str::<Ev>(ev).ok().and_then(|e| e.delta).filter(|d| d.r#type.as_ref().is_some_and(|k| k.0 == "text_delta")).and_then(|d| s(d.text));
            if let Some(fast) = fast_text_delta(ev) {
                seen += 1;
                assert_eq!(Some(&fast), slow.as_ref(), "{ev}");
            }
        }
        assert_eq!(seen, 9);
    }

    /// Anthropic -> chat model -> Anthropic: the re-encoded stream decodes
    /// into the events the recorded one did (the model named as the client
    /// asked), in-band errors included.
    #[test]
    fn recorded_streams_survive_translation_back_to_anthropic() {
        use crate::protocol::chat::{Ingress, Translation};
        use crate::protocol::ingress::anthropic::AnthropicMessages as Client;
        use bytes::BytesMut;
        let events = |sse: &[u8]| {
            let (mut dec, mut got) = (Decoder::default(), Vec::new());
            let mut sink = |ev: Event<'_>| got.push(match ev { Event::Start { .. } => "start".to_string(), ev => format!("{ev:?}") });
            for ev in SseParser::default().push(sse) {
                assert_eq!(dec.push(&ev.event, &ev.data, &mut sink), Ok(()));
            }
            let _ = dec.finish(true, &mut sink);
            got
        };
        let error = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        for fixture in [TEXT, THINKING, TOOL, error] {
            let mut t = Translation::new(Box::new(Decoder::default()), Client.stream_encoder("client-model", true));
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
