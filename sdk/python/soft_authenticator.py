"""A software WebAuthn authenticator for the oracles (docs/passkeys.md), the Python twin of the
Rust tests' crates/latchkey/tests/it/soft_authenticator.rs: ES256 (P-256) keys from the pinned
`cryptography`, "none" attestation, discoverable credentials that keep the user handle, and a
signature counter per credential. It answers with exactly the JSON clerk-js posts as the form
field `public_key_credential`. An answer can be bent (its challenge) to be refused.

The browser's page is ORIGIN (on the relying party RP_ID): nothing listens there, it is only
named in clientDataJSON, and LATCHKEY_TOML makes latchkey accept it.
"""

import base64
import hashlib
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

RP_ID = "localhost"
ORIGIN = "http://localhost:4173"

# Top-level keys first: whatever follows may open a table of its own.
LATCHKEY_TOML = "\n".join([
    f'allowed_origins = ["{ORIGIN}"]',
    "",
    "[passkeys]",
    "enabled = true",
    f'rp_id = "{RP_ID}"',
    "",
])

UP, UV, AT = 0x01, 0x04, 0x40


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cbor_head(major, length):
    m = major << 5
    if length <= 23:
        return bytes([m | length])
    if length <= 0xFF:
        return bytes([m | 24, length])
    return bytes([m | 25]) + length.to_bytes(2, "big")


def _cbor_text(s):
    return _cbor_head(3, len(s.encode())) + s.encode()


def _cbor_bytes(b):
    return _cbor_head(2, len(b)) + b


class Credential:
    def __init__(self, key, credential_id, user_handle):
        self.key = key
        self.id = credential_id
        self.user_handle = user_handle
        self.counter = 0


class SoftAuthenticator:
    def __init__(self, origin=ORIGIN, rp_id=RP_ID):
        self.origin = origin
        self.rp_id = rp_id
        self.credentials = []

    def _client_data(self, kind, challenge):
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def _auth_data_head(self, flags, counter):
        return hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) + counter.to_bytes(4, "big")

    def register(self, options):
        """Answers registration options (the parsed `verification.nonce`) with a new resident
        credential, as `navigator.credentials.create` would."""
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        cose = bytes([0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]) + x + bytes([0x22, 0x58, 0x20]) + y
        credential_id = os.urandom(32)
        auth_data = (
            self._auth_data_head(UP | UV | AT, 0)
            + bytes(16)
            + len(credential_id).to_bytes(2, "big")
            + credential_id
            + cose
        )
        attestation = (
            bytes([0xA3])
            + _cbor_text("fmt") + _cbor_text("none")
            + _cbor_text("attStmt") + bytes([0xA0])
            + _cbor_text("authData") + _cbor_bytes(auth_data)
        )
        client_data = self._client_data("webauthn.create", options["challenge"])
        self.credentials.append(Credential(key, credential_id, unb64(options["user"]["id"])))
        return {
            "type": "public-key",
            "id": b64(credential_id),
            "rawId": b64(credential_id),
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["internal"],
            },
        }

    def assert_(self, options, index=0, challenge=None):
        """Answers request options (the parsed `nonce` of a passkey verification) with the
        credential at `index`, its counter one higher, as `navigator.credentials.get` would;
        `challenge`, when given, is answered instead of the options' own."""
        credential = self.credentials[index]
        credential.counter += 1
        auth_data = self._auth_data_head(UP | UV, credential.counter)
        client_data = self._client_data("webauthn.get", challenge or options["challenge"])
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "type": "public-key",
            "id": b64(credential.id),
            "rawId": b64(credential.id),
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(credential.user_handle),
            },
        }


def answer(credential):
    """The form value clerk-js posts: the credential as JSON text."""
    return json.dumps(credential, separators=(",", ":"))


def register_through_frontend(url, identifier, password, name=None):
    """Signs `identifier` in with its password in a browser of its own (the instance's Origin)
    and registers a passkey there, as `<UserProfile/>` does: `POST /v1/me/passkeys`, then the
    authenticator's answer to `…/attempt_verification`. (authenticator, passkey id)."""
    import requests

    browser = requests.Session()
    browser.headers["Origin"] = url

    def post(path, form):
        r = browser.post(url + path, data=form, timeout=30)
        if r.status_code != 200:
            raise SystemExit(f"POST {path}: {r.status_code} {r.text[:300]}")
        return r.json()["response"]

    post("/v1/client/sign_ins", {"identifier": identifier, "strategy": "password", "password": password})
    pending = post("/v1/me/passkeys", {})
    authenticator = SoftAuthenticator()
    credential = authenticator.register(json.loads(pending["verification"]["nonce"]))
    post(f"/v1/me/passkeys/{pending['id']}/attempt_verification",
         {"strategy": "passkey", "public_key_credential": answer(credential)})
    if name:
        r = browser.patch(url + f"/v1/me/passkeys/{pending['id']}", data={"name": name}, timeout=30)
        if r.status_code != 200:
            raise SystemExit(f"PATCH /v1/me/passkeys/{pending['id']}: {r.status_code} {r.text[:300]}")
    return authenticator, pending["id"]
