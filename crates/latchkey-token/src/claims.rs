//! The claims of a latchkey session token (Clerk's v2 shape).

use serde::{Deserialize, Serialize};

/// Clerk's header `cat` for session tokens; the current SDKs refuse other categories as session
/// tokens (the 1.x-generation `@clerk/backend` does not look at it).
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
    /// The same organization in Clerk's v1 claims, for SDKs that read only those
    /// (`[organizations] v1_token_claims`); empty otherwise.
    #[serde(flatten)]
    pub v1: V1OrgClaims,
}

/// Clerk's v1 organization claims (`org_id`, `org_slug`, `org_role` with its `org:` prefix, and
/// the app's own permissions in `org_permissions`): what `@clerk/backend` 1.x (`@clerk/nextjs` 5,
/// `@clerk/clerk-sdk-node` 5) reads for `auth().orgId` and `has()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1OrgClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_permissions: Option<Vec<String>>,
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
