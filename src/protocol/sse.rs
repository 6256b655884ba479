//! Server-sent events framing.
//!
//! [`SseParser`] turns a byte stream into events whatever the chunk
//! boundaries (events split across reads, `\r\n` or `\r` line ends,
//! comments, multi-line data).
//! [`EventSplitter`] forwards whole events only: bytes up to the last event
//! boundary (a blank line, `\n\n` or `\r\n\r\n`) go out at once, the partial
//! tail waits for the next read. That way a stream cut mid-event never leaves
//! the client half an event glued to the error event we append.

use bytes::{Bytes, BytesMut};

#[derive(Debug, Default)]
pub struct EventSplitter {
    carry: BytesMut,
}

impl EventSplitter {
    /// Buffer a chunk without taking anything out (see `take_complete`).
    pub fn extend(&mut self, chunk: &[u8]) {
        self.carry.extend_from_slice(chunk);
    }

    /// Every complete event buffered so far (or `None`).
    pub fn take_complete(&mut self) -> Option<Bytes> {
        let end = last_boundary(&self.carry)?;
        Some(self.carry.split_to(end).freeze())
    }

    /// Take the unterminated tail (used when the stream ends cleanly without
    /// a final blank line: those bytes are still the vendor's).
    pub fn take_pending(&mut self) -> Bytes {
        self.carry.split().freeze()
    }
}

