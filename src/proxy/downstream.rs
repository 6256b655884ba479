//! The HTTP/1.1 server side of one client request: its head (parsed once,
//! by the edge), its body as it comes (`Content-Length` or chunked, with
//! `proxy::h1`'s decoder), and the answer (head, then a body framed by
//! length, chunks, or the connection's close).
//!
//! Why not Pingora's `v1::server::HttpSession`: the edge has to parse each
//! head itself (its limits and JSON refusals), and Pingora parsed it again
//! into a `RequestHeader` — every field's name into a `HeaderName`, hashed
//! into two maps (one for the original case) — and serialised each answer
//! from a `ResponseHeader` after inserting `Date` and `Connection` by name:
//! ~13k instructions per request (callgrind), a tenth of a pass-through
//! request. Here the edge's parse is kept as offsets into the head's bytes
//! ([`super::fields::Fields`]) and the answer's head is written straight
//! from `http` parts with constant names.
//!
//! Keep-alive follows RFC 9112 §9.3: HTTP/1.1 unless `Connection: close`,
//! HTTP/1.0 only with `Connection: keep-alive`, and never after an answer
//! or request body that did not end cleanly. Bytes a client sends after a
//! request's body (a pipelined next request) are kept for the next head.

use super::fields::{spans_of, Fields, Span};
use super::h1::{decode, ends_chunked, has_token, parse_length, timed_read, Body, Chunk};
use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderValue, Method, StatusCode, Uri, Version};
use pingora::protocols::Stream;
use pingora::{Error, ErrorType, Result};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Header fields per request, as in Pingora (`MAX_HEADERS`).
pub const MAX_HEADERS: usize = 256;
/// Most bytes read per body read.
const BODY_READ: usize = 64 * 1024;
/// Most bytes a client may send beyond its request while the answer is
/// being prepared (a pipelined next request) before they are left in the
/// socket.
const IDLE_READ_LIMIT: usize = 64 * 1024;

/// A request head: method, target, version and fields.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: Fields,
}

/// What a successful parse of a complete head found, as offsets into the
/// buffer it was parsed from (the buffer is still borrowed by the parse).
#[derive(Debug)]
pub struct HeadParse {
    len: usize,
    method: Method,
    target: (usize, usize),
    version: Version,
    spans: Vec<Span>,
}

impl HeadParse {
    /// From httparse's complete parse of `buf` (`len` bytes of head).
    pub fn of(req: &httparse::Request<'_, '_>, buf: &[u8], len: usize) -> Option<HeadParse> {
        let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
        let path = req.path?;
        let start = path.as_ptr() as usize - buf.as_ptr() as usize;
        Some(HeadParse {
            len,
            method,
            target: (start, start + path.len()),
            version: if req.version == Some(0) {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            },
            spans: spans_of(buf.as_ptr(), req.headers),
        })
    }
}

impl RequestHead {
    /// The head `p` found at the start of `buf`, taken out of it (what
    /// follows stays in `buf`), and how its body is framed. `Err`: what is
    /// wrong with a head the parser took (a target `http::Uri` refuses, a
    /// length beyond `u64`).
    pub fn take(
        buf: &mut BytesMut,
        p: HeadParse,
    ) -> std::result::Result<(RequestHead, RequestBody), &'static str> {
        let bytes = buf.split_to(p.len).freeze();
        let uri = Uri::from_maybe_shared(bytes.slice(p.target.0..p.target.1))
            .map_err(|_| "invalid character in the request target")?;
        let head = RequestHead {
            method: p.method,
            uri,
            version: p.version,
            headers: Fields::new(bytes, p.spans),
        };
        let body = head.body()?;
        Ok((head, body))
    }

    /// Parse a complete head at the start of `buf` (the rare second parse,
    /// of a request line the edge escaped).
    pub fn parse(
        buf: &mut BytesMut,
    ) -> std::result::Result<(RequestHead, RequestBody), &'static str> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let p = match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => HeadParse::of(&req, buf, len),
            _ => None,
        };
        let p = p.ok_or("invalid request head")?;
        RequestHead::take(buf, p)
    }

    /// How the body is framed (RFC 9112 §6.3; the edge refused what is
    /// ambiguous): chunked when the final coding says so, else by length,
    /// else none.
    fn body(&self) -> std::result::Result<RequestBody, &'static str> {
        if self.headers.contains("transfer-encoding") {
            return Ok(RequestBody(Body::Chunked(Chunk::Size)));
        }
        let Some(v) = self.headers.get("content-length") else {
            return Ok(RequestBody(Body::Done));
        };
        // Identical repeats were checked by the edge: the first tells.
        let first = v.split(|&b| b == b',').next().unwrap_or_default();
        match parse_length(first.trim_ascii()) {
            Some(0) => Ok(RequestBody(Body::Done)),
            Some(n) => Ok(RequestBody(Body::Length(n))),
            None => Err("Content-Length is not a number a body can have"),
        }
    }

    /// Whether the client asks to keep the connection (RFC 9112 §9.3).
    fn wants_keepalive(&self) -> bool {
        let mut tokens = self.headers.get_all("connection");
        if self.version == Version::HTTP_10 {
            tokens.any(|v| has_token(v, b"keep-alive"))
        } else {
            !tokens.any(|v| has_token(v, b"close"))
        }
    }
}

