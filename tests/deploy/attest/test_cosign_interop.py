"""`k8sdeploy build --key` signs the six images and attaches their SBOM and provenance in cosign's format, in a real
registry on loopback; the reference verifier, cosign built from its Go module, accepts them offline (no
transparency log) and refuses another key's; the SBOMs are valid SPDX 2.3 (spdx-tools) and list what the images
hold; a rebuild with nothing changed signs nothing again."""

from __future__ import annotations

import base64
import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.attest.contents import locked_hashes
from deploy.model.images import IMAGE_NAMES
from deploy.registry.client import MANIFEST_TYPES
from tests.deploy.conftest import clone, cosign_run
from tests.helpers import k8sdeploy, valid
from tests.registries import ProxyRules, Registry, registry_proxy, registry_server

ENV = "signing-test"
SERVICES = [name for name in IMAGE_NAMES if name != "nginx-lua"]


def manifest(registry: Registry, repository: str, reference: str) -> dict:
    answer = httpx.get(
        f"http://{registry.host}/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
    )
    answer.raise_for_status()
    return answer.json()


def blob(registry: Registry, repository: str, digest: str) -> bytes:
    answer = httpx.get(f"http://{registry.host}/v2/{repository}/blobs/{digest}", follow_redirects=True)
    answer.raise_for_status()
    return answer.content


def statements(registry: Registry, repository: str, digest: str) -> dict[str, dict]:
    """predicate type -> the in-toto statement of each layer of the image's .att manifest."""
    found = {}
    for layer in manifest(registry, repository, digest.replace(":", "-") + ".att")["layers"]:
        envelope = json.loads(blob(registry, repository, layer["digest"]))
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert layer["annotations"]["predicateType"] == statement["predicateType"]
        found[statement["predicateType"]] = statement
    return found


def build_signed(registry: Registry, work: Path, checkout: Path, config: Path) -> dict:
    """`k8sdeploy build --key cosign.key --output json`, writing its record to work/record.json; its document."""
    built = k8sdeploy(
        "build",
        *("--registry", f"{registry.host}/suite", "--key", str(work / "cosign.key"), "--source", str(checkout)),
        *("--record", str(work / "record.json"), "--output", "json"),
        env=ENV,
        config=config,
    )
    assert built.exit_code == 0, built.stderr
    return valid(built.stdout) | {"stderr": built.stderr}


@dataclass(frozen=True)
class Signed:
    registry: Registry
    work: Path  # cosign.key, cosign.pub
    checkout: Path
    config: Path
    document: dict  # what `build --output json` printed


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory, source_repo: Path) -> Iterator[Signed]:
    """A registry, a key pair from `k8sdeploy keygen`, and `build --key` of a clone of the source repository."""
    work = tmp_path_factory.mktemp("signing")
    config = work / "k8sdeploy.toml"
    config.write_text(f"[environments.{ENV}]\nlocal = {{}}\n")
    keys = k8sdeploy("keygen", "--prefix", str(work / "cosign"))
    assert keys.exit_code == 0, keys.stderr
    assert "PRIVATE KEY" not in keys.stdout + keys.stderr and (work / "cosign.key").stat().st_mode & 0o077 == 0
    checkout = clone(source_repo, work / "checkout")
    with registry_server(work / "registry") as registry:
        yield Signed(registry, work, checkout, config, build_signed(registry, work, checkout, config))


@pytest.mark.timeout(1800)
def test_cosign_verifies_each_signature_and_attestation_and_refuses_another_key(signing: Signed, cosign: Path) -> None:
    work, document = signing.work, signing.document
    assert set(document["attached"]) == set(IMAGE_NAMES)
    other = k8sdeploy("keygen", "--prefix", str(work / "other"))
    assert other.exit_code == 0, other.stderr
    for name in IMAGE_NAMES:
        image = document["images"][name]
        reference = f"{image['repository']}@{image['digest']}"
        hexdigest = image["digest"].removeprefix("sha256:")
        assert document["attached"][name]["signature"] == f"{image['repository']}:sha256-{hexdigest}.sig"
        verified = cosign_run(cosign, "verify", "--key", str(work / "cosign.pub"), reference)
        assert verified.returncode == 0, verified.stderr
        assert "The signatures were verified against the specified public key" in verified.stderr
        [claim] = json.loads(verified.stdout)
        assert claim["critical"]["image"]["docker-manifest-digest"] == image["digest"]
        for kind in ("spdxjson", "slsaprovenance1"):
            attested = cosign_run(
                cosign, "verify-attestation", "--key", str(work / "cosign.pub"), "--type", kind, reference
            )
            assert attested.returncode == 0, (kind, attested.stderr)
        refused = cosign_run(cosign, "verify", "--key", str(work / "other.pub"), reference)
        assert refused.returncode != 0 and "no matching signatures" in refused.stderr, refused.stderr


