//! OpenAI Chat Completions vendors (OpenAI and every OpenAI-compatible
//! server: DeepSeek, vLLM, OpenRouter, Groq, Google's compatible endpoint…).
//!
//! What the chat model holds that this API cannot say, and what happens:
//! - Tool results are `tool` messages (text only): their images and
//!   documents follow in the user message after them.
//! - Reasoning: unsigned reasoning the client itself echoed
//!   (`reasoning_content`, same family) goes back as it came; other
//!   families' reasoning, signatures and encrypted content are dropped.
//!   Gemini thought signatures travel as `extra_content.google.
//!   thought_signature` (Google's own codec; only Google's endpoint ever
//!   issues them).
//! - `top_k` and prompt-caching markers are not OpenAI fields: they are sent
//!   only when the request came from an OpenAI client that wrote them.
//! - A thinking budget (another family's client) is not sent: most
//!   OpenAI-compatible models reject `reasoning_effort`; an effort is.
//! - Files of other vendors (`FileId` of another family), audio by URL and
//!   documents by URL cannot be expressed: a 400 naming the part.
//!
//! Answers read `reasoning_content` (DeepSeek and most servers) or
//! `reasoning` (vLLM, OpenRouter); a `stop` after tool calls is a tool-call
//! finish (some servers say `stop` there).

mod stream;

use crate::protocol::chat::{
    generated_id, now_unix, Answer, ChatError, Egress, ErrorKind, Family, Finish, Media, MediaKind,
    MediaSource, Part, ReasoningConfig, Request, ResponseFormat, Role, Signature, Str,
    StreamDecoder, Text, Tool, ToolCall, ToolChoice, ToolKind, Usage, VendorOptions,
};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

pub struct OpenAiChat;

impl Egress for OpenAiChat {
    fn family(&self) -> Family {
        Family::OpenAi
    }
    fn encode_request(
        &self,
        req: &Request<'_>,
        model: &str,
        _opts: &VendorOptions,
    ) -> Result<Bytes, ChatError> {
        encode(req, model).map(Bytes::from)
    }
    fn decode_answer<'a>(&self, body: &'a [u8]) -> Result<Answer<'a>, ChatError> {
        decode_answer(body)
    }
    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(stream::ChunkDecoder::default())
    }
    fn decode_error(&self, status: u16, body: &[u8]) -> ChatError {
        decode_error(status, body)
    }
}

// ---------------------------------------------------------------- request

/// A JSON writer. A separator goes before a member or element unless the
/// byte before opens an object or array, ends a key or is a separator:
/// no state to get wrong.
struct J(Vec<u8>);

impl J {
    fn sep(&mut self) {
        if !matches!(self.0.last(), None | Some(b'{' | b'[' | b':' | b',')) {
            self.0.push(b',');
        }
    }
    fn val<T: Serialize + ?Sized>(&mut self, v: &T) {
        self.sep();
        // Writing into memory cannot fail.
        let _ = serde_json::to_writer(&mut self.0, v);
    }
    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.sep();
        self.0.extend_from_slice(v.as_bytes());
    }
    fn key(&mut self, k: &str) -> &mut Self {
        self.val(k);
        self.0.push(b':');
        self
    }
    fn put<T: Serialize + ?Sized>(&mut self, k: &str, v: &T) {
        self.key(k).val(v);
    }
    fn opt<T: Serialize>(&mut self, k: &str, v: Option<T>) {
        if let Some(v) = v {
            self.put(k, &v);
        }
    }
    fn wrap<R>(&mut self, open: u8, close: u8, f: impl FnOnce(&mut Self) -> R) -> R {
        self.sep();
        self.0.push(open);
        let r = f(self);
        self.0.push(close);
        r
    }
    fn obj<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.wrap(b'{', b'}', f)
    }
    fn arr<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.wrap(b'[', b']', f)
    }
}

/// Names an OpenAI client used for fields the chat model holds under one
/// name (see the ingress adapter): markers, not fields.
const SPELLINGS: [&str; 2] = ["max_completion_tokens", "safety_identifier"];

