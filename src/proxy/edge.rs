//! The client edge of the data plane: how many connections are open, how
//! long a client may take to send a request head and how large it may be.
//!
//! Pingora 0.9.1 offers no hook before a request head is parsed: its HTTP/1
//! server waits for a head with a timeout that restarts at every read (a
//! client trickling one header line every few seconds is never closed),
//! accepts heads up to 1 MiB, and answers a malformed one with an empty 400.
//! [`EdgeApp`] therefore serves each connection itself (its task is
//! started by the data plane's accept loop, `proxy::listen`): it counts
//! connections (an atomic; over the cap a 503 and a close), reads each
//! request head under one deadline and a size limit, answers anything it
//! cannot accept with a JSON error carrying a request id, and keeps its
//! one parse of an accepted head (offsets into the head's bytes) for the
//! request's [`Downstream`] session, which the gateway serves ([`Serve`]).
//! Bytes a client sent beyond a request (pipelining) start the next head.
//!
//! Only plain-text HTTP/1 is served on the data plane (no TLS, no h2c).

use super::ctx::{new_request_id, REQUEST_ID_HEADER};
use super::downstream::{Downstream, HeadParse, RequestHead, MAX_HEADERS};
use crate::config::EdgeSettings;
use crate::metrics::EdgeStats;
use bytes::BytesMut;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
// Pingora's timeouts for the rare writes and drains of a refusal. The head
// reads use Tokio's: a Tokio timer lives inside the future (registered only
// when the read has to wait), where each wait on Pingora's 10 ms wheel
// allocated (3.65 `malloc` per request, callgrind) on every kept-alive
// connection's wait for its next request.
use pingora::prelude::timeout;
use std::time::Instant;

/// First allocation of a head buffer, as in Pingora.
const INIT_HEAD_BUF: usize = 4096;
/// How long a rejection answer may take to write before the connection is
/// simply closed.
const REJECT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long, and how much, is read after a rejection before closing.
const REJECT_DRAIN_TIMEOUT: Duration = Duration::from_millis(250);
const REJECT_DRAIN_BYTES: usize = 1024 * 1024;

/// The connection limits in force, fixed at start.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    pub max_connections: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_head_bytes: usize,
}

impl EdgeLimits {
    pub fn new(s: &EdgeSettings) -> EdgeLimits {
        EdgeLimits {
            max_connections: connection_cap(s.max_connections),
            head_timeout: s.head_timeout,
            body_timeout: s.body_timeout,
            keepalive_timeout: s.keepalive_timeout,
            max_head_bytes: s.max_head_bytes,
        }
    }
}

/// The connection cap: the configured one, or (0) half the process's soft
/// file-descriptor limit — every client connection can hold an upstream
/// one, and the admin listener, the database and the log need some too —
/// at most 65536. A configured cap above that is kept but warned about.
pub fn connection_cap(configured: usize) -> usize {
    let fds = fd_limit();
    let auto = fds.map_or(4096, |n| (n / 2).clamp(16, 65_536) as usize);
    if configured == 0 {
        return auto;
    }
    if let Some(n) = fds {
        if configured as u64 * 2 > n {
            tracing::warn!(
                max_connections = configured,
                fd_limit = n,
                "server.max_connections is above half the file-descriptor limit (ulimit -n): the gateway can run out of descriptors before it refuses connections"
            );
        }
    }
    configured
}

/// The soft limit on open files (`ulimit -n`), from `/proc/self/limits`
/// (Linux; elsewhere unknown, and the automatic cap is 4096).
fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files  <soft>  <hard>  files"; "unlimited" parses as None.
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What serves one request whose head the edge accepted: the gateway
/// (`proxy::Gateway::serve`).
///
/// Statically dispatched (`EdgeApp` is generic over it): the request's
/// future lives inside the connection's, not in a box of its own built on
/// the stack and copied in per request.
pub trait Serve {
    /// Serve the request in `session`; the connection back (and the bytes
    /// read beyond the request) when it can carry another request.
    fn serve(
        &self,
        session: Downstream,
    ) -> impl std::future::Future<Output = Option<(Stream, BytesMut)>> + Send;
}

/// The gateway behind the edge checks.
pub struct EdgeApp<A> {
    inner: Arc<A>,
    limits: EdgeLimits,
    stats: Arc<EdgeStats>,
}

