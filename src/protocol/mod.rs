//! Wire formats, around one chat model. Pure functions and small state
//! machines, no I/O: the proxy feeds bytes in and writes what comes out.
//!
//! - `chat/`: the canonical model (request, answer, stream events, errors),
//!   the adapter traits, and canonical overrides.
//! - `ingress/`: one adapter per client API (decode requests, encode
//!   answers, streams and errors).
//! - `egress/`: one adapter per vendor API (encode requests, decode answers,
//!   streams and errors); vendor quirks live there only.
//! - `json`: JSON reading pieces the adapters share (borrowed strings,
//!   string-or-list fields).
//! - `sse`: the event-stream parser and writer every adapter shares.
//! - `types`: [`types::Usage`], token counts in every class a vendor reports.

pub mod chat;
pub mod egress;
pub mod ingress;
pub mod json;
pub mod sse;
pub mod types;