fn encode(req: &Request<'_>, model: &str) -> Result<Vec<u8>, ChatError> {
    // The client's own cache markers and `top_k` may go back to it.
    let same = req.extra.origin == Family::OpenAi;
    let extras = req.extra.for_family(Family::OpenAi);
    let spelled = |name: &str| extras.iter().any(|(k, _)| k == name);
    let mut j = J(Vec::with_capacity(1024));
    j.obj(|j| {
        j.put("model", model);
        j.key("messages").arr(|j| messages(j, req, same))?;
        if !req.tools.is_empty() {
            j.key("tools")
                .arr(|j| req.tools.iter().for_each(|t| tool(j, t, same)));
            // OpenAI rejects parallel_tool_calls without tools.
            j.opt("parallel_tool_calls", req.parallel_tool_calls);
        }
        if let Some(tc) = &req.tool_choice {
            j.key("tool_choice");
            match tc {
                ToolChoice::Auto => j.val("auto"),
                ToolChoice::None => j.val("none"),
                ToolChoice::Required => j.val("required"),
                ToolChoice::Tool(n) => j.obj(|j| {
                    let custom = req
                        .tools
                        .iter()
                        .any(|t| t.name == *n && t.kind == ToolKind::Custom);
                    let kind = if custom { "custom" } else { "function" };
                    j.put("type", kind);
                    j.key(kind).obj(|j| j.put("name", n));
                }),
            }
        }
        let sm = &req.sampling;
        j.opt("temperature", sm.temperature);
        j.opt("top_p", sm.top_p);
        j.opt("top_k", sm.top_k.filter(|_| same));
        j.opt("seed", sm.seed);
        j.opt("presence_penalty", sm.presence_penalty);
        j.opt("frequency_penalty", sm.frequency_penalty);
        j.opt("stop", Some(&sm.stop).filter(|s| !s.is_empty()));
        let limit = if spelled("max_completion_tokens") {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        j.opt(limit, req.max_tokens);
        // An effort (an OpenAI client's, or an override's) is sent; a
        // thinking budget from another family's client is not: most
        // OpenAI-compatible models reject `reasoning_effort`.
        if let Some(ReasoningConfig::Effort(e)) = req.reasoning {
            j.put("reasoning_effort", e.as_str());
        }
        if let Some(f) = &req.response_format {
            j.key("response_format").obj(|j| match f {
                ResponseFormat::Text => j.put("type", "text"),
                ResponseFormat::JsonObject => j.put("type", "json_object"),
                ResponseFormat::JsonSchema {
                    name,
                    schema,
                    strict,
                } => {
                    j.put("type", "json_schema");
                    j.key("json_schema").obj(|j| {
                        // OpenAI requires a name.
                        j.put("name", name.as_deref().unwrap_or("response"));
                        j.opt("schema", schema.as_deref());
                        j.opt("strict", *strict);
                    });
                }
            });
        }
        if req.stream {
            j.put("stream", &true);
            // Always: the gateway counts usage from the stream.
            j.raw("stream_options", r#"{"include_usage":true}"#);
        }
        j.opt("n", req.n);
        let user = if spelled("safety_identifier") {
            "safety_identifier"
        } else {
            "user"
        };
        j.opt(user, req.user.as_deref());
        for (k, v) in extras
            .iter()
            .filter(|(k, _)| !SPELLINGS.contains(&k.as_ref()))
        {
            j.raw(k, v.get());
        }
        Ok(())
    })?;
    Ok(j.0)
}

fn tool(j: &mut J, t: &Tool<'_>, same: bool) {
    j.obj(|j| {
        let custom = t.kind == ToolKind::Custom;
        let kind = if custom { "custom" } else { "function" };
        j.put("type", kind);
        j.key(kind).obj(|j| {
            j.put("name", &t.name);
            j.opt("description", t.description.as_deref());
            if custom {
                j.opt("format", t.format.as_deref());
            } else {
                j.opt("parameters", t.parameters.as_deref());
                j.opt("strict", t.strict);
            }
        });
        j.opt("cache_control", t.cache.as_deref().filter(|_| same));
    });
}

fn messages(j: &mut J, req: &Request<'_>, same: bool) -> Result<(), ChatError> {
    let system: Vec<&Text<'_>> = req
        .system
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t),
            _ => None,
        })
        .collect();
    if !system.is_empty() {
        j.obj(|j| {
            j.put("role", "system");
            match system.as_slice() {
                [one] if !(same && one.cache.is_some()) => j.put("content", &one.text),
                _ => j
                    .key("content")
                    .arr(|j| system.iter().for_each(|t| text(j, t, same))),
            }
        });
    }
    for (i, turn) in req.turns.iter().enumerate() {
        match turn.role {
            Role::User => user(j, &turn.parts, i, same)?,
            Role::Assistant => assistant(j, &turn.parts, same),
        }
    }
    Ok(())
}

