//! The Google Gemini API wire format (v1beta `models/{model}:generateContent`
//! and `:streamGenerateContent?alt=sse`) and its translation from/to OpenAI
//! Chat Completions. Pure functions and a stream state machine, no I/O.
//!
//! Decisions worth knowing (each is also noted where it is made):
//!
//! * System and developer messages, wherever they appear, are hoisted in order
//!   into one `systemInstruction` text part joined with a blank line: Gemini
//!   has a single system instruction and no system role in `contents`.
//! * Consecutive same-role turns are merged (tool results become one `user`
//!   turn of `functionResponse` parts, and a following user message joins it).
//! * Tool call ids are not sent to Gemini: it pairs calls and responses by
//!   order and name, and the ids a client holds may be ones we synthesized
//!   or another vendor issued.
//!   Responses use Gemini's `functionCall.id` when it has one, else a
//!   deterministic `call_<index>_<name>[_<hash of responseId>]`.
//! * Thought signatures ride on OpenAI objects as
//!   `extra_content.google.thought_signature` (what Google's own
//!   OpenAI-compatible endpoint does): on each tool call for `functionCall`
//!   parts, on the message (or delta) for signatures on other parts. They are
//!   read back from the same places. Nothing is forged when they are missing;
//!   [`fill_missing_thought_signatures`] exists for callers that know the
//!   target is Gemini 3 and the history came from elsewhere.
//! * `reasoning_effort` sets `thinkingConfig.thinkingBudget` (none 0,
//!   minimal 512, low 1024, medium 8192, high/xhigh 24576) with
//!   `includeThoughts: false`: thought summaries are only requested when the
//!   client opts in with `include_reasoning: true` or Google's
//!   `extra_body.google.thinking_config.include_thoughts`. Thought text then
//!   goes to `reasoning_content`, never `content`; reasoning sent back in
//!   history is dropped (the signatures carry Gemini's state).
//! * `completion_tokens` = `candidatesTokenCount + thoughtsTokenCount`, since
//!   thinking is billed as output; the thought share is also reported as
//!   `completion_tokens_details.reasoning_tokens`.
//! * A prompt blocked by `promptFeedback.blockReason` is answered, streaming
//!   or not, as an empty assistant turn with `finish_reason: content_filter`
//!   and the reason in `refusal`: it is the model's policy answer, not a
//!   gateway fault, and OpenAI clients already handle that finish reason.
//! * `MALFORMED_FUNCTION_CALL`, `UNEXPECTED_TOOL_CALL` and
//!   `TOO_MANY_TOOL_CALLS` are errors: OpenAI has no finish reason for them,
//!   and a silent empty "stop" would end an agent loop without a clue.
//! * Function parameter schemas are reduced to the OpenAPI subset Gemini's
//!   `Schema` accepts (see [`clean_schema`]); a parameterless function is
//!   declared without `parameters`, which Gemini requires.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::types::{TranslateError, Usage};

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// Knobs the caller sets per route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// maxOutputTokens when the client gave none (None = let Gemini decide).
    pub default_max_tokens: Option<u64>,
}

/// Thinking budgets for OpenAI's `reasoning_effort`. 512 is the smallest
/// budget every 2.5 model accepts; 24576 the largest Flash accepts.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "none" => Some(0),
        "minimal" => Some(512),
        "low" => Some(1024),
        "medium" => Some(8192),
        "high" | "xhigh" => Some(24576),
        _ => None,
    }
}

/// OpenAI chat request -> Gemini generateContent request body. (The model
/// goes in the URL path, which the caller builds; "model" is not in the body.)
pub fn openai_request_to_gemini(
    req: &Value,
    opts: &RequestOptions,
) -> Result<Value, TranslateError> {
    let req = req
        .as_object()
        .ok_or_else(|| TranslateError::new("request body must be a JSON object"))?;
    let messages = match req.get("messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(TranslateError::at("messages", "messages must be an array")),
    };

    let (system, contents) = convert_messages(messages)?;
    if contents.is_empty() {
        return Err(TranslateError::at(
            "messages",
            "at least one user or assistant message with content is required",
        ));
    }

    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({ "parts": [{ "text": system.join("\n\n") }] }),
        );
    }
    if let Some((tools, tool_config)) = convert_tools(req)? {
        body.insert("tools".into(), tools);
        if let Some(tc) = tool_config {
            body.insert("toolConfig".into(), tc);
        }
    }
    let gc = generation_config(req, opts)?;
    if !gc.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gc));
    }
    if let Some(cc) = google_ext(req)
        .and_then(|g| g.get("cached_content"))
        .and_then(Value::as_str)
    {
        body.insert("cachedContent".into(), cc.into());
    }
    Ok(Value::Object(body))
}

/// A present, non-null field.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Google's OpenAI-compatible endpoint takes Gemini-only settings under
/// `extra_body.google` (its docs nest it that way), or `google` when an SDK
/// merged `extra_body` into the top level.
fn google_ext(req: &Map<String, Value>) -> Option<&Map<String, Value>> {
    req.get("extra_body")
        .and_then(|e| e.get("google"))
        .or_else(|| req.get("google"))
        .and_then(Value::as_object)
}

/// The thought signature in an `extra_content` object, if any.
fn signature_in(extra: Option<&Value>) -> Option<&str> {
    extra?
        .get("google")?
        .get("thought_signature")?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Walks the OpenAI history. Returns the system texts and Gemini `contents`.
fn convert_messages(messages: &[Value]) -> Result<(Vec<String>, Vec<Value>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // Gemini's functionResponse needs the function name, OpenAI's tool
    // message only has the call id: remember names from assistant turns.
    let mut call_names: HashMap<String, String> = HashMap::new();

    for (i, msg) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let m = msg
            .as_object()
            .ok_or_else(|| TranslateError::at(&path, "message must be an object"))?;
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::at(format!("{path}.role"), "role is required"))?;
        match role {
            "system" | "developer" => system.extend(text_only(m.get("content"), &path)?),
            "user" => push_turn(&mut turns, "user", user_parts(m.get("content"), &path)?),
            "assistant" => {
                let parts = assistant_parts(m, &path, &mut call_names)?;
                push_turn(&mut turns, "model", parts);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::at(
                            format!("{path}.tool_call_id"),
                            "tool_call_id is required",
                        )
                    })?;
                let name = call_names
                    .get(id)
                    .map(String::as_str)
                    .or_else(|| m.get("name").and_then(Value::as_str))
                    .ok_or_else(|| {
                        TranslateError::at(
                            format!("{path}.tool_call_id"),
                            format!("no earlier assistant tool call has id {id:?}"),
                        )
                    })?;
                let part = function_response(name, m.get("content"), &path)?;
                push_turn(&mut turns, "user", vec![part]);
            }
            // Legacy function-calling result: the name is on the message.
            "function" => {
                let name = m.get("name").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::at(format!("{path}.name"), "name is required")
                })?;
                let part = function_response(name, m.get("content"), &path)?;
                push_turn(&mut turns, "user", vec![part]);
            }
            other => {
                return Err(TranslateError::at(
                    format!("{path}.role"),
                    format!("unsupported role {other:?}"),
                ))
            }
        }
    }

    let contents = turns
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect();
    Ok((system, contents))
}

/// Appends a turn, merging it into the previous one when the role repeats:
/// Gemini wants user and model turns to alternate.
fn push_turn(turns: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((last, existing)) if *last == role => existing.extend(parts),
        _ => turns.push((role, parts)),
    }
}

/// Text of a message whose content may only be text (system, tool).
fn text_only(content: Option<&Value>, path: &str) -> Result<Vec<String>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => {
                        if !t.is_empty() {
                            out.push(t.to_string());
                        }
                    }
                    _ => {
                        return Err(TranslateError::at(
                            format!("{path}.content[{j}]"),
                            "only text content parts are supported here",
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(TranslateError::at(
            format!("{path}.content"),
            "content must be a string or an array of content parts",
        )),
    }
}

fn user_parts(content: Option<&Value>, path: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        // Gemini rejects empty text parts; an empty message adds nothing.
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                if let Some(part) = content_part(p, &format!("{path}.content[{j}]"))? {
                    out.push(part);
                }
            }
            Ok(out)
        }
        Some(_) => Err(TranslateError::at(
            format!("{path}.content"),
            "content must be a string or an array of content parts",
        )),
    }
}

/// One OpenAI user content part -> one Gemini part (None for empty text).
fn content_part(p: &Value, path: &str) -> Result<Option<Value>, TranslateError> {
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "text" => match p.get("text").and_then(Value::as_str) {
            Some("") => Ok(None),
            Some(t) => Ok(Some(json!({ "text": t }))),
            None => Err(TranslateError::at(
                path,
                "text part needs a string \"text\"",
            )),
        },
        "image_url" => {
            let url = match p.get("image_url") {
                Some(Value::String(u)) => Some(u.as_str()),
                Some(o) => o.get("url").and_then(Value::as_str),
                None => None,
            }
            .ok_or_else(|| TranslateError::at(path, "image_url part needs image_url.url"))?;
            media_from_url(url, "image/jpeg", path).map(Some)
        }
        "input_audio" => {
            let audio = p.get("input_audio");
            let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
            let format = audio.and_then(|a| a.get("format")).and_then(Value::as_str);
            match (data, format) {
                (Some(d), Some(f)) if !d.is_empty() => Ok(Some(json!({
                    "inlineData": { "mimeType": audio_mime(f), "data": d }
                }))),
                _ => Err(TranslateError::at(
                    path,
                    "input_audio part needs input_audio.data and input_audio.format",
                )),
            }
        }
        "file" => {
            let file = p.get("file");
            if let Some(data) = file
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
            {
                if data.starts_with("data:") {
                    return media_from_url(data, "application/pdf", path).map(Some);
                }
                // Bare base64: OpenAI only accepts PDFs here, the filename may say more.
                let mime = file
                    .and_then(|f| f.get("filename"))
                    .and_then(Value::as_str)
                    .and_then(mime_from_extension)
                    .unwrap_or("application/pdf");
                return Ok(Some(
                    json!({ "inlineData": { "mimeType": mime, "data": data } }),
                ));
            }
            Err(TranslateError::at(
                path,
                "file parts must carry file_data; OpenAI file ids cannot be resolved for Gemini",
            ))
        }
        other => Err(TranslateError::at(
            path,
            format!("content part type {other:?} is not supported by Gemini"),
        )),
    }
}

fn audio_mime(format: &str) -> String {
    match format {
        "mp3" => "audio/mp3".to_string(),
        other => format!("audio/{other}"),
    }
}

/// A data URL becomes inline bytes; an http(s) URL becomes a file reference
/// Gemini fetches itself.
fn media_from_url(url: &str, default_mime: &str, path: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest
            .split_once(',')
            .ok_or_else(|| TranslateError::at(path, "malformed data URL"))?;
        let (mime, is_base64) = match header.strip_suffix(";base64") {
            Some(m) => (m, true),
            None => (header, false),
        };
        if !is_base64 {
            return Err(TranslateError::at(path, "data URLs must be base64-encoded"));
        }
        if data.is_empty() {
            return Err(TranslateError::at(path, "data URL has no data"));
        }
        // Parameters such as ";charset=utf-8" are not part of the MIME type.
        let mime = mime.split(';').next().unwrap_or("").trim();
        let mime = if mime.is_empty() { default_mime } else { mime };
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let mime = mime_from_extension(url).unwrap_or(default_mime);
        return Ok(json!({ "fileData": { "mimeType": mime, "fileUri": url } }));
    }
    Err(TranslateError::at(
        path,
        "media URLs must be data: URLs or http(s) URLs",
    ))
}

/// MIME type from a URL's or file name's extension, for the types Gemini
/// takes as input.
fn mime_from_extension(name: &str) -> Option<&'static str> {
    let path = name.split(['?', '#']).next().unwrap_or(name);
    let file = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = file.rsplit_once('.')?;
    let mime = match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        _ => return None,
    };
    Some(mime)
}

fn assistant_parts(
    m: &Map<String, Value>,
    path: &str,
    call_names: &mut HashMap<String, String>,
) -> Result<Vec<Value>, TranslateError> {
    let mut parts = Vec::new();
    match m.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.is_empty() {
                parts.push(json!({ "text": s }));
            }
        }
        Some(Value::Array(items)) => {
            for (j, p) in items.iter().enumerate() {
                let text = match p.get("type").and_then(Value::as_str) {
                    Some("text") => p.get("text").and_then(Value::as_str),
                    Some("refusal") => p.get("refusal").and_then(Value::as_str),
                    _ => None,
                }
                .ok_or_else(|| {
                    TranslateError::at(
                        format!("{path}.content[{j}]"),
                        "assistant content parts must be text or refusal",
                    )
                })?;
                if !text.is_empty() {
                    parts.push(json!({ "text": text }));
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::at(
                format!("{path}.content"),
                "content must be a string or an array of content parts",
            ))
        }
    }
    // A signature Gemini put on a text part came back on the message.
    if let Some(sig) = signature_in(m.get("extra_content")) {
        if let Some(last) = parts.last_mut().and_then(Value::as_object_mut) {
            last.insert("thoughtSignature".into(), sig.into());
        }
    }

    match field(m, "tool_calls") {
        None => {}
        Some(Value::Array(calls)) => {
            for (j, tc) in calls.iter().enumerate() {
                let cpath = format!("{path}.tool_calls[{j}]");
                if let Some(kind) = tc.get("type").and_then(Value::as_str) {
                    if kind != "function" {
                        return Err(TranslateError::at(
                            format!("{cpath}.type"),
                            format!("tool call type {kind:?} is not supported by Gemini"),
                        ));
                    }
                }
                let f = tc.get("function").ok_or_else(|| {
                    TranslateError::at(format!("{cpath}.function"), "function is required")
                })?;
                let mut part = function_call(f, &format!("{cpath}.function"))?;
                if let (Some(id), Some(name)) = (
                    tc.get("id").and_then(Value::as_str),
                    f.get("name").and_then(Value::as_str),
                ) {
                    call_names.insert(id.to_string(), name.to_string());
                }
                if let Some(sig) = signature_in(tc.get("extra_content")) {
                    part.insert("thoughtSignature".into(), sig.into());
                }
                parts.push(Value::Object(part));
            }
        }
        Some(_) => {
            return Err(TranslateError::at(
                format!("{path}.tool_calls"),
                "tool_calls must be an array",
            ))
        }
    }
    // Legacy single function call.
    if let Some(f) = field(m, "function_call") {
        parts.push(Value::Object(function_call(
            f,
            &format!("{path}.function_call"),
        )?));
    }
    Ok(parts)
}

