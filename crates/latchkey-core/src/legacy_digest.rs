//! Password digests imported from another system (Clerk's `password_hasher` values,
//! docs/moving-from-clerk.md): checked once at import, verified at sign-in, and replaced by
//! argon2id after the first successful one. Stored as `legacy:<hasher>:<digest>` so they can
//! never be mistaken for latchkey's own PHC strings.
//!
//! Formats follow Clerk's documentation and the library each comes from; the research behind
//! them is docs/plans/clerk-password-digests.md.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::Hmac;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

const STORED_PREFIX: &str = "legacy:";
/// PBKDF2 iterations beyond this are refused at import (Clerk's own bound).
const MAX_PBKDF2_ITERATIONS: u32 = 420_000;
const MAX_SALT_BYTES: usize = 1024;
// Every sign-in of an imported user runs the digest's own work once: costs past these would
// let one import make each of its sign-ins take seconds or gigabytes.
const MAX_BCRYPT_COST: u32 = 16;
const MAX_PHPASS_LOG2: usize = 20;
/// scrypt's memory is 128 · n · r bytes: at most 256 MiB.
const MAX_SCRYPT_N_TIMES_R: u64 = 1 << 21;

/// The hashers latchkey verifies, by Clerk's names.
pub const HASHERS: &[&str] = &[
    "bcrypt",
    "bcrypt_sha256_django",
    "md5",
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
    "ldap_ssha",
    "sha512_symfony",
];

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
        self.scheme().is_ok_and(|s| s.verify(password.as_bytes()))
    }

    fn scheme(&self) -> Result<Scheme, String> {
        let d = self.digest.as_str();
        Ok(match self.hasher {
            "bcrypt" => Scheme::Bcrypt { hash: bcrypt_hash(d)?, prehash: false },
            "bcrypt_sha256_django" => {
                let hash = d.strip_prefix("bcrypt_sha256$").ok_or("expected bcrypt_sha256$<bcrypt hash>")?;
                Scheme::Bcrypt { hash: bcrypt_hash(hash)?, prehash: true }
            }
            "md5" => Scheme::Plain { kind: Plain::Md5, expected: hex_of(d, 16)? },
            "sha256" => Scheme::Plain { kind: Plain::Sha256, expected: hex_of(d, 32)? },
            "pbkdf2_sha1" => pbkdf2_hex(d, "pbkdf2_sha1", Prf::Sha1, true)?,
            "pbkdf2_sha512" => pbkdf2_hex(d, "pbkdf2_sha512", Prf::Sha512, false)?,
            "pbkdf2_sha512_hex" => {
                let (iterations, salt, hash) = fields(d, "pbkdf2_sha512_hex")?;
                Scheme::Pbkdf2 { prf: Prf::Sha512, iterations, salt: hex_any(salt)?, expected: hex_any(hash)? }
            }
            "pbkdf2_sha256" => {
                let (iterations, salt, hash) = fields(d, "pbkdf2_sha256")?;
                Scheme::Pbkdf2 { prf: Prf::Sha256, iterations, salt: b64(salt)?, expected: b64(hash)? }
            }
            "pbkdf2_sha256_django" => {
                let (iterations, salt, hash) = fields(d, "pbkdf2_sha256")?;
                Scheme::Pbkdf2 { prf: Prf::Sha256, iterations, salt: salt.as_bytes().to_vec(), expected: b64(hash)? }
            }
            "phpass" | "md5_phpass" => phpass(d)?,
            "scrypt_werkzeug" => scrypt_werkzeug(d)?,
            "scrypt_firebase" => scrypt_firebase(d)?,
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
                let expected = b64(hash)?;
                if expected.len() != 64 {
                    return Err("the hash must be a base64 SHA-512 digest".into());
                }
                Scheme::Symfony { iterations, salt: salt.to_owned(), expected }
            }
            other => return Err(format!("unknown hasher {other:?}")),
        })
    }
}

/// What a digest is, decoded.
enum Scheme {
    Bcrypt { hash: String, prehash: bool },
    Plain { kind: Plain, expected: Vec<u8> },
    Pbkdf2 { prf: Prf, iterations: u32, salt: Vec<u8>, expected: Vec<u8> },
    Phpass { rounds: u32, salt: Vec<u8>, expected: String },
    Scrypt { log_n: u8, r: u32, p: u32, salt: Vec<u8>, expected: Vec<u8> },
    Firebase { log_n: u8, r: u32, salt: Vec<u8>, signer_key: Vec<u8>, expected: Vec<u8> },
    Ssha { expected: Vec<u8>, salt: Vec<u8> },
    Symfony { iterations: u32, salt: String, expected: Vec<u8> },
}

enum Plain {
    Md5,
    Sha256,
}

#[derive(Clone, Copy)]
enum Prf {
    Sha1,
    Sha256,
    Sha512,
}