fn text(j: &mut J, t: &Text<'_>, same: bool) {
    j.obj(|j| {
        j.put("type", "text");
        j.put("text", &t.text);
        j.opt("cache_control", t.cache.as_deref().filter(|_| same));
    });
}

/// A media part; `path` names it in the error when it cannot be sent.
fn media(j: &mut J, m: &Media<'_>, path: impl Fn() -> String) -> Result<(), ChatError> {
    let mime = m.mime.as_deref();
    let data_url =
        |data: &str, default: &str| format!("data:{};base64,{data}", mime.unwrap_or(default));
    let cannot = |what: &str| {
        let msg = format!("{what} cannot be sent to an OpenAI-compatible vendor");
        Err(ChatError::invalid(path(), msg))
    };
    match (m.kind, &m.source) {
        (MediaKind::Audio, MediaSource::Base64 { .. }) => {}
        (MediaKind::Audio, _) => return cannot("audio by URL or file id"),
        (_, MediaSource::FileId { family, .. }) if *family != Family::OpenAi => {
            return cannot("another vendor's file id")
        }
        (MediaKind::Document, MediaSource::Url(_)) => return cannot("a document by URL"),
        _ => {}
    }
    j.obj(|j| match (m.kind, &m.source) {
        (MediaKind::Image, MediaSource::Base64 { data }) => {
            j.put("type", "image_url");
            j.key("image_url").obj(|j| {
                j.put("url", &data_url(data, "image/png"));
                j.opt("detail", m.detail.as_deref());
            });
        }
        (MediaKind::Image, MediaSource::Url(u)) => {
            j.put("type", "image_url");
            j.key("image_url").obj(|j| {
                j.put("url", u);
                j.opt("detail", m.detail.as_deref());
            });
        }
        (MediaKind::Audio, MediaSource::Base64 { data }) => {
            j.put("type", "input_audio");
            j.key("input_audio").obj(|j| {
                j.put("data", data);
                let format = match mime.and_then(|m| m.strip_prefix("audio/")) {
                    Some("mpeg" | "mp3") => "mp3",
                    Some(f) => f,
                    None => "wav",
                };
                j.put("format", format);
            });
        }
        (_, source) => {
            j.put("type", "file");
            j.key("file").obj(|j| match source {
                MediaSource::FileId { id, .. } => j.put("file_id", id),
                MediaSource::Base64 { data } => {
                    let pdf = matches!(mime, Some("application/pdf") | None);
                    j.opt(
                        "filename",
                        m.name.as_deref().or(pdf.then_some("document.pdf")),
                    );
                    j.put("file_data", &data_url(data, "application/pdf"));
                }
                // Excluded above.
                MediaSource::Url(_) => {}
            });
        }
    });
    Ok(())
}

