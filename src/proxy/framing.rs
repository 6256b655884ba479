//! Cheap checks that a same-format (pass-through) answer is the vendor's
//! wire format and not garbage: a JSON object for whole answers, and for
//! event streams, events made of SSE fields whose `data` is JSON (or
//! OpenAI's `[DONE]`). Nothing is built: JSON is only walked
//! (`IgnoredAny`), to tell "well-formed" and "carries a top-level `error`".

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::ops::Range;

/// Where a whole answer's usage objects are (byte ranges into the body),
/// noted while the body is walked for the check so that the relay reads
/// the usage without walking the body a second time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UsageAt {
    /// Top-level `usage` (OpenAI chat, Anthropic, Responses).
    pub usage: Option<Range<usize>>,
    /// Top-level `usageMetadata` (Gemini).
    pub usage_metadata: Option<Range<usize>>,
}

/// Walks a JSON object, noting whether it has a non-null `error` and
/// where its usage objects are; everything else is skipped (`IgnoredAny`).
/// Hand-written rather than derived: a repeated key is not an error here.
struct Probe<'a> {
    error: bool,
    usage: Option<&'a RawValue>,
    usage_metadata: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Probe<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probe<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe<'de>, A::Error> {
                let mut p = Probe {
                    error: false,
                    usage: None,
                    usage_metadata: None,
                };
                while let Some(key) = map.next_key::<crate::protocol::json::S<'de>>()? {
                    match &*key.0 {
                        "error" => p.error |= map.next_value::<Option<IgnoredAny>>()?.is_some(),
                        "usage" => p.usage = Some(map.next_value()?),
                        "usageMetadata" => p.usage_metadata = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

/// What is wrong with a JSON document from the vendor.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonFault {
    /// Not a JSON object at all.
    Malformed(String),
    /// Well-formed, but the vendor's error object (`{"error": …}`).
    VendorError,
}

fn check_json(data: &[u8]) -> Result<UsageAt, JsonFault> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(JsonFault::Malformed(match first {
            None => "it is empty".to_string(),
            Some(_) => format!("it does not start with a JSON object: {}", preview(data)),
        }));
    }
    match crate::protocol::json::from_body::<Probe>(data) {
        Ok(p) if p.error => Err(JsonFault::VendorError),
        Ok(p) => {
            // The raw values borrow from `data`: their offsets in it.
            let at = |raw: &RawValue| {
                let start = raw.get().as_ptr() as usize - data.as_ptr() as usize;
                start..start + raw.get().len()
            };
            Ok(UsageAt {
                usage: p.usage.map(at),
                usage_metadata: p.usage_metadata.map(at),
            })
        }
        Err(e) => Err(JsonFault::Malformed(format!("it is not valid JSON ({e})"))),
    }
}

/// A stream event's data: the commonest events — OpenAI's and Anthropic's
/// text deltas in the vendors' exact form — are recognised by a byte
/// matcher ([`exact_text_delta`]) that only accepts well-formed JSON
/// without an `error`, at a fraction of serde's walk (callgrind: a 6-event
/// pass-through stream cost ~50k instructions with the walk per event).
/// Everything else takes [`check_json`].
fn check_event_data(data: &[u8]) -> Result<(), JsonFault> {
    if exact_text_delta(data) {
        return Ok(());
    }
    check_json(data).map(|_| ())
}

/// A cursor over bytes for the exact-form matcher.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn lit(&mut self, lit: &str) -> bool {
        match self.0.strip_prefix(lit.as_bytes()) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// A JSON integer without a sign or leading zero.
    fn int(&mut self) -> bool {
        let n = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let ok = n > 0 && !(n > 1 && self.0[0] == b'0');
        self.0 = &self.0[n..];
        ok
    }

    /// A JSON string with valid escapes and no control characters (UTF-8
    /// is checked once for the whole document by the caller).
    fn string(&mut self) -> bool {
        let Some(rest) = self.0.strip_prefix(b"\"") else {
            return false;
        };
        let mut at = 0;
        loop {
            let Some(i) = memchr::memchr2(b'"', b'\\', &rest[at..]).map(|i| at + i) else {
                return false;
            };
            if rest[at..i].iter().any(|&b| b < 0x20) {
                return false;
            }
            if rest[i] == b'"' {
                self.0 = &rest[i + 1..];
                return true;
            }
            let esc_len = match rest.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                Some(b'u')
                    if rest
                        .get(i + 2..i + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    6
                }
                _ => return false,
            };
            at = i + esc_len;
        }
    }
}

