//! The CSV of users that Clerk's dashboard exports (Settings → User exports), read by
//! `latchkey import clerk` and written by `latchkey export` (docs/import-export.md).
//!
//! Clerk does not document the columns; these are the ones its own migration tool reads.
//! Columns are found by name, unknown ones ignored; a list column holds several values
//! separated by `|` (Clerk's), `,` or `;`.

use std::collections::HashMap;

use latchkey_core::secret::ConfigSecret;
use latchkey_service::admin::{ImportedUser, NewUser, PortableUser, Unverified};
use serde_json::Value;

/// Clerk's columns, in its order.
pub const CLERK_COLUMNS: [&str; 13] = [
    "id",
    "first_name",
    "last_name",
    "username",
    "primary_email_address",
    "primary_phone_number",
    "verified_email_addresses",
    "unverified_email_addresses",
    "verified_phone_numbers",
    "unverified_phone_numbers",
    "totp_secret",
    "password_digest",
    "password_hasher",
];

/// Columns latchkey's export adds after Clerk's, so that moving between two latchkeys keeps
/// them; an import reads them when present.
pub const EXTRA_COLUMNS: [&str; 6] =
    ["external_id", "public_metadata", "private_metadata", "unsafe_metadata", "created_at", "banned"];

/// Where each known column is in one file.
pub struct Columns {
    at: HashMap<String, usize>,
}

impl Columns {
    /// The columns of a header row; `id` is required.
    pub fn new(header: &csv::StringRecord) -> Result<Self, String> {
        let at: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, name)| (name.trim().trim_start_matches('\u{feff}').to_owned(), i))
            .collect();
        if !at.contains_key("id") {
            return Err("the header has no `id` column: is this Clerk's user export?".into());
        }
        Ok(Self { at })
    }

    fn get<'a>(&self, row: &'a csv::StringRecord, name: &str) -> &'a str {
        self.at.get(name).and_then(|i| row.get(*i)).map(str::trim).unwrap_or("")
    }

    fn optional(&self, row: &csv::StringRecord, name: &str) -> Option<String> {
        Some(self.get(row, name).to_owned()).filter(|v| !v.is_empty())
    }

    /// The id a row names (for reports of rows that cannot be read further).
    pub fn id(&self, row: &csv::StringRecord) -> String {
        self.get(row, "id").to_owned()
    }

    /// One row as a user to import, or why it cannot be one.
    pub fn user(&self, row: &csv::StringRecord) -> Result<ImportedUser, String> {
        let (emails, unverified_emails) = verified_split(
            self.get(row, "primary_email_address"),
            self.get(row, "verified_email_addresses"),
            self.get(row, "unverified_email_addresses"),
        );
        let (phones, unverified_phones) = verified_split(
            self.get(row, "primary_phone_number"),
            self.get(row, "verified_phone_numbers"),
            self.get(row, "unverified_phone_numbers"),
        );
        let password_digest = self.optional(row, "password_digest");
        let password_hasher = self.optional(row, "password_hasher");
        match (&password_digest, &password_hasher) {
            (Some(_), None) => return Err("password_digest is given without password_hasher".into()),
            (None, Some(_)) => return Err("password_hasher is given without password_digest".into()),
            _ => {}
        }
        let created_at = match self.optional(row, "created_at") {
            Some(v) => Some(v.parse::<i64>().map_err(|_| format!("created_at must be milliseconds, not {v:?}"))?),
            None => None,
        };
        let banned = match self.get(row, "banned") {
            "" | "false" => false,
            "true" => true,
            other => return Err(format!("banned must be true or false, not {other:?}")),
        };
        Ok(ImportedUser {
            id: self.id(row),
            user: NewUser {
                email_addresses: emails,
                phone_numbers: phones,
                username: self.optional(row, "username"),
                first_name: self.optional(row, "first_name"),
                last_name: self.optional(row, "last_name"),
                password_digest,
                password_hasher,
                totp_secret: self.optional(row, "totp_secret").map(ConfigSecret::new),
                external_id: self.optional(row, "external_id"),
                public_metadata: self.json(row, "public_metadata")?,
                private_metadata: self.json(row, "private_metadata")?,
                unsafe_metadata: self.json(row, "unsafe_metadata")?,
                created_at,
                banned,
                ..NewUser::default()
            },
            unverified: Unverified { email_addresses: unverified_emails, phone_numbers: unverified_phones },
        })
    }

    fn json(&self, row: &csv::StringRecord, name: &str) -> Result<Option<Value>, String> {
        match self.optional(row, name) {
            None => Ok(None),
            Some(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v @ Value::Object(_)) => Ok(Some(v)),
                Ok(_) => Err(format!("{name} must be a JSON object")),
                Err(e) => Err(format!("{name} is not JSON: {e}")),
            },
        }
    }
}

/// The values of a list column.
fn list(field: &str) -> Vec<String> {
    field.split(['|', ',', ';']).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect()
}

