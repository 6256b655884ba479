//! Anthropic client -> OpenAI vendor: typed fast paths (see the module docs
//! of `super`).
//!
//! - [`request_to_openai`] mirrors `anthropic_request_to_openai` followed by
//!   `set_model` and serialisation (`OpenAiVendor::translate_request`).
//! - [`response_to_anthropic`] mirrors `openai_response_to_anthropic`.
//! - [`push_chunk`] and [`close_stream`] mirror one step of `OpenAiStream`
//!   (its own usage reading) and `OpenAiToAnthropicStream::push` /
//!   `finish`, on the same translator state, so a stream can take the
//!   general path for one chunk (a tool call delta, say) and the fast path
//!   for the next.
//!
//! Each one declines (returns `None` / `false`, having changed nothing) for
//! what it does not cover; the general path then runs. Where the general
//! path would generate an id (a response or stream without one) the fast
//! path declines too, which keeps it deterministic.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::BytesMut;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Number, Value};

use super::{count, push_json_str, push_u64, Canon, Obj, Skip, Str, TextOut};
use crate::protocol::anthropic::{stop_reason_for, OpenAiToAnthropicStream, OpenBlock};
use crate::protocol::types::Usage;

// ---------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------

fn push_number(out: &mut Vec<u8>, n: &Number) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, n);
}

/// Text blocks' texts joined by `sep`, serialised as one JSON string
/// without building the joined `String` (serde_json escapes what
/// `collect_str` writes piece by piece, and escaping is per character, so
/// the bytes equal those of the joined string).
struct Joined<'b, 'a> {
    blocks: &'b [Obj<TextBlock<'a>>],
    sep: &'static str,
}

impl fmt::Display for Joined<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                f.write_str(self.sep)?;
            }
            f.write_str(b.text.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for Joined<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn push_joined(out: &mut Vec<u8>, blocks: &[Obj<TextBlock<'_>>], sep: &'static str) {
    match blocks {
        [one] => push_json_str(out, one.text.as_str()),
        _ => {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &Joined { blocks, sep });
        }
    }
}

// ---------------------------------------------------------------------------
// Request: Anthropic Messages -> OpenAI chat
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<'a> {
    /// Replaced by the upstream model, so its value does not matter.
    #[serde(rename = "model", default)]
    _model: Skip,
    #[serde(borrow)]
    messages: Vec<Obj<Message<'a>>>,
    #[serde(default, borrow)]
    system: Option<Content<'a>>,
    /// Only a non-negative integer: the general path copies anything else
    /// as it is (for the vendor to reject), which is left to it.
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default, borrow)]
    stop_sequences: Option<Vec<Str<'a>>>,
    #[serde(default)]
    temperature: Option<Number>,
    #[serde(default)]
    top_p: Option<Number>,
    /// Not forwarded by the general path (OpenAI has no top_k), whatever
    /// its value.
    #[serde(rename = "top_k", default)]
    _top_k: Skip,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default, borrow)]
    metadata: Option<Obj<Metadata<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata<'a> {
    #[serde(default, borrow)]
    user_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    /// A string compared by hand: a unit enum would also accept
    /// `{"user": null}`.
    #[serde(borrow)]
    role: Str<'a>,
    #[serde(borrow)]
    content: Content<'a>,
}

/// Plain text blocks only: `cache_control`, citations and every other
/// block type make the request take the general path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBlock<'a> {
    /// Checked to be "text" as the array is read.
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    text: Str<'a>,
}

/// `content` / `system`: a string or an array of text blocks.
enum Content<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Obj<TextBlock<'a>>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    // Hand-written rather than `#[serde(untagged)]`, which buffers the
    // value first and loses the borrowing.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of text blocks")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Content<'a>, E> {
                Ok(Content::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Content<'a>, E> {
                Ok(Content::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Content<'a>, E> {
                Ok(Content::Text(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<Obj<TextBlock<'a>>>()? {
                    if b.kind.as_str() != "text" {
                        return Err(de::Error::custom("not a text block"));
                    }
                    blocks.push(b);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Clone, Copy)]
enum Role {
    User,
    Assistant,
}

/// Opens `{"role":..,"content":` (with the separating comma after the
/// first message); the caller writes the content and closes the object.
fn open_message(out: &mut Vec<u8>, first: &mut bool, role: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"role\":\"");
    out.extend_from_slice(role.as_bytes());
    out.extend_from_slice(b"\",\"content\":");
}

/// The OpenAI chat request for an Anthropic Messages request, with `model`
/// set to `model`; `None` when the request is not a covered shape.
pub fn request_to_openai(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let req: Obj<Request> = serde_json::from_str(super::utf8(body)?).ok()?;
    let mut out = Vec::with_capacity(body.len() + 96);
    // Key order as the general path builds its map: `model` first (set
    // again by `set_model`, which keeps its position), then the rest.
    out.extend_from_slice(b"{\"model\":");
    push_json_str(&mut out, model);
    out.extend_from_slice(b",\"messages\":[");
    let mut first = true;
    match &req.system {
        // An empty system prompt is left out.
        Some(Content::Text(s)) if !s.is_empty() => {
            open_message(&mut out, &mut first, "system");
            push_json_str(&mut out, s);
            out.push(b'}');
        }
        // Joined by blank lines; empty only when there is no separator
        // either (no block, or one empty block).
        Some(Content::Blocks(b))
            if b.len() > 1 || b.first().is_some_and(|b| !b.text.0.is_empty()) =>
        {
            open_message(&mut out, &mut first, "system");
            push_joined(&mut out, b, "\n\n");
            out.push(b'}');
        }
        _ => {}
    }
    for msg in &req.messages {
        let role = match msg.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return None,
        };
        match (role, &msg.content) {
            (Role::User, Content::Text(s)) => {
                open_message(&mut out, &mut first, "user");
                push_json_str(&mut out, s);
                out.push(b'}');
            }
            // A user message without blocks disappears; text blocks join
            // into one string (the widest vendor support).
            (Role::User, Content::Blocks(b)) => {
                if !b.is_empty() {
                    open_message(&mut out, &mut first, "user");
                    push_joined(&mut out, b, "\n\n");
                    out.push(b'}');
                }
            }
            (Role::Assistant, Content::Text(s)) => {
                open_message(&mut out, &mut first, "assistant");
                push_json_str(&mut out, s);
                out.push(b'}');
            }
            // The general path concatenates assistant text blocks without
            // a separator, and keeps the message even when empty.
            (Role::Assistant, Content::Blocks(b)) => {
                open_message(&mut out, &mut first, "assistant");
                push_joined(&mut out, b, "");
                out.push(b'}');
            }
        }
    }
    out.push(b']');
    if let Some(n) = req.max_tokens {
        if n == 0 {
            // The general path answers 400 for it.
            return None;
        }
        out.extend_from_slice(b",\"max_tokens\":");
        push_u64(&mut out, n);
    }
    if let Some(stops) = req.stop_sequences.as_deref().filter(|s| !s.is_empty()) {
        out.extend_from_slice(b",\"stop\":[");
        for (i, s) in stops.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(&mut out, s.as_str());
        }
        out.push(b']');
    }
    if let Some(t) = &req.temperature {
        out.extend_from_slice(b",\"temperature\":");
        push_number(&mut out, t);
    }
    if let Some(p) = &req.top_p {
        out.extend_from_slice(b",\"top_p\":");
        push_number(&mut out, p);
    }
    match req.stream {
        Some(true) => {
            out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}")
        }
        Some(false) => out.extend_from_slice(b",\"stream\":false"),
        None => {}
    }
    if let Some(user) = req
        .metadata
        .as_ref()
        .and_then(|m| m.user_id.as_ref())
        .filter(|u| !u.0.is_empty())
    {
        out.extend_from_slice(b",\"user\":");
        push_json_str(&mut out, user.as_str());
    }
    out.push(b'}');
    Some(out)
}

// ---------------------------------------------------------------------------
// Response: OpenAI chat.completion -> Anthropic message
// ---------------------------------------------------------------------------

