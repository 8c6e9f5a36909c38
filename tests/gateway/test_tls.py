"""HTTPS at the gateway: the real nginx, with a certificate made here (cryptography), in front of the real
services. Plain HTTP only redirects (the probes stay on it), the session cookie is Secure, and HSTS is sent. The
smoke test asks a gateway whose certificate names only `auth.test` for that name, at its address (TLS by name),
and names a certificate it refuses."""

from __future__ import annotations

import signal
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from deploy.loopback import LocalSuite, nginx_command
from deploy.model.errors import ExitCode
from deploy.smoke import CertificateRejected, HttpSmoke
from tests.certificates import certificate
from tests.helpers import k8sdeploy
from tests.infra import free_port_block, wait_for_port


@contextmanager
def serving_tls(suite: LocalSuite, work: Path, dns_name: str = "", **overrides) -> Iterator[tuple[str, str, Path]]:
    """A second gateway in front of `suite`'s services: HTTP on one port, HTTPS on the next, with a self-signed
    certificate for 127.0.0.1 or for `dns_name` only; its URLs and its certificate (the CA to trust)."""
    tls_dir = certificate(work / "tls", dns_name)
    http_port = free_port_block(2)
    config = suite.gateway_config(
        listen=f"127.0.0.1:{http_port}",
        tls_listen=f"127.0.0.1:{http_port + 1}",
        tls_dir=str(tls_dir),
        https_port=http_port + 1,
        runtime_dir=str(work / "nginx"),
        **overrides,
    )
    log = (work / "nginx.log").open("wb")
    process = subprocess.Popen(nginx_command(config, suite.settings.nginx), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(http_port + 1)
        yield f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{http_port + 1}", tls_dir / "tls.crt"
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def tls_gateway(sqlite_suite: LocalSuite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    with serving_tls(sqlite_suite, tmp_path_factory.mktemp("tls-gateway")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def named_gateway(sqlite_suite: LocalSuite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A gateway as a load balancer's address reaches it: serving only the Host `auth.test` (a request for its
    address is closed unanswered), with a certificate whose one name is `auth.test` (no IP SAN)."""
    work = tmp_path_factory.mktemp("named-gateway")
    with serving_tls(sqlite_suite, work, "auth.test", hosts=("auth.test",)) as (_, https, ca):
        yield https, ca


@pytest.fixture
def trusting(named_gateway: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    """The named gateway's HTTPS URL, its certificate trusted as k8sdeploy's clients are told to (SSL_CERT_FILE)."""
    https, ca = named_gateway
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return https


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
        cookies = {c.partition("=")[0]: c for c in answer.headers.get_list("set-cookie")}
        assert set(cookies) == {"__Host-AccessToken", "__Host-LoginDevice"}, cookies  # no unprefixed name
        for cookie in cookies.values():
            assert "; Secure" in cookie and "HttpOnly" in cookie
            assert "Path=/" in cookie and "Domain" not in cookie  # a __Host- cookie: this host only
        assert (
            "SameSite=Strict" in cookies["__Host-LoginDevice"] and "Max-Age=31536000" in cookies["__Host-LoginDevice"]
        )
        assert answer.headers["strict-transport-security"].startswith("max-age=31536000")
        people = client.get("/persons")
        assert people.status_code == 200 and "strict-transport-security" in people.headers


def test_the_smoke_test_asks_the_address_for_the_name_and_verifies_it(trusting: str) -> None:
    report = HttpSmoke(host="auth.test").run(trusting)
    assert report.url == trusting and "logged out; the old cookie is refused" in report.checks


@pytest.mark.parametrize("reach_timeout", [0, 600])
def test_a_certificate_for_another_name_is_named_at_once(trusting: str, reach_timeout: float) -> None:
    """Not "did not answer", and not after the whole wait: with a wait (up's), the short grace for a rollout's
    last old pods; without one (`k8sdeploy smoke`), at once."""
    smoke = HttpSmoke(host="other.example", reach_timeout=reach_timeout, certificate_grace=1.0)
    with pytest.raises(CertificateRejected) as refused:
        smoke.run(trusting)
    error = refused.value
    assert error.message == f"the gateway at {trusting} answered with a certificate for auth.test, not other.example"
    assert error.hint.startswith("put a certificate for other.example in the environment's tls_secret")
    assert (error.exit_code, error.hop) == (ExitCode.SMOKE, "gateway")


def test_without_hosts_the_address_is_asked_for_and_the_hint_names_the_certificates_name(trusting: str) -> None:
    with pytest.raises(CertificateRejected) as refused:
        HttpSmoke().run(trusting)
    message = f"the gateway at {trusting} answered with a certificate for auth.test, not 127.0.0.1"
    assert refused.value.message == message
    assert refused.value.hint.startswith('set hosts = ["auth.test"] for the environment')


@pytest.mark.parametrize(("name", "also"), [("auth.test", ""), ("other.example", ", and not for other.example")])
def test_a_certificate_no_trusted_ca_signed_is_named_so(
    named_gateway: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, name: str, also: str
) -> None:
    https, _ = named_gateway
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)  # the system's trust store, which has no test CA
    with pytest.raises(CertificateRejected) as refused:
        HttpSmoke(host=name).run(https)
    assert refused.value.message == (
        f"the gateway at {https} answered with a certificate for auth.test that this machine does not trust "
        f"(self-signed certificate){also}"
    )
    assert "SSL_CERT_FILE" in refused.value.hint


@pytest.mark.parametrize(("name", "exit_code"), [("auth.test", 0), ("other.example", 6)])
def test_k8sdeploy_smoke_asks_for_the_environments_first_host(
    trusting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, exit_code: int
) -> None:
    """The acceptance of TLS by name, through the CLI: `hosts = ["auth.test"]` passes, another name fails naming
    the mismatch (exit 6)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(f'[environments.named]\nlocal = {{}}\nhosts = ["{name}", "www.{name}"]\n')
    result = k8sdeploy("smoke", "--url", trusting, env="named", config=config)
    assert result.exit_code == exit_code, result.stderr
    if exit_code:
        mismatch = f"the gateway at {trusting} answered with a certificate for auth.test, not {name}"
        assert f"error: {mismatch}; put a certificate for {name} in the environment's tls_secret" in result.stderr
        assert "did not answer" not in result.stderr
    else:
        assert result.stdout.startswith(f"smoke test passed at {trusting}: ")
