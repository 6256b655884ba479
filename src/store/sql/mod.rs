//! The shared backends: MySQL/MariaDB and PostgreSQL through `sqlx`.
//!
//! Why sqlx: one well-kept async driver for both servers, pure Rust (no C
//! client library to install), a connection pool with acquire timeouts,
//! per-connection prepared-statement caches, and TLS through rustls, which
//! the gateway already carries. Its compile-time query macros are not used
//! (they need a live database at build time); queries are checked by the
//! tests against real servers instead.
//!
//! Each operation is written once and expanded for both drivers by
//! [`on_pool!`]: the statements are the same text apart from the few
//! dialect differences in [`Dialect`], and each arm is compiled against the
//! driver's own types (no type-erased `Any` layer, whose MySQL mapping
//! reads `TEXT` columns as blobs).
//!
//! Every operation has a deadline ([`OP_TIMEOUT`], and the pool's acquire
//! timeout), so a database that is down or unreachable makes admin calls
//! fail fast with [`StoreError::Unavailable`] instead of hanging.

mod logs;
mod schema;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Connection;

use super::url::{Backend, ServerUrl};
use super::{ChangeResult, ConfigChange, StoreError, StoredKey, StoredProvider};

/// How long one store operation may take, connection included.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an operation waits for a pooled connection (or for a new one
/// to be established) before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connecting at start: long enough for a server that is still starting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an instance waits for another one's migration.
const MIGRATION_LOCK_SECS: i64 = 120;
/// The PostgreSQL advisory lock key for migrations ("llmorc" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x6c6c_6d6f_7263;
const MAX_CONNECTIONS: u32 = 8;

enum Pool {
    MySql(sqlx::MySqlPool),
    Postgres(sqlx::PgPool),
}

/// Run `$body` with `$pool` bound to the concrete pool, `$d` to its
/// dialect and `Db` to the driver; the body is compiled once per driver.
macro_rules! on_pool {
    ($self:expr, $pool:ident, $d:ident => $body:expr) => {
        match &$self.pool {
            Pool::MySql($pool) => {
                #[allow(unused)]
                type Db = sqlx::MySql;
                let $d = &Dialect::MYSQL;
                $body
            }
            Pool::Postgres($pool) => {
                #[allow(unused)]
                type Db = sqlx::Postgres;
                let $d = &Dialect::POSTGRES;
                $body
            }
        }
    };
}
pub(super) use on_pool;

/// The few places where the two servers' SQL differs.
pub(super) struct Dialect {
    pub postgres: bool,
}

impl Dialect {
    const MYSQL: Dialect = Dialect { postgres: false };
    const POSTGRES: Dialect = Dialect { postgres: true };

    /// Statements are written with `?` placeholders; PostgreSQL numbers
    /// them. (No statement here has a `?` inside a string literal.)
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        if !self.postgres {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// `expr` as a 64-bit signed integer (MySQL's SUM gives DECIMAL,
    /// PostgreSQL's NUMERIC).
    pub fn int(&self, expr: &str) -> String {
        if self.postgres {
            format!("CAST({expr} AS BIGINT)")
        } else {
            format!("CAST({expr} AS SIGNED)")
        }
    }

    /// Integer division (MySQL's `/` gives a decimal).
    pub fn idiv(&self, a: &str, b: &str) -> String {
        if self.postgres {
            format!("({a}) / ({b})")
        } else {
            format!("({a}) DIV ({b})")
        }
    }

    /// Null-safe equality.
    pub fn same(&self, a: &str, b: &str) -> String {
        if self.postgres {
            format!("{a} IS NOT DISTINCT FROM {b}")
        } else {
            format!("{a} <=> {b}")
        }
    }

    /// A text column read as text: MySQL flags binary-collation columns
    /// (`utf8mb4_bin`, every text column here) as binary in results, which
    /// the driver will not decode as a string. Order by the table column,
    /// not by this expression.
    pub fn text(&self, column: &str) -> String {
        if self.postgres {
            column.to_owned()
        } else {
            format!("CONVERT({column} USING utf8mb4)")
        }
    }

    /// A typed NULL text column.
    pub fn null_text(&self) -> &'static str {
        if self.postgres {
            "CAST(NULL AS TEXT)"
        } else {
            "CAST(NULL AS CHAR)"
        }
    }

