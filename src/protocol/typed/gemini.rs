//! OpenAI client -> Gemini vendor: typed fast paths (see the module docs of
//! `super`). The general translators they mirror are
//! `gemini::openai_request_to_gemini` (serialised as `body_for` does: the
//! model is in the URL, not the body) and `gemini::gemini_response_to_openai`.

use super::{push_json_str, Obj, Skip, Str};
use crate::protocol::gemini::{generated_id, now_secs, RequestOptions};
use crate::protocol::types::Usage;
use serde::{Deserialize, Deserializer};
use serde_json::Number;
use std::borrow::Cow;

/// A field that counts as present whatever its value, `null` included
/// (the general path tests `get(key).is_some()` for some fields). Used with
/// `#[serde(default)]` so that absence gives `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Skip>, D::Error> {
    Skip::deserialize(d).map(Some)
}

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

/// The OpenAI request fields the fast path understands. Anything else
/// (tools, response_format, reasoning settings, `extra_body`, …) fails the
/// parse and the general path runs.
// Some fields are only declared so that `deny_unknown_fields` accepts
// them; their values are not needed.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<'a> {
    // The model goes in the URL path; its value does not matter here.
    #[serde(default)]
    model: Option<Skip>,
    #[serde(borrow)]
    messages: Vec<Obj<Message<'a>>>,
    // Chooses the URL (streamGenerateContent); nothing in the body.
    #[serde(default)]
    stream: Option<bool>,
    // Read by the proxy (include_usage), nothing to translate.
    #[serde(default)]
    stream_options: Option<Skip>,
    // Integers only: the general path rejects 100.0 (`as_u64`), and so
    // does serde's u64.
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    // Any JSON number, copied as written (the general path clones the
    // `Value`; `Number` parses and prints the same way).
    #[serde(default)]
    temperature: Option<Number>,
    #[serde(default)]
    top_p: Option<Number>,
    #[serde(default)]
    top_k: Option<Number>,
    #[serde(default)]
    presence_penalty: Option<Number>,
    #[serde(default)]
    frequency_penalty: Option<Number>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default, borrow)]
    stop: Option<Stop<'a>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop<'a> {
    One(#[serde(borrow)] Str<'a>),
    Many(#[serde(borrow)] Vec<Str<'a>>),
}

/// A message whose content is plain text (or absent). `tool_calls`,
/// `extra_content` (thought signatures) and the like fail the parse.
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
    // A participant name: Gemini has none, the general path drops it for
    // these roles.
    #[serde(default)]
    name: Option<Skip>,
}

/// Starts the `k` member of the object being built in `gc`.
fn key(gc: &mut String, k: &str) {
    gc.push_str(if gc.is_empty() { "{\"" } else { ",\"" });
    gc.push_str(k);
    gc.push_str("\":");
}

fn push_number(out: &mut String, n: &Number) {
    // `Number`'s Display is serde_json's serialisation (itoa / ryu).
    out.push_str(&n.to_string());
}

/// `openai_request_to_gemini`, serialised, for requests with plain-text
/// messages and scalar options only.
pub fn request_to_gemini(body: &[u8], opts: &RequestOptions) -> Option<String> {
    if !super::is_object(body) {
        return None;
    }
    let req: Request<'_> = serde_json::from_str(super::utf8(body)?).ok()?;
    // candidateCount must be positive (an error in the general path).
    if req.n == Some(0) {
        return None;
    }
    let mut system: Vec<&str> = Vec::new();
    // (is the model's turn, texts): consecutive same-role messages merge,
    // as in `push_turn`, since Gemini wants the roles to alternate.
    let mut turns: Vec<(bool, Vec<&str>)> = Vec::new();
    for m in &req.messages {
        // Gemini rejects empty text parts; the general path drops them.
        let text = m.content.as_deref().filter(|t| !t.is_empty());
        let model = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(text);
                continue;
            }
            "user" => false,
            "assistant" => true,
            // tool / function results, unknown roles (an error).
            _ => return None,
        };
        let Some(text) = text else { continue };
        match turns.last_mut() {
            Some((last, texts)) if *last == model => texts.push(text),
            _ => turns.push((model, vec![text])),
        }
    }
    // "at least one user or assistant message with content is required"
    if turns.is_empty() {
        return None;
    }

    let mut out = String::with_capacity(body.len() + 128);
    out.push_str(r#"{"contents":["#);
    for (i, (model, texts)) in turns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(if *model {
            r#"{"role":"model","parts":["#
        } else {
            r#"{"role":"user","parts":["#
        });
        for (j, t) in texts.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"text":"#);
            push_json_str(&mut out, t);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    if !system.is_empty() {
        // One system instruction: the texts joined with a blank line.
        out.push_str(r#","systemInstruction":{"parts":[{"text":"#);
        push_json_str(&mut out, &system.join("\n\n"));
        out.push_str("}]}");
    }

    // generationConfig, keys in the general path's insertion order.
    let mut gc = String::new();
    if let Some(n) = req
        .max_completion_tokens
        .or(req.max_tokens)
        .or(opts.default_max_tokens)
    {
        key(&mut gc, "maxOutputTokens");
        gc.push_str(&n.to_string());
    }
    for (name, v) in [
        ("temperature", &req.temperature),
        ("topP", &req.top_p),
        ("topK", &req.top_k),
        ("presencePenalty", &req.presence_penalty),
        ("frequencyPenalty", &req.frequency_penalty),
    ] {
        if let Some(v) = v {
            key(&mut gc, name);
            push_number(&mut gc, v);
        }
    }
    if let Some(seed) = req.seed {
        key(&mut gc, "seed");
        gc.push_str(&seed.to_string());
    }
    if let Some(n) = req.n {
        key(&mut gc, "candidateCount");
        gc.push_str(&n.to_string());
    }
    let stop: &[Str<'_>] = match &req.stop {
        None => &[],
        Some(Stop::One(s)) => std::slice::from_ref(s),
        Some(Stop::Many(v)) => v,
    };
    // Empty stop strings are dropped, and with them an empty list.
    if stop.iter().any(|s| !s.is_empty()) {
        key(&mut gc, "stopSequences");
        gc.push('[');
        for (i, s) in stop.iter().filter(|s| !s.is_empty()).enumerate() {
            if i > 0 {
                gc.push(',');
            }
            push_json_str(&mut gc, s);
        }
        gc.push(']');
    }
    if !gc.is_empty() {
        out.push_str(r#","generationConfig":"#);
        out.push_str(&gc);
        out.push('}');
    }
    out.push('}');
    Some(out)
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

/// A GenerateContentResponse with the fields the translation reads. Read
/// leniently (see the module docs of `super`): other fields are skipped.
/// Also each event of a stream, which is a whole response.
#[derive(Deserialize)]
pub(crate) struct Response<'a> {
    // Any `error` key, even null, makes the general path fail the answer.
    #[serde(default, deserialize_with = "present")]
    pub(crate) error: Option<Skip>,
    #[serde(default, borrow)]
    pub(crate) candidates: Option<Vec<Obj<Candidate<'a>>>>,
    // Outer `Some` when the key is there, null included: a stream resets
    // its usage on `"usageMetadata": null`.
    #[serde(default, deserialize_with = "nullable", rename = "usageMetadata")]
    pub(crate) usage_metadata: Option<Option<Obj<UsageMetadata>>>,
    #[serde(default, borrow, rename = "responseId")]
    pub(crate) response_id: Option<Str<'a>>,
}

/// `Some(None)` for null, so that `#[serde(default)]` keeps `None` for
/// absence.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub(crate) struct Candidate<'a> {
    // `as_u64` in the general path: a float or negative index means "the
    // position", which `Number::as_u64` reproduces.
    #[serde(default)]
    index: Option<Number>,
    #[serde(default, borrow)]
    content: Option<Obj<Content<'a>>>,
    #[serde(default, borrow, rename = "finishReason")]
    pub(crate) finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Option<Vec<Obj<Part<'a>>>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow, rename = "thoughtSignature")]
    thought_signature: Option<Str<'a>>,
    // Tool calls go to the general path (ids, arguments re-serialised from
    // a Value); any `functionCall` key, even null, makes a call there.
    #[serde(default, deserialize_with = "present", rename = "functionCall")]
    function_call: Option<Skip>,
}

#[derive(Deserialize)]
pub(crate) struct UsageMetadata {
    #[serde(default, rename = "promptTokenCount")]
    prompt: Option<Number>,
    #[serde(default, rename = "candidatesTokenCount")]
    candidates: Option<Number>,
    #[serde(default, rename = "thoughtsTokenCount")]
    thoughts: Option<Number>,
    #[serde(default, rename = "totalTokenCount")]
    total: Option<Number>,
    #[serde(default, rename = "cachedContentTokenCount")]
    cached: Option<Number>,
}

/// A count as `read_usage` reads it: an unsigned integer, else 0 (a float
/// counts 0 there, unlike [`super::count`]).
fn u64_of(n: &Option<Number>) -> Option<u64> {
    n.as_ref().and_then(Number::as_u64)
}

impl UsageMetadata {
    /// `read_usage`: (Usage, thinking tokens); thinking counts as output.
    pub(crate) fn read(&self) -> (Usage, u64) {
        let prompt = u64_of(&self.prompt).unwrap_or(0);
        let candidates = u64_of(&self.candidates).unwrap_or(0);
        let thoughts = u64_of(&self.thoughts).unwrap_or(0);
        // Wrapping, as the general path's `+` does in a release build.
        let output = candidates.wrapping_add(thoughts);
        let usage = Usage {
            prompt_tokens: prompt,
            completion_tokens: output,
            total_tokens: u64_of(&self.total).unwrap_or(prompt.wrapping_add(output)),
            cached_tokens: u64_of(&self.cached).unwrap_or(0),
            ..Default::default()
        };
        (usage, thoughts)
    }
}

/// `map_finish` without tool calls; `None` for the reasons the general
/// path turns into errors.
pub(crate) fn finish_reason(reason: Option<&str>) -> Option<&'static str> {
    reason.map_or(Some("stop"), crate::protocol::gemini::plain_finish)
}

