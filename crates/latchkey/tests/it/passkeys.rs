//! Passkeys (docs/passkeys.md) through the Frontend and Backend APIs, with a software
//! authenticator: registration in clerk-js's shapes, discoverable and identified sign-in,
//! rename and removal, reverification, and every refusal (origin, relying party, user
//! verification, replayed and expired challenges, unknown credentials, counters going back,
//! malformed answers) storing nothing. On both backends.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::second_factors::PASSWORD;
use crate::soft_authenticator::{Bend, SoftAuthenticator};

pub const APP: &str = "http://localhost:3000";
const ELEVEN_MINUTES: i64 = 11 * 60 * 1000;

pub async fn start(backend: crate::harness::Backend) -> TestServer {
    start_with(backend, |_| {}).await
}

pub async fn start_with(
    backend: crate::harness::Backend,
    tweak: impl FnOnce(&mut latchkey::config::Config),
) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.passkeys.enabled = true;
        c.passkeys.rp_id = Some("localhost".into());
        c.allowed_origins.push(APP.into());
        tweak(c);
    })
    .await
}

fn nonce(v: &Value) -> Value {
    let text = v["nonce"].as_str().unwrap_or_else(|| panic!("a nonce: {v}"));
    serde_json::from_str(text).unwrap()
}

/// Registers a passkey for the signed-in browser `b`: the passkey's JSON.
pub async fn register(b: &Browser, soft: &mut SoftAuthenticator) -> Value {
    let r = b.post("/v1/me/passkeys", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let answer = soft.register(&nonce(&r.body["response"]["verification"]));
    let r = attempt_registration(b, &id, &answer.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["response"].clone()
}

async fn attempt_registration(b: &Browser, id: &str, credential: &str) -> Reply {
    b.post(
        &format!("/v1/me/passkeys/{id}/attempt_verification"),
        &[("strategy", "passkey"), ("public_key_credential", credential)],
    )
    .await
}

/// A passkey sign-in begun without an identifier: its id and request options.
pub async fn begin(b: &Browser) -> (String, Value) {
    let r = b.post("/v1/client/sign_ins", &[("strategy", "passkey")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = &r.body["response"];
    assert_eq!(s["status"], "needs_first_factor");
    assert_eq!(s["supported_first_factors"], json!([{"strategy": "passkey"}]));
    let v = &s["first_factor_verification"];
    assert_eq!((v["object"].as_str(), v["strategy"].as_str()), (Some("verification_passkey"), Some("passkey")));
    assert!(v["expire_at"].is_i64(), "{v}");
    (s["id"].as_str().unwrap().to_owned(), nonce(v))
}

pub async fn attempt(b: &Browser, id: &str, credential: &str) -> Reply {
    b.post(
        &format!("/v1/client/sign_ins/{id}/attempt_first_factor"),
        &[("strategy", "passkey"), ("public_key_credential", credential)],
    )
    .await
}

both_backends!(a_passkey_registers_signs_in_renames_and_goes, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");

    // The options are what clerk-js hands to navigator.credentials.create.
    let r = b.post("/v1/me/passkeys", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = &r.body["response"];
    assert_eq!((p["object"].as_str(), p["name"].as_str()), (Some("passkey"), Some("Passkey")));
    assert!(p["id"].as_str().unwrap().starts_with("idn_"), "{p}");
    let v = &p["verification"];
    assert_eq!((v["object"].as_str(), v["status"].as_str()), (Some("verification_passkey"), Some("unverified")));
    let options = nonce(v);
    assert!(options.get("publicKey").is_none(), "no wrapper: {options}");
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(options["attestation"], "none");
    let handle = options["user"]["id"].as_str().unwrap();
    assert_eq!(handle.len(), 22, "a 16-byte handle, base64url: {handle}");
    assert!(!handle.contains(&user_id[5..]), "the handle is not the user id");
    assert_eq!(options["user"]["name"], "ada@example.com");
    let id = p["id"].as_str().unwrap().to_owned();
    let answer = soft.register(&options);
    let r = attempt_registration(&b, &id, &answer.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = &r.body["response"];
    assert_eq!(p["verification"]["status"], "verified");
    assert!(p["verification"].get("nonce").is_none(), "a verified passkey carries no nonce: {p}");
    assert!(p["verification"]["expire_at"].is_i64(), "an integer, as Clerk's document requires: {p}");
    // The same answer again finds no registration open.
    let again = attempt_registration(&b, &id, &answer.to_string()).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);

    // Listed on the user (verified only), read and renamed.
    let me = b.get("/v1/me").await;
    assert_eq!(me.body["response"]["passkeys"].as_array().unwrap().len(), 1, "{}", me.text);
    assert_eq!(b.get(&format!("/v1/me/passkeys/{id}")).await.body["response"]["id"], id.as_str());
    let r = b.post(&format!("/v1/me/passkeys/{id}?_method=PATCH"), &[("name", "  ")]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid"));
    let r = b.post(&format!("/v1/me/passkeys/{id}?_method=PATCH"), &[("name", " Laptop ")]).await;
    assert_eq!(r.body["response"]["name"], "Laptop", "{}", r.text);
    // The owner is told by mail.
    server.wait_for_mail("ada@example.com", |m| m.subject.contains("passkey was added")).await;

    // A new browser signs in with no identifier; the session proved both factors.
    let phone = server.browser();
    let (sign_in, request) = begin(&phone).await;
    assert_eq!(request["rpId"], "localhost");
    assert_eq!(request["allowCredentials"], json!([]));
    assert_eq!(request["userVerification"], "required");
    let r = attempt(&phone, &sign_in, &soft.assert(&request, 0).to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = &r.body["response"];
    assert_eq!(s["status"], "complete", "{}", r.text);
    assert_eq!(s["first_factor_verification"]["status"], "verified");
    let session = &r.body["client"]["sessions"][0];
    assert_eq!(session["user"]["id"], user_id.as_str());
    assert_eq!(session["factor_verification_age"], json!([0, 0]));
    let sid = s["created_session_id"].as_str().unwrap();
    assert_eq!(phone.token(sid).await.status, StatusCode::OK);
    let stored = server.store.get_user(&user_id).await.unwrap().unwrap().passkeys;
    assert_eq!((stored[0].counter, stored[0].last_used_at.is_some()), (1, true));

    // The Backend API's user lists it in its own shape.
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "tests").await.unwrap();
    let admin = server.browser();
    let r = admin.send(admin.http.get(admin.url(&format!("/v1/users/{user_id}"))).bearer_auth(&key)).await;
    let listed = &r.body["passkeys"][0];
    assert_eq!(listed["name"], "Laptop", "{}", r.text);
    assert!(listed.get("created_at").is_none() && listed["last_used_at"].is_i64(), "{listed}");
    assert_eq!(
        listed["verification"],
        json!({"object": "verification_passkey", "status": "verified",
        "strategy": "passkey", "attempts": null, "expire_at": null})
    );

    // Removed by its owner (a fresh session needs no check), it signs nobody in.
    let r = b.post(&format!("/v1/me/passkeys/{id}?_method=DELETE"), &[]).await;
    assert_eq!(r.body["response"], json!({"object": "passkey", "id": id, "deleted": true}), "{}", r.text);
    let other = server.browser();
    let (sign_in, request) = begin(&other).await;
    let r = attempt(&other, &sign_in, &soft.assert(&request, 0).to_string()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "verification_failed"), "{}", r.text);
});

both_backends!(refused_answers_store_nothing, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    register(&b, &mut soft).await;
    // One sign-in first, so the stored counter is above 0 (0 means "keeps no counter").
    let first = server.browser();
    let (sign_in, request) = begin(&first).await;
    let r = attempt(&first, &sign_in, &soft.assert(&request, 0).to_string()).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let stored = || async { server.store.get_user(&user_id).await.unwrap().unwrap().passkeys };
    let before = stored().await;
    assert_eq!(before[0].counter, 1);

    // Each bent answer is refused with one error and spends its challenge.
    let bends = [
        ("another origin", Bend { origin: Some("http://evil.localhost:3000".into()), ..Bend::default() }),
        ("an unconfigured origin", Bend { origin: Some("https://example.com".into()), ..Bend::default() }),
        ("another relying party", Bend { rp_id: Some("example.com".into()), ..Bend::default() }),
        ("no user verification", Bend { no_uv: true, ..Bend::default() }),
        ("another challenge", Bend { challenge: Some("AAAAAAAAAAAAAAAAAAAAAA".into()), ..Bend::default() }),
        ("a registration's client data", Bend { client_data_type: Some("webauthn.create".into()), ..Bend::default() }),
        ("a counter going back", Bend { counter: Some(0), ..Bend::default() }),
        ("another user's handle", Bend { user_handle: Some(vec![7; 16]), ..Bend::default() }),
        ("a handle that is no UUID", Bend { user_handle: Some(b"user".to_vec()), ..Bend::default() }),
    ];
    let phone = server.browser();
    for (what, bend) in bends {
        let (sign_in, request) = begin(&phone).await;
        let answer = soft.assert_bent(&request, 0, &bend).to_string();
        let r = attempt(&phone, &sign_in, &answer).await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "verification_failed"),
            "{what}: {}",
            r.text
        );
        // The challenge is spent: the honest answer to it now fails too.
        let r = attempt(&phone, &sign_in, &soft.assert(&request, 0).to_string()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.error_code(), "verification_missing");
        let s = server.store.get_sign_in(&sign_in).await.unwrap().unwrap();
        assert!(s.created_session_id.is_none(), "{what}");
    }
    let after = stored().await;
    assert_eq!(after[0].credential, before[0].credential, "a refused answer changes no counter");
    assert_eq!(
        server.store.sessions_for_user(&user_id).await.unwrap().len(),
        2,
        "the sign-up's and the first sign-in's"
    );

    // A replayed answer: the first use signs in, the same answer to the same challenge is refused.
    let (sign_in, request) = begin(&phone).await;
    let answer = soft.assert(&request, 0).to_string();
    assert_eq!(attempt(&phone, &sign_in, &answer).await.body["response"]["status"], "complete");
    let elsewhere = server.browser();
    let (other_sign_in, _) = begin(&elsewhere).await;
    let r = attempt(&elsewhere, &other_sign_in, &answer).await;
    assert_eq!(r.error_code(), "verification_failed", "an answer to another challenge: {}", r.text);

    // An expired challenge.
    let late = server.browser();
    let (sign_in, request) = begin(&late).await;
    server.clock.advance_ms(301_000);
    let r = attempt(&late, &sign_in, &soft.assert(&request, 0).to_string()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "verification_expired"), "{}", r.text);

    // A credential registered nowhere (a second authenticator's).
    let mut stranger = SoftAuthenticator::new(APP, "localhost");
    let creation = json!({"challenge": "AAAA", "user": {"id": "AAAAAAAAAAAAAAAAAAAAAA"}});
    stranger.register(&creation);
    let who = server.browser();
    let (sign_in, request) = begin(&who).await;
    let r = attempt(&who, &sign_in, &stranger.assert(&request, 0).to_string()).await;
    assert_eq!(r.error_code(), "verification_failed", "{}", r.text);
});

