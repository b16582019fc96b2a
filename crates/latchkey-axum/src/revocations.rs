//! Following latchkey's revocation feed (docs/revocations.md): a guard that follows it refuses
//! a token whose session ended, whose user was banned, locked or deleted, whose organization
//! claims changed or whose key was revoked, within a moment of the change, instead of trusting
//! it until it expires.
//!
//! When the feed cannot be reached the guard keeps working on signatures alone (fail open, the
//! default: an outage of the feed must not take every protected route down, and without the
//! feed a token is trusted for its lifetime, 60 s, as before), logs it and says so in
//! [`RevocationStatus`]; [`FeedFailure::Closed`] refuses every token while the feed is away.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use latchkey_core::revocation::{Revocation, RevokedSet, TokenFacts};
use latchkey_core::Clock;

use crate::{Auth, Guard, KeyError};

/// What a guard does with tokens while its feed is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedFailure {
    /// Trust signatures alone (each token for at most its lifetime).
    #[default]
    Open,
    /// Refuse every token until the feed is back.
    Closed,
}

/// How the feed is followed, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationStatus {
    /// `follow_revocations` was called.
    pub following: bool,
    /// The stream is open and caught up.
    pub connected: bool,
    /// Entries held now.
    pub entries: usize,
    /// Tokens refused because of an entry.
    pub refused: u64,
    /// Times the stream was lost.
    pub disconnects: u64,
}

/// The entries a guard holds and the state of its feed.
#[derive(Default)]
pub(crate) struct Revoked {
    set: RwLock<RevokedSet>,
    following: AtomicBool,
    connected: AtomicBool,
    fail_closed: AtomicBool,
    refused: AtomicU64,
    disconnects: AtomicU64,
}

impl Revoked {
    /// Whether the token must be refused now.
    pub(crate) fn refuses(&self, auth: &Auth) -> bool {
        if !self.following.load(Ordering::Relaxed) {
            return false;
        }
        if !self.connected.load(Ordering::Relaxed) && self.fail_closed.load(Ordering::Relaxed) {
            return true;
        }
        let facts = TokenFacts {
            user_id: auth.user_id(),
            session_id: auth.session_id(),
            org_id: auth.org_id(),
            org_role: auth.org_role(),
            issued_at: auth.claims().get("iat").and_then(serde_json::Value::as_i64).unwrap_or(0),
            kid: None,
        };
        let refused = match self.set.read() {
            Ok(set) => !set.is_empty() && set.refuses(&facts).is_some(),
            Err(_) => false,
        };
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        refused
    }

    pub(crate) fn status(&self) -> RevocationStatus {
        RevocationStatus {
            following: self.following.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            entries: self.set.read().map(|s| s.len()).unwrap_or(0),
            refused: self.refused.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
        }
    }

    fn apply(&self, entry: &Revocation, now: i64) {
        if let Ok(mut set) = self.set.write() {
            set.apply(entry);
            set.expire(now);
        }
    }

    fn expire(&self, now: i64) {
        if let Ok(mut set) = self.set.write() {
            set.expire(now);
        }
    }
}

/// What the follower needs of its guard.
pub(crate) struct Follower {
    pub(crate) revoked: Arc<Revoked>,
    pub(crate) base_url: String,
    pub(crate) secret_key: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: reqwest::Client,
    /// How long the stream may stay silent before it is taken for dead (GuardConfig).
    pub(crate) silence: Duration,
    /// Told of a revoked signing key: fetch the key set again.
    pub(crate) on_key_revoked: Arc<dyn Fn() + Send + Sync>,
}

