//! The admin audit trail: one row per admin write, per export with keys
//! and per (rate-limited) admin authentication failure. Written in batches
//! by a background task; pruned with the request-log retention.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, TransactionBehavior};

use super::SqliteStore;
use crate::store::{AuditPage, AuditQuery, AuditRow, StoreError};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

impl SqliteStore {
    /// Insert a batch in one transaction.
    pub async fn insert_audit(&self, rows: Vec<AuditRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let instance = self.inner.instance.clone();
        self.call(move |c| insert_rows(c, &rows, &instance)).await
    }

    /// One page, newest first.
    pub async fn query_audit(&self, q: AuditQuery) -> Result<AuditPage, StoreError> {
        self.call(move |c| query_page(c, &q)).await
    }

    /// Delete audit rows with `ts_ms < before_ms`.
    pub async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_in_chunks(
            "DELETE FROM audit WHERE id IN
             (SELECT id FROM audit WHERE ts_ms < ?1 LIMIT ?2)",
            before_ms,
        )
        .await
    }

    /// Keep at most the newest `keep` audit rows.
    pub async fn prune_audit_to(&self, keep: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX).max(1);
        // The id of the oldest row to keep; ids only grow.
        self.delete_in_chunks(
            "DELETE FROM audit WHERE id IN
             (SELECT id FROM audit
              WHERE id < (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1 - 1)
              ORDER BY id LIMIT ?2)",
            keep,
        )
        .await
    }
}

fn insert_rows(c: &mut Connection, rows: &[AuditRow], instance: &str) -> Result<(), StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (ts_ms, action, who, peer, listener, method, path, target, status, instance)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for r in rows {
            stmt.execute(params![
                r.ts_ms, r.action, r.who, r.peer, r.listener, r.method, r.path, r.target, r.status,
                instance
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn query_page(c: &Connection, q: &AuditQuery) -> Result<AuditPage, StoreError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut conds = Vec::new();
    let mut args: Vec<Sql> = Vec::new();
    if let Some(b) = q.before_id {
        args.push(Sql::Integer(b));
        conds.push(format!("id < ?{}", args.len()));
    }
    if let Some(a) = &q.action {
        args.push(Sql::Text(a.clone()));
        conds.push(format!("action = ?{}", args.len()));
    }
    if let Some(s) = q.since_ms {
        args.push(Sql::Integer(s));
        conds.push(format!("ts_ms >= ?{}", args.len()));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    // One row more than asked tells whether there is a next page.
    args.push(Sql::Integer(i64::from(limit) + 1));
    let sql = format!(
        "SELECT id, ts_ms, action, who, peer, listener, method, path, target, status, instance
         FROM audit {filter} ORDER BY id DESC LIMIT ?{}",
        args.len()
    );
    let mut stmt = c.prepare(&sql)?;
    let mut items = stmt
        .query_map(params_from_iter(args), |r| {
            Ok(AuditRow {
                id: r.get(0)?,
                ts_ms: r.get(1)?,
                action: r.get(2)?,
                who: r.get(3)?,
                peer: r.get(4)?,
                listener: r.get(5)?,
                method: r.get(6)?,
                path: r.get(7)?,
                target: r.get(8)?,
                status: r.get(9)?,
                instance: r.get(10)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: i64) -> AuditRow {
        AuditRow {
            id: None,
            ts_ms: 1_000 + i,
            action: if i % 2 == 0 { "write" } else { "auth_failure" }.into(),
            who: "0123abcd".into(),
            peer: Some("127.0.0.1:5000".into()),
            listener: "admin".into(),
            method: "POST".into(),
            path: "/api/providers".into(),
            target: Some(format!("p{i}")),
            status: 201,
            instance: None,
        }
    }

    #[tokio::test]
    async fn pages_filters_and_prunes() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite:///{}", dir.path().join("a.db").display());
        let store = SqliteStore::open(&url).await.expect("open");
        store
            .insert_audit((0..25).map(row).collect())
            .await
            .expect("insert");
        let first = store
            .query_audit(AuditQuery {
                limit: Some(10),
                ..Default::default()
            })
            .await
            .expect("page");
        assert_eq!(first.items.len(), 10);
        assert_eq!(first.items[0].target.as_deref(), Some("p24"));
        let mut seen = first.items.len();
        let mut cursor = first.next_before_id;
        while let Some(c) = cursor {
            let page = store
                .query_audit(AuditQuery {
                    limit: Some(10),
                    before_id: Some(c),
                    ..Default::default()
                })
                .await
                .expect("page");
            seen += page.items.len();
            cursor = page.next_before_id;
        }
        assert_eq!(seen, 25);
        let writes = store
            .query_audit(AuditQuery {
                action: Some("write".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .expect("filter");
        assert_eq!(writes.items.len(), 13);
        assert_eq!(store.prune_audit(1_010).await.expect("prune"), 10);
        assert_eq!(store.prune_audit_to(5).await.expect("prune"), 10);
        let rest = store
            .query_audit(AuditQuery::default())
            .await
            .expect("rest");
        assert_eq!(rest.items.len(), 5);
        assert_eq!(rest.items[0].target.as_deref(), Some("p24"));
    }
}
