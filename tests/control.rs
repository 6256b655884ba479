//! Nothing silently lost, nothing silently changed: imports that are not
//! configuration documents, imports that delete more than they keep,
//! export/import round trips, validation of sections and ports, the admin
//! error shape for framework-level rejections, and the store's problems
//! made visible.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::MockOpenAi;

/// One admin call with the test token: (status, JSON body or the text).
async fn call(
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().expect("method"), format!("{base}{path}"))
        .bearer_auth(TOKEN);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let r = req.send().await.expect("admin call");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_json(gw: &Gateway, path: &str, body: &Value) -> (u16, Value) {
    call(
        &gw.base,
        "POST",
        path,
        Some("application/json"),
        Some(body.to_string().into_bytes()),
    )
    .await
}

async fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    call(&gw.base, "GET", path, None, None).await
}

async fn provider_names(gw: &Gateway) -> Vec<String> {
    let (_, list) = get(gw, "/api/providers").await;
    let mut names: Vec<String> = list["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn api_provider(name: &str, base_url: &str) -> Value {
    json!({"name": name, "type": "openai", "base_url": base_url,
           "api_keys": [format!("sk-{name}-0000000001")], "models": [format!("{name}-model")]})
}

/// The admin API's error shape, with a message and a code.
fn assert_admin_error(status: u16, body: &Value, want: u16) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["type"], "admin_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn imports_that_are_not_configuration_documents_are_refused() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start("").await;
    assert_eq!(
        post_json(&gw, "/api/providers", &api_provider("a", &mock.base_url()))
            .await
            .0,
        201
    );
    for body in [
        "[]",
        "{}",
        "null",
        "\"x\"",
        "42",
        r#"{"server": {"port": 1}}"#,
    ] {
        for q in ["", "?dry_run=true", "?replace=true"] {
            let (status, err) = call(
                &gw.base,
                "POST",
                &format!("/api/config/import{q}"),
                Some("application/json"),
                Some(body.as_bytes().to_vec()),
            )
            .await;
            assert_admin_error(status, &err, 400);
        }
    }
    // An empty TOML document is no better.
    let (status, err) = call(
        &gw.base,
        "POST",
        "/api/config/import?format=toml",
        Some("application/toml"),
        Some(b"# nothing\n".to_vec()),
    )
    .await;
    assert_admin_error(status, &err, 400);
    assert_eq!(provider_names(&gw).await, vec!["a"]);
    assert_eq!(gw.model_ids().await, vec!["a-model"]);
}

