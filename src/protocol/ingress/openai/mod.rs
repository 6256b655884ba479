//! OpenAI Chat Completions clients (`POST /v1/chat/completions`).
//!
//! Decoding reads the client's body in one typed pass (strings borrowed
//! where no JSON escape had to be undone, schemas and unknown fields kept as
//! raw JSON); every type error names the field path the client wrote
//! (`messages[2].content[0].image_url.url`). Encoding (`encode`) writes
//! chat.completion answers, chat.completion.chunk streams and OpenAI error
//! bodies.
//!
//! Decisions worth knowing:
//! - `system` and `developer` messages, wherever they are, become
//!   `Request.system` in order (an OpenAI egress writes them back as one
//!   system message).
//! - `role: "tool"` messages and the user message after them form one user
//!   turn, tool results first; legacy `function` messages likewise. Legacy
//!   assistant `function_call`s get the id `call_fn_<message index>` so the
//!   result that follows can name them.
//! - `reasoning_content` echoed back becomes an unsigned reasoning part;
//!   `extra_content.google.thought_signature` (Google's OpenAI-compatible
//!   codec for Gemini thought signatures) on a tool call becomes the call's
//!   signature, on a message a signature-only reasoning part after its text.
//! - `max_completion_tokens` and `safety_identifier` are stored in the
//!   canonical `max_tokens` / `user`, and their spelling is remembered as an
//!   extra field of the same name so an OpenAI egress writes them back under
//!   the name the client used.
//! - A `tool_choice` shape this model has no word for (`allowed_tools`) is
//!   kept raw in the extras (same-family vendors only).

mod encode;

pub(super) use encode::error_type;

use crate::protocol::chat::{
    data_url_str, is_http, Answer, ChatError, Effort, Extras, Family, Ingress, Media, MediaKind,
    MediaSource, Part, ReasoningConfig, Request, ResponseFormat, Role, Signature, Str,
    StreamEncoder, Text, Tool, ToolCall, ToolChoice, ToolKind, ToolResult, Turn,
};
use crate::protocol::json::{s, split_mark, without_position, OneOrList, MARK, S};
use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

pub struct OpenAiChat;

impl Ingress for OpenAiChat {
    fn family(&self) -> Family {
        Family::OpenAi
    }
    fn decode_request<'a>(&self, body: &'a [u8]) -> Result<Request<'a>, ChatError> {
        let top: Top<'a> =
            crate::protocol::json::from_body(body).map_err(|e| located(&e.to_string()))?;
        request(top)
    }
    fn encode_answer(&self, answer: &Answer<'_>, model: &str) -> Bytes {
        encode::answer(answer, model)
    }
    fn stream_encoder(&self, model: &str, include_usage: bool) -> Box<dyn StreamEncoder> {
        Box::new(encode::ChunkEncoder::new(model, include_usage))
    }
    fn encode_error(&self, err: &ChatError) -> Bytes {
        encode::error_body(err)
    }
    fn stream_error(&self, err: &ChatError) -> Bytes {
        encode::stream_error(err)
    }
}

// ---------------------------------------------------------------- field paths

// Each level prepends its segment to the `json::MARK`ed path of an error.

fn prefixed(seg: &str, msg: &str) -> String {
    match split_mark(msg) {
        Some((path, m)) => {
            let dot = if path.starts_with('[') { "" } else { "." };
            format!("{MARK}{seg}{dot}{path}{MARK}{m}")
        }
        None => format!("{MARK}{seg}{MARK}{}", without_position(msg)),
    }
}

/// The error of a whole-body parse as a 400 naming the field.
fn located(msg: &str) -> ChatError {
    match split_mark(msg) {
        Some((path, m)) => ChatError::invalid(path, without_position(m)),
        None => ChatError::bad_request(format!(
            "request body is not a JSON chat request: {}",
            without_position(msg)
        )),
    }
}

/// The value of the current map entry, errors prefixed with its key.
fn at<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    key: &str,
) -> Result<Option<T>, A::Error> {
    map.next_value::<Option<T>>()
        .map_err(|e| de::Error::custom(prefixed(key, &e.to_string())))
}

