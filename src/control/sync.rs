//! Configuration shared between instances through Redis.
//!
//! (On a shared MySQL/PostgreSQL database the database itself is the
//! shared copy: a peer's announcement only makes this instance reload it,
//! sooner than the version poll in [`super::poll`] would.)
//!
//! Each instance keeps its own SQLite copy. After an admin write commits
//! locally, the whole API-owned configuration is stored in Redis as one
//! document with a unique publication id, the id is stored next to it
//! (`…:head`, cheap to poll) and announced by pub/sub. Other instances fetch
//! it, write it to their SQLite copy and swap a new snapshot in — the same
//! validated path as a local write. A periodic head check is the backstop
//! for missed messages.
//!
//! Instances follow the document whose id differs from the one they last
//! applied, not a "higher" version number: a Redis that restarts without
//! its data resets any counter, and ordering by it made every instance
//! ignore all later changes. The Redis value is always the newest write,
//! so "different" is "newer". When the document disappears (Redis restarted
//! empty), an instance that had been in sync publishes its copy back —
//! only if nobody published in the meantime — so instances that join later
//! still find the shared configuration. A document whose content equals
//! ours is recorded without rewriting anything.
//!
//! Redis unreachable: instances keep serving their last good snapshot,
//! admin writes still commit locally and are marked unpublished; when Redis
//! returns (the shared connection in [`super::redis`] reconnects and
//! subscribes again), unpublished local changes are published (they are
//! the newest), otherwise the instance catches up with the shared
//! document. The outage is logged once, by the shared connection. Note that the shared document carries the API keys:
//! protect Redis (AUTH, `rediss://`, private network) like the database.
//!
//! Client keys travel in the same document (hash, masked form and
//! document; never the secret, which no instance knows after creation):
//! an instance with its own SQLite copy makes its key table equal to the
//! shared one, so a key created on any instance works on all of them.

use super::api::ApiConfig;
use super::handle::SyncHandle;
use super::redis::{Push, SharedRedis};
use super::ControlPlane;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CHANNEL: &str = "llm-orchestrator:config";
const DOC: &str = "llm-orchestrator:config:doc";
/// The id of the document in [`DOC`], polled as the backstop.
const HEAD: &str = "llm-orchestrator:config:head";
/// A display number only (logs); never used to order documents.
const COUNTER: &str = "llm-orchestrator:config:version";
/// Backstop poll for missed pub/sub messages.
const POLL: Duration = Duration::from_secs(1);

/// Put the document back only if it is still missing, so a restore never
/// overwrites a change another instance published meanwhile.
const RESTORE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

#[derive(Serialize, Deserialize)]
struct SharedConfig {
    /// Unique per publication (instance id + random); documents written by
    /// older versions have none and are identified by origin + version.
    #[serde(default)]
    id: String,
    version: u64,
    origin: String,
    providers: Vec<(String, Value)>,
    aliases: Vec<(String, String)>,
    settings: Value,
    /// Client keys; absent in documents from versions that did not share
    /// them (then the peer's keys are left as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<SharedKey>>,
}

/// A client key as instances share it.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
struct SharedKey {
    hash: String,
    masked: String,
    doc: Value,
}

impl SharedConfig {
    fn id(&self) -> String {
        if self.id.is_empty() {
            format!("{}#{}", self.origin, self.version)
        } else {
            self.id.clone()
        }
    }

    /// Same providers, aliases and settings as `api`?
    fn same_content(&self, api: &ApiConfig) -> bool {
        self.aliases == api.aliases
            && self.settings == api.settings
            && self.providers.len() == api.providers.len()
            && self
                .providers
                .iter()
                .zip(&api.providers)
                .all(|((n, d), p)| *n == p.name && *d == p.doc)
    }
}

pub struct ConfigSync {
    redis: Arc<SharedRedis>,
    control: Arc<ControlPlane>,
    handle: Arc<SyncHandle>,
    instance: String,
    restore_refused: AtomicBool,
}

fn encode_error(e: serde_json::Error) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "encode", e.to_string()))
}

impl ConfigSync {
    pub fn new(
        redis: Arc<SharedRedis>,
        control: Arc<ControlPlane>,
        handle: Arc<SyncHandle>,
    ) -> Self {
        ConfigSync {
            redis,
            control,
            handle,
            instance: format!("{:016x}", rand::random::<u64>()),
            restore_refused: AtomicBool::new(false),
        }
    }

