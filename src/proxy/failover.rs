//! The attempt loop: pick a provider and key, try, classify, maybe try the
//! next — until one answers or the attempt budget or deadline is spent.
//!
//! | outcome                          | key                    | next step                      |
//! |----------------------------------|------------------------|--------------------------------|
//! | connect error / timeout / broken | —                      | next provider                  |
//! | 429                              | parked (vendor reset)  | next key, then next provider   |
//! | 401 / 402 / 403 naming the key   | cooldown (long)        | next key, then next provider   |
//! | 403 for the model or resource    | —                      | next key, then next provider   |
//! | 5xx, 529, 408, 3xx               | —                      | next provider                  |
//! | other 4xx (400/404/413/422 …)    | —                      | none: the request is wrong     |

use super::ahead::Ahead;
use super::client::ClientApi;
use super::ctx::RequestCtx;
use super::error::Unusable;
use super::state::GatewayState;
use super::upstream::{self, AttemptInput, Committed, Outcome};
use super::GatewayError;
use crate::config::{Provider, Snapshot};
use crate::health::{now_ms, Admission, CooldownReason, HealthState};
use crate::protocol::chat::{self, ChatError, Translation};
use crate::providers::Denial;
use crate::routing::{pick_key, KeyChoice, Route};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::OnceLock;
use tokio::time::Instant;

pub struct ChatRequest<'a> {
    pub api: ClientApi,
    pub client_model: &'a str,
    pub route: &'a Route,
    /// The client's body as received.
    pub body: &'a Bytes,
    /// The body decoded, once, when a provider needs more than the raw
    /// bytes (it borrows from `body`).
    /// Boxed: the request lives in the request's future, which is moved
    /// whole at every layer; the decoded request is only there when a
    /// translation needs it.
    pub decoded: OnceLock<Box<Result<chat::Request<'a>, ChatError>>>,
    pub stream: bool,
    pub include_usage: bool,
    /// Client headers forwarded to same-format vendors (`anthropic-beta`).
    pub forward: Vec<(&'static str, http::HeaderValue)>,
    pub deadline: Instant,
}

impl<'a> ChatRequest<'a> {
    /// An OpenAI chat stream whose client did not ask for usage: the
    /// vendor is asked anyway and its usage chunk kept from the client
    /// (see `crate::ledger::stream_usage`).
    /// Is an answer from `p` relayed as the vendor sent it (same format),
    /// rather than translated? `sse`: the answer is an event stream.
    pub fn relays_as_is(&self, p: &Provider, sse: bool) -> bool {
        self.api.native_at(p) && !(sse && self.api.reframes_streams())
    }

    /// A whole answer from `p` in the client's format, and its usage.
    /// `Err`: it cannot be translated (malformed, or the vendor's error
    /// object on a success status).
    pub fn translate_whole(
        &self,
        p: &Provider,
        body: &[u8],
    ) -> Result<(Bytes, chat::Usage), ChatError> {
        let answer = p.vendor.egress.decode_answer(body)?;
        let out =
            (self.api.ingress()).encode_answer_for(self.decoded_ok(), &answer, self.client_model);
        Ok((out, answer.usage))
    }

    /// The stream translation from `p`'s vendor format into the client's.
    pub fn translation(&self, p: &Provider) -> Translation {
        Translation::new(
            p.vendor.egress.stream_decoder(),
            self.api.ingress().stream_encoder_for(
                self.decoded_ok(),
                self.client_model,
                self.include_usage,
            ),
        )
    }

    pub fn strips_usage(&self) -> bool {
        self.stream && !self.include_usage && self.api == ClientApi::OPENAI
    }

    /// The prompt's tokens by the documented estimate (`count::estimate`),
    /// for a stream the client left before the vendor reported usage.
    pub fn estimated_prompt_tokens(&self) -> Option<u64> {
        self.decoded().ok().map(super::count::estimate)
    }

    /// The client's request in canonical terms, decoded once (failover
    /// re-encodes it for each provider). A decode error is the client's
    /// 400.
    fn decoded(&self) -> Result<&chat::Request<'a>, GatewayError> {
        let body: &'a [u8] = self.body;
        self.decoded
            .get_or_init(|| Box::new(self.api.ingress().decode_request(body)))
            .as_ref()
            .as_ref()
            .map_err(|e| GatewayError::Client(Box::new(e.clone())))
    }

    /// The decoded request, if it was decoded (translated routes).
    pub fn decoded_ok(&self) -> Option<&chat::Request<'a>> {
        self.decoded.get().and_then(|d| d.as_ref().as_ref().ok())
    }
}

