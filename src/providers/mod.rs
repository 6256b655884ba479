//! Vendor protocols behind one trait.
//!
//! A [`Vendor`] knows its endpoint paths, auth headers, how to turn a
//! client's request into its own format and its answers (whole, streamed,
//! errors) back into the client's. Same-format traffic (OpenAI client to an
//! OpenAI-compatible vendor, Anthropic client to Anthropic) never goes
//! through translation: the proxy relays it byte for byte. Adding a vendor
//! means adding one module here and one variant to `ProviderKind`.

pub mod anthropic;
pub mod gemini;
pub mod openai;

use crate::config::{ApiKey, Provider, ProviderKind};
use crate::protocol::sse::{EventSink, SseEvent, SseParser};
use crate::protocol::types::{TranslateError, Usage};
use bytes::{Bytes, BytesMut};
use pingora::http::RequestHeader;
use serde_json::Value;

/// The API a client speaks to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientApi {
    #[default]
    OpenAi,
    Anthropic,
}

impl ClientApi {
    /// The vendor type that speaks this API natively.
    pub fn native(self) -> ProviderKind {
        match self {
            ClientApi::OpenAi => ProviderKind::OpenAi,
            ClientApi::Anthropic => ProviderKind::Anthropic,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientApi::OpenAi => "openai",
            ClientApi::Anthropic => "anthropic",
        }
    }
}

/// Turns a vendor's event stream into the client's, event by event.
pub trait StreamTranslate: Send {
    /// One upstream event (its name, empty when absent, and its data);
    /// SSE-encoded output events are appended to `out`.
    fn push_event(
        &mut self,
        event: &str,
        data: &str,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError>;
    /// Offered the rest of an upstream read at an event boundary (see
    /// `sse::EventSink::raw`): takes whole events in the vendor's exact
    /// form, with the effect `push_event` would have, and returns the bytes
    /// taken; 0 leaves them to the SSE parser.
    fn push_raw(&mut self, _text: &str, _out: &mut BytesMut) -> usize {
        0
    }
    /// [`Self::push_event`] for an owned event.
    fn push(&mut self, ev: &SseEvent, out: &mut BytesMut) -> Result<(), TranslateError> {
        self.push_event(&ev.event, &ev.data, out)
    }
    /// The upstream body ended (`clean`: HTTP framing complete). Appends the
    /// closing events, or fails when the vendor's stream was truncated.
    fn finish(&mut self, clean: bool, out: &mut BytesMut) -> Result<(), TranslateError>;
    fn usage(&self) -> Usage;
}

/// One upstream read through `parser` into `translator`, as the relay
/// feeds a translated stream: whole events in the vendor's exact form go
/// straight to [`StreamTranslate::push_raw`], the rest through the parser.
/// The first event the translator fails stops the read (what follows it is
/// dropped) and its error is returned.
pub fn feed(
    parser: &mut SseParser,
    translator: &mut dyn StreamTranslate,
    chunk: &[u8],
    out: &mut BytesMut,
) -> Result<(), TranslateError> {
    let mut sink = Feed {
        translator,
        out,
        failure: None,
    };
    parser.push_into(chunk, &mut sink);
    sink.failure.map_or(Ok(()), Err)
}

struct Feed<'a> {
    translator: &'a mut dyn StreamTranslate,
    out: &'a mut BytesMut,
    failure: Option<TranslateError>,
}

impl EventSink for Feed<'_> {
    fn raw(&mut self, text: &str) -> usize {
        self.translator.push_raw(text, self.out)
    }

    fn event(&mut self, event: &str, data: &str) -> bool {
        match self.translator.push_event(event, data, self.out) {
            Ok(()) => true,
            Err(e) => {
                self.failure = Some(e);
                false
            }
        }
    }
}

