//! Vendors: where each vendor API lives and how it is authenticated.
//!
//! A [`Vendor`] is static data: its chat path, its auth header, the rules
//! for reading its denials, and the egress adapter that speaks its body
//! format (`crate::protocol::egress`). Translation itself lives only in the
//! adapters. This module depends on nothing of the configuration, so a
//! compiled `config::Provider` can hold its `&'static Vendor` directly.
//!
//! Adding a vendor: an egress adapter in `protocol/egress/`, one [`Vendor`]
//! static here, and one word in `config::ProviderKind`.

use crate::protocol::chat::{Egress, Family};
use crate::protocol::egress;
use serde_json::Value;

/// How a vendor takes its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key as the value of this header (`x-api-key`, `x-goog-api-key`).
    Header(&'static str),
}

/// Where the chat endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatPath {
    /// `{base_path}{suffix}` whatever the model and stream mode.
    Fixed(&'static str),
    /// Gemini: `{base_path}/models/{model}:generateContent`, or
    /// `:streamGenerateContent?alt=sse` for streams.
    PerModel,
}

/// One vendor API: endpoint, auth and the adapter for its bodies.
pub struct Vendor {
    pub name: &'static str,
    pub egress: &'static dyn Egress,
    pub chat_path: ChatPath,
    pub auth: Auth,
    /// Sends the provider's `anthropic-version` header.
    pub sends_anthropic_version: bool,
    /// Query string for the model list (`GET {base}/models`): the whole
    /// list in one page where the vendor pages it.
    pub models_query: &'static str,
}

impl std::fmt::Debug for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

pub static OPENAI: Vendor = Vendor {
    name: "openai",
    egress: &egress::openai::OpenAiChat,
    chat_path: ChatPath::Fixed("/chat/completions"),
    auth: Auth::Bearer,
    sends_anthropic_version: false,
    models_query: "",
};

pub static ANTHROPIC: Vendor = Vendor {
    name: "anthropic",
    egress: &egress::anthropic::AnthropicMessages,
    chat_path: ChatPath::Fixed("/messages"),
    auth: Auth::Header("x-api-key"),
    sends_anthropic_version: true,
    models_query: "?limit=1000",
};

pub static GEMINI: Vendor = Vendor {
    name: "gemini",
    egress: &egress::gemini::GeminiGenerate,
    chat_path: ChatPath::PerModel,
    auth: Auth::Header("x-goog-api-key"),
    sends_anthropic_version: false,
    models_query: "?pageSize=1000",
};

/// The vendor a `type = "…"` word names.
pub fn by_name(name: &str) -> Option<&'static Vendor> {
    [&OPENAI, &ANTHROPIC, &GEMINI]
        .into_iter()
        .find(|v| v.name == name)
}

impl Vendor {
    pub fn family(&self) -> Family {
        self.egress.family()
    }

    /// The chat path when it depends on neither the model nor the stream
    /// mode (computed once per provider).
    pub fn fixed_chat_path(&self, base_path: &str) -> Option<String> {
        match self.chat_path {
            ChatPath::Fixed(suffix) => Some(format!("{base_path}{suffix}")),
            ChatPath::PerModel => None,
        }
    }

    /// The chat path for one request.
    pub fn chat_path(&self, base_path: &str, model: &str, stream: bool) -> String {
        match self.chat_path {
            // Built by pushes into one allocation of the final size: this
            // runs per upstream attempt, and `format!` plus a collected
            // model name cost ~1.6k instructions per Gemini request
            // (callgrind), mostly growing strings one char at a time.
            ChatPath::Fixed(suffix) => [base_path, suffix].concat(),
            ChatPath::PerModel => {
                let method = if stream {
                    ":streamGenerateContent?alt=sse"
                } else {
                    ":generateContent"
                };
                let mut path =
                    String::with_capacity(base_path.len() + 8 + model.len() + method.len());
                path.push_str(base_path);
                path.push_str("/models/");
                // Model names are path segments; keep only characters
                // Google uses (copied whole when they all are: pushing char
                // by char costs ~20 instructions each).
                let ok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_');
                if model.bytes().all(ok) {
                    path.push_str(model);
                } else {
                    // Only ASCII is kept, so bytes are chars here.
                    path.extend(model.bytes().filter(|c| ok(*c)).map(char::from));
                }
                path.push_str(method);
                path
            }
        }
    }

    /// What a 401 / 402 / 403 from this vendor says about the key.
    pub fn denial(&self, status: u16, body: &[u8]) -> Denial {
        denial(self.family(), status, body)
    }
}

