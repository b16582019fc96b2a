//! The claims of a latchkey session token (Clerk's v2 shape).

use serde::{Deserialize, Serialize};

/// Clerk's header `cat` for session tokens; the SDK refuses other categories as session tokens.
pub const SESSION_TOKEN_CAT: &str = "cl_B7d4PD111AAA";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: String,
    pub sid: String,
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub v: u8,
    /// Minutes since the first and second factor were verified; -1 when not enrolled.
    pub fva: [i64; 2],
    pub sts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<OrgClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fea: Option<String>,
}

/// The active organization, in Clerk's compact v2 encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgClaim {
    pub id: String,
    pub slg: String,
    /// Role without the `org:` prefix.
    pub rol: String,
    pub per: String,
    pub fpm: String,
}
