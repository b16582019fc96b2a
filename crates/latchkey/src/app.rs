//! Opening the database, first-start bootstrap, and assembling the services.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use latchkey_core::ids::IdKind;
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_core::session::{SessionPolicy, DAY_MS};
use latchkey_core::{Clock, OsRandom, Random, SystemClock};
use latchkey_service::kek::Kek;
use latchkey_service::mail::SmtpMailer;
use latchkey_service::sync::{SyncDirectory, SyncService};
use latchkey_service::webhooks::WebhookService;
use latchkey_service::{Argon2Hasher, DevMailSink, HashParams, KeyManager, Mailer, ServiceConfig, Services};
use latchkey_store::{ApiKeyRow, Store, SyncStore, WebhookStore};
use latchkey_token::KeyTiming;

use crate::config::Config;

/// Opens the store named by the URL scheme and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    make_data_dir_private(&config.data_dir)?;
    let url = config.database_url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = latchkey_store_postgres::open(url, config.postgres_max_connections)
            .await
            .map_err(|e| anyhow!("cannot open the PostgreSQL database at {}: {e}", config.redacted_database_url()))?;
        Ok(Arc::new(store))
    } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let file = path.split('?').next().unwrap_or(path);
        if !file.is_empty() && file != ":memory:" {
            if let Some(parent) = Path::new(file).parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)?;
            }
            make_database_files_private(Path::new(file))?;
        }
        let store = latchkey_store_sqlite::open(url)
            .await
            .map_err(|e| anyhow!("cannot open the SQLite database at {url}: {e}"))?;
        Ok(Arc::new(store))
    } else {
        Err(anyhow!("unsupported database URL {:?}: use sqlite://path or postgres://…", config.redacted_database_url()))
    }
}

/// The key-encryption key: `LATCHKEY_KEK`, or a generated 0600 file in the data directory.
pub fn load_kek(config: &Config, rng: &dyn Random) -> anyhow::Result<Kek> {
    if let Ok(text) = std::env::var("LATCHKEY_KEK") {
        return Kek::from_base64(&text).map_err(|e| anyhow!("LATCHKEY_KEK: {e}"));
    }
    let path = config.data_dir.join("kek");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Kek::from_base64(&text).map_err(|e| anyhow!("{}: {e}", path.display()));
    }
    create_private_dir(&config.data_dir)?;
    let mut raw = [0u8; 32];
    rng.fill(&mut raw);
    let text = STANDARD.encode(raw);
    write_private_file(&path, &text)?;
    if !config.database_url.starts_with("sqlite") {
        tracing::warn!(
            "generated a key-encryption key in {}; instances sharing this database need the same LATCHKEY_KEK",
            path.display()
        );
    }
    Kek::from_base64(&text).map_err(|e| anyhow!("{e}"))
}

/// Creates a directory (and its missing parents) readable by this user only (0700).
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).with_context(|| format!("cannot create the directory {}", path.display()))
}

/// An existing data directory that others may read is made 0700 (it holds the generated
/// key-encryption key and, by default, the database). Other directories are left alone.
fn make_data_dir_private(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir) {
            if meta.is_dir() && meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("cannot make {} private", dir.display()))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The SQLite database holds password digests and sealed keys: it is created 0600 before
/// SQLite opens it (SQLite gives its -wal and -shm files the database file's mode), and an
/// existing database, WAL and shared-memory file are brought to 0600.
fn make_database_files_private(file: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !file.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file)
                .with_context(|| format!("cannot create {}", file.display()))?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let path = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot make {} private", path.display()))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

fn write_private_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub struct Built {
    pub services: Arc<Services>,
    pub sync: Arc<SyncService>,
    pub webhooks: Arc<WebhookService>,
    pub instance_id: String,
    /// The secret key made on this first start, shown once.
    pub new_secret_key: Option<String>,
}

