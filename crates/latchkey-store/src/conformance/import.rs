//! Users imported in bulk: a batch is judged against the database and itself, lands whole,
//! and an import run again leaves what it wrote before alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, email, uid, user};
use crate::records::*;
use crate::Store;

fn with_email(id: &str, address: &str, verified: bool) -> UserRecord {
    let mut rec = bare(user(id, None));
    rec.emails.push(email(id, address, verified));
    rec.user.primary_email_id = Some(rec.emails[0].id.clone());
    rec
}

pub async fn imports_land_whole_and_report_conflicts(store: &dyn Store) {
    let held = format!("{}@example.com", uid("held"));
    let owner = uid("user");
    store.create_user(&with_email(&owner, &held, true)).await.unwrap();

    let (a, b, c, d, e) = (uid("user"), uid("user"), uid("user"), uid("user"), uid("user"));
    let shared = format!("{}@example.com", uid("shared"));
    let name = uid("name").to_lowercase();
    let mut with_name = bare(user(&d, Some(&name)));
    with_name.phones.push(PhoneRow {
        id: uid("idn"),
        user_id: d.clone(),
        phone: format!("+1555{:07}", super::COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10_000_000),
        verified: true,
        created_at: 1,
        updated_at: 1,
        reserved_for_second_factor: false,
    });
    let batch = vec![
        with_email(&a, &shared, true),
        // The same verified address later in the batch: refused, naming the first.
        with_email(&b, &shared, true),
        // An address a user of the database holds: refused, naming them.
        with_email(&c, &held, true),
        with_name,
        // The same id twice in one batch: the second is the one already present.
        with_email(&a, &format!("{}@example.com", uid("other")), true),
        // An unverified copy of a held address takes nothing from its holder.
        with_email(&e, &held, false),
    ];

    // Judging without writing changes nothing.
    let mut claims = ImportClaims::default();
    let judged = store.import_users(&batch, Some(&mut claims)).await.unwrap();
    // A later batch of the same dry run is judged against what this one would have taken.
    let later = store.import_users(&[with_email(&uid("user"), &shared, true)], Some(&mut claims)).await.unwrap();
    assert_eq!(later, [ImportOutcome::Conflict(format!("the email address {shared} belongs to {a}"))]);
    assert!(store.get_user(&a).await.unwrap().is_none(), "a dry run writes nothing");
    let outcomes = store.import_users(&batch, None).await.unwrap();
    assert_eq!(judged, outcomes, "a dry run judges as the import does");
    assert_eq!(outcomes[0], ImportOutcome::Imported);
    assert_eq!(outcomes[1], ImportOutcome::Conflict(format!("the email address {shared} belongs to {a}")));
    assert_eq!(outcomes[2], ImportOutcome::Conflict(format!("the email address {held} belongs to {owner}")));
    assert_eq!(outcomes[3], ImportOutcome::Imported);
    assert_eq!(outcomes[4], ImportOutcome::AlreadyPresent);
    assert_eq!(outcomes[5], ImportOutcome::Imported);

    // What was imported reads back whole; the refused wrote nothing.
    assert_eq!(store.get_user(&a).await.unwrap().unwrap(), batch[0]);
    assert_eq!(store.get_user(&d).await.unwrap().unwrap(), batch[3]);
    assert_eq!(store.get_user(&e).await.unwrap().unwrap(), batch[5]);
    assert!(store.get_user(&b).await.unwrap().is_none());
    assert!(store.get_user(&c).await.unwrap().is_none());
    assert_eq!(store.user_id_by_verified_email(&held).await.unwrap(), Some(owner.clone()));

    // Run again: everything written before is present, the refused are refused again.
    let again = store.import_users(&batch, None).await.unwrap();
    assert_eq!(again[0], ImportOutcome::AlreadyPresent);
    assert_eq!(again[1], ImportOutcome::Conflict(format!("the email address {shared} belongs to {a}")));
    assert_eq!(again[3], ImportOutcome::AlreadyPresent);
    assert_eq!(again[5], ImportOutcome::AlreadyPresent);
    assert_eq!(store.get_user(&a).await.unwrap().unwrap(), batch[0], "a second run changes nothing");

    // A batch larger than one statement's parameters holds lands whole.
    let many: Vec<UserRecord> =
        (0..1500).map(|_| uid("user")).map(|id| with_email(&id, &format!("{id}@example.com"), true)).collect();
    let outcomes = store.import_users(&many, None).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ImportOutcome::Imported), "{:?}", &outcomes[..3]);
    for rec in [&many[0], &many[777], &many[1499]] {
        assert_eq!(store.get_user(&rec.user.id).await.unwrap().as_ref(), Some(rec));
    }
}
