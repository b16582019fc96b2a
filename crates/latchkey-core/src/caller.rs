//! Who a verified session token speaks for: the one reading of a token's claims that every
//! verifier shares — the sync API in the server and the `latchkey-axum` guard (with
//! `latchkey proxy`) in front of an app's own routes — so they cannot disagree about the
//! caller (docs/ARCHITECTURE.md, "One credential edge").

use serde_json::{Map, Value};

use crate::authz::{self, AuthState};

/// The caller a session token names, read from its verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCaller {
    /// `user_id` is always set (`sub`); the active organization with its role (with the `org:`
    /// prefix) and permissions; the factor verification age.
    pub state: AuthState,
    /// `sid`: absent from tokens that are not session tokens (JWT templates may drop it).
    pub session_id: Option<String>,
    pub org_slug: Option<String>,
    /// `exp`, in seconds.
    pub expires_at: i64,
    /// `sts` is `pending`: the session waits for a task (such as setting up a second factor)
    /// before it counts as signed in; verifiers treat it as signed out, as Clerk's SDKs do by
    /// default (`treatPendingAsSignedOut`). Tokens without `sts` (v1, templates) are active.
    pub pending: bool,
}

impl TokenCaller {
    /// Reads claims in Clerk's v2 shape (`o`, `fea`) or v1 shape (`org_id`, `org_role`,
    /// `org_permissions`); `None` without a `sub`.
    pub fn from_claims(claims: &Map<String, Value>) -> Option<Self> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let user_id = text(claims.get("sub"))?;
        let fva = claims.get("fva").and_then(Value::as_array).and_then(|a| {
            let first = a.first()?.as_i64()?;
            let second = a.get(1)?.as_i64()?;
            Some([first, second])
        });
        let (org_id, org_role, org_slug, org_permissions) = match claims.get("o").and_then(Value::as_object) {
            Some(o) => {
                let fea = claims.get("fea").and_then(Value::as_str).unwrap_or("");
                let per = o.get("per").and_then(Value::as_str);
                let fpm = o.get("fpm").and_then(Value::as_str);
                (
                    text(o.get("id")),
                    text(o.get("rol")).map(|r| authz::with_org_prefix(&r)),
                    text(o.get("slg")),
                    authz::unpack_permissions(fea, per, fpm),
                )
            }
            None => (
                text(claims.get("org_id")),
                text(claims.get("org_role")),
                text(claims.get("org_slug")),
                claims
                    .get("org_permissions")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
            ),
        };
        Some(Self {
            state: AuthState {
                user_id: Some(user_id),
                org_id,
                org_role,
                org_permissions,
                factor_verification_age: fva,
            },
            session_id: text(claims.get("sid")),
            org_slug,
            expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
            pending: claims.get("sts").and_then(Value::as_str) == Some("pending"),
        })
    }

    pub fn user_id(&self) -> &str {
        self.state.user_id.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn reads_v2_claims() {
        let c = TokenCaller::from_claims(&claims(json!({
            "sub": "user_1", "sid": "sess_1", "exp": 1700000060, "fva": [3, -1],
            "o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "read,manage", "fpm": "3"},
            "fea": "o:notes",
        })))
        .unwrap();
        assert_eq!(c.user_id(), "user_1");
        assert_eq!(c.session_id.as_deref(), Some("sess_1"));
        assert_eq!(c.expires_at, 1700000060);
        assert_eq!(c.state.org_id.as_deref(), Some("org_1"));
        assert_eq!(c.state.org_role.as_deref(), Some("org:admin"));
        assert_eq!(c.org_slug.as_deref(), Some("acme"));
        assert_eq!(c.state.org_permissions, vec!["org:notes:read".to_owned(), "org:notes:manage".to_owned()]);
        assert_eq!(c.state.factor_verification_age, Some([3, -1]));
        assert!(!c.pending, "no `sts`: active");
    }

    #[test]
    fn reads_the_session_status() {
        let with = |sts: Value| TokenCaller::from_claims(&claims(json!({"sub": "user_1", "sts": sts}))).unwrap();
        assert!(with(json!("pending")).pending);
        assert!(!with(json!("active")).pending);
        assert!(!with(json!(null)).pending);
        assert!(!with(json!(["pending"])).pending, "only the string counts");
    }

    #[test]
    fn reads_v1_claims() {
        let c = TokenCaller::from_claims(&claims(json!({
            "sub": "user_1", "org_id": "org_1", "org_role": "org:member", "org_slug": "acme",
            "org_permissions": ["org:notes:read"],
        })))
        .unwrap();
        assert_eq!(c.state.org_role.as_deref(), Some("org:member"));
        assert_eq!(c.state.org_permissions, vec!["org:notes:read".to_owned()]);
        assert_eq!(c.session_id, None);
        assert_eq!(c.expires_at, 0);
    }

    #[test]
    fn needs_a_subject() {
        assert_eq!(TokenCaller::from_claims(&claims(json!({"sid": "sess_1", "sub": 7}))), None);
        assert_eq!(TokenCaller::from_claims(&claims(json!({"sid": "sess_1"}))), None);
    }
}
