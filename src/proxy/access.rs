//! Who may call the data plane: the master `AUTH_TOKEN`, a client key (its
//! client APIs and models), or a loopback caller when no token is set. Used
//! by every client API's route (`proxy::Gateway::handle`, `gemini_native`).

use super::client::ClientApi;
use super::ctx::{RequestCtx, Stop};
use super::downstream::Downstream;
use super::error::{clip, GatewayError, ECHO_LIMIT};
use crate::config::Snapshot;
use pingora::prelude::*;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Who may make this call: the master `AUTH_TOKEN`, a client key (kept in
/// `ctx.client_key` for the model check and the request log) or, with no
/// token configured, a loopback client. The key table is in memory: no
/// database access here.
pub(super) fn authorize(
    session: &Downstream,
    snap: &Snapshot,
    live: &crate::control::live::Live,
    ctx: &mut RequestCtx,
    api: ClientApi,
) -> Result<(), Stop> {
    let headers = &session.req_header().headers;
    let bearer = headers.get("authorization").and_then(|v| {
        let (scheme, token) = (v.get(..7)?, v.get(7..)?);
        scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
    });
    // An API's own key header (Anthropic `x-api-key`) wins over a bearer
    // token when both are present, as with the vendor's own API.
    let presented = api
        .key_header()
        .and_then(|name| headers.get(name))
        .or(bearer);
    if let Some(token) = presented {
        if let Some(key) = live.keys.load().find(token) {
            ctx.client_key = Some(admit_key(key, api)?);
            return Ok(());
        }
    }
    let Some(expected) = snap.auth_token.as_deref() else {
        // No token configured: only this machine may use the gateway.
        let loopback = session.client_addr().is_some_and(|a| a.ip().is_loopback());
        return if loopback {
            Ok(())
        } else {
            Err(GatewayError::Unauthorized(
                "AUTH_TOKEN is not configured on this gateway, so only loopback clients are accepted",
            )
            .into())
        };
    };
    match presented {
        None => Err(GatewayError::Unauthorized(api.missing_key()).into()),
        Some(token) if bool::from(token.ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(GatewayError::Unauthorized("Incorrect API key or bearer token").into()),
    }
}

/// A known client key: usable now, and for this client API? A disabled or
/// expired key is refused exactly like an unknown one (401, same words), so
/// the answer does not tell a caller which keys exist.
pub(super) fn admit_key(
    key: &Arc<crate::keys::ClientKey>,
    api: ClientApi,
) -> Result<Arc<crate::keys::ClientKey>, Stop> {
    let now = crate::health::wall_ms() as i64;
    match key.admit(api.as_str(), now) {
        Ok(()) => Ok(key.clone()),
        Err(crate::keys::Denied::Invalid) => {
            Err(GatewayError::Unauthorized("Incorrect API key or bearer token").into())
        }
        Err(crate::keys::Denied::Api) => Err(GatewayError::Forbidden(format!(
            "this API key may not use the {} API",
            api.as_str()
        ))
        .into()),
    }
}

/// A client key limited to some models may only use those (an alias is
/// checked by its own name and by its target).
pub(super) fn check_model(ctx: &RequestCtx, snap: &Snapshot, model: &str) -> Result<(), Stop> {
    let Some(key) = &ctx.client_key else {
        return Ok(());
    };
    let resolved = snap.aliases.get(model).map(String::as_str);
    if key.allows_model(model, resolved) {
        Ok(())
    } else {
        Err(GatewayError::Forbidden(format!(
            "this API key may not use the model `{}`",
            clip(model, ECHO_LIMIT)
        ))
        .into())
    }
}

/// A client key with budgets may not start a request once one of them is
/// spent (429 naming the budget). Memory, plus one bounded Redis read when
/// Redis is on: never the database.
pub(super) async fn check_budget(
    live: &crate::control::live::Live,
    ctx: &RequestCtx,
) -> Result<(), Stop> {
    match &ctx.client_key {
        Some(key) if !key.doc.budgets.is_empty() => live
            .ledger
            .admit(key.id, &key.doc.budgets)
            .await
            .map_err(|e| GatewayError::BudgetExhausted(e).into()),
        _ => Ok(()),
    }
}
/// A client key with limits (rpm, tpm, max_concurrent) must be under them
/// (see [`crate::keys::limits`]): one Redis round trip, bounded, for such
/// keys only. The master token and keys without limits return at once.
/// `body_len` sizes the TPM reservation.
pub(super) async fn admit_limits(
    state: &super::GatewayState,
    ctx: &mut RequestCtx,
    body_len: usize,
) -> Result<(), Stop> {
    let Some(key) = &ctx.client_key else {
        return Ok(());
    };
    let Some(limits) = key.doc.limits() else {
        return Ok(());
    };
    match state.limiter.admit(&key.limit_id, limits, body_len).await {
        Ok(lease) => {
            ctx.limit = Some(lease);
            Ok(())
        }
        Err(refused) => Err(GatewayError::KeyLimit {
            message: refused.message(),
            retry_after_secs: refused.retry_after_secs,
        }
        .into()),
    }
}

/// Settle the request's hold on its key's limits with its real usage
/// (called once the answer is over, whatever the outcome).
pub(super) fn settle_limits(ctx: &mut RequestCtx, status: u16) {
    if let Some(lease) = ctx.limit.take() {
        let tokens = ctx.usage.map(|u| u.prompt_tokens + u.completion_tokens);
        lease.finish(tokens, status >= 400);
    }
}

/// May the caller see `model` in a model list or read it? Everyone but a
/// client key limited to some models may.
pub(super) fn may_see(ctx: &RequestCtx, snap: &Snapshot, model: &str) -> bool {
    ctx.client_key.as_ref().is_none_or(|key| {
        let resolved = snap.aliases.get(model).map(String::as_str);
        key.allows_model(model, resolved)
    })
}

/// A model list (OpenAI `data[].id`, Anthropic `data[].id` with
/// `first_id`/`last_id`, Gemini `models[].name`) cut to the models the
/// caller's key may use. Lists for the master token and for keys without
/// a model limit are returned untouched, unparsed.
pub(super) fn visible_models(
    ctx: &RequestCtx,
    snap: &Snapshot,
    body: bytes::Bytes,
) -> bytes::Bytes {
    if ctx
        .client_key
        .as_ref()
        .is_none_or(|k| k.doc.models.is_empty())
    {
        return body;
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let id_of = |m: &serde_json::Value| -> Option<String> {
        m.get("id")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| {
                m.get("name")
                    .and_then(|v| v.as_str())
                    .map(|n| n.strip_prefix("models/").unwrap_or(n).to_string())
            })
    };
    for field in ["data", "models"] {
        if let Some(list) = doc.get_mut(field).and_then(|d| d.as_array_mut()) {
            list.retain(|m| id_of(m).is_some_and(|id| may_see(ctx, snap, &id)));
        }
    }
    // Anthropic pages name their first and last entries.
    if doc.get("first_id").is_some() {
        let ids: Vec<Option<String>> = doc["data"]
            .as_array()
            .map(|l| l.iter().map(id_of).collect())
            .unwrap_or_default();
        doc["first_id"] = ids.first().cloned().flatten().into();
        doc["last_id"] = ids.last().cloned().flatten().into();
    }
    bytes::Bytes::from(doc.to_string())
}
