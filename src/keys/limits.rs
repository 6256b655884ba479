//! Per-key request limits: requests per minute (`rpm`), tokens per minute
//! (`tpm`) and requests in flight (`max_concurrent`), exact across
//! instances through Redis.
//!
//! **Shared (Redis configured and answering).** Each limited request makes
//! one Redis round trip before it is routed: `admit.lua` checks and records
//! all of the key's limits atomically, on Redis's own clock. RPM and TPM
//! are sliding windows of one-second buckets (a hash: second -> requests or
//! tokens admitted in it); a bucket counts until [`WINDOW_SECS`] whole
//! seconds have passed after it, so every request is counted for 60 to 61
//! seconds and no 60 s span ever holds more than the limit, whichever
//! instance admitted what. (GCRA, the other usual choice, lets a full
//! burst through and then keeps refilling: a client hammering a fresh
//! 60 RPM key gets 119 requests in its first minute.) A key costs Redis at
//! most 61 hash fields per limit, whatever its rate. Concurrency is a set
//! of leases, one per request in flight, removed when the request ends;
//! each lease also expires after [`LEASE_MS`], the safety net for an
//! instance that dies mid-request.
//!
//! TPM reserves the request's *estimated* input tokens at admission — the
//! body's bytes / 4, rounded up: cheap, no tokenizer, close for English
//! and JSON — and settles with the vendor's real usage (input + output)
//! when the request ends (`settle.lua`): the difference is charged or
//! refunded. A request that fails without usage is refunded whole; one
//! that succeeds without reporting usage keeps its estimate. An empty
//! window admits any single request, so one bigger than the whole limit
//! is not refused forever.
//!
//! **Requests ahead of use.** A key with an RPM limit and nothing else
//! asks Redis for up to [`AHEAD_MAX`] requests at once; the script grants
//! at most 1/16 of what is left in the window, split between the live
//! instances (so one request at a time near the limit: a 60 RPM key is as
//! exact as before), counts them all, and this instance admits the extra
//! ones from memory for the next [`AHEAD_MS`]. Ones still unused then are
//! given back to their bucket. No window ever holds more than the limit;
//! a busy key costs one round trip per batch instead of one per request.
//! One request per key asks Redis at a time; the others wait for its
//! answer rather than asking too.
//!
//! The project rule is that the hot path never waits on Redis; exact
//! cross-instance limits need this round trip. It is the deliberate
//! exception: only for keys that have limits, and bounded by
//! [`REDIS_TIMEOUT`].
//!
//! **Fallback (no Redis, or Redis failing).** Without `REDIS_URL` every
//! instance enforces the whole limit in memory. With Redis configured but
//! not answering (an error, or no answer within [`REDIS_TIMEOUT`]), the
//! instance enforces its share, limit / instances (the instance count
//! last seen in Redis, see [`Heartbeat`]; 1 if Redis was never reached),
//! sets `llm_limit_fallback` to 1 and logs one WARN per outage. For
//! [`SKIP_MS`] after a failure it does not try Redis at all, so an outage
//! does not add the timeout to every request. Requests never fail because
//! Redis is down.

use crate::control::redis::SharedRedis;
use crate::metrics::LimitStats;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Bounds on what a key may set (what `KeyDoc::check` enforces).
pub const MAX_RPM: u32 = 10_000_000;
pub const MAX_TPM: u64 = 10_000_000_000;
pub const MAX_CONCURRENT: u32 = 10_000;
/// The sliding window of RPM and TPM, in one-second buckets.
const WINDOW_SECS: u64 = 60;
/// The longest a limited request waits for Redis before it is admitted
/// by the per-instance fallback instead. Redis on the same network
/// answers in well under a millisecond; 50 ms rides out a busy moment
/// without letting an outage slow every request much.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// After a failed Redis call, this long on the fallback without trying.
const SKIP_MS: u64 = 1_000;
/// Settling runs after the answer, off the request path: a longer bound.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a concurrency lease lives if nobody releases it.
const LEASE_MS: u64 = 600_000;
const PREFIX: &str = "llm-orchestrator:limit:";
/// Instance id -> last heartbeat (wall ms).
const INSTANCES: &str = "llm-orchestrator:limit-instances";
const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance that has not beaten for this long is not counted.
const ALIVE_MS: u64 = 30_000;

