//! The signature codec. Gemini's own thought signatures go out as they
//! are, on the parts Gemini puts them on (thought parts and function
//! calls). Another vendor's signature or encrypted reasoning (an Anthropic
//! thinking signature, OpenAI encrypted reasoning) goes out as the base64 of
//! `llmo:<family>:[redacted:]<value>`, so that it comes back to the vendor
//! that made it: Google's SDKs read `thoughtSignature` as base64 bytes and
//! refuse anything else, and send the bytes back URL-safe.

use crate::protocol::chat::{Family, Signature};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use std::borrow::Cow;

/// Decoding takes padded or unpadded input: Google's SDKs send the bytes
/// back URL-safe, and not always padded.
const ANY_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, ANY_PADDING);
const URL_SAFE_ANY: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, ANY_PADDING);

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
    Cow::Owned(STANDARD.encode(plain.as_bytes()))
}

/// A `thoughtSignature` value back into a signature of its family.
pub fn decode_signature(value: Cow<'_, str>) -> Signature<'_> {
    let family = |name: &str| match name {
        "openai" => Some(Family::OpenAi),
        "anthropic" => Some(Family::Anthropic),
        _ => None,
    };
    if value.starts_with(PREFIX_B64) {
        let engine = if value.contains(['-', '_']) {
            &URL_SAFE_ANY
        } else {
            &STANDARD_ANY
        };
        let plain = (engine.decode(value.as_bytes()).ok()).and_then(|b| String::from_utf8(b).ok());
        let ours = (plain.as_deref())
            .and_then(|p| p.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(name, v)| Some((family(name)?, v.to_string())));
        if let Some((family, v)) = ours {
            return Signature::new(family, Cow::Owned(v));
        }
    }
    Signature::new(Family::Gemini, value)
}
