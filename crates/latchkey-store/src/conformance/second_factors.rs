//! Second factors: one authenticator-app key per user, each code step accepted once, backup
//! codes used once and replaced as a set, imports written with their user; and the session
//! writes of step-up checks, which finish a pending task and never bring a revoked session back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, client, session, uid, user};
use crate::records::*;
use crate::Store;

fn totp(user_id: &str) -> TotpRow {
    TotpRow {
        id: uid("totp"),
        user_id: user_id.into(),
        secret_sealed: uid("sealed"),
        verified: false,
        last_used_step: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn code(user_id: &str) -> BackupCodeRow {
    BackupCodeRow { id: uid("bcd"), user_id: user_id.into(), digest: uid("digest"), created_at: 1_000 }
}

async fn factors_of(store: &dyn Store, user_id: &str) -> SecondFactors {
    store.get_user(user_id).await.unwrap().unwrap().second_factors
}

pub async fn totp_steps_and_backup_codes_work_once(store: &dyn Store) {
    let ada = uid("user");
    store.create_user(&bare(user(&ada, None))).await.unwrap();
    assert_eq!(factors_of(store, &ada).await, SecondFactors::default());

    // A pending key is replaced by the next enrolment; only a verified one counts.
    let first = totp(&ada);
    store.save_pending_totp(&first).await.unwrap();
    let second = totp(&ada);
    store.save_pending_totp(&second).await.unwrap();
    let f = factors_of(store, &ada).await;
    assert_eq!(f.totp.as_ref().map(|t| t.id.clone()), Some(second.id.clone()));
    assert!(!f.totp_enabled() && !f.any());
    assert!(!store.use_totp_step(&first.id, 10, true, 2_000).await.unwrap(), "the replaced key is gone");

    // Verification is the first accepted step; the same step or an earlier one never again.
    assert!(store.use_totp_step(&second.id, 100, true, 2_000).await.unwrap());
    assert!(!store.use_totp_step(&second.id, 100, false, 2_001).await.unwrap(), "replay in the same step");
    assert!(!store.use_totp_step(&second.id, 99, false, 2_001).await.unwrap(), "an earlier step");
    assert!(store.use_totp_step(&second.id, 101, false, 2_002).await.unwrap());
    let f = factors_of(store, &ada).await;
    let stored = f.totp.clone().unwrap();
    assert!(stored.verified && f.totp_enabled() && f.any());
    assert_eq!((stored.last_used_step, stored.updated_at), (Some(101), 2_002));
    let err = store.save_pending_totp(&totp(&ada)).await.unwrap_err();
    assert!(matches!(err, crate::StoreError::Conflict(_)), "{err:?}");
    assert_eq!(factors_of(store, &ada).await.totp.unwrap().id, second.id, "a verified key stays");

    // Backup codes: a new set replaces the old; each is used once, and only by its user.
    let old = [code(&ada), code(&ada)];
    store.replace_backup_codes(&ada, &old).await.unwrap();
    let new: Vec<_> = (0..3).map(|_| code(&ada)).collect();
    store.replace_backup_codes(&ada, &new).await.unwrap();
    let f = factors_of(store, &ada).await;
    let mut ids: Vec<_> = f.backup_codes.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    let mut want: Vec<_> = new.iter().map(|c| c.id.clone()).collect();
    want.sort();
    assert_eq!(ids, want, "the old set died");
    assert!(!store.consume_backup_code(&ada, &old[0].id).await.unwrap());
    let eve = uid("user");
    store.create_user(&bare(user(&eve, None))).await.unwrap();
    assert!(!store.consume_backup_code(&eve, &new[0].id).await.unwrap(), "another user's code");
    assert!(store.consume_backup_code(&ada, &new[0].id).await.unwrap());
    assert!(!store.consume_backup_code(&ada, &new[0].id).await.unwrap(), "used twice");
    assert_eq!(factors_of(store, &ada).await.backup_codes.len(), 2);

    // Removing the key can take the codes with it; removing nothing says so.
    assert!(store.delete_totp(&ada, true).await.unwrap());
    assert_eq!(factors_of(store, &ada).await, SecondFactors::default());
    assert!(!store.delete_totp(&ada, true).await.unwrap());
    assert!(!store.delete_backup_codes(&ada).await.unwrap());
    store.replace_backup_codes(&ada, &[code(&ada)]).await.unwrap();
    assert!(factors_of(store, &ada).await.any());
    assert!(store.delete_backup_codes(&ada).await.unwrap());

    // An import lands with its user, in the same transaction.
    let bob = uid("user");
    let mut record = bare(user(&bob, None));
    let imported = TotpRow { verified: true, ..totp(&bob) };
    record.second_factors = SecondFactors { totp: Some(imported.clone()), backup_codes: vec![code(&bob)] };
    store.create_user(&record).await.unwrap();
    let got = store.get_user(&bob).await.unwrap().unwrap().second_factors;
    assert_eq!(got, record.second_factors);
    // And goes with its user.
    assert!(store.delete_user(&bob).await.unwrap());
    assert!(!store.use_totp_step(&imported.id, 1, false, 3_000).await.unwrap());
}

pub async fn session_verification_never_revives_a_session(store: &dyn Store) {
    let ada = uid("user");
    store.create_user(&bare(user(&ada, None))).await.unwrap();
    let c = client(&uid("client"));
    store.insert_client(&c).await.unwrap();
    let s = SessionRow { pending_task: Some("setup-mfa".into()), ..session(&uid("sess"), &c.id, &ada) };
    store.insert_session(&s).await.unwrap();

    let step_up = SessionVerification {
        session_id: s.id.clone(),
        reverification: Some("{\"level\":\"second_factor\"}".into()),
        first_factor_verified_at: None,
        second_factor_verified_at: None,
        now: 5_000,
    };
    assert!(store.record_session_verification(&step_up).await.unwrap());
    let got = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(got.pending_task.as_deref(), Some("setup-mfa"), "no second factor proved yet");
    let done = SessionVerification {
        reverification: None,
        first_factor_verified_at: Some(6_000),
        second_factor_verified_at: Some(6_000),
        now: 6_000,
        ..step_up.clone()
    };
    assert!(store.record_session_verification(&done).await.unwrap());
    let again = SessionVerification { first_factor_verified_at: Some(7_000), now: 7_000, ..done.clone() };
    assert!(store.record_session_verification(&again).await.unwrap());
    let got = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.reverification.clone(), got.first_factor_verified_at, got.second_factor_verified_at, got.updated_at),
        (None, Some(7_000), Some(6_000), 7_000),
        "a factor not proved again keeps its time"
    );
    assert_eq!(got.pending_task, None, "a second factor proved finishes the task");

    assert!(store.record_session_activity(&s.id, Some("org_1"), 8_000).await.unwrap());
    let got = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!((got.last_active_at, got.active_org_id.as_deref()), (8_000, Some("org_1")));

    assert!(store.record_session_device(&s.id, Some("Mozilla/5.0 (iPhone)"), "203.0.113.9").await.unwrap());
    let got = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.user_agent.as_deref(), got.ip_address.as_deref()),
        (Some("Mozilla/5.0 (iPhone)"), Some("203.0.113.9"))
    );
    assert_eq!(got.last_active_at, 8_000, "the device alone is not activity");

    let revoked = SessionRow { status: "revoked".into(), updated_at: 9_000, ..got };
    store.update_session(&revoked).await.unwrap();
    assert!(!store.record_session_activity(&s.id, None, 10_000).await.unwrap());
    assert!(!store.record_session_device(&s.id, None, "198.51.100.1").await.unwrap());
    assert!(!store.record_session_verification(&SessionVerification { now: 10_000, ..done }).await.unwrap());
    let got = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!((got.status.as_str(), got.last_active_at), ("revoked", 8_000), "nothing brings it back");
    assert_eq!(got.ip_address.as_deref(), Some("203.0.113.9"), "an ended session's device stays as it was");
}
