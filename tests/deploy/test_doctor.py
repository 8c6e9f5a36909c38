"""The environment's own checks (deploy/doctor.py): the TLS certificate given or found and the names it covers, the
verify and signing keys, the pinned bases; each a finding with its fix, and `up` stopped by a failing one before it
builds anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.attest.keys import generate, write_pair
from deploy.doctor import key_findings, own_findings, tls_findings
from deploy.model.environments import Environment, Gke, Verify
from deploy.tls import TlsMaterial, certificate
from tests.certificates import certificate as make_certificate

ROOT = Path(__file__).resolve().parents[2]


def environment(**settings: object) -> Environment:
    base: dict = {
        "name": "staging",
        "target": "gke",
        "service_type": "LoadBalancer",
        "gke": Gke(project="my-project", location="europe-west1-b", cluster="ms-auth", default_node_account=True),
    }
    return Environment(**(base | settings))


def pem_pair(tmp_path: Path, name: str) -> dict[str, str]:
    made = make_certificate(tmp_path / name, dns_name=name)
    return {"K8SDEPLOY_TLS_CERT": (made / "tls.crt").read_text(), "K8SDEPLOY_TLS_KEY": (made / "tls.key").read_text()}


def test_a_given_certificate_that_covers_the_hosts_passes(tmp_path: Path) -> None:
    env = environment(tls_secret="auth-tls", hosts=("auth.test",))
    (found,) = tls_findings(env, pem_pair(tmp_path, "auth.test"), read=None)
    assert found.ok and "auth.test" in found.message


def test_a_certificate_for_another_name_is_named_with_the_host_it_lacks(tmp_path: Path) -> None:
    env = environment(tls_secret="auth-tls", hosts=("auth.test",))
    (found,) = tls_findings(env, pem_pair(tmp_path, "other.test"), read=None)
    assert not found.ok
    assert "other.test" in found.message and "does not name auth.test" in found.message


def test_an_expired_certificate_is_named(tmp_path: Path) -> None:
    made = make_certificate(tmp_path / "old", dns_name="auth.test", expired=True)
    given = {"K8SDEPLOY_TLS_CERT": (made / "tls.crt").read_text(), "K8SDEPLOY_TLS_KEY": (made / "tls.key").read_text()}
    (found,) = tls_findings(environment(tls_secret="auth-tls", hosts=("auth.test",)), given, read=None)
    assert not found.ok and "it expired on" in found.message


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    env = environment(tls_secret="auth-tls")
    given = pem_pair(tmp_path, "auth.test") | {"K8SDEPLOY_TLS_KEY": pem_pair(tmp_path, "x.test")["K8SDEPLOY_TLS_KEY"]}
    (found,) = tls_findings(env, given, read=None)
    assert not found.ok and "not the key of the certificate" in found.message


def test_half_of_the_material_is_an_error_that_names_the_other_half(tmp_path: Path) -> None:
    env = environment(tls_secret="auth-tls")
    (found,) = tls_findings(env, {"K8SDEPLOY_TLS_CERT": pem_pair(tmp_path, "a.test")["K8SDEPLOY_TLS_CERT"]}, None)
    assert not found.ok and "$K8SDEPLOY_TLS_KEY is not" in found.message


def test_without_the_material_the_secret_must_be_there(tmp_path: Path) -> None:
    env = environment(tls_secret="auth-tls", hosts=("auth.test",))
    (absent,) = tls_findings(env, {}, read=lambda name: None)
    assert not absent.ok and "no kubernetes.io/tls Secret auth-tls" in absent.message
    assert "K8SDEPLOY_TLS_CERT" in absent.fix
    pem = (make_certificate(tmp_path / "c", dns_name="auth.test") / "tls.crt").read_bytes()
    (there,) = tls_findings(env, {}, read={"auth-tls": pem}.get)
    assert there.ok and "Secret auth-tls" in there.message


def test_no_tls_secret_no_tls_check() -> None:
    assert tls_findings(environment(allow_plain_http=True), {}, read=None) == []


def test_a_wildcard_covers_one_label_only(tmp_path: Path) -> None:
    found = certificate((make_certificate(tmp_path, dns_name="*.example.org") / "tls.crt").read_bytes(), "t")
    assert found.covers("auth.example.org") and found.covers("AUTH.example.org")
    assert not found.covers("example.org") and not found.covers("a.b.example.org")


def test_an_address_is_covered_by_an_ip_entry_only(tmp_path: Path) -> None:
    found = certificate((make_certificate(tmp_path) / "tls.crt").read_bytes(), "t")
    assert found.covers("127.0.0.1") and not found.covers("localhost")


def test_the_example_verify_keys_are_placeholders() -> None:
    for name in ("staging.pub", "production.pub"):
        env = environment(registry="r.example/suite", verify=Verify(key=str(ROOT / name)))
        (found,) = key_findings(env, {}, "up")
        assert not found.ok and "placeholder" in found.message and "k8sdeploy keygen" in found.fix


def keys(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return write_pair(generate(), directory / "ci")


@pytest.mark.parametrize("purpose", ["up", "promote"])
def test_deploying_needs_the_private_half_of_the_verify_key(tmp_path: Path, purpose: str) -> None:
    private, public = keys(tmp_path)
    env = environment(registry="r.example/suite", verify=Verify(key=str(public)))
    (without,) = key_findings(env, {}, purpose)
    assert not without.ok and "no signing key" in without.message
    (other,) = key_findings(env, {"K8SDEPLOY_SIGNING_KEY": keys(tmp_path / "o")[0].read_text()}, purpose)
    assert not other.ok and "not the private half" in other.message
    (right,) = key_findings(env, {"K8SDEPLOY_SIGNING_KEY": private.read_text()}, purpose)
    assert right.ok


def test_a_preview_signs_nothing(tmp_path: Path) -> None:
    env = environment(registry="r.example/suite", verify=Verify(key=str(keys(tmp_path)[1])))
    (found,) = key_findings(env, {}, "diff")
    assert found.ok


def test_placeholder_bases_are_named() -> None:
    zeros = "0" * 63
    env = environment(bases={"python": f"r.example/bases/python@sha256:{zeros}1"})
    (found, *_) = own_findings(env, {}, "up", None)
    assert (found.check, found.ok) == ("bases", False) and "python" in found.message
    assert "k8sdeploy bases --registry" in found.fix


def test_the_tls_material_becomes_the_environments_secret(tmp_path: Path) -> None:
    given = pem_pair(tmp_path, "auth.test")
    material = TlsMaterial.from_environ(given)
    assert material is not None
    secret = material.secret("auth-tls", "ns", {"app.kubernetes.io/instance": "staging"})
    assert (secret["type"], secret["metadata"]["name"], sorted(secret["data"])) == (
        "kubernetes.io/tls",
        "auth-tls",
        ["tls.crt", "tls.key"],
    )
