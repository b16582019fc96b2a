//! `latchkey webhooks …`: the Backend API's webhook management from the command line.

use anyhow::anyhow;
use clap::Subcommand;
use latchkey_service::webhooks::{EndpointPatch, NewEndpoint, WebhookService};
use latchkey_service::ServiceError;

#[derive(Subcommand)]
pub enum WebhooksAction {
    /// Create an endpoint; prints its id and its signing secret.
    Create {
        #[arg(long)]
        url: String,
        /// Event types it receives, comma-separated (default: every event).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List endpoints.
    List,
    /// Change an endpoint's URL, event filter or description, or enable or disable it.
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// The new filter, comma-separated; an empty value means every event.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Delete an endpoint with its deliveries.
    Delete { id: String },
    /// Print the endpoint's signing secret.
    Secret { id: String },
    /// Make a new signing secret; the previous one keeps signing during the overlap.
    RotateSecret { id: String },
    /// List an endpoint's deliveries, newest first, with their attempts.
    Deliveries {
        id: String,
        /// pending, succeeded or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Send one message again (--message), or every message since a time (--since, epoch ms).
    Replay {
        id: String,
        #[arg(long, conflicts_with = "since")]
        message: Option<String>,
        #[arg(long)]
        since: Option<i64>,
    },
}

fn fail(e: ServiceError) -> anyhow::Error {
    anyhow!("{}", e.long_message)
}

pub async fn run(s: &WebhookService, action: WebhooksAction) -> anyhow::Result<()> {
    match action {
        WebhooksAction::Create { url, events, description } => {
            let events = events.into_iter().filter(|e| !e.trim().is_empty()).collect();
            let (row, secret) = s
                .create_webhook_endpoint(&crate::operator(), NewEndpoint { url, description, event_types: events })
                .await
                .map_err(fail)?;
            println!("{}", row.id);
            println!("{secret}");
            eprintln!("created {} for {} (the second line is its signing secret)", row.id, row.url);
        }
        WebhooksAction::List => {
            let (rows, total) = s.list_webhook_endpoints(500, 0).await.map_err(fail)?;
            for e in rows {
                let state = e.disabled_reason.as_deref().map_or("enabled".to_owned(), |r| format!("disabled ({r})"));
                let events = if e.event_types.is_empty() { "*".to_owned() } else { e.event_types.join(",") };
                println!("{}\t{state}\t{}\t{events}", e.id, e.url);
            }
            eprintln!("{total} endpoints in all");
        }
        WebhooksAction::Update { id, url, events, description, enable, disable } => {
            let disabled = if enable {
                Some(false)
            } else if disable {
                Some(true)
            } else {
                None
            };
            let event_types = events.map(|v| v.into_iter().filter(|e| !e.trim().is_empty()).collect());
            let patch = EndpointPatch { url, description, event_types, disabled };
            let row = s.update_webhook_endpoint(&crate::operator(), &id, patch).await.map_err(fail)?;
            println!("{} updated ({})", row.id, if row.disabled_reason.is_some() { "disabled" } else { "enabled" });
        }
        WebhooksAction::Delete { id } => {
            s.delete_webhook_endpoint(&crate::operator(), &id).await.map_err(fail)?;
            println!("{id} deleted");
        }
        WebhooksAction::Secret { id } => println!("{}", s.webhook_secret(&crate::operator(), &id).await.map_err(fail)?),
        WebhooksAction::RotateSecret { id } => {
            let (row, secret) = s.rotate_webhook_secret(&crate::operator(), &id).await.map_err(fail)?;
            println!("{secret}");
            eprintln!(
                "the previous secret of {} keeps signing until {} (epoch ms)",
                row.id,
                row.previous_secret_expires_at.unwrap_or_default()
            );
        }
        WebhooksAction::Deliveries { id, status, limit } => {
            let (rows, total) =
                s.webhook_deliveries(&id, status.as_deref(), limit.clamp(1, 500), 0).await.map_err(fail)?;
            for d in rows {
                let r = &d.delivery;
                println!(
                    "{}\t{}\t{}\t{}\tattempts={}",
                    r.id,
                    r.message_id,
                    r.event_type,
                    r.status.as_str(),
                    r.attempts
                );
                for a in d.attempts {
                    let code = a.status_code.map_or("-".to_owned(), |c| c.to_string());
                    println!("\t{}\t{code}\t{}", a.attempted_at, a.error.unwrap_or_default());
                }
            }
            eprintln!("{total} deliveries in all");
        }
        WebhooksAction::Replay { id, message, since } => {
            let queued = match (message, since) {
                (Some(m), _) => s.replay_webhook_message(&crate::operator(), &id, &m).await.map_err(fail)?,
                (None, Some(t)) => s.replay_webhook_since(&crate::operator(), &id, t).await.map_err(fail)?,
                (None, None) => return Err(anyhow!("name a message (--message) or a time (--since)")),
            };
            println!("{queued} deliveries queued");
        }
    }
    Ok(())
}
