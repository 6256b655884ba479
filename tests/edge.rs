//! The client edge: bounded model names and echoes, request-head deadline
//! and size, stalled bodies, the connection cap, JSON answers for refused
//! heads, and the budget for buffered upstream answers. The real gateway
//! binary on loopback; raw TCP clients where a client must misbehave.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{provider, typed_provider, Gateway, TOKEN};
use support::mock_anthropic::MockAnthropic;
use support::mock_openai::{MockOpenAi, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw answer: status, lower-cased headers, body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// JSON with the request id header.
    fn assert_json_with_id_header(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert!(self
            .header("x-llm-orchestrator-request-id")
            .is_some_and(|id| !id.is_empty()));
        self.json()
    }

    /// The request id is in the header and in the error message.
    fn assert_json_error_with_id(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        let id = self
            .header("x-llm-orchestrator-request-id")
            .unwrap_or_else(|| panic!("request id header in {:?}", self.headers))
            .to_string();
        assert!(!id.is_empty());
        let v = self.json();
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("request id {id}")),
            "request id {id} in the message: {v}"
        );
        v
    }
}

fn addr(gw: &Gateway) -> String {
    gw.base.trim_start_matches("http://").to_string()
}

/// Read one whole answer (the gateway closes the connection after it)
/// within `within`; `None` when the connection stays open and silent.
async fn read_answer(s: &mut TcpStream, within: Duration) -> Option<Raw> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(within, s.read_to_end(&mut buf)).await;
    match read {
        Err(_) => None,
        Ok(_) if buf.is_empty() => None,
        Ok(_) => Some(parse_raw(&buf)),
    }
}

fn parse_raw(buf: &[u8]) -> Raw {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "not an HTTP answer ({other:?}): {:?}",
            String::from_utf8_lossy(buf)
        ),
    };
    Raw {
        status: resp.code.unwrap_or(0),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: buf[head..].to_vec(),
    }
}

/// Send `bytes` on a fresh connection and read the answer.
async fn send_raw(gw: &Gateway, bytes: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr(gw)).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    read_answer(&mut s, Duration::from_secs(10))
        .await
        .expect("an answer within 10 s")
}