/// OpenAI's `usage`. Unknown keys are allowed here, unlike everywhere
/// else: the general readers (`usage_from_openai`, `usage_of`) look up
/// these names only, and vendors add their own counters (costs, timings)
/// that change nothing. Hand-written so that the values of those other
/// keys are still checked ([`Skip`]) and a repeated key counts with its
/// last value, as in a `Value`.
#[derive(Default)]
struct OaUsage {
    prompt_tokens: Option<Number>,
    completion_tokens: Option<Number>,
    total_tokens: Option<Number>,
    prompt_tokens_details: Option<PromptDetails>,
    /// DeepSeek's name for cached prompt tokens.
    prompt_cache_hit_tokens: Option<Number>,
}

#[derive(Default)]
struct PromptDetails {
    cached_tokens: Option<Number>,
}

impl<'de> Deserialize<'de> for OaUsage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OaUsage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a usage object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OaUsage, A::Error> {
                let mut u = OaUsage::default();
                while let Some(key) = map.next_key::<Str>()? {
                    match key.as_str() {
                        "prompt_tokens" => u.prompt_tokens = map.next_value()?,
                        "completion_tokens" => u.completion_tokens = map.next_value()?,
                        "total_tokens" => u.total_tokens = map.next_value()?,
                        "prompt_tokens_details" => u.prompt_tokens_details = map.next_value()?,
                        "prompt_cache_hit_tokens" => {
                            u.prompt_cache_hit_tokens = map.next_value()?
                        }
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(u)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for PromptDetails {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PromptDetails;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a token details object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PromptDetails, A::Error> {
                let mut p = PromptDetails::default();
                while let Some(key) = map.next_key::<Str>()? {
                    if key.as_str() == "cached_tokens" {
                        p.cached_tokens = map.next_value()?;
                    } else {
                        map.next_value::<Skip>()?;
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

impl OaUsage {
    /// As `anthropic::usage_from_openai` reads it.
    fn to_usage(&self) -> Usage {
        let prompt = count(self.prompt_tokens.as_ref());
        let completion = count(self.completion_tokens.as_ref());
        let total = match count(self.total_tokens.as_ref()) {
            0 => prompt.saturating_add(completion),
            t => t,
        };
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens.as_ref())
            .or(self.prompt_cache_hit_tokens.as_ref());
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total,
            cached_tokens: count(cached).min(prompt),
            ..Default::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Completion<'a> {
    #[serde(default, borrow)]
    id: Option<Str<'a>>,
    #[serde(rename = "object", default)]
    _object: Skip,
    #[serde(rename = "created", default)]
    _created: Skip,
    /// The general path copies `model` as it is and writes "" when it is
    /// absent; a null would be copied as null, so this field is a plain
    /// string (absent: "", null: declined).
    #[serde(default, borrow)]
    model: Str<'a>,
    #[serde(borrow)]
    choices: Vec<Obj<Choice<'a>>>,
    #[serde(default)]
    usage: Option<OaUsage>,
    #[serde(rename = "system_fingerprint", default)]
    _system_fingerprint: Skip,
    #[serde(rename = "service_tier", default)]
    _service_tier: Skip,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Choice<'a> {
    #[serde(rename = "index", default)]
    _index: Skip,
    #[serde(default, borrow)]
    message: Option<Obj<ResponseMessage<'a>>>,
    #[serde(rename = "logprobs", default)]
    _logprobs: Skip,
    #[serde(default, borrow)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseMessage<'a> {
    #[serde(rename = "role", default)]
    _role: Skip,
    #[serde(default, borrow)]
    content: Option<Str<'a>>,
    #[serde(default, borrow)]
    refusal: Option<Str<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Str<'a>>,
    #[serde(default, borrow)]
    reasoning: Option<Str<'a>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<Obj<ToolCall<'a>>>>,
    /// URL citations; the general path does not read them.
    #[serde(rename = "annotations", default)]
    _annotations: Skip,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    id: Option<Str<'a>>,
    #[serde(rename = "type", default)]
    _kind: Skip,
    #[serde(rename = "index", default)]
    _index: Skip,
    #[serde(default, borrow)]
    function: Option<Obj<Function<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Function<'a> {
    #[serde(default, borrow)]
    name: Option<Str<'a>>,
    /// A JSON text; an object here (some vendors) takes the general path.
    #[serde(default, borrow)]
    arguments: Option<Str<'a>>,
}

/// `{"type":"text","text":..}` after the blocks already written.
fn push_text_block(out: &mut Vec<u8>, first: &mut bool, text: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
    push_json_str(out, text);
    out.push(b'}');
}

/// Tool call arguments -> `input`, as `anthropic::arguments_to_input`:
/// the parsed object, `{}` for nothing, else the text kept under
/// `arguments`. The object goes through a `Value` on purpose: its bytes
/// must be the general path's re-serialisation (numbers, escapes, key
/// de-duplication), and tool calls are not the hot path.
fn push_tool_input(out: &mut Vec<u8>, args: Option<&str>) {
    match args {
        Some(s) if !s.trim().is_empty() => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => {
                // Writing to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &v);
            }
            _ => {
                out.extend_from_slice(b"{\"arguments\":");
                push_json_str(out, s);
                out.push(b'}');
            }
        },
        _ => out.extend_from_slice(b"{}"),
    }
}

/// The Anthropic message for an OpenAI chat.completion, and its usage;
/// `None` when the body is not a covered shape (an error body, no choices,
/// no id, content parts, …).
pub fn response_to_anthropic(body: &[u8]) -> Option<(Vec<u8>, Usage)> {
    let resp: Obj<Completion> = serde_json::from_str(super::utf8(body)?).ok()?;
    // Without an id the general path generates one.
    let id = resp.id.as_ref().filter(|id| !id.0.is_empty())?;
    // Only the first choice is translated (n > 1 has no Anthropic form).
    let choice = resp.choices.first()?;
    let msg = choice.message.as_ref();

    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(b"{\"id\":");
    push_json_str(&mut out, id.as_str());
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    push_json_str(&mut out, resp.model.as_str());
    out.extend_from_slice(b",\"content\":[");
    let mut first = true;
    // `reasoning_content` wins over `reasoning` when it is a string, even
    // an empty one (then there is no thinking block at all).
    let reasoning = msg
        .and_then(|m| m.reasoning_content.as_ref().or(m.reasoning.as_ref()))
        .filter(|r| !r.0.is_empty());
    if let Some(r) = reasoning {
        first = false;
        out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
        push_json_str(&mut out, r.as_str());
        out.extend_from_slice(b",\"signature\":\"\"}");
    }
    if let Some(text) = msg
        .and_then(|m| m.content.as_ref())
        .filter(|t| !t.0.is_empty())
    {
        push_text_block(&mut out, &mut first, text.as_str());
    }
    let refusal = msg
        .and_then(|m| m.refusal.as_ref())
        .filter(|r| !r.0.is_empty());
    if let Some(r) = refusal {
        push_text_block(&mut out, &mut first, r.as_str());
    }
    let calls = msg.and_then(|m| m.tool_calls.as_deref()).unwrap_or(&[]);
    for call in calls {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        let function = call.function.as_ref();
        out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
        push_json_str(&mut out, call.id.as_ref().map_or("", Str::as_str));
        out.extend_from_slice(b",\"name\":");
        push_json_str(
            &mut out,
            function
                .and_then(|f| f.name.as_ref())
                .map_or("", Str::as_str),
        );
        out.extend_from_slice(b",\"input\":");
        push_tool_input(
            &mut out,
            function.and_then(|f| f.arguments.as_ref()).map(Str::as_str),
        );
        out.push(b'}');
    }
    let stop_reason = match stop_reason_for(choice.finish_reason.as_ref().map(Str::as_str)) {
        // As the general path: tool calls after a "stop" (Gemini's
        // endpoint) still mean tool_use; a refusal is a refusal.
        "end_turn" if !calls.is_empty() => "tool_use",
        "end_turn" if refusal.is_some() => "refusal",
        s => s,
    };
    let usage = resp
        .usage
        .as_ref()
        .map(OaUsage::to_usage)
        .unwrap_or_default();
    out.extend_from_slice(b"],\"stop_reason\":\"");
    out.extend_from_slice(stop_reason.as_bytes());
    out.extend_from_slice(b"\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":");
    push_u64(
        &mut out,
        usage.prompt_tokens.saturating_sub(usage.cached_tokens),
    );
    out.extend_from_slice(b",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":");
    push_u64(&mut out, usage.cached_tokens);
    out.extend_from_slice(b",\"output_tokens\":");
    push_u64(&mut out, usage.completion_tokens);
    out.extend_from_slice(b"}}");
    Some((out, usage))
}

// ---------------------------------------------------------------------------
// Stream: OpenAI chunks -> Anthropic events
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: Option<Str<'a>>,
    #[serde(rename = "object", default)]
    _object: Skip,
    #[serde(rename = "created", default)]
    _created: Skip,
    #[serde(default, borrow)]
    model: Option<Str<'a>>,
    #[serde(rename = "system_fingerprint", default)]
    _system_fingerprint: Skip,
    #[serde(rename = "service_tier", default)]
    _service_tier: Skip,
    /// Random padding OpenAI adds to stream chunks.
    #[serde(rename = "obfuscation", default)]
    _obfuscation: Skip,
    #[serde(default, borrow)]
    choices: Option<Vec<Obj<ChunkChoice<'a>>>>,
    #[serde(default)]
    usage: Option<OaUsage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<Obj<Delta<'a>>>,
    #[serde(rename = "logprobs", default)]
    _logprobs: Skip,
    #[serde(default, borrow)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Delta<'a> {
    #[serde(rename = "role", default)]
    _role: Skip,
    #[serde(default, borrow)]
    content: Option<Str<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Str<'a>>,
    #[serde(default, borrow)]
    reasoning: Option<Str<'a>>,
    /// Any non-null value takes the general path: tool call deltas carry
    /// the id bookkeeping it owns; a refusal is ignored there today, and
    /// declining keeps a future change to that in one place.
    #[serde(default)]
    tool_calls: Option<Skip>,
    #[serde(default)]
    refusal: Option<Skip>,
}

/// Appends one SSE event, the bytes `sse::encode(name, data)` gives for
/// compact JSON (which never contains a newline).
fn push_event(out: &mut BytesMut, name: &str, data: impl FnOnce(&mut BytesMut)) {
    out.reserve(name.len() + 176);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    data(out);
    out.extend_from_slice(b"\n\n");
}

fn close_block(t: &mut OpenAiToAnthropicStream, out: &mut BytesMut) {
    if let Some(open) = t.open.take() {
        push_event(out, "content_block_stop", |b| {
            b.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
            push_u64(b, open.index() as u64);
            b.put_byte(b'}');
        });
    }
}

/// Opens a block whose `content_block` JSON is `block` and returns its index.
fn open_block(t: &mut OpenAiToAnthropicStream, block: &[u8], out: &mut BytesMut) -> usize {
    close_block(t, out);
    let index = t.next_block;
    t.next_block += 1;
    push_event(out, "content_block_start", |b| {
        b.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
        push_u64(b, index as u64);
        b.extend_from_slice(b",\"content_block\":");
        b.extend_from_slice(block);
        b.put_byte(b'}');
    });
    index
}

/// A text or thinking delta, opening its block when another kind is open.
fn push_delta(t: &mut OpenAiToAnthropicStream, thinking: bool, text: &str, out: &mut BytesMut) {
    let index = match (t.open, thinking) {
        (Some(OpenBlock::Text(i)), false) | (Some(OpenBlock::Thinking(i)), true) => i,
        (_, false) => {
            let i = open_block(t, b"{\"type\":\"text\",\"text\":\"\"}", out);
            t.open = Some(OpenBlock::Text(i));
            i
        }
        (_, true) => {
            let i = open_block(
                t,
                b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}",
                out,
            );
            t.open = Some(OpenBlock::Thinking(i));
            i
        }
    };
    push_event(out, "content_block_delta", |b| {
        b.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
        push_u64(b, index as u64);
        if thinking {
            b.extend_from_slice(b",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":");
        } else {
            b.extend_from_slice(b",\"delta\":{\"type\":\"text_delta\",\"text\":");
        }
        push_json_str(b, text);
        b.extend_from_slice(b"}}");
    });
}

/// One OpenAI chunk payload (not `[DONE]`) for an Anthropic client: the
/// work of `OpenAiStream::push` plus `OpenAiToAnthropicStream::push`.
/// `raw_usage` is `OpenAiStream`'s own usage slot. Returns `false`, having
/// changed nothing, when the chunk is not a covered shape (an error, a tool
/// call delta, a refusal, a first chunk without id, …).
pub(crate) fn push_chunk(
    t: &mut OpenAiToAnthropicStream,
    data: &str,
    raw_usage: &mut Usage,
    out: &mut BytesMut,
) -> bool {
    if let Some(chunk) = canonical_text_chunk(data) {
        return push_text_chunk(t, chunk, out);
    }
    let Ok(chunk) = serde_json::from_str::<Obj<Chunk>>(data) else {
        return false;
    };
    let choices = chunk.choices.as_deref().unwrap_or(&[]);
    let general_only = choices.iter().any(|c| {
        c.delta
            .as_ref()
            .is_some_and(|d| d.tool_calls.is_some() || d.refusal.is_some())
    });
    let id = chunk.id.as_ref().filter(|id| !id.0.is_empty());
    // The first event needs the message id; without one the general path
    // generates it.
    if general_only || (!t.started && !t.finished && id.is_none()) {
        return false;
    }
    if let Some(u) = &chunk.usage {
        *raw_usage = u.to_usage();
    }
    if t.finished {
        return true;
    }
    // Usage can ride on any chunk (some vendors repeat it on each).
    if let Some(u) = &chunk.usage {
        t.usage = u.to_usage();
    }
    if !t.started {
        start_message(
            t,
            id.map_or("", |id| id.as_str()),
            chunk.model.as_ref().map_or("", Str::as_str),
            out,
        );
    }
    for choice in choices {
        // n > 1 cannot be expressed; follow the first choice only.
        if choice.index.unwrap_or(0) != 0 {
            continue;
        }
        if let Some(d) = &choice.delta {
            let reasoning = d
                .reasoning_content
                .as_ref()
                .or(d.reasoning.as_ref())
                .filter(|r| !r.0.is_empty());
            if let Some(r) = reasoning {
                push_delta(t, true, r.as_str(), out);
            }
            if let Some(text) = d.content.as_ref().filter(|c| !c.0.is_empty()) {
                push_delta(t, false, text.as_str(), out);
            }
        }
        if let Some(fr) = &choice.finish_reason {
            close_block(t, out);
            t.set_finish(fr.as_str());
        }
    }
    true
}

/// A chunk in OpenAI's exact text-delta form, recognised by
/// [`canonical_text_chunk`] (id, model, text), as the parse in
/// [`push_chunk`] would take it; `false`, having changed nothing, when the
/// general path must run (no id to start the message with).
fn push_text_chunk(
    t: &mut OpenAiToAnthropicStream,
    (id, model, text): (&str, &str, Cow<'_, str>),
    out: &mut BytesMut,
) -> bool {
    // What the parse in `push_chunk` does with such a chunk: no usage, one
    // choice, index 0, content only, no finish reason.
    if !t.started && !t.finished && id.is_empty() {
        return false;
    }
    if t.finished {
        return true;
    }
    if !t.started {
        start_message(t, id, model, out);
    }
    if !text.is_empty() {
        push_delta(t, false, &text, out);
    }
    true
}

/// `message_start`, from the first chunk's id (not empty: the caller
/// checked) and model (used when the client named none).
fn start_message(t: &mut OpenAiToAnthropicStream, id: &str, model: &str, out: &mut BytesMut) {
    t.started = true;
    t.id = id.to_owned();
    if t.model.is_empty() {
        t.model = model.to_owned();
    }
    let input = t.usage.prompt_tokens.saturating_sub(t.usage.cached_tokens);
    push_event(out, "message_start", |b| {
        b.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":");
        push_json_str(b, &t.id);
        b.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_json_str(b, &t.model);
        b.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":",
        );
        push_u64(b, input);
        b.extend_from_slice(b",\"output_tokens\":0}}}");
    });
}

/// A text delta chunk exactly as OpenAI writes it:
/// `{"id":"…","object":"chat.completion.chunk","created":N,"model":"…",`
/// then optionally `"service_tier":"…",` and `"system_fingerprint":"…"`
/// (or `null`), then `"choices":[{"index":0,"delta":{"content":"…"},`
/// optionally `"logprobs":null,`, then `"finish_reason":null}]`, optionally
/// `,"usage":null` and `,"obfuscation":"…"`, and `}`. Returns the id, the
/// model and the text; `None` for anything else (whitespace, another key
/// order, an id or model with escapes), which takes the parse in
/// [`push_chunk`].
pub(crate) fn canonical_text_chunk(data: &str) -> Option<(&str, &str, Cow<'_, str>)> {
    let mut c = Canon(data);
    if !c.lit(r#"{"id":"#) {
        return None;
    }
    let id = c.plain_str()?;
    if !c.lit(r#","object":"chat.completion.chunk","created":"#) {
        return None;
    }
    c.int()?;
    if !c.lit(r#","model":"#) {
        return None;
    }
    let model = c.plain_str()?;
    if c.lit(r#","service_tier":"#) {
        c.plain_str()?;
    }
    if c.lit(r#","system_fingerprint":"#) && !c.lit("null") {
        c.plain_str()?;
    }
    if !c.lit(r#","choices":[{"index":0,"delta":{"content":"#) {
        return None;
    }
    let text = c.string()?;
    if !c.lit("},") {
        return None;
    }
    c.lit(r#""logprobs":null,"#);
    if !c.lit(r#""finish_reason":null}]"#) {
        return None;
    }
    c.lit(r#","usage":null"#);
    if c.lit(r#","obfuscation":"#) {
        c.plain_str()?;
    }
    (c.lit("}") && c.done()).then_some((id, model, text))
}

/// The end of the stream (`[DONE]` or a clean end without it), as
/// `OpenAiToAnthropicStream::finish`; `false` (nothing done) when no event
/// was sent yet, where the general path generates an id.
pub(crate) fn close_stream(t: &mut OpenAiToAnthropicStream, out: &mut BytesMut) -> bool {
    if t.finished {
        return true;
    }
    if !t.started {
        return false;
    }
    close_block(t, out);
    let reason = t.stop_reason.unwrap_or(if t.tools.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    });
    let u = t.usage;
    push_event(out, "message_delta", |b| {
        b.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        b.extend_from_slice(reason.as_bytes());
        b.extend_from_slice(b"\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":");
        push_u64(b, u.prompt_tokens.saturating_sub(u.cached_tokens));
        if u.cached_tokens > 0 {
            b.extend_from_slice(b",\"cache_read_input_tokens\":");
            push_u64(b, u.cached_tokens);
        }
        b.extend_from_slice(b",\"output_tokens\":");
        push_u64(b, u.completion_tokens);
        b.extend_from_slice(b"}}");
    });
    push_event(out, "message_stop", |b| {
        b.extend_from_slice(b"{\"type\":\"message_stop\"}")
    });
    t.finished = true;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::anthropic::openai_response_to_anthropic;
    use crate::protocol::sse::SseEvent;
    use crate::providers::openai::{OpenAiStream, OpenAiVendor};
    use crate::providers::{as_openai_request, set_model, ClientApi, StreamTranslate, Vendor};

    // ----- deterministic generator -----

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, pct: u64) -> bool {
            self.next() % 100 < pct
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[self.below(xs.len())]
        }
    }

    /// A JSON document to write with random (valid) spelling: whitespace,
    /// escapes, key order. Numbers and literals are written as given.
    #[derive(Clone)]
    enum J {
        Raw(String),
        S(String),
        A(Vec<J>),
        O(Vec<(String, J)>),
    }

    fn raw(s: &str) -> J {
        J::Raw(s.to_string())
    }

    fn st(s: &str) -> J {
        J::S(s.to_string())
    }

    /// An object of the present fields, in a shuffled order half the time.
    fn obj(rng: &mut Rng, fields: Vec<(&str, Option<J>)>) -> J {
        let mut f: Vec<(String, J)> = fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
        if rng.chance(50) {
            for i in (1..f.len()).rev() {
                f.swap(i, rng.below(i + 1));
            }
        }
        J::O(f)
    }

    /// Absent, null or a value.
    fn maybe(rng: &mut Rng, f: impl FnOnce(&mut Rng) -> J) -> Option<J> {
        match rng.below(10) {
            0..=3 => None,
            4 => Some(raw("null")),
            _ => Some(f(rng)),
        }
    }

    fn ws(rng: &mut Rng, out: &mut String) {
        if rng.chance(10) {
            for _ in 0..=rng.below(3) {
                out.push(rng.pick(&[' ', '\n', '\t', '\r']));
            }
        }
    }

    fn hex4(rng: &mut Rng, u: u32, out: &mut String) {
        let h = format!("{u:04x}");
        out.push_str("\\u");
        out.push_str(&if rng.chance(50) { h.to_uppercase() } else { h });
    }

    fn write_str(rng: &mut Rng, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' | '\\' if rng.chance(20) => hex4(rng, c as u32, out),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' if rng.chance(30) => out.push_str("\\/"),
                '\n' if rng.chance(70) => out.push_str("\\n"),
                '\t' if rng.chance(70) => out.push_str("\\t"),
                '\r' if rng.chance(70) => out.push_str("\\r"),
                '\u{8}' if rng.chance(70) => out.push_str("\\b"),
                '\u{c}' if rng.chance(70) => out.push_str("\\f"),
                c if (c as u32) < 0x20 => hex4(rng, c as u32, out),
                c if rng.chance(5) => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        hex4(rng, u32::from(*u), out);
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn write(rng: &mut Rng, j: &J, out: &mut String) {
        ws(rng, out);
        match j {
            J::Raw(r) => out.push_str(r),
            J::S(s) => write_str(rng, s, out),
            J::A(xs) => {
                out.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(rng, x, out);
                }
                ws(rng, out);
                out.push(']');
            }
            J::O(fs) => {
                out.push('{');
                for (i, (k, v)) in fs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(rng, out);
                    write_str(rng, k, out);
                    ws(rng, out);
                    out.push(':');
                    write(rng, v, out);
                }
                ws(rng, out);
                out.push('}');
            }
        }
        ws(rng, out);
    }

    fn to_text(rng: &mut Rng, j: &J) -> String {
        let mut out = String::new();
        write(rng, j, &mut out);
        out
    }

    const PIECES: &[&str] = &[
        "Hello",
        "world",
        " ",
        "\"quoted\"",
        "back\\slash",
        "é",
        "日本語",
        "🎉",
        "\u{0}",
        "\n",
        "\t",
        "\r\n",
        "\u{1f}",
        "\u{7f}",
        "\u{2028}",
        "</b>",
        "/",
        "{\"json\": [1]}",
        "\u{feff}",
        "ß",
        "x",
        "\u{b}",
        "\u{8}\u{c}",
    ];

    fn text(rng: &mut Rng) -> String {
        let mut t = String::new();
        if rng.chance(10) {
            return t;
        }
        if rng.chance(10) {
            t.push_str("  ");
        }
        for _ in 0..=rng.below(5) {
            t.push_str(rng.pick(PIECES));
        }
        if rng.chance(10) {
            t.push_str(" \n");
        }
        t
    }

    fn rtext(rng: &mut Rng) -> J {
        J::S(text(rng))
    }

    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "0.7",
        "0.70",
        "7e-1",
        "7E-1",
        "1.0",
        "1e0",
        "0.123456789012345678",
        "2",
        "-0",
        "-0.0",
        "-0.5",
        "100000000000000000000",
        "1e2",
        "0.1e1",
        "5e-324",
        "1.7976931348623157e308",
    ];

    // ----- requests -----

    fn text_block(rng: &mut Rng) -> J {
        let t = rtext(rng);
        obj(rng, vec![("type", Some(st("text"))), ("text", Some(t))])
    }

    fn content(rng: &mut Rng) -> J {
        if rng.chance(50) {
            rtext(rng)
        } else {
            J::A((0..rng.below(4)).map(|_| text_block(rng)).collect())
        }
    }

    fn gen_request(rng: &mut Rng) -> J {
        let msgs = (0..=rng.below(6))
            .map(|_| {
                let role = st(rng.pick(&["user", "assistant"]));
                let c = content(rng);
                obj(rng, vec![("role", Some(role)), ("content", Some(c))])
            })
            .collect();
        let fields = vec![
            ("model", maybe(rng, rtext)),
            (
                "max_tokens",
                maybe(rng, |r| {
                    // 0 is invalid (the general path answers 400): a mutation below.
                    raw(r.pick(&["1", "256", "4096", "18446744073709551615"]))
                }),
            ),
            ("messages", Some(J::A(msgs))),
            ("system", maybe(rng, content)),
            ("temperature", maybe(rng, |r| raw(r.pick(NUMBERS)))),
            ("top_p", maybe(rng, |r| raw(r.pick(NUMBERS)))),
            ("top_k", maybe(rng, |r| raw(r.pick(&["0", "40", "1.5"])))),
            (
                "stop_sequences",
                maybe(rng, |r| J::A((0..r.below(3)).map(|_| rtext(r)).collect())),
            ),
            ("stream", maybe(rng, |r| raw(r.pick(&["true", "false"])))),
            (
                "metadata",
                maybe(rng, |r| {
                    let u = maybe(r, rtext);
                    obj(r, vec![("user_id", u)])
                }),
            ),
        ];
        obj(rng, fields)
    }

    fn field_mut<'j>(j: &'j mut J, key: &str) -> Option<&'j mut J> {
        match j {
            J::O(fs) => fs.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn set_field(j: &mut J, key: &str, v: J) {
        if let J::O(fs) = j {
            fs.retain(|(k, _)| k != key);
            fs.push((key.to_string(), v));
        }
    }

    /// Shapes the fast path does not cover (or the general path rejects).
    fn mutate_request(rng: &mut Rng, j: &mut J) {
        match rng.below(16) {
            0 => set_field(
                j,
                "tools",
                J::A(vec![J::O(vec![
                    ("name".into(), st("get_weather")),
                    ("input_schema".into(), J::O(vec![("type".into(), st("object"))])),
                ])]),
            ),
            1 => set_field(
                j,
                "thinking",
                J::O(vec![("type".into(), st("enabled")), ("budget_tokens".into(), raw("1024"))]),
            ),
            2 => set_field(j, "unknown_field", raw("1")),
            3 | 4 => {
                let block = if rng.chance(50) {
                    J::O(vec![
                        ("type".into(), st("image")),
                        (
                            "source".into(),
                            J::O(vec![("type".into(), st("url")), ("url".into(), st("https://x/y.png"))]),
                        ),
                    ])
                } else {
                    J::O(vec![
                        ("type".into(), st("tool_result")),
                        ("tool_use_id".into(), st("toolu_1")),
                        ("content".into(), st("42")),
                    ])
                };
                let msg = J::O(vec![("role".into(), st("user")), ("content".into(), J::A(vec![block]))]);
                if let Some(J::A(msgs)) = field_mut(j, "messages") {
                    msgs.push(msg);
                }
            }
            5 => set_field(
                j,
                "system",
                J::A(vec![J::O(vec![
                    ("type".into(), st("text")),
                    ("text".into(), st("x")),
                    ("cache_control".into(), J::O(vec![("type".into(), st("ephemeral"))])),
                ])]),
            ),
            6 => set_field(j, "max_tokens", raw(rng.pick(&["0", "-1", "1.5", "\"256\"", "-0", "1e3", "true"]))),
            7 => {
                if let Some(J::A(msgs)) = field_mut(j, "messages") {
                    let c = rtext(rng);
                    msgs.push(J::O(vec![("role".into(), st(rng.pick(&["system", "tool", "User"]))), ("content".into(), c)]));
                }
            }
            8 => {
                if let Some(J::A(msgs)) = field_mut(j, "messages") {
                    msgs.push(J::O(vec![("role".into(), st("user")), ("content".into(), raw("5"))]));
                }
            }
            9 => {
                if let Some(J::A(msgs)) = field_mut(j, "messages") {
                    msgs.push(J::A(vec![st("user"), st("hi")]));
                }
            }
            10 => {
                if let Some(J::A(msgs)) = field_mut(j, "messages") {
                    msgs.push(J::O(vec![
                        ("role".into(), J::O(vec![("user".into(), raw("null"))])),
                        ("content".into(), st("hi")),
                    ]));
                }
            }
            11 => set_field(j, "stop_sequences", st("STOP")),
            12 => set_field(
                j,
                "metadata",
                J::O(vec![("user_id".into(), raw("5")), ("x".into(), raw("1"))]),
            ),
            13 => set_field(j, "top_k", raw(rng.pick(&["1e400", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"]))),
            14 => set_field(j, "temperature", st("0.5")),
            _ => {
                if let Some(J::A(msgs)) = field_mut(j, "messages") {
                    msgs.push(J::O(vec![
                        ("role".into(), st("assistant")),
                        ("content".into(), J::A(vec![J::O(vec![("text".into(), st("no type"))])])),
                    ]));
                }
            }
        }
    }

    /// What `body_for` sends on the general path: `translate_request`
    /// (`set_model(as_openai_request(..))`) serialised; `None` when it fails.
    fn general_request(body: &[u8], model: &str) -> Option<Vec<u8>> {
        let v: Value = serde_json::from_slice(body).ok()?;
        if !v.is_object() {
            return None;
        }
        let t = as_openai_request(ClientApi::Anthropic, &v).ok()?;
        Some(serde_json::to_vec(&set_model(t, model)).expect("a Value serialises"))
    }

    #[test]
    fn generated_requests_translate_as_the_general_path_does() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut covered, mut mutated_taken) = (0, 0);
        for i in 0..4000 {
            let mut j = gen_request(&mut rng);
            let mutated = rng.chance(30);
            if mutated {
                mutate_request(&mut rng, &mut j);
            }
            let body = to_text(&mut rng, &j);
            let model = if rng.chance(50) {
                "gpt-4o-mini"
            } else {
                "up\"stream/é"
            };
            let fast = request_to_openai(body.as_bytes(), model);
            let general = general_request(body.as_bytes(), model);
            match fast {
                Some(fast) => {
                    let general = general.unwrap_or_else(|| {
                        panic!("#{i}: fast path accepted what the general path rejects: {body}")
                    });
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&general),
                        "#{i}: {body}"
                    );
                    if mutated {
                        mutated_taken += 1;
                    } else {
                        covered += 1;
                    }
                }
                None => assert!(mutated, "#{i}: a covered shape was declined: {body}"),
            }
        }
        // The mutations are all outside the fast path (or harmless); most
        // inputs are covered.
        assert!(covered > 2500, "{covered}");
        assert_eq!(mutated_taken, 0);
    }

    #[test]
    fn the_bench_request_translates_with_borrowed_strings() {
        let body = br#"{"model":"claude","max_tokens":256,"messages":[{"role":"user","content":"Hello there, how are you?"}]}"#;
        assert_eq!(
            String::from_utf8_lossy(&request_to_openai(body, "bench-model").expect("covered")),
            r#"{"model":"bench-model","messages":[{"role":"user","content":"Hello there, how are you?"}],"max_tokens":256}"#
        );
        // The point of the typed path: strings without escapes are not
        // copied (a plain `Option<Cow<str>>` field would copy them).
        let m: Obj<Message> =
            serde_json::from_str(r#"{"role":"user","content":"plain"}"#).expect("parses");
        assert!(matches!(m.role.0, Cow::Borrowed("user")));
        assert!(matches!(m.content, Content::Text(Cow::Borrowed("plain"))));
        let m: Obj<Metadata> = serde_json::from_str(r#"{"user_id":"u"}"#).expect("parses");
        assert!(matches!(m.user_id, Some(Str(Cow::Borrowed("u")))));
        let m: Obj<Message> =
            serde_json::from_str(r#"{"role":"user","content":"a\nb"}"#).expect("parses");
        assert!(matches!(m.content, Content::Text(Cow::Owned(ref s)) if s == "a\nb"));
    }

    #[test]
    fn uncovered_requests_are_declined() {
        let cases: &[&str] = &[
            // tools, thinking, tool_choice
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#,
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":1024}}"#,
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"auto"}}"#,
            // image, tool_use, tool_result, thinking blocks, cache_control
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"1"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"s"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}]}"#,
            r#"{"model":"m","system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}],"messages":[]}"#,
            // unknown fields, at any level
            r#"{"model":"m","messages":[],"service_tier":"auto"}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi","name":"x"}]}"#,
            r#"{"model":"m","messages":[],"metadata":{"user_id":"u","x":1}}"#,
            // wrong types
            r#"{"model":"m","messages":{"role":"user","content":"hi"}}"#,
            r#"{"model":"m","messages":[["user","hi"]]}"#,
            r#"{"model":"m","messages":[{"role":{"user":null},"content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"system","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            r#"{"model":"m","messages":[{"role":"user"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"text":"no type"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[["text","x"]]}]}"#,
            r#"{"model":"m","messages":[],"system":5}"#,
            r#"{"model":"m","messages":[],"stop_sequences":"STOP"}"#,
            r#"{"model":"m","messages":[],"stream":"true"}"#,
            r#"{"model":"m","messages":[],"temperature":"0.5"}"#,
            r#"{"model":"m","messages":[],"metadata":{"user_id":5}}"#,
            r#"{"model":"m"}"#,
            r#"[{"model":"m","messages":[]}]"#,
            // invalid max_tokens (copied as they are by the general path)
            r#"{"model":"m","max_tokens":-1,"messages":[]}"#,
            r#"{"model":"m","max_tokens":1.5,"messages":[]}"#,
            r#"{"model":"m","max_tokens":"256","messages":[]}"#,
            r#"{"model":"m","max_tokens":-0,"messages":[]}"#,
            r#"{"model":"m","max_tokens":18446744073709551616,"messages":[]}"#,
            // invalid JSON for the general path, even in ignored fields
            r#"{"model":"m","messages":[],"top_k":1e400}"#,
            r#"{"model":"m","messages":[],"top_k":"\ud800"}"#,
            r#"{"model":"m","messages":[],"messages":[]}"#,
            r#"{"model":"m","messages":[]} x"#,
        ];
        for c in cases {
            assert!(request_to_openai(c.as_bytes(), "up").is_none(), "{c}");
        }
        let deep = format!(
            r#"{{"model":"m","messages":[],"top_k":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(general_request(deep.as_bytes(), "up").is_none());
        assert!(request_to_openai(deep.as_bytes(), "up").is_none());
    }

    // ----- responses -----

    fn gen_usage(rng: &mut Rng) -> J {
        let n = |r: &mut Rng| {
            maybe(r, |r| {
                raw(r.pick(&[
                    "0", "1", "2", "12", "6", "18", "100", "7.9", "3.0", "-1", "1e2",
                ]))
            })
        };
        let fields = vec![
            ("prompt_tokens", n(rng)),
            ("completion_tokens", n(rng)),
            ("total_tokens", n(rng)),
            (
                "prompt_tokens_details",
                maybe(rng, |r| {
                    let c = n(r);
                    obj(
                        r,
                        vec![("cached_tokens", c), ("audio_tokens", Some(raw("0")))],
                    )
                }),
            ),
            ("prompt_cache_hit_tokens", n(rng)),
            (
                "completion_tokens_details",
                maybe(rng, |r| obj(r, vec![("reasoning_tokens", Some(raw("0")))])),
            ),
            ("cost", maybe(rng, |_| raw("0.0001"))),
        ];
        obj(rng, fields)
    }

    fn gen_arguments(rng: &mut Rng) -> J {
        match rng.below(8) {
            0 => st(""),
            1 => st("  \n"),
            2 => st("not json"),
            3 => st("[1, 2]"),
            4 => st(r#"{"a": 1, "a": 2, "b": [1.50, -0, 1e2]}"#),
            _ => {
                let location = rtext(rng);
                let n = raw(rng.pick(NUMBERS));
                let inner = obj(
                    rng,
                    vec![
                        ("location", Some(location)),
                        ("n", Some(n)),
                        (
                            "nested",
                            Some(J::O(vec![("k".into(), raw("[true, null]"))])),
                        ),
                    ],
                );
                J::S(to_text(rng, &inner))
            }
        }
    }

    fn gen_tool_call(rng: &mut Rng) -> J {
        let function = {
            let name = maybe(rng, |r| st(r.pick(&["get_weather", "", "f\"n"])));
            let args = maybe(rng, gen_arguments);
            obj(rng, vec![("name", name), ("arguments", args)])
        };
        let id = maybe(rng, |r| st(r.pick(&["call_1", "", "call é/2"])));
        obj(
            rng,
            vec![
                ("id", id),
                ("type", Some(st("function"))),
                ("function", Some(function)),
            ],
        )
    }

    fn gen_response(rng: &mut Rng) -> (J, bool) {
        let message = {
            let fields = vec![
                ("role", Some(st("assistant"))),
                ("content", maybe(rng, rtext)),
                (
                    "refusal",
                    maybe(rng, |r| if r.chance(50) { st("") } else { rtext(r) }),
                ),
                (
                    "reasoning_content",
                    if rng.chance(20) {
                        maybe(rng, rtext)
                    } else {
                        None
                    },
                ),
                (
                    "reasoning",
                    if rng.chance(20) {
                        maybe(rng, rtext)
                    } else {
                        None
                    },
                ),
                (
                    "tool_calls",
                    if rng.chance(30) {
                        maybe(rng, |r| {
                            J::A((0..r.below(3)).map(|_| gen_tool_call(r)).collect())
                        })
                    } else {
                        None
                    },
                ),
                (
                    "annotations",
                    if rng.chance(20) {
                        Some(raw("[]"))
                    } else {
                        None
                    },
                ),
            ];
            obj(rng, fields)
        };
        let finish = maybe(rng, |r| {
            st(r.pick(&[
                "stop",
                "length",
                "tool_calls",
                "content_filter",
                "function_call",
                "weird",
            ]))
        });
        let message = if rng.chance(95) {
            Some(message)
        } else {
            maybe(rng, |_| raw("null"))
        };
        let choice = obj(
            rng,
            vec![
                ("index", Some(raw("0"))),
                ("message", message),
                ("logprobs", Some(raw("null"))),
                ("finish_reason", finish),
            ],
        );
        let mut choices = vec![choice];
        if rng.chance(5) {
            choices.push(J::O(vec![
                ("index".into(), raw("1")),
                ("message".into(), raw("null")),
            ]));
        }
        let id_kind = rng.below(20);
        let id = match id_kind {
            0 => None,
            1 => Some(raw("null")),
            2 => Some(st("")),
            _ => Some(J::S(format!("chatcmpl-{}", text(rng)))),
        };
        let fields = vec![
            ("id", id),
            ("object", Some(st("chat.completion"))),
            ("created", Some(raw("1700000000"))),
            (
                "model",
                if rng.chance(90) {
                    Some(rtext(rng))
                } else {
                    None
                },
            ),
            ("choices", Some(J::A(choices))),
            ("usage", maybe(rng, gen_usage)),
            ("system_fingerprint", maybe(rng, |_| st("fp_x"))),
            ("service_tier", maybe(rng, |_| st("default"))),
        ];
        (obj(rng, fields), id_kind >= 3)
    }

    fn mutate_response(rng: &mut Rng, j: &mut J) {
        match rng.below(8) {
            0 => set_field(j, "error", J::O(vec![("message".into(), st("boom"))])),
            1 => set_field(j, "prompt_filter_results", raw("[]")),
            2 => set_field(j, "model", raw("null")),
            3 => set_field(j, "choices", raw("[]")),
            4 => set_field(
                j,
                "choices",
                J::A(vec![J::O(vec![(
                    "message".into(),
                    J::O(vec![(
                        "content".into(),
                        raw(r#"[{"type":"text","text":"a"}]"#),
                    )]),
                )])]),
            ),
            5 => set_field(
                j,
                "usage",
                J::O(vec![
                    ("prompt_tokens".into(), st("12")),
                    ("x".into(), raw("1e400")),
                ]),
            ),
            6 => set_field(
                j,
                "choices",
                J::A(vec![J::O(vec![(
                    "message".into(),
                    J::O(vec![(
                        "tool_calls".into(),
                        raw(r#"[{"id":"c","function":{"name":"f","arguments":{"a":1}}}]"#),
                    )]),
                )])]),
            ),
            _ => set_field(j, "usage", raw("[1, 2, 3]")),
        }
    }

    #[test]
    fn generated_responses_translate_as_the_general_path_does() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let mut covered = 0;
        for i in 0..4000 {
            let (mut j, has_id) = gen_response(&mut rng);
            let mutated = rng.chance(20);
            if mutated {
                mutate_response(&mut rng, &mut j);
            }
            let body = to_text(&mut rng, &j);
            let general = serde_json::from_slice::<Value>(body.as_bytes())
                .ok()
                .and_then(|v| openai_response_to_anthropic(&v).ok())
                .map(|(an, usage)| (serde_json::to_vec(&an).expect("a Value serialises"), usage));
            match response_to_anthropic(body.as_bytes()) {
                Some((fast, usage)) => {
                    let (general, general_usage) = general.unwrap_or_else(|| {
                        panic!("#{i}: fast path accepted what the general path rejects: {body}")
                    });
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&general),
                        "#{i}: {body}"
                    );
                    assert_eq!(usage, general_usage, "#{i}: {body}");
                    // And through the vendor hook.
                    let (hooked, hooked_usage) = OpenAiVendor
                        .translate_response(ClientApi::Anthropic, body.as_bytes(), "m")
                        .expect("translates");
                    assert_eq!(&hooked[..], &fast[..]);
                    assert_eq!(hooked_usage, usage);
                    assert!(!mutated, "#{i}: a mutation was taken: {body}");
                    covered += 1;
                }
                None => assert!(
                    mutated || !has_id,
                    "#{i}: a covered shape was declined: {body}"
                ),
            }
        }
        assert!(covered > 2500, "{covered}");
    }

    #[test]
    fn uncovered_responses_are_declined() {
        let ok = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
        assert!(response_to_anthropic(ok.as_bytes()).is_some());
        let cases: &[&str] = &[
            r#"{"error":{"message":"boom","type":"server_error"}}"#,
            r#"{"id":"c","model":"m","choices":[]}"#,
            r#"{"model":"m","choices":[{"message":{"content":"hi"}}]}"#,
            r#"{"id":"","model":"m","choices":[{"message":{"content":"hi"}}]}"#,
            r#"{"id":"c","model":null,"choices":[{"message":{"content":"hi"}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"message":{"content":[{"type":"text","text":"hi"}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"message":{"content":"hi","audio":null}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"message":{"tool_calls":[{"id":"t","function":{"name":"f","arguments":{"a":1}}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[["hi"]]}"#,
            r#"{"id":"c","model":"m","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":"1"}}"#,
            r#"{"id":"c","model":"m","choices":[{"message":{"content":"hi"}}],"usage":[1,2,3]}"#,
            r#"{"id":"c","model":"m","choices":[{"message":{"content":"hi"}}],"usage":{"x":1e400}}"#,
            r#"{"id":"c","model":"m","choices":[{"message":{"content":"hi"}}],"extra":1}"#,
        ];
        for c in cases {
            assert!(response_to_anthropic(c.as_bytes()).is_none(), "{c}");
        }
    }

    // ----- streams -----

    fn gen_chunk(
        rng: &mut Rng,
        canon: bool,
        id: &Option<J>,
        model: &Option<J>,
        choices: J,
        usage: Option<J>,
    ) -> J {
        let fields = vec![
            ("id", id.clone()),
            ("object", Some(st("chat.completion.chunk"))),
            ("created", Some(raw("1700000000"))),
            ("model", model.clone()),
            ("system_fingerprint", maybe(rng, |_| st("fp_x"))),
            ("choices", Some(choices)),
            ("usage", usage),
            (
                "obfuscation",
                if rng.chance(20) {
                    Some(st("abc"))
                } else {
                    None
                },
            ),
        ];
        fields_of(rng, canon, fields)
    }

    /// An object in the given key order (the vendor's own form) or [`obj`]'s.
    fn fields_of(rng: &mut Rng, canon: bool, fields: Vec<(&str, Option<J>)>) -> J {
        if canon {
            J::O(
                fields
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
                    .collect(),
            )
        } else {
            obj(rng, fields)
        }
    }

    /// Compact JSON with serde_json's escapes: how vendors write events.
    fn compact(j: &J) -> String {
        match j {
            J::Raw(r) => r.clone(),
            J::S(s) => serde_json::to_string(s).unwrap_or_default(),
            J::A(xs) => format!("[{}]", xs.iter().map(compact).collect::<Vec<_>>().join(",")),
            J::O(fs) => format!(
                "{{{}}}",
                fs.iter()
                    .map(|(k, v)| format!("{}:{}", compact(&J::S(k.clone())), compact(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    fn gen_choice(rng: &mut Rng, canon: bool, delta: Option<J>, finish: Option<J>) -> J {
        let index = if rng.chance(3) { raw("1") } else { raw("0") };
        let index = if rng.chance(10) { None } else { Some(index) };
        let logprobs = if rng.chance(70) {
            Some(raw("null"))
        } else {
            None
        };
        fields_of(
            rng,
            canon,
            vec![
                ("index", index),
                ("delta", delta),
                ("logprobs", logprobs),
                ("finish_reason", Some(finish.unwrap_or_else(|| raw("null")))),
            ],
        )
    }

    struct StreamCase {
        model: &'static str,
        datas: Vec<String>,
        /// How the body ends after the payloads: clean (`finish(true)`) or not.
        clean_end: bool,
        /// Every payload is one the fast path must take.
        plain: bool,
    }

    fn gen_stream(rng: &mut Rng) -> StreamCase {
        let mut plain = true;
        // A third of the streams are written as the vendor writes them
        // (key order, no whitespace, serde_json's escapes), which the
        // canonical recognisers take.
        let canon = rng.chance(33);
        let id = match rng.below(20) {
            0 => None,
            1 => Some(st("")),
            2 => Some(raw("null")),
            3..=16 if canon => Some(J::S(format!("chatcmpl-{}", rng.below(1000)))),
            _ => Some(J::S(format!("chatcmpl-{}", text(rng)))),
        };
        // Without a usable id the general path generates one.
        plain &= matches!(&id, Some(J::S(s)) if !s.is_empty());
        let model = match rng.below(10) {
            0 => None,
            1 => Some(raw("null")),
            2..=6 if canon => Some(st("gpt-x")),
            _ => Some(rtext(rng)),
        };
        let client_model = rng.pick(&["", "claude-x", "m\"é"]);
        let mut js: Vec<J> = Vec::new();
        let usage_every = rng.chance(10);
        let usage = |rng: &mut Rng| {
            if usage_every {
                Some(gen_usage(rng))
            } else {
                None
            }
        };
        if rng.chance(80) {
            let d = obj(
                rng,
                vec![
                    ("role", Some(st("assistant"))),
                    ("content", Some(st(""))),
                    ("refusal", Some(raw("null"))),
                ],
            );
            let c = gen_choice(rng, canon, Some(d), None);
            let u = usage(rng);
            js.push(gen_chunk(rng, canon, &id, &model, J::A(vec![c]), u));
        }
        let mut tool = 0;
        for _ in 0..rng.below(8) {
            let delta = match rng.below(20) {
                0..=10 => J::O(vec![("content".into(), rtext(rng))]),
                11 | 12 => J::O(vec![("reasoning_content".into(), rtext(rng))]),
                13 => J::O(vec![("reasoning".into(), rtext(rng))]),
                14 => J::O(vec![
                    ("content".into(), raw("null")),
                    ("reasoning_content".into(), st("")),
                    ("reasoning".into(), rtext(rng)),
                ]),
                15 | 16 => {
                    plain = false;
                    tool += 1;
                    J::O(vec![(
                        "tool_calls".into(),
                        raw(&format!(
                            r#"[{{"index":{},"id":"call_{tool}","type":"function","function":{{"name":"f","arguments":""}}}}]"#,
                            tool % 2
                        )),
                    )])
                }
                17 => {
                    plain = false;
                    J::O(vec![(
                        "tool_calls".into(),
                        raw(r#"[{"index":0,"function":{"arguments":"{\"a\":"}}]"#),
                    )])
                }
                18 => {
                    plain = false;
                    J::O(vec![("refusal".into(), rtext(rng))])
                }
                _ => J::O(vec![]),
            };
            let c = gen_choice(rng, canon, Some(delta), None);
            let u = usage(rng);
            js.push(gen_chunk(rng, canon, &id, &model, J::A(vec![c]), u));
        }
        if rng.chance(80) {
            let fr = st(rng.pick(&[
                "stop",
                "length",
                "tool_calls",
                "content_filter",
                "function_call",
                "x",
            ]));
            let delta = if rng.chance(20) {
                Some(J::O(vec![("content".into(), rtext(rng))]))
            } else {
                Some(J::O(vec![]))
            };
            let c = gen_choice(rng, canon, delta, Some(fr));
            let u = usage(rng);
            js.push(gen_chunk(rng, canon, &id, &model, J::A(vec![c]), u));
        }
        if rng.chance(70) {
            let u = Some(gen_usage(rng));
            js.push(gen_chunk(rng, canon, &id, &model, J::A(vec![]), u));
        }
        // An end before any chunk has no id to close the message with.
        plain &= !js.is_empty();
        let mut datas: Vec<String> = js
            .iter()
            .map(|j| {
                let t = if canon { compact(j) } else { to_text(rng, j) };
                if rng.chance(5) {
                    format!("  {t} ")
                } else {
                    t
                }
            })
            .collect();
        if rng.chance(10) {
            plain = false;
            let odd = rng.pick(&[
                "",
                "  ",
                "not json",
                r#"{"error":{"message":"boom"}}"#,
                r#"{"error":"x"}"#,
                r#"{"id":"c","choices":[],"extra":1}"#,
                "[1]",
                r#"{"id":"c","choices":[],"usage":[1,2,3]}"#,
                r#"{"id":"c","choices":[{"delta":{"content":"x"},"index":0}],"usage":{"prompt_tokens":3,"total_tokens":0,"x":"\ud800"}}"#,
                "\u{b}{\"id\":\"c\",\"choices\":[]}",
            ]);
            let at = rng.below(datas.len() + 1);
            datas.insert(at, odd.to_string());
        }
        let clean_end = match rng.below(20) {
            0..=13 => {
                datas.push(if rng.chance(90) {
                    "[DONE]".into()
                } else {
                    " [DONE] ".into()
                });
                if rng.chance(10) {
                    let c = J::A(vec![gen_choice(
                        rng,
                        canon,
                        Some(J::O(vec![("content".into(), st("late"))])),
                        None,
                    )]);
                    let late = gen_chunk(rng, canon, &id, &model, c, None);
                    datas.push(if canon {
                        compact(&late)
                    } else {
                        to_text(rng, &late)
                    });
                }
                true
            }
            14..=17 => true,
            _ => false,
        };
        // The generator's choice index 1 (3 %) is fine for the fast path.
        StreamCase {
            model: client_model,
            datas,
            clean_end,
            plain,
        }
    }

    /// The message id in a `message_start` event.
    fn message_id(events: &[String]) -> Option<String> {
        const KEY: &str = r#"{"type":"message_start","message":{"id":""#;
        let e = events.iter().find_map(|e| e.split_once(KEY))?.1;
        Some(e[..e.find('"')?].to_string())
    }

    type Step = (Result<(), String>, Vec<String>, Usage);

    fn run_stream(case: &StreamCase, typed: bool) -> Vec<Step> {
        let mut s = OpenAiStream::new(ClientApi::Anthropic, case.model, typed);
        let mut steps = Vec::new();
        // One string per SSE event (events end with a blank line; compact
        // JSON data never contains one).
        let text = |out: BytesMut| -> Vec<String> {
            String::from_utf8_lossy(&out)
                .split_inclusive("\n\n")
                .map(str::to_string)
                .collect()
        };
        for data in &case.datas {
            let mut out = BytesMut::new();
            let r = s.push(
                &SseEvent {
                    event: String::new(),
                    data: data.clone(),
                },
                &mut out,
            );
            let failed = r.is_err();
            steps.push((r.map_err(|e| e.to_string()), text(out), s.usage()));
            if failed {
                return steps;
            }
        }
        let mut out = BytesMut::new();
        let r = s.finish(case.clean_end, &mut out);
        steps.push((r.map_err(|e| e.to_string()), text(out), s.usage()));
        steps
    }

    /// Replaces a generated message id (and the tool ids made from it) by a
    /// placeholder.
    fn normalise(steps: &mut [Step]) {
        let all: Vec<String> = steps.iter().flat_map(|s| s.1.clone()).collect();
        if let Some(id) = message_id(&all).filter(|id| id.starts_with("msg_")) {
            for s in steps.iter_mut() {
                for e in &mut s.1 {
                    *e = e.replace(&id, "msg_GENERATED");
                }
            }
        }
    }

    #[test]
    fn generated_streams_translate_as_the_general_path_does() {
        let mut rng = Rng(0xfeed_face_cafe_beef);
        let mut plain_cases = 0;
        let mut canonical = 0;
        for i in 0..3000 {
            let case = gen_stream(&mut rng);
            canonical += case
                .datas
                .iter()
                .filter(|d| canonical_text_chunk(d).is_some())
                .count();
            let mut fast = run_stream(&case, true);
            let mut general = run_stream(&case, false);
            // Generated ids ("msg_…"; the generator's start "chatcmpl-")
            // differ between any two streams.
            normalise(&mut fast);
            normalise(&mut general);
            assert_eq!(fast.len(), general.len(), "#{i}: {:?}", case.datas);
            for (k, (f, g)) in fast.iter().zip(&general).enumerate() {
                assert_eq!(f, g, "#{i} step {k}: {:?}", case.datas);
            }
            if case.plain {
                plain_cases += 1;
                // Every payload of a plain stream is the fast path's.
                let mut t = OpenAiToAnthropicStream::new(case.model);
                let mut raw_usage = Usage::default();
                let mut out = BytesMut::new();
                for data in &case.datas {
                    if data.trim() == "[DONE]" {
                        assert!(close_stream(&mut t, &mut out), "#{i}");
                    } else {
                        assert!(
                            push_chunk(&mut t, data, &mut raw_usage, &mut out),
                            "#{i}: declined {data}"
                        );
                    }
                }
            }
        }
        assert!(plain_cases > 1000, "{plain_cases}");
        // The canonical recogniser took part in the comparison.
        assert!(canonical > 300, "{canonical}");
    }

    #[test]
    fn canonical_text_chunks_are_openais_exact_forms() {
        let good: &[(&str, &str, &str, &str)] = &[
            (
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}"#,
                "chatcmpl-1",
                "gpt-4o-mini",
                "Hello",
            ),
            (
                r#"{"id":"c","object":"chat.completion.chunk","created":0,"model":"m","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"a\"b\u00e9"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x9"}"#,
                "c",
                "m",
                "a\"bé",
            ),
            (
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]}"#,
                "c",
                "m",
                "",
            ),
        ];
        for (data, id, model, text) in good {
            let got = canonical_text_chunk(data);
            assert_eq!(
                got.as_ref().map(|(i, m, t)| (*i, *m, t.as_ref())),
                Some((*id, *model, *text)),
                "{data}"
            );
        }
        let bad: &[&str] = &[
            // Leading zero: invalid JSON.
            r#"{"id":"c","object":"chat.completion.chunk","created":01,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#,
            // Escapes in the id, a raw control character in the text.
            r#"{"id":"c\u0041","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#,
            "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\u{1}\"},\"finish_reason\":null}]}",
            // A bad escape, an unterminated string.
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a\x"},"finish_reason":null}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a\"#,
            // A finish reason, a second choice, usage, trailing bytes, whitespace.
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{"content":"b"},"finish_reason":null}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":{"prompt_tokens":1}}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}x"#,
            r#"{"id":"c", "object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#,
            // Another delta field.
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a","refusal":null},"finish_reason":null}]}"#,
        ];
        for data in bad {
            assert!(canonical_text_chunk(data).is_none(), "{data}");
        }
    }

    #[test]
    fn uncovered_chunks_are_declined_without_a_change() {
        let mut t = OpenAiToAnthropicStream::new("m");
        let mut raw_usage = Usage::default();
        let mut out = BytesMut::new();
        // No id to start the message with: the general path generates one.
        assert!(!push_chunk(
            &mut t,
            r#"{"choices":[{"index":0,"delta":{"content":"a"}}]}"#,
            &mut raw_usage,
            &mut out
        ));
        assert!(!close_stream(&mut t, &mut out));
        assert!(push_chunk(
            &mut t,
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}"#,
            &mut raw_usage,
            &mut out
        ));
        let before = format!("{t:?}");
        let cases: &[&str] = &[
            r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":""}}]}}],"usage":{"prompt_tokens":5}}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"refusal":"no"}}],"usage":{"prompt_tokens":5}}"#,
            r#"{"error":{"message":"boom"}}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":"5"}}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"a","audio":{}}}]}"#,
            r#"{"id":"c","choices":[{"index":-1,"delta":{"content":"a"}}]}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":5,"x":"\ud800"}}"#,
            r#"{"id":"c","choices":[["x"]]}"#,
            "[DONE]",
            "",
        ];
        for c in cases {
            assert!(!push_chunk(&mut t, c, &mut raw_usage, &mut out), "{c}");
            assert_eq!(format!("{t:?}"), before, "{c}");
            assert_eq!(raw_usage, Usage::default(), "{c}");
        }
    }
}
