//! The admin audit trail: who (token fingerprint, peer), what (method,
//! path, target) and the result, for every admin write, every export with
//! keys and every admin authentication failure.
//!
//! Each event is one structured log line (target `audit`) and one row of the
//! `audit` table. The request never waits for either: rows go through a
//! bounded channel (`try_send`; a full channel drops the row and counts it)
//! to [`AuditWriter`], which writes them in batches. Authentication failures
//! are rate-limited — at most [`FAILURES_PER_MINUTE`] lines and rows a
//! minute, the rest summed up in one `auth_failures_suppressed` row — so a
//! client hammering the admin port with bad tokens cannot fill the disk.

use crate::store::{AuditRow, Store};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Authentication failures logged and stored per minute; more are counted.
pub const FAILURES_PER_MINUTE: u32 = 20;
const CHANNEL: usize = 1024;
const BATCH: usize = 256;

/// Bounds of the stored fields (in characters).
const MAX_PATH: usize = 256;
const MAX_TARGET: usize = 128;
const MAX_PEER: usize = 64;
const MAX_METHOD: usize = 16;

/// A token's public fingerprint: the first 8 hex digits of its SHA-256.
/// Enough to tell tokens apart in the audit log; says nothing usable about
/// the token itself.
pub fn fingerprint(token: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token);
    crate::keys::hex::hex(&digest.as_ref()[..4])
}

/// `s` cut to at most `max` characters (client input reaches the log and
/// the database only bounded).
pub fn bound(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// One event as the admin router reports it.
pub struct Event<'a> {
    pub action: &'static str,
    pub who: &'a str,
    pub peer: Option<std::net::SocketAddr>,
    pub listener: &'static str,
    pub method: &'a str,
    pub path: &'a str,
    pub target: Option<&'a str>,
    pub status: u16,
}

struct Window {
    start_ms: u64,
    count: u32,
    suppressed: u64,
}

pub struct Audit {
    tx: Option<mpsc::Sender<AuditRow>>,
    failures: Mutex<Window>,
    /// Rows lost to a full channel (the log line is still written).
    pub dropped: AtomicU64,
}

impl Audit {
    /// An audit trail whose rows go to the returned receiver.
    pub fn new() -> (Arc<Audit>, mpsc::Receiver<AuditRow>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        (Arc::new(Self::with(Some(tx))), rx)
    }

    /// Log lines only (no database).
    pub fn log_only() -> Arc<Audit> {
        Arc::new(Self::with(None))
    }

    fn with(tx: Option<mpsc::Sender<AuditRow>>) -> Audit {
        Audit {
            tx,
            failures: Mutex::new(Window {
                start_ms: 0,
                count: 0,
                suppressed: 0,
            }),
            dropped: AtomicU64::new(0),
        }
    }

    /// Record an admin write or an export with keys.
    pub fn record(&self, e: &Event<'_>) {
        tracing::info!(
            target: "audit",
            action = e.action,
            who = e.who,
            peer = ?e.peer,
            listener = e.listener,
            method = %bound(e.method, MAX_METHOD),
            path = %bound(e.path, MAX_PATH),
            subject = e.target.map(|t| bound(t, MAX_TARGET)).unwrap_or_default(),
            status = e.status,
            "admin audit"
        );
        self.send(e);
    }

    /// Record an authentication failure, within the rate limit.
    pub fn auth_failure(&self, e: &Event<'_>) {
        let now = crate::health::wall_ms();
        let (allowed, summary) = match self.failures.lock() {
            Ok(mut w) => {
                let mut summary = None;
                if now.saturating_sub(w.start_ms) >= 60_000 {
                    summary = Some(std::mem::take(&mut w.suppressed)).filter(|n| *n > 0);
                    w.start_ms = now;
                    w.count = 0;
                }
                let allowed = w.count < FAILURES_PER_MINUTE;
                if allowed {
                    w.count += 1;
                } else {
                    w.suppressed += 1;
                }
                (allowed, summary)
            }
            // A poisoned lock only means another thread panicked mid-update:
            // keep auditing rather than go silent.
            Err(_) => (true, None),
        };
        if let Some(n) = summary {
            self.suppressed_row(n);
        }
        if allowed {
            tracing::warn!(
                target: "audit",
                action = e.action,
                who = e.who,
                peer = ?e.peer,
                listener = e.listener,
                method = %bound(e.method, MAX_METHOD),
                path = %bound(e.path, MAX_PATH),
                status = e.status,
                "admin authentication failed"
            );
            self.send(e);
        }
    }

