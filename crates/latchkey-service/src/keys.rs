//! The instance's signing keys: stored sealed in the database, their lifecycle derived from
//! timestamps (latchkey_token::keyring), reloaded periodically so that every instance sharing
//! the database signs with the same key.

use std::collections::HashMap;
use std::sync::Arc;

use latchkey_core::{Clock, Random};
use latchkey_store::{KeyStore, SigningKeyRow};
use latchkey_token::keyring::{self, Millis};
use latchkey_token::{Jwk, Jwks, KeyRecord, KeyState, KeyTiming, PublicKey, SigningKey, Verifier, VerifierOptions};
use tokio::sync::RwLock;

use crate::error::{Result, ServiceError};
use crate::kek::Kek;

const RELOAD_EVERY_MS: Millis = 10_000;

struct Loaded {
    at: Millis,
    records: Vec<KeyRecord>,
    rows: HashMap<String, SigningKeyRow>,
    public: HashMap<String, PublicKey>,
    signing: HashMap<String, SigningKey>,
}

/// How long a revoked key's entry lives: past any verifier's next key fetch, which drops it.
const KEY_REVOCATION_MS: i64 = 15 * 60 * 1000;

pub struct KeyManager {
    store: Arc<dyn KeyStore>,
    kek: Kek,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    pub timing: KeyTiming,
    cache: RwLock<Option<Arc<Loaded>>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyStatus {
    pub kid: String,
    pub state: KeyState,
    pub created_at: Millis,
    pub activate_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl KeyManager {
    pub fn new(
        store: Arc<dyn KeyStore>,
        kek: Kek,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
        timing: KeyTiming,
    ) -> Self {
        Self { store, kek, clock, rng, timing, cache: RwLock::new(None) }
    }

    async fn loaded(&self) -> Result<Arc<Loaded>> {
        let now = self.clock.now_ms();
        if let Some(l) = self.cache.read().await.as_ref() {
            if now - l.at < RELOAD_EVERY_MS && now >= l.at {
                return Ok(l.clone());
            }
        }
        self.reload().await
    }

    /// Reads the key ring from the database now (after this or another instance changed it).
    pub async fn refresh(&self) -> Result<()> {
        self.reload().await.map(|_| ())
    }

    async fn reload(&self) -> Result<Arc<Loaded>> {
        let now = self.clock.now_ms();
        let rows = self.store.list_signing_keys().await?;
        let previous = self.cache.read().await.clone();
        let mut public = HashMap::new();
        let mut signing = HashMap::new();
        for row in &rows {
            if let Some(prev) = previous.as_ref().and_then(|p| p.signing.get(&row.kid)) {
                signing.insert(row.kid.clone(), prev.clone());
            }
            let jwk = Jwk {
                kty: "RSA".into(),
                kid: row.kid.clone(),
                alg: "RS256".into(),
                r#use: "sig".into(),
                n: row.public_n.clone(),
                e: row.public_e.clone(),
            };
            match jwk.to_public_key() {
                Ok(k) => {
                    public.insert(row.kid.clone(), k);
                }
                Err(_) => tracing::error!(kid = %row.kid, "stored signing key has an invalid public part"),
            }
        }
        let loaded = Arc::new(Loaded {
            at: now,
            records: rows.iter().map(record).collect(),
            rows: rows.into_iter().map(|r| (r.kid.clone(), r)).collect(),
            public,
            signing,
        });
        *self.cache.write().await = Some(loaded.clone());
        Ok(loaded)
    }

    /// Seals a secret that belongs to `owner` (a template's signing key) with the instance's
    /// key-encryption key.
    pub fn seal_secret(&self, secret: &[u8], owner: &str) -> Result<String> {
        self.kek.seal(secret, owner, self.rng.as_ref()).map_err(|_| ServiceError::internal())
    }

    pub fn open_secret(&self, sealed: &str, owner: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        self.kek.open(sealed, owner).map_err(|_| {
            tracing::error!(owner, "a sealed secret cannot be opened (wrong key-encryption key?)");
            ServiceError::internal()
        })
    }

    /// Creates the first key on a new instance (active at once).
    pub async fn ensure_key(&self) -> Result<()> {
        let loaded = self.reload().await?;
        let now = self.clock.now_ms();
        if keyring::active_key(&loaded.records, now).is_none()
            && !loaded.records.iter().any(|k| k.revoked_at.is_none() && k.activate_at > now)
        {
            self.create_key(now, now).await?;
        }
        Ok(())
    }

    async fn create_key(&self, now: Millis, activate_at: Millis) -> Result<KeyRecord> {
        let rng = self.rng.clone();
        // RSA key generation is CPU-heavy: keep it off the async workers.
        let key = tokio::task::spawn_blocking(move || {
            SigningKey::generate(&mut latchkey_core::rng::RngAdapter(rng.as_ref()))
        })
        .await
        .map_err(|_| ServiceError::internal())?
        .map_err(|_| ServiceError::internal())?;
        let der = key.to_pkcs8_der().map_err(|_| ServiceError::internal())?;
        let sealed = self.kek.seal(&der, key.kid(), self.rng.as_ref()).map_err(|_| ServiceError::internal())?;
        let jwk = key.public().to_jwk();
        let row = SigningKeyRow {
            kid: key.kid().to_owned(),
            public_n: jwk.n,
            public_e: jwk.e,
            private_sealed: sealed,
            created_at: now,
            activate_at,
            revoked_at: None,
        };
        self.store.insert_signing_key(&row).await?;
        self.reload().await?;
        Ok(record(&row))
    }

    /// Starts a rotation: the new key is published now and signs once every cached JWKS has it.
    pub async fn rotate(&self) -> Result<KeyRecord> {
        let now = self.clock.now_ms();
        self.create_key(now, now + self.timing.publish_ahead_ms()).await
    }

    /// Revokes a key at once. If it was signing, a new key takes over immediately.
    pub async fn revoke(&self, kid: &str) -> Result<bool> {
        let now = self.clock.now_ms();
        let changed = self.store.revoke_signing_key(kid, now).await?;
        if changed {
            // Verifiers hear of it at once (docs/revocations.md), before their next key fetch.
            let entry = latchkey_core::revocation::Revocation {
                id: String::new(),
                kind: "key".into(),
                subject: kid.to_owned(),
                organization_id: None,
                role: None,
                reason: "revoked".into(),
                at: now,
                expires_at: now + KEY_REVOCATION_MS,
            };
            self.store.record_revocation(&format!("rev_key_{kid}"), &entry).await?;
        }
        let loaded = self.reload().await?;
        if keyring::active_key(&loaded.records, now).is_none() {
            self.create_key(now, now).await?;
        }
        Ok(changed)
    }

    /// Deletes keys whose retention has ended, and revoked ones past the same window.
    pub async fn prune(&self) -> Result<usize> {
        let loaded = self.reload().await?;
        let now = self.clock.now_ms();
        let mut removed = 0;
        for k in &loaded.records {
            let state = keyring::key_state(k, &loaded.records, now, &self.timing);
            let revoked_long_ago = k.revoked_at.is_some_and(|r| now >= r + self.timing.retain_ms());
            if state == KeyState::Removed || revoked_long_ago {
                self.store.delete_signing_key(&k.kid).await?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.reload().await?;
        }
        Ok(removed)
    }

    pub async fn status(&self) -> Result<Vec<KeyStatus>> {
        let loaded = self.reload().await?;
        let now = self.clock.now_ms();
        Ok(loaded
            .records
            .iter()
            .map(|k| KeyStatus {
                kid: k.kid.clone(),
                state: keyring::key_state(k, &loaded.records, now, &self.timing),
                created_at: k.created_at,
                activate_at: k.activate_at,
                revoked_at: k.revoked_at,
            })
            .collect())
    }

    /// The key that signs now, decrypted on first use.
    pub async fn signing_key(&self) -> Result<SigningKey> {
        let loaded = self.loaded().await?;
        let now = self.clock.now_ms();
        let active = keyring::active_key(&loaded.records, now).ok_or_else(|| {
            tracing::error!("no active signing key");
            ServiceError::internal()
        })?;
        if let Some(k) = loaded.signing.get(&active.kid) {
            return Ok(k.clone());
        }
        let row = loaded.rows.get(&active.kid).ok_or_else(ServiceError::internal)?;
        let der = self.kek.open(&row.private_sealed, &row.kid).map_err(|e| {
            tracing::error!(kid = %row.kid, error = %e, "cannot open signing key");
            ServiceError::internal()
        })?;
        let key = SigningKey::from_pkcs8_der(&der).map_err(|_| ServiceError::internal())?;
        let mut cache = self.cache.write().await;
        if let Some(current) = cache.as_ref() {
            let mut signing = current.signing.clone();
            signing.insert(row.kid.clone(), key.clone());
            *cache = Some(Arc::new(Loaded {
                at: current.at,
                records: current.records.clone(),
                rows: current.rows.clone(),
                public: current.public.clone(),
                signing,
            }));
        }
        Ok(key)
    }

    /// Decrypts the active key now, so that a wrong key-encryption key fails at start-up.
    pub async fn check_signing_key(&self) -> Result<()> {
        self.signing_key().await.map(|_| ())
    }

    pub async fn jwks(&self) -> Result<Jwks> {
        let loaded = self.loaded().await?;
        let now = self.clock.now_ms();
        let keys = keyring::published_keys(&loaded.records, now, &self.timing)
            .into_iter()
            .filter_map(|k| loaded.public.get(&k.kid).map(PublicKey::to_jwk))
            .collect();
        Ok(Jwks { keys })
    }

    pub async fn verifier(&self, options: VerifierOptions) -> Result<Verifier> {
        let loaded = self.loaded().await?;
        let now = self.clock.now_ms();
        let keys = keyring::published_keys(&loaded.records, now, &self.timing)
            .into_iter()
            .filter_map(|k| loaded.public.get(&k.kid).cloned())
            .collect::<Vec<_>>();
        Ok(Verifier::new(keys, options))
    }
}

fn record(row: &SigningKeyRow) -> KeyRecord {
    KeyRecord {
        kid: row.kid.clone(),
        created_at: row.created_at,
        activate_at: row.activate_at,
        revoked_at: row.revoked_at,
    }
}

impl crate::Services {
    /// The public keys that verify session tokens, as the JWKS publishes them.
    pub async fn jwks(&self) -> Result<Jwks> {
        self.keys.jwks().await
    }

    /// How long a JWKS response may be cached, in milliseconds.
    pub fn jwks_max_age_ms(&self) -> Millis {
        self.keys.timing.jwks_max_age_ms
    }

    /// The signing keys themselves (rotate, revoke, prune, list): the operator's alone, since
    /// whoever holds them can sign a session token for anyone.
    pub fn signing_keys(&self, _operator: &crate::Operator) -> &KeyManager {
        &self.keys
    }
}