def dpkg_packages(layer: Path, work: Path) -> set[tuple[str, str]]:
    """The packages of a base layer as dpkg-query itself reads them from its status file."""
    admin = work / "dpkg"
    admin.mkdir(exist_ok=True)
    with tarfile.open(layer, "r:gz") as tar:
        member = tar.getmember("var/lib/dpkg/status")
        (admin / "status").write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    listed = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {tuple(line.split()[1:]) for line in listed.splitlines() if line.startswith("installed ")}  # type: ignore[misc]


def test_the_sboms_are_valid_spdx_and_list_the_locked_packages_and_the_debian_ones(
    signing: Signed, tmp_path: Path
) -> None:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    registry, checkout, document = signing.registry, signing.checkout, signing.document
    locked = {
        (name, version)
        for name, (version, _) in locked_hashes((checkout / "requirements/app.lock").read_text()).items()
    }
    for name in IMAGE_NAMES:
        image = document["images"][name]
        repository = image["repository"].split("/", 1)[1]
        found = statements(registry, repository, image["digest"])
        sbom = found["https://spdx.dev/Document"]["predicate"]
        path = tmp_path / f"{name}.spdx.json"
        path.write_text(json.dumps(sbom))
        assert validate_full_spdx_document(parse_file(str(path))) == []
        purls = [ref["referenceLocator"] for package in sbom["packages"] for ref in package.get("externalRefs", [])]
        pypi = {tuple(purl.removeprefix("pkg:pypi/").split("@")) for purl in purls if purl.startswith("pkg:pypi/")}
        assert pypi == (locked if name in SERVICES else set()), name
        debian = {
            (package["name"], package["versionInfo"])
            for package in sbom["packages"]
            if any(ref["referenceLocator"].startswith("pkg:deb/debian/") for ref in package.get("externalRefs", []))
        }
        base = manifest(registry, repository, image["digest"])["layers"][0]["digest"]
        layer = tmp_path / "base.tar.gz"
        layer.write_bytes(blob(registry, repository, base))
        assert debian == dpkg_packages(layer, tmp_path), name
        assert ("python3" if name in SERVICES else "nginx-light") in {package for package, _ in debian}
        application = [package for package in sbom["packages"] if package["SPDXID"].startswith("SPDXRef-application")]
        assert [package["versionInfo"] for package in application] == [document["commit"]]
        provenance = found["https://slsa.dev/provenance/v1"]
        assert {subject["digest"]["sha256"] for subject in provenance["subject"]} == {
            document["images"][other]["digest"].removeprefix("sha256:") for other in IMAGE_NAMES
        }
        dependencies = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
        assert dependencies[0]["digest"] == {"gitCommit": document["commit"]}
        assert {"uri": "requirements/app.lock", "name": "lock"}.items() <= dependencies[-1].items()


def test_a_rebuild_with_nothing_changed_signs_and_attests_nothing_again(signing: Signed) -> None:
    registry, work, checkout, config, document = (
        signing.registry,
        signing.work,
        signing.checkout,
        signing.config,
        signing.document,
    )

    def attachments() -> dict[str, tuple[list[str], dict, dict]]:
        return {
            name: (
                registry.tags(f"suite/{name}"),
                manifest(registry, f"suite/{name}", document["images"][name]["digest"].replace(":", "-") + ".sig"),
                manifest(registry, f"suite/{name}", document["images"][name]["digest"].replace(":", "-") + ".att"),
            )
            for name in IMAGE_NAMES
        }

    before = attachments()
    again = build_signed(registry, work, checkout, config)
    assert again["attached"] == document["attached"]
    assert again["stderr"].count("already signed with this key") == len(IMAGE_NAMES)
    assert "attested" not in again["stderr"]
    assert attachments() == before