    /// Write out a pending count of suppressed failures (the writer calls
    /// this once a minute, so a burst that stopped is still summed up).
    pub fn flush_suppressed(&self) {
        let n = match self.failures.lock() {
            Ok(mut w) => std::mem::take(&mut w.suppressed),
            Err(_) => 0,
        };
        if n > 0 {
            self.suppressed_row(n);
        }
    }

    fn suppressed_row(&self, n: u64) {
        tracing::warn!(target: "audit", action = "auth_failures_suppressed", count = n, "admin authentication failures beyond {FAILURES_PER_MINUTE} a minute were not logged one by one");
        let count = n.to_string();
        self.send(&Event {
            action: "auth_failures_suppressed",
            who: "-",
            peer: None,
            listener: "-",
            method: "-",
            path: "-",
            target: Some(&count),
            status: 401,
        });
    }

    fn send(&self, e: &Event<'_>) {
        let Some(tx) = &self.tx else { return };
        let row = AuditRow {
            id: None,
            ts_ms: crate::health::wall_ms() as i64,
            action: e.action.to_string(),
            who: bound(e.who, 16),
            peer: e.peer.map(|p| bound(&p.to_string(), MAX_PEER)),
            listener: e.listener.to_string(),
            method: bound(e.method, MAX_METHOD),
            path: bound(e.path, MAX_PATH),
            target: e.target.map(|t| bound(t, MAX_TARGET)),
            status: e.status,
            // The store names its instance on insert.
            instance: None,
        };
        if tx.try_send(row).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes audit rows in batches and prunes them with the request-log
/// retention.
pub struct AuditWriter {
    pub store: Store,
    pub audit: Arc<Audit>,
    pub rx: tokio::sync::Mutex<Option<mpsc::Receiver<AuditRow>>>,
    pub retention_days: u32,
    pub retention_rows: u64,
}

#[async_trait]
impl BackgroundService for AuditWriter {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self.rx.lock().await.take() else {
            return;
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut minute = tokio::time::interval(Duration::from_secs(60));
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        return;
                    }
                    let rows = std::mem::take(&mut batch);
                    let n = rows.len();
                    if let Err(e) = self.store.insert_audit(rows).await {
                        tracing::warn!(error = %e, rows = n, "audit rows could not be written");
                    }
                }
                _ = minute.tick() => self.audit.flush_suppressed(),
                _ = prune.tick() => {
                    if self.retention_days > 0 {
                        let cutoff = crate::health::wall_ms() as i64 - i64::from(self.retention_days) * 86_400_000;
                        if let Err(e) = self.store.prune_audit(cutoff).await {
                            tracing::warn!(error = %e, "pruning old audit rows failed");
                        }
                    }
                    if self.retention_rows > 0 {
                        if let Err(e) = self.store.prune_audit_to(self.retention_rows).await {
                            tracing::warn!(error = %e, "pruning audit rows to the row limit failed");
                        }
                    }
                }
                _ = shutdown.changed() => {
                    while let Ok(row) = rx.try_recv() {
                        batch.push(row);
                    }
                    if !batch.is_empty() {
                        let _ = self.store.insert_audit(std::mem::take(&mut batch)).await;
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_short_and_stable() {
        // SHA-256("abc") = ba7816bf 8f01cfea … (FIPS 180-2 example).
        let f = fingerprint(b"abc");
        assert_eq!(f, "ba7816bf");
        assert_eq!(f.len(), 8);
    }

    #[test]
    fn fields_are_bounded() {
        assert_eq!(bound("abcdef", 3), "abc…");
        assert_eq!(bound("ab", 3), "ab");
        assert_eq!(bound("ééééé", 2), "éé…");
    }

    #[tokio::test]
    async fn auth_failures_are_rate_limited_and_summed_up() {
        let (audit, mut rx) = Audit::new();
        let e = Event {
            action: "auth_failure",
            who: "none",
            peer: None,
            listener: "admin",
            method: "GET",
            path: "/api/providers",
            target: None,
            status: 401,
        };
        for _ in 0..(FAILURES_PER_MINUTE + 500) {
            audit.auth_failure(&e);
        }
        audit.flush_suppressed();
        let mut rows = Vec::new();
        while let Ok(r) = rx.try_recv() {
            rows.push(r);
        }
        assert_eq!(rows.len(), FAILURES_PER_MINUTE as usize + 1);
        let last = rows.last().expect("summary");
        assert_eq!(last.action, "auth_failures_suppressed");
        assert_eq!(last.target.as_deref(), Some("500"));
    }
}
