//! `POST /v1/sync/push`: the envelope is checked whole (a malformed one is a 400 and nothing
//! is applied); each operation is then validated on its own, and a bad one becomes a
//! `rejected` result that still counts as processed.

use latchkey_core::sync::hlc::Stamp;
use latchkey_core::sync::migration::{steps_from, Migration};
use latchkey_core::sync::{valid_id, Rejection};
use latchkey_store::{SyncOpBody, SyncOpIn, SyncPush, SyncPushOutcome, SyncWrite};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::SyncService;
use super::{space_index, SpaceAccess, SpaceChanged, SyncCaller, PERSONAL_SPACE};
use crate::{ErrorKind, Result, ServiceError};

#[derive(Deserialize)]
struct Envelope<'a> {
    client_id: Value,
    schema_version: Value,
    #[serde(borrow)]
    ops: Vec<&'a RawValue>,
}

/// The usual shape of an operation, read without building a JSON tree. Anything else (a
/// member missing or of another type) is read again as a `Value` for its precise answer.
#[derive(Deserialize)]
struct WireOp<'a> {
    seq: i64,
    #[serde(borrow)]
    op_id: Cow<'a, str>,
    #[serde(borrow)]
    space: Cow<'a, str>,
    #[serde(borrow)]
    table: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    hlc: Cow<'a, str>,
    #[serde(default)]
    fields: Option<Map<String, Value>>,
}

/// An operation's members as the checks read them (`None`: missing or of the wrong type).
struct OpParts<'x> {
    space: Option<&'x str>,
    table: Option<&'x str>,
    id: Option<&'x str>,
    action: Option<&'x str>,
    hlc: Option<&'x str>,
    /// The fields, when they are an object.
    fields: Option<Map<String, Value>>,
}

pub type PushResponse = Value;

/// What every operation of one push is judged against.
struct OpContext<'a> {
    client_id: &'a str,
    spaces: HashMap<&'a str, &'a SpaceAccess>,
    now: i64,
    /// The migrations that bring this push's schema version up to the current one.
    steps: Vec<&'a Migration>,
}

fn invalid(param: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::bad_request("sync_push_invalid", message).param(param)
}