impl<A> EdgeApp<A> {
    pub fn new(inner: A, limits: EdgeLimits, stats: Arc<EdgeStats>) -> Self {
        EdgeApp {
            inner: Arc::new(inner),
            limits,
            stats,
        }
    }
}

/// Decrements the open-connection count however the connection ends.
struct Open<'a>(&'a EdgeStats);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<A> EdgeApp<A>
where
    A: Serve + Send + Sync + 'static,
{
    /// Serve one client connection until it closes (run in the
    /// connection's own task by `proxy::listen`).
    pub async fn connection(&self, mut stream: Stream, shutdown: &ShutdownWatch) {
        let accepted = Instant::now();
        let open = self.stats.open.fetch_add(1, Ordering::Relaxed);
        let _open = Open(&self.stats);
        if open >= self.limits.max_connections as u64 {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                open,
                cap = self.limits.max_connections,
                "connection refused: too many open client connections"
            );
            let reject = Reject::TooManyConnections(self.limits.max_connections);
            answer(&mut stream, &reject, b"", &new_request_id()).await;
            return;
        }

        // The relay holds back some flushes on it (see `cork`).
        let mut stream = super::cork::Corked::wrap(stream);
        let mut shutdown_rx = shutdown.clone();
        let mut first = true;
        // What a request's client sent beyond it: the next head's start.
        let mut carried = BytesMut::new();
        loop {
            let mut buf = if carried.is_empty() {
                BytesMut::with_capacity(INIT_HEAD_BUF)
            } else {
                std::mem::take(&mut carried)
            };
            let start = first.then_some(accepted);
            let parsed =
                match read_head(&mut stream, &mut buf, start, &self.limits, &mut shutdown_rx).await
                {
                    Head::Complete(parsed) => parsed,
                    Head::Closed => return,
                    Head::Reject(reject) => {
                        self.refuse(&mut stream, &reject, &buf).await;
                        return;
                    }
                };
            first = false;
            let mut buf = fitted(buf);
            let taken = match parsed {
                Some(p) => RequestHead::take(&mut buf, p),
                None => escape_target(&buf).map_or(Err("invalid request line"), |mut escaped| {
                    let taken = RequestHead::parse(&mut escaped);
                    buf = escaped;
                    taken
                }),
            };
            let (head, body) = match taken {
                Ok(t) => t,
                Err(why) => {
                    self.refuse(&mut stream, &Reject::Malformed(why), &buf)
                        .await;
                    return;
                }
            };
            let mut session = Downstream::new(stream, head, body, buf);
            if *shutdown.borrow() {
                session.set_keepalive(false);
            }
            // The longest pause in a request body.
            session.set_read_timeout(Some(self.limits.body_timeout));
            match self.inner.serve(session).await {
                Some((reused, rest)) => {
                    stream = reused;
                    carried = rest;
                }
                None => return,
            }
        }
    }

    /// Count, log and answer a head the edge does not accept.
    async fn refuse(&self, stream: &mut Stream, reject: &Reject, head: &[u8]) {
        reject.counter(&self.stats).fetch_add(1, Ordering::Relaxed);
        let request_id = new_request_id();
        tracing::info!(
            target: "request",
            request_id = %request_id,
            peer = ?stream.get_socket_digest().and_then(|d| d.peer_addr().cloned()),
            status = reject.status(),
            error = %reject.message(),
            "request head refused"
        );
        answer(stream, reject, head, &request_id).await;
    }
}

/// The head as the request keeps it. Its header fields are slices of
/// these bytes, so the whole allocation lives as long as the request — a
/// stream's whole life. Most heads fill a fraction of the 4 KiB read
/// buffer: copying them into an allocation of their own size (a few
/// hundred bytes) frees the rest for the next connection's read.
fn fitted(buf: BytesMut) -> BytesMut {
    if buf.capacity() - buf.len() >= INIT_HEAD_BUF / 2 {
        BytesMut::from(&buf[..])
    } else {
        buf
    }
}

/// Bytes of one buffered upstream answer, counted against the global
/// budget (`server.max_buffered_response_bytes`) until dropped.
pub struct Buffered<'a> {
    stats: &'a EdgeStats,
    held: u64,
}

impl<'a> Buffered<'a> {
    pub fn new(stats: &'a EdgeStats) -> Self {
        Buffered { stats, held: 0 }
    }

