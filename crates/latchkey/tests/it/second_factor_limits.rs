//! The second factor's attempt limits under parallel tries (docs/second-factors.md
//! "Attempts"): every try is counted before its code is judged, so wrong codes sent at once
//! all count, at a sign-in's second step and at a session's step-up check alike; and adding
//! an app while backup codes remain needs a recent check. On both backends.

use reqwest::StatusCode;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::second_factors::{code_at, enrolled, first_factor, next_step, second_factor, PASSWORD};

const PARALLEL: usize = 12;

/// How many of `replies` said "wrong code" and how many "too many attempts"; anything else
/// fails the test.
fn tally(replies: &[Reply]) -> (usize, usize) {
    let mut wrong = 0;
    let mut dead = 0;
    for r in replies {
        match (r.status, r.error_code()) {
            (StatusCode::UNPROCESSABLE_ENTITY, "form_code_incorrect") => wrong += 1,
            (StatusCode::FORBIDDEN, "verification_failed") => dead += 1,
            _ => panic!("unexpected answer to a wrong code: {} {}", r.status, r.text),
        }
    }
    (wrong, dead)
}

/// Posts `form` to `path` from each of `browsers`, all at once (spawned tasks).
async fn at_once(browsers: Vec<Browser>, path: &str, form: &[(&str, &str)]) -> Vec<Reply> {
    let mut tasks = tokio::task::JoinSet::new();
    for b in browsers {
        let path = path.to_owned();
        let form: Vec<(String, String)> = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        tasks.spawn(async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            b.post(&path, &form).await
        });
    }
    tasks.join_all().await
}

async fn verify(b: &Browser, sid: &str, step: &str, form: &[(&str, &str)]) -> Reply {
    b.post(&format!("/v1/client/sessions/{sid}/verify{step}"), form).await
}

both_backends!(parallel_wrong_codes_at_sign_in_all_count, |backend| async move {
    let server = TestServer::start(backend).await;
    let phone = server.browser();
    let (_, _, secret, backup) = enrolled(&server, &phone, "par@example.com").await;
    next_step(&server);

    let b = server.browser();
    let id = first_factor(&server, &b, "par@example.com").await;
    let path = format!("/v1/client/sign_ins/{id}/attempt_second_factor");
    let replies = at_once(vec![b.clone(); PARALLEL], &path, &[("strategy", "totp"), ("code", "000000")]).await;
    // Five tries in all: four are told the code is wrong, the rest that the attempt is dead.
    assert_eq!(tally(&replies), (4, PARALLEL - 4));
    let r = second_factor(&b, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.error_code(), "verification_failed", "the right code after five tries: {}", r.text);
    let r = second_factor(&b, &id, "backup_code", &backup[0]).await;
    assert_eq!(r.error_code(), "verification_failed", "{}", r.text);
    assert_eq!(server.store.get_sign_in(&id).await.unwrap().unwrap().created_session_id, None);

    // Another attempt has its own tries, and a right code passes.
    let c = server.browser();
    let id = first_factor(&server, &c, "par@example.com").await;
    let r = second_factor(&c, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
});

both_backends!(parallel_wrong_codes_spend_the_accounts_daily_budget, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.code_failures_per_address_per_day = 6).await;
    let phone = server.browser();
    let (_, _, secret, _) = enrolled(&server, &phone, "budget@example.com").await;
    next_step(&server);

    // Three attempts at once, four wrong codes each: twelve tries against a budget of six.
    let browsers: Vec<Browser> = (0..3).map(|_| server.browser()).collect();
    let mut ids = Vec::new();
    for b in &browsers {
        ids.push(first_factor(&server, b, "budget@example.com").await);
    }
    let mut replies = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (b, id) in browsers.iter().zip(&ids) {
        let path = format!("/v1/client/sign_ins/{id}/attempt_second_factor");
        let b = vec![b.clone(); 4];
        tasks.spawn(async move { at_once(b, &path, &[("strategy", "totp"), ("code", "000000")]).await });
    }
    for batch in tasks.join_all().await {
        replies.extend(batch);
    }
    assert_eq!(tally(&replies).0, 6, "no more wrong codes are judged than the budget allows");
    // Spent: a new attempt's right code is refused until the day is over.
    let d = server.browser();
    let id = first_factor(&server, &d, "budget@example.com").await;
    let r = second_factor(&d, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.error_code(), "verification_failed", "{}", r.text);
    server.clock.advance_ms(24 * 3600 * 1000 + 1000);
    next_step(&server);
    let e = server.browser();
    let r = server.sign_in(&e, "budget@example.com", PASSWORD).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let r = second_factor(&e, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
});

both_backends!(parallel_wrong_codes_at_a_step_up_check_all_count, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (_, sid, secret, _) = enrolled(&server, &b, "step@example.com").await;
    next_step(&server);
    let r = verify(&b, &sid, "", &[("level", "second_factor")]).await;
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);

    let path = format!("/v1/client/sessions/{sid}/verify/attempt_second_factor");
    let replies = at_once(vec![b.clone(); PARALLEL], &path, &[("strategy", "totp"), ("code", "000000")]).await;
    assert_eq!(tally(&replies), (4, PARALLEL - 4));

    // Neither a new check nor a first factor proved meanwhile gives fresh tries.
    let r = verify(&b, &sid, "", &[("level", "first_factor")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = verify(&b, &sid, "/attempt_first_factor", &[("strategy", "password"), ("password", PASSWORD)]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    verify(&b, &sid, "", &[("level", "second_factor")]).await;
    let right = code_at(&server, &secret, 0);
    let r = verify(&b, &sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", &right)]).await;
    assert_eq!(r.error_code(), "verification_failed", "even the right code: {}", r.text);
});

both_backends!(a_new_app_beside_backup_codes_needs_a_recent_check, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = crate::webhooks::Admin::new(&server).await;
    let b = server.browser();
    let (user_id, sid, _, backup) = enrolled(&server, &b, "codes@example.com").await;
    // An operator removes the app; the backup codes stay.
    let r = admin.delete(&format!("/v1/users/{user_id}/totp")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let user = server.store.get_user(&user_id).await.unwrap().unwrap();
    assert!(!user.second_factors.totp_enabled() && user.second_factors.backup_code_enabled());

    // An old session (a stolen cookie, say) cannot add an app of its own.
    server.clock.advance_ms(11 * 60_000);
    next_step(&server);
    let r = b.post("/v1/me/totp", &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "session_reverification_required"), "{}", r.text);
    assert!(server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.totp.is_none(), "nothing stored");

    // After a check with a backup code, it can.
    verify(&b, &sid, "", &[("level", "second_factor")]).await;
    let r = verify(&b, &sid, "/attempt_second_factor", &[("strategy", "backup_code"), ("code", &backup[0])]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let r = b.post("/v1/me/totp", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["response"]["secret"].is_string());

    // A user with no factor at all adds the first one without a check (nothing to prove).
    let c = server.browser();
    server.sign_up(&c, "fresh@example.com", PASSWORD).await;
    server.clock.advance_ms(11 * 60_000);
    let r = c.post("/v1/me/totp", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
});