both_backends!(malformed_answers_get_400s_never_5xx, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    register(&b, &mut soft).await;
    let phone = server.browser();
    let (_, request) = begin(&phone).await;
    let honest = soft.assert(&request, 0);
    let mut cases: Vec<String> = vec![
        String::new(),
        "{".into(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        json!({"type": "public-key"}).to_string(),
    ];
    for field in ["id", "rawId", "type"] {
        let mut bent = honest.clone();
        bent.as_object_mut().unwrap().remove(field);
        cases.push(bent.to_string());
        bent[field] = json!(12);
        cases.push(bent.to_string());
    }
    for field in ["clientDataJSON", "authenticatorData", "signature", "userHandle"] {
        for value in [json!("!!!not base64!!!"), json!(""), json!(42), json!("AAAA"), json!(null)] {
            let mut bent = honest.clone();
            bent["response"][field] = value;
            cases.push(bent.to_string());
        }
    }
    cases.push(honest.to_string().replace("webauthn.get", "webauthn.get\u{0}"));
    let mut statuses = std::collections::BTreeMap::new();
    for case in &cases {
        let (sign_in, _) = begin(&phone).await;
        let r = attempt(&phone, &sign_in, case).await;
        assert!(r.status.is_client_error(), "{case}: {} {}", r.status, r.text);
        assert!(r.body["errors"][0]["code"].is_string(), "{case}: {}", r.text);
        *statuses.entry(r.status.as_u16()).or_insert(0) += 1;
    }
    assert!(statuses.contains_key(&400), "{statuses:?}");
    // Registration answers too (an empty one is a missing parameter, 422).
    for case in &cases[1..6] {
        let r = b.post("/v1/me/passkeys", &[]).await;
        let id = r.body["response"]["id"].as_str().unwrap().to_owned();
        let r = attempt_registration(&b, &id, case).await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::BAD_REQUEST, "form_param_format_invalid"),
            "{case}: {}",
            r.text
        );
    }
    let r = attempt_registration(&b, "idn_nothing", &honest.to_string()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
});

