//! Rules of offline-first sync, with no I/O: hybrid logical clock stamps and their bound
//! ([`hlc`]), tables declared in configuration and the validation of an operation against
//! them ([`schema`]), and the field-level last-write-wins merge of one operation into a
//! record ([`merge`]).

pub mod hlc;
pub mod merge;
pub mod migration;
pub mod schema;

/// Why an operation was refused; it is still counted as processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Client ids and record ids: client-generated, globally unique, URL- and log-safe.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What became of one pushed operation.
#[derive(Debug, Clone, PartialEq)]
pub enum OpStatus {
    Applied,
    /// Newer writes won, in part or in whole; `winning` is what the record holds there.
    Superseded {
        winning: serde_json::Value,
    },
    Rejected(Rejection),
}

/// The result of an operation as the push response (and, for a replay, the stored first
/// answer) gives it.
pub fn op_result(seq: i64, op_id: &str, status: &OpStatus) -> serde_json::Value {
    use serde_json::json;
    match status {
        OpStatus::Applied => json!({"seq": seq, "op_id": op_id, "status": "applied"}),
        OpStatus::Superseded { winning } => {
            json!({"seq": seq, "op_id": op_id, "status": "superseded", "winning": winning})
        }
        OpStatus::Rejected(r) => json!({"seq": seq, "op_id": op_id, "status": "rejected",
            "reason": {"code": r.code, "message": r.message}}),
    }
}

/// The answer to an operation seen before (by `seq` or `op_id`), carrying its first result.
pub fn duplicate_result(seq: i64, op_id: &str, original: Option<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"seq": seq, "op_id": op_id, "status": "duplicate",
        "original": original.unwrap_or(serde_json::Value::Null)})
}
