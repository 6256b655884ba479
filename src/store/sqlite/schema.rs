//! Connection setup, schema migrations and the worker thread that owns the
//! SQLite connection.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::store::StoreError;

/// Where the database lives, parsed from the configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    Memory,
    File(PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Memory => f.write_str(":memory:"),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Parse `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite::memory:`.
///
/// Three slashes then the path, as in SQLAlchemy: whatever follows
/// `sqlite:///` is the filesystem path, so a fourth slash makes it absolute.
pub(super) fn parse_url(url: &str) -> Result<Location, StoreError> {
    let url = url.trim();
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Location::Memory);
    }
    let Some(path) = url.strip_prefix("sqlite:///") else {
        return Err(StoreError::Url(format!(
            "`{url}`: expected sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite::memory:"
        )));
    };
    if path == ":memory:" {
        return Ok(Location::Memory);
    }
    if path.is_empty() || path.ends_with('/') {
        return Err(StoreError::Url(format!("`{url}`: no database file name")));
    }
    if path.contains('?') {
        return Err(StoreError::Url(format!(
            "`{url}`: query parameters are not supported"
        )));
    }
    Ok(Location::File(PathBuf::from(path)))
}

/// Open the connection and apply the connection-level settings.
pub(super) fn open_connection(location: &Location) -> Result<Connection, StoreError> {
    let conn = match location {
        Location::Memory => Connection::open_in_memory()?,
        Location::File(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Io(format!("create {}: {e}", parent.display())))?;
            }
            create_private(path)?;
            // No URI flag: a relative path that happens to start with `file:`
            // must stay a path.
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?
        }
    };
    // Before anything else, so the journal-mode switch waits for other
    // processes' locks instead of failing.
    conn.busy_timeout(Duration::from_millis(5000))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if matches!(location, Location::File(_)) && !mode.eq_ignore_ascii_case("wal") {
        // Some filesystems (network mounts) cannot do WAL; the rollback
        // journal with synchronous=FULL is still durable, just slower.
        tracing::warn!(journal_mode = %mode, db = %location, "SQLite refused WAL mode");
    }
    // FULL fsyncs the WAL on every commit: an acknowledged write survives
    // power loss, not only a process crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Create the database file readable by its owner only: provider documents
/// hold upstream API keys. SQLite gives its -wal and -shm files the same mode.
#[cfg(unix)]
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Io(format!("create {}: {e}", path.display()))),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &std::path::Path) -> Result<(), StoreError> {
    Ok(())
}

/// Work sent to the worker thread.
pub(super) type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Run jobs until every sender is gone, then close the connection.
pub(super) fn run_worker(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    lower_priority();
    while let Ok(job) = jobs.recv() {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
        if ran.is_err() {
            // Keep serving the other callers; make sure a half-done
            // transaction does not linger on the shared connection.
            tracing::error!("SQLite store job panicked");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
    // Cheap, and keeps the planner statistics fresh for the next start.
    let _ = conn.execute_batch("PRAGMA optimize");
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite store failed");
    }
}

/// Nice 10 for this (the worker) thread. It writes request-log batches —
/// a few milliseconds of CPU every 50 ms under load — and serves the admin
/// API; on a machine with one core for the gateway it shared that core with
/// the request thread at equal priority, and every request that arrived
/// during a batch waited for the scheduler to switch back: that was the
/// tail (p99) at concurrency 1. At nice 10 the request thread preempts it
/// on wake-up; it still gets the idle time, which is plenty for the log.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = Some(rustix::thread::gettid());
        // Never raise it (a gateway started under `nice 15` stays there).
        let now = rustix::process::getpriority_process(me).unwrap_or(0);
        if now < 10 {
            if let Err(e) = rustix::process::setpriority_process(me, 10) {
                tracing::debug!(error = %e, "cannot lower the SQLite worker's priority");
            }
        }
    }
}

/// One schema step. Append a new entry to [`MIGRATIONS`] to change the
/// schema; never edit one that has shipped.
pub(super) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT
);
INSERT INTO meta (key, value) VALUES ('config_version', '0');

CREATE TABLE providers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT UNIQUE NOT NULL,
    doc        TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TABLE aliases (
    alias  TEXT PRIMARY KEY,
    target TEXT NOT NULL
);

CREATE TABLE settings (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    doc TEXT
);

