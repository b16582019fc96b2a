//! [`WebhookStore`] in portable SQL, and the transaction wrapper that writes a change's
//! events at its commit.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::Result;
use crate::sql::{Row, SqlDriver, SqlTx, SqlValue};
use crate::sqlstore::{all, one, placeholders, SqlStore};
use crate::webhooks::*;

/// A write transaction that writes `events` at commit when any of its statements changed a
/// row (so a write that turned out to change nothing leaves no event behind).
pub(crate) struct OutboxTx {
    inner: Box<dyn SqlTx>,
    events: Arc<[OutboxEvent]>,
    signal: Arc<Notify>,
    changed: u64,
}

impl OutboxTx {
    pub(crate) fn new(inner: Box<dyn SqlTx>, events: Arc<[OutboxEvent]>, signal: Arc<Notify>) -> Self {
        Self { inner, events, signal, changed: 0 }
    }
}

#[async_trait]
impl SqlTx for OutboxTx {
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
        self.inner.query(sql, params).await
    }

    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64> {
        let n = self.inner.execute(sql, params).await?;
        self.changed += n;
        Ok(n)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let wrote = self.changed > 0;
        if wrote {
            write_events(&mut self.inner, &self.events, false).await?;
        }
        self.inner.commit().await?;
        if wrote {
            self.signal.notify_one();
        }
        Ok(())
    }
}

/// The enabled endpoints whose filter takes the event type bound to `$N`.
fn subscribers(event_type_param: &str) -> String {
    format!("FROM webhook_endpoints e WHERE e.disabled_reason IS NULL AND (e.event_types = '' OR e.event_types LIKE {event_type_param})")
}

