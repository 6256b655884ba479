//! The types every store backend shares.

use std::fmt;

use serde_json::Value;

/// The store's condition as `GET /health` reports it: one atomic in the
/// gateway state, written by start-up and the request-log writer, read by
/// the health route (no I/O there).
pub mod condition {
    /// Open, and the last request-log write succeeded.
    pub const OK: u8 = 0;
    /// Could not be opened at start: admin writes, request logs and usage
    /// are unavailable until a restart.
    pub const UNAVAILABLE: u8 = 1;
    /// Open, but the last request-log write failed (disk full, locked).
    pub const FAILING: u8 = 2;

    pub fn label(v: u8) -> &'static str {
        match v {
            OK => "ok",
            UNAVAILABLE => "unavailable",
            _ => "failing",
        }
    }
}

#[derive(Debug)]
pub enum StoreError {
    /// The database URL could not be understood.
    Url(String),
    /// Filesystem trouble, or the worker thread is gone.
    Io(String),
    /// SQLite reported an error (or stored data could not be decoded).
    Sqlite(String),
    /// The MySQL/PostgreSQL server refused a statement (or its answer could
    /// not be decoded).
    Database(String),
    /// The database cannot be reached (server down, pool exhausted, no
    /// answer within the operation timeout): the admin API answers 503.
    Unavailable(String),
    /// A uniqueness rule would be broken (e.g. a duplicate provider name).
    Conflict(String),
    /// The addressed record does not exist.
    NotFound(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Url(m) => write!(f, "invalid database URL {m}"),
            StoreError::Io(m) => write!(f, "store I/O error: {m}"),
            StoreError::Sqlite(m) => write!(f, "SQLite error: {m}"),
            StoreError::Database(m) => write!(f, "database error: {m}"),
            StoreError::Unavailable(m) => write!(f, "the database is unavailable: {m}"),
            // Shown to API clients as is.
            StoreError::Conflict(m) | StoreError::NotFound(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}

/// A provider created through the API. `doc` is the caller's JSON, opaque here.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredProvider {
    pub id: i64,
    pub name: String,
    pub doc: Value,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// One step of an atomic [`Store::apply`] batch.
#[derive(Debug, Clone)]
pub enum ConfigChange {
    CreateProvider {
        name: String,
        doc: Value,
    },
    /// Replaces the doc and the name.
    UpdateProvider {
        id: i64,
        name: String,
        doc: Value,
    },
    DeleteProvider {
        id: i64,
    },
    /// Creates or overwrites.
    SetAlias {
        alias: String,
        target: String,
    },
    DeleteAlias {
        alias: String,
    },
    SetSettings {
        doc: Value,
    },
    /// A client key: the secret's SHA-256 (hex, unique), its masked form
    /// and its [`crate::keys::KeyDoc`] as JSON. The secret itself is never
    /// stored.
    CreateKey {
        hash: String,
        masked: String,
        doc: Value,
    },
    /// Replaces the key's document (the hash never changes).
    UpdateKey {
        id: i64,
        doc: Value,
    },
    DeleteKey {
        id: i64,
    },
}

/// One stored client key (see [`crate::keys`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub id: i64,
    pub hash: String,
    pub masked: String,
    pub doc: Value,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What one [`ConfigChange`] did, in the same position as the change.
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub enum ChangeResult {
    Created { id: i64 },
    Updated { id: i64 },
    Deleted { id: i64 },
    AliasSet,
    AliasDeleted,
    SettingsSet,
}

/// One proxied request, as the data plane reports it. `id` is assigned by the
/// database (ignored on insert).
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, Default, PartialEq, utoipa::ToSchema,
)]
pub struct RequestLog {
    pub id: Option<i64>,
    pub ts_ms: i64,
    pub request_id: String,
    /// `openai` or `anthropic`.
    pub api: String,
    pub method: String,
    pub path: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    /// Masked key label, never the secret.
    pub key: Option<String>,
    pub status: u16,
    pub outcome: String,
    pub attempts: u32,
    pub stream: bool,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub error: Option<String>,
    /// The model name sent to the vendor (after aliases and mapping).
    #[serde(default)]
    pub upstream_model: Option<String>,
    /// The client key that made the request, `#id name (llmo-…abcd)`:
    /// never the secret. `None`: the master token.
    #[serde(default)]
    pub client_key: Option<String>,
    /// Prompt tokens written to the vendor's cache (part of
    /// `prompt_tokens`), and of those the ones kept for one hour.
    #[serde(default)]
    pub cache_write_tokens: Option<u64>,
    #[serde(default)]
    pub cache_write_1h_tokens: Option<u64>,
    /// Reasoning tokens (part of `completion_tokens`).
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
    /// The request's cost in micro-dollars (USD / 10^6) by the price table;
    /// `None` when no price matched the model or no usage was reported.
    #[serde(default)]
    pub cost_micros: Option<u64>,
    /// The client key's id (budgets are reloaded by it at start).
    #[serde(default)]
    pub client_key_id: Option<i64>,
}

