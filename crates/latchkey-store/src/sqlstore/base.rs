//! The [`SqlStore`] type, its write transactions, and the row operations every area uses.

use std::sync::Arc;

use tokio::sync::Notify;

use super::outbox::OutboxTx;
use super::shared::{
    count_of, from_row, insert_sql, params, select_sql, update_sql, versioned_params, Filter, Record, Versioned,
};
use crate::error::{Result, StoreError};
use crate::sql::{SqlDriver, SqlTx, SqlValue};
use crate::webhooks::OutboxEvent;

/// The generic store; `D` supplies connections and the dialect.
pub struct SqlStore<D> {
    pub(super) db: Arc<D>,
    /// Events every write transaction of this view writes (see [`crate::Store::emitting`]).
    events: Arc<[OutboxEvent]>,
    pub(super) outbox_signal: Arc<Notify>,
}

impl<D: SqlDriver> SqlStore<D> {
    pub fn new(db: D) -> Self {
        Self { db: Arc::new(db), events: Arc::new([]), outbox_signal: Default::default() }
    }

    /// The same database, with every write transaction also writing `events`.
    pub(super) fn with_events(&self, events: Vec<OutboxEvent>) -> Self {
        SqlStore { db: self.db.clone(), events: events.into(), outbox_signal: self.outbox_signal.clone() }
    }

    /// A write transaction; in a view with events, one that writes them at commit.
    pub(super) async fn begin(&self) -> Result<Box<dyn SqlTx>> {
        let tx = self.db.begin().await?;
        if self.events.is_empty() {
            return Ok(tx);
        }
        Ok(Box::new(OutboxTx::new(tx, self.events.clone(), self.outbox_signal.clone())))
    }

    pub fn driver(&self) -> &D {
        &self.db
    }

    /// One statement in its own write transaction; returns the number of rows it changed.
    pub(super) async fn write_one(&self, sql: &str, params: &[SqlValue]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = tx.execute(sql, params).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// A statement that changes one row or none: whether it changed one.
    pub(super) async fn write_once(&self, sql: &str, params: &[SqlValue]) -> Result<bool> {
        Ok(self.write_one(sql, params).await? == 1)
    }

    pub(super) async fn count(&self, sql: &str, params: &[SqlValue]) -> Result<i64> {
        count_of(self.db.read(sql, params).await?)
    }

    /// The first row of `R`'s table that `filter` selects.
    pub(super) async fn find<R: Record>(&self, filter: &str, params: &[SqlValue]) -> Result<Option<R>> {
        let rows = self.db.read(&select_sql::<R>(filter), params).await?;
        rows.first().map(from_row).transpose()
    }

    /// The row of `R`'s table with this key (its first column).
    pub(super) async fn get<R: Record>(&self, key: &str) -> Result<Option<R>> {
        self.find(&format!("{} = $1", R::COLUMNS[0]), &[key.into()]).await
    }

    /// Every row of `R`'s table that `filter` selects (an `ORDER BY` may follow the condition).
    pub(super) async fn find_all<R: Record>(&self, filter: &str, params: &[SqlValue]) -> Result<Vec<R>> {
        self.db.read(&select_sql::<R>(filter), params).await?.iter().map(from_row).collect()
    }

    /// One page of the rows the filter selects, in `order`, and how many it selects in all.
    pub(super) async fn page<R: Record>(
        &self,
        mut f: Filter,
        order: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<R>, i64)> {
        let total = self.count(&format!("SELECT COUNT(*) FROM {} WHERE {}", R::TABLE, f.sql()), &f.params).await?;
        let (limit, offset) = (f.param(limit), f.param(offset));
        let filter = format!("{} ORDER BY {order} LIMIT {limit} OFFSET {offset}", f.sql());
        Ok((self.find_all(&filter, &f.params).await?, total))
    }

    pub(super) async fn insert<R: Record>(&self, row: &R) -> Result<()> {
        self.write_one(&insert_sql::<R>(), &params(row)).await.map(|_| ())
    }

    /// Writes the row over the one with its key; returns how many rows changed (0 or 1).
    pub(super) async fn update<R: Record>(&self, row: &R) -> Result<u64> {
        self.write_one(&update_sql::<R>(false), &params(row)).await
    }

    /// Deletes the row of `R`'s table with this key; whether there was one.
    pub(super) async fn delete<R: Record>(&self, key: &str) -> Result<bool> {
        self.write_once(&format!("DELETE FROM {} WHERE {} = $1", R::TABLE, R::COLUMNS[0]), &[key.into()]).await
    }

    /// An optimistic update: exactly one row must match id and previous version.
    pub(super) async fn update_versioned<R: Versioned>(&self, row: &R) -> Result<()> {
        match self.write_one(&update_sql::<R>(true), &versioned_params(row)).await? {
            1 => Ok(()),
            _ => Err(StoreError::Stale),
        }
    }
}
