//! The transaction wrapper that writes a change's events at its commit (see
//! [`Store::emitting`](crate::Store::emitting)), and the statements that write events.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::Result;
use crate::sql::{Row, SqlTx, SqlValue};
use crate::webhooks::OutboxEvent;

/// A write transaction that writes `events` at commit when any of its statements changed a
/// row (so a write that turned out to change nothing leaves no event behind).
pub(super) struct OutboxTx {
    inner: Box<dyn SqlTx>,
    events: Arc<[OutboxEvent]>,
    signal: Arc<Notify>,
    changed: u64,
}

impl OutboxTx {
    pub(super) fn new(inner: Box<dyn SqlTx>, events: Arc<[OutboxEvent]>, signal: Arc<Notify>) -> Self {
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
pub(super) async fn write_events(tx: &mut Box<dyn SqlTx>, events: &[OutboxEvent], only_subscribed: bool) -> Result<()> {
    for e in events {
        if let Some(r) = &e.revocation {
            let id = format!("rev_{}", e.id.strip_prefix("msg_").unwrap_or(&e.id));
            insert_revocation(tx, &id, r).await?;
        }
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

/// Writes one revocation entry (docs/revocations.md) under `id`.
pub(super) async fn insert_revocation(
    tx: &mut Box<dyn SqlTx>,
    id: &str,
    r: &latchkey_core::revocation::Revocation,
) -> Result<()> {
    tx.execute(
        "INSERT INTO revocations (id, kind, subject, organization_id, role, reason, at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        &[
            id.into(),
            r.kind.clone().into(),
            r.subject.clone().into(),
            r.organization_id.clone().into(),
            r.role.clone().into(),
            r.reason.clone().into(),
            r.at.into(),
            r.expires_at.into(),
        ],
    )
    .await?;
    Ok(())
}
