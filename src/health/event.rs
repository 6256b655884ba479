//! Health changes as peers exchange them, and the sink local changes go
//! to (inert until sharing through Redis is started, see `shared`).

use super::clock::wall_ms;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;

/// A state change, as published.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SharedEvent {
    /// The publishing instance (its own reports are ignored on receipt).
    #[serde(default)]
    pub instance: String,
    #[serde(flatten)]
    pub change: Change,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Provider {
        provider: String,
        state: String,
        /// Unix ms of the next trial (unhealthy only).
        next_trial_at_ms: u64,
        reason: String,
    },
    Key {
        provider: String,
        /// [`super::fingerprint`] of the key, never the key.
        key: String,
        reason: String,
        /// Unix ms when the key is usable again.
        until_ms: u64,
    },
}

impl SharedEvent {
    pub fn provider(name: &str, state: &str, next_trial_in_ms: u64, why: &str) -> Self {
        SharedEvent {
            instance: String::new(),
            change: Change::Provider {
                provider: name.to_string(),
                state: state.to_string(),
                next_trial_at_ms: wall_ms() + next_trial_in_ms,
                reason: why.to_string(),
            },
        }
    }

    /// `reason`: `CooldownReason::shared_word`.
    pub fn key(provider: &str, fingerprint: &str, reason: &str, for_: Duration) -> Self {
        SharedEvent {
            instance: String::new(),
            change: Change::Key {
                provider: provider.to_string(),
                key: fingerprint.to_string(),
                reason: reason.to_string(),
                until_ms: wall_ms() + for_.as_millis() as u64,
            },
        }
    }

    /// The field under which the latest state of this subject is kept.
    pub(super) fn field(&self) -> String {
        match &self.change {
            Change::Provider { provider, .. } => format!("provider:{provider}"),
            Change::Key { provider, key, .. } => format!("key:{provider}:{key}"),
        }
    }
}

/// Where local changes are queued; inert until sharing is started.
#[derive(Debug, Default)]
pub struct EventSink {
    pub(super) tx: OnceLock<mpsc::Sender<SharedEvent>>,
}

impl EventSink {
    pub fn emit(&self, ev: SharedEvent) {
        if let Some(tx) = self.tx.get() {
            // Full queue (Redis down for long): drop rather than wait.
            let _ = tx.try_send(ev);
        }
    }
}