/// OpenAI `{name, arguments: "<json>"}` -> Gemini `{"functionCall":{name,args}}`.
fn function_call(f: &Value, path: &str) -> Result<Map<String, Value>, TranslateError> {
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| TranslateError::at(format!("{path}.name"), "function name is required"))?;
    let args = match f.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|e| {
            TranslateError::at(
                format!("{path}.arguments"),
                format!("arguments are not valid JSON: {e}"),
            )
        })?,
        // Some clients send the object itself.
        Some(v) => v.clone(),
    };
    if !args.is_object() {
        return Err(TranslateError::at(
            format!("{path}.arguments"),
            "arguments must be a JSON object",
        ));
    }
    let mut part = Map::new();
    part.insert("functionCall".into(), json!({ "name": name, "args": args }));
    Ok(part)
}

/// A tool result -> `functionResponse`. Gemini wants an object: a JSON object
/// result is passed as is, anything else is wrapped as `{"content": text}`.
fn function_response(
    name: &str,
    content: Option<&Value>,
    path: &str,
) -> Result<Value, TranslateError> {
    let text = text_only(content, path)?.concat();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => Value::Object(o),
        _ => json!({ "content": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

fn generation_config(
    req: &Map<String, Value>,
    opts: &RequestOptions,
) -> Result<Map<String, Value>, TranslateError> {
    let mut gc = Map::new();

    // max_completion_tokens is the current name; max_tokens the deprecated one.
    let max = field(req, "max_completion_tokens")
        .map(|v| ("max_completion_tokens", v))
        .or_else(|| field(req, "max_tokens").map(|v| ("max_tokens", v)));
    match max {
        Some((key, v)) => {
            let n = v
                .as_u64()
                .ok_or_else(|| TranslateError::at(key, "must be a non-negative integer"))?;
            gc.insert("maxOutputTokens".into(), n.into());
        }
        None => {
            if let Some(n) = opts.default_max_tokens {
                gc.insert("maxOutputTokens".into(), n.into());
            }
        }
    }

    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = field(req, from) {
            if !v.is_number() {
                return Err(TranslateError::at(from, "must be a number"));
            }
            gc.insert(to.into(), v.clone());
        }
    }
    if let Some(v) = field(req, "seed") {
        let seed = v
            .as_i64()
            .ok_or_else(|| TranslateError::at("seed", "must be an integer"))?;
        gc.insert("seed".into(), seed.into());
    }
    if let Some(v) = field(req, "n") {
        let n = v
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or_else(|| TranslateError::at("n", "must be a positive integer"))?;
        gc.insert("candidateCount".into(), n.into());
    }

    match field(req, "stop") {
        Some(Value::String(s)) if !s.is_empty() => {
            gc.insert("stopSequences".into(), json!([s]));
        }
        None | Some(Value::String(_)) => {}
        Some(Value::Array(list)) => {
            let mut seqs = Vec::new();
            for (i, s) in list.iter().enumerate() {
                let s = s
                    .as_str()
                    .ok_or_else(|| TranslateError::at(format!("stop[{i}]"), "must be a string"))?;
                if !s.is_empty() {
                    seqs.push(Value::from(s));
                }
            }
            if !seqs.is_empty() {
                gc.insert("stopSequences".into(), Value::Array(seqs));
            }
        }
        Some(_) => {
            return Err(TranslateError::at(
                "stop",
                "must be a string or an array of strings",
            ))
        }
    }

    if let Some(rf) = field(req, "response_format") {
        match rf.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                gc.insert("responseMimeType".into(), "application/json".into());
            }
            Some("json_schema") => {
                let schema = rf
                    .get("json_schema")
                    .and_then(|j| j.get("schema"))
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        TranslateError::at(
                            "response_format.json_schema.schema",
                            "a JSON schema object is required",
                        )
                    })?;
                gc.insert("responseMimeType".into(), "application/json".into());
                let cleaned = clean_schema(schema);
                // An object with no properties is rejected, an untyped root
                // says nothing; JSON mode alone already asks for "any JSON".
                let typed = cleaned.get("type").is_some() || cleaned.get("anyOf").is_some();
                if typed && !is_empty_object_schema(&cleaned) {
                    gc.insert("responseSchema".into(), cleaned);
                }
            }
            _ => {
                return Err(TranslateError::at(
                    "response_format.type",
                    "must be text, json_object or json_schema",
                ))
            }
        }
    }

    let thinking = thinking_config(req)?;
    if !thinking.is_empty() {
        gc.insert("thinkingConfig".into(), Value::Object(thinking));
    }
    Ok(gc)
}

fn thinking_config(req: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut tc = Map::new();
    // OpenRouter-style `reasoning: {effort, max_tokens}` is accepted as well.
    let reasoning = field(req, "reasoning");
    let effort = field(req, "reasoning_effort")
        .map(|v| ("reasoning_effort", v))
        .or_else(|| {
            reasoning
                .and_then(|r| r.get("effort"))
                .filter(|v| !v.is_null())
                .map(|v| ("reasoning.effort", v))
        });
    if let Some((key, v)) = effort {
        let budget = v
            .as_str()
            .and_then(thinking_budget)
            .ok_or_else(|| TranslateError::at(key, "must be none, minimal, low, medium or high"))?;
        tc.insert("thinkingBudget".into(), budget.into());
        // Summaries are opt-in (below); OpenAI's effort alone does not ask for text.
        tc.insert("includeThoughts".into(), false.into());
    }
    if let Some(v) = reasoning
        .and_then(|r| r.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        let budget = v.as_u64().ok_or_else(|| {
            TranslateError::at("reasoning.max_tokens", "must be a non-negative integer")
        })?;
        tc.insert("thinkingBudget".into(), budget.into());
    }
    if field(req, "include_reasoning").and_then(Value::as_bool) == Some(true) {
        tc.insert("includeThoughts".into(), true.into());
    }
    if let Some(cfg) = google_ext(req)
        .and_then(|g| g.get("thinking_config"))
        .and_then(Value::as_object)
    {
        if let Some(b) = cfg.get("thinking_budget").and_then(Value::as_i64) {
            // -1 is Gemini's "dynamic" budget, so signed.
            tc.insert("thinkingBudget".into(), b.into());
        }
        if let Some(inc) = cfg.get("include_thoughts").and_then(Value::as_bool) {
            tc.insert("includeThoughts".into(), inc.into());
        }
        if let Some(level) = cfg.get("thinking_level").and_then(Value::as_str) {
            // Gemini 3 rejects a level and a budget together.
            tc.remove("thinkingBudget");
            tc.insert("thinkingLevel".into(), level.into());
        }
    }
    Ok(tc)
}

