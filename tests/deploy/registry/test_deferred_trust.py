"""The registry HTTP client's TLS context loads what it trusts on its first TLS connection, and then checks
servers as httpx's default would: by SSL_CERT_FILE when set, else certifi's bundle."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from deploy.clients import Clients, DeferredTrust
from tests.certificates import certificate
from tests.fakes.server import serve


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server on loopback with a self-signed certificate for 127.0.0.1, and that certificate's file."""
    directory = certificate(tmp_path / "tls")
    cert = directory / "tls.crt"
    httpd = serve(Hello, (str(cert), str(directory / "tls.key")))
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}/", cert
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def trusted(https: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's URL, its certificate the one SSL_CERT_FILE names."""
    url, cert = https
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return url


def test_nothing_is_loaded_until_the_first_tls_connection(trusted: str) -> None:
    url = trusted
    context = DeferredTrust()
    assert context.cert_store_stats()["x509_ca"] == 0
    with httpx.Client(verify=context) as client:
        assert client.get(url).text == "hello"
    assert context.cert_store_stats()["x509_ca"] == 1  # the one certificate SSL_CERT_FILE names


def test_an_untrusted_certificate_is_refused_as_with_httpxs_default(
    https: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = https
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for verify in (DeferredTrust(), True):
        with (
            httpx.Client(verify=verify) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.get(url)


def test_the_clients_http_trusts_by_the_deferred_context(trusted: str) -> None:
    clients = Clients()
    try:
        assert clients.http.get(trusted).text == "hello"
    finally:
        clients.close()
