//! The signature codec. Gemini's own thought signatures go out as they
//! are, on the parts Gemini puts them on (thought parts and function
//! calls). Another vendor's signature or encrypted reasoning (an Anthropic
//! thinking signature, OpenAI encrypted reasoning) goes out as the base64 of
//! `llmo:<family>:[redacted:]<value>`, so that it comes back to the vendor
//! that made it: Google's SDKs read `thoughtSignature` as base64 bytes and
//! refuse anything else, and send the bytes back URL-safe.

use crate::protocol::chat::{Family, Signature};
use std::borrow::Cow;

/// Marks a signature value that is encrypted reasoning, not a signature.
pub const REDACTED: &str = "redacted:";

const PREFIX: &str = "llmo:";
/// `PREFIX` in base64: only values starting so are tried as ours.
const PREFIX_B64: &str = "bGxtbz";

/// A signature (or encrypted reasoning) as a `thoughtSignature` value.
/// Google's SDKs read the value as base64 bytes (and refuse anything
/// else), so another vendor's value is wrapped in base64 whole.
pub fn encode_signature<'s>(sig: &'s Signature<'_>, redacted: bool) -> Cow<'s, str> {
    if sig.family == Family::Gemini && !redacted {
        return Cow::Borrowed(&sig.value);
    }
    let mark = if redacted { REDACTED } else { "" };
    let plain = format!("{PREFIX}{}:{mark}{}", sig.family.as_str(), sig.value);
    Cow::Owned(base64::encode(plain.as_bytes()))
}

/// A `thoughtSignature` value back into a signature of its family.
pub fn decode_signature(value: Cow<'_, str>) -> Signature<'_> {
    let family = |name: &str| match name {
        "openai" => Some(Family::OpenAi),
        "anthropic" => Some(Family::Anthropic),
        _ => None,
    };
    if value.starts_with(PREFIX_B64) {
        let plain = base64::decode(&value).and_then(|b| String::from_utf8(b).ok());
        let ours = (plain.as_deref())
            .and_then(|p| p.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(name, v)| Some((family(name)?, v.to_string())));
        if let Some((family, v)) = ours {
            return Signature {
                family,
                value: Cow::Owned(v),
            };
        }
    }
    Signature {
        family: Family::Gemini,
        value,
    }
}

/// Base64 for the signature codec (standard alphabet, padded; decoding
/// also takes the URL-safe alphabet, which the google-genai SDK sends
/// back). Small enough not to add a dependency for.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let value = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                _ => return None,
            } as u32)
        };
        let text = text.trim_end_matches('=').as_bytes();
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        for chunk in text.chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                n |= value(*c)? << (18 - 6 * i);
            }
            let bytes = n.to_be_bytes();
            match chunk.len() {
                4 => out.extend_from_slice(&bytes[1..4]),
                3 => out.extend_from_slice(&bytes[1..3]),
                2 => out.push(bytes[1]),
                _ => return None,
            }
        }
        Some(out)
    }
}