/// OpenAI `tools` (or legacy `functions`) and `tool_choice` (or
/// `function_call`) -> Gemini `tools` and `toolConfig`.
fn convert_tools(
    req: &Map<String, Value>,
) -> Result<Option<(Value, Option<Value>)>, TranslateError> {
    let (key, list, legacy) = match (field(req, "tools"), field(req, "functions")) {
        (Some(t), _) => ("tools", t, false),
        (None, Some(f)) => ("functions", f, true),
        (None, None) => return Ok(None),
    };
    let list = list
        .as_array()
        .ok_or_else(|| TranslateError::at(key, "must be an array"))?;

    let mut decls: Vec<Map<String, Value>> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let (f, fpath) = if legacy {
            (t, path.clone())
        } else {
            match t.get("type").and_then(Value::as_str) {
                Some("function") | None => {}
                Some(other) => {
                    return Err(TranslateError::at(
                        format!("{path}.type"),
                        format!("tool type {other:?} is not supported by Gemini"),
                    ))
                }
            }
            let f = t.get("function").ok_or_else(|| {
                TranslateError::at(format!("{path}.function"), "function is required")
            })?;
            (f, format!("{path}.function"))
        };
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                TranslateError::at(format!("{fpath}.name"), "function name is required")
            })?;
        let mut d = Map::new();
        d.insert("name".into(), name.into());
        if let Some(desc) = f.get("description").and_then(Value::as_str) {
            if !desc.is_empty() {
                d.insert("description".into(), desc.into());
            }
        }
        if let Some(params) = f.get("parameters").and_then(function_parameters) {
            d.insert("parameters".into(), params);
        }
        decls.push(d);
    }
    if decls.is_empty() {
        return Ok(None);
    }

    let choice = field(req, "tool_choice")
        .map(|c| ("tool_choice", c))
        .or_else(|| field(req, "function_call").map(|c| ("function_call", c)));
    let mut config = None;
    if let Some((ckey, choice)) = choice {
        let known = |n: &str| {
            decls
                .iter()
                .any(|d| d.get("name").and_then(Value::as_str) == Some(n))
        };
        let (mode, allowed): (&str, Vec<String>) = match choice {
            Value::String(s) => match s.as_str() {
                "auto" => ("AUTO", Vec::new()),
                "none" => ("NONE", Vec::new()),
                "required" => ("ANY", Vec::new()),
                other => {
                    return Err(TranslateError::at(
                        ckey,
                        format!("unsupported tool_choice {other:?}"),
                    ))
                }
            },
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("allowed_tools") => {
                let spec = o.get("allowed_tools");
                let names: Vec<String> = spec
                    .and_then(|a| a.get("tools"))
                    .and_then(Value::as_array)
                    .map(|ts| {
                        ts.iter()
                            .filter_map(|t| {
                                t.get("function")
                                    .and_then(|f| f.get("name"))
                                    .and_then(Value::as_str)
                            })
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if names.is_empty() || names.iter().any(|n| !known(n)) {
                    return Err(TranslateError::at(
                        format!("{ckey}.allowed_tools.tools"),
                        "must name functions declared in tools",
                    ));
                }
                match spec.and_then(|a| a.get("mode")).and_then(Value::as_str) {
                    Some("required") => ("ANY", names),
                    Some("auto") | None => {
                        // Gemini only restricts names in ANY mode: in AUTO
                        // the restriction is declaring only those functions.
                        decls.retain(|d| {
                            d.get("name")
                                .and_then(Value::as_str)
                                .is_some_and(|n| names.iter().any(|a| a == n))
                        });
                        ("AUTO", Vec::new())
                    }
                    Some(other) => {
                        return Err(TranslateError::at(
                            format!("{ckey}.allowed_tools.mode"),
                            format!("unsupported mode {other:?}"),
                        ))
                    }
                }
            }
            Value::Object(o) => {
                // {"type":"function","function":{"name"}} or legacy {"name"}.
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .or_else(|| o.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| TranslateError::at(ckey, "must name a function"))?;
                if !known(name) {
                    return Err(TranslateError::at(
                        ckey,
                        format!("function {name:?} is not declared in tools"),
                    ));
                }
                ("ANY", vec![name.to_string()])
            }
            _ => return Err(TranslateError::at(ckey, "must be a string or an object")),
        };
        let mut fcc = Map::new();
        fcc.insert("mode".into(), mode.into());
        if !allowed.is_empty() {
            fcc.insert("allowedFunctionNames".into(), json!(allowed));
        }
        config = Some(json!({ "functionCallingConfig": fcc }));
    }
    let decls: Vec<Value> = decls.into_iter().map(Value::Object).collect();
    Ok(Some((json!([{ "functionDeclarations": decls }]), config)))
}

/// Cleaned `parameters` for a function declaration, or None for a function
/// without parameters (Gemini rejects an OBJECT schema with no properties).
fn function_parameters(params: &Value) -> Option<Value> {
    if !params.is_object() {
        return None;
    }
    let mut cleaned = clean_schema(params);
    let obj = cleaned.as_object_mut()?;
    // A union at the root cannot be an OBJECT: declare the union of the
    // branches' properties, requiring only what every branch requires.
    if !obj.contains_key("properties") {
        if let Some(Value::Array(branches)) = obj.remove("anyOf") {
            let mut props = Map::new();
            let mut required: Option<Vec<Value>> = None;
            for b in &branches {
                if let Some(p) = b.get("properties").and_then(Value::as_object) {
                    for (k, v) in p {
                        props.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                let r = b
                    .get("required")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                required = Some(match required {
                    None => r,
                    Some(prev) => prev.into_iter().filter(|n| r.contains(n)).collect(),
                });
            }
            if !props.is_empty() {
                obj.insert("properties".into(), Value::Object(props));
                if let Some(r) = required.filter(|r| !r.is_empty()) {
                    obj.insert("required".into(), Value::Array(r));
                }
            }
        }
    }
    let no_properties = cleaned
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if no_properties {
        return None;
    }
    if let Some(obj) = cleaned.as_object_mut() {
        obj.insert("type".into(), "object".into());
        obj.remove("nullable");
    }
    Some(cleaned)
}

fn is_empty_object_schema(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some("object")
        && s.get("properties")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
}

// ---------------------------------------------------------------------------
// Schema cleaning
// ---------------------------------------------------------------------------

/// Deepest schema nesting kept; deeper levels become a bare object.
const MAX_SCHEMA_DEPTH: usize = 40;
/// `$ref` expansions per schema, so a schema whose references fan out
/// cannot make us build an exponentially large tree.
const MAX_REF_EXPANSIONS: usize = 512;

/// Reduces a JSON Schema to the OpenAPI 3.0 subset Gemini's `Schema` object
/// accepts: type, format, title, description, nullable, enum, items,
/// min/maxItems, properties, required, min/maxProperties, propertyOrdering,
/// min/maxLength, pattern, minimum, maximum, anyOf. Everything else
/// (`$schema`, `additionalProperties`, `default`, `examples`, ...) is dropped.
///
/// * `$ref` into `$defs`/`definitions` is inlined (a recursive reference
///   stops at the referenced type); `allOf` is merged; `oneOf` becomes `anyOf`.
/// * `"type": ["string","null"]` and null union branches become `nullable`;
///   several non-null types become an `anyOf` of single-type schemas.
/// * `const` becomes a one-value `enum`; enums must be strings for Gemini, so
///   a non-string enum is dropped and its values are listed in the description.
/// * Missing types are inferred (properties: object, items: array, enum:
///   string), and a nested schema that still has none (`{}`, `true`) is
///   declared a string, since Gemini rejects typeless nodes; an array without
///   `items` gets string items (Gemini requires them); `required` keeps only
///   declared properties; an object without properties is kept as a bare
///   `{"type":"object"}`.
pub fn clean_schema(schema: &Value) -> Value {
    let mut cleaner = SchemaCleaner {
        root: schema,
        // "#" is the root itself: a reference to it is recursion.
        resolving: vec!["#".to_string()],
        expansions: 0,
    };
    let mut cleaned = Value::Object(cleaner.clean(schema, 0));
    ensure_types(&mut cleaned, true);
    cleaned
}

/// Gemini rejects a nested schema with neither `type` nor `anyOf`; what is
/// left of "any value" (`{}`, `true`, a dangling `$ref`) is declared a
/// string. Done as a last pass because while merging, an untyped piece must
/// not shadow the type another piece brings.
fn ensure_types(schema: &mut Value, is_root: bool) {
    let Some(s) = schema.as_object_mut() else {
        return;
    };
    if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
        for p in props.values_mut() {
            ensure_types(p, false);
        }
    }
    if let Some(items) = s.get_mut("items") {
        ensure_types(items, false);
    }
    if let Some(branches) = s.get_mut("anyOf").and_then(Value::as_array_mut) {
        for b in branches {
            ensure_types(b, false);
        }
    }
    if !is_root && !s.contains_key("type") && !s.contains_key("anyOf") {
        s.insert("type".into(), "string".into());
    }
}

struct SchemaCleaner<'a> {
    root: &'a Value,
    resolving: Vec<String>,
    expansions: usize,
}

impl SchemaCleaner<'_> {
    fn clean(&mut self, schema: &Value, depth: usize) -> Map<String, Value> {
        let Some(src) = schema.as_object() else {
            // `true`/`false` schemas and junk: "anything".
            return Map::new();
        };
        if depth > MAX_SCHEMA_DEPTH {
            let mut m = Map::new();
            m.insert("type".into(), "object".into());
            return m;
        }

        let mut out = Map::new();
        if let Some(r) = src.get("$ref").and_then(Value::as_str) {
            out = self.resolve(r, depth);
        }
        if let Some(Value::Array(all)) = src.get("allOf") {
            for branch in all {
                let c = self.clean(branch, depth + 1);
                merge_schema(&mut out, c);
            }
        }
        if let Some(Value::Array(branches)) = src.get("anyOf").or_else(|| src.get("oneOf")) {
            let mut kept = Vec::new();
            let mut nullable = false;
            for branch in branches {
                let c = self.clean(branch, depth + 1);
                if is_null_only(&c) {
                    nullable = true;
                } else {
                    kept.push(c);
                }
            }
            if kept.len() == 1 {
                // Optional[X]: just X, nullable.
                if let Some(only) = kept.pop() {
                    merge_schema(&mut out, only);
                }
            } else if !kept.is_empty() {
                out.insert(
                    "anyOf".into(),
                    Value::Array(kept.into_iter().map(Value::Object).collect()),
                );
            }
            if nullable {
                out.insert("nullable".into(), true.into());
            }
        }

        // The schema's own keywords override what references supplied.
        for (k, v) in src {
            if scalar_keyword_ok(k, v) {
                out.insert(k.clone(), v.clone());
                continue;
            }
            match (k.as_str(), v) {
                ("type", Value::String(t)) => {
                    out.insert("type".into(), t.to_ascii_lowercase().into());
                }
                ("type", Value::Array(ts)) => {
                    let ts: Vec<Value> = ts
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|t| Value::from(t.to_ascii_lowercase()))
                        .collect();
                    out.insert("type".into(), Value::Array(ts));
                }
                ("const", v) => {
                    out.insert("enum".into(), json!([v]));
                }
                ("properties", Value::Object(props)) => {
                    let mut cleaned = match out.remove("properties") {
                        Some(Value::Object(p)) => p,
                        _ => Map::new(),
                    };
                    for (name, s) in props {
                        cleaned.insert(name.clone(), Value::Object(self.clean(s, depth + 1)));
                    }
                    out.insert("properties".into(), Value::Object(cleaned));
                }
                ("required", Value::Array(names)) => union_required(&mut out, names),
                ("items", Value::Object(_)) => {
                    out.insert("items".into(), Value::Object(self.clean(v, depth + 1)));
                }
                // Tuple form: any of the positions.
                ("items", Value::Array(tuple)) if !tuple.is_empty() => {
                    let mut branches: Vec<Value> = tuple
                        .iter()
                        .map(|s| Value::Object(self.clean(s, depth + 1)))
                        .collect();
                    branches.dedup();
                    let items = if branches.len() == 1 {
                        branches.pop().unwrap_or_default()
                    } else {
                        json!({ "anyOf": branches })
                    };
                    out.insert("items".into(), items);
                }
                ("prefixItems", Value::Array(tuple)) if !src.contains_key("items") => {
                    if let Some(first) = tuple.first() {
                        out.insert("items".into(), Value::Object(self.clean(first, depth + 1)));
                    }
                }
                _ => {}
            }
        }
        finish_schema(out)
    }

    /// The cleaned target of a local `$ref`.
    fn resolve(&mut self, reference: &str, depth: usize) -> Map<String, Value> {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer));
        let Some(target) = target else {
            // Remote or dangling reference: nothing to inline.
            return Map::new();
        };
        if self.resolving.iter().any(|r| r == reference) || self.expansions >= MAX_REF_EXPANSIONS {
            // Recursive type: keep its kind and description, stop expanding.
            let mut m = Map::new();
            let kind = target
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .unwrap_or_else(|| "object".to_string());
            m.insert("type".into(), kind.into());
            if let Some(d) = target.get("description").filter(|d| d.is_string()) {
                m.insert("description".into(), d.clone());
            }
            return finish_schema(m);
        }
        self.expansions += 1;
        self.resolving.push(reference.to_string());
        let m = self.clean(target, depth + 1);
        self.resolving.pop();
        m
    }
}

/// A cleaned `{"type":"null"}`: only says "may be null".
fn is_null_only(s: &Map<String, Value>) -> bool {
    s.get("nullable") == Some(&Value::Bool(true))
        && s.keys()
            .all(|k| matches!(k.as_str(), "nullable" | "description" | "title"))
}

/// Keywords Gemini takes verbatim, when their value has the right shape.
fn scalar_keyword_ok(key: &str, v: &Value) -> bool {
    match key {
        "description" | "title" | "pattern" | "format" => v.is_string(),
        "nullable" => v.is_boolean(),
        "enum" => v.is_array(),
        "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties" | "maxProperties" => {
            v.is_u64()
        }
        "minimum" | "maximum" => v.is_number(),
        "propertyOrdering" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        _ => false,
    }
}

/// Merges `src` into `dst`: properties and required are combined, other
/// keywords only fill gaps (the schema being built has the last word).
fn merge_schema(dst: &mut Map<String, Value>, src: Map<String, Value>) {
    for (k, v) in src {
        match (k.as_str(), v) {
            ("properties", Value::Object(props)) => {
                let entry = dst
                    .entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(existing) = entry.as_object_mut() {
                    for (name, s) in props {
                        existing.entry(name).or_insert(s);
                    }
                }
            }
            ("required", Value::Array(names)) => union_required(dst, &names),
            (_, v) => {
                dst.entry(k).or_insert(v);
            }
        }
    }
}

fn union_required(dst: &mut Map<String, Value>, names: &[Value]) {
    let entry = dst
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = entry.as_array_mut() {
        for n in names.iter().filter(|n| n.is_string()) {
            if !list.contains(n) {
                list.push(n.clone());
            }
        }
    }
}

/// Keywords Gemini only accepts on one kind of schema.
fn keyword_applies(key: &str, kind: &str) -> bool {
    match key {
        "properties" | "required" | "minProperties" | "maxProperties" | "propertyOrdering" => {
            kind == "object"
        }
        "items" | "minItems" | "maxItems" => kind == "array",
        "minLength" | "maxLength" | "pattern" | "enum" => kind == "string",
        "minimum" | "maximum" => kind == "number" || kind == "integer",
        _ => true,
    }
}

/// Makes a cleaned schema self-consistent: single type, string enums,
/// required within properties, items on arrays.
fn finish_schema(mut s: Map<String, Value>) -> Map<String, Value> {
    // type: null and type lists.
    match s.remove("type") {
        Some(Value::String(t)) if t == "null" => {
            s.insert("nullable".into(), true.into());
        }
        Some(Value::String(t)) => {
            s.insert("type".into(), t.into());
        }
        Some(Value::Array(types)) => {
            let mut kinds: Vec<String> = Vec::new();
            for t in types.iter().filter_map(Value::as_str) {
                if t == "null" {
                    s.insert("nullable".into(), true.into());
                } else if !kinds.iter().any(|k| k == t) {
                    kinds.push(t.to_string());
                }
            }
            if kinds.len() == 1 {
                s.insert("type".into(), kinds.remove(0).into());
            } else if kinds.len() > 1 {
                return split_types(s, &kinds);
            }
        }
        _ => {}
    }

    // const null / enum null mean nullable; the rest must be strings.
    if let Some(Value::Array(values)) = s.remove("enum") {
        let mut values: Vec<Value> = values
            .into_iter()
            .filter(|v| {
                if v.is_null() {
                    s.insert("nullable".into(), true.into());
                    false
                } else {
                    true
                }
            })
            .collect();
        values.dedup();
        let kind = s.get("type").and_then(Value::as_str);
        if !values.is_empty() {
            if values.iter().all(Value::is_string) && matches!(kind, None | Some("string")) {
                s.insert("type".into(), "string".into());
                s.insert("enum".into(), Value::Array(values));
            } else {
                let listed: Vec<String> = values.iter().map(Value::to_string).collect();
                let note = format!("Allowed values: {}.", listed.join(", "));
                let desc = match s.get("description").and_then(Value::as_str) {
                    Some(d) if !d.is_empty() => format!("{d} {note}"),
                    _ => note,
                };
                s.insert("description".into(), desc.into());
            }
        }
    }

    // Infer a missing type from the keywords present.
    if !s.contains_key("type") && !s.contains_key("anyOf") {
        if s.contains_key("properties") {
            s.insert("type".into(), "object".into());
        } else if s.contains_key("items") {
            s.insert("type".into(), "array".into());
        }
    }

    let kind = s.get("type").and_then(Value::as_str).map(str::to_string);
    if let Some(kind) = &kind {
        s.retain(|k, _| keyword_applies(k, kind));
    }
    match kind.as_deref() {
        Some("object") => {
            let names: Vec<String> = s
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            if names.is_empty() {
                // "properties: should be non-empty for OBJECT type".
                s.remove("properties");
            }
            for key in ["required", "propertyOrdering"] {
                if let Some(Value::Array(list)) = s.remove(key) {
                    let list: Vec<Value> = list
                        .into_iter()
                        .filter(|n| n.as_str().is_some_and(|n| names.iter().any(|p| p == n)))
                        .collect();
                    if !list.is_empty() {
                        s.insert(key.into(), Value::Array(list));
                    }
                }
            }
        }
        Some("array") => {
            // Gemini: "items: missing field". Strings are the most common case.
            let missing = s
                .get("items")
                .is_none_or(|i| i.as_object().is_none_or(Map::is_empty));
            if missing {
                s.insert("items".into(), json!({ "type": "string" }));
            }
        }
        _ => {}
    }
    s
}

/// `"type": ["string","integer"]` -> `anyOf` of one schema per type, each
/// with the keywords that apply to it.
fn split_types(s: Map<String, Value>, kinds: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in ["description", "title", "nullable"] {
        if let Some(v) = s.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let branches: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            let mut b: Map<String, Value> = s
                .iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "description" | "title" | "nullable" | "anyOf")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            b.insert("type".into(), kind.as_str().into());
            Value::Object(finish_schema(b))
        })
        .collect();
    out.insert("anyOf".into(), Value::Array(branches));
    out
}

