"""Imported password digests made by each ecosystem's own library (docs/moving-from-clerk.md,
"Passwords: the digests Clerk holds").

For every `password_hasher` latchkey takes, a fresh random password is hashed the way the system
it comes from hashes it: pip `bcrypt` (and Devise's pepper rule on top), Django's own hashers,
passlib's phpass, LDAP and PBKDF2 handlers, Werkzeug's `generate_password_hash`, argon2-cffi,
hashlib/hmac for the plain, salted and HMAC digests, and the documented algorithms of Firebase's
scrypt (hashlib.scrypt and AES-CTR from `cryptography`) and Symfony's legacy SHA-512. Each
digest is imported with `POST /v1/users` (`password_digest`, `password_hasher`); then the user
signs in through the Frontend API: a wrong password is refused (`form_password_incorrect`), the
right one completes the sign-in (and replaces the digest with argon2id), and after it the
Backend API's `POST /v1/users/{id}/verify_password` still accepts the password and refuses a
wrong one. `awscognito` is refused at import with the reason. Each case is a named sub-check:
a failure names its hasher.
"""

import base64
import hashlib
import hmac
import secrets
import traceback

import requests

# The checks sign in about fifty times from one address in well under a minute.
LATCHKEY_TOML = "[rate_limits]\nper_ip_per_minute = 1000\nper_identifier_per_minute = 100\n"

_django_ready = False


def django_hashers():
    """Django's `make_password`, configured once for the hashers used here."""
    global _django_ready
    import django
    from django.conf import settings

    if not _django_ready:
        settings.configure(PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
            "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
            "django.contrib.auth.hashers.MD5PasswordHasher",
        ])
        django.setup()
        _django_ready = True
    from django.contrib.auth.hashers import check_password, make_password
    return make_password, check_password


def new_password():
    # A non-ASCII letter too: UTF-8 (and UTF-16 for the HMAC one) must be read alike.
    return f"{secrets.token_urlsafe(12)}-é{secrets.randbelow(100)}"


def b64(data):
    return base64.b64encode(data).decode()


# Each maker turns a password into (password_hasher, password_digest).

def bcrypt_plain(pw):
    import bcrypt
    return "bcrypt", bcrypt.hashpw(pw.encode(), bcrypt.gensalt()).decode()


def bcrypt_peppered(pw):
    # Devise: bcrypt("#{password}#{pepper}"), its generator's pepper 128 hex characters;
    # bcrypt-ruby, like every bcrypt, reads the first 72 bytes.
    import bcrypt
    pepper = secrets.token_hex(64)
    hashed = bcrypt.hashpw((pw + pepper).encode()[:72], bcrypt.gensalt(10)).decode()
    return "bcrypt_peppered", f"{hashed}${pepper}"


def django_bcrypt_sha256(pw):
    make_password, check_password = django_hashers()
    digest = make_password(pw, hasher="bcrypt_sha256")
    assert check_password(pw, digest)
    return "bcrypt_sha256_django", digest


def django_pbkdf2_sha256(pw):
    # Django's default hasher at its own default iterations (1,000,000 in Django 5.2).
    make_password, check_password = django_hashers()
    digest = make_password(pw, hasher="pbkdf2_sha256")
    assert check_password(pw, digest)
    return "pbkdf2_sha256_django", digest


def django_pbkdf2_sha1(pw):
    # Django's PBKDF2SHA1PasswordHasher (`pbkdf2_sha1$<it>$<salt>$<base64 hash>`), rewritten in
    # Clerk's pbkdf2_sha1 form: hex salt, hex hash, key length.
    make_password, _ = django_hashers()
    _, iterations, salt, hashed = make_password(pw, hasher="pbkdf2_sha1").split("$")
    raw = base64.b64decode(hashed)
    return "pbkdf2_sha1", f"pbkdf2_sha1${iterations}${salt.encode().hex()}${raw.hex()}${len(raw)}"


def django_md5_salted(pw):
    # Django's salted MD5PasswordHasher, `md5$<salt>$<hash>` = md5(salt + password): its tail is
    # Clerk's md5_salted `salt$hash`.
    make_password, check_password = django_hashers()
    digest = make_password(pw, hasher="md5")
    assert check_password(pw, digest) and digest.startswith("md5$")
    return "md5_salted", digest[len("md5$"):]


