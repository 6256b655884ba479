//! Shared HTTP/1.1 plumbing for the scripted mock vendors (`mock_openai`,
//! `mock_anthropic`, `mock_gemini`), on raw tokio TCP.
//!
//! Hand-rolled on purpose (no hyper/axum): the gateway tests need to hang,
//! drop, reset and send garbage, which a real HTTP server library won't do.
//!
//! [`MockServer`] owns everything vendor-neutral: the accept loop, request
//! parsing (Content-Length and chunked bodies, pipelining, keep-alive), the
//! script of [`Reply`]s, recording, the wait helpers, and the replies that
//! look the same whatever the vendor (`Status`, `Hang`, `Drop`, `Reset`,
//! `Garbage`, `Delay`). A [`Vendor`] only says which paths consume scripted
//! replies and how the content replies (`Complete`, `ToolCall`, `Thinking`,
//! `StreamError`, `StreamThenDrop`) look in its wire format.
//!
//! Every request on every path is recorded before it is answered. The k-th
//! request a mock receives (any path) is request number `k` for the ids a
//! vendor puts in its answer (`chatcmpl-k`, `msg_k`, `req_k`, ...).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// Largest request head accepted; beyond it the connection is closed.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted, so a lying Content-Length can't make us
/// allocate without bound.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// How much room to make before each socket read; BytesMut alone would grow
/// by 64 bytes at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What the mock does with the next request on a scripted path (chat
/// completions, messages, generateContent).
#[derive(Debug, Clone)]
pub enum Reply {
    /// Normal answer: the vendor's non-streaming JSON, or its SSE stream when the request asks to stream.
    Complete,
    /// Answer with this status, extra headers and body (content-type application/json unless a content-type header is given).
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Read the request, then never answer (keep the socket open until the peer closes it).
    Hang,
    /// Read the request, then close the connection without answering.
    Drop,
    /// Read the request, then reset the connection (SO_LINGER 0 then close -> RST).
    Reset,
    /// Answer with bytes that are not HTTP at all, then close.
    Garbage,
    /// Start a 200 SSE stream (chunked, the vendor's streaming format whatever
    /// the request asked), send `events` events, then close abruptly (no
    /// final event, no terminating 0-chunk).
    StreamThenDrop { events: usize },
    /// Wait, then do the inner reply.
    Delay(Duration, Box<Reply>),
    /// The model calls one tool. `arguments` is JSON object text; vendors
    /// that carry arguments as a string (OpenAI) send it verbatim, those
    /// that carry an object (Anthropic `input`, Gemini `args`) parse it
    /// (text that is not JSON becomes `{}`). Streams split it into 3+
    /// pieces wherever the vendor streams arguments incrementally.
    ToolCall { name: String, arguments: String },
    /// Like `Complete`, preceded by this reasoning text in the vendor's
    /// thinking format (OpenAI mock: DeepSeek-style `reasoning_content`).
    Thinking { thinking: String },
    /// Streaming: a 200 stream that starts normally, then carries the
    /// vendor's in-stream error and ends cleanly (no normal finish).
    /// Non-streaming: the vendor's matching error status (see each mock).
    StreamError,
    /// A 200 `text/event-stream` answer made of exactly these chunks (each
    /// already framed, e.g. `"data: {}\n\n"`), sent `stream_delay` apart,
    /// then a clean end: for vendors that send garbage or odd events.
    RawStream { chunks: Vec<String> },
}

impl Reply {
    /// Shorthand for a JSON error reply, e.g. `Reply::status(503, body)`.
    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Shorthand for `Reply::Delay(d, Box::new(self))`.
    pub fn after(self, d: Duration) -> Reply {
        Reply::Delay(d, Box::new(self))
    }