pub struct Chosen {
    pub provider: Arc<Provider>,
    pub committed: Box<Committed>,
    /// The attempt's own deadline (request deadline or provider total).
    pub deadline: Instant,
    /// A translated stream, begun by the check (see [`super::relay::Ahead`]).
    pub ahead: Option<Box<super::ahead::Ahead>>,
}

/// Index of the key slot used; keyless providers use slot 0.
type Tried = Vec<(usize, usize)>;

fn key_untried(p: &Provider, tried: &Tried, now: u64) -> bool {
    if p.keys.is_empty() {
        return !tried.contains(&(p.index, 0));
    }
    p.keys
        .iter()
        .enumerate()
        .any(|(k, key)| !tried.contains(&(p.index, k)) && key.state.available(now))
}

/// The body for `p`: the client's bytes untouched when the provider speaks
/// the client's API and nothing changes (the fast path); otherwise decoded
/// (once), overridden in canonical terms (global, then the provider's),
/// encoded by the provider's egress adapter, and edited by the provider's
/// vendor edits. An encode error means this vendor cannot express the
/// request (`Translate`: the next provider may).
fn body_for(snap: &Snapshot, p: &Provider, req: &ChatRequest<'_>) -> Result<Bytes, GatewayError> {
    let upstream_model = p.upstream_model(&req.route.model);
    let same_family = req.api.native_at(p);
    if req.api.native_path(p).is_some() {
        return native_body(req, upstream_model, p);
    }
    if req.api.native_only() {
        return Err(GatewayError::Translate {
            provider: p.name.clone(),
            message: format!(
                "this endpoint is served only by providers that speak the OpenAI Responses API natively (`responses = \"native\"`); `{}` does not",
                p.name
            ),
            param: None,
        });
    }
    if same_family
        && upstream_model == req.client_model
        && !carries_gemini_signature(p, req.body)
        && snap.overrides.is_empty()
        && p.overrides.is_empty()
        && p.vendor_edits.is_empty()
    {
        // Usage is asked for on every OpenAI stream, so the ledger has it;
        // the relay takes the usage chunk out when the client did not ask.
        if req.strips_usage() {
            if let Some(b) = crate::ledger::stream_usage::ask_for_usage(req.body) {
                return Ok(b);
            }
        }
        return Ok(req.body.clone());
    }
    let decoded = req.decoded()?;
    let translate = |e: ChatError| GatewayError::Translate {
        provider: p.name.clone(),
        message: e.message,
        param: e.param,
    };
    // The version rules the egress applies must be those of the version
    // actually sent: the client's own, when it is forwarded.
    let client_version = req
        .forward
        .iter()
        .find(|(name, _)| same_family && *name == "anthropic-version")
        .and_then(|(_, v)| v.to_str().ok())
        .filter(|v| *v != p.vendor_options.anthropic_version);
    let options = match client_version {
        Some(v) => std::borrow::Cow::Owned(chat::VendorOptions {
            anthropic_version: v.to_string(),
            ..p.vendor_options.clone()
        }),
        None => std::borrow::Cow::Borrowed(&p.vendor_options),
    };
    let body = if snap.overrides.is_empty() && p.overrides.is_empty() {
        p.vendor
            .egress
            .encode_request(decoded, upstream_model, &options)
    } else {
        let mut edited = decoded.clone();
        snap.overrides.apply(&mut edited);
        p.overrides.apply(&mut edited);
        p.vendor
            .egress
            .encode_request(&edited, upstream_model, &options)
    }
    .map_err(translate)?;
    if p.vendor_edits.is_empty() {
        return Ok(body);
    }
    // Vendor edits work on the vendor's JSON: rare, so a tree is fine here.
    let mut obj = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(obj)) => obj,
        _ => {
            return Err(GatewayError::UpstreamFailed {
                status: 500,
                message: "the translated request is not a JSON object".into(),
            })
        }
    };
    p.vendor_edits.apply(&mut obj);
    serde_json::to_vec(&obj)
        .map(Bytes::from)
        .map_err(|e| GatewayError::UpstreamFailed {
            status: 500,
            message: format!("cannot encode the upstream request: {e}"),
        })
}

