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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

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

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An id for a message that arrived without one; unique within the process.
fn generated_id(prefix: &str) -> String {
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
fn finish_reason_for(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new: a normal stop.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`.
fn stop_reason_for(finish_reason: Option<&str>) -> &'static str {
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

    fn to_usage(self) -> Usage {
        let prompt = self.input + self.cache_read + self.cache_creation;
        Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output,
            total_tokens: prompt + self.output,
            cached_tokens: self.cache_read,
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
fn usage_from_openai(v: &Value) -> Usage {
    let prompt = count(v.get("prompt_tokens"));
    let completion = count(v.get("completion_tokens"));
    let total = match count(v.get("total_tokens")) {
        0 => prompt + completion,
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
        return Err(invalid(param, "only base64 data URLs are supported for images"));
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
        .ok_or_else(|| invalid(format!("{param}.tool_call_id"), "tool message has no tool_call_id"))?;
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
                .ok_or_else(|| invalid("tool_choice.function.name", "tool_choice names no function"))?;
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
        return Err(invalid("modalities", "audio output is not supported by this model"));
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
            || t
                .blocks
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

    let mut max_tokens = match field(req, "max_completion_tokens").or_else(|| field(req, "max_tokens")) {
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
                        .ok_or_else(|| invalid("stop", "stop must be a string or an array of strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(invalid("stop", "stop must be a string or an array of strings")),
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
            Some("thinking") => reasoning.push_str(str_field(block, "thinking").unwrap_or_default()),
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
        _ => Err(invalid("system", "system must be a string or an array of text blocks")),
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
                    format!("message role '{}' is not supported", other.unwrap_or("(none)")),
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
    if let Some(mt) = field(req, "max_tokens") {
        out.insert("max_tokens".into(), mt.clone());
    }
    if let Some(stops) = field(req, "stop_sequences").and_then(Value::as_array) {
        if !stops.is_empty() {
            out.insert("stop".into(), Value::Array(stops.clone()));
        }
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = field(req, key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stream) = field(req, "stream") {
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
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        // Unavailable means out of capacity, which is what Anthropic calls
        // overloaded; a gateway timeout is just a failed call.
        503 | 529 => "overloaded_error",
        // Anthropic uses invalid_request_error for other 4xx.
        402..=499 => "invalid_request_error",
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
        }
    }

    /// True once message_stop was seen (a clean end).
    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn usage(&self) -> Usage {
        self.usage.to_usage()
    }

    fn chunk_with(&self, choices: Value, usage: Option<Value>) -> String {
        let mut c = Map::new();
        c.insert("id".into(), self.id.clone().into());
        c.insert("object".into(), "chat.completion.chunk".into());
        c.insert("created".into(), self.created.into());
        c.insert("model".into(), self.model.clone().into());
        c.insert("choices".into(), choices);
        if self.include_usage {
            // OpenAI sends `usage: null` on every chunk but the last.
            c.insert("usage".into(), usage.unwrap_or(Value::Null));
        }
        Value::Object(c).to_string()
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        self.chunk_with(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]),
            None,
        )
    }

    /// The role chunk, once, even if message_start went missing.
    fn start(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = generated_id("chatcmpl-");
        }
        out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
    }

    fn tool_args_chunk(&self, index: usize, args: &str) -> String {
        self.chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": args}}]}),
            None,
        )
    }

    /// One SSE event (event name may be empty when absent; data is the joined data lines). Returns OpenAI `data:` payloads (JSON strings, without the "data: " prefix); after message_stop it returns the final chunks and then "[DONE]".
    pub fn push(&mut self, event: &str, data: &str) -> Result<Vec<String>, TranslateError> {
        let mut out = Vec::new();
        // Events without data only mean something for message_stop/error.
        if self.finished
            || (data.trim().is_empty() && event != "message_stop" && event != "error")
        {
            return Ok(out);
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
                if let Some(id) = str_field(msg, "id").filter(|s| !s.is_empty()) {
                    if !self.started {
                        self.id = id.to_string();
                    }
                }
                if self.model.is_empty() {
                    self.model = str_field(msg, "model").unwrap_or_default().to_string();
                }
                if let Some(u) = msg.get("usage") {
                    self.usage.update(u);
                }
                self.start(&mut out);
            }
            "content_block_start" => {
                self.start(&mut out);
                let block = v.get("content_block").unwrap_or(&Value::Null);
                match str_field(block, "type") {
                    Some("text") => {
                        if let Some(t) = str_field(block, "text").filter(|t| !t.is_empty()) {
                            out.push(self.chunk(json!({"content": t}), None));
                        }
                    }
                    Some("thinking") => {
                        if let Some(t) = str_field(block, "thinking").filter(|t| !t.is_empty()) {
                            out.push(self.chunk(json!({"reasoning_content": t}), None));
                        }
                    }
                    Some("tool_use") => {
                        let index = self.tools.len();
                        self.tools.push(StreamedTool {
                            block: count(v.get("index")),
                            index,
                            sent_args: false,
                            input: block.get("input").cloned().unwrap_or(Value::Null),
                        });
                        out.push(self.chunk(
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
                        ));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                self.start(&mut out);
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match str_field(delta, "type") {
                    Some("text_delta") => {
                        if let Some(t) = str_field(delta, "text").filter(|t| !t.is_empty()) {
                            out.push(self.chunk(json!({"content": t}), None));
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = str_field(delta, "thinking").filter(|t| !t.is_empty()) {
                            out.push(self.chunk(json!({"reasoning_content": t}), None));
                        }
                    }
                    Some("input_json_delta") => {
                        let block = count(v.get("index"));
                        let partial = str_field(delta, "partial_json").unwrap_or_default();
                        let tool = self.tools.iter_mut().rev().find(|t| t.block == block);
                        if let (Some(tool), false) = (tool, partial.is_empty()) {
                            tool.sent_args = true;
                            let index = tool.index;
                            out.push(self.tool_args_chunk(index, partial));
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
                    out.push(self.tool_args_chunk(index, &args));
                }
            }
            "message_delta" => {
                self.start(&mut out);
                if let Some(u) = v.get("usage") {
                    self.usage.update(u);
                }
                let stop = v.get("delta").and_then(|d| str_field(d, "stop_reason"));
                if let (Some(stop), false) = (stop, self.finish_sent) {
                    self.finish_sent = true;
                    out.push(self.chunk(json!({}), Some(finish_reason_for(Some(stop)))));
                }
            }
            "message_stop" => {
                self.start(&mut out);
                if !self.finish_sent {
                    self.finish_sent = true;
                    out.push(self.chunk(json!({}), Some("stop")));
                }
                if self.include_usage {
                    let usage = openai_usage_json(&self.usage.to_usage());
                    out.push(self.chunk_with(json!([]), Some(usage)));
                }
                out.push("[DONE]".to_string());
                self.finished = true;
            }
            "error" => return Err(TranslateError::new(anthropic_error_text(&v))),
            // ping and event types added later.
            _ => {}
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Stream: OpenAI chunks -> Anthropic events
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum OpenBlock {
    Text(usize),
    Thinking(usize),
    Tool { oa_index: u64, block: usize },
}

impl OpenBlock {
    fn index(self) -> usize {
        match self {
            OpenBlock::Text(i) | OpenBlock::Thinking(i) => i,
            OpenBlock::Tool { block, .. } => block,
        }
    }
}

/// OpenAI chat.completion.chunk payloads -> Anthropic SSE events.
#[derive(Debug)]
pub struct OpenAiToAnthropicStream {
    model: String,
    id: String,
    started: bool,
    finished: bool,
    next_block: usize,
    open: Option<OpenBlock>,
    /// OpenAI tool index -> Anthropic block index, for every tool seen.
    tools: Vec<(u64, usize)>,
    stop_reason: Option<&'static str>,
    usage: Usage,
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
        }
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
        let oa_index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let function = call.get("function").unwrap_or(&Value::Null);
        let block = match self.open {
            Some(OpenBlock::Tool { oa_index: o, block }) if o == oa_index => block,
            _ => match self.tools.iter().find(|(o, _)| *o == oa_index) {
                // A late delta for a tool whose block was closed (vendors
                // interleaving parallel calls): Anthropic's protocol has no
                // way to reopen it, so the delta goes to its old index,
                // which the SDK accumulators still apply.
                Some(&(_, block)) => block,
                None => {
                    let id = str_field(call, "id")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!("toolu_{}_{oa_index}", sanitize_tool_id(&self.id))
                        });
                    let name = str_field(function, "name").unwrap_or_default();
                    let block = self.open_block(
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                        out,
                    );
                    self.open = Some(OpenBlock::Tool { oa_index, block });
                    self.tools.push((oa_index, block));
                    block
                }
            },
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
                if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                    for (pos, call) in calls.iter().enumerate() {
                        self.push_tool_call(pos, call, &mut out);
                    }
                }
            }
            if let Some(fr) = str_field(choice, "finish_reason") {
                self.close_block(&mut out);
                let mut reason = stop_reason_for(Some(fr));
                if reason == "end_turn" && !self.tools.is_empty() {
                    reason = "tool_use";
                }
                self.stop_reason = Some(reason);
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