def passlib_pbkdf2_sha256(pw):
    # passlib's `$pbkdf2-sha256$<rounds>$<ab64 salt>$<ab64 hash>`, in Clerk's pbkdf2_sha256 form
    # (standard base64 salt and hash).
    from passlib.hash import pbkdf2_sha256
    from passlib.utils.binary import ab64_decode
    _, _, rounds, salt, hashed = pbkdf2_sha256.hash(pw).split("$")
    return "pbkdf2_sha256", f"pbkdf2_sha256${rounds}${b64(ab64_decode(salt))}${b64(ab64_decode(hashed))}"


def passlib_pbkdf2_sha512_hex(pw):
    from passlib.hash import pbkdf2_sha512
    from passlib.utils.binary import ab64_decode
    _, _, rounds, salt, hashed = pbkdf2_sha512.hash(pw).split("$")
    return "pbkdf2_sha512_hex", f"pbkdf2_sha512_hex${rounds}${ab64_decode(salt).hex()}${ab64_decode(hashed).hex()}"


def hashlib_pbkdf2_sha512(pw):
    salt = secrets.token_urlsafe(12)
    hashed = hashlib.pbkdf2_hmac("sha512", pw.encode(), salt.encode(), 100_000).hex()
    return "pbkdf2_sha512", f"pbkdf2_sha512$100000${salt}${hashed}"


def passlib_phpass(pw):
    from passlib.hash import phpass
    digest = phpass.using(rounds=13).hash(pw)  # WordPress's $P$B (2^13 rounds)
    assert digest.startswith("$P$B"), digest
    return "phpass", digest


def passlib_md5_phpass(pw):
    from passlib.hash import phpass
    digest = phpass.using(ident="H", rounds=11).hash(pw)  # phpBB3's $H$9 (2^11 rounds)
    assert digest.startswith("$H$9"), digest
    return "md5_phpass", digest


def passlib_ldap_ssha(pw):
    from passlib.hash import ldap_salted_sha1
    return "ldap_ssha", ldap_salted_sha1.hash(pw)


def werkzeug_scrypt(pw):
    from werkzeug.security import check_password_hash, generate_password_hash
    digest = generate_password_hash(pw, method="scrypt")
    assert check_password_hash(digest, pw)
    return "scrypt_werkzeug", digest


def firebase_scrypt(pw):
    # Firebase's modified scrypt (firebase/scrypt's README): the project's signer key encrypted
    # with AES-256-CTR under the first 32 bytes of scrypt(password, salt + separator).
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    salt, separator, signer_key = secrets.token_bytes(12), base64.b64decode("Bw=="), secrets.token_bytes(64)
    rounds, mem_cost = 8, 14
    derived = hashlib.scrypt(pw.encode(), salt=salt + separator, n=1 << mem_cost, r=rounds, p=1, dklen=64)
    encryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(b"\0" * 16)).encryptor()
    hashed = encryptor.update(signer_key) + encryptor.finalize()
    return "scrypt_firebase", f"{b64(hashed)}${b64(salt)}${b64(signer_key)}${b64(separator)}${rounds}${mem_cost}"


def symfony_sha512(pw):
    # Symfony's MessageDigestPasswordHasher (sha512, 5000 iterations, base64): merged =
    # password{salt}; digest = sha512(merged), then 4999 times sha512(digest + merged).
    salt = secrets.token_hex(16)
    merged = f"{pw}{{{salt}}}".encode()
    digest = hashlib.sha512(merged).digest()
    for _ in range(4999):
        digest = hashlib.sha512(digest + merged).digest()
    return "sha512_symfony", f"sha512_symfony$5000${salt}${b64(digest)}"


def md5_plain(pw):
    return "md5", hashlib.md5(pw.encode()).hexdigest()


def sha256_plain(pw):
    return "sha256", hashlib.sha256(pw.encode()).hexdigest()