    /// Shorthand for `Reply::ToolCall { name, arguments }`.
    pub fn tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Reply {
        Reply::ToolCall {
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    /// Shorthand for `Reply::Thinking { thinking }`.
    pub fn thinking(thinking: impl Into<String>) -> Reply {
        Reply::Thinking {
            thinking: thinking.into(),
        }
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target as sent, query string included.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Decoded body (chunked transfer encoding already removed).
    pub body: Vec<u8>,
}

impl Recorded {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// The body as JSON, or `Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The path without its query string.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// Value of query parameter `name`, if present (no percent-decoding: the
    /// mocks only look at plain values like `alt=sse`).
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// What a vendor mock adds to the shared server.
pub trait Vendor: Send + Sync + 'static {
    /// Module name, for panic messages ("mock_openai").
    const LABEL: &'static str;
    /// Path prefix that `base_url()` ends with ("/v1").
    const BASE_PATH: &'static str;
    /// Header that carries `req_<n>` on `Reply::Status` answers (added when
    /// the scripted headers lack it), if the vendor has one.
    const REQUEST_ID_HEADER: Option<&'static str>;
    /// What `route` learned about a scripted request and `render` needs
    /// (model, streaming or not, ...).
    type Target: Send;

    /// Decides whether a request consumes a scripted reply. Everything else
    /// (model lists, unknown paths, auth failures) gets a fixed answer, so
    /// background probes cannot eat replies a test scripted.
    fn route(call: &Call<'_>) -> Route<Self::Target>;

    /// Renders a content reply for a request `route` sent to the script.
    fn render(call: &Call<'_>, target: Self::Target, reply: Content<'_>) -> Response;
}

/// Exact token counts a mock reports instead of its estimates
/// ([`MockServer::set_usage`]), by billed class; each mock writes them in
/// its vendor's documented usage fields (prompt totals that include cache
/// reads, completion totals that include reasoning, and so on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockUsage {
    /// Prompt tokens neither read from nor written to the cache.
    pub input: u64,
    pub cached_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    /// Visible output tokens (reasoning excluded).
    pub output: u64,
    pub reasoning: u64,
}

/// The request being answered.
pub struct Call<'a> {
    /// The name the mock was started with ("Hello from <name>").
    pub name: &'a str,
    /// 1-based arrival order over all paths; names ids like `req_<n>`.
    pub n: usize,
    pub req: &'a Recorded,
    /// Exact usage to report, when the test set one.
    pub usage: Option<MockUsage>,
}

impl Call<'_> {
    /// The usual prompt-token estimate: body bytes / 4, at least 1.
    pub fn prompt_tokens(&self) -> usize {
        (self.req.body.len() / 4).max(1)
    }

    /// `Hello from <name>` as streamed word by word.
    pub fn answer_words(&self) -> Vec<String> {
        words(&format!("Hello from {}", self.name))
    }
}

/// Where a request goes.
pub enum Route<T> {
    /// Pops a scripted reply (or the default) and renders it.
    Scripted(T),
    /// Answered this way whatever the script says.
    Fixed(Response),
}

/// The replies a vendor renders in its own wire format.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    Complete,
    ToolCall { name: &'a str, arguments: &'a str },
    Thinking { thinking: &'a str },
    StreamError,
    StreamThenDrop { events: usize },
}

/// A vendor's answer, written by the shared server.
pub enum Response {
    /// Fixed-length response; content-type application/json unless given.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// 200 with a chunked body; every event is written as its own chunk
    /// (verbatim, so it carries its own SSE framing), with the stream delay
    /// between events. Content-type text/event-stream unless given.
    Stream {
        headers: Vec<(String, String)>,
        events: Vec<String>,
        end: StreamEnd,
    },
}

impl Response {
    /// A fixed-length response with these headers.
    pub fn full(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Response {
        Response::Full {
            status,
            headers: owned(headers),
            body: body.into(),
        }
    }
}

/// How a [`Response::Stream`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Terminating 0-chunk; the connection stays usable.
    Finish,
    /// Close without the terminating chunk (a truncated body).
    Drop,
}

/// Owned copies of borrowed header pairs.
pub fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// JSON string literal for `s`.
pub fn js(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// One SSE event carrying only a data line, LF-framed.
pub fn sse_data(data: &str) -> String {
    format!("data: {data}\n\n")
}

/// Splits text into stream tokens the way vendors stream words: "Hello",
/// " from", " x".
pub fn words(text: &str) -> Vec<String> {
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

/// Splits `text` into `parts` pieces of near-equal length on char
/// boundaries; pieces are empty when the text is shorter than `parts`.
/// Streams use it so a client has to reassemble tool arguments.
pub fn split_in(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let parts = parts.max(1);
    let size = chars.len().div_ceil(parts);
    (0..parts)
        .map(|i| {
            let start = (i * size).min(chars.len());
            let end = ((i + 1) * size).min(chars.len());
            chars[start..end].iter().collect()
        })
        .collect()
}

/// Tool arguments as a JSON value for vendors that send an object; text
/// that is not JSON becomes `{}` (a test bug, not something to crash on).
pub fn arguments_value(arguments: &str) -> serde_json::Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| serde_json::json!({}))
}

/// Token estimate for tool-call arguments: bytes / 4, at least 1.
pub fn argument_tokens(arguments: &str) -> usize {
    (arguments.len() / 4).max(1)
}

struct Shared {
    name: String,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    stream_delay: Mutex<Duration>,
    requests: Mutex<Vec<Recorded>>,
    /// Woken on every recorded request and every abandoned answer, for the
    /// wait helpers.
    recorded: Notify,
    connections: AtomicUsize,
    /// Answers abandoned because the peer (the gateway) went away first.
    abandoned: AtomicUsize,
    /// Fixed answers set by the test, by (method, path without query):
    /// they take precedence over the vendor's own fixed routes.
    fixed: Mutex<Vec<(String, String, u16, String)>>,
    /// Exact usage to report instead of the estimates.
    usage: Mutex<Option<MockUsage>>,
}

impl Shared {
    fn abandon(&self) {
        self.abandoned.fetch_add(1, Ordering::SeqCst);
        self.recorded.notify_waiters();
    }
}

/// Handle to a running mock vendor. Clones share state; the listener and all
/// open connections are closed once the last clone is dropped.
pub struct MockServer<V> {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Never sent on: dropping the last clone closes the channel, which is
    /// the shutdown signal for the accept loop and every connection task.
    _shutdown: Arc<watch::Sender<()>>,
    /// `fn() -> V` keeps the handle Send + Sync whatever V is.
    _vendor: PhantomData<fn() -> V>,
}

// Manual impl: derive would needlessly require `V: Clone`.
impl<V> Clone for MockServer<V> {
    fn clone(&self) -> Self {
        MockServer {
            addr: self.addr,
            shared: self.shared.clone(),
            _shutdown: self._shutdown.clone(),
            _vendor: PhantomData,
        }
    }
}

/// Poisoning only happens if a test thread panicked mid-update; the data is
/// still usable and a second panic would hide the first one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<V: Vendor> MockServer<V> {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{}: bind 127.0.0.1:0: {e}", V::LABEL));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{}: local_addr: {e}", V::LABEL));
        let shared = Arc::new(Shared {
            name: name.to_string(),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::Complete),
            stream_delay: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            recorded: Notify::new(),
            connections: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
            fixed: Mutex::new(Vec::new()),
            usage: Mutex::new(None),
        });
        let (tx, rx) = watch::channel(());
        tokio::spawn(accept_loop::<V>(listener, shared.clone(), rx));
        MockServer {
            addr,
            shared,
            _shutdown: Arc::new(tx),
            _vendor: PhantomData,
        }
    }

    /// `http://127.0.0.1:PORT` plus the vendor's base path.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, V::BASE_PATH)
    }

    /// Queues a reply; each scripted request pops one, the default applies when empty.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Reply used when the script is empty (initially `Reply::Complete`).
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default) = reply;
    }

    /// Answer `method path` (query ignored) always with this JSON, e.g. a
    /// vendor's model list, instead of the mock's built-in answer.
    pub fn set_fixed(&self, method: &str, path: &str, status: u16, body: impl Into<String>) {
        lock(&self.shared.fixed).push((method.to_string(), path.to_string(), status, body.into()));
    }

    /// Report exactly these token counts from now on (`None`: estimates).
    pub fn set_usage(&self, usage: Option<MockUsage>) {
        *lock(&self.shared.usage) = usage;
    }

    /// Pause between streamed events (initially zero).
    pub fn set_stream_delay(&self, d: Duration) {
        *lock(&self.shared.stream_delay) = d;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// TCP connections accepted so far (for keep-alive / pooling checks).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Answers the mock could not finish because the peer closed first (a
    /// `Hang` whose connection was closed, a stream whose write failed).
    pub fn abandoned(&self) -> usize {
        self.shared.abandoned.load(Ordering::SeqCst)
    }

    /// True once at least `n` answers were abandoned; false if `within` runs out.
    pub async fn wait_abandoned(&self, n: usize, within: Duration) -> bool {
        self.wait_until(within, || self.abandoned() >= n).await
    }

    /// True once at least `n` requests were recorded; false if `within` runs out first.
    pub async fn wait_for_count(&self, n: usize, within: Duration) -> bool {
        self.wait_until(within, || self.count() >= n).await
    }

    async fn wait_until(&self, within: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Register interest before checking, so an event in between
            // still wakes us.
            let notified = self.shared.recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done();
            }
        }
    }
}

