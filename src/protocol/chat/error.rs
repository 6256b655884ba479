//! One error type for every adapter: egress adapters parse vendor errors
//! into it, ingress adapters render it in the client's format.

/// What went wrong, in the terms every API has a word for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or cannot be expressed (400).
    InvalidRequest,
    /// Bad or missing credentials (401).
    Authentication,
    /// Credentials fine, not allowed (403).
    Permission,
    /// Unknown model or route (404).
    NotFound,
    /// Body too large (413).
    RequestTooLarge,
    /// Slow down (429).
    RateLimited,
    /// The vendor is overloaded (Anthropic 529, 503).
    Overloaded,
    /// The prompt does not fit the model's context (400).
    ContextLength,
    /// The upstream failed or answered something unusable (5xx).
    Upstream,
    /// No answer in time (504 / 408).
    Timeout,
}

impl ErrorKind {
    /// The kind an HTTP status means when nothing better is known.
    pub fn for_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::InvalidRequest,
            401 | 402 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            _ => ErrorKind::Upstream,
        }
    }
}

/// An error on its way to a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatError {
    pub kind: ErrorKind,
    /// The HTTP status the client gets.
    pub status: u16,
    /// Human-readable; never contains secrets (vendor words are redacted by
    /// the proxy before they get here).
    pub message: String,
    /// The offending field (OpenAI `param`), when known.
    pub param: Option<String>,
    /// A machine-readable code (OpenAI `code`, Gemini `status`), when known.
    pub code: Option<String>,
    /// The vendor's own type word (`overloaded_error`, `RESOURCE_EXHAUSTED`),
    /// kept so a same-family client sees the vendor's exact type.
    pub vendor_type: Option<String>,
}

impl ChatError {
    pub fn new(kind: ErrorKind, status: u16, message: impl Into<String>) -> Self {
        ChatError {
            kind,
            status,
            message: message.into(),
            param: None,
            code: None,
            vendor_type: None,
        }
    }

    /// A request that cannot be decoded or translated (400), naming the
    /// field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ChatError {
            param: Some(param.into()),
            ..ChatError::new(ErrorKind::InvalidRequest, 400, message)
        }
    }

    /// A request that cannot be decoded, no particular field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ChatError::new(ErrorKind::InvalidRequest, 400, message)
    }

    /// A vendor answer that cannot be decoded (502).
    pub fn upstream(message: impl Into<String>) -> Self {
        ChatError::new(ErrorKind::Upstream, 502, message)
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ChatError {}
