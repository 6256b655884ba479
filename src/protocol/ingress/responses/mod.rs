//! OpenAI Responses clients (`POST /v1/responses`): requests decoded into
//! the chat model, answers, stream events and errors encoded back
//! ([`encode`]) in the Responses shapes.
//!
//! Decisions worth knowing:
//! - No server-side state: `previous_response_id`, `conversation` and
//!   `item_reference` items are refused (400 naming the field); `store` is
//!   accepted and nothing is stored (the SDKs default to `store: true`).
//! - `instructions` and `system`/`developer` messages become
//!   `Request.system`; consecutive items of one role form one turn
//!   (reasoning, text and calls of one assistant step; call outputs and the
//!   user message after them).
//! - Freeform (`type: "custom"`) tools go to vendors as functions with one
//!   string parameter `input` (no translated vendor has freeform tools;
//!   OpenAI itself is reached by pass-through). `Tool.format` keeps the
//!   custom tool's format (or `{"type":"text"}`), which is how the answer
//!   side knows to turn such a call back into a `custom_tool_call`.
//! - `encrypted_content` is a codec owned by this adapter: what the gateway
//!   emits is `gw1:<family>:<s|r|c>:<value>` (a signature, redacted
//!   reasoning, or a Gemini function call's thought signature, carried in a
//!   reasoning item right after the call), sent back only to that family;
//!   anything else is OpenAI's own and dropped on translated routes.
//! - Server-side tools (`web_search`, `file_search`, …) cannot run on a
//!   translated vendor: dropped with a debug line. Unknown top-level fields
//!   are ignored; `include`, `metadata` and `store` are kept as extras of
//!   this family (no vendor egress writes them).

mod encode;

use crate::protocol::chat::{
    data_url_str, is_http, Answer, ChatError, Effort, Extras, Family, Ingress, Media, MediaKind,
    MediaSource, Part, ReasoningConfig, Request, ResponseFormat, Role, Signature, Str,
    StreamEncoder, Text, Tool, ToolCall, ToolChoice, ToolKind, ToolResult, Turn,
};
use crate::protocol::json::{s, without_position, OneOrList, S};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

pub struct OpenAiResponses;

impl Ingress for OpenAiResponses {
    fn family(&self) -> Family {
        Family::OpenAiResponses
    }
    fn decode_request<'a>(&self, body: &'a [u8]) -> Result<Request<'a>, ChatError> {
        // Text when the UTF-8 is valid: checked once, not per string.
        let top: Result<Top<'a>, _> = match std::str::from_utf8(body) {
            Ok(text) => {
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
            }
            Err(_) => {
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
            }
        };
        let top = top.map_err(|e| {
            let msg = without_position(&e.inner().to_string()).to_string();
            match e.path().to_string().as_str() {
                "." | "" => ChatError::bad_request(format!(
                    "request body is not a JSON Responses request: {msg}"
                )),
                path => ChatError::invalid(path, msg),
            }
        })?;
        request(top)
    }
    fn encode_answer(&self, answer: &Answer<'_>, model: &str) -> Bytes {
        encode::answer(answer, model, &encode::Echo::default())
    }
    fn encode_answer_for(
        &self,
        req: Option<&Request<'_>>,
        answer: &Answer<'_>,
        model: &str,
    ) -> Bytes {
        encode::answer(answer, model, &encode::Echo::of(req))
    }
    fn stream_encoder(&self, model: &str, _include_usage: bool) -> Box<dyn StreamEncoder> {
        Box::new(encode::EventEncoder::new(model, encode::Echo::default()))
    }
    fn stream_encoder_for(
        &self,
        req: Option<&Request<'_>>,
        model: &str,
        _include_usage: bool,
    ) -> Box<dyn StreamEncoder> {
        Box::new(encode::EventEncoder::new(model, encode::Echo::of(req)))
    }
    fn encode_error(&self, err: &ChatError) -> Bytes {
        encode::error_body(err)
    }
    fn stream_error(&self, err: &ChatError) -> Bytes {
        encode::stream_error(err)
    }
}

