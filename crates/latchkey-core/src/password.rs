//! Password policy (NIST SP 800-63B, OWASP ASVS V6): 8 to 256 code points, no composition
//! rules, no truncation or case folding, and the 10,000 most common passwords refused.

use std::collections::HashSet;
use std::io::Read;
use std::sync::OnceLock;

pub const MIN_CODE_POINTS: usize = 8;
pub const MAX_CODE_POINTS: usize = 256;

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    Common,
}

/// Checks a proposed password. Existing passwords are never re-checked at sign-in.
pub fn check_new_password(password: &str) -> Result<(), PasswordProblem> {
    let len = password.chars().count();
    if len < MIN_CODE_POINTS {
        return Err(PasswordProblem::TooShort);
    }
    if len > MAX_CODE_POINTS {
        return Err(PasswordProblem::TooLong);
    }
    if is_common(password) {
        return Err(PasswordProblem::Common);
    }
    Ok(())
}

/// True when the password is in the common list (compared case-insensitively, so that
/// `Password1` is caught as well as `password1`).
pub fn is_common(password: &str) -> bool {
    common_list().contains(password.to_lowercase().as_str())
}

fn common_list() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        // Django's list (BSD), first 10,000 entries: see data/COMMON-PASSWORDS-LICENSE.txt.
        const GZ: &[u8] = include_bytes!("../data/common-passwords.txt.gz");
        let mut text = String::new();
        let mut decoder = flate2::read::GzDecoder::new(GZ);
        if decoder.read_to_string(&mut text).is_err() {
            return HashSet::new();
        }
        text.lines().map(|l| l.trim().to_lowercase()).filter(|l| !l.is_empty()).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_has_ten_thousand_entries() {
        assert!(common_list().len() > 9_900, "{}", common_list().len());
    }

    #[test]
    fn common_passwords_are_refused() {
        assert_eq!(check_new_password("password1"), Err(PasswordProblem::Common));
        assert_eq!(check_new_password("PassWord1"), Err(PasswordProblem::Common));
        assert_eq!(check_new_password("12345678"), Err(PasswordProblem::Common));
        assert_eq!(check_new_password("qwertyuiop"), Err(PasswordProblem::Common));
    }

    #[test]
    fn length_counts_code_points() {
        assert_eq!(check_new_password("short"), Err(PasswordProblem::TooShort));
        // Eight emoji are 32 bytes but eight code points: accepted.
        assert_eq!(check_new_password("🍼🍼🍼🍼🍼🍼🍼🍼"), Ok(()));
        assert_eq!(check_new_password("🍼🍼🍼🍼🍼🍼🍼"), Err(PasswordProblem::TooShort));
        assert_eq!(check_new_password(&"a".repeat(256).replace("aaaa", "abcd")), Ok(()));
        assert_eq!(check_new_password(&"x".repeat(257)), Err(PasswordProblem::TooLong));
    }

    #[test]
    fn no_composition_rules() {
        assert_eq!(check_new_password("correcthorsebatterystaple"), Ok(()));
        assert_eq!(check_new_password("lettersonlyhere"), Ok(()));
    }
}
