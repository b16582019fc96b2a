//! Password digests imported from another system (Clerk's `password_hasher` values,
//! docs/moving-from-clerk.md): checked once at import, verified at sign-in, and replaced by
//! argon2id after the first successful one. Stored as `legacy:<hasher>:<digest>` so they can
//! never be mistaken for latchkey's own PHC strings.
//!
//! Formats follow Clerk's documentation and the library each comes from; the research behind
//! them is docs/plans/clerk-password-digests.md. Where Clerk leaves a rule unsaid (the order of
//! salt and password in `md5_salted` and `sha256_salted`, the key of `hmac_sha256_utf16_b64`)
//! every reading that a real system uses is tried, each compared in constant time (salted.rs).

mod crypt;
mod salted;
mod scrypt_forms;
#[cfg(test)]
mod tests;
mod vectors;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::Hmac;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

pub use vectors::VECTORS;

const STORED_PREFIX: &str = "legacy:";
/// PBKDF2 iterations beyond this are refused at import, and so is a derived key whose blocks
/// (one per PRF output: 20 bytes for SHA-1, 32 for SHA-256, 64 for SHA-512), each costing the
/// iterations again, would take it past this: iterations × blocks is at most this. Clerk
/// bounds pbkdf2_sha512 at 420,000; Django's own default has passed that since Django 4.2
/// (600,000) and is 1,200,000 in Django 6.0 (one block: Django's key is its PRF's size), so
/// the bound here leaves room for a current Django export. 2,000,000 blocks of
/// PBKDF2-HMAC-SHA256 or SHA-1 take about 0.25 s, of SHA-512 about 1 s: less than bcrypt at
/// its cap (about 4 s).
const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;
/// A PBKDF2 or scrypt hash (the derived key) shorter than this is refused at import: a hash
/// cut short lets wrong passwords through (a 1-byte one, one in 256). The source systems write
/// 20 to 64 bytes; 16 leaves a wrong password one chance in 2^128.
const MIN_DERIVED_KEY_BYTES: usize = 16;
/// The longest PBKDF2 or scrypt hash taken: 64 bytes, the most any source system writes (and
/// the most the scrypt crate derives). Each further PBKDF2 block costs the iterations again.
const MAX_DERIVED_KEY_BYTES: usize = 64;
/// Salts, peppers and keys that are hashed once per sign-in: Clerk's own bound for
/// pbkdf2_sha512's salt.
const MAX_SALT_BYTES: usize = 1024;
/// Symfony hashes `password{salt}` again at every iteration, so its salt multiplies the work:
/// its salts are 32 to 88 characters (random hex or base64), and this leaves room.
const MAX_SYMFONY_SALT_BYTES: usize = 256;
/// Symfony's iterations (its default is 5,000) beyond this are refused at import: each is a
/// SHA-512 over the whole password, so with the longest password Symfony verifies (4,096
/// bytes) and the longest salt, 500,000 iterations take about as long as bcrypt at its cap.
const MAX_SYMFONY_ITERATIONS: u32 = 500_000;
/// phpass and Symfony hash the whole password at every round, so a long password multiplies
/// the digest's work: both refuse a password longer than 4,096 bytes (phpass's
/// `CheckPassword`, Symfony's `PasswordHasherInterface::MAX_PASSWORD_LENGTH`), and so does
/// latchkey for those digests.
const MAX_ITERATED_PASSWORD_BYTES: usize = 4096;
// Every sign-in of an imported user runs the digest's own work once: costs past these would
// let one import make each of its sign-ins take seconds or gigabytes.
const MAX_BCRYPT_COST: u32 = 16;
/// 2^19 rounds of phpass over a 4,096-byte password take about as long as bcrypt at its cap;
/// 2^19 is passlib's default (WordPress writes 2^13, phpBB 2^11).
const MAX_PHPASS_LOG2: usize = 19;
/// scrypt's memory is 128 · n · r bytes: at most 256 MiB.
const MAX_SCRYPT_N_TIMES_R: u64 = 1 << 21;