/// Does an Anthropic client's body hold a Gemini thought signature (a
/// `"gemini:…"` string, see `ingress::anthropic`)? Anthropic would reject
/// it, so such a body is decoded and re-encoded, which drops it. A false
/// positive (a text starting so) only costs the translation.
fn carries_gemini_signature(p: &Provider, body: &[u8]) -> bool {
    p.vendor.family() == chat::Family::Anthropic
        && memchr::memmem::find(body, b"\"gemini:").is_some()
}

/// The body for a provider that speaks the client's API at its own path
/// (Responses-native): the client's bytes, with `model` rewritten only when
/// aliasing maps it and the provider's vendor edits applied. Canonical
/// overrides need the chat model, which this body never enters.
fn native_body(
    req: &ChatRequest<'_>,
    upstream_model: &str,
    p: &Provider,
) -> Result<Bytes, GatewayError> {
    if upstream_model == req.client_model && p.vendor_edits.is_empty() {
        return Ok(req.body.clone());
    }
    let mut obj = match serde_json::from_slice::<serde_json::Value>(req.body) {
        Ok(serde_json::Value::Object(obj)) => obj,
        _ => {
            return Err(GatewayError::BadRequest {
                message: "the request body is not a JSON object".into(),
                param: None,
            })
        }
    };
    obj.insert("model".into(), upstream_model.into());
    p.vendor_edits.apply(&mut obj);
    serde_json::to_vec(&obj)
        .map(Bytes::from)
        .map_err(|e| GatewayError::UpstreamFailed {
            status: 500,
            message: format!("cannot encode the upstream request: {e}"),
        })
}