async fn scrape(gw: &Gateway) -> String {
    reqwest::Client::new()
        .get(gw.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text")
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn server(extra: &str) -> String {
    format!("[server]\n{extra}\n")
}

// --- model names and echoes ------------------------------------------------

#[tokio::test]
async fn model_names_over_256_bytes_are_refused_before_metrics_logs_and_the_db() {
    let mock = MockOpenAi::start("glob").await;
    let gw = Gateway::start(&provider(
        "glob",
        &mock.base_url(),
        &["sk-glob-000000000001"],
        "models = [\"o3*\"]",
    ))
    .await;
    let long = format!("o3{}", "Z".repeat(300));
    let r = gw
        .chat(&json!({"model": long, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("OpenAI error");
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("256"), "{message}");
    assert!(!message.contains("ZZZZ"), "no echo of the name: {message}");

    let r = gw
        .messages(
            &json!({"model": long, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("Anthropic error");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // Exactly 256 bytes is still a model name.
    let limit = format!("o3{}", "y".repeat(254));
    let r = gw
        .chat(&json!({"model": limit, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.count(), 1, "the long names never reached the vendor");

    // Both refusals have their log line and row — without the name.
    assert!(
        gw.wait_log("status=400", Duration::from_secs(5)).await,
        "{}",
        gw.logs()
    );
    assert!(!gw.logs().contains("ZZZZ"), "{}", gw.logs());
    assert!(!scrape(&gw).await.contains("ZZZZ"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = reqwest::Client::new()
            .get(gw.url("/api/logs?min_status=400"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("logs")
            .text()
            .await
            .expect("text");
        if rows.matches("\"status\":400").count() >= 2 {
            assert!(!rows.contains("ZZZZ"), "{rows}");
            break;
        }
        assert!(Instant::now() < deadline, "rows not written: {rows}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn echoes_of_paths_and_methods_are_bounded() {
    let gw = Gateway::start("").await;
    let path = format!("/{}", "p".repeat(20_000));
    let r = reqwest::Client::new()
        .get(gw.url(&path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let body = r.text().await.expect("body");
    assert!(
        body.len() < 1024,
        "404 echo is bounded: {} bytes",
        body.len()
    );
    assert!(body.contains("pppp"), "still names the path: {body}");

    let method = "M".repeat(5_000);
    let raw = send_raw(
        &gw,
        format!("{method} /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(raw.status, 405);
    let v = raw.assert_json_with_id_header();
    let message = v["error"]["message"].as_str().expect("message");
    assert!(message.len() < 1024, "405 echo is bounded: {message}");

    assert!(
        gw.wait_log("status=405", Duration::from_secs(5)).await,
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(
        !logs.contains(&"p".repeat(1_000)),
        "path bounded in the log"
    );
    assert!(
        !logs.contains(&"M".repeat(1_000)),
        "method bounded in the log"
    );
}

// --- slow clients ----------------------------------------------------------

#[tokio::test]
async fn a_trickled_request_head_gets_408_at_the_head_deadline() {
    let gw = Gateway::start(&server("head_timeout_secs = 1")).await;
    let mut s = TcpStream::connect(addr(&gw)).await.expect("connect");
    let started = Instant::now();
    s.write_all(b"GET /health HTTP/1.1\r\n")
        .await
        .expect("request line");
    // One header line every 200 ms: each read alone is quick, the head
    // as a whole is not.
    let mut answer = None;
    for i in 0..50 {
        if s.write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
        if let Some(raw) = read_answer(&mut s, Duration::from_millis(200)).await {
            answer = Some(raw);
            break;
        }
    }
    let raw = match answer {
        Some(r) => r,
        None => read_answer(&mut s, Duration::from_secs(2))
            .await
            .expect("an answer once the head deadline passed"),
    };
    let elapsed = started.elapsed();
    assert_eq!(raw.status, 408);
    assert!(
        elapsed < Duration::from_secs(4),
        "closed at the deadline: {elapsed:?}"
    );
    let v = raw.assert_json_error_with_id();
    assert_eq!(v["error"]["code"], "request_timeout");
    assert!(scrape(&gw)
        .await
        .contains("llm_client_requests_rejected_total{reason=\"head_timeout\"} 1"));
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_head_deadline() {
    let gw = Gateway::start(&server("head_timeout_secs = 1")).await;
    let mut s = TcpStream::connect(addr(&gw)).await.expect("connect");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(4), s.read(&mut buf))
        .await
        .expect("closed within the head deadline");
    assert!(matches!(n, Ok(0) | Err(_)), "closed without an answer");
}

#[tokio::test]
async fn a_stalled_body_gets_408_in_the_clients_format() {
    let gw = Gateway::start(&server("body_timeout_secs = 1")).await;
    for (path, anthropic) in [("/v1/chat/completions", false), ("/v1/messages", true)] {
        let mut s = TcpStream::connect(addr(&gw)).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nx-api-key: {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":"
        );
        s.write_all(head.as_bytes()).await.expect("write");
        let started = Instant::now();
        let raw = read_answer(&mut s, Duration::from_secs(5))
            .await
            .expect("an answer after the body stalled");
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(raw.status, 408, "{path}");
        let v = raw.assert_json_error_with_id();
        if anthropic {
            assert_eq!(v["type"], "error", "{v}");
            assert!(v["error"]["message"].is_string());
        } else {
            assert_eq!(v["error"]["code"], "request_timeout", "{v}");
        }
    }
    assert!(scrape(&gw)
        .await
        .contains("llm_client_requests_rejected_total{reason=\"body_timeout\"} 2"));
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_the_count_recovers() {
    let gw = Gateway::start_with(
        &server("max_connections = 4"),
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let admin_metrics = || async {
        reqwest::Client::new()
            .get(format!("{admin}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin scrape")
            .text()
            .await
            .expect("text")
    };
    // The start-up readiness poll's keep-alive connection may still be
    // open: wait until it is gone, so the slots are all free.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&admin_metrics().await, "llm_client_connections") != Some(0.0) {
        assert!(Instant::now() < deadline, "{}", admin_metrics().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Four idle connections take every slot.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr(&gw)).await.expect("connect"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&admin_metrics().await, "llm_client_connections") != Some(4.0) {
        assert!(Instant::now() < deadline, "{}", admin_metrics().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let raw = send_raw(&gw, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(raw.status, 503);
    assert_eq!(raw.header("retry-after"), Some("1"));
    let v = raw.assert_json_error_with_id();
    assert_eq!(v["error"]["code"], "too_many_connections");
    let text = admin_metrics().await;
    assert_eq!(
        metric(&text, "llm_client_connections_rejected_total"),
        Some(1.0)
    );

    // Closing them frees the slots.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(r) = reqwest::get(gw.url("/health")).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "slots not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- heads Pingora would refuse with an empty 400 ---------------------------

#[tokio::test]
async fn oversized_and_malformed_heads_get_json_errors_with_a_request_id() {
    let gw = Gateway::start("").await;

    // A 70 KB URL.
    let url = format!("/v1/chat/completions?q={}", "u".repeat(70_000));
    let raw = send_raw(
        &gw,
        format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(raw.status, 414);
    assert_eq!(
        raw.assert_json_error_with_id()["error"]["code"],
        "uri_too_long"
    );

    // A 70 KB header.
    let raw = send_raw(
        &gw,
        format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
            "h".repeat(70_000)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(raw.status, 431);
    assert_eq!(
        raw.assert_json_error_with_id()["error"]["code"],
        "request_header_too_large"
    );

    // Below the limit is fine.
    let raw = send_raw(
        &gw,
        format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-big: {}\r\n\r\n",
            "h".repeat(30_000)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(raw.status, 200);

    // Too many header fields.
    let mut many = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..300 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let raw = send_raw(&gw, many.as_bytes()).await;
    assert_eq!(raw.status, 431);
    assert_eq!(
        raw.assert_json_error_with_id()["error"]["code"],
        "too_many_headers"
    );

    // Bad bytes in a header; on /v1/messages the answer is Anthropic's shape.
    let raw = send_raw(
        &gw,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-bad: a\x01b\r\n\r\n",
    )
    .await;
    assert_eq!(raw.status, 400);
    assert_eq!(
        raw.assert_json_error_with_id()["error"]["code"],
        "malformed_request"
    );
    let raw = send_raw(
        &gw,
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-\x7fbad: ab\r\n\r\n",
    )
    .await;
    assert_eq!(raw.status, 400);
    let v = raw.assert_json_error_with_id();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    // Conflicting framing.
    let raw = send_raw(
        &gw,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    )
    .await;
    assert_eq!(raw.status, 400);
    raw.assert_json_error_with_id();

    // A target `http::Uri` refuses (Pingora answered an empty 400), and
    // CONNECT (Pingora answered an empty 405).
    let raw = send_raw(&gw, b"GET /a`b HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(raw.status, 400);
    raw.assert_json_error_with_id();
    let raw = send_raw(&gw, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").await;
    assert_eq!(raw.status, 405);
    assert_eq!(
        raw.assert_json_error_with_id()["error"]["code"],
        "method_not_allowed"
    );

    // Not HTTP at all (a TLS hello on the plain port).
    let raw = send_raw(&gw, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n").await;
    assert_eq!(raw.status, 400);
    raw.assert_json_error_with_id();

    let text = scrape(&gw).await;
    assert_eq!(
        metric(
            &text,
            "llm_client_requests_rejected_total{reason=\"head_too_large\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &text,
            "llm_client_requests_rejected_total{reason=\"malformed\"}"
        ),
        Some(6.0)
    );
}

#[tokio::test]
async fn keep_alive_requests_still_flow_through_the_edge() {
    let gw = Gateway::start(&server("keepalive_timeout_secs = 1")).await;
    let mut s = TcpStream::connect(addr(&gw)).await.expect("connect");
    for _ in 0..3 {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answer")
            .expect("read");
        let raw = parse_raw(&buf[..n]);
        assert_eq!(raw.status, 200);
    }
    // Idle past keepalive_timeout_secs: closed.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(4), s.read(&mut buf))
        .await
        .expect("idle connection closed");
    assert!(matches!(n, Ok(0) | Err(_)));
}

/// Requests sent back to back before any answer (HTTP/1.1 pipelining,
/// RFC 9112 §9.3.2) are answered in order on the one connection, the last
/// one's `Connection: close` honoured — including a request whose body
/// arrived in the same write as the next request's head.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let gw = Gateway::start("").await;
    let mut s = TcpStream::connect(addr(&gw)).await.expect("connect");
    let body = r#"{"model":"nope","messages":[]}"#;
    let wire = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n\
         POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}\
         GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(wire.as_bytes()).await.expect("write");
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all))
        .await
        .expect("the connection closes after the third answer")
        .expect("read");
    let mut statuses = Vec::new();
    let mut rest = &all[..];
    while !rest.is_empty() {
        let raw = parse_raw(rest);
        let len: usize = raw
            .header("content-length")
            .expect("length")
            .parse()
            .unwrap();
        let head_len = rest.len() - raw.body.len();
        statuses.push(raw.status);
        if statuses.len() == 3 {
            assert_eq!(raw.header("connection"), Some("close"));
        } else {
            assert_eq!(raw.header("connection"), Some("keep-alive"));
        }
        rest = &rest[head_len + len..];
    }
    // The unknown model gets its 404 in between.
    assert_eq!(statuses, [200, 404, 200]);
}

/// A chunked request body whose framing breaks (here a chunk-size line
/// that never ends) gets a 400 in the client's format, and the connection
/// closes: what follows cannot be framed.
#[tokio::test]
async fn a_malformed_chunked_body_gets_400_and_a_close() {
    let gw = Gateway::start("").await;
    let mut wire = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    wire.extend_from_slice(&[b'f'; 10_000]);
    let raw = send_raw(&gw, &wire).await;
    assert_eq!(raw.status, 400);
    assert_eq!(raw.header("connection"), Some("close"));
    let v = raw.assert_json_with_id_header();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("chunked transfer coding is malformed"),
        "{v}"
    );
}

// --- buffered answers --------------------------------------------------------

#[tokio::test]
async fn translated_answers_beyond_the_buffer_budget_get_503() {
    let mock = MockAnthropic::start("claude").await;
    let gw = Gateway::start(&format!(
        "{}{}",
        server("max_buffered_response_bytes = 65536"),
        typed_provider(
            "anthropic",
            "claude",
            &mock.base_url(),
            &["sk-ant-000000000001"],
            ""
        )
    ))
    .await;
    let big = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "w ".repeat(60_000)}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 3, "output_tokens": 60000}
    });
    mock.push(Reply::status(200, big.to_string()));
    let hello = json!({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.chat(&hello).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let v: Value = r.json().await.expect("OpenAI error");
    assert_eq!(v["error"]["code"], "gateway_overloaded");

    // The budget is released: a small answer goes through.
    let r = gw.chat(&hello).await;
    assert_eq!(r.status(), 200);
    let text = scrape(&gw).await;
    assert_eq!(
        metric(&text, "llm_buffered_responses_rejected_total"),
        Some(1.0)
    );
    assert_eq!(metric(&text, "llm_buffered_response_bytes"), Some(0.0));
    assert_eq!(
        metric(&text, "llm_buffered_response_limit_bytes"),
        Some(65536.0)
    );
}

#[tokio::test]
async fn invalid_edge_settings_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("g.toml");
    std::fs::write(
        &file,
        "[server]\nmax_head_bytes = 10\nhead_timeout_secs = 0\nmax_buffered_response_bytes = 1\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"))
        .arg("--check")
        .arg("--config")
        .arg(&file)
        .env_clear()
        .output()
        .expect("run --check");
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for key in [
        "server.max_head_bytes",
        "server.head_timeout_secs",
        "server.max_buffered_response_bytes",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
}

#[tokio::test]
async fn answers_held_for_the_vendor_format_check_count_against_the_buffer_budget() {
    let mock = MockOpenAi::start("gpt").await;
    let gw = Gateway::start(&format!(
        "{}{}",
        server("max_buffered_response_bytes = 65536"),
        provider("gpt", &mock.base_url(), &["sk-gpt-000000000001"], "")
    ))
    .await;
    // A pass-through stream whose first event takes a while to complete:
    // the gateway holds its first 40 KB back until the event can be checked.
    let first_half = format!("data: {{\"id\":\"c1\",\"pad\":\"{}", "x".repeat(40_000));
    mock.set_stream_delay(Duration::from_millis(1500));
    mock.set_default(Reply::RawStream {
        chunks: vec![first_half, "\"}\n\n".into(), "data: [DONE]\n\n".into()],
    });
    let body = json!({"model": "gpt-x", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let request = tokio::spawn({
        let url = gw.url("/v1/chat/completions");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .expect("send")
                .text()
                .await
                .expect("body")
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let held = metric(&scrape(&gw).await, "llm_buffered_response_bytes").unwrap_or(0.0);
        if held >= 40_000.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "held bytes never counted: {held}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = request.await.expect("request task");
    assert!(
        text.contains("[DONE]"),
        "{}",
        &text[text.len().saturating_sub(200)..]
    );
    // Released once checked, and nothing was refused.
    let text = scrape(&gw).await;
    assert_eq!(metric(&text, "llm_buffered_response_bytes"), Some(0.0));
    assert_eq!(
        metric(&text, "llm_buffered_responses_rejected_total"),
        Some(0.0)
    );

    // A whole pass-through answer larger than the budget is not refused:
    // it is checked as far as the budget allows, then relayed intact.
    let big = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "w".repeat(200_000)}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    });
    mock.push(Reply::status(200, big.to_string()));
    let r = gw
        .chat(&json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("the vendor's answer");
    assert_eq!(got, big);
    let text = scrape(&gw).await;
    assert_eq!(metric(&text, "llm_buffered_response_bytes"), Some(0.0));
    assert_eq!(
        metric(&text, "llm_buffered_responses_rejected_total"),
        Some(0.0)
    );
}
