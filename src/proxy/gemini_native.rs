//! Google's Gemini API as a client API: the routes under `/v1beta/` (and
//! the generate routes under `/v1/`).
//!
//! - `POST .../models/{model}:generateContent` and `:streamGenerateContent`
//!   go through the same failover and relay as every chat request. The
//!   model comes from the path: the body is decoded here (a malformed one is
//!   the client's 400 before any vendor is tried) and the canonical request
//!   gets the path's model. Gemini vendors get the client's bytes as they
//!   are (key swapped, the routed model in the URL) and their SSE answers
//!   relayed untouched; streams asked for without `alt=sse` are Google's
//!   JSON array, re-encoded from the vendor's SSE (`ClientApi::GEMINI_ARRAY`).
//! - `POST .../models/{model}:countTokens` is counted by the shared counter
//!   (`proxy::count`) on whichever provider routing picks.
//! - `GET /v1beta/models` and `GET /v1beta/models/{model}` list what the
//!   gateway serves in Google's shape.
//!
//! The token is accepted as `x-goog-api-key`, `Authorization: Bearer`, or
//! `?key=` (the SDKs' and curl's ways); request logs record the path only,
//! never the query, so a key in the URL is not logged.

use super::client::ClientApi;
use super::ctx::{abort, client_gone, grace_over, RequestCtx, Stop};
use super::downstream::Downstream;
use super::error::GatewayError;
use super::state::GatewayState;
use super::{failover, relay};
use crate::config::Snapshot;
use crate::protocol::chat::Family;
use bytes::Bytes;
use http::Method;
use pingora::prelude::*;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// `/v1/models/{model}:{method}`: the `/v1/` spelling of a Gemini call
/// (`GET /v1/models` stays OpenAI's list).
pub(super) fn is_v1_route(path: &str) -> bool {
    path.strip_prefix("/v1/models/")
        .is_some_and(|rest| rest.contains(':'))
}

/// A call made the way Google's clients make them (`x-goog-api-key` or
/// `?key=`), for the one path Gemini shares with OpenAI (`/v1/models`).
pub(super) fn is_google_call(session: &Downstream) -> bool {
    let head = session.req_header();
    head.headers.contains("x-goog-api-key") || query(head.uri.query(), "key").is_some()
}

/// The call a path names.
pub(super) enum Call<'p> {
    List,
    Get(&'p str),
    Generate { model: &'p str, stream: bool },
    CountTokens(&'p str),
}

impl<'p> Call<'p> {
    /// The call `method path` names (`/v1/models` counts as Google's list
    /// here), or the client's 404 / 405 / 400.
    pub(super) fn parse(method: &Method, path: &'p str, max_model: usize) -> Result<Self, Stop> {
        let not_found = || -> Stop {
            GatewayError::NotFound {
                method: method.to_string(),
                path: path.to_string(),
            }
            .into()
        };
        let call = parse_path(path).ok_or_else(not_found)?;
        let (want, allow) = match call {
            Call::List | Call::Get(_) => (Method::GET, "GET"),
            _ => (Method::POST, "POST"),
        };
        if *method != want {
            return Err(GatewayError::MethodNotAllowed {
                allow,
                method: method.to_string(),
                path: path.to_string(),
            }
            .into());
        }
        let model = match call {
            Call::List => "",
            Call::Get(m) | Call::Generate { model: m, .. } | Call::CountTokens(m) => m,
        };
        if model.len() > max_model {
            return Err(GatewayError::BadRequest {
                message: format!(
                    "the model name is {} bytes long; this gateway accepts model names of at most {max_model} bytes",
                    model.len()
                ),
                param: Some("model"),
            }
            .into());
        }
        Ok(call)
    }

    /// The call has a request body to read.
    pub(super) fn has_body(&self) -> bool {
        matches!(self, Call::Generate { .. } | Call::CountTokens(_))
    }
}

fn parse_path(path: &str) -> Option<Call<'_>> {
    let rest = path
        .strip_prefix("/v1beta/")
        .or_else(|| path.strip_prefix("/v1/"))?;
    if rest == "models" {
        return Some(Call::List);
    }
    let rest = rest.strip_prefix("models/")?;
    let Some((model, method)) = rest.rsplit_once(':') else {
        return (!rest.is_empty() && !rest.contains('/')).then_some(Call::Get(rest));
    };
    if model.is_empty() || model.contains('/') {
        return None;
    }
    Some(match method {
        "generateContent" => Call::Generate {
            model,
            stream: false,
        },
        "streamGenerateContent" => Call::Generate {
            model,
            stream: true,
        },
        "countTokens" => Call::CountTokens(model),
        _ => return None,
    })
}

/// A query parameter's raw value.
fn query<'q>(q: Option<&'q str>, name: &str) -> Option<&'q str> {
    q?.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// `?key=`: `Ok(true)` when it carries the gateway token or a usable client