async fn accept_loop<V: Vendor>(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        let sock = tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, _)) => sock,
                // Transient (e.g. EMFILE): keep serving rather than die silently.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = serve_conn::<V>(sock, &shared) => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// A parsed request plus what the connection loop needs to know about it.
struct Request {
    rec: Recorded,
    keep_alive: bool,
}

/// What to do with the connection after a reply.
enum After {
    KeepAlive,
    /// Graceful close (FIN).
    Close,
    /// Drop without shutdown; with SO_LINGER 0 already set this sends RST.
    Abort,
}

async fn serve_conn<V: Vendor>(mut sock: TcpStream, shared: &Shared) {
    // Stream events must leave as soon as they are written.
    let _ = sock.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        // Any malformed request or I/O error just ends this connection.
        let req = match read_request(&mut sock, &mut buf).await {
            Ok(Some(req)) => req,
            Ok(None) | Err(_) => return,
        };
        let n = {
            let mut reqs = lock(&shared.requests);
            reqs.push(req.rec.clone());
            reqs.len()
        };
        shared.recorded.notify_waiters();

        let after = match respond::<V>(&mut sock, shared, &req, n).await {
            Ok(after) => after,
            Err(_) => return,
        };
        if matches!(after, After::Abort) {
            return;
        }
        if matches!(after, After::Close) || !req.keep_alive {
            let _ = sock.shutdown().await;
            return;
        }
    }
}

