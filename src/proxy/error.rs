//! Every way a request can fail, as one value that knows its HTTP status and
//! becomes a [`ChatError`] the client's ingress adapter renders in its own
//! format. Messages say what was wrong and what to do.

use super::client::ClientApi;
use crate::protocol::chat::{ChatError, ErrorKind};
use crate::providers::Vendor;
use bytes::Bytes;

/// What a client is told when the shutdown grace period ends its request.
pub const SHUTTING_DOWN: &str =
    "the gateway is shutting down and its grace period ran out before the answer was complete; retry the request";

/// Why no candidate could even be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    RateLimited,
    KeysRejected,
    Unhealthy,
}

#[derive(Debug)]
pub enum GatewayError {
    Unauthorized(&'static str),
    /// A client key that may not make this call (model or client API).
    Forbidden(String),
    NotFound {
        method: String,
        path: String,
    },
    MethodNotAllowed {
        allow: &'static str,
        method: String,
        path: String,
    },
    BadRequest {
        message: String,
        param: Option<&'static str>,
    },
    /// The client's request, as its ingress adapter could not decode it.
    Client(Box<ChatError>),
    BodyTooLarge {
        limit: usize,
    },
    ModelNotFound(String),
    /// Nothing could be tried: every candidate's keys are cooling down.
    NoUsableProvider {
        model: String,
        reason: Unusable,
        retry_after_secs: u64,
    },
    /// The vendor's own answer, relayed (4xx without failover, or the last
    /// error once every candidate failed).
    Upstream {
        status: u16,
        body: Bytes,
        provider: String,
        vendor: &'static Vendor,
    },
    /// The request cannot be expressed in the chosen vendor's format.
    Translate {
        provider: String,
        message: String,
        param: Option<String>,
    },
    /// No vendor answered usefully: connection errors or timeouts.
    UpstreamFailed {
        status: u16,
        message: String,
    },
    /// The shutdown grace period ran out before the vendor answered.
    ShuttingDown,
    /// The client paused sending its body for longer than allowed.
    BodyTimeout {
        secs: f64,
        request_id: String,
    },
    /// Buffered answers already take `server.max_buffered_response_bytes`.
    BufferBudget {
        limit: u64,
    },
    /// A client key's token or cost budget is spent (see `crate::ledger`).
    BudgetExhausted(crate::ledger::Exhausted),
    /// The client key's own limit (rpm, tpm, max_concurrent) is reached.
    KeyLimit {
        message: String,
        retry_after_secs: u64,
    },
}

/// The most of a client-supplied value (a model name, a path, a method)
/// an error message quotes, and the longest message text an error carries
/// into a response, a log line or a request-log row.
pub const ECHO_LIMIT: usize = 256;
pub const MESSAGE_LIMIT: usize = 2048;

/// `s` cut to at most `max` bytes at a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` for quoting in a message: cut to [`ECHO_LIMIT`], marked when cut.
fn echo(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= ECHO_LIMIT {
        s.into()
    } else {
        format!("{}… ({} bytes)", clip(s, ECHO_LIMIT), s.len()).into()
    }
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Unauthorized(_) => 401,
            GatewayError::Forbidden(_) => 403,
            GatewayError::NotFound { .. } => 404,
            GatewayError::MethodNotAllowed { .. } => 405,
            GatewayError::BadRequest { .. } => 400,
            GatewayError::Client(e) => e.status,
            GatewayError::BodyTooLarge { .. } => 413,
            GatewayError::ModelNotFound(_) => 404,
            GatewayError::NoUsableProvider { reason, .. } => match reason {
                Unusable::RateLimited => 429,
                Unusable::KeysRejected | Unusable::Unhealthy => 503,
            },
            GatewayError::Upstream { status, .. } => *status,
            GatewayError::UpstreamFailed { status, .. } => *status,
            GatewayError::Translate { .. } => 400,
            GatewayError::ShuttingDown => 503,
            GatewayError::BodyTimeout { .. } => 408,
            GatewayError::BufferBudget { .. } => 503,
            GatewayError::BudgetExhausted(_) => 429,
            GatewayError::KeyLimit { .. } => 429,
        }
    }

    /// Extra response headers (name, value).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            GatewayError::MethodNotAllowed { allow, .. } => vec![("allow", allow.to_string())],
            GatewayError::NoUsableProvider {
                retry_after_secs, ..
            } => vec![("retry-after", retry_after_secs.max(&1).to_string())],
            GatewayError::Unauthorized(_) => vec![("www-authenticate", "Bearer".to_string())],
            GatewayError::BufferBudget { .. } => vec![("retry-after", "1".to_string())],
            GatewayError::BudgetExhausted(e) => e
                .retry_after_secs
                .map(|s| vec![("retry-after", s.to_string())])
                .unwrap_or_default(),
            GatewayError::KeyLimit {
                retry_after_secs, ..
            } => vec![("retry-after", retry_after_secs.max(&1).to_string())],
            _ => Vec::new(),
        }
    }

    /// Status and body in the client's API format. A vendor error of the
    /// client's own family is relayed as the vendor sent it (masked); one of
    /// another family is read by its egress adapter and rendered by the
    /// client's ingress adapter.
    pub fn render(&self, api: ClientApi) -> (u16, Bytes) {
        if let GatewayError::Upstream { body, vendor, .. } = self {
            if vendor.family() == api.family() && is_error_object(body) {
                return (self.status(), body.clone());
            }
        }
        let err = self.chat_error();
        (err.status, api.ingress().encode_error(&err))
    }

    /// The human-readable message, for the request log (at most
    /// [`MESSAGE_LIMIT`] bytes: vendors' error texts may quote what the
    /// client sent).
    pub fn message(&self) -> String {
        let mut m = self.chat_error().message;
        m.truncate(clip(&m, MESSAGE_LIMIT).len());
        m
    }

    /// The error in canonical terms.
    pub fn chat_error(&self) -> ChatError {
        let status = self.status();
        let make = |kind: ErrorKind, message: String, code: Option<&str>| ChatError {
            kind,
            status,
            message,
            param: None,
            code: code.map(str::to_string),
            vendor_type: None,
        };
        match self {
            GatewayError::Unauthorized(why) => make(
                ErrorKind::Authentication,
                why.to_string(),
                Some("invalid_api_key"),
            ),
            GatewayError::Forbidden(why) => make(
                ErrorKind::Permission,
                clip(why, MESSAGE_LIMIT).to_string(),
                Some("permission_denied"),
            ),
            GatewayError::NotFound { method, path } => make(
                ErrorKind::NotFound,
                format!("Invalid URL ({} {}): this gateway serves POST /v1/chat/completions, POST /v1/responses, POST /v1/messages (and /v1/messages/count_tokens), POST /v1beta/models/{{model}}:generateContent (and :streamGenerateContent, :countTokens), GET /v1/models, GET /v1beta/models and GET /health", echo(method), echo(path)),
                Some("unknown_url"),
            ),
            GatewayError::MethodNotAllowed { allow, method, path } => make(
                ErrorKind::InvalidRequest,
                format!("Method {} is not allowed on {}; use {allow}", echo(method), echo(path)),
                Some("method_not_allowed"),
            ),
            GatewayError::BadRequest { message, param } => ChatError {
                param: param.map(str::to_string),
                ..make(
                    ErrorKind::InvalidRequest,
                    clip(message, MESSAGE_LIMIT).to_string(),
                    None,
                )
            },
            GatewayError::Client(e) => ChatError::clone(e),
            GatewayError::BodyTooLarge { limit } => make(
                ErrorKind::RequestTooLarge,
                format!("Request body is larger than this gateway's limit of {limit} bytes (server.max_body_bytes)"),
                Some("request_too_large"),
            ),
            GatewayError::ModelNotFound(model) => ChatError {
                param: Some("model".into()),
                ..make(
                    ErrorKind::NotFound,
                    format!("The model `{}` is not served by this gateway; GET /v1/models lists the models it serves", echo(model)),
                    Some("model_not_found"),
                )
            },
            GatewayError::NoUsableProvider {
                model,
                reason,
                retry_after_secs,
            } => {
                let model = echo(model);
                let (kind, why, code) = match reason {
                    Unusable::RateLimited => (
                        ErrorKind::RateLimited,
                        format!("every API key of every provider serving `{model}` is cooling down after rate limiting (429); retry in {retry_after_secs} s"),
                        "rate_limit_exceeded",
                    ),
                    Unusable::KeysRejected => (
                        ErrorKind::Upstream,
                        format!("every API key of every provider serving `{model}` was rejected by its vendor (401/402/403) and is disabled until it passes a re-check; check the keys"),
                        "no_usable_key",
                    ),
                    Unusable::Unhealthy => (
                        ErrorKind::Overloaded,
                        format!("every provider serving `{model}` is unhealthy after consecutive errors; the next trial request is due in {retry_after_secs} s (GET /api/providers/health shows why)"),
                        "no_healthy_provider",
                    ),
                };
                make(kind, why, Some(code))
            }
            GatewayError::Upstream {
                status,
                body,
                provider,
                vendor,
            } => {
                let mut err = vendor.egress.decode_error(*status, body);
                // A body that is not the vendor's error (an HTML page from a
                // proxy, nothing at all): say who answered what.
                if err.message.is_empty() || !is_error_object(body) {
                    let snippet = String::from_utf8_lossy(&body[..body.len().min(512)]);
                    err.message = format!(
                        "provider `{provider}` answered HTTP {status}: {}",
                        snippet.trim()
                    );
                }
                err.message.truncate(clip(&err.message, MESSAGE_LIMIT).len());
                err
            }
            GatewayError::UpstreamFailed { message, .. } => {
                make(ErrorKind::for_status(status), message.clone(), None)
            }
            GatewayError::ShuttingDown => make(
                ErrorKind::Overloaded,
                SHUTTING_DOWN.to_string(),
                Some("shutting_down"),
            ),
            GatewayError::Translate {
                provider,
                message,
                param,
            } => ChatError {
                param: param.as_deref().map(|p| clip(p, ECHO_LIMIT).to_string()),
                ..make(
                    ErrorKind::InvalidRequest,
                    format!(
                        "The request cannot be sent to provider `{provider}`: {}",
                        clip(message, MESSAGE_LIMIT)
                    ),
                    Some("unsupported_for_provider"),
                )
            },
            GatewayError::BodyTimeout { secs, request_id } => make(
                ErrorKind::Timeout,
                format!("The request body stalled: nothing arrived for {secs} s (server.body_timeout_secs; request id {request_id})"),
                Some("request_timeout"),
            ),
            GatewayError::BufferBudget { limit } => make(
                ErrorKind::Overloaded,
                format!("The gateway is already holding {limit} bytes of upstream answers for translation, its limit (server.max_buffered_response_bytes); retry shortly or ask for a streamed answer"),
                Some("gateway_overloaded"),
            ),
            GatewayError::BudgetExhausted(e) => make(
                ErrorKind::RateLimited,
                e.message.clone(),
                Some("budget_exceeded"),
            ),
            GatewayError::KeyLimit { message, .. } => make(
                ErrorKind::RateLimited,
                message.clone(),
                Some("rate_limit_exceeded"),
            ),
        }
    }
}

/// Is this vendor body a JSON object with an `error` member (OpenAI
/// `{"error":{…}}`, Anthropic `{"type":"error","error":{…}}`)? Only such a
/// body is relayed to a same-family client as it is.
fn is_error_object(body: &[u8]) -> bool {
    // Parsed only to see that it fits this shape.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        message: serde::de::IgnoredAny,
    }
    serde_json::from_slice::<Outer>(body).is_ok()
}