def md5_password_then_salt(pw):
    # md5(password + salt), as Joomla 1.5 stored it (`hash:salt`), in Clerk's `salt$hash`.
    salt = secrets.token_hex(16)
    return "md5_salted", f"{salt}${hashlib.md5((pw + salt).encode()).hexdigest()}"


def sha256_salt_then_password(pw):
    salt = secrets.token_hex(8)
    return "sha256_salted", f"{salt}${hashlib.sha256((salt + pw).encode()).hexdigest()}"


def sha256_password_then_salt(pw):
    salt = secrets.token_hex(8)
    return "sha256_salted", f"{salt}${hashlib.sha256((pw + salt).encode()).hexdigest()}"


def sha256_hash_then_salt(pw):
    # The `<hash>$<salt>` form of Clerk's older API reference.
    salt = secrets.token_hex(8)
    return "sha256_salted", f"{hashlib.sha256((salt + pw).encode()).hexdigest()}${salt}"


def hmac_text_key(pw):
    key = secrets.token_urlsafe(24)
    mac = hmac.new(key.encode(), pw.encode("utf-16-le"), hashlib.sha256).digest()
    return "hmac_sha256_utf16_b64", f"hmac_sha256_utf16_b64${b64(mac)}${key}"


def hmac_aspnet_membership(pw):
    # ASP.NET SqlMembershipProvider with hashAlgorithmType="HMACSHA256": the base64
    # PasswordSalt decoded and repeated to the HMAC's 64-byte key, over Encoding.Unicode.
    salt = secrets.token_bytes(16)
    key = (salt * 4)[:64]
    mac = hmac.new(key, pw.encode("utf-16-le"), hashlib.sha256).digest()
    return "hmac_sha256_utf16_b64", f"hmac_sha256_utf16_b64${b64(mac)}${b64(salt)}"


def argon2_cffi(kind):
    def make(pw):
        from argon2 import PasswordHasher, Type
        hasher = PasswordHasher(type=Type.ID if kind == "argon2id" else Type.I)
        return kind, hasher.hash(pw)
    return make


CASES = [
    ("bcrypt (pip bcrypt)", bcrypt_plain),
    ("bcrypt_peppered (pip bcrypt, Devise's pepper)", bcrypt_peppered),
    ("bcrypt_sha256_django (Django BCryptSHA256PasswordHasher)", django_bcrypt_sha256),
    ("pbkdf2_sha256_django (Django PBKDF2PasswordHasher)", django_pbkdf2_sha256),
    ("pbkdf2_sha1 (Django PBKDF2SHA1PasswordHasher, Clerk's hex form)", django_pbkdf2_sha1),
    ("pbkdf2_sha256 (passlib pbkdf2_sha256, Clerk's base64 form)", passlib_pbkdf2_sha256),
    ("pbkdf2_sha512 (hashlib pbkdf2_hmac, text salt)", hashlib_pbkdf2_sha512),
    ("pbkdf2_sha512_hex (passlib pbkdf2_sha512, hex form)", passlib_pbkdf2_sha512_hex),
    ("phpass (passlib phpass $P$)", passlib_phpass),
    ("md5_phpass (passlib phpass $H$)", passlib_md5_phpass),
    ("ldap_ssha (passlib ldap_salted_sha1)", passlib_ldap_ssha),
    ("scrypt_werkzeug (Werkzeug generate_password_hash)", werkzeug_scrypt),
    ("scrypt_firebase (hashlib.scrypt + AES-CTR, Firebase's algorithm)", firebase_scrypt),
    ("sha512_symfony (Symfony's MessageDigestPasswordHasher algorithm)", symfony_sha512),
    ("md5 (hashlib)", md5_plain),
    ("sha256 (hashlib)", sha256_plain),
    ("md5_salted salt+password (Django MD5PasswordHasher)", django_md5_salted),
    ("md5_salted password+salt (hashlib)", md5_password_then_salt),
    ("sha256_salted salt+password (hashlib)", sha256_salt_then_password),
    ("sha256_salted password+salt (hashlib)", sha256_password_then_salt),
    ("sha256_salted hash$salt form (hashlib)", sha256_hash_then_salt),
    ("hmac_sha256_utf16_b64 text key (hmac)", hmac_text_key),
    ("hmac_sha256_utf16_b64 ASP.NET Membership salt (hmac)", hmac_aspnet_membership),
    ("argon2id (argon2-cffi)", argon2_cffi("argon2id")),
    ("argon2i (argon2-cffi)", argon2_cffi("argon2i")),
]


