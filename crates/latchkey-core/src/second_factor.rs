//! Second factors without I/O: authenticator-app codes (TOTP, RFC 6238) and backup codes
//! (docs/second-factors.md).
//!
//! TOTP is what Clerk's Backend API documents for imported secrets: SHA-1, 30-second steps,
//! 6 digits. A code is accepted within one step of drift either way, and the step it matched is
//! returned so the caller can refuse it (and any earlier step) the next time: a code works once.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::clock::Millis;
use crate::rng::Random;
use crate::secret::{constant_time_eq, hex};

pub const TOTP_STEP_SECS: u64 = 30;
pub const TOTP_DIGITS: usize = 6;
/// Steps accepted either side of the current one (a phone's clock a little off).
pub const TOTP_DRIFT_STEPS: i64 = 1;
/// A new secret's size: 160 bits, as RFC 4226 recommends for SHA-1.
pub const TOTP_SECRET_BYTES: usize = 20;
/// The shortest secret an import may bring (80 bits, what older authenticator set-ups used).
pub const TOTP_MIN_IMPORT_BYTES: usize = 10;
/// A second-factor step of a sign-in or reverification dies after this many wrong codes.
pub const MAX_SECOND_FACTOR_ATTEMPTS: i64 = 5;

pub const BACKUP_CODE_COUNT: usize = 10;
/// Letters and digits without look-alikes (no 0/o, 1/l/i): 31 symbols, ten of them about 49 bits.
const BACKUP_CODE_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
const BACKUP_CODE_LEN: usize = 10;

/// Whether this instance uses second factors (`[second_factors] policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// No second step at sign-in, no enrolment.
    Off,
    /// Users choose (Clerk's default).
    #[default]
    Optional,
    /// A user without a second factor must add one before their session becomes active
    /// (Clerk's `setup-mfa` session task).
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the secret must be base32 (RFC 4648) of at least 80 bits")]
    BadSecret,
}

/// An authenticator app's key, with the names its `otpauth://` URI shows.
pub struct TotpKey {
    totp: TOTP,
}

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKey(..)")
    }
}

impl TotpKey {
    /// `issuer` is the app's name, `account` the person's identifier, both shown by the app.
    pub fn new(secret: Vec<u8>, issuer: &str, account: &str) -> Result<Self, TotpError> {
        if secret.len() < TOTP_MIN_IMPORT_BYTES {
            return Err(TotpError::BadSecret);
        }
        // `new_unchecked`: imports may carry 80-bit secrets, below totp-rs's 128-bit floor;
        // the issuer and account are made safe for the URI below (no ':' is allowed in them).
        let totp = TOTP::new_unchecked(
            Algorithm::SHA1,
            TOTP_DIGITS,
            0,
            TOTP_STEP_SECS,
            secret,
            Some(issuer.replace(':', " ")),
            account.replace(':', " "),
        );
        Ok(Self { totp })
    }

    /// A fresh key of [`TOTP_SECRET_BYTES`].
    pub fn generate(rng: &dyn Random, issuer: &str, account: &str) -> Result<Self, TotpError> {
        let mut secret = vec![0u8; TOTP_SECRET_BYTES];
        rng.fill(&mut secret);
        Self::new(secret, issuer, account)
    }

    /// A key given as base32 text (Clerk's `totp_secret`), case and spaces ignored.
    pub fn from_base32(text: &str, issuer: &str, account: &str) -> Result<Self, TotpError> {
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace() && *c != '=').collect();
        let raw = Secret::Encoded(cleaned.to_ascii_uppercase()).to_bytes().map_err(|_| TotpError::BadSecret)?;
        Self::new(raw, issuer, account)
    }

    pub fn secret_bytes(&self) -> &[u8] {
        &self.totp.secret
    }

    /// The secret as authenticator apps take it typed in: base32 without padding.
    pub fn base32(&self) -> String {
        self.totp.get_secret_base32()
    }

    /// `otpauth://totp/Issuer:account?secret=…&issuer=…` for a QR code.
    pub fn uri(&self) -> String {
        self.totp.get_url()
    }

    /// The code of the step that holds `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.totp.generate(unix_secs)
    }

    /// The step (unix seconds / 30) whose code `candidate` is, within one step either side of
    /// `now`; `None` for a wrong or malformed code. Every step is compared, so the time taken
    /// does not say which one matched.
    pub fn matching_step(&self, candidate: &str, now: Millis) -> Option<i64> {
        let candidate = candidate.trim();
        if candidate.len() != TOTP_DIGITS || !candidate.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = now.div_euclid(1000) / TOTP_STEP_SECS as i64;
        let mut found = None;
        for step in current - TOTP_DRIFT_STEPS..=current + TOTP_DRIFT_STEPS {
            let Ok(secs) = u64::try_from(step * TOTP_STEP_SECS as i64) else { continue };
            if constant_time_eq(self.code_at(secs).as_bytes(), candidate.as_bytes()) {
                found = Some(step);
            }
        }
        found
    }
}

