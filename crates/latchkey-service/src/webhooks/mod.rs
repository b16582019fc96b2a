//! Webhooks: every change becomes a durable, signed, retried event. Service code builds the
//! event with its change ([`Services::event`]) and writes both in one transaction through
//! [`Services::emitting`]; the [`worker::WebhookWorker`] delivers from the outbox.

pub mod guard;
pub mod sign;
pub mod worker;

use std::sync::Arc;

use latchkey_core::ids::IdKind;
use latchkey_store::{AttemptRow, DeliveryQuery, DeliveryRow, DeliveryStatus, OutboxEvent, Store, WebhookEndpointRow};
use serde_json::{json, Value};

use crate::{Result, ServiceError, Services};

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

/// Every event type latchkey sends (clerk-compat.md §9).
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
    "permission.created",
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
    /// An event of `event_type` about `data`, stamped now (Clerk's envelope, clerk-compat.md §9).
    pub fn event(&self, event_type: &str, data: Value) -> OutboxEvent {
        let now = self.now();
        let payload = json!({
            "data": data,
            "object": "event",
            "type": event_type,
            "timestamp": now,
            "instance_id": self.config.instance_id,
        });
        OutboxEvent {
            id: self.new_id(IdKind::Message),
            event_type: event_type.to_owned(),
            payload: payload.to_string(),
            created_at: now,
        }
    }

    /// The store, writing `events` in the transaction of the next write (see [`Store::emitting`]).
    pub fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn Store> {
        self.store.emitting(events)
    }

    /// The avatar URL the resources show.
    pub fn avatar(&self) -> String {
        crate::resources::avatar_url(&self.config.issuer)
    }

    /// The user as webhooks show it.
    pub fn user_event(&self, event_type: &str, record: &latchkey_store::UserRecord) -> OutboxEvent {
        self.event(event_type, crate::resources::backend_user(self, &self.avatar(), record))
    }

    pub fn session_event(&self, event_type: &str, session: &latchkey_store::SessionRow) -> OutboxEvent {
        self.event(event_type, crate::resources::backend_session(self, session))
    }

    pub fn deleted_event(&self, event_type: &str, object: &str, id: &str) -> OutboxEvent {
        self.event(event_type, json!({"object": object, "id": id, "deleted": true}))
    }

    fn check_endpoint_url(&self, raw: &str) -> Result<String> {
        let bad = |why: &str| {
            ServiceError::unprocessable("form_param_format_invalid", "url is invalid").long(why).param("url")
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 2048 {
            return Err(bad("url must be an http(s) URL of at most 2048 characters"));
        }
        let url = url::Url::parse(trimmed).map_err(|_| bad("url must be an absolute http(s) URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if !self.config.webhooks.require_https.unwrap_or(true) => {}
            "http" => return Err(bad("url must use https (http is allowed in development mode only)")),
            _ => return Err(bad("url must use http or https")),
        }
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() {
            return Err(bad("url must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("url must not carry credentials"));
        }
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
            if let Some(why) = guard::refusal(ip, self.config.webhooks.policy()) {
                return Err(bad(&format!("url points to {why}, which webhooks may not reach")));
            }
        }
        Ok(url.to_string())
    }

    fn check_event_types(types: &[String]) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for t in types {
            let t = t.trim();
            if !EVENT_TYPES.contains(&t) {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "events has an unknown event type",
                )
                .long(format!("{t:?} is not an event latchkey sends; known: {}", EVENT_TYPES.join(", ")))
                .param("events"));
            }
            if !out.iter().any(|o| o == t) {
                out.push(t.to_owned());
            }
        }
        Ok(out)
    }

    fn check_description(d: Option<String>) -> Result<Option<String>> {
        match d {
            Some(d) if d.chars().count() > 512 => {
                Err(ServiceError::unprocessable("form_param_format_invalid", "description is too long")
                    .long("description must be at most 512 characters")
                    .param("description"))
            }
            other => Ok(other),
        }
    }

    /// Creates an endpoint; returns it with its secret.
    pub async fn create_webhook_endpoint(&self, new: NewEndpoint) -> Result<(WebhookEndpointRow, String)> {
        let url = self.check_endpoint_url(&new.url)?;
        let event_types = Self::check_event_types(&new.event_types)?;
        let description = Self::check_description(new.description)?.unwrap_or_default();
        let now = self.now();
        let id = self.new_id(IdKind::Message).replacen("msg_", "whe_", 1);
        let secret = sign::new_secret(self.rng.as_ref());
        let row = WebhookEndpointRow {
            secret_sealed: self.keys.seal_secret(secret.as_bytes(), &id)?,
            id,
            url,
            description,
            event_types,
            previous_secret_sealed: None,
            previous_secret_expires_at: None,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook_endpoint(&row).await?;
        Ok((row, secret))
    }

    pub async fn webhook_endpoint(&self, id: &str) -> Result<WebhookEndpointRow> {
        self.store.get_webhook_endpoint(id).await?.ok_or_else(|| ServiceError::not_found("webhook endpoint"))
    }

    pub async fn list_webhook_endpoints(&self, limit: i64, offset: i64) -> Result<(Vec<WebhookEndpointRow>, i64)> {
        Ok(self.store.list_webhook_endpoints(limit, offset).await?)
    }

    pub async fn update_webhook_endpoint(&self, id: &str, patch: EndpointPatch) -> Result<WebhookEndpointRow> {
        let mut row = self.webhook_endpoint(id).await?;
        if let Some(url) = patch.url {
            row.url = self.check_endpoint_url(&url)?;
        }
        if let Some(types) = patch.event_types {
            row.event_types = Self::check_event_types(&types)?;
        }
        if let Some(d) = Self::check_description(patch.description)? {
            row.description = d;
        }
        match patch.disabled {
            Some(true) if row.disabled_reason.is_none() => row.disabled_reason = Some("manual".into()),
            Some(false) => row.disabled_reason = None,
            _ => {}
        }
        row.updated_at = self.now();
        if !self.store.update_webhook_endpoint(&row).await? {
            return Err(ServiceError::not_found("webhook endpoint"));
        }
        Ok(row)
    }

    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<()> {
        if !self.store.delete_webhook_endpoint(id).await? {
            return Err(ServiceError::not_found("webhook endpoint"));
        }
        Ok(())
    }

    /// The endpoint's current secret.
    pub async fn webhook_secret(&self, id: &str) -> Result<String> {
        let row = self.webhook_endpoint(id).await?;
        self.open_endpoint_secret(&row.secret_sealed, &row.id)
    }

    pub(crate) fn open_endpoint_secret(&self, sealed: &str, endpoint_id: &str) -> Result<String> {
        let bytes = self.keys.open_secret(sealed, endpoint_id)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ServiceError::internal())
    }

    /// A new secret; the previous one keeps signing (a second signature) for the overlap.
    pub async fn rotate_webhook_secret(&self, id: &str) -> Result<(WebhookEndpointRow, String)> {
        let mut row = self.webhook_endpoint(id).await?;
        let now = self.now();
        let secret = sign::new_secret(self.rng.as_ref());
        row.previous_secret_sealed =
            Some(std::mem::replace(&mut row.secret_sealed, self.keys.seal_secret(secret.as_bytes(), &row.id)?));
        row.previous_secret_expires_at = Some(now + self.config.webhooks.rotation_overlap_hours.max(0) * 3_600_000);
        row.updated_at = now;
        if !self.store.update_webhook_endpoint(&row).await? {
            return Err(ServiceError::not_found("webhook endpoint"));
        }
        Ok((row, secret))
    }

    /// Deliveries to the endpoint, newest first, each with its attempts.
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: &str,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeliveryView>, i64)> {
        self.webhook_endpoint(endpoint_id).await?;
        let status = match status {
            None => None,
            Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                ServiceError::bad_request("form_param_value_invalid", "status is invalid")
                    .long("status must be pending, succeeded or failed")
                    .param("status")
            })?),
        };
        let q = DeliveryQuery { endpoint_id: endpoint_id.to_owned(), status, limit, offset };
        let (rows, total) = self.store.list_webhook_deliveries(&q).await?;
        let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
        let mut attempts = self.store.webhook_attempts(&ids).await?;
        let views = rows
            .into_iter()
            .map(|delivery| {
                let (mine, rest): (Vec<_>, Vec<_>) = attempts.drain(..).partition(|a| a.delivery_id == delivery.id);
                attempts = rest;
                DeliveryView { delivery, attempts: mine }
            })
            .collect();
        Ok((views, total))
    }

    /// Sends one message to the endpoint again (same `webhook-id`); returns how many were queued.
    pub async fn replay_webhook_message(&self, endpoint_id: &str, message_id: &str) -> Result<u64> {
        self.webhook_endpoint(endpoint_id).await?;
        if self.store.get_webhook_message(message_id).await?.is_none() {
            return Err(ServiceError::not_found("webhook message"));
        }
        let base = self.new_id(IdKind::Message).replacen("msg_", "whd_", 1) + "_";
        Ok(self.store.replay_webhook_messages(endpoint_id, Some(message_id), None, self.now(), &base).await?)
    }

    /// Sends every message since `since` (epoch ms) that the endpoint's filter takes, again.
    pub async fn replay_webhook_since(&self, endpoint_id: &str, since: i64) -> Result<u64> {
        self.webhook_endpoint(endpoint_id).await?;
        let base = self.new_id(IdKind::Message).replacen("msg_", "whd_", 1) + "_";
        Ok(self.store.replay_webhook_messages(endpoint_id, None, Some(since), self.now(), &base).await?)
    }

    /// Forgets delivered messages past the retention.
    pub async fn prune_webhook_messages(&self) -> Result<u64> {
        let before = self.now() - self.config.webhooks.retention_days.max(1) * 86_400_000;
        Ok(self.store.prune_webhook_messages(before).await?)
    }
}

