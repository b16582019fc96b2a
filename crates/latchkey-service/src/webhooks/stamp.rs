//! Stamping events: Clerk's envelope around the data, with an id and the time (docs/backend-api.md
//! §12). A value of its own, so that every feature's service builds its events the same way.

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::ids::{self, IdKind};
use latchkey_core::{Clock, Random};
use latchkey_store::OutboxEvent;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Events {
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    /// `ins_…`: named in every payload.
    instance_id: String,
}

impl Events {
    pub fn new(clock: Arc<dyn Clock>, rng: Arc<dyn Random>, instance_id: String) -> Self {
        Self { clock, rng, instance_id }
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
            payload: payload.to_string(),
            created_at: now,
        }
    }
}
