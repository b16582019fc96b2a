"""Clerk's Frontend API document as the oracle (docs/clerk-conformance.md, "Frontend API").

Every Frontend API route latchkey serves is listed in ROUTES with the operation of Clerk's
document it implements; the scenario calls each for real, as a browser would (a cookie jar, the
instance's own Origin, form bodies), and schemathesis validates each response against Clerk's
schema for that operation and status. A listed route the scenario does not call fails the run.
"""

import os

import requests
import schemathesis

from clerk_oracle import PASSWORD, summary

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FAPI_DOCUMENT = os.path.join(ROOT, "sdk", "clerk-openapi", "clerk-fapi-2026-05-12.yml")

# latchkey's Frontend API routes and the operations of Clerk's document they implement.
ROUTES = {
    "getEnvironment": ("GET", "/v1/environment"),
    "updateEnvironment": ("PATCH", "/v1/environment"),
    "getClient": ("GET", "/v1/client"),
    "putClient": ("PUT", "/v1/client"),
    "postClient": ("POST", "/v1/client"),
    "deleteClientSessions": ("DELETE", "/v1/client"),
    "handshakeClient": ("GET", "/v1/client/handshake"),
    "createSignUps": ("POST", "/v1/client/sign_ups"),
    "getSignUps": ("GET", "/v1/client/sign_ups/{sign_up_id}"),
    "updateSignUps": ("PATCH", "/v1/client/sign_ups/{sign_up_id}"),
    "prepareSignUpsVerification": ("POST", "/v1/client/sign_ups/{sign_up_id}/prepare_verification"),
    "attemptSignUpsVerification": ("POST", "/v1/client/sign_ups/{sign_up_id}/attempt_verification"),
    "createSignIn": ("POST", "/v1/client/sign_ins"),
    "getSignIn": ("GET", "/v1/client/sign_ins/{sign_in_id}"),
    "prepareSignInFactorOne": ("POST", "/v1/client/sign_ins/{sign_in_id}/prepare_first_factor"),
    "attemptSignInFactorOne": ("POST", "/v1/client/sign_ins/{sign_in_id}/attempt_first_factor"),
    "getSession": ("GET", "/v1/client/sessions/{session_id}"),
    "touchSession": ("POST", "/v1/client/sessions/{session_id}/touch"),
    "createSessionToken": ("POST", "/v1/client/sessions/{session_id}/tokens"),
    "endSession": ("POST", "/v1/client/sessions/{session_id}/end"),
    "removeSession": ("POST", "/v1/client/sessions/{session_id}/remove"),
    "removeClientSessionsAndRetainCookie": ("DELETE", "/v1/client/sessions"),
    "getUser": ("GET", "/v1/me"),
    "patchUser": ("PATCH", "/v1/me"),
    "getEmailAddresses": ("GET", "/v1/me/email_addresses"),
    "createEmailAddresses": ("POST", "/v1/me/email_addresses"),
    "getEmailAddress": ("GET", "/v1/me/email_addresses/{email_id}"),
    "DeleteEmailAddress": ("DELETE", "/v1/me/email_addresses/{email_id}"),
    "sendVerificationEmail": ("POST", "/v1/me/email_addresses/{email_id}/prepare_verification"),
    "verifyEmailAddress": ("POST", "/v1/me/email_addresses/{email_id}/attempt_verification"),
    "changePassword": ("POST", "/v1/me/change_password"),
    "getUsersSessions": ("GET", "/v1/me/sessions"),
    "getSessions": ("GET", "/v1/me/sessions/active"),
    "revokeSession": ("POST", "/v1/me/sessions/{session_id}/revoke"),
    "getOrganizationMemberships": ("GET", "/v1/me/organization_memberships"),
    "deleteOrganizationMemberships": ("DELETE", "/v1/me/organization_memberships/{organization_id}"),
    "getUsersOrganizationInvitations": ("GET", "/v1/me/organization_invitations"),
    "acceptOrganizationInvitation": ("POST", "/v1/me/organization_invitations/{invitation_id}/accept"),
    "getOrganizationSuggestions": ("GET", "/v1/me/organization_suggestions"),
}


class Browser:
    """A browser on the instance's own origin: cookies kept, form bodies, Clerk's envelope."""

    def __init__(self, url, schema, problems, called):
        self.url = url
        self.http = requests.Session()
        self.http.headers["Origin"] = url
        self.schema = schema
        self.problems = problems
        self.called = called

    def call(self, operation_id, path, expect=200, form=None, params=None):
        method = ROUTES[operation_id][0]
        self.called.add(operation_id)
        response = self.http.request(method, self.url + path, data=form, params=params, timeout=30)
        label = f"{operation_id} ({method} {path} → {response.status_code})"
        if response.status_code != expect:
            self.problems.append(f"{label}: expected status {expect}; body: {response.text[:300]}")
        else:
            try:
                self.schema.find_operation_by_id(operation_id).validate_response(response)
            except (Exception, BaseExceptionGroup) as failure:  # schemathesis groups several mismatches
                self.problems.append(f"{label}: {summary(failure)}")
        try:
            return response.json()
        except ValueError:
            return {}


def mail_code(url, address):
    """The newest code mailed to `address` (the development mail sink)."""
    import re
    import time

    for _ in range(200):
        messages = requests.get(url + "/dev/mail", timeout=10).json()
        for m in reversed(messages if isinstance(messages, list) else messages.get("messages", [])):
            if m.get("to") == address:
                found = re.search(r"\b(\d{6})\b", m.get("subject", "") + m.get("text", ""))
                if found:
                    return found.group(1)
        time.sleep(0.05)
    raise SystemExit(f"no code mailed to {address}")


