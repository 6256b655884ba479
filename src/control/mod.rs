//! The control plane: everything that changes the running configuration.
//!
//! Every change — a TOML file edit today, admin API writes later — goes the
//! same way: build a complete configuration, validate and compile it into a
//! new [`Snapshot`], and swap it in with `ArcSwap`. Requests in flight keep
//! the snapshot they started with; the next request sees the new one. A
//! change that does not compile is rejected with every error logged, and
//! the running configuration stays.

pub mod api;
pub mod handle;
pub mod live;
pub mod poll;
pub mod redis;
pub mod sync;

use crate::config::{self, ConfigError, ConfigErrors, FileConfig, ProcessSettings, Snapshot};
use crate::store::{ChangeResult, ConfigChange, Store, StoreError};
use api::{ApiConfig, FieldError};
use async_trait::async_trait;
use live::Live;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub struct ControlPlane {
    pub state: Arc<Live>,
    file: Option<PathBuf>,
    process: ProcessSettings,
    version: AtomicU64,
    store: Option<Store>,
    /// The last file contents that compiled (with the API part).
    file_cfg: Mutex<(FileConfig, String)>,
    /// The API-owned part, mirrored from the store.
    api: Mutex<ApiConfig>,
    /// One admin write at a time: validate-then-commit must not interleave.
    writes: tokio::sync::Mutex<()>,
    /// Set when Redis config sharing is on.
    pub sync: std::sync::OnceLock<Arc<handle::SyncHandle>>,
    /// Set when Redis is on: cluster-wide usage counters.
    pub cluster_usage: std::sync::OnceLock<Arc<crate::admin::cluster::ClusterUsage>>,
    /// Why the database could not be opened at start, if it could not.
    pub store_error: std::sync::OnceLock<String>,
}

/// Why an admin write was refused.
#[derive(Debug)]
pub enum WriteError {
    /// Validation: 422 with field paths.
    Invalid(Vec<FieldError>),
    /// 409: conflicts with the file or an existing name.
    Conflict(String),
    NotFound(String),
    /// No database configured or reachable.
    Unavailable(String),
    Internal(String),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => WriteError::Conflict(m),
            StoreError::NotFound(m) => WriteError::NotFound(m),
            // Database down or unreachable: 503, the caller may retry.
            e @ StoreError::Unavailable(_) => WriteError::Unavailable(e.to_string()),
            other => WriteError::Internal(other.to_string()),
        }
    }
}

