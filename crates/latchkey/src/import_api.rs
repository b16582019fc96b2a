//! `latchkey import clerk-api --api-url … --secret-key …`: copies what Clerk's Backend API
//! shows (users with their metadata and external ids, organizations, memberships with their
//! roles, pending invitations) page by page, keeping every id (docs/import-export.md). What is
//! present already is left alone, so an interrupted copy is simply run again; a user the CSV
//! import brought gets the metadata and external id the CSV could not carry.

use std::path::PathBuf;
use std::time::Duration;

use crate::import_csv::Tally;
use anyhow::{anyhow, Context};
use latchkey_service::admin::{ImportOutcome, ImportedUser, MetadataChange, NewUser, Unverified, UserUpdate};
use latchkey_service::orgs::{ImportedInvitation, ImportedMembership, NewOrganization};
use latchkey_service::Services;
use latchkey_store::UserQuery;
use serde_json::Value;

/// Items asked for per page (the Backend API's largest page).
const PAGE: usize = 500;
/// Times a page is asked for again after 429 or a 5xx.
const RETRIES: u32 = 5;
/// The largest page read (500 users with their metadata fit many times over).
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
/// Items of one list at most (far beyond any instance's users).
const MAX_ITEMS: usize = 50_000_000;

pub struct ApiImport {
    pub api_url: String,
    pub secret_key: String,
    pub report: PathBuf,
    /// The organizations whose members and invitations were copied whole, one id a line: a
    /// second run leaves them alone (a membership removed here since stays removed).
    pub state: PathBuf,
    /// Give users already present the metadata and external id they lack (after a CSV import).
    pub fill_in_present_users: bool,
    /// Trusted beside the system's roots (docs/tls.md).
    pub extra_roots: latchkey_core::tls::ExtraRoots,
}

struct Source {
    http: reqwest::Client,
    base: String,
    secret_key: String,
}

impl Source {
    /// One page of `path` (a list, or `{data: [...]}`).
    async fn page(&self, path: &str, offset: usize) -> anyhow::Result<Vec<Value>> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{separator}limit={PAGE}&offset={offset}", self.base);
        let mut attempt = 0;
        loop {
            let response = self.http.get(&url).bearer_auth(&self.secret_key).send().await;
            let retry = match &response {
                Ok(r) => r.status().as_u16() == 429 || r.status().is_server_error(),
                Err(e) => e.is_timeout() || e.is_connect(),
            };
            if retry && attempt < RETRIES {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                continue;
            }
            let mut response = response.with_context(|| format!("GET {path} failed"))?;
            let status = response.status();
            // Read within a bound: the source is a server the operator named, not one we trust.
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.with_context(|| format!("GET {path}: reading failed"))? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_PAGE_BYTES {
                    return Err(anyhow!("GET {path}: a page of more than {MAX_PAGE_BYTES} bytes"));
                }
            }
            let body: Value =
                serde_json::from_slice(&bytes).with_context(|| format!("GET {path}: the answer is not JSON"))?;
            if !status.is_success() {
                let reason = body.pointer("/errors/0/long_message").or_else(|| body.pointer("/errors/0/message"));
                return Err(anyhow!(
                    "GET {path}: {status}: {}",
                    reason.and_then(Value::as_str).unwrap_or("no reason given")
                ));
            }
            let items = match body {
                Value::Array(items) => items,
                Value::Object(mut o) => match o.remove("data") {
                    Some(Value::Array(items)) => items,
                    _ => return Err(anyhow!("GET {path}: the answer holds no list")),
                },
                _ => return Err(anyhow!("GET {path}: the answer holds no list")),
            };
            return Ok(items);
        }
    }
}

/// The pages of one list, in order.
struct Pages<'a> {
    source: &'a Source,
    path: String,
    offset: usize,
    done: bool,
    /// The ids of the page before: a source that answers the same page again (or pages that
    /// never shrink) must not keep the import going for ever.
    previous: Vec<String>,
}

impl<'a> Pages<'a> {
    fn new(source: &'a Source, path: String) -> Self {
        Self { source, path, offset: 0, done: false, previous: Vec::new() }
    }

    async fn next(&mut self) -> anyhow::Result<Option<Vec<Value>>> {
        if self.done {
            return Ok(None);
        }
        let items = self.source.page(&self.path, self.offset).await?;
        let ids: Vec<String> = items.iter().filter_map(|i| text(i, "id")).collect();
        if !ids.is_empty() && ids == self.previous {
            return Err(anyhow!(
                "GET {}: the same page twice (offset {}): the source does not page",
                self.path,
                self.offset
            ));
        }
        self.previous = ids;
        self.offset += items.len();
        self.done = items.len() < PAGE;
        if self.offset > MAX_ITEMS {
            return Err(anyhow!("GET {}: more than {MAX_ITEMS} items: stopping", self.path));
        }
        Ok(Some(items).filter(|i| !i.is_empty()))
    }
}

