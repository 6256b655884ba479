//! Google's Gemini API (`generateContent`, `streamGenerateContent`) as a
//! client API. The request body is decoded in `request` (the model and
//! streaming come from the URL: the proxy sets them); answers, stream chunks
//! and errors are written in `encode`, with the wire types the Gemini egress
//! adapter reads (`egress::gemini::wire`).
//!
//! Two adapters, one per stream framing: [`GeminiNative::SSE`]
//! (`?alt=sse`, and every non-streaming call) and [`GeminiNative::ARRAY`]
//! (`streamGenerateContent` without `alt=sse`: Google's streamed JSON
//! array).
//!
//! Documented losses when another vendor answers: `safetySettings`,
//! `cachedContent`, non-function tools and unknown fields (kept for Gemini
//! vendors only); `includeThoughts` (thought parts are sent whenever the
//! vendor reasons in the open); `promptFeedback`, safety ratings and
//! grounding metadata (no vendor but Gemini has them).

mod encode;
mod request;
mod signature;

use crate::protocol::chat::{Answer, ChatError, Family, Ingress, Request, StreamEncoder};
use bytes::Bytes;

/// The Gemini-native ingress adapter.
pub struct GeminiNative {
    /// Streams are a JSON array rather than SSE.
    array: bool,
}

impl GeminiNative {
    /// `generateContent`, and `streamGenerateContent?alt=sse`.
    pub const SSE: GeminiNative = GeminiNative { array: false };
    /// `streamGenerateContent` without `alt=sse`.
    pub const ARRAY: GeminiNative = GeminiNative { array: true };
}

impl Ingress for GeminiNative {
    fn family(&self) -> Family {
        Family::Gemini
    }

    fn decode_request<'a>(&self, body: &'a [u8]) -> Result<Request<'a>, ChatError> {
        request::decode(body)
    }

    fn encode_answer(&self, answer: &Answer<'_>, model: &str) -> Bytes {
        encode::answer(answer, model)
    }

    fn stream_encoder(&self, model: &str, _include_usage: bool) -> Box<dyn StreamEncoder> {
        Box::new(encode::Encoder::new(model, self.array))
    }

    fn encode_error(&self, err: &ChatError) -> Bytes {
        encode::error(err)
    }

    fn stream_error(&self, err: &ChatError) -> Bytes {
        encode::stream_error(err, self.array)
    }
}

#[cfg(test)]
mod tests;
