//! Token counting: `POST /v1/messages/count_tokens` (Anthropic clients), and
//! the counter any other client API's count route calls
//! ([`count_on_route`] to choose a provider, [`count_tokens`] for one).
//!
//! | provider  | how the prompt is counted                                        |
//! |-----------|------------------------------------------------------------------|
//! | anthropic | `POST {base}/messages/count_tokens` (same family: client's bytes) |
//! | gemini    | `POST {base}/models/{m}:countTokens` with a `generateContentRequest` (same family: client's bytes) |
//! | openai    | [`estimate`]: no vendor endpoint exists, nothing is sent          |
//!
//! Provider choice is routing's (weights, health, key cooldowns); failover
//! is the simple kind: a connection failure, timeout, 5xx, 429 or key
//! rejection moves on to the next key or provider, any other 4xx is the
//! client's and is relayed. Counting never changes a provider's health (a
//! count is not an answer), though a 429 cools the key down as for chat.

use super::ctx::RequestCtx;
use super::error::GatewayError;
use super::state::GatewayState;
use super::upstream::{self, AttemptInput, Committed, Outcome};
use crate::config::{ApiKey, Provider, Snapshot};
use crate::health::now_ms;
use crate::protocol::chat::{self, Family, Part, Request};
use crate::routing::{pick_key, KeyChoice, Route};
use bytes::{Bytes, BytesMut};
use tokio::time::{timeout_at, Instant};

/// Largest count answer read from a vendor (a few dozen bytes in practice).
const ANSWER_LIMIT: usize = 64 * 1024;

/// Fields of Anthropic's count_tokens body. The endpoint refuses any other
/// ("Extra inputs are not permitted"), `max_tokens` and `stream` included,
/// so a translated Messages body keeps only these.
const ANTHROPIC_COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
    "output_config",
    "output_format",
];

/// The estimate for providers with no counting endpoint (OpenAI-compatible):
/// text bytes / 4 (rounded up), over every text the model reads — system,
/// message text, reasoning text, tool-call names and arguments, tool-result
/// text, tool names, descriptions and JSON schemas — plus
/// [`PER_TURN`] per turn, [`PER_MEDIA`] per image, audio or document, and
/// [`PRIMING`] once.
pub fn estimate(req: &Request<'_>) -> u64 {
    let mut bytes = 0usize;
    let mut media = 0u64;
    fn part(p: &Part<'_>, bytes: &mut usize, media: &mut u64) {
        match p {
            Part::Text(t) => *bytes += t.text.len(),
            Part::Refusal(t) => *bytes += t.len(),
            Part::Reasoning(r) => *bytes += r.text.len(),
            Part::ToolCall(c) => *bytes += c.name.len() + c.arguments.len(),
            Part::ToolResult(r) => r.content.iter().for_each(|p| part(p, bytes, media)),
            Part::Media(_) => *media += 1,
            Part::Opaque { raw, .. } => *bytes += raw.get().len(),
        }
    }
    for p in &req.system {
        part(p, &mut bytes, &mut media);
    }
    for turn in &req.turns {
        for p in &turn.parts {
            part(p, &mut bytes, &mut media);
        }
    }
    for t in &req.tools {
        bytes += t.name.len()
            + t.description.as_deref().map_or(0, str::len)
            + t.parameters.as_deref().map_or(0, |s| s.get().len());
    }
    (bytes as u64).div_ceil(4) + PER_TURN * req.turns.len() as u64 + PER_MEDIA * media + PRIMING
}

/// Framing tokens per turn (role markers), as OpenAI's own counting guide
/// adds per message.
pub const PER_TURN: u64 = 3;
/// One image, audio clip or document: about what Anthropic and OpenAI
/// charge for a ~1 megapixel image.
pub const PER_MEDIA: u64 = 1_600;
/// The reply's priming tokens.
pub const PRIMING: u64 = 3;

