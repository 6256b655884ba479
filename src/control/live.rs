//! The live state every part of the gateway shares: the current snapshot
//! and the health registry, metrics, request-log counters and channel, the
//! admin router for the main port, and the shutdown signals. The control
//! plane swaps snapshots here; the data plane (`proxy::GatewayState`
//! derefs to this), the admin API, the log writer and the health checker
//! read it.

use crate::config::Snapshot;
use crate::health::HealthRegistry;
use crate::store::RequestLog;
use arc_swap::ArcSwap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

/// Shared by the data plane, the control plane and background services.
pub struct Live {
    pub snapshot: ArcSwap<Snapshot>,
    /// Client keys by secret hash (see [`crate::keys`]); swapped whole when
    /// a key changes here or on another instance.
    pub keys: ArcSwap<crate::keys::KeyTable>,
    pub registry: Arc<HealthRegistry>,
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
    /// Spend per client key and period (budgets; see `crate::ledger`).
    pub ledger: crate::ledger::Ledger,
    /// Client-key limits (RPM, TPM, concurrency), shared through Redis.
    pub limiter: Arc<crate::keys::limits::Limiter>,
}

impl Live {
    pub fn new(snapshot: Snapshot, registry: Arc<HealthRegistry>) -> Arc<Self> {
        let metrics = crate::metrics::Metrics::default();
        let limiter = crate::keys::limits::Limiter::new(metrics.limits.clone());
        Arc::new(Live {
            snapshot: ArcSwap::from_pointee(snapshot),
            keys: ArcSwap::from_pointee(crate::keys::KeyTable::default()),
            registry,
            admin: OnceLock::new(),
            log_tx: OnceLock::new(),
            log_dropped: AtomicU64::new(0),
            log_written: AtomicU64::new(0),
            log_batches: AtomicU64::new(0),
            metrics,
            draining: std::sync::atomic::AtomicBool::new(false),
            grace_over: tokio::sync::watch::Sender::new(false),
            store_condition: std::sync::atomic::AtomicU8::new(crate::store::condition::OK),
            ledger: crate::ledger::Ledger::default(),
            limiter,
        })
    }
}
