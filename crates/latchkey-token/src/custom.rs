//! Keys that JWT templates bring for other backends: RSA (RS256/384/512, a PEM private key)
//! or HMAC (HS256/384/512, a shared secret at least as long as the hash, RFC 7518 §3.2).

use std::sync::Arc;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::RsaPrivateKey;
use serde::Serialize;

use crate::b64;
use crate::keys::TokenError;

/// The category Clerk gives tokens minted from JWT templates.
pub const TEMPLATE_TOKEN_CAT: &str = "cl_B7d4PD222AAA";

pub const ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512", "HS256", "HS384", "HS512"];

#[derive(Clone)]
enum Material {
    Rsa(Arc<ring::signature::RsaKeyPair>, &'static dyn ring::signature::RsaEncoding),
    Hmac(ring::hmac::Key),
}

/// A template's own signing key.
#[derive(Clone)]
pub struct CustomKey {
    alg: &'static str,
    material: Material,
}

impl std::fmt::Debug for CustomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CustomKeyError {
    #[error("unsupported signing algorithm; use one of RS256, RS384, RS512, HS256, HS384, HS512")]
    Algorithm,
    #[error("the signing key must be an RSA private key in PEM (PKCS#8 or PKCS#1) of at least 2048 bits")]
    RsaKey,
    #[error("the HMAC secret must be at least {0} bytes long")]
    HmacTooShort(usize),
}

impl CustomKey {
    pub fn parse(alg: &str, key: &str) -> Result<Self, CustomKeyError> {
        use ring::signature::{RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512};
        let (alg, rsa, hmac, min) = match alg {
            "RS256" => ("RS256", Some(&RSA_PKCS1_SHA256), None, 0),
            "RS384" => ("RS384", Some(&RSA_PKCS1_SHA384), None, 0),
            "RS512" => ("RS512", Some(&RSA_PKCS1_SHA512), None, 0),
            "HS256" => ("HS256", None, Some(ring::hmac::HMAC_SHA256), 32),
            "HS384" => ("HS384", None, Some(ring::hmac::HMAC_SHA384), 48),
            "HS512" => ("HS512", None, Some(ring::hmac::HMAC_SHA512), 64),
            _ => return Err(CustomKeyError::Algorithm),
        };
        let material = match (rsa, hmac) {
            (Some(encoding), _) => {
                let pem = key.trim();
                let private = RsaPrivateKey::from_pkcs8_pem(pem)
                    .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
                    .map_err(|_| CustomKeyError::RsaKey)?;
                if rsa::traits::PublicKeyParts::size(&private) < 256 {
                    return Err(CustomKeyError::RsaKey);
                }
                let der = private.to_pkcs8_der().map_err(|_| CustomKeyError::RsaKey)?;
                let pair =
                    ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|_| CustomKeyError::RsaKey)?;
                Material::Rsa(Arc::new(pair), encoding)
            }
            (None, Some(algorithm)) => {
                if key.len() < min {
                    return Err(CustomKeyError::HmacTooShort(min));
                }
                Material::Hmac(ring::hmac::Key::new(algorithm, key.as_bytes()))
            }
            (None, None) => return Err(CustomKeyError::Algorithm),
        };
        Ok(Self { alg, material })
    }

    pub fn algorithm(&self) -> &'static str {
        self.alg
    }

    /// A compact JWS with header `{alg, typ:JWT, cat}`.
    pub fn sign<C: Serialize>(&self, claims: &C, cat: Option<&str>) -> Result<String, TokenError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            cat: Option<&'a str>,
        }
        let header = serde_json::to_vec(&Header { alg: self.alg, typ: "JWT", cat }).map_err(|_| TokenError::Claims)?;
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Claims)?;
        let signing_input = format!("{}.{}", b64::encode(&header), b64::encode(&payload));
        let signature = match &self.material {
            Material::Rsa(pair, encoding) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(*encoding, &ring::rand::SystemRandom::new(), signing_input.as_bytes(), &mut sig)
                    .map_err(|_| TokenError::Claims)?;
                sig
            }
            Material::Hmac(key) => ring::hmac::sign(key, signing_input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{signing_input}.{}", b64::encode(&signature)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hmac_signature_matches_an_independent_hmac() {
        use hmac::Mac;
        let secret = "0123456789abcdef0123456789abcdef";
        let key = CustomKey::parse("HS256", secret).unwrap();
        let token = key.sign(&serde_json::json!({"sub": "user_1"}), None).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        assert_eq!(b64::decode(sig).unwrap(), mac.finalize().into_bytes().to_vec());
        let header: serde_json::Value =
            serde_json::from_slice(&b64::decode(input.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
    }

    #[test]
    fn bad_keys_are_refused_with_the_reason() {
        assert_eq!(CustomKey::parse("HS256", "short").unwrap_err(), CustomKeyError::HmacTooShort(32));
        assert_eq!(CustomKey::parse("HS512", &"x".repeat(63)).unwrap_err(), CustomKeyError::HmacTooShort(64));
        assert_eq!(CustomKey::parse("RS256", "not a pem").unwrap_err(), CustomKeyError::RsaKey);
        assert_eq!(CustomKey::parse("ES256", "whatever").unwrap_err(), CustomKeyError::Algorithm);
        assert_eq!(CustomKey::parse("none", "").unwrap_err(), CustomKeyError::Algorithm);
    }

    #[test]
    fn rsa_pem_keys_sign_tokens_their_public_key_verifies() {
        use rsa::pkcs8::EncodePrivateKey as _;
        use rsa::signature::Verifier as _;
        let mut rng = rand::rngs::OsRng;
        let private = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let key = CustomKey::parse("RS384", &pem).unwrap();
        let token = key.sign(&serde_json::json!({"sub": "user_1"}), Some(TEMPLATE_TOKEN_CAT)).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let verifying = rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(private.to_public_key());
        let signature = rsa::pkcs1v15::Signature::try_from(b64::decode(sig).unwrap().as_slice()).unwrap();
        assert!(verifying.verify(input.as_bytes(), &signature).is_ok());
        // A PKCS#1 PEM of the same key works too.
        let pkcs1 = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&private, rsa::pkcs8::LineEnding::LF).unwrap();
        assert_eq!(CustomKey::parse("RS256", &pkcs1).unwrap().algorithm(), "RS256");
    }
}
