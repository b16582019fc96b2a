//! The application layer: every flow of latchkey (sign-up, sign-in, sessions, tokens, account
//! changes, administration) as one function that the Frontend API, the hosted pages and the
//! CLI all call, so the doors never disagree. Orchestrates the store, the password hasher,
//! the mailer and the key manager; the rules themselves live in `latchkey-core`.
//!
//! One service per feature, each over a narrow view of the store, composed by [`Services::new`]
//! (which the binary calls, handing each service to the HTTP layer):
//!
//! - [`Services`]: identity — clients, sign-up, sign-in, sessions and their tokens, JWT
//!   templates, tickets, signing and secret keys — over `IdentityStore`, one file each under
//!   `identity/`;
//! - [`account::AccountService`]: a signed-in user's own account, over `PeopleStore`;
//! - [`admin::AdminService`]: users, their email addresses and phone numbers, and sessions as
//!   the Backend API and the CLI administer them, over `PeopleStore`, one file each under
//!   `admin/`;
//! - [`orgs::OrgService`]: organizations, memberships, invitations and roles, over `OrgStore`,
//!   one file each under `orgs/`; identity asks it for the organization claims of tokens;
//! - [`sync::SyncService`]: offline-first sync (push, pull, live events) over `SyncStore`,
//!   seeing identity only through [`sync::SyncDirectory`] (which `Services` implements);
//! - [`webhooks::WebhookService`]: webhook endpoints, deliveries and the delivery worker, over
//!   `WebhookStore`.
//!
//! What several services share is a value of its own: [`users::Users`] (reading users, the
//! events of their changes, new sessions and clients, revoking sessions),
//! [`webhooks::Events`] (stamping events), [`mail::Postman`] (mail and `email.created`),
//! `attempts::Budgets` (budgets against guessing and abuse) and the in-memory rate limits.
//! [`authority`] holds the proofs that actions take; [`keys`], [`templates`], [`handshake`]:
//! signing keys, JWT templates, the handshake of server-rendered apps; [`resources`]: resource
//! JSON as Clerk's APIs show it; [`mail`], [`hasher`], [`kek`], [`error`]: mail, password
//! hashing, key sealing, errors.
//!
//! The store is private to this crate: the HTTP layer and the CLI reach it only through the
//! services' methods (such as [`Services::readiness`]).

pub mod account;
pub mod admin;
pub mod attempts;
pub mod authority;
pub mod error;
pub mod external_accounts;
pub mod handshake;
pub mod hasher;
pub mod identity;
pub mod kek;
pub mod keys;
pub mod limits;
pub(crate) use limits::Limits;
pub mod mail;
pub mod oauth;
pub mod orgs;
pub mod params;
pub mod passkeys;
pub mod resources;
pub mod revocations;
pub mod second_factors;
pub mod sync;
pub mod telemetry;
pub mod templates;
pub mod tickets;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::session::SessionPolicy;
use latchkey_core::{ids, Clock, Random};
use latchkey_store::Store;

pub use authority::{FeedReader, Operator, OrgAccess, Reverified, SignedIn};
pub use error::{ErrorKind, Result, ServiceError};
pub use hasher::{Argon2Hasher, HashParams, PasswordHasher};
pub use identity::{
    session_activity, CallbackOutcome, CallbackParams, ClientView, ConnectionStart, GeoIp, NewPassword, Place,
    SessionActivity, SignInInput, SignUpInput, CALLBACK_PATH,
};
pub use keys::KeyManager;
pub use mail::{DevMailSink, MailMessage, Mailer};

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The public URL of this instance: the token `iss`.
    pub issuer: String,
    pub app_name: String,
    pub session: SessionPolicy,
    /// Unknown identifiers and taken emails are not revealed (docs/security-baseline.md §10).
    pub enumeration_protection: bool,
    /// People may delete their own accounts (Clerk's `delete_self`; docs/account-data.md).
    pub delete_self_enabled: bool,
    pub token_ttl_secs: i64,
    pub rate_limits: RateLimitConfig,
    pub organizations: orgs::OrganizationConfig,
    /// `ins_…`: named in every webhook payload.
    pub instance_id: String,
    /// The identity providers of `[oauth.<key>]`, checked.
    pub oauth: Vec<oauth::Provider>,
    /// Whether second factors are off, optional or required (`[second_factors]`).
    pub second_factors: second_factors::Policy,
    /// Which flows offer email links (`[email_links]`, docs/email-links.md).
    pub email_links: identity::EmailLinkConfig,
    /// Passkeys (`[passkeys]`, docs/passkeys.md), checked against the instance's origins.
    pub passkeys: passkeys::PasskeySettings,
    /// Certificates trusted beside the system's roots when calling identity providers.
    pub extra_roots: latchkey_core::tls::ExtraRoots,
    /// Where sessions' addresses are (`geoip_database`), for their activity; `None`: nowhere.
    pub geoip: Option<Arc<GeoIp>>,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Requests per minute from one IP address, per action.
    pub per_ip_per_minute: u32,
    /// Attempts per minute against one identifier (email or username).
    pub per_identifier_per_minute: u32,
    /// One-time codes mailed to one address per hour.
    pub codes_per_address_per_hour: u32,
    /// Wrong codes accepted per address (and account) per day, across re-issued codes.
    pub code_failures_per_address_per_day: u32,
    /// Mail that one signed-in user's requests make latchkey send per hour.
    pub mail_per_user_per_hour: u32,
    /// Mail that requests from one IP address (an IPv6 /64) make latchkey send per hour.
    pub mail_per_ip_per_hour: u32,
    /// New clients (stored per browser or device) one IP address (an IPv6 /64) may make per hour.
    pub clients_per_ip_per_hour: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip_per_minute: 30,
            per_identifier_per_minute: 10,
            codes_per_address_per_hour: 10,
            code_failures_per_address_per_day: 20,
            mail_per_user_per_hour: 20,
            mail_per_ip_per_hour: 100,
            clients_per_ip_per_hour: 100,
        }
    }
}

