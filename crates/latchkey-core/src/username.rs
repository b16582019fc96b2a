//! Usernames: 4 to 64 characters of lower-case letters, digits, `_` and `-` (Clerk's rules),
//! compared in lower case.

pub const MIN_LEN: usize = 4;
pub const MAX_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameProblem {
    Length,
    Characters,
}

pub fn normalize_username(input: &str) -> Result<String, UsernameProblem> {
    let name = input.trim().to_lowercase();
    if name.chars().count() < MIN_LEN || name.chars().count() > MAX_LEN {
        return Err(UsernameProblem::Length);
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return Err(UsernameProblem::Characters);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(normalize_username("Bob_99").as_deref(), Ok("bob_99"));
        assert_eq!(normalize_username("bob"), Err(UsernameProblem::Length));
        assert_eq!(normalize_username("bob smith"), Err(UsernameProblem::Characters));
        assert_eq!(normalize_username("bob@x.com"), Err(UsernameProblem::Characters));
        assert_eq!(normalize_username(&"a".repeat(65)), Err(UsernameProblem::Length));
    }
}
