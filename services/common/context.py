"""The user context: who the user is, as the session service (which checked the login) says, for each part that
acts for the user (OWASP Microservices Security cheat sheet, "identity propagation": a signed data structure made
by the component that authenticated the user, verified by every service itself).

At each lookup of a session the session service signs one short token per part that acts for a user (frontend,
person, authorisation): subject, role, session id (`sid`, never the session token), and for the frontend the
address; audience that part, life TOKEN_SECONDS. Each is signed with the key of the pair session>PART, which the
frontend does not hold for person or authorisation: a frontend (or its key) alone can no longer act as a user. The
gateway passes them to the frontend in the User-Context header, the frontend passes the others on to person, and
person passes authorisation's: `frontend=TOKEN person=TOKEN authorisation=TOKEN`.

A part that takes a caller's token naming a user (create_app's check) also needs that user's context for itself,
naming the same user; `user(request)` is the verified context.
"""

from __future__ import annotations

from collections.abc import Iterable

from .identity import Caller, Keyring, Unverified

HEADER = "User-Context"
ISSUER = "session"  # the part that checked the login (deploy/model/suite.py USER_CONTEXT)
AUDIENCES = ("frontend", "person", "authorisation")  # who acts for a user, in the order the request travels


def entries(header: str) -> dict[str, str]:
    """The header's tokens by part; a part named twice has none (which of the two is meant is not known)."""
    pairs = [item.partition("=")[::2] for item in header.split()]
    names = [part for part, _ in pairs]
    return {part: token for part, token in pairs if part in AUDIENCES and token and names.count(part) == 1}


def issue(keyring: Keyring, subject: str, role: str, session: str, email: str) -> str:
    """The session service's contexts for every part that acts for the user, as the header carries them."""
    tokens = []
    for audience in AUDIENCES:
        claims = {"role": role, "sid": session}
        if audience == "frontend":
            claims["email"] = email  # only the pages show it
        tokens.append(f"{audience}={keyring.sign(audience, subject, claims=claims)}")
    return " ".join(tokens)


def verify(keyring: Keyring, header: str, caller: Caller) -> Caller:
    """This part's context in `header`, verified, for the user `caller`'s token names; Unverified if not."""
    token = entries(header).get(keyring.name)
    if token is None:
        raise Unverified(f"{caller.issuer}'s call for user {caller.subject} carries no user context for {keyring.name}")
    context = keyring.verify(token, (ISSUER,))
    if context.subject != caller.subject:
        raise Unverified(f"a user context for user {context.subject!r} on a call for user {caller.subject!r}")
    if not context.session:
        raise Unverified("a user context without a session id")
    return context


def onward(header: str, parts: Iterable[str]) -> str:
    """What of `header` goes on to the parts called next: their own entries only."""
    found = entries(header)
    return " ".join(f"{part}={found[part]}" for part in parts if part in found)