/// A candidate's parts as `read_parts` reads them, without tool calls.
pub(crate) struct CandidateText<'a> {
    pub(crate) index: u64,
    pub(crate) text: Cow<'a, str>,
    pub(crate) reasoning: String,
    /// The last non-empty `thoughtSignature` of the candidate.
    pub(crate) signature: Option<&'a str>,
}

impl<'a> Candidate<'a> {
    /// `None` when a part is a function call (the general path's).
    pub(crate) fn read(&'a self, pos: usize) -> Option<CandidateText<'a>> {
        let mut text: Cow<'a, str> = Cow::Borrowed("");
        let mut reasoning = String::new();
        let mut signature: Option<&str> = None;
        let parts = self.content.as_ref().and_then(|c| c.parts.as_deref());
        for p in parts.unwrap_or_default() {
            if p.function_call.is_some() {
                return None;
            }
            if let Some(t) = p.text.as_deref() {
                if p.thought == Some(true) {
                    reasoning.push_str(t);
                } else if text.is_empty() {
                    text = Cow::Borrowed(t);
                } else {
                    text.to_mut().push_str(t);
                }
            }
            if let Some(s) = p.thought_signature.as_deref().filter(|s| !s.is_empty()) {
                signature = Some(s);
            }
        }
        let index = self
            .index
            .as_ref()
            .and_then(Number::as_u64)
            .unwrap_or(pos as u64);
        Some(CandidateText {
            index,
            text,
            reasoning,
            signature,
        })
    }
}

/// What [`canonical_text_chunk`] reads from a chunk.
pub(crate) struct CanonicalChunk<'a> {
    pub(crate) text: Cow<'a, str>,
    pub(crate) usage: UsageMetadata,
    pub(crate) response_id: Option<&'a str>,
}