// ---------------------------------------------------------------- wire types

#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct Top<'a> {
    model: Option<S<'a>>,
    input: Option<OneOrList<'a, Vec<Item<'a>>>>,
    instructions: Option<S<'a>>,
    tools: Option<Vec<ToolW<'a>>>,
    tool_choice: Option<&'a RawValue>,
    parallel_tool_calls: Option<bool>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    reasoning: Option<ReasoningW<'a>>,
    text: Option<TextW<'a>>,
    stream: Option<bool>,
    include: Option<Vec<S<'a>>>,
    store: Option<bool>,
    previous_response_id: Option<S<'a>>,
    conversation: Option<&'a RawValue>,
    user: Option<S<'a>>,
    safety_identifier: Option<S<'a>>,
    metadata: Option<&'a RawValue>,
    background: Option<bool>,
}

/// One input item: every item type's fields, all optional (`type` is
/// optional for messages).
#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct Item<'a> {
    #[serde(rename = "type")]
    kind: Option<S<'a>>,
    role: Option<S<'a>>,
    content: Option<OneOrList<'a, Vec<PartW<'a>>>>,
    call_id: Option<S<'a>>,
    name: Option<S<'a>>,
    arguments: Option<S<'a>>,
    input: Option<S<'a>>,
    output: Option<OneOrList<'a, Vec<PartW<'a>>>>,
    summary: Option<Vec<PartW<'a>>>,
    encrypted_content: Option<S<'a>>,
    namespace: Option<S<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct PartW<'a> {
    #[serde(rename = "type")]
    kind: Option<S<'a>>,
    text: Option<S<'a>>,
    refusal: Option<S<'a>>,
    image_url: Option<S<'a>>,
    file_id: Option<S<'a>>,
    detail: Option<S<'a>>,
    file_data: Option<S<'a>>,
    file_url: Option<S<'a>>,
    filename: Option<S<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct ToolW<'a> {
    #[serde(rename = "type")]
    kind: Option<S<'a>>,
    name: Option<S<'a>>,
    description: Option<S<'a>>,
    parameters: Option<&'a RawValue>,
    strict: Option<bool>,
    format: Option<&'a RawValue>,
    /// A `namespace` tool's members.
    tools: Option<Vec<ToolW<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct ReasoningW<'a> {
    effort: Option<S<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct TextW<'a> {
    format: Option<FormatW<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct FormatW<'a> {
    #[serde(rename = "type")]
    kind: Option<S<'a>>,
    name: Option<S<'a>>,
    schema: Option<&'a RawValue>,
    strict: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct NamedW<'a> {
    #[serde(rename = "type")]
    kind: Option<S<'a>>,
    name: Option<S<'a>>,
}

// ---------------------------------------------------------------- request

/// The parameters a freeform tool gets at vendors without freeform tools.
const INPUT_SCHEMA: &str = r#"{"type":"object","properties":{"input":{"type":"string","description":"The tool's freeform input."}},"required":["input"]}"#;
/// `Tool.format` of a freeform tool sent without a format of its own.
const TEXT_FORMAT: &str = r#"{"type":"text"}"#;

fn static_raw(json: &'static str) -> Cow<'static, RawValue> {
    // Both constants are valid JSON.
    Cow::Owned(RawValue::from_string(json.to_string()).unwrap_or_default())
}

fn need<'a>(v: Option<S<'a>>, param: impl FnOnce() -> String) -> Result<Str<'a>, ChatError> {
    match v {
        Some(S(x)) if !x.is_empty() => Ok(x),
        _ => {
            let p = param();
            let field = p.rsplit('.').next().unwrap_or("").to_string();
            Err(ChatError::invalid(p, format!("`{field}` is required")))
        }
    }
}

