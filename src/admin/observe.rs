//! What the gateway observed: request logs, the audit trail, usage
//! statistics and Prometheus metrics.

use super::*;

/// Prometheus exposition (same bearer token as the rest of the admin API).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "observability",
    responses(
        (status = 200, description = "Prometheus metrics (text exposition format 0.0.4)", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn metrics(State(s): State<AdminState>) -> Response {
    let state = &s.control.state;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let body = state.metrics.render(
        &s.control.current(),
        crate::metrics::LogCounts {
            dropped: load(&state.log_dropped),
            written: load(&state.log_written),
            batches: load(&state.log_batches),
        },
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/api/logs",
    tag = "observability",
    params(
        ("provider" = Option<String>, Query, description = "Only this provider"),
        ("model" = Option<String>, Query, description = "Only this model"),
        ("status" = Option<u16>, Query, maximum = 65535, description = "Only this HTTP status"),
        ("min_status" = Option<u16>, Query, maximum = 65535, description = "Only statuses at or above (400: errors)"),
        ("since_ms" = Option<i64>, Query, description = "From (inclusive), Unix ms"),
        ("until_ms" = Option<i64>, Query, description = "Until (exclusive), Unix ms"),
        ("limit" = Option<u32>, Query, description = "Rows per page: default 50, at most 1000"),
        ("before_id" = Option<i64>, Query, description = "Keyset cursor: rows with a smaller id (pages go newest first)"),
    ),
    responses(
        (status = 200, description = "A page of request-log rows, newest first, with the cursor of the next", body = crate::store::LogPage),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn logs(
    State(st): State<AdminState>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult<Json<crate::store::LogPage>> {
    let q = query(q)?;
    let store = st.control.store_or_unavailable()?;
    Ok(Json(store.query_logs(q).await?))
}

/// The answer of `GET /api/audit`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct AuditList {
    /// Always `list`.
    object: &'static str,
    data: Vec<crate::store::AuditRow>,
    /// Cursor of the next page; null on the last.
    next_before_id: Option<i64>,
    /// Audit rows lost because the writer's queue was full.
    rows_dropped: u64,
}

/// The answer of `GET /api/stats/usage` and `GET /api/stats`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct UsageList {
    /// Always `list`.
    object: &'static str,
    /// `instance` or `cluster`.
    scope: &'static str,
    data: Vec<UsageEntry>,
    /// Request-log rows lost because the writer's queue was full.
    log_rows_dropped: u64,
    /// With `scope=cluster`: how many instances' counters were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    instances: Option<usize>,
}

/// A usage row with its error rate.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct UsageEntry {
    #[serde(flatten)]
    row: crate::store::UsageRow,
    /// `errors / requests`; 0 when there were no requests.
    error_rate: f64,
    /// `cost_micros` in US dollars, for display (the ledger itself is
    /// integer micro-dollars).
    cost_usd: f64,
}

/// `GET /api/audit?limit&before_id&action&since_ms`: the audit trail,
/// newest first.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "observability",
    params(
        ("limit" = Option<u32>, Query, description = "Rows per page: default 50, at most 1000"),
        ("before_id" = Option<i64>, Query, description = "Keyset cursor: rows with a smaller id"),
        ("action" = Option<String>, Query, description = "Only this action (`write`, `export_keys`, `auth_failure`)"),
        ("since_ms" = Option<i64>, Query, description = "From (inclusive), Unix ms"),
    ),
    responses(
        (status = 200, description = "A page of audit rows, newest first, with the cursor of the next", body = AuditList),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn audit_log(
    State(st): State<AdminState>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult<Json<AuditList>> {
    let q = query(q)?;
    let store = st.control.store().ok_or_else(|| {
        AdminError::from(WriteError::Unavailable("no database is configured".into()))
    })?;
    let page = store.query_audit(q).await?;
    let dropped = st.audit.dropped.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Json(AuditList {
        object: "list",
        data: page.items,
        next_before_id: page.next_before_id,
        rows_dropped: dropped,
    }))
}

#[utoipa::path(
    get,
    path = "/api/stats/usage",
    tag = "observability",
    params(
        ("since_ms" = Option<i64>, Query, description = "From (inclusive), Unix ms"),
        ("until_ms" = Option<i64>, Query, description = "Until (exclusive), Unix ms"),
        ("bucket_secs" = Option<u32>, Query, description = "Bucket width in seconds, aligned to the Unix epoch; none or 0: one bucket"),
        ("group_by" = Option<String>, Query, pattern = "^\\s*(none|provider|model|key)?\\s*$", description = "`provider`, `model` or `key` (the client key; `null` group: the master token; per instance only)"),
        ("scope" = Option<String>, Query, pattern = "^\\s*(instance|cluster)?\\s*$", description = "`instance` (default: this database's rows) or `cluster` (every instance's counters in Redis)"),
    ),
    responses(
        (status = 200, description = "Usage rows by bucket and group (and `instances` for the cluster)", body = UsageList),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn usage(
    State(st): State<AdminState>,
    q: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult<Json<UsageList>> {
    usage_of(st, query(q)?).await
}

/// The same as `/api/stats/usage` (the original design's path).
#[utoipa::path(
    get,
    path = "/api/stats",
    tag = "observability",
    params(
        ("since_ms" = Option<i64>, Query, description = "From (inclusive), Unix ms"),
        ("until_ms" = Option<i64>, Query, description = "Until (exclusive), Unix ms"),
        ("bucket_secs" = Option<u32>, Query, description = "Bucket width in seconds, aligned to the Unix epoch; none or 0: one bucket"),
        ("group_by" = Option<String>, Query, pattern = "^\\s*(none|provider|model|key)?\\s*$", description = "`provider`, `model` or `key` (the client key; `null` group: the master token; per instance only)"),
        ("scope" = Option<String>, Query, pattern = "^\\s*(instance|cluster)?\\s*$", description = "`instance` (default: this database's rows) or `cluster` (every instance's counters in Redis)"),
    ),
    responses(
        (status = 200, description = "As `GET /api/stats/usage`", body = UsageList),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn stats(
    State(st): State<AdminState>,
    q: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult<Json<UsageList>> {
    usage_of(st, query(q)?).await
}

pub(super) async fn usage_of(st: AdminState, q: UsageQuery) -> AdminResult<Json<UsageList>> {
    if let Some(g) = q.group_by.as_deref().map(str::trim) {
        if !matches!(g, "" | "none" | "provider" | "model" | "key") {
            return Err(AdminError::bad_request(format!(
                "unknown group_by `{g}`: use `provider`, `model` or `key`"
            )));
        }
    }
    let cluster = match q.scope.as_deref().map(str::trim) {
        None | Some("") | Some("instance") => false,
        // The cluster counters in Redis are per provider and model only.
        Some("cluster") if q.group_by.as_deref().map(str::trim) == Some("key") => {
            return Err(AdminError::bad_request(
                "group_by=key is answered per instance (scope=instance): the cluster counters have no key",
            ))
        }
        Some("cluster") => true,
        Some(other) => {
            return Err(AdminError::bad_request(format!(
                "unknown scope `{other}`: use `instance` or `cluster`"
            )))
        }
    };
    let mut instances = None;
    let rows = if cluster {
        let Some(c) = st.control.cluster_usage.get() else {
            return Err(AdminError::bad_request(
                "scope=cluster needs Redis (REDIS_ENABLED=true)",
            ));
        };
        let (rows, n) = c
            .query(&q)
            .await
            .map_err(|e| AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e))?;
        instances = Some(n);
        rows
    } else {
        let store = st.control.store_or_unavailable()?;
        store.usage(q).await?
    };
    let data = rows
        .into_iter()
        .map(|row| UsageEntry {
            cost_usd: row.cost_micros as f64 / 1e6,
            error_rate: if row.requests == 0 {
                0.0
            } else {
                row.errors as f64 / row.requests as f64
            },
            row,
        })
        .collect();
    let dropped = st
        .control
        .state
        .log_dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    Ok(Json(UsageList {
        object: "list",
        scope: if cluster { "cluster" } else { "instance" },
        data,
        log_rows_dropped: dropped,
        instances,
    }))
}
