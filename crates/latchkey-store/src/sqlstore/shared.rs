//! What every area of [`SqlStore`](super::SqlStore) shares: rows read in column order,
//! tables described once ([`record!`]), the SQL text built from them, filters, and the few
//! statements that more than one area runs. Area modules import this one, never each other.

use crate::error::{Result, StoreError};
use crate::records::CodeFields;
use crate::sql::{Row, SqlTx, SqlValue};
use crate::throttle::Counter;

/// A row read cell after cell, in the order of its columns (so no index can drift).
pub(super) struct Cells<'a> {
    row: &'a Row,
    next: usize,
}

impl<'a> Cells<'a> {
    pub(super) fn new(row: &'a Row) -> Self {
        Self::at(row, 0)
    }

    /// Reading from column `first` on.
    pub(super) fn at(row: &'a Row, first: usize) -> Self {
        Self { row, next: first }
    }

    pub(super) fn read<T: Column>(&mut self) -> Result<T> {
        T::read(self)
    }

    fn index(&mut self) -> usize {
        self.next += 1;
        self.next - 1
    }
}

/// A value kept in one column (or a fixed group of them).
pub(super) trait Column: Sized {
    fn read(cells: &mut Cells<'_>) -> Result<Self>;
    fn write(&self, out: &mut Vec<SqlValue>);
}

/// Columns of one cell: how each is read, and how a value becomes a parameter.
macro_rules! cell_columns {
    ($($ty:ty: $get:ident, $param:expr;)+) => {$(
        impl Column for $ty {
            fn read(c: &mut Cells<'_>) -> Result<Self> {
                let i = c.index();
                c.row.$get(i)
            }
            fn write(&self, out: &mut Vec<SqlValue>) {
                out.push($param(self));
            }
        }
    )+};
}

cell_columns! {
    String: text, SqlValue::from;
    Option<String>: opt_text, SqlValue::from;
    i64: int, |v: &i64| SqlValue::from(*v);
    Option<i64>: opt_int, |v: &Option<i64>| SqlValue::from(*v);
    bool: bool, |v: &bool| SqlValue::from(*v);
}

/// Four columns: `code_digest, code_expires_at, code_attempts, code_consumed`.
impl Column for CodeFields {
    fn read(c: &mut Cells<'_>) -> Result<Self> {
        Ok(CodeFields { digest: c.read()?, expires_at: c.read()?, attempts: c.read()?, consumed: c.read()? })
    }
    fn write(&self, out: &mut Vec<SqlValue>) {
        self.digest.write(out);
        self.expires_at.write(out);
        self.attempts.write(out);
        self.consumed.write(out);
    }
}

/// A row type kept in one table, its fields in column order (see [`record!`]).
pub(super) trait Record: Sized + Send + Sync {
    const TABLE: &'static str;
    /// The columns in order; the first is the key an update selects by.
    const COLUMNS: &'static [&'static str];
    fn read(cells: &mut Cells<'_>) -> Result<Self>;
    fn write(&self, out: &mut Vec<SqlValue>);
}

/// A record updated optimistically: written only over the version before its own.
pub(super) trait Versioned: Record {
    fn version(&self) -> i64;
}

/// Describes a table once: `record!(Row in "table" { field, …, code [col, …], … })` lists the
/// fields in column order (a field is its own column unless its columns follow in brackets);
/// `versioned by field` makes the row [`Versioned`].
macro_rules! record {
    ($row:ident in $table:literal $(, versioned by $version:ident)? {
        $($field:ident $([$($col:ident),+])?),+ $(,)?
    }) => {
        impl $crate::sqlstore::shared::Record for $row {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = column_names!([] $($field $([$($col),+])?,)+);
            fn read(c: &mut $crate::sqlstore::shared::Cells<'_>) -> $crate::error::Result<Self> {
                // Fields are evaluated in the order written: the columns' order.
                Ok($row { $($field: c.read()?),+ })
            }
            fn write(&self, out: &mut Vec<$crate::sql::SqlValue>) {
                $($crate::sqlstore::shared::Column::write(&self.$field, out);)+
            }
        }
        $(impl $crate::sqlstore::shared::Versioned for $row {
            fn version(&self) -> i64 {
                self.$version
            }
        })?
    };
}

/// The column names of [`record!`]'s field list.
macro_rules! column_names {
    ([$($out:expr),*]) => { &[$($out),*] };
    ([$($out:expr),*] $field:ident [$($col:ident),+], $($rest:tt)*) => {
        column_names!([$($out,)* $(stringify!($col)),+] $($rest)*)
    };
    ([$($out:expr),*] $field:ident, $($rest:tt)*) => { column_names!([$($out,)* stringify!($field)] $($rest)*) };
}

pub(super) fn from_row<R: Record>(row: &Row) -> Result<R> {
    R::read(&mut Cells::new(row))
}

pub(super) fn params<R: Record>(row: &R) -> Vec<SqlValue> {
    let mut out = Vec::with_capacity(R::COLUMNS.len() + 1);
    row.write(&mut out);
    out
}

/// The parameters of a versioned update: the row, then the version it replaces.
pub(super) fn versioned_params<R: Versioned>(row: &R) -> Vec<SqlValue> {
    let mut out = params(row);
    out.push((row.version() - 1).into());
    out
}

pub(super) fn placeholders(n: usize, start: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub(super) fn insert_sql<R: Record>() -> String {
    format!("INSERT INTO {} ({}) VALUES ({})", R::TABLE, R::COLUMNS.join(", "), placeholders(R::COLUMNS.len(), 1))
}

/// `UPDATE table SET c2 = $2, … WHERE c1 = $1`, plus an optimistic `version` check when asked.
pub(super) fn update_sql<R: Record>(versioned: bool) -> String {
    let list = R::COLUMNS;
    let set: Vec<String> = list.iter().enumerate().skip(1).map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
    let mut sql = format!("UPDATE {} SET {} WHERE {} = $1", R::TABLE, set.join(", "), list[0]);
    if versioned {
        sql.push_str(&format!(" AND version = ${}", list.len() + 1));
    }
    sql
}

pub(super) fn select_sql<R: Record>(filter: &str) -> String {
    format!("SELECT {} FROM {} WHERE {filter}", R::COLUMNS.join(", "), R::TABLE)
}

pub(super) fn one<T>(rows: Vec<Row>, f: impl Fn(&Row) -> Result<T>) -> Result<Option<T>> {
    rows.first().map(f).transpose()
}

pub(super) fn all<T>(rows: &[Row], f: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

/// The first column of the first row as a count (0 without a row).
pub(super) fn count_of(rows: Vec<Row>) -> Result<i64> {
    Ok(one(rows, |r| r.int(0))?.unwrap_or(0))
}

pub(super) async fn insert_in<R: Record>(tx: &mut Box<dyn SqlTx>, row: &R) -> Result<u64> {
    tx.execute(&insert_sql::<R>(), &params(row)).await
}

pub(super) async fn update_in<R: Record>(tx: &mut Box<dyn SqlTx>, row: &R) -> Result<u64> {
    tx.execute(&update_sql::<R>(false), &params(row)).await
}

/// An optimistic update inside a transaction: exactly one row must match id and previous
/// version ([`StoreError::Stale`] otherwise).
pub(super) async fn update_versioned_in<R: Versioned>(tx: &mut Box<dyn SqlTx>, row: &R) -> Result<()> {
    match tx.execute(&update_sql::<R>(true), &versioned_params(row)).await? {
        1 => Ok(()),
        _ => Err(StoreError::Stale),
    }
}

pub(super) async fn count_in(tx: &mut Box<dyn SqlTx>, sql: &str, params: &[SqlValue]) -> Result<i64> {
    count_of(tx.query(sql, params).await?)
}

/// A WHERE clause under construction, with its numbered parameters.
#[derive(Default)]
pub(super) struct Filter {
    clauses: Vec<String>,
    pub(super) params: Vec<SqlValue>,
}

impl Filter {
    /// Adds a parameter and returns its placeholder.
    pub(super) fn param(&mut self, v: impl Into<SqlValue>) -> String {
        self.params.push(v.into());
        format!("${}", self.params.len())
    }

    pub(super) fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// Requires `column = value`.
    pub(super) fn equals(&mut self, column: &str, value: impl Into<SqlValue>) {
        let ph = self.param(value);
        self.push(format!("{column} = {ph}"));
    }

    /// `expr IN (…)`, with the values as parameters.
    pub(super) fn in_list(&mut self, expr: &str, values: &[String]) -> String {
        let ph: Vec<String> = values.iter().map(|v| self.param(v.clone())).collect();
        format!("{expr} IN ({})", ph.join(", "))
    }

    /// Requires `expr IN (…)` for a non-empty list (an empty list adds nothing).
    pub(super) fn any_of(&mut self, expr: &str, values: &[String]) {
        if !values.is_empty() {
            let clause = self.in_list(expr, values);
            self.push(clause);
        }
    }

    pub(super) fn bound(&mut self, column: &str, op: &str, value: Option<i64>) {
        if let Some(v) = value {
            let ph = self.param(v);
            self.push(format!("{column} {op} {ph}"));
        }
    }

    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

/// `LIKE` pattern for a part of a value anywhere in it (how Clerk's `query` matches), with
/// the wildcards of the input escaped.
pub(super) fn like_contains(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 2);
    out.push('%');
    for c in input.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

const COUNTER_COLS: &str = "count, window_start, last_at, expires_at";

pub(super) fn counter_from(r: &Row) -> Result<Counter> {
    Ok(Counter { count: r.int(0)?, window_start: r.int(1)?, last_at: r.int(2)?, expires_at: r.int(3)? })
}

pub(super) fn select_counter_sql() -> String {
    format!("SELECT {COUNTER_COLS} FROM attempt_counters WHERE key = $1")
}

/// Counts one event under `key` inside a write transaction (see
/// [`ThrottleStore::bump_counter`](crate::ThrottleStore::bump_counter)).
pub(super) async fn bump_in(tx: &mut Box<dyn SqlTx>, key: &str, window_ms: i64, now: i64) -> Result<Counter> {
    // Every SET expression reads the row as it was, so an ended window restarts at 1.
    let sql = format!(
        "INSERT INTO attempt_counters (key, count, window_start, last_at, expires_at) VALUES ($1, 1, $2, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET \
         count = CASE WHEN attempt_counters.expires_at <= $2 THEN 1 ELSE attempt_counters.count + 1 END, \
         window_start = CASE WHEN attempt_counters.expires_at <= $2 THEN $2 ELSE attempt_counters.window_start END, \
         expires_at = CASE WHEN attempt_counters.expires_at <= $2 THEN $3 ELSE attempt_counters.expires_at END, \
         last_at = $2 \
         RETURNING {COUNTER_COLS}"
    );
    let rows = tx.query(&sql, &[key.into(), now.into(), now.saturating_add(window_ms).into()]).await?;
    one(rows, counter_from)?.ok_or_else(|| StoreError::Other("counter upsert returned no row".into()))
}

/// Deletes a space and everything in it (part of deleting its user or organization).
pub(super) async fn delete_space(tx: &mut Box<dyn SqlTx>, space: &str) -> Result<()> {
    tx.execute("DELETE FROM sync_records WHERE space = $1", &[space.into()]).await?;
    tx.execute("DELETE FROM sync_spaces WHERE space = $1", &[space.into()]).await?;
    Ok(())
}

/// Deletes a user's sync clients and their results.
pub(super) async fn delete_user_clients(tx: &mut Box<dyn SqlTx>, user_id: &str) -> Result<()> {
    tx.execute("DELETE FROM sync_ops WHERE user_id = $1", &[user_id.into()]).await?;
    tx.execute("DELETE FROM sync_clients WHERE user_id = $1", &[user_id.into()]).await?;
    Ok(())
}

pub(super) const MEMBERS: &str = "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1";
pub(super) const MEMBERS_WITH_ROLE: &str =
    "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1 AND role = $2";

/// Takes a user's row for the transaction (`false` when the user is gone), as
/// [`lock_organization`] does: a deletion and a sync push both take it first, so neither sees
/// half of the other and they cannot deadlock.
pub(super) async fn lock_user(tx: &mut Box<dyn SqlTx>, user_id: &str) -> Result<bool> {
    let rows =
        tx.query("UPDATE users SET updated_at = updated_at WHERE id = $1 RETURNING id", &[user_id.into()]).await?;
    Ok(rows.len() == 1)
}

/// Serializes membership changes of one organization: on PostgreSQL the no-op update takes
/// the organization's row lock until commit (SQLite has one writer anyway).
/// (A query rather than a statement: a lock is not a change, and changes decide whether a
/// transaction's events are written.)
pub(super) async fn lock_organization(tx: &mut Box<dyn SqlTx>, organization_id: &str) -> Result<bool> {
    let rows = tx
        .query("UPDATE organizations SET updated_at = updated_at WHERE id = $1 RETURNING id", &[organization_id.into()])
        .await?;
    Ok(rows.len() == 1)
}

/// `Conflict("last_admin:<organization id>")` when `user_id` is the only member with
/// `admin_role` of an organization that has other members: leaving (or deleting one's account)
/// would leave them without an admin. Locks each such organization for the caller's transaction.
pub(super) async fn refuse_last_admin_leaving(tx: &mut Box<dyn SqlTx>, user_id: &str, admin_role: &str) -> Result<()> {
    let rows = tx
        .query(
            "SELECT organization_id FROM organization_memberships WHERE user_id = $1 AND role = $2 ORDER BY organization_id",
            &[user_id.into(), admin_role.into()],
        )
        .await?;
    for row in rows {
        let org = row.text(0)?;
        lock_organization(tx, &org).await?;
        let members = count_in(tx, MEMBERS, &[org.clone().into()]).await?;
        let admins = count_in(tx, MEMBERS_WITH_ROLE, &[org.clone().into(), admin_role.into()]).await?;
        if members > 1 && admins == 1 {
            return Err(StoreError::Conflict(format!("last_admin:{org}")));
        }
    }
    Ok(())
}