/// How a request's body is framed (opaque outside this module).
#[derive(Debug, Clone, Copy)]
pub struct RequestBody(Body);

/// How the answer's body goes out, and how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// The head is not written yet.
    Head,
    /// This many bytes are still to go.
    Length(u64),
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client and no length).
    UntilClose,
    /// Ended (or there is none: `HEAD`, 204, 304).
    Done,
}

/// One request on a client connection (see the module docs).
pub struct Downstream {
    stream: Stream,
    head: RequestHead,
    /// Bytes read after the head: the body's, then a pipelined next
    /// request's.
    buf: BytesMut,
    body: Body,
    read_timeout: Option<Duration>,
    keepalive: bool,
    /// The client closed its side (seen while waiting for the answer).
    half_closed: bool,
    writer: Writer,
    status: Option<StatusCode>,
    /// The client waits for `100 Continue` before it sends the body
    /// (`Expect: 100-continue`, RFC 9110 §10.1.1), not sent yet.
    expect_continue: bool,
}

impl Downstream {
    /// The request `head` read from `stream`; `buf` holds what arrived
    /// after it.
    pub fn new(stream: Stream, head: RequestHead, body: RequestBody, buf: BytesMut) -> Downstream {
        let keepalive = head.wants_keepalive();
        let expect_continue = head.version == Version::HTTP_11
            && head
                .headers
                .get("expect")
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"));
        Downstream {
            stream,
            head,
            buf,
            body: body.0,
            read_timeout: None,
            keepalive,
            half_closed: false,
            writer: Writer::Head,
            status: None,
            expect_continue,
        }
    }

    pub fn req_header(&self) -> &RequestHead {
        &self.head
    }

    /// Close the connection after this request (`false`); `true` keeps
    /// the client's own wish.
    pub fn set_keepalive(&mut self, on: bool) {
        self.keepalive &= on;
    }

    /// Each body read waits at most this long.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The whole request body has been read.
    pub fn is_body_done(&self) -> bool {
        self.body == Body::Done
    }

    /// Body bytes still to come when the body has a length (before the
    /// first read: its `Content-Length`); `None` for a chunked body or
    /// none.
    pub fn body_length_left(&self) -> Option<u64> {
        match self.body {
            Body::Length(n) => Some(n),
            _ => None,
        }
    }

    pub fn client_addr(&self) -> Option<std::net::SocketAddr> {
        let digest = self.stream.get_socket_digest()?;
        digest.peer_addr()?.as_inet().copied()
    }

    /// The status of the answer's head, once written.
    pub fn response_status(&self) -> Option<u16> {
        self.status.map(|s| s.as_u16())
    }

