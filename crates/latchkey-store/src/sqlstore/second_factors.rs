//! Users' second factors: the authenticator-app key and backup codes (docs/second-factors.md).

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::insert_in;
use crate::error::Result;
use crate::records::{BackupCodeRow, TotpRow};
use crate::sql::{SqlDriver, SqlTx};
use crate::store::SecondFactorStore;

record!(TotpRow in "totps" {
    id, user_id, secret_sealed, verified, last_used_step, created_at, updated_at,
});
record!(BackupCodeRow in "backup_codes" {
    id, user_id, digest, created_at,
});

/// Writes a new user's imported factors; part of the caller's transaction.
pub(super) async fn insert_second_factors(
    tx: &mut Box<dyn SqlTx>,
    factors: &crate::records::SecondFactors,
) -> Result<()> {
    if let Some(totp) = &factors.totp {
        insert_in(tx, totp).await?;
    }
    for code in &factors.backup_codes {
        insert_in(tx, code).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: SqlDriver> SecondFactorStore for SqlStore<D> {
    async fn save_pending_totp(&self, totp: &TotpRow) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM totps WHERE user_id = $1 AND NOT verified", &[totp.user_id.clone().into()]).await?;
        insert_in(&mut tx, totp).await?;
        tx.commit().await
    }

    async fn use_totp_step(&self, id: &str, step: i64, verify: bool, now: i64) -> Result<bool> {
        self.write_once(
            "UPDATE totps SET last_used_step = $2, verified = (verified OR $3), updated_at = $4 \
             WHERE id = $1 AND (last_used_step IS NULL OR last_used_step < $2)",
            &[id.into(), step.into(), verify.into(), now.into()],
        )
        .await
    }

    async fn delete_totp(&self, user_id: &str, and_backup_codes: bool) -> Result<bool> {
        let mut tx = self.begin().await?;
        let mut n = tx.execute("DELETE FROM totps WHERE user_id = $1", &[user_id.into()]).await?;
        if and_backup_codes {
            n += tx.execute("DELETE FROM backup_codes WHERE user_id = $1", &[user_id.into()]).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn replace_backup_codes(&self, user_id: &str, codes: &[BackupCodeRow]) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM backup_codes WHERE user_id = $1", &[user_id.into()]).await?;
        for code in codes {
            insert_in(&mut tx, code).await?;
        }
        tx.commit().await
    }

    async fn consume_backup_code(&self, user_id: &str, id: &str) -> Result<bool> {
        self.write_once("DELETE FROM backup_codes WHERE id = $1 AND user_id = $2", &[id.into(), user_id.into()]).await
    }

    async fn delete_backup_codes(&self, user_id: &str) -> Result<bool> {
        Ok(self.write_one("DELETE FROM backup_codes WHERE user_id = $1", &[user_id.into()]).await? > 0)
    }
}