def test_k8sdeploy_verify_accepts_the_key_and_names_each_image_another_key_did_not_sign(signing: Signed) -> None:
    work = signing.work
    for key in ("cosign", "stranger"):
        if key == "stranger":
            assert k8sdeploy("keygen", "--prefix", str(work / key)).exit_code == 0
        config = work / f"verify-{key}.toml"
        config.write_text(
            f'[environments.{ENV}]\nlocal = {{}}\nregistry = "{signing.registry.host}/suite"\n'
            f'verify = {{ key = "{key}.pub" }}\n'
        )
        checked = k8sdeploy("verify", "--build-record", str(work / "record.json"), env=ENV, config=config)
        if key == "cosign":
            assert checked.exit_code == 0, checked.stderr
            assert len(checked.stdout.splitlines()) == len(IMAGE_NAMES) and "all 6 images verified" in checked.stderr
        else:
            assert checked.exit_code == 10, checked.stderr
            for name in IMAGE_NAMES:
                assert f"{name} is signed, but not by the key of {work / 'stranger.pub'}" in checked.stderr


def test_where_the_registry_answers_referrers_the_signatures_name_their_image_as_subject(
    signing: Signed, cosign: Path
) -> None:
    """Debian's registry serves no referrers API; a proxy in front of it answers the probe as an OCI 1.1 registry
    would (an empty index), so the manifests pushed through it carry the image as `subject`."""
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})

    def referrers(method: str, path: str, _body: bytes, _upstream: str) -> tuple[int, bytes] | None:
        return (200, index.encode()) if method == "GET" and "/referrers/" in path else None

    registry, work, document = signing.registry, signing.work, signing.document
    name, image = "person", document["images"]["person"]
    assert "subject" not in manifest(registry, "suite/person", image["digest"].replace(":", "-") + ".sig")
    assert k8sdeploy("keygen", "--prefix", str(work / "referrers")).exit_code == 0
    with registry_proxy(registry.host, ProxyRules(gate=referrers)) as proxy:
        built = k8sdeploy(
            *("build", "--registry", f"{proxy}/suite", "--key", str(work / "referrers.key")),
            *("--source", str(signing.checkout), "--output", "json"),
            env=ENV,
            config=signing.config,
        )
    assert built.exit_code == 0, built.stderr
    assert f"{name}: signed {image['digest'][:19]} (listed as a referrer)" in built.stderr
    for suffix in ("sig", "att"):
        found = manifest(registry, "suite/person", image["digest"].replace(":", "-") + "." + suffix)
        assert found["subject"]["digest"] == image["digest"], suffix
    signatures = manifest(registry, "suite/person", image["digest"].replace(":", "-") + ".sig")["layers"]
    assert len(signatures) == 2  # the first key's signature is kept, the new one added
    for key in ("cosign", "referrers"):  # cosign reads both, the subject notwithstanding
        reference = f"{image['repository']}@{image['digest']}"
        checked = cosign_run(cosign, "verify", "--key", str(work / f"{key}.pub"), reference)
        assert checked.returncode == 0, checked.stderr


def copy_manifest(registry: Registry, source: tuple[str, str], target: tuple[str, str]) -> None:
    """The manifest (repository, tag) `source` with its blobs, put under (repository, tag) `target`."""
    found = manifest(registry, *source)
    for descriptor in (found["config"], *found["layers"]):
        started = httpx.post(f"http://{registry.host}/v2/{target[0]}/blobs/uploads/")
        location = httpx.URL(f"http://{registry.host}").join(started.headers["location"])
        data = blob(registry, source[0], descriptor["digest"])
        httpx.put(location.copy_merge_params({"digest": descriptor["digest"]}), content=data).raise_for_status()
    httpx.put(
        f"http://{registry.host}/v2/{target[0]}/manifests/{target[1]}",
        content=json.dumps(found),
        headers={"Content-Type": found["mediaType"]},
    ).raise_for_status()


def test_an_image_whose_attestations_are_about_another_image_is_refused(signing: Signed) -> None:
    """person's .att put under authentication's tag: its SBOM names person only, so authentication has none (the
    build's provenance names all six, so it still counts)."""
    document, work = signing.document, signing.work
    tags = {
        name: document["images"][name]["digest"].replace(":", "-") + ".att" for name in ("person", "authentication")
    }
    copy_manifest(signing.registry, ("suite/person", tags["person"]), ("suite/authentication", tags["authentication"]))
    config = work / "verify-cosign.toml"
    checked = k8sdeploy("verify", "--build-record", str(work / "record.json"), env=ENV, config=config)
    assert checked.exit_code == 10, checked.stderr
    assert checked.stderr.startswith(
        "error: refusing to deploy: authentication has no SPDX SBOM attestation signed by that key; "
    )
