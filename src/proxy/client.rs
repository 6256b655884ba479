//! The client APIs the gateway serves, one [`ClientApi`] each: the ingress
//! adapter that speaks its body format (`crate::protocol::ingress`) plus
//! what the data plane needs around it — how the client presents the
//! gateway token, which of its headers same-family vendors must see, and
//! where usage sits in its answers (read off a pass-through answer without
//! translating it, by `protocol::egress::usage`).
//!
//! Adding a client API: an ingress adapter, one `ClientSpec` static here,
//! and its route in `proxy::Gateway::handle`.

use crate::protocol::chat::{Family, Ingress};
use crate::protocol::egress::usage::UsageFormat;
use crate::protocol::ingress;

/// A client API: a small `Copy` key to its static description.
#[derive(Clone, Copy)]
pub struct ClientApi(&'static ClientSpec);

struct ClientSpec {
    name: &'static str,
    ingress: &'static dyn Ingress,
    /// A header that carries the gateway token besides `Authorization:
    /// Bearer` (and wins over it, as with the vendor's own API).
    key_header: Option<&'static str>,
    /// What a client without a token is told.
    missing_key: &'static str,
    /// Client headers a same-family vendor must see (feature flags that
    /// change the wire format). Repeated headers are joined with ", ".
    forward: &'static [&'static str],
    /// Where this API's answers and stream events keep their usage (read
    /// off same-format answers, which are relayed untranslated).
    usage: UsageFormat,
}

static OPENAI: ClientSpec = ClientSpec {
    name: "openai",
    ingress: &ingress::openai::OpenAiChat,
    key_header: None,
    missing_key: "Missing bearer token: send `Authorization: Bearer <AUTH_TOKEN>`",
    forward: &[],
    usage: UsageFormat::OpenAiChat,
};

static ANTHROPIC: ClientSpec = ClientSpec {
    name: "anthropic",
    ingress: &ingress::anthropic::AnthropicMessages,
    // SDKs before 2026-10-21 send `x-api-key`, newer ones a bearer token.
    key_header: Some("x-api-key"),
    missing_key:
        "Missing API key: send `x-api-key: <AUTH_TOKEN>` or `Authorization: Bearer <AUTH_TOKEN>`",
    // The client's version is the wire format it speaks: forwarded as sent
    // (the provider's configured one is used only when it sent none).
    forward: &["anthropic-beta", "anthropic-version"],
    usage: UsageFormat::Anthropic,
};

const GEMINI_SPEC: ClientSpec = ClientSpec {
    name: "gemini",
    ingress: &ingress::gemini::GeminiNative::SSE,
    // Google's SDKs send `x-goog-api-key`; `?key=` is read by the route
    // (`proxy::gemini_native`).
    key_header: Some("x-goog-api-key"),
    missing_key: "Missing API key: send `x-goog-api-key: <AUTH_TOKEN>` or `?key=<AUTH_TOKEN>`",
    forward: &[],
    usage: UsageFormat::Gemini,
};
static GEMINI: ClientSpec = GEMINI_SPEC;

/// Gemini streams without `alt=sse`: the same API, streamed as a JSON
/// array. The gateway always asks Gemini vendors for SSE, so these streams
/// are re-encoded even from a Gemini vendor.
static GEMINI_ARRAY: ClientSpec = ClientSpec {
    name: "gemini",
    ingress: &ingress::gemini::GeminiNative::ARRAY,
    ..GEMINI_SPEC
};

impl ClientApi {
    /// Gemini `generateContent` / `streamGenerateContent?alt=sse`
    /// (`POST /v1beta/models/{model}:...`).
    pub const GEMINI: ClientApi = ClientApi(&GEMINI);
    /// Gemini `streamGenerateContent` without `alt=sse` (a JSON array).
    pub const GEMINI_ARRAY: ClientApi = ClientApi(&GEMINI_ARRAY);