both_backends!(registrations_refuse_bent_answers_and_taken_credentials, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    for (what, bend) in [
        ("another origin", Bend { origin: Some("http://localhost:4000".into()), ..Bend::default() }),
        ("another relying party", Bend { rp_id: Some("example.com".into()), ..Bend::default() }),
        ("no user verification", Bend { no_uv: true, ..Bend::default() }),
        ("a sign-in's client data", Bend { client_data_type: Some("webauthn.get".into()), ..Bend::default() }),
    ] {
        let r = b.post("/v1/me/passkeys", &[]).await;
        let id = r.body["response"]["id"].as_str().unwrap().to_owned();
        let options = nonce(&r.body["response"]["verification"]);
        let answer = soft.register_bent(&options, &bend);
        let r = attempt_registration(&b, &id, &answer.to_string()).await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "verification_failed"),
            "{what}: {}",
            r.text
        );
        let r = b.get(&format!("/v1/me/passkeys/{id}")).await;
        assert_eq!(r.body["response"]["verification"]["status"], "failed", "{what}: {}", r.text);
        let r = attempt_registration(&b, &id, &soft.register(&options).to_string()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: spent: {}", r.text);
    }
    assert!(server.store.get_user(&user_id).await.unwrap().unwrap().passkeys.iter().all(|p| !p.verified));

    // An expired registration.
    let r = b.post("/v1/me/passkeys", &[]).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let options = nonce(&r.body["response"]["verification"]);
    server.clock.advance_ms(301_000);
    let r = attempt_registration(&b, &id, &soft.register(&options).to_string()).await;
    assert_eq!(r.error_code(), "verification_expired", "{}", r.text);

    // A credential already on an account is refused on another: the same authenticator
    // (or a clone of it) answering Bob's registration with Ada's credential.
    register(&b, &mut soft).await;
    let ada_credential = soft.credentials.len() - 1;
    let bob = server.browser();
    let (bob_id, _) = server.sign_up(&bob, "bob@example.com", PASSWORD).await;
    let r = bob.post("/v1/me/passkeys", &[]).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let options = nonce(&r.body["response"]["verification"]);
    let answer = soft.register_bent(&options, &Bend { reuse: Some(ada_credential), ..Bend::default() });
    let r = attempt_registration(&bob, &id, &answer.to_string()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "passkey_already_exists"), "{}", r.text);
    assert!(server.store.get_user(&bob_id).await.unwrap().unwrap().passkeys.iter().all(|p| !p.verified));
});