/// One dispatched event. `event` is empty when the stream gave no `event:`
/// field (the SSE default type, "message").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Incremental parser following the WHATWG event-stream rules.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not terminated yet.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one
    /// belongs to the same line break.
    after_cr: bool,
    /// The event being assembled; its buffers are reused for the next one.
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    /// Every event the chunk completes, owned.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.push_each(chunk, |event, data| {
            out.push(SseEvent {
                event: event.to_string(),
                data: data.to_string(),
            });
            true
        });
        out
    }

    /// Calls `f(event, data)` (the name empty when absent) with every event
    /// the chunk completes. An event that arrived whole in this chunk (the
    /// usual case) is handed out as slices of the chunk, without a copy; one
    /// split across reads is assembled in the parser's buffers (reused for
    /// the next one). `f` returns false to stop; the rest of the chunk is
    /// then dropped and `push_each` returns false.
    pub fn push_each(&mut self, chunk: &[u8], mut f: impl FnMut(&str, &str) -> bool) -> bool {
        if chunk.is_empty() {
            return true;
        }
        // One UTF-8 check for the whole read (the usual case: it ends on a
        // character boundary); lines cut at ASCII line ends are then valid
        // and taken as `&str` slices without a check per line.
        let text = std::str::from_utf8(chunk).ok();
        let mut rest = chunk;
        let mut offset = 0;
        if self.after_cr && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
            offset = 1;
        }
        self.after_cr = false;
        // Parts of the current event borrowed from this chunk; when set,
        // they stand for `self.current`'s field.
        let mut parts = Parts::default();
        // A blank line (an event's end) is found without a search.
        while let Some(pos) = match rest.first() {
            Some(b'\n' | b'\r') => Some(0),
            _ => memchr::memchr2(b'\n', b'\r', rest),
        } {
            let line_bytes = &rest[..pos];
            let line_text = text.and_then(|t| t.get(offset..offset + pos));
            let was_cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            offset += pos + 1;
            if was_cr {
                if rest.first() == Some(&b'\n') {
                    rest = &rest[1..];
                    offset += 1;
                } else if rest.is_empty() {
                    self.after_cr = true;
                }
            }
            // A line that arrived whole is parsed in place; only one split
            // across reads is assembled in `self.line` (whose buffer is
            // kept for the next one). That can only be the chunk's first
            // line, before anything was borrowed.
            let blank = if self.line.is_empty() {
                self.line_done(line_bytes, line_text, &mut parts)
            } else {
                self.line.extend_from_slice(line_bytes);
                let line = std::mem::take(&mut self.line);
                let blank = self.line_done(&line, None, &mut Parts::default());
                self.line = line;
                self.line.clear();
                blank
            };
            if blank && !self.dispatch(&mut parts, &mut f) {
                return false;
            }
        }
        // An event still open at the end of the read keeps its parts.
        if let Some(e) = parts.event {
            self.current.event.clear();
            self.current.event.push_str(e);
        }
        if let Some(d) = parts.data {
            self.current.data.clear();
            self.current.data.push_str(d);
        }
        self.line.extend_from_slice(rest);
        true
    }

    /// The stream ended: an event missing only its final blank line is
    /// still delivered (some servers omit it).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, None, &mut Parts::default());
        }
        let mut last = None;
        self.dispatch(&mut Parts::default(), |event, data| {
            last = Some(SseEvent {
                event: event.to_string(),
                data: data.to_string(),
            });
            true
        });
        last
    }

    /// One line without its line end; true for the blank line that ends an
    /// event. `text` is the same line as `&str` when known to be UTF-8 and
    /// part of the current read: its field values are then borrowed into
    /// `parts` instead of copied.
    fn line_done<'c>(&mut self, line: &[u8], text: Option<&'c str>, parts: &mut Parts<'c>) -> bool {
        if line.is_empty() {
            return true;
        }
        if line[0] == b':' {
            return false; // comment (keep-alive)
        }
        // The two fields the gateway reads, as vendors write them, before
        // the general form.
        let (field, start): (&[u8], usize) = if line.starts_with(b"data: ") {
            (b"data", 6)
        } else if line.starts_with(b"event: ") {
            (b"event", 7)
        } else {
            match memchr::memchr(b':', line) {
                Some(i) => (
                    &line[..i],
                    i + 1 + usize::from(line.get(i + 1) == Some(&b' ')),
                ),
                None => (line, line.len()),
            }
        };
        let value = &line[start..];
        // `start` follows an ASCII byte, so it is a char boundary of `text`.
        let borrowed = text.and_then(|t| t.get(start..));
        match field {
            b"event" => match borrowed {
                Some(v) => parts.event = Some(v),
                None => {
                    parts.event = None;
                    self.current.event.clear();
                    self.current.event.push_str(&utf8(value));
                }
            },
            b"data" => {
                match (borrowed, self.has_data) {
                    (Some(v), false) => parts.data = Some(v),
                    (v, has_data) => {
                        if let Some(d) = parts.data.take() {
                            self.current.data.push_str(d);
                        }
                        if has_data {
                            self.current.data.push('\n');
                        }
                        match v {
                            Some(v) => self.current.data.push_str(v),
                            None => self.current.data.push_str(&utf8(value)),
                        }
                    }
                }
                self.has_data = true;
            }
            _ => {} // id, retry, unknown: not needed by the gateway
        }
        false
    }

    /// Hands the assembled event (if it has data) to `f` and starts a new
    /// one; an event without data is dropped, as the standard says.
    fn dispatch(&mut self, parts: &mut Parts<'_>, f: impl FnOnce(&str, &str) -> bool) -> bool {
        let go_on = if self.has_data {
            self.has_data = false;
            f(
                parts.event.unwrap_or(&self.current.event),
                parts.data.unwrap_or(&self.current.data),
            )
        } else {
            true
        };
        *parts = Parts::default();
        self.current.event.clear();
        self.current.data.clear();
        go_on
    }
}

/// The fields of the event being parsed that are still slices of the
/// current read.
#[derive(Default)]
struct Parts<'c> {
    event: Option<&'c str>,
    data: Option<&'c str>,
}

/// A field value as text; invalid UTF-8 is replaced (`from_utf8` first: it
/// has an ASCII fast path that `from_utf8_lossy` lacks).
fn utf8(value: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(v) => std::borrow::Cow::Borrowed(v),
        Err(_) => String::from_utf8_lossy(value),
    }
}

