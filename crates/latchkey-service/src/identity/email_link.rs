//! Email links (docs/email-links.md): a sign-in's first factor or a sign-up's address proved
//! by a single-use link, mailed to the address, that opens `/v1/verify?token=…`.
//!
//! The link is kept like a code: `<attempt id>.<secret>`, the secret's keyed digest in the
//! attempt's code columns, ten minutes, used once. Opening it in the browser that asked
//! completes the attempt there and then. Opened anywhere else it only marks the attempt
//! verified, and the asking browser completes it on its next poll. So the session is made
//! for the client that owns it, and that client's token is renewed in an answer it reads.

use latchkey_core::code::{CodeOutcome, PendingCode};
use latchkey_core::secret::new_opaque_secret;
use latchkey_store::{SignInRow, SignUpRow};
use serde::{Deserialize, Serialize};

use crate::authority::Client;
use crate::error::{Result, ServiceError};
use crate::{Action, RequestContext, Services};

use super::sign_in::SignInWrites;
use super::{code_fields, pending, Step};

pub const EMAIL_LINK: &str = "email_link";
/// Where a mailed link points, on the Frontend API.
pub const VERIFY_PATH: &str = "/v1/verify";

/// `[email_links]`: which flows offer links, and whether a link works only in the browser
/// that asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailLinkConfig {
    /// Sign-ins may ask for a link (`email_link` among an address's first factors).
    pub sign_in: bool,
    /// Sign-ups prove their address with a link instead of a code (Clerk's
    /// `attributes.email_address.verifications`; its `<SignUp/>` then shows the link card).
    pub sign_up: bool,
    /// A link opened in another browser is refused (`client_mismatch`) instead of completing
    /// the attempt in the browser that asked (Clerk's `require_same_client`).
    pub require_same_client: bool,
}

impl Default for EmailLinkConfig {
    fn default() -> Self {
        Self { sign_in: true, sign_up: false, require_same_client: false }
    }
}

/// What asking for a link names: the page it leads to (`redirect_url`, already checked against
/// the trusted origins) and the Frontend API URL it points at (`None`: this instance's).
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub redirect_url: String,
    pub base: Option<String>,
}

/// What opening a link did: Clerk's `__clerk_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    Verified,
    Expired,
    /// Unknown, used already, or its attempt is over.
    Failed,
    /// Opened in another browser where the instance requires the same one.
    ClientMismatch,
    /// Opened in another browser by a GET: right, but nothing is done until the person confirms
    /// (a POST from latchkey's page). Mail scanners and link previews fetch links; they must
    /// not sign anyone in.
    NeedsConfirmation,
}

impl LinkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Verified => "verified",
            LinkStatus::Expired => "expired",
            LinkStatus::Failed => "failed",
            LinkStatus::ClientMismatch => "client_mismatch",
            LinkStatus::NeedsConfirmation => "needs_confirmation",
        }
    }
}

/// What opening a link did, and where the browser goes next.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkOutcome {
    pub status: LinkStatus,
    /// The page the attempt named (`redirect_url`); `None` for a link of no known attempt.
    pub redirect_url: Option<String>,
    /// The session made in the opening browser (its own attempt).
    pub created_session_id: Option<String>,
    /// The opening browser's new client token, when its own attempt completed.
    pub new_client_token: Option<String>,
    /// The link was a sign-up's (for the page's words).
    pub sign_up: bool,
}

impl LinkOutcome {
    fn of(status: LinkStatus, redirect_url: Option<String>, sign_up: bool) -> Self {
        Self { status, redirect_url, created_session_id: None, new_client_token: None, sign_up }
    }

    fn failed() -> Self {
        Self::of(LinkStatus::Failed, None, false)
    }

    /// The opening browser's own attempt completed: its session and new client token.
    fn completed(redirect_url: Option<String>, session: Option<String>, token: Option<String>, sign_up: bool) -> Self {
        Self {
            status: LinkStatus::Verified,
            redirect_url,
            created_session_id: session,
            new_client_token: token,
            sign_up,
        }
    }
}

fn purpose(attempt_id: &str) -> String {
    format!("link:{attempt_id}")
}

fn strategy_invalid() -> ServiceError {
    ServiceError::unprocessable("strategy_for_user_invalid", "That strategy is not available for this attempt.")
        .param("strategy")
}

