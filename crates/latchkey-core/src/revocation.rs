//! Revocations verifiers must hear of before the tokens they affect expire (docs/revocations.md):
//! which changes are revocations, and which tokens each one refuses. No I/O: the server writes
//! entries with the change that causes them, and verifiers (latchkey-axum's guard, the proxy,
//! a verifier in another language) apply [`RevokedSet`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// `rev_…`: the same entry seen twice (a catch-up overlapping the stream) is applied once.
    pub id: String,
    /// `session`, `user`, `membership` or `key`.
    pub kind: String,
    /// The session id, user id, user id (of the member) or key id (`kid`).
    pub subject: String,
    /// For `membership`: the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// For `membership` changed rather than removed: the member's role now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// revoked, ended, removed (sessions); banned, locked, deleted (users); role_changed,
    /// removed (memberships); revoked (keys).
    pub reason: String,
    /// When it happened, in milliseconds.
    pub at: i64,
    /// When every token it affects has expired (token lifetime and clock skew after `at`): the
    /// entry is dropped then.
    pub expires_at: i64,
}

/// The revocation an event stands for, if any (`event_type` and `data` as the webhook sends
/// them), with `lifetime_ms` how long it must be heard of.
pub fn from_event(event_type: &str, data: &Value, at: i64, lifetime_ms: i64) -> Option<Revocation> {
    let text = |pointer: &str| data.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let entry = |kind: &str, subject: String, reason: &str| Revocation {
        id: String::new(),
        kind: kind.to_owned(),
        subject,
        organization_id: None,
        role: None,
        reason: reason.to_owned(),
        at,
        expires_at: at + lifetime_ms,
    };
    match event_type {
        "session.revoked" | "session.ended" | "session.removed" => {
            let reason = event_type.trim_start_matches("session.");
            Some(entry("session", text("/id")?, reason))
        }
        "user.deleted" => Some(entry("user", text("/id")?, "deleted")),
        "user.updated" => {
            let flag = |name: &str| data.get(name).and_then(Value::as_bool) == Some(true);
            let reason = if flag("banned") {
                "banned"
            } else if flag("locked") {
                "locked"
            } else {
                return None;
            };
            Some(entry("user", text("/id")?, reason))
        }
        "organizationMembership.deleted" | "organizationMembership.updated" => {
            let removed = event_type.ends_with("deleted");
            let mut e = entry(
                "membership",
                text("/public_user_data/user_id")?,
                if removed { "removed" } else { "role_changed" },
            );
            e.organization_id = Some(text("/organization/id")?);
            e.role = if removed { None } else { text("/role") };
            Some(e)
        }
        _ => None,
    }
}

/// What a token carries that a revocation can refuse it for.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub user_id: &'a str,
    pub session_id: Option<&'a str>,
    pub org_id: Option<&'a str>,
    pub org_role: Option<&'a str>,
    /// `iat`, in seconds.
    pub issued_at: i64,
    pub kid: Option<&'a str>,
}

/// The latest change of one membership: the role now (none when removed), when, until when.
type MembershipChange = (Option<String>, i64, i64);

/// The live revocations a verifier holds: bounded by their expiry.
#[derive(Debug, Default)]
pub struct RevokedSet {
    sessions: HashMap<String, i64>,
    /// User → (when, until).
    users: HashMap<String, (i64, i64)>,
    /// User → organization → the latest change: (role now or none when removed, when, until).
    /// Nested so that a look-up borrows the token's strings instead of building a key.
    memberships: HashMap<String, HashMap<String, MembershipChange>>,
    keys: HashMap<String, i64>,
}

