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
    ReasoningConfig, Request, ResponseFormat, Role, StreamDecoder, ToolChoice, ToolKind,
    VendorOptions,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};
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
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, &body(req, opts)?)
            .map_err(|e| ChatError::bad_request(format!("request cannot be encoded: {e}")))?;
        Ok(Bytes::from(out))
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'r> {
    contents: Vec<Content<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'r>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolSet<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    generation_config: GenerationConfig<'r>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content: Option<Cow<'r, str>>,
    #[serde(flatten)]
    extra: Extra<'r>,
}

#[derive(Serialize)]
struct Content<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: Vec<OutPart<'r>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutPart<'r> {
    Part(GPart<'r>),
    /// A Gemini part the model does not know, replayed as it came.
    Raw(&'r RawValue),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GPart<'r> {
    #[serde(flatten)]
    data: Payload<'r>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    thought: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'r str>,
    /// A function call's own Gemini signature, placed by `contents`.
    #[serde(skip)]
    call_signature: Option<&'r str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Payload<'r> {
    Text(Cow<'r, str>),
    #[serde(rename_all = "camelCase")]
    InlineData {
        mime_type: Cow<'r, str>,
        data: &'r str,
    },
    #[serde(rename_all = "camelCase")]
    FileData {
        mime_type: Cow<'r, str>,
        file_uri: &'r str,
    },
    FunctionCall {
        name: &'r str,
        args: Obj<'r>,
    },
    FunctionResponse {
        name: &'r str,
        response: Obj<'r>,
    },
}

fn part(data: Payload<'_>) -> OutPart<'_> {
    OutPart::Part(GPart {
        data,
        thought: false,
        thought_signature: None,
        call_signature: None,
    })
}

/// A JSON object Gemini requires (`args`, `response`); plain text where an
/// object is needed is wrapped (`error` is Gemini's key for a failed call,
/// `content` the one the old translator used, `input` a custom tool's).
#[derive(Serialize)]
#[serde(untagged)]
enum Obj<'r> {
    Raw(&'r RawValue),
    Owned(Box<RawValue>),
    Content { content: Cow<'r, str> },
    Error { error: Cow<'r, str> },
    Input { input: Cow<'r, str> },
    Empty {},
}

/// `text` as a JSON object, if it is one.
fn object_in(text: &str) -> Option<&RawValue> {
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSet<'r> {
    function_declarations: Vec<Declaration<'r>>,
}

#[derive(Serialize)]
struct Declaration<'r> {
    name: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    thinking_config: ThinkingConfig<'r>,
}

#[derive(Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<Cow<'r, str>>,
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// Fields of a Gemini-origin request this model does not know; keys this
/// adapter writes itself are dropped rather than duplicated.
struct Extra<'r>(&'r [(Cow<'r, str>, Cow<'r, RawValue>)]);

const OWN_KEYS: [&str; 6] = [
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "cachedContent",
];

impl Serialize for Extra<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self
            .0
            .iter()
            .filter(|(k, _)| !OWN_KEYS.contains(&k.as_ref()))
        {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

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

fn body<'r>(req: &'r Request<'_>, opts: &VendorOptions) -> Result<Body<'r>, ChatError> {
    let contents = contents(req)?;
    if contents.is_empty() {
        return Err(ChatError::invalid(
            "messages",
            "at least one user or assistant message with content is required",
        ));
    }
    let (google, include_reasoning) = openai_hints(req);
    let (tools, tool_config) = tools(req)?;
    let extra = match req.extra.origin {
        Family::Gemini => &req.extra.fields[..],
        _ => &[],
    };
    Ok(Body {
        contents,
        system_instruction: system(req)?,
        tools,
        tool_config,
        generation_config: generation_config(req, opts, include_reasoning, google.thinking_config)?,
        cached_content: google.cached_content,
        extra: Extra(extra),
    })
}

fn system<'r>(req: &'r Request<'_>) -> Result<Option<Content<'r>>, ChatError> {
    let mut text: Option<Cow<'r, str>> = None;
    for part in &req.system {
        let Part::Text(t) = part else {
            let msg = "Gemini takes only text in system instructions";
            return Err(ChatError::invalid("system", msg));
        };
        text = match text {
            _ if t.text.is_empty() => text,
            None => Some(Cow::Borrowed(&t.text)),
            Some(prev) => Some(Cow::Owned(format!("{prev}\n\n{}", t.text))),
        };
    }
    let parts = |t| vec![part(Payload::Text(t))];
    Ok(text.map(|t| Content {
        role: None,
        parts: parts(t),
    }))
}

fn contents<'r>(req: &'r Request<'_>) -> Result<Vec<Content<'r>>, ChatError> {
    // functionResponse needs the function's name; tool results only have
    // the call id: names are remembered from the calls before them.
    let mut names: HashMap<&'r str, &'r str> = HashMap::new();
    let mut out: Vec<Content<'r>> = Vec::with_capacity(req.turns.len());
    for turn in &req.turns {
        let role = match turn.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::with_capacity(turn.parts.len());
        for p in &turn.parts {
            encode_part(p, &mut parts, &mut names)?;
        }
        match out.last_mut() {
            _ if parts.is_empty() => {}
            Some(last) if last.role == Some(role) => last.parts.extend(parts),
            _ => out.push(Content {
                role: Some(role),
                parts,
            }),
        }
    }
    // The first functionCall of a model turn carries the turn's signature
    // (its own Gemini one, else the placeholder); no other call carries one.
    for turn in out.iter_mut().filter(|c| c.role == Some("model")) {
        let mut first = true;
        for p in &mut turn.parts {
            let OutPart::Part(p) = p else { continue };
            if matches!(p.data, Payload::FunctionCall { .. }) {
                p.thought_signature = first.then(|| p.call_signature.unwrap_or(SKIP_SIGNATURE));
                first = false;
            }
        }
    }
    Ok(out)
}

fn encode_part<'r>(
    p: &'r Part<'_>,
    out: &mut Vec<OutPart<'r>>,
    names: &mut HashMap<&'r str, &'r str>,
) -> Result<(), ChatError> {
    match p {
        Part::Text(t) if !t.text.is_empty() => {
            out.push(part(Payload::Text(Cow::Borrowed(&t.text))))
        }
        Part::Refusal(r) if !r.is_empty() => out.push(part(Payload::Text(Cow::Borrowed(r)))),
        Part::Text(_) | Part::Refusal(_) => {}
        Part::Media(m) => out.push(part(media(m)?)),
        Part::ToolCall(c) => {
            names.insert(&c.id, &c.name);
            let args = match c.kind {
                ToolKind::Custom => Obj::Input {
                    input: Cow::Borrowed(&c.arguments),
                },
                ToolKind::Function if c.arguments.trim().is_empty() => Obj::Empty {},
                ToolKind::Function => object_in(&c.arguments).map_or_else(
                    || {
                        tracing::debug!(call = %c.id, "tool call arguments are not a JSON object; sending {{}}");
                        Obj::Empty {}
                    },
                    Obj::Raw,
                ),
            };
            let signature = c.signature.as_ref().filter(|s| s.family == Family::Gemini);
            let mut call = part(Payload::FunctionCall {
                name: &c.name,
                args,
            });
            if let OutPart::Part(g) = &mut call {
                g.call_signature = signature.map(|s| s.value.as_ref());
            }
            out.push(call);
        }
        Part::ToolResult(r) => {
            let name = names.get(r.call_id.as_ref()).copied().or(r.name.as_deref());
            let name = name.ok_or_else(|| {
                ChatError::invalid(
                    "messages",
                    format!("no earlier tool call has id {:?}; Gemini needs the function name of a tool result", r.call_id),
                )
            })?;
            let texts: Vec<&'r str> = (r.content.iter())
                .filter_map(|p| match p {
                    Part::Text(t) => Some(t.text.as_ref()),
                    _ => None,
                })
                .collect();
            // Gemini wants an object: a JSON object result is passed as is.
            let wrap = |text| match r.is_error {
                true => Obj::Error { error: text },
                false => Obj::Content { content: text },
            };
            let response = match texts.as_slice() {
                [one] => object_in(one).map_or(wrap(Cow::Borrowed(one)), Obj::Raw),
                _ => match serde_json::from_str::<Box<RawValue>>(&texts.concat()) {
                    Ok(raw) if raw.get().starts_with('{') => Obj::Owned(raw),
                    _ => wrap(Cow::Owned(texts.concat())),
                },
            };
            out.push(part(Payload::FunctionResponse { name, response }));
            // Images a tool returned follow as parts of the same turn.
            for p in &r.content {
                if let Part::Media(m) = p {
                    out.push(part(media(m)?));
                }
            }
        }
        Part::Reasoning(r) => {
            let Some(sig) = r.signature.as_ref().filter(|s| s.family == Family::Gemini) else {
                tracing::debug!("reasoning without a Gemini signature is not sent to Gemini");
                return Ok(());
            };
            // A signature Gemini put on a non-thought part goes back on the
            // text before it (see `decode`).
            if let Some(OutPart::Part(prev)) = out.last_mut().filter(|_| r.text.is_empty()) {
                if matches!(prev.data, Payload::Text(_))
                    && !prev.thought
                    && prev.thought_signature.is_none()
                {
                    prev.thought_signature = Some(&sig.value);
                    return Ok(());
                }
            }
            out.push(OutPart::Part(GPart {
                data: Payload::Text(Cow::Borrowed(&r.text)),
                thought: !r.text.is_empty(),
                thought_signature: Some(&sig.value),
                call_signature: None,
            }));
        }
        Part::Opaque { family, raw } if *family == Family::Gemini => out.push(OutPart::Raw(raw)),
        Part::Opaque { family, .. } => {
            tracing::debug!(
                from = family.as_str(),
                "content block with no Gemini equivalent dropped"
            );
        }
    }
    Ok(())
}

/// Inline bytes or a URL / file reference Gemini fetches itself.
fn media<'r>(m: &'r Media<'_>) -> Result<Payload<'r>, ChatError> {
    let default = match m.kind {
        MediaKind::Image => "image/jpeg",
        MediaKind::Audio => "audio/wav",
        MediaKind::Document => "application/pdf",
    };
    let mime = |uri: Option<&str>| -> Cow<'r, str> {
        match (&m.mime, m.name.as_deref().and_then(mime_from_extension)) {
            (Some(mime), _) if !mime.is_empty() => Cow::Borrowed(mime),
            (_, Some(by_name)) => Cow::Borrowed(by_name),
            _ => Cow::Borrowed(uri.and_then(mime_from_extension).unwrap_or(default)),
        }
    };
    let bad = |msg: &str| Err(ChatError::invalid("messages", msg));
    match &m.source {
        MediaSource::Base64 { data } => Ok(Payload::InlineData {
            mime_type: mime(None),
            data,
        }),
        MediaSource::Url(url) => {
            if let Some(rest) = url.strip_prefix("data:") {
                let Some((header, data)) = rest.split_once(',') else {
                    return bad("malformed data URL");
                };
                let Some(header) = header.strip_suffix(";base64") else {
                    return bad("data URLs must be base64-encoded");
                };
                // Parameters such as ";charset=utf-8" are not part of the type.
                let mime_type = match header.split(';').next().unwrap_or("").trim() {
                    "" => mime(None),
                    declared => Cow::Borrowed(declared),
                };
                return Ok(Payload::InlineData { mime_type, data });
            }
            if !is_http(url) {
                return bad("media URLs must be data: URLs or http(s) URLs");
            }
            Ok(Payload::FileData {
                mime_type: mime(Some(url)),
                file_uri: url,
            })
        }
        MediaSource::FileId {
            family: Family::Gemini,
            id,
        } => Ok(Payload::FileData {
            mime_type: mime(Some(id)),
            file_uri: id,
        }),
        MediaSource::FileId { family, .. } => bad(&format!(
            "{} file ids cannot be resolved for Gemini; send the file's data",
            family.as_str()
        )),
    }
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

/// The declarations, and the `toolConfig` for `tool_choice` (small and
/// rare enough for `json!`).
type Tools<'r> = (Vec<ToolSet<'r>>, Option<Value>);

fn tools<'r>(req: &'r Request<'_>) -> Result<Tools<'r>, ChatError> {
    if req.tools.is_empty() {
        // Gemini has nothing to choose from: tool_choice says nothing.
        return Ok((Vec::new(), None));
    }
    let function_declarations = (req.tools.iter())
        .map(|t| Declaration {
            name: &t.name,
            description: t.description.as_deref().filter(|d| !d.is_empty()),
            parameters: match t.kind {
                ToolKind::Function => t.parameters.as_deref().and_then(schema::parameters),
                ToolKind::Custom => Some(json!({
                    "type": "object",
                    "properties": {"input": {"type": "string", "description": "The tool's freeform input."}},
                    "required": ["input"],
                })),
            },
        })
        .collect();
    let mode = |mode: &str| json!({ "functionCallingConfig": { "mode": mode } });
    let tool_config = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Auto) => Some(mode("AUTO")),
        Some(ToolChoice::None) => Some(mode("NONE")),
        Some(ToolChoice::Required) => Some(mode("ANY")),
        Some(ToolChoice::Tool(name)) if req.tools.iter().any(|t| t.name == *name) => {
            Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}))
        }
        Some(ToolChoice::Tool(name)) => {
            let msg = format!("function {name:?} is not declared in tools");
            return Err(ChatError::invalid("tool_choice", msg));
        }
    };
    Ok((
        vec![ToolSet {
            function_declarations,
        }],
        tool_config,
    ))
}

fn generation_config<'r>(
    req: &'r Request<'_>,
    opts: &VendorOptions,
    include_reasoning: bool,
    google: Option<GoogleThinking<'r>>,
) -> Result<GenerationConfig<'r>, ChatError> {
    if req.n.is_some_and(|n| n > 1) {
        let msg = "Gemini answers are translated with one candidate: n must be 1";
        return Err(ChatError::invalid("n", msg));
    }
    let s = &req.sampling;
    let mut gc = GenerationConfig {
        max_output_tokens: req.max_tokens.or(opts.default_max_tokens),
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        presence_penalty: s.presence_penalty,
        frequency_penalty: s.frequency_penalty,
        seed: s.seed,
        candidate_count: req.n,
        stop_sequences: s
            .stop
            .iter()
            .map(|x| x.as_ref())
            .filter(|x| !x.is_empty())
            .collect(),
        ..GenerationConfig::default()
    };
    if let Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }) =
        &req.response_format
    {
        gc.response_mime_type = Some("application/json");
    }
    if let Some(ResponseFormat::JsonSchema {
        schema: Some(schema),
        ..
    }) = &req.response_format
    {
        gc.response_schema = schema::response_schema(schema);
    }
    let tc = &mut gc.thinking_config;
    // Anthropic clients that turn thinking on expect thinking blocks back.
    let wants_text = req.extra.origin == Family::Anthropic;
    (tc.thinking_budget, tc.include_thoughts) = match req.reasoning {
        None => (None, None),
        Some(ReasoningConfig::Effort(e)) => (Some(e.budget() as i64), Some(false)),
        Some(ReasoningConfig::Budget(n)) => (
            Some(i64::try_from(n).unwrap_or(i64::MAX)),
            Some(wants_text && n > 0),
        ),
        Some(ReasoningConfig::Dynamic) => (Some(-1), Some(wants_text)),
    };
    if include_reasoning {
        tc.include_thoughts = Some(true);
    }
    if let Some(g) = google {
        tc.thinking_budget = g.thinking_budget.or(tc.thinking_budget);
        tc.include_thoughts = g.include_thoughts.or(tc.include_thoughts);
        if let Some(level) = g.thinking_level {
            // Gemini 3 rejects a level and a budget together.
            (tc.thinking_budget, tc.thinking_level) = (None, Some(level));
        }
    }
    Ok(gc)
}

#[cfg(test)]
mod tests;
