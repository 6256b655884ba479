//! The chat model encoded as an Anthropic Messages request.
//!
//! What Anthropic requires and the model does not guarantee: strict
//! user/assistant alternation (same-role turns merged), a first user turn
//! (a "." placeholder), tool results first in their user turn, tool ids of
//! `[a-zA-Z0-9_-]` (others rewritten the same way wherever they appear), a
//! `max_tokens` (the client's, else the provider's default, else 4096), no
//! trailing whitespace in a final assistant (prefill) text, no empty text.
//!
//! Decisions: `response_format` becomes an instruction appended to the
//! system prompt (a forced tool would come back as a tool call no client
//! asked for). Reasoning becomes `thinking` (an effort through
//! `Effort::budget`, at least Anthropic's minimum of 1024; `max_tokens` is
//! raised by the budget when it does not exceed it); it is left off where
//! Anthropic would reject it: a forced tool choice, or a conversation that
//! continues an assistant turn or a tool loop whose last assistant turn
//! carries no Anthropic thinking. Sampling parameters are dropped with
//! thinking on and for API versions from 2026-10-21 (both reject them);
//! temperature and top_p are clamped to 0..1. Seed and penalties have no
//! equivalent and are dropped; freeform (custom) tools, audio, n > 1 and
//! other vendors' file ids are rejected (`ChatError::invalid`, the proxy
//! tries the next provider). Signatures, redacted thinking, opaque blocks,
//! `strict`, server tools (the extra field `tools`) and other extra fields
//! go only to Anthropic when the request came from an Anthropic client.

use crate::protocol::chat::{
    data_url, is_http, ChatError, Family, Media, MediaKind, MediaSource, Part, ReasoningConfig,
    Request, ResponseFormat, Role, Str, ToolChoice, ToolKind, VendorOptions,
};
use crate::protocol::json::empty_object;
use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Stand-in for a missing first user turn: Anthropic rejects empty text.
const PLACEHOLDER_USER_TEXT: &str = ".";
const JSON_OBJECT_INSTRUCTION: &str = "Respond with a single valid JSON object only, with no text before or after it and no code fences.";
const JSON_SCHEMA_INSTRUCTION: &str =
    "Respond with a single valid JSON value only, with no text before or after it and no code fences. It must conform to this JSON Schema";
/// Anthropic's smallest thinking budget.
const MIN_BUDGET: u64 = 1024;

type Cache<'r> = Option<&'r RawValue>;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum B<'r> {
    Text {
        text: Cow<'r, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Cache<'r>,
    },
    Image {
        source: Src<'r>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Cache<'r>,
    },
    Document {
        source: Src<'r>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'r str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Cache<'r>,
    },
    ToolUse {
        id: Cow<'r, str>,
        name: &'r str,
        input: &'r RawValue,
    },
    ToolResult {
        tool_use_id: Cow<'r, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<Content<'r>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Cache<'r>,
    },
    Thinking {
        thinking: &'r str,
        signature: &'r str,
    },
    RedactedThinking {
        data: &'r str,
    },
    #[serde(untagged)]
    Raw(&'r RawValue),
}

