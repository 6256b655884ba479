//! State that outlives a configuration snapshot: provider health and API
//! key cooldowns.
//!
//! A snapshot is rebuilt on every config change, but a key that answered 429
//! a second ago must stay cooling after the rebuild, and an unhealthy
//! provider must stay unhealthy, so this state lives here — keyed by
//! provider name (and a fingerprint of the key) — and snapshots hold `Arc`s
//! into it. Reads on the hot path are single atomic loads.

pub mod checker;
mod clock;
pub mod discovery;
mod event;
pub mod park;
mod provider;
mod report;
pub mod shared;

pub use clock::{fingerprint, fingerprint_bytes, now_ms, wall_ms};
pub use event::{Change, EventSink, SharedEvent};
pub use park::{Park, Reset, ResetSource};
pub use provider::{Admission, HealthPolicy, HealthState, HealthView, LastError, ProviderHealth};
pub use report::{report, HealthReport};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a key is not being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CooldownReason {
    None = 0,
    RateLimited = 1,
    AuthFailed = 2,
    /// A 429 that says the quota or the billing limit is spent (OpenAI
    /// `insufficient_quota`, a Gemini daily quota): parked for hours.
    QuotaExhausted = 3,
}

impl CooldownReason {
    /// The word peers read in a shared key event.
    pub fn shared_word(self) -> &'static str {
        match self {
            CooldownReason::AuthFailed => "auth_failed",
            CooldownReason::QuotaExhausted => "quota_exhausted",
            _ => "rate_limited",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CooldownReason::None => "available",
            CooldownReason::RateLimited => "rate limited (429)",
            CooldownReason::AuthFailed => "rejected by the vendor (401/402/403)",
            CooldownReason::QuotaExhausted => "quota exhausted (429)",
        }
    }
}

#[derive(Debug, Default)]
pub struct KeyState {
    cooldown_until_ms: AtomicU64,
    reason: AtomicU8,
    /// [`ResetSource`] of the current park.
    source: AtomicU8,
    /// Identity for sharing between instances (never the key itself).
    provider: String,
    fingerprint: String,
    sink: Arc<EventSink>,
}

impl KeyState {
    /// Is the key usable at `now` (from [`now_ms`])?
    pub fn available(&self, now: u64) -> bool {
        self.cooldown_until_ms.load(Ordering::Relaxed) <= now
    }

    /// Usable again at once (an active re-check succeeded).
    pub fn clear(&self) {
        self.cooldown_until_ms.store(0, Ordering::Relaxed);
        self.reason
            .store(CooldownReason::None as u8, Ordering::Relaxed);
    }

    pub fn cool_down(&self, for_: Duration, reason: CooldownReason) {
        self.set_cooldown(for_.as_millis() as u64, reason);
        self.sink.emit(SharedEvent::key(
            &self.provider,
            &self.fingerprint,
            reason.shared_word(),
            for_,
        ));
    }

    /// Park the key after a 429 as `park` decided, and say so in the log
    /// (`masked` is the key's masked form; the key itself never is).
    pub fn park(&self, provider: &str, masked: &str, park: &Park) {
        let reason = if park.quota {
            CooldownReason::QuotaExhausted
        } else {
            CooldownReason::RateLimited
        };
        if self.set_cooldown(park.wait.as_millis() as u64, reason) {
            self.source.store(park.source as u8, Ordering::Relaxed);
        }
        let until_ms = wall_ms() + park.wait.as_millis() as u64;
        tracing::warn!(
            provider,
            key = masked,
            reason = reason.as_str(),
            from = park.source.as_str(),
            park_s = park.wait.as_secs_f64(),
            until_ms,
            "key parked until the vendor's reset time"
        );
        self.sink.emit(SharedEvent::key(
            &self.provider,
            &self.fingerprint,
            reason.shared_word(),
            park.wait,
        ));
    }

    /// Where the current park's time came from.
    pub fn source(&self) -> ResetSource {
        ResetSource::from_u8(self.source.load(Ordering::Relaxed))
    }

