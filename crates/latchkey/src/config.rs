//! Configuration layers: defaults → `latchkey.toml` (or `--config`) → `LATCHKEY_*` environment
//! (nested keys with `__`, e.g. `LATCHKEY_RATE_LIMITS__ENABLED=false`) → command-line flags.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use latchkey_core::secret::ConfigSecret;
use latchkey_service::mail::SmtpConfig;
use latchkey_service::orgs::OrganizationConfig;
use latchkey_service::sync::SyncConfig;
use latchkey_service::RateLimitConfig;
use serde::{Deserialize, Serialize};

/// The example `latchkey default-config` prints, in a module of its own.
pub use crate::example_config::EXAMPLE;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL browsers and SDKs use to reach latchkey (token issuer). Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// `sqlite://path` (default `sqlite://./data/latchkey.db`) or `postgres://…`.
    pub database_url: DatabaseUrl,
    /// Where SQLite and the generated key-encryption key live.
    pub data_dir: PathBuf,
    /// Development mode (mail sink at /dev/mail, webhooks to loopback, cookies without
    /// `Secure`). Default: on when the public URL is `http://` on a loopback host. Never on
    /// with an `https://` public URL, whatever is set (see [`Config::mode`]).
    pub dev_mode: Option<bool>,
    pub app_name: String,
    /// Origins (scheme://host:port) of the apps that use latchkey: CORS, CSRF, azp, redirects.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For is trusted.
    pub trusted_proxies: Vec<IpAddr>,
    /// How many proxies in front of latchkey append to X-Forwarded-For: the client is that
    /// many addresses from the right (not counting the trusted proxies' own addresses).
    pub forwarded_hops: usize,
    /// Hide whether an account exists (docs/security-baseline.md §10). Clerk's default is off.
    pub enumeration_protection: bool,
    /// People may delete their own accounts (`DELETE /v1/me`, docs/account-data.md). Clerk's
    /// default is on.
    pub delete_self_enabled: bool,
    pub session_lifetime_days: i64,
    /// End sessions idle this long; 0 disables the idle limit.
    pub session_inactivity_minutes: i64,
    pub request_timeout_secs: u64,
    /// On SIGTERM: how long `/readyz` says 503 while requests are still served, so a load
    /// balancer stops sending new ones first (its health-check interval times its threshold).
    pub shutdown_delay_secs: u64,
    /// Then: how long requests in flight may take to finish before the process exits anyway.
    pub shutdown_timeout_secs: u64,
    pub body_limit_bytes: usize,
    /// Password-hashing threads (each hash takes 19 MiB); default: one per CPU core.
    pub hash_concurrency: usize,
    pub postgres_max_connections: u32,
    pub rate_limits: RateLimitConfig,
    pub smtp: Option<SmtpConfig>,
    /// PEM certificates trusted beside the system's roots by every outgoing TLS connection
    /// (JWKS, proxy upstreams, SMTP, webhooks, identity providers): a private CA.
    pub extra_ca_file: Option<PathBuf>,
    /// A MaxMind-format city database (GeoLite2-City.mmdb): sessions' activity then names
    /// the city and country of their address. Read once at start; nothing is sent anywhere.
    pub geoip_database: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: String,
    /// Organizations, roles and permissions (`[organizations]`, `[[organizations.roles]]`).
    pub organizations: OrganizationConfig,
    /// Offline-first sync: limits and tables (`[sync]`, `[sync.tables.<name>]`).
    pub sync: SyncConfig,
    /// Webhook delivery (`[webhooks]`): address policy, timeouts, rotation overlap.
    pub webhooks: latchkey_service::webhooks::WebhookConfig,
    /// Identity providers people sign in with (`[oauth.<key>]`, docs/identity-providers.md).
    pub oauth: latchkey_service::oauth::OAuthConfig,
    /// Second factors (`[second_factors]`, docs/second-factors.md): `policy` is `off`,
    /// `optional` (default) or `required`.
    pub second_factors: latchkey_service::second_factors::SecondFactorConfig,
    /// Email links (`[email_links]`, docs/email-links.md): for sign-ins (default on), for
    /// sign-ups instead of codes (default off), and whether a link must be opened in the
    /// browser that asked.
    pub email_links: latchkey_service::identity::EmailLinkConfig,
    /// Passkeys (`[passkeys]`, docs/passkeys.md): off by default; the relying-party id is the
    /// public URL's host unless `rp_id` names a parent domain.
    pub passkeys: latchkey_service::passkeys::PasskeyConfig,
    /// `/metrics` for whoever sends `Authorization: Bearer <token>` (at least 32 characters).
    pub metrics_token: Option<ConfigSecret>,
    /// Serve `/metrics` (without a token) on this address only, e.g. `127.0.0.1:9464`.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
            public_url: None,
            database_url: DatabaseUrl("sqlite://./data/latchkey.db".into()),
            data_dir: PathBuf::from("./data"),
            dev_mode: None,
            app_name: "latchkey".into(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            forwarded_hops: 1,
            enumeration_protection: true,
            delete_self_enabled: true,
            session_lifetime_days: 7,
            session_inactivity_minutes: 0,
            request_timeout_secs: 30,
            shutdown_delay_secs: 0,
            shutdown_timeout_secs: 30,
            body_limit_bytes: 64 * 1024,
            hash_concurrency: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            postgres_max_connections: 16,
            rate_limits: RateLimitConfig::default(),
            smtp: None,
            extra_ca_file: None,
            geoip_database: None,
            log_format: "text".into(),
            organizations: OrganizationConfig::default(),
            sync: SyncConfig::default(),
            webhooks: Default::default(),
            oauth: Default::default(),
            second_factors: Default::default(),
            email_links: Default::default(),
            passkeys: Default::default(),
            metrics_token: None,
            metrics_listen: None,
        }
    }
}