fn text<'r>(text: Cow<'r, str>, cache_control: Cache<'r>) -> B<'r> {
    B::Text {
        text,
        cache_control,
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Src<'r> {
    Base64 {
        media_type: &'r str,
        data: &'r str,
    },
    Text {
        media_type: &'static str,
        data: String,
    },
    Url {
        url: &'r str,
    },
    File {
        file_id: &'r str,
    },
}

/// A message's (or the system prompt's) content: one plain text block is
/// sent as a string, the shape Anthropic's docs and native clients use.
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'r> {
    Text(Cow<'r, str>),
    Blocks(Vec<B<'r>>),
}

fn collapse(mut blocks: Vec<B<'_>>) -> Content<'_> {
    match blocks.as_slice() {
        [B::Text {
            cache_control: None,
            ..
        }] => match blocks.pop() {
            Some(B::Text { text, .. }) => Content::Text(text),
            _ => Content::Blocks(blocks),
        },
        _ => Content::Blocks(blocks),
    }
}

#[derive(Serialize)]
struct TurnOut<'r> {
    role: Role,
    content: Content<'r>,
}

fn invalid(param: impl Into<String>, msg: impl Into<String>) -> ChatError {
    ChatError::invalid(param, msg)
}

/// Tool ids must match `^[a-zA-Z0-9_-]+$`: others get their bad characters
/// replaced and a 64-bit FNV-1a hash of the original appended (stable
/// across releases, so a rewritten id maps the same way on every turn; no
/// two ids collapse).
fn sanitize_id(id: &str) -> Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(ok) {
        return Cow::Borrowed(id);
    }
    let cleaned: String = id.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Cow::Owned(format!("{cleaned}_{hash:016x}"))
}

/// Tool-call arguments as the `input` object Anthropic requires: empty is
/// `{}`, and so is anything that is not a JSON object (logged; the request
/// still goes).
fn tool_input(args: &str) -> &RawValue {
    let trimmed = args.trim();
    if let Some(Ok(raw)) = trimmed
        .starts_with('{')
        .then(|| serde_json::from_str(trimmed))
    {
        return raw;
    }
    if !trimmed.is_empty() {
        tracing::debug!("tool call arguments are not a JSON object; sent as {{}}");
    }
    empty_object()
}

fn media<'r>(m: &'r Media<'_>, path: &dyn Fn() -> String) -> Result<B<'r>, ChatError> {
    let fail = |msg: String| Err(invalid(path(), msg));
    let (mime, data) = match &m.source {
        MediaSource::Base64 { data } => (m.mime.as_deref(), Some(data.as_ref())),
        MediaSource::Url(u) if u.starts_with("data:") => match data_url(u) {
            Some((mime, data)) => (Some(mime), Some(data)),
            None => return fail("only base64 data URLs are supported".into()),
        },
        _ => (m.mime.as_deref(), None),
    };
    let source = match (&m.source, data, m.kind) {
        (_, Some(_), MediaKind::Audio) => {
            return fail("audio input is not supported by Anthropic".into())
        }
        (_, Some(data), MediaKind::Image) => Src::Base64 {
            media_type: mime.unwrap_or("image/png"),
            data,
        },
        (_, Some(data), MediaKind::Document) => match mime.unwrap_or("application/pdf") {
            "application/pdf" => Src::Base64 {
                media_type: "application/pdf",
                data,
            },
            t if t.starts_with("text/") => match base64_decode(data) {
                Some(data) => Src::Text {
                    media_type: "text/plain",
                    data,
                },
                None => return fail("document data is not base64 UTF-8 text".into()),
            },
            t => {
                return fail(format!(
                "documents of type '{t}' are not supported by Anthropic (PDF and plain text are)"
            ))
            }
        },
        (MediaSource::Url(u), None, _) if is_http(u) => Src::Url { url: u },
        (MediaSource::Url(_), None, _) => {
            return fail("the URL must be http(s) or a base64 data URL".into())
        }
        (
            MediaSource::FileId {
                family: Family::Anthropic,
                id,
            },
            None,
            _,
        ) => Src::File { file_id: id },
        _ => return fail("a file id from another vendor cannot be sent to Anthropic".into()),
    };
    let cache_control = m.cache.as_deref();
    Ok(match m.kind {
        MediaKind::Image => B::Image {
            source,
            cache_control,
        },
        _ => B::Document {
            source,
            title: m.name.as_deref(),
            cache_control,
        },
    })
}

fn part<'r>(
    p: &'r Part<'_>,
    role: Role,
    out: &mut Vec<B<'r>>,
    path: &dyn Fn() -> String,
) -> Result<(), ChatError> {
    let anthropic = |f: Family| f == Family::Anthropic;
    match p {
        Part::Text(t) if !t.text.is_empty() => {
            out.push(text(Cow::Borrowed(&t.text), t.cache.as_deref()))
        }
        Part::Refusal(r) if !r.is_empty() => out.push(text(Cow::Borrowed(r), None)),
        Part::Media(m) => out.push(media(m, path)?),
        Part::ToolCall(c) => out.push(B::ToolUse {
            id: sanitize_id(&c.id),
            name: &c.name,
            input: tool_input(&c.arguments),
        }),
        Part::ToolResult(r) => {
            let mut blocks = Vec::with_capacity(r.content.len());
            for (k, p) in r.content.iter().enumerate() {
                if matches!(p, Part::Text(_) | Part::Media(_) | Part::Opaque { .. }) {
                    part(p, role, &mut blocks, &|| format!("{}.content[{k}]", path()))?;
                }
            }
            out.push(B::ToolResult {
                tool_use_id: sanitize_id(&r.call_id),
                content: (!blocks.is_empty()).then(|| collapse(blocks)),
                is_error: r.is_error,
                cache_control: r.cache.as_deref(),
            });
        }
        // Only Anthropic can check its signatures; it accepts no thinking
        // without one.
        Part::Reasoning(r) if role == Role::Assistant => match (&r.redacted, &r.signature) {
            (Some(d), _) if anthropic(d.family) => out.push(B::RedactedThinking { data: &d.value }),
            (_, Some(s)) if anthropic(s.family) => out.push(B::Thinking {
                thinking: &r.text,
                signature: &s.value,
            }),
            _ => {}
        },
        Part::Opaque {
            family: Family::Anthropic,
            raw,
        } => out.push(B::Raw(raw)),
        _ => {}
    }
    Ok(())
}

