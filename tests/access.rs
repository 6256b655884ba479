//! Who can reach what (issue #13, "Access"): keys in clear only on the
//! admin listener, tokens never exported, the audit trail, keys posted
//! through the API taken literally, no tokenless start off loopback, the
//! start-up warnings, `/docs`, the console directory, 0600 key exports and
//! the first-run hint.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{Gateway, TOKEN};
use support::mock_openai::MockOpenAi;

/// An admin token different from the data plane's.
const ADMIN: &str = "admin-token-abcdef0123456789";

fn bin() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
    c.env_clear().kill_on_drop(true);
    c
}

async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, String) {
    let mut req = reqwest::Client::new().request(method.parse().expect("method"), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("reached the gateway");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

/// SHA-256 of the token, first 8 hex digits: the audit log's `who`.
fn fingerprint(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET /api/audit` until `pred` holds on its rows (rows are written in
/// the background).
async fn wait_audit(
    admin: &str,
    token: Option<&str>,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, text) =
            call("GET", &format!("{admin}/api/audit?limit=1000"), token, None).await;
        assert_eq!(status, 200, "{text}");
        let rows = json_of(&text)["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if pred(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "audit rows never matched: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keys_in_clear_only_on_the_admin_listener_and_tokens_never_exported() {
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let (status, text) = call(
        "POST",
        &gw.url("/api/providers"),
        Some(TOKEN),
        Some(
            json!({"name": "vendor", "type": "openai", "base_url": "http://127.0.0.1:9/v1",
                    "api_keys": ["sk-vendor-secret-000001"]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{text}");

    // A data-plane client holding the (shared) token, on the main port.
    for format in ["json", "toml"] {
        let (status, text) = call(
            "GET",
            &gw.url(&format!(
                "/api/config/export?format={format}&include_keys=true"
            )),
            Some(TOKEN),
            None,
        )
        .await;
        assert_eq!(status, 403, "{text}");
        assert!(
            !text.contains("sk-vendor-secret-000001") && !text.contains(TOKEN),
            "{text}"
        );
        let err = json_of(&text);
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("admin listener"), "{text}");
    }
    // Masked exports on the main port still work, without the token.
    let (status, text) = call(
        "GET",
        &gw.url("/api/config/export?format=toml"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("sk-…0001") && !text.contains(TOKEN), "{text}");

    // The admin listener serves the keys — but never the token itself.
    for format in ["json", "toml"] {
        let (status, text) = call(
            "GET",
            &format!("{admin}/api/config/export?format={format}&include_keys=true"),
            Some(TOKEN),
            None,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("sk-vendor-secret-000001"), "{text}");
        assert!(
            !text.contains(TOKEN),
            "the data-plane token was exported: {text}"
        );
    }
}

#[tokio::test]
async fn a_separate_admin_token_is_never_exported_either() {
    let gw = Gateway::start_with(
        "[admin]\nlog_retention_days = 7\n",
        &[
            ("AUTH_TOKEN", TOKEN),
            ("ADMIN_TOKEN", ADMIN),
            ("ADMIN_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    // The data token is not an admin token any more.
    let (status, _) = call("GET", &format!("{admin}/api/providers"), Some(TOKEN), None).await;
    assert_eq!(status, 401);
    let (status, text) = call(
        "GET",
        &format!("{admin}/api/config/export?format=json&include_keys=true"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(ADMIN) && !text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn admin_writes_key_exports_and_auth_failures_are_audited() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let (status, text) = call(
        "POST",
        &format!("{admin}/api/providers"),
        Some(TOKEN),
        Some(
            json!({"name": "audited", "type": "openai", "base_url": mock.base_url(),
                    "api_keys": ["sk-audited-secret-0001"]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    // A PATCH through the main port, a refused key export there, a key
    // export on the admin listener, one wrong and one missing token.
    let (status, _) = call(
        "PATCH",
        &gw.url("/api/providers/audited"),
        Some(TOKEN),
        Some(json!({"weight": 3})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        "GET",
        &gw.url("/api/config/export?include_keys=true"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        "GET",
        &format!("{admin}/api/config/export?include_keys=true"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let wrong = "guessed-token-000000000";
    let (status, _) = call(
        "DELETE",
        &format!("{admin}/api/providers/audited"),
        Some(wrong),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call("GET", &gw.url("/api/providers"), None, None).await;
    assert_eq!(status, 401);
    // Reads are not audited.
    let (status, _) = call("GET", &format!("{admin}/api/providers"), Some(TOKEN), None).await;
    assert_eq!(status, 200);

    let rows = wait_audit(&admin, Some(TOKEN), |rows| rows.len() >= 6).await;
    assert_eq!(rows.len(), 6, "{rows:#?}");
    // Newest first.
    let by = |i: usize, k: &str| rows[rows.len() - 1 - i][k].clone();
    let me = fingerprint(TOKEN);
    let expect = [
        (
            "write",
            me.as_str(),
            "admin",
            "POST",
            "/api/providers",
            "audited",
            201,
        ),
        (
            "write",
            me.as_str(),
            "main",
            "PATCH",
            "/api/providers/audited",
            "audited",
            200,
        ),
        (
            "export_keys",
            me.as_str(),
            "main",
            "GET",
            "/api/config/export",
            "config",
            403,
        ),
        (
            "export_keys",
            me.as_str(),
            "admin",
            "GET",
            "/api/config/export",
            "config",
            200,
        ),
    ];
    for (i, (action, who, listener, method, path, target, status)) in expect.iter().enumerate() {
        assert_eq!(by(i, "action"), *action, "row {i}: {rows:#?}");
        assert_eq!(by(i, "who"), *who, "row {i}");
        assert_eq!(by(i, "listener"), *listener, "row {i}");
        assert_eq!(by(i, "method"), *method, "row {i}");
        assert_eq!(by(i, "path"), *path, "row {i}");
        assert_eq!(by(i, "target"), *target, "row {i}");
        assert_eq!(by(i, "status"), *status, "row {i}");
        assert!(
            by(i, "peer")
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.1:")),
            "row {i}: {rows:#?}"
        );
    }
    assert_eq!(by(4, "action"), "auth_failure");
    assert_eq!(by(4, "who"), fingerprint(wrong));
    assert_eq!(by(4, "method"), "DELETE");
    assert_eq!(by(4, "status"), 401);
    assert_eq!(by(5, "action"), "auth_failure");
    assert_eq!(by(5, "who"), "none");
    assert_eq!(by(5, "listener"), "main");

    // Paging.
    let (_, text) = call(
        "GET",
        &format!("{admin}/api/audit?limit=4"),
        Some(TOKEN),
        None,
    )
    .await;
    let page = json_of(&text);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(4));
    let cursor = page["next_before_id"].as_i64().expect("a next page");
    let (_, text) = call(
        "GET",
        &format!("{admin}/api/audit?limit=4&before_id={cursor}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(json_of(&text)["data"].as_array().map(Vec::len), Some(2));

    // One structured line per event (target `audit`); the admin write is
    // not reported as a file reload; no token or key in the log.
    assert!(gw.wait_log("admin audit", Duration::from_secs(5)).await);
    let log = gw.logs();
    assert_eq!(log.matches("admin audit action=").count(), 4, "{log}");
    assert_eq!(
        log.matches("admin authentication failed").count(),
        2,
        "{log}"
    );
    assert!(
        log.contains("configuration changed") && log.contains("admin api"),
        "{log}"
    );
    assert!(
        !log.contains("configuration reloaded"),
        "an admin write was logged as a file reload:\n{log}"
    );
    assert!(
        !log.contains(TOKEN) && !log.contains(wrong) && !log.contains("sk-audited-secret-0001"),
        "{log}"
    );
}

#[tokio::test]
async fn auth_failures_are_rate_limited() {
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    for i in 0..200 {
        let (status, _) = call(
            "GET",
            &format!("{admin}/api/providers"),
            Some(&format!("bad-{i}")),
            None,
        )
        .await;
        assert_eq!(status, 401);
    }
    // The allowed 20 arrive; wait for them, then make sure no more do.
    let rows = wait_audit(&admin, Some(TOKEN), |rows| rows.len() >= 20).await;
    let (status, _) = call("POST", &format!("{admin}/api/reload"), Some(TOKEN), None).await;
    assert_eq!(status, 200);
    // The reload is written after every failure row that was sent.
    let rows_after = wait_audit(&admin, Some(TOKEN), |rows| {
        rows.iter().any(|r| r["action"] == "write")
    })
    .await;
    let failures = rows_after
        .iter()
        .filter(|r| r["action"] == "auth_failure")
        .count();
    assert_eq!(failures, 20, "{rows:#?}");
    let lines = gw.logs().matches("admin authentication failed").count();
    assert_eq!(lines, 20);
}

#[tokio::test]
async fn keys_posted_through_the_api_are_never_expanded() {
    let mock = MockOpenAi::start("lit").await;
    let gw = Gateway::start_with(
        "",
        &[
            ("AUTH_TOKEN", TOKEN),
            ("ADMIN_LISTEN", "127.0.0.1:0"),
            ("SOME_VAR", "sk-from-env-000000001"),
        ],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let mut reasons = Vec::new();
    for key in [
        "${AUTH_TOKEN}",
        "${SOME_VAR}",
        "${NO_SUCH_VARIABLE}",
        "${NO_SUCH:-fallback}",
    ] {
        let (status, text) = call(
            "POST",
            &format!("{admin}/api/providers"),
            Some(TOKEN),
            Some(json!({"name": "lit", "type": "openai", "base_url": mock.base_url(), "api_key": key})),
        )
        .await;
        assert_eq!(status, 422, "{key}: {text}");
        assert!(
            !text.contains(TOKEN) && !text.contains("sk-from-env"),
            "{text}"
        );
        let err = json_of(&text);
        reasons.push(err["error"]["fields"][0]["reason"].clone());
        // Adding one to an existing provider, and importing one, likewise.
    }
    // The same answer whether the variable exists or not.
    assert!(reasons.windows(2).all(|w| w[0] == w[1]), "{reasons:?}");
    let (status, _) = call(
        "POST",
        &format!("{admin}/api/providers"),
        Some(TOKEN),
        Some(json!({"name": "lit", "type": "openai", "base_url": mock.base_url(), "api_key": "sk-literal-key-0000001"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, text) = call(
        "POST",
        &format!("{admin}/api/providers/lit/keys"),
        Some(TOKEN),
        Some(json!({"api_key": "${AUTH_TOKEN}"})),
    )
    .await;
    assert_eq!(status, 422, "{text}");
    let doc = format!(
        "[[providers]]\nname = \"imported\"\ntype = \"openai\"\nbase_url = \"{}\"\napi_keys = [\"${{AUTH_TOKEN}}\"]\n",
        mock.base_url()
    );
    let r = reqwest::Client::new()
        .post(format!("{admin}/api/config/import?format=toml"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/toml")
        .body(doc)
        .send()
        .await
        .expect("import");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("api_keys"), "{text}");

    // A row stored before this rule (or by an older peer) that holds a
    // reference is used literally, never expanded.
    // (SQLite in WAL mode takes this second writer; the gateway reads the
    // row at its next start.)
    let db = gw.dir.path().join("gateway.db");
    let conn = rusqlite::Connection::open(&db).expect("open db");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let changed = conn
        .execute(
            "UPDATE providers SET doc = json_remove(json_set(doc, '$.api_keys', json_array('${AUTH_TOKEN}')), '$.api_key')
             WHERE name = 'lit'",
            [],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(conn);
    let gw = gw.restart().await;
    let r = gw.chat(&hello("gpt-4o-mini")).await;
    assert_eq!(r.status(), 200);
    let sent = mock
        .requests()
        .last()
        .and_then(|r| r.header("authorization"))
        .unwrap_or_default();
    assert_eq!(sent, "Bearer ${AUTH_TOKEN}");
}

#[tokio::test]
async fn without_a_token_a_non_loopback_address_is_refused() {
    for args in [vec![], vec!["--check"]] {
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            bin()
                .args(&args)
                .current_dir(std::env::temp_dir())
                .env("APP_HOST", "0.0.0.0")
                .env("APP_PORT", "0")
                .env("ADMIN_LISTEN", "")
                .output(),
        )
        .await
        .expect("exits at once")
        .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} started without a token on 0.0.0.0"
        );
        assert!(
            stderr.contains("AUTH_TOKEN")
                && stderr.contains("--allow-no-auth")
                && stderr.contains("0.0.0.0"),
            "{stderr}"
        );
    }
    // Explicitly allowed: starts, and says what a local reverse proxy means.
    for (flag, env) in [(Some("--allow-no-auth"), None), (None, Some("true"))] {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("log");
        let mut cmd = bin();
        cmd.current_dir(dir.path())
            .env("APP_HOST", "0.0.0.0")
            .env("APP_PORT", "0")
            .env("ADMIN_LISTEN", "")
            .env("LOG_FILE", &log)
            .env("LOG_ROTATION", "never")
            .stdout(std::process::Stdio::piped());
        if let Some(f) = flag {
            cmd.arg(f);
        }
        if let Some(v) = env {
            cmd.env("ALLOW_NO_AUTH", v);
        }
        let mut child = cmd.spawn().expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("listening in time")
            .expect("read")
            .unwrap_or_default();
        assert!(
            line.starts_with("llm-orchestrator listening on http://0.0.0.0:"),
            "{line}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("reverse proxy") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no reverse-proxy warning:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill().await;
    }
    // Not a boolean: refused by name.
    let out = bin()
        .env("ALLOW_NO_AUTH", "maybe")
        .arg("--check")
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ALLOW_NO_AUTH"));
}

#[tokio::test]
async fn the_default_address_is_loopback() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = bin()
        .current_dir(dir.path())
        .env("APP_PORT", "0")
        .env("ADMIN_LISTEN", "")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("listening in time")
        .expect("read")
        .unwrap_or_default();
    let _ = child.kill().await;
    assert!(
        line.starts_with("llm-orchestrator listening on http://127.0.0.1:"),
        "{line}"
    );
}

#[tokio::test]
async fn start_up_warns_about_an_exposed_admin_api_with_a_weak_token() {
    // Admin listener on every interface, data token shared: warned.
    let gw = Gateway::start_with("", &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "0.0.0.0:0")]).await;
    assert!(
        gw.wait_log(
            "with the same token as the data plane",
            Duration::from_secs(5)
        )
        .await,
        "{}",
        gw.logs()
    );
    drop(gw);
    // Short separate admin token, exposed through a non-loopback main port.
    let gw = Gateway::start_with(
        "",
        &[
            ("AUTH_TOKEN", TOKEN),
            ("ADMIN_TOKEN", "short"),
            ("APP_HOST", "0.0.0.0"),
        ],
    )
    .await;
    assert!(
        gw.wait_log("shorter than 16 characters", Duration::from_secs(5))
            .await,
        "{}",
        gw.logs()
    );
    assert!(
        !gw.logs().contains("same token as the data plane"),
        "{}",
        gw.logs()
    );
    drop(gw);
    // Loopback admin listener, separate long token, loopback main port: quiet.
    let gw = Gateway::start_with(
        "",
        &[
            ("AUTH_TOKEN", TOKEN),
            ("ADMIN_TOKEN", ADMIN),
            ("ADMIN_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    assert!(gw.wait_log("listening", Duration::from_secs(5)).await);
    let log = gw.logs();
    assert!(
        !log.contains("same token as the data plane") && !log.contains("shorter than 16"),
        "{log}"
    );
}

#[tokio::test]
async fn docs_need_the_token_on_the_main_port_and_are_public_on_the_admin_listener() {
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    for path in ["/docs", "/docs/openapi.json"] {
        let (status, text) = call("GET", &gw.url(path), None, None).await;
        assert_eq!(
            status, 401,
            "{path} on the main port without a token: {text}"
        );
        assert!(json_of(&text)["error"]["message"].is_string(), "{text}");
        let (status, _) = call("GET", &gw.url(path), Some(TOKEN), None).await;
        assert_eq!(status, 200, "{path} on the main port with the token");
        let (status, _) = call("GET", &format!("{admin}{path}"), None, None).await;
        assert_eq!(status, 200, "{path} on the admin listener");
    }
}

#[tokio::test]
async fn the_console_directory_cannot_be_left_through_a_symlink() {
    let outside = tempfile::tempdir().expect("dir");
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT").expect("write");
    let console = tempfile::tempdir().expect("dir");
    std::fs::write(
        console.path().join("index.html"),
        "<!doctype html><title>custom console</title>",
    )
    .expect("write");
    std::os::unix::fs::symlink(&secret, console.path().join("app.js")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", console.path().join("style.css")).expect("symlink");
    let dir = console.path().to_string_lossy().to_string();
    let gw = Gateway::start_with("", &[("AUTH_TOKEN", TOKEN), ("ADMIN_CONSOLE_DIR", &dir)]).await;
    let (status, text) = call("GET", &gw.url("/admin/"), None, None).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("custom console"),
        "a file inside the directory is served: {text}"
    );
    let (status, text) = call("GET", &gw.url("/admin/app.js"), None, None).await;
    assert_eq!(status, 200);
    assert!(
        !text.contains("TOP-SECRET-CONTENT"),
        "a symlink led outside the console directory"
    );
    assert!(
        text.contains("llm-orchestrator"),
        "the built-in app.js is served instead"
    );
    let (_, text) = call("GET", &gw.url("/admin/style.css"), None, None).await;
    assert!(!text.contains("root:"), "/etc/passwd was served");
}

#[tokio::test]
async fn key_exports_are_written_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let (status, _) = call(
        "POST",
        &format!("{admin}/api/providers"),
        Some(TOKEN),
        Some(json!({"name": "p", "type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-mode-test-00000001"})),
    )
    .await;
    assert_eq!(status, 201);
    let dir = tempfile::tempdir().expect("dir");
    let fresh = dir.path().join("fresh.toml");
    let existing = dir.path().join("existing.toml");
    std::fs::write(&existing, "old").expect("write");
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    for file in [&fresh, &existing] {
        let out = bin()
            .args([
                "export",
                "--include-keys",
                "--url",
                &admin,
                "--token",
                TOKEN,
                "-o",
            ])
            .arg(file)
            .output()
            .await
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(file).expect("read");
        assert!(text.contains("sk-mode-test-00000001"), "{text}");
        let mode = std::fs::metadata(file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
    }
    // Nothing left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// First run: no token, no provider. The hint names a way that works in
/// that state — the admin listener, which takes loopback callers without a
/// token — and it does work; the main port's copy still refuses.
#[tokio::test]
async fn the_first_run_hint_works_without_a_token() {
    let mock = MockOpenAi::start("first").await;
    let gw = Gateway::start_with("", &[("ADMIN_LISTEN", "127.0.0.1:0")]).await;
    let admin = gw.admin.clone().expect("admin listener");
    assert!(
        gw.wait_log("add a [[providers]] block", Duration::from_secs(5))
            .await
    );
    let log = gw.logs();
    assert!(
        log.contains("/api/providers on the admin listener") && log.contains("without a token"),
        "{log}"
    );
    let body = json!({"name": "first", "type": "openai", "base_url": mock.base_url(), "api_key": "sk-first-run-000000001"});
    let (status, text) = call("POST", &gw.url("/api/providers"), None, Some(body.clone())).await;
    assert_eq!(
        status, 401,
        "the main port's admin copy needs a token: {text}"
    );
    assert!(text.contains("admin listener"), "{text}");
    let (status, text) = call("POST", &format!("{admin}/api/providers"), None, Some(body)).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(gw.chat(&hello("gpt-4o-mini")).await.status(), 200);
    let rows = wait_audit(&admin, None, |rows| !rows.is_empty()).await;
    assert_eq!(rows[0]["who"], "loopback");
}
