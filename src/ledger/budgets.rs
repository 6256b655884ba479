//! Token and cost budgets of client keys, per UTC day, UTC month or in
//! total.
//!
//! Spend is kept in memory per key and period (no database access on the
//! request path) and, when Redis is on, in one Redis hash per key and
//! period (`HINCRBY` after each request, off the request path). Before a
//! request of a key that has budgets, one pipelined `HMGET` reads the
//! cluster's spend, bounded by [`REDIS_TIMEOUT`]; the instance's own
//! counter is the floor (a flushed or unreachable Redis never lowers the
//! spend), so a Redis outage degrades to per-instance budgets and never
//! fails a request. The spend of the current periods is reloaded from the
//! request log once at start ([`Budgets::preload`]).

use crate::control::redis::SharedRedis;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long the check before a request waits for Redis.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
const PREFIX: &str = "llm-orchestrator:budget:";
/// Redis keeps a period's counters this long past its start (a day's for
/// two days, a month's for 40 days; totals for ever).
const DAY_MS: i64 = 86_400_000;
/// Most budgets one key may have (one per period).
pub const MAX_BUDGETS: usize = 3;
/// A cost budget above this (USD) is a typo.
const MAX_COST_USD: f64 = 1e9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// The UTC calendar day.
    Day,
    /// The UTC calendar month.
    Month,
    /// Since the key was created.
    Total,
}

impl Period {
    fn adjective(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Month => "monthly",
            Period::Total => "total",
        }
    }

    /// Start of the period holding `now_ms` (Unix ms, UTC); 0 for `Total`.
    pub fn start(self, now_ms: i64) -> i64 {
        let day = now_ms.div_euclid(DAY_MS);
        match self {
            Period::Day => day * DAY_MS,
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1) * DAY_MS
            }
            Period::Total => 0,
        }
    }

    /// Start of the next period (for `Retry-After`); `None` for `Total`.
    pub fn next_start(self, now_ms: i64) -> Option<i64> {
        match self {
            Period::Day => Some(self.start(now_ms) + DAY_MS),
            Period::Month => {
                let (y, m, _) = civil_from_days(now_ms.div_euclid(DAY_MS));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Some(days_from_civil(y, m, 1) * DAY_MS)
            }
            Period::Total => None,
        }
    }

    fn keep_ms(self) -> Option<i64> {
        match self {
            Period::Day => Some(2 * DAY_MS),
            Period::Month => Some(40 * DAY_MS),
            Period::Total => None,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `5.00`, `0.001`: cents always, more digits only when the amount has them.
fn usd(c: f64) -> String {
    let cents = format!("{c:.2}");
    match cents.parse::<f64>() {
        Ok(v) if (v - c).abs() < 1e-9 => cents,
        _ => format!("{c}"),
    }
}

/// One budget of a client key, as stored in its document (`keys::KeyDoc`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub period: Period,
    /// Prompt plus completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// US dollars, as priced by the price table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Budget {
    fn cost_micros(&self) -> Option<u64> {
        self.cost_usd.map(|c| (c * 1_000_000.0).round() as u64)
    }
}

/// The first problem with a key's budgets, as a reason.
pub fn check_budgets(budgets: &[Budget]) -> Result<(), String> {
    if budgets.len() > MAX_BUDGETS {
        return Err(format!("at most {MAX_BUDGETS} budgets (one per period)"));
    }
    for (i, b) in budgets.iter().enumerate() {
        if budgets[..i].iter().any(|o| o.period == b.period) {
            return Err("at most one budget per period (day, month, total)".into());
        }
        if b.tokens.is_none() && b.cost_usd.is_none() {
            return Err("each budget needs `tokens`, `cost_usd` or both".into());
        }
        if b.cost_usd
            .is_some_and(|c| !(c.is_finite() && (0.0..=MAX_COST_USD).contains(&c)))
        {
            return Err(format!("cost_usd must be between 0 and {MAX_COST_USD}"));
        }
    }
    Ok(())
}

/// Tokens and micro-dollars spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    pub tokens: u64,
    pub micros: u64,
}

