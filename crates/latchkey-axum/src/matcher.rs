//! `RouteMatcher`: Clerk's `createRouteMatcher` (clerk-compat.md §8). Strings compile the way
//! `path-to-regexp` v6 compiles them for `@clerk/nextjs` — case-insensitive, an optional
//! trailing slash, anchored at both ends — and match the path after percent-decoding and
//! collapsing `//`; regular expressions and predicates are accepted too.

use std::sync::Arc;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

type Predicate = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

#[derive(Clone)]
enum Rule {
    Pattern(Regex),
    Predicate(Predicate),
}

/// A set of routes; a request matches if any rule does.
#[derive(Clone, Default)]
pub struct RouteMatcher {
    rules: Vec<Rule>,
}

impl std::fmt::Debug for RouteMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMatcher").field("rules", &self.rules.len()).finish()
    }
}

impl RouteMatcher {
    /// Patterns such as `/sign-in(.*)`, `/api/:id`, `/dashboard/:path*`.
    pub fn new<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut m = Self::default();
        for p in patterns {
            m = m.pattern(p.as_ref())?;
        }
        Ok(m)
    }

    pub fn pattern(mut self, pattern: &str) -> Result<Self, PatternError> {
        self.rules.push(Rule::Pattern(compile(pattern)?));
        Ok(self)
    }

    /// A regular expression, tested against the path as given (like a `RegExp` in Clerk).
    pub fn regex(mut self, re: Regex) -> Self {
        self.rules.push(Rule::Pattern(re));
        self
    }

    pub fn predicate(mut self, f: impl Fn(&http::request::Parts) -> bool + Send + Sync + 'static) -> Self {
        self.rules.push(Rule::Predicate(Arc::new(f)));
        self
    }

    /// Whether the path (as `nextUrl.pathname` would be: decoded, `//` collapsed) matches.
    /// A path whose percent-encoding is malformed matches nothing.
    pub fn matches_path(&self, path: &str) -> bool {
        let Some(path) = normalize(path) else {
            return false;
        };
        self.rules.iter().any(|r| match r {
            Rule::Pattern(re) => re.is_match(&path),
            Rule::Predicate(_) => false,
        })
    }

    pub fn matches(&self, parts: &http::request::Parts) -> bool {
        // Most guards have few rules; an empty matcher costs nothing.
        if self.rules.is_empty() {
            return false;
        }
        let Some(path) = normalize(parts.uri.path()) else {
            return false;
        };
        self.rules.iter().any(|r| match r {
            Rule::Pattern(re) => re.is_match(&path),
            Rule::Predicate(f) => f(parts),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// One compiled string pattern, whose `:name` parameters can be read from a matching path.
#[derive(Debug, Clone)]
pub struct RoutePattern(Regex);

impl RoutePattern {
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        compile(pattern).map(Self)
    }

    /// `None` when the path does not match; else the value of `name` (if the pattern has it).
    pub fn param(&self, path: &str, name: &str) -> Option<Option<String>> {
        let path = normalize(path)?;
        let caps = self.0.captures(&path)?;
        Some(caps.name(name).map(|m| m.as_str().to_owned()))
    }

    pub fn matches(&self, path: &str) -> bool {
        normalize(path).is_some_and(|p| self.0.is_match(&p))
    }
}

/// Percent-decodes (failing on malformed encoding or invalid UTF-8) and collapses `//`.
pub fn normalize(path: &str) -> Option<String> {
    // The common case needs no work beyond one copy.
    if !path.contains('%') && !path.contains("//") {
        return Some(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    let mut collapsed = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        if c == '/' && collapsed.ends_with('/') {
            continue;
        }
        collapsed.push(c);
    }
    Some(collapsed)
}

const DEFAULT_SEGMENT: &str = r"[^/#?]+?";

/// path-to-regexp v6's `pathToRegexp(pattern, [], {sensitive: false, strict: false, end: true})`
/// for the syntax Clerk's users write: literals, `:name`, `(regex)`, `{…}` groups and the
/// modifiers `?`, `*`, `+`; a `/` or `.` just before a parameter is its optional prefix.
pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let err = |reason: &str| PatternError { pattern: pattern.to_owned(), reason: reason.to_owned() };
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("(?i)^");
    let mut literal = String::new();
    let mut i = 0;
    let flush = |literal: &mut String, re: &mut String| {
        re.push_str(&regex::escape(literal));
        literal.clear();
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let next = chars.get(i + 1).ok_or_else(|| err("ends with a backslash"))?;
                literal.push(*next);
                i += 2;
            }
            ':' | '(' => {
                let mut name = String::new();
                if c == ':' {
                    i += 1;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        name.push(chars[i]);
                        i += 1;
                    }
                    if name.is_empty() {
                        return Err(err("a parameter needs a name after ':'"));
                    }
                }
                let inner = if chars.get(i) == Some(&'(') {
                    let (group, next) = read_group(&chars, i).ok_or_else(|| err("an unbalanced '('"))?;
                    i = next;
                    if group.is_empty() {
                        return Err(err("an empty '()' group"));
                    }
                    if group.starts_with('?') {
                        return Err(err("capturing groups only: '(?' is not allowed"));
                    }
                    group
                } else {
                    DEFAULT_SEGMENT.to_owned()
                };
                let modifier = match chars.get(i) {
                    Some(m @ ('?' | '*' | '+')) => {
                        i += 1;
                        Some(*m)
                    }
                    _ => None,
                };
                // A `/` or `.` right before the parameter is its prefix.
                let prefix = match literal.chars().last() {
                    Some(p @ ('/' | '.')) => {
                        literal.pop();
                        p.to_string()
                    }
                    _ => String::new(),
                };
                flush(&mut literal, &mut re);
                let p = regex::escape(&prefix);
                // `:name` becomes a named group, so callers can read the parameter.
                let open = if name.is_empty() { "(".to_owned() } else { format!("(?P<{name}>") };
                re.push_str(&match modifier {
                    None => format!("(?:{p}{open}{inner}))"),
                    Some('?') => format!("(?:{p}{open}{inner}))?"),
                    Some(m) if !prefix.is_empty() => {
                        let rep = format!("(?:{p}(?:{inner}))");
                        let tail = if m == '*' { "?" } else { "" };
                        format!("(?:{p}{open}(?:{inner})(?:{rep})*)){tail}")
                    }
                    Some(m) => format!("{open}{inner}){m}"),
                });
            }
            '{' => {
                let close = chars[i + 1..].iter().position(|&x| x == '}').ok_or_else(|| err("an unbalanced '{'"))?;
                let body: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                let modifier = match chars.get(i) {
                    Some(m @ ('?' | '*' | '+')) => {
                        i += 1;
                        m.to_string()
                    }
                    _ => String::new(),
                };
                flush(&mut literal, &mut re);
                let inner = compile(&body)?;
                let inner = inner.as_str().trim_start_matches("(?i)^").trim_end_matches("[/#?]?$");
                re.push_str(&format!("(?:{inner}){modifier}"));
            }
            ')' | '}' => return Err(err("an unbalanced closing bracket")),
            _ => {
                literal.push(c);
                i += 1;
            }
        }
    }
    flush(&mut literal, &mut re);
    re.push_str("[/#?]?$");
    Regex::new(&re).map_err(|e| err(&e.to_string()))
}

