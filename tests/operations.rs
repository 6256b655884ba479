//! Operations: Prometheus metrics, request ids, log files, graceful
//! shutdown on SIGTERM, and a binary upgrade under load (Pingora's
//! listening-socket hand-over) with zero failed requests.

mod support;

use serde_json::json;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_http::Reply;
use support::mock_openai::MockOpenAi;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn chat_body(model: &str, stream: bool) -> serde_json::Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn metrics_text(gw: &Gateway) -> String {
    let r = reqwest::Client::new()
        .get(gw.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")));
    r.text().await.expect("body")
}

/// Scrape until `ready` holds (5 s at most), then return the last scrape.
async fn metrics_until(gw: &Gateway, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics_text(gw).await;
        if ready(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the series whose line starts with `prefix` (name + labels).
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_attempts_failovers_tokens_and_health() {
    let good = MockOpenAi::start("good").await;
    let bad = MockOpenAi::start("bad").await;
    bad.set_default(Reply::status(
        503,
        r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
    ));
    let cfg = format!(
        "{}{}",
        provider(
            "good",
            &good.base_url(),
            &["sk-good-0000000001"],
            "weight = 1\nmodels = [\"gpt-*\"]"
        ),
        provider(
            "bad",
            &bad.base_url(),
            &["sk-bad-00000000002"],
            "weight = 1000\nmodels = [\"gpt-*\"]"
        )
    );
    let gw = Gateway::start(&cfg).await;
    // Until the 1000:1 weighted draw has tried `bad` first at least once.
    for _ in 0..20 {
        let r = gw.chat(&chat_body("gpt-4o", false)).await;
        assert_eq!(r.status(), 200);
        if bad.count() > 0 {
            break;
        }
    }
    assert!(bad.count() > 0, "the bad provider was never drawn");
    let r = gw.chat(&chat_body("gpt-4o", true)).await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    // Without a token: refused, like the rest of the admin API.
    let r = reqwest::get(gw.url("/metrics")).await.expect("scrape");
    assert_eq!(r.status(), 401);

    // Metrics are counted when Pingora's logging phase runs, just after the
    // answer went out: wait until the stream request shows.
    let text = metrics_until(&gw, |t| {
        t.contains("llm_request_duration_seconds_bucket{api=\"openai\",provider=\"good\",stream=\"true\",le=\"+Inf\"} 1")
    })
    .await;
    let ok = value(
        &text,
        "llm_requests_total{api=\"openai\",provider=\"good\",model=\"gpt-4o\",status=\"200\"}",
    )
    .unwrap_or(0.0);
    assert!(ok >= 2.0, "{text}");
    assert!(
        value(
            &text,
            "llm_upstream_attempts_total{provider=\"bad\",result=\"status_5xx\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        value(&text, "llm_failovers_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        value(&text, "llm_tokens_total{api=\"openai\",provider=\"good\",model=\"gpt-4o\",status=\"200\",direction=\"completion\"}").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert!(
        text.contains("llm_request_duration_seconds_bucket{api=\"openai\",provider=\"good\",stream=\"true\",le=\"+Inf\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("llm_time_to_first_byte_seconds_count{api=\"openai\",provider=\"good\",stream=\"false\"}"),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "llm_provider_health{provider=\"good\",state=\"healthy\"}"
        ),
        Some(1.0)
    );
    assert!(
        text.contains(
            "llm_key_available{provider=\"good\",key=\"sk-…0001\",reason=\"available\"} 1"
        ),
        "{text}"
    );
    assert!(value(&text, "llm_config_version").is_some(), "{text}");
    assert_eq!(value(&text, "llm_log_rows_dropped_total"), Some(0.0));
    assert!(value(&text, "process_resident_memory_bytes").unwrap_or(0.0) > 0.0);
    // Secrets never show.
    assert!(!text.contains("sk-good-0000000001") && !text.contains(TOKEN));

    // An unknown model is counted without its name as a label.
    let r = gw.chat(&chat_body("no-such-model-xyz", false)).await;
    assert_eq!(r.status(), 404);
    let text = metrics_until(&gw, |t| t.contains("status=\"404\"")).await;
    assert!(!text.contains("no-such-model-xyz"), "{text}");
    assert!(
        value(
            &text,
            "llm_requests_total{api=\"openai\",provider=\"\",model=\"\",status=\"404\"}"
        ) == Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn config_reloads_are_counted_by_result() {
    let mock = MockOpenAi::start("m").await;
    let cfg = provider("m", &mock.base_url(), &["sk-m-000000000001"], "");
    let gw = Gateway::start(&cfg).await;
    let before = value(
        &metrics_text(&gw).await,
        "llm_config_reloads_total{result=\"rejected\"}",
    );
    gw.rewrite_config("[[providers]]\nname = \"broken\"\n");
    assert!(gw.wait_log("configuration", Duration::from_secs(5)).await);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics_text(&gw).await;
        if value(&text, "llm_config_reloads_total{result=\"rejected\"}") > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rejected reload not counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = metrics_text(&gw).await;
    let v1 = value(&text, "llm_config_version").expect("version");
    gw.rewrite_config(&format!("{cfg}\n# touched\n"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics_text(&gw).await;
        if value(&text, "llm_config_version").expect("version") > v1 {
            assert!(
                value(&text, "llm_config_reloads_total{result=\"accepted\"}").unwrap_or(0.0) >= 1.0
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "accepted reload not counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id_that_the_log_names() {
    let mock = MockOpenAi::start("m").await;
    let gw = Gateway::start(&provider("m", &mock.base_url(), &["sk-m-000000000001"], "")).await;
    let client = reqwest::Client::new();
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-llm-orchestrator-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // Success, streamed success, an error, and a caller-chosen id.
    let ok = gw.chat(&chat_body("gpt-4o", false)).await;
    let ok_id = id_of(&ok).expect("id on success");
    let streamed = gw.chat(&chat_body("gpt-4o", true)).await;
    let stream_id = id_of(&streamed).expect("id on a stream");
    let _ = streamed.text().await;
    let err = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(err.status(), 400);
    let err_id = id_of(&err).expect("id on an error");
    let mine = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("x-request-id", "trace-abc.123")
        .json(&chat_body("gpt-4o", false))
        .send()
        .await
        .expect("send");
    assert_eq!(id_of(&mine).as_deref(), Some("trace-abc.123"));
    // An id that is not plain is replaced, not echoed.
    let odd = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("x-request-id", "a b<script>")
        .json(&chat_body("gpt-4o", false))
        .send()
        .await
        .expect("send");
    let odd_id = id_of(&odd).expect("id");
    assert!(!odd_id.contains(' ') && !odd_id.contains('<'));
    assert_ne!(ok_id, stream_id);
    for id in [&ok_id, &stream_id, &err_id, &"trace-abc.123".to_string()] {
        assert!(
            gw.wait_log(&format!("request_id={id}"), Duration::from_secs(5))
                .await,
            "no log line names {id}:\n{}",
            gw.logs()
        );
    }
}

#[tokio::test]
async fn production_logs_are_json_in_a_dated_file_with_the_request_id_on_each_line() {
    let mock = MockOpenAi::start("m").await;
    let bad = MockOpenAi::start("bad").await;
    bad.set_default(Reply::status(
        500,
        r#"{"error":{"message":"boom","type":"server_error"}}"#,
    ));
    let cfg = format!(
        "{}{}",
        provider("m", &mock.base_url(), &["sk-m-000000000001"], "weight = 1"),
        provider(
            "bad",
            &bad.base_url(),
            &["sk-bad-00000000002"],
            "weight = 1000"
        )
    );
    let logs = tempfile::tempdir().expect("dir");
    let file = logs.path().join("gw.log");
    let file_s = file.display().to_string();
    let gw = Gateway::start_with(
        &cfg,
        &[
            ("AUTH_TOKEN", TOKEN),
            ("APP_ENV", "production"),
            ("LOG_FILE", file_s.as_str()),
        ],
    )
    .await;
    let mut id = String::new();
    for _ in 0..20 {
        let r = gw.chat(&chat_body("gpt-4o", false)).await;
        assert_eq!(r.status(), 200);
        id = r
            .headers()
            .get("x-llm-orchestrator-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if bad.count() > 0 {
            break;
        }
    }
    assert!(bad.count() > 0);
    let today = {
        // The appender names files by UTC date.
        let out = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let dated = logs.path().join(format!("gw.{today}.log"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&dated).unwrap_or_default();
        // The failover warning is written while the request runs, the
        // summary line after the answer: wait for both.
        if text.lines().filter(|l| l.contains(&id)).count() >= 2 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "{} lacks {id}; dir: {:?}",
            dated.display(),
            std::fs::read_dir(logs.path()).map(|d| d.count())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mine: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v.to_string().contains(&id))
        .collect();
    // The failover warning and the request line, both naming the request.
    assert!(mine.len() >= 2, "{text}");
    assert!(
        mine.iter().any(|v| v["message"]
            .as_str()
            .is_some_and(|m| m.contains("failing over"))),
        "{text}"
    );
    assert!(!text.contains("sk-m-000000000001") && !text.contains(TOKEN));
}

// ------------------------------------------------ shutdown and upgrade

/// A gateway process started by hand (the shared helper owns its port and
/// directory; these tests need two processes on one port).
struct Proc {
    child: Child,
}

async fn start_proc(
    cfg: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    upgrade: bool,
) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
    cmd.arg("--config").arg(cfg);
    if upgrade {
        cmd.arg("--upgrade");
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gateway.log"))
        .expect("log");
    cmd.env_clear()
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", port.to_string())
        .env("AUTH_TOKEN", TOKEN)
        .env("ADMIN_LISTEN", "")
        .env("GRACE_PERIOD_SECS", "2")
        .env("UPGRADE_SOCK", dir.join("upgrade.sock"))
        .env(
            "DATABASE_URL",
            format!("sqlite:///{}", dir.join("gw.db").display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("address in time")
            .expect("stdout")
            .unwrap_or_else(|| {
                panic!(
                    "exited early:\n{}",
                    std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
                )
            });
        if let Some(a) = line.strip_prefix("llm-orchestrator listening on ") {
            break a.replace("0.0.0.0", "127.0.0.1");
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // The address is printed just before the listener starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{addr}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "not listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (Proc { child }, addr)
}

fn signal(p: &Proc, sig: &str) {
    let pid = p.child.id().expect("running");
    let st = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

async fn wait_exit(p: &mut Proc, within: Duration) -> std::process::ExitStatus {
    tokio::time::timeout(within, p.child.wait())
        .await
        .expect("process exited in time")
        .expect("wait")
}

#[tokio::test]
async fn sigterm_lets_a_stream_in_flight_finish_and_refuses_new_connections() {
    let mock = MockOpenAi::start("slow").await;
    // 8 events, 150 ms apart: the stream outlives the SIGTERM by ~1 s.
    mock.set_stream_delay(Duration::from_millis(150));
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("gw.toml");
    std::fs::write(
        &cfg,
        provider("slow", &mock.base_url(), &["sk-s-000000000001"], ""),
    )
    .expect("cfg");
    let port = free_port();
    let (mut gw, base) = start_proc(&cfg, dir.path(), port, false).await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "one two three four five six seven eight"}]}))
        .send()
        .await
        .expect("stream starts");
    assert_eq!(resp.status(), 200);
    signal(&gw, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The listener is closed at once.
    let fresh = reqwest::Client::new()
        .get(format!("{base}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        fresh.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    let body = resp.text().await.expect("the stream finishes");
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    assert!(body.contains("\"finish_reason\":\"stop\""), "{body}");
    let status = wait_exit(&mut gw, Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn binary_upgrade_under_load_fails_no_request() {
    let mock = MockOpenAi::start("m").await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("gw.toml");
    std::fs::write(
        &cfg,
        provider("m", &mock.base_url(), &["sk-m-000000000001"], ""),
    )
    .expect("cfg");
    let port = free_port();
    let (mut old, base) = start_proc(&cfg, dir.path(), port, false).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (stop, ok, failures, base) = (stop.clone(), ok.clone(), failures.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let stream = (w + i).is_multiple_of(3);
                let r = client
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(TOKEN)
                    .json(&chat_body("gpt-4o", stream))
                    .send()
                    .await;
                let outcome = match r {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(t) if !stream || t.contains("[DONE]") => Ok(()),
                        Ok(t) => Err(format!("stream cut: {t}")),
                        Err(e) => Err(format!("body: {e}")),
                    },
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("send: {e:?}")),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().expect("lock").push(e),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = ok.load(Ordering::Relaxed);
    // The new binary waits for the sockets; then the old one hands them over.
    let new_dir = dir.path();
    let upgrade = {
        let cfg = cfg.clone();
        let new_dir = new_dir.to_path_buf();
        tokio::spawn(async move { start_proc(&cfg, &new_dir, port, true).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&old, "QUIT");
    let (mut new, new_base) = upgrade.await.expect("upgrade task");
    assert_eq!(new_base, base);
    let status = wait_exit(&mut old, Duration::from_secs(30)).await;
    assert!(status.success(), "old process: {status:?}");
    // Load keeps flowing to the new process alone.
    let after_old = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let total = ok.load(Ordering::Relaxed);
    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the upgrade: {:?}",
        failures.len(),
        total + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        before > 0 && after_old > before && total > after_old,
        "{before} {after_old} {total}"
    );
    // The new process is the one answering now.
    let r = reqwest::get(format!("{base}/health"))
        .await
        .expect("health");
    assert_eq!(r.status(), 200);
    signal(&new, "INT");
    let _ = wait_exit(&mut new, Duration::from_secs(10)).await;
}
