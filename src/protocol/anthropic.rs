//! The Anthropic Messages API wire format (`/v1/messages`) and its
//! translation to and from OpenAI Chat Completions, in both directions:
//! OpenAI clients served by Anthropic, and Anthropic clients served by
//! OpenAI-compatible vendors. Pure functions and stream state machines, no
//! I/O. Everything works on `serde_json::Value` so unknown fields are
//! ignored rather than rejected.
//!
//! Decisions that are not dictated by the two formats:
//! - `prompt_tokens` = `input_tokens + cache_read_input_tokens +
//!   cache_creation_input_tokens` (OpenAI counts cached tokens inside
//!   `prompt_tokens`; Anthropic reports them apart), `cached_tokens` =
//!   `cache_read_input_tokens`. The reverse subtracts cached tokens again.
//! - `response_format` becomes an appended system instruction (the schema is
//!   included for `json_schema`). A forced tool would make the answer come
//!   back as a `tool_use` block, which a stateless response translator could
//!   not tell apart from a real tool call.
//! - `reasoning_effort` becomes `thinking: {type: enabled, budget_tokens}`
//!   (minimal/low 1024, medium 4096, high 16384, xhigh 32768, none: off).
//!   When `max_tokens` does not exceed the budget, the budget is added on top
//!   so the answer keeps the room the client asked for. Thinking is left off
//!   when Anthropic would reject it: a forced tool choice, or a conversation
//!   that continues an assistant turn or a tool loop (OpenAI history carries
//!   no thinking signatures to send back). Sampling parameters are dropped
//!   with thinking on (Anthropic rejects them there).
//! - A conversation that does not start with a user turn (or has none) gets
//!   a "." user turn first, as Anthropic requires one.
//! - Tool ids are kept; one with characters Anthropic rejects is rewritten to
//!   the allowed characters plus a hash of the original, the same way
//!   wherever it appears, so `tool_use` and `tool_result` still pair up.
//! - Anthropic-format clients: `thinking` is not forwarded to OpenAI vendors
//!   (non-reasoning models reject `reasoning_effort`), thinking blocks in
//!   history are dropped, and vendor reasoning comes back as thinking blocks
//!   with an empty signature.
//! - OpenAI error bodies keep `type` in OpenAI's vocabulary and put the
//!   Anthropic error type in `code`, see [`anthropic_error_to_openai`].

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use serde_json::{json, Map, Value};

use super::typed;
use super::types::{TranslateError, Usage};

/// How an OpenAI request is adapted for Anthropic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    /// max_tokens to send when the OpenAI client gave none (Anthropic requires it).
    pub default_max_tokens: u64,
    /// Drop temperature/top_p/top_k (Anthropic API version 2026-10-21 and newest Claude models reject them with 400 even at defaults).
    pub drop_sampling: bool,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            default_max_tokens: 4096,
            drop_sampling: false,
        }
    }
}

/// Stand-in for a missing first user turn: Anthropic rejects empty text.
const PLACEHOLDER_USER_TEXT: &str = ".";

const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object only, with no text before or after it and no code fences.";

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An id for a message that arrived without one; unique within the process.
pub(crate) fn generated_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{prefix}{nanos:x}{n:x}")
}

/// A token count; vendors occasionally send floats or nulls.
fn count(v: Option<&Value>) -> u64 {
    v.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    })
    .unwrap_or(0)
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A present, non-null field.
fn field<'a>(v: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|v| !v.is_null())
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::at(param, message)
}

/// 64-bit FNV-1a: a stable hash (std's hasher is not guaranteed stable
/// across releases, and ids must map the same way on every turn).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn is_anthropic_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Tool ids must match `^[a-zA-Z0-9_-]+$` at Anthropic. Valid ids are kept
/// as they are; others get their bad characters replaced and a hash of the
/// original appended, so two different ids cannot collapse into one.
fn sanitize_tool_id(id: &str) -> String {
    if !id.is_empty() && id.chars().all(is_anthropic_id_char) {
        return id.to_string();
    }
    let cleaned: String = id
        .chars()
        .map(|c| if is_anthropic_id_char(c) { c } else { '_' })
        .collect();
    format!("{cleaned}_{:016x}", fnv1a(id))
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// `data:<media type>[;param]*;base64,<data>` -> (media type, data).
fn parse_base64_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (header, data) = rest.split_once(',')?;
    let mut params = header.split(';');
    let media_type = params.next()?;
    if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    Some((media_type, data))
}

fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

// ---------------------------------------------------------------------------
// Stop reasons and usage
// ---------------------------------------------------------------------------