/// The text of a `(…)` group starting at `start`, and the index after it.
fn read_group(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut depth = 0;
    let mut out = String::new();
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            out.push(c);
            out.push(*chars.get(i + 1)?);
            i += 2;
            continue;
        }
        if c == '(' {
            depth += 1;
            if depth == 1 {
                i += 1;
                continue;
            }
        } else if c == ')' {
            depth -= 1;
            if depth == 0 {
                return Some((out, i + 1));
            }
        }
        out.push(c);
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(p: &str) -> RouteMatcher {
        RouteMatcher::new([p]).unwrap()
    }

    /// The examples of clerk-compat.md §8.
    #[test]
    fn clerk_examples() {
        let sign_in = m("/sign-in(.*)");
        for yes in ["/sign-in", "/sign-in/x", "/sign-inx", "/SIGN-IN", "/sign-in/"] {
            assert!(sign_in.matches_path(yes), "{yes}");
        }
        assert!(!sign_in.matches_path("/sign"));
        assert!(!sign_in.matches_path("/x/sign-in"));

        let api_slash = m("/api/(.*)");
        assert!(api_slash.matches_path("/api/x") && api_slash.matches_path("/api/"));
        assert!(!api_slash.matches_path("/api"), "/api/(.*) does not match /api");
        let api = m("/api(.*)");
        assert!(api.matches_path("/api") && api.matches_path("/apix") && api.matches_path("/api/items"));

        let dash = m("/dashboard");
        assert!(dash.matches_path("/dashboard") && dash.matches_path("/dashboard/") && dash.matches_path("/Dashboard"));
        assert!(!dash.matches_path("/dashboard/x") && !dash.matches_path("/dashboardx"));

        let deep = m("/dashboard/:path*");
        for yes in ["/dashboard", "/dashboard/", "/dashboard/a", "/dashboard/a/b/c"] {
            assert!(deep.matches_path(yes), "{yes}");
        }
        assert!(!deep.matches_path("/dashboardx"));

        let named = RoutePattern::new("/orgs/:org_id/(.*)").unwrap();
        assert_eq!(named.param("/orgs/org_9/data", "org_id"), Some(Some("org_9".into())));
        assert_eq!(named.param("/elsewhere", "org_id"), None);
        let org = m("/org/:id");
        assert!(org.matches_path("/org/org_123") && org.matches_path("/org/org_123/"));
        assert!(!org.matches_path("/org/a/b") && !org.matches_path("/org") && !org.matches_path("/org/"));
    }

    #[test]
    fn decoding_collapsing_and_malformed_paths() {
        let api = m("/api/items");
        assert!(api.matches_path("//api//items"), "// collapses");
        assert!(m("/caf\u{e9}").matches_path("/caf%C3%A9"), "percent-decoded");
        assert!(!api.matches_path("/api/%zz"), "malformed encoding matches nothing");
        assert!(!m("/api/(.*)").matches_path("/api/%E0%A4%A"), "truncated escape");
        assert_eq!(normalize("/a%2Fb"), Some("/a/b".into()));
    }

    #[test]
    fn modifiers_groups_and_several_patterns() {
        let opt = m("/files/:name?");
        assert!(opt.matches_path("/files") && opt.matches_path("/files/a") && !opt.matches_path("/files/a/b"));
        let plus = m("/files/:rest+");
        assert!(!plus.matches_path("/files") && plus.matches_path("/files/a/b"));
        let custom = m("/users/:id(\\d+)");
        assert!(custom.matches_path("/users/42") && !custom.matches_path("/users/abc"));
        let group = m("/shop{/:lang}?/cart");
        assert!(group.matches_path("/shop/cart") && group.matches_path("/shop/en/cart"));
        let dots = m("/file.:ext");
        assert!(dots.matches_path("/file.txt"));
        let escaped = m("/a\\(b\\)");
        assert!(escaped.matches_path("/a(b)"));
        let public = RouteMatcher::new(["/api/webhooks(.*)", "/api/health", "/api/public(.*)"]).unwrap();
        for yes in ["/api/webhooks/stripe", "/api/health", "/api/public"] {
            assert!(public.matches_path(yes), "{yes}");
        }
        assert!(!public.matches_path("/api/items"));
        for bad in ["/x/:", "/x/(", "/x/()", "/x)", "/x{a", "\\"] {
            assert!(RouteMatcher::new([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn regexes_and_predicates() {
        let re = RouteMatcher::default().regex(Regex::new("^/admin").unwrap());
        assert!(re.matches_path("/admin/x") && !re.matches_path("/x/admin"));
        let pred = RouteMatcher::default().predicate(|p| p.method == http::Method::POST);
        let (post, _) = http::Request::post("/anything").body(()).unwrap().into_parts();
        let (get, _) = http::Request::get("/anything").body(()).unwrap().into_parts();
        assert!(pred.matches(&post) && !pred.matches(&get));
    }
}
