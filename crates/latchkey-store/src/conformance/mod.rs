//! One behavioural suite that every backend must pass: scenarios by area, each a public
//! `async fn(&dyn Store)`. [`run_all`] runs them all against one store, and
//! [`conformance_scenarios!`](crate::conformance_scenarios) lists them so that a test crate
//! can make each its own test per backend. Each scenario uses its own ids, so the suite can
//! run against a database that already holds data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};

use crate::records::*;
use crate::Store;

pub mod external;
pub mod import;
pub mod instance;
pub mod invitations;
pub mod orgs;
pub mod passkeys;
pub mod revocations;
pub mod roles;
pub mod second_factors;
pub mod sessions;
pub mod sync;
pub mod users;
pub mod webhooks;

/// Calls `$callback! { area::scenario, … }` with every scenario of the suite, in the order
/// [`run_all`](crate::conformance::run_all) runs them (paths relative to
/// `latchkey_store::conformance`).
#[macro_export]
macro_rules! conformance_scenarios {
    ($callback:ident) => {
        $callback! {
            instance::answers_pings,
            instance::settings,
            users::users_and_uniqueness,
            users::optimistic_updates,
            sessions::sessions_and_clients,
            sessions::sign_up_completion_is_atomic,
            instance::keys,
            sessions::failures_are_counted,
            users::user_queries,
            import::imports_land_whole_and_report_conflicts,
            sessions::session_queries,
            invitations::invitations,
            invitations::sign_in_tokens,
            instance::handshake_nonces,
            instance::jwt_templates,
            users::phones_and_emails,
            orgs::organizations,
            orgs::the_last_admin_keeps_their_account,
            roles::role_changes_land_whole_or_not_at_all,
            users::a_ban_and_its_revocation_land_together,
            instance::attempt_counters,
            instance::rate_cells,
            sessions::abandoned_attempts_and_idle_clients_are_pruned,
            external::provider_accounts_join_their_user,
            second_factors::totp_steps_and_backup_codes_work_once,
            second_factors::session_verification_never_revives_a_session,
            passkeys::passkeys_register_once_and_counters_only_rise,
            sync::pushes_apply_in_order_and_replays_change_nothing,
            sync::an_op_id_twice_in_one_push_is_applied_once,
            sync::merge_results_and_tombstones,
            sync::deleting_the_owner_deletes_the_space,
            sync::old_tombstones_are_compacted,
            sync::space_bytes_are_kept_and_full_spaces_take_no_new_tombstones,
            webhooks::endpoints_round_trip,
            webhooks::events_land_with_their_change_only,
            webhooks::claims_attempts_and_disabling,
            webhooks::replays_and_pruning,
            revocations::revocations_land_with_their_change_and_expire,
        }
    };
}

macro_rules! define_run_all {
    ($($area:ident::$scenario:ident),* $(,)?) => {
        /// Every scenario, in order, against one store.
        pub async fn run_all(store: &dyn Store) {
            $($area::$scenario(store).await;)*
        }
    };
}

conformance_scenarios!(define_run_all);

static COUNTER: AtomicU64 = AtomicU64::new(1);

pub fn uid(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{nanos:x}{n}")
}

/// A bare account of `user_id` at `provider` (a strategy), as a provider sign-in writes it.
pub fn provider_account(user_id: &str, provider: &str, provider_user_id: &str) -> ExternalAccountRow {
    ExternalAccountRow {
        id: uid("eac"),
        user_id: user_id.into(),
        provider: provider.into(),
        provider_user_id: provider_user_id.into(),
        email_address: None,
        email_verified: false,
        first_name: None,
        last_name: None,
        image_url: None,
        username: None,
        approved_scopes: "openid email".into(),
        access_token_sealed: None,
        refresh_token_sealed: None,
        token_expires_at: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

pub fn user(id: &str, username: Option<&str>) -> UserRow {
    UserRow {
        id: id.into(),
        username: username.map(Into::into),
        first_name: Some("Ada".into()),
        last_name: None,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$x$y".into()),
        primary_email_id: None,
        primary_phone_id: None,
        password_updated_at: Some(1),
        ..UserRow::new(id.into(), 1_000)
    }
}

/// A user with no identifications or factors.
pub fn bare(user: UserRow) -> UserRecord {
    UserRecord {
        user,
        emails: vec![],
        phones: vec![],
        external_accounts: vec![],
        second_factors: Default::default(),
        passkeys: vec![],
    }
}

pub fn email(user_id: &str, address: &str, verified: bool) -> EmailRow {
    EmailRow {
        id: uid("idn"),
        user_id: user_id.into(),
        email: address.into(),
        verified,
        verified_at: verified.then_some(1_000),
        code: CodeFields::default(),
        created_at: 1_000,
        updated_at: 1_000,
        version: 1,
    }
}

fn client(id: &str) -> ClientRow {
    ClientRow {
        id: id.into(),
        token_digest: uid("digest"),
        sign_in_id: None,
        sign_up_id: None,
        last_active_session_id: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn session(id: &str, client_id: &str, user_id: &str) -> SessionRow {
    SessionRow {
        id: id.into(),
        client_id: client_id.into(),
        user_id: user_id.into(),
        status: "active".into(),
        active_org_id: None,
        created_at: 1_000,
        updated_at: 1_000,
        last_active_at: 1_000,
        expire_at: 10_000,
        abandon_at: 20_000,
        first_factor_verified_at: None,
        second_factor_verified_at: None,
        reverification: None,
        pending_task: None,
        user_agent: None,
        ip_address: None,
    }
}

fn sign_in(id: &str, client_id: &str) -> SignInRow {
    SignInRow {
        id: id.into(),
        client_id: client_id.into(),
        status: "needs_first_factor".into(),
        identifier: Some("someone@example.com".into()),
        user_id: None,
        email_address_id: None,
        first_factor_strategy: None,
        first_factor_status: None,
        first_factor_error: None,
        external_profile: None,
        code: CodeFields::default(),
        created_session_id: None,
        created_at: 1_000,
        updated_at: 1_000,
        abandon_at: 2_000,
        version: 1,
        second_factors_supported: None,
        second_factor_strategy: None,
        second_factor_status: None,
        second_factor_attempts: 0,
        link_redirect_url: None,
        link_verified_client: None,
        passkey_state: None,
    }
}

fn sign_up(id: &str, client_id: &str, address: &str) -> SignUpRow {
    SignUpRow {
        id: id.into(),
        client_id: client_id.into(),
        status: "missing_requirements".into(),
        email: Some(address.into()),
        email_taken: false,
        email_verified: false,
        username: None,
        first_name: None,
        last_name: None,
        password_hash: Some("hash".into()),
        unsafe_metadata: "{}".into(),
        external_profile: None,
        code: CodeFields { digest: Some("d".into()), expires_at: Some(5_000), attempts: 0, consumed: false },
        created_user_id: None,
        created_session_id: None,
        created_at: 1_000,
        updated_at: 1_000,
        abandon_at: 90_000,
        version: 1,
        link_redirect_url: None,
        link_verified_client: None,
    }
}
