//! Control-plane persistence: API-managed configuration, request logs and
//! the admin audit trail.
//!
//! Three backends behind one handle, chosen by the URL's scheme:
//! - SQLite (`sqlite:///…`, the embedded default): one file per instance;
//! - MySQL/MariaDB (`mysql://`, `mysql+asyncmy://`, `mariadb://`) and
//!   PostgreSQL (`postgres://`, `postgresql://`): one database shared by
//!   every gateway instance, so request logs and usage are cluster-wide and
//!   a configuration change made on one instance is read by the others
//!   (they poll the config version row, see [`crate::control::poll`]).
//!
//! [`Store`] is an enum over the backends rather than a trait object: the
//! operations are a fixed set owned here, every caller keeps one concrete
//! type, and no future is boxed per call.

pub mod backlog;
mod sql;
mod sqlite;
mod types;
mod url;

pub use backlog::LogBacklog;
pub use types::*;
pub use url::{backend_of, check_settings, mask_url, Backend as BackendKind};

use std::sync::Arc;

use serde_json::Value;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Sql(Arc<sql::SqlStore>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location())
            .finish()
    }
}

/// Run the same call on whichever backend this is.
macro_rules! on_backend {
    ($self:ident, $s:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sqlite($s) => $e,
            Backend::Sql($s) => $e,
        }
    };
}

impl Store {
    /// Open (creating or migrating as needed) the database at `url`; request
    /// logs written through this handle carry no instance name.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_as(url, "").await
    }

    /// Open the database at `url`; `instance` names this gateway instance in
    /// the request-log rows it writes (`/api/logs` shows it).
    ///
    /// SQLite: `sqlite:///./data/x.db` is relative to the working
    /// directory, `sqlite:////abs/x.db` absolute, `sqlite::memory:` in
    /// memory. MySQL and PostgreSQL: the server must be reachable and the
    /// credentials right, else the error says which of the two failed; the
    /// password never appears in errors or logs.
    pub async fn open_as(url: &str, instance: &str) -> Result<Store, StoreError> {
        let backend = match url::parse(url)? {
            url::Parsed::Sqlite => {
                Backend::Sqlite(sqlite::SqliteStore::open_as(url, instance).await?)
            }
            url::Parsed::Server(target) => {
                Backend::Sql(Arc::new(sql::SqlStore::open(target, instance).await?))
            }
        };
        Ok(Store { backend })
    }

    /// The database, for logs: the file, or the URL with its password masked.
    pub fn location(&self) -> &str {
        on_backend!(self, s => s.location())
    }

    pub fn kind(&self) -> BackendKind {
        match &self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Sql(s) => s.kind(),
        }
    }

    /// One database for several instances (MySQL, PostgreSQL): what one
    /// instance commits, the others read.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Sql(_))
    }

    /// Apply pending migrations; returns the schema version after. Runs on
    /// every open (under a database-wide lock on MySQL and PostgreSQL, so
    /// instances starting together migrate once); calling it again is
    /// harmless.
    pub async fn migrate(&self) -> Result<u32, StoreError> {
        on_backend!(self, s => s.migrate().await)
    }

    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        on_backend!(self, s => s.schema_version().await)
    }

    /// Bumped by every committed configuration change; 0 for a new database.
    pub async fn config_version(&self) -> Result<u64, StoreError> {
        on_backend!(self, s => s.config_version().await)
    }

    /// All API-managed providers, ordered by id.
    pub async fn list_providers(&self) -> Result<Vec<StoredProvider>, StoreError> {
        on_backend!(self, s => s.list_providers().await)
    }

    pub async fn get_provider(&self, id: i64) -> Result<Option<StoredProvider>, StoreError> {
        on_backend!(self, s => s.get_provider(id).await)
    }

    /// Every client key, ordered by id (created, updated and deleted
    /// through [`Store::apply`], so a key change bumps the config version
    /// and reaches other instances like a provider change).
    pub async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        on_backend!(self, s => s.list_keys().await)
    }

    /// `(alias, target)` pairs, ordered by alias.
    pub async fn list_aliases(&self) -> Result<Vec<(String, String)>, StoreError> {
        on_backend!(self, s => s.list_aliases().await)
    }

    /// The settings document; `{}` when never set.
    pub async fn get_settings(&self) -> Result<Value, StoreError> {
        on_backend!(self, s => s.get_settings().await)
    }

    /// Apply `changes` in one transaction: all or nothing.
    ///
    /// Returns the new config version and one result per change. On failure
    /// nothing is written and the error carries the index of the change that
    /// failed; an index equal to `changes.len()` means the batch as a whole
    /// failed (commit, I/O). An empty batch changes nothing and returns the
    /// current version.
    pub async fn apply(
        &self,
        changes: Vec<ConfigChange>,
    ) -> Result<(u64, Vec<ChangeResult>), (usize, StoreError)> {
        on_backend!(self, s => s.apply(changes).await)
    }

    /// Replace the whole API-managed configuration (an import) in one
    /// transaction; returns the new config version.
    ///
    /// Providers are matched by name: one that stays keeps its id and
    /// `created_ms`, others are created or deleted. Duplicate names or
    /// aliases in the input are a `Conflict`.
    pub async fn replace_all(
        &self,
        providers: Vec<(String, Value)>,
        aliases: Vec<(String, String)>,
        settings: Value,
    ) -> Result<u64, StoreError> {
        on_backend!(self, s => s.replace_all(providers, aliases, settings).await)
    }

    /// Insert a batch in one transaction. The rows' `id` is ignored; the
    /// database assigns it.
    /// Shared, not moved: the writer keeps the batch for a retry without
    /// cloning every row's strings.
    pub async fn insert_logs(
        &self,
        rows: impl Into<Arc<Vec<RequestLog>>>,
    ) -> Result<(), StoreError> {
        let rows = rows.into();
        on_backend!(self, s => s.insert_logs(rows).await)
    }

    /// One page of logs matching every given filter, newest (highest id) first.
    pub async fn query_logs(&self, q: LogQuery) -> Result<LogPage, StoreError> {
        on_backend!(self, s => s.query_logs(q).await)
    }

    /// Request counts, errors, tokens and latency per time bucket and group.
    /// Rows come ordered by bucket then group. An unknown `group_by` is a
    /// `NotFound` naming the accepted values.
    pub async fn usage(&self, q: UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        on_backend!(self, s => s.usage(q).await)
    }

    /// Tokens (prompt + completion) and cost (micro-dollars) per client key
    /// id in rows with `ts_ms >= since_ms`: what the budgets reload at start.
    pub async fn spend_by_key(&self, since_ms: i64) -> Result<Vec<KeySpend>, StoreError> {
        on_backend!(self, s => s.spend_by_key(since_ms).await)
    }

    /// Delete logs with `ts_ms < before_ms`; returns how many were deleted.
    pub async fn prune_logs(&self, before_ms: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.prune_logs(before_ms).await)
    }

    /// Keep at most the newest `keep` rows; returns rows deleted.
    pub async fn prune_logs_to(&self, keep: u64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.prune_logs_to(keep).await)
    }

    /// Insert a batch of audit rows in one transaction.
    pub async fn insert_audit(&self, rows: Vec<AuditRow>) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_audit(rows).await)
    }

    /// One page of the audit trail, newest first.
    pub async fn query_audit(&self, q: AuditQuery) -> Result<AuditPage, StoreError> {
        on_backend!(self, s => s.query_audit(q).await)
    }

    /// Delete audit rows with `ts_ms < before_ms`.
    pub async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.prune_audit(before_ms).await)
    }

    /// Keep at most the newest `keep` audit rows.
    pub async fn prune_audit_to(&self, keep: u64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.prune_audit_to(keep).await)
    }
}