/// The most requests one Redis round trip takes ahead of use.
const AHEAD_MAX: u32 = 64;
/// How long requests taken ahead of use stay usable here. Short, so that a
/// grant another instance could have used comes back soon, and so that a
/// request counted in one second's bucket runs within that second or the
/// next.
const AHEAD_MS: u64 = 250;

const ADMIT: &str = include_str!("admit.lua");
const SETTLE: &str = include_str!("settle.lua");

/// A key's limits; 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub rpm: u32,
    pub tpm: u64,
    pub max_concurrent: u32,
}

/// Which limit refused a request (the metric's `limit` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Rpm,
    Tpm,
    Concurrency,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Rpm => "rpm",
            Limit::Tpm => "tpm",
            Limit::Concurrency => "concurrency",
        }
    }
}

/// A refused request: which limit, its configured value, and when to retry.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub limit: Limit,
    pub value: u64,
    /// Whole seconds, rounded up, at least 1.
    pub retry_after_secs: u64,
}

impl Refused {
    fn new(limit: Limit, limits: Limits, retry_ms: u64) -> Refused {
        let value = match limit {
            Limit::Rpm => u64::from(limits.rpm),
            Limit::Tpm => limits.tpm,
            Limit::Concurrency => u64::from(limits.max_concurrent),
        };
        Refused {
            limit,
            value,
            retry_after_secs: retry_ms.div_ceil(1000).max(1),
        }
    }

    /// `rpm limit of 60 reached for this key; retry in 12 s`.
    pub fn message(&self) -> String {
        let name = match self.limit {
            Limit::Concurrency => "max_concurrent",
            l => l.as_str(),
        };
        format!(
            "{name} limit of {} reached for this key; retry in {} s",
            self.value, self.retry_after_secs
        )
    }
}

