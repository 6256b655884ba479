//! OpenAI Chat Completions vendors (OpenAI and every OpenAI-compatible server).
//!
//! SKELETON: replaced by the adapter's implementation.

use crate::protocol::chat::{
    Answer, ChatError, Egress, Family, Request, StreamDecoder, VendorOptions,
};
use bytes::Bytes;

pub struct OpenAiChat;

fn todo() -> ChatError {
    ChatError::bad_request("not implemented yet")
}

impl Egress for OpenAiChat {
    fn family(&self) -> Family {
        Family::OpenAi
    }
    fn encode_request(
        &self,
        _req: &Request<'_>,
        _model: &str,
        _opts: &VendorOptions,
    ) -> Result<Bytes, ChatError> {
        Err(todo())
    }
    fn decode_answer<'a>(&self, _body: &'a [u8]) -> Result<Answer<'a>, ChatError> {
        Err(todo())
    }
    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        unimplemented!("skeleton")
    }
    fn decode_error(&self, status: u16, _body: &[u8]) -> ChatError {
        ChatError::new(
            crate::protocol::chat::ErrorKind::for_status(status),
            status,
            "not implemented yet",
        )
    }
}