/// What a vendor's 401 / 402 / 403 (or Gemini's `400 API_KEY_INVALID`)
/// says about the key that was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The key itself is bad (invalid, revoked, suspended, out of credit):
    /// it is disabled for every model until a re-check accepts it.
    KeyRejected,
    /// The key works but may not use this model or resource (a project
    /// without access to the model, Anthropic's `permission_error`, Gemini's
    /// `PERMISSION_DENIED` for a model): the request goes to the next
    /// candidate and the key stays in rotation.
    NotPermitted,
}

/// Classify a denial from the vendor's documented error codes.
///
/// - 401 and 402 always mean the key (authentication, billing).
/// - 403 means the key only when the body says so: OpenAI-style `code` or
///   `type` naming the API key, authentication or the account
///   (`invalid_api_key`, `account_deactivated`, …); Anthropic
///   `authentication_error`; Gemini `details[].reason` `API_KEY_*` or
///   `CONSUMER_SUSPENDED`. Every other 403 (OpenAI `model_not_found` /
///   "does not have access to model", Anthropic `permission_error`, Gemini
///   `PERMISSION_DENIED` without a key reason, an HTML page from a proxy)
///   is about the request's model or resource.
///
/// Only called on error answers, so parsing the (bounded) body is fine.
pub fn denial(family: Family, status: u16, body: &[u8]) -> Denial {
    if status != 403 {
        return Denial::KeyRejected;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Denial::NotPermitted;
    };
    // Gemini's stream endpoint without alt=sse wraps the error in an array.
    let v = match &v {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    };
    let err = v.get("error").unwrap_or(v);
    let field = |name: &str| {
        err.get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let key_word = |s: &str| {
        s.contains("api_key")
            || s.contains("api key")
            || s.contains("authentication")
            || s.contains("account")
    };
    let rejected = match family {
        Family::Anthropic => field("type") == "authentication_error",
        Family::Gemini => err
            .get("details")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("reason").and_then(Value::as_str))
            .any(|r| r.starts_with("API_KEY_") || r == "CONSUMER_SUSPENDED"),
        Family::OpenAi | Family::OpenAiResponses => {
            let (code, kind) = (field("code"), field("type"));
            code != "model_not_found" && (key_word(&code) || key_word(&kind))
        }
    };
    if rejected {
        Denial::KeyRejected
    } else {
        Denial::NotPermitted
    }
}

#[cfg(test)]
mod denial_tests {
    use super::*;

    #[test]
    fn only_a_403_that_names_the_key_rejects_it() {
        use Denial::*;
        use Family::*;
        let cases: &[(Family, u16, &str, Denial)] = &[
            (
                OpenAi,
                401,
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                KeyRejected,
            ),
            (
                OpenAi,
                403,
                r#"{"error":{"message":"Project `proj_1` does not have access to model `gpt-5`","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
                NotPermitted,
            ),
            (
                OpenAi,
                403,
                r#"{"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","code":"unsupported_country_region_territory"}}"#,
                NotPermitted,
            ),
            (
                OpenAi,
                403,
                r#"{"error":{"message":"This key was revoked","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                KeyRejected,
            ),
            (
                OpenAi,
                403,
                r#"{"error":{"message":"Your account is deactivated","type":"invalid_request_error","code":"account_deactivated"}}"#,
                KeyRejected,
            ),
            (OpenAi, 403, "<html>403 Forbidden</html>", NotPermitted),
            (OpenAi, 402, "", KeyRejected),
            (
                Anthropic,
                403,
                r#"{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}"#,
                NotPermitted,
            ),
            (
                Anthropic,
                403,
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
                KeyRejected,
            ),
            (
                Anthropic,
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
                KeyRejected,
            ),
            (
                Gemini,
                403,
                r#"{"error":{"code":403,"message":"You do not have permission to access tuned model tunedModels/x","status":"PERMISSION_DENIED"}}"#,
                NotPermitted,
            ),
            (
                Gemini,
                403,
                r#"{"error":{"code":403,"message":"Requests from this API key are blocked.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_SERVICE_BLOCKED"}]}}"#,
                KeyRejected,
            ),
            (
                Gemini,
                403,
                r#"[{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:x' has been suspended.","status":"PERMISSION_DENIED","details":[{"reason":"CONSUMER_SUSPENDED"}]}}]"#,
                KeyRejected,
            ),
        ];
        for (kind, status, body, want) in cases {
            assert_eq!(
                denial(*kind, *status, body.as_bytes()),
                *want,
                "{kind:?} {status} {body}"
            );
        }
    }
}
