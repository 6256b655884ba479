//! The admin API's routes: which handler answers what, and the layers
//! (bearer check, JSON errors) around them. Kept apart from the handlers
//! so those (`mod.rs`, `transfer`) do not depend on each other through it.

use super::audit::Audit;
use super::*;
use super::{client_keys, console, docs, observe, prices, settings, transfer};
use crate::control::ControlPlane;
use axum::Router;
use std::sync::{Arc, LazyLock};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// Every route that needs the bearer token (the admin API proper). Each
/// handler is registered with the path and method of its
/// `#[utoipa::path]`, which is also what the OpenAPI document lists.
fn api_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(health))
        .routes(routes!(batch))
        .routes(routes!(
            get_provider,
            put_provider,
            patch_provider,
            delete_provider
        ))
        .routes(routes!(list_keys, add_key))
        .routes(routes!(patch_key, delete_key))
        .routes(routes!(
            client_keys::list_client_keys,
            client_keys::create_client_key
        ))
        .routes(routes!(
            client_keys::get_client_key,
            client_keys::patch_client_key,
            client_keys::delete_client_key
        ))
        .routes(routes!(settings::list_aliases))
        .routes(routes!(settings::put_alias, settings::delete_alias))
        .routes(routes!(settings::get_settings, settings::put_settings))
        .routes(routes!(prices::get_prices, prices::put_prices))
        .routes(routes!(transfer::export))
        .routes(routes!(transfer::import))
        .routes(routes!(reload))
        .routes(routes!(observe::logs))
        .routes(routes!(observe::audit_log))
        .routes(routes!(observe::usage))
        .routes(routes!(observe::stats))
        .routes(routes!(observe::metrics))
}

/// The API description: public on the admin listener, behind the token on
/// the main port.
fn docs_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(docs::page))
        .routes(routes!(docs::openapi))
}

/// The web console's static files (public: the page holds no secret).
fn console_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(console::index))
        .routes(routes!(console::redirect))
        .routes(routes!(console::admin_index))
        .routes(routes!(console::file))
        .routes(routes!(console::root_file))
}

/// The OpenAPI paths and schemas of every route [`build`] serves.
fn described() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AdminState>::new()
        .merge(api_routes())
        .merge(docs_routes())
        .merge(console_routes())
        .into_openapi()
}

/// Built once: the routes and types are fixed at compile time.
static DOCUMENT: LazyLock<docs::Document> = LazyLock::new(|| docs::Document::new(described()));

fn build(state: AdminState) -> Router {
    let listener = state.listener;
    let (api, _) = api_routes().split_for_parts();
    let (docs, _) = docs_routes().split_for_parts();
    let (console, _) = console_routes().split_for_parts();
    // The API description holds no secret, but on the main port (the one
    // facing clients) it would tell anyone what answers there: it needs the
    // admin token there and is public only on the admin listener.
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
        .merge(console)
        .fallback(not_found)
        .layer(axum::Extension(DOCUMENT.clone()))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}
