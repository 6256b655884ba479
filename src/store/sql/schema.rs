//! Versioned schema migrations for MySQL/MariaDB and PostgreSQL. Append a
//! new entry to both lists to change the schema; never edit one that has
//! shipped. Version numbers are per backend (SQLite has its own list).
//!
//! The same tables and indexes as SQLite, in each server's types:
//! - `request_logs (ts_ms)`: time-range reads of `/api/logs` and
//!   `/api/stats`, and retention by age;
//! - `request_logs (provider, ts_ms)`, `(model, ts_ms)`, `(status, ts_ms)`:
//!   the `/api/logs` filters (`provider=`, `model=`, `status=`/`min_status=`)
//!   within a time range;
//! - `audit (ts_ms)`: audit retention and `since_ms`.
//!
//! Keyset pages (`ORDER BY id DESC … id < cursor`) and retention by row
//! count use the primary key. Text compares and sorts as in SQLite — byte
//! order, case-sensitive: MySQL tables default to `utf8mb4_bin`, and the
//! PostgreSQL columns that are compared or ordered (provider names,
//! aliases, the logs' provider and model) are `COLLATE "C"`. MySQL flags
//! binary-collation columns as binary in results, so text reads go through
//! [`super::Dialect::text`].

pub(super) struct Migration {
    pub version: u32,
    pub name: &'static str,
    /// Run in order; PostgreSQL runs them in one transaction (MySQL cannot:
    /// DDL commits implicitly there).
    pub statements: &'static [&'static str],
}

#[cfg(test)]
const MYSQL_TABLE: &str = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

macro_rules! mysql_table {
    ($body:literal) => {
        concat!(
            $body,
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )
    };
}

/// Migration 4 is the same on both dialects (`BIGINT` is both's 64-bit integer).
const LEDGER_COLUMNS: &[&str] = &[
    "ALTER TABLE request_logs ADD COLUMN cache_write_tokens BIGINT",
    "ALTER TABLE request_logs ADD COLUMN cache_write_1h_tokens BIGINT",
    "ALTER TABLE request_logs ADD COLUMN reasoning_tokens BIGINT",
    "ALTER TABLE request_logs ADD COLUMN cost_micros BIGINT",
    "ALTER TABLE request_logs ADD COLUMN client_key_id BIGINT",
];

pub(super) const MYSQL: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        statements: &[
            mysql_table!(
                "CREATE TABLE config_version (
                id      INT NOT NULL PRIMARY KEY,
                version BIGINT NOT NULL
            )"
            ),
            "INSERT INTO config_version (id, version) VALUES (1, 0)",
            mysql_table!(
                "CREATE TABLE providers (
                id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                name       VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
                doc        LONGTEXT NOT NULL,
                created_ms BIGINT NOT NULL,
                updated_ms BIGINT NOT NULL,
                UNIQUE KEY providers_name (name)
            )"
            ),
            mysql_table!(
                "CREATE TABLE aliases (
                alias  VARCHAR(512) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
                target TEXT NOT NULL
            )"
            ),
            mysql_table!(
                "CREATE TABLE settings (
                id  INT NOT NULL PRIMARY KEY,
                doc LONGTEXT
            )"
            ),
            // InnoDB keeps AUTO_INCREMENT across restarts (MySQL 8, MariaDB
            // 10.2.4+): ids are pagination cursors and are never reused.
            mysql_table!(
                "CREATE TABLE request_logs (
                id                BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                ts_ms             BIGINT NOT NULL,
                request_id        VARCHAR(255) NOT NULL,
                api               VARCHAR(255) NOT NULL,
                method            VARCHAR(255) NOT NULL,
                path              TEXT NOT NULL,
                model             VARCHAR(255) COLLATE utf8mb4_bin,
                provider          VARCHAR(255) COLLATE utf8mb4_bin,
                `key`             VARCHAR(255),
                status            BIGINT NOT NULL,
                outcome           VARCHAR(255) NOT NULL,
                attempts          BIGINT NOT NULL,
                stream            BOOLEAN NOT NULL,
                latency_ms        DOUBLE NOT NULL,
                ttfb_ms           DOUBLE,
                prompt_tokens     BIGINT,
                completion_tokens BIGINT,
                cached_tokens     BIGINT,
                error             TEXT,
                upstream_model    VARCHAR(255),
                instance          VARCHAR(255),
                KEY request_logs_ts (ts_ms),
                KEY request_logs_provider_ts (provider, ts_ms),
                KEY request_logs_model_ts (model, ts_ms),
                KEY request_logs_status_ts (status, ts_ms)
            )"
            ),
            mysql_table!(
                "CREATE TABLE audit (
                id       BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                ts_ms    BIGINT NOT NULL,
                action   VARCHAR(255) NOT NULL,
                who      VARCHAR(255) NOT NULL,
                peer     VARCHAR(255),
                listener VARCHAR(255) NOT NULL,
                method   VARCHAR(255) NOT NULL,
                path     TEXT NOT NULL,
                target   TEXT,
                status   BIGINT NOT NULL,
                KEY audit_ts (ts_ms)
            )"
            ),
        ],
    },
    Migration {
        version: 2,
        name: "audit: writing instance",
        statements: &["ALTER TABLE audit ADD COLUMN instance VARCHAR(255)"],
    },
    Migration {
        version: 3,
        name: "client keys",
        statements: &[
            // Only the secret's SHA-256 is kept; `masked` is the display form.
            mysql_table!(
                "CREATE TABLE client_keys (
                id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                secret_hash VARCHAR(64) NOT NULL,
                masked      VARCHAR(64) NOT NULL,
                doc         LONGTEXT NOT NULL,
                created_ms  BIGINT NOT NULL,
                updated_ms  BIGINT NOT NULL,
                UNIQUE KEY client_keys_hash (secret_hash)
            )"
            ),
            "ALTER TABLE request_logs ADD COLUMN client_key VARCHAR(255)",
        ],
    },
    Migration {
        version: 4,
        name: "request log: usage and cost ledger",
        statements: LEDGER_COLUMNS,
    },
];