    /// Our current API config as a shared document with a fresh id.
    async fn document(
        &self,
        conn: &mut ConnectionManager,
    ) -> redis::RedisResult<(SharedConfig, String, String)> {
        let api = self.control.api_config();
        let keys = match self.control.store() {
            Some(store) => Some(
                store
                    .list_keys()
                    .await
                    .map_err(|e| {
                        redis::RedisError::from((redis::ErrorKind::Io, "keys", e.to_string()))
                    })?
                    .into_iter()
                    .map(|k| SharedKey {
                        hash: k.hash,
                        masked: k.masked,
                        doc: k.doc,
                    })
                    .collect(),
            ),
            None => None,
        };
        let version: u64 = redis::cmd("INCR").arg(COUNTER).query_async(conn).await?;
        let id = format!("{}-{:016x}", self.instance, rand::random::<u64>());
        let doc = SharedConfig {
            id: id.clone(),
            version,
            origin: self.instance.clone(),
            providers: api
                .providers
                .iter()
                .map(|p| (p.name.clone(), p.doc.clone()))
                .collect(),
            aliases: api.aliases.clone(),
            settings: api.settings.clone(),
            keys,
        };
        let payload = serde_json::to_string(&doc).map_err(encode_error)?;
        let notice =
            serde_json::json!({"id": id, "version": version, "origin": self.instance}).to_string();
        Ok((doc, payload, notice))
    }

    async fn publish(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        // Clear first: a write landing while we publish sets it again.
        self.handle.dirty.store(false, Ordering::SeqCst);
        let result = async {
            let (doc, payload, notice) = self.document(conn).await?;
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(DOC)
                .arg(&payload)
                .ignore()
                .cmd("SET")
                .arg(HEAD)
                .arg(&doc.id)
                .ignore()
                .cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(&notice)
                .ignore()
                .query_async::<()>(conn)
                .await?;
            Ok::<_, redis::RedisError>(doc)
        }
        .await;
        match result {
            Ok(doc) => {
                self.handle.set_applied(doc.id);
                tracing::info!(
                    version = doc.version,
                    "configuration published to peer instances"
                );
                Ok(())
            }
            Err(e) => {
                self.handle.dirty.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Redis lost the shared document (restarted without its data): put
    /// ours back, unless someone published meanwhile.
    async fn restore(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let (doc, payload, notice) = self.document(conn).await?;
        let done: i64 = redis::cmd("EVAL")
            .arg(RESTORE)
            .arg(2)
            .arg(DOC)
            .arg(HEAD)
            .arg(&payload)
            .arg(&doc.id)
            .arg(CHANNEL)
            .arg(&notice)
            .query_async(conn)
            .await?;
        if done == 1 {
            self.handle.set_applied(doc.id);
            tracing::warn!(
                "the shared configuration was missing from redis (restarted without its data?); published this instance's copy again"
            );
        }
        Ok(())
    }

    /// Adopt the shared config when it is not the one we last applied.
    async fn catch_up(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let payload: Option<String> = redis::cmd("GET").arg(DOC).query_async(conn).await?;
        let Some(payload) = payload else {
            if self.handle.applied().is_some() {
                if let Err(e) = self.restore(conn).await {
                    // EVAL may be refused by an ACL; the next change
                    // published fills the document again. Said once: the
                    // poll retries every second.
                    if !self.restore_refused.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "cannot restore the shared configuration in redis");
                    }
                }
            }
            return Ok(());
        };
        let Ok(mut doc) = serde_json::from_str::<SharedConfig>(&payload) else {
            tracing::warn!("ignoring a malformed shared configuration in redis");
            return Ok(());
        };
        let id = doc.id();
        if self.handle.applied().as_deref() == Some(id.as_str()) {
            return Ok(());
        }
        let shared_store = self.control.store().is_some_and(|s| s.is_shared());
        if doc.origin != self.instance && !shared_store {
            if let Err(e) = self.adopt_keys(doc.keys.take()).await {
                // Retried on the next poll (the id stays unapplied).
                tracing::warn!(error = %e, "cannot store the client keys shared by a peer");
                return Ok(());
            }
        }
        if doc.origin == self.instance || doc.same_content(&self.control.api_config()) {
            self.handle.set_applied(id);
            return Ok(());
        }
        let version = doc.version;
        if self.control.store().is_some_and(|s| s.is_shared()) {
            // On a shared database the publisher already committed the
            // change there: the document only announces it. Writing the
            // document back would race with newer changes from others.
            match self.control.reload_from_store().await {
                Ok(_) => self.handle.set_applied(id),
                // Retried on the next poll (the id stays unapplied).
                Err(super::WriteError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "cannot reload the shared configuration announced by a peer");
                }
                Err(e) => {
                    self.handle.set_applied(id);
                    tracing::error!(shared_version = version, error = ?e, "the shared configuration does not validate here; keeping ours");
                }
            }
            return Ok(());
        }
        let api = ApiConfig {
            providers: doc
                .providers
                .into_iter()
                .map(|(name, doc)| crate::store::StoredProvider {
                    id: 0,
                    name,
                    doc,
                    created_ms: 0,
                    updated_ms: 0,
                })
                .collect(),
            aliases: doc.aliases,
            settings: doc.settings,
        };
        match self.control.replace_from_peer(api).await {
            Ok(local) => {
                self.handle.set_applied(id);
                tracing::info!(
                    shared_version = version,
                    local_version = local,
                    "configuration received from a peer instance"
                );
            }
            Err(e) => {
                // Applying the same document again would fail the same way.
                self.handle.set_applied(id);
                tracing::error!(shared_version = version, error = ?e, "a peer's configuration does not validate here; keeping ours");
            }
        }
        Ok(())
    }

