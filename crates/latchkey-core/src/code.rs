//! One-time verification codes: 6 digits, 10 minutes, single use, at most a few attempts.
//! Only a keyed digest of the code is stored (HMAC-SHA256 with the instance's code key).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Millis;
use crate::rng::Random;
use crate::secret::{constant_time_eq, hex};

pub const CODE_TTL_MS: Millis = 10 * 60 * 1000;
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// A fresh 6-digit code, uniformly distributed.
pub fn new_code(rng: &dyn Random) -> String {
    format!("{:06}", rng.below(1_000_000))
}

/// The stored form of a code, bound to what it verifies (`purpose`, e.g. a sign-up id), so a
/// code issued for one attempt can never verify another.
pub fn code_digest(key: &[u8], purpose: &str, code: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// What is stored about an outstanding code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub digest: String,
    pub expires_at: Millis,
    pub attempts: u32,
    pub consumed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    Verified,
    Incorrect { attempts_left: u32 },
    Expired,
    TooManyAttempts,
    AlreadyUsed,
}

impl PendingCode {
    pub fn issue(key: &[u8], purpose: &str, code: &str, now: Millis) -> Self {
        Self { digest: code_digest(key, purpose, code), expires_at: now + CODE_TTL_MS, attempts: 0, consumed: false }
    }

    /// Checks a candidate, updating attempts and consumption; the caller persists `self`.
    pub fn attempt(&mut self, key: &[u8], purpose: &str, candidate: &str, now: Millis) -> CodeOutcome {
        let candidate = candidate.trim();
        let well_formed = candidate.len() == 6 && candidate.bytes().all(|b| b.is_ascii_digit());
        self.judge(key, purpose, candidate, well_formed, now)
    }

    /// [`PendingCode::attempt`] for the secret of an email link: 43 base64url characters (256
    /// bits) instead of six digits; the same expiry, attempt limit and single use.
    pub fn attempt_link(&mut self, key: &[u8], purpose: &str, candidate: &str, now: Millis) -> CodeOutcome {
        let well_formed =
            candidate.len() == 43 && candidate.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        self.judge(key, purpose, candidate, well_formed, now)
    }

    fn judge(&mut self, key: &[u8], purpose: &str, candidate: &str, well_formed: bool, now: Millis) -> CodeOutcome {
        if self.consumed {
            return CodeOutcome::AlreadyUsed;
        }
        if now >= self.expires_at {
            return CodeOutcome::Expired;
        }
        if self.attempts >= MAX_CODE_ATTEMPTS {
            return CodeOutcome::TooManyAttempts;
        }
        self.attempts += 1;
        let digest = code_digest(key, purpose, candidate);
        if well_formed && constant_time_eq(digest.as_bytes(), self.digest.as_bytes()) {
            self.consumed = true;
            return CodeOutcome::Verified;
        }
        if self.attempts >= MAX_CODE_ATTEMPTS {
            CodeOutcome::TooManyAttempts
        } else {
            CodeOutcome::Incorrect { attempts_left: MAX_CODE_ATTEMPTS - self.attempts }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn codes_are_six_digits() {
        let rng = SeededRandom::new(3);
        for _ in 0..100 {
            let c = new_code(&rng);
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn verifies_once() {
        let mut p = PendingCode::issue(KEY, "sua_1", "123456", 0);
        assert_eq!(p.attempt(KEY, "sua_1", "123456", 1), CodeOutcome::Verified);
        assert_eq!(p.attempt(KEY, "sua_1", "123456", 2), CodeOutcome::AlreadyUsed);
    }

    #[test]
    fn bound_to_purpose() {
        let mut p = PendingCode::issue(KEY, "sua_1", "123456", 0);
        assert_eq!(p.attempt(KEY, "sua_2", "123456", 1), CodeOutcome::Incorrect { attempts_left: 4 });
    }

    #[test]
    fn expires_after_ten_minutes() {
        let mut p = PendingCode::issue(KEY, "p", "123456", 0);
        assert_eq!(p.attempt(KEY, "p", "123456", CODE_TTL_MS), CodeOutcome::Expired);
        let mut p = PendingCode::issue(KEY, "p", "123456", 0);
        assert_eq!(p.attempt(KEY, "p", "123456", CODE_TTL_MS - 1), CodeOutcome::Verified);
    }

    #[test]
    fn limited_attempts_even_for_the_right_code() {
        let mut p = PendingCode::issue(KEY, "p", "123456", 0);
        for left in (1..MAX_CODE_ATTEMPTS).rev() {
            assert_eq!(p.attempt(KEY, "p", "000000", 1), CodeOutcome::Incorrect { attempts_left: left });
        }
        assert_eq!(p.attempt(KEY, "p", "000000", 1), CodeOutcome::TooManyAttempts);
        assert_eq!(p.attempt(KEY, "p", "123456", 1), CodeOutcome::TooManyAttempts);
    }

    #[test]
    fn link_secrets_are_judged_like_codes_but_shaped_otherwise() {
        let secret = "a".repeat(43);
        let mut p = PendingCode::issue(KEY, "link:sia_1", &secret, 0);
        assert_eq!(p.attempt_link(KEY, "link:sia_1", &"b".repeat(43), 1), CodeOutcome::Incorrect { attempts_left: 4 });
        assert_eq!(p.attempt_link(KEY, "link:sia_2", &secret, 1), CodeOutcome::Incorrect { attempts_left: 3 });
        assert_eq!(p.attempt_link(KEY, "link:sia_1", &secret, 1), CodeOutcome::Verified);
        assert_eq!(p.attempt_link(KEY, "link:sia_1", &secret, 2), CodeOutcome::AlreadyUsed);
        // A six-digit code is not a link's secret, even with the right digest.
        let mut q = PendingCode::issue(KEY, "p", "123456", 0);
        assert_ne!(q.attempt_link(KEY, "p", "123456", 1), CodeOutcome::Verified);
        let mut r = PendingCode::issue(KEY, "p", &secret, 0);
        assert_eq!(r.attempt_link(KEY, "p", &secret, CODE_TTL_MS), CodeOutcome::Expired);
    }
}
