//! App-level invitations and sign-in tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, uid, user};
use crate::records::*;
use crate::Store;

pub async fn invitations(store: &dyn Store) {
    let m = uid("inv").to_lowercase();
    let row = |email: String, status: &str, expires_at: i64| InvitationRow {
        id: uid("inv"),
        email,
        status: status.into(),
        public_metadata: r#"{"team":"blue"}"#.into(),
        redirect_url: None,
        token_digest: uid("digest"),
        expires_at: Some(expires_at),
        created_at: 1_000,
        updated_at: 1_000,
    };
    let a = row(format!("{m}-a@example.com"), "pending", 100_000);
    let b = row(format!("{m}-b@example.com"), "pending", 5_000);
    let c = row(format!("{m}-c@example.com"), "revoked", 100_000);
    for i in [&a, &b, &c] {
        store.insert_invitation(i).await.unwrap();
    }
    assert_eq!(store.get_invitation(&a.id).await.unwrap(), Some(a.clone()));
    let (rows, total) = store.list_invitations(&[], Some(&m), 10, 0).await.unwrap();
    assert_eq!((rows.len(), total), (3, 3));
    assert!(store.expire_invitations(6_000).await.unwrap() >= 1);
    assert_eq!(store.get_invitation(&b.id).await.unwrap().unwrap().status, "expired");
    let (pending, total) = store.list_invitations(&["pending".into()], Some(&m), 10, 0).await.unwrap();
    assert_eq!((pending, total), (vec![a.clone()], 1));
    assert_eq!(store.pending_invitations_for(&a.email, 6_000).await.unwrap(), vec![a.clone()]);
    assert!(store.pending_invitations_for(&a.email, 100_000).await.unwrap().is_empty(), "not once expired");
    let mut accepted = a.clone();
    accepted.status = "accepted".into();
    store.update_invitation(&accepted).await.unwrap();
    assert!(store.pending_invitations_for(&a.email, 6_000).await.unwrap().is_empty());
    assert!(store.delete_invitation(&c.id).await.unwrap());
    assert!(!store.delete_invitation(&c.id).await.unwrap());
}

pub async fn sign_in_tokens(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&bare(user(&a, None))).await.unwrap();
    let t = SignInTokenRow {
        id: uid("sit"),
        user_id: a.clone(),
        token_digest: uid("digest"),
        status: "pending".into(),
        expires_at: 9_000,
        created_at: 1_000,
        updated_at: 1_000,
    };
    store.insert_sign_in_token(&t).await.unwrap();
    assert_eq!(store.sign_in_token_by_digest(&t.token_digest).await.unwrap(), Some(t.clone()));
    let used = SignInTokenRow { status: "accepted".into(), updated_at: 2_000, ..t.clone() };
    assert!(store.transition_sign_in_token(&used, "pending").await.unwrap());
    assert!(!store.transition_sign_in_token(&used, "pending").await.unwrap(), "only one use wins");
    assert_eq!(store.get_sign_in_token(&t.id).await.unwrap(), Some(used));
    store.delete_user(&a).await.unwrap();
    assert_eq!(store.get_sign_in_token(&t.id).await.unwrap(), None, "deleted with its user");
}
