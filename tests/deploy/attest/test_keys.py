"""Signing keys: `k8sdeploy keygen` writes a pair (the private key 0600, never printed, never overwritten), a key
comes from --key, $K8SDEPLOY_SIGNING_KEY or the environment's signing_key, and anything else is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.attest.keys import KEY_VARIABLE, load_public_key, signing_key
from deploy.model.environments import load_environment
from deploy.model.errors import ConfigError
from tests.helpers import k8sdeploy


def test_keygen_writes_a_pair_once_and_prints_no_private_key(tmp_path: Path) -> None:
    made = k8sdeploy("keygen", "--prefix", str(tmp_path / "release"))
    assert made.exit_code == 0, made.stderr
    private, public = tmp_path / "release.key", tmp_path / "release.pub"
    assert made.stdout.strip() == str(public) and "PRIVATE" not in made.stdout + made.stderr
    assert private.stat().st_mode & 0o777 == 0o600 and private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    key = signing_key(private, environ={})
    assert key is not None and load_public_key(public).verifies(key.sign(b"data"), b"data")
    assert "PRIVATE" not in repr(key) and "BEGIN" not in repr(key)
    again = k8sdeploy("keygen", "--prefix", str(tmp_path / "release"))
    assert again.exit_code == 2 and f"error: {private} exists" in again.stderr


def test_the_key_comes_from_the_option_then_the_variable_then_the_environment(tmp_path: Path) -> None:
    for name in ("option", "variable", "configured"):
        assert k8sdeploy("keygen", "--prefix", str(tmp_path / name)).exit_code == 0
    pem = (tmp_path / "variable.key").read_text()

    def chosen(path: Path | None, environ: dict[str, str]) -> bytes:
        key = signing_key(path, str(tmp_path / "configured.key"), environ)
        assert key is not None
        return key.public.pem

    public = {name: (tmp_path / f"{name}.pub").read_bytes() for name in ("option", "variable", "configured")}
    assert chosen(tmp_path / "option.key", {KEY_VARIABLE: pem}) == public["option"]
    assert chosen(None, {KEY_VARIABLE: pem}) == public["variable"]
    assert chosen(None, {}) == public["configured"]
    assert signing_key(None, "", {}) is None


@pytest.mark.parametrize("text", ["not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_a_variable_that_is_no_key_is_named_without_its_contents(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        signing_key(None, environ={KEY_VARIABLE: text})
    assert refused.value.message == f"${KEY_VARIABLE} is not an unencrypted ECDSA P-256 private key in PEM"


def test_verify_and_signing_key_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "k8sdeploy.toml"
    config.parent.mkdir()
    config.write_text(
        '[environments.e]\ntarget = "local"\nregistry = "127.0.0.1:5000/suite"\nsigning_key = "keys/ci.key"\n'
        'verify = { key = "keys/ci.pub" }\n[environments.bare]\ntarget = "local"\nverify = { key = "ci.pub" }\n'
    )
    environment = load_environment("e", config)
    assert environment.signing_key == str(tmp_path / "conf/keys/ci.key")
    assert environment.verify is not None and environment.verify.key == str(tmp_path / "conf/keys/ci.pub")
    with pytest.raises(ConfigError) as refused:
        load_environment("bare", config)
    assert "verify needs a registry" in refused.value.message
