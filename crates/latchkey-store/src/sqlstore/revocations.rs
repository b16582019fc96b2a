//! The revocation feed's entries (docs/revocations.md): written with the events that cause them
//! (`outbox.rs`), read by every instance, pruned once expired.

use async_trait::async_trait;
use latchkey_core::revocation::Revocation;

use super::base::SqlStore;
use super::outbox::insert_revocation;
use crate::error::Result;
use crate::sql::{Row, SqlDriver};
use crate::store::RevocationStore;

fn entry(r: &Row) -> Result<Revocation> {
    Ok(Revocation {
        id: r.text(0)?,
        kind: r.text(1)?,
        subject: r.text(2)?,
        organization_id: r.opt_text(3)?,
        role: r.opt_text(4)?,
        reason: r.text(5)?,
        at: r.int(6)?,
        expires_at: r.int(7)?,
    })
}

#[async_trait]
impl<D: SqlDriver> RevocationStore for SqlStore<D> {
    async fn record_revocation(&self, id: &str, revocation: &Revocation) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_revocation(&mut tx, id, revocation).await?;
        tx.commit().await
    }

    async fn revocations_since(&self, at_least: i64, now: i64, limit: i64) -> Result<Vec<Revocation>> {
        let rows = self
            .db
            .read(
                "SELECT id, kind, subject, organization_id, role, reason, at, expires_at FROM revocations \
                 WHERE at >= $1 AND expires_at > $2 ORDER BY at, id LIMIT $3",
                &[at_least.into(), now.into(), limit.into()],
            )
            .await?;
        rows.iter().map(entry).collect()
    }

    async fn prune_revocations(&self, now: i64) -> Result<u64> {
        self.write_one("DELETE FROM revocations WHERE expires_at <= $1", &[now.into()]).await
    }
}