    /// The client connection (the relay holds back its flushes, `cork`).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The next body bytes; `None` once the body has ended. A read that
    /// waits longer than the read timeout is `ReadTimedout`; a client that
    /// closes mid-body is `ConnectionClosed`; bad chunk framing is an error.
    pub async fn read_request_body(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(bytes) = decode(&mut self.body, &mut self.buf)? {
                return Ok(Some(bytes));
            }
            if self.body == Body::Done {
                return Ok(None);
            }
            if std::mem::take(&mut self.expect_continue) && self.writer == Writer::Head {
                // The body is wanted: without this, a client waits for its
                // own timeout (curl: 1 s) before sending it.
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n", "writing 100 Continue")
                    .await?;
                self.flush().await?;
            }
            if self.fill().await? == 0 {
                self.keepalive = false;
                return Err(Error::explain(
                    ErrorType::ConnectionClosed,
                    "the client closed the connection before the body ended",
                ));
            }
        }
    }

    async fn fill(&mut self) -> Result<usize> {
        let want = match self.body {
            Body::Length(n) => n.min(BODY_READ as u64) as usize,
            _ => 16 * 1024,
        };
        if self.buf.capacity() - self.buf.len() < want.min(4096) {
            self.buf.reserve(want);
        }
        // A body that is already here (most are, in the head's packet)
        // registers no timer.
        let read = self.stream.read_buf(&mut self.buf);
        timed_read(read, self.read_timeout, "while reading the request body").await
    }

    /// Resolves when the client has closed its connection (or it broke)
    /// while the answer is prepared. Bytes it sends meanwhile are kept:
    /// the rest of the body, or a pipelined next request. Cancel-safe.
    pub async fn client_gone(&mut self) {
        while !self.half_closed {
            let room = IDLE_READ_LIMIT.saturating_sub(self.buf.len());
            if room == 0 {
                // Enough held: the rest waits in the socket.
                return std::future::pending().await;
            }
            let mut probe = [0u8; 512];
            let want = room.min(probe.len());
            match self.stream.read(&mut probe[..want]).await {
                Ok(0) | Err(_) => {
                    self.half_closed = true;
                    self.keepalive = false;
                }
                Ok(n) => self.buf.extend_from_slice(&probe[..n]),
            }
        }
    }

    /// Write the answer's head (`end`: there is no body). A second head is
    /// ignored. The body's framing follows the head: `Content-Length`,
    /// else chunked (`Transfer-Encoding: chunked`, HTTP/1.1 clients), else
    /// until the connection closes. `Date` and `Connection` are added.
    pub async fn write_response_header(
        &mut self,
        head: http::response::Parts,
        end: bool,
    ) -> Result<()> {
        if self.writer != Writer::Head {
            return Ok(());
        }
        let http::response::Parts {
            status,
            mut headers,
            ..
        } = head;
        if !self.is_body_done() {
            // Its unread rest would be taken for the next request.
            self.keepalive = false;
        }
        let no_body = self.head.method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let length = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| parse_length(v.as_bytes().trim_ascii()));
        let chunked = headers
            .get(TRANSFER_ENCODING)
            .is_some_and(|v| ends_chunked(v.as_bytes()));
        self.writer = if no_body {
            Writer::Done
        } else if let Some(n) = length {
            Writer::Length(n)
        } else if chunked && self.head.version == Version::HTTP_11 {
            Writer::Chunked
        } else {
            // HTTP/1.0 has no chunks: the close ends the body.
            headers.remove(TRANSFER_ENCODING);
            self.keepalive = false;
            Writer::UntilClose
        };
        headers.insert(DATE, pingora::protocols::http::date::get_cached_date());
        headers.insert(
            CONNECTION,
            HeaderValue::from_static(if self.keepalive {
                "keep-alive"
            } else {
                "close"
            }),
        );
        let mut out = BytesMut::with_capacity(256);
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.extend_from_slice(b" ");
        out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &headers {
            out.extend_from_slice(titled(name).as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.status = Some(status);
        self.write(&out, "writing the response head").await?;
        if end {
            self.end_body().await?;
        }
        // A whole answer's head waits for its body (one write for both);
        // a stream's goes out at once.
        if end || !matches!(self.writer, Writer::Length(_)) {
            self.flush().await?;
        }
        Ok(())
    }

    /// Write body bytes (`end`: the last). Bytes beyond a declared length,
    /// or for an answer without a body, are dropped.
    pub async fn write_response_body(&mut self, body: Option<Bytes>, end: bool) -> Result<()> {
        let body = body.filter(|b| !b.is_empty());
        match (self.writer, body) {
            (Writer::Head, _) => {
                return Err(Error::explain(
                    ErrorType::InternalError,
                    "response body before its head",
                ))
            }
            (Writer::Length(left), Some(b)) => {
                let take = (left.min(b.len() as u64)) as usize;
                self.write(&b[..take], "writing the response body").await?;
                self.writer = Writer::Length(left - take as u64);
            }
            (Writer::Chunked, Some(b)) => {
                let mut size = [0u8; 18];
                let n = chunk_size_line(b.len(), &mut size);
                self.write(&size[..n], "writing the response body").await?;
                self.write(&b, "writing the response body").await?;
                self.write(b"\r\n", "writing the response body").await?;
            }
            (Writer::UntilClose, Some(b)) => self.write(&b, "writing the response body").await?,
            _ => {}
        }
        if end {
            self.end_body().await?;
        }
        self.flush().await
    }

    /// The body ends here: the chunked terminator; an answer shorter than
    /// its declared length leaves the connection unusable.
    async fn end_body(&mut self) -> Result<()> {
        match self.writer {
            Writer::Chunked => {
                self.write(b"0\r\n\r\n", "writing the response body")
                    .await?
            }
            Writer::Length(left) if left > 0 => self.keepalive = false,
            Writer::UntilClose => self.keepalive = false,
            _ => {}
        }
        self.writer = Writer::Done;
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8], what: &'static str) -> Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, what, e))
    }

    async fn flush(&mut self) -> Result<()> {
        self.stream
            .flush()
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, "flushing the response", e))
    }

    /// An empty answer with `status` when nothing was answered yet, and
    /// the connection closes (what is left when a request failed in a way
    /// the gateway cannot describe in the client's format).
    pub async fn respond_error(&mut self, status: u16) {
        self.keepalive = false;
        let Ok(status) = StatusCode::from_u16(status) else {
            return;
        };
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = status;
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        parts.headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        let _ = self.write_response_header(parts, true).await;
    }

    /// The connection and the bytes read beyond this request, when it can
    /// carry the next one: keep-alive, the body read, the answer complete.
    pub fn finish(self) -> Option<(Stream, BytesMut)> {
        (self.keepalive
            && !self.half_closed
            && self.writer == Writer::Done
            && self.body == Body::Done)
            .then_some((self.stream, self.buf))
    }
}