fn is_tool_result(b: &B<'_>) -> bool {
    matches!(b, B::ToolResult { .. })
}

/// The turns Anthropic accepts (see the module docs).
fn turns<'r>(req: &'r Request<'_>) -> Result<Vec<(Role, Vec<B<'r>>)>, ChatError> {
    let mut turns: Vec<(Role, Vec<B<'r>>)> = Vec::with_capacity(req.turns.len() + 1);
    for (i, t) in req.turns.iter().enumerate() {
        let mut blocks = Vec::with_capacity(t.parts.len());
        for (j, p) in t.parts.iter().enumerate() {
            part(p, t.role, &mut blocks, &|| {
                format!("messages[{i}].content[{j}]")
            })?;
        }
        match turns.last_mut() {
            _ if blocks.is_empty() => {}
            Some((role, last)) if *role == t.role => last.extend(blocks),
            _ => turns.push((t.role, blocks)),
        }
    }
    // A final assistant message is a prefill; Anthropic rejects it when it
    // ends in whitespace.
    if let Some((Role::Assistant, blocks)) = turns.last_mut() {
        if let Some(B::Text { text, .. }) = blocks.last_mut() {
            match text.trim_end() {
                "" => drop(blocks.pop()),
                t if t.len() < text.len() => *text = Cow::Owned(t.to_string()),
                _ => {}
            }
        }
        if blocks.is_empty() {
            turns.pop();
        }
    }
    if turns.first().is_none_or(|(r, _)| *r != Role::User) {
        turns.insert(
            0,
            (
                Role::User,
                vec![text(Cow::Borrowed(PLACEHOLDER_USER_TEXT), None)],
            ),
        );
    }
    // Tool results must open the user message that answers a tool_use.
    for (role, blocks) in turns.iter_mut() {
        if *role == Role::User
            && blocks
                .iter()
                .skip_while(|b| is_tool_result(b))
                .any(is_tool_result)
        {
            let (mut results, rest): (Vec<_>, Vec<_>) = blocks.drain(..).partition(is_tool_result);
            results.extend(rest);
            *blocks = results;
        }
    }
    Ok(turns)
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolOut<'r> {
    Function {
        name: &'r str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'r str>,
        input_schema: Cow<'r, RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Cache<'r>,
    },
    Raw(&'r RawValue),
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct SchemaHead<'a> {
    r#type: Option<&'a RawValue>,
    properties: Option<&'a RawValue>,
}

/// A function's parameters as Anthropic's `input_schema`: an object schema
/// with `type: object` (JSON Schema may omit it, Anthropic may not).
fn input_schema(params: Option<&RawValue>, i: usize) -> Result<Cow<'_, RawValue>, ChatError> {
    let bad = || {
        invalid(
            format!("tools[{i}].function.parameters"),
            "parameters must be an object schema",
        )
    };
    let Some(raw) = params.filter(|p| p.get() != "null") else {
        return owned_raw(r#"{"type":"object","properties":{}}"#.to_string()).ok_or_else(bad);
    };
    let head: SchemaHead = serde_json::from_str(raw.get()).map_err(|_| bad())?;
    match head.r#type.map(RawValue::get) {
        Some(r#""object""#) => Ok(Cow::Borrowed(raw)),
        Some(_) => Err(bad()),
        None => {
            // `{…}` -> `{"type":"object",["properties":{},]…}`
            let rest = raw
                .get()
                .trim_start()
                .strip_prefix('{')
                .ok_or_else(bad)?
                .trim_start();
            let props = if head.properties.is_none() {
                r#","properties":{}"#
            } else {
                ""
            };
            let comma = if rest.starts_with('}') { "" } else { "," };
            owned_raw(format!(r#"{{"type":"object"{props}{comma}{rest}"#)).ok_or_else(bad)
        }
    }
}

fn owned_raw(s: String) -> Option<Cow<'static, RawValue>> {
    RawValue::from_string(s).ok().map(Cow::Owned)
}

#[derive(Serialize)]
struct ChoiceOut<'r> {
    r#type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Serialize, Clone, Copy, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Thinking {
    Enabled { budget_tokens: u64 },
    Adaptive,
    Disabled,
}

#[derive(Serialize)]
struct Metadata<'r> {
    user_id: &'r str,
}

fn response_format_instruction(rf: Option<&ResponseFormat<'_>>) -> Option<String> {
    match rf? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(JSON_OBJECT_INSTRUCTION.to_string()),
        ResponseFormat::JsonSchema { name, schema, .. } => {
            let named = match name.as_deref().filter(|n| !n.is_empty()) {
                Some(n) => format!(" (named \"{n}\")"),
                None => String::new(),
            };
            let schema = schema.as_deref().map_or("{}", RawValue::get);
            Some(format!("{JSON_SCHEMA_INSTRUCTION}{named}:\n{schema}"))
        }
    }
}

