//! The admin API: providers, keys, aliases, settings, batch, export/import,
//! validation, the file/API precedence rule, persistence across restarts
//! (SIGKILL included), request logs and usage.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::MockOpenAi;

struct Admin<'a> {
    gw: &'a Gateway,
    base: String,
}

impl<'a> Admin<'a> {
    fn main_port(gw: &'a Gateway) -> Self {
        Admin {
            gw,
            base: gw.base.clone(),
        }
    }
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut req = client
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .bearer_auth(TOKEN);
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
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn providers_created_through_the_api_serve_the_next_request() {
    let mock = MockOpenAi::start("api").await;
    let gw = Gateway::start("").await;
    let admin = Admin::main_port(&gw);
    assert_eq!(gw.chat(&hello("gpt-4o-mini")).await.status(), 404);

    // The original README's create body, as written there.
    let (status, created) = admin
        .post(
            "/api/providers",
            json!({"name": "OpenAI", "type": "openai",
            "config": {"base_url": mock.base_url(), "api_key": "sk-created-0000000001"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let shown = created.to_string();
    assert!(
        !shown.contains("0000000001"),
        "key material is never returned: {shown}"
    );
    assert_eq!(created["provider"]["keys"][0]["key"], "sk-…0001");

    let r = gw.chat(&hello("gpt-4o-mini")).await;
    assert_eq!(r.status(), 200, "live for the next request, no restart");
    assert_eq!(
        mock.requests()[0].header("authorization").as_deref(),
        Some("Bearer sk-created-0000000001")
    );

    let (_, list) = admin.get("/api/providers").await;
    assert_eq!(names(&list), vec!["OpenAI"]);
    assert_eq!(list["data"][0]["source"], "api");
    let id = list["data"][0]["id"].as_i64().expect("numeric id");

    // PATCH, then GET by id and by name.
    let (status, _) = admin
        .call(
            "PATCH",
            &format!("/api/providers/{id}"),
            Some(json!({"weight": 7, "models": ["gpt-4o-mini"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, by_name) = admin.get("/api/providers/OpenAI").await;
    assert_eq!(by_name["weight"], 7);
    assert_eq!(
        gw.chat(&hello("other-model")).await.status(),
        404,
        "models list now applies"
    );

    let (status, _) = admin
        .call("DELETE", &format!("/api/providers/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(gw.chat(&hello("gpt-4o-mini")).await.status(), 404);
}

#[tokio::test]
async fn invalid_writes_are_422_with_field_paths_and_change_nothing() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start("").await;
    let admin = Admin::main_port(&gw);
    let ok = json!({"name": "a", "type": "openai", "base_url": mock.base_url(), "api_keys": ["sk-a-000000000001"]});
    assert_eq!(admin.post("/api/providers", ok.clone()).await.0, 201);

    let cases = [
        (
            json!({"name": "b", "type": "openai", "base_url": "ftp://x"}),
            "base_url",
        ),
        (
            json!({"name": "b", "type": "openai", "base_url": mock.base_url(), "weight": 0}),
            "weight",
        ),
        (
            json!({"name": "b", "type": "mystery", "base_url": mock.base_url()}),
            "type",
        ),
        (
            json!({"name": "b", "type": "openai", "base_url": mock.base_url(), "wieght": 2}),
            "wieght",
        ),
        (
            json!({"type": "openai", "base_url": mock.base_url()}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = admin.post("/api/providers", body).await;
        assert_eq!(status, 422, "{err}");
        let fields: Vec<&str> = err["error"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert!(
            fields.iter().any(|f| f.ends_with(field)),
            "{field} not in {fields:?}"
        );
    }
    let (status, err) = admin.call("POST", "/api/providers", None).await;
    assert!(status == 400 || status == 422, "{status} {err}");
    let raw = reqwest::Client::new()
        .post(gw.url("/api/providers"))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), 400);
    assert_eq!(
        admin.post("/api/providers", ok).await.0,
        409,
        "the name exists"
    );
    let (_, list) = admin.get("/api/providers").await;
    assert_eq!(names(&list), vec!["a"], "nothing else was written");
    assert_eq!(gw.chat(&hello("m")).await.status(), 200);
}

#[tokio::test]
async fn file_declared_providers_are_read_only_through_the_api() {
    let mock = MockOpenAi::start("f").await;
    let toml = format!(
        "[aliases]\nfast = \"m\"\n{}",
        provider("from-file", &mock.base_url(), &["sk-f-000000000001"], "")
    );
    let gw = Gateway::start(&toml).await;
    let admin = Admin::main_port(&gw);
    let (_, list) = admin.get("/api/providers").await;
    assert_eq!(list["data"][0]["source"], "file");
    assert_eq!(list["data"][0]["read_only"], true);
    for (method, body) in [
        (
            "PUT",
            Some(json!({"type": "openai", "base_url": mock.base_url()})),
        ),
        ("PATCH", Some(json!({"weight": 2}))),
        ("DELETE", None),
    ] {
        let (status, err) = admin.call(method, "/api/providers/from-file", body).await;
        assert_eq!(status, 409, "{method}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("gateway.toml"),
            "{err}"
        );
    }
    let (status, _) = admin
        .post(
            "/api/providers",
            json!({"name": "from-file", "type": "openai", "base_url": mock.base_url()}),
        )
        .await;
    assert_eq!(status, 409, "the API cannot shadow a file provider");
    assert_eq!(
        admin
            .call("PUT", "/api/aliases/fast", Some(json!({"target": "x"})))
            .await
            .0,
        409
    );
    assert_eq!(gw.chat(&hello("m")).await.status(), 200);
}

#[tokio::test]
async fn keys_can_be_added_disabled_and_removed_without_resending_the_others() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start("").await;
    let admin = Admin::main_port(&gw);
    let (_, created) = admin
        .post("/api/providers", json!({"name": "a", "type": "openai", "base_url": mock.base_url(), "api_keys": ["sk-first-000000001"]}))
        .await;
    let id = created["provider"]["id"].as_i64().expect("id");
    let (status, added) = admin
        .post(
            &format!("/api/providers/{id}/keys"),
            json!({"api_key": "sk-second-00000002"}),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let second = added["key"]["id"].as_str().expect("key id").to_string();
    let (_, keys) = admin.get(&format!("/api/providers/{id}/keys")).await;
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(2));
    let first = keys["data"][0]["id"].as_str().expect("id").to_string();

    // Disable the first key: only the second is used.
    let (status, _) = admin
        .call(
            "PATCH",
            &format!("/api/providers/{id}/keys/{first}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    for _ in 0..4 {
        assert_eq!(gw.chat(&hello("m")).await.status(), 200);
    }
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.header("authorization").as_deref() == Some("Bearer sk-second-00000002")));

    let (status, _) = admin
        .call(
            "DELETE",
            &format!("/api/providers/{id}/keys/{second}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, keys) = admin.get(&format!("/api/providers/{id}/keys")).await;
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(keys["data"][0]["enabled"], false);
}

#[tokio::test]
async fn batch_writes_are_all_or_nothing_with_per_item_errors() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start("").await;
    let admin = Admin::main_port(&gw);
    let p = |name: &str| json!({"name": name, "type": "openai", "base_url": mock.base_url(), "api_keys": ["sk-x-000000000001"]});
    let (status, err) = admin
        .post("/api/providers/batch", json!({"create": [p("one"), p("two"), {"name": "three", "type": "openai", "base_url": "nope"}]}))
        .await;
    assert_eq!(status, 422, "{err}");
    let fields: Vec<&str> = err["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(
        fields.iter().any(|f| f.starts_with("create[2]")),
        "{fields:?}"
    );
    assert!(
        names(&admin.get("/api/providers").await.1).is_empty(),
        "nothing was written"
    );

    let (status, ok) = admin
        .post(
            "/api/providers/batch",
            json!({"create": [p("one"), p("two"), p("three")]}),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["results"].as_array().map(Vec::len), Some(3));
    let (status, _) = admin
        .post(
            "/api/providers/batch",
            json!({"update": [{"id": "two", "weight": 9}], "delete": ["one", "three"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = admin.get("/api/providers").await;
    assert_eq!(names(&list), vec!["two"]);
    assert_eq!(list["data"][0]["weight"], 9);
}

#[tokio::test]
async fn aliases_and_settings_apply_at_once() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start(&provider(
        "a",
        &mock.base_url(),
        &["sk-a-000000000001"],
        "models = [\"gpt-4o-mini\"]",
    ))
    .await;
    let admin = Admin::main_port(&gw);
    assert_eq!(
        admin
            .call(
                "PUT",
                "/api/aliases/quick",
                Some(json!({"target": "gpt-4o-mini"}))
            )
            .await
            .0,
        200
    );
    assert_eq!(gw.chat(&hello("quick")).await.status(), 200);
    let (status, _) = admin
        .call(
            "PUT",
            "/api/settings",
            Some(json!({"overrides": {"set": {"max_tokens": 77}}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(gw.chat(&hello("quick")).await.status(), 200);
    assert_eq!(mock.requests()[1].json()["max_tokens"], 77);
    let (_, settings) = admin.get("/api/settings").await;
    assert_eq!(settings["overrides"]["source"], "api");
    assert_eq!(settings["routing"]["source"], "file");
    let (status, err) = admin
        .call(
            "PUT",
            "/api/settings",
            Some(json!({"routing": {"max_attempts": 0}})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(
        admin.call("DELETE", "/api/aliases/quick", None).await.0,
        200
    );
    assert_eq!(gw.chat(&hello("quick")).await.status(), 404);
}

#[tokio::test]
async fn export_masks_keys_and_import_has_a_dry_run() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start_with(
        "",
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = Admin::main_port(&gw);
    let admin_listener = Admin {
        gw: &gw,
        base: gw.admin.clone().expect("admin listener"),
    };
    admin
        .post("/api/providers", json!({"name": "a", "type": "openai", "base_url": mock.base_url(), "api_keys": ["sk-export-00000001"]}))
        .await;
    let (_, exported) = admin.get("/api/config/export?format=json").await;
    assert!(
        !exported.to_string().contains("00000001"),
        "masked by default"
    );
    // Keys in clear: only on the admin listener.
    let (status, _) = admin
        .get("/api/config/export?format=json&include_keys=true")
        .await;
    assert_eq!(status, 403);
    let (_, with_keys) = admin_listener
        .get("/api/config/export?format=json&include_keys=true")
        .await;
    assert!(with_keys.to_string().contains("sk-export-00000001"));
    let toml_text = reqwest::Client::new()
        .get(gw.url("/api/config/export?format=toml"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("text");
    assert!(
        toml_text.contains("[[providers]]") && toml_text.contains("name = \"a\""),
        "{toml_text}"
    );

    // Re-import the masked export plus one more provider: dry run first.
    let mut doc = exported.clone();
    doc["providers"]
        .as_array_mut()
        .expect("providers")
        // `b` serves another model, so the request below can only go to `a`.
        .push(json!({"name": "b", "type": "openai", "base_url": mock.base_url(), "models": ["other"]}));
    let (status, report) = admin
        .post("/api/config/import?dry_run=true", doc.clone())
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changes"]["providers"]["added"], json!(["b"]));
    assert_eq!(
        names(&admin.get("/api/providers").await.1),
        vec!["a"],
        "a dry run writes nothing"
    );
    let (status, _) = admin.post("/api/config/import", doc).await;
    assert_eq!(status, 200);
    assert_eq!(names(&admin.get("/api/providers").await.1), vec!["a", "b"]);
    // The masked key was resolved back to the stored one.
    assert_eq!(gw.chat(&hello("m")).await.status(), 200);
    assert!(mock
        .requests()
        .iter()
        .any(|r| r.header("authorization").as_deref() == Some("Bearer sk-export-00000001")));
}

#[tokio::test]
async fn api_changes_survive_a_sigkill_and_restart() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start("").await;
    let mut acknowledged = Vec::new();
    {
        let admin = Admin::main_port(&gw);
        for i in 0..10 {
            let (status, _) = admin
                .post(
                    "/api/providers",
                    json!({"name": format!("p{i}"), "type": "openai", "base_url": mock.base_url()}),
                )
                .await;
            assert_eq!(status, 201);
            acknowledged.push(format!("p{i}"));
        }
    }
    let gw = gw.restart().await;
    let admin = Admin::main_port(&gw);
    let (_, list) = admin.get("/api/providers").await;
    assert_eq!(
        names(&list),
        acknowledged,
        "every acknowledged change is present after SIGKILL"
    );
    assert_eq!(gw.chat(&hello("m")).await.status(), 200);
}

#[tokio::test]
async fn request_logs_and_usage_are_recorded_off_the_hot_path() {
    let mock = MockOpenAi::start("a").await;
    let gw = Gateway::start(&provider(
        "logged",
        &mock.base_url(),
        &["sk-l-000000000001"],
        "",
    ))
    .await;
    for _ in 0..5 {
        assert_eq!(gw.chat(&hello("gpt-x")).await.status(), 200);
    }
    assert_eq!(gw.chat(&hello("")).await.status(), 400);
    let admin = Admin::main_port(&gw);
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let (_, page) = admin.get("/api/logs?provider=logged").await;
        if page["items"].as_array().map_or(0, Vec::len) >= 5 {
            break page;
        }
        assert!(Instant::now() < deadline, "logs not written: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let row = &page["items"][0];
    assert_eq!(row["model"], "gpt-x");
    assert_eq!(row["upstream_model"], "gpt-x");
    assert_eq!(row["status"], 200);
    assert_eq!(row["key"], "sk-…0001");
    assert!(row["prompt_tokens"].as_u64().unwrap_or(0) > 0, "{row}");
    // The 400 was the last request: its row may be in a later batch.
    let errors = loop {
        let (_, errors) = admin.get("/api/logs?min_status=400").await;
        if errors["items"].as_array().map_or(0, Vec::len) >= 1 || Instant::now() >= deadline {
            break errors;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(errors["items"].as_array().map(Vec::len), Some(1));
    let (_, usage) = admin.get("/api/stats/usage?group_by=provider").await;
    let logged = usage["data"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["group"] == "logged")
        .cloned()
        .expect("row");
    assert_eq!(logged["requests"], 5);
    assert_eq!(logged["error_rate"], 0.0);
    assert_eq!(usage["log_rows_dropped"], 0);
    assert!(logged["completion_tokens"].as_u64().unwrap_or(0) > 0);
}

#[tokio::test]
async fn the_admin_api_has_its_own_listener_and_needs_the_token() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let addr = probe.local_addr().expect("addr").to_string();
    drop(probe);
    let gw = Gateway::start_with("", &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", &addr)]).await;
    let admin_base = gw.admin.clone().expect("admin listener");
    let admin = Admin {
        gw: &gw,
        base: admin_base.clone(),
    };
    assert_eq!(admin.get("/api/providers").await.0, 200);
    let r = reqwest::get(format!("{admin_base}/api/providers"))
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .get(format!("{admin_base}/api/providers"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let docs = reqwest::get(format!("{admin_base}/docs/openapi.json"))
        .await
        .expect("docs");
    let spec: Value = docs.json().await.expect("json");
    assert!(spec["paths"]["/api/providers"]["post"].is_object());
    let _ = admin.gw;
}

/// Every route the OpenAPI document lists (generated from the code) refuses
/// a missing and a wrong token, on the admin listener and on the main port,
/// and changes nothing.
#[tokio::test]
async fn every_admin_route_refuses_missing_and_wrong_tokens() {
    let gw = Gateway::start_with(
        &provider(
            "filed",
            "http://127.0.0.1:9/v1",
            &["sk-filed-000000001"],
            "",
        ),
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let client = reqwest::Client::new();
    let spec: Value = client
        .get(format!("{admin}/docs/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    let paths = spec["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, methods) in paths {
        let concrete = path
            .replace("{id}", "filed")
            .replace("{key}", "abc")
            .replace("{alias}", "fast");
        for (method, op) in methods.as_object().expect("methods") {
            // The console's files and the description itself are public on
            // the admin listener; the document says so (no bearer-only
            // `security`), and tests/openapi.rs checks which routes may be.
            if op["security"] != json!([{"bearer": []}]) {
                continue;
            }
            for base in [&admin, &gw.base] {
                for token in [None, Some("wrong-token")] {
                    let mut req = client
                        .request(
                            method.to_uppercase().parse().expect("method"),
                            format!("{base}{concrete}"),
                        )
                        .json(&json!({"name": "x", "type": "openai"}));
                    if let Some(t) = token {
                        req = req.bearer_auth(t);
                    }
                    let r = req.send().await.expect("send");
                    assert_eq!(r.status(), 401, "{method} {base}{concrete} with {token:?}");
                    let body: Value = r.json().await.expect("JSON error");
                    assert!(
                        body["error"]["message"]
                            .as_str()
                            .is_some_and(|m| !m.is_empty()),
                        "{method} {concrete}: {body}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4 * 20, "only {checked} route checks");
    // /metrics is an admin route too.
    let r = client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    // Nothing changed.
    let r = client
        .get(format!("{admin}/api/providers"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list");
    let list: Value = r.json().await.expect("json");
    assert_eq!(names(&list), vec!["filed"]);
}

#[tokio::test]
async fn bad_query_strings_get_json_errors() {
    let gw = Gateway::start("").await;
    let admin = Admin::main_port(&gw);
    let (status, body) = admin.get("/api/logs?status=abc").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("status")),
        "{body}"
    );
    let (status, body) = admin.get("/api/stats/usage?group_by=colour").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("colour")));
    let (status, _) = admin.get("/api/config/export?include_keys=maybe").await;
    assert_eq!(status, 400);
}

/// Under load, request-log rows are written in batches (far fewer
/// transactions than rows), every request is accounted for (written or
/// counted as dropped), and the rows are queryable.
#[tokio::test]
async fn request_logs_are_written_in_batches_under_load() {
    let mock = MockOpenAi::start("load").await;
    let gw = Gateway::start(&provider(
        "load",
        &mock.base_url(),
        &["sk-load-00000001"],
        "",
    ))
    .await;
    let total = 2_000usize;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..64 {
        let (sent, url) = (sent.clone(), gw.url("/v1/chat/completions"));
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let r = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&hello("gpt-4o-mini"))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let admin = Admin::main_port(&gw);
    let metric = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (written, dropped, batches) = loop {
        let (_, text) = admin.get("/metrics").await;
        let text = text.as_str().unwrap_or_default().to_string();
        let written = metric(&text, "llm_log_rows_written_total");
        let dropped = metric(&text, "llm_log_rows_dropped_total");
        if written + dropped >= total as u64 {
            break (written, dropped, metric(&text, "llm_log_batches_total"));
        }
        assert!(
            Instant::now() < deadline,
            "only {written} written + {dropped} dropped of {total}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(written + dropped, total as u64);
    assert_eq!(dropped, 0, "a 16k-row channel should not drop at this load");
    assert!(
        batches * 10 <= written,
        "{batches} transactions for {written} rows: not batched"
    );
    // The rows are there: the usage query counts them all.
    let (status, usage) = admin.get("/api/stats/usage").await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["data"][0]["requests"], total as u64, "{usage}");
    assert_eq!(usage["log_rows_dropped"], 0);
}

/// A provider created with the original short body shows the weight and
/// `enabled` in force, not nothing.
#[tokio::test]
async fn providers_show_effective_weight_and_enabled() {
    let gw = Gateway::start("").await;
    let admin = Admin::main_port(&gw);
    let (status, created) = admin
        .post(
            "/api/providers",
            json!({"name": "short", "type": "openai",
                "config": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-short-00000001"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["provider"]["enabled"], true);
    assert_eq!(created["provider"]["weight"], 1);
    let (_, list) = admin.get("/api/providers").await;
    assert_eq!(list["data"][0]["enabled"], true, "{list}");
    assert_eq!(list["data"][0]["weight"], 1, "{list}");
    let (status, _) = admin
        .call("PATCH", "/api/providers/short", Some(json!({"weight": 5})))
        .await;
    assert_eq!(status, 200);
    let (_, one) = admin.get("/api/providers/short").await;
    assert_eq!(one["weight"], 5);
}
