//! Load benchmark: a fast mock OpenAI vendor and the real gateway on
//! loopback, driven by a closed-loop load generator. Each scenario is run
//! against the mock directly and through the gateway, so the table shows
//! what the gateway adds.
//!
//!     cargo bench --bench load                # full run (~1 minute)
//!     cargo bench --bench load -- --quick     # smoke run: asserts no errors only
//!
//! Options: `--duration <secs>` per measurement, `--no-pin` to skip CPU
//! pinning (by default the gateway — and nginx — run on CPU 0 with one
//! worker and the mock plus load generator on the remaining CPUs, via
//! `taskset`), `--no-nginx` to skip the reference proxy. When nginx is
//! installed (Debian's `nginx-light`) the harness starts its own instance
//! on a private prefix and measures it on the pass-through scenarios, so
//! every figure has a yardstick measured in the same run.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ANTHROPIC_MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"bench-claude","content":[{"type":"text","text":"Hello from the benchmark mock"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6}}"#;

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark mock","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18},"system_fingerprint":"fp_bench"}"#;

/// A minimal keep-alive HTTP/1.1 server answering every POST with a fixed
/// chat completion (or a short SSE stream when the body asks for one).
async fn mock_vendor(listener: TcpListener, down: bool) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(16 * 1024);
            loop {
                // Read one request: head, then Content-Length bytes.
                let (head_len, body_len) = loop {
                    if let Some(pos) = find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (pos + 4, len);
                    }
                    let mut chunk = [0u8; 16 * 1024];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                while buf.len() < head_len + body_len {
                    let mut chunk = vec![0u8; (head_len + body_len - buf.len()).min(256 * 1024)];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let stream =
                    find(&buf[head_len..head_len + body_len], b"\"stream\":true").is_some();
                let anthropic = find(&buf[..head_len], b"/v1/messages").is_some();
                buf.drain(..head_len + body_len);
                let ok = if down {
                    let body = r#"{"error":{"message":"unavailable","type":"server_error","param":null,"code":null}}"#;
                    let out = format!("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                    sock.write_all(out.as_bytes()).await
                } else if anthropic && stream {
                    let mut out = String::from("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
                    let mut events = vec![
                        ("message_start", r#"{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"bench-claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#.to_string()),
                        ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_string()),
                    ];
                    for word in ["Hello", " from", " the", " benchmark", " mock"] {
                        events.push(("content_block_delta", format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{word}"}}}}"#)));
                    }
                    events.push((
                        "content_block_stop",
                        r#"{"type":"content_block_stop","index":0}"#.to_string(),
                    ));
                    events.push(("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#.to_string()));
                    events.push(("message_stop", r#"{"type":"message_stop"}"#.to_string()));
                    for (name, data) in events {
                        let ev = format!("event: {name}\ndata: {data}\n\n");
                        out.push_str(&format!("{:x}\r\n{ev}\r\n", ev.len()));
                    }
                    out.push_str("0\r\n\r\n");
                    sock.write_all(out.as_bytes()).await
                } else if anthropic {
                    let out = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANTHROPIC_MESSAGE}",
                        ANTHROPIC_MESSAGE.len()
                    );
                    sock.write_all(out.as_bytes()).await
                } else if stream {
                    let mut out = String::from("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
                    for word in ["Hello", " from", " the", " benchmark", " mock"] {
                        let ev = format!("data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\"finish_reason\":null}}]}}\n\n");
                        out.push_str(&format!("{:x}\r\n{ev}\r\n", ev.len()));
                    }
                    let done = "data: [DONE]\n\n";
                    out.push_str(&format!("{:x}\r\n{done}\r\n0\r\n\r\n", done.len()));
                    sock.write_all(out.as_bytes()).await
                } else {
                    let out = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{COMPLETION}",
                        COMPLETION.len()
                    );
                    sock.write_all(out.as_bytes()).await
                };
                if ok.is_err() {
                    return;
                }
            }
        });
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One closed-loop client connection: send, read the whole answer, repeat.
struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        Ok(Conn {
            sock,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Returns the status; reads a Content-Length or chunked body fully.
    async fn round_trip(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.sock.write_all(request).await?;
        loop {
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut resp = httparse::Response::new(&mut headers);
                match resp
                    .parse(&self.buf)
                    .map_err(|e| std::io::Error::other(e.to_string()))?
                {
                    httparse::Status::Complete(head_len) => {
                        let mut content_length = None;
                        let mut chunked = false;
                        for h in resp.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                content_length = std::str::from_utf8(h.value)
                                    .ok()
                                    .and_then(|v| v.trim().parse::<usize>().ok());
                            }
                            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                chunked = true;
                            }
                        }
                        Some((resp.code.unwrap_or(0), head_len, content_length, chunked))
                    }
                    httparse::Status::Partial => None,
                }
            };
            let Some((status, head_len, content_length, chunked)) = parsed else {
                self.read_more().await?;
                continue;
            };
            self.buf.drain(..head_len);
            if let Some(len) = content_length {
                self.fill(len).await?;
                self.buf.drain(..len);
            } else if chunked {
                // Read until the terminating zero-length chunk.
                loop {
                    if let Some(end) = find(&self.buf, b"\r\n0\r\n\r\n") {
                        self.buf.drain(..end + 7);
                        break;
                    }
                    if self.buf.starts_with(b"0\r\n\r\n") {
                        self.buf.drain(..5);
                        break;
                    }
                    self.read_more().await?;
                }
            }
            return Ok(status);
        }
    }

    async fn fill(&mut self, n: usize) -> std::io::Result<()> {
        while self.buf.len() < n {
            self.read_more().await?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    fn rps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }
}

async fn drive(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    concurrency: usize,
    duration: Duration,
) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (stop, errors, request) = (stop.clone(), errors.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut conn = None;
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none() {
                    conn = Conn::open(addr).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let t = Instant::now();
                match c.round_trip(&request).await {
                    Ok(200) => lat.push(t.elapsed().as_micros() as u64),
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut stats = Stats::default();
    for t in tasks {
        if let Ok(lat) = t.await {
            stats.latencies_us.extend(lat);
        }
    }
    stats.elapsed = start.elapsed();
    stats.errors = errors.load(Ordering::Relaxed);
    stats.latencies_us.sort_unstable();
    stats
}

fn request_bytes(host: &str, path: &str, model: &str, stream: bool, pad: usize) -> Vec<u8> {
    let content = "x".repeat(pad.max(5));
    let body = if path == "/v1/messages" {
        format!(
            r#"{{"model":"{model}","max_tokens":64,"messages":[{{"role":"user","content":"{content}"}}],"stream":{stream}}}"#
        )
    } else {
        format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"{content}"}}],"stream":{stream}}}"#
        )
    };
    format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer bench-token\r\nx-api-key: bench-token\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct GatewayProc {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(mock: SocketAddr, down: SocketAddr, pin: bool) -> GatewayProc {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nthreads = 1\n[admin]\nlisten = \"\"\n[log]\nlevel = \"warn\"\n\
             [[providers]]\nname = \"mock\"\ntype = \"openai\"\nbase_url = \"http://{mock}/v1\"\napi_keys = [\"sk-bench-000000000001\"]\nmodels = [\"bench-model\", \"bench-failover\"]\n\
             [[providers]]\nname = \"mock-anthropic\"\ntype = \"anthropic\"\nbase_url = \"http://{mock}/v1\"\napi_keys = [\"sk-bench-000000000002\"]\nmodels = [\"bench-claude\"]\n\
             [[providers]]\nname = \"down\"\ntype = \"openai\"\nbase_url = \"http://{down}/v1\"\napi_keys = [\"sk-bench-000000000003\"]\nmodels = [\"bench-failover\"]\nweight = 1000\n"
        ),
    )
    .expect("write config");
    let bin = env!("CARGO_BIN_EXE_llm-orchestrator");
    let mut cmd = if pin && has_taskset() {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", bin]);
        c
    } else {
        Command::new(bin)
    };
    let mut child = cmd
        .arg("--config")
        .arg(&config)
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", "0")
        .env("AUTH_TOKEN", "bench-token")
        .env(
            "DATABASE_URL",
            format!("sqlite:///{}", dir.path().join("bench.db").display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gateway");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read address");
    let addr = line
        .trim()
        .strip_prefix("llm-orchestrator listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected gateway output {line:?}"));
    GatewayProc {
        child,
        addr,
        _dir: dir,
    }
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn wait_ready(addr: SocketAddr) {
    for _ in 0..500 {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gateway did not start listening on {addr}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let no_nginx = args.iter().any(|a| a == "--no-nginx");
    let pin = !args.iter().any(|a| a == "--no-pin");
    let duration = args
        .iter()
        .position(|a| a == "--duration")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(if quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        });

    // The load generator and the mock share the CPUs the gateway is not on.
    if pin && has_taskset() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus > 1 {
            let _ = Command::new("taskset")
                .args([
                    "-p",
                    "-c",
                    &format!("1-{}", cpus - 1),
                    &std::process::id().to_string(),
                ])
                .stdout(Stdio::null())
                .status();
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let mock_addr = listener.local_addr().expect("mock addr");
        tokio::spawn(mock_vendor(listener, false));
        let down_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind down mock");
        let down_addr = down_listener.local_addr().expect("down addr");
        tokio::spawn(mock_vendor(down_listener, true));
        let gw = start_gateway(mock_addr, down_addr, pin);
        wait_ready(gw.addr).await;
        let pid = gw.child.id();
        let idle_rss = rss_kib(pid, "VmRSS:");
        let nginx = if no_nginx { None } else { start_nginx(mock_addr, pin) };
        if let Some(n) = &nginx {
            wait_ready(n.addr).await;
        }

        println!(
            "llm-orchestrator load benchmark — {} s per cell; gateway and nginx {}; reference proxy: {}",
            duration.as_secs_f64(),
            if pin && has_taskset() { "pinned to CPU 0 (1 worker each)" } else { "unpinned (1 worker each)" },
            if nginx.is_some() { "nginx (1 worker, upstream keep-alive)" } else { "none (nginx not installed)" }
        );
        println!(
            "{:<44} {:>5} {:>9} {:>8} {:>8} {:>9} {:>9} {:>10} {:>8} {:>6}",
            "scenario", "conc", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "+p50 ms", "cpu us/req", "vs nginx", "errors"
        );
        let mut total_errors = 0;
        // (name, client path, client model, direct path, stream, body padding, nginx comparable)
        let scenarios: &[(&str, &str, &str, &str, bool, usize, bool)] = &[
            ("pass-through", "/v1/chat/completions", "bench-model", "/v1/chat/completions", false, 0, true),
            ("pass-through stream", "/v1/chat/completions", "bench-model", "/v1/chat/completions", true, 0, true),
            ("pass-through 64 KiB body", "/v1/chat/completions", "bench-model", "/v1/chat/completions", false, 64 * 1024, true),
            ("1 MiB body", "/v1/chat/completions", "bench-model", "/v1/chat/completions", false, 1024 * 1024, true),
            ("openai client -> anthropic", "/v1/chat/completions", "bench-claude", "/v1/messages", false, 0, false),
            ("openai client -> anthropic stream", "/v1/chat/completions", "bench-claude", "/v1/messages", true, 0, false),
            ("anthropic client -> openai", "/v1/messages", "bench-model", "/v1/chat/completions", false, 0, false),
            ("failover (one provider 503)", "/v1/chat/completions", "bench-failover", "/v1/chat/completions", false, 0, false),
        ];
        for &(name, path, model, direct_path, stream, pad, nginx_ok) in scenarios {
            if quick && (pad >= 1024 * 1024 || (name.contains("stream") && name.contains("anthropic"))) {
                continue;
            }
            for &conc in &[1usize, 32] {
                if quick && pad > 0 && conc == 32 {
                    continue;
                }
                let direct_model = if direct_path == "/v1/messages" { "bench-claude" } else { "bench-model" };
                let direct_req = Arc::new(request_bytes(&mock_addr.to_string(), direct_path, direct_model, stream, pad));
                let gw_req = Arc::new(request_bytes(&gw.addr.to_string(), path, model, stream, pad));
                // Warm the pools (and let passive health settle on the failover scenario).
                drive(gw.addr, gw_req.clone(), conc, Duration::from_millis(200)).await;
                let direct = drive(mock_addr, direct_req.clone(), conc, duration).await;
                let cpu0 = cpu_seconds(pid);
                let through = drive(gw.addr, gw_req, conc, duration).await;
                let cpu = cpu_seconds(pid) - cpu0;
                let cpu_per_req = cpu / through.latencies_us.len().max(1) as f64 * 1e6;
                let reference = match (&nginx, nginx_ok) {
                    (Some(n), true) => {
                        let req = Arc::new(request_bytes(&n.addr.to_string(), path, model, stream, pad));
                        drive(n.addr, req.clone(), conc, Duration::from_millis(200)).await;
                        let cpu0 = cpu_seconds(n.pid);
                        let st = drive(n.addr, req, conc, duration).await;
                        let cpu = (cpu_seconds(n.pid) - cpu0) / st.latencies_us.len().max(1) as f64 * 1e6;
                        Some((st, cpu))
                    }
                    _ => None,
                };
                let row = |label: &str, s: &Stats, added: String, cpu: String, ratio: String| {
                    println!(
                        "{:<44} {:>5} {:>9.0} {:>8.3} {:>8.3} {:>9.3} {:>9} {:>10} {:>8} {:>6}",
                        format!("{name} ({label})"),
                        conc,
                        s.rps(),
                        s.pct(0.5),
                        s.pct(0.99),
                        s.pct(0.999),
                        added,
                        cpu,
                        ratio,
                        s.errors
                    );
                };
                row("direct", &direct, String::new(), String::new(), String::new());
                if let Some((st, cpu)) = &reference {
                    row("nginx", st, format!("{:+.3}", st.pct(0.5) - direct.pct(0.5)), format!("{cpu:.1}"), String::new());
                    total_errors += st.errors;
                }
                let ratio = reference
                    .as_ref()
                    .map(|(st, _)| format!("{:.2}x", through.rps() / st.rps()))
                    .unwrap_or_default();
                row(
                    "gateway",
                    &through,
                    format!("{:+.3}", through.pct(0.5) - direct.pct(0.5)),
                    format!("{cpu_per_req:.1}"),
                    ratio,
                );
                total_errors += direct.errors + through.errors;
            }
        }
        println!(
            "gateway RSS: idle {:.1} MiB, peak {:.1} MiB",
            idle_rss as f64 / 1024.0,
            rss_kib(pid, "VmHWM:") as f64 / 1024.0
        );
        assert_eq!(total_errors, 0, "requests failed during the benchmark");
    });
}

