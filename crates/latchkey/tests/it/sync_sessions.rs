//! Sync honours the session's whole policy, not just its status: a token still inside its
//! 60 seconds is refused once its session has gone idle past `session_inactivity_minutes`.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::harness::TestServer;
use crate::orgs::Person;
use crate::sync::{feed, raw_push, Device};

both_backends!(a_token_of_a_session_idle_past_its_limit_cannot_sync, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.session_inactivity_minutes = 1).await;
    let ada = Person::sign_up(&server, "idle@example.com").await;
    let phone = Device::new(&ada, "phone");
    let b = &phone.person_b;
    let stamp = |counter: u32| format!("{}-{counter}", latchkey_core::Clock::now_ms(&server.clock));
    let push = |seq: i64, hlc: String| {
        json!({"client_id": "phone", "schema_version": 1, "ops": [
            {"seq": seq, "op_id": format!("op{seq}"), "space": "me", "table": "feeds", "id": format!("feed_{seq}"),
             "action": "put", "fields": feed("x", 90, "0")["fields"].clone(), "hlc": hlc}]})
    };

    // Minted 50 s after the last activity: too soon to count as activity itself, and valid
    // for 60 s more.
    server.clock.advance_ms(50_000);
    let token = phone.token().await;
    let fresh = raw_push(b, &token, &push(1, stamp(0))).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    assert_eq!(fresh.body["results"][0]["status"], "applied");

    // 65 s after the last activity the session is idle past its one-minute limit; the token
    // has 45 s left, and is refused all the same, with nothing applied.
    server.clock.advance_ms(15_000);
    let idle = raw_push(b, &token, &push(2, stamp(1))).await;
    assert_eq!((idle.status, idle.error_code()), (StatusCode::UNAUTHORIZED, "authentication_invalid"), "{}", idle.text);
    let pull = b.send(b.http.get(b.url("/v1/sync/pull")).bearer_auth(&token)).await;
    assert_eq!(pull.status, StatusCode::UNAUTHORIZED);
    let minted = b.token(&phone.session_id).await;
    assert_ne!(minted.status, StatusCode::OK, "the idle session mints no new token either");
    let exported = server.sync.export(&latchkey::operator(), &ada.user_id).await;
    let exported = exported.unwrap().to_string();
    assert!(exported.contains("feed_1") && !exported.contains("feed_2"), "{exported}");
});
