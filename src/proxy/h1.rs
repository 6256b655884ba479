//! The HTTP/1.1 client side of one upstream exchange: write the request in
//! one vectored write, read the response head, then the body as it comes
//! (`Content-Length`, chunked or until the vendor closes).
//!
//! Why not Pingora's `v1::client::HttpSession`: every session reserved a
//! 64 KiB body buffer (a constant in 0.9.1, no setter) and boxed a socket
//! digest (twice per request: one session to write, one to read), built
//! the response head with a case map that was then cloned, and decoded a
//! chunked body one chunk per call. Here the read buffer starts at 4 KiB
//! and grows only while reads fill it; the body's chunks found in one read
//! come out as one piece (an SSE read of ten events is one call, not ten);
//! header names and values are slices of the bytes read (no copies).
//!
//! The body decoder ([`decode`]) is a pure function over the bytes read so
//! far, so it is tested split at every byte without sockets.

use super::fields::{spans_of, Fields};
use bytes::{Buf, Bytes, BytesMut};
use pingora::protocols::Stream;
use pingora::{Error, ErrorType, Result};
use std::future::Future;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Most header lines accepted in a response head.
const MAX_HEADERS: usize = 128;
/// First read size; doubled while reads fill the buffer, up to [`MAX_READ`].
const FIRST_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;
/// Longest chunk-size line (with extensions) and trailer line accepted.
const MAX_LINE: usize = 4 * 1024;

pub(super) const INVALID_CHUNK: ErrorType = ErrorType::Custom("InvalidChunk");
const PREMATURE_BODY_END: ErrorType = ErrorType::Custom("PrematureBodyEnd");

/// How the rest of the body is framed, and how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// The response head is not read yet.
    Head,
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunk),
    /// Everything until the vendor closes the connection.
    UntilClose,
    Done,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// This many bytes of the current chunk's data are still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, up to the empty line.
    Trailers,
}

/// A vendor's response head as read: the status and the header fields as
/// slices of the bytes received (`proxy::fields`).
#[derive(Debug, Clone)]
pub struct VendorHead {
    pub status: http::StatusCode,
    pub headers: Fields,
    /// The body's `Content-Length` (none when it is chunked or
    /// close-delimited, or the status has no body).
    pub content_length: Option<u64>,
}

/// A request head written straight into its wire bytes, in the order the
/// headers are added. Pingora's `RequestHeader` parsed every name it was
/// given (`HeaderName::from_bytes`), hashed it into a map and then wrote the
/// map out again: ~5k instructions per request for nine fixed headers
/// (callgrind). Names here are the gateway's constants, spelled as Pingora
/// wrote them (`Host`, `Content-Type`, `Content-Length` in title case, the
/// rest lowercase); values are already-valid `HeaderValue`s or checked as
/// they are added.
pub struct Head(BytesMut);

impl Head {
    /// `method path HTTP/1.1`; a path with a control byte, a space or DEL
    /// (bytes that would end or corrupt the request target) is refused.
    pub fn new(method: &str, path: &str) -> Result<Head> {
        // Control bytes, space and DEL end or corrupt a request line. A
        // fold without an early exit is checked many bytes at a time.
        if path
            .bytes()
            .fold(false, |bad, b| bad | (b <= b' ') | (b == 0x7f))
        {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "request line with forbidden bytes",
            ));
        }
        let mut b = BytesMut::with_capacity(320 + path.len());
        b.extend_from_slice(method.as_bytes());
        b.extend_from_slice(b" ");
        b.extend_from_slice(path.as_bytes());
        b.extend_from_slice(b" HTTP/1.1\r\n");
        Ok(Head(b))
    }

    /// A header whose value is already valid (a `HeaderValue`'s bytes, a
    /// constant).
    pub fn header(&mut self, name: &str, value: &[u8]) {
        self.0.reserve(name.len() + value.len() + 4);
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value);
        self.0.extend_from_slice(b"\r\n");
    }

    /// A header whose value comes from configuration: refused when it has a
    /// byte a header value cannot hold (`HeaderValue::from_str`'s rule).
    pub fn text(&mut self, name: &str, value: &str) -> Result<()> {
        if !value
            .bytes()
            .all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
        {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                format!("invalid value for the {name} header"),
            ));
        }
        self.header(name, value.as_bytes());
        Ok(())
    }

    /// A decimal header (`Content-Length`).
    pub fn number(&mut self, name: &str, n: usize) {
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b": ");
        crate::protocol::json::push_u64(&mut self.0, n as u64);
        self.0.extend_from_slice(b"\r\n");
    }

    /// The head's bytes, ended by the empty line.
    pub fn finish(mut self) -> Bytes {
        self.0.extend_from_slice(b"\r\n");
        self.0.freeze()
    }
}

