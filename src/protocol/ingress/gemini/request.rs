//! A Gemini `GenerateContentRequest` body decoded into the chat model. The
//! model and whether to stream come from the URL, not the body: the proxy
//! sets them (`Request::model`, `Request::stream`).
//!
//! The top level is read as raw fields, each read into its typed shape with
//! the shared wire types; field names are accepted in camelCase (what the
//! google-genai SDKs send) and snake_case (which Google's REST API also
//! takes). An error names the field at fault (`contents[1].parts[0]`).
//!
//! * Roles `user` and `model` (`function`, Gemini's old role for function
//!   responses, counts as user).
//! * Function calls keep their `id` when the client sent one, else get
//!   `call_<n>_<name>`; a `functionResponse` pairs with its `id`, else with
//!   the earliest unanswered call of that name (Gemini pairs by order and
//!   name).
//! * A thought part is reasoning; a signature on a non-thought part becomes
//!   an empty reasoning part right after it (the egress convention); thought
//!   parts that arrive split (as streamed) merge into one. Signatures of
//!   other vendors come back through this adapter's codec (see `encode`).
//! * `inlineData` / `fileData` are media (a Files API URI stays a Gemini
//!   file id; another http(s) URI is a URL).
//! * Function declarations' `parameters` (Google's OpenAPI subset, types
//!   written `OBJECT`, `STRING`) become JSON schema (types lower-cased);
//!   `parametersJsonSchema` is used as it is. Tools other than function
//!   declarations (`googleSearch`, `codeExecution`, ...) have no place in
//!   the model: kept only for Gemini vendors (pass-through), dropped with a
//!   debug line elsewhere.
//! * `safetySettings`, `cachedContent`, `labels` and unknown fields are
//!   Gemini extras: re-emitted to Gemini vendors only.
//! * `candidateCount` > 1 is refused (one candidate is translated).

use super::signature::{decode_signature, REDACTED};
use crate::protocol::chat::{
    is_http, ChatError, Effort, Family, Media, MediaKind, MediaSource, Part, ReasoningConfig,
    Request, ResponseFormat, Role, Str, Text, Tool, ToolCall, ToolChoice, ToolKind, ToolResult,
    Turn,
};
use crate::protocol::egress::gemini::wire::WirePart;
use crate::protocol::json::{get, marked as at, unmark, Entries, Object, Raw};
use serde::de::IgnoredAny;
use serde::de::MapAccess;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct WireContent<'a> {
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    parts: Vec<Raw<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    temperature: Option<f64>,
    #[serde(alias = "top_p")]
    top_p: Option<f64>,
    #[serde(alias = "top_k")]
    top_k: Option<f64>,
    #[serde(alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(borrow, default, alias = "stop_sequences")]
    stop_sequences: Vec<Cow<'a, str>>,
    #[serde(alias = "candidate_count")]
    candidate_count: Option<u64>,
    seed: Option<i64>,
    #[serde(alias = "presence_penalty")]
    presence_penalty: Option<f64>,
    #[serde(alias = "frequency_penalty")]
    frequency_penalty: Option<f64>,
    #[serde(borrow, alias = "response_mime_type")]
    response_mime_type: Option<Cow<'a, str>>,
    #[serde(borrow, alias = "response_schema")]
    response_schema: Option<Raw<'a>>,
    #[serde(borrow, alias = "response_json_schema")]
    response_json_schema: Option<Raw<'a>>,
    #[serde(borrow, alias = "thinking_config")]
    thinking_config: Option<ThinkingConfig<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig<'a> {
    #[serde(alias = "thinking_budget")]
    thinking_budget: Option<i64>,
    #[serde(alias = "include_thoughts")]
    _include_thoughts: Option<bool>,
    #[serde(borrow, alias = "thinking_level")]
    thinking_level: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTool<'a> {
    #[serde(borrow, alias = "function_declarations")]
    function_declarations: Option<Vec<Declaration<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Declaration<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parameters: Option<Raw<'a>>,
    #[serde(borrow, alias = "parameters_json_schema")]
    parameters_json_schema: Option<Raw<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    #[serde(borrow, alias = "function_calling_config")]
    function_calling_config: Option<CallingConfig<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallingConfig<'a> {
    #[serde(borrow)]
    mode: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "allowed_function_names")]
    allowed_function_names: Vec<Cow<'a, str>>,
}

/// A function response that is only an error (`{"error": ...}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyError {
    #[serde(rename = "error")]
    _error: IgnoredAny,
}

/// Calls seen so far, for pairing responses that carry no id.
#[derive(Default)]
struct Calls<'a> {
    /// (id, name, answered)
    seen: Vec<(Str<'a>, Str<'a>, bool)>,
}

