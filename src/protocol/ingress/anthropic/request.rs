//! An Anthropic Messages request body decoded into the chat model.
//!
//! The top level is read as raw fields, each then read into its typed
//! shape, so an error names the field at fault with Anthropic's path
//! (`messages[2].content[0].source`); blocks are read into one flat struct,
//! and blocks the model does not know are kept raw (`Part::Opaque`).
//!
//! Kept for Anthropic vendors only (see `Extras`): unknown top-level
//! fields, a `thinking` or `metadata` object of a shape the model cannot
//! hold, and server tools (`web_search_…`, `code_execution_…`): these are
//! collected into one raw array under the extra field `tools`, which the
//! Anthropic egress appends to its `tools`. Documented losses: fields of a
//! block the model has no slot for (`citations`, document `context`,
//! `cache_control` on tool_use / thinking blocks) and unknown fields of a
//! custom tool.

use crate::protocol::chat::{
    ChatError, Family, Media, MediaKind, MediaSource, Part, ReasoningConfig, Request, Role,
    Signature, Str, Text, Tool, ToolCall, ToolChoice, ToolKind, ToolResult, Turn,
};
use crate::protocol::json::{get, marked as at, s, unmark, Entries, Object, Raw, S as Key};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::de::IgnoredAny;
use serde::de::MapAccess;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

fn invalid(path: impl Into<String>, msg: impl Into<String>) -> ChatError {
    ChatError::invalid(path, msg)
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Message<'a> {
    role: Key<'a>,
    content: Raw<'a>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Meta<'a> {
    user_id: Option<Key<'a>>,
}

/// Metadata with nothing but a user id (other metadata is also kept raw).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIdOnly {
    #[serde(rename = "user_id")]
    _id: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "'de: 'a"))]
struct Thinking<'a> {
    r#type: Key<'a>,
    budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct WireToolChoice<'a> {
    r#type: Key<'a>,
    name: Option<Key<'a>>,
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct WireTool<'a> {
    r#type: Option<Key<'a>>,
    name: Option<Key<'a>>,
    description: Option<Key<'a>>,
    input_schema: Option<Raw<'a>>,
    cache_control: Option<Raw<'a>>,
    strict: Option<bool>,
}

/// The request's top level, read in one pass: the messages and the
/// scalars every request has typed as they are met, the other fields raw,
/// in order, each read once its key says what it is.
#[derive(Default)]
struct Top<'a> {
    model: Option<Key<'a>>,
    max_tokens: Option<u64>,
    stream: Option<bool>,
    messages: Option<Vec<Message<'a>>>,
    rest: Vec<(Str<'a>, Raw<'a>)>,
}

impl<'de> Entries<'de> for Top<'de> {
    fn entry<A: MapAccess<'de>>(&mut self, key: Str<'de>, map: &mut A) -> Result<(), A::Error> {
        match key.as_ref() {
            "model" => self.model = Some(at(map, &key)?),
            "max_tokens" => self.max_tokens = at(map, &key)?,
            "stream" => self.stream = at(map, &key)?,
            "messages" => self.messages = Some(at(map, &key)?),
            _ => {
                let raw = at(map, &key)?;
                self.rest.push((key, raw));
            }
        }
        Ok(())
    }
}

/// Why a body could not be read: broken JSON, or the field at fault (a
/// message by its index: the body is read again to find it, a rare path).
fn decode_error(body: &[u8], e: &serde_json::Error) -> ChatError {
    #[derive(Deserialize)]
    #[serde(bound(deserialize = "'de: 'a"))]
    struct Messages<'a> {
        messages: Raw<'a>,
    }
    let msg = e.to_string();
    match (serde_json::from_slice::<IgnoredAny>(body), unmark(&msg)) {
        (Err(syntax), _) => {
            ChatError::bad_request(format!("request body is not valid JSON: {syntax}"))
        }
        (Ok(_), Some(("messages", m))) => {
            let located = crate::protocol::json::from_body::<Messages>(body).map(|b| {
                let list = get::<Vec<Raw>>(b.messages, || "messages".into())?;
                for (i, m) in list.into_iter().enumerate() {
                    get::<Message>(m, || format!("messages[{i}]"))?;
                }
                Ok(())
            });
            match located {
                Ok(Err(e)) => e,
                _ => invalid("messages", m),
            }
        }
        (Ok(_), Some((key, m))) => invalid(key, m),
        (Ok(_), None) => ChatError::bad_request(format!("invalid request: {e}")),
    }
}