impl RevokedSet {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.users.is_empty() && self.memberships.is_empty() && self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
            + self.users.len()
            + self.memberships.values().map(HashMap::len).sum::<usize>()
            + self.keys.len()
    }

    /// Takes an entry in (again is harmless).
    pub fn apply(&mut self, r: &Revocation) {
        match r.kind.as_str() {
            "session" => {
                self.sessions.insert(r.subject.clone(), r.expires_at);
            }
            "user" => {
                let slot = self.users.entry(r.subject.clone()).or_insert((r.at, r.expires_at));
                *slot = (slot.0.max(r.at), slot.1.max(r.expires_at));
            }
            "membership" => {
                let Some(org) = &r.organization_id else { return };
                let orgs = self.memberships.entry(r.subject.clone()).or_default();
                let newer = orgs.get(org).is_none_or(|(_, at, _)| *at <= r.at);
                if newer {
                    orgs.insert(org.clone(), (r.role.clone(), r.at, r.expires_at));
                }
            }
            "key" => {
                self.keys.insert(r.subject.clone(), r.expires_at);
            }
            _ => {}
        }
    }

    /// Drops what has expired by `now` (milliseconds).
    pub fn expire(&mut self, now: i64) {
        self.sessions.retain(|_, until| *until > now);
        self.users.retain(|_, (_, until)| *until > now);
        for orgs in self.memberships.values_mut() {
            orgs.retain(|_, (_, _, until)| *until > now);
        }
        self.memberships.retain(|_, orgs| !orgs.is_empty());
        self.keys.retain(|_, until| *until > now);
    }

    /// Why the token is refused, if it is: its session ended, its user was banned, locked or
    /// deleted after it was made, its organization claims changed, or its key was revoked.
    pub fn refuses(&self, t: &TokenFacts<'_>) -> Option<&'static str> {
        if t.session_id.is_some_and(|sid| self.sessions.contains_key(sid)) {
            return Some("session_revoked");
        }
        // `iat` is in whole seconds: a token of the change's own second may predate it, and is
        // refused too (the user is banned, locked or deleted, so no newer token is made).
        if self.users.get(t.user_id).is_some_and(|(at, _)| t.issued_at * 1000 <= *at) {
            return Some("user_revoked");
        }
        if let Some(org) = t.org_id {
            if let Some((role, _, _)) = self.memberships.get(t.user_id).and_then(|orgs| orgs.get(org)) {
                // Removed: no token for this organization holds; changed: only the new role.
                if role.as_deref().is_none_or(|now| t.org_role != Some(now)) {
                    return Some("membership_changed");
                }
            }
        }
        if t.kid.is_some_and(|kid| self.keys.contains_key(kid)) {
            return Some("key_revoked");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn facts<'a>(user: &'a str, sid: &'a str, org: Option<&'a str>, role: Option<&'a str>, iat: i64) -> TokenFacts<'a> {
        TokenFacts {
            user_id: user,
            session_id: Some(sid),
            org_id: org,
            org_role: role,
            issued_at: iat,
            kid: Some("k1"),
        }
    }

    #[test]
    fn events_become_entries_and_others_do_not() {
        let s = from_event("session.revoked", &json!({"id": "sess_1", "user_id": "user_1"}), 5_000, 65_000).unwrap();
        assert_eq!(
            (s.kind.as_str(), s.subject.as_str(), s.reason.as_str(), s.expires_at),
            ("session", "sess_1", "revoked", 70_000)
        );
        let banned = from_event("user.updated", &json!({"id": "user_1", "banned": true}), 1, 1).unwrap();
        assert_eq!(banned.reason, "banned");
        assert!(from_event("user.updated", &json!({"id": "user_1", "banned": false, "locked": false}), 1, 1).is_none());
        let changed = from_event(
            "organizationMembership.updated",
            &json!({"role": "org:member", "organization": {"id": "org_1"}, "public_user_data": {"user_id": "user_1"}}),
            1,
            1,
        )
        .unwrap();
        assert_eq!((changed.organization_id.as_deref(), changed.role.as_deref()), (Some("org_1"), Some("org:member")));
        assert!(from_event("user.created", &json!({"id": "user_1"}), 1, 1).is_none());
        assert!(from_event("session.revoked", &json!({}), 1, 1).is_none(), "no id, no entry");
    }

    #[test]
    fn each_kind_refuses_only_what_it_names() {
        let mut set = RevokedSet::default();
        let entry = |kind: &str, subject: &str, org: Option<&str>, role: Option<&str>, at: i64| Revocation {
            id: "rev".into(),
            kind: kind.into(),
            subject: subject.into(),
            organization_id: org.map(str::to_owned),
            role: role.map(str::to_owned),
            reason: "x".into(),
            at,
            expires_at: at + 65_000,
        };
        set.apply(&entry("session", "sess_1", None, None, 10_000));
        assert_eq!(set.refuses(&facts("user_1", "sess_1", None, None, 9)), Some("session_revoked"));
        assert_eq!(set.refuses(&facts("user_1", "sess_2", None, None, 9)), None);

        set.apply(&entry("user", "user_2", None, None, 20_500));
        assert_eq!(set.refuses(&facts("user_2", "sess_9", None, None, 20)), Some("user_revoked"), "same second");
        assert_eq!(set.refuses(&facts("user_2", "sess_9", None, None, 21)), None, "made after the change");

        set.apply(&entry("membership", "user_3", Some("org_1"), Some("org:member"), 30_000));
        let admin = facts("user_3", "sess_3", Some("org_1"), Some("org:admin"), 29);
        assert_eq!(set.refuses(&admin), Some("membership_changed"));
        assert_eq!(set.refuses(&facts("user_3", "sess_3", Some("org_1"), Some("org:member"), 31)), None);
        assert_eq!(set.refuses(&facts("user_3", "sess_3", Some("org_2"), Some("org:admin"), 29)), None);
        // An older change heard late does not undo a newer one.
        set.apply(&entry("membership", "user_3", Some("org_1"), Some("org:admin"), 25_000));
        assert_eq!(set.refuses(&admin), Some("membership_changed"));
        set.apply(&entry("membership", "user_3", Some("org_1"), None, 40_000));
        assert_eq!(
            set.refuses(&facts("user_3", "sess_3", Some("org_1"), Some("org:member"), 41)),
            Some("membership_changed")
        );

        set.apply(&entry("key", "k1", None, None, 1));
        assert_eq!(set.refuses(&facts("user_9", "sess_9", None, None, 1)), Some("key_revoked"));

        assert_eq!(set.len(), 4);
        set.expire(100_000);
        assert_eq!(set.len(), 1, "the membership change of 40 s lives until 105 s");
        set.expire(105_000);
        assert!(set.is_empty(), "every entry falls off after its tokens expired");
    }
}
