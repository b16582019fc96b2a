//! SQLite backend: WAL mode, one writer connection (so write transactions never contend),
//! and a pool of readers. Statements come in `$N` form and are rewritten to SQLite's `?N`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_store::sql::{Cell, Row, SqlDriver, SqlTx, SqlValue};
use latchkey_store::{SqlStore, StoreError};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Column, Row as _, Sqlite, SqlitePool, TypeInfo, ValueRef};

pub type SqliteStore = SqlStore<SqliteDriver>;

pub struct SqliteDriver {
    writer: SqlitePool,
    readers: SqlitePool,
}

/// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite:path`) and
/// brings its schema up to date.
pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await
        .map_err(map_err)?;
    sqlx::migrate!("./migrations")
        .run(&writer)
        .await
        .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
    let readers = SqlitePoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.read_only(true))
        .await
        .map_err(map_err)?;
    Ok(SqlStore::new(SqliteDriver { writer, readers }))
}

/// `$12` → `?12`; SQLite binds `?NNN` by number, so reuse and order are preserved. When the
/// placeholders are exactly `$1, $2, …, $n` in order (every multi-row insert), they become
/// anonymous `?`: SQLite looks a numbered parameter's name up by a linear scan, which made
/// binding a statement with n parameters cost O(n²).
fn dialect(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut numbers = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                out.push(char::from_digit(d, 10).unwrap_or('0'));
                chars.next();
            }
            numbers.push(n);
        } else {
            out.push(c);
        }
    }
    if numbers.iter().enumerate().all(|(i, n)| *n == i + 1) {
        let mut anonymous = String::with_capacity(out.len());
        let mut chars = out.chars().peekable();
        while let Some(c) = chars.next() {
            anonymous.push(c);
            if c == '?' {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
            }
        }
        return anonymous;
    }
    out
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    params: &[SqlValue],
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    for p in params {
        q = match p {
            SqlValue::Int(v) => q.bind(*v),
            SqlValue::Text(v) => q.bind(v.clone()),
            SqlValue::Bool(v) => q.bind(*v),
        };
    }
    q
}

fn decode(row: &SqliteRow) -> Result<Row, StoreError> {
    let mut cells = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        if raw.is_null() {
            cells.push(Cell::Null);
            continue;
        }
        // SQLite reports the storage class of the value (INTEGER, REAL, TEXT, ...) and the
        // declared type of the column; compared without allocating (every cell goes by here).
        let has = |name: &str, part: &str| {
            name.as_bytes().windows(part.len()).any(|w| w.eq_ignore_ascii_case(part.as_bytes()))
        };
        let info = raw.type_info();
        let kind = info.name();
        let cell = if has(kind, "INT") || has(kind, "BOOL") {
            Cell::Int(row.try_get_unchecked::<i64, _>(i).map_err(map_err)?)
        } else if has(kind, "REAL") || has(kind, "FLOAT") || has(kind, "DOUBLE") {
            Cell::Float(row.try_get_unchecked::<f64, _>(i).map_err(map_err)?)
        } else if has(row.column(i).type_info().name(), "BOOL") {
            Cell::Bool(row.try_get_unchecked::<bool, _>(i).map_err(map_err)?)
        } else {
            Cell::Text(row.try_get_unchecked::<String, _>(i).map_err(map_err)?)
        };
        cells.push(cell);
    }
    Ok(Row(cells))
}

pub fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
        sqlx::Error::Database(db) if db.message().contains("database is locked") => {
            StoreError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

#[async_trait]
impl SqlDriver for SqliteDriver {
    /// SQLite's `LIKE` ignores ASCII case and uses a `COLLATE NOCASE` index for a prefix.
    fn ci_prefix(&self, column: &str, param: &str) -> String {
        format!("{column} LIKE {param} ESCAPE '\\'")
    }

    async fn read(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let sql = dialect(sql);
        let rows = bind(sqlx::query(&sql), params).fetch_all(&self.readers).await.map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>, StoreError> {
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        Ok(Box::new(SqliteTx { tx }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await.map_err(map_err).map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

struct SqliteTx {
    tx: sqlx::Transaction<'static, Sqlite>,
}

#[async_trait]
impl SqlTx for SqliteTx {
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let sql = dialect(sql);
        let rows = bind(sqlx::query(&sql), params).fetch_all(&mut *self.tx).await.map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let sql = dialect(sql);
        let done = bind(sqlx::query(&sql), params).execute(&mut *self.tx).await.map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_rewritten() {
        assert_eq!(super::dialect("a = $1 AND b = $12 AND c = '$'"), "a = ?1 AND b = ?12 AND c = '$'");
        assert_eq!(super::dialect("a = $2 AND b = $1"), "a = ?2 AND b = ?1");
        assert_eq!(super::dialect("a = $1 OR a = $1"), "a = ?1 OR a = ?1");
        assert_eq!(super::dialect("VALUES ($1, $2), ($3, $4) -- '$'"), "VALUES (?, ?), (?, ?) -- '$'");
    }
}