fn raw_extra<'a>(req: &mut Request<'a>, key: &'static str, v: Option<&'a RawValue>) {
    if let Some(v) = v {
        req.extra
            .fields
            .push((Cow::Borrowed(key), Cow::Borrowed(v)));
    }
}

fn request(top: Top<'_>) -> Result<Request<'_>, ChatError> {
    if top.previous_response_id.is_some() {
        return Err(ChatError::invalid(
            "previous_response_id",
            "this gateway keeps no responses: previous_response_id is not supported; send the whole conversation in `input` (with `store: false`)",
        ));
    }
    if top.conversation.is_some() {
        return Err(ChatError::invalid(
            "conversation",
            "this gateway keeps no conversations: send the whole conversation in `input`",
        ));
    }
    if top.background == Some(true) {
        return Err(ChatError::invalid(
            "background",
            "background responses are not supported by this gateway",
        ));
    }
    let mut req = Request::new(s(top.model).unwrap_or_default(), Family::OpenAiResponses);
    req.extra = Extras::new(Family::OpenAiResponses);
    if let Some(i) = s(top.instructions).filter(|i| !i.is_empty()) {
        req.system.push(Part::Text(Text::plain(i)));
    }
    match top.input {
        None => return Err(ChatError::invalid("input", "`input` is required")),
        Some(OneOrList::One(t)) => req.turns.push(Turn {
            role: Role::User,
            parts: vec![Part::Text(Text::plain(t.0))],
        }),
        Some(OneOrList::List(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                input_item(&mut req, item, i)?;
            }
        }
    }
    let mut namespaces: Vec<String> = Vec::new();
    for (i, t) in top.tools.unwrap_or_default().into_iter().enumerate() {
        if t.kind.as_ref().is_some_and(|k| k.0 == "namespace") {
            // Vendors have no namespaces: members become `<ns>__<name>`
            // (the answer side splits such names back).
            let ns = need(t.name, || format!("tools[{i}].name"))?;
            for (j, member) in t.tools.unwrap_or_default().into_iter().enumerate() {
                if let Some(mut m) = tool(member, i)? {
                    m.name = Cow::Owned(format!("{ns}{}{}", encode::NS_SEP, m.name));
                    req.tools.push(m);
                } else {
                    tracing::debug!(namespace = %ns, member = j, "namespace member dropped");
                }
            }
            namespaces.push(ns.into_owned());
        } else if let Some(t) = tool(t, i)? {
            req.tools.push(t);
        }
    }
    if let Ok(v) = serde_json::value::to_raw_value(&namespaces) {
        req.extra
            .fields
            .push((Cow::Borrowed("namespaces"), Cow::Owned(v)));
    }
    if let Some(tc) = top.tool_choice {
        req.tool_choice = tool_choice(tc)?;
    }
    req.parallel_tool_calls = top.parallel_tool_calls;
    req.max_tokens = top.max_output_tokens;
    req.sampling.temperature = top.temperature;
    req.sampling.top_p = top.top_p;
    if let Some(e) = top.reasoning.and_then(|r| r.effort) {
        let effort = Effort::parse(&e.0).ok_or_else(|| {
            ChatError::invalid(
                "reasoning.effort",
                format!("unknown reasoning effort '{}'", e.0),
            )
        })?;
        req.reasoning = Some(ReasoningConfig::Effort(effort));
    }
    if let Some(f) = top.text.and_then(|t| t.format) {
        req.response_format = Some(match f.kind.as_ref().map(|k| k.0.as_ref()) {
            Some("text") => ResponseFormat::Text,
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => ResponseFormat::JsonSchema {
                name: s(f.name),
                schema: f.schema.map(Cow::Borrowed),
                strict: f.strict,
            },
            _ => {
                return Err(ChatError::invalid(
                    "text.format.type",
                    "text.format.type must be text, json_object or json_schema",
                ))
            }
        });
    }
    req.stream = top.stream.unwrap_or(false);
    req.include_usage = true;
    req.user = s(top.safety_identifier).or(s(top.user));
    // Kept for the answer side (and for no vendor: no egress speaks this
    // family): what `include` asked for, and what the SDK echoes.
    if let Some(inc) = top.include {
        let list: Vec<&str> = inc.iter().map(|x| x.0.as_ref()).collect();
        if let Ok(v) = serde_json::value::to_raw_value(&list) {
            req.extra
                .fields
                .push((Cow::Borrowed("include"), Cow::Owned(v)));
        }
    }
    raw_extra(&mut req, "metadata", top.metadata);
    let _ = top.store;
    Ok(req)
}

fn push<'a>(req: &mut Request<'a>, role: Role, part: Part<'a>) {
    match req.turns.last_mut() {
        Some(last) if last.role == role => last.parts.push(part),
        _ => req.turns.push(Turn {
            role,
            parts: vec![part],
        }),
    }
}