/// One request/response exchange on an upstream connection.
pub struct Exchange {
    stream: Stream,
    /// Bytes read and not decoded yet.
    buf: BytesMut,
    body: Body,
    read_size: usize,
    read_timeout: Option<Duration>,
    keep_alive: bool,
}

impl Exchange {
    pub fn new(stream: Stream) -> Exchange {
        Exchange {
            stream,
            buf: BytesMut::new(),
            body: Body::Head,
            read_size: FIRST_READ,
            read_timeout: None,
            keep_alive: true,
        }
    }

    /// Each read waits at most this long (`None`: no limit).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Write the request head and body in one vectored write (`writev`):
    /// a vendor never sees the head alone and waits a round trip for the
    /// body.
    pub async fn send(&mut self, head: &Bytes, body: &Bytes) -> Result<()> {
        let mut out = head.clone().chain(body.clone());
        // `write_all_buf` hands both parts to `poll_write_vectored` (the
        // upstream stream has no write buffer of its own).
        self.stream
            .write_all_buf(&mut out)
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, "writing the request", e))?;
        self.stream
            .flush()
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, "flushing the request", e))
    }

    /// Read the response head (informational `1xx` heads are skipped).
    pub async fn read_response_header(&mut self) -> Result<VendorHead> {
        loop {
            if let Some(head) = self.parse_head()? {
                return Ok(head);
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    format!("response head larger than {MAX_HEAD} bytes"),
                ));
            }
            let already = self.buf.len();
            if self.fill("while reading response headers").await? == 0 {
                return Err(Error::explain(
                    ErrorType::ConnectionClosed,
                    format!("while reading response headers, bytes already read: {already}"),
                ));
            }
        }
    }

    /// The next body bytes; `None` once the body has ended. Cancel-safe:
    /// bytes read before a cancelled call are decoded by the next one.
    pub async fn read_response_body(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(bytes) = decode(&mut self.body, &mut self.buf)? {
                return Ok(Some(bytes));
            }
            match self.body {
                Body::Done => return Ok(None),
                Body::Head => {
                    return Err(Error::explain(
                        ErrorType::InternalError,
                        "body read before the response head",
                    ))
                }
                _ => {}
            }
            if self.fill("while reading response body").await? == 0 {
                if self.body == Body::UntilClose {
                    self.body = Body::Done;
                    return Ok(None);
                }
                return Err(Error::explain(
                    PREMATURE_BODY_END,
                    "the vendor closed the connection before the body ended",
                ));
            }
        }
    }

    /// The whole body has been read.
    pub fn response_done(&self) -> bool {
        self.body == Body::Done
    }

    /// The connection, when it can carry another request: keep-alive, the
    /// body read to its end and nothing read beyond it.
    pub fn into_reusable(self) -> Option<Stream> {
        (self.keep_alive && self.body == Body::Done && self.buf.is_empty()).then_some(self.stream)
    }

    /// Parse a complete response head at the start of `buf`: `None` when
    /// more bytes are needed (or a `1xx` head was skipped).
    fn parse_head(&mut self) -> Result<Option<VendorHead>> {
        let Some((head, body, keep_alive)) = parse_head(&mut self.buf)? else {
            return Ok(None);
        };
        self.body = body;
        self.keep_alive = keep_alive;
        Ok(Some(head))
    }

    /// Read more bytes into `buf`: 0 when the vendor closed the connection.
    async fn fill(&mut self, what: &'static str) -> Result<usize> {
        if self.buf.is_empty() && self.read_size == FIRST_READ {
            return self.fill_fitted(what).await;
        }
        if self.buf.capacity() - self.buf.len() < FIRST_READ / 4 {
            self.buf.reserve(self.read_size);
        }
        let spare = self.buf.capacity() - self.buf.len();
        let read = self.stream.read_buf(&mut self.buf);
        let n = timed_read(read, self.read_timeout, what).await?;
        if n == spare && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
        Ok(n)
    }

    /// [`fill`](Self::fill) with nothing buffered while reads are small
    /// (a stream's events, a short answer): the wait holds no buffer — a
    /// stream's vendor connection waits between events most of its life —
    /// and what arrives is kept in an allocation of its own size. The read
    /// goes into a buffer on the stack that lives only while polled.
    async fn fill_fitted(&mut self, what: &'static str) -> Result<usize> {
        // Whatever `buf` still points into (bytes already handed out) is
        // the handed-out bytes' alone from here.
        self.buf = BytesMut::new();
        let stream = &mut self.stream;
        let read = std::future::poll_fn(|cx| {
            // Not zeroed: `ReadBuf` tracks what the read initialised (a
            // zeroed 4 KiB per poll is a `memset` per poll, pending ones too).
            let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); FIRST_READ];
            let mut into = tokio::io::ReadBuf::uninit(&mut stack);
            match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut *stream), cx, &mut into) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(BytesMut::from(into.filled()))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        });
        self.buf = timed_read(read, self.read_timeout, what).await?;
        let n = self.buf.len();
        if n == FIRST_READ {
            // Reads fill their buffer: from now on they go straight into
            // a growing one.
            self.read_size *= 2;
        }
        Ok(n)
    }
}