type IoResult<T> = std::io::Result<T>;

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads more bytes into `buf`; EOF is an error because callers only read
/// when they still need data.
async fn fill(sock: &mut TcpStream, buf: &mut BytesMut) -> IoResult<()> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    match sock.read_buf(buf).await? {
        0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

/// Reads one request. `Ok(None)` means the peer closed cleanly between requests.
async fn read_request(sock: &mut TcpStream, buf: &mut BytesMut) -> IoResult<Option<Request>> {
    // Head.
    let (head_len, method, path, headers, http10) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(buf).map_err(|_| bad("bad request head"))? {
            httparse::Status::Complete(n) => {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    n,
                    req.method.unwrap_or_default().to_string(),
                    req.path.unwrap_or_default().to_string(),
                    headers,
                    req.version == Some(0),
                );
            }
            httparse::Status::Partial => {
                if buf.len() >= MAX_HEAD {
                    return Err(bad("request head too large"));
                }
                if buf.is_empty() {
                    // Nothing pending: a close here is a normal end of keep-alive.
                    if sock.read_buf(buf).await? == 0 {
                        return Ok(None);
                    }
                    continue;
                }
                fill(sock, buf).await?;
            }
        }
    };
    buf.advance(head_len);

    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let conn = header("connection").unwrap_or_default();
    let keep_alive = if http10 {
        conn.contains("keep-alive")
    } else {
        !conn.contains("close")
    };
    let chunked = header("transfer-encoding").is_some_and(|te| te.contains("chunked"));
    let content_length = match header("content-length") {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| bad("bad content-length"))?,
        ),
        None => None,
    };
    if header("expect").is_some_and(|e| e.contains("100-continue")) {
        // curl waits (up to 1 s) for this before sending large bodies.
        sock.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }

    // Body.
    let body = if chunked {
        read_chunked(sock, buf).await?
    } else {
        let len = content_length.unwrap_or(0);
        if len > MAX_BODY {
            return Err(bad("body too large"));
        }
        if buf.len() < len {
            // One allocation up front instead of doubling through a 4 MiB body.
            buf.reserve(len - buf.len());
        }
        while buf.len() < len {
            fill(sock, buf).await?;
        }
        buf.split_to(len).to_vec()
    };

    Ok(Some(Request {
        rec: Recorded {
            method,
            path,
            headers,
            body,
        },
        keep_alive,
    }))
}

