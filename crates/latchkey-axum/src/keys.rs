//! Where verification keys come from: a PEM given in configuration (no network at all), or the
//! issuer's JWKS, found through its OpenID configuration and cached. The cache refreshes in the
//! background once it is older than the refresh interval; a token with an unknown `kid` causes
//! at most one refetch per 30 seconds, shared by every request waiting for it; when latchkey is
//! unreachable the cached keys keep working. Only URLs from the configuration (and the issuer's
//! discovery document) are ever fetched — never one a token names.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use latchkey_core::Clock;
use latchkey_token::{Jwks, PublicKey, Verifier, VerifierOptions};

/// Minimum time between two fetches caused by unknown `kid`s.
pub const UNKNOWN_KID_REFETCH_SECS: i64 = 30;
/// How old the cached JWKS may get before a background refresh (latchkey's `max-age`).
pub const REFRESH_SECS: i64 = 300;

#[derive(Debug, Clone)]
pub enum KeySource {
    /// An RSA public key in SPKI PEM; verifies tokens whatever their `kid`.
    Pem(String),
    /// The issuer URL: its `/.well-known/openid-configuration` names the JWKS.
    Issuer(String),
    /// A JWKS URL given directly.
    JwksUrl(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the PEM public key cannot be read")]
    Pem,
    #[error("the key set cannot be fetched: {0}")]
    Fetch(String),
}

struct State {
    verifier: Arc<Verifier>,
    /// When the JWKS was last fetched successfully (seconds), if ever.
    fetched_at: Option<i64>,
    /// When a fetch was last attempted because of an unknown `kid`.
    last_unknown_fetch: Option<i64>,
    jwks_url: Option<String>,
    refreshing: bool,
}

pub(crate) struct Keys {
    source: KeySource,
    options: VerifierOptions,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// One fetch at a time; requests that need one wait for it and reuse its result.
    fetching: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

/// `builder` trusting `extra_roots` beside the system's roots, built.
pub(crate) fn client(
    mut builder: reqwest::ClientBuilder,
    extra_roots: &latchkey_core::tls::ExtraRoots,
) -> Result<reqwest::Client, KeyError> {
    for pem in extra_roots.pem_blocks() {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| KeyError::Fetch(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| KeyError::Fetch(e.to_string()))
}

impl Keys {
    pub(crate) fn new(
        source: KeySource,
        options: VerifierOptions,
        clock: Arc<dyn Clock>,
        extra_roots: &latchkey_core::tls::ExtraRoots,
    ) -> Result<Self, KeyError> {
        let verifier = match &source {
            KeySource::Pem(pem) => {
                let key = PublicKey::from_spki_pem(pem, "configured".into()).map_err(|_| KeyError::Pem)?;
                Verifier::single_key(key, options.clone())
            }
            _ => Verifier::new([], options.clone()),
        };
        let jwks_url = match &source {
            KeySource::JwksUrl(u) => Some(u.clone()),
            _ => None,
        };
        let http = client(
            reqwest::Client::builder().timeout(Duration::from_secs(5)).redirect(reqwest::redirect::Policy::none()),
            extra_roots,
        )?;
        Ok(Self {
            source,
            options,
            http,
            clock,
            state: RwLock::new(State {
                verifier: Arc::new(verifier),
                fetched_at: None,
                last_unknown_fetch: None,
                jwks_url,
                refreshing: false,
            }),
            fetching: tokio::sync::Mutex::new(()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_secs()
    }

    fn is_static(&self) -> bool {
        matches!(self.source, KeySource::Pem(_))
    }

    /// How many times the JWKS was fetched (for tests and metrics).
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn current(&self) -> Arc<Verifier> {
        match self.state.read() {
            Ok(s) => s.verifier.clone(),
            Err(poisoned) => poisoned.into_inner().verifier.clone(),
        }
    }

    /// Whether the cached set is old enough that a background refresh should start (and
    /// marks it as started, so only one does).
    pub(crate) fn claim_background_refresh(&self) -> bool {
        if self.is_static() {
            return false;
        }
        let now = self.clock.now_secs();
        let due = |s: &State| !s.refreshing && s.fetched_at.is_some_and(|t| now - t >= REFRESH_SECS);
        // The read lock answers nearly every request; the write lock only claims the refresh.
        if !self.state.read().map(|s| due(&s)).unwrap_or(false) {
            return false;
        }
        let Ok(mut s) = self.state.write() else {
            return false;
        };
        if due(&s) {
            s.refreshing = true;
            true
        } else {
            false
        }
    }

    /// Fetches for a token whose `kid` is unknown, unless one was fetched in the last 30
    /// seconds. Returns the `kid`s the fetch removed, if it happened.
    pub(crate) async fn refresh_for_unknown_kid(&self, kid: &str) -> Option<Vec<String>> {
        if self.is_static() {
            return None;
        }
        let _one_at_a_time = self.fetching.lock().await;
        {
            let s = self.state.read().ok()?;
            if s.verifier.has_key(kid) {
                return None;
            }
            let now = self.clock.now_secs();
            if s.last_unknown_fetch.is_some_and(|t| now - t < UNKNOWN_KID_REFETCH_SECS) {
                return None;
            }
        }
        if let Ok(mut s) = self.state.write() {
            s.last_unknown_fetch = Some(self.clock.now_secs());
        }
        self.fetch_locked().await
    }

    /// A refresh (background or first use); returns the `kid`s that disappeared.
    pub(crate) async fn refresh(&self) -> Option<Vec<String>> {
        if self.is_static() {
            return None;
        }
        let _one_at_a_time = self.fetching.lock().await;
        self.fetch_locked().await
    }

    /// Fetches the JWKS (discovering its URL first if needed) and swaps it in; on failure
    /// the cached keys stay.
    async fn fetch_locked(&self) -> Option<Vec<String>> {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = self.fetch_jwks().await;
        let Ok(mut s) = self.state.write() else {
            return None;
        };
        s.refreshing = false;
        match result {
            Ok((url, jwks)) => {
                let keys: Vec<PublicKey> = jwks.keys.iter().filter_map(|k| k.to_public_key().ok()).collect();
                let new = Verifier::new(keys, self.options.clone());
                let removed: Vec<String> = s.verifier.kids().into_iter().filter(|k| !new.has_key(k)).collect();
                s.verifier = Arc::new(new);
                s.fetched_at = Some(self.clock.now_secs());
                s.jwks_url = Some(url);
                Some(removed)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the session-token keys; keeping the cached ones");
                None
            }
        }
    }

    async fn fetch_jwks(&self) -> Result<(String, Jwks), KeyError> {
        let known = self.state.read().ok().and_then(|s| s.jwks_url.clone());
        let url = match (known, &self.source) {
            (Some(u), _) => u,
            (None, KeySource::Issuer(issuer)) => self.discover(issuer).await?,
            (None, KeySource::JwksUrl(u)) => u.clone(),
            (None, KeySource::Pem(_)) => return Err(KeyError::Fetch("no JWKS for a PEM key".into())),
        };
        let res = self.http.get(&url).send().await.map_err(|e| KeyError::Fetch(e.to_string()))?;
        if !res.status().is_success() {
            return Err(KeyError::Fetch(format!("{url} answered {}", res.status())));
        }
        let jwks: Jwks = res.json().await.map_err(|e| KeyError::Fetch(format!("{url}: {e}")))?;
        Ok((url, jwks))
    }

    async fn discover(&self, issuer: &str) -> Result<String, KeyError> {
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let res = self.http.get(&url).send().await.map_err(|e| KeyError::Fetch(e.to_string()))?;
        if !res.status().is_success() {
            return Err(KeyError::Fetch(format!("{url} answered {}", res.status())));
        }
        let doc: serde_json::Value = res.json().await.map_err(|e| KeyError::Fetch(format!("{url}: {e}")))?;
        let jwks = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| KeyError::Fetch(format!("{url} has no jwks_uri")))?;
        let parsed = url::Url::parse(jwks).map_err(|_| KeyError::Fetch(format!("jwks_uri {jwks:?} is not a URL")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(KeyError::Fetch(format!("jwks_uri {jwks:?} is not http(s)")));
        }
        Ok(jwks.to_owned())
    }
}
