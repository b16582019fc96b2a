//! Storage of webhooks: the transactional outbox (messages written in the transaction of
//! their change, see [`crate::Store::emitting`]), endpoints, and deliveries with their attempts.

use async_trait::async_trait;

use crate::error::Result;

/// An event to write in the transaction of its change.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// `msg_…`: the `webhook-id` of every delivery of it, replays included.
    pub id: String,
    /// `user.created`, …
    pub event_type: String,
    /// The exact body that is signed and sent.
    pub payload: String,
    pub created_at: i64,
    /// The revocation verifiers must hear of, written with the event (docs/revocations.md).
    pub revocation: Option<latchkey_core::revocation::Revocation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Event types delivered to it; empty means every event.
    pub event_types: Vec<String>,
    /// The signing secret, sealed with the key-encryption key.
    pub secret_sealed: String,
    /// The previous secret while a rotation overlaps, and when it stops being used.
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// Why it is disabled (`gone` after a 410, `manual`), or `None` when enabled.
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One message owed to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub id: String,
    pub delivery_id: String,
    pub attempted_at: i64,
    /// The response status, `None` when no response came (refused, timed out, unreachable).
    pub status_code: Option<i64>,
    pub succeeded: bool,
    /// What went wrong, in a sentence (never a secret).
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A due delivery claimed by one worker, with what sending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery: DeliveryRow,
    pub endpoint: WebhookEndpointRow,
    pub payload: String,
    pub message_created_at: i64,
}

/// The outcome of an attempt, written with the attempt in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptOutcome {
    pub attempt: AttemptRow,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    /// Disables the endpoint with this reason (a 410).
    pub disable_endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryQuery {
    pub endpoint_id: String,
    pub status: Option<DeliveryStatus>,
    pub limit: i64,
    pub offset: i64,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Writes events on their own, outside any change (mail sent, for `email.created`).
    async fn append_events(&self, events: &[OutboxEvent]) -> Result<()>;
    /// Like [`WebhookStore::append_events`], but an event that no enabled endpoint takes is
    /// not stored at all (mail bodies carry one-time codes: they are kept only to be sent).
    async fn append_subscribed_events(&self, events: &[OutboxEvent]) -> Result<()>;
    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpointRow) -> Result<()>;
    async fn get_webhook_endpoint(&self, id: &str) -> Result<Option<WebhookEndpointRow>>;
    /// Oldest first, and how many there are in all.
    async fn list_webhook_endpoints(&self, limit: i64, offset: i64) -> Result<(Vec<WebhookEndpointRow>, i64)>;
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpointRow) -> Result<bool>;
    /// Removes the endpoint with its deliveries and attempts.
    async fn delete_webhook_endpoint(&self, id: &str) -> Result<bool>;
    /// Claims up to `limit` pending deliveries due at `now` by moving their due time to
    /// `now + lease_ms`: a worker that dies mid-send leaves them due again once the lease
    /// ends. On PostgreSQL the rows are selected `FOR UPDATE SKIP LOCKED`, so concurrent
    /// workers never claim the same delivery.
    async fn claim_webhook_deliveries(&self, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<ClaimedDelivery>>;
    /// Records attempts and moves their deliveries on, in one transaction.
    async fn record_webhook_attempts(&self, outcomes: &[AttemptOutcome]) -> Result<()>;
    async fn record_webhook_attempt(&self, outcome: &AttemptOutcome) -> Result<()> {
        self.record_webhook_attempts(std::slice::from_ref(outcome)).await
    }
    /// Newest first, and how many the query selects in all.
    async fn list_webhook_deliveries(&self, query: &DeliveryQuery) -> Result<(Vec<DeliveryRow>, i64)>;
    async fn get_webhook_delivery(&self, id: &str) -> Result<Option<DeliveryRow>>;
    /// Attempts of the deliveries named, oldest first.
    async fn webhook_attempts(&self, delivery_ids: &[String]) -> Result<Vec<AttemptRow>>;
    /// New pending deliveries to `endpoint_id`, due at `now`, of the messages selected: one
    /// message (`message_id`), or every message created at or after `since` that the
    /// endpoint's filter accepts. Returns how many were queued.
    async fn replay_webhook_messages(
        &self,
        endpoint_id: &str,
        message_id: Option<&str>,
        since: Option<i64>,
        now: i64,
        id_base: &str,
    ) -> Result<u64>;
    /// The message's type, payload and creation time.
    async fn get_webhook_message(&self, id: &str) -> Result<Option<OutboxEvent>>;
    /// Forgets messages (with their deliveries) created before `before` that nothing still owes.
    async fn prune_webhook_messages(&self, before: i64) -> Result<u64>;
    /// How many deliveries are still owed (pending: due now or retrying later).
    async fn pending_webhook_deliveries(&self) -> Result<i64>;
}