/// `read`, polled once without a timer (most reads find their bytes
/// waiting, and a timer would be registered and cancelled for nothing),
/// then under `timeout` (`ReadTimedout`). Used by both halves of an
/// exchange (vendor answers here, request bodies in `downstream`).
pub(super) async fn timed_read<T>(
    read: impl Future<Output = std::io::Result<T>>,
    timeout: Option<Duration>,
    what: &'static str,
) -> Result<T> {
    let mut read = std::pin::pin!(read);
    let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let r = match (first, timeout) {
        (Poll::Ready(r), _) => r,
        (Poll::Pending, None) => read.await,
        (Poll::Pending, Some(t)) => match tokio::time::timeout(t, read).await {
            Ok(r) => r,
            Err(_) => return Err(Error::explain(ErrorType::ReadTimedout, what)),
        },
    };
    r.map_err(|e| Error::because(ErrorType::ReadError, what, e))
}

/// Parse a complete response head at the start of `buf` (consumed): the
/// head, how its body is framed and whether the connection stays open;
/// `None` when more bytes are needed (or a `1xx` head was skipped).
fn parse_head(buf: &mut BytesMut) -> Result<Option<(VendorHead, Body, bool)>> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                format!("invalid response head: {e}"),
            ))
        }
    };
    let code = resp.code.unwrap_or(0);
    if (100..200).contains(&code) {
        if code == 101 {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "101 Switching Protocols to a request that asked for no upgrade",
            ));
        }
        // `100 Continue`, `103 Early Hints`: no body, the real head follows.
        buf.advance(len);
        return Ok(None);
    }
    let status = http::StatusCode::from_u16(code)
        .map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "invalid status code"))?;
    let spans = spans_of(buf.as_ptr(), resp.headers);
    let http10 = resp.version == Some(0);
    let mut head = VendorHead {
        status,
        headers: Fields::new(buf.split_to(len).freeze(), spans),
        content_length: None,
    };
    let body = framing(&mut head)?;
    let keep_alive = !http10
        && body != Body::UntilClose
        && !head
            .headers
            .get_all("connection")
            .any(|v| has_token(v, b"close"));
    Ok(Some((head, body, keep_alive)))
}

