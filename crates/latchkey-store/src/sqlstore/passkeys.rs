//! Users' passkeys (docs/passkeys.md).

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{insert_in, one};
use crate::error::{Result, StoreError};
use crate::records::{PasskeyRow, PasskeyUse};
use crate::sql::SqlDriver;
use crate::store::PasskeyStore;

record!(PasskeyRow in "passkeys" {
    id, user_id, name, credential_id, credential, counter, backup_eligible, backup_state,
    registration_state, verified, expire_at, last_used_at, created_at, updated_at,
});

#[async_trait]
impl<D: SqlDriver> PasskeyStore for SqlStore<D> {
    async fn set_webauthn_handle(&self, user_id: &str, handle: &str) -> Result<String> {
        // The version moves too: a versioned write of a copy read before would otherwise
        // put the old (empty) handle back.
        self.write_one(
            "UPDATE users SET webauthn_handle = $2, version = version + 1 WHERE id = $1 AND webauthn_handle IS NULL",
            &[user_id.into(), handle.into()],
        )
        .await?;
        let rows = self.db.read("SELECT webauthn_handle FROM users WHERE id = $1", &[user_id.into()]).await?;
        one(rows, |r| r.text(0))?.ok_or(StoreError::NotFound)
    }

    async fn save_pending_passkey(&self, passkey: &PasskeyRow) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM passkeys WHERE user_id = $1 AND NOT verified", &[passkey.user_id.clone().into()])
            .await?;
        insert_in(&mut tx, passkey).await?;
        tx.commit().await
    }

    async fn finish_passkey_registration(&self, p: &PasskeyRow, state: &str) -> Result<bool> {
        self.write_once(
            "UPDATE passkeys SET verified = TRUE, credential_id = $3, credential = $4, counter = $5, \
             backup_eligible = $6, backup_state = $7, registration_state = NULL, expire_at = NULL, \
             updated_at = $8 WHERE id = $1 AND user_id = $2 AND NOT verified AND registration_state = $9",
            &[
                p.id.clone().into(),
                p.user_id.clone().into(),
                p.credential_id.clone().into(),
                p.credential.clone().into(),
                p.counter.into(),
                p.backup_eligible.into(),
                p.backup_state.into(),
                p.updated_at.into(),
                state.into(),
            ],
        )
        .await
    }

    async fn fail_passkey_registration(&self, user_id: &str, id: &str, now: i64) -> Result<()> {
        self.write_one(
            "UPDATE passkeys SET registration_state = NULL, updated_at = $3 \
             WHERE id = $1 AND user_id = $2 AND NOT verified",
            &[id.into(), user_id.into(), now.into()],
        )
        .await
        .map(|_| ())
    }

    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<PasskeyRow>> {
        self.find("credential_id = $1 AND verified", &[credential_id.into()]).await
    }

    async fn record_passkey_use(&self, u: &PasskeyUse) -> Result<bool> {
        self.write_once(
            "UPDATE passkeys SET counter = $2, credential = $3, backup_state = $4, last_used_at = $5, \
             updated_at = $5 WHERE id = $1 AND verified AND (counter < $2 OR ($2 = 0 AND counter = 0))",
            &[u.id.clone().into(), u.counter.into(), u.credential.clone().into(), u.backup_state.into(), u.now.into()],
        )
        .await
    }

    async fn rename_passkey(&self, user_id: &str, id: &str, name: &str, now: i64) -> Result<bool> {
        self.write_once(
            "UPDATE passkeys SET name = $3, updated_at = $4 WHERE id = $1 AND user_id = $2 AND verified",
            &[id.into(), user_id.into(), name.into(), now.into()],
        )
        .await
    }

    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool> {
        self.write_once("DELETE FROM passkeys WHERE id = $1 AND user_id = $2", &[id.into(), user_id.into()]).await
    }
}
