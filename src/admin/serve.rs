//! Serving the admin router: on its own listener (a Pingora background
//! service) and, when enabled, for `/api/*` and `/docs` on the main port.

use crate::store::{RequestLog, Store};
use async_trait::async_trait;
use axum::Router;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::io::Write;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct AdminListener {
    pub router: Router,
    pub addr: String,
}

#[async_trait]
impl BackgroundService for AdminListener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let listener = match bind_shared(&self.addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(addr = %self.addr, error = %e, "cannot bind the admin listener; the admin API stays reachable under /api on the main port if enabled");
                return;
            }
        };
        if let Ok(a) = listener.local_addr() {
            tracing::info!(addr = %a, "admin API listening");
            println!("llm-orchestrator admin listening on http://{a}");
            let _ = std::io::stdout().flush();
        }
        // The peer address reaches the handlers (audit log, and the
        // loopback rule of a gateway without tokens).
        let app = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "admin listener failed");
        }
    }
}

/// Bind with `SO_REUSEPORT`: during a binary upgrade the new process binds
/// the admin port while the old one still holds it (Pingora hands over only
/// the data-plane sockets), and takes over when the old one exits.
async fn bind_shared(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        socket.set_reuseport(true)?;
        match socket.bind(a).and_then(|_| socket.listen(1024)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to nothing"),
        )
    }))
}

/// Writes request-log rows in batches, off the request path: the proxy only
/// `try_send`s into a bounded channel (a full channel drops the row and
/// counts it) and this task does the SQLite work.
pub struct LogWriter {
    pub store: Store,
    pub rx: tokio::sync::Mutex<Option<mpsc::Receiver<RequestLog>>>,
    pub retention_days: u32,
    pub retention_rows: u64,
    /// Where the written/batch counters go (for `/metrics`).
    pub state: std::sync::Arc<crate::control::live::Live>,
    /// Cluster-wide counters in Redis, when Redis is on.
    pub cluster: Option<std::sync::Arc<super::cluster::ClusterUsage>>,
    /// Rows kept in memory while the database refuses them (then written
    /// when it answers again); beyond this they are dropped and counted.
    pub backlog_rows: usize,
}

const BATCH: usize = 512;

/// At most one warning per this interval while writes keep failing.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Rate-limits the "rows could not be written" warning: a full disk fails
/// every batch, and one line per batch would flood the log (and the disk)
/// it is complaining about. Every dropped row is counted in
/// `llm_log_rows_dropped_total` regardless.
#[derive(Default)]
struct WriteFailures {
    last_warning: Option<std::time::Instant>,
    /// Rows and batches dropped since the last line.
    rows: u64,
    batches: u64,
}

impl WriteFailures {
    /// Count a failed batch; `true` when this one was logged.
    fn failed(&mut self, rows: u64, error: &crate::store::StoreError) -> bool {
        self.rows += rows;
        self.batches += 1;
        if self.last_warning.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return false;
        }
        tracing::warn!(
            error = %error,
            rows = self.rows,
            batches = self.batches,
            "request log rows could not be written: kept in memory up to DATABASE_LOG_BACKLOG_ROWS and written when the database answers, beyond that dropped and counted in llm_log_rows_dropped_total (at most one such line every 10 s)"
        );
        self.last_warning = Some(std::time::Instant::now());
        self.rows = 0;
        self.batches = 0;
        true
    }

    fn recovered(&mut self) {
        if self.last_warning.take().is_some() {
            tracing::info!(
                rows_dropped_since_last_warning = self.rows,
                "request log rows are written again"
            );
            self.rows = 0;
            self.batches = 0;
        }
    }
}

/// How often rows kept through an outage are offered to the database again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