/// A user turn: one `tool` message per tool result, then one user message
/// with the rest (and the tool results' media, which tool messages cannot
/// carry).
fn user(j: &mut J, parts: &[Part<'_>], turn: usize, same: bool) -> Result<(), ChatError> {
    // The parts of the user message, with where they were (for errors).
    let mut rest: Vec<(&Part<'_>, usize, Option<usize>)> = Vec::new();
    let mut results = false;
    for (n, p) in parts.iter().enumerate() {
        match p {
            Part::ToolResult(r) => {
                results = true;
                let mut texts = Vec::new();
                for (k, c) in r.content.iter().enumerate() {
                    match c {
                        Part::Text(t) => texts.push(t.text.as_ref()),
                        Part::Media(_) => rest.push((c, n, Some(k))),
                        _ => {}
                    }
                }
                j.obj(|j| {
                    j.put("role", "tool");
                    match texts.as_slice() {
                        [one] => j.put("content", one),
                        _ => j.put("content", &texts.join("\n\n")),
                    }
                    j.put("tool_call_id", &r.call_id);
                });
            }
            Part::Text(_) | Part::Media(_) => rest.push((p, n, None)),
            // Reasoning, refusals and opaque blocks do not belong in a user
            // message; nothing an OpenAI vendor could read.
            _ => {}
        }
    }
    if rest.is_empty() && results {
        return Ok(());
    }
    j.obj(|j| {
        j.put("role", "user");
        match rest.as_slice() {
            [] => j.put("content", ""),
            [(Part::Text(t), ..)] if !(same && t.cache.is_some()) => j.put("content", &t.text),
            _ => j.key("content").arr(|j| {
                for (p, n, k) in &rest {
                    match p {
                        Part::Text(t) => text(j, t, same),
                        Part::Media(m) => media(j, m, || match k {
                            Some(k) => format!("messages[{turn}].content[{n}].content[{k}]"),
                            None => format!("messages[{turn}].content[{n}]"),
                        })?,
                        _ => {}
                    }
                }
                Ok(())
            })?,
        }
        Ok(())
    })
}

fn assistant(j: &mut J, parts: &[Part<'_>], same: bool) {
    let mut text = String::new();
    let mut refusal = String::new();
    let mut reasoning = String::new();
    let mut signature = None;
    for p in parts {
        match p {
            Part::Text(t) => text.push_str(&t.text),
            Part::Refusal(r) => refusal.push_str(r),
            // Only what the client itself echoed goes back (see the module
            // doc); a Gemini signature rides on the message.
            Part::Reasoning(r) => {
                if r.signature.is_none() && r.redacted.is_none() && same {
                    reasoning.push_str(&r.text);
                }
                signature = r
                    .signature
                    .as_ref()
                    .filter(|s| s.family == Family::Gemini)
                    .or(signature);
            }
            _ => {}
        }
    }
    let calls = parts.iter().filter_map(|p| match p {
        Part::ToolCall(c) => Some(c),
        _ => None,
    });
    j.obj(|j| {
        j.put("role", "assistant");
        let calls_or_refusal = calls.clone().next().is_some() || !refusal.is_empty();
        match text.as_str() {
            "" if calls_or_refusal => j.put("content", &()),
            t => j.put("content", t),
        }
        j.opt(
            "reasoning_content",
            Some(&reasoning).filter(|r| !r.is_empty()),
        );
        j.opt("refusal", Some(&refusal).filter(|r| !r.is_empty()));
        if calls.clone().next().is_some() {
            j.key("tool_calls").arr(|j| calls.for_each(|c| call(j, c)));
        }
        if let Some(s) = signature {
            j.key("extra_content").obj(|j| {
                j.key("google")
                    .obj(|j| j.put("thought_signature", &s.value))
            });
        }
    });
}

fn call(j: &mut J, c: &ToolCall<'_>) {
    j.obj(|j| {
        j.put("id", &c.id);
        match c.kind {
            ToolKind::Function => {
                j.put("type", "function");
                j.key("function").obj(|j| {
                    j.put("name", &c.name);
                    let args = c.arguments.trim();
                    j.put(
                        "arguments",
                        if args.is_empty() { "{}" } else { &c.arguments },
                    );
                });
            }
            ToolKind::Custom => {
                j.put("type", "custom");
                j.key("custom").obj(|j| {
                    j.put("name", &c.name);
                    j.put("input", &c.arguments);
                });
            }
        }
        if let Some(s) = c.signature.as_ref().filter(|s| s.family == Family::Gemini) {
            j.key("extra_content").obj(|j| {
                j.key("google")
                    .obj(|j| j.put("thought_signature", &s.value))
            });
        }
    });
}

// ---------------------------------------------------------------- wire (read)

/// A string borrowed from the body unless JSON escapes had to be undone.
#[derive(Debug, Clone, Default)]
struct S<'a>(Str<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for S<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = S<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<S<'a>, E> {
                Ok(S(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<S<'a>, E> {
                Ok(S(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A token count however a vendor writes it (integer, float, null).
#[derive(Debug, Clone, Copy, Default)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Number::deserialize(d) {
            Ok(n) => Count(
                n.as_u64()
                    .or_else(|| n.as_f64().filter(|f| *f > 0.0).map(|f| f as u64))
                    .unwrap_or(0),
            ),
            Err(_) => Count(0),
        })
    }
}

#[derive(Deserialize, Default)]
struct UsageW {
    prompt_tokens: Option<Count>,
    completion_tokens: Option<Count>,
    total_tokens: Option<Count>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's name for cache hits.
    prompt_cache_hit_tokens: Option<Count>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    cached_tokens: Option<Count>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    reasoning_tokens: Option<Count>,
}

fn n(c: Option<Count>) -> u64 {
    c.map_or(0, |c| c.0)
}

impl UsageW {
    fn read(&self) -> Usage {
        let prompt = n(self.prompt_tokens);
        let completion = n(self.completion_tokens);
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: match n(self.total_tokens) {
                0 => prompt.saturating_add(completion),
                t => t,
            },
            cached_tokens: n(cached).min(prompt),
            cache_write_tokens: 0,
            reasoning_tokens: n(self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)),
        }
    }
}

#[derive(Deserialize, Default)]
struct ExtraW<'a> {
    #[serde(borrow)]
    google: Option<GoogleW<'a>>,
}

#[derive(Deserialize, Default)]
struct GoogleW<'a> {
    #[serde(borrow)]
    thought_signature: Option<S<'a>>,
}