impl<'a> Calls<'a> {
    fn call(&mut self, id: Option<Str<'a>>, name: &Str<'a>) -> Str<'a> {
        let id = id
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| Cow::Owned(format!("call_{}_{}", self.seen.len(), name)));
        self.seen.push((id.clone(), name.clone(), false));
        id
    }

    fn response(&mut self, id: Option<Str<'a>>, name: &str) -> Str<'a> {
        if let Some(id) = id.filter(|i| !i.is_empty()) {
            if let Some(c) = self.seen.iter_mut().find(|c| c.0 == id) {
                c.2 = true;
            }
            return id;
        }
        match self.seen.iter_mut().find(|c| !c.2 && c.1 == name) {
            Some(c) => {
                c.2 = true;
                c.0.clone()
            }
            None => Cow::Owned(format!("call_{name}")),
        }
    }
}

/// The request's top level, read in one pass: the fields this adapter
/// reads typed as they are met (no raw copy read a second time), the rest
/// raw in order. A key met twice counts once (the last).
#[derive(Default)]
struct Top<'a> {
    contents: Option<Vec<WireContent<'a>>>,
    /// A Content, or a bare string: raw, read once its shape is known.
    system: Option<(Str<'a>, Raw<'a>)>,
    generation_config: Option<(Str<'a>, GenerationConfig<'a>)>,
    tools: Option<Vec<WireTool<'a>>>,
    tool_config: Option<ToolConfig<'a>>,
    rest: Vec<(Str<'a>, Raw<'a>)>,
}

impl<'de> Entries<'de> for Top<'de> {
    fn entry<A: MapAccess<'de>>(&mut self, key: Str<'de>, map: &mut A) -> Result<(), A::Error> {
        match key.as_ref() {
            "contents" => self.contents = Some(at(map, &key)?),
            "systemInstruction" | "system_instruction" => {
                self.system = Some((key.clone(), at(map, &key)?));
            }
            "generationConfig" | "generation_config" => {
                self.generation_config = Some((key.clone(), at(map, &key)?));
            }
            "tools" => self.tools = Some(at(map, &key)?),
            "toolConfig" | "tool_config" => self.tool_config = Some(at(map, &key)?),
            _ => {
                let raw = at(map, &key)?;
                self.rest.push((key, raw));
            }
        }
        Ok(())
    }
}

pub(super) fn decode(body: &[u8]) -> Result<Request<'_>, ChatError> {
    let Object::<Top>(top) = crate::protocol::json::from_body(body).map_err(|e| {
        // A field of the wrong shape in a well-formed body: name the field
        // (the body is read again only to tell the two apart).
        let what = "Invalid JSON payload received. The body is not a GenerateContentRequest";
        let msg = e.to_string();
        match (serde_json::from_slice::<IgnoredAny>(body), unmark(&msg)) {
            (Err(syntax), _) => ChatError::bad_request(format!("{what}: {syntax}")),
            (Ok(_), Some((key, m))) => ChatError::invalid(key, m),
            (Ok(_), None) => ChatError::bad_request(format!("{what}: {e}")),
        }
    })?;
    let mut req = Request::new("", Family::Gemini);
    req.include_usage = true;
    let mut calls = Calls::default();
    for (i, c) in top.contents.into_iter().flatten().enumerate() {
        let role = match c.role.as_deref() {
            Some("model") => Role::Assistant,
            None | Some("user" | "function" | "") => Role::User,
            Some(other) => {
                let msg = format!("role {other:?} is not one of \"user\", \"model\"");
                return Err(ChatError::invalid(format!("contents[{i}].role"), msg));
            }
        };
        let mut parts = Vec::with_capacity(c.parts.len());
        for (j, p) in c.parts.into_iter().enumerate() {
            let path = || format!("contents[{i}].parts[{j}]");
            part(p, &mut parts, &mut calls, path)?;
        }
        req.turns.push(Turn { role, parts });
    }
    if let Some((key, raw)) = top.system {
        system(&key, raw, &mut req)?;
    }
    if let Some((key, gc)) = top.generation_config {
        generation_config(gc, &mut req, &key)?;
    }
    for t in top.tools.into_iter().flatten() {
        let Some(decls) = t.function_declarations else {
            tracing::debug!(
                "a Gemini tool other than functionDeclarations is kept for Gemini vendors only"
            );
            continue;
        };
        for d in decls {
            let parameters = match (d.parameters_json_schema, d.parameters) {
                (Some(js), _) => Some(Cow::Borrowed(js)),
                (None, Some(p)) => Some(json_schema(p)),
                (None, None) => None,
            };
            req.tools.push(Tool {
                kind: ToolKind::Function,
                name: d.name,
                description: d.description,
                parameters,
                strict: None,
                format: None,
                cache: None,
            });
        }
    }
    if let Some(fc) = top.tool_config.and_then(|tc| tc.function_calling_config) {
        let mut names = fc.allowed_function_names;
        req.tool_choice = match fc.mode.as_deref().unwrap_or("AUTO") {
            "NONE" => Some(ToolChoice::None),
            "ANY" if names.len() == 1 => names.pop().map(ToolChoice::Tool),
            "ANY" => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        };
    }
    for (key, raw) in top.rest {
        // The model is in the URL; a copy in the body says nothing more.
        if key != "model" {
            req.extra.fields.push((key, Cow::Borrowed(raw)));
        }
    }
    if req.turns.iter().all(|t| t.parts.is_empty()) {
        return Err(ChatError::invalid(
            "contents",
            "contents is not specified: at least one content with parts is required",
        ));
    }
    Ok(req)
}

