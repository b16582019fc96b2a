//! Authorization as Clerk's SDKs see it (clerk-compat.md §4): organization permissions packed
//! into the v2 session token's `fea` / `o.per` / `o.fpm` claims, and `has()` with the SDK's
//! semantics, so the server's own checks and an app's `auth().has()` always agree.

/// The role every permission belongs to by default, and the plain member role.
pub const ADMIN_ROLE: &str = "org:admin";
pub const MEMBER_ROLE: &str = "org:member";

/// `org:` prepended unless present (`admin` ≡ `org:admin`).
pub fn with_org_prefix(key: &str) -> String {
    if key.starts_with("org:") {
        key.to_owned()
    } else {
        format!("org:{key}")
    }
}

/// `(feature, action)` of `org:<feature>:<action>`.
pub fn parse_permission(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("org:")?;
    let (feature, action) = rest.split_once(':')?;
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (valid(feature) && valid(action)).then_some((feature, action))
}

/// System permissions (`org:sys_memberships:manage`, …) govern latchkey itself and, as in
/// Clerk, are not put into session tokens.
pub fn is_system_permission(key: &str) -> bool {
    parse_permission(key).is_some_and(|(feature, _)| feature.starts_with("sys_"))
}

/// The v2 claims that carry a member's permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedPermissions {
    /// `o:<feature>` for each feature, in first-seen order (the token's `fea`).
    pub fea: Vec<String>,
    /// The distinct actions, comma-separated (`o.per`).
    pub per: String,
    /// One decimal bitmask per feature of `fea`, comma-separated (`o.fpm`): bit j grants
    /// `org:<feature>:<per[j]>`.
    pub fpm: String,
}

/// Packs permissions for the token; system and malformed keys are left out.
pub fn pack_permissions(permissions: &[String]) -> PackedPermissions {
    let mut features: Vec<&str> = Vec::new();
    let mut actions: Vec<&str> = Vec::new();
    let mut grants: Vec<(usize, usize)> = Vec::new();
    for key in permissions.iter().filter(|k| !is_system_permission(k)) {
        let Some((feature, action)) = parse_permission(key) else {
            continue;
        };
        let f = features.iter().position(|x| *x == feature).unwrap_or_else(|| {
            features.push(feature);
            features.len() - 1
        });
        let a = actions.iter().position(|x| *x == action).unwrap_or_else(|| {
            actions.push(action);
            actions.len() - 1
        });
        grants.push((f, a));
    }
    let masks: Vec<String> = (0..features.len())
        .map(|f| {
            grants.iter().filter(|(gf, _)| *gf == f).fold(0u128, |m, (_, a)| m | (1u128 << a.min(&127))).to_string()
        })
        .collect();
    PackedPermissions {
        fea: features.iter().map(|f| format!("o:{f}")).collect(),
        per: actions.join(","),
        fpm: masks.join(","),
    }
}

/// What `@clerk/shared` decodes from `fea`, `per` and `fpm` (the inverse of
/// [`pack_permissions`]); empty when `per` or `fpm` is missing.
pub fn unpack_permissions(fea: &str, per: Option<&str>, fpm: Option<&str>) -> Vec<String> {
    let (Some(per), Some(fpm)) = (per, fpm) else {
        return Vec::new();
    };
    let actions: Vec<&str> = per.split(',').collect();
    let features: Vec<&str> = fea
        .split(',')
        .filter_map(|e| e.split_once(':'))
        .filter(|(scope, _)| scope.contains('o'))
        .map(|(_, name)| name)
        .collect();
    let mut out = Vec::new();
    for (i, mask) in fpm.split(',').enumerate() {
        let (Some(feature), Ok(mask)) = (features.get(i), mask.parse::<u128>()) else {
            continue;
        };
        for (j, action) in actions.iter().enumerate().take(128) {
            if mask & (1u128 << j) != 0 {
                out.push(format!("org:{feature}:{action}"));
            }
        }
    }
    out
}

/// How recently the user must have proven a factor (Clerk's reverification levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorLevel {
    FirstFactor,
    SecondFactor,
    MultiFactor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reverification {
    pub level: FactorLevel,
    pub after_minutes: i64,
}

impl Reverification {
    /// `strict_mfa`, `strict`, `moderate` or `lax`.
    pub fn preset(name: &str) -> Option<Self> {
        let (level, after_minutes) = match name {
            "strict_mfa" => (FactorLevel::MultiFactor, 10),
            "strict" => (FactorLevel::SecondFactor, 10),
            "moderate" => (FactorLevel::SecondFactor, 60),
            "lax" => (FactorLevel::SecondFactor, 1440),
            _ => return None,
        };
        Some(Self { level, after_minutes })
    }
}

/// The signed-in state a check runs against (what `toAuth()` exposes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthState {
    pub user_id: Option<String>,
    pub org_id: Option<String>,
    /// With the `org:` prefix.
    pub org_role: Option<String>,
    pub org_permissions: Vec<String>,
    /// Minutes since the first and the second factor; -1 when not enrolled.
    pub factor_verification_age: Option<[i64; 2]>,
}

/// One dimension of `has()`; every one asked must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Role(String),
    Permission(String),
    Reverification(Reverification),
}

