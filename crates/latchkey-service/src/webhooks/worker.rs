//! Delivery: claims due deliveries from the outbox, signs and sends them, and records each
//! attempt with what comes next (docs/security-baseline.md §8): attempts now, then after 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h and 10 h; `Retry-After` honoured; 2xx succeeds; 3xx fails and is not
//! followed; 410 disables the endpoint; each attempt may take `timeout_secs`.

use std::sync::Arc;
use std::time::Duration;

use latchkey_core::ids::IdKind;
use latchkey_store::{AttemptOutcome, AttemptRow, ClaimedDelivery, DeliveryStatus};

use super::guard::{self, AddressPolicy};
use super::sign;
use super::WebhookService;

/// Delays before the 2nd … 8th attempt, in seconds.
pub const RETRY_DELAYS_SECS: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
/// The longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER_SECS: i64 = 86_400;
/// How long a claim lasts: past it, a delivery whose worker died is due again (twice the
/// attempt's timeout and a margin, so a live worker always records its attempt first).
const fn lease_ms(timeout_secs: u64) -> i64 {
    (timeout_secs as i64 * 2 + 5) * 1000
}

/// When the next attempt is due after `attempts_made` failed ones, or `None` when the
/// schedule is spent; a `Retry-After` later than the schedule wins.
pub fn next_attempt_at(now: i64, attempts_made: i64, retry_after_secs: Option<i64>) -> Option<i64> {
    let idx = usize::try_from(attempts_made - 1).ok()?;
    let scheduled = *RETRY_DELAYS_SECS.get(idx)?;
    let wait = retry_after_secs.map_or(scheduled, |r| r.clamp(0, MAX_RETRY_AFTER_SECS).max(scheduled));
    Some(now + wait * 1000)
}

/// Writes outcomes as they come, everything waiting in one transaction. A failed write is
/// logged; the deliveries' leases run out and they are attempted again (at least once).
async fn record_in_batches(
    webhooks: Arc<WebhookService>,
    mut outcomes: tokio::sync::mpsc::UnboundedReceiver<AttemptOutcome>,
) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match outcomes.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        if let Err(e) = webhooks.store.record_webhook_attempts(&batch).await {
            tracing::warn!(error = %e, attempts = batch.len(), "cannot record webhook attempts");
        }
    }
}

/// What an HTTP status means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry,
    /// 410: the receiver says the endpoint is gone.
    Gone,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        _ => Verdict::Retry,
    }
}

/// `Retry-After` in seconds (the delta form; an HTTP date is read as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<i64>().ok()
}

pub struct WebhookWorker {
    webhooks: Arc<WebhookService>,
    http: reqwest::Client,
    policy: AddressPolicy,
    timeout_secs: u64,
    concurrency: usize,
}