/// Events of user changes, built before the write that makes them true.
impl Services {
    /// `user.updated` with the user as `change` leaves the stored record.
    pub(crate) async fn user_changed(
        &self,
        user_id: &str,
        change: impl FnOnce(&mut latchkey_store::UserRecord),
    ) -> Result<OutboxEvent> {
        let mut record = self.store.get_user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
        change(&mut record);
        Ok(self.user_event("user.updated", &record))
    }

    /// `session.revoked` for each active session of the user but `keep`, as revoking them
    /// all at `now` leaves them.
    pub(crate) async fn revocation_events(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: i64,
    ) -> Result<Vec<OutboxEvent>> {
        let sessions = self.store.sessions_for_user(user_id).await?;
        Ok(sessions
            .into_iter()
            .filter(|s| s.status == "active" && Some(s.id.as_str()) != keep)
            .map(|mut s| {
                s.status = "revoked".into();
                s.updated_at = now;
                self.session_event("session.revoked", &s)
            })
            .collect())
    }

    /// Revokes every active session of the user but `keep`, with their events.
    pub(crate) async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64> {
        let events = self.revocation_events(user_id, keep, now).await?;
        Ok(self.emitting(events).revoke_user_sessions(user_id, keep, now).await?)
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

/// Events of organizations, memberships and invitations.
impl Services {
    pub(crate) fn organization_event(&self, event_type: &str, org: &latchkey_store::OrganizationRow) -> OutboxEvent {
        let data = crate::resources::organization(&self.avatar(), org, None, crate::resources::Audience::Backend);
        self.event(event_type, data)
    }

    pub(crate) async fn membership_event(
        &self,
        event_type: &str,
        m: &latchkey_store::MembershipRow,
        org: &latchkey_store::OrganizationRow,
    ) -> Result<OutboxEvent> {
        let user = self.store.get_user(&m.user_id).await?;
        let data = crate::resources::membership(
            self,
            &self.avatar(),
            m,
            Some(org),
            None,
            user.as_ref(),
            crate::resources::Audience::Backend,
        );
        Ok(self.event(event_type, data))
    }

    pub(crate) fn invitation_event(&self, event_type: &str, inv: &latchkey_store::OrgInvitationRow) -> OutboxEvent {
        let data = crate::resources::org_invitation(self, inv, None, crate::resources::Audience::Backend);
        self.event(event_type, data)
    }
}
