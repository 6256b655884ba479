//! What every request of every worker thread shares: the live snapshot,
//! the upstream connector and DNS cache, the request-log channel, metrics
//! and the shutdown signals.

use crate::config::Snapshot;
use crate::health::HealthRegistry;
use crate::store::RequestLog;
use arc_swap::ArcSwap;
use bytes::Bytes;
use pingora::connectors::http::Connector;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

/// Shared by every request of every worker thread.
pub struct GatewayState {
    pub snapshot: ArcSwap<Snapshot>,
    pub registry: Arc<HealthRegistry>,
    pub(super) connector: Connector,
    pub(super) dns: super::dns::DnsCache,
    /// The admin router, for `/api/*` and `/docs` on the main port.
    pub admin: OnceLock<axum::Router>,
    /// Request-log rows for the writer task (set when a database is open).
    pub log_tx: OnceLock<tokio::sync::mpsc::Sender<RequestLog>>,
    /// Rows dropped: the writer fell behind or the database refused them.
    pub log_dropped: AtomicU64,
    /// Rows and batches (transactions) the writer committed.
    pub log_written: AtomicU64,
    pub log_batches: AtomicU64,
    /// Prometheus counters and histograms (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Set when an upgrade or shutdown has begun (see `server::watch_shutdown`).
    pub draining: std::sync::atomic::AtomicBool,
    /// Becomes true when the shutdown grace period has run out: requests
    /// still running end now (streams with an in-band error event), so they
    /// are logged before the runtimes stop.
    pub grace_over: tokio::sync::watch::Sender<bool>,
    /// [`crate::store::condition`], shown by `GET /health`.
    pub store_condition: std::sync::atomic::AtomicU8,
}

impl GatewayState {
    /// Run one active health probe (used by the health checker).
    pub async fn probe(
        &self,
        req: super::upstream::ProbeRequest<'_>,
    ) -> (super::upstream::ProbeResult, Bytes) {
        super::upstream::probe(&self.connector, &self.dns, req).await
    }

    pub fn new(
        snapshot: Snapshot,
        registry: Arc<HealthRegistry>,
        connector: Connector,
    ) -> Arc<Self> {
        Arc::new(GatewayState {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            connector,
            dns: super::dns::DnsCache::default(),
            admin: OnceLock::new(),
            log_tx: OnceLock::new(),
            log_dropped: AtomicU64::new(0),
            log_written: AtomicU64::new(0),
            log_batches: AtomicU64::new(0),
            metrics: crate::metrics::Metrics::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            grace_over: tokio::sync::watch::Sender::new(false),
            store_condition: std::sync::atomic::AtomicU8::new(crate::store::condition::OK),
        })
    }
}
