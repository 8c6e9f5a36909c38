"""Device cookies (OWASP Authentication cheat sheet, "Slow down online guessing attacks with device cookies"):
a browser that has logged in to an account carries a cookie, signed by this service, that names a device of its
own for that account. Its logins are judged on their own: failures from elsewhere do not delay or lock it, and its
own failures lock only it.

The cookie is `v1.KID.EXPIRES.NONCE.SIGNATURE`: SIGNATURE is HMAC-SHA256, under the key of the pair
authentication>device (deploy/model/suite.py DEVICE_COOKIES, held by this service alone), of the account's hash,
KID, EXPIRES (Unix seconds) and NONCE (128 random bits). Nothing is stored for a valid cookie; a locked one is a
row of `device_failures` under the hash of its nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.common.identity import Keyring

AUDIENCE = "device"
DEVICE_SECONDS = 365 * 24 * 3600  # the cookie's life; a login renews it
MAX_COOKIE = 200  # longer is not one of ours, and is not looked at


@dataclass(frozen=True)
class Device:
    """A verified device cookie's device: `nonce` is its own, kept as a hash only."""

    nonce: str


def _mac(secret: bytes, account: str, kid: str, expires: str, nonce: str) -> str:
    message = f"{account}.{kid}.{expires}.{nonce}".encode()
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class DeviceCookies:
    keyring: Keyring
    clock: Callable[[], float] = time.time

    def issue(self, account: str) -> str:
        """A new device cookie for `account` (its hash), signed with the newest usable key."""
        now = int(self.clock())
        usable = [k for k in self.keyring.keys() if (k.issuer, k.audience) == (self.keyring.name, AUDIENCE)]
        key = max((k for k in usable if k.not_before <= now), key=lambda k: k.not_before, default=None)
        if key is None:
            return ""  # no key yet: no device cookie (its logins are judged as any new browser's)
        expires, nonce = str(now + DEVICE_SECONDS), secrets.token_urlsafe(16)
        return f"v1.{key.kid}.{expires}.{nonce}.{_mac(key.secret, account, key.kid, expires, nonce)}"

    def verify(self, cookie: str, account: str) -> Device | None:
        """The device of a cookie signed for `account`, unexpired; None for anything else."""
        if not cookie or len(cookie) > MAX_COOKIE:
            return None
        parts = cookie.split(".")
        if len(parts) != 5 or parts[0] != "v1" or not parts[2].isdigit():
            return None
        _, kid, expires, nonce, signature = parts
        if int(expires) < self.clock():
            return None
        for key in self.keyring.keys():
            if (key.kid, key.issuer, key.audience) == (kid, self.keyring.name, AUDIENCE):
                if hmac.compare_digest(_mac(key.secret, account, kid, expires, nonce), signature):
                    return Device(nonce)
        return None
