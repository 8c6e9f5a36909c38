"""What a failure shows a browser: a page that names no part of the suite and no server version, while the part
that failed reaches k8sdeploy's smoke test only, in a Failure-Reference under the pair nginx-lua>smoke
(deploy/smoke.py referred_hop). The real gateway and the real frontend, in front of a person service that fails."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from deploy.identity import PARTS
from deploy.loopback import LocalSuite
from deploy.smoke import reference_keys, referred_hop
from tests.gateway.test_security import Upstream, gateway_to, gateway_with
from tests.helpers import client, login
from tests.infra import start_service, wait_ready

# What no page may name: the suite's parts, the servers they run on, and their addresses.
NAMED = re.compile(r"(?i)" + "|".join([*PARTS, "nginx", "lua", "uvicorn", "fastapi", "python", r"127\.0\.0\.1:\d+"]))


@contextmanager
def frontend_before(suite: LocalSuite, tmp_path: Path, person: Upstream) -> Iterator[str]:
    """The suite's gateway and a real frontend of its own whose person service is `person`; the gateway's URL."""
    keys = suite.key_file("frontend").parent
    frontend = start_service("frontend", tmp_path / "frontend", {"PERSON_URL": f"http://{person.address}"}, keys=keys)
    try:
        wait_ready(frontend)
        with gateway_to(suite, tmp_path / "gateway", "frontend", f"127.0.0.1:{frontend.port}") as url:
            yield url
    finally:
        frontend.stop()
        person.close()


def assert_names_nothing(answer: httpx.Response) -> None:
    assert "Something failed on our side" in answer.text, answer.text[:300]
    # the page's own words, not its links and markup, which name paths such as /persons
    words = re.sub(r"<[^>]*>", " ", answer.text)
    assert NAMED.search(words) is None, NAMED.search(words)
    assert "failing-hop" not in answer.headers
    assert answer.headers.get("server", "") in ("", "nginx"), answer.headers.get("server")


@pytest.mark.parametrize(
    "status,headers,body,hop",
    [
        (500, {}, b'{"detail": "Traceback (most recent call last)"}', "person"),
        (503, {"Failing-Hop": "authorisation"}, b'{"error": "x"}', "authorisation"),
        # person names no other part than authorisation, whatever it says
        (503, {"Failing-Hop": "session"}, b'{"error": "x"}', "person"),
    ],
    ids=["person fails", "authorisation fails behind person", "person names another part"],
)
def test_an_error_page_names_no_part_and_only_the_smoke_test_learns_which(
    sqlite_suite: LocalSuite, tmp_path: Path, status: int, headers: dict[str, str], body: bytes, hop: str
) -> None:
    keys = reference_keys(sqlite_suite.identity)
    person = Upstream(status=status, headers={"Content-Type": "application/json", **headers}, body=body)
    with frontend_before(sqlite_suite, tmp_path, person) as url, client(url) as http:
        assert login(http, "admin@test.com", "admin").status_code == 302
        answer = http.get("/persons")
        assert answer.status_code in (502, 503), answer.text[:300]
        assert_names_nothing(answer)
        assert referred_hop(answer, keys) == hop
        assert referred_hop(answer, {}) is None  # without the key the reference says nothing


def test_the_gateways_own_failure_names_no_part(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    session = Upstream(status=500, body=b"session store down")
    with gateway_with(sqlite_suite, tmp_path, "session", session) as url, client(url) as http:
        answer = login(http, "admin@test.com", "admin")
        assert answer.status_code == 502, answer.text[:300]
        assert_names_nothing(answer)
        assert referred_hop(answer, reference_keys(sqlite_suite.identity)) == "session"
        assert "AccessToken" not in answer.headers.get("set-cookie", "")
