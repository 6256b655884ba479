//! Relaying a committed upstream answer to the client.
//!
//! Three shapes: same-format answers are relayed byte for byte (event
//! streams event by event, as soon as each event is complete); cross-format
//! streams go through a translator event by event; cross-format whole
//! answers are read, translated and sent at once. Nothing is batched. A
//! stream the vendor cuts ends with an explicit error event in the client's
//! format, never with a clean-looking end.

use super::failover::{ChatRequest, Chosen};
use super::upstream::Committed;

use super::ahead::{feed, Ahead, Cut};
use super::check::is_sse;
use super::client::ClientApi;
use super::ctx::{abort, client_gone, grace_over, RequestCtx, Stop, REQUEST_ID_HEADER};
use super::downstream::Downstream;
use super::state::GatewayState;
use super::GatewayError;
use crate::config::{Provider, Snapshot};
use crate::protocol::chat::{ChatError, ErrorKind, Usage};
use crate::protocol::egress::usage::{UsageFold, UsageFormat};
use crate::protocol::sse::{EventSplitter, SseParser};
use bytes::{Bytes, BytesMut};
use http::HeaderName;
use pingora::prelude::*;
use tokio::time::{timeout_at, Instant};

/// Vendor response headers worth passing to the client. Rate-limit headers
/// are left out: they describe one of the gateway's keys, not the client.
const PASS_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("request-id"),
    HeaderName::from_static("openai-processing-ms"),
    HeaderName::from_static("openai-version"),
];
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
const PROVIDER_HEADER: HeaderName = HeaderName::from_static("x-llm-orchestrator-provider");
pub(super) const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
/// Largest whole answer read for translation.
const TRANSLATE_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Whole same-format answers up to this size are also scanned for usage.
const USAGE_SCAN_LIMIT: usize = 1024 * 1024;

/// The client's response header. `passthrough` keeps the vendor's content
/// type and length; translated answers are JSON or SSE of our making.
fn client_header(
    up: &super::h1::VendorHead,
    provider: &str,
    sse: bool,
    content_length: Option<usize>,
    passthrough: bool,
    request_id: &str,
) -> Result<http::response::Parts> {
    // No case map (see `upstream::build_request`): standard names go out
    // title-cased, ours lower-case. Built as `http` parts with constant
    // names: Pingora's `insert_header` parses every name from its text
    // again (~3k instructions a request for these few, callgrind).
    use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
    use http::HeaderValue as V;
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = up.status;
    let h = &mut parts.headers;
    h.reserve(9);
    // Constant values as `from_static` (a `&str` is copied on every insert).
    if sse {
        h.insert(
            CONTENT_TYPE,
            V::from_static("text/event-stream; charset=utf-8"),
        );
        h.insert(CACHE_CONTROL, V::from_static("no-cache"));
        // Tell nginx-style reverse proxies in front of us not to buffer.
        h.insert(ACCEL_BUFFERING, V::from_static("no"));
    } else if passthrough {
        let ct = up.headers.value("content-type");
        h.insert(
            CONTENT_TYPE,
            ct.unwrap_or_else(|| V::from_static("application/json")),
        );
    } else {
        h.insert(CONTENT_TYPE, V::from_static("application/json"));
    }
    let upstream_length = up.content_length.filter(|_| passthrough && !sse);
    match (content_length, upstream_length) {
        (Some(n), _) => h.insert(CONTENT_LENGTH, V::from(n)),
        (None, Some(len)) => h.insert(CONTENT_LENGTH, V::from(len)),
        _ => h.insert(TRANSFER_ENCODING, V::from_static("chunked")),
    };
    for name in &PASS_HEADERS {
        if let Some(v) = up.headers.value(name.as_str()) {
            h.insert(name.clone(), v);
        }
    }
    let bad = |_| Error::explain(InvalidHTTPHeader, "header value");
    h.insert(PROVIDER_HEADER, V::from_str(provider).map_err(bad)?);
    h.insert(REQUEST_ID, V::from_str(request_id).map_err(bad)?);
    Ok(parts)
}

