//! The admin web console (`admin/`) end to end, in headless Chromium: a mock
//! OpenAI vendor and the gateway with its admin listener, driven by
//! `tests/console/e2e.mjs` (playwright-core) — log in, providers and keys,
//! validation errors, aliases, the request log, usage charts, export and
//! import, and the console on the main port under `/admin/`.
//!
//! Needs Node.js, npm and Chromium (`/usr/bin/chromium`, or `CHROMIUM`):
//! `./scripts/bootstrap test` installs them. Missing tools fail the test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::MockOpenAi;

const BOOTSTRAP: &str =
    "run ./scripts/bootstrap test (it installs Node.js, npm, Chromium and the test's npm packages)";

/// The key `e2e.mjs` enters in the provider form.
const FORM_KEY: &str = "sk-console-e2e-secret-0000000001";

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Run a command to completion within `limit`: (success, stdout + stderr).
async fn run(mut cmd: tokio::process::Command, what: &str, limit: Duration) -> (bool, String) {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}; {BOOTSTRAP}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Node, npm, Chromium and playwright-core, installing the npm packages
/// (`npm ci`, from the committed lock file) when they are missing.
async fn prerequisites() {
    for tool in ["node", "npm"] {
        let mut cmd = tokio::process::Command::new(tool);
        cmd.arg("--version");
        let (ok, out) = run(cmd, tool, Duration::from_secs(60)).await;
        assert!(ok, "`{tool} --version` failed: {out}\n{BOOTSTRAP}");
    }
    let browser = chromium();
    assert!(
        browser.is_file(),
        "Chromium is missing ({} does not exist); {BOOTSTRAP}",
        browser.display()
    );
    let dir = console_dir();
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        let mut cmd = tokio::process::Command::new("npm");
        cmd.args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir);
        let (ok, out) = run(cmd, "npm ci", Duration::from_secs(300)).await;
        assert!(
            ok,
            "`npm ci` in {} failed:\n{out}\n{BOOTSTRAP}",
            dir.display()
        );
    }
}

#[tokio::test]
async fn the_admin_console_works_in_a_browser() {
    prerequisites().await;
    let mock = MockOpenAi::start("console-vendor").await;
    // One provider from the file (read-only through the API: the console
    // shows the 409); the test adds `console-mock` for `console-*` models
    // through the form.
    let toml = provider(
        "file-declared",
        &mock.base_url(),
        &["sk-file-000000000001"],
        "models = [\"file-only-*\"]",
    );
    let gw = Gateway::start_with(
        &toml,
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("the admin listener address");

    let started = Instant::now();
    let mut node = tokio::process::Command::new("node");
    node.arg(console_dir().join("e2e.mjs"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CONSOLE_URL", &admin)
        .env("MAIN_URL", &gw.base)
        .env("TOKEN", TOKEN)
        .env("MOCK_URL", mock.base_url())
        .env("FILE_PROVIDER", "file-declared")
        .env("CHROMIUM", chromium());
    let (ok, output) = run(node, "node tests/console/e2e.mjs", Duration::from_secs(240)).await;
    println!(
        "{output}\n(browser test took {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ok,
        "the console end-to-end test failed:\n{output}\ngateway log:\n{}",
        gw.logs()
    );
    assert!(
        output.contains("checks passed"),
        "e2e.mjs exited 0 without its summary line:\n{output}"
    );

    // The key typed into the browser form is the one the vendor received.
    let chats: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.route() == "/v1/chat/completions")
        .collect();
    assert!(
        chats.len() >= 12,
        "the vendor saw {} chat requests",
        chats.len()
    );
    let expected = format!("Bearer {FORM_KEY}");
    assert!(
        chats
            .iter()
            .all(|r| r.header("authorization").as_deref() == Some(expected.as_str())),
        "a chat request reached the vendor without the key entered in the console"
    );
    assert!(
        !gw.logs().contains(FORM_KEY),
        "the key entered in the console appears in the gateway log"
    );
}