/// The hashers latchkey knows, by Clerk's names. Each is verified at sign-in except
/// `awscognito`, which is known only to be refused at import with the reason: it names a
/// Cognito user pool to ask, not a digest.
pub const HASHERS: &[&str] = &[
    "bcrypt",
    "bcrypt_sha256_django",
    "bcrypt_peppered",
    "md5",
    "md5_salted",
    "pbkdf2_sha1",
    "pbkdf2_sha256",
    "pbkdf2_sha256_django",
    "pbkdf2_sha512",
    "pbkdf2_sha512_hex",
    "phpass",
    "md5_phpass",
    "scrypt_werkzeug",
    "scrypt_firebase",
    "sha256",
    "sha256_salted",
    "ldap_ssha",
    "sha512_symfony",
    "hmac_sha256_utf16_b64",
    "awscognito",
];

/// Why `awscognito` is refused (the Backend API's 422 carries it).
const COGNITO_REFUSED: &str = "AWS Cognito passwords cannot be imported: an awscognito \
    password_digest holds no hash, only the Cognito user pool, app client and username that \
    Clerk asked at the user's first sign-in, and latchkey checks passwords itself without \
    calling Cognito. Import the user without a password; they must reset it (the \
    forgot-password flow) or use another sign-in (an email code or link, or a social \
    provider)";

/// An imported digest, checked for its hasher's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyDigest {
    hasher: &'static str,
    digest: String,
}

impl LegacyDigest {
    /// Checks `digest` against the format of `hasher` (one of [`HASHERS`]); the error says why
    /// it is refused.
    pub fn parse(hasher: &str, digest: &str) -> Result<Self, String> {
        let hasher = *HASHERS.iter().find(|h| **h == hasher).ok_or_else(|| format!("unknown hasher {hasher:?}"))?;
        let parsed = Self { hasher, digest: digest.to_owned() };
        parsed.scheme().map(|_| parsed)
    }

    /// The form kept in the user's password column.
    pub fn stored(&self) -> String {
        format!("{STORED_PREFIX}{}:{}", self.hasher, self.digest)
    }

    /// A stored legacy digest, or `None` for anything else (latchkey's own PHC strings).
    pub fn from_stored(stored: &str) -> Option<Self> {
        let rest = stored.strip_prefix(STORED_PREFIX)?;
        let (hasher, digest) = rest.split_once(':')?;
        Self::parse(hasher, digest).ok()
    }

    pub fn hasher(&self) -> &str {
        self.hasher
    }

    /// Whether `password` is the one this digest was made from (CPU-heavy for bcrypt, PBKDF2
    /// and scrypt: run it where password hashes run).
    pub fn verify(&self, password: &str) -> bool {
        self.scheme().is_ok_and(|s| s.verify(password))
    }