pub trait Vendor: Sync {
    /// Path and query of the chat endpoint under the provider's base path.
    fn chat_path(&self, p: &Provider, _upstream_model: &str, _stream: bool) -> String {
        self.fixed_chat_path(&p.endpoint.base_path)
            .unwrap_or_default()
    }
    /// The chat path when it depends on neither the model nor the stream
    /// mode: computed once per provider (`Provider::chat_path`) instead of
    /// formatted per request. Vendors without one override `chat_path`.
    fn fixed_chat_path(&self, _base_path: &str) -> Option<String> {
        None
    }
    /// Authentication and protocol headers for one request.
    fn headers(
        &self,
        p: &Provider,
        key: Option<&ApiKey>,
        req: &mut RequestHeader,
    ) -> pingora::Result<()>;
    /// The client's (parsed) request in this vendor's format, with the
    /// upstream model set where the format carries it.
    fn translate_request(
        &self,
        client: ClientApi,
        req: &Value,
        p: &Provider,
        upstream_model: &str,
    ) -> Result<Value, TranslateError>;
    /// The same translation straight from the client's bytes, when a typed
    /// fast path (`crate::protocol::typed`) covers this request. `None`
    /// means "take the general path": the fast paths only accept shapes they
    /// translate exactly as [`Vendor::translate_request`] would, so an
    /// unusual or invalid request still gets the general path's answer.
    fn translate_request_bytes(
        &self,
        _client: ClientApi,
        _body: &[u8],
        _p: &Provider,
        _upstream_model: &str,
    ) -> Option<Bytes> {
        None
    }
    /// A whole success body in the client's format, plus its usage.
    fn translate_response(
        &self,
        client: ClientApi,
        body: &[u8],
        client_model: &str,
    ) -> Result<(Bytes, Usage), TranslateError>;
    /// A translator from this vendor's stream to the client's format.
    fn stream(
        &self,
        client: ClientApi,
        client_model: &str,
        include_usage: bool,
    ) -> Box<dyn StreamTranslate>;
    /// A vendor error body as `(status, OpenAI error JSON)`.
    fn error_to_openai(&self, status: u16, body: &[u8]) -> (u16, Value);
}

pub fn vendor(kind: ProviderKind) -> &'static dyn Vendor {
    match kind {
        ProviderKind::OpenAi => &openai::OpenAiVendor,
        ProviderKind::Anthropic => &anthropic::AnthropicVendor,
        ProviderKind::Gemini => &gemini::GeminiVendor,
    }
}

/// Set `model` in a JSON object body (formats that carry it in the body).
pub(crate) fn set_model(mut v: Value, model: &str) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.insert("model".into(), Value::String(model.to_string()));
    }
    v
}

pub(crate) fn to_bytes(v: &Value) -> Result<Bytes, TranslateError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| TranslateError::new(format!("cannot encode JSON: {e}")))
}

fn parse_json(body: &[u8], what: &str) -> Result<Value, TranslateError> {
    serde_json::from_slice(body)
        .map_err(|e| TranslateError::new(format!("the vendor's {what} is not valid JSON: {e}")))
}

/// OpenAI chunk payloads (`data:` strings) to the client: as they are for an
/// OpenAI client, through an OpenAI->Anthropic translator otherwise.
pub(crate) struct OpenAiOut {
    to_anthropic: Option<crate::protocol::anthropic::OpenAiToAnthropicStream>,
}

impl OpenAiOut {
    pub(crate) fn new(client: ClientApi, client_model: &str) -> Self {
        OpenAiOut {
            to_anthropic: (client == ClientApi::Anthropic)
                .then(|| crate::protocol::anthropic::OpenAiToAnthropicStream::new(client_model)),
        }
    }