    /// Count `n` more bytes, or refuse (with the budget) when they would
    /// take the total over it.
    pub fn grow(&mut self, n: usize) -> Result<(), u64> {
        if self.try_grow(n) {
            return Ok(());
        }
        self.stats.buffer_rejected.fetch_add(1, Ordering::Relaxed);
        Err(self.stats.buffer_limit.load(Ordering::Relaxed))
    }

    /// Count `n` more bytes if they fit in the budget; `false` (nothing
    /// counted, no request refused) when they do not — for a caller that
    /// can go on without holding them.
    pub fn try_grow(&mut self, n: usize) -> bool {
        let n = n as u64;
        let limit = self.stats.buffer_limit.load(Ordering::Relaxed);
        let before = self.stats.buffered.fetch_add(n, Ordering::Relaxed);
        if before + n > limit {
            self.stats.buffered.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        self.held += n;
        true
    }
}

impl Drop for Buffered<'_> {
    fn drop(&mut self) {
        self.stats.buffered.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// Why a request head was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// The head did not arrive within `head_timeout`.
    HeadTimeout(Duration),
    /// The request line alone is larger than the head limit.
    UriTooLong(usize),
    /// The head is larger than the limit.
    HeadTooLarge(usize),
    TooManyHeaders,
    /// Not HTTP/1 (bad bytes, broken framing headers).
    Malformed(&'static str),
    /// `CONNECT` (this is not a forward proxy).
    Connect,
    TooManyConnections(usize),
}

impl Reject {
    /// The edge counter a refusal of this kind adds to.
    fn counter<'s>(&self, s: &'s crate::metrics::EdgeStats) -> &'s std::sync::atomic::AtomicU64 {
        match self {
            Reject::HeadTimeout(_) => &s.head_timeouts,
            Reject::UriTooLong(_) | Reject::HeadTooLarge(_) => &s.heads_too_large,
            Reject::TooManyHeaders => &s.too_many_headers,
            Reject::Malformed(_) | Reject::Connect => &s.malformed,
            Reject::TooManyConnections(_) => &s.rejected,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Reject::HeadTimeout(_) => 408,
            Reject::UriTooLong(_) => 414,
            Reject::HeadTooLarge(_) | Reject::TooManyHeaders => 431,
            Reject::Malformed(_) => 400,
            Reject::Connect => 405,
            Reject::TooManyConnections(_) => 503,
        }
    }

    fn reason(&self) -> &'static str {
        match self.status() {
            408 => "Request Timeout",
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            405 => "Method Not Allowed",
            _ => "Bad Request",
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Reject::HeadTimeout(_) => "request_timeout",
            Reject::UriTooLong(_) => "uri_too_long",
            Reject::HeadTooLarge(_) => "request_header_too_large",
            Reject::TooManyHeaders => "too_many_headers",
            Reject::Malformed(_) => "malformed_request",
            Reject::Connect => "method_not_allowed",
            Reject::TooManyConnections(_) => "too_many_connections",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Reject::HeadTimeout(t) => format!(
                "the request head (request line and headers) did not arrive within {} s (server.head_timeout_secs)",
                t.as_secs_f64()
            ),
            Reject::UriTooLong(n) => format!(
                "the request line is longer than this gateway's limit of {n} bytes for a request head (server.max_head_bytes)"
            ),
            Reject::HeadTooLarge(n) => format!(
                "the request head is larger than this gateway's limit of {n} bytes (server.max_head_bytes)"
            ),
            Reject::TooManyHeaders => format!(
                "the request has more than {MAX_HEADERS} header fields"
            ),
            Reject::Malformed(why) => format!("malformed HTTP/1 request: {why}"),
            Reject::Connect => "CONNECT is not supported: this gateway is not a forward proxy".to_string(),
            Reject::TooManyConnections(n) => format!(
                "the gateway has {n} open client connections, its limit (server.max_connections); retry shortly"
            ),
        }
    }
}

enum Head {
    /// `buf` holds a whole request head (and maybe the start of a body):
    /// what its parse found, or `None` for a request line to escape first
    /// ([`escape_target`]).
    Complete(Option<HeadParse>),
    /// The client went away, or an idle kept-alive connection ends.
    Closed,
    Reject(Reject),
}

