//! Request logs and the audit trail on MySQL and PostgreSQL: batched
//! multi-row inserts, keyset pages, usage aggregates with percentiles, and
//! chunked retention — the same results as the SQLite backend.

use sqlx::{QueryBuilder, Row};

use super::{db_error, on_pool, Dialect, Pool, SqlStore};
use crate::store::{
    AuditPage, AuditQuery, AuditRow, KeySpend, LogEntry, LogPage, LogQuery, RequestLog, StoreError,
    UsageQuery, UsageRow,
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;
/// Rows per INSERT statement: 26 parameters each stays far below both
/// servers' 65,535-parameter limit.
const INSERT_CHUNK: usize = 500;
/// Rows per retention DELETE, so one prune does not hold locks for long.
const DELETE_CHUNK: i64 = 5000;
/// `VARCHAR(255)` columns.
const SHORT: usize = 255;
/// `TEXT` columns hold 65,535 bytes in MySQL; 16,000 characters fit at 4
/// bytes each.
const LONG: usize = 16_000;

/// Text as the column takes it: at most `max` characters (MySQL's strict
/// mode refuses longer values, which would sink the whole batch), without
/// NUL (PostgreSQL refuses it in text).
fn text(s: &str, max: usize) -> String {
    s.chars().filter(|c| *c != '\0').take(max).collect()
}

fn opt_text(s: &Option<String>, max: usize) -> Option<String> {
    s.as_deref().map(|s| text(s, max))
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// One usage row as selected: bucket, group, requests, errors, prompt,
/// completion, average latency, oldest time, p50, p95, cached, cache
/// writes, reasoning, cost.
type UsageTuple = (
    i64,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    Option<f64>,
    i64,
    Option<f64>,
    Option<f64>,
    i64,
    i64,
    i64,
    i64,
);

const INSERT_COLUMNS: &str = "ts_ms, request_id, api, method, path, model, provider, key, \
     status, outcome, attempts, stream, latency_ms, ttfb_ms, prompt_tokens, completion_tokens, \
     cached_tokens, error, upstream_model, instance, client_key, cache_write_tokens, \
     cache_write_1h_tokens, reasoning_tokens, cost_micros, client_key_id";

fn log_columns(d: &Dialect) -> String {
    if d.postgres {
        format!("id, {INSERT_COLUMNS}")
    } else {
        // Binary-collation text comes back flagged as binary (see
        // `Dialect::text`). `key` is reserved in MySQL.
        format!(
            "id, ts_ms, {}, {}, {}, {}, {}, {}, {}, status, {}, attempts, stream, latency_ms, \
             ttfb_ms, prompt_tokens, completion_tokens, cached_tokens, {}, {}, {}, {}, \
             cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_micros, client_key_id",
            d.text("request_id"),
            d.text("api"),
            d.text("method"),
            d.text("path"),
            d.text("model"),
            d.text("provider"),
            d.text("`key`"),
            d.text("outcome"),
            d.text("error"),
            d.text("upstream_model"),
            d.text("instance"),
            d.text("client_key"),
        )
    }
}

/// Decode one `log_columns` row (a macro: each driver's row type).
macro_rules! log_entry {
    ($r:expr) => {{
        let r = $r;
        let count = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0));
        LogEntry {
            row: RequestLog {
                id: Some(r.try_get::<i64, _>(0)?),
                ts_ms: r.try_get(1)?,
                request_id: r.try_get(2)?,
                api: r.try_get(3)?,
                method: r.try_get(4)?,
                path: r.try_get(5)?,
                model: r.try_get(6)?,
                provider: r.try_get(7)?,
                key: r.try_get(8)?,
                status: u16::try_from(r.try_get::<i64, _>(9)?).unwrap_or(0),
                outcome: r.try_get(10)?,
                attempts: u32::try_from(r.try_get::<i64, _>(11)?).unwrap_or(0),
                stream: r.try_get(12)?,
                latency_ms: r.try_get(13)?,
                ttfb_ms: r.try_get(14)?,
                prompt_tokens: count(r.try_get(15)?),
                completion_tokens: count(r.try_get(16)?),
                cached_tokens: count(r.try_get(17)?),
                error: r.try_get(18)?,
                upstream_model: r.try_get(19)?,
                client_key: r.try_get(21)?,
                cache_write_tokens: count(r.try_get(22)?),
                cache_write_1h_tokens: count(r.try_get(23)?),
                reasoning_tokens: count(r.try_get(24)?),
                cost_micros: count(r.try_get(25)?),
                client_key_id: r.try_get(26)?,
            },
            instance: r.try_get(20)?,
        }
    }};
}

