//! Webhooks: every change becomes a durable, signed, retried event. Service code builds the
//! event with its change ([`Events`]) and writes both in one transaction through the
//! `emitting` view of its store (`latchkey_store::Store::emitting`); the
//! [`worker::WebhookWorker`] delivers from the outbox.
//!
//! Endpoints, their secrets, deliveries and replays, as administrators manage them, are a
//! service of their own, [`WebhookService`] (`service.rs`, `endpoints.rs`), which the worker uses too.

mod endpoints;
pub mod guard;
mod service;
pub mod sign;
mod stamp;
pub mod worker;

pub use service::WebhookService;
pub use stamp::Events;

use std::sync::Arc;

use latchkey_store::{AttemptRow, DeliveryRow, OutboxEvent};

use crate::Services;

/// `[webhooks]` in the configuration.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Run the delivery worker in this instance.
    pub enabled: bool,
    /// Endpoints on 127.0.0.0/8 and ::1. Default: on in development mode only.
    pub allow_loopback: Option<bool>,
    /// Endpoints on private, link-local and unique-local networks (metadata services too).
    pub allow_private_networks: bool,
    /// Refuse `http://` endpoints. Default: on outside development mode.
    pub require_https: Option<bool>,
    /// How long one attempt may take.
    pub timeout_secs: u64,
    /// How long the previous secret keeps signing after a rotation.
    pub rotation_overlap_hours: i64,
    /// Messages older than this, with nothing still owed, are forgotten.
    pub retention_days: i64,
    /// Attempts in flight at once in this instance.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_loopback: None,
            allow_private_networks: false,
            require_https: None,
            timeout_secs: 15,
            rotation_overlap_hours: 24,
            retention_days: 30,
            concurrency: 16,
        }
    }
}

impl WebhookConfig {
    /// Fills the defaults that depend on development mode.
    pub fn resolved(mut self, dev_mode: bool) -> Self {
        self.allow_loopback.get_or_insert(dev_mode);
        self.require_https.get_or_insert(!dev_mode);
        self
    }

    pub fn policy(&self) -> guard::AddressPolicy {
        guard::AddressPolicy {
            allow_loopback: self.allow_loopback.unwrap_or(false),
            allow_private: self.allow_private_networks,
        }
    }
}

/// Every event type latchkey sends (docs/backend-api.md §12).
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "session.created",
    "session.ended",
    "session.revoked",
    "session.removed",
    "email.created",
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "organizationMembership.created",
    "organizationMembership.updated",
    "organizationMembership.deleted",
    "organizationInvitation.created",
    "organizationInvitation.accepted",
    "organizationInvitation.revoked",
    "role.created",
    "role.updated",
    "role.deleted",
    "permission.created",
    "permission.updated",
    "permission.deleted",
];

/// What creating an endpoint takes.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    /// Empty: every event.
    pub event_types: Vec<String>,
}

/// A change to an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// One delivery with its attempts, oldest first.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub delivery: DeliveryRow,
    pub attempts: Vec<AttemptRow>,
}

impl Services {
    /// The store, writing `events` in the transaction of the next write (see [`Store::emitting`]).
    pub(crate) fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn latchkey_store::IdentityStore> {
        self.store.emitting_identity(events)
    }
}

/// Puts `row` in place of the record's email of the same id (or adds it).
pub(crate) fn put_email(r: &mut latchkey_store::UserRecord, row: &latchkey_store::EmailRow) {
    match r.emails.iter_mut().find(|e| e.id == row.id) {
        Some(e) => *e = row.clone(),
        None => r.emails.push(row.clone()),
    }
}

pub(crate) fn put_phone(r: &mut latchkey_store::UserRecord, row: &latchkey_store::PhoneRow) {
    match r.phones.iter_mut().find(|p| p.id == row.id) {
        Some(p) => *p = row.clone(),
        None => r.phones.push(row.clone()),
    }
}
