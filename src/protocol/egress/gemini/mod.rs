//! Google Gemini `models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse` (v1beta); the model is in the URL (built
//! by the provider), never in the body. Gemini's quirks handled here:
//!
//! * System texts become one `systemInstruction` (joined with a blank line);
//!   same-role turns merge (user and model must alternate); empty text parts
//!   are dropped (Gemini rejects them).
//! * Call ids are not sent (Gemini pairs calls and responses by order and
//!   name): a `functionResponse` is named after the earlier call with the
//!   same id, else `ToolResult.name`.
//! * Only the first `functionCall` of a model turn carries a thought
//!   signature (parallel calls share it): its own Gemini one, else Google's
//!   documented placeholder, so Gemini 3 accepts other vendors' histories.
//!   Gemini-signed reasoning goes back as a thought part; other is dropped.
//! * Custom (freeform) tools are functions with one string parameter
//!   `input`; their calls are sent (and come back) as `{"input": text}`.
//! * `n` > 1 is rejected (an answer carries one candidate).
//! * An effort becomes `thinkingBudget` without thought text; a budget or
//!   dynamic thinking (-1) asks for thought text only for Anthropic clients
//!   (they expect thinking blocks). OpenAI clients opt in with
//!   `include_reasoning: true` or Google's `extra_body.google`
//!   (`thinking_config`, `cached_content`); extras of a Gemini-origin
//!   request are written as they are.
//! * A stream ending without a finishReason is truncated even when the
//!   connection closed cleanly: Gemini always sends one.

mod decode;
mod schema;
mod stream;
pub mod wire;

pub use schema::clean_schema;

use crate::protocol::chat::{
    is_http, Answer, ChatError, Egress, Family, Media, MediaKind, MediaSource, Part,
    ReasoningConfig, Request, ResponseFormat, Role, StreamDecoder, ToolCall, ToolChoice, ToolKind,
    ToolResult, VendorOptions,
};
use crate::protocol::json::Writer as J;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;

/// The Gemini generateContent egress adapter.
pub struct GeminiGenerate;

/// Google's documented value for a function call whose signature is unknown.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

impl Egress for GeminiGenerate {
    fn family(&self) -> Family {
        Family::Gemini
    }

    fn encode_request(
        &self,
        req: &Request<'_>,
        _model: &str,
        opts: &VendorOptions,
    ) -> Result<Bytes, ChatError> {
        encode(req, opts).map(Bytes::from)
    }

    fn decode_answer<'a>(&self, body: &'a [u8]) -> Result<Answer<'a>, ChatError> {
        decode::answer(body)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::<stream::Decoder>::default()
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ChatError {
        decode::error(status, body)
    }
}

// ---------------------------------------------------------------- body

/// Keys this adapter writes itself: a Gemini-origin request's extras with
/// these names are dropped rather than duplicated.
const OWN_KEYS: [&str; 6] = [
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "cachedContent",
];

/// Google's OpenAI-compatible settings (`extra_body.google`).
#[derive(Deserialize, Default)]
struct GoogleExt<'x> {
    #[serde(borrow)]
    cached_content: Option<Cow<'x, str>>,
    #[serde(borrow)]
    thinking_config: Option<GoogleThinking<'x>>,
}

#[derive(Deserialize)]
struct GoogleThinking<'x> {
    /// Signed: -1 is Gemini's dynamic budget.
    thinking_budget: Option<i64>,
    include_thoughts: Option<bool>,
    #[serde(borrow)]
    thinking_level: Option<Cow<'x, str>>,
}

#[derive(Deserialize)]
struct ExtraBody<'x> {
    #[serde(borrow)]
    google: Option<GoogleExt<'x>>,
}

