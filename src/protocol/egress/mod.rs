//! Egress adapters: one per vendor API. Each encodes the chat model into its
//! vendor's request body and decodes the vendor's answers, stream events and
//! errors. Vendor quirks live in these files and nowhere else. Adding a
//! vendor = one module here implementing [`crate::protocol::chat::Egress`]
//! (plus its endpoint and auth in `crate::providers`).

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod usage;