/// Ten fresh backup codes to be shown once.
pub fn new_backup_codes(rng: &dyn Random) -> Vec<String> {
    (0..BACKUP_CODE_COUNT)
        .map(|_| {
            (0..BACKUP_CODE_LEN)
                .map(|_| char::from(BACKUP_CODE_ALPHABET[rng.below(31) as usize % BACKUP_CODE_ALPHABET.len()]))
                .collect()
        })
        .collect()
}

/// How a typed backup code is compared: spaces and dashes dropped, lower case.
pub fn normalise_backup_code(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}

/// The stored form of a backup code: keyed with the instance's code key and bound to its user,
/// so a leaked table neither reveals codes nor lets one user's code work for another.
pub fn backup_code_digest(key: &[u8], user_id: &str, code: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"backup_code\0");
    mac.update(user_id.as_bytes());
    mac.update(b"\0");
    mac.update(normalise_backup_code(code).as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Whether an imported backup code is acceptable: 6 to 64 letters, digits, `-` or `_`.
pub fn backup_code_importable(code: &str) -> bool {
    let n = normalise_backup_code(code);
    (6..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rng::OsRandom;

    fn rfc_key() -> TotpKey {
        TotpKey::new(b"12345678901234567890".to_vec(), "BabyLog", "ada@example.com").unwrap()
    }

    /// RFC 6238 Appendix B (SHA-1): the 6-digit code is the last six digits of the 8-digit one.
    #[test]
    fn rfc_6238_vectors() {
        let key = rfc_key();
        for (t, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(key.code_at(t), code, "t={t}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let key = rfc_key();
        let now: Millis = 1_234_567_890_000;
        let step = 1_234_567_890 / 30;
        for delta in [-1i64, 0, 1] {
            let code = key.code_at(((step + delta) * 30) as u64);
            assert_eq!(key.matching_step(&code, now), Some(step + delta), "delta {delta}");
        }
        for delta in [-2i64, 2] {
            let code = key.code_at(((step + delta) * 30) as u64);
            assert_eq!(key.matching_step(&code, now), None, "delta {delta}");
        }
        assert_eq!(key.matching_step(" 005924 ", now), Some(step), "spaces around are ignored");
        for bad in ["", "00592", "0059244", "abcdef", "00 5924"] {
            assert_eq!(key.matching_step(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trip_and_uri() {
        let key = TotpKey::generate(&OsRandom, "Baby:Log", "ada@example.com").unwrap();
        assert_eq!(key.secret_bytes().len(), 20);
        let again = TotpKey::from_base32(&key.base32().to_lowercase(), "BabyLog", "ada").unwrap();
        assert_eq!(again.secret_bytes(), key.secret_bytes());
        let uri = key.uri();
        assert!(uri.starts_with("otpauth://totp/Baby%20Log:ada%40example.com?secret="), "{uri}");
        assert!(uri.contains(&key.base32()), "{uri}");
        assert!(TotpKey::from_base32("not base32!", "a", "b").is_err());
        assert!(TotpKey::from_base32("MFRGG", "a", "b").is_err(), "25 bits is too short");
        assert!(TotpKey::from_base32("GEZDGNBVGY3TQOJQ", "a", "b").is_ok(), "80 bits is enough");
    }

    #[test]
    fn backup_codes_are_distinct_and_bound_to_their_user() {
        let codes = new_backup_codes(&OsRandom);
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert!(codes.iter().all(|c| c.len() == 10 && backup_code_importable(c)));
        let key = [9u8; 32];
        let d = backup_code_digest(&key, "user_1", &codes[0]);
        assert_eq!(d, backup_code_digest(&key, "user_1", &format!(" {} ", codes[0].to_uppercase())));
        assert_ne!(d, backup_code_digest(&key, "user_2", &codes[0]));
        assert_ne!(d, backup_code_digest(&[8u8; 32], "user_1", &codes[0]));
        assert!(!backup_code_importable("abc"));
        assert!(!backup_code_importable("$2a$10$abcdefghijk"));
    }
}