fn input_item<'a>(req: &mut Request<'a>, item: Item<'a>, i: usize) -> Result<(), ChatError> {
    let p = |f: &str| format!("input[{i}].{f}");
    let kind = item
        .kind
        .as_ref()
        .map(|k| k.0.as_ref())
        .unwrap_or("message");
    match kind {
        "message" => {
            let role = need(item.role, || p("role"))?;
            let allowed = match role.as_ref() {
                "user" => Allowed::User,
                "assistant" => Allowed::Assistant,
                "system" | "developer" => Allowed::Text,
                other => {
                    return Err(ChatError::invalid(
                        p("role"),
                        format!("message role '{other}' is not supported"),
                    ))
                }
            };
            let parts = content(item.content, &p("content"), allowed)?;
            for part in parts {
                match allowed {
                    Allowed::Text => req.system.push(part),
                    Allowed::User => push(req, Role::User, part),
                    Allowed::Assistant => push(req, Role::Assistant, part),
                }
            }
        }
        "function_call" | "custom_tool_call" => {
            let custom = kind == "custom_tool_call";
            let id = need(item.call_id, || p("call_id"))?;
            let mut name = need(item.name, || p("name"))?;
            if let Some(ns) = s(item.namespace).filter(|n| !n.is_empty()) {
                name = Cow::Owned(format!("{ns}{}{name}", encode::NS_SEP));
            }
            let arguments = if custom {
                // Sent to vendors as a function with one `input` parameter.
                let input = s(item.input).unwrap_or_default();
                Cow::Owned(serde_json::json!({ "input": input }).to_string())
            } else {
                s(item.arguments).unwrap_or_default()
            };
            push(
                req,
                Role::Assistant,
                Part::ToolCall(ToolCall {
                    id,
                    name,
                    kind: ToolKind::Function,
                    arguments,
                    signature: None,
                }),
            );
        }
        "function_call_output" | "custom_tool_call_output" => {
            let call_id = need(item.call_id, || p("call_id"))?;
            let content = match item.output {
                None => Vec::new(),
                Some(o) => content(Some(o), &p("output"), Allowed::User)?,
            };
            push(
                req,
                Role::User,
                Part::ToolResult(ToolResult {
                    call_id,
                    name: None,
                    content,
                    is_error: false,
                    cache: None,
                }),
            );
        }
        "reasoning" => {
            let mut text: Option<Str<'a>> = None;
            let pieces = item.summary.into_iter().flatten();
            let content = match item.content {
                Some(OneOrList::List(l)) => l,
                _ => Vec::new(),
            };
            for piece in pieces.chain(content).filter_map(|x| s(x.text)) {
                match &mut text {
                    None => text = Some(piece),
                    Some(t) => {
                        // Summary parts are paragraphs.
                        t.to_mut().push_str("\n\n");
                        t.to_mut().push_str(&piece);
                    }
                }
            }
            let (signature, redacted) = match s(item.encrypted_content).map(decode_encrypted) {
                // A Gemini thought signature of the call before it.
                Some(Encrypted::Call(sig)) => {
                    let call = (req.turns.last_mut())
                        .filter(|t| t.role == Role::Assistant)
                        .and_then(|t| {
                            t.parts.iter_mut().rev().find_map(|p| match p {
                                Part::ToolCall(c) => Some(c),
                                _ => None,
                            })
                        });
                    if let Some(c) = call {
                        c.signature = Some(sig);
                    }
                    return Ok(());
                }
                Some(Encrypted::Signature(sig)) => (Some(sig), None),
                Some(Encrypted::Redacted(sig)) => (None, Some(sig)),
                None => (None, None),
            };
            push(
                req,
                Role::Assistant,
                Part::reasoning(text.unwrap_or_default(), signature, redacted),
            );
        }
        "item_reference" => {
            return Err(ChatError::invalid(
                p("type"),
                "this gateway keeps no responses: item_reference cannot be resolved; send the item itself",
            ))
        }
        other => {
            return Err(ChatError::invalid(
                p("type"),
                format!("input item type '{other}' is not supported by this gateway"),
            ))
        }
    }
    Ok(())
}

