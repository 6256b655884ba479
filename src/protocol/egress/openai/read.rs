//! Reading OpenAI answers and error bodies (shared with the chunk decoder).

use crate::protocol::chat::{
    generated_id, id_or_new, now_unix, Answer, ChatError, ErrorKind, Family, Finish, Part,
    Signature, Str, Text, ToolCall, ToolKind, Usage,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

use crate::protocol::json::OneOrList;
pub(super) use crate::protocol::json::S;

pub(super) use crate::protocol::json::Count;

#[derive(Deserialize, Default)]
pub(crate) struct UsageW {
    pub(super) prompt_tokens: Option<Count>,
    pub(super) completion_tokens: Option<Count>,
    pub(super) total_tokens: Option<Count>,
    pub(super) prompt_tokens_details: Option<PromptDetails>,
    pub(super) completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's name for cache hits.
    pub(super) prompt_cache_hit_tokens: Option<Count>,
}

#[derive(Deserialize, Default)]
pub(super) struct PromptDetails {
    pub(super) cached_tokens: Option<Count>,
}

#[derive(Deserialize, Default)]
pub(super) struct CompletionDetails {
    pub(super) reasoning_tokens: Option<Count>,
}

pub(super) fn n(c: Option<Count>) -> u64 {
    c.map_or(0, |c| c.0)
}

impl UsageW {
    pub(crate) fn read(&self) -> Usage {
        let prompt = n(self.prompt_tokens);
        let completion = n(self.completion_tokens);
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: Usage::total_or_sum(n(self.total_tokens), prompt, completion),
            cached_tokens: n(cached).min(prompt),
            cache_write_tokens: 0,
            reasoning_tokens: n(self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)),
            cache_write_1h_tokens: 0,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct ExtraW<'a> {
    pub(super) google: Option<GoogleW<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct GoogleW<'a> {
    pub(super) thought_signature: Option<S<'a>>,
}

pub(super) fn gemini_sig<'a>(e: Option<ExtraW<'a>>) -> Option<Signature<'a>> {
    e?.google?
        .thought_signature
        .map(|s| Signature::new(Family::Gemini, s.0))
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct CallW<'a> {
    pub(super) id: Option<S<'a>>,
    #[serde(rename = "type")]
    pub(super) kind: Option<S<'a>>,
    pub(super) function: Option<FnW<'a>>,
    pub(super) custom: Option<FnW<'a>>,
    pub(super) extra_content: Option<ExtraW<'a>>,
    pub(super) index: Option<u64>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct FnW<'a> {
    pub(super) name: Option<S<'a>>,
    pub(super) arguments: Option<&'a RawValue>,
    pub(super) input: Option<S<'a>>,
}

/// Arguments as text: the JSON string's content, or an object's JSON text
/// (some servers send the object).
pub(super) fn args_text<'a>(a: Option<&'a RawValue>) -> Str<'a> {
    match a {
        Some(a) if a.get().starts_with('"') => serde_json::from_str::<S<'a>>(a.get())
            .map(|s| s.0)
            .unwrap_or_default(),
        Some(a) if a.get() != "null" => Cow::Borrowed(a.get()),
        _ => Cow::Borrowed(""),
    }
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct TextPartW<'a> {
    pub(super) text: Option<S<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct MessageW<'a> {
    pub(super) content: Option<OneOrList<'a, Vec<TextPartW<'a>>>>,
    pub(super) reasoning_content: Option<S<'a>>,
    pub(super) reasoning: Option<S<'a>>,
    pub(super) refusal: Option<S<'a>>,
    pub(super) tool_calls: Option<Vec<CallW<'a>>>,
    pub(super) function_call: Option<FnW<'a>>,
    pub(super) extra_content: Option<ExtraW<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct ChoiceW<'a> {
    pub(super) message: Option<MessageW<'a>>,
    pub(super) finish_reason: Option<S<'a>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(super) struct CompletionW<'a> {
    pub(super) id: Option<S<'a>>,
    pub(super) model: Option<S<'a>>,
    pub(super) created: Option<Count>,
    pub(super) choices: Option<Vec<ChoiceW<'a>>>,
    pub(super) usage: Option<UsageW>,
    pub(super) error: Option<&'a RawValue>,
}

/// OpenAI's finish word; `stop` after tool calls means tool calls, after a
/// refusal a refusal.
pub(super) fn finish(word: &str, calls: bool, refused: bool) -> Finish {
    match word {
        "stop" | "end_turn" if calls => Finish::ToolCalls,
        "stop" if refused => Finish::Refusal,
        "stop" => Finish::Stop,
        "length" | "max_tokens" => Finish::Length,
        "tool_calls" | "function_call" => Finish::ToolCalls,
        "content_filter" => Finish::ContentFilter,
        other => Finish::Other(other.to_string()),
    }
}

