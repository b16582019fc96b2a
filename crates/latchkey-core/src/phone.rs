//! Phone numbers in E.164 form (`+` and 8 to 15 digits), as Clerk stores them.

/// Normalizes spaces, dashes, dots and parentheses away; `None` if the rest is not E.164.
pub fn normalize_phone(input: &str) -> Option<String> {
    let compact: String = input.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let digits = compact.strip_prefix('+')?;
    let ok = (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
    ok.then_some(compact)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepts_e164_and_strips_punctuation() {
        assert_eq!(normalize_phone("+1 (555) 010-0199").as_deref(), Some("+15550100199"));
        assert_eq!(normalize_phone("+442071838750").as_deref(), Some("+442071838750"));
    }

    #[test]
    fn refuses_what_is_not_e164() {
        for bad in ["5550100199", "+0123456789", "+12", "+1234567890123456", "+1555abc0199", "", "+"] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }
}
