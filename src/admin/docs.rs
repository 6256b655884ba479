//! `/docs`: the admin API described in OpenAPI 3.1, and a small HTML index.
//!
//! The document is derived from the router itself (`routes.rs` registers
//! every handler through `utoipa-axum`, with the path and method its
//! `#[utoipa::path]` names, and hands the result to these handlers) and
//! from the typed bodies: there is no second route list to keep in step.

use axum::response::{Html, IntoResponse};
use axum::{Extension, Json};
use serde_json::Value;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};

/// The served document, as JSON: the router's paths and schemas with the
/// API's title, version and security scheme.
#[derive(Clone)]
pub struct Document(pub Arc<Value>);

impl Document {
    pub fn new(described: OpenApi) -> Document {
        Document(Arc::new(render(complete(described))))
    }
}

/// The router's description with what no route says: title, version,
/// description and the bearer scheme.
fn complete(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("llm-orchestrator admin API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Every `/api/*` route and `/metrics` need `Authorization: Bearer <ADMIN_TOKEN>` \
             (else AUTH_TOKEN). `/docs` and this document are public on the admin listener and \
             need the token on the main port; the console's static files are public. Errors \
             are JSON (`ErrorBody`) whatever the status.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}

/// The document as JSON, with the one response every route behind the
/// bearer check shares (401) added to each, rather than repeated in every
/// `#[utoipa::path]`.
fn render(doc: OpenApi) -> Value {
    let mut v = serde_json::to_value(&doc).unwrap_or(Value::Null);
    let unauthorized = serde_json::json!({
        "description": "Missing or wrong token (`missing_token`, `invalid_token`, `admin_token_unset`)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    });
    if let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in op.values_mut() {
                let guarded = op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
                if let (true, Some(r)) = (
                    guarded,
                    op.get_mut("responses").and_then(Value::as_object_mut),
                ) {
                    r.entry("401").or_insert_with(|| unauthorized.clone());
                }
            }
        }
    }
    v
}

/// The OpenAPI document.
#[utoipa::path(
    get,
    path = "/docs/openapi.json",
    tag = "docs",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = serde_json::Value)),
    security((), ("bearer" = [])),
)]
pub async fn openapi(Extension(doc): Extension<Document>) -> Json<Value> {
    Json(doc.0.as_ref().clone())
}

/// A human-readable index of the routes.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "docs",
    responses((status = 200, description = "An HTML table of every route", body = String, content_type = "text/html")),
    security((), ("bearer" = [])),
)]
pub async fn page(Extension(doc): Extension<Document>) -> impl IntoResponse {
    let mut rows = String::new();
    if let Some(paths) = doc.0["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                // The summary (a handler's first doc line), else what its
                // success answers.
                let what = op["summary"]
                    .as_str()
                    .or_else(|| {
                        op["responses"]
                            .as_object()
                            .and_then(|r| r.values().next())
                            .and_then(|r| r["description"].as_str())
                    })
                    .unwrap_or("");
                rows.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                    method.to_uppercase(),
                    html_escape(path),
                    html_escape(what)
                ));
            }
        }
    }
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>llm-orchestrator admin API</title>\
         <style>body{{font-family:system-ui;margin:2rem}}td{{padding:.2rem .6rem;vertical-align:top}}</style>\
         <h1>llm-orchestrator admin API</h1><p>Every <code>/api</code> route needs <code>Authorization: Bearer &lt;ADMIN_TOKEN&gt;</code> \
         (else AUTH_TOKEN); this page and the OpenAPI document are public on the admin listener only. \
         Machine-readable, with every body's schema: <a href=\"/docs/openapi.json\">/docs/openapi.json</a>.</p><table>{rows}</table>"
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