/// What an `encrypted_content` carries.
enum Encrypted<'a> {
    /// A signature over the reasoning text (`s`).
    Signature(Signature<'a>),
    /// Redacted / encrypted reasoning (`r`; OpenAI's own is this).
    Redacted(Signature<'a>),
    /// The thought signature of the function call before the item (`c`).
    Call(Signature<'a>),
}

/// `gw1:<family>:<s|r|c>:<value>` -> that family's signature; anything
/// else is OpenAI's own encrypted reasoning.
fn decode_encrypted(e: Str<'_>) -> Encrypted<'_> {
    let parsed = e.strip_prefix("gw1:").and_then(|rest| {
        let mut it = rest.splitn(3, ':');
        let family = match it.next()? {
            "anthropic" => Family::Anthropic,
            "gemini" => Family::Gemini,
            "openai" => Family::OpenAi,
            _ => return None,
        };
        let kind = it.next()?.to_string();
        let value = it.next()?;
        let start = e.len() - value.len();
        Some((family, kind, start))
    });
    let Some((family, kind, start)) = parsed else {
        return Encrypted::Redacted(Signature::new(Family::OpenAiResponses, e));
    };
    let value = match e {
        Cow::Borrowed(b) => Cow::Borrowed(&b[start..]),
        Cow::Owned(o) => Cow::Owned(o[start..].to_string()),
    };
    let sig = Signature::new(family, value);
    match kind.as_str() {
        "r" => Encrypted::Redacted(sig),
        "c" => Encrypted::Call(sig),
        _ => Encrypted::Signature(sig),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Allowed {
    Text,
    User,
    Assistant,
}

fn content<'a>(
    c: Option<OneOrList<'a, Vec<PartW<'a>>>>,
    p: &str,
    allowed: Allowed,
) -> Result<Vec<Part<'a>>, ChatError> {
    let parts = match c {
        None => return Ok(Vec::new()),
        Some(OneOrList::One(t)) => return Ok(vec![Part::Text(Text::plain(t.0))]),
        Some(OneOrList::List(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let pp = format!("{p}[{j}]");
        let kind = need(part.kind.clone(), || format!("{pp}.type"))?;
        let ok = match kind.as_ref() {
            "input_text" | "output_text" | "text" => true,
            "refusal" => allowed == Allowed::Assistant,
            "input_image" | "input_file" => allowed == Allowed::User,
            _ => false,
        };
        if !ok {
            return Err(ChatError::invalid(
                format!("{pp}.type"),
                format!("content part type '{kind}' is not supported here"),
            ));
        }
        out.push(match kind.as_ref() {
            "refusal" => Part::Refusal(s(part.refusal).unwrap_or_default()),
            "input_image" => image(part, &pp)?,
            "input_file" => file(part, &pp)?,
            _ => Part::Text(Text::plain(need(part.text, || format!("{pp}.text"))?)),
        });
    }
    Ok(out)
}

fn media_source<'a>(
    url: Option<Str<'a>>,
    file_id: Option<Str<'a>>,
    path: String,
) -> Result<(Option<Str<'a>>, MediaSource<'a>), ChatError> {
    if let Some(id) = file_id {
        let src = MediaSource::FileId {
            family: Family::OpenAi,
            id,
        };
        return Ok((None, src));
    }
    let url =
        url.ok_or_else(|| ChatError::invalid(path.clone(), "a URL or file_id is required"))?;
    if let Some((mime, data)) = data_url_str(&url) {
        return Ok((Some(mime), MediaSource::Base64 { data }));
    }
    if is_http(&url) {
        return Ok((None, MediaSource::Url(url)));
    }
    Err(ChatError::invalid(
        path,
        "must be an http(s) URL or a base64 data URL",
    ))
}

fn image<'a>(part: PartW<'a>, pp: &str) -> Result<Part<'a>, ChatError> {
    let (mime, source) = media_source(
        s(part.image_url),
        s(part.file_id),
        format!("{pp}.image_url"),
    )?;
    Ok(Part::Media(Media {
        kind: MediaKind::Image,
        mime,
        source,
        name: None,
        detail: s(part.detail),
        cache: None,
    }))
}

fn file<'a>(part: PartW<'a>, pp: &str) -> Result<Part<'a>, ChatError> {
    let name = s(part.filename);
    let (mime, source) = match s(part.file_data) {
        // The SDKs send plain base64 as well as data URLs.
        Some(d) if !d.starts_with("data:") => (None, MediaSource::Base64 { data: d }),
        d => media_source(
            d.or(s(part.file_url)),
            s(part.file_id),
            format!("{pp}.file_data"),
        )?,
    };
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
        cache: None,
    }))
}