/// How a response's body is framed (RFC 9112 §6.3). A chunked body drops
/// any `Content-Length` the vendor also sent; otherwise the length found
/// is noted in `head.content_length`.
fn framing(head: &mut VendorHead) -> Result<Body> {
    let code = head.status.as_u16();
    if code == 204 || code == 304 {
        return Ok(Body::Done);
    }
    if let Some(te) = head.headers.get_all("transfer-encoding").last() {
        return Ok(if ends_chunked(te) {
            Body::Chunked(Chunk::Size)
        } else {
            Body::UntilClose
        });
    }
    let mut length = None;
    for v in head.headers.get_all("content-length") {
        // A list of equal values is one length (RFC 9110 §8.6).
        for part in v.split(|b| *b == b',') {
            let n = parse_length(part.trim_ascii()).ok_or_else(|| {
                Error::explain(ErrorType::InvalidHTTPHeader, "invalid Content-Length")
            })?;
            if length.is_some_and(|l| l != n) {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "conflicting Content-Length values",
                ));
            }
            length = Some(n);
        }
    }
    head.content_length = length;
    Ok(match length {
        Some(0) => Body::Done,
        Some(n) => Body::Length(n),
        None => Body::UntilClose,
    })
}

/// A `Transfer-Encoding` value whose final coding is `chunked` (RFC 9112
/// §6.3: only then is the body chunk-framed). Requests (`proxy::edge`) and
/// answers alike.
pub(super) fn ends_chunked(te: &[u8]) -> bool {
    te.rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

pub(super) fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A comma-separated header value names `token` (case-insensitive).
pub(super) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Decode what `buf` holds of the body: the payload bytes found (all of the
/// chunks a read brought, as one piece), or `None` when there are none
/// yet. What cannot be decoded yet stays in `buf`; `body` says where the
/// decoder is (`Done` once the body ended, trailers included).
pub(super) fn decode(body: &mut Body, buf: &mut BytesMut) -> Result<Option<Bytes>> {
    match body {
        Body::Head | Body::Done => Ok(None),
        Body::UntilClose => Ok((!buf.is_empty()).then(|| buf.split().freeze())),
        Body::Length(left) => {
            let take = (*left).min(buf.len() as u64) as usize;
            if take == 0 {
                return Ok(None);
            }
            *left -= take as u64;
            if *left == 0 {
                *body = Body::Done;
            }
            Ok(Some(buf.split_to(take).freeze()))
        }
        Body::Chunked(chunk) => {
            let mut out: Option<BytesMut> = None;
            let ended = decode_chunks(chunk, buf, &mut out)?;
            if ended {
                *body = Body::Done;
            }
            Ok(out.map(BytesMut::freeze))
        }
    }
}

/// The chunked decoder's loop; true once the last chunk and its trailers
/// were read.
fn decode_chunks(
    chunk: &mut Chunk,
    buf: &mut BytesMut,
    out: &mut Option<BytesMut>,
) -> Result<bool> {
    loop {
        match *chunk {
            Chunk::Size => {
                let Some(line) = line_end(buf)? else {
                    return Ok(false);
                };
                let size = chunk_size(&buf[..line])?;
                buf.advance(line + 1);
                *chunk = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                let take = left.min(buf.len() as u64) as usize;
                if take == 0 {
                    return Ok(false);
                }
                let piece = buf.split_to(take);
                match out {
                    None => *out = Some(piece),
                    Some(o) => o.extend_from_slice(&piece),
                }
                *chunk = match left - take as u64 {
                    0 => Chunk::DataEnd,
                    rest => Chunk::Data(rest),
                };
            }
            Chunk::DataEnd => {
                match buf.first() {
                    None => return Ok(false),
                    // A bare LF is accepted as a line end, as for size lines.
                    Some(b'\n') => buf.advance(1),
                    Some(b'\r') => match buf.get(1) {
                        None => return Ok(false),
                        Some(b'\n') => buf.advance(2),
                        Some(_) => return Err(bad_chunk("chunk data not followed by CRLF")),
                    },
                    Some(_) => return Err(bad_chunk("chunk data longer than its size")),
                }
                *chunk = Chunk::Size;
            }
            Chunk::Trailers => {
                let Some(line) = line_end(buf)? else {
                    return Ok(false);
                };
                let empty = buf[..line].iter().all(|b| *b == b'\r');
                buf.advance(line + 1);
                if empty && line <= 1 {
                    return Ok(true);
                }
            }
        }
    }
}

/// Where the line at the start of `buf` ends (its LF), if it is complete.
fn line_end(buf: &[u8]) -> Result<Option<usize>> {
    match memchr::memchr(b'\n', &buf[..buf.len().min(MAX_LINE)]) {
        Some(at) => Ok(Some(at)),
        None if buf.len() >= MAX_LINE => Err(bad_chunk("chunk-size or trailer line too long")),
        None => Ok(None),
    }
}

/// The size on a chunk-size line (without its LF): hex digits, then
/// optional extensions after `;`.
fn chunk_size(line: &[u8]) -> Result<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = match line.iter().position(|b| *b == b';') {
        Some(at) => &line[..at],
        None => line,
    }
    .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(bad_chunk("invalid chunk size"));
    }
    digits.iter().try_fold(0u64, |n, d| {
        let v = (*d as char)
            .to_digit(16)
            .ok_or_else(|| bad_chunk("invalid chunk size"))?;
        Ok(n << 4 | u64::from(v))
    })
}