struct NginxProc {
    child: Child,
    addr: SocketAddr,
    pid: u32,
    _dir: tempfile::TempDir,
}

impl Drop for NginxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx as the yardstick: one worker, upstream keep-alive, no buffering of
/// streams, bodies kept in memory — the closest plain reverse proxy to
/// what the gateway does on pass-through.
fn start_nginx(mock: SocketAddr, pin: bool) -> Option<NginxProc> {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let dir = tempfile::tempdir().ok()?;
    let probe = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = probe.local_addr().ok()?;
    drop(probe);
    let prefix = dir.path().display().to_string();
    let user = if std::env::var("USER").as_deref() == Ok("root") || cfg!(unix) && is_root() {
        "user root;"
    } else {
        ""
    };
    let conf = format!(
        "{user}\nworker_processes 1;\ndaemon off;\nmaster_process off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log error;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n access_log off;\n client_body_temp_path {prefix}/body;\n proxy_temp_path {prefix}/proxy;\n\
          fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;\n\
          client_max_body_size 32m;\n client_body_buffer_size 2m;\n\
          keepalive_requests 100000000;\n keepalive_timeout 300s;\n\
          upstream mock {{ server {mock}; keepalive 128; keepalive_requests 100000000; }}\n\
          server {{\n  listen {addr};\n  location / {{\n   proxy_pass http://mock;\n   proxy_http_version 1.1;\n\
           proxy_set_header Connection \"\";\n   proxy_buffering off;\n   proxy_request_buffering off;\n  }}\n }}\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).ok()?;
    let mut cmd = if pin && has_taskset() {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", bin]);
        c
    } else {
        Command::new(bin)
    };
    let child = cmd
        .args(["-p", &prefix, "-c", &format!("{prefix}/nginx.conf")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id();
    Some(NginxProc {
        child,
        addr,
        pid,
        _dir: dir,
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