/// Gemini 3 rejects a history whose function calls lack thought signatures.
/// For a conversation that did not come from Gemini (or whose client dropped
/// `extra_content`), Google documents a placeholder that skips the check.
/// This puts it on the first `functionCall` of every model turn that has no
/// signature at all. Only for Gemini 3 targets: other models do not need it.
pub fn fill_missing_thought_signatures(body: &mut Value) {
    const PLACEHOLDER: &str = "skip_thought_signature_validator";
    let Some(contents) = body.get_mut("contents").and_then(Value::as_array_mut) else {
        return;
    };
    for turn in contents {
        if turn.get("role").and_then(Value::as_str) != Some("model") {
            continue;
        }
        let Some(parts) = turn.get_mut("parts").and_then(Value::as_array_mut) else {
            continue;
        };
        // Parallel calls carry one signature, on the first call.
        let signed = parts
            .iter()
            .any(|p| p.get("functionCall").is_some() && p.get("thoughtSignature").is_some());
        if signed {
            continue;
        }
        if let Some(first) = parts
            .iter_mut()
            .find(|p| p.get("functionCall").is_some())
            .and_then(Value::as_object_mut)
        {
            first.insert("thoughtSignature".into(), PLACEHOLDER.into());
        }
    }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A completion id for responses without `responseId`: time plus a process
/// counter, unique enough for correlation without a random source.
pub(crate) fn generated_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "chatcmpl-{nanos:016x}{:08x}",
        fnv1a(&n.to_le_bytes()) as u32
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn response_id(resp: &Value) -> Option<&str> {
    resp.get("responseId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Suffix that makes synthesized tool call ids unique across turns while
/// staying deterministic for a given response.
fn call_salt(resp: &Value) -> Option<String> {
    response_id(resp).map(|id| format!("{:08x}", fnv1a(id.as_bytes()) as u32))
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `usageMetadata` -> (Usage, thinking tokens). Thinking counts as output.
fn read_usage(meta: &Value) -> (Usage, u64) {
    let prompt = u64_at(meta, "promptTokenCount");
    let candidates = u64_at(meta, "candidatesTokenCount");
    let thoughts = u64_at(meta, "thoughtsTokenCount");
    let total = meta
        .get("totalTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(prompt.saturating_add(candidates).saturating_add(thoughts));
    let usage = Usage {
        prompt_tokens: prompt,
        completion_tokens: candidates.saturating_add(thoughts),
        total_tokens: total,
        cached_tokens: u64_at(meta, "cachedContentTokenCount"),
        ..Default::default()
    };
    (usage, thoughts)
}

fn usage_json(u: &Usage, reasoning: u64) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": { "cached_tokens": u.cached_tokens },
        "completion_tokens_details": { "reasoning_tokens": reasoning },
    })
}

/// The message of an `{"error": {...}}` object Gemini put in a 200 body or
/// a stream event.
fn embedded_error(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| e.as_str())
        .unwrap_or("unknown error");
    Some(match e.get("status").and_then(Value::as_str) {
        Some(status) => format!("Gemini error ({status}): {message}"),
        None => format!("Gemini error: {message}"),
    })
}

struct ToolCallOut {
    id: String,
    name: String,
    arguments: String,
    signature: Option<String>,
}

impl ToolCallOut {
    fn to_json(&self, index: Option<usize>) -> Value {
        let mut c = Map::new();
        if let Some(i) = index {
            c.insert("index".into(), i.into());
        }
        c.insert("id".into(), self.id.clone().into());
        c.insert("type".into(), "function".into());
        c.insert(
            "function".into(),
            json!({ "name": self.name, "arguments": self.arguments }),
        );
        if let Some(sig) = &self.signature {
            c.insert("extra_content".into(), signature_json(sig));
        }
        Value::Object(c)
    }
}

fn signature_json(sig: &str) -> Value {
    json!({ "google": { "thought_signature": sig } })
}

/// What one candidate's parts say, in OpenAI terms.
#[derive(Default)]
struct PartsOut {
    text: String,
    reasoning: String,
    calls: Vec<ToolCallOut>,
    /// A signature on a non-functionCall part (last one wins).
    text_signature: Option<String>,
}

/// Reads a candidate's `content.parts`. `first_call` is how many calls this
/// choice already produced (stream), so synthesized ids stay unique.
fn read_parts(candidate: &Value, first_call: usize, salt: Option<&str>) -> PartsOut {
    let mut out = PartsOut::default();
    let parts = candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array);
    for p in parts.into_iter().flatten() {
        let sig = p
            .get("thoughtSignature")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(fc) = p.get("functionCall") {
            let name = fc
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let arguments = match fc.get("args") {
                None | Some(Value::Null) => "{}".to_string(),
                Some(a) => a.to_string(),
            };
            let index = first_call + out.calls.len();
            let id = match fc
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(id) => id.to_string(),
                None => match salt {
                    Some(salt) => format!("call_{index}_{name}_{salt}"),
                    None => format!("call_{index}_{name}"),
                },
            };
            out.calls.push(ToolCallOut {
                id,
                name,
                arguments,
                signature: sig,
            });
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(t);
            } else {
                out.text.push_str(t);
            }
        }
        // Other part kinds (executableCode, inlineData output, ...) have no
        // Chat Completions form and are skipped.
        if sig.is_some() {
            out.text_signature = sig;
        }
    }
    out
}

/// Gemini finishReason -> OpenAI finish_reason when no tool was called;
/// `None` for the reasons that mean the model failed to produce a valid
/// function call (answered as an error). Shared with the typed fast path.
pub(crate) fn plain_finish(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "LANGUAGE" => "content_filter",
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => return None,
        _ => "stop",
    })
}

/// Gemini finishReason -> OpenAI finish_reason, or an error for the ones
/// that mean the model failed to produce an answer.
fn map_finish(
    candidate: &Value,
    reason: &str,
    had_calls: bool,
) -> Result<&'static str, TranslateError> {
    match plain_finish(reason) {
        None => {
            let detail = candidate
                .get("finishMessage")
                .and_then(Value::as_str)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            Err(TranslateError::new(format!(
                "Gemini failed to produce a valid function call (finishReason {reason}){detail}"
            )))
        }
        Some("stop") if had_calls => Ok("tool_calls"),
        Some(r) => Ok(r),
    }
}

/// Explanation for a prompt Gemini refused to answer, if it did.
fn block_message(resp: &Value) -> Option<String> {
    let fb = resp.get("promptFeedback")?;
    let reason = fb.get("blockReason").and_then(Value::as_str)?;
    let extra = fb
        .get("blockReasonMessage")
        .and_then(Value::as_str)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Some(format!(
        "The prompt was blocked by Gemini (blockReason {reason}){extra}"
    ))
}

/// Gemini GenerateContentResponse -> OpenAI chat.completion (model given by caller).
pub fn gemini_response_to_openai(
    resp: &Value,
    model: &str,
) -> Result<(Value, Usage), TranslateError> {
    if let Some(e) = embedded_error(resp) {
        return Err(TranslateError::new(e));
    }
    if !resp.is_object() {
        return Err(TranslateError::new("Gemini response is not a JSON object"));
    }
    let (usage, reasoning_tokens) = resp
        .get("usageMetadata")
        .map(read_usage)
        .unwrap_or_default();
    let id = response_id(resp)
        .map(|r| format!("chatcmpl-{r}"))
        .unwrap_or_else(generated_id);
    let salt = call_salt(resp);

    let candidates = resp
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut choices = Vec::new();
    if candidates.is_empty() {
        // A blocked prompt has no candidates; answer it as filtered content.
        let refusal = block_message(resp)
            .ok_or_else(|| TranslateError::new("Gemini returned no candidates"))?;
        choices.push(json!({
            "index": 0,
            "message": { "role": "assistant", "content": null, "refusal": refusal },
            "logprobs": null,
            "finish_reason": "content_filter",
        }));
    }
    for (pos, cand) in candidates.iter().enumerate() {
        let index = cand
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(pos as u64);
        let parts = read_parts(cand, 0, salt.as_deref());
        let finish = match cand.get("finishReason").and_then(Value::as_str) {
            Some(r) => map_finish(cand, r, !parts.calls.is_empty())?,
            None if !parts.calls.is_empty() => "tool_calls",
            None => "stop",
        };
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        let content = if parts.text.is_empty() {
            Value::Null
        } else {
            Value::from(parts.text)
        };
        message.insert("content".into(), content);
        if !parts.reasoning.is_empty() {
            message.insert("reasoning_content".into(), parts.reasoning.into());
        }
        if !parts.calls.is_empty() {
            let calls: Vec<Value> = parts.calls.iter().map(|c| c.to_json(None)).collect();
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        if let Some(sig) = &parts.text_signature {
            message.insert("extra_content".into(), signature_json(sig));
        }
        choices.push(json!({
            "index": index,
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }));
    }

    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": choices,
        "usage": usage_json(&usage, reasoning_tokens),
    });
    Ok((body, usage))
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Gemini error body ({"error":{"code":400,"message":"...","status":
/// "INVALID_ARGUMENT","details":[...]}}) -> (status, OpenAI error JSON
/// {"error":{message,type,param,code}}). `code` is Gemini's status string,
/// or the ErrorInfo reason (e.g. API_KEY_INVALID) for a rejected key.
pub fn gemini_error_to_openai(status: u16, body: &[u8]) -> (u16, Value) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // streamGenerateContent without alt=sse wraps the error in an array.
    let err = parsed
        .as_ref()
        .and_then(|v| match v {
            Value::Array(items) => items.first(),
            other => Some(other),
        })
        .and_then(|v| v.get("error"));

    let message = err
        .and_then(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .or_else(|| e.as_str())
        })
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("Gemini returned HTTP {status}")
            } else {
                let short: String = text.chars().take(500).collect();
                format!("Gemini returned HTTP {status}: {short}")
            }
        });
    let g_status = err.and_then(|e| e.get("status")).and_then(Value::as_str);
    let key_reason = err
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("reason").and_then(Value::as_str))
        .find(|r| matches!(*r, "API_KEY_INVALID" | "API_KEY_EXPIRED"));

    let out_status = if key_reason.is_some() {
        // Gemini says 400 INVALID_ARGUMENT for a bad key; clients and the
        // key balancer need to see an authentication failure.
        401
    } else {
        g_status
            .and_then(status_for)
            .or_else(|| {
                err.and_then(|e| e.get("code"))
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|c| (400..600).contains(c))
            })
            .unwrap_or(if (400..600).contains(&status) {
                status
            } else {
                502
            })
    };
    let kind = match out_status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_exceeded",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let code = key_reason.or(g_status);
    (
        out_status,
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } }),
    )
}