/// Is `data` a text delta exactly as OpenAI or Anthropic write it? Such an
/// event is well-formed JSON with no `error`; any other spelling (extra
/// keys, another order, whitespace) answers `false` and takes the walk.
fn exact_text_delta(data: &[u8]) -> bool {
    if std::str::from_utf8(data).is_err() {
        return false;
    }
    let mut c = Cursor(data);
    if c.lit(r#"{"type":"content_block_delta","index":"#) {
        return c.int()
            && c.lit(r#","delta":{"type":"text_delta","text":"#)
            && c.string()
            && c.lit("}}")
            && c.0.is_empty();
    }
    let head = c.lit(r#"{"id":"#)
        && c.string()
        && c.lit(r#","object":"chat.completion.chunk","created":"#)
        && c.int()
        && c.lit(r#","model":"#)
        && c.string();
    if !head {
        return false;
    }
    if c.lit(r#","service_tier":"#) && !c.string() {
        return false;
    }
    if c.lit(r#","system_fingerprint":"#) && !c.lit("null") && !c.string() {
        return false;
    }
    if !(c.lit(r#","choices":[{"index":0,"delta":{"content":"#) && c.string() && c.lit("},")) {
        return false;
    }
    c.lit(r#""logprobs":null,"#);
    if !c.lit(r#""finish_reason":null}]"#) {
        return false;
    }
    c.lit(r#","usage":null"#);
    if c.lit(r#","obfuscation":"#) && !c.string() {
        return false;
    }
    c.lit("}") && c.0.is_empty()
}

/// A whole (non-stream) answer: a JSON object without a top-level `error`.
pub fn check_body(body: &[u8]) -> Result<UsageAt, JsonFault> {
    check_json(body)
}

/// The first bytes of an answer too large to hold back: valid JSON so far
/// (the document only needs more bytes to be complete).
pub fn check_body_prefix(prefix: &[u8]) -> Result<(), JsonFault> {
    if prefix.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(JsonFault::Malformed(format!(
            "it does not start with a JSON object: {}",
            preview(prefix)
        )));
    }
    match serde_json::from_slice::<IgnoredAny>(prefix) {
        Ok(_) => Ok(()),
        Err(e) if e.classify() == serde_json::error::Category::Eof => Ok(()),
        Err(e) => Err(JsonFault::Malformed(format!("it is not valid JSON ({e})"))),
    }
}

/// A bad event in a stream.
#[derive(Debug, PartialEq, Eq)]
pub struct EventFault {
    /// Bytes of the whole, good events before the bad one.
    pub valid: usize,
    /// End of the bad event.
    pub end: usize,
    /// The event is the vendor's own error event (well-formed): it can be
    /// relayed as it is; otherwise it is garbage and must not be.
    pub vendor_error: bool,
    pub why: String,
}

/// Check every event in `buf`. Events end at a blank line; a final event
/// without one (the end of a stream) is checked too.
pub fn check_events(buf: &[u8]) -> Result<(), EventFault> {
    let mut event_start = 0;
    let mut pos = 0;
    // The data of the current event: a slice of `buf` when it has one
    // `data:` line (the usual case), joined into `joined` otherwise.
    let mut data: Option<&[u8]> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut lines = 0usize;
    let mut bad_line: Option<&[u8]> = None;
    let finish = |start: usize,
                  end: usize,
                  data: Option<&[u8]>,
                  joined: &[u8],
                  lines: usize,
                  bad_line: Option<&[u8]>|
     -> Result<(), EventFault> {
        let fault = |vendor_error: bool, why: String| EventFault {
            valid: start,
            end,
            vendor_error,
            why,
        };
        if let Some(line) = bad_line {
            return Err(fault(
                false,
                format!("a stream line is not an SSE field: {}", preview(line)),
            ));
        }
        let data = if lines > 1 { Some(joined) } else { data };
        match data {
            None => Ok(()),
            Some(b"[DONE]") => Ok(()),
            Some(d) => match check_event_data(d) {
                Ok(()) => Ok(()),
                Err(JsonFault::VendorError) => Err(fault(
                    true,
                    format!("the vendor sent an error event: {}", preview(d)),
                )),
                Err(JsonFault::Malformed(why)) => {
                    Err(fault(false, format!("a stream event's data: {why}")))
                }
            },
        }
    };
    while pos < buf.len() {
        let (line, next) = match memchr::memchr(b'\n', &buf[pos..]) {
            Some(i) => (&buf[pos..pos + i], pos + i + 1),
            None => (&buf[pos..], buf.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            finish(event_start, next, data, &joined, lines, bad_line)?;
            event_start = next;
            data = None;
            joined.clear();
            lines = 0;
            bad_line = None;
        } else if let Some(d) = line.strip_prefix(b"data:") {
            let d = d.strip_prefix(b" ").unwrap_or(d);
            lines += 1;
            if lines == 1 {
                data = Some(d);
            } else {
                if lines == 2 {
                    joined.extend_from_slice(data.unwrap_or_default());
                }
                joined.push(b'\n');
                joined.extend_from_slice(d);
            }
        } else if !(line[0] == b':'
            || line.starts_with(b"event:")
            || line.starts_with(b"id:")
            || line.starts_with(b"retry:"))
            && bad_line.is_none()
        {
            bad_line = Some(line);
        }
        pos = next;
    }
    if event_start < buf.len() {
        finish(event_start, buf.len(), data, &joined, lines, bad_line)?;
    }
    Ok(())
}

/// [`check_events`] on what follows the first `checked` bytes of `buf`
/// (events already checked; `checked` is an event boundary), with the
/// fault's offsets into the whole of `buf`.
pub fn check_events_after(buf: &[u8], checked: usize) -> Result<(), EventFault> {
    let skip = checked.min(buf.len());
    check_events(&buf[skip..]).map_err(|mut f| {
        f.valid += skip;
        f.end += skip;
        f
    })
}

/// The start of some vendor bytes, for a log line or an error message.
pub fn preview(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(200)];
    let text = String::from_utf8_lossy(cut);
    let text = text.trim();
    if bytes.len() > cut.len() {
        format!("{text}…")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check notes where the usage objects are, so the relay reads
    /// them without a second walk: escaped keys, nesting, `null` and a
    /// repeated key (the last one counts).
    #[test]
    fn the_check_finds_the_top_level_usage_objects() {
        let body = br#"{"id":"x","choices":[{"usage":{"no":1}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
        let at = check_body(body).unwrap();
        assert_eq!(
            &body[at.usage.unwrap()],
            br#"{"prompt_tokens":3,"completion_tokens":4}"#
        );
        assert_eq!(at.usage_metadata, None);

        let body = br#"{"candidates":[], "usag\u0065Metadata" : {"promptTokenCount":5} }"#;
        let at = check_body(body).unwrap();
        assert_eq!(
            &body[at.usage_metadata.unwrap()],
            br#"{"promptTokenCount":5}"#
        );

        let body = br#"{"usage":null}"#;
        assert_eq!(&body[check_body(body).unwrap().usage.unwrap()], b"null");

        let body = br#"{"usage":{"a":1},"usage":{"b":2}}"#;
        assert_eq!(
            &body[check_body(body).unwrap().usage.unwrap()],
            br#"{"b":2}"#
        );
    }

    #[test]
    fn whole_answers_must_be_json_objects_without_error() {
        let none = Ok(UsageAt::default());
        assert_eq!(check_body(br#" {"id":"x","choices":[]}"#), none);
        assert_eq!(check_body(br#"{"error":null,"id":1}"#), none);
        assert_eq!(
            check_body(br#"{"error":{"message":"m"}}"#),
            Err(JsonFault::VendorError)
        );
        for bad in [
            &b"<html>oops</html>"[..],
            b"",
            b"[1]",
            br#"{"id": "#,
            b"{} trailing",
        ] {
            assert!(
                matches!(check_body(bad), Err(JsonFault::Malformed(_))),
                "{bad:?}"
            );
        }
        assert_eq!(check_body_prefix(br#"{"id":"x","choices":[{"#), Ok(()));
        assert!(check_body_prefix(br#"{"id":"x",]"#).is_err());
        assert!(check_body_prefix(b"<!DOCTYPE html>").is_err());
    }

    #[test]
    fn events_need_sse_fields_and_json_data() {
        let good = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n: ping\n\nid: 1\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: [DONE]\n\n";
        assert_eq!(check_events(good), Ok(()));
        let first = b"data: {\"a\":1}\n\n";
        let mut s = first.to_vec();
        s.extend_from_slice(b"data: not json\n\ndata: {}\n\n");
        let f = check_events(&s).expect_err("garbage");
        assert_eq!(
            (f.valid, f.end, f.vendor_error),
            (first.len(), first.len() + 16, false)
        );
        let f = check_events(b"<html>\n<body>502</body>\n\n").expect_err("html");
        assert!(!f.vendor_error && f.valid == 0, "{f:?}");
        // Events already checked are skipped; offsets stay the buffer's.
        let f = check_events_after(&s, first.len()).expect_err("garbage after");
        assert_eq!((f.valid, f.end), (first.len(), first.len() + 16));
        assert_eq!(check_events_after(&s, first.len() + 16), Ok(()));
        assert_eq!(check_events_after(first, 1000), Ok(()));
        let f = check_events(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n")
            .expect_err("vendor error");
        assert!(f.vendor_error);
        // An unterminated last event is checked too.
        assert!(check_events(b"data: {\"a\":1}\n\ndata: {\"b\"").is_err());
        // The vendors' exact-form text deltas pass the exact matcher; a cut
        // or altered copy still meets the JSON walk.
        let openai = r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}"#;
        let anthropic = r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        for ev in [openai, anthropic] {
            assert_eq!(check_events(format!("{ev}\n\n").as_bytes()), Ok(()));
            let cut = &ev[..ev.len() - 2];
            assert!(
                check_events(format!("{cut}\n\n").as_bytes()).is_err(),
                "{cut}"
            );
            let doubled = format!("{ev}}}\n\n");
            assert!(check_events(doubled.as_bytes()).is_err(), "{doubled}");
        }
    }

    #[test]
    fn the_exact_matcher_accepts_only_what_serde_accepts() {
        let yes = [
            r#"{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"a\"b\u00e9\n"}}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":0,"model":"m","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x9"}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]}"#,
        ];
        let no = [
            r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a\x"}}"#,
            "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\u{1}\"}}",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a\u12"}}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"error":{}}"#,
        ];
        for d in yes {
            assert!(exact_text_delta(d.as_bytes()), "{d}");
            assert_eq!(check_json(d.as_bytes()).map(|_| ()), Ok(()), "{d}");
        }
        for d in no {
            assert!(!exact_text_delta(d.as_bytes()), "{d}");
        }
    }
}