/// A streamed text chunk in Gemini's exact form: one candidate with one
/// text part, `"role": "model"` and index 0, then `usageMetadata` (any
/// object) and optionally `modelVersion` and `responseId`, in that order;
/// a space after each colon or none (Gemini writes one, other servers
/// none), no other whitespace. Anything else (a thought or a finish
/// reason, other keys or order) returns `None` and takes [`parse`].
pub(crate) fn canonical_text_chunk(data: &str) -> Option<CanonicalChunk<'_>> {
    let mut c = super::Canon(data);
    let head = c.lit("{")
        && c.key("candidates")
        && c.lit("[{")
        && c.key("content")
        && c.lit("{")
        && c.key("parts")
        && c.lit("[{")
        && c.key("text");
    if !head {
        return None;
    }
    let text = c.string()?;
    let tail = c.lit("}],")
        && c.key("role")
        && c.lit("\"model\"},")
        && c.key("index")
        && c.lit("0}],")
        && c.key("usageMetadata")
        && c.0.starts_with('{');
    if !tail {
        return None;
    }
    // The usage object as the parse reads it (unknown keys skipped).
    let mut objects = serde_json::Deserializer::from_str(c.0).into_iter::<Obj<UsageMetadata>>();
    let usage = objects.next()?.ok()?.0;
    c.0 = &c.0[objects.byte_offset()..];
    if c.lit(",") {
        if c.key("modelVersion") {
            c.plain_str()?;
            if !c.lit(",") {
                return (c.lit("}") && c.done()).then_some(CanonicalChunk {
                    text,
                    usage,
                    response_id: None,
                });
            }
        }
        if !c.key("responseId") {
            return None;
        }
        let id = c.plain_str()?;
        return (c.lit("}") && c.done()).then_some(CanonicalChunk {
            text,
            usage,
            response_id: Some(id),
        });
    }
    (c.lit("}") && c.done()).then_some(CanonicalChunk {
        text,
        usage,
        response_id: None,
    })
}