class Check:
    def __init__(self, url, secret):
        self.url = url
        self.admin = requests.Session()
        self.admin.headers["Authorization"] = f"Bearer {secret}"

    def create(self, email, hasher, digest):
        body = {"email_address": [email], "password_digest": digest, "password_hasher": hasher}
        return self.admin.post(self.url + "/v1/users", json=body, timeout=60)

    def sign_in(self, email, password):
        """A browser's sign-in with a password (its own cookie jar, the instance's Origin)."""
        browser = requests.Session()
        browser.headers["Origin"] = self.url
        form = {"identifier": email, "password": password, "strategy": "password"}
        return browser.post(self.url + "/v1/client/sign_ins", data=form, timeout=60)

    def verify_password(self, user_id, password):
        return self.admin.post(f"{self.url}/v1/users/{user_id}/verify_password", json={"password": password}, timeout=60)

    def imported(self, index, hasher, password, digest):
        email = f"legacy{index}@example.com"
        created = self.create(email, hasher, digest)
        assert created.status_code == 200, f"import: {created.status_code} {created.text}\n  digest {digest}"
        user = created.json()
        assert user.get("password_enabled") is True, f"import: password_enabled is {user.get('password_enabled')}"
        wrong = new_password()
        refused = self.sign_in(email, wrong)
        code = refused.json().get("errors", [{}])[0].get("code") if refused.status_code == 422 else None
        assert code == "form_password_incorrect", f"a wrong password: {refused.status_code} {refused.text}"
        signed_in = self.sign_in(email, password)
        assert signed_in.status_code == 200, f"the right password: {signed_in.status_code} {signed_in.text}\n  digest {digest}"
        status = signed_in.json()["response"]["status"]
        assert status == "complete", f"the right password: sign-in {status}"
        verified = self.verify_password(user["id"], password)
        assert verified.status_code == 200 and verified.json().get("verified") is True, (
            f"verify_password after the sign-in: {verified.status_code} {verified.text}")
        refused = self.verify_password(user["id"], wrong)
        assert refused.status_code == 422, f"verify_password with a wrong password: {refused.status_code} {refused.text}"

    def cognito(self):
        email = "cognito@example.com"
        created = self.create(email, "awscognito", f"awscognito#us-east-1_AbCdEfGhI#4tq1examplecl1ent#{email}")
        assert created.status_code == 422, f"awscognito: {created.status_code} {created.text}"
        error = created.json()["errors"][0]
        reason = error.get("long_message", "")
        assert "Cognito passwords cannot be imported" in reason and "reset" in reason, f"awscognito: the reason is {reason!r}"
        assert error.get("meta", {}).get("param_name") == "password_digest", f"awscognito: {error}"
        listed = self.admin.get(self.url + "/v1/users", params={"email_address": email}, timeout=30).json()
        assert listed == [], f"awscognito: a user was stored: {listed}"


def run(url, secret):
    check = Check(url, secret)
    failures = []
    passed = 0
    for index, (name, make) in enumerate(CASES):
        password = new_password()
        try:
            hasher, digest = make(password)
            check.imported(index, hasher, password, digest)
        except Exception as e:  # each sub-check reports on its own; the run fails at the end
            failures.append(f"{name}: {e}" if isinstance(e, AssertionError) else f"{name}: {traceback.format_exc()}")
        else:
            passed += 1
            print(f"  legacy digest ok: {name}", flush=True)
    try:
        check.cognito()
    except AssertionError as e:
        failures.append(f"awscognito refused at import: {e}")
    else:
        passed += 1
        print("  legacy digest ok: awscognito refused at import with the reason", flush=True)
    if failures:
        raise SystemExit("imported password digests failed:\n- " + "\n- ".join(failures))
    print(f"Imported password digests: {passed} checks passed (each ecosystem's own library; sign-in, "
          "wrong password refused, verify_password after the move to argon2id; awscognito refused)")