fn gemini_sig<'a>(e: Option<ExtraW<'a>>) -> Option<Signature<'a>> {
    e?.google?.thought_signature.map(|s| Signature {
        family: Family::Gemini,
        value: s.0,
    })
}

#[derive(Deserialize)]
struct CallW<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<S<'a>>,
    #[serde(borrow)]
    function: Option<FnW<'a>>,
    #[serde(borrow)]
    custom: Option<FnW<'a>>,
    #[serde(borrow)]
    extra_content: Option<ExtraW<'a>>,
    index: Option<u64>,
}

#[derive(Deserialize)]
struct FnW<'a> {
    #[serde(borrow)]
    name: Option<S<'a>>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<S<'a>>,
}

/// Arguments as text: the JSON string's content, or an object's JSON text
/// (some servers send the object).
fn args_text<'a>(a: Option<&'a RawValue>) -> Str<'a> {
    match a {
        Some(a) if a.get().starts_with('"') => serde_json::from_str::<S<'a>>(a.get())
            .map(|s| s.0)
            .unwrap_or_default(),
        Some(a) if a.get() != "null" => Cow::Borrowed(a.get()),
        _ => Cow::Borrowed(""),
    }
}

#[derive(Deserialize)]
struct TextPartW<'a> {
    #[serde(borrow)]
    text: Option<S<'a>>,
}

/// Content as a string, or text parts (some servers).
fn content_text(raw: &RawValue) -> Vec<Str<'_>> {
    let texts = if raw.get().starts_with('[') {
        serde_json::from_str::<Vec<TextPartW<'_>>>(raw.get())
            .map(|ps| ps.into_iter().filter_map(|p| p.text).collect::<Vec<_>>())
    } else {
        serde_json::from_str::<Option<S<'_>>>(raw.get()).map(|s| s.into_iter().collect())
    };
    texts
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.0)
        .filter(|s| !s.is_empty())
        .collect()
}

#[derive(Deserialize)]
struct MessageW<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    reasoning_content: Option<S<'a>>,
    #[serde(borrow)]
    reasoning: Option<S<'a>>,
    #[serde(borrow)]
    refusal: Option<S<'a>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<CallW<'a>>>,
    #[serde(borrow)]
    function_call: Option<FnW<'a>>,
    #[serde(borrow)]
    extra_content: Option<ExtraW<'a>>,
}

#[derive(Deserialize)]
struct ChoiceW<'a> {
    #[serde(borrow)]
    message: Option<MessageW<'a>>,
    #[serde(borrow)]
    finish_reason: Option<S<'a>>,
}

#[derive(Deserialize)]
struct CompletionW<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
    #[serde(borrow)]
    model: Option<S<'a>>,
    created: Option<Count>,
    #[serde(borrow)]
    choices: Option<Vec<ChoiceW<'a>>>,
    usage: Option<UsageW>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// OpenAI's finish word; `stop` after tool calls means tool calls, after a
/// refusal a refusal.
fn finish(word: &str, calls: bool, refused: bool) -> Finish {
    match word {
        "stop" | "end_turn" if calls => Finish::ToolCalls,
        "stop" if refused => Finish::Refusal,
        "stop" => Finish::Stop,
        "length" | "max_tokens" => Finish::Length,
        "tool_calls" | "function_call" => Finish::ToolCalls,
        "content_filter" => Finish::ContentFilter,
        other => Finish::Other(other.to_string()),
    }
}

fn tool_call<'a>(c: CallW<'a>, fallback: usize) -> ToolCall<'a> {
    let custom = c.kind.as_ref().is_some_and(|k| k.0 == "custom") || c.custom.is_some();
    let f = if custom { c.custom } else { c.function };
    let (name, arguments) = match f {
        Some(f) if custom => (f.name, f.input.map(|i| i.0).unwrap_or_default()),
        Some(f) => (f.name, args_text(f.arguments)),
        None => (None, Cow::Borrowed("")),
    };
    ToolCall {
        id: c
            .id
            .map(|s| s.0)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| Cow::Owned(format!("call_{fallback}_{}", generated_id("")))),
        name: name.map(|s| s.0).unwrap_or_default(),
        kind: if custom {
            ToolKind::Custom
        } else {
            ToolKind::Function
        },
        arguments,
        signature: gemini_sig(c.extra_content),
    }
}

