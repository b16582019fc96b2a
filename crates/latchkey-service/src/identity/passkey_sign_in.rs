//! Sign-in with a passkey (docs/passkeys.md): Clerk's `passkey` strategy. A sign-in made with
//! `strategy=passkey` and no identifier, or any sign-in prepared with it, holds a discoverable
//! challenge; the browser's answer names its user, and the challenge is spent before the
//! answer is checked, so each works once.

use latchkey_store::{SignInRow, StoreError};
use serde::{Deserialize, Serialize};

use crate::authority::Client;
use crate::error::{Result, ServiceError};
use crate::passkeys::{refused, Challenge};
use crate::{Action, RequestContext, Services};

use super::sign_in::SignInWrites;
use super::Step;

pub const PASSKEY: &str = "passkey";

/// A sign-in's passkey step as stored (`sign_ins.passkey_state`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PasskeyStep {
    /// `passkey` is among the sign-in's first factors.
    #[serde(default)]
    offered: bool,
    /// The challenge out, until an answer spends it.
    #[serde(default)]
    challenge: Option<Challenge>,
    /// When the latest challenge ends (kept once it is spent: Clerk's `expire_at`).
    #[serde(default)]
    expire_at: Option<i64>,
}

fn step_of(row: &SignInRow) -> PasskeyStep {
    row.passkey_state.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

fn keep(row: &mut SignInRow, step: &PasskeyStep) -> Result<()> {
    row.passkey_state = Some(serde_json::to_string(step).map_err(|_| ServiceError::internal())?);
    Ok(())
}

/// Whether a sign-in lists `passkey` among its first factors: one begun with a passkey, or
/// (without enumeration protection) one for a user who has a passkey.
pub fn passkey_offered(row: &SignInRow) -> bool {
    step_of(row).offered
}

/// The options of a sign-in's challenge (Clerk's `first_factor_verification.nonce`).
pub fn passkey_nonce(row: &SignInRow) -> Option<String> {
    step_of(row).challenge.map(|c| c.options)
}

/// When the sign-in's latest passkey challenge ends (`first_factor_verification.expire_at`).
pub fn passkey_expire_at(row: &SignInRow) -> Option<i64> {
    step_of(row).expire_at
}

impl Services {
    /// `POST /v1/client/sign_ins` with `strategy=passkey` and no identifier: a sign-in with a
    /// challenge for any passkey of this relying party (the button and the browser's autofill).
    pub async fn create_passkey_sign_in(&self, ctx: &RequestContext, client: &Client) -> Result<SignInRow> {
        self.limit_ip(Action::SignIn, ctx).await?;
        self.refuse_if_signed_in(client).await?;
        let mut row = SignInRow {
            first_factor_strategy: Some(PASSKEY.into()),
            first_factor_status: Some("unverified".into()),
            ..self.new_sign_in(client)
        };
        let challenge = self.passkeys.challenge()?;
        let expire_at = Some(challenge.expire_at);
        keep(&mut row, &PasskeyStep { offered: true, challenge: Some(challenge), expire_at })?;
        self.store.insert_sign_in(&row).await?;
        Ok(row)
    }

    /// Lists `passkey` on a new sign-in for a user who has one, when the instance does not
    /// hide which accounts exist (with protection, the list must not depend on the account).
    pub(crate) async fn offer_passkey(&self, row: &mut SignInRow) -> Result<()> {
        if self.config.enumeration_protection || !self.passkeys.enabled() {
            return Ok(());
        }
        let Some(user_id) = &row.user_id else { return Ok(()) };
        let has_one = self.store.get_user(user_id).await?.is_some_and(|u| u.passkeys.iter().any(|p| p.verified));
        if has_one {
            keep(row, &PasskeyStep { offered: true, ..PasskeyStep::default() })?;
        }
        Ok(())
    }

    /// `prepare_first_factor` with `strategy=passkey`: a fresh challenge. Accepted on any
    /// sign-in, so whether it is listed reveals nothing; the answer must then be the
    /// identified user's.
    pub(crate) fn prepare_passkey(&self, row: &mut SignInRow) -> Result<()> {
        let mut step = step_of(row);
        let challenge = self.passkeys.challenge()?;
        step.expire_at = Some(challenge.expire_at);
        step.challenge = Some(challenge);
        keep(row, &step)
    }

    /// `attempt_first_factor` with `strategy=passkey` and the browser's answer
    /// (`public_key_credential`). The challenge is spent first (a second answer to it finds
    /// none); a refused answer fails the factor, and the sign-in needs a new challenge.
    pub(crate) async fn attempt_passkey(
        &self,
        client: &Client,
        mut row: SignInRow,
        credential: &str,
    ) -> Result<Step<SignInRow>> {
        let mut step = step_of(&row);
        let challenge =
            step.challenge.take().filter(|_| row.first_factor_strategy.as_deref() == Some(PASSKEY)).ok_or_else(
                || ServiceError::bad_request("verification_missing", "Request a passkey challenge first."),
            )?;
        keep(&mut row, &step)?;
        row.updated_at = self.now();
        row.version += 1;
        match self.store.update_sign_in(&row).await {
            Ok(()) => {}
            // Another answer took the challenge meanwhile.
            Err(StoreError::Stale) => return Err(refused()),
            Err(e) => return Err(e.into()),
        }
        // An identified sign-in takes only its own user's passkey; one for an unknown
        // identifier (enumeration protection) takes none.
        let expected =
            if row.identifier.is_some() { Some(row.user_id.clone().unwrap_or_else(|| "-".into())) } else { None };
        let outcome = self.passkeys.authenticate(challenge, credential, expected.as_deref()).await;
        let (record, _passkey) = match outcome {
            Ok(found) => found,
            Err(e) => {
                row.first_factor_status = Some("failed".into());
                row.updated_at = self.now();
                row.version += 1;
                self.store.update_sign_in(&row).await?;
                return Err(e);
            }
        };
        let user_id = record.user.id.clone();
        row.user_id = Some(user_id.clone());
        row.version += 1;
        let writes = SignInWrites {
            second_factor_proved: self.config.passkeys.satisfies_second_factor,
            ..SignInWrites::default()
        };
        self.finish_sign_in(client, row, &user_id, writes).await
    }
}
