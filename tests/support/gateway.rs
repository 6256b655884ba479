//! Starts the real `llm-orchestrator` binary on 127.0.0.1 port 0 with a
//! given TOML config, and stops it when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TOKEN: &str = "test-token-0123456789";

pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `http://127.0.0.1:PORT` of the admin listener, when one was asked for.
    pub admin: Option<String>,
    pub log_path: PathBuf,
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Gateway {
    /// Start with `AUTH_TOKEN` = [`TOKEN`].
    pub async fn start(toml: &str) -> Gateway {
        Self::start_with(toml, &[("AUTH_TOKEN", TOKEN)]).await
    }

    /// Start with exactly these extra environment variables (the test
    /// process's environment is not inherited, so a developer's AUTH_TOKEN
    /// cannot leak in). The database lives in the gateway's temp dir and
    /// no separate admin listener is opened unless `ADMIN_LISTEN` is given.
    pub async fn start_with(toml: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("gateway.toml"), toml).expect("write config");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(dir, env).await
    }

    /// Kill the process (SIGKILL) and start it again on the same config
    /// file and database.
    pub async fn restart(mut self) -> Gateway {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        let env = std::mem::take(&mut self.env);
        Self::spawn(dir, env).await
    }

    async fn spawn(dir: tempfile::TempDir, env: Vec<(String, String)>) -> Gateway {
        let config = dir.path().join("gateway.toml");
        let log_path = dir.path().join("gateway.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"));
        cmd.arg("--config")
            .arg(&config)
            .env_clear()
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", "0")
            .env("LOG_LEVEL", "info")
            .env("ADMIN_LISTEN", "")
            .env(
                "DATABASE_URL",
                format!("sqlite:///{}", dir.path().join("gateway.db").display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let wants_admin = env
            .iter()
            .any(|(k, v)| k == "ADMIN_LISTEN" && !v.is_empty());
        let mut child = cmd.spawn().expect("spawn gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        let mut admin = None;
        while base.is_none() || (wants_admin && admin.is_none()) {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("gateway printed its address in time")
                .expect("read stdout")
                .unwrap_or_else(|| {
                    panic!(
                        "gateway exited before listening; log:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    )
                });
            if let Some(a) = line.strip_prefix("llm-orchestrator listening on ") {
                base = Some(a.to_string());
            } else if let Some(a) = line.strip_prefix("llm-orchestrator admin listening on ") {
                admin = Some(a.to_string());
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let gw = Gateway {
            child,
            base: base.unwrap_or_default(),
            admin,
            log_path,
            dir,
            env,
        };
        gw.wait_ready().await;
        gw
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(self.url("/health")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway not ready; log:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Replace the config file (atomically, by rename, as editors do).
    pub fn rewrite_config(&self, toml: &str) {
        let tmp = self.dir.path().join("gateway.toml.tmp");
        std::fs::write(&tmp, toml).expect("write config");
        std::fs::rename(&tmp, self.dir.path().join("gateway.toml")).expect("replace config");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (the writer is asynchronous).
    pub async fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// POST a chat completion with the test token.
    pub async fn chat(&self, body: &serde_json::Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("request reached the gateway")
    }

    /// POST JSON to `path` with exactly these headers (no auth added).
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut req = reqwest::Client::new().post(self.url(path)).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request reached the gateway")
    }

    /// POST an Anthropic Messages request with the test token as `x-api-key`.
    pub async fn messages(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post(
            "/v1/messages",
            &[("x-api-key", TOKEN), ("anthropic-version", "2023-06-01")],
            body,
        )
        .await
    }

    /// Create a client key through the admin API (201 asserted): the
    /// secret, shown this once, and the key as the API describes it.
    pub async fn create_key(&self, body: serde_json::Value) -> (String, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(self.url("/api/keys"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin API reachable");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        assert_eq!(status, 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let secret = v["secret"].as_str().expect("secret").to_string();
        (secret, v["key"].clone())
    }

    /// The ids `GET /v1/models` lists.
    pub async fn model_ids(&self) -> Vec<String> {
        let v: serde_json::Value = reqwest::Client::new()
            .get(self.url("/v1/models"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("models")
            .json()
            .await
            .expect("json");
        v["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One provider's entry in `GET /api/providers/health` (Null if absent).
    pub async fn provider_health(&self, name: &str) -> serde_json::Value {
        let doc: serde_json::Value = reqwest::Client::new()
            .get(self.url("/api/providers/health"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("health endpoint")
            .json()
            .await
            .expect("json");
        doc["providers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Poll the health endpoint until `pred` holds for the provider.
    pub async fn wait_provider(
        &self,
        name: &str,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let p = self.provider_health(name).await;
            if pred(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "not reached within {within:?}: {p}\nlog:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the process (SIGKILL, waited for) and keep its directory.
    #[allow(dead_code)]
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// A `[[providers]]` block of type openai.
pub fn provider(name: &str, base_url: &str, keys: &[&str], extra: &str) -> String {
    typed_provider("openai", name, base_url, keys, extra)
}

/// A `[[providers]]` block of any type.
pub fn typed_provider(
    kind: &str,
    name: &str,
    base_url: &str,
    keys: &[&str],
    extra: &str,
) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    format!(
        "[[providers]]\nname = {name:?}\ntype = {kind:?}\nbase_url = {base_url:?}\napi_keys = [{}]\n{extra}\n",
        keys.join(", ")
    )
}