    fn scheme(&self) -> Result<Scheme, String> {
        let d = self.digest.as_str();
        Ok(match self.hasher {
            "bcrypt" => Scheme::Bcrypt { hash: crypt::bcrypt_hash(d)?, input: BcryptInput::Password },
            "bcrypt_sha256_django" => {
                let hash = d.strip_prefix("bcrypt_sha256$").ok_or("expected bcrypt_sha256$<bcrypt hash>")?;
                Scheme::Bcrypt { hash: crypt::bcrypt_hash(hash)?, input: BcryptInput::Sha256Hex }
            }
            "bcrypt_peppered" => crypt::bcrypt_peppered(d)?,
            "md5" => Scheme::Plain { kind: Plain::Md5, expected: hex_of(d, 16)? },
            "sha256" => Scheme::Plain { kind: Plain::Sha256, expected: hex_of(d, 32)? },
            "md5_salted" => salted::salted(d, Plain::Md5)?,
            "sha256_salted" => salted::salted(d, Plain::Sha256)?,
            "hmac_sha256_utf16_b64" => salted::hmac_utf16(d)?,
            "pbkdf2_sha1" => pbkdf2_hex(d, "pbkdf2_sha1", Prf::Sha1, true)?,
            "pbkdf2_sha512" => pbkdf2_hex(d, "pbkdf2_sha512", Prf::Sha512, false)?,
            "pbkdf2_sha512_hex" => {
                let (iterations, salt, hash) = fields(d, "pbkdf2_sha512_hex")?;
                pbkdf2(Prf::Sha512, iterations, hex_any(salt)?, hex_any(hash)?)?
            }
            "pbkdf2_sha256" => {
                let (iterations, salt, hash) = fields(d, "pbkdf2_sha256")?;
                pbkdf2(Prf::Sha256, iterations, b64(salt)?, b64(hash)?)?
            }
            "pbkdf2_sha256_django" => {
                let (iterations, salt, hash) = fields(d, "pbkdf2_sha256")?;
                pbkdf2(Prf::Sha256, iterations, salt.as_bytes().to_vec(), b64(hash)?)?
            }
            "phpass" | "md5_phpass" => crypt::phpass(d)?,
            "scrypt_werkzeug" => scrypt_forms::werkzeug(d)?,
            "scrypt_firebase" => scrypt_forms::firebase(d)?,
            "ldap_ssha" => {
                let raw = b64(d.strip_prefix("{SSHA}").unwrap_or(d))?;
                if raw.len() < 24 || raw.len() > 20 + 16 {
                    return Err("expected {SSHA}base64(sha1 digest and a 4 to 16 byte salt)".into());
                }
                let (hash, salt) = raw.split_at(20);
                Scheme::Ssha { expected: hash.to_vec(), salt: salt.to_vec() }
            }
            "sha512_symfony" => {
                let (iterations, salt, hash) = fields(d, "sha512_symfony")?;
                if salt.len() > MAX_SYMFONY_SALT_BYTES {
                    return Err(format!(
                        "the salt must be at most {MAX_SYMFONY_SALT_BYTES} bytes (Symfony hashes it at every iteration)"
                    ));
                }
                if iterations > MAX_SYMFONY_ITERATIONS {
                    return Err(format!("Symfony iterations must be from 1 to {MAX_SYMFONY_ITERATIONS}"));
                }
                let expected = b64(hash)?;
                if expected.len() != 64 {
                    return Err("the hash must be a base64 SHA-512 digest".into());
                }
                Scheme::Symfony { iterations, salt: salt.to_owned(), expected }
            }
            "awscognito" => return Err(COGNITO_REFUSED.into()),
            other => return Err(format!("unknown hasher {other:?}")),
        })
    }
}

/// What a digest is, decoded. `Salted` holds each (salt, expected) reading of the digest,
/// each tried with the salt before and after the password; `HmacUtf16` each candidate key of
/// an HMAC-SHA256 over the UTF-16LE password.
enum Scheme {
    Bcrypt { hash: String, input: BcryptInput },
    Plain { kind: Plain, expected: Vec<u8> },
    Salted { kind: Plain, candidates: Vec<(Vec<u8>, Vec<u8>)> },
    HmacUtf16 { keys: Vec<Vec<u8>>, expected: Vec<u8> },
    Pbkdf2 { prf: Prf, iterations: u32, salt: Vec<u8>, expected: Vec<u8> },
    Phpass { rounds: u32, salt: Vec<u8>, expected: String },
    Scrypt { log_n: u8, r: u32, p: u32, salt: Vec<u8>, expected: Vec<u8> },
    Firebase { log_n: u8, r: u32, salt: Vec<u8>, signer_key: Vec<u8>, expected: Vec<u8> },
    Ssha { expected: Vec<u8>, salt: Vec<u8> },
    Symfony { iterations: u32, salt: String, expected: Vec<u8> },
}

/// What bcrypt is given.
enum BcryptInput {
    Password,
    /// Django's: the 64 lowercase hex characters of SHA-256(password).
    Sha256Hex,
    /// Devise's: the password with the application's pepper appended.
    Peppered(String),
}

#[derive(Clone, Copy)]
enum Plain {
    Md5,
    Sha256,
}

impl Plain {
    fn len(self) -> usize {
        match self {
            Plain::Md5 => 16,
            Plain::Sha256 => 32,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Plain::Md5 => parts.iter().fold(Md5::new(), |h, p| h.chain_update(p)).finalize().to_vec(),
            Plain::Sha256 => parts.iter().fold(Sha256::new(), |h, p| h.chain_update(p)).finalize().to_vec(),
        }
    }
}

#[derive(Clone, Copy)]
enum Prf {
    Sha1,
    Sha256,
    Sha512,
}

