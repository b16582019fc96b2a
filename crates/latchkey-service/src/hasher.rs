//! argon2id password hashing (OWASP: m=19456 KiB, t=2, p=1) on a small dedicated pool of
//! threads, never on the async workers. The pool has a fixed number of threads (so memory stays
//! near `threads × 19 MiB`) that run at a reduced CPU priority (nice 15): request handling
//! preempts hashing, so a burst of sign-ins cannot stall health checks or token refreshes,
//! while hashing still gets its share when other processes compete for the CPU (at nice 19
//! or SCHED_BATCH it lost too much to neighbours on a shared machine: docs/BENCHMARKS.md).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use base64::Engine;
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

type Job = Box<dyn FnOnce() + Send>;

const DEFAULT_DUMMY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$+2ruvKEGMnz58unCzmrpMg$x9xdNw3VPuxWvtw+ml6UGzirhQ7doIIerLLFTb7V3Cs";

pub struct Argon2Hasher {
    params: HashParams,
    /// Bounds the jobs handed to the pool (waiting callers queue here, asynchronously).
    permits: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
    dummy: String,
}

impl Argon2Hasher {
    /// Starts `threads` hashing threads; at most that many hashes run at once.
    pub fn new(params: HashParams, threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|_| ServiceError::internal())?;
        }
        // The dummy costs exactly what a real verification costs. For the default parameters it
        // is precomputed (a hash of a random, discarded password), so start-up does no hashing.
        let dummy = if params == HashParams::default() {
            DEFAULT_DUMMY.to_owned()
        } else {
            hash_blocking(params, "latchkey dummy password for unknown accounts", &random_salt())?
        };
        Ok(Self { params, permits: Arc::new(Semaphore::new(threads)), jobs: Mutex::new(tx), dummy })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(|_| ServiceError::internal())?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done_tx.send(f());
        });
        self.jobs.lock().map_err(|_| ServiceError::internal())?.send(job).map_err(|_| ServiceError::internal())?;
        done_rx.await.map_err(|_| ServiceError::internal())?
    }
}

/// Hashing threads yield to request handling (niceness 15). Where the system refuses, they
/// run at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadPriority,
            ThreadSchedulePolicy,
        };
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
        // The crate maps 0..=99 onto niceness 19..=-20; 12 is niceness 15.
        let nice = ThreadPriority::Crossplatform(12u8.try_into().unwrap_or_default());
        if let Err(e) = set_thread_priority_and_policy(thread_native_id(), nice, policy) {
            tracing::debug!(error = ?e, "could not lower the hashing threads' priority");
        }
    }
}

fn argon(params: HashParams) -> Result<Argon2<'static>> {
    let p = Params::new(params.m_kib, params.t, params.p, Some(32)).map_err(|_| ServiceError::internal())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

fn random_salt() -> SaltString {
    SaltString::generate(&mut rand_core::OsRng)
}

/// Argon2 working memory (19 MiB per buffer), shared by the hashing threads: a hash takes a
/// buffer and puts it back, so a burst neither allocates nor page-faults afresh, and the
/// server holds only as many buffers as hashes ever ran at once (glibc keeps freed memory of
/// this size in its arenas, so handing buffers back to the allocator would not shrink the
/// process either).
static MEMORY: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

/// Runs argon2 into `out` with this thread's reusable memory.
fn argon2_into(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<()> {
    let blocks = argon.params().block_count();
    let mut memory = MEMORY.lock().ok().and_then(|mut pool| pool.pop()).unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let result = argon
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|_| ServiceError::internal());
    if let Ok(mut pool) = MEMORY.lock() {
        pool.push(memory);
    }
    result
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
pub fn hash_blocking(params: HashParams, password: &str, salt: &SaltString) -> Result<String> {
    let argon = argon(params)?;
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt).map_err(|_| ServiceError::internal())?;
    let mut out = [0u8; 32];
    argon2_into(&argon, password.as_bytes(), raw_salt, &mut out)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_kib,
        params.t,
        params.p,
        salt.as_str(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
    ))
}

