//! Client connections whose flushes the relay can hold back, so a stream's
//! response head goes out in one write with its first events, and its
//! last events with the chunked terminator.
//!
//! Pingora's HTTP/1 session flushes a response head that has no
//! `Content-Length` at once (it "could be generated in real time"), then
//! every body chunk, then the terminating chunk: three `sendto` for a
//! stream whose events are already in hand (the failover check read them),
//! where one would do, and each wakes the client. [`Corked`] collects the
//! writes in its buffer ([`WRITE_BUFFER`]) and skips the flushes the relay
//! asks it to skip ([`set`]); the relay always ends with a flush that is
//! not skipped.

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};

/// Bytes of writes collected before they go out (Pingora's own client
/// write buffer is 1,460): a stream's head and first events, or its last
/// events and the terminator, fit in one write, and translated events are
/// larger than pass-through ones. Allocated with the connection, touched
/// only as far as it is written.
pub const WRITE_BUFFER: usize = 4096;

/// A client connection (see the module docs).
#[derive(Debug)]
pub struct Corked {
    inner: BufWriter<Stream>,
    /// Flushes are skipped while set.
    corked: AtomicBool,
}

impl Corked {
    pub fn wrap(inner: Stream) -> Stream {
        Box::new(Corked {
            inner: BufWriter::with_capacity(WRITE_BUFFER, inner),
            corked: AtomicBool::new(false),
        })
    }
}

/// Skip the flushes of the client connection under `session` (`true`), or
/// flush again (`false`). Nothing happens on a connection that is not a
/// [`Corked`] one.
pub fn set(session: &pingora::proxy::Session, on: bool) {
    if let pingora::protocols::http::ServerSession::H1(h) = &*session.downstream_session {
        if let Some(c) = h.stream().as_any().downcast_ref::<Corked>() {
            c.corked.store(on, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Corked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Corked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.corked.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Corked {
    async fn shutdown(&mut self) {
        // What is still buffered goes out before the FIN.
        let _ = self.inner.flush().await;
        Shutdown::shutdown(self.inner.get_mut().as_mut()).await
    }
}

impl UniqueID for Corked {
    fn id(&self) -> UniqueIDType {
        self.inner.get_ref().id()
    }
}

impl Ssl for Corked {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ref().get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ref().get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.get_ref().selected_alpn_proto()
    }
}

impl GetTimingDigest for Corked {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_ref().get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_ref().get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_ref().get_write_pending_time()
    }
}

impl GetProxyDigest for Corked {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_ref().get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.get_mut().set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Corked {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_ref().get_socket_digest()
    }

    fn set_socket_digest(&mut self, socket_digest: SocketDigest) {
        self.inner.get_mut().set_socket_digest(socket_digest)
    }
}

#[async_trait]
impl Peek for Corked {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.get_mut().try_peek(buf).await
    }
}
