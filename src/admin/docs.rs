//! `/docs`: the admin API described in OpenAPI 3.1, and a small HTML index.

use axum::response::{Html, IntoResponse};
use axum::Json;
use serde_json::{json, Value};

/// (method, path, summary)
const ROUTES: &[(&str, &str, &str)] = &[
    ("get", "/api/providers", "List providers (file-declared and API-managed), keys masked, with health"),
    ("post", "/api/providers", "Create a provider: {\"name\",\"type\",\"config\":{\"base_url\",\"api_key\"}} or the flat form with every option"),
    ("get", "/api/providers/{id}", "One provider (numeric id or name)"),
    ("put", "/api/providers/{id}", "Replace an API-managed provider (file-declared ones answer 409)"),
    ("patch", "/api/providers/{id}", "JSON merge patch of an API-managed provider"),
    ("delete", "/api/providers/{id}", "Delete an API-managed provider"),
    ("get", "/api/providers/{id}/keys", "The provider's keys (masked, with ids)"),
    ("post", "/api/providers/{id}/keys", "Add a key: {\"api_key\", \"enabled\"}"),
    ("patch", "/api/providers/{id}/keys/{key}", "Enable or disable a key: {\"enabled\": false}"),
    ("delete", "/api/providers/{id}/keys/{key}", "Remove a key"),
    ("post", "/api/providers/batch", "All-or-nothing batch: {\"create\":[…],\"update\":[{\"id\",…}],\"delete\":[id…]}"),
    ("get", "/api/providers/health", "Health of every provider and key"),
    ("get", "/api/aliases", "Model aliases (file and API)"),
    ("put", "/api/aliases/{alias}", "Set an alias: {\"target\": \"model\"}"),
    ("delete", "/api/aliases/{alias}", "Delete an API alias"),
    ("get", "/api/settings", "Effective overrides/routing/health settings and where each comes from"),
    ("put", "/api/settings", "Set settings sections (merge patch; null returns a section to the file)"),
    ("get", "/api/config/export", "Export the effective config: ?format=toml|json&include_keys=false (include_keys=true only on the admin listener; tokens are never exported)"),
    ("post", "/api/config/import", "Import API-managed config: ?format=toml|json&dry_run=true reports the changes; &replace=true confirms deleting more than it keeps"),
    ("post", "/api/reload", "Reload the TOML file now"),
    ("get", "/api/logs", "Request logs: ?provider&model&status&min_status&since_ms&until_ms&limit&before_id"),
    ("get", "/api/audit", "Audit trail of admin writes, exports with keys and auth failures: ?limit&before_id&action&since_ms"),
    ("get", "/api/stats/usage", "Usage: ?since_ms&until_ms&bucket_secs&group_by=provider|model&scope=instance|cluster (cluster: every instance, through Redis)"),
    ("get", "/api/stats", "Same as /api/stats/usage"),
    ("get", "/metrics", "Prometheus metrics (text exposition format)"),
];

pub async fn openapi() -> Json<Value> {
    let mut paths = serde_json::Map::new();
    for (method, path, summary) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        if let Some(o) = entry.as_object_mut() {
            o.insert(
                method.to_string(),
                json!({"summary": summary, "security": [{"bearer": []}],
                       "responses": {"200": {"description": "OK"}, "401": {"description": "Missing or wrong token"}, "403": {"description": "Keys in clear asked for on the main port"},
                                     "409": {"description": "Read-only (declared in the file) or name taken"},
                                     "422": {"description": "Validation failed; error.fields lists field and reason"}}}),
            );
        }
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "llm-orchestrator admin API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }))
}

pub async fn page() -> impl IntoResponse {
    let rows: String = ROUTES
        .iter()
        .map(|(m, p, s)| {
            format!(
                "<tr><td><code>{}</code></td><td><code>{p}</code></td><td>{}</td></tr>",
                m.to_uppercase(),
                html_escape(s)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>llm-orchestrator admin API</title>\
         <style>body{{font-family:system-ui;margin:2rem}}td{{padding:.2rem .6rem;vertical-align:top}}</style>\
         <h1>llm-orchestrator admin API</h1><p>Every route needs <code>Authorization: Bearer &lt;ADMIN_TOKEN&gt;</code> \
         (else AUTH_TOKEN); this page and the OpenAPI document are public on the admin listener only. \
         Machine-readable: <a href=\"/docs/openapi.json\">/docs/openapi.json</a>.</p><table>{rows}</table>"
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