/// The TPM reservation for a body of `bytes` bytes: bytes / 4, rounded up.
pub fn estimate(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

/// Counts per one-second bucket, oldest first, with their total: the same
/// window as `admit.lua`'s, in memory.
#[derive(Default)]
struct Buckets {
    counts: VecDeque<(u64, u64)>,
    sum: u64,
}

impl Buckets {
    /// Forget buckets that stopped counting at second `sec`.
    fn expire(&mut self, sec: u64) {
        while let Some(&(b, n)) = self.counts.front() {
            if sec - b <= WINDOW_SECS {
                break;
            }
            self.sum = self.sum.saturating_sub(n);
            self.counts.pop_front();
        }
    }

    fn add(&mut self, sec: u64, n: u64) {
        match self.counts.back_mut() {
            Some((b, c)) if *b == sec => *c += n,
            _ => self.counts.push_back((sec, n)),
        }
        self.sum += n;
    }

    /// Change bucket `sec` by `delta` if it still counts.
    fn adjust(&mut self, sec: u64, delta: i64) {
        if let Some((_, c)) = self.counts.iter_mut().find(|(b, _)| *b == sec) {
            let old = *c;
            *c = old.saturating_add_signed(delta);
            self.sum = (self.sum + *c).saturating_sub(old);
        }
    }

    /// Milliseconds from `now_ms` until the oldest bucket stops counting.
    fn wait(&self, now_ms: u64) -> u64 {
        self.counts.front().map_or(1000, |&(b, _)| {
            ((b + WINDOW_SECS + 1) * 1000).saturating_sub(now_ms)
        })
    }
}

/// One key's state on the per-instance fallback.
#[derive(Default)]
struct Local {
    rpm: Buckets,
    tpm: Buckets,
    running: u32,
}

/// Requests of one key counted in Redis ahead of use (see the module
/// docs), and the turn to ask Redis for more.
#[derive(Default)]
struct Ahead {
    grants: Mutex<VecDeque<Grant>>,
    turn: tokio::sync::Mutex<()>,
}

struct Grant {
    /// The Redis second they were counted in.
    bucket: u64,
    left: u32,
    /// Usable until then (ms since the limiter started).
    until_ms: u64,
}

/// The part of a limit this instance enforces on its own.
fn share(limit: u64, instances: u64) -> u64 {
    if limit == 0 {
        0
    } else {
        (limit / instances.max(1)).max(1)
    }
}

/// The process's limiter (in [`crate::control::live::Live`]).
pub struct Limiter {
    redis: OnceLock<Arc<SharedRedis>>,
    local: Mutex<HashMap<Arc<str>, Arc<Mutex<Local>>>>,
    ahead: Mutex<HashMap<Arc<str>, Arc<Ahead>>>,
    stats: Arc<LimitStats>,
    started: Instant,
    /// Unique per process: prefixes request members and names the heartbeat.
    instance: String,
    seq: AtomicU64,
    /// Instances alive in the last heartbeat (1 until one succeeded).
    instances: AtomicU32,
    /// In an outage (WARN once when it starts, INFO once when it ends).
    down: AtomicBool,
    /// No Redis attempt before this (ms since start).
    skip_until: AtomicU64,
}

impl Limiter {
    pub fn new(stats: Arc<LimitStats>) -> Arc<Limiter> {
        Arc::new(Limiter {
            redis: OnceLock::new(),
            local: Mutex::new(HashMap::new()),
            ahead: Mutex::new(HashMap::new()),
            stats,
            started: Instant::now(),
            instance: format!("{:016x}", rand::random::<u64>()),
            seq: AtomicU64::new(0),
            instances: AtomicU32::new(1),
            down: AtomicBool::new(false),
            skip_until: AtomicU64::new(0),
        })
    }

    /// Share limits through this Redis (set once at start).
    pub fn attach(&self, redis: Arc<SharedRedis>) {
        let _ = self.redis.set(redis);
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Admit a request of `body_len` bytes for the key whose limit id is
    /// `id` (see [`super::ClientKey::limit_id`]), or say which limit
    /// refuses it. The returned lease must live until the request ends.
    pub async fn admit(
        self: &Arc<Self>,
        id: &Arc<str>,
        limits: Limits,
        body_len: usize,
    ) -> Result<Lease, Refused> {
        let est = if limits.tpm > 0 {
            estimate(body_len)
        } else {
            0
        };
        let member = self.seq.fetch_add(1, Ordering::Relaxed);
        let redis_now = match self.redis.get() {
            Some(redis) if self.now() >= self.skip_until.load(Ordering::Relaxed) => {
                redis.manager_now()
            }
            _ => None,
        };
        let result = match redis_now {
            Some(conn) if limits.tpm == 0 && limits.max_concurrent == 0 => {
                self.admit_ahead(conn, id, limits, member).await
            }
            Some(conn) => self
                .admit_shared(conn, id, limits, est, member, 1)
                .await
                .map(|r| r.map(|(bucket, _)| bucket)),
            // No Redis, or its connection is not built yet (first instants).
            None => None,
        };
        let (result, shared) = match result {
            Some(r) => (r, true),
            None => {
                let instances = match self.redis.get() {
                    Some(_) => u64::from(self.instances.load(Ordering::Relaxed)),
                    None => 1,
                };
                (self.admit_local(id, limits, est, instances), false)
            }
        };
        match result {
            Ok(bucket) => Ok(Lease {
                limiter: self.clone(),
                id: id.clone(),
                member,
                bucket,
                est,
                tpm: limits.tpm > 0,
                conc: limits.max_concurrent > 0,
                shared,
                done: false,
            }),
            Err(refused) => {
                match refused.limit {
                    Limit::Rpm => &self.stats.rpm,
                    Limit::Tpm => &self.stats.tpm,
                    Limit::Concurrency => &self.stats.concurrency,
                }
                .fetch_add(1, Ordering::Relaxed);
                Err(refused)
            }
        }
    }

    fn keys(id: &str) -> [String; 3] {
        // One hash tag per key: a Redis Cluster keeps them in one slot,
        // which a script touching all three needs.
        ["rpm", "tpm", "running"].map(|k| format!("{PREFIX}{{{id}}}:{k}"))
    }

    fn member(&self, n: u64) -> String {
        format!("{}-{n}", self.instance)
    }

    /// A key with an RPM limit alone: a request taken ahead of use, else
    /// one Redis round trip that also takes some for the next requests.
    async fn admit_ahead(
        self: &Arc<Self>,
        conn: redis::aio::ConnectionManager,
        id: &Arc<str>,
        limits: Limits,
        member: u64,
    ) -> Option<Result<u64, Refused>> {
        let ahead = self.ahead_state(id);
        if let Some(bucket) = self.take_ahead(id, &ahead) {
            return Some(Ok(bucket));
        }
        // One round trip per key at a time: the requests that queue here
        // are usually served by the grant it brings back.
        let _turn = ahead.turn.lock().await;
        if let Some(bucket) = self.take_ahead(id, &ahead) {
            return Some(Ok(bucket));
        }
        // The request before this one found Redis failing: the fallback,
        // not one more timeout each for every request queued here.
        if self.now() < self.skip_until.load(Ordering::Relaxed) {
            return None;
        }
        let (bucket, granted) = match self
            .admit_shared(conn, id, limits, 0, member, AHEAD_MAX)
            .await?
        {
            Ok(g) => g,
            Err(refused) => return Some(Err(refused)),
        };
        if granted > 1 {
            if let Ok(mut grants) = ahead.grants.lock() {
                grants.push_back(Grant {
                    bucket,
                    left: granted - 1,
                    until_ms: self.now() + AHEAD_MS,
                });
            }
            // Traffic may stop: what is left goes back on time all the same.
            let (me, id, ahead) = (self.clone(), id.clone(), ahead.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(AHEAD_MS + 10)).await;
                me.give_back(&id, &ahead);
            });
        }
        Some(Ok(bucket))
    }

    fn ahead_state(&self, id: &Arc<str>) -> Arc<Ahead> {
        let Ok(mut map) = self.ahead.lock() else {
            return Arc::default();
        };
        // Bounded by the number of keys, as `local_state`.
        if map.len() > 100_000 {
            map.clear();
        }
        map.entry(id.clone()).or_default().clone()
    }

    /// One request from a live grant (its bucket).
    fn take_ahead(self: &Arc<Self>, id: &Arc<str>, ahead: &Ahead) -> Option<u64> {
        self.give_back(id, ahead);
        let mut grants = ahead.grants.lock().ok()?;
        while let Some(g) = grants.front_mut() {
            if g.left > 0 {
                g.left -= 1;
                return Some(g.bucket);
            }
            grants.pop_front();
        }
        None
    }

    /// Grants past their time give their unused requests back to Redis.
    fn give_back(self: &Arc<Self>, id: &Arc<str>, ahead: &Ahead) {
        let now = self.now();
        let Ok(mut grants) = ahead.grants.lock() else {
            return;
        };
        while grants.front().is_some_and(|g| g.until_ms < now) {
            let Some(g) = grants.pop_front() else { break };
            if g.left > 0 {
                let (me, id) = (self.clone(), id.clone());
                tokio::spawn(async move {
                    me.settle_shared(&id, 0, 0, g.bucket, false, g.left).await;
                });
            }
        }
    }

    /// `Ok((bucket, requests granted))` when admitted; `None`: Redis did
    /// not answer (the caller falls back).
    async fn admit_shared(
        self: &Arc<Self>,
        mut conn: redis::aio::ConnectionManager,
        id: &str,
        limits: Limits,
        est: u64,
        member: u64,
        want: u32,
    ) -> Option<Result<(u64, u32), Refused>> {
        let keys = Self::keys(id);
        let args = [
            limits.rpm.to_string(),
            limits.tpm.to_string(),
            est.to_string(),
            limits.max_concurrent.to_string(),
            self.member(member),
            WINDOW_SECS.to_string(),
            LEASE_MS.to_string(),
            want.to_string(),
            self.instances.load(Ordering::Relaxed).to_string(),
        ];
        let call = eval::<(i64, i64, i64)>(&mut conn, Script::Admit, &keys, &args);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok((code, value, granted))) => {
                self.redis_ok();
                let retry_ms = value.max(0) as u64;
                Some(match code {
                    // `value` is the bucket when admitted.
                    0 => Ok((retry_ms, granted.clamp(1, i64::from(want)) as u32)),
                    1 => Err(Refused::new(Limit::Rpm, limits, retry_ms)),
                    2 => Err(Refused::new(Limit::Tpm, limits, retry_ms)),
                    _ => Err(Refused::new(Limit::Concurrency, limits, retry_ms)),
                })
            }
            Ok(Err(e)) => {
                self.redis_failed(&e);
                None
            }
            Err(_) => {
                self.redis_failed(&"no answer within 50 ms");
                // The script may still have run. Its lease is released
                // (nothing happens if it did not run); its counts stay:
                // this request is counted twice at worst, never zero times.
                if limits.max_concurrent > 0 {
                    let (me, id) = (self.clone(), id.to_string());
                    tokio::spawn(async move {
                        me.settle_shared(&id, member, 0, 0, true, 0).await;
                    });
                }
                None
            }
        }
    }

    /// The same rules as `admit.lua`, on this instance's share of each
    /// limit; `Ok(bucket)` when admitted.
    fn admit_local(
        &self,
        id: &Arc<str>,
        limits: Limits,
        est: u64,
        instances: u64,
    ) -> Result<u64, Refused> {
        let now = self.now();
        let sec = now / 1000;
        let state = self.local_state(id);
        let Ok(mut s) = state.lock() else {
            // A poisoned lock means a panic elsewhere: do not refuse.
            return Ok(sec);
        };
        s.rpm.expire(sec);
        s.tpm.expire(sec);
        let conc = share(u64::from(limits.max_concurrent), instances);
        if conc > 0 && u64::from(s.running) >= conc {
            return Err(Refused::new(Limit::Concurrency, limits, 1000));
        }
        let rpm = share(u64::from(limits.rpm), instances);
        if rpm > 0 && s.rpm.sum >= rpm {
            return Err(Refused::new(Limit::Rpm, limits, s.rpm.wait(now)));
        }
        let tpm = share(limits.tpm, instances);
        if tpm > 0 && s.tpm.sum > 0 && s.tpm.sum + est > tpm {
            return Err(Refused::new(Limit::Tpm, limits, s.tpm.wait(now)));
        }
        if rpm > 0 {
            s.rpm.add(sec, 1);
        }
        if tpm > 0 {
            s.tpm.add(sec, est);
        }
        if conc > 0 {
            s.running += 1;
        }
        Ok(sec)
    }

    fn local_state(&self, id: &Arc<str>) -> Arc<Mutex<Local>> {
        let Ok(mut map) = self.local.lock() else {
            return Arc::default();
        };
        // Keys come from the key table (bounded by the number of keys); a
        // deleted key's state is dropped when the map is rebuilt below.
        if map.len() > 100_000 {
            map.clear();
        }
        map.entry(id.clone()).or_default().clone()
    }

    fn settle_local(&self, id: &Arc<str>, bucket: u64, delta: i64, release: bool) {
        let state = self.local_state(id);
        let Ok(mut s) = state.lock() else { return };
        if release {
            s.running = s.running.saturating_sub(1);
        }
        if delta != 0 {
            s.tpm.adjust(bucket, delta);
        }
    }

    async fn settle_shared(
        &self,
        id: &str,
        member: u64,
        delta: i64,
        bucket: u64,
        release: bool,
        unused: u32,
    ) {
        let Some(mut conn) = self.redis.get().and_then(|r| r.manager_now()) else {
            return;
        };
        let keys = Self::keys(id);
        let args = [
            self.member(member),
            delta.to_string(),
            u8::from(release).to_string(),
            bucket.to_string(),
            WINDOW_SECS.to_string(),
            unused.to_string(),
        ];
        let call = eval::<i64>(&mut conn, Script::Settle, &keys, &args);
        match tokio::time::timeout(SETTLE_TIMEOUT, call).await {
            Ok(Ok(_)) => {}
            // The lease expires by itself ([`LEASE_MS`]) and the tokens
            // leave the window: nothing to retry.
            Ok(Err(e)) => tracing::debug!(error = %e, "client-key limit not settled in redis"),
            Err(_) => tracing::debug!("client-key limit not settled in redis: timeout"),
        }
    }

    fn redis_ok(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            self.stats.fallback.store(0, Ordering::Relaxed);
            tracing::info!("client-key limits are shared through redis again");
        }
    }

    fn redis_failed(&self, e: &dyn std::fmt::Display) {
        self.skip_until
            .store(self.now() + SKIP_MS, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            self.stats.fallback.store(1, Ordering::Relaxed);
            let n = self.instances.load(Ordering::Relaxed);
            tracing::warn!(error = %e, instances = n, "client-key limits: redis is not answering; each instance enforces limit / {n} on its own until it does");
        }
    }
}