const ENV_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "database_url",
    "data_dir",
    "dev_mode",
    "app_name",
    "allowed_origins",
    "trusted_proxies",
    "forwarded_hops",
    "enumeration_protection",
    "delete_self_enabled",
    "session_lifetime_days",
    "session_inactivity_minutes",
    "request_timeout_secs",
    "shutdown_delay_secs",
    "shutdown_timeout_secs",
    "body_limit_bytes",
    "hash_concurrency",
    "postgres_max_connections",
    "rate_limits",
    "smtp",
    "extra_ca_file",
    "geoip_database",
    "log_format",
    "organizations",
    "sync",
    "webhooks",
    "oauth",
    "second_factors",
    "email_links",
    "passkeys",
    "metrics_token",
    "metrics_listen",
];

impl Config {
    /// Loads the layers; `file` defaults to `latchkey.toml` in the working directory, if present.
    pub fn load(file: Option<&PathBuf>, overrides: &Overrides) -> Result<Self, Box<figment::Error>> {
        let path = file.cloned().unwrap_or_else(|| PathBuf::from("latchkey.toml"));
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if path.exists() || file.is_some() {
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(
            Env::prefixed("LATCHKEY_")
                .filter(|k| {
                    let key = k.as_str().to_ascii_lowercase();
                    ENV_KEYS.iter().any(|known| key.split("__").next() == Some(*known))
                })
                .split("__"),
        );
        fig = fig.merge(Serialized::defaults(overrides));
        fig.extract().map_err(Box::new)
    }

    /// Whether development mode is on. It follows the public URL, never the listen address:
    /// latchkey behind a reverse proxy listens on loopback while the world reaches it.
    pub fn dev_mode(&self) -> bool {
        self.mode_at(self.listen).development
    }

    /// Development or production mode of a server bound at `bound`, and why (the start-up
    /// banner says both).
    pub fn mode_at(&self, bound: SocketAddr) -> Mode {
        let url = self.public_url_for(bound);
        let parsed = url::Url::parse(&url).ok();
        let scheme = parsed.as_ref().map_or("", |u| u.scheme()).to_owned();
        let loopback = parsed.as_ref().is_some_and(|u| match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        });
        let (development, reason) = match (scheme.as_str(), self.dev_mode, loopback) {
            ("http", Some(true), _) => (true, "dev_mode = true".to_owned()),
            ("http", Some(false), _) => (false, "dev_mode = false".to_owned()),
            ("http", None, true) => (true, format!("the public URL {url} is http:// on a loopback host")),
            (_, Some(true), _) => (false, format!("dev_mode = true is ignored: the public URL {url} is not http://")),
            _ => (false, format!("the public URL {url} is not http:// on a loopback host")),
        };
        Mode { development, reason }
    }

    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// Who may read `/metrics` on the main listener: a token if one is set, nobody when metrics
    /// have their own listener, anyone only in development mode.
    pub fn metrics_access(&self) -> anyhow::Result<latchkey_api::MetricsAccess> {
        use latchkey_api::MetricsAccess;
        match (&self.metrics_token, self.metrics_listen) {
            (Some(t), _) if t.expose().chars().count() < 32 => {
                Err(anyhow::anyhow!("metrics_token must be at least 32 characters (a random secret)"))
            }
            (Some(t), _) => Ok(MetricsAccess::Token(t.expose().to_owned())),
            (None, Some(_)) => Ok(MetricsAccess::Closed),
            (None, None) if self.dev_mode() => Ok(MetricsAccess::Open),
            (None, None) => Ok(MetricsAccess::Closed),
        }
    }

