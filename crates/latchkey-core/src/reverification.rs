//! Step-up ("reverification") rules without I/O (docs/second-factors.md): how long ago a
//! session's holder proved each factor (the token's `fva`), and whether that is recent enough
//! for a level, read the way Clerk's SDKs read it.

use crate::clock::Millis;

/// Which factors a recent check must cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    FirstFactor,
    /// The second factor if the user has one, else the first.
    SecondFactor,
    /// Both factors if the user has a second, else the first.
    MultiFactor,
}

impl Level {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "first_factor" => Some(Level::FirstFactor),
            "second_factor" => Some(Level::SecondFactor),
            "multi_factor" => Some(Level::MultiFactor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::FirstFactor => "first_factor",
            Level::SecondFactor => "second_factor",
            Level::MultiFactor => "multi_factor",
        }
    }
}

/// A level and how many minutes a check stays recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub level: Level,
    pub after_minutes: i64,
}

/// Clerk's named presets: `strict` (10 minutes), `moderate` (an hour), `lax` (a day), all at
/// the second-factor level, and `strict_mfa` (10 minutes, both factors).
pub const STRICT: Requirement = Requirement { level: Level::SecondFactor, after_minutes: 10 };
pub const MODERATE: Requirement = Requirement { level: Level::SecondFactor, after_minutes: 60 };
pub const LAX: Requirement = Requirement { level: Level::SecondFactor, after_minutes: 1440 };
pub const STRICT_MFA: Requirement = Requirement { level: Level::MultiFactor, after_minutes: 10 };

impl Requirement {
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "strict" => Some(STRICT),
            "moderate" => Some(MODERATE),
            "lax" => Some(LAX),
            "strict_mfa" => Some(STRICT_MFA),
            _ => None,
        }
    }

    /// Whether factor ages `fva` (minutes, -1 for never) meet this requirement: Clerk's rule,
    /// where a user with no second factor is judged by the first alone.
    pub fn is_met(&self, fva: [i64; 2]) -> bool {
        let [first, second] = fva;
        let fresh = |age: i64| age >= 0 && age < self.after_minutes;
        match self.level {
            Level::FirstFactor => fresh(first),
            Level::SecondFactor if second >= 0 => fresh(second),
            Level::SecondFactor => fresh(first),
            Level::MultiFactor if second >= 0 => fresh(first) && fresh(second),
            Level::MultiFactor => fresh(first),
        }
    }
}

/// The token's `fva`: whole minutes since each factor was proved, -1 for a second factor never
/// proved in this session. `first` falls back to when the session began.
pub fn factor_ages(now: Millis, session_created: Millis, first: Option<Millis>, second: Option<Millis>) -> [i64; 2] {
    let minutes = |at: Millis| (now - at).max(0) / 60_000;
    [minutes(first.unwrap_or(session_created)), second.map_or(-1, minutes)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_read_like_clerk() {
        assert_eq!(Requirement::preset("strict"), Some(STRICT));
        assert_eq!(Requirement::preset("lax").map(|r| r.after_minutes), Some(1440));
        assert_eq!(Requirement::preset("strict_mfa").map(|r| r.level), Some(Level::MultiFactor));
        assert_eq!(Requirement::preset("loose"), None);
        // Ten minutes means fewer than ten whole minutes.
        assert!(STRICT.is_met([0, 9]) && !STRICT.is_met([0, 10]));
        // No second factor: the first decides.
        assert!(STRICT.is_met([9, -1]) && !STRICT.is_met([10, -1]));
        // A second factor proved long ago is not rescued by a fresh first.
        assert!(!STRICT.is_met([0, 30]));
        assert!(STRICT_MFA.is_met([3, 4]) && !STRICT_MFA.is_met([30, 4]) && !STRICT_MFA.is_met([3, 40]));
        let first = Requirement { level: Level::FirstFactor, after_minutes: 5 };
        assert!(first.is_met([4, 100]) && !first.is_met([5, 0]));
        assert!(!MODERATE.is_met([-1, -1]), "never proved is never recent");
    }

    #[test]
    fn ages_in_whole_minutes() {
        assert_eq!(factor_ages(600_000, 0, None, None), [10, -1]);
        assert_eq!(factor_ages(600_000, 0, Some(540_001), Some(59_999)), [0, 9]);
        assert_eq!(factor_ages(0, 60_000, None, None), [0, -1], "a clock behind counts as now");
        for level in ["first_factor", "second_factor", "multi_factor"] {
            assert_eq!(Level::parse(level).map(Level::as_str), Some(level));
        }
        assert_eq!(Level::parse("both"), None);
    }
}