/// Assembles the services, creating on first start the instance id, the code key, the first
/// signing key and the first secret key.
pub async fn build(config: &Config, store: Arc<dyn Store>, issuer: &str) -> anyhow::Result<Built> {
    build_with(config, store, issuer, Arc::new(SystemClock), Arc::new(OsRandom), None).await
}

/// Writes the configured organization roles to the database (until roles are managed at run
/// time). Only `latchkey serve` does: a command run with another configuration must not rewrite
/// the roles a fleet serves (docs/organization-roles.md).
pub async fn seed_roles(built: &Built) -> anyhow::Result<()> {
    built.services.orgs().seed_roles().await?;
    Ok(())
}

/// [`build`] with the clock, randomness and (optionally) the mailer chosen by the caller.
pub async fn build_with(
    config: &Config,
    store: Arc<dyn Store>,
    issuer: &str,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    mailer: Option<Arc<dyn Mailer>>,
) -> anyhow::Result<Built> {
    let now = clock.now_ms();
    let instance_id =
        store.init_setting("instance_id", &latchkey_core::ids::new_id(IdKind::Instance, now, rng.as_ref())).await?;
    let mut code_key = [0u8; 32];
    rng.fill(&mut code_key);
    let code_key = STANDARD.decode(store.init_setting("code_key", &STANDARD.encode(code_key)).await?)?;

    let kek = load_kek(config, rng.as_ref())?;
    let keys = Arc::new(KeyManager::new(store.clone(), kek, clock.clone(), rng.clone(), KeyTiming::default()));
    keys.ensure_key().await?;
    keys.check_signing_key().await.map_err(|_| {
        anyhow!(
            "cannot open the signing key: LATCHKEY_KEK (or {}/kek) is not the key it was sealed with",
            config.data_dir.display()
        )
    })?;

    // The first secret key is made by exactly one instance, whoever claims the slot first.
    let claim = latchkey_core::ids::new_id(IdKind::Instance, now, rng.as_ref());
    let new_secret_key = if store.init_setting("initial_secret_key", &claim).await? == claim {
        let secret = format!("sk_live_{}", new_opaque_secret(rng.as_ref()));
        store
            .insert_api_key(&ApiKeyRow {
                id: latchkey_core::ids::new_id(IdKind::Instance, now, rng.as_ref()).replacen("ins_", "ak_", 1),
                digest: secret_digest(&secret),
                label: "initial".into(),
                created_at: now,
                revoked_at: None,
            })
            .await?;
        Some(secret)
    } else {
        None
    };

    let mailer: Arc<dyn Mailer> = match (mailer, &config.smtp) {
        (Some(m), _) => m,
        (None, Some(smtp)) => Arc::new(SmtpMailer::new(smtp, &config.extra_roots()?).map_err(|e| anyhow!(e))?),
        (None, None) => {
            if !config.dev_mode() {
                tracing::warn!(
                    "no [smtp] configured and not in development mode: verification mail cannot be delivered"
                );
            }
            Arc::new(DevMailSink::default())
        }
    };
    let hasher =
        Arc::new(Argon2Hasher::new(HashParams::default(), config.hash_concurrency).map_err(|e| anyhow!("{e}"))?);
    let service_config = ServiceConfig {
        issuer: issuer.to_owned(),
        app_name: config.app_name.clone(),
        session: SessionPolicy {
            max_lifetime_ms: config.session_lifetime_days.max(1) * DAY_MS,
            inactivity_timeout_ms: (config.session_inactivity_minutes > 0)
                .then_some(config.session_inactivity_minutes * 60_000),
        },
        enumeration_protection: config.enumeration_protection,
        delete_self_enabled: config.delete_self_enabled,
        token_ttl_secs: 60,
        rate_limits: config.rate_limits.clone(),
        organizations: config.organizations.clone(),
        instance_id: instance_id.clone(),
        oauth: latchkey_service::oauth::providers(&config.oauth).map_err(|e| anyhow!("{e}"))?,
        second_factors: config.second_factors.policy,
        email_links: config.email_links,
        passkeys: passkey_settings(config, issuer)?,
        extra_roots: config.extra_roots()?,
        geoip: config.geoip()?,
    };
    config.organizations.roles().map_err(|e| anyhow!("[organizations]: {e}"))?;
    config.sync.all_tables().map_err(|e| anyhow!("[sync]: {e}"))?;
    let sync_store: Arc<dyn SyncStore> = store.clone();
    let webhook_store: Arc<dyn WebhookStore> = store.clone();
    let outbox_signal = store.outbox_signal();
    let services = Arc::new(Services::new(
        store,
        hasher,
        mailer,
        keys.clone(),
        clock.clone(),
        rng.clone(),
        service_config,
        code_key,
    ));
    let webhooks = Arc::new(
        WebhookService::new(
            webhook_store,
            outbox_signal,
            keys,
            clock.clone(),
            rng.clone(),
            config.webhooks.clone().resolved(config.dev_mode()),
        )
        .with_telemetry(services.telemetry().clone()),
    );
    // Sync is its own service: its own store view, and identity only through `SyncDirectory`.
    let directory: Arc<dyn SyncDirectory> = services.clone();
    let sync = Arc::new(
        SyncService::new(sync_store, directory, clock, rng, config.sync.clone(), services.limit_cells())
            .with_telemetry(services.telemetry().clone()),
    );
    sync.start_fanout().await?;
    Ok(Built { services, sync, webhooks, instance_id, new_secret_key })
}

