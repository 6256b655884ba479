//! Connections to vendors: our own pool of idle connections, Pingora's
//! transport connector for new ones (TCP + TLS), our HTTP/1 exchange on
//! top (`proxy::h1`) — every peer the gateway builds offers only HTTP/1
//! (`HttpPeer::new` leaves ALPN at HTTP/1).
//!
//! Why not Pingora's `connectors::http::Connector`: its `get_http_session`
//! is one future that holds the TCP + TLS connect state (~9 KB) even when
//! the pool has a connection, so it had to be boxed on every attempt. Here
//! a pooled connection is taken without any future, and only a new
//! connection pays for the boxed connect.
//!
//! Why not Pingora's pool (`TransportConnector::reused_stream` /
//! `release_stream`): per request it checks the reused socket's peer with a
//! `getpeername` syscall (it keys connections by fd, so it must guard
//! against a reused fd number), wraps the stream in an `Arc<Mutex>`, makes
//! two channels and spawns a task that watches the idle connection with a
//! timer — several allocations, a task and a syscall per request. This pool
//! holds the stream itself (no fd to confuse), keyed by the peer's reuse
//! hash, newest first; a connection the vendor closed while idle is found
//! by the same one-byte read test Pingora makes (no syscall unless the
//! socket became readable), when it is taken or by a sweep every few
//! seconds.

use super::h1::Exchange;
use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::protocols::Stream;
use pingora::upstreams::peer::{HttpPeer, Peer};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often idle connections are checked for expiry and for a vendor
/// that closed them (so a peer no request goes to holds no dead sockets).
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How long an idle connection is kept.
const IDLE: Duration = Duration::from_secs(90);

pub struct Connector {
    transport: TransportConnector,
    idle: Arc<Mutex<Idle>>,
    sweeping: AtomicBool,
}

/// Idle connections by peer reuse hash, oldest first in each queue.
struct Idle {
    by_peer: HashMap<u64, VecDeque<Parked>, foldhash::fast::RandomState>,
    count: usize,
    cap: usize,
}

struct Parked {
    stream: Stream,
    until: Instant,
}

/// Still usable: the vendor has sent nothing (not even its FIN) since the
/// answer ended. A vendor never speaks first on an idle HTTP/1 connection,
/// so readable means closed, broken or out of step. The read only reaches
/// the socket when the runtime has seen it become readable.
fn alive(stream: &mut Stream) -> bool {
    use futures_util::FutureExt;
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    tokio::task::unconstrained(stream.read(&mut byte))
        .now_or_never()
        .is_none()
}

impl Idle {
    /// The newest live connection to `key`; expired and dead ones on the
    /// way are taken out (and returned for closing outside the lock).
    fn take(&mut self, key: u64, now: Instant, dead: &mut Vec<Stream>) -> Option<Stream> {
        let queue = self.by_peer.get_mut(&key)?;
        let mut found = None;
        while let Some(mut p) = queue.pop_back() {
            self.count -= 1;
            if p.until > now && alive(&mut p.stream) {
                found = Some(p.stream);
                break;
            }
            dead.push(p.stream);
        }
        if queue.is_empty() {
            self.by_peer.remove(&key);
        }
        found
    }

    /// Keep `stream` for `key` until `until`; when the pool is full it is
    /// handed back to be closed (the pool stays bounded).
    fn park(&mut self, key: u64, stream: Stream, until: Instant) -> Option<Stream> {
        if self.count >= self.cap {
            return Some(stream);
        }
        self.count += 1;
        let queue = self.by_peer.entry(key).or_default();
        queue.push_back(Parked { stream, until });
        None
    }

    /// Take out every expired or dead connection.
    fn sweep(&mut self, now: Instant, dead: &mut Vec<Stream>) {
        let mut count = 0;
        self.by_peer.retain(|_, queue| {
            let mut kept = VecDeque::with_capacity(queue.len());
            for mut p in queue.drain(..) {
                if p.until > now && alive(&mut p.stream) {
                    kept.push_back(p);
                } else {
                    dead.push(p.stream);
                }
            }
            count += kept.len();
            *queue = kept;
            !queue.is_empty()
        });
        self.count = count;
    }
}

impl Connector {
    pub fn new(options: Option<ConnectorOptions>) -> Connector {
        // Pingora's bound for its own pool (per worker thread times threads).
        let cap = options.as_ref().map_or(128, |o| o.keepalive_pool_size);
        Connector {
            transport: TransportConnector::new(options),
            idle: Arc::new(Mutex::new(Idle {
                by_peer: HashMap::default(),
                count: 0,
                cap,
            })),
            sweeping: AtomicBool::new(false),
        }
    }

    /// An exchange on a connection to `peer`, and whether the connection
    /// came from the pool.
    pub async fn exchange(&self, peer: &HttpPeer) -> pingora::Result<(Exchange, bool)> {
        let (stream, reused) = self.stream(peer).await?;
        Ok((Exchange::new(stream), reused))
    }