/// Google's settings in an OpenAI-origin request's extras: `extra_body.google`
/// (or `google`, when an SDK merged `extra_body` into the top level), and
/// whether `include_reasoning` is true. Read here rather than through
/// `for_family`, which would log them as dropped.
fn openai_hints<'r>(req: &'r Request<'_>) -> (GoogleExt<'r>, bool) {
    let (mut google, mut include_reasoning) = (GoogleExt::default(), false);
    if req.extra.origin != Family::OpenAi {
        return (google, include_reasoning);
    }
    for (k, v) in &req.extra.fields {
        match k.as_ref() {
            "extra_body" => {
                if let Ok(ExtraBody { google: Some(g) }) = serde_json::from_str(v.get()) {
                    google = g;
                }
            }
            "google" => google = serde_json::from_str(v.get()).unwrap_or(google),
            "include_reasoning" => include_reasoning = v.get() == "true",
            _ => {}
        }
    }
    (google, include_reasoning)
}

/// The request body, written by hand in the order Google documents it
/// (serde's struct writer and the structs it needs cost ~1k instructions
/// more per request, callgrind).
fn encode(req: &Request<'_>, opts: &VendorOptions) -> Result<Vec<u8>, ChatError> {
    let (google, include_reasoning) = openai_hints(req);
    let mut j = J(Vec::with_capacity(1024));
    j.obj(|j| {
        j.key("contents")
            .arr(|j| Contents::default().write(j, req))?;
        system(j, req)?;
        tools(j, req)?;
        generation_config(j, req, opts, include_reasoning, google.thinking_config)?;
        j.opt("cachedContent", google.cached_content.as_deref());
        if req.extra.origin == Family::Gemini {
            for (k, v) in &req.extra.fields {
                if !OWN_KEYS.contains(&k.as_ref()) {
                    j.raw(k, v.get());
                }
            }
        }
        Ok(())
    })?;
    Ok(j.0)
}

fn system(j: &mut J, req: &Request<'_>) -> Result<(), ChatError> {
    let mut texts = Vec::new();
    for part in &req.system {
        let Part::Text(t) = part else {
            let msg = "Gemini takes only text in system instructions";
            return Err(ChatError::invalid("system", msg));
        };
        if !t.text.is_empty() {
            texts.push(t.text.as_ref());
        }
    }
    let text = match texts.as_slice() {
        [] => return Ok(()),
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(texts.join("\n\n")),
    };
    j.key("systemInstruction")
        .obj(|j| j.key("parts").arr(|j| j.obj(|j| j.put("text", &text))));
    Ok(())
}

/// `contents` as it is written: same-role turns merge (a turn that yields
/// no part opens nothing), and the first `functionCall` of a model content
/// carries the content's signature (its own Gemini one, else the
/// placeholder); no other call carries one.
#[derive(Default)]
struct Contents<'r> {
    /// functionResponse needs the function's name; tool results only have
    /// the call id: names are remembered from the calls before them.
    names: HashMap<&'r str, &'r str>,
    /// The role of the content being written.
    role: Option<&'static str>,
    call_seen: bool,
    /// The last part written is a plain text of this turn (no thought, no
    /// signature): a Gemini signature on an empty reasoning part goes on it.
    plain_text: bool,
}

impl<'r> Contents<'r> {
    fn write(mut self, j: &mut J, req: &'r Request<'_>) -> Result<(), ChatError> {
        for turn in &req.turns {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            self.plain_text = false;
            for p in &turn.parts {
                self.part(j, role, p)?;
            }
        }
        if self.role.is_none() {
            return Err(ChatError::invalid(
                "messages",
                "at least one user or assistant message with content is required",
            ));
        }
        j.0.extend_from_slice(b"]}");
        Ok(())
    }

    /// Makes `role`'s content the open one (a new content when the role
    /// changes); the caller writes one part into its `parts`.
    fn open(&mut self, j: &mut J, role: &'static str) {
        if self.role != Some(role) {
            if self.role.is_some() {
                j.0.extend_from_slice(b"]}");
            }
            j.sep();
            j.0.push(b'{');
            j.put("role", role);
            j.key("parts");
            j.0.push(b'[');
            (self.role, self.call_seen) = (Some(role), false);
        }
        self.plain_text = false;
    }

    fn text(&mut self, j: &mut J, role: &'static str, text: &str) {
        self.open(j, role);
        j.obj(|j| j.put("text", text));
        self.plain_text = true;
    }