    /// Make this instance's client keys those of the shared document:
    /// create, update and delete by hash (ids are per instance).
    async fn adopt_keys(&self, shared: Option<Vec<SharedKey>>) -> Result<(), String> {
        use crate::store::ConfigChange;
        let (Some(shared), Some(store)) = (shared, self.control.store()) else {
            return Ok(());
        };
        let local = store.list_keys().await.map_err(|e| e.to_string())?;
        let mut changes = Vec::new();
        for k in &shared {
            match local.iter().find(|l| l.hash == k.hash) {
                None => changes.push(ConfigChange::CreateKey {
                    hash: k.hash.clone(),
                    masked: k.masked.clone(),
                    doc: k.doc.clone(),
                }),
                Some(l) if l.doc != k.doc => changes.push(ConfigChange::UpdateKey {
                    id: l.id,
                    doc: k.doc.clone(),
                }),
                Some(_) => {}
            }
        }
        for l in &local {
            if !shared.iter().any(|k| k.hash == l.hash) {
                changes.push(ConfigChange::DeleteKey { id: l.id });
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let n = changes.len();
        store.apply(changes).await.map_err(|(_, e)| e.to_string())?;
        self.control
            .reload_keys(store)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(changes = n, "client keys received from a peer instance");
        Ok(())
    }

    /// Publish a pending local change, else adopt the shared document:
    /// what an instance does when it (re)connects.
    async fn sync_now(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        if self.handle.dirty.load(Ordering::SeqCst) {
            self.publish(conn).await
        } else {
            self.catch_up(conn).await
        }
    }

    /// The backstop poll: publish what is pending, and catch up when the
    /// head moved without a message reaching us.
    async fn poll(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        if self.handle.dirty.load(Ordering::SeqCst) {
            self.publish(conn).await?;
        }
        let head: Option<String> = redis::cmd("GET").arg(HEAD).query_async(conn).await?;
        let applied = self.handle.applied();
        // A missing head with a known document: Redis lost it (or an older
        // instance wrote the document without one).
        if head != applied && (head.is_some() || applied.is_some()) {
            self.catch_up(conn).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for ConfigSync {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Reconnects and the outage log are the shared connection's
        // (`super::redis`); a failed step here is retried by the next
        // message or poll.
        let mut pushes = self.redis.subscribe(CHANNEL);
        let mut conn = tokio::select! {
            c = self.redis.manager() => c,
            _ = shutdown.changed() => return,
        };
        let mut poll = tokio::time::interval(POLL);
        let mut failing = false;
        loop {
            let result = tokio::select! {
                push = pushes.recv() => match push {
                    Some(Push::Subscribed) => self.sync_now(&mut conn).await,
                    Some(Push::Message(_)) => self.catch_up(&mut conn).await,
                    None => return,
                },
                _ = self.handle.changed.notified() => {
                    if self.handle.dirty.load(Ordering::SeqCst) {
                        self.publish(&mut conn).await
                    } else {
                        Ok(())
                    }
                }
                _ = poll.tick() => self.poll(&mut conn).await,
                _ = shutdown.changed() => return,
            };
            match result {
                Ok(()) => failing = false,
                Err(e) => {
                    if !failing {
                        tracing::debug!(error = %e, "config sync step failed; serving the last good configuration");
                        failing = true;
                    }
                }
            }
        }
    }
}
