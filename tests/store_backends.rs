//! The store on all three backends — SQLite, MariaDB and PostgreSQL, the
//! last two real servers started by the test — through the one `Store`
//! handle the gateway uses: CRUD, all-or-nothing batches, import, request
//! logs (filters, keyset pages, instance), usage with percentiles,
//! retention, the audit trail, ids kept across a reopen, concurrent
//! migrations, and start-up errors that name the problem.

mod support;

use llm_orchestrator::store::{
    AuditQuery, AuditRow, ChangeResult, ConfigChange, LogQuery, RequestLog, Store, StoreError,
    UsageQuery, UsageRow,
};
use serde_json::json;
use support::db::{MariaDb, Postgres, PASSWORD};

fn create(name: &str, doc: serde_json::Value) -> ConfigChange {
    ConfigChange::CreateProvider {
        name: name.into(),
        doc,
    }
}

fn created(r: &ChangeResult) -> i64 {
    match r {
        ChangeResult::Created { id } => *id,
        other => panic!("not a create: {other:?}"),
    }
}

fn log(ts: i64, provider: &str, model: &str, status: u16, latency: f64, tokens: u64) -> RequestLog {
    RequestLog {
        ts_ms: ts,
        request_id: format!("r-{ts}"),
        api: "openai".into(),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        model: Some(model.into()),
        provider: Some(provider.into()),
        key: Some("sk-…0001".into()),
        status,
        outcome: if status < 400 { "ok" } else { "upstream_error" }.into(),
        attempts: 1,
        stream: status == 200,
        latency_ms: latency,
        ttfb_ms: Some(latency / 2.0),
        prompt_tokens: Some(tokens),
        completion_tokens: Some(tokens * 2),
        cached_tokens: None,
        error: (status >= 400).then(|| format!("failure at {ts}")),
        upstream_model: Some(format!("{model}-2025")),
        cache_write_tokens: Some(tokens),
        cache_write_1h_tokens: Some(0),
        reasoning_tokens: Some(1),
        cost_micros: Some(tokens * 100),
        client_key_id: Some(7),
        client_key: Some("#7 app (llmo-…abcd)".into()),
        ..Default::default()
    }
}