impl ControlPlane {
    pub fn new(
        state: Arc<Live>,
        file: Option<PathBuf>,
        file_cfg: FileConfig,
        source: String,
        process: ProcessSettings,
        store: Option<Store>,
        api: ApiConfig,
    ) -> Arc<Self> {
        let version = state.snapshot.load().version;
        Arc::new(ControlPlane {
            state,
            file,
            process,
            version: AtomicU64::new(version),
            store,
            file_cfg: Mutex::new((file_cfg, source)),
            api: Mutex::new(api),
            writes: tokio::sync::Mutex::new(()),
            sync: std::sync::OnceLock::new(),
            cluster_usage: std::sync::OnceLock::new(),
            store_error: std::sync::OnceLock::new(),
        })
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.state.snapshot.load_full()
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The store, or the error that says why there is none.
    pub fn store_or_unavailable(&self) -> Result<&Store, WriteError> {
        self.store.as_ref().ok_or_else(|| {
            WriteError::Unavailable(match self.store_error.get() {
                Some(e) => format!(
                    "the database could not be opened at start ({e}); admin writes, request logs \
                     and usage need it: fix DATABASE_URL or the file's permissions and restart"
                ),
                None => "no database is configured (DATABASE_URL)".into(),
            })
        })
    }

    pub fn file_path(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// Read the file again and, when it compiles (with the API part), make
    /// it live.
    pub fn reload_file(&self) -> Result<u64, ConfigErrors> {
        let (file, source) = config::load(self.file.as_deref(), &config::process_env)
            .inspect_err(|_| self.state.metrics.reload(false))?;
        let api = self.api_config();
        let version = self.apply(&file, &api, &source, "file")?;
        if let Ok(mut f) = self.file_cfg.lock() {
            *f = (file, source);
        }
        Ok(version)
    }

    pub fn api_config(&self) -> ApiConfig {
        self.api.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn file_config(&self) -> (FileConfig, String) {
        self.file_cfg
            .lock()
            .map(|f| f.clone())
            .unwrap_or_else(|_| (FileConfig::default(), String::new()))
    }

    /// Compile file + API and swap the result in.
    /// `cause` says in the log what changed the configuration (the file or
    /// the admin API), so an admin write is not logged as a file reload.
    fn apply(
        &self,
        file: &FileConfig,
        api: &ApiConfig,
        source: &str,
        cause: &str,
    ) -> Result<u64, ConfigErrors> {
        let result = self.apply_inner(file, api, source, cause);
        self.state.metrics.reload(result.is_ok());
        result
    }

    fn apply_inner(
        &self,
        file: &FileConfig,
        api: &ApiConfig,
        source: &str,
        cause: &str,
    ) -> Result<u64, ConfigErrors> {
        let merged = api::merge(file, api).map_err(|errs| {
            ConfigErrors(
                errs.into_iter()
                    .map(|e| ConfigError {
                        source: "admin api".into(),
                        key: e.field,
                        reason: e.reason,
                    })
                    .collect(),
            )
        })?;
        let (process, mut snapshot) =
            config::compile(&merged, source, &config::process_env, &self.state.registry)?;
        warn_restart_only(&self.process, &process);
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        snapshot.version = version;
        let providers = snapshot.provider_count();
        self.state.snapshot.store(Arc::new(snapshot));
        if cause == "file" {
            tracing::info!(config = %source, version, providers, "configuration reloaded");
        } else {
            tracing::info!(cause, version, providers, "configuration changed");
        }
        Ok(version)
    }

    /// Would this API config compile together with the file? Errors in API
    /// terms (field paths of the admin request).
    pub fn validate(&self, api: &ApiConfig) -> Result<(), Vec<FieldError>> {
        let (file, source) = self.file_config();
        let merged = api::merge(&file, api)?;
        config::compile(&merged, &source, &config::process_env, &self.state.registry)
            .map(|_| ())
            .map_err(|errs| {
                errs.0
                    .into_iter()
                    .map(|e| FieldError {
                        field: api::api_field(&e.key, &merged),
                        reason: e.reason,
                    })
                    .collect()
            })
    }

    /// Validate, commit to SQLite, and make live — all or nothing. `build`
    /// turns the current API config into the change list (run under the
    /// write lock, so it sees the latest state).
    pub async fn write<F>(&self, build: F) -> Result<(u64, Vec<ChangeResult>), WriteError>
    where
        F: FnOnce(&ApiConfig, &FileConfig) -> Result<Vec<ConfigChange>, WriteError>,
    {
        let store = self.store_or_unavailable()?.clone();
        let _guard = self.writes.lock().await;
        // A shared database may hold other instances' changes this one has
        // not polled yet: build and validate against the stored state.
        let current = if store.is_shared() {
            load_api(&store).await?
        } else {
            self.api_config()
        };
        let (file, source) = self.file_config();
        let changes = build(&current, &file)?;
        let proposed = preview(&current, &changes)?;
        self.validate(&proposed).map_err(WriteError::Invalid)?;
        let (_, results) = store
            .apply(changes)
            .await
            .map_err(|(_, e)| WriteError::from(e))?;
        self.reload_keys(&store).await?;
        let fresh = load_api(&store).await?;
        let version = self
            .apply(&file, &fresh, &source, "admin api")
            .map_err(|e| {
                WriteError::Internal(format!("validated change failed to compile: {e}"))
            })?;
        if let Ok(mut a) = self.api.lock() {
            *a = fresh;
        }
        self.shared();
        Ok((version, results))
    }

    fn shared(&self) {
        if let Some(s) = self.sync.get() {
            s.local_change();
        }
    }

    /// Replace the whole API-owned config (import).
    pub async fn replace(&self, proposed: ApiConfig) -> Result<u64, WriteError> {
        let version = self.replace_inner(proposed).await?;
        self.shared();
        Ok(version)
    }

    /// Adopt a peer instance's config (not re-published).
    pub async fn replace_from_peer(&self, proposed: ApiConfig) -> Result<u64, WriteError> {
        self.replace_inner(proposed).await
    }

    async fn replace_inner(&self, proposed: ApiConfig) -> Result<u64, WriteError> {
        let store = self.store_or_unavailable()?.clone();
        let _guard = self.writes.lock().await;
        self.validate(&proposed).map_err(WriteError::Invalid)?;
        let providers = proposed
            .providers
            .iter()
            .map(|p| (p.name.clone(), p.doc.clone()))
            .collect();
        store
            .replace_all(
                providers,
                proposed.aliases.clone(),
                proposed.settings.clone(),
            )
            .await?;
        let fresh = load_api(&store).await?;
        let (file, source) = self.file_config();
        let version = self
            .apply(
                &file,
                &fresh,
                &source,
                "whole API configuration (import or cluster peer)",
            )
            .map_err(|e| {
                WriteError::Internal(format!("validated import failed to compile: {e}"))
            })?;
        if let Ok(mut a) = self.api.lock() {
            *a = fresh;
        }
        Ok(version)
    }
}

impl ControlPlane {
    /// Make the stored API config live if it differs from the running one:
    /// another instance changed the shared database. Returns whether it
    /// changed. A stored config that does not compile here (e.g. it names a
    /// provider type this build lacks) is refused and the running one stays.
    pub async fn reload_from_store(&self) -> Result<bool, WriteError> {
        let store = self.store_or_unavailable()?.clone();
        let _guard = self.writes.lock().await;
        // Keys first: a key-only change leaves the routed config as it was.
        let keys_changed = self.reload_keys(&store).await?;
        let fresh = load_api(&store).await?;
        if same_api(&fresh, &self.api_config()) {
            return Ok(keys_changed);
        }
        let (file, source) = self.file_config();
        self.apply(&file, &fresh, &source, "another instance (shared database)")
            .map_err(|e| {
                WriteError::Internal(format!(
                    "the shared configuration does not compile here: {e}"
                ))
            })?;
        if let Ok(mut a) = self.api.lock() {
            *a = fresh;
        }
        Ok(true)
    }
}

impl ControlPlane {
    /// Read the client keys from the store and swap them in if they
    /// differ from the live table; returns whether they did.
    pub async fn reload_keys(&self, store: &Store) -> Result<bool, StoreError> {
        let table = load_keys(store).await?;
        if *self.state.keys.load_full() == table {
            return Ok(false);
        }
        self.state.keys.store(Arc::new(table));
        Ok(true)
    }
}

/// The client keys as the store holds them. A stored key whose document
/// does not parse is left out (and logged), not fatal.
pub async fn load_keys(store: &Store) -> Result<crate::keys::KeyTable, StoreError> {
    let stored = store.list_keys().await?;
    let keys: Vec<(String, crate::keys::ClientKey)> = stored
            .into_iter()
            .filter_map(|k| {
                match serde_json::from_value::<crate::keys::KeyDoc>(k.doc) {
                    Ok(doc) => Some((
                        k.hash,
                        crate::keys::ClientKey {
                            id: k.id,
                            masked: k.masked,
                            doc,
                            created_ms: k.created_ms,
                            // Both set by KeyTable::new.
                            limit_id: Arc::from(""),
                            label: Arc::from(""),
                        },
                    )),
                    Err(e) => {
                        tracing::warn!(key = k.id, error = %e, "stored client key is unreadable; it is not accepted");
                        None
                    }
                }
            })
            .collect();
    Ok(crate::keys::KeyTable::new(keys))
}

/// Same providers (ids, names, documents), aliases and settings.
fn same_api(a: &ApiConfig, b: &ApiConfig) -> bool {
    a.aliases == b.aliases
        && a.settings == b.settings
        && a.providers.len() == b.providers.len()
        && a.providers
            .iter()
            .zip(&b.providers)
            .all(|(x, y)| x.id == y.id && x.name == y.name && x.doc == y.doc)
}

/// The API config as the store holds it.
pub async fn load_api(store: &Store) -> Result<ApiConfig, StoreError> {
    Ok(ApiConfig {
        providers: store.list_providers().await?,
        aliases: store.list_aliases().await?,
        settings: store.get_settings().await?,
    })
}

/// Apply changes to an in-memory copy, to validate before writing.
fn preview(current: &ApiConfig, changes: &[ConfigChange]) -> Result<ApiConfig, WriteError> {
    let mut next = current.clone();
    let mut fake_id = -1;
    for c in changes {
        match c {
            ConfigChange::CreateProvider { name, doc } => {
                next.providers.push(crate::store::StoredProvider {
                    id: fake_id,
                    name: name.clone(),
                    doc: doc.clone(),
                    created_ms: 0,
                    updated_ms: 0,
                });
                fake_id -= 1;
            }
            ConfigChange::UpdateProvider { id, name, doc } => {
                let p = next
                    .providers
                    .iter_mut()
                    .find(|p| p.id == *id)
                    .ok_or_else(|| WriteError::NotFound(format!("provider {id} does not exist")))?;
                p.name = name.clone();
                p.doc = doc.clone();
            }
            ConfigChange::DeleteProvider { id } => {
                let before = next.providers.len();
                next.providers.retain(|p| p.id != *id);
                if next.providers.len() == before {
                    return Err(WriteError::NotFound(format!(
                        "provider {id} does not exist"
                    )));
                }
            }
            ConfigChange::SetAlias { alias, target } => {
                next.aliases.retain(|(a, _)| a != alias);
                next.aliases.push((alias.clone(), target.clone()));
            }
            ConfigChange::DeleteAlias { alias } => next.aliases.retain(|(a, _)| a != alias),
            ConfigChange::SetSettings { doc } => next.settings = doc.clone(),
            // Client keys are not part of the routed configuration.
            ConfigChange::CreateKey { .. }
            | ConfigChange::UpdateKey { .. }
            | ConfigChange::DeleteKey { .. } => {}
        }
    }
    Ok(next)
}

/// Settings that only take effect at start: say so instead of silently
/// ignoring an edit.
fn warn_restart_only(running: &ProcessSettings, new: &ProcessSettings) {
    let changed: Vec<&str> = [
        ("server.host", running.host != new.host),
        ("server.port", running.port != new.port),
        ("server.threads", running.threads != new.threads),
        (
            "server connection and head limits",
            running.edge != new.edge,
        ),
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
