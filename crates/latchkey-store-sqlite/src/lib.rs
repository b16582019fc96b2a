//! SQLite backend: WAL mode, one writer connection (so write transactions never contend),
//! and a pool of readers. Statements come in `$N` form and are rewritten to SQLite's `?N`.
//!
//! Connections are `rusqlite`'s behind async mutexes, and statements run on the task that
//! holds one: each takes microseconds, and handing every statement to a worker thread and back
//! (as `sqlx` does) cost more than the statement (a push of 100 ops ran ten of them). `sqlx`
//! only runs the migrations.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_store::sql::{Cell, Row, SqlDriver, SqlTx, SqlValue};
use latchkey_store::{SqlStore, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub mod backup;

pub type SqliteStore = SqlStore<SqliteDriver>;

pub struct SqliteDriver {
    writer: Arc<Mutex<rusqlite::Connection>>,
    readers: Vec<Mutex<rusqlite::Connection>>,
    next_reader: AtomicUsize,
}

/// Read connections (WAL: they read while the writer writes).
const READERS: usize = 2;

/// Prepared statements kept by each connection (each distinct SQL text is one).
const STATEMENT_CACHE: usize = 256;

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
    let migrator = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await.map_err(map_err)?;
    // Strict: SQLite has one instance, so no rolling upgrade needs an older binary to start on
    // a newer schema, and refusing one keeps a downgrade from writing to a schema it misreads.
    sqlx::migrate!("./migrations")
        .run(&migrator)
        .await
        .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
    migrator.close().await;
    let writer = open_writer(options.get_filename())?;
    let readers =
        (0..READERS).map(|_| open_reader(options.get_filename()).map(Mutex::new)).collect::<Result<_, _>>()?;
    Ok(SqlStore::new(SqliteDriver { writer: Arc::new(Mutex::new(writer)), readers, next_reader: AtomicUsize::new(0) }))
}

fn open_reader(path: &std::path::Path) -> Result<rusqlite::Connection, StoreError> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(map_rusqlite)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(map_rusqlite)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn open_writer(path: &std::path::Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path).map_err(map_rusqlite)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(map_rusqlite)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(map_rusqlite)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
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

/// Errors of the migration connection (`sqlx`).
fn map_err(e: sqlx::Error) -> StoreError {
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

fn map_rusqlite(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, message) => match f.code {
            ErrorCode::ConstraintViolation
                if matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                StoreError::Conflict(message.clone().unwrap_or_else(|| e.to_string()))
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Unavailable(e.to_string()),
            ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::DiskFull => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        },
        _ => StoreError::Other(e.to_string()),
    }
}

/// Runs one statement on a connection: its rows when `rows`, else the number of rows changed.
fn run_statement(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[SqlValue],
    rows: bool,
) -> Result<(Vec<Row>, u64), StoreError> {
    let mut stmt = conn.prepare_cached(&dialect(sql)).map_err(map_rusqlite)?;
    for (i, p) in params.iter().enumerate() {
        let index = i + 1;
        let bound = match p {
            SqlValue::Int(v) => stmt.raw_bind_parameter(index, v),
            SqlValue::Text(v) => stmt.raw_bind_parameter(index, v.as_deref()),
            SqlValue::Bool(v) => stmt.raw_bind_parameter(index, v),
        };
        bound.map_err(map_rusqlite)?;
    }
    if !rows {
        let changed = stmt.raw_execute().map_err(map_rusqlite)?;
        return Ok((Vec::new(), changed as u64));
    }
    let width = stmt.column_count();
    let mut out = Vec::new();
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next().map_err(map_rusqlite)? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            use rusqlite::types::ValueRef;
            cells.push(match row.get_ref(i).map_err(map_rusqlite)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Float(v),
                ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
            });
        }
        out.push(Row(cells));
    }
    Ok((out, 0))
}

impl SqliteDriver {
    /// A free read connection, else the next one in turn once it is free.
    async fn reader(&self) -> tokio::sync::MutexGuard<'_, rusqlite::Connection> {
        for conn in &self.readers {
            if let Ok(guard) = conn.try_lock() {
                return guard;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i].lock().await
    }
}

#[async_trait]
impl SqlDriver for SqliteDriver {
    /// SQLite's `LIKE` ignores ASCII case.
    fn ci_like(&self, column: &str, param: &str) -> String {
        format!("{column} LIKE {param} ESCAPE '\\'")
    }

    async fn read(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        Ok(run_statement(&*self.reader().await, sql, params, true)?.0)
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>, StoreError> {
        let conn = self.writer.clone().lock_owned().await;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(map_rusqlite)?;
        Ok(Box::new(SqliteTx { conn, open: true }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        run_statement(&*self.reader().await, "SELECT 1", &[], true).map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

/// A write transaction: holds the writer until it commits or is dropped (which rolls back).
struct SqliteTx {
    conn: OwnedMutexGuard<rusqlite::Connection>,
    open: bool,
}

#[async_trait]
impl SqlTx for SqliteTx {
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        Ok(run_statement(&self.conn, sql, params, true)?.0)
    }

    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        Ok(run_statement(&self.conn, sql, params, false)?.1)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.open = false;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            // A failed COMMIT can leave the transaction open; never hand the writer on so.
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(map_rusqlite(e));
        }
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "rolling back an abandoned SQLite transaction failed");
            }
        }
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
