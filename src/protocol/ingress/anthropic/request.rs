//! An Anthropic Messages request body decoded into the chat model.
//!
//! One borrowing pass over the body: the top level and the message list
//! are read by hand-written visitors that know the field path of whatever
//! fails, so errors name it (`messages[2].content[0].source.type`); blocks
//! are taken raw and then read into one flat struct, which keeps the raw
//! text for blocks the model does not know (`Part::Opaque`).
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
    ChatError, Family, Media, MediaKind, MediaSource, Part, Reasoning, ReasoningConfig, Request,
    Role, Signature, Str, Text, Tool, ToolCall, ToolChoice, ToolKind, ToolResult, Turn,
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

type Raw<'a> = &'a RawValue;

pub(super) fn decode(body: &[u8]) -> Result<Request<'_>, ChatError> {
    let mut slot = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let res = Top { slot: &mut slot }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|_| r));
    res.map_err(|e| {
        // Broken JSON is no one field's fault (checked again on this rare
        // path: an inner failure has already been turned into a custom one).
        if let Err(syntax) = serde_json::from_slice::<de::IgnoredAny>(body) {
            return ChatError::bad_request(format!("request body is not valid JSON: {syntax}"));
        }
        slot.take()
            .unwrap_or_else(|| ChatError::bad_request(format!("invalid request: {}", plain(&e))))
    })
}

/// serde's message without its position (meaningless inside a sub-value).
fn plain(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Records `err` as the reason for the failure (innermost wins) and
/// returns the error that unwinds serde.
fn fail<E: de::Error>(slot: &mut Option<ChatError>, err: ChatError) -> E {
    let msg = err.message.clone();
    slot.get_or_insert(err);
    E::custom(msg)
}

fn at(path: impl FnOnce() -> String) -> impl FnOnce(serde_json::Error) -> ChatError {
    move |e| ChatError::invalid(path(), plain(&e))
}

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// serde borrows a `Cow<str>` only when it is the field's whole type: an
/// optional one goes through [`Key`].
fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Str<'a>>, D::Error> {
    Ok(Option::<Key<'a>>::deserialize(d)?.map(|k| k.0))
}

/// A string, or an array of blocks taken raw.
enum Content<'a> {
    Text(Str<'a>),
    Blocks(Vec<Raw<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(raw) = seq.next_element::<Raw<'de>>()? {
                    v.push(raw);
                }
                Ok(Content::Blocks(v))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

// ---------------------------------------------------------------- top level

struct Top<'s> {
    slot: &'s mut Option<ChatError>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Request<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Request<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut req = Request::new("", Family::Anthropic);
        // Anthropic streams always end with the token counts.
        req.include_usage = true;
        let mut server_tools: Vec<Raw<'de>> = Vec::new();
        let mut saw_messages = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            saw_messages |= key == "messages";
            let r = field(&key, &mut map, &mut req, &mut server_tools, self.slot);
            if let Err(e) = r {
                let param = key.into_owned();
                self.slot
                    .get_or_insert_with(|| ChatError::invalid(param, plain_de(&e)));
                return Err(e);
            }
        }
        if !saw_messages {
            return Err(fail(
                self.slot,
                ChatError::invalid("messages", "messages is required"),
            ));
        }
        if !server_tools.is_empty() {
            let joined: Vec<&str> = server_tools.iter().map(|r| r.get()).collect();
            let raw = RawValue::from_string(format!("[{}]", joined.join(",")))
                .map_err(|e| fail(self.slot, ChatError::invalid("tools", e.to_string())))?;
            req.extra
                .fields
                .push((Cow::Borrowed("tools"), Cow::Owned(raw)));
        }
        Ok(req)
    }
}

fn plain_de<E: fmt::Display>(e: &E) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    user_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read only to see whether anything else is there
struct MetaOnly<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    user_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Thinking<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WireToolChoice<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    name: Option<Str<'a>>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct WireTool<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    name: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    description: Option<Str<'a>>,
    #[serde(borrow, default)]
    input_schema: Option<Raw<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<Raw<'a>>,
    #[serde(default)]
    strict: Option<bool>,
}