    /// The certificates of `extra_ca_file` (crate::trust).
    pub fn extra_roots(&self) -> anyhow::Result<latchkey_core::tls::ExtraRoots> {
        crate::trust::read_extra_roots(self.extra_ca_file.as_deref())
    }

    /// The database of `geoip_database`, opened (an unreadable one stops the start).
    pub fn geoip(&self) -> anyhow::Result<Option<std::sync::Arc<latchkey_service::GeoIp>>> {
        let Some(path) = &self.geoip_database else { return Ok(None) };
        latchkey_service::GeoIp::open(path).map(|g| Some(std::sync::Arc::new(g))).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The database URL with any password hidden, for messages.
    pub fn redacted_database_url(&self) -> String {
        self.database_url.redacted()
    }
}

/// The database URL: it may hold a password, which `Debug` never shows.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// The URL with any password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// Whether a database URL carries a password.
pub fn url_has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_some_and(|p| !p.is_empty()))
}

/// Development or production, with the reason, for the start-up banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    pub development: bool,
    pub reason: String,
}

/// Flags that override every other layer (only those given).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::result_large_err)]
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "latchkey.toml",
                "listen = \"127.0.0.1:5000\"\napp_name = \"from file\"\n[rate_limits]\nper_ip_per_minute = 7\n",
            )?;
            jail.set_env("LATCHKEY_APP_NAME", "from env");
            jail.set_env("LATCHKEY_RATE_LIMITS__ENABLED", "false");
            jail.set_env("LATCHKEY_WEBHOOKS__TIMEOUT_SECS", "3");
            jail.set_env("LATCHKEY_KEK", "not a config key");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.listen.port(), 5000);
            assert_eq!(c.app_name, "from env");
            assert!(!c.rate_limits.enabled);
            assert_eq!(c.webhooks.timeout_secs, 3);
            assert_eq!(c.rate_limits.per_ip_per_minute, 7);
            let flags = Overrides { listen: Some("127.0.0.1:6000".parse().unwrap()), ..Overrides::default() };
            assert_eq!(Config::load(None, &flags).unwrap().listen.port(), 6000, "flags win");
            jail.set_env("LATCHKEY_LISTEN", "not an address");
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn unknown_file_keys_are_refused_and_the_example_parses() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("latchkey.toml", EXAMPLE)?;
            Config::load(None, &Overrides::default()).unwrap();
            jail.create_file("latchkey.toml", "lisen = \"127.0.0.1:1\"\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err(), "typos are errors");
            Ok(())
        });
    }

    #[test]
    fn sync_tables_come_from_the_file_and_bad_ones_are_named() {
        figment::Jail::expect_with(|jail| {
            // The commented table at the end of the example, uncommented.
            let (head, tail) = EXAMPLE.split_once("\n# [sync.tables").unwrap();
            let example = format!("{head}\n[sync.tables{}", tail.replace("\n# ", "\n"));
            jail.create_file("latchkey.toml", &example)?;
            let tables = Config::load(None, &Overrides::default()).unwrap().sync.all_tables().unwrap();
            assert!(["babies", "feeds", "sleeps", "diapers", "notes", "invoices"]
                .iter()
                .all(|t| tables.contains_key(*t)));
            assert_eq!(tables["invoices"].fields.len(), 7);
            jail.create_file("latchkey.toml", "[sync.tables.feeds.fields]\nx = { type = \"string\" }\n")?;
            let error = Config::load(None, &Overrides::default()).unwrap().sync.all_tables().unwrap_err();
            assert!(error.contains("one of BabyLog's"), "{error}");
            jail.create_file(
                "latchkey.toml",
                "[sync.tables.a.fields]\nx = { type = \"reference\", table = \"nope\" }\n",
            )?;
            let error = Config::load(None, &Overrides::default()).unwrap().sync.all_tables().unwrap_err();
            assert!(error.contains("unknown table `nope`"), "{error}");
            jail.create_file("latchkey.toml", "[sync.tables.a.fields]\nx = { type = \"colour\" }\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err(), "unknown field types are refused");
            jail.create_file("latchkey.toml", "[sync]\nmin_schema_version = 3\n")?;
            let error = Config::load(None, &Overrides::default()).unwrap().sync.all_tables().unwrap_err();
            assert!(error.contains("min_schema_version"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn organization_roles_come_from_the_file_and_bad_ones_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "latchkey.toml",
                "[organizations]\npermissions = [\"org:invoices:create\"]\n[[organizations.roles]]\nkey = \"billing\"\npermissions = [\"org:invoices:read\"]\n",
            )?;
            let roles = Config::load(None, &Overrides::default()).unwrap().organizations.roles().unwrap();
            assert_eq!(
                roles.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
                ["org:admin", "org:member", "org:billing"]
            );
            jail.create_file("latchkey.toml", "[[organizations.roles]]\nkey = \"Bad Role\"\n")?;
            let error = Config::load(None, &Overrides::default()).unwrap().organizations.roles().unwrap_err();
            assert!(error.contains("Bad Role"), "{error}");
            jail.create_file("latchkey.toml", "[organizations]\ndefault_role = \"org:ghost\"\n")?;
            let error = Config::load(None, &Overrides::default()).unwrap().organizations.roles().unwrap_err();
            assert!(error.contains("org:ghost"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn development_mode_follows_the_public_url_never_the_listen_address() {
        let with = |listen: &str, public_url: Option<&str>, dev_mode: Option<bool>| Config {
            listen: listen.parse().unwrap(),
            public_url: public_url.map(str::to_owned),
            dev_mode,
            ..Config::default()
        };
        assert!(with("127.0.0.1:4000", None, None).dev_mode(), "the quick start is development");
        assert!(with("127.0.0.1:4000", Some("http://localhost:3000"), None).dev_mode());
        assert!(with("0.0.0.0:4000", Some("http://[::1]:4000"), None).dev_mode());
        // Behind a reverse proxy: loopback listen address, public https URL.
        let proxied = with("127.0.0.1:4000", Some("https://auth.example.com"), None);
        assert!(!proxied.dev_mode());
        assert!(
            proxied.mode_at(proxied.listen).reason.contains("https://auth.example.com"),
            "{:?}",
            proxied.mode_at(proxied.listen)
        );
        let forced = with("127.0.0.1:4000", Some("https://auth.example.com"), Some(true));
        assert!(!forced.dev_mode(), "https:// turns development mode off whatever is set");
        assert!(forced.mode_at(forced.listen).reason.contains("ignored"), "{:?}", forced.mode_at(forced.listen));
        assert!(!with("127.0.0.1:4000", Some("http://auth.example.com"), None).dev_mode());
        assert!(with("10.0.0.5:4000", Some("http://10.0.0.5:4000"), Some(true)).dev_mode(), "explicitly, on a LAN");
        assert!(!with("127.0.0.1:4000", None, Some(false)).dev_mode());
        assert!(!with("0.0.0.0:4000", None, None).dev_mode(), "http://0.0.0.0 is not loopback");
    }

    #[test]
    fn database_passwords_are_redacted() {
        let c = Config { database_url: DatabaseUrl("postgres://u:secret@db/x".into()), ..Config::default() };
        assert_eq!(c.redacted_database_url(), "postgres://u:***@db/x");
    }

    #[test]
    fn debug_never_shows_a_secret_of_the_configuration() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "latchkey.toml",
                "database_url = \"postgres://u:db-secret@db/x\"\nmetrics_token = \"metrics-secret-0123456789abcdef0123\"\n\
                 [smtp]\nhost = \"smtp.example.com\"\nusername = \"u\"\npassword = \"smtp-secret\"\nfrom = \"a@example.com\"\n",
            )?;
            let c = Config::load(None, &Overrides::default()).unwrap();
            let shown = format!("{c:?}");
            for secret in ["db-secret", "metrics-secret", "smtp-secret"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert_eq!(c.smtp.as_ref().and_then(|s| s.password.as_ref()).map(|p| p.expose()), Some("smtp-secret"));
            assert_eq!(&*c.database_url, "postgres://u:db-secret@db/x");
            Ok(())
        });
    }
}