/// Everything the store keeps, on one backend. `url` is a fresh database.
async fn matrix(url: &str) {
    let store = Store::open_as(url, "node-a:8000").await.expect("open");
    assert_eq!(store.config_version().await.unwrap(), 0);
    assert!(store.list_providers().await.unwrap().is_empty());
    assert_eq!(store.get_settings().await.unwrap(), json!({}));

    // --- configuration CRUD in one batch
    let doc = json!({"type": "openai", "base_url": "https://a.example", "keys": ["k1"], "weight": 2, "ünï": "код"});
    let (v, res) = store
        .apply(vec![
            create("alpha", doc.clone()),
            create("Beta", json!({"base_url": "https://b.example"})),
            ConfigChange::SetAlias {
                alias: "fast".into(),
                target: "alpha/gpt-4o-mini".into(),
            },
            ConfigChange::SetSettings {
                doc: json!({"routing": {"strategy": "weighted"}}),
            },
        ])
        .await
        .unwrap();
    assert_eq!(v, 1);
    let (a, b) = (created(&res[0]), created(&res[1]));
    assert!(b > a);
    let got = store.get_provider(a).await.unwrap().unwrap();
    assert_eq!((got.name.as_str(), &got.doc), ("alpha", &doc));
    assert!(store.get_provider(99_999).await.unwrap().is_none());
    // Names are case-sensitive, as in SQLite.
    let (_, res) = store.apply(vec![create("beta", json!({}))]).await.unwrap();
    let lower_b = created(&res[0]);
    let names: Vec<_> = store
        .list_providers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["alpha", "Beta", "beta"]);

    // Update, delete, alias overwrite, settings replace.
    let (v, res) = store
        .apply(vec![
            ConfigChange::UpdateProvider {
                id: a,
                name: "alpha2".into(),
                doc: json!({"replaced": true}),
            },
            ConfigChange::DeleteProvider { id: lower_b },
            ConfigChange::SetAlias {
                alias: "fast".into(),
                target: "alpha2/x".into(),
            },
            ConfigChange::SetAlias {
                alias: "Zed".into(),
                target: "y".into(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(v, 3);
    assert_eq!(
        res,
        [
            ChangeResult::Updated { id: a },
            ChangeResult::Deleted { id: lower_b },
            ChangeResult::AliasSet,
            ChangeResult::AliasSet
        ]
    );
    assert_eq!(
        store.list_aliases().await.unwrap(),
        [
            ("Zed".to_string(), "y".to_string()),
            ("fast".into(), "alpha2/x".into())
        ],
        "aliases sort by bytes, as in SQLite"
    );

    // --- all or nothing: a conflict at index 2 writes nothing.
    let (idx, err) = store
        .apply(vec![
            create("new1", json!({})),
            ConfigChange::SetAlias {
                alias: "al".into(),
                target: "t".into(),
            },
            create("alpha2", json!({})),
        ])
        .await
        .unwrap_err();
    assert_eq!(idx, 2);
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m == "provider name `alpha2` already exists"),
        "{err:?}"
    );
    let (idx, err) = store
        .apply(vec![
            create("ok", json!({})),
            ConfigChange::DeleteProvider { id: 424_242 },
        ])
        .await
        .unwrap_err();
    assert_eq!(idx, 1);
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let (idx, err) = store
        .apply(vec![ConfigChange::DeleteAlias {
            alias: "nope".into(),
        }])
        .await
        .unwrap_err();
    assert_eq!(idx, 0);
    assert!(matches!(err, StoreError::NotFound(_)));
    assert_eq!(
        store.config_version().await.unwrap(),
        3,
        "failed batches bump nothing"
    );
    assert_eq!(store.list_providers().await.unwrap().len(), 2);
    assert_eq!(store.apply(vec![]).await.unwrap(), (3, vec![]));

    // --- import: a provider that stays keeps its id and created_ms.
    let before = store.get_provider(b).await.unwrap().unwrap();
    let v = store
        .replace_all(
            vec![
                ("fresh".into(), json!({"f": true})),
                ("Beta".into(), json!({"base_url": "https://b.example"})),
            ],
            vec![("new".into(), "fresh/m".into())],
            json!({"b": 2}),
        )
        .await
        .unwrap();
    assert_eq!(v, 4);
    let providers = store.list_providers().await.unwrap();
    let summary: Vec<_> = providers.iter().map(|p| (p.id, p.name.as_str())).collect();
    assert_eq!(summary[0], (b, "Beta"), "kept its id");
    assert_eq!(summary[1].1, "fresh");
    assert_eq!(providers[0].created_ms, before.created_ms);
    assert_eq!(providers[0].updated_ms, before.updated_ms, "unchanged doc");
    assert_eq!(
        store.list_aliases().await.unwrap(),
        [("new".to_string(), "fresh/m".to_string())]
    );
    assert_eq!(store.get_settings().await.unwrap(), json!({"b": 2}));
    let err = store
        .replace_all(
            vec![("x".into(), json!({})), ("x".into(), json!({}))],
            vec![],
            json!({}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    assert_eq!(store.config_version().await.unwrap(), 4);

    // --- request logs: 1,200 rows (more than one INSERT chunk).
    let rows: Vec<RequestLog> = (0..1200)
        .map(|i| {
            let status = if i % 10 == 0 { 500 } else { 200 };
            let mut r = log(
                1_800_000_000_000 + i * 1000,
                ["p1", "p2", "p3"][i as usize % 3],
                ["m1", "m2"][i as usize % 2],
                status,
                (i % 100) as f64 + 0.5,
                i as u64,
            );
            if i == 7 {
                // Text the servers would refuse as is: over the column
                // size, and a NUL byte. Clipped, not the batch lost.
                r.model = Some(format!("m\0{}", "x".repeat(400)));
                r.error = Some("e".repeat(70_000));
            }
            r
        })
        .collect();
    store.insert_logs(rows.clone()).await.unwrap();
    store.insert_logs(vec![]).await.unwrap();
    let page = store.query_logs(LogQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 50);
    let newest = &page.items[0];
    assert_eq!(newest.instance.as_deref(), Some("node-a:8000"));
    let mut expect = rows[1199].clone();
    expect.id = newest.row.id;
    assert_eq!(newest.row, expect, "every field round-trips");
    // Walk all pages with a filter.
    let mut seen = Vec::new();
    let mut q = LogQuery {
        provider: Some("p2".into()),
        min_status: Some(400),
        limit: Some(7),
        ..Default::default()
    };
    loop {
        let page = store.query_logs(q.clone()).await.unwrap();
        seen.extend(page.items.iter().map(|e| e.row.ts_ms));
        match page.next_before_id {
            Some(c) => q.before_id = Some(c),
            None => break,
        }
    }
    let want: Vec<i64> = rows
        .iter()
        .rev()
        .filter(|r| r.provider.as_deref() == Some("p2") && r.status >= 400)
        .map(|r| r.ts_ms)
        .collect();
    assert_eq!(seen, want);
    let ranged = store
        .query_logs(LogQuery {
            since_ms: Some(1_800_000_000_000 + 100_000),
            until_ms: Some(1_800_000_000_000 + 110_000),
            model: Some("m1".into()),
            status: Some(200),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ranged.items.len(),
        4,
        "100..110 s, even, not multiple of 10"
    );
    let clipped = store
        .query_logs(LogQuery {
            since_ms: Some(1_800_000_007_000),
            until_ms: Some(1_800_000_007_001),
            ..Default::default()
        })
        .await
        .unwrap();
    let r7 = &clipped.items[0].row;
    if url.starts_with("sqlite") {
        assert_eq!(r7.model, rows[7].model, "SQLite stores any text as is");
    } else {
        assert_eq!(r7.model.as_ref().map(|m| m.chars().count()), Some(255));
        assert!(!r7.model.as_deref().unwrap_or("").contains('\0'));
    }

    // --- usage: the SQLite unit test's fixture and figures.
    let base = 1_700_000_020_000; // 40 s into a minute
    store
        .insert_logs(vec![
            log(base, "a", "u1", 200, 10.0, 1),
            log(base + 5_000, "a", "u2", 500, 30.0, 2),
            log(base + 10_000, "b", "u1", 200, 20.0, 3),
            log(base + 25_000, "a", "u1", 429, 40.0, 4),
            log(base + 30_000, "b", "u2", 200, 50.0, 5),
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
    let window = |bucket: Option<u32>, group: Option<&str>| UsageQuery {
        since_ms: Some(minute0),
        until_ms: Some(minute0 + 180_000),
        bucket_secs: bucket,
        group_by: group.map(str::to_string),
        scope: None,
    };
    let all = store.usage(window(None, None)).await.unwrap();
    assert_eq!(
        all,
        [UsageRow {
            bucket_start_ms: minute0,
            group: None,
            requests: 6,
            errors: 2,
            prompt_tokens: 15,
            completion_tokens: 30,
            cached_tokens: 0,
            cache_write_tokens: 15,
            reasoning_tokens: 5,
            cost_micros: 1500,
            avg_latency_ms: 155.0 / 6.0,
            p50_latency_ms: Some(25.0),
            p95_latency_ms: Some(50.0),
        }]
    );
    // The ledger: per client key, and the spend budgets reload at start.
    let by_key = store.usage(window(None, Some("key"))).await.unwrap();
    let groups: Vec<_> = by_key
        .iter()
        .map(|r| (r.group.clone(), r.cost_micros))
        .collect();
    assert_eq!(
        groups,
        [(None, 0), (Some("#7 app (llmo-…abcd)".to_string()), 1500)]
    );
    // Rows from base + 10 s on, less those after the window (other parts
    // of this test write later rows).
    let spend = |since: i64| {
        let store = &store;
        async move {
            let rows = store.spend_by_key(since).await.unwrap();
            assert!(rows.iter().all(|r| r.key_id == 7), "{rows:?}");
            rows.first().map_or((0, 0), |r| (r.tokens, r.cost_micros))
        }
    };
    let (from, after) = (spend(base + 10_000).await, spend(base + 90_001).await);
    assert_eq!(
        (from.0 - after.0, from.1 - after.1),
        (3 * (3 + 4 + 5), 1200)
    );
    let per_min: Vec<_> = store
        .usage(window(Some(60), None))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.bucket_start_ms - minute0,
                r.requests,
                r.errors,
                r.p50_latency_ms,
            )
        })
        .collect();
    assert_eq!(
        per_min,
        [
            (0, 3, 1, Some(20.0)),
            (60_000, 2, 1, Some(45.0)),
            (120_000, 1, 0, Some(5.0))
        ]
    );
    let by_model: Vec<_> = store
        .usage(window(None, Some("model")))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.group.clone(), r.requests, r.avg_latency_ms))
        .collect();
    assert_eq!(
        by_model,
        [
            (None, 1, 5.0),
            (Some("u1".to_string()), 3, 70.0 / 3.0),
            (Some("u2".to_string()), 2, 40.0)
        ],
        "the model-less row first, as in SQLite"
    );
    let grouped: Vec<_> = store
        .usage(window(Some(60), Some("provider")))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.bucket_start_ms - minute0, r.group.clone(), r.requests))
        .collect();
    assert_eq!(grouped.len(), 5);
    assert_eq!(grouped[0], (0, Some("a".to_string()), 2));
    let err = store
        .usage(UsageQuery {
            group_by: Some("key; DROP TABLE x".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));

    // --- retention: by age (more than one delete chunk is not needed for
    // correctness here), then by count.
    assert_eq!(store.prune_logs(base + 10_001).await.unwrap(), 3);
    assert_eq!(store.prune_logs(base + 10_001).await.unwrap(), 0);
    let deleted = store.prune_logs_to(100).await.unwrap();
    assert_eq!(deleted, 1200 + 3 - 100);
    let left = store
        .query_logs(LogQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.items.len(), 100);
    assert_eq!(store.prune_logs_to(100).await.unwrap(), 0);
    let newest_id = left.items[0].row.id.unwrap();

    // --- audit trail
    let audit: Vec<AuditRow> = (0..25)
        .map(|i| AuditRow {
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
            // The store names its own instance; a caller's value is ignored.
            instance: Some("not-me".into()),
        })
        .collect();
    store.insert_audit(audit).await.unwrap();
    let first = store
        .query_audit(AuditQuery {
            limit: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.items[0].target.as_deref(), Some("p24"));
    assert!(
        first
            .items
            .iter()
            .all(|r| r.instance.as_deref() == Some("node-a:8000")),
        "audit rows name their instance like request-log rows: {:?}",
        first.items[0]
    );
    let writes = store
        .query_audit(AuditQuery {
            action: Some("write".into()),
            since_ms: Some(1_010),
            limit: Some(100),
            before_id: None,
        })
        .await
        .unwrap();
    assert_eq!(writes.items.len(), 8);
    assert_eq!(store.prune_audit(1_010).await.unwrap(), 10);
    assert_eq!(store.prune_audit_to(5).await.unwrap(), 10);
    assert_eq!(
        store
            .query_audit(AuditQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        5
    );

    // --- reopen (a restart): same state, ids keep growing, never reused.
    drop(store);
    let store = Store::open_as(url, "node-b:8000").await.expect("reopen");
    assert_eq!(store.config_version().await.unwrap(), 4);
    assert_eq!(store.list_providers().await.unwrap().len(), 2);
    let (_, res) = store.apply(vec![create("after", json!({}))]).await.unwrap();
    assert!(
        created(&res[0]) > lower_b,
        "a deleted provider's id is not reused"
    );
    assert_eq!(store.prune_logs(i64::MAX).await.unwrap(), 100);
    store
        .insert_logs(vec![log(1, "p", "m", 200, 1.0, 1)])
        .await
        .unwrap();
    let page = store.query_logs(LogQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(
        page.items[0].row.id.unwrap() > newest_id,
        "log ids (page cursors) continue after the table was emptied"
    );
    assert_eq!(page.items[0].instance.as_deref(), Some("node-b:8000"));
    store
        .insert_audit(vec![AuditRow {
            ts_ms: 5_000,
            action: "write".into(),
            who: "0123abcd".into(),
            listener: "admin".into(),
            method: "DELETE".into(),
            path: "/api/providers/1".into(),
            status: 204,
            ..Default::default()
        }])
        .await
        .unwrap();
    let audit = store.query_audit(AuditQuery::default()).await.unwrap();
    assert_eq!(audit.items[0].instance.as_deref(), Some("node-b:8000"));
    assert_eq!(audit.items[1].instance.as_deref(), Some("node-a:8000"));
    assert_eq!(
        store.migrate().await.unwrap(),
        store.schema_version().await.unwrap()
    );
    client_keys(&store).await;
}

/// Client keys: created, listed, updated, deleted through `apply`, each a
/// config-version bump (that is how other instances notice).
async fn client_keys(store: &Store) {
    let before = store.config_version().await.unwrap();
    let doc = json!({"name": "team-a", "owner": "ops", "models": ["gpt-4o*"], "apis": ["openai"], "expires_ms": null, "enabled": true});
    let (v, res) = store
        .apply(vec![
            ConfigChange::CreateKey {
                hash: "a".repeat(64),
                masked: "llmo-…aaaa".into(),
                doc: doc.clone(),
            },
            ConfigChange::CreateKey {
                hash: "b".repeat(64),
                masked: "llmo-…bbbb".into(),
                doc: json!({"name": "ünï", "enabled": false}),
            },
        ])
        .await
        .unwrap();
    assert_eq!(v, before + 1);
    let (k1, k2) = (created(&res[0]), created(&res[1]));
    let keys = store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].id, keys[0].hash.as_str(), keys[0].masked.as_str()),
        (k1, "a".repeat(64).as_str(), "llmo-…aaaa")
    );
    assert_eq!(keys[0].doc, doc);
    assert_eq!(keys[1].doc["name"], "ünï");
    // The same hash twice is refused, and the batch with it.
    let dup = store
        .apply(vec![ConfigChange::CreateKey {
            hash: "a".repeat(64),
            masked: "x".into(),
            doc: json!({}),
        }])
        .await;
    assert!(dup.is_err());
    let changed = json!({"name": "team-a", "enabled": false});
    let (_, res) = store
        .apply(vec![ConfigChange::UpdateKey {
            id: k1,
            doc: changed.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(res, vec![ChangeResult::Updated { id: k1 }]);
    assert_eq!(store.list_keys().await.unwrap()[0].doc, changed);
    let missing = store
        .apply(vec![ConfigChange::UpdateKey {
            id: 999_999,
            doc: json!({}),
        }])
        .await;
    assert!(matches!(missing, Err((0, StoreError::NotFound(_)))));
    store
        .apply(vec![ConfigChange::DeleteKey { id: k2 }])
        .await
        .unwrap();
    let left = store.list_keys().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, k1);
    let gone = store.apply(vec![ConfigChange::DeleteKey { id: k2 }]).await;
    assert!(matches!(gone, Err((0, StoreError::NotFound(_)))));

    // The request log names the client key (nullable column).
    let mut row = log(9_000_000, "alpha", "key-model", 200, 5.0, 1);
    row.client_key = Some(format!("#{k1} team-a (llmo-…aaaa)"));
    store.insert_logs(vec![row]).await.unwrap();
    let page = store
        .query_logs(LogQuery {
            model: Some("key-model".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.items[0].row.client_key.as_deref(),
        Some(format!("#{k1} team-a (llmo-…aaaa)").as_str())
    );
}

#[tokio::test]
async fn sqlite_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    matrix(&format!("sqlite:///{}", dir.path().join("m.db").display())).await;
}

#[tokio::test]
async fn mariadb_keeps_everything() {
    let db = MariaDb::start().await;
    matrix(&db.url()).await;
    // The original design's URL form names the same database.
    let store = Store::open(&db.url().replacen("mysql://", "mysql+asyncmy://", 1))
        .await
        .expect("mysql+asyncmy:// form");
    assert_eq!(store.list_providers().await.unwrap().len(), 3);
    assert!(!store.location().contains(PASSWORD), "{}", store.location());
}

#[tokio::test]
async fn postgres_keeps_everything() {
    let db = Postgres::start().await;
    matrix(&db.url()).await;
    let store = Store::open(&db.url().replacen("postgres://", "postgresql://", 1))
        .await
        .expect("postgresql:// form");
    assert_eq!(store.list_providers().await.unwrap().len(), 3);
}

/// Several instances starting at once on an empty database: the migration
/// lock lets one migrate; the others find the schema done.
async fn concurrent_first_start(url: &str) {
    let names: Vec<String> = (0..6).map(|i| format!("n{i}")).collect();
    let opens = names.iter().map(|n| Store::open_as(url, n));
    let stores = futures_util::future::join_all(opens).await;
    for s in &stores {
        let s = s.as_ref().expect("every instance opens");
        assert_eq!(s.schema_version().await.unwrap(), 4);
    }
    let first = stores[0].as_ref().unwrap();
    assert_eq!(first.config_version().await.unwrap(), 0, "one version row");
}

/// Wrong password, unknown database, nothing listening: each says so,
/// without the password.
async fn open_errors(good: &str, closed_port_url: &str) {
    let wrong = good.replace(PASSWORD, "not-the-password");
    let err = Store::open(&wrong).await.unwrap_err().to_string();
    assert!(err.contains("wrong user name or password"), "{err}");
    assert!(
        !err.contains("not-the-password") && !err.contains(PASSWORD),
        "{err}"
    );
    let err = Store::open(closed_port_url).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

fn closed_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

#[tokio::test]
async fn mariadb_concurrent_first_start_and_open_errors() {
    let db = MariaDb::start().await;
    concurrent_first_start(&db.url()).await;
    open_errors(
        &db.url(),
        &db.url()
            .replace(&db.port.to_string(), &closed_port().to_string()),
    )
    .await;
    let err = Store::open(&db.url().replace("/llm", "/nope"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not exist") || err.contains("wrong user"),
        "{err}"
    );
}

#[tokio::test]
async fn postgres_concurrent_first_start_and_open_errors() {
    let db = Postgres::start().await;
    concurrent_first_start(&db.url()).await;
    open_errors(
        &db.url(),
        &db.url()
            .replace(&db.port.to_string(), &closed_port().to_string()),
    )
    .await;
    let err = Store::open(&db.url().replace("/postgres", "/nope"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the database does not exist"), "{err}");
    // TLS options in the URL reach the driver: this server has no TLS, so
    // `sslmode=require` must fail (and `prefer`, the driver's default, not).
    let err = Store::open(&format!("{}?sslmode=require", db.url()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("tls"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    assert!(Store::open(&format!("{}?sslmode=prefer", db.url()))
        .await
        .is_ok());
}

/// Down while running: calls fail fast with `Unavailable` (the admin API's
/// 503), and the same handle works again once the server is back.
#[tokio::test]
async fn mariadb_outage_fails_fast_and_recovers() {
    let mut db = MariaDb::start().await;
    let store = Store::open(&db.url()).await.unwrap();
    store.apply(vec![create("a", json!({}))]).await.unwrap();
    db.stop();
    let started = std::time::Instant::now();
    let (_, err) = store.apply(vec![create("b", json!({}))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        store.insert_logs(vec![log(1, "p", "m", 200, 1.0, 1)]).await,
        Err(StoreError::Unavailable(_))
    ));
    db.restart().await;
    store.apply(vec![create("b", json!({}))]).await.unwrap();
    assert_eq!(store.list_providers().await.unwrap().len(), 2);
}

#[tokio::test]
async fn postgres_outage_fails_fast_and_recovers() {
    let mut db = Postgres::start().await;
    let store = Store::open(&db.url()).await.unwrap();
    store.apply(vec![create("a", json!({}))]).await.unwrap();
    db.stop();
    let started = std::time::Instant::now();
    let (_, err) = store.apply(vec![create("b", json!({}))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    db.restart().await;
    store.apply(vec![create("b", json!({}))]).await.unwrap();
    assert_eq!(store.list_providers().await.unwrap().len(), 2);
}
