"""HTTPS at the gateway: the real nginx, with a certificate made here (cryptography), in front of the real
services. Plain HTTP only redirects (the probes stay on it), the session cookie is Secure, and HSTS is sent."""

from __future__ import annotations

import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.loopback import LocalSuite, nginx_command
from tests.certificates import certificate
from tests.infra import free_port_block, wait_for_port


@pytest.fixture(scope="module")
def tls_gateway(sqlite_suite: LocalSuite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """A second gateway in front of the same services: HTTP on one port, HTTPS on the next."""
    work = tmp_path_factory.mktemp("tls-gateway")
    tls_dir = certificate(work / "tls")
    http_port = free_port_block(2)
    config = sqlite_suite.gateway_config(
        listen=f"127.0.0.1:{http_port}",
        tls_listen=f"127.0.0.1:{http_port + 1}",
        tls_dir=str(tls_dir),
        https_port=http_port + 1,
        runtime_dir=str(work / "nginx"),
    )
    log = (work / "nginx.log").open("wb")
    process = subprocess.Popen(nginx_command(config, sqlite_suite.settings.nginx), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(http_port + 1)
        yield f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{http_port + 1}", tls_dir / "tls.crt"
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=20)
        log.close()


def test_plain_http_redirects_to_https_but_the_probes_stay(tls_gateway: tuple[str, str, Path]) -> None:
    http, https, _ = tls_gateway
    answer = httpx.get(f"{http}/persons?x=1", follow_redirects=False)
    assert answer.status_code == 308 and answer.headers["location"] == f"{https}/persons?x=1"
    login = httpx.post(f"{http}/login", data={"emailaddress": "admin@test.com", "password": "admin"})
    assert login.status_code == 308 and "set-cookie" not in login.headers  # no password taken over plain HTTP
    assert httpx.get(f"{http}/healthz").status_code == 200 and httpx.get(f"{http}/readyz").status_code == 200


def test_a_login_over_https_sets_a_secure_cookie_and_hsts(tls_gateway: tuple[str, str, Path]) -> None:
    _, https, ca = tls_gateway
    with httpx.Client(
        base_url=https, verify=ssl.create_default_context(cafile=str(ca)), follow_redirects=False, timeout=10
    ) as client:
        page = client.get("/login")
        assert page.status_code == 200
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")
        answer = client.post(
            "/login", data={"emailaddress": "admin@test.com", "password": "admin"}, headers={"Origin": https}
        )
        assert answer.status_code == 302, answer.text
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("AccessToken=") and "; Secure" in cookie and "HttpOnly" in cookie
        assert answer.headers["strict-transport-security"].startswith("max-age=31536000")
        people = client.get("/persons")
        assert people.status_code == 200 and "strict-transport-security" in people.headers