/// Anthropic `stop_reason` -> OpenAI `finish_reason`.
pub(crate) fn finish_reason_for(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new: a normal stop.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`.
pub(crate) fn stop_reason_for(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage object, with cache counters kept apart as it reports
/// them.
#[derive(Debug, Clone, Copy, Default)]
struct AnthropicUsage {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
}

impl AnthropicUsage {
    fn from_value(v: &Value) -> Self {
        AnthropicUsage {
            input: count(v.get("input_tokens")),
            output: count(v.get("output_tokens")),
            cache_read: count(v.get("cache_read_input_tokens")),
            cache_creation: count(v.get("cache_creation_input_tokens")),
        }
    }

    /// Stream events repeat the counters cumulatively: a later value
    /// replaces an earlier one, an absent one leaves it alone.
    fn update(&mut self, v: &Value) {
        let set = |slot: &mut u64, key: &str| {
            if let Some(n) = v.get(key).filter(|n| !n.is_null()) {
                *slot = count(Some(n));
            }
        };
        set(&mut self.input, "input_tokens");
        set(&mut self.output, "output_tokens");
        set(&mut self.cache_read, "cache_read_input_tokens");
        set(&mut self.cache_creation, "cache_creation_input_tokens");
    }

    /// [`Self::update`] from a typed parse (absent and null look alike).
    fn update_typed(&mut self, u: &typed::openai_client::AnthropicUsage) {
        let set = |slot: &mut u64, n: &Option<serde_json::Number>| {
            if let Some(n) = n {
                *slot = typed::count(Some(n));
            }
        };
        set(&mut self.input, &u.input_tokens);
        set(&mut self.output, &u.output_tokens);
        set(&mut self.cache_read, &u.cache_read_input_tokens);
        set(&mut self.cache_creation, &u.cache_creation_input_tokens);
    }

    fn to_usage(self) -> Usage {
        // Saturating: a vendor reporting absurd counts must not wrap (or
        // panic in a debug build).
        let prompt = self
            .input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_creation);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output,
            total_tokens: prompt.saturating_add(self.output),
            cached_tokens: self.cache_read,
            ..Default::default()
        }
    }
}

/// OpenAI's `usage` object.
fn openai_usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens}
    })
}

/// Reads OpenAI's `usage` (DeepSeek reports cache hits under its own name).
pub(crate) fn usage_from_openai(v: &Value) -> Usage {
    let prompt = count(v.get("prompt_tokens"));
    let completion = count(v.get("completion_tokens"));
    let total = match count(v.get("total_tokens")) {
        0 => prompt.saturating_add(completion),
        t => t,
    };
    let cached = v
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .filter(|c| !c.is_null())
        .or_else(|| v.get("prompt_cache_hit_tokens"));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        cached_tokens: count(cached).min(prompt),
        ..Default::default()
    }
}

/// Anthropic's `usage` object for an OpenAI usage.
fn anthropic_usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(u.cached_tokens),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": u.completion_tokens
    })
}

// ---------------------------------------------------------------------------
// OpenAI request -> Anthropic request
// ---------------------------------------------------------------------------

/// One Anthropic message being assembled.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

/// Appends blocks, merging into the previous message when the role repeats
/// (Anthropic requires strict user/assistant alternation).
fn push_turn(turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.blocks.extend(blocks),
        _ => turns.push(Turn { role, blocks }),
    }
}

/// A text part keeps its `cache_control` (prompt caching breakpoints set by
/// clients that know they talk to Claude); empty text is dropped because
/// Anthropic rejects empty text blocks.
fn text_part_to_block(part: &Value, text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    let mut block = text_block(text);
    if let (Some(cc), Some(obj)) = (part.get("cache_control"), block.as_object_mut()) {
        obj.insert("cache_control".into(), cc.clone());
    }
    Some(block)
}

fn part_type<'a>(part: &'a Value, param: &str) -> Result<&'a str, TranslateError> {
    str_field(part, "type").ok_or_else(|| invalid(param, "content part has no type"))
}

fn part_text<'a>(part: &'a Value, param: &str) -> Result<&'a str, TranslateError> {
    str_field(part, "text").ok_or_else(|| invalid(param, "text part has no text"))
}

/// `system` / `developer` content -> text blocks.
fn system_blocks(content: Option<&Value>, param: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(text_part_to_block(&Value::Null, s).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let p = format!("{param}.content[{j}]");
                match part_type(part, &p)? {
                    "text" => out.extend(text_part_to_block(part, part_text(part, &p)?)),
                    other => {
                        return Err(invalid(
                            p,
                            format!("system messages may only contain text, not '{other}'"),
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(invalid(
            format!("{param}.content"),
            "content must be a string or an array of parts",
        )),
    }
}

fn image_url_to_block(part: &Value, param: &str) -> Result<Value, TranslateError> {
    // `image_url` is an object {url, detail} per the spec; some clients send
    // the bare string.
    let url = match part.get("image_url") {
        Some(Value::String(s)) => s.as_str(),
        Some(obj) => str_field(obj, "url").unwrap_or_default(),
        None => "",
    };
    if let Some((media_type, data)) = parse_base64_data_url(url) {
        return Ok(json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}
        }));
    }
    if url.starts_with("data:") {
        return Err(invalid(
            param,
            "only base64 data URLs are supported for images",
        ));
    }
    if is_http_url(url) {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(invalid(
        param,
        "image_url.url must be an http(s) URL or a base64 data URL",
    ))
}

/// OpenAI `file` part: only inline PDFs have an Anthropic equivalent.
fn file_part_to_block(part: &Value, param: &str) -> Result<Value, TranslateError> {
    let file = part.get("file").unwrap_or(&Value::Null);
    let data_url = str_field(file, "file_data").unwrap_or_default();
    match parse_base64_data_url(data_url) {
        Some((media_type, data)) if media_type.eq_ignore_ascii_case("application/pdf") => {
            Ok(json!({
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": data}
            }))
        }
        _ => Err(invalid(
            param,
            "only inline PDF files (file_data as a base64 data URL) are supported",
        )),
    }
}

/// User content -> Anthropic blocks.
fn user_blocks(content: Option<&Value>, param: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(text_part_to_block(&Value::Null, s).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let p = format!("{param}.content[{j}]");
                match part_type(part, &p)? {
                    "text" => out.extend(text_part_to_block(part, part_text(part, &p)?)),
                    "image_url" => out.push(image_url_to_block(part, &p)?),
                    "file" => out.push(file_part_to_block(part, &p)?),
                    other => {
                        return Err(invalid(
                            p,
                            format!("content part type '{other}' is not supported by this model"),
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(invalid(
            format!("{param}.content"),
            "content must be a string or an array of parts",
        )),
    }
}

/// Assistant history: text (refusals are text too) then tool_use blocks.
/// `reasoning_content` echoed back by clients is dropped: Anthropic only
/// accepts thinking blocks with the signature OpenAI clients never saw.
fn assistant_blocks(msg: &Value, param: &str) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::new();
    match msg.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.extend(text_part_to_block(&Value::Null, s)),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let p = format!("{param}.content[{j}]");
                match part_type(part, &p)? {
                    "text" => out.extend(text_part_to_block(part, part_text(part, &p)?)),
                    "refusal" => {
                        let text = str_field(part, "refusal").unwrap_or_default();
                        out.extend(text_part_to_block(&Value::Null, text));
                    }
                    other => {
                        return Err(invalid(
                            p,
                            format!("assistant content part type '{other}' is not supported"),
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                format!("{param}.content"),
                "content must be a string or an array of parts",
            ))
        }
    }
    if msg.get("function_call").is_some_and(|f| !f.is_null()) {
        return Err(invalid(
            format!("{param}.function_call"),
            "legacy function_call is not supported; use tool_calls",
        ));
    }
    match msg.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            for (k, call) in calls.iter().enumerate() {
                out.push(tool_call_to_tool_use(
                    call,
                    &format!("{param}.tool_calls[{k}]"),
                )?);
            }
        }
        Some(_) => {
            return Err(invalid(
                format!("{param}.tool_calls"),
                "tool_calls must be an array",
            ))
        }
    }
    Ok(out)
}

fn tool_call_to_tool_use(call: &Value, param: &str) -> Result<Value, TranslateError> {
    if let Some(kind) = str_field(call, "type") {
        if kind != "function" {
            return Err(invalid(
                format!("{param}.type"),
                format!("tool call type '{kind}' is not supported"),
            ));
        }
    }
    let id = str_field(call, "id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("{param}.id"), "tool call has no id"))?;
    let function = call.get("function").unwrap_or(&Value::Null);
    let name = str_field(function, "name")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("{param}.function.name"), "tool call has no name"))?;
    let input = match function.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => {
            let parsed: Value = serde_json::from_str(s).map_err(|e| {
                invalid(
                    format!("{param}.function.arguments"),
                    format!("arguments are not valid JSON: {e}"),
                )
            })?;
            if !parsed.is_object() {
                return Err(invalid(
                    format!("{param}.function.arguments"),
                    "arguments must be a JSON object",
                ));
            }
            parsed
        }
        // Some clients send the object itself rather than its JSON text.
        Some(obj @ Value::Object(_)) => obj.clone(),
        Some(_) => {
            return Err(invalid(
                format!("{param}.function.arguments"),
                "arguments must be a JSON string",
            ))
        }
    };
    Ok(json!({
        "type": "tool_use",
        "id": sanitize_tool_id(id),
        "name": name,
        "input": input
    }))
}

/// `{"role":"tool"}` -> a `tool_result` block (it joins a user message).
fn tool_message_to_result(msg: &Value, param: &str) -> Result<Value, TranslateError> {
    let id = str_field(msg, "tool_call_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            invalid(
                format!("{param}.tool_call_id"),
                "tool message has no tool_call_id",
            )
        })?;
    let mut block = Map::new();
    block.insert("type".into(), "tool_result".into());
    block.insert("tool_use_id".into(), sanitize_tool_id(id).into());
    match msg.get("content") {
        None | Some(Value::Null) => {}
        // Empty content is left out: Anthropic's content is optional.
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => {
            block.insert("content".into(), s.clone().into());
        }
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let p = format!("{param}.content[{j}]");
                match part_type(part, &p)? {
                    "text" => blocks.extend(text_part_to_block(part, part_text(part, &p)?)),
                    "image_url" => blocks.push(image_url_to_block(part, &p)?),
                    other => {
                        return Err(invalid(
                            p,
                            format!("tool content part type '{other}' is not supported"),
                        ))
                    }
                }
            }
            if !blocks.is_empty() {
                block.insert("content".into(), Value::Array(blocks));
            }
        }
        Some(_) => {
            return Err(invalid(
                format!("{param}.content"),
                "content must be a string or an array of parts",
            ))
        }
    }
    Ok(Value::Object(block))
}

/// A message whose only block is plain text is sent as a string: the shape
/// Anthropic's docs use, and byte-for-byte what a native client would send.
fn collapse_content(blocks: Vec<Value>) -> Value {
    if let [only] = blocks.as_slice() {
        if let Some(obj) = only.as_object() {
            if obj.len() == 2 && obj.get("type").and_then(Value::as_str) == Some("text") {
                if let Some(text) = obj.get("text") {
                    return text.clone();
                }
            }
        }
    }
    Value::Array(blocks)
}

fn tools_to_anthropic(tools: &[Value]) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        if let Some(kind) = str_field(tool, "type") {
            if kind != "function" {
                return Err(invalid(
                    format!("{p}.type"),
                    format!("tool type '{kind}' is not supported"),
                ));
            }
        }
        let function = tool
            .get("function")
            .filter(|f| f.is_object())
            .ok_or_else(|| invalid(format!("{p}.function"), "tool has no function"))?;
        let name = str_field(function, "name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("{p}.function.name"), "tool has no name"))?;
        let schema = match function.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(Value::Object(params)) => match params.get("type") {
                None => {
                    // JSON Schema allows omitting `type`; Anthropic does not.
                    let mut m = Map::new();
                    m.insert("type".into(), "object".into());
                    m.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
                    if !m.contains_key("properties") {
                        m.insert("properties".into(), json!({}));
                    }
                    Value::Object(m)
                }
                Some(t) if t == "object" => Value::Object(params.clone()),
                Some(_) => {
                    return Err(invalid(
                        format!("{p}.function.parameters"),
                        "parameters must be an object schema",
                    ))
                }
            },
            Some(_) => {
                return Err(invalid(
                    format!("{p}.function.parameters"),
                    "parameters must be a JSON Schema object",
                ))
            }
        };
        let mut t = Map::new();
        t.insert("name".into(), name.into());
        if let Some(d) = str_field(function, "description").filter(|d| !d.is_empty()) {
            t.insert("description".into(), d.into());
        }
        t.insert("input_schema".into(), schema);
        if let Some(cc) = tool.get("cache_control") {
            t.insert("cache_control".into(), cc.clone());
        }
        out.push(Value::Object(t));
    }
    Ok(out)
}

fn tool_choice_to_anthropic(tc: &Value) -> Result<Value, TranslateError> {
    let bad = || invalid("tool_choice", "unsupported tool_choice");
    match tc {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "none" => Ok(json!({"type": "none"})),
            "required" => Ok(json!({"type": "any"})),
            _ => Err(bad()),
        },
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o
                .get("function")
                .and_then(|f| str_field(f, "name"))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    invalid("tool_choice.function.name", "tool_choice names no function")
                })?;
            Ok(json!({"type": "tool", "name": name}))
        }
        _ => Err(bad()),
    }
}

fn thinking_budget(effort: &Value) -> Result<Option<u64>, TranslateError> {
    match effort.as_str() {
        Some("none") => Ok(None),
        Some("minimal") | Some("low") => Ok(Some(1024)),
        Some("medium") => Ok(Some(4096)),
        Some("high") => Ok(Some(16384)),
        Some("xhigh") => Ok(Some(32768)),
        _ => Err(invalid(
            "reasoning_effort",
            "reasoning_effort must be one of none, minimal, low, medium, high, xhigh",
        )),
    }
}

fn response_format_instruction(rf: &Value) -> Result<Option<String>, TranslateError> {
    match str_field(rf, "type") {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(JSON_OBJECT_INSTRUCTION.to_string())),
        Some("json_schema") => {
            let spec = rf.get("json_schema").unwrap_or(&Value::Null);
            let schema = spec.get("schema").cloned().unwrap_or_else(|| json!({}));
            let mut s = String::from(
                "Respond with a single valid JSON value only, with no text before or after it and no code fences. It must conform to this JSON Schema",
            );
            if let Some(name) = str_field(spec, "name").filter(|n| !n.is_empty()) {
                s.push_str(&format!(" (named \"{name}\")"));
            }
            s.push_str(":\n");
            s.push_str(&schema.to_string());
            Ok(Some(s))
        }
        Some(other) => Err(invalid(
            "response_format.type",
            format!("response_format type '{other}' is not supported"),
        )),
    }
}

/// OpenAI chat request -> Anthropic /v1/messages request body (model field: copy the request's model; caller rewrites it).
pub fn openai_request_to_anthropic(
    req: &Value,
    opts: &RequestOptions,
) -> Result<Value, TranslateError> {
    let req = req
        .as_object()
        .ok_or_else(|| TranslateError::new("request body must be a JSON object"))?;

    if let Some(n) = field(req, "n") {
        if n.as_u64() != Some(1) {
            return Err(invalid("n", "only n=1 is supported by this model"));
        }
    }
    if field(req, "audio").is_some()
        || field(req, "modalities")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|x| x == "audio"))
    {
        return Err(invalid(
            "modalities",
            "audio output is not supported by this model",
        ));
    }

    let messages = field(req, "messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "messages must be an array"))?;

    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let role = str_field(msg, "role")
            .ok_or_else(|| invalid(format!("{p}.role"), "message has no role"))?;
        match role {
            "system" | "developer" => system.extend(system_blocks(msg.get("content"), &p)?),
            "user" => push_turn(&mut turns, "user", user_blocks(msg.get("content"), &p)?),
            "assistant" => push_turn(&mut turns, "assistant", assistant_blocks(msg, &p)?),
            "tool" => push_turn(&mut turns, "user", vec![tool_message_to_result(msg, &p)?]),
            other => {
                return Err(invalid(
                    format!("{p}.role"),
                    format!("message role '{other}' is not supported"),
                ))
            }
        }
    }

    // A final assistant message is a prefill; Anthropic rejects it when it
    // ends in whitespace.
    if let Some(last) = turns.last_mut().filter(|t| t.role == "assistant") {
        if let Some(Value::Object(b)) = last.blocks.last_mut() {
            if b.get("type").and_then(Value::as_str) == Some("text") {
                let trimmed = b
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim_end()
                    .to_string();
                if trimmed.is_empty() {
                    last.blocks.pop();
                } else {
                    b.insert("text".into(), trimmed.into());
                }
            }
        }
        if last.blocks.is_empty() {
            turns.pop();
        }
    }
    if turns.first().is_none_or(|t| t.role != "user") {
        turns.insert(
            0,
            Turn {
                role: "user",
                blocks: vec![text_block(PLACEHOLDER_USER_TEXT)],
            },
        );
    }
    // Tool results must open the user message that answers a tool_use.
    for t in turns.iter_mut().filter(|t| t.role == "user") {
        let (mut results, rest): (Vec<Value>, Vec<Value>) = t
            .blocks
            .drain(..)
            .partition(|b| str_field(b, "type") == Some("tool_result"));
        results.extend(rest);
        t.blocks = results;
    }
    // Decided before `turns` is consumed: see the module docs on thinking.
    let continues_turn = turns.last().is_some_and(|t| {
        t.role == "assistant"
            || t.blocks
                .iter()
                .any(|b| str_field(b, "type") == Some("tool_result"))
    });

    if let Some(rf) = field(req, "response_format") {
        if let Some(instruction) = response_format_instruction(rf)? {
            system.push(text_block(&instruction));
        }
    }

    let mut out = Map::new();
    out.insert(
        "model".into(),
        req.get("model").cloned().unwrap_or(Value::Null),
    );

    let mut max_tokens =
        match field(req, "max_completion_tokens").or_else(|| field(req, "max_tokens")) {
            None => opts.default_max_tokens,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => n,
                _ => {
                    let name = if field(req, "max_completion_tokens").is_some() {
                        "max_completion_tokens"
                    } else {
                        "max_tokens"
                    };
                    return Err(invalid(name, "must be a positive integer"));
                }
            },
        };

    // Tools.
    let tools = match field(req, "tools") {
        None => Vec::new(),
        Some(Value::Array(t)) => tools_to_anthropic(t)?,
        Some(_) => return Err(invalid("tools", "tools must be an array")),
    };
    let mut tool_choice = match field(req, "tool_choice") {
        Some(tc) if !tools.is_empty() => Some(tool_choice_to_anthropic(tc)?),
        _ => None,
    };
    if !tools.is_empty() && field(req, "parallel_tool_calls") == Some(&Value::Bool(false)) {
        let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(obj) = tc.as_object_mut() {
            if obj.get("type").and_then(Value::as_str) != Some("none") {
                obj.insert("disable_parallel_tool_use".into(), true.into());
            }
        }
    }
    let forced_tool = tool_choice
        .as_ref()
        .and_then(|tc| str_field(tc, "type"))
        .is_some_and(|t| t == "any" || t == "tool");

    // Thinking.
    let budget = match field(req, "reasoning_effort") {
        Some(e) => thinking_budget(e)?,
        None => None,
    }
    .filter(|_| !forced_tool && !continues_turn);
    if let Some(b) = budget {
        if max_tokens <= b {
            max_tokens += b;
        }
    }

    out.insert("max_tokens".into(), max_tokens.into());
    match system.len() {
        0 => {}
        _ => {
            out.insert("system".into(), collapse_content(system));
        }
    }
    out.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|t| json!({"role": t.role, "content": collapse_content(t.blocks)}))
                .collect(),
        ),
    );

    if let Some(stop) = field(req, "stop") {
        let seqs: Vec<Value> = match stop {
            Value::String(s) => vec![s.clone().into()],
            Value::Array(a) => a
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(|s| Value::from(s.to_string()))
                        .ok_or_else(|| {
                            invalid("stop", "stop must be a string or an array of strings")
                        })
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(invalid(
                    "stop",
                    "stop must be a string or an array of strings",
                ))
            }
        };
        // Anthropic rejects empty stop sequences.
        let seqs: Vec<Value> = seqs
            .into_iter()
            .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
            .collect();
        if !seqs.is_empty() {
            out.insert("stop_sequences".into(), Value::Array(seqs));
        }
    }

    if !opts.drop_sampling && budget.is_none() {
        if let Some(t) = field(req, "temperature") {
            let t = t
                .as_f64()
                .ok_or_else(|| invalid("temperature", "temperature must be a number"))?;
            // OpenAI allows 0..2, Anthropic 0..1.
            out.insert("temperature".into(), t.clamp(0.0, 1.0).into());
        }
        if let Some(p) = field(req, "top_p") {
            let p = p
                .as_f64()
                .ok_or_else(|| invalid("top_p", "top_p must be a number"))?;
            out.insert("top_p".into(), p.clamp(0.0, 1.0).into());
        }
        if let Some(k) = field(req, "top_k").and_then(Value::as_u64) {
            out.insert("top_k".into(), k.into());
        }
    }

    if let Some(stream) = field(req, "stream") {
        out.insert("stream".into(), stream.clone());
    }

    let user = field(req, "user")
        .or_else(|| field(req, "safety_identifier"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty());
    if let Some(u) = user {
        out.insert("metadata".into(), json!({"user_id": u}));
    }

    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = tool_choice {
        out.insert("tool_choice".into(), tc);
    }
    if let Some(b) = budget {
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------
// Anthropic response -> OpenAI response
// ---------------------------------------------------------------------------

/// `tool_use` -> an OpenAI tool call (`arguments` is JSON text).
fn tool_use_to_call(block: &Value) -> Value {
    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
    json!({
        "id": str_field(block, "id").unwrap_or_default(),
        "type": "function",
        "function": {
            "name": str_field(block, "name").unwrap_or_default(),
            "arguments": input.to_string()
        }
    })
}

fn anthropic_error_text(v: &Value) -> String {
    let err = v.get("error").unwrap_or(v);
    let kind = str_field(err, "type").unwrap_or("error");
    let message = str_field(err, "message").unwrap_or("unknown error");
    format!("{kind}: {message}")
}

/// Anthropic non-streaming response -> OpenAI chat.completion (id, object, created (unix now), model, choices[0].message{role,content,tool_calls?,reasoning_content?}, finish_reason, usage incl. prompt_tokens_details.cached_tokens).
pub fn anthropic_response_to_openai(resp: &Value) -> Result<(Value, Usage), TranslateError> {
    if str_field(resp, "type") == Some("error") {
        return Err(TranslateError::new(anthropic_error_text(resp)));
    }
    let content = resp
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::new("Anthropic response has no content array"))?;

    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in content {
        match str_field(block, "type") {
            Some("text") => text.push_str(str_field(block, "text").unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(str_field(block, "thinking").unwrap_or_default())
            }
            Some("tool_use") => tool_calls.push(tool_use_to_call(block)),
            // redacted_thinking is encrypted, server tool blocks ran at
            // Anthropic: nothing an OpenAI client could use.
            _ => {}
        }
    }

    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        if text.is_empty() && !tool_calls.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), reasoning.into());
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }

    let usage = resp
        .get("usage")
        .map(AnthropicUsage::from_value)
        .unwrap_or_default()
        .to_usage();
    let id = str_field(resp, "id")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| generated_id("chatcmpl-"));
    let out = json!({
        "id": id,
        "object": "chat.completion",
        "created": now_unix(),
        "model": resp.get("model").cloned().unwrap_or_else(|| "".into()),
        "choices": [{
            "index": 0,
            "message": Value::Object(message),
            "logprobs": null,
            "finish_reason": finish_reason_for(str_field(resp, "stop_reason"))
        }],
        "usage": openai_usage_json(&usage)
    });
    Ok((out, usage))
}

// ---------------------------------------------------------------------------
// Anthropic request -> OpenAI request
// ---------------------------------------------------------------------------

/// Anthropic image block -> OpenAI `image_url` part.
fn image_block_to_part(block: &Value, param: &str) -> Result<Value, TranslateError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match str_field(source, "type") {
        Some("base64") => format!(
            "data:{};base64,{}",
            str_field(source, "media_type").unwrap_or("image/png"),
            str_field(source, "data").unwrap_or_default()
        ),
        Some("url") => str_field(source, "url").unwrap_or_default().to_string(),
        _ => {
            return Err(invalid(
                format!("{param}.source"),
                "only base64 and url image sources are supported",
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Anthropic document block -> OpenAI part: inline PDFs as `file`, plain
/// text documents as text.
fn document_block_to_part(block: &Value, param: &str) -> Result<Value, TranslateError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    match str_field(source, "type") {
        Some("base64") if str_field(source, "media_type") == Some("application/pdf") => {
            let filename = str_field(block, "title")
                .filter(|t| !t.is_empty())
                .map(|t| format!("{t}.pdf"))
                .unwrap_or_else(|| "document.pdf".into());
            Ok(json!({
                "type": "file",
                "file": {
                    "filename": filename,
                    "file_data": format!(
                        "data:application/pdf;base64,{}",
                        str_field(source, "data").unwrap_or_default()
                    )
                }
            }))
        }
        Some("text") => Ok(json!({
            "type": "text",
            "text": str_field(source, "data").unwrap_or_default()
        })),
        _ => Err(invalid(
            format!("{param}.source"),
            "only inline PDF and plain text documents are supported",
        )),
    }
}

/// Text parts only -> one string (widest vendor support); otherwise parts.
fn openai_user_content(parts: Vec<Value>) -> Value {
    if parts.iter().all(|p| str_field(p, "type") == Some("text")) {
        let texts: Vec<&str> = parts.iter().filter_map(|p| str_field(p, "text")).collect();
        Value::from(texts.join("\n\n"))
    } else {
        Value::Array(parts)
    }
}

/// `tool_result` content -> tool message text; images are returned apart
/// because OpenAI tool messages carry text only.
fn tool_result_content(block: &Value, param: &str) -> Result<(String, Vec<Value>), TranslateError> {
    match block.get("content") {
        None | Some(Value::Null) => Ok((String::new(), vec![])),
        Some(Value::String(s)) => Ok((s.clone(), vec![])),
        Some(Value::Array(items)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for (k, item) in items.iter().enumerate() {
                let p = format!("{param}.content[{k}]");
                match str_field(item, "type") {
                    Some("text") => texts.push(str_field(item, "text").unwrap_or_default()),
                    Some("image") => images.push(image_block_to_part(item, &p)?),
                    Some("document") => {
                        let part = document_block_to_part(item, &p)?;
                        match str_field(&part, "type") {
                            // A plain text document reads as tool output.
                            Some("text") => texts.push(
                                item.get("source")
                                    .and_then(|s| str_field(s, "data"))
                                    .unwrap_or_default(),
                            ),
                            _ => images.push(part),
                        }
                    }
                    other => {
                        return Err(invalid(
                            p,
                            format!(
                                "tool_result content type '{}' is not supported",
                                other.unwrap_or("(none)")
                            ),
                        ))
                    }
                }
            }
            Ok((texts.join("\n\n"), images))
        }
        Some(_) => Err(invalid(
            format!("{param}.content"),
            "tool_result content must be a string or an array",
        )),
    }
}

/// An Anthropic user message -> OpenAI tool messages (first: they must
/// follow the assistant's tool calls directly) then a user message.
fn user_message_to_openai(
    content: &Value,
    param: &str,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Value::Array(b) => b,
        _ => {
            return Err(invalid(
                format!("{param}.content"),
                "content must be a string or an array of blocks",
            ))
        }
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let p = format!("{param}.content[{j}]");
        match str_field(block, "type") {
            Some("text") => {
                let text = str_field(block, "text").unwrap_or_default();
                parts.push(json!({"type": "text", "text": text}));
            }
            Some("image") => parts.push(image_block_to_part(block, &p)?),
            Some("document") => parts.push(document_block_to_part(block, &p)?),
            Some("tool_result") => {
                let id = str_field(block, "tool_use_id").unwrap_or_default();
                let (text, images) = tool_result_content(block, &p)?;
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
                parts.extend(images);
            }
            // Thinking blocks never belong to user turns; drop them quietly.
            Some("thinking") | Some("redacted_thinking") => {}
            other => {
                return Err(invalid(
                    p,
                    format!(
                        "content block type '{}' is not supported by this model",
                        other.unwrap_or("(none)")
                    ),
                ))
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": openai_user_content(parts)}));
    }
    Ok(())
}

fn assistant_message_to_openai(content: &Value, param: &str) -> Result<Value, TranslateError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    match content {
        Value::String(s) => text.push_str(s),
        Value::Array(blocks) => {
            for (j, block) in blocks.iter().enumerate() {
                match str_field(block, "type") {
                    Some("text") => text.push_str(str_field(block, "text").unwrap_or_default()),
                    Some("tool_use") => calls.push(tool_use_to_call(block)),
                    // Thinking carries Anthropic signatures no other vendor
                    // can verify; server tool blocks ran at Anthropic.
                    Some("thinking")
                    | Some("redacted_thinking")
                    | Some("server_tool_use")
                    | Some("web_search_tool_result")
                    | Some("web_fetch_tool_result")
                    | Some("code_execution_tool_result") => {}
                    other => {
                        return Err(invalid(
                            format!("{param}.content[{j}]"),
                            format!(
                                "assistant content block type '{}' is not supported",
                                other.unwrap_or("(none)")
                            ),
                        ))
                    }
                }
            }
        }
        _ => {
            return Err(invalid(
                format!("{param}.content"),
                "content must be a string or an array of blocks",
            ))
        }
    }
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    msg.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(msg))
}

fn anthropic_system_to_text(system: &Value) -> Result<String, TranslateError> {
    match system {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                match str_field(b, "type") {
                    Some("text") => texts.push(str_field(b, "text").unwrap_or_default()),
                    _ => {
                        return Err(invalid(
                            format!("system[{i}]"),
                            "system blocks must be text",
                        ))
                    }
                }
            }
            Ok(texts.join("\n\n"))
        }
        _ => Err(invalid(
            "system",
            "system must be a string or an array of text blocks",
        )),
    }
}

/// Anthropic client request -> OpenAI chat request (for Anthropic-format clients served by OpenAI-compatible or Gemini vendors).
pub fn anthropic_request_to_openai(req: &Value) -> Result<Value, TranslateError> {
    let req = req
        .as_object()
        .ok_or_else(|| TranslateError::new("request body must be a JSON object"))?;
    let messages = field(req, "messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "messages must be an array"))?;

    let mut out_msgs = Vec::new();
    if let Some(system) = field(req, "system") {
        let text = anthropic_system_to_text(system)?;
        if !text.is_empty() {
            out_msgs.push(json!({"role": "system", "content": text}));
        }
    }
    for (i, msg) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let content = msg.get("content").unwrap_or(&Value::Null);
        match str_field(msg, "role") {
            Some("user") => user_message_to_openai(content, &p, &mut out_msgs)?,
            Some("assistant") => out_msgs.push(assistant_message_to_openai(content, &p)?),
            other => {
                return Err(invalid(
                    format!("{p}.role"),
                    format!(
                        "message role '{}' is not supported",
                        other.unwrap_or("(none)")
                    ),
                ))
            }
        }
    }

    let mut out = Map::new();
    out.insert(
        "model".into(),
        req.get("model").cloned().unwrap_or(Value::Null),
    );
    out.insert("messages".into(), Value::Array(out_msgs));
    // `max_tokens` rather than `max_completion_tokens`: the one every
    // OpenAI-compatible vendor (and Gemini's endpoint) understands.
    // Checked here: the vendor would otherwise get (and reject, in its own
    // words) what the Anthropic API itself refuses.
    if let Some(mt) = field(req, "max_tokens") {
        if mt.as_u64().is_none_or(|n| n == 0) {
            return Err(invalid(
                "max_tokens",
                "max_tokens must be a positive integer",
            ));
        }
        out.insert("max_tokens".into(), mt.clone());
    }
    if let Some(stops) = field(req, "stop_sequences") {
        let valid = stops
            .as_array()
            .filter(|a| a.iter().all(Value::is_string))
            .ok_or_else(|| {
                invalid(
                    "stop_sequences",
                    "stop_sequences must be an array of strings",
                )
            })?;
        if !valid.is_empty() {
            out.insert("stop".into(), Value::Array(valid.clone()));
        }
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = field(req, key) {
            if !v.is_number() {
                return Err(invalid(key, format!("{key} must be a number")));
            }
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stream) = field(req, "stream") {
        if !stream.is_boolean() {
            return Err(invalid("stream", "stream must be true or false"));
        }
        out.insert("stream".into(), stream.clone());
        if stream.as_bool() == Some(true) {
            // Anthropic clients expect token counts at the end of a stream.
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    if let Some(user) = field(req, "metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    {
        out.insert("user".into(), user.into());
    }

    let mut has_tools = false;
    if let Some(tools) = field(req, "tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| invalid("tools", "tools must be an array"))?;
        let mut converted = Vec::with_capacity(tools.len());
        for (i, tool) in tools.iter().enumerate() {
            let p = format!("tools[{i}]");
            if let Some(kind) = str_field(tool, "type").filter(|k| *k != "custom") {
                return Err(invalid(
                    format!("{p}.type"),
                    format!("server tool '{kind}' is not supported by this model"),
                ));
            }
            let name = str_field(tool, "name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(format!("{p}.name"), "tool has no name"))?;
            let mut function = Map::new();
            function.insert("name".into(), name.into());
            if let Some(d) = str_field(tool, "description") {
                function.insert("description".into(), d.into());
            }
            function.insert(
                "parameters".into(),
                tool.get("input_schema")
                    .filter(|s| s.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            );
            converted.push(json!({"type": "function", "function": Value::Object(function)}));
        }
        has_tools = !converted.is_empty();
        if has_tools {
            out.insert("tools".into(), Value::Array(converted));
        }
    }
    if let Some(tc) = field(req, "tool_choice").filter(|_| has_tools) {
        let choice = match str_field(tc, "type") {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                let name = str_field(tc, "name")
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| invalid("tool_choice.name", "tool_choice names no tool"))?;
                json!({"type": "function", "function": {"name": name}})
            }
            _ => return Err(invalid("tool_choice", "unsupported tool_choice")),
        };
        out.insert("tool_choice".into(), choice);
        if tc.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), false.into());
        }
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------
// OpenAI response -> Anthropic response
// ---------------------------------------------------------------------------

/// Tool call arguments -> `input`. A vendor's malformed arguments (a
/// truncated answer, a sloppy model) are kept under `arguments` rather than
/// failing a paid-for answer: the client's tool validation then reports it
/// to the model, which can retry.
fn arguments_to_input(args: Option<&Value>) -> Value {
    match args {
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({"arguments": s}),
        },
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    }
}

/// Text of an OpenAI message `content` (a string, or parts from some
/// vendors).
fn openai_content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| str_field(p, "type") == Some("text"))
            .filter_map(|p| str_field(p, "text"))
            .collect(),
        _ => String::new(),
    }
}

/// Vendors spell the reasoning field differently (DeepSeek and most
/// OpenAI-compatible servers `reasoning_content`, vLLM/OpenRouter
/// `reasoning`).
fn reasoning_text(v: &Value) -> Option<&str> {
    str_field(v, "reasoning_content")
        .or_else(|| str_field(v, "reasoning"))
        .filter(|s| !s.is_empty())
}

/// OpenAI chat.completion -> Anthropic message response.
pub fn openai_response_to_anthropic(resp: &Value) -> Result<(Value, Usage), TranslateError> {
    if let Some(err) = resp.get("error").filter(|e| !e.is_null()) {
        let message = str_field(err, "message").unwrap_or("vendor returned an error");
        return Err(TranslateError::new(message));
    }
    let choice = resp
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| TranslateError::new("OpenAI response has no choices"))?;
    let msg = choice.get("message").unwrap_or(&Value::Null);

    let mut content = Vec::new();
    if let Some(r) = reasoning_text(msg) {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    let text = openai_content_text(msg.get("content"));
    if !text.is_empty() {
        content.push(text_block(&text));
    }
    let refusal = str_field(msg, "refusal").filter(|r| !r.is_empty());
    if let Some(r) = refusal {
        content.push(text_block(r));
    }
    let mut has_tools = false;
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            let function = call.get("function").unwrap_or(&Value::Null);
            content.push(json!({
                "type": "tool_use",
                "id": str_field(call, "id").unwrap_or_default(),
                "name": str_field(function, "name").unwrap_or_default(),
                "input": arguments_to_input(function.get("arguments"))
            }));
            has_tools = true;
        }
    }

    let finish = str_field(choice, "finish_reason");
    let stop_reason = match stop_reason_for(finish) {
        // Some vendors (Gemini's endpoint among them) say "stop" after tool
        // calls; Anthropic clients only run tools on tool_use.
        "end_turn" if has_tools => "tool_use",
        "end_turn" if refusal.is_some() => "refusal",
        s => s,
    };
    let usage = resp.get("usage").map(usage_from_openai).unwrap_or_default();
    let id = str_field(resp, "id")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| generated_id("msg_"));
    let out = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": resp.get("model").cloned().unwrap_or_else(|| "".into()),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": anthropic_usage_json(&usage)
    });
    Ok((out, usage))
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Pulls (type, message) out of whatever error body a vendor sent:
/// Anthropic's, OpenAI's, Gemini's, `{"error": "text"}`, or plain text.
fn error_parts(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            return (None, None);
        }
        // Enough to diagnose an HTML error page, not a whole one.
        let cut: String = text.chars().take(500).collect();
        return (None, Some(cut));
    };
    let err = v.get("error").unwrap_or(&v);
    if let Some(s) = err.as_str() {
        return (None, Some(s.to_string()));
    }
    let kind = str_field(err, "type").map(str::to_string);
    let message = str_field(err, "message")
        .or_else(|| str_field(&v, "message"))
        .map(str::to_string);
    (kind, message)
}

fn status_for_anthropic_type(kind: &str) -> Option<u16> {
    Some(match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

/// OpenAI-vocabulary error `type` for an HTTP status.
fn openai_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

/// Vendor (Anthropic) error body -> OpenAI error body {"error":{message,type,param,code}} with a sensible status (keep the given status unless it's nonsense).
///
/// `type` is in OpenAI's vocabulary, derived from the status
/// (invalid_request_error, authentication_error, permission_error,
/// not_found_error, rate_limit_exceeded, server_error); `code` carries the
/// Anthropic error type verbatim (e.g. `overloaded_error`), so nothing is
/// lost. A status outside 400..=599 (an error body on a 200, say) is
/// replaced by the one Anthropic documents for the error type, else 502.
/// 529 is kept: OpenAI SDKs retry any 5xx.
pub fn anthropic_error_to_openai(status: u16, body: &[u8]) -> (u16, Value) {
    let (kind, message) = error_parts(body);
    let status = if (400..=599).contains(&status) {
        status
    } else {
        kind.as_deref()
            .and_then(status_for_anthropic_type)
            .unwrap_or(502)
    };
    let openai_type = match kind.as_deref() {
        Some("request_too_large") => "invalid_request_error",
        Some("billing_error") => "insufficient_quota",
        _ => openai_type_for_status(status),
    };
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    let body = json!({
        "error": {
            "message": message,
            "type": openai_type,
            "param": null,
            "code": kind
        }
    });
    (status, body)
}

/// Anthropic error `type` for an HTTP status, per Anthropic's error docs.
fn anthropic_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        // Unavailable means out of capacity, which is what Anthropic calls
        // overloaded; a gateway timeout is just a failed call.
        503 | 529 => "overloaded_error",
        // 400, and the other 4xx as Anthropic documents.
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// OpenAI error body (or any non-JSON text) -> Anthropic error {"type":"error","error":{"type":..,"message":..}}; type from status: 400 invalid_request_error, 401 authentication_error, 403 permission_error, 404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error, 529 overloaded_error, 503/504 -> api_error/overloaded_error as you judge.
///
/// Chosen: 503 -> overloaded_error, 504 -> api_error, 402 -> billing_error,
/// other 4xx -> invalid_request_error, anything else -> api_error.
pub fn openai_error_to_anthropic(status: u16, body: &[u8]) -> Value {
    let (_, message) = error_parts(body);
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    json!({
        "type": "error",
        "error": {"type": anthropic_type_for_status(status), "message": message}
    })
}

/// Error event for a stream that dies mid-answer, in Anthropic format: ("error", {"type":"error","error":{"type":"api_error","message":..}}).
pub fn stream_error_event(message: &str) -> (String, String) {
    let data = json!({"type": "error", "error": {"type": "api_error", "message": message}});
    ("error".to_string(), data.to_string())
}

// ---------------------------------------------------------------------------
// Stream: Anthropic events -> OpenAI chunks
// ---------------------------------------------------------------------------

/// A `tool_use` content block being streamed as an OpenAI tool call.
#[derive(Debug)]
struct StreamedTool {
    block: u64,
    index: usize,
    /// Whether any argument text went out; a tool without parameters must
    /// still end with parseable arguments ("{}").
    sent_args: bool,
    /// `input` from content_block_start, used when no deltas follow.
    input: Value,
}

/// Anthropic SSE events -> OpenAI chat.completion.chunk payloads.
#[derive(Debug)]
pub struct AnthropicToOpenAiStream {
    model: String,
    include_usage: bool,
    id: String,
    created: u64,
    started: bool,
    finish_sent: bool,
    finished: bool,
    tools: Vec<StreamedTool>,
    usage: AnthropicUsage,
    /// The serialised start of every chunk, see `head`.
    head: String,
    /// Tests compare the typed path with this set.
    value_only: bool,
}

impl AnthropicToOpenAiStream {
    pub fn new(model: &str, include_usage: bool) -> Self {
        AnthropicToOpenAiStream {
            model: model.to_string(),
            include_usage,
            id: String::new(),
            created: now_unix(),
            started: false,
            finish_sent: false,
            finished: false,
            tools: Vec::new(),
            usage: AnthropicUsage::default(),
            head: String::new(),
            value_only: false,
        }
    }

    /// True once message_stop was seen (a clean end).
    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn usage(&self) -> Usage {
        self.usage.to_usage()
    }

    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":`
    /// — the same for every chunk of the stream once the role chunk went
    /// out, so it is serialised once (the key order is the one a `Value`
    /// with these fields in this order serialises to).
    fn head(&self) -> Cow<'_, str> {
        if !self.head.is_empty() {
            return Cow::Borrowed(&self.head);
        }
        let mut h = String::with_capacity(112);
        h.push_str(r#"data: {"id":"#);
        typed::push_json_str(&mut h, &self.id);
        h.push_str(r#","object":"chat.completion.chunk","created":"#);
        typed::push_u64(&mut h, self.created);
        h.push_str(r#","model":"#);
        typed::push_json_str(&mut h, &self.model);
        h.push_str(r#","choices":"#);
        Cow::Owned(h)
    }

    fn chunk_raw(&self, choices: &str, usage: Option<&Usage>, out: &mut BytesMut) {
        self.emit(out, |c| c.extend_from_slice(choices.as_bytes()), usage);
    }

    /// One chunk as an SSE event, `data: {head}{choices}{usage}}` and the
    /// blank line, with `choices` written by `write` straight into the
    /// buffer that goes to the client (no allocation per chunk).
    fn emit(&self, out: &mut BytesMut, write: impl FnOnce(&mut BytesMut), usage: Option<&Usage>) {
        out.extend_from_slice(self.head().as_bytes());
        write(out);
        if self.include_usage {
            // OpenAI sends `usage: null` on every chunk but the last.
            match usage {
                None => out.extend_from_slice(br#","usage":null"#),
                Some(u) => {
                    out.extend_from_slice(br#","usage":"#);
                    typed::openai_client::push_openai_usage(out, u);
                }
            }
        }
        out.extend_from_slice(b"}\n\n");
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>, out: &mut BytesMut) {
        let choices =
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]);
        self.chunk_raw(&choices.to_string(), None, out);
    }

    /// The closing chunk: an empty delta and the finish reason.
    fn finish_chunk(&self, finish_reason: &str, out: &mut BytesMut) {
        self.emit(
            out,
            |c| {
                c.extend_from_slice(br#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"#);
                typed::push_json_str(c, finish_reason);
                c.extend_from_slice(b"}]");
            },
            None,
        );
    }

    /// A content or reasoning delta chunk, without building a `Value`: the
    /// head, the delta and a fixed tail (these chunks never carry usage).
    fn text_chunk(&self, reasoning: bool, text: &str, out: &mut BytesMut) {
        out.reserve(self.head.len() + text.len() + 112);
        out.extend_from_slice(self.head().as_bytes());
        out.extend_from_slice(if reasoning {
            br#"[{"index":0,"delta":{"reasoning_content":"#
        } else {
            br#"[{"index":0,"delta":{"content":"#
        });
        typed::push_json_str(out, text);
        out.extend_from_slice(if self.include_usage {
            b"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
        } else {
            b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        });
    }

    /// The role chunk, once, even if message_start went missing.
    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = generated_id("chatcmpl-");
        }
        // id and model are settled now.
        self.head = self.head().into_owned();
        self.chunk_raw(
            r#"[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]"#,
            None,
            out,
        );
    }

    fn tool_args_chunk(&self, index: usize, args: &str, out: &mut BytesMut) {
        self.chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": args}}]}),
            None,
            out,
        );
    }

    /// message_start: the id (unless chunks already went out), the model
    /// when the client gave none, the input usage.
    fn on_message_start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut BytesMut) {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            if !self.started {
                self.id = id.to_string();
            }
        }
        if self.model.is_empty() {
            self.model = model.unwrap_or_default().to_string();
            // A late message_start changes the model of later chunks.
            self.head.clear();
            if self.started {
                self.head = self.head().into_owned();
            }
        }
        self.start(out);
    }

    /// Text or thinking carried by a content_block_start or a
    /// content_block_delta.
    fn on_text(&mut self, text: Option<&str>, thinking: Option<&str>, out: &mut BytesMut) {
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            self.text_chunk(false, t, out);
        }
        if let Some(t) = thinking.filter(|t| !t.is_empty()) {
            self.text_chunk(true, t, out);
        }
    }

    fn on_message_delta(&mut self, stop_reason: Option<&str>, out: &mut BytesMut) {
        if let (Some(stop), false) = (stop_reason, self.finish_sent) {
            self.finish_sent = true;
            self.finish_chunk(finish_reason_for(Some(stop)), out);
        }
    }

    fn on_message_stop(&mut self, out: &mut BytesMut) {
        self.start(out);
        if !self.finish_sent {
            self.finish_sent = true;
            self.finish_chunk("stop", out);
        }
        if self.include_usage {
            self.chunk_raw("[]", Some(&self.usage.to_usage()), out);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.finished = true;
    }

    /// A block start or delta: text or thinking goes out; a tool block
    /// (`[tool kind, text kind, thinking kind]`) is left to the `Value` path.
    fn typed_text(
        &mut self,
        part: Option<&typed::openai_client::EventPart<'_>>,
        [tool, text, thinking]: [&str; 3],
        out: &mut BytesMut,
    ) -> bool {
        let kind = part.and_then(|p| p.kind.as_deref());
        if kind == Some(tool) {
            return false;
        }
        self.start(out);
        if kind == Some(text) {
            self.on_text(part.and_then(|p| p.text.as_deref()), None, out);
        } else if kind == Some(thinking) {
            self.on_text(None, part.and_then(|p| p.thinking.as_deref()), out);
        }
        true
    }

    /// The events of a text or thinking answer, from a typed borrowing
    /// parse. Returns false, having changed nothing, for what it leaves to
    /// the `Value` path: tool blocks, errors, anything with an unexpected
    /// type.
    fn push_typed(
        &mut self,
        ev: &typed::openai_client::StreamEvent<'_>,
        out: &mut BytesMut,
    ) -> bool {
        match ev.kind.as_ref() {
            "message_start" => {
                let msg = ev.message.as_ref();
                if let Some(u) = msg.and_then(|m| m.usage.as_ref()) {
                    self.usage.update_typed(u);
                }
                self.on_message_start(
                    msg.and_then(|m| m.id.as_deref()),
                    msg.and_then(|m| m.model.as_deref()),
                    out,
                );
            }
            "content_block_start" => {
                let kinds = ["tool_use", "text", "thinking"];
                return self.typed_text(ev.content_block.as_deref(), kinds, out);
            }
            "content_block_delta" => {
                let kinds = ["input_json_delta", "text_delta", "thinking_delta"];
                return self.typed_text(ev.delta.as_deref(), kinds, out);
            }
            // Closing a tool block may send its arguments: the Value path.
            "content_block_stop" if !self.tools.is_empty() => return false,
            "content_block_stop" => {}
            "message_delta" => {
                self.start(out);
                if let Some(u) = &ev.usage {
                    self.usage.update_typed(u);
                }
                self.on_message_delta(
                    ev.delta.as_ref().and_then(|d| d.stop_reason.as_deref()),
                    out,
                );
            }
            "message_stop" => self.on_message_stop(out),
            "error" => return false,
            // ping and event types added later.
            _ => {}
        }
        true
    }

    /// One SSE event (event name may be empty when absent; data is the joined data lines). Returns OpenAI `data:` payloads (JSON strings, without the "data: " prefix); after message_stop it returns the final chunks and then "[DONE]".
    pub fn push(&mut self, event: &str, data: &str) -> Result<Vec<String>, TranslateError> {
        let mut out = BytesMut::new();
        self.push_into(event, data, &mut out)?;
        // Every payload is one line of compact JSON (or [DONE]).
        Ok(String::from_utf8_lossy(&out)
            .split_terminator("\n\n")
            .map(|e| e.strip_prefix("data: ").unwrap_or(e).to_string())
            .collect())
    }

    /// [`Self::push`] appending the chunks SSE-encoded (`data: …` and a
    /// blank line each) to the buffer sent to the client. A failed event
    /// leaves the buffer as it was.
    pub fn push_into(
        &mut self,
        event: &str,
        data: &str,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError> {
        let mark = out.len();
        let r = self.push_event(event, data, out);
        if r.is_err() {
            out.truncate(mark);
        }
        r
    }

    /// Whole text-delta events in Anthropic's exact form at the start of
    /// `text` (`typed::openai_client::canonical_text_delta_event`), taken as
    /// [`Self::push_into`] takes them; returns the bytes taken.
    pub fn push_canonical_events(&mut self, text: &str, out: &mut BytesMut) -> usize {
        if self.value_only {
            return 0;
        }
        let mut taken = 0;
        loop {
            let rest = &text[taken..];
            // The commonest event, recognised in one pass.
            if let Some((t, len)) = typed::openai_client::canonical_text_delta_event(rest) {
                self.on_canonical_text(&t, out);
                taken += len;
                continue;
            }
            // Any other whole event whose data is an exact form: what
            // `push_into` does with it. (After message_stop every event
            // is ignored there too.)
            match super::sse::whole_named_event(rest) {
                Some((_, data, len)) if self.finished || self.push_canonical(data, out) => {
                    taken += len;
                }
                _ => return taken,
            }
        }
    }

    fn on_canonical_text(&mut self, text: &str, out: &mut BytesMut) {
        if !self.finished {
            self.start(out);
            self.on_text(Some(text), None, out);
        }
    }

    /// An event whose data is in one of Anthropic's exact forms (text
    /// delta, message_start, ping, message_stop, block stop, empty text
    /// block start, closing message_delta), handled without a parse;
    /// `false`, having done nothing, for any other data.
    fn push_canonical(&mut self, data: &str, out: &mut BytesMut) -> bool {
        if self.value_only {
            return false;
        }
        if let Some(t) = typed::openai_client::canonical_text_delta(data) {
            self.on_canonical_text(&t, out);
            return true;
        }
        if let Some((id, model, usage)) = typed::openai_client::canonical_message_start(data) {
            self.usage.update_typed(&usage);
            self.on_message_start(Some(id), Some(model), out);
            return true;
        }
        // Events with nothing to translate, as Anthropic writes them.
        match data {
            r#"{"type":"ping"}"# => true,
            r#"{"type":"message_stop"}"# => {
                self.on_message_stop(out);
                true
            }
            _ if self.tools.is_empty() && typed::openai_client::is_canonical_block_stop(data) => {
                true
            }
            _ if typed::openai_client::is_canonical_empty_text_start(data) => {
                self.start(out);
                true
            }
            _ => match typed::openai_client::canonical_message_delta(data) {
                Some((stop, output)) => {
                    self.start(out);
                    self.usage.output = output;
                    self.on_message_delta(Some(stop), out);
                    true
                }
                None => false,
            },
        }
    }

    fn push_event(
        &mut self,
        event: &str,
        data: &str,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError> {
        // Events without data only mean something for message_stop/error.
        if self.finished || (data.trim().is_empty() && event != "message_stop" && event != "error")
        {
            return Ok(());
        }
        if self.push_canonical(data, out) {
            return Ok(());
        }
        // Nearly every other event takes the typed path; the data's own
        // `type` decides there as below.
        if let Some(ev) = typed::openai_client::stream_event(data).filter(|_| !self.value_only) {
            if self.push_typed(&ev, out) {
                return Ok(());
            }
        }
        let v: Value = if data.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(data).map_err(|e| {
                TranslateError::new(format!("malformed Anthropic stream event '{event}': {e}"))
            })?
        };
        // The data's own `type` is authoritative; the event line can be absent.
        let kind = str_field(&v, "type").unwrap_or(event);
        match kind {
            "message_start" => {
                let msg = v.get("message").unwrap_or(&Value::Null);
                if let Some(u) = msg.get("usage") {
                    self.usage.update(u);
                }
                self.on_message_start(str_field(msg, "id"), str_field(msg, "model"), out);
            }
            "content_block_start" => {
                self.start(out);
                let block = v.get("content_block").unwrap_or(&Value::Null);
                match str_field(block, "type") {
                    Some("text") => self.on_text(str_field(block, "text"), None, out),
                    Some("thinking") => self.on_text(None, str_field(block, "thinking"), out),
                    Some("tool_use") => {
                        let index = self.tools.len();
                        self.tools.push(StreamedTool {
                            block: count(v.get("index")),
                            index,
                            sent_args: false,
                            input: block.get("input").cloned().unwrap_or(Value::Null),
                        });
                        self.chunk(
                            json!({"tool_calls": [{
                                "index": index,
                                "id": str_field(block, "id").unwrap_or_default(),
                                "type": "function",
                                "function": {
                                    "name": str_field(block, "name").unwrap_or_default(),
                                    "arguments": ""
                                }
                            }]}),
                            None,
                            out,
                        );
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                self.start(out);
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match str_field(delta, "type") {
                    Some("text_delta") => self.on_text(str_field(delta, "text"), None, out),
                    Some("thinking_delta") => self.on_text(None, str_field(delta, "thinking"), out),
                    Some("input_json_delta") => {
                        let block = count(v.get("index"));
                        let partial = str_field(delta, "partial_json").unwrap_or_default();
                        let tool = self.tools.iter_mut().rev().find(|t| t.block == block);
                        if let (Some(tool), false) = (tool, partial.is_empty()) {
                            tool.sent_args = true;
                            let index = tool.index;
                            self.tool_args_chunk(index, partial, out);
                        }
                    }
                    // signature_delta, citations_delta and future kinds have
                    // no OpenAI counterpart.
                    _ => {}
                }
            }
            "content_block_stop" => {
                let block = count(v.get("index"));
                if let Some(tool) = self
                    .tools
                    .iter_mut()
                    .rev()
                    .find(|t| t.block == block && !t.sent_args)
                {
                    tool.sent_args = true;
                    let args = match &tool.input {
                        Value::Object(m) if !m.is_empty() => tool.input.to_string(),
                        _ => "{}".to_string(),
                    };
                    let index = tool.index;
                    self.tool_args_chunk(index, &args, out);
                }
            }
            "message_delta" => {
                self.start(out);
                if let Some(u) = v.get("usage") {
                    self.usage.update(u);
                }
                let stop = v.get("delta").and_then(|d| str_field(d, "stop_reason"));
                self.on_message_delta(stop, out);
            }
            "message_stop" => self.on_message_stop(out),
            "error" => return Err(TranslateError::new(anthropic_error_text(&v))),
            // ping and event types added later.
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Stream: OpenAI chunks -> Anthropic events
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OpenBlock {
    Text(usize),
    Thinking(usize),
    Tool(usize),
}

impl OpenBlock {
    pub(crate) fn index(self) -> usize {
        match self {
            OpenBlock::Text(i) | OpenBlock::Thinking(i) | OpenBlock::Tool(i) => i,
        }
    }
}

/// A streamed OpenAI tool call and the tool_use block it became.
#[derive(Debug)]
pub(crate) struct OaTool {
    oa_index: u64,
    /// Empty when the vendor sent none.
    vendor_id: String,
    block: usize,
}

/// OpenAI chat.completion.chunk payloads -> Anthropic SSE events.
///
/// The state is crate-visible because the typed fast path
/// (`crate::protocol::typed::anthropic_client`) drives the same state for
/// the common chunks, so a stream can switch between the two paths chunk by
/// chunk.
#[derive(Debug)]
pub struct OpenAiToAnthropicStream {
    pub(crate) model: String,
    pub(crate) id: String,
    pub(crate) started: bool,
    pub(crate) finished: bool,
    pub(crate) next_block: usize,
    pub(crate) open: Option<OpenBlock>,
    /// Every tool call seen, in order.
    pub(crate) tools: Vec<OaTool>,
    pub(crate) stop_reason: Option<&'static str>,
    pub(crate) usage: Usage,
    /// A refusal was streamed (as text): a plain stop then reads `refusal`,
    /// as for a whole answer.
    pub(crate) refused: bool,
}

type Event = (String, String);

fn event(name: &str, data: Value) -> Event {
    (name.to_string(), data.to_string())
}

impl OpenAiToAnthropicStream {
    pub fn new(model: &str) -> Self {
        OpenAiToAnthropicStream {
            model: model.to_string(),
            id: String::new(),
            started: false,
            finished: false,
            next_block: 0,
            open: None,
            tools: Vec::new(),
            stop_reason: None,
            usage: Usage::default(),
            refused: false,
        }
    }

    /// The Anthropic stop reason for an OpenAI finish_reason: `end_turn`
    /// becomes `tool_use` after tool calls (some vendors say "stop" there)
    /// and `refusal` after a refusal.
    pub(crate) fn set_finish(&mut self, finish_reason: &str) {
        let reason = match stop_reason_for(Some(finish_reason)) {
            "end_turn" if !self.tools.is_empty() => "tool_use",
            "end_turn" if self.refused => "refusal",
            r => r,
        };
        self.stop_reason = Some(reason);
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    fn start(&mut self, chunk: Option<&Value>, out: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(c) = chunk {
            if let Some(id) = str_field(c, "id").filter(|s| !s.is_empty()) {
                self.id = id.to_string();
            }
            if self.model.is_empty() {
                self.model = str_field(c, "model").unwrap_or_default().to_string();
            }
        }
        if self.id.is_empty() {
            self.id = generated_id("msg_");
        }
        out.push(event(
            "message_start",
            json!({
                "type": "message_start",
                "message": {
                    "id": self.id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {
                        "input_tokens": self.usage.prompt_tokens.saturating_sub(self.usage.cached_tokens),
                        "output_tokens": 0
                    }
                }
            }),
        ));
    }

    fn close_block(&mut self, out: &mut Vec<Event>) {
        if let Some(open) = self.open.take() {
            out.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": open.index()}),
            ));
        }
    }

    fn open_block(&mut self, content_block: Value, out: &mut Vec<Event>) -> usize {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        ));
        index
    }

    fn block_delta(index: usize, delta: Value) -> Event {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    fn push_thinking(&mut self, text: &str, out: &mut Vec<Event>) {
        let index = match self.open {
            Some(OpenBlock::Thinking(i)) => i,
            _ => {
                let i = self.open_block(
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    out,
                );
                self.open = Some(OpenBlock::Thinking(i));
                i
            }
        };
        out.push(Self::block_delta(
            index,
            json!({"type": "thinking_delta", "thinking": text}),
        ));
    }

    fn push_text(&mut self, text: &str, out: &mut Vec<Event>) {
        let index = match self.open {
            Some(OpenBlock::Text(i)) => i,
            _ => {
                let i = self.open_block(json!({"type": "text", "text": ""}), out);
                self.open = Some(OpenBlock::Text(i));
                i
            }
        };
        out.push(Self::block_delta(
            index,
            json!({"type": "text_delta", "text": text}),
        ));
    }

    fn push_tool_call(&mut self, position: usize, call: &Value, out: &mut Vec<Event>) {
        // Gemini's endpoint may omit `index`: fall back to the position.
        let oa_index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let function = call.get("function").unwrap_or(&Value::Null);
        let vendor_id = str_field(call, "id").filter(|s| !s.is_empty());
        // A known index continues its tool, unless the chunk names another
        // id there (parallel calls streamed whole, each at index 0).
        let known = self
            .tools
            .iter()
            .rev()
            .find(|t| t.oa_index == oa_index)
            .filter(|t| vendor_id.is_none_or(|id| t.vendor_id.is_empty() || t.vendor_id == id));
        let block = match known {
            // Usually the open block. Otherwise a late delta for a closed
            // one (a vendor interleaving parallel calls): Anthropic cannot
            // reopen a block, so the delta goes to its old index, which the
            // SDK accumulators still apply.
            Some(t) => t.block,
            None => {
                let id = vendor_id.map(str::to_string).unwrap_or_else(|| {
                    format!("toolu_{}_{}", sanitize_tool_id(&self.id), self.next_block)
                });
                let name = str_field(function, "name").unwrap_or_default();
                let block = self.open_block(
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
                self.open = Some(OpenBlock::Tool(block));
                self.tools.push(OaTool {
                    oa_index,
                    vendor_id: vendor_id.unwrap_or_default().to_string(),
                    block,
                });
                block
            }
        };
        if let Some(args) = str_field(function, "arguments").filter(|a| !a.is_empty()) {
            out.push(Self::block_delta(
                block,
                json!({"type": "input_json_delta", "partial_json": args}),
            ));
        }
    }

    /// One OpenAI `data:` payload (JSON chunk or "[DONE]"). Returns (event name, data JSON) pairs.
    pub fn push(&mut self, data: &str) -> Result<Vec<(String, String)>, TranslateError> {
        let data = data.trim();
        if self.finished || data.is_empty() {
            return Ok(Vec::new());
        }
        if data == "[DONE]" {
            return Ok(self.finish(true));
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::new(format!("malformed OpenAI stream chunk: {e}")))?;
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = str_field(err, "message")
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            return Err(TranslateError::new(message));
        }
        let mut out = Vec::new();
        // Usage can ride on any chunk (some vendors repeat it on each).
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = usage_from_openai(u);
        }
        self.start(Some(&chunk), &mut out);

        let choices = chunk.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            // n > 1 cannot be expressed; follow the first choice only.
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.get("delta") {
                if let Some(r) = reasoning_text(delta) {
                    self.push_thinking(r, &mut out);
                }
                if let Some(t) = str_field(delta, "content").filter(|t| !t.is_empty()) {
                    self.push_text(t, &mut out);
                }
                // A refusal goes out as text, as in a whole answer.
                if let Some(r) = str_field(delta, "refusal").filter(|r| !r.is_empty()) {
                    self.refused = true;
                    self.push_text(r, &mut out);
                }
                if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                    for (pos, call) in calls.iter().enumerate() {
                        self.push_tool_call(pos, call, &mut out);
                    }
                }
            }
            if let Some(fr) = str_field(choice, "finish_reason") {
                self.close_block(&mut out);
                self.set_finish(fr);
            }
        }
        Ok(out)
    }

    /// Called when the upstream stream ended (cleanly or not: `clean`); closes open blocks and emits message_delta + message_stop if not yet sent. Returns nothing if already finished.
    ///
    /// Without a finish_reason the stop reason is `end_turn` (tool_use when
    /// tool calls were streamed); an unclean end is reported by the caller
    /// with [`stream_error_event`], which Anthropic has no stop reason for.
    pub fn finish(&mut self, clean: bool) -> Vec<(String, String)> {
        let _ = clean;
        if self.finished {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.start(None, &mut out);
        self.close_block(&mut out);
        let reason = self.stop_reason.unwrap_or(if self.tools.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        });
        let mut usage = Map::new();
        usage.insert(
            "input_tokens".into(),
            self.usage
                .prompt_tokens
                .saturating_sub(self.usage.cached_tokens)
                .into(),
        );
        if self.usage.cached_tokens > 0 {
            usage.insert(
                "cache_read_input_tokens".into(),
                self.usage.cached_tokens.into(),
            );
        }
        usage.insert("output_tokens".into(), self.usage.completion_tokens.into());
        out.push(event(
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": Value::Object(usage)
            }),
        ));
        out.push(event("message_stop", json!({"type": "message_stop"})));
        self.finished = true;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunk as the stream translator built it before chunks were
    /// serialised by hand: a `Value` map with these keys in this order.
    fn value_chunk(s: &AnthropicToOpenAiStream, choices: Value, usage: Option<Value>) -> String {
        let mut c = Map::new();
        c.insert("id".into(), s.id.clone().into());
        c.insert("object".into(), "chat.completion.chunk".into());
        c.insert("created".into(), s.created.into());
        c.insert("model".into(), s.model.clone().into());
        c.insert("choices".into(), choices);
        if s.include_usage {
            c.insert("usage".into(), usage.unwrap_or(Value::Null));
        }
        Value::Object(c).to_string()
    }

    #[test]
    fn anthropic_requests_with_invalid_scalars_are_rejected_with_the_field() {
        let base = json!({"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
        for (field, value) in [
            ("max_tokens", json!(0)),
            ("max_tokens", json!(-1)),
            ("max_tokens", json!("256")),
            ("max_tokens", json!(1.5)),
            ("temperature", json!("hot")),
            ("top_p", json!([1])),
            ("stream", json!("yes")),
            ("stop_sequences", json!("END")),
            ("stop_sequences", json!([1, 2])),
        ] {
            let mut req = base.clone();
            req[field] = value.clone();
            let err = anthropic_request_to_openai(&req).err();
            assert_eq!(
                err.and_then(|e| e.param).as_deref(),
                Some(field),
                "{field}: {value}"
            );
        }
        assert!(anthropic_request_to_openai(&base).is_ok());
    }

    #[test]
    fn streamed_refusal_reaches_anthropic_clients_as_text_and_stop_reason() {
        let mut t = OpenAiToAnthropicStream::new("gpt-4o");
        let chunk = |delta: Value, fr: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": fr}]})
            .to_string()
        };
        let mut events = Vec::new();
        for c in [
            chunk(
                json!({"role": "assistant", "content": null, "refusal": ""}),
                Value::Null,
            ),
            chunk(json!({"refusal": "I can't help with that."}), Value::Null),
            chunk(json!({}), json!("stop")),
        ] {
            events.extend(t.push(&c).unwrap_or_default());
        }
        events.extend(t.finish(true));
        let text: String = events
            .iter()
            .filter(|(name, _)| name == "content_block_delta")
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(text, "I can't help with that.");
        let delta = events
            .iter()
            .find(|(name, _)| name == "message_delta")
            .and_then(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .unwrap_or_default();
        assert_eq!(delta["delta"]["stop_reason"], "refusal", "{events:?}");
    }

    #[test]
    fn typed_stream_path_matches_the_value_path() {
        // xorshift64: random event sequences, text, thinking and tools mixed.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let texts = [
            "",
            "a",
            "quote\"",
            "back\\slash",
            "new\nline",
            "🦀",
            "\u{1}",
        ];
        let mut typed_events = 0;
        for round in 0..2000 {
            let mut events: Vec<(String, String)> = Vec::new();
            let mut ev =
                |name: &str, data: Value| events.push((name.to_string(), data.to_string()));
            if rnd(10) > 0 {
                let id = ["msg_1", "", "msg_\"q"][rnd(3) as usize];
                let usage = json!({"input_tokens": rnd(50), "output_tokens": 1, "cache_read_input_tokens": ([Value::Null, json!(3)][rnd(2) as usize])});
                let msg = if rnd(2) == 0 {
                    // Anthropic's own key order (the canonical fast form).
                    json!({"id": id, "type": "message", "role": "assistant", "model": "claude-x",
                        "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage})
                } else {
                    let mut msg =
                        json!({"id": id, "type": "message", "role": "assistant", "content": []});
                    if rnd(4) > 0 {
                        msg["model"] = json!("claude-x");
                    }
                    if rnd(3) > 0 {
                        msg["usage"] = usage;
                    }
                    msg
                };
                ev(
                    "message_start",
                    json!({"type": "message_start", "message": msg}),
                );
            }
            for index in 0..rnd(4) {
                match rnd(4) {
                    0 => {
                        ev(
                            "content_block_start",
                            json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
                        );
                        ev(
                            "content_block_delta",
                            json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":1}"}}),
                        );
                    }
                    1 => {
                        ev(
                            "content_block_start",
                            json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": texts[rnd(7) as usize]}}),
                        );
                        ev(
                            "content_block_delta",
                            json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": texts[rnd(7) as usize]}}),
                        );
                        ev(
                            "content_block_delta",
                            json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "sig"}}),
                        );
                    }
                    _ => {
                        ev(
                            "content_block_start",
                            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": texts[rnd(7) as usize]}}),
                        );
                        for _ in 0..rnd(4) {
                            ev(
                                "content_block_delta",
                                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": texts[rnd(7) as usize]}}),
                            );
                        }
                    }
                }
                if rnd(5) == 0 {
                    ev("ping", json!({"type": "ping"}));
                }
                ev(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                );
            }
            if rnd(5) > 0 {
                ev(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": (["end_turn", "max_tokens", "tool_use"][rnd(3) as usize]), "stop_sequence": null}, "usage": {"output_tokens": rnd(90)}}),
                );
            }
            if rnd(8) == 0 {
                ev(
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
                );
            }
            ev("message_stop", json!({"type": "message_stop"}));
            let client_model = ["", "gpt-4o"][round % 2];
            let mut fast = AnthropicToOpenAiStream::new(client_model, round % 3 == 0);
            let mut slow = AnthropicToOpenAiStream::new(client_model, round % 3 == 0);
            slow.value_only = true;
            slow.created = fast.created;
            for (name, data) in &events {
                typed_events += usize::from(typed::openai_client::stream_event(data).is_some());
                let (a, b) = (fast.push(name, data), slow.push(name, data));
                // Generated ids differ between the two translators.
                let norm = |r: Result<Vec<String>, TranslateError>, id: &str| {
                    r.map(|v| {
                        v.into_iter()
                            .map(|c| {
                                if id.is_empty() {
                                    c
                                } else {
                                    c.replace(id, "ID")
                                }
                            })
                            .collect::<Vec<_>>()
                    })
                };
                let (fid, sid) = (fast.id.clone(), slow.id.clone());
                assert_eq!(
                    norm(a, &fid),
                    norm(b, &sid),
                    "event {name} {data} in {events:?}"
                );
            }
            assert_eq!(fast.usage(), slow.usage());
        }
        assert!(typed_events > 10_000, "{typed_events}");
    }

    #[test]
    fn hand_serialised_chunks_match_value_serialisation() {
        let texts = [
            "",
            "plain",
            "quote \" and \\ backslash",
            "line\nbreak\ttab",
            "\u{1}\u{1f}",
            "日本語 🦀",
            "\u{2028}",
            "</script>",
        ];
        for include_usage in [false, true] {
            for (client_model, id) in [("gpt-4o", "msg_01"), ("", "msg_\"odd\\"), ("m\n", "")] {
                let mut s = AnthropicToOpenAiStream::new(client_model, include_usage);
                let start = json!({"type": "message_start", "message": {"id": id, "model": "claude-\"x", "usage": {"input_tokens": 7}}});
                let first = s
                    .push("message_start", &start.to_string())
                    .unwrap_or_default();
                assert_eq!(
                    first,
                    vec![value_chunk(
                        &s,
                        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
                        None
                    )]
                );
                for t in texts {
                    for (key, kind, field) in [
                        ("content", "text_delta", "text"),
                        ("reasoning_content", "thinking_delta", "thinking"),
                    ] {
                        let ev = json!({"type": "content_block_delta", "index": 0, "delta": {"type": kind, field: t}});
                        let got = s
                            .push("content_block_delta", &ev.to_string())
                            .unwrap_or_default();
                        let want: Vec<String> = if t.is_empty() {
                            vec![]
                        } else {
                            vec![value_chunk(
                                &s,
                                json!([{"index": 0, "delta": {key: t}, "logprobs": null, "finish_reason": null}]),
                                None,
                            )]
                        };
                        assert_eq!(got, want);
                    }
                }
                let delta = json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}});
                let got = s
                    .push("message_delta", &delta.to_string())
                    .unwrap_or_default();
                assert_eq!(
                    got,
                    vec![value_chunk(
                        &s,
                        json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length"}]),
                        None
                    )]
                );
                let got = s
                    .push("message_stop", r#"{"type":"message_stop"}"#)
                    .unwrap_or_default();
                let mut want = Vec::new();
                if include_usage {
                    want.push(value_chunk(
                        &s,
                        json!([]),
                        Some(openai_usage_json(&s.usage())),
                    ));
                }
                want.push("[DONE]".to_string());
                assert_eq!(got, want);
            }
        }
    }

    fn opts() -> RequestOptions {
        RequestOptions {
            default_max_tokens: 4096,
            drop_sampling: false,
        }
    }

    fn to_anthropic(req: Value) -> Value {
        openai_request_to_anthropic(&req, &opts()).unwrap()
    }

    fn to_anthropic_err(req: Value) -> TranslateError {
        openai_request_to_anthropic(&req, &opts()).unwrap_err()
    }

    // ----- OpenAI request -> Anthropic request -----

    #[test]
    fn simple_chat_request_maps_to_messages_body() {
        let out = to_anthropic(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!"}
            ],
            "max_tokens": 1024,
            "temperature": 0.7,
            "stream": true
        }));
        assert_eq!(
            out,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "system": "You are a helpful assistant.",
                "messages": [{"role": "user", "content": "Hello!"}],
                "temperature": 0.7,
                "stream": true
            })
        );
    }

    #[test]
    fn system_and_developer_messages_anywhere_are_collected_in_order() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Rule one."},
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": [{"type": "text", "text": "Rule two."}]},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"}
            ]
        }));
        assert_eq!(
            out["system"],
            json!([
                {"type": "text", "text": "Rule one."},
                {"type": "text", "text": "Rule two."}
            ])
        );
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"}
            ])
        );
    }

    #[test]
    fn system_cache_control_is_kept_and_forces_block_form() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": [
                    {"type": "text", "text": "Long reference text...", "cache_control": {"type": "ephemeral"}}
                ]},
                {"role": "user", "content": "Question"}
            ]
        }));
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "Long reference text...", "cache_control": {"type": "ephemeral"}}])
        );
    }

    #[test]
    fn user_part_cache_control_is_kept() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Big doc", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Summarise it"}
            ]}]
        }));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "text", "text": "Big doc", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Summarise it"}
            ])
        );
    }

    #[test]
    fn system_with_non_text_part_is_rejected_with_path() {
        let e = to_anthropic_err(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
            ]
        }));
        assert_eq!(e.param.as_deref(), Some("messages[1].content[0]"));
    }

    #[test]
    fn consecutive_same_role_messages_are_merged() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "First"},
                {"role": "user", "content": "Second"},
                {"role": "assistant", "content": "A"},
                {"role": "assistant", "content": "B"},
                {"role": "user", "content": "Third"}
            ]
        }));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "First"},
                    {"type": "text", "text": "Second"}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "A"},
                    {"type": "text", "text": "B"}
                ]},
                {"role": "user", "content": "Third"}
            ])
        );
    }

    #[test]
    fn conversation_starting_with_assistant_gets_a_user_turn_first() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "assistant", "content": "How can I help?"},
                {"role": "user", "content": "Tell me a joke"}
            ]
        }));
        assert_eq!(out["messages"][0], json!({"role": "user", "content": "."}));
        assert_eq!(out["messages"][1]["role"], "assistant");
        assert_eq!(out["messages"][2]["role"], "user");
    }

    #[test]
    fn system_only_request_still_has_a_user_turn() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "system", "content": "Say hi"}]
        }));
        assert_eq!(out["messages"], json!([{"role": "user", "content": "."}]));
    }

    #[test]
    fn final_assistant_prefill_loses_trailing_whitespace() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "List three colours as JSON"},
                {"role": "assistant", "content": "[ \n"}
            ]
        }));
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": "["})
        );
    }

    #[test]
    fn empty_text_is_dropped() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": ""},
                {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "real"}]}
            ]
        }));
        assert_eq!(
            out["messages"],
            json!([{"role": "user", "content": "real"}])
        );
    }

    #[test]
    fn base64_image_becomes_base64_source() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}}
            ]}]
        }));
        assert_eq!(
            out["messages"][0]["content"][1],
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
        );
    }

    #[test]
    fn http_image_becomes_url_source() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/a.jpg"}}
            ]}]
        }));
        assert_eq!(
            out["messages"][0]["content"],
            json!([{"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/a.jpg"}}])
        );
    }

    #[test]
    fn non_base64_data_url_and_other_schemes_are_rejected() {
        for url in ["data:image/svg+xml,<svg/>", "ftp://host/x.png", ""] {
            let e = to_anthropic_err(json!({
                "model": "m",
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "x"},
                    {"type": "image_url", "image_url": {"url": url}}
                ]}]
            }));
            assert_eq!(e.param.as_deref(), Some("messages[0].content[1]"), "{url}");
        }
    }

    #[test]
    fn input_audio_part_is_rejected_with_param_path() {
        let e = to_anthropic_err(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Transcribe"},
                    {"type": "input_audio", "input_audio": {"data": "UklGR...", "format": "wav"}}
                ]}
            ]
        }));
        assert_eq!(e.param.as_deref(), Some("messages[2].content[1]"));
        assert!(e.message.contains("input_audio"));
    }

    #[test]
    fn inline_pdf_file_becomes_document() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
                {"type": "text", "text": "Summarise"}
            ]}]
        }));
        assert_eq!(
            out["messages"][0]["content"][0],
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}})
        );
        let e = to_anthropic_err(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]
        }));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0]"));
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens_and_default_applies() {
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 100, "max_completion_tokens": 200
        }));
        assert_eq!(out["max_tokens"], 200);
        let out =
            to_anthropic(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(out["max_tokens"], 4096);
        let e = to_anthropic_err(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0
        }));
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn sampling_params_are_clamped_and_mapped() {
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "temperature": 1.6, "top_p": 0.9, "stop": "\n\nHuman:",
            "frequency_penalty": 0.5, "presence_penalty": 0.1, "seed": 7, "logit_bias": {}
        }));
        assert_eq!(out["temperature"], 1.0);
        assert_eq!(out["top_p"], 0.9);
        assert_eq!(out["stop_sequences"], json!(["\n\nHuman:"]));
        for k in [
            "frequency_penalty",
            "presence_penalty",
            "seed",
            "logit_bias",
            "stop",
        ] {
            assert!(out.get(k).is_none(), "{k} leaked");
        }
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "stop": ["END", "", "STOP"]
        }));
        assert_eq!(out["stop_sequences"], json!(["END", "STOP"]));
    }

    #[test]
    fn drop_sampling_removes_temperature_top_p_top_k() {
        let req = json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2, "top_p": 0.5, "top_k": 40
        });
        let out = openai_request_to_anthropic(
            &req,
            &RequestOptions {
                default_max_tokens: 1000,
                drop_sampling: true,
            },
        )
        .unwrap();
        for k in ["temperature", "top_p", "top_k"] {
            assert!(out.get(k).is_none(), "{k} kept");
        }
        let kept = to_anthropic(req);
        assert_eq!(kept["top_k"], 40);
    }

    #[test]
    fn user_becomes_metadata_user_id() {
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "user": "user-1234"
        }));
        assert_eq!(out["metadata"], json!({"user_id": "user-1234"}));
    }

    #[test]
    fn n_greater_than_one_is_rejected() {
        let e = to_anthropic_err(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2
        }));
        assert_eq!(e.param.as_deref(), Some("n"));
        let ok = to_anthropic(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1}),
        );
        assert!(ok.get("n").is_none());
    }

    #[test]
    fn response_format_json_schema_appends_system_instruction_with_schema() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Extract the event."},
                {"role": "user", "content": "Alice and Bob go to a science fair on Friday."}
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "calendar_event",
                    "strict": true,
                    "schema": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "date": {"type": "string"}},
                        "required": ["name", "date"],
                        "additionalProperties": false
                    }
                }
            }
        }));
        let system = out["system"].as_array().unwrap();
        assert_eq!(system.len(), 2);
        assert_eq!(system[0]["text"], "Extract the event.");
        let instruction = system[1]["text"].as_str().unwrap();
        assert!(instruction.contains("calendar_event"));
        assert!(instruction.contains(r#""required":["name","date"]"#));
        assert!(out.get("tools").is_none());
        assert!(out.get("response_format").is_none());
    }

    #[test]
    fn response_format_json_object_alone_becomes_system_string() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "Give me a user"}],
            "response_format": {"type": "json_object"}
        }));
        assert_eq!(out["system"], JSON_OBJECT_INSTRUCTION);
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "text"}
        }));
        assert!(out.get("system").is_none());
    }

    fn weather_tool() -> Value {
        json!({
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                    },
                    "required": ["location"]
                }
            }
        })
    }

    #[test]
    fn tools_become_input_schema_tools() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "Weather in SF?"}],
            "tools": [
                weather_tool(),
                {"type": "function", "function": {"name": "get_time"}},
                {"type": "function", "function": {"name": "lookup", "parameters": {"properties": {"q": {"type": "string"}}}}}
            ],
            "tool_choice": "auto"
        }));
        assert_eq!(
            out["tools"][0],
            json!({
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": weather_tool()["function"]["parameters"]
            })
        );
        assert_eq!(
            out["tools"][1],
            json!({"name": "get_time", "input_schema": {"type": "object", "properties": {}}})
        );
        assert_eq!(
            out["tools"][2]["input_schema"],
            json!({"type": "object", "properties": {"q": {"type": "string"}}})
        );
        assert_eq!(out["tool_choice"], json!({"type": "auto"}));
    }

    #[test]
    fn tool_choice_variants_map() {
        let cases = [
            (json!("auto"), json!({"type": "auto"})),
            (json!("none"), json!({"type": "none"})),
            (json!("required"), json!({"type": "any"})),
            (
                json!({"type": "function", "function": {"name": "get_weather"}}),
                json!({"type": "tool", "name": "get_weather"}),
            ),
        ];
        for (choice, expected) in cases {
            let out = to_anthropic(json!({
                "model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": [weather_tool()], "tool_choice": choice
            }));
            assert_eq!(out["tool_choice"], expected);
        }
    }

    #[test]
    fn parallel_tool_calls_false_disables_parallel_tool_use() {
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [weather_tool()], "parallel_tool_calls": false
        }));
        assert_eq!(
            out["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [weather_tool()], "tool_choice": "required", "parallel_tool_calls": false
        }));
        assert_eq!(
            out["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn tool_choice_without_tools_is_dropped() {
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [], "tool_choice": "auto", "parallel_tool_calls": false
        }));
        assert!(out.get("tools").is_none());
        assert!(out.get("tool_choice").is_none());
    }

    #[test]
    fn non_function_tool_is_rejected() {
        let e = to_anthropic_err(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [weather_tool(), {"type": "custom", "custom": {"name": "x"}}]
        }));
        assert_eq!(e.param.as_deref(), Some("tools[1].type"));
    }

    fn tool_conversation() -> Value {
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "user", "content": "What's the weather in Paris and Tokyo?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}},
                    {"id": "call_def456", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Tokyo\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_abc123", "content": "18C, cloudy"},
                {"role": "tool", "tool_call_id": "call_def456", "content": "24C, sunny"},
                {"role": "user", "content": "Which is warmer?"}
            ],
            "tools": [weather_tool()]
        })
    }

    #[test]
    fn assistant_tool_calls_become_tool_use_with_parsed_input() {
        let out = to_anthropic(tool_conversation());
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_def456", "name": "get_weather", "input": {"location": "Tokyo"}}
            ]})
        );
    }

    #[test]
    fn consecutive_tool_messages_and_following_user_text_form_one_user_message() {
        let out = to_anthropic(tool_conversation());
        assert_eq!(out["messages"].as_array().unwrap().len(), 3);
        assert_eq!(
            out["messages"][2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_abc123", "content": "18C, cloudy"},
                {"type": "tool_result", "tool_use_id": "call_def456", "content": "24C, sunny"},
                {"type": "text", "text": "Which is warmer?"}
            ]})
        );
    }

    #[test]
    fn assistant_text_precedes_tool_use_in_one_message() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "Let me check.", "tool_calls": [
                    {"id": "toolu_01A09q90qw90lq917835lq9", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": [{"type": "text", "text": "Sunny"}]}
            ]
        }));
        assert_eq!(
            out["messages"][1]["content"],
            json!([
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}}
            ])
        );
        assert_eq!(
            out["messages"][2]["content"],
            json!([{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": [{"type": "text", "text": "Sunny"}]}])
        );
    }

    #[test]
    fn invalid_tool_arguments_are_rejected_with_path() {
        let e = to_anthropic_err(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": "}}
                ]}
            ]
        }));
        assert_eq!(
            e.param.as_deref(),
            Some("messages[1].tool_calls[0].function.arguments")
        );
        let e = to_anthropic_err(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "[1,2]"}}
                ]}
            ]
        }));
        assert_eq!(
            e.param.as_deref(),
            Some("messages[1].tool_calls[0].function.arguments")
        );
    }

    #[test]
    fn tool_ids_with_bad_characters_are_sanitized_consistently() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [
                    {"id": "functions.get_weather:0", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                    {"id": "functions_get_weather_0", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "a"},
                {"role": "tool", "tool_call_id": "functions_get_weather_0", "content": "b"}
            ]
        }));
        let use_id = out["messages"][1]["content"][0]["id"].as_str().unwrap();
        let result_id = out["messages"][2]["content"][0]["tool_use_id"]
            .as_str()
            .unwrap();
        assert_eq!(use_id, result_id);
        assert!(use_id.chars().all(is_anthropic_id_char));
        assert!(use_id.starts_with("functions_get_weather_0_"));
        // The valid id that looks the same after cleaning stays distinct.
        assert_eq!(
            out["messages"][1]["content"][1]["id"],
            "functions_get_weather_0"
        );
        assert_ne!(use_id, "functions_get_weather_0");
    }

    #[test]
    fn tool_message_without_id_is_rejected() {
        let e = to_anthropic_err(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}]
        }));
        assert_eq!(e.param.as_deref(), Some("messages[1].tool_call_id"));
    }

    #[test]
    fn reasoning_effort_enables_thinking_and_drops_sampling() {
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "Prove it"}],
            "reasoning_effort": "medium", "max_completion_tokens": 8000, "temperature": 0.3
        }));
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(out["max_tokens"], 8000);
        assert!(out.get("temperature").is_none());
    }

    #[test]
    fn reasoning_budget_larger_than_max_tokens_raises_max_tokens() {
        let out = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": "high", "max_tokens": 2000
        }));
        assert_eq!(out["thinking"]["budget_tokens"], 16384);
        assert_eq!(out["max_tokens"], 18384);
        let low = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"
        }));
        assert_eq!(low["thinking"]["budget_tokens"], 1024);
        let none = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "none"
        }));
        assert!(none.get("thinking").is_none());
        let e = to_anthropic_err(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"
        }));
        assert_eq!(e.param.as_deref(), Some("reasoning_effort"));
    }

    #[test]
    fn thinking_is_left_off_where_anthropic_would_reject_it() {
        // Forced tool use.
        let forced = to_anthropic(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [weather_tool()], "tool_choice": "required", "reasoning_effort": "low"
        }));
        assert!(forced.get("thinking").is_none());
        // Mid tool loop: the tool_use turn has no thinking signature.
        let mut conv = tool_conversation();
        conv["messages"].as_array_mut().unwrap().pop();
        conv["reasoning_effort"] = json!("high");
        let looped = to_anthropic(conv);
        assert!(looped.get("thinking").is_none());
        // Results plus new text in one user turn still continue the loop.
        let mut conv = tool_conversation();
        conv["reasoning_effort"] = json!("high");
        assert!(to_anthropic(conv).get("thinking").is_none());
        // A fresh user turn after the loop's final answer is fine.
        let mut conv = tool_conversation();
        let msgs = conv["messages"].as_array_mut().unwrap();
        msgs.push(json!({"role": "assistant", "content": "Tokyo."}));
        msgs.push(json!({"role": "user", "content": "And tomorrow?"}));
        conv["reasoning_effort"] = json!("high");
        let fresh = to_anthropic(conv);
        assert!(fresh.get("thinking").is_some());
    }

    #[test]
    fn echoed_reasoning_content_is_not_sent_back() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "answer", "reasoning_content": "I thought"},
                {"role": "user", "content": "y"}
            ]
        }));
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": "answer"})
        );
    }

    #[test]
    fn malformed_requests_fail_cleanly() {
        assert!(openai_request_to_anthropic(&json!([]), &opts()).is_err());
        assert_eq!(
            to_anthropic_err(json!({"model": "m"})).param.as_deref(),
            Some("messages")
        );
        let e = to_anthropic_err(json!({"model": "m", "messages": [{"content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = to_anthropic_err(
            json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}),
        );
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e =
            to_anthropic_err(json!({"model": "m", "messages": [{"role": "user", "content": 5}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let out = to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x", "name": "alice", "x-extra": 1}],
            "store": true, "metadata": {"k": "v"}, "service_tier": "auto",
            "stream_options": {"include_usage": true}, "some_future_field": {"a": 1}
        }));
        assert_eq!(
            out,
            json!({"model": "m", "max_tokens": 4096, "messages": [{"role": "user", "content": "x"}]})
        );
    }

    // ----- Anthropic response -> OpenAI response -----

    #[test]
    fn text_response_maps_to_chat_completion() {
        let resp = json!({
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Hi! My name is Claude."}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1800}
        });
        let (out, usage) = anthropic_response_to_openai(&resp).unwrap();
        assert_eq!(out["id"], "msg_013Zva2CMHLNnXjNJJKqJ2EF");
        assert_eq!(out["object"], "chat.completion");
        assert!(out["created"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(out["model"], "claude-sonnet-4-5-20250929");
        assert_eq!(
            out["choices"][0]["message"],
            json!({"role": "assistant", "content": "Hi! My name is Claude."})
        );
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            out["usage"],
            json!({
                "prompt_tokens": 3995, "completion_tokens": 503, "total_tokens": 4498,
                "prompt_tokens_details": {"cached_tokens": 1800}
            })
        );
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 3995,
                completion_tokens: 503,
                total_tokens: 4498,
                cached_tokens: 1800,
                ..Default::default()
            }
        );
    }

    #[test]
    fn tool_use_response_maps_to_tool_calls() {
        let resp = json!({
            "id": "msg_01Aq9w938a90dw8q",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-4-1",
            "content": [
                {"type": "text", "text": "I'll check the weather."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA", "unit": "celsius"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 472, "output_tokens": 89}
        });
        let (out, _) = anthropic_response_to_openai(&resp).unwrap();
        let msg = &out["choices"][0]["message"];
        assert_eq!(msg["content"], "I'll check the weather.");
        assert_eq!(msg["tool_calls"][0]["id"], "toolu_01A09q90qw90lq917835lq9");
        assert_eq!(msg["tool_calls"][0]["type"], "function");
        assert_eq!(msg["tool_calls"][0]["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(
            msg["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            args,
            json!({"location": "San Francisco, CA", "unit": "celsius"})
        );
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn tool_only_response_has_null_content() {
        let resp = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "c",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}
        });
        let (out, _) = anthropic_response_to_openai(&resp).unwrap();
        assert!(out["choices"][0]["message"]["content"].is_null());
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
    }

    #[test]
    fn thinking_blocks_become_reasoning_content_without_signature() {
        let resp = json!({
            "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL...."},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP..."},
                {"type": "text", "text": "Based on my analysis..."}
            ],
            "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 20}
        });
        let (out, _) = anthropic_response_to_openai(&resp).unwrap();
        let msg = &out["choices"][0]["message"];
        assert_eq!(
            msg["reasoning_content"],
            "Let me analyze this step by step..."
        );
        assert_eq!(msg["content"], "Based on my analysis...");
        assert!(!out.to_string().contains("signature"));
        assert!(!out.to_string().contains("EmwKAhgB"));
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            ("something_new", "stop"),
        ] {
            let resp = json!({
                "id": "msg_x", "type": "message", "role": "assistant", "model": "c",
                "content": [{"type": "text", "text": "t"}], "stop_reason": stop,
                "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}
            });
            let (out, _) = anthropic_response_to_openai(&resp).unwrap();
            assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop}");
        }
    }

    #[test]
    fn error_shaped_or_malformed_response_is_an_error() {
        let e = anthropic_response_to_openai(&json!({
            "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}
        }))
        .unwrap_err();
        assert!(e.message.contains("Overloaded"));
        assert!(anthropic_response_to_openai(&json!({"id": "x"})).is_err());
    }

    // ----- Anthropic request -> OpenAI request -----

    #[test]
    fn anthropic_request_maps_to_openai_chat_request() {
        let req = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [
                {"type": "text", "text": "You are Claude Code."},
                {"type": "text", "text": "Project notes...", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [{"role": "user", "content": "Hello, world"}],
            "stop_sequences": ["###"],
            "temperature": 0.5,
            "top_k": 10,
            "metadata": {"user_id": "u-42"},
            "stream": true
        });
        let out = anthropic_request_to_openai(&req).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "claude-sonnet-4-5",
                "messages": [
                    {"role": "system", "content": "You are Claude Code.\n\nProject notes..."},
                    {"role": "user", "content": "Hello, world"}
                ],
                "max_tokens": 1024,
                "stop": ["###"],
                "temperature": 0.5,
                "stream": true,
                "stream_options": {"include_usage": true},
                "user": "u-42"
            })
        );
    }

    #[test]
    fn anthropic_tool_loop_maps_to_openai_tool_messages() {
        let req = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "tools": [{
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
            }],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": "What's the weather like in San Francisco?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "User wants weather.", "signature": "sig=="},
                    {"type": "text", "text": "I'll check."},
                    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
                    {"type": "text", "text": "Thanks"}
                ]}
            ]
        });
        let out = anthropic_request_to_openai(&req).unwrap();
        assert_eq!(
            out["tools"],
            json!([{"type": "function", "function": {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
            }}])
        );
        assert_eq!(out["tool_choice"], "required");
        assert_eq!(out["parallel_tool_calls"], false);
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 4);
        assert_eq!(
            msgs[1],
            json!({"role": "assistant", "content": "I'll check.", "tool_calls": [{
                "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}
            }]})
        );
        assert_eq!(
            msgs[2],
            json!({"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"})
        );
        assert_eq!(msgs[3], json!({"role": "user", "content": "Thanks"}));
        assert!(!out.to_string().contains("sig=="));
    }

    #[test]
    fn anthropic_tool_choice_variants_map() {
        for (choice, expected) in [
            (json!({"type": "auto"}), json!("auto")),
            (json!({"type": "none"}), json!("none")),
            (json!({"type": "any"}), json!("required")),
            (
                json!({"type": "tool", "name": "f"}),
                json!({"type": "function", "function": {"name": "f"}}),
            ),
        ] {
            let out = anthropic_request_to_openai(&json!({
                "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": choice
            }))
            .unwrap();
            assert_eq!(out["tool_choice"], expected);
            assert!(out.get("parallel_tool_calls").is_none());
        }
    }

    #[test]
    fn anthropic_images_map_to_image_url_parts() {
        let out = anthropic_request_to_openai(&json!({
            "model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "text", "text": "Describe these images."}
            ]}]
        }))
        .unwrap();
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "Describe these images."}
            ])
        );
    }

    #[test]
    fn images_round_trip_through_both_request_translations() {
        let openai = json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.gif"}}
            ]}]
        });
        let anthropic = to_anthropic(openai.clone());
        let back = anthropic_request_to_openai(&anthropic).unwrap();
        assert_eq!(back["messages"], openai["messages"]);
    }

    #[test]
    fn tool_result_images_follow_the_tool_message() {
        let out = anthropic_request_to_openai(&json!({
            "model": "m", "max_tokens": 5,
            "messages": [
                {"role": "user", "content": "Take a screenshot"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": false, "content": [
                    {"type": "text", "text": "Captured."},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
                ]}]}
            ]
        }))
        .unwrap();
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs[1]["content"], Value::Null);
        assert_eq!(
            msgs[2],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "Captured."})
        );
        assert_eq!(
            msgs[3],
            json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]})
        );
    }

    #[test]
    fn tool_ids_survive_a_round_trip_unchanged() {
        let openai = tool_conversation();
        let anthropic = to_anthropic(openai.clone());
        let back = anthropic_request_to_openai(&anthropic).unwrap();
        let msgs = back["messages"].as_array().unwrap();
        assert_eq!(msgs[1]["tool_calls"][0]["id"], "call_abc123");
        assert_eq!(msgs[1]["tool_calls"][1]["id"], "call_def456");
        assert_eq!(msgs[2]["tool_call_id"], "call_abc123");
        assert_eq!(msgs[3]["tool_call_id"], "call_def456");
        assert_eq!(
            msgs[4],
            json!({"role": "user", "content": "Which is warmer?"})
        );
    }

    #[test]
    fn server_tools_and_unknown_blocks_are_rejected_with_path() {
        let e = anthropic_request_to_openai(&json!({
            "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
        }))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        let e = anthropic_request_to_openai(&json!({
            "model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "container_upload", "file_id": "f"}]}]
        }))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].content[1]"));
    }

    #[test]
    fn thinking_config_is_not_forwarded_to_openai_vendors() {
        let out = anthropic_request_to_openai(&json!({
            "model": "m", "max_tokens": 20000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "messages": [{"role": "user", "content": "x"}]
        }))
        .unwrap();
        assert!(out.get("thinking").is_none());
        assert!(out.get("reasoning_effort").is_none());
    }

    // ----- OpenAI response -> Anthropic response -----

    #[test]
    fn openai_completion_maps_to_anthropic_message() {
        let resp = json!({
            "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            "object": "chat.completion",
            "created": 1741570283,
            "model": "gpt-4o-2024-08-06",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "The image shows a wooden boardwalk.", "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
                "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fc9f1d7035"
        });
        let (out, usage) = openai_response_to_anthropic(&resp).unwrap();
        assert_eq!(
            out,
            json!({
                "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
                "type": "message",
                "role": "assistant",
                "model": "gpt-4o-2024-08-06",
                "content": [{"type": "text", "text": "The image shows a wooden boardwalk."}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": 93, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024, "output_tokens": 46}
            })
        );
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 1117,
                completion_tokens: 46,
                total_tokens: 1163,
                cached_tokens: 1024,
                ..Default::default()
            }
        );
    }

    #[test]
    fn openai_tool_calls_map_to_tool_use_blocks() {
        let resp = json!({
            "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1699896916, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}]
            }, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99}
        });
        let (out, _) = openai_response_to_anthropic(&resp).unwrap();
        assert_eq!(
            out["content"],
            json!([{"type": "tool_use", "id": "call_abc123", "name": "get_current_weather", "input": {"location": "Boston, MA"}}])
        );
        assert_eq!(out["stop_reason"], "tool_use");
    }

    #[test]
    fn tool_calls_with_stop_finish_reason_still_stop_for_tool_use() {
        let resp = json!({
            "id": "x", "model": "gemini-2.5-flash",
            "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
                {"id": "function-call-1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]}, "finish_reason": "stop"}]
        });
        let (out, _) = openai_response_to_anthropic(&resp).unwrap();
        assert_eq!(out["stop_reason"], "tool_use");
    }

    #[test]
    fn vendor_reasoning_becomes_leading_thinking_block() {
        let resp = json!({
            "id": "x", "model": "deepseek-reasoner",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "42", "reasoning_content": "Compute 6*7."}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_cache_hit_tokens": 4}
        });
        let (out, usage) = openai_response_to_anthropic(&resp).unwrap();
        assert_eq!(
            out["content"],
            json!([
                {"type": "thinking", "thinking": "Compute 6*7.", "signature": ""},
                {"type": "text", "text": "42"}
            ])
        );
        assert_eq!(out["stop_reason"], "max_tokens");
        assert_eq!(usage.cached_tokens, 4);
    }

    #[test]
    fn finish_reasons_map_to_stop_reasons() {
        for (finish, stop) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
        ] {
            let resp = json!({"id": "x", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "t"}, "finish_reason": finish}]});
            let (out, _) = openai_response_to_anthropic(&resp).unwrap();
            assert_eq!(out["stop_reason"], stop, "{finish}");
        }
    }

    #[test]
    fn malformed_vendor_arguments_do_not_fail_the_answer() {
        let resp = json!({
            "id": "x", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1"}}
            ]}, "finish_reason": "length"}]
        });
        let (out, _) = openai_response_to_anthropic(&resp).unwrap();
        assert_eq!(
            out["content"][0]["input"],
            json!({"arguments": "{\"a\": 1"})
        );
    }

    #[test]
    fn openai_response_without_choices_is_an_error() {
        assert!(openai_response_to_anthropic(&json!({"id": "x", "choices": []})).is_err());
        assert!(openai_response_to_anthropic(&json!({"error": {"message": "bad"}})).is_err());
    }

    // ----- Errors -----

    #[test]
    fn anthropic_errors_map_to_openai_errors() {
        let cases = [
            (400, "invalid_request_error", "invalid_request_error"),
            (401, "authentication_error", "authentication_error"),
            (403, "permission_error", "permission_error"),
            (404, "not_found_error", "not_found_error"),
            (413, "request_too_large", "invalid_request_error"),
            (429, "rate_limit_error", "rate_limit_exceeded"),
            (500, "api_error", "server_error"),
            (529, "overloaded_error", "server_error"),
        ];
        for (status, atype, otype) in cases {
            let body = json!({
                "type": "error",
                "error": {"type": atype, "message": "something went wrong"},
                "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"
            });
            let (s, out) = anthropic_error_to_openai(status, body.to_string().as_bytes());
            assert_eq!(s, status);
            assert_eq!(
                out,
                json!({"error": {"message": "something went wrong", "type": otype, "param": null, "code": atype}}),
                "{atype}"
            );
        }
    }

    #[test]
    fn nonsense_status_is_replaced_from_the_error_type() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let (s, out) = anthropic_error_to_openai(200, body);
        assert_eq!(s, 529);
        assert_eq!(out["error"]["type"], "server_error");
        let (s, _) = anthropic_error_to_openai(0, b"garbage");
        assert_eq!(s, 502);
    }

    #[test]
    fn non_json_vendor_error_keeps_its_text() {
        let (s, out) =
            anthropic_error_to_openai(502, b"<html><body>502 Bad Gateway</body></html>\n");
        assert_eq!(s, 502);
        assert_eq!(
            out["error"]["message"],
            "<html><body>502 Bad Gateway</body></html>"
        );
        assert_eq!(out["error"]["type"], "server_error");
        assert!(out["error"]["code"].is_null());
        let (_, out) = anthropic_error_to_openai(503, b"");
        assert_eq!(out["error"]["message"], "upstream returned HTTP 503");
    }

    #[test]
    fn openai_errors_map_to_anthropic_errors_by_status() {
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-abc.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        for (status, atype) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "api_error"),
            (529, "overloaded_error"),
        ] {
            let out = openai_error_to_anthropic(status, body);
            assert_eq!(
                out,
                json!({"type": "error", "error": {"type": atype, "message": "Incorrect API key provided: sk-abc."}}),
                "{status}"
            );
        }
    }

    #[test]
    fn gemini_and_plain_text_errors_map_to_anthropic_errors() {
        let gemini = br#"[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]"#;
        let out = openai_error_to_anthropic(429, gemini);
        assert_eq!(out["error"]["type"], "rate_limit_error");
        let gemini =
            br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            openai_error_to_anthropic(400, gemini)["error"]["message"],
            "API key not valid."
        );
        let out = openai_error_to_anthropic(500, b"upstream connect error");
        assert_eq!(
            out,
            json!({"type": "error", "error": {"type": "api_error", "message": "upstream connect error"}})
        );
    }

    #[test]
    fn stream_error_event_is_anthropic_shaped() {
        let (name, data) = stream_error_event("upstream closed the connection");
        assert_eq!(name, "error");
        let v: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "api_error", "message": "upstream closed the connection"}})
        );
    }

    // ----- Stream: Anthropic -> OpenAI -----

    /// Feeds `(event, data)` pairs and collects every payload.
    fn feed(s: &mut AnthropicToOpenAiStream, events: &[(&str, &str)]) -> Vec<String> {
        let mut out = Vec::new();
        for (e, d) in events {
            out.extend(s.push(e, d).unwrap());
        }
        out
    }

    fn parsed(payloads: &[String]) -> Vec<Value> {
        payloads
            .iter()
            .filter(|p| p.as_str() != "[DONE]")
            .map(|p| serde_json::from_str(p).unwrap())
            .collect()
    }

    const TEXT_STREAM: &[(&str, &str)] = &[
        (
            "message_start",
            r#"{"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-6", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}"#,
        ),
        ("ping", r#"{"type": "ping"}"#),
        (
            "content_block_delta",
            r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type": "content_block_stop", "index": 0}"#,
        ),
        (
            "message_delta",
            r#"{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}"#,
        ),
        ("message_stop", r#"{"type": "message_stop"}"#),
    ];

    #[test]
    fn text_stream_maps_to_openai_chunks() {
        let mut s = AnthropicToOpenAiStream::new("claude-opus-4-6", false);
        let out = feed(&mut s, TEXT_STREAM);
        assert_eq!(out.last().unwrap(), "[DONE]");
        let chunks = parsed(&out);
        assert_eq!(chunks.len(), 4);
        for c in &chunks {
            assert_eq!(c["id"], "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "claude-opus-4-6");
            assert!(c["created"].as_u64().unwrap() > 0);
            assert!(c.get("usage").is_none());
        }
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(
            chunks[1]["choices"][0]["delta"],
            json!({"content": "Hello"})
        );
        assert_eq!(chunks[2]["choices"][0]["delta"], json!({"content": "!"}));
        assert_eq!(chunks[3]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
        assert!(s.finished());
        assert_eq!(
            s.usage(),
            Usage {
                prompt_tokens: 25,
                completion_tokens: 15,
                total_tokens: 40,
                cached_tokens: 0,
                ..Default::default()
            }
        );
    }

    #[test]
    fn text_stream_with_include_usage_ends_with_usage_chunk() {
        let mut s = AnthropicToOpenAiStream::new("claude-opus-4-6", true);
        let out = feed(&mut s, TEXT_STREAM);
        let n = out.len();
        assert_eq!(out[n - 1], "[DONE]");
        let usage_chunk: Value = serde_json::from_str(&out[n - 2]).unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(
            usage_chunk["usage"],
            json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40, "prompt_tokens_details": {"cached_tokens": 0}})
        );
        let first: Value = serde_json::from_str(&out[0]).unwrap();
        assert!(first["usage"].is_null());
    }

    #[test]
    fn stream_events_without_event_names_are_read_from_data_type() {
        let mut s = AnthropicToOpenAiStream::new("m", false);
        let unnamed: Vec<(&str, &str)> = TEXT_STREAM.iter().map(|(_, d)| ("", *d)).collect();
        let out = feed(&mut s, &unnamed);
        assert_eq!(out.last().unwrap(), "[DONE]");
        assert_eq!(parsed(&out).len(), 4);
    }

    #[test]
    fn tool_use_stream_arguments_concatenate_to_the_original_json() {
        let events: &[(&str, &str)] = &[
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-6","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ("ping", r#"{"type": "ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let's check the weather for San Francisco, CA:"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" Francisc"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o,"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" CA\""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"unit\": \"fah"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":1}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ];
        let mut s = AnthropicToOpenAiStream::new("claude-opus-4-6", false);
        let chunks = parsed(&feed(&mut s, events));
        let mut text = String::new();
        let mut args = String::new();
        let mut header = None;
        let mut finish = None;
        for c in &chunks {
            let choice = &c["choices"][0];
            if let Some(t) = choice["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
                assert_eq!(calls[0]["index"], 0);
                if calls[0].get("id").is_some() {
                    header = Some(calls[0].clone());
                }
                args.push_str(calls[0]["function"]["arguments"].as_str().unwrap());
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
        assert_eq!(text, "Okay, let's check the weather for San Francisco, CA:");
        assert_eq!(
            header.unwrap(),
            json!({"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
        );
        assert_eq!(
            args,
            r#"{"location": "San Francisco, CA", "unit": "fahrenheit"}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
        );
        assert_eq!(finish.as_deref(), Some("tool_calls"));
        // Argument deltas arrive one chunk per partial_json piece (empty skipped).
        let arg_chunks = chunks
            .iter()
            .filter(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]
                    .get("id")
                    .is_none()
                    && c["choices"][0]["delta"].get("tool_calls").is_some()
            })
            .count();
        assert_eq!(arg_chunks, 8);
    }

    #[test]
    fn parallel_tool_use_blocks_get_increasing_tool_indexes() {
        let events: &[(&str, &str)] = &[
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_p","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_a","name":"get_weather","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"Paris\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_b","name":"get_time","input":{}}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":1}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ];
        let mut s = AnthropicToOpenAiStream::new("c", false);
        let chunks = parsed(&feed(&mut s, events));
        let mut args: Vec<String> = vec![String::new(), String::new()];
        for c in &chunks {
            if let Some(calls) = c["choices"][0]["delta"]["tool_calls"].as_array() {
                let i = calls[0]["index"].as_u64().unwrap() as usize;
                args[i].push_str(calls[0]["function"]["arguments"].as_str().unwrap());
            }
        }
        assert_eq!(args[0], r#"{"location": "Paris"}"#);
        // No input deltas for a parameterless tool: still parseable.
        assert_eq!(args[1], "{}");
    }

    #[test]
    fn thinking_stream_maps_to_reasoning_content() {
        let events: &[(&str, &str)] = &[
            (
                "message_start",
                r#"{"type": "message_start", "message": {"id": "msg_01thinking", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 50, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 20, "output_tokens": 1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me solve this step by step:\n\n1. First break down 27 * 453"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "\n2. 453 = 400 + 50 + 3"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type": "content_block_stop", "index": 0}"#,
            ),
            (
                "content_block_start",
                r#"{"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "27 * 453 = 12,231"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type": "content_block_stop", "index": 1}"#,
            ),
            (
                "message_delta",
                r#"{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 120}}"#,
            ),
            ("message_stop", r#"{"type": "message_stop"}"#),
        ];
        let mut s = AnthropicToOpenAiStream::new("claude-sonnet-4-5", true);
        let out = feed(&mut s, events);
        let chunks = parsed(&out);
        let reasoning: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(reasoning, "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3");
        assert_eq!(content, "27 * 453 = 12,231");
        assert!(!out.iter().any(|p| p.contains("EqQBCgIYAhIM")));
        let usage = &chunks.last().unwrap()["usage"];
        assert_eq!(
            usage,
            &json!({"prompt_tokens": 100, "completion_tokens": 120, "total_tokens": 220, "prompt_tokens_details": {"cached_tokens": 30}})
        );
    }

    #[test]
    fn stream_error_event_becomes_translate_error() {
        let mut s = AnthropicToOpenAiStream::new("m", false);
        feed(&mut s, &TEXT_STREAM[..4]);
        let e = s
            .push("error", r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#)
            .unwrap_err();
        assert!(e.message.contains("overloaded_error"));
        assert!(e.message.contains("Overloaded"));
        assert!(!s.finished());
    }

    #[test]
    fn malformed_stream_data_is_an_error_and_unknown_events_are_ignored() {
        let mut s = AnthropicToOpenAiStream::new("m", false);
        assert!(s.push("content_block_delta", "{not json").is_err());
        assert!(s
            .push("some_new_event", r#"{"type":"some_new_event","x":1}"#)
            .unwrap()
            .is_empty());
        assert!(s.push("ping", "").unwrap().is_empty());
    }

    #[test]
    fn message_stop_without_message_delta_still_finishes() {
        let mut s = AnthropicToOpenAiStream::new("m", false);
        let out = feed(&mut s, &[TEXT_STREAM[0], TEXT_STREAM[3], TEXT_STREAM[7]]);
        let chunks = parsed(&out);
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "stop"
        );
        assert_eq!(out.last().unwrap(), "[DONE]");
        assert!(s
            .push("message_stop", r#"{"type":"message_stop"}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unfinished_stream_is_not_finished() {
        let mut s = AnthropicToOpenAiStream::new("m", false);
        feed(&mut s, &TEXT_STREAM[..6]);
        assert!(!s.finished());
        assert_eq!(s.usage().prompt_tokens, 25);
    }

    // ----- Stream: OpenAI -> Anthropic -----

    fn feed_openai(s: &mut OpenAiToAnthropicStream, chunks: &[Value]) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for c in chunks {
            for (name, data) in s.push(&c.to_string()).unwrap() {
                out.push((name, serde_json::from_str(&data).unwrap()));
            }
        }
        for (name, data) in s.push("[DONE]").unwrap() {
            out.push((name, serde_json::from_str(&data).unwrap()));
        }
        out
    }

    fn assert_event_types_match(events: &[(String, Value)]) {
        for (name, data) in events {
            assert_eq!(data["type"], name.as_str());
        }
    }

    fn oa_chunk(delta: Value, finish: Value) -> Value {
        json!({
            "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        })
    }

    #[test]
    fn openai_text_stream_maps_to_anthropic_events() {
        let mut s = OpenAiToAnthropicStream::new("claude-compatible");
        let events = feed_openai(
            &mut s,
            &[
                oa_chunk(
                    json!({"role": "assistant", "content": "", "refusal": null}),
                    Value::Null,
                ),
                oa_chunk(json!({"content": "Hello"}), Value::Null),
                oa_chunk(json!({"content": " there"}), Value::Null),
                oa_chunk(json!({}), json!("stop")),
            ],
        );
        assert_event_types_match(&events);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[0].1,
            json!({"type": "message_start", "message": {
                "id": "chatcmpl-123", "type": "message", "role": "assistant", "model": "claude-compatible",
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}
            }})
        );
        assert_eq!(
            events[1].1,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        );
        assert_eq!(
            events[2].1,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}})
        );
        assert_eq!(
            events[4].1,
            json!({"type": "content_block_stop", "index": 0})
        );
        assert_eq!(
            events[5].1["delta"],
            json!({"stop_reason": "end_turn", "stop_sequence": null})
        );
        assert!(s.finished());
    }

    #[test]
    fn openai_tool_call_stream_with_include_usage_round_trips() {
        let args = r#"{"location": "Boston, MA", "unit": "celsius"}"#;
        let pieces = [&args[..5], &args[5..20], &args[20..33], &args[33..]];
        let mut chunks = vec![oa_chunk(
            json!({"role": "assistant", "content": null}),
            Value::Null,
        )];
        chunks.push(oa_chunk(json!({"tool_calls": [{"index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function", "function": {"name": "get_current_weather", "arguments": ""}}]}), Value::Null));
        for p in pieces {
            chunks.push(oa_chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                Value::Null,
            ));
        }
        chunks.push(oa_chunk(json!({}), json!("tool_calls")));
        chunks.push(json!({
            "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99, "prompt_tokens_details": {"cached_tokens": 64}}
        }));

        let mut s = OpenAiToAnthropicStream::new("gpt-4o-mini");
        let events = feed_openai(&mut s, &chunks);
        assert_event_types_match(&events);
        let start = events
            .iter()
            .find(|(n, _)| n == "content_block_start")
            .unwrap();
        assert_eq!(
            start.1["content_block"],
            json!({"type": "tool_use", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_current_weather", "input": {}})
        );
        let joined: String = events
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .map(|(_, d)| {
                assert_eq!(d["delta"]["type"], "input_json_delta");
                d["delta"]["partial_json"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(joined, args);
        // message_delta waited for the usage chunk that followed finish_reason.
        let (name, delta) = &events[events.len() - 2];
        assert_eq!(name, "message_delta");
        assert_eq!(
            delta,
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"input_tokens": 18, "cache_read_input_tokens": 64, "output_tokens": 17}
            })
        );
        assert_eq!(events.last().unwrap().0, "message_stop");
        assert_eq!(
            s.usage(),
            Usage {
                prompt_tokens: 82,
                completion_tokens: 17,
                total_tokens: 99,
                cached_tokens: 64,
                ..Default::default()
            }
        );

        // And back: the Anthropic events translate to the same tool call.
        let mut back = AnthropicToOpenAiStream::new("gpt-4o-mini", true);
        let mut payloads = Vec::new();
        for (name, data) in &events {
            payloads.extend(back.push(name, &data.to_string()).unwrap());
        }
        let chunks = parsed(&payloads);
        let mut rebuilt = String::new();
        for c in &chunks {
            if let Some(calls) = c["choices"][0]["delta"]["tool_calls"].as_array() {
                if let Some(id) = calls[0].get("id") {
                    assert_eq!(id, "call_DdmO9pD3xa9XTPNJ32zg2hcA");
                }
                rebuilt.push_str(calls[0]["function"]["arguments"].as_str().unwrap());
            }
        }
        assert_eq!(rebuilt, args);
        let last = chunks.last().unwrap();
        assert_eq!(last["usage"]["prompt_tokens"], 82);
        assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 64);
        assert_eq!(payloads.last().unwrap(), "[DONE]");
    }

    #[test]
    fn openai_reasoning_text_and_tools_open_and_close_blocks_in_order() {
        let mut s = OpenAiToAnthropicStream::new("deepseek-reasoner");
        let events = feed_openai(
            &mut s,
            &[
                oa_chunk(
                    json!({"role": "assistant", "reasoning_content": "Think"}),
                    Value::Null,
                ),
                oa_chunk(json!({"reasoning_content": "ing."}), Value::Null),
                oa_chunk(json!({"content": "Calling tools."}), Value::Null),
                oa_chunk(
                    json!({"tool_calls": [
                        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                        {"index": 1, "id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{\"x\":1}"}}
                    ]}),
                    Value::Null,
                ),
                oa_chunk(json!({}), json!("tool_calls")),
            ],
        );
        assert_event_types_match(&events);
        let summary: Vec<String> = events
            .iter()
            .map(|(n, d)| match n.as_str() {
                "content_block_start" => format!(
                    "start{}:{}",
                    d["index"],
                    d["content_block"]["type"].as_str().unwrap()
                ),
                "content_block_delta" => format!(
                    "delta{}:{}",
                    d["index"],
                    d["delta"]["type"].as_str().unwrap()
                ),
                "content_block_stop" => format!("stop{}", d["index"]),
                other => other.to_string(),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "message_start",
                "start0:thinking",
                "delta0:thinking_delta",
                "delta0:thinking_delta",
                "stop0",
                "start1:text",
                "delta1:text_delta",
                "stop1",
                "start2:tool_use",
                "delta2:input_json_delta",
                "stop2",
                "start3:tool_use",
                "delta3:input_json_delta",
                "stop3",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[1].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(
            events[2].1["delta"],
            json!({"type": "thinking_delta", "thinking": "Think"})
        );
    }

    #[test]
    fn openai_stream_without_done_is_closed_by_finish() {
        let mut s = OpenAiToAnthropicStream::new("m");
        let first = s
            .push(&oa_chunk(json!({"content": "partial"}), Value::Null).to_string())
            .unwrap();
        assert_eq!(first.len(), 3);
        let end = s.finish(false);
        let names: Vec<&str> = end.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["content_block_stop", "message_delta", "message_stop"]
        );
        assert!(s.finished());
        assert!(s.finish(true).is_empty());
        assert!(s.push("[DONE]").unwrap().is_empty());
    }

    #[test]
    fn openai_finish_reason_length_maps_to_max_tokens_in_stream() {
        let mut s = OpenAiToAnthropicStream::new("m");
        let events = feed_openai(
            &mut s,
            &[
                oa_chunk(json!({"content": "abc"}), Value::Null),
                oa_chunk(json!({}), json!("length")),
            ],
        );
        let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
        assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    }

    #[test]
    fn openai_empty_stream_still_produces_a_complete_message() {
        let mut s = OpenAiToAnthropicStream::new("m");
        let events = s.push("[DONE]").unwrap();
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    }

    #[test]
    fn openai_in_band_stream_error_is_a_translate_error() {
        let mut s = OpenAiToAnthropicStream::new("m");
        let e = s
            .push(r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#)
            .unwrap_err();
        assert!(e.message.contains("server had an error"));
        assert!(s.push("not json").is_err());
    }

    #[test]
    fn openai_stream_parallel_calls_without_distinct_indexes_stay_apart() {
        // Each call streamed whole in its own chunk, all at index 0 (or with
        // no index at all), as some OpenAI-compatible endpoints do.
        let mut s = OpenAiToAnthropicStream::new("gemini-2.5-flash");
        let events = feed_openai(
            &mut s,
            &[
                oa_chunk(
                    json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]}),
                    Value::Null,
                ),
                oa_chunk(
                    json!({"tool_calls": [{"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Tokyo\"}"}}]}),
                    Value::Null,
                ),
                oa_chunk(json!({}), json!("stop")),
            ],
        );
        let starts: Vec<&Value> = events
            .iter()
            .filter(|(n, _)| n == "content_block_start")
            .map(|(_, d)| d)
            .collect();
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[0]["content_block"]["id"], "call_a");
        assert_eq!(starts[1]["content_block"]["id"], "call_b");
        assert_eq!(starts[1]["index"], 1);
        let deltas: Vec<(u64, &str)> = events
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .map(|(_, d)| {
                (
                    d["index"].as_u64().unwrap(),
                    d["delta"]["partial_json"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            deltas,
            [
                (0, r#"{"location":"Paris"}"#),
                (1, r#"{"location":"Tokyo"}"#)
            ]
        );
        let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn openai_stream_tool_call_without_id_gets_a_generated_one() {
        let mut s = OpenAiToAnthropicStream::new("m");
        let events = feed_openai(
            &mut s,
            &[oa_chunk(
                json!({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]}),
                json!("stop"),
            )],
        );
        let start = &events
            .iter()
            .find(|(n, _)| n == "content_block_start")
            .unwrap()
            .1;
        let id = start["content_block"]["id"].as_str().unwrap();
        assert!(
            !id.is_empty() && id.chars().all(is_anthropic_id_char),
            "{id}"
        );
        let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    }
}
