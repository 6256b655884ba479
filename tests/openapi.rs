//! The admin API's OpenAPI document (`/docs/openapi.json`) against the
//! running gateway: it lists exactly the routes the router answers, every
//! route that reads a body documents the body's schema, every reference
//! resolves, a real OpenAPI 3.1 validator accepts it, and validation errors
//! name fields by their path in the body.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::gateway::{Gateway, TOKEN};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

struct Api {
    gw: Gateway,
    admin: String,
    client: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let gw = Gateway::start_with(
            "",
            &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
        )
        .await;
        let admin = gw.admin.clone().expect("admin listener");
        let client = reqwest::Client::builder()
            // `/admin` answers a redirect: see it, not where it leads.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Api { gw, admin, client }
    }

    async fn spec(&self) -> Value {
        let r = self
            .client
            .get(format!("{}/docs/openapi.json", self.admin))
            .send()
            .await
            .expect("spec");
        assert_eq!(r.status(), 200);
        r.json().await.expect("JSON document")
    }

    /// (status, body as JSON or as a string)
    async fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
        let mut req = self
            .client
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.admin),
            )
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_vec());
        }
        let r = req.send().await.expect("send");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(body.to_string().as_bytes()))
            .await
    }
}

fn fill(path: &str, id: &str, key: &str) -> String {
    path.replace("{id}", id)
        .replace("{key}", key)
        .replace("{alias}", "fast")
        .replace("{file}", "app.js")
}

