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

use super::wire::{by_name, ErrorField, GError, GResponse, PromptFeedback};
use crate::protocol::chat::{
    id_or_new, now_unix, Answer, ChatError, ErrorKind, Family, Finish, Part, Signature, Text,
    ToolCall, ToolKind,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

type Str<'a> = Cow<'a, str>;

// ---------------------------------------------------------------- parts

/// Reading one answer's parts: state shared by the chunks of a stream.
pub(super) struct Read {
    /// Function calls seen so far in the answer: synthesized ids stay
    /// unique across a stream.
    pub calls: usize,
    /// Makes synthesized call ids unique across turns while staying
    /// deterministic for one response (the old translator's scheme). A
    /// number, formatted only when a call needs an id (~600 instructions).
    pub salt: Option<u32>,
}

impl Read {
    pub fn new(response_id: Option<&str>) -> Self {
        let salt = response_id.filter(|s| !s.is_empty()).map(|id| {
            let fnv = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            fnv as u32
        });
        Read { calls: 0, salt }
    }

    /// The first candidate's parts (or a blocked prompt's refusal), in order,
    /// and its finish reason if it has one.
    pub fn parts<'a>(
        &mut self,
        resp: &mut GResponse<'a>,
        mut f: impl FnMut(Part<'a>),
    ) -> Result<Option<Finish>, ChatError> {
        let Some(cand) = resp.candidates.drain(..).next() else {
            let Some(message) = block_message(resp.prompt_feedback.as_ref()) else {
                return Ok(None);
            };
            f(Part::Refusal(Cow::Owned(message)));
            return Ok(Some(Finish::ContentFilter));
        };
        for p in cand.content.map(|c| c.parts).unwrap_or_default() {
            let sig = p.thought_signature.filter(|s| !s.is_empty());
            let reasoning = |text, sig: Option<Str<'a>>| {
                Part::reasoning(text, sig.map(|v| Signature::new(Family::Gemini, v)), None)
            };
            if let Some(fc) = p.function_call {
                let id = match (fc.id.filter(|s| !s.is_empty()), &self.salt) {
                    (Some(id), _) => id,
                    (None, Some(salt)) => {
                        format!("call_{}_{}_{salt:08x}", self.calls, fc.name).into()
                    }
                    (None, None) => format!("call_{}_{}", self.calls, fc.name).into(),
                };
                self.calls += 1;
                let arguments = match fc.args.map(RawValue::get) {
                    None | Some("null") => Cow::Borrowed("{}"),
                    Some(a) => compact(a),
                };
                let (name, kind, signature) = (
                    fc.name,
                    ToolKind::Function,
                    sig.map(|v| Signature::new(Family::Gemini, v)),
                );
                f(Part::ToolCall(ToolCall {
                    id,
                    name,
                    kind,
                    arguments,
                    signature,
                }));
                continue;
            }
            // Other part kinds (executableCode, inline output, ...) have no
            // place in the chat model and are skipped.
            let text = p.text.unwrap_or_default();
            if p.thought == Some(true) {
                if !text.is_empty() || sig.is_some() {
                    f(reasoning(text, sig));
                }
                continue;
            }
            if !text.is_empty() {
                f(Part::Text(Text::plain(text)));
            }
            if sig.is_some() {
                f(reasoning(Cow::Borrowed(""), sig));
            }
        }
        let (reason, message) = (cand.finish_reason, cand.finish_message.as_deref());
        reason
            .map(|r| finish(&r, self.calls > 0, message))
            .transpose()
    }
}

/// JSON text without insignificant whitespace (Gemini pretty-prints `args`
/// in streams); borrowed when there is none outside strings. Function calls
/// are rare next to text, so the re-encoding goes through a `Value`.
fn compact(json: &str) -> Cow<'_, str> {
    let (mut in_str, mut esc) = (false, false);
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

/// The finishReasons of a content filter.
const FILTERED: &str = "SAFETY RECITATION BLOCKLIST PROHIBITED_CONTENT SPII IMAGE_SAFETY \
    IMAGE_PROHIBITED_CONTENT IMAGE_RECITATION LANGUAGE";

/// Gemini's finishReason in canonical terms; the reasons that mean the
/// model failed to produce a valid function call are errors.
fn finish(reason: &str, had_calls: bool, message: Option<&str>) -> Result<Finish, ChatError> {
    Ok(match reason {
        "STOP" if had_calls => Finish::ToolCalls,
        "STOP" => Finish::Stop,
        "MAX_TOKENS" => Finish::Length,
        r if FILTERED.split(' ').any(|f| f == r) => Finish::ContentFilter,
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
            let msg = format!(
                "Gemini failed to produce a valid function call (finishReason {reason}){detail}"
            );
            return Err(ChatError::upstream(msg).with_code(reason));
        }
        other => Finish::Other(other.to_string()),
    })
}

