//! `/api/keys`: client keys (see [`crate::keys`]). The secret is in the
//! creation answer only; every other answer, the audit trail and the logs
//! show the masked form. Writes go through [`ControlPlane::write`] like a
//! provider change: one transaction that bumps the config version, so the
//! other instances load the new key table as they load providers.

use super::*;
use crate::keys::{self, KeyDoc};
use crate::store::StoredKey;

/// `POST /api/keys`. Unknown fields are refused.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientKeyCreate {
    /// What the key is for (shown in the console and the request log).
    name: String,
    /// The owner or team, a free label.
    #[serde(default)]
    owner: String,
    /// Model names or globs (`gpt-4o*`) the key may use; an alias is
    /// checked by its name and its target. Empty or absent: every model.
    #[serde(default)]
    models: Vec<String>,
    /// Client APIs the key may use: `openai`, `anthropic`, `responses`,
    /// `gemini`. Empty or absent: every API.
    #[serde(default)]
    apis: Vec<String>,
    /// Unix time in milliseconds after which the key stops working.
    #[serde(default)]
    expires_ms: Option<i64>,
    /// Default true.
    #[serde(default)]
    enabled: Option<bool>,
    /// Token and cost budgets: `[{period: day|month|total, tokens?,
    /// cost_usd?}]`, at most one per period.
    #[serde(default)]
    budgets: Vec<crate::ledger::Budget>,
    /// Requests per minute, 1 to 10000000 (a sliding 60 s window, shared
    /// by every instance through Redis). Absent: unlimited.
    #[serde(default)]
    rpm: Option<u32>,
    /// Tokens (input + output) per minute, 1 to 10000000000. Absent:
    /// unlimited.
    #[serde(default)]
    tpm: Option<u64>,
    /// Requests in flight at once, 1 to 10000. Absent: unlimited.
    #[serde(default)]
    max_concurrent: Option<u32>,
}

