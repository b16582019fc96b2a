"""An authenticator app for the oracles (RFC 6238: HMAC-SHA-1, 30-second steps, six digits).

latchkey accepts each step's code once per user (a replay is refused) and one step of drift
either way, so `Authenticator.code()` hands out the code of a step no earlier than the last one
it gave, and never behind the clock: the current step or the next while either is unused, or
it waits for the clock to move on.
"""

import base64
import hashlib
import hmac
import struct
import time

STEP = 30
DIGITS = 6


def code_at(secret, step):
    """The code of a base32 `secret` for the 30-second `step` (seconds since the epoch // 30)."""
    text = secret.strip().replace(" ", "").upper()
    key = base64.b32decode(text + "=" * (-len(text) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10 ** DIGITS).zfill(DIGITS)


def current_step():
    return int(time.time()) // STEP


class Authenticator:
    """One user's app: each code it gives is of a step not used before."""

    def __init__(self, secret):
        self.secret = secret
        self.last = None  # the last step whose code was handed out

    def code(self):
        """A code the server accepts now and has not seen: of this step or the next (one step
        of drift covers a step that ends on the way), waiting for the clock when both are used."""
        while True:
            now = current_step()
            step = now if self.last is None else max(self.last + 1, now)
            if step <= now + 1:
                self.last = step
                return code_at(self.secret, step)
            time.sleep(max(0.05, (now + 1) * STEP - time.time() + 0.05))


def _self_test():
    # RFC 6238 appendix B (SHA-1): the 8-digit 94287082 at T=59 is 287082 in six digits.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert code_at(secret, 59 // STEP) == "287082", code_at(secret, 59 // STEP)
    assert code_at(secret, 1111111109 // STEP) == "081804"


_self_test()
