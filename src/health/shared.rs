//! Health shared between gateway instances through Redis.
//!
//! Local state changes (a provider turning unhealthy or recovering, a key
//! cooling after 429 or disabled after 401/403) are queued by the request
//! path with a non-blocking `try_send` — the hot path never waits on Redis —
//! and a background task publishes them (`PUBLISH` on a channel plus `HSET`
//! of the latest state, so an instance that starts or reconnects catches
//! up). Another background task subscribes and applies peers' reports to
//! the local state machines without re-publishing them. Redis unreachable:
//! events are dropped, the shared connection (`control/redis.rs`)
//! reconnects with backoff and says so once in the log; every instance
//! keeps working on its own findings.

use super::event::{Change, SharedEvent};
use super::provider::HealthState;
use super::{CooldownReason, HealthRegistry};
use crate::control::redis::{Push, SharedRedis};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use tokio::sync::mpsc;

const CHANNEL: &str = "llm-orchestrator:health";
const STATE_HASH: &str = "llm-orchestrator:health:state";
/// Events waiting for the publisher; beyond this they are dropped.
const QUEUE: usize = 4096;

/// Apply a peer's report to the local registry.
pub fn apply(registry: &HealthRegistry, ev: &SharedEvent, instance: &str) {
    if ev.instance == instance {
        return;
    }
    let wall = super::wall_ms();
    match &ev.change {
        Change::Provider {
            provider,
            state,
            next_trial_at_ms,
            reason,
        } => {
            let Some(h) = registry.find_provider(provider) else {
                return;
            };
            let to = match state.as_str() {
                "unhealthy" => HealthState::Unhealthy,
                "degraded" => HealthState::Degraded,
                _ => HealthState::Healthy,
            };
            h.apply_remote(to, next_trial_at_ms.saturating_sub(wall), reason);
        }
        Change::Key {
            provider,
            key,
            reason,
            until_ms,
        } => {
            let remaining = until_ms.saturating_sub(wall);
            if remaining == 0 {
                return;
            }
            if let Some(k) = registry.find_key(provider, key) {
                let reason = match reason.as_str() {
                    "auth_failed" => CooldownReason::AuthFailed,
                    "quota_exhausted" => CooldownReason::QuotaExhausted,
                    _ => CooldownReason::RateLimited,
                };
                k.apply_remote(remaining, reason);
            }
        }
    }
}

/// The background service that publishes and subscribes, on the process's
/// shared Redis connection (`control/redis.rs`: reconnects and outage
/// logging are there).
pub struct RedisSync {
    redis: Arc<SharedRedis>,
    registry: Arc<HealthRegistry>,
    instance: String,
}

impl RedisSync {
    pub fn new(redis: Arc<SharedRedis>, registry: Arc<HealthRegistry>) -> Self {
        let instance = format!("{:016x}", rand::random::<u64>());
        RedisSync {
            redis,
            registry,
            instance,
        }
    }
}

#[async_trait::async_trait]
impl BackgroundService for RedisSync {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = self.registry.sink().tx.set(tx);
        let pushes = self.redis.subscribe(CHANNEL);
        let conn = self.redis.manager().await;
        tokio::select! {
            _ = publish(conn.clone(), rx, &self.instance) => {}
            _ = subscribe(conn, pushes, &self.registry, &self.instance) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn publish(mut conn: ConnectionManager, mut rx: mpsc::Receiver<SharedEvent>, instance: &str) {
    while let Some(mut ev) = rx.recv().await {
        ev.instance = instance.to_string();
        let Ok(payload) = serde_json::to_string(&ev) else {
            continue;
        };
        let sent: redis::RedisResult<()> = redis::pipe()
            .cmd("HSET")
            .arg(STATE_HASH)
            .arg(ev.field())
            .arg(&payload)
            .ignore()
            .cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(&payload)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            // Lost; newer events carry the latest state. The outage itself
            // is logged once by the shared connection.
            tracing::debug!(error = %e, "health event not published");
        }
    }
}

async fn subscribe(
    mut conn: ConnectionManager,
    mut pushes: mpsc::Receiver<Push>,
    registry: &HealthRegistry,
    instance: &str,
) {
    while let Some(push) = pushes.recv().await {
        match push {
            // (Re)subscribed: catch up with what peers found meanwhile.
            Push::Subscribed => {
                let all: redis::RedisResult<Vec<(String, String)>> = redis::cmd("HGETALL")
                    .arg(STATE_HASH)
                    .query_async(&mut conn)
                    .await;
                match all {
                    Ok(all) => {
                        for (_, payload) in all {
                            if let Ok(ev) = serde_json::from_str::<SharedEvent>(&payload) {
                                apply(registry, &ev, instance);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "health catch-up failed"),
                }
            }
            Push::Message(payload) => match serde_json::from_str::<SharedEvent>(&payload) {
                Ok(ev) => apply(registry, &ev, instance),
                Err(e) => tracing::debug!(error = %e, "ignoring a malformed health message"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn peer_reports_apply_and_own_reports_are_ignored() {
        let reg = HealthRegistry::default();
        let p = reg.provider("a");
        let k = reg.key_state("a", "sk-secret-key-1");
        let mut ev = SharedEvent::provider(
            "a",
            HealthState::Unhealthy.as_str(),
            60_000,
            "consecutive errors",
        );
        ev.instance = "me".into();
        apply(&reg, &ev, "me");
        assert_eq!(p.state(), HealthState::Healthy, "own report ignored");
        ev.instance = "peer".into();
        apply(&reg, &ev, "me");
        assert_eq!(p.state(), HealthState::Unhealthy);
        assert!(!p.selectable(super::super::now_ms()));

        let mut kev = SharedEvent::key(
            "a",
            &super::super::fingerprint("sk-secret-key-1"),
            CooldownReason::RateLimited.shared_word(),
            Duration::from_secs(30),
        );
        kev.instance = "peer".into();
        let wire = serde_json::to_string(&kev).expect("json");
        assert!(!wire.contains("sk-secret"), "the key never travels: {wire}");
        apply(&reg, &serde_json::from_str(&wire).expect("parse"), "me");
        assert_eq!(
            k.reason(super::super::now_ms()),
            CooldownReason::RateLimited
        );
    }
}
