//! Shapes both the whole answer (`mod.rs`) and the stream encoder
//! (`stream.rs`) write: stop reasons, usage and error bodies. A leaf, so
//! neither file imports the other's internals.

use crate::protocol::chat::{ChatError, ErrorKind, Finish, Usage};
use serde::Serialize;
use std::borrow::Cow;

/// Anthropic's `stop_reason` (and `stop_sequence`) for a finish. Some
/// vendors say "stop" after tool calls or a refusal; Anthropic clients run
/// tools only on `tool_use`.
pub(super) fn stop_reason(
    finish: Option<&Finish>,
    tools: bool,
    refused: bool,
) -> (&'static str, Option<&str>) {
    match finish {
        Some(Finish::StopSequence(seq)) => ("stop_sequence", seq.as_deref()),
        Some(Finish::Length) => ("max_tokens", None),
        Some(Finish::ToolCalls) => ("tool_use", None),
        Some(Finish::ContentFilter) | Some(Finish::Refusal) => ("refusal", None),
        Some(Finish::Pause) => ("pause_turn", None),
        _ if tools => ("tool_use", None),
        _ if refused => ("refusal", None),
        _ => ("end_turn", None),
    }
}

/// Anthropic's usage: input tokens exclude the cache reads and writes it
/// reports apart.
#[derive(Serialize, Default, Clone, Copy)]
pub(super) struct UsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        UsageOut {
            input_tokens: u
                .prompt_tokens
                .saturating_sub(u.cached_tokens)
                .saturating_sub(u.cache_write_tokens),
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cached_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

#[derive(Serialize)]
pub(super) struct ErrorBody<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorInner<'r>,
}

#[derive(Serialize)]
struct ErrorInner<'r> {
    #[serde(rename = "type")]
    kind: &'r str,
    message: Cow<'r, str>,
}

/// Anthropic's error types (a vendor's own word is kept when it is one).
const TYPES: [&str; 11] = [
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
    "error",
];

impl<'r> ErrorBody<'r> {
    pub(super) fn new(err: &'r ChatError) -> Self {
        let kind = match err.vendor_type.as_deref() {
            Some(t) if TYPES[..10].contains(&t) => t,
            _ => match err.kind {
                ErrorKind::InvalidRequest | ErrorKind::ContextLength => "invalid_request_error",
                ErrorKind::Authentication => "authentication_error",
                ErrorKind::Permission => "permission_error",
                ErrorKind::NotFound => "not_found_error",
                ErrorKind::RequestTooLarge => "request_too_large",
                ErrorKind::RateLimited => "rate_limit_error",
                ErrorKind::Overloaded => "overloaded_error",
                ErrorKind::Timeout => "timeout_error",
                ErrorKind::Upstream => "api_error",
            },
        };
        // Anthropic has no `param`: the field goes in front of the message.
        let message = match &err.param {
            Some(p) => Cow::Owned(format!("{p}: {}", err.message)),
            None => Cow::Borrowed(err.message.as_str()),
        };
        ErrorBody {
            kind: "error",
            error: ErrorInner { kind, message },
        }
    }
}