impl WebhookWorker {
    pub fn new(webhooks: Arc<WebhookService>, extra_roots: &latchkey_core::tls::ExtraRoots) -> crate::Result<Self> {
        let config = webhooks.config.clone();
        let policy = config.policy();
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 10)))
            .dns_resolver(Arc::new(guard::GuardedResolver { policy }))
            .user_agent(concat!("latchkey-webhooks/", env!("CARGO_PKG_VERSION")));
        let http = crate::trust_extra_roots(builder, extra_roots).build().map_err(|e| {
            tracing::error!(error = %e, "cannot build the webhook HTTP client");
            crate::ServiceError::internal()
        })?;
        Ok(Self {
            webhooks,
            http,
            policy,
            timeout_secs: config.timeout_secs.max(1),
            concurrency: config.concurrency.max(1),
        })
    }

    async fn claim(&self, limit: usize) -> crate::Result<Vec<ClaimedDelivery>> {
        let now = self.webhooks.now();
        let limit = i64::try_from(limit).unwrap_or(64);
        Ok(self.webhooks.store.claim_webhook_deliveries(now, lease_ms(self.timeout_secs), limit).await?)
    }

    /// Claims what is due now, makes one attempt of each and records them; returns how many
    /// were attempted. (Tests step the worker with this; `spawn` runs a pipeline instead.)
    pub async fn run_once(self: &Arc<Self>) -> crate::Result<usize> {
        let claimed = self.claim(self.concurrency * 4).await?;
        let n = claimed.len();
        let mut running = tokio::task::JoinSet::new();
        let mut outcomes = Vec::with_capacity(n);
        for c in claimed {
            while running.len() >= self.concurrency {
                if let Some(Ok(o)) = running.join_next().await {
                    outcomes.push(o);
                }
            }
            let me = self.clone();
            running.spawn(async move { me.deliver(c).await });
        }
        while let Some(done) = running.join_next().await {
            if let Ok(o) = done {
                outcomes.push(o);
            }
        }
        self.webhooks.store.record_webhook_attempts(&outcomes).await?;
        Ok(n)
    }

    /// Runs until the process ends: up to `concurrency` attempts in flight, a new claim as soon
    /// as one finishes (a slow endpoint holds one slot, not the whole round), and outcomes
    /// recorded in batches by one task. When nothing is due it waits for the next commit with
    /// events, or a second (retries coming due, other instances' events).
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let signal = self.webhooks.outbox_signal();
        let (done, outcomes) = tokio::sync::mpsc::unbounded_channel::<AttemptOutcome>();
        tokio::spawn(record_in_batches(self.webhooks.clone(), outcomes));
        let slots = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        tokio::spawn(async move {
            loop {
                let Ok(first) = slots.clone().acquire_owned().await else { return };
                let claimed = match self.claim(slots.available_permits() + 1).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e.long_message, "claiming webhook deliveries failed");
                        Vec::new()
                    }
                };
                if claimed.is_empty() {
                    drop(first);
                    tokio::select! {
                        _ = signal.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                let mut first = Some(first);
                for c in claimed {
                    let slot = match first.take() {
                        Some(s) => s,
                        None => match slots.clone().acquire_owned().await {
                            Ok(s) => s,
                            Err(_) => return,
                        },
                    };
                    let (me, done) = (self.clone(), done.clone());
                    tokio::spawn(async move {
                        let outcome = me.deliver(c).await;
                        drop(slot);
                        // The recorder lives as long as this loop; if it is gone, the lease
                        // makes the delivery due again.
                        let _ = done.send(outcome);
                    });
                }
            }
        })
    }

    async fn deliver(&self, c: ClaimedDelivery) -> AttemptOutcome {
        let outcome = self.attempt(&c).await;
        let telemetry = &self.webhooks.telemetry;
        if outcome.status == latchkey_store::DeliveryStatus::Succeeded {
            telemetry.count("latchkey_webhook_attempts_total", &[("result", "delivered")]);
            telemetry.observe_delivery(self.webhooks.now() - c.message_created_at);
        } else {
            telemetry.count("latchkey_webhook_attempts_total", &[("result", "failed")]);
        }
        match (&outcome.attempt.status_code, &outcome.attempt.error) {
            (_, Some(error)) => {
                tracing::info!(delivery = %c.delivery.id, endpoint = %c.endpoint.id, %error, "webhook attempt failed")
            }
            (Some(code), None) => {
                tracing::debug!(delivery = %c.delivery.id, endpoint = %c.endpoint.id, code, "webhook delivered")
            }
            _ => {}
        }
        outcome
    }

    /// The signing keys of the endpoint now: its secret, and the previous one during a rotation.
    fn keys(&self, c: &ClaimedDelivery, now: i64) -> crate::Result<Vec<Vec<u8>>> {
        let e = &c.endpoint;
        let mut sealed = vec![e.secret_sealed.as_str()];
        if let (Some(prev), Some(until)) = (&e.previous_secret_sealed, e.previous_secret_expires_at) {
            if until > now {
                sealed.push(prev);
            }
        }
        sealed
            .into_iter()
            .map(|s| {
                let secret = self.webhooks.open_endpoint_secret(s, &e.id)?;
                sign::secret_key(&secret).ok_or_else(crate::ServiceError::internal)
            })
            .collect()
    }

    async fn attempt(&self, c: &ClaimedDelivery) -> AttemptOutcome {
        let now = self.webhooks.now();
        let attempts_made = c.delivery.attempts + 1;
        let started = std::time::Instant::now();
        let result = self.send(c, now).await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status_code, verdict, retry_after_secs, error) = match result {
            Ok((code, retry)) => {
                let v = verdict(code);
                let error = match v {
                    Verdict::Delivered => None,
                    Verdict::Gone => Some("HTTP 410: the endpoint is gone and is now disabled".to_owned()),
                    Verdict::Retry if (300..400).contains(&code) => {
                        Some(format!("HTTP {code}: redirects are not followed"))
                    }
                    Verdict::Retry => Some(format!("HTTP {code}")),
                };
                (Some(i64::from(code)), v, retry, error)
            }
            Err(error) => (None, Verdict::Retry, None, Some(error)),
        };
        let (status, next_attempt_at, disable_endpoint) = match verdict {
            Verdict::Delivered => (DeliveryStatus::Succeeded, None, None),
            Verdict::Gone => (DeliveryStatus::Failed, None, Some("gone".to_owned())),
            Verdict::Retry => match next_attempt_at(now, attempts_made, retry_after_secs) {
                Some(at) => (DeliveryStatus::Pending, Some(at), None),
                None => (DeliveryStatus::Failed, None, None),
            },
        };
        AttemptOutcome {
            attempt: AttemptRow {
                id: self.webhooks.new_id(IdKind::Message).replacen("msg_", "wha_", 1),
                delivery_id: c.delivery.id.clone(),
                attempted_at: now,
                status_code,
                succeeded: verdict == Verdict::Delivered,
                error,
                duration_ms,
            },
            status,
            next_attempt_at,
            disable_endpoint,
        }
    }

    /// One POST; the status and `Retry-After`, or why no response came.
    async fn send(&self, c: &ClaimedDelivery, now: i64) -> Result<(u16, Option<i64>), String> {
        let url = reqwest::Url::parse(&c.endpoint.url).map_err(|_| "the endpoint URL is invalid".to_owned())?;
        // Literal addresses are never resolved, so the resolver's check is repeated here.
        let literal = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
            if let Some(why) = guard::refusal(ip, self.policy) {
                return Err(format!("refused before connecting: {ip} is {why}"));
            }
        }
        let keys = self.keys(c, now).map_err(|_| "cannot open the endpoint's signing secret".to_owned())?;
        let id = &c.delivery.message_id;
        let ts = now.div_euclid(1000);
        let signature = sign::signature_header(&keys, id, ts, &c.payload);
        let ts = ts.to_string();
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", &ts)
            .header("webhook-signature", &signature)
            .header("svix-id", id)
            .header("svix-timestamp", &ts)
            .header("svix-signature", &signature)
            .body(c.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e, self.timeout_secs))?;
        Ok((response.status().as_u16(), retry_after(response.headers())))
    }
}

