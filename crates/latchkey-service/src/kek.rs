//! Sealing of private signing keys with the key-encryption key (AES-256-GCM).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use latchkey_core::Random;

#[derive(Clone)]
pub struct Kek {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a sealed key could not be opened: wrong LATCHKEY_KEK or damaged data")]
    Open,
}

impl Kek {
    pub fn from_bytes(key: &[u8]) -> Result<Self, KekError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| KekError::BadKey)?;
        Ok(Self { cipher })
    }

    pub fn from_base64(text: &str) -> Result<Self, KekError> {
        let raw = zeroize::Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| KekError::BadKey)?);
        if raw.len() != 32 {
            return Err(KekError::BadKey);
        }
        Self::from_bytes(&raw)
    }

    /// `aad` binds the ciphertext to its owner (the key id), so sealed blobs cannot be swapped.
    pub fn seal(&self, plaintext: &[u8], aad: &str, rng: &dyn Random) -> Result<String, KekError> {
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), aes_gcm::aead::Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| KekError::Open)?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, KekError> {
        let raw = STANDARD.decode(sealed).map_err(|_| KekError::Open)?;
        if raw.len() < 12 {
            return Err(KekError::Open);
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), aes_gcm::aead::Payload { msg: ct, aad: aad.as_bytes() })
            .map(zeroize::Zeroizing::new)
            .map_err(|_| KekError::Open)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use latchkey_core::OsRandom;

    #[test]
    fn seal_open_and_binding() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let sealed = kek.seal(b"secret", "kid-1", &OsRandom).unwrap();
        assert_eq!(&*kek.open(&sealed, "kid-1").unwrap(), b"secret");
        assert!(kek.open(&sealed, "kid-2").is_err(), "bound to its key id");
        assert!(Kek::from_bytes(&[8u8; 32]).unwrap().open(&sealed, "kid-1").is_err());
        assert!(Kek::from_base64("c2hvcnQ=").is_err());
    }
}