pub(super) fn tool_call<'a>(c: CallW<'a>, fallback: usize) -> ToolCall<'a> {
    let custom = c.kind.as_ref().is_some_and(|k| k.0 == "custom") || c.custom.is_some();
    let f = if custom { c.custom } else { c.function };
    let (name, arguments) = match f {
        Some(f) if custom => (f.name, f.input.map(|i| i.0).unwrap_or_default()),
        Some(f) => (f.name, args_text(f.arguments)),
        None => (None, Cow::Borrowed("")),
    };
    ToolCall {
        id: c
            .id
            .map(|s| s.0)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| Cow::Owned(format!("call_{fallback}_{}", generated_id("")))),
        name: name.map(|s| s.0).unwrap_or_default(),
        kind: if custom {
            ToolKind::Custom
        } else {
            ToolKind::Function
        },
        arguments,
        signature: gemini_sig(c.extra_content),
    }
}

pub(super) fn decode_answer(body: &[u8]) -> Result<Answer<'_>, ChatError> {
    let c: CompletionW<'_> = crate::protocol::json::from_body(body)
        .map_err(|e| ChatError::upstream(format!("malformed OpenAI answer: {e}")))?;
    if let Some(e) = c.error.filter(|e| e.get() != "null") {
        return Err(decode_error(
            200,
            format!("{{\"error\":{}}}", e.get()).as_bytes(),
        ));
    }
    let choice = c
        .choices
        .and_then(|v| v.into_iter().next())
        .ok_or_else(|| ChatError::upstream("OpenAI answer has no choices"))?;
    let mut parts = Vec::with_capacity(2);
    let mut calls = false;
    let mut refused = false;
    if let Some(m) = choice.message {
        if let Some(r) = m
            .reasoning_content
            .or(m.reasoning)
            .filter(|r| !r.0.is_empty())
        {
            parts.push(Part::reasoning(r.0, None, None));
        }
        // Content is a string, or text parts (some servers).
        let (one, list) = match m.content {
            Some(OneOrList::One(t)) => (Some(t), Vec::new()),
            Some(OneOrList::List(ps)) => (None, ps),
            None => (None, Vec::new()),
        };
        let listed = list.into_iter().filter_map(|p| p.text);
        let texts = one.into_iter().chain(listed).filter(|t| !t.0.is_empty());
        parts.extend(texts.map(|t| Part::Text(Text::plain(t.0))));
        if let Some(r) = m.refusal.filter(|r| !r.0.is_empty()) {
            refused = true;
            parts.push(Part::Refusal(r.0));
        }
        if let Some(sig) = gemini_sig(m.extra_content) {
            parts.push(Part::reasoning("", Some(sig), None));
        }
        for (i, call) in m.tool_calls.unwrap_or_default().into_iter().enumerate() {
            calls = true;
            parts.push(Part::ToolCall(tool_call(call, i)));
        }
        if let Some(f) = m.function_call {
            calls = true;
            parts.push(Part::ToolCall(ToolCall {
                id: Cow::Owned(generated_id("call_")),
                name: f.name.map(|s| s.0).unwrap_or_default(),
                kind: ToolKind::Function,
                arguments: args_text(f.arguments),
                signature: None,
            }));
        }
    }
    Ok(Answer {
        id: id_or_new(c.id.map(|s| s.0), "chatcmpl-"),
        model: c.model.map(|s| s.0).unwrap_or_default(),
        created: c
            .created
            .map(|c| c.0)
            .filter(|c| *c > 0)
            .unwrap_or_else(now_unix),
        parts,
        finish: Some(match choice.finish_reason {
            Some(w) => finish(&w.0, calls, refused),
            None if calls => Finish::ToolCalls,
            None => Finish::Stop,
        }),
        usage: c.usage.unwrap_or_default().read(),
    })
}

// ---------------------------------------------------------------- errors

/// An OpenAI-style error body (`{"error":{message,type,param,code}}`,
/// `{"error":"text"}`, `{"message":…}`) or any other body, in canonical
/// terms. Error bodies are rare and small: read as a `Value`.
pub(crate) fn decode_error(status: u16, body: &[u8]) -> ChatError {
    use serde_json::Value;
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let err = v.as_ref().map(|v| v.get("error").unwrap_or(v));
    let word = |k: &str| match err.and_then(|e| e.get(k)) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let message = match (err, &v) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (Some(_), _) => word("message"),
        // Enough of an HTML error page to diagnose it, not all of it.
        (None, _) => Some(
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(500)
                .collect(),
        ),
    };
    let (kind, code) = (word("type"), word("code"));
    // A status that is no error (an error body on a 200) becomes a 502
    // unless the body's own code is an HTTP status.
    let status = if (400..=599).contains(&status) {
        status
    } else {
        code.as_deref()
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|s| (400..=599).contains(s))
            .unwrap_or(502)
    };
    let k = match (code.as_deref(), kind.as_deref()) {
        (Some("context_length_exceeded"), _) => ErrorKind::ContextLength,
        (_, Some("insufficient_quota")) => ErrorKind::RateLimited,
        _ => ErrorKind::for_status(status),
    };
    ChatError {
        kind: k,
        status,
        message: message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("upstream returned HTTP {status}")),
        param: word("param"),
        code,
        vendor_type: kind,
    }
}