fn decode_answer(body: &[u8]) -> Result<Answer<'_>, ChatError> {
    let c: CompletionW<'_> = serde_json::from_slice(body)
        .map_err(|e| ChatError::upstream(format!("malformed OpenAI answer: {e}")))?;
    if let Some(e) = c.error.filter(|e| e.get() != "null") {
        return Err(decode_error(
            200,
            format!("{{\"error\":{}}}", e.get()).as_bytes(),
        ));
    }
    let choice = c
        .choices
        .and_then(|v| v.into_iter().next())
        .ok_or_else(|| ChatError::upstream("OpenAI answer has no choices"))?;
    let mut parts = Vec::new();
    let mut calls = false;
    let mut refused = false;
    if let Some(m) = choice.message {
        if let Some(r) = m
            .reasoning_content
            .or(m.reasoning)
            .filter(|r| !r.0.is_empty())
        {
            parts.push(Part::Reasoning(crate::protocol::chat::Reasoning {
                text: r.0,
                signature: None,
                redacted: None,
            }));
        }
        let texts = m.content.map(content_text).unwrap_or_default();
        parts.extend(texts.into_iter().map(|t| Part::Text(Text::plain(t))));
        if let Some(r) = m.refusal.filter(|r| !r.0.is_empty()) {
            refused = true;
            parts.push(Part::Refusal(r.0));
        }
        if let Some(sig) = gemini_sig(m.extra_content) {
            parts.push(Part::Reasoning(crate::protocol::chat::Reasoning {
                text: Cow::Borrowed(""),
                signature: Some(sig),
                redacted: None,
            }));
        }
        for (i, call) in m.tool_calls.unwrap_or_default().into_iter().enumerate() {
            calls = true;
            parts.push(Part::ToolCall(tool_call(call, i)));
        }
        if let Some(f) = m.function_call {
            calls = true;
            parts.push(Part::ToolCall(ToolCall {
                id: Cow::Owned(generated_id("call_")),
                name: f.name.map(|s| s.0).unwrap_or_default(),
                kind: ToolKind::Function,
                arguments: args_text(f.arguments),
                signature: None,
            }));
        }
    }
    Ok(Answer {
        id: c
            .id
            .map(|s| s.0)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| Cow::Owned(generated_id("chatcmpl-"))),
        model: c.model.map(|s| s.0).unwrap_or_default(),
        created: c
            .created
            .map(|c| c.0)
            .filter(|c| *c > 0)
            .unwrap_or_else(now_unix),
        parts,
        finish: Some(match choice.finish_reason {
            Some(w) => finish(&w.0, calls, refused),
            None if calls => Finish::ToolCalls,
            None => Finish::Stop,
        }),
        usage: c.usage.unwrap_or_default().read(),
    })
}

// ---------------------------------------------------------------- errors

/// An OpenAI-style error body (`{"error":{message,type,param,code}}`,
/// `{"error":"text"}`, `{"message":…}`) or any other body, in canonical
/// terms. Error bodies are rare and small: read as a `Value`.
pub(crate) fn decode_error(status: u16, body: &[u8]) -> ChatError {
    use serde_json::Value;
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let err = v.as_ref().map(|v| v.get("error").unwrap_or(v));
    let word = |k: &str| match err.and_then(|e| e.get(k)) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let message = match (err, &v) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (Some(_), _) => word("message"),
        // Enough of an HTML error page to diagnose it, not all of it.
        (None, _) => Some(
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(500)
                .collect(),
        ),
    };
    let (kind, code) = (word("type"), word("code"));
    // A status that is no error (an error body on a 200) becomes a 502
    // unless the body's own code is an HTTP status.
    let status = if (400..=599).contains(&status) {
        status
    } else {
        code.as_deref()
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|s| (400..=599).contains(s))
            .unwrap_or(502)
    };
    let k = match (code.as_deref(), kind.as_deref()) {
        (Some("context_length_exceeded"), _) => ErrorKind::ContextLength,
        (_, Some("insufficient_quota")) => ErrorKind::RateLimited,
        _ => ErrorKind::for_status(status),
    };
    ChatError {
        kind: k,
        status,
        message: message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("upstream returned HTTP {status}")),
        param: word("param"),
        code,
        vendor_type: kind,
    }
}

#[cfg(test)]
mod tests;
