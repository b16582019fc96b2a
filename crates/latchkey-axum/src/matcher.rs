//! `RouteMatcher`: Clerk's `createRouteMatcher` (docs/backend-api.md §11). Strings compile the way
//! `path-to-regexp` v6 compiles them for `@clerk/nextjs` — case-insensitive, an optional
//! trailing slash, anchored at both ends — and match the path in its canonical form
//! ([`canonical_path`]); regular expressions and predicates are accepted too.
//!
//! A path that is not canonical (dot segments, `//`, malformed escapes) matches nothing, and
//! the guard and the proxy answer it with 400 before any rule is read: a check must never
//! judge one path while the application serves another (`/public/../admin`).

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

    /// Whether the path, in its canonical form, matches. A path that is not canonical matches
    /// nothing.
    pub fn matches_path(&self, path: &str) -> bool {
        let Ok(path) = canonical_path(path, Slashes::KeepEncoded) else {
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
        let Ok(path) = canonical_path(parts.uri.path(), Slashes::KeepEncoded) else {
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
        let path = canonical_path(path, Slashes::KeepEncoded).ok()?;
        let caps = self.0.captures(&path)?;
        Some(caps.name(name).map(|m| decode_kept(m.as_str())))
    }

    pub fn matches(&self, path: &str) -> bool {
        canonical_path(path, Slashes::KeepEncoded).is_ok_and(|p| self.0.is_match(&p))
    }
}

/// What an encoded slash (`%2F`) or a backslash in a segment means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slashes {
    /// Part of its segment: `%2F` stays encoded so a `:param` never splits at it (an axum app
    /// routes on the raw path, where `%2F` is not a separator).
    KeepEncoded,
    /// Refused, with backslashes: in front of an application whose framework may decode `%2F`
    /// or read `\` as `/` before routing (`latchkey proxy`), such a path is ambiguous.
    Refuse,
}

/// Why a path is not canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    #[error("the path is not absolute")]
    NotAbsolute,
    #[error("the path has a malformed percent-escape or is not UTF-8")]
    Malformed,
    #[error("the path has a `.` or `..` segment")]
    DotSegment,
    #[error("the path has an empty segment (`//`)")]
    EmptySegment,
    #[error("the path has an encoded slash or a backslash")]
    AmbiguousSlash,
    #[error("the path has a `;` parameter")]
    Parameter,
    #[error("the path has a control character")]
    ControlCharacter,
}

