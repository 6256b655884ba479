//! Server-sent events framing.
//!
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
    /// Feed a chunk; get back every complete event it finishes (or `None`).
    pub fn push(&mut self, chunk: &[u8]) -> Option<Bytes> {
        let scan_from = self.carry.len().saturating_sub(3);
        self.carry.extend_from_slice(chunk);
        let end = last_boundary(&self.carry[scan_from..]).map(|e| e + scan_from)?;
        Some(self.carry.split_to(end).freeze())
    }

    /// Bytes of an event that has not been terminated yet.
    pub fn pending(&self) -> &[u8] {
        &self.carry
    }

    /// Take the unterminated tail (used when the stream ends cleanly without
    /// a final blank line: those bytes are still the vendor's).
    pub fn take_pending(&mut self) -> Bytes {
        self.carry.split().freeze()
    }
}

/// End offset (exclusive) of the last blank-line boundary in `buf`.
fn last_boundary(buf: &[u8]) -> Option<usize> {
    let mut i = buf.len();
    while i >= 2 {
        if buf[i - 1] == b'\n' {
            if buf[i - 2] == b'\n' {
                return Some(i);
            }
            if i >= 3 && buf[i - 2] == b'\r' && buf[i - 3] == b'\n' {
                return Some(i);
            }
        }
        i -= 1;
    }
    None
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
                if let Some(b) = s.push(part) {
                    assert!(b.ends_with(b"\n\n") || b.ends_with(b"\r\n\r\n"));
                    out.extend_from_slice(&b);
                }
            }
            assert_eq!(out, stream, "cut at {cut}");
            assert!(s.pending().is_empty());
        }
    }

    #[test]
    fn keeps_the_partial_tail() {
        let mut s = EventSplitter::default();
        assert_eq!(
            s.push(b"data: 1\n\ndata: 2").as_deref(),
            Some(&b"data: 1\n\n"[..])
        );
        assert_eq!(s.pending(), b"data: 2");
        assert_eq!(s.push(b"\n").as_deref(), None);
        assert_eq!(s.push(b"\n").as_deref(), Some(&b"data: 2\n\n"[..]));
    }
}