fn status_of(outcome: CodeOutcome) -> LinkStatus {
    match outcome {
        CodeOutcome::Verified => LinkStatus::Verified,
        CodeOutcome::Expired => LinkStatus::Expired,
        _ => LinkStatus::Failed,
    }
}

/// A sign-in whose link was opened in another browser, waiting for its own browser.
pub fn sign_in_link_verified(row: &SignInRow) -> bool {
    row.first_factor_strategy.as_deref() == Some(EMAIL_LINK)
        && row.first_factor_status.as_deref() == Some("verified")
        && row.status == "needs_first_factor"
}

/// A sign-up whose link was opened in another browser and that has all it needs.
fn sign_up_link_verified(row: &SignUpRow) -> bool {
    row.link_redirect_url.is_some()
        && row.email_verified
        && row.status != "complete"
        && !row.email_taken
        && (row.password_hash.is_some() || row.external_profile.is_some())
}

impl Services {
    /// A new link for `attempt_id` on the Frontend API at `base` (this instance, or the app's
    /// proxy the request came through, so the browser that asked carries its client cookie
    /// there), with its digest: the secret half is mailed, never stored.
    fn new_link(&self, base: Option<&str>, attempt_id: &str) -> (String, PendingCode) {
        let secret = new_opaque_secret(self.rng.as_ref());
        let pending = PendingCode::issue(&self.code_key, &purpose(attempt_id), &secret, self.now());
        let base = base.unwrap_or(&self.config.issuer).trim_end_matches('/');
        let url = format!("{base}{VERIFY_PATH}?token={attempt_id}.{secret}");
        (url, pending)
    }

    /// Judges a link's secret (spending a try); `None` for a right one that another browser
    /// has yet to confirm, judged on a copy so that nothing is spent or stored.
    fn judge_link(
        &self,
        code: &mut PendingCode,
        attempt_id: &str,
        secret: &str,
        awaiting_confirmation: bool,
    ) -> Option<CodeOutcome> {
        let purpose = purpose(attempt_id);
        if awaiting_confirmation
            && code.clone().attempt_link(&self.code_key, &purpose, secret, self.now()) == CodeOutcome::Verified
        {
            return None;
        }
        Some(code.attempt_link(&self.code_key, &purpose, secret, self.now()))
    }

    /// `prepare_first_factor` with `strategy=email_link`: mails a link to the sign-in's
    /// address. An address with no account gets the same answer and no mail.
    pub async fn prepare_sign_in_link(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        email_address_id: Option<&str>,
        link: LinkRequest,
    ) -> Result<SignInRow> {
        self.limit_ip(Action::Verify, ctx).await?;
        if !self.config.email_links.sign_in {
            return Err(strategy_invalid());
        }
        let mut row = self.sign_in_of(client, id).await?;
        if row.status != "needs_first_factor" {
            return Err(ServiceError::bad_request(
                "sign_in_already_complete",
                "This sign-in is past its first factor.",
            ));
        }
        let address = match (&row.identifier, &row.email_address_id) {
            (Some(address), Some(own)) if email_address_id.is_none_or(|given| given == own) => address.clone(),
            _ => return Err(strategy_invalid()),
        };
        self.budgets.mail_budget(ctx, None, 1).await?;
        self.budgets.code_issued(&address).await?;
        let (url, pending) = self.new_link(link.base.as_deref(), &row.id);
        row.code = code_fields(&pending);
        row.first_factor_strategy = Some(EMAIL_LINK.to_owned());
        row.first_factor_status = Some("unverified".into());
        row.link_redirect_url = Some(link.redirect_url.clone());
        row.link_verified_client = None;
        row.updated_at = self.now();
        row.version += 1;
        self.store.update_sign_in(&row).await?;
        if row.user_id.is_some() {
            let app = &self.config.app_name;
            self.send_mail(
                &address,
                &format!("Your {app} sign-in link"),
                format!("Open this link to sign in to {app}:\n\n{url}\n\nIt works once and expires in 10 minutes. If you did not try to sign in, ignore this message.\n"),
            );
        }
        Ok(row)
    }

