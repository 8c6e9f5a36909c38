"""The rendered nginx configuration: checked by nginx itself, and its settings seen from outside."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.loopback import LocalSuite, nginx_command
from deploy.render.gateway import GatewayConfig, render_nginx_conf, retry_after
from tests.helpers import login
from tests.infra import free_port_block, wait_for_port

UPSTREAMS = {"frontend": "127.0.0.1:8081", "authentication": "127.0.0.1:8082", "session": "127.0.0.1:8084"}


def test_every_upstream_the_gateway_calls_must_be_given() -> None:
    with pytest.raises(ValueError, match="lack session"):
        GatewayConfig(upstreams={"frontend": "a:1", "authentication": "b:2"})


def test_upstreams_come_from_the_config_only() -> None:
    split = render_nginx_conf(
        GatewayConfig(
            upstreams={"frontend": "frontend:8081", "authentication": "authentication:8082", "session": "session:8084"}
        )
    )
    assert "server frontend:8081;" in split and "127.0.0.1" not in split
    single = render_nginx_conf(GatewayConfig(upstreams=UPSTREAMS))
    assert "server 127.0.0.1:8084;" in single


def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    config = GatewayConfig(upstreams=UPSTREAMS, listen="127.0.0.1:1", runtime_dir=str(tmp_path))
    command = nginx_command(config) + ["-t"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def run_gateway(suite: LocalSuite, tmp_path: Path, **overrides) -> tuple[subprocess.Popen, str]:
    port = free_port_block(1)
    config = suite.gateway_config(listen=f"127.0.0.1:{port}", runtime_dir=str(tmp_path), **overrides)
    process = subprocess.Popen(nginx_command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def default_gateway(sqlite_suite: LocalSuite, tmp_path: Path) -> Iterator[str]:
    """A second gateway with the shipped login limits, in front of the shared suite's services."""
    defaults = GatewayConfig(upstreams=UPSTREAMS)
    process, url = run_gateway(sqlite_suite, tmp_path, login_rate=defaults.login_rate, login_burst=defaults.login_burst)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_a_person_is_never_limited_a_password_guesser_is(default_gateway: str) -> None:
    with httpx.Client(base_url=default_gateway, follow_redirects=False) as http:
        person = [login(http, "admin@test.com", "typo").status_code for _ in range(4)]
        person.append(login(http, "admin@test.com", "admin").status_code)
        assert person == [401, 401, 401, 401, 302]
        # An address per guess: the authentication service's own lock of an account after repeated
        # failures (429 too) would otherwise answer for nginx's limit, and lock admin for later tests.
        answers = [login(http, f"guesser{i}@test.com", "guess") for i in range(200)]
    script = [answer.status_code for answer in answers]
    assert script.count(429) >= 190, script
    assert set(script) == {401, 429}
    # nginx's own 429 says when to try again, as every 429 and 503 of the suite does: one request per 3 s at 20r/m
    limited = [answer for answer in answers if answer.status_code == 429]
    assert {answer.headers.get("retry-after") for answer in limited} == {str(retry_after(GatewayConfig.login_rate))}
    assert all("try again in 3 s" in answer.text for answer in limited)
    # Only POSTs count: the login page itself still loads for that address.
    assert httpx.get(f"{default_gateway}/login").status_code == 200


def test_secure_cookies_when_configured_for_tls(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    process, url = run_gateway(sqlite_suite, tmp_path, secure_cookies=True)
    try:
        with httpx.Client(base_url=url, follow_redirects=False) as http:
            cookie = login(http, "admin@test.com", "admin").headers["set-cookie"]
        assert "; Secure" in cookie and "HttpOnly" in cookie
    finally:
        process.terminate()
        process.wait(timeout=10)
