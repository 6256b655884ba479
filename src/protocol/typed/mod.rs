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
//! bytes the general path produces; the tests of each module check that on
//! generated inputs, so a change to a general translator that is not
//! mirrored here fails the tests instead of silently diverging.
//!
//! Client requests are read with `deny_unknown_fields` and [`Skip`] for the
//! fields a translation ignores, so what the general path rejects as
//! invalid JSON (a number out of range, nesting past serde_json's limit) is
//! declined here too. Vendor answers and stream events in
//! `openai_client`, and Gemini answers in `gemini`, are read leniently: fields the translation does not
//! read are skipped by serde without those checks (the body's UTF-8 is
//! still checked), so a vendor answer that is valid except for such a value
//! in an unread field is translated where the general path would fail it.

pub mod anthropic_client;
pub mod gemini;
pub mod openai_client;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

// ---------------------------------------------------------------------------
// Serde pieces shared by the fast paths
// ---------------------------------------------------------------------------

/// A JSON string, borrowed from the body unless it contains escapes. (A
/// bare `Option<Cow<str>>` field would always allocate: serde only borrows
/// a `Cow` that is the field's whole type, hence the newtype.)
#[derive(Deserialize, Default)]
#[serde(transparent)]
pub(crate) struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

impl Str<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Str<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A JSON object read into `T`. serde's derived struct impls also accept a
/// JSON array (fields by position) where the general path sees "not an
/// object"; reading through `deserialize_map` refuses arrays.
pub(crate) struct Obj<T>(pub(crate) T);

impl<T> Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(d)).map(Obj)
    }
}

/// Routes a derived struct impl's request to `deserialize_map`.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// A value the general path does not read, checked as its `Value` parse
/// checks it. (`serde::de::IgnoredAny` skips without serde_json's depth
/// limit, number range or string checks, so it would let through bodies
/// the general path rejects as invalid JSON.)
#[derive(Default)]
pub(crate) struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Canonical forms
// ---------------------------------------------------------------------------

/// A cursor for recognising a stream event in the exact form a vendor
/// writes it (fixed key order, no whitespace) by its literal parts, so the
/// commonest events cost a few prefix compares and one string scan instead
/// of a parse. Every accepted form must be one the typed parse accepts with
/// the same result; anything else makes the recogniser return `None`.
pub(crate) struct Canon<'a>(pub(crate) &'a str);

impl<'a> Canon<'a> {
    /// Consumes `lit` if the text continues with it.
    pub(crate) fn lit(&mut self, lit: &str) -> bool {
        match self.0.strip_prefix(lit) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// A JSON integer (`0` or digits without a leading zero); JSON forbids
    /// leading zeros, so a parse would reject `01`.
    pub(crate) fn int(&mut self) -> Option<&'a str> {
        let n = self.0.bytes().take_while(u8::is_ascii_digit).count();
        let digits = &self.0[..n];
        if n == 0 || (n > 1 && digits.starts_with('0')) {
            return None;
        }
        self.0 = &self.0[n..];
        Some(digits)
    }

