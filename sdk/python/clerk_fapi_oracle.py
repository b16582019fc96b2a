"""Clerk's Frontend API document as the oracle (docs/clerk-conformance.md, "Frontend API").

Every Frontend API route latchkey serves is listed in ROUTES with the operation of Clerk's
document it implements; the scenario calls each for real, as a browser would (a cookie jar, the
instance's own Origin, form bodies), and schemathesis validates each response against Clerk's
schema for that operation and status. A listed route the scenario does not call fails the run.
"""

import json
import os

import requests
import schemathesis

import clerk_coverage
import provider_sign_in
import soft_authenticator
import totp
from clerk_oracle import PASSWORD, summary

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FAPI_DOCUMENT = os.path.join(ROOT, "sdk", "clerk-openapi", "clerk-fapi-2026-05-12.yml")

# latchkey's Frontend API routes and the operations of Clerk's document they implement.
ROUTES = {
    "getJWKS": ("GET", "/.well-known/jwks.json"),
    "getOpenIDConfiguration": ("GET", "/.well-known/openid-configuration"),
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
    "resetPassword": ("POST", "/v1/client/sign_ins/{sign_in_id}/reset_password"),
    "prepareSignInFactorTwo": ("POST", "/v1/client/sign_ins/{sign_in_id}/prepare_second_factor"),
    "attemptSignInFactorTwo": ("POST", "/v1/client/sign_ins/{sign_in_id}/attempt_second_factor"),
    "getOauthCallback": ("GET", "/v1/oauth_callback"),
    "verify": ("GET", "/v1/verify"),
    "postOauthCallback": ("POST", "/v1/oauth_callback"),
    "getSession": ("GET", "/v1/client/sessions/{session_id}"),
    "touchSession": ("POST", "/v1/client/sessions/{session_id}/touch"),
    "createSessionToken": ("POST", "/v1/client/sessions/{session_id}/tokens"),
    "createSessionTokenWithTemplate": ("POST", "/v1/client/sessions/{session_id}/tokens/{template_name}"),
    "endSession": ("POST", "/v1/client/sessions/{session_id}/end"),
    "removeSession": ("POST", "/v1/client/sessions/{session_id}/remove"),
    "startSessionReverification": ("POST", "/v1/client/sessions/{session_id}/verify"),
    "prepareSessionReverificationFirstFactor": ("POST", "/v1/client/sessions/{session_id}/verify/prepare_first_factor"),
    "attemptSessionReverificationFirstFactor": ("POST", "/v1/client/sessions/{session_id}/verify/attempt_first_factor"),
    "prepareSessionReverificationSecondFactor": ("POST", "/v1/client/sessions/{session_id}/verify/prepare_second_factor"),
    "attemptSessionReverificationSecondFactor": ("POST", "/v1/client/sessions/{session_id}/verify/attempt_second_factor"),
    "removeClientSessionsAndRetainCookie": ("DELETE", "/v1/client/sessions"),
    "getUser": ("GET", "/v1/me"),
    "patchUser": ("PATCH", "/v1/me"),
    "deleteUser": ("DELETE", "/v1/me"),
    "getEmailAddresses": ("GET", "/v1/me/email_addresses"),
    "createEmailAddresses": ("POST", "/v1/me/email_addresses"),
    "getEmailAddress": ("GET", "/v1/me/email_addresses/{email_id}"),
    "DeleteEmailAddress": ("DELETE", "/v1/me/email_addresses/{email_id}"),
    "sendVerificationEmail": ("POST", "/v1/me/email_addresses/{email_id}/prepare_verification"),
    "verifyEmailAddress": ("POST", "/v1/me/email_addresses/{email_id}/attempt_verification"),
    "changePassword": ("POST", "/v1/me/change_password"),
    "removePassword": ("POST", "/v1/me/remove_password"),
    "postTOTP": ("POST", "/v1/me/totp"),
    "deleteTOTP": ("DELETE", "/v1/me/totp"),
    "verifyTOTP": ("POST", "/v1/me/totp/attempt_verification"),
    "createBackupCodes": ("POST", "/v1/me/backup_codes"),
    "postPasskey": ("POST", "/v1/me/passkeys"),
    "readPasskey": ("GET", "/v1/me/passkeys/{passkey_id}"),
    "patchPasskey": ("PATCH", "/v1/me/passkeys/{passkey_id}"),
    "deletePasskey": ("DELETE", "/v1/me/passkeys/{passkey_id}"),
    "attemptPasskeyVerification": ("POST", "/v1/me/passkeys/{passkey_id}/attempt_verification"),
    "deleteExternalAccount": ("DELETE", "/v1/me/external_accounts/{external_account_id}"),
    "postOAuthAccounts": ("POST", "/v1/me/external_accounts"),
    "reauthorizeExternalAccount": ("PATCH", "/v1/me/external_accounts/{external_account_id}/reauthorize"),
    "getUsersSessions": ("GET", "/v1/me/sessions"),
    "getSessions": ("GET", "/v1/me/sessions/active"),
    "revokeSession": ("POST", "/v1/me/sessions/{session_id}/revoke"),
    "getOrganizationMemberships": ("GET", "/v1/me/organization_memberships"),
    "deleteOrganizationMemberships": ("DELETE", "/v1/me/organization_memberships/{organization_id}"),
    "getUsersOrganizationInvitations": ("GET", "/v1/me/organization_invitations"),
    "acceptOrganizationInvitation": ("POST", "/v1/me/organization_invitations/{invitation_id}/accept"),
    "getOrganizationSuggestions": ("GET", "/v1/me/organization_suggestions"),
    "createOrganization": ("POST", "/v1/organizations"),
    "getOrganization": ("GET", "/v1/organizations/{organization_id}"),
    "updateOrganization": ("PATCH", "/v1/organizations/{organization_id}"),
    "deleteOrganization": ("DELETE", "/v1/organizations/{organization_id}"),
    "ListOrganizationMemberships": ("GET", "/v1/organizations/{organization_id}/memberships"),
    "CreateOrganizationMembership": ("POST", "/v1/organizations/{organization_id}/memberships"),
    "UpdateOrganizationMembership": ("PATCH", "/v1/organizations/{organization_id}/memberships/{user_id}"),
    "removeOrganizationMember": ("DELETE", "/v1/organizations/{organization_id}/memberships/{user_id}"),
    "getOrganizationInvitations": ("GET", "/v1/organizations/{organization_id}/invitations"),
    "createOrganizationInvitations": ("POST", "/v1/organizations/{organization_id}/invitations"),
    "bulkCreateOrganizationInvitations": ("POST", "/v1/organizations/{organization_id}/invitations/bulk"),
    "revokePendingOrganizationInvitation": ("POST", "/v1/organizations/{organization_id}/invitations/{invitation_id}/revoke"),
    "ListOrganizationRoles": ("GET", "/v1/organizations/{organization_id}/roles"),
    "ListOrganizationDomains": ("GET", "/v1/organizations/{organization_id}/domains"),
    "listOrganizationMembershipRequests": ("GET", "/v1/organizations/{organization_id}/membership_requests"),
}

