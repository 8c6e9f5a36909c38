"""No part takes another's word for the user (services/common/context.py): person, authorisation and the frontend
each verify the session service's user context for themselves, and a caller's token naming a user is refused
without a genuine, live context for that same user, for that part."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from deploy.loopback import LocalSuite
from deploy.model.suite import GATEWAY
from services.common import context
from services.common.identity import Keyring
from tests.infra import signed, user_context
from tests.services.test_identity import keys_of, pair_secret

REFUSED = "a valid internal token is required"

# (part, its caller, a request for a user there that a genuine context lets through)
PARTS = [
    ("person", "frontend", "/api/persons"),
    ("authorisation", "person", "/api/authorisations/personView"),
    ("frontend", GATEWAY, "/persons"),
]


def crafted(suite: LocalSuite, audience: str, claims: dict) -> str:
    """A context for `audience` signed with the genuine session>AUDIENCE key, with claims of the test's choosing."""
    key = suite.identity.keys[-1]
    secret = pair_secret(key, context.ISSUER, audience)
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key.kid})


def forged_contexts(suite: LocalSuite, part: str) -> dict[str, Callable[[], str]]:
    """User context headers for user 2's call that `part` must refuse, by why."""
    keys, now = keys_of(suite), int(time.time())
    others = [name for name in context.AUDIENCES if name != part]
    genuine = {"iss": context.ISSUER, "aud": part, "sub": "2", "role": "user", "sid": "s", "iat": now, "exp": now + 30}

    def entries_of(subject: str) -> dict[str, str]:
        return context.entries(user_context(keys, subject))

    return {
        "none": lambda: "",
        "another user's": lambda: user_context(keys, "1", "admin"),
        # the token the session service made for another part, put in this part's place
        "another part's": lambda: f"{part}={entries_of('2')[others[0]]}",
        "named twice": lambda: f"{part}={entries_of('2')[part]} {part}={entries_of('1')[part]}",
        "signed by the caller": lambda: f"{part}={caller_signed(suite, part)}",
        "expired": lambda: f"{part}={crafted(suite, part, genuine | {'iat': now - 90, 'exp': now - 60})}",
        "valid for a year": lambda: f"{part}={crafted(suite, part, genuine | {'exp': now + 365 * 86400})}",
        "no session id": lambda: f"{part}={crafted(suite, part, {k: v for k, v in genuine.items() if k != 'sid'})}",
        "no signature": lambda: f"{part}={jwt.encode(genuine, None, algorithm='none')}",
    }


def caller_signed(suite: LocalSuite, part: str) -> str:
    """What the part's caller could make of a context with its own key: its token for `part`, with user claims."""
    caller = dict((p, c) for p, c, _ in PARTS)[part]
    keyring = Keyring(caller, keys_of(suite) / caller)
    return keyring.sign(part, "2", claims={"role": "admin", "sid": "s", "email": "user@test.com"})


@pytest.mark.parametrize("part,caller,path", PARTS)
def test_a_call_for_a_user_needs_that_users_genuine_context_for_this_part(
    sqlite_suite: LocalSuite, part: str, caller: str, path: str
) -> None:
    url = f"http://{sqlite_suite.settings.address(part)}{path}"
    keys = keys_of(sqlite_suite)
    token = signed(keys, caller, part, "2", with_context=False)
    for why, header in forged_contexts(sqlite_suite, part).items():
        answer = httpx.get(url, headers=token | {context.HEADER: header()}, timeout=30)
        assert answer.status_code == 401, (why, answer.status_code, answer.text[:200])
        if part != "frontend":  # the frontend answers its own 401 page
            assert answer.text == REFUSED, why
    answer = httpx.get(url, headers=token | {context.HEADER: user_context(keys, "2")}, timeout=30)
    assert answer.status_code == 200, answer.text[:200]


def test_a_frontend_key_alone_cannot_act_as_the_admin(sqlite_suite: LocalSuite) -> None:
    """With everything the frontend holds (its key file, and the user's contexts it was sent), it still cannot
    make person act as another user: the contexts for person name the user who logged in."""
    keys = keys_of(sqlite_suite)
    persons = f"http://{sqlite_suite.settings.address('person')}/api/persons"
    users_contexts = user_context(keys, "2")  # what the frontend got for the view-only user
    as_admin = signed(keys, "frontend", "person", "1", with_context=False)
    person = {"firstName": "Mal", "lastName": "Lory"}
    answer = httpx.post(persons, json=person, headers=as_admin | {context.HEADER: users_contexts}, timeout=30)
    assert answer.status_code == 401, answer.text[:200]
    as_user = signed(keys, "frontend", "person", "2", with_context=False) | {context.HEADER: users_contexts}
    assert httpx.post(persons, json=person, headers=as_user, timeout=30).status_code == 403


def test_each_part_is_passed_only_the_contexts_of_the_parts_after_it() -> None:
    header = "frontend=F person=P authorisation=A junk=J person2=X"
    assert context.onward(header, ("person", "authorisation")) == "person=P authorisation=A"
    assert context.onward(header, ("authorisation",)) == "authorisation=A"
    assert context.entries("person=P person=Q authorisation=") == {}
