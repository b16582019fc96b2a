//! `latchkey import …` and `latchkey export`: moving users and organizations in and out
//! (docs/import-export.md).

use std::path::PathBuf;

use clap::Subcommand;

use crate::app::Built;
use crate::config::Config;

#[derive(Subcommand)]
pub enum ImportSource {
    /// The CSV of users Clerk's dashboard exports (Settings → User exports): ids, names,
    /// addresses, phone numbers, password digests and authenticator keys.
    Clerk {
        /// The exported file.
        #[arg(long)]
        users: PathBuf,
        /// Judge every row and report, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the refused rows go with their reasons (default: <users>.refused.csv).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Rows written per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Clerk's Backend API (or another latchkey's): users with metadata and external ids,
    /// organizations, memberships with roles, pending invitations; run again to resume.
    ClerkApi {
        /// The Backend API's base URL.
        #[arg(long, default_value = "https://api.clerk.com")]
        api_url: String,
        /// The secret key (sk_live_…); better given in CLERK_SECRET_KEY, out of `ps`'s sight.
        #[arg(long, env = "CLERK_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
        /// Where refused items go with their reasons.
        #[arg(long, default_value = "clerk-api-import.refused.csv")]
        report: PathBuf,
        /// The organizations copied whole, so that a second run resumes with the others.
        #[arg(long, default_value = "clerk-api-import.state")]
        state: PathBuf,
        /// Give users already present (from the CSV import) the metadata and external id they
        /// lack.
        #[arg(long)]
        fill_in_present_users: bool,
    },
}

/// Runs an import against the assembled services.
pub async fn import(config: &Config, built: &Built, source: ImportSource) -> anyhow::Result<()> {
    match source {
        ImportSource::Clerk { users, dry_run, report, batch } => {
            let options = crate::import_csv::CsvImport { file: &users, dry_run, report, batch };
            crate::import_csv::run(built.services.admin(), options).await.map(|_| ())
        }
        ImportSource::ClerkApi { api_url, secret_key, report, state, fill_in_present_users } => {
            let extra_roots = config.extra_roots()?;
            let options =
                crate::import_api::ApiImport { api_url, secret_key, report, state, fill_in_present_users, extra_roots };
            crate::import_api::run(&built.services, options).await
        }
    }
}

/// Writes every user (and, when asked, every organization) to new files.
pub async fn export(built: &Built, users: PathBuf, organizations: Option<PathBuf>) -> anyhow::Result<()> {
    let count = crate::export_cli::users(built.services.admin(), &users).await?;
    println!("exported {count} users to {}", users.display());
    if let Some(path) = organizations {
        let count = crate::export_cli::organizations(built.services.orgs(), &path).await?;
        println!("exported {count} organizations to {}", path.display());
    }
    println!("these files hold password digests and authenticator keys: keep them as secret as the database");
    Ok(())
}
