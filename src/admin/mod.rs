//! The admin API: providers, keys, aliases, settings, batch writes,
//! export/import, health, request logs and usage — on its own listener and,
//! optionally, under `/api` on the main port.
//!
//! Every write goes through [`ControlPlane::write`]: validated into the same
//! snapshot the data plane uses, committed to SQLite, swapped in. A
//! rejected write changes nothing. Key material is never returned unless an
//! export explicitly asks for it.

pub mod audit;
mod bodies;
pub mod client;
mod client_keys;
pub mod cluster;
mod console;
mod docs;
pub use routes::{local_router, router};
mod observe;
mod prices;
mod routes;
pub mod serve;
mod settings;
mod transfer;

use crate::config::ProviderSection;
use crate::control::api::{self, FieldError};
use crate::control::{ControlPlane, WriteError};
use crate::store::{AuditQuery, ChangeResult, ConfigChange, LogQuery, UsageQuery};
use audit::Audit;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use axum::Json;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where a copy of the admin router is served. The access rules differ:
/// secrets in clear (an export with keys) only on the admin listener; a
/// tokenless gateway's admin API only for loopback callers of the admin
/// listener; `/docs` public only on the admin listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The dedicated admin listener (`ADMIN_LISTEN`, loopback by default).
    Admin,
    /// `/api/*`, `/docs`, `/metrics` on the main (data-plane) port.
    Main,
    /// The command line's `--offline` calls in its own process.
    Local,
}

impl Listener {
    fn label(self) -> &'static str {
        match self {
            Listener::Admin => "admin",
            Listener::Main => "main",
            Listener::Local => "local",
        }
    }
}

#[derive(Clone)]
pub struct AdminState {
    control: Arc<ControlPlane>,
    listener: Listener,
    audit: Arc<Audit>,
    /// The admin listener's configured address, named in refusals.
    admin_listen: Option<Arc<str>>,
}

/// What an audited call acted on, when the path does not say it (a created
/// provider's name), and whether a read is audited anyway (an export with
/// keys): put in the response's extensions by the handler.
#[derive(Clone)]
struct Audited {
    action: &'static str,
    target: Option<String>,
}

fn audited(mut resp: Response, action: &'static str, target: Option<String>) -> Response {
    resp.extensions_mut().insert(Audited { action, target });
    resp
}

// ---------------------------------------------------------------- errors

pub struct AdminError {
    status: StatusCode,
    message: String,
    code: &'static str,
    fields: Vec<FieldError>,
}

impl AdminError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            message: message.into(),
            code,
            fields: Vec::new(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    fn invalid(fields: Vec<FieldError>) -> Self {
        let summary = fields
            .iter()
            .map(|f| {
                if f.field.is_empty() {
                    f.reason.clone()
                } else {
                    format!("{}: {}", f.field, f.reason)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        AdminError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("validation failed: {summary}"),
            code: "validation_failed",
            fields,
        }
    }
}

impl From<WriteError> for AdminError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(fields) => AdminError::invalid(fields),
            WriteError::Conflict(m) => AdminError::conflict(m),
            WriteError::NotFound(m) => AdminError::not_found(m),
            WriteError::Unavailable(m) => {
                AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            WriteError::Internal(m) => {
                AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
        }
    }
}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
        AdminError::from(WriteError::from(e))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = bodies::ErrorBody {
            error: bodies::ErrorDetail {
                message: self.message,
                kind: "admin_error",
                code: self.code,
                fields: self.fields,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

type AdminResult<T> = Result<T, AdminError>;

async fn not_found(req: Request) -> AdminError {
    AdminError::not_found(format!(
        "no admin route {} {}; GET /docs lists them",
        req.method(),
        req.uri().path()
    ))
}

/// Errors produced by the framework rather than our handlers — an unknown
/// method (405, empty body), a body over the size limit (413), a path
/// segment that is not UTF-8 (400), an extractor's rejection — get the
/// same JSON shape as every other admin error. Our own errors are JSON
/// already and pass untouched.
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; anything longer is not worth echoing.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let allow = parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path: String = path.chars().take(200).collect();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!(
                "{method} is not allowed on {path}; allowed: {}",
                allow.as_deref().unwrap_or("see GET /docs")
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            format!(
                "the request body is larger than the admin API accepts ({} bytes)",
                ADMIN_BODY_LIMIT
            ),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        StatusCode::NOT_FOUND => ("not_found", text),
        s if s.is_server_error() => ("internal", text),
        _ => ("bad_request", text),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message.chars().take(300).collect()
    };
    let mut out = AdminError::new(status, code, message).into_response();
    if let Some(a) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, a.clone());
    }
    out
}

