//! The data plane: it owns both HTTP/1 exchanges of a request.
//!
//! The edge (`edge`) reads and checks each request head and hands it over
//! as a `downstream::Downstream` session; `Gateway::serve` answers it
//! (`Gateway::filter`) and records it (`Gateway::log_request`). The
//! upstream side is `h1::Exchange` over pooled connections (`connector`).
//! Pingora provides the server around it (listeners, graceful upgrade,
//! background services) and the upstream connection pool, not the
//! per-request HTTP state machines: its proxy path replays a body read in
//! a filter only through a 64 KiB retry buffer, which silently breaks
//! failover of long prompts, and its HTTP/1 sessions parsed each head into
//! header maps the gateway then mostly never read (BENCHMARKS.md).

mod access;
mod ahead;
mod check;
pub mod client;
mod connector;
mod cork;
pub mod count;
mod ctx;
mod dns;
mod downstream;
pub mod edge;
mod error;
mod failover;
mod fields;
mod framing;
mod gemini_native;
mod h1;
pub mod listen;
mod relay;
mod state;
pub mod upstream;

use access::{admit_limits, authorize, check_model};
pub use client::ClientApi;
pub use connector::Connector;
use ctx::{abort, client_gone, grace_over, Stop};
pub use ctx::{RequestCtx, REQUEST_ID_HEADER};
use downstream::Downstream;
pub use error::GatewayError;
use error::{clip, ECHO_LIMIT};
pub use state::GatewayState;

/// The longest model name a client may send (bytes). Names reach metric
/// labels, log lines, request-log rows and the route cache, so a longer one
/// is refused before any of them sees it.
pub const MAX_MODEL_BYTES: usize = 256;

use crate::config::Snapshot;
use crate::store::RequestLog;
use bytes::{Bytes, BytesMut};
use http::Method;
use pingora::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The fields routing needs; everything else is left in the raw body.
/// Parsing into this validates the whole document (serde skips unknown
/// fields by parsing them) without building a tree of it. Every client API
/// served names these fields alike.
#[derive(Debug, serde::Deserialize)]
struct ChatRequestProbe {
    #[serde(default)]
    model: Option<serde_json::Value>,
    #[serde(default)]
    stream: Option<serde_json::Value>,
    #[serde(default)]
    stream_options: Option<serde_json::Value>,
}

impl ChatRequestProbe {
    /// `stream_options.include_usage` (OpenAI clients).
    fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
}

/// Request ids taken from clients: short, and safe to echo in a header and
/// a log line.
fn valid_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub struct Gateway {
    state: Arc<GatewayState>,
}

impl Gateway {
    pub fn new(state: Arc<GatewayState>) -> Self {
        Gateway { state }
    }
}

impl Gateway {
    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Some(Instant::now()),
            outcome: "ok",
            request_id: ctx::new_request_id(),
            ..Default::default()
        }
    }
}

