//! The Backend API's secret keys: made at the command line, shown once and stored as a
//! digest, checked in constant time; a live one is the only way to the [`Operator`] proof
//! over HTTP.

use latchkey_core::ids::IdKind;

use crate::authority::{FeedReader, Operator};
use crate::error::{Result, ServiceError};
use crate::Services;

/// The two kinds of key: what the presented secret begins with, and its row's id.
#[derive(Clone, Copy)]
enum KeyKind {
    /// `sk_live_…`, id `ak_…`: the Backend API.
    Secret,
    /// `vk_live_…`, id `vk_…`: the revocation feed and nothing else (no verifier key passes
    /// for a secret key: its secret begins otherwise, so its digest is never a secret key's).
    Verifier,
}

impl KeyKind {
    fn secret_prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk_live_",
            KeyKind::Verifier => "vk_live_",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "ak_",
            KeyKind::Verifier => "vk_",
        }
    }
}

impl Services {
    /// A new `sk_live_` secret key: returned once, stored only as a SHA-256 digest.
    pub async fn create_secret_key(
        &self,
        _operator: &Operator,
        label: &str,
    ) -> Result<(latchkey_store::ApiKeyRow, String)> {
        self.new_api_key(KeyKind::Secret, label).await
    }

    /// A new `vk_live_` verifier key: it reads the revocation feed and nothing else (a
    /// backend that verifies tokens need not hold a key that administers users). Returned
    /// once, stored only as a digest; listed and revoked with the secret keys (id `vk_…`).
    pub async fn create_verifier_key(
        &self,
        _operator: &Operator,
        label: &str,
    ) -> Result<(latchkey_store::ApiKeyRow, String)> {
        self.new_api_key(KeyKind::Verifier, label).await
    }

    async fn new_api_key(&self, kind: KeyKind, label: &str) -> Result<(latchkey_store::ApiKeyRow, String)> {
        let secret = format!("{}{}", kind.secret_prefix(), latchkey_core::secret::new_opaque_secret(self.rng.as_ref()));
        let row = latchkey_store::ApiKeyRow {
            id: self.new_id(IdKind::Instance).replacen("ins_", kind.id_prefix(), 1),
            digest: latchkey_core::secret::secret_digest(&secret),
            label: label.trim().chars().take(100).collect(),
            created_at: self.now(),
            revoked_at: None,
        };
        self.store.insert_api_key(&row).await?;
        Ok((row, secret))
    }

    /// The id of the live key of `kind` the presented secret is, if it is one; the digests are
    /// compared in constant time.
    async fn live_key(&self, kind: KeyKind, presented: &str) -> Result<Option<String>> {
        // Only the family's first letters are checked here (`sk_test_…` is refused by the
        // digest, with the same answer as a wrong key).
        let family = &kind.secret_prefix()[..3];
        if !presented.starts_with(family) || presented.len() > 128 {
            return Ok(None);
        }
        let digest = latchkey_core::secret::secret_digest(presented);
        Ok(self.store.api_key_by_digest(&digest).await?.and_then(|row| {
            let live = row.revoked_at.is_none()
                && row.id.starts_with(kind.id_prefix())
                && latchkey_core::secret::constant_time_eq(row.digest.as_bytes(), digest.as_bytes());
            live.then_some(row.id)
        }))
    }

    /// A reader of the revocation feed: a live verifier key or a live secret key.
    pub async fn authenticate_verifier_key(&self, presented: &str) -> Result<FeedReader> {
        let key = match self.live_key(KeyKind::Verifier, presented).await? {
            Some(id) => Some(id),
            None => self.live_key(KeyKind::Secret, presented).await?,
        };
        key.map(FeedReader::new).ok_or_else(|| {
            ServiceError::new(crate::ErrorKind::Unauthenticated, "clerk_key_invalid", "The key is invalid.")
                .long("The provided verifier or secret key is invalid or has been revoked.")
        })
    }

    /// The operator behind a presented secret, when it names a live key. The only way to the
    /// [`Operator`] proof over HTTP.
    pub async fn authenticate_secret_key(&self, presented: &str) -> Result<Operator> {
        self.live_key(KeyKind::Secret, presented).await?.map(Operator::secret_key).ok_or_else(|| {
            ServiceError::new(crate::ErrorKind::Unauthenticated, "clerk_key_invalid", "The secret key is invalid.")
                .long("The provided secret key is invalid or has been revoked. Find your keys with `latchkey keys secret list`.")
        })
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
