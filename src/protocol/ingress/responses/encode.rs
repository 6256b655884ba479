//! Responses answers, stream events and errors.
//!
//! One item writer serves whole answers, `output_item.added/.done` and the
//! `output` of `response.completed`, so the stream's items and the final
//! response are the same objects (the SDK's stream helper checks that).
//! Streams number every event (`sequence_number`, from 0).

use crate::protocol::chat::{
    generated_id, now_unix, Answer, Block, ChatError, Delta, ErrorKind, Event, Family, Finish,
    Part, Request, Signature, StreamEncoder, ToolKind, Usage,
};
use crate::protocol::ingress::openai::error_type;
use crate::protocol::json::{push_count, push_str as js, push_u64 as num};
use bytes::{Bytes, BytesMut};

/// Joins a namespace and a member's name in the name vendors see.
pub(super) const NS_SEP: &str = "__";

/// What the answer side needs from the client's request.
#[derive(Default)]
pub(super) struct Echo {
    /// Freeform tools (sent to the vendor as functions with `input`).
    custom: Vec<String>,
    /// `include` asked for `reasoning.encrypted_content`.
    encrypted: bool,
    /// Namespaces whose members were sent as `<ns>__<name>`.
    namespaces: Vec<String>,
}

impl Echo {
    pub(super) fn of(req: Option<&Request<'_>>) -> Echo {
        let Some(req) = req else {
            return Echo::default();
        };
        let custom = (req.tools.iter())
            .filter(|t| t.kind == ToolKind::Function && t.format.is_some())
            .map(|t| t.name.to_string())
            .collect();
        let encrypted = (req.extra.fields.iter())
            .any(|(k, v)| k == "include" && v.get().contains("\"reasoning.encrypted_content\""));
        let namespaces = (req.extra.fields.iter())
            .find(|(k, _)| k == "namespaces")
            .and_then(|(_, v)| serde_json::from_str(v.get()).ok())
            .unwrap_or_default();
        Echo {
            custom,
            encrypted,
            namespaces,
        }
    }
}

// ---------------------------------------------------------------- items

enum Kind {
    Message {
        refusal: bool,
    },
    Reasoning {
        encrypted: Option<String>,
    },
    Call {
        call_id: String,
        name: String,
        namespace: Option<String>,
        custom: bool,
    },
}

/// One output item and the text it holds so far.
struct Item {
    id: String,
    kind: Kind,
    /// Message text, reasoning summary, call arguments / custom input.
    text: String,
}

/// `gw1:<family>:<s|r>:<value>` (see the module doc of `responses`).
fn encrypted(sig: &Signature<'_>, redacted: bool) -> Option<String> {
    let family = match sig.family {
        Family::Anthropic => "anthropic",
        Family::Gemini => "gemini",
        Family::OpenAi => "openai",
        // OpenAI's own never passes through the model.
        Family::OpenAiResponses => return None,
    };
    let kind = if redacted { "r" } else { "s" };
    Some(format!("gw1:{family}:{kind}:{}", sig.value))
}

/// A function call's Gemini thought signature, carried in a reasoning item
/// right after the call (`gw1:gemini:c:<value>`): Responses calls have no
/// place for it.
fn call_signature(sig: &Signature<'_>) -> Option<String> {
    (sig.family == Family::Gemini).then(|| format!("gw1:gemini:c:{}", sig.value))
}

/// The input of a freeform call sent as a function: `{"input": "…"}`.
fn custom_input(args: &str) -> String {
    #[derive(serde::Deserialize)]
    struct In {
        input: String,
    }
    serde_json::from_str::<In>(args).map_or_else(|_| args.to_string(), |i| i.input)
}

