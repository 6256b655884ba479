//! Connections to vendors: Pingora's transport connector (its pool of idle
//! connections) with HTTP/1 sessions on top — what Pingora's generic HTTP
//! connector does for a peer that offers only HTTP/1, which every peer the
//! gateway builds is (`HttpPeer::new` leaves ALPN at HTTP/1).
//!
//! Why not Pingora's `connectors::http::Connector` itself: its
//! `get_http_session` is one future that holds the TCP + TLS connect state
//! (~9 KB) even when the pool has a connection, so it had to be boxed on
//! every attempt (a 9 KB allocation and copy per request). Here a pooled
//! connection is taken with a small future and only a new connection pays
//! for the boxed connect.

use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::HttpSession as Http1Session;
use pingora::upstreams::peer::{HttpPeer, Peer};
use std::time::Duration;

pub struct Connector {
    transport: TransportConnector,
}

impl Connector {
    pub fn new(options: Option<ConnectorOptions>) -> Connector {
        Connector {
            transport: TransportConnector::new(options),
        }
    }

    /// A session to `peer`, and whether its connection came from the pool.
    pub async fn get_http_session(&self, peer: &HttpPeer) -> pingora::Result<(HttpSession, bool)> {
        if let Some(stream) = self.transport.reused_stream(peer).await {
            let session = Http1Session::new_with_options(stream, peer);
            return Ok((HttpSession::H1(session), true));
        }
        // Boxed: held inline, the connect state would make every future
        // above this one that large, copied on each move, per request.
        let stream = Box::pin(self.transport.new_stream(peer)).await?;
        let session = Http1Session::new_with_options(stream, peer);
        Ok((HttpSession::H1(session), false))
    }

    /// Give a finished session's connection back to the pool when it can
    /// carry another request (keep-alive, body read to the end).
    pub async fn release_http_session(
        &self,
        session: HttpSession,
        peer: &HttpPeer,
        idle_timeout: Option<Duration>,
    ) {
        // Only HTTP/1 sessions are ever made here.
        if let HttpSession::H1(mut h1) = session {
            h1.respect_keepalive();
            if let Some(stream) = h1.reuse().await {
                self.transport
                    .release_stream(stream, peer.reuse_hash(), idle_timeout);
            }
        }
    }
}