/// Copies everything; refused items go to the report as `kind,id,reason`.
pub async fn run(services: &Services, options: ApiImport) -> anyhow::Result<()> {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(60)).user_agent("latchkey-import");
    let base = options.api_url.trim_end_matches('/');
    let source = Source {
        http: latchkey_service::trust_extra_roots(builder, &options.extra_roots).build()?,
        base: base.strip_suffix("/v1").unwrap_or(base).to_owned(),
        secret_key: options.secret_key,
    };
    let mut report = csv::Writer::from_path(&options.report)
        .with_context(|| format!("cannot write {}", options.report.display()))?;
    report.write_record(["kind", "id", "reason"])?;
    let operator = crate::operator();
    let (admin, orgs) = (services.admin(), services.orgs());

    let mut users = Tally::default();
    let mut pages = Pages::new(&source, "/v1/users?order_by=%2Bcreated_at".into());
    while let Some(page) = pages.next().await? {
        let mut records = Vec::new();
        for item in &page {
            match admin.import_record(&operator, user_of(item)).await {
                Ok(record) => records.push((record, item)),
                Err(e) => {
                    report.write_record([
                        "user",
                        &text(item, "id").unwrap_or_default(),
                        &crate::import_csv::reason_of(&e),
                    ])?;
                    users.refused += 1;
                }
            }
        }
        let batch: Vec<_> = records.iter().map(|(r, _)| r.clone()).collect();
        let outcomes = admin.import_users(&operator, &batch).await?;
        for ((record, item), outcome) in records.iter().zip(&outcomes) {
            users.add(outcome);
            match outcome {
                ImportOutcome::Conflict(reason) => report.write_record(["user", &record.user.id, reason])?,
                ImportOutcome::AlreadyPresent if options.fill_in_present_users => {
                    fill_in(services, &record.user.id, item).await?
                }
                ImportOutcome::AlreadyPresent => {}
                ImportOutcome::Imported => {}
            }
        }
        report.flush()?;
        println!("users: {users}");
    }

    let mut organizations = Tally::default();
    let mut org_ids = Vec::new();
    let mut pages = Pages::new(&source, "/v1/organizations".into());
    while let Some(page) = pages.next().await? {
        for item in &page {
            let id = text(item, "id").unwrap_or_default();
            let outcome = orgs
                .import_organization(&operator, &id, organization_of(item), int(item, "created_at"))
                .await
                .unwrap_or_else(|e| ImportOutcome::Conflict(crate::import_csv::reason_of(&e)));
            organizations.add(&outcome);
            match outcome {
                ImportOutcome::Conflict(reason) => report.write_record(["organization", &id, &reason])?,
                _ => org_ids.push(id),
            }
        }
        report.flush()?;
        println!("organizations: {organizations}");
    }

    let (mut members, mut invitations) = (Tally::default(), Tally::default());
    let done: std::collections::HashSet<String> = match std::fs::read_to_string(&options.state) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", options.state.display())),
    };
    let mut state = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&options.state)
        .with_context(|| format!("cannot write {}", options.state.display()))?;
    for org_id in org_ids.iter().filter(|id| !done.contains(*id)) {
        let mut pages = Pages::new(&source, format!("/v1/organizations/{org_id}/memberships"));
        while let Some(page) = pages.next().await? {
            for item in &page {
                let input = ImportedMembership {
                    id: text(item, "id"),
                    user_id: item.pointer("/public_user_data/user_id").and_then(Value::as_str).unwrap_or("").into(),
                    role: text(item, "role").unwrap_or_default(),
                    created_at: int(item, "created_at"),
                };
                let outcome = orgs
                    .import_membership(&operator, org_id, input)
                    .await
                    .unwrap_or_else(|e| ImportOutcome::Conflict(crate::import_csv::reason_of(&e)));
                members.add(&outcome);
                if let ImportOutcome::Conflict(reason) = outcome {
                    report.write_record(["membership", &text(item, "id").unwrap_or_default(), &reason])?;
                }
            }
        }
        let mut pages = Pages::new(&source, format!("/v1/organizations/{org_id}/invitations?status=pending"));
        while let Some(page) = pages.next().await? {
            for item in &page {
                let id = text(item, "id").unwrap_or_default();
                let input = ImportedInvitation {
                    id: id.clone(),
                    email_address: text(item, "email_address").unwrap_or_default(),
                    role: text(item, "role").unwrap_or_default(),
                    created_at: int(item, "created_at"),
                    expires_at: int(item, "expires_at"),
                };
                let outcome = orgs
                    .import_invitation(&operator, org_id, input)
                    .await
                    .unwrap_or_else(|e| ImportOutcome::Conflict(crate::import_csv::reason_of(&e)));
                invitations.add(&outcome);
                if let ImportOutcome::Conflict(reason) = outcome {
                    report.write_record(["invitation", &id, &reason])?;
                }
            }
        }
        report.flush()?;
        std::io::Write::write_all(&mut state, format!("{org_id}\n").as_bytes())?;
    }
    println!("memberships: {members}");
    println!("invitations: {invitations}");
    println!(
        "done: users {users}; organizations {organizations}; memberships {members}; invitations {invitations} \
         (refused items in {})",
        options.report.display()
    );
    Ok(())
}

