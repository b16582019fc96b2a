//! The `latchkey` binary: `serve`, `migrate`, `keys`, `users`, `webhooks`, `import`, `export`,
//! `backup`, `restore`, `proxy`, `default-config`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Parser, Subcommand};
use latchkey_axum::FeedFailure;
use latchkey_service::admin::NewUser;
use tokio::net::TcpListener;

use latchkey::app;
use latchkey::config::{self, Config, Overrides};

#[derive(Parser)]
#[command(name = "latchkey", version, about = "Self-hosted authentication and offline-first sync")]
struct Cli {
    /// Configuration file (default: ./latchkey.toml when present).
    #[arg(long, global = true, env = "LATCHKEY_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (sqlite://… or postgres://…). One with a password belongs in
    /// LATCHKEY_DATABASE_URL or latchkey.toml: `ps` shows command lines to everyone.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Public URL (token issuer).
        #[arg(long)]
        public_url: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Session-token signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Users.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Webhook endpoints, their secrets, deliveries and replays.
    Webhooks {
        #[command(subcommand)]
        action: latchkey::webhooks_cli::WebhooksAction,
    },
    /// Protect another service: a reverse proxy that checks latchkey session tokens per route
    /// and forwards the verified identity in X-Latchkey-* headers.
    Proxy {
        /// The service to protect (http://host:port).
        #[arg(long)]
        upstream: Option<String>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4100")]
        listen: std::net::SocketAddr,
        /// latchkey's public URL (default: this configuration's).
        #[arg(long)]
        issuer: Option<String>,
        /// A TOML file with `public = [...]` and `[[routes]]` (path, role, permission,
        /// organization_param).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// A public route pattern (repeatable), e.g. --public '/health' --public '/webhooks(.*)'.
        #[arg(long)]
        public: Vec<String>,
        /// A verifier key (or secret key) of latchkey's: follow its revocation feed, refusing tokens of ended
        /// sessions, banned users and changed memberships at once (docs/revocations.md).
        #[arg(long, env = "LATCHKEY_PROXY_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
    },
    /// Copy the SQLite database to a new file, consistently, while latchkey serves it
    /// (PostgreSQL: pg_dump, see docs/operations.md).
    Backup {
        /// The backup to write (must not exist).
        file: PathBuf,
    },
    /// Put a backup in place of the SQLite database; stop latchkey first. The database it
    /// replaces is kept as `<database>.before-restore`.
    Restore {
        /// A file `latchkey backup` wrote.
        file: PathBuf,
    },
    /// Bring users (and organizations) from Clerk, keeping their ids (docs/import-export.md).
    Import {
        #[command(subcommand)]
        source: latchkey::migration_cli::ImportSource,
    },
    /// Write every user as Clerk's CSV (and organizations as JSON) to new files.
    Export {
        #[arg(long)]
        users: PathBuf,
        #[arg(long)]
        organizations: Option<PathBuf>,
    },
    /// Print an example latchkey.toml with every setting.
    DefaultConfig,
}

#[derive(Subcommand)]
enum KeysAction {
    /// List the signing keys and their states.
    Show,
    /// Publish a new key now; it starts signing once every cached JWKS holds it.
    Rotate,
    /// Revoke a key at once (tokens it signed stop verifying).
    Revoke { kid: String },
    /// Secret keys (`sk_live_…`) for the Backend API.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
}

#[derive(Subcommand)]
enum SecretAction {
    /// Create a secret key; it is printed once and stored hashed.
    Create {
        #[arg(long, default_value = "")]
        label: String,
        /// A verifier key (`vk_live_…`) instead: it reads the revocation feed and nothing else.
        #[arg(long)]
        verifier: bool,
    },
    /// List secret keys (ids and labels; the keys themselves are never shown again).
    List,
    /// Revoke a secret key at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum UsersAction {
    /// Create a user with a verified email address.
    Create {
        #[arg(long)]
        email: Vec<String>,
        /// Phone numbers, stored as verified (an administrator vouches for them).
        #[arg(long)]
        phone: Vec<String>,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
    },
    /// List users, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Case-insensitive prefix of an email, phone, username or name, or an exact id.
        #[arg(long)]
        query: Option<String>,
    },
    /// Ban a user: every session is revoked and sign-in is refused.
    Ban {
        user_id: String,
    },
    Unban {
        user_id: String,
    },
    /// Lock a user (sessions revoked, sign-in refused) until unlocked.
    Lock {
        user_id: String,
    },
    /// Unlock a user, also clearing failed sign-in attempts.
    Unlock {
        user_id: String,
    },
    /// Delete a user with their identifications and sessions.
    Delete {
        user_id: String,
    },
}

