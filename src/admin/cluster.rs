//! Cluster-wide usage totals through Redis (`GET /api/stats?scope=cluster`).
//!
//! Each instance keeps its own request log in SQLite. When Redis is on, the
//! log writer — already off the request path — also adds each batch to
//! per-minute counters in Redis (`HINCRBY`, one pipeline per batch), so any
//! instance can answer for the whole cluster. Counters give sums, hence
//! requests, errors, tokens and the mean latency; percentiles stay
//! per instance (they need the individual rows).

use crate::control::redis::SharedRedis;
use crate::store::{RequestLog, UsageQuery, UsageRow};
use redis::aio::ConnectionManager;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const PREFIX: &str = "llm-orchestrator:usage:";
const INSTANCES: &str = "llm-orchestrator:usage-instances";
const MINUTE_MS: i64 = 60_000;
/// Counters are kept this long (and a query window is capped to it).
const KEEP_MS: i64 = 8 * 86_400_000;
/// How long `/api/stats?scope=cluster` waits for Redis.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Field separator: a control character no provider or model name holds.
const SEP: char = '\u{1f}';

pub struct ClusterUsage {
    /// The process's shared connection (`control/redis.rs`).
    redis: Arc<SharedRedis>,
    instance: String,
    /// Log a Redis failure once per outage, not once per batch.
    failing: AtomicBool,
    /// While Redis fails, batches are not sent before this wall-clock ms
    /// (their counts are lost; local statistics keep them).
    retry_after_ms: AtomicU64,
}

/// One (minute, provider, model)'s sums.
#[derive(Default, Clone, Copy)]
struct Sums {
    requests: i64,
    errors: i64,
    prompt: i64,
    completion: i64,
    latency_us: i64,
    /// Micro-dollars (the ledger's cost).
    cost: i64,
}

impl ClusterUsage {
    pub fn new(redis: Arc<SharedRedis>) -> Self {
        ClusterUsage {
            redis,
            instance: format!("{:016x}", rand::random::<u64>()),
            failing: AtomicBool::new(false),
            retry_after_ms: AtomicU64::new(0),
        }
    }

