//! The latchkey server as a library: configuration, bootstrap and assembly, shared by the
//! `latchkey` binary and the integration tests (which inject a clock and a mailer).

pub mod app;
pub mod config;
pub mod proxy;
pub mod webhooks_cli;
