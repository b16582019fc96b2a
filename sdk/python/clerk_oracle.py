"""Clerk's own Backend API document as the oracle (docs/clerk-conformance.md).

Every operation latchkey implements that Clerk's document also has (matched by operationId
between latchkey's /v1/openapi.json and Clerk's document) is called for real against a running
latchkey with valid input, and each response is validated by schemathesis against Clerk's schema
for that operation and status: required fields, types, nullability, enums and
`additionalProperties: false`. An implemented operation without a call here fails the run, so
coverage cannot silently shrink. Known request-side deviations (filters that were ignored) are
checked by their results, not only their shapes.
"""

import base64
import os

import requests
import schemathesis

import clerk_bodies
import clerk_coverage
import provider_sign_in
import soft_authenticator
import totp

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BAPI_DOCUMENT = os.path.join(ROOT, "sdk", "clerk-openapi", "clerk-bapi-2026-05-12.yml")

PASSWORD = "plum-Anchor-47-quietly"


class Oracle:
    def __init__(self, url, secret, issuer=None):
        self.url = url
        self.secret = secret
        self.issuer = issuer  # the instance's loopback OpenID Provider (provider_sign_in.py)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {secret}"
        self.schema = schemathesis.openapi.from_path(BAPI_DOCUMENT)
        self.called = set()
        self.problems = []

    def call(self, operation_id, method, path, expect, body=None, params=None):
        """Calls latchkey and validates the response against Clerk's schema for the operation."""
        self.called.add(operation_id)
        response = self.session.request(method, self.url + "/v1" + path, json=body, params=params, timeout=30)
        label = f"{operation_id} ({method} {path} → {response.status_code})"
        if response.status_code != expect:
            self.problems.append(f"{label}: expected status {expect}; body: {response.text[:400]}")
            return response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        operation = self.schema.find_operation_by_id(operation_id)
        try:
            operation.validate_response(response)
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis groups several mismatches
            self.problems.append(f"{label}: {summary(failure)}")
        return response.json()

    def check(self, condition, message):
        if not condition:
            self.problems.append(message)


def summary(failure):
    """The mismatches a schemathesis failure names, without its schema and value dumps."""
    found = []
    for single in getattr(failure, "exceptions", None) or [failure]:
        text = getattr(single, "message", None) or str(single)
        found.append(text.split("\n\nValidated against")[0].strip().replace("\n\n", ": "))
    return "; ".join(found)


