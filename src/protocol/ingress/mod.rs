//! Ingress adapters: one per client API. Each decodes its API's requests
//! into the chat model and encodes answers, stream events and errors back.
//! Adding a client API = one module here implementing
//! [`crate::protocol::chat::Ingress`].

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod responses;