    /// The shared connection, or an error before it is built (just after
    /// start): nothing here waits for it.
    fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        self.redis.manager_now().ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Io, "redis connection not set up yet"))
        })
    }

    fn outcome<T>(&self, r: &redis::RedisResult<T>, what: &str) {
        match r {
            Ok(_) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("cluster usage counters reach Redis again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot {what} cluster usage counters in Redis; local statistics are unaffected");
                }
            }
        }
    }

    /// Add a batch of request-log rows to the cluster counters. Best effort:
    /// a Redis outage loses those counts, never a request or a local row.
    /// The Redis round trip runs in its own task, so the log writer never
    /// waits on Redis; during an outage batches are skipped for 5 s at a
    /// time instead of each waiting for a connect timeout.
    pub fn record(self: &Arc<Self>, rows: &[RequestLog]) {
        if rows.is_empty() || crate::health::wall_ms() < self.retry_after_ms.load(Ordering::Relaxed)
        {
            return;
        }
        let mut sums: HashMap<(i64, &str, &str), Sums> = HashMap::new();
        for r in rows {
            let minute = r.ts_ms - r.ts_ms.rem_euclid(MINUTE_MS);
            let s = sums
                .entry((
                    minute,
                    r.provider.as_deref().unwrap_or(""),
                    r.model.as_deref().unwrap_or(""),
                ))
                .or_default();
            s.requests += 1;
            s.errors += i64::from(r.status >= 400);
            s.prompt += r.prompt_tokens.unwrap_or(0) as i64;
            s.completion += r.completion_tokens.unwrap_or(0) as i64;
            s.latency_us += (r.latency_ms * 1000.0) as i64;
            s.cost += i64::try_from(r.cost_micros.unwrap_or(0)).unwrap_or(i64::MAX);
        }
        let mut pipe = redis::pipe();
        let mut minutes = Vec::new();
        for ((minute, provider, model), s) in &sums {
            let key = format!("{PREFIX}{minute}");
            for (metric, v) in [
                ("r", s.requests),
                ("e", s.errors),
                ("p", s.prompt),
                ("c", s.completion),
                ("l", s.latency_us),
                ("m", s.cost),
            ] {
                if v != 0 {
                    pipe.hincr(&key, format!("{metric}{SEP}{provider}{SEP}{model}"), v)
                        .ignore();
                }
            }
            if !minutes.contains(minute) {
                minutes.push(*minute);
                pipe.pexpire(&key, KEEP_MS).ignore();
            }
        }
        pipe.hset(INSTANCES, &self.instance, crate::health::wall_ms())
            .ignore();
        let me = self.clone();
        tokio::spawn(async move {
            let result: redis::RedisResult<()> = match me.conn() {
                Ok(mut c) => pipe.query_async(&mut c).await,
                Err(e) => Err(e),
            };
            if result.is_err() {
                me.retry_after_ms
                    .store(crate::health::wall_ms() + 5_000, Ordering::Relaxed);
            }
            me.outcome(&result, "update");
        });
    }

    /// The same rows `/api/stats` gives per instance, summed over every
    /// instance (p50/p95 are `None`: counters cannot give them). The window
    /// defaults to the last 24 hours and is capped to the 8 days kept.
    pub async fn query(&self, q: &UsageQuery) -> Result<(Vec<UsageRow>, usize), String> {
        let now = crate::health::wall_ms() as i64;
        let until = q.until_ms.unwrap_or(now + MINUTE_MS);
        let since = q
            .since_ms
            .unwrap_or(until - 86_400_000)
            .max(until - KEEP_MS);
        let group = q.group_by.as_deref().map(str::trim).unwrap_or("");
        let bucket_ms = q
            .bucket_secs
            .filter(|s| *s > 0)
            .map(|s| i64::from(s) * 1000);
        let first = since - since.rem_euclid(MINUTE_MS);
        let minutes: Vec<i64> = (0..)
            .map(|i| first + i * MINUTE_MS)
            .take_while(|m| *m < until)
            .collect();
        let mut pipe = redis::pipe();
        for m in &minutes {
            pipe.hgetall(format!("{PREFIX}{m}"));
        }
        pipe.hgetall(INSTANCES);
        // An admin request waits here: bounded, so a Redis outage answers
        // an error quickly instead of waiting out the reconnect backoff.
        let result: redis::RedisResult<Vec<HashMap<String, i64>>> = match self.conn() {
            Ok(mut c) => tokio::time::timeout(QUERY_TIMEOUT, pipe.query_async(&mut c))
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "no answer within 3 s",
                    )))
                }),
            Err(e) => Err(e),
        };
        self.outcome(&result, "read");
        let mut maps = result.map_err(|e| format!("Redis: {e}"))?;
        let seen = maps.pop().unwrap_or_default();
        // Instances that wrote in the last 5 minutes.
        let instances = seen.values().filter(|&&t| t >= now - 300_000).count();
        let mut out: BTreeMap<(i64, Option<String>), Sums> = BTreeMap::new();
        for (minute, fields) in minutes.iter().zip(maps) {
            // A minute counts when it starts inside the window.
            if *minute < since {
                continue;
            }
            let bucket = match bucket_ms {
                Some(b) => minute - minute.rem_euclid(b),
                None => since,
            };
            for (field, v) in fields {
                let mut parts = field.splitn(3, SEP);
                let (Some(metric), Some(provider), Some(model)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let key = match group {
                    "provider" => Some(provider.to_string()).filter(|p| !p.is_empty()),
                    "model" => Some(model.to_string()).filter(|m| !m.is_empty()),
                    _ => None,
                };
                let s = out.entry((bucket, key)).or_default();
                match metric {
                    "r" => s.requests += v,
                    "e" => s.errors += v,
                    "p" => s.prompt += v,
                    "c" => s.completion += v,
                    "l" => s.latency_us += v,
                    "m" => s.cost += v,
                    _ => {}
                }
            }
        }
        let rows = out
            .into_iter()
            .filter(|(_, s)| s.requests > 0)
            .map(|((bucket, group), s)| UsageRow {
                bucket_start_ms: bucket,
                group,
                requests: s.requests as u64,
                errors: s.errors.max(0) as u64,
                prompt_tokens: s.prompt.max(0) as u64,
                completion_tokens: s.completion.max(0) as u64,
                // Token classes stay per instance; cost is summed.
                cached_tokens: 0,
                cache_write_tokens: 0,
                reasoning_tokens: 0,
                cost_micros: s.cost.max(0) as u64,
                avg_latency_ms: s.latency_us as f64 / 1000.0 / s.requests as f64,
                p50_latency_ms: None,
                p95_latency_ms: None,
            })
            .collect();
        Ok((rows, instances))
    }
}