    /// A connection to `peer`, and whether it came from the pool.
    pub async fn stream(&self, peer: &HttpPeer) -> pingora::Result<(Stream, bool)> {
        if let Some(stream) = self.reused(peer) {
            return Ok((stream, true));
        }
        // Boxed: held inline, the connect state would make every future
        // above this one that large, copied on each move, per request.
        let stream = Box::pin(self.transport.new_stream(peer)).await?;
        Ok((stream, false))
    }

    fn reused(&self, peer: &HttpPeer) -> Option<Stream> {
        let (key, mut dead) = (peer.reuse_hash(), Vec::new());
        let found = match self.idle.lock() {
            Ok(mut idle) if idle.count > 0 => idle.take(key, Instant::now(), &mut dead),
            _ => None,
        };
        // Closed here, not under the lock.
        drop(dead);
        found
    }

    /// Give a finished exchange's connection back to the pool when it can
    /// carry another request (keep-alive, body read to the end).
    pub fn release(&self, exchange: Exchange, peer: &HttpPeer) {
        if let Some(stream) = exchange.into_reusable() {
            self.park(stream, peer);
        }
    }

    /// Keep an idle connection (nothing in flight on it) for the next
    /// request to `peer`.
    pub fn park(&self, mut stream: Stream, peer: &HttpPeer) {
        if !alive(&mut stream) {
            return;
        }
        let until = Instant::now() + IDLE;
        let refused = match self.idle.lock() {
            Ok(mut idle) => idle.park(peer.reuse_hash(), stream, until),
            Err(_) => Some(stream),
        };
        // A connection the full pool refused is closed here, not under the lock.
        if refused.is_none() {
            self.start_sweeper();
        }
    }

    /// The sweeper runs on the runtime of the first connection released,
    /// and ends with the connector.
    fn start_sweeper(&self) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let idle: Weak<Mutex<Idle>> = Arc::downgrade(&self.idle);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(idle) = idle.upgrade() else {
                    return;
                };
                let mut dead = Vec::new();
                if let Ok(mut idle) = idle.lock() {
                    idle.sweep(Instant::now(), &mut dead);
                }
                drop(dead);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::protocols::l4::stream::Stream as L4;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: our end as the pool holds it, the vendor's end.
    async fn pair(listener: &TcpListener) -> (Stream, TcpStream) {
        let addr = listener.local_addr().expect("addr");
        let ours = TcpStream::connect(addr).await.expect("connect");
        let (theirs, _) = listener.accept().await.expect("accept");
        (Box::new(L4::from(ours)), theirs)
    }

    fn idle(cap: usize) -> Idle {
        Idle {
            by_peer: HashMap::default(),
            count: 0,
            cap,
        }
    }

    fn park(idle: &mut Idle, key: u64, stream: Stream, until: Instant) {
        assert!(idle.park(key, stream, until).is_none(), "room in the pool");
    }

    #[tokio::test]
    async fn newest_live_connection_first_expired_and_closed_ones_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut pool = idle(8);
        let (old, _old_vendor) = pair(&listener).await;
        let (expired, _expired_vendor) = pair(&listener).await;
        let (closed, closed_vendor) = pair(&listener).await;
        let old_id = old.id();
        park(&mut pool, 1, old, later);
        park(&mut pool, 1, expired, now);
        park(&mut pool, 1, closed, later);
        // The vendor closes the newest one while it is idle; the runtime
        // sees the socket turn readable.
        drop(closed_vendor);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut dead = Vec::new();
        let got = pool.take(1, now, &mut dead).expect("a live connection");
        assert_eq!(
            got.id(),
            old_id,
            "the closed and the expired one are skipped"
        );
        assert_eq!((dead.len(), pool.count), (2, 0));
        assert!(pool.by_peer.is_empty(), "an empty queue is removed");
        assert!(pool.take(1, now, &mut dead).is_none());
        assert!(pool.take(2, now, &mut dead).is_none(), "another peer");
    }

    #[tokio::test]
    async fn a_full_pool_refuses_more() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let later = Instant::now() + Duration::from_secs(60);
        let mut pool = idle(1);
        let (a, _a_vendor) = pair(&listener).await;
        let (b, _b_vendor) = pair(&listener).await;
        assert!(pool.park(1, a, later).is_none());
        assert!(
            pool.park(2, b, later).is_some(),
            "over the cap: handed back"
        );
        assert_eq!(pool.count, 1);
    }

    #[tokio::test]
    async fn the_sweep_closes_expired_and_closed_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut pool = idle(8);
        let (a, _a_vendor) = pair(&listener).await;
        let (b, b_vendor) = pair(&listener).await;
        let (c, mut c_vendor) = pair(&listener).await;
        park(&mut pool, 1, a, later);
        park(&mut pool, 2, b, later);
        park(&mut pool, 3, c, now);
        drop(b_vendor);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut dead = Vec::new();
        pool.sweep(now, &mut dead);
        assert_eq!((pool.count, dead.len()), (1, 2));
        assert_eq!(pool.by_peer.keys().copied().collect::<Vec<_>>(), [1]);
        // Dropping a swept connection closes it: the vendor reads its end.
        drop(dead);
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), c_vendor.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    }
}