/// The client header for a relayed answer, and the parts of the chosen
/// attempt the relay loop works with.
fn open_stream(
    ctx: &mut RequestCtx,
    chosen: Chosen,
    sse: bool,
    passthrough: bool,
) -> Result<
    (
        http::response::Parts,
        std::sync::Arc<Provider>,
        Committed,
        Instant,
    ),
    Stop,
> {
    // A whole answer read during the check: its exact length.
    let whole = (passthrough && !sse && chosen.committed.done)
        .then(|| chosen.committed.first.as_ref().map_or(0, Bytes::len));
    let header = client_header(
        &chosen.committed.header,
        &chosen.provider.name,
        sse,
        whole,
        passthrough,
        &ctx.request_id,
    )
    .map_err(Stop::Abort)?;
    ctx.status = header.status.as_u16();
    let Chosen {
        provider,
        committed,
        deadline,
        ahead: _,
    } = chosen;
    Ok((header, provider, *committed, deadline))
}

pub async fn relay(
    state: &GatewayState,
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    req: &ChatRequest<'_>,
    chosen: Chosen,
    grace: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Stop> {
    let sse = is_sse(&chosen.committed);
    // One wait for the whole answer, polled by every read: it registers
    // with the channel once, not once per chunk.
    let grace = std::pin::pin!(grace_over(grace));
    let mut grace: Grace<'_> = grace;
    let grace = &mut grace;
    let relayed = if req.relays_as_is(&chosen.provider, sse) {
        let strip = sse && req.strips_usage();
        passthrough(state, session, ctx, req.api, chosen, sse, strip, grace).await
    } else if sse {
        translate_stream(state, session, ctx, req, chosen, grace).await
    } else {
        translate_whole(state, session, ctx, req, chosen, grace).await
    };
    // A stream the client left before the vendor said how long the prompt
    // was (OpenAI-format vendors report usage only at the end): the prompt
    // is estimated, so the ledger and budgets still count it; the output
    // already streamed stays uncounted.
    if sse && ctx.outcome == "client_gone" && ctx.usage.is_none_or(|u| u.prompt_tokens == 0) {
        if let Some(prompt) = req.estimated_prompt_tokens() {
            let mut u = ctx.usage.unwrap_or_default();
            u.prompt_tokens = prompt;
            u.total_tokens = prompt.saturating_add(u.completion_tokens);
            ctx.usage = Some(u);
        }
    }
    relayed
}

/// The client's response head, held until the first body bytes so both go
/// out in one write (see `cork`), and a stream's last events sent with the
/// chunked terminator. Every write of a relay loop's turn goes through
/// [`Out::send`] (or [`Out::send_held`] when the turn writes again at
/// once); the head goes out alone ([`Out::head`]) before the relay waits
/// for the vendor, so the client never waits for it.
struct Out {
    head: Option<Box<http::response::Parts>>,
}

impl Out {
    async fn send(
        &mut self,
        session: &mut Downstream,
        body: Option<Bytes>,
        end: bool,
    ) -> pingora::Result<()> {
        match body.filter(|b| !b.is_empty()) {
            // The last events and the terminator: one flush.
            Some(last) if end => {
                self.send_held(session, last).await?;
                session.write_response_body(None, true).await
            }
            body => {
                self.write_head(session, body.is_some(), end && body.is_none())
                    .await?;
                session.write_response_body(body, end).await
            }
        }
    }

    /// [`Out::send`] of a body that is not the end, not flushed: the
    /// caller's next `send` (in the same turn) flushes both.
    async fn send_held(&mut self, session: &mut Downstream, body: Bytes) -> pingora::Result<()> {
        self.write_head(session, true, false).await?;
        super::cork::set(session, true);
        let written = session.write_response_body(Some(body), false).await;
        super::cork::set(session, false);
        written
    }

    /// The head, if it has not gone out yet; `hold`: not flushed (the
    /// body write that follows flushes both).
    async fn write_head(
        &mut self,
        session: &mut Downstream,
        hold: bool,
        end: bool,
    ) -> pingora::Result<()> {
        let Some(head) = self.head.take() else {
            return Ok(());
        };
        super::cork::set(session, hold);
        let written = session.write_response_header(*head, end).await;
        super::cork::set(session, false);
        written
    }

    /// The head, alone, if it has not gone out yet.
    async fn head(&mut self, session: &mut Downstream) -> pingora::Result<()> {
        self.write_head(session, false, false).await
    }
}

/// Resolves when the shutdown grace period has run out (see
/// `GatewayState::grace_over`). Never polled again once it has.
type Grace<'a> = std::pin::Pin<&'a mut (dyn std::future::Future<Output = ()> + Send + 'a)>;

/// Why the wait for the next upstream chunk stopped early.
enum Interrupt {
    ClientGone,
    /// The shutdown grace period ran out.
    Shutdown,
}

/// The end of an answer the shutdown grace period interrupted: the client
/// is told in band on a stream (a plain body can only be cut), and the
/// request is logged as `shutdown`. The provider did nothing wrong.
async fn shut_down(
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    api: ClientApi,
    sse: bool,
) -> Result<(), Stop> {
    tracing::warn!("shutdown grace period over: ending a request still in flight");
    ctx.outcome = "shutdown";
    ctx.error = Some(super::error::SHUTTING_DOWN.to_string());
    if !sse {
        return Err(abort(
            "shutdown grace period over mid-answer",
            ctx,
            "shutdown",
        ));
    }
    session
        .write_response_body(
            Some(stream_error_code(
                api,
                super::error::SHUTTING_DOWN,
                "shutting_down",
            )),
            true,
        )
        .await
        .map_err(|_| client_closed(ctx))
}

fn client_closed(ctx: &mut RequestCtx) -> Stop {
    abort(
        "client closed the connection mid-answer",
        ctx,
        "client_gone",
    )
}

/// The next upstream chunk, raced against the client hanging up.
async fn next_chunk(
    c: &mut Committed,
    session: &mut Downstream,
    deadline: Instant,
    grace: &mut Grace<'_>,
) -> Result<Result<Option<Bytes>, String>, Interrupt> {
    // `biased`, in this order: the end of the grace period first (its
    // future lives across chunks, so polling it is a flag check, and a
    // vendor whose chunks are always ready cannot keep a stream past it),
    // then the vendor's chunk, then the client-gone watcher (a write to a
    // gone client fails anyway).
    tokio::select! {
        biased;
        _ = grace.as_mut() => Err(Interrupt::Shutdown),
        r = timeout_at(deadline, c.session.read_response_body()) => Ok(match r {
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) => Err(format!("the vendor connection failed mid-answer: {e}")),
            Err(_) => Err("the answer exceeded the provider's total timeout".to_string()),
        }),
        _ = client_gone(session) => Err(Interrupt::ClientGone),
    }
}

/// The next body chunk if the upstream session can hand it over without
/// waiting (already read into its buffer, e.g. the rest of a chunked
/// answer that arrived in one segment); `None` when it would have to wait.
/// Dropping the pending read is safe: Pingora's own proxy loop cancels
/// these reads in `select!` the same way.
fn ready_chunk(c: &mut Committed) -> Option<Result<Option<Bytes>, String>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let read = std::pin::pin!(c.session.read_response_body());
    match std::future::Future::poll(read, &mut cx) {
        std::task::Poll::Ready(r) => {
            Some(r.map_err(|e| format!("the vendor connection failed mid-answer: {e}")))
        }
        std::task::Poll::Pending => None,
    }
}