pub(super) fn encode(
    req: &Request<'_>,
    model: &str,
    opts: &VendorOptions,
) -> Result<Bytes, ChatError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid("n", "only n=1 is supported by Anthropic"));
    }
    let same_family = req.extra.origin == Family::Anthropic;
    let extras = req.extra.for_family(Family::Anthropic);

    let mut system = Vec::with_capacity(req.system.len() + 1);
    for (i, p) in req.system.iter().enumerate() {
        match p {
            Part::Text(t) if t.text.is_empty() => {}
            Part::Text(t) => system.push(text(Cow::Borrowed(&t.text), t.cache.as_deref())),
            _ => {
                return Err(invalid(
                    format!("system[{i}]"),
                    "system content must be text for Anthropic",
                ))
            }
        }
    }
    if let Some(instruction) = response_format_instruction(req.response_format.as_ref()) {
        system.push(text(Cow::Owned(instruction), None));
    }
    let turns = turns(req)?;

    // Tools: functions, then Anthropic server tools kept from the client.
    let mut tools = Vec::with_capacity(req.tools.len());
    for (i, t) in req.tools.iter().enumerate() {
        if t.kind == ToolKind::Custom {
            return Err(invalid(
                format!("tools[{i}]"),
                "freeform (custom) tools are not supported by Anthropic",
            ));
        }
        tools.push(ToolOut::Function {
            name: &t.name,
            description: t.description.as_deref().filter(|d| !d.is_empty()),
            input_schema: input_schema(t.parameters.as_deref(), i)?,
            strict: t.strict.filter(|_| same_family),
            cache_control: t.cache.as_deref(),
        });
    }
    if let Some((_, raw)) = extras.iter().find(|(k, _)| k == "tools") {
        let server: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap_or_default();
        tools.extend(server.into_iter().map(ToolOut::Raw));
    }
    let no_parallel = req.parallel_tool_calls == Some(false);
    let (r#type, name) = match &req.tool_choice {
        _ if tools.is_empty() => ("", None),
        None if no_parallel => ("auto", None),
        None => ("", None),
        Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::None) => ("none", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Tool(n)) => ("tool", Some(n.as_ref())),
    };
    let disable_parallel_tool_use = (no_parallel && r#type != "none").then_some(true);
    let tool_choice = (!r#type.is_empty()).then_some(ChoiceOut {
        r#type,
        name,
        disable_parallel_tool_use,
    });
    let forced = r#type == "any" || r#type == "tool";

    // Thinking (see the module docs).
    let enabled = |b: u64| {
        Some(Thinking::Enabled {
            budget_tokens: b.max(MIN_BUDGET),
        })
    };
    let mut thinking = match req.reasoning {
        None => None,
        Some(ReasoningConfig::Effort(e)) => Some(e.budget()).filter(|b| *b > 0).and_then(enabled),
        Some(ReasoningConfig::Budget(0)) => Some(Thinking::Disabled),
        Some(ReasoningConfig::Budget(b)) => enabled(b),
        Some(ReasoningConfig::Dynamic) => Some(Thinking::Adaptive),
    };
    let on = |t: Option<Thinking>| t.is_some_and(|t| t != Thinking::Disabled);
    if on(thinking) {
        let continues = turns
            .last()
            .is_some_and(|(r, b)| *r == Role::Assistant || b.iter().any(is_tool_result));
        let last_assistant = turns.iter().rev().find(|(r, _)| *r == Role::Assistant);
        let signed = last_assistant.is_some_and(|(_, b)| {
            b.iter()
                .any(|b| matches!(b, B::Thinking { .. } | B::RedactedThinking { .. }))
        });
        if forced || (continues && !signed) {
            tracing::debug!("thinking left off: Anthropic rejects it with a forced tool or an unsigned tool loop");
            thinking = None;
        }
    }
    let mut max_tokens = req.max_tokens.or(opts.default_max_tokens).unwrap_or(4096);
    if max_tokens == 0 {
        return Err(invalid(
            "max_tokens",
            "max_tokens must be a positive integer",
        ));
    }
    if let Some(Thinking::Enabled { budget_tokens }) = thinking {
        if max_tokens <= budget_tokens {
            max_tokens += budget_tokens;
        }
    }
    let sampling = !(opts.anthropic_version.as_str() >= "2026-10-21" || on(thinking));
    let s = &req.sampling;
    let body = Body {
        model,
        max_tokens,
        system: (!system.is_empty()).then(|| collapse(system)),
        messages: (turns.into_iter())
            .map(|(role, blocks)| TurnOut {
                role,
                content: collapse(blocks),
            })
            .collect(),
        stop: s
            .stop
            .iter()
            .map(|s| s.as_ref())
            .filter(|s| !s.is_empty())
            .collect(),
        temperature: s
            .temperature
            .filter(|_| sampling)
            .map(|t| t.clamp(0.0, 1.0)),
        top_p: s.top_p.filter(|_| sampling).map(|p| p.clamp(0.0, 1.0)),
        top_k: s.top_k.filter(|_| sampling),
        stream: req.stream,
        metadata: req
            .user
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|user_id| Metadata { user_id }),
        tools,
        tool_choice,
        thinking,
        extras,
    };
    let mut out = Vec::with_capacity(1024); // not `BytesMut`: see `json::to_bytes`
    serde_json::to_writer(&mut out, &body).map_err(|e| ChatError::bad_request(e.to_string()))?;
    Ok(Bytes::from(out))
}

