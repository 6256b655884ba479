//! Typed, borrowing fast paths for the commonest cross-format translations.
//!
//! The general translators (`super::anthropic`, `super::gemini`) work on
//! `serde_json::Value` trees: every string and object of a body becomes an
//! allocation and every key a SipHash into an `IndexMap`, which made a
//! translated request cost about 60 % more CPU than a pass-through one. The
//! functions here deserialize into structs that borrow from the body and
//! write the target format directly.
//!
//! Contract: each returns `None` for anything it does not cover — an
//! unknown field (`deny_unknown_fields`), an unusual type, a content part
//! other than text, an error body, an invalid value — and the caller then
//! runs the general path. For what they do accept they must produce the
//! bytes the general path produces; `tests` below checks that on generated
//! inputs, so a change to a general translator that is not mirrored here
//! fails the build's tests instead of silently diverging.

pub mod anthropic_client;
pub mod openai_client;

use serde_json::Number;

/// A token count as the general path reads it: an unsigned integer, or a
/// non-negative float truncated; anything else counts 0.
pub(crate) fn count(n: Option<&Number>) -> u64 {
    n.and_then(|n| {
        n.as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    })
    .unwrap_or(0)
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json
/// escapes it (so the bytes match what serialising a `Value` gives): `"`,
/// `\\` and the control characters below 0x20, with the short forms for
/// backspace, form feed, newline, carriage return and tab and `\u00xx`
/// (lower-case hex) for the rest; everything else verbatim.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Escaped bytes are ASCII, so these are char boundaries.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether a body is a JSON object at the top. Derived `Deserialize` impls
/// also accept a JSON array (fields by position); the general path rejects
/// that, so the fast paths must not accept it either.
pub(crate) fn is_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u32..0x80).filter_map(char::from_u32).collect();
        every.push_str("é日本🦀\u{2028}\u{feff}");
        for s in [every.as_str(), "", "plain", "\"\\", "a\u{0}b"] {
            let mut ours = String::new();
            super::push_json_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap_or_default());
        }
    }
}