    /// A string literal without escapes; its contents. A control character
    /// (invalid in JSON strings) or a backslash gives `None`.
    pub(crate) fn plain_str(&mut self) -> Option<&'a str> {
        let rest = self.0.strip_prefix('"')?;
        let end = memchr::memchr(b'"', rest.as_bytes())?;
        let s = &rest[..end];
        if s.bytes().any(|b| b == b'\\' || b < 0x20) {
            return None;
        }
        self.0 = &rest[end + 1..];
        Some(s)
    }

    /// A string literal, escapes decoded (borrowed when it has none).
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        let rest = self.0.strip_prefix('"')?;
        let bytes = rest.as_bytes();
        let mut at = 0;
        let mut escaped = false;
        let end = loop {
            let i = at + memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
            if bytes[i] == b'"' {
                break i;
            }
            // Whatever follows the backslash is part of the escape (a
            // quote included); serde_json checks the escape below.
            escaped = true;
            at = i + 2;
        };
        let value = if escaped {
            // The literal with its quotes; serde_json decodes and checks it.
            Cow::Owned(serde_json::from_str::<String>(&self.0[..end + 2]).ok()?)
        } else {
            let s = &rest[..end];
            if s.bytes().any(|b| b < 0x20) {
                return None;
            }
            Cow::Borrowed(s)
        };
        self.0 = &rest[end + 1..];
        Some(value)
    }

    /// `"name":` and, as Gemini writes its JSON, an optional space.
    pub(crate) fn key(&mut self, name: &str) -> bool {
        let Some(rest) = self
            .0
            .strip_prefix('"')
            .and_then(|r| r.strip_prefix(name))
            .and_then(|r| r.strip_prefix("\":"))
        else {
            return false;
        };
        self.0 = rest.strip_prefix(' ').unwrap_or(rest);
        true
    }

    /// Whether the whole text was consumed.
    pub(crate) fn done(&self) -> bool {
        self.0.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------

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
pub(crate) fn push_json_str(out: &mut impl TextOut, s: &str) {
    out.reserve_more(s.len() + 2);
    // Nearly every string (ids, model names, most text deltas) has nothing
    // to escape: one scan, one copy.
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        escape(s, |piece| out.put(piece));
    } else {
        out.put_byte(b'"');
        out.put(s);
        out.put_byte(b'"');
    }
}

/// A non-negative integer, as serde_json writes it, without an allocation.
pub(crate) fn push_u64(out: &mut impl TextOut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits by construction.
    out.put(std::str::from_utf8(&buf[at..]).unwrap_or("0"));
}

/// The buffers the fast paths write JSON into: a `String`, a `Vec<u8>`, or
/// the `BytesMut` a stream translator sends from.
pub(crate) trait TextOut {
    fn put(&mut self, s: &str);
    /// One ASCII byte.
    fn put_byte(&mut self, b: u8);
    fn reserve_more(&mut self, n: usize);
}

impl TextOut for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
    fn put_byte(&mut self, b: u8) {
        self.push(char::from(b));
    }
    fn reserve_more(&mut self, n: usize) {
        self.reserve(n);
    }
}

impl TextOut for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    fn put_byte(&mut self, b: u8) {
        self.push(b);
    }
    fn reserve_more(&mut self, n: usize) {
        self.reserve(n);
    }
}

impl TextOut for bytes::BytesMut {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    fn put_byte(&mut self, b: u8) {
        bytes::BufMut::put_u8(self, b);
    }
    fn reserve_more(&mut self, n: usize) {
        self.reserve(n);
    }
}

/// Hands `s` as a quoted, escaped JSON string to `put`, in pieces.
fn escape(s: &str, mut put: impl FnMut(&str)) {
    put("\"");
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
        put(&s[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let code = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ];
            // ASCII by construction.
            put(std::str::from_utf8(&code).unwrap_or_default());
        } else {
            put(short);
        }
        start = i + 1;
    }
    put(&s[start..]);
    put("\"");
}

/// The body as text, checked once: serde_json then reads strings from a
/// `&str` without a UTF-8 check per string (`from_slice` checks each one).
/// Invalid UTF-8 is invalid JSON either way, so nothing is accepted that
/// `from_slice` would refuse.
pub(crate) fn utf8(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body).ok()
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
    fn integers_are_written_as_serde_json_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 1_700_000_000, u64::MAX - 1, u64::MAX] {
            let mut s = String::new();
            super::push_u64(&mut s, n);
            assert_eq!(s, serde_json::to_string(&n).unwrap_or_default());
        }
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u32..0x80).filter_map(char::from_u32).collect();
        every.push_str("é日本🦀\u{2028}\u{feff}");
        for s in [every.as_str(), "", "plain", "\"\\", "a\u{0}b"] {
            let mut ours = String::new();
            super::push_json_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap_or_default());
            let mut bytes = Vec::new();
            super::push_json_str(&mut bytes, s);
            assert_eq!(bytes, ours.as_bytes());
        }
    }
}