/// Same format: bytes go out as they come (whole events for streams).
/// `strip`: take out the usage chunk the client did not ask for.
#[allow(clippy::too_many_arguments)]
async fn passthrough(
    state: &GatewayState,
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    api: ClientApi,
    chosen: Chosen,
    sse: bool,
    strip: bool,
    grace: &mut Grace<'_>,
) -> Result<(), Stop> {
    let (header, provider, mut c, deadline) = open_stream(ctx, chosen, sse, true)?;
    let mut splitter = sse.then(EventSplitter::default);
    let mut sniffer = UsageSniffer::new(api);

    let only_header = c.done && c.first.as_ref().is_none_or(Bytes::is_empty);
    if only_header {
        session
            .write_response_header(header, true)
            .await
            .map_err(|_| client_closed(ctx))?;
        ctx.ttfb = ctx.start.map(|s| s.elapsed());
        state.complete(&provider, c.session, &c.peer);
        return Ok(());
    }
    let mut w = Out {
        head: Some(Box::new(header)),
    };

    if let (Some(at), Some(first)) = (c.usage_at.take(), c.first.as_ref()) {
        sniffer.checked_whole(first, &at);
    }
    let mut next = c.first.take();
    let mut ended = c.done;
    // The first events were walked by the failover check.
    let mut checked = c.checked;
    // A read that failed while draining what was ready; handled where the
    // next read would be.
    let mut read_failure: Option<String> = None;
    loop {
        if let Some(chunk) = next.take() {
            let out = match &mut splitter {
                Some(s) => {
                    s.extend(&chunk);
                    // What the vendor already sent goes into the same
                    // client write.
                    while !ended && read_failure.is_none() {
                        match ready_chunk(&mut c) {
                            Some(Ok(Some(more))) => {
                                ended = c.session.response_done();
                                s.extend(&more);
                            }
                            Some(Ok(None)) => ended = true,
                            Some(Err(why)) => read_failure = Some(why),
                            None => break,
                        }
                    }
                    s.take_complete()
                }
                None => {
                    sniffer.body_chunk(&chunk);
                    Some(chunk)
                }
            };
            if let Some(out) = out {
                if sse {
                    let checks = super::framing::check_events_after(&out, checked);
                    checked = 0;
                    if let Err(fault) = checks {
                        return end_with_fault(
                            state, session, &mut w, ctx, api, &provider, sniffer, out, fault,
                        )
                        .await;
                    }
                    sniffer.events(&out);
                }
                let out = match strip {
                    true => crate::ledger::stream_usage::strip_usage_chunk(out),
                    false => out,
                };
                if ctx.ttfb.is_none() {
                    ctx.ttfb = ctx.start.map(|s| s.elapsed());
                }
                // When the answer already ended, the tail write below
                // follows at once: one flush for both.
                let written = match ended {
                    true => w.send_held(session, out).await,
                    false => w.send(session, Some(out), false).await,
                };
                if written.is_err() {
                    ctx.usage = sniffer.usage();
                    return Err(client_closed(ctx));
                }
            }
        }
        if ended {
            let tail = splitter
                .as_mut()
                .map(EventSplitter::take_pending)
                .filter(|t| !t.is_empty());
            if let Some(t) = &tail {
                if let Err(fault) = super::framing::check_events(t) {
                    return end_with_fault(
                        state,
                        session,
                        &mut w,
                        ctx,
                        api,
                        &provider,
                        sniffer,
                        t.clone(),
                        fault,
                    )
                    .await;
                }
                sniffer.events(t);
            }
            let tail = match strip {
                true => tail.map(crate::ledger::stream_usage::strip_usage_chunk),
                false => tail,
            };
            ctx.usage = if sse {
                sniffer.usage()
            } else {
                sniffer.body_usage()
            };
            w.send(session, tail, true)
                .await
                .map_err(|_| client_closed(ctx))?;
            state.complete(&provider, c.session, &c.peer);
            return Ok(());
        }
        w.head(session).await.map_err(|_| client_closed(ctx))?;
        let read = match read_failure.take() {
            Some(why) => Ok(Err(why)),
            None => next_chunk(&mut c, session, deadline, grace).await,
        };
        let failure = match read {
            Err(Interrupt::ClientGone) => {
                ctx.usage = sniffer.usage();
                return Err(client_closed(ctx));
            }
            Err(Interrupt::Shutdown) => {
                // The partial event (if any) is dropped.
                ctx.usage = sniffer.usage();
                return shut_down(session, ctx, api, sse).await;
            }
            Ok(Ok(Some(chunk))) => {
                next = Some(chunk);
                ended = c.session.response_done();
                continue;
            }
            Ok(Ok(None)) => {
                ended = true;
                continue;
            }
            Ok(Err(why)) => why,
        };
        ctx.usage = sniffer.usage();
        let failure = cut(ctx, &provider, &state.snapshot.load(), &failure);
        if sse {
            // The partial event (if any) is dropped; the error event follows
            // the last complete one.
            let event = stream_error(api, &format!("provider `{}`: {failure}", provider.name));
            session
                .write_response_body(Some(event), true)
                .await
                .map_err(|_| client_closed(ctx))?;
            return Ok(());
        }
        // A plain body has no in-band error channel: close the connection
        // so the client sees a truncated response, not a complete one.
        return Err(abort("upstream body cut mid-answer", ctx, "stream_cut"));
    }
}

