//! One request's bookkeeping (what its log line and request-log row
//! report) and the ways it can stop early.

use super::client::ClientApi;
use super::GatewayError;
use crate::protocol::chat::Usage;
use pingora::prelude::*;
use std::time::{Duration, Instant};

/// The response header that carries the request id (the one in the logs).
pub const REQUEST_ID_HEADER: &str = "x-llm-orchestrator-request-id";

/// A new request id: 16 lower-case hex digits of a random `u64` (written
/// by hand: `format!` was ~550 instructions of every request, callgrind).
pub(super) fn new_request_id() -> String {
    hex16(rand::random::<u64>())
}

fn hex16(n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[(n >> (60 - 4 * i)) as usize & 15];
    }
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// What the per-request log line reports.
#[derive(Debug, Default)]
pub struct RequestCtx {
    pub(super) start: Option<Instant>,
    pub(super) route: &'static str,
    pub(super) status: u16,
    pub(super) model: Option<String>,
    pub(super) provider: Option<String>,
    pub(super) key: Option<String>,
    pub(super) attempts: u32,
    pub(super) ttfb: Option<Duration>,
    pub(super) stream: bool,
    /// `ok`, `error`, `stream_cut`, `client_gone`, …
    pub(super) outcome: &'static str,
    pub(super) error: Option<String>,
    /// The API the client speaks (decides the error format).
    pub(super) api: ClientApi,
    pub(super) usage: Option<Usage>,
    /// Logged with every request.
    pub(super) request_id: String,
    /// The model name sent upstream (after aliases and mapping).
    pub(super) upstream_model: Option<String>,
    /// The client key that authorized the request (`None`: the master
    /// `AUTH_TOKEN`, or a loopback client when no token is configured).
    pub(super) client_key: Option<std::sync::Arc<crate::keys::ClientKey>>,
    /// The client key's hold on its limits while the request runs
    /// (settled in `logging`, released when dropped).
    pub(super) limit: Option<crate::keys::limits::Lease>,
}

/// How a request ended when it did not end normally.
pub(super) enum Stop {
    /// Answer with this error in OpenAI format.
    Local(GatewayError),
    /// The connection can't carry a proper answer any more: close it.
    Abort(Box<pingora::Error>),
}

impl From<GatewayError> for Stop {
    fn from(e: GatewayError) -> Self {
        Stop::Local(e)
    }
}

pub(super) fn abort(why: &'static str, ctx: &mut RequestCtx, outcome: &'static str) -> Stop {
    ctx.outcome = outcome;
    Stop::Abort(pingora::Error::explain(ErrorType::ConnectionClosed, why))
}

/// Resolves when the client has gone away (closed or reset its connection).
/// Racing this against upstream work stops a vendor from generating (and
/// billing) an answer nobody will read.
pub(super) async fn client_gone(session: &mut super::downstream::Downstream) {
    session.client_gone().await
}

/// Resolves once the shutdown grace period has run out.
pub(super) async fn grace_over(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|&over| over).await.is_err() {
        // The state (and its sender) outlives every request.
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_sixteen_hex_digits_of_the_number() {
        for n in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            assert_eq!(super::hex16(n), format!("{n:016x}"));
        }
        let id = super::new_request_id();
        assert!(
            id.len() == 16
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