/// Read one request head into `buf`. `start` is when the connection was
/// accepted (first request: the head deadline runs from then); on a
/// kept-alive connection the deadline starts with the first byte of the
/// next request, and the wait for that byte is `keepalive_timeout`.
async fn read_head(
    stream: &mut Stream,
    buf: &mut BytesMut,
    start: Option<Instant>,
    limits: &EdgeLimits,
    shutdown: &mut ShutdownWatch,
) -> Head {
    let mut deadline = start.map(|s| s + limits.head_timeout);
    if !buf.is_empty() {
        // Bytes a client sent after its previous request (pipelined): the
        // head may be here already, and its deadline runs from now.
        deadline = Some(deadline.unwrap_or_else(|| Instant::now() + limits.head_timeout));
        match check_head(buf) {
            Parsed::Complete(p) => return Head::Complete(p),
            Parsed::Invalid(r) => return Head::Reject(r),
            Parsed::Partial => {}
        }
    }
    loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(INIT_HEAD_BUF);
        }
        let before = buf.len();
        let read = match deadline {
            None => {
                if *shutdown.borrow() {
                    return Head::Closed;
                }
                tokio::select! {
                    biased;
                    r = tokio::time::timeout(limits.keepalive_timeout, stream.read_buf(buf)) => match r {
                        Ok(r) => r,
                        Err(_) => return Head::Closed,
                    },
                    // Idle kept-alive connections go away at shutdown, as
                    // Pingora's own loop does.
                    _ = shutdown.changed() => return Head::Closed,
                }
            }
            Some(d) => match tokio::time::timeout_at(d.into(), stream.read_buf(buf)).await {
                Ok(r) => r,
                // A connection that never sent a byte is closed quietly
                // (browsers open spare connections); a started head gets 408.
                Err(_) if buf.is_empty() => return Head::Closed,
                Err(_) => return Head::Reject(Reject::HeadTimeout(limits.head_timeout)),
            },
        };
        match read {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(_) => {}
        }
        if deadline.is_none() {
            deadline = Some(Instant::now() + limits.head_timeout);
        }
        // A head can only complete, or break, at a line end: parse again
        // only when one arrived (and on the first bytes, to spot what is
        // not HTTP at all), so a client sending a byte at a time does not
        // make the head be parsed once per byte.
        if before == 0 || memchr::memchr(b'\n', &buf[before..]).is_some() {
            match check_head(buf) {
                Parsed::Complete(p) => return Head::Complete(p),
                Parsed::Invalid(r) => return Head::Reject(r),
                Parsed::Partial => {}
            }
        }
        if buf.len() >= limits.max_head_bytes {
            return Head::Reject(if memchr::memchr(b'\n', buf).is_none() {
                Reject::UriTooLong(limits.max_head_bytes)
            } else {
                Reject::HeadTooLarge(limits.max_head_bytes)
            });
        }
    }
}

enum Parsed {
    Complete(Option<HeadParse>),
    Partial,
    Invalid(Reject),
}

/// Is `buf` a whole request head Pingora will accept? Parsed with the same
/// parser and header count as Pingora, plus the framing checks Pingora
/// makes after parsing (it would answer those with an empty 400).
fn check_head(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => match framing(&req) {
            Ok(host) => match target(&req, host) {
                Ok(()) => match HeadParse::of(&req, buf, len) {
                    Some(p) => Parsed::Complete(Some(p)),
                    None => Parsed::Invalid(Reject::Malformed("invalid request method")),
                },
                Err(r) => Parsed::Invalid(r),
            },
            Err(why) => Parsed::Invalid(Reject::Malformed(why)),
        },
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Invalid(Reject::TooManyHeaders),
        // Pingora percent-escapes a request line with unsafe characters
        // (spaces, quotes, controls in the URI) and parses again: let it,
        // once the head is complete.
        Err(httparse::Error::Token | httparse::Error::Version) if escapable(buf).is_some() => {
            if !head_end(buf) {
                Parsed::Partial
            } else if escapable(buf).is_some_and(|t| !origin_form_ok(t, true)) {
                Parsed::Invalid(Reject::Malformed("invalid character in the request target"))
            } else {
                Parsed::Complete(None)
            }
        }
        Err(httparse::Error::Token) => {
            Parsed::Invalid(Reject::Malformed("invalid character in the request line"))
        }
        Err(httparse::Error::Version) => {
            Parsed::Invalid(Reject::Malformed("not an HTTP/1.x request"))
        }
        Err(httparse::Error::HeaderName) => {
            Parsed::Invalid(Reject::Malformed("invalid character in a header name"))
        }
        Err(httparse::Error::HeaderValue) => {
            Parsed::Invalid(Reject::Malformed("invalid character in a header value"))
        }
        Err(httparse::Error::NewLine) => {
            Parsed::Invalid(Reject::Malformed("invalid line ending in the head"))
        }
        Err(_) => Parsed::Invalid(Reject::Malformed("invalid request head")),
    }
}