    /// Ascending order puts NULL first in SQLite and MySQL; say so for
    /// PostgreSQL, which puts it last.
    pub fn nulls_first(&self) -> &'static str {
        if self.postgres {
            " NULLS FIRST"
        } else {
            ""
        }
    }

    /// Delete up to `?2` rows of `table` whose `column < ?1`, oldest ids
    /// first. MySQL has `DELETE … LIMIT` but refuses a subquery on the same
    /// table; PostgreSQL is the other way round.
    pub fn delete_chunk(&self, table: &str, column: &str) -> String {
        if self.postgres {
            format!(
                "DELETE FROM {table} WHERE id IN \
                 (SELECT id FROM {table} WHERE {column} < $1 ORDER BY id LIMIT $2)"
            )
        } else {
            format!("DELETE FROM {table} WHERE {column} < ? ORDER BY id LIMIT ?")
        }
    }

    fn upsert_alias(&self) -> &'static str {
        if self.postgres {
            "INSERT INTO aliases (alias, target) VALUES ($1, $2)
             ON CONFLICT (alias) DO UPDATE SET target = EXCLUDED.target"
        } else {
            "INSERT INTO aliases (alias, target) VALUES (?, ?)
             ON DUPLICATE KEY UPDATE target = VALUES(target)"
        }
    }

    fn upsert_settings(&self) -> &'static str {
        if self.postgres {
            "INSERT INTO settings (id, doc) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc"
        } else {
            "INSERT INTO settings (id, doc) VALUES (1, ?)
             ON DUPLICATE KEY UPDATE doc = VALUES(doc)"
        }
    }
}

/// `Conflict` if `name` belongs to a provider other than `owner`. Macros
/// (this and the two below) so they expand against each driver's
/// transaction type.
macro_rules! ensure_name_free {
    ($tx:expr, $d:expr, $name:expr, $owner:expr) => {{
        let holder: Option<i64> =
            sqlx::query_scalar(&$d.sql("SELECT id FROM providers WHERE name = ?"))
                .bind($name)
                .fetch_optional($tx)
                .await
                .map_err(db_error)?;
        let owner: Option<i64> = $owner;
        if let Some(id) = holder {
            if Some(id) != owner {
                return Err(StoreError::Conflict(format!(
                    "provider name `{}` already exists",
                    $name
                )));
            }
        }
    }};
}

/// Lock the version row for the rest of the transaction: one config writer
/// at a time across every instance.
macro_rules! lock_version {
    ($tx:expr) => {
        async {
            let v: Option<i64> =
                sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1 FOR UPDATE")
                    .fetch_optional($tx)
                    .await
                    .map_err(db_error)?;
            match v {
                Some(_) => Ok(()),
                None => Err(StoreError::Database(
                    "the config_version row is missing (was the schema migrated?)".into(),
                )),
            }
        }
        .await
    };
}

/// Bump and read the config version inside the transaction.
macro_rules! bump_version {
    ($tx:expr) => {
        async {
            sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1")
                .execute($tx)
                .await
                .map_err(db_error)?;
            let v: i64 = sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
                .fetch_one($tx)
                .await
                .map_err(db_error)?;
            Ok::<u64, StoreError>(u64::try_from(v).unwrap_or(0))
        }
        .await
    };
}

pub(crate) struct SqlStore {
    pool: Pool,
    kind: Backend,
    /// The URL with its password masked.
    location: String,
    /// Written into every request-log row's `instance` column.
    instance: String,
    /// The password, to scrub from any driver message that might echo it.
    secret: Option<String>,
}