pub(super) fn decode(body: &[u8]) -> Result<Request<'_>, ChatError> {
    let Object::<Top>(top) =
        crate::protocol::json::from_body(body).map_err(|e| decode_error(body, &e))?;
    let mut req = Request::new("", Family::Anthropic);
    // Anthropic streams always end with the token counts.
    req.include_usage = true;
    let mut server_tools: Vec<&str> = Vec::new();
    let mut later_system = Vec::new();
    req.model = top.model.map(|k| k.0).unwrap_or_default();
    req.max_tokens = top.max_tokens;
    if req.max_tokens == Some(0) {
        return Err(invalid(
            "max_tokens",
            "max_tokens must be a positive integer",
        ));
    }
    req.stream = top.stream.unwrap_or(false);
    let Some(list) = top.messages else {
        return Err(invalid("messages", "messages is required"));
    };
    req.turns = messages(list, &mut later_system)?;
    for (key, raw) in top.rest {
        let at = || key.to_string();
        match key.as_ref() {
            "system" => req.system = system(raw)?,
            "temperature" => req.sampling.temperature = get(raw, at)?,
            "top_p" => req.sampling.top_p = get(raw, at)?,
            "top_k" => req.sampling.top_k = get(raw, at)?,
            "stop_sequences" => {
                let v: Option<Vec<Key>> = get(raw, at)?;
                req.sampling.stop = v.unwrap_or_default().into_iter().map(|k| k.0).collect();
            }
            "metadata" => {
                if let Some(m) = get::<Option<Meta>>(raw, at)? {
                    req.user = s(m.user_id);
                    // Other metadata goes to Anthropic vendors as it came.
                    if get::<UserIdOnly>(raw, at).is_err() {
                        req.extra.fields.push((key, Cow::Borrowed(raw)));
                    }
                }
            }
            "tools" => {
                for (i, raw) in get::<Option<Vec<Raw>>>(raw, at)?
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let t: WireTool = get(raw, || format!("tools[{i}]"))?;
                    if t.r#type.as_ref().is_some_and(|k| k.0 != "custom") {
                        server_tools.push(raw.get());
                        continue;
                    }
                    let name = s(t.name).filter(|n| !n.is_empty());
                    req.tools.push(Tool {
                        kind: ToolKind::Function,
                        name: name.ok_or_else(|| {
                            invalid(format!("tools[{i}].name"), "tool has no name")
                        })?,
                        description: s(t.description),
                        parameters: t.input_schema.map(Cow::Borrowed),
                        strict: t.strict,
                        format: None,
                        cache: t.cache_control.map(Cow::Borrowed),
                    });
                }
            }
            "tool_choice" => {
                let Some(tc) = get::<Option<WireToolChoice>>(raw, at)? else {
                    continue;
                };
                req.tool_choice = Some(match tc.r#type.0.as_ref() {
                    "auto" => ToolChoice::Auto,
                    "any" => ToolChoice::Required,
                    "none" => ToolChoice::None,
                    "tool" => match s(tc.name).filter(|n| !n.is_empty()) {
                        Some(n) => ToolChoice::Tool(n),
                        None => {
                            return Err(invalid("tool_choice.name", "tool_choice names no tool"))
                        }
                    },
                    other => {
                        let msg = format!(
                            "tool_choice type '{other}' is not one of auto, any, tool, none"
                        );
                        return Err(invalid("tool_choice.type", msg));
                    }
                });
                if tc.disable_parallel_tool_use == Some(true) {
                    req.parallel_tool_calls = Some(false);
                }
            }
            "thinking" => {
                if raw.get() == "null" {
                    continue;
                }
                let t = serde_json::from_str::<Thinking>(raw.get()).ok();
                req.reasoning = match t.as_ref().map(|t| (t.r#type.0.as_ref(), t.budget_tokens)) {
                    Some(("enabled", Some(b))) => Some(ReasoningConfig::Budget(b)),
                    Some(("enabled", None)) => {
                        let msg = "thinking of type enabled needs budget_tokens";
                        return Err(invalid("thinking.budget_tokens", msg));
                    }
                    Some(("adaptive", None)) => Some(ReasoningConfig::Dynamic),
                    Some(("disabled", None)) => Some(ReasoningConfig::Budget(0)),
                    // A shape the model cannot hold: for Anthropic vendors only.
                    _ => {
                        req.extra.fields.push((key, Cow::Borrowed(raw)));
                        None
                    }
                };
            }
            _ => req.extra.fields.push((key, Cow::Borrowed(raw))),
        }
    }
    req.system.extend(later_system);
    if !server_tools.is_empty() {
        let raw = RawValue::from_string(format!("[{}]", server_tools.join(",")));
        let raw = raw.map_err(|e| invalid("tools", e.to_string()))?;
        req.extra
            .fields
            .push((Cow::Borrowed("tools"), Cow::Owned(raw)));
    }
    Ok(req)
}

