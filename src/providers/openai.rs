//! OpenAI and every OpenAI-compatible server (vLLM, Ollama, DeepSeek, …).

use super::{
    as_openai_request, parse_json, set_model, ClientApi, OpenAiOut, StreamTranslate, Vendor,
};
use crate::config::{ApiKey, Provider};
use crate::protocol::sse::whole_event;
use crate::protocol::typed::anthropic_client;
use crate::protocol::types::{TranslateError, Usage};
use bytes::{Bytes, BytesMut};
use pingora::http::RequestHeader;
use serde_json::Value;

pub struct OpenAiVendor;

impl Vendor for OpenAiVendor {
    fn fixed_chat_path(&self, base_path: &str) -> Option<String> {
        Some(format!("{base_path}/chat/completions"))
    }

    fn headers(
        &self,
        _p: &Provider,
        key: Option<&ApiKey>,
        req: &mut RequestHeader,
    ) -> pingora::Result<()> {
        if let Some(key) = key {
            req.insert_header("authorization", key.bearer().clone())?;
        }
        Ok(())
    }

    fn translate_request(
        &self,
        client: ClientApi,
        req: &Value,
        _p: &Provider,
        model: &str,
    ) -> Result<Value, TranslateError> {
        Ok(set_model(as_openai_request(client, req)?, model))
    }

    fn translate_request_bytes(
        &self,
        client: ClientApi,
        body: &[u8],
        _p: &Provider,
        model: &str,
    ) -> Option<Bytes> {
        match client {
            ClientApi::Anthropic => {
                anthropic_client::request_to_openai(body, model).map(Bytes::from)
            }
            // Same format: never translated.
            ClientApi::OpenAi => None,
        }
    }

    fn translate_response(
        &self,
        client: ClientApi,
        body: &[u8],
        _model: &str,
    ) -> Result<(Bytes, Usage), TranslateError> {
        if client == ClientApi::Anthropic {
            if let Some((out, usage)) = anthropic_client::response_to_anthropic(body) {
                return Ok((Bytes::from(out), usage));
            }
        }
        let resp = parse_json(body, "response")?;
        let usage = usage_of(&resp["usage"]);
        match client {
            // Same format: relayed untouched by the proxy; kept for completeness.
            ClientApi::OpenAi => Ok((Bytes::copy_from_slice(body), usage)),
            ClientApi::Anthropic => {
                let (an, usage) = crate::protocol::anthropic::openai_response_to_anthropic(&resp)?;
                Ok((super::to_bytes(&an)?, usage))
            }
        }
    }

    fn stream(
        &self,
        client: ClientApi,
        client_model: &str,
        _include_usage: bool,
    ) -> Box<dyn StreamTranslate> {
        Box::new(OpenAiStream::new(client, client_model, true))
    }

    fn error_to_openai(&self, status: u16, body: &[u8]) -> (u16, Value) {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if v["error"]["message"].is_string() => (status, v),
            _ => {
                let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
                (
                    status,
                    serde_json::json!({"error": {"message": format!("vendor answered HTTP {status}: {}", text.trim()),
                        "type": "upstream_error", "param": null, "code": null}}),
                )
            }
        }
    }
}

/// OpenAI usage object -> [`Usage`].
pub fn usage_of(u: &Value) -> Usage {
    // One reading everywhere (pass-through logs, streams, translation):
    // floats tolerated, DeepSeek's cache-hit name, cached capped at prompt.
    crate::protocol::anthropic::usage_from_openai(u)
}

/// OpenAI stream to an Anthropic client (the OpenAI->OpenAI case is relayed
/// byte for byte and never built).
pub(crate) struct OpenAiStream {
    out: OpenAiOut,
    usage: Usage,
    done: bool,
    /// Whether the typed fast path may take a chunk; off only in the tests
    /// that compare the two paths.
    typed: bool,
}

impl OpenAiStream {
    pub(crate) fn new(client: ClientApi, client_model: &str, typed: bool) -> Self {
        OpenAiStream {
            out: OpenAiOut::new(client, client_model),
            usage: Usage::default(),
            done: false,
            typed,
        }
    }

    fn close(&mut self, out: &mut BytesMut) {
        if !(self.typed && self.out.close_typed(out)) {
            self.out.close(out);
        }
    }
}

impl StreamTranslate for OpenAiStream {
    fn push_event(
        &mut self,
        _event: &str,
        data: &str,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError> {
        if data.trim() == "[DONE]" {
            self.done = true;
            self.close(out);
            return Ok(());
        }
        // One borrowing parse for the common chunks instead of two `Value`
        // trees (here and in the translator).
        if self.typed && self.out.emit_typed(data, &mut self.usage, out) {
            return Ok(());
        }
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            if v["error"].is_object() {
                let msg = v["error"]["message"]
                    .as_str()
                    .unwrap_or("the vendor reported an error mid-stream");
                return Err(TranslateError::new(msg.to_string()));
            }
            if v["usage"].is_object() {
                self.usage = usage_of(&v["usage"]);
            }
        }
        self.out.emit(vec![data.to_string()], out)
    }

    fn push_raw(&mut self, text: &str, out: &mut BytesMut) -> usize {
        if !self.typed {
            return 0;
        }
        // Whole `data:` events the typed path covers (text deltas in
        // OpenAI's exact form first), and `[DONE]`: what `push_event` does
        // with them. Anything else is left to the parser.
        let mut taken = 0;
        while let Some((data, len)) = whole_event(&text[taken..]) {
            if data == "[DONE]" {
                self.done = true;
                self.close(out);
            } else if !self.out.emit_typed(data, &mut self.usage, out) {
                break;
            }
            taken += len;
        }
        taken
    }

    fn finish(&mut self, clean: bool, out: &mut BytesMut) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        if !clean {
            return Err(TranslateError::new(
                "the vendor's stream ended before [DONE]",
            ));
        }
        // Some compatible servers omit [DONE]; a clean HTTP end is the end.
        self.close(out);
        Ok(())
    }

    fn usage(&self) -> Usage {
        self.out
            .anthropic_usage()
            .filter(|u| u.total_tokens > 0)
            .unwrap_or(self.usage)
    }
}
