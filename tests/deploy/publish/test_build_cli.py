"""`k8sdeploy build` end to end: a fresh clone builds, pushes and prints six tag@digest references;
run again it uploads nothing; every failure is one clear line, a non-zero exit and no version tag."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from deploy.model.errors import ExitCode
from deploy.model.images import IMAGE_NAMES, BuildRecord
from tests.deploy.conftest import FAULT_SEEDS, BuiltSuite, clone
from tests.fakes.tcp_proxy import TcpFaultProxy
from tests.helpers import k8sdeploy
from tests.infra import free_port_block
from tests.registries import Registry


def write_config(path: Path, registry: str, bases: dict[str, str]) -> Path:
    """A k8sdeploy.toml with one environment, `ci`."""
    lines = [
        "[environments.ci]",
        "kubeconfig = {}",
        f"registry = {json.dumps(registry)}",
        "[environments.ci.bases]",
        *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in bases.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def checkout(tmp_path: Path, source_repo: Path) -> Path:
    return clone(source_repo, tmp_path / "fresh-clone")


def test_build_pushes_six_prints_their_references_and_a_rerun_uploads_nothing(
    tmp_path: Path, checkout: Path, fresh_registry: Registry, suite_build: BuiltSuite
) -> None:
    record_path = tmp_path / "record.json"
    args = ["--registry", f"{fresh_registry.host}/suite", "--source", str(checkout), "--record", str(record_path)]
    first = k8sdeploy("build", *args, catch_exceptions=False)
    assert first.exit_code == 0, first.stderr
    refs = first.stdout.splitlines()
    assert refs == [f"{fresh_registry.host}/suite/{image.name}:1.0.0@{image.digest}" for image in suite_build.images]
    record = BuildRecord.load(record_path)
    assert record.version == "1.0.0" and [record.images[name].ref for name in IMAGE_NAMES] == refs
    assert record.images["person"].size == suite_build.image("person").size
    again = k8sdeploy("build", *args, catch_exceptions=False)
    assert again.exit_code == 0 and again.stdout.splitlines() == refs
    assert again.stderr.count("already published with this digest; nothing to push") == 6
    assert "pushed" not in again.stderr


def test_an_unreachable_registry_is_one_clear_error(checkout: Path) -> None:
    """Tried for $K8SDEPLOY_RETRY_SECONDS (5 here: the 60 s default is the same path, waited longer)."""
    registry = f"127.0.0.1:{free_port_block(1)}/suite"
    environ = {"K8SDEPLOY_RETRY_SECONDS": "5"}
    result = k8sdeploy("build", "--registry", registry, "--source", str(checkout), environ=environ)
    assert result.exit_code == ExitCode.BUILD
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot reach registry" in errors[0] and "retried for 5 s" in errors[0]
    assert result.stdout == ""


def test_a_retry_time_that_is_not_a_number_is_a_usage_error(checkout: Path) -> None:
    environ = {"K8SDEPLOY_RETRY_SECONDS": "soon"}
    result = k8sdeploy("build", "--registry", "127.0.0.1:1/suite", "--source", str(checkout), environ=environ)
    assert result.exit_code == ExitCode.USAGE
    assert "K8SDEPLOY_RETRY_SECONDS='soon' is not a number of seconds" in result.stderr


def test_a_malformed_registry_address_is_a_usage_error(checkout: Path) -> None:
    result = k8sdeploy("build", "--registry", "not a registry/x", "--source", str(checkout), catch_exceptions=False)
    assert result.exit_code == ExitCode.USAGE
    assert "is not a registry address" in result.stderr


def test_wrong_credentials_are_one_clear_error_and_nothing_is_tagged(
    tmp_path: Path, checkout: Path, auth_registry: Registry
) -> None:
    auth = base64.b64encode(b"ci:wrong").decode()
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": auth}}}))
    result = k8sdeploy(
        "build",
        "--registry",
        f"{auth_registry.host}/suite",
        "--source",
        str(checkout),
        environ={"DOCKER_CONFIG": str(tmp_path / "docker")},
        catch_exceptions=False,
    )
    assert result.exit_code == ExitCode.BUILD
    assert "refused the credentials" in result.stderr and "docker login" in result.stderr
    assert all(auth_registry.tags(f"suite/{name}") == [] for name in IMAGE_NAMES)


def test_a_missing_base_image_is_one_clear_error(tmp_path: Path, checkout: Path, fresh_registry: Registry) -> None:
    missing = f"{fresh_registry.host}/bases/python@sha256:{'0' * 64}"
    config = write_config(
        tmp_path / "k8sdeploy.toml", registry=f"{fresh_registry.host}/suite", bases={"python": missing}
    )
    result = k8sdeploy("build", "--source", str(checkout), env="ci", config=config, catch_exceptions=False)
    assert result.exit_code == ExitCode.BUILD
    assert f"base image {missing} is not in its registry" in result.stderr
    assert all(fresh_registry.tags(f"suite/{name}") == [] for name in IMAGE_NAMES)


def test_a_dirty_checkout_goes_only_to_a_local_registry_unless_allowed(
    tmp_path: Path, checkout: Path, fresh_registry: Registry
) -> None:
    (checkout / "notes.txt").write_text("work in progress\n")
    remote = k8sdeploy(
        "build", "--registry", "registry.example.org/suite", "--source", str(checkout), catch_exceptions=False
    )
    assert remote.exit_code == ExitCode.USAGE
    assert "uncommitted changes" in remote.stderr and "--allow-dirty" in remote.stderr
    local = k8sdeploy(
        "build",
        "--registry",
        f"{fresh_registry.host}/suite",
        "--source",
        str(checkout),
        "--record",
        str(tmp_path / "r.json"),
        catch_exceptions=False,
    )
    assert local.exit_code == 0, local.stderr
    assert local.stdout.splitlines()[0].split(":")[2].startswith("1.0.0-dirty-")


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_build_publishes_the_same_six_digests_through_refused_and_cut_connections(
    tmp_path: Path, checkout: Path, fresh_registry: Registry, suite_build: BuiltSuite, seed: int
) -> None:
    """A TCP proxy in front of the registry refuses 20% of connections and cuts 30% at a random byte of either
    direction: `build` still publishes the six images, with the digests a build without faults has."""
    with TcpFaultProxy(fresh_registry.host, refuse=0.2, cut=0.3, seed=seed) as proxy:
        result = k8sdeploy("build", "--registry", f"{proxy.address}/suite", "--source", str(checkout))
    assert result.exit_code == 0, result.stderr
    assert [line.rpartition("@")[2] for line in result.stdout.splitlines()] == [
        image.digest for image in suite_build.images
    ]
    for image in suite_build.images:
        assert fresh_registry.digest(f"suite/{image.name}", "1.0.0") == image.digest
    assert proxy.counts["connections"] >= 2, proxy.counts  # through the proxy (faults: -s prints them)
    print(f"seed {seed}: {proxy.counts}")
