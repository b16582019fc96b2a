//! Instance-wide state: settings, signing and API keys, JWT templates, handshake nonces and
//! the windowed attempt counters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::uid;
use crate::records::*;
use crate::{Store, StoreError};

pub async fn answers_pings(store: &dyn Store) {
    store.ping().await.unwrap();
}

pub async fn settings(store: &dyn Store) {
    let key = uid("setting");
    assert_eq!(store.get_setting(&key).await.unwrap(), None);
    assert_eq!(store.init_setting(&key, "first").await.unwrap(), "first");
    assert_eq!(store.init_setting(&key, "second").await.unwrap(), "first", "init never overwrites");
    assert_eq!(store.get_setting(&key).await.unwrap().as_deref(), Some("first"));
}

pub async fn keys(store: &dyn Store) {
    let kid = uid("kid");
    let row = SigningKeyRow {
        kid: kid.clone(),
        public_n: "n".into(),
        public_e: "AQAB".into(),
        private_sealed: "sealed".into(),
        created_at: 1,
        activate_at: 2,
        revoked_at: None,
    };
    store.insert_signing_key(&row).await.unwrap();
    assert!(store.list_signing_keys().await.unwrap().contains(&row));
    assert!(store.revoke_signing_key(&kid, 5).await.unwrap());
    assert!(!store.revoke_signing_key(&kid, 6).await.unwrap(), "revocation happens once");
    let listed = store.list_signing_keys().await.unwrap();
    assert_eq!(listed.iter().find(|k| k.kid == kid).and_then(|k| k.revoked_at), Some(5));
    store.delete_signing_key(&kid).await.unwrap();
    assert!(store.list_signing_keys().await.unwrap().iter().all(|k| k.kid != kid));

    let api = ApiKeyRow { id: uid("ak"), digest: uid("dg"), label: "ci".into(), created_at: 1, revoked_at: None };
    store.insert_api_key(&api).await.unwrap();
    assert_eq!(store.api_key_by_digest(&api.digest).await.unwrap(), Some(api.clone()));
    assert!(store.revoke_api_key(&api.id, 9).await.unwrap());
    assert_eq!(store.api_key_by_digest(&api.digest).await.unwrap().unwrap().revoked_at, Some(9));
    assert!(store.list_api_keys().await.unwrap().iter().any(|k| k.id == api.id));
}

pub async fn jwt_templates(store: &dyn Store) {
    let name = uid("tmpl");
    let t = JwtTemplateRow {
        id: uid("jtmp"),
        name: name.clone(),
        claims: r#"{"aud":"x"}"#.into(),
        lifetime: 60,
        allowed_clock_skew: 5,
        signing_algorithm: "RS256".into(),
        signing_key_sealed: None,
        created_at: 1_000,
        updated_at: 1_000,
    };
    store.insert_jwt_template(&t).await.unwrap();
    assert_eq!(store.jwt_template_by_name(&name).await.unwrap(), Some(t.clone()));
    let dup = JwtTemplateRow { id: uid("jtmp"), ..t.clone() };
    assert!(matches!(store.insert_jwt_template(&dup).await, Err(StoreError::Conflict(_))), "names are unique");
    let changed = JwtTemplateRow {
        lifetime: 120,
        signing_algorithm: "HS256".into(),
        signing_key_sealed: Some("sealed".into()),
        ..t.clone()
    };
    store.update_jwt_template(&changed).await.unwrap();
    assert_eq!(store.get_jwt_template(&t.id).await.unwrap(), Some(changed.clone()));
    assert!(store.list_jwt_templates().await.unwrap().contains(&changed));
    assert!(store.delete_jwt_template(&t.id).await.unwrap());
    assert_eq!(store.get_jwt_template(&t.id).await.unwrap(), None);
}

