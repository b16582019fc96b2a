//! Instance settings, Backend API keys, session-token signing keys and JWT templates.

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::one;
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::sql::SqlDriver;
use crate::store::KeyStore;

record!(ApiKeyRow in "api_keys" { id, digest, label, created_at, revoked_at });
record!(SigningKeyRow in "signing_keys" {
    kid, public_n, public_e, private_sealed, created_at, activate_at, revoked_at,
});
record!(JwtTemplateRow in "jwt_templates" {
    id, name, claims, lifetime, allowed_clock_skew, signing_algorithm, signing_key_sealed, created_at, updated_at,
});

#[async_trait]
impl<D: SqlDriver> KeyStore for SqlStore<D> {
    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let rows = self.db.read("SELECT value FROM settings WHERE key = $1", &[key.into()]).await?;
        one(rows, |r| r.text(0))
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[key.into(), value.into()],
        )
        .await?;
        let rows = tx.query("SELECT value FROM settings WHERE key = $1", &[key.into()]).await?;
        tx.commit().await?;
        one(rows, |r| r.text(0))?.ok_or(StoreError::NotFound)
    }

    async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<()> {
        self.insert(key).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        self.find_all("1 = 1 ORDER BY created_at, id", &[]).await
    }

    async fn api_key_by_digest(&self, digest: &str) -> Result<Option<ApiKeyRow>> {
        self.find("digest = $1", &[digest.into()]).await
    }

    async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        self.write_once(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[id.into(), now.into()],
        )
        .await
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        self.find_all("1 = 1 ORDER BY activate_at, kid", &[]).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()> {
        self.insert(key).await
    }

    async fn revoke_signing_key(&self, kid: &str, now: i64) -> Result<bool> {
        self.write_once(
            "UPDATE signing_keys SET revoked_at = $2 WHERE kid = $1 AND revoked_at IS NULL",
            &[kid.into(), now.into()],
        )
        .await
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<()> {
        self.delete::<SigningKeyRow>(kid).await.map(|_| ())
    }

    async fn insert_jwt_template(&self, template: &JwtTemplateRow) -> Result<()> {
        self.insert(template).await
    }

    async fn get_jwt_template(&self, id: &str) -> Result<Option<JwtTemplateRow>> {
        self.get(id).await
    }

    async fn jwt_template_by_name(&self, name: &str) -> Result<Option<JwtTemplateRow>> {
        self.find("name = $1", &[name.into()]).await
    }

    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplateRow>> {
        self.find_all("1 = 1 ORDER BY created_at, id", &[]).await
    }

    async fn update_jwt_template(&self, template: &JwtTemplateRow) -> Result<()> {
        self.update(template).await.map(|_| ())
    }

    async fn delete_jwt_template(&self, id: &str) -> Result<bool> {
        self.delete::<JwtTemplateRow>(id).await
    }
}