/// axum's default request body limit (`DefaultBodyLimit`), named for the
/// error message.
const ADMIN_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A typed JSON body: not JSON at all is 400 (as for every body), JSON of
/// the wrong shape is 422 naming the field by its path.
fn json_typed<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> AdminResult<T> {
    let value = json_body(bytes)?;
    api::typed(&value).map_err(|e| AdminError::invalid(vec![e]))
}

/// JSON bodies with precise errors (axum's own rejection is plain text).
fn json_body(bytes: &Bytes) -> AdminResult<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| AdminError::bad_request(format!("the body is not valid JSON: {e}")))
}

// ---------------------------------------------------------------- auth

/// The bearer token a request presents, if any.
fn presented_token(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = (v.get(..7)?, v.get(7..)?);
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// The audit target a path names: `/api/providers/{id}/…` -> the id,
/// `/api/aliases/{alias}` -> the alias, else the resource (`settings`).
fn path_target(path: &str) -> Option<&str> {
    let mut parts = path.trim_start_matches('/').split('/');
    let first = parts.next()?;
    let resource = if first == "api" { parts.next()? } else { first };
    Some(
        parts
            .next()
            .filter(|p| !p.is_empty() && *p != "batch")
            .unwrap_or(resource),
    )
}

async fn auth(State(st): State<AdminState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let snap = st.control.current();
    let presented = presented_token(req.headers());
    let fail = |code: &'static str, message: String, who: &str| {
        st.audit.auth_failure(&audit::Event {
            action: "auth_failure",
            who,
            peer,
            listener: st.listener.label(),
            method: method.as_str(),
            path: &path,
            target: None,
            status: 401,
        });
        AdminError::new(StatusCode::UNAUTHORIZED, code, message).into_response()
    };
    let who = match (snap.admin_token.as_deref(), presented) {
        (None, _) => {
            // No token at all: like the data plane, only this machine — and
            // only through the admin listener, which a reverse proxy in
            // front of the main port does not reach.
            let loopback = peer.is_some_and(|p| p.ip().is_loopback());
            if st.listener == Listener::Admin && loopback {
                "loopback".to_string()
            } else {
                let msg = match (&st.admin_listen, st.listener) {
                    (Some(a), Listener::Main) => format!(
                        "the admin API needs a token: set ADMIN_TOKEN or AUTH_TOKEN (without one, only loopback callers of the admin listener {a} are accepted)"
                    ),
                    _ => "the admin API needs a token: set ADMIN_TOKEN or AUTH_TOKEN (without one, only loopback callers of the admin listener are accepted)".to_string(),
                };
                let who = presented.map_or_else(|| "none".to_string(), audit::fingerprint);
                return fail("admin_token_unset", msg, &who);
            }
        }
        (Some(expected), Some(t)) if bool::from(t.ct_eq(expected.as_bytes())) => {
            audit::fingerprint(t)
        }
        (Some(_), Some(t)) => {
            return fail(
                "invalid_token",
                "incorrect bearer token".into(),
                &audit::fingerprint(t),
            )
        }
        (Some(_), None) => {
            return fail(
                "missing_token",
                "send `Authorization: Bearer <token>`".into(),
                "none",
            )
        }
    };
    let resp = next.run(req).await;
    let marked = resp.extensions().get::<Audited>().cloned();
    let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if write || marked.is_some() {
        let (action, target) = match &marked {
            Some(a) => (a.action, a.target.as_deref()),
            None => ("write", None),
        };
        st.audit.record(&audit::Event {
            action,
            who: &who,
            peer,
            listener: st.listener.label(),
            method: method.as_str(),
            path: &path,
            target: target.or_else(|| path_target(&path)),
            status: resp.status().as_u16(),
        });
    }
    resp
}

// ---------------------------------------------------------------- providers