/// How much more a wider IPv6 prefix may spend than one /64: a /48 (a site) gets this many
/// /64s' budgets.
pub const SITE_BUDGET_FACTOR: u32 = 8;

/// The keys per-IP limits count under, each with the factor of the budget it gets: an IPv4
/// address (×1); for IPv6 its /64 (×1: one host commonly owns a whole /64, so counting single
/// addresses counts nothing) and its /48 (×[`SITE_BUDGET_FACTOR`], so that rotating through
/// /64s of one site runs out too).
pub fn ip_keys(ip: &str) -> Vec<(String, u32)> {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => vec![(v4.to_string(), 1)],
            None => {
                let s = v6.segments();
                vec![
                    (format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]), 1),
                    (format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]), SITE_BUDGET_FACTOR),
                ]
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => vec![(v4.to_string(), 1)],
        Err(_) => vec![(ip.to_owned(), 1)],
    }
}

/// What the HTTP layer knows about a request.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: String,
    /// The `Origin` of the request when it is an allowed one (becomes `azp`).
    pub origin: Option<String>,
    /// The `User-Agent` the request came with, to tell the owner which browser changed what.
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    SignIn,
    SignUp,
    Verify,
    PasswordChange,
}

/// Adds `extra_roots` to a client's trust, beside the system's roots (docs/tls.md). The blocks
/// were checked when the file was read; one reqwest cannot parse is left out and logged.
pub fn trust_extra_roots(
    mut builder: reqwest::ClientBuilder,
    extra_roots: &latchkey_core::tls::ExtraRoots,
) -> reqwest::ClientBuilder {
    for pem in extra_roots.pem_blocks() {
        match reqwest::Certificate::from_pem(pem.as_bytes()) {
            Ok(cert) => builder = builder.add_root_certificate(cert),
            Err(e) => tracing::warn!(error = %e, "a certificate of extra_ca_file is not usable"),
        }
    }
    builder
}