/// The canonical form of a request path: each segment percent-decoded (except `%2F`, kept as
/// `%2F` in [`Slashes::KeepEncoded`]). A path with a `.` or `..` segment (in any encoding, or
/// followed by `;params`), an empty segment other than a trailing one, a malformed escape, a
/// control character, or (with [`Slashes::Refuse`]) an encoded slash, a backslash or a `;`
/// parameter has no canonical form: the caller answers 400, because an
/// application or a proxy further on may resolve it to another path than the one checked.
pub fn canonical_path(raw: &str, slashes: Slashes) -> Result<String, PathProblem> {
    let rest = raw.strip_prefix('/').ok_or(PathProblem::NotAbsolute)?;
    // The common case: nothing to decode, nothing to refuse.
    let plain = !rest.bytes().any(|b| matches!(b, b'%' | b'\\' | b'.' | b';') || b.is_ascii_control());
    if plain && !raw.contains("//") {
        return Ok(raw.to_owned());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let mut out = String::with_capacity(raw.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if segment.is_empty() && !last {
            return Err(PathProblem::EmptySegment);
        }
        let decoded = decode_segment(segment, slashes)?;
        // Servlet containers (Tomcat, Jetty, Spring) drop `;params` before resolving dots, so
        // `..;` is a `..` to them.
        let before_params = decoded.split(';').next().unwrap_or("");
        if before_params == "." || before_params == ".." {
            return Err(PathProblem::DotSegment);
        }
        if slashes == Slashes::Refuse && decoded.contains(';') {
            return Err(PathProblem::Parameter);
        }
        if decoded.chars().any(char::is_control) {
            return Err(PathProblem::ControlCharacter);
        }
        out.push('/');
        out.push_str(&decoded);
    }
    Ok(out)
}

/// A piece of a canonical path with its kept escapes (`%2F`, `%25`) decoded.
fn decode_kept(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let Some(escape) = rest.get(at..at + 3) else {
            out.push_str(&rest[at..]);
            return out;
        };
        match escape {
            "%2F" => out.push('/'),
            "%25" => out.push('%'),
            other => out.push_str(other),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

fn decode_segment(segment: &str, slashes: Slashes) -> Result<String, PathProblem> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathProblem::Malformed)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathProblem::Malformed)?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| PathProblem::Malformed)?;
            match (byte, slashes) {
                (b'/' | b'\\', Slashes::Refuse) => return Err(PathProblem::AmbiguousSlash),
                // Kept encoded, and so is `%` itself, so that `%2F` in the result always means
                // an encoded slash (`%252F` was a `%` followed by `2F`).
                (b'/', Slashes::KeepEncoded) => out.extend_from_slice(b"%2F"),
                (b'%', Slashes::KeepEncoded) => out.extend_from_slice(b"%25"),
                (byte, _) => out.push(byte),
            }
            i += 3;
        } else {
            if bytes[i] == b'\\' && slashes == Slashes::Refuse {
                return Err(PathProblem::AmbiguousSlash);
            }
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathProblem::Malformed)
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

    /// The examples of docs/backend-api.md §11.
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
    fn decoding_and_paths_without_a_canonical_form() {
        let api = m("/api/items");
        assert!(!api.matches_path("//api//items"), "`//` is not canonical");
        assert!(m("/caf\u{e9}").matches_path("/caf%C3%A9"), "percent-decoded");
        assert!(!api.matches_path("/api/%zz"), "malformed encoding matches nothing");
        assert!(!m("/api/(.*)").matches_path("/api/%E0%A4%A"), "truncated escape");
        let keep = |p| canonical_path(p, Slashes::KeepEncoded);
        let refuse = |p| canonical_path(p, Slashes::Refuse);
        assert_eq!(keep("/a%2fb"), Ok("/a%2Fb".into()), "an encoded slash stays in its segment");
        assert_eq!(refuse("/a%2Fb"), Err(PathProblem::AmbiguousSlash));
        assert_eq!(refuse("/a\\b"), Err(PathProblem::AmbiguousSlash));
        assert_eq!(refuse("/a%5cb"), Err(PathProblem::AmbiguousSlash));
        for dots in ["/webhooks/../admin", "/x/%2e%2e/admin", "/x/.%2E/y", "/./x", "/x/.", "/x/..", "/%2E"] {
            assert_eq!(keep(dots), Err(PathProblem::DotSegment), "{dots}");
        }
        assert_eq!(keep("/a//b"), Err(PathProblem::EmptySegment));
        for dots in ["/webhooks/..;/admin", "/x/%2e%2e;x/admin", "/x/.;/y"] {
            assert_eq!(keep(dots), Err(PathProblem::DotSegment), "{dots}");
        }
        assert_eq!(refuse("/admin;x/secret"), Err(PathProblem::Parameter));
        assert_eq!(refuse("/admin%3bx/secret"), Err(PathProblem::Parameter));
        assert_eq!(keep("/a;b"), Ok("/a;b".into()), "axum routes `;` literally");
        assert_eq!(keep("/a%00b"), Err(PathProblem::ControlCharacter));
        assert_eq!(refuse("/..%00"), Err(PathProblem::ControlCharacter));
        assert_eq!(keep("//admin/x"), Err(PathProblem::EmptySegment), "a leading `//` too");
        assert_eq!(keep("/a/b/"), Ok("/a/b/".into()), "a trailing slash is canonical");
        assert_eq!(keep("/file..json/.well-known/x.y"), Ok("/file..json/.well-known/x.y".into()));
        assert_eq!(keep("relative"), Err(PathProblem::NotAbsolute));
        assert_eq!(keep("/"), Ok("/".into()));
        let file = RoutePattern::new("/files/:name").unwrap();
        assert_eq!(file.param("/files/a%2Fb", "name"), Some(Some("a/b".into())), "%2F does not split a parameter");
        assert_eq!(file.param("/files/a%252Fb", "name"), Some(Some("a%2Fb".into())), "an encoded %");
        assert_eq!(file.param("/files/100%25", "name"), Some(Some("100%".into())));
        assert!(!m("/files/:name").matches_path("/files/a/b"));
    }

    /// Pieces of paths an attacker writes: dots and slashes in every encoding and case.
    fn piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "admin",
            "webhooks",
            "orgs",
            "org_a",
            "org_b",
            "data",
            "x",
            "",
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2e",
            ".%2E",
            "%2E.",
            "...",
            "..;",
            "..;x",
            "%2e%2e%3b",
            ";jsessionid=1",
            "%00",
            "%3B",
            "%2f",
            "%2F",
            "%5c",
            "%5C",
            "\\",
            "a%2Fb",
            "%252e%252e",
            "%25",
            "caf%C3%A9",
            "%zz",
            ";",
            "a.b",
        ])
    }

    proptest::proptest! {
        /// Whatever resolves dot segments and decodes escapes (a WHATWG URL parser here, as
        /// browsers and many frameworks do) reads a path with a canonical form (no `%2F`, no
        /// backslash allowed) as exactly that form; every other path is refused.
        #[test]
        fn a_canonical_path_is_what_any_resolver_reads(pieces in proptest::collection::vec(piece(), 0..7)) {
            let raw = format!("/{}", pieces.join("/"));
            if let Ok(canonical) = canonical_path(&raw, Slashes::Refuse) {
                let resolved = url::Url::parse(&format!("http://h{raw}")).unwrap();
                let decoded = decode_all(resolved.path());
                proptest::prop_assert_eq!(&decoded, &canonical, "{}", raw);
                proptest::prop_assert!(!canonical.split('/').any(|s| s == "." || s == ".."));
                proptest::prop_assert!(!has_inner_empty_segment(&canonical), "{}", canonical);
            }
        }

        /// With encoded slashes kept, a canonical path still has no dot segment and its
        /// parameters never split at an encoded slash.
        #[test]
        fn kept_slashes_stay_inside_their_segment(pieces in proptest::collection::vec(piece(), 1..6)) {
            let raw = format!("/{}", pieces.join("/"));
            if let Ok(canonical) = canonical_path(&raw, Slashes::KeepEncoded) {
                proptest::prop_assert_eq!(canonical.matches('/').count(), raw.matches('/').count());
                proptest::prop_assert!(!canonical.split('/').any(|s| s == "." || s == ".."));
                proptest::prop_assert!(!has_inner_empty_segment(&canonical), "{}", canonical);
            }
        }
    }

    /// `//` anywhere but a trailing `/`: what lenient routers collapse.
    fn has_inner_empty_segment(path: &str) -> bool {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        path.starts_with("//") || segments[..segments.len().saturating_sub(1)].iter().any(|s| s.is_empty())
    }

    fn decode_all(path: &str) -> String {
        let mut out = Vec::new();
        let bytes = path.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let escape = (bytes[i] == b'%')
                .then(|| bytes.get(i + 1..i + 3))
                .flatten()
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match escape {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
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
