//! The webhooks part of the conformance suite: the outbox written with its change (and only
//! then), fan-out by filter, claims with leases, attempts, disabling, replays and pruning.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, uid, user};
use crate::webhooks::*;
use crate::Store;

fn endpoint(types: &[&str]) -> WebhookEndpointRow {
    WebhookEndpointRow {
        id: uid("whe"),
        url: "https://example.com/hook".into(),
        description: String::new(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        secret_sealed: "sealed".into(),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        disabled_reason: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn event(event_type: &str, at: i64) -> OutboxEvent {
    OutboxEvent {
        id: uid("msg"),
        event_type: event_type.into(),
        payload: format!("{{\"type\":\"{event_type}\"}}"),
        created_at: at,
        revocation: None,
    }
}

async fn deliveries_of(store: &dyn Store, endpoint_id: &str) -> Vec<DeliveryRow> {
    let q = DeliveryQuery { endpoint_id: endpoint_id.into(), status: None, limit: 100, offset: 0 };
    store.list_webhook_deliveries(&q).await.unwrap().0
}

/// Claims everything due at `now` and keeps the claims of the endpoints named.
async fn claim_for(store: &dyn Store, now: i64, endpoints: &[&str]) -> Vec<ClaimedDelivery> {
    let mut mine = Vec::new();
    loop {
        let batch = store.claim_webhook_deliveries(now, 60_000, 50).await.unwrap();
        if batch.is_empty() {
            return mine;
        }
        mine.extend(batch.into_iter().filter(|c| endpoints.contains(&c.endpoint.id.as_str())));
    }
}

pub async fn endpoints_round_trip(store: &dyn Store) {
    let mut e = endpoint(&["user.created", "user.deleted"]);
    store.insert_webhook_endpoint(&e).await.unwrap();
    assert_eq!(store.get_webhook_endpoint(&e.id).await.unwrap(), Some(e.clone()));
    e.url = "https://example.org/other".into();
    e.event_types = Vec::new();
    e.previous_secret_sealed = Some("old".into());
    e.previous_secret_expires_at = Some(9_000);
    e.updated_at = 2_000;
    assert!(store.update_webhook_endpoint(&e).await.unwrap());
    assert_eq!(store.get_webhook_endpoint(&e.id).await.unwrap(), Some(e.clone()));
    let (list, total) = store.list_webhook_endpoints(500, 0).await.unwrap();
    assert!(list.iter().any(|x| x == &e));
    assert!(total >= 1);
    assert!(store.delete_webhook_endpoint(&e.id).await.unwrap());
    assert!(!store.delete_webhook_endpoint(&e.id).await.unwrap());
    assert_eq!(store.get_webhook_endpoint(&e.id).await.unwrap(), None);
    assert!(!store.update_webhook_endpoint(&e).await.unwrap());
}

pub async fn events_land_with_their_change_only(store: &dyn Store) {
    let all = endpoint(&[]);
    let created_only = endpoint(&["user.created"]);
    let deleted_only = endpoint(&["user.deleted"]);
    let mut disabled = endpoint(&[]);
    disabled.disabled_reason = Some("manual".into());
    for e in [&all, &created_only, &deleted_only, &disabled] {
        store.insert_webhook_endpoint(e).await.unwrap();
    }

    // A change with its event: the message and one delivery per accepting endpoint.
    let id = uid("user");
    let created = event("user.created", 1_000);
    store.emitting(vec![created.clone()]).create_user(&bare(user(&id, None))).await.unwrap();
    assert_eq!(store.get_webhook_message(&created.id).await.unwrap(), Some(created.clone()));
    for (e, n) in [(&all, 1), (&created_only, 1), (&deleted_only, 0), (&disabled, 0)] {
        let d = deliveries_of(store, &e.id).await;
        assert_eq!(d.len(), n, "deliveries to {:?}", e.event_types);
        if let Some(d) = d.first() {
            assert_eq!((d.message_id.as_str(), d.event_type.as_str()), (created.id.as_str(), "user.created"));
            assert_eq!((d.status, d.attempts, d.next_attempt_at), (DeliveryStatus::Pending, 0, Some(1_000)));
        }
    }

    // A failed change leaves no event: the same user again is a conflict.
    let again = event("user.created", 1_100);
    let dup = store.emitting(vec![again.clone()]).create_user(&bare(user(&id, None))).await;
    assert!(dup.is_err());
    assert_eq!(store.get_webhook_message(&again.id).await.unwrap(), None);

    // A write that changes nothing leaves no event either.
    let nothing = event("user.deleted", 1_200);
    assert!(!store.emitting(vec![nothing.clone()]).delete_user(&uid("user")).await.unwrap());
    assert_eq!(store.get_webhook_message(&nothing.id).await.unwrap(), None);

    // Several events of one change land together.
    let (a, b) = (event("user.deleted", 1_300), event("session.removed", 1_300));
    assert!(store.emitting(vec![a.clone(), b.clone()]).delete_user(&id).await.unwrap());
    assert!(store.get_webhook_message(&a.id).await.unwrap().is_some());
    assert!(store.get_webhook_message(&b.id).await.unwrap().is_some());
    assert_eq!(deliveries_of(store, &all.id).await.len(), 3);
    assert_eq!(deliveries_of(store, &deleted_only.id).await.len(), 1);

    // Events written on their own (mail sent).
    let mail = event("email.created", 1_400);
    store.append_events(std::slice::from_ref(&mail)).await.unwrap();
    assert_eq!(store.get_webhook_message(&mail.id).await.unwrap(), Some(mail));
    // Only for subscribers: with an endpoint taking every event, a mail event is kept.
    let subscribed = event("email.created", 1_500);
    store.append_subscribed_events(std::slice::from_ref(&subscribed)).await.unwrap();
    assert_eq!(store.get_webhook_message(&subscribed.id).await.unwrap(), Some(subscribed.clone()));
    assert_eq!(deliveries_of(store, &all.id).await.iter().filter(|d| d.message_id == subscribed.id).count(), 1);
    store.delete_webhook_endpoint(&all.id).await.unwrap();
    // With only endpoints that filter it out (or are disabled), it is not written at all.
    let unsubscribed = event("email.created", 1_600);
    store.append_subscribed_events(std::slice::from_ref(&unsubscribed)).await.unwrap();
    assert_eq!(store.get_webhook_message(&unsubscribed.id).await.unwrap(), None);
    let wanted = endpoint(&["email.created"]);
    store.insert_webhook_endpoint(&wanted).await.unwrap();
    let taken = event("email.created", 1_700);
    store.append_subscribed_events(std::slice::from_ref(&taken)).await.unwrap();
    assert!(store.get_webhook_message(&taken.id).await.unwrap().is_some());
    assert_eq!(deliveries_of(store, &wanted.id).await.len(), 1);
    for e in [&created_only, &deleted_only, &disabled, &wanted] {
        store.delete_webhook_endpoint(&e.id).await.unwrap();
    }
}

pub async fn claims_attempts_and_disabling(store: &dyn Store) {
    let e = endpoint(&[]);
    store.insert_webhook_endpoint(&e).await.unwrap();
    let owed_before = store.pending_webhook_deliveries().await.unwrap();
    let (m1, m2) = (event("user.created", 10_000), event("user.updated", 10_000));
    store.append_events(&[m1.clone(), m2.clone()]).await.unwrap();
    assert_eq!(store.pending_webhook_deliveries().await.unwrap(), owed_before + 2, "the queue's depth");

    // Nothing is due before its time; when due, each is claimed once until its lease ends.
    assert!(claim_for(store, 9_999, &[&e.id]).await.is_empty());
    let claimed = claim_for(store, 10_000, &[&e.id]).await;
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].endpoint, e);
    assert!(claimed.iter().any(|c| c.payload == m1.payload && c.message_created_at == 10_000));
    assert!(claim_for(store, 69_999, &[&e.id]).await.is_empty(), "claimed twice within the lease");
    let reclaimed = claim_for(store, 70_000, &[&e.id]).await;
    assert_eq!(reclaimed.len(), 2, "a lease that ran out makes the delivery due again");

    // A success ends the delivery; a failure schedules the next attempt.
    let (ok, failing) = (&reclaimed[0].delivery, &reclaimed[1].delivery);
    let attempt = |d: &DeliveryRow, at: i64, code: Option<i64>, succeeded: bool| AttemptRow {
        id: uid("wha"),
        delivery_id: d.id.clone(),
        attempted_at: at,
        status_code: code,
        succeeded,
        error: (!succeeded).then(|| "HTTP 500".to_owned()),
        duration_ms: 3,
    };
    store
        .record_webhook_attempt(&AttemptOutcome {
            attempt: attempt(ok, 70_001, Some(204), true),
            status: DeliveryStatus::Succeeded,
            next_attempt_at: None,
            disable_endpoint: None,
        })
        .await
        .unwrap();
    store
        .record_webhook_attempt(&AttemptOutcome {
            attempt: attempt(failing, 70_002, Some(500), false),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(75_002),
            disable_endpoint: None,
        })
        .await
        .unwrap();
    assert_eq!(store.pending_webhook_deliveries().await.unwrap(), owed_before + 1, "a retry is still owed");
    let ok_now = store.get_webhook_delivery(&ok.id).await.unwrap().unwrap();
    assert_eq!((ok_now.status, ok_now.attempts, ok_now.next_attempt_at), (DeliveryStatus::Succeeded, 1, None));
    let failing_now = store.get_webhook_delivery(&failing.id).await.unwrap().unwrap();
    assert_eq!((failing_now.status, failing_now.attempts), (DeliveryStatus::Pending, 1));
    assert_eq!(failing_now.next_attempt_at, Some(75_002));
    assert!(claim_for(store, 75_001, &[&e.id]).await.is_empty());
    let third = claim_for(store, 75_002, &[&e.id]).await;
    assert_eq!(third.len(), 1);
    let attempts = store.webhook_attempts(&[ok.id.clone(), failing.id.clone()]).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].status_code, Some(500));

    // A 410 disables the endpoint; its pending deliveries wait, then resume when re-enabled.
    let m3 = event("user.created", 75_002);
    store.append_events(std::slice::from_ref(&m3)).await.unwrap();
    store
        .record_webhook_attempt(&AttemptOutcome {
            attempt: attempt(&third[0].delivery, 75_003, Some(410), false),
            status: DeliveryStatus::Failed,
            next_attempt_at: None,
            disable_endpoint: Some("gone".into()),
        })
        .await
        .unwrap();
    let disabled = store.get_webhook_endpoint(&e.id).await.unwrap().unwrap();
    assert_eq!(disabled.disabled_reason.as_deref(), Some("gone"));
    assert!(claim_for(store, 1_000_000, &[&e.id]).await.is_empty(), "a disabled endpoint gets nothing");
    let m4 = event("user.created", 80_000);
    store.append_events(std::slice::from_ref(&m4)).await.unwrap();
    assert_eq!(deliveries_of(store, &e.id).await.len(), 3, "no new delivery to a disabled endpoint");
    let mut enabled = disabled.clone();
    enabled.disabled_reason = None;
    store.update_webhook_endpoint(&enabled).await.unwrap();
    let resumed = claim_for(store, 1_000_000, &[&e.id]).await;
    assert_eq!(resumed.iter().map(|c| c.delivery.message_id.clone()).collect::<Vec<_>>(), vec![m3.id.clone()]);
    let failed =
        DeliveryQuery { endpoint_id: e.id.clone(), status: Some(DeliveryStatus::Failed), limit: 10, offset: 0 };
    let (rows, total) = store.list_webhook_deliveries(&failed).await.unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    assert!(store.delete_webhook_endpoint(&e.id).await.unwrap());
    assert!(store.get_webhook_delivery(&ok.id).await.unwrap().is_none(), "deliveries go with their endpoint");
}