/// The HTTP state for a server bound at `bound`.
pub fn app_state(
    config: &Config,
    built: &Built,
    bound: std::net::SocketAddr,
) -> anyhow::Result<latchkey_api::AppState> {
    use latchkey_api::{cookie_suffix, publishable_key, AppConfig, CookiePolicy};
    let public_url = config.public_url_for(bound);
    let parsed = url::Url::parse(&public_url).map_err(|_| anyhow!("public_url {public_url:?} is not a URL"))?;
    let host_name = parsed.host_str().ok_or_else(|| anyhow!("public_url {public_url:?} has no host"))?.to_owned();
    let host = match parsed.port() {
        Some(p) => format!("{host_name}:{p}"),
        None => host_name.clone(),
    };
    let pk = publishable_key(&host);
    let dev = config.dev_mode();
    let loopback_http = parsed.scheme() == "http" && matches!(host_name.as_str(), "localhost" | "127.0.0.1" | "[::1]");
    let app_config = AppConfig {
        public_url: public_url.clone(),
        allowed_origins: config.allowed_origins.iter().map(|o| o.trim_end_matches('/').to_owned()).collect(),
        dev_mode: dev,
        cookies: CookiePolicy { secure: !(dev && loopback_http), suffix: cookie_suffix(&pk) },
        publishable_key: pk,
        instance_id: built.instance_id.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        forwarded_hops: config.forwarded_hops.max(1),
        request_timeout: std::time::Duration::from_secs(config.request_timeout_secs.max(1)),
        body_limit_bytes: config.body_limit_bytes,
        metrics: config.metrics_access()?,
    };
    Ok(latchkey_api::AppState::new(built.services.clone(), built.sync.clone(), built.webhooks.clone(), app_config))
}

/// `[passkeys]` checked against the instance's origins; origins left out are logged.
fn passkey_settings(config: &Config, public_url: &str) -> anyhow::Result<latchkey_service::passkeys::PasskeySettings> {
    let origins: Vec<String> = config.allowed_origins.iter().map(|o| o.trim_end_matches('/').to_owned()).collect();
    let (settings, left_out) =
        latchkey_service::passkeys::PasskeySettings::resolve(&config.passkeys, &config.app_name, public_url, &origins)
            .map_err(|e| anyhow!(e))?;
    for origin in left_out {
        tracing::warn!(%origin, rp_id = %settings.rp_id, "passkeys are not offered on this origin (not a secure origin on the relying-party id)");
    }
    if settings.enabled() {
        tracing::info!(rp_id = %settings.rp_id, origins = ?settings.origins, "passkeys on");
    }
    Ok(settings)
}