struct Body<'r> {
    model: &'r str,
    max_tokens: u64,
    system: Option<Content<'r>>,
    messages: Vec<TurnOut<'r>>,
    stop: Vec<&'r str>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u64>,
    stream: bool,
    metadata: Option<Metadata<'r>>,
    tools: Vec<ToolOut<'r>>,
    tool_choice: Option<ChoiceOut<'r>>,
    thinking: Option<Thinking>,
    extras: &'r [(Str<'r>, Cow<'r, RawValue>)],
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let mut written: Vec<&str> = Vec::with_capacity(16);
        macro_rules! put {
            ($k:literal, $v:expr) => {
                if let Some(v) = $v {
                    written.push($k);
                    m.serialize_entry($k, v)?;
                }
            };
        }
        put!("model", Some(self.model));
        put!("max_tokens", Some(&self.max_tokens));
        put!("system", &self.system);
        put!("messages", Some(&self.messages));
        put!("stop_sequences", Some(&self.stop).filter(|s| !s.is_empty()));
        put!("temperature", &self.temperature);
        put!("top_p", &self.top_p);
        put!("top_k", &self.top_k);
        put!("stream", self.stream.then_some(&true));
        // A client's own metadata object (an extra) carries the user id too.
        let own_metadata = self.extras.iter().any(|(k, _)| k == "metadata");
        put!("metadata", self.metadata.as_ref().filter(|_| !own_metadata));
        put!("tools", Some(&self.tools).filter(|t| !t.is_empty()));
        put!("tool_choice", &self.tool_choice);
        put!("thinking", &self.thinking);
        for (k, v) in self.extras {
            // The fields this encoder wrote win over extras of that name.
            if k != "tools" && !written.contains(&k.as_ref()) {
                m.serialize_entry(k.as_ref(), v.as_ref())?;
            }
        }
        m.end()
    }
}

