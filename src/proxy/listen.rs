//! The data plane's listening service: its own accept loop, one task per
//! client connection holding only the edge's future.
//!
//! Why not Pingora's `services::listening::Service`: its task per
//! connection holds the TLS handshake's future inline (8 KiB per connection
//! for a listener that never does TLS), and it calls the app through
//! `async_trait`, which boxes the connection's future again (~3.6 KiB,
//! built on the stack and copied in). With 1,000 open streams those two
//! were 12.8 MB of a 43.7 MB heap (heaptrack, BENCHMARKS.md "Session 13").
//!
//! The listening socket is still Pingora's to hand over: it is taken from
//! the `ListenFds` table when a graceful upgrade (`--upgrade`) passed it
//! from the old process, and put in the table when this process bound it,
//! so the next upgrade passes it on (the contract `ServiceWithDependents`
//! documents). Connections get what Pingora's listener gave them: a
//! socket digest with the peer address (the loopback rule reads it) and
//! `TCP_NODELAY`.

use super::edge::{EdgeApp, Serve};
use async_trait::async_trait;
use pingora::protocols::l4::stream::Stream as L4;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream};
use pingora::server::{ListenFds, ShutdownWatch};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;

/// Pending connections the kernel queues before `accept` (as Pingora).
const BACKLOG: u32 = 65_535;
/// Pause after an `accept` that failed for want of descriptors or memory,
/// which would otherwise fail again at once and spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The data plane listening on one address.
pub struct DataPlane<A> {
    addr: String,
    edge: Arc<EdgeApp<A>>,
}

impl<A> DataPlane<A> {
    pub fn new(addr: String, edge: EdgeApp<A>) -> Self {
        DataPlane {
            addr,
            edge: Arc::new(edge),
        }
    }
}

#[async_trait]
impl<A> pingora::services::Service for DataPlane<A>
where
    A: Serve + Send + Sync + 'static,
{
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let listener = match listen(&self.addr, fds) {
            Ok(l) => l,
            Err(e) => {
                // Pingora's listening service panics here; a gateway that
                // cannot listen has nothing to do, so say why and stop.
                tracing::error!(addr = %self.addr, error = %e, "cannot listen on the data-plane address");
                eprintln!("cannot listen on {}: {e}", self.addr);
                std::process::exit(1);
            }
        };
        loop {
            let accepted = tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                    continue;
                }
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let stream = client_stream(tcp, peer);
                    let edge = self.edge.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move { edge.connection(stream, &shutdown).await });
                    // One accept per turn of the scheduler, as an event loop
                    // takes one readiness at a time: without this the loop
                    // accepts up to Tokio's budget (128) in a row, and in a
                    // burst of new connections the first ones wait for all
                    // of them to be accepted and read before their vendor
                    // answers are relayed. `yield_now` goes behind the tasks
                    // already queued and the next I/O poll.
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a client connection failed");
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the next accept
                    // fails too until something is released.
                    if matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
    }

    fn name(&self) -> &str {
        "llm-orchestrator data plane"
    }
}

/// The listening socket for `addr`: the one a graceful upgrade passed in
/// the fd table, or a new one (then registered there).
fn listen(addr: &str, fds: Option<ListenFds>) -> std::io::Result<tokio::net::TcpListener> {
    if let Some(fd) = fds.as_ref().and_then(|t| t.lock().get(addr).copied()) {
        let std = inherited(fd);
        std.set_nonblocking(true)?;
        return tokio::net::TcpListener::from_std(std);
    }
    let sock_addr = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr} resolves to no address")))?;
    let socket = match sock_addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }?;
    // Lets the listener bind beside `server::PortHold`'s bound twin.
    socket.set_reuseaddr(true)?;
    socket.bind(sock_addr)?;
    let listener = socket.listen(BACKLOG)?;
    if let Some(table) = fds {
        table.lock().add(addr.to_string(), listener.as_raw_fd());
    }
    Ok(listener)
}

/// The listening socket a graceful upgrade passed as descriptor `fd`.
#[allow(unsafe_code)]
fn inherited(fd: std::os::fd::RawFd) -> std::net::TcpListener {
    // SAFETY: Pingora's upgrade handshake received this descriptor from the
    // old process (SCM_RIGHTS) for exactly this address and put it in the
    // table; nothing else in this process owns or closes it, and only this
    // service takes it from the table, once.
    unsafe { std::net::TcpListener::from_raw_fd(fd) }
}

/// A client connection as Pingora's listener makes it.
fn client_stream(tcp: tokio::net::TcpStream, peer: SocketAddr) -> Stream {
    let mut stream = L4::from(tcp);
    let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
    // A new digest: the cell is empty.
    let _ = digest.peer_addr.set(Some(peer.into()));
    stream.set_socket_digest(digest);
    if let Err(e) = stream.set_nodelay() {
        tracing::debug!(error = %e, "TCP_NODELAY on a client connection");
    }
    Box::new(stream)
}