def implemented_clerk_operations(url, schema):
    """The operationIds latchkey documents that Clerk's document has too."""
    ours = requests.get(url + "/v1/openapi.json", timeout=30).json()
    ids = set()
    for item in ours["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                ids.add(op["operationId"])
    theirs = set()
    for item in schema.raw_schema["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                theirs.add(op["operationId"])
    return ids & theirs, ids - theirs


def scenario(o):
    # Users
    ada = o.call("CreateUser", "POST", "/users", 200, body={
        "email_address": ["ada@example.com"], "phone_number": ["+15550100101"], "password": PASSWORD,
        "first_name": "Ada", "last_name": "Lovelace", "username": "ada_lovelace", "external_id": "ext-ada",
        "public_metadata": {"plan": "pro"}, "private_metadata": {"note": "x"}, "unsafe_metadata": {"theme": "dark"},
    })
    bob = o.call("CreateUser", "POST", "/users", 200, body={"email_address": ["bob@sample.org"], "password": PASSWORD})
    gone = o.call("CreateUser", "POST", "/users", 200, body={"email_address": ["gone@example.com"]})
    o.call("GetUser", "GET", f"/users/{ada['id']}", 200)
    o.call("GetUserList", "GET", "/users", 200, params={"limit": 10})
    o.call("GetUsersCount", "GET", "/users/count", 200)
    o.call("UpdateUser", "PATCH", f"/users/{ada['id']}", 200, body={"first_name": "Augusta"})
    o.call("UpdateUserMetadata", "PATCH", f"/users/{ada['id']}/metadata", 200, body={"public_metadata": {"seats": 3}})
    o.call("ReplaceUserMetadata", "PUT", f"/users/{ada['id']}/metadata", 200, body={"public_metadata": {"plan": "pro", "seats": 3}})
    o.call("VerifyPassword", "POST", f"/users/{ada['id']}/verify_password", 200, body={"password": PASSWORD})
    o.call("BanUser", "POST", f"/users/{bob['id']}/ban", 200)
    banned = o.call("GetUserList", "GET", "/users", 200, params={"banned": "true"})
    o.check([u["id"] for u in banned or []] == [bob["id"]], f"GET /users?banned=true lists {[u['id'] for u in banned or []]}, not only the banned user")
    count = o.call("GetUsersCount", "GET", "/users/count", 200, params={"banned": "false"})
    o.check((count or {}).get("total_count") == 2, f"GET /users/count?banned=false counts {count}, not the two users who are not banned")
    o.call("UnbanUser", "POST", f"/users/{bob['id']}/unban", 200)
    o.call("LockUser", "POST", f"/users/{bob['id']}/lock", 200)
    o.call("UnlockUser", "POST", f"/users/{bob['id']}/unlock", 200)
    found = o.call("GetUserList", "GET", "/users", 200, params={"query": "example"})
    o.check({u["id"] for u in found or []} == {ada["id"], gone["id"]}, "GET /users?query=example does not find the users at example.com")
    # Identity providers: Ada has no provider account yet, so no token and nothing to remove.
    tokens = o.call("GetOAuthAccessToken", "GET", f"/users/{ada['id']}/oauth_access_tokens/oauth_google", 200)
    o.check(tokens == [], f"GET /users/{{id}}/oauth_access_tokens/oauth_google without an account answers {tokens}")
    o.call("DeleteExternalAccount", "DELETE", f"/users/{ada['id']}/external_accounts/eac_missing", 404)
    # Then she signs in with the loopback OpenID Provider standing in for Google, which vouches
    # for her verified address: the provider account joins her, and the Backend API shows it,
    # opens its access token and removes it.
    provider_account(o, ada["id"])
    o.call("DeleteUser", "DELETE", f"/users/{gone['id']}", 200)
    o.call("GetUser", "GET", f"/users/{gone['id']}", 404)
    # Second factors: imported with the user, checked, removed piece by piece and all at once.
    second_factors(o)
    # Passkeys: one registered through the Frontend API, seen on the user, removed.
    passkeys(o)

    # Email addresses and phone numbers
    email = o.call("CreateEmailAddress", "POST", "/email_addresses", 200, body={"user_id": ada["id"], "email_address": "ada@work.example.com", "verified": True})
    o.call("GetEmailAddress", "GET", f"/email_addresses/{email['id']}", 200)
    o.call("UpdateEmailAddress", "PATCH", f"/email_addresses/{email['id']}", 200, body={"primary": True})
    o.call("UpdateEmailAddress", "PATCH", f"/email_addresses/{ada['email_addresses'][0]['id']}", 200, body={"primary": True})
    o.call("DeleteEmailAddress", "DELETE", f"/email_addresses/{email['id']}", 200)
    phone = o.call("CreatePhoneNumber", "POST", "/phone_numbers", 200, body={"user_id": ada["id"], "phone_number": "+15550100102", "verified": True})
    o.call("GetPhoneNumber", "GET", f"/phone_numbers/{phone['id']}", 200)
    o.call("UpdatePhoneNumber", "PATCH", f"/phone_numbers/{phone['id']}", 200, body={"verified": True})
    o.call("DeletePhoneNumber", "DELETE", f"/phone_numbers/{phone['id']}", 200)

    # Organizations
    org = o.call("CreateOrganization", "POST", "/organizations", 200, body={"name": "Acme Rockets", "created_by": ada["id"], "public_metadata": {"tier": "gold"}})
    o.call("GetOrganization", "GET", f"/organizations/{org['id']}", 200)
    o.call("ListOrganizations", "GET", "/organizations", 200, params={"limit": 10, "include_members_count": "true"})
    found = o.call("ListOrganizations", "GET", "/organizations", 200, params={"query": "Rockets"})
    o.check([x["id"] for x in (found or {}).get("data", [])] == [org["id"]], "GET /organizations?query=Rockets does not find Acme Rockets")
    o.call("UpdateOrganization", "PATCH", f"/organizations/{org['id']}", 200, body={"name": "Acme Rockets Inc"})
    o.call("MergeOrganizationMetadata", "PATCH", f"/organizations/{org['id']}/metadata", 200, body={"private_metadata": {"crm": 7}})
    o.call("ReplaceOrganizationMetadata", "PUT", f"/organizations/{org['id']}/metadata", 200, body={"public_metadata": {"tier": "gold"}})

    # Memberships
    o.call("CreateOrganizationMembership", "POST", f"/organizations/{org['id']}/memberships", 200, body={"user_id": bob["id"], "role": "org:member"})
    o.call("ListOrganizationMemberships", "GET", f"/organizations/{org['id']}/memberships", 200)
    o.call("InstanceGetOrganizationMemberships", "GET", "/organization_memberships", 200)
    o.call("UsersGetOrganizationMemberships", "GET", f"/users/{bob['id']}/organization_memberships", 200)
    o.call("UpdateOrganizationMembership", "PATCH", f"/organizations/{org['id']}/memberships/{bob['id']}", 200, body={"role": "org:admin"})
    o.call("UpdateOrganizationMembershipMetadata", "PATCH", f"/organizations/{org['id']}/memberships/{bob['id']}/metadata", 200, body={"public_metadata": {"desk": 4}})

    # Organization invitations
    inv = o.call("CreateOrganizationInvitation", "POST", f"/organizations/{org['id']}/invitations", 200, body={"email_address": "carol@example.com", "role": "org:member", "inviter_user_id": ada["id"]})
    o.call("CreateOrganizationInvitationBulk", "POST", f"/organizations/{org['id']}/invitations/bulk", 200, body=[{"email_address": "dan@example.com", "role": "org:member"}])
    o.call("ListOrganizationInvitations", "GET", f"/organizations/{org['id']}/invitations", 200)
    o.call("GetOrganizationInvitation", "GET", f"/organizations/{org['id']}/invitations/{inv['id']}", 200)
    o.call("RevokeOrganizationInvitation", "POST", f"/organizations/{org['id']}/invitations/{inv['id']}/revoke", 200, body={"requesting_user_id": ada["id"]})

    # Sessions, tokens and templates
    session = o.call("createSession", "POST", "/sessions", 200, body={"user_id": bob["id"], "active_organization_id": org["id"]})
    o.check((session or {}).get("last_active_organization_id") == org["id"], "POST /sessions ignores active_organization_id")
    o.call("GetSession", "GET", f"/sessions/{session['id']}", 200)
    o.call("GetSessionList", "GET", "/sessions", 200, params={"user_id": bob["id"]})
    token = o.call("CreateSessionToken", "POST", f"/sessions/{session['id']}/tokens", 200)
    o.check(bool(token) and '"o"' in _claims(token.get("jwt", "")), "the session token of a session created with an active organization has no o claim")
    template = o.call("CreateJWTTemplate", "POST", "/jwt_templates", 200, body={"name": "oracle", "claims": {"aud": "x", "uid": "{{user.id}}"}})
    o.call("GetJWTTemplate", "GET", f"/jwt_templates/{template['id']}", 200)
    o.call("ListJWTTemplates", "GET", "/jwt_templates", 200)
    o.call("UpdateJWTTemplate", "PATCH", f"/jwt_templates/{template['id']}", 200, body={"name": "oracle", "claims": {"aud": "y"}})
    o.call("CreateSessionTokenFromTemplate", "POST", f"/sessions/{session['id']}/tokens/oracle", 200)
    o.call("DeleteJWTTemplate", "DELETE", f"/jwt_templates/{template['id']}", 200)
    o.call("RevokeSession", "POST", f"/sessions/{session['id']}/revoke", 200)

    # Invitations and sign-in tokens
    invitation = o.call("CreateInvitation", "POST", "/invitations", 200, body={"email_address": "erin@example.com", "notify": False})
    o.call("CreateBulkInvitations", "POST", "/invitations/bulk", 200, body=[{"email_address": "fay@example.com", "notify": False}])
    o.call("ListInvitations", "GET", "/invitations", 200)
    o.call("RevokeInvitation", "POST", f"/invitations/{invitation['id']}/revoke", 200)
    sign_in_token = o.call("CreateSignInToken", "POST", "/sign_in_tokens", 200, body={"user_id": ada["id"]})
    o.call("RevokeSignInToken", "POST", f"/sign_in_tokens/{sign_in_token['id']}/revoke", 200)

    # Roles and permissions at run time (docs/organization-roles.md)
    perm = o.call("CreateOrganizationPermission", "POST", "/organization_permissions", 200, body={"name": "Read reports", "key": "org:reports:read", "description": "Monthly reports"})
    o.call("ListOrganizationPermissions", "GET", "/organization_permissions", 200, params={"limit": 50, "order_by": "key"})
    o.call("GetOrganizationPermission", "GET", f"/organization_permissions/{perm['id']}", 200)
    o.call("UpdateOrganizationPermission", "PATCH", f"/organization_permissions/{perm['id']}", 200, body={"name": "See reports"})
    role = o.call("CreateOrganizationRole", "POST", "/organization_roles", 200, body={"name": "Analyst", "key": "org:analyst", "description": "Reads reports", "permissions": [perm["id"]]})
    listed = o.call("ListOrganizationRoles", "GET", "/organization_roles", 200, params={"query": "analyst"})
    o.check([r["id"] for r in (listed or {}).get("data", [])] == [role["id"]], "GET /organization_roles?query=analyst does not find the new role alone")
    o.call("GetOrganizationRole", "GET", f"/organization_roles/{role['id']}", 200)
    o.call("UpdateOrganizationRole", "PATCH", f"/organization_roles/{role['id']}", 200, body={"name": "Reader"})
    o.call("RemovePermissionFromOrganizationRole", "DELETE", f"/organization_roles/{role['id']}/permissions/{perm['id']}", 200)
    o.call("AssignPermissionToOrganizationRole", "POST", f"/organization_roles/{role['id']}/permissions/{perm['id']}", 200)
    o.call("DeleteOrganizationRole", "DELETE", f"/organization_roles/{role['id']}", 200)
    o.call("DeleteOrganizationPermission", "DELETE", f"/organization_permissions/{perm['id']}", 200)

    # Removal last: memberships, then the organization
    o.call("DeleteOrganizationMembership", "DELETE", f"/organizations/{org['id']}/memberships/{bob['id']}", 200)
    o.call("DeleteOrganization", "DELETE", f"/organizations/{org['id']}", 200)
    o.call("GetJWKS", "GET", "/jwks", 200)


def provider_account(o, user_id):
    """A provider sign-in (provider_sign_in.py) that joins the user with the provider's verified
    address, then the Backend API's view of that provider account: on the user, its access
    token (which the provider accepts), its removal."""
    browser = requests.Session()
    browser.headers["Origin"] = o.url
    back = provider_sign_in.sign_in(browser, o.url)
    o.check(back.status_code == 303, f"the provider's return to GET /v1/oauth_callback answers {back.status_code}: {back.text[:300]}")
    joined = o.call("GetUser", "GET", f"/users/{user_id}", 200) or {}
    accounts = joined.get("external_accounts") or []
    o.check(
        [(a.get("provider"), a.get("provider_user_id")) for a in accounts] == [(provider_sign_in.STRATEGY, provider_sign_in.ACCOUNT["sub"])],
        f"after the provider sign-in, the user's external_accounts are {accounts}, not the one provider account",
    )
    account = accounts[0]["id"] if accounts else "eac_missing"
    # Clerk's filter by provider account: provider with provider_user_id (each needs the other).
    by_account = {"provider": provider_sign_in.STRATEGY, "provider_user_id": provider_sign_in.ACCOUNT["sub"]}
    found = o.call("GetUserList", "GET", "/users", 200, params=by_account) or []
    o.check(
        [u.get("id") for u in found] == [user_id],
        f"GET /users?provider={provider_sign_in.STRATEGY}&provider_user_id={provider_sign_in.ACCOUNT['sub']} answers {[u.get('id') for u in found]}, not [{user_id}]",
    )
    # Ids not found are ignored.
    by_accounts = {**by_account, "provider_user_id": [provider_sign_in.ACCOUNT["sub"], "g-nobody"]}
    count = o.call("GetUsersCount", "GET", "/users/count", 200, params=by_accounts) or {}
    o.check(count.get("total_count") == 1, f"GET /users/count by provider accounts answers {count}, not a total_count of 1")
    alone = o.session.get(o.url + "/v1/users", params={"provider_user_id": provider_sign_in.ACCOUNT["sub"]}, timeout=30)
    o.check(alone.status_code == 422, f"GET /users?provider_user_id without provider answers {alone.status_code}, not 422")
    tokens = o.call("GetOAuthAccessToken", "GET", f"/users/{user_id}/oauth_access_tokens/{provider_sign_in.STRATEGY}", 200) or []
    o.check(
        len(tokens) == 1 and bool(tokens[0].get("token")) and tokens[0].get("external_account_id") == account,
        f"GET /users/{{id}}/oauth_access_tokens/{provider_sign_in.STRATEGY} answers {tokens}, not one token of account {account}",
    )
    if tokens and tokens[0].get("token") and o.issuer:
        # The provider accepts the token it issued (its userinfo names the person).
        info = requests.get(o.issuer + "/me", headers={"Authorization": f"Bearer {tokens[0]['token']}"}, timeout=30)
        o.check(
            info.status_code == 200 and info.json().get("sub") == provider_sign_in.ACCOUNT["sub"],
            f"the provider refuses the access token latchkey opened: {info.status_code} {info.text[:200]}",
        )
    o.call("DeleteExternalAccount", "DELETE", f"/users/{user_id}/external_accounts/{account}", 200)
    after = o.call("GetUser", "GET", f"/users/{user_id}", 200) or {}
    o.check(after.get("external_accounts") == [], f"after DeleteExternalAccount the user's external_accounts are {after.get('external_accounts')}")


def second_factors(o):
    """A user imported with an authenticator app's key and backup codes (CreateUser's
    `totp_secret`, `backup_codes`), whose codes VerifyTOTP checks (each once: a replayed step and
    a spent backup code are refused), then DeleteBackupCode, DeleteTOTP and DisableMFA."""
    secret = base64.b32encode(os.urandom(20)).decode().rstrip("=")
    app = totp.Authenticator(secret)
    backup = ["alpha-bravo-1", "charlie-delta-2"]
    user = o.call("CreateUser", "POST", "/users", 200, body={
        "email_address": ["imp@example.com"], "password": PASSWORD, "totp_secret": secret, "backup_codes": backup,
    }) or {}
    enabled = lambda u: tuple((u or {}).get(k) for k in ("totp_enabled", "backup_code_enabled", "two_factor_enabled"))
    o.check(enabled(user) == (True, True, True), f"POST /users with totp_secret and backup_codes shows (totp, backup code, two factor) enabled {enabled(user)}")
    uid = user.get("id", "user_missing")
    at = f"/users/{uid}"
    o.check(enabled(o.call("GetUser", "GET", at, 200)) == (True, True, True), "GET /users/{id} of an imported user does not show its second factors")
    code = app.code()
    verified = o.call("VerifyTOTP", "POST", at + "/verify_totp", 200, body={"code": code})
    o.check(verified == {"verified": True, "code_type": "totp"}, f"POST /users/{{id}}/verify_totp with the app's code answers {verified}")
    # The same step again is a replay; a wrong code is refused the same way (422, no schema).
    o.call("VerifyTOTP", "POST", at + "/verify_totp", 422, body={"code": code})
    verified = o.call("VerifyTOTP", "POST", at + "/verify_totp", 200, body={"code": backup[0].upper()})
    o.check(verified == {"verified": True, "code_type": "backup_code"}, f"POST /users/{{id}}/verify_totp with a backup code answers {verified}")
    o.call("VerifyTOTP", "POST", at + "/verify_totp", 422, body={"code": backup[0]})
    o.call("VerifyTOTP", "POST", "/users/user_nobody/verify_totp", 404, body={"code": "123456"})

    removed = o.call("DeleteBackupCode", "DELETE", at + "/backup_code", 200)
    o.check(removed == {"user_id": uid}, f"DELETE /users/{{id}}/backup_code answers {removed}")
    o.check(enabled(o.call("GetUser", "GET", at, 200)) == (True, False, True), "after DeleteBackupCode the user does not show the app alone")
    removed = o.call("DeleteTOTP", "DELETE", at + "/totp", 200)
    o.check(removed == {"user_id": uid}, f"DELETE /users/{{id}}/totp answers {removed}")
    o.check(enabled(o.call("GetUser", "GET", at, 200)) == (False, False, False), "after DeleteTOTP the user still shows a second factor")
    # Nothing is left to check; removing everything again is still an answer.
    o.call("VerifyTOTP", "POST", at + "/verify_totp", 400, body={"code": app.code()})
    removed = o.call("DisableMFA", "DELETE", at + "/mfa", 200)
    o.check(removed == {"user_id": uid}, f"DELETE /users/{{id}}/mfa answers {removed}")
    o.call("DisableMFA", "DELETE", "/users/user_nobody/mfa", 404)
    o.call("DeleteTOTP", "DELETE", "/users/user_nobody/totp", 404)
    o.call("DeleteBackupCode", "DELETE", "/users/user_nobody/backup_code", 404)
    # DisableMFA on a user with both: both go.
    both = o.call("CreateUser", "POST", "/users", 200, body={
        "email_address": ["imp2@example.com"], "totp_secret": secret, "backup_codes": backup,
    }) or {}
    o.call("DisableMFA", "DELETE", f"/users/{both.get('id', 'user_missing')}/mfa", 200)
    after = o.call("GetUser", "GET", f"/users/{both.get('id', 'user_missing')}", 200)
    o.check(enabled(after) == (False, False, False), f"after DisableMFA the user shows {enabled(after)}")
    o.call("DeleteUser", "DELETE", f"/users/{both.get('id', 'user_missing')}", 200)


def passkeys(o):
    """A user's passkey, registered through the Frontend API by the soft authenticator
    (soft_authenticator.py) as `<UserProfile/>` would: the user lists it (Clerk's `Passkey`), and
    UserPasskeyDelete removes it (then it is not found)."""
    user = o.call("CreateUser", "POST", "/users", 200, body={"email_address": ["pia@example.com"], "password": PASSWORD}) or {}
    uid = user.get("id", "user_missing")
    try:
        _, passkey = soft_authenticator.register_through_frontend(o.url, "pia@example.com", PASSWORD, name="Pia's phone")
    except SystemExit as failed:
        o.problems.append(f"registering a passkey through the Frontend API failed: {failed}")
        return
    listed = (o.call("GetUser", "GET", f"/users/{uid}", 200) or {}).get("passkeys") or []
    o.check(
        [(k.get("id"), k.get("name"), (k.get("verification") or {}).get("status")) for k in listed] == [(passkey, "Pia's phone", "verified")],
        f"GET /users/{{id}} lists passkeys {listed}, not the verified one registered",
    )
    removed = o.call("UserPasskeyDelete", "DELETE", f"/users/{uid}/passkeys/{passkey}", 200)
    o.check(removed == {"object": "passkey", "id": passkey, "deleted": True}, f"DELETE /users/{{id}}/passkeys/{{id}} answers {removed}")
    after = o.call("GetUser", "GET", f"/users/{uid}", 200) or {}
    o.check(after.get("passkeys") == [], f"after UserPasskeyDelete the user lists passkeys {after.get('passkeys')}")
    o.call("UserPasskeyDelete", "DELETE", f"/users/{uid}/passkeys/{passkey}", 404)
    o.call("UserPasskeyDelete", "DELETE", f"/users/user_nobody/passkeys/{passkey}", 404)
    o.call("DeleteUser", "DELETE", f"/users/{uid}", 200)


def _claims(jwt):
    import base64
    import json

    try:
        payload = jwt.split(".")[1]
        return json.dumps(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (IndexError, ValueError):
        return ""


def run(url, secret, issuer=None):
    o = Oracle(url, secret, issuer)
    implemented, extensions = implemented_clerk_operations(url, o.schema)
    try:
        scenario(o)
    except (KeyError, TypeError) as stopped:
        # A step failed and the ones after it lack its object: report what was found so far.
        o.problems.append(f"the scenario stopped early ({stopped!r}) after the deviations above")
    uncovered = sorted(implemented - o.called)
    if uncovered:
        o.problems.append(f"implemented operations the oracle does not call: {', '.join(uncovered)}")
    not_documented = sorted(o.called - implemented)
    if not_documented:
        o.problems.append(f"operations called that latchkey's /v1/openapi.json does not list: {', '.join(not_documented)}")
    with open(clerk_coverage.DOC) as f:
        o.problems.extend(clerk_bodies.check(o.url, o.secret, o.schema.raw_schema, f.read()))
    expected = clerk_coverage.section(implemented)
    if clerk_coverage.documented_section() != expected:
        o.problems.append(
            "docs/clerk-conformance.md's coverage section is not the one these operations give; "
            "replace it with:\n" + expected
        )
    print(f"Clerk's Backend API document: {len(implemented)} operations implemented and checked; latchkey's own: {', '.join(sorted(extensions))}")
    if o.problems:
        print(f"{len(o.problems)} deviation(s) from Clerk's document:")
        for p in o.problems:
            print(" -", p)
        raise SystemExit("latchkey does not conform to Clerk's Backend API document")
    print("Clerk's Backend API document: every response conforms")
