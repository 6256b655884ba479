//! Stream usage always known: an OpenAI chat client that streams without
//! `stream_options.include_usage` still gets its usage counted. The
//! gateway asks the vendor for the usage chunk anyway ([`ask_for_usage`])
//! and takes that chunk out of the client's stream ([`strip_usage_chunk`]),
//! so the client sees the stream it asked for, except that the other
//! chunks carry `"usage":null` as OpenAI sends them once usage is asked
//! for (a field every OpenAI SDK already reads). A stream the client leaves
//! before the usage chunk gets its prompt estimated (`proxy::relay`).

use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// The client's body with `stream_options.include_usage` set to true.
/// Without `stream_options` (the usual case) the member is spliced in
/// after the opening brace, no parse; otherwise the object is edited.
/// `None` when the body is not a JSON object (the vendor will say so).
pub fn ask_for_usage(body: &[u8]) -> Option<Bytes> {
    const MEMBER: &[u8] = br#""stream_options":{"include_usage":true},"#;
    if memchr::memmem::find(body, b"\"stream_options\"").is_none() {
        let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
        if body[open] != b'{' {
            return None;
        }
        let rest = &body[open + 1..];
        let empty = rest
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'}');
        let mut out = BytesMut::with_capacity(body.len() + MEMBER.len());
        out.extend_from_slice(&body[..=open]);
        // `{}` has no member to put a comma before.
        out.extend_from_slice(if empty {
            &MEMBER[..MEMBER.len() - 1]
        } else {
            MEMBER
        });
        out.extend_from_slice(rest);
        return Some(out.freeze());
    }
    // Rare: the client sent stream_options without include_usage (or with
    // it false). One small edit of the tree, as vendor edits do.
    let mut obj = match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Object(o) => o,
        _ => return None,
    };
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if !opts.is_object() {
        *opts = serde_json::Value::Object(Default::default());
    }
    if let Some(o) = opts.as_object_mut() {
        o.insert("include_usage".into(), serde_json::Value::Bool(true));
    }
    serde_json::to_vec(&obj).ok().map(Bytes::from)
}

/// Complete SSE events without OpenAI's usage-only chunk (`"choices":[]`
/// with a usage object). Events without an empty `choices` pass as they
/// are, without a copy: the check is one substring search per write.
pub fn strip_usage_chunk(events: Bytes) -> Bytes {
    // Built once: `memmem::find` builds its searcher on every call.
    static NO_CHOICES: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"choices\":[]"));
    static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\":{"));
    if NO_CHOICES.find(&events).is_none() {
        return events;
    }
    let mut out = BytesMut::with_capacity(events.len());
    let mut rest: &[u8] = &events;
    while !rest.is_empty() {
        let end = event_end(rest);
        let (event, tail) = rest.split_at(end);
        let usage_only = NO_CHOICES.find(event).is_some() && USAGE.find(event).is_some();
        if !usage_only {
            out.extend_from_slice(event);
        }
        rest = tail;
    }
    out.freeze()
}

/// Length of the first event in `b`, its blank line included (the whole
/// of `b` when no blank line ends it).
fn event_end(b: &[u8]) -> usize {
    // The first `\n\n` or `\r\n\r\n`, whichever ends first: both hold a
    // line feed followed by `\n` or by `\r\n` (after a `\r`).
    for i in memchr::memchr_iter(b'\n', b) {
        match b.get(i + 1) {
            Some(b'\n') => return i + 2,
            Some(b'\r') if i > 0 && b[i - 1] == b'\r' && b.get(i + 2) == Some(&b'\n') => {
                return i + 3
            }
            _ => {}
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_end_at_the_first_blank_line_of_either_kind() {
        assert_eq!(event_end(b"data: a\n\ndata: b\n\n"), 9);
        assert_eq!(event_end(b"data: a\r\n\r\ndata: b"), 11);
        assert_eq!(event_end(b"data: a\r\ndata: b\n\nx"), 18);
        assert_eq!(event_end(b"data: a\r\n\r\ndata: b\n\n"), 11);
        assert_eq!(event_end(b"data: a\n\r\n"), 10);
        assert_eq!(event_end(b"data: a"), 7);
    }

    #[test]
    fn usage_is_asked_for_without_reparsing_the_usual_body() {
        let b = ask_for_usage(br#"{"model":"m","stream":true}"#).unwrap();
        assert_eq!(
            &b[..],
            br#"{"stream_options":{"include_usage":true},"model":"m","stream":true}"#
        );
        let v: serde_json::Value =
            serde_json::from_slice(&ask_for_usage(b"  {  }").unwrap()).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        let v: serde_json::Value = serde_json::from_slice(
            &ask_for_usage(br#"{"model":"m","stream_options":{"include_usage":false,"x":1}}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["x"], 1);
        assert!(ask_for_usage(b"[1]").is_none());
    }

    #[test]
    fn only_the_usage_chunk_is_taken_out() {
        let chunk =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n";
        let usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\n";
        let done = "data: [DONE]\n\n";
        let all = Bytes::from(format!("{chunk}{usage}{done}"));
        assert_eq!(
            strip_usage_chunk(all),
            Bytes::from(format!("{chunk}{done}"))
        );
        let plain = Bytes::from(chunk);
        assert_eq!(strip_usage_chunk(plain.clone()), plain);
        let crlf = Bytes::from(format!("{}{}", usage.replace("\n\n", "\r\n\r\n"), done));
        assert_eq!(strip_usage_chunk(crlf), Bytes::from(done));
    }
}
