//! Session activity: which browser and device a session is used from, as Clerk's
//! `session_activity` object tells it (docs/frontend-api.md "Session activity").
//!
//! The session's own client's requests record the raw `User-Agent` and address (when a token is
//! minted or the session touched, and only when either changed); they are parsed here, when
//! shown, with `woothee`, so a better parser later improves old sessions too. A session used from
//! another device's request (an email link clicked on a phone) is not that device: only the
//! session's own client records it.

use latchkey_store::SessionRow;
use serde::Serialize;
use woothee::parser::Parser;

use crate::{RequestContext, Services};

/// Where an address is, from a local GeoIP database when one is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub city: Option<String>,
    pub country: Option<String>,
}

/// Clerk's `Client.SessionActivity`: `id`, `object` and `is_mobile` always; the rest when known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionActivity {
    pub object: &'static str,
    pub id: String,
    pub is_mobile: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl SessionActivity {
    /// "Chrome 120.0 on Mac OSX" for pages that show one line; `None` when nothing is known.
    pub fn summary(&self) -> Option<String> {
        let browser = match (&self.browser_name, &self.browser_version) {
            (Some(name), Some(version)) => Some(format!("{name} {version}")),
            (Some(name), None) => Some(name.clone()),
            _ => None,
        };
        match (browser, &self.device_type) {
            (Some(b), Some(d)) => Some(format!("{b} on {d}")),
            (Some(b), None) => Some(b),
            (None, Some(d)) => Some(d.clone()),
            (None, None) => None,
        }
    }
}

/// The activity of a session from what it recorded; `place` where its address was looked up.
pub fn session_activity(session: &SessionRow, place: Place) -> SessionActivity {
    let known = |v: &str| (!v.is_empty() && v != woothee::woothee::VALUE_UNKNOWN).then(|| v.to_owned());
    let parsed = session.user_agent.as_deref().and_then(|ua| Parser::new().parse(ua));
    let (browser_name, browser_version, device_type, is_mobile) = match &parsed {
        Some(p) => (known(p.name), known(p.version), known(p.os), matches!(p.category, "smartphone" | "mobilephone")),
        None => (None, None, None, false),
    };
    SessionActivity {
        object: "session_activity",
        id: session.id.clone(),
        is_mobile,
        device_type,
        browser_name,
        browser_version,
        ip_address: session.ip_address.clone().filter(|ip| ip != "unknown"),
        city: place.city,
        country: place.country,
    }
}

impl Services {
    /// Records the device of this request on the session when it differs from the one stored.
    /// Called only for requests of the session's own client. Best effort: activity only informs
    /// the owner, so a failed write is logged and never fails the request (a token refresh).
    pub async fn note_device(&self, ctx: &RequestContext, session: &SessionRow) {
        let same_agent = session.user_agent.as_deref() == ctx.user_agent.as_deref();
        if same_agent && session.ip_address.as_deref() == Some(ctx.ip.as_str()) {
            return;
        }
        // `Ok(false)` means it ended meanwhile: its device no longer matters.
        if let Err(e) = self.store.record_session_device(&session.id, ctx.user_agent.as_deref(), &ctx.ip).await {
            tracing::warn!(session_id = %session.id, error = %e, "session activity not recorded");
        }
    }

    /// The activity of one of the caller's sessions, placed when a GeoIP database is set.
    pub fn activity_of(&self, session: &SessionRow) -> SessionActivity {
        let place = session.ip_address.as_deref().map(|ip| self.place_of(ip)).unwrap_or_default();
        session_activity(session, place)
    }

    fn place_of(&self, ip: &str) -> Place {
        self.config.geoip.as_ref().map(|g| g.place(ip)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(ua: Option<&str>, ip: Option<&str>) -> SessionRow {
        SessionRow {
            id: "sess_1".into(),
            client_id: "client_1".into(),
            user_id: "user_1".into(),
            status: "active".into(),
            active_org_id: None,
            created_at: 0,
            updated_at: 0,
            last_active_at: 0,
            expire_at: 1,
            abandon_at: 1,
            first_factor_verified_at: None,
            second_factor_verified_at: None,
            reverification: None,
            pending_task: None,
            user_agent: ua.map(str::to_owned),
            ip_address: ip.map(str::to_owned),
        }
    }

    #[test]
    fn a_phone_browser_is_named_and_mobile() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                  (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
        let a = session_activity(&row(Some(ua), Some("203.0.113.7")), Place::default());
        assert!(a.is_mobile);
        assert_eq!(a.browser_name.as_deref(), Some("Safari"));
        assert_eq!(a.browser_version.as_deref(), Some("17.4"));
        assert_eq!(a.device_type.as_deref(), Some("iPhone"));
        assert_eq!(a.ip_address.as_deref(), Some("203.0.113.7"));
        assert_eq!(a.summary().as_deref(), Some("Safari 17.4 on iPhone"));
    }

    #[test]
    fn a_desktop_browser_is_not_mobile() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/120.0.0.0 Safari/537.36";
        let a = session_activity(&row(Some(ua), None), Place::default());
        assert!(!a.is_mobile);
        assert_eq!((a.browser_name.as_deref(), a.browser_version.as_deref()), (Some("Chrome"), Some("120.0.0.0")));
        assert_eq!(a.device_type.as_deref(), Some("Windows 10"));
    }

    #[test]
    fn nothing_recorded_names_nothing() {
        let a = session_activity(&row(None, Some("unknown")), Place::default());
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json, serde_json::json!({"object": "session_activity", "id": "sess_1", "is_mobile": false}));
        assert_eq!(a.summary(), None);
        let odd = session_activity(&row(Some("curl/8.5.0"), None), Place::default());
        assert!(!odd.is_mobile);
    }
}