/// `systemInstruction`: a Content of text parts, or (accepted too) a bare
/// string.
fn system<'a>(key: &str, raw: Raw<'a>, req: &mut Request<'a>) -> Result<(), ChatError> {
    if let Ok(text) = serde_json::from_str::<Cow<'_, str>>(raw.get()) {
        req.system.push(Part::Text(Text::plain(text)));
        return Ok(());
    }
    let c: WireContent<'_> = get(raw, || key.to_string())?;
    for (j, p) in c.parts.into_iter().enumerate() {
        let path = || format!("{key}.parts[{j}]");
        let p: WirePart<'_> = get(p, path)?;
        match p.text {
            Some(t) => req.system.push(Part::Text(Text::plain(t))),
            None => {
                let msg = "only text parts are supported in system instructions";
                return Err(ChatError::invalid(path(), msg));
            }
        }
    }
    Ok(())
}

fn generation_config<'a>(
    gc: GenerationConfig<'a>,
    req: &mut Request<'a>,
    key: &str,
) -> Result<(), ChatError> {
    if gc.candidate_count.is_some_and(|n| n > 1) {
        let msg = "this gateway translates one candidate: candidateCount must be 1";
        return Err(ChatError::invalid(format!("{key}.candidateCount"), msg));
    }
    let s = &mut req.sampling;
    s.temperature = gc.temperature;
    s.top_p = gc.top_p;
    // Google's topK is a number (the SDKs send it as a float).
    s.top_k = gc.top_k.filter(|k| *k >= 0.0).map(|k| k as u64);
    s.seed = gc.seed;
    s.presence_penalty = gc.presence_penalty;
    s.frequency_penalty = gc.frequency_penalty;
    s.stop = gc.stop_sequences;
    req.max_tokens = gc.max_output_tokens;
    let schema = match (gc.response_json_schema, gc.response_schema) {
        (Some(js), _) => Some(Cow::Borrowed(js)),
        (None, Some(s)) => Some(json_schema(s)),
        (None, None) => None,
    };
    let json = gc.response_mime_type.as_deref() == Some("application/json");
    req.response_format = match schema {
        Some(schema) => Some(ResponseFormat::JsonSchema {
            name: None,
            schema: Some(schema),
            strict: None,
        }),
        None if json => Some(ResponseFormat::JsonObject),
        None => None,
    };
    if let Some(tc) = gc.thinking_config {
        req.reasoning = match (tc.thinking_level.as_deref(), tc.thinking_budget) {
            (Some(level), _) => {
                Effort::parse(&level.to_ascii_lowercase()).map(ReasoningConfig::Effort)
            }
            (None, Some(-1)) => Some(ReasoningConfig::Dynamic),
            (None, Some(n)) => Some(ReasoningConfig::Budget(u64::try_from(n).unwrap_or(0))),
            (None, None) => None,
        };
    }
    Ok(())
}

/// Google's schema dialect (an OpenAPI subset whose types are written in
/// upper case) as JSON schema. Schemas are small and rare next to content:
/// one tree walk is fine here.
fn json_schema(raw: &RawValue) -> Cow<'_, RawValue> {
    fn lower(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    match (k.as_str(), v) {
                        ("type", serde_json::Value::String(t)) => *t = t.to_ascii_lowercase(),
                        ("type", serde_json::Value::Array(ts)) => {
                            for t in ts.iter_mut() {
                                if let serde_json::Value::String(t) = t {
                                    *t = t.to_ascii_lowercase();
                                }
                            }
                        }
                        (_, v) => lower(v),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(lower),
            _ => {}
        }
    }
    let text = raw.get();
    let upper = text.bytes().any(|b| b.is_ascii_uppercase());
    if !upper || !text.contains("\"type\"") {
        return Cow::Borrowed(raw);
    }
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Cow::Borrowed(raw);
    };
    lower(&mut v);
    serde_json::value::to_raw_value(&v).map_or(Cow::Borrowed(raw), Cow::Owned)
}