# Where latchkey serves part of what Clerk's document describes, on purpose: the fields it
# sends are checked against the document's schema, with only these required.
PARTIAL = {
    # latchkey is not an OAuth 2.0 authorization server (Clerk's OAuth2 Identity Provider
    # product is not offered): discovery names the issuer and the keys, so that token verifiers
    # find them, and advertises no endpoint latchkey does not serve.
    "getOpenIDConfiguration": ("WellKnown.OpenIDConfiguration", ["issuer", "jwks_uri"]),
}

# Where Clerk's document and the clerk-js that ships disagree, latchkey follows the SDK
# (docs/clerk-conformance.md, "Frontend API"): each field here must be in the response, and is
# set aside before the response is validated against the document.
SDK_OVER_DOCUMENT = {
    # clerk-js reads it (OrganizationSettings.forceOrganizationSelection); the document lacks it.
    # clerk-js reads `sign_up.mfa.required` (UserProfile hides "remove" for a required second
    # factor); the document's SignUp settings lack `mfa` (docs/second-factors.md).
    "getEnvironment": [
        ("organization_settings", "force_organization_selection"),
        ("user_settings", "sign_up", "mfa"),
    ],
    "updateEnvironment": [
        ("organization_settings", "force_organization_selection"),
        ("user_settings", "sign_up", "mfa"),
    ],
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
        response = self.http.request(
            method, self.url + path, data=form, params=params, timeout=30, allow_redirects=False
        )
        label = f"{operation_id} ({method} {path} → {response.status_code})"
        if response.status_code != expect:
            self.problems.append(f"{label}: expected status {expect}; body: {response.text[:300]}")
        elif not self.set_aside(operation_id, response, label):
            pass
        elif operation_id in PARTIAL:
            self.check_partial(operation_id, response, label)
        else:
            try:
                self.schema.find_operation_by_id(operation_id).validate_response(response)
            except (Exception, BaseExceptionGroup) as failure:  # schemathesis groups several mismatches
                self.problems.append(f"{label}: {summary(failure)}")
        try:
            return response.json()
        except ValueError:
            return {}

    def check_partial(self, operation_id, response, label):
        import jsonschema

        name, required = PARTIAL[operation_id]
        component = dict(self.schema.raw_schema["components"]["schemas"][name], required=required)
        for error in jsonschema.Draft4Validator(component).iter_errors(response.json()):
            self.problems.append(f"{label}: {error.message}")

    def set_aside(self, operation_id, response, label):
        """Removes the recorded SDK-over-document fields; False (a problem noted) if one is absent."""
        fields = SDK_OVER_DOCUMENT.get(operation_id)
        if not fields:
            return True
        body = response.json()
        for *parents, name in fields:
            holder = body
            for key in parents:
                holder = holder.get(key) if isinstance(holder, dict) else None
            if not isinstance(holder, dict) or name not in holder:
                self.problems.append(f"{label}: the recorded field {'.'.join([*parents, name])} is missing")
                return False
            del holder[name]
        response._content = json.dumps(body).encode()
        return True


def mail_code(url, address, about=""):
    """The newest code mailed to `address` (the development mail sink) in a message whose
    subject mentions `about`."""
    import re
    import time

    for _ in range(200):
        messages = requests.get(url + "/dev/mail", timeout=10).json()
        for m in reversed(messages if isinstance(messages, list) else messages.get("messages", [])):
            if m.get("to") == address and about in m.get("subject", ""):
                found = re.search(r"\b(\d{6})\b", m.get("subject", "") + m.get("text", ""))
                if found:
                    return found.group(1)
        time.sleep(0.05)
    raise SystemExit(f"no code mailed to {address}")


def scenario(url, secret, b, admin):
    b.call("getJWKS", "/.well-known/jwks.json")
    b.call("getOpenIDConfiguration", "/.well-known/openid-configuration")
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
    b.call("deleteExternalAccount", "/v1/me/external_accounts/eac_missing", expect=404)
    b.call("changePassword", "/v1/me/change_password", form={"current_password": PASSWORD, "new_password": PASSWORD + "!"})
    # Refused (a wrong current password), so the scenario keeps its password.
    b.call("removePassword", "/v1/me/remove_password", expect=422, form={"current_password": "not the password"})
    b.call("getUsersSessions", "/v1/me/sessions")
    b.call("getSessions", "/v1/me/sessions/active")

    # Sessions of this client.
    b.call("getSession", f"/v1/client/sessions/{session}")
    b.call("touchSession", f"/v1/client/sessions/{session}/touch")
    b.call("createSessionToken", f"/v1/client/sessions/{session}/tokens")
    admin.post(url + "/v1/jwt_templates", json={"name": "supabase", "claims": {"aud": "authenticated"}}, timeout=30)
    b.call("createSessionTokenWithTemplate", f"/v1/client/sessions/{session}/tokens/supabase")

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

    # An organization of Ada's own: its members, invitations and roles.
    own = b.call("createOrganization", "/v1/organizations", form={"name": "Rockets"})["response"]["id"]
    at = f"/v1/organizations/{own}"
    b.call("getOrganization", at)
    b.call("updateOrganization", at, form={"name": "Acme Rockets"})
    admin.post(url + at + "/memberships", json={"user_id": bob["id"], "role": "org:member"}, timeout=30)
    b.call("ListOrganizationMemberships", at + "/memberships")
    b.call("CreateOrganizationMembership", at + "/memberships", expect=403, form={"user_id": bob["id"], "role": "org:member"})
    b.call("UpdateOrganizationMembership", f"{at}/memberships/{bob['id']}", form={"role": "org:admin"})
    b.call("removeOrganizationMember", f"{at}/memberships/{bob['id']}")
    b.call("createOrganizationInvitations", at + "/invitations", form={"email_address": "dan@example.com", "role": "org:member"})
    bulk = b.call("bulkCreateOrganizationInvitations", at + "/invitations/bulk",
                  form={"email_address": ["eve@example.com", "fay@example.com"], "role": "org:member"})
    b.call("getOrganizationInvitations", at + "/invitations")
    b.call("revokePendingOrganizationInvitation", f"{at}/invitations/{bulk['response'][0]['id']}/revoke")
    b.call("ListOrganizationRoles", at + "/roles")
    b.call("ListOrganizationDomains", at + "/domains")
    b.call("listOrganizationMembershipRequests", at + "/membership_requests")
    b.call("deleteOrganization", at)

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

    # "Forgot password?": a reset code, then the new password.
    forgot = b.call("createSignIn", "/v1/client/sign_ins", form={"identifier": "ada@example.com"})["response"]["id"]
    at = f"/v1/client/sign_ins/{forgot}"
    b.call("prepareSignInFactorOne", at + "/prepare_first_factor", form={"strategy": "reset_password_email_code"})
    b.call("attemptSignInFactorOne", at + "/attempt_first_factor",
           form={"strategy": "reset_password_email_code", "code": mail_code(url, "ada@example.com", "reset")})
    b.call("resetPassword", at + "/reset_password", form={"password": PASSWORD + "?", "sign_out_of_other_sessions": "true"})
    provider_trip(url, b)
    email_link_trip(url, b)
    second_factor_trip(url, b, admin)
    passkey_trip(url, b, admin)
    # An identity provider's return with a state this instance never made, and Apple's POST,
    # turned into the same GET.
    b.call("getOauthCallback", "/v1/oauth_callback", expect=400, params={"state": "forged.state", "code": "x"})
    b.call("postOauthCallback", "/v1/oauth_callback", expect=303, form={"state": "forged.state", "code": "x"})
    b.call("handshakeClient", "/v1/client/handshake", expect=307, params={"redirect_url": url + "/"})
    b.call("deleteClientSessions", "/v1/client")


def mail_link(url, address):
    """The newest email link (`/v1/verify?token=…`) mailed to `address`."""
    import re
    import time

    for _ in range(200):
        messages = requests.get(url + "/dev/mail", timeout=10).json()
        for m in reversed(messages if isinstance(messages, list) else messages.get("messages", [])):
            found = re.search(r"/v1/verify\?token=(\S+)", m.get("text", "")) if m.get("to") == address else None
            if found:
                return found.group(1)
        time.sleep(0.05)
    raise SystemExit(f"no link mailed to {address}")


def email_link_trip(url, b):
    """A sign-in with an email link (docs/email-links.md): asked for, opened (a 303 to the
    app's page) in the browser that asked, then the sign-in read back complete; a link that is
    not one is a 400. (Another browser gets a page to confirm on first: docs/email-links.md.)"""
    b = Browser(url, b.schema, b.problems, b.called)
    sign_in = b.call("createSignIn", "/v1/client/sign_ins", form={"identifier": "ada@example.com"})["response"]["id"]
    at = f"/v1/client/sign_ins/{sign_in}"
    b.call("prepareSignInFactorOne", at + "/prepare_first_factor",
           form={"strategy": "email_link", "redirect_url": url + "/sign-in"})
    b.call("verify", "/v1/verify", expect=303, params={"token": mail_link(url, "ada@example.com")})
    done = b.call("getSignIn", at)
    if done.get("response", {}).get("status") != "complete":
        b.problems.append(f"the email link's sign-in did not complete: {json.dumps(done)[:300]}")
    b.call("verify", "/v1/verify", expect=400, params={"token": "sia_unknown.not-a-secret"})


def provider_trip(url, b):
    """A "Continue with Google" in a browser of its own, through the loopback OpenID Provider
    standing in for Google (provider_sign_in.py): it vouches for Ada's verified address, so its
    account joins her and signs her in; then she removes it (her password and address remain)."""
    g = Browser(url, b.schema, b.problems, b.called)
    started = g.call("createSignIn", "/v1/client/sign_ins", form=provider_sign_in.start_form(url))
    verification = started["response"]["first_factor_verification"]
    if (verification.get("object"), verification.get("status")) != ("verification_oauth", "unverified"):
        g.problems.append(f"createSignIn with {provider_sign_in.STRATEGY}: the first factor verification is {verification}")
    back = provider_sign_in.through_provider(g.http, url, verification["external_verification_redirect_url"])
    path, params = provider_sign_in.callback_of(url, back)
    g.call("getOauthCallback", path, expect=303, params=params)
    me = g.call("getUser", "/v1/me")["response"]
    accounts = me["external_accounts"]
    if me["email_addresses"][0]["email_address"] != provider_sign_in.ADDRESS or [a.get("provider") for a in accounts] != ["google"]:
        g.problems.append(f"after the provider sign-in, /v1/me is {me['id']} with external_accounts {accounts}")
    # Asking the provider again for more scopes, and connecting (here: the same provider once
    # more): both answer the account on its way, unverified, with where to send the browser.
    back_to = {"redirect_url": url + "/done"}
    again = g.call("reauthorizeExternalAccount", f"/v1/me/external_accounts/{accounts[0]['id']}/reauthorize",
                   form={**back_to, "additional_scope": "offline_access"})["response"]
    pending = g.call("postOAuthAccounts", "/v1/me/external_accounts", form={**back_to, "strategy": provider_sign_in.STRATEGY})["response"]
    for answer in (again, pending):
        if (answer.get("verification") or {}).get("status") != "unverified" or not answer["verification"].get("external_verification_redirect_url"):
            g.problems.append(f"a connection on its way answers the verification {answer.get('verification')}")
    g.call("deleteExternalAccount", f"/v1/me/external_accounts/{accounts[0]['id']}")
    left = g.call("getUser", "/v1/me")["response"]["external_accounts"]
    if left:
        g.problems.append(f"after deleteExternalAccount, /v1/me still lists external_accounts {left}")


def second_factor_trip(url, b, admin):
    """Grace, in browsers of her own: she enrols an authenticator app (codes computed here,
    totp.py) and gets backup codes; a sign-in then stops at the second step until a code of the
    app, or a backup code, passes; her session's step-up checks (second factor, then first); and
    she removes the app and deletes her account, which both need such a check."""
    grace = "grace@example.com"
    new = lambda: Browser(url, b.schema, b.problems, b.called)
    g = new()
    made = admin.post(url + "/v1/users", json={"email_address": [grace], "password": PASSWORD}, timeout=30)
    if made.status_code != 200:
        b.problems.append(f"POST /v1/users for {grace} answers {made.status_code}: {made.text[:200]}")
    signed = g.call("createSignIn", "/v1/client/sign_ins", form={"identifier": grace, "strategy": "password", "password": PASSWORD})
    sid = signed["response"]["created_session_id"]

    pending = g.call("postTOTP", "/v1/me/totp")["response"]
    if (pending.get("object"), pending.get("verified")) != ("totp", False) or not pending.get("secret") or not pending.get("uri"):
        b.problems.append(f"postTOTP answers {pending}, not an unverified totp with its secret and uri")
    app = totp.Authenticator(pending["secret"])
    # A code no nearby step has: refused (422), and nothing changes.
    near = {totp.code_at(app.secret, totp.current_step() + d) for d in (-2, -1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in near)
    g.call("verifyTOTP", "/v1/me/totp/attempt_verification", expect=422, form={"code": wrong})
    enrolled = g.call("verifyTOTP", "/v1/me/totp/attempt_verification", form={"code": app.code()})["response"]
    if enrolled.get("verified") is not True or len(enrolled.get("backup_codes") or []) != 10 or enrolled.get("secret") is not None:
        b.problems.append(f"verifyTOTP with the app's code answers {enrolled}, not a verified totp with ten backup codes and no secret")
    me = g.call("getUser", "/v1/me")["response"]
    shown = tuple(me.get(k) for k in ("totp_enabled", "backup_code_enabled", "two_factor_enabled"))
    if shown != (True, True, True):
        b.problems.append(f"after enrolment /v1/me shows (totp, backup code, two factor) enabled {shown}")
    fresh = g.call("createBackupCodes", "/v1/me/backup_codes")["response"]
    codes = fresh.get("codes") or []
    if fresh.get("object") != "backup_code" or len(codes) != 10 or set(codes) & set(enrolled.get("backup_codes") or []):
        b.problems.append(f"createBackupCodes answers {fresh}, not ten new codes")

    # The sign-in's second step: a wrong code, then the app's next code.
    h = new()
    first = h.call("createSignIn", "/v1/client/sign_ins", form={"identifier": grace, "strategy": "password", "password": PASSWORD})
    waiting = first["response"]
    strategies = [f.get("strategy") for f in waiting.get("supported_second_factors") or []]
    if (waiting.get("status"), strategies, waiting.get("created_session_id")) != ("needs_second_factor", ["totp", "backup_code"], None):
        b.problems.append(f"a password sign-in of a user with an app answers {waiting.get('status')} with second factors {strategies}")
    if first.get("client", {}).get("sessions"):
        b.problems.append("a sign-in waiting for its second factor already has a session")
    at = f"/v1/client/sign_ins/{waiting['id']}"
    h.call("getSignIn", at)
    h.call("prepareSignInFactorTwo", at + "/prepare_second_factor", form={"strategy": "totp"})
    h.call("attemptSignInFactorTwo", at + "/attempt_second_factor", expect=422, form={"strategy": "totp", "code": wrong})
    done = h.call("attemptSignInFactorTwo", at + "/attempt_second_factor", form={"strategy": "totp", "code": app.code()})["response"]
    second = done.get("second_factor_verification") or {}
    if (done.get("status"), second.get("object"), second.get("status")) != ("complete", "verification_totp", "verified") or not done.get("created_session_id"):
        b.problems.append(f"attemptSignInFactorTwo with the app's code answers {done.get('status')} with {second}")
    # A backup code (of the new set) in another browser.
    k = new()
    waiting = k.call("createSignIn", "/v1/client/sign_ins", form={"identifier": grace, "strategy": "password", "password": PASSWORD})["response"]
    done = k.call("attemptSignInFactorTwo", f"/v1/client/sign_ins/{waiting['id']}/attempt_second_factor",
                  form={"strategy": "backup_code", "code": codes[0] if codes else wrong})["response"]
    second = done.get("second_factor_verification") or {}
    if (done.get("status"), second.get("object")) != ("complete", "verification_backup_code"):
        b.problems.append(f"attemptSignInFactorTwo with a backup code answers {done.get('status')} with {second}")

    # Step-up checks of the first session: the second factor (a fresh session is recent, and
    # the app's code passes anyway), then the first, with a mailed code.
    at = f"/v1/client/sessions/{sid}/verify"
    check = g.call("startSessionReverification", at, form={"level": "second_factor"})["response"]
    if check.get("object") != "session_reverification" or (check.get("session") or {}).get("id") != sid:
        b.problems.append(f"startSessionReverification answers {check}")
    g.call("prepareSessionReverificationSecondFactor", at + "/prepare_second_factor", form={"strategy": "totp"})
    g.call("attemptSessionReverificationSecondFactor", at + "/attempt_second_factor", expect=422, form={"strategy": "totp", "code": wrong})
    passed = g.call("attemptSessionReverificationSecondFactor", at + "/attempt_second_factor", form={"strategy": "totp", "code": app.code()})["response"]
    if passed.get("status") != "complete":
        b.problems.append(f"attemptSessionReverificationSecondFactor with the app's code answers {passed.get('status')}")
    g.call("startSessionReverification", at, form={"level": "first_factor"})
    g.call("prepareSessionReverificationFirstFactor", at + "/prepare_first_factor",
           form={"strategy": "email_code", "email_address_id": me["primary_email_address_id"]})
    g.call("attemptSessionReverificationFirstFactor", at + "/attempt_first_factor", expect=422,
           form={"strategy": "password", "password": "not it at all"})
    passed = g.call("attemptSessionReverificationFirstFactor", at + "/attempt_first_factor",
                    form={"strategy": "email_code", "code": mail_code(url, grace)})["response"]
    if passed.get("status") != "complete":
        b.problems.append(f"attemptSessionReverificationFirstFactor with the mailed code answers {passed.get('status')}")

    removed = g.call("deleteTOTP", "/v1/me/totp")["response"]
    if (removed.get("object"), removed.get("deleted")) != ("totp", True):
        b.problems.append(f"deleteTOTP answers {removed}")
    gone = g.call("deleteUser", "/v1/me")["response"]
    if (gone.get("object"), gone.get("id"), gone.get("deleted")) != ("user", me["id"], True):
        b.problems.append(f"deleteUser answers {gone}")
    left = admin.get(url + f"/v1/users/{me['id']}", timeout=30)
    if left.status_code != 404:
        b.problems.append(f"after deleteUser the Backend API still finds the user ({left.status_code})")


def passkey_trip(url, b, admin):
    """Pat, in browsers of her own, with the soft authenticator (soft_authenticator.py) on the
    page ORIGIN: she registers a passkey (a malformed answer first is a 400, and a new
    registration replaces it), reads and renames it; signs in with it without an identifier (an
    answer to another challenge is refused, a new challenge is asked for) and with one; passes a
    step-up check with it; and removes it, after which it signs no one in."""
    pat = "pat@example.com"
    new = lambda: Browser(url, b.schema, b.problems, b.called)
    made = admin.post(url + "/v1/users", json={"email_address": [pat], "password": PASSWORD}, timeout=30)
    if made.status_code != 200:
        b.problems.append(f"POST /v1/users for {pat} answers {made.status_code}: {made.text[:200]}")
    p = new()
    sid = p.call("createSignIn", "/v1/client/sign_ins", form={"identifier": pat, "strategy": "password", "password": PASSWORD})["response"]["created_session_id"]
    user_id = made.json().get("id")
    authenticator = soft_authenticator.SoftAuthenticator()

    # A registration answered with something that is no credential: 400, and a new one replaces it.
    first = p.call("postPasskey", "/v1/me/passkeys")["response"]
    p.call("attemptPasskeyVerification", f"/v1/me/passkeys/{first['id']}/attempt_verification", expect=400,
           form={"strategy": "passkey", "public_key_credential": "{not json"})
    pending = p.call("postPasskey", "/v1/me/passkeys")["response"]
    verification = pending.get("verification") or {}
    if (pending.get("object"), verification.get("object"), verification.get("status")) != ("passkey", "verification_passkey", "unverified") or not verification.get("nonce"):
        b.problems.append(f"postPasskey answers {pending}, not an unverified passkey with its options in the nonce")
    options = json.loads(verification["nonce"])
    selection = options.get("authenticatorSelection") or {}
    if (options.get("rp", {}).get("id"), selection.get("residentKey"), selection.get("userVerification"), options.get("attestation")) != (
        soft_authenticator.RP_ID, "required", "required", "none"
    ):
        b.problems.append(f"postPasskey's options are {options}: not for {soft_authenticator.RP_ID}, a required resident key, required user verification, no attestation")
    if soft_authenticator.unb64(options["user"]["id"]) == (user_id or "").encode():
        b.problems.append("postPasskey's options name the user id as the WebAuthn user handle")
    credential = authenticator.register(options)
    passkey = pending["id"]
    at = f"/v1/me/passkeys/{passkey}"
    done = p.call("attemptPasskeyVerification", at + "/attempt_verification",
                  form={"strategy": "passkey", "public_key_credential": soft_authenticator.answer(credential)})["response"]
    if (done.get("verification") or {}).get("status") != "verified" or "nonce" in (done.get("verification") or {}):
        b.problems.append(f"attemptPasskeyVerification with the authenticator's answer answers {done}")
    p.call("readPasskey", at)
    renamed = p.call("patchPasskey", at, form={"name": "Pat's laptop"})["response"]
    if renamed.get("name") != "Pat's laptop":
        b.problems.append(f"patchPasskey answers the name {renamed.get('name')!r}")
    listed = p.call("getUser", "/v1/me")["response"].get("passkeys") or []
    if [(k.get("id"), k.get("name")) for k in listed] != [(passkey, "Pat's laptop")]:
        b.problems.append(f"/v1/me lists passkeys {listed}, not the renamed one")

    def answer_nonce(verification, label):
        if (verification.get("object"), verification.get("strategy"), verification.get("status")) != ("verification_passkey", "passkey", "unverified") or not verification.get("nonce"):
            b.problems.append(f"{label}: the passkey verification is {verification}, not unverified with its options in the nonce")
            return {"challenge": "missing"}
        return json.loads(verification["nonce"])

    # Without an identifier: an answer to another challenge, refused; a new challenge; passed.
    s = new()
    started = s.call("createSignIn", "/v1/client/sign_ins", form={"strategy": "passkey"})["response"]
    request = answer_nonce(started.get("first_factor_verification") or {}, "createSignIn with strategy=passkey")
    if (request.get("rpId"), request.get("allowCredentials"), request.get("userVerification")) != (soft_authenticator.RP_ID, [], "required"):
        b.problems.append(f"createSignIn with strategy=passkey offers the options {request}")
    at = f"/v1/client/sign_ins/{started['id']}"
    refused = s.call("attemptSignInFactorOne", at + "/attempt_first_factor", expect=422, form={
        "strategy": "passkey",
        "public_key_credential": soft_authenticator.answer(authenticator.assert_(request, challenge=soft_authenticator.b64(b"not this challenge"))),
    })
    if [e.get("code") for e in refused.get("errors") or []] != ["verification_failed"]:
        b.problems.append(f"a passkey answer to another challenge is refused with {refused}")
    again = s.call("prepareSignInFactorOne", at + "/prepare_first_factor", form={"strategy": "passkey"})["response"]
    request = answer_nonce(again.get("first_factor_verification") or {}, "prepareSignInFactorOne with strategy=passkey")
    signed = s.call("attemptSignInFactorOne", at + "/attempt_first_factor", form={
        "strategy": "passkey", "public_key_credential": soft_authenticator.answer(authenticator.assert_(request)),
    })
    done = signed.get("response") or {}
    mine = [x for x in (signed.get("client") or {}).get("sessions") or [] if x.get("id") == done.get("created_session_id")]
    if done.get("status") != "complete" or not mine or (mine[0].get("user") or {}).get("id") != user_id:
        b.problems.append(f"a passkey sign-in without an identifier answers {done.get('status')}, session {done.get('created_session_id')}, not Pat's session")

    # With an identifier: the passkey asked for with prepare_first_factor.
    t = new()
    started = t.call("createSignIn", "/v1/client/sign_ins", form={"identifier": pat})["response"]
    at = f"/v1/client/sign_ins/{started['id']}"
    prepared = t.call("prepareSignInFactorOne", at + "/prepare_first_factor", form={"strategy": "passkey"})["response"]
    request = answer_nonce(prepared.get("first_factor_verification") or {}, "prepareSignInFactorOne (identified) with strategy=passkey")
    done = t.call("attemptSignInFactorOne", at + "/attempt_first_factor", form={
        "strategy": "passkey", "public_key_credential": soft_authenticator.answer(authenticator.assert_(request)),
    })["response"]
    if done.get("status") != "complete" or not done.get("created_session_id"):
        b.problems.append(f"a passkey sign-in with an identifier answers {done.get('status')}")

    # A step-up check of the first session, passed with the passkey.
    at = f"/v1/client/sessions/{sid}/verify"
    p.call("startSessionReverification", at, form={"level": "first_factor"})
    prepared = p.call("prepareSessionReverificationFirstFactor", at + "/prepare_first_factor", form={"strategy": "passkey"})["response"]
    request = answer_nonce(prepared.get("first_factor_verification") or {}, "prepareSessionReverificationFirstFactor with strategy=passkey")
    passed = p.call("attemptSessionReverificationFirstFactor", at + "/attempt_first_factor", form={
        "strategy": "passkey", "public_key_credential": soft_authenticator.answer(authenticator.assert_(request)),
    })["response"]
    if passed.get("status") != "complete":
        b.problems.append(f"attemptSessionReverificationFirstFactor with the passkey answers {passed.get('status')}")

    # Removed: gone from the user, and it signs no one in.
    gone = p.call("deletePasskey", f"/v1/me/passkeys/{passkey}")["response"]
    if (gone.get("object"), gone.get("id"), gone.get("deleted")) != ("passkey", passkey, True):
        b.problems.append(f"deletePasskey answers {gone}")
    p.call("readPasskey", f"/v1/me/passkeys/{passkey}", expect=404)
    left = p.call("getUser", "/v1/me")["response"].get("passkeys")
    if left != []:
        b.problems.append(f"after deletePasskey /v1/me lists passkeys {left}")
    u = new()
    started = u.call("createSignIn", "/v1/client/sign_ins", form={"strategy": "passkey"})["response"]
    request = answer_nonce(started.get("first_factor_verification") or {}, "createSignIn with strategy=passkey")
    u.call("attemptSignInFactorOne", f"/v1/client/sign_ins/{started['id']}/attempt_first_factor", expect=422, form={
        "strategy": "passkey", "public_key_credential": soft_authenticator.answer(authenticator.assert_(request)),
    })


def unlisted_answers(url, schema):
    """Every other operation of Clerk's document, asked for with made-up ids, must find no
    route at all (405, or the router's own 404), so ROUTES lists every route latchkey serves."""
    import re

    listed = {(method, path) for method, path in ROUTES.values()}
    probe = requests.Session()
    probe.headers["Origin"] = url
    # A client cookie: `/v1/organizations…` without one is the Backend API's, which answers 401.
    probe.post(url + "/v1/client", timeout=30)
    served = []
    for path, item in schema.raw_schema["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "operationId" not in op or (method.upper(), path) in listed:
                continue
            concrete = re.sub(r"\{[^}]+\}", "x_probe", path)
            answer = probe.request(method.upper(), url + concrete, timeout=30, allow_redirects=False)
            unrouted = answer.status_code == 405 or (
                answer.status_code == 404 and "No such endpoint." in answer.text
            )
            if not unrouted:
                served.append(f"{op['operationId']} ({method.upper()} {path} → {answer.status_code})")
    return served


def run(url, secret, issuer=None):
    # `issuer` (the instance's loopback OpenID Provider, run.py) is not needed here: the trip
    # starts at latchkey, whose answer leads to the provider.
    schema = schemathesis.openapi.from_path(FAPI_DOCUMENT)
    problems, called = [], set()
    b = Browser(url, schema, problems, called)
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {secret}"
    try:
        scenario(url, secret, b, admin)
    except (KeyError, TypeError, IndexError, ValueError) as stopped:
        problems.append(f"the scenario stopped early ({stopped!r}) after the deviations above")
    uncovered = sorted(set(ROUTES) - called)
    if uncovered:
        problems.append(f"routes the oracle does not call: {', '.join(uncovered)}")
    served = unlisted_answers(url, schema)
    if served:
        problems.append(f"operations latchkey serves that ROUTES does not list: {', '.join(served)}")
    expected = clerk_coverage.section(set(ROUTES), frontend=True)
    if clerk_coverage.documented_section(frontend=True) != expected:
        problems.append(
            "docs/clerk-conformance.md's Frontend API coverage section is not the one these routes give; "
            "replace it with:\n" + expected
        )
    print(f"Clerk's Frontend API document: {len(ROUTES)} of latchkey's routes checked")
    if problems:
        print(f"{len(problems)} deviation(s) from Clerk's Frontend API document:")
        for p in problems:
            print(" -", p)
        raise SystemExit("latchkey does not conform to Clerk's Frontend API document")
    print("Clerk's Frontend API document: every response conforms")
