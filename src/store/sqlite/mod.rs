//! The embedded SQLite backend (the default): API-managed configuration and
//! request logs in one file, for one instance.
//!
//! One dedicated thread owns the connection and runs every blocking SQLite
//! call; the async methods only hand it a closure and await the answer, so no
//! runtime worker ever waits on the disk. A request whose caller stops
//! awaiting still runs to completion (a cancelled `apply` may have committed).

mod audit;
mod logs;
mod schema;

use std::collections::HashSet;
use std::fmt;
use std::sync::{mpsc, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{ChangeResult, ConfigChange, StoreError, StoredKey, StoredProvider};
use schema::Job;

/// Handle to the database; cheap to clone. The worker thread stops and the
/// connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: mpsc::Sender<Job>,
    location: String,
    /// Written into every request-log row's `instance` column.
    instance: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .finish()
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `url` and migrate it.
    ///
    /// `sqlite:///./data/x.db` is relative to the working directory,
    /// `sqlite:////abs/x.db` absolute, `sqlite::memory:` in memory (one
    /// private database per `open`). Parent directories are created.
    #[cfg(test)]
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        Self::open_as(url, "").await
    }

    /// [`SqliteStore::open`], naming the instance its request-log rows
    /// carry.
    pub async fn open_as(url: &str, instance: &str) -> Result<SqliteStore, StoreError> {
        let location = schema::parse_url(url)?;
        let label = location.to_string();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || match schema::open_connection(&location) {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    schema::run_worker(conn, queue);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Io(format!("start the SQLite thread: {e}")))?;
        ready_rx
            .await
            .map_err(|_| StoreError::Io("the SQLite thread died while opening".into()))??;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                jobs,
                location: label,
                instance: instance.to_owned(),
            }),
        };
        let version = store.migrate().await?;
        tracing::info!(db = %store.inner.location, schema_version = version, "opened SQLite store");
        Ok(store)
    }

    /// The database file (or `:memory:`), for logs.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// Run `f` on the worker thread and hand back what it returns.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have given up waiting; the work is done anyway.
            let _ = tx.send(f(conn));
        });
        self.inner
            .jobs
            .send(job)
            .map_err(|_| StoreError::Io("the SQLite thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Io("the SQLite thread dropped the request".into()))
    }

    /// [`SqliteStore::run`] for closures that can fail.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(f).await?
    }

    /// Run a chunked `DELETE` (`?1` = its bound, `?2` = the chunk size)
    /// until a chunk deletes fewer rows than the chunk size. Each chunk is
    /// its own job on the database thread, so configuration writes queued
    /// behind a big prune are not starved. Returns the rows deleted.
    async fn delete_in_chunks(&self, sql: &'static str, bound: i64) -> Result<u64, StoreError> {
        const CHUNK: usize = 5000;
        let mut total = 0u64;
        loop {
            let n = self
                .call(move |c| {
                    Ok(c.prepare_cached(sql)?
                        .execute(rusqlite::params![bound, CHUNK])?)
                })
                .await?;
            total += n as u64;
            if n < CHUNK {
                return Ok(total);
            }
        }
    }

    /// Apply pending migrations (each in one transaction); returns the schema
    /// version after. Runs on every `open`; calling it again is harmless.
    pub async fn migrate(&self) -> Result<u32, StoreError> {
        self.call(schema::migrate).await
    }

    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.call(|c| schema::schema_version(c)).await
    }

    /// Bumped by every committed configuration change; 0 for a new database.
    pub async fn config_version(&self) -> Result<u64, StoreError> {
        self.call(|c| read_config_version(c)).await
    }

    /// All API-managed providers, ordered by id.
    pub async fn list_providers(&self) -> Result<Vec<StoredProvider>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, name, doc, created_ms, updated_ms FROM providers ORDER BY id",
            )?;
            let rows = stmt.query_map([], provider_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(decode_provider(row?)?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn get_provider(&self, id: i64) -> Result<Option<StoredProvider>, StoreError> {
        self.call(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT id, name, doc, created_ms, updated_ms FROM providers WHERE id = ?1",
                )?
                .query_row([id], provider_row)
                .optional()?;
            row.map(decode_provider).transpose()
        })
        .await
    }

    /// Every client key, ordered by id.
    pub async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, secret_hash, masked, doc, created_ms, updated_ms
                 FROM client_keys ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, hash, masked, doc, created_ms, updated_ms) = row?;
                out.push(StoredKey {
                    id,
                    hash,
                    masked,
                    doc: decode_json(&doc, "client key")?,
                    created_ms,
                    updated_ms,
                });
            }
            Ok(out)
        })
        .await
    }

    /// `(alias, target)` pairs, ordered by alias.
    pub async fn list_aliases(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare_cached("SELECT alias, target FROM aliases ORDER BY alias")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The settings document; `{}` when never set.
    pub async fn get_settings(&self) -> Result<Value, StoreError> {
        self.call(|c| {
            let doc: Option<Option<String>> = c
                .prepare_cached("SELECT doc FROM settings WHERE id = 1")?
                .query_row([], |r| r.get(0))
                .optional()?;
            match doc.flatten() {
                Some(text) => decode_json(&text, "settings"),
                None => Ok(Value::Object(Default::default())),
            }
        })
        .await
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
        let whole = changes.len();
        self.run(move |c| apply_changes(c, changes))
            .await
            .map_err(|e| (whole, e))?
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
        self.call(move |c| replace_config(c, providers, aliases, settings))
            .await
    }
}