impl Prf {
    /// One PBKDF2 block: the PRF's output.
    fn block_bytes(self) -> usize {
        match self {
            Prf::Sha1 => 20,
            Prf::Sha256 => 32,
            Prf::Sha512 => 64,
        }
    }
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

impl Scheme {
    fn verify(&self, password: &str) -> bool {
        let pw = password.as_bytes();
        match self {
            Scheme::Bcrypt { hash, input } => {
                let input = match input {
                    BcryptInput::Password => pw.to_vec(),
                    BcryptInput::Sha256Hex => hex::encode(Sha256::digest(pw)).into_bytes(),
                    BcryptInput::Peppered(pepper) => [pw, pepper.as_bytes()].concat(),
                };
                // The bcrypt crate, like bcrypt-ruby and OpenBSD, reads at most 72 bytes.
                bcrypt::verify(input, hash).unwrap_or(false)
            }
            Scheme::Plain { kind, expected } => same(&kind.digest(&[pw]), expected),
            Scheme::Salted { kind, candidates } => salted::verify_salted(*kind, candidates, pw),
            Scheme::HmacUtf16 { keys, expected } => salted::verify_hmac_utf16(keys, expected, password),
            Scheme::Pbkdf2 { prf, iterations, salt, expected } => {
                let mut out = vec![0u8; expected.len()];
                match prf {
                    Prf::Sha1 => pbkdf2::pbkdf2::<Hmac<Sha1>>(pw, salt, *iterations, &mut out),
                    Prf::Sha256 => pbkdf2::pbkdf2::<Hmac<Sha256>>(pw, salt, *iterations, &mut out),
                    Prf::Sha512 => pbkdf2::pbkdf2::<Hmac<Sha512>>(pw, salt, *iterations, &mut out),
                }
                .is_ok()
                    && same(&out, expected)
            }
            Scheme::Phpass { rounds, salt, expected } => {
                if pw.len() > MAX_ITERATED_PASSWORD_BYTES {
                    return false;
                }
                let mut h = Md5::new().chain_update(salt).chain_update(pw).finalize();
                for _ in 0..*rounds {
                    h = Md5::new().chain_update(h).chain_update(pw).finalize();
                }
                same(crypt::phpass_encode(&h).as_bytes(), expected.as_bytes())
            }
            Scheme::Scrypt { log_n, r, p, salt, expected } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, expected.len()) else { return false };
                let mut out = vec![0u8; expected.len()];
                scrypt::scrypt(pw, salt, &params, &mut out).is_ok() && same(&out, expected)
            }
            Scheme::Firebase { log_n, r, salt, signer_key, expected } => {
                use ctr::cipher::{KeyIvInit, StreamCipher};
                let Ok(params) = scrypt::Params::new(*log_n, *r, 1, 64) else { return false };
                let mut derived = [0u8; 64];
                if scrypt::scrypt(pw, salt, &params, &mut derived).is_err() {
                    return false;
                }
                // The signer key, encrypted with AES-256-CTR under the derived key's first half.
                let mut block = signer_key.clone();
                let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new((&derived[..32]).into(), &[0u8; 16].into());
                cipher.apply_keystream(&mut block);
                same(&block, expected)
            }
            Scheme::Ssha { expected, salt } => {
                same(&Sha1::new().chain_update(pw).chain_update(salt).finalize(), expected)
            }
            Scheme::Symfony { iterations, salt, expected } => {
                if pw.len() > MAX_ITERATED_PASSWORD_BYTES {
                    return false;
                }
                let mut merged = pw.to_vec();
                if !salt.is_empty() {
                    merged.extend_from_slice(format!("{{{salt}}}").as_bytes());
                }
                let mut d = Sha512::digest(&merged);
                for _ in 1..*iterations {
                    d = Sha512::new().chain_update(d).chain_update(&merged).finalize();
                }
                same(&d, expected)
            }
        }
    }
}

fn hex_of(d: &str, bytes: usize) -> Result<Vec<u8>, String> {
    hex::decode(d).ok().filter(|v| v.len() == bytes).ok_or_else(|| format!("expected {} hex characters", bytes * 2))
}

