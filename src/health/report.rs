//! The health report of a snapshot's providers and keys (admin API).

use super::clock::{now_ms, wall_ms};
use super::CooldownReason;

/// The `GET /api/providers/health` document: every provider and key.
pub fn report(snap: &crate::config::Snapshot) -> serde_json::Value {
    use serde_json::json;
    let now = now_ms();
    let wall = wall_ms();
    let providers: Vec<serde_json::Value> = snap
        .providers
        .iter()
        .map(|p| {
            let v = p.health.view();
            let keys: Vec<serde_json::Value> = p
                .keys
                .iter()
                .map(|k| {
                    let reason = k.state.reason(now);
                    let remaining = k.state.remaining_ms(now);
                    json!({
                        "key": k.masked,
                        "state": match reason {
                            CooldownReason::None => "available",
                            CooldownReason::RateLimited => "cooling",
                            CooldownReason::AuthFailed => "disabled",
                            CooldownReason::QuotaExhausted => "parked",
                        },
                        "reason": (reason != CooldownReason::None).then(|| reason.as_str()),
                        // Which vendor signal set the reset time (429s only).
                        "reset_from": matches!(reason, CooldownReason::RateLimited | CooldownReason::QuotaExhausted)
                            .then(|| k.state.source().as_str()),
                        "cooldown_until_ms": (remaining > 0).then_some(wall + remaining),
                        "cooldown_remaining_secs": (remaining > 0).then(|| remaining as f64 / 1000.0),
                    })
                })
                .collect();
            json!({
                "name": p.name,
                "type": p.kind.as_str(),
                "enabled": p.enabled,
                "state": v.state.as_str(),
                "consecutive_errors": v.consecutive_errors,
                "consecutive_successes": v.consecutive_successes,
                "last_error": v.last_error.map(|e| json!({
                    "status": e.status, "message": e.message, "at_ms": e.at_ms,
                })),
                "last_success_ms": v.last_success_ms,
                "next_trial_ms": v.next_trial_ms,
                "transitions": v.transitions,
                "keys": keys,
            })
        })
        .collect();
    json!({ "providers": providers, "checked_at_ms": wall })
}
