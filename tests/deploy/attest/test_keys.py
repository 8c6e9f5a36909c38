"""Signing keys: `k8sdeploy keygen` writes a pair (the private key 0600, never printed, never overwritten), a key
comes from --key, $K8SDEPLOY_SIGNING_KEY or the environment's signing_key, and anything else is one clear error."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from deploy.attest.keys import KEY_VARIABLE, PASSWORD_VARIABLE, generate, load_public_key, signing_key
from deploy.model.environments import load_environment
from deploy.model.errors import ConfigError
from tests.helpers import k8sdeploy
from tests.infra import ROOT


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
    assert refused.value.message == f"${KEY_VARIABLE} is not an ECDSA P-256 private key in PEM"


def test_verify_and_signing_key_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "k8sdeploy.toml"
    config.parent.mkdir()
    config.write_text(
        '[environments.e]\nlocal = {}\nregistry = "127.0.0.1:5000/suite"\nsigning_key = "keys/ci.key"\n'
        'verify = { key = "keys/ci.pub" }\n[environments.bare]\nlocal = {}\nverify = { key = "ci.pub" }\n'
    )
    environment = load_environment("e", config)
    assert environment.signing_key == str(tmp_path / "conf/keys/ci.key")
    assert environment.verify is not None and environment.verify.key == str(tmp_path / "conf/keys/ci.pub")
    with pytest.raises(ConfigError) as refused:
        load_environment("bare", config)
    assert "verify needs a registry" in refused.value.message


def git_status(repository: Path, *paths: Path) -> list[str]:
    return subprocess.run(
        ["git", "-C", str(repository), "status", "--porcelain", "--", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


def test_keygen_in_the_checkout_leaves_no_key_for_git_to_take() -> None:
    prefix = ROOT / f"keygen-test-{uuid.uuid4().hex[:8]}"
    private, public = prefix.with_suffix(".key"), prefix.with_suffix(".pub")
    try:
        assert k8sdeploy("keygen", "--prefix", str(prefix)).exit_code == 0
        assert private.exists() and git_status(ROOT, private, public) == [f"?? {public.name}"]  # *.key is ignored
    finally:
        private.unlink(missing_ok=True)
        public.unlink(missing_ok=True)


def test_keygen_refuses_a_work_tree_that_would_commit_the_key_unless_told(tmp_path: Path) -> None:
    repository = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    refused = k8sdeploy("keygen", "--prefix", str(repository / "release"))
    assert refused.exit_code == 2 and "would be in a git work tree, not ignored" in refused.stderr
    assert list(repository.iterdir()) == [repository / ".git"]
    told = k8sdeploy("keygen", "--prefix", str(repository / "release"), "--in-work-tree")
    assert told.exit_code == 0 and (repository / "release.key").stat().st_mode & 0o777 == 0o600


def test_an_encrypted_key_signs_with_its_passphrase(tmp_path: Path) -> None:
    made = generate()
    path = tmp_path / "encrypted.key"
    encryption = serialization.BestAvailableEncryption(b"correct horse")
    path.write_bytes(made.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    path.chmod(0o600)
    key = signing_key(path, environ={PASSWORD_VARIABLE: "correct horse"})
    assert key is not None and made.public.verifies(key.sign(b"data"), b"data")
    asked = signing_key(path, environ={}, prompt=lambda _text: "correct horse")
    assert asked is not None and asked.public.pem == made.public.pem
    with pytest.raises(ConfigError, match="encrypted private key and no passphrase was given"):
        signing_key(path, environ={})
    with pytest.raises(ConfigError, match="the passphrase does not open it"):
        signing_key(path, environ={PASSWORD_VARIABLE: "wrong"})


def test_a_key_file_others_may_read_is_warned_about(tmp_path: Path) -> None:
    assert k8sdeploy("keygen", "--prefix", str(tmp_path / "shared")).exit_code == 0
    private, said = tmp_path / "shared.key", []
    assert signing_key(private, environ={}, warn=said.append) is not None and said == []
    private.chmod(0o644)
    assert signing_key(private, environ={}, warn=said.append) is not None
    assert said == [f"warning: {private} may be read by others (mode 644): chmod 600 {private}"]