both_backends!(an_identified_sign_in_takes_only_its_users_passkey, |backend| async move {
    let server = start(backend).await;
    let ada = server.browser();
    server.sign_up(&ada, "ada@example.com", PASSWORD).await;
    let bob = server.browser();
    server.sign_up(&bob, "bob@example.com", PASSWORD).await;
    let mut adas = SoftAuthenticator::new(APP, "localhost");
    register(&ada, &mut adas).await;
    let mut bobs = SoftAuthenticator::new(APP, "localhost");
    register(&bob, &mut bobs).await;

    // With enumeration protection (the default) the factors do not depend on the account,
    // but a passkey challenge is still given on asking.
    let phone = server.browser();
    let r = phone.post("/v1/client/sign_ins", &[("identifier", "ada@example.com")]).await;
    let s = &r.body["response"];
    assert!(s["supported_first_factors"].as_array().unwrap().iter().all(|f| f["strategy"] != "passkey"), "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    let r = phone.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &[("strategy", "passkey")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let request = nonce(&r.body["response"]["first_factor_verification"]);
    let r = attempt(&phone, &id, &bobs.assert(&request, 0).to_string()).await;
    assert_eq!(r.error_code(), "verification_failed", "Bob's passkey does not sign Ada in: {}", r.text);
    let r = phone.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &[("strategy", "passkey")]).await;
    let request = nonce(&r.body["response"]["first_factor_verification"]);
    let r = attempt(&phone, &id, &adas.assert(&request, 0).to_string()).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);

    // An identifier with no account gets a challenge too, which no passkey answers.
    let stranger = server.browser();
    let r = stranger.post("/v1/client/sign_ins", &[("identifier", "nobody@example.com")]).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let r = stranger.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &[("strategy", "passkey")]).await;
    let request = nonce(&r.body["response"]["first_factor_verification"]);
    let r = attempt(&stranger, &id, &adas.assert(&request, 0).to_string()).await;
    assert_eq!(r.error_code(), "verification_failed", "{}", r.text);
});