    /// The client API whose model list a request wants: Anthropic's when it
    /// carries `anthropic-version` (every Anthropic SDK sends it), OpenAI's
    /// otherwise. Auth follows the same API (`x-api-key` or a bearer token).
    pub fn for_models(anthropic_version: bool) -> ClientApi {
        if anthropic_version {
            ClientApi::ANTHROPIC
        } else {
            ClientApi::OPENAI
        }
    }

    /// Streams of this API are never relayed as the vendor framed them,
    /// even from a same-family vendor (see [`ClientApi::GEMINI_ARRAY`]).
    pub fn reframes_streams(self) -> bool {
        self == ClientApi::GEMINI_ARRAY
    }

    /// What a translated stream of this API is sent as.
    pub fn stream_content_type(self) -> &'static str {
        if self.reframes_streams() {
            "application/json; charset=UTF-8"
        } else {
            "text/event-stream; charset=utf-8"
        }
    }
}

static RESPONSES: ClientSpec = ClientSpec {
    name: "responses",
    ingress: &ingress::responses::OpenAiResponses,
    key_header: None,
    missing_key: "Missing bearer token: send `Authorization: Bearer <AUTH_TOKEN>`",
    forward: &[],
    usage: UsageFormat::Responses,
};

/// `POST /v1/responses/compact`: served only by Responses-native providers.
static RESPONSES_COMPACT: ClientSpec = ClientSpec {
    name: "responses_compact",
    ingress: &ingress::responses::OpenAiResponses,
    key_header: None,
    missing_key: "Missing bearer token: send `Authorization: Bearer <AUTH_TOKEN>`",
    forward: &[],
    usage: UsageFormat::Responses,
};

impl ClientApi {
    /// OpenAI Responses (`POST /v1/responses`).
    pub const RESPONSES: ClientApi = ClientApi(&RESPONSES);
    /// OpenAI Responses compaction (`POST /v1/responses/compact`).
    pub const RESPONSES_COMPACT: ClientApi = ClientApi(&RESPONSES_COMPACT);

    /// Does `p` speak this client's API itself (the body passes through,
    /// the answer is relayed)? Same family, or a Responses client on a
    /// provider that is Responses-native.
    pub fn native_at(self, p: &crate::config::Provider) -> bool {
        if self == ClientApi::RESPONSES || self == ClientApi::RESPONSES_COMPACT {
            return p.responses_native;
        }
        self.family() == p.vendor.family()
    }

    /// The upstream path when `p` serves this API natively at a path other
    /// than its chat path (Responses: `{base_path}/responses`).
    pub fn native_path(self, p: &crate::config::Provider) -> Option<String> {
        let suffix = if self == ClientApi::RESPONSES {
            "/responses"
        } else if self == ClientApi::RESPONSES_COMPACT {
            "/responses/compact"
        } else {
            return None;
        };
        p.responses_native
            .then(|| format!("{}{suffix}", p.endpoint.base_path))
    }

    /// Only providers that speak this API natively can serve it (nothing
    /// translates a compaction).
    pub fn native_only(self) -> bool {
        self == ClientApi::RESPONSES_COMPACT
    }

    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    pub const OPENAI: ClientApi = ClientApi(&OPENAI);
    /// Anthropic Messages (`POST /v1/messages`).
    pub const ANTHROPIC: ClientApi = ClientApi(&ANTHROPIC);

    pub fn ingress(self) -> &'static dyn Ingress {
        self.0.ingress
    }

    pub fn family(self) -> Family {
        self.0.ingress.family()
    }

    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    pub fn key_header(self) -> Option<&'static str> {
        self.0.key_header
    }

    pub fn missing_key(self) -> &'static str {
        self.0.missing_key
    }

    pub fn forward(self) -> &'static [&'static str] {
        self.0.forward
    }

    /// Where this API's answers and stream events keep their usage.
    pub fn usage_format(self) -> UsageFormat {
        self.0.usage
    }
}

impl Default for ClientApi {
    fn default() -> Self {
        ClientApi::OPENAI
    }
}

impl PartialEq for ClientApi {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for ClientApi {}

impl std::fmt::Debug for ClientApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}