impl Gateway {
    /// The request: answered by `handle`, its error answered here; `Err`
    /// only when nothing can be answered. (What `ProxyHttp::request_filter`
    /// was, as an inherent method: statically dispatched, no boxed future.)
    async fn filter(&self, session: &mut Downstream, ctx: &mut RequestCtx) -> Result<bool> {
        use tracing::Instrument;
        // A caller's own request id (tracing across services) is kept when
        // it is short and plain; anything else gets ours.
        if let Some(id) = session
            .req_header()
            .headers
            .get_str("x-request-id")
            .filter(|v| valid_request_id(v))
        {
            ctx.request_id = id.to_string();
        }
        if self.state.draining.load(Ordering::Relaxed) {
            session.set_keepalive(false);
        }
        let snap = self.state.snapshot.load_full();
        // Every log line written while this request runs names it.
        let span = tracing::info_span!("request", request_id = %ctx.request_id);
        match self.handle(session, ctx, &snap).instrument(span).await {
            Ok(()) => Ok(true),
            Err(Stop::Local(err)) => {
                ctx.outcome = match err {
                    GatewayError::ShuttingDown => "shutdown",
                    _ => "error",
                };
                if matches!(err, GatewayError::BodyTimeout { .. }) {
                    let edge = &self.state.metrics.edge;
                    edge.body_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                ctx.error = Some(err.message());
                send_error(session, ctx, &err).await?;
                Ok(true)
            }
            Err(Stop::Abort(e)) => Err(e),
        }
    }

    /// The request's metrics, ledger entry, log row and log line.
    fn log_request(&self, session: &Downstream, e: Option<&Error>, ctx: &mut RequestCtx) {
        let latency = ctx.start.map(|s| s.elapsed()).unwrap_or_default();
        let req = session.req_header();
        let status = session.response_status().unwrap_or(ctx.status);
        access::settle_limits(ctx, status);
        let ttfb_ms = ctx.ttfb.map(|t| t.as_micros() as f64 / 1000.0);
        let error = e
            .map(|e| {
                let mut s = e.to_string();
                s.truncate(clip(&s, error::MESSAGE_LIMIT).len());
                s
            })
            .or_else(|| ctx.error.take());
        if ctx.route == "health" || ctx.route == "admin" {
            tracing::debug!(target: "request", method = clip(req.method.as_str(), ECHO_LIMIT), path = clip(req.uri.path(), ECHO_LIMIT), status, "health check or admin call");
            return;
        }
        // The access line first: the row below takes the strings it shares.
        tracing::info!(
            target: "request",
            request_id = %ctx.request_id,
            method = clip(req.method.as_str(), ECHO_LIMIT),
            path = clip(req.uri.path(), ECHO_LIMIT),
            status,
            model = ctx.model.as_deref().unwrap_or("-"),
            provider = ctx.provider.as_deref().unwrap_or("-"),
            key = ctx.key.as_deref().unwrap_or("-"),
            client_key = ctx.client_key.as_ref().map(|k| k.id),
            attempts = ctx.attempts,
            stream = ctx.stream,
            latency_ms = latency.as_micros() as f64 / 1000.0,
            ttfb_ms,
            api = ctx.api.as_str(),
            prompt_tokens = ctx.usage.map(|u| u.prompt_tokens),
            completion_tokens = ctx.usage.map(|u| u.completion_tokens),
            cached_tokens = ctx.usage.map(|u| u.cached_tokens).filter(|&c| c > 0),
            outcome = ctx.outcome,
            error = error.as_deref(),
            "request"
        );
        if matches!(
            ctx.route,
            "chat" | "messages" | "gemini" | "responses" | "responses_compact"
        ) {
            self.state.metrics.request(&crate::metrics::Finished {
                api: ctx.api.as_str(),
                provider: ctx.provider.as_deref(),
                model: ctx.model.as_deref(),
                status,
                stream: ctx.stream,
                attempts: ctx.attempts,
                latency,
                ttfb: ctx.ttfb,
                prompt_tokens: ctx.usage.map_or(0, |u| u.prompt_tokens),
                completion_tokens: ctx.usage.map_or(0, |u| u.completion_tokens),
                cached_tokens: ctx.usage.map_or(0, |u| u.cached_tokens),
            });
            let ledger = self.state.ledger.record(
                &self.state.metrics,
                &self.state.snapshot.load().prices,
                &crate::ledger::Finished {
                    key: ctx.client_key.as_deref().map(|k| crate::ledger::KeyRef {
                        id: k.id,
                        budgeted: !k.doc.budgets.is_empty(),
                    }),
                    provider: ctx.provider.as_deref(),
                    upstream_model: ctx.upstream_model.as_deref(),
                    model: ctx.model.as_deref(),
                    usage: ctx.usage.as_ref(),
                },
            );
            if let Some(tx) = self.state.log_tx.get() {
                let row = RequestLog {
                    id: None,
                    ts_ms: crate::health::wall_ms() as i64,
                    request_id: std::mem::take(&mut ctx.request_id),
                    api: ctx.api.as_str().to_string(),
                    method: clip(req.method.as_str(), ECHO_LIMIT).to_string(),
                    path: clip(req.uri.path(), ECHO_LIMIT).to_string(),
                    model: ctx.model.take(),
                    provider: ctx.provider.take(),
                    key: ctx.key.take(),
                    status,
                    outcome: ctx.outcome.to_string(),
                    attempts: ctx.attempts,
                    stream: ctx.stream,
                    latency_ms: latency.as_micros() as f64 / 1000.0,
                    ttfb_ms,
                    prompt_tokens: ctx.usage.map(|u| u.prompt_tokens),
                    completion_tokens: ctx.usage.map(|u| u.completion_tokens),
                    cached_tokens: ctx.usage.map(|u| u.cached_tokens),
                    error,
                    upstream_model: ctx.upstream_model.take(),
                    client_key: ctx.client_key.as_ref().map(|k| k.label.to_string()),
                    cache_write_tokens: ctx.usage.map(|u| u.cache_write_tokens),
                    cache_write_1h_tokens: ctx.usage.map(|u| u.cache_write_1h_tokens),
                    reasoning_tokens: ctx.usage.map(|u| u.reasoning_tokens),
                    cost_micros: ledger.cost_micros,
                    client_key_id: ctx.client_key.as_ref().map(|k| k.id),
                };
                if tx.try_send(row).is_err() {
                    self.state.log_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The data plane: the edge hands over each request (its head parsed,
/// `downstream`) and this answers it (`filter`), answers what failed in a
/// way no error format can carry with an empty status (as Pingora's
/// `fail_to_proxy` did), logs it, and hands the connection back for the
/// next request.
impl edge::Serve for Gateway {
    async fn serve(
        &self,
        mut session: Downstream,
    ) -> Option<(pingora::protocols::Stream, BytesMut)> {
        let mut ctx = self.new_ctx();
        let head = session.req_header();
        tracing::trace!(
            method = clip(head.method.as_str(), ECHO_LIMIT),
            path = clip(head.uri.path(), ECHO_LIMIT),
            fields = head.headers.len(),
            "request head"
        );
        match self.filter(&mut session, &mut ctx).await {
            Ok(_) => {
                self.log_request(&session, None, &mut ctx);
                session.finish()
            }
            Err(e) => {
                let status = match e.etype() {
                    ErrorType::HTTPStatus(code) => *code,
                    // The connection is gone: nothing can be answered.
                    ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError => 0,
                    _ => 500,
                };
                if status > 0 && session.response_status().is_none() {
                    session.respond_error(status).await;
                }
                self.log_request(&session, Some(&e), &mut ctx);
                None
            }
        }
    }
}

impl Gateway {
    async fn handle(
        &self,
        session: &mut Downstream,
        ctx: &mut RequestCtx,
        snap: &Arc<Snapshot>,
    ) -> Result<(), Stop> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/health" => {
                ctx.route = "health";
                if method != Method::GET && method != Method::HEAD {
                    return Err(not_allowed("GET", &method, &path));
                }
                // Still 200 when the store is down: the data plane serves.
                // No detail here (the route needs no token); the admin API
                // and the log say what is wrong.
                let store = self.state.store_condition.load(Ordering::Relaxed);
                let body = serde_json::json!({
                    "status": if store == crate::store::condition::OK { "ok" } else { "degraded" },
                    "version": env!("CARGO_PKG_VERSION"),
                    "providers": snap.provider_count(),
                    "store": crate::store::condition::label(store),
                });
                send_json(session, ctx, 200, Bytes::from(body.to_string())).await
            }
            // Google's Gemini API; its SDKs also list models at /v1/models
            // (api_version "v1"): their key header or `?key=` says so.
            p if p.starts_with("/v1beta/")
                || gemini_native::is_v1_route(p)
                || (p == "/v1/models" && gemini_native::is_google_call(session)) =>
            {
                ctx.api = ClientApi::GEMINI;
                let call = gemini_native::Call::parse(&method, p, MAX_MODEL_BYTES)?;
                if !gemini_native::key_in_query(session, snap, &self.state, ctx)? {
                    authorize(session, snap, &self.state, ctx, ClientApi::GEMINI)?;
                }
                let body = match call.has_body() {
                    true => read_body(session, snap.max_body_bytes, ctx).await?,
                    false => Bytes::new(),
                };
                match gemini_native::serve(&self.state, session, ctx, snap, call, &body).await? {
                    Some(answer) => send_json(session, ctx, 200, answer).await,
                    None => Ok(()),
                }
            }
            "/v1/models" => {
                ctx.route = "models";
                if method != Method::GET {
                    return Err(not_allowed("GET", &method, &path));
                }
                // Anthropic's SDKs send `anthropic-version` on every call:
                // they get Anthropic's list shape and auth rules.
                let api = ClientApi::for_models(
                    session.req_header().headers.contains("anthropic-version"),
                );
                ctx.api = api;
                authorize(session, snap, &self.state, ctx, api)?;
                let body = match api == ClientApi::ANTHROPIC {
                    true => {
                        let query = session.req_header().uri.query();
                        let page = crate::health::discovery::AnthropicPage::from_query(query);
                        crate::health::discovery::anthropic_models_body(snap, &page)
                    }
                    false => crate::health::discovery::models_body(snap),
                };
                let body = access::visible_models(ctx, snap, body);
                send_json(session, ctx, 200, body).await
            }
            "/v1/messages/count_tokens" => {
                ctx.route = "count_tokens";
                ctx.api = ClientApi::ANTHROPIC;
                self.count_tokens(session, ctx, snap).await
            }
            p if p.starts_with("/v1/models/") => {
                ctx.route = "models";
                if method != Method::GET {
                    return Err(not_allowed("GET", &method, &path));
                }
                let api = ClientApi::for_models(
                    session.req_header().headers.contains("anthropic-version"),
                );
                ctx.api = api;
                authorize(session, snap, &self.state, ctx, api)?;
                let id = &path["/v1/models/".len()..];
                if !access::may_see(ctx, snap, id) {
                    return Err(GatewayError::ModelNotFound(id.to_string()).into());
                }
                match crate::health::discovery::model_body(snap, api == ClientApi::ANTHROPIC, id) {
                    Some(body) => send_json(session, ctx, 200, body).await,
                    None => Err(GatewayError::ModelNotFound(id.to_string()).into()),
                }
            }
            "/v1/chat/completions" => {
                ctx.route = "chat";
                if method != Method::POST {
                    return Err(not_allowed("POST", &method, &path));
                }
                authorize(session, snap, &self.state, ctx, ClientApi::OPENAI)?;
                self.chat(session, ctx, snap).await
            }
            "/v1/messages" => {
                ctx.route = "messages";
                ctx.api = ClientApi::ANTHROPIC;
                if method != Method::POST {
                    return Err(not_allowed("POST", &method, &path));
                }
                authorize(session, snap, &self.state, ctx, ClientApi::ANTHROPIC)?;
                self.chat(session, ctx, snap).await
            }
            "/v1/responses" | "/v1/responses/compact" => {
                let compact = path.ends_with("/compact");
                ctx.route = if compact {
                    "responses_compact"
                } else {
                    "responses"
                };
                ctx.api = if compact {
                    ClientApi::RESPONSES_COMPACT
                } else {
                    ClientApi::RESPONSES
                };
                if method != Method::POST {
                    return Err(not_allowed("POST", &method, &path));
                }
                authorize(session, snap, &self.state, ctx, ctx.api)?;
                self.chat(session, ctx, snap).await
            }
            p if (p.starts_with("/api/")
                || p == "/docs"
                || p.starts_with("/docs/")
                || p == "/admin"
                || p.starts_with("/admin/")
                || p == "/metrics")
                && self.state.admin.get().is_some() =>
            {
                ctx.route = "admin";
                self.admin(session, ctx, snap).await
            }
            _ => Err(GatewayError::NotFound {
                method: method.to_string(),
                path,
            }
            .into()),
        }
    }

    /// `POST /v1/messages/count_tokens`: Anthropic's request (no
    /// `max_tokens` needed), counted where routing sends the model (see
    /// `count`), answered `{"input_tokens": N}`.
    async fn count_tokens(
        &self,
        session: &mut Downstream,
        ctx: &mut RequestCtx,
        snap: &Arc<Snapshot>,
    ) -> Result<(), Stop> {
        let method = session.req_header().method.clone();
        if method != Method::POST {
            return Err(not_allowed(
                "POST",
                &method,
                session.req_header().uri.path(),
            ));
        }
        authorize(session, snap, &self.state, ctx, ClientApi::ANTHROPIC)?;
        let body = read_body(session, snap.max_body_bytes, ctx).await?;
        let request = (ClientApi::ANTHROPIC.ingress())
            .decode_request(&body)
            .map_err(|e| GatewayError::Client(Box::new(e)))?;
        let model = request.model.to_string();
        if model.is_empty() || model.len() > MAX_MODEL_BYTES {
            return Err(GatewayError::BadRequest {
                message: format!(
                    "`model` must be a non-empty string of at most {MAX_MODEL_BYTES} bytes"
                ),
                param: Some("model"),
            }
            .into());
        }
        ctx.model = Some(model.clone());
        check_model(ctx, snap, &model)?;
        let route = snap
            .route(&model)
            .ok_or(GatewayError::ModelNotFound(model))?;
        let forward = forwarded_headers(session, ClientApi::ANTHROPIC);
        let req = count::CountRequest {
            request: &request,
            raw: Some((crate::protocol::chat::Family::Anthropic, &body)),
            forward: &forward,
            deadline: tokio::time::Instant::now() + snap.routing.request_timeout,
        };
        let n = count::count_on_route(&self.state, snap, &route, &req, ctx).await?;
        let out = Bytes::from(format!(r#"{{"input_tokens":{n}}}"#));
        send_json(session, ctx, 200, out).await
    }

    /// Hand an admin call on the main port to the admin router.
    async fn admin(
        &self,
        session: &mut Downstream,
        ctx: &mut RequestCtx,
        snap: &Arc<Snapshot>,
    ) -> Result<(), Stop> {
        use tower::ServiceExt;
        let Some(router) = self.state.admin.get().cloned() else {
            return Err(GatewayError::NotFound {
                method: "-".into(),
                path: "/api".into(),
            }
            .into());
        };
        let body = read_body(session, snap.max_body_bytes, ctx).await?;
        let head = session.req_header();
        let mut req = http::Request::builder()
            .method(head.method.clone())
            .uri(head.uri.path_and_query().map_or("/", |p| p.as_str()));
        for (k, v) in head.headers.iter() {
            req = req.header(k, v);
        }
        let mut req = req.body(axum::body::Body::from(body)).map_err(|e| {
            Stop::Abort(pingora::Error::explain(
                ErrorType::InternalError,
                format!("admin request: {e}"),
            ))
        })?;
        // The peer, for the admin API's audit log.
        if let Some(peer) = session.client_addr() {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        let resp = match router.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
            .await
            .map_err(|e| {
                Stop::Abort(pingora::Error::explain(
                    ErrorType::InternalError,
                    format!("admin response: {e}"),
                ))
            })?;
        ctx.status = parts.status.as_u16();
        let mut out = parts;
        out.headers.remove(http::header::TRANSFER_ENCODING);
        out.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(bytes.len()),
        );
        out.headers.insert(
            relay::REQUEST_ID,
            http::HeaderValue::from_str(&ctx.request_id).map_err(|_| {
                Stop::Abort(pingora::Error::explain(
                    ErrorType::InternalError,
                    "request id",
                ))
            })?,
        );
        session
            .write_response_header(out, false)
            .await
            .map_err(Stop::Abort)?;
        session
            .write_response_body(Some(bytes), true)
            .await
            .map_err(Stop::Abort)?;
        Ok(())
    }

    async fn chat(
        &self,
        session: &mut Downstream,
        ctx: &mut RequestCtx,
        snap: &Arc<Snapshot>,
    ) -> Result<(), Stop> {
        let body = read_body(session, snap.max_body_bytes, ctx).await?;
        let probe: ChatRequestProbe =
            crate::protocol::json::from_body(&body).map_err(|e| GatewayError::BadRequest {
                message: format!("The request body is not valid JSON for a chat completion: {e}"),
                param: None,
            })?;
        let include_usage = probe.include_usage();
        let model = match probe.model {
            Some(serde_json::Value::String(m)) if m.len() > MAX_MODEL_BYTES => {
                return Err(GatewayError::BadRequest {
                    message: format!(
                        "`model` is {} bytes long; this gateway accepts model names of at most {MAX_MODEL_BYTES} bytes",
                        m.len()
                    ),
                    param: Some("model"),
                }
                .into())
            }
            Some(serde_json::Value::String(m)) if !m.is_empty() => m,
            Some(_) => {
                return Err(GatewayError::BadRequest {
                    message: "`model` must be a non-empty string".into(),
                    param: Some("model"),
                }
                .into())
            }
            None => {
                return Err(GatewayError::BadRequest {
                    message: "you must provide a model parameter".into(),
                    param: Some("model"),
                }
                .into())
            }
        };
        let stream = match probe.stream {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(_) => {
                return Err(GatewayError::BadRequest {
                    message: "`stream` must be a boolean".into(),
                    param: Some("stream"),
                }
                .into())
            }
        };
        ctx.stream = stream;
        ctx.model = Some(model.clone());
        check_model(ctx, snap, &model)?;
        access::check_budget(&self.state, ctx).await?;
        let route = snap
            .route(&model)
            .ok_or_else(|| GatewayError::ModelNotFound(model.clone()))?;
        admit_limits(&self.state, ctx, body.len()).await?;

        let deadline = tokio::time::Instant::now() + snap.routing.request_timeout;
        let request = failover::ChatRequest {
            api: ctx.api,
            client_model: &model,
            route: &route,
            body: &body,
            decoded: std::sync::OnceLock::new(),
            stream,
            include_usage,
            forward: forwarded_headers(session, ctx.api),
            deadline,
        };
        // The two halves are boxed: a future is moved (copied whole) at
        // every layer above it — Pingora's boxed filter, the span, the
        // select — so keeping this request's future small saves several
        // kilobytes of copying per request (measured with callgrind).
        let mut grace = self.state.grace_over.subscribe();
        // `biased`: the attempt first, the two watchers after it (no random
        // branch order to draw; they are rarely ready).
        let chosen = tokio::select! {
            biased;
            r = Box::pin(failover::run(&self.state, snap, &request, ctx)) => r?,
            _ = client_gone(session) => return Err(abort("client closed the connection before the answer", ctx, "client_gone")),
            _ = grace_over(&mut grace) => return Err(GatewayError::ShuttingDown.into()),
        };
        Box::pin(relay::relay(
            &self.state,
            session,
            ctx,
            &request,
            chosen,
            &mut grace,
        ))
        .await
    }
}

/// Client headers that same-family vendors must see (Anthropic beta flags
/// switch features on and change the wire format; see
/// [`ClientApi::forward`]). Clients such as Claude Code send several
/// `anthropic-beta` headers; they go upstream as one, joined with ", " (the
/// upstream request holds one value per name).
fn forwarded_headers(
    session: &Downstream,
    api: ClientApi,
) -> Vec<(&'static str, http::HeaderValue)> {
    let headers = &session.req_header().headers;
    let mut out = Vec::new();
    for &name in api.forward() {
        let mut values = headers.get_all(name);
        let Some(first) = values.next() else {
            continue;
        };
        let mut joined: Option<Vec<u8>> = None;
        for v in values {
            let buf = joined.get_or_insert_with(|| first.to_vec());
            buf.extend_from_slice(b", ");
            buf.extend_from_slice(v);
        }
        let value = match joined {
            // Each part was a valid header value, and ", " is too.
            Some(buf) => http::HeaderValue::from_bytes(&buf).ok(),
            None => headers.value(name),
        };
        if let Some(value) = value {
            out.push((name, value));
        }
    }
    out
}

fn not_allowed(allow: &'static str, method: &Method, path: &str) -> Stop {
    GatewayError::MethodNotAllowed {
        allow,
        method: method.to_string(),
        path: path.to_string(),
    }
    .into()
}

async fn read_body(
    session: &mut Downstream,
    limit: usize,
    ctx: &mut RequestCtx,
) -> Result<Bytes, Stop> {
    // Nothing is read yet: what is left is the declared length.
    let declared = session
        .body_length_left()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::BodyTooLarge { limit }.into());
    }
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                let have = first.as_ref().map_or(0, Bytes::len) + rest.len();
                if have + chunk.len() > limit {
                    return Err(GatewayError::BodyTooLarge { limit }.into());
                }
                // The common case is one chunk: keep it without copying.
                match &first {
                    None => first = Some(chunk),
                    Some(f) => {
                        if rest.is_empty() {
                            rest.reserve(declared.unwrap_or(2 * f.len()).min(limit));
                            rest.extend_from_slice(f);
                        }
                        rest.extend_from_slice(&chunk);
                    }
                }
            }
            Ok(None) => break,
            Err(e) if e.etype == ErrorType::ReadTimedout => {
                let secs = session.read_timeout().unwrap_or_default().as_secs_f64();
                return Err(GatewayError::BodyTimeout {
                    secs,
                    request_id: ctx.request_id.clone(),
                }
                .into());
            }
            Err(e) if e.etype == h1::INVALID_CHUNK => {
                // The rest of the connection cannot be framed: answered,
                // then closed (the body is not done).
                return Err(GatewayError::BadRequest {
                    message: format!(
                        "The request body's chunked transfer coding is malformed: {}",
                        e.context.as_ref().map_or("bad framing", |c| c.as_str())
                    ),
                    param: None,
                }
                .into());
            }
            Err(_) => {
                return Err(abort(
                    "client closed the connection while sending the body",
                    ctx,
                    "client_gone",
                ))
            }
        }
    }
    Ok(if rest.is_empty() {
        first.unwrap_or_default()
    } else {
        rest.freeze()
    })
}

async fn send_json(
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    status: u16,
    body: Bytes,
) -> Result<(), Stop> {
    write_whole(session, ctx, status, body, &[]).await
}

async fn send_error(
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    err: &GatewayError,
) -> Result<()> {
    // The request body may be unread (early 401/404/413): don't let its bytes
    // be parsed as the next request on this connection.
    if !session.is_body_done() {
        session.set_keepalive(false);
    }
    let (status, body) = err.render(ctx.api);
    match write_whole(session, ctx, status, body, &err.headers()).await {
        Ok(()) => Ok(()),
        Err(Stop::Abort(e)) => Err(e),
        Err(Stop::Local(_)) => Ok(()),
    }
}

async fn write_whole(
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    status: u16,
    body: Bytes,
    headers: &[(&'static str, String)],
) -> Result<(), Stop> {
    ctx.status = status;
    let bad = |_| {
        Stop::Abort(pingora::Error::explain(
            ErrorType::InternalError,
            "header value",
        ))
    };
    let (mut resp, ()) = http::Response::new(()).into_parts();
    resp.status = http::StatusCode::from_u16(status)
        .map_err(|_| Stop::Abort(pingora::Error::explain(ErrorType::InternalError, "status")))?;
    let h = &mut resp.headers;
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(body.len()),
    );
    if ctx.route != "health" {
        h.insert(
            relay::REQUEST_ID,
            http::HeaderValue::from_str(&ctx.request_id).map_err(bad)?,
        );
    }
    for (k, v) in headers {
        h.insert(*k, http::HeaderValue::from_str(v).map_err(bad)?);
    }
    // A `HEAD` request gets the head only (`Downstream` drops the body).
    session
        .write_response_header(resp, false)
        .await
        .map_err(Stop::Abort)?;
    session
        .write_response_body(Some(body), true)
        .await
        .map_err(Stop::Abort)?;
    Ok(())
}