/// One provider as the API shows it: keys masked, source, health.
fn view(st: &AdminState, id: Value, source: &str, name: &str, doc: &Value) -> Value {
    let mut shown = doc.clone();
    let keys = serde_json::to_value(key_views(doc)).unwrap_or(Value::Null);
    api::mask_keys(&mut shown);
    if let Some(o) = shown.as_object_mut() {
        o.remove("api_key");
        o.remove("api_keys");
        o.remove("disabled_api_keys");
        o.insert("id".into(), id);
        o.insert("name".into(), Value::String(name.to_string()));
        o.insert("source".into(), Value::String(source.to_string()));
        o.insert("read_only".into(), Value::Bool(source == "file"));
        o.insert("keys".into(), keys);
        let snap = st.control.current();
        let running = snap.providers.iter().find(|p| p.name == name);
        // Documents created with the original short body leave these out;
        // show the values in force, so a client never has to guess defaults.
        if !o.contains_key("enabled") {
            o.insert("enabled".into(), json!(running.is_none_or(|p| p.enabled)));
        }
        if !o.contains_key("weight") {
            o.insert("weight".into(), json!(running.map_or(1, |p| p.weight)));
        }
        if let Some(p) = running {
            let h = p.health.view();
            let health = bodies::HealthView {
                state: h.state.as_str().to_string(),
                consecutive_errors: h.consecutive_errors,
                last_error: h.last_error.map(|e| bodies::LastErrorView {
                    status: e.status,
                    message: e.message,
                    at_ms: e.at_ms,
                }),
            };
            o.insert(
                "health".into(),
                serde_json::to_value(health).unwrap_or(Value::Null),
            );
        }
    }
    shown
}

/// A provider document's keys as the API shows them (masked, with ids).
fn key_views(doc: &Value) -> Vec<bodies::KeyView> {
    api::doc_keys(doc)
        .into_iter()
        .map(|(k, enabled)| bodies::KeyView {
            id: key_id(&k),
            key: crate::config::mask_secret(&k),
            enabled,
        })
        .collect()
}

/// Stable, public id of a key: a prefix of its fingerprint.
fn key_id(secret: &str) -> String {
    crate::health::fingerprint(secret)[..12].to_string()
}

enum Found {
    File(Box<crate::config::ProviderSection>),
    Api(crate::store::StoredProvider),
}

fn find(st: &AdminState, id: &str) -> AdminResult<Found> {
    let api = st.control.api_config();
    if let Ok(n) = id.parse::<i64>() {
        if let Some(p) = api.providers.iter().find(|p| p.id == n) {
            return Ok(Found::Api(p.clone()));
        }
    }
    if let Some(p) = api.providers.iter().find(|p| p.name == id) {
        return Ok(Found::Api(p.clone()));
    }
    let (file, _) = st.control.file_config();
    if let Some(p) = file.providers.iter().find(|p| p.name == id) {
        return Ok(Found::File(Box::new(p.clone())));
    }
    Err(AdminError::not_found(format!(
        "provider `{id}` does not exist"
    )))
}

fn file_read_only(name: &str, st: &AdminState) -> AdminError {
    let file = st.control.file_path().map_or_else(
        || "the configuration file".to_string(),
        |p| p.display().to_string(),
    );
    AdminError::conflict(format!(
        "provider `{name}` is declared in {file} and is read-only through the API; edit the file (it is hot-reloaded)"
    ))
}

fn api_only(st: &AdminState, id: &str) -> AdminResult<crate::store::StoredProvider> {
    match find(st, id)? {
        Found::Api(p) => Ok(p),
        Found::File(p) => Err(file_read_only(&p.name, st)),
    }
}

#[utoipa::path(
    get,
    path = "/api/providers",
    tag = "providers",
    responses(
        (status = 200, description = "`{object: list, data: [provider…]}`: file-declared and API-managed providers, keys masked, with health", body = bodies::ProviderList),
    ),
    security(("bearer" = [])),
)]
async fn list_providers(State(st): State<AdminState>) -> Json<bodies::ProviderList> {
    let (file, _) = st.control.file_config();
    let mut items: Vec<Value> = file
        .providers
        .iter()
        .map(|p| {
            let doc = serde_json::to_value(p).unwrap_or(Value::Null);
            view(&st, Value::String(p.name.clone()), "file", &p.name, &doc)
        })
        .collect();
    for p in st.control.api_config().providers {
        items.push(view(&st, json!(p.id), "api", &p.name, &p.doc));
    }
    Json(bodies::ProviderList {
        object: "list",
        data: items,
    })
}