pub async fn replays_and_pruning(store: &dyn Store) {
    let users_only = endpoint(&["user.created"]);
    store.insert_webhook_endpoint(&users_only).await.unwrap();
    let old = event("user.created", 100);
    let other = event("session.created", 200_000);
    let recent = event("user.created", 200_000);
    store.append_events(&[old.clone(), other.clone(), recent.clone()]).await.unwrap();
    let queued = deliveries_of(store, &users_only.id).await;
    assert_eq!(queued.len(), 2);

    // One message, whatever the filter; everything since a time, as the filter takes it.
    assert_eq!(
        store.replay_webhook_messages(&users_only.id, Some(&other.id), None, 300_000, "whd_r1_").await.unwrap(),
        1
    );
    assert_eq!(
        store.replay_webhook_messages(&users_only.id, None, Some(150_000), 300_000, "whd_r2_").await.unwrap(),
        1
    );
    assert_eq!(
        store.replay_webhook_messages(&users_only.id, Some("msg_none"), None, 300_000, "whd_r3_").await.unwrap(),
        0
    );
    assert_eq!(
        store.replay_webhook_messages(&uid("whe"), Some(&recent.id), None, 300_000, "whd_r4_").await.unwrap(),
        0
    );
    let after = deliveries_of(store, &users_only.id).await;
    assert_eq!(after.len(), 4);
    assert_eq!(after.iter().filter(|d| d.message_id == recent.id).count(), 2, "a replay keeps the message id");

    // Pruning keeps what is still owed.
    store.prune_webhook_messages(150_000).await.unwrap();
    assert!(store.get_webhook_message(&old.id).await.unwrap().is_some(), "the old message is still owed");
    for c in claim_for(store, 400_000, &[&users_only.id]).await {
        store
            .record_webhook_attempt(&AttemptOutcome {
                attempt: AttemptRow {
                    id: uid("wha"),
                    delivery_id: c.delivery.id.clone(),
                    attempted_at: 400_000,
                    status_code: Some(200),
                    succeeded: true,
                    error: None,
                    duration_ms: 1,
                },
                status: DeliveryStatus::Succeeded,
                next_attempt_at: None,
                disable_endpoint: None,
            })
            .await
            .unwrap();
    }
    assert!(store.prune_webhook_messages(150_000).await.unwrap() >= 1);
    assert_eq!(store.get_webhook_message(&old.id).await.unwrap(), None);
    assert!(store.get_webhook_message(&recent.id).await.unwrap().is_some());
    assert_eq!(deliveries_of(store, &users_only.id).await.len(), 3);
    store.delete_webhook_endpoint(&users_only.id).await.unwrap();
}
