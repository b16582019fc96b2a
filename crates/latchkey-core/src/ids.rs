//! Clerk-style identifiers: a type prefix and 27 base62 characters (a KSUID: 4 bytes of
//! seconds since 2014-05-13 followed by 16 random bytes), so ids sort roughly by creation.

use crate::clock::Millis;
use crate::rng::Random;

const KSUID_EPOCH_SECS: i64 = 1_400_000_000;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const ID_BODY_LEN: usize = 27;

/// The kinds of object that carry ids, with their Clerk prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    User,
    Session,
    Client,
    SignUp,
    SignIn,
    Identification,
    Instance,
    Organization,
    Membership,
    OrgInvitation,
    Invitation,
    SignInToken,
    JwtTemplate,
    Role,
    Permission,
    Message,
    ExternalAccount,
    Totp,
    BackupCode,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::User => "user",
            IdKind::Session => "sess",
            IdKind::Client => "client",
            IdKind::SignUp => "sua",
            IdKind::SignIn => "sia",
            IdKind::Identification => "idn",
            IdKind::Instance => "ins",
            IdKind::Organization => "org",
            IdKind::Membership => "orgmem",
            IdKind::OrgInvitation => "orginv",
            IdKind::Invitation => "inv",
            IdKind::SignInToken => "sit",
            IdKind::JwtTemplate => "jtmp",
            IdKind::Role => "role",
            IdKind::Permission => "perm",
            IdKind::Message => "msg",
            IdKind::ExternalAccount => "eac",
            IdKind::Totp => "totp",
            IdKind::BackupCode => "bcd",
        }
    }
}

/// Makes a new id of `kind` at time `now`.
pub fn new_id(kind: IdKind, now: Millis, rng: &dyn Random) -> String {
    let mut raw = [0u8; 20];
    let secs = (now.div_euclid(1000) - KSUID_EPOCH_SECS).clamp(0, i64::from(u32::MAX));
    raw[..4].copy_from_slice(&(secs as u32).to_be_bytes());
    rng.fill(&mut raw[4..]);
    format!("{}_{}", kind.prefix(), base62_fixed(&raw))
}

/// True when `id` has the prefix of `kind` and a well-formed body.
/// An id of `kind` that depends only on `subject` and the instance's `key`: the same every
/// time, unguessable without the key, and carrying no creation time (its leading bytes are
/// not a timestamp). For objects shown before a sign-in proves anything, so that a known and
/// an unknown identifier look alike.
pub fn keyed_id(kind: IdKind, key: &[u8], subject: &str) -> String {
    let digest = crate::code::code_digest(key, &format!("keyed-id:{}", kind.prefix()), subject);
    let mut raw = [0u8; 20];
    for (i, byte) in raw.iter_mut().enumerate() {
        *byte = digest.get(i * 2..i * 2 + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
    }
    format!("{}_{}", kind.prefix(), base62_fixed(&raw))
}

pub fn is_id_of(kind: IdKind, id: &str) -> bool {
    id.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == ID_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Big-endian base62 of 20 bytes, left-padded to 27 characters.
fn base62_fixed(raw: &[u8; 20]) -> String {
    let mut digits = raw.to_vec();
    let mut out = Vec::with_capacity(ID_BODY_LEN);
    while digits.iter().any(|d| *d != 0) {
        let mut rem = 0u32;
        for d in digits.iter_mut() {
            let acc = (rem << 8) | u32::from(*d);
            *d = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(BASE62[rem as usize]);
    }
    while out.len() < ID_BODY_LEN {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    #[test]
    fn ids_have_prefix_and_27_base62_chars() {
        let rng = SeededRandom::new(7);
        let id = new_id(IdKind::User, 1_795_430_756_570, &rng);
        assert!(id.starts_with("user_"), "{id}");
        assert_eq!(id.len(), 5 + 27);
        assert!(is_id_of(IdKind::User, &id));
        assert!(!is_id_of(IdKind::Session, &id));
        assert!(!is_id_of(IdKind::User, "user_short"));
    }

    #[test]
    fn ids_sort_by_time() {
        let rng = SeededRandom::new(9);
        let a = new_id(IdKind::User, 1_700_000_000_000, &rng);
        let b = new_id(IdKind::User, 1_700_000_100_000, &rng);
        assert!(a < b);
    }

    #[test]
    fn keyed_ids_are_stable_per_subject_and_key() {
        let a = keyed_id(IdKind::Identification, b"key one", "ada@example.com");
        assert!(is_id_of(IdKind::Identification, &a), "{a}");
        assert_eq!(a, keyed_id(IdKind::Identification, b"key one", "ada@example.com"));
        assert_ne!(a, keyed_id(IdKind::Identification, b"key one", "bob@example.com"));
        assert_ne!(a, keyed_id(IdKind::Identification, b"key two", "ada@example.com"));
    }

    #[test]
    fn max_value_fits() {
        assert_eq!(base62_fixed(&[0xff; 20]), "aWgEPTl1tmebfsQzFP4bxwgy80V");
        assert_eq!(base62_fixed(&[0; 20]), "0".repeat(27));
    }
}