/// Parses one response or stream event; `None` when it is not a JSON
/// object of the expected shape.
pub(crate) fn parse(data: &str) -> Option<Response<'_>> {
    if !super::is_object(data.as_bytes()) {
        return None;
    }
    serde_json::from_str(data).ok()
}

/// `gemini_response_to_openai`, serialised, for answers whose candidates
/// hold text and thought parts only (no function calls, no error, not a
/// blocked prompt).
pub fn response_to_openai(body: &[u8], model: &str) -> Option<(String, Usage)> {
    // Fields this path does not read are skipped unchecked; the UTF-8
    // check keeps bytes the general path would reject out of them.
    let resp = parse(std::str::from_utf8(body).ok()?)?;
    if resp.error.is_some() {
        return None;
    }
    // No candidates: a blocked prompt or an error, for the general path.
    let candidates = resp.candidates.as_deref().filter(|c| !c.is_empty())?;
    let (usage, reasoning_tokens) = resp
        .usage_metadata
        .as_ref()
        .and_then(Option::as_ref)
        .map(|u| u.read())
        .unwrap_or_default();

    let mut out = String::with_capacity(body.len() + 256);
    out.push_str(r#"{"id":"#);
    match resp.response_id.as_deref().filter(|s| !s.is_empty()) {
        Some(r) => push_json_str(&mut out, &format!("chatcmpl-{r}")),
        None => push_json_str(&mut out, &generated_id()),
    }
    out.push_str(r#","object":"chat.completion","created":"#);
    out.push_str(&now_secs().to_string());
    out.push_str(r#","model":"#);
    push_json_str(&mut out, model);
    out.push_str(r#","choices":["#);
    for (pos, cand) in candidates.iter().enumerate() {
        let CandidateText {
            index,
            text,
            reasoning,
            signature,
        } = cand.read(pos)?;
        let finish = finish_reason(cand.finish_reason.as_deref())?;
        if pos > 0 {
            out.push(',');
        }
        out.push_str(r#"{"index":"#);
        out.push_str(&index.to_string());
        out.push_str(r#","message":{"role":"assistant","content":"#);
        if text.is_empty() {
            out.push_str("null");
        } else {
            push_json_str(&mut out, &text);
        }
        if !reasoning.is_empty() {
            out.push_str(r#","reasoning_content":"#);
            push_json_str(&mut out, &reasoning);
        }
        if let Some(sig) = signature {
            out.push_str(r#","extra_content":{"google":{"thought_signature":"#);
            push_json_str(&mut out, sig);
            out.push_str("}}");
        }
        out.push_str(r#"},"logprobs":null,"finish_reason":"#);
        push_json_str(&mut out, finish);
        out.push('}');
    }
    out.push_str(r#"],"usage":{"prompt_tokens":"#);
    out.push_str(&usage.prompt_tokens.to_string());
    out.push_str(r#","completion_tokens":"#);
    out.push_str(&usage.completion_tokens.to_string());
    out.push_str(r#","total_tokens":"#);
    out.push_str(&usage.total_tokens.to_string());
    out.push_str(r#","prompt_tokens_details":{"cached_tokens":"#);
    out.push_str(&usage.cached_tokens.to_string());
    out.push_str(r#"},"completion_tokens_details":{"reasoning_tokens":"#);
    out.push_str(&reasoning_tokens.to_string());
    out.push_str("}}}");
    Some((out, usage))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::gemini as general;
    use serde_json::{json, Value};

    #[test]
    fn canonical_text_chunks_are_gemini_wire_forms_only() {
        let spaced = r#"{"candidates": [{"content": {"parts": [{"text": "The \"fox\""}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 8}]},"modelVersion": "gemini-2.5-flash","responseId": "mAitaL3yDs-DnvgP7cS2gQ0"}"#;
        let c = canonical_text_chunk(spaced).unwrap_or_else(|| panic!("spaced form"));
        assert_eq!(c.text, "The \"fox\"");
        assert_eq!(c.response_id, Some("mAitaL3yDs-DnvgP7cS2gQ0"));
        assert_eq!(c.usage.read().0.prompt_tokens, 8);
        let compact = spaced.replace("\": ", "\":");
        assert!(canonical_text_chunk(&compact).is_some());
        for other in [
            // A finish reason, a thought, a second part, another index.
            spaced.replace(r#""index": 0"#, r#""finishReason": "STOP","index": 0"#),
            spaced.replace(r#"{"text": "The"#, r#"{"thought": true,"text": "The"#),
            spaced.replace(r#"}],"role""#, r#"},{"text": "x"}],"role""#),
            spaced.replace(r#""index": 0"#, r#""index": 1"#),
            // Whitespace elsewhere, trailing bytes, no usage.
            spaced.replace(r#"}],"role""#, r#"}], "role""#),
            format!("{spaced} "),
            spaced.replace(r#""usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 8}]},"#, ""),
        ] {
            assert!(canonical_text_chunk(&other).is_none(), "{other}");
        }
    }

    /// xorshift64*: deterministic inputs without a property-testing crate.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
        fn pick<T: Clone>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize].clone()
        }
        /// Text with the characters JSON escaping cares about (and often
        /// none at all: empty text is dropped by both paths).
        fn text(&mut self) -> String {
            const PIECES: &[&str] = &[
                "hello",
                " ",
                "\n",
                "\t",
                "\"",
                "\\",
                "/",
                "é",
                "日本",
                "🦀",
                "\u{1}",
                "\u{1f}",
                "\u{7f}",
                "\u{2028}",
                "{\"a\":1}",
                "x",
            ];
            let n = self.below(5);
            (0..n).map(|_| self.pick(PIECES)).collect()
        }
    }

    /// The general path and `body_for`'s serialisation.
    fn general_request(body: &[u8], opts: &RequestOptions) -> Option<String> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let out = general::openai_request_to_gemini(&v, opts).ok()?;
        serde_json::to_string(&out).ok()
    }

    fn random_request(rng: &mut Rng) -> Value {
        const ROLES: &[&str] = &[
            "system",
            "developer",
            "user",
            "user",
            "assistant",
            "assistant",
        ];
        let messages: Vec<Value> = (0..rng.below(7))
            .map(|_| {
                let role = if rng.chance(2) {
                    "tool"
                } else {
                    rng.pick(ROLES)
                };
                let mut m = json!({"role": role});
                match rng.below(12) {
                    0 => {}
                    1 => m["content"] = Value::Null,
                    2 if rng.chance(20) => m["content"] = json!([{"type": "text", "text": "a"}]),
                    _ => m["content"] = rng.text().into(),
                }
                if rng.chance(10) {
                    m["name"] = "bob".into();
                }
                m
            })
            .collect();
        let num = |rng: &mut Rng| -> Value {
            match rng.below(7) {
                0 => json!(rng.below(3)),
                1 => json!(-(rng.below(3) as i64)),
                2 => Value::Null,
                3 if rng.chance(10) => json!("hot"),
                4 => json!(1e21),
                _ => json!(rng.below(30) as f64 / 10.0),
            }
        };
        let int = |rng: &mut Rng| -> Value {
            match rng.below(8) {
                0 => Value::Null,
                1 => json!(-1),
                2 if rng.chance(30) => json!(100.0),
                3 => json!(u64::MAX),
                _ => json!(rng.below(300)),
            }
        };
        let mut o = serde_json::Map::new();
        if rng.chance(95) {
            o.insert("model".into(), "gemini-x".into());
        }
        o.insert("messages".into(), Value::Array(messages));
        let candidates: Vec<(&str, Value)> = vec![
            ("stream", Value::Bool(rng.chance(50))),
            ("stream_options", json!({"include_usage": true})),
            ("max_tokens", int(rng)),
            ("max_completion_tokens", int(rng)),
            ("temperature", num(rng)),
            ("top_p", num(rng)),
            ("top_k", num(rng)),
            ("presence_penalty", num(rng)),
            ("frequency_penalty", num(rng)),
            ("seed", int(rng)),
            ("n", json!(rng.below(3))),
            ("n", Value::Null),
            ("stop", Value::String(rng.text())),
            ("stop", json!([rng.text(), rng.text()])),
            ("stop", json!([])),
            ("stop", Value::Null),
        ];
        for (k, v) in candidates {
            if rng.chance(25) {
                o.insert(k.into(), v);
            }
        }
        if rng.chance(1) {
            o.insert("stop".into(), json!([1]));
        }
        Value::Object(o)
    }

    #[test]
    fn request_fast_path_matches_the_general_path() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut fast, mut invalid) = (0, 0);
        for i in 0..6000 {
            let body = serde_json::to_vec(&random_request(&mut rng)).unwrap_or_default();
            let opts = RequestOptions {
                default_max_tokens: (i % 3 != 0).then_some(4096 + i % 2),
            };
            let want = general_request(&body, &opts);
            match request_to_gemini(&body, &opts) {
                Some(got) => {
                    fast += 1;
                    // Byte for byte.
                    assert_eq!(Some(got), want, "input {}", String::from_utf8_lossy(&body));
                }
                // What the fast path declines must be invalid or a shape it
                // does not cover; count the invalid ones.
                None => invalid += usize::from(want.is_none()),
            }
        }
        assert!(fast > 2500, "fast path took only {fast} of 6000");
        assert!(
            invalid > 300,
            "the generator made only {invalid} invalid requests"
        );
    }

    #[test]
    fn request_shapes_the_fast_path_leaves_to_the_general_path() {
        let opts = RequestOptions::default();
        let hi = json!([{"role": "user", "content": "hi"}]);
        for body in [
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}]}),
            json!({"model": "m", "messages": hi, "tools": [{"type": "function", "function": {"name": "f"}}]}),
            json!({"model": "m", "messages": hi, "tool_choice": "none"}),
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "a", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x", "tool_calls": []}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x", "extra_content": {"google": {"thought_signature": "s"}}}]}),
            json!({"model": "m", "messages": hi, "response_format": {"type": "json_object"}}),
            json!({"model": "m", "messages": hi, "reasoning_effort": "low"}),
            json!({"model": "m", "messages": hi, "extra_body": {"google": {"cached_content": "c"}}}),
            json!({"model": "m", "messages": hi, "unknown": 1}),
            json!({"model": "m", "messages": hi, "temperature": "hot"}),
            json!({"model": "m", "messages": hi, "max_tokens": 100.0}),
            json!({"model": "m", "messages": hi, "seed": 1.5}),
            json!({"model": "m", "messages": hi, "n": 0}),
            json!({"model": "m", "messages": hi, "stop": [null]}),
            json!({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}),
            json!({"model": "m", "messages": [{"role": "system", "content": "only system"}]}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": "hi"}),
            json!({"model": "m"}),
            json!([{"role": "user", "content": "hi"}]),
            // Derived structs would take arrays for objects.
            json!({"model": "m", "messages": [["user", "hi"]]}),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            assert!(
                request_to_gemini(&bytes, &opts).is_none(),
                "fast path took {body}"
            );
        }
        // Values the general path's parse rejects, in fields the fast path
        // does not read.
        for raw in [
            r#"{"model":1e400,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","stream_options":{"a":1e400},"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi","name":[1e400]}]}"#,
        ] {
            assert!(serde_json::from_str::<Value>(raw).is_err());
            assert!(
                request_to_gemini(raw.as_bytes(), &opts).is_none(),
                "fast path took {raw}"
            );
        }
    }

    /// `created` (the clock) cleared, and the id when it was generated.
    fn normalised(bytes: &[u8], id_generated: bool) -> Value {
        let mut v: Value = serde_json::from_slice(bytes).unwrap_or_default();
        v["created"] = json!(0);
        if id_generated {
            v["id"] = json!("generated");
        }
        v
    }

    fn random_part(rng: &mut Rng) -> Value {
        let mut p = match rng.below(8) {
            0 => json!({"text": rng.text(), "thought": true}),
            1 => json!({"text": rng.text(), "thought": false}),
            2 => json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}}),
            3 => json!({"text": Value::Null}),
            4 if rng.chance(10) => json!({"functionCall": {"name": "f", "args": {}}}),
            _ => json!({"text": rng.text()}),
        };
        if rng.chance(15) {
            p["thoughtSignature"] = json!(rng.pick(&["sig\"1", "", "c2ln"]));
        }
        p
    }

    fn random_candidate(rng: &mut Rng) -> Value {
        let mut c = json!({});
        match rng.below(10) {
            0 => {}
            1 => c["content"] = Value::Null,
            2 => c["content"] = json!({"role": "model"}),
            _ => {
                let parts: Vec<Value> = (0..rng.below(4)).map(|_| random_part(rng)).collect();
                c["content"] = json!({"parts": parts, "role": "model"});
            }
        }
        if rng.chance(90) {
            const REASONS: &[&str] = &[
                "STOP",
                "STOP",
                "MAX_TOKENS",
                "SAFETY",
                "RECITATION",
                "LANGUAGE",
                "OTHER",
                "BLOCKLIST",
                "PROHIBITED_CONTENT",
                "SPII",
                "IMAGE_SAFETY",
                "MALFORMED_FUNCTION_CALL",
                "FINISH_REASON_UNSPECIFIED",
            ];
            c["finishReason"] = json!(rng.pick(REASONS));
        } else if rng.chance(50) {
            c["finishReason"] = Value::Null;
        }
        match rng.below(6) {
            0 => {}
            1 => c["index"] = json!(1.5),
            2 => c["index"] = json!(7),
            _ => c["index"] = json!(0),
        }
        if rng.chance(10) {
            c["safetyRatings"] =
                json!([{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]);
        }
        c
    }

    /// A GenerateContentResponse (also a stream event): mostly text and
    /// thought parts, sometimes calls, errors, blocked prompts, odd types.
    pub(crate) fn random_response(rng: &mut Rng) -> Value {
        let n = if rng.chance(5) {
            0
        } else {
            1 + rng.below(10) / 8
        };
        let candidates: Vec<Value> = (0..n).map(|_| random_candidate(rng)).collect();
        let mut r = json!({"candidates": candidates});
        let count = |rng: &mut Rng| -> Value {
            match rng.below(8) {
                0 => Value::Null,
                1 => json!(2.0),
                2 => json!(-3),
                _ => json!(rng.below(1000)),
            }
        };
        match rng.below(6) {
            0 => {}
            1 => r["usageMetadata"] = Value::Null,
            _ => {
                let mut u = json!({});
                for k in [
                    "promptTokenCount",
                    "candidatesTokenCount",
                    "thoughtsTokenCount",
                    "totalTokenCount",
                    "cachedContentTokenCount",
                ] {
                    if rng.chance(70) {
                        u[k] = count(rng);
                    }
                }
                if rng.chance(20) {
                    u["promptTokensDetails"] = json!([{"modality": "TEXT", "tokenCount": 3}]);
                }
                r["usageMetadata"] = u;
            }
        }
        if rng.chance(80) {
            r["responseId"] = json!(rng.pick(&["abc123", "", "q\"uo\\te", "日本"]));
        }
        if rng.chance(50) {
            r["modelVersion"] = json!("gemini-2.5-flash");
        }
        if n == 0 && rng.chance(50) {
            r["promptFeedback"] = json!({"blockReason": "SAFETY"});
        }
        if rng.chance(2) {
            r["error"] = json!({"code": 500, "message": "x"});
        }
        r
    }

    #[test]
    fn response_fast_path_matches_the_general_path() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut fast = 0;
        for _ in 0..6000 {
            let resp = random_response(&mut rng);
            let body = serde_json::to_vec(&resp).unwrap_or_default();
            let Some((got, got_usage)) = response_to_openai(&body, "client-model") else {
                continue;
            };
            fast += 1;
            let (want, want_usage) = general::gemini_response_to_openai(&resp, "client-model")
                .unwrap_or_else(|e| panic!("{e}: input {resp}"));
            let want = serde_json::to_string(&want).unwrap_or_default();
            let generated = resp["responseId"].as_str().is_none_or(str::is_empty);
            assert_eq!(
                normalised(got.as_bytes(), generated),
                normalised(want.as_bytes(), generated),
                "input {resp}"
            );
            assert_eq!(got_usage, want_usage, "input {resp}");
            if !generated {
                // Byte for byte, not just the same JSON value.
                let strip = |s: &str| {
                    let i = s.find(r#""created":"#).unwrap_or(0);
                    let j = s[i..].find(',').map_or(i, |j| i + j);
                    format!("{}{}", &s[..i], &s[j..])
                };
                assert_eq!(strip(&got), strip(&want), "input {resp}");
            }
        }
        assert!(fast > 4000, "fast path took only {fast} of 6000");
    }

    #[test]
    fn response_shapes_the_fast_path_leaves_to_the_general_path() {
        let text = json!({"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"});
        for body in [
            json!({"error": {"code": 429, "message": "busy", "status": "RESOURCE_EXHAUSTED"}}),
            json!({"error": null, "candidates": [text]}),
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"functionCall": null}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "MALFORMED_FUNCTION_CALL"}]}),
            json!({"candidates": [], "promptFeedback": {"blockReason": "SAFETY"}}),
            json!({"candidates": []}),
            json!({}),
            json!({"candidates": [text], "usageMetadata": {"promptTokenCount": "3"}}),
            json!({"candidates": [{"content": {"parts": [{"text": 5}]}}]}),
            json!({"candidates": [{"content": {"parts": [["hi"]]}}]}),
            json!({"candidates": [["hi"]]}),
            json!({"candidates": [text], "usageMetadata": [1, 2]}),
            json!([text]),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            assert!(
                response_to_openai(&bytes, "m").is_none(),
                "fast path took {body}"
            );
        }
        // Not UTF-8 in a field the fast path skips.
        let mut bad =
            br#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"modelVersion":"x"#.to_vec();
        bad.extend_from_slice(b"\xff\"}");
        assert!(response_to_openai(&bad, "m").is_none());
    }

    #[test]
    fn the_benchmark_answer_is_translated_by_the_fast_path() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"Hello from the benchmark mock"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":6,"totalTokenCount":18},"modelVersion":"bench-gemini","responseId":"bench"}"#;
        let (out, usage) = response_to_openai(body, "bench-gemini").unwrap_or_default();
        assert!(out.starts_with(r#"{"id":"chatcmpl-bench","object":"chat.completion","created":"#));
        assert!(out.ends_with(r#","model":"bench-gemini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark mock"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#), "{out}");
        assert_eq!(usage.total_tokens, 18);
        let req = br#"{"model":"bench-gemini","messages":[{"role":"user","content":"Hello there, how are you?"}]}"#;
        assert_eq!(
            request_to_gemini(
                req,
                &RequestOptions {
                    default_max_tokens: Some(4096)
                }
            )
            .as_deref(),
            Some(
                r#"{"contents":[{"role":"user","parts":[{"text":"Hello there, how are you?"}]}],"generationConfig":{"maxOutputTokens":4096}}"#
            )
        );
    }
}
