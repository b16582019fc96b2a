//! A tiny HTML builder for the hosted pages: every dynamic value passes through [`esc`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_service::SessionActivity;
use latchkey_store::{SessionRow, UserRecord};

use crate::cookies::append_set_cookies;

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub struct Page {
    title: String,
    sub: String,
    alerts: String,
    body: String,
    wide: bool,
    /// Seconds after which the browser loads the page again (`<meta http-equiv="refresh">`):
    /// how a page without JavaScript waits for something that happens elsewhere.
    refresh: Option<u32>,
}

impl Page {
    pub fn new(title: &str, sub: &str) -> Self {
        Self {
            title: title.into(),
            sub: sub.into(),
            alerts: String::new(),
            body: String::new(),
            wide: false,
            refresh: None,
        }
    }
    pub fn wide(mut self) -> Self {
        self.wide = true;
        self
    }
    /// Loads the page again after `seconds`.
    pub fn refresh(mut self, seconds: u32) -> Self {
        self.refresh = Some(seconds);
        self
    }
    pub fn alert(mut self, message: &str) -> Self {
        self.alerts.push_str(&format!(r#"<div class="alert error" role="alert">{}</div>"#, esc(message)));
        self
    }
    pub fn notice(mut self, message: &str) -> Self {
        self.alerts.push_str(&format!(r#"<div class="alert ok" role="status">{}</div>"#, esc(message)));
        self
    }
    pub fn body(mut self, html: String) -> Self {
        self.body.push_str(&html);
        self
    }

    pub fn render(&self) -> String {
        let sub = if self.sub.is_empty() { String::new() } else { format!(r#"<p class="sub">{}</p>"#, esc(&self.sub)) };
        let (main_class, card) = if self.wide {
            ("wide", format!(r#"<h1>{}</h1>{sub}{}{}"#, esc(&self.title), self.alerts, self.body))
        } else {
            ("", format!(r#"<div class="card"><h1>{}</h1>{sub}{}{}</div>"#, esc(&self.title), self.alerts, self.body))
        };
        let refresh = self.refresh.map(|s| format!(r#"<meta http-equiv="refresh" content="{s}">"#)).unwrap_or_default();
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>{title} · latchkey</title><link rel="stylesheet" href="/assets/latchkey.css"></head>
<body><main class="{main_class}"><p class="brand">latchkey</p>{card}</main></body></html>"#,
            title = esc(&self.title),
        )
    }

    pub fn into_response(self, status: StatusCode, cookies: &[String]) -> Response {
        let mut res = (status, self.render()).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        append_set_cookies(res.headers_mut(), cookies);
        res
    }
}

pub(super) fn hidden(csrf: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(csrf))
}

pub(super) fn button_form(action: &str, csrf: &str, label: &str, class: &str) -> String {
    format!(
        r#"<form method="post" action="{}">{}<button class="{class}" type="submit">{}</button></form>"#,
        esc(action),
        hidden(csrf),
        esc(label)
    )
}

fn ago(now: i64, then: i64) -> String {
    let mins = (now - then).max(0) / 60_000;
    match mins {
        0 => "just now".into(),
        1..=59 => format!("{mins} min ago"),
        60..=1439 => format!("{} h ago", mins / 60),
        _ => format!("{} days ago", mins / 1440),
    }
}

/// The `/user` page; `organizations` (the switcher) comes right after the top bar, `accounts`
/// after the email addresses and `security` (two-step verification) after the password.
#[allow(clippy::too_many_arguments)]
pub fn user_sections(
    csrf: &str,
    user: &UserRecord,
    sessions: &[(SessionRow, SessionActivity)],
    current: &str,
    now: i64,
    organizations: &str,
    accounts: &str,
    security: &str,
) -> String {
    let u = &user.user;
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let mut out = String::new();
    out.push_str(&format!(
        r#"<div class="top"><span></span>{}</div>"#,
        button_form("/sign-out", csrf, "Sign out", "secondary")
    ));
    out.push_str(organizations);
    out.push_str(&format!(
        r#"<section class="card" aria-labelledby="profile-h"><h2 id="profile-h">Profile</h2>
<form method="post" action="/user/profile">{}
<div class="row"><div><label for="first_name">First name</label><input id="first_name" name="first_name" type="text" value="{}"></div>
<div><label for="last_name">Last name</label><input id="last_name" name="last_name" type="text" value="{}"></div></div>
<label for="username">Username</label><input id="username" name="username" type="text" value="{}">
<button class="primary" type="submit">Save profile</button></form></section>"#,
        hidden(csrf),
        v(&u.first_name),
        v(&u.last_name),
        v(&u.username)
    ));

    let mut emails = String::new();
    for e in &user.emails {
        let primary = u.primary_email_id.as_deref() == Some(e.id.as_str());
        let mut badges = String::new();
        if primary {
            badges.push_str(r#"<span class="badge">Primary</span>"#);
        }
        if !e.verified {
            badges.push_str(r#"<span class="badge">Unverified</span>"#);
        }
        let mut actions = String::new();
        if e.verified && !primary {
            actions.push_str(&button_form(&format!("/user/email/{}/primary", e.id), csrf, "Make primary", "secondary"));
        }
        if !primary {
            actions.push_str(&button_form(&format!("/user/email/{}/delete", e.id), csrf, "Remove", "danger"));
        }
        let mut verify = String::new();
        if !e.verified {
            verify = format!(
                r#"<form method="post" action="/user/email/{id}/verify" class="row full">{h}<div><label for="code-{id}">Code sent to this address</label><input id="code-{id}" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="6"></div><div><button class="secondary push" type="submit">Verify</button></div></form>{resend}"#,
                id = esc(&e.id),
                h = hidden(csrf),
                resend = button_form(&format!("/user/email/{}/resend", e.id), csrf, "Send a new code", "link"),
            );
        }
        emails.push_str(&format!(
            r#"<li><span>{}{badges}</span><span class="actions">{actions}</span>{verify}</li>"#,
            esc(&e.email)
        ));
    }
    out.push_str(&format!(
        r#"<section class="card" aria-labelledby="email-h"><h2 id="email-h">Email addresses</h2><ul class="items">{emails}</ul>
<form method="post" action="/user/email">{}<label for="new-email">Add an email address</label><input id="new-email" name="email_address" type="email" autocomplete="email">
<button class="primary" type="submit">Add address</button></form></section>"#,
        hidden(csrf)
    ));
    out.push_str(accounts);

    out.push_str(&format!(
        r#"<section class="card" aria-labelledby="pw-h"><h2 id="pw-h">Password</h2>
<form method="post" action="/user/password">{}
<label for="current_password">Current password</label><input id="current_password" name="current_password" type="password" autocomplete="current-password">
<label for="new_password">New password</label><input id="new_password" name="new_password" type="password" autocomplete="new-password">
<label><input type="checkbox" name="sign_out_of_other_sessions" value="true" checked> Sign out of all other devices</label>
<button class="primary" type="submit">Change password</button></form></section>"#,
        hidden(csrf)
    ));
    out.push_str(security);

    let mut items = String::new();
    for (s, activity) in sessions {
        let this = s.id == current;
        let label = if this { r#"<span class="badge">This device</span>"# } else { "" };
        let action = if this {
            String::new()
        } else {
            button_form(&format!("/user/sessions/{}/revoke", s.id), csrf, "Sign out", "danger")
        };
        let device = activity.summary().unwrap_or_else(|| "Unknown device".into());
        let place = match (&activity.city, &activity.country) {
            (Some(city), Some(country)) => format!(" ({city}, {country})"),
            (None, Some(country)) => format!(" ({country})"),
            _ => String::new(),
        };
        let address = activity.ip_address.as_ref().map(|ip| format!(" · {ip}{place}")).unwrap_or_default();
        items.push_str(&format!(
            r#"<li><span><strong class="device">{}</strong>{}<br>Signed in {}, active {}{label}</span><span class="actions">{action}</span></li>"#,
            esc(&device),
            esc(&address),
            esc(&ago(now, s.created_at)),
            esc(&ago(now, s.last_active_at))
        ));
    }
    out.push_str(&format!(r#"<section class="card" aria-labelledby="s-h"><h2 id="s-h">Active sessions</h2><ul class="items">{items}</ul></section>"#));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