// ---------------------------------------------------------------- wire types

/// A list whose element errors carry their index.
struct List<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                loop {
                    let next = seq.next_element::<T>().map_err(|e| {
                        de::Error::custom(prefixed(&format!("[{}]", out.len()), &e.to_string()))
                    })?;
                    match next {
                        Some(x) => out.push(x),
                        None => return Ok(List(out)),
                    }
                }
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// Defines a wire struct of optional fields whose errors carry the key.
macro_rules! wire {
    ($name:ident { $($key:literal => $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Default)]
        struct $name<'a> {
            $($field: Option<$ty>,)*
            /// Keys this model does not know, raw.
            rest: Vec<(Str<'a>, &'a RawValue)>,
        }
        impl<'de> Deserialize<'de> for $name<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(k) = map.next_key::<S<'de>>()? {
                            match k.0.as_ref() {
                                $($key => out.$field = at(&mut map, $key)?,)*
                                _ => {
                                    let v = at::<A, &'de RawValue>(&mut map, &k.0)?;
                                    if let Some(v) = v {
                                        out.rest.push((k.0, v));
                                    }
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

wire!(Top {
    "model" => model: S<'a>,
    "messages" => messages: List<Message<'a>>,
    "tools" => tools: List<ToolW<'a>>,
    "tool_choice" => tool_choice: &'a RawValue,
    "parallel_tool_calls" => parallel_tool_calls: bool,
    "temperature" => temperature: f64,
    "top_p" => top_p: f64,
    "top_k" => top_k: u64,
    "seed" => seed: i64,
    "presence_penalty" => presence_penalty: f64,
    "frequency_penalty" => frequency_penalty: f64,
    "stop" => stop: OneOrList<'a, List<S<'a>>>,
    "max_tokens" => max_tokens: u64,
    "max_completion_tokens" => max_completion_tokens: u64,
    "reasoning_effort" => reasoning_effort: S<'a>,
    "response_format" => response_format: FormatW<'a>,
    "stream" => stream: bool,
    "stream_options" => stream_options: StreamOptionsW<'a>,
    "n" => n: u64,
    "user" => user: S<'a>,
    "safety_identifier" => safety_identifier: S<'a>,
    "functions" => functions: List<FunctionW<'a>>,
    "function_call" => function_call: &'a RawValue,
});

wire!(Message {
    "role" => role: S<'a>,
    "content" => content: OneOrList<'a, List<PartW<'a>>>,
    "refusal" => refusal: S<'a>,
    "reasoning_content" => reasoning_content: S<'a>,
    "tool_calls" => tool_calls: List<CallW<'a>>,
    "function_call" => function_call: FunctionCallW<'a>,
    "tool_call_id" => tool_call_id: S<'a>,
    "name" => name: S<'a>,
    "extra_content" => extra_content: ExtraW<'a>,
});

wire!(PartW {
    "type" => kind: S<'a>,
    "text" => text: S<'a>,
    "refusal" => refusal: S<'a>,
    "image_url" => image_url: OneOrObject<'a, UrlW<'a>>,
    "input_audio" => input_audio: AudioW<'a>,
    "file" => file: FileW<'a>,
    "cache_control" => cache_control: &'a RawValue,
});

wire!(UrlW { "url" => url: S<'a>, "detail" => detail: S<'a> });
wire!(AudioW { "data" => data: S<'a>, "format" => format: S<'a> });
wire!(FileW {
    "file_data" => file_data: S<'a>,
    "file_id" => file_id: S<'a>,
    "filename" => filename: S<'a>,
});
wire!(CallW {
    "id" => id: S<'a>,
    "type" => kind: S<'a>,
    "function" => function: FunctionCallW<'a>,
    "custom" => custom: CustomCallW<'a>,
    "extra_content" => extra_content: ExtraW<'a>,
});
wire!(FunctionCallW { "name" => name: S<'a>, "arguments" => arguments: &'a RawValue });
wire!(CustomCallW { "name" => name: S<'a>, "input" => input: S<'a> });
wire!(ExtraW { "google" => google: GoogleW<'a> });
wire!(GoogleW { "thought_signature" => thought_signature: S<'a> });
wire!(ToolW {
    "type" => kind: S<'a>,
    "function" => function: FunctionW<'a>,
    "custom" => custom: CustomToolW<'a>,
    "cache_control" => cache_control: &'a RawValue,
});
wire!(FunctionW {
    "name" => name: S<'a>,
    "description" => description: S<'a>,
    "parameters" => parameters: &'a RawValue,
    "strict" => strict: bool,
});
wire!(CustomToolW {
    "name" => name: S<'a>,
    "description" => description: S<'a>,
    "format" => format: &'a RawValue,
});
wire!(NamedW { "type" => kind: S<'a>, "function" => function: NameW<'a>, "custom" => custom: NameW<'a>, "name" => name: S<'a> });
wire!(NameW { "name" => name: S<'a> });
wire!(FormatW { "type" => kind: S<'a>, "json_schema" => json_schema: SchemaW<'a> });
wire!(SchemaW {
    "name" => name: S<'a>,
    "schema" => schema: &'a RawValue,
    "strict" => strict: bool,
});
wire!(StreamOptionsW { "include_usage" => include_usage: bool });

/// A string or an object: `image_url` is `{url, detail}` or, from some
/// clients, the bare URL; `tool_choice` is a word or names a tool.
enum OneOrObject<'a, T> {
    One(S<'a>),
    Object(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrObject<'de, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrObject<'de, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(OneOrObject::One(S(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OneOrObject::One(S(Cow::Owned(v.to_string()))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrObject::Object)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

// ---------------------------------------------------------------- request

fn raw<'a>(v: Option<&'a RawValue>) -> Option<Cow<'a, RawValue>> {
    v.map(Cow::Borrowed)
}

fn request(top: Top<'_>) -> Result<Request<'_>, ChatError> {
    let mut req = Request::new(s(top.model).unwrap_or_default(), Family::OpenAi);
    req.extra = Extras {
        origin: Family::OpenAi,
        fields: top
            .rest
            .into_iter()
            .map(|(k, v)| (k, Cow::Borrowed(v)))
            .collect(),
    };
    let messages = top
        .messages
        .ok_or_else(|| ChatError::invalid("messages", "messages is required"))?;
    decode_messages(messages.0, &mut req)?;

    for (i, t) in top.tools.into_iter().flat_map(|l| l.0).enumerate() {
        req.tools.push(tool(t, i)?);
    }
    for (i, f) in top.functions.into_iter().flat_map(|l| l.0).enumerate() {
        let path = format!("functions[{i}]");
        req.tools.push(function_tool(f, &path, None)?);
    }
    if let Some(tc) = top.tool_choice {
        match tool_choice(tc, "tool_choice")? {
            Some(c) => req.tool_choice = Some(c),
            None => req
                .extra
                .fields
                .push(("tool_choice".into(), Cow::Borrowed(tc))),
        }
    } else if let Some(fc) = top.function_call {
        req.tool_choice = tool_choice(fc, "function_call")?;
    }
    req.parallel_tool_calls = top.parallel_tool_calls;

    let sm = &mut req.sampling;
    (sm.temperature, sm.top_p, sm.top_k, sm.seed) =
        (top.temperature, top.top_p, top.top_k, top.seed);
    (sm.presence_penalty, sm.frequency_penalty) = (top.presence_penalty, top.frequency_penalty);
    sm.stop = match top.stop {
        None => Vec::new(),
        Some(OneOrList::One(x)) => vec![x.0],
        Some(OneOrList::List(l)) => l.0.into_iter().map(|x| x.0).collect(),
    };
    // Either name means the same limit; the one the client used is
    // remembered for a same-family vendor (reasoning models take only
    // `max_completion_tokens`).
    req.max_tokens = match top.max_completion_tokens {
        Some(n) => {
            req.extra.fields.push(spelling("max_completion_tokens"));
            Some(n)
        }
        None => top.max_tokens,
    };
    if let Some(e) = top.reasoning_effort {
        let effort = Effort::parse(&e.0).ok_or_else(|| {
            ChatError::invalid(
                "reasoning_effort",
                "reasoning_effort must be one of none, minimal, low, medium, high, xhigh",
            )
        })?;
        req.reasoning = Some(ReasoningConfig::Effort(effort));
    }
    req.response_format = top.response_format.map(response_format).transpose()?;
    req.stream = top.stream.unwrap_or(false);
    req.include_usage = top
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    req.n = top.n;
    req.user = match (top.user, top.safety_identifier) {
        (Some(u), _) => Some(u.0),
        (None, Some(id)) => {
            req.extra.fields.push(spelling("safety_identifier"));
            Some(id.0)
        }
        (None, None) => None,
    };
    Ok(req)
}

/// An extra field that only records which name the client used (see the
/// module doc); its value is `true`.
fn spelling(name: &'static str) -> (Str<'static>, Cow<'static, RawValue>) {
    (Cow::Borrowed(name), Cow::Borrowed(RawValue::TRUE))
}

fn invalid(path: String, msg: impl Into<String>) -> ChatError {
    ChatError::invalid(path, msg)
}

/// A non-empty name.
fn name(v: Option<S<'_>>) -> Option<Str<'_>> {
    v.map(|s| s.0).filter(|n| !n.is_empty())
}

/// A required value, else a 400 at `{p}.{field}` (the path is built only then).
trait Need<T> {
    fn need(self, p: &str, field: &str, msg: &str) -> Result<T, ChatError>;
}

impl<T> Need<T> for Option<T> {
    fn need(self, p: &str, field: &str, msg: &str) -> Result<T, ChatError> {
        self.ok_or_else(|| invalid(format!("{p}.{field}"), msg))
    }
}

/// `{parent}{name}[{i}]` in `buf`: a path written for every message and
/// part although it only names errors, so without `fmt` (~300
/// instructions a request).
fn indexed<'b>(buf: &'b mut String, parent: &str, name: &str, i: usize) -> &'b str {
    buf.clear();
    buf.push_str(parent);
    buf.push_str(name);
    buf.push('[');
    buf.push_str(itoa::Buffer::new().format(i));
    buf.push(']');
    buf
}

fn decode_messages<'a>(messages: Vec<Message<'a>>, req: &mut Request<'a>) -> Result<(), ChatError> {
    // The user turn that tool results are being collected into (a user
    // message right after them joins it).
    let mut tool_turn = false;
    // The id given to the last legacy function call, for its result.
    let mut legacy_call: Option<String> = None;
    let mut path = String::with_capacity(24);
    for (i, m) in messages.into_iter().enumerate() {
        // One buffer for every message's path (it names errors only).
        let p = indexed(&mut path, "", "messages", i);
        let role = m
            .role
            .as_ref()
            .map(|r| r.0.clone())
            .need(p, "role", "message has no role")?;
        match role.as_ref() {
            "system" | "developer" => {
                for part in content(m.content, p, Allowed::Text)? {
                    req.system.push(part);
                }
            }
            "user" => {
                let parts = content(m.content, p, Allowed::User)?;
                push_turn(req, Role::User, parts, tool_turn);
                tool_turn = false;
            }
            "assistant" => {
                let parts = assistant(m, p, i, &mut legacy_call)?;
                push_turn(req, Role::Assistant, parts, false);
                tool_turn = false;
            }
            "tool" | "function" => {
                let call_id = if role == "tool" {
                    m.tool_call_id.clone().map(|x| x.0).need(
                        p,
                        "tool_call_id",
                        "tool message has no tool_call_id",
                    )?
                } else {
                    legacy_call.take().map(Cow::Owned).need(
                        p,
                        "role",
                        "function message does not follow an assistant function_call",
                    )?
                };
                let result = ToolResult {
                    call_id,
                    name: s(m.name),
                    content: content(m.content, p, Allowed::User)?,
                    is_error: false,
                    cache: None,
                };
                push_turn(req, Role::User, vec![Part::ToolResult(result)], tool_turn);
                tool_turn = true;
            }
            other => {
                return Err(invalid(
                    format!("{p}.role"),
                    format!("message role '{other}' is not supported"),
                ))
            }
        }
    }
    Ok(())
}

fn push_turn<'a>(req: &mut Request<'a>, role: Role, parts: Vec<Part<'a>>, join: bool) {
    match req.turns.last_mut() {
        Some(last) if join && last.role == role => last.parts.extend(parts),
        _ => req.turns.push(Turn { role, parts }),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Allowed {
    Text,
    User,
    Assistant,
}

fn content<'a>(
    c: Option<OneOrList<'a, List<PartW<'a>>>>,
    p: &str,
    allowed: Allowed,
) -> Result<Vec<Part<'a>>, ChatError> {
    let parts = match c {
        None => return Ok(Vec::new()),
        Some(OneOrList::One(t)) => return Ok(vec![Part::Text(Text::plain(t.0))]),
        Some(OneOrList::List(parts)) => parts.0,
    };
    let mut out = Vec::with_capacity(parts.len());
    let mut pp = String::with_capacity(p.len() + 16);
    for (j, part) in parts.into_iter().enumerate() {
        let pp = indexed(&mut pp, p, ".content", j);
        let kind =
            part.kind
                .as_ref()
                .map(|k| k.0.clone())
                .need(pp, "type", "content part has no type")?;
        let ok = match (kind.as_ref(), allowed) {
            ("text", _) => true,
            ("refusal", a) => a == Allowed::Assistant,
            ("image_url" | "input_audio" | "file", a) => a == Allowed::User,
            _ => false,
        };
        if !ok {
            let whose = match allowed {
                Allowed::Text => "system messages may only contain text",
                Allowed::User => {
                    "user and tool messages may contain text, image_url, input_audio and file parts"
                }
                Allowed::Assistant => "assistant messages may only contain text and refusal parts",
            };
            return Err(invalid(
                format!("{pp}.type"),
                format!("content part type '{kind}' is not supported here: {whose}"),
            ));
        }
        out.push(match kind.as_ref() {
            "text" => Part::Text(Text {
                text: part
                    .text
                    .map(|t| t.0)
                    .need(pp, "text", "text part has no text")?,
                cache: raw(part.cache_control),
            }),
            "refusal" => Part::Refusal(s(part.refusal).unwrap_or_default()),
            "image_url" => image(part, pp)?,
            "input_audio" => {
                let a = part
                    .input_audio
                    .need(pp, "input_audio", "input_audio is required")?;
                let data = s(a.data).need(pp, "input_audio.data", "data is required")?;
                let format = s(a.format).unwrap_or(Cow::Borrowed("wav"));
                Part::Media(Media {
                    kind: MediaKind::Audio,
                    mime: Some(Cow::Owned(format!("audio/{format}"))),
                    source: MediaSource::Base64 { data },
                    name: None,
                    detail: None,
                    cache: raw(part.cache_control),
                })
            }
            _ => file(part, pp)?,
        });
    }
    Ok(out)
}

fn image<'a>(part: PartW<'a>, pp: &str) -> Result<Part<'a>, ChatError> {
    let (url, detail) = match part.image_url {
        Some(OneOrObject::One(u)) => (Some(u.0), None),
        Some(OneOrObject::Object(o)) => (s(o.url), s(o.detail)),
        None => (None, None),
    };
    let path = format!("{pp}.image_url.url");
    let url = url.ok_or_else(|| invalid(path.clone(), "image_url.url is required"))?;
    let (mime, source) = if let Some((mime, data)) = data_url_str(&url) {
        (Some(mime), MediaSource::Base64 { data })
    } else if url.starts_with("data:") {
        return Err(invalid(
            path,
            "only base64 data URLs are supported for images",
        ));
    } else if is_http(&url) {
        (None, MediaSource::Url(url))
    } else {
        return Err(invalid(
            path,
            "image_url.url must be an http(s) URL or a base64 data URL",
        ));
    };
    Ok(Part::Media(Media {
        kind: MediaKind::Image,
        mime,
        source,
        name: None,
        detail,
        cache: raw(part.cache_control),
    }))
}

fn file<'a>(part: PartW<'a>, pp: &str) -> Result<Part<'a>, ChatError> {
    let f = part.file.need(pp, "file", "file is required")?;
    let (mime, source) = match (f.file_data, f.file_id) {
        (Some(d), _) => match data_url_str(&d.0) {
            Some((mime, data)) => (Some(mime), MediaSource::Base64 { data }),
            // The SDKs send plain base64 here too.
            None if !d.0.starts_with("data:") => (None, MediaSource::Base64 { data: d.0 }),
            None => {
                return Err(invalid(
                    format!("{pp}.file.file_data"),
                    "file_data must be base64 or a base64 data URL",
                ))
            }
        },
        (None, Some(id)) => (
            None,
            MediaSource::FileId {
                family: Family::OpenAi,
                id: id.0,
            },
        ),
        (None, None) => {
            return Err(invalid(
                format!("{pp}.file"),
                "file needs file_data or file_id",
            ))
        }
    };
    let name = s(f.filename);
    let mime = mime.or_else(|| {
        name.as_deref()
            .filter(|n| n.to_ascii_lowercase().ends_with(".pdf"))
            .map(|_| Cow::Borrowed("application/pdf"))
    });
    Ok(Part::Media(Media {
        kind: MediaKind::Document,
        mime,
        source,
        name,
        detail: None,
        cache: raw(part.cache_control),
    }))
}

fn gemini_signature<'a>(e: Option<ExtraW<'a>>) -> Option<Signature<'a>> {
    let sig = e?.google?.thought_signature?;
    Some(Signature::new(Family::Gemini, sig.0))
}

/// Tool-call arguments as the client wrote them: the JSON string's text;
/// an object some clients send instead, as its JSON text.
fn arguments<'a>(a: Option<&'a RawValue>, path: String) -> Result<Str<'a>, ChatError> {
    let Some(a) = a else {
        return Ok(Cow::Borrowed(""));
    };
    match a.get().as_bytes().first() {
        Some(b'"') => serde_json::from_str::<S<'a>>(a.get())
            .map(|x| x.0)
            .map_err(|e| invalid(path, e.to_string())),
        Some(b'{') => Ok(Cow::Borrowed(a.get())),
        Some(b'n') => Ok(Cow::Borrowed("")),
        _ => Err(invalid(path, "arguments must be a JSON string")),
    }
}

fn assistant<'a>(
    m: Message<'a>,
    p: &str,
    i: usize,
    legacy_call: &mut Option<String>,
) -> Result<Vec<Part<'a>>, ChatError> {
    let mut parts = Vec::new();
    if let Some(r) = m.reasoning_content.filter(|r| !r.0.is_empty()) {
        parts.push(Part::reasoning(r.0, None, None));
    }
    parts.extend(content(m.content, p, Allowed::Assistant)?);
    if let Some(r) = m.refusal.filter(|r| !r.0.is_empty()) {
        parts.push(Part::Refusal(r.0));
    }
    if let Some(sig) = gemini_signature(m.extra_content) {
        parts.push(Part::reasoning("", Some(sig), None));
    }
    for (k, c) in m
        .tool_calls
        .map(|l| l.0)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let cp = &format!("{p}.tool_calls[{k}]");
        let id = name(c.id).need(cp, "id", "tool call has no id")?;
        let kind = s(c.kind).unwrap_or(Cow::Borrowed("function"));
        let signature = gemini_signature(c.extra_content);
        let call = match kind.as_ref() {
            "function" => {
                let f = c
                    .function
                    .need(cp, "function", "tool call has no function")?;
                ToolCall {
                    id,
                    name: name(f.name).need(cp, "function.name", "tool call has no name")?,
                    kind: ToolKind::Function,
                    arguments: arguments(f.arguments, format!("{cp}.function.arguments"))?,
                    signature,
                }
            }
            "custom" => {
                let f = c.custom.need(cp, "custom", "tool call has no custom")?;
                ToolCall {
                    id,
                    name: name(f.name).need(cp, "custom.name", "tool call has no name")?,
                    kind: ToolKind::Custom,
                    arguments: s(f.input).unwrap_or_default(),
                    signature,
                }
            }
            other => {
                return Err(invalid(
                    format!("{cp}.type"),
                    format!("tool call type '{other}' is not supported"),
                ))
            }
        };
        parts.push(Part::ToolCall(call));
    }
    if let Some(f) = m.function_call {
        let id = format!("call_fn_{i}");
        *legacy_call = Some(id.clone());
        parts.push(Part::ToolCall(ToolCall {
            id: Cow::Owned(id),
            name: name(f.name).need(p, "function_call.name", "function_call has no name")?,
            kind: ToolKind::Function,
            arguments: arguments(f.arguments, format!("{p}.function_call.arguments"))?,
            signature: None,
        }));
    }
    Ok(parts)
}