/// A same-format stream carried garbage or the vendor's error event after
/// the answer was committed: relay the good events before it (and the
/// vendor's own error event, masked, which already ends the stream in the
/// client's format), or else end with our in-band error event.
#[allow(clippy::too_many_arguments)]
async fn end_with_fault(
    state: &GatewayState,
    session: &mut Downstream,
    w: &mut Out,
    ctx: &mut RequestCtx,
    api: ClientApi,
    provider: &Provider,
    mut sniffer: UsageSniffer,
    out: Bytes,
    fault: super::framing::EventFault,
) -> Result<(), Stop> {
    let snap = state.snapshot.load();
    let redactor = snap.redactor();
    let mut last = BytesMut::new();
    if fault.vendor_error {
        let events = redactor.bytes(out.slice(..fault.end));
        sniffer.events(&events);
        last.extend_from_slice(&events);
    } else {
        let good = out.slice(..fault.valid);
        sniffer.events(&good);
        last.extend_from_slice(&good);
    }
    ctx.usage = sniffer.usage();
    let why = cut(ctx, provider, &snap, &fault.why);
    if !fault.vendor_error {
        last.extend_from_slice(&stream_error(
            api,
            &format!("provider `{}`: {why}", provider.name),
        ));
    }
    if ctx.ttfb.is_none() {
        ctx.ttfb = ctx.start.map(|s| s.elapsed());
    }
    w.send(session, Some(last.freeze()), true)
        .await
        .map_err(|_| client_closed(ctx))
}

