//! Choosing where a request goes: which providers serve a model, which one
//! to try next (weighted, through pingora-load-balancing), which key to use.
//!
//! Routes are computed from an immutable snapshot, so a [`Route`] is plain
//! data plus a prebuilt weighted selector; the only mutable state on this
//! path is a provider's round-robin counter and the key cooldown atomics.

pub mod route;

pub use route::{ModelPattern, Route, RouteCache};

use crate::config::{ApiKey, Provider};
use std::sync::atomic::Ordering;

/// The outcome of key choice within one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    /// Use this key index.
    Key(usize),
    /// The provider needs no key (local servers).
    Keyless,
    /// Every key is cooling down or was already tried in this request.
    Exhausted,
}

/// Choose the next key of `provider`: round-robin over keys that are not
/// cooling down and were not tried in this request (`tried(i)`; a keyless
/// provider is slot 0).
pub fn pick_key(provider: &Provider, now_ms: u64, tried: impl Fn(usize) -> bool) -> KeyChoice {
    let n = provider.keys.len();
    if n == 0 {
        return if tried(0) {
            KeyChoice::Exhausted
        } else {
            KeyChoice::Keyless
        };
    }
    let start = provider.next_key.fetch_add(1, Ordering::Relaxed);
    for step in 0..n {
        let i = (start + step) % n;
        if !tried(i) && provider.keys[i].state.available(now_ms) {
            return KeyChoice::Key(i);
        }
    }
    KeyChoice::Exhausted
}

/// Does the provider have any key usable now (ignoring this request's tries)?
pub fn has_usable_key(provider: &Provider, now_ms: u64) -> bool {
    provider.keys.is_empty()
        || provider
            .keys
            .iter()
            .any(|k: &ApiKey| k.state.available(now_ms))
}
