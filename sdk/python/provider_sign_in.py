"""An identity provider for the oracles (docs/identity-providers.md): the Rust tests' loopback
OpenID Provider (crates/latchkey/tests/it/oidc/provider.mjs, npm oidc-provider; its README.md
beside it) standing in for Google, the `latchkey.toml` that points latchkey's `[oauth.google]`
preset at it, and a sign-in through it driven the way a browser goes (cookies kept, the
instance's own Origin, each redirect looked at rather than followed blindly).

The provider knows one person, ACCOUNT, who vouches for ADDRESS: a user of latchkey with that
address verified is joined by the provider account on its first sign-in, and signed in.
"""

import json
import os
import subprocess
import tempfile
import threading
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "crates", "latchkey", "tests", "it", "oidc", "provider.mjs")

STRATEGY = "oauth_google"
CLIENT_ID = "google-client"
CLIENT_SECRET = "google-client-secret"
ADDRESS = "ada@example.com"
ACCOUNT = {"sub": "g-ada", "email": ADDRESS, "email_verified": True, "given_name": "Ada", "family_name": "Lovelace"}


class OpenIdProvider:
    """The loopback OpenID Provider; `stop()` closes its stdin, which ends it."""

    def __init__(self):
        # A native client may come back to any port of the loopback address (RFC 8252), so the
        # provider starts before the latchkey whose port its redirect URI names.
        client = {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/v1/oauth_callback"],
        }
        config = {"clients": [client], "accounts": [ACCOUNT]}
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            ["node", SCRIPT, json.dumps(config)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
        )
        # Its first stdout line, `{"issuer": …}`, once it listens (read aside: readline has no
        # timeout of its own).
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(60)
        if not line or not line[0].strip():
            self.stop()
            self.log.seek(0)
            raise SystemExit(
                "the loopback OpenID Provider did not start (it needs the root `npm ci`):\n" + self.log.read()[-2000:]
            )
        self.issuer = json.loads(line[0])["issuer"]

    def latchkey_toml(self):
        """The configuration that makes it latchkey's Google (the preset, its issuer replaced)."""
        return "\n".join([
            "[oauth.google]",
            f'client_id = "{CLIENT_ID}"',
            f'client_secret = "{CLIENT_SECRET}"',
            f'issuer = "{self.issuer}"',
            "",
        ])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_form(url):
    """The form of `POST /v1/client/sign_ins` that starts a trip to the provider: back to a page
    of the instance's own origin."""
    return {"strategy": STRATEGY, "redirect_url": url + "/done", "action_complete_redirect_url": url + "/done"}


def through_provider(http, url, provider_url, who=ACCOUNT["sub"]):
    """Goes through the provider as `who` (its `login_hint`) with the browser's session `http`:
    the URL of latchkey's callback it sends the browser back to (not yet followed)."""
    next_url = f"{provider_url}&login_hint={urllib.parse.quote(who)}"
    for _ in range(10):
        r = http.get(next_url, allow_redirects=False, timeout=30)
        if not r.is_redirect:
            raise SystemExit(f"the provider answered {r.status_code} at {next_url}: {r.text[:300]}")
        to = urllib.parse.urljoin(next_url, r.headers["location"])
        if to.startswith(url + "/"):
            return to
        next_url = to
    raise SystemExit("the provider never sent the browser back")


def callback_of(url, callback_url):
    """latchkey's callback URL as a path and its query parameters."""
    parts = urllib.parse.urlsplit(callback_url)
    assert callback_url.startswith(url) and parts.path == "/v1/oauth_callback", callback_url
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))


def sign_in(http, url, who=ACCOUNT["sub"]):
    """The whole trip with `http` (a requests.Session with `Origin: <url>`): start, the provider,
    the callback. The callback's answer (a 303 once signed in)."""
    start = http.post(url + "/v1/client/sign_ins", data=start_form(url), timeout=30)
    if start.status_code != 200:
        raise SystemExit(f"POST /v1/client/sign_ins with {STRATEGY}: {start.status_code} {start.text[:300]}")
    verification = start.json()["response"]["first_factor_verification"]
    back = through_provider(http, url, verification["external_verification_redirect_url"], who)
    path, params = callback_of(url, back)
    return http.get(url + path, params=params, allow_redirects=False, timeout=30)