#[utoipa::path(
    get,
    path = "/api/providers/{id}",
    tag = "providers",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
    ),
    responses(
        (status = 200, description = "The provider, keys masked, with `source`, `read_only` and health", body = bodies::ProviderView),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_provider(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> AdminResult<Json<Value>> {
    Ok(Json(match find(&st, &id)? {
        Found::File(p) => {
            let doc = serde_json::to_value(&p).unwrap_or(Value::Null);
            view(&st, Value::String(p.name.clone()), "file", &p.name, &doc)
        }
        Found::Api(p) => view(&st, json!(p.id), "api", &p.name, &p.doc),
    }))
}

/// Checks shared by create and rename: a name, not owned by the file.
fn provider_doc(st: &AdminState, body: &Value) -> AdminResult<(String, Value)> {
    let doc = api::normalize_provider(body).map_err(AdminError::invalid)?;
    let name = doc
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            AdminError::invalid(vec![FieldError {
                field: "name".into(),
                reason: "is required".into(),
            }])
        })?;
    api::parse_provider(&doc).map_err(|e| AdminError::invalid(vec![e]))?;
    literal_keys(&doc, "")?;
    let (file, _) = st.control.file_config();
    if file.providers.iter().any(|p| p.name == name) {
        return Err(file_read_only(&name, st));
    }
    Ok((name, doc))
}

/// Keys sent through the admin API are used exactly as given: `${VAR}`
/// references are expanded only in the configuration file, where the
/// operator who controls the environment wrote them. One that looks like a
/// reference is refused (without saying whether such a variable exists), so
/// it is neither expanded — which would hand the gateway's environment, its
/// own AUTH_TOKEN included, to any base_url — nor sent as a literal key.
fn literal_keys(doc: &Value, at: &str) -> AdminResult<()> {
    let errors: Vec<FieldError> = api::doc_keys(doc)
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| crate::config::is_env_reference(k))
        .map(|(i, _)| FieldError {
            field: format!("{at}api_keys[{i}]"),
            reason: "`${VAR}` references are expanded only in the configuration file; send the key itself".into(),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AdminError::invalid(errors))
    }
}

