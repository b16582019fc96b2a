//! The application layer: every flow of latchkey (sign-up, sign-in, sessions, tokens, account
//! changes, administration) as one function that the Frontend API, the hosted pages and the
//! CLI all call, so the doors never disagree. Orchestrates the store, the password hasher,
//! the mailer and the key manager; the rules themselves live in `latchkey-core`.

pub mod account;
pub mod admin;
pub mod error;
pub mod handshake;
pub mod hasher;
pub mod identity;
pub mod kek;
pub mod keys;
pub mod mail;
pub mod orgs;
pub mod resources;
pub mod sync;
pub mod templates;
pub mod tickets;
pub mod webhooks;

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::ratelimit::RateLimiter;
use latchkey_core::session::SessionPolicy;
use latchkey_core::{ids, Clock, Random};
use latchkey_store::Store;

pub use error::{ErrorKind, Result, ServiceError};
pub use hasher::{Argon2Hasher, HashParams, PasswordHasher};
pub use identity::{ClientView, SignInInput, SignUpInput};
pub use keys::KeyManager;
pub use mail::{DevMailSink, MailMessage, Mailer};

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The public URL of this instance: the token `iss`.
    pub issuer: String,
    pub app_name: String,
    pub session: SessionPolicy,
    /// Unknown identifiers and taken emails are not revealed (security.md §2.10).
    pub enumeration_protection: bool,
    pub token_ttl_secs: i64,
    pub rate_limits: RateLimitConfig,
    pub organizations: orgs::OrganizationConfig,
    pub sync: sync::SyncConfig,
    /// `[webhooks]`, with development-mode defaults resolved.
    pub webhooks: webhooks::WebhookConfig,
    /// `ins_…`: named in every webhook payload.
    pub instance_id: String,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Requests per minute from one IP address, per action.
    pub per_ip_per_minute: u32,
    /// Attempts per minute against one identifier (email or username).
    pub per_identifier_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { enabled: true, per_ip_per_minute: 30, per_identifier_per_minute: 10 }
    }
}

/// What the HTTP layer knows about a request.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: String,
    /// The `Origin` of the request when it is an allowed one (becomes `azp`).
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    SignIn,
    SignUp,
    Verify,
    PasswordChange,
}

struct Limits {
    enabled: bool,
    by_ip: [RateLimiter; 4],
    by_identifier: RateLimiter,
}

impl Limits {
    fn new(config: &RateLimitConfig) -> Self {
        let ip = || RateLimiter::new(config.per_ip_per_minute, 60_000);
        Self {
            enabled: config.enabled,
            by_ip: [ip(), ip(), ip(), ip()],
            by_identifier: RateLimiter::new(config.per_identifier_per_minute, 60_000),
        }
    }
}

pub struct Services {
    pub store: Arc<dyn Store>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub mailer: Arc<dyn Mailer>,
    pub keys: Arc<KeyManager>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    pub config: ServiceConfig,
    code_key: Vec<u8>,
    limits: Limits,
    roles: Vec<latchkey_core::authz::Role>,
    sync_tables: sync::Tables,
    pub sync_hub: sync::SyncHub,
}

impl Services {
    /// `code_key` keys the digests of one-time codes; it comes from the instance settings.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        hasher: Arc<dyn PasswordHasher>,
        mailer: Arc<dyn Mailer>,
        keys: Arc<KeyManager>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
        config: ServiceConfig,
        code_key: Vec<u8>,
    ) -> Self {
        let limits = Limits::new(&config.rate_limits);
        // The binary refuses a configuration whose roles are invalid before it gets here;
        // should one slip through, the default roles are the safe choice.
        let roles = config
            .organizations
            .roles()
            .or_else(|_| latchkey_core::authz::instance_roles(&[], &[]))
            .unwrap_or_default();
        // Likewise for the sync tables: none is the safe choice.
        let sync_tables = sync::served_tables(&config.sync);
        let sync_hub = sync::SyncHub::default();
        Self { store, hasher, mailer, keys, clock, rng, config, code_key, limits, roles, sync_tables, sync_hub }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn new_id(&self, kind: ids::IdKind) -> String {
        ids::new_id(kind, self.now(), self.rng.as_ref())
    }

    /// Applies the per-IP limit of `action`.
    pub fn limit_ip(&self, action: Action, ctx: &RequestContext) -> Result<()> {
        if !self.limits.enabled {
            return Ok(());
        }
        let idx = match action {
            Action::SignIn => 0,
            Action::SignUp => 1,
            Action::Verify => 2,
            Action::PasswordChange => 3,
        };
        self.limits.by_ip[idx].check(&ctx.ip, self.now()).map_err(|r| ServiceError::rate_limited(r.0))
    }

    /// Applies the per-identifier limit (keyed even when no account has that identifier).
    pub fn limit_identifier(&self, identifier: &str) -> Result<()> {
        if !self.limits.enabled {
            return Ok(());
        }
        self.limits
            .by_identifier
            .check(&identifier.to_lowercase(), self.now())
            .map_err(|r| ServiceError::rate_limited(r.0))
    }

    /// Sends mail without making the caller wait for (or depend on) the mail server.
    pub fn send_mail(&self, to: &str, subject: &str, text: String) {
        let message = MailMessage {
            id: self.new_id(ids::IdKind::Message),
            to: to.to_owned(),
            subject: subject.to_owned(),
            text,
            created_at: self.now(),
        };
        // `email.created` lets an app send its own mail (clerk-compat.md §9).
        let event = self.event(
            "email.created",
            serde_json::json!({
                "object": "email",
                "id": message.id,
                "to_email_address": message.to,
                "from_email_name": "no-reply",
                "subject": message.subject,
                "body_plain": message.text,
                "status": "queued",
                "delivered_by_clerk": false,
                "created_at": message.created_at,
            }),
        );
        let store = self.store.clone();
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(error) = store.append_events(std::slice::from_ref(&event)).await {
                tracing::warn!(%error, "email.created event not written");
            }
            let (to, id) = (message.to.clone(), message.id.clone());
            if let Err(error) = mailer.send(message).await {
                tracing::warn!(%to, %id, %error, "mail delivery failed");
            }
        });
    }
}
