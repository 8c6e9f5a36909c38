"""Each service's HTTP contract, called directly on its loopback port (as the gateway and peers do)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import jwt
import pytest

from deploy.loopback import LocalSuite
from deploy.model.suite import GATEWAY
from tests import infra
from tests.infra import signed, start_service, wait_ready


def url(suite: LocalSuite, service: str) -> str:
    return f"http://{suite.settings.address(service)}"


def proof(suite: LocalSuite, issuer: str, audience: str, subject: str = "") -> dict[str, str]:
    """The Authorization `issuer` sends `audience` for the user `subject` (services/common/identity.py)."""
    return signed(suite.key_file(GATEWAY).parent, issuer, audience, subject)


def login_proof(suite: LocalSuite, user_id: str) -> str:
    """authentication's proof of a login, which the session service opens a session for."""
    return infra.login_proof(suite.key_file(GATEWAY).parent, user_id)


# authentication


@pytest.mark.parametrize(
    "email,password,expected",
    [
        ("admin@test.com", "admin", (200, "1")),
        ("user@test.com", "user", (200, "2")),
        ("ADMIN@test.com ", "admin", (200, "1")),
        ("admin@test.com", "user", (401, None)),
        ("nobody@test.com", "x", (401, None)),
        ("", "", (401, None)),
    ],
)
def test_authentication(sqlite_suite: LocalSuite, email: str, password: str, expected: tuple) -> None:
    answer = httpx.post(
        f"{url(sqlite_suite, 'authentication')}/api/authentication",
        data={"emailaddress": email, "password": password},
        headers=proof(sqlite_suite, GATEWAY, "authentication"),
    )
    assert answer.status_code == expected[0]
    if expected[1]:  # the answer is authentication's proof of the login, for the session service
        claims = jwt.decode(answer.text, options={"verify_signature": False})
        assert (claims["iss"], claims["aud"], claims["sub"]) == ("authentication", "session", expected[1])


def test_passwords_are_stored_hashed(sqlite_suite: LocalSuite) -> None:
    database = sqlite_suite.settings.work_dir / "data" / "authentication.db"
    with sqlite3.connect(database) as connection:
        rows = dict(connection.execute("SELECT email, password_hash FROM users"))
    assert set(rows) == {"admin@test.com", "user@test.com"}
    for stored in rows.values():
        assert stored.startswith("scrypt$") and "admin" not in stored and "user" not in stored


# session


def test_session_lifecycle(sqlite_suite: LocalSuite) -> None:
    base = f"{url(sqlite_suite, 'session')}/api/sessions"
    gateway = proof(sqlite_suite, GATEWAY, "session")
    tokens = {httpx.post(base, content=login_proof(sqlite_suite, "2"), headers=gateway).text for _ in range(3)}
    assert len(tokens) == 3
    token = tokens.pop()
    assert len(token) >= 22 and token.replace("-", "").replace("_", "").isalnum()
    # the user's id, the user contexts for the parts, no new token (not rotated)
    user_id, contexts, rotated = httpx.post(f"{base}/lookup", content=token, headers=gateway).text.split("\n")
    assert (user_id, rotated) == ("2", "")
    assert [entry.partition("=")[0] for entry in contexts.split()] == ["frontend", "person", "authorisation"]
    assert httpx.post(f"{base}/revoke", content=token, headers=gateway).status_code == 204
    assert httpx.post(f"{base}/lookup", content=token, headers=gateway).status_code == 404
    assert httpx.post(f"{base}/revoke", content=token, headers=gateway).status_code == 204  # idempotent
    assert httpx.post(f"{base}/lookup", content="not-a-token", headers=gateway).status_code == 404


@pytest.mark.parametrize("subject", ["", "abc", "-1", "1" * 19])
def test_session_needs_a_user_id(sqlite_suite: LocalSuite, subject: str) -> None:
    answer = httpx.post(
        f"{url(sqlite_suite, 'session')}/api/sessions",
        content=login_proof(sqlite_suite, subject),
        headers=proof(sqlite_suite, GATEWAY, "session"),
    )
    assert answer.status_code == 400


@pytest.mark.parametrize("body", [b"", b"7", b"not.a.token"])
def test_a_session_needs_authentications_proof(sqlite_suite: LocalSuite, body: bytes) -> None:
    """The gateway alone cannot open a session: it has no key to sign authentication's proof with."""
    gateway = proof(sqlite_suite, GATEWAY, "session")
    forged = proof(sqlite_suite, GATEWAY, "session", "1")["Authorization"].removeprefix("Bearer ").encode()
    for sent in (body, forged):
        answer = httpx.post(f"{url(sqlite_suite, 'session')}/api/sessions", content=sent, headers=gateway)
        assert answer.status_code == 401, sent


