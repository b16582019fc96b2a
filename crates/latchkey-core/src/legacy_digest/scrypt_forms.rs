//! The scrypt forms: Werkzeug's, and Firebase's modified scrypt.

use super::{b64, derived_key_len, hex_any, Scheme, MAX_SALT_BYTES, MAX_SCRYPT_N_TIMES_R, MIN_DERIVED_KEY_BYTES};

/// Werkzeug's `scrypt:<n>:<r>:<p>$<salt>$<hex hash>` (the salt is used as text).
pub(super) fn werkzeug(d: &str) -> Result<Scheme, String> {
    let shape = || "expected scrypt:<n>:<r>:<p>$<salt>$<hex hash>".to_owned();
    let mut parts = d.trim_start_matches('$').split('$');
    let args = parts.next().ok_or_else(shape)?;
    let (salt, hash) = (parts.next().ok_or_else(shape)?, parts.next().ok_or_else(shape)?);
    let mut a = args.split(':');
    if a.next() != Some("scrypt") {
        return Err(shape());
    }
    let n: u64 = a.next().and_then(|x| x.parse().ok()).ok_or_else(shape)?;
    let r: u32 = a.next().and_then(|x| x.parse().ok()).ok_or_else(shape)?;
    let p: u32 = a.next().and_then(|x| x.parse().ok()).ok_or_else(shape)?;
    if !n.is_power_of_two()
        || !(2..=1 << 20).contains(&n)
        || !(1..=32).contains(&r)
        || !(1..=16).contains(&p)
        || n * u64::from(r) > MAX_SCRYPT_N_TIMES_R
    {
        return Err("scrypt parameters out of range (n a power of two, r up to 32, p up to 16, n·r up to 2^21)".into());
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| shape())?;
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES {
        return Err(format!("the salt must be 1 to {MAX_SALT_BYTES} bytes"));
    }
    // Werkzeug writes 64 bytes; fewer than 10 the scrypt crate cannot derive (such a digest
    // could never verify), and a short one would let wrong passwords through.
    let expected = hex_any(hash)?;
    derived_key_len(expected.len())?;
    Ok(Scheme::Scrypt { log_n, r, p, salt: salt.as_bytes().to_vec(), expected })
}

/// Firebase's modified scrypt, as Clerk takes it from Firebase's export:
/// `<hash>$<salt>$<signer key>$<salt separator>$<rounds>$<memory cost>`, base64 fields.
pub(super) fn firebase(d: &str) -> Result<Scheme, String> {
    let shape = || "expected <hash>$<salt>$<signer key>$<salt separator>$<rounds>$<memory cost>".to_owned();
    let parts: Vec<&str> = d.split('$').collect();
    let [hash, salt, signer_key, separator, rounds, mem_cost] = parts.as_slice() else { return Err(shape()) };
    let r: u32 = rounds.parse().map_err(|_| shape())?;
    let log_n: u8 = mem_cost.parse().map_err(|_| shape())?;
    if !(1..=32).contains(&r) || !(1..=20).contains(&log_n) || (1_u64 << log_n) * u64::from(r) > MAX_SCRYPT_N_TIMES_R {
        return Err(
            "scrypt parameters out of range (rounds up to 32, memory cost up to 20, 2^cost·rounds up to 2^21)".into()
        );
    }
    let mut salt = b64(salt)?;
    salt.extend(b64(separator)?);
    let (signer_key, expected) = (b64(signer_key)?, b64(hash)?);
    if signer_key.len() != expected.len() {
        return Err("the hash must be as long as the signer key".into());
    }
    // The hash is the signer key (64 bytes in a Firebase project) encrypted with AES-256-CTR,
    // so it is as long as the key: a short one would let wrong passwords through.
    if expected.len() < MIN_DERIVED_KEY_BYTES {
        return Err(format!(
            "the hash and signer key must be at least {MIN_DERIVED_KEY_BYTES} bytes, not {}: a hash cut short \
             would let wrong passwords through",
            expected.len()
        ));
    }
    Ok(Scheme::Firebase { log_n, r, salt, signer_key, expected })
}
