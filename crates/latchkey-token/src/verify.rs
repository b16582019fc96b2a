//! RS256 session-token verification (RFC 8725, in the order of docs/backend-api.md §8).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::b64;
use crate::claims::{SessionClaims, SESSION_TOKEN_CAT};
use crate::keys::PublicKey;

/// Tokens larger than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token's type or category is not a session token")]
    TokenType,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    Issuer,
    #[error("the token's authorized party is not accepted")]
    AuthorizedParty,
    #[error("the token's audience is not accepted")]
    Audience,
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// Its session ended, its user was banned, locked or deleted, its organization claims
    /// changed or its key was revoked, as the revocation feed said (docs/revocations.md); or
    /// the feed is unreachable and the verifier was told to refuse then.
    #[error("the token was revoked")]
    Revoked,
}

#[derive(Debug, Clone)]
pub struct VerifierOptions {
    /// Accepted `iss` values; `None` skips the check (only for tools, never the server).
    pub issuers: Option<Vec<String>>,
    /// When set, `azp` is required and must be one of these origins.
    pub authorized_parties: Option<Vec<String>>,
    /// When set, `aud` is required and must contain one of these.
    pub audiences: Option<Vec<String>>,
    /// Allowed clock skew in seconds.
    pub leeway_secs: i64,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self { issuers: None, authorized_parties: None, audiences: None, leeway_secs: 5 }
    }
}

#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub kid: String,
    pub claims: Map<String, Value>,
}

impl VerifiedToken {
    pub fn session_claims(&self) -> Option<SessionClaims> {
        serde_json::from_value(Value::Object(self.claims.clone())).ok()
    }
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
    pub fn session_id(&self) -> Option<&str> {
        self.claims.get("sid").and_then(Value::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Verifier {
    keys: HashMap<String, PublicKey>,
    /// A configured key that verifies whatever `kid` a token names (Clerk's `jwtKey`).
    any_kid: Option<PublicKey>,
    options: VerifierOptions,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    cat: Option<Value>,
    crit: Option<Value>,
}

impl Verifier {
    pub fn new(keys: impl IntoIterator<Item = PublicKey>, options: VerifierOptions) -> Self {
        Self { keys: keys.into_iter().map(|k| (k.kid.clone(), k)).collect(), any_kid: None, options }
    }

    /// One key, configured out of band (a PEM), that verifies tokens whatever their `kid`; a
    /// token must still name one.
    pub fn single_key(key: PublicKey, options: VerifierOptions) -> Self {
        Self { keys: HashMap::new(), any_kid: Some(key), options }
    }

    pub fn options(&self) -> &VerifierOptions {
        &self.options
    }

    /// The `kid`s this verifier knows.
    pub fn kids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    pub fn has_key(&self, kid: &str) -> bool {
        self.any_kid.is_some() || self.keys.contains_key(kid)
    }

    /// The `kid` a token names, read without trusting anything else (for cache refresh logic).
    pub fn peek_kid(token: &str) -> Option<String> {
        let header = token.split('.').next()?;
        let header: Header = serde_json::from_slice(&b64::decode(header)?).ok()?;
        header.kid.and_then(|k| k.as_str().map(str::to_owned))
    }

    pub fn verify(&self, token: &str, now_secs: i64) -> Result<VerifiedToken, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(VerifyError::Malformed);
        };
        let header_bytes = b64::decode(h64).ok_or(VerifyError::Malformed)?;
        let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| VerifyError::Malformed)?;
        if header.alg.as_ref().and_then(Value::as_str) != Some("RS256") {
            return Err(VerifyError::Algorithm);
        }
        if header.crit.is_some() {
            return Err(VerifyError::Malformed);
        }
        match header.typ.as_ref() {
            None => {}
            Some(Value::String(t)) if t == "JWT" => {}
            Some(_) => return Err(VerifyError::TokenType),
        }
        match header.cat.as_ref() {
            None => {}
            Some(Value::String(c)) if c == SESSION_TOKEN_CAT => {}
            Some(_) => return Err(VerifyError::TokenType),
        }
        let kid = header.kid.as_ref().and_then(Value::as_str).ok_or(VerifyError::UnknownKey)?;
        let key = self.keys.get(kid).or(self.any_kid.as_ref()).ok_or(VerifyError::UnknownKey)?;
        let signature = b64::decode(s64).ok_or(VerifyError::Malformed)?;
        let signing_input_len = h64.len() + 1 + p64.len();
        if !key.verify_rs256(&token.as_bytes()[..signing_input_len], &signature) {
            return Err(VerifyError::Signature);
        }
        // Only now, with the signature verified, are the claims read.
        let payload = b64::decode(p64).ok_or(VerifyError::Malformed)?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)?;
        self.check_claims(&claims, now_secs)?;
        Ok(VerifiedToken { kid: kid.to_owned(), claims })
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<(), VerifyError> {
        let leeway = self.options.leeway_secs;
        let number = |name: &str| -> Result<Option<i64>, VerifyError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v.as_f64().map(|f| Some(f.floor() as i64)).ok_or(VerifyError::Malformed),
            }
        };
        match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(VerifyError::MissingClaim),
        }
        let exp = number("exp")?.ok_or(VerifyError::MissingClaim)?;
        if exp <= now - leeway {
            return Err(VerifyError::Expired);
        }
        if let Some(nbf) = number("nbf")? {
            if nbf > now + leeway {
                return Err(VerifyError::NotYetValid);
            }
        }
        if let Some(iat) = number("iat")? {
            if iat > now + leeway {
                return Err(VerifyError::NotYetValid);
            }
        }
        if let Some(issuers) = &self.options.issuers {
            let iss = claims.get("iss").and_then(Value::as_str).ok_or(VerifyError::Issuer)?;
            if !issuers.iter().any(|i| i == iss) {
                return Err(VerifyError::Issuer);
            }
        }
        if let Some(parties) = &self.options.authorized_parties {
            let azp = claims.get("azp").and_then(Value::as_str).ok_or(VerifyError::AuthorizedParty)?;
            if !parties.iter().any(|p| p == azp) {
                return Err(VerifyError::AuthorizedParty);
            }
        }
        if let Some(audiences) = &self.options.audiences {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => audiences.iter().any(|x| x == a),
                Some(Value::Array(list)) => {
                    list.iter().filter_map(Value::as_str).any(|a| audiences.iter().any(|x| x == a))
                }
                _ => false,
            };
            if !ok {
                return Err(VerifyError::Audience);
            }
        }
        Ok(())
    }
}