/// Filters for [`Store::query_logs`]; all given filters must match.
#[derive(Debug, Clone, serde::Deserialize, Default)]
pub struct LogQuery {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: Option<u16>,
    /// e.g. 400 for errors only.
    pub min_status: Option<u16>,
    /// Inclusive.
    pub since_ms: Option<i64>,
    /// Exclusive.
    pub until_ms: Option<i64>,
    /// Default 50, at most 1000.
    pub limit: Option<u32>,
    /// Keyset cursor: only rows with a smaller id (pages go newest first).
    pub before_id: Option<i64>,
}

/// A stored request-log row with the instance that wrote it (several
/// gateway instances can share one database).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LogEntry {
    #[serde(flatten)]
    pub row: RequestLog,
    /// The writing instance's name (`INSTANCE_NAME`, else host name and
    /// port); `None` for rows written before the column existed.
    pub instance: Option<String>,
}

/// Rows newest first (by id); `next_before_id` is the cursor for the next
/// page, `None` on the last one.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LogPage {
    pub items: Vec<LogEntry>,
    pub next_before_id: Option<i64>,
}

/// One client key's spend in a time range ([`Store::spend_by_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpend {
    pub key_id: i64,
    pub tokens: u64,
    pub cost_micros: u64,
}

/// Parameters for [`Store::usage`].
#[derive(Debug, Clone, serde::Deserialize, Default)]
pub struct UsageQuery {
    /// Inclusive.
    pub since_ms: Option<i64>,
    /// Exclusive.
    pub until_ms: Option<i64>,
    /// Bucket width, aligned to the Unix epoch; `None` or 0 = one bucket.
    pub bucket_secs: Option<u32>,
    /// `"provider"`, `"model"`, `"key"` (the client key's label; `null`
    /// for the master token), or none.
    pub group_by: Option<String>,
    /// `instance` (the rows in this instance's database, the default; on a
    /// shared MySQL/PostgreSQL store that is every instance's) or `cluster`
    /// (every instance's counters in Redis); read by the admin API only.
    #[serde(default)]
    pub scope: Option<String>,
}

/// Aggregates for one (bucket, group).
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct UsageRow {
    /// Bucket start; for a single bucket, `since_ms` or the oldest row's time.
    pub bucket_start_ms: i64,
    /// Provider or model name; `None` when not grouping or the row had none.
    pub group: Option<String>,
    pub requests: u64,
    /// Responses with status >= 400.
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Parts of `prompt_tokens`: read from and written to the vendor's
    /// cache; part of `completion_tokens`: reasoning.
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Cost in micro-dollars (USD / 10^6) of the rows that had a price.
    #[serde(default)]
    pub cost_micros: u64,
    pub avg_latency_ms: f64,
    pub p50_latency_ms: Option<f64>,
    /// Nearest-rank 95th percentile.
    pub p95_latency_ms: Option<f64>,
}

/// One audited admin call. Every text field is bounded by the caller
/// ([`crate::admin::audit`]) before it gets here.
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, Default, PartialEq, utoipa::ToSchema,
)]
pub struct AuditRow {
    /// Assigned by the database (ignored on insert).
    pub id: Option<i64>,
    pub ts_ms: i64,
    /// `write`, `export_keys`, `auth_failure` or `auth_failures_suppressed`.
    pub action: String,
    /// Fingerprint of the presented token (first 8 hex digits of its
    /// SHA-256), `loopback` for a tokenless loopback caller, `none` when no
    /// token was sent. Never the token.
    pub who: String,
    /// Peer address (`ip:port`), when known.
    pub peer: Option<String>,
    /// `admin` (the admin listener) or `main` (the copy on the main port).
    pub listener: String,
    pub method: String,
    pub path: String,
    /// What the call acted on: a provider name or id, an alias, a section.
    pub target: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// The writing instance's name, like request-log rows: set by the store
    /// on insert (what the caller puts here is ignored); `None` for rows
    /// written before the column existed.
    #[serde(default)]
    pub instance: Option<String>,
}

/// Filters for [`Store::query_audit`].
#[derive(Debug, Clone, serde::Deserialize, Default)]
pub struct AuditQuery {
    /// Default 50, at most 1000.
    pub limit: Option<u32>,
    /// Keyset cursor: only rows with a smaller id (pages go newest first).
    pub before_id: Option<i64>,
    /// Only this action.
    pub action: Option<String>,
    /// Inclusive.
    pub since_ms: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditPage {
    pub items: Vec<AuditRow>,
    pub next_before_id: Option<i64>,
}