/// An admitted request's hold on its limits. [`Lease::finish`] settles it
/// with the request's usage; a lease dropped unfinished (the request's
/// context went away on a path that did not finish it) releases the
/// concurrency slot and keeps the token estimate.
pub struct Lease {
    limiter: Arc<Limiter>,
    id: Arc<str>,
    member: u64,
    /// The second (Redis's or this instance's clock) it was admitted in.
    bucket: u64,
    est: u64,
    tpm: bool,
    conc: bool,
    shared: bool,
    done: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("member", &self.member)
            .field("est", &self.est)
            .field("shared", &self.shared)
            .finish()
    }
}

impl Lease {
    /// Settle: `tokens` is the request's real usage (input + output), or
    /// `None` when nothing was reported; `failed` says no answer came.
    pub fn finish(mut self, tokens: Option<u64>, failed: bool) {
        self.done = true;
        let delta = match tokens {
            Some(t) => t as i64 - self.est as i64,
            None if failed => -(self.est as i64),
            None => 0,
        };
        self.settle(delta);
    }

    fn settle(&self, delta: i64) {
        let delta = if self.tpm { delta } else { 0 };
        if delta == 0 && !self.conc {
            return;
        }
        if !self.shared {
            (self.limiter).settle_local(&self.id, self.bucket, delta, self.conc);
            return;
        }
        let (limiter, id, member, bucket, conc) = (
            self.limiter.clone(),
            self.id.clone(),
            self.member,
            self.bucket,
            self.conc,
        );
        // After the answer: the client does not wait for this.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                limiter
                    .settle_shared(&id, member, delta, bucket, conc, 0)
                    .await;
            });
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            self.settle(0);
        }
    }
}