/// A driver error as a store error: constraint violations are conflicts;
/// connection trouble (refused, reset, timed out, server shutting down) is
/// [`StoreError::Unavailable`], which the admin API answers with 503.
pub(super) fn db_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(d.message().to_string())
        }
        sqlx::Error::Database(d) if server_going_away(d.as_ref()) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Database(e.to_string()),
    }
}

/// Errors a server sends while it shuts down or restarts.
fn server_going_away(d: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(my) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // Server shutdown in progress; gone away; lost connection.
        return matches!(my.number(), 1053 | 2006 | 2013 | 1927);
    }
    // admin_shutdown, crash_shutdown, cannot_connect_now, and the whole
    // connection-exception class.
    d.code()
        .is_some_and(|c| c.starts_with("57P") || c.starts_with("08"))
}

/// Why connecting failed, in the operator's terms.
fn connect_problem(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = d.message();
            if code == "28000" || code == "28P01" {
                format!("wrong user name or password ({msg})")
            } else if code == "3D000" || msg.contains("Unknown database") {
                format!("the database does not exist ({msg})")
            } else {
                format!("the server refused the connection: {e}")
            }
        }
        sqlx::Error::Io(io) => format!("cannot reach the server: {io}"),
        sqlx::Error::Tls(t) => format!("the TLS handshake failed: {t}"),
        sqlx::Error::PoolTimedOut => format!(
            "no answer from the server within {} s (host unreachable or firewalled?)",
            CONNECT_TIMEOUT.as_secs()
        ),
        other => other.to_string(),
    }
}

