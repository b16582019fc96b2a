//! JWT template claims: a JSON object whose strings may hold shortcodes such as
//! `{{user.id}}`, `{{user.public_metadata.plan}}` or `{{org.role || 'none'}}`.
//!
//! A string that is exactly one shortcode becomes the value it names, with its JSON type
//! (`null` when absent); shortcodes inside longer strings are interpolated as text (absent →
//! empty). `a || b || 'literal'` takes the first alternative that is present and not empty.

use serde_json::{Map, Value};

/// Claims a template may not set: the issuer sets them on every token.
pub const RESERVED_CLAIMS: &[&str] = &["azp", "exp", "iat", "iss", "jti", "nbf", "sub"];

/// The objects shortcodes may start from.
pub const ROOTS: &[&str] = &["user", "org", "session"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    NotAnObject,
    Reserved(String),
    Syntax(String),
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateProblem::NotAnObject => write!(f, "claims must be a JSON object"),
            TemplateProblem::Reserved(c) => write!(f, "the claim `{c}` is reserved and set by latchkey"),
            TemplateProblem::Syntax(s) => write!(f, "invalid shortcode: {s}"),
        }
    }
}

/// Checks a claims template: an object, no reserved claim, every shortcode well formed.
pub fn validate(claims: &Value) -> Result<(), TemplateProblem> {
    let Value::Object(map) = claims else {
        return Err(TemplateProblem::NotAnObject);
    };
    if let Some(key) = map.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
        return Err(TemplateProblem::Reserved(key.clone()));
    }
    validate_value(claims)
}

fn validate_value(v: &Value) -> Result<(), TemplateProblem> {
    match v {
        Value::String(s) => {
            for expr in shortcodes(s)? {
                for alt in alternatives(expr) {
                    parse_alternative(alt)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(validate_value),
        Value::Object(map) => map.values().try_for_each(validate_value),
        _ => Ok(()),
    }
}

/// Renders the template against `context` (an object with `user`, `org`, `session`).
pub fn render(claims: &Value, context: &Value) -> Value {
    match claims {
        Value::String(s) => render_string(s, context),
        Value::Array(items) => Value::Array(items.iter().map(|i| render(i, context)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), render(v, context))).collect::<Map<_, _>>())
        }
        other => other.clone(),
    }
}

fn render_string(s: &str, context: &Value) -> Value {
    let trimmed = s.trim();
    if let Some(inner) = trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        if !inner.contains("{{") && !inner.contains("}}") {
            return evaluate(inner, context);
        }
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Value::String(out);
        };
        match evaluate(&after[..end], context) {
            Value::Null => {}
            Value::String(text) => out.push_str(&text),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}

fn evaluate(expr: &str, context: &Value) -> Value {
    for alt in alternatives(expr) {
        let value = match parse_alternative(alt) {
            Ok(Alternative::Literal(v)) => v,
            Ok(Alternative::Path(path)) => lookup(context, &path),
            Err(_) => Value::Null,
        };
        let empty = matches!(&value, Value::Null) || matches!(&value, Value::String(s) if s.is_empty());
        if !empty {
            return value;
        }
    }
    Value::Null
}

fn lookup(context: &Value, path: &[&str]) -> Value {
    let mut at = context;
    for segment in path {
        match at.get(segment) {
            Some(next) => at = next,
            None => return Value::Null,
        }
    }
    at.clone()
}

enum Alternative<'a> {
    Literal(Value),
    Path(Vec<&'a str>),
}

fn alternatives(expr: &str) -> impl Iterator<Item = &str> {
    expr.split("||").map(str::trim)
}

fn parse_alternative(alt: &str) -> Result<Alternative<'_>, TemplateProblem> {
    let quoted = |q: char| alt.len() >= 2 && alt.starts_with(q) && alt.ends_with(q);
    if quoted('\'') || quoted('"') {
        return Ok(Alternative::Literal(Value::String(alt[1..alt.len() - 1].to_owned())));
    }
    if let Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) = serde_json::from_str::<Value>(alt) {
        return Ok(Alternative::Literal(v));
    }
    let path: Vec<&str> = alt.split('.').collect();
    let well_formed = path.iter().all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !well_formed || !ROOTS.contains(&path[0]) {
        return Err(TemplateProblem::Syntax(format!(
            "`{alt}` is not a shortcode; use user.*, org.* or session.*, or a quoted literal"
        )));
    }
    Ok(Alternative::Path(path))
}

/// The expressions between `{{` and `}}` in `s`.
fn shortcodes(s: &str) -> Result<Vec<&str>, TemplateProblem> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateProblem::Syntax(format!("unclosed `{{{{` in `{s}`")))?;
        found.push(&after[..end]);
        rest = &after[end + 2..];
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({
            "user": {"id": "user_1", "first_name": "Ada", "last_name": null, "primary_email_address": "ada@example.com",
                     "public_metadata": {"plan": "pro", "seats": 3, "flags": {"beta": true}}},
            "org": {"id": null, "role": null},
        })
    }

    #[test]
    fn whole_string_shortcodes_keep_their_json_type() {
        let claims = json!({"uid": "{{user.id}}", "seats": "{{ user.public_metadata.seats }}", "flags": "{{user.public_metadata.flags}}", "org": "{{org.id}}"});
        assert_eq!(
            render(&claims, &context()),
            json!({"uid": "user_1", "seats": 3, "flags": {"beta": true}, "org": null})
        );
    }

    #[test]
    fn interpolation_fallbacks_and_nesting() {
        let claims = json!({
            "greeting": "Hi {{user.first_name}} {{user.last_name}}!",
            "role": "{{org.role || 'member'}}",
            "plan": "{{user.public_metadata.missing || user.public_metadata.plan}}",
            "nested": {"list": ["{{user.primary_email_address}}", 7, "plain"]},
            "aud": "other-backend",
        });
        assert_eq!(
            render(&claims, &context()),
            json!({"greeting": "Hi Ada !", "role": "member", "plan": "pro", "nested": {"list": ["ada@example.com", 7, "plain"]}, "aud": "other-backend"})
        );
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(validate(&json!([])), Err(TemplateProblem::NotAnObject));
        assert_eq!(validate(&json!({"sub": "x"})), Err(TemplateProblem::Reserved("sub".into())));
        assert!(matches!(validate(&json!({"a": "{{user.id"})), Err(TemplateProblem::Syntax(_))));
        assert!(matches!(validate(&json!({"a": "{{secrets.key}}"})), Err(TemplateProblem::Syntax(_))));
        assert!(matches!(validate(&json!({"a": {"b": ["{{user..id}}"]}})), Err(TemplateProblem::Syntax(_))));
        assert_eq!(validate(&json!({"a": "{{user.id || 'x' || 3}}", "aud": "b"})), Ok(()));
    }
}
