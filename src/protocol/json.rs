//! JSON reading pieces the adapters share: a string borrowed from the body,
//! "a string or a list" fields, and serde's messages without positions.

use super::chat::Str;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

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
