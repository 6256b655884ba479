//! Configuration shared between instances through Redis.
//!
//! Each instance keeps its own SQLite copy. After an admin write commits
//! locally, the whole API-owned configuration is stored in Redis under a
//! version taken from a Redis counter (`INCR`), and the version is
//! broadcast by pub/sub. Other instances fetch it, write it to their SQLite
//! copy and swap a new snapshot in — the same validated path as a local
//! write. A periodic version check is the backstop for missed messages.
//!
//! Redis unreachable: instances keep serving their last good snapshot,
//! admin writes still commit locally and are marked unpublished; when Redis
//! returns, unpublished local changes are published (they are the newest),
//! otherwise the instance catches up with the shared version. The outage is
//! logged once. Note that the shared document carries the API keys: protect
//! Redis (AUTH, `rediss://`, private network) like the database.

use super::api::ApiConfig;
use super::ControlPlane;
use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const CHANNEL: &str = "llm-orchestrator:config";
const DOC: &str = "llm-orchestrator:config:doc";
const COUNTER: &str = "llm-orchestrator:config:version";
/// Backstop poll for missed pub/sub messages.
const POLL: Duration = Duration::from_secs(1);

/// Link between admin writes and the sync task.
#[derive(Default)]
pub struct SyncHandle {
    /// A local change is waiting to be published.
    dirty: AtomicBool,
    changed: Notify,
    /// The shared version this instance's config corresponds to.
    applied: AtomicU64,
}

impl SyncHandle {
    /// Called after every committed local admin write.
    pub fn local_change(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }
}

#[derive(Serialize, Deserialize)]
struct SharedConfig {
    version: u64,
    origin: String,
    providers: Vec<(String, Value)>,
    aliases: Vec<(String, String)>,
    settings: Value,
}

pub struct ConfigSync {
    url: String,
    control: Arc<ControlPlane>,
    handle: Arc<SyncHandle>,
    instance: String,
}

impl ConfigSync {
    pub fn new(url: &str, control: Arc<ControlPlane>, handle: Arc<SyncHandle>) -> Self {
        ConfigSync {
            url: url.to_string(),
            control,
            handle,
            instance: format!("{:016x}", rand::random::<u64>()),
        }
    }

    async fn publish(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<()> {
        // Clear first: a write landing while we publish sets it again.
        self.handle.dirty.store(false, Ordering::SeqCst);
        let api = self.control.api_config();
        let version: u64 = redis::cmd("INCR").arg(COUNTER).query_async(conn).await?;
        let doc = SharedConfig {
            version,
            origin: self.instance.clone(),
            providers: api
                .providers
                .iter()
                .map(|p| (p.name.clone(), p.doc.clone()))
                .collect(),
            aliases: api.aliases.clone(),
            settings: api.settings.clone(),
        };
        let payload = serde_json::to_string(&doc).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Io, "encode", e.to_string()))
        })?;
        let notice = serde_json::json!({"version": version, "origin": self.instance}).to_string();
        let result: redis::RedisResult<()> = redis::pipe()
            .cmd("SET")
            .arg(DOC)
            .arg(&payload)
            .ignore()
            .cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(&notice)
            .ignore()
            .query_async(conn)
            .await;
        match result {
            Ok(()) => {
                self.handle.applied.store(version, Ordering::SeqCst);
                tracing::info!(version, "configuration published to peer instances");
                Ok(())
            }
            Err(e) => {
                self.handle.dirty.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Adopt the shared config when it is newer than ours.
    async fn catch_up(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<()> {
        let payload: Option<String> = redis::cmd("GET").arg(DOC).query_async(conn).await?;
        let Some(payload) = payload else {
            return Ok(());
        };
        let Ok(doc) = serde_json::from_str::<SharedConfig>(&payload) else {
            tracing::warn!("ignoring a malformed shared configuration in redis");
            return Ok(());
        };
        if doc.version <= self.handle.applied.load(Ordering::SeqCst) {
            return Ok(());
        }
        if doc.origin == self.instance {
            self.handle.applied.store(doc.version, Ordering::SeqCst);
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
                self.handle.applied.store(doc.version, Ordering::SeqCst);
                tracing::info!(
                    shared_version = doc.version,
                    local_version = local,
                    "configuration received from a peer instance"
                );
            }
            Err(e) => {
                // Applying the same version again would fail the same way.
                self.handle.applied.store(doc.version, Ordering::SeqCst);
                tracing::error!(shared_version = doc.version, error = ?e, "a peer's configuration does not validate here; keeping ours");
            }
        }
        Ok(())
    }

    async fn run(&self, client: &redis::Client) -> redis::RedisResult<()> {
        let mut conn = client.get_multiplexed_async_connection().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        if self.handle.dirty.load(Ordering::SeqCst) {
            self.publish(&mut conn).await?;
        } else {
            self.catch_up(&mut conn).await?;
        }
        tracing::debug!("configuration sync connected to redis");
        let mut messages = pubsub.on_message();
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                msg = messages.next() => {
                    if msg.is_none() {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "subscription closed")));
                    }
                    self.catch_up(&mut conn).await?;
                }
                _ = self.handle.changed.notified() => {
                    if self.handle.dirty.load(Ordering::SeqCst) {
                        self.publish(&mut conn).await?;
                    }
                }
                _ = poll.tick() => {
                    if self.handle.dirty.load(Ordering::SeqCst) {
                        self.publish(&mut conn).await?;
                    }
                    let shared: Option<u64> = redis::cmd("GET").arg(COUNTER).query_async(&mut conn).await?;
                    if shared.unwrap_or(0) > self.handle.applied.load(Ordering::SeqCst) {
                        self.catch_up(&mut conn).await?;
                    }
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for ConfigSync {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let client = match redis::Client::open(self.url.as_str()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "invalid REDIS_URL; configuration is not shared");
                return;
            }
        };
        let mut down = false;
        let mut attempt = 0u32;
        loop {
            let result = tokio::select! {
                r = self.run(&client) => r,
                _ = shutdown.changed() => return,
            };
            if let Err(e) = result {
                if !down {
                    tracing::warn!(error = %e, "redis unreachable (config sync); serving the last good configuration, retrying with backoff");
                    down = true;
                }
            }
            let wait = Duration::from_millis((250u64 << attempt.min(7)).min(30_000));
            attempt += 1;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if down && client.get_multiplexed_async_connection().await.is_ok() {
                tracing::info!("redis reachable again (config sync)");
                down = false;
                attempt = 0;
            }
        }
    }
}
