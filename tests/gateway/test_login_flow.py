"""The original sequence diagram, walked through the real gateway in front of the real services."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import client, login, same_origin, table_names


def test_no_cookie_is_sent_to_the_login_page(http: httpx.Client) -> None:
    answer = http.get("/persons")
    assert answer.status_code == 302
    assert answer.headers["location"].endswith("/login")
    page = http.get("/login")
    assert page.status_code == 200
    assert 'name="emailaddress"' in page.text and 'name="password"' in page.text


def test_bad_password_is_401_with_the_form_and_no_cookie(http: httpx.Client) -> None:
    answer = login(http, "admin@test.com", "wrong")
    assert answer.status_code == 401
    assert "Wrong email address or password" in answer.text
    assert "set-cookie" not in answer.headers
    assert login(http, "nobody@test.com", "admin").status_code == 401
    assert http.post("/login", data={"emailaddress": "admin@test.com"}).status_code == 401


def test_admin_login_sets_a_strict_cookie_and_lists_people(http: httpx.Client) -> None:
    answer = login(http, "admin@test.com", "admin")
    assert answer.status_code == 302
    assert answer.headers["location"].endswith("/")
    cookie = answer.headers["set-cookie"]
    token = re.match(r"AccessToken=([A-Za-z0-9_-]+);", cookie).group(1)
    assert len(token) >= 22  # at least 128 bits in URL-safe base64
    for flag in ("Path=/", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie
    assert "Secure" not in cookie  # not configured for TLS here
    people = http.get("/persons")
    assert people.status_code == 200
    assert ("Ada", "Lovelace") in table_names(people.text)


def test_user_without_permission_sees_a_message_not_a_crash(http: httpx.Client) -> None:
    assert login(http, "user@test.com", "user").status_code == 302
    assert http.get("/persons").status_code == 200  # personView is granted
    answer = http.post("/persons/add", data={"firstName": "Eve", "lastName": "Intruder"}, headers=same_origin(http))
    assert answer.status_code == 403
    assert "You do not have permission to do that." in answer.text
    assert ("Eve", "Intruder") not in table_names(http.get("/persons").text)


def test_admin_adds_and_edits_a_person(http: httpx.Client) -> None:
    login(http, "admin@test.com", "admin")
    added = http.post(
        "/persons/add",
        data={"firstName": "Katherine", "lastName": "Johnson", "email": "kj@example.org"},
        headers=same_origin(http),
    )
    assert added.status_code == 303
    location = added.headers["location"]
    person_id = int(location.rsplit("/", 1)[1])
    assert "Katherine Johnson" in http.get(location).text
    edited = http.post(
        f"/persons/{person_id}/edit", data={"firstName": "Katherine", "lastName": "Goble"}, headers=same_origin(http)
    )
    assert edited.status_code == 303
    assert ("Katherine", "Goble") in table_names(http.get("/persons").text)
    invalid = http.post(
        f"/persons/{person_id}/edit", data={"firstName": " ", "lastName": "x" * 101}, headers=same_origin(http)
    )
    assert invalid.status_code == 422
    assert "firstName" in invalid.text and "lastName" in invalid.text
    deleted = http.post(f"/persons/{person_id}/delete", headers=same_origin(http))
    assert deleted.status_code == 303
    assert http.get(location).status_code == 404


def test_forged_caller_header_is_ignored(http: httpx.Client) -> None:
    """Without a session a forged callerId gets nowhere; with user's session it does not become admin."""
    forged = {"callerId": "1", "CALLERID": "1"}
    assert http.get("/persons", headers=forged).status_code == 302
    login(http, "user@test.com", "user")
    answer = http.post(
        "/persons/add", data={"firstName": "Forged", "lastName": "Admin"}, headers={**forged, **same_origin(http)}
    )
    assert answer.status_code == 403
    assert http.get("/", headers=forged).text.count("user@test.com (user)") == 1


@pytest.mark.parametrize(
    "path,method",
    [
        ("/api/sessions", "POST"),
        ("/api/sessions/abc", "GET"),
        ("/api/authentication", "POST"),
        ("/api/authorisations/personView", "GET"),
        ("/api/persons", "GET"),
        ("/_internal/sessions", "POST"),
        ("/_internal/authentication", "POST"),
    ],
)
def test_internal_apis_answer_404_from_outside(http: httpx.Client, path: str, method: str) -> None:
    login(http, "admin@test.com", "admin")
    assert http.request(method, path, content=b"1").status_code == 404


def test_logout_revokes_the_session(http: httpx.Client) -> None:
    login(http, "admin@test.com", "admin")
    token = http.cookies["AccessToken"]
    assert http.get("/persons").status_code == 200
    out = http.post("/logout", headers=same_origin(http))
    assert out.status_code == 302 and out.headers["location"].endswith("/login")
    assert "Max-Age=0" in out.headers["set-cookie"]
    with client(str(http.base_url)) as replay:
        replay.cookies.set("AccessToken", token)
        answer = replay.get("/persons")
        assert answer.status_code == 302 and answer.headers["location"].endswith("/login")


def test_cross_site_posts_are_refused(http: httpx.Client) -> None:
    evil = {"Origin": "http://evil.example"}
    assert (
        http.post("/login", data={"emailaddress": "admin@test.com", "password": "admin"}, headers=evil).status_code
        == 403
    )
    assert (
        http.post(
            "/login",
            data={"emailaddress": "admin@test.com", "password": "admin"},
            headers={"Referer": "http://evil.example/page"},
        ).status_code
        == 403
    )
    login(http, "admin@test.com", "admin")
    answer = http.post("/persons/add", data={"firstName": "Cross", "lastName": "Site"}, headers={"Origin": "null"})
    assert answer.status_code == 403
    assert ("Cross", "Site") not in table_names(http.get("/persons").text)


def test_public_pages_need_no_session(http: httpx.Client) -> None:
    assert http.get("/401").status_code == 401
    assert http.get("/404").status_code == 404
    assert http.get("/static/style.css").status_code == 200
    assert http.get("/no/such/page").status_code == 302  # unknown pages still need a session


def test_gateway_probes_need_no_session(http: httpx.Client) -> None:
    assert http.get("/healthz").text == "ok\n"
    assert http.get("/readyz").status_code == 200
