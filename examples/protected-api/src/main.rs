//! `cargo run -p protected-api` with `LATCHKEY_ISSUER` (default http://127.0.0.1:4000) and
//! `LISTEN` (default 127.0.0.1:3001).

use latchkey_axum::{Guard, GuardConfig, KeySource};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let issuer = std::env::var("LATCHKEY_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:4000".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let guard = Guard::new(GuardConfig::new(KeySource::Issuer(issuer)))?;
    let app = protected_api::app(&guard)?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(%listen, "protected-api listening");
    axum::serve(listener, app).await?;
    Ok(())
}
