//! Anthropic Messages API (`POST {base}/messages`).

use super::{parse_json, set_model, to_bytes, ClientApi, StreamTranslate, Vendor};
use crate::config::{ApiKey, Provider};
use crate::protocol::anthropic as wire;
use crate::protocol::sse::encode_into;
use crate::protocol::typed::openai_client as typed;
use crate::protocol::types::{TranslateError, Usage};
use bytes::{Bytes, BytesMut};
use pingora::http::RequestHeader;
use serde_json::Value;

pub struct AnthropicVendor;

/// API versions from 2026-10-21 reject temperature/top_p/top_k outright.
fn rejects_sampling(version: &str) -> bool {
    version >= "2026-10-21"
}

impl Vendor for AnthropicVendor {
    fn fixed_chat_path(&self, base_path: &str) -> Option<String> {
        Some(format!("{base_path}/messages"))
    }

    fn headers(
        &self,
        p: &Provider,
        key: Option<&ApiKey>,
        req: &mut RequestHeader,
    ) -> pingora::Result<()> {
        if let Some(key) = key {
            req.insert_header("x-api-key", key.raw_header().clone())?;
        }
        req.insert_header("anthropic-version", p.anthropic_version_header.clone())?;
        Ok(())
    }

    fn translate_request(
        &self,
        client: ClientApi,
        req: &Value,
        p: &Provider,
        model: &str,
    ) -> Result<Value, TranslateError> {
        match client {
            // Same format: the proxy relays it; only the model changes.
            ClientApi::Anthropic => Ok(set_model(req.clone(), model)),
            ClientApi::OpenAi => {
                let opts = wire::RequestOptions {
                    default_max_tokens: p.default_max_tokens,
                    drop_sampling: rejects_sampling(&p.anthropic_version),
                };
                Ok(set_model(
                    wire::openai_request_to_anthropic(req, &opts)?,
                    model,
                ))
            }
        }
    }

    fn translate_request_bytes(
        &self,
        client: ClientApi,
        body: &[u8],
        p: &Provider,
        upstream_model: &str,
    ) -> Option<Bytes> {
        match client {
            ClientApi::OpenAi => {
                let opts = wire::RequestOptions {
                    default_max_tokens: p.default_max_tokens,
                    drop_sampling: rejects_sampling(&p.anthropic_version),
                };
                typed::request_to_anthropic(body, &opts, upstream_model).map(Bytes::from)
            }
            ClientApi::Anthropic => None,
        }
    }

    fn translate_response(
        &self,
        client: ClientApi,
        body: &[u8],
        _model: &str,
    ) -> Result<(Bytes, Usage), TranslateError> {
        if client == ClientApi::OpenAi {
            if let Some((out, usage)) = typed::response_to_openai(body) {
                return Ok((Bytes::from(out), usage));
            }
        }
        let resp = parse_json(body, "response")?;
        let (oa, usage) = wire::anthropic_response_to_openai(&resp)?;
        match client {
            ClientApi::OpenAi => Ok((to_bytes(&oa)?, usage)),
            ClientApi::Anthropic => Ok((Bytes::copy_from_slice(body), usage)),
        }
    }

    fn stream(
        &self,
        client: ClientApi,
        client_model: &str,
        include_usage: bool,
    ) -> Box<dyn StreamTranslate> {
        match client {
            ClientApi::OpenAi => Box::new(AnthropicToOpenAi(wire::AnthropicToOpenAiStream::new(
                client_model,
                include_usage,
            ))),
            // Never built: same-format streams are relayed byte for byte.
            ClientApi::Anthropic => Box::new(AnthropicPassThrough::default()),
        }
    }

    fn error_to_openai(&self, status: u16, body: &[u8]) -> (u16, Value) {
        wire::anthropic_error_to_openai(status, body)
    }
}

struct AnthropicToOpenAi(wire::AnthropicToOpenAiStream);

impl StreamTranslate for AnthropicToOpenAi {
    fn push_event(
        &mut self,
        event: &str,
        data: &str,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError> {
        // Chunks are written straight into `out`; a failed event sends
        // nothing.
        self.0.push_into(event, data, out)
    }

    fn push_raw(&mut self, text: &str, out: &mut BytesMut) -> usize {
        // Text deltas as Anthropic writes them.
        self.0.push_canonical_events(text, out)
    }

    fn finish(&mut self, _clean: bool, _out: &mut BytesMut) -> Result<(), TranslateError> {
        if self.0.finished() {
            Ok(())
        } else {
            Err(TranslateError::new(
                "the vendor's stream ended before message_stop",
            ))
        }
    }

    fn usage(&self) -> Usage {
        self.0.usage()
    }
}

#[derive(Default)]
struct AnthropicPassThrough {
    usage: Usage,
}

impl StreamTranslate for AnthropicPassThrough {
    fn push_event(
        &mut self,
        event: &str,
        data: &str,
        out: &mut BytesMut,
    ) -> Result<(), TranslateError> {
        encode_into(out, event, data);
        Ok(())
    }
    fn finish(&mut self, _clean: bool, _out: &mut BytesMut) -> Result<(), TranslateError> {
        Ok(())
    }
    fn usage(&self) -> Usage {
        self.usage
    }
}

/// Fold an Anthropic usage object (from `message_start`, `message_delta` or
/// a whole message) into [`Usage`]. Prompt tokens count cached and
/// cache-creation tokens too, so they compare with OpenAI's prompt_tokens.
pub fn merge_usage(acc: &mut Usage, u: &Value) {
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let input = [
        n("input_tokens"),
        n("cache_read_input_tokens"),
        n("cache_creation_input_tokens"),
    ];
    if input.iter().any(Option::is_some) {
        acc.prompt_tokens = input
            .iter()
            .flatten()
            .fold(0u64, |a, n| a.saturating_add(*n));
        acc.cached_tokens = n("cache_read_input_tokens").unwrap_or(acc.cached_tokens);
    }
    if let Some(out) = n("output_tokens") {
        acc.completion_tokens = out;
    }
    acc.total_tokens = acc.prompt_tokens.saturating_add(acc.completion_tokens);
}