pub(super) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        statements: &[
            "CREATE TABLE config_version (
            id      INTEGER PRIMARY KEY,
            version BIGINT NOT NULL
        )",
            "INSERT INTO config_version (id, version) VALUES (1, 0)",
            "CREATE TABLE providers (
            id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            name       TEXT COLLATE \"C\" NOT NULL UNIQUE,
            doc        TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL
        )",
            "CREATE TABLE aliases (
            alias  TEXT COLLATE \"C\" PRIMARY KEY,
            target TEXT NOT NULL
        )",
            "CREATE TABLE settings (
            id  INTEGER PRIMARY KEY,
            doc TEXT
        )",
            // Sequences never hand out a number twice: ids stay valid cursors.
            "CREATE TABLE request_logs (
            id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            ts_ms             BIGINT NOT NULL,
            request_id        TEXT NOT NULL,
            api               TEXT NOT NULL,
            method            TEXT NOT NULL,
            path              TEXT NOT NULL,
            model             TEXT COLLATE \"C\",
            provider          TEXT COLLATE \"C\",
            key               TEXT,
            status            BIGINT NOT NULL,
            outcome           TEXT NOT NULL,
            attempts          BIGINT NOT NULL,
            stream            BOOLEAN NOT NULL,
            latency_ms        DOUBLE PRECISION NOT NULL,
            ttfb_ms           DOUBLE PRECISION,
            prompt_tokens     BIGINT,
            completion_tokens BIGINT,
            cached_tokens     BIGINT,
            error             TEXT,
            upstream_model    TEXT,
            instance          TEXT
        )",
            "CREATE INDEX request_logs_ts ON request_logs (ts_ms)",
            "CREATE INDEX request_logs_provider_ts ON request_logs (provider, ts_ms)",
            "CREATE INDEX request_logs_model_ts ON request_logs (model, ts_ms)",
            "CREATE INDEX request_logs_status_ts ON request_logs (status, ts_ms)",
            "CREATE TABLE audit (
            id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            ts_ms    BIGINT NOT NULL,
            action   TEXT NOT NULL,
            who      TEXT NOT NULL,
            peer     TEXT,
            listener TEXT NOT NULL,
            method   TEXT NOT NULL,
            path     TEXT NOT NULL,
            target   TEXT,
            status   BIGINT NOT NULL
        )",
            "CREATE INDEX audit_ts ON audit (ts_ms)",
        ],
    },
    Migration {
        version: 2,
        name: "audit: writing instance",
        statements: &["ALTER TABLE audit ADD COLUMN instance TEXT"],
    },
    Migration {
        version: 3,
        name: "client keys",
        statements: &[
            "CREATE TABLE client_keys (
            id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            secret_hash TEXT NOT NULL UNIQUE,
            masked      TEXT NOT NULL,
            doc         TEXT NOT NULL,
            created_ms  BIGINT NOT NULL,
            updated_ms  BIGINT NOT NULL
        )",
            "ALTER TABLE request_logs ADD COLUMN client_key TEXT",
        ],
    },
    Migration {
        version: 4,
        name: "request log: usage and cost ledger",
        statements: LEDGER_COLUMNS,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered() {
        for list in [MYSQL, POSTGRES] {
            let mut last = 0;
            for m in list {
                assert_eq!(m.version, last + 1, "migration versions must be 1, 2, 3...");
                assert!(!m.statements.is_empty(), "{}", m.name);
                last = m.version;
            }
        }
        assert!(MYSQL[0].statements[0].ends_with(MYSQL_TABLE));
    }
}
