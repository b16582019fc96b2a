//! The crypt(3)-style strings: bcrypt (plain, and Devise's peppered form) and phpass.

use super::{BcryptInput, Scheme, MAX_BCRYPT_COST, MAX_PHPASS_LOG2, MAX_SALT_BYTES};

/// `$2a$`, `$2b$`, `$2y$` (or `$2x$`), a cost from 4 to [`MAX_BCRYPT_COST`], 53 characters
/// of bcrypt's base64.
pub(super) fn bcrypt_hash(d: &str) -> Result<String, String> {
    let ok = d.len() == 60
        && ["$2a$", "$2b$", "$2y$", "$2x$"].iter().any(|p| d.starts_with(p))
        && d.as_bytes()[6] == b'$'
        && d[4..6].parse::<u32>().is_ok_and(|c| (4..=MAX_BCRYPT_COST).contains(&c))
        && d.as_bytes()[7..].iter().all(|c| ITOA64.contains(c));
    if ok {
        Ok(d.to_owned())
    } else {
        Err(format!(
            "expected a bcrypt hash: $2a$, $2b$ or $2y$, a cost from 4 to {MAX_BCRYPT_COST}, then 53 characters"
        ))
    }
}

/// Clerk's `bcrypt_peppered`: `$<version>$<cost>$<salt and hash>$<pepper>`, the bcrypt of the
/// password with the pepper appended (Devise's `Devise::Encryptor.digest`). The pepper is
/// everything after the 60-character bcrypt hash and its `$`.
pub(super) fn bcrypt_peppered(d: &str) -> Result<Scheme, String> {
    let shape = "expected $<version>$<cost>$<salt and hash>$<pepper>: a bcrypt hash, `$`, then the pepper";
    let (Some(hash), Some(rest)) = (d.get(..60), d.get(60..)) else { return Err(shape.into()) };
    let pepper = rest.strip_prefix('$').ok_or(shape)?;
    if pepper.is_empty() || pepper.len() > MAX_SALT_BYTES {
        return Err(format!("the pepper must be 1 to {MAX_SALT_BYTES} bytes"));
    }
    Ok(Scheme::Bcrypt { hash: bcrypt_hash(hash)?, input: BcryptInput::Peppered(pepper.to_owned()) })
}

const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `$P$` or `$H$`, a rounds character (log2 count, 7 to [`MAX_PHPASS_LOG2`]), 8 salt characters,
/// 22 of checksum.
pub(super) fn phpass(d: &str) -> Result<Scheme, String> {
    let shape =
        || "expected $P$ or $H$, a rounds character, an 8-character salt and a 22-character checksum".to_owned();
    if d.len() != 34 || !(d.starts_with("$P$") || d.starts_with("$H$")) {
        return Err(shape());
    }
    let log2 = ITOA64.iter().position(|c| *c == d.as_bytes()[3]).ok_or_else(shape)?;
    if !(7..=MAX_PHPASS_LOG2).contains(&log2) {
        return Err(format!("phpass rounds must be from 2^7 to 2^{MAX_PHPASS_LOG2}"));
    }
    let (Some(salt), Some(expected)) = (d.get(4..12), d.get(12..)) else { return Err(shape()) };
    Ok(Scheme::Phpass { rounds: 1 << log2, salt: salt.as_bytes().to_vec(), expected: expected.to_owned() })
}

/// phpass's own little-endian 6-bit encoding.
pub(super) fn phpass_encode(input: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < input.len() {
        let mut value = u32::from(input[i]);
        i += 1;
        out.push(ITOA64[(value & 0x3f) as usize] as char);
        if i < input.len() {
            value |= u32::from(input[i]) << 8;
        }
        out.push(ITOA64[((value >> 6) & 0x3f) as usize] as char);
        if i >= input.len() {
            break;
        }
        i += 1;
        if i < input.len() {
            value |= u32::from(input[i]) << 16;
        }
        out.push(ITOA64[((value >> 12) & 0x3f) as usize] as char);
        if i >= input.len() {
            break;
        }
        i += 1;
        out.push(ITOA64[((value >> 18) & 0x3f) as usize] as char);
    }
    out
}