#[derive(Clone, Copy)]
enum Script {
    Admit,
    Settle,
}

impl Script {
    fn body(self) -> &'static str {
        match self {
            Script::Admit => ADMIT,
            Script::Settle => SETTLE,
        }
    }

    /// The SHA-1 Redis names the script by (EVALSHA sends 40 bytes instead
    /// of the whole script).
    fn sha(self) -> &'static str {
        static SHAS: OnceLock<[String; 2]> = OnceLock::new();
        let shas = SHAS.get_or_init(|| {
            [ADMIT, SETTLE].map(|s| {
                let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes());
                super::hex::hex(d.as_ref())
            })
        });
        &shas[self as usize]
    }
}

/// EVALSHA, and EVAL once when Redis does not know the script yet (first
/// use, or after a restart).
async fn eval<T: redis::FromRedisValue>(
    conn: &mut redis::aio::ConnectionManager,
    script: Script,
    keys: &[String],
    args: &[String],
) -> redis::RedisResult<T> {
    let r = redis::cmd("EVALSHA")
        .arg(script.sha())
        .arg(keys.len())
        .arg(keys)
        .arg(args)
        .query_async(conn)
        .await;
    match r {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            redis::cmd("EVAL")
                .arg(script.body())
                .arg(keys.len())
                .arg(keys)
                .arg(args)
                .query_async(conn)
                .await
        }
        r => r,
    }
}

