//! Users and their sessions as every service that changes them sees them: reading a user,
//! the events of a change (rendered before the write that makes them true), new email
//! addresses, sessions and clients, revoking a user's sessions, and refusing blocked users.
//! A value of its own over [`PeopleStore`], shared by identity ([`crate::Services`]), the
//! account service and the administration service.

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::ids::IdKind;
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_core::session::SessionStatus;
use latchkey_core::Random;
use latchkey_store::{
    ClientRow, CodeFields, EmailRow, OutboxEvent, PeopleStore, SecondFactors, SessionRow, UserRecord, UserRow,
};
use serde_json::{json, Value};

use latchkey_core::reverification::{factor_ages, Requirement};

use crate::authority::{Reverified, SignedIn};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::webhooks::Events;
use crate::ServiceConfig;
use latchkey_core::second_factor::Policy;

pub struct Users {
    store: Arc<dyn PeopleStore>,
    events: Events,
    rng: Arc<dyn Random>,
    pub(crate) config: ServiceConfig,
}

impl Users {
    pub(crate) fn new(
        store: Arc<dyn PeopleStore>,
        events: Events,
        rng: Arc<dyn Random>,
        config: ServiceConfig,
    ) -> Self {
        Self { store, events, rng, config }
    }

    pub fn now(&self) -> Millis {
        self.events.now()
    }

    fn new_id(&self, kind: IdKind) -> String {
        self.events.new_id(kind)
    }

    fn event(&self, event_type: &str, data: Value) -> OutboxEvent {
        self.events.event(event_type, data)
    }

    /// The store, writing `events` in the transaction of the next write.
    pub(crate) fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn PeopleStore> {
        self.store.emitting_people(events)
    }