fn field<'de, A: MapAccess<'de>>(
    key: &str,
    map: &mut A,
    req: &mut Request<'de>,
    server_tools: &mut Vec<Raw<'de>>,
    slot: &mut Option<ChatError>,
) -> Result<(), A::Error> {
    match key {
        "model" => req.model = map.next_value::<Key<'de>>()?.0,
        "messages" => req.turns = map.next_value_seed(Messages { slot })?,
        "system" => {
            if let Some(c) = map.next_value::<Option<Content<'de>>>()? {
                req.system = system(c).map_err(|e| fail(slot, e))?;
            }
        }
        "max_tokens" => {
            req.max_tokens = map.next_value()?;
            if req.max_tokens == Some(0) {
                let e = ChatError::invalid("max_tokens", "max_tokens must be a positive integer");
                return Err(fail(slot, e));
            }
        }
        "temperature" => req.sampling.temperature = map.next_value()?,
        "top_p" => req.sampling.top_p = map.next_value()?,
        "top_k" => req.sampling.top_k = map.next_value()?,
        "stop_sequences" => {
            let v: Option<Vec<Key<'de>>> = map.next_value()?;
            req.sampling.stop = v.unwrap_or_default().into_iter().map(|k| k.0).collect();
        }
        "stream" => req.stream = map.next_value::<Option<bool>>()?.unwrap_or(false),
        "metadata" => {
            let Some(raw) = map.next_value::<Option<Raw<'de>>>()? else {
                return Ok(());
            };
            let m: Meta = serde_json::from_str(raw.get())
                .map_err(|e| fail(slot, at(|| "metadata".into())(e)))?;
            req.user = m.user_id;
            // Other metadata goes to Anthropic vendors as it came.
            if serde_json::from_str::<MetaOnly>(raw.get()).is_err() {
                push_extra(req, "metadata", raw);
            }
        }
        "tools" => {
            let tools: Option<Vec<Raw<'de>>> = map.next_value()?;
            for (i, raw) in tools.unwrap_or_default().into_iter().enumerate() {
                let t: WireTool = serde_json::from_str(raw.get())
                    .map_err(|e| fail(slot, at(|| format!("tools[{i}]"))(e)))?;
                if t.kind.as_deref().is_some_and(|k| k != "custom") {
                    server_tools.push(raw);
                    continue;
                }
                let name = t.name.filter(|n| !n.is_empty()).ok_or_else(|| {
                    fail(
                        slot,
                        ChatError::invalid(format!("tools[{i}].name"), "tool has no name"),
                    )
                })?;
                req.tools.push(Tool {
                    kind: ToolKind::Function,
                    name,
                    description: t.description,
                    parameters: t.input_schema.map(Cow::Borrowed),
                    strict: t.strict,
                    format: None,
                    cache: t.cache_control.map(Cow::Borrowed),
                });
            }
        }
        "tool_choice" => {
            let Some(tc) = map.next_value::<Option<WireToolChoice<'de>>>()? else {
                return Ok(());
            };
            req.tool_choice = Some(match tc.kind.as_ref() {
                "auto" => ToolChoice::Auto,
                "any" => ToolChoice::Required,
                "none" => ToolChoice::None,
                "tool" => match tc.name.filter(|n| !n.is_empty()) {
                    Some(n) => ToolChoice::Tool(n),
                    None => {
                        let e = ChatError::invalid("tool_choice.name", "tool_choice names no tool");
                        return Err(fail(slot, e));
                    }
                },
                other => {
                    let e = ChatError::invalid(
                        "tool_choice.type",
                        format!("tool_choice type '{other}' is not one of auto, any, tool, none"),
                    );
                    return Err(fail(slot, e));
                }
            });
            if tc.disable_parallel_tool_use == Some(true) {
                req.parallel_tool_calls = Some(false);
            }
        }
        "thinking" => {
            let Some(raw) = map.next_value::<Option<Raw<'de>>>()? else {
                return Ok(());
            };
            let t = serde_json::from_str::<Thinking>(raw.get()).ok();
            req.reasoning = match t.as_ref().map(|t| (t.kind.as_ref(), t.budget_tokens)) {
                Some(("enabled", Some(b))) => Some(ReasoningConfig::Budget(b)),
                Some(("enabled", None)) => {
                    let e = ChatError::invalid(
                        "thinking.budget_tokens",
                        "thinking of type enabled needs budget_tokens",
                    );
                    return Err(fail(slot, e));
                }
                Some(("adaptive", None)) => Some(ReasoningConfig::Dynamic),
                Some(("disabled", None)) => Some(ReasoningConfig::Budget(0)),
                // A shape the model cannot hold: for Anthropic vendors only.
                _ => {
                    push_extra(req, "thinking", raw);
                    None
                }
            };
        }
        _ => {
            let raw: Raw<'de> = map.next_value()?;
            push_extra(req, key, raw);
        }
    }
    Ok(())
}

