//! Relaying a committed upstream answer to the client.
//!
//! Event streams go out event by event as soon as each event is complete;
//! other bodies chunk by chunk. Nothing is batched. A stream the vendor cuts
//! ends with an explicit error event, never with a clean-looking end.

use super::failover::Chosen;
use super::{abort, client_gone, GatewayState, RequestCtx, Stop};
use crate::protocol::openai;
use crate::protocol::sse::EventSplitter;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// Vendor response headers worth passing to the client. Rate-limit headers
/// are left out: they describe one of the gateway's keys, not the client.
const PASS_HEADERS: &[&str] = &["x-request-id", "openai-processing-ms", "openai-version"];

fn client_header(chosen: &Chosen, sse: bool) -> Result<ResponseHeader> {
    let up = &chosen.committed.header;
    let mut resp = ResponseHeader::build(up.status, Some(8))?;
    let content_type = up
        .headers
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| http::HeaderValue::from_static("application/json"));
    resp.insert_header("content-type", content_type)?;
    match up.headers.get(http::header::CONTENT_LENGTH) {
        Some(len) if !sse => {
            resp.insert_header("content-length", len.clone())?;
        }
        _ => {
            resp.insert_header("transfer-encoding", "chunked")?;
        }
    }
    if sse {
        resp.insert_header("cache-control", "no-cache")?;
        // Tell nginx-style reverse proxies in front of us not to buffer.
        resp.insert_header("x-accel-buffering", "no")?;
    }
    for name in PASS_HEADERS {
        if let Some(v) = up.headers.get(*name) {
            resp.insert_header(*name, v.clone())?;
        }
    }
    resp.insert_header("x-llm-orchestrator-provider", chosen.provider.name.as_str())?;
    Ok(resp)
}

pub async fn relay(
    state: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    chosen: Chosen,
    _request_deadline: Instant,
) -> Result<(), Stop> {
    let sse = chosen
        .committed
        .header
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    let header = client_header(&chosen, sse).map_err(Stop::Abort)?;
    ctx.status = header.status.as_u16();
    let Chosen {
        provider,
        committed,
        deadline,
    } = chosen;
    let mut c = *committed;
    let mut splitter = sse.then(EventSplitter::default);

    let only_header = c.done && c.first.as_ref().is_none_or(Bytes::is_empty);
    session
        .write_response_header(Box::new(header), only_header)
        .await
        .map_err(|_| abort("client closed the connection", ctx, "client_gone"))?;
    if only_header {
        ctx.ttfb = ctx.start.map(|s| s.elapsed());
        state.release(c.session, &c.peer).await;
        return Ok(());
    }

    let mut next = c.first.take();
    let mut ended = c.done;
    loop {
        if let Some(chunk) = next.take() {
            let out = match &mut splitter {
                Some(s) => s.push(&chunk),
                None => Some(chunk),
            };
            if let Some(out) = out {
                if ctx.ttfb.is_none() {
                    ctx.ttfb = ctx.start.map(|s| s.elapsed());
                }
                session
                    .write_response_body(Some(out), false)
                    .await
                    .map_err(|_| {
                        abort(
                            "client closed the connection mid-answer",
                            ctx,
                            "client_gone",
                        )
                    })?;
            }
        }
        if ended {
            let tail = splitter
                .as_mut()
                .map(EventSplitter::take_pending)
                .filter(|t| !t.is_empty());
            session.write_response_body(tail, true).await.map_err(|_| {
                abort(
                    "client closed the connection mid-answer",
                    ctx,
                    "client_gone",
                )
            })?;
            state.release(c.session, &c.peer).await;
            return Ok(());
        }
        let read = tokio::select! {
            r = timeout_at(deadline, c.session.read_response_body()) => r,
            _ = client_gone(session) => {
                return Err(abort("client closed the connection mid-answer", ctx, "client_gone"));
            }
        };
        let failure = match read {
            Ok(Ok(Some(chunk))) => {
                next = Some(chunk);
                ended = c.session.response_done();
                continue;
            }
            Ok(Ok(None)) => {
                ended = true;
                continue;
            }
            Ok(Err(e)) => format!("the vendor connection failed mid-answer: {e}"),
            Err(_) => format!(
                "the answer exceeded the provider's total timeout of {:.0} s",
                provider.timeouts.total.as_secs_f64()
            ),
        };
        tracing::warn!(provider = %provider.name, error = %failure, "upstream answer cut after the first byte");
        ctx.outcome = "stream_cut";
        ctx.error = Some(failure.clone());
        if splitter.is_some() {
            // The partial event (if any) is dropped; the error event follows
            // the last complete one, then the stream ends without [DONE].
            let event = openai::stream_error_event(
                &format!("provider `{}`: {failure}", provider.name),
                "upstream_error",
                Some("stream_interrupted"),
            );
            session
                .write_response_body(Some(event), true)
                .await
                .map_err(|_| {
                    abort(
                        "client closed the connection mid-answer",
                        ctx,
                        "client_gone",
                    )
                })?;
            return Ok(());
        }
        // A plain body has no in-band error channel: close the connection
        // so the client sees a truncated response, not a complete one.
        return Err(abort("upstream body cut mid-answer", ctx, "stream_cut"));
    }
}

impl GatewayState {
    /// Return a fully read upstream connection to the pool.
    async fn release(
        &self,
        session: pingora::protocols::http::client::HttpSession,
        peer: &pingora::upstreams::peer::HttpPeer,
    ) {
        self.connector
            .release_http_session(session, peer, Some(Duration::from_secs(90)))
            .await;
    }
}