-- AUTOINCREMENT: ids are pagination cursors and must never be reused, even
-- after pruning empties the table.
CREATE TABLE request_logs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms             INTEGER NOT NULL,
    request_id        TEXT NOT NULL,
    api               TEXT NOT NULL,
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    model             TEXT,
    provider          TEXT,
    key               TEXT,
    status            INTEGER NOT NULL,
    outcome           TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    stream            INTEGER NOT NULL,
    latency_ms        REAL NOT NULL,
    ttfb_ms           REAL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cached_tokens     INTEGER,
    error             TEXT
);
CREATE INDEX request_logs_ts ON request_logs (ts_ms);
CREATE INDEX request_logs_provider_ts ON request_logs (provider, ts_ms);
CREATE INDEX request_logs_model_ts ON request_logs (model, ts_ms);
CREATE INDEX request_logs_status_ts ON request_logs (status, ts_ms);
",
    },
    Migration {
        version: 2,
        name: "request log: upstream model",
        sql: "ALTER TABLE request_logs ADD COLUMN upstream_model TEXT;",
    },
    Migration {
        version: 3,
        name: "admin audit log",
        sql: "
-- AUTOINCREMENT: ids are pagination cursors (see request_logs).
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms    INTEGER NOT NULL,
    action   TEXT NOT NULL,
    who      TEXT NOT NULL,
    peer     TEXT,
    listener TEXT NOT NULL,
    method   TEXT NOT NULL,
    path     TEXT NOT NULL,
    target   TEXT,
    status   INTEGER NOT NULL
);
CREATE INDEX audit_ts ON audit (ts_ms);
",
    },
    Migration {
        version: 4,
        name: "request log: writing instance",
        sql: "ALTER TABLE request_logs ADD COLUMN instance TEXT;",
    },
    Migration {
        version: 5,
        name: "audit: writing instance",
        sql: "ALTER TABLE audit ADD COLUMN instance TEXT;",
    },
    Migration {
        version: 6,
        name: "client keys",
        sql: "
-- Only the secret's SHA-256 is kept; `masked` is the display form.
CREATE TABLE client_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash TEXT UNIQUE NOT NULL,
    masked      TEXT NOT NULL,
    doc         TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
ALTER TABLE request_logs ADD COLUMN client_key TEXT;
",
    },
    Migration {
        version: 7,
        name: "request log: usage and cost ledger",
        sql: "
ALTER TABLE request_logs ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE request_logs ADD COLUMN cache_write_1h_tokens INTEGER;
ALTER TABLE request_logs ADD COLUMN reasoning_tokens INTEGER;
ALTER TABLE request_logs ADD COLUMN cost_micros INTEGER;
ALTER TABLE request_logs ADD COLUMN client_key_id INTEGER;
",
    },
];

/// The newest schema version this build knows.
pub(super) fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(super) fn schema_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?
        .query_row([], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Sqlite(format!("bad schema version {v}")))
}

/// Apply every migration newer than the database, each in its own
/// transaction. Safe to run concurrently from several processes: each step
/// re-checks under the write lock.
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            applied_at TEXT
        )",
    )?;
    let current = schema_version(conn)?;
    let latest = latest_version();
    if current > latest {
        // A newer build migrated this file; writing with an older idea of
        // the schema could corrupt its meaning.
        return Err(StoreError::Sqlite(format!(
            "database schema version {current} is newer than this build supports ({latest})"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [m.version],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if done {
            continue;
        }
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::Sqlite(format!("migration {} ({}): {e}", m.version, m.name))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at)
             VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            [m.version],
        )?;
        tx.commit()?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied schema migration"
        );
    }
    conn.execute_batch(RETIRE_LOG_INDEXES)?;
    schema_version(conn)
}

/// The request log keeps one secondary index, `request_logs_ts` (time
/// ranges of `/api/logs` and `/api/stats`; retention by age). The three
/// composite indexes migration 1 created — `(provider|model|status, ts_ms)`
/// — are dropped: each row insert paid four B-tree inserts (half the
/// writer's CPU per row, measured), and SQLite's planner used them for the
/// console's filtered pages (`provider = ? ORDER BY id DESC LIMIT 51`) by
/// collecting every matching row and sorting, 120–170 ms on 300,000 rows,
/// where walking the primary key backwards and filtering stops after a
/// page: 0.3 ms. Only a filter value that matches (almost) no row scans the
/// table (~100 ms per 300,000 rows). BENCHMARKS.md ("Request log") has the
/// figures. Idempotent, so it is a step after the migrations rather than a
/// numbered one.
const RETIRE_LOG_INDEXES: &str = "
DROP INDEX IF EXISTS request_logs_provider_ts;
DROP INDEX IF EXISTS request_logs_model_ts;
DROP INDEX IF EXISTS request_logs_status_ts;
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        assert_eq!(
            parse_url("sqlite:///./data/llm_orchestrator.db").unwrap(),
            Location::File(PathBuf::from("./data/llm_orchestrator.db"))
        );
        assert_eq!(
            parse_url("sqlite:///data/x.db").unwrap(),
            Location::File(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            parse_url("sqlite:////abs/path.db").unwrap(),
            Location::File(PathBuf::from("/abs/path.db"))
        );
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Location::Memory);
        assert_eq!(parse_url("sqlite:///:memory:").unwrap(), Location::Memory);
        for bad in [
            "postgres://x",
            "sqlite://rel.db",
            "sqlite:///",
            "sqlite:///dir/",
            "sqlite:///x.db?mode=ro",
            "",
        ] {
            assert!(
                matches!(parse_url(bad), Err(StoreError::Url(_))),
                "{bad} should be rejected"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_worker_thread_runs_at_lower_priority() {
        // Field 19 of /proc/thread-self/stat, counted after the
        // parenthesised command name.
        fn nice() -> i32 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after.split(' ').nth(16).unwrap().parse().unwrap()
        }
        let before = nice();
        let worker = std::thread::spawn(|| {
            lower_priority();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(worker, before.max(10));
        // Only the worker's own thread.
        assert_eq!(nice(), before);
    }

    #[test]
    fn request_log_keeps_only_the_time_index() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        // A second open of the same file changes nothing.
        migrate(&mut c).unwrap();
        let names: Vec<String> = c
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name = 'request_logs' AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(names, ["request_logs_ts"]);
        // A filtered console page walks the primary key backwards and stops
        // after a page, instead of sorting every matching row.
        let plan: Vec<String> = c
            .prepare(
                "EXPLAIN QUERY PLAN SELECT id FROM request_logs \
                 WHERE provider = 'p' ORDER BY id DESC LIMIT 51",
            )
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:?}");
    }

    #[test]
    fn migrations_are_ordered() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert_eq!(m.version, last + 1, "migration versions must be 1, 2, 3...");
            last = m.version;
        }
    }
}
