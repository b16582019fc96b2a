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
use latchkey_service::{Argon2Hasher, DevMailSink, HashParams, KeyManager, Mailer, ServiceConfig, Services};
use latchkey_store::{ApiKeyRow, Store};
use latchkey_token::KeyTiming;

use crate::config::Config;

/// Opens the store named by the URL scheme and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = latchkey_store_postgres::open(url, config.postgres_max_connections).await.map_err(|e| {
            anyhow!("cannot open the PostgreSQL database at {}: {e}", config.redacted_database_url())
        })?;
        Ok(Arc::new(store))
    } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let file = path.split('?').next().unwrap_or(path);
        if let Some(parent) = Path::new(file).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create the directory {}", parent.display()))?;
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
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let mut raw = [0u8; 32];
    rng.fill(&mut raw);
    let text = STANDARD.encode(raw);
    write_private_file(&path, &text)?;
    if !config.database_url.starts_with("sqlite") {
        tracing::warn!("generated a key-encryption key in {}; instances sharing this database need the same LATCHKEY_KEK", path.display());
    }
    Kek::from_base64(&text).map_err(|e| anyhow!("{e}"))
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
    pub instance_id: String,
    /// The secret key made on this first start, shown once.
    pub new_secret_key: Option<String>,
}

/// Assembles the services, creating on first start the instance id, the code key, the first
/// signing key and the first secret key.
pub async fn build(config: &Config, store: Arc<dyn Store>, issuer: &str) -> anyhow::Result<Built> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rng: Arc<dyn Random> = Arc::new(OsRandom);
    let now = clock.now_ms();
    let instance_id = store.init_setting("instance_id", &latchkey_core::ids::new_id(IdKind::Instance, now, rng.as_ref())).await?;
    let mut code_key = [0u8; 32];
    rng.fill(&mut code_key);
    let code_key = STANDARD.decode(store.init_setting("code_key", &STANDARD.encode(code_key)).await?)?;

    let kek = load_kek(config, rng.as_ref())?;
    let keys = Arc::new(KeyManager::new(store.clone(), kek, clock.clone(), rng.clone(), KeyTiming::default()));
    keys.ensure_key().await?;
    keys.check_signing_key()
        .await
        .map_err(|_| anyhow!("cannot open the signing key: LATCHKEY_KEK (or {}/kek) is not the key it was sealed with", config.data_dir.display()))?;

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

    let mailer: Arc<dyn Mailer> = match &config.smtp {
        Some(smtp) => Arc::new(SmtpMailer::new(smtp).map_err(|e| anyhow!(e))?),
        None => {
            if !config.dev_mode() {
                tracing::warn!("no [smtp] configured and not in development mode: verification mail cannot be delivered");
            }
            Arc::new(DevMailSink::default())
        }
    };
    let hasher = Arc::new(Argon2Hasher::new(HashParams::default(), config.hash_concurrency).map_err(|e| anyhow!("{e}"))?);
    let service_config = ServiceConfig {
        issuer: issuer.to_owned(),
        app_name: config.app_name.clone(),
        session: SessionPolicy {
            max_lifetime_ms: config.session_lifetime_days.max(1) * DAY_MS,
            inactivity_timeout_ms: (config.session_inactivity_minutes > 0).then_some(config.session_inactivity_minutes * 60_000),
        },
        enumeration_protection: config.enumeration_protection,
        token_ttl_secs: 60,
        rate_limits: config.rate_limits.clone(),
    };
    let services = Arc::new(Services::new(store, hasher, mailer, keys, clock, rng, service_config, code_key));
    Ok(Built { services, instance_id, new_secret_key })
}