/// This instance's name in the request-log rows it writes: `INSTANCE_NAME`
/// when set, else the host name and the data-plane port (each container
/// has its own host name; several instances on one host differ by port).
pub fn instance_name(env: &dyn Fn(&str) -> Option<String>, port: u16) -> String {
    if let Some(name) = env("INSTANCE_NAME").filter(|v| !v.trim().is_empty()) {
        return name.trim().chars().take(200).collect();
    }
    let host = env("HOSTNAME")
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".into());
    let host: String = host.trim().chars().take(180).collect();
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            instance_name(
                &env(&[("INSTANCE_NAME", " gw-1 "), ("HOSTNAME", "h")]),
                8000
            ),
            "gw-1"
        );
        assert_eq!(
            instance_name(&env(&[("HOSTNAME", "box7")]), 8000),
            "box7:8000"
        );
        assert_eq!(
            instance_name(&env(&[("INSTANCE_NAME", ""), ("HOSTNAME", "box7")]), 9),
            "box7:9",
            "an empty INSTANCE_NAME is unset"
        );
        let many = "x".repeat(500);
        let long = instance_name(&|k: &str| (k == "INSTANCE_NAME").then(|| many.clone()), 1);
        assert_eq!(long.chars().count(), 200, "bounded");
        // No variables: the host file or `localhost`, always with the port.
        assert!(instance_name(&env(&[]), 8000).ends_with(":8000"));
    }
}
