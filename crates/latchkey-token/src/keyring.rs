//! The signing-key lifecycle, derived from timestamps alone so that every instance sharing a
//! database agrees on the active key without coordination (docs/security-baseline.md §7):
//! pending (published) → active (signs) → retired (verifies) → removed, or revoked at once.

use serde::Serialize;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub created_at: Millis,
    /// The moment the key starts signing; published from `created_at`.
    pub activate_at: Millis,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Pending,
    Active,
    Retired,
    Removed,
    Revoked,
}

#[derive(Debug, Clone, Copy)]
pub struct KeyTiming {
    /// How long verifiers may cache the JWKS (its `Cache-Control: max-age`).
    pub jwks_max_age_ms: Millis,
    /// The longest a token lives plus the verifiers' clock leeway.
    pub max_token_ttl_ms: Millis,
}

impl Default for KeyTiming {
    fn default() -> Self {
        // Session tokens live 60 s (templates may ask for up to 1 h); leeway 5 s.
        Self { jwks_max_age_ms: 300_000, max_token_ttl_ms: 3_600_000 + 5_000 }
    }
}

impl KeyTiming {
    /// A rotated key is published this long before it signs, so every cached JWKS has it.
    pub fn publish_ahead_ms(&self) -> Millis {
        self.jwks_max_age_ms
    }
    /// A retired key stays published this long, so every token it signed can still verify.
    pub fn retain_ms(&self) -> Millis {
        self.max_token_ttl_ms + self.jwks_max_age_ms
    }
}

fn revoked(k: &KeyRecord, now: Millis) -> bool {
    k.revoked_at.is_some_and(|r| r <= now)
}

/// The key that signs at `now`: the latest activated key that is not revoked.
pub fn active_key(keys: &[KeyRecord], now: Millis) -> Option<&KeyRecord> {
    keys.iter()
        .filter(|k| !revoked(k, now) && k.activate_at <= now)
        .max_by(|a, b| (a.activate_at, &a.kid).cmp(&(b.activate_at, &b.kid)))
}

/// The state of `key` at `now`, given every key of the ring.
pub fn key_state(key: &KeyRecord, keys: &[KeyRecord], now: Millis, timing: &KeyTiming) -> KeyState {
    if revoked(key, now) {
        return KeyState::Revoked;
    }
    if key.activate_at > now {
        return KeyState::Pending;
    }
    if active_key(keys, now).is_some_and(|a| a.kid == key.kid) {
        return KeyState::Active;
    }
    // Retired when a newer key took over; the earliest such moment starts the retention clock.
    let retired_at = keys
        .iter()
        .filter(|k| !revoked(k, now) && k.kid != key.kid && k.activate_at <= now)
        .filter(|k| (k.activate_at, &k.kid) > (key.activate_at, &key.kid))
        .map(|k| k.activate_at)
        .min()
        .unwrap_or(now);
    if now >= retired_at + timing.retain_ms() {
        KeyState::Removed
    } else {
        KeyState::Retired
    }
}

/// Keys to publish in the JWKS and to verify with: pending, active and retired, newest first.
pub fn published_keys<'a>(keys: &'a [KeyRecord], now: Millis, timing: &KeyTiming) -> Vec<&'a KeyRecord> {
    let mut out: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| matches!(key_state(k, keys, now, timing), KeyState::Pending | KeyState::Active | KeyState::Retired))
        .collect();
    out.sort_by(|a, b| (b.activate_at, &b.kid).cmp(&(a.activate_at, &a.kid)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, activate_at: Millis) -> KeyRecord {
        KeyRecord { kid: kid.into(), created_at: activate_at, activate_at, revoked_at: None }
    }

    #[test]
    fn rotation_publishes_first_then_retires_then_removes() {
        let t = KeyTiming { jwks_max_age_ms: 300, max_token_ttl_ms: 65 };
        let mut a = key("a", 0);
        a.created_at = 0;
        let mut b = key("b", 1_300);
        b.created_at = 1_000; // rotated at 1000, published for 300 before it signs
        let ring = vec![a.clone(), b.clone()];
        assert_eq!(key_state(&b, &ring, 1_000, &t), KeyState::Pending);
        assert_eq!(active_key(&ring, 1_299).map(|k| k.kid.as_str()), Some("a"));
        let published: Vec<_> = published_keys(&ring, 1_000, &t).iter().map(|k| k.kid.clone()).collect();
        assert_eq!(published, vec!["b", "a"], "newest first, pending included");
        assert_eq!(active_key(&ring, 1_300).map(|k| k.kid.as_str()), Some("b"));
        assert_eq!(key_state(&a, &ring, 1_300, &t), KeyState::Retired);
        assert_eq!(key_state(&a, &ring, 1_300 + 364, &t), KeyState::Retired);
        assert_eq!(key_state(&a, &ring, 1_300 + 365, &t), KeyState::Removed);
        assert_eq!(published_keys(&ring, 2_000, &t).len(), 1);
    }

    #[test]
    fn revocation_is_immediate() {
        let t = KeyTiming::default();
        let mut a = key("a", 0);
        a.revoked_at = Some(50);
        let b = key("b", 50);
        let ring = vec![a.clone(), b];
        assert_eq!(key_state(&a, &ring, 49, &t), KeyState::Active);
        assert_eq!(key_state(&a, &ring, 50, &t), KeyState::Revoked);
        assert_eq!(active_key(&ring, 50).map(|k| k.kid.as_str()), Some("b"));
        assert!(published_keys(&ring, 50, &t).iter().all(|k| k.kid != "a"));
    }
}
