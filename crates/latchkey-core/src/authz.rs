//! Authorization as Clerk's SDKs see it (docs/backend-api.md §7): organization permissions packed
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

/// Clerk's system permissions, in the order Clerk lists them: they govern the organization
/// itself (its profile, members, domains, billing).
pub const SYSTEM_PERMISSIONS: &[&str] = &[
    "org:sys_profile:manage",
    "org:sys_profile:delete",
    "org:sys_memberships:read",
    "org:sys_memberships:manage",
    "org:sys_domains:read",
    "org:sys_domains:manage",
    "org:sys_billing:read",
    "org:sys_billing:manage",
];

pub const PROFILE_MANAGE: &str = "org:sys_profile:manage";
pub const PROFILE_DELETE: &str = "org:sys_profile:delete";
pub const MEMBERSHIPS_READ: &str = "org:sys_memberships:read";
pub const MEMBERSHIPS_MANAGE: &str = "org:sys_memberships:manage";

/// A role of the instance and the permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// `org:<name>`.
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// A custom role as configured: its key may be given with or without `org:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// The roles of an instance: `org:admin` with every permission (system and custom),
/// `org:member` with `org:sys_memberships:read`, then the custom roles. A custom role may
/// redefine `org:member`'s permissions but not the admin's. Errors name the bad entry.
pub fn instance_roles(custom_permissions: &[String], custom: &[RoleSpec]) -> Result<Vec<Role>, String> {
    let mut custom_perms: Vec<String> = Vec::new();
    let mut declare = |key: &str| -> Result<(), String> {
        if parse_permission(key).is_none() {
            return Err(format!("{key:?} is not a permission of the form org:<feature>:<action>"));
        }
        if is_system_permission(key) && !SYSTEM_PERMISSIONS.contains(&key) {
            return Err(format!("{key:?} is not one of the system permissions"));
        }
        if !is_system_permission(key) && !custom_perms.iter().any(|p| p == key) {
            custom_perms.push(key.to_owned());
        }
        Ok(())
    };
    for p in custom_permissions {
        declare(p)?;
    }
    for r in custom {
        for p in &r.permissions {
            declare(p)?;
        }
    }
    let mut admin: Vec<String> = SYSTEM_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect();
    admin.extend(custom_perms.iter().cloned());
    let mut roles = vec![
        Role {
            key: ADMIN_ROLE.into(),
            name: "Admin".into(),
            description: "Manages the organization, its members and its settings; holds every permission.".into(),
            permissions: admin,
        },
        Role {
            key: MEMBER_ROLE.into(),
            name: "Member".into(),
            description: "Sees the organization and its members.".into(),
            permissions: vec![MEMBERSHIPS_READ.into()],
        },
    ];
    for r in custom {
        let key = with_org_prefix(r.key.trim());
        let name_ok = key.len() > 4
            && key.len() <= 64
            && key[4..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok {
            return Err(format!("role key {:?} must be org:<name> with lowercase letters, digits, _ or -", r.key));
        }
        if key == ADMIN_ROLE {
            return Err("org:admin holds every permission and cannot be redefined".into());
        }
        let role = Role {
            name: if r.name.trim().is_empty() { key[4..].to_owned() } else { r.name.trim().to_owned() },
            key: key.clone(),
            description: r.description.clone(),
            permissions: r.permissions.clone(),
        };
        match roles.iter_mut().find(|x| x.key == key) {
            Some(existing) if key == MEMBER_ROLE => *existing = role,
            Some(_) => return Err(format!("role {key} is defined twice")),
            None => roles.push(role),
        }
    }
    Ok(roles)
}

/// The permissions a member holds with `role` (none for a role the instance no longer has).
pub fn role_permissions<'a>(roles: &'a [Role], role: &str) -> &'a [String] {
    roles.iter().find(|r| r.key == role).map(|r| r.permissions.as_slice()).unwrap_or(&[])
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
        // docs/backend-api.md §7: `o:dashboard`, per "read,manage", fpm "3" → both permissions.
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

    #[test]
    fn instance_roles_give_the_admin_everything_and_check_their_input() {
        let spec = |key: &str, perms: &[&str]| RoleSpec {
            key: key.into(),
            name: String::new(),
            description: String::new(),
            permissions: keys(perms),
        };
        let roles =
            instance_roles(&keys(&["org:invoices:create"]), &[spec("billing", &["org:invoices:read"])]).unwrap();
        let admin = role_permissions(&roles, ADMIN_ROLE);
        for p in SYSTEM_PERMISSIONS.iter().chain(["org:invoices:create", "org:invoices:read"].iter()) {
            assert!(admin.iter().any(|a| a == p), "admin lacks {p}");
        }
        assert_eq!(role_permissions(&roles, MEMBER_ROLE), keys(&[MEMBERSHIPS_READ]));
        assert_eq!(role_permissions(&roles, "org:billing"), keys(&["org:invoices:read"]));
        assert_eq!(roles[2].name, "billing");
        assert!(role_permissions(&roles, "org:gone").is_empty());
        let member = instance_roles(&[], &[spec("org:member", &["org:feed:read"])]).unwrap();
        assert_eq!(role_permissions(&member, MEMBER_ROLE), keys(&["org:feed:read"]), "member may be redefined");
        assert!(instance_roles(&[], &[spec("admin", &[])]).is_err());
        assert!(instance_roles(&[], &[spec("Bad Key", &[])]).is_err());
        assert!(instance_roles(&[], &[spec("x", &[]), spec("org:x", &[])]).is_err(), "twice");
        assert!(instance_roles(&keys(&["invoices:create"]), &[]).is_err());
        assert!(instance_roles(&keys(&["org:sys_made_up:read"]), &[]).is_err());
    }
}
