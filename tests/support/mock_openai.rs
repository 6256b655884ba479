//! A mock OpenAI-compatible vendor speaking raw HTTP/1.1 over tokio TCP.
//!
//! Hand-rolled on purpose (no hyper/axum): the gateway tests need to hang,
//! drop, reset and send garbage, which a real HTTP server library won't do.
//!
//! Only `POST /v1/chat/completions` consumes scripted [`Reply`]s; `GET
//! /v1/models` and unknown paths always answer the same way, so background
//! probes cannot eat replies a test scripted. Every request on every path is
//! recorded before it is answered. The k-th request a mock receives (any
//! path) is answered with ids `chatcmpl-k` and `x-request-id: req_k`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// What the mock does with the next chat-completions request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Normal answer: non-streaming chat.completion JSON, or an SSE stream when the request body has "stream": true.
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
    /// Start a 200 SSE stream (chunked), send `events` data events, then close abruptly (no [DONE], no terminating 0-chunk).
    StreamThenDrop { events: usize },
    /// Wait, then do the inner reply.
    Delay(Duration, Box<Reply>),
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
}

struct Shared {
    name: String,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    stream_delay: Mutex<Duration>,
    requests: Mutex<Vec<Recorded>>,
    /// Woken on every recorded request, for `wait_for_count`.
    recorded: Notify,
    connections: AtomicUsize,
    /// Answers abandoned because the peer (the gateway) went away first.
    abandoned: AtomicUsize,
}

/// Handle to a running mock vendor. Clones share state; the listener and all
/// open connections are closed once the last clone is dropped.
#[derive(Clone)]
pub struct MockOpenAi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Never sent on: dropping the last clone closes the channel, which is
    /// the shutdown signal for the accept loop and every connection task.
    _shutdown: Arc<watch::Sender<()>>,
}

/// Poisoning only happens if a test thread panicked mid-update; the data is
/// still usable and a second panic would hide the first one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockOpenAi {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime.
    pub async fn start(name: &str) -> MockOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("mock_openai: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("mock_openai: local_addr");
        let shared = Arc::new(Shared {
            name: name.to_string(),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::Complete),
            stream_delay: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            recorded: Notify::new(),
            connections: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
        });
        let (tx, rx) = watch::channel(());
        tokio::spawn(accept_loop(listener, shared.clone(), rx));
        MockOpenAi {
            addr,
            shared,
            _shutdown: Arc::new(tx),
        }
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a reply; each chat request pops one, the default applies when empty.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Reply used when the script is empty (initially `Reply::Complete`).
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default) = reply;
    }

    /// Pause between SSE events (initially zero).
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
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.abandoned() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.abandoned() >= n;
            }
        }
    }

    /// True once at least `n` requests were recorded; false if `within` runs out first.
    pub async fn wait_for_count(&self, n: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Register interest before checking, so a request recorded in
            // between still wakes us.
            let notified = self.shared.recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() >= n;
            }
        }
    }
}