impl Scheme {
    fn verify(&self, pw: &[u8]) -> bool {
        let same = |a: &[u8], b: &[u8]| a.len() == b.len() && bool::from(a.ct_eq(b));
        match self {
            Scheme::Bcrypt { hash, prehash } => {
                let input = if *prehash { hex::encode(Sha256::digest(pw)).into_bytes() } else { pw.to_vec() };
                bcrypt::verify(input, hash).unwrap_or(false)
            }
            Scheme::Plain { kind: Plain::Md5, expected } => same(&Md5::digest(pw), expected),
            Scheme::Plain { kind: Plain::Sha256, expected } => same(&Sha256::digest(pw), expected),
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
                let mut h = Md5::new().chain_update(salt).chain_update(pw).finalize();
                for _ in 0..*rounds {
                    h = Md5::new().chain_update(h).chain_update(pw).finalize();
                }
                same(phpass_encode(&h).as_bytes(), expected.as_bytes())
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

fn bcrypt_hash(d: &str) -> Result<String, String> {
    let ok = d.len() == 60
        && ["$2a$", "$2b$", "$2y$", "$2x$"].iter().any(|p| d.starts_with(p))
        && d.as_bytes()[6] == b'$'
        && d[4..6].parse::<u32>().is_ok_and(|c| (4..=MAX_BCRYPT_COST).contains(&c));
    if ok {
        Ok(d.to_owned())
    } else {
        Err(format!(
            "expected a bcrypt hash: $2a$, $2b$ or $2y$, a cost from 4 to {MAX_BCRYPT_COST}, then 53 characters"
        ))
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
    Ok(Scheme::Pbkdf2 { prf, iterations, salt, expected })
}

const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `$P$` or `$H$`, a rounds character (log2 count, 7 to 30), 8 salt characters, 22 of checksum.
fn phpass(d: &str) -> Result<Scheme, String> {
    let shape =
        || "expected $P$ or $H$, a rounds character, an 8-character salt and a 22-character checksum".to_owned();
    if d.len() != 34 || !(d.starts_with("$P$") || d.starts_with("$H$")) {
        return Err(shape());
    }
    let log2 = ITOA64.iter().position(|c| *c == d.as_bytes()[3]).ok_or_else(shape)?;
    if !(7..=MAX_PHPASS_LOG2).contains(&log2) {
        return Err(shape());
    }
    Ok(Scheme::Phpass { rounds: 1 << log2, salt: d.as_bytes()[4..12].to_vec(), expected: d[12..].to_owned() })
}

/// phpass's own little-endian 6-bit encoding.
fn phpass_encode(input: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < input.len() {
        let mut value = u32::from(input[i]);
        i += 1;
        out.push(ITOA64[(value & 0x3f) as usize] as char);
        if i < input.len() {
            value |= u32::from(input[i]) << 8;
        }
        out.push(ITOA64[((value >> 6) & 0x3f) as usize] as char);
        if i >= input.len() {
            break;
        }
        i += 1;
        if i < input.len() {
            value |= u32::from(input[i]) << 16;
        }
        out.push(ITOA64[((value >> 12) & 0x3f) as usize] as char);
        if i >= input.len() {
            break;
        }
        i += 1;
        out.push(ITOA64[((value >> 18) & 0x3f) as usize] as char);
    }
    out
}

/// Werkzeug's `scrypt:<n>:<r>:<p>$<salt>$<hex hash>` (the salt is used as text).
fn scrypt_werkzeug(d: &str) -> Result<Scheme, String> {
    let shape = || "expected scrypt:<n>:<r>:<p>$<salt>$<hex hash>".to_owned();
    let mut parts = d.trim_start_matches('$').split('$');
    let args = parts.next().ok_or_else(shape)?;
    let (salt, hash) = (parts.next().ok_or_else(shape)?, parts.next().ok_or_else(shape)?);
    let mut a = args.split(':');
    if a.next() != Some("scrypt") {
        return Err(shape());
    }
    let n: u64 = a.next().and_then(|x| x.parse().ok()).ok_or_else(shape)?;
    let r: u32 = a.next().and_then(|x| x.parse().ok()).ok_or_else(shape)?;
    let p: u32 = a.next().and_then(|x| x.parse().ok()).ok_or_else(shape)?;
    if !n.is_power_of_two()
        || !(2..=1 << 20).contains(&n)
        || !(1..=32).contains(&r)
        || !(1..=16).contains(&p)
        || n * u64::from(r) > MAX_SCRYPT_N_TIMES_R
    {
        return Err("scrypt parameters out of range (n a power of two, r up to 32, p up to 16, n·r up to 2^21)".into());
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| shape())?;
    Ok(Scheme::Scrypt { log_n, r, p, salt: salt.as_bytes().to_vec(), expected: hex_any(hash)? })
}

/// (hasher, password, digest), from each ecosystem's own library or documentation
/// (docs/plans/clerk-password-digests.md names the source of each).
pub const VECTORS: &[(&str, &str, &str)] = &[
    ("bcrypt", "Kk4aPMeiaRpAs2OeX1NE", "$2b$10$U4C0ZY8OG8y41F9LusfKyu3HRMBL0rCZcKBVsXhgr.n8Ou6FPhzO2"),
    ("bcrypt", "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("bcrypt_sha256_django", "lètmein", "bcrypt_sha256$$2a$08$NDjSAIcas.EcoxCRiArvT.MkNiPYVhrsrnJsRkLueZOoV1bsQqlmC"),
    ("md5", "password", "5f4dcc3b5aa765d61d8327deb882cf99"),
    ("sha256", "test", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("pbkdf2_sha1", "lètmein", "pbkdf2_sha1$30000$73656173616c7432$a4ccd4d7334f73275feb08e72456e254ac2050b7$20"),
    ("pbkdf2_sha256", "lètmein", "pbkdf2_sha256$30000$c2Vhc2FsdA==$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY="),
    ("pbkdf2_sha256_django", "lètmein", "pbkdf2_sha256$30000$seasalt$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY="),
    ("phpass", "test12345", "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"),
    ("md5_phpass", "test1", "$H$9aaaaaSXBjgypwqm.JsMssPLiS8YQ00"),
    ("ldap_ssha", "secret", "{SSHA}0H+zTv8o4MR4H43n03eCsvw1luG8LdB7"),
    (
        "scrypt_werkzeug",
        "secret",
        "scrypt:32768:8:1$Nm8ZCvyUFqdUXhxq$1703b6c28f8817dbc2cccc9d97d8af2fe2265ed978324dbaaee5b3a3b78f06d52733b3439817e85504390b41e9c45ff08d88ee3d33c44879364728682a334f6c",
    ),
    (
        "scrypt_firebase",
        "user1password",
        "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$42xEC+ixf3L2lw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==$Bw==$8$14",
    ),
    (
        "sha512_symfony",
        "password",
        "sha512_symfony$5000$somesalt$H9VRzTCHUNwtJYgcPquobw1lhQeHUhZTCt/6e27sXzpFwmBjzcdBqpTgPCeIRacHLJPEyIBn+UpS6gQ6+USIdg==",
    ),
];

/// Firebase's modified scrypt, as Clerk takes it from Firebase's export:
/// `<hash>$<salt>$<signer key>$<salt separator>$<rounds>$<memory cost>`, base64 fields.
fn scrypt_firebase(d: &str) -> Result<Scheme, String> {
    let shape = || "expected <hash>$<salt>$<signer key>$<salt separator>$<rounds>$<memory cost>".to_owned();
    let parts: Vec<&str> = d.split('$').collect();
    let [hash, salt, signer_key, separator, rounds, mem_cost] = parts.as_slice() else { return Err(shape()) };
    let r: u32 = rounds.parse().map_err(|_| shape())?;
    let log_n: u8 = mem_cost.parse().map_err(|_| shape())?;
    if !(1..=32).contains(&r) || !(1..=20).contains(&log_n) || (1_u64 << log_n) * u64::from(r) > MAX_SCRYPT_N_TIMES_R {
        return Err(
            "scrypt parameters out of range (rounds up to 32, memory cost up to 20, 2^cost·rounds up to 2^21)".into()
        );
    }
    let mut salt = b64(salt)?;
    salt.extend(b64(separator)?);
    let (signer_key, expected) = (b64(signer_key)?, b64(hash)?);
    if signer_key.len() != expected.len() {
        return Err("the hash must be as long as the signer key".into());
    }
    Ok(Scheme::Firebase { log_n, r, salt, signer_key, expected })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn each_hasher_verifies_its_vector_and_refuses_a_wrong_password() {
        for (hasher, password, digest) in VECTORS {
            let d = LegacyDigest::parse(hasher, digest).unwrap_or_else(|e| panic!("{hasher}: {e}"));
            assert!(d.verify(password), "{hasher}");
            assert!(!d.verify("not the password"), "{hasher}");
            assert_eq!(LegacyDigest::from_stored(&d.stored()), Some(d.clone()), "{hasher}");
        }
    }

    #[test]
    fn malformed_digests_are_refused_with_a_reason() {
        for (hasher, digest) in [
            ("bcrypt", "$2b$10$short"),
            ("bcrypt", "$2b$25$U4C0ZY8OG8y41F9LusfKyu3HRMBL0rCZcKBVsXhgr.n8Ou6FPhzO2"),
            ("phpass", "$P$TIQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"),
            ("scrypt_werkzeug", "scrypt:1048576:32:1$salt$abcd"),
            ("scrypt_firebase", "aGFzaA==$c2FsdA==$a2V5$Bw==$8$30"),
            ("md5", "5f4dcc3b"),
            ("sha256", "zz"),
            ("pbkdf2_sha256_django", "pbkdf2_sha256$0$salt$aGFzaA=="),
            ("pbkdf2_sha256_django", "pbkdf2_sha256$9999999$salt$aGFzaA=="),
            ("phpass", "$P$Xshort"),
            ("scrypt_werkzeug", "scrypt:1000:8:1$salt$abcd"),
            ("sha512_symfony", "sha512_symfony$5000$salt$c2hvcnQ="),
            ("nope", "x"),
        ] {
            assert!(LegacyDigest::parse(hasher, digest).is_err(), "{hasher} {digest}");
        }
        assert_eq!(LegacyDigest::from_stored("$argon2id$v=19$m=19456,t=2,p=1$abc$def"), None);
    }
}
