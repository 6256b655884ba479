//! Health shared between gateway instances through Redis.
//!
//! Local state changes (a provider turning unhealthy or recovering, a key
//! cooling after 429 or disabled after 401/403) are queued by the request
//! path with a non-blocking `try_send` — the hot path never waits on Redis —
//! and a background task publishes them (`PUBLISH` on a channel plus `HSET`
//! of the latest state, so an instance that starts or reconnects catches
//! up). Another background task subscribes and applies peers' reports to
//! the local state machines without re-publishing them. Redis unreachable:
//! events are dropped, both tasks retry with backoff and say so once in the
//! log; every instance keeps working on its own findings.

use super::event::{Change, SharedEvent};
use super::provider::HealthState;
use super::{CooldownReason, HealthRegistry};
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;
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
                let reason = if reason == "auth_failed" {
                    CooldownReason::AuthFailed
                } else {
                    CooldownReason::RateLimited
                };
                k.apply_remote(remaining, reason);
            }
        }
    }
}

/// The background service that publishes and subscribes.
pub struct RedisSync {
    url: String,
    registry: Arc<HealthRegistry>,
    instance: String,
}

impl RedisSync {
    pub fn new(url: &str, registry: Arc<HealthRegistry>) -> Self {
        let instance = format!("{:016x}", rand::random::<u64>());
        RedisSync {
            url: url.to_string(),
            registry,
            instance,
        }
    }
}

/// Log a Redis outage once, and its end once.
struct Outage {
    what: &'static str,
    down: bool,
}

impl Outage {
    fn failed(&mut self, url: &str, e: &dyn std::fmt::Display) {
        if !self.down {
            tracing::warn!(redis = %redacted(url), error = %e, "redis unreachable ({}); health is not shared until it returns, retrying with backoff", self.what);
            self.down = true;
        }
    }
    fn ok(&mut self) {
        if self.down {
            tracing::info!("redis reachable again ({})", self.what);
            self.down = false;
        }
    }
}

/// The URL without a password, for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((250u64 << attempt.min(7)).min(30_000))
}

#[async_trait::async_trait]
impl BackgroundService for RedisSync {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let client = match redis::Client::open(self.url.as_str()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(redis = %redacted(&self.url), error = %e, "invalid REDIS_URL; health is not shared");
                return;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = self.registry.sink().tx.set(tx);
        tokio::select! {
            _ = publish(client.clone(), rx, &self.instance, &self.url) => {}
            _ = subscribe(client, &self.registry, &self.instance, &self.url) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn publish(
    client: redis::Client,
    mut rx: mpsc::Receiver<SharedEvent>,
    instance: &str,
    url: &str,
) {
    let mut outage = Outage {
        what: "publishing",
        down: false,
    };
    let mut attempt = 0;
    let mut conn = None;
    while let Some(mut ev) = rx.recv().await {
        ev.instance = instance.to_string();
        let Ok(payload) = serde_json::to_string(&ev) else {
            continue;
        };
        if conn.is_none() {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => {
                    conn = Some(c);
                    attempt = 0;
                }
                Err(e) => {
                    outage.failed(url, &e);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    // This event is lost; newer ones carry the latest state.
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
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
            .query_async(c)
            .await;
        match sent {
            Ok(()) => outage.ok(),
            Err(e) => {
                outage.failed(url, &e);
                conn = None;
            }
        }
    }
}

async fn subscribe(client: redis::Client, registry: &HealthRegistry, instance: &str, url: &str) {
    let mut outage = Outage {
        what: "subscribing",
        down: false,
    };
    let mut attempt = 0;
    loop {
        let result: redis::RedisResult<()> = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            // Catch up with what peers found while we were away.
            let mut conn = client.get_multiplexed_async_connection().await?;
            let all: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(STATE_HASH)
                .query_async(&mut conn)
                .await?;
            for (_, payload) in all {
                if let Ok(ev) = serde_json::from_str::<SharedEvent>(&payload) {
                    apply(registry, &ev, instance);
                }
            }
            outage.ok();
            attempt = 0;
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<SharedEvent>(&payload) {
                    Ok(ev) => apply(registry, &ev, instance),
                    Err(e) => tracing::debug!(error = %e, "ignoring a malformed health message"),
                }
            }
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "subscription closed",
            )))
        }
        .await;
        if let Err(e) = result {
            outage.failed(url, &e);
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("redis://:hunter2@cache:6379/0"),
            "redis://…@cache:6379/0"
        );
        assert_eq!(
            redacted("redis://localhost:6379/0"),
            "redis://localhost:6379/0"
        );
    }
}