both_backends!(without_enumeration_protection_a_users_sign_in_lists_passkey, |backend| async move {
    let server = start_with(backend, |c| c.enumeration_protection = false).await;
    let ada = server.browser();
    server.sign_up(&ada, "ada@example.com", PASSWORD).await;
    let listed = |r: &Reply| {
        r.body["response"]["supported_first_factors"].as_array().unwrap().iter().any(|f| f["strategy"] == "passkey")
    };
    let r = server.browser().post("/v1/client/sign_ins", &[("identifier", "ada@example.com")]).await;
    assert!(!listed(&r), "no passkey yet: {}", r.text);
    register(&ada, &mut SoftAuthenticator::new(APP, "localhost")).await;
    let r = server.browser().post("/v1/client/sign_ins", &[("identifier", "ada@example.com")]).await;
    assert!(listed(&r), "{}", r.text);
    assert_eq!(r.body["response"]["supported_first_factors"][0]["strategy"], "passkey", "listed first, as Clerk does");
});

both_backends!(two_sign_ins_with_one_signature_count_let_one_in, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    register(&b, &mut soft).await;
    // A clone of the authenticator answers two challenges with the same counter at once.
    let (one, two) = (server.browser(), server.browser());
    let (a, ra) = begin(&one).await;
    let (c, rc) = begin(&two).await;
    let first = soft.assert_bent(&ra, 0, &Bend { counter: Some(5), ..Bend::default() }).to_string();
    let second = soft.assert_bent(&rc, 0, &Bend { counter: Some(5), ..Bend::default() }).to_string();
    let (x, y) = tokio::join!(attempt(&one, &a, &first), attempt(&two, &c, &second));
    let completed = [&x, &y].iter().filter(|r| r.body["response"]["status"] == "complete").count();
    assert_eq!(completed, 1, "{} / {}", x.text, y.text);
    let refused = if x.status == StatusCode::OK { &y } else { &x };
    assert_eq!(refused.error_code(), "verification_failed");
    let stored = server.store.get_user(&user_id).await.unwrap().unwrap().passkeys;
    assert_eq!(stored[0].counter, 5);
});