fn tool(t: ToolW<'_>, i: usize) -> Result<Option<Tool<'_>>, ChatError> {
    let kind = s(t.kind).unwrap_or(Cow::Borrowed("function"));
    let custom = match kind.as_ref() {
        "function" => false,
        "custom" => true,
        other => {
            tracing::debug!(
                tool = other,
                "server-side tool dropped: no translated vendor runs it"
            );
            return Ok(None);
        }
    };
    let name = need(t.name, || format!("tools[{i}].name"))?;
    Ok(Some(Tool {
        kind: ToolKind::Function,
        name,
        description: s(t.description),
        parameters: if custom {
            Some(static_raw(INPUT_SCHEMA))
        } else {
            t.parameters.map(Cow::Borrowed)
        },
        strict: if custom { None } else { t.strict },
        format: custom.then(|| {
            t.format
                .map_or_else(|| static_raw(TEXT_FORMAT), Cow::Borrowed)
        }),
        cache: None,
    }))
}

fn tool_choice(v: &RawValue) -> Result<Option<ToolChoice<'_>>, ChatError> {
    let bad = || {
        ChatError::invalid(
            "tool_choice",
            "tool_choice must be auto, none, required or name a function or custom tool",
        )
    };
    if let Ok(word) = serde_json::from_str::<S<'_>>(v.get()) {
        return match word.0.as_ref() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(bad()),
        };
    }
    let named: NamedW<'_> = serde_json::from_str(v.get()).map_err(|_| bad())?;
    match named.kind.as_ref().map(|k| k.0.as_ref()) {
        Some("function" | "custom") => Ok(Some(ToolChoice::Tool(need(named.name, || {
            "tool_choice.name".to_string()
        })?))),
        // `allowed_tools` and hosted-tool choices: the vendor decides.
        Some(_) => Ok(Some(ToolChoice::Auto)),
        None => Err(bad()),
    }
}

#[cfg(test)]
mod tests;