/// key (kept in `ctx.client_key`) and no header does (a header is checked as
/// for every API: `Ok(false)`), the client's 401 when it is wrong.
pub(super) fn key_in_query(
    session: &Downstream,
    snap: &Snapshot,
    live: &crate::control::live::Live,
    ctx: &mut RequestCtx,
) -> Result<bool, Stop> {
    let head = session.req_header();
    let in_header =
        head.headers.contains("x-goog-api-key") || head.headers.contains("authorization");
    let Some(key) = query(head.uri.query(), "key").filter(|_| !in_header) else {
        return Ok(false);
    };
    // A query value is percent-encoded (`+`, `/`, `=` in a token arrive as
    // `%2B`, `%2F`, `%3D`); compare the token itself.
    let key = percent_encoding::percent_decode_str(key).collect::<Vec<u8>>();
    let key = key.as_slice();
    if let Some(client) = live.keys.load().find(key) {
        ctx.client_key = Some(super::access::admit_key(client, ClientApi::GEMINI)?);
        return Ok(true);
    }
    match snap.auth_token.as_deref() {
        Some(expected) if bool::from(key.ct_eq(expected.as_bytes())) => Ok(true),
        Some(_) => Err(GatewayError::Unauthorized(
            "API key not valid. Please pass a valid API key.",
        )
        .into()),
        None => Ok(false),
    }
}