impl LogWriter {
    fn dropped(&self, rows: u64) {
        if rows > 0 {
            self.state
                .log_dropped
                .fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Write one batch; on failure keep it for a retry (what does not fit
    /// is dropped and counted).
    async fn write(
        &self,
        rows: Vec<RequestLog>,
        backlog: &mut crate::store::LogBacklog,
        failures: &mut WriteFailures,
    ) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let n = rows.len() as u64;
        let rows = std::sync::Arc::new(rows);
        match self.store.insert_logs(rows.clone()).await {
            Ok(_) => {
                self.state.log_written.fetch_add(n, Relaxed);
                self.state.log_batches.fetch_add(1, Relaxed);
                self.state
                    .store_condition
                    .store(crate::store::condition::OK, Relaxed);
                failures.recovered();
                true
            }
            Err(e) => {
                // Condition first: whoever sees the count sees it.
                self.state
                    .store_condition
                    .store(crate::store::condition::FAILING, Relaxed);
                // The store has let go of its reference by now: no copy.
                let rows = std::sync::Arc::try_unwrap(rows).unwrap_or_else(|a| (*a).clone());
                self.dropped(backlog.put_back(rows));
                let _ = failures.failed(n, &e);
                false
            }
        }
    }

    /// Write kept rows, oldest first, until done or the database refuses.
    async fn drain(&self, backlog: &mut crate::store::LogBacklog, failures: &mut WriteFailures) {
        while !backlog.is_empty() {
            let rows = backlog.take(BATCH);
            if !self.write(rows, backlog, failures).await {
                return;
            }
        }
    }
}

#[async_trait]
impl BackgroundService for LogWriter {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self.rx.lock().await.take() else {
            return;
        };
        // Budgets count this period's spend from before the restart; done
        // before this writer adds any row, so nothing is counted twice.
        self.state.ledger.preload(&self.store).await;
        let mut batch = Vec::with_capacity(BATCH);
        let mut failures = WriteFailures::default();
        let mut backlog = crate::store::LogBacklog::new(self.backlog_rows);
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        // After SIGTERM, requests still finish (and end) during the grace
        // period: keep writing their rows until the runtime stops.
        let mut stopping = false;
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        // Last chance for rows kept through an outage.
                        self.drain(&mut backlog, &mut failures).await;
                        self.dropped(backlog.len() as u64);
                        return;
                    }
                    // A short pause lets a burst coalesce into one transaction.
                    if batch.len() < BATCH {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        while batch.len() < BATCH {
                            match rx.try_recv() {
                                Ok(row) => batch.push(row),
                                Err(_) => break,
                            }
                        }
                    }
                    let rows = std::mem::take(&mut batch);
                    if let Some(c) = &self.cluster {
                        c.record(&rows);
                    }
                    if backlog.is_empty() {
                        self.write(rows, &mut backlog, &mut failures).await;
                    } else {
                        // Older rows first: queue behind them, then retry.
                        self.dropped(backlog.keep(rows));
                        self.drain(&mut backlog, &mut failures).await;
                    }
                }
                _ = retry.tick(), if !backlog.is_empty() => {
                    self.drain(&mut backlog, &mut failures).await;
                }
                _ = prune.tick() => {
                    if self.retention_days > 0 {
                        let cutoff = crate::health::wall_ms() as i64 - i64::from(self.retention_days) * 86_400_000;
                        if let Err(e) = self.store.prune_logs(cutoff).await {
                            tracing::warn!(error = %e, "pruning old request logs failed");
                        }
                    }
                    if self.retention_rows > 0 {
                        if let Err(e) = self.store.prune_logs_to(self.retention_rows).await {
                            tracing::warn!(error = %e, "pruning request logs to the row limit failed");
                        }
                    }
                }
                _ = shutdown.changed(), if !stopping => {
                    stopping = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_writes_warn_once_per_interval_and_count_the_rest() {
        let e = crate::store::StoreError::Url("x".into());
        let mut f = WriteFailures::default();
        assert!(f.failed(3, &e), "the first failure is logged");
        assert!(!f.failed(5, &e), "the next one within 10 s is not");
        assert!(!f.failed(1, &e));
        assert_eq!((f.rows, f.batches), (6, 2), "kept for the next line");
        f.last_warning = std::time::Instant::now().checked_sub(WARN_EVERY);
        assert!(f.failed(1, &e), "after the interval: logged again");
        assert_eq!((f.rows, f.batches), (0, 0));
        f.recovered();
        assert!(f.last_warning.is_none());
    }
}
