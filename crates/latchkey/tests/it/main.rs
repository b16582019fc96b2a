//! The one integration-test binary of latchkey (every integration test lives under here, so
//! the workspace links one test executable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod backup;
mod bapi;
mod clerk_document;
mod conformance;
mod drain;
mod email_links;
mod enumeration;
mod errors;
mod fleet;
mod fleet_proof;
mod flows;
mod guard;
mod hardening;
mod hardening_two;
mod import;
mod invitation_links;
mod keys;
mod legacy_digests;
mod legacy_handshake;
mod metrics;
mod oauth;
mod oauth_accounts;
mod oauth_apple;
mod oauth_connect;
mod oauth_github;
mod oauth_tokens;
mod orgs;
mod pages;
mod pages_email_links;
mod pages_passkeys;
mod pages_second_factors;
mod passkeys;
mod process;
mod proxy;
mod proxy_paths;
mod reset_password;
mod reverification;
mod revocations;
mod second_factor_limits;
mod second_factors;
mod security;
mod session_verify;
mod soft_authenticator;
mod sync;
mod sync_crash;
mod sync_sessions;
mod sync_sim;
mod template_tokens;
mod tls;
mod webhooks;
mod webhooks_crash;