/// End offset (exclusive) of the last blank-line boundary in `buf` (`\n\n`,
/// or `\n\r\n`, which `\r\n\r\n` ends with). Every boundary ends in a
/// line feed, so only those are looked at, from the end.
pub(crate) fn last_boundary(buf: &[u8]) -> Option<usize> {
    memchr::memrchr_iter(b'\n', buf).find_map(|i| {
        let before = &buf[..i];
        (before.ends_with(b"\n") || before.ends_with(b"\n\r")).then_some(i + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_whole_events_across_any_split() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: comment\n\ndata: [DONE]\n\n";
        for cut in 1..stream.len() {
            let mut s = EventSplitter::default();
            let mut out = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                s.extend(part);
                if let Some(b) = s.take_complete() {
                    assert!(b.ends_with(b"\n\n") || b.ends_with(b"\r\n\r\n"));
                    out.extend_from_slice(&b);
                }
            }
            assert_eq!(out, stream, "cut at {cut}");
            assert!(s.take_pending().is_empty());
        }
    }

    #[test]
    fn parser_survives_every_split_and_line_ending() {
        let stream = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: ping\n\nevent: ping\ndata: {}\n\ndata: line1\ndata: line2\n\n\rdata: cr\r\r";
        let want = vec![
            SseEvent {
                event: "message_start".into(),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: "ping".into(),
                data: "{}".into(),
            },
            SseEvent {
                event: String::new(),
                data: "line1\nline2".into(),
            },
            SseEvent {
                event: String::new(),
                data: "cr".into(),
            },
        ];
        for cut in 0..stream.len() {
            for cut2 in cut..stream.len() {
                let mut p = SseParser::default();
                let mut got = p.push(&stream[..cut]);
                got.extend(p.push(&stream[cut..cut2]));
                got.extend(p.push(&stream[cut2..]));
                assert_eq!(got, want, "cuts at {cut}/{cut2}");
                assert_eq!(p.finish(), None);
            }
        }
    }

    #[test]
    fn unterminated_last_event_is_delivered_at_the_end() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: [DONE]").is_empty());
        assert_eq!(
            p.finish(),
            Some(SseEvent {
                event: String::new(),
                data: "[DONE]".into()
            })
        );
    }

    #[test]
    fn multibyte_text_survives_every_split() {
        let mut stream = "event: é\ndata: {\"t\":\"日本 🦀\"}\r\n\r\ndata: a\n\n"
            .as_bytes()
            .to_vec();
        // Invalid UTF-8 is replaced, as before.
        stream.extend_from_slice(b"data: bad\xff\n\n");
        let whole = SseParser::default().push(&stream);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].event, "é");
        assert_eq!(whole[0].data, "{\"t\":\"日本 🦀\"}");
        assert_eq!(whole[2].data, "bad\u{fffd}");
        for cut in 1..stream.len() {
            let mut p = SseParser::default();
            let mut got = p.push(&stream[..cut]);
            got.extend(p.push(&stream[cut..]));
            assert_eq!(got, whole, "split at {cut}");
        }
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut p = SseParser::default();
        let evs = p.push(b"event: content_block_delta\ndata: {\"x\":1}\ndata: second\n\n");
        assert_eq!(
            evs,
            vec![SseEvent {
                event: "content_block_delta".into(),
                data: "{\"x\":1}\nsecond".into()
            }]
        );
    }

    #[test]
    fn the_last_boundary_of_any_line_ending() {
        assert_eq!(last_boundary(b"data: a\n\ndata: b\n\n"), Some(18));
        assert_eq!(last_boundary(b"data: a\r\n\r\ndata: b"), Some(11));
        assert_eq!(last_boundary(b"data: a\n\r\ndata: b\n"), Some(10));
        assert_eq!(last_boundary(b"data: a\r\ndata: b\n"), None);
        assert_eq!(last_boundary(b"\n"), None);
        assert_eq!(last_boundary(b""), None);
    }

    #[test]
    fn keeps_the_partial_tail() {
        let mut s = EventSplitter::default();
        let mut push = |chunk: &[u8]| {
            s.extend(chunk);
            s.take_complete()
        };
        assert_eq!(
            push(b"data: 1\n\ndata: 2").as_deref(),
            Some(&b"data: 1\n\n"[..])
        );
        assert_eq!(push(b"\n").as_deref(), None);
        assert_eq!(push(b"\n").as_deref(), Some(&b"data: 2\n\n"[..]));
        // A tail without its blank line stays until taken.
        s.extend(b"data: 3");
        assert_eq!(s.take_complete(), None);
        assert_eq!(&s.take_pending()[..], b"data: 3");
    }
}
