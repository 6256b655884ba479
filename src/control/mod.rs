//! The control plane: everything that changes the running configuration.
//!
//! Every change — a TOML file edit today, admin API writes later — goes the
//! same way: build a complete configuration, validate and compile it into a
//! new [`Snapshot`], and swap it in with `ArcSwap`. Requests in flight keep
//! the snapshot they started with; the next request sees the new one. A
//! change that does not compile is rejected with every error logged, and
//! the running configuration stays.

use crate::config::{self, ConfigErrors, FileConfig, ProcessSettings, Snapshot};
use crate::proxy::GatewayState;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct ControlPlane {
    state: Arc<GatewayState>,
    file: Option<PathBuf>,
    process: ProcessSettings,
    version: AtomicU64,
}

impl ControlPlane {
    pub fn new(
        state: Arc<GatewayState>,
        file: Option<PathBuf>,
        process: ProcessSettings,
    ) -> Arc<Self> {
        let version = state.snapshot.load().version;
        Arc::new(ControlPlane {
            state,
            file,
            process,
            version: AtomicU64::new(version),
        })
    }

    /// Read the file again and, when it compiles, make it live.
    pub fn reload_file(&self) -> Result<u64, ConfigErrors> {
        let (file, source) = config::load(self.file.as_deref(), &config::process_env)?;
        self.apply(&file, &source)
    }

    fn apply(&self, file: &FileConfig, source: &str) -> Result<u64, ConfigErrors> {
        let (process, mut snapshot) =
            config::compile(file, source, &config::process_env, &self.state.registry)?;
        warn_restart_only(&self.process, &process);
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        snapshot.version = version;
        let providers = snapshot.provider_count();
        self.state.snapshot.store(Arc::new(snapshot));
        tracing::info!(config = %source, version, providers, "configuration reloaded");
        Ok(version)
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.state.snapshot.load_full()
    }
}

/// Settings that only take effect at start: say so instead of silently
/// ignoring an edit.
fn warn_restart_only(running: &ProcessSettings, new: &ProcessSettings) {
    let changed: Vec<&str> = [
        ("server.host", running.host != new.host),
        ("server.port", running.port != new.port),
        ("server.threads", running.threads != new.threads),
        ("log.level", running.log_level != new.log_level),
        ("log.file", running.log_file != new.log_file),
        (
            "redis",
            running.redis_enabled != new.redis_enabled || running.redis_url != new.redis_url,
        ),
        ("database.url", running.database_url != new.database_url),
    ]
    .into_iter()
    .filter_map(|(k, c)| c.then_some(k))
    .collect();
    if !changed.is_empty() {
        tracing::warn!(settings = ?changed, "these settings changed in the file but apply only after a restart");
    }
}

/// Watches the TOML file and reloads it when it changes. Polling (once a
/// second) instead of inotify: it sees editors that replace the file by
/// rename, files on network mounts and Kubernetes ConfigMap symlink swaps.
pub struct FileWatcher {
    control: Arc<ControlPlane>,
    every: Duration,
}

impl FileWatcher {
    pub fn new(control: Arc<ControlPlane>, every: Duration) -> Self {
        FileWatcher { control, every }
    }
}

/// What identifies a version of the file: content, not just mtime, so a
/// touch without change does nothing and a same-second edit is still seen.
fn fingerprint(path: &std::path::Path) -> Option<(Option<SystemTime>, u64)> {
    let bytes = std::fs::read(path).ok()?;
    let modified = std::fs::metadata(path).ok().and_then(|m| m.modified().ok());
    Some((modified, crate::health::fingerprint_bytes(&bytes)))
}

#[async_trait]
impl BackgroundService for FileWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(path) = self.control.file.clone() else {
            return;
        };
        let mut seen = fingerprint(&path).map(|f| f.1);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = shutdown.changed() => return,
            }
            let now = fingerprint(&path).map(|f| f.1);
            if now.is_none() || now == seen {
                // A missing file (mid-rename) is not a change to an empty config.
                continue;
            }
            seen = now;
            match self.control.reload_file() {
                Ok(_) => {}
                Err(errs) => {
                    tracing::error!(
                        file = %path.display(),
                        errors = errs.0.len(),
                        "configuration change rejected; the running configuration stays"
                    );
                    for e in &errs.0 {
                        tracing::error!("  {e}");
                    }
                }
            }
        }
    }
}
