//! The Anthropic Messages API (`POST {base}/messages`): the chat model
//! encoded as its request body ([`request`]), its answers and errors
//! ([`answer`]) and its event stream ([`stream`]) decoded.

mod answer;
pub use answer::WireUsage;
mod request;
mod stream;

use crate::protocol::chat::{
    Answer, ChatError, Egress, Family, Request, StreamDecoder, VendorOptions,
};
use bytes::Bytes;

pub struct AnthropicMessages;

impl Egress for AnthropicMessages {
    fn family(&self) -> Family {
        Family::Anthropic
    }

    fn encode_request(
        &self,
        req: &Request<'_>,
        model: &str,
        opts: &VendorOptions,
    ) -> Result<Bytes, ChatError> {
        request::encode(req, model, opts)
    }

    fn decode_answer<'a>(&self, body: &'a [u8]) -> Result<Answer<'a>, ChatError> {
        answer::decode(body)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::default())
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ChatError {
        answer::error(status, body)
    }
}
