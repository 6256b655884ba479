//! Configuration changes from other instances on a shared database
//! (MySQL, PostgreSQL), without Redis.
//!
//! Every committed configuration change bumps one version row; each
//! instance reads it once a second (a primary-key lookup) and, when it
//! moved, reloads the API-managed configuration from the database and
//! swaps it in through the same validated path as a local write. So a
//! change made on any instance is live on every other within about a
//! second (the bound is 5 s). With Redis on, pub/sub still
//! announces changes sooner; this poll is what makes Redis optional.
//!
//! Database down: the running configuration stays (it is in memory), the
//! outage is logged once, and the poll resumes when the database answers.

use super::ControlPlane;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// How often the version row is read.
pub const POLL: Duration = Duration::from_secs(1);

pub struct VersionPoller {
    control: Arc<ControlPlane>,
    every: Duration,
}

impl VersionPoller {
    pub fn new(control: Arc<ControlPlane>, every: Duration) -> Self {
        VersionPoller { control, every }
    }
}

#[async_trait]
impl BackgroundService for VersionPoller {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(store) = self.control.store().cloned() else {
            return;
        };
        // `None` at first: the first answer triggers a (cheap, usually
        // empty) reload, covering changes between start-up and now.
        let mut seen: Option<u64> = None;
        let mut down = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = shutdown.changed() => return,
            }
            let version = match store.config_version().await {
                Ok(v) => v,
                Err(e) => {
                    if !down {
                        tracing::warn!(error = %e, "cannot read the shared configuration version; serving the running configuration and retrying every second");
                        down = true;
                    }
                    continue;
                }
            };
            if down {
                tracing::info!("the database answers again (configuration poll)");
                down = false;
            }
            if seen == Some(version) {
                continue;
            }
            match self.control.reload_from_store().await {
                Ok(changed) => {
                    if changed {
                        tracing::info!(
                            stored_version = version,
                            "configuration changed by another instance"
                        );
                    }
                    seen = Some(version);
                }
                Err(super::WriteError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "cannot reload the shared configuration; retrying");
                }
                Err(e) => {
                    // The same stored state would fail the same way: wait
                    // for the next change instead of retrying every second.
                    tracing::error!(stored_version = version, error = ?e, "the shared configuration was refused; keeping the running one");
                    seen = Some(version);
                }
            }
        }
    }
}