/// `{size in hex}\r\n` into `out`; its length.
fn chunk_size_line(size: usize, out: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - size.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        out[digits - 1 - i] = HEX[(size >> (4 * i)) & 0xf];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

/// The usual spelling of the standard names the gateway writes (as
/// Pingora wrote them); others as `http` keeps them (lower case).
fn titled(name: &http::HeaderName) -> &str {
    use http::header::*;
    match *name {
        CONTENT_TYPE => "Content-Type",
        CONTENT_LENGTH => "Content-Length",
        TRANSFER_ENCODING => "Transfer-Encoding",
        CACHE_CONTROL => "Cache-Control",
        CONNECTION => "Connection",
        DATE => "Date",
        _ => name.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines_are_lower_case_hex() {
        for n in [
            0usize,
            1,
            9,
            10,
            15,
            16,
            255,
            4096,
            65535,
            1 << 40,
            usize::MAX,
        ] {
            let mut out = [0u8; 18];
            let len = chunk_size_line(n, &mut out);
            assert_eq!(&out[..len], format!("{n:x}\r\n").as_bytes());
        }
    }

    fn head(
        wire: &[u8],
    ) -> std::result::Result<(RequestHead, RequestBody, BytesMut), &'static str> {
        let mut buf = BytesMut::from(wire);
        let (h, b) = RequestHead::parse(&mut buf)?;
        Ok((h, b, buf))
    }

    #[test]
    fn a_head_is_taken_and_its_body_framing_found() {
        let (h, b, rest) = head(
            b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Two: a\r\nx-two: b\r\n\r\nhello",
        )
        .unwrap();
        assert_eq!(h.method, Method::POST);
        assert_eq!(h.uri.path(), "/v1/chat/completions");
        assert_eq!(h.uri.query(), Some("x=1"));
        assert_eq!(b.0, Body::Length(5));
        assert_eq!(&rest[..], b"hello");
        assert_eq!(h.headers.get_str("host"), Some("a"));
        assert_eq!(h.headers.get_all("x-two").count(), 2);
        assert!(h.wants_keepalive());

        let (_, b, _) = head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(b.0, Body::Chunked(Chunk::Size));
        let (_, b, _) = head(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(b.0, Body::Done);
        let (_, b, _) = head(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(b.0, Body::Done);
        assert!(head(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n").is_err());
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_tokens() {
        let ka = |wire: &[u8]| head(wire).unwrap().0.wants_keepalive();
        assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    /// A `Downstream` for the request in `wire` on a real socket; the
    /// client's end of it.
    async fn serve(wire: &'static [u8]) -> (Downstream, tokio::net::TcpStream) {
        use pingora::protocols::l4::stream::Stream as L4;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        client.write_all(wire).await.unwrap();
        let mut stream: Stream = Box::new(L4::from(ours));
        let mut buf = BytesMut::with_capacity(4096);
        while memchr::memmem::find(&buf, b"\r\n\r\n").is_none() {
            assert!(stream.read_buf(&mut buf).await.unwrap() > 0);
        }
        let (head, body) = RequestHead::parse(&mut buf).unwrap();
        (Downstream::new(stream, head, body, buf), client)
    }

    async fn answer(
        d: Downstream,
        client: &mut tokio::net::TcpStream,
    ) -> (Option<BytesMut>, String) {
        let reused = d.finish().map(|(_, rest)| rest);
        // Closed (dropped) or not, the client reads what was written.
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), client.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        (reused, String::from_utf8(got).unwrap())
    }

    fn parts(status: u16, headers: &[(&'static str, &'static str)]) -> http::response::Parts {
        let (mut p, ()) = http::Response::new(()).into_parts();
        p.status = StatusCode::from_u16(status).unwrap();
        for (k, v) in headers {
            p.headers.insert(*k, HeaderValue::from_static(v));
        }
        p
    }

    #[tokio::test]
    async fn a_chunked_body_in_pieces_then_a_whole_answer_and_the_pipelined_rest_kept() {
        let (mut d, mut client) =
            serve(b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").await;
        let reader = tokio::spawn(async move {
            let mut body = Vec::new();
            while let Some(b) = d.read_request_body().await.unwrap() {
                body.extend_from_slice(&b);
            }
            (d, body)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        client
            .write_all(b"lo\r\n6\r\n world\r\n0\r\n\r\nGET /next HTTP/1.1\r\n")
            .await
            .unwrap();
        let (mut d, body) = reader.await.unwrap();
        assert_eq!(body, b"hello world");
        assert!(d.is_body_done());
        let head = parts(
            200,
            &[
                ("content-type", "application/json"),
                ("content-length", "2"),
            ],
        );
        d.write_response_header(head, false).await.unwrap();
        d.write_response_body(Some(Bytes::from_static(b"{}")), true)
            .await
            .unwrap();
        assert_eq!(d.response_status(), Some(200));
        let (reused, wire) = answer(d, &mut client).await;
        assert_eq!(&reused.unwrap()[..], b"GET /next HTTP/1.1\r\n");
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
        assert!(wire.contains("\r\nContent-Length: 2\r\n"), "{wire}");
        assert!(wire.contains("\r\nConnection: keep-alive\r\n"), "{wire}");
        assert!(wire.contains("\r\nDate: "), "{wire}");
        assert!(wire.ends_with("\r\n\r\n{}"), "{wire}");
    }

    #[tokio::test]
    async fn a_client_that_expects_100_continue_gets_it_when_the_body_is_read() {
        let (mut d, mut client) =
            serve(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n").await;
        let reader = tokio::spawn(async move {
            let body = d.read_request_body().await.unwrap().unwrap();
            (d, body)
        });
        let mut interim = [0u8; 25];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut interim))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        client.write_all(b"ping").await.unwrap();
        let (d, body) = reader.await.unwrap();
        assert_eq!(&body[..], b"ping");
        assert!(d.is_body_done());
        // A body already here is read without an interim answer.
        let (mut d, _client) =
            serve(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\npong")
                .await;
        assert_eq!(&d.read_request_body().await.unwrap().unwrap()[..], b"pong");
        assert!(d.expect_continue, "not sent: nothing had to be waited for");
    }

    #[tokio::test]
    async fn a_stream_goes_out_in_chunks_with_its_terminator() {
        let (mut d, mut client) = serve(b"GET /s HTTP/1.1\r\n\r\n").await;
        let head = parts(200, &[("transfer-encoding", "chunked")]);
        d.write_response_header(head, false).await.unwrap();
        let event = Bytes::from(vec![b'x'; 300]);
        d.write_response_body(Some(event), false).await.unwrap();
        d.write_response_body(Some(Bytes::from_static(b"ab")), true)
            .await
            .unwrap();
        let (reused, wire) = answer(d, &mut client).await;
        assert!(reused.is_some());
        let body = wire.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(
            body,
            format!("12c\r\n{}\r\n2\r\nab\r\n0\r\n\r\n", "x".repeat(300))
        );
    }

    #[tokio::test]
    async fn http_1_0_clients_get_a_body_ended_by_the_close() {
        let (mut d, mut client) = serve(b"GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
        let head = parts(200, &[("transfer-encoding", "chunked")]);
        d.write_response_header(head, false).await.unwrap();
        d.write_response_body(Some(Bytes::from_static(b"data")), true)
            .await
            .unwrap();
        let (reused, wire) = answer(d, &mut client).await;
        assert!(reused.is_none(), "the close ends the body");
        assert!(
            !wire.to_ascii_lowercase().contains("transfer-encoding"),
            "{wire}"
        );
        assert!(wire.contains("Connection: close"), "{wire}");
        assert!(wire.ends_with("\r\n\r\ndata"), "{wire}");
    }

    #[tokio::test]
    async fn head_requests_get_the_head_only_and_short_answers_are_not_reused() {
        let (mut d, mut client) = serve(b"HEAD /health HTTP/1.1\r\n\r\n").await;
        d.write_response_header(parts(200, &[("content-length", "10")]), true)
            .await
            .unwrap();
        d.write_response_body(Some(Bytes::from_static(b"0123456789")), true)
            .await
            .unwrap();
        let (reused, wire) = answer(d, &mut client).await;
        assert!(reused.is_some());
        assert!(wire.ends_with("\r\n\r\n"), "no body: {wire}");

        let (mut d, mut client) = serve(b"GET /x HTTP/1.1\r\n\r\n").await;
        d.write_response_header(parts(200, &[("content-length", "10")]), false)
            .await
            .unwrap();
        d.write_response_body(Some(Bytes::from_static(b"01234")), true)
            .await
            .unwrap();
        let (reused, _) = answer(d, &mut client).await;
        assert!(
            reused.is_none(),
            "5 of 10 bytes: the connection cannot go on"
        );
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_is_seen_and_its_early_bytes_are_kept() {
        let (mut d, mut client) = serve(b"GET /x HTTP/1.1\r\n\r\n").await;
        client.write_all(b"GET /y").await.unwrap();
        let watch = tokio::spawn(async move {
            d.client_gone().await;
            d
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!watch.is_finished(), "bytes are not a hang-up");
        drop(client);
        let d = tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&d.buf[..], b"GET /y");
        assert!(d.finish().is_none());
    }

    #[tokio::test]
    async fn a_body_that_stalls_times_out_and_one_cut_short_is_an_error() {
        let (mut d, _client) = serve(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234").await;
        d.set_read_timeout(Some(Duration::from_millis(50)));
        assert_eq!(&d.read_request_body().await.unwrap().unwrap()[..], b"01234");
        let e = d.read_request_body().await.unwrap_err();
        assert_eq!(e.etype(), &ErrorType::ReadTimedout);

        let (mut d, client) = serve(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234").await;
        drop(client);
        assert!(d.read_request_body().await.unwrap().is_some());
        let e = d.read_request_body().await.unwrap_err();
        assert_eq!(e.etype(), &ErrorType::ConnectionClosed);
    }
}
