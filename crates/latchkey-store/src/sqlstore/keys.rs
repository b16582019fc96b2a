//! Instance settings, Backend API keys, session-token signing keys and JWT templates.

use super::base::SqlStore;
use super::shared::one;
use crate::error::{Result, StoreError};
use crate::records::{ApiKeyRow, JwtTemplateRow, SigningKeyRow};
use crate::sql::SqlDriver;

record!(ApiKeyRow in "api_keys" { id, digest, label, created_at, revoked_at });
record!(SigningKeyRow in "signing_keys" {
    kid, public_n, public_e, private_sealed, created_at, activate_at, revoked_at,
});
record!(JwtTemplateRow in "jwt_templates" {
    id, name, claims, lifetime, allowed_clock_skew, signing_algorithm, signing_key_sealed, created_at, updated_at,
});

pub(super) async fn get_setting<D: SqlDriver>(s: &SqlStore<D>, key: &str) -> Result<Option<String>> {
    let rows = s.db.read("SELECT value FROM settings WHERE key = $1", &[key.into()]).await?;
    one(rows, |r| r.text(0))
}

pub(super) async fn init_setting<D: SqlDriver>(s: &SqlStore<D>, key: &str, value: &str) -> Result<String> {
    let mut tx = s.begin().await?;
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[key.into(), value.into()],
    )
    .await?;
    let rows = tx.query("SELECT value FROM settings WHERE key = $1", &[key.into()]).await?;
    tx.commit().await?;
    one(rows, |r| r.text(0))?.ok_or(StoreError::NotFound)
}

pub(super) async fn list_api_keys<D: SqlDriver>(s: &SqlStore<D>) -> Result<Vec<ApiKeyRow>> {
    s.find_all("1 = 1 ORDER BY created_at, id", &[]).await
}

pub(super) async fn api_key_by_digest<D: SqlDriver>(s: &SqlStore<D>, digest: &str) -> Result<Option<ApiKeyRow>> {
    s.find("digest = $1", &[digest.into()]).await
}

pub(super) async fn revoke_api_key<D: SqlDriver>(s: &SqlStore<D>, id: &str, now: i64) -> Result<bool> {
    s.write_once("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", &[id.into(), now.into()])
        .await
}

pub(super) async fn list_signing_keys<D: SqlDriver>(s: &SqlStore<D>) -> Result<Vec<SigningKeyRow>> {
    s.find_all("1 = 1 ORDER BY activate_at, kid", &[]).await
}

pub(super) async fn revoke_signing_key<D: SqlDriver>(s: &SqlStore<D>, kid: &str, now: i64) -> Result<bool> {
    s.write_once(
        "UPDATE signing_keys SET revoked_at = $2 WHERE kid = $1 AND revoked_at IS NULL",
        &[kid.into(), now.into()],
    )
    .await
}

pub(super) async fn jwt_template_by_name<D: SqlDriver>(s: &SqlStore<D>, name: &str) -> Result<Option<JwtTemplateRow>> {
    s.find("name = $1", &[name.into()]).await
}

pub(super) async fn list_jwt_templates<D: SqlDriver>(s: &SqlStore<D>) -> Result<Vec<JwtTemplateRow>> {
    s.find_all("1 = 1 ORDER BY created_at, id", &[]).await
}