pub struct Services {
    /// Identity's view of the store; private to this crate: the HTTP handlers and the CLI reach
    /// the store through methods.
    pub(crate) store: Arc<dyn latchkey_store::IdentityStore>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub mailer: Arc<dyn Mailer>,
    keys: Arc<KeyManager>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    pub config: ServiceConfig,
    code_key: Vec<u8>,
    limits: Arc<Limits>,
    /// Where the request limits' cells live, for the other services that limit requests.
    limit_cells: limits::LimitCells,
    /// What `/metrics` reports besides HTTP; shared with the sync and webhook services.
    telemetry: Arc<telemetry::Telemetry>,
    budgets: attempts::Budgets,
    postman: mail::Postman,
    /// Users and their sessions, shared with the account and administration services.
    users: Arc<users::Users>,
    account: Arc<account::AccountService>,
    admin: Arc<admin::AdminService>,
    /// Organizations: a service of its own, which identity asks for the claims of tokens.
    orgs: Arc<orgs::OrgService>,
    /// Identity providers' endpoints and keys (cached), for sign-in with a provider.
    providers: Arc<oauth::client::ProviderClient>,
    /// Second factors: the sign-in's second step and reverification check codes with it.
    factors: Arc<second_factors::Factors>,
    /// Passkeys: sign-in and reverification check answers with it.
    passkeys: Arc<passkeys::Passkeys>,
    /// What verifiers must refuse before tokens expire (docs/revocations.md).
    pub revocations: Arc<revocations::RevocationFeed>,
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
        let cells = limits::LimitCells::for_database(store.clone(), config.rate_limits.enabled, code_key.clone());
        let limits = Arc::new(Limits::new(&config.rate_limits, &cells));
        let providers = Arc::new(oauth::client::ProviderClient::new(&config.extra_roots));
        let throttle: Arc<dyn latchkey_store::ThrottleStore> = store.clone();
        let budgets = attempts::Budgets::new(throttle, code_key.clone(), config.rate_limits.clone(), clock.clone());
        let events =
            webhooks::Events::new(clock.clone(), rng.clone(), config.instance_id.clone(), config.token_ttl_secs);
        let telemetry = Arc::new(telemetry::Telemetry::default());
        let postman = mail::Postman::new(mailer.clone(), store.clone(), events.clone(), telemetry.clone());
        let users = Arc::new(users::Users::new(store.clone(), events.clone(), rng.clone(), config.clone()));
        // Each feature's service, over the view of the store it needs.
        let factors = Arc::new(second_factors::Factors {
            users: users.clone(),
            store: store.clone(),
            keys: keys.clone(),
            events: events.clone(),
            rng: rng.clone(),
            code_key: code_key.clone(),
            app_name: config.app_name.clone(),
        });
        let passkeys = Arc::new(passkeys::Passkeys {
            settings: config.passkeys.clone(),
            users: users.clone(),
            store: store.clone(),
            events: events.clone(),
            rng: rng.clone(),
        });
        let account = Arc::new(account::AccountService {
            factors: factors.clone(),
            passkeys: passkeys.clone(),
            users: users.clone(),
            store: store.clone(),
            hasher: hasher.clone(),
            budgets: budgets.clone(),
            limits: limits.clone(),
            postman: postman.clone(),
            events: events.clone(),
            rng: rng.clone(),
            code_key: code_key.clone(),
            config: config.clone(),
        });
        let orgs = Arc::new(orgs::OrgService {
            store: store.clone(),
            rng: rng.clone(),
            events: events.clone(),
            postman: postman.clone(),
            budgets: budgets.clone(),
            roles: orgs::RoleSnapshot::configured(&config),
            config: config.clone(),
        });
        let admin = Arc::new(admin::AdminService {
            factors: factors.clone(),
            passkeys: passkeys.clone(),
            postman: postman.clone(),
            users: users.clone(),
            store: store.clone(),
            hasher: hasher.clone(),
            orgs: orgs.clone(),
            events: events.clone(),
            config: config.clone(),
        });
        let revocation_store: Arc<dyn latchkey_store::RevocationStore> = store.clone();
        let revocations = revocations::RevocationFeed::new(revocation_store, clock.clone());
        Self {
            store: store.clone(),
            hasher,
            mailer,
            keys,
            clock,
            rng,
            config,
            code_key,
            limits,
            limit_cells: cells,
            telemetry,
            budgets,
            postman,
            users,
            account,
            admin,
            orgs,
            providers,
            factors,
            passkeys,
            revocations,
        }
    }

    /// Users and their sessions as every service reads them.
    pub fn users(&self) -> &Arc<users::Users> {
        &self.users
    }

    /// A signed-in user's own account (the binary hands it to the HTTP layer).
    pub fn account(&self) -> &Arc<account::AccountService> {
        &self.account
    }

    /// Administration of users and sessions (the binary hands it to the HTTP layer and the CLI).
    pub fn admin(&self) -> &Arc<admin::AdminService> {
        &self.admin
    }

    /// The organization service (the binary hands it to the HTTP layer).
    pub fn orgs(&self) -> &Arc<orgs::OrgService> {
        &self.orgs
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn new_id(&self, kind: ids::IdKind) -> String {
        ids::new_id(kind, self.now(), self.rng.as_ref())
    }

    /// Whether the database answers: the readiness probe and the metrics' `up`.
    pub async fn readiness(&self) -> std::result::Result<(), latchkey_store::StoreError> {
        self.store.ping().await
    }

    /// The counters `/metrics` renders; the sync and webhook services count into them too.
    pub fn telemetry(&self) -> &Arc<telemetry::Telemetry> {
        &self.telemetry
    }

    /// Where the request limits' cells live: sync's push limit keeps its own there too.
    pub fn limit_cells(&self) -> &limits::LimitCells {
        &self.limit_cells
    }

    /// The database in use (`postgres` or `sqlite`).
    pub fn database_backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Applies the per-IP limit of `action`.
    pub async fn limit_ip(&self, action: Action, ctx: &RequestContext) -> Result<()> {
        self.limits.ip(action, ctx, self.now()).await
    }

    /// Applies the per-identifier limit (keyed even when no account has that identifier).
    pub async fn limit_identifier(&self, identifier: &str) -> Result<()> {
        self.limits.identifier(identifier, self.now()).await
    }

    /// Applies the per-account limit of checks by the account's own session.
    pub async fn limit_account(&self, user_id: &str) -> Result<()> {
        self.limits.account(user_id, self.now()).await
    }

    /// How many messages [`Services::send_mail`] has accepted that the mailer has not finished
    /// with (sent, kept in the development sink, or failed). Zero means every message asked
    /// for so far has been handled: tests wait for that instead of guessing a delay.
    pub fn mail_in_flight(&self) -> usize {
        self.postman.in_flight()
    }

    /// Sends mail in the background (see [`mail::Postman::send`]).
    pub fn send_mail(&self, to: &str, subject: &str, text: String) {
        self.postman.send(to, subject, text)
    }
}
