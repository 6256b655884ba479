//! The process's one Redis connection, shared by the config sync
//! (`control/sync.rs`), the health sync (`health/shared.rs`) and the
//! cluster usage counters (`admin/cluster.rs`).
//!
//! It is a [`redis::aio::ConnectionManager`]: one multiplexed connection
//! that reconnects by itself, with the backoff below, instead of a
//! hand-written reconnect loop per user. Subscriptions ride on the same
//! connection: it speaks RESP3 (Redis 6 or newer), where pub/sub messages
//! arrive as push frames next to command replies, and the manager
//! subscribes again after a reconnect (`set_automatic_resubscription`).
//! The push frames go to each channel's subscriber through a bounded queue
//! (`try_send`: the connection's reader never waits on a slow subscriber).
//!
//! A subscriber is told [`Push::Subscribed`] whenever its channel is
//! (re)subscribed — at start and after every reconnect — so it can catch
//! up with what it missed while the connection was down. The background
//! task here pings once a second: that is what makes an idle manager
//! notice an outage and reconnect once its retries ran out, and it says
//! "redis unreachable" once per outage and "reachable again" once.
//!
//! Nothing on the request path waits on this connection: request handling
//! only queues work (`try_send`) for the background tasks that use it.

use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Reconnect backoff: attempt n waits a random time up to
/// `MIN_DELAY * 2^n`, capped at `MAX_DELAY`, for at most `RETRIES`
/// attempts; after that the next command (the ping below, within a
/// second) starts a new round. Each attempt gives up after
/// `CONNECT_TIMEOUT`, so a command waits at most about
/// `(RETRIES + 1) * CONNECT_TIMEOUT + 2 * MAX_DELAY` for a connection.
const MIN_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(1);
const RETRIES: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A command without an answer after this fails (the manager reconnects).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The ping that notices outages and retries pending subscriptions.
const TICK: Duration = Duration::from_secs(1);
/// Pushes waiting for one subscriber; beyond this they are dropped (the
/// subscribers' catch-up on [`Push::Subscribed`] and the config sync's
/// poll cover what a dropped message carried).
const QUEUE: usize = 4096;

/// What a subscriber receives.
#[derive(Debug, PartialEq)]
pub enum Push {
    /// The channel is (again) subscribed: catch up with what was missed.
    Subscribed,
    /// A message's payload.
    Message(String),
}

#[derive(Default)]
struct Routes {
    senders: HashMap<String, mpsc::Sender<Push>>,
    /// Channels whose subscription is confirmed on the current connection.
    confirmed: HashSet<String>,
}

/// What the connection's push handler shares with the service.
#[derive(Default)]
struct Inner {
    routes: Mutex<Routes>,
    /// In an outage (logged once when it starts, once when it ends).
    down: AtomicBool,
    redacted: String,
    /// A new subscriber: subscribe now rather than at the next tick.
    wake: tokio::sync::Notify,
}

impl Inner {
    fn failed(&self, e: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(redis = %self.redacted, error = %e, "redis unreachable; configuration, health and cluster counters are not shared until it returns, retrying with backoff");
        }
    }

    fn ok(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("redis reachable again");
        }
    }
}

/// The shared connection. Built at start (no I/O); connected by
/// [`RedisService`] once the runtime runs.
pub struct SharedRedis {
    client: redis::Client,
    inner: Arc<Inner>,
    manager: watch::Sender<Option<ConnectionManager>>,
}