fn media_kind(mime: &str) -> MediaKind {
    if mime.starts_with("image/") {
        MediaKind::Image
    } else if mime.starts_with("audio/") {
        MediaKind::Audio
    } else {
        MediaKind::Document
    }
}

/// One request part into `out`.
fn part<'a>(
    raw: Raw<'a>,
    out: &mut Vec<Part<'a>>,
    calls: &mut Calls<'a>,
    path: impl Fn() -> String,
) -> Result<(), ChatError> {
    let p: WirePart<'a> = get(raw, &path)?;
    let sig = p
        .thought_signature
        .filter(|s| !s.is_empty())
        .map(decode_signature);
    if let Some(fc) = p.function_call {
        let id = calls.call(fc.id, &fc.name);
        let arguments = fc
            .args
            .map_or(Cow::Borrowed("{}"), |a| Cow::Borrowed(a.get()));
        out.push(Part::ToolCall(ToolCall {
            id,
            name: fc.name,
            kind: ToolKind::Function,
            arguments,
            signature: sig,
        }));
        return Ok(());
    }
    if let Some(fr) = p.function_response {
        let call_id = calls.response(fr.id, &fr.name);
        let response = fr.response.map_or("{}", RawValue::get);
        let is_error = serde_json::from_str::<OnlyError>(response).is_ok();
        out.push(Part::ToolResult(ToolResult {
            call_id,
            name: Some(fr.name),
            content: vec![Part::Text(Text::plain(response))],
            is_error,
            cache: None,
        }));
        return Ok(());
    }
    if let Some(blob) = p.inline_data {
        out.push(Part::Media(Media {
            kind: media_kind(&blob.mime_type),
            mime: Some(blob.mime_type),
            source: MediaSource::Base64 { data: blob.data },
            name: None,
            detail: None,
            cache: None,
        }));
        return Ok(());
    }
    if let Some(file) = p.file_data {
        let uri = file.file_uri;
        let source = if is_http(&uri) && !uri.contains("generativelanguage.googleapis.com") {
            MediaSource::Url(uri)
        } else {
            MediaSource::FileId {
                family: Family::Gemini,
                id: uri,
            }
        };
        let kind = media_kind(file.mime_type.as_deref().unwrap_or(""));
        out.push(Part::Media(Media {
            kind,
            mime: file.mime_type,
            source,
            name: None,
            detail: None,
            cache: None,
        }));
        return Ok(());
    }
    let Some(text) = p.text else {
        if let Some(sig) = sig {
            // A bare signature part signs the reasoning before it.
            reasoning(out, Cow::Borrowed(""), Some(sig));
            return Ok(());
        }
        // A part kind the model does not know (executableCode, ...):
        // replayed to Gemini vendors only.
        out.push(Part::Opaque {
            family: Family::Gemini,
            raw: Cow::Borrowed(raw),
        });
        return Ok(());
    };
    if p.thought == Some(true) {
        reasoning(out, text, sig);
        return Ok(());
    }
    if !text.is_empty() {
        out.push(Part::Text(Text::plain(text)));
    }
    if sig.is_some() {
        out.push(Part::reasoning("", sig, None));
    }
    Ok(())
}

/// A thought part: merged into an unsigned reasoning part right before it
/// (thoughts streamed in pieces come back as several parts, the signature
/// on the last one).
fn reasoning<'a>(
    out: &mut Vec<Part<'a>>,
    text: Str<'a>,
    sig: Option<crate::protocol::chat::Signature<'a>>,
) {
    let redacted = sig.as_ref().is_some_and(|s| s.value.starts_with(REDACTED));
    if let Some(Part::Reasoning(prev)) = out.last_mut() {
        if prev.signature.is_none() && prev.redacted.is_none() && !redacted {
            if !text.is_empty() {
                prev.text = Cow::Owned(format!("{}{text}", prev.text));
            }
            prev.signature = sig;
            return;
        }
    }
    let (signature, redacted) = match sig {
        Some(mut s) if redacted => {
            s.value = Cow::Owned(s.value[REDACTED.len()..].to_string());
            (None, Some(s))
        }
        s => (s, None),
    };
    out.push(Part::reasoning(text, signature, redacted));
}
