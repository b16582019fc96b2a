//! Webhook endpoints as administrators manage them (Backend API, `latchkey webhooks`):
//! creating them (with the URL, event type and description checks), updating, deleting, their
//! signing secrets and rotation, deliveries, replays and pruning old messages.

use latchkey_core::ids::IdKind;
use latchkey_store::{DeliveryQuery, DeliveryStatus, WebhookEndpointRow};

use crate::authority::Operator;
use crate::{Result, ServiceError};

use super::{guard, sign, DeliveryView, EndpointPatch, NewEndpoint, WebhookService, EVENT_TYPES};

impl WebhookService {
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
            "http" if !self.config.require_https.unwrap_or(true) => {}
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
            if let Some(why) = guard::refusal(ip, self.config.policy()) {
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
    pub async fn create_webhook_endpoint(
        &self,
        _operator: &Operator,
        new: NewEndpoint,
    ) -> Result<(WebhookEndpointRow, String)> {
        let url = self.check_endpoint_url(&new.url)?;
        let event_types = Self::check_event_types(&new.event_types)?;
        let description = Self::check_description(new.description)?.unwrap_or_default();
        let now = self.now();
        let id = self.new_id(IdKind::Message).replacen("msg_", "whe_", 1);
        let secret = sign::new_secret(self.rng.as_ref());
        let row = WebhookEndpointRow {
            secret_sealed: self.seal_endpoint_secret(&secret, &id)?,
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

    pub async fn update_webhook_endpoint(
        &self,
        _operator: &Operator,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<WebhookEndpointRow> {
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

    pub async fn delete_webhook_endpoint(&self, _operator: &Operator, id: &str) -> Result<()> {
        if !self.store.delete_webhook_endpoint(id).await? {
            return Err(ServiceError::not_found("webhook endpoint"));
        }
        Ok(())
    }

    /// The endpoint's current secret.
    pub async fn webhook_secret(&self, _operator: &Operator, id: &str) -> Result<String> {
        let row = self.webhook_endpoint(id).await?;
        self.open_endpoint_secret(&row.secret_sealed, &row.id)
    }

    /// A new secret; the previous one keeps signing (a second signature) for the overlap.
    pub async fn rotate_webhook_secret(&self, _operator: &Operator, id: &str) -> Result<(WebhookEndpointRow, String)> {
        let mut row = self.webhook_endpoint(id).await?;
        let now = self.now();
        let secret = sign::new_secret(self.rng.as_ref());
        row.previous_secret_sealed =
            Some(std::mem::replace(&mut row.secret_sealed, self.seal_endpoint_secret(&secret, &row.id)?));
        row.previous_secret_expires_at = Some(now + self.config.rotation_overlap_hours.max(0) * 3_600_000);
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
    pub async fn replay_webhook_message(
        &self,
        _operator: &Operator,
        endpoint_id: &str,
        message_id: &str,
    ) -> Result<u64> {
        self.webhook_endpoint(endpoint_id).await?;
        if self.store.get_webhook_message(message_id).await?.is_none() {
            return Err(ServiceError::not_found("webhook message"));
        }
        let base = self.new_id(IdKind::Message).replacen("msg_", "whd_", 1) + "_";
        Ok(self.store.replay_webhook_messages(endpoint_id, Some(message_id), None, self.now(), &base).await?)
    }

    /// Sends every message since `since` (epoch ms) that the endpoint's filter takes, again.
    pub async fn replay_webhook_since(&self, _operator: &Operator, endpoint_id: &str, since: i64) -> Result<u64> {
        self.webhook_endpoint(endpoint_id).await?;
        let base = self.new_id(IdKind::Message).replacen("msg_", "whd_", 1) + "_";
        Ok(self.store.replay_webhook_messages(endpoint_id, None, Some(since), self.now(), &base).await?)
    }

    /// Forgets delivered messages past the retention.
    pub async fn prune_webhook_messages(&self) -> Result<u64> {
        let before = self.now() - self.config.retention_days.max(1) * 86_400_000;
        Ok(self.store.prune_webhook_messages(before).await?)
    }
}