impl Item {
    fn call(id: &str, name: &str, kind: ToolKind, echo: &Echo) -> Item {
        let custom = kind == ToolKind::Custom || echo.custom.iter().any(|c| c == name);
        // `<ns>__<member>` of a namespace the client declared.
        let split = (echo.namespaces.iter()).find_map(|ns| {
            let member = name.strip_prefix(ns.as_str())?.strip_prefix(NS_SEP)?;
            Some((ns.clone(), member))
        });
        let (namespace, name) = match split {
            Some((ns, member)) => (Some(ns), member),
            None => (None, name),
        };
        Item {
            id: format!("{}_{id}", if custom { "ctc" } else { "fc" }),
            kind: Kind::Call {
                call_id: id.to_string(),
                name: name.to_string(),
                namespace,
                custom,
            },
            text: String::new(),
        }
    }

    /// The finished text of a call: a freeform call sent as a function
    /// gives back its `input`.
    fn finish_call(&mut self, was_function: bool) {
        if let Kind::Call { custom: true, .. } = self.kind {
            if was_function {
                self.text = custom_input(&self.text);
            }
        } else if let Kind::Call { .. } = self.kind {
            if self.text.trim().is_empty() {
                self.text = "{}".to_string();
            }
        }
    }

    fn write(&self, o: &mut BytesMut, done: bool, echo: &Echo) {
        let status = if done { "completed" } else { "in_progress" };
        o.extend_from_slice(br#"{"id":"#);
        js(o, &self.id);
        match &self.kind {
            Kind::Message { refusal } => {
                o.extend_from_slice(br#","type":"message","status":"#);
                js(o, status);
                o.extend_from_slice(br#","role":"assistant","content":["#);
                if done {
                    part(o, *refusal, &self.text);
                }
                o.extend_from_slice(b"]");
            }
            Kind::Reasoning { encrypted } => {
                o.extend_from_slice(br#","type":"reasoning","summary":["#);
                if done && !self.text.is_empty() {
                    o.extend_from_slice(br#"{"type":"summary_text","text":"#);
                    js(o, &self.text);
                    o.extend_from_slice(b"}");
                }
                o.extend_from_slice(b"]");
                if let Some(e) = encrypted.as_ref().filter(|_| done && echo.encrypted) {
                    o.extend_from_slice(br#","encrypted_content":"#);
                    js(o, e);
                }
            }
            Kind::Call {
                call_id,
                name,
                namespace,
                custom,
            } => {
                o.extend_from_slice(if *custom {
                    br#","type":"custom_tool_call","status":"#
                } else {
                    br#","type":"function_call","status":"#
                });
                js(o, status);
                o.extend_from_slice(br#","call_id":"#);
                js(o, call_id);
                o.extend_from_slice(br#","name":"#);
                js(o, name);
                if let Some(ns) = namespace {
                    o.extend_from_slice(br#","namespace":"#);
                    js(o, ns);
                }
                o.extend_from_slice(if *custom {
                    br#","input":"#
                } else {
                    br#","arguments":"#
                });
                js(o, if done { &self.text } else { "" });
            }
        }
        o.extend_from_slice(b"}");
    }
}

/// A message's content part.
fn part(o: &mut BytesMut, refusal: bool, text: &str) {
    if refusal {
        o.extend_from_slice(br#"{"type":"refusal","refusal":"#);
        js(o, text);
        o.extend_from_slice(b"}");
    } else {
        o.extend_from_slice(br#"{"type":"output_text","text":"#);
        js(o, text);
        o.extend_from_slice(br#","annotations":[],"logprobs":[]}"#);
    }
}

// ---------------------------------------------------------------- response

/// Everything the `response` object says besides its output.
struct Head<'r> {
    id: &'r str,
    created: u64,
    model: &'r str,
}

/// `status` and `incomplete_details.reason` for a finish.
fn status(finish: Option<&Finish>) -> (&'static str, Option<&'static str>) {
    match finish {
        Some(Finish::Length) => ("incomplete", Some("max_output_tokens")),
        Some(Finish::ContentFilter) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

fn usage(o: &mut BytesMut, u: &Usage) {
    let total = match u.total_tokens {
        0 => u.prompt_tokens.saturating_add(u.completion_tokens),
        t => t,
    };
    o.extend_from_slice(b"{");
    push_count(o, "input_tokens", u.prompt_tokens);
    o.extend_from_slice(br#","input_tokens_details":{"#);
    push_count(o, "cached_tokens", u.cached_tokens);
    push_count(o, "cache_write_tokens", u.cache_write_tokens);
    o.extend_from_slice(b"}");
    push_count(o, "output_tokens", u.completion_tokens);
    o.extend_from_slice(br#","output_tokens_details":{"#);
    push_count(o, "reasoning_tokens", u.reasoning_tokens);
    o.extend_from_slice(b"}");
    push_count(o, "total_tokens", total);
    o.extend_from_slice(b"}");
}

/// A whole `response` object. `status` is in_progress, completed,
/// incomplete or failed; `usage` only when it is over.
#[allow(clippy::too_many_arguments)]
fn response(
    o: &mut BytesMut,
    h: &Head<'_>,
    status: &str,
    incomplete: Option<&str>,
    error: Option<&ChatError>,
    items: &[Item],
    u: Option<&Usage>,
    echo: &Echo,
) {
    o.extend_from_slice(br#"{"id":"#);
    js(o, h.id);
    o.extend_from_slice(br#","object":"response","created_at":"#);
    num(o, h.created);
    o.extend_from_slice(br#","status":"#);
    js(o, status);
    o.extend_from_slice(br#","error":"#);
    match error {
        Some(e) => {
            o.extend_from_slice(br#"{"code":"#);
            js(o, failed_code(e));
            o.extend_from_slice(br#","message":"#);
            js(o, &e.message);
            o.extend_from_slice(b"}");
        }
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(br#","incomplete_details":"#);
    match incomplete {
        Some(r) => {
            o.extend_from_slice(br#"{"reason":"#);
            js(o, r);
            o.extend_from_slice(b"}");
        }
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(br#","instructions":null,"metadata":{},"model":"#);
    js(o, h.model);
    o.extend_from_slice(br#","output":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            o.extend_from_slice(b",");
        }
        item.write(o, true, echo);
    }
    o.extend_from_slice(br#"],"parallel_tool_calls":true,"temperature":null,"top_p":null,"tool_choice":"auto","tools":[],"store":false,"text":{"format":{"type":"text"}},"usage":"#);
    match u {
        Some(u) => usage(o, u),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(b"}");
}

/// A response id: the vendor's id under `resp_`, or a new one.
fn response_id(id: &str) -> String {
    if id.is_empty() {
        generated_id("resp_")
    } else if id.starts_with("resp_") {
        id.to_string()
    } else {
        ["resp_", id].concat()
    }
}

/// An output item's id, `{prefix}_{response id without resp_}_{n}`, built
/// without `format!` (~600 instructions each).
fn item_id(prefix: &str, response: &str, n: usize) -> String {
    // `strip_prefix`: `trim_start_matches` with a `&str` builds a
    // substring searcher (~450 instructions).
    let base = response.strip_prefix("resp_").unwrap_or(response);
    let mut id = String::with_capacity(prefix.len() + base.len() + 6);
    for piece in [prefix, "_", base, "_"] {
        id.push_str(piece);
    }
    id.push_str(itoa::Buffer::new().format(n));
    id
}

pub(super) fn answer(a: &Answer<'_>, model: &str, echo: &Echo) -> Bytes {
    let id = response_id(&a.id);
    let mut items: Vec<Item> = Vec::new();
    let mut n = 0usize;
    let mut next_id = |prefix: &str| {
        n += 1;
        item_id(prefix, &id, n)
    };
    for p in &a.parts {
        match p {
            Part::Text(t) if !t.text.is_empty() => match items.last_mut() {
                Some(Item {
                    kind: Kind::Message { refusal: false },
                    text,
                    ..
                }) => text.push_str(&t.text),
                _ => items.push(Item {
                    id: next_id("msg"),
                    kind: Kind::Message { refusal: false },
                    text: t.text.to_string(),
                }),
            },
            Part::Refusal(r) => items.push(Item {
                id: next_id("msg"),
                kind: Kind::Message { refusal: true },
                text: r.to_string(),
            }),
            Part::Reasoning(r) => {
                let enc = (r.redacted.as_ref().and_then(|s| encrypted(s, true)))
                    .or_else(|| r.signature.as_ref().and_then(|s| encrypted(s, false)));
                if r.text.is_empty() && enc.is_none() {
                    continue;
                }
                items.push(Item {
                    id: next_id("rs"),
                    kind: Kind::Reasoning { encrypted: enc },
                    text: r.text.to_string(),
                });
            }
            Part::ToolCall(c) => {
                let mut item = Item::call(&c.id, &c.name, c.kind, echo);
                item.text = c.arguments.to_string();
                item.finish_call(c.kind == ToolKind::Function);
                items.push(item);
                if let Some(enc) =
                    (c.signature.as_ref().filter(|_| echo.encrypted)).and_then(call_signature)
                {
                    items.push(Item {
                        id: next_id("rs"),
                        kind: Kind::Reasoning {
                            encrypted: Some(enc),
                        },
                        text: String::new(),
                    });
                }
            }
            // Media, tool results and opaque blocks have no output item.
            _ => {}
        }
    }
    let (st, incomplete) = status(a.finish.as_ref());
    let head = Head {
        id: &id,
        created: if a.created == 0 {
            now_unix()
        } else {
            a.created
        },
        model,
    };
    // ~700 bytes besides the items (the echoed settings, usage), ~200 an
    // item besides its text: the buffer is allocated once, never grown.
    let texts: usize = items.iter().map(|i| 192 + i.text.len() * 9 / 8).sum();
    let mut o = BytesMut::with_capacity(768 + model.len() + texts);
    response(
        &mut o,
        &head,
        st,
        incomplete,
        None,
        &items,
        Some(&a.usage),
        echo,
    );
    o.freeze()
}

// ---------------------------------------------------------------- errors

/// The code of a failed response (`ResponseError.code` has a fixed list).
fn failed_code(err: &ChatError) -> &'static str {
    match err.kind {
        ErrorKind::RateLimited => "rate_limit_exceeded",
        ErrorKind::InvalidRequest | ErrorKind::ContextLength => "invalid_prompt",
        _ => "server_error",
    }
}

/// OpenAI's error body: `{"error":{"message","type","param","code"}}`.
pub(super) fn error_body(err: &ChatError) -> Bytes {
    let mut o = BytesMut::with_capacity(128 + err.message.len());
    o.extend_from_slice(br#"{"error":{"message":"#);
    js(&mut o, &err.message);
    o.extend_from_slice(br#","type":"#);
    js(&mut o, error_type(err.kind));
    o.extend_from_slice(br#","param":"#);
    match &err.param {
        Some(p) => js(&mut o, p),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(br#","code":"#);
    match err.code.as_deref().or(match err.kind {
        ErrorKind::ContextLength => Some("context_length_exceeded"),
        _ => None,
    }) {
        Some(c) => js(&mut o, c),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(b"}}");
    o.freeze()
}

/// An `error` event, for a stream whose state is unknown here (the
/// encoder itself writes `response.failed`).
pub(super) fn stream_error(err: &ChatError) -> Bytes {
    let mut o = BytesMut::with_capacity(160 + err.message.len());
    o.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"code\":");
    js(&mut o, err.code.as_deref().unwrap_or(failed_code(err)));
    o.extend_from_slice(br#","message":"#);
    js(&mut o, &err.message);
    o.extend_from_slice(br#","param":null,"sequence_number":0}"#);
    o.extend_from_slice(b"\n\n");
    o.freeze()
}

// ---------------------------------------------------------------- streams

pub(super) struct EventEncoder {
    model: String,
    echo: Echo,
    id: String,
    created: u64,
    seq: u64,
    items: Vec<Item>,
    /// The canonical block index of the open item (the last of `items`),
    /// and whether a call in it came as a function.
    open: Option<(usize, bool)>,
    usage: Usage,
    /// A Gemini signature on the open call, for a reasoning item after it.
    call_sig: Option<String>,
    started: bool,
    stopped: bool,
}

impl EventEncoder {
    pub(super) fn new(model: &str, echo: Echo) -> Self {
        EventEncoder {
            model: model.to_string(),
            echo,
            id: String::new(),
            created: now_unix(),
            seq: 0,
            items: Vec::new(),
            open: None,
            usage: Usage::default(),
            call_sig: None,
            started: false,
            stopped: false,
        }
    }

    /// `event: <kind>` and the data's start, up to the members that
    /// follow `sequence_number`.
    fn begin(&mut self, o: &mut BytesMut, kind: &str) {
        o.extend_from_slice(b"event: ");
        o.extend_from_slice(kind.as_bytes());
        o.extend_from_slice(b"\ndata: {\"type\":\"");
        o.extend_from_slice(kind.as_bytes());
        o.extend_from_slice(b"\",\"sequence_number\":");
        num(o, self.seq);
        self.seq += 1;
    }

    fn end(o: &mut BytesMut) {
        o.extend_from_slice(b"}\n\n");
    }

    /// `response.created`, `response.completed`, … with the whole response.
    fn lifecycle(
        &mut self,
        o: &mut BytesMut,
        kind: &str,
        status: &str,
        incomplete: Option<&str>,
        error: Option<&ChatError>,
    ) {
        self.begin(o, kind);
        o.extend_from_slice(br#","response":"#);
        let head = Head {
            id: &self.id,
            created: self.created,
            model: &self.model,
        };
        let over = !matches!(status, "in_progress");
        let u = over.then_some(&self.usage);
        let items: &[Item] = if over { &self.items } else { &[] };
        response(o, &head, status, incomplete, error, items, u, &self.echo);
        Self::end(o);
    }

    fn start(&mut self, id: &str, o: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = response_id(id);
        self.lifecycle(o, "response.created", "in_progress", None, None);
        self.lifecycle(o, "response.in_progress", "in_progress", None, None);
    }

    /// The members naming the open item: `"item_id":…,"output_index":N`.
    fn at(&self, o: &mut BytesMut) {
        let i = self.items.len().saturating_sub(1);
        o.extend_from_slice(br#","item_id":"#);
        js(o, self.items.get(i).map_or("", |x| x.id.as_str()));
        o.extend_from_slice(br#","output_index":"#);
        num(o, i as u64);
    }

    fn item_event(&mut self, o: &mut BytesMut, kind: &str, done: bool) {
        self.begin(o, kind);
        o.extend_from_slice(br#","output_index":"#);
        num(o, self.items.len().saturating_sub(1) as u64);
        o.extend_from_slice(br#","item":"#);
        if let Some(item) = self.items.last() {
            item.write(o, done, &self.echo);
        }
        Self::end(o);
    }

    fn open(&mut self, index: usize, block: &Block<'_>, o: &mut BytesMut) {
        self.close(o);
        let n = self.items.len() + 1;
        let (item, function) = match block {
            Block::Text | Block::Refusal => (
                Item {
                    id: item_id("msg", &self.id, n),
                    kind: Kind::Message {
                        refusal: matches!(block, Block::Refusal),
                    },
                    text: String::new(),
                },
                false,
            ),
            Block::Reasoning => (
                Item {
                    id: item_id("rs", &self.id, n),
                    kind: Kind::Reasoning { encrypted: None },
                    text: String::new(),
                },
                false,
            ),
            Block::ToolCall { id, name, kind } => (
                Item::call(id, name, *kind, &self.echo),
                *kind == ToolKind::Function,
            ),
        };
        let refusal = matches!(item.kind, Kind::Message { refusal: true });
        let message = matches!(item.kind, Kind::Message { .. });
        self.items.push(item);
        self.open = Some((index, function));
        self.item_event(o, "response.output_item.added", false);
        if message {
            self.begin(o, "response.content_part.added");
            self.at(o);
            o.extend_from_slice(br#","content_index":0,"part":"#);
            part(o, refusal, "");
            Self::end(o);
        }
    }

    fn delta(&mut self, index: usize, d: &Delta<'_>, o: &mut BytesMut) {
        if self.open.map(|(b, _)| b) != Some(index) {
            return;
        }
        let Some(item) = self.items.last_mut() else {
            return;
        };
        let (kind, text): (&str, &str) = match (&mut item.kind, d) {
            (Kind::Message { refusal: false }, Delta::Text(t)) => ("response.output_text.delta", t),
            (Kind::Message { refusal: true }, Delta::Refusal(t)) => ("response.refusal.delta", t),
            (Kind::Reasoning { .. }, Delta::Reasoning(t)) => {
                ("response.reasoning_summary_text.delta", t)
            }
            (Kind::Reasoning { encrypted }, Delta::Redacted(s)) => {
                *encrypted = self::encrypted(s, true);
                return;
            }
            (Kind::Reasoning { encrypted }, Delta::Signature(s)) => {
                if encrypted.is_none() {
                    *encrypted = self::encrypted(s, false);
                }
                return;
            }
            (Kind::Call { .. }, Delta::Signature(s)) => {
                self.call_sig = call_signature(s);
                return;
            }
            (Kind::Call { custom, .. }, Delta::ToolArguments(t)) => {
                item.text.push_str(t);
                // A freeform call's input is known only once its JSON
                // wrapper is complete: it is sent at the end.
                if *custom {
                    return;
                }
                ("response.function_call_arguments.delta", t)
            }
            _ => return,
        };
        if text.is_empty() {
            return;
        }
        let first = item.text.is_empty();
        if kind != "response.function_call_arguments.delta" {
            item.text.push_str(text);
        }
        if kind == "response.reasoning_summary_text.delta" {
            if first {
                self.begin(o, "response.reasoning_summary_part.added");
                self.at(o);
                o.extend_from_slice(
                    br#","summary_index":0,"part":{"type":"summary_text","text":""}"#,
                );
                Self::end(o);
            }
            self.begin(o, kind);
            self.at(o);
            o.extend_from_slice(br#","summary_index":0"#);
        } else {
            self.begin(o, kind);
            self.at(o);
            if kind != "response.function_call_arguments.delta" {
                o.extend_from_slice(br#","content_index":0"#);
            }
        }
        o.extend_from_slice(br#","delta":"#);
        js(o, text);
        if kind == "response.output_text.delta" {
            o.extend_from_slice(br#","logprobs":[]"#);
        }
        Self::end(o);
    }

    /// The open item's `…done` events.
    fn close(&mut self, o: &mut BytesMut) {
        let Some((_, function)) = self.open.take() else {
            return;
        };
        let Some(item) = self.items.last_mut() else {
            return;
        };
        item.finish_call(function);
        let text = std::mem::take(&mut item.text);
        let kind = match &item.kind {
            Kind::Message { refusal } => Kind::Message { refusal: *refusal },
            Kind::Reasoning { .. } => Kind::Reasoning { encrypted: None },
            Kind::Call { custom, .. } => Kind::Call {
                call_id: String::new(),
                name: String::new(),
                namespace: None,
                custom: *custom,
            },
        };
        match kind {
            Kind::Message { refusal } => {
                self.begin(
                    o,
                    if refusal {
                        "response.refusal.done"
                    } else {
                        "response.output_text.done"
                    },
                );
                self.at(o);
                o.extend_from_slice(if refusal {
                    br#","content_index":0,"refusal":"#
                } else {
                    br#","content_index":0,"text":"#
                });
                js(o, &text);
                if !refusal {
                    o.extend_from_slice(br#","logprobs":[]"#);
                }
                Self::end(o);
                self.begin(o, "response.content_part.done");
                self.at(o);
                o.extend_from_slice(br#","content_index":0,"part":"#);
                part(o, refusal, &text);
                Self::end(o);
            }
            Kind::Reasoning { .. } if !text.is_empty() => {
                self.begin(o, "response.reasoning_summary_text.done");
                self.at(o);
                o.extend_from_slice(br#","summary_index":0,"text":"#);
                js(o, &text);
                Self::end(o);
                self.begin(o, "response.reasoning_summary_part.done");
                self.at(o);
                o.extend_from_slice(br#","summary_index":0,"part":{"type":"summary_text","text":"#);
                js(o, &text);
                o.extend_from_slice(b"}");
                Self::end(o);
            }
            Kind::Reasoning { .. } => {}
            Kind::Call { custom, .. } => {
                if custom && !text.is_empty() {
                    self.begin(o, "response.custom_tool_call_input.delta");
                    self.at(o);
                    o.extend_from_slice(br#","delta":"#);
                    js(o, &text);
                    Self::end(o);
                }
                self.begin(
                    o,
                    if custom {
                        "response.custom_tool_call_input.done"
                    } else {
                        "response.function_call_arguments.done"
                    },
                );
                self.at(o);
                o.extend_from_slice(if custom {
                    br#","input":"#
                } else {
                    br#","arguments":"#
                });
                js(o, &text);
                Self::end(o);
            }
        }
        if let Some(item) = self.items.last_mut() {
            item.text = text;
        }
        self.item_event(o, "response.output_item.done", true);
        if let Some(enc) = self.call_sig.take().filter(|_| self.echo.encrypted) {
            let n = self.items.len() + 1;
            self.items.push(Item {
                id: item_id("rs", &self.id, n),
                kind: Kind::Reasoning {
                    encrypted: Some(enc),
                },
                text: String::new(),
            });
            self.item_event(o, "response.output_item.added", false);
            self.item_event(o, "response.output_item.done", true);
        }
    }
}

impl StreamEncoder for EventEncoder {
    fn event(&mut self, ev: &Event<'_>, out: &mut BytesMut) {
        if self.stopped {
            return;
        }
        if let Event::Start { id, .. } = ev {
            self.start(id, out);
            return;
        }
        self.start("", out);
        match ev {
            Event::BlockStart { index, block } => self.open(*index, block, out),
            Event::Delta { index, delta } => self.delta(*index, delta, out),
            Event::BlockStop { index } => {
                if self.open.map(|(b, _)| b) == Some(*index) {
                    self.close(out);
                }
            }
            Event::Usage(u) => self.usage = *u,
            Event::Stop { finish } => {
                self.close(out);
                self.stopped = true;
                let (st, incomplete) = status(Some(finish));
                let kind = if incomplete.is_some() {
                    "response.incomplete"
                } else {
                    "response.completed"
                };
                self.lifecycle(out, kind, st, incomplete, None);
            }
            Event::Error(e) => {
                self.fail(e, out);
            }
            Event::Start { .. } => {}
        }
    }

    fn finish(&mut self, _out: &mut BytesMut) {}

    fn fail(&mut self, err: &ChatError, out: &mut BytesMut) -> bool {
        if self.stopped {
            return false;
        }
        self.start("", out);
        self.stopped = true;
        // Items cut short stay in the output as they were (incomplete).
        self.open = None;
        self.lifecycle(out, "response.failed", "failed", None, Some(err));
        true
    }
}