def test_sessions_expire(tmp_path: Path) -> None:
    service = start_service("session", tmp_path, {"DATABASE_PATH": str(tmp_path / "s.db"), "SESSION_TTL_SECONDS": "3"})
    try:
        wait_ready(service)
        gateway = service.token(GATEWAY)
        login = infra.login_proof(service.keys, "1")
        token = httpx.post(f"{service.url}/api/sessions", content=login, headers=gateway).text
        assert httpx.post(f"{service.url}/api/sessions/lookup", content=token, headers=gateway).status_code == 200
        time.sleep(4.5)  # past the absolute end (whole seconds, as MariaDB keeps them)
        assert httpx.post(f"{service.url}/api/sessions/lookup", content=token, headers=gateway).status_code == 404
    finally:
        service.stop()


# authorisation


@pytest.mark.parametrize(
    "caller,permission,status",
    [
        ("1", "personView", 200),
        ("1", "personAdd", 200),
        ("1", "personEdit", 200),
        ("1", "personDelete", 200),
        ("2", "personView", 200),
        ("2", "personAdd", 404),
        ("2", "personEdit", 404),
        ("2", "personDelete", 404),
        ("3", "personView", 404),
        ("1", "personFly", 404),
        ("", "personView", 404),
        ("x", "personView", 404),
    ],
)
def test_authorisation(sqlite_suite: LocalSuite, caller: str, permission: str, status: int) -> None:
    headers = proof(sqlite_suite, "person", "authorisation", caller)
    answer = httpx.get(f"{url(sqlite_suite, 'authorisation')}/api/authorisations/{permission}", headers=headers)
    assert answer.status_code == status


# person


def test_person_needs_a_caller(sqlite_suite: LocalSuite) -> None:
    answer = httpx.get(f"{url(sqlite_suite, 'person')}/api/persons", headers=proof(sqlite_suite, "frontend", "person"))
    assert answer.status_code == 401
    assert answer.json() == {"error": "the token names no user"}


def test_person_denies_with_403_and_a_json_error(sqlite_suite: LocalSuite) -> None:
    base = f"{url(sqlite_suite, 'person')}/api/persons"
    as_user = proof(sqlite_suite, "frontend", "person", "2")
    assert httpx.get(base, headers=as_user).status_code == 200
    for method, path in [("POST", ""), ("PUT", "/1"), ("DELETE", "/1")]:
        answer = httpx.request(method, base + path, headers=as_user, json={"firstName": "a", "lastName": "b"})
        assert answer.status_code == 403
        assert answer.json() == {
            "error": f"no permission person{ {'POST': 'Add', 'PUT': 'Edit', 'DELETE': 'Delete'}[method] }"
        }


def test_person_crud(sqlite_suite: LocalSuite) -> None:
    base = f"{url(sqlite_suite, 'person')}/api/persons"
    admin = proof(sqlite_suite, "frontend", "person", "1")
    created = httpx.post(base, headers=admin, json={"firstName": " Mary ", "lastName": "Jackson"})
    assert created.status_code == 201
    person = created.json()
    assert person["firstName"] == "Mary" and person["email"] == ""
    assert httpx.get(f"{base}/{person['id']}", headers=admin).json() == person
    assert person in httpx.get(base, headers=admin).json()
    changed = httpx.put(
        f"{base}/{person['id']}",
        headers=admin,
        json={"firstName": "Mary", "lastName": "Jackson", "email": "mj@example.org"},
    )
    assert changed.json()["email"] == "mj@example.org"
    assert httpx.delete(f"{base}/{person['id']}", headers=admin).status_code == 204
    assert httpx.get(f"{base}/{person['id']}", headers=admin).status_code == 404
    assert (
        httpx.put(f"{base}/{person['id']}", headers=admin, json={"firstName": "a", "lastName": "b"}).status_code == 404
    )


@pytest.mark.parametrize(
    "body",
    [
        {"firstName": "", "lastName": "b"},
        {"firstName": "   ", "lastName": "b"},
        {"firstName": "a"},
        {"firstName": "a" * 101, "lastName": "b"},
        {"firstName": "a", "lastName": "b", "email": "no-at-sign"},
        {"firstName": "a", "lastName": "b", "role": "admin"},
    ],
)
def test_person_input_is_validated(sqlite_suite: LocalSuite, body: dict) -> None:
    admin = proof(sqlite_suite, "frontend", "person", "1")
    answer = httpx.post(f"{url(sqlite_suite, 'person')}/api/persons", headers=admin, json=body)
    assert answer.status_code == 422
    # what was wrong, by field, never what was sent (FastAPI's own 422 echoes the input)
    for value in body.values():
        if len(value.strip()) > 1:
            assert value not in answer.text, answer.text
    assert all(set(problem) <= {"loc", "msg", "type"} for problem in answer.json()["detail"])


