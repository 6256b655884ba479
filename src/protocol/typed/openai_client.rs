//! OpenAI client -> Anthropic vendor: typed fast paths (see the module docs
//! of `super`). The general translators they mirror are
//! `anthropic::openai_request_to_anthropic` ([`request_to_anthropic`]),
//! `anthropic::anthropic_response_to_openai` ([`response_to_openai`]) and,
//! for streams, the event parsing of `anthropic::AnthropicToOpenAiStream`:
//! [`stream_event`] (any event, typed) and the canonical-form recognisers
//! for Anthropic's most frequent events, which the stream state machine
//! tries first (its `push_typed` and the shared `on_*` handlers do the
//! translation for both paths).

use super::{count, push_json_str, Canon, Obj, Skip, Str};
use crate::protocol::anthropic::{finish_reason_for, generated_id, now_unix, RequestOptions};
use crate::protocol::types::Usage;
use serde::Deserialize;
use serde_json::{Number, Value};
use std::borrow::Cow;

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

/// The OpenAI request fields the fast path understands. Anything else (tools,
/// response_format, reasoning_effort, audio, …) fails the parse and the
/// general path runs.
// Some fields are only declared so that `deny_unknown_fields` accepts
// them; their values are not needed.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<'a> {
    // Replaced by the upstream model; its value does not matter.
    #[serde(default)]
    model: Option<Skip>,
    #[serde(borrow)]
    messages: Vec<Obj<Message<'a>>>,
    #[serde(default)]
    stream: Option<bool>,
    // Read by the proxy (include_usage), nothing to translate.
    #[serde(default)]
    stream_options: Option<Skip>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default, borrow)]
    stop: Option<Stop<'a>>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default, borrow)]
    user: Option<Str<'a>>,
    #[serde(default, borrow)]
    safety_identifier: Option<Str<'a>>,
    // OpenAI's stored-completion metadata has no Anthropic counterpart.
    #[serde(default)]
    metadata: Option<Skip>,
    // Without tools it changes nothing.
    #[serde(default)]
    parallel_tool_calls: Option<Skip>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

/// A message whose content is plain text (or absent).
// Some fields are only declared so that `deny_unknown_fields` accepts
// them; their values are not needed.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    #[serde(borrow)]
    role: Str<'a>,
    #[serde(default, borrow)]
    content: Option<Str<'a>>,
    // A participant name: Anthropic has none, the general path drops it.
    #[serde(default)]
    name: Option<Skip>,
}

#[derive(PartialEq, Clone, Copy)]
enum Role {
    User,
    Assistant,
}

struct Turn<'m> {
    role: Role,
    texts: Vec<&'m str>,
}

/// Stand-in for a missing first user turn (as the general path).
const PLACEHOLDER_USER_TEXT: &str = ".";

fn push_text_blocks(out: &mut String, texts: &[&str]) {
    // One plain text block collapses to a string, as in `collapse_content`.
    if let [only] = texts {
        push_json_str(out, only);
        return;
    }
    out.push('[');
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"type":"text","text":"#);
        push_json_str(out, t);
        out.push('}');
    }
    out.push(']');
}

fn push_f64(out: &mut String, f: f64) {
    // Through Value, as the general path serialises it (ryu, "1.0" style).
    out.push_str(&Value::from(f).to_string());
}

