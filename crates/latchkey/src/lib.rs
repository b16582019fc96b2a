//! The latchkey server as a library: configuration, bootstrap and assembly, shared by the
//! `latchkey` binary and the integration tests (which inject a clock and a mailer).

pub mod app;
pub mod backup_cli;
pub mod clerk_csv;
pub mod config;
pub mod example_config;
pub mod export_cli;
pub mod import_api;
pub mod import_csv;
pub mod migration_cli;
pub mod proxy;
pub mod trust;
pub mod webhooks_cli;

/// The operator at this server's own command line, who administers with the configuration
/// and the database the process already holds (the proofs: latchkey_service::authority).
#[allow(clippy::disallowed_methods)]
pub fn operator() -> latchkey_service::Operator {
    latchkey_service::Operator::command_line()
}
