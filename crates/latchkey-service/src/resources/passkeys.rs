//! Clerk's `Passkey` object: the Frontend API's (`/v1/me/passkeys…`, the user's `passkeys`)
//! and the Backend API's, which has no times but `last_used_at` and never a `nonce`.

use latchkey_store::PasskeyRow;
use serde_json::{json, Value};

use super::Audience;
use crate::passkeys::registration_options;

/// `unverified` while a registration can finish, `expired` past its time, `failed` once an
/// answer was refused, `verified` for a passkey.
fn status(p: &PasskeyRow, now: i64) -> &'static str {
    if p.verified {
        "verified"
    } else if p.registration_state.is_none() {
        "failed"
    } else if p.expire_at.is_some_and(|t| now > t) {
        "expired"
    } else {
        "unverified"
    }
}

/// The passkey as `audience` sees it at `now`. The Frontend API's verification carries the
/// options for `navigator.credentials.create` in `nonce` while the registration is open
/// (clerk-js parses it whenever it is present, so it is absent otherwise).
pub fn passkey_json(p: &PasskeyRow, audience: Audience, now: i64) -> Value {
    if audience == Audience::Backend {
        return json!({
            "id": p.id,
            "object": "passkey",
            "name": p.name,
            // Required and not nullable in the Backend API's document.
            "last_used_at": p.last_used_at.unwrap_or(p.created_at),
            "verification": {
                "object": "verification_passkey",
                "status": status(p, now),
                "strategy": "passkey",
                "attempts": null,
                "expire_at": null,
            },
        });
    }
    let status = status(p, now);
    let mut verification = json!({
        "object": "verification_passkey",
        "status": status,
        "strategy": "passkey",
        "attempts": null,
        // Required as an integer by Clerk's Frontend API document: a finished registration
        // shows a time already past, as a used code does.
        "expire_at": p.expire_at.unwrap_or(p.created_at),
    });
    if status == "unverified" {
        if let Some(options) = registration_options(p) {
            verification["nonce"] = Value::String(options);
        }
    }
    json!({
        "id": p.id,
        "object": "passkey",
        "name": p.name,
        "last_used_at": p.last_used_at,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "verification": verification,
    })
}

/// A user's passkeys as their user object lists them: the verified ones.
pub fn listed_passkeys(list: &[PasskeyRow], audience: Audience) -> Vec<Value> {
    list.iter().filter(|p| p.verified).map(|p| passkey_json(p, audience, 0)).collect()
}