impl SharedRedis {
    /// Check the URL and prepare the connection (RESP3, for push frames).
    pub fn new(url: &str) -> Result<Arc<Self>, String> {
        let redacted = redacted(url);
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|e| format!("invalid REDIS_URL {redacted}: {e}"))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| format!("invalid REDIS_URL {redacted}: {e}"))?;
        Ok(Arc::new(SharedRedis {
            client,
            inner: Arc::new(Inner {
                redacted,
                ..Inner::default()
            }),
            manager: watch::channel(None).0,
        }))
    }

    /// The connection once the service has built it (commands never wait
    /// for that on the request path: callers are background tasks).
    pub async fn manager(&self) -> ConnectionManager {
        let mut rx = self.manager.subscribe();
        loop {
            if let Some(m) = rx.borrow_and_update().clone() {
                return m;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`: unreachable.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The connection if it is built already (for callers that must not
    /// wait at all).
    pub fn manager_now(&self) -> Option<ConnectionManager> {
        self.manager.borrow().clone()
    }

    /// Receive `channel`'s messages. Subscribed by the service (now or as
    /// soon as Redis is reachable); one subscriber per channel.
    pub fn subscribe(&self, channel: &str) -> mpsc::Receiver<Push> {
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(mut r) = self.inner.routes.lock() {
            r.senders.insert(channel.to_string(), tx);
            r.confirmed.remove(channel);
        }
        self.inner.wake.notify_one();
        rx
    }

    /// One tick: subscribe what is not confirmed, else ping.
    async fn tick(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let pending: Vec<String> = match self.inner.routes.lock() {
            Ok(r) => r
                .senders
                .keys()
                .filter(|c| !r.confirmed.contains(*c))
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        };
        if pending.is_empty() {
            return redis::cmd("PING").query_async::<()>(conn).await;
        }
        for channel in pending {
            conn.subscribe(&channel).await?;
            // Confirmed here too, not only by the push frame: whichever
            // comes first; a second catch-up is harmless.
            confirm(&self.inner.routes, &channel);
        }
        Ok(())
    }
}

/// Mark `channel` subscribed and tell its subscriber to catch up.
fn confirm(routes: &Mutex<Routes>, channel: &str) {
    let Ok(mut r) = routes.lock() else { return };
    r.confirmed.insert(channel.to_string());
    if let Some(tx) = r.senders.get(channel) {
        let _ = tx.try_send(Push::Subscribed);
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
}

/// Route one push frame (called by the connection's reader: never waits).
fn route(inner: &Inner, push: PushInfo) {
    let routes = &inner.routes;
    match push.kind {
        PushKind::Message => {
            let (Some(channel), Some(payload)) = (text(push.data.first()), text(push.data.get(1)))
            else {
                return;
            };
            let Ok(r) = routes.lock() else { return };
            if let Some(tx) = r.senders.get(&channel) {
                if tx.try_send(Push::Message(payload)).is_err() {
                    tracing::debug!(channel, "subscriber queue full; message dropped");
                }
            }
        }
        PushKind::Subscribe => {
            if let Some(channel) = text(push.data.first()) {
                confirm(routes, &channel);
            }
        }
        PushKind::Disconnection => {
            if let Ok(mut r) = routes.lock() {
                r.confirmed.clear();
            }
            // Said now, not when a command next fails: a short outage may
            // end before any command notices it.
            inner.failed(&"connection lost");
        }
        _ => {}
    }
}

/// Builds the connection and keeps it alive (see the module comment).
pub struct RedisService(pub Arc<SharedRedis>);

#[async_trait::async_trait]
impl BackgroundService for RedisService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let shared = &self.0;
        let inner = shared.inner.clone();
        let config = ConnectionManagerConfig::new()
            .set_min_delay(MIN_DELAY)
            .set_max_delay(MAX_DELAY)
            .set_exponent_base(2.0)
            .set_number_of_retries(RETRIES)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_push_sender(move |push: PushInfo| {
                route(&inner, push);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription();
        // Lazy: no I/O here, so a Redis that is down at start delays nothing.
        let mut conn = match ConnectionManager::new_lazy_with_config(shared.client.clone(), config)
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(redis = %shared.inner.redacted, error = %e, "cannot set up the redis connection; nothing is shared");
                return;
            }
        };
        shared.manager.send_replace(Some(conn.clone()));
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shared.inner.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            let r = tokio::select! {
                r = shared.tick(&mut conn) => r,
                _ = shutdown.changed() => return,
            };
            match r {
                Ok(()) => shared.inner.ok(),
                Err(e) => shared.inner.failed(&e),
            }
        }
    }
}

/// The URL without a password, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn pushes_reach_their_channel_and_disconnects_unconfirm() {
        let inner = Inner::default();
        let (tx, mut rx) = mpsc::channel(4);
        let (other_tx, mut other_rx) = mpsc::channel(4);
        {
            let mut r = inner.routes.lock().expect("lock");
            r.senders.insert("a".into(), tx);
            r.senders.insert("b".into(), other_tx);
        }
        route(
            &inner,
            PushInfo {
                kind: PushKind::Subscribe,
                data: vec![bulk("a"), Value::Int(1)],
            },
        );
        assert_eq!(rx.try_recv().ok(), Some(Push::Subscribed));
        route(
            &inner,
            PushInfo {
                kind: PushKind::Message,
                data: vec![bulk("a"), bulk("hello")],
            },
        );
        assert_eq!(rx.try_recv().ok(), Some(Push::Message("hello".into())));
        assert!(
            other_rx.try_recv().is_err(),
            "only the channel's subscriber"
        );
        assert!(inner.routes.lock().expect("lock").confirmed.contains("a"));
        route(
            &inner,
            PushInfo {
                kind: PushKind::Disconnection,
                data: vec![],
            },
        );
        assert!(inner.routes.lock().expect("lock").confirmed.is_empty());
        assert!(
            inner.down.load(Ordering::Relaxed),
            "a lost connection is an outage"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("redis://:hunter2@cache:6379/0"),
            "redis://…@cache:6379/0"
        );
        assert_eq!(
            redacted("redis://localhost:6379/0"),
            "redis://localhost:6379/0"
        );
        let Err(e) = SharedRedis::new("nonsense://:hunter2@cache") else {
            panic!("accepted a bad URL");
        };
        assert!(!e.contains("hunter2"), "{e}");
    }
}
