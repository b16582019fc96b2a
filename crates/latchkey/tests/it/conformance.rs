use crate::harness::{Backend, TestDb};

/// One test per scenario of the store's conformance suite and per backend, each on a fresh
/// database, so that a failure names both (`conformance::postgres::organizations`).
macro_rules! backend_tests {
    ($($area:ident::$scenario:ident),* $(,)?) => {
        mod sqlite {
            use crate::harness::{Backend, TestDb};
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = TestDb::new(Backend::Sqlite).await;
                    let store = latchkey_store_sqlite::open(&db.url).await.unwrap();
                    latchkey_store::conformance::$area::$scenario(&store).await;
                }
            )*
        }

        mod postgres {
            use crate::harness::{Backend, TestDb};
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = TestDb::new(Backend::Postgres).await;
                    let store = latchkey_store_postgres::open(&db.url, 4).await.unwrap();
                    latchkey_store::conformance::$area::$scenario(&store).await;
                }
            )*
        }
    };
}

latchkey_store::conformance_scenarios!(backend_tests);

/// The whole suite against one database, as it runs against a database that holds data.
#[tokio::test]
async fn the_scenarios_share_a_database() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = latchkey_store_sqlite::open(&db.url).await.unwrap();
    latchkey_store::conformance::run_all(&store).await;
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let db = TestDb::new(Backend::Sqlite).await;
    drop(latchkey_store_sqlite::open(&db.url).await.unwrap());
    let store = latchkey_store_sqlite::open(&db.url).await.unwrap();
    latchkey_store::Database::ping(&store).await.unwrap();
    let db = TestDb::new(Backend::Postgres).await;
    drop(latchkey_store_postgres::open(&db.url, 2).await.unwrap());
    latchkey_store::Database::ping(&latchkey_store_postgres::open(&db.url, 2).await.unwrap()).await.unwrap();
}

/// Operation results stored before `sync_ops` was keyed by op id still answer replays after
/// the migration; the rows of in-push duplicates (no op id of their own) are dropped.
#[tokio::test]
async fn op_results_survive_the_migration_to_op_id_keys() {
    use latchkey_store::{SyncOpBody, SyncOpIn, SyncPush, SyncPushOutcome, SyncStore};
    const OLD_ROWS: &str = "INSERT INTO users (id, public_metadata, private_metadata, unsafe_metadata, created_at, updated_at, version) \
        VALUES ('user_1', '{}', '{}', '{}', 1, 1, 1); \
        INSERT INTO sync_clients (user_id, client_id, last_seq, created_at, last_seen_at) \
        VALUES ('user_1', 'c1', 3, 1, 1); \
        INSERT INTO sync_ops (user_id, client_id, seq, op_id, result, created_at) VALUES \
        ('user_1', 'c1', 1, 'op_a', NULL, 1), \
        ('user_1', 'c1', 2, 'op_b', '{\"seq\":2,\"op_id\":\"op_b\",\"status\":\"rejected\",\"reason\":{\"code\":\"unknown_table\",\"message\":\"no\"}}', 1), \
        ('user_1', 'c1', 3, NULL, '{\"seq\":3,\"op_id\":\"op_a\",\"status\":\"duplicate\"}', 1)";
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let store: Box<dyn SyncStore> = match backend {
            Backend::Sqlite => {
                let mut old =
                    sqlx::migrate::Migrator::new(migrations.join("latchkey-store-sqlite/migrations")).await.unwrap();
                old.migrations = old.migrations.iter().filter(|m| m.version < 7).cloned().collect::<Vec<_>>().into();
                let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&db.url)
                    .unwrap()
                    .create_if_missing(true);
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                old.run(&pool).await.unwrap();
                sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
                pool.close().await;
                Box::new(latchkey_store_sqlite::open(&db.url).await.unwrap())
            }
            Backend::Postgres => {
                let mut old =
                    sqlx::migrate::Migrator::new(migrations.join("latchkey-store-postgres/migrations")).await.unwrap();
                old.migrations = old.migrations.iter().filter(|m| m.version < 7).cloned().collect::<Vec<_>>().into();
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                old.run(&pool).await.unwrap();
                sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
                pool.close().await;
                Box::new(latchkey_store_postgres::open(&db.url, 2).await.unwrap())
            }
        };
        let replay = |seq: i64, op_id: &str| SyncOpIn {
            seq,
            op_id: op_id.into(),
            body: SyncOpBody::Rejected(latchkey_core::sync::Rejection::new("unused", "a replay is not merged")),
        };
        let push = SyncPush {
            user_id: "user_1".into(),
            client_id: "c1".into(),
            ops: vec![replay(1, "op_a"), replay(2, "op_b"), replay(3, "op_a")],
            now: 2,
            new_epoch: "e".into(),
            full_spaces: Vec::new(),
        };
        let SyncPushOutcome::Done(done) = store.sync_push(&push).await.unwrap() else {
            panic!("{backend:?}: not done")
        };
        let applied_a = serde_json::json!({"seq": 1, "op_id": "op_a", "status": "applied"});
        assert_eq!(done.results[0]["original"], applied_a, "{backend:?}");
        assert_eq!(done.results[1]["original"]["reason"]["code"], "unknown_table", "{backend:?}");
        assert_eq!(done.results[2]["original"], applied_a, "{backend:?}: the in-push duplicate points at the first");
        assert!(done.results.iter().all(|r| r["status"] == "duplicate"), "{backend:?}: {:?}", done.results);
        assert_eq!(done.last_seq, 3, "{backend:?}");
    }
}

/// A write transaction dropped without commit (a failed or cancelled request) leaves nothing
/// behind, and the single SQLite writer serves the next one.
#[tokio::test]
async fn an_abandoned_write_transaction_rolls_back() {
    use latchkey_store::sql::SqlDriver;
    let db = TestDb::new(Backend::Sqlite).await;
    let store = latchkey_store_sqlite::open(&db.url).await.unwrap();
    let insert = "INSERT INTO sync_spaces (space, seq, epoch, created_at) VALUES ($1, 1, 'e', 1)";
    let mut tx = store.driver().begin().await.unwrap();
    tx.execute(insert, &["space_a".into()]).await.unwrap();
    drop(tx);
    let mut tx = store.driver().begin().await.unwrap();
    tx.execute(insert, &["space_b".into()]).await.unwrap();
    let dup = tx.execute(insert, &["space_b".into()]).await.unwrap_err();
    assert!(matches!(dup, latchkey_store::StoreError::Conflict(_)), "{dup:?}");
    tx.commit().await.unwrap();
    let rows = store.driver().read("SELECT space FROM sync_spaces ORDER BY space", &[]).await.unwrap();
    let spaces: Vec<String> = rows.iter().map(|r| r.text(0).unwrap()).collect();
    assert_eq!(spaces, ["space_b"]);
}
