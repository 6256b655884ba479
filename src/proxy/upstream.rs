//! One upstream attempt: connect (pooled), send the request, wait for the
//! status and the first body bytes, and classify what happened.
//!
//! The response is only committed to the client once the first body bytes
//! arrived, so a vendor that sends `200` headers and then dies can still be
//! failed over.

use super::dns::DnsCache;
use crate::config::{ApiKey, Provider};

use super::connector::Connector;
use super::h1::{Exchange, Head, VendorHead};
use bytes::{Bytes, BytesMut};
use pingora::upstreams::peer::HttpPeer;
use pingora::ErrorType;
use std::time::Duration;
// Tokio's timers, not Pingora's 10 ms wheel: the deadline is minutes away
// and nearly always cancelled, and the wheel keeps every registered slot
// until it expires (measured: RSS climbing ~1 MiB a minute under load).
use tokio::time::{timeout_at, Instant};

/// Largest error body kept for relaying to the client.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// An upstream that answered 2xx and produced its first body bytes.
pub struct Committed {
    pub session: Exchange,
    pub peer: HttpPeer,
    pub header: VendorHead,
    pub first: Option<Bytes>,
    /// The body already ended (with `first`).
    pub done: bool,
    /// Leading bytes of `first` whose events the failover check walked
    /// (`framing::check_events`): the relay does not walk them again.
    pub checked: usize,
    /// The whole answer is `first` and the check walked it: where its
    /// usage objects are (the relay reads them from there).
    pub usage_at: Option<super::framing::UsageAt>,
    /// A translated whole answer that arrived whole: the check translated
    /// it (the decode is the check), so the relay only sends it.
    pub translated: Option<(Bytes, crate::protocol::chat::Usage)>,
}

pub enum Outcome {
    Success(Box<Committed>),
    Status {
        status: u16,
        body: Bytes,
        /// What a 429 said about when the key may be used again (read from
        /// the vendor's headers and body; default for other statuses).
        reset: crate::health::Reset,
    },
    /// Connect, DNS or TLS failure.
    Connect(String),
    /// Nothing (or not enough) within the first-byte timeout or the deadline.
    Timeout(String),
    /// The connection broke or spoke garbage before the first body bytes.
    Broken(String),
}

pub struct AttemptInput<'a> {
    pub provider: &'a Provider,
    pub key: Option<&'a ApiKey>,
    pub path: &'a str,
    pub body: Bytes,
    pub stream: bool,
    pub forward: &'a [(&'static str, http::HeaderValue)],
    pub deadline: Instant,
}

fn build_request(input: &AttemptInput<'_>) -> pingora::Result<Bytes> {
    let ep = &input.provider.endpoint;
    let mut head = Head::new("POST", input.path)?;
    head.text("Host", &ep.host_header)?;
    head.header("Content-Type", b"application/json");
    head.number("Content-Length", input.body.len());
    head.header(
        "accept",
        if input.stream {
            b"text/event-stream"
        } else {
            b"application/json"
        },
    );
    // The gateway reads (and later translates) the body: no compression.
    head.header("accept-encoding", b"identity");
    head.header("user-agent", USER_AGENT.as_bytes());
    // A client's `anthropic-version` replaces the configured default
    // (forwarded names are feature and version flags only, never
    // credentials).
    let client_version = input.forward.iter().any(|(n, _)| *n == "anthropic-version");
    auth_headers(input.provider, input.key, client_version, &mut head);
    for (name, value) in input.forward {
        if *name == "anthropic-beta" && !input.provider.strip_betas.is_empty() {
            match strip_betas(value, &input.provider.strip_betas) {
                Some(kept) => head.header(name, kept.as_bytes()),
                None => continue,
            }
        } else {
            head.header(name, value.as_bytes());
        }
    }
    Ok(head.finish())
}

const USER_AGENT: &str = concat!("llm-orchestrator/", env!("CARGO_PKG_VERSION"));

