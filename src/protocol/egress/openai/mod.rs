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
    StreamDecoder, Text, ToolCall, ToolChoice, ToolKind, Usage, VendorOptions,
};
use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
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
        let body = Body::new(req, model)?;
        serde_json::to_vec(&body)
            .map(Bytes::from)
            .map_err(|e| ChatError::bad_request(format!("request cannot be encoded: {e}")))
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

#[derive(Serialize)]
#[serde(untagged)]
enum Content<'r> {
    Null,
    Text(Cow<'r, str>),
    Parts(Vec<PartOut<'r>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PartOut<'r> {
    Text {
        text: &'r str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'r RawValue>,
    },
    ImageUrl {
        image_url: UrlOut<'r>,
    },
    InputAudio {
        input_audio: AudioOut<'r>,
    },
    File {
        file: FileOut<'r>,
    },
}

#[derive(Serialize)]
struct UrlOut<'r> {
    url: Cow<'r, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'r str>,
}

#[derive(Serialize)]
struct AudioOut<'r> {
    data: &'r str,
    format: &'r str,
}

#[derive(Serialize)]
struct FileOut<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_id: Option<&'r str>,
}

#[derive(Serialize)]
struct Message<'r> {
    role: &'static str,
    content: Content<'r>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<Cow<'r, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Cow<'r, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CallOut<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<Extra<'r>>,
}

impl<'r> Message<'r> {
    fn new(role: &'static str, content: Content<'r>) -> Self {
        Message {
            role,
            content,
            reasoning_content: None,
            refusal: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            extra_content: None,
        }
    }
}

#[derive(Serialize)]
struct CallOut<'r> {
    id: &'r str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<FnOut<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom: Option<FnOut<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<Extra<'r>>,
}

#[derive(Serialize)]
struct FnOut<'r> {
    name: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'r str>,
}

#[derive(Serialize)]
struct Extra<'r> {
    google: Google<'r>,
}

#[derive(Serialize)]
struct Google<'r> {
    thought_signature: &'r str,
}

fn extra<'r>(sig: Option<&'r Signature<'_>>) -> Option<Extra<'r>> {
    sig.filter(|s| s.family == Family::Gemini).map(|s| Extra {
        google: Google {
            thought_signature: &s.value,
        },
    })
}

#[derive(Serialize)]
struct ToolOut<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<ToolDef<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom: Option<ToolDef<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<&'r RawValue>,
}

#[derive(Serialize)]
struct ToolDef<'r> {
    name: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'r RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'r RawValue>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChoiceOut<'r> {
    Word(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        function: Option<Name<'r>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        custom: Option<Name<'r>>,
    },
}

#[derive(Serialize)]
struct Name<'r> {
    name: &'r str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FormatOut<'r> {
    Text,
    JsonObject,
    JsonSchema { json_schema: SchemaOut<'r> },
}

#[derive(Serialize)]
struct SchemaOut<'r> {
    name: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'r RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// The request body: fixed fields, then the client's extras (same family
/// only) as they came.
struct Body<'r, 'a> {
    req: &'r Request<'a>,
    model: &'r str,
    messages: Vec<Message<'r>>,
    tools: Vec<ToolOut<'r>>,
    extras: &'r [(Str<'a>, Cow<'a, RawValue>)],
    /// The client's own cache markers and `top_k` may go back to it.
    same_family: bool,
}

/// Names an OpenAI client used for fields the chat model holds under one
/// name (see the ingress adapter): markers, not fields.
const SPELLINGS: [&str; 2] = ["max_completion_tokens", "safety_identifier"];

fn spelled(extras: &[(Str<'_>, Cow<'_, RawValue>)], name: &str) -> bool {
    extras.iter().any(|(k, _)| k == name)
}

impl<'r, 'a> Body<'r, 'a> {
    fn new(req: &'r Request<'a>, model: &'r str) -> Result<Self, ChatError> {
        let same_family = req.extra.origin == Family::OpenAi;
        let mut messages = Vec::with_capacity(req.turns.len() + 1);
        let system: Vec<&Text<'_>> = req
            .system
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t),
                _ => None,
            })
            .collect();
        if !system.is_empty() {
            messages.push(Message::new("system", texts(&system, same_family)));
        }
        for (i, turn) in req.turns.iter().enumerate() {
            match turn.role {
                Role::User => user(&turn.parts, i, same_family, &mut messages)?,
                Role::Assistant => messages.push(assistant(&turn.parts, same_family)),
            }
        }
        let tools = req
            .tools
            .iter()
            .map(|t| {
                let custom = t.kind == ToolKind::Custom;
                let def = ToolDef {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: t.parameters.as_deref().filter(|_| !custom),
                    strict: t.strict.filter(|_| !custom),
                    format: t.format.as_deref().filter(|_| custom),
                };
                let (function, custom_def) = if custom {
                    (None, Some(def))
                } else {
                    (Some(def), None)
                };
                ToolOut {
                    kind: if custom { "custom" } else { "function" },
                    function,
                    custom: custom_def,
                    cache_control: t.cache.as_deref().filter(|_| same_family),
                }
            })
            .collect();
        Ok(Body {
            req,
            model,
            messages,
            tools,
            extras: req.extra.for_family(Family::OpenAi),
            same_family,
        })
    }
}

