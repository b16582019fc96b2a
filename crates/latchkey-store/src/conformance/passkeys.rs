//! Passkeys: a user handle set once, one registration in progress per user that finishes once,
//! a credential on one account only, counters that never go back, and rename and removal only
//! by the owner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, uid, user};
use crate::records::*;
use crate::Store;

fn pending(user_id: &str, state: &str) -> PasskeyRow {
    PasskeyRow {
        id: uid("idn"),
        user_id: user_id.into(),
        name: "Chrome on Linux".into(),
        credential_id: None,
        credential: None,
        counter: 0,
        backup_eligible: false,
        backup_state: false,
        registration_state: Some(state.into()),
        verified: false,
        expire_at: Some(5_000),
        last_used_at: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn verified(p: &PasskeyRow, credential_id: &str) -> PasskeyRow {
    PasskeyRow {
        credential_id: Some(credential_id.into()),
        credential: Some(format!("{{\"cred\":\"{credential_id}\"}}")),
        counter: 3,
        backup_eligible: true,
        backup_state: true,
        updated_at: 2_000,
        ..p.clone()
    }
}

async fn passkeys_of(store: &dyn Store, user_id: &str) -> Vec<PasskeyRow> {
    store.get_user(user_id).await.unwrap().unwrap().passkeys
}

pub async fn passkeys_register_once_and_counters_only_rise(store: &dyn Store) {
    let ada = uid("user");
    let bob = uid("user");
    store.create_user(&bare(user(&ada, None))).await.unwrap();
    store.create_user(&bare(user(&bob, None))).await.unwrap();

    // The first handle set stays.
    let handle = store.set_webauthn_handle(&ada, "h-1").await.unwrap();
    assert_eq!(handle, "h-1");
    assert_eq!(store.set_webauthn_handle(&ada, "h-2").await.unwrap(), "h-1");
    assert_eq!(store.get_user_row(&ada).await.unwrap().unwrap().webauthn_handle.as_deref(), Some("h-1"));
    assert!(store.set_webauthn_handle(&uid("user"), "h-3").await.is_err(), "no such user");

    // A new registration replaces the unfinished one; it finishes once, with its own state.
    let first = pending(&ada, "state-1");
    store.save_pending_passkey(&first).await.unwrap();
    let second = pending(&ada, "state-2");
    store.save_pending_passkey(&second).await.unwrap();
    assert_eq!(
        passkeys_of(store, &ada).await.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![second.id.clone()]
    );
    let cred = uid("cred");
    assert!(!store.finish_passkey_registration(&verified(&first, &cred), "state-1").await.unwrap(), "replaced");
    assert!(!store.finish_passkey_registration(&verified(&second, &cred), "state-1").await.unwrap(), "wrong state");
    assert!(store.finish_passkey_registration(&verified(&second, &cred), "state-2").await.unwrap());
    assert!(!store.finish_passkey_registration(&verified(&second, &cred), "state-2").await.unwrap(), "twice");
    let stored = passkeys_of(store, &ada).await;
    assert_eq!(stored.len(), 1);
    let key = &stored[0];
    assert!(key.verified && key.registration_state.is_none() && key.expire_at.is_none());
    assert_eq!((key.credential_id.as_deref(), key.counter, key.backup_eligible), (Some(cred.as_str()), 3, true));

    // A second registration leaves the verified passkey alone; the same credential on
    // another account is refused.
    store.save_pending_passkey(&pending(&ada, "state-3")).await.unwrap();
    assert_eq!(passkeys_of(store, &ada).await.len(), 2);
    let bobs = pending(&bob, "state-b");
    store.save_pending_passkey(&bobs).await.unwrap();
    let err = store.finish_passkey_registration(&verified(&bobs, &cred), "state-b").await.unwrap_err();
    assert!(matches!(err, crate::StoreError::Conflict(_)), "{err:?}");
    // A refused answer spends the state.
    store.fail_passkey_registration(&bob, &bobs.id, 2_500).await.unwrap();
    assert!(!store.finish_passkey_registration(&verified(&bobs, &uid("cred")), "state-b").await.unwrap());

    // Lookup by credential finds only verified passkeys.
    assert_eq!(store.passkey_by_credential(&cred).await.unwrap().map(|p| p.id), Some(second.id.clone()));
    assert!(store.passkey_by_credential(&uid("cred")).await.unwrap().is_none());

    // Counters only rise; the refused use writes nothing.
    let used = |counter, now| PasskeyUse {
        id: second.id.clone(),
        credential: format!("{{\"counter\":{counter}}}"),
        counter,
        backup_state: false,
        now,
    };
    assert!(store.record_passkey_use(&used(4, 3_000)).await.unwrap());
    assert!(!store.record_passkey_use(&used(4, 3_001)).await.unwrap(), "the same count twice");
    assert!(!store.record_passkey_use(&used(2, 3_002)).await.unwrap(), "a count going back");
    let key = store.passkey_by_credential(&cred).await.unwrap().unwrap();
    assert_eq!((key.counter, key.last_used_at, key.backup_state), (4, Some(3_000), false));
    assert_eq!(key.credential.as_deref(), Some("{\"counter\":4}"));

    // Rename and removal: only the owner's, only verified ones are renamed.
    assert!(!store.rename_passkey(&bob, &second.id, "Bob's", 4_000).await.unwrap());
    assert!(store.rename_passkey(&ada, &second.id, "Laptop", 4_000).await.unwrap());
    assert_eq!(store.passkey_by_credential(&cred).await.unwrap().unwrap().name, "Laptop");
    assert!(!store.delete_passkey(&bob, &second.id).await.unwrap());
    assert!(store.delete_passkey(&ada, &second.id).await.unwrap());
    assert!(!store.delete_passkey(&ada, &second.id).await.unwrap());
    assert!(store.passkey_by_credential(&cred).await.unwrap().is_none());

    // Removing the user removes their passkeys.
    store.delete_user(&ada).await.unwrap();
    assert!(store.passkey_by_credential(&cred).await.unwrap().is_none());
}