/// An `anthropic-beta` value without the flags in `strip`: unchanged (the
/// same bytes) when none of them is there, `None` when nothing is left.
fn strip_betas(value: &http::HeaderValue, strip: &[String]) -> Option<http::HeaderValue> {
    let Ok(text) = value.to_str() else {
        return Some(value.clone());
    };
    let flags: Vec<&str> = text.split(',').map(str::trim).collect();
    if !flags.iter().any(|f| strip.iter().any(|s| s == f)) {
        return Some(value.clone());
    }
    let kept: Vec<&str> = flags
        .into_iter()
        .filter(|f| !f.is_empty() && !strip.iter().any(|s| s == f))
        .collect();
    if kept.is_empty() {
        return None;
    }
    // Parts of a valid header value joined with ", ": still valid.
    http::HeaderValue::from_str(&kept.join(", ")).ok()
}

/// The vendor's authentication (and protocol version, unless the client
/// sent its own) headers.
fn auth_headers(
    p: &crate::config::Provider,
    key: Option<&crate::config::ApiKey>,
    client_version: bool,
    head: &mut Head,
) {
    if let Some(key) = key {
        match p.vendor.auth {
            crate::providers::Auth::Bearer => head.header("authorization", key.bearer().as_bytes()),
            crate::providers::Auth::Header(name) => head.header(name, key.raw_header().as_bytes()),
        }
    }
    if p.vendor.sends_anthropic_version && !client_version {
        head.header("anthropic-version", p.anthropic_version_header.as_bytes());
    }
}

fn classify_error(e: &pingora::Error, stage: &str) -> Outcome {
    let msg = format!("{stage}: {e}");
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            Outcome::Timeout(msg)
        }
        ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::BindError
        | ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::HandshakeError
        | ErrorType::ConnectProxyFailure => Outcome::Connect(msg),
        _ => Outcome::Broken(msg),
    }
}

/// The reset a 429 names (see `health::park`); nothing for other statuses.
fn reset_of(p: &Provider, header: &VendorHead, body: &[u8]) -> crate::health::Reset {
    if header.status.as_u16() != 429 {
        return crate::health::Reset::default();
    }
    crate::health::Reset::read(
        p.vendor.family(),
        &header.headers.header_map(),
        body,
        crate::health::wall_ms(),
    )
}

/// Where an attempt was when its deadline passed.
#[derive(Clone, Copy)]
enum Stage {
    Resolving,
    Connecting,
    Sending,
    Waiting,
    FirstBytes,
}

impl Stage {
    fn deadline_message(self) -> &'static str {
        match self {
            Stage::Resolving => "deadline passed while resolving the host",
            Stage::Connecting => "deadline passed while connecting",
            Stage::Sending => "deadline passed while sending the request",
            Stage::Waiting => "deadline passed before the response",
            Stage::FirstBytes => "deadline passed before the first body bytes",
        }
    }
}

/// How far one attempt got under its deadline.
enum Steps {
    Done(Outcome),
    /// A non-2xx answer whose body is still to be read (boxed: rare, and
    /// the session is large).
    ErrorAnswer(Box<(Exchange, HttpPeer, VendorHead)>),
}

/// Run one attempt against `input.provider` with `input.key`.
///
/// One timer for the whole attempt (resolve, connect, send, status, first
/// body bytes) instead of one per step: each step that had to wait
/// registered and cancelled its own Tokio timer. `stage` says where the
/// deadline caught it.
pub async fn attempt(connector: &Connector, dns: &DnsCache, input: AttemptInput<'_>) -> Outcome {
    let deadline = input.deadline;
    let mut stage = Stage::Resolving;
    let steps = timeout_at(deadline, steps(connector, dns, &input, &mut stage)).await;
    match steps {
        Ok(Steps::Done(outcome)) => outcome,
        Ok(Steps::ErrorAnswer(answer)) => {
            let (session, peer, header) = *answer;
            error_answer(connector, session, peer, header, deadline, input.provider).await
        }
        Err(_) => Outcome::Timeout(stage.deadline_message().into()),
    }
}

