//! argon2id password hashing (OWASP: m=19456 KiB, t=2, p=1) on a bounded blocking pool, so
//! hashing never runs on the async workers and memory stays within `permits × 19 MiB`.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::error::{Result, ServiceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self { m_kib: 19_456, t: 2, p: 1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash uses weaker parameters (or another scheme) than current.
    pub needs_rehash: bool,
}

#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    async fn hash(&self, password: &str) -> Result<String>;
    async fn verify(&self, password: &str, phc: &str) -> Result<Verified>;
    /// Spends the same effort as a real verification, for unknown accounts.
    async fn verify_dummy(&self, password: &str) -> Result<()>;
}

pub struct Argon2Hasher {
    params: HashParams,
    permits: Arc<Semaphore>,
    dummy: String,
}

impl Argon2Hasher {
    /// `concurrency` hashes run at once at most; others wait for a permit.
    pub fn new(params: HashParams, concurrency: usize) -> Result<Self> {
        let dummy = hash_blocking(params, "latchkey dummy password for unknown accounts", &random_salt())?;
        Ok(Self { params, permits: Arc::new(Semaphore::new(concurrency.max(1))), dummy })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(|_| ServiceError::internal())?;
        tokio::task::spawn_blocking(f).await.map_err(|_| ServiceError::internal())?
    }
}

fn argon(params: HashParams) -> Result<Argon2<'static>> {
    let p = Params::new(params.m_kib, params.t, params.p, Some(32)).map_err(|_| ServiceError::internal())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

fn random_salt() -> SaltString {
    SaltString::generate(&mut rand_core::OsRng)
}

pub fn hash_blocking(params: HashParams, password: &str, salt: &SaltString) -> Result<String> {
    argon(params)?.hash_password(password.as_bytes(), salt).map(|h| h.to_string()).map_err(|_| ServiceError::internal())
}

fn verify_blocking(current: HashParams, password: &str, phc: &str) -> Result<Verified> {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Ok(Verified { ok: false, needs_rehash: false });
    };
    let stored = Params::try_from(&parsed).ok();
    let needs_rehash = parsed.algorithm.as_str() != "argon2id"
        || stored.is_none_or(|s| s.m_cost() < current.m_kib || s.t_cost() < current.t || s.p_cost() < current.p);
    // Verify with the parameters the hash names (argon2 reads them from the PHC string).
    let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
    Ok(Verified { ok, needs_rehash })
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params;
        let password = zeroize::Zeroizing::new(password.to_owned());
        self.run(move || hash_blocking(params, &password, &random_salt())).await
    }

    async fn verify(&self, password: &str, phc: &str) -> Result<Verified> {
        let params = self.params;
        let password = zeroize::Zeroizing::new(password.to_owned());
        let phc = phc.to_owned();
        self.run(move || verify_blocking(params, &password, &phc)).await
    }

    async fn verify_dummy(&self, password: &str) -> Result<()> {
        let dummy = self.dummy.clone();
        self.verify(password, &dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn hashes_are_owasp_argon2id_and_verify() {
        let h = Argon2Hasher::new(HashParams::default(), 2).unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(h.verify("correct horse battery", &phc).await.unwrap(), Verified { ok: true, needs_rehash: false });
        assert!(!h.verify("correct horse batterY", &phc).await.unwrap().ok);
        assert!(!h.verify("x", "not a phc string").await.unwrap().ok);
    }

    #[tokio::test]
    async fn weak_parameters_ask_for_a_rehash() {
        let weak = hash_blocking(HashParams { m_kib: 4096, t: 1, p: 1 }, "pw-for-test", &random_salt()).unwrap();
        let h = Argon2Hasher::new(HashParams::default(), 1).unwrap();
        assert_eq!(h.verify("pw-for-test", &weak).await.unwrap(), Verified { ok: true, needs_rehash: true });
    }

    #[tokio::test]
    async fn no_truncation_after_72_bytes() {
        let h = Argon2Hasher::new(HashParams::default(), 1).unwrap();
        let long = "a".repeat(100);
        let phc = h.hash(&long).await.unwrap();
        let mut changed = long.clone();
        changed.replace_range(90..91, "b");
        assert!(!h.verify(&changed, &phc).await.unwrap().ok);
    }
}
