//! Users' accounts at identity providers (docs/identity-providers.md).

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{all, from_row, insert_in, one, select_sql, update_in};
use crate::error::Result;
use crate::records::ExternalAccountRow;
use crate::sql::{SqlDriver, SqlTx};
use crate::store::ExternalAccountStore;

record!(ExternalAccountRow in "external_accounts" {
    id, user_id, provider, provider_user_id, email_address, email_verified, first_name, last_name, image_url,
    username, approved_scopes, access_token_sealed, refresh_token_sealed, token_expires_at, created_at, updated_at,
});

/// Adds the account, or refreshes the stored one (same id): the profile and tokens a sign-in
/// brought. Part of the caller's transaction.
pub(super) async fn write_external_account(tx: &mut Box<dyn SqlTx>, account: &ExternalAccountRow) -> Result<()> {
    if update_in(tx, account).await? == 0 {
        insert_in(tx, account).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: SqlDriver> ExternalAccountStore for SqlStore<D> {
    async fn external_account_by_subject(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Option<ExternalAccountRow>> {
        let sql = select_sql::<ExternalAccountRow>("provider = $1 AND provider_user_id = $2");
        let rows = self.db.read(&sql, &[provider.into(), provider_user_id.into()]).await?;
        one(rows, from_row)
    }

    async fn external_accounts_for_user(&self, user_id: &str) -> Result<Vec<ExternalAccountRow>> {
        let sql = format!("{} ORDER BY created_at, id", select_sql::<ExternalAccountRow>("user_id = $1"));
        let rows = self.db.read(&sql, &[user_id.into()]).await?;
        all(&rows, from_row)
    }

    async fn save_external_account(&self, account: &ExternalAccountRow) -> Result<()> {
        let mut tx = self.begin().await?;
        write_external_account(&mut tx, account).await?;
        tx.commit().await
    }

    async fn update_external_account(&self, account: &ExternalAccountRow) -> Result<bool> {
        let mut tx = self.begin().await?;
        let owned = tx
            .query(
                "SELECT id FROM external_accounts WHERE id = $1 AND user_id = $2",
                &[account.id.clone().into(), account.user_id.clone().into()],
            )
            .await?;
        if owned.is_empty() {
            return Ok(false);
        }
        let n = update_in(&mut tx, account).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn delete_external_account(&self, user_id: &str, id: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute("DELETE FROM external_accounts WHERE id = $1 AND user_id = $2", &[id.into(), user_id.into()])
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }
}
