//! Several gateway instances on one shared database (a real MariaDB and a
//! real PostgreSQL started by the test), with and without Redis: a change
//! made on one reaches the other within 2 s with Redis, within 5 s without
//! (the version-row poll); 50
//! admin writes split across both lose nothing and duplicate nothing;
//! request logs and stats are cluster-wide with an `instance` column. And
//! outages: the data plane keeps serving, admin writes answer 503 at once,
//! log rows are kept and written when the database returns (the overflow
//! counted), and a start with a wrong password stops with a message that
//! names the problem.

mod support;

use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::db::{MariaDb, Postgres, PASSWORD};
use support::gateway::{Gateway, TOKEN};
use support::mock_openai::MockOpenAi;
use support::redis::RedisServer;

async fn call(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().expect("method"), gw.url(path))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(30));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("admin call");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn hello() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
}

fn provider_body(name: &str, base_url: &str) -> Value {
    json!({"name": name, "type": "openai",
           "config": {"base_url": base_url, "api_key": "sk-shared-0000000001"}})
}

async fn provider_names(gw: &Gateway) -> Vec<String> {
    let (status, list) = call(gw, "GET", "/api/providers", None).await;
    assert_eq!(status, 200, "{list}");
    list["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

async fn start(kind: &str, url: &str, name: &str, extra: &[(&str, &str)]) -> Gateway {
    let mut env = vec![
        ("AUTH_TOKEN", TOKEN),
        ("DATABASE_TYPE", kind),
        ("DATABASE_URL", url),
        ("INSTANCE_NAME", name),
    ];
    env.extend_from_slice(extra);
    Gateway::start_with("", &env).await
}

async fn metric(gw: &Gateway, name: &str) -> u64 {
    let text = reqwest::Client::new()
        .get(gw.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Every `/api/logs` row, newest first.
async fn all_logs(gw: &Gateway) -> Vec<Value> {
    let (status, page) = call(gw, "GET", "/api/logs?limit=1000", None).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn wait_logs(gw: &Gateway, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let rows = all_logs(gw).await;
        if rows.len() >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} log rows after {within:?}:\n{}",
            rows.len(),
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `redis`: the URL of a Redis both instances use, or none. Changes must
/// converge within 2 s with Redis (pub/sub), 5 s without (the poll).
async fn two_instances(kind: &str, url: &str, redis: Option<&str>) {
    let mock = MockOpenAi::start("shared").await;
    let extra: Vec<(&str, &str)> = match redis {
        Some(r) => vec![("REDIS_ENABLED", "true"), ("REDIS_URL", r)],
        None => vec![],
    };
    let within = Duration::from_secs(if redis.is_some() { 2 } else { 5 });
    let a = start(kind, url, "gw-a", &extra).await;
    let b = start(kind, url, "gw-b", &extra).await;

    // A change on A is live on B in time.
    assert_eq!(b.chat(&hello()).await.status(), 404);
    let (status, created) = call(
        &a,
        "POST",
        "/api/providers",
        Some(provider_body("OpenAI", &mock.base_url())),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let made = Instant::now();
    loop {
        if b.chat(&hello()).await.status() == 200 {
            break;
        }
        assert!(
            made.elapsed() < within,
            "instance B did not see A's provider within {within:?}:\n{}",
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("converged in {:?}", made.elapsed());
    assert_eq!(provider_names(&b).await, ["OpenAI"]);

    // 50 admin writes at once, split across both instances.
    let writes = (0..50).map(|i| {
        let gw = if i % 2 == 0 { &a } else { &b };
        let body = provider_body(&format!("w{i:02}"), &mock.base_url());
        async move { call(gw, "POST", "/api/providers", Some(body)).await }
    });
    for (status, body) in futures_util::future::join_all(writes).await {
        assert_eq!(status, 201, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for gw in [&a, &b] {
        loop {
            let names = provider_names(gw).await;
            if names.len() == 51 {
                let unique: HashSet<_> = names.iter().collect();
                assert_eq!(unique.len(), 51, "no duplicate: {names:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} providers: {names:?}",
                names.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (_, list) = call(&a, "GET", "/api/providers", None).await;
    let ids: HashSet<i64> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 51, "51 distinct ids");

    // The audit trail is shared too, and each row names the instance that
    // took the write: A's first create + 25, B's 25.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, audit) = call(&b, "GET", "/api/audit?action=write&limit=1000", None).await;
        assert_eq!(status, 200, "{audit}");
        let rows = audit["data"].as_array().cloned().unwrap_or_default();
        let named = |name: &str| rows.iter().filter(|r| r["instance"] == name).count();
        if (named("gw-a"), named("gw-b")) == (26, 25) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "audit rows per instance: a {}, b {}, of {}: {:?}",
            named("gw-a"),
            named("gw-b"),
            rows.len(),
            rows.first()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Request logs and stats are cluster-wide.
    for _ in 0..3 {
        assert_eq!(a.chat(&hello()).await.status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(b.chat(&hello()).await.status(), 200);
    }
    // B's first successful chat above + 5 (B's 404s before it converged
    // are logged too: only the 200s are counted).
    let ok = |rows: &[Value]| -> Vec<Value> {
        rows.iter()
            .filter(|r| r["status"] == 200)
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = ok(&all_logs(&a).await);
        if rows.len() >= 6 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rows.len(), 6, "{rows:?}");
    let per_instance = |name: &str| rows.iter().filter(|r| r["instance"] == name).count();
    assert_eq!((per_instance("gw-a"), per_instance("gw-b")), (3, 3));
    let from_b = all_logs(&b).await;
    assert_eq!(ok(&from_b).len(), 6, "the same rows from B");
    let (status, stats) = call(&b, "GET", "/api/stats/usage", None).await;
    assert_eq!(status, 200, "{stats}");
    let total = &stats["data"][0];
    assert_eq!(
        total["requests"].as_u64().unwrap_or(0) - total["errors"].as_u64().unwrap_or(0),
        6,
        "{stats}"
    );
    assert_eq!(
        total["requests"].as_u64(),
        Some(from_b.len() as u64),
        "{stats}"
    );
    assert!(total["p95_latency_ms"].as_f64().is_some(), "{stats}");
}

#[tokio::test]
async fn two_instances_share_one_mariadb_without_redis() {
    let db = MariaDb::start().await;
    two_instances("mysql", &db.url(), None).await;
}

#[tokio::test]
async fn two_instances_share_one_mariadb_with_redis() {
    let db = MariaDb::start().await;
    let redis = RedisServer::start().await;
    two_instances("mysql", &db.url(), Some(&redis.url())).await;
}

#[tokio::test]
async fn two_instances_share_one_postgres_without_redis() {
    let db = Postgres::start().await;
    two_instances("postgres", &db.url(), None).await;
}

#[tokio::test]
async fn two_instances_share_one_postgres_with_redis() {
    let db = Postgres::start().await;
    let redis = RedisServer::start().await;
    two_instances("postgres", &db.url(), Some(&redis.url())).await;
}

/// The database server under test, stopped and started by the test.
enum Server {
    Maria(MariaDb),
    Pg(Postgres),
}

impl Server {
    fn stop(&mut self) {
        match self {
            Server::Maria(s) => s.stop(),
            Server::Pg(s) => s.stop(),
        }
    }
    async fn restart(&mut self) {
        match self {
            Server::Maria(s) => s.restart().await,
            Server::Pg(s) => s.restart().await,
        }
    }
}

async fn outage(kind: &str, url: &str, mut server: Server) {
    let mock = MockOpenAi::start("m").await;
    let gw = start(kind, url, "gw", &[("DATABASE_LOG_BACKLOG_ROWS", "8")]).await;
    let (status, body) = call(
        &gw,
        "POST",
        "/api/providers",
        Some(provider_body("m", &mock.base_url())),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for _ in 0..2 {
        assert_eq!(gw.chat(&hello()).await.status(), 200);
    }
    wait_logs(&gw, 2, Duration::from_secs(10)).await;

    // Down: requests are served from the in-memory config; admin writes
    // answer 503 with a JSON error quickly.
    server.stop();
    for _ in 0..5 {
        assert_eq!(gw.chat(&hello()).await.status(), 200);
    }
    let asked = Instant::now();
    let (status, body) = call(
        &gw,
        "POST",
        "/api/providers",
        Some(provider_body("late", &mock.base_url())),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "failed fast: {:?}",
        asked.elapsed()
    );
    assert!(!body.to_string().contains(PASSWORD), "{body}");
    assert!(
        !gw.logs().contains(PASSWORD),
        "the password is never logged"
    );

    // Back: the five rows kept in memory are written, none dropped.
    server.restart().await;
    let rows = wait_logs(&gw, 7, Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 7);
    assert_eq!(metric(&gw, "llm_log_rows_dropped_total").await, 0);
    let (status, body) = call(
        &gw,
        "POST",
        "/api/providers",
        Some(provider_body("late", &mock.base_url())),
    )
    .await;
    assert_eq!(status, 201, "admin writes work again: {body}");

    // A longer outage than the bound: 8 rows kept, 2 dropped and counted.
    server.stop();
    for _ in 0..10 {
        assert_eq!(gw.chat(&hello()).await.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&gw, "llm_log_rows_dropped_total").await < 2 {
        assert!(
            Instant::now() < deadline,
            "overflow not counted:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.restart().await;
    let rows = wait_logs(&gw, 15, Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 15, "7 + the 8 kept");
    assert_eq!(metric(&gw, "llm_log_rows_dropped_total").await, 2);
    assert!(
        !gw.logs().contains(PASSWORD),
        "the password is never logged"
    );
}

#[tokio::test]
async fn mariadb_outage_keeps_serving_and_writes_kept_rows_on_return() {
    let db = MariaDb::start().await;
    let url = db.url();
    outage("mysql", &url, Server::Maria(db)).await;
}

#[tokio::test]
async fn postgres_outage_keeps_serving_and_writes_kept_rows_on_return() {
    let db = Postgres::start().await;
    let url = db.url();
    outage("postgres", &url, Server::Pg(db)).await;
}

/// Start-up against a shared database that refuses us: stop at once with
/// a message naming the problem, the password masked.
#[tokio::test]
async fn start_with_a_wrong_password_or_no_server_stops_and_says_why() {
    let db = MariaDb::start().await;
    let run = |url: String| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
        c.env_clear()
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", "0")
            .env("DATABASE_TYPE", "mysql")
            .env("DATABASE_URL", url);
        let started = Instant::now();
        let out = c.output().expect("run");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(db.url().replace(PASSWORD, "Wrong-Pass-999"));
    assert!(err.contains("wrong user name or password"), "{err}");
    assert!(err.contains("llm:…@127.0.0.1"), "the URL, masked: {err}");
    assert!(!err.contains("Wrong-Pass-999"), "{err}");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let closed = probe.local_addr().expect("addr").port();
    drop(probe);
    let err = run(db.url().replace(&db.port.to_string(), &closed.to_string()));
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    // `db migrate` on the shared database: the schema, the URL masked.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"))
        .env_clear()
        .env("DATABASE_TYPE", "mysql")
        .env(
            "DATABASE_URL",
            db.url().replacen("mysql://", "mysql+asyncmy://", 1),
        )
        .args(["db", "migrate"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("schema version 4"), "{stdout}");
    assert!(
        stdout.contains("llm:…@") && !stdout.contains(PASSWORD),
        "{stdout}"
    );
    // And a type that does not match the URL is a configuration error.
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
    let out = c
        .env_clear()
        .env("DATABASE_TYPE", "postgres")
        .env("DATABASE_URL", db.url())
        .arg("--check")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("database.url") && !err.contains(PASSWORD),
        "{err}"
    );
}