type ProviderRow = (i64, String, String, i64, i64);

fn provider_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProviderRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode_provider(
    (id, name, doc, created_ms, updated_ms): ProviderRow,
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
        .map_err(|e| StoreError::Sqlite(format!("{what}: stored JSON is invalid: {e}")))
}

fn encode_json(doc: &Value) -> Result<String, StoreError> {
    serde_json::to_string(doc).map_err(|e| StoreError::Sqlite(format!("encode JSON: {e}")))
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn read_config_version(c: &Connection) -> Result<u64, StoreError> {
    let v: Option<i64> = c
        .prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'config_version'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

fn bump_config_version(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let v: i64 = tx
        .prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('config_version', '1')
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
             RETURNING CAST(value AS INTEGER)",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(v).unwrap_or(0))
}

fn apply_changes(
    c: &mut Connection,
    changes: Vec<ConfigChange>,
) -> Result<(u64, Vec<ChangeResult>), (usize, StoreError)> {
    let whole = changes.len();
    if changes.is_empty() {
        return read_config_version(c)
            .map(|v| (v, Vec::new()))
            .map_err(|e| (whole, e));
    }
    // IMMEDIATE takes the write lock up front, so the existence and name
    // checks below cannot be invalidated by another process.
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| (whole, e.into()))?;
    let now = now_ms();
    let mut results = Vec::with_capacity(whole);
    for (i, change) in changes.into_iter().enumerate() {
        results.push(apply_one(&tx, change, now).map_err(|e| (i, e))?);
    }
    let version = bump_config_version(&tx).map_err(|e| (whole, e))?;
    tx.commit().map_err(|e| (whole, e.into()))?;
    Ok((version, results))
}

fn provider_exists(tx: &Transaction<'_>, id: i64) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM providers WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Fail with `Conflict` if `name` belongs to a provider other than `owner`.
fn ensure_name_free(
    tx: &Transaction<'_>,
    name: &str,
    owner: Option<i64>,
) -> Result<(), StoreError> {
    let holder: Option<i64> = tx
        .prepare_cached("SELECT id FROM providers WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    match holder {
        Some(id) if Some(id) != owner => Err(StoreError::Conflict(format!(
            "provider name `{name}` already exists"
        ))),
        _ => Ok(()),
    }
}

fn apply_one(
    tx: &Transaction<'_>,
    change: ConfigChange,
    now: i64,
) -> Result<ChangeResult, StoreError> {
    match change {
        ConfigChange::CreateProvider { name, doc } => {
            ensure_name_free(tx, &name, None)?;
            tx.prepare_cached(
                "INSERT INTO providers (name, doc, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)",
            )?
            .execute(params![name, encode_json(&doc)?, now])?;
            Ok(ChangeResult::Created {
                id: tx.last_insert_rowid(),
            })
        }
        ConfigChange::UpdateProvider { id, name, doc } => {
            // Missing id first: renaming a provider that does not exist is
            // a NotFound, whatever the name.
            if !provider_exists(tx, id)? {
                return Err(StoreError::NotFound(format!("provider id {id} not found")));
            }
            ensure_name_free(tx, &name, Some(id))?;
            tx.prepare_cached(
                "UPDATE providers SET name = ?2, doc = ?3, updated_ms = ?4 WHERE id = ?1",
            )?
            .execute(params![id, name, encode_json(&doc)?, now])?;
            Ok(ChangeResult::Updated { id })
        }
        ConfigChange::DeleteProvider { id } => {
            let n = tx
                .prepare_cached("DELETE FROM providers WHERE id = ?1")?
                .execute([id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("provider id {id} not found")));
            }
            Ok(ChangeResult::Deleted { id })
        }
        ConfigChange::SetAlias { alias, target } => {
            tx.prepare_cached(
                "INSERT INTO aliases (alias, target) VALUES (?1, ?2)
                 ON CONFLICT (alias) DO UPDATE SET target = excluded.target",
            )?
            .execute([alias, target])?;
            Ok(ChangeResult::AliasSet)
        }
        ConfigChange::DeleteAlias { alias } => {
            let n = tx
                .prepare_cached("DELETE FROM aliases WHERE alias = ?1")?
                .execute([&alias])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("alias `{alias}` not found")));
            }
            Ok(ChangeResult::AliasDeleted)
        }
        ConfigChange::SetSettings { doc } => {
            write_settings(tx, &doc)?;
            Ok(ChangeResult::SettingsSet)
        }
        ConfigChange::CreateKey { hash, masked, doc } => {
            tx.prepare_cached(
                "INSERT INTO client_keys (secret_hash, masked, doc, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![hash, masked, encode_json(&doc)?, now])?;
            Ok(ChangeResult::Created {
                id: tx.last_insert_rowid(),
            })
        }
        ConfigChange::UpdateKey { id, doc } => {
            let n = tx
                .prepare_cached("UPDATE client_keys SET doc = ?2, updated_ms = ?3 WHERE id = ?1")?
                .execute(params![id, encode_json(&doc)?, now])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("client key {id} not found")));
            }
            Ok(ChangeResult::Updated { id })
        }
        ConfigChange::DeleteKey { id } => {
            let n = tx
                .prepare_cached("DELETE FROM client_keys WHERE id = ?1")?
                .execute([id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("client key {id} not found")));
            }
            Ok(ChangeResult::Deleted { id })
        }
    }
}

