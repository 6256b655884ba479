//! The admin API's routes: which handler answers what, and the layers
//! (bearer check, JSON errors) around them. Kept apart from the handlers
//! so those (`mod.rs`, `transfer`) do not depend on each other through it.

use super::audit::Audit;
use super::*;
use super::{console, docs, transfer};
use crate::control::ControlPlane;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The admin routes for one listener; events go to `audit`.
pub fn router(
    control: Arc<ControlPlane>,
    listener: Listener,
    audit: Arc<Audit>,
    admin_listen: Option<&str>,
) -> Router {
    build(AdminState {
        control,
        listener,
        audit,
        admin_listen: admin_listen.map(Arc::from),
    })
}

/// The same routes without the bearer check, for the command line working
/// on a stopped gateway's database (`llm-orchestrator export --offline`):
/// whoever can run it can already read the database file.
pub fn local_router(control: Arc<ControlPlane>) -> Router {
    build(AdminState {
        control,
        listener: Listener::Local,
        audit: Audit::log_only(),
        admin_listen: None,
    })
}

fn build(state: AdminState) -> Router {
    let listener = state.listener;
    let api = Router::new()
        .route("/api/providers", get(list_providers).post(create_provider))
        .route("/api/providers/health", get(health))
        .route("/api/providers/batch", post(batch))
        .route(
            "/api/providers/{id}",
            get(get_provider)
                .put(put_provider)
                .patch(patch_provider)
                .delete(delete_provider),
        )
        .route("/api/providers/{id}/keys", get(list_keys).post(add_key))
        .route(
            "/api/providers/{id}/keys/{key}",
            axum::routing::patch(patch_key).delete(delete_key),
        )
        .route("/api/aliases", get(list_aliases))
        .route(
            "/api/aliases/{alias}",
            axum::routing::put(put_alias).delete(delete_alias),
        )
        .route("/api/settings", get(get_settings).put(put_settings))
        .route("/api/config/export", get(transfer::export))
        .route("/api/config/import", post(transfer::import))
        .route("/api/reload", post(reload))
        .route("/api/logs", get(logs))
        .route("/api/audit", get(audit_log))
        .route("/api/stats/usage", get(usage))
        .route("/api/stats", get(usage))
        .route("/metrics", get(metrics));
    // The API description holds no secret, but on the main port (the one
    // facing clients) it would tell anyone what answers there: it needs the
    // admin token there and is public only on the admin listener.
    let docs = Router::new()
        .route("/docs", get(docs::page))
        .route("/docs/openapi.json", get(docs::openapi));
    let (api, docs) = if listener == Listener::Main {
        (api.merge(docs), Router::new())
    } else {
        (api, docs)
    };
    let api = if listener == Listener::Local {
        api
    } else {
        api.route_layer(axum::middleware::from_fn_with_state(state.clone(), auth))
    };
    Router::new()
        .merge(api)
        .merge(docs)
        .route("/", get(console::index))
        .route("/admin", get(console::redirect))
        .route("/admin/", get(console::index))
        .route("/admin/{file}", get(console::file))
        .route("/{file}", get(console::file))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}