fn name_taken(st: &AdminState, name: &str) -> AdminResult<()> {
    if st
        .control
        .api_config()
        .providers
        .iter()
        .any(|p| p.name == name)
    {
        return Err(AdminError::conflict(format!(
            "provider name `{name}` already exists"
        )));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/providers",
    tag = "providers",
    request_body(content = ProviderSection, description = "A provider document (every option of a `[[providers]]` table), or the original short form `{\"name\", \"type\", \"config\": {\"base_url\", \"api_key\"}}` whose `config` object holds any of them. Unknown fields are refused."),
    responses(
        (status = 201, description = "Created: `{version, provider}`", body = bodies::ProviderWritten),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create_provider(
    State(st): State<AdminState>,
    body: Bytes,
) -> AdminResult<impl IntoResponse> {
    let (name, doc) = provider_doc(&st, &json_body(&body)?)?;
    name_taken(&st, &name)?;
    let (version, results) = st
        .control
        .write(|_, _| {
            Ok(vec![ConfigChange::CreateProvider {
                name: name.clone(),
                doc: doc.clone(),
            }])
        })
        .await?;
    let id = match results.first() {
        Some(ChangeResult::Created { id }) => *id,
        _ => 0,
    };
    let shown = view(&st, json!(id), "api", &name, &doc);
    let resp = (
        StatusCode::CREATED,
        Json(bodies::ProviderWritten {
            version,
            provider: shown,
        }),
    )
        .into_response();
    Ok(audited(resp, "write", Some(name)))
}

#[utoipa::path(
    put,
    path = "/api/providers/{id}",
    tag = "providers",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
    ),
    request_body(content = ProviderSection, description = "The whole provider document (as for create; `name` defaults to the current one). Unknown fields are refused."),
    responses(
        (status = 200, description = "Replaced: `{version, provider}`", body = bodies::ProviderWritten),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn put_provider(
    State(st): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult<Json<bodies::ProviderWritten>> {
    let existing = api_only(&st, &id)?;
    let mut body = json_body(&body)?;
    if body.get("name").is_none() {
        if let Some(o) = body.as_object_mut() {
            o.insert("name".into(), Value::String(existing.name.clone()));
        }
    }
    let (name, doc) = provider_doc(&st, &body)?;
    update(&st, existing.id, name, doc).await
}

#[utoipa::path(
    patch,
    path = "/api/providers/{id}",
    tag = "providers",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
    ),
    request_body(content = bodies::ProviderPatch, description = "JSON merge patch of the provider document"),
    responses(
        (status = 200, description = "Changed: `{version, provider}`", body = bodies::ProviderWritten),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn patch_provider(
    State(st): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult<Json<bodies::ProviderWritten>> {
    let existing = api_only(&st, &id)?;
    let patch = api::normalize_provider(&json_body(&body)?).map_err(AdminError::invalid)?;
    let mut doc = existing.doc.clone();
    api::merge_patch(&mut doc, &patch);
    if let Some(o) = doc.as_object_mut() {
        o.entry("name")
            .or_insert(Value::String(existing.name.clone()));
    }
    let (name, doc) = provider_doc(&st, &doc)?;
    update(&st, existing.id, name, doc).await
}

async fn update(
    st: &AdminState,
    id: i64,
    name: String,
    doc: Value,
) -> AdminResult<Json<bodies::ProviderWritten>> {
    let (version, _) = st
        .control
        .write(|_, _| {
            Ok(vec![ConfigChange::UpdateProvider {
                id,
                name: name.clone(),
                doc: doc.clone(),
            }])
        })
        .await?;
    Ok(Json(bodies::ProviderWritten {
        version,
        provider: view(st, json!(id), "api", &name, &doc),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/providers/{id}",
    tag = "providers",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
    ),
    responses(
        (status = 200, description = "Deleted: `{version, deleted}`", body = bodies::ProviderDeleted),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn delete_provider(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> AdminResult<Json<bodies::ProviderDeleted>> {
    let existing = api_only(&st, &id)?;
    let (version, _) = st
        .control
        .write(|_, _| Ok(vec![ConfigChange::DeleteProvider { id: existing.id }]))
        .await?;
    Ok(Json(bodies::ProviderDeleted {
        version,
        deleted: existing.id,
    }))
}

// ---------------------------------------------------------------- keys

#[utoipa::path(
    get,
    path = "/api/providers/{id}/keys",
    tag = "keys",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
    ),
    responses(
        (status = 200, description = "`{object: list, data: [{id, key (masked), enabled}]}`", body = bodies::KeyList),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list_keys(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> AdminResult<Json<bodies::KeyList>> {
    let data = match find(&st, &id)? {
        Found::File(p) => key_views(&serde_json::to_value(&p).unwrap_or(Value::Null)),
        Found::Api(p) => key_views(&p.doc),
    };
    Ok(Json(bodies::KeyList {
        object: "list",
        data,
    }))
}

#[utoipa::path(
    post,
    path = "/api/providers/{id}/keys",
    tag = "keys",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
    ),
    request_body = bodies::NewKey,
    responses(
        (status = 201, description = "Added: `{version, key: {id, key (masked), enabled}}`", body = bodies::KeyAdded),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn add_key(
    State(st): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult<impl IntoResponse> {
    let existing = api_only(&st, &id)?;
    let new: bodies::NewKey = json_typed(&body)?;
    if crate::config::is_env_reference(&new.api_key) {
        return Err(AdminError::invalid(vec![FieldError {
            field: "api_key".into(),
            reason: "`${VAR}` references are expanded only in the configuration file; send the key itself".into(),
        }]));
    }
    let mut keys = api::doc_keys(&existing.doc);
    if keys.iter().any(|(k, _)| *k == new.api_key) {
        return Err(AdminError::conflict(
            "this key is already configured for the provider",
        ));
    }
    keys.push((new.api_key.clone(), new.enabled));
    let mut doc = existing.doc.clone();
    api::set_doc_keys(&mut doc, &keys);
    let written = update(&st, existing.id, existing.name.clone(), doc).await?;
    Ok((
        StatusCode::CREATED,
        Json(bodies::KeyAdded {
            version: written.0.version,
            key: bodies::KeyView {
                id: key_id(&new.api_key),
                key: crate::config::mask_secret(&new.api_key),
                enabled: new.enabled,
            },
        }),
    ))
}

fn with_key(
    existing: &crate::store::StoredProvider,
    key: &str,
) -> AdminResult<(Vec<(String, bool)>, usize)> {
    let keys = api::doc_keys(&existing.doc);
    let idx = keys
        .iter()
        .position(|(k, _)| key_id(k) == key)
        .ok_or_else(|| {
            AdminError::not_found(format!("provider `{}` has no key {key}", existing.name))
        })?;
    Ok((keys, idx))
}

#[utoipa::path(
    patch,
    path = "/api/providers/{id}/keys/{key}",
    tag = "keys",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
        ("key" = String, Path, description = "The key's id (from the key list; a prefix of its fingerprint, never the key)"),
    ),
    request_body = bodies::KeyPatch,
    responses(
        (status = 200, description = "Changed: `{version, provider}`", body = bodies::ProviderWritten),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn patch_key(
    State(st): State<AdminState>,
    Path((id, key)): Path<(String, String)>,
    body: Bytes,
) -> AdminResult<Json<bodies::ProviderWritten>> {
    let existing = api_only(&st, &id)?;
    let patch: bodies::KeyPatch = json_typed(&body)?;
    let (mut keys, idx) = with_key(&existing, &key)?;
    keys[idx].1 = patch.enabled;
    let mut doc = existing.doc.clone();
    api::set_doc_keys(&mut doc, &keys);
    update(&st, existing.id, existing.name.clone(), doc).await
}

#[utoipa::path(
    delete,
    path = "/api/providers/{id}/keys/{key}",
    tag = "keys",
    params(
        ("id" = String, Path, description = "The provider's numeric id or its name"),
        ("key" = String, Path, description = "The key's id (from the key list; a prefix of its fingerprint, never the key)"),
    ),
    responses(
        (status = 200, description = "Removed: `{version, provider}`", body = bodies::ProviderWritten),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn delete_key(
    State(st): State<AdminState>,
    Path((id, key)): Path<(String, String)>,
) -> AdminResult<Json<bodies::ProviderWritten>> {
    let existing = api_only(&st, &id)?;
    let (mut keys, idx) = with_key(&existing, &key)?;
    keys.remove(idx);
    let mut doc = existing.doc.clone();
    api::set_doc_keys(&mut doc, &keys);
    update(&st, existing.id, existing.name.clone(), doc).await
}

// ---------------------------------------------------------------- batch

/// `{"create": [doc…], "update": [{"id", …doc}], "delete": [id…]}`, all
/// or nothing; errors name the item (`create[1].weight`).
#[utoipa::path(
    post,
    path = "/api/providers/batch",
    tag = "providers",
    request_body = bodies::BatchBody,
    responses(
        (status = 200, description = "All applied: each item's result, in order", body = BatchApplied),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn batch(State(st): State<AdminState>, body: Bytes) -> AdminResult<Json<BatchApplied>> {
    let bodies::BatchBody {
        create: creates,
        update: updates,
        delete: deletes,
    } = json_typed(&body)?;
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let mut labels = Vec::new();
    // Which item a provider name came from, to name items in errors.
    let mut origin: Vec<(String, String)> = Vec::new();
    for (i, c) in creates.iter().enumerate() {
        match provider_doc(&st, c)
            .and_then(|(name, doc)| name_taken(&st, &name).map(|()| (name, doc)))
        {
            Ok((name, doc)) => {
                labels.push(format!("create[{i}]"));
                origin.push((name.clone(), format!("create[{i}]")));
                changes.push(ConfigChange::CreateProvider { name, doc });
            }
            Err(e) => errors.extend(item_errors(&format!("create[{i}]"), e)),
        }
    }
    for (i, u) in updates.iter().enumerate() {
        let at = format!("update[{i}]");
        let id = u
            .get("id")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default();
        let result = api_only(&st, &id).and_then(|existing| {
            let mut doc = existing.doc.clone();
            let patch = api::normalize_provider(u).map_err(AdminError::invalid)?;
            api::merge_patch(&mut doc, &patch);
            if let Some(o) = doc.as_object_mut() {
                o.entry("name")
                    .or_insert(Value::String(existing.name.clone()));
            }
            let (name, doc) = provider_doc(&st, &doc)?;
            Ok(ConfigChange::UpdateProvider {
                id: existing.id,
                name,
                doc,
            })
        });
        match result {
            Ok(c) => {
                if let ConfigChange::UpdateProvider { name, .. } = &c {
                    origin.push((name.clone(), at.clone()));
                }
                labels.push(at);
                changes.push(c);
            }
            Err(e) => errors.extend(item_errors(&at, e)),
        }
    }
    for (i, d) in deletes.iter().enumerate() {
        let at = format!("delete[{i}]");
        match api_only(&st, &d.as_key()) {
            Ok(existing) => {
                labels.push(at);
                changes.push(ConfigChange::DeleteProvider { id: existing.id });
            }
            Err(e) => errors.extend(item_errors(&at, e)),
        }
    }
    if !errors.is_empty() {
        return Err(AdminError::invalid(errors));
    }
    if changes.is_empty() {
        return Err(AdminError::bad_request(
            "the batch is empty: give create, update and/or delete arrays",
        ));
    }
    let (version, results) = st
        .control
        .write(|_, _| Ok(changes))
        .await
        .map_err(|e| match e {
            // Name the items in validation errors of the combined result.
            WriteError::Invalid(fields) => AdminError::invalid(
                fields
                    .into_iter()
                    .map(|f| {
                        let item = origin.iter().find_map(|(name, at)| {
                            f.field
                                .strip_prefix(&format!("providers[{name}]"))
                                .map(|rest| format!("{at}{rest}"))
                        });
                        FieldError {
                            field: item.unwrap_or(f.field),
                            reason: f.reason,
                        }
                    })
                    .collect(),
            ),
            other => AdminError::from(other),
        })?;
    let results = labels
        .into_iter()
        .zip(results)
        .map(|(item, result)| BatchItemResult { item, result })
        .collect();
    Ok(Json(BatchApplied { version, results }))
}

/// The answer to a batch that was applied.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct BatchApplied {
    version: u64,
    results: Vec<BatchItemResult>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct BatchItemResult {
    /// The item, as errors name it: `create[0]`, `update[1]`, `delete[2]`.
    item: String,
    result: crate::store::ChangeResult,
}

fn item_errors(at: &str, e: AdminError) -> Vec<FieldError> {
    if e.fields.is_empty() {
        vec![FieldError {
            field: at.to_string(),
            reason: e.message,
        }]
    } else {
        e.fields
            .into_iter()
            .map(|f| FieldError {
                field: if f.field.is_empty() {
                    at.to_string()
                } else {
                    format!("{at}.{}", f.field)
                },
                reason: f.reason,
            })
            .collect()
    }
}

// ---------------------------------------------------------------- health, reload

#[utoipa::path(
    get,
    path = "/api/providers/health",
    tag = "providers",
    responses(
        (status = 200, description = "Health of every provider and key", body = crate::health::HealthReport),
    ),
    security(("bearer" = [])),
)]
async fn health(State(st): State<AdminState>) -> Json<crate::health::HealthReport> {
    Json(crate::health::report(&st.control.current()))
}

#[utoipa::path(
    post,
    path = "/api/reload",
    tag = "config",
    responses(
        (status = 200, description = "`{version, reloaded: true}`", body = bodies::Reloaded),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn reload(State(st): State<AdminState>) -> AdminResult<Json<bodies::Reloaded>> {
    match st.control.reload_file() {
        Ok(version) => Ok(Json(bodies::Reloaded {
            version,
            reloaded: true,
        })),
        Err(errs) => Err(AdminError::invalid(
            errs.0
                .into_iter()
                .map(|e| FieldError {
                    field: e.key,
                    reason: format!("{}: {}", e.source, e.reason),
                })
                .collect(),
        )),
    }
}

/// Query strings with precise JSON errors (axum's own rejection is plain
/// text).
fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> AdminResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| AdminError::bad_request(format!("bad query string: {}", e.body_text())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_targets_come_from_the_path() {
        assert_eq!(
            path_target("/api/providers/openai/keys/abc"),
            Some("openai")
        );
        assert_eq!(path_target("/api/providers"), Some("providers"));
        assert_eq!(path_target("/api/providers/batch"), Some("providers"));
        assert_eq!(path_target("/api/settings"), Some("settings"));
        assert_eq!(path_target("/api/aliases/fast"), Some("fast"));
    }
}