impl Follower {
    /// Follows the stream for ever: reconnects from its cursor after any loss, backing off.
    pub(crate) async fn run(self, failure: FeedFailure) {
        self.revoked.fail_closed.store(failure == FeedFailure::Closed, Ordering::Relaxed);
        self.revoked.following.store(true, Ordering::Relaxed);
        let mut cursor: Option<i64> = None;
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.follow_once(&mut cursor).await {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(reason) => {
                    tracing::warn!(reason, "the revocation feed is unreachable: tokens are checked by signature alone")
                }
            }
            if self.revoked.connected.swap(false, Ordering::Relaxed) {
                self.revoked.disconnects.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    /// One connection: until the stream ends (Ok) or fails (Err with why).
    async fn follow_once(&self, cursor: &mut Option<i64>) -> Result<(), String> {
        let mut url = format!("{}/v1/revocations/stream", self.base_url);
        if let Some(c) = cursor {
            url.push_str(&format!("?since={c}"));
        }
        let mut response = self
            .http
            .get(&url)
            .bearer_auth(&self.secret_key)
            .header(http::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", url, response.status()));
        }
        let mut buffer = String::new();
        let (mut event, mut data, mut id) = (String::new(), String::new(), None::<i64>);
        // The server sends a keep-alive every 15 s: a longer silence is a dead connection (a
        // half-open socket would otherwise hold the follower for ever, seeming connected).
        while let Some(chunk) = tokio::time::timeout(self.silence, response.chunk())
            .await
            .map_err(|_| format!("no word from the feed in {} ms", self.silence.as_millis()))?
            .map_err(|e| e.to_string())?
        {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line = buffer[..end].trim_end_matches('\r').to_owned();
                buffer.drain(..=end);
                if !line.is_empty() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    }
                    continue;
                }
                // A blank line ends an event.
                let now = self.clock.now_ms();
                match event.as_str() {
                    "revocation" => {
                        if let Ok(entry) = serde_json::from_str::<Revocation>(&data) {
                            self.revoked.apply(&entry, now);
                            if entry.kind == "key" {
                                (self.on_key_revoked)();
                            }
                        }
                        *cursor = id.or(*cursor);
                    }
                    "ready" => {
                        if !self.revoked.connected.swap(true, Ordering::Relaxed) {
                            tracing::info!("following the revocation feed");
                        }
                    }
                    "draining" | "lagged" => return Ok(()),
                    _ => self.revoked.expire(now),
                }
                (event, data, id) = (String::new(), String::new(), None);
            }
        }
        Ok(())
    }
}

impl Guard {
    /// Follows the issuer's revocation feed (`GET /v1/revocations/stream` with `secret_key`,
    /// docs/revocations.md) from now on, reconnecting after any loss: tokens it names are
    /// refused within a moment of the change. `failure` says what to do while it is away
    /// ([`FeedFailure::Open`], trusting signatures alone, is the usual choice). Call once,
    /// inside the runtime; the task runs until it is aborted.
    pub fn follow_revocations(
        &self,
        secret_key: impl Into<String>,
        failure: FeedFailure,
    ) -> Result<tokio::task::JoinHandle<()>, KeyError> {
        let inner = &self.inner;
        let base_url = inner.issuer.clone().ok_or_else(|| {
            KeyError::Fetch("the revocation feed needs the issuer's URL (GuardConfig::issuer)".into())
        })?;
        // No overall timeout: the stream stays open; a dead connection shows as silence.
        let http = crate::keys::client(
            reqwest::Client::builder().connect_timeout(Duration::from_secs(5)),
            &inner.extra_roots,
        )?;
        let me = self.clone();
        let follower = Follower {
            revoked: inner.revoked.clone(),
            base_url,
            secret_key: secret_key.into(),
            clock: inner.clock.clone(),
            http,
            silence: inner.revocation_silence,
            on_key_revoked: Arc::new(move || {
                let me = me.clone();
                tokio::spawn(async move { me.refresh_keys().await });
            }),
        };
        Ok(tokio::spawn(follower.run(failure)))
    }

    /// Whether the revocation feed is followed and connected, and what it did.
    pub fn revocation_status(&self) -> RevocationStatus {
        self.inner.revoked.status()
    }
}
