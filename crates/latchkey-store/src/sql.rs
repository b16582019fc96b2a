//! The small executor interface a backend provides. Statements use `$1, $2, …` placeholders
//! and portable SQL (both SQLite ≥ 3.35 and PostgreSQL run them); each backend translates
//! placeholders if it must. Values are typed even when null, because PostgreSQL needs to know
//! a parameter's type.

use async_trait::async_trait;

use crate::error::{Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
}

/// `From` conversions: `$type => $variant(expression of v)`.
macro_rules! sql_value_from {
    ($($ty:ty => |$v:ident| $value:expr;)+) => {$(
        impl From<$ty> for SqlValue {
            fn from($v: $ty) -> Self {
                $value
            }
        }
    )+};
}

sql_value_from! {
    i64 => |v| SqlValue::Int(Some(v));
    Option<i64> => |v| SqlValue::Int(v);
    bool => |v| SqlValue::Bool(Some(v));
    &str => |v| SqlValue::Text(Some(v.to_owned()));
    String => |v| SqlValue::Text(Some(v));
    &String => |v| SqlValue::Text(Some(v.clone()));
    Option<String> => |v| SqlValue::Text(v);
    &Option<String> => |v| SqlValue::Text(v.clone());
}

/// A value read back from the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// One result row, read by position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell> {
        self.0.get(i).ok_or_else(|| StoreError::Other(format!("column {i} missing")))
    }
    pub fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?.ok_or_else(|| StoreError::Other(format!("column {i} is null")))
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            other => Err(StoreError::Other(format!("column {i}: expected text, got {other:?}"))),
        }
    }
    /// Moves a text cell out (no copy), leaving a null behind.
    pub fn take_text(&mut self, i: usize) -> Result<String> {
        match self.0.get_mut(i).map(|c| std::mem::replace(c, Cell::Null)) {
            Some(Cell::Text(s)) => Ok(s),
            other => Err(StoreError::Other(format!("column {i}: expected text, got {other:?}"))),
        }
    }
    pub fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.ok_or_else(|| StoreError::Other(format!("column {i} is null")))
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            Cell::Bool(b) => Ok(Some(i64::from(*b))),
            other => Err(StoreError::Other(format!("column {i}: expected integer, got {other:?}"))),
        }
    }
    pub fn bool(&self, i: usize) -> Result<bool> {
        match self.cell(i)? {
            Cell::Bool(b) => Ok(*b),
            Cell::Int(v) => Ok(*v != 0),
            other => Err(StoreError::Other(format!("column {i}: expected boolean, got {other:?}"))),
        }
    }
}

#[async_trait]
pub trait SqlDriver: Send + Sync + 'static {
    /// Runs a read-only statement outside any write transaction.
    async fn read(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>>;
    /// Opens a write transaction (on SQLite: on the single writer connection, `BEGIN IMMEDIATE`).
    async fn begin(&self) -> Result<Box<dyn SqlTx>>;
    /// A cheap round trip that proves the database answers.
    async fn ping(&self) -> Result<()>;
    /// The backend's name, for logs and metrics.
    fn backend(&self) -> &'static str;
    /// A statement that tells every instance sharing the database that something changed,
    /// taking the payload as `$1` and run inside a write transaction so it is delivered at
    /// commit (PostgreSQL: `pg_notify`); `None` where instances cannot share a database.
    fn notify_sql(&self) -> Option<&'static str> {
        None
    }
    /// Payloads of the notifications of every instance (this one included), when the backend
    /// has them.
    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>> {
        Ok(None)
    }
    /// The clause that makes a `SELECT` lock its rows and pass over rows other transactions
    /// hold (PostgreSQL); empty where one writer at a time is the rule anyway (SQLite).
    fn skip_locked(&self) -> &'static str {
        ""
    }
    /// A case-insensitive `LIKE` test of `column` against the pattern parameter `param`
    /// (already lower-cased, wildcards escaped with `\`).
    fn ci_like(&self, column: &str, param: &str) -> String {
        format!("lower({column}) LIKE {param} ESCAPE '\\'")
    }
}

/// A write transaction; dropped without [`SqlTx::commit`], it rolls back.
#[async_trait]
pub trait SqlTx: Send {
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>>;
    /// Runs a statement and returns the number of rows it changed.
    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64>;
    async fn commit(self: Box<Self>) -> Result<()>;
}