/// What a count is made from.
pub struct CountRequest<'a, 'r> {
    /// The client's request in canonical terms.
    pub request: &'a Request<'r>,
    /// The client's own body and its API family: sent as it is to a
    /// provider of the same family (only the model swapped when mapped).
    pub raw: Option<(Family, &'a Bytes)>,
    /// Client headers for same-family vendors (`anthropic-beta`,
    /// `anthropic-version`), already filtered by the caller.
    pub forward: &'a [(&'static str, http::HeaderValue)],
    pub deadline: Instant,
}

/// The prompt's token count at one provider, with one key. `model` is the
/// upstream model. Errors: the vendor's own (relayable) answer, or
/// `UpstreamFailed` / `Translate` as for chat.
pub async fn count_tokens(
    state: &GatewayState,
    provider: &Provider,
    key: Option<&ApiKey>,
    model: &str,
    req: &CountRequest<'_, '_>,
) -> Result<u64, GatewayError> {
    let family = provider.vendor.family();
    let (path, body) = match family {
        Family::OpenAi | Family::OpenAiResponses => return Ok(estimate(req.request)),
        Family::Anthropic => (
            format!("{}/messages/count_tokens", provider.endpoint.base_path),
            anthropic_body(provider, model, req)?,
        ),
        Family::Gemini => (
            gemini_path(&provider.endpoint.base_path, model),
            gemini_body(provider, model, req)?,
        ),
    };
    let forward = match req.raw {
        Some((f, _)) if f == family => req.forward,
        _ => &[],
    };
    let outcome = upstream::attempt(
        &state.connector,
        &state.dns,
        AttemptInput {
            provider,
            key,
            path: &path,
            body,
            stream: false,
            forward,
            deadline: req.deadline.min(Instant::now() + provider.timeouts.total),
        },
    )
    .await;
    let failed = |status, why: String| GatewayError::UpstreamFailed {
        status,
        message: format!("provider `{}`: {why}", provider.name),
    };
    match outcome {
        Outcome::Success(c) => {
            let body = read_all(state, *c, req.deadline)
                .await
                .map_err(|why| failed(502, why))?;
            read_count(family, &body).ok_or_else(|| {
                failed(
                    502,
                    "the token count answer has no input_tokens / totalTokens".into(),
                )
            })
        }
        Outcome::Status {
            status,
            body,
            reset,
        } => {
            // A 429 parks the key until the vendor's reset, as for chat.
            if status == 429 {
                if let Some(k) = key {
                    let routing = &state.snapshot.load().routing;
                    let park = reset.decide(routing.rate_limit_cooldown, routing.max_retry_after);
                    k.state.park(&provider.name, &k.masked, &park);
                }
            }
            Err(GatewayError::Upstream {
                status,
                body: state.snapshot.load().redactor().bytes(body),
                provider: provider.name.clone(),
                vendor: provider.vendor,
            })
        }
        Outcome::Connect(why) | Outcome::Broken(why) => Err(failed(502, why)),
        Outcome::Timeout(why) => Err(failed(504, why)),
    }
}