fn text(item: &Value, key: &str) -> Option<String> {
    item.get(key).and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty())
}

fn int(item: &Value, key: &str) -> Option<i64> {
    item.get(key).and_then(Value::as_i64)
}

fn object(item: &Value, key: &str) -> Option<Value> {
    item.get(key).filter(|v| v.as_object().is_some_and(|o| !o.is_empty())).cloned()
}

/// Verified and unverified values of a list of email addresses or phone numbers, the primary
/// one first.
fn identifications(item: &Value, list: &str, field: &str, primary: &str) -> (Vec<String>, Vec<String>) {
    let primary = item.get(primary).and_then(Value::as_str);
    let mut entries: Vec<&Value> =
        item.get(list).and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    entries.sort_by_key(|e| e.get("id").and_then(Value::as_str) != primary);
    let (mut verified, mut unverified) = (Vec::new(), Vec::new());
    for entry in entries {
        let Some(value) = entry.get(field).and_then(Value::as_str) else { continue };
        let status = entry.pointer("/verification/status").and_then(Value::as_str);
        if status == Some("verified") {
            verified.push(value.to_owned());
        } else {
            unverified.push(value.to_owned());
        }
    }
    (verified, unverified)
}

/// A user of the Backend API as a user to import.
fn user_of(item: &Value) -> ImportedUser {
    let (emails, unverified_emails) =
        identifications(item, "email_addresses", "email_address", "primary_email_address_id");
    let (phones, unverified_phones) = identifications(item, "phone_numbers", "phone_number", "primary_phone_number_id");
    ImportedUser {
        id: text(item, "id").unwrap_or_default(),
        user: NewUser {
            email_addresses: emails,
            phone_numbers: phones,
            username: text(item, "username"),
            first_name: text(item, "first_name"),
            last_name: text(item, "last_name"),
            external_id: text(item, "external_id"),
            public_metadata: object(item, "public_metadata"),
            private_metadata: object(item, "private_metadata"),
            unsafe_metadata: object(item, "unsafe_metadata"),
            created_at: int(item, "created_at"),
            banned: item.get("banned").and_then(Value::as_bool).unwrap_or(false),
            locked: item.get("locked").and_then(Value::as_bool).unwrap_or(false),
            ..NewUser::default()
        },
        unverified: Unverified { email_addresses: unverified_emails, phone_numbers: unverified_phones },
    }
}

fn organization_of(item: &Value) -> NewOrganization {
    NewOrganization {
        name: text(item, "name").unwrap_or_default(),
        slug: text(item, "slug"),
        created_by: text(item, "created_by"),
        max_allowed_memberships: int(item, "max_allowed_memberships"),
        admin_delete_enabled: item.get("admin_delete_enabled").and_then(Value::as_bool),
        public_metadata: object(item, "public_metadata"),
        private_metadata: object(item, "private_metadata"),
    }
}

/// A user present already (brought by the CSV import): the metadata and external id the CSV
/// does not carry, where latchkey's are still empty.
async fn fill_in(services: &Services, user_id: &str, item: &Value) -> anyhow::Result<()> {
    let operator = crate::operator();
    let query = UserQuery { user_ids: vec![user_id.to_owned()], limit: 1, ..UserQuery::default() };
    let found = services.admin().query_users(&operator, &query).await.map_err(|e| anyhow!(e.long_message))?;
    let Some(present) = found.into_iter().next() else { return Ok(()) };
    let empty = |stored: &str| stored == "{}" || stored.is_empty();
    let change = MetadataChange {
        public_metadata: object(item, "public_metadata").filter(|_| empty(&present.user.public_metadata)),
        private_metadata: object(item, "private_metadata").filter(|_| empty(&present.user.private_metadata)),
        unsafe_metadata: object(item, "unsafe_metadata").filter(|_| empty(&present.user.unsafe_metadata)),
    };
    if change.public_metadata.is_some() || change.private_metadata.is_some() || change.unsafe_metadata.is_some() {
        services
            .admin()
            .update_user_metadata(&operator, user_id, change, false)
            .await
            .map_err(|e| anyhow!(e.long_message))?;
    }
    if let (None, Some(external_id)) = (&present.user.external_id, text(item, "external_id")) {
        let update = UserUpdate { external_id: Some(Some(external_id)), ..UserUpdate::default() };
        if let Err(e) = services.admin().update_user(&operator, user_id, update).await {
            tracing::warn!(user_id, error = %e.long_message, "the external id was not added");
        }
    }
    Ok(())
}
