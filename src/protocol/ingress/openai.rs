//! OpenAI Chat Completions clients (`POST /v1/chat/completions`).
//!
//! SKELETON: replaced by the adapter's implementation.

use crate::protocol::chat::{Answer, ChatError, Family, Ingress, Request, StreamEncoder};
use bytes::Bytes;

pub struct OpenAiChat;

fn todo() -> ChatError {
    ChatError::bad_request("not implemented yet")
}

impl Ingress for OpenAiChat {
    fn family(&self) -> Family {
        Family::OpenAi
    }
    fn decode_request<'a>(&self, _body: &'a [u8]) -> Result<Request<'a>, ChatError> {
        Err(todo())
    }
    fn encode_answer(&self, _answer: &Answer<'_>, _model: &str) -> Bytes {
        Bytes::new()
    }
    fn stream_encoder(&self, _model: &str, _include_usage: bool) -> Box<dyn StreamEncoder> {
        unimplemented!("skeleton")
    }
    fn encode_error(&self, _err: &ChatError) -> Bytes {
        Bytes::new()
    }
    fn stream_error(&self, _err: &ChatError) -> Bytes {
        Bytes::new()
    }
}
