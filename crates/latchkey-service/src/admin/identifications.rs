//! A user's email addresses and phone numbers: adding, verifying, making primary, deleting.

use latchkey_core::ids::IdKind;
use latchkey_store::{EmailRow, PhoneRow};

use super::AdminService;
use crate::authority::Operator;
use crate::error::{Result, ServiceError};
use crate::identity::email_param;
use crate::params::conflict_to_identifier;

use super::UserUpdate;
use crate::params::phone_param;

impl AdminService {
    pub async fn email_address(&self, id: &str) -> Result<EmailRow> {
        self.store.get_email(id).await?.ok_or_else(|| ServiceError::not_found("Email address"))
    }

    pub async fn admin_add_email(
        &self,
        _operator: &Operator,
        user_id: &str,
        address: &str,
        verified: bool,
        primary: bool,
    ) -> Result<EmailRow> {
        let record = self.users.user(user_id).await?;
        let email = email_param(address, "email_address")?;
        if record.emails.iter().any(|e| e.email == email) {
            return Err(ServiceError::identifier_exists("email_address"));
        }
        if primary && !verified {
            return Err(ServiceError::unprocessable(
                "form_identification_not_verified",
                "Only a verified email address can be primary.",
            )
            .param("primary"));
        }
        let row = self.users.new_email_row(user_id, email, verified);
        let mut after = record.clone();
        crate::webhooks::put_email(&mut after, &row);
        let event = self.users.user_event("user.updated", &after);
        self.emitting(vec![event]).insert_email(&row).await.map_err(|e| conflict_to_identifier(e, "email_address"))?;
        if primary || (verified && record.user.primary_email_id.is_none()) {
            self.make_primary_email(user_id, &row.id).await?;
        }
        Ok(row)
    }

    async fn make_primary_email(&self, user_id: &str, email_id: &str) -> Result<()> {
        self.change_user(
            user_id,
            UserUpdate { primary_email_address_id: Some(email_id.to_owned()), ..Default::default() },
        )
        .await
        .map(|_| ())
    }

    pub async fn admin_update_email(
        &self,
        _operator: &Operator,
        id: &str,
        verified: Option<bool>,
        primary: Option<bool>,
    ) -> Result<EmailRow> {
        let mut row = self.email_address(id).await?;
        if let Some(v) = verified {
            if v != row.verified {
                let user = self.users.user(&row.user_id).await?.user;
                if !v && user.primary_email_id.as_deref() == Some(id) {
                    return Err(ServiceError::unprocessable(
                        "form_identification_not_verified",
                        "The primary email address must stay verified.",
                    )
                    .param("verified"));
                }
                row.verified = v;
                row.verified_at = v.then(|| self.now());
                row.updated_at = self.now();
                row.version += 1;
                let event = self.users.user_changed(&row.user_id, |r| crate::webhooks::put_email(r, &row)).await?;
                self.emitting(vec![event])
                    .update_email(&row)
                    .await
                    .map_err(|e| conflict_to_identifier(e, "email_address"))?;
            }
        }
        if primary == Some(true) {
            self.make_primary_email(&row.user_id, id).await?;
        }
        self.email_address(id).await
    }

    pub async fn admin_delete_email(&self, _operator: &Operator, id: &str) -> Result<()> {
        let row = self.email_address(id).await?;
        self.users.remove_email(&row.user_id, id).await
    }

    pub async fn phone_number(&self, id: &str) -> Result<PhoneRow> {
        self.store.get_phone(id).await?.ok_or_else(|| ServiceError::not_found("Phone number"))
    }

    pub async fn admin_add_phone(
        &self,
        _operator: &Operator,
        user_id: &str,
        number: &str,
        verified: bool,
        primary: bool,
        reserved_for_second_factor: bool,
    ) -> Result<PhoneRow> {
        let record = self.users.user(user_id).await?;
        let phone = phone_param(number)?;
        if record.phones.iter().any(|p| p.phone == phone) {
            return Err(ServiceError::identifier_exists("phone_number"));
        }
        if primary && !verified {
            return Err(ServiceError::unprocessable(
                "form_identification_not_verified",
                "Only a verified phone number can be primary.",
            )
            .param("primary"));
        }
        let now = self.now();
        let row = PhoneRow {
            id: self.new_id(IdKind::Identification),
            user_id: user_id.to_owned(),
            phone,
            verified,
            created_at: now,
            updated_at: now,
            reserved_for_second_factor,
        };
        let mut after = record.clone();
        crate::webhooks::put_phone(&mut after, &row);
        let event = self.users.user_event("user.updated", &after);
        self.emitting(vec![event]).insert_phone(&row).await.map_err(|e| conflict_to_identifier(e, "phone_number"))?;
        if primary || (verified && record.user.primary_phone_id.is_none()) {
            self.change_user(
                user_id,
                UserUpdate { primary_phone_number_id: Some(row.id.clone()), ..Default::default() },
            )
            .await?;
        }
        Ok(row)
    }

    pub async fn admin_update_phone(
        &self,
        _operator: &Operator,
        id: &str,
        verified: Option<bool>,
        primary: Option<bool>,
        reserved_for_second_factor: Option<bool>,
    ) -> Result<PhoneRow> {
        let mut row = self.phone_number(id).await?;
        let user = self.users.user(&row.user_id).await?.user;
        if verified == Some(false) && user.primary_phone_id.as_deref() == Some(id) {
            return Err(ServiceError::unprocessable(
                "form_identification_not_verified",
                "The primary phone number must stay verified.",
            )
            .param("verified"));
        }
        if let Some(v) = verified {
            row.verified = v;
        }
        if let Some(v) = reserved_for_second_factor {
            row.reserved_for_second_factor = v;
        }
        row.updated_at = self.now();
        let event = self.users.user_changed(&row.user_id, |r| crate::webhooks::put_phone(r, &row)).await?;
        self.emitting(vec![event]).update_phone(&row).await.map_err(|e| conflict_to_identifier(e, "phone_number"))?;
        if primary == Some(true) {
            self.change_user(
                &row.user_id,
                UserUpdate { primary_phone_number_id: Some(id.to_owned()), ..Default::default() },
            )
            .await?;
        }
        self.phone_number(id).await
    }

    pub async fn admin_delete_phone(&self, _operator: &Operator, id: &str) -> Result<()> {
        let row = self.phone_number(id).await?;
        let user = self.users.user(&row.user_id).await?.user;
        if user.primary_phone_id.as_deref() == Some(id) {
            let mut user = user;
            user.primary_phone_id = None;
            user.updated_at = self.now();
            user.version += 1;
            let event = self.users.user_changed(&user.id.clone(), |r| r.user = user.clone()).await?;
            self.emitting(vec![event]).update_user(&user).await?;
        }
        let event = self.users.user_changed(&row.user_id, |r| r.phones.retain(|p| p.id != id)).await?;
        self.emitting(vec![event]).delete_phone(id).await?;
        Ok(())
    }
}