/// (verified, unverified): the primary value first among the verified unless it is listed as
/// unverified, each value once.
fn verified_split(primary: &str, verified: &str, unverified: &str) -> (Vec<String>, Vec<String>) {
    // Compared as addresses compare (case aside): `Ann@X.com` listed unverified is `ann@x.com`.
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let unverified = list(unverified);
    let mut out: Vec<String> = Vec::new();
    let primary = Some(primary.to_owned()).filter(|p| !p.is_empty() && !unverified.iter().any(|u| same(u, p)));
    for value in primary.into_iter().chain(list(verified)) {
        if !out.iter().any(|o| same(o, &value)) {
            out.push(value);
        }
    }
    let unverified = unverified.into_iter().filter(|v| !out.iter().any(|o| same(o, v))).collect();
    (out, unverified)
}

/// One user as a row of [`CLERK_COLUMNS`] then [`EXTRA_COLUMNS`].
pub fn row(user: &PortableUser) -> Vec<String> {
    let r = &user.record;
    let email = |id: &Option<String>| {
        r.emails.iter().find(|e| Some(&e.id) == id.as_ref()).map(|e| e.email.clone()).unwrap_or_default()
    };
    let phone = |id: &Option<String>| {
        r.phones.iter().find(|p| Some(&p.id) == id.as_ref()).map(|p| p.phone.clone()).unwrap_or_default()
    };
    let join = |values: Vec<&String>| values.into_iter().cloned().collect::<Vec<_>>().join("|");
    let emails_where =
        |verified: bool| join(r.emails.iter().filter(|e| e.verified == verified).map(|e| &e.email).collect());
    let phones_where = |verified: bool| {
        join(
            r.phones
                .iter()
                .filter(|p| p.verified == verified && !p.reserved_for_second_factor)
                .map(|p| &p.phone)
                .collect(),
        )
    };
    let (digest, hasher) = user.password.clone().unwrap_or_default();
    // Stored as JSON text; `{}` (nothing) is written as an empty cell.
    let object = |v: &String| if v.trim() == "{}" { String::new() } else { v.clone() };
    vec![
        r.user.id.clone(),
        r.user.first_name.clone().unwrap_or_default(),
        r.user.last_name.clone().unwrap_or_default(),
        r.user.username.clone().unwrap_or_default(),
        email(&r.user.primary_email_id),
        phone(&r.user.primary_phone_id),
        emails_where(true),
        emails_where(false),
        phones_where(true),
        phones_where(false),
        user.totp_secret.clone().unwrap_or_default(),
        digest,
        hasher,
        r.user.external_id.clone().unwrap_or_default(),
        object(&r.user.public_metadata),
        object(&r.user.private_metadata),
        object(&r.user.unsafe_metadata),
        r.user.created_at.to_string(),
        r.user.banned.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn read(text: &str) -> Vec<Result<ImportedUser, String>> {
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let columns = Columns::new(reader.headers().unwrap()).unwrap();
        reader.records().map(|r| columns.user(&r.unwrap())).collect()
    }

    #[test]
    fn clerks_sample_row_reads_with_its_lists_and_digest() {
        let rows = read(
            "id,first_name,last_name,username,primary_email_address,primary_phone_number,verified_email_addresses,\
             unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,totp_secret,password_digest,\
             password_hasher,something_new\n\
             user_2YDryYFVMM1W1plDDKz7Gzf4we6,Jane,Doe,,jane@test.com,,jane@test.com|other@test.com,new@test.com,\
             +15555550100;+15555550101,,,$2b$10$U4C0ZY8OG8y41F9LusfKyu3HRMBL0rCZcKBVsXhgr.n8Ou6FPhzO2,bcrypt,x\n",
        );
        let user = rows[0].as_ref().unwrap();
        assert_eq!(user.id, "user_2YDryYFVMM1W1plDDKz7Gzf4we6");
        assert_eq!(user.user.email_addresses, ["jane@test.com", "other@test.com"]);
        assert_eq!(user.unverified.email_addresses, ["new@test.com"]);
        assert_eq!(user.user.phone_numbers, ["+15555550100", "+15555550101"]);
        assert_eq!(user.user.password_hasher.as_deref(), Some("bcrypt"));
        assert_eq!(user.user.first_name.as_deref(), Some("Jane"));
        assert_eq!(user.user.username, None);
    }

    #[test]
    fn a_primary_listed_as_unverified_stays_unverified() {
        let (verified, unverified) = verified_split("A@x.com", "b@x.com", "a@x.com, c@x.com");
        assert_eq!(verified, ["b@x.com"]);
        assert_eq!(unverified, ["a@x.com", "c@x.com"]);
    }

    #[test]
    fn unreadable_rows_say_why() {
        let rows = read(
            "id,password_digest,password_hasher,public_metadata,created_at\n\
             user_a,abc,,,\n\
             user_b,,bcrypt,,\n\
             user_c,,,[1],\n\
             user_d,,,{oops,\n\
             user_e,,,,yesterday\n",
        );
        let errors: Vec<String> = rows.into_iter().map(|r| r.unwrap_err()).collect();
        assert!(errors[0].contains("without password_hasher"), "{errors:?}");
        assert!(errors[1].contains("without password_digest"), "{errors:?}");
        assert!(errors[2].contains("JSON object"), "{errors:?}");
        assert!(errors[3].contains("not JSON"), "{errors:?}");
        assert!(errors[4].contains("milliseconds"), "{errors:?}");
    }

    #[test]
    fn a_file_without_ids_is_not_an_export() {
        let mut reader = csv::ReaderBuilder::new().from_reader("email\na@x.com\n".as_bytes());
        assert!(Columns::new(reader.headers().unwrap()).is_err());
    }
}
