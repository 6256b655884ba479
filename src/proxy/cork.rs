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
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes of writes collected before they go out (Pingora's own client
/// write buffer is 1,460): a stream's head and first events, or its last
/// events and the terminator, fit in one write, and translated events are
/// larger than pass-through ones. A write this large goes out directly.
/// 16 KiB: a Responses stream of five text events is 3.9 KB where the chat
/// chunks it is made from are 1.4 KB, and at 4 KiB it went out in two
/// `sendto` (strace). The buffer grows to this only for writes that need it
/// and is freed by the flush that sends it (see [`FIRST_ALLOCATION`]).
pub const WRITE_BUFFER: usize = 16 * 1024;

/// The buffer's first allocation (made by the first write after a flush,
/// not when the connection opens): a whole answer's head and a short body,
/// or a stream's head and first events. It grows up to [`WRITE_BUFFER`]
/// only for writes that need it, and is freed by every flush that sends
/// it all, so 1,000 open streams waiting for their next event hold none.
const FIRST_ALLOCATION: usize = 1024;

/// A client connection (see the module docs).
#[derive(Debug)]
pub struct Corked {
    inner: Stream,
    /// Writes not yet sent. Tokio's `BufWriter` allocates its whole
    /// capacity up front; this one starts empty (see [`FIRST_ALLOCATION`]).
    buf: Vec<u8>,
    /// How much of `buf` an interrupted flush already sent.
    sent: usize,
    /// Flushes are skipped while set.
    corked: AtomicBool,
}

impl Corked {
    pub fn wrap(inner: Stream) -> Stream {
        Box::new(Corked {
            inner,
            buf: Vec::new(),
            sent: 0,
            corked: AtomicBool::new(false),
        })
    }

    /// Send what is buffered (not the inner stream's flush).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Room for `n` more bytes: send what is buffered when they would not
    /// fit; `false` when `n` bytes should bypass the buffer.
    fn poll_room(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<io::Result<bool>> {
        if self.buf.len() + n > WRITE_BUFFER {
            ready!(self.poll_send(cx))?;
        }
        if n >= WRITE_BUFFER {
            return Poll::Ready(Ok(false));
        }
        let need = self.buf.len() + n;
        if need > self.buf.capacity() {
            // Doubling, never past WRITE_BUFFER (`need` is within it).
            let cap = (self.buf.capacity() * 2).clamp(FIRST_ALLOCATION, WRITE_BUFFER);
            self.buf.reserve_exact(cap.max(need) - self.buf.len());
        }
        Poll::Ready(Ok(true))
    }
}

/// Skip the flushes of the client connection under `session` (`true`), or
/// flush again (`false`). Nothing happens on a connection that is not a
/// [`Corked`] one.
pub fn set(session: &super::downstream::Downstream, on: bool) {
    if let Some(c) = session.stream().as_any().downcast_ref::<Corked>() {
        c.corked.store(on, Ordering::Relaxed);
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
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if ready!(this.poll_room(cx, data.len()))? {
            this.buf.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        } else {
            Pin::new(&mut this.inner).poll_write(cx, data)
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let n = bufs.iter().map(|b| b.len()).sum::<usize>();
        if ready!(this.poll_room(cx, n))? {
            for b in bufs {
                this.buf.extend_from_slice(b);
            }
            Poll::Ready(Ok(n))
        } else {
            Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
        }
    }

    fn is_write_vectored(&self) -> bool {
        // Collected into the buffer either way.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.corked.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_send(cx))?;
        // Everything went out: the buffer goes too. A stream waits between
        // events, and a keep-alive connection between requests, most of its
        // life; the next write allocates again (a thread-cached allocation).
        self.buf = Vec::new();
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Corked {
    async fn shutdown(&mut self) {
        // What is still buffered goes out before the FIN.
        let _ = std::future::poll_fn(|cx| self.poll_send(cx)).await;
        Shutdown::shutdown(self.inner.as_mut()).await
    }
}

impl UniqueID for Corked {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Corked {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Corked {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Corked {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Corked {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, socket_digest: SocketDigest) {
        self.inner.set_socket_digest(socket_digest)
    }
}

#[async_trait]
impl Peek for Corked {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A `Corked` over a real loopback connection, and its other end.
    async fn pair() -> (Corked, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let stream: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(
            client.unwrap(),
        ));
        let corked = Corked {
            inner: stream,
            buf: Vec::new(),
            sent: 0,
            corked: AtomicBool::new(false),
        };
        (corked, server.unwrap().0)
    }

    async fn read_exactly(peer: &mut tokio::net::TcpStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        peer.read_exact(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn nothing_is_allocated_before_the_first_write_and_never_past_the_bound() {
        let (mut c, mut peer) = pair().await;
        assert_eq!(c.buf.capacity(), 0);
        c.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert_eq!(c.buf.capacity(), FIRST_ALLOCATION);
        let mut sent = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        // Writes of every size up to past the bound, in one buffer.
        for n in [1, 700, 1500, 2000, 4096, 9000, 16383, 16384, 20000, 3] {
            let piece = vec![b'a' + (n % 26) as u8; n];
            c.write_all(&piece).await.unwrap();
            sent.extend_from_slice(&piece);
            assert!(c.buf.capacity() <= WRITE_BUFFER, "{}", c.buf.capacity());
            assert!(c.buf.len() < WRITE_BUFFER);
        }
        let vectored = [
            io::IoSlice::new(b"12\r\n"),
            io::IoSlice::new(b"data: x\n\n\r\n"),
        ];
        let n = c.write_vectored(&vectored).await.unwrap();
        assert_eq!(n, 15);
        sent.extend_from_slice(b"12\r\ndata: x\n\n\r\n");
        c.flush().await.unwrap();
        // A flush that sent everything frees the buffer; the next write
        // allocates the first size again.
        assert_eq!(c.buf.capacity(), 0);
        assert_eq!(read_exactly(&mut peer, sent.len()).await, sent);
        c.write_all(b"next").await.unwrap();
        assert_eq!(c.buf.capacity(), FIRST_ALLOCATION);
    }

    #[tokio::test]
    async fn a_corked_flush_sends_nothing_until_uncorked() {
        let (mut c, mut peer) = pair().await;
        c.corked.store(true, Ordering::Relaxed);
        c.write_all(b"head").await.unwrap();
        c.flush().await.unwrap();
        assert_eq!(c.buf, b"head");
        let mut one = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(100), peer.read(&mut one)).await;
        assert!(early.is_err(), "bytes went out through a corked flush");
        c.write_all(b" and events").await.unwrap();
        c.corked.store(false, Ordering::Relaxed);
        c.flush().await.unwrap();
        assert_eq!(read_exactly(&mut peer, 15).await, b"head and events");
    }

    #[tokio::test]
    async fn shutdown_sends_what_is_buffered_before_the_fin() {
        let (mut c, mut peer) = pair().await;
        c.corked.store(true, Ordering::Relaxed);
        c.write_all(b"0\r\n\r\n").await.unwrap();
        Shutdown::shutdown(&mut c).await;
        let mut all = Vec::new();
        peer.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"0\r\n\r\n");
    }
}
