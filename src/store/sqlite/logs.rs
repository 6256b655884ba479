//! Request logs: batched inserts, filtered keyset pages, usage aggregates
//! and retention pruning.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, TransactionBehavior};

use super::SqliteStore;
use crate::store::{
    KeySpend, LogEntry, LogPage, LogQuery, RequestLog, StoreError, UsageQuery, UsageRow,
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

const LOG_COLUMNS: &str =
    "id, ts_ms, request_id, api, method, path, model, provider, key, status, \
     outcome, attempts, stream, latency_ms, ttfb_ms, prompt_tokens, completion_tokens, \
     cached_tokens, error, upstream_model, instance, client_key, cache_write_tokens, \
     cache_write_1h_tokens, reasoning_tokens, cost_micros, client_key_id";

impl SqliteStore {
    /// Insert a batch in one transaction (one fsync for the whole batch).
    /// The rows' `id` is ignored; the database assigns it.
    pub async fn insert_logs(
        &self,
        rows: impl Into<std::sync::Arc<Vec<RequestLog>>>,
    ) -> Result<(), StoreError> {
        let rows = rows.into();
        if rows.is_empty() {
            return Ok(());
        }
        let instance = self.inner.instance.clone();
        self.call(move |c| insert_rows(c, &rows, &instance)).await
    }

    /// One page of logs matching every given filter, newest (highest id) first.
    pub async fn query_logs(&self, q: LogQuery) -> Result<LogPage, StoreError> {
        self.call(move |c| query_page(c, &q)).await
    }

    /// Request counts, errors, tokens and latency per time bucket and group.
    /// Rows come ordered by bucket then group. An unknown `group_by` is a
    /// `NotFound` naming the accepted values.
    pub async fn usage(&self, q: UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        self.call(move |c| usage_rows(c, &q)).await
    }

    /// Tokens and cost per client key id since `since_ms`.
    pub async fn spend_by_key(&self, since_ms: i64) -> Result<Vec<KeySpend>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT client_key_id,
                        COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0),
                        COALESCE(SUM(cost_micros), 0)
                 FROM request_logs WHERE client_key_id IS NOT NULL AND ts_ms >= ?1
                 GROUP BY client_key_id",
            )?;
            let rows = stmt.query_map([since_ms], |r| {
                Ok(KeySpend {
                    key_id: r.get(0)?,
                    tokens: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    cost_micros: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Delete logs with `ts_ms < before_ms`; returns how many were deleted.
    pub async fn prune_logs(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_in_chunks(
            "DELETE FROM request_logs WHERE id IN
             (SELECT id FROM request_logs WHERE ts_ms < ?1 LIMIT ?2)",
            before_ms,
        )
        .await
    }
}

impl SqliteStore {
    /// Keep at most the newest `keep` rows; returns rows deleted. Deletes
    /// in chunks like [`SqliteStore::prune_logs`].
    pub async fn prune_logs_to(&self, keep: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX).max(1);
        // The id of the oldest row to keep; ids only grow.
        self.delete_in_chunks(
            "DELETE FROM request_logs WHERE id IN
             (SELECT id FROM request_logs
              WHERE id < (SELECT id FROM request_logs ORDER BY id DESC LIMIT 1 OFFSET ?1 - 1)
              ORDER BY id LIMIT ?2)",
            keep,
        )
        .await
    }
}

/// u64 counters into SQLite's signed integers; real values never come near
/// the limit, so saturating is enough.
fn to_sql_u64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// SQLite stores NaN as NULL, which the NOT NULL column would reject and
/// with it the whole batch; a bogus timing is not worth losing the batch.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Rows inserted between two `sched_yield`s. A batch under load is ~1,000
/// rows and several milliseconds of CPU; this thread runs at nice 10
/// (`schema::lower_priority`), but the scheduler (EEVDF) still gives it
/// whole slices of a few milliseconds once its turn comes, and on a core
/// shared with the request thread every request that arrived meanwhile
/// waited that long: the p99 at concurrency 32 was that slice. Yielding
/// every few dozen rows (~0.2 ms) hands the core back to the requests.
const YIELD_EVERY: usize = 32;

fn insert_rows(c: &mut Connection, rows: &[RequestLog], instance: &str) -> Result<(), StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO request_logs (ts_ms, request_id, api, method, path, model, provider, \
             key, status, outcome, attempts, stream, latency_ms, ttfb_ms, prompt_tokens, \
             completion_tokens, cached_tokens, error, upstream_model, instance, client_key, \
             cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_micros, client_key_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, \
             ?22, ?23, ?24, ?25, ?26)",
        )?;
        for (i, r) in rows.iter().enumerate() {
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                // See YIELD_EVERY.
                std::thread::yield_now();
            }
            stmt.execute(params![
                r.ts_ms,
                r.request_id,
                r.api,
                r.method,
                r.path,
                r.model,
                r.provider,
                r.key,
                r.status,
                r.outcome,
                r.attempts,
                r.stream,
                finite(r.latency_ms),
                r.ttfb_ms.filter(|v| v.is_finite()),
                to_sql_u64(r.prompt_tokens),
                to_sql_u64(r.completion_tokens),
                to_sql_u64(r.cached_tokens),
                r.error,
                r.upstream_model,
                instance,
                r.client_key,
                to_sql_u64(r.cache_write_tokens),
                to_sql_u64(r.cache_write_1h_tokens),
                to_sql_u64(r.reasoning_tokens),
                to_sql_u64(r.cost_micros),
                r.client_key_id,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn log_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogEntry> {
    let row = RequestLog {
        id: r.get(0)?,
        ts_ms: r.get(1)?,
        request_id: r.get(2)?,
        api: r.get(3)?,
        method: r.get(4)?,
        path: r.get(5)?,
        model: r.get(6)?,
        provider: r.get(7)?,
        key: r.get(8)?,
        status: r.get(9)?,
        outcome: r.get(10)?,
        attempts: r.get(11)?,
        stream: r.get(12)?,
        latency_ms: r.get(13)?,
        ttfb_ms: r.get(14)?,
        prompt_tokens: r.get(15)?,
        completion_tokens: r.get(16)?,
        cached_tokens: r.get(17)?,
        error: r.get(18)?,
        upstream_model: r.get(19)?,
        client_key: r.get(21)?,
        cache_write_tokens: r.get(22)?,
        cache_write_1h_tokens: r.get(23)?,
        reasoning_tokens: r.get(24)?,
        cost_micros: r.get(25)?,
        client_key_id: r.get(26)?,
    };
    Ok(LogEntry {
        row,
        instance: r.get(20)?,
    })
}

/// Appends `value` to the parameters and returns its placeholder.
fn bind(params: &mut Vec<Sql>, value: Sql) -> String {
    params.push(value);
    format!("?{}", params.len())
}

/// `WHERE` conditions for the time range; shared by logs and usage.
fn time_range(
    conds: &mut Vec<String>,
    params: &mut Vec<Sql>,
    since: Option<i64>,
    until: Option<i64>,
) {
    if let Some(since) = since {
        conds.push(format!("ts_ms >= {}", bind(params, Sql::Integer(since))));
    }
    if let Some(until) = until {
        conds.push(format!("ts_ms < {}", bind(params, Sql::Integer(until))));
    }
}

fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

fn query_page(c: &Connection, q: &LogQuery) -> Result<LogPage, StoreError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    // Only present filters become SQL, so each shape can use its index; the
    // handful of shapes fit in the statement cache.
    let mut conds = Vec::new();
    let mut params = Vec::new();
    if let Some(p) = &q.provider {
        conds.push(format!(
            "provider = {}",
            bind(&mut params, Sql::Text(p.clone()))
        ));
    }
    if let Some(m) = &q.model {
        conds.push(format!(
            "model = {}",
            bind(&mut params, Sql::Text(m.clone()))
        ));
    }
    if let Some(s) = q.status {
        conds.push(format!(
            "status = {}",
            bind(&mut params, Sql::Integer(s.into()))
        ));
    }
    if let Some(s) = q.min_status {
        conds.push(format!(
            "status >= {}",
            bind(&mut params, Sql::Integer(s.into()))
        ));
    }
    time_range(&mut conds, &mut params, q.since_ms, q.until_ms);
    if let Some(id) = q.before_id {
        conds.push(format!("id < {}", bind(&mut params, Sql::Integer(id))));
    }
    // One extra row tells whether another page exists.
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM request_logs{} ORDER BY id DESC LIMIT {}",
        where_clause(&conds),
        bind(&mut params, Sql::Integer(i64::from(limit) + 1)),
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut items = stmt
        .query_map(params_from_iter(params), log_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let next_before_id = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().and_then(|r| r.row.id)
    } else {
        None
    };
    Ok(LogPage {
        items,
        next_before_id,
    })
}

fn usage_rows(c: &Connection, q: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
    let group = match q.group_by.as_deref().map(str::trim) {
        None | Some("") | Some("none") => "NULL",
        Some("provider") => "provider",
        Some("model") => "model",
        Some("key") => "client_key",
        Some(other) => {
            return Err(StoreError::NotFound(format!(
                "unknown usage grouping `{other}`: use `provider`, `model` or `key`"
            )))
        }
    };
    let mut params = Vec::new();
    let bucket_ms = q
        .bucket_secs
        .filter(|s| *s > 0)
        .map(|s| i64::from(s) * 1000);
    let bucket = match bucket_ms {
        // Floor to the bucket (a plain % would round negative times up).
        Some(ms) => {
            let b = bind(&mut params, Sql::Integer(ms));
            format!("ts_ms - (((ts_ms % {b}) + {b}) % {b})")
        }
        None => "0".to_owned(),
    };
    let mut conds = Vec::new();
    time_range(&mut conds, &mut params, q.since_ms, q.until_ms);
    // The median comes from a window ranking inside each (bucket, group):
    // the middle row, or the mean of the two middle rows.
    let sql = format!(
        "WITH base AS (
             SELECT {bucket} AS bucket, {group} AS grp, ts_ms, status,
                    prompt_tokens, completion_tokens, latency_ms, cached_tokens,
                    cache_write_tokens, reasoning_tokens, cost_micros
             FROM request_logs{}
         ),
         ranked AS (
             SELECT bucket, grp, latency_ms,
                    ROW_NUMBER() OVER (PARTITION BY bucket, grp ORDER BY latency_ms) AS rn,
                    COUNT(*) OVER (PARTITION BY bucket, grp) AS cnt
             FROM base
         ),
         med AS (
             SELECT bucket, grp, AVG(latency_ms) AS p50 FROM ranked
             WHERE rn = (cnt + 1) / 2 OR rn = (cnt + 2) / 2
             GROUP BY bucket, grp
         ),
         p95 AS (
             -- Nearest-rank 95th percentile: the ceil(0.95 * n)-th row.
             SELECT bucket, grp, latency_ms AS p95 FROM ranked
             WHERE rn = (95 * cnt + 99) / 100
         ),
         agg AS (
             SELECT bucket, grp, COUNT(*) AS requests, SUM(status >= 400) AS errors,
                    COALESCE(SUM(prompt_tokens), 0) AS prompt,
                    COALESCE(SUM(completion_tokens), 0) AS completion,
                    AVG(latency_ms) AS avg_latency, MIN(ts_ms) AS first_ts,
                    COALESCE(SUM(cached_tokens), 0) AS cached,
                    COALESCE(SUM(cache_write_tokens), 0) AS cache_write,
                    COALESCE(SUM(reasoning_tokens), 0) AS reasoning,
                    COALESCE(SUM(cost_micros), 0) AS cost
             FROM base GROUP BY bucket, grp
         )
         SELECT agg.bucket, agg.grp, agg.requests, agg.errors, agg.prompt, agg.completion,
                agg.avg_latency, agg.first_ts, med.p50, p95.p95,
                agg.cached, agg.cache_write, agg.reasoning, agg.cost
         FROM agg LEFT JOIN med ON med.bucket = agg.bucket AND med.grp IS agg.grp
                  LEFT JOIN p95 ON p95.bucket = agg.bucket AND p95.grp IS agg.grp
         ORDER BY agg.bucket, agg.grp",
        where_clause(&conds)
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<f64>>(6)?,
            r.get::<_, i64>(7)?,
            r.get::<_, Option<f64>>(8)?,
            r.get::<_, Option<f64>>(9)?,
            [
                r.get::<_, i64>(10)?,
                r.get::<_, i64>(11)?,
                r.get::<_, i64>(12)?,
                r.get::<_, i64>(13)?,
            ],
        ))
    })?;
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut out = Vec::new();
    let mut oldest: Option<i64> = None;
    for row in rows {
        let (bucket, grp, requests, errors, prompt, completion, avg, first, p50, p95, more) = row?;
        let [cached, cache_write, reasoning, cost] = more;
        oldest = Some(oldest.map_or(first, |o| o.min(first)));
        out.push(UsageRow {
            bucket_start_ms: bucket,
            group: grp,
            requests: count(requests),
            errors: count(errors.unwrap_or(0)),
            prompt_tokens: count(prompt),
            completion_tokens: count(completion),
            cached_tokens: count(cached),
            cache_write_tokens: count(cache_write),
            reasoning_tokens: count(reasoning),
            cost_micros: count(cost),
            avg_latency_ms: avg.unwrap_or(0.0),
            p50_latency_ms: p50,
            p95_latency_ms: p95,
        });
    }
    if bucket_ms.is_none() {
        // A single bucket starts at the range start, or at the oldest row
        // when the range is open.
        let start = q.since_ms.or(oldest).unwrap_or(0);
        for row in &mut out {
            row.bucket_start_ms = start;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:///{}", dir.path().join("logs.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, store)
    }

    const PROVIDERS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
    const MODELS: [&str; 5] = ["m1", "m2", "m3", "m4", "m5"];

    fn sample(i: u32) -> RequestLog {
        let status = match i {
            _ if i.is_multiple_of(10) => 500,
            _ if i.is_multiple_of(7) => 429,
            _ if i.is_multiple_of(13) => 404,
            _ => 200,
        };
        RequestLog {
            id: None,
            ts_ms: 1_700_000_000_000 + i64::from(i) * 1000,
            request_id: format!("req-{i}"),
            api: if i.is_multiple_of(2) {
                "openai"
            } else {
                "anthropic"
            }
            .into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            model: (!i.is_multiple_of(11)).then(|| MODELS[i as usize % 5].to_string()),
            provider: Some(PROVIDERS[i as usize % 4].to_string()),
            key: Some(format!("sk-...{:04}", i % 3)),
            status,
            outcome: if status < 400 { "ok" } else { "upstream_error" }.into(),
            attempts: 1 + i % 3,
            stream: i.is_multiple_of(3),
            latency_ms: f64::from(i % 100) + 0.25,
            ttfb_ms: i.is_multiple_of(2).then(|| f64::from(i % 50) + 0.5),
            prompt_tokens: (i % 4 != 3).then_some(u64::from(i % 1000)),
            completion_tokens: Some(u64::from(i % 500)),
            cached_tokens: i.is_multiple_of(5).then_some(7),
            error: (status >= 400).then(|| format!("failure {i}")),
            upstream_model: None,
            client_key: None,
            cache_write_tokens: i.is_multiple_of(6).then_some(3),
            cache_write_1h_tokens: i.is_multiple_of(6).then_some(1),
            reasoning_tokens: i.is_multiple_of(4).then_some(2),
            cost_micros: (i % 4 != 3).then_some(u64::from(i) * 10),
            client_key_id: i.is_multiple_of(2).then_some(i64::from(i % 3)),
        }
    }

    /// Follow `next_before_id` to the end, checking the page invariants.
    async fn walk(store: &SqliteStore, mut q: LogQuery) -> Vec<RequestLog> {
        let mut all: Vec<RequestLog> = Vec::new();
        loop {
            let page = store.query_logs(q.clone()).await.unwrap();
            let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
            assert!(page.items.len() <= limit);
            match page.next_before_id {
                Some(next) => {
                    assert_eq!(page.items.len(), limit, "only full pages have a cursor");
                    assert_eq!(Some(next), page.items.last().and_then(|r| r.row.id));
                    all.extend(page.items.into_iter().map(|e| e.row));
                    q.before_id = Some(next);
                }
                None => {
                    all.extend(page.items.into_iter().map(|e| e.row));
                    return all;
                }
            }
        }
    }

    type Filter = Box<dyn Fn(&RequestLog) -> bool>;

    #[tokio::test]
    async fn ten_thousand_rows_filter_and_paginate() {
        let (_dir, store) = open_temp().await;
        let rows: Vec<RequestLog> = (0..10_000).map(sample).collect();
        let started = std::time::Instant::now();
        store.insert_logs(rows.clone()).await.unwrap();
        eprintln!("inserted 10k rows in {:?}", started.elapsed());
        store.insert_logs(vec![]).await.unwrap();

        // A fresh table numbers rows 1.. in insertion order.
        let stored: Vec<RequestLog> = rows
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.id = Some(i as i64 + 1);
                r
            })
            .collect();
        let expect = |keep: &dyn Fn(&RequestLog) -> bool| -> Vec<RequestLog> {
            stored.iter().rev().filter(|r| keep(r)).cloned().collect()
        };

        // Default page: 50 newest, full round trip of every field.
        let page = store.query_logs(LogQuery::default()).await.unwrap();
        let rows: Vec<RequestLog> = page.items.into_iter().map(|e| e.row).collect();
        assert_eq!(rows, expect(&|_| true)[..50]);
        assert_eq!(page.next_before_id, Some(10_000 - 49));

        let cases: Vec<(LogQuery, Filter)> = vec![
            (
                LogQuery {
                    limit: Some(1000),
                    ..Default::default()
                },
                Box::new(|_| true),
            ),
            (
                LogQuery {
                    provider: Some("beta".into()),
                    limit: Some(333),
                    ..Default::default()
                },
                Box::new(|r| r.provider.as_deref() == Some("beta")),
            ),
            (
                LogQuery {
                    model: Some("m3".into()),
                    limit: Some(500),
                    ..Default::default()
                },
                Box::new(|r| r.model.as_deref() == Some("m3")),
            ),
            (
                LogQuery {
                    status: Some(429),
                    limit: Some(100),
                    ..Default::default()
                },
                Box::new(|r| r.status == 429),
            ),
            (
                LogQuery {
                    min_status: Some(400),
                    limit: Some(1000),
                    ..Default::default()
                },
                Box::new(|r| r.status >= 400),
            ),
            (
                LogQuery {
                    since_ms: Some(1_700_000_000_000 + 2_500_000),
                    until_ms: Some(1_700_000_000_000 + 4_000_000),
                    limit: Some(200),
                    ..Default::default()
                },
                Box::new(|r| (1_700_002_500_000..1_700_004_000_000).contains(&r.ts_ms)),
            ),
            (
                LogQuery {
                    provider: Some("alpha".into()),
                    model: Some("m1".into()),
                    min_status: Some(400),
                    since_ms: Some(1_700_000_000_000 + 1_000_000),
                    limit: Some(7),
                    ..Default::default()
                },
                Box::new(|r| {
                    r.provider.as_deref() == Some("alpha")
                        && r.model.as_deref() == Some("m1")
                        && r.status >= 400
                        && r.ts_ms >= 1_700_001_000_000
                }),
            ),
            (
                LogQuery {
                    provider: Some("nobody".into()),
                    ..Default::default()
                },
                Box::new(|_| false),
            ),
        ];
        for (q, keep) in cases {
            let want = expect(keep.as_ref());
            let got = walk(&store, q.clone()).await;
            assert_eq!(got.len(), want.len(), "{q:?}");
            assert!(got == want, "{q:?}: rows differ");
        }

        // Starting from a cursor skips everything at or above it.
        let page = store
            .query_logs(LogQuery {
                before_id: Some(5001),
                limit: Some(3),
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = page.items.iter().filter_map(|r| r.row.id).collect();
        assert_eq!(ids, [5000, 4999, 4998]);
        assert_eq!(page.next_before_id, Some(4998));

        // Limits are clamped to 1..=1000.
        let big = store
            .query_logs(LogQuery {
                limit: Some(50_000),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(big.items.len(), 1000);
        let tiny = store
            .query_logs(LogQuery {
                limit: Some(0),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(tiny.items.len(), 1);
    }

    fn at(
        ts_ms: i64,
        provider: &str,
        model: &str,
        status: u16,
        latency_ms: f64,
        tokens: u64,
    ) -> RequestLog {
        RequestLog {
            ts_ms,
            provider: Some(provider.into()),
            model: Some(model.into()),
            status,
            latency_ms,
            prompt_tokens: Some(tokens),
            completion_tokens: Some(tokens * 2),
            cost_micros: Some(tokens * 100),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn retention_by_count_keeps_the_newest_rows() {
        let (_dir, store) = open_temp().await;
        store
            .insert_logs((0..25).map(sample).collect::<Vec<_>>())
            .await
            .unwrap();
        assert_eq!(store.prune_logs_to(10).await.unwrap(), 15);
        let page = store
            .query_logs(LogQuery {
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 10);
        assert_eq!(
            page.items.last().map(|r| r.row.request_id.as_str()),
            Some("req-15"),
            "the oldest kept"
        );
        assert_eq!(store.prune_logs_to(10).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn usage_buckets_and_groups() {
        let (_dir, store) = open_temp().await;
        let base = 1_700_000_020_000; // 40 s into a minute
        store
            .insert_logs(vec![
                at(base, "a", "m1", 200, 10.0, 1),
                at(base + 5_000, "a", "m2", 500, 30.0, 2),
                at(base + 10_000, "b", "m1", 200, 20.0, 3),
                at(base + 25_000, "a", "m1", 429, 40.0, 4), // next minute
                at(base + 30_000, "b", "m2", 200, 50.0, 5),
                RequestLog {
                    ts_ms: base + 90_000,
                    status: 200,
                    latency_ms: 5.0,
                    ..Default::default()
                },
            ])
            .await
            .unwrap();
        let minute0 = base - 40_000;

        // One bucket over everything: starts at the oldest row.
        let all = store.usage(UsageQuery::default()).await.unwrap();
        assert_eq!(
            all,
            [UsageRow {
                bucket_start_ms: base,
                group: None,
                requests: 6,
                errors: 2,
                prompt_tokens: 15,
                completion_tokens: 30,
                cached_tokens: 0,
                cache_write_tokens: 0,
                reasoning_tokens: 0,
                cost_micros: 1500,
                avg_latency_ms: 155.0 / 6.0,
                p50_latency_ms: Some(25.0),
                // Nearest rank: ceil(0.95 * 6) = the 6th of 5, 10, 20, 30, 40, 50.
                p95_latency_ms: Some(50.0),
            }]
        );

        // Minute buckets.
        let per_min = store
            .usage(UsageQuery {
                bucket_secs: Some(60),
                ..Default::default()
            })
            .await
            .unwrap();
        let summary: Vec<_> = per_min
            .iter()
            .map(|r| {
                (
                    r.bucket_start_ms - minute0,
                    r.requests,
                    r.errors,
                    r.prompt_tokens,
                    r.p50_latency_ms,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, 3, 1, 6, Some(20.0)),
                (60_000, 2, 1, 9, Some(45.0)),
                (120_000, 1, 0, 0, Some(5.0)),
            ]
        );

        // Minute buckets by provider, limited to the first two minutes.
        let grouped = store
            .usage(UsageQuery {
                since_ms: Some(minute0),
                until_ms: Some(minute0 + 120_000),
                bucket_secs: Some(60),
                group_by: Some("provider".into()),
                scope: None,
            })
            .await
            .unwrap();
        let summary: Vec<_> = grouped
            .iter()
            .map(|r| {
                (
                    r.bucket_start_ms - minute0,
                    r.group.as_deref(),
                    r.requests,
                    r.errors,
                    r.completion_tokens,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, Some("a"), 2, 1, 6),
                (0, Some("b"), 1, 0, 6),
                (60_000, Some("a"), 1, 1, 8),
                (60_000, Some("b"), 1, 0, 10),
            ]
        );

        // One bucket by model, starting at since_ms; the model-less row is
        // its own group.
        let by_model = store
            .usage(UsageQuery {
                since_ms: Some(minute0),
                group_by: Some("model".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let summary: Vec<_> = by_model
            .iter()
            .map(|r| {
                (
                    r.bucket_start_ms,
                    r.group.as_deref(),
                    r.requests,
                    r.avg_latency_ms,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (minute0, None, 1, 5.0),
                (minute0, Some("m1"), 3, 70.0 / 3.0),
                (minute0, Some("m2"), 2, 40.0),
            ]
        );

        let empty = store
            .usage(UsageQuery {
                since_ms: Some(0),
                until_ms: Some(1),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(empty.is_empty());
        let err = store
            .usage(UsageQuery {
                group_by: Some("key; DROP TABLE x".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)));
    }

    #[tokio::test]
    async fn prune_deletes_only_old_rows() {
        let (_dir, store) = open_temp().await;
        // More than one prune chunk.
        let rows: Vec<RequestLog> = (0..12_000)
            .map(|i| RequestLog {
                ts_ms: i,
                ..Default::default()
            })
            .collect();
        store.insert_logs(rows).await.unwrap();
        assert_eq!(store.prune_logs(11_000).await.unwrap(), 11_000);
        assert_eq!(store.prune_logs(11_000).await.unwrap(), 0);
        let left = walk(
            &store,
            LogQuery {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(left.len(), 1000);
        assert!(left.iter().all(|r| r.ts_ms >= 11_000));

        // Emptying the table does not make ids (cursors) restart.
        assert_eq!(store.prune_logs(i64::MAX).await.unwrap(), 1000);
        store
            .insert_logs(vec![RequestLog {
                ts_ms: 1,
                ..Default::default()
            }])
            .await
            .unwrap();
        let page = store.query_logs(LogQuery::default()).await.unwrap();
        assert_eq!(page.items[0].row.id, Some(12_001));
    }

    #[tokio::test]
    async fn non_finite_timings_do_not_sink_a_batch() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store
            .insert_logs(vec![
                RequestLog {
                    latency_ms: f64::NAN,
                    ttfb_ms: Some(f64::INFINITY),
                    ..Default::default()
                },
                RequestLog::default(),
            ])
            .await
            .unwrap();
        let page = store.query_logs(LogQuery::default()).await.unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[1].row.latency_ms, 0.0);
        assert_eq!(page.items[1].row.ttfb_ms, None);
    }
}