fn hex_any(d: &str) -> Result<Vec<u8>, String> {
    hex::decode(d).ok().filter(|v| !v.is_empty() && v.len() <= MAX_SALT_BYTES).ok_or_else(|| "expected hex".into())
}

/// Standard base64, padded or not.
fn b64(d: &str) -> Result<Vec<u8>, String> {
    STANDARD_NO_PAD
        .decode(d.trim_end_matches('='))
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= MAX_SALT_BYTES)
        .ok_or_else(|| "expected base64".into())
}

/// `<name>$<iterations>$<salt>$<hash>` with sane iterations.
fn fields<'a>(d: &'a str, name: &str) -> Result<(u32, &'a str, &'a str), String> {
    let mut parts = d.split('$');
    let shape = || format!("expected {name}$<iterations>$<salt>$<hash>");
    if parts.next() != Some(name) {
        return Err(shape());
    }
    let iterations = parts.next().and_then(|i| i.parse::<u32>().ok()).ok_or_else(shape)?;
    let (salt, hash) = (parts.next().ok_or_else(shape)?, parts.next().ok_or_else(shape)?);
    if parts.next().is_some() || salt.is_empty() || salt.len() > MAX_SALT_BYTES * 2 {
        return Err(shape());
    }
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
        return Err(format!("iterations must be from 1 to {MAX_PBKDF2_ITERATIONS}"));
    }
    Ok((iterations, salt, hash))
}

/// Clerk's hex forms: `<name>$<iterations>$<salt>$<hex hash>[$<key length>]`; a salt that is
/// not hex is taken as its bytes (`salt_may_be_hex`), as Clerk documents for pbkdf2_sha1.
fn pbkdf2_hex(d: &str, name: &str, prf: Prf, salt_may_be_hex: bool) -> Result<Scheme, String> {
    let (main, key_len) = match d.matches('$').count() {
        4 => d.rsplit_once('$').map(|(m, k)| (m, k.parse::<usize>().ok())).ok_or("bad digest")?,
        _ => (d, None),
    };
    let (iterations, salt, hash) = fields(main, name)?;
    let expected = hex_any(hash)?;
    if key_len.is_some_and(|k| k != expected.len()) {
        return Err("the key length does not match the hash".into());
    }
    let salt = if salt_may_be_hex {
        hex::decode(salt).unwrap_or_else(|_| salt.as_bytes().to_vec())
    } else {
        salt.as_bytes().to_vec()
    };
    pbkdf2(prf, iterations, salt, expected)
}

/// Refused unless the hash is a whole derived key (a short one lets wrong passwords through)
/// and its blocks, each costing the iterations again, stay within the iteration bound.
fn pbkdf2(prf: Prf, iterations: u32, salt: Vec<u8>, expected: Vec<u8>) -> Result<Scheme, String> {
    derived_key_len(expected.len())?;
    let blocks = expected.len().div_ceil(prf.block_bytes());
    let work = u64::from(iterations) * u64::try_from(blocks).unwrap_or(u64::MAX);
    if work > u64::from(MAX_PBKDF2_ITERATIONS) {
        return Err(format!(
            "too much work for each sign-in: a {}-byte hash is {blocks} PBKDF2 blocks, each of the {iterations} \
             iterations, and iterations × blocks must be at most {MAX_PBKDF2_ITERATIONS}",
            expected.len()
        ));
    }
    Ok(Scheme::Pbkdf2 { prf, iterations, salt, expected })
}

/// A PBKDF2 or scrypt hash's length: from [`MIN_DERIVED_KEY_BYTES`] to [`MAX_DERIVED_KEY_BYTES`].
fn derived_key_len(len: usize) -> Result<(), String> {
    if len < MIN_DERIVED_KEY_BYTES {
        return Err(format!(
            "the hash must be at least {MIN_DERIVED_KEY_BYTES} bytes, not {len}: a hash cut short would let \
             wrong passwords through"
        ));
    }
    if len > MAX_DERIVED_KEY_BYTES {
        return Err(format!(
            "the hash must be at most {MAX_DERIVED_KEY_BYTES} bytes, not {len}: each further byte adds work \
             to every sign-in"
        ));
    }
    Ok(())
}
