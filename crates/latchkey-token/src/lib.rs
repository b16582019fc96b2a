//! Session tokens: RS256 signing and verification, JWKs, the key ring's lifecycle and the
//! claims latchkey issues. Small and free of I/O, so the server and the guard share it.
//!
//! Verification follows RFC 8725: the algorithm is fixed per key (RS256 only), the header's
//! `alg` is checked against it rather than trusted, `kid` is only a key into an in-memory map,
//! `jku`/`x5u`/`jwk`/`x5c` are never used, and claims are read only after the signature passes.

mod b64;
pub mod claims;
pub mod custom;
pub mod jwk;
pub mod keyring;
pub mod keys;
pub mod verify;

pub use claims::{OrgClaim, SessionClaims, V1OrgClaims, SESSION_TOKEN_CAT};
pub use custom::{CustomKey, CustomKeyError, TEMPLATE_TOKEN_CAT};
pub use jwk::{Jwk, Jwks};
pub use keyring::{KeyRecord, KeyState, KeyTiming};
pub use keys::{PublicKey, SigningKey, TokenError};
pub use verify::{VerifiedToken, Verifier, VerifierOptions, VerifyError};
