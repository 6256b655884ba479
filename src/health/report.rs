//! The health report of a snapshot's providers and keys (admin API).

use serde::Serialize;
use utoipa::ToSchema;

use super::clock::{now_ms, wall_ms};
use super::CooldownReason;

/// The `GET /api/providers/health` document: every provider and key. Typed
/// so that the admin API's OpenAPI schema is derived from what is sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    pub providers: Vec<ProviderHealthView>,
    /// Unix ms of this report.
    pub checked_at_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderHealthView {
    pub name: String,
    /// `openai`, `anthropic` or `gemini`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub enabled: bool,
    /// `healthy`, `degraded` or `unhealthy`.
    pub state: &'static str,
    pub consecutive_errors: u32,
    pub consecutive_successes: u32,
    pub last_error: Option<LastErrorView>,
    pub last_success_ms: Option<u64>,
    /// Unix ms of the next trial, when unhealthy.
    pub next_trial_ms: Option<u64>,
    pub transitions: u64,
    pub keys: Vec<KeyHealthView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastErrorView {
    /// HTTP status; null for connection errors and timeouts.
    pub status: Option<u16>,
    pub message: String,
    pub at_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyHealthView {
    /// Masked key label, never the secret.
    pub key: String,
    pub state: KeyAvailability,
    /// Why the key is cooling or disabled; null when available.
    pub reason: Option<&'static str>,
    /// Which vendor signal set the reset time (429s only): e.g.
    /// `retry-after`, `x-ratelimit-reset-*`, `google.rpc.RetryInfo retryDelay`.
    pub reset_from: Option<&'static str>,
    pub cooldown_until_ms: Option<u64>,
    pub cooldown_remaining_secs: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyAvailability {
    Available,
    /// Rate limited (429) until the cooldown ends.
    Cooling,
    /// Rejected by the vendor (401/402/403).
    Disabled,
    /// Parked until the vendor's reset time (quota exhausted).
    Parked,
}

/// The `GET /api/providers/health` document: every provider and key.
pub fn report(snap: &crate::config::Snapshot) -> HealthReport {
    let now = now_ms();
    let wall = wall_ms();
    let providers = snap
        .providers
        .iter()
        .map(|p| {
            let v = p.health.view();
            let keys = p
                .keys
                .iter()
                .map(|k| {
                    let reason = k.state.reason(now);
                    let remaining = k.state.remaining_ms(now);
                    KeyHealthView {
                        key: k.masked.clone(),
                        state: match reason {
                            CooldownReason::None => KeyAvailability::Available,
                            CooldownReason::RateLimited => KeyAvailability::Cooling,
                            CooldownReason::AuthFailed => KeyAvailability::Disabled,
                            CooldownReason::QuotaExhausted => KeyAvailability::Parked,
                        },
                        reason: (reason != CooldownReason::None).then(|| reason.as_str()),
                        // Which vendor signal set the reset time (429s only).
                        reset_from: matches!(
                            reason,
                            CooldownReason::RateLimited | CooldownReason::QuotaExhausted
                        )
                        .then(|| k.state.source().as_str()),
                        cooldown_until_ms: (remaining > 0).then_some(wall + remaining),
                        cooldown_remaining_secs: (remaining > 0).then(|| remaining as f64 / 1000.0),
                    }
                })
                .collect();
            ProviderHealthView {
                name: p.name.clone(),
                kind: p.kind.as_str(),
                enabled: p.enabled,
                state: v.state.as_str(),
                consecutive_errors: v.consecutive_errors,
                consecutive_successes: v.consecutive_successes,
                last_error: v.last_error.map(|e| LastErrorView {
                    status: e.status,
                    message: e.message,
                    at_ms: e.at_ms,
                }),
                last_success_ms: v.last_success_ms,
                next_trial_ms: v.next_trial_ms,
                transitions: v.transitions,
                keys,
            }
        })
        .collect();
    HealthReport {
        providers,
        checked_at_ms: wall,
    }
}
