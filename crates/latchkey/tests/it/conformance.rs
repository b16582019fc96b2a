use crate::harness::{Backend, TestDb};

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = latchkey_store_sqlite::open(&db.url).await.unwrap();
    latchkey_store::conformance::run_all(&store).await;
}

#[tokio::test]
async fn postgres_store_passes_the_conformance_suite() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = latchkey_store_postgres::open(&db.url, 4).await.unwrap();
    latchkey_store::conformance::run_all(&store).await;
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let db = TestDb::new(Backend::Sqlite).await;
    drop(latchkey_store_sqlite::open(&db.url).await.unwrap());
    let store = latchkey_store_sqlite::open(&db.url).await.unwrap();
    latchkey_store::Store::ping(&store).await.unwrap();
    let db = TestDb::new(Backend::Postgres).await;
    drop(latchkey_store_postgres::open(&db.url, 2).await.unwrap());
    latchkey_store::Store::ping(&latchkey_store_postgres::open(&db.url, 2).await.unwrap()).await.unwrap();
}
