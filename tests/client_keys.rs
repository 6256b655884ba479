//! Client keys (issue #17): created through the admin API, enforced on the
//! data plane in each client API's format, hot-reloaded across instances,
//! never shown in clear after creation.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::db::Postgres;
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::MockOpenAi;

async fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .request(method.parse().expect("method"), gw.url(path))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30));
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

async fn chat(gw: &Gateway, secret: &str, model: &str) -> (u16, Value) {
    let (s, t) = call(
        gw,
        "POST",
        "/v1/chat/completions",
        secret,
        Some(hello(model)),
    )
    .await;
    (s, json_of(&t))
}

async fn create(gw: &Gateway, body: Value) -> (String, Value) {
    gw.create_key(body).await
}

async fn patch(gw: &Gateway, id: i64, body: Value) {
    let (status, text) = call(gw, "PATCH", &format!("/api/keys/{id}"), TOKEN, Some(body)).await;
    assert_eq!(status, 200, "{text}");
}

fn config(mock: &MockOpenAi) -> String {
    format!(
        "{}\n[aliases]\nfast = \"gpt-4o-mini\"\n",
        provider(
            "vendor",
            &mock.base_url(),
            &["sk-vendor-000000000001"],
            "models = [\"gpt-4o-mini\", \"gpt-4o\", \"o3\"]"
        )
    )
}

#[tokio::test]
async fn client_keys_are_created_enforced_revoked_and_never_shown_again() {
    let mock = MockOpenAi::start("vendor").await;
    let gw = Gateway::start(&config(&mock)).await;

    let (secret, key) = create(
        &gw,
        json!({"name": "team-a app", "owner": "team-a",
               "models": ["gpt-4o*"], "apis": ["openai", "anthropic"]}),
    )
    .await;
    let id = key["id"].as_i64().expect("id");
    assert!(
        secret.starts_with("llmo-") && secret.len() == 45,
        "{secret}"
    );
    let masked = key["key"].as_str().expect("masked").to_string();
    assert_eq!(masked, format!("llmo-…{}", &secret[41..]));
    assert_eq!(key["owner"], "team-a");
    assert_eq!(key["enabled"], true);

    // Shown once: never in a list, a read or the audit trail.
    for path in ["/api/keys".to_string(), format!("/api/keys/{id}")] {
        let (status, text) = call(&gw, "GET", &path, TOKEN, None).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains(&masked) && !text.contains(&secret), "{text}");
    }

    // Allowed models, an alias whose target is allowed, a denied model.
    let (s, body) = chat(&gw, &secret, "gpt-4o-mini").await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = chat(&gw, &secret, "fast").await;
    assert_eq!(s, 200, "alias -> gpt-4o-mini: {body}");
    let (s, body) = chat(&gw, &secret, "o3").await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "permission_denied", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("o3"),
        "{body}"
    );
    // The master token still reaches every model.
    assert_eq!(chat(&gw, TOKEN, "o3").await.0, 200);

    // Anthropic format, its own key header.
    let denied = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", &secret)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "o3", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("messages");
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.expect("json");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");

    // Client APIs the key may not use: Responses, Gemini (`?key=`).
    let (s, text) = call(
        &gw,
        "POST",
        "/v1/responses",
        &secret,
        Some(json!({"model": "gpt-4o-mini", "input": "Hi"})),
    )
    .await;
    assert_eq!(s, 403, "{text}");
    let gemini = reqwest::Client::new()
        .post(gw.url(&format!(
            "/v1beta/models/gpt-4o-mini:generateContent?key={secret}"
        )))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}))
        .send()
        .await
        .expect("gemini");
    assert_eq!(gemini.status(), 403);

    // A client key never reaches the admin API, the metrics or the docs.
    for path in [
        "/api/keys",
        "/api/providers",
        "/api/logs",
        "/metrics",
        "/docs",
    ] {
        let (s, text) = call(&gw, "GET", path, &secret, None).await;
        assert_eq!(s, 401, "{path}: {text}");
    }
    let (s, _) = call(
        &gw,
        "POST",
        "/api/keys",
        &secret,
        Some(json!({"name": "escalate"})),
    )
    .await;
    assert_eq!(s, 401);

    // The official SDKs with the key.
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(format!(
                "{}/tests/sdk/client_key_sdk.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .args([gw.base.as_str(), &secret, "gpt-4o-mini", "o3"])
            .output(),
    )
    .await
    .expect("python finished in time")
    .expect("python3 runs (./scripts/bootstrap test installs the SDKs)");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}\n{}", gw.logs());
    for line in [
        "openai allowed ok",
        "openai denied ok",
        "anthropic allowed ok",
        "anthropic denied ok",
        "wrong key ok",
    ] {
        assert!(output.contains(line), "{line}: {output}");
    }

    // Disabled, expired, back, revoked: each takes effect at once.
    patch(&gw, id, json!({"enabled": false})).await;
    let (s, body) = chat(&gw, &secret, "gpt-4o-mini").await;
    assert_eq!(s, 401, "disabled: {body}");
    patch(&gw, id, json!({"enabled": true, "expires_ms": 1000})).await;
    let (s, body) = chat(&gw, &secret, "gpt-4o-mini").await;
    assert_eq!(s, 401, "expired: {body}");
    let (_, text) = call(&gw, "GET", &format!("/api/keys/{id}"), TOKEN, None).await;
    assert_eq!(json_of(&text)["expired"], true, "{text}");
    patch(&gw, id, json!({"expires_ms": null, "models": ["o3"]})).await;
    assert_eq!(chat(&gw, &secret, "o3").await.0, 200);
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").await.0, 403);

    // Validation names the field.
    let (s, text) = call(
        &gw,
        "POST",
        "/api/keys",
        TOKEN,
        Some(json!({"name": "x", "apis": ["smtp"]})),
    )
    .await;
    assert_eq!(s, 422, "{text}");
    assert!(text.contains("apis"), "{text}");

    // The request log names the key (masked), never the secret; the
    // master token's rows have none.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, text) = call(&gw, "GET", "/api/logs?limit=1000", TOKEN, None).await;
        assert_eq!(s, 200, "{text}");
        assert!(!text.contains(&secret), "{text}");
        let rows = json_of(&text)["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let label = format!("#{id} team-a app ({masked})");
        let by_key = rows
            .iter()
            .filter(|r| r["client_key"] == label.as_str())
            .count();
        let master = rows.iter().filter(|r| r["client_key"].is_null()).count();
        if by_key >= 5 && master >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: {by_key} rows, master {master}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Keys survive a restart (loaded at start, not only on write).
    let (other, _) = create(&gw, json!({"name": "survivor"})).await;
    let gw = gw.restart().await;
    assert_eq!(chat(&gw, &other, "gpt-4o").await.0, 200);
    assert_eq!(chat(&gw, &secret, "o3").await.0, 200);

    let (s, text) = call(&gw, "DELETE", &format!("/api/keys/{id}"), TOKEN, None).await;
    assert_eq!(s, 200, "{text}");
    let (s, body) = chat(&gw, &secret, "o3").await;
    assert_eq!(s, 401, "revoked: {body}");
    let (s, _) = call(&gw, "GET", &format!("/api/keys/{id}"), TOKEN, None).await;
    assert_eq!(s, 404);

    // The audit trail names created keys by the masked form only.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, text) = call(&gw, "GET", "/api/audit?limit=1000", TOKEN, None).await;
        assert_eq!(s, 200, "{text}");
        assert!(!text.contains(&secret) && !text.contains(&other), "{text}");
        if text.contains(&masked) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no audit row names {masked}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!gw.logs().contains(&secret), "the secret is never logged");
}

