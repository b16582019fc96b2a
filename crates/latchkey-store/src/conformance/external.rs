//! Users' accounts at identity providers: written with the sign-in they complete, found by
//! the provider's id of the person, one per provider and person, gone with their user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, client, session, sign_in, uid, user};
use crate::records::*;
use crate::Store;

fn account(user_id: &str, subject: &str) -> ExternalAccountRow {
    ExternalAccountRow {
        id: uid("eac"),
        user_id: user_id.into(),
        provider: "oauth_google".into(),
        provider_user_id: subject.into(),
        email_address: Some("ada@example.com".into()),
        email_verified: true,
        first_name: Some("Ada".into()),
        last_name: None,
        image_url: None,
        username: None,
        approved_scopes: "openid email profile".into(),
        access_token_sealed: Some("sealed-access".into()),
        refresh_token_sealed: None,
        token_expires_at: Some(5_000),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

/// Completes a new sign-in of `user_id` on a new client, writing `external`.
async fn sign_in_with(store: &dyn Store, user_id: &str, external: &ExternalAccountRow) -> crate::error::Result<()> {
    let c = client(&uid("client"));
    store.insert_client(&c).await.unwrap();
    let attempt = sign_in(&uid("sia"), &c.id);
    store.insert_sign_in(&attempt).await.unwrap();
    let mut done = attempt.clone();
    done.status = "complete".into();
    done.version += 1;
    store
        .complete_sign_in(&CompleteSignIn {
            sign_in: done,
            session: Some(session(&uid("sess"), &c.id, user_id)),
            user_id: user_id.into(),
            rehashed_password: None,
            password_changed_at: None,
            client_token_digest: uid("digest"),
            external_account: Some(external.clone()),
            now: 2_000,
        })
        .await
}

pub async fn provider_accounts_join_their_user(store: &dyn Store) {
    let ada = uid("user");
    store.create_user(&bare(user(&ada, None))).await.unwrap();
    let subject = uid("google-sub");
    let first = account(&ada, &subject);
    sign_in_with(store, &ada, &first).await.unwrap();
    assert_eq!(store.external_account_by_subject("oauth_google", &subject).await.unwrap(), Some(first.clone()));
    assert_eq!(store.external_account_by_subject("oauth_github", &subject).await.unwrap(), None);

    // A later sign-in refreshes the same account (tokens, profile), adding nothing.
    let mut refreshed = first.clone();
    refreshed.access_token_sealed = Some("sealed-access-2".into());
    refreshed.first_name = Some("Augusta".into());
    refreshed.updated_at = 3_000;
    sign_in_with(store, &ada, &refreshed).await.unwrap();
    assert_eq!(store.external_accounts_for_user(&ada).await.unwrap(), vec![refreshed.clone()]);

    // One account per provider and person: a second row for the same person is refused, and
    // its whole sign-in with it (no session is left behind).
    let eve = uid("user");
    store.create_user(&bare(user(&eve, None))).await.unwrap();
    let twin = account(&eve, &subject);
    assert!(sign_in_with(store, &eve, &twin).await.is_err());
    assert!(store.sessions_for_user(&eve).await.unwrap().is_empty());
    assert!(store.external_accounts_for_user(&eve).await.unwrap().is_empty());

    // Another provider's account of the same user sits beside the first, oldest first.
    let mut github = account(&ada, &subject);
    github.provider = "oauth_github".into();
    github.created_at = 4_000;
    sign_in_with(store, &ada, &github).await.unwrap();
    let listed = store.external_accounts_for_user(&ada).await.unwrap();
    assert_eq!(listed.iter().map(|a| a.provider.as_str()).collect::<Vec<_>>(), ["oauth_google", "oauth_github"]);

    // The user is read with their accounts.
    let record = store.get_user(&ada).await.unwrap().unwrap();
    assert_eq!(record.external_accounts, listed);

    // Connected while signed in: saved on its own; the same person at the same provider stays
    // one account, whoever asks.
    let mut gitlab = account(&ada, &uid("gitlab-sub"));
    gitlab.provider = "oauth_gitlab".into();
    gitlab.created_at = 5_000;
    store.save_external_account(&gitlab).await.unwrap();
    let mut stolen = gitlab.clone();
    stolen.id = uid("eac");
    stolen.user_id = eve.clone();
    let err = store.save_external_account(&stolen).await.unwrap_err();
    assert!(matches!(err, crate::StoreError::Conflict(_)), "{err:?}");
    let mut rescoped = gitlab.clone();
    rescoped.approved_scopes = "openid email profile read_api".into();
    rescoped.updated_at = 6_000;
    store.save_external_account(&rescoped).await.unwrap();
    assert_eq!(store.external_accounts_for_user(&ada).await.unwrap().last(), Some(&rescoped));

    // Updated in place (new tokens), never for another user.
    let mut renewed = rescoped.clone();
    renewed.access_token_sealed = Some("sealed-access-3".into());
    assert!(store.update_external_account(&renewed).await.unwrap());
    assert_eq!(store.external_accounts_for_user(&ada).await.unwrap().last(), Some(&renewed));
    assert!(!store
        .update_external_account(&ExternalAccountRow { user_id: eve.clone(), ..renewed.clone() })
        .await
        .unwrap());

    // Removed only by its own user.
    assert!(!store.delete_external_account(&eve, &gitlab.id).await.unwrap());
    assert!(store.delete_external_account(&ada, &gitlab.id).await.unwrap());
    assert!(!store.delete_external_account(&ada, &gitlab.id).await.unwrap());
    // An update of a removed account brings nothing back.
    assert!(!store.update_external_account(&renewed).await.unwrap());
    assert!(store.external_accounts_for_user(&ada).await.unwrap().iter().all(|a| a.id != gitlab.id));
    assert_eq!(store.get_user(&ada).await.unwrap().unwrap().external_accounts.len(), 2);

    assert!(store.delete_user(&ada).await.unwrap());
    assert_eq!(store.external_account_by_subject("oauth_google", &subject).await.unwrap(), None);
    assert!(store.external_accounts_for_user(&ada).await.unwrap().is_empty());
}
