//! Signing-key rotation and revocation, timed by the injected clock.

use latchkey_token::{Verifier, VerifyError};
use reqwest::StatusCode;

use crate::both_backends;
use crate::flows::{signed_in, verifier_for};
use crate::harness::TestServer;

both_backends!(rotation_publishes_first_and_revocation_is_immediate, |backend| async move {
    let server = TestServer::start(backend).await;
    let operator = latchkey::operator();
    let keys = server.services.signing_keys(&operator);
    let (b, _, sid) = signed_in(&server, "keys@example.com").await;
    let t1 = b.token(&sid).await.body["jwt"].as_str().unwrap().to_owned();
    let old_kid = Verifier::peek_kid(&t1).unwrap();

    let new = keys.rotate().await.unwrap();
    let jwks = b.get("/.well-known/jwks.json").await.body;
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![new.kid.as_str(), old_kid.as_str()], "the new key is published first, newest first");
    let t2 = b.token(&sid).await.body["jwt"].as_str().unwrap().to_owned();
    assert_eq!(Verifier::peek_kid(&t2).unwrap(), old_kid, "a pending key does not sign yet");

    server.clock.advance_ms(300_000);
    let t3 = b.token(&sid).await;
    assert_eq!(t3.status, StatusCode::OK);
    let t3 = t3.body["jwt"].as_str().unwrap().to_owned();
    assert_eq!(Verifier::peek_kid(&t3).unwrap(), new.kid, "after the JWKS max-age the new key signs");
    let iat1 = serde_json::from_slice::<serde_json::Value>(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, t1.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()["iat"]
        .as_i64()
        .unwrap();
    let verifier = verifier_for(&server).await;
    assert!(verifier.verify(&t1, iat1).is_ok(), "the retired key still verifies");

    assert!(keys.revoke(&old_kid).await.unwrap());
    let verifier = verifier_for(&server).await;
    assert_eq!(verifier.verify(&t1, iat1).unwrap_err(), VerifyError::UnknownKey, "revoked at once");
    assert!(verifier.verify(&t3, latchkey_core::Clock::now_secs(&server.clock)).is_ok());

    // Revoking the signing key makes a new one take over immediately.
    assert!(keys.revoke(&new.kid).await.unwrap());
    let t4 = b.token(&sid).await.body["jwt"].as_str().unwrap().to_owned();
    let kid4 = Verifier::peek_kid(&t4).unwrap();
    assert!(kid4 != new.kid && kid4 != old_kid);
    assert!(verifier_for(&server).await.verify(&t4, latchkey_core::Clock::now_secs(&server.clock)).is_ok());
});

both_backends!(retired_keys_are_removed_after_retention, |backend| async move {
    let server = TestServer::start(backend).await;
    let operator = latchkey::operator();
    let keys = server.services.signing_keys(&operator);
    let first = keys.status().await.unwrap()[0].kid.clone();
    keys.rotate().await.unwrap();
    server.clock.advance_ms(300_000);
    let timing = keys.timing;
    server.clock.advance_ms(timing.retain_ms() - 1);
    assert_eq!(keys.prune().await.unwrap(), 0);
    assert!(keys.jwks().await.unwrap().keys.iter().any(|k| k.kid == first));
    server.clock.advance_ms(1);
    assert_eq!(keys.prune().await.unwrap(), 1);
    assert!(keys.jwks().await.unwrap().keys.iter().all(|k| k.kid != first));
});
