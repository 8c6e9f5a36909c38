"""Person ids in page addresses that no person can have end as the 404 page, never as a server error."""

from __future__ import annotations

import httpx
import pytest

from deploy.loopback import LocalSuite
from tests.helpers import client, login, same_origin

# Huge, negative, zero, just past a signed 64-bit integer (and past an unsigned one), and too long for int().
IDS = ["99999999999999999999", "-1", "0", str(2**63), str(2**64), "9" * 5000]  # and past int()'s 4300 digits


@pytest.fixture(scope="module")
def admin_http(suite: LocalSuite) -> httpx.Client:
    """One admin session for the module: a login costs a password hash."""
    with client(suite.url) as http:
        assert login(http, "admin@test.com", "admin").status_code == 302
        yield http


def assert_not_found(answer: httpx.Response, person_id: str) -> None:
    assert answer.status_code == 404, (person_id, answer.text[:500])
    assert "<h1>Not found</h1>" in answer.text


def test_view_and_edit_pages_are_not_found(admin_http: httpx.Client) -> None:
    for person_id in IDS:
        assert_not_found(admin_http.get(f"/persons/{person_id}"), person_id)
        assert_not_found(admin_http.get(f"/persons/{person_id}/edit"), person_id)


def test_edit_and_delete_forms_are_not_found(admin_http: httpx.Client) -> None:
    for person_id in IDS:
        edit = admin_http.post(
            f"/persons/{person_id}/edit",
            data={"firstName": "Eve", "lastName": "Nobody"},
            headers=same_origin(admin_http),
        )
        assert_not_found(edit, person_id)
        assert_not_found(admin_http.post(f"/persons/{person_id}/delete", headers=same_origin(admin_http)), person_id)
        # An invalid form for no person: whichever is checked first, the answer is the client's error.
        invalid = admin_http.post(
            f"/persons/{person_id}/edit",
            data={"firstName": " ", "lastName": "x" * 101},
            headers=same_origin(admin_http),
        )
        assert invalid.status_code in (404, 422), (person_id, invalid.text[:500])