impl Serialize for Body<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.req;
        let sm = &r.sampling;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        m.serialize_entry("messages", &self.messages)?;
        if !self.tools.is_empty() {
            m.serialize_entry("tools", &self.tools)?;
            // OpenAI rejects parallel_tool_calls without tools.
            if let Some(p) = r.parallel_tool_calls {
                m.serialize_entry("parallel_tool_calls", &p)?;
            }
        }
        if let Some(tc) = &r.tool_choice {
            let custom = |n: &str| {
                r.tools
                    .iter()
                    .any(|t| t.name == n && t.kind == ToolKind::Custom)
            };
            let out = match tc {
                ToolChoice::Auto => ChoiceOut::Word("auto"),
                ToolChoice::None => ChoiceOut::Word("none"),
                ToolChoice::Required => ChoiceOut::Word("required"),
                ToolChoice::Tool(n) if custom(n) => ChoiceOut::Named {
                    kind: "custom",
                    function: None,
                    custom: Some(Name { name: n }),
                },
                ToolChoice::Tool(n) => ChoiceOut::Named {
                    kind: "function",
                    function: Some(Name { name: n }),
                    custom: None,
                },
            };
            m.serialize_entry("tool_choice", &out)?;
        }
        let opt = |m: &mut S::SerializeMap, k: &str, v: Option<f64>| match v {
            Some(v) => m.serialize_entry(k, &v),
            None => Ok(()),
        };
        opt(&mut m, "temperature", sm.temperature)?;
        opt(&mut m, "top_p", sm.top_p)?;
        if let Some(k) = sm.top_k.filter(|_| self.same_family) {
            m.serialize_entry("top_k", &k)?;
        }
        if let Some(seed) = sm.seed {
            m.serialize_entry("seed", &seed)?;
        }
        opt(&mut m, "presence_penalty", sm.presence_penalty)?;
        opt(&mut m, "frequency_penalty", sm.frequency_penalty)?;
        if !sm.stop.is_empty() {
            m.serialize_entry("stop", &sm.stop)?;
        }
        if let Some(n) = r.max_tokens {
            let key = if spelled(self.extras, "max_completion_tokens") {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            m.serialize_entry(key, &n)?;
        }
        let effort = match r.reasoning {
            Some(ReasoningConfig::Effort(e)) => Some(e),
            Some(ReasoningConfig::Budget(b)) => Some(crate::protocol::chat::Effort::for_budget(b)),
            // The vendor decides: say nothing.
            Some(ReasoningConfig::Dynamic) | None => None,
        };
        if let Some(e) = effort {
            m.serialize_entry("reasoning_effort", e.as_str())?;
        }
        if let Some(f) = &r.response_format {
            let out = match f {
                ResponseFormat::Text => FormatOut::Text,
                ResponseFormat::JsonObject => FormatOut::JsonObject,
                ResponseFormat::JsonSchema {
                    name,
                    schema,
                    strict,
                } => FormatOut::JsonSchema {
                    json_schema: SchemaOut {
                        // OpenAI requires a name.
                        name: name.as_deref().unwrap_or("response"),
                        schema: schema.as_deref(),
                        strict: *strict,
                    },
                },
            };
            m.serialize_entry("response_format", &out)?;
        }
        if r.stream {
            m.serialize_entry("stream", &true)?;
            // Always: the gateway counts usage from the stream.
            m.serialize_entry(
                "stream_options",
                &IncludeUsage {
                    include_usage: true,
                },
            )?;
        }
        if let Some(n) = r.n {
            m.serialize_entry("n", &n)?;
        }
        if let Some(u) = &r.user {
            let key = if spelled(self.extras, "safety_identifier") {
                "safety_identifier"
            } else {
                "user"
            };
            m.serialize_entry(key, u)?;
        }
        for (k, v) in self.extras {
            if !SPELLINGS.contains(&k.as_ref()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct IncludeUsage {
    include_usage: bool,
}

/// Text parts as a string (one) or text parts (several, or cache markers
/// to keep).
fn texts<'r>(parts: &[&'r Text<'_>], keep_cache: bool) -> Content<'r> {
    match parts {
        [one] if !(keep_cache && one.cache.is_some()) => Content::Text(Cow::Borrowed(&one.text)),
        _ => Content::Parts(
            parts
                .iter()
                .map(|t| PartOut::Text {
                    text: &t.text,
                    cache_control: t.cache.as_deref().filter(|_| keep_cache),
                })
                .collect(),
        ),
    }
}

fn media<'r>(m: &'r Media<'_>, path: &str) -> Result<PartOut<'r>, ChatError> {
    let mime = m.mime.as_deref();
    let data_url =
        |data: &str, default: &str| format!("data:{};base64,{data}", mime.unwrap_or(default));
    let cannot = |what: &str| {
        ChatError::invalid(
            path,
            format!("{what} cannot be sent to an OpenAI-compatible vendor"),
        )
    };
    Ok(match (m.kind, &m.source) {
        (MediaKind::Image, MediaSource::Base64 { data }) => PartOut::ImageUrl {
            image_url: UrlOut {
                url: Cow::Owned(data_url(data, "image/png")),
                detail: m.detail.as_deref(),
            },
        },
        (MediaKind::Image, MediaSource::Url(u)) => PartOut::ImageUrl {
            image_url: UrlOut {
                url: Cow::Borrowed(u),
                detail: m.detail.as_deref(),
            },
        },
        (MediaKind::Audio, MediaSource::Base64 { data }) => PartOut::InputAudio {
            input_audio: AudioOut {
                data,
                format: match mime.and_then(|m| m.strip_prefix("audio/")) {
                    Some("mpeg" | "mp3") => "mp3",
                    Some(f) => f,
                    None => "wav",
                },
            },
        },
        (MediaKind::Audio, _) => return Err(cannot("audio by URL or file id")),
        (_, MediaSource::Base64 { data }) => PartOut::File {
            file: FileOut {
                filename: m.name.as_deref().or(match mime {
                    Some("application/pdf") | None => Some("document.pdf"),
                    _ => None,
                }),
                file_data: Some(data_url(data, "application/pdf")),
                file_id: None,
            },
        },
        (
            _,
            MediaSource::FileId {
                family: Family::OpenAi,
                id,
            },
        ) => PartOut::File {
            file: FileOut {
                filename: None,
                file_data: None,
                file_id: Some(id),
            },
        },
        (_, MediaSource::FileId { .. }) => return Err(cannot("another vendor's file id")),
        (MediaKind::Document, MediaSource::Url(_)) => return Err(cannot("a document by URL")),
    })
}

/// A user turn: one `tool` message per tool result, then one user message
/// with the rest (and the tool results' media, which tool messages cannot
/// carry).
fn user<'r>(
    parts: &'r [Part<'_>],
    turn: usize,
    keep_cache: bool,
    out: &mut Vec<Message<'r>>,
) -> Result<(), ChatError> {
    let mut rest: Vec<PartOut<'r>> = Vec::new();
    let mut only_text = true;
    for (j, p) in parts.iter().enumerate() {
        let path = format!("messages[{turn}].content[{j}]");
        match p {
            Part::ToolResult(r) => {
                let mut text: Option<Cow<'r, str>> = None;
                for (k, c) in r.content.iter().enumerate() {
                    match c {
                        Part::Text(t) => match &mut text {
                            None => text = Some(Cow::Borrowed(&t.text)),
                            Some(acc) => {
                                let acc = acc.to_mut();
                                acc.push_str("\n\n");
                                acc.push_str(&t.text);
                            }
                        },
                        Part::Media(m) => {
                            only_text = false;
                            rest.push(media(m, &format!("{path}.content[{k}]"))?);
                        }
                        _ => {}
                    }
                }
                let mut msg = Message::new("tool", Content::Text(text.unwrap_or_default()));
                msg.tool_call_id = Some(&r.call_id);
                out.push(msg);
            }
            Part::Text(t) => {
                only_text &= !(keep_cache && t.cache.is_some());
                rest.push(PartOut::Text {
                    text: &t.text,
                    cache_control: t.cache.as_deref().filter(|_| keep_cache),
                });
            }
            Part::Media(m) => {
                only_text = false;
                rest.push(media(m, &path)?);
            }
            // Reasoning, refusals and opaque blocks do not belong in a user
            // message; nothing an OpenAI vendor could read.
            _ => {}
        }
    }
    let has_results = parts.iter().any(|p| matches!(p, Part::ToolResult(_)));
    if rest.is_empty() && has_results {
        return Ok(());
    }
    let content = match rest.as_slice() {
        [] => Content::Text(Cow::Borrowed("")),
        [PartOut::Text { text, .. }] if only_text => Content::Text(Cow::Borrowed(text)),
        _ => Content::Parts(rest),
    };
    out.push(Message::new("user", content));
    Ok(())
}

fn assistant<'r>(parts: &'r [Part<'_>], same_family: bool) -> Message<'r> {
    let mut text: Option<Cow<'r, str>> = None;
    let mut msg = Message::new("assistant", Content::Null);
    let join = |acc: &mut Option<Cow<'r, str>>, s: &'r str| match acc {
        None => *acc = Some(Cow::Borrowed(s)),
        Some(a) => a.to_mut().push_str(s),
    };
    let mut reasoning = None;
    let mut refusal = None;
    for p in parts {
        match p {
            Part::Text(t) => join(&mut text, &t.text),
            Part::Refusal(r) => join(&mut refusal, r),
            Part::Reasoning(r) => {
                if r.signature.is_none()
                    && r.redacted.is_none()
                    && same_family
                    && !r.text.is_empty()
                {
                    join(&mut reasoning, &r.text);
                }
                if let Some(e) = extra(r.signature.as_ref()) {
                    msg.extra_content = Some(e);
                }
            }
            Part::ToolCall(c) => msg.tool_calls.push(call(c)),
            _ => {}
        }
    }
    msg.content = match text {
        Some(t) => Content::Text(t),
        None if msg.tool_calls.is_empty() && refusal.is_none() => Content::Text(Cow::Borrowed("")),
        None => Content::Null,
    };
    msg.reasoning_content = reasoning;
    msg.refusal = refusal;
    msg
}

fn call<'r>(c: &'r ToolCall<'_>) -> CallOut<'r> {
    let custom = c.kind == ToolKind::Custom;
    CallOut {
        id: &c.id,
        kind: if custom { "custom" } else { "function" },
        function: (!custom).then(|| FnOut {
            name: &c.name,
            arguments: Some(if c.arguments.trim().is_empty() {
                "{}"
            } else {
                &c.arguments
            }),
            input: None,
        }),
        custom: custom.then(|| FnOut {
            name: &c.name,
            arguments: None,
            input: Some(&c.arguments),
        }),
        extra_content: extra(c.signature.as_ref()),
    }
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

/// Content as a string, or text parts (some servers).
enum ContentW<'a> {
    Text(Str<'a>),
    Parts(Vec<TextPartW<'a>>),
}

#[derive(Deserialize)]
struct TextPartW<'a> {
    #[serde(borrow)]
    text: Option<S<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentW<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = ContentW<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of parts")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ContentW::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ContentW::Text(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                s: A,
            ) -> Result<Self::Value, A::Error> {
                let d = serde::de::value::SeqAccessDeserializer::new(s);
                Vec::<TextPartW<'a>>::deserialize(d).map(ContentW::Parts)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct MessageW<'a> {
    #[serde(borrow)]
    content: Option<ContentW<'a>>,
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
        match m.content {
            Some(ContentW::Text(t)) if !t.is_empty() => parts.push(Part::Text(Text::plain(t))),
            Some(ContentW::Parts(ps)) => parts.extend(
                ps.into_iter()
                    .filter_map(|p| p.text)
                    .map(|t| Part::Text(Text::plain(t.0))),
            ),
            _ => {}
        }
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

#[derive(Deserialize)]
struct ErrorEnvelope<'a> {
    #[serde(borrow)]
    error: Option<ErrorW<'a>>,
    #[serde(borrow)]
    message: Option<S<'a>>,
}

/// `error` is an object, or a bare string from some servers.
enum ErrorW<'a> {
    Text(Str<'a>),
    Object(ErrorObject<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ErrorW<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<'a> {
            #[serde(borrow)]
            Text(S<'a>),
            #[serde(borrow)]
            Object(ErrorObject<'a>),
        }
        Ok(match Either::deserialize(d)? {
            Either::Text(s) => ErrorW::Text(s.0),
            Either::Object(o) => ErrorW::Object(o),
        })
    }
}

#[derive(Deserialize)]
struct ErrorObject<'a> {
    #[serde(borrow)]
    message: Option<S<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<S<'a>>,
    #[serde(borrow)]
    param: Option<S<'a>>,
    /// A word (`context_length_exceeded`) or, from some servers, a number.
    code: Option<serde_json::Value>,
}

/// An OpenAI-style error body (or any other body) in canonical terms.
pub(crate) fn decode_error(status: u16, body: &[u8]) -> ChatError {
    let parsed = serde_json::from_slice::<ErrorEnvelope<'_>>(body).ok();
    let (message, kind, param, code) = match parsed {
        Some(ErrorEnvelope {
            error: Some(ErrorW::Object(o)),
            ..
        }) => (
            o.message.map(|m| m.0.into_owned()),
            o.kind.map(|k| k.0.into_owned()),
            o.param.map(|p| p.0.into_owned()),
            match o.code {
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
        ),
        Some(ErrorEnvelope {
            error: Some(ErrorW::Text(t)),
            ..
        }) => (Some(t.into_owned()), None, None, None),
        Some(ErrorEnvelope { message, .. }) => {
            (message.map(|m| m.0.into_owned()), None, None, None)
        }
        None => {
            // Enough of an HTML error page to diagnose it, not all of it.
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(500).collect();
            ((!text.is_empty()).then_some(text), None, None, None)
        }
    };
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
    let mut k = ErrorKind::for_status(status);
    if code.as_deref() == Some("context_length_exceeded") {
        k = ErrorKind::ContextLength;
    } else if kind.as_deref() == Some("insufficient_quota") {
        k = ErrorKind::RateLimited;
    }
    ChatError {
        kind: k,
        status,
        message: message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("upstream returned HTTP {status}")),
        param,
        code,
        vendor_type: kind,
    }
}

#[cfg(test)]
mod tests;
