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

/// Appends `s` as a JSON string literal (serde_json's escaping, so the bytes
/// match what serialising a `Value` gives).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
