//! Email address syntax and normalisation. Addresses are compared in lower case; the
//! syntax check is deliberately modest (the verification code is the real proof).

pub const MAX_EMAIL_LEN: usize = 254;

/// Returns the normalised (trimmed, lower-cased) address, or `None` when it is not an address.
pub fn normalize_email(input: &str) -> Option<String> {
    let email = input.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return None;
    }
    let (local, domain) = email.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    (local_ok && domain_ok).then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(normalize_email(" Bob@Example.COM ").as_deref(), Some("bob@example.com"));
        assert_eq!(normalize_email("a.b+tag@sub.example.org").as_deref(), Some("a.b+tag@sub.example.org"));
    }

    #[test]
    fn refuses_non_addresses() {
        for bad in [
            "",
            "bob",
            "bob@",
            "@example.com",
            "bob@example",
            "bob@@example.com",
            "b ob@example.com",
            "bob@-example.com",
            ".bob@example.com",
            "bob@example..com",
            "<script>@x.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
        assert_eq!(normalize_email(&format!("{}@example.com", "a".repeat(250))), None);
    }
}
