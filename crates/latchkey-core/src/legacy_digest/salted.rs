//! The salted single digests Clerk calls `md5_salted` and `sha256_salted`, and
//! `hmac_sha256_utf16_b64`. Clerk documents their shapes but not every rule inside them (no
//! public Clerk source says more: docs/plans/clerk-password-digests.md), so each reading that
//! a real system uses is tried, every one computed and compared in constant time whatever the
//! others gave. The few extra candidates cost nothing measurable in the chance of a wrong
//! password passing (2^-128 or less each), and each is what some real export holds.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{b64, hex_of, same, Plain, Scheme, MAX_SALT_BYTES};

/// `salt$hash` (Clerk's documentation), or `hash$salt` (the form Clerk's older API reference
/// gave for `sha256_salted`): the hash is hex, the salt is used as its text's bytes.
///
/// The order of salt and password inside the digest is not documented, and both are common:
/// `md5(salt + password)` is Django's salted MD5PasswordHasher (`md5$<salt>$<hash>`, whose tail
/// is exactly this form), `md5(password + salt)` is Joomla 1.5's and many PHP apps'. Both are
/// tried.
///
/// Trying both orders has one known cost, accepted: a password that ends with the salt also
/// verifies with that tail moved to the front (salt "a" and password "ba" hash, salt first, as
/// "aba", which is also password "ab" then salt "a"). Such a wrong password is the right one
/// rotated by the salt's length: it takes knowing the right one (and the salt) to find, and
/// the digest is gone after the first sign-in.
pub(super) fn salted(d: &str, kind: Plain) -> Result<Scheme, String> {
    let bytes = kind.len();
    let fits = |salt: &str| !salt.is_empty() && salt.len() <= MAX_SALT_BYTES;
    let mut candidates: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // The salt may itself hold `$`: the hash is whatever follows the last one.
    if let Some((salt, hash)) = d.rsplit_once('$') {
        if let (true, Ok(expected)) = (fits(salt), hex_of(hash, bytes)) {
            candidates.push((salt.as_bytes().to_vec(), expected));
        }
    }
    if let Some((hash, salt)) = d.split_once('$') {
        if let (true, Ok(expected)) = (fits(salt), hex_of(hash, bytes)) {
            candidates.push((salt.as_bytes().to_vec(), expected));
        }
    }
    if candidates.is_empty() {
        return Err(format!(
            "expected <salt>$<hash>: a salt of 1 to {MAX_SALT_BYTES} bytes, `$`, and the {} hex characters of the hash",
            bytes * 2
        ));
    }
    Ok(Scheme::Salted { kind, candidates })
}

pub(super) fn verify_salted(kind: Plain, candidates: &[(Vec<u8>, Vec<u8>)], pw: &[u8]) -> bool {
    candidates.iter().fold(false, |ok, (salt, expected)| {
        let salt_first = same(&kind.digest(&[salt, pw]), expected);
        let password_first = same(&kind.digest(&[pw, salt]), expected);
        ok | salt_first | password_first
    })
}

const HMAC_PREFIX: &str = "hmac_sha256_utf16_b64$";
/// The key an ASP.NET Membership provider gives its HMACSHA256: 64 bytes.
const ASPNET_KEY_BYTES: usize = 64;

/// `hmac_sha256_utf16_b64$<hash>$<key>`: the base64 HMAC-SHA256 of the password as UTF-16LE
/// (.NET's `Encoding.Unicode`), under the key. Clerk's one line on it does not say what the
/// key's bytes are, so two readings are tried: the key text's own UTF-8 bytes (the literal
/// reading, and what the name's lack of any key encoding suggests), and, when the key is
/// padded base64, the key ASP.NET's SqlMembershipProvider (`hashAlgorithmType="HMACSHA256"`)
/// derives from its base64 `PasswordSalt` column: the decoded salt repeated (or cut) to 64
/// bytes, the .NET system this hasher's name describes.
pub(super) fn hmac_utf16(d: &str) -> Result<Scheme, String> {
    let shape = || "expected hmac_sha256_utf16_b64$<base64 hash>$<key>".to_owned();
    let rest = d.strip_prefix(HMAC_PREFIX).ok_or_else(shape)?;
    let (hash, key) = rest.split_once('$').ok_or_else(shape)?;
    let expected = b64(hash).map_err(|_| shape())?;
    if expected.len() != 32 {
        return Err("the hash must be a base64 HMAC-SHA256 (32 bytes)".into());
    }
    if key.is_empty() || key.len() > MAX_SALT_BYTES {
        return Err(format!("the key must be 1 to {MAX_SALT_BYTES} bytes"));
    }
    let mut keys = vec![key.as_bytes().to_vec()];
    if let Ok(salt) = STANDARD.decode(key) {
        if !salt.is_empty() {
            keys.push(salt.iter().copied().cycle().take(ASPNET_KEY_BYTES).collect());
        }
    }
    Ok(Scheme::HmacUtf16 { keys, expected })
}

pub(super) fn verify_hmac_utf16(keys: &[Vec<u8>], expected: &[u8], password: &str) -> bool {
    let message: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    keys.iter().fold(false, |ok, key| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return ok };
        mac.update(&message);
        ok | same(&mac.finalize().into_bytes(), expected)
    })
}