/// The password in `url`, if any (percent-decoded as the driver sees it).
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let raw = userinfo.split_once(':')?.1;
    if raw.is_empty() {
        return None;
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

impl SqlStore {
    /// Connect, migrate (under the migration lock) and build the pool. A
    /// failure names the problem: wrong password, unknown database,
    /// unreachable host.
    pub async fn open(url: ServerUrl, instance: &str) -> Result<SqlStore, StoreError> {
        let secret = password_of(&url.driver_url);
        let scrub = |m: String| match &secret {
            Some(s) if s.len() >= 3 => m.replace(s.as_str(), "…"),
            _ => m,
        };
        let fail = |e: sqlx::Error| {
            StoreError::Unavailable(scrub(format!(
                "cannot connect to {}: {}",
                url.masked,
                connect_problem(&e)
            )))
        };
        let pool = match url.kind {
            Backend::MySql => {
                let opts = MySqlConnectOptions::from_str(&url.driver_url)
                    .map_err(|e| StoreError::Url(scrub(format!("`{}`: {e}", url.masked))))?;
                let mut conn = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    sqlx::MySqlConnection::connect_with(&opts),
                )
                .await
                .map_err(|_| fail(sqlx::Error::PoolTimedOut))?
                .map_err(fail)?;
                let migrated = migrate_mysql(&mut conn).await;
                let _ = conn.close().await;
                let version = migrated.map_err(|e| StoreError::Database(scrub(e.to_string())))?;
                tracing::info!(db = %url.masked, schema_version = version, "opened MySQL store");
                Pool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(MAX_CONNECTIONS)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .connect_lazy_with(opts),
                )
            }
            _ => {
                let opts = PgConnectOptions::from_str(&url.driver_url)
                    .map_err(|e| StoreError::Url(scrub(format!("`{}`: {e}", url.masked))))?;
                let mut conn =
                    tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&opts))
                        .await
                        .map_err(|_| fail(sqlx::Error::PoolTimedOut))?
                        .map_err(fail)?;
                let migrated = migrate_postgres(&mut conn).await;
                let _ = conn.close().await;
                let version = migrated.map_err(|e| StoreError::Database(scrub(e.to_string())))?;
                tracing::info!(db = %url.masked, schema_version = version, "opened PostgreSQL store");
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(MAX_CONNECTIONS)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .connect_lazy_with(opts),
                )
            }
        };
        Ok(SqlStore {
            pool,
            kind: url.kind,
            location: url.masked,
            instance: instance.to_owned(),
            secret,
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn kind(&self) -> Backend {
        self.kind
    }

    /// Run one operation within [`OP_TIMEOUT`]; driver errors are scrubbed
    /// of the password before they leave.
    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(OP_TIMEOUT, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.scrub(e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer from {} within {} s",
                self.location,
                OP_TIMEOUT.as_secs()
            ))),
        }
    }

    fn scrub(&self, e: StoreError) -> StoreError {
        let Some(secret) = self.secret.as_deref().filter(|s| s.len() >= 3) else {
            return e;
        };
        let clean = |m: String| m.replace(secret, "…");
        match e {
            StoreError::Url(m) => StoreError::Url(clean(m)),
            StoreError::Io(m) => StoreError::Io(clean(m)),
            StoreError::Sqlite(m) => StoreError::Sqlite(clean(m)),
            StoreError::Database(m) => StoreError::Database(clean(m)),
            StoreError::Unavailable(m) => StoreError::Unavailable(clean(m)),
            StoreError::Conflict(m) => StoreError::Conflict(clean(m)),
            StoreError::NotFound(m) => StoreError::NotFound(clean(m)),
        }
    }

    /// Migrations run once at open; running them again (`db migrate`) takes
    /// the lock again and finds nothing to do.
    pub async fn migrate(&self) -> Result<u32, StoreError> {
        self.bounded(async {
            match &self.pool {
                Pool::MySql(p) => {
                    let mut conn = p.acquire().await.map_err(db_error)?;
                    migrate_mysql(&mut conn).await.map_err(db_error)
                }
                Pool::Postgres(p) => {
                    let mut conn = p.acquire().await.map_err(db_error)?;
                    migrate_postgres(&mut conn).await.map_err(db_error)
                }
            }
        })
        .await
    }

    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.bounded(async {
            let v: i64 = on_pool!(self, p, _d => {
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                    .fetch_one(p)
                    .await
            })
            .map_err(db_error)?;
            u32::try_from(v).map_err(|_| StoreError::Database(format!("bad schema version {v}")))
        })
        .await
    }

    /// The version row: one primary-key read, cheap enough to poll every
    /// second from every instance.
    pub async fn config_version(&self) -> Result<u64, StoreError> {
        self.bounded(async {
            let v: Option<i64> = on_pool!(self, p, _d => {
                sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
                    .fetch_optional(p)
                    .await
            })
            .map_err(db_error)?;
            Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
        })
        .await
    }

    pub async fn list_providers(&self) -> Result<Vec<StoredProvider>, StoreError> {
        self.bounded(async {
            let rows: Vec<(i64, String, String, i64, i64)> = on_pool!(self, p, d => {
                sqlx::query_as(&format!(
                    "SELECT id, {}, {}, created_ms, updated_ms FROM providers ORDER BY id",
                    d.text("name"),
                    d.text("doc")
                ))
                .fetch_all(p)
                .await
            })
            .map_err(db_error)?;
            rows.into_iter().map(decode_provider).collect()
        })
        .await
    }

    pub async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.bounded(async {
            let rows: Vec<(i64, String, String, String, i64, i64)> = on_pool!(self, p, d => {
                sqlx::query_as(&format!(
                    "SELECT id, {}, {}, {}, created_ms, updated_ms FROM client_keys ORDER BY id",
                    d.text("secret_hash"),
                    d.text("masked"),
                    d.text("doc")
                ))
                .fetch_all(p)
                .await
            })
            .map_err(db_error)?;
            rows.into_iter()
                .map(|(id, hash, masked, doc, created_ms, updated_ms)| {
                    Ok(StoredKey {
                        id,
                        hash,
                        masked,
                        doc: decode_json(&doc, "client key")?,
                        created_ms,
                        updated_ms,
                    })
                })
                .collect()
        })
        .await
    }

    pub async fn get_provider(&self, id: i64) -> Result<Option<StoredProvider>, StoreError> {
        self.bounded(async {
            let row: Option<(i64, String, String, i64, i64)> = on_pool!(self, p, d => {
                sqlx::query_as(&d.sql(&format!(
                    "SELECT id, {}, {}, created_ms, updated_ms FROM providers WHERE id = ?",
                    d.text("name"),
                    d.text("doc")
                )))
                .bind(id)
                .fetch_optional(p)
                .await
            })
            .map_err(db_error)?;
            row.map(decode_provider).transpose()
        })
        .await
    }

    pub async fn list_aliases(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.bounded(async {
            on_pool!(self, p, d => {
                sqlx::query_as(&format!(
                    "SELECT {}, {} FROM aliases ORDER BY aliases.alias",
                    d.text("alias"),
                    d.text("target")
                ))
                .fetch_all(p)
                .await
            })
            .map_err(db_error)
        })
        .await
    }

    pub async fn get_settings(&self) -> Result<Value, StoreError> {
        self.bounded(async {
            let doc: Option<Option<String>> = on_pool!(self, p, d => {
                sqlx::query_scalar(&format!("SELECT {} FROM settings WHERE id = 1", d.text("doc")))
                    .fetch_optional(p)
                    .await
            })
            .map_err(db_error)?;
            match doc.flatten() {
                Some(text) => decode_json(&text, "settings"),
                None => Ok(Value::Object(Default::default())),
            }
        })
        .await
    }

    /// All or nothing, like SQLite's. The transaction first locks the
    /// version row, so configuration writes from every instance are
    /// serialized: the existence and name checks cannot be invalidated by
    /// another instance before the commit.
    pub async fn apply(
        &self,
        changes: Vec<ConfigChange>,
    ) -> Result<(u64, Vec<ChangeResult>), (usize, StoreError)> {
        let whole = changes.len();
        if changes.is_empty() {
            return self
                .config_version()
                .await
                .map(|v| (v, Vec::new()))
                .map_err(|e| (whole, e));
        }
        let op = async {
            let now = super::sqlite::now_ms();
            on_pool!(self, p, d => {
                let mut tx = p.begin().await.map_err(|e| (whole, db_error(e)))?;
                lock_version!(&mut *tx).map_err(|e| (whole, e))?;
                let mut results = Vec::with_capacity(whole);
                for (i, change) in changes.into_iter().enumerate() {
                    let r: Result<ChangeResult, StoreError> = async {
                        match change {
                            ConfigChange::CreateProvider { name, doc } => {
                                ensure_name_free!(&mut *tx, d, &name, None);
                                sqlx::query(&d.sql(
                                    "INSERT INTO providers (name, doc, created_ms, updated_ms) VALUES (?, ?, ?, ?)",
                                ))
                                .bind(&name)
                                .bind(encode_json(&doc)?)
                                .bind(now)
                                .bind(now)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_error)?;
                                // Names are unique and the row is ours until commit.
                                let id: i64 = sqlx::query_scalar(&d.sql("SELECT id FROM providers WHERE name = ?"))
                                    .bind(&name)
                                    .fetch_one(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                Ok(ChangeResult::Created { id })
                            }
                            ConfigChange::UpdateProvider { id, name, doc } => {
                                let exists: Option<i64> = sqlx::query_scalar(&d.sql("SELECT id FROM providers WHERE id = ?"))
                                    .bind(id)
                                    .fetch_optional(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                if exists.is_none() {
                                    return Err(StoreError::NotFound(format!("provider id {id} not found")));
                                }
                                ensure_name_free!(&mut *tx, d, &name, Some(id));
                                sqlx::query(&d.sql(
                                    "UPDATE providers SET name = ?, doc = ?, updated_ms = ? WHERE id = ?",
                                ))
                                .bind(&name)
                                .bind(encode_json(&doc)?)
                                .bind(now)
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_error)?;
                                Ok(ChangeResult::Updated { id })
                            }
                            ConfigChange::DeleteProvider { id } => {
                                let n = sqlx::query(&d.sql("DELETE FROM providers WHERE id = ?"))
                                    .bind(id)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(db_error)?
                                    .rows_affected();
                                if n == 0 {
                                    return Err(StoreError::NotFound(format!("provider id {id} not found")));
                                }
                                Ok(ChangeResult::Deleted { id })
                            }
                            ConfigChange::SetAlias { alias, target } => {
                                sqlx::query(d.upsert_alias())
                                    .bind(&alias)
                                    .bind(&target)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                Ok(ChangeResult::AliasSet)
                            }
                            ConfigChange::DeleteAlias { alias } => {
                                let n = sqlx::query(&d.sql("DELETE FROM aliases WHERE alias = ?"))
                                    .bind(&alias)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(db_error)?
                                    .rows_affected();
                                if n == 0 {
                                    return Err(StoreError::NotFound(format!("alias `{alias}` not found")));
                                }
                                Ok(ChangeResult::AliasDeleted)
                            }
                            ConfigChange::SetSettings { doc } => {
                                sqlx::query(d.upsert_settings())
                                    .bind(encode_json(&doc)?)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                Ok(ChangeResult::SettingsSet)
                            }
                            ConfigChange::CreateKey { hash, masked, doc } => {
                                sqlx::query(&d.sql(
                                    "INSERT INTO client_keys (secret_hash, masked, doc, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?)",
                                ))
                                .bind(&hash)
                                .bind(&masked)
                                .bind(encode_json(&doc)?)
                                .bind(now)
                                .bind(now)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_error)?;
                                // Hashes are unique and the row is ours until commit.
                                let id: i64 = sqlx::query_scalar(&d.sql("SELECT id FROM client_keys WHERE secret_hash = ?"))
                                    .bind(&hash)
                                    .fetch_one(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                Ok(ChangeResult::Created { id })
                            }
                            ConfigChange::UpdateKey { id, doc } => {
                                let exists: Option<i64> = sqlx::query_scalar(&d.sql("SELECT id FROM client_keys WHERE id = ?"))
                                    .bind(id)
                                    .fetch_optional(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                if exists.is_none() {
                                    return Err(StoreError::NotFound(format!("client key {id} not found")));
                                }
                                sqlx::query(&d.sql("UPDATE client_keys SET doc = ?, updated_ms = ? WHERE id = ?"))
                                    .bind(encode_json(&doc)?)
                                    .bind(now)
                                    .bind(id)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                Ok(ChangeResult::Updated { id })
                            }
                            ConfigChange::DeleteKey { id } => {
                                let n = sqlx::query(&d.sql("DELETE FROM client_keys WHERE id = ?"))
                                    .bind(id)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(db_error)?
                                    .rows_affected();
                                if n == 0 {
                                    return Err(StoreError::NotFound(format!("client key {id} not found")));
                                }
                                Ok(ChangeResult::Deleted { id })
                            }
                        }
                    }
                    .await;
                    results.push(r.map_err(|e| (i, e))?);
                }
                let version = bump_version!(&mut *tx).map_err(|e| (whole, e))?;
                tx.commit().await.map_err(|e| (whole, db_error(e)))?;
                Ok((version, results))
            })
        };
        match tokio::time::timeout(OP_TIMEOUT, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err((i, e))) => Err((i, self.scrub(e))),
            Err(_) => Err((
                whole,
                StoreError::Unavailable(format!(
                    "no answer from {} within {} s; the change may or may not have been committed",
                    self.location,
                    OP_TIMEOUT.as_secs()
                )),
            )),
        }
    }

    /// An import: providers matched by name keep their id and
    /// `created_ms` (and `updated_ms` when the document is unchanged).
    pub async fn replace_all(
        &self,
        providers: Vec<(String, Value)>,
        aliases: Vec<(String, String)>,
        settings: Value,
    ) -> Result<u64, StoreError> {
        let mut keep = HashSet::with_capacity(providers.len());
        for (name, _) in &providers {
            if !keep.insert(name.clone()) {
                return Err(StoreError::Conflict(format!(
                    "provider name `{name}` appears twice in the import"
                )));
            }
        }
        let mut seen = HashSet::with_capacity(aliases.len());
        for (alias, _) in &aliases {
            if !seen.insert(alias.clone()) {
                return Err(StoreError::Conflict(format!(
                    "alias `{alias}` appears twice in the import"
                )));
            }
        }
        let mut encoded = Vec::with_capacity(providers.len());
        for (name, doc) in providers {
            encoded.push((name, encode_json(&doc)?));
        }
        let settings = encode_json(&settings)?;
        self.bounded(async {
            let now = super::sqlite::now_ms();
            on_pool!(self, p, d => {
                let mut tx = p.begin().await.map_err(db_error)?;
                lock_version!(&mut *tx)?;
                let existing: Vec<(i64, String, String)> =
                    sqlx::query_as(&format!(
                        "SELECT id, {}, {} FROM providers",
                        d.text("name"),
                        d.text("doc")
                    ))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                let by_name: HashMap<&str, (i64, &str)> = existing
                    .iter()
                    .map(|(id, name, doc)| (name.as_str(), (*id, doc.as_str())))
                    .collect();
                for (id, name, _) in &existing {
                    if !keep.contains(name) {
                        sqlx::query(&d.sql("DELETE FROM providers WHERE id = ?"))
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    }
                }
                for (name, doc) in &encoded {
                    match by_name.get(name.as_str()) {
                        Some((_, old)) if old == doc => {}
                        Some((id, _)) => {
                            sqlx::query(&d.sql("UPDATE providers SET doc = ?, updated_ms = ? WHERE id = ?"))
                                .bind(doc)
                                .bind(now)
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_error)?;
                        }
                        None => {
                            sqlx::query(&d.sql(
                                "INSERT INTO providers (name, doc, created_ms, updated_ms) VALUES (?, ?, ?, ?)",
                            ))
                            .bind(name)
                            .bind(doc)
                            .bind(now)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        }
                    }
                }
                sqlx::query("DELETE FROM aliases")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for (alias, target) in &aliases {
                    sqlx::query(&d.sql("INSERT INTO aliases (alias, target) VALUES (?, ?)"))
                        .bind(alias)
                        .bind(target)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                sqlx::query(d.upsert_settings())
                    .bind(&settings)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let version = bump_version!(&mut *tx)?;
                tx.commit().await.map_err(db_error)?;
                Ok(version)
            })
        })
        .await
    }
}

