//! Answers, stream chunks and errors in Gemini's shapes: the envelope and
//! text parts by hand, other parts and errors with the shared wire types.
//!
//! * A whole answer is one `GenerateContentResponse`; a stream is a series
//!   of them, each holding the next parts: text and thought text as they
//!   come, a function call whole when its arguments are complete (as Gemini
//!   sends them), and a last chunk with `finishReason` and `usageMetadata`.
//! * Streams are framed as SSE (`data: {...}\r\n\r\n`, `?alt=sse`) or as
//!   Google's JSON array (`[{...}` then `,\r\n{...}` then `]`). An error
//!   mid-stream is an `{"error": {...}}` element (the array is closed after
//!   it); a stream cut before its first chunk then is not valid JSON, which
//!   the client sees as a failure, never as a clean end.
//! * Signatures go out through the codec in `signature`.

use super::signature::encode_signature;
use crate::protocol::chat::{
    Answer, Block, ChatError, Delta, Event, Family, Finish, Part, StreamEncoder, ToolKind, Usage,
};
use crate::protocol::egress::gemini::wire::{
    by_name, status_name, ErrorOut, ErrorOutInner, FunctionCall, UsageMetadata, WirePart,
};
use crate::protocol::json::{empty_object, push_count, push_str, to_bytes};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

fn text_part(text: &str) -> WirePart<'_> {
    WirePart {
        text: Some(Cow::Borrowed(text)),
        ..WirePart::default()
    }
}

/// `args` must be a JSON object: the call's argument text when it is one,
/// `{"input": text}` for a freeform tool's input, else `{}`.
fn args<'a>(kind: ToolKind, arguments: &'a str) -> Cow<'a, RawValue> {
    if let Ok(raw) = serde_json::from_str::<&RawValue>(arguments) {
        if raw.get().starts_with('{') {
            return Cow::Borrowed(raw);
        }
    }
    let owned = match kind {
        ToolKind::Custom => {
            serde_json::value::to_raw_value(&serde_json::json!({"input": arguments}))
        }
        ToolKind::Function => serde_json::value::to_raw_value(&serde_json::json!({})),
    };
    owned.map_or(Cow::Borrowed(empty_object()), Cow::Owned)
}

fn call_part<'a>(
    id: &'a str,
    name: &'a str,
    args: &'a RawValue,
    sig: Option<Cow<'a, str>>,
) -> WirePart<'a> {
    WirePart {
        function_call: Some(FunctionCall {
            id: (!id.is_empty()).then_some(Cow::Borrowed(id)),
            name: Cow::Borrowed(name),
            args: Some(args),
        }),
        thought_signature: sig,
        ..WirePart::default()
    }
}

fn finish_reason(f: &Finish) -> Cow<'_, str> {
    Cow::Borrowed(match f {
        Finish::Stop | Finish::StopSequence(_) | Finish::ToolCalls | Finish::Pause => "STOP",
        Finish::Length => "MAX_TOKENS",
        Finish::ContentFilter | Finish::Refusal => "SAFETY",
        // A vendor's own word when it is Google's style, else OTHER.
        Finish::Other(o)
            if !o.is_empty() && o.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
        {
            return Cow::Borrowed(o);
        }
        Finish::Other(_) => "OTHER",
    })
}

