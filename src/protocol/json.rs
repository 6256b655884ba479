//! JSON pieces the adapters share: a string borrowed from the body, "a
//! string or a list" fields, serde's messages without positions, and a
//! hand writer ([`Writer`]).

use super::chat::{ChatError, Str};
use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// `serde_json::from_slice` with the body's UTF-8 checked once: `from_slice`
/// checks every string (keys too) on its own, ~100 instructions each.
/// Invalid UTF-8 gets `from_slice`'s error (it says where).
pub fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// A string borrowed from the body unless JSON escapes had to be undone.
#[derive(Debug, Clone, Default)]
pub struct S<'a>(pub Str<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for S<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = S<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<S<'a>, E> {
                Ok(S(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<S<'a>, E> {
                Ok(S(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<S<'a>, E> {
                Ok(S(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// An optional string field's string.
pub fn s(v: Option<S<'_>>) -> Option<Str<'_>> {
    v.map(|s| s.0)
}

/// A string, or a list `L` (a `Vec`, or an adapter's own list type whose
/// element errors carry their index): OpenAI `content` and `stop`,
/// Responses `input` and `output`.
pub enum OneOrList<'a, L> {
    One(S<'a>),
    List(L),
}

impl<'de: 'a, 'a, L: Deserialize<'de>> Deserialize<'de> for OneOrList<'a, L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, L>(PhantomData<(&'a (), L)>);
        impl<'de: 'a, 'a, L: Deserialize<'de>> Visitor<'de> for V<'a, L> {
            type Value = OneOrList<'a, L>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(OneOrList::One(S(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OneOrList::One(S(Cow::Owned(v.to_string()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                L::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrList::List)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON value kept as its text, read later (or re-emitted as it came).
pub type Raw<'a> = &'a RawValue;

/// `raw` read as a `T`; an error names `path` (serde's position is
/// meaningless inside a sub-value and is cut).
pub fn get<'a, T: Deserialize<'a>>(
    raw: Raw<'a>,
    path: impl Fn() -> String,
) -> Result<T, ChatError> {
    serde_json::from_str(raw.get()).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.rfind(" at line ").map_or(&msg[..], |i| &msg[..i]);
        ChatError::invalid(path(), msg)
    })
}

/// Marks the field a typed value's error belongs to inside a serde error
/// message, `\u{1}key\u{1}message`: a visitor that reads a body's top level
/// in one pass can only return serde's error, not a [`ChatError`].
pub const MARK: char = '\u{1}';

/// The current map entry's value, its error marked with `key`.
pub fn marked<'de, A: de::MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    key: &str,
) -> Result<T, A::Error> {
    map.next_value()
        .map_err(|e| de::Error::custom(format!("{MARK}{key}{MARK}{e}")))
}

/// An object read entry by entry in one pass: each key and the map, to
/// read the value with (typed, [`marked`], or raw).
pub trait Entries<'de>: Default {
    fn entry<A: de::MapAccess<'de>>(&mut self, key: Str<'de>, map: &mut A) -> Result<(), A::Error>;
}

/// Deserialises an [`Entries`] from a JSON object.
pub struct Object<T>(pub T);

impl<'de, T: Entries<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Entries<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Object<T>, A::Error> {
                let mut out = T::default();
                while let Some(S(key)) = map.next_key()? {
                    out.entry(key, &mut map)?;
                }
                Ok(Object(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// The path and message of a [`MARK`]ed error message, as they are.
pub fn split_mark(msg: &str) -> Option<(&str, &str)> {
    msg.strip_prefix(MARK)?.split_once(MARK)
}

/// The key and message (positions cut) of an error [`marked`] made.
pub fn unmark(msg: &str) -> Option<(&str, &str)> {
    let (key, m) = split_mark(msg)?;
    Some((key, without_position(without_position(m))))
}

/// serde_json appends ` at line L column C` to messages; a field path says
/// more to the client.
pub fn without_position(msg: &str) -> &str {
    if let Some(i) = msg.rfind(" at line ") {
        let tail = &msg[i + 9..];
        if tail
            .split(" column ")
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            return &msg[..i];
        }
    }
    msg
}

/// A cursor for recognising a stream event in the exact form a vendor
/// writes it (fixed key order, no whitespace) by its literal parts: the
/// commonest events then cost a few prefix compares and one string scan
/// instead of a serde parse. Every form a recogniser accepts must be one
/// the adapter's serde parse reads the same way (each recogniser has a
/// parse-equivalence test); anything else makes it return `None` and the
/// parse runs.
pub struct Canon<'a>(pub &'a str);

impl<'a> Canon<'a> {
    /// Consumes `lit` if the text continues with it.
    pub fn lit(&mut self, lit: &str) -> bool {
        match self.0.strip_prefix(lit) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// A JSON integer (`0`, or digits without a leading zero, which JSON
    /// forbids).
    pub fn int(&mut self) -> Option<u64> {
        let n = self.0.bytes().take_while(u8::is_ascii_digit).count();
        let digits = &self.0[..n];
        if n == 0 || (n > 1 && digits.starts_with('0')) {
            return None;
        }
        let v = digits.parse().ok()?;
        self.0 = &self.0[n..];
        Some(v)
    }

    /// A string literal, escapes decoded (borrowed when it has none). A raw
    /// control character (invalid in JSON) gives `None`.
    pub fn string(&mut self) -> Option<Str<'a>> {
        let rest = self.0.strip_prefix('"')?;
        let bytes = rest.as_bytes();
        let mut at = 0;
        let mut escaped = false;
        let end = loop {
            let i = at + memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
            if bytes[i] == b'"' {
                break i;
            }
            // Whatever follows the backslash belongs to the escape (a quote
            // included); serde_json checks the escape below.
            escaped = true;
            at = i + 2;
        };
        let value = if escaped {
            // The literal with its quotes: serde_json decodes and checks it.
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

    /// Nothing left.
    pub fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `s` goes into a JSON string literal as it is: no `"`, `\` or
/// control character (what serde_json escapes).
pub fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// `s` as a JSON string literal appended to `out`: copied as is when
/// nothing needs escaping (the common case), else through serde_json
/// (which escapes `"`, `\` and control characters, as this check does).
pub fn push_str(out: &mut BytesMut, s: &str) {
    if is_plain(s) {
        out.reserve(s.len() + 2);
        out.put_u8(b'"');
        out.extend_from_slice(s.as_bytes());
        out.put_u8(b'"');
    } else {
        // Writing into memory cannot fail.
        let _ = serde_json::to_writer(out.writer(), s);
    }
}

/// A JSON writer for vendor request bodies (OpenAI, Gemini): members in
/// the order written, no intermediate structs. A separator goes before a member or element unless the
/// byte before opens an object or array, ends a key or is a separator:
/// no state to get wrong.
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn sep(&mut self) {
        if !matches!(self.0.last(), None | Some(b'{' | b'[' | b':' | b',')) {
            self.0.push(b',');
        }
    }
    pub fn val<T: Serialize + ?Sized>(&mut self, v: &T) {
        self.sep();
        // Writing into memory cannot fail.
        let _ = serde_json::to_writer(&mut self.0, v);
    }
    pub fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.sep();
        self.0.extend_from_slice(v.as_bytes());
    }
    pub fn key(&mut self, k: &str) -> &mut Self {
        // Keys are mostly literals with nothing to escape: copied, not
        // run through serde's escaper (~40 instructions a key).
        if is_plain(k) {
            self.sep();
            self.0.push(b'"');
            self.0.extend_from_slice(k.as_bytes());
            self.0.extend_from_slice(b"\":");
        } else {
            self.val(k);
            self.0.push(b':');
        }
        self
    }
    pub fn put<T: Serialize + ?Sized>(&mut self, k: &str, v: &T) {
        self.key(k).val(v);
    }
    pub fn opt<T: Serialize>(&mut self, k: &str, v: Option<T>) {
        if let Some(v) = v {
            self.put(k, &v);
        }
    }
    pub fn wrap<R>(&mut self, open: u8, close: u8, f: impl FnOnce(&mut Self) -> R) -> R {
        self.sep();
        self.0.push(open);
        let r = f(self);
        self.0.push(close);
        r
    }
    pub fn obj<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.wrap(b'{', b'}', f)
    }
    pub fn arr<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.wrap(b'[', b']', f)
    }
}

/// `{}`, for an object a vendor or client requires where there is nothing.
pub fn empty_object() -> &'static RawValue {
    // A valid literal: the fallback is never taken.
    serde_json::from_str("{}").unwrap_or(RawValue::NULL)
}

/// `v` serialised into a buffer of `capacity` bytes to start with.
pub fn to_bytes(v: &impl serde::Serialize, capacity: usize) -> Bytes {
    // A `Vec`, not a `BytesMut` writer: serde_json makes three writes per
    // string, and `Vec`'s are inlined copies (callgrind: ~1k instructions
    // less per translated answer).
    let mut out = Vec::with_capacity(capacity);
    // Serialising borrowed values into memory cannot fail.
    let _ = serde_json::to_writer(&mut out, v);
    Bytes::from(out)
}

/// `"key":n` in an object being written, after a comma unless the object
/// just opened: usage objects by hand (serde's struct writer into a
/// `BytesMut` costs ~2.5k instructions for one). `key` is a literal with
/// nothing to escape.
pub fn push_count(out: &mut BytesMut, key: &str, n: u64) {
    let open = out.last() == Some(&b'{');
    out.extend_from_slice(if open { b"\"" } else { b",\"" });
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    push_u64(out, n);
}

/// `n` in decimal appended to `out`, without a temporary `String`.
pub fn push_u64(out: &mut BytesMut, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A token count however a vendor writes it: an integer, a float
/// (truncated), or anything else (`null`, a string, a negative number) as 0
/// — a malformed count must not fail an answer that is otherwise fine. A
/// visitor, not an untagged enum: those buffer the value and try each
/// variant, an allocation and ~1k instructions per count.
#[derive(Debug, Default, Clone, Copy)]
pub struct Count(pub u64);

impl Count {
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
                Ok(Count(n))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Count, E> {
                Ok(Count(if f > 0.0 { f as u64 } else { 0 }))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Count, A::Error> {
                while a.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Count(0))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Count, A::Error> {
                while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Count(0))
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_body_reads_text_once_and_keeps_from_slices_errors() {
        let v: Vec<S<'_>> = from_body(br#"["caf\u00e9","plain"]"#).unwrap();
        assert!(
            matches!((&v[0].0, &v[1].0), (Cow::Owned(a), Cow::Borrowed("plain")) if a == "café")
        );
        let bad = b"[\"ok\",\"\xff\"]";
        let ours = from_body::<Vec<S<'_>>>(bad).unwrap_err().to_string();
        assert_eq!(
            ours,
            serde_json::from_slice::<Vec<S<'_>>>(bad)
                .unwrap_err()
                .to_string()
        );
        assert!(ours.contains("column"), "{ours}");
    }
}