async fn accept_loop(
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
                _ = serve_conn(sock, &shared) => {}
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

async fn serve_conn(mut sock: TcpStream, shared: &Shared) {
    // SSE events must leave as soon as they are written.
    let _ = sock.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        // Any malformed request or I/O error just ends this connection.
        let req = match read_request(&mut sock, &mut buf).await {
            Ok(Some(req)) => req,
            Ok(None) | Err(_) => return,
        };
        // `n` (1-based arrival order) names the reply: chatcmpl-<n>, req_<n>.
        let n = {
            let mut reqs = lock(&shared.requests);
            reqs.push(req.rec.clone());
            reqs.len()
        };
        shared.recorded.notify_waiters();

        let after = match respond(&mut sock, shared, &req, n).await {
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

/// JSON string literal for `s`.
fn js(s: &str) -> String {
    serde_json::Value::from(s).to_string()
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
        _ => "Status",
    }
}

/// Writes a complete fixed-length response.
async fn write_full(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
) -> IoResult<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("content-type") {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        // We frame the body ourselves; a caller's length header would conflict.
        if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n", body.len()));
    if !keep_alive {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    // One write so small responses go out in one segment.
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    sock.write_all(&out).await
}

/// Writes one HTTP chunk (one SSE event).
async fn write_chunk(sock: &mut TcpStream, data: &str) -> IoResult<()> {
    let chunk = format!("{:x}\r\n{}\r\n", data.len(), data);
    sock.write_all(chunk.as_bytes()).await?;
    sock.flush().await
}

/// The parts of a chat request that shape the answer.
struct Chat {
    n: usize,
    created: u64,
    model: String,
    include_usage: bool,
    prompt_tokens: usize,
    words: Vec<String>,
}

impl Chat {
    fn new(shared: &Shared, req: &Recorded, n: usize) -> (Chat, bool) {
        let body = req.json();
        let stream = body["stream"].as_bool() == Some(true);
        let chat = Chat {
            n,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: body["model"].as_str().unwrap_or("mock-model").to_string(),
            include_usage: body["stream_options"]["include_usage"].as_bool() == Some(true),
            prompt_tokens: (req.body.len() / 4).max(1),
            // "Hello", " from", " <name>": one content delta per word, as OpenAI streams tokens.
            words: format!("Hello from {}", shared.name)
                .split(' ')
                .enumerate()
                .map(|(i, w)| {
                    if i == 0 {
                        w.to_string()
                    } else {
                        format!(" {w}")
                    }
                })
                .collect(),
        };
        (chat, stream)
    }

    fn content(&self) -> String {
        self.words.concat()
    }

    fn usage(&self) -> String {
        let c = self.words.len();
        format!(
            r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}"#,
            self.prompt_tokens,
            c,
            self.prompt_tokens + c
        )
    }

    fn completion(&self) -> String {
        format!(
            r#"{{"id":"chatcmpl-{}","object":"chat.completion","created":{},"model":{},"choices":[{{"index":0,"message":{{"role":"assistant","content":{},"refusal":null}},"logprobs":null,"finish_reason":"stop"}}],"usage":{},"system_fingerprint":"fp_mock"}}"#,
            self.n,
            self.created,
            js(&self.model),
            js(&self.content()),
            self.usage()
        )
    }

    /// One `chat.completion.chunk` with the given delta and finish_reason JSON.
    fn chunk(&self, delta: &str, finish: &str) -> String {
        let usage = if self.include_usage {
            r#","usage":null"#
        } else {
            ""
        };
        format!(
            r#"{{"id":"chatcmpl-{}","object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":"fp_mock","choices":[{{"index":0,"delta":{},"logprobs":null,"finish_reason":{}}}]{}}}"#,
            self.n,
            self.created,
            js(&self.model),
            delta,
            finish,
            usage
        )
    }

    fn content_chunk(&self, i: usize) -> String {
        let word = &self.words[i % self.words.len()];
        self.chunk(&format!(r#"{{"content":{}}}"#, js(word)), "null")
    }

    fn usage_chunk(&self) -> String {
        format!(
            r#"{{"id":"chatcmpl-{}","object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":"fp_mock","choices":[],"usage":{}}}"#,
            self.n,
            self.created,
            js(&self.model),
            self.usage()
        )
    }

    fn request_id(&self) -> String {
        format!("req_{}", self.n)
    }
}

async fn write_sse_head(sock: &mut TcpStream, chat: &Chat, keep_alive: bool) -> IoResult<()> {
    let close = if keep_alive {
        ""
    } else {
        "connection: close\r\n"
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\nx-request-id: {}\r\nopenai-processing-ms: 1\r\n{close}\r\n",
        chat.request_id()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.flush().await
}

/// Sends SSE events as separate chunks, pausing `delay` between them.
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
        write_chunk(sock, &format!("data: {ev}\n\n")).await?;
    }
    Ok(())
}

async fn respond(
    sock: &mut TcpStream,
    shared: &Shared,
    req: &Request,
    n: usize,
) -> IoResult<After> {
    let rec = &req.rec;
    let route = rec.path.split('?').next().unwrap_or("");
    let keep = req.keep_alive;
    match (rec.method.as_str(), route) {
        ("POST", "/v1/chat/completions") => {}
        ("GET", "/v1/models") => {
            let body = format!(
                r#"{{"object":"list","data":[{{"id":"mock-model","object":"model","created":1700000000,"owned_by":{}}}]}}"#,
                js(&shared.name)
            );
            write_full(sock, 200, &[], body.as_bytes(), keep).await?;
            return Ok(After::KeepAlive);
        }
        _ => {
            let body = r#"{"error":{"message":"Unknown path","type":"invalid_request_error","param":null,"code":"not_found"}}"#;
            write_full(sock, 404, &[], body.as_bytes(), keep).await?;
            return Ok(After::KeepAlive);
        }
    }

    let scripted = lock(&shared.script).pop_front();
    let mut reply = scripted.unwrap_or_else(|| lock(&shared.default).clone());
    while let Reply::Delay(d, inner) = reply {
        tokio::time::sleep(d).await;
        reply = *inner;
    }
    let delay = *lock(&shared.stream_delay);

    match reply {
        Reply::Complete => {
            let (chat, stream) = Chat::new(shared, rec, n);
            if !stream {
                let headers = [
                    ("x-request-id".to_string(), chat.request_id()),
                    ("openai-processing-ms".to_string(), "1".to_string()),
                ];
                write_full(sock, 200, &headers, chat.completion().as_bytes(), keep).await?;
                return Ok(After::KeepAlive);
            }
            let mut events = vec![chat.chunk(
                r#"{"role":"assistant","content":"","refusal":null}"#,
                "null",
            )];
            events.extend((0..chat.words.len()).map(|i| chat.content_chunk(i)));
            events.push(chat.chunk("{}", r#""stop""#));
            if chat.include_usage {
                events.push(chat.usage_chunk());
            }
            events.push("[DONE]".to_string());
            write_sse_head(sock, &chat, keep).await?;
            if let Err(e) = send_events(sock, &events, delay).await {
                shared.abandoned.fetch_add(1, Ordering::SeqCst);
                shared.recorded.notify_waiters();
                return Err(e);
            }
            sock.write_all(b"0\r\n\r\n").await?;
            sock.flush().await?;
            Ok(After::KeepAlive)
        }
        Reply::Status {
            status,
            mut headers,
            body,
        } => {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("x-request-id"))
            {
                headers.push(("x-request-id".to_string(), format!("req_{n}")));
            }
            write_full(sock, status, &headers, body.as_bytes(), keep).await?;
            Ok(After::KeepAlive)
        }
        Reply::Hang => {
            // Swallow anything further until the peer gives up.
            let mut scratch = [0u8; 4096];
            while let Ok(n) = sock.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
            shared.abandoned.fetch_add(1, Ordering::SeqCst);
            shared.recorded.notify_waiters();
            Ok(After::Close)
        }
        // Request already fully read, so closing sends FIN, not RST.
        Reply::Drop => Ok(After::Close),
        Reply::Reset => {
            // SO_LINGER 0 makes the close below send RST; it cannot block the
            // thread here because the timeout is zero.
            sock.set_zero_linger()?;
            Ok(After::Abort)
        }
        Reply::Garbage => {
            sock.write_all(b"\x00\xffTHIS IS NOT HTTP \xfe\xfd garbage garbage\r\n\r\n")
                .await?;
            sock.flush().await?;
            Ok(After::Close)
        }
        Reply::StreamThenDrop { events } => {
            let (chat, _) = Chat::new(shared, rec, n);
            let evs: Vec<String> = (0..events).map(|i| chat.content_chunk(i)).collect();
            write_sse_head(sock, &chat, keep).await?;
            send_events(sock, &evs, delay).await?;
            Ok(After::Close)
        }
        Reply::Delay(..) => unreachable!("Delay unwrapped above"),
    }
}
