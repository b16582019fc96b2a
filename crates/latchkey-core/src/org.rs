//! Organization names and slugs: what a name may be, what a slug may be, and the slug a
//! name suggests when none is given.

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_SLUG_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgFieldProblem {
    NameEmpty,
    NameTooLong,
    SlugFormat,
}

/// A trimmed name of 1 to 256 characters.
pub fn normalize_name(name: &str) -> Result<String, OrgFieldProblem> {
    let name = name.trim();
    if name.is_empty() {
        return Err(OrgFieldProblem::NameEmpty);
    }
    if name.chars().count() > MAX_NAME_CHARS || name.contains('\0') {
        return Err(OrgFieldProblem::NameTooLong);
    }
    Ok(name.to_owned())
}

/// A slug: lowercase ASCII letters, digits and single inner dashes, 1 to 64 characters.
/// Upper case is folded; anything else is refused rather than silently changed.
pub fn normalize_slug(slug: &str) -> Result<String, OrgFieldProblem> {
    let slug = slug.trim().to_ascii_lowercase();
    let ok = !slug.is_empty()
        && slug.len() <= MAX_SLUG_CHARS
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if ok {
        Ok(slug)
    } else {
        Err(OrgFieldProblem::SlugFormat)
    }
}

/// The slug a name suggests: ASCII letters and digits kept (lower-cased), everything else
/// becomes one dash; `org` when nothing is left.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if out.len() >= MAX_SLUG_CHARS - 8 {
                break;
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "org".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_joined_by_dashes() {
        assert_eq!(normalize_slug(" Acme-Inc ").unwrap(), "acme-inc");
        for bad in ["", "-acme", "acme-", "ac--me", "acme inc", "acmé", &"a".repeat(65), "a_b"] {
            assert_eq!(normalize_slug(bad), Err(OrgFieldProblem::SlugFormat), "{bad:?}");
        }
        assert_eq!(normalize_slug(&"a".repeat(64)).unwrap().len(), 64);
    }

    #[test]
    fn names_suggest_valid_slugs() {
        assert_eq!(slugify("The Smith Family!"), "the-smith-family");
        assert_eq!(slugify("  Ünïcode & Co  "), "n-code-co");
        assert_eq!(slugify("!!!"), "org");
        let long = slugify(&"word ".repeat(40));
        assert!(normalize_slug(&long).is_ok() && long.len() <= MAX_SLUG_CHARS - 8, "{long}");
        for name in ["a", "Ab Cd", "x-y", "  -- ", "12 34"] {
            assert!(normalize_slug(&slugify(name)).is_ok(), "{name}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name("  Acme ").unwrap(), "Acme");
        assert_eq!(normalize_name("   "), Err(OrgFieldProblem::NameEmpty));
        assert_eq!(normalize_name(&"é".repeat(257)), Err(OrgFieldProblem::NameTooLong));
        assert!(normalize_name(&"é".repeat(256)).is_ok());
    }
}