/// `PATCH /api/keys/{id}`: only the fields given change; `expires_ms:
/// null` removes the expiry.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientKeyPatch {
    name: Option<String>,
    owner: Option<String>,
    models: Option<Vec<String>>,
    apis: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    expires_ms: Option<Option<i64>>,
    enabled: Option<bool>,
    /// Replaces the key's budgets (`[]` removes them).
    budgets: Option<Vec<crate::ledger::Budget>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    rpm: Option<Option<u32>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    tpm: Option<Option<u64>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    max_concurrent: Option<Option<u32>>,
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A client key as the API shows it: never the secret.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ClientKeyView {
    id: i64,
    /// The masked secret, `llmo-…abcd`.
    key: String,
    name: String,
    owner: String,
    models: Vec<String>,
    apis: Vec<String>,
    expires_ms: Option<i64>,
    enabled: bool,
    budgets: Vec<crate::ledger::Budget>,
    /// True once `expires_ms` has passed.
    expired: bool,
    /// Requests per minute; absent: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    rpm: Option<u32>,
    /// Tokens per minute; absent: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm: Option<u64>,
    /// Requests in flight at once; absent: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrent: Option<u32>,
    created_ms: i64,
    updated_ms: i64,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ClientKeyCreated {
    version: u64,
    /// The whole secret: shown in this answer only, never again.
    secret: String,
    key: ClientKeyView,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ClientKeyWritten {
    version: u64,
    key: ClientKeyView,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ClientKeyList {
    /// Always `list`.
    object: &'static str,
    data: Vec<ClientKeyView>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ClientKeyDeleted {
    version: u64,
    deleted: i64,
}

/// JSON first (a body that is not JSON is a 400 like everywhere in this
/// API), then the typed fields (a wrong one is a 422 naming it).
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> AdminResult<T> {
    serde_json::from_value(json_body(body)?).map_err(|e| {
        AdminError::invalid(vec![FieldError {
            field: String::new(),
            reason: e.to_string(),
        }])
    })
}

/// Ids are numbers; anything else names no key.
fn key_id(id: &str) -> AdminResult<i64> {
    id.parse()
        .map_err(|_| AdminError::not_found(format!("client key `{}` not found", clip(id))))
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn checked(doc: &KeyDoc) -> AdminResult<Value> {
    doc.check().map_err(|(field, reason)| {
        AdminError::invalid(vec![FieldError {
            field: field.to_string(),
            reason,
        }])
    })?;
    serde_json::to_value(doc).map_err(|e| AdminError::from(WriteError::Internal(e.to_string())))
}

fn view(k: &StoredKey) -> AdminResult<ClientKeyView> {
    let doc: KeyDoc = serde_json::from_value(k.doc.clone()).map_err(|e| {
        AdminError::from(WriteError::Internal(format!(
            "client key {} is unreadable: {e}",
            k.id
        )))
    })?;
    let now = crate::health::wall_ms() as i64;
    Ok(ClientKeyView {
        id: k.id,
        key: k.masked.clone(),
        expired: doc.expires_ms.is_some_and(|t| now >= t),
        name: doc.name,
        owner: doc.owner,
        models: doc.models,
        apis: doc.apis,
        expires_ms: doc.expires_ms,
        enabled: doc.enabled,
        budgets: doc.budgets,
        rpm: doc.rpm,
        tpm: doc.tpm,
        max_concurrent: doc.max_concurrent,
        created_ms: k.created_ms,
        updated_ms: k.updated_ms,
    })
}

async fn stored(st: &AdminState) -> AdminResult<Vec<StoredKey>> {
    let store = st.control.store_or_unavailable()?;
    Ok(store.list_keys().await.map_err(WriteError::from)?)
}

async fn one(st: &AdminState, id: i64) -> AdminResult<StoredKey> {
    stored(st)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| AdminError::not_found(format!("client key {id} not found")))
}

#[utoipa::path(
    get,
    path = "/api/keys",
    tag = "client keys",
    responses(
        (status = 200, description = "Every client key, masked", body = ClientKeyList),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_client_keys(
    State(st): State<AdminState>,
) -> AdminResult<Json<ClientKeyList>> {
    let data = stored(&st)
        .await?
        .iter()
        .map(view)
        .collect::<AdminResult<Vec<_>>>()?;
    Ok(Json(ClientKeyList {
        object: "list",
        data,
    }))
}

#[utoipa::path(
    post,
    path = "/api/keys",
    tag = "client keys",
    request_body = ClientKeyCreate,
    responses(
        (status = 201, description = "Created: `{version, secret, key}`; the secret is shown this once", body = ClientKeyCreated),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_client_key(
    State(st): State<AdminState>,
    body: Bytes,
) -> AdminResult<Response> {
    let req: ClientKeyCreate = parse(&body)?;
    let doc = KeyDoc {
        name: req.name,
        owner: req.owner,
        models: req.models,
        apis: req.apis,
        expires_ms: req.expires_ms,
        enabled: req.enabled.unwrap_or(true),
        budgets: req.budgets,
        rpm: req.rpm,
        tpm: req.tpm,
        max_concurrent: req.max_concurrent,
    };
    let value = checked(&doc)?;
    let secret = keys::generate().map_err(|_| {
        AdminError::from(WriteError::Internal(
            "the operating system's random number generator failed".into(),
        ))
    })?;
    let hash = keys::hash(secret.as_bytes());
    let masked = keys::mask(&secret);
    let (version, results) = st
        .control
        .write(|_, _| {
            Ok(vec![ConfigChange::CreateKey {
                hash: hash.clone(),
                masked: masked.clone(),
                doc: value.clone(),
            }])
        })
        .await?;
    let id = match results.first() {
        Some(ChangeResult::Created { id }) => *id,
        _ => 0,
    };
    let key = view(&one(&st, id).await?)?;
    let resp = (
        StatusCode::CREATED,
        Json(ClientKeyCreated {
            version,
            secret,
            key,
        }),
    )
        .into_response();
    // The audit row names the key by its masked form, never the secret.
    Ok(audited(resp, "write", Some(masked)))
}

#[utoipa::path(
    get,
    path = "/api/keys/{id}",
    tag = "client keys",
    params(("id" = i64, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key, masked", body = ClientKeyView),
        (status = 404, description = "No such key", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_client_key(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> AdminResult<Json<ClientKeyView>> {
    Ok(Json(view(&one(&st, key_id(&id)?).await?)?))
}

#[utoipa::path(
    patch,
    path = "/api/keys/{id}",
    tag = "client keys",
    params(("id" = i64, Path, description = "The key's id")),
    request_body = ClientKeyPatch,
    responses(
        (status = 200, description = "Changed: `{version, key}`", body = ClientKeyWritten),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 404, description = "No such key", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn patch_client_key(
    State(st): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult<Json<ClientKeyWritten>> {
    let req: ClientKeyPatch = parse(&body)?;
    let id = key_id(&id)?;
    let current = one(&st, id).await?;
    let mut doc: KeyDoc = serde_json::from_value(current.doc.clone())
        .map_err(|e| AdminError::from(WriteError::Internal(e.to_string())))?;
    if let Some(v) = req.name {
        doc.name = v;
    }
    if let Some(v) = req.owner {
        doc.owner = v;
    }
    if let Some(v) = req.models {
        doc.models = v;
    }
    if let Some(v) = req.apis {
        doc.apis = v;
    }
    if let Some(v) = req.expires_ms {
        doc.expires_ms = v;
    }
    if let Some(v) = req.enabled {
        doc.enabled = v;
    }
    if let Some(v) = req.budgets {
        doc.budgets = v;
    }
    if let Some(v) = req.rpm {
        doc.rpm = v;
    }
    if let Some(v) = req.tpm {
        doc.tpm = v;
    }
    if let Some(v) = req.max_concurrent {
        doc.max_concurrent = v;
    }
    let value = checked(&doc)?;
    let (version, _) = st
        .control
        .write(|_, _| {
            Ok(vec![ConfigChange::UpdateKey {
                id,
                doc: value.clone(),
            }])
        })
        .await?;
    let key = view(&one(&st, id).await?)?;
    Ok(Json(ClientKeyWritten { version, key }))
}

#[utoipa::path(
    delete,
    path = "/api/keys/{id}",
    tag = "client keys",
    params(("id" = i64, Path, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked (deleted): `{version, deleted}`", body = ClientKeyDeleted),
        (status = 404, description = "No such key", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete_client_key(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> AdminResult<Json<ClientKeyDeleted>> {
    let id = key_id(&id)?;
    let (version, _) = st
        .control
        .write(|_, _| Ok(vec![ConfigChange::DeleteKey { id }]))
        .await?;
    Ok(Json(ClientKeyDeleted {
        version,
        deleted: id,
    }))
}