/// Record an answer that failed after the first byte; returns the reason
/// with any secret it echoes masked (vendor error events can).
fn cut(ctx: &mut RequestCtx, provider: &Provider, snap: &Snapshot, failure: &str) -> String {
    let failure = snap.redactor().text(failure).into_owned();
    tracing::warn!(provider = %provider.name, error = %failure, "upstream answer cut after the first byte");
    provider.health.on_failure(
        None,
        &format!("answer cut mid-stream: {failure}"),
        &snap.health.policy,
    );
    ctx.outcome = "stream_cut";
    ctx.error = Some(failure.clone());
    failure
}

/// An in-band error event in the client's stream format.
fn stream_error(api: ClientApi, message: &str) -> Bytes {
    stream_error_code(api, message, "stream_interrupted")
}

fn stream_error_code(api: ClientApi, message: &str, code: &str) -> Bytes {
    let err = ChatError::new(ErrorKind::Upstream, 502, message).with_code(code);
    api.ingress().stream_error(&err)
}

/// Cross format, whole answer: read it all, translate, send.
async fn translate_whole(
    state: &GatewayState,
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    req: &ChatRequest<'_>,
    chosen: Chosen,
    grace: &mut Grace<'_>,
) -> Result<(), Stop> {
    let provider_name = chosen.provider.name.clone();
    let mut c = *chosen.committed;
    let status = c.header.status.as_u16();
    let (out, usage) = match c.translated.take() {
        // It arrived whole and the failover check translated it.
        Some(done) => {
            state.complete(&chosen.provider, c.session, &c.peer);
            done
        }
        None => {
            // `_held`: the answer counts against the buffer budget until
            // it is translated.
            let (body, _held) = read_rest(
                state,
                session,
                ctx,
                &provider_name,
                chosen.deadline,
                &mut c,
                grace,
            )
            .await?;
            state.complete(&chosen.provider, c.session, &c.peer);
            req.translate_whole(&chosen.provider, &body)
                .map_err(|e| GatewayError::UpstreamFailed {
                    status: 502,
                    message: state
                        .snapshot
                        .load()
                        .redactor()
                        .text(&format!(
                            "provider `{provider_name}` sent an answer the gateway cannot translate: {e}"
                        ))
                        .into_owned(),
                })?
        }
    };
    ctx.usage = Some(usage);
    let header = client_header(
        &c.header,
        &provider_name,
        false,
        Some(out.len()),
        false,
        &ctx.request_id,
    )
    .map_err(Stop::Abort)?;
    ctx.status = status;
    session
        .write_response_header(header, false)
        .await
        .map_err(|_| client_closed(ctx))?;
    ctx.ttfb = ctx.start.map(|s| s.elapsed());
    session
        .write_response_body(Some(out), true)
        .await
        .map_err(|_| client_closed(ctx))
}

