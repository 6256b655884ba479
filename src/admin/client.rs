//! The command line's side of the admin API (`export`, `import`): either a
//! running gateway's admin listener over HTTP, or — with `--offline` — the
//! same routes in this process on the configured database, for a stopped
//! gateway. Both go through the same handlers, so the answers are the same.

use std::sync::Arc;

/// An admin call's answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The largest admin answer read (an export of a big configuration is a
/// few MiB; the in-process path below has the same bound).
const MAX_ANSWER: usize = 256 * 1024 * 1024;

/// One call to a running gateway's admin API over `http://` or `https://`
/// (reqwest with rustls and the system's trust store). Errors never carry
/// the token (it travels in a header marked sensitive) or a password in
/// the URL.
pub async fn remote(
    base: &str,
    token: Option<&str>,
    method: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Answer, String> {
    let shown = crate::control::redis::redacted(base);
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!(
            "{shown}: the admin URL must start with http:// or https://"
        ));
    }
    let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    // Straight to the admin listener, as before: no HTTP(S)_PROXY from the
    // environment, which would see the admin token (over http://) and
    // usually cannot reach a loopback listener anyway.
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", cause(&e)))?;
    let mut req = client.request(method, &url).body(body.to_vec());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header(reqwest::header::CONTENT_TYPE, ct);
    }
    let mut resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{shown}: the admin API did not answer within 60 s")
        } else {
            format!("cannot reach {shown}: {}", cause(&e))
        }
    })?;
    let status = resp.status().as_u16();
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{shown}: reading the answer: {}", cause(&e)))?
    {
        if out.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("{shown}: the answer is larger than 256 MiB"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body: out })
}

/// The error and its causes without the URL reqwest puts in front (it may
/// hold a password).
fn cause(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.dedup();
    parts.join(": ")
}

/// The same call answered in this process by the admin routes (no token:
/// see [`super::local_router`]).
pub async fn local(
    control: Arc<crate::control::ControlPlane>,
    method: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Answer, String> {
    use tower::ServiceExt;
    let mut req = http::Request::builder().method(method).uri(path_and_query);
    if let Some(ct) = content_type {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    let req = req
        .body(axum::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    let resp = match super::local_router(control).oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 256 * 1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}