def scenario(url, secret, b, admin):
    b.call("getEnvironment", "/v1/environment")
    b.call("updateEnvironment", "/v1/environment")
    b.call("postClient", "/v1/client")
    b.call("getClient", "/v1/client")
    b.call("putClient", "/v1/client")

    # Sign-up with a mailed code.
    up = b.call("createSignUps", "/v1/client/sign_ups", form={"email_address": "ada@example.com", "password": PASSWORD})
    sign_up = up["response"]["id"]
    b.call("getSignUps", f"/v1/client/sign_ups/{sign_up}")
    b.call("updateSignUps", f"/v1/client/sign_ups/{sign_up}", form={"first_name": "Ada"})
    b.call("prepareSignUpsVerification", f"/v1/client/sign_ups/{sign_up}/prepare_verification", form={"strategy": "email_code"})
    done = b.call("attemptSignUpsVerification", f"/v1/client/sign_ups/{sign_up}/attempt_verification",
                  form={"strategy": "email_code", "code": mail_code(url, "ada@example.com")})
    session = done["response"]["created_session_id"]

    # The account.
    b.call("getUser", "/v1/me")
    b.call("patchUser", "/v1/me", form={"last_name": "Lovelace"})
    b.call("getEmailAddresses", "/v1/me/email_addresses")
    added = b.call("createEmailAddresses", "/v1/me/email_addresses", form={"email_address": "ada@work.example.com"})
    email = added["response"]["id"]
    b.call("getEmailAddress", f"/v1/me/email_addresses/{email}")
    b.call("sendVerificationEmail", f"/v1/me/email_addresses/{email}/prepare_verification", form={"strategy": "email_code"})
    b.call("verifyEmailAddress", f"/v1/me/email_addresses/{email}/attempt_verification",
           form={"code": mail_code(url, "ada@work.example.com")})
    b.call("DeleteEmailAddress", f"/v1/me/email_addresses/{email}")
    b.call("changePassword", "/v1/me/change_password", form={"current_password": PASSWORD, "new_password": PASSWORD + "!"})
    b.call("getUsersSessions", "/v1/me/sessions")
    b.call("getSessions", "/v1/me/sessions/active")

    # Sessions of this client.
    b.call("getSession", f"/v1/client/sessions/{session}")
    b.call("touchSession", f"/v1/client/sessions/{session}/touch")
    b.call("createSessionToken", f"/v1/client/sessions/{session}/tokens")

    # Organizations: an invitation from another user's organization.
    bob = admin.post(url + "/v1/users", json={"email_address": ["bob@example.com"]}, timeout=30).json()
    org = admin.post(url + "/v1/organizations", json={"name": "Acme", "created_by": bob["id"]}, timeout=30).json()
    admin.post(url + f"/v1/organizations/{org['id']}/invitations", json={"email_address": "ada@example.com"}, timeout=30)
    invitations = b.call("getUsersOrganizationInvitations", "/v1/me/organization_invitations")
    invitation = invitations["response"]["data"][0]["id"]
    b.call("acceptOrganizationInvitation", f"/v1/me/organization_invitations/{invitation}/accept")
    b.call("getOrganizationMemberships", "/v1/me/organization_memberships")
    b.call("getOrganizationSuggestions", "/v1/me/organization_suggestions")
    b.call("deleteOrganizationMemberships", f"/v1/me/organization_memberships/{org['id']}")

    # Sign out, sign in again with the password, end and remove sessions.
    b.call("removeClientSessionsAndRetainCookie", "/v1/client/sessions")
    signed = b.call("createSignIn", "/v1/client/sign_ins", form={"identifier": "ada@example.com"})
    sign_in = signed["response"]["id"]
    b.call("getSignIn", f"/v1/client/sign_ins/{sign_in}")
    b.call("prepareSignInFactorOne", f"/v1/client/sign_ins/{sign_in}/prepare_first_factor", form={"strategy": "password"})
    done = b.call("attemptSignInFactorOne", f"/v1/client/sign_ins/{sign_in}/attempt_first_factor",
                  form={"strategy": "password", "password": PASSWORD + "!"})
    second = done["response"]["created_session_id"]
    b.call("endSession", f"/v1/client/sessions/{second}/end")
    again = b.call("createSignIn", "/v1/client/sign_ins", form={"identifier": "ada@example.com", "strategy": "password", "password": PASSWORD + "!"})
    third = again["response"]["created_session_id"]
    b.call("revokeSession", f"/v1/me/sessions/{third}/revoke", expect=200)
    b.call("removeSession", f"/v1/client/sessions/{third}/remove")
    b.call("handshakeClient", "/v1/client/handshake", expect=307, params={"redirect_url": url + "/"})
    b.call("deleteClientSessions", "/v1/client")


def run(url, secret):
    schema = schemathesis.openapi.from_path(FAPI_DOCUMENT)
    problems, called = [], set()
    b = Browser(url, schema, problems, called)
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {secret}"
    try:
        scenario(url, secret, b, admin)
    except (KeyError, TypeError, IndexError) as stopped:
        problems.append(f"the scenario stopped early ({stopped!r}) after the deviations above")
    uncovered = sorted(set(ROUTES) - called)
    if uncovered:
        problems.append(f"routes the oracle does not call: {', '.join(uncovered)}")
    print(f"Clerk's Frontend API document: {len(ROUTES)} of latchkey's routes checked")
    if problems:
        print(f"{len(problems)} deviation(s) from Clerk's Frontend API document:")
        for p in problems:
            print(" -", p)
        raise SystemExit("latchkey does not conform to Clerk's Frontend API document")
    print("Clerk's Frontend API document: every response conforms")