/// The rest of a whole answer the check could not hold whole, and its
/// share of the buffer budget.
async fn read_rest<'s>(
    state: &'s GatewayState,
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    provider_name: &str,
    deadline: Instant,
    c: &mut Committed,
    grace: &mut Grace<'_>,
) -> Result<(BytesMut, super::edge::Buffered<'s>), Stop> {
    let mut body = BytesMut::new();
    // Every buffered byte counts against the gateway-wide budget until the
    // answer is sent (`server.max_buffered_response_bytes`).
    let mut held = super::edge::Buffered::new(&state.metrics.edge);
    let over_budget = |limit| Stop::from(GatewayError::BufferBudget { limit });
    if let Some(f) = c.first.take() {
        held.grow(f.len()).map_err(over_budget)?;
        body.extend_from_slice(&f);
    }
    let mut ended = c.done;
    while !ended {
        match next_chunk(c, session, deadline, grace).await {
            Err(Interrupt::ClientGone) => return Err(client_closed(ctx)),
            // Nothing was sent yet: a whole error answer.
            Err(Interrupt::Shutdown) => return Err(GatewayError::ShuttingDown.into()),
            Ok(Ok(Some(chunk))) => {
                held.grow(chunk.len()).map_err(over_budget)?;
                if body.len() + chunk.len() > TRANSLATE_BODY_LIMIT {
                    return Err(GatewayError::UpstreamFailed {
                        status: 502,
                        message: format!("provider `{provider_name}` sent an answer larger than {TRANSLATE_BODY_LIMIT} bytes"),
                    }
                    .into());
                }
                body.extend_from_slice(&chunk);
                ended = c.session.response_done();
            }
            Ok(Ok(None)) => ended = true,
            Ok(Err(why)) => {
                return Err(GatewayError::UpstreamFailed {
                    status: 502,
                    message: format!("provider `{provider_name}`: {why}"),
                }
                .into())
            }
        }
    }
    Ok((body, held))
}