/// `has()` as the SDK answers it: false without a user; roles and permissions need an active
/// organization.
pub fn has(state: &AuthState, checks: &[Check]) -> bool {
    if state.user_id.is_none() || checks.is_empty() {
        return false;
    }
    checks.iter().all(|check| match check {
        Check::Role(role) => {
            state.org_id.is_some()
                && state.org_role.as_deref().is_some_and(|r| with_org_prefix(r) == with_org_prefix(role))
        }
        Check::Permission(p) => {
            state.org_id.is_some() && state.org_permissions.iter().any(|have| *have == with_org_prefix(p))
        }
        Check::Reverification(r) => reverified(state.factor_verification_age, *r),
    })
}

fn reverified(age: Option<[i64; 2]>, r: Reverification) -> bool {
    let Some([first, second]) = age else {
        return false;
    };
    let fresh = |minutes: i64| minutes != -1 && minutes < r.after_minutes;
    match r.level {
        FactorLevel::FirstFactor => fresh(first),
        FactorLevel::SecondFactor => {
            if second == -1 {
                fresh(first)
            } else {
                fresh(second)
            }
        }
        FactorLevel::MultiFactor => {
            if second == -1 {
                fresh(first)
            } else {
                fresh(first) && fresh(second)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn packing_matches_the_sdk_example_and_round_trips() {
        // clerk-compat.md §4: `o:dashboard`, per "read,manage", fpm "3" → both permissions.
        let packed = pack_permissions(&keys(&["org:dashboard:read", "org:dashboard:manage"]));
        assert_eq!(
            packed,
            PackedPermissions { fea: vec!["o:dashboard".into()], per: "read,manage".into(), fpm: "3".into() }
        );
        let perms = keys(&[
            "org:invoices:create",
            "org:invoices:read",
            "org:reports:read",
            "org:sys_memberships:manage",
            "org:bad",
            "org:reports:export",
        ]);
        let packed = pack_permissions(&perms);
        assert_eq!(packed.fea, vec!["o:invoices", "o:reports"]);
        assert_eq!(packed.per, "create,read,export");
        assert_eq!(packed.fpm, "3,6");
        let unpacked = unpack_permissions(&packed.fea.join(","), Some(&packed.per), Some(&packed.fpm));
        assert_eq!(
            unpacked,
            keys(&["org:invoices:create", "org:invoices:read", "org:reports:read", "org:reports:export"])
        );
    }

    #[test]
    fn unpacking_skips_user_features_and_needs_both_claims() {
        assert_eq!(
            unpack_permissions("u:billing,o:dash,ou:docs", Some("read,manage"), Some("1,2")),
            keys(&["org:dash:read", "org:docs:manage"])
        );
        assert!(unpack_permissions("o:dash", None, Some("1")).is_empty());
        assert!(unpack_permissions("o:dash", Some("read"), None).is_empty());
        assert_eq!(pack_permissions(&[]), PackedPermissions { fea: vec![], per: String::new(), fpm: String::new() });
    }

    #[test]
    fn roles_and_permissions_as_the_sdk_checks_them() {
        let admin = AuthState {
            user_id: Some("user_1".into()),
            org_id: Some("org_1".into()),
            org_role: Some("org:admin".into()),
            org_permissions: keys(&["org:invoices:create"]),
            factor_verification_age: Some([5, -1]),
        };
        assert!(has(&admin, &[Check::Role("admin".into())]));
        assert!(has(&admin, &[Check::Role("org:admin".into())]));
        assert!(!has(&admin, &[Check::Role("member".into())]));
        assert!(has(&admin, &[Check::Permission("org:invoices:create".into())]));
        assert!(has(&admin, &[Check::Permission("invoices:create".into())]));
        assert!(!has(&admin, &[Check::Permission("org:invoices:delete".into())]));
        assert!(
            !has(&admin, &[Check::Role("admin".into()), Check::Permission("org:invoices:delete".into())]),
            "every check must pass"
        );
        let personal = AuthState { org_id: None, ..admin.clone() };
        assert!(!has(&personal, &[Check::Role("admin".into())]), "roles need an active organization");
        let anonymous = AuthState::default();
        assert!(!has(&anonymous, &[Check::Role("admin".into())]));
        assert!(!has(&admin, &[]));
    }

    #[test]
    fn reverification_levels() {
        let state = |age: [i64; 2]| AuthState {
            user_id: Some("u".into()),
            factor_verification_age: Some(age),
            ..Default::default()
        };
        let check = |name: &str| Check::Reverification(Reverification::preset(name).unwrap());
        assert!(has(&state([5, -1]), &[check("strict")]), "no second factor: the first counts");
        assert!(!has(&state([15, -1]), &[check("strict")]));
        assert!(has(&state([15, -1]), &[check("moderate")]));
        assert!(has(&state([900, 5]), &[check("strict")]), "the second factor decides");
        assert!(!has(&state([900, 5]), &[check("strict_mfa")]), "multi-factor needs both fresh");
        assert!(has(&state([3, 5]), &[check("strict_mfa")]));
        assert!(has(&state([1000, -1]), &[check("lax")]));
        let first = Check::Reverification(Reverification { level: FactorLevel::FirstFactor, after_minutes: 1 });
        assert!(!has(&state([1, 0]), &[first]));
        assert!(Reverification::preset("whenever").is_none());
    }
}