impl Spend {
    fn max(self, o: Spend) -> Spend {
        Spend {
            tokens: self.tokens.max(o.tokens),
            micros: self.micros.max(o.micros),
        }
    }
}

/// An exhausted budget: the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    pub message: String,
    /// Seconds to the next period; `None` for a total budget.
    pub retry_after_secs: Option<u64>,
}

/// One key's spend by this instance in the current periods.
#[derive(Debug, Clone, Copy, Default)]
struct KeySpend {
    /// (period start, spend) for the day and the month; a start that is not
    /// the current one means nothing spent in the current period yet.
    day: (i64, Spend),
    month: (i64, Spend),
    total: Spend,
}

impl KeySpend {
    fn slot(&mut self, period: Period, start: i64) -> &mut Spend {
        let (at, spend) = match period {
            Period::Day => &mut self.day,
            Period::Month => &mut self.month,
            Period::Total => return &mut self.total,
        };
        if *at != start {
            // A new period: what was counted belongs to the old one.
            *at = start;
            *spend = Spend::default();
        }
        spend
    }

    fn get(&self, period: Period, start: i64) -> Spend {
        match period {
            Period::Day if self.day.0 == start => self.day.1,
            Period::Month if self.month.0 == start => self.month.1,
            Period::Total => self.total,
            _ => Spend::default(),
        }
    }

    fn add(&mut self, spend: Spend, now_ms: i64) {
        for p in [Period::Day, Period::Month, Period::Total] {
            let e = self.slot(p, p.start(now_ms));
            e.tokens = e.tokens.saturating_add(spend.tokens);
            e.micros = e.micros.saturating_add(spend.micros);
        }
    }
}

/// Spend of every key and period.
#[derive(Default)]
pub struct Budgets {
    /// Key id -> spend by this instance in the current periods (plus what
    /// was reloaded from the request log at start). One entry per key, so
    /// a request settles with one lookup. Kept for keys without budgets
    /// too: a budget added to a key later starts from what the key has
    /// already spent in the period.
    local: Mutex<HashMap<i64, KeySpend>>,
    redis: OnceLock<Arc<SharedRedis>>,
    /// While Redis fails, checks do not wait for it before this wall-clock
    /// ms (a request must not pay [`REDIS_TIMEOUT`] during an outage).
    redis_retry_ms: std::sync::atomic::AtomicI64,
}

/// How long checks skip a failing Redis.
const REDIS_BACKOFF_MS: i64 = 5_000;

fn redis_key(key_id: i64, period: Period, start: i64) -> String {
    format!("{PREFIX}{key_id}:{period:?}:{start}")
}

/// Keys tracked at most (beyond that only keys with budgets are kept).
const MAX_TRACKED: usize = 100_000;

impl Budgets {
    /// Share spend through this Redis connection from now on.
    pub fn use_redis(&self, redis: Arc<SharedRedis>) {
        let _ = self.redis.set(redis);
    }

    fn local(&self, key_id: i64, period: Period, start: i64) -> Spend {
        self.local
            .lock()
            .ok()
            .and_then(|m| m.get(&key_id).map(|k| k.get(period, start)))
            .unwrap_or_default()
    }