/// Standard or URL-safe base64 (padding optional, line breaks and spaces
/// ignored) -> UTF-8 text.
fn base64_decode(s: &str) -> Option<String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let clean: Vec<u8> = (s.bytes())
        .filter(|b| !matches!(b, b'\n' | b'\r' | b' '))
        .map(|b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    String::from_utf8(base64::Engine::decode(&LENIENT, clean).ok()?).ok()
}

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;
    use crate::protocol::chat::{Effort, Extras, Ingress};
    use crate::protocol::ingress::anthropic::AnthropicMessages as Client;
    use serde_json::{json, Value};

    fn opts(version: &str, default_max: Option<u64>) -> VendorOptions {
        VendorOptions { default_max_tokens: default_max, anthropic_version: version.into() }
    }

    /// An Anthropic client's body, decoded by the real ingress, edited,
    /// encoded for model "up".
    fn enc(body: &Value, o: &VendorOptions, edit: impl FnOnce(&mut Request<'_>)) -> Result<Value, ChatError> {
        let bytes = body.to_string();
        let mut req = Client.decode_request(bytes.as_bytes())?;
        edit(&mut req);
        let out = encode(&req, "up", o)?;
        serde_json::from_slice(&out).map_err(|e| ChatError::upstream(e.to_string()))
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn the_simplest_request_encodes_exactly() {
        let body = br#"{"model":"claude","max_tokens":100,"system":"S","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
        let req = Client.decode_request(body).map_err(|e| e.message);
        let out = req.and_then(|r| encode(&r, "up", &VendorOptions::default()).map_err(|e| e.message));
        assert_eq!(
            out.as_deref().map(String::from_utf8_lossy),
            Ok(r#"{"model":"up","max_tokens":100,"system":"S","messages":[{"role":"user","content":"Hi"}],"stream":true}"#.into())
        );
    }

    #[test]
    fn anthropic_requests_survive_decode_and_encode() {
        let original = json!({
            "model": "up", "max_tokens": 4000,
            "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "document", "title": "Doc", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi, é!"}},
                    {"type": "document", "source": {"type": "file", "file_id": "file_01"}},
                    {"type": "search_result", "source": "s", "title": "t", "content": [{"type": "text", "text": "x"}]}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Hmm", "signature": "sig=="},
                    {"type": "redacted_thinking", "data": "ENC"},
                    {"type": "text", "text": "I'll check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"l": "SF"}},
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "15 degrees"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "cache_control": {"type": "ephemeral"},
                     "content": [{"type": "text", "text": "boom"}, {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j"}}]},
                    {"type": "text", "text": "Thanks"}]}],
            "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 10, "stream": true,
            "metadata": {"user_id": "u-42"},
            "tools": [
                {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"l": {"type": "string"}}}, "cache_control": {"type": "ephemeral"}},
                {"name": "c", "input_schema": {"type": "object"}, "strict": true},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "service_tier": "auto", "container": null, "mcp_servers": [{"type": "url", "url": "https://m", "name": "m"}]
        });
        let o = opts("2023-06-01", None);
        assert_eq!(enc(&original, &o, |_| {}), Ok(original.clone()));
        // An edit changes that field only.
        let mut edited = original.clone();
        (edited["temperature"], edited["max_tokens"]) = (json!(0.2), json!(77));
        assert_eq!(enc(&original, &o, |r| (r.sampling.temperature, r.max_tokens) = (Some(0.2), Some(77))), Ok(edited));
        // Thinking configs and an unsigned-looking (but signed) tool loop.
        for thinking in [json!({"type": "enabled", "budget_tokens": 2048}), json!({"type": "adaptive"}), json!({"type": "disabled"}), json!({"type": "enabled", "budget_tokens": 2048, "display": "omitted"})] {
            let mut body = original.clone();
            for k in ["temperature", "top_p", "top_k"] { body.as_object_mut().map(|o| o.remove(k)); }
            body["thinking"] = thinking;
            assert_eq!(enc(&body, &o, |_| {}), Ok(body.clone()));
        }
        // Metadata with more than a user id goes as it came.
        let mut body = json!({"model": "up", "max_tokens": 5, "messages": [user("x")], "metadata": {"user_id": "u", "k": 1}});
        assert_eq!(enc(&body, &o, |_| {}), Ok(body.clone()));
        body["metadata"] = json!({"user_id": "u"});
        assert_eq!(enc(&body, &o, |_| {}), Ok(body.clone()));
    }

    #[test]
    fn requests_from_other_families_encode_as_anthropic_requires() {
        type Edit = Box<dyn Fn(&mut Request<'_>)>;
        let (o, none): (VendorOptions, fn() -> Edit) = (opts("2023-06-01", None), || Box::new(|_| {}));
        let e = |f: fn(&mut Request<'_>)| -> Edit { Box::new(f) };
        let foreign = |r: &mut Request<'_>| {
            let mut extra = Extras::new(Family::OpenAi);
            extra.fields = std::mem::take(&mut r.extra.fields);
            r.extra = extra;
        };
        let base = json!({"model": "m", "max_tokens": 100, "messages": [user("Hi")]});
        let with = |k: &str, v: Value| { let mut b = base.clone(); b[k] = v; b };
        let expect = |patch: Value| {
            let mut b = json!({"model": "up", "max_tokens": 100, "messages": [user("Hi")]});
            for (k, v) in patch.as_object().into_iter().flatten() { b[k] = v.clone(); }
            Ok(b)
        };
        let effort = |x: Effort| -> Edit { Box::new(move |r| r.reasoning = Some(ReasoningConfig::Effort(x))) };
        let tool_loop = json!([user("q"), {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]);
        let cases: Vec<(Value, VendorOptions, Edit, Result<Value, ChatError>)> = vec![
            // Alternation, a leading user turn, merged turns, a trimmed prefill.
            (with("messages", json!([{"role": "assistant", "content": "a"}, user("u1"), user("u2"), {"role": "assistant", "content": "p  "}])), o.clone(), none(),
             expect(json!({"messages": [user("."), {"role": "assistant", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "u1"}, {"type": "text", "text": "u2"}]}, {"role": "assistant", "content": "p"}]}))),
            (with("messages", json!([])), o.clone(), none(), expect(json!({"messages": [user(".")]}))),
            // Tool results first; ids rewritten the same way; arguments
            // that are not an object become {}.
            (with("messages", json!([user("q"), {"role": "assistant", "content": [{"type": "tool_use", "id": "call:1/x", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "text", "text": "and"}, {"type": "tool_result", "tool_use_id": "call:1/x", "content": "r"}]}])),
             o.clone(), e(|r| if let Some(Part::ToolCall(c)) = r.turns[1].parts.get_mut(0) { c.arguments = "[1]".into() }),
             expect(json!({"messages": [user("q"), {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1_x_116d83dab14c0387", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1_x_116d83dab14c0387", "content": "r"}, {"type": "text", "text": "and"}]}]}))),
            // Signed thinking of another family, strict, server tools and
            // extras stay home; sampling clamped; user -> metadata.
            (json!({"model": "m", "max_tokens": 100, "temperature": 1.5, "top_p": 2, "messages": [user("a"), {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "b"}]}, user("c")],
                "tools": [{"name": "f", "input_schema": {"type": "object"}, "strict": true}, {"type": "bash_20250124", "name": "bash"}], "service_tier": "auto", "metadata": {"user_id": "u"}}),
             o.clone(), Box::new(move |r| { foreign(r); if let Some(Part::Reasoning(x)) = r.turns[1].parts.get_mut(0) { if let Some(s) = x.signature.as_mut() { s.family = Family::Gemini } } }),
             Ok(json!({"model": "up", "max_tokens": 100, "temperature": 1.0, "top_p": 1.0, "metadata": {"user_id": "u"}, "messages": [user("a"), {"role": "assistant", "content": "b"}, user("c")],
                "tools": [{"name": "f", "input_schema": {"type": "object"}}]}))),
            // API versions from 2026-10-21 take no sampling parameters.
            (json!({"model": "m", "max_tokens": 100, "temperature": 0.5, "top_p": 0.5, "top_k": 5, "messages": [user("Hi")]}), opts("2026-10-21", None), none(), expect(json!({}))),
            // max_tokens: the client's, else the provider's, else 4096.
            (json!({"model": "m", "messages": [user("Hi")]}), opts("", Some(2000)), none(), expect(json!({"max_tokens": 2000}))),
            (json!({"model": "m", "messages": [user("Hi")]}), o.clone(), none(), expect(json!({"max_tokens": 4096}))),
            // Reasoning effort -> thinking budget, max_tokens raised, sampling dropped.
            (with("temperature", json!(0.3)), o.clone(), effort(Effort::High), expect(json!({"max_tokens": 24676, "thinking": {"type": "enabled", "budget_tokens": 24576}}))),
            (base.clone(), o.clone(), effort(Effort::Minimal), expect(json!({"max_tokens": 1124, "thinking": {"type": "enabled", "budget_tokens": 1024}}))),
            (with("max_tokens", json!(30000)), o.clone(), effort(Effort::Medium), expect(json!({"max_tokens": 30000, "thinking": {"type": "enabled", "budget_tokens": 8192}}))),
            (base.clone(), o.clone(), effort(Effort::None), expect(json!({}))),
            // Left off with a forced tool, and in an unsigned tool loop.
            (json!({"model": "m", "max_tokens": 100, "messages": [user("Hi")], "tools": [{"name": "f"}], "tool_choice": {"type": "tool", "name": "f"}}), o.clone(), effort(Effort::Low),
             expect(json!({"tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}], "tool_choice": {"type": "tool", "name": "f"}}))),
            (with("messages", tool_loop.clone()), o.clone(), e(|r| r.reasoning = Some(ReasoningConfig::Budget(5000))), expect(json!({"messages": tool_loop}))),
            // response_format -> a system instruction.
            (with("system", json!("S")), o.clone(), e(|r| r.response_format = Some(ResponseFormat::JsonObject)),
             expect(json!({"system": [{"type": "text", "text": "S"}, {"type": "text", "text": JSON_OBJECT_INSTRUCTION}]}))),
            (base.clone(), o.clone(), e(|r| r.response_format = Some(ResponseFormat::JsonSchema { name: Some("n".into()), schema: owned_raw("{\"type\":\"object\"}".into()), strict: None })),
             expect(json!({"system": format!("{JSON_SCHEMA_INSTRUCTION} (named \"n\"):\n{{\"type\":\"object\"}}")}))),
            // Tools: a schema without type gets one; tool_choice without
            // tools is dropped; parallel calls off.
            (json!({"model": "m", "max_tokens": 100, "messages": [user("Hi")], "tools": [{"name": "f", "description": "", "input_schema": {"required": []}}]}), o.clone(), e(|r| r.parallel_tool_calls = Some(false)),
             expect(json!({"tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}, "required": []}}], "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}))),
            (with("tool_choice", json!({"type": "any"})), o.clone(), none(), expect(json!({}))),
            // Media: data URLs become base64 sources, text documents text.
            (with("messages", json!([{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "data:image/webp;base64,UklG"}}, {"type": "document", "source": {"type": "url", "url": "data:text/plain;base64,aGkh"}}]}])), o.clone(), none(),
             expect(json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklG"}}, {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi!"}}]}]}))),
            // What Anthropic cannot take.
            (base.clone(), o.clone(), e(|r| r.n = Some(2)), Err(ChatError::invalid("n", "only n=1 is supported by Anthropic"))),
            (base.clone(), o.clone(), e(|r| r.max_tokens = Some(0)), Err(ChatError::invalid("max_tokens", "max_tokens must be a positive integer"))),
            (json!({"model": "m", "max_tokens": 100, "messages": [user("Hi")], "tools": [{"name": "f"}]}), o.clone(), e(|r| r.tools[0].kind = ToolKind::Custom),
             Err(ChatError::invalid("tools[0]", "freeform (custom) tools are not supported by Anthropic"))),
            (json!({"model": "m", "max_tokens": 100, "messages": [user("Hi")], "tools": [{"name": "f", "input_schema": {"type": "array"}}]}), o.clone(), none(),
             Err(ChatError::invalid("tools[0].function.parameters", "parameters must be an object schema"))),
            (with("messages", json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image", "source": {"type": "url", "url": "ftp://x"}}]}])), o.clone(), none(),
             Err(ChatError::invalid("messages[0].content[1]", "the URL must be http(s) or a base64 data URL"))),
            (with("messages", json!([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}])), o.clone(),
             e(|r| if let Some(Part::Media(m)) = r.turns[0].parts.get_mut(0) { m.source = MediaSource::FileId { family: Family::OpenAi, id: "f".into() } }),
             Err(ChatError::invalid("messages[0].content[0]", "a file id from another vendor cannot be sent to Anthropic"))),
            (with("messages", json!([{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}])), o.clone(),
             e(|r| if let Some(Part::Media(m)) = r.turns[0].parts.get_mut(0) { m.kind = MediaKind::Audio }),
             Err(ChatError::invalid("messages[0].content[0]", "audio input is not supported by Anthropic"))),
        ];
        for (i, (body, o, edit, want)) in cases.into_iter().enumerate() {
            assert_eq!(enc(&body, &o, edit), want, "case {i}: {body}");
        }
    }

    #[test]
    fn base64_decoding_matches_the_standard() {
        for (enc, plain) in [
            ("", Some("")),
            ("Zg==", Some("f")),
            ("Zm8=", Some("fo")),
            ("Zm9v", Some("foo")),
            ("Zm9vYg", Some("foob")),
            ("w6k=", Some("é")),
            ("*", None),
        ] {
            assert_eq!(base64_decode(enc).as_deref(), plain);
        }
    }
}