    /// `prepare_verification` of a sign-up with `strategy=email_link`.
    pub async fn prepare_sign_up_link(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        link: LinkRequest,
    ) -> Result<SignUpRow> {
        self.limit_ip(Action::Verify, ctx).await?;
        if !self.config.email_links.sign_up {
            return Err(strategy_invalid());
        }
        let (mut row, email) = self.sign_up_address_to_prove(ctx, client, id).await?;
        let (url, pending) = self.new_link(link.base.as_deref(), &row.id);
        row.code = code_fields(&pending);
        row.link_redirect_url = Some(link.redirect_url.clone());
        row.link_verified_client = None;
        row.updated_at = self.now();
        row.version += 1;
        self.store.update_sign_up(&row).await?;
        let app = &self.config.app_name;
        // As with codes, the owner of a taken address hears that an account exists already.
        let text = if row.email_taken {
            format!("Someone (hopefully you) tried to create a {app} account with this address, but an account already exists for it. If this was you, sign in instead, or reset your password.\n\nTo confirm this address anyway, open this link (it works once and expires in 10 minutes):\n\n{url}\n")
        } else {
            format!("Open this link to confirm your address and finish signing up for {app}:\n\n{url}\n\nIt works once and expires in 10 minutes. If you did not sign up, ignore this message.\n")
        };
        self.send_mail(&email, &format!("Finish signing up for {app}"), text);
        Ok(row)
    }

    /// `/v1/verify?token=…`, opened by a browser whose client is `visitor` (if it has one);
    /// `confirmed` when the person confirmed on latchkey's page (a POST). The browser that asked
    /// completes at once; any other one only once confirmed. Every refusal is an outcome for a
    /// page, never an error: the person who clicked a link in a mail needs words.
    pub async fn open_email_link(
        &self,
        ctx: &RequestContext,
        visitor: Option<&Client>,
        token: &str,
        confirmed: bool,
    ) -> LinkOutcome {
        if self.limit_ip(Action::Verify, ctx).await.is_err() {
            return LinkOutcome::failed();
        }
        let Some((id, secret)) = token.split_once('.').filter(|(id, s)| id.len() <= 64 && s.len() <= 128) else {
            return LinkOutcome::failed();
        };
        let outcome = if id.starts_with("sia_") {
            self.open_sign_in_link(visitor, id, secret, confirmed).await
        } else if id.starts_with("sua_") {
            self.open_sign_up_link(visitor, id, secret, confirmed).await
        } else {
            Ok(LinkOutcome::failed())
        };
        match outcome {
            Ok(outcome) => outcome,
            // A race lost to another opening of the same link, or a store failure: the link is
            // spent (or unusable now) and the browser still goes back to the app's page.
            Err(e) => {
                tracing::warn!(code = e.code, "email link not completed");
                let back = self.link_redirect_of(id).await;
                LinkOutcome::of(LinkStatus::Failed, back, id.starts_with("sua_"))
            }
        }
    }

    /// The page an attempt's link leads to, if it can be read.
    async fn link_redirect_of(&self, id: &str) -> Option<String> {
        if id.starts_with("sua_") {
            self.store.get_sign_up(id).await.ok().flatten().and_then(|r| r.link_redirect_url)
        } else {
            self.store.get_sign_in(id).await.ok().flatten().and_then(|r| r.link_redirect_url)
        }
    }

    async fn open_sign_in_link(
        &self,
        visitor: Option<&Client>,
        id: &str,
        secret: &str,
        confirmed: bool,
    ) -> Result<LinkOutcome> {
        let Some(mut row) = self.store.get_sign_in(id).await? else { return Ok(LinkOutcome::failed()) };
        let back = row.link_redirect_url.clone();
        let answer = |status| Ok(LinkOutcome::of(status, back.clone(), false));
        let waiting = row.first_factor_strategy.as_deref() == Some(EMAIL_LINK)
            && row.status == "needs_first_factor"
            && row.first_factor_status.as_deref() == Some("unverified");
        let (Some(mut code), Some(user_id), true) = (pending(&row.code), row.user_id.clone(), waiting) else {
            return answer(LinkStatus::Failed);
        };
        let own = visitor.filter(|c| c.id == row.client_id);
        if own.is_none() && self.config.email_links.require_same_client {
            return answer(LinkStatus::ClientMismatch);
        }
        let Some(outcome) = self.judge_link(&mut code, &row.id, secret, own.is_none() && !confirmed) else {
            return answer(LinkStatus::NeedsConfirmation);
        };
        row.code = code_fields(&code);
        row.updated_at = self.now();
        row.version += 1;
        if outcome != CodeOutcome::Verified {
            if matches!(outcome, CodeOutcome::Incorrect { .. } | CodeOutcome::TooManyAttempts) {
                self.store.update_sign_in(&row).await?;
            }
            return answer(status_of(outcome));
        }
        row.first_factor_status = Some("verified".into());
        row.link_verified_client = visitor.map(|c| c.id.clone());
        let Some(client) = own else {
            // Another browser: the one that asked completes it when it next looks.
            self.store.update_sign_in(&row).await?;
            return answer(LinkStatus::Verified);
        };
        let step = self.finish_sign_in(client, row, &user_id, SignInWrites::default()).await?;
        Ok(LinkOutcome::completed(back, step.row.created_session_id, step.new_client_token, false))
    }