/// Why Gemini refused the prompt, if it did.
fn block_message(fb: Option<&PromptFeedback<'_>>) -> Option<String> {
    let fb = fb?;
    let reason = fb.block_reason.as_deref()?;
    let extra = fb.block_reason_message.as_deref().map(|m| format!(": {m}"));
    let extra = extra.unwrap_or_default();
    Some(format!(
        "The prompt was blocked by Gemini (blockReason {reason}){extra}"
    ))
}

impl<'a> GResponse<'a> {
    /// From text: `from_slice` would validate the UTF-8 of every string
    /// again (~100 instructions each, ~15 per stream chunk).
    pub fn parse(data: &'a str, what: &str) -> Result<Self, ChatError> {
        serde_json::from_str(data)
            .map_err(|e| ChatError::upstream(format!("Gemini {what} is not valid: {e}")))
    }

    /// `responseId` (generated when absent) and `modelVersion`.
    pub fn id_and_model(&self) -> (Str<'a>, Str<'a>) {
        let id = id_or_new(self.response_id.clone(), "chatcmpl-");
        (id, self.model_version.clone().unwrap_or_default())
    }
}

/// A whole `GenerateContentResponse`.
pub(super) fn answer(body: &[u8]) -> Result<Answer<'_>, ChatError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ChatError::upstream(format!("Gemini answer is not valid UTF-8: {e}")))?;
    let mut resp = GResponse::parse(text, "answer")?;
    if let Some(e) = &resp.error {
        return Err(google_error(Some(e), 502, body));
    }
    if resp.candidates.is_empty() && block_message(resp.prompt_feedback.as_ref()).is_none() {
        return Err(ChatError::upstream("Gemini returned no candidates"));
    }
    let (id, model) = resp.id_and_model();
    let usage = resp.usage_metadata.map(|u| u.usage()).unwrap_or_default();
    let mut read = Read::new(resp.response_id.as_deref());
    let mut parts = Vec::with_capacity(2);
    let finish = read.parts(&mut resp, |p| parts.push(p))?;
    let finish = finish.unwrap_or(if read.calls > 0 {
        Finish::ToolCalls
    } else {
        Finish::Stop
    });
    let (created, finish) = (now_unix(), Some(finish));
    Ok(Answer {
        id,
        model,
        created,
        parts,
        finish,
        usage,
    })
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
    let err = match serde_json::from_slice::<ErrorDoc>(body) {
        Ok(ErrorDoc::One(h)) => Some(h.error),
        Ok(ErrorDoc::Many(list)) => list.into_iter().next().map(|h| h.error),
        Err(_) => None,
    };
    google_error(err.as_ref(), status, body)
}

/// `status`: the HTTP status, or the fallback for an error inside a 200.
pub(super) fn google_error(err: Option<&ErrorField<'_>>, status: u16, body: &[u8]) -> ChatError {
    let empty = GError::default();
    let (e, text) = match err {
        Some(ErrorField::Object(e)) => (e, e.message.as_deref()),
        Some(ErrorField::Text(t)) => (&empty, Some(t.as_ref())),
        None => (&empty, None),
    };
    let message = match (text, String::from_utf8_lossy(body).trim()) {
        (Some(m), _) => m.to_string(),
        (None, "") => format!("Gemini returned HTTP {status}"),
        (None, t) => {
            let t: String = t.chars().take(500).collect();
            format!("Gemini returned HTTP {status}: {t}")
        }
    };
    let g_status = e.status.as_deref();
    let key_reason = (e.details.iter())
        .filter_map(|d| d.reason.as_deref())
        .find(|r| matches!(*r, "API_KEY_INVALID" | "API_KEY_EXPIRED"));
    let http = |s: &u16| (400..600).contains(s);
    let (out_status, mut kind) = match g_status.and_then(by_name) {
        // Gemini says 400 INVALID_ARGUMENT for a bad key; clients and the
        // key balancer need to see an authentication failure.
        _ if key_reason.is_some() => (401, ErrorKind::Authentication),
        Some(known) => known,
        None => {
            let code = e.code.and_then(|c| u16::try_from(c.0).ok()).filter(http);
            let s = code.unwrap_or(if http(&status) { status } else { 502 });
            (s, ErrorKind::for_status(s))
        }
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
