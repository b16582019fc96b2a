//! [`WebhookStore`] in portable SQL: endpoints, the deliveries of the outbox's messages, and
//! their attempts.

use async_trait::async_trait;

use super::base::SqlStore;
use super::outbox::write_events;
use super::shared::{all, insert_in, one, placeholders, update_in, Cells, Column, Filter, Record};
use crate::error::{Result, StoreError};
use crate::sql::{Row, SqlDriver, SqlValue};
use crate::webhooks::*;

record!(WebhookEndpointRow in "webhook_endpoints" {
    id, url, description, event_types, secret_sealed, previous_secret_sealed, previous_secret_expires_at,
    disabled_reason, created_at, updated_at,
});
record!(AttemptRow in "webhook_attempts" {
    id, delivery_id, attempted_at, status_code, succeeded, error, duration_ms,
});

/// Deliveries with their messages, as `d` and `m`.
const DELIVERIES: &str = "FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id";
const DELIVERY_COLS: &str =
    "d.id, d.message_id, d.endpoint_id, m.event_type, d.status, d.attempts, d.next_attempt_at, d.created_at, d.updated_at";

/// An endpoint's event types, kept as `,a,b,` (empty: every event) so that a `LIKE '%,type,%'`
/// finds its subscribers.
impl Column for Vec<String> {
    fn read(c: &mut Cells<'_>) -> Result<Self> {
        let text: String = c.read()?;
        Ok(text.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect())
    }
    fn write(&self, out: &mut Vec<SqlValue>) {
        let text = if self.is_empty() { String::new() } else { format!(",{},", self.join(",")) };
        out.push(text.into());
    }
}

impl Column for DeliveryStatus {
    fn read(c: &mut Cells<'_>) -> Result<Self> {
        let status: String = c.read()?;
        DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Other(format!("unknown delivery status {status:?}")))
    }
    fn write(&self, out: &mut Vec<SqlValue>) {
        out.push(self.as_str().into());
    }
}

/// A delivery as [`DELIVERY_COLS`] select it.
fn read_delivery(c: &mut Cells<'_>) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: c.read()?,
        message_id: c.read()?,
        endpoint_id: c.read()?,
        event_type: c.read()?,
        status: c.read()?,
        attempts: c.read()?,
        next_attempt_at: c.read()?,
        created_at: c.read()?,
        updated_at: c.read()?,
    })
}

fn delivery_from(r: &Row) -> Result<DeliveryRow> {
    read_delivery(&mut Cells::new(r))
}

/// Writes events outside any change, and wakes this instance's delivery worker.
async fn append<D: SqlDriver>(s: &SqlStore<D>, events: &[OutboxEvent], only_subscribed: bool) -> Result<()> {
    let mut tx = s.db.begin().await?;
    write_events(&mut tx, events, only_subscribed).await?;
    tx.commit().await?;
    s.outbox_signal.notify_one();
    Ok(())
}

#[async_trait]
impl<D: SqlDriver> WebhookStore for SqlStore<D> {
    async fn append_events(&self, events: &[OutboxEvent]) -> Result<()> {
        append(self, events, false).await
    }

    async fn append_subscribed_events(&self, events: &[OutboxEvent]) -> Result<()> {
        append(self, events, true).await
    }

    async fn insert_webhook_endpoint(&self, e: &WebhookEndpointRow) -> Result<()> {
        let mut tx = self.db.begin().await?;
        insert_in(&mut tx, e).await?;
        tx.commit().await
    }

    async fn get_webhook_endpoint(&self, id: &str) -> Result<Option<WebhookEndpointRow>> {
        self.get(id).await
    }

    async fn list_webhook_endpoints(&self, limit: i64, offset: i64) -> Result<(Vec<WebhookEndpointRow>, i64)> {
        self.page(Filter::default(), "created_at, id", limit, offset).await
    }

    async fn update_webhook_endpoint(&self, e: &WebhookEndpointRow) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let n = update_in(&mut tx, e).await?;
        tx.commit().await?;
        if n == 1 && e.disabled_reason.is_none() {
            // Deliveries that waited while it was disabled are due again.
            self.outbox_signal.notify_one();
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
                    WebhookEndpointRow::COLUMNS.iter().map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", "),
                    placeholders(ids.len(), 1)
                ),
                &ids,
            )
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let mut c = Cells::new(r);
                Ok(ClaimedDelivery {
                    delivery: read_delivery(&mut c)?,
                    payload: c.read()?,
                    message_created_at: c.read()?,
                    endpoint: WebhookEndpointRow::read(&mut c)?,
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
            insert_in(&mut tx, a).await?;
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
        let mut f = Filter::default();
        f.equals("d.endpoint_id", &q.endpoint_id);
        if let Some(status) = q.status {
            f.equals("d.status", status.as_str());
        }
        let total = self.count(&format!("SELECT COUNT(*) {DELIVERIES} WHERE {}", f.sql()), &f.params).await?;
        let (limit, offset) = (f.param(q.limit), f.param(q.offset));
        let sql = format!(
            "SELECT {DELIVERY_COLS} {DELIVERIES} WHERE {} ORDER BY d.created_at DESC, d.id DESC LIMIT {limit} OFFSET {offset}",
            f.sql()
        );
        Ok((all(&self.db.read(&sql, &f.params).await?, delivery_from)?, total))
    }

    async fn get_webhook_delivery(&self, id: &str) -> Result<Option<DeliveryRow>> {
        let rows = self.db.read(&format!("SELECT {DELIVERY_COLS} {DELIVERIES} WHERE d.id = $1"), &[id.into()]).await?;
        one(rows, delivery_from)
    }

    async fn webhook_attempts(&self, delivery_ids: &[String]) -> Result<Vec<AttemptRow>> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<SqlValue> = delivery_ids.iter().map(SqlValue::from).collect();
        let filter = format!("delivery_id IN ({}) ORDER BY attempted_at, id", placeholders(params.len(), 1));
        self.find_all(&filter, &params).await
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
            self.outbox_signal.notify_one();
        }
        Ok(n)
    }

    async fn get_webhook_message(&self, id: &str) -> Result<Option<OutboxEvent>> {
        let rows = self
            .db
            .read("SELECT id, event_type, payload, created_at FROM webhook_messages WHERE id = $1", &[id.into()])
            .await?;
        one(rows, |r| {
            Ok(OutboxEvent {
                id: r.text(0)?,
                event_type: r.text(1)?,
                payload: r.text(2)?,
                created_at: r.int(3)?,
                revocation: None,
            })
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

    async fn pending_webhook_deliveries(&self) -> Result<i64> {
        let rows = self.db.read("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'", &[]).await?;
        rows.first().map_or(Ok(0), |r| r.int(0))
    }
}