fn bad_chunk(why: &'static str) -> Box<Error> {
    Error::explain(INVALID_CHUNK, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode `wire` fed in pieces of `step` bytes: the payload, whether
    /// the body ended, and the bytes left over.
    fn feed(start: Body, wire: &[u8], step: usize) -> Result<(Vec<u8>, bool, Vec<u8>)> {
        let (mut body, mut buf, mut got) = (start, BytesMut::new(), Vec::new());
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            if let Some(b) = decode(&mut body, &mut buf)? {
                assert!(!b.is_empty(), "an empty piece is never handed out");
                got.extend_from_slice(&b);
            }
        }
        Ok((got, body == Body::Done, buf.to_vec()))
    }

    #[test]
    fn a_head_is_written_in_order_and_bad_bytes_are_refused() {
        let mut h = Head::new("POST", "/v1/models/g-1:generateContent?alt=sse").unwrap();
        h.text("Host", "api.example.com:8443").unwrap();
        h.number("Content-Length", 1234);
        h.number("Content-Length", 0);
        h.header("x-api-key", b"sk-1");
        assert_eq!(
            &h.finish()[..],
            &b"POST /v1/models/g-1:generateContent?alt=sse HTTP/1.1\r\nHost: api.example.com:8443\r\nContent-Length: 1234\r\nContent-Length: 0\r\nx-api-key: sk-1\r\n\r\n"[..]
        );
        // What would end the request target, or smuggle a header in.
        for path in ["/a b", "/a\r\nX: 1", "/a\n", "/\0"] {
            assert!(Head::new("GET", path).is_err(), "{path:?}");
        }
        let mut h = Head::new("GET", "/").unwrap();
        for bad in ["a\r\nX-Injected: 1", "a\nb", "\x7f", "\0"] {
            assert!(h.text("Host", bad).is_err(), "{bad:?}");
        }
        h.text("Host", "tab\tand space").unwrap();
    }

    const CHUNKED: &[u8] =
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n!\r\n0\r\nx-trailer: 1\r\n\r\n";

    #[test]
    fn a_chunked_body_split_at_every_byte() {
        for step in 1..=CHUNKED.len() {
            let (got, done, rest) = feed(Body::Chunked(Chunk::Size), CHUNKED, step).unwrap();
            assert_eq!(got, b"hello, world!", "step {step}");
            assert!(done && rest.is_empty(), "step {step}");
        }
    }

    #[test]
    fn the_chunks_of_one_read_come_out_as_one_piece() {
        let (mut body, mut buf) = (Body::Chunked(Chunk::Size), BytesMut::from(CHUNKED));
        let piece = decode(&mut body, &mut buf).unwrap().unwrap();
        assert_eq!(&piece[..], b"hello, world!");
        assert_eq!(
            body,
            Body::Done,
            "the last chunk in the same read ends the body"
        );
    }

    #[test]
    fn bytes_after_the_body_stay_in_the_buffer() {
        let mut wire = CHUNKED.to_vec();
        wire.extend_from_slice(b"HTTP/1.1 200");
        let (got, done, rest) = feed(Body::Chunked(Chunk::Size), &wire, 7).unwrap();
        assert_eq!((got.as_slice(), done), (&b"hello, world!"[..], true));
        assert_eq!(rest, b"HTTP/1.1 200");
        let (got, done, rest) = feed(Body::Length(5), b"hello world", 3).unwrap();
        assert_eq!(
            (got.as_slice(), done, rest.as_slice()),
            (&b"hello"[..], true, &b" world"[..])
        );
    }

    #[test]
    fn bare_lf_line_ends_are_accepted() {
        let (got, done, _) = feed(Body::Chunked(Chunk::Size), b"3\nabc\n0\n\n", 1).unwrap();
        assert_eq!((got.as_slice(), done), (&b"abc"[..], true));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for wire in [
            &b"zz\r\nabc\r\n"[..],
            b"\r\n",
            b"3\r\nabcd\r\n",
            b"3\r\nabc\rX",
            b"ffffffffffffffff\r\n",
        ] {
            let err = feed(Body::Chunked(Chunk::Size), wire, wire.len()).unwrap_err();
            assert_eq!(
                err.etype(),
                &INVALID_CHUNK,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(
            feed(Body::Chunked(Chunk::Size), &long, 100).is_err(),
            "unbounded size line"
        );
    }

    #[test]
    fn a_length_body_in_pieces() {
        for step in 1..=11 {
            let (got, done, rest) = feed(Body::Length(11), b"hello world", step).unwrap();
            assert_eq!(
                (got.as_slice(), done, rest.len()),
                (&b"hello world"[..], true, 0)
            );
        }
        let (got, done, _) = feed(Body::Length(11), b"hello", 5).unwrap();
        assert_eq!((got.as_slice(), done), (&b"hello"[..], false));
    }

    /// An exchange over a real loopback connection whose vendor end
    /// writes `pieces` (a short pause between them), then keeps the
    /// connection open.
    async fn vendor(pieces: Vec<&'static [u8]>) -> (Exchange, tokio::task::JoinHandle<()>) {
        use pingora::protocols::l4::stream::Stream as L4;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ours = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut theirs, _) = listener.accept().await.unwrap();
        theirs.set_nodelay(true).unwrap();
        let writer = tokio::spawn(async move {
            for p in pieces {
                theirs.write_all(p).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        (Exchange::new(Box::new(L4::from(ours))), writer)
    }

    async fn body(x: &mut Exchange) -> Vec<u8> {
        let mut got = Vec::new();
        while let Some(b) = x.read_response_body().await.unwrap() {
            got.extend_from_slice(&b);
        }
        got
    }

    #[tokio::test]
    async fn an_answer_after_a_1xx_head_in_pieces_leaves_a_reusable_connection() {
        let (mut x, _vendor) = vendor(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Ty",
            b"pe: text/event-stream\r\nX-Request-Id: r-1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"6\r\ndata: \r\n",
            b"3\r\nhi\n\r\n0\r\n\r\n",
        ])
        .await;
        let head = x.read_response_header().await.unwrap();
        assert_eq!(head.status.as_u16(), 200);
        assert_eq!(
            head.headers.get("content-type"),
            Some(&b"text/event-stream"[..])
        );
        assert_eq!(head.headers.value("x-request-id").unwrap(), "r-1");
        assert_eq!(body(&mut x).await, b"data: hi\n");
        assert!(x.response_done());
        assert!(x.into_reusable().is_some());
    }

    #[tokio::test]
    async fn connections_that_cannot_carry_another_request_are_not_reused() {
        // The vendor says close; bytes beyond the body; a close-delimited body.
        for wire in [
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ] {
            let (mut x, _vendor) = vendor(vec![wire]).await;
            x.read_response_header().await.unwrap();
            assert_eq!(
                x.read_response_body().await.unwrap().as_deref(),
                Some(&b"ok"[..])
            );
            assert!(x.response_done());
            assert!(
                x.into_reusable().is_none(),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[tokio::test]
    async fn a_silent_vendor_times_out_and_a_closing_one_is_an_error() {
        let (mut x, _vendor) =
            vendor(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"]).await;
        x.set_read_timeout(Some(Duration::from_millis(100)));
        x.read_response_header().await.unwrap();
        assert_eq!(
            x.read_response_body().await.unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        let err = x.read_response_body().await.unwrap_err();
        assert_eq!(err.etype(), &ErrorType::ReadTimedout);
        assert!(!x.response_done());

        let (mut x, closing) =
            vendor(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"]).await;
        x.read_response_header().await.unwrap();
        x.read_response_body().await.unwrap();
        closing.abort();
        let err = x.read_response_body().await.unwrap_err();
        assert_eq!(err.etype(), &PREMATURE_BODY_END);

        let (mut x, closing) = vendor(vec![b"HTTP/1.1 200 OK\r\nContent-Le"]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        closing.abort();
        let err = x.read_response_header().await.unwrap_err();
        assert_eq!(
            err.etype(),
            &ErrorType::ConnectionClosed,
            "a stale pooled connection is retried on this"
        );
    }

    #[tokio::test]
    async fn an_endless_head_is_refused() {
        let line: &'static [u8] = Box::leak(
            format!("X-Pad: {}\r\n", "a".repeat(1000))
                .into_bytes()
                .into_boxed_slice(),
        );
        let mut pieces = vec![&b"HTTP/1.1 200 OK\r\n"[..]];
        pieces.extend(std::iter::repeat_n(line, 80));
        let (mut x, _vendor) = vendor(pieces).await;
        let err = x.read_response_header().await.unwrap_err();
        assert_eq!(err.etype(), &ErrorType::InvalidHTTPHeader);
    }

    fn head(wire: &[u8]) -> Result<(VendorHead, Body)> {
        let mut buf = BytesMut::from(wire);
        let (h, body, _) = parse_head(&mut buf)?.unwrap();
        assert!(buf.is_empty());
        Ok((h, body))
    }

    #[test]
    fn head_fields_are_found_in_any_case_in_order() {
        let (h, body) = head(
            b"HTTP/1.1 429 Too Many Requests\r\ncontent-TYPE: application/json\r\nX-Multi: a\r\nRetry-After: 7\r\nx-multi: b\r\nContent-Length: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.status.as_u16(), 429);
        assert_eq!(body, Body::Length(2));
        assert_eq!(h.content_length, Some(2));
        assert_eq!(
            h.headers.get("content-type"),
            Some(&b"application/json"[..])
        );
        assert_eq!(h.headers.get("x-multi"), Some(&b"a"[..]), "the first value");
        assert_eq!(
            h.headers.get_all("x-multi").collect::<Vec<_>>(),
            [b"a", b"b"]
        );
        assert_eq!(h.headers.get("x-absent"), None);
        assert_eq!(h.headers.value("retry-after").unwrap(), "7");
        // The map the 429 reader gets has every field, repeated ones too.
        let map = h.headers.header_map();
        assert_eq!(map["retry-after"], "7");
        assert_eq!(map.get_all("x-multi").iter().count(), 2);
        assert_eq!(map.len(), 5);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (h, body) = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(body, Body::Chunked(Chunk::Size));
        assert_eq!(h.content_length, None, "chunked wins");
        assert_eq!(
            head(b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n")
                .unwrap()
                .1,
            Body::Length(7)
        );
        assert_eq!(
            head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .1,
            Body::Done
        );
        assert_eq!(
            head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap().1,
            Body::Done
        );
        assert_eq!(
            head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().1,
            Body::UntilClose
        );
        assert_eq!(
            head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
                .unwrap()
                .1,
            Body::UntilClose
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert!(head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
