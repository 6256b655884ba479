//! The command line: `--check`, running on embedded defaults, env overrides.

mod support;

use std::process::Command;
use support::gateway::Gateway;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
    c.env_clear();
    c
}

#[test]
fn sample_config_is_valid() {
    let out = bin()
        .args([
            "--check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/gateway.toml"),
        ])
        .env("OPENAI_API_KEY", "sk-test-00000000000000000000")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("configuration OK") && stdout.contains("4 providers"),
        "{stdout}"
    );
}

#[test]
fn sample_config_without_its_key_variable_names_it() {
    let out = bin()
        .args([
            "--check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/gateway.toml"),
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("providers[0].api_keys[0]") && stderr.contains("OPENAI_API_KEY"),
        "{stderr}"
    );
}

#[test]
fn check_lists_every_error_with_file_key_and_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[routing]
max_attempts = 0
[[providers]]
name = "x"
type = "openai"
base_url = "ftp://nowhere"
weight = 0
[[providers]]
name = "x"
type = "mystery"
base_url = "http://127.0.0.1:1/v1"
"#,
    )
    .expect("write");
    let out = bin()
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for key in [
        "routing.max_attempts",
        "providers[0].base_url",
        "providers[0].weight",
        "providers[1].name",
        "providers[1].type",
    ] {
        assert!(
            stderr.contains(&format!("{file}: {key}: ")),
            "missing {key} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("5 errors"), "{stderr}");
}

#[test]
fn check_reports_toml_syntax_errors_with_line_and_column() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[server]\nport = \"eighty\"\n").expect("write");
    let out = bin()
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", path.display())),
        "{stderr}"
    );
}

#[test]
fn environment_errors_are_reported_by_variable() {
    let out = bin()
        .arg("--check")
        .env("APP_PORT", "http")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment: APP_PORT:"));
}

#[test]
fn help_and_version_work() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "check",
        "db",
        "export",
        "import",
        "--config",
        "--check",
        "--upgrade",
        "--version",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    for (sub, words) in [
        (
            "export",
            &[
                "--format",
                "--include-keys",
                "--output",
                "--url",
                "--token",
                "--offline",
            ][..],
        ),
        (
            "import",
            &["--format", "--dry-run", "--url", "--token", "--offline"][..],
        ),
        ("db", &["migrate"][..]),
    ] {
        let out = bin().args([sub, "--help"]).output().expect("run");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        for w in words {
            assert!(help.contains(w), "{sub} --help lacks {w}:\n{help}");
        }
    }
    let out = bin().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn runs_on_embedded_defaults_and_says_how_to_add_a_provider() {
    // No config file at all: an empty TOML is the same as none, but also
    // prove the no-argument path by starting with only the environment.
    let gw = Gateway::start_with("", &[]).await;
    assert!(
        gw.wait_log(
            "add a [[providers]] block",
            std::time::Duration::from_secs(5)
        )
        .await,
        "{}",
        gw.logs()
    );
    // No AUTH_TOKEN: loopback clients are served.
    let r = reqwest::get(gw.url("/v1/models")).await.expect("models");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(0));
}

