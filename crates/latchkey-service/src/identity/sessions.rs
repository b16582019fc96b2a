//! Sessions of a client: whether one is active, its session tokens, touching it (and choosing
//! its active organization), ending it, and signing the client out.

use latchkey_core::session::SessionStatus;
use latchkey_store::{ClientRow, SessionRow};
use latchkey_token::{SessionClaims, SESSION_TOKEN_CAT};

use crate::authority::Client;
use crate::authority::SignedIn;
use crate::error::{Result, ServiceError};
use crate::{RequestContext, Services};

impl Services {
    /// A session of this client that is still active.
    pub async fn active_session_of(&self, client: &Client, session_id: &str) -> Result<SessionRow> {
        match self.store.get_session(session_id).await? {
            Some(s) if s.client_id == client.id && self.users.session_is_active(&s) => Ok(s),
            Some(s) if s.client_id == client.id => {
                Err(ServiceError::unauthenticated("The session is no longer active.")
                    .long("The session has ended, expired or been revoked. Sign in again."))
            }
            _ => Err(ServiceError::not_found("Session")),
        }
    }

    /// The signed-in user behind an active session of this client: the proof that account
    /// and organization actions take (crate::authority).
    pub async fn signed_in(&self, client: &Client, session_id: &str) -> Result<(SignedIn, SessionRow)> {
        let session = self.active_session_of(client, session_id).await?;
        Ok((SignedIn::new(session.user_id.clone(), session.id.clone()), session))
    }

    /// Mints a fresh session token; `last_active_at` is refreshed at most once a minute.
    pub async fn session_token(&self, ctx: &RequestContext, client: &Client, session_id: &str) -> Result<String> {
        let mut session = self.active_session_of(client, session_id).await?;
        let now = self.now();
        if now - session.last_active_at > 60_000 {
            session.last_active_at = now;
            session.updated_at = now;
            self.record_activity(&session).await?;
        }
        self.note_device(ctx, &session).await;
        self.sign_session_token(ctx, &session).await
    }

    /// Writes the session's last activity and active organization, only while it is active: a
    /// revocation that lands meanwhile is never undone (401 then).
    async fn record_activity(&self, session: &SessionRow) -> Result<()> {
        let org = session.active_org_id.as_deref();
        if self.store.record_session_activity(&session.id, org, session.last_active_at).await? {
            Ok(())
        } else {
            Err(ServiceError::unauthenticated("The session is no longer active."))
        }
    }

    pub(crate) async fn sign_session_token(&self, ctx: &RequestContext, session: &SessionRow) -> Result<String> {
        self.sign_session_token_ttl(ctx, session, self.config.token_ttl_secs).await
    }

    pub(crate) async fn sign_session_token_ttl(
        &self,
        ctx: &RequestContext,
        session: &SessionRow,
        ttl_secs: i64,
    ) -> Result<String> {
        self.sign_token_for(ctx, session, session.active_org_id.as_deref(), ttl_secs).await
    }

    /// A session token for `org_id` instead of the session's active organization (the
    /// Frontend API's `organization_id` on `/tokens`); the caller must be a member.
    pub async fn session_token_for_org(
        &self,
        ctx: &RequestContext,
        client: &Client,
        session_id: &str,
        org_id: Option<&str>,
    ) -> Result<String> {
        let session = self.active_session_of(client, session_id).await?;
        let org = self.orgs.member_org_id(&session.user_id, org_id, "organization_id").await?;
        self.sign_token_for(ctx, &session, org.as_deref(), self.config.token_ttl_secs).await
    }