/// Cross format, event stream: every upstream event is translated and sent
/// as soon as it is complete.
async fn translate_stream(
    state: &GatewayState,
    session: &mut Downstream,
    ctx: &mut RequestCtx,
    req: &ChatRequest<'_>,
    mut chosen: Chosen,
    grace: &mut Grace<'_>,
) -> Result<(), Stop> {
    let ahead = chosen.ahead.take();
    let (mut header, provider, mut c, deadline) = open_stream(ctx, chosen, true, false)?;
    if req.api.reframes_streams() {
        header.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(req.api.stream_content_type()),
        );
    }
    // What the failover check already translated is in `out` (and no
    // longer in `c.first`).
    let Ahead {
        mut parser,
        mut tr,
        mut out,
    } = *ahead.unwrap_or_else(|| Ahead::new(req.translation(&provider)));
    let mut w = Out {
        head: Some(Box::new(header)),
    };

    let mut next = c.first.take();
    let mut ended = c.done;
    // Everything one upstream read produces goes out as one body chunk.
    loop {
        let mut failure: Option<Cut> = None;
        // `None` on the first turn when the failover check already
        // translated the first read (`Ahead`): what followed it is drained.
        let mut pending = next.take();
        loop {
            if let Some(chunk) = pending.take() {
                // Translated events are somewhat larger than the vendor's;
                // one allocation per read instead of repeated growth.
                out.reserve(chunk.len() * 2 + 512);
                failure = feed(&mut parser, &mut tr, &chunk, &mut out);
            }
            if failure.is_some() || ended {
                break;
            }
            // What the vendor already sent goes into the same client write.
            match ready_chunk(&mut c) {
                Some(Ok(Some(more))) => {
                    ended = c.session.response_done();
                    pending = Some(more);
                }
                Some(Ok(None)) => ended = true,
                Some(Err(why)) => failure = Some(Cut::Broken(why)),
                None => break,
            }
        }
        if failure.is_none() && ended {
            if let Some(ev) = parser.finish() {
                if let Err(e) = tr.push(&ev.event, &ev.data, &mut out) {
                    failure = Some(Cut::Broken(e.to_string()));
                }
            }
            if failure.is_none() {
                if let Err(e) = tr.finish(true, &mut out) {
                    failure = Some(Cut::Broken(e.to_string()));
                } else if let Some(e) = tr.failure() {
                    failure = Some(Cut::Reported(format!(
                        "the vendor reported an error mid-stream: {e}"
                    )));
                }
            }
        }
        let reported = matches!(failure, Some(Cut::Reported(_)));
        let last = (ended && failure.is_none()) || reported;
        if !out.is_empty() || last {
            if ctx.ttfb.is_none() && !out.is_empty() {
                ctx.ttfb = ctx.start.map(|s| s.elapsed());
            }
            let batch = (!out.is_empty()).then(|| out.split().freeze());
            ctx.usage = Some(tr.usage());
            if w.send(session, batch, last).await.is_err() {
                return Err(client_closed(ctx));
            }
            if let Some(Cut::Reported(why)) = &failure {
                cut(ctx, &provider, &state.snapshot.load(), why);
                return Ok(());
            }
            if last {
                state.complete(&provider, c.session, &c.peer);
                return Ok(());
            }
        }
        if failure.is_none() {
            w.head(session).await.map_err(|_| client_closed(ctx))?;
            match next_chunk(&mut c, session, deadline, grace).await {
                Err(Interrupt::ClientGone) => {
                    ctx.usage = Some(tr.usage());
                    return Err(client_closed(ctx));
                }
                Err(Interrupt::Shutdown) => {
                    ctx.usage = Some(tr.usage());
                    return shut_down(session, ctx, req.api, true).await;
                }
                Ok(Ok(Some(chunk))) => {
                    next = Some(chunk);
                    ended = c.session.response_done();
                    continue;
                }
                Ok(Ok(None)) => {
                    ended = true;
                    continue;
                }
                Ok(Err(why)) => failure = Some(Cut::Broken(why)),
            }
        }
        let why = match failure {
            Some(Cut::Broken(why) | Cut::Reported(why)) => why,
            None => String::new(),
        };
        ctx.usage = Some(tr.usage());
        let why = cut(ctx, &provider, &state.snapshot.load(), &why);
        let message = format!("provider `{}`: {why}", provider.name);
        // Formats whose error event names the stream (Responses) write it
        // from the translation's state.
        let stateful = ChatError::new(ErrorKind::Upstream, 502, message.as_str())
            .with_code("stream_interrupted");
        let event = tr
            .fail(&stateful)
            .unwrap_or_else(|| stream_error(req.api, &message));
        w.send(session, Some(event), true)
            .await
            .map_err(|_| client_closed(ctx))?;
        return Ok(());
    }
}