/// Pingora's request-line escape applies when the line looks like
/// `METHOD <target> HTTP/<digit>` and the target holds a byte it escapes
/// (controls, space, `<`, `>`, `"`); otherwise it answers 400.
fn escapable(buf: &[u8]) -> Option<&[u8]> {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let sp = line.iter().position(|&b| b == b' ')?;
    if sp == 0
        || !line[..sp]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return None;
    }
    let rest = &line[sp + 1..];
    // The target runs to the last " HTTP/<digit>" (the pattern is greedy).
    let end = memchr::memmem::rfind_iter(rest, b" HTTP/")
        .find(|&i| i > 0 && rest.get(i + 6).is_some_and(u8::is_ascii_digit))?;
    let target = &rest[..end];
    target
        .iter()
        .any(|&b| escaped_by_pingora(b))
        .then_some(target)
}

/// `buf` with its request target percent-escaped where Pingora escaped it
/// ([`escaped_by_pingora`] bytes), so that httparse takes the line.
fn escape_target(buf: &[u8]) -> Option<BytesMut> {
    let target = escapable(buf)?;
    let start = target.as_ptr() as usize - buf.as_ptr() as usize;
    let end = start + target.len();
    let mut out = BytesMut::with_capacity(buf.len() + 2 * target.len());
    out.extend_from_slice(&buf[..start]);
    for &b in target {
        if escaped_by_pingora(b) {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.extend_from_slice(&[b]);
        }
    }
    out.extend_from_slice(&buf[end..]);
    Some(out)
}

/// The bytes Pingora percent-escapes in a request line httparse refused.
fn escaped_by_pingora(b: u8) -> bool {
    b < 0x20 || matches!(b, 0x7f | b' ' | b'<' | b'>' | b'"')
}

/// Whether `http::Uri` takes `t` as an origin-form target (path and
/// query character classes; bytes Pingora escapes first count as fine when
/// `escaped`). Other forms are checked elsewhere.
fn origin_form_ok(t: &[u8], escaped: bool) -> bool {
    let t = t.split(|&b| b == b'#').next().unwrap_or_default();
    if !matches!(t.first(), Some(b'/' | b'?')) {
        return true;
    }
    let (path, query) = match t.iter().position(|&b| b == b'?') {
        Some(q) => (&t[..q], &t[q + 1..]),
        None => (t, &[][..]),
    };
    let ok = |b: u8, class: u8| {
        URI_CLASS[usize::from(b)] & class != 0 || (escaped && escaped_by_pingora(b))
    };
    path.iter().all(|&b| ok(b, PATH)) && query.iter().all(|&b| ok(b, QUERY))
}

/// `http::Uri`'s origin-form character classes by byte, [`PATH`] and
/// [`QUERY`] bits: a table lookup per byte (the two `matches!` of ranges
/// were ~550 instructions for a 20-byte target, callgrind).
const URI_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E | b'"' | b'{' | b'}' | 0x80..=0xFF)
        {
            table[i] |= PATH;
        }
        if matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E | 0x80..=0xFF) {
            table[i] |= QUERY;
        }
        i += 1;
    }
    table
};
const PATH: u8 = 1;
const QUERY: u8 = 2;