/// Writes each event and queues one delivery of it per enabled endpoint whose filter takes it;
/// with `only_subscribed`, an event no endpoint takes is not written at all.
async fn write_events(tx: &mut Box<dyn SqlTx>, events: &[OutboxEvent], only_subscribed: bool) -> Result<()> {
    for e in events {
        let params = [e.id.clone().into(), e.event_type.clone().into(), e.payload.clone().into(), e.created_at.into()];
        if only_subscribed {
            let pattern: SqlValue = format!("%,{},%", e.event_type).into();
            let [a, b, c, d] = params;
            tx.execute(
                &format!(
                    "INSERT INTO webhook_messages (id, event_type, payload, created_at) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 {})",
                    subscribers("$5")
                ),
                &[a, b, c, d, pattern],
            )
            .await?;
        } else {
            tx.execute(
                "INSERT INTO webhook_messages (id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)",
                &params,
            )
            .await?;
        }
        tx.execute(
            &format!(
                "INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at) \
                 SELECT $3 || substr(e.id, 5), $1, e.id, 'pending', 0, $2, $2, $2 {}",
                subscribers("$4")
            ),
            &[
                e.id.clone().into(),
                e.created_at.into(),
                delivery_id_base(&e.id).into(),
                format!("%,{},%", e.event_type).into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Delivery ids of a message: `whd_<message's random part>_<endpoint's>`, unique per pair.
fn delivery_id_base(message_id: &str) -> String {
    format!("whd_{}_", message_id.strip_prefix("msg_").unwrap_or(message_id))
}

const ENDPOINT_COLS: &str = "id, url, description, event_types, secret_sealed, previous_secret_sealed, \
     previous_secret_expires_at, disabled_reason, created_at, updated_at";
const DELIVERY_COLS: &str =
    "d.id, d.message_id, d.endpoint_id, m.event_type, d.status, d.attempts, d.next_attempt_at, d.created_at, d.updated_at";
const ATTEMPT_COLS: &str = "id, delivery_id, attempted_at, status_code, succeeded, error, duration_ms";

fn event_types_text(types: &[String]) -> String {
    if types.is_empty() {
        String::new()
    } else {
        format!(",{},", types.join(","))
    }
}

fn endpoint_params(e: &WebhookEndpointRow) -> Vec<SqlValue> {
    vec![
        e.id.clone().into(),
        e.url.clone().into(),
        e.description.clone().into(),
        event_types_text(&e.event_types).into(),
        e.secret_sealed.clone().into(),
        e.previous_secret_sealed.clone().into(),
        e.previous_secret_expires_at.into(),
        e.disabled_reason.clone().into(),
        e.created_at.into(),
        e.updated_at.into(),
    ]
}

fn endpoint_from(r: &Row, at: usize) -> Result<WebhookEndpointRow> {
    Ok(WebhookEndpointRow {
        id: r.text(at)?,
        url: r.text(at + 1)?,
        description: r.text(at + 2)?,
        event_types: r.text(at + 3)?.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        secret_sealed: r.text(at + 4)?,
        previous_secret_sealed: r.opt_text(at + 5)?,
        previous_secret_expires_at: r.opt_int(at + 6)?,
        disabled_reason: r.opt_text(at + 7)?,
        created_at: r.int(at + 8)?,
        updated_at: r.int(at + 9)?,
    })
}

fn delivery_from(r: &Row) -> Result<DeliveryRow> {
    let status = r.text(4)?;
    Ok(DeliveryRow {
        id: r.text(0)?,
        message_id: r.text(1)?,
        endpoint_id: r.text(2)?,
        event_type: r.text(3)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| crate::StoreError::Other(format!("unknown delivery status {status:?}")))?,
        attempts: r.int(5)?,
        next_attempt_at: r.opt_int(6)?,
        created_at: r.int(7)?,
        updated_at: r.int(8)?,
    })
}

fn attempt_from(r: &Row) -> Result<AttemptRow> {
    Ok(AttemptRow {
        id: r.text(0)?,
        delivery_id: r.text(1)?,
        attempted_at: r.int(2)?,
        status_code: r.opt_int(3)?,
        succeeded: r.bool(4)?,
        error: r.opt_text(5)?,
        duration_ms: r.int(6)?,
    })
}

#[async_trait]
impl<D: SqlDriver> WebhookStore for SqlStore<D> {
    async fn append_events(&self, events: &[OutboxEvent]) -> Result<()> {
        let mut tx = self.db.begin().await?;
        write_events(&mut tx, events, false).await?;
        tx.commit().await?;
        crate::Store::outbox_signal(self).notify_one();
        Ok(())
    }

    async fn append_subscribed_events(&self, events: &[OutboxEvent]) -> Result<()> {
        let mut tx = self.db.begin().await?;
        write_events(&mut tx, events, true).await?;
        tx.commit().await?;
        crate::Store::outbox_signal(self).notify_one();
        Ok(())
    }

    async fn insert_webhook_endpoint(&self, e: &WebhookEndpointRow) -> Result<()> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            &format!("INSERT INTO webhook_endpoints ({ENDPOINT_COLS}) VALUES ({})", placeholders(10, 1)),
            &endpoint_params(e),
        )
        .await?;
        tx.commit().await
    }

    async fn get_webhook_endpoint(&self, id: &str) -> Result<Option<WebhookEndpointRow>> {
        let rows =
            self.db.read(&format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1"), &[id.into()]).await?;
        one(rows, |r| endpoint_from(r, 0))
    }

    async fn list_webhook_endpoints(&self, limit: i64, offset: i64) -> Result<(Vec<WebhookEndpointRow>, i64)> {
        let rows = self
            .db
            .read(
                &format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints ORDER BY created_at, id LIMIT $1 OFFSET $2"),
                &[limit.into(), offset.into()],
            )
            .await?;
        let total = one(self.db.read("SELECT COUNT(*) FROM webhook_endpoints", &[]).await?, |r| r.int(0))?;
        Ok((all(&rows, |r| endpoint_from(r, 0))?, total.unwrap_or(0)))
    }

    async fn update_webhook_endpoint(&self, e: &WebhookEndpointRow) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                "UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, secret_sealed = $5, \
                 previous_secret_sealed = $6, previous_secret_expires_at = $7, disabled_reason = $8, \
                 created_at = $9, updated_at = $10 WHERE id = $1",
                &endpoint_params(e),
            )
            .await?;
        tx.commit().await?;
        if n == 1 && e.disabled_reason.is_none() {
            // Deliveries that waited while it was disabled are due again.
            crate::Store::outbox_signal(self).notify_one();
        }
        Ok(n == 1)
    }

    async fn delete_webhook_endpoint(&self, id: &str) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let n = tx.execute("DELETE FROM webhook_endpoints WHERE id = $1", &[id.into()]).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn claim_webhook_deliveries(&self, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<ClaimedDelivery>> {
        let mut tx = self.db.begin().await?;
        let due = tx
            .query(
                &format!(
                    "SELECT d.id FROM webhook_deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                     AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.disabled_reason IS NULL) \
                     ORDER BY d.next_attempt_at, d.id LIMIT $2{}",
                    self.db.skip_locked()
                ),
                &[now.into(), limit.into()],
            )
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<SqlValue> = due.iter().map(|r| r.text(0).map(SqlValue::from)).collect::<Result<_>>()?;
        let mut params = vec![SqlValue::from(now + lease_ms)];
        params.extend(ids.iter().cloned());
        tx.execute(
            &format!("UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN ({})", placeholders(ids.len(), 2)),
            &params,
        )
        .await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {DELIVERY_COLS}, m.payload, m.created_at, {} FROM webhook_deliveries d \
                     JOIN webhook_messages m ON m.id = d.message_id JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                     WHERE d.id IN ({}) ORDER BY m.created_at, d.id",
                    ENDPOINT_COLS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", "),
                    placeholders(ids.len(), 1)
                ),
                &ids,
            )
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    delivery: delivery_from(r)?,
                    payload: r.text(9)?,
                    message_created_at: r.int(10)?,
                    endpoint: endpoint_from(r, 11)?,
                })
            })
            .collect()
    }

    async fn record_webhook_attempts(&self, outcomes: &[AttemptOutcome]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for o in outcomes {
            let a = &o.attempt;
            tx.execute(
                &format!("INSERT INTO webhook_attempts ({ATTEMPT_COLS}) VALUES ({})", placeholders(7, 1)),
                &[
                    a.id.clone().into(),
                    a.delivery_id.clone().into(),
                    a.attempted_at.into(),
                    a.status_code.into(),
                    a.succeeded.into(),
                    a.error.clone().into(),
                    a.duration_ms.into(),
                ],
            )
            .await?;
            tx.execute(
                "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = $3, updated_at = $4 \
                 WHERE id = $1",
                &[a.delivery_id.clone().into(), o.status.as_str().into(), o.next_attempt_at.into(), a.attempted_at.into()],
            )
            .await?;
            if let Some(reason) = &o.disable_endpoint {
                tx.execute(
                    "UPDATE webhook_endpoints SET disabled_reason = $2, updated_at = $3 WHERE id = \
                     (SELECT endpoint_id FROM webhook_deliveries WHERE id = $1)",
                    &[a.delivery_id.clone().into(), reason.clone().into(), a.attempted_at.into()],
                )
                .await?;
            }
        }
        tx.commit().await
    }

    async fn list_webhook_deliveries(&self, q: &DeliveryQuery) -> Result<(Vec<DeliveryRow>, i64)> {
        let mut filter = "d.endpoint_id = $1".to_owned();
        let mut params: Vec<SqlValue> = vec![q.endpoint_id.clone().into()];
        if let Some(status) = q.status {
            filter.push_str(" AND d.status = $2");
            params.push(status.as_str().into());
        }
        let total = one(
            self.db
                .read(
                    &format!(
                        "SELECT COUNT(*) FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id \
                         WHERE {filter}"
                    ),
                    &params,
                )
                .await?,
            |r| r.int(0),
        )?
        .unwrap_or(0);
        let n = params.len();
        params.extend([q.limit.into(), q.offset.into()]);
        let rows = self
            .db
            .read(
                &format!(
                    "SELECT {DELIVERY_COLS} FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id \
                     WHERE {filter} ORDER BY d.created_at DESC, d.id DESC LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                ),
                &params,
            )
            .await?;
        Ok((all(&rows, delivery_from)?, total))
    }

    async fn get_webhook_delivery(&self, id: &str) -> Result<Option<DeliveryRow>> {
        let rows = self
            .db
            .read(
                &format!(
                    "SELECT {DELIVERY_COLS} FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id \
                     WHERE d.id = $1"
                ),
                &[id.into()],
            )
            .await?;
        one(rows, delivery_from)
    }

    async fn webhook_attempts(&self, delivery_ids: &[String]) -> Result<Vec<AttemptRow>> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<SqlValue> = delivery_ids.iter().map(SqlValue::from).collect();
        let rows = self
            .db
            .read(
                &format!(
                    "SELECT {ATTEMPT_COLS} FROM webhook_attempts WHERE delivery_id IN ({}) ORDER BY attempted_at, id",
                    placeholders(params.len(), 1)
                ),
                &params,
            )
            .await?;
        all(&rows, attempt_from)
    }

    async fn replay_webhook_messages(
        &self,
        endpoint_id: &str,
        message_id: Option<&str>,
        since: Option<i64>,
        now: i64,
        id_base: &str,
    ) -> Result<u64> {
        let select = "INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at) \
             SELECT $3 || substr(m.id, 5), m.id, e.id, 'pending', 0, $2, $2, $2 \
             FROM webhook_messages m JOIN webhook_endpoints e ON e.id = $1 WHERE ";
        let mut tx = self.db.begin().await?;
        let n = match (message_id, since) {
            (Some(id), _) => {
                tx.execute(
                    &format!("{select}m.id = $4"),
                    &[endpoint_id.into(), now.into(), id_base.into(), id.into()],
                )
                .await?
            }
            (None, Some(since)) => {
                tx.execute(
                    &format!(
                        "{select}m.created_at >= $4 AND (e.event_types = '' OR e.event_types LIKE '%,' || m.event_type || ',%')"
                    ),
                    &[endpoint_id.into(), now.into(), id_base.into(), since.into()],
                )
                .await?
            }
            (None, None) => 0,
        };
        tx.commit().await?;
        if n > 0 {
            crate::Store::outbox_signal(self).notify_one();
        }
        Ok(n)
    }

    async fn get_webhook_message(&self, id: &str) -> Result<Option<OutboxEvent>> {
        let rows = self
            .db
            .read("SELECT id, event_type, payload, created_at FROM webhook_messages WHERE id = $1", &[id.into()])
            .await?;
        one(rows, |r| {
            Ok(OutboxEvent { id: r.text(0)?, event_type: r.text(1)?, payload: r.text(2)?, created_at: r.int(3)? })
        })
    }

    async fn prune_webhook_messages(&self, before: i64) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                "DELETE FROM webhook_messages WHERE created_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = webhook_messages.id AND d.status = 'pending')",
                &[before.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}