/// mimalloc instead of glibc's malloc: a sync push allocates many small JSON values, and
/// glibc's free lists (consolidation, unlinking) took a fifth of the server's CPU in one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::DefaultConfig) {
        print!("{}", config::EXAMPLE);
        return ExitCode::SUCCESS;
    }
    let overrides = match &cli.command {
        Command::Serve { listen, public_url, data_dir } => Overrides {
            listen: *listen,
            public_url: public_url.clone(),
            database_url: cli.database_url.clone(),
            data_dir: data_dir.clone(),
        },
        _ => Overrides { database_url: cli.database_url.clone(), ..Overrides::default() },
    };
    let config = match Config::load(cli.config.as_ref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    if cli.database_url.as_deref().is_some_and(config::url_has_password) {
        // Every user of the machine can read a process's arguments (`ps`, /proc).
        tracing::warn!(
            "the database URL on the command line holds a password, which `ps` shows to every user of this machine: \
             set LATCHKEY_DATABASE_URL or database_url in latchkey.toml instead"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("latchkey: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => serve(config).await,
        Command::Migrate => {
            app::open_store(&config).await?;
            println!("database schema is up to date ({})", config.redacted_database_url());
            Ok(())
        }
        Command::Keys { action } => keys(config, action).await,
        Command::Backup { file } => latchkey::backup_cli::backup(&config, &file).await,
        Command::Restore { file } => latchkey::backup_cli::restore(&config, &file).await,
        Command::Users { action } => users(config, action).await,
        Command::Import { source } => latchkey::migration_cli::import(&config, &services(&config).await?, source).await,
        Command::Export { users, organizations } => {
            latchkey::migration_cli::export(&services(&config).await?, users, organizations).await
        }
        Command::Webhooks { action } => latchkey::webhooks_cli::run(&services(&config).await?.webhooks, action).await,
        Command::Proxy { upstream, listen, issuer, rules, public, secret_key } => {
            let rules = latchkey::proxy::load_rules(rules.as_deref(), upstream, issuer, public)?;
            let extra_roots = config.extra_roots()?;
            let guard = latchkey::proxy::guard_for(&rules, &config.public_url_for(config.listen), &extra_roots)?;
            let failure = if rules.revocations_fail_closed { FeedFailure::Closed } else { FeedFailure::Open };
            let revocations = match secret_key {
                Some(key) => {
                    guard.follow_revocations(key, failure).map_err(|e| anyhow!("{e}"))?;
                    format!("followed (fail {})", if failure == FeedFailure::Open { "open" } else { "closed" })
                }
                None => "not followed (--secret-key to follow them)".to_owned(),
            };
            let proxy = std::sync::Arc::new(latchkey::proxy::Proxy::new(rules.clone(), guard, &extra_roots)?);
            let listener = TcpListener::bind(listen).await.map_err(|e| anyhow!("cannot listen on {listen}: {e}"))?;
            println!("latchkey proxy listening on http://{}", listener.local_addr()?);
            println!("  upstream         {}", rules.upstream.unwrap_or_default());
            println!("  revocations      {revocations}");
            latchkey::proxy::serve(listener, proxy, shutdown_signal()?).await?;
            Ok(())
        }
        Command::DefaultConfig => Ok(()),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = app::open_store(&config).await?;
    let listener =
        TcpListener::bind(config.listen).await.map_err(|e| anyhow!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener.local_addr()?;
    let public_url = config.public_url_for(bound);
    let built = app::build(&config, store, &public_url).await?;
    app::seed_roles(&built).await?;
    let state = app::app_state(&config, &built, bound)?;
    let pk = state.config.publishable_key.clone();
    let mode = config.mode_at(bound);

    if config.webhooks.enabled {
        let worker =
            latchkey_service::webhooks::worker::WebhookWorker::new(built.webhooks.clone(), &config.extra_roots()?)
                .map_err(|e| anyhow!("{}", e.long_message))?;
        std::sync::Arc::new(worker).spawn();
    }

    // Hourly housekeeping: expired signing keys, old sync tombstones, sync clients idle past their limit,
    // delivered webhook messages past their retention, handshake nonces nobody took, attempt
    // counters whose window ended, abandoned sign-in and sign-up attempts and idle clients.
    let services = built.services.clone();
    let sync = built.sync.clone();
    let webhooks = built.webhooks.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            match services.signing_keys(&latchkey::operator()).prune().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "pruned expired signing keys"),
                Err(e) => tracing::warn!(error = %e, "key pruning failed"),
            }
            match sync.compact_tombstones().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "compacted sync tombstones"),
                Err(e) => tracing::warn!(error = %e, "sync tombstone compaction failed"),
            }
            match sync.expire_clients().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "forgot idle sync clients"),
                Err(e) => tracing::warn!(error = %e, "sync client expiry failed"),
            }
            match webhooks.prune_webhook_messages().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "forgot delivered webhook messages"),
                Err(e) => tracing::warn!(error = %e.long_message, "webhook message pruning failed"),
            }
            if let Err(e) = services.prune_handshake_nonces().await {
                tracing::warn!(error = %e.long_message, "handshake nonce pruning failed");
            }
            match services.prune_abandoned().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "forgot abandoned sign-ins, sign-ups and idle clients"),
                Err(e) => tracing::warn!(error = %e.long_message, "pruning abandoned attempts failed"),
            }
            if let Err(e) = services.revocations.prune().await {
                tracing::warn!(error = %e.long_message, "revocation feed pruning failed");
            }
            if let Err(e) = services.prune_attempt_counters().await {
                tracing::warn!(error = %e.long_message, "attempt counter pruning failed");
            }
        }
    });

    let shutdown = shutdown_signal()?;
    let metrics_at = match config.metrics_listen {
        Some(addr) => {
            let metrics =
                TcpListener::bind(addr).await.map_err(|e| anyhow!("cannot listen on {addr} for /metrics: {e}"))?;
            let bound = metrics.local_addr()?;
            let (metrics_state, stop) = (state.clone(), shutdown_signal()?);
            tokio::spawn(async move {
                if let Err(e) = latchkey_api::serve_metrics(metrics, metrics_state, stop).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            });
            Some(bound)
        }
        None => None,
    };
    println!("latchkey listening on {public_url}");
    if public_url != format!("http://{bound}") {
        println!("  bound to         http://{bound}");
    }
    println!("  database         {} ({})", config.redacted_database_url(), built.services.database_backend());
    println!("  publishable key  {pk}");
    if let Some(sk) = &built.new_secret_key {
        println!("  secret key       {sk}");
        println!("                   (shown only now: store it safely; it is kept hashed)");
    }
    println!("  next steps       open {public_url}/sign-up to create an account,");
    println!("                   verify tokens with {public_url}/.well-known/jwks.json");
    match (metrics_at, &config.metrics_token) {
        (Some(at), _) => println!("  metrics          http://{at}/metrics"),
        (None, Some(_)) => println!("  metrics          {public_url}/metrics with the metrics token"),
        (None, None) if mode.development => println!("  metrics          {public_url}/metrics"),
        (None, None) => println!("  metrics          off (set metrics_listen or metrics_token)"),
    }
    if mode.development {
        println!("  mode             development mode ({}): mail is kept at {public_url}/dev/mail", mode.reason);
    } else {
        println!("  mode             production ({}): /dev/mail is off", mode.reason);
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tracing::info!(%public_url, instance_id = %built.instance_id, "latchkey started");
    // SIGTERM: drain (readyz 503, event streams end), keep serving for the delay, then stop
    // accepting and let requests in flight finish, within the timeout.
    let (drain, delay) = (state.drain.clone(), Duration::from_secs(config.shutdown_delay_secs));
    let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        shutdown.await;
        drain.start();
        tracing::info!(delay_secs = delay.as_secs(), "draining: /readyz answers 503");
        tokio::time::sleep(delay).await;
        let _ = stopping_tx.send(());
    };
    let services = state.services.clone();
    let serving = latchkey_api::serve(listener, state, stop);
    tokio::pin!(serving);
    let timeout = Duration::from_secs(config.shutdown_timeout_secs);
    tokio::select! {
        biased;
        served = &mut serving => served?,
        Ok(()) = stopping => {
            match tokio::time::timeout(timeout, &mut serving).await {
                Ok(served) => served?,
                Err(_) => tracing::warn!(
                    timeout_secs = timeout.as_secs(),
                    "requests still in flight at the shutdown timeout: stopping anyway"
                ),
            }
        }
    }
    // Mail handed to the background (a code a user is waiting for) goes out before the end.
    let mail = async {
        while services.mail_in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(timeout, mail).await.is_err() {
        tracing::warn!(unsent = services.mail_in_flight(), "mail still unsent at the shutdown timeout");
    }
    tracing::info!("latchkey stopped");
    Ok(())
}