/// A `GenerateContentResponse` with one candidate, written by hand (serde's
/// struct writer cost ~3k instructions per answer); parts other than plain
/// text go through serde.
fn response(
    out: &mut BytesMut,
    parts: &[WirePart<'_>],
    finish: Option<&str>,
    usage: Option<&Usage>,
    model: &str,
    id: &str,
) {
    out.extend_from_slice(br#"{"candidates":[{"content":{"role":"model","parts":["#);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        match p {
            WirePart {
                text: Some(t),
                thought: None,
                thought_signature: None,
                function_call: None,
                function_response: None,
                inline_data: None,
                file_data: None,
            } => {
                out.extend_from_slice(br#"{"text":"#);
                push_str(out, t);
                out.extend_from_slice(b"}");
            }
            // Writing into memory cannot fail.
            _ => drop(serde_json::to_writer((&mut *out).writer(), p)),
        }
    }
    out.extend_from_slice(b"]}");
    if let Some(f) = finish {
        out.extend_from_slice(br#","finishReason":"#);
        push_str(out, f);
    }
    out.extend_from_slice(br#","index":0}]"#);
    if let Some(u) = usage.map(UsageMetadata::from_usage) {
        out.extend_from_slice(br#","usageMetadata":{"#);
        push_count(out, "promptTokenCount", u.prompt_token_count.0);
        push_count(out, "candidatesTokenCount", u.candidates_token_count.0);
        // Gemini leaves these two out when zero.
        for (key, n) in [
            ("thoughtsTokenCount", u.thoughts_token_count.0),
            ("cachedContentTokenCount", u.cached_content_token_count.0),
        ] {
            if n > 0 {
                push_count(out, key, n);
            }
        }
        push_count(
            out,
            "totalTokenCount",
            u.total_token_count.map_or(0, |c| c.0),
        );
        out.extend_from_slice(b"}");
    }
    out.extend_from_slice(br#","modelVersion":"#);
    push_str(out, model);
    out.extend_from_slice(br#","responseId":"#);
    push_str(out, id);
    out.extend_from_slice(b"}");
}

/// A whole answer.
pub(super) fn answer(a: &Answer<'_>, model: &str) -> Bytes {
    // Arguments are parsed first: parts borrow them.
    let call_args: Vec<Option<Cow<'_, RawValue>>> = (a.parts.iter())
        .map(|p| match p {
            Part::ToolCall(c) => Some(args(c.kind, &c.arguments)),
            _ => None,
        })
        .collect();
    let mut parts: Vec<WirePart<'_>> = Vec::with_capacity(a.parts.len());
    for (p, call_args) in a.parts.iter().zip(&call_args) {
        match p {
            Part::Text(t) => parts.push(text_part(&t.text)),
            Part::Refusal(r) => parts.push(text_part(r)),
            Part::Reasoning(r) => {
                let sig = (r.signature.as_ref().map(|s| encode_signature(s, false)))
                    .or_else(|| r.redacted.as_ref().map(|s| encode_signature(s, true)));
                if r.text.is_empty() {
                    // A signature Gemini put on a non-thought part goes back
                    // on it (see the egress decoder).
                    if let Some(prev) = parts.last_mut().filter(|p| {
                        p.text.is_some() && p.thought.is_none() && p.thought_signature.is_none()
                    }) {
                        prev.thought_signature = sig;
                        continue;
                    }
                }
                if r.text.is_empty() && sig.is_none() {
                    continue;
                }
                parts.push(WirePart {
                    text: Some(Cow::Borrowed(&r.text)),
                    thought: Some(true),
                    thought_signature: sig,
                    ..WirePart::default()
                });
            }
            Part::ToolCall(c) => {
                let sig = c.signature.as_ref().map(|s| encode_signature(s, false));
                if let Some(args) = call_args {
                    parts.push(call_part(&c.id, &c.name, args, sig));
                }
            }
            Part::Opaque {
                family: Family::Gemini,
                raw,
            } => {
                if let Ok(p) = serde_json::from_str::<WirePart<'_>>(raw.get()) {
                    parts.push(p);
                }
            }
            Part::Media(_) | Part::ToolResult(_) | Part::Opaque { .. } => {}
        }
    }
    if parts.is_empty() {
        // Google always sends content; SDKs read `.text` off it.
        parts.push(text_part(""));
    }
    let finish = a
        .finish
        .as_ref()
        .map_or(Cow::Borrowed("STOP"), finish_reason);
    // ~350 bytes besides the answer's texts.
    let capacity = 448 + model.len() + a.buffer_hint();
    let (mut out, usage) = (BytesMut::with_capacity(capacity), Some(&a.usage));
    response(&mut out, &parts, Some(&finish), usage, model, &a.id);
    out.freeze()
}

/// Google's error body for `err`.
pub(super) fn error(err: &ChatError) -> Bytes {
    to_bytes(&error_out(err), 256)
}

fn error_out(err: &ChatError) -> ErrorOut<'_> {
    // A vendor's own Google status is kept when it is one.
    let status = match err.vendor_type.as_deref() {
        Some(t) if by_name(t).is_some() => t,
        _ => status_name(err.kind),
    };
    ErrorOut {
        error: ErrorOutInner {
            code: err.status,
            message: &err.message,
            status,
        },
    }
}

/// An in-band error: the last SSE event, or the last array element.
pub(super) fn stream_error(err: &ChatError, array: bool) -> Bytes {
    let mut out = BytesMut::new();
    frame(&mut out, &error_out(err), array, false);
    if array {
        out.extend_from_slice(b"]");
    }
    out.freeze()
}

/// One element of the stream in its framing: `first` opens the array.
fn frame(out: &mut BytesMut, v: &impl Serialize, array: bool, first: bool) {
    frame_open(out, array, first);
    let _ = serde_json::to_writer((&mut *out).writer(), v);
    frame_close(out, array);
}

fn frame_open(out: &mut BytesMut, array: bool, first: bool) {
    out.extend_from_slice(match (array, first) {
        (false, _) => b"data: ",
        (true, true) => b"[",
        (true, false) => b",\r\n",
    });
}

fn frame_close(out: &mut BytesMut, array: bool) {
    if !array {
        out.extend_from_slice(b"\r\n\r\n");
    }
}

/// Canonical events as `GenerateContentResponse` chunks.
pub(super) struct Encoder {
    array: bool,
    model: String,
    id: String,
    /// A chunk was written (the array is open).
    started: bool,
    /// The open block: a tool call collects its arguments until it stops.
    call: Option<OpenCall>,
    /// The open block is reasoning (its signature goes on a thought part).
    reasoning: bool,
    usage: Option<Usage>,
}

struct OpenCall {
    id: String,
    name: String,
    kind: ToolKind,
    arguments: String,
    signature: Option<String>,
}

impl Encoder {
    pub(super) fn new(model: &str, array: bool) -> Self {
        Encoder {
            array,
            model: model.to_string(),
            id: String::new(),
            started: false,
            call: None,
            reasoning: false,
            usage: None,
        }
    }

    pub(super) fn chunk(
        &mut self,
        out: &mut BytesMut,
        parts: &[WirePart<'_>],
        finish: Option<&Finish>,
    ) {
        let finish = finish.map(finish_reason);
        let usage = finish.as_ref().and(self.usage.as_ref());
        frame_open(out, self.array, !self.started);
        response(out, parts, finish.as_deref(), usage, &self.model, &self.id);
        frame_close(out, self.array);
        self.started = true;
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &Event<'_>, out: &mut BytesMut) {
        match ev {
            Event::Start { id, .. } => {
                self.id = id.to_string();
            }
            Event::BlockStart { block, .. } => {
                self.reasoning = matches!(block, Block::Reasoning);
                if let Block::ToolCall { id, name, kind } = block {
                    self.call = Some(OpenCall {
                        id: id.to_string(),
                        name: name.to_string(),
                        kind: *kind,
                        arguments: String::new(),
                        signature: None,
                    });
                }
            }
            Event::Delta { delta, .. } => match delta {
                Delta::Text(t) | Delta::Refusal(t) if !t.is_empty() => {
                    self.chunk(out, &[text_part(t)], None)
                }
                Delta::Reasoning(t) if !t.is_empty() => {
                    let part = WirePart {
                        thought: Some(true),
                        ..text_part(t)
                    };
                    self.chunk(out, &[part], None)
                }
                Delta::Signature(sig) | Delta::Redacted(sig) => {
                    let redacted = matches!(delta, Delta::Redacted(_));
                    let value = encode_signature(sig, redacted);
                    if let Some(call) = &mut self.call {
                        call.signature = Some(value.into_owned());
                        return;
                    }
                    let part = WirePart {
                        text: Some(Cow::Borrowed("")),
                        thought: self.reasoning.then_some(true),
                        thought_signature: Some(value),
                        ..WirePart::default()
                    };
                    self.chunk(out, &[part], None)
                }
                Delta::ToolArguments(a) => {
                    if let Some(call) = &mut self.call {
                        call.arguments.push_str(a);
                    }
                }
                _ => {}
            },
            Event::BlockStop { .. } => {
                self.reasoning = false;
                if let Some(call) = self.call.take() {
                    let args = args(call.kind, &call.arguments);
                    let sig = call.signature.as_deref().map(Cow::Borrowed);
                    let part = call_part(&call.id, &call.name, &args, sig);
                    self.chunk(out, &[part], None);
                }
            }
            Event::Usage(u) => self.usage = Some(*u),
            Event::Stop { finish } => {
                // The last chunk: the finish reason and the usage, with an
                // empty text part (SDKs read `.text` off every chunk).
                self.chunk(out, &[text_part("")], Some(finish));
            }
            Event::Error(e) => {
                frame(out, &error_out(e), self.array, !self.started);
                if self.array {
                    out.extend_from_slice(b"]");
                }
            }
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        if self.array {
            out.extend_from_slice(if self.started { b"]" } else { b"[]" });
        }
    }
}
