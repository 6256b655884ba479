//! Every way a request can fail, as one value that knows its HTTP status and
//! its OpenAI-format body. Messages say what was wrong and what to do.

use crate::config::ProviderKind;
use crate::protocol::{anthropic, openai};
use crate::providers::{vendor, ClientApi};
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
        kind: ProviderKind,
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
            GatewayError::NotFound { .. } => 404,
            GatewayError::MethodNotAllowed { .. } => 405,
            GatewayError::BadRequest { .. } => 400,
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
            _ => Vec::new(),
        }
    }

    /// Status and body in the client's API format. A vendor error in the
    /// client's own format is relayed unchanged.
    pub fn render(&self, api: ClientApi) -> (u16, Bytes) {
        let status = match self {
            GatewayError::Upstream {
                status, body, kind, ..
            } if *kind != ProviderKind::OpenAi => vendor(*kind).error_to_openai(*status, body).0,
            _ => self.status(),
        };
        match api {
            ClientApi::OpenAi => (status, self.body()),
            ClientApi::Anthropic => {
                if let GatewayError::Upstream {
                    body,
                    kind: ProviderKind::Anthropic,
                    ..
                } = self
                {
                    let native = serde_json::from_slice::<serde_json::Value>(body)
                        .is_ok_and(|v| v["type"] == "error" && v["error"]["message"].is_string());
                    if native {
                        return (status, body.clone());
                    }
                }
                let v = anthropic::openai_error_to_anthropic(status, &self.body());
                (status, Bytes::from(v.to_string()))
            }
        }
    }

    /// The human-readable message of [`Self::body`], for the request log
    /// (at most [`MESSAGE_LIMIT`] bytes: vendors' error texts may quote
    /// what the client sent).
    pub fn message(&self) -> String {
        let body = self.body();
        let mut m = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        m.truncate(clip(&m, MESSAGE_LIMIT).len());
        m
    }

    pub fn body(&self) -> Bytes {
        match self {
            GatewayError::Unauthorized(why) => {
                openai::error_body(why, "invalid_request_error", None, Some("invalid_api_key"))
            }
            GatewayError::NotFound { method, path } => openai::error_body(
                &format!("Invalid URL ({} {}): this gateway serves POST /v1/chat/completions, GET /v1/models and GET /health", echo(method), echo(path)),
                "invalid_request_error",
                None,
                Some("unknown_url"),
            ),
            GatewayError::MethodNotAllowed { allow, method, path } => openai::error_body(
                &format!("Method {} is not allowed on {path}; use {allow}", echo(method)),
                "invalid_request_error",
                None,
                Some("method_not_allowed"),
            ),
            GatewayError::BadRequest { message, param } => openai::error_body(
                clip(message, MESSAGE_LIMIT),
                "invalid_request_error",
                *param,
                None,
            ),
            GatewayError::BodyTooLarge { limit } => openai::error_body(
                &format!("Request body is larger than this gateway's limit of {limit} bytes (server.max_body_bytes)"),
                "invalid_request_error",
                None,
                Some("request_too_large"),
            ),
            GatewayError::ModelNotFound(model) => openai::error_body(
                &format!("The model `{}` is not served by this gateway; GET /v1/models lists the models it serves", echo(model)),
                "invalid_request_error",
                Some("model"),
                Some("model_not_found"),
            ),
            GatewayError::NoUsableProvider {
                model,
                reason,
                retry_after_secs,
            } => {
                let (why, code) = match reason {
                    Unusable::RateLimited => (
                        format!("every API key of every provider serving `{model}` is cooling down after rate limiting (429); retry in {retry_after_secs} s"),
                        "rate_limit_exceeded",
                    ),
                    Unusable::KeysRejected => (
                        format!("every API key of every provider serving `{model}` was rejected by its vendor (401/402/403) and is disabled until it passes a re-check; check the keys"),
                        "no_usable_key",
                    ),
                    Unusable::Unhealthy => (
                        format!("every provider serving `{model}` is unhealthy after consecutive errors; the next trial request is due in {retry_after_secs} s (GET /api/providers/health shows why)"),
                        "no_healthy_provider",
                    ),
                };
                openai::error_body(&why, "upstream_error", None, Some(code))
            }
            GatewayError::Upstream {
                status,
                body,
                provider,
                kind,
            } => {
                if *kind != ProviderKind::OpenAi {
                    let (_, v) = vendor(*kind).error_to_openai(*status, body);
                    return Bytes::from(v.to_string());
                }
                if openai::is_error_body(body) {
                    body.clone()
                } else {
                    let snippet = String::from_utf8_lossy(&body[..body.len().min(512)]);
                    openai::error_body(
                        &format!("provider `{provider}` answered HTTP {status}: {}", snippet.trim()),
                        "upstream_error",
                        None,
                        Some(&status.to_string()),
                    )
                }
            }
            GatewayError::UpstreamFailed { message, .. } => {
                openai::error_body(message, "upstream_error", None, None)
            }
            GatewayError::ShuttingDown => openai::error_body(
                SHUTTING_DOWN,
                "server_error",
                None,
                Some("shutting_down"),
            ),
            GatewayError::Translate {
                provider,
                message,
                param,
            } => openai::error_body(
                &format!(
                    "The request cannot be sent to provider `{provider}`: {}",
                    clip(message, MESSAGE_LIMIT)
                ),
                "invalid_request_error",
                param.as_deref().map(|p| clip(p, ECHO_LIMIT)),
                Some("unsupported_for_provider"),
            ),
            GatewayError::BodyTimeout { secs, request_id } => openai::error_body(
                &format!("The request body stalled: nothing arrived for {secs} s (server.body_timeout_secs; request id {request_id})"),
                "invalid_request_error",
                None,
                Some("request_timeout"),
            ),
            GatewayError::BufferBudget { limit } => openai::error_body(
                &format!("The gateway is already holding {limit} bytes of upstream answers for translation, its limit (server.max_buffered_response_bytes); retry shortly or ask for a streamed answer"),
                "server_error",
                None,
                Some("gateway_overloaded"),
            ),
        }
    }
}