/// Does `bytes` hold a `"usage…": {` member (`"usage"`, Gemini's
/// `"usageMetadata"`) whose value is an object? A substring scan, no parse.
fn has_usage_object(bytes: &[u8]) -> bool {
    // Built once: a `memmem::find_iter` call builds its searcher each time.
    static USAGE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage"));
    USAGE.find_iter(bytes).any(|at| {
        let rest = &bytes[at + 6..];
        let Some(close) = memchr::memchr(b'"', rest) else {
            return false;
        };
        let mut after = rest[close + 1..]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace());
        after.next() == Some(b':') && after.next() == Some(b'{')
    })
}

/// Usage read off same-format answers without changing a byte of them.
struct UsageSniffer {
    format: UsageFormat,
    fold: UsageFold,
    body: Option<Vec<Bytes>>,
    /// A whole answer's usage, read where the failover check found it.
    whole: Option<Usage>,
}

impl UsageSniffer {
    fn new(api: ClientApi) -> Self {
        UsageSniffer {
            format: api.usage_format(),
            fold: UsageFold::default(),
            body: Some(Vec::new()),
            whole: None,
        }
    }

    /// The whole answer was read and walked by the failover check, which
    /// noted where its usage is: read it from there, and keep no chunks.
    fn checked_whole(&mut self, body: &[u8], at: &super::framing::UsageAt) {
        let raw = |r: &Option<std::ops::Range<usize>>| r.clone().and_then(|r| body.get(r));
        self.whole = self
            .format
            .usage_value(raw(&at.usage), raw(&at.usage_metadata));
        self.body = None;
    }

    /// Complete SSE events; only those carrying a usage object are parsed
    /// (OpenAI streams asked for usage carry `"usage":null` on every chunk:
    /// those are not; several events arrive in one read).
    fn events(&mut self, bytes: &[u8]) {
        if !has_usage_object(bytes) {
            return;
        }
        let mut parser = SseParser::default();
        for ev in parser.push(bytes).into_iter().chain(parser.finish()) {
            if has_usage_object(ev.data.as_bytes()) {
                self.fold.event(self.format, ev.data.as_bytes());
            }
        }
    }

    /// Keep the chunk (a reference-counted handle, not a copy).
    fn body_chunk(&mut self, chunk: &Bytes) {
        if let Some(parts) = &mut self.body {
            let have: usize = parts.iter().map(Bytes::len).sum();
            if have + chunk.len() > USAGE_SCAN_LIMIT {
                self.body = None;
            } else {
                parts.push(chunk.clone());
            }
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.fold.usage()
    }

    fn body_usage(&mut self) -> Option<Usage> {
        if self.whole.is_some() {
            return self.whole.take();
        }
        let mut parts = self.body.take()?;
        let body = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            Bytes::from(parts.concat())
        };
        self.format.answer(&body)
    }
}

impl GatewayState {
    /// The answer completed: count the success and pool the connection.
    fn complete(
        &self,
        provider: &Provider,
        session: super::h1::Exchange,
        peer: &pingora::upstreams::peer::HttpPeer,
    ) {
        provider
            .health
            .on_success(&self.snapshot.load().health.policy);
        self.connector.release(session, peer);
    }
}

#[cfg(test)]
mod tests {
    use super::has_usage_object;

    #[test]
    fn only_usage_objects_are_parsed() {
        assert!(has_usage_object(
            br#"data: {"choices":[],"usage":{"prompt_tokens":3}}"#
        ));
        assert!(has_usage_object(
            br#"data: {"usageMetadata": {"promptTokenCount":3}}"#
        ));
        assert!(has_usage_object(
            br#"data: {"type":"message_delta","usage" : {"output_tokens":9}}"#
        ));
        assert!(!has_usage_object(
            br#"data: {"choices":[{"delta":{"content":"x"}}],"usage":null}"#
        ));
        assert!(!has_usage_object(br#"data: {"choices":[]}"#));
        assert!(!has_usage_object(br#"data: {"x":"usage"}"#));
    }
}