    /// A peer instance reported this key cooling: apply without re-publishing.
    pub fn apply_remote(&self, remaining_ms: u64, reason: CooldownReason) {
        self.set_cooldown(remaining_ms, reason);
    }

    /// Returns whether this deadline is the one in force (a longer park
    /// already set keeps its own reason).
    fn set_cooldown(&self, for_ms: u64, reason: CooldownReason) -> bool {
        let until = now_ms() + for_ms;
        // Keep the later deadline when two requests report at once.
        let before = self.cooldown_until_ms.fetch_max(until, Ordering::Relaxed);
        if until < before {
            return false;
        }
        self.reason.store(reason as u8, Ordering::Relaxed);
        self.source
            .store(ResetSource::Fixed as u8, Ordering::Relaxed);
        true
    }

    /// Current reason, `None` when the cooldown has passed.
    pub fn reason(&self, now: u64) -> CooldownReason {
        if self.available(now) {
            return CooldownReason::None;
        }
        match self.reason.load(Ordering::Relaxed) {
            1 => CooldownReason::RateLimited,
            2 => CooldownReason::AuthFailed,
            3 => CooldownReason::QuotaExhausted,
            _ => CooldownReason::None,
        }
    }

    /// Milliseconds until usable again (0 when usable).
    pub fn remaining_ms(&self, now: u64) -> u64 {
        self.cooldown_until_ms
            .load(Ordering::Relaxed)
            .saturating_sub(now)
    }
}

/// Registry of health states; touched when a snapshot is built and when a
/// peer instance reports a change, never per request.
#[derive(Debug, Default)]
pub struct HealthRegistry {
    keys: Mutex<HashMap<(String, String), Arc<KeyState>>>,
    providers: Mutex<HashMap<String, Arc<ProviderHealth>>>,
    /// Where local state changes go to be shared (Redis), when enabled.
    sink: Arc<EventSink>,
}

impl HealthRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The health of this provider, shared with earlier snapshots.
    pub fn provider(&self, name: &str) -> Arc<ProviderHealth> {
        let mut map = match self.providers.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(name.to_string())
            .or_insert_with(|| Arc::new(ProviderHealth::with_sink(name, self.sink.clone())))
            .clone()
    }

    pub fn sink(&self) -> &Arc<EventSink> {
        &self.sink
    }

    /// A provider's state if it exists (peer reports about unknown
    /// providers are ignored).
    pub fn find_provider(&self, name: &str) -> Option<Arc<ProviderHealth>> {
        self.providers.lock().ok()?.get(name).cloned()
    }

    pub fn find_key(&self, provider: &str, fingerprint: &str) -> Option<Arc<KeyState>> {
        self.keys
            .lock()
            .ok()?
            .get(&(provider.to_string(), fingerprint.to_string()))
            .cloned()
    }

    /// The state for this key of this provider, shared with earlier snapshots.
    pub fn key_state(&self, provider: &str, secret: &str) -> Arc<KeyState> {
        let fp = fingerprint(secret);
        let mut map = match self.keys.lock() {
            Ok(m) => m,
            // A panic elsewhere while holding the lock leaves plain data intact.
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry((provider.to_string(), fp.clone()))
            .or_insert_with(|| {
                Arc::new(KeyState {
                    provider: provider.to_string(),
                    fingerprint: fp,
                    sink: self.sink.clone(),
                    ..KeyState::default()
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_expires_and_reports_reason() {
        let k = KeyState::default();
        let now = now_ms();
        assert!(k.available(now));
        k.cool_down(Duration::from_secs(30), CooldownReason::RateLimited);
        assert!(!k.available(now_ms()));
        assert_eq!(k.reason(now_ms()), CooldownReason::RateLimited);
        assert!(k.available(now_ms() + 31_000));
        assert_eq!(k.reason(now_ms() + 31_000), CooldownReason::None);
    }

    #[test]
    fn state_survives_a_rebuild() {
        let reg = HealthRegistry::default();
        let a = reg.key_state("p", "sk-1");
        a.cool_down(Duration::from_secs(60), CooldownReason::AuthFailed);
        let b = reg.key_state("p", "sk-1");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &reg.key_state("q", "sk-1")));
    }
}
