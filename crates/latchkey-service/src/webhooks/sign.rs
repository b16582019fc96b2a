//! Signing as Standard Webhooks and Svix do (docs/security-baseline.md §8): `v1,` + base64 of
//! HMAC-SHA256 over `"{id}.{timestamp}.{body}"`, keyed with the bytes of a `whsec_` secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use latchkey_core::Random;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A new endpoint secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret(rng: &dyn Random) -> String {
    let mut key = [0u8; 32];
    rng.fill(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret (the `whsec_` prefix is optional, as receivers treat it).
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret)).ok().filter(|k| !k.is_empty())
}

/// One `v1,<signature>` of the message.
pub fn sign(key: &[u8], id: &str, timestamp_secs: i64, body: &str) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The signature header: one signature per key, space-separated (both during a rotation).
pub fn signature_header(keys: &[Vec<u8>], id: &str, timestamp_secs: i64, body: &str) -> String {
    keys.iter().map(|k| sign(k, id, timestamp_secs, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The vector of the `standardwebhooks` crate's own tests (docs/security-baseline.md §8).
    #[test]
    fn reproduces_the_standard_webhooks_vector() {
        let key = secret_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = r#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            sign(&key, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        // A different byte anywhere changes it.
        assert_ne!(
            sign(&key, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367554, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn secrets_parse_with_or_without_prefix_and_rotation_signs_twice() {
        let rng = latchkey_core::OsRandom;
        let s = new_secret(&rng);
        assert!(s.starts_with("whsec_"));
        let key = secret_key(&s).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(secret_key(s.trim_start_matches("whsec_")), Some(key.clone()));
        assert_eq!(secret_key("whsec_"), None);
        assert_eq!(secret_key("whsec_***"), None);
        let other = secret_key(&new_secret(&rng)).unwrap();
        let header = signature_header(&[key.clone(), other.clone()], "msg_1", 10, "{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, vec![sign(&key, "msg_1", 10, "{}"), sign(&other, "msg_1", 10, "{}")]);
    }
}
