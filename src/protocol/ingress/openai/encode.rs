//! Answers, stream chunks and errors in the OpenAI Chat Completions format.
//!
//! Chunks are written straight into the output buffer: the part every chunk
//! of a stream shares (`data: {"id":…,"object":…,"created":…,"model":…,
//! "choices":`) is serialised once, the rest per event.

use crate::protocol::chat::{
    generated_id, now_unix, Answer, Block, ChatError, Delta, ErrorKind, Event, Family, Finish,
    Part, Signature, StreamEncoder, ToolKind, Usage,
};
use crate::protocol::json::{push_count, push_str as js, push_u64, to_bytes};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use std::borrow::Cow;

// ---------------------------------------------------------------- usage & finish

/// OpenAI's usage object (see `push_count`).
fn usage(o: &mut BytesMut, u: &Usage) {
    let total = match u.total_tokens {
        0 => u.prompt_tokens.saturating_add(u.completion_tokens),
        t => t,
    };
    o.extend_from_slice(b"{");
    push_count(o, "prompt_tokens", u.prompt_tokens);
    push_count(o, "completion_tokens", u.completion_tokens);
    push_count(o, "total_tokens", total);
    o.extend_from_slice(br#","prompt_tokens_details":{"#);
    push_count(o, "cached_tokens", u.cached_tokens);
    o.extend_from_slice(br#"},"completion_tokens_details":{"#);
    push_count(o, "reasoning_tokens", u.reasoning_tokens);
    o.extend_from_slice(b"}}");
}

/// The client's word for why the answer ended. OpenAI ends a refusal with
/// `stop` (the refusal text says it); a refusal with no text is a filter.
fn finish_word(finish: Option<&Finish>, has_calls: bool, refused: bool) -> &'static str {
    match finish {
        None if has_calls => "tool_calls",
        None | Some(Finish::Stop | Finish::StopSequence(_) | Finish::Pause | Finish::Other(_)) => {
            "stop"
        }
        Some(Finish::Length) => "length",
        Some(Finish::ToolCalls) => "tool_calls",
        Some(Finish::ContentFilter) => "content_filter",
        Some(Finish::Refusal) if refused => "stop",
        Some(Finish::Refusal) => "content_filter",
    }
}

// ---------------------------------------------------------------- whole answers

/// A tool call object's members: id, type, the function or custom input
/// and (Google's codec for a Gemini thought signature) `extra_content`.
fn call_members(
    o: &mut BytesMut,
    id: &str,
    kind: ToolKind,
    name: &str,
    args: &str,
    sig: Option<&str>,
) {
    o.extend_from_slice(br#""id":"#);
    js(o, id);
    o.extend_from_slice(match kind {
        ToolKind::Function => br#","type":"function","function":{"name":"#,
        ToolKind::Custom => br#","type":"custom","custom":{"name":"#,
    });
    js(o, name);
    o.extend_from_slice(match kind {
        ToolKind::Function => br#","arguments":"#,
        ToolKind::Custom => br#","input":"#,
    });
    js(o, args);
    o.extend_from_slice(b"}");
    if let Some(sig) = sig {
        signature_member(o, sig);
    }
}

fn signature_member(o: &mut BytesMut, sig: &str) {
    o.extend_from_slice(br#","extra_content":{"google":{"thought_signature":"#);
    js(o, sig);
    o.extend_from_slice(b"}}");
}

fn gemini<'r>(sig: Option<&'r Signature<'_>>) -> Option<&'r str> {
    sig.filter(|s| s.family == Family::Gemini)
        .map(|s| s.value.as_ref())
}

/// Pieces of one kind joined (borrowed when there is only one).
fn join<'r>(acc: &mut Option<Cow<'r, str>>, piece: &'r str) {
    match acc {
        None => *acc = Some(Cow::Borrowed(piece)),
        Some(a) => a.to_mut().push_str(piece),
    }
}

pub(super) fn answer(a: &Answer<'_>, model: &str) -> Bytes {
    let (mut text, mut reasoning, mut refusal, mut signature) = (None, None, None, None);
    let mut calls = Vec::new();
    for p in &a.parts {
        match p {
            Part::Text(t) => join(&mut text, &t.text),
            Part::Reasoning(r) => {
                if !r.text.is_empty() {
                    join(&mut reasoning, &r.text);
                }
                signature = gemini(r.signature.as_ref()).or(signature);
            }
            Part::Refusal(r) => join(&mut refusal, r),
            Part::ToolCall(c) => calls.push(c),
            // Media, tool results and other families' blocks have no place
            // in an OpenAI answer.
            _ => {}
        }
    }
    let finish = finish_word(a.finish.as_ref(), !calls.is_empty(), refusal.is_some());
    // The fixed part of an answer with usage is ~420 bytes.
    let mut o = BytesMut::with_capacity(512 + model.len() + a.buffer_hint());
    o.extend_from_slice(br#"{"id":"#);
    match a.id.as_ref() {
        "" => js(&mut o, &generated_id("chatcmpl-")),
        id => js(&mut o, id),
    }
    o.extend_from_slice(br#","object":"chat.completion","created":"#);
    let created = if a.created == 0 {
        now_unix()
    } else {
        a.created
    };
    push_u64(&mut o, created);
    o.extend_from_slice(br#","model":"#);
    js(&mut o, model);
    o.extend_from_slice(br#","choices":[{"index":0,"message":{"role":"assistant","content":"#);
    match text {
        Some(t) => js(&mut o, &t),
        None if calls.is_empty() && refusal.is_none() => js(&mut o, ""),
        None => o.extend_from_slice(b"null"),
    }
    for (key, v) in [
        (&br#","reasoning_content":"#[..], &reasoning),
        (br#","refusal":"#, &refusal),
    ] {
        if let Some(v) = v {
            o.extend_from_slice(key);
            js(&mut o, v);
        }
    }
    for (i, c) in calls.iter().enumerate() {
        o.extend_from_slice(if i == 0 {
            br#","tool_calls":[{"#
        } else {
            b",{"
        });
        let args = match (c.kind, c.arguments.as_ref()) {
            (ToolKind::Function, "") => "{}",
            (_, args) => args,
        };
        call_members(
            &mut o,
            &c.id,
            c.kind,
            &c.name,
            args,
            gemini(c.signature.as_ref()),
        );
        o.extend_from_slice(if i + 1 == calls.len() { b"}]" } else { b"}" });
    }
    if let Some(sig) = signature {
        signature_member(&mut o, sig);
    }
    o.extend_from_slice(br#"},"logprobs":null,"finish_reason":"#);
    js(&mut o, finish);
    o.extend_from_slice(br#"}],"usage":"#);
    usage(&mut o, &a.usage);
    o.extend_from_slice(b"}");
    o.freeze()
}

// ---------------------------------------------------------------- errors

#[derive(Serialize)]
struct ErrorBody<'r> {
    error: ErrorOut<'r>,
}

#[derive(Serialize)]
struct ErrorOut<'r> {
    message: &'r str,
    #[serde(rename = "type")]
    kind: &'r str,
    param: Option<&'r str>,
    code: Option<&'r str>,
}

/// Vendor type words that are not OpenAI's (Anthropic's own, Gemini's
/// upper-case statuses): those go to `code`, the type comes from the kind.
fn foreign_type(t: &str) -> bool {
    matches!(
        t,
        "api_error" | "overloaded_error" | "billing_error" | "timeout_error" | "request_too_large"
    ) || t.bytes().any(|b| b.is_ascii_uppercase())
}

/// OpenAI's error `type` for a kind (the Responses API uses the same words).
pub(in crate::protocol::ingress) fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::ContextLength | ErrorKind::RequestTooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Overloaded | ErrorKind::Upstream => "server_error",
    }
}

fn error_out(err: &ChatError) -> ErrorBody<'_> {
    let own = err.vendor_type.as_deref().filter(|t| !foreign_type(t));
    let kind = own.unwrap_or(error_type(err.kind));
    let code = err.code.as_deref().or(match err.kind {
        ErrorKind::ContextLength => Some("context_length_exceeded"),
        _ => err.vendor_type.as_deref().filter(|t| foreign_type(t)),
    });
    ErrorBody {
        error: ErrorOut {
            message: &err.message,
            kind,
            param: err.param.as_deref(),
            code,
        },
    }
}

pub(super) fn error_body(err: &ChatError) -> Bytes {
    to_bytes(&error_out(err), 128)
}

/// The SDKs raise on a `data:` event carrying an `error` object.
pub(super) fn stream_error(err: &ChatError) -> Bytes {
    let mut out = BytesMut::from(&b"data: "[..]);
    let _ = serde_json::to_writer((&mut out).writer(), &error_out(err));
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

// ---------------------------------------------------------------- streams

/// A tool call block being streamed.
struct StreamedCall {
    block: usize,
    /// `tool_calls[].index`: counts tool calls only.
    index: usize,
    kind: ToolKind,
    args_sent: bool,
}

/// A tool call whose first chunk waits one event, so a signature that
/// follows its start rides on that chunk (as Google's endpoint sends it).
struct Pending {
    id: String,
    name: String,
    signature: Option<String>,
}

pub(super) struct ChunkEncoder {
    model: String,
    include_usage: bool,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":`; empty
    /// until the stream started.
    head: Vec<u8>,
    calls: Vec<StreamedCall>,
    pending: Option<Pending>,
    refused: bool,
    usage: Usage,
    stopped: bool,
}

impl ChunkEncoder {
    pub(super) fn new(model: &str, include_usage: bool) -> Self {
        ChunkEncoder {
            model: model.to_string(),
            include_usage,
            head: Vec::new(),
            calls: Vec::new(),
            pending: None,
            refused: false,
            usage: Usage::default(),
            stopped: false,
        }
    }

    /// The head and the role chunk, once (also when `Start` went missing).
    fn start(&mut self, id: &str, out: &mut BytesMut) {
        if !self.head.is_empty() {
            return;
        }
        let id = match id {
            "" => Cow::Owned(generated_id("chatcmpl-")),
            id => Cow::Borrowed(id),
        };
        let mut h = BytesMut::with_capacity(96 + id.len() + self.model.len());
        h.extend_from_slice(br#"data: {"id":"#);
        js(&mut h, &id);
        h.extend_from_slice(br#","object":"chat.completion.chunk","created":"#);
        push_u64(&mut h, now_unix());
        h.extend_from_slice(br#","model":"#);
        js(&mut h, &self.model);
        h.extend_from_slice(br#","choices":"#);
        self.head = h.to_vec();
        self.chunk(out, None, |o| {
            o.extend_from_slice(br#""role":"assistant","content":"""#)
        });
    }

    /// One chunk: `delta` writes the delta's members.
    fn chunk(&self, out: &mut BytesMut, finish: Option<&str>, delta: impl FnOnce(&mut BytesMut)) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(br#"[{"index":0,"delta":{"#);
        delta(out);
        out.extend_from_slice(br#"},"logprobs":null,"finish_reason":"#);
        match finish {
            Some(f) => js(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(if self.include_usage {
            b"}],\"usage\":null}\n\n"
        } else {
            b"}]}\n\n"
        });
    }

    fn text(&self, out: &mut BytesMut, key: &[u8], text: &str) {
        if text.is_empty() {
            return;
        }
        self.chunk(out, None, |o| {
            o.extend_from_slice(key);
            js(o, text);
        });
    }

    /// A tool-call delta for call `index`: `members` writes the call
    /// object's members after `"index":N`.
    fn call_chunk(&self, out: &mut BytesMut, index: usize, members: impl FnOnce(&mut BytesMut)) {
        self.chunk(out, None, |o| {
            o.extend_from_slice(br#""tool_calls":[{"index":"#);
            push_u64(o, index as u64);
            members(o);
            o.extend_from_slice(b"}]");
        });
    }

    /// The held first chunk of the last tool call, if any; `args` are sent
    /// in it (a call that ends without arguments gets `{}`).
    fn flush(&mut self, out: &mut BytesMut, args: &str) {
        let Some(p) = self.pending.take() else { return };
        let Some(call) = self.calls.last_mut() else {
            return;
        };
        call.args_sent |= !args.is_empty();
        let (index, kind) = (call.index, call.kind);
        self.call_chunk(out, index, |o| {
            o.extend_from_slice(b",");
            call_members(o, &p.id, kind, &p.name, args, p.signature.as_deref());
        });
    }

    fn call_at(&self, block: usize) -> Option<&StreamedCall> {
        self.calls.iter().rev().find(|c| c.block == block)
    }

    fn delta(&mut self, block: usize, delta: &Delta<'_>, out: &mut BytesMut) {
        match delta {
            Delta::Signature(sig) if sig.family == Family::Gemini => {
                let held = self.calls.last().is_some_and(|c| c.block == block);
                if let (Some(p), true) = (&mut self.pending, held) {
                    p.signature = Some(sig.value.to_string());
                    return;
                }
                self.flush(out, "");
                match self.call_at(block).map(|c| (c.index, c.kind)) {
                    // Clients (the openai SDK) read `function` on every tool-call delta.
                    Some((index, kind)) => self.call_chunk(out, index, |o| {
                        o.extend_from_slice(match kind {
                            ToolKind::Function => br#","function":{"arguments":""}"#,
                            ToolKind::Custom => br#","custom":{"input":""}"#,
                        });
                        signature_member(o, &sig.value)
                    }),
                    None => self.chunk(out, None, |o| {
                        o.extend_from_slice(br#""extra_content":{"google":{"thought_signature":"#);
                        js(o, &sig.value);
                        o.extend_from_slice(b"}}");
                    }),
                }
            }
            // Other families' signatures and encrypted reasoning: an OpenAI
            // client has nowhere to keep them.
            Delta::Signature(_) | Delta::Redacted(_) => {}
            Delta::ToolArguments(args) => {
                if self.pending.is_some() {
                    self.flush(out, "");
                }
                let Some(call) = self.calls.iter_mut().rev().find(|c| c.block == block) else {
                    return;
                };
                if args.is_empty() {
                    return;
                }
                call.args_sent = true;
                let (index, kind) = (call.index, call.kind);
                self.call_chunk(out, index, |o| {
                    o.extend_from_slice(match kind {
                        ToolKind::Function => br#","function":{"arguments":"#,
                        ToolKind::Custom => br#","custom":{"input":"#,
                    });
                    js(o, args);
                    o.extend_from_slice(b"}");
                });
            }
            Delta::Text(t) => {
                self.flush(out, "");
                self.text(out, br#""content":"#, t);
            }
            Delta::Reasoning(t) => {
                self.flush(out, "");
                self.text(out, br#""reasoning_content":"#, t);
            }
            Delta::Refusal(t) => {
                self.flush(out, "");
                self.refused = true;
                self.text(out, br#""refusal":"#, t);
            }
        }
    }

    fn block_stop(&mut self, block: usize, out: &mut BytesMut) {
        let Some(call) = self.call_at(block) else {
            return;
        };
        // A function without parameters still ends with parseable arguments.
        let empty = if call.kind == ToolKind::Function && !call.args_sent {
            "{}"
        } else {
            ""
        };
        if self.pending.is_some() {
            self.flush(out, empty);
        } else if !empty.is_empty() {
            let index = call.index;
            self.call_chunk(out, index, |o| {
                o.extend_from_slice(br#","function":{"arguments":"{}"}"#)
            });
        }
        if let Some(c) = self.calls.iter_mut().rev().find(|c| c.block == block) {
            c.args_sent = true;
        }
    }
}

impl StreamEncoder for ChunkEncoder {
    fn event(&mut self, ev: &Event<'_>, out: &mut BytesMut) {
        if self.stopped {
            return;
        }
        if let Event::Start { id, .. } = ev {
            self.start(id, out);
            return;
        }
        if let Event::Error(e) = ev {
            self.stopped = true;
            out.extend_from_slice(&stream_error(e));
            return;
        }
        self.start("", out);
        match ev {
            Event::BlockStart {
                index,
                block: Block::ToolCall { id, name, kind },
            } => {
                self.flush(out, "");
                let call = StreamedCall {
                    block: *index,
                    index: self.calls.len(),
                    kind: *kind,
                    args_sent: false,
                };
                self.calls.push(call);
                self.pending = Some(Pending {
                    id: id.to_string(),
                    name: name.to_string(),
                    signature: None,
                });
            }
            Event::BlockStart { .. } => self.flush(out, ""),
            Event::Delta { index, delta } => self.delta(*index, delta, out),
            Event::BlockStop { index } => self.block_stop(*index, out),
            Event::Usage(u) => self.usage = *u,
            Event::Stop { finish } => {
                self.flush(out, "");
                self.stopped = true;
                let word = finish_word(Some(finish), !self.calls.is_empty(), self.refused);
                self.chunk(out, Some(word), |_| {});
                if self.include_usage {
                    out.extend_from_slice(&self.head);
                    out.extend_from_slice(br#"[],"usage":"#);
                    usage(out, &self.usage);
                    out.extend_from_slice(b"}\n\n");
                }
            }
            Event::Start { .. } | Event::Error(_) => {}
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}
