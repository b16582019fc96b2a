"""A verifier in another language following latchkey's revocation feed (docs/revocations.md):
`Revocations` polls the catch-up endpoint beside PyJWT's verification; `run` proves it against a
real latchkey: a revoked session, a banned user, a changed role (a fresh token with the new role
passes) and a removed membership are each refused while their tokens are unexpired."""

import json
import threading
import time
import urllib.request

import jwt


class Revocations:
    """Follows latchkey's revocation feed by catch-up calls; refuses(claims) says whether a
    verified token must still be refused."""

    def __init__(self, issuer, secret_key, every=1.0):
        self.issuer, self.key, self.every = issuer.rstrip("/"), secret_key, every
        self.cursor, self.entries, self.lock = None, {}, threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self):
        while not self.stopped.is_set():
            try:
                url = f"{self.issuer}/v1/revocations" + (f"?since={self.cursor}" if self.cursor else "")
                req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.key}"})
                with urllib.request.urlopen(req, timeout=5) as res:
                    page = json.load(res)
                now = time.time() * 1000
                with self.lock:
                    for e in page["data"]:
                        self.entries[e["id"]] = e
                    self.entries = {i: e for i, e in self.entries.items() if e["expires_at"] > now}
                self.cursor = page["cursor"]
                if page["has_more"]:
                    continue
            except OSError:
                pass  # unreachable: signatures alone until it is back
            self.stopped.wait(self.every)

    def stop(self):
        self.stopped.set()

    def refuses(self, claims):
        org = claims.get("o") or {}
        org_id = org.get("id", claims.get("org_id"))
        # Version 2 tokens carry the role without its `org:` prefix; entries carry it whole.
        role = org.get("rol", claims.get("org_role"))
        if role and not role.startswith("org:"):
            role = "org:" + role
        with self.lock:
            entries = list(self.entries.values())
        change = None  # the latest entry about this member in this organization
        for e in entries:
            if e["kind"] == "session" and e["subject"] == claims.get("sid"):
                return True
            if e["kind"] == "user" and e["subject"] == claims["sub"] and claims["iat"] * 1000 <= e["at"]:
                return True
            if (e["kind"] == "membership" and org_id and e["subject"] == claims["sub"]
                    and e.get("organization_id") == org_id and (change is None or change["at"] <= e["at"])):
                change = e
        # Removed (no role): every token for the organization; changed: all but the new role.
        return change is not None and change.get("role") != role


def run(url, secret, call):
    """`call(url, path, method, secret, body=...)` is run.py's JSON helper."""
    jwks = jwt.PyJWKClient(url + "/.well-known/jwks.json")

    def claims_of(token):
        key = jwks.get_signing_key_from_jwt(token).key
        return jwt.decode(token, key, algorithms=["RS256"], issuer=url)

    def signed_in(email, org_id=None):
        user = call(url, "/v1/users", "POST", secret, body={"email_address": [email]})
        body = {"user_id": user["id"]}
        if org_id:
            body["active_organization_id"] = org_id
        session = call(url, "/v1/sessions", "POST", secret, body=body)
        return user["id"], session["id"]

    def token(session_id):
        return call(url, f"/v1/sessions/{session_id}/tokens", "POST", secret, body={})["jwt"]

    feed = Revocations(url, secret, every=0.2)
    try:
        def refused_soon(tok, what):
            claims = claims_of(tok)
            deadline = time.time() + 20
            while not feed.refuses(claims):
                if time.time() > deadline:
                    raise AssertionError(f"{what}: the token is still accepted")
                time.sleep(0.05)

        _, ada_session = signed_in("ada-feed@example.com")
        ada = token(ada_session)
        assert not feed.refuses(claims_of(ada)), "a live session's token is refused"
        call(url, f"/v1/sessions/{ada_session}/revoke", "POST", secret, body={})
        started = time.time()
        refused_soon(ada, "a revoked session")
        print(f"revocations.py: a revoked session's token refused {time.time() - started:.2f} s after the revoke")

        bob, bob_session = signed_in("bob-feed@example.com")
        bob_token = token(bob_session)
        assert not feed.refuses(claims_of(bob_token))
        call(url, f"/v1/users/{bob}/ban", "POST", secret, body={})
        refused_soon(bob_token, "a banned user")

        carol, _ = signed_in("carol-feed@example.com")
        org = call(url, "/v1/organizations", "POST", secret, body={"name": "Carol's", "created_by": carol})
        session = call(url, "/v1/sessions", "POST", secret, body={"user_id": carol, "active_organization_id": org["id"]})
        admin = token(session["id"])
        assert claims_of(admin)["o"]["id"] == org["id"], claims_of(admin)
        assert not feed.refuses(claims_of(admin)), "an admin's token is refused before any change"
        dan, _ = signed_in("dan-feed@example.com")
        memberships = f"/v1/organizations/{org['id']}/memberships"
        call(url, memberships, "POST", secret, body={"user_id": dan, "role": "org:admin"})
        call(url, f"{memberships}/{carol}", "PATCH", secret, body={"role": "org:member"})
        refused_soon(admin, "a changed role")
        member = token(session["id"])
        assert not feed.refuses(claims_of(member)), f"the new role is refused: {claims_of(member)}"
        call(url, f"{memberships}/{carol}", "DELETE", secret)
        refused_soon(member, "a removed membership")
        print("revocations.py: a banned user, a changed role and a removed membership refused; the new role passes")
    finally:
        feed.stop()
