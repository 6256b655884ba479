//! Gemini's `GenerateContentResponse` (whole answers and each stream chunk)
//! and Google error bodies, decoded with borrowing serde types.
//!
//! * Only the first candidate is read (requests ask for one). The answer id
//!   is Gemini's `responseId` as it is (generated when absent).
//! * Thought text is reasoning; a signature on another part becomes an empty
//!   reasoning part right after it (the encoder puts it back on that part).
//! * Function calls keep Gemini's `id`, else get `call_<n>_<name>[_<hash of
//!   responseId>]`: deterministic per response, unique across turns.
//! * STOP with calls is ToolCalls; MALFORMED_FUNCTION_CALL and the like are
//!   errors (a silent empty stop would end an agent loop without a clue); a
//!   prompt blocked by `promptFeedback.blockReason` is a refusal with
//!   ContentFilter: the policy's answer, not a gateway fault.
//! * completion tokens = candidates + thoughts (thinking is billed as output).

use crate::protocol::chat::{
    now_unix, Answer, ChatError, ErrorKind, Family, Finish, Part, Reasoning, Signature, ToolCall,
    ToolKind, Usage,
};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GResponse<'a> {
    #[serde(borrow, default)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(borrow, default)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(borrow, default)]
    pub response_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub model_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub error: Option<ErrorField<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate<'a> {
    #[serde(borrow, default)]
    pub content: Option<GContent<'a>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub finish_message: Option<Str<'a>>,
}

#[derive(Deserialize)]
pub(super) struct GContent<'a> {
    #[serde(borrow, default)]
    pub parts: Vec<InPart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InPart<'a> {
    #[serde(borrow, default)]
    text: Option<Str<'a>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(borrow, default)]
    thought_signature: Option<Str<'a>>,
    #[serde(borrow, default)]
    function_call: Option<InCall<'a>>,
}

#[derive(Deserialize)]
struct InCall<'a> {
    #[serde(borrow, default)]
    id: Option<Str<'a>>,
    #[serde(borrow, default)]
    name: Str<'a>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback<'a> {
    #[serde(borrow, default)]
    block_reason: Option<Str<'a>>,
    #[serde(borrow, default)]
    block_reason_message: Option<Str<'a>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct UsageMetadata {
    prompt_token_count: Count,
    candidates_token_count: Count,
    thoughts_token_count: Count,
    cached_content_token_count: Count,
    total_token_count: Option<Count>,
}

/// A token count; anything but a non-negative integer reads as 0 (a
/// malformed count must not fail an answer that is otherwise fine).
#[derive(Default, Clone, Copy)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum N {
            U(u64),
            Other(serde::de::IgnoredAny),
        }
        Ok(Count(match N::deserialize(d)? {
            N::U(n) => n,
            N::Other(_) => 0,
        }))
    }
}

impl UsageMetadata {
    /// Thinking is billed as output: completion = candidates + thoughts.
    pub fn usage(&self) -> Usage {
        let (prompt, thoughts) = (self.prompt_token_count.0, self.thoughts_token_count.0);
        let completion = self.candidates_token_count.0.saturating_add(thoughts);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: (self.total_token_count)
                .map_or(prompt.saturating_add(completion), |c| c.0),
            cached_tokens: self.cached_content_token_count.0,
            cache_write_tokens: 0,
            reasoning_tokens: thoughts,
        }
    }
}

/// `error`: Google's object, or (rarely) a bare message.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ErrorField<'a> {
    Object(#[serde(borrow)] GError<'a>),
    Text(#[serde(borrow)] Str<'a>),
}

#[derive(Deserialize, Default)]
pub(super) struct GError<'a> {
    #[serde(default)]
    code: Option<Count>,
    #[serde(borrow, default)]
    message: Option<Str<'a>>,
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
    #[serde(borrow, default)]
    details: Vec<Detail<'a>>,
}

#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(borrow, default)]
    reason: Option<Str<'a>>,
}

// ---------------------------------------------------------------- parts

