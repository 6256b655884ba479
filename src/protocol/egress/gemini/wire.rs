//! Google's Generative Language wire types, shared by the Gemini egress
//! adapter (reading answers) and the Gemini-native ingress adapter (reading
//! requests, writing answers). Google uses one `Content` / `Part` message
//! in both directions, so one set of borrowing serde types serves both.
//!
//! Field names are camelCase on the wire (the google-genai SDKs send them
//! so); the REST API also accepts snake_case (protobuf JSON), so request
//! fields carry a snake_case alias.

use crate::protocol::chat::{ErrorKind, Usage};
pub use crate::protocol::json::Count;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

type Str<'a> = Cow<'a, str>;

/// A `GenerateContentResponse`: a whole answer or one stream chunk.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GResponse<'a> {
    #[serde(borrow, default)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(borrow)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(borrow)]
    pub model_version: Option<Str<'a>>,
    #[serde(borrow)]
    pub response_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub error: Option<ErrorField<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(borrow)]
    pub content: Option<GContent<'a>>,
    #[serde(borrow)]
    pub finish_reason: Option<Str<'a>>,
    #[serde(borrow)]
    pub finish_message: Option<Str<'a>>,
    pub index: Option<u32>,
}

/// `Content`: a role and its parts. Parts are typed; the ingress adapter
/// reads request parts raw first so a kind this model lacks can be kept.
#[derive(Deserialize, Default)]
pub struct GContent<'a> {
    #[serde(borrow)]
    pub role: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub parts: Vec<WirePart<'a>>,
}

/// `Part`: one of text, inline data, file data, a function call or a
/// function response, with the thought flag and signature any of them may
/// carry.
#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WirePart<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub text: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(borrow, alias = "thought_signature")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<Str<'a>>,
    #[serde(borrow, alias = "function_call")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall<'a>>,
    #[serde(borrow, alias = "function_response")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse<'a>>,
    #[serde(borrow, alias = "inline_data", skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob<'a>>,
    #[serde(borrow, alias = "file_data", skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData<'a>>,
}

#[derive(Deserialize, Serialize)]
pub struct FunctionCall<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub args: Option<&'a RawValue>,
}

#[derive(Deserialize, Serialize)]
pub struct FunctionResponse<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub response: Option<&'a RawValue>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob<'a> {
    #[serde(borrow, default, alias = "mime_type")]
    pub mime_type: Str<'a>,
    #[serde(borrow, default)]
    pub data: Str<'a>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData<'a> {
    #[serde(borrow, alias = "mime_type")]
    pub mime_type: Option<Str<'a>>,
    #[serde(borrow, default, alias = "file_uri")]
    pub file_uri: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback<'a> {
    #[serde(borrow)]
    pub block_reason: Option<Str<'a>>,
    #[serde(borrow)]
    pub block_reason_message: Option<Str<'a>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageMetadata {
    pub prompt_token_count: Count,
    pub candidates_token_count: Count,
    pub thoughts_token_count: Count,
    pub cached_content_token_count: Count,
    pub total_token_count: Option<Count>,
}

impl UsageMetadata {
    /// Thinking is billed as output: completion = candidates + thoughts.
    pub fn usage(&self) -> Usage {
        let (prompt, thoughts) = (self.prompt_token_count.0, self.thoughts_token_count.0);
        let completion = self.candidates_token_count.0.saturating_add(thoughts);
        let total = self.total_token_count.map(|c| c.0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total.unwrap_or(prompt.saturating_add(completion)),
            cached_tokens: self.cached_content_token_count.0.min(prompt),
            cache_write_tokens: 0,
            reasoning_tokens: thoughts,
            cache_write_1h_tokens: 0,
        }
    }

    /// The inverse of [`UsageMetadata::usage`].
    pub fn from_usage(u: &Usage) -> Self {
        let thoughts = u.reasoning_tokens.min(u.completion_tokens);
        UsageMetadata {
            prompt_token_count: Count(u.prompt_tokens),
            candidates_token_count: Count(u.completion_tokens - thoughts),
            thoughts_token_count: Count(thoughts),
            cached_content_token_count: Count(u.cached_tokens),
            total_token_count: Some(Count(u.total_tokens)),
        }
    }
}

/// `error`: Google's object, or (rarely) a bare message.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ErrorField<'a> {
    Object(#[serde(borrow)] GError<'a>),
    Text(#[serde(borrow)] Str<'a>),
}

#[derive(Deserialize, Default)]
pub struct GError<'a> {
    pub code: Option<Count>,
    #[serde(borrow)]
    pub message: Option<Str<'a>>,
    #[serde(borrow)]
    pub status: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub details: Vec<Detail<'a>>,
}

#[derive(Deserialize)]
pub struct Detail<'a> {
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
}

/// Google's error body, as the ingress adapter writes it.
#[derive(Serialize)]
pub struct ErrorOut<'a> {
    pub error: ErrorOutInner<'a>,
}

#[derive(Serialize)]
pub struct ErrorOutInner<'a> {
    pub code: u16,
    pub message: &'a str,
    pub status: &'a str,
}

/// Google's status names: the HTTP status and kind each stands for.
pub fn by_name(status: &str) -> Option<(u16, ErrorKind)> {
    Some(match status {
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
}

/// The status name Google uses for an error of this kind.
pub fn status_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::ContextLength | ErrorKind::RequestTooLarge => {
            "INVALID_ARGUMENT"
        }
        ErrorKind::Authentication => "UNAUTHENTICATED",
        ErrorKind::Permission => "PERMISSION_DENIED",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::RateLimited => "RESOURCE_EXHAUSTED",
        ErrorKind::Overloaded => "UNAVAILABLE",
        ErrorKind::Timeout => "DEADLINE_EXCEEDED",
        ErrorKind::Upstream => "INTERNAL",
    }
}