impl SyncService {
    /// Checks a schema version a client sent against what this server accepts.
    pub fn check_schema_version(&self, version: i64) -> Result<()> {
        let c = &self.config;
        if (c.min_schema_version..=c.schema_version).contains(&version) {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorKind::Conflict,
            "sync_schema_version_unsupported",
            format!("Schema version {version} is not accepted here."),
        )
        .long(format!(
            "This server accepts schema versions {} to {}; update the app and sync again (its outbox is kept).",
            c.min_schema_version, c.schema_version
        ))
        .param("schema_version")
        .meta("min_schema_version", json!(c.min_schema_version))
        .meta("max_schema_version", json!(c.schema_version)))
    }

    /// A space's epoch: random, so a recreated space never matches an old cursor.
    fn new_epoch(&self) -> String {
        let mut bytes = [0u8; 8];
        self.rng.fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub async fn push(&self, caller: &SyncCaller, body: &[u8]) -> Result<PushResponse> {
        self.limit_pushes(&caller.user_id).await?;
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
            ServiceError::bad_request("sync_push_invalid", "The body must be a JSON push request.")
                .long(format!("Expected {{client_id, schema_version, ops: [...]}}: {e}"))
        })?;
        let client_id = envelope
            .client_id
            .as_str()
            .filter(|c| valid_id(c))
            .ok_or_else(|| invalid("client_id", "client_id must be 1 to 128 letters, digits, _ or -."))?
            .to_owned();
        let version = envelope
            .schema_version
            .as_i64()
            .ok_or_else(|| invalid("schema_version", "schema_version must be an integer."))?;
        self.check_schema_version(version)?;
        let max = self.config.max_ops_per_push;
        if envelope.ops.len() > max {
            return Err(ServiceError::new(
                ErrorKind::PayloadTooLarge,
                "sync_push_too_large",
                format!("A push may carry at most {max} operations; this one has {}.", envelope.ops.len()),
            )
            .long("Nothing was applied. Push the outbox in smaller batches."));
        }
        // Organization spaces are looked up only when an operation names one.
        let wire: Vec<Option<WireOp<'_>>> =
            envelope.ops.iter().map(|raw| serde_json::from_str::<WireOp<'_>>(raw.get()).ok()).collect();
        let personal_only = wire.iter().all(|op| op.as_ref().is_some_and(|op| op.space == PERSONAL_SPACE));
        let spaces = if personal_only {
            vec![SpaceAccess::personal(&caller.user_id)]
        } else {
            self.directory.spaces_of(&caller.user_id).await?
        };
        let now = self.now();
        let steps = steps_from(&self.config.migrations, version);
        let ctx = OpContext { client_id: &client_id, spaces: space_index(&spaces), now, steps };
        let mut ops = Vec::with_capacity(envelope.ops.len());
        for (i, (raw, fast)) in envelope.ops.iter().zip(wire).enumerate() {
            let op = match fast {
                Some(op) => self.sync_wire_op(op, i, &ctx)?,
                None => self.sync_op(raw, i, &ctx)?,
            };
            if let Some(first) = ops.first().map(|o: &SyncOpIn| o.seq) {
                if op.seq != first + i as i64 {
                    return Err(invalid("ops", "The seq of each operation must be one more than the one before."));
                }
            }
            ops.push(op);
        }
        let full_spaces = self.refuse_puts_to_full_spaces(&mut ops).await?;
        let new_epoch = self.new_epoch();
        let push = SyncPush { user_id: caller.user_id.clone(), client_id, ops, now, new_epoch, full_spaces };
        match self.store.sync_push(&push).await? {
            SyncPushOutcome::Done(done) => {
                // Where the store fans changes out, they come back through the listener.
                if !self.store.sync_fans_out() {
                    for (space, seq) in done.changed {
                        self.hub.publish(SpaceChanged { space, seq });
                    }
                }
                let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
                for r in &done.results {
                    *by_status.entry(r["status"].as_str().unwrap_or("unknown")).or_default() += 1;
                }
                for (status, n) in by_status {
                    self.telemetry.add("latchkey_sync_ops_total", &[("result", status)], n);
                }
                Ok(json!({"results": done.results, "last_seq": done.last_seq}))
            }
            SyncPushOutcome::Gap { expected_seq } => Err(ServiceError::new(
                ErrorKind::Conflict,
                "sync_seq_gap",
                format!("The next operation of this client must have seq {expected_seq}."),
            )
            .long("Nothing was applied. Push the outbox from that seq on, in order.")
            .meta("expected_seq", json!(expected_seq))),
            SyncPushOutcome::UserGone => Err(ServiceError::unauthenticated("The session token is invalid.")),
            SyncPushOutcome::UnknownClient => Err(ServiceError::new(
                ErrorKind::Conflict,
                "sync_client_unknown",
                "This client is unknown here (new, or expired after a long time offline).",
            )
            .long("Nothing was applied. Start a new client id, keep the cursor, and push the outbox again from seq 1; op ids keep that safe.")
            .meta("expected_seq", json!(1))),
        }
    }

    /// Puts to a space that already holds `max_space_bytes` become `rejected` results (a soft
    /// quota: the push that crosses it is taken whole); the full spaces are returned, where the
    /// store takes deletes only of records the space holds.
    async fn refuse_puts_to_full_spaces(&self, ops: &mut [SyncOpIn]) -> Result<Vec<String>> {
        let quota = self.config.max_space_bytes;
        if quota <= 0 {
            return Ok(Vec::new());
        }
        let mut spaces: Vec<String> = ops
            .iter()
            .filter_map(|op| match &op.body {
                SyncOpBody::Write(w) => Some(w.space.clone()),
                SyncOpBody::Rejected(_) => None,
            })
            .collect();
        spaces.sort_unstable();
        spaces.dedup();
        let full: Vec<String> =
            self.store.sync_spaces(&spaces).await?.into_iter().filter(|s| s.bytes >= quota).map(|s| s.space).collect();
        if full.is_empty() {
            return Ok(full);
        }
        for op in ops.iter_mut() {
            if matches!(&op.body, SyncOpBody::Write(w) if w.fields.is_some() && full.contains(&w.space)) {
                op.body = SyncOpBody::Rejected(Rejection::new(
                    "space_quota_exceeded",
                    format!("This space is full: it holds its quota of {quota} bytes. Delete records to make room."),
                ));
            }
        }
        Ok(full)
    }

    /// One operation of the usual shape.
    fn sync_wire_op(&self, op: WireOp<'_>, i: usize, ctx: &OpContext<'_>) -> Result<SyncOpIn> {
        let (seq, op_id) = op_head(Some(op.seq), Some(&op.op_id), i)?;
        let parts = OpParts {
            space: Some(&op.space),
            table: Some(&op.table),
            id: Some(&op.id),
            action: Some(&op.action),
            hlc: Some(&op.hlc),
            fields: op.fields,
        };
        Ok(SyncOpIn { seq, op_id, body: self.sync_body(parts, ctx) })
    }

    /// One operation of any other shape: its `seq` and `op_id` must be sound (else the push
    /// is malformed); the rest is judged per operation.
    fn sync_op(&self, raw: &RawValue, i: usize, ctx: &OpContext<'_>) -> Result<SyncOpIn> {
        let Ok(Value::Object(mut op)) = serde_json::from_str::<Value>(raw.get()) else {
            return Err(invalid("ops", format!("ops[{i}] must be an object.")));
        };
        let fields = match op.remove("fields") {
            Some(Value::Object(fields)) => Some(fields),
            _ => None,
        };
        let text = |key: &str| op.get(key).and_then(Value::as_str);
        let (seq, op_id) = op_head(op.get("seq").and_then(Value::as_i64), text("op_id"), i)?;
        let parts = OpParts {
            space: text("space"),
            table: text("table"),
            id: text("id"),
            action: text("action"),
            hlc: text("hlc"),
            fields,
        };
        Ok(SyncOpIn { seq, op_id, body: self.sync_body(parts, ctx) })
    }

    fn sync_body(&self, parts: OpParts<'_>, ctx: &OpContext<'_>) -> SyncOpBody {
        match self.sync_write(parts, ctx) {
            Ok(write) => SyncOpBody::Write(write),
            Err(rejection) => SyncOpBody::Rejected(rejection),
        }
    }

    fn sync_write(&self, op: OpParts<'_>, ctx: &OpContext<'_>) -> std::result::Result<SyncWrite, Rejection> {
        let space_name =
            op.space.ok_or_else(|| Rejection::new("invalid_space", "space must be `me` or an organization id."))?;
        let space = ctx.spaces.get(space_name).ok_or_else(|| {
            Rejection::new("space_not_found", format!("You are not a member of space `{space_name}`."))
        })?;
        let table_name = op.table.unwrap_or_default();
        let (table, required) = self
            .tables
            .get(table_name)
            .ok_or_else(|| Rejection::new("unknown_table", format!("There is no sync table `{table_name}`.")))?;
        if !space.can_write(table) {
            let needed = table.write_permission.clone().unwrap_or_default();
            return Err(Rejection::new(
                "permission_denied",
                format!("Writing `{table_name}` here needs the {needed} permission."),
            ));
        }
        let id = op.id.filter(|id| valid_id(id));
        let id = id.ok_or_else(|| Rejection::new("invalid_id", "id must be 1 to 128 letters, digits, _ or -."))?;
        let stamp = op.hlc.ok_or_else(|| Rejection::new("invalid_hlc", "hlc is required."))?;
        let stamp =
            Stamp::parse(stamp)?.bounded(ctx.now, self.config.max_clock_ahead_secs * 1000).canonical(ctx.client_id);
        let fields = match op.action {
            Some("delete") => None,
            Some("put") => {
                let Some(mut fields) = op.fields else {
                    return Err(Rejection::new("invalid_fields", "A put needs `fields`, an object."));
                };
                for step in ctx.steps.iter().filter(|m| m.table == table_name) {
                    step.apply(&mut fields);
                }
                let len = serde_json::to_vec(&fields).map_or(usize::MAX, |v| v.len());
                table.check_fields(&fields, len)?;
                Some(fields)
            }
            _ => return Err(Rejection::new("invalid_action", "action must be `put` or `delete`.")),
        };
        Ok(SyncWrite {
            space: space.key.clone(),
            table: table_name.to_owned(),
            id: id.to_owned(),
            fields,
            stamp,
            required: required.clone(),
        })
    }
}

/// An operation's `seq` and `op_id`, which must be sound for the push to be read at all.
fn op_head(seq: Option<i64>, op_id: Option<&str>, i: usize) -> Result<(i64, String)> {
    let seq =
        seq.filter(|s| *s >= 1).ok_or_else(|| invalid("ops", format!("ops[{i}].seq must be a positive integer.")))?;
    let op_id = op_id
        .filter(|id| valid_id(id))
        .ok_or_else(|| invalid("ops", format!("ops[{i}].op_id must be 1 to 128 letters, digits, _ or -.")))?;
    Ok((seq, op_id.to_owned()))
}
