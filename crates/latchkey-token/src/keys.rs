//! RSA-2048 keys bound to RS256, identified by their RFC 7638 thumbprint.

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::b64;
use crate::jwk::Jwk;

pub const KEY_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("key generation failed")]
    Generate,
    #[error("key encoding is invalid")]
    Encoding,
    #[error("claims could not be serialised")]
    Claims,
}

/// A private key that signs RS256 tokens. Signing uses `ring` (several times faster than the
/// pure-Rust implementation, which still generates keys and verifies).
#[derive(Clone)]
pub struct SigningKey {
    public: PublicKey,
    signer: std::sync::Arc<ring::signature::RsaKeyPair>,
    private: RsaPrivateKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.public.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new RSA-2048 key with e = 65537 (what every Clerk SDK accepts).
    pub fn generate<R: rand_core::CryptoRngCore>(rng: &mut R) -> Result<Self, TokenError> {
        let private = RsaPrivateKey::new(rng, KEY_BITS).map_err(|_| TokenError::Generate)?;
        Self::from_private(private)
    }

    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, TokenError> {
        let private = RsaPrivateKey::from_pkcs8_der(der).map_err(|_| TokenError::Encoding)?;
        Self::from_private(private)
    }

    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, TokenError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| TokenError::Encoding)?;
        Self::from_private(private)
    }

    /// Wraps an existing RSA private key (its kid is the RFC 7638 thumbprint).
    pub fn from_private(private: RsaPrivateKey) -> Result<Self, TokenError> {
        let public = PublicKey::from_rsa(private.to_public_key());
        let der = private.to_pkcs8_der().map_err(|_| TokenError::Encoding)?;
        let signer = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|_| TokenError::Encoding)?;
        Ok(Self { public, signer: std::sync::Arc::new(signer), private })
    }

    /// The private key as PKCS#8 DER (callers encrypt it before storing).
    pub fn to_pkcs8_der(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, TokenError> {
        let doc = self.private.to_pkcs8_der().map_err(|_| TokenError::Encoding)?;
        Ok(zeroize::Zeroizing::new(doc.as_bytes().to_vec()))
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// Signs `claims` as a compact JWS with header `{alg:RS256, kid, typ:JWT}` plus `cat`
    /// when given (Clerk's token category).
    pub fn sign<C: Serialize>(&self, claims: &C, cat: Option<&str>) -> Result<String, TokenError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            kid: &'a str,
            typ: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            cat: Option<&'a str>,
        }
        let header = serde_json::to_vec(&Header { alg: "RS256", kid: &self.public.kid, typ: "JWT", cat })
            .map_err(|_| TokenError::Claims)?;
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Claims)?;
        let signing_input = format!("{}.{}", b64::encode(&header), b64::encode(&payload));
        let signature = self.sign_rs256(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64::encode(&signature)))
    }

    /// The raw RS256 (PKCS#1 v1.5, SHA-256) signature of `message`.
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let mut sig = vec![0u8; self.signer.public().modulus_len()];
        self.signer
            .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), message, &mut sig)
            .map_err(|_| TokenError::Claims)?;
        Ok(sig)
    }
}

/// A public key that verifies RS256 signatures, and nothing else.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub kid: String,
    key: RsaPublicKey,
    /// Big-endian modulus and exponent, as `ring` verifies with them.
    n: Vec<u8>,
    e: Vec<u8>,
}

impl PublicKey {
    pub fn from_rsa(key: RsaPublicKey) -> Self {
        let kid = thumbprint(&key);
        Self::with_kid(key, kid)
    }

    pub fn with_kid(key: RsaPublicKey, kid: String) -> Self {
        Self { kid, n: key.n().to_bytes_be(), e: key.e().to_bytes_be(), key }
    }

    /// From the big-endian modulus and exponent, with the given `kid`.
    pub fn from_components(n: &[u8], e: &[u8], kid: String) -> Result<Self, TokenError> {
        let key = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
            .map_err(|_| TokenError::Encoding)?;
        Ok(Self::with_kid(key, kid))
    }

    pub fn from_spki_pem(pem: &str, kid: String) -> Result<Self, TokenError> {
        let key = RsaPublicKey::from_public_key_pem(pem).map_err(|_| TokenError::Encoding)?;
        Ok(Self::with_kid(key, kid))
    }

    pub fn to_spki_pem(&self) -> Result<String, TokenError> {
        self.key.to_public_key_pem(LineEnding::LF).map_err(|_| TokenError::Encoding)
    }

    pub fn modulus_bits(&self) -> usize {
        self.key.n().bits()
    }

    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA".into(),
            kid: self.kid.clone(),
            alg: "RS256".into(),
            r#use: "sig".into(),
            n: b64::encode(&self.key.n().to_bytes_be()),
            e: b64::encode(&self.key.e().to_bytes_be()),
        }
    }

    /// Verifies an RS256 (PKCS#1 v1.5, SHA-256) signature over `message`, with `ring` (as
    /// signing does): keys of 2048 to 8192 bits, the signature exactly the modulus' length.
    pub fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        let key = ring::signature::RsaPublicKeyComponents { n: &self.n, e: &self.e };
        key.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, message, signature).is_ok()
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA key.
pub fn thumbprint(key: &RsaPublicKey) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        b64::encode(&key.e().to_bytes_be()),
        b64::encode(&key.n().to_bytes_be())
    );
    b64::encode(&Sha256::digest(canonical.as_bytes()))
}
