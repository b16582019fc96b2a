//! Email address syntax and normalisation. Addresses are compared in lower case; the
//! syntax check is deliberately modest (the verification code is the real proof).

pub const MAX_EMAIL_LEN: usize = 254;

/// Returns the normalised address — trimmed, lower-cased, its domain in the ASCII form mail
/// relays deliver to (UTS-46: `ｅxample.org` and `xn--…` spellings are one domain, so they
/// share one address's budgets) — or `None` when it is not an address.
pub fn normalize_email(input: &str) -> Option<String> {
    let trimmed = input.trim().to_lowercase();
    let (local, domain) = trimmed.rsplit_once('@')?;
    let domain = idna::domain_to_ascii(domain).ok()?;
    let email = format!("{local}@{domain}");
    if local.is_empty() || email.len() > MAX_EMAIL_LEN {
        return None;
    }
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
    fn domains_take_the_ascii_form_relays_deliver_to() {
        for variant in ["victim@ｅxample.org", "victim@exａmple.org", "victim@EXAMPLE.org"] {
            assert_eq!(normalize_email(variant).as_deref(), Some("victim@example.org"), "{variant}");
        }
        assert_eq!(normalize_email("ana@bücher.example").as_deref(), Some("ana@xn--bcher-kva.example"));
        assert_eq!(normalize_email("ana@xn--bcher-kva.example").as_deref(), Some("ana@xn--bcher-kva.example"));
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
