//! [`ThrottleStore`] in portable SQL: one upsert per event, so concurrent instances never
//! lose a count.

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{bump_in, counter_from, one, select_counter_sql};
use crate::error::Result;
use crate::sql::SqlDriver;
use crate::throttle::{Counter, ThrottleStore};

#[async_trait]
impl<D: SqlDriver> ThrottleStore for SqlStore<D> {
    async fn bump_counter(&self, key: &str, window_ms: i64, now: i64) -> Result<Counter> {
        let mut tx = self.db.begin().await?;
        let counter = bump_in(&mut tx, key, window_ms, now).await?;
        tx.commit().await?;
        Ok(counter)
    }

    async fn reserve_counter(&self, key: &str, seen: Option<&Counter>, window_ms: i64, now: i64) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let counted = match seen.filter(|c| now < c.expires_at) {
            // No live window: start one, unless a racing caller just did.
            None => {
                tx.execute(
                    "INSERT INTO attempt_counters (key, count, window_start, last_at, expires_at) VALUES ($1, 1, $2, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET count = 1, window_start = $2, last_at = $2, expires_at = $3 \
                     WHERE attempt_counters.expires_at <= $2",
                    &[key.into(), now.into(), now.saturating_add(window_ms).into()],
                )
                .await?
            }
            Some(c) => {
                tx.execute(
                    "UPDATE attempt_counters SET count = count + 1, last_at = $4 \
                     WHERE key = $1 AND count = $2 AND last_at = $3",
                    &[key.into(), c.count.into(), c.last_at.into(), now.into()],
                )
                .await?
            }
        };
        tx.commit().await?;
        Ok(counted == 1)
    }

    async fn get_counter(&self, key: &str) -> Result<Option<Counter>> {
        one(self.db.read(&select_counter_sql(), &[key.into()]).await?, counter_from)
    }

    async fn clear_counter(&self, key: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        tx.execute("DELETE FROM attempt_counters WHERE key = $1", &[key.into()]).await?;
        tx.commit().await
    }

    async fn prune_counters(&self, now: i64) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        let n = tx.execute("DELETE FROM attempt_counters WHERE expires_at <= $1", &[now.into()]).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn spend_rate_cell(&self, key: &str, interval_ms: i64, tolerance_ms: i64, now: i64) -> Result<Option<i64>> {
        // One statement: the row lock of the upsert orders racing instances, and a refused
        // request (the WHERE fails) writes nothing.
        let mut tx = self.db.begin().await?;
        let spent = tx
            .query(
                "INSERT INTO rate_cells (key, tat) VALUES ($1, $2 + $3) \
                 ON CONFLICT (key) DO UPDATE \
                 SET tat = (CASE WHEN rate_cells.tat > $2 THEN rate_cells.tat ELSE $2 END) + $3 \
                 WHERE (CASE WHEN rate_cells.tat > $2 THEN rate_cells.tat ELSE $2 END) - $4 <= $2 \
                 RETURNING tat",
                &[key.into(), now.into(), interval_ms.into(), tolerance_ms.into()],
            )
            .await?;
        let wait = if spent.is_empty() {
            let rows = tx.query("SELECT tat FROM rate_cells WHERE key = $1", &[key.into()]).await?;
            let tat = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(now);
            Some((tat - tolerance_ms - now).max(1))
        } else {
            None
        };
        tx.commit().await?;
        Ok(wait)
    }

    async fn prune_rate_cells(&self, now: i64) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        let n = tx.execute("DELETE FROM rate_cells WHERE tat <= $1", &[now.into()]).await?;
        tx.commit().await?;
        Ok(n)
    }
}
