//! Google Gemini (`{base}/models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse` for streams).
//!
//! Anthropic clients are served through the OpenAI format: Gemini <-> OpenAI
//! is translated here, OpenAI <-> Anthropic by the shared translators.

use super::{
    as_openai_request, openai_response_for, parse_json, ClientApi, OpenAiOut, StreamTranslate,
    Vendor,
};
use crate::config::{ApiKey, Provider};
use crate::protocol::gemini as wire;
use crate::protocol::typed::gemini as typed;
use crate::protocol::types::{TranslateError, Usage};
use bytes::{Bytes, BytesMut};
use pingora::http::RequestHeader;
use serde_json::Value;

pub struct GeminiVendor;

impl Vendor for GeminiVendor {
    fn chat_path(&self, p: &Provider, model: &str, stream: bool) -> String {
        // Model names are path segments; keep only characters Google uses.
        let model: String = model
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
            .collect();
        if stream {
            format!(
                "{}/models/{model}:streamGenerateContent?alt=sse",
                p.endpoint.base_path
            )
        } else {
            format!("{}/models/{model}:generateContent", p.endpoint.base_path)
        }
    }

    fn headers(
        &self,
        _p: &Provider,
        key: Option<&ApiKey>,
        req: &mut RequestHeader,
    ) -> pingora::Result<()> {
        if let Some(key) = key {
            req.insert_header("x-goog-api-key", key.raw_header().clone())?;
        }
        Ok(())
    }

    fn translate_request(
        &self,
        client: ClientApi,
        req: &Value,
        p: &Provider,
        _model: &str,
    ) -> Result<Value, TranslateError> {
        let oa = as_openai_request(client, req)?;
        let opts = wire::RequestOptions {
            default_max_tokens: Some(p.default_max_tokens),
        };
        wire::openai_request_to_gemini(&oa, &opts)
    }

    fn translate_request_bytes(
        &self,
        client: ClientApi,
        body: &[u8],
        p: &Provider,
        _upstream_model: &str,
    ) -> Option<Bytes> {
        match client {
            // The model is in the URL path, not the body.
            ClientApi::OpenAi => {
                let opts = wire::RequestOptions {
                    default_max_tokens: Some(p.default_max_tokens),
                };
                typed::request_to_gemini(body, &opts).map(Bytes::from)
            }
            // Anthropic requests go through OpenAI's shape first.
            ClientApi::Anthropic => None,
        }
    }

    fn translate_response(
        &self,
        client: ClientApi,
        body: &[u8],
        client_model: &str,
    ) -> Result<(Bytes, Usage), TranslateError> {
        if client == ClientApi::OpenAi {
            if let Some((out, usage)) = typed::response_to_openai(body, client_model) {
                return Ok((Bytes::from(out), usage));
            }
        }
        let resp = parse_json(body, "response")?;
        let (oa, usage) = wire::gemini_response_to_openai(&resp, client_model)?;
        openai_response_for(client, oa, usage)
    }

    fn stream(
        &self,
        client: ClientApi,
        client_model: &str,
        include_usage: bool,
    ) -> Box<dyn StreamTranslate> {
        // An Anthropic client always gets usage (message_delta carries it).
        let include_usage = include_usage || client == ClientApi::Anthropic;
        Box::new(GeminiStream {
            inner: wire::GeminiToOpenAiStream::new(client_model, include_usage),
            out: OpenAiOut::new(client, client_model),
        })
    }

    fn error_to_openai(&self, status: u16, body: &[u8]) -> (u16, Value) {
        wire::gemini_error_to_openai(status, body)
    }
}

struct GeminiStream {
    inner: wire::GeminiToOpenAiStream,
    out: OpenAiOut,
}

impl StreamTranslate for GeminiStream {
    fn push_event(
        &mut self,
        _event: &str,
        data: &str,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError> {
        let payloads = self.inner.push(data)?;
        self.out.emit(payloads, out)
    }

    fn finish(&mut self, clean: bool, out: &mut BytesMut) -> Result<(), TranslateError> {
        let payloads = self.inner.finish(clean)?;
        self.out.emit(payloads, out)?;
        self.out.close(out);
        Ok(())
    }

    fn usage(&self) -> Usage {
        self.inner.usage()
    }
}