/// One piece of a candidate's content, in canonical terms.
pub(super) enum Item<'a> {
    Text(Str<'a>),
    /// Thought text, or (empty text) a signature Gemini put on another part.
    Reasoning(Str<'a>, Option<Str<'a>>),
    Call(ToolCall<'a>),
}

/// Makes synthesized call ids unique across turns while staying
/// deterministic for one response (the old translator's scheme).
pub(super) fn call_salt(response_id: Option<&str>) -> Option<String> {
    let id = response_id.filter(|s| !s.is_empty())?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Some(format!("{:08x}", h as u32))
}

/// The items of `parts`, in order. `calls` counts the function calls seen so
/// far in the answer (ids synthesized from it stay unique across a stream).
pub(super) fn read_parts<'a>(
    parts: Vec<InPart<'a>>,
    calls: &mut usize,
    salt: Option<&str>,
    mut f: impl FnMut(Item<'a>),
) {
    for p in parts {
        let sig = p.thought_signature.filter(|s| !s.is_empty());
        if let Some(fc) = p.function_call {
            let id = match fc.id.filter(|s| !s.is_empty()) {
                Some(id) => id,
                None => Cow::Owned(match salt {
                    Some(salt) => format!("call_{calls}_{}_{salt}", fc.name),
                    None => format!("call_{calls}_{}", fc.name),
                }),
            };
            *calls += 1;
            let arguments = match fc.args {
                None => Cow::Borrowed("{}"),
                Some(a) if a.get() == "null" => Cow::Borrowed("{}"),
                Some(a) => compact(a.get()),
            };
            f(Item::Call(ToolCall {
                id,
                name: fc.name,
                kind: ToolKind::Function,
                arguments,
                signature: sig.map(|value| Signature {
                    family: Family::Gemini,
                    value,
                }),
            }));
            continue;
        }
        // Other part kinds (executableCode, inline output, ...) have no
        // place in the chat model and are skipped.
        let text = p.text.unwrap_or_default();
        if p.thought == Some(true) {
            if !text.is_empty() || sig.is_some() {
                f(Item::Reasoning(text, sig));
            }
            continue;
        }
        if !text.is_empty() {
            f(Item::Text(text));
        }
        if sig.is_some() {
            f(Item::Reasoning(Cow::Borrowed(""), sig));
        }
    }
}

/// JSON text without insignificant whitespace (Gemini pretty-prints `args`
/// in streams); borrowed when there is none outside strings. Function calls
/// are rare next to text, so the re-encoding goes through a `Value`.
fn compact(json: &str) -> Cow<'_, str> {
    let mut in_str = false;
    let mut esc = false;
    let spaced = json.bytes().any(|c| {
        let ws = !in_str && c.is_ascii_whitespace();
        (in_str, esc) = match (in_str, esc, c) {
            (true, false, b'\\') => (true, true),
            (true, false, b'"') | (false, _, b'"') => (!in_str, false),
            _ => (in_str, false),
        };
        ws
    });
    if !spaced {
        return Cow::Borrowed(json);
    }
    let value = serde_json::from_str::<serde_json::Value>(json);
    value.map_or(Cow::Borrowed(json), |v| Cow::Owned(v.to_string()))
}

/// Gemini's finishReason in canonical terms; the reasons that mean the
/// model failed to produce a valid function call are errors.
pub(super) fn finish(
    reason: &str,
    had_calls: bool,
    message: Option<&str>,
) -> Result<Finish, ChatError> {
    Ok(match reason {
        "STOP" if had_calls => Finish::ToolCalls,
        "STOP" => Finish::Stop,
        "MAX_TOKENS" => Finish::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "LANGUAGE" => Finish::ContentFilter,
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
            return Err(ChatError::upstream(format!(
                "Gemini failed to produce a valid function call (finishReason {reason}){detail}"
            ))
            .with_code(reason));
        }
        other => Finish::Other(other.to_string()),
    })
}

/// Why Gemini refused the prompt, if it did.
pub(super) fn block_message(fb: Option<&PromptFeedback<'_>>) -> Option<String> {
    let fb = fb?;
    let reason = fb.block_reason.as_deref()?;
    let extra = (fb.block_reason_message.as_deref())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Some(format!(
        "The prompt was blocked by Gemini (blockReason {reason}){extra}"
    ))
}

fn parse<'a>(body: &'a [u8], what: &str) -> Result<GResponse<'a>, ChatError> {
    serde_json::from_slice(body)
        .map_err(|e| ChatError::upstream(format!("Gemini {what} is not valid: {e}")))
}

pub(super) fn parse_chunk(data: &str) -> Result<GResponse<'_>, ChatError> {
    parse(data.as_bytes(), "stream event")
}

/// A whole `GenerateContentResponse`.
pub(super) fn answer(body: &[u8]) -> Result<Answer<'_>, ChatError> {
    let resp = parse(body, "answer")?;
    if let Some(e) = &resp.error {
        return Err(google_error(Some(e), 502, body));
    }
    let usage = resp.usage_metadata.map(|u| u.usage()).unwrap_or_default();
    let salt = call_salt(resp.response_id.as_deref());
    let id = match resp.response_id {
        Some(id) if !id.is_empty() => id,
        _ => Cow::Owned(crate::protocol::chat::generated_id("chatcmpl-")),
    };
    let mut answer = Answer {
        id,
        model: resp.model_version.unwrap_or_default(),
        created: now_unix(),
        parts: Vec::new(),
        finish: None,
        usage,
    };
    let Some(cand) = resp.candidates.into_iter().next() else {
        // A blocked prompt has no candidates: the policy's answer, not a
        // gateway fault.
        let refusal = block_message(resp.prompt_feedback.as_ref())
            .ok_or_else(|| ChatError::upstream("Gemini returned no candidates"))?;
        answer.parts.push(Part::Refusal(Cow::Owned(refusal)));
        answer.finish = Some(Finish::ContentFilter);
        return Ok(answer);
    };
    let mut calls = 0;
    let parts = cand.content.map(|c| c.parts).unwrap_or_default();
    read_parts(parts, &mut calls, salt.as_deref(), |item| {
        answer.parts.push(match item {
            Item::Text(t) => Part::Text(crate::protocol::chat::Text::plain(t)),
            Item::Reasoning(text, sig) => Part::Reasoning(Reasoning {
                text,
                signature: sig.map(|value| Signature {
                    family: Family::Gemini,
                    value,
                }),
                redacted: None,
            }),
            Item::Call(c) => Part::ToolCall(c),
        })
    });
    answer.finish = Some(match cand.finish_reason.as_deref() {
        Some(r) => finish(r, calls > 0, cand.finish_message.as_deref())?,
        None if calls > 0 => Finish::ToolCalls,
        None => Finish::Stop,
    });
    Ok(answer)
}