async fn steps(
    connector: &Connector,
    dns: &DnsCache,
    input: &AttemptInput<'_>,
    stage: &mut Stage,
) -> Steps {
    let p = input.provider;
    let addr = match dns.resolve(&p.endpoint).await {
        Ok(a) => a,
        Err(e) => return Steps::Done(Outcome::Connect(e)),
    };
    let mut peer = HttpPeer::new(addr, p.endpoint.tls, p.endpoint.host.clone());
    peer.options.connection_timeout = Some(p.timeouts.connect);
    peer.options.total_connection_timeout = Some(p.timeouts.connect);

    // Built once; a retry on a stale pooled connection sends it again.
    let request = match build_request(input) {
        Ok(r) => r,
        Err(e) => return Steps::Done(Outcome::Broken(format!("building the request: {e}"))),
    };

    // A pooled connection may have been closed by the vendor while idle; such
    // a failure before any response byte is retried on another connection
    // without counting as an attempt.
    for _ in 0..3 {
        *stage = Stage::Connecting;
        // Small when the pool has a connection; a new one's connect is
        // boxed inside (`proxy::connector`).
        let (mut session, reused) = match connector.exchange(&peer).await {
            Ok(s) => s,
            Err(e) => return Steps::Done(classify_error(&e, "connect")),
        };
        *stage = Stage::Sending;
        match session.send(&request, &input.body).await {
            Ok(()) => {}
            Err(e) if reused => {
                tracing::debug!(provider = %p.name, error = %e, "stale pooled connection, reconnecting");
                continue;
            }
            Err(e) => return Steps::Done(classify_error(&e, "sending the request")),
        };

        *stage = Stage::Waiting;
        session.set_read_timeout(Some(p.timeouts.first_byte));
        let header = match session.read_response_header().await {
            Ok(h) => h,
            Err(e) if reused && e.etype() == &ErrorType::ConnectionClosed => {
                tracing::debug!(provider = %p.name, error = %e, "stale pooled connection, reconnecting");
                continue;
            }
            Err(e) => return Steps::Done(classify_error(&e, "waiting for the response")),
        };
        session.set_read_timeout(Some(p.timeouts.idle));
        tracing::trace!(provider = %p.name, status = header.status.as_u16(), reused, "vendor response head");
        if !(200..300).contains(&header.status.as_u16()) {
            return Steps::ErrorAnswer(Box::new((session, peer, header)));
        }
        *stage = Stage::FirstBytes;
        return Steps::Done(match session.read_response_body().await {
            Ok(first) => {
                let done = first.is_none() || session.response_done();
                Outcome::Success(Box::new(Committed {
                    session,
                    peer,
                    header,
                    first,
                    done,
                    checked: 0,
                    usage_at: None,
                    translated: None,
                }))
            }
            Err(e) => classify_error(&e, "reading the first body bytes"),
        });
    }
    Steps::Done(Outcome::Broken("every pooled connection was stale".into()))
}

/// A non-2xx answer: keep (a bounded prefix of) its body for the client.
async fn error_answer(
    connector: &Connector,
    mut session: Exchange,
    peer: HttpPeer,
    header: VendorHead,
    deadline: Instant,
    p: &Provider,
) -> Outcome {
    let status = header.status.as_u16();
    let mut body = BytesMut::new();
    let mut complete = false;
    while let Ok(Ok(chunk)) = timeout_at(deadline, session.read_response_body()).await {
        match chunk {
            Some(c) => {
                let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
                body.extend_from_slice(&c[..c.len().min(room)]);
                if body.len() >= ERROR_BODY_LIMIT {
                    break;
                }
            }
            None => {
                complete = true;
                break;
            }
        }
    }
    if complete {
        connector.release(session, &peer);
    }
    let reset = reset_of(p, &header, &body);
    Outcome::Status {
        status,
        body: body.freeze(),
        reset,
    }
}

/// What an active health probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Ok,
    /// The vendor answered with this non-2xx status.
    Status(u16, crate::health::Reset),
    /// No usable answer: connect error, timeout, garbage.
    Failed(String),
}

/// The request an active probe sends: `GET {base}/models` (free on every
/// supported vendor), or a 1-token chat completion.
pub struct ProbeRequest<'a> {
    pub provider: &'a Provider,
    pub key: Option<&'a ApiKey>,
    /// `None` = list models; `Some((path, body))` = POST a completion.
    pub completion: Option<(String, Bytes)>,
    /// Only open a connection (TCP + TLS).
    pub connect_only: bool,
    pub timeout: Duration,
}

/// Largest probe answer kept (a vendor's model list; OpenRouter's, with
/// descriptions, is a few MiB). A longer one is not read to the end.
const PROBE_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Run one probe. Returns what it found and the answer's body (empty when
/// it had none or was longer than [`PROBE_BODY_LIMIT`]).
pub async fn probe(
    connector: &Connector,
    dns: &DnsCache,
    req: ProbeRequest<'_>,
) -> (ProbeResult, Bytes) {
    let mut body = BytesMut::new();
    let result = probe_into(connector, dns, req, &mut body).await;
    (result, body.freeze())
}