/// The request targets Pingora's URI parsing accepts (`http::Uri` character
/// classes for origin-form; absolute-form only without user info and with
/// a matching `Host`). `CONNECT` is refused with 405.
fn target(req: &httparse::Request<'_, '_>, host: Option<&[u8]>) -> Result<(), Reject> {
    if req.method == Some("CONNECT") {
        return Err(Reject::Connect);
    }
    let t = req.path.unwrap_or_default().as_bytes();
    let t = t.split(|&b| b == b'#').next().unwrap_or_default();
    if t.is_empty() || t == b"*" {
        return Ok(());
    }
    let bad = Err(Reject::Malformed("invalid character in the request target"));
    if matches!(t[0], b'/' | b'?') {
        return if origin_form_ok(t, false) {
            Ok(())
        } else {
            bad
        };
    }
    // Absolute-form: `scheme://authority/...`.
    let Some(at) = memchr::memmem::find(t, b"://") else {
        return bad;
    };
    let after = &t[at + 3..];
    let authority = &after[..after
        .iter()
        .position(|&b| matches!(b, b'/' | b'?'))
        .unwrap_or(after.len())];
    if authority.is_empty() || authority.contains(&b'@') {
        return Err(Reject::Malformed(
            "user info or no host in the request target",
        ));
    }
    if host.is_some_and(|h| h != authority) {
        return Err(Reject::Malformed(
            "the Host header differs from the request target's host",
        ));
    }
    Ok(())
}

/// Whether the head's blank line has arrived (bare LF line ends included,
/// as httparse accepts them).
fn head_end(buf: &[u8]) -> bool {
    memchr::memmem::find(buf, b"\n\r\n").is_some() || memchr::memmem::find(buf, b"\n\n").is_some()
}

/// The framing checks of Pingora's `validate_request` that a client can
/// trip: `Content-Length` must be one number (identical repeats are fine),
/// `Transfer-Encoding` must end in `chunked` and not come with HTTP/1.0,
/// one `Host` without user info.
fn framing<'b>(req: &httparse::Request<'_, 'b>) -> Result<Option<&'b [u8]>, &'static str> {
    let mut length: Option<&[u8]> = None;
    let mut te: Option<&[u8]> = None;
    let mut host: Option<&'b [u8]> = None;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            for v in h.value.split(|&b| b == b',') {
                let v = v.trim_ascii();
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                    return Err("Content-Length is not a number");
                }
                if length.is_some_and(|l| l != v) {
                    return Err("conflicting Content-Length values");
                }
                length = Some(v);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = Some(h.value);
        } else if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return Err("more than one Host header");
            }
            if h.value.contains(&b'@') {
                return Err("user info in the Host header");
            }
            host = Some(h.value);
        }
    }
    if let Some(te) = te {
        if req.version == Some(0) {
            return Err("Transfer-Encoding in an HTTP/1.0 request");
        }
        if !super::h1::ends_chunked(te) {
            return Err("the final Transfer-Encoding is not chunked");
        }
    }
    Ok(host)
}