impl SqlStore {
    /// One transaction per batch, multi-row INSERTs inside it.
    pub async fn insert_logs(
        &self,
        rows: impl Into<std::sync::Arc<Vec<RequestLog>>>,
    ) -> Result<(), StoreError> {
        let rows = rows.into();
        if rows.is_empty() {
            return Ok(());
        }
        let instance = text(&self.instance, SHORT);
        self.bounded(async {
            on_pool!(self, p, d => {
                let mut tx = p.begin().await.map_err(db_error)?;
                for chunk in rows.chunks(INSERT_CHUNK) {
                    let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(format!(
                        "INSERT INTO request_logs ({}) ",
                        INSERT_COLUMNS.replace(" key,", if d.postgres { " key," } else { " `key`," })
                    ));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.ts_ms)
                            .push_bind(text(&r.request_id, SHORT))
                            .push_bind(text(&r.api, SHORT))
                            .push_bind(text(&r.method, SHORT))
                            .push_bind(text(&r.path, LONG))
                            .push_bind(opt_text(&r.model, SHORT))
                            .push_bind(opt_text(&r.provider, SHORT))
                            .push_bind(opt_text(&r.key, SHORT))
                            .push_bind(i64::from(r.status))
                            .push_bind(text(&r.outcome, SHORT))
                            .push_bind(i64::from(r.attempts))
                            .push_bind(r.stream)
                            .push_bind(finite(r.latency_ms))
                            .push_bind(r.ttfb_ms.filter(|v| v.is_finite()))
                            .push_bind(to_i64(r.prompt_tokens))
                            .push_bind(to_i64(r.completion_tokens))
                            .push_bind(to_i64(r.cached_tokens))
                            .push_bind(opt_text(&r.error, LONG))
                            .push_bind(opt_text(&r.upstream_model, SHORT))
                            .push_bind(instance.clone())
                            .push_bind(opt_text(&r.client_key, SHORT))
                            .push_bind(to_i64(r.cache_write_tokens))
                            .push_bind(to_i64(r.cache_write_1h_tokens))
                            .push_bind(to_i64(r.reasoning_tokens))
                            .push_bind(to_i64(r.cost_micros))
                            .push_bind(r.client_key_id);
                    });
                    qb.build().execute(&mut *tx).await.map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)
            })
        })
        .await
    }

    pub async fn query_logs(&self, q: LogQuery) -> Result<LogPage, StoreError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        self.bounded(async {
            let mut items: Vec<LogEntry> = on_pool!(self, p, d => {
                let mut qb: QueryBuilder<'_, Db> =
                    QueryBuilder::new(format!("SELECT {} FROM request_logs", log_columns(d)));
                let mut sep = " WHERE ";
                if let Some(v) = &q.provider {
                    qb.push(sep).push("provider = ").push_bind(v.clone());
                    sep = " AND ";
                }
                if let Some(v) = &q.model {
                    qb.push(sep).push("model = ").push_bind(v.clone());
                    sep = " AND ";
                }
                if let Some(v) = q.status {
                    qb.push(sep).push("status = ").push_bind(i64::from(v));
                    sep = " AND ";
                }
                if let Some(v) = q.min_status {
                    qb.push(sep).push("status >= ").push_bind(i64::from(v));
                    sep = " AND ";
                }
                if let Some(v) = q.since_ms {
                    qb.push(sep).push("ts_ms >= ").push_bind(v);
                    sep = " AND ";
                }
                if let Some(v) = q.until_ms {
                    qb.push(sep).push("ts_ms < ").push_bind(v);
                    sep = " AND ";
                }
                if let Some(v) = q.before_id {
                    qb.push(sep).push("id < ").push_bind(v);
                }
                // One extra row tells whether another page exists.
                qb.push(" ORDER BY id DESC LIMIT ")
                    .push_bind(i64::from(limit) + 1);
                let rows = qb.build().fetch_all(p).await.map_err(db_error)?;
                let decode = |r: &<Db as sqlx::Database>::Row| -> Result<LogEntry, sqlx::Error> {
                    Ok(log_entry!(r))
                };
                rows.iter().map(decode).collect::<Result<Vec<_>, _>>().map_err(db_error)?
            });
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
        })
        .await
    }

    /// Tokens and cost per client key id since `since_ms`.
    pub async fn spend_by_key(&self, since_ms: i64) -> Result<Vec<KeySpend>, StoreError> {
        self.bounded(async {
            let rows: Vec<(i64, i64, i64)> = on_pool!(self, p, d => {
                let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(format!(
                    "SELECT client_key_id, {}, {} FROM request_logs \
                     WHERE client_key_id IS NOT NULL AND ts_ms >= ",
                    d.int("COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0)"),
                    d.int("COALESCE(SUM(cost_micros), 0)"),
                ));
                qb.push_bind(since_ms).push(" GROUP BY client_key_id");
                qb.build_query_as().fetch_all(p).await.map_err(db_error)?
            });
            let count = |v: i64| u64::try_from(v).unwrap_or(0);
            Ok(rows
                .into_iter()
                .map(|(key_id, tokens, cost)| KeySpend {
                    key_id,
                    tokens: count(tokens),
                    cost_micros: count(cost),
                })
                .collect())
        })
        .await
    }

    /// The SQLite query's aggregates and nearest-rank percentiles, in each
    /// server's dialect (window functions: MySQL 8, MariaDB 10.2).
    pub async fn usage(&self, q: UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        let group = match q.group_by.as_deref().map(str::trim) {
            None | Some("") | Some("none") => None,
            Some("provider") => Some("provider"),
            Some("model") => Some("model"),
            Some("key") => Some("client_key"),
            Some(other) => {
                return Err(StoreError::NotFound(format!(
                    "unknown usage grouping `{other}`: use `provider`, `model` or `key`"
                )))
            }
        };
        let bucket_ms = q
            .bucket_secs
            .filter(|s| *s > 0)
            .map(|s| i64::from(s) * 1000);
        self.bounded(async {
            let rows: Vec<UsageTuple> =
                on_pool!(self, p, d => {
                    let grp = group.unwrap_or(d.null_text());
                    // A number we computed, not client text: safe inline.
                    let bucket = match bucket_ms {
                        Some(b) => format!("ts_ms - (((ts_ms % {b}) + {b}) % {b})"),
                        None => d.int("0"),
                    };
                    let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(format!(
                        "WITH base AS (SELECT {bucket} AS bucket, {grp} AS grp, ts_ms, status, \
                         prompt_tokens, completion_tokens, latency_ms, cached_tokens, \
                         cache_write_tokens, reasoning_tokens, cost_micros FROM request_logs"
                    ));
                    let mut sep = " WHERE ";
                    if let Some(v) = q.since_ms {
                        qb.push(sep).push("ts_ms >= ").push_bind(v);
                        sep = " AND ";
                    }
                    if let Some(v) = q.until_ms {
                        qb.push(sep).push("ts_ms < ").push_bind(v);
                    }
                    qb.push(format!(
                        "),
                         ranked AS (
                             SELECT bucket, grp, latency_ms,
                                    ROW_NUMBER() OVER (PARTITION BY bucket, grp ORDER BY latency_ms) AS rn,
                                    COUNT(*) OVER (PARTITION BY bucket, grp) AS cnt
                             FROM base
                         ),
                         med AS (
                             SELECT bucket, grp, AVG(latency_ms) AS p50 FROM ranked
                             WHERE rn = {mid_lo} OR rn = {mid_hi}
                             GROUP BY bucket, grp
                         ),
                         p95 AS (
                             SELECT bucket, grp, latency_ms AS p95 FROM ranked
                             WHERE rn = {rank95}
                         ),
                         agg AS (
                             SELECT bucket, grp, COUNT(*) AS requests,
                                    {errors} AS errors,
                                    {prompt} AS prompt,
                                    {completion} AS completion,
                                    AVG(latency_ms) AS avg_latency, MIN(ts_ms) AS first_ts,
                                    {cached} AS cached, {cache_write} AS cache_write,
                                    {reasoning} AS reasoning, {cost} AS cost
                             FROM base GROUP BY bucket, grp
                         )
                         SELECT agg.bucket, {grp_out}, agg.requests, agg.errors, agg.prompt,
                                agg.completion, agg.avg_latency, agg.first_ts, med.p50, p95.p95,
                                agg.cached, agg.cache_write, agg.reasoning, agg.cost
                         FROM agg LEFT JOIN med ON med.bucket = agg.bucket AND {med_join}
                                  LEFT JOIN p95 ON p95.bucket = agg.bucket AND {p95_join}
                         ORDER BY agg.bucket, agg.grp{nulls}",
                        mid_lo = d.idiv("cnt + 1", "2"),
                        mid_hi = d.idiv("cnt + 2", "2"),
                        // Nearest rank: the ceil(0.95 * n)-th row.
                        rank95 = d.idiv("95 * cnt + 99", "100"),
                        errors = d.int("SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)"),
                        prompt = d.int("COALESCE(SUM(prompt_tokens), 0)"),
                        completion = d.int("COALESCE(SUM(completion_tokens), 0)"),
                        cached = d.int("COALESCE(SUM(cached_tokens), 0)"),
                        cache_write = d.int("COALESCE(SUM(cache_write_tokens), 0)"),
                        reasoning = d.int("COALESCE(SUM(reasoning_tokens), 0)"),
                        cost = d.int("COALESCE(SUM(cost_micros), 0)"),
                        med_join = d.same("med.grp", "agg.grp"),
                        p95_join = d.same("p95.grp", "agg.grp"),
                        nulls = d.nulls_first(),
                        grp_out = d.text("agg.grp"),
                    ));
                    qb.build_query_as().fetch_all(p).await.map_err(db_error)?
                });
            let count = |v: i64| u64::try_from(v).unwrap_or(0);
            let mut out = Vec::with_capacity(rows.len());
            let mut oldest: Option<i64> = None;
            for (bucket, grp, requests, errors, prompt, completion, avg, first, p50, p95, cached, cache_write, reasoning, cost) in rows {
                oldest = Some(oldest.map_or(first, |o| o.min(first)));
                out.push(UsageRow {
                    bucket_start_ms: bucket,
                    group: grp,
                    requests: count(requests),
                    errors: count(errors),
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
                let start = q.since_ms.or(oldest).unwrap_or(0);
                for row in &mut out {
                    row.bucket_start_ms = start;
                }
            }
            Ok(out)
        })
        .await
    }

    /// Delete rows of `table` with `column < bound` in chunks, each its own
    /// statement (and its own deadline).
    async fn delete_in_chunks(
        &self,
        table: &'static str,
        column: &'static str,
        bound: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let n = self
                .bounded(async {
                    on_pool!(self, p, d => {
                        sqlx::query(&d.delete_chunk(table, column))
                            .bind(bound)
                            .bind(DELETE_CHUNK)
                            .execute(p)
                            .await
                            .map_err(db_error)
                            .map(|r| r.rows_affected())
                    })
                })
                .await?;
            total += n;
            if n < DELETE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// The id of the oldest of the newest `keep` rows of `table`; `None`
    /// when there are fewer than `keep` (nothing to prune).
    async fn cutoff_id(&self, table: &'static str, keep: u64) -> Result<Option<i64>, StoreError> {
        let offset = i64::try_from(keep).unwrap_or(i64::MAX).max(1) - 1;
        self.bounded(async {
            on_pool!(self, p, d => {
                sqlx::query_scalar(&d.sql(&format!(
                    "SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?"
                )))
                .bind(offset)
                .fetch_optional(p)
                .await
                .map_err(db_error)
            })
        })
        .await
    }

    pub async fn prune_logs(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_in_chunks("request_logs", "ts_ms", before_ms)
            .await
    }

    pub async fn prune_logs_to(&self, keep: u64) -> Result<u64, StoreError> {
        match self.cutoff_id("request_logs", keep).await? {
            Some(id) => self.delete_in_chunks("request_logs", "id", id).await,
            None => Ok(0),
        }
    }

    pub async fn insert_audit(&self, rows: Vec<AuditRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let instance = text(&self.instance, SHORT);
        self.bounded(async {
            on_pool!(self, p, _d => {
                let mut tx = p.begin().await.map_err(db_error)?;
                for chunk in rows.chunks(INSERT_CHUNK) {
                    let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(
                        "INSERT INTO audit (ts_ms, action, who, peer, listener, method, path, target, status, instance) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.ts_ms)
                            .push_bind(text(&r.action, SHORT))
                            .push_bind(text(&r.who, SHORT))
                            .push_bind(opt_text(&r.peer, SHORT))
                            .push_bind(text(&r.listener, SHORT))
                            .push_bind(text(&r.method, SHORT))
                            .push_bind(text(&r.path, LONG))
                            .push_bind(opt_text(&r.target, LONG))
                            .push_bind(i64::from(r.status))
                            .push_bind(instance.clone());
                    });
                    qb.build().execute(&mut *tx).await.map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)
            })
        })
        .await
    }

    pub async fn query_audit(&self, q: AuditQuery) -> Result<AuditPage, StoreError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        self.bounded(async {
            let mut items: Vec<AuditRow> = on_pool!(self, p, d => {
                let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(format!(
                    "SELECT id, ts_ms, {}, {}, {}, {}, {}, {}, {}, status, {} FROM audit",
                    d.text("action"),
                    d.text("who"),
                    d.text("peer"),
                    d.text("listener"),
                    d.text("method"),
                    d.text("path"),
                    d.text("target"),
                    d.text("instance"),
                ));
                let mut sep = " WHERE ";
                if let Some(v) = q.before_id {
                    qb.push(sep).push("id < ").push_bind(v);
                    sep = " AND ";
                }
                if let Some(v) = &q.action {
                    qb.push(sep).push("action = ").push_bind(v.clone());
                    sep = " AND ";
                }
                if let Some(v) = q.since_ms {
                    qb.push(sep).push("ts_ms >= ").push_bind(v);
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit) + 1);
                let rows = qb.build().fetch_all(p).await.map_err(db_error)?;
                let decode = |r: &<Db as sqlx::Database>::Row| -> Result<AuditRow, sqlx::Error> {
                    Ok(AuditRow {
                        id: Some(r.try_get::<i64, _>(0)?),
                        ts_ms: r.try_get(1)?,
                        action: r.try_get(2)?,
                        who: r.try_get(3)?,
                        peer: r.try_get(4)?,
                        listener: r.try_get(5)?,
                        method: r.try_get(6)?,
                        path: r.try_get(7)?,
                        target: r.try_get(8)?,
                        status: u16::try_from(r.try_get::<i64, _>(9)?).unwrap_or(0),
                        instance: r.try_get(10)?,
                    })
                };
                rows.iter().map(decode).collect::<Result<Vec<_>, _>>().map_err(db_error)?
            });
            let next_before_id = if items.len() > limit as usize {
                items.truncate(limit as usize);
                items.last().and_then(|r| r.id)
            } else {
                None
            };
            Ok(AuditPage {
                items,
                next_before_id,
            })
        })
        .await
    }

    pub async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_in_chunks("audit", "ts_ms", before_ms).await
    }

    pub async fn prune_audit_to(&self, keep: u64) -> Result<u64, StoreError> {
        match self.cutoff_id("audit", keep).await? {
            Some(id) => self.delete_in_chunks("audit", "id", id).await,
            None => Ok(0),
        }
    }
}