    fn part(&mut self, j: &mut J, role: &'static str, p: &'r Part<'_>) -> Result<(), ChatError> {
        match p {
            Part::Text(t) if !t.text.is_empty() => self.text(j, role, &t.text),
            Part::Refusal(r) if !r.is_empty() => self.text(j, role, r),
            Part::Text(_) | Part::Refusal(_) => {}
            Part::Media(m) => {
                self.open(j, role);
                j.obj(|j| media(j, m))?;
            }
            Part::ToolCall(c) => {
                self.names.insert(&c.id, &c.name);
                self.open(j, role);
                let signed = role == "model" && !self.call_seen;
                self.call_seen |= signed;
                j.obj(|j| {
                    j.key("functionCall").obj(|j| call(j, c));
                    if signed {
                        let own = c.signature.as_ref().filter(|s| s.family == Family::Gemini);
                        j.put("thoughtSignature", own.map_or(SKIP_SIGNATURE, |s| &s.value));
                    }
                });
            }
            Part::ToolResult(r) => {
                let name = self
                    .names
                    .get(r.call_id.as_ref())
                    .copied()
                    .or(r.name.as_deref());
                let name = name.ok_or_else(|| {
                    ChatError::invalid(
                        "messages",
                        format!("no earlier tool call has id {:?}; Gemini needs the function name of a tool result", r.call_id),
                    )
                })?;
                self.open(j, role);
                j.obj(|j| {
                    j.key("functionResponse").obj(|j| {
                        j.put("name", name);
                        j.key("response");
                        response(j, r);
                    })
                });
                // Images a tool returned follow as parts of the same turn.
                for p in &r.content {
                    if let Part::Media(m) = p {
                        j.obj(|j| media(j, m))?;
                    }
                }
            }
            Part::Reasoning(r) => {
                let Some(sig) = r.signature.as_ref().filter(|s| s.family == Family::Gemini) else {
                    tracing::debug!("reasoning without a Gemini signature is not sent to Gemini");
                    return Ok(());
                };
                // A signature Gemini put on a non-thought part goes back on
                // the text before it (see `decode`): that part is the last
                // thing written, so its `}` is reopened.
                if r.text.is_empty() && self.plain_text {
                    j.0.pop();
                    j.put("thoughtSignature", &sig.value);
                    j.0.push(b'}');
                    self.plain_text = false;
                    return Ok(());
                }
                self.open(j, role);
                j.obj(|j| {
                    j.put("text", &r.text);
                    if !r.text.is_empty() {
                        j.put("thought", &true);
                    }
                    j.put("thoughtSignature", &sig.value);
                });
            }
            Part::Opaque { family, raw } if *family == Family::Gemini => {
                // The part is replayed as it came.
                self.open(j, role);
                j.val(raw.as_ref());
            }
            Part::Opaque { family, .. } => {
                tracing::debug!(
                    from = family.as_str(),
                    "content block with no Gemini equivalent dropped"
                );
            }
        }
        Ok(())
    }
}

/// A `functionCall`'s members: Gemini requires `args` to be an object
/// (a custom tool's text is `{"input": text}`).
fn call(j: &mut J, c: &ToolCall<'_>) {
    j.put("name", &c.name);
    j.key("args");
    match c.kind {
        ToolKind::Custom => j.obj(|j| j.put("input", &c.arguments)),
        ToolKind::Function if c.arguments.trim().is_empty() => j.obj(|_| ()),
        ToolKind::Function => match object_in(&c.arguments) {
            Some(args) => j.val(args),
            None => {
                tracing::debug!(call = %c.id, "tool call arguments are not a JSON object; sending {{}}");
                j.obj(|_| ())
            }
        },
    }
}

/// `text` as a JSON object, if it is one.
fn object_in(text: &str) -> Option<&RawValue> {
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

/// A tool result as the object Gemini requires: a JSON object result is
/// passed as is, other text wrapped (`error` is Gemini's key for a failed
/// call, `content` the one the old translator used).
fn response(j: &mut J, r: &ToolResult<'_>) {
    let texts: Vec<&str> = (r.content.iter())
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.text.as_ref()),
            _ => None,
        })
        .collect();
    let text = match texts.as_slice() {
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(texts.concat()),
    };
    match object_in(&text) {
        Some(obj) => j.val(obj),
        None => j.obj(|j| j.put(if r.is_error { "error" } else { "content" }, &text)),
    }
}

