//! Stamping events: Clerk's envelope around the data, with an id and the time (docs/backend-api.md
//! §12). A value of its own, so that every feature's service builds its events the same way.

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::ids::{self, IdKind};
use latchkey_core::revocation;
use latchkey_core::{Clock, Random};
use latchkey_store::OutboxEvent;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Events {
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    /// `ins_…`: named in every payload.
    instance_id: String,
    /// How long a revocation must be heard of: a token's lifetime and the verifiers' skew.
    revocation_ms: i64,
}

impl Events {
    pub fn new(clock: Arc<dyn Clock>, rng: Arc<dyn Random>, instance_id: String, token_ttl_secs: i64) -> Self {
        Self { clock, rng, instance_id, revocation_ms: revocation_lifetime_ms(token_ttl_secs) }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn new_id(&self, kind: IdKind) -> String {
        ids::new_id(kind, self.now(), self.rng.as_ref())
    }

    /// An event of `event_type` about `data`, stamped now.
    pub fn event(&self, event_type: &str, data: Value) -> OutboxEvent {
        let now = self.now();
        let payload = json!({
            "data": data,
            "object": "event",
            "type": event_type,
            "timestamp": now,
            "instance_id": self.instance_id,
        });
        OutboxEvent {
            id: self.new_id(IdKind::Message),
            event_type: event_type.to_owned(),
            revocation: revocation::from_event(event_type, &payload["data"], now, self.revocation_ms),
            payload: payload.to_string(),
            created_at: now,
        }
    }
}

/// How long a revocation entry lives: a token made just before it can be used until its expiry
/// plus the skew verifiers allow (a minute, well above the 5 s Clerk's SDKs allow).
pub fn revocation_lifetime_ms(token_ttl_secs: i64) -> i64 {
    (token_ttl_secs + 60) * 1000
}
