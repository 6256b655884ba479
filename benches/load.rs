//! Load benchmark: a fast mock OpenAI vendor and the real gateway on
//! loopback, driven by a closed-loop load generator. Each scenario is run
//! against the mock directly and through the gateway, so the table shows
//! what the gateway adds.
//!
//!     cargo bench --bench load                # full run (~1 minute)
//!     cargo bench --bench load -- --quick     # smoke run: asserts no errors only
//!
//! Options: `--duration <secs>` per measurement, `--no-pin` to skip CPU
//! pinning (by default the gateway runs on CPU 0 with one worker thread and
//! the mock plus load generator on the remaining CPUs, via `taskset`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark mock","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18},"system_fingerprint":"fp_bench"}"#;

/// A minimal keep-alive HTTP/1.1 server answering every POST with a fixed
/// chat completion (or a short SSE stream when the body asks for one).
async fn mock_vendor(listener: TcpListener) {
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
                buf.drain(..head_len + body_len);
                let ok = if stream {
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

fn request_bytes(host: &str, stream: bool, pad: usize) -> Vec<u8> {
    let content = "x".repeat(pad.max(5));
    let body = format!(
        r#"{{"model":"bench-model","messages":[{{"role":"user","content":"{content}"}}],"stream":{stream}}}"#
    );
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer bench-token\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
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

fn start_gateway(mock: SocketAddr, pin: bool) -> GatewayProc {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nthreads = 1\n[log]\nlevel = \"warn\"\n[[providers]]\nname = \"mock\"\ntype = \"openai\"\nbase_url = \"http://{mock}/v1\"\napi_keys = [\"sk-bench-000000000001\"]\n"
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
        tokio::spawn(mock_vendor(listener));
        let gw = start_gateway(mock_addr, pin);
        wait_ready(gw.addr).await;
        let pid = gw.child.id();
        let idle_rss = rss_kib(pid, "VmRSS:");

        println!(
            "llm-orchestrator load benchmark — {} s per cell, gateway {}",
            duration.as_secs_f64(),
            if pin && has_taskset() {
                "pinned to CPU 0 (1 worker)"
            } else {
                "unpinned (1 worker)"
            }
        );
        println!(
            "{:<28} {:>5} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>7}",
            "scenario",
            "conc",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "+p50 ms",
            "cpu us/req",
            "errors"
        );
        let mut total_errors = 0;
        let scenarios: &[(&str, bool, usize)] = &[
            ("pass-through", false, 0),
            ("pass-through stream", true, 0),
            ("pass-through 64 KiB body", false, 64 * 1024),
        ];
        for &(name, stream, pad) in scenarios {
            for &conc in &[1usize, 32] {
                if pad > 0 && conc == 32 && quick {
                    continue;
                }
                // Warm the pools, then measure the mock alone and through the gateway.
                let direct_req = Arc::new(request_bytes(&mock_addr.to_string(), stream, pad));
                let gw_req = Arc::new(request_bytes(&gw.addr.to_string(), stream, pad));
                drive(gw.addr, gw_req.clone(), conc, Duration::from_millis(200)).await;
                let direct = drive(mock_addr, direct_req, conc, duration).await;
                let cpu0 = cpu_seconds(pid);
                let through = drive(gw.addr, gw_req, conc, duration).await;
                let cpu = cpu_seconds(pid) - cpu0;
                let cpu_per_req = cpu / through.latencies_us.len().max(1) as f64 * 1e6;
                for (label, s) in [("direct", &direct), ("gateway", &through)] {
                    let added = if label == "gateway" {
                        format!("{:+.3}", s.pct(0.5) - direct.pct(0.5))
                    } else {
                        "".into()
                    };
                    let cpu_col = if label == "gateway" {
                        format!("{cpu_per_req:.1}")
                    } else {
                        String::new()
                    };
                    println!(
                        "{:<28} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>10} {:>10} {:>7}",
                        format!("{name} ({label})"),
                        conc,
                        s.rps(),
                        s.pct(0.5),
                        s.pct(0.99),
                        s.pct(0.999),
                        added,
                        cpu_col,
                        s.errors
                    );
                }
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