/// Two instances on one PostgreSQL database: a key created on A works on
/// B within 5 s (B polls the config version), and stops there when revoked.
#[tokio::test]
async fn a_key_created_on_one_instance_works_on_another() {
    let db = Postgres::start().await;
    let mock = MockOpenAi::start("vendor").await;
    let toml = config(&mock);
    let env = |name: &'static str| {
        vec![
            ("AUTH_TOKEN", TOKEN.to_string()),
            ("DATABASE_TYPE", "postgres".to_string()),
            ("DATABASE_URL", db.url()),
            ("INSTANCE_NAME", name.to_string()),
        ]
    };
    let start = |name: &'static str| {
        let env = env(name);
        let toml = toml.clone();
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Gateway::start_with(&toml, &env).await
        }
    };
    let a = start("gw-a").await;
    let b = start("gw-b").await;
    let (secret, key) = create(&a, json!({"name": "shared"})).await;
    let id = key["id"].as_i64().expect("id");

    let wait_for = |want: u16| {
        let b = &b;
        let secret = secret.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let (s, body) = chat(b, &secret, "gpt-4o-mini").await;
                if s == want {
                    return;
                }
                assert!(Instant::now() < deadline, "B still answers {s}: {body}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for(200).await;
    let (s, text) = call(&a, "DELETE", &format!("/api/keys/{id}"), TOKEN, None).await;
    assert_eq!(s, 200, "{text}");
    wait_for(401).await;
}

/// Instances that each keep their own SQLite copy and share only Redis:
/// a key created, revoked or deleted on one instance does the same on the
/// other (the key travels as hash + masked form + document, never the
/// secret).
#[tokio::test]
async fn keys_reach_instances_that_share_only_redis() {
    let redis = support::redis::RedisServer::start().await;
    let mock = MockOpenAi::start("vendor").await;
    let url = redis.url();
    let env = [
        ("AUTH_TOKEN", TOKEN),
        ("REDIS_ENABLED", "true"),
        ("REDIS_URL", url.as_str()),
    ];
    let one = Gateway::start_with(&config(&mock), &env).await;
    let two = Gateway::start_with(&config(&mock), &env).await;
    let (secret, key) = create(&one, json!({"name": "roaming", "rpm": 100})).await;
    let id = key["id"].as_i64().expect("id");
    let wait_for = |want: u16| {
        let (two, secret) = (&two, secret.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (s, body) = chat(two, &secret, "gpt-4o-mini").await;
                if s == want {
                    return;
                }
                assert!(Instant::now() < deadline, "still {s} on two: {body}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for(200).await;
    let (s, text) = call(&two, "GET", "/api/keys", TOKEN, None).await;
    assert_eq!(s, 200);
    assert!(
        text.contains("roaming") && text.contains("\"rpm\":100"),
        "{text}"
    );
    assert!(!text.contains(&secret), "{text}");
    patch(&one, id, json!({"enabled": false})).await;
    wait_for(401).await;
    patch(&one, id, json!({"enabled": true})).await;
    wait_for(200).await;
    let (s, text) = call(&one, "DELETE", &format!("/api/keys/{id}"), TOKEN, None).await;
    assert_eq!(s, 200, "{text}");
    wait_for(401).await;
}

/// `llm-orchestrator keys …` drives `/api/keys`: the secret is printed
/// once, at creation.
#[tokio::test]
async fn the_keys_cli_creates_lists_updates_revokes_and_deletes() {
    let mock = MockOpenAi::start("vendor").await;
    let gw = Gateway::start(&config(&mock)).await;
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = vec!["keys".into()];
        all.extend(args.iter().map(|s| s.to_string()));
        all.extend([
            "--url".into(),
            gw.base.clone(),
            "--token".into(),
            TOKEN.into(),
        ]);
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"))
                .args(&all)
                .env_clear()
                .output()
                .await
                .expect("cli runs");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{all:?}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            json_of(&text)
        }
    };
    let created = cli(&[
        "create",
        "--name",
        "cli app",
        "--model",
        "gpt-4o*",
        "--rpm",
        "2",
        "--tpm",
        "5000",
        "--max-concurrent",
        "3",
    ])
    .await;
    let secret = created["secret"].as_str().expect("secret").to_string();
    let id = created["key"]["id"].as_i64().expect("id").to_string();
    assert_eq!(created["key"]["rpm"], 2, "{created}");
    assert_eq!(created["key"]["max_concurrent"], 3, "{created}");
    let listed = cli(&["list"]).await;
    assert_eq!(listed["data"][0]["name"], "cli app", "{listed}");
    assert!(!listed.to_string().contains(&secret), "masked in lists");
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").await.0, 200);

    let updated = cli(&["update", &id, "--unset", "rpm", "--owner", "team-b"]).await;
    assert!(updated["key"].get("rpm").is_none(), "{updated}");
    assert_eq!(updated["key"]["tpm"], 5000, "{updated}");
    assert_eq!(updated["key"]["owner"], "team-b", "{updated}");
    cli(&["revoke", &id]).await;
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").await.0, 401);
    cli(&["update", &id, "--enabled"]).await;
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").await.0, 200);
    cli(&["delete", &id]).await;
    assert_eq!(cli(&["list"]).await["data"], json!([]));
}

/// A key limited to some models sees only those in every model list
/// (OpenAI, Anthropic, Gemini) and cannot read the others one by one.
#[tokio::test]
async fn model_lists_show_a_limited_key_only_its_models() {
    let mock = MockOpenAi::start("vendor").await;
    let gw = Gateway::start(&config(&mock)).await;
    let (secret, _) = create(&gw, json!({"name": "4o only", "models": ["gpt-4o*"]})).await;
    let get = |path: &str, headers: Vec<(&'static str, String)>| {
        let mut req = reqwest::Client::new().get(gw.url(path));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.expect("models");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let ids = |v: &Value, list: &str, field: &str| -> Vec<String> {
        let mut ids: Vec<String> = v[list]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|m| m[field].as_str())
                    .map(|s| s.trim_start_matches("models/").to_string())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    };
    let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
    let want = vec!["fast", "gpt-4o", "gpt-4o-mini"];

    let (s, all) = get("/v1/models", bearer(TOKEN)).await;
    assert_eq!(s, 200);
    assert!(ids(&all, "data", "id").contains(&"o3".to_string()), "{all}");
    let (s, mine) = get("/v1/models", bearer(&secret)).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&mine, "data", "id"), want, "{mine}");

    let (s, anthropic) = get(
        "/v1/models",
        vec![
            ("x-api-key", secret.clone()),
            ("anthropic-version", "2023-06-01".into()),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ids(&anthropic, "data", "id"), want, "{anthropic}");

    let (s, gemini) = get("/v1beta/models", vec![("x-goog-api-key", secret.clone())]).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&gemini, "models", "name"), want, "{gemini}");

    assert_eq!(get("/v1/models/o3", bearer(&secret)).await.0, 404);
    assert_eq!(get("/v1/models/gpt-4o", bearer(&secret)).await.0, 200);
    assert_eq!(get("/v1/models/o3", bearer(TOKEN)).await.0, 200);
    let gemini_one = vec![("x-goog-api-key", secret.clone())];
    assert_eq!(get("/v1beta/models/o3", gemini_one).await.0, 404);
}