/// Decodes a chunked body, consuming it (and any trailers) from `buf`.
async fn read_chunked(sock: &mut TcpStream, buf: &mut BytesMut) -> IoResult<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let (line_len, size) = loop {
            match httparse::parse_chunk_size(buf).map_err(|_| bad("bad chunk size"))? {
                httparse::Status::Complete((n, size)) => break (n, size),
                httparse::Status::Partial => {
                    if buf.len() > MAX_HEAD {
                        return Err(bad("chunk size line too long"));
                    }
                    fill(sock, buf).await?;
                }
            }
        };
        let size = usize::try_from(size).map_err(|_| bad("chunk too large"))?;
        if size > MAX_BODY || body.len() + size > MAX_BODY {
            return Err(bad("body too large"));
        }
        buf.advance(line_len);
        if size == 0 {
            break;
        }
        let need = size + 2;
        if buf.len() < need {
            buf.reserve(need - buf.len());
        }
        while buf.len() < need {
            fill(sock, buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        if &buf[size..need] != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
        buf.advance(need);
    }
    // Trailers (usually none): a header block ending in an empty line.
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        match httparse::parse_headers(buf, &mut slots).map_err(|_| bad("bad trailers"))? {
            httparse::Status::Complete((n, _)) => {
                buf.advance(n);
                return Ok(body);
            }
            httparse::Status::Partial => {
                if buf.len() > MAX_HEAD {
                    return Err(bad("trailers too large"));
                }
                fill(sock, buf).await?;
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Status",
    }
}

/// Response head: status line, content-type (the given one or `default_type`)
/// first, then `framing`, then the other headers minus any framing headers of
/// the caller's, since we frame the body ourselves.
fn head(
    status: u16,
    headers: &[(String, String)],
    default_type: &str,
    framing: &str,
    keep_alive: bool,
) -> String {
    let is = |k: &str, n: &str| k.eq_ignore_ascii_case(n);
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    let content_type = headers
        .iter()
        .find(|(k, _)| is(k, "content-type"))
        .map_or(default_type, |(_, v)| v.as_str());
    head.push_str(&format!("content-type: {content_type}\r\n"));
    head.push_str(framing);
    for (k, v) in headers {
        if is(k, "content-type") || is(k, "content-length") || is(k, "transfer-encoding") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Writes a complete fixed-length response.
async fn write_full(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
) -> IoResult<()> {
    let framing = format!("content-length: {}\r\n", body.len());
    let head = head(status, headers, "application/json", &framing, keep_alive);
    // One write so small responses go out in one segment.
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    sock.write_all(&out).await
}

/// Writes one HTTP chunk (one stream event).
async fn write_chunk(sock: &mut TcpStream, data: &str) -> IoResult<()> {
    let chunk = format!("{:x}\r\n{}\r\n", data.len(), data);
    sock.write_all(chunk.as_bytes()).await?;
    sock.flush().await
}

/// Sends events as separate chunks, pausing `delay` between them.
async fn send_events(sock: &mut TcpStream, events: &[String], delay: Duration) -> IoResult<()> {
    for (i, ev) in events.iter().enumerate() {
        if i > 0 && !delay.is_zero() {
            // Watch the socket while pausing, so a peer that hangs up is
            // noticed at once rather than at the next write.
            let mut probe = [0u8; 1];
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                r = sock.read(&mut probe) => {
                    if matches!(r, Ok(0) | Err(_)) {
                        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "peer closed mid-stream"));
                    }
                }
            }
        }
        write_chunk(sock, ev).await?;
    }
    Ok(())
}