    async fn sign_token_for(
        &self,
        ctx: &RequestContext,
        session: &SessionRow,
        org_id: Option<&str>,
        ttl_secs: i64,
    ) -> Result<String> {
        let (o, fea, v1) = match self.orgs.org_claims(session, org_id).await? {
            Some((claim, fea, v1)) => (Some(claim), (!fea.is_empty()).then_some(fea), v1),
            None => (None, None, Default::default()),
        };
        let now_s = self.clock.now_secs();

        let claims = SessionClaims {
            sub: session.user_id.clone(),
            sid: session.id.clone(),
            iss: self.config.issuer.clone(),
            azp: ctx.origin.clone(),
            exp: now_s + ttl_secs,
            iat: now_s,
            nbf: now_s - 10,
            v: 2,
            fva: self.users.factor_ages(session),
            sts: if session.pending_task.is_some() { "pending" } else { "active" }.into(),
            o,
            fea,
            v1,
        };
        let key = self.keys.signing_key().await?;
        let token = key.sign(&claims, Some(SESSION_TOKEN_CAT)).map_err(|_| ServiceError::internal())?;
        self.telemetry.count("latchkey_tokens_minted_total", &[("kind", "session")]);
        Ok(token)
    }

    /// Touches a session; `active_org` is `Some(None)` to select the personal account.
    pub async fn touch_session(
        &self,
        client: &Client,
        session_id: &str,
        active_org: Option<Option<String>>,
    ) -> Result<SessionRow> {
        let mut session = self.active_session_of(client, session_id).await?;
        if let Some(choice) = active_org {
            // Only an organization the user belongs to can become active (by id or slug).
            session.active_org_id =
                self.orgs.member_org_id(&session.user_id, choice.as_deref(), "active_organization_id").await?;
        }
        let now = self.now();
        session.last_active_at = now;
        session.updated_at = now;
        self.record_activity(&session).await?;
        let mut client = ClientRow::clone(client);
        if client.last_active_session_id.as_deref() != Some(session_id) {
            client.last_active_session_id = Some(session_id.to_owned());
            self.store.update_client(&client).await?;
        }
        Ok(session)
    }

    /// [`Services::touch_session`], then a fresh token of the touched session.
    pub async fn touch_session_token(
        &self,
        ctx: &RequestContext,
        client: &Client,
        session_id: &str,
        active_org: Option<Option<String>>,
    ) -> Result<(SessionRow, String)> {
        let session = self.touch_session(client, session_id, active_org).await?;
        self.note_device(ctx, &session).await;
        let token = self.sign_session_token(ctx, &session).await?;
        Ok((session, token))
    }

    /// Ends one session of this client (`ended` for sign-out, `removed` for remove).
    pub async fn end_session(&self, client: &Client, session_id: &str, status: SessionStatus) -> Result<SessionRow> {
        let mut session = match self.store.get_session(session_id).await? {
            Some(s) if s.client_id == client.id => s,
            _ => return Err(ServiceError::not_found("Session")),
        };
        let now = self.now();
        if session.status == "active" {
            session.status = status.as_str().to_owned();
            session.updated_at = now;
            let event = self.users.session_event(&format!("session.{}", status.as_str()), &session);
            self.emitting(vec![event]).update_session(&session).await?;
        }
        let mut client = ClientRow::clone(client);
        if client.last_active_session_id.as_deref() == Some(session_id) {
            client.last_active_session_id = None;
        }
        client.updated_at = now;
        self.store.update_client(&client).await?;
        Ok(session)
    }

    /// Signs the client out of every session; the client itself (and its cookie) remain.
    pub async fn sign_out_client(&self, client: &Client) -> Result<Client> {
        let now = self.now();
        let events = self
            .store
            .sessions_for_client(&client.id)
            .await?
            .into_iter()
            .filter(|s| s.status == "active")
            .map(|mut s| {
                s.status = SessionStatus::Ended.as_str().to_owned();
                s.updated_at = now;
                self.users.session_event("session.ended", &s)
            })
            .collect();
        self.emitting(events).end_client_sessions(&client.id, SessionStatus::Ended.as_str(), now).await?;
        let mut client = ClientRow::clone(client);
        client.last_active_session_id = None;
        client.sign_in_id = None;
        client.sign_up_id = None;
        client.updated_at = now;
        self.store.update_client(&client).await?;
        Ok(Client::new(client))
    }
}
