//! PostgreSQL backend: a connection pool shared by reads and write transactions; many
//! stateless latchkey instances can share one database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_store::sql::{Cell, Row, SqlDriver, SqlTx, SqlValue};
use latchkey_store::{SqlStore, StoreError};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Column, PgPool, Postgres, Row as _, TypeInfo, ValueRef};

pub type PostgresStore = SqlStore<PostgresDriver>;

/// The channel pushes announce changed spaces on.
const SYNC_CHANNEL: &str = "latchkey_sync";

pub struct PostgresDriver {
    pool: PgPool,
}

/// Connects to `url` (`postgres://…`) and brings the schema up to date (migrations take an
/// advisory lock, so several instances may start at once).
pub async fn open(url: &str, max_connections: u32) -> Result<PostgresStore, StoreError> {
    // Statements are prepared once and cached; a generic plan for `user_id = $1 AND op_id IN
    // ($2, …)` guesses the selectivity of `$1` and, on an instance with few users, scans the
    // table. Plans made for the actual values cost a fraction of a millisecond.
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid PostgreSQL URL: {e}")))?
        .options([("plan_cache_mode", "force_custom_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await
        .map_err(map_err)?;
    let mut migrator = sqlx::migrate!("./migrations");
    // During a rolling upgrade a newer instance may have applied migrations this one does not
    // know; they only expand the schema (docs/operations.md, "Migrations"), so this one runs.
    migrator.set_ignore_missing(true);
    migrator.run(&pool).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
    Ok(SqlStore::new(PostgresDriver { pool }))
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, Postgres, PgArguments>,
    params: &[SqlValue],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    for p in params {
        q = match p {
            SqlValue::Int(v) => q.bind(*v),
            SqlValue::Text(v) => q.bind(v.clone()),
            SqlValue::Bool(v) => q.bind(*v),
        };
    }
    q
}

fn decode(row: &PgRow) -> Result<Row, StoreError> {
    let mut cells = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        if row.try_get_raw(i).map_err(map_err)?.is_null() {
            cells.push(Cell::Null);
            continue;
        }
        let cell = match row.column(i).type_info().name() {
            "INT8" => Cell::Int(row.try_get::<i64, _>(i).map_err(map_err)?),
            "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i).map_err(map_err)?)),
            "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i).map_err(map_err)?)),
            "BOOL" => Cell::Bool(row.try_get::<bool, _>(i).map_err(map_err)?),
            "FLOAT8" => Cell::Float(row.try_get::<f64, _>(i).map_err(map_err)?),
            "FLOAT4" => Cell::Float(f64::from(row.try_get::<f32, _>(i).map_err(map_err)?)),
            _ => Cell::Text(row.try_get_unchecked::<String, _>(i).map_err(map_err)?),
        };
        cells.push(cell);
    }
    Ok(Row(cells))
}

pub fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.constraint().map_or_else(|| db.message().to_owned(), str::to_owned))
        }
        // Connection exceptions (08xxx), shutdown and start-up (57P0x), too many connections.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300") =>
        {
            StoreError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

#[async_trait]
impl SqlDriver for PostgresDriver {
    fn notify_sql(&self) -> Option<&'static str> {
        Some("SELECT pg_notify('latchkey_sync', $1)")
    }

    /// One listening connection per instance; after a lost connection `PgListener` reconnects
    /// (notifications sent meanwhile are missed: clients also pull on their own schedule).
    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await.map_err(map_err)?;
        listener.listen(SYNC_CHANNEL).await.map_err(map_err)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(n) => {
                        if tx.send(n.payload().to_owned()).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sync notifications interrupted; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(rx))
    }

    async fn read(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let rows = bind(sqlx::query(sql), params).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>, StoreError> {
        let tx = self.pool.begin().await.map_err(map_err)?;
        Ok(Box::new(PostgresTx { tx }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err).map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
}

struct PostgresTx {
    tx: sqlx::Transaction<'static, Postgres>,
}

#[async_trait]
impl SqlTx for PostgresTx {
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let rows = bind(sqlx::query(sql), params).fetch_all(&mut *self.tx).await.map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let done = bind(sqlx::query(sql), params).execute(&mut *self.tx).await.map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(map_err)
    }
}
