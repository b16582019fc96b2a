//! Verified tokens, keyed by the token's bytes, so the many requests a client makes with one
//! 60-second token verify its signature once. An entry ends at the token's `exp`; entries of a
//! key that leaves the key set are flushed at once; the map is bounded.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::auth::Auth;

struct Entry {
    auth: Auth,
    exp: i64,
    kid: String,
}

pub(crate) struct TokenCache {
    capacity: usize,
    entries: RwLock<HashMap<Box<str>, Entry>>,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, entries: RwLock::new(HashMap::new()) }
    }

    pub(crate) fn get(&self, token: &str, now: i64) -> Option<Auth> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().ok()?;
        entries.get(token).filter(|e| now < e.exp).map(|e| e.auth.clone())
    }

    pub(crate) fn insert(&self, token: &str, auth: Auth, exp: i64, kid: String, now: i64) {
        if self.capacity == 0 || exp <= now {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, e| now < e.exp);
            if entries.len() >= self.capacity {
                // Still full of live tokens: start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(token.into(), Entry { auth, exp, kid });
    }

    /// Drops every entry verified with one of `kids` (keys that were removed or revoked).
    pub(crate) fn flush_keys(&self, kids: &[String]) {
        if kids.is_empty() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, e| !kids.contains(&e.kid));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }
}