/// A string, or an array of blocks taken raw.
enum Content<'a> {
    Text(Str<'a>),
    Blocks(Vec<Raw<'a>>),
}

fn content<'a>(raw: Raw<'a>, path: impl Fn() -> String) -> Result<Content<'a>, ChatError> {
    match raw.get().starts_with('"') {
        true => Ok(Content::Text(get::<Key>(raw, path)?.0)),
        false => Ok(Content::Blocks(get(raw, path)?)),
    }
}

fn system(raw: Raw<'_>) -> Result<Vec<Part<'_>>, ChatError> {
    if raw.get() == "null" {
        return Ok(Vec::new());
    }
    match content(raw, || "system".into())? {
        Content::Text(t) => Ok(vec![Part::Text(Text::plain(t))]),
        Content::Blocks(blocks) => blocks
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let path = || format!("system[{i}]");
                let b: Block = get(raw, path)?;
                match (s(b.r#type).as_deref(), s(b.text)) {
                    (Some("text"), Some(text)) => Ok(Part::Text(Text {
                        text,
                        cache: b.cache_control.map(Cow::Borrowed),
                    })),
                    _ => Err(invalid(path(), "system blocks must be text")),
                }
            })
            .collect(),
    }
}

/// The turns; `role: "system"` messages (mid-conversation system
/// instructions, as Claude Code sends) join `system` (the model keeps
/// system text apart, as for OpenAI `developer` messages anywhere).
fn messages<'a>(
    list: Vec<Message<'a>>,
    system_out: &mut Vec<Part<'a>>,
) -> Result<Vec<Turn<'a>>, ChatError> {
    let mut turns = Vec::with_capacity(list.len());
    for (i, m) in list.into_iter().enumerate() {
        let role = match m.role.0.as_ref() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => {
                system_out.extend(system(m.content)?);
                continue;
            }
            other => {
                let msg = format!("role '{other}' is not one of user, assistant, system");
                return Err(invalid(format!("messages[{i}].role"), msg));
            }
        };
        let mut parts = match content(m.content, || format!("messages[{i}]"))? {
            Content::Text(t) => vec![Part::Text(Text::plain(t))],
            Content::Blocks(blocks) => blocks
                .into_iter()
                .enumerate()
                .map(|(j, raw)| block(raw, &|| format!("messages[{i}].content[{j}]")))
                .collect::<Result<_, _>>()?,
        };
        if role == Role::Assistant {
            attach_call_signatures(&mut parts);
        }
        turns.push(Turn { role, parts });
    }
    Ok(turns)
}