/// `openai_request_to_anthropic` + `set_model`, serialised, for requests
/// with plain-text messages and scalar options only.
pub fn request_to_anthropic(body: &[u8], opts: &RequestOptions, model: &str) -> Option<String> {
    if !super::is_object(body) {
        return None;
    }
    let req: Request<'_> = serde_json::from_str(super::utf8(body)?).ok()?;
    if req.n.is_some_and(|n| n != 1) {
        return None;
    }
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for m in &req.messages {
        let text = m.content.as_deref().filter(|t| !t.is_empty());
        let role = match m.role.as_ref() {
            "system" | "developer" => {
                system.extend(text);
                continue;
            }
            "user" => Role::User,
            "assistant" => Role::Assistant,
            // tool results, unknown roles (an error): the general path.
            _ => return None,
        };
        let Some(text) = text else { continue };
        match turns.last_mut() {
            Some(last) if last.role == role => last.texts.push(text),
            _ => turns.push(Turn {
                role,
                texts: vec![text],
            }),
        }
    }
    // A final assistant message is a prefill; Anthropic rejects trailing
    // whitespace there.
    if let Some(last) = turns.last_mut().filter(|t| t.role == Role::Assistant) {
        if let Some(t) = last.texts.last_mut() {
            let trimmed = t.trim_end();
            if trimmed.is_empty() {
                last.texts.pop();
            } else {
                *t = trimmed;
            }
        }
        if last.texts.is_empty() {
            turns.pop();
        }
    }
    if turns.first().is_none_or(|t| t.role != Role::User) {
        turns.insert(
            0,
            Turn {
                role: Role::User,
                texts: vec![PLACEHOLDER_USER_TEXT],
            },
        );
    }
    let max_tokens = match req.max_completion_tokens.or(req.max_tokens) {
        None => opts.default_max_tokens,
        Some(0) => return None,
        Some(n) => n,
    };
    let stop: Vec<&str> = match &req.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.as_ref()],
        Some(Stop::Many(v)) => v.iter().map(|s| s.as_ref()).collect(),
    };

    let mut out = String::with_capacity(body.len() + 64);
    out.push_str(r#"{"model":"#);
    push_json_str(&mut out, model);
    out.push_str(r#","max_tokens":"#);
    super::push_u64(&mut out, max_tokens);
    if !system.is_empty() {
        out.push_str(r#","system":"#);
        push_text_blocks(&mut out, &system);
    }
    out.push_str(r#","messages":["#);
    for (i, t) in turns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(match t.role {
            Role::User => r#"{"role":"user","content":"#,
            Role::Assistant => r#"{"role":"assistant","content":"#,
        });
        push_text_blocks(&mut out, &t.texts);
        out.push('}');
    }
    out.push(']');
    if stop.iter().any(|s| !s.is_empty()) {
        out.push_str(r#","stop_sequences":["#);
        for (i, s) in stop.iter().filter(|s| !s.is_empty()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, s);
        }
        out.push(']');
    }
    if !opts.drop_sampling {
        if let Some(t) = req.temperature {
            out.push_str(r#","temperature":"#);
            push_f64(&mut out, t.clamp(0.0, 1.0));
        }
        if let Some(p) = req.top_p {
            out.push_str(r#","top_p":"#);
            push_f64(&mut out, p.clamp(0.0, 1.0));
        }
        if let Some(k) = req.top_k {
            out.push_str(r#","top_k":"#);
            super::push_u64(&mut out, k);
        }
    }
    if let Some(s) = req.stream {
        out.push_str(if s {
            r#","stream":true"#
        } else {
            r#","stream":false"#
        });
    }
    // The general path takes `user` when present and a string, else
    // `safety_identifier`; an empty one means none.
    let user = req
        .user
        .as_deref()
        .or(req.safety_identifier.as_deref())
        .filter(|u| !u.is_empty());
    if let Some(u) = user {
        out.push_str(r#","metadata":{"user_id":"#);
        push_json_str(&mut out, u);
        out.push('}');
    }
    out.push('}');
    Some(out)
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Message2<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Str<'a>>,
    #[serde(default, borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    model: Str<'a>,
    #[serde(borrow)]
    content: Vec<Obj<Block<'a>>>,
    #[serde(default, borrow)]
    stop_reason: Option<Str<'a>>,
    #[serde(default)]
    usage: Option<Obj<AnthropicUsage>>,
}

// Some fields are only declared so that `deny_unknown_fields` accepts
// them; their values are not needed.
#[allow(dead_code)]
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    #[serde(default, borrow)]
    thinking: Option<Str<'a>>,
    // tool_use blocks go to the general path (arguments are re-serialised
    // from a Value there).
    #[serde(default)]
    input: Option<Skip>,
}

#[derive(Deserialize, Default)]
pub(crate) struct AnthropicUsage {
    #[serde(default)]
    pub(crate) input_tokens: Option<Number>,
    #[serde(default)]
    pub(crate) output_tokens: Option<Number>,
    #[serde(default)]
    pub(crate) cache_read_input_tokens: Option<Number>,
    #[serde(default)]
    pub(crate) cache_creation_input_tokens: Option<Number>,
}

impl AnthropicUsage {
    pub(crate) fn to_usage(&self) -> Usage {
        let prompt = count(self.input_tokens.as_ref())
            .saturating_add(count(self.cache_read_input_tokens.as_ref()))
            .saturating_add(count(self.cache_creation_input_tokens.as_ref()));
        let output = count(self.output_tokens.as_ref());
        Usage {
            prompt_tokens: prompt,
            completion_tokens: output,
            total_tokens: prompt.saturating_add(output),
            cached_tokens: count(self.cache_read_input_tokens.as_ref()),
            ..Default::default()
        }
    }
}

pub(crate) fn push_openai_usage(out: &mut impl super::TextOut, u: &Usage) {
    out.put(r#"{"prompt_tokens":"#);
    super::push_u64(out, u.prompt_tokens);
    out.put(r#","completion_tokens":"#);
    super::push_u64(out, u.completion_tokens);
    out.put(r#","total_tokens":"#);
    super::push_u64(out, u.total_tokens);
    out.put(r#","prompt_tokens_details":{"cached_tokens":"#);
    super::push_u64(out, u.cached_tokens);
    out.put("}}");
}

/// `anthropic_response_to_openai`, serialised, for answers made of text and
/// thinking blocks (no tool calls, not an error).
pub fn response_to_openai(body: &[u8]) -> Option<(String, Usage)> {
    if !super::is_object(body) {
        return None;
    }
    // Fields this path does not read are skipped unchecked; the UTF-8
    // check keeps bytes the general path would reject out of them.
    let text = std::str::from_utf8(body).ok()?;
    let resp: Message2<'_> = serde_json::from_str(text).ok()?;
    if resp.kind.as_deref() == Some("error") {
        return None;
    }
    let mut text: Cow<'_, str> = Cow::Borrowed("");
    let mut reasoning = String::new();
    for b in &resp.content {
        match b.kind.as_ref() {
            "text" => {
                let t = b.text.as_deref().unwrap_or_default();
                if text.is_empty() {
                    text = Cow::Borrowed(t);
                } else {
                    text.to_mut().push_str(t);
                }
            }
            "thinking" => reasoning.push_str(b.thinking.as_deref().unwrap_or_default()),
            "tool_use" => return None,
            _ => {}
        }
    }
    let usage = resp
        .usage
        .as_ref()
        .map(|u| u.to_usage())
        .unwrap_or_default();
    let id = match resp.id.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => Cow::Borrowed(id),
        None => Cow::Owned(generated_id("chatcmpl-")),
    };

    let mut out = String::with_capacity(body.len() + 128);
    out.push_str(r#"{"id":"#);
    push_json_str(&mut out, &id);
    out.push_str(r#","object":"chat.completion","created":"#);
    super::push_u64(&mut out, now_unix());
    out.push_str(r#","model":"#);
    push_json_str(&mut out, &resp.model);
    out.push_str(r#","choices":[{"index":0,"message":{"role":"assistant","content":"#);
    push_json_str(&mut out, &text);
    if !reasoning.is_empty() {
        out.push_str(r#","reasoning_content":"#);
        push_json_str(&mut out, &reasoning);
    }
    out.push_str(r#"},"logprobs":null,"finish_reason":"#);
    push_json_str(&mut out, finish_reason_for(resp.stop_reason.as_deref()));
    out.push_str(r#"}],"usage":"#);
    push_openai_usage(&mut out, &usage);
    out.push('}');
    Some((out, usage))
}

// ---------------------------------------------------------------------------
// Stream events
// ---------------------------------------------------------------------------

/// Any Anthropic stream event's data, with the fields the translator reads
/// for text and thinking answers. `AnthropicToOpenAiStream` handles it and
/// leaves tool blocks and errors to its `Value` path.
#[derive(Deserialize)]
pub(crate) struct StreamEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Str<'a>,
    #[serde(default, borrow)]
    pub(crate) message: Option<Obj<StartMessage<'a>>>,
    #[serde(default, borrow)]
    pub(crate) content_block: Option<Obj<EventPart<'a>>>,
    /// content_block_delta's delta, or message_delta's.
    #[serde(default, borrow)]
    pub(crate) delta: Option<Obj<EventPart<'a>>>,
    #[serde(default)]
    pub(crate) usage: Option<Obj<AnthropicUsage>>,
}

#[derive(Deserialize)]
pub(crate) struct StartMessage<'a> {
    #[serde(default, borrow)]
    pub(crate) id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(crate) model: Option<Str<'a>>,
    #[serde(default)]
    pub(crate) usage: Option<Obj<AnthropicUsage>>,
}

/// A `content_block` (content_block_start) or a `delta` (content_block_delta,
/// message_delta): the fields the translator reads from either.
#[derive(Deserialize)]
pub(crate) struct EventPart<'a> {
    #[serde(rename = "type", default, borrow)]
    pub(crate) kind: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(crate) text: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(crate) thinking: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(crate) stop_reason: Option<Str<'a>>,
}

/// A text delta exactly as Anthropic writes it,
/// `{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"…"}}`,
/// recognised by its fixed parts so that the commonest event of a stream
/// costs one string parse. Anything else (other key order, whitespace,
/// extra fields) returns `None` and takes [`stream_event`].
pub fn canonical_text_delta(data: &str) -> Option<Cow<'_, str>> {
    let mut c = Canon(data);
    if !c.lit(r#"{"type":"content_block_delta","index":"#) {
        return None;
    }
    c.int()?;
    if !c.lit(r#","delta":{"type":"text_delta","text":"#) {
        return None;
    }
    let text = c.string()?;
    (c.lit("}}") && c.done()).then_some(text)
}

/// A whole text-delta SSE event as Anthropic sends it,
/// `event: content_block_delta`, the [`canonical_text_delta`] data line
/// and the blank line, at the start of `text`: the text and the event's
/// length. (The string literal cannot hold a raw line break, so the data
/// line ends exactly where the recogniser stops.)
pub fn canonical_text_delta_event(text: &str) -> Option<(Cow<'_, str>, usize)> {
    let mut c = Canon(text);
    if !c.lit("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":") {
        return None;
    }
    c.int()?;
    if !c.lit(r#","delta":{"type":"text_delta","text":"#) {
        return None;
    }
    let t = c.string()?;
    c.lit("}}\n\n").then(|| (t, text.len() - c.0.len()))
}

/// A `message_start` as Anthropic writes it:
/// `{"type":"message_start","message":{"id":"…","type":"message","role":"assistant","model":"…","content":[],"stop_reason":null,"stop_sequence":null,"usage":{…}}}`:
/// the id, the model and the usage, with only the usage object parsed.
/// `None` for any other shape (an id or model with escapes included).
pub(crate) fn canonical_message_start(data: &str) -> Option<(&str, &str, AnthropicUsage)> {
    let mut c = Canon(data);
    if !c.lit(r#"{"type":"message_start","message":{"id":"#) {
        return None;
    }
    let id = c.plain_str()?;
    if !c.lit(r#","type":"message","role":"assistant","model":"#) {
        return None;
    }
    let model = c.plain_str()?;
    if !c.lit(r#","content":[],"stop_reason":null,"stop_sequence":null,"usage":"#) {
        return None;
    }
    let usage = c.0.strip_suffix("}}")?;
    if !usage.starts_with('{') {
        return None;
    }
    let usage: Obj<AnthropicUsage> = serde_json::from_str(usage).ok()?;
    Some((id, model, usage.0))
}

/// The closing `message_delta` as Anthropic writes it for a plain answer,
/// `{"type":"message_delta","delta":{"stop_reason":"…","stop_sequence":null},"usage":{"output_tokens":N}}`:
/// the stop reason and the output token count.
pub fn canonical_message_delta(data: &str) -> Option<(&str, u64)> {
    let mut c = Canon(data);
    if !c.lit(r#"{"type":"message_delta","delta":{"stop_reason":"#) {
        return None;
    }
    let reason = c.plain_str()?;
    if reason.is_empty() || !reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    if !c.lit(r#","stop_sequence":null},"usage":{"output_tokens":"#) {
        return None;
    }
    let n = c.int()?;
    (c.lit("}}") && c.done()).then_some((reason, n.parse().ok()?))
}

/// `{"type":"content_block_stop","index":N}` exactly as Anthropic writes it.
pub fn is_canonical_block_stop(data: &str) -> bool {
    is_index_then(data, r#"{"type":"content_block_stop","index":"#, "}")
}

/// The start of an empty text block, exactly as Anthropic writes it:
/// `{"type":"content_block_start","index":N,"content_block":{"type":"text","text":""}}`.
pub fn is_canonical_empty_text_start(data: &str) -> bool {
    is_index_then(
        data,
        r#"{"type":"content_block_start","index":"#,
        r#","content_block":{"type":"text","text":""}}"#,
    )
}

/// `data` is `prefix`, a JSON integer, `suffix`.
fn is_index_then(data: &str, prefix: &str, suffix: &str) -> bool {
    let mut c = Canon(data);
    c.lit(prefix) && c.int().is_some() && c.lit(suffix) && c.done()
}

/// Parses one event's data; `None` when it is not a JSON object of the
/// expected shape (the `Value` path then decides, errors included).
pub(crate) fn stream_event(data: &str) -> Option<StreamEvent<'_>> {
    if !super::is_object(data.as_bytes()) {
        return None;
    }
    serde_json::from_str(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::anthropic as general;
    use serde_json::json;

    /// xorshift64*: deterministic inputs without a property-testing crate.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        pub(crate) fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
        /// Text with the characters JSON escaping and trimming care about.
        pub(crate) fn text(&mut self) -> String {
            const PIECES: &[&str] = &[
                "hello",
                " ",
                "  ",
                "\n",
                "\t",
                "\"",
                "\\",
                "/",
                "é",
                "日本",
                "🦀",
                "\u{1}",
                "\u{7f}",
                "\u{2028}",
                "{\"a\":1}",
                "end ",
                "x",
            ];
            let n = self.below(6);
            (0..n)
                .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
                .collect()
        }
    }

    fn general_request(body: &[u8], opts: &RequestOptions, model: &str) -> Option<Vec<u8>> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let Value::Object(mut out) = general::openai_request_to_anthropic(&v, opts).ok()? else {
            return None;
        };
        out.insert("model".into(), model.into());
        serde_json::to_vec(&out).ok()
    }

    fn random_request(rng: &mut Rng) -> Value {
        const ROLES: &[&str] = &["system", "developer", "user", "assistant"];
        let messages: Vec<Value> = (0..rng.below(6))
            .map(|_| {
                let mut m = json!({"role": ROLES[rng.below(4) as usize]});
                match rng.below(10) {
                    0 => {}
                    1 => {
                        m["content"] = Value::Null;
                    }
                    _ => {
                        m["content"] = rng.text().into();
                    }
                }
                if rng.chance(10) {
                    m["name"] = "bob".into();
                }
                m
            })
            .collect();
        let candidates = [
            ("stream", Value::Bool(rng.chance(50))),
            ("stream_options", json!({"include_usage": true})),
            ("max_tokens", json!(rng.below(3) * 100)),
            ("max_completion_tokens", json!(rng.below(3) * 50)),
            ("temperature", json!(rng.below(30) as f64 / 10.0)),
            ("temperature", json!(rng.below(3))),
            ("top_p", json!(rng.below(12) as f64 / 10.0)),
            ("top_k", json!(rng.below(50))),
            ("stop", Value::String(rng.text())),
            ("stop", json!([rng.text(), rng.text()])),
            ("n", json!(rng.below(3))),
            ("user", Value::String(rng.text())),
            ("safety_identifier", Value::String(rng.text())),
            ("user", Value::Null),
            ("metadata", json!({"k": "v"})),
            ("parallel_tool_calls", Value::Bool(false)),
        ];
        let mut o = serde_json::Map::new();
        o.insert("model".into(), "gpt-4o".into());
        o.insert("messages".into(), Value::Array(messages));
        for (k, v) in candidates {
            if rng.chance(30) {
                o.insert(k.into(), v);
            }
        }
        Value::Object(o)
    }

    #[test]
    fn request_fast_path_matches_the_general_path() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut fast, mut errors) = (0, 0);
        for i in 0..5000 {
            let body = serde_json::to_vec(&random_request(&mut rng)).unwrap_or_default();
            let opts = RequestOptions {
                default_max_tokens: 1000 + i % 3,
                drop_sampling: i % 4 == 0,
            };
            let want = general_request(&body, &opts, "claude-x");
            match request_to_anthropic(&body, &opts, "claude-x") {
                Some(got) => {
                    fast += 1;
                    assert_eq!(
                        Some(got),
                        want.map(|w| String::from_utf8_lossy(&w).into_owned()),
                        "input {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                // Everything the fast path declines must be a request the
                // general path rejects or one with a field it does not cover.
                None => errors += usize::from(want.is_none()),
            }
        }
        // The generator mostly makes covered requests; a fast path that
        // declines everything must not pass.
        assert!(fast > 3000, "fast path took only {fast} of 5000");
        assert!(
            errors > 100,
            "the generator made only {errors} invalid requests"
        );
    }

    #[test]
    fn request_shapes_the_fast_path_leaves_to_the_general_path() {
        let opts = RequestOptions::default();
        for body in [
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []}),
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "a", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "assistant", "content": "x", "tool_calls": []}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "unknown": 1}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}),
            json!({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}),
            json!({"model": "m", "messages": "hi"}),
            json!([{"role": "user", "content": "hi"}]),
            // Derived structs would take an array for an object.
            json!({"model": "m", "messages": [["user", "hi"]]}),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            assert!(
                request_to_anthropic(&bytes, &opts, "c").is_none(),
                "fast path took {body}"
            );
        }
        // Values the general path's parse rejects, in fields the fast path
        // does not read.
        for raw in [
            r#"{"model":1e400,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","metadata":{"a":1e400},"messages":[{"role":"user","content":"hi"}]}"#,
        ] {
            assert!(serde_json::from_str::<Value>(raw).is_err());
            assert!(
                request_to_anthropic(raw.as_bytes(), &opts, "c").is_none(),
                "fast path took {raw}"
            );
        }
    }

    /// Both outputs with `created` (the clock) and generated ids cleared.
    fn normalised(bytes: &[u8], id_generated: bool) -> Value {
        let mut v: Value = serde_json::from_slice(bytes).unwrap_or_default();
        v["created"] = json!(0);
        if id_generated {
            v["id"] = json!("generated");
        }
        v
    }

    fn random_response(rng: &mut Rng) -> Value {
        let content: Vec<Value> = (0..rng.below(4))
            .map(|_| match rng.below(5) {
                0 => json!({"type": "thinking", "thinking": rng.text(), "signature": "sig"}),
                1 => json!({"type": "redacted_thinking", "data": "xyz"}),
                2 => json!({"type": "text", "text": rng.text(), "citations": null}),
                _ => json!({"type": "text", "text": rng.text()}),
            })
            .collect();
        let mut r = json!({"type": "message", "role": "assistant", "model": "claude-x", "content": content});
        if rng.chance(85) {
            r["id"] = json!(["msg_01", "", "msg_\"q"][rng.below(3) as usize]);
        }
        if rng.chance(90) {
            const STOPS: &[&str] = &[
                "end_turn",
                "max_tokens",
                "stop_sequence",
                "refusal",
                "pause_turn",
                "model_context_window_exceeded",
            ];
            r["stop_reason"] = json!(STOPS[rng.below(STOPS.len() as u64) as usize]);
        }
        r["stop_sequence"] = Value::Null;
        match rng.below(6) {
            0 => {}
            1 => r["usage"] = Value::Null,
            2 => r["usage"] = json!({"input_tokens": 3.0, "output_tokens": -1}),
            _ => {
                r["usage"] = json!({"input_tokens": rng.below(100), "output_tokens": rng.below(100),
                    "cache_read_input_tokens": rng.below(5), "cache_creation_input_tokens": rng.below(5)})
            }
        }
        r
    }

    #[test]
    fn response_fast_path_matches_the_general_path() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut fast = 0;
        for _ in 0..5000 {
            let resp = random_response(&mut rng);
            let body = serde_json::to_vec(&resp).unwrap_or_default();
            let Some((got, got_usage)) = response_to_openai(&body) else {
                continue;
            };
            fast += 1;
            let (want, want_usage) =
                general::anthropic_response_to_openai(&resp).unwrap_or_else(|e| panic!("{e}"));
            let want = serde_json::to_vec(&want).unwrap_or_default();
            let generated = resp["id"].as_str().is_none_or(str::is_empty);
            assert_eq!(
                normalised(got.as_bytes(), generated),
                normalised(&want, generated),
                "input {resp}"
            );
            assert_eq!(got_usage, want_usage, "input {resp}");
            if !generated {
                // Byte for byte, not just the same JSON value.
                let (got, want) = (got.as_str(), String::from_utf8_lossy(&want));
                let strip = |s: &str| {
                    let i = s.find(r#""created":"#).unwrap_or(0);
                    let j = s[i..].find(',').map_or(i, |j| i + j);
                    format!("{}{}", &s[..i], &s[j..])
                };
                assert_eq!(strip(got), strip(&want));
            }
        }
        assert!(fast > 4000, "fast path took only {fast} of 5000");
    }

    #[test]
    fn absurd_token_counts_saturate_instead_of_overflowing() {
        let resp = json!({"id": "msg_1", "type": "message", "model": "c",
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": u64::MAX, "cache_read_input_tokens": 5, "output_tokens": u64::MAX}});
        let body = serde_json::to_vec(&resp).unwrap_or_default();
        let (_, fast) = response_to_openai(&body).unwrap_or_default();
        let (_, general) =
            general::anthropic_response_to_openai(&resp).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fast, general);
        assert_eq!(fast.prompt_tokens, u64::MAX);
        assert_eq!(fast.total_tokens, u64::MAX);
    }

    #[test]
    fn response_shapes_the_fast_path_leaves_to_the_general_path() {
        for body in [
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
            json!({"model": "c", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}),
            json!({"model": "c", "content": [{"text": "no type"}]}),
            json!({"model": "c", "content": "text"}),
            json!({"content": [{"type": "text", "text": "no model"}]}),
            json!({"model": "c", "content": [], "usage": {"input_tokens": "3"}}),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            assert!(
                response_to_openai(&bytes).is_none(),
                "fast path took {body}"
            );
        }
    }

    #[test]
    fn canonical_text_deltas_are_recognised_exactly() {
        let ev = |t: &str| {
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": t}}).to_string()
        };
        for t in ["", "plain", "q\"uote", "back\\slash}}", "🦀\n", "\u{1}"] {
            assert_eq!(canonical_text_delta(&ev(t)).as_deref(), Some(t));
        }
        for other in [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","x":1}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"},"x":1}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}} "#,
            r#"{"type":"content_block_delta","index":,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","b":"c"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\x"}}"#,
            // Leading zeros are invalid JSON; so is a raw control character.
            r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}"#,
            "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\u{2}\"}}",
        ] {
            assert_eq!(canonical_text_delta(other), None, "{other}");
        }
    }

    #[test]
    fn canonical_text_delta_events_are_whole_events_only() {
        let data = r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"a\"b\nc"}}"#;
        let event = format!("event: content_block_delta\ndata: {data}\n\nevent: ping");
        let (t, len) = canonical_text_delta_event(&event).unwrap_or_else(|| panic!("not taken"));
        assert_eq!(
            (t.as_ref(), len),
            ("a\"b\nc", event.len() - "event: ping".len())
        );
        // Its data alone is the data recogniser's.
        assert_eq!(canonical_text_delta(data).as_deref(), Some("a\"b\nc"));
        for other in [
            format!("event: content_block_delta\r\ndata: {data}\r\n\r\n"),
            format!("event: content_block_delta\ndata: {data}\n"),
            format!("event: content_block_delta\ndata:{data}\n\n"),
            format!("data: {data}\n\n"),
            format!("event: content_block_delta\ndata: {data}\nid: 1\n\n"),
            format!("event: content_block_delta\ndata: {} \n\n", data),
        ] {
            assert!(canonical_text_delta_event(&other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn canonical_message_starts_are_recognised_exactly() {
        let start = |id: &str, model: &str, usage: &str| {
            format!(
                r#"{{"type":"message_start","message":{{"id":"{id}","type":"message","role":"assistant","model":"{model}","content":[],"stop_reason":null,"stop_sequence":null,"usage":{usage}}}}}"#
            )
        };
        let data = start(
            "msg_1",
            "claude-x",
            r#"{"input_tokens":12,"cache_read_input_tokens":3,"output_tokens":1,"service_tier":"standard"}"#,
        );
        let got = canonical_message_start(&data);
        let (id, model, u) = got.unwrap_or_else(|| panic!("not recognised"));
        assert_eq!((id, model), ("msg_1", "claude-x"));
        assert_eq!(u.to_usage().prompt_tokens, 15);
        for other in [
            start("msg_\\\"1", "claude", r#"{"input_tokens":1}"#),
            // A raw control character is invalid JSON.
            start("msg_\u{1}", "claude", r#"{"input_tokens":1}"#),
            start("msg_1", "clau\u{1f}de", r#"{"input_tokens":1}"#),
            start("msg_1", "claude", r#"{"input_tokens":"1"}"#),
            start("msg_1", "claude", r#"[1]"#),
            start("msg_1", "claude", r#"{"input_tokens":1},"x":1"#),
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"hi"}],"stop_reason":null,"stop_sequence":null,"usage":{}}}"#.to_string(),
        ] {
            assert!(canonical_message_start(&other).is_none(), "{other}");
        }
    }

    #[test]
    fn canonical_message_deltas_are_recognised_exactly() {
        let d = |reason: &str, usage: &str| {
            format!(
                r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}","stop_sequence":null}},"usage":{{{usage}}}}}"#
            )
        };
        assert_eq!(
            canonical_message_delta(&d("end_turn", r#""output_tokens":15"#)),
            Some(("end_turn", 15))
        );
        assert_eq!(
            canonical_message_delta(&d("max_tokens", r#""output_tokens":0"#)),
            Some(("max_tokens", 0))
        );
        for other in [
            d("end_turn", r#""output_tokens":15,"input_tokens":3"#),
            d("end_turn", r#""output_tokens":"15""#),
            d("end\"turn", r#""output_tokens":1"#),
            d("", r#""output_tokens":1"#),
            d("end_turn", r#""output_tokens":99999999999999999999999"#),
            r#"{"type":"message_delta","delta":{"stop_reason":null,"stop_sequence":null},"usage":{"output_tokens":1}}"#.to_string(),
        ] {
            assert_eq!(canonical_message_delta(&other), None, "{other}");
        }
    }

    #[test]
    fn canonical_block_stops_are_recognised_exactly() {
        assert!(is_canonical_block_stop(
            r#"{"type":"content_block_stop","index":12}"#
        ));
        for other in [
            r#"{"type":"content_block_stop","index":}"#,
            r#"{"type":"content_block_stop","index":1,"x":2}"#,
            r#"{"type":"content_block_stop","index":-1}"#,
            r#"{"type":"content_block_stop"}"#,
        ] {
            assert!(!is_canonical_block_stop(other), "{other}");
        }
        let start = |tail: &str| {
            format!(
                r#"{{"type":"content_block_start","index":0,"content_block":{{"type":"text","text":{tail}}}}}"#
            )
        };
        assert!(is_canonical_empty_text_start(&start(r#""""#)));
        assert!(!is_canonical_empty_text_start(&start(r#""a""#)));
        assert!(!is_canonical_empty_text_start(&start(
            r#""","citations":[]"#
        )));
    }

    #[test]
    fn stream_events_parse_or_are_left_to_the_general_path() {
        let kind = |d: &str| stream_event(d).map(|e| e.kind.to_string());
        assert_eq!(kind(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#).as_deref(), Some("content_block_delta"));
        assert_eq!(kind(r#"{"type":"ping"}"#).as_deref(), Some("ping"));
        // Shapes the typed parse cannot take: the Value path decides.
        assert_eq!(kind(r#"{"index":0}"#), None);
        assert_eq!(
            kind(r#"{"type":"message_delta","usage":{"output_tokens":"5"}}"#),
            None
        );
        assert_eq!(kind(r#"{"type":"message_start","message":{"id":7}}"#), None);
        assert_eq!(kind("[1]"), None);
        assert_eq!(kind("not json"), None);
    }
}
