//! A software WebAuthn authenticator for the HTTP tests (docs/passkeys.md): ES256 keys from
//! `ring`, "none" attestation, discoverable credentials that keep the user handle, and a
//! signature counter per credential. It answers with exactly the JSON clerk-js posts as
//! `public_key_credential`. Each part of an answer can be bent (origin, relying party, flags,
//! counter, challenge) to test the refusals.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct Credential {
    pub id: Vec<u8>,
    pkcs8: Vec<u8>,
    pair: EcdsaKeyPair,
    pub user_handle: Vec<u8>,
    pub counter: u32,
}

/// How an answer differs from an honest one.
#[derive(Clone, Default)]
pub struct Bend {
    pub origin: Option<String>,
    pub rp_id: Option<String>,
    /// Leave out user verification (the UV flag).
    pub no_uv: bool,
    /// Send this counter instead of the next one.
    pub counter: Option<u32>,
    pub challenge: Option<String>,
    pub client_data_type: Option<String>,
    /// Answer with this user handle.
    pub user_handle: Option<Vec<u8>>,
    /// Register the credential at this index again (its id and key), as a clone would.
    pub reuse: Option<usize>,
}

pub struct SoftAuthenticator {
    pub origin: String,
    pub rp_id: String,
    pub credentials: Vec<Credential>,
    rng: SystemRandom,
}

fn cbor_head(major: u8, len: usize) -> Vec<u8> {
    let m = major << 5;
    match len {
        0..=23 => vec![m | len as u8],
        24..=255 => vec![m | 24, len as u8],
        _ => {
            let mut v = vec![m | 25];
            v.extend_from_slice(&(len as u16).to_be_bytes());
            v
        }
    }
}

fn cbor_text(s: &str) -> Vec<u8> {
    let mut v = cbor_head(3, s.len());
    v.extend_from_slice(s.as_bytes());
    v
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    let mut v = cbor_head(2, b.len());
    v.extend_from_slice(b);
    v
}

impl SoftAuthenticator {
    pub fn new(origin: &str, rp_id: &str) -> Self {
        Self { origin: origin.into(), rp_id: rp_id.into(), credentials: Vec::new(), rng: SystemRandom::new() }
    }

    fn client_data(&self, kind: &str, challenge: &str, bend: &Bend) -> Vec<u8> {
        json!({
            "type": bend.client_data_type.clone().unwrap_or_else(|| kind.into()),
            "challenge": bend.challenge.clone().unwrap_or_else(|| challenge.into()),
            "origin": bend.origin.clone().unwrap_or_else(|| self.origin.clone()),
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    fn auth_data_head(&self, flags: u8, counter: u32, bend: &Bend) -> Vec<u8> {
        let rp = bend.rp_id.clone().unwrap_or_else(|| self.rp_id.clone());
        let mut data = Sha256::digest(rp.as_bytes()).to_vec();
        data.push(if bend.no_uv { flags & !UV } else { flags });
        data.extend_from_slice(&counter.to_be_bytes());
        data
    }

    /// Answers registration options (the parsed `verification.nonce`) with a new resident
    /// credential, as `navigator.credentials.create` would.
    pub fn register(&mut self, options: &Value) -> Value {
        self.register_bent(options, &Bend::default())
    }

    pub fn register_bent(&mut self, options: &Value, bend: &Bend) -> Value {
        let challenge = options["challenge"].as_str().expect("challenge");
        let user_handle = B64.decode(options["user"]["id"].as_str().expect("user.id")).expect("user.id b64");
        let (pkcs8, id) = match bend.reuse {
            Some(i) => (self.credentials[i].pkcs8.clone(), self.credentials[i].id.clone()),
            None => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.rng).expect("key");
                let mut id = vec![0u8; 32];
                ring::rand::SecureRandom::fill(&self.rng, &mut id).expect("rng");
                (pkcs8.as_ref().to_vec(), id)
            }
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &self.rng).expect("key");
        let public = pair.public_key().as_ref().to_vec();
        let (x, y) = (&public[1..33], &public[33..65]);

        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend_from_slice(x);
        cose.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose.extend_from_slice(y);
        let counter = bend.counter.unwrap_or(0);
        let mut auth_data = self.auth_data_head(UP | UV | AT, counter, bend);
        auth_data.extend_from_slice(&[0u8; 16]);
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose);
        let mut attestation = vec![0xa3];
        attestation.extend(cbor_text("fmt"));
        attestation.extend(cbor_text("none"));
        attestation.extend(cbor_text("attStmt"));
        attestation.push(0xa0);
        attestation.extend(cbor_text("authData"));
        attestation.extend(cbor_bytes(&auth_data));

        let client_data = self.client_data("webauthn.create", challenge, bend);
        let b64id = B64.encode(&id);
        self.credentials.push(Credential { id, pkcs8, pair, user_handle, counter });
        json!({
            "type": "public-key",
            "id": b64id,
            "rawId": b64id,
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "attestationObject": B64.encode(attestation),
                "transports": ["internal"],
            },
        })
    }

    /// Answers request options (the parsed `first_factor_verification.nonce`) with the
    /// credential at `index`, its counter one higher, as `navigator.credentials.get` would.
    pub fn assert(&mut self, options: &Value, index: usize) -> Value {
        self.assert_bent(options, index, &Bend::default())
    }

    pub fn assert_bent(&mut self, options: &Value, index: usize, bend: &Bend) -> Value {
        let challenge = options["challenge"].as_str().expect("challenge").to_owned();
        let next = self.credentials[index].counter + 1;
        let counter = bend.counter.unwrap_or(next);
        let auth_data = self.auth_data_head(UP | UV, counter, bend);
        let client_data = self.client_data("webauthn.get", &challenge, bend);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let credential = &mut self.credentials[index];
        credential.counter = counter.max(credential.counter);
        let signature = credential.pair.sign(&self.rng, &signed).expect("sign");
        let b64id = B64.encode(&credential.id);
        let handle = bend.user_handle.clone().unwrap_or_else(|| credential.user_handle.clone());
        json!({
            "type": "public-key",
            "id": b64id,
            "rawId": b64id,
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "authenticatorData": B64.encode(auth_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": B64.encode(handle),
            },
        })
    }
}