fn decode_provider(
    (id, name, doc, created_ms, updated_ms): (i64, String, String, i64, i64),
) -> Result<StoredProvider, StoreError> {
    Ok(StoredProvider {
        doc: decode_json(&doc, &format!("provider {id}"))?,
        id,
        name,
        created_ms,
        updated_ms,
    })
}

fn decode_json(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Database(format!("{what}: stored JSON is invalid: {e}")))
}

fn encode_json(doc: &Value) -> Result<String, StoreError> {
    serde_json::to_string(doc).map_err(|e| StoreError::Database(format!("encode JSON: {e}")))
}

/// Take the migration lock on `conn`, apply what is missing, release it.
async fn migrate_mysql(conn: &mut sqlx::MySqlConnection) -> Result<u32, sqlx::Error> {
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('llm_orchestrator.migrate', ?)")
        .bind(MIGRATION_LOCK_SECS)
        .fetch_one(&mut *conn)
        .await?;
    if got != Some(1) {
        return Err(sqlx::Error::Protocol(format!(
            "another instance held the migration lock for {MIGRATION_LOCK_SECS} s"
        )));
    }
    let result = async {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    BIGINT NOT NULL PRIMARY KEY,
                applied_at VARCHAR(40) NOT NULL
            ) ENGINE=InnoDB",
        )
        .execute(&mut *conn)
        .await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(version), 0) AS SIGNED) FROM schema_migrations",
        )
        .fetch_one(&mut *conn)
        .await?;
        let latest = schema::MYSQL.last().map_or(0, |m| m.version);
        check_not_newer(current, latest)?;
        for m in schema::MYSQL
            .iter()
            .filter(|m| i64::from(m.version) > current)
        {
            for statement in m.statements {
                sqlx::raw_sql(statement)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        sqlx::Error::Protocol(format!("migration {} ({}): {e}", m.version, m.name))
                    })?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(i64::from(m.version))
                .bind(applied_at())
                .execute(&mut *conn)
                .await?;
            tracing::info!(
                version = m.version,
                name = m.name,
                "applied MySQL schema migration"
            );
        }
        let v: i64 =
            sqlx::query_scalar("SELECT CAST(MAX(version) AS SIGNED) FROM schema_migrations")
                .fetch_one(&mut *conn)
                .await?;
        Ok(u32::try_from(v).unwrap_or(0))
    }
    .await;
    let _ = sqlx::query("SELECT RELEASE_LOCK('llm_orchestrator.migrate')")
        .execute(&mut *conn)
        .await;
    result
}

