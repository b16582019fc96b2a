//! JSON Web Keys as the JWKS endpoint publishes them.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::keys::{PublicKey, TokenError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub r#use: String,
    pub n: String,
    pub e: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwk {
    /// Only RSA signing keys for RS256 become verification keys; anything else is refused,
    /// so a JWKS can never smuggle in another algorithm family.
    pub fn to_public_key(&self) -> Result<PublicKey, TokenError> {
        if self.kty != "RSA" || self.alg != "RS256" || (self.r#use != "sig" && !self.r#use.is_empty()) {
            return Err(TokenError::Encoding);
        }
        let n = b64::decode(&self.n).ok_or(TokenError::Encoding)?;
        let e = b64::decode(&self.e).ok_or(TokenError::Encoding)?;
        let key = PublicKey::from_components(&n, &e, self.kid.clone())?;
        if key.modulus_bits() < 2048 {
            return Err(TokenError::Encoding);
        }
        Ok(key)
    }
}