/// Most memory (KiB) an argon2 digest may ask for: 256 MiB.
const MAX_ARGON2_M_KIB: u32 = 256 * 1024;

/// Whether checking a password against an argon2 digest of these parameters is bearable at
/// every sign-in: an imported digest could ask for terabytes or billions of passes (and abort
/// the process, or hold a hashing thread for hours). Checked at import and again at sign-in.
pub(crate) fn argon2_cost_bearable(params: &Params) -> bool {
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    m <= MAX_ARGON2_M_KIB
        && u64::from(m) * u64::from(t) <= 4 * u64::from(MAX_ARGON2_M_KIB)
        && p <= 16
        && params.output_len().is_none_or(|len| len <= 64)
}

fn verify_blocking(current: HashParams, password: &str, phc: &str) -> Result<Verified> {
    let refused = Verified { ok: false, needs_rehash: false };
    // A digest imported from another system: checked by its own scheme, and replaced by
    // argon2id after the first sign-in that proves it (docs/moving-from-clerk.md).
    if let Some(legacy) = latchkey_core::legacy_digest::LegacyDigest::from_stored(phc) {
        return Ok(Verified { ok: legacy.verify(password), needs_rehash: true });
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Ok(refused);
    };
    let algorithm = match parsed.algorithm.as_str() {
        "argon2id" => Algorithm::Argon2id,
        "argon2i" => Algorithm::Argon2i,
        "argon2d" => Algorithm::Argon2d,
        _ => return Ok(refused),
    };
    let (Ok(stored), Some(salt), Some(expected)) = (Params::try_from(&parsed), parsed.salt, parsed.hash) else {
        return Ok(refused);
    };
    if !argon2_cost_bearable(&stored) {
        return Ok(refused);
    }
    let needs_rehash = algorithm != Algorithm::Argon2id
        || stored.m_cost() < current.m_kib
        || stored.t_cost() < current.t
        || stored.p_cost() < current.p;
    let version = match parsed.version {
        Some(0x10) => Version::V0x10,
        _ => Version::V0x13,
    };
    let argon = Argon2::new(algorithm, version, stored);
    let mut raw_salt = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else {
        return Ok(refused);
    };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    argon2_into(&argon, password.as_bytes(), raw_salt, &mut out)?;
    let ok = latchkey_core::secret::constant_time_eq(&out, expected);
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
        let dummy = self.dummy.clone();
        self.run(move || {
            let verdict = verify_blocking(params, &password, &phc)?;
            // An imported digest (md5, sha256 …) can be far cheaper than argon2id: spend
            // argon2id's effort too, so a refusal's time does not tell an imported account
            // from an unknown one (docs/SECURITY.md, enumeration).
            if latchkey_core::legacy_digest::LegacyDigest::from_stored(&phc).is_some() {
                verify_blocking(params, &password, &dummy)?;
            }
            Ok(verdict)
        })
        .await
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
    async fn interoperates_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = Argon2Hasher::new(HashParams::default(), 1).unwrap();
        let ours = h.hash("interop passphrase").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"interop passphrase", &parsed).is_ok());
        let theirs = Argon2::default().hash_password(b"interop passphrase", &random_salt()).unwrap().to_string();
        assert!(h.verify("interop passphrase", &theirs).await.unwrap().ok);
        assert!(!h.verify("interop passphrasE", &theirs).await.unwrap().ok);
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default())
            .hash_password(b"old scheme", &random_salt())
            .unwrap()
            .to_string();
        assert_eq!(h.verify("old scheme", &argon2i).await.unwrap(), Verified { ok: true, needs_rehash: true });
    }

    #[tokio::test]
    async fn the_dummy_hash_has_current_parameters() {
        let h = Argon2Hasher::new(HashParams::default(), 1).unwrap();
        assert!(h.dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let v = h.verify("anything at all", &h.dummy).await.unwrap();
        assert_eq!(v, Verified { ok: false, needs_rehash: false }, "a real verification, which fails");
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