/// Serves an authorized call: `Some(body)` is a JSON answer for the caller
/// to send with status 200; `None` means the answer was relayed already.
pub(super) async fn serve(
    state: &GatewayState,
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    snap: &Arc<Snapshot>,
    call: Call<'_>,
    body: &Bytes,
) -> Result<Option<Bytes>, Stop> {
    ctx.route = "models";
    match call {
        Call::List => Ok(Some(super::access::visible_models(
            ctx,
            snap,
            models(snap, None),
        ))),
        Call::Get(model) => {
            if snap.route(model).is_none() || !super::access::may_see(ctx, snap, model) {
                return Err(GatewayError::ModelNotFound(model.to_string()).into());
            }
            Ok(Some(models(snap, Some(model))))
        }
        Call::Generate { model, stream } => {
            ctx.route = "gemini";
            let sse = query(session.req_header().uri.query(), "alt") == Some("sse");
            generate(state, session, ctx, snap, model, stream, sse, body).await?;
            Ok(None)
        }
        Call::CountTokens(model) => {
            ctx.route = "count_tokens";
            count_tokens(state, ctx, snap, model, body).await.map(Some)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn generate(
    state: &GatewayState,
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    snap: &Arc<Snapshot>,
    model: &str,
    stream: bool,
    sse: bool,
    body: &Bytes,
) -> Result<(), Stop> {
    let api = if stream && !sse {
        ClientApi::GEMINI_ARRAY
    } else {
        ClientApi::GEMINI
    };
    ctx.api = api;
    ctx.stream = stream;
    ctx.model = Some(model.to_string());
    super::access::check_model(ctx, snap, model)?;
    super::access::check_budget(state, ctx).await?;
    let route = snap
        .route(model)
        .ok_or_else(|| GatewayError::ModelNotFound(model.to_string()))?;
    super::access::admit_limits(state, ctx, body.len()).await?;
    // Decoded here rather than lazily by the failover: the body has no
    // model (it is in the path), and a malformed body is the client's 400
    // before any vendor is tried.
    let mut decoded = api
        .ingress()
        .decode_request(body)
        .map_err(|e| GatewayError::Client(Box::new(e)))?;
    decoded.model = model.into();
    decoded.stream = stream;
    let request = failover::ChatRequest {
        api,
        client_model: model,
        route: &route,
        body,
        decoded: std::sync::OnceLock::from(Box::new(Ok(decoded))),
        stream,
        include_usage: true,
        forward: Vec::new(),
        deadline: tokio::time::Instant::now() + snap.routing.request_timeout,
    };
    let mut grace = state.grace_over.subscribe();
    let chosen = tokio::select! {
        biased;
        r = Box::pin(failover::run(state, snap, &request, ctx)) => r?,
        _ = client_gone(session) => return Err(abort("client closed the connection before the answer", ctx, "client_gone")),
        _ = grace_over(&mut grace) => return Err(GatewayError::ShuttingDown.into()),
    };
    Box::pin(relay::relay(
        state, session, ctx, &request, chosen, &mut grace,
    ))
    .await
}

/// `countTokens` on every provider type through the shared counter
/// (`proxy::count`): Gemini providers get the client's body when the model
/// is not mapped, Anthropic providers their `count_tokens`, OpenAI-compatible
/// ones the documented estimate. The body is Google's `CountTokensRequest`:
/// `contents`, or a whole `generateContentRequest`.
async fn count_tokens(
    state: &GatewayState,
    ctx: &mut RequestCtx,
    snap: &Arc<Snapshot>,
    model: &str,
    body: &Bytes,
) -> Result<Bytes, Stop> {
    #[derive(serde::Deserialize)]
    struct CountBody<'a> {
        #[serde(borrow, default, alias = "generate_content_request")]
        #[serde(rename = "generateContentRequest")]
        inner: Option<&'a serde_json::value::RawValue>,
    }
    ctx.model = Some(model.to_string());
    super::access::check_model(ctx, snap, model)?;
    let route = snap
        .route(model)
        .ok_or_else(|| GatewayError::ModelNotFound(model.to_string()))?;
    let bad = |message: String| GatewayError::BadRequest {
        message,
        param: None,
    };
    let wrapper: CountBody<'_> = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not a CountTokensRequest: {e}")))?;
    let generate = wrapper.inner.map_or(&body[..], |raw| raw.get().as_bytes());
    let mut request = (ClientApi::GEMINI.ingress())
        .decode_request(generate)
        .map_err(|e| GatewayError::Client(Box::new(e)))?;
    request.model = model.into();
    let req = super::count::CountRequest {
        request: &request,
        raw: Some((Family::Gemini, body)),
        forward: &[],
        deadline: tokio::time::Instant::now() + snap.routing.request_timeout,
    };
    let n = super::count::count_on_route(state, snap, &route, &req, ctx).await?;
    Ok(Bytes::from(format!(r#"{{"totalTokens":{n}}}"#)))
}

/// The served models in Google's `ListModelsResponse` / `Model` shape
/// (one model when `only` is given).
fn models(snap: &Snapshot, only: Option<&str>) -> Bytes {
    #[derive(serde::Deserialize)]
    struct List {
        #[serde(default)]
        data: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        id: String,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Model<'a> {
        name: String,
        base_model_id: &'a str,
        version: &'static str,
        display_name: &'a str,
        description: &'static str,
        supported_generation_methods: [&'static str; 3],
    }
    let list = crate::health::discovery::models_body(snap);
    let ids: Vec<String> = match only {
        Some(m) => vec![m.to_string()],
        None => serde_json::from_slice::<List>(&list)
            .map(|l| l.data.into_iter().map(|i| i.id).collect())
            .unwrap_or_default(),
    };
    let out: Vec<Model<'_>> = ids
        .iter()
        .map(|id| Model {
            name: format!("models/{id}"),
            base_model_id: id,
            version: "001",
            display_name: id,
            description: "Served by llm-orchestrator",
            supported_generation_methods: [
                "generateContent",
                "streamGenerateContent",
                "countTokens",
            ],
        })
        .collect();
    let body = match (only, out.first()) {
        (Some(_), Some(one)) => serde_json::to_vec(one),
        _ => serde_json::to_vec(&serde_json::json!({ "models": out })),
    };
    Bytes::from(body.unwrap_or_default())
}