/// Registers SIGINT/SIGTERM handlers now (before readiness is announced), and returns a
/// future that resolves when either arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests in flight");
    })
}

async fn services(config: &Config) -> anyhow::Result<app::Built> {
    let store = app::open_store(config).await?;
    let issuer = config.public_url_for(config.listen);
    app::build(config, store, &issuer).await
}

async fn keys(config: Config, action: KeysAction) -> anyhow::Result<()> {
    let built = services(&config).await?;
    let keys = built.services.signing_keys(&latchkey::operator());
    if let KeysAction::Secret { action } = action {
        return secret_keys(&built.services, action).await;
    }
    match action {
        KeysAction::Show | KeysAction::Secret { .. } => {}
        KeysAction::Rotate => {
            let k = keys.rotate().await?;
            println!(
                "new key {} is published now and starts signing in {} s",
                k.kid,
                (k.activate_at - k.created_at) / 1000
            );
        }
        KeysAction::Revoke { kid } => {
            if !keys.revoke(&kid).await? {
                return Err(anyhow!("no key {kid} to revoke"));
            }
            println!("revoked {kid}");
        }
    }
    println!("{:<45} {:<8} {:>15} {:>15}", "kid", "state", "created", "activates");
    for k in keys.status().await? {
        let state = serde_json::to_value(k.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        println!("{:<45} {:<8} {:>15} {:>15}", k.kid, state, k.created_at / 1000, k.activate_at / 1000);
    }
    Ok(())
}

async fn secret_keys(s: &latchkey_service::Services, action: SecretAction) -> anyhow::Result<()> {
    let fail = |e: latchkey_service::ServiceError| anyhow!("{}", e.long_message);
    match action {
        SecretAction::Create { label, verifier } => {
            let (row, secret) = match verifier {
                true => s.create_verifier_key(&latchkey::operator(), &label).await,
                false => s.create_secret_key(&latchkey::operator(), &label).await,
            }
            .map_err(fail)?;
            println!("{secret}");
            eprintln!("created {} (shown only now: store it safely)", row.id);
        }
        SecretAction::List => {
            for k in s.list_secret_keys().await.map_err(fail)? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{state}\t{}\t{}", k.id, k.created_at / 1000, k.label);
            }
        }
        SecretAction::Revoke { id } => {
            s.revoke_secret_key(&latchkey::operator(), &id).await.map_err(fail)?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn users(config: Config, action: UsersAction) -> anyhow::Result<()> {
    let built = services(&config).await?;
    let s = built.services.admin();
    match action {
        UsersAction::Create { email, phone, password_stdin, username, first_name, last_name } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let user = s
                .admin_create_user(
                    &latchkey::operator(),
                    NewUser {
                        email_addresses: email,
                        phone_numbers: phone,
                        username,
                        password,
                        first_name,
                        last_name,
                        ..NewUser::default()
                    },
                )
                .await
                .map_err(|e| anyhow!("{}", e.long_message))?;
            println!("{}", user.user.id);
        }
        UsersAction::List { limit, offset, query } => {
            let query = latchkey_store::UserQuery {
                limit: limit.clamp(1, latchkey_service::params::MAX_PAGE),
                offset: offset.max(0),
                descending: true,
                query,
                ..Default::default()
            };
            let users =
                s.query_users(&latchkey::operator(), &query).await.map_err(|e| anyhow!("{}", e.long_message))?;
            let total =
                s.count_users(&latchkey::operator(), &query).await.map_err(|e| anyhow!("{}", e.long_message))?;
            for u in users {
                let email = latchkey_service::resources::primary_email(&u).unwrap_or_default();
                println!("{}\t{}\t{}", u.user.id, email, u.user.username.unwrap_or_default());
            }
            eprintln!("{total} users in all");
        }
        UsersAction::Ban { user_id } => {
            report_user(s.set_banned(&latchkey::operator(), &user_id, true).await, "banned")?
        }
        UsersAction::Unban { user_id } => {
            report_user(s.set_banned(&latchkey::operator(), &user_id, false).await, "unbanned")?
        }
        UsersAction::Lock { user_id } => {
            report_user(s.set_locked(&latchkey::operator(), &user_id, true).await, "locked")?
        }
        UsersAction::Unlock { user_id } => {
            report_user(s.set_locked(&latchkey::operator(), &user_id, false).await, "unlocked")?
        }
        UsersAction::Delete { user_id } => {
            s.delete_user(&latchkey::operator(), &user_id).await.map_err(|e| anyhow!("{}", e.long_message))?;
            println!("{user_id} deleted");
        }
    }
    Ok(())
}

fn report_user(result: latchkey_service::Result<latchkey_store::UserRecord>, what: &str) -> anyhow::Result<()> {
    let record = result.map_err(|e| anyhow!("{}", e.long_message))?;
    println!("{} {what}", record.user.id);
    Ok(())
}