    /// The cluster's spend for these periods (one pipelined round trip), or
    /// `None` when Redis is off, not connected yet, failing or slow.
    async fn cluster(&self, keys: &[String], now_ms: i64) -> Option<Vec<Spend>> {
        use std::sync::atomic::Ordering;
        if now_ms < self.redis_retry_ms.load(Ordering::Relaxed) {
            return None;
        }
        let mut conn = self.redis.get()?.manager_now()?;
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("HMGET").arg(k).arg("t").arg("c");
        }
        let read = tokio::time::timeout(
            REDIS_TIMEOUT,
            pipe.query_async::<Vec<(Option<u64>, Option<u64>)>>(&mut conn),
        )
        .await;
        match read {
            Ok(Ok(v)) => Some(
                v.into_iter()
                    .map(|(t, c)| Spend {
                        tokens: t.unwrap_or(0),
                        micros: c.unwrap_or(0),
                    })
                    .collect(),
            ),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "budget spend not read from redis; using this instance's");
                self.redis_retry_ms
                    .store(now_ms + REDIS_BACKOFF_MS, Ordering::Relaxed);
                None
            }
            Err(_) => {
                self.redis_retry_ms
                    .store(now_ms + REDIS_BACKOFF_MS, Ordering::Relaxed);
                None
            }
        }
    }

    /// May a key with these budgets make another request at `now_ms`?
    pub async fn check(
        &self,
        key_id: i64,
        budgets: &[Budget],
        now_ms: i64,
    ) -> Result<(), Exhausted> {
        if budgets.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = budgets
            .iter()
            .map(|b| redis_key(key_id, b.period, b.period.start(now_ms)))
            .collect();
        let cluster = self.cluster(&keys, now_ms).await;
        for (i, b) in budgets.iter().enumerate() {
            let start = b.period.start(now_ms);
            let mut spent = self.local(key_id, b.period, start);
            if let Some(c) = cluster.as_ref().and_then(|c| c.get(i)) {
                spent = spent.max(*c);
            }
            let what = if b.tokens.is_some_and(|t| spent.tokens >= t) {
                b.tokens.map(|t| format!("token budget of {t} tokens"))
            } else if b.cost_micros().is_some_and(|c| spent.micros >= c) {
                b.cost_usd.map(|c| format!("cost budget of ${}", usd(c)))
            } else {
                None
            };
            if let Some(what) = what {
                return Err(Exhausted {
                    message: format!("{} {what} reached for this key", b.period.adjective()),
                    retry_after_secs: b.period.next_start(now_ms).map(|n| {
                        u64::try_from((n - now_ms).div_euclid(1000))
                            .unwrap_or(0)
                            .max(1)
                    }),
                });
            }
        }
        Ok(())
    }

    /// Count a finished request's spend (called from the request log path,
    /// after the answer went out): locally at once, in Redis in a task of
    /// its own when the key has budgets.
    pub fn settle(&self, key_id: i64, has_budgets: bool, spend: Spend, now_ms: i64) {
        if spend == Spend::default() {
            return;
        }
        if let Ok(mut m) = self.local.lock() {
            if let Some(k) = m.get_mut(&key_id) {
                k.add(spend, now_ms);
            } else if m.len() < MAX_TRACKED || has_budgets {
                // Past the bound only keys with budgets are added.
                m.entry(key_id).or_default().add(spend, now_ms);
            }
        }
        if !has_budgets {
            return;
        }
        let periods = [Period::Day, Period::Month, Period::Total];
        let Some(mut conn) = self.redis.get().and_then(|r| r.manager_now()) else {
            return;
        };
        let mut pipe = redis::pipe();
        for p in periods {
            let k = redis_key(key_id, p, p.start(now_ms));
            pipe.cmd("HINCRBY")
                .arg(&k)
                .arg("t")
                .arg(spend.tokens)
                .ignore();
            pipe.cmd("HINCRBY")
                .arg(&k)
                .arg("c")
                .arg(spend.micros)
                .ignore();
            if let Some(keep) = p.keep_ms() {
                pipe.cmd("PEXPIRE").arg(&k).arg(keep).ignore();
            }
        }
        tokio::spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(2), pipe.query_async::<()>(&mut conn))
                .await;
            if !matches!(r, Ok(Ok(()))) {
                tracing::debug!("budget spend not added in redis; counted on this instance only");
            }
        });
    }

    /// Add the spend found in the request log (once at start, before this
    /// instance writes rows): `rows` are (key id, period, spend) for the
    /// current periods.
    pub fn preload(&self, rows: &[(i64, Period, Spend)], now_ms: i64) {
        if let Ok(mut m) = self.local.lock() {
            for (key_id, p, s) in rows {
                let e = m.entry(*key_id).or_default().slot(*p, p.start(now_ms));
                e.tokens = e.tokens.saturating_add(s.tokens);
                e.micros = e.micros.saturating_add(s.micros);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_calendar_ones() {
        // 2026-03-15T10:00:00Z
        let now = 1_773_568_800_000;
        assert_eq!(Period::Day.start(now), 1_773_532_800_000); // 2026-03-15
        assert_eq!(Period::Month.start(now), 1_772_323_200_000); // 2026-03-01
        assert_eq!(Period::Month.next_start(now), Some(1_775_001_600_000)); // 2026-04-01
                                                                            // December rolls over to January.
        let dec = 1_796_083_200_000; // 2026-12-01
        assert_eq!(Period::Month.start(dec + 5 * DAY_MS), dec);
        assert_eq!(Period::Month.next_start(dec), Some(1_798_761_600_000)); // 2027-01-01
        assert_eq!(Period::Total.start(now), 0);
    }

    #[tokio::test]
    async fn budgets_trip_on_the_request_after_the_limit() {
        let b = Budgets::default();
        let budgets = [Budget {
            period: Period::Month,
            tokens: None,
            cost_usd: Some(0.001),
        }];
        let now = 1_773_568_800_000;
        assert!(b.check(7, &budgets, now).await.is_ok());
        b.settle(
            7,
            true,
            Spend {
                tokens: 10,
                micros: 999,
            },
            now,
        );
        assert!(b.check(7, &budgets, now).await.is_ok());
        b.settle(
            7,
            true,
            Spend {
                tokens: 10,
                micros: 1,
            },
            now,
        );
        let e = b.check(7, &budgets, now).await.unwrap_err();
        assert_eq!(
            e.message,
            "monthly cost budget of $0.001 reached for this key"
        );
        // Another key is not affected; next month starts afresh.
        assert!(b.check(8, &budgets, now).await.is_ok());
        assert!(b.check(7, &budgets, now + 31 * DAY_MS).await.is_ok());
    }

    #[test]
    fn spend_rolls_over_per_period() {
        let b = Budgets::default();
        let now = 1_773_568_800_000; // 2026-03-15T10:00Z
        let spend = |tokens| Spend { tokens, micros: 0 };
        b.settle(3, false, spend(5), now);
        b.settle(3, false, spend(7), now + DAY_MS);
        let day = Period::Day.start(now + DAY_MS);
        let month = Period::Month.start(now);
        assert_eq!(b.local(3, Period::Day, day), spend(7), "a new day");
        assert_eq!(b.local(3, Period::Day, day - DAY_MS), spend(0), "gone");
        assert_eq!(b.local(3, Period::Month, month), spend(12));
        b.settle(3, false, spend(1), now + 20 * DAY_MS); // April
        let april = Period::Month.start(now + 20 * DAY_MS);
        assert_eq!(b.local(3, Period::Month, april), spend(1), "a new month");
        assert_eq!(b.local(3, Period::Total, 0), spend(13));
        assert_eq!(b.local(4, Period::Total, 0), spend(0), "another key");
        // Preloaded rows add to the current periods.
        b.preload(&[(3, Period::Total, spend(100))], now + 20 * DAY_MS);
        assert_eq!(b.local(3, Period::Total, 0), spend(113));
    }

    #[test]
    fn budget_docs_are_checked() {
        let ok = Budget {
            period: Period::Day,
            tokens: Some(5),
            cost_usd: None,
        };
        assert!(check_budgets(std::slice::from_ref(&ok)).is_ok());
        assert!(check_budgets(&[ok.clone(), ok.clone()]).is_err());
        let empty = Budget {
            period: Period::Day,
            tokens: None,
            cost_usd: None,
        };
        assert!(check_budgets(&[empty]).is_err());
        let neg = Budget {
            period: Period::Day,
            tokens: None,
            cost_usd: Some(-1.0),
        };
        assert!(check_budgets(&[neg]).is_err());
    }
}