/// Every few seconds, records this instance in Redis and counts the
/// instances alive: the divisor of the per-instance fallback.
pub struct Heartbeat(pub Arc<Limiter>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Heartbeat {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let limiter = &self.0;
        let Some(redis) = limiter.redis.get().cloned() else {
            return;
        };
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let Some(mut conn) = redis.manager_now() else {
                continue;
            };
            let now = crate::health::wall_ms();
            let beat = async {
                redis::pipe()
                    .hset(INSTANCES, &limiter.instance, now)
                    .ignore()
                    .hgetall(INSTANCES)
                    .query_async::<(HashMap<String, u64>,)>(&mut conn)
                    .await
            };
            let Ok(Ok((seen,))) = tokio::time::timeout(SETTLE_TIMEOUT, beat).await else {
                // The outage is logged by the connection and by admissions.
                continue;
            };
            let alive = seen.values().filter(|&&t| t + ALIVE_MS >= now).count();
            limiter
                .instances
                .store(alive.clamp(1, u32::MAX as usize) as u32, Ordering::Relaxed);
            // Instances gone for an hour are forgotten.
            let stale: Vec<&String> = seen
                .iter()
                .filter(|(_, &t)| t + 3_600_000 < now)
                .map(|(k, _)| k)
                .collect();
            if !stale.is_empty() {
                let _ = tokio::time::timeout(
                    SETTLE_TIMEOUT,
                    redis::cmd("HDEL")
                        .arg(INSTANCES)
                        .arg(stale)
                        .query_async::<()>(&mut conn),
                )
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> Arc<Limiter> {
        Limiter::new(Arc::default())
    }

    #[test]
    fn estimates_and_shares() {
        assert_eq!(estimate(0), 1);
        assert_eq!(estimate(401), 101);
        assert_eq!(share(60, 3), 20);
        assert_eq!(share(2, 3), 1, "never zero");
        assert_eq!(share(0, 3), 0, "no limit stays none");
        let r = Refused::new(
            Limit::Rpm,
            Limits {
                rpm: 60,
                tpm: 0,
                max_concurrent: 0,
            },
            1001,
        );
        assert_eq!(r.retry_after_secs, 2, "rounded up");
        assert_eq!(
            r.message(),
            "rpm limit of 60 reached for this key; retry in 2 s"
        );
    }

    #[tokio::test]
    async fn local_limits_are_exact_and_released() {
        let l = limiter();
        let id: Arc<str> = Arc::from("k");
        let lim = Limits {
            rpm: 3,
            tpm: 0,
            max_concurrent: 2,
        };
        let a = l.admit(&id, lim, 10).await.expect("1st");
        let b = l.admit(&id, lim, 10).await.expect("2nd");
        let refused = l.admit(&id, lim, 10).await.expect_err("3rd in flight");
        assert_eq!(refused.limit, Limit::Concurrency);
        a.finish(None, false);
        drop(b);
        let _c = l.admit(&id, lim, 10).await.expect("a slot is free again");
        let refused = l.admit(&id, lim, 10).await.expect_err("4th in a minute");
        assert_eq!(refused.limit, Limit::Rpm);
        assert!(refused.retry_after_secs > 55, "{refused:?}");
        assert_eq!(l.stats.rpm.load(Ordering::Relaxed), 1);
        assert_eq!(l.stats.concurrency.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn local_tpm_reserves_then_settles() {
        let l = limiter();
        let id: Arc<str> = Arc::from("k");
        let lim = Limits {
            rpm: 0,
            tpm: 100,
            max_concurrent: 0,
        };
        // 200 bytes: 50 tokens reserved.
        let a = l.admit(&id, lim, 200).await.expect("empty window");
        let b = l.admit(&id, lim, 200).await.expect("100 of 100");
        assert_eq!(
            l.admit(&id, lim, 4).await.err().map(|r| r.limit),
            Some(Limit::Tpm)
        );
        a.finish(Some(10), false); // 40 refunded
        b.finish(None, true); // failed: 50 refunded
        let _c = l.admit(&id, lim, 320).await.expect("10 + 80 fits");
        assert!(l.admit(&id, lim, 44).await.is_err(), "10 + 80 + 11 > 100");
        assert!(l.admit(&id, lim, 40).await.is_ok(), "10 + 80 + 10 = 100");
        // A request larger than the whole limit passes alone.
        let other: Arc<str> = Arc::from("other");
        assert!(l.admit(&other, lim, 4000).await.is_ok());
    }
}