# Whole numbers no person can have (zero, negative, beyond SQLite's 64-bit INTEGER, far beyond) are 404
# without a lookup, the largest 64-bit id is looked up, and what FastAPI cannot read as a whole number
# (including one of more than 4300 digits, pydantic's limit) stays 422.
PERSON_IDS = [
    ("0", 404),
    ("-1", 404),
    (str(-(2**63) - 1), 404),
    (str(2**63), 404),
    (str(2**64), 404),
    ("9" * 20, 404),
    ("9" * 300, 404),
    (str(2**63 - 1), 404),
    ("abc", 422),
    ("1.5", 422),
    ("1e3", 422),
    ("0x10", 422),
    ("%20", 422),
    ("9" * 5000, 422),
]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_person_ids_out_of_range_are_404_and_malformed_ones_422(suite: LocalSuite, method: str) -> None:
    base = f"{url(suite, 'person')}/api/persons"
    for person_id, status in PERSON_IDS:
        answer = httpx.request(
            method,
            f"{base}/{person_id}",
            headers=proof(suite, "frontend", "person", "1"),
            json={"firstName": "a", "lastName": "b"},
        )
        assert answer.status_code == status, (person_id[:30], answer.text[:200])
        if status == 422:
            assert answer.json()["detail"][0]["loc"] == ["path", "person_id"]
        elif len(person_id) > 100:
            assert answer.json() == {"detail": "no person with an id that long"}
        else:
            assert answer.json() == {"detail": f"no person with id {person_id}"}


def test_person_ids_out_of_range_never_reach_the_database(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    """With its table gone, the service fails every lookup: ids out of range are answered without one."""
    database = tmp_path / "p.db"
    service = start_service(
        "person",
        tmp_path,
        {"DATABASE_PATH": str(database), "AUTHORISATION_URL": url(sqlite_suite, "authorisation")},
        keys=sqlite_suite.key_file(GATEWAY).parent,  # the suite's keys: its authorisation service believes it
    )
    try:
        wait_ready(service)
        with sqlite3.connect(database) as connection:
            connection.execute("DROP TABLE persons")
        base = f"{service.url}/api/persons"
        body = {"firstName": "a", "lastName": "b"}
        admin = service.token("frontend", "1")
        for method in ("GET", "PUT", "DELETE"):
            assert httpx.request(method, f"{base}/1", headers=admin, json=body).status_code == 500
            for person_id in ("0", "-1", str(2**63)):
                answer = httpx.request(method, f"{base}/{person_id}", headers=admin, json=body)
                assert answer.status_code == 404, (method, person_id)
    finally:
        service.stop()


def test_person_without_authorisation_service_is_503(tmp_path: Path) -> None:
    service = start_service(
        "person", tmp_path, {"DATABASE_PATH": str(tmp_path / "p.db"), "AUTHORISATION_URL": "http://127.0.0.1:1"}
    )
    try:
        wait_ready(service)
        answer = httpx.get(f"{service.url}/api/persons", headers=service.token("frontend", "1"))
        assert answer.status_code == 503
        assert answer.json() == {"error": "a service this one needs is unavailable"}  # names none
        assert answer.headers["failing-hop"] == "authorisation"  # for the gateway's reference only
    finally:
        service.stop()


def test_probes(sqlite_suite: LocalSuite) -> None:
    for name in ("frontend", "authentication", "authorisation", "session", "person"):
        assert httpx.get(f"{url(sqlite_suite, name)}/healthz").text == "ok"
        assert httpx.get(f"{url(sqlite_suite, name)}/readyz").json() == {"ready": True}


def test_readyz_reports_a_database_behind_the_code(tmp_path: Path) -> None:
    database = tmp_path / "a.db"
    service = start_service("authorisation", tmp_path, {"DATABASE_PATH": str(database)})
    try:
        wait_ready(service)
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE alembic_version SET version_num = '0000'")
        answer = httpx.get(f"{service.url}/readyz")
        assert answer.status_code == 503
        assert answer.json() == {
            "ready": False,
            "reason": "database at revision 0000, which this code (head 0002) does not know and cannot reach",
        }
        assert httpx.get(f"{service.url}/healthz").status_code == 200
    finally:
        service.stop()