    pub(crate) fn emit(
        &mut self,
        payloads: Vec<String>,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError> {
        for data in payloads {
            match &mut self.to_anthropic {
                None => crate::protocol::sse::encode_into(out, "", &data),
                Some(t) => {
                    for (event, data) in t.push(&data)? {
                        crate::protocol::sse::encode_into(out, &event, &data);
                    }
                }
            }
        }
        Ok(())
    }

    /// One chunk payload through the typed fast path
    /// (`crate::protocol::typed::anthropic_client::push_chunk`, which also
    /// fills `raw_usage` as `usage_of` would); `false`, having done nothing,
    /// when it does not cover the chunk: then [`OpenAiOut::emit`] it.
    pub(crate) fn emit_typed(
        &mut self,
        data: &str,
        raw_usage: &mut Usage,
        out: &mut BytesMut,
    ) -> bool {
        match &mut self.to_anthropic {
            Some(t) => {
                crate::protocol::typed::anthropic_client::push_chunk(t, data, raw_usage, out)
            }
            None => false,
        }
    }

    /// [`OpenAiOut::close`] through the typed fast path; `false`, having
    /// done nothing, when it does not cover the state.
    pub(crate) fn close_typed(&mut self, out: &mut BytesMut) -> bool {
        match &mut self.to_anthropic {
            Some(t) => crate::protocol::typed::anthropic_client::close_stream(t, out),
            None => false,
        }
    }

    /// After the OpenAI side ended cleanly: close the Anthropic message.
    pub(crate) fn close(&mut self, out: &mut BytesMut) {
        if let Some(t) = &mut self.to_anthropic {
            for (event, data) in t.finish(true) {
                crate::protocol::sse::encode_into(out, &event, &data);
            }
        }
    }

    pub(crate) fn anthropic_usage(&self) -> Option<Usage> {
        self.to_anthropic.as_ref().map(|t| t.usage())
    }
}

/// An OpenAI-format whole response delivered to the client.
pub(crate) fn openai_response_for(
    client: ClientApi,
    resp: Value,
    usage: Usage,
) -> Result<(Bytes, Usage), TranslateError> {
    match client {
        ClientApi::OpenAi => Ok((to_bytes(&resp)?, usage)),
        ClientApi::Anthropic => {
            let (an, _) = crate::protocol::anthropic::openai_response_to_anthropic(&resp)?;
            Ok((to_bytes(&an)?, usage))
        }
    }
}

/// The client's request as an OpenAI chat request.
pub(crate) fn as_openai_request(client: ClientApi, req: &Value) -> Result<Value, TranslateError> {
    match client {
        ClientApi::OpenAi => Ok(req.clone()),
        ClientApi::Anthropic => crate::protocol::anthropic::anthropic_request_to_openai(req),
    }
}

/// Top-level request fields each cross-format translation reads. Anything
/// else a client sends has no equivalent at that vendor and is dropped; the
/// proxy logs those names at debug level.
pub fn translated_fields(client: ClientApi, kind: ProviderKind) -> &'static [&'static str] {
    const OPENAI_TO_ANTHROPIC: &[&str] = &[
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "n",
        "user",
        "safety_identifier",
        "metadata",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "modalities",
        "audio",
    ];
    const OPENAI_TO_GEMINI: &[&str] = &[
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "response_format",
        "reasoning_effort",
        "include_reasoning",
        "extra_body",
    ];
    const ANTHROPIC_TO_OPENAI: &[&str] = &[
        "model",
        "messages",
        "system",
        "max_tokens",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
    ];
    match (client, kind) {
        (ClientApi::OpenAi, ProviderKind::Anthropic) => OPENAI_TO_ANTHROPIC,
        (ClientApi::OpenAi, ProviderKind::Gemini) => OPENAI_TO_GEMINI,
        (ClientApi::Anthropic, ProviderKind::OpenAi | ProviderKind::Gemini) => ANTHROPIC_TO_OPENAI,
        // Same format: everything passes through.
        (ClientApi::OpenAi, ProviderKind::OpenAi)
        | (ClientApi::Anthropic, ProviderKind::Anthropic) => &[],
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
pub fn denial(kind: ProviderKind, status: u16, body: &[u8]) -> Denial {
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
    let rejected = match kind {
        ProviderKind::Anthropic => field("type") == "authentication_error",
        ProviderKind::Gemini => err
            .get("details")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("reason").and_then(Value::as_str))
            .any(|r| r.starts_with("API_KEY_") || r == "CONSUMER_SUSPENDED"),
        ProviderKind::OpenAi => {
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
        use ProviderKind::*;
        let cases: &[(ProviderKind, u16, &str, Denial)] = &[
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