/// Writes a vendor's response.
async fn write_response(
    sock: &mut TcpStream,
    shared: &Shared,
    response: Response,
    keep_alive: bool,
) -> IoResult<After> {
    match response {
        Response::Full {
            status,
            headers,
            body,
        } => {
            write_full(sock, status, &headers, body.as_bytes(), keep_alive).await?;
            Ok(After::KeepAlive)
        }
        Response::Stream {
            headers,
            events,
            end,
        } => {
            let head = head(
                200,
                &headers,
                "text/event-stream",
                "transfer-encoding: chunked\r\n",
                keep_alive,
            );
            sock.write_all(head.as_bytes()).await?;
            sock.flush().await?;
            let delay = *lock(&shared.stream_delay);
            let sent = send_events(sock, &events, delay).await;
            if end == StreamEnd::Drop {
                // The close below is the point of the reply; a peer that left
                // early changes nothing.
                sent?;
                return Ok(After::Close);
            }
            if let Err(e) = sent {
                shared.abandon();
                return Err(e);
            }
            sock.write_all(b"0\r\n\r\n").await?;
            sock.flush().await?;
            Ok(After::KeepAlive)
        }
    }
}

async fn respond<V: Vendor>(
    sock: &mut TcpStream,
    shared: &Shared,
    req: &Request,
    n: usize,
) -> IoResult<After> {
    let keep = req.keep_alive;
    let call = Call {
        name: &shared.name,
        n,
        req: &req.rec,
        usage: *lock(&shared.usage),
    };
    let fixed = lock(&shared.fixed)
        .iter()
        .rev()
        .find(|(m, p, _, _)| *m == req.rec.method && p == req.rec.route())
        .map(|(_, _, status, body)| (*status, body.clone()));
    if let Some((status, body)) = fixed {
        return write_response(sock, shared, Response::full(status, &[], body), keep).await;
    }
    let target = match V::route(&call) {
        Route::Scripted(target) => target,
        Route::Fixed(response) => return write_response(sock, shared, response, keep).await,
    };

    let scripted = lock(&shared.script).pop_front();
    let mut reply = scripted.unwrap_or_else(|| lock(&shared.default).clone());
    while let Reply::Delay(d, inner) = reply {
        tokio::time::sleep(d).await;
        reply = *inner;
    }

    let content = match &reply {
        Reply::Complete => Content::Complete,
        Reply::ToolCall { name, arguments } => Content::ToolCall { name, arguments },
        Reply::Thinking { thinking } => Content::Thinking { thinking },
        Reply::StreamError => Content::StreamError,
        Reply::RawStream { chunks } => {
            let response = Response::Stream {
                headers: Vec::new(),
                events: chunks.clone(),
                end: StreamEnd::Finish,
            };
            return write_response(sock, shared, response, keep).await;
        }
        Reply::StreamThenDrop { events } => Content::StreamThenDrop { events: *events },
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut headers = headers.clone();
            if let Some(id) = V::REQUEST_ID_HEADER {
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(id)) {
                    headers.push((id.to_string(), format!("req_{n}")));
                }
            }
            write_full(sock, *status, &headers, body.as_bytes(), keep).await?;
            return Ok(After::KeepAlive);
        }
        Reply::Hang => {
            // Swallow anything further until the peer gives up.
            let mut scratch = [0u8; 4096];
            while let Ok(n) = sock.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
            shared.abandon();
            return Ok(After::Close);
        }
        // Request already fully read, so closing sends FIN, not RST.
        Reply::Drop => return Ok(After::Close),
        Reply::Reset => {
            // SO_LINGER 0 makes the close below send RST; it cannot block the
            // thread here because the timeout is zero.
            sock.set_zero_linger()?;
            return Ok(After::Abort);
        }
        Reply::Garbage => {
            sock.write_all(b"\x00\xffTHIS IS NOT HTTP \xfe\xfd garbage garbage\r\n\r\n")
                .await?;
            sock.flush().await?;
            return Ok(After::Close);
        }
        // The loop above unwrapped every Delay; this arm only satisfies the
        // match and, were it reached, would answer like Complete.
        Reply::Delay(..) => Content::Complete,
    };
    let response = V::render(&call, target, content);
    write_response(sock, shared, response, keep).await
}