both_backends!(adding_and_removing_need_a_recent_check_which_a_passkey_passes, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    let (_, sid) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    let p = register(&b, &mut soft).await;
    let id = p["id"].as_str().unwrap();
    server.clock.advance_ms(ELEVEN_MINUTES);
    let r = b.post("/v1/me/passkeys", &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "session_reverification_required"), "{}", r.text);
    let r = b.post(&format!("/v1/me/passkeys/{id}?_method=DELETE"), &[]).await;
    assert_eq!(r.error_code(), "session_reverification_required");

    // The check offers the passkey, which proves both factors.
    let r = b.post(&format!("/v1/client/sessions/{sid}/verify"), &[("level", "multi_factor")]).await;
    let v = &r.body["response"];
    assert_eq!(v["supported_first_factors"][0]["strategy"], "passkey", "{}", r.text);
    let r = b.post(&format!("/v1/client/sessions/{sid}/verify/prepare_first_factor"), &[("strategy", "passkey")]).await;
    let v = &r.body["response"]["first_factor_verification"];
    assert_eq!(v["object"], "verification_passkey", "{}", r.text);
    let request = nonce(v);
    let answer = soft.assert(&request, 0).to_string();
    let r = b
        .post(
            &format!("/v1/client/sessions/{sid}/verify/attempt_first_factor"),
            &[("strategy", "passkey"), ("public_key_credential", &answer)],
        )
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_eq!(r.body["response"]["session"]["factor_verification_age"], json!([0, 0]));
    // The same answer again: no challenge is out.
    let r = b
        .post(
            &format!("/v1/client/sessions/{sid}/verify/attempt_first_factor"),
            &[("strategy", "passkey"), ("public_key_credential", &answer)],
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    let r = b.post(&format!("/v1/me/passkeys/{id}?_method=DELETE"), &[]).await;
    assert_eq!(r.body["response"]["deleted"], true, "{}", r.text);
});

both_backends!(an_operator_removes_a_passkey_and_the_user_hears_of_it, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let (other_id, _) = server.sign_up(&server.browser(), "bob@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    let p = register(&b, &mut soft).await;
    let id = p["id"].as_str().unwrap();
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "tests").await.unwrap();
    let admin = server.browser();
    let delete = |user: String| {
        let req = admin.http.delete(admin.url(&format!("/v1/users/{user}/passkeys/{id}"))).bearer_auth(&key);
        admin.send(req)
    };
    let r = delete(other_id).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another user's: {}", r.text);
    let r = delete(user_id.clone()).await;
    assert_eq!(r.body, json!({"object": "passkey", "id": id, "deleted": true}), "{}", r.text);
    assert_eq!(delete(user_id.clone()).await.status, StatusCode::NOT_FOUND);
    server.wait_for_mail("ada@example.com", |m| m.subject.contains("passkey was removed")).await;
    let phone = server.browser();
    let (sign_in, request) = begin(&phone).await;
    let r = attempt(&phone, &sign_in, &soft.assert(&request, 0).to_string()).await;
    assert_eq!(r.error_code(), "verification_failed");
});