// ---------------------------------------------------------------- errors

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorDoc<'a> {
    /// `streamGenerateContent` without `alt=sse` wraps it in an array.
    /// (First: serde would also read a struct from a sequence.)
    Many(#[serde(borrow)] Vec<HasError<'a>>),
    One(#[serde(borrow)] HasError<'a>),
}

#[derive(Deserialize)]
struct HasError<'a> {
    #[serde(borrow)]
    error: ErrorField<'a>,
}

/// A Google error body (`{"error":{"code","message","status","details"}}`,
/// array-wrapped, or not JSON at all).
pub(super) fn error(status: u16, body: &[u8]) -> ChatError {
    let doc = serde_json::from_slice::<ErrorDoc>(body).ok();
    let err = match &doc {
        Some(ErrorDoc::One(h)) => Some(&h.error),
        Some(ErrorDoc::Many(list)) => list.first().map(|h| &h.error),
        None => None,
    };
    google_error(err, status, body)
}

/// `status`: the HTTP status, or the fallback for an error inside a 200.
pub(super) fn google_error(err: Option<&ErrorField<'_>>, status: u16, body: &[u8]) -> ChatError {
    let empty = GError::default();
    let (e, text) = match err {
        Some(ErrorField::Object(e)) => (e, e.message.as_deref()),
        Some(ErrorField::Text(t)) => (&empty, Some(t.as_ref())),
        None => (&empty, None),
    };
    let message = match text {
        Some(m) => m.to_string(),
        None => {
            let body = String::from_utf8_lossy(body);
            match body.trim() {
                "" => format!("Gemini returned HTTP {status}"),
                t => format!(
                    "Gemini returned HTTP {status}: {}",
                    t.chars().take(500).collect::<String>()
                ),
            }
        }
    };
    let g_status = e.status.as_deref();
    let key_reason = (e.details.iter())
        .filter_map(|d| d.reason.as_deref())
        .find(|r| matches!(*r, "API_KEY_INVALID" | "API_KEY_EXPIRED"));
    let by_name = g_status.and_then(|s| {
        Some(match s {
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
                (400, ErrorKind::InvalidRequest)
            }
            "UNAUTHENTICATED" => (401, ErrorKind::Authentication),
            "PERMISSION_DENIED" => (403, ErrorKind::Permission),
            "NOT_FOUND" => (404, ErrorKind::NotFound),
            "ALREADY_EXISTS" | "ABORTED" => (409, ErrorKind::InvalidRequest),
            "RESOURCE_EXHAUSTED" => (429, ErrorKind::RateLimited),
            "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => (500, ErrorKind::Upstream),
            "UNIMPLEMENTED" => (501, ErrorKind::Upstream),
            "UNAVAILABLE" => (503, ErrorKind::Overloaded),
            "DEADLINE_EXCEEDED" => (504, ErrorKind::Timeout),
            _ => return None,
        })
    });
    let (out_status, mut kind) = if key_reason.is_some() {
        // Gemini says 400 INVALID_ARGUMENT for a bad key; clients and the
        // key balancer need to see an authentication failure.
        (401, ErrorKind::Authentication)
    } else if let Some(known) = by_name {
        known
    } else {
        let code = e.code.map(|c| c.0).and_then(|c| u16::try_from(c).ok());
        let s =
            (code.filter(|c| (400..600).contains(c))).unwrap_or(if (400..600).contains(&status) {
                status
            } else {
                502
            });
        (s, ErrorKind::for_status(s))
    };
    if kind == ErrorKind::InvalidRequest && message.contains("exceeds the maximum number of tokens")
    {
        kind = ErrorKind::ContextLength;
    }
    ChatError {
        kind,
        status: out_status,
        message,
        param: None,
        code: key_reason.or(g_status).map(str::to_string),
        vendor_type: g_status.map(str::to_string),
    }
}