/// A sentence for a failed send, without URLs' query strings or anything secret.
fn describe(e: &reqwest::Error, timeout_secs: u64) -> String {
    if e.is_timeout() {
        return format!("no response within {timeout_secs} s");
    }
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut deepest = String::new();
    while let Some(s) = source {
        deepest = s.to_string();
        source = s.source();
    }
    if e.is_connect() {
        format!("cannot connect: {deepest}")
    } else {
        format!("request failed: {deepest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_svix_s_and_retry_after_only_lengthens_it() {
        let offsets: Vec<Option<i64>> = (1..=8).map(|n| next_attempt_at(0, n, None)).collect();
        assert_eq!(
            offsets,
            vec![
                Some(5_000),
                Some(300_000),
                Some(1_800_000),
                Some(7_200_000),
                Some(18_000_000),
                Some(36_000_000),
                Some(36_000_000),
                None
            ]
        );
        assert_eq!(next_attempt_at(1_000, 1, Some(120)), Some(121_000));
        assert_eq!(next_attempt_at(0, 1, Some(1)), Some(5_000), "shorter than the schedule: the schedule");
        assert_eq!(next_attempt_at(0, 1, Some(10_000_000)), Some(86_400_000), "capped at a day");
        assert_eq!(next_attempt_at(0, 8, Some(60)), None, "the last attempt stays the last");
        assert_eq!(next_attempt_at(0, 0, None), None);
    }

    #[test]
    fn statuses_decide_the_outcome() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        assert_eq!(verdict(302), Verdict::Retry);
        assert_eq!(verdict(404), Verdict::Retry);
        assert_eq!(verdict(410), Verdict::Gone);
        assert_eq!(verdict(429), Verdict::Retry);
        assert_eq!(verdict(500), Verdict::Retry);
    }
}