/// Write the rejection as a complete JSON answer and close. The format
/// follows the path when the request line arrived (`/v1/messages` gets
/// Anthropic's error shape, everything else OpenAI's).
async fn answer(stream: &mut Stream, reject: &Reject, head: &[u8], request_id: &str) {
    // The id is in the message too: a client that only keeps the body can
    // still quote it.
    let message = format!("{} (request id {request_id})", reject.message());
    // Every rejection is about the request as sent.
    let err = crate::protocol::chat::ChatError::new(
        crate::protocol::chat::ErrorKind::InvalidRequest,
        reject.status(),
        message,
    )
    .with_code(reject.code());
    let anthropic_client = head
        .split(|&b| b == b' ')
        .nth(1)
        .is_some_and(|p| p.starts_with(b"/v1/messages"));
    let api = if anthropic_client {
        super::client::ClientApi::ANTHROPIC
    } else {
        super::client::ClientApi::OPENAI
    };
    let body = api.ingress().encode_error(&err);
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{REQUEST_ID_HEADER}: {request_id}\r\nconnection: close\r\n{}\r\n",
            reject.status(),
            reject.reason(),
            body.len(),
            match reject {
                Reject::TooManyConnections(_) => "retry-after: 1\r\n",
                Reject::Connect => "allow: GET, POST\r\n",
                _ => "",
            },
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    let _ = timeout(REJECT_WRITE_TIMEOUT, async {
        stream.write_all(&out).await?;
        stream.flush().await?;
        stream.shutdown().await
    })
    .await;
    // Read what the client still sends before closing, so the kernel ends
    // the connection with a FIN, not a reset that could discard the answer
    // before the client reads it.
    let mut sink = [0u8; 4096];
    let _ = timeout(REJECT_DRAIN_TIMEOUT, async {
        let mut left = REJECT_DRAIN_BYTES;
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 || n >= left {
                break;
            }
            left -= n;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(head: &[u8]) -> &'static str {
        match check_head(head) {
            Parsed::Complete(_) => "complete",
            Parsed::Partial => "partial",
            Parsed::Invalid(_) => "invalid",
        }
    }

    #[test]
    fn heads_pingora_accepts_are_complete() {
        assert_eq!(
            parsed(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"),
            "complete"
        );
        assert_eq!(parsed(b"GET /health HTTP/1.1\nHost: a\n\n"), "complete");
        assert_eq!(parsed(b"GET /health HTTP/1.1\r\nHost: a\r\n"), "partial");
        assert_eq!(
            parsed(b"GET /a{b}|c^\\\"?q={x} HTTP/1.1\r\n\r\n"),
            "complete"
        );
        assert_eq!(parsed(b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), "complete");
        assert_eq!(parsed(b"GET * HTTP/1.1\r\n\r\n"), "complete");
        assert_eq!(
            parsed(b"GET http://x/health HTTP/1.1\r\nHost: x\r\n\r\n"),
            "complete"
        );
        // Pingora escapes these itself.
        assert_eq!(parsed(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), "complete");
        assert_eq!(parsed(b"GET /a\"b HTTP/1.1\r\nHost: a\r\n"), "partial");
        assert_eq!(
            parsed(b"POST /x HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"),
            "complete"
        );
        assert_eq!(
            parsed(b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            "complete"
        );
    }

    /// Every ASCII byte, in a path and in a query: the table says what
    /// `http::Uri` (Pingora's parser) says. Bytes from 0x80 are allowed
    /// here; `http::Uri` takes them in valid UTF-8 and Pingora answers 400
    /// to the rest after the edge.
    #[test]
    fn origin_form_bytes_match_http_uri() {
        for b in 0..0x80u8 {
            for t in [vec![b'/', b'a', b, b'z'], vec![b'/', b'?', b'q', b, b'z']] {
                let theirs = http::Uri::try_from(t.as_slice()).is_ok();
                assert_eq!(origin_form_ok(&t, false), theirs, "byte {b:#04x} in {t:?}");
            }
        }
        for t in ["/\u{e9}", "/?q=\u{e9}"] {
            assert!(origin_form_ok(t.as_bytes(), false) && http::Uri::try_from(t).is_ok());
        }
    }

    #[test]
    fn heads_pingora_refuses_are_invalid() {
        assert_eq!(
            parsed(b"GET /x HTTP/1.1\r\nBad\x01Name: a\r\n\r\n"),
            "invalid"
        );
        assert_eq!(parsed(b"GET /x HTTP/1.1\r\nA: b\x00c\r\n\r\n"), "invalid");
        assert_eq!(parsed(b"\x16\x03\x01\x02\x00\x01\x00"), "invalid");
        assert_eq!(
            parsed(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            "invalid"
        );
        assert_eq!(
            parsed(b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            "invalid"
        );
        assert_eq!(
            parsed(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            "invalid"
        );
        assert_eq!(
            parsed(b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "invalid"
        );
        assert_eq!(
            parsed(b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            "invalid"
        );
        // Characters `http::Uri` refuses, absolute-form mismatches, CONNECT,
        // a version with nothing to escape.
        assert_eq!(parsed(b"GET /a`b HTTP/1.1\r\nHost: x\r\n\r\n"), "invalid");
        assert_eq!(
            parsed(b"GET http://a@b/x HTTP/1.1\r\nHost: x\r\n\r\n"),
            "invalid"
        );
        assert_eq!(
            parsed(b"GET http://other/x HTTP/1.1\r\nHost: x\r\n\r\n"),
            "invalid"
        );
        assert_eq!(
            parsed(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
            "invalid"
        );
        assert_eq!(parsed(b"GET /x HTTP/2.0\r\nHost: x\r\n\r\n"), "invalid");
        assert_eq!(parsed(b"GET /a`b c HTTP/1.1\r\nHost: x\r\n\r\n"), "invalid");
        assert_eq!(
            parsed(b"GET /a?q=\"x\" HTTP/1.1\r\nHost: x\r\n\r\n"),
            "invalid"
        );
        let mut many = b"GET /x HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            check_head(&many),
            Parsed::Invalid(Reject::TooManyHeaders)
        ));
    }

    #[test]
    fn the_automatic_cap_follows_the_fd_limit() {
        assert_eq!(connection_cap(123), 123);
        let auto = connection_cap(0);
        assert!((16..=65_536).contains(&auto), "{auto}");
    }
}