/// Chooses a provider (and key) for `route` as chat routing does and
/// counts there, moving on after failures (see the module docs). Records
/// the provider and attempts in `ctx`.
pub async fn count_on_route(
    state: &GatewayState,
    snap: &Snapshot,
    route: &Route,
    req: &CountRequest<'_, '_>,
    ctx: &mut RequestCtx,
) -> Result<u64, GatewayError> {
    let mut tried: Vec<(usize, usize)> = Vec::new();
    let mut last: Option<GatewayError> = None;
    while ctx.attempts < snap.routing.max_attempts && Instant::now() < req.deadline {
        let now = now_ms();
        let usable = |i: usize| {
            let p = &snap.providers[i];
            p.health.selectable(now)
                && (p.keys.is_empty() && !tried.contains(&(i, 0))
                    || (p.keys.iter().enumerate())
                        .any(|(k, key)| !tried.contains(&(i, k)) && key.state.available(now)))
        };
        let Some(index) = route.pick(usable, |_| 1.0) else {
            break;
        };
        let p = &snap.providers[index];
        let slot = match pick_key(p, now, |k| tried.contains(&(index, k))) {
            KeyChoice::Key(k) => Some(k),
            KeyChoice::Keyless => None,
            KeyChoice::Exhausted => break,
        };
        tried.push((index, slot.unwrap_or(0)));
        ctx.attempts += 1;
        let key = slot.map(|k| &p.keys[k]);
        ctx.provider = Some(p.name.clone());
        ctx.key = key.map(|k| k.masked.clone());
        let model = p.upstream_model(&route.model);
        ctx.upstream_model = Some(model.to_string());
        // Boxed: inline, this attempt and its body read (~6 KB of future)
        // would size the future of every request on the data plane, token
        // count or not (`Gateway::handle` is as large as its largest
        // branch, and it lives in the connection's task for a whole stream).
        match Box::pin(count_tokens(state, p, key, model, req)).await {
            Ok(n) => return Ok(n),
            Err(e) => {
                let status = e.status();
                let next = match &e {
                    GatewayError::Upstream { .. } => {
                        matches!(status, 401..=403 | 408 | 429 | 500..=599)
                    }
                    GatewayError::UpstreamFailed { .. } | GatewayError::Translate { .. } => true,
                    _ => false,
                };
                tracing::warn!(provider = %p.name, status, error = %e.message(), "token count failed");
                if !next {
                    return Err(e);
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| GatewayError::UpstreamFailed {
        status: 503,
        message: format!(
            "no provider serving `{}` could count tokens now (all unhealthy or their keys cooling down)",
            route.model
        ),
    }))
}

/// The Anthropic body: the client's bytes when it speaks Anthropic (the
/// model swapped only when the provider maps it), else the Anthropic
/// egress's Messages body cut to the count_tokens fields.
fn anthropic_body(
    p: &Provider,
    model: &str,
    req: &CountRequest<'_, '_>,
) -> Result<Bytes, GatewayError> {
    let bytes = match req.raw {
        Some((Family::Anthropic, raw)) if req.request.model == model => return Ok(raw.clone()),
        Some((Family::Anthropic, raw)) => raw.clone(),
        _ => encode(p, model, req.request)?,
    };
    // Rare (a mapped model, or another client API): a tree is fine here.
    let mut obj = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(obj)) => obj,
        _ => {
            return Err(GatewayError::BadRequest {
                message: "the request body is not a JSON object".into(),
                param: None,
            })
        }
    };
    obj.retain(|k, _| ANTHROPIC_COUNT_FIELDS.contains(&k.as_str()));
    obj.insert("model".into(), model.into());
    serde_json::to_vec(&obj)
        .map(Bytes::from)
        .map_err(|e| GatewayError::UpstreamFailed {
            status: 500,
            message: format!("cannot encode the count request: {e}"),
        })
}

