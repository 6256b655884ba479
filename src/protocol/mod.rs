//! Wire formats. Pure functions and small state machines, no I/O: the proxy
//! feeds bytes in and writes what comes out.

pub mod anthropic;
pub mod chat;
pub mod egress;
pub mod gemini;
pub mod ingress;
pub mod openai;
pub mod overrides;
pub mod sse;
pub mod typed;
pub mod types;
