//! Opaque bearer secrets (client cookies, client tokens, handshake nonces): 256 random bits,
//! base64url for the wire, stored only as a SHA-256 digest so a database leak reveals nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::rng::Random;

/// A secret read from configuration (a password, a token): `Debug` never shows it, so a
/// configuration printed for debugging or logged by accident leaks nothing.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ConfigSecret(String);

impl ConfigSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ConfigSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigSecret(***)")
    }
}

/// A fresh 256-bit opaque secret, base64url without padding (43 characters).
pub fn new_opaque_secret(rng: &dyn Random) -> String {
    let mut raw = [0u8; 32];
    rng.fill(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The digest under which an opaque secret is stored and looked up (hex SHA-256).
pub fn secret_digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two byte strings.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod config_secret_tests {
    #[test]
    fn debug_never_shows_the_secret() {
        let s = super::ConfigSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "ConfigSecret(***)");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "\"hunter2\"");
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::OsRandom;

    #[test]
    fn secrets_are_256_bits_and_distinct() {
        let a = new_opaque_secret(&OsRandom);
        let b = new_opaque_secret(&OsRandom);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(secret_digest(&a).len(), 64);
        assert_ne!(secret_digest(&a), secret_digest(&b));
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