async fn probe_into(
    connector: &Connector,
    dns: &DnsCache,
    req: ProbeRequest<'_>,
    answer: &mut BytesMut,
) -> ProbeResult {
    let p = req.provider;
    let deadline = Instant::now() + req.timeout;
    let addr = match timeout_at(deadline, dns.resolve(&p.endpoint)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return ProbeResult::Failed(e),
        Err(_) => return ProbeResult::Failed("timeout resolving the host".into()),
    };
    let mut peer = HttpPeer::new(addr, p.endpoint.tls, p.endpoint.host.clone());
    peer.options.connection_timeout = Some(p.timeouts.connect.min(req.timeout));
    peer.options.total_connection_timeout = Some(p.timeouts.connect.min(req.timeout));
    let stream = match timeout_at(deadline, connector.stream(&peer)).await {
        Ok(Ok((s, _))) => s,
        Ok(Err(e)) => return ProbeResult::Failed(format!("connect: {e}")),
        Err(_) => return ProbeResult::Failed("connect timeout".into()),
    };
    if req.connect_only {
        // Nothing was sent: the connection is clean and can be pooled.
        connector.park(stream, &peer);
        return ProbeResult::Ok;
    }
    let built = (|| -> pingora::Result<(Bytes, Bytes)> {
        let (method, path, body) = match &req.completion {
            Some((path, body)) => ("POST", path.clone(), Some(body.clone())),
            // The whole list in one page where the vendor pages it.
            None => (
                "GET",
                format!("{}/models{}", p.endpoint.base_path, p.vendor.models_query),
                None,
            ),
        };
        let mut h = Head::new(method, &path)?;
        h.text("Host", &p.endpoint.host_header)?;
        h.header("accept", b"application/json");
        h.header("accept-encoding", b"identity");
        h.header(
            "user-agent",
            concat!(
                "llm-orchestrator/",
                env!("CARGO_PKG_VERSION"),
                " health-check"
            )
            .as_bytes(),
        );
        if let Some(b) = &body {
            h.header("Content-Type", b"application/json");
            h.number("Content-Length", b.len());
        }
        auth_headers(p, req.key, false, &mut h);
        Ok((h.finish(), body.unwrap_or_default()))
    })();
    let (header, body) = match built {
        Ok(b) => b,
        Err(e) => return ProbeResult::Failed(format!("building the probe: {e}")),
    };
    let mut session = Exchange::new(stream);
    let exchange = async {
        session.send(&header, &body).await?;
        let head = session.read_response_header().await?;
        // Keep the answer (a model list, an error) and read it to the end
        // so the connection can be reused.
        while let Some(chunk) = session.read_response_body().await? {
            if answer.len() + chunk.len() > PROBE_BODY_LIMIT {
                answer.clear();
                return Ok::<_, Box<pingora::Error>>((head, false));
            }
            answer.extend_from_slice(&chunk);
        }
        Ok((head, true))
    };
    match timeout_at(deadline, exchange).await {
        Err(_) => ProbeResult::Failed("probe timeout".into()),
        Ok(Err(e)) => ProbeResult::Failed(format!("probe: {e}")),
        Ok(Ok((h, whole))) => {
            let status = h.status.as_u16();
            let wait = reset_of(p, &h, answer);
            if whole {
                connector.release(session, &peer);
            }
            if (200..300).contains(&status) {
                ProbeResult::Ok
            } else {
                ProbeResult::Status(status, wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strip_betas;

    #[test]
    fn strip_betas_removes_only_listed_flags() {
        let strip = ["files-api-2025-04-14".to_string()];
        let v = |s: &'static str| http::HeaderValue::from_static(s);
        // Nothing to strip: the very same bytes, spacing included.
        let same = v("a-1,b-2 ,  c-3");
        assert_eq!(strip_betas(&same, &strip), Some(same.clone()));
        assert_eq!(
            strip_betas(&v("a-1, files-api-2025-04-14,b-2"), &strip),
            Some(v("a-1, b-2"))
        );
        assert_eq!(strip_betas(&v("files-api-2025-04-14"), &strip), None);
    }
}