#[test]
fn starts_without_any_config_file() {
    use std::io::{BufRead, BufReader};
    // Run in a scratch directory: the default database is ./data/….
    let dir = tempfile::tempdir().expect("dir");
    let mut child = bin()
        .current_dir(dir.path())
        .env("ADMIN_LISTEN", "")
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("llm-orchestrator listening on http://127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn db_migrate_creates_the_schema() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite:///{}", dir.path().join("data/gw.db").display());
    let out = bin()
        .args(["db", "migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("schema version 7"), "{stdout}");
    assert!(dir.path().join("data/gw.db").exists());
}

/// `export` / `import` against a running gateway's admin listener, then
/// `--offline` on its database once it is stopped.
#[tokio::test]
async fn export_and_import_through_the_admin_api_and_offline() {
    let gw = Gateway::start_with(
        "",
        &[
            ("AUTH_TOKEN", support::gateway::TOKEN),
            ("ADMIN_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{admin}/api/providers"))
        .bearer_auth(support::gateway::TOKEN)
        .json(&serde_json::json!({"name": "first", "type": "openai",
            "config": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-first-secret-0001"}}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let run = |args: Vec<String>| {
        let mut c = bin();
        c.args(&args).env("AUTH_TOKEN", support::gateway::TOKEN);
        c.output().expect("run")
    };
    // Export: masked by default, in clear only when asked.
    let out = run(vec!["export".into(), "--url".into(), admin.clone()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("name = \"first\"") && text.contains("sk-…0001"),
        "{text}"
    );
    assert!(!text.contains("sk-first-secret-0001"));
    let out = run(vec![
        "export".into(),
        "--url".into(),
        admin.clone(),
        "--include-keys".into(),
        "--format".into(),
        "json".into(),
    ]);
    let full: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json export");
    assert!(full.to_string().contains("sk-first-secret-0001"));

    // Import a document with a second provider: the dry run changes nothing.
    let dir = tempfile::tempdir().expect("dir");
    let doc = dir.path().join("doc.toml");
    std::fs::write(
        &doc,
        format!("{text}\n[[providers]]\nname = \"second\"\ntype = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_keys = [\"sk-second-secret-02\"]\n"),
    )
    .expect("write");
    let out = run(vec![
        "import".into(),
        doc.display().to_string(),
        "--dry-run".into(),
        "--url".into(),
        admin.clone(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["changes"]["providers"]["added"],
        serde_json::json!(["second"])
    );
    assert_eq!(gw.model_ids().await.len(), 0);
    let names = |v: serde_json::Value| -> Vec<String> {
        let list = if v["data"].is_array() {
            &v["data"]
        } else {
            &v["providers"]
        };
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = || async {
        client
            .get(format!("{admin}/api/providers"))
            .bearer_auth(support::gateway::TOKEN)
            .send()
            .await
            .expect("list")
            .json::<serde_json::Value>()
            .await
            .expect("json")
    };
    assert_eq!(names(list().await), vec!["first"]);
    let out = run(vec![
        "import".into(),
        doc.display().to_string(),
        "--url".into(),
        admin.clone(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut now = names(list().await);
    now.sort();
    assert_eq!(now, vec!["first", "second"]);

    // A bad document: the admin API's 422 reaches the user, exit 1.
    std::fs::write(
        &doc,
        "[[providers]]\nname = \"bad\"\ntype = \"openai\"\nbase_url = \"ftp://x\"\n",
    )
    .expect("write");
    let out = run(vec![
        "import".into(),
        doc.display().to_string(),
        "--url".into(),
        admin.clone(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("422") && err.contains("base_url"), "{err}");
    // A wrong token: 401, exit 1.
    let out = run(vec![
        "export".into(),
        "--url".into(),
        admin.clone(),
        "--token".into(),
        "wrong".into(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    // Nobody listening: says so.
    let out = run(vec![
        "export".into(),
        "--url".into(),
        "http://127.0.0.1:9".into(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--offline"));
    // Neither the token nor a password in the URL ever reaches an error
    // message: not when nobody listens, not on a 401.
    for url in [
        "http://admin:url-Secret-99@127.0.0.1:9".to_string(),
        admin.replace("http://", "http://admin:url-Secret-99@"),
    ] {
        let out = run(vec![
            "export".into(),
            "--url".into(),
            url,
            "--token".into(),
            "tok-Secret-4711".into(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("tok-Secret-4711") && !err.contains("url-Secret-99"),
            "{err}"
        );
    }
    // https:// URLs are spoken (TLS): against the plain-HTTP listener the
    // handshake fails, and the error says so instead of refusing the scheme.
    let out = run(vec![
        "export".into(),
        "--url".into(),
        admin.replace("http://", "https://"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach https://") && !err.contains("only http://"),
        "{err}"
    );

    // Offline, on the same database file, with the gateway stopped.
    let db = format!("sqlite:///{}", gw.dir.path().join("gateway.db").display());
    let _dir = gw.stop().await;
    let out = bin()
        .args(["export", "--offline", "--format", "json"])
        .env("DATABASE_URL", &db)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut offline = names(v.clone());
    offline.sort();
    assert_eq!(offline, vec!["first", "second"]);
    assert!(!v.to_string().contains("sk-second-secret-02"));
}
