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

mod read;
mod stream;

use read::decode_answer;
pub(crate) use read::decode_error;
pub(crate) use read::UsageW;

use crate::protocol::chat::{
    Answer, ChatError, Egress, Family, Media, MediaKind, MediaSource, Part, ReasoningConfig,
    Request, ResponseFormat, Role, StreamDecoder, Text, Tool, ToolCall, ToolChoice, ToolKind,
    VendorOptions,
};
use crate::protocol::json::Writer as J;
use bytes::Bytes;

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

#[cfg(test)]
mod tests;