    async fn open_sign_up_link(
        &self,
        visitor: Option<&Client>,
        id: &str,
        secret: &str,
        confirmed: bool,
    ) -> Result<LinkOutcome> {
        let Some(mut row) = self.store.get_sign_up(id).await? else { return Ok(LinkOutcome::failed()) };
        let back = row.link_redirect_url.clone();
        let answer = |status| Ok(LinkOutcome::of(status, back.clone(), true));
        let waiting = back.is_some() && row.status != "complete" && !row.email_verified;
        let (Some(mut code), true) = (pending(&row.code), waiting) else { return answer(LinkStatus::Failed) };
        let own = visitor.filter(|c| c.id == row.client_id);
        if own.is_none() && self.config.email_links.require_same_client {
            return answer(LinkStatus::ClientMismatch);
        }
        let Some(outcome) = self.judge_link(&mut code, &row.id, secret, own.is_none() && !confirmed) else {
            return answer(LinkStatus::NeedsConfirmation);
        };
        row.code = code_fields(&code);
        row.updated_at = self.now();
        if outcome != CodeOutcome::Verified {
            if matches!(outcome, CodeOutcome::Incorrect { .. } | CodeOutcome::TooManyAttempts) {
                row.version += 1;
                self.store.update_sign_up(&row).await?;
            }
            return answer(status_of(outcome));
        }
        row.email_verified = true;
        row.link_verified_client = visitor.map(|c| c.id.clone());
        match own {
            Some(client) if sign_up_link_verified(&row) => {
                let step = self.finish_sign_up(client, row).await?;
                Ok(LinkOutcome::completed(back, step.row.created_session_id, step.new_client_token, true))
            }
            _ => {
                row.version += 1;
                self.store.update_sign_up(&row).await?;
                answer(LinkStatus::Verified)
            }
        }
    }

    /// `GET /v1/client/sign_ins/{id}`: the attempt as it stands, completed first if its link
    /// was opened in another browser meanwhile (so the asking browser gets the session, and
    /// its new token, in the answer it polls for).
    pub async fn poll_sign_in(&self, client: &Client, id: &str) -> Result<Step<SignInRow>> {
        let mut row = self.sign_in_of(client, id).await?;
        let Some(user_id) = row.user_id.clone().filter(|_| sign_in_link_verified(&row)) else {
            return Ok(Step::pending(row));
        };
        row.updated_at = self.now();
        row.version += 1;
        match self.finish_sign_in(client, row, &user_id, SignInWrites::default()).await {
            // Two polls at once: the other one completed it.
            Err(e) if e.code == ServiceError::stale().code => Ok(Step::pending(self.sign_in_of(client, id).await?)),
            other => other,
        }
    }

    /// `GET /v1/client/sign_ups/{id}`: the same for a sign-up whose link was opened elsewhere.
    pub async fn poll_sign_up(&self, client: &Client, id: &str) -> Result<Step<SignUpRow>> {
        let row = self.sign_up_of(client, id).await?;
        if !sign_up_link_verified(&row) {
            return Ok(Step::pending(row));
        }
        match self.finish_sign_up(client, row).await {
            Err(e) if e.code == ServiceError::stale().code => Ok(Step::pending(self.sign_up_of(client, id).await?)),
            other => other,
        }
    }
}