async fn migrate_postgres(conn: &mut sqlx::PgConnection) -> Result<u32, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = async {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    BIGINT PRIMARY KEY,
                applied_at TEXT NOT NULL
            )",
        )
        .execute(&mut *conn)
        .await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
        )
        .fetch_one(&mut *conn)
        .await?;
        let latest = schema::POSTGRES.last().map_or(0, |m| m.version);
        check_not_newer(current, latest)?;
        for m in schema::POSTGRES
            .iter()
            .filter(|m| i64::from(m.version) > current)
        {
            // Transactional DDL: a migration applies completely or not at all.
            let mut tx = conn.begin().await?;
            for statement in m.statements {
                sqlx::raw_sql(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        sqlx::Error::Protocol(format!("migration {} ({}): {e}", m.version, m.name))
                    })?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(i64::from(m.version))
                .bind(applied_at())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(
                version = m.version,
                name = m.name,
                "applied PostgreSQL schema migration"
            );
        }
        let v: i64 =
            sqlx::query_scalar("SELECT CAST(MAX(version) AS BIGINT) FROM schema_migrations")
                .fetch_one(&mut *conn)
                .await?;
        Ok(u32::try_from(v).unwrap_or(0))
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    result
}

/// A newer build migrated this database; writing with an older idea of the
/// schema could corrupt its meaning.
fn check_not_newer(current: i64, latest: u32) -> Result<(), sqlx::Error> {
    if current > i64::from(latest) {
        return Err(sqlx::Error::Protocol(format!(
            "database schema version {current} is newer than this build supports ({latest})"
        )));
    }
    Ok(())
}

fn applied_at() -> String {
    let ms = super::sqlite::now_ms();
    format!("{}.{:03}Z", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_passwords() {
        assert_eq!(
            Dialect::POSTGRES.sql("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(Dialect::MYSQL.sql("a = ?"), "a = ?");
        assert_eq!(
            password_of("mysql://u:p%40ss@h/db?x=1").as_deref(),
            Some("p@ss")
        );
        assert_eq!(password_of("mysql://u@h/db"), None);
        assert_eq!(password_of("postgres://h/db"), None);
    }
}
