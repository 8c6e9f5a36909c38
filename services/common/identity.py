"""Internal tokens: every call between the parts of the suite carries proof of who sent it.

Following OWASP's identity-propagation pattern, the gateway checks the session cookie once and sends a short-lived
signed token (a JWT, HS256) naming the caller (`sub`), the part that signed it (`iss`), the part it is for (`aud`),
when it expires (`exp`, seconds) and the key (`kid` in its header). Each part verifies the tokens it receives
offline and signs its own calls the same way.

Each (issuer, audience) pair has its own key, derived by k8sdeploy (deploy/identity.py) from the environment's
master key; a part's key file holds only the pairs it signs or receives, so a part can never sign for another. The
file is a Secret volume (a 0600 file on the local target) named by IDENTITY_KEYS, one key a line:

    KID NOT_BEFORE ISSUER>AUDIENCE BASE64URL-KEY

It is read again when it changes (a rotation lands without a restart): tokens are signed with the newest key whose
NOT_BEFORE (Unix seconds) has passed, and any listed key verifies.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt

from .config import ConfigError

log = logging.getLogger(__name__)

TOKEN_SECONDS = 30  # a call's proof lives this long: enough for one request and its retries
LEEWAY_SECONDS = 5  # clocks of the parts' hosts may differ by this much
# The longest life a verified token may claim (exp - iat), whatever its `exp` says: every signer here asks for
# TOKEN_SECONDS (the gateway's identity.lua too), so a genuine key's token valid for longer was not made by a part.
MAX_TOKEN_SECONDS = 2 * TOKEN_SECONDS
RELOAD_SECONDS = 1.0  # the key file is looked at again at most this often
SCHEME = "Bearer "
CLAIMS = {"role": "role", "session": "sid", "email": "email", "token_id": "jti"}  # Caller's field: its claim


class Unverified(Exception):
    """A request's proof is missing, malformed, signed by another key, for someone else, or expired."""


@dataclass(frozen=True)
class Key:
    kid: str
    not_before: int
    issuer: str
    audience: str
    secret: bytes


@dataclass(frozen=True)
class Caller:
    """Who a verified token says sent the request: the part that signed it, for the user `subject` ("" none);
    a user context (the session service's) also says the user's role, session and address (services/common/
    context.py)."""

    issuer: str
    subject: str
    role: str = ""
    session: str = ""
    email: str = ""
    token_id: str = ""  # `jti`: a login proof's, opened into one session only


def parse(text: str) -> tuple[Key, ...]:
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            kid, not_before, pair, secret = line.split()
            issuer, audience = pair.split(">")
            keys.append(Key(kid, int(not_before), issuer, audience, base64.urlsafe_b64decode(secret + "==")))
        except ValueError:
            raise ConfigError(
                f"line {number} of the identity key file is not KID NOT_BEFORE ISSUER>AUDIENCE KEY"
            ) from None
    return tuple(keys)


class Keyring:
    """The keys of one part, read from `path` and read again when the file changes."""

    def __init__(self, name: str, path: Path, clock: Callable[[], float] = time.time):
        self.name, self.path, self.clock = name, path, clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._keys: tuple[Key, ...] = ()
        self._load()
        if not self._keys:
            raise ConfigError(f"the identity key file {path} holds no key; k8sdeploy writes it (IDENTITY_KEYS)")

    def _load(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_ino)
            if stamp != self._stamp:
                self._keys, self._stamp = parse(self.path.read_text()), stamp
        except OSError as exc:
            if self._stamp is None:
                raise ConfigError(f"cannot read the identity key file {self.path}: {exc.strerror}") from None
            log.warning("cannot read the identity key file %s again (%s); keeping the keys read before", self.path, exc)

    def keys(self) -> tuple[Key, ...]:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= RELOAD_SECONDS:
                self._checked = now
                self._load()
            return self._keys

    def sign(self, audience: str, subject: str = "", seconds: int = TOKEN_SECONDS, claims: dict | None = None) -> str:
        """A token for a call to `audience` on behalf of `subject`, signed with the newest usable key; `claims`
        adds to the registered ones (a user context's role, session and email; a login proof's jti)."""
        now = int(self.clock())
        usable = [k for k in self.keys() if k.issuer == self.name and k.audience == audience and k.not_before <= now]
        if not usable:
            raise ConfigError(f"no key of the identity key file lets {self.name} call {audience}")
        key = max(usable, key=lambda k: k.not_before)
        claims = {**(claims or {}), "iss": self.name, "aud": audience, "sub": subject, "iat": now, "exp": now + seconds}
        return jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.kid})

    def verify(self, token: str, issuers: tuple[str, ...]) -> Caller:
        """The caller a token for this part names, if one of `issuers` signed it with a key held here."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unverified(f"malformed token ({exc})") from None
        issuer, kid = claims.get("iss"), header.get("kid")
        if issuer not in issuers:
            raise Unverified(f"a token of {issuer!r}, which may not call {self.name}")
        key = next((k for k in self.keys() if (k.kid, k.issuer, k.audience) == (kid, issuer, self.name)), None)
        if key is None:
            raise Unverified(f"a token of {issuer} signed with key {kid!r}, which {self.name} does not hold")
        try:
            checked = jwt.decode(
                token,
                key.secret,
                algorithms=["HS256"],
                audience=self.name,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unverified(f"a token of {issuer} that does not verify ({exc})") from None
        lifetime = checked["exp"] - checked["iat"]
        if not isinstance(lifetime, int | float) or lifetime > MAX_TOKEN_SECONDS:
            raise Unverified(f"a token of {issuer} claiming {lifetime} s of life (at most {MAX_TOKEN_SECONDS} s)")
        if checked["iat"] > self.clock() + LEEWAY_SECONDS:
            raise Unverified(f"a token of {issuer} issued in the future")
        extra = {name: checked.get(claim) for name, claim in CLAIMS.items()}
        return Caller(issuer, str(checked["sub"]), **{k: v for k, v in extra.items() if isinstance(v, str)})


def bearer(authorization: str) -> str:
    """The token of an Authorization header, "" when there is none."""
    return authorization[len(SCHEME) :].strip() if authorization.startswith(SCHEME) else ""


def from_environment(name: str, env: dict[str, str] | None = None) -> Keyring:
    """The part's keyring from the file IDENTITY_KEYS names; a ConfigError (exit 2) without one."""
    path = (os.environ if env is None else env).get("IDENTITY_KEYS", "")
    if not path:
        raise ConfigError("IDENTITY_KEYS is not set: it names the part's identity key file, which k8sdeploy writes")
    return Keyring(name, Path(path))