/// The router's own answer for a path it has no route for, or a method the
/// path does not take — as opposed to a handler's answer (even a 404 for a
/// provider that does not exist).
fn not_routed(status: u16, body: &Value) -> bool {
    let message = body["error"]["message"].as_str().unwrap_or("");
    status == 405 || (status == 404 && message.starts_with("no admin route"))
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_answers() {
    let api = Api::start().await;
    let spec = api.spec().await;
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 24, "{} paths", paths.len());
    let mut answered = 0;
    for (path, item) in paths {
        let documented: BTreeSet<String> = item
            .as_object()
            .expect("path item")
            .keys()
            .filter(|k| METHODS.contains(&k.to_uppercase().as_str()))
            .map(|k| k.to_uppercase())
            .collect();
        // Ids that name nothing: a handler answers 404 for them and
        // changes nothing, while the router's own 404/405 say "no route".
        let concrete = fill(path, "no-such-provider", "no-such-key");
        for method in METHODS {
            let body = (method != "GET").then_some(b"{}".as_slice());
            let (status, text) = api.call(method, &concrete, body).await;
            let routed = !not_routed(status, &text);
            assert_eq!(
                routed,
                documented.contains(method),
                "{method} {path}: the router says {status} {text}, the document lists {documented:?}"
            );
            answered += usize::from(routed);
        }
    }
    assert!(answered >= 30, "only {answered} routes answered");
    // Every route is registered through `routes!` (from its
    // `#[utoipa::path]`): a plain `.route(...)` would serve a path the
    // document never lists, and the probe above only sees listed paths.
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/admin/routes.rs"))
            .expect("routes.rs");
    for bypass in [".route(", ".route_service(", ".nest(", ".nest_service("] {
        assert!(
            !source.contains(bypass),
            "src/admin/routes.rs registers a route with `{bypass}`: use `.routes(routes!(handler))` so it is documented"
        );
    }
    // What needs the token says so, and only the description and the
    // console are public.
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let public = path == "/"
                || path.starts_with("/{")
                || path.starts_with("/admin")
                || path.starts_with("/docs");
            if public {
                continue;
            }
            assert_eq!(
                op["security"],
                json!([{"bearer": []}]),
                "{method} {path} must declare the bearer token"
            );
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} must document 401"
            );
        }
    }
    drop(api.gw);
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_route_that_reads_a_body_documents_its_schema() {
    let api = Api::start().await;
    let (status, created) = api
        .json(
            "POST",
            "/api/providers",
            json!({"name": "p1", "type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_keys": ["sk-openapi-00000001"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["provider"]["keys"][0]["id"]
        .as_str()
        .expect("key id")
        .to_string();
    let spec = api.spec().await;
    let schemas = spec["components"]["schemas"]
        .as_object()
        .expect("component schemas");
    let mut all_refs = Vec::new();
    refs(&spec, &mut all_refs);
    for r in &all_refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }
    let mut with_body = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if !["post", "put", "patch"].contains(&method.as_str()) {
                continue;
            }
            // A handler that reads the body says so when it is not JSON.
            let (status, text) = api
                .call(
                    &method.to_uppercase(),
                    &fill(path, "p1", &key),
                    Some(b"{not json"),
                )
                .await;
            let reads_body = status == 400
                && text["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not valid JSON"));
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            if reads_body {
                with_body += 1;
                let name = schema["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .unwrap_or_else(|| panic!("{method} {path}: no body schema in {op}"));
                let props = schema_properties(&schemas[name]);
                assert!(
                    !props.is_empty(),
                    "{method} {path}: schema {name} names no field"
                );
            } else {
                assert!(
                    op["requestBody"].is_null(),
                    "{method} {path} documents a body it never reads ({status} {text})"
                );
            }
        }
    }
    assert!(with_body >= 9, "only {with_body} routes read a body");
    // The provider's body is the file's provider type, field for field.
    let provider = schema_properties(&schemas["ProviderSection"]);
    for field in ["name", "type", "base_url", "api_keys", "weight", "timeouts"] {
        assert!(provider.contains(field), "{field} not in {provider:?}");
    }
    assert!(!provider.contains("literal_keys"), "internal field shown");
}

fn schema_properties(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_real_openapi_3_1_validator_accepts_the_document() {
    let api = Api::start().await;
    let spec = api.spec().await;
    assert_eq!(spec["openapi"], "3.1.0");
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate\n\
             from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator\n\
             validate(json.load(sys.stdin), cls=OpenAPIV31SpecValidator)\n\
             print('valid')",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/bootstrap test installs it and openapi-spec-validator)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(spec.to_string().as_bytes())
            .expect("write spec");
    }
    let out = child.wait_with_output().expect("validator");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("valid"),
        "openapi-spec-validator (scripts/bootstrap test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn validation_errors_name_each_field_by_its_path() {
    let api = Api::start().await;
    let p = |extra: Value| {
        let mut v = json!({"name": "b", "type": "openai", "base_url": "http://127.0.0.1:9/v1"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    let fields = |err: &Value| -> Vec<String> {
        err["error"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cases = [
        (
            "POST",
            "/api/providers",
            p(json!({"timeouts": {"connect_secs": "soon"}})),
            "timeouts.connect_secs",
        ),
        (
            "POST",
            "/api/providers",
            p(json!({"models": ["a", 7]})),
            "models[1]",
        ),
        (
            "POST",
            "/api/providers",
            p(json!({"overrides": {"vendor": {"sett": {}}}})),
            "overrides.vendor.sett",
        ),
        (
            "POST",
            "/api/providers/batch",
            json!({"create": [p(json!({"timeouts": {"idle_secs": []}}))]}),
            "create[0].timeouts.idle_secs",
        ),
        (
            "POST",
            "/api/providers/batch",
            json!({"delete": [{"id": 1}]}),
            "delete[0]",
        ),
        (
            "PUT",
            "/api/settings",
            json!({"routing": {"max_attempts": "many"}}),
            "routing.max_attempts",
        ),
        (
            "PUT",
            "/api/settings",
            json!({"health": {"probe_timeout_sec": 3}}),
            "health.probe_timeout_sec",
        ),
        (
            "POST",
            "/api/config/import",
            json!({"providers": [{"name": "i", "type": "openai", "base_url": 5}]}),
            "providers[0].base_url",
        ),
        (
            "PUT",
            "/api/aliases/fast",
            json!({"target": ["a"]}),
            "target",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, err) = api.json(method, path, body.clone()).await;
        assert_eq!(status, 422, "{method} {path} {body}: {err}");
        assert_eq!(err["error"]["code"], "validation_failed", "{err}");
        assert!(
            fields(&err).iter().any(|f| f == field),
            "{method} {path} {body}: {field} not in {:?}",
            fields(&err)
        );
    }
    // Nothing was written.
    let (_, list) = api.call("GET", "/api/providers", None).await;
    assert_eq!(list["data"], json!([]), "{list}");
    let (_, settings) = api.call("GET", "/api/settings", None).await;
    assert_eq!(settings["routing"]["source"], "file", "{settings}");
}

/// Run `python3 -c script` with `input` on stdin: (success, stdout+stderr).
fn python(script: &str, input: &Value) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/bootstrap test installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Real answers of the running gateway validate against the schemas the
/// document gives for them (JSON Schema 2020-12, as OpenAPI 3.1 uses), with
/// the `jsonschema` package openapi-spec-validator brings.
#[tokio::test]
async fn answers_match_their_documented_schemas() {
    let gw = Gateway::start_with(
        &support::gateway::provider(
            "filed",
            "http://127.0.0.1:9/v1",
            &["sk-filed-000000001"],
            "",
        ),
        &[("AUTH_TOKEN", TOKEN), ("ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let admin = gw.admin.clone().expect("admin listener");
    let api = Api {
        gw,
        admin,
        client: reqwest::Client::new(),
    };
    let spec = api.spec().await;
    let mut samples = Vec::new();
    let mut sample = |path: &str, method: &str, status: u16, body: Value| {
        samples.push(
            json!({"path": path, "method": method, "status": status.to_string(), "body": body}),
        );
    };
    let (status, body) = api
        .json(
            "POST",
            "/api/providers",
            json!({"name": "p1", "type": "openai", "config": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-openapi-00000001"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    sample("/api/providers", "post", status, body);
    for (method, path, doc_path, request) in [
        ("GET", "/api/providers", "/api/providers", None),
        ("GET", "/api/providers/p1", "/api/providers/{id}", None),
        ("GET", "/api/providers/filed", "/api/providers/{id}", None),
        (
            "GET",
            "/api/providers/p1/keys",
            "/api/providers/{id}/keys",
            None,
        ),
        ("GET", "/api/providers/nothing", "/api/providers/{id}", None),
        (
            "PATCH",
            "/api/providers/p1",
            "/api/providers/{id}",
            Some(json!({"weight": 3, "models": null})),
        ),
        (
            "POST",
            "/api/providers/p1/keys",
            "/api/providers/{id}/keys",
            Some(json!({"api_key": "sk-openapi-00000002", "enabled": false})),
        ),
        (
            "PUT",
            "/api/aliases/fast",
            "/api/aliases/{alias}",
            Some(json!({"target": "gpt-4o"})),
        ),
        ("GET", "/api/aliases", "/api/aliases", None),
        ("DELETE", "/api/aliases/fast", "/api/aliases/{alias}", None),
        (
            "POST",
            "/api/providers",
            "/api/providers",
            Some(json!({"name": "p2", "type": "openai", "base_url": "ftp://x"})),
        ),
        (
            "PATCH",
            "/api/providers/filed",
            "/api/providers/{id}",
            Some(json!({"weight": 2})),
        ),
        ("POST", "/api/reload", "/api/reload", None),
        (
            "POST",
            "/api/providers/batch",
            "/api/providers/batch",
            Some(json!({
                "create": [{"name": "p3", "type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-openapi-00000003"}],
                "update": [{"id": "p1", "weight": 5}],
            })),
        ),
        ("GET", "/api/settings", "/api/settings", None),
        (
            "PUT",
            "/api/settings",
            "/api/settings",
            Some(json!({"routing": {"max_attempts": 2}})),
        ),
        (
            "POST",
            "/api/config/import?dry_run=true",
            "/api/config/import",
            Some(json!({"aliases": {"quick": "gpt-4o"}})),
        ),
        (
            "POST",
            "/api/config/import",
            "/api/config/import",
            Some(json!({"aliases": {"quick": "gpt-4o"}})),
        ),
        (
            "POST",
            "/api/config/import",
            "/api/config/import",
            Some(json!({"aliases": {"quick": "gpt-4o"}})),
        ),
        ("DELETE", "/api/providers/p1", "/api/providers/{id}", None),
        ("DELETE", "/api/providers/p3", "/api/providers/{id}", None),
    ] {
        let (status, body) = match request {
            Some(b) => api.json(method, path, b).await,
            None => api.call(method, path, None).await,
        };
        sample(doc_path, &method.to_lowercase(), status, body);
    }
    // A request the file's provider fails (nothing listens on port 9): a
    // request-log row with an error, a usage row, and a provider whose
    // health has a last error, so the observed answers are not empty lists.
    assert_eq!(
        api.gw
            .chat(&json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}))
            .await
            .status(),
        502
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, logs) = api.call("GET", "/api/logs", None).await;
        let (_, audit) = api.call("GET", "/api/audit", None).await;
        if logs["items"].as_array().is_some_and(|a| !a.is_empty())
            && audit["data"].as_array().is_some_and(|a| !a.is_empty())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rows written: {logs} {audit}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for (path, doc_path) in [
        ("/api/logs", "/api/logs"),
        ("/api/audit", "/api/audit"),
        ("/api/stats/usage?group_by=provider", "/api/stats/usage"),
        ("/api/stats?bucket_secs=60", "/api/stats"),
        ("/api/providers/health", "/api/providers/health"),
    ] {
        let (status, body) = api.call("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        let rows = match doc_path {
            "/api/logs" => &body["items"],
            "/api/providers/health" => &body["providers"],
            _ => &body["data"],
        };
        assert!(
            rows.as_array().is_some_and(|a| !a.is_empty()),
            "{path}: {body}"
        );
        sample(doc_path, "get", status, body);
    }
    let (ok, out) = python(
        "import json, sys\n\
         from jsonschema import Draft202012Validator\n\
         d = json.load(sys.stdin)\n\
         spec = d['spec']\n\
         bad = []\n\
         for s in d['samples']:\n\
         \x20   op = spec['paths'][s['path']][s['method']]\n\
         \x20   r = op['responses'].get(s['status'])\n\
         \x20   if r is None:\n\
         \x20       bad.append(f\"{s['method']} {s['path']}: status {s['status']} is not documented\")\n\
         \x20       continue\n\
         \x20   schema = dict(r['content']['application/json']['schema'])\n\
         \x20   schema['components'] = spec['components']\n\
         \x20   for e in Draft202012Validator(schema).iter_errors(s['body']):\n\
         \x20       bad.append(f\"{s['method']} {s['path']} {s['status']}: {e.message} at {list(e.absolute_path)}\")\n\
         print('\\n'.join(bad) if bad else f\"{len(d['samples'])} answers valid\")\n\
         sys.exit(1 if bad else 0)",
        &json!({"spec": spec, "samples": samples}),
    );
    assert!(ok, "{out}");
    assert!(out.contains("27 answers valid"), "{out}");
}