/// Gemini's documented `CountTokensRequest` with a whole
/// `generateContentRequest` (so the system instruction and function
/// declarations are counted too, which `contents` alone would miss); it
/// names the model as `models/{m}`. The generate body is spliced in as the
/// egress wrote it.
fn gemini_body(
    p: &Provider,
    model: &str,
    req: &CountRequest<'_, '_>,
) -> Result<Bytes, GatewayError> {
    // A Gemini client's own CountTokensRequest goes as it is when the
    // provider serves the model under the client's name.
    if let Some((Family::Gemini, raw)) = req.raw {
        if req.request.model == model {
            return Ok(raw.clone());
        }
    }
    let inner = encode(p, model, req.request)?;
    let Some(rest) = inner.strip_prefix(b"{") else {
        return Err(GatewayError::UpstreamFailed {
            status: 500,
            message: "the Gemini request is not a JSON object".into(),
        });
    };
    let name = serde_json::to_string(&format!("models/{}", clean_model(model)))
        .unwrap_or_else(|_| "\"\"".into());
    let mut out = BytesMut::with_capacity(inner.len() + name.len() + 48);
    out.extend_from_slice(b"{\"generateContentRequest\":{\"model\":");
    out.extend_from_slice(name.as_bytes());
    if rest != b"}" {
        out.extend_from_slice(b",");
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(b"}");
    Ok(out.freeze())
}

/// A model name as a Gemini path segment (the characters Google uses).
fn clean_model(model: &str) -> String {
    model
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
        .collect()
}

fn gemini_path(base_path: &str, model: &str) -> String {
    format!("{base_path}/models/{}:countTokens", clean_model(model))
}

/// The provider's egress body for `req`, with the provider's overrides as
/// for chat (they may change what is counted: a system prompt, tools).
fn encode(p: &Provider, model: &str, req: &Request<'_>) -> Result<Bytes, GatewayError> {
    let translate = |e: chat::ChatError| GatewayError::Translate {
        provider: p.name.clone(),
        message: e.message,
        param: e.param,
    };
    if p.overrides.is_empty() {
        return (p.vendor.egress)
            .encode_request(req, model, &p.vendor_options)
            .map_err(translate);
    }
    let mut edited = req.clone();
    p.overrides.apply(&mut edited);
    (p.vendor.egress)
        .encode_request(&edited, model, &p.vendor_options)
        .map_err(translate)
}

/// `input_tokens` (Anthropic) or `totalTokens` (Gemini) of a count answer.
fn read_count(family: Family, body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Answer {
        input_tokens: Option<u64>,
        #[serde(rename = "totalTokens")]
        total_tokens: Option<u64>,
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    match family {
        Family::Anthropic => a.input_tokens,
        // Google omits zero-valued fields: an empty prompt is `{}`.
        Family::Gemini => Some(a.total_tokens.unwrap_or(0)),
        Family::OpenAi | Family::OpenAiResponses => None,
    }
}

/// The rest of a committed answer (bounded); the connection is pooled when
/// it was read to the end.
async fn read_all(
    state: &GatewayState,
    mut c: Committed,
    deadline: Instant,
) -> Result<Bytes, String> {
    let mut body = BytesMut::new();
    if let Some(f) = c.first.take() {
        body.extend_from_slice(&f);
    }
    let mut done = c.done;
    while !done {
        match timeout_at(deadline, c.session.read_response_body()).await {
            Ok(Ok(Some(chunk))) => {
                if body.len() + chunk.len() > ANSWER_LIMIT {
                    return Err(format!(
                        "the count answer is larger than {ANSWER_LIMIT} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
                done = c.session.response_done();
            }
            Ok(Ok(None)) => done = true,
            Ok(Err(e)) => return Err(format!("the connection failed mid-answer: {e}")),
            Err(_) => return Err("the deadline passed while reading the answer".into()),
        }
    }
    state.connector.release(c.session, &c.peer);
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_counts_text_tools_turns_and_media() {
        let body = br#"{"model":"m","system":"abcd","messages":[
            {"role":"user","content":[{"type":"text","text":"12345678"},
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
            {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"fn","input":{"a":1}}]}],
            "tools":[{"name":"fn","description":"dd","input_schema":{"type":"object"}}]}"#;
        let req = crate::proxy::ClientApi::ANTHROPIC
            .ingress()
            .decode_request(body)
            .expect("decodes");
        // Text: 4 + 8 + ("fn" + `{"a":1}`) 9 + tool ("fn" + "dd" +
        // `{"type":"object"}` 17) 21 = 42 bytes -> 11 tokens.
        assert_eq!(estimate(&req), 11 + 2 * PER_TURN + PER_MEDIA + PRIMING);
    }

    #[test]
    fn count_answers_are_read_per_family() {
        assert_eq!(
            read_count(Family::Anthropic, br#"{"input_tokens":42}"#),
            Some(42)
        );
        assert_eq!(
            read_count(Family::Anthropic, br#"{"totalTokens":42}"#),
            None
        );
        let g =
            br#"{"totalTokens":31,"promptTokensDetails":[{"modality":"TEXT","tokenCount":31}]}"#;
        assert_eq!(read_count(Family::Gemini, g), Some(31));
        assert_eq!(read_count(Family::Gemini, b"{}"), Some(0));
        assert_eq!(read_count(Family::Gemini, b"<html>"), None);
    }
}