pub async fn run(
    state: &GatewayState,
    snap: &Arc<Snapshot>,
    req: &ChatRequest<'_>,
    ctx: &mut RequestCtx,
) -> Result<Chosen, GatewayError> {
    let mut tried: Tried = Vec::new();
    let mut exhausted: Vec<usize> = Vec::new();
    let mut prefer: Option<usize> = None;
    let mut last: Option<GatewayError> = None;
    let mut failures: Vec<String> = Vec::new();

    while ctx.attempts < snap.routing.max_attempts && Instant::now() < req.deadline {
        let now = now_ms();
        let policy = &snap.health.policy;
        let usable = |i: usize| {
            let p = &snap.providers[i];
            !exhausted.contains(&i) && p.health.selectable(now) && key_untried(p, &tried, now)
        };
        let keep = |i: usize| match snap.providers[i].health.state() {
            HealthState::Degraded => policy.degraded_weight,
            _ => 1.0,
        };
        let index = match prefer.take().filter(|&i| usable(i)) {
            Some(i) => i,
            None => match req.route.pick(usable, keep) {
                Some(i) => i,
                None => break,
            },
        };
        let p = &snap.providers[index];
        let admission = p.health.admit(now, policy);
        if admission == Admission::No {
            // Another request took the half-open trial first.
            exhausted.push(index);
            continue;
        }
        let key_slot = match pick_key(p, now, |k| tried.contains(&(index, k))) {
            KeyChoice::Key(k) => Some(k),
            KeyChoice::Keyless => None,
            KeyChoice::Exhausted => {
                exhausted.push(index);
                continue;
            }
        };
        let body = match body_for(snap, p, req) {
            Ok(b) => b,
            // This vendor can't express the request; another one may.
            Err(e @ GatewayError::Translate { .. }) => {
                tracing::debug!(provider = %p.name, error = %e.message(), "request not translatable for this provider");
                exhausted.push(index);
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        tried.push((index, key_slot.unwrap_or(0)));
        ctx.attempts += 1;
        let key = key_slot.map(|k| &p.keys[k]);
        ctx.provider = Some(p.name.clone());
        ctx.key = key.map(|k| k.masked.clone());
        ctx.upstream_model = Some(p.upstream_model(&req.route.model).to_string());

        let path: std::borrow::Cow<'_, str> = if let Some(native) = req.api.native_path(p) {
            native.into()
        } else if p.chat_path.is_empty() {
            p.vendor
                .chat_path(
                    &p.endpoint.base_path,
                    p.upstream_model(&req.route.model),
                    req.stream,
                )
                .into()
        } else {
            p.chat_path.as_str().into()
        };
        let forward: &[(&'static str, http::HeaderValue)] = if req.api.native_at(p) {
            &req.forward
        } else {
            &[]
        };
        let deadline = req.deadline.min(Instant::now() + p.timeouts.total);
        let outcome = upstream::attempt(
            &state.connector,
            &state.dns,
            AttemptInput {
                provider: p,
                key,
                path: &path,
                body,
                stream: req.stream,
                forward,
                deadline,
            },
        )
        .await;
        let key_label = key.map_or("-", |k| k.masked.as_str());
        match outcome {
            // Success is recorded when the answer completes (in relay), so
            // an answer cut mid-stream is not counted as a success first.
            Outcome::Success(mut committed) => {
                // Before anything reaches the client: is it the vendor's
                // format at all? Same-format answers are relayed as they
                // are, so this is their only check; for translated ones it
                // turns garbage into a failover instead of a 502. A
                // translated stream is checked by translating its first
                // events (kept for the relay), a translated whole answer
                // by translating it: one walk of the body, not two.
                let sse = super::check::is_sse(&committed);
                let translates = !req.relays_as_is(p, sse);
                let mut ahead = (sse && translates).then(|| Ahead::new(req.translation(p)));
                let whole = |body: &[u8]| {
                    req.translate_whole(p, body).map_err(|e| {
                        format!("answered 200 with an answer the gateway cannot translate: {e}")
                    })
                };
                let garbage = super::check::check_answer(
                    &mut committed,
                    deadline,
                    &state.metrics.edge,
                    ahead.as_deref_mut(),
                    (!sse && translates).then_some(&whole as &super::check::Whole<'_>),
                )
                .await
                .err();
                let Some(why) = garbage else {
                    state.metrics.attempt(&p.name, "ok");
                    return Ok(Chosen {
                        provider: p.clone(),
                        committed,
                        deadline,
                        ahead,
                    });
                };
                let why = snap.redactor().text(&why).into_owned();
                state.metrics.attempt(&p.name, "invalid_answer");
                tracing::warn!(provider = %p.name, error = %why, "provider answered garbage, failing over");
                p.health.on_failure(Some(200), &why, policy);
                failures.push(format!("{}: {why}", p.name));
                exhausted.push(index);
                last = Some(GatewayError::UpstreamFailed {
                    status: 502,
                    message: String::new(),
                });
            }
            Outcome::Status {
                status,
                body,
                reset,
            } => {
                // Classify by what the status means (Gemini reports a bad key
                // as 400 API_KEY_INVALID, which its adapter calls 401).
                let meaning = p.vendor.egress.decode_error(status, &body).status;
                // The vendor's words go to the client, the log and the
                // health endpoint: any key they echo is masked first.
                let body = snap.redactor().bytes(body);
                let denial = matches!(meaning, 401..=403).then(|| p.vendor.denial(meaning, &body));
                let relayed = GatewayError::Upstream {
                    status,
                    body,
                    provider: p.name.clone(),
                    vendor: p.vendor,
                };
                state.metrics.attempt(
                    &p.name,
                    match meaning {
                        429 => "rate_limited",
                        403 if denial == Some(Denial::NotPermitted) => "not_permitted",
                        401..=403 => "auth_failed",
                        500..=599 => "status_5xx",
                        400..=499 => "status_4xx",
                        _ => "status_other",
                    },
                );
                match meaning {
                    429 => {
                        // Parked until the reset the vendor names (headers
                        // or body), bounded; the fixed cooldown otherwise.
                        let park = reset.decide(
                            snap.routing.rate_limit_cooldown,
                            snap.routing.max_retry_after,
                        );
                        if let Some(k) = key {
                            k.state.park(&p.name, &k.masked, &park);
                        }
                        tracing::warn!(provider = %p.name, key = key_label, park_s = park.wait.as_secs_f64(), "key rate limited (429), trying the next key");
                        prefer = Some(index);
                    }
                    403 if denial == Some(Denial::NotPermitted) => {
                        // The key is fine for other models: no cooldown.
                        tracing::warn!(provider = %p.name, key = key_label, status, "key not permitted to use this model, trying the next candidate");
                        prefer = Some(index);
                    }
                    401..=403 => {
                        if let Some(k) = key {
                            k.state.cool_down(
                                snap.routing.auth_failure_cooldown,
                                CooldownReason::AuthFailed,
                            );
                        }
                        tracing::warn!(provider = %p.name, key = key_label, status, "key rejected by the vendor, trying the next key");
                        prefer = Some(index);
                    }
                    408 | 300..=399 | 500..=599 => {
                        tracing::warn!(provider = %p.name, key = key_label, status, "provider error, failing over");
                        p.health
                            .on_failure(Some(status), &relayed.message(), policy);
                        exhausted.push(index);
                    }
                    // The request itself is wrong: another vendor would say the
                    // same. It never counts against the provider — though a
                    // half-open trial that got an answer proves it is back.
                    _ => {
                        if admission == Admission::Trial {
                            p.health.on_success(policy);
                        }
                        return Err(relayed);
                    }
                }
                failures.push(format!("{}: HTTP {status}", p.name));
                last = Some(relayed);
            }
            Outcome::Connect(why) | Outcome::Broken(why) => {
                state.metrics.attempt(&p.name, "connect");
                tracing::warn!(provider = %p.name, error = %why, "provider unreachable, failing over");
                p.health.on_failure(None, &why, policy);
                failures.push(format!("{}: {why}", p.name));
                exhausted.push(index);
                last = Some(GatewayError::UpstreamFailed {
                    status: 502,
                    message: String::new(),
                });
            }
            Outcome::Timeout(why) => {
                state.metrics.attempt(&p.name, "timeout");
                tracing::warn!(provider = %p.name, error = %why, "provider timed out, failing over");
                p.health
                    .on_failure(None, &format!("timeout: {why}"), policy);
                failures.push(format!("{}: timeout ({why})", p.name));
                exhausted.push(index);
                last = Some(GatewayError::UpstreamFailed {
                    status: 504,
                    message: String::new(),
                });
            }
        }
    }

    Err(match last {
        // Keep the vendor's own words when it gave any.
        Some(err @ GatewayError::Upstream { .. }) => err,
        Some(GatewayError::UpstreamFailed { status, .. }) => GatewayError::UpstreamFailed {
            status,
            message: format!(
                "no provider could answer for `{}` ({} attempt{}): {}",
                req.route.model,
                ctx.attempts,
                if ctx.attempts == 1 { "" } else { "s" },
                failures.join("; ")
            ),
        },
        Some(other) => other,
        None if Instant::now() >= req.deadline => GatewayError::UpstreamFailed {
            status: 504,
            message: "the request deadline passed before any provider could be tried".into(),
        },
        None => no_usable_provider(snap, req),
    })
}

/// Nothing was tried: say why (all unhealthy -> 503 with the next trial
/// time; rate limits -> 429 with Retry-After; rejected keys -> 503).
fn no_usable_provider(snap: &Snapshot, req: &ChatRequest<'_>) -> GatewayError {
    let now = now_ms();
    let mut any_healthy = false;
    let mut rate_limited = false;
    let mut soonest_key = u64::MAX;
    let mut soonest_trial = u64::MAX;
    for &i in &req.route.candidates {
        let p = &snap.providers[i];
        if p.health.selectable(now) {
            any_healthy = true;
            for k in &p.keys {
                if matches!(
                    k.state.reason(now),
                    CooldownReason::RateLimited | CooldownReason::QuotaExhausted
                ) {
                    rate_limited = true;
                }
                soonest_key = soonest_key.min(k.state.remaining_ms(now));
            }
        } else if let Some(next) = p.health.view().next_trial_ms {
            soonest_trial = soonest_trial.min(next.saturating_sub(crate::health::wall_ms()));
        }
    }
    let (reason, wait) = match (any_healthy, rate_limited) {
        (false, _) => (Unusable::Unhealthy, soonest_trial),
        (true, true) => (Unusable::RateLimited, soonest_key),
        (true, false) => (Unusable::KeysRejected, soonest_key),
    };
    GatewayError::NoUsableProvider {
        model: req.route.model.clone(),
        reason,
        retry_after_secs: if wait == u64::MAX {
            1
        } else {
            wait.div_ceil(1000).max(1)
        },
    }
}
