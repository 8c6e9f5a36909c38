"""Internal calls carry proof (services/common/identity.py, deploy/identity.py): every internal API refuses a caller
without a valid token of one of its callers, and the gateway's path survives a key rotation without a restart."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import jwt
import pytest

from deploy.identity import Identity, new_key
from deploy.loopback import LocalSuite
from deploy.model.suite import GATEWAY, trust_pairs
from tests.infra import signed, write_identity

# Each internal API, the part that may call it, and a request a caller would send.
CALLS = [
    ("authentication", GATEWAY, "POST", "/api/authentication", {"data": {"emailaddress": "a@b.c", "password": "x"}}),
    ("session", GATEWAY, "POST", "/api/sessions", {"content": b"x"}),
    ("session", GATEWAY, "POST", "/api/sessions/lookup", {"content": b"x" * 30}),
    ("session", GATEWAY, "POST", "/api/sessions/revoke", {"content": b"x" * 30}),
    ("authorisation", "person", "GET", "/api/authorisations/personView", {}),
    ("person", "frontend", "GET", "/api/persons", {}),
    ("person", "frontend", "DELETE", "/api/persons/999999", {}),  # none such: the proof passes, Ada stays
    ("frontend", GATEWAY, "GET", "/persons", {}),
    ("frontend", GATEWAY, "GET", "/login", {}),
    ("frontend", GATEWAY, "GET", "/static/style.css", {}),
]


def keys_of(suite: LocalSuite) -> Path:
    return suite.key_file(GATEWAY).parent


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expired(suite: LocalSuite, issuer: str, audience: str) -> str:
    """A token of the right key that expired a minute ago (the services allow 5 s of clock difference)."""
    now = int(time.time())
    key = suite.identity.keys[-1]
    claims = {"iss": issuer, "aud": audience, "sub": "1", "iat": now - 90, "exp": now - 60}
    return jwt.encode(claims, pair_secret(key, issuer, audience), algorithm="HS256", headers={"kid": key.kid})


def pair_secret(key, issuer: str, audience: str) -> bytes:  # noqa: ANN001 - deploy.identity.MasterKey
    return base64.urlsafe_b64decode(key.pair_key(issuer, audience) + "==")


@pytest.mark.parametrize("audience,issuer,method,path,request_args", CALLS)
def test_every_internal_api_refuses_a_caller_without_valid_proof(
    sqlite_suite: LocalSuite,
    tmp_path: Path,
    audience: str,
    issuer: str,
    method: str,
    path: str,
    request_args: dict,
) -> None:
    base = f"http://{sqlite_suite.settings.address(audience)}{path}"
    other_keys = write_identity(tmp_path / "other")  # another environment's keys, same key ids impossible
    wrong_caller = next(i for i, a in trust_pairs() if a != audience and i != issuer)
    key, now = sqlite_suite.identity.keys[-1], int(time.time())
    refused = {
        "no proof": {},
        "not a token": bearer("x.y.z"),
        "another key": signed(other_keys, issuer, audience, "1"),
        "expired": bearer(expired(sqlite_suite, issuer, audience)),
        "for another service": signed(keys_of(sqlite_suite), *next(p for p in trust_pairs() if p[1] != audience), "1"),
        # as if that part had the key of a pair the suite does not have
        "a part that may not call it": bearer(
            jwt.encode(
                {"iss": wrong_caller, "aud": audience, "sub": "1", "iat": now, "exp": now + 30},
                pair_secret(key, wrong_caller, audience),
                algorithm="HS256",
                headers={"kid": key.kid},
            )
        ),
        # a genuine key's tokens that live longer than any part asks for, or claim to be issued later
        "valid for a year": bearer(
            jwt.encode(
                {"iss": issuer, "aud": audience, "sub": "1", "iat": now, "exp": now + 365 * 86400},
                pair_secret(key, issuer, audience),
                algorithm="HS256",
                headers={"kid": key.kid},
            )
        ),
        "issued tomorrow": bearer(
            jwt.encode(
                {"iss": issuer, "aud": audience, "sub": "1", "iat": now + 86400, "exp": now + 86430},
                pair_secret(key, issuer, audience),
                algorithm="HS256",
                headers={"kid": key.kid},
            )
        ),
        "no signature": bearer(
            jwt.encode({"iss": issuer, "aud": audience, "sub": "1", "iat": 1, "exp": 2**40}, None, algorithm="none")
        ),
        "a Basic header": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }
    for why, headers in refused.items():
        answer = httpx.request(method, base, headers=headers, **request_args)
        assert answer.status_code == 401, (why, answer.text[:200])
        assert answer.text == "a valid internal token is required", why
    # and the same request with proof passes that check
    answer = httpx.request(method, base, headers=signed(keys_of(sqlite_suite), issuer, audience, "1"), **request_args)
    assert answer.text != "a valid internal token is required", answer.text[:200]


def test_a_refused_request_is_logged_without_its_body(sqlite_suite: LocalSuite) -> None:
    secret = "a-password-that-must-not-be-logged"
    url = f"http://{sqlite_suite.settings.address('authentication')}/api/authentication"
    assert httpx.post(url, data={"emailaddress": "x@y.z", "password": secret}).status_code == 401
    log = (sqlite_suite.logs / "authentication.log").read_text()
    assert "refused POST /api/authentication from 127.0.0.1" in log
    assert secret not in log


def test_the_gateway_path_works_across_key_rotations_without_a_restart(sqlite_suite: LocalSuite) -> None:
    pids = {name: process.pid for name, process in sqlite_suite.processes.items()}
    first = sqlite_suite.identity
    try:
        for rotation in range(3):
            now = int(time.time())
            sqlite_suite.write_keys(sqlite_suite.identity.rotated(now, 0))
            time.sleep(1.2)  # every part reads its key file again within a second
            with httpx.Client(base_url=sqlite_suite.url, headers={"Origin": sqlite_suite.url}) as http:
                assert (
                    http.post("/login", data={"emailaddress": "admin@test.com", "password": "admin"}).status_code == 302
                )
                page = http.get("/persons")
                assert page.status_code == 200 and "<table>" in page.text, (rotation, page.text[:300])
                assert http.post("/logout").status_code == 302
        # the first key has been dropped (two are kept): a token of it is refused now
        stale = first.keys[0]
        old = Identity(first.env_name, (stale,))
        old_dir = write_identity(sqlite_suite.settings.work_dir / "stale", old)
        answer = httpx.get(
            f"http://{sqlite_suite.settings.address('frontend')}/persons",
            headers=signed(old_dir, GATEWAY, "frontend", "1"),
        )
        assert answer.status_code == 401
    finally:
        sqlite_suite.write_keys(Identity(first.env_name, (*sqlite_suite.identity.keys, new_key(int(time.time())))))
        time.sleep(1.2)
    assert {name: process.pid for name, process in sqlite_suite.processes.items()} == pids
    assert all(process.poll() is None for process in sqlite_suite.processes.values())


def test_a_key_signs_only_from_its_time(tmp_path: Path) -> None:
    """A rotation on a cluster: the new key is in every file at once, but signs only once all parts can have read it."""
    from services.common.identity import Keyring

    now = int(time.time())
    identity = Identity("t", (new_key(now - 10),)).rotated(now, 120)
    keys = write_identity(tmp_path, identity)
    token = Keyring(GATEWAY, keys / GATEWAY).sign("frontend", "1")
    assert jwt.get_unverified_header(token)["kid"] == identity.keys[0].kid
    assert Keyring("frontend", keys / "frontend").verify(token, (GATEWAY,)).subject == "1"
    later = Keyring(GATEWAY, keys / GATEWAY, clock=lambda: now + 121).sign("frontend", "1")
    assert jwt.get_unverified_header(later)["kid"] == identity.keys[1].kid


def test_each_part_holds_only_the_keys_of_its_own_calls() -> None:
    identity = Identity("t", (new_key(0),))
    for part in ("frontend", "person", "authorisation", "session", "authentication", GATEWAY):
        pairs = {line.split()[2] for line in identity.key_file(part).splitlines() if not line.startswith("#")}
        assert pairs == {f"{i}>{a}" for i, a in trust_pairs() if part in (i, a)}, part
    # the gateway cannot sign authentication's proof of a login
    assert "authentication>session" not in identity.key_file(GATEWAY)