#[tokio::test]
async fn an_import_that_deletes_more_than_it_keeps_needs_replace() {
    let mock = MockOpenAi::start("m").await;
    let gw = Gateway::start("").await;
    for name in ["a", "b", "c"] {
        assert_eq!(
            post_json(&gw, "/api/providers", &api_provider(name, &mock.base_url()))
                .await
                .0,
            201
        );
    }
    let only_a = json!({"providers": [api_provider("a", &mock.base_url())]});
    let (status, report) = post_json(&gw, "/api/config/import?dry_run=true", &only_a).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["replace_required"], true, "{report}");
    assert_eq!(report["removes"], 2);
    assert_eq!(report["keeps"], 1);
    assert_eq!(report["changes"]["providers"]["removed"], json!(["b", "c"]));

    let (status, err) = post_json(&gw, "/api/config/import", &only_a).await;
    assert_admin_error(status, &err, 409);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("replace=true")),
        "{err}"
    );
    assert_eq!(provider_names(&gw).await, vec!["a", "b", "c"]);

    // Deleting fewer than it keeps goes through without the flag.
    let a_and_b = json!({"providers": [api_provider("a", &mock.base_url()), api_provider("b", &mock.base_url())]});
    let (status, report) = post_json(&gw, "/api/config/import", &a_and_b).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(provider_names(&gw).await, vec!["a", "b"]);

    // Emptying everything is a replace too.
    let (status, err) = post_json(&gw, "/api/config/import", &json!({"providers": []})).await;
    assert_admin_error(status, &err, 409);
    let (status, report) = post_json(
        &gw,
        "/api/config/import?replace=true",
        &json!({"providers": []}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert!(provider_names(&gw).await.is_empty());
}

#[tokio::test]
async fn export_then_import_changes_nothing_and_settings_keep_following_the_file() {
    let mock = MockOpenAi::start("m").await;
    let toml = |attempts: u32| {
        format!(
            "[routing]\nmax_attempts = {attempts}\n[health]\nenabled = false\n[aliases]\nfile-alias = \"file-model\"\n{}",
            provider(
                "file",
                &mock.base_url(),
                &["sk-file-0000000001"],
                "models = [\"file-model\"]"
            )
        )
    };
    let gw = Gateway::start(&toml(3)).await;
    // A sparse API document, a disabled key and an alias: the export
    // spells out every default, the store does not.
    assert_eq!(
        post_json(
            &gw,
            "/api/providers",
            &json!({"name": "api", "type": "openai",
            "base_url": mock.base_url(), "api_key": "sk-api-0000000001",
            "disabled_api_keys": ["sk-api-0000000002"], "models": ["api-model"]})
        )
        .await
        .0,
        201
    );
    let (status, _) = call(
        &gw.base,
        "PUT",
        "/api/aliases/short",
        Some("application/json"),
        Some(json!({"target": "api-model"}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, 200);
    let (_, before) = get(&gw, "/api/providers").await;

    for format in ["json", "toml"] {
        let exported = reqwest::Client::new()
            .get(gw.url(&format!("/api/config/export?format={format}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("export")
            .bytes()
            .await
            .expect("body")
            .to_vec();
        let ct = format!("application/{format}");
        let (status, report) = call(
            &gw.base,
            "POST",
            &format!("/api/config/import?format={format}"),
            Some(&ct),
            Some(exported),
        )
        .await;
        assert_eq!(status, 200, "{format}: {report}");
        assert_eq!(report["unchanged"], true, "{format}: {report}");
        for section in ["providers", "aliases"] {
            for kind in ["added", "removed", "changed"] {
                assert_eq!(
                    report["changes"][section][kind],
                    json!([]),
                    "{format}: {report}"
                );
            }
        }
        assert_eq!(report["changes"]["settings_changed"], false, "{report}");
        let (_, settings) = get(&gw, "/api/settings").await;
        for section in ["routing", "health", "overrides"] {
            assert_eq!(settings[section]["source"], "file", "{format}: {settings}");
        }
    }
    let (_, after) = get(&gw, "/api/providers").await;
    assert_eq!(before, after, "same documents, same ids, same timestamps");

    // A later file edit still takes effect: nothing shadows it.
    gw.rewrite_config(&toml(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, settings) = get(&gw, "/api/settings").await;
        if settings["routing"]["value"]["max_attempts"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{settings}\n{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A section that does differ is taken over by the API, the others not.
    let (status, report) = post_json(
        &gw,
        "/api/config/import",
        &json!({"routing": {"max_attempts": 5}}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changes"]["settings_changed"], true);
    let (_, settings) = get(&gw, "/api/settings").await;
    assert_eq!(settings["routing"]["source"], "api", "{settings}");
    assert_eq!(settings["health"]["source"], "file", "{settings}");
    assert_eq!(provider_names(&gw).await, vec!["api", "file"]);
}

#[tokio::test]
async fn array_sections_and_out_of_range_ports_are_422_with_their_path() {
    let mock = MockOpenAi::start("m").await;
    let gw = Gateway::start("").await;
    let base = mock.base_url();
    let cases = [
        (
            json!({"name": "p", "type": "openai", "base_url": base, "overrides": []}),
            "overrides",
        ),
        (
            json!({"name": "p", "type": "openai", "base_url": base, "timeouts": []}),
            "timeouts",
        ),
        (
            json!({"name": "p", "type": "openai", "base_url": "http://127.0.0.1:99999/v1"}),
            "base_url",
        ),
        (
            json!({"name": "p", "type": "openai", "base_url": "http://127.0.0.1:0/v1"}),
            "base_url",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = post_json(&gw, "/api/providers", &body).await;
        assert_admin_error(status, &err, 422);
        let fields: Vec<&str> = err["error"]["fields"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.iter().any(|f| f.ends_with(field)),
            "{field} not in {err}"
        );
    }
    for (body, field) in [
        (json!({"routing": []}), "routing"),
        (json!({"overrides": []}), "overrides"),
    ] {
        let (status, err) = call(
            &gw.base,
            "PUT",
            "/api/settings",
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
        .await;
        assert_admin_error(status, &err, 422);
        assert_eq!(err["error"]["fields"][0]["field"], field, "{err}");
    }
    let (status, err) = post_json(
        &gw,
        "/api/config/import",
        &json!({"providers": [{"name": "p", "type": "openai", "base_url": base, "timeouts": []}]}),
    )
    .await;
    assert_admin_error(status, &err, 422);
    assert_eq!(
        err["error"]["fields"][0]["field"], "providers[0].timeouts",
        "{err}"
    );
    assert!(provider_names(&gw).await.is_empty());
    let (_, settings) = get(&gw, "/api/settings").await;
    assert_eq!(settings["routing"]["source"], "file");
}

#[tokio::test]
async fn framework_rejections_answer_the_admin_error_shape() {
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    for base in [admin.as_str(), gw.base.as_str()] {
        // Wrong method: 405 with Allow, in our shape.
        let (status, err) = call(base, "DELETE", "/api/settings", None, None).await;
        assert_admin_error(status, &err, 405);
        assert_eq!(err["error"]["code"], "method_not_allowed");
        // A path id that is not UTF-8.
        let (status, err) = call(base, "GET", "/api/providers/%FF%FE", None, None).await;
        assert_admin_error(status, &err, 400);
        // Unknown route.
        let (status, err) = call(base, "GET", "/api/nothing-here", None, None).await;
        assert_admin_error(status, &err, 404);
    }
    // Over the admin API's body limit (on its own listener: the main
    // port's data-plane body limit answers first there).
    let big = vec![b' '; 3 * 1024 * 1024];
    let (status, err) = call(
        &admin,
        "POST",
        "/api/providers",
        Some("application/json"),
        Some(big),
    )
    .await;
    assert_admin_error(status, &err, 413);
    assert_eq!(err["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn the_cli_import_needs_replace_to_delete_more_than_it_keeps() {
    let mock = MockOpenAi::start("m").await;
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    for name in ["a", "b"] {
        assert_eq!(
            post_json(&gw, "/api/providers", &api_provider(name, &mock.base_url()))
                .await
                .0,
            201
        );
    }
    let dir = tempfile::tempdir().expect("dir");
    let doc = dir.path().join("doc.json");
    std::fs::write(&doc, json!({"providers": []}).to_string()).expect("write");
    let run = |extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
        c.env_clear()
            .env("AUTH_TOKEN", TOKEN)
            .args(["import", &doc.display().to_string(), "--url", &admin])
            .args(extra);
        c.output().expect("run")
    };
    let out = run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("409") && err.contains("--replace"), "{err}");
    assert_eq!(provider_names(&gw).await, vec!["a", "b"]);
    let out = run(&["--replace"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(provider_names(&gw).await.is_empty());
}

/// `llm_log_rows_dropped_total` from `/metrics`.
async fn dropped_rows(gw: &Gateway) -> u64 {
    metric(gw, "llm_log_rows_dropped_total").await
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

/// The database is locked by another process for longer than the busy
/// timeout: the rows the writer cannot commit are kept in memory up to
/// `DATABASE_LOG_BACKLOG_ROWS` and written when the lock goes; those over
/// the bound are counted as dropped, and the warning is not repeated per
/// batch.
#[tokio::test]
async fn log_rows_that_fail_to_write_are_kept_then_written_and_overflow_counted() {
    let mock = MockOpenAi::start("m").await;
    let gw = Gateway::start_with(
        &provider("m", &mock.base_url(), &["sk-m-000000000001"], ""),
        &[("AUTH_TOKEN", TOKEN), ("DATABASE_LOG_BACKLOG_ROWS", "1")],
    )
    .await;
    let hello = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(gw.chat(&hello).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&gw, "llm_log_rows_written_total").await != 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another process holds the write lock.
    let db = rusqlite::Connection::open(gw.dir.path().join("gateway.db")).expect("open db");
    db.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    // One batch or two (the rate limit itself is unit-tested in
    // admin::serve): one row kept, two over the bound dropped, warning
    // lines at least 10 s apart.
    for _ in 0..3 {
        assert_eq!(gw.chat(&hello).await.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while dropped_rows(&gw).await < 2 {
        assert!(
            Instant::now() < deadline,
            "dropped rows not counted:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dropped_rows(&gw).await, 2);
    let (_, health) = get(&gw, "/health").await;
    assert_eq!(health["store"], "failing", "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    // The warning is rate-limited, not once-only: on a loaded machine the
    // busy timeouts above can stretch past the 10 s interval, and then a
    // second line is right. What must hold: at least one line, and no two
    // closer than the interval.
    let logs = gw.logs();
    let warnings: Vec<f64> = logs
        .lines()
        .filter(|l| l.contains("could not be written"))
        .map(|l| seconds_of_day(l).unwrap_or_else(|| panic!("no timestamp in {l}")))
        .collect();
    assert!(!warnings.is_empty(), "no warning line:\n{logs}");
    for pair in warnings.windows(2) {
        let gap = (pair[1] - pair[0]).rem_euclid(86_400.0);
        assert!(gap >= 9.9, "two warnings {gap:.3} s apart:\n{logs}");
    }
    db.execute_batch("ROLLBACK").expect("unlock");
    assert!(
        gw.wait_log("written again", Duration::from_secs(15)).await,
        "{}",
        gw.logs()
    );
    assert_eq!(gw.chat(&hello).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&gw, "llm_log_rows_written_total").await != 3 {
        assert!(
            Instant::now() < deadline,
            "the kept row and the new one are written:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dropped_rows(&gw).await, 2);
    let (_, health) = get(&gw, "/health").await;
    assert_eq!(health["store"], "ok", "{health}");
    assert_eq!(health["status"], "ok", "{health}");
}

/// Seconds since midnight of a log line's RFC 3339 timestamp
/// (`2026-12-03T16:20:23.893810Z ...`).
fn seconds_of_day(line: &str) -> Option<f64> {
    let time = line.split_once('T')?.1.split_once('Z')?.0;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn gateway_command() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
    c.env_clear();
    c
}

/// A file with a syntax error and other problems, plus bad environment
/// values: `--check` lists all of them in one run (it used to stop at the
/// first syntax error or unknown key).
#[test]
fn check_lists_syntax_errors_unknown_keys_env_and_semantic_problems_together() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"this line = = is broken
[server]
port = "eighty"
wieght = 3

[routing]
max_attempts = 0

[[providers]]
name = "a"
type = "openai"
base_url = "http://127.0.0.1:99999/v1"
another broken line

[health]
probe = "nonsense"
"#,
    )
    .expect("write");
    let out = gateway_command()
        .args(["--check", "--config"])
        .arg(&path)
        .env("LOG_LEVEL", "verbose")
        .env("REDIS_ENABLED", "yes")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for want in [
        format!("{file}:1:"),
        format!("{file}:13:"),
        format!("{file}:3:8: server.port:"),
        format!("{file}:4:1: server.wieght: unknown field"),
        format!("{file}: routing.max_attempts:"),
        format!("{file}: providers[0].base_url:"),
        format!("{file}: health.probe:"),
        "environment: LOG_LEVEL: \"verbose\" is not accepted; use one of trace, debug, info, warn, error".into(),
        "environment: REDIS_ENABLED: \"yes\" is not accepted; use true or false".into(),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
}

/// `LOG_LEVEL=verbose` used to pass and then silence every log line,
/// errors included: now the gateway refuses to start and says why.
#[test]
fn unparsable_environment_values_stop_the_start() {
    for (name, value, accepted) in [
        ("LOG_LEVEL", "verbose", "trace, debug, info, warn, error"),
        ("REDIS_ENABLED", "yes", "true or false"),
        ("APP_PORT", "http", "a port number"),
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let out = gateway_command()
            .current_dir(dir.path())
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", "0")
            .env("ADMIN_LISTEN", "")
            .env(name, value)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("environment: {name}: {value:?} is not accepted"))
                && stderr.contains(accepted),
            "{name}={value}:\n{stderr}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "never listened"
        );
    }
}

/// A database that cannot be opened: the data plane still serves, the
/// admin API says the database could not be opened (not that none is
/// configured), and `/health` shows the store as unavailable.
#[tokio::test]
async fn a_database_that_cannot_be_opened_is_named_and_shown_in_health() {
    let mock = MockOpenAi::start("m").await;
    let blocker = tempfile::NamedTempFile::new().expect("file");
    // A regular file where a directory should be: fails even for root.
    let url = format!("sqlite:///{}/gateway.db", blocker.path().display());
    let gw = Gateway::start_with(
        &provider("m", &mock.base_url(), &["sk-m-000000000001"], ""),
        &[("AUTH_TOKEN", TOKEN), ("DATABASE_URL", &url)],
    )
    .await;
    let hello = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(gw.chat(&hello).await.status(), 200);

    let (status, health) = get(&gw, "/health").await;
    assert_eq!(status, 200, "the data plane serves");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["store"], "unavailable", "{health}");
    assert!(
        !health.to_string().contains("gateway.db"),
        "no detail without a token: {health}"
    );

    for (status, err) in [
        post_json(&gw, "/api/providers", &api_provider("a", &mock.base_url())).await,
        get(&gw, "/api/logs").await,
        get(&gw, "/api/stats").await,
    ] {
        assert_admin_error(status, &err, 503);
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("could not be opened") && message.contains("gateway.db"),
            "{err}"
        );
    }
}