fn write_settings(tx: &Transaction<'_>, doc: &Value) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO settings (id, doc) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
    )?
    .execute([encode_json(doc)?])?;
    Ok(())
}

fn replace_config(
    c: &mut Connection,
    providers: Vec<(String, Value)>,
    aliases: Vec<(String, String)>,
    settings: Value,
) -> Result<u64, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let mut keep = HashSet::with_capacity(providers.len());
    for (name, doc) in providers {
        if !keep.insert(name.clone()) {
            return Err(StoreError::Conflict(format!(
                "provider name `{name}` appears twice in the import"
            )));
        }
        // Same name keeps its id; updated_ms only moves when the doc does.
        tx.prepare_cached(
            "INSERT INTO providers (name, doc, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_ms = excluded.updated_ms
             WHERE doc IS NOT excluded.doc",
        )?
        .execute(params![name, encode_json(&doc)?, now])?;
    }
    let stale: Vec<i64> = {
        let mut stmt = tx.prepare_cached("SELECT id, name FROM providers")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut stale = Vec::new();
        for row in rows {
            let (id, name) = row?;
            if !keep.contains(&name) {
                stale.push(id);
            }
        }
        stale
    };
    for id in stale {
        tx.prepare_cached("DELETE FROM providers WHERE id = ?1")?
            .execute([id])?;
    }
    tx.execute("DELETE FROM aliases", [])?;
    let mut seen = HashSet::with_capacity(aliases.len());
    for (alias, target) in aliases {
        if !seen.insert(alias.clone()) {
            return Err(StoreError::Conflict(format!(
                "alias `{alias}` appears twice in the import"
            )));
        }
        tx.prepare_cached("INSERT INTO aliases (alias, target) VALUES (?1, ?2)")?
            .execute([alias, target])?;
    }
    write_settings(&tx, &settings)?;
    let version = bump_config_version(&tx)?;
    tx.commit()?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RequestLog;
    use serde_json::json;

    fn url_for(path: &std::path::Path) -> String {
        // tempdir paths are absolute, so this is the four-slash form.
        format!("sqlite:///{}", path.display())
    }

    async fn open_temp() -> (tempfile::TempDir, SqliteStore, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = url_for(&dir.path().join("nested/dir/test.db"));
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, store, url)
    }

    fn create(name: &str, doc: Value) -> ConfigChange {
        ConfigChange::CreateProvider {
            name: name.into(),
            doc,
        }
    }

    #[tokio::test]
    async fn migrations_are_idempotent() {
        let (_dir, store, url) = open_temp().await;
        assert_eq!(
            store.schema_version().await.unwrap(),
            schema::latest_version()
        );
        assert_eq!(store.migrate().await.unwrap(), schema::latest_version());
        drop(store);
        let again = SqliteStore::open(&url).await.unwrap();
        assert_eq!(
            again.schema_version().await.unwrap(),
            schema::latest_version()
        );
        let rows: i64 = again
            .call(|c| Ok(c.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, i64::from(schema::latest_version()));
        let applied_at: String = again
            .call(|c| {
                Ok(c.query_row(
                    "SELECT applied_at FROM schema_migrations WHERE version = 1",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert!(applied_at.ends_with('Z'), "{applied_at}");
        assert_eq!(again.config_version().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let (_dir, store, url) = open_temp().await;
        store
            .call(|c| {
                c.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'x')",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        drop(store);
        let err = SqliteStore::open(&url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Sqlite(ref m) if m.contains("999")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connection_settings() {
        let (dir, store, _url) = open_temp().await;
        let (mode, sync, fk, busy): (String, i64, i64, i64) = store
            .call(|c| {
                let q = |sql: &str| c.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0));
                let text = |v| match v {
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                };
                let int = |v| match v {
                    rusqlite::types::Value::Integer(i) => i,
                    _ => -1,
                };
                Ok((
                    text(q("PRAGMA journal_mode")?),
                    int(q("PRAGMA synchronous")?),
                    int(q("PRAGMA foreign_keys")?),
                    int(q("PRAGMA busy_timeout")?),
                ))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        assert_eq!(busy, 5000);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join("nested/dir/test.db")).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn memory_databases_are_private() {
        let a = SqliteStore::open("sqlite::memory:").await.unwrap();
        let b = SqliteStore::open("sqlite::memory:").await.unwrap();
        a.apply(vec![create("x", json!({}))]).await.unwrap();
        assert_eq!(a.list_providers().await.unwrap().len(), 1);
        assert!(b.list_providers().await.unwrap().is_empty());
        assert_eq!(a.location(), ":memory:");
        assert!(matches!(
            SqliteStore::open("mysql://x").await,
            Err(StoreError::Url(_))
        ));
    }

    #[tokio::test]
    async fn crud_round_trip() {
        let (_dir, store, url) = open_temp().await;
        assert!(store.list_providers().await.unwrap().is_empty());
        assert!(store.list_aliases().await.unwrap().is_empty());
        assert_eq!(store.get_settings().await.unwrap(), json!({}));

        let doc_a = json!({"base_url": "https://a.example", "keys": ["k1"], "weight": 2});
        let (v, res) = store
            .apply(vec![
                create("a", doc_a.clone()),
                create("b", json!({"base_url": "https://b.example"})),
                ConfigChange::SetAlias {
                    alias: "fast".into(),
                    target: "a/gpt-4o-mini".into(),
                },
                ConfigChange::SetSettings {
                    doc: json!({"retries": 3}),
                },
            ])
            .await
            .unwrap();
        assert_eq!(v, 1);
        let (ChangeResult::Created { id: a }, ChangeResult::Created { id: b }) = (&res[0], &res[1])
        else {
            panic!("{res:?}");
        };
        let (a, b) = (*a, *b);
        assert!(b > a);
        assert_eq!(
            &res[2..],
            &[ChangeResult::AliasSet, ChangeResult::SettingsSet]
        );

        let got = store.get_provider(a).await.unwrap().unwrap();
        assert_eq!((got.name.as_str(), &got.doc), ("a", &doc_a));
        assert_eq!(got.created_ms, got.updated_ms);
        assert!(store.get_provider(9999).await.unwrap().is_none());
        let names: Vec<_> = store
            .list_providers()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a", "b"]);

        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (v, res) = store
            .apply(vec![
                ConfigChange::UpdateProvider {
                    id: a,
                    name: "a2".into(),
                    doc: json!({"replaced": true}),
                },
                ConfigChange::DeleteProvider { id: b },
                ConfigChange::SetAlias {
                    alias: "fast".into(),
                    target: "a2/other".into(),
                },
                ConfigChange::SetAlias {
                    alias: "cheap".into(),
                    target: "x".into(),
                },
            ])
            .await
            .unwrap();
        assert_eq!(v, 2);
        assert_eq!(
            res,
            [
                ChangeResult::Updated { id: a },
                ChangeResult::Deleted { id: b },
                ChangeResult::AliasSet,
                ChangeResult::AliasSet
            ]
        );
        let upd = store.get_provider(a).await.unwrap().unwrap();
        assert_eq!(
            (upd.name.as_str(), &upd.doc),
            ("a2", &json!({"replaced": true}))
        );
        assert_eq!(upd.created_ms, got.created_ms);
        assert!(upd.updated_ms > got.updated_ms);
        assert!(store.get_provider(b).await.unwrap().is_none());

        // Reopening reads the same state from disk.
        drop(store);
        let store = SqliteStore::open(&url).await.unwrap();
        assert_eq!(store.config_version().await.unwrap(), 2);
        assert_eq!(
            store.list_aliases().await.unwrap(),
            [
                ("cheap".to_string(), "x".to_string()),
                ("fast".into(), "a2/other".into())
            ]
        );
        assert_eq!(store.get_settings().await.unwrap(), json!({"retries": 3}));

        let (_, res) = store
            .apply(vec![ConfigChange::DeleteAlias {
                alias: "cheap".into(),
            }])
            .await
            .unwrap();
        assert_eq!(res, [ChangeResult::AliasDeleted]);
        assert_eq!(store.list_aliases().await.unwrap().len(), 1);
        // A new provider never reuses a deleted id.
        let (_, res) = store.apply(vec![create("c", json!({}))]).await.unwrap();
        assert!(matches!(res[0], ChangeResult::Created { id } if id > b));
    }

    #[tokio::test]
    async fn version_increments_per_commit() {
        let (_dir, store, _url) = open_temp().await;
        for expect in 1..=5u64 {
            let (v, _) = store
                .apply(vec![create(&format!("p{expect}"), json!({}))])
                .await
                .unwrap();
            assert_eq!(v, expect);
            assert_eq!(store.config_version().await.unwrap(), expect);
        }
        // Nothing to commit, nothing to bump.
        assert_eq!(store.apply(vec![]).await.unwrap(), (5, vec![]));
        // A failed batch does not bump either.
        assert!(store
            .apply(vec![ConfigChange::DeleteProvider { id: 999 }])
            .await
            .is_err());
        assert_eq!(store.config_version().await.unwrap(), 5);
        assert_eq!(
            store.replace_all(vec![], vec![], json!({})).await.unwrap(),
            6
        );
    }

    #[tokio::test]
    async fn apply_is_all_or_nothing() {
        let (_dir, store, _url) = open_temp().await;
        let (v0, res) = store
            .apply(vec![create("taken", json!({"n": 1}))])
            .await
            .unwrap();
        let ChangeResult::Created { id: taken } = res[0] else {
            panic!()
        };

        let (idx, err) = store
            .apply(vec![
                create("new1", json!({})),
                ConfigChange::SetAlias {
                    alias: "al".into(),
                    target: "t".into(),
                },
                create("taken", json!({"n": 2})),
                ConfigChange::SetSettings {
                    doc: json!({"x": 1}),
                },
            ])
            .await
            .unwrap_err();
        assert_eq!(idx, 2);
        assert!(
            matches!(err, StoreError::Conflict(ref m) if m == "provider name `taken` already exists"),
            "{err:?}"
        );
        assert_eq!(store.config_version().await.unwrap(), v0);
        let providers = store.list_providers().await.unwrap();
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].doc, json!({"n": 1}));
        assert!(store.list_aliases().await.unwrap().is_empty());
        assert_eq!(store.get_settings().await.unwrap(), json!({}));

        // Missing ids are NotFound at their own index.
        let (idx, err) = store
            .apply(vec![
                create("ok", json!({})),
                ConfigChange::UpdateProvider {
                    id: 777,
                    name: "taken".into(),
                    doc: json!({}),
                },
            ])
            .await
            .unwrap_err();
        assert_eq!(idx, 1);
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        let (idx, err) = store
            .apply(vec![ConfigChange::DeleteProvider { id: 777 }])
            .await
            .unwrap_err();
        assert_eq!(idx, 0);
        assert!(matches!(err, StoreError::NotFound(_)));
        let (idx, err) = store
            .apply(vec![ConfigChange::DeleteAlias {
                alias: "nope".into(),
            }])
            .await
            .unwrap_err();
        assert_eq!(idx, 0);
        assert!(matches!(err, StoreError::NotFound(_)));

        // Renaming onto another provider's name conflicts; keeping one's own
        // name does not. Names freed earlier in the batch can be reused.
        let (_, res) = store.apply(vec![create("other", json!({}))]).await.unwrap();
        let ChangeResult::Created { id: other } = res[0] else {
            panic!()
        };
        let (idx, err) = store
            .apply(vec![ConfigChange::UpdateProvider {
                id: other,
                name: "taken".into(),
                doc: json!({}),
            }])
            .await
            .unwrap_err();
        assert_eq!(idx, 0);
        assert!(matches!(err, StoreError::Conflict(_)));
        store
            .apply(vec![
                ConfigChange::UpdateProvider {
                    id: taken,
                    name: "taken".into(),
                    doc: json!({"n": 3}),
                },
                ConfigChange::DeleteProvider { id: other },
                create("other", json!({"again": true})),
            ])
            .await
            .unwrap();
        let names: Vec<_> = store
            .list_providers()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["taken", "other"]);
    }

    #[tokio::test]
    async fn replace_all_swaps_everything() {
        let (_dir, store, _url) = open_temp().await;
        let (_, res) = store
            .apply(vec![
                create("keep", json!({"v": 1})),
                create("drop", json!({})),
                ConfigChange::SetAlias {
                    alias: "old".into(),
                    target: "drop/m".into(),
                },
                ConfigChange::SetSettings {
                    doc: json!({"a": 1}),
                },
            ])
            .await
            .unwrap();
        let ChangeResult::Created { id: keep_id } = res[0] else {
            panic!()
        };
        let before = store.get_provider(keep_id).await.unwrap().unwrap();

        let v = store
            .replace_all(
                vec![
                    ("fresh".into(), json!({"f": true})),
                    ("keep".into(), json!({"v": 2})),
                ],
                vec![("new".into(), "fresh/m".into())],
                json!({"b": 2}),
            )
            .await
            .unwrap();
        assert_eq!(v, 2);
        let providers = store.list_providers().await.unwrap();
        let summary: Vec<_> = providers
            .iter()
            .map(|p| (p.name.as_str(), p.doc.clone()))
            .collect();
        assert_eq!(
            summary,
            [("keep", json!({"v": 2})), ("fresh", json!({"f": true}))]
        );
        assert_eq!(
            providers[0].id, keep_id,
            "a provider that stays keeps its id"
        );
        assert_eq!(providers[0].created_ms, before.created_ms);
        assert_eq!(
            store.list_aliases().await.unwrap(),
            [("new".to_string(), "fresh/m".to_string())]
        );
        assert_eq!(store.get_settings().await.unwrap(), json!({"b": 2}));

        // Duplicates abort the whole import.
        let err = store
            .replace_all(
                vec![("x".into(), json!({})), ("x".into(), json!({}))],
                vec![],
                json!({}),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
        let err = store
            .replace_all(
                vec![],
                vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                json!({}),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
        assert_eq!(store.config_version().await.unwrap(), 2);
        assert_eq!(store.list_providers().await.unwrap().len(), 2);

        // Importing nothing empties the managed config.
        store.replace_all(vec![], vec![], json!({})).await.unwrap();
        assert!(store.list_providers().await.unwrap().is_empty());
        assert!(store.list_aliases().await.unwrap().is_empty());
        assert_eq!(store.get_settings().await.unwrap(), json!({}));
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_worker() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let res: Result<(), StoreError> = store
            .call(|c| {
                c.execute_batch("BEGIN; INSERT INTO aliases VALUES ('p', 't');")?;
                panic!("deliberate test panic");
            })
            .await;
        assert!(matches!(res, Err(StoreError::Io(_))));
        // The half-done transaction was rolled back and the worker still serves.
        assert!(store.list_aliases().await.unwrap().is_empty());
        store
            .apply(vec![ConfigChange::SetAlias {
                alias: "a".into(),
                target: "b".into(),
            }])
            .await
            .unwrap();
    }

    /// Env var that turns this test binary into the durability writer.
    const WRITER_ENV: &str = "STORE_DURABILITY_WRITER_DB";
    /// Prefix of the writer's acknowledgement lines.
    const ACK_MARK: &str = "@durable@ ";

    /// The child: commits changes as fast as it can and prints each one only
    /// after `apply`/`insert_logs` returned, until it is killed (or a bound).
    fn durability_writer(db: std::path::PathBuf) {
        use std::io::Write;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = SqliteStore::open(&url_for(&db)).await.unwrap();
            let started = std::time::Instant::now();
            let mut logged = 0u64;
            for i in 0..100_000u32 {
                if started.elapsed() > std::time::Duration::from_secs(120) {
                    break;
                }
                let name = format!("p{i}");
                let (v, res) = store
                    .apply(vec![create(&name, json!({"i": i, "pad": "x".repeat(200)}))])
                    .await
                    .unwrap();
                let ChangeResult::Created { id } = res[0] else {
                    panic!()
                };
                let mut out = std::io::stdout().lock();
                writeln!(out, "{ACK_MARK}ack {v} {id} {name}").unwrap();
                if i % 5 == 0 {
                    let rows: Vec<RequestLog> = (0..100)
                        .map(|j| RequestLog {
                            ts_ms: i64::from(i) * 1000 + j,
                            request_id: format!("r{i}-{j}"),
                            status: 200,
                            ..Default::default()
                        })
                        .collect();
                    store.insert_logs(rows).await.unwrap();
                    logged += 100;
                    writeln!(out, "{ACK_MARK}logs {logged}").unwrap();
                }
                out.flush().unwrap();
            }
        });
    }

    #[test]
    fn acknowledged_writes_survive_sigkill() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        if let Some(db) = std::env::var_os(WRITER_ENV) {
            durability_writer(db.into());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("durable.db");
        // libtest names tests by module path without the crate name.
        let module = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, m)| m);
        let test = format!("{module}::acknowledged_writes_survive_sigkill");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--nocapture", "--test-threads=1"])
            .env(WRITER_ENV, &db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());

        let mut acked: Vec<(u64, i64, String)> = Vec::new();
        let mut logs_acked = 0u64;
        let mut killed = false;
        for line in stdout.lines() {
            let line = line.unwrap();
            // The harness may print on the same line before the marker.
            let Some(at) = line.find(ACK_MARK) else {
                continue;
            };
            let parts: Vec<&str> = line[at + ACK_MARK.len()..].split_whitespace().collect();
            match parts.as_slice() {
                ["ack", v, id, name] => {
                    acked.push((v.parse().unwrap(), id.parse().unwrap(), name.to_string()))
                }
                ["logs", n] => logs_acked = n.parse().unwrap(),
                _ => continue,
            }
            // Kill mid-stream; lines already in the pipe are still read
            // (they were acknowledged before the kill).
            if !killed && acked.len() >= 200 {
                child.kill().unwrap();
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        assert!(
            killed,
            "writer exited early ({status}) after {} acks",
            acked.len()
        );
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "{status}");
        }

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = SqliteStore::open(&url_for(&db)).await.unwrap();
            let integrity: String = store
                .call(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
                .await
                .unwrap();
            assert_eq!(integrity, "ok");
            let version = store.config_version().await.unwrap();
            let last = acked.last().unwrap().0;
            eprintln!(
                "{} acknowledged, last {last}, on disk {version}",
                acked.len()
            );
            assert_eq!(acked[0].0, 1, "the first acknowledgement was not seen");
            assert!(version >= last, "version {version} < acknowledged {last}");
            let present: std::collections::HashMap<i64, String> = store
                .list_providers()
                .await
                .unwrap()
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect();
            for (v, id, name) in &acked {
                assert_eq!(present.get(id), Some(name), "acknowledged version {v} lost");
            }
            let rows: i64 = store
                .call(|c| Ok(c.query_row("SELECT COUNT(*) FROM request_logs", [], |r| r.get(0))?))
                .await
                .unwrap();
            assert!(
                rows as u64 >= logs_acked,
                "{rows} log rows < {logs_acked} acknowledged"
            );
            // The store is still writable after the crash.
            store
                .apply(vec![create("after-crash", json!({}))])
                .await
                .unwrap();
        });
    }
}
