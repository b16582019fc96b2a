//! The Backend API's secret keys: made at the command line, shown once and stored as a
//! digest, checked in constant time; a live one is the only way to the [`Operator`] proof
//! over HTTP.

use latchkey_core::ids::IdKind;

use crate::authority::{FeedReader, Operator};

/// How a verifier key begins (a secret key begins `sk_`, and no verifier key passes for one).
const VERIFIER_PREFIX: &str = "vk_live_";
use crate::error::{Result, ServiceError};
use crate::Services;

impl Services {
    /// A new `sk_live_` secret key: returned once, stored only as a SHA-256 digest.
    pub async fn create_secret_key(
        &self,
        _operator: &Operator,
        label: &str,
    ) -> Result<(latchkey_store::ApiKeyRow, String)> {
        let secret = format!("sk_live_{}", latchkey_core::secret::new_opaque_secret(self.rng.as_ref()));
        let row = latchkey_store::ApiKeyRow {
            id: self.new_id(IdKind::Instance).replacen("ins_", "ak_", 1),
            digest: latchkey_core::secret::secret_digest(&secret),
            label: label.trim().chars().take(100).collect(),
            created_at: self.now(),
            revoked_at: None,
        };
        self.store.insert_api_key(&row).await?;
        Ok((row, secret))
    }

    /// A new `vk_live_` verifier key: it reads the revocation feed and nothing else (a
    /// backend that verifies tokens need not hold a key that administers users). Returned
    /// once, stored only as a digest; listed and revoked with the secret keys (id `vk_…`).
    pub async fn create_verifier_key(
        &self,
        _operator: &Operator,
        label: &str,
    ) -> Result<(latchkey_store::ApiKeyRow, String)> {
        let secret = format!("{VERIFIER_PREFIX}{}", latchkey_core::secret::new_opaque_secret(self.rng.as_ref()));
        let row = latchkey_store::ApiKeyRow {
            id: self.new_id(IdKind::Instance).replacen("ins_", "vk_", 1),
            digest: latchkey_core::secret::secret_digest(&secret),
            label: label.trim().chars().take(100).collect(),
            created_at: self.now(),
            revoked_at: None,
        };
        self.store.insert_api_key(&row).await?;
        Ok((row, secret))
    }

    /// A reader of the revocation feed: a live verifier key or a live secret key.
    pub async fn authenticate_verifier_key(&self, presented: &str) -> Result<FeedReader> {
        if presented.starts_with("sk_") {
            let operator = self.authenticate_secret_key(presented).await?;
            return Ok(FeedReader::new(operator.key_id().unwrap_or_default().to_owned()));
        }
        let invalid = || {
            ServiceError::new(crate::ErrorKind::Unauthenticated, "clerk_key_invalid", "The key is invalid.")
                .long("The provided verifier or secret key is invalid or has been revoked.")
        };
        if !presented.starts_with(VERIFIER_PREFIX) || presented.len() > 128 {
            return Err(invalid());
        }
        let digest = latchkey_core::secret::secret_digest(presented);
        match self.store.api_key_by_digest(&digest).await? {
            Some(row)
                if row.revoked_at.is_none()
                    && row.id.starts_with("vk_")
                    && latchkey_core::secret::constant_time_eq(row.digest.as_bytes(), digest.as_bytes()) =>
            {
                Ok(FeedReader::new(row.id))
            }
            _ => Err(invalid()),
        }
    }

    /// The operator behind a presented secret, when it names a live key; the digests are
    /// compared in constant time. The only way to the [`Operator`] proof over HTTP.
    pub async fn authenticate_secret_key(&self, presented: &str) -> Result<Operator> {
        let invalid = || {
            ServiceError::new(crate::ErrorKind::Unauthenticated, "clerk_key_invalid", "The secret key is invalid.")
                .long("The provided secret key is invalid or has been revoked. Find your keys with `latchkey keys secret list`.")
        };
        if !presented.starts_with("sk_") || presented.len() > 128 {
            return Err(invalid());
        }
        let digest = latchkey_core::secret::secret_digest(presented);
        match self.store.api_key_by_digest(&digest).await? {
            Some(row)
                if row.revoked_at.is_none()
                    && latchkey_core::secret::constant_time_eq(row.digest.as_bytes(), digest.as_bytes()) =>
            {
                Ok(Operator::secret_key(row.id))
            }
            _ => Err(invalid()),
        }
    }

    pub async fn list_secret_keys(&self) -> Result<Vec<latchkey_store::ApiKeyRow>> {
        Ok(self.store.list_api_keys().await?)
    }

    pub async fn revoke_secret_key(&self, _operator: &Operator, id: &str) -> Result<()> {
        if self.store.revoke_api_key(id, self.now()).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found("Secret key"))
        }
    }
}