both_backends!(passkeys_off_are_refused_and_not_offered, |backend| async move {
    let server = TestServer::start(backend).await;
    let env = server.browser().get("/v1/environment").await.body;
    assert_eq!(env["user_settings"]["attributes"]["passkey"]["enabled"], false);
    assert_eq!(env["user_settings"]["passkey_settings"]["show_sign_in_button"], false);
    let b = server.browser();
    server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let r = b.post("/v1/me/passkeys", &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "passkeys_disabled"), "{}", r.text);
    let r = server.browser().post("/v1/client/sign_ins", &[("strategy", "passkey")]).await;
    assert_eq!(r.error_code(), "passkeys_disabled", "{}", r.text);

    let on = start(backend).await;
    let env = on.browser().get("/v1/environment").await.body;
    assert_eq!(env["user_settings"]["attributes"]["passkey"]["enabled"], true);
    assert_eq!(env["user_settings"]["attributes"]["passkey"]["first_factors"], json!(["passkey"]));
    assert_eq!(
        env["user_settings"]["passkey_settings"],
        json!({"allow_autofill": true, "show_sign_in_button": true, "satisfies_second_factor": true})
    );
});

both_backends!(a_password_alone_cannot_stand_in_for_a_required_passkey, |backend| async move {
    // With second factors required, a passkey holder who signs in with only a password is left
    // waiting (setup-mfa) and may not add an app or a passkey there: either would replace the
    // passkey the account has. Signing in with the passkey is not waiting.
    let server =
        start_with(backend, |c| c.second_factors.policy = latchkey_service::second_factors::Policy::Required).await;
    let b = server.browser();
    let (user_id, _, _, _) = crate::second_factors::enrolled(&server, &b, "ada@example.com").await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    register(&b, &mut soft).await;
    // The operator removes the app and codes: the passkey is the account's only strong factor.
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "tests").await.unwrap();
    let admin = server.browser();
    let r = admin.send(admin.http.delete(admin.url(&format!("/v1/users/{user_id}/mfa"))).bearer_auth(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let thief = server.browser();
    let r = server.sign_in(&thief, "ada@example.com", PASSWORD).await;
    assert_eq!(r.body["client"]["sessions"][0]["status"], "pending", "{}", r.text);
    let r = thief.post("/v1/me/totp", &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "session_pending"), "{}", r.text);
    let r = thief.post("/v1/me/passkeys", &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "session_pending"), "{}", r.text);
    let factors = server.store.get_user(&user_id).await.unwrap().unwrap();
    assert!(factors.second_factors.totp.is_none() && factors.passkeys.len() == 1);

    let owner = server.browser();
    let (sign_in, request) = begin(&owner).await;
    let r = attempt(&owner, &sign_in, &soft.assert(&request, 0).to_string()).await;
    assert_eq!(r.body["client"]["sessions"][0]["status"], "active", "{}", r.text);
});

both_backends!(adding_renaming_and_removing_a_passkey_announce_user_updated, |backend| async move {
    use crate::webhooks::{drain, worker, Admin, Receiver};
    let server = start(backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &["user.updated"]).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let p = register(&b, &mut SoftAuthenticator::new(APP, "localhost")).await;
    let id = p["id"].as_str().unwrap();
    b.post(&format!("/v1/me/passkeys/{id}?_method=PATCH"), &[("name", "Laptop")]).await;
    b.post(&format!("/v1/me/passkeys/{id}?_method=DELETE"), &[]).await;

    drain(&worker(&server)).await;
    let lists: Vec<Value> = rx
        .all()
        .await
        .into_iter()
        .map(|m| m.json())
        .filter(|e| e["type"] == "user.updated" && e["data"]["id"] == user_id.as_str())
        .map(|e| e["data"]["passkeys"].clone())
        .collect();
    // Deliveries may arrive in any order: compare the set of lists.
    let mut names: Vec<Vec<String>> = lists
        .iter()
        .map(|l| l.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect())
        .collect();
    names.sort();
    assert_eq!(names, [vec![], vec!["Laptop".to_owned()], vec!["Passkey".to_owned()]], "{lists:?}");
    assert!(lists.iter().flat_map(|l| l.as_array().unwrap()).all(|p| p["verification"].get("nonce").is_none()));
});
