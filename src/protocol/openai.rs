//! The OpenAI Chat Completions wire format: what the gateway reads from a
//! request and the error shapes it writes.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

/// The two fields routing needs; everything else is left in the raw body.
/// Parsing into this validates the whole document (serde skips unknown
/// fields by parsing them), without building a tree of it.
#[derive(Debug, Deserialize)]
pub struct ChatRequestProbe {
    #[serde(default)]
    pub model: Option<serde_json::Value>,
    #[serde(default)]
    pub stream: Option<serde_json::Value>,
    #[serde(default)]
    pub stream_options: Option<serde_json::Value>,
}

impl ChatRequestProbe {
    /// `stream_options.include_usage` (OpenAI clients).
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
}

/// `{"error":{"message","type","param","code"}}` as OpenAI sends it.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Bytes {
    let v = json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    });
    Bytes::from(v.to_string())
}

/// An in-band error for a stream that already started: the OpenAI SDKs
/// raise on a `data:` event carrying an `error` object.
pub fn stream_error_event(message: &str, kind: &str, code: Option<&str>) -> Bytes {
    let v = json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    Bytes::from(format!("data: {v}\n\n"))
}

/// Is this body already an OpenAI-style error object (so it can be relayed
/// unchanged)?
pub fn is_error_body(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: serde_json::Value,
    }
    serde_json::from_slice::<Outer>(body).is_ok_and(|o| o.error.message.is_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_openai_errors() {
        assert!(is_error_body(
            br#"{"error":{"message":"x","type":"server_error"}}"#
        ));
        assert!(!is_error_body(b"<html>503</html>"));
        assert!(!is_error_body(br#"{"error":"flat string"}"#));
    }

    #[test]
    fn stream_error_is_one_sse_event() {
        let e = stream_error_event("cut", "upstream_error", None);
        assert!(e.starts_with(b"data: {\"error\""));
        assert!(e.ends_with(b"\n\n"));
    }
}
