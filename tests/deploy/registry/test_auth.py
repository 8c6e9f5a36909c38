"""Where registry credentials come from: docker's config.json, its credential helpers, or google-auth."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from deploy.model.errors import ConfigError
from deploy.registry.auth import DockerConfigCredentials, GoogleCredentials, credentials_for
from deploy.registry.client import RegistryAddress


def test_inline_auths_entry_matches_with_or_without_scheme(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    token = base64.b64encode(b"ci:pa:ss").decode()
    config.write_text(json.dumps({"auths": {"https://registry.example.org/v2/": {"auth": token}}}))
    assert DockerConfigCredentials("registry.example.org", config).get() == ("ci", "pa:ss")
    assert DockerConfigCredentials("other.example.org", config).get() is None
    assert DockerConfigCredentials("x", tmp_path / "missing.json").get() is None


def test_a_credential_helper_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-k8sdeploy-test"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\necho "{\\"Username\\": \\"u-$host\\", \\"Secret\\": \\"s\\"}"\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {"registry.example.org": "k8sdeploy-test"}}))
    assert DockerConfigCredentials("registry.example.org", config).get() == ("u-registry.example.org", "s")


@pytest.mark.parametrize("host", ["europe-west1-docker.pkg.dev", "gcr.io", "eu.gcr.io"])
def test_google_registries_use_google_auth(host: str) -> None:
    assert isinstance(credentials_for(host), GoogleCredentials)
    assert credentials_for("127.0.0.1:5000").describe().startswith("the credentials for 127.0.0.1:5000")


@pytest.mark.parametrize(
    "text,host,path,loopback",
    [
        ("127.0.0.1:5000/suite", "127.0.0.1:5000", "suite", True),
        ("localhost:5000", "localhost:5000", "", True),
        ("europe-west1-docker.pkg.dev/proj/repo", "europe-west1-docker.pkg.dev", "proj/repo", False),
    ],
)
def test_registry_addresses(text: str, host: str, path: str, loopback: bool) -> None:
    address = RegistryAddress.parse(text)
    assert (address.host, address.path, address.is_loopback) == (host, path, loopback)
    assert address.repository("person") == f"{path}/person".lstrip("/")


@pytest.mark.parametrize("text", ["", "not a host/x", "127.0.0.1:5000/Upper", "host/a//b"])
def test_bad_registry_addresses(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a registry address"):
        RegistryAddress.parse(text)