/// Every field of every block type this model reads, flat.
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Block<'a> {
    r#type: Option<Key<'a>>,
    text: Option<Key<'a>>,
    cache_control: Option<Raw<'a>>,
    source: Option<Raw<'a>>,
    title: Option<Key<'a>>,
    id: Option<Key<'a>>,
    name: Option<Key<'a>>,
    input: Option<Raw<'a>>,
    tool_use_id: Option<Key<'a>>,
    content: Option<Raw<'a>>,
    is_error: Option<bool>,
    thinking: Option<Key<'a>>,
    signature: Option<Key<'a>>,
    data: Option<Key<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct Source<'a> {
    r#type: Key<'a>,
    media_type: Option<Key<'a>>,
    data: Option<Key<'a>>,
    url: Option<Key<'a>>,
    file_id: Option<Key<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct TypeOnly<'a> {
    r#type: Option<Key<'a>>,
}

const KNOWN: &str = "text image document tool_use tool_result thinking redacted_thinking";

fn opaque(raw: Raw<'_>) -> Part<'_> {
    Part::Opaque {
        family: Family::Anthropic,
        raw: Cow::Borrowed(raw),
    }
}

/// A marked Gemini signature (see `wire::GEMINI_SIGNATURE`) or Anthropic's.
fn signature(v: Str<'_>) -> Signature<'_> {
    let family = match v.strip_prefix(super::wire::GEMINI_SIGNATURE) {
        Some(_) => Family::Gemini,
        None => return Signature::new(Family::Anthropic, v),
    };
    let value = match v {
        Cow::Borrowed(b) => Cow::Borrowed(&b[super::wire::GEMINI_SIGNATURE.len()..]),
        Cow::Owned(o) => Cow::Owned(o[super::wire::GEMINI_SIGNATURE.len()..].to_string()),
    };
    Signature::new(family, value)
}

/// An empty thinking block with a Gemini signature right before a
/// `tool_use` holds that call's signature: it goes back on the call.
fn attach_call_signatures(parts: &mut Vec<Part<'_>>) {
    for i in (1..parts.len()).rev() {
        if let [Part::Reasoning(r), Part::ToolCall(c)] = &mut parts[i - 1..=i] {
            if r.text.is_empty()
                && r.signature
                    .as_ref()
                    .is_some_and(|s| s.family == Family::Gemini)
            {
                c.signature = r.signature.take();
                parts.remove(i - 1);
            }
        }
    }
}

fn block<'a>(raw: Raw<'a>, path: &dyn Fn() -> String) -> Result<Part<'a>, ChatError> {
    let b: Block<'a> = match get(raw, path) {
        Ok(b) => b,
        // A block of a type this model does not read may use these field
        // names differently: it is kept whole.
        Err(e) => match serde_json::from_str::<TypeOnly>(raw.get()) {
            Ok(TypeOnly { r#type: Some(k) }) if !KNOWN.split(' ').any(|x| x == k.0) => {
                return Ok(opaque(raw))
            }
            _ => return Err(e),
        },
    };
    let cache = b.cache_control.map(Cow::Borrowed);
    let sub = |f: &str| format!("{}.{f}", path());
    let need = |v: Option<Key<'a>>, f: &str| {
        s(v).ok_or_else(|| invalid(sub(f), format!("{f} is required")))
    };
    Ok(match s(b.r#type).as_deref() {
        None => return Err(invalid(sub("type"), "content block has no type")),
        Some("text") => Part::Text(Text {
            text: need(b.text, "text")?,
            cache,
        }),
        Some(kind @ ("image" | "document")) => {
            let src = b
                .source
                .ok_or_else(|| invalid(sub("source"), "source is required"))?;
            let src: Source = get(src, || sub("source"))?;
            let image = kind == "image";
            let (data, url, file_id) = (s(src.data), s(src.url), s(src.file_id));
            let source = match (src.r#type.0.as_ref(), data, url, file_id) {
                ("base64", Some(data), _, _) => MediaSource::Base64 { data },
                // Plain text travels base64 like every other inline document.
                ("text", Some(data), _, _) if !image => MediaSource::Base64 {
                    data: Cow::Owned(STANDARD.encode(data.as_bytes())),
                },
                ("url", _, Some(url), _) => MediaSource::Url(url),
                ("file", _, _, Some(id)) => MediaSource::FileId {
                    family: Family::Anthropic,
                    id,
                },
                // Custom content documents and sources added later.
                ("content", ..) if !image => return Ok(opaque(raw)),
                (other, ..) => {
                    let msg =
                        format!("{kind} source '{other}' is not supported or misses its data");
                    return Err(invalid(sub("source"), msg));
                }
            };
            let mime = match src.r#type.0.as_ref() {
                "text" => Some(s(src.media_type).unwrap_or(Cow::Borrowed("text/plain"))),
                _ => s(src.media_type),
            };
            let kind = if image {
                MediaKind::Image
            } else {
                MediaKind::Document
            };
            Part::Media(Media {
                kind,
                mime,
                source,
                name: s(b.title),
                detail: None,
                cache,
            })
        }
        Some("tool_use") => Part::ToolCall(ToolCall {
            id: need(b.id, "id")?,
            name: need(b.name, "name")?,
            kind: ToolKind::Function,
            arguments: b.input.map(|r| Cow::Borrowed(r.get())).unwrap_or_default(),
            signature: None,
        }),
        Some("tool_result") => {
            let content = match b.content.filter(|c| c.get() != "null") {
                None => Vec::new(),
                Some(c) => match content(c, || sub("content"))? {
                    Content::Text(t) => vec![Part::Text(Text::plain(t))],
                    Content::Blocks(items) => items
                        .into_iter()
                        .enumerate()
                        .map(|(k, item)| block(item, &|| format!("{}.content[{k}]", path())))
                        .collect::<Result<_, _>>()?,
                },
            };
            let (call_id, is_error) = (
                need(b.tool_use_id, "tool_use_id")?,
                b.is_error.unwrap_or(false),
            );
            Part::ToolResult(ToolResult {
                call_id,
                name: None,
                content,
                is_error,
                cache,
            })
        }
        Some("thinking") => Part::reasoning(
            s(b.thinking).unwrap_or_default(),
            s(b.signature).filter(|s| !s.is_empty()).map(signature),
            None,
        ),
        Some("redacted_thinking") => {
            let redacted = Some(Signature::new(Family::Anthropic, need(b.data, "data")?));
            Part::reasoning("", None, redacted)
        }
        // Server tool calls and results, search results, containers, …:
        // replayed to Anthropic vendors only.
        Some(_) => opaque(raw),
    })
}

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;
    use crate::protocol::chat::ResponseFormat;

    /// A compact, readable rendering of a decoded request (golden form).
    fn show(r: &Request<'_>) -> String {
        fn part(p: &Part<'_>) -> String {
            let cache = |c: &Option<Cow<'_, RawValue>>| if c.is_some() { "+cache" } else { "" };
            match p {
                Part::Text(t) => format!("text({}){}", t.text, cache(&t.cache)),
                Part::Media(m) => format!("{:?}({:?},{:?},{:?}){}", m.kind, m.mime, m.source, m.name, cache(&m.cache)),
                Part::ToolCall(c) => format!("call({},{},{})", c.id, c.name, c.arguments),
                Part::ToolResult(r) => format!("result({},err={},[{}]){}", r.call_id, r.is_error, list(&r.content), cache(&r.cache)),
                Part::Reasoning(r) => format!("reasoning({},{:?},{:?})", r.text, r.signature.as_ref().map(|s| &s.value), r.redacted.as_ref().map(|s| &s.value)),
                Part::Refusal(t) => format!("refusal({t})"),
                Part::Opaque { raw, .. } => format!("opaque({})", raw.get()),
            }
        }
        fn list(parts: &[Part<'_>]) -> String { parts.iter().map(part).collect::<Vec<_>>().join(" ") }
        let mut s = format!("model={} system=[{}]", r.model, list(&r.system));
        r.turns.iter().for_each(|t| s += &format!("\n{:?}: {}", t.role, list(&t.parts)));
        for t in &r.tools {
            let params = t.parameters.as_ref().map_or("-", |p| p.get());
            s += &format!("\ntool {} {:?} {params} strict={:?}{}", t.name, t.description, t.strict, if t.cache.is_some() { " +cache" } else { "" });
        }
        let extra: Vec<String> = r.extra.fields.iter().map(|(k, v)| format!("{k}={}", v.get())).collect();
        let (sm, format) = (&r.sampling, matches!(r.response_format, None | Some(ResponseFormat::Text)));
        s + &format!("\nchoice={:?} parallel={:?} max={:?} t={:?} p={:?} k={:?} stop={:?} stream={} usage={} user={:?} reasoning={:?} format={format} extra=[{}]",
            r.tool_choice, r.parallel_tool_calls, r.max_tokens, sm.temperature, sm.top_p, sm.top_k, sm.stop, r.stream, r.include_usage, r.user, r.reasoning, extra.join(" "))
    }

    fn decode_str(body: &str) -> Result<Request<'_>, ChatError> {
        decode(body.as_bytes())
    }

    #[test]
    fn requests_decode_into_the_chat_model() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":"Hello"},{"role":"system","content":"In French."}],"stream":true,"temperature":0.5,"top_p":0.9,"top_k":10,"stop_sequences":["END"],"metadata":{"user_id":"u-42"}}"#,
                "model=claude-sonnet-4-5 system=[text(Be brief.) text(In French.)]\nUser: text(Hello)\nchoice=None parallel=None max=Some(1024) t=Some(0.5) p=Some(0.9) k=Some(10) stop=[\"END\"] stream=true usage=true user=Some(\"u-42\") reasoning=None format=true extra=[]",
            ),
            (
                r#"{"model":"m","max_tokens":64,"system":[{"type":"text","text":"A"},{"type":"text","text":"B","cache_control":{"type":"ephemeral"}}],
                "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"l":{"type":"string"}}},"cache_control":{"type":"ephemeral"}},
                         {"type":"custom","name":"c","input_schema":{"type":"object"},"strict":true},
                         {"type":"web_search_20250305","name":"web_search","max_uses":5}],
                "tool_choice":{"type":"any","disable_parallel_tool_use":true},
                "thinking":{"type":"enabled","budget_tokens":2048},
                "messages":[
                  {"role":"user","content":[{"type":"text","text":"Look","cache_control":{"type":"ephemeral"}},
                     {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},
                     {"type":"image","source":{"type":"url","url":"https://x/y.png"}},
                     {"type":"document","title":"Doc","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}},
                     {"type":"document","source":{"type":"text","media_type":"text/plain","data":"hi!"}},
                     {"type":"document","source":{"type":"file","file_id":"file_01"}}]},
                  {"role":"assistant","content":[{"type":"thinking","thinking":"Hmm","signature":"sig=="},{"type":"redacted_thinking","data":"ENC"},
                     {"type":"text","text":"I'll check."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"l":"SF"}},
                     {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},
                     {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":{"type":"web_search_tool_result_error","error_code":"unavailable"}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"15 degrees"},
                     {"type":"tool_result","tool_use_id":"toolu_2","is_error":true,"cache_control":{"type":"ephemeral"},"content":[{"type":"text","text":"boom"},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j"}}]},
                     {"type":"text","text":"Thanks"}]}],
                "service_tier":"auto","container":null}"#,
                "model=m system=[text(A) text(B)+cache]\nUser: text(Look)+cache Image(Some(\"image/png\"),Base64 { data: \"iVBOR\" },None) Image(None,Url(\"https://x/y.png\"),None) Document(Some(\"application/pdf\"),Base64 { data: \"JVBER\" },Some(\"Doc\")) Document(Some(\"text/plain\"),Base64 { data: \"aGkh\" },None) Document(None,FileId { family: Anthropic, id: \"file_01\" },None)\nAssistant: reasoning(Hmm,Some(\"sig==\"),None) reasoning(,None,Some(\"ENC\")) text(I'll check.) call(toolu_1,get_weather,{\"l\":\"SF\"}) opaque({\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\",\"input\":{\"query\":\"q\"}}) opaque({\"type\":\"web_search_tool_result\",\"tool_use_id\":\"srvtoolu_1\",\"content\":{\"type\":\"web_search_tool_result_error\",\"error_code\":\"unavailable\"}})\nUser: result(toolu_1,err=false,[text(15 degrees)]) result(toolu_2,err=true,[text(boom) Image(Some(\"image/jpeg\"),Base64 { data: \"/9j\" },None)])+cache text(Thanks)\ntool get_weather Some(\"Weather\") {\"type\":\"object\",\"properties\":{\"l\":{\"type\":\"string\"}}} strict=None +cache\ntool c None {\"type\":\"object\"} strict=Some(true)\nchoice=Some(Required) parallel=Some(false) max=Some(64) t=None p=None k=None stop=[] stream=false usage=true user=None reasoning=Some(Budget(2048)) format=true extra=[service_tier=\"auto\" container=null tools=[{\"type\":\"web_search_20250305\",\"name\":\"web_search\",\"max_uses\":5}]]",
            ),
            (
                r#"{"model":"m","messages":[],"thinking":{"type":"adaptive"},"tool_choice":{"type":"tool","name":"t"},"metadata":{"user_id":"u","tier":"x"}}"#,
                "model=m system=[]\nchoice=Some(Tool(\"t\")) parallel=None max=None t=None p=None k=None stop=[] stream=false usage=true user=Some(\"u\") reasoning=Some(Dynamic) format=true extra=[metadata={\"user_id\":\"u\",\"tier\":\"x\"}]",
            ),
            (
                r#"{"model":"m","messages":[],"thinking":{"type":"disabled"}}"#,
                "model=m system=[]\nchoice=None parallel=None max=None t=None p=None k=None stop=[] stream=false usage=true user=None reasoning=Some(Budget(0)) format=true extra=[]",
            ),
            (
                r#"{"model":"m","messages":[],"thinking":{"type":"enabled","budget_tokens":2048,"display":"x"}}"#,
                "model=m system=[]\nchoice=None parallel=None max=None t=None p=None k=None stop=[] stream=false usage=true user=None reasoning=None format=true extra=[thinking={\"type\":\"enabled\",\"budget_tokens\":2048,\"display\":\"x\"}]",
            ),
            // Escaped strings are unescaped (owned), others borrowed.
            (
                r#"{"model":"m","messages":[{"role":"user","content":"a\"b\u00e9"}]}"#,
                "model=m system=[]\nUser: text(a\"bé)\nchoice=None parallel=None max=None t=None p=None k=None stop=[] stream=false usage=true user=None reasoning=None format=true extra=[]",
            ),
        ];
        for (body, want) in cases {
            let got = decode_str(body).map(|r| show(&r));
            assert_eq!(got.as_deref(), Ok(*want), "{body}");
        }
    }

    #[test]
    fn marked_gemini_signatures_go_back_to_their_parts() {
        let body = r#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"T","signature":"gemini:s1"},
            {"type":"thinking","thinking":"","signature":"gemini:s2"},{"type":"tool_use","id":"t1","name":"f","input":{}},{"type":"thinking","thinking":"","signature":"sig"},{"type":"tool_use","id":"t2","name":"f","input":{}}]}]}"#;
        let r = decode_str(body).expect("decodes");
        let sig = |s: &Option<Signature>| s.as_ref().map(|s| format!("{:?} {}", s.family, s.value));
        let sigs: Vec<_> = r.turns[0].parts.iter().map(|p| match p { Part::Reasoning(r) => sig(&r.signature), Part::ToolCall(c) => sig(&c.signature), _ => None }).collect();
        assert_eq!(sigs, [Some("Gemini s1".into()), Some("Gemini s2".into()), Some("Anthropic sig".into()), None]);
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let ok = r#"{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
        assert!(decode_str(ok).is_ok());
        let cases: &[(&str, &str)] = &[
            (r#"{"max_tokens":0,"messages":[]}"#, "max_tokens"),
            (r#"{"max_tokens":-1,"messages":[]}"#, "max_tokens"),
            (r#"{"max_tokens":"256","messages":[]}"#, "max_tokens"),
            (r#"{"max_tokens":1.5,"messages":[]}"#, "max_tokens"),
            (r#"{"temperature":"hot","messages":[]}"#, "temperature"),
            (r#"{"top_p":[1],"messages":[]}"#, "top_p"),
            (r#"{"stream":"yes","messages":[]}"#, "stream"),
            (r#"{"stop_sequences":"END","messages":[]}"#, "stop_sequences"),
            (r#"{"stop_sequences":[1,2],"messages":[]}"#, "stop_sequences"),
            (r#"{"model":"m"}"#, "messages"),
            (r#"{"messages":{}}"#, "messages"),
            (r#"{"messages":[{"role":"user","content":"a"},{"role":"tool","content":"x"}]}"#, "messages[1].role"),
            (r#"{"messages":[{"role":"user"}]}"#, "messages[0]"),
            (r#"{"messages":[{"role":"user","content":5}]}"#, "messages[0]"),
            (r#"{"messages":[{"role":"user","content":[{"text":"x"}]}]}"#, "messages[0].content[0].type"),
            (r#"{"messages":[{"role":"user","content":[{"type":"text","text":1}]}]}"#, "messages[0].content[0]"),
            (r#"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#, "messages[0].content[0].text"),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"ftp"}}]}]}"#,
                "messages[0].content[1].source",
            ),
            (r#"{"messages":[{"role":"user","content":[{"type":"image"}]}]}"#, "messages[0].content[0].source"),
            (r#"{"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}"#, "messages[0].content[0].id"),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":2}]}]}]}"#,
                "messages[0].content[0].content[0]",
            ),
            (r#"{"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#, "messages[0].content[0].tool_use_id"),
            (r#"{"system":[{"type":"image"}],"messages":[]}"#, "system[0]"),
            (r#"{"system":5,"messages":[]}"#, "system"),
            (r#"{"tools":[{"description":"x"}],"messages":[]}"#, "tools[0].name"),
            (r#"{"tools":{},"messages":[]}"#, "tools"),
            (r#"{"tool_choice":{"type":"some"},"messages":[]}"#, "tool_choice.type"),
            (r#"{"tool_choice":{"type":"tool"},"messages":[]}"#, "tool_choice.name"),
            (r#"{"thinking":{"type":"enabled"},"messages":[]}"#, "thinking.budget_tokens"),
            (r#"{"metadata":{"user_id":5},"messages":[]}"#, "metadata"),
        ];
        for (body, param) in cases {
            let err = decode_str(body).err();
            assert_eq!(err.as_ref().and_then(|e| e.param.as_deref()), Some(*param), "{body}: {err:?}");
            assert_eq!(err.map(|e| e.status), Some(400));
        }
        for body in ["", "[1]", "{\"messages\":[]} x", "{\"messages\":["] {
            let err = decode_str(body).err();
            assert_eq!(err.as_ref().map(|e| e.status), Some(400), "{body}");
            assert_eq!(err.and_then(|e| e.param), None, "{body}");
        }
    }

    #[test]
    fn plain_strings_are_borrowed_from_the_body() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]}"#;
        let req = decode_str(body).ok();
        let text = req.as_ref().and_then(|r| match r.turns[0].parts.first() {
            Some(Part::Text(t)) => Some(&t.text),
            _ => None,
        });
        assert!(matches!(text, Some(Cow::Borrowed("hello"))), "{text:?}");
    }
}
