#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;

#[test]
fn each_hasher_verifies_its_vector_and_refuses_a_wrong_password() {
    for (hasher, password, digest) in VECTORS {
        let d = LegacyDigest::parse(hasher, digest).unwrap_or_else(|e| panic!("{hasher}: {e}"));
        assert!(d.verify(password), "{hasher} {digest}");
        assert!(!d.verify("not the password"), "{hasher}");
        assert_eq!(LegacyDigest::from_stored(&d.stored()), Some(d.clone()), "{hasher}");
    }
}

#[test]
fn every_verifiable_hasher_has_a_vector() {
    for hasher in HASHERS.iter().filter(|h| **h != "awscognito") {
        assert!(VECTORS.iter().any(|(h, _, _)| h == hasher), "{hasher} has no vector");
    }
}

#[test]
fn malformed_digests_are_refused_with_a_reason() {
    let long = "x".repeat(MAX_SALT_BYTES + 1);
    let bcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.JJBRCXLYyEGcXpbJctcjL2CMCZLipoe";
    let md5 = "3f86d0d3d465b7b458c231bf3555c0e3";
    let sha256 = "b20ab74aa2549f7e13a0e886cb4471cc2e70fcd2ce8075c0ee6483abba6132f3";
    let mac = "XdpZkLEovhMdGpcXm+8W0il3gdMlbgLOz00PtFJdB8Y=";
    for (hasher, digest) in [
        ("bcrypt", "$2b$10$short".to_owned()),
        ("bcrypt", "$2b$25$U4C0ZY8OG8y41F9LusfKyu3HRMBL0rCZcKBVsXhgr.n8Ou6FPhzO2".into()),
        ("phpass", "$P$TIQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0".into()),
        // A multi-byte character across the salt's end: refused, not a panic.
        ("phpass", "$P$9IQRaTwméeRo7ud9Fh4E2PdI0S3r.L".into()),
        ("scrypt_werkzeug", "scrypt:1048576:32:1$salt$abcd".into()),
        ("scrypt_firebase", "aGFzaA==$c2FsdA==$a2V5$Bw==$8$30".into()),
        ("md5", "5f4dcc3b".into()),
        ("sha256", "zz".into()),
        ("pbkdf2_sha256_django", "pbkdf2_sha256$0$salt$aGFzaA==".into()),
        ("pbkdf2_sha256_django", format!("pbkdf2_sha256${}$salt$aGFzaA==", MAX_PBKDF2_ITERATIONS + 1)),
        ("phpass", "$P$Xshort".into()),
        ("scrypt_werkzeug", "scrypt:1000:8:1$salt$abcd".into()),
        ("sha512_symfony", "sha512_symfony$5000$salt$c2hvcnQ=".into()),
        // bcrypt_peppered: no pepper, an empty one, one too long, a bad cost, a cut hash.
        ("bcrypt_peppered", bcrypt.into()),
        ("bcrypt_peppered", format!("{bcrypt}$")),
        ("bcrypt_peppered", format!("{bcrypt}${long}")),
        ("bcrypt_peppered", format!("{}$pepper", bcrypt.replace("$05$", "$17$"))),
        ("bcrypt_peppered", format!("{}$pepper", &bcrypt[..59])),
        ("bcrypt_peppered", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.JJBRCXLYyEGcXpbJctcjL2CMCZLipoé$pepper".into()),
        // Salted: no salt, a salt too long, a hash of the wrong length or not hex, no `$`.
        ("md5_salted", md5.into()),
        ("md5_salted", format!("${md5}")),
        ("md5_salted", format!("{long}${md5}")),
        ("md5_salted", format!("salt${sha256}")),
        ("md5_salted", "salt$3f86d0d3d465b7b458c231bf3555c0eg".into()),
        ("sha256_salted", format!("salt${md5}")),
        ("sha256_salted", sha256.into()),
        // HMAC: no prefix, no key, a key too long, a hash that is not 32 bytes of base64.
        ("hmac_sha256_utf16_b64", format!("{mac}$key")),
        ("hmac_sha256_utf16_b64", format!("hmac_sha256_utf16_b64${mac}")),
        ("hmac_sha256_utf16_b64", format!("hmac_sha256_utf16_b64${mac}$")),
        ("hmac_sha256_utf16_b64", format!("hmac_sha256_utf16_b64${mac}${long}")),
        ("hmac_sha256_utf16_b64", "hmac_sha256_utf16_b64$c2hvcnQ=$key".into()),
        ("hmac_sha256_utf16_b64", "hmac_sha256_utf16_b64$not base64!$key".into()),
        ("nope", "x".into()),
    ] {
        assert!(LegacyDigest::parse(hasher, &digest).is_err(), "{hasher} {digest}");
    }
    assert_eq!(LegacyDigest::from_stored("$argon2id$v=19$m=19456,t=2,p=1$abc$def"), None);
}

#[test]
fn cognito_is_refused_with_the_reason() {
    let reason = LegacyDigest::parse("awscognito", "awscognito#us-east-1_abc#client#ada@example.com").unwrap_err();
    assert!(reason.contains("Cognito passwords cannot be imported"), "{reason}");
    assert!(reason.contains("reset") && reason.contains("another sign-in"), "{reason}");
    assert!(!reason.ends_with('.'), "the Backend API adds the full stop: {reason}");
    assert_eq!(LegacyDigest::from_stored("legacy:awscognito:awscognito#pool#client#ada"), None);
}

#[test]
fn salted_digests_take_either_order_and_either_form_but_only_their_own_salt() {
    // md5("NaCl" + "password") and md5("password" + "NaCl"), each under a wrong salt too.
    let salt_first = format!("NaCl${:x}", md5::Md5::digest(b"NaClpassword"));
    let password_first = format!("NaCl${:x}", md5::Md5::digest(b"passwordNaCl"));
    for digest in [&salt_first, &password_first] {
        assert!(LegacyDigest::parse("md5_salted", digest).unwrap().verify("password"), "{digest}");
        let other_salt = digest.replacen("NaCl", "KCl", 1);
        assert!(!LegacyDigest::parse("md5_salted", &other_salt).unwrap().verify("password"), "{other_salt}");
        assert!(!LegacyDigest::parse("md5_salted", digest).unwrap().verify("NaClpassword"), "{digest}");
    }
    // A salt holding `$`: the hash is after the last one.
    let dollar = format!("a$b${:x}", Sha256::digest(b"a$bpassword"));
    assert!(LegacyDigest::parse("sha256_salted", &dollar).unwrap().verify("password"));
    // Upper-case hex is the same digest.
    assert!(LegacyDigest::parse("md5_salted", &salt_first.to_uppercase().replacen("NACL", "NaCl", 1))
        .unwrap()
        .verify("password"));
}

#[test]
fn a_pepper_is_required_to_match() {
    let digest = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.JJBRCXLYyEGcXpbJctcjL2CMCZLipoe$pepper-of-the-app";
    assert!(LegacyDigest::parse("bcrypt_peppered", digest).unwrap().verify("devise-password"));
    let other = digest.replace("$pepper-of-the-app", "$another-pepper");
    assert!(!LegacyDigest::parse("bcrypt_peppered", &other).unwrap().verify("devise-password"));
    // Nor does the peppered hash verify as plain bcrypt of the password alone.
    let bare = LegacyDigest::parse("bcrypt", &digest[..60]).unwrap();
    assert!(!bare.verify("devise-password") && bare.verify("devise-passwordpepper-of-the-app"));
}

#[test]
fn hmac_reads_the_password_as_utf16le() {
    // The same HMAC over the UTF-8 bytes is not accepted.
    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(b"secret-key").unwrap();
    hmac::Mac::update(&mut mac, b"password");
    let utf8 = base64::engine::general_purpose::STANDARD.encode(hmac::Mac::finalize(mac).into_bytes());
    let d = LegacyDigest::parse("hmac_sha256_utf16_b64", &format!("hmac_sha256_utf16_b64${utf8}$secret-key")).unwrap();
    assert!(!d.verify("password"));
}

#[test]
fn cut_short_and_overlong_hashes_and_heavy_work_are_refused_with_the_reason() {
    let hex = |bytes: usize| "ab".repeat(bytes);
    let b64 = |bytes: usize| base64::engine::general_purpose::STANDARD.encode(vec![0xab; bytes]);
    let phpass_tail = "IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0";
    for (hasher, digest, reason) in [
        // A hash cut short: one byte lets one wrong password in 256 through.
        ("pbkdf2_sha1", "pbkdf2_sha1$1$salt$ab".to_owned(), "at least 16 bytes, not 1"),
        ("pbkdf2_sha1", format!("pbkdf2_sha1$1000$salt${}$15", hex(15)), "at least 16 bytes, not 15"),
        ("pbkdf2_sha512", format!("pbkdf2_sha512$1000$salt${}", hex(15)), "at least 16 bytes, not 15"),
        ("pbkdf2_sha512_hex", format!("pbkdf2_sha512_hex$1000$73616c74${}", hex(1)), "at least 16 bytes, not 1"),
        ("pbkdf2_sha256", format!("pbkdf2_sha256$1000$c2FsdA==${}", b64(15)), "at least 16 bytes, not 15"),
        ("pbkdf2_sha256_django", format!("pbkdf2_sha256$1000$salt${}", b64(1)), "at least 16 bytes, not 1"),
        ("scrypt_werkzeug", format!("scrypt:32768:8:1$salt${}", hex(9)), "at least 16 bytes, not 9"),
        ("scrypt_werkzeug", format!("scrypt:32768:8:1$salt${}", hex(15)), "at least 16 bytes, not 15"),
        ("scrypt_firebase", format!("{}$c2FsdA==${}$Bw==$8$14", b64(8), b64(8)), "at least 16 bytes, not 8"),
        ("scrypt_firebase", format!("{}$c2FsdA==${}$Bw==$8$14", b64(15), b64(15)), "at least 16 bytes, not 15"),
        // An output past 64 bytes: each PBKDF2 block costs the iterations again.
        (
            "pbkdf2_sha512_hex",
            format!("pbkdf2_sha512_hex$2000000$73616c74${}", hex(1024)),
            "at most 64 bytes, not 1024",
        ),
        ("pbkdf2_sha1", format!("pbkdf2_sha1$1000$salt${}$1024", hex(1024)), "at most 64 bytes, not 1024"),
        ("pbkdf2_sha256", format!("pbkdf2_sha256$1000$c2FsdA==${}", b64(65)), "at most 64 bytes, not 65"),
        ("scrypt_werkzeug", format!("scrypt:32768:8:1$salt${}", hex(65)), "at most 64 bytes, not 65"),
        // Within 64 bytes, iterations × blocks stays within the iteration cap.
        ("pbkdf2_sha256", format!("pbkdf2_sha256$1000001$c2FsdA==${}", b64(64)), "iterations × blocks"),
        ("pbkdf2_sha1", format!("pbkdf2_sha1$500001$salt${}", hex(64)), "iterations × blocks"),
        ("pbkdf2_sha1", format!("pbkdf2_sha1$1000001$salt${}", hex(21)), "iterations × blocks"),
        // Symfony hashes password{salt} at every iteration: its salt and iterations are bounded.
        ("sha512_symfony", format!("sha512_symfony$5000${}${}", "s".repeat(257), b64(64)), "at most 256 bytes"),
        ("sha512_symfony", format!("sha512_symfony$5000${}${}", "s".repeat(2048), b64(64)), "at most 256 bytes"),
        ("sha512_symfony", format!("sha512_symfony$500001$salt${}", b64(64)), "from 1 to 500000"),
        // phpass past 2^19 rounds (`I` is 2^20).
        ("phpass", format!("$P$I{phpass_tail}"), "from 2^7 to 2^19"),
        ("scrypt_werkzeug", format!("scrypt:32768:8:1$${}", hex(64)), "salt must be 1 to"),
    ] {
        let err = LegacyDigest::parse(hasher, &digest).map(|_| ()).unwrap_err();
        assert!(err.contains(reason), "{hasher} {}: {err:?} lacks {reason:?}", &digest[..digest.len().min(80)]);
    }
    // Just within each bound: taken.
    for (hasher, digest) in [
        ("pbkdf2_sha1", format!("pbkdf2_sha1$1000$salt${}", hex(16))),
        ("pbkdf2_sha1", format!("pbkdf2_sha1$1000000$salt${}$32", hex(32))),
        ("pbkdf2_sha1", format!("pbkdf2_sha1$500000$salt${}", hex(64))),
        ("pbkdf2_sha256", format!("pbkdf2_sha256$1000000$c2FsdA==${}", b64(64))),
        ("pbkdf2_sha256_django", format!("pbkdf2_sha256$2000000$salt${}", b64(32))),
        ("pbkdf2_sha512_hex", format!("pbkdf2_sha512_hex$2000000$73616c74${}", hex(64))),
        ("scrypt_werkzeug", format!("scrypt:32768:8:1$salt${}", hex(16))),
        ("scrypt_firebase", format!("{}$c2FsdA==${}$Bw==$8$14", b64(16), b64(16))),
        ("sha512_symfony", format!("sha512_symfony$500000${}${}", "s".repeat(256), b64(64))),
        ("phpass", format!("$P$H{phpass_tail}")),
    ] {
        LegacyDigest::parse(hasher, &digest).unwrap_or_else(|e| panic!("{hasher}: {e}"));
    }
}

#[test]
fn a_sixteen_byte_pbkdf2_hash_verifies_only_its_password() {
    let mut key = [0u8; 16];
    pbkdf2::pbkdf2::<Hmac<Sha256>>(b"password", b"salt", 1000, &mut key).unwrap();
    let digest = format!("pbkdf2_sha256$1000$salt${}", base64::engine::general_purpose::STANDARD.encode(key));
    let d = LegacyDigest::parse("pbkdf2_sha256_django", &digest).unwrap();
    assert!(d.verify("password"));
    // No wrong password among many passes a 16-byte hash (with a 1-byte one, about 1 in 256 did).
    assert!((0..300).all(|i| !d.verify(&format!("wrong{i}"))));
}

#[test]
fn phpass_and_symfony_refuse_a_password_past_4096_bytes_as_their_libraries_do() {
    let symfony = |pw: &str| {
        let digest = Sha512::digest(format!("{pw}{{salt}}").as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        LegacyDigest::parse("sha512_symfony", &format!("sha512_symfony$1$salt${b64}")).unwrap()
    };
    // phpass with 2^7 rounds (`5`), its checksum made here as phpass makes it.
    let phpass = |pw: &str| {
        let mut h = Md5::new().chain_update(b"saltsalt").chain_update(pw).finalize();
        for _ in 0..1 << 7 {
            h = Md5::new().chain_update(h).chain_update(pw).finalize();
        }
        LegacyDigest::parse("phpass", &format!("$P$5saltsalt{}", crypt::phpass_encode(&h))).unwrap()
    };
    let (longest, too_long) = ("p".repeat(4096), "p".repeat(4097));
    assert!(symfony(&longest).verify(&longest) && phpass(&longest).verify(&longest));
    assert!(!symfony(&too_long).verify(&too_long) && !phpass(&too_long).verify(&too_long));
}
