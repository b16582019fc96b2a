//! Clients: the browser or device a cookie (or a native app's bearer token) names, created
//! within its address's budget, and the client as the Frontend API shows it.

use latchkey_core::secret::secret_digest;
use latchkey_store::{ClientRow, SessionRow, SignInRow, SignUpRow, UserRecord};

use crate::authority::Client;
use crate::error::{Result, ServiceError};
use crate::{RequestContext, Services};

/// A client as the Frontend API shows it: its live sessions with their users, and the
/// current sign-in and sign-up attempts.
#[derive(Debug, Clone)]
pub struct ClientView {
    pub client: ClientRow,
    pub sessions: Vec<(SessionRow, UserRecord)>,
    pub sign_in: Option<SignInRow>,
    pub sign_up: Option<SignUpRow>,
}

impl Services {
    /// The client a cookie or bearer token names, if it exists.
    pub async fn client_by_token(&self, token: &str) -> Result<Option<Client>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(self.store.client_by_token_digest(&secret_digest(token)).await?.map(Client::new))
    }

    /// A new client for a browser or device seen for the first time, within its address's
    /// hourly budget of new clients (clients are stored).
    pub async fn new_client_for(&self, ctx: &RequestContext) -> Result<(Client, String)> {
        self.budgets.client_budget(ctx).await?;
        let (row, token) = self.users.new_client().await?;
        Ok((Client::new(row), token))
    }

    /// The client as stored now (a sign-in, sign-up or sign-out may have changed it since it
    /// was read); the one given when it is gone.
    pub async fn refreshed_client(&self, client: &Client) -> Result<Client> {
        Ok(self.store.get_client(&client.id).await?.map(Client::new).unwrap_or_else(|| client.clone()))
    }

    /// Whether any session of this client is active.
    pub async fn client_has_active_session(&self, client: &Client) -> Result<bool> {
        Ok(self.store.sessions_for_client(&client.id).await?.iter().any(|s| self.users.session_is_active(s)))
    }

    pub async fn client_view(&self, client: &Client) -> Result<ClientView> {
        let mut sessions = Vec::new();
        for s in self.store.sessions_for_client(&client.id).await? {
            if !self.users.session_is_active(&s) {
                continue;
            }
            if let Some(user) = self.store.get_user(&s.user_id).await? {
                sessions.push((s, user));
            }
        }
        let sign_in = match &client.sign_in_id {
            Some(id) => self.store.get_sign_in(id).await?,
            None => None,
        };
        let sign_up = match &client.sign_up_id {
            Some(id) => self.store.get_sign_up(id).await?,
            None => None,
        };
        Ok(ClientView { client: ClientRow::clone(client), sessions, sign_in, sign_up })
    }

    /// The client as the Frontend API shows it, with a fresh session token for each of its
    /// live sessions (by session id).
    pub async fn client_view_with_tokens(
        &self,
        ctx: &RequestContext,
        client: &Client,
    ) -> Result<(ClientView, Vec<(String, String)>)> {
        let view = self.client_view(client).await?;
        let mut tokens = Vec::with_capacity(view.sessions.len());
        for (session, _) in &view.sessions {
            self.note_device(ctx, session).await;
            tokens.push((session.id.clone(), self.sign_session_token(ctx, session).await?));
        }
        Ok((view, tokens))
    }

    pub(crate) async fn refuse_if_signed_in(&self, client: &Client) -> Result<()> {
        // In single-session mode (as Clerk's environment announces) a client with no last active
        // session has no active session at all: nothing to look up.
        if client.last_active_session_id.is_none() {
            return Ok(());
        }
        let active = self.store.sessions_for_client(&client.id).await?.iter().any(|s| self.users.session_is_active(s));
        if active {
            return Err(ServiceError::bad_request("session_exists", "You're already signed in."));
        }
        Ok(())
    }
}