fn push_extra<'de>(req: &mut Request<'de>, key: &str, raw: Raw<'de>) {
    req.extra
        .fields
        .push((Cow::Owned(key.to_string()), Cow::Borrowed(raw)));
}

fn system(c: Content<'_>) -> Result<Vec<Part<'_>>, ChatError> {
    match c {
        Content::Text(t) => Ok(vec![Part::Text(Text::plain(t))]),
        Content::Blocks(blocks) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (i, raw) in blocks.into_iter().enumerate() {
                let path = || format!("system[{i}]");
                let b: Block = serde_json::from_str(raw.get()).map_err(at(path))?;
                match (b.kind.as_deref(), b.text) {
                    (Some("text"), Some(text)) => out.push(Part::Text(Text {
                        text,
                        cache: b.cache_control.map(Cow::Borrowed),
                    })),
                    _ => return Err(ChatError::invalid(path(), "system blocks must be text")),
                }
            }
            Ok(out)
        }
    }
}

// ---------------------------------------------------------------- messages

struct Messages<'s> {
    slot: &'s mut Option<ChatError>,
}

impl<'de> DeserializeSeed<'de> for Messages<'_> {
    type Value = Vec<Turn<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Str<'a>,
    #[serde(borrow)]
    content: Content<'a>,
}

impl<'de> Visitor<'de> for Messages<'_> {
    type Value = Vec<Turn<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut turns = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        let mut i = 0;
        loop {
            let m = match seq.next_element::<Message<'de>>() {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(turns),
                Err(e) => {
                    let err = ChatError::invalid(format!("messages[{i}]"), plain_de(&e));
                    return Err(fail(self.slot, err));
                }
            };
            turns.push(turn(m, i).map_err(|e| fail(self.slot, e))?);
            i += 1;
        }
    }
}

fn turn(m: Message<'_>, i: usize) -> Result<Turn<'_>, ChatError> {
    let role = match m.role.as_ref() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(ChatError::invalid(
                format!("messages[{i}].role"),
                format!("role '{other}' is not one of user, assistant"),
            ))
        }
    };
    let parts = match m.content {
        Content::Text(t) => vec![Part::Text(Text::plain(t))],
        Content::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, raw) in blocks.into_iter().enumerate() {
                parts.push(block(raw, &|| format!("messages[{i}].content[{j}]"))?);
            }
            parts
        }
    };
    Ok(Turn { role, parts })
}

// ---------------------------------------------------------------- blocks

/// Every field of every block type this model reads, flat.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    kind: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    text: Option<Str<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<Raw<'a>>,
    #[serde(borrow, default)]
    source: Option<Raw<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    title: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    name: Option<Str<'a>>,
    #[serde(borrow, default)]
    input: Option<Raw<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    tool_use_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    content: Option<Raw<'a>>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    thinking: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    signature: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    data: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    media_type: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    data: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    url: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    file_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_str")]
    kind: Option<Str<'a>>,
}

const KNOWN: [&str; 7] = [
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
];