fn function_tool<'a>(
    f: FunctionW<'a>,
    p: &str,
    cache: Option<&'a RawValue>,
) -> Result<Tool<'a>, ChatError> {
    Ok(Tool {
        kind: ToolKind::Function,
        name: name(f.name).need(p, "name", "tool has no name")?,
        description: s(f.description),
        parameters: raw(f.parameters),
        strict: f.strict,
        format: None,
        cache: raw(cache),
    })
}

fn tool(t: ToolW<'_>, i: usize) -> Result<Tool<'_>, ChatError> {
    let p = &format!("tools[{i}]");
    match t.kind.as_ref().map(|k| k.0.as_ref()).unwrap_or("function") {
        "function" => {
            let f = t.function.need(p, "function", "tool has no function")?;
            function_tool(f, &format!("{p}.function"), t.cache_control)
        }
        "custom" => {
            let c = t.custom.need(p, "custom", "tool has no custom")?;
            Ok(Tool {
                kind: ToolKind::Custom,
                name: name(c.name).need(p, "custom.name", "tool has no name")?,
                description: s(c.description),
                parameters: None,
                strict: None,
                format: raw(c.format),
                cache: raw(t.cache_control),
            })
        }
        other => Err(invalid(
            format!("{p}.type"),
            format!("tool type '{other}' is not supported"),
        )),
    }
}

/// `tool_choice` (or legacy `function_call`); `None` for an object shape
/// this model has no word for.
fn tool_choice<'a>(v: &'a RawValue, p: &str) -> Result<Option<ToolChoice<'a>>, ChatError> {
    let bad = || invalid(p.to_string(), "must be auto, none, required or name a tool");
    match serde_json::from_str::<OneOrObject<'a, NamedW<'a>>>(v.get()) {
        Ok(OneOrObject::One(x)) => match x.0.as_ref() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(bad()),
        },
        Ok(OneOrObject::Object(o)) => {
            let name = match o.kind.as_ref().map(|k| k.0.as_ref()) {
                Some("function") => o.function.and_then(|f| s(f.name)),
                Some("custom") => o.custom.and_then(|f| s(f.name)),
                // Legacy `function_call: {"name": …}`.
                None => s(o.name),
                Some(_) => return Ok(None),
            };
            match name.filter(|n| !n.is_empty()) {
                Some(n) => Ok(Some(ToolChoice::Tool(n))),
                None => Err(invalid(format!("{p}.function.name"), "names no tool")),
            }
        }
        Err(_) => Err(bad()),
    }
}

fn response_format(f: FormatW<'_>) -> Result<ResponseFormat<'_>, ChatError> {
    match f.kind.as_ref().map(|k| k.0.as_ref()) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let js = f.json_schema.unwrap_or_default();
            Ok(ResponseFormat::JsonSchema {
                name: s(js.name),
                schema: raw(js.schema),
                strict: js.strict,
            })
        }
        Some(other) => Err(ChatError::invalid(
            "response_format.type",
            format!("response_format type '{other}' is not supported"),
        )),
        None => Err(ChatError::invalid(
            "response_format.type",
            "response_format has no type",
        )),
    }
}

#[cfg(test)]
mod tests;