/// Inline bytes or a URL / file reference Gemini fetches itself, written
/// as the members of a part.
fn media(j: &mut J, m: &Media<'_>) -> Result<(), ChatError> {
    let default = match m.kind {
        MediaKind::Image => "image/jpeg",
        MediaKind::Audio => "audio/wav",
        MediaKind::Document => "application/pdf",
    };
    let mime = |uri: Option<&str>| -> &str {
        match (&m.mime, m.name.as_deref().and_then(mime_from_extension)) {
            (Some(mime), _) if !mime.is_empty() => mime,
            (_, Some(by_name)) => by_name,
            _ => uri.and_then(mime_from_extension).unwrap_or(default),
        }
    };
    let bad = |msg: &str| Err(ChatError::invalid("messages", msg));
    let (key, mime_type, (data_key, data)) = match &m.source {
        MediaSource::Base64 { data } => ("inlineData", mime(None), ("data", data.as_ref())),
        MediaSource::Url(url) => match url.strip_prefix("data:") {
            Some(rest) => {
                let Some((header, data)) = rest.split_once(',') else {
                    return bad("malformed data URL");
                };
                let Some(header) = header.strip_suffix(";base64") else {
                    return bad("data URLs must be base64-encoded");
                };
                // Parameters such as ";charset=utf-8" are not part of the type.
                let mime_type = match header.split(';').next().unwrap_or("").trim() {
                    "" => mime(None),
                    declared => declared,
                };
                ("inlineData", mime_type, ("data", data))
            }
            None if !is_http(url) => return bad("media URLs must be data: URLs or http(s) URLs"),
            None => ("fileData", mime(Some(url)), ("fileUri", url.as_ref())),
        },
        MediaSource::FileId {
            family: Family::Gemini,
            id,
        } => ("fileData", mime(Some(id)), ("fileUri", id.as_ref())),
        MediaSource::FileId { family, .. } => {
            return bad(&format!(
                "{} file ids cannot be resolved for Gemini; send the file's data",
                family.as_str()
            ))
        }
    };
    j.key(key).obj(|j| {
        j.put("mimeType", mime_type);
        j.put(data_key, data);
    });
    Ok(())
}

/// Extension -> MIME type, for the types Gemini takes as input.
const MIME_BY_EXTENSION: &str = "jpg:image/jpeg jpeg:image/jpeg png:image/png gif:image/gif \
    webp:image/webp heic:image/heic heif:image/heif pdf:application/pdf txt:text/plain \
    mp3:audio/mp3 wav:audio/wav ogg:audio/ogg flac:audio/flac aac:audio/aac mp4:video/mp4 \
    mov:video/quicktime webm:video/webm";

/// MIME type from a URL's or file name's extension.
fn mime_from_extension(name: &str) -> Option<&'static str> {
    let path = name.split(['?', '#']).next().unwrap_or(name);
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.')?.1.to_ascii_lowercase();
    (MIME_BY_EXTENSION
        .split(' ')
        .filter_map(|p| p.split_once(':')))
    .find_map(|(e, mime)| (e == ext).then_some(mime))
}

/// A custom (freeform) tool's declared parameters: one string, `input`.
const CUSTOM_PARAMETERS: &str = r#"{"type":"object","properties":{"input":{"type":"string","description":"The tool's freeform input."}},"required":["input"]}"#;

