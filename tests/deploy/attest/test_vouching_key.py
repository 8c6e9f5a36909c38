"""Whose signatures on a source's SBOM and provenance `promote` trusts enough to sign them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.attest.keys import KEY_VARIABLE, PASSWORD_VARIABLE, PublicKey, load_public_key
from deploy.attest.promotion import vouching_key
from deploy.model.environments import Environment, Verify
from tests.helpers import k8sdeploy


def found(key: PublicKey | None) -> bytes:
    assert key is not None
    return key.pem


def test_the_verify_key_then_the_signing_keys_public_half_then_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    for name in ("verify", "signing"):
        assert k8sdeploy("keygen", "--prefix", str(tmp_path / name)).exit_code == 0
    both = Environment(
        name="stage",
        target="local",
        registry="127.0.0.1:5000/suite",
        verify=Verify(key=str(tmp_path / "verify.pub")),
        signing_key=str(tmp_path / "signing.key"),
    )
    assert found(vouching_key(both)) == load_public_key(tmp_path / "verify.pub").pem
    signing_only = Environment(name="stage", target="local", signing_key=str(tmp_path / "signing.key"))
    assert found(vouching_key(signing_only)) == load_public_key(tmp_path / "signing.pub").pem
    assert vouching_key(Environment(name="stage", target="local")) is None
    missing = Environment(name="stage", target="local", signing_key=str(tmp_path / "nowhere.key"))
    assert vouching_key(missing) is None