    pub async fn user(&self, user_id: &str) -> Result<UserRecord> {
        self.store.get_user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))
    }

    /// The user, or `None` when there is no such user (any more).
    pub async fn find_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
        Ok(self.store.get_user(user_id).await?)
    }

    /// A new address of the user's, verified now or not yet, with no code pending.
    pub(crate) fn new_email_row(&self, user_id: &str, email: String, verified: bool) -> EmailRow {
        let now = self.now();
        EmailRow {
            id: self.new_id(IdKind::Identification),
            user_id: user_id.to_owned(),
            email,
            verified,
            verified_at: verified.then_some(now),
            code: CodeFields::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    pub(crate) fn email_of<'a>(record: &'a UserRecord, email_id: &str) -> Result<&'a EmailRow> {
        record.emails.iter().find(|e| e.id == email_id).ok_or_else(|| ServiceError::not_found("Email address"))
    }

    /// Deletes one of the user's addresses (not the primary one), whoever asked.
    pub(crate) async fn remove_email(&self, user_id: &str, email_id: &str) -> Result<()> {
        let record = self.user(user_id).await?;
        Self::email_of(&record, email_id)?;
        if record.user.primary_email_id.as_deref() == Some(email_id) {
            return Err(ServiceError::bad_request(
                "primary_identification_deletion_forbidden",
                "The primary email address cannot be deleted.",
            )
            .long("Make another verified address primary first."));
        }
        let mut after = record.clone();
        after.emails.retain(|e| e.id != email_id);
        self.emitting(vec![self.user_event("user.updated", &after)]).delete_email(email_id).await?;
        Ok(())
    }

    /// The avatar URL the resources show.
    pub fn avatar(&self) -> String {
        crate::resources::avatar_url(&self.config.issuer)
    }

    /// The user as webhooks show it.
    pub fn user_event(&self, event_type: &str, record: &latchkey_store::UserRecord) -> OutboxEvent {
        self.event(event_type, crate::resources::backend_user(&self.avatar(), record, self.now()))
    }

    pub fn session_event(&self, event_type: &str, session: &latchkey_store::SessionRow) -> OutboxEvent {
        self.event(event_type, {
            // Events carry no place: the GeoIP lookup belongs to whoever shows them.
            let activity = crate::session_activity(session, crate::Place::default());
            crate::resources::backend_session(session, self.session_status(session), activity)
        })
    }

    pub fn deleted_event(&self, event_type: &str, object: &str, id: &str) -> OutboxEvent {
        self.event(event_type, json!({"object": object, "id": id, "deleted": true}))
    }

    /// `user.updated` with the user as `change` leaves the stored record.
    pub(crate) async fn user_changed(
        &self,
        user_id: &str,
        change: impl FnOnce(&mut latchkey_store::UserRecord),
    ) -> Result<OutboxEvent> {
        let mut record = self.user(user_id).await?;
        change(&mut record);
        Ok(self.user_event("user.updated", &record))
    }

    /// `session.revoked` for each active session of the user but `keep`, as revoking them
    /// all at `now` leaves them.
    pub(crate) async fn revocation_events(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: i64,
    ) -> Result<Vec<OutboxEvent>> {
        let sessions = self.store.sessions_for_user(user_id).await?;
        Ok(sessions
            .into_iter()
            .filter(|s| s.status == "active" && Some(s.id.as_str()) != keep)
            .map(|mut s| {
                s.status = "revoked".into();
                s.updated_at = now;
                self.session_event("session.revoked", &s)
            })
            .collect())
    }

    /// Revokes every active session of the user but `keep`, with their events.
    pub(crate) async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64> {
        let events = self.revocation_events(user_id, keep, now).await?;
        Ok(self.emitting(events).revoke_user_sessions(user_id, keep, now).await?)
    }

    /// The session's `fva`: minutes since its holder proved each factor (-1: never).
    pub fn factor_ages(&self, s: &SessionRow) -> [i64; 2] {
        factor_ages(self.now(), s.created_at, s.first_factor_verified_at, s.second_factor_verified_at)
    }

    /// The proof that `who`'s session proved its factors recently enough for `required`;
    /// Clerk's reverification error otherwise (403 `session_reverification_required`, with
    /// the level and minutes, so Clerk's `useReverification` and `latchkey-js` can prompt).
    /// Never for a session still waiting for its task (403 `session_pending`): a password
    /// alone, while a second factor is required, changes nothing of the account.
    pub async fn reverified(&self, who: &SignedIn, required: Requirement) -> Result<Reverified> {
        let session = self.session(who.session_id()).await?;
        if session.pending_task.is_some() {
            return Err(crate::error::ServiceError::new(
                crate::error::ErrorKind::Forbidden,
                "session_pending",
                "Finish setting up two-step verification first.",
            ));
        }
        if self.session_is_active(&session) && required.is_met(self.factor_ages(&session)) {
            return Ok(Reverified::new(who.clone()));
        }
        Err(reverification_error(required))
    }

    pub fn session_is_active(&self, s: &SessionRow) -> bool {
        let status = SessionStatus::parse(&s.status).unwrap_or(SessionStatus::Ended);
        self.config.session.effective_status(status, s.expire_at, s.last_active_at, self.now()) == SessionStatus::Active
    }

    /// The status a session shows now (an active session past its deadline shows `expired`;
    /// one with a task to finish shows `pending`).
    pub fn session_status(&self, s: &SessionRow) -> &'static str {
        let status = SessionStatus::parse(&s.status).unwrap_or(SessionStatus::Ended);
        match self.config.session.effective_status(status, s.expire_at, s.last_active_at, self.now()) {
            SessionStatus::Active if s.pending_task.is_some() => "pending",
            other => other.as_str(),
        }
    }

    /// The task a new session of a user with `factors` starts with: `setup-mfa` when the
    /// instance requires a second factor the user does not have (docs/second-factors.md).
    pub(crate) fn setup_task(&self, factors: &SecondFactors) -> Option<String> {
        (self.config.second_factors == Policy::Required && !factors.any()).then(|| "setup-mfa".to_owned())
    }

    pub(crate) fn new_session(&self, client_id: &str, user_id: &str) -> SessionRow {
        let now = self.now();
        SessionRow {
            id: self.new_id(IdKind::Session),
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            status: SessionStatus::Active.as_str().to_owned(),
            active_org_id: None,
            created_at: now,
            updated_at: now,
            last_active_at: now,
            expire_at: self.config.session.expire_at(now),
            abandon_at: self.config.session.abandon_at(now),
            first_factor_verified_at: None,
            second_factor_verified_at: None,
            reverification: None,
            pending_task: None,
            user_agent: None,
            ip_address: None,
        }
    }

    /// A new client and the opaque token that identifies it (shown once, stored hashed).
    pub(crate) async fn new_client(&self) -> Result<(ClientRow, String)> {
        let token = new_opaque_secret(self.rng.as_ref());
        let now = self.now();
        let client = ClientRow {
            id: self.new_id(IdKind::Client),
            token_digest: secret_digest(&token),
            sign_in_id: None,
            sign_up_id: None,
            last_active_session_id: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_client(&client).await?;
        Ok((client, token))
    }

    pub async fn session(&self, id: &str) -> Result<SessionRow> {
        self.store.get_session(id).await?.ok_or_else(|| ServiceError::not_found("Session"))
    }

    /// Refuses banned and administratively locked users.
    pub(crate) fn refuse_blocked(&self, user: &UserRow) -> Result<()> {
        if user.banned {
            return Err(ServiceError::new(ErrorKind::Forbidden, "user_banned", "This account is banned.")
                .long("This account has been banned. Contact the application's support."));
        }
        if user.locked {
            return Err(ServiceError::new(ErrorKind::Forbidden, "user_locked", "Your account is locked.")
                .long("This account has been locked by an administrator.")
                .meta("lockout_expires_in_seconds", Value::Null));
        }
        Ok(())
    }
}

/// Clerk's answer to an action that needs a fresher check (docs/second-factors.md).
pub fn reverification_error(required: Requirement) -> ServiceError {
    ServiceError::new(
        ErrorKind::Forbidden,
        "session_reverification_required",
        "You need to provide additional verification to perform this operation",
    )
    .long("This action needs a recent check of your identity. Verify again and retry.")
    .meta("session_verification", json!({"level": required.level.as_str(), "after_minutes": required.after_minutes}))
}
