"""Checks latchkey with third-party Python tools against freshly started binaries: PyJWT
verifies a session token against /.well-known/jwks.json; schemathesis fuzzes the Backend API
from /v1/openapi.json (bounded examples) for server errors and responses that break the
document; and Clerk's own Backend API and Frontend API documents, through schemathesis,
validate a real call of every operation latchkey implements (clerk_oracle.py,
clerk_fapi_oracle.py), with the loopback OpenID Provider as the instance's Google so that
provider accounts, their sign-in and their tokens are validated too (provider_sign_in.py), and
with passkeys on, so that a software authenticator registers and signs in with one
(soft_authenticator.py); and password digests made by each ecosystem's own library (bcrypt,
Django, passlib, Werkzeug, argon2-cffi, hashlib …) are imported through the Backend API and
signed in with through the Frontend API (legacy_digests.py); and a Python verifier following the
revocation feed refuses revoked sessions, banned users and changed roles (revocations.py)."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import requests

import jwt

import clerk_fapi_oracle
import clerk_oracle
import legacy_digests
import provider_sign_in
import revocations
import soft_authenticator

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_latchkey(config=None):
    """A fresh latchkey in a scratch directory; `config`, when given, is its ./latchkey.toml."""
    binary = os.environ.get("LATCHKEY_BIN", os.path.join(ROOT, "target", "debug", "latchkey"))
    workdir = tempfile.mkdtemp(prefix="latchkey-py-")
    if config is not None:
        with open(os.path.join(workdir, "latchkey.toml"), "w") as f:
            f.write(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(workdir, "latchkey.log"), "w+")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--public-url", url, "--data-dir", os.path.join(workdir, "data")],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        # No webhook worker: fuzzed endpoints must never be dialled.
        env={**os.environ, "RUST_LOG": "warn", "LATCHKEY_WEBHOOKS__ENABLED": "false"},
    )
    deadline = time.time() + 30
    while True:
        log.seek(0)
        out = log.read()
        # The banner is written in pieces: wait for the key itself, not only its heading.
        if "next steps" in out and re.search(r"sk_live_[A-Za-z0-9_-]+", out):
            break
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"latchkey did not start:\n{out}")
        time.sleep(0.05)
    secret = re.search(r"sk_live_[A-Za-z0-9_-]+", out).group(0)
    return proc, workdir, url, secret


def call(url, path, method="GET", secret=None, form=None, body=None, origin=None):
    headers = {}
    data = None
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    if origin:
        headers["Origin"] = origin
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)


def check_pyjwt(url, secret):
    password = "plum-Anchor-47-quietly"
    user = call(url, "/v1/users", "POST", secret, body={"email_address": ["py@example.com"], "password": password})
    reply = call(url, "/v1/client/sign_ins", "POST", form={"identifier": "py@example.com", "password": password, "strategy": "password"}, origin=url)
    session = next(s for s in reply["client"]["sessions"] if s["id"] == reply["response"]["created_session_id"])
    token = session["last_active_token"]["jwt"]
    signing_key = jwt.PyJWKClient(url + "/.well-known/jwks.json").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], issuer=url, options={"require": ["exp", "iat", "nbf", "sub", "sid"]})
    assert claims["sub"] == user["id"], claims
    assert claims["sid"] == session["id"], claims
    assert claims["azp"] == url, claims
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    try:
        jwt.decode(tampered, signing_key.key, algorithms=["RS256"], issuer=url)
    except jwt.InvalidSignatureError:
        pass
    else:
        raise AssertionError("a tampered token verified")
    try:
        jwt.decode(token, signing_key.key, algorithms=["RS256"], issuer="https://someone-else.example")
    except jwt.InvalidIssuerError:
        pass
    else:
        raise AssertionError("a token verified for another issuer")
    print("PyJWT: session token verified against /.well-known/jwks.json; tampering and a wrong issuer refused")


def seed_objects(url, secret, workdir):
    """Real objects for path parameters, so operations are exercised past a 404."""
    user = call(url, "/v1/users", "POST", secret, body={"email_address": ["fuzz@example.com"], "phone_number": ["+15550100111"], "password": "plum-Anchor-47-quietly"})
    session = call(url, "/v1/sessions", "POST", secret, body={"user_id": user["id"]})
    template = call(url, "/v1/jwt_templates", "POST", secret, body={"name": "fuzz", "claims": {"aud": "x", "uid": "{{user.id}}"}})
    invitation = call(url, "/v1/invitations", "POST", secret, body={"email_address": "invited@example.com", "notify": False})
    token = call(url, "/v1/sign_in_tokens", "POST", secret, body={"user_id": user["id"]})
    org = call(url, "/v1/organizations", "POST", secret, body={"name": "Fuzz", "created_by": user["id"]})
    org_invitation = call(url, f"/v1/organizations/{org['id']}/invitations", "POST", secret, body={"email_address": "org-invited@example.com"})
    values = {
        "user_id": user["id"],
        "session_id": session["id"],
        "email_address_id": user["email_addresses"][0]["id"],
        "phone_number_id": user["phone_numbers"][0]["id"],
        "template_id": template["id"],
        "template_name": "fuzz",
        "invitation_id": invitation["id"],
        "sign_in_token_id": token["id"],
        "organization_id": org["id"],
        "organization_invitation_id": org_invitation["id"],
    }
    path = os.path.join(workdir, "schemathesis.toml")
    with open(path, "w") as f:
        f.write("[parameters]\n")
        for name, value in values.items():
            f.write(f'"path.{name}" = "{value}"\n')
    return path


def run_schemathesis(url, secret, config, workdir):
    examples = os.environ.get("LATCHKEY_SCHEMATHESIS_EXAMPLES", "25")
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"), "--config-file", config, "run", url + "/v1/openapi.json",
        "--header", f"Authorization: Bearer {secret}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", examples, "--seed", "20261123", "--generation-deterministic",
        "--request-timeout", "20", "--workers", "1", "--no-color",
    ]
    print("schemathesis:", " ".join(c if not c.startswith("Authorization") else "Authorization: Bearer …" for c in cmd[1:]), flush=True)
    # Run from the scratch directory: schemathesis keeps a cache where it runs.
    result = subprocess.run(cmd, cwd=workdir, env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    if result.returncode != 0:
        raise SystemExit(f"schemathesis found problems (exit {result.returncode})")


def with_latchkey(check, config=None):
    proc, workdir, url, secret = start_latchkey(config)
    try:
        check(url, secret, workdir)
    except requests.exceptions.ConnectionError:
        # Say whether latchkey was still running and what it logged last, before the workdir goes.
        state = "still running" if proc.poll() is None else f"exited with {proc.returncode}"
        with open(os.path.join(workdir, "latchkey.log")) as f:
            tail = f.read()[-4000:]
        print(f"latchkey dropped a connection; it is {state}. The end of its log:\n{tail}", file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def with_provider_and_latchkey(check):
    """A latchkey whose Google is the loopback OpenID Provider, with passkeys on for the soft
    authenticator's page (soft_authenticator.py); `check(url, secret, issuer)`."""
    provider = provider_sign_in.OpenIdProvider()
    config = soft_authenticator.LATCHKEY_TOML + provider.latchkey_toml()
    try:
        with_latchkey(lambda url, secret, _: check(url, secret, provider.issuer), config)
    finally:
        provider.stop()


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else None
    if only in (None, "oracle"):
        # A fresh instance of its own: its checks count users and sessions.
        with_provider_and_latchkey(clerk_oracle.run)
    if only in (None, "fapi-oracle"):
        # A fresh instance too: its scenario signs up the users it names.
        with_provider_and_latchkey(clerk_fapi_oracle.run)
    if only in (None, "legacy-digests"):
        # A fresh instance whose per-IP limit lets one address sign in about fifty times.
        with_latchkey(lambda url, secret, _: legacy_digests.run(url, secret), legacy_digests.LATCHKEY_TOML)
    if only in (None, "revocations"):
        with_latchkey(lambda url, secret, _: revocations.run(url, secret, call))
    if only in (None, "fuzz"):
        # No provider here: fuzzing needs none, and dials nothing beyond latchkey.
        def pyjwt_and_fuzz(url, secret, workdir):
            check_pyjwt(url, secret)
            run_schemathesis(url, secret, seed_objects(url, secret, workdir), workdir)
        with_latchkey(pyjwt_and_fuzz)


if __name__ == "__main__":
    main()