fn opaque(raw: Raw<'_>) -> Part<'_> {
    Part::Opaque {
        family: Family::Anthropic,
        raw: Cow::Borrowed(raw),
    }
}

fn block<'a>(raw: Raw<'a>, path: &dyn Fn() -> String) -> Result<Part<'a>, ChatError> {
    let b: Block<'a> = match serde_json::from_str(raw.get()) {
        Ok(b) => b,
        Err(e) => {
            // A block of a type this model does not read may use these
            // field names differently: it is kept whole.
            return match serde_json::from_str::<TypeOnly>(raw.get()) {
                Ok(TypeOnly { kind: Some(k) }) if !KNOWN.contains(&k.as_ref()) => Ok(opaque(raw)),
                _ => Err(ChatError::invalid(path(), plain(&e))),
            };
        }
    };
    let cache = b.cache_control.map(Cow::Borrowed);
    let need = |v: Option<Str<'a>>, f: &str| {
        v.ok_or_else(|| ChatError::invalid(format!("{}.{f}", path()), format!("{f} is required")))
    };
    Ok(match b.kind.as_deref() {
        None => {
            return Err(ChatError::invalid(
                format!("{}.type", path()),
                "content block has no type",
            ))
        }
        Some("text") => Part::Text(Text {
            text: need(b.text, "text")?,
            cache,
        }),
        Some(kind @ ("image" | "document")) => {
            let Some(src) = b.source else {
                return Err(ChatError::invalid(
                    format!("{}.source", path()),
                    "source is required",
                ));
            };
            let src: Source =
                serde_json::from_str(src.get()).map_err(at(|| format!("{}.source", path())))?;
            let image = kind == "image";
            let source = match (src.kind.as_ref(), src.data, src.url, src.file_id) {
                ("base64", Some(data), _, _) => MediaSource::Base64 { data },
                // Plain text travels base64 like every other inline document.
                ("text", Some(data), _, _) if !image => MediaSource::Base64 {
                    data: Cow::Owned(base64_encode(data.as_bytes())),
                },
                ("url", _, Some(url), _) => MediaSource::Url(url),
                ("file", _, _, Some(id)) => MediaSource::FileId {
                    family: Family::Anthropic,
                    id,
                },
                // Custom content documents and sources added later.
                ("content", ..) if !image => return Ok(opaque(raw)),
                (other, ..) => {
                    return Err(ChatError::invalid(
                        format!("{}.source", path()),
                        format!("{kind} source '{other}' is not supported or misses its data"),
                    ))
                }
            };
            let mime = match src.kind.as_ref() {
                "text" => Some(src.media_type.unwrap_or(Cow::Borrowed("text/plain"))),
                _ => src.media_type,
            };
            Part::Media(Media {
                kind: if image {
                    MediaKind::Image
                } else {
                    MediaKind::Document
                },
                mime,
                source,
                name: b.title,
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
            let content = match b.content {
                None => Vec::new(),
                Some(c) => {
                    let cpath = || format!("{}.content", path());
                    match serde_json::from_str::<Option<Content>>(c.get()).map_err(at(cpath))? {
                        None => Vec::new(),
                        Some(Content::Text(t)) => vec![Part::Text(Text::plain(t))],
                        Some(Content::Blocks(items)) => {
                            let mut out = Vec::with_capacity(items.len());
                            for (k, item) in items.into_iter().enumerate() {
                                let p = || format!("{}.content[{k}]", path());
                                out.push(block(item, &p)?);
                            }
                            out
                        }
                    }
                }
            };
            Part::ToolResult(ToolResult {
                call_id: need(b.tool_use_id, "tool_use_id")?,
                name: None,
                content,
                is_error: b.is_error.unwrap_or(false),
                cache,
            })
        }
        Some("thinking") => Part::Reasoning(Reasoning {
            text: b.thinking.unwrap_or_default(),
            signature: b
                .signature
                .filter(|s| !s.is_empty())
                .map(|value| Signature {
                    family: Family::Anthropic,
                    value,
                }),
            redacted: None,
        }),
        Some("redacted_thinking") => Part::Reasoning(Reasoning {
            text: Cow::Borrowed(""),
            signature: None,
            redacted: Some(Signature {
                family: Family::Anthropic,
                value: need(b.data, "data")?,
            }),
        }),
        // Server tool calls and results, search results, containers, …:
        // replayed to Anthropic vendors only.
        Some(_) => opaque(raw),
    })
}

/// Standard base64 with padding (plain-text documents become inline data).
fn base64_encode(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(ABC[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[rustfmt::skip] // golden tables: one case a line
mod tests {
    use super::*;
    use crate::protocol::chat::ResponseFormat;

    /// A compact, readable rendering of a decoded request (golden form).
    pub(crate) fn show(r: &Request<'_>) -> String {
        fn part(p: &Part<'_>) -> String {
            let cache = |c: &Option<Cow<'_, RawValue>>| c.as_ref().map(|_| "+cache").unwrap_or("");
            match p {
                Part::Text(t) => format!("text({}){}", t.text, cache(&t.cache)),
                Part::Media(m) => format!("{:?}({:?},{:?},{:?}){}", m.kind, m.mime, m.source, m.name, cache(&m.cache)),
                Part::ToolCall(c) => format!("call({},{},{})", c.id, c.name, c.arguments),
                Part::ToolResult(r) => format!(
                    "result({},err={},[{}]){}",
                    r.call_id,
                    r.is_error,
                    r.content.iter().map(part).collect::<Vec<_>>().join(" "),
                    cache(&r.cache)
                ),
                Part::Reasoning(r) => {
                    format!("reasoning({},{:?},{:?})", r.text, r.signature.as_ref().map(|s| &s.value), r.redacted.as_ref().map(|s| &s.value))
                }
                Part::Refusal(t) => format!("refusal({t})"),
                Part::Opaque { raw, .. } => format!("opaque({})", raw.get()),
            }
        }
        let mut s = format!("model={} system=[", r.model);
        s += &r.system.iter().map(part).collect::<Vec<_>>().join(" ");
        s += "]";
        for t in &r.turns {
            let parts: Vec<String> = t.parts.iter().map(part).collect();
            s += &format!("\n{:?}: {}", t.role, parts.join(" "));
        }
        for t in &r.tools {
            s += &format!(
                "\ntool {} {:?} {} strict={:?}{}",
                t.name,
                t.description,
                t.parameters.as_ref().map(|p| p.get()).unwrap_or("-"),
                t.strict,
                t.cache.as_ref().map(|_| " +cache").unwrap_or("")
            );
        }
        let extra: Vec<String> = r.extra.fields.iter().map(|(k, v)| format!("{k}={}", v.get())).collect();
        s += &format!(
            "\nchoice={:?} parallel={:?} max={:?} t={:?} p={:?} k={:?} stop={:?} stream={} usage={} user={:?} reasoning={:?} format={} extra=[{}]",
            r.tool_choice,
            r.parallel_tool_calls,
            r.max_tokens,
            r.sampling.temperature,
            r.sampling.top_p,
            r.sampling.top_k,
            r.sampling.stop,
            r.stream,
            r.include_usage,
            r.user,
            r.reasoning,
            matches!(r.response_format, None | Some(ResponseFormat::Text)),
            extra.join(" ")
        );
        s
    }

    fn decode_str(body: &str) -> Result<Request<'_>, ChatError> {
        decode(body.as_bytes())
    }

    #[test]
    fn requests_decode_into_the_chat_model() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":"Hello"}],"stream":true,"temperature":0.5,"top_p":0.9,"top_k":10,"stop_sequences":["END"],"metadata":{"user_id":"u-42"}}"#,
                "model=claude-sonnet-4-5 system=[text(Be brief.)]\nUser: text(Hello)\nchoice=None parallel=None max=Some(1024) t=Some(0.5) p=Some(0.9) k=Some(10) stop=[\"END\"] stream=true usage=true user=Some(\"u-42\") reasoning=None format=true extra=[]",
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
            (r#"{"messages":[{"role":"user","content":"a"},{"role":"system","content":"x"}]}"#, "messages[1].role"),
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

    #[test]
    fn base64_encoding_matches_the_standard() {
        for (plain, enc) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
        }
    }
}