/// google.rpc.Code names -> HTTP status.
fn status_for(s: &str) -> Option<u16> {
    Some(match s {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

/// Gemini SSE chunks (each `data:` is a full GenerateContentResponse) ->
/// OpenAI chat.completion.chunk payloads.
#[derive(Debug)]
pub struct GeminiToOpenAiStream {
    header: ChunkHeader,
    /// Tool call id suffix from the first responseId.
    salt: Option<String>,
    choices: BTreeMap<u64, ChoiceState>,
    usage: Usage,
    reasoning_tokens: u64,
    finish_seen: bool,
    done: bool,
    /// Tests compare the typed path with this set.
    value_only: bool,
}

#[derive(Debug)]
struct ChunkHeader {
    /// Fixed by the first event: its responseId, else generated.
    id: Option<String>,
    created: u64,
    model: String,
    include_usage: bool,
}

impl ChunkHeader {
    fn chunk(&self, index: u64, delta: Map<String, Value>, finish: Option<&str>) -> String {
        let mut c = json!({
            "id": self.id.as_deref().unwrap_or_default(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": index, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        if self.include_usage {
            // OpenAI puts usage: null on every chunk but the last.
            if let Some(o) = c.as_object_mut() {
                o.insert("usage".into(), Value::Null);
            }
        }
        c.to_string()
    }

    /// [`Self::chunk`] written directly, for the typed path: the delta's
    /// members are given already serialised (`"role":"assistant",…`, in
    /// the order the `Value` path inserts them).
    fn typed_chunk(&self, index: u64, delta: &str, finish: Option<&str>) -> String {
        use super::typed::push_json_str;
        let mut c = String::with_capacity(160 + delta.len() + self.model.len());
        c.push_str(r#"{"id":"#);
        push_json_str(&mut c, self.id.as_deref().unwrap_or_default());
        c.push_str(r#","object":"chat.completion.chunk","created":"#);
        super::typed::push_u64(&mut c, self.created);
        c.push_str(r#","model":"#);
        push_json_str(&mut c, &self.model);
        c.push_str(r#","choices":[{"index":"#);
        super::typed::push_u64(&mut c, index);
        c.push_str(r#","delta":{"#);
        c.push_str(delta);
        c.push_str(r#"},"logprobs":null,"finish_reason":"#);
        match finish {
            Some(f) => push_json_str(&mut c, f),
            None => c.push_str("null"),
        }
        c.push_str("}]");
        if self.include_usage {
            c.push_str(r#","usage":null"#);
        }
        c.push('}');
        c
    }
}

#[derive(Debug, Default)]
struct ChoiceState {
    role_sent: bool,
    /// Tool calls streamed so far: the next call's `index`.
    calls: usize,
    finish_sent: bool,
}

impl ChoiceState {
    /// A delta starting with the role on the choice's first chunk.
    fn delta(&mut self) -> Map<String, Value> {
        let mut d = Map::new();
        if !self.role_sent {
            d.insert("role".into(), "assistant".into());
            self.role_sent = true;
        }
        d
    }
}

impl GeminiToOpenAiStream {
    pub fn new(model: &str, include_usage: bool) -> Self {
        GeminiToOpenAiStream {
            header: ChunkHeader {
                id: None,
                created: now_secs(),
                model: model.to_string(),
                include_usage,
            },
            salt: None,
            choices: BTreeMap::new(),
            usage: Usage::default(),
            reasoning_tokens: 0,
            finish_seen: false,
            done: false,
            value_only: false,
        }
    }

    /// One SSE data payload. Returns OpenAI `data:` payloads (JSON strings
    /// without "data: ").
    pub fn push(&mut self, data: &str) -> Result<Vec<String>, TranslateError> {
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" || self.done {
            return Ok(Vec::new());
        }
        if !self.value_only {
            if let Some(chunk) = super::typed::gemini::canonical_text_chunk(data) {
                return Ok(self.push_canonical(chunk));
            }
            if let Some(out) = super::typed::gemini::parse(data).and_then(|ev| self.push_typed(&ev))
            {
                return Ok(out);
            }
        }
        let event: Value = serde_json::from_str(data).map_err(|e| {
            TranslateError::new(format!("invalid JSON in Gemini stream event: {e}"))
        })?;
        if let Some(e) = embedded_error(&event) {
            return Err(TranslateError::new(e));
        }
        if self.header.id.is_none() {
            self.header.id = Some(
                response_id(&event)
                    .map(|r| format!("chatcmpl-{r}"))
                    .unwrap_or_else(generated_id),
            );
            self.salt = call_salt(&event);
        }
        // Usage is cumulative on each chunk: the last report wins.
        if let Some(meta) = event.get("usageMetadata") {
            (self.usage, self.reasoning_tokens) = read_usage(meta);
        }

        let mut out = Vec::new();
        let candidates = event
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if candidates.is_empty() {
            if let Some(refusal) = block_message(&event) {
                let st = self.choices.entry(0).or_default();
                if !st.finish_sent {
                    let mut d = st.delta();
                    d.insert("refusal".into(), refusal.into());
                    out.push(self.header.chunk(0, d, None));
                    out.push(self.header.chunk(0, Map::new(), Some("content_filter")));
                    st.finish_sent = true;
                    self.finish_seen = true;
                }
            }
            return Ok(out);
        }

        for (pos, cand) in candidates.iter().enumerate() {
            let index = cand
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let st = self.choices.entry(index).or_default();
            let parts = read_parts(cand, st.calls, self.salt.as_deref());
            let has_delta = !parts.text.is_empty()
                || !parts.reasoning.is_empty()
                || !parts.calls.is_empty()
                || parts.text_signature.is_some();
            if has_delta {
                let mut d = st.delta();
                if !parts.reasoning.is_empty() {
                    d.insert("reasoning_content".into(), parts.reasoning.into());
                }
                if !parts.text.is_empty() {
                    d.insert("content".into(), parts.text.into());
                }
                if !parts.calls.is_empty() {
                    let calls: Vec<Value> = parts
                        .calls
                        .iter()
                        .enumerate()
                        .map(|(k, c)| c.to_json(Some(st.calls + k)))
                        .collect();
                    st.calls += calls.len();
                    d.insert("tool_calls".into(), Value::Array(calls));
                }
                if let Some(sig) = &parts.text_signature {
                    d.insert("extra_content".into(), signature_json(sig));
                }
                out.push(self.header.chunk(index, d, None));
            }
            if let Some(reason) = cand.get("finishReason").and_then(Value::as_str) {
                let finish = map_finish(cand, reason, st.calls > 0)?;
                if !st.finish_sent {
                    let d = st.delta();
                    out.push(self.header.chunk(index, d, Some(finish)));
                    st.finish_sent = true;
                }
                self.finish_seen = true;
            }
        }
        Ok(out)
    }

    /// [`Self::push_typed`] for a text chunk in Gemini's exact form: one
    /// candidate, index 0, one text part, usage, no finish reason.
    fn push_canonical(&mut self, chunk: super::typed::gemini::CanonicalChunk<'_>) -> Vec<String> {
        use super::typed::push_json_str;
        if self.header.id.is_none() {
            let rid = chunk.response_id.filter(|s| !s.is_empty());
            self.header.id = Some(rid.map_or_else(generated_id, |r| format!("chatcmpl-{r}")));
            self.salt = rid.map(|id| format!("{:08x}", fnv1a(id.as_bytes()) as u32));
        }
        (self.usage, self.reasoning_tokens) = chunk.usage.read();
        let st = self.choices.entry(0).or_default();
        if chunk.text.is_empty() {
            return Vec::new();
        }
        // The delta's members as `push_typed` writes them.
        let mut d = String::with_capacity(chunk.text.len() + 32);
        if !st.role_sent {
            d.push_str(r#""role":"assistant","#);
            st.role_sent = true;
        }
        d.push_str(r#""content":"#);
        push_json_str(&mut d, &chunk.text);
        vec![self.header.typed_chunk(0, &d, None)]
    }

    /// [`Self::push`] for an event of text and thought parts, from a typed
    /// borrowing parse. Returns `None`, having changed nothing, for what it
    /// leaves to the `Value` path: errors, function calls, finish reasons
    /// that are errors, events without candidates (blocked prompts).
    fn push_typed(&mut self, ev: &super::typed::gemini::Response<'_>) -> Option<Vec<String>> {
        use super::typed::{gemini::finish_reason, push_json_str};
        if ev.error.is_some() {
            return None;
        }
        let candidates = ev.candidates.as_deref().filter(|c| !c.is_empty())?;
        // Everything is read and checked before any state changes.
        let mut read = Vec::with_capacity(candidates.len());
        for (pos, cand) in candidates.iter().enumerate() {
            let reason = cand.finish_reason.as_deref();
            let finish = match reason {
                Some(_) => Some(finish_reason(reason)?),
                None => None,
            };
            read.push((cand.read(pos)?, finish));
        }

        if self.header.id.is_none() {
            let rid = ev.response_id.as_deref().filter(|s| !s.is_empty());
            self.header.id = Some(rid.map_or_else(generated_id, |r| format!("chatcmpl-{r}")));
            self.salt = rid.map(|id| format!("{:08x}", fnv1a(id.as_bytes()) as u32));
        }
        if let Some(meta) = &ev.usage_metadata {
            (self.usage, self.reasoning_tokens) =
                meta.as_ref().map(|u| u.read()).unwrap_or_default();
        }
        let mut out = Vec::new();
        for (c, finish) in read {
            let st = self.choices.entry(c.index).or_default();
            let has_delta = !c.text.is_empty() || !c.reasoning.is_empty() || c.signature.is_some();
            // The delta's members, in the `Value` path's insertion order.
            let mut d = String::new();
            let member = |d: &mut String, key: &str, value: &str| {
                if !d.is_empty() {
                    d.push(',');
                }
                d.push_str(key);
                push_json_str(d, value);
            };
            // `ChoiceState::delta`: the role opens the choice's first chunk,
            // a content one or a finish one.
            if !st.role_sent && (has_delta || (finish.is_some() && !st.finish_sent)) {
                member(&mut d, r#""role":"#, "assistant");
                st.role_sent = true;
            }
            if has_delta {
                if !c.reasoning.is_empty() {
                    member(&mut d, r#""reasoning_content":"#, &c.reasoning);
                }
                if !c.text.is_empty() {
                    member(&mut d, r#""content":"#, &c.text);
                }
                if let Some(sig) = c.signature {
                    member(
                        &mut d,
                        r#""extra_content":{"google":{"thought_signature":"#,
                        sig,
                    );
                    d.push_str("}}");
                }
                out.push(self.header.typed_chunk(c.index, &d, None));
                d.clear();
            }
            if let Some(finish) = finish {
                // Calls streamed by the `Value` path earlier make an
                // ordinary end a tool-call end, as in `map_finish`.
                let finish = if finish == "stop" && st.calls > 0 {
                    "tool_calls"
                } else {
                    finish
                };
                if !st.finish_sent {
                    out.push(self.header.typed_chunk(c.index, &d, Some(finish)));
                    st.finish_sent = true;
                }
                self.finish_seen = true;
            }
        }
        Some(out)
    }

    /// Upstream ended. If it ended cleanly (`clean`) and a finishReason was
    /// seen, emit the final chunk(s): finish chunk if not sent, usage chunk
    /// if include_usage, then "[DONE]". Otherwise the stream was truncated:
    /// Err describes it (the caller turns it into an error event).
    pub fn finish(&mut self, clean: bool) -> Result<Vec<String>, TranslateError> {
        if self.done {
            return Ok(Vec::new());
        }
        self.done = true;
        if !clean {
            return Err(TranslateError::new(
                "Gemini stream was cut off before the response finished",
            ));
        }
        if !self.finish_seen {
            return Err(TranslateError::new(
                "Gemini stream ended without a finishReason; the response is incomplete",
            ));
        }
        let mut out = Vec::new();
        // With n > 1, a choice Gemini never finished explicitly ends here.
        for (index, st) in &mut self.choices {
            if !st.finish_sent {
                let finish = if st.calls > 0 { "tool_calls" } else { "stop" };
                let d = st.delta();
                out.push(self.header.chunk(*index, d, Some(finish)));
                st.finish_sent = true;
            }
        }
        if self.header.include_usage {
            let c = json!({
                "id": self.header.id.as_deref().unwrap_or_default(),
                "object": "chat.completion.chunk",
                "created": self.header.created,
                "model": self.header.model,
                "choices": [],
                "usage": usage_json(&self.usage, self.reasoning_tokens),
            });
            out.push(c.to_string());
        }
        out.push("[DONE]".to_string());
        Ok(out)
    }

    /// Usage as last reported (Gemini's counts are cumulative per chunk).
    pub fn usage(&self) -> Usage {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_gemini(req: Value) -> Value {
        openai_request_to_gemini(&req, &RequestOptions::default()).expect("translates")
    }

    fn to_gemini_err(req: Value) -> TranslateError {
        openai_request_to_gemini(&req, &RequestOptions::default()).expect_err("rejected")
    }

    fn parse_all(chunks: &[String]) -> Vec<Value> {
        chunks
            .iter()
            .filter(|c| c.as_str() != "[DONE]")
            .map(|c| serde_json::from_str(c).expect("chunk is JSON"))
            .collect()
    }

    // ----- requests -------------------------------------------------------

    #[test]
    fn system_and_developer_messages_anywhere_become_one_system_instruction() {
        let body = to_gemini(json!({
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Hi"},
                {"role": "developer", "content": [
                    {"type": "text", "text": "Answer in French."},
                    {"type": "text", "text": "Never use emoji."}
                ]},
                {"role": "user", "content": "How are you?"}
            ]
        }));
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "You are a terse assistant.\n\nAnswer in French.\n\nNever use emoji."}]})
        );
        // The two user messages around the hoisted developer message merge.
        assert_eq!(
            body["contents"],
            json!([{"role": "user", "parts": [{"text": "Hi"}, {"text": "How are you?"}]}])
        );
        assert!(body.get("model").is_none(), "the model goes in the URL");
    }

    #[test]
    fn roles_map_to_user_and_model_and_same_role_turns_merge() {
        let body = to_gemini(json!({
            "messages": [
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."},
                {"role": "assistant", "content": [{"type": "text", "text": "Or green."}]},
                {"role": "user", "content": [{"type": "text", "text": "Another?"}]}
            ]
        }));
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Name a colour."}]},
                {"role": "model", "parts": [{"text": "Blue."}, {"text": "Or green."}]},
                {"role": "user", "parts": [{"text": "Another?"}]}
            ])
        );
        assert!(body.get("systemInstruction").is_none());
    }

    #[test]
    fn empty_history_is_rejected() {
        let e = to_gemini_err(json!({"messages": [{"role": "system", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = to_gemini_err(json!({"messages": [{"role": "wizard", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    }

    #[test]
    fn images_as_data_urls_and_http_urls() {
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Compare these."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/photos/cat.WEBP?size=large#top"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/render?id=7"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
            ]}]
        }));
        assert_eq!(
            body["contents"][0]["parts"],
            json!([
                {"text": "Compare these."},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/photos/cat.WEBP?size=large#top"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/render?id=7"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}
            ])
        );
    }

    #[test]
    fn unsupported_parts_are_rejected_with_their_path() {
        let e = to_gemini_err(json!({
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "first"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}}
                ]}
            ]
        }));
        assert_eq!(e.param.as_deref(), Some("messages[2].content[1]"));

        let e = to_gemini_err(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://host/a.png"}}
        ]}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0]"));

        let e = to_gemini_err(json!({"messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_id": "file-abc"}}
        ]}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0]"));

        let e = to_gemini_err(json!({"messages": [{"role": "system", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/a.png"}}
        ]}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0]"));
    }

    #[test]
    fn generation_config_maps_sampling_fields() {
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 100,
            "max_completion_tokens": 256,
            "temperature": 0.7,
            "top_p": 0.95,
            "stop": ["\n\n", "END"],
            "n": 2,
            "seed": 42,
            "presence_penalty": 0.5,
            "frequency_penalty": -0.25,
            "response_format": {"type": "json_object"},
            "user": "ignored",
            "stream_options": {"include_usage": true}
        }));
        assert_eq!(
            body["generationConfig"],
            json!({
                "maxOutputTokens": 256,
                "temperature": 0.7,
                "topP": 0.95,
                "presencePenalty": 0.5,
                "frequencyPenalty": -0.25,
                "seed": 42,
                "candidateCount": 2,
                "stopSequences": ["\n\n", "END"],
                "responseMimeType": "application/json"
            })
        );
        let body =
            to_gemini(json!({"messages": [{"role": "user", "content": "hi"}], "stop": "###"}));
        assert_eq!(body["generationConfig"]["stopSequences"], json!(["###"]));

        let e = to_gemini_err(
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}),
        );
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = to_gemini_err(
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}),
        );
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn default_max_tokens_applies_only_when_the_client_gave_none() {
        let opts = RequestOptions {
            default_max_tokens: Some(4096),
        };
        let req = json!({"messages": [{"role": "user", "content": "hi"}]});
        let body = openai_request_to_gemini(&req, &opts).unwrap();
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 4096);
        let req = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10});
        let body = openai_request_to_gemini(&req, &opts).unwrap();
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 10);
        let req = json!({"messages": [{"role": "user", "content": "hi"}]});
        let body = openai_request_to_gemini(&req, &RequestOptions::default()).unwrap();
        assert!(body.get("generationConfig").is_none());
    }

    #[test]
    fn json_schema_response_format_sets_a_cleaned_response_schema() {
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "Extract the event."}],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "calendar_event",
                "strict": true,
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "date": {"type": "string", "format": "date-time"},
                        "participants": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["name", "date", "participants"],
                    "additionalProperties": false
                }
            }}
        }));
        assert_eq!(
            body["generationConfig"],
            json!({
                "responseMimeType": "application/json",
                "responseSchema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "date": {"type": "string", "format": "date-time"},
                        "participants": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["name", "date", "participants"]
                }
            })
        );
    }

    #[test]
    fn reasoning_effort_sets_a_thinking_budget_without_thought_text() {
        for (effort, budget) in [
            ("none", 0),
            ("minimal", 512),
            ("low", 1024),
            ("medium", 8192),
            ("high", 24576),
        ] {
            let body = to_gemini(json!({
                "messages": [{"role": "user", "content": "hi"}],
                "reasoning_effort": effort
            }));
            assert_eq!(
                body["generationConfig"]["thinkingConfig"],
                json!({"thinkingBudget": budget, "includeThoughts": false}),
                "{effort}"
            );
        }
        let e = to_gemini_err(
            json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "max"}),
        );
        assert_eq!(e.param.as_deref(), Some("reasoning_effort"));
    }

    #[test]
    fn thought_summaries_are_opt_in() {
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "reasoning_effort": "low",
            "include_reasoning": true
        }));
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        // Google's own extension, as its OpenAI-compatible endpoint takes it.
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"google": {
                "thinking_config": {"thinking_level": "high", "include_thoughts": true},
                "cached_content": "cachedContents/abc123"
            }}
        }));
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"includeThoughts": true, "thinkingLevel": "high"})
        );
        assert_eq!(body["cachedContent"], "cachedContents/abc123");
    }

    fn weather_tools() -> Value {
        json!([
            {"type": "function", "function": {
                "name": "get_weather",
                "description": "Get the current weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "City name"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                    },
                    "required": ["city"]
                }
            }},
            {"type": "function", "function": {
                "name": "get_time",
                "description": "Current time in a timezone.",
                "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}
            }}
        ])
    }

    #[test]
    fn tools_become_function_declarations() {
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": weather_tools()
        }));
        assert_eq!(
            body["tools"],
            json!([{"functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Get the current weather in a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "description": "City name"},
                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                        },
                        "required": ["city"]
                    }
                },
                {
                    "name": "get_time",
                    "description": "Current time in a timezone.",
                    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}
                }
            ]}])
        );
        assert!(
            body.get("toolConfig").is_none(),
            "no tool_choice: Gemini's default AUTO"
        );
    }

    #[test]
    fn tool_choice_maps_to_function_calling_modes() {
        let cases = [
            (json!("auto"), json!({"mode": "AUTO"})),
            (json!("none"), json!({"mode": "NONE"})),
            (json!("required"), json!({"mode": "ANY"})),
            (
                json!({"type": "function", "function": {"name": "get_time"}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
            ),
            (
                json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
                    {"type": "function", "function": {"name": "get_weather"}}
                ]}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
            ),
        ];
        for (choice, expected) in cases {
            let body = to_gemini(json!({
                "messages": [{"role": "user", "content": "hi"}],
                "tools": weather_tools(),
                "tool_choice": choice
            }));
            assert_eq!(
                body["toolConfig"],
                json!({"functionCallingConfig": expected})
            );
        }
        // allowed_tools in auto mode narrows the declarations instead.
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": weather_tools(),
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
                {"type": "function", "function": {"name": "get_time"}}
            ]}}
        }));
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "AUTO"}})
        );
        assert_eq!(
            body["tools"][0]["functionDeclarations"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "get_time"
        );

        let e = to_gemini_err(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": weather_tools(),
            "tool_choice": {"type": "function", "function": {"name": "launch_rockets"}}
        }));
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        let e = to_gemini_err(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search_preview"}]
        }));
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
    }

    #[test]
    fn parameterless_function_is_declared_without_parameters() {
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "list"}],
            "tools": [
                {"type": "function", "function": {"name": "list_files", "parameters": {"type": "object", "properties": {}, "required": []}}},
                {"type": "function", "function": {"name": "ping"}},
                {"type": "function", "function": {"name": "set_env", "parameters": {
                    "type": "object", "additionalProperties": {"type": "string"}
                }}}
            ]
        }));
        assert_eq!(
            body["tools"][0]["functionDeclarations"],
            json!([{"name": "list_files"}, {"name": "ping"}, {"name": "set_env"}])
        );
    }

    /// A tool schema as a coding agent's pydantic/zod models produce it.
    #[test]
    fn coding_agent_schema_is_cleaned_for_gemini() {
        let params = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "EditFilesInput",
            "type": "object",
            "additionalProperties": false,
            "$defs": {
                "Edit": {
                    "type": "object",
                    "title": "Edit",
                    "additionalProperties": false,
                    "properties": {
                        "old_string": {"type": "string", "description": "Exact text to replace", "minLength": 1},
                        "new_string": {"type": "string"},
                        "replace_all": {"type": "boolean", "default": false}
                    },
                    "required": ["old_string", "new_string"]
                },
                "Mode": {"type": "string", "enum": ["apply", "dry_run"], "description": "How to apply"}
            },
            "properties": {
                "path": {"type": "string", "format": "uri", "examples": ["src/main.rs"]},
                "edits": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/Edit"}
                },
                "mode": {"$ref": "#/$defs/Mode", "default": "apply"},
                "encoding": {"type": ["string", "null"], "default": null},
                "kind": {"const": "edit"},
                "timeout_ms": {
                    "anyOf": [{"type": "integer", "minimum": 0, "exclusiveMaximum": 600000}, {"type": "null"}],
                    "description": "Optional timeout"
                },
                "options": {
                    "type": "object",
                    "properties": {},
                    "additionalProperties": {"type": "string"}
                },
                "tags": {"type": "array"}
            },
            "required": ["path", "edits", "ghost_field"]
        });
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "fix it"}],
            "tools": [{"type": "function", "function": {"name": "edit_files", "parameters": params, "strict": true}}]
        }));
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["parameters"],
            json!({
                "title": "EditFilesInput",
                "type": "object",
                "properties": {
                    "path": {"type": "string", "format": "uri"},
                    "edits": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "title": "Edit",
                            "properties": {
                                "old_string": {"type": "string", "description": "Exact text to replace", "minLength": 1},
                                "new_string": {"type": "string"},
                                "replace_all": {"type": "boolean"}
                            },
                            "required": ["old_string", "new_string"]
                        }
                    },
                    "mode": {"type": "string", "description": "How to apply", "enum": ["apply", "dry_run"]},
                    "encoding": {"nullable": true, "type": "string"},
                    "kind": {"type": "string", "enum": ["edit"]},
                    "timeout_ms": {"type": "integer", "minimum": 0, "nullable": true, "description": "Optional timeout"},
                    "options": {"type": "object"},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["path", "edits"]
            })
        );
    }

    #[test]
    fn recursive_refs_stop_at_the_referenced_type() {
        let schema = json!({
            "type": "object",
            "definitions": {
                "Node": {
                    "type": "object",
                    "description": "A tree node",
                    "properties": {
                        "name": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}
                    }
                }
            },
            "properties": {
                "root": {"$ref": "#/definitions/Node"},
                "missing": {"$ref": "#/definitions/Nope", "description": "dangling"},
                "self": {"$ref": "#"}
            }
        });
        assert_eq!(
            clean_schema(&schema),
            json!({
                "type": "object",
                "properties": {
                    "root": {
                        "type": "object",
                        "description": "A tree node",
                        "properties": {
                            "name": {"type": "string"},
                            "children": {"type": "array", "items": {"type": "object", "description": "A tree node"}}
                        }
                    },
                    "missing": {"description": "dangling", "type": "string"},
                    "self": {"type": "object"}
                }
            })
        );
    }

    #[test]
    fn unions_and_enums_are_reduced_to_what_gemini_accepts() {
        let schema = json!({
            "type": "object",
            "properties": {
                "id": {"type": ["string", "integer"], "description": "Name or number", "minLength": 1, "minimum": 1},
                "level": {"type": "integer", "enum": [1, 2, 3], "description": "Log level."},
                "flag": {"enum": ["on", "off", null]},
                "target": {"oneOf": [
                    {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"]},
                    {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
                ]},
                "merged": {"allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "number"}}, "required": ["b"]}
                ]},
                "nothing": {"type": "null"},
                "free": true
            }
        });
        assert_eq!(
            clean_schema(&schema)["properties"],
            json!({
                "id": {
                    "description": "Name or number",
                    "anyOf": [{"minLength": 1, "type": "string"}, {"minimum": 1, "type": "integer"}]
                },
                "level": {"type": "integer", "description": "Log level. Allowed values: 1, 2, 3."},
                "flag": {"nullable": true, "type": "string", "enum": ["on", "off"]},
                "target": {"anyOf": [
                    {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"]},
                    {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
                ]},
                "merged": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}, "b": {"type": "number"}},
                    "required": ["a", "b"]
                },
                "nothing": {"nullable": true, "type": "string"},
                "free": {"type": "string"}
            })
        );
    }

    #[test]
    fn root_union_parameters_become_one_object() {
        let body = to_gemini(json!({
            "messages": [{"role": "user", "content": "go"}],
            "tools": [{"type": "function", "function": {"name": "open", "parameters": {
                "anyOf": [
                    {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}, "required": ["path", "line"]},
                    {"type": "object", "properties": {"path": {"type": "string"}, "url": {"type": "string"}}, "required": ["path"]}
                ]
            }}}]
        }));
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["parameters"],
            json!({
                "properties": {"path": {"type": "string"}, "line": {"type": "integer"}, "url": {"type": "string"}},
                "required": ["path"],
                "type": "object"
            })
        );
    }

    #[test]
    fn schema_cleaning_survives_ref_fan_out() {
        // Each level references the next twice: 2^30 expansions unbounded.
        let mut defs = Map::new();
        for i in 0..30 {
            defs.insert(
                format!("L{i}"),
                json!({"type": "object", "properties": {
                    "a": {"$ref": format!("#/$defs/L{}", i + 1)},
                    "b": {"$ref": format!("#/$defs/L{}", i + 1)}
                }}),
            );
        }
        defs.insert("L30".into(), json!({"type": "string"}));
        let schema =
            json!({"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/L0"}}});
        let cleaned = clean_schema(&schema);
        assert_eq!(cleaned["properties"]["x"]["type"], "object");
    }

    /// The Gemini 2.5/3 function-calling flow from Google's docs: the model
    /// calls two functions in parallel (signature on the first), the client
    /// runs them and sends the results back with the assistant turn intact.
    #[test]
    fn multi_turn_tools_with_thought_signatures_round_trip() {
        let gemini_turn = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "Checking both cities.", "thought": true},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7sigA=="},
                    {"functionCall": {"name": "get_weather", "args": {"city": "London", "unit": "celsius"}}}
                ]},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 30, "thoughtsTokenCount": 120, "totalTokenCount": 220},
            "modelVersion": "gemini-3-pro-preview",
            "responseId": "mCr1aP-gIqGOz7IPtcHJ6QM"
        });
        let (completion, usage) =
            gemini_response_to_openai(&gemini_turn, "gemini-3-pro-preview").unwrap();
        assert_eq!(completion["id"], "chatcmpl-mCr1aP-gIqGOz7IPtcHJ6QM");
        assert_eq!(completion["model"], "gemini-3-pro-preview");
        let choice = &completion["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        let msg = &choice["message"];
        assert_eq!(msg["content"], Value::Null);
        assert_eq!(msg["reasoning_content"], "Checking both cities.");
        let calls = msg["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(calls[0]["function"]["arguments"], r#"{"city":"Paris"}"#);
        assert_eq!(
            calls[0]["extra_content"],
            json!({"google": {"thought_signature": "CiQB0e2Kb7sigA=="}})
        );
        assert!(calls[1].get("extra_content").is_none());
        let id0 = calls[0]["id"].as_str().unwrap().to_string();
        let id1 = calls[1]["id"].as_str().unwrap().to_string();
        assert!(id0.starts_with("call_0_get_weather"), "{id0}");
        assert!(id1.starts_with("call_1_get_weather"), "{id1}");
        assert_eq!(usage.completion_tokens, 150);

        // The client appends the assistant message as received, plus results.
        let next = to_gemini(json!({
            "model": "gemini-3-pro-preview",
            "messages": [
                {"role": "user", "content": "Weather in Paris and London?"},
                msg.clone(),
                {"role": "tool", "tool_call_id": id0, "content": "{\"temp_c\": 18, \"sky\": \"cloudy\"}"},
                {"role": "tool", "tool_call_id": id1, "content": [{"type": "text", "text": "12C and raining"}]},
                {"role": "user", "content": "Which is warmer?"}
            ],
            "tools": weather_tools()
        }));
        assert_eq!(
            next["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris and London?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7sigA=="},
                    {"functionCall": {"name": "get_weather", "args": {"city": "London", "unit": "celsius"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18, "sky": "cloudy"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"content": "12C and raining"}}},
                    {"text": "Which is warmer?"}
                ]}
            ])
        );
    }

    #[test]
    fn text_part_signature_round_trips_on_the_message() {
        let resp = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Hello"},
                {"text": " there.", "thoughtSignature": "c2lnLXRleHQ="}
            ]}, "finishReason": "STOP"}],
            "responseId": "r1"
        });
        let (completion, _) = gemini_response_to_openai(&resp, "gemini-3-pro-preview").unwrap();
        let msg = completion["choices"][0]["message"].clone();
        assert_eq!(msg["content"], "Hello there.");
        assert_eq!(
            msg["extra_content"]["google"]["thought_signature"],
            "c2lnLXRleHQ="
        );
        let next = to_gemini(json!({"messages": [
            {"role": "user", "content": "hi"}, msg, {"role": "user", "content": "and?"}
        ]}));
        assert_eq!(
            next["contents"][1],
            json!({"role": "model", "parts": [{"text": "Hello there.", "thoughtSignature": "c2lnLXRleHQ="}]})
        );
    }

    #[test]
    fn tool_result_needs_a_known_call_id() {
        let e = to_gemini_err(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_b", "content": "x"}
        ]}));
        assert_eq!(e.param.as_deref(), Some("messages[2].tool_call_id"));

        let e = to_gemini_err(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}
        ]}));
        assert_eq!(
            e.param.as_deref(),
            Some("messages[1].tool_calls[0].function.arguments")
        );
    }

    #[test]
    fn non_object_tool_results_are_wrapped() {
        let body = to_gemini(json!({"messages": [
            {"role": "user", "content": "count"},
            {"role": "assistant", "content": "Counting.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "count", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "[1, 2, 3]"}
        ]}));
        assert_eq!(
            body["contents"][1],
            json!({"role": "model", "parts": [
                {"text": "Counting."},
                {"functionCall": {"name": "count", "args": {}}}
            ]})
        );
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"]["response"],
            json!({"content": "[1, 2, 3]"})
        );
    }

    #[test]
    fn fill_missing_thought_signatures_marks_the_first_call_of_unsigned_turns() {
        let mut body = to_gemini(json!({"messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"},
            {"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"},
                 "extra_content": {"google": {"thought_signature": "real"}}}
            ]},
            {"role": "tool", "tool_call_id": "c", "content": "3"}
        ]}));
        fill_missing_thought_signatures(&mut body);
        let c = &body["contents"];
        assert_eq!(
            c[1]["parts"][0]["thoughtSignature"],
            "skip_thought_signature_validator"
        );
        assert!(c[1]["parts"][1].get("thoughtSignature").is_none());
        assert_eq!(c[3]["parts"][0]["thoughtSignature"], "real");
    }

    // ----- responses ------------------------------------------------------

    #[test]
    fn text_response_becomes_a_chat_completion_with_usage() {
        let resp = json!({
            "candidates": [{
                "content": {"parts": [{"text": "AI learns patterns "}, {"text": "from data."}], "role": "model"},
                "finishReason": "STOP",
                "avgLogprobs": -0.12,
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}],
                "index": 0
            }],
            "usageMetadata": {
                "promptTokenCount": 8,
                "candidatesTokenCount": 12,
                "thoughtsTokenCount": 30,
                "cachedContentTokenCount": 4,
                "totalTokenCount": 50,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "Aw5eaLjrHMWf1dkPkdXP4Ak"
        });
        let (c, usage) = gemini_response_to_openai(&resp, "gemini-2.5-flash").unwrap();
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 8,
                completion_tokens: 42,
                total_tokens: 50,
                cached_tokens: 4,
                ..Default::default()
            }
        );
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["id"], "chatcmpl-Aw5eaLjrHMWf1dkPkdXP4Ak");
        assert!(c["created"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(
            c["choices"],
            json!([{
                "index": 0,
                "message": {"role": "assistant", "content": "AI learns patterns from data."},
                "logprobs": null,
                "finish_reason": "stop"
            }])
        );
        assert_eq!(
            c["usage"],
            json!({
                "prompt_tokens": 8,
                "completion_tokens": 42,
                "total_tokens": 50,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 30}
            })
        );
    }

    #[test]
    fn gemini_function_call_ids_are_used_when_present() {
        let resp = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"id": "fc_7f3a", "name": "get_time", "args": {"tz": "UTC"}}},
            {"functionCall": {"name": "ping"}}
        ]}, "finishReason": "STOP"}]});
        let (c, _) = gemini_response_to_openai(&resp, "m").unwrap();
        let calls = &c["choices"][0]["message"]["tool_calls"];
        assert_eq!(calls[0]["id"], "fc_7f3a");
        // No responseId: the plain deterministic form.
        assert_eq!(calls[1]["id"], "call_1_ping");
        assert_eq!(calls[1]["function"]["arguments"], "{}");
        assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }

    #[test]
    fn synthesized_call_ids_differ_between_responses() {
        let turn = |rid: &str| json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}, "finishReason": "STOP"}], "responseId": rid});
        let (a, _) = gemini_response_to_openai(&turn("one"), "m").unwrap();
        let (b, _) = gemini_response_to_openai(&turn("two"), "m").unwrap();
        let (a2, _) = gemini_response_to_openai(&turn("one"), "m").unwrap();
        let id = |v: &Value| v["choices"][0]["message"]["tool_calls"][0]["id"].clone();
        assert_ne!(id(&a), id(&b));
        assert_eq!(id(&a), id(&a2), "deterministic for the same response");
    }

    #[test]
    fn finish_reasons_map_to_openai() {
        let cases = [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("IMAGE_SAFETY", "content_filter"),
            ("OTHER", "stop"),
            ("SOMETHING_NEW", "stop"),
        ];
        for (gemini, openai) in cases {
            let resp = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": gemini}]});
            let (c, _) = gemini_response_to_openai(&resp, "m").unwrap();
            assert_eq!(c["choices"][0]["finish_reason"], openai, "{gemini}");
        }
    }

    #[test]
    fn safety_stop_without_content_is_a_content_filter_answer() {
        let resp = json!({
            "candidates": [{
                "finishReason": "SAFETY",
                "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]
            }],
            "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}
        });
        let (c, usage) = gemini_response_to_openai(&resp, "m").unwrap();
        assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(c["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(usage.prompt_tokens, 12);
        assert_eq!(usage.completion_tokens, 0);
    }

    #[test]
    fn blocked_prompt_is_a_content_filter_answer() {
        let resp = json!({
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}]
            },
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.5-flash"
        });
        let (c, usage) = gemini_response_to_openai(&resp, "gemini-2.5-flash").unwrap();
        let choice = &c["choices"][0];
        assert_eq!(choice["finish_reason"], "content_filter");
        assert_eq!(choice["message"]["content"], Value::Null);
        assert!(choice["message"]["refusal"]
            .as_str()
            .unwrap()
            .contains("SAFETY"));
        assert_eq!(usage.prompt_tokens, 9);

        let e = gemini_response_to_openai(&json!({"candidates": []}), "m").unwrap_err();
        assert!(e.message.contains("no candidates"));
    }

    #[test]
    fn malformed_function_call_is_an_error() {
        let resp = json!({"candidates": [{
            "finishReason": "MALFORMED_FUNCTION_CALL",
            "finishMessage": "Malformed function call: print(default_api.get_weather(city=Paris",
            "index": 0
        }]});
        let e = gemini_response_to_openai(&resp, "m").unwrap_err();
        assert!(e.message.contains("MALFORMED_FUNCTION_CALL"), "{e}");
        assert!(e.message.contains("Malformed function call"), "{e}");
    }

    #[test]
    fn multiple_candidates_become_choices() {
        let resp = json!({"candidates": [
            {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1}
        ]});
        let (c, _) = gemini_response_to_openai(&resp, "m").unwrap();
        assert_eq!(c["choices"][1]["index"], 1);
        assert_eq!(c["choices"][1]["message"]["content"], "B");
        assert_eq!(c["choices"][1]["finish_reason"], "length");
    }

    #[test]
    fn error_object_in_a_response_body_is_an_error() {
        let e = gemini_response_to_openai(
            &json!({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}),
            "m",
        )
        .unwrap_err();
        assert!(e.message.contains("Internal error encountered."));
    }

    #[test]
    fn unknown_parts_and_fields_are_ignored() {
        let resp = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                    {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
                    {"text": "The answer is 1."},
                    {"someFuturePart": {"x": 1}}
                ]},
                "finishReason": "STOP",
                "citationMetadata": {"citationSources": []},
                "groundingMetadata": {"webSearchQueries": ["q"]},
                "newCandidateField": true
            }],
            "usageMetadata": {"promptTokenCount": "not a number", "totalTokenCount": 5},
            "anotherTopLevelField": [1, 2]
        });
        let (c, usage) = gemini_response_to_openai(&resp, "m").unwrap();
        assert_eq!(c["choices"][0]["message"]["content"], "The answer is 1.");
        assert_eq!(usage.prompt_tokens, 0);
        assert_eq!(usage.total_tokens, 5);
    }

    #[test]
    fn legacy_functions_and_tool_choice_without_tools() {
        let body = to_gemini(json!({
            "messages": [
                {"role": "user", "content": "time?"},
                {"role": "assistant", "content": null, "function_call": {"name": "get_time", "arguments": "{\"tz\":\"UTC\"}"}},
                {"role": "function", "name": "get_time", "content": "12:00"}
            ],
            "functions": [{"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}],
            "function_call": {"name": "get_time"}
        }));
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "get_time"
        );
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}})
        );
        assert_eq!(
            body["contents"][1]["parts"][0]["functionCall"]["args"],
            json!({"tz": "UTC"})
        );
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"],
            json!({"name": "get_time", "response": {"content": "12:00"}})
        );

        let body = to_gemini(
            json!({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto", "tools": []}),
        );
        assert!(body.get("tools").is_none());
        assert!(body.get("toolConfig").is_none());
    }

    // ----- errors ---------------------------------------------------------

    #[test]
    fn error_statuses_map_to_openai_types() {
        let cases = [
            (400, "INVALID_ARGUMENT", 400, "invalid_request_error"),
            (400, "FAILED_PRECONDITION", 400, "invalid_request_error"),
            (401, "UNAUTHENTICATED", 401, "authentication_error"),
            (403, "PERMISSION_DENIED", 403, "permission_error"),
            (404, "NOT_FOUND", 404, "not_found_error"),
            (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_exceeded"),
            (500, "INTERNAL", 500, "server_error"),
            (503, "UNAVAILABLE", 503, "server_error"),
            (504, "DEADLINE_EXCEEDED", 504, "server_error"),
        ];
        for (http, status, want, kind) in cases {
            let body = json!({"error": {"code": http, "message": format!("{status} happened"), "status": status}});
            let (s, v) = gemini_error_to_openai(http, body.to_string().as_bytes());
            assert_eq!(s, want, "{status}");
            assert_eq!(
                v,
                json!({"error": {"message": format!("{status} happened"), "type": kind, "param": null, "code": status}})
            );
        }
    }

    #[test]
    fn invalid_api_key_is_an_authentication_error() {
        let body = br#"{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"}
      },
      {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": "API key not valid. Please pass a valid API key."
      }
    ]
  }
}"#;
        let (s, v) = gemini_error_to_openai(400, body);
        assert_eq!(s, 401);
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["code"], "API_KEY_INVALID");
        assert_eq!(
            v["error"]["message"],
            "API key not valid. Please pass a valid API key."
        );
    }

    #[test]
    fn quota_errors_and_odd_bodies() {
        let body = br#"[{"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}]"#;
        let (s, v) = gemini_error_to_openai(429, body);
        assert_eq!(s, 429);
        assert_eq!(v["error"]["type"], "rate_limit_exceeded");
        assert_eq!(v["error"]["code"], "RESOURCE_EXHAUSTED");

        let (s, v) = gemini_error_to_openai(502, b"<html>Bad Gateway</html>");
        assert_eq!(s, 502);
        assert_eq!(v["error"]["type"], "server_error");
        assert_eq!(v["error"]["code"], Value::Null);
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bad Gateway"));

        let (s, v) = gemini_error_to_openai(200, b"");
        assert_eq!(s, 502);
        assert_eq!(v["error"]["message"], "Gemini returned HTTP 200");
    }

    // ----- streaming ------------------------------------------------------

    #[test]
    fn stream_of_a_text_answer_in_three_chunks_with_usage() {
        let events = [
            r#"{"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8},"modelVersion": "gemini-2.5-flash","responseId": "Aw5eaLjrHMWf1dkPkdXP4Ak"}"#,
            r#"{"candidates": [{"content": {"parts": [{"text": " sky is blue because of Rayleigh"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8},"modelVersion": "gemini-2.5-flash","responseId": "Aw5eaLjrHMWf1dkPkdXP4Ak"}"#,
            r#"{"candidates": [{"content": {"parts": [{"text": " scattering."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 11,"thoughtsTokenCount": 5,"totalTokenCount": 24},"modelVersion": "gemini-2.5-flash","responseId": "Aw5eaLjrHMWf1dkPkdXP4Ak"}"#,
        ];
        let mut s = GeminiToOpenAiStream::new("gemini-2.5-flash", true);
        let mut out = Vec::new();
        for e in events {
            out.extend(s.push(e).unwrap());
        }
        out.extend(s.finish(true).unwrap());
        assert_eq!(out.last().map(String::as_str), Some("[DONE]"));
        let chunks = parse_all(&out);
        assert_eq!(chunks.len(), 5, "3 content + finish + usage");
        for c in &chunks {
            assert_eq!(c["id"], "chatcmpl-Aw5eaLjrHMWf1dkPkdXP4Ak");
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "gemini-2.5-flash");
            assert!(c["created"].is_u64());
        }
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "The"})
        );
        assert_eq!(chunks[0]["usage"], Value::Null);
        assert_eq!(
            chunks[1]["choices"][0]["delta"],
            json!({"content": " sky is blue because of Rayleigh"})
        );
        assert_eq!(
            chunks[2]["choices"][0]["delta"],
            json!({"content": " scattering."})
        );
        assert_eq!(chunks[2]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(chunks[3]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(
            chunks[4]["usage"],
            json!({
                "prompt_tokens": 8,
                "completion_tokens": 16,
                "total_tokens": 24,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 5}
            })
        );
        assert_eq!(
            s.usage(),
            Usage {
                prompt_tokens: 8,
                completion_tokens: 16,
                total_tokens: 24,
                cached_tokens: 0,
                ..Default::default()
            }
        );
        // Finishing twice does not emit a second [DONE].
        assert!(s.finish(true).unwrap().is_empty());
    }

    #[test]
    fn stream_without_include_usage_has_no_usage_chunk() {
        let mut s = GeminiToOpenAiStream::new("m", false);
        let out = s
            .push(r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1,"totalTokenCount":3}}"#)
            .unwrap();
        let chunks = parse_all(&out);
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        let end = s.finish(true).unwrap();
        assert_eq!(end, vec!["[DONE]".to_string()]);
        assert_eq!(s.usage().total_tokens, 3);
        // Generated once, shared by every chunk.
        let id = chunks[0]["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-") && id.len() > 12);
        assert_eq!(chunks[1]["id"], chunks[0]["id"]);
    }

    #[test]
    fn stream_with_a_function_call_chunk() {
        let events = [
            r#"{"candidates":[{"content":{"parts":[{"text":"Let me check."}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":40,"totalTokenCount":40},"modelVersion":"gemini-3-pro-preview","responseId":"t0o1aZ2cAqKz"}"#,
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Tokyo"}},"thoughtSignature":"EpcCCpQCAdHtim9"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":40,"totalTokenCount":40},"modelVersion":"gemini-3-pro-preview","responseId":"t0o1aZ2cAqKz"}"#,
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_time","args":{"tz":"Asia/Tokyo"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":40,"candidatesTokenCount":25,"thoughtsTokenCount":60,"totalTokenCount":125},"modelVersion":"gemini-3-pro-preview","responseId":"t0o1aZ2cAqKz"}"#,
        ];
        let mut s = GeminiToOpenAiStream::new("gemini-3-pro-preview", false);
        let mut out = Vec::new();
        for e in events {
            out.extend(s.push(e).unwrap());
        }
        out.extend(s.finish(true).unwrap());
        let chunks = parse_all(&out);
        assert_eq!(chunks.len(), 4);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Let me check."})
        );

        let call = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], 0);
        assert_eq!(call["type"], "function");
        assert_eq!(
            call["function"],
            json!({"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"})
        );
        assert_eq!(
            call["extra_content"]["google"]["thought_signature"],
            "EpcCCpQCAdHtim9"
        );
        assert!(call["id"]
            .as_str()
            .unwrap()
            .starts_with("call_0_get_weather"));
        assert!(chunks[1]["choices"][0]["delta"].get("role").is_none());

        let call = &chunks[2]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], 1, "index runs across the stream");
        assert!(call["id"].as_str().unwrap().starts_with("call_1_get_time"));
        assert!(call.get("extra_content").is_none());

        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out.last().map(String::as_str), Some("[DONE]"));
        assert_eq!(s.usage().completion_tokens, 85);

        // The streamed calls, accumulated by a client, replay into Gemini.
        let assistant = json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
            chunks[1]["choices"][0]["delta"]["tool_calls"][0].clone(),
            chunks[2]["choices"][0]["delta"]["tool_calls"][0].clone()
        ]});
        let body =
            to_gemini(json!({"messages": [{"role": "user", "content": "Tokyo?"}, assistant]}));
        assert_eq!(
            body["contents"][1]["parts"][1]["thoughtSignature"],
            "EpcCCpQCAdHtim9"
        );
    }

    #[test]
    fn stream_thoughts_go_to_reasoning_content() {
        let mut s = GeminiToOpenAiStream::new("m", false);
        let out = s
            .push(r#"{"candidates":[{"content":{"parts":[{"text":"**Planning** the answer","thought":true}],"role":"model"}}],"responseId":"x"}"#)
            .unwrap();
        let c = parse_all(&out);
        assert_eq!(
            c[0]["choices"][0]["delta"],
            json!({"role": "assistant", "reasoning_content": "**Planning** the answer"})
        );
        let out = s
            .push(r#"{"candidates":[{"content":{"parts":[{"text":"42","thoughtSignature":"c2ln"}],"role":"model"},"finishReason":"STOP"}],"responseId":"x"}"#)
            .unwrap();
        let c = parse_all(&out);
        assert_eq!(
            c[0]["choices"][0]["delta"],
            json!({"content": "42", "extra_content": {"google": {"thought_signature": "c2ln"}}})
        );
        assert_eq!(c[1]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn truncated_stream_is_a_finish_error() {
        let mut s = GeminiToOpenAiStream::new("m", true);
        s.push(r#"{"candidates":[{"content":{"parts":[{"text":"Once upon"}],"role":"model"}}],"responseId":"r"}"#)
            .unwrap();
        // Connection closed cleanly, but Gemini never said it was done.
        let e = s.finish(true).unwrap_err();
        assert!(e.message.contains("finishReason"), "{e}");

        let mut s = GeminiToOpenAiStream::new("m", true);
        s.push(r#"{"candidates":[{"content":{"parts":[{"text":"Done."}],"role":"model"},"finishReason":"STOP"}]}"#)
            .unwrap();
        let e = s.finish(false).unwrap_err();
        assert!(e.message.contains("cut off"), "{e}");

        let mut s = GeminiToOpenAiStream::new("m", false);
        assert!(s.finish(true).is_err(), "an empty stream is truncated too");
    }

    #[test]
    fn stream_safety_block() {
        // A blocked prompt: one event, no candidates, then the stream ends.
        let mut s = GeminiToOpenAiStream::new("gemini-2.5-flash", true);
        let out = s
            .push(r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":15,"totalTokenCount":15},"modelVersion":"gemini-2.5-flash","responseId":"blk1"}"#)
            .unwrap();
        let c = parse_all(&out);
        assert_eq!(c[0]["choices"][0]["delta"]["role"], "assistant");
        assert!(c[0]["choices"][0]["delta"]["refusal"]
            .as_str()
            .unwrap()
            .contains("PROHIBITED_CONTENT"));
        assert_eq!(c[1]["choices"][0]["finish_reason"], "content_filter");
        let end = s.finish(true).unwrap();
        assert_eq!(end.len(), 2, "usage chunk and [DONE]");

        // A response stopped by the output filter mid-way.
        let mut s = GeminiToOpenAiStream::new("m", false);
        s.push(r#"{"candidates":[{"content":{"parts":[{"text":"Step one is"}],"role":"model"}}]}"#)
            .unwrap();
        let out = s
            .push(r#"{"candidates":[{"finishReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}]}"#)
            .unwrap();
        let c = parse_all(&out);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["choices"][0]["finish_reason"], "content_filter");
        assert!(s.finish(true).is_ok());
    }

    #[test]
    fn stream_errors_surface_as_translate_errors() {
        let mut s = GeminiToOpenAiStream::new("m", false);
        let e = s
            .push(r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#)
            .unwrap_err();
        assert!(e.message.contains("overloaded"));
        assert!(s.push("{not json").is_err());
        let e = s
            .push(r#"{"candidates":[{"finishReason":"MALFORMED_FUNCTION_CALL"}]}"#)
            .unwrap_err();
        assert!(e.message.contains("MALFORMED_FUNCTION_CALL"));
        // Keep-alive blanks are not events.
        assert!(s.push("  ").unwrap().is_empty());
    }

    #[test]
    fn stream_finish_only_chunk_carries_the_role() {
        let mut s = GeminiToOpenAiStream::new("m", false);
        let out = s
            .push(r#"{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"MAX_TOKENS"}]}"#)
            .unwrap();
        let c = parse_all(&out);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["choices"][0]["delta"], json!({"role": "assistant"}));
        assert_eq!(c[0]["choices"][0]["finish_reason"], "length");
    }
}

#[cfg(test)]
mod typed_stream_tests {
    use super::*;
    use crate::protocol::typed::gemini::tests::{random_response, Rng};

    /// Two translators for one stream: the fast paths on, and the `Value`
    /// path only (same `created`).
    fn fast_and_slow(
        model: &str,
        include_usage: bool,
    ) -> (GeminiToOpenAiStream, GeminiToOpenAiStream) {
        let fast = GeminiToOpenAiStream::new(model, include_usage);
        let mut slow = GeminiToOpenAiStream::new(model, include_usage);
        slow.value_only = true;
        slow.header.created = fast.header.created;
        (fast, slow)
    }

    /// A step's chunks (or error) with the stream's id replaced, so that
    /// two translators' generated ids compare equal.
    fn norm(
        r: Result<Vec<String>, TranslateError>,
        s: &GeminiToOpenAiStream,
    ) -> Result<Vec<String>, String> {
        let id = s.header.id.clone().unwrap_or_default();
        r.map(|v| {
            v.into_iter()
                .map(|c| {
                    if id.is_empty() {
                        c
                    } else {
                        c.replace(&id, "ID")
                    }
                })
                .collect()
        })
        .map_err(|e| e.to_string())
    }

    /// A text chunk as Gemini streams it (`spaced`: a space after each
    /// colon, as the real API writes; otherwise compact).
    fn wire_chunk(rng: &mut Rng, spaced: bool) -> String {
        let pick = |rng: &mut Rng, xs: &[&'static str]| {
            rng.0 = rng
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            xs[(rng.0 >> 33) as usize % xs.len()]
        };
        // JSON string contents, escapes included.
        let text = pick(
            rng,
            &[
                "",
                "The",
                " quick brown",
                r#"q\"uote"#,
                r#"back\\slash"#,
                "é 日本 🦀",
                r#"line\nbreak"#,
                r#"\u0041\u00e9"#,
            ],
        );
        let usage = pick(
            rng,
            &[
                r#"{"promptTokenCount":8,"totalTokenCount":8}"#,
                r#"{"promptTokenCount":8,"candidatesTokenCount":3,"totalTokenCount":11}"#,
                r#"{"promptTokenCount":8,"candidatesTokenCount":3,"totalTokenCount":20,"thoughtsTokenCount":9,"promptTokensDetails":[{"modality":"TEXT","tokenCount":8}]}"#,
                r#"{"promptTokenCount":8.0,"cachedContentTokenCount":4}"#,
                r#"{"promptTokenCount":null}"#,
                r#"{}"#,
            ],
        );
        let tail = pick(
            rng,
            &[
                r#","modelVersion":"gemini-2.5-flash","responseId":"mAitaL3yDs-DnvgP7cS2gQ0"}"#,
                r#","responseId":"r1"}"#,
                r#","modelVersion":"gemini-2.5-flash"}"#,
                r#","responseId":""}"#,
                "}",
            ],
        );
        let compact = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":"{text}"}}],"role":"model"}},"index":0}}],"usageMetadata":{usage}{tail}"#
        );
        if spaced {
            // Gemini's spelling: a space after every colon of the JSON
            // structure (the texts above hold no colon).
            compact.replace("\":", "\": ")
        } else {
            compact
        }
    }

    /// Gemini's exact text chunks go through `canonical_text_chunk`; the
    /// result must be the `Value` path's, mixed with other events.
    #[test]
    fn wire_form_text_chunks_match_the_value_path() {
        let mut rng = Rng(0x005e_ed0f_9e41_1111);
        let mut canonical = 0;
        for round in 0..800 {
            let mut events: Vec<String> = Vec::new();
            for i in 0..1 + rng.0 % 6 {
                rng.0 = rng.0.wrapping_mul(6364136223846793005).wrapping_add(1);
                events.push(match (rng.0 >> 40) % 5 {
                    0 => random_response(&mut rng).to_string(),
                    1 => wire_chunk(&mut rng, false),
                    _ => wire_chunk(&mut rng, i % 2 == 0),
                });
            }
            let (mut fast, mut slow) = fast_and_slow(["", "gemini-x"][round % 2], round % 3 == 0);
            for data in &events {
                canonical += usize::from(
                    crate::protocol::typed::gemini::canonical_text_chunk(data).is_some(),
                );
                let a = fast.push(data);
                let b = slow.push(data);
                assert_eq!(norm(a, &fast), norm(b, &slow), "event {data}");
                assert_eq!(fast.usage(), slow.usage(), "event {data}");
            }
            // The closing chunks carry the usage (reasoning tokens included).
            assert_eq!(
                norm(fast.finish(true), &fast),
                norm(slow.finish(true), &slow),
                "events {events:?}"
            );
        }
        assert!(canonical > 1000, "{canonical}");
    }

    /// The typed stream path against the `Value` one on generated streams:
    /// the same chunks (ids normalised), errors, finish and usage.
    #[test]
    fn typed_stream_path_matches_the_value_path() {
        let mut rng = Rng(0x0bad_5eed_1234_5678);
        let mut typed_events = 0;
        for round in 0..1500 {
            let mut events: Vec<String> = (0..1 + rng.0 % 5)
                .map(|i| {
                    let ev = random_response(&mut rng);
                    if i % 4 == 3 {
                        serde_json::to_string_pretty(&ev).unwrap_or_default()
                    } else {
                        ev.to_string()
                    }
                })
                .collect();
            // A tool call (the `Value` path's) amid typed events: its
            // synthesized id needs the salt the typed path set, and the
            // choice's later "STOP" becomes tool_calls.
            if round % 3 == 1 {
                let at = (rng.0 % (events.len() as u64 + 1)) as usize;
                let call = json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}, "index": 0}]});
                events.insert(at, call.to_string());
            }
            let (mut fast, mut slow) = fast_and_slow(["", "gemini-x"][round % 2], round % 3 == 0);
            for data in &events {
                typed_events +=
                    usize::from(crate::protocol::typed::gemini::parse(data.trim()).is_some());
                let a = fast.push(data);
                let b = slow.push(data);
                assert_eq!(norm(a, &fast), norm(b, &slow), "event {data}");
            }
            assert_eq!(
                norm(fast.finish(true), &fast),
                norm(slow.finish(true), &slow),
                "events {events:?}"
            );
            assert_eq!(fast.usage(), slow.usage(), "events {events:?}");
        }
        assert!(typed_events > 3000, "only {typed_events} typed events");
    }
}