pub async fn handshake_nonces(store: &dyn Store) {
    let (a, b, old) = (uid("hs"), uid("hs"), uid("hs"));
    store.insert_handshake_nonce(&a, r#"["__session=x"]"#, 10_000).await.unwrap();
    store.insert_handshake_nonce(&b, "[]", 10_000).await.unwrap();
    store.insert_handshake_nonce(&old, "[]", 5_000).await.unwrap();
    assert!(store.insert_handshake_nonce(&a, "[]", 10_000).await.is_err(), "a digest is stored once");
    // Racing takers: exactly one gets the directives.
    let t = || store.take_handshake_nonce(&a, 9_000);
    let (t1, t2, t3, t4) = tokio::join!(t(), t(), t(), t());
    let won: Vec<_> = [t1, t2, t3, t4].into_iter().map(|t| t.unwrap()).filter(Option::is_some).collect();
    assert_eq!(won, vec![Some(r#"["__session=x"]"#.to_owned())]);
    assert_eq!(store.take_handshake_nonce(&a, 9_000).await.unwrap(), None, "single use");
    assert_eq!(store.take_handshake_nonce(&uid("hs"), 9_000).await.unwrap(), None, "unknown");
    assert_eq!(store.take_handshake_nonce(&b, 10_000).await.unwrap(), None, "expired at its expiry");
    assert!(store.prune_handshake_nonces(6_000).await.unwrap() >= 1);
    assert_eq!(store.take_handshake_nonce(&old, 1_000).await.unwrap(), None, "pruned");
}

/// Windowed counters: one count per bump, none lost under concurrency, a new window after the
/// old one ends, and pruning that removes only ended windows.
pub async fn attempt_counters(store: &dyn Store) {
    let key = uid("ctr");
    assert_eq!(store.get_counter(&key).await.unwrap(), None);
    let first = store.bump_counter(&key, 1_000, 10_000).await.unwrap();
    assert_eq!(first, crate::Counter { count: 1, window_start: 10_000, last_at: 10_000, expires_at: 11_000 });
    let second = store.bump_counter(&key, 1_000, 10_500).await.unwrap();
    assert_eq!((second.count, second.window_start, second.last_at, second.expires_at), (2, 10_000, 10_500, 11_000));
    let bump = || store.bump_counter(&key, 1_000, 10_600);
    let (c1, c2, c3, c4) = tokio::join!(bump(), bump(), bump(), bump());
    let mut counts: Vec<i64> = [c1, c2, c3, c4].into_iter().map(|c| c.unwrap().count).collect();
    counts.sort_unstable();
    assert_eq!(counts, [3, 4, 5, 6], "every concurrent bump counts once");
    let restarted = store.bump_counter(&key, 1_000, 11_000).await.unwrap();
    assert_eq!((restarted.count, restarted.window_start, restarted.expires_at), (1, 11_000, 12_000));
    assert_eq!(store.get_counter(&key).await.unwrap(), Some(restarted));
    let other = uid("ctr");
    store.bump_counter(&other, 100_000, 11_000).await.unwrap();
    assert!(store.prune_counters(12_000).await.unwrap() >= 1);
    assert_eq!(store.get_counter(&key).await.unwrap(), None, "an ended window is pruned");
    assert_eq!(store.get_counter(&other).await.unwrap().map(|c| c.count), Some(1), "a live one is kept");
    store.clear_counter(&other).await.unwrap();
    assert_eq!(store.get_counter(&other).await.unwrap(), None);

    // Compare and swap: of two callers that judged the same state, one counts.
    let key = uid("ctr");
    assert!(store.reserve_counter(&key, None, 1_000, 20_000).await.unwrap());
    assert!(!store.reserve_counter(&key, None, 1_000, 20_000).await.unwrap(), "a live window exists now");
    let seen = store.get_counter(&key).await.unwrap().unwrap();
    assert!(store.reserve_counter(&key, Some(&seen), 1_000, 20_100).await.unwrap());
    assert!(!store.reserve_counter(&key, Some(&seen), 1_000, 20_200).await.unwrap(), "the state moved on");
    let now = store.get_counter(&key).await.unwrap().unwrap();
    assert_eq!((now.count, now.last_at), (2, 20_100));
    assert!(store.reserve_counter(&key, Some(&now), 1_000, 21_000).await.unwrap(), "an ended window starts again");
    assert_eq!(store.get_counter(&key).await.unwrap().map(|c| (c.count, c.window_start)), Some((1, 21_000)));
}

/// Rate cells: a burst of 3 then one every 20 s, spent atomically by racing callers.
pub async fn rate_cells(store: &dyn Store) {
    let key = uid("rate");
    let (interval, tolerance) = (20_000, 40_000);
    for _ in 0..3 {
        assert_eq!(store.spend_rate_cell(&key, interval, tolerance, 100_000).await.unwrap(), None);
    }
    assert_eq!(store.spend_rate_cell(&key, interval, tolerance, 100_000).await.unwrap(), Some(20_000));
    assert_eq!(
        store.spend_rate_cell(&key, interval, tolerance, 110_000).await.unwrap(),
        Some(10_000),
        "refusals spend nothing"
    );
    assert_eq!(store.spend_rate_cell(&key, interval, tolerance, 120_000).await.unwrap(), None, "refilled one");
    assert!(store.spend_rate_cell(&key, interval, tolerance, 120_000).await.unwrap().is_some());
    assert_eq!(
        store.spend_rate_cell(&uid("rate"), interval, tolerance, 120_000).await.unwrap(),
        None,
        "keys are apart"
    );

    // Ten racing callers on a fresh cell: exactly the burst passes.
    let key = uid("rate");
    let spend = || store.spend_rate_cell(&key, interval, tolerance, 200_000);
    let (a, b, c, d, e) = tokio::join!(spend(), spend(), spend(), spend(), spend());
    let (f, g, h, i, j) = tokio::join!(spend(), spend(), spend(), spend(), spend());
    let passed = [a, b, c, d, e, f, g, h, i, j].into_iter().filter(|r| r.as_ref().unwrap().is_none()).count();
    assert_eq!(passed, 3);

    // A cell full again is pruned; one still spent is kept.
    assert!(store.prune_rate_cells(300_000).await.unwrap() >= 1);
    assert_eq!(store.spend_rate_cell(&key, interval, tolerance, 300_000).await.unwrap(), None);
    assert_eq!(store.prune_rate_cells(300_000).await.unwrap(), 0, "the cell spent at 300 s is kept");
}
