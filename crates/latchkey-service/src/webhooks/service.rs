//! [`WebhookService`]: webhook endpoints as administrators manage them, and what the delivery
//! worker needs. A service of its own: it holds only the webhook part of the store
//! ([`WebhookStore`]), the key manager (to seal and open endpoint secrets), the clock and
//! randomness. Emitting events stays with the flows that cause them ([`Events`](super::Events)),
//! since an event is written in the same transaction as its change.

use std::sync::Arc;

use latchkey_core::ids::{self, IdKind};
use latchkey_core::{Clock, Random};
use latchkey_store::WebhookStore;
use tokio::sync::Notify;

use super::WebhookConfig;
use crate::keys::KeyManager;
use crate::{Result, ServiceError};

pub struct WebhookService {
    pub(super) store: Arc<dyn WebhookStore>,
    keys: Arc<KeyManager>,
    clock: Arc<dyn Clock>,
    pub(super) rng: Arc<dyn Random>,
    pub(super) config: WebhookConfig,
    /// Notified after every commit that wrote events: wakes this instance's worker.
    outbox_signal: Arc<Notify>,
    /// Attempts and delivery times, for `/metrics`.
    pub(super) telemetry: Arc<crate::telemetry::Telemetry>,
}

impl WebhookService {
    /// `config` with development-mode defaults already resolved ([`WebhookConfig::resolved`]).
    pub fn new(
        store: Arc<dyn WebhookStore>,
        outbox_signal: Arc<Notify>,
        keys: Arc<KeyManager>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
        config: WebhookConfig,
    ) -> Self {
        Self { store, keys, clock, rng, config, outbox_signal, telemetry: Default::default() }
    }

    /// Counts into the instance's telemetry (`Services::telemetry`) instead of its own.
    pub fn with_telemetry(mut self, telemetry: Arc<crate::telemetry::Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Deliveries waiting for an attempt (due now or retrying later), for `/metrics`.
    pub async fn queue_depth(&self) -> crate::Result<i64> {
        Ok(self.store.pending_webhook_deliveries().await?)
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(super) fn new_id(&self, kind: IdKind) -> String {
        ids::new_id(kind, self.now(), self.rng.as_ref())
    }

    pub(super) fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    pub(super) fn seal_endpoint_secret(&self, secret: &str, endpoint_id: &str) -> Result<String> {
        self.keys.seal_secret(secret.as_bytes(), endpoint_id)
    }

    pub(super) fn open_endpoint_secret(&self, sealed: &str, endpoint_id: &str) -> Result<String> {
        let bytes = self.keys.open_secret(sealed, endpoint_id)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ServiceError::internal())
    }
}