/// The declarations, and the `toolConfig` for `tool_choice`.
fn tools(j: &mut J, req: &Request<'_>) -> Result<(), ChatError> {
    if req.tools.is_empty() {
        // Gemini has nothing to choose from: tool_choice says nothing.
        return Ok(());
    }
    let (mode, only) = match &req.tool_choice {
        None => (None, None),
        Some(ToolChoice::Auto) => (Some("AUTO"), None),
        Some(ToolChoice::None) => (Some("NONE"), None),
        Some(ToolChoice::Required) => (Some("ANY"), None),
        Some(ToolChoice::Tool(name)) if req.tools.iter().any(|t| t.name == *name) => {
            (Some("ANY"), Some(name))
        }
        Some(ToolChoice::Tool(name)) => {
            let msg = format!("function {name:?} is not declared in tools");
            return Err(ChatError::invalid("tool_choice", msg));
        }
    };
    j.key("tools").arr(|j| {
        j.obj(|j| {
            j.key("functionDeclarations").arr(|j| {
                for t in &req.tools {
                    j.obj(|j| {
                        j.put("name", &t.name);
                        j.opt(
                            "description",
                            t.description.as_deref().filter(|d| !d.is_empty()),
                        );
                        match t.kind {
                            ToolKind::Function => {
                                let cleaned = t.parameters.as_deref().and_then(schema::parameters);
                                j.opt("parameters", cleaned.as_ref());
                            }
                            ToolKind::Custom => j.raw("parameters", CUSTOM_PARAMETERS),
                        }
                    });
                }
            })
        })
    });
    if let Some(mode) = mode {
        j.key("toolConfig").obj(|j| {
            j.key("functionCallingConfig").obj(|j| {
                j.put("mode", mode);
                if let Some(name) = only {
                    j.key("allowedFunctionNames").arr(|j| j.val(name));
                }
            })
        });
    }
    Ok(())
}

/// `generationConfig`, left out when it would be empty.
fn generation_config(
    j: &mut J,
    req: &Request<'_>,
    opts: &VendorOptions,
    include_reasoning: bool,
    google: Option<GoogleThinking<'_>>,
) -> Result<(), ChatError> {
    if req.n.is_some_and(|n| n > 1) {
        let msg = "Gemini answers are translated with one candidate: n must be 1";
        return Err(ChatError::invalid("n", msg));
    }
    // Anthropic clients that turn thinking on expect thinking blocks back.
    let wants_text = req.extra.origin == Family::Anthropic;
    let (mut budget, mut include) = match req.reasoning {
        None => (None, None),
        Some(ReasoningConfig::Effort(e)) => (Some(e.budget() as i64), Some(false)),
        Some(ReasoningConfig::Budget(n)) => (
            Some(i64::try_from(n).unwrap_or(i64::MAX)),
            Some(wants_text && n > 0),
        ),
        Some(ReasoningConfig::Dynamic) => (Some(-1), Some(wants_text)),
    };
    if include_reasoning {
        include = Some(true);
    }
    let mut level = None;
    if let Some(g) = google {
        budget = g.thinking_budget.or(budget);
        include = g.include_thoughts.or(include);
        if let Some(l) = g.thinking_level {
            // Gemini 3 rejects a level and a budget together.
            (budget, level) = (None, Some(l));
        }
    }
    let s = &req.sampling;
    let start = j.0.len();
    j.key("generationConfig").obj(|j| {
        j.opt(
            "maxOutputTokens",
            req.max_tokens.or(opts.default_max_tokens),
        );
        j.opt("temperature", s.temperature);
        j.opt("topP", s.top_p);
        j.opt("topK", s.top_k);
        j.opt("presencePenalty", s.presence_penalty);
        j.opt("frequencyPenalty", s.frequency_penalty);
        j.opt("seed", s.seed);
        j.opt("candidateCount", req.n);
        if s.stop.iter().any(|x| !x.is_empty()) {
            j.key("stopSequences").arr(|j| {
                s.stop
                    .iter()
                    .filter(|x| !x.is_empty())
                    .for_each(|x| j.val(x))
            });
        }
        if let Some(f @ (ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })) =
            &req.response_format
        {
            j.put("responseMimeType", "application/json");
            if let ResponseFormat::JsonSchema {
                schema: Some(schema),
                ..
            } = f
            {
                j.opt("responseSchema", schema::response_schema(schema).as_ref());
            }
        }
        if budget.is_some() || include.is_some() || level.is_some() {
            j.key("thinkingConfig").obj(|j| {
                j.opt("thinkingBudget", budget);
                j.opt("includeThoughts", include);
                j.opt("thinkingLevel", level.as_deref());
            });
        }
    });
    if j.0.ends_with(b"{}") {
        j.0.truncate(start);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
