"""The pieces the statements are made of, on their own: dpkg's status file, the lock's hashes, PURLs, the CI run."""

from __future__ import annotations

from types import MappingProxyType

from deploy.attest.contents import DebianPackage, dpkg_status, locked_hashes
from deploy.attest.cosign import signature, signs
from deploy.attest.keys import generate
from deploy.attest.provenance import provenance
from deploy.attest.sbom import debian_package
from deploy.model.images import PublishedImage
from deploy.model.version import Version

STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u7

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: bash
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b7
"""

LOCK = """# made by make lock
fastapi==0.110.0 \\
    --hash=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \\
    --hash=sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    # via -r app.in
Typing_Extensions==4.12.2 \\
    --hash=sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
"""


def test_only_installed_packages_are_listed_from_dpkg_status() -> None:
    assert dpkg_status(STATUS) == (
        DebianPackage("bash", "5.2.15-2+b7", "amd64"),
        DebianPackage("libc6", "2.36-9+deb12u7", "amd64"),
    )


def test_the_lock_gives_each_distribution_its_version_and_hashes_by_normalized_name() -> None:
    assert locked_hashes(LOCK) == {
        "fastapi": ("0.110.0", ("a" * 64, "b" * 64)),
        "typing-extensions": ("4.12.2", ("c" * 64,)),
    }


def test_a_debian_version_with_an_epoch_is_percent_encoded_in_its_purl() -> None:
    package = debian_package(DebianPackage("libgcc-s1", "1:12.2.0-14", "amd64"), 3)
    assert package["externalRefs"][0]["referenceLocator"] == (
        "pkg:deb/debian/libgcc-s1@1%3A12.2.0-14?arch=amd64&distro=debian-12"
    )
    assert package["SPDXID"] == "SPDXRef-deb-3-libgcc-s1"


def test_the_provenance_names_the_github_run_that_built_and_nothing_elsewhere() -> None:
    version = Version("1.0.0", "c" * 40, 0, source="https://github.com/k8sdeploy/k8sdeploy")
    images = MappingProxyType({"person": PublishedImage("127.0.0.1:5000/suite/person", "1.0.0", "sha256:" + "d" * 64)})
    lock = ("requirements/app.lock", "sha256:" + "e" * 64)
    environ = {"GITHUB_RUN_ID": "4242", "GITHUB_REPOSITORY": "k8sdeploy/k8sdeploy", "GITHUB_RUN_ATTEMPT": "2"}
    ci = provenance(version, images, {"debootstrap:python": "sha256:" + "f" * 64}, lock, "oci", environ)
    assert ci["runDetails"]["metadata"] == {
        "invocationId": "https://github.com/k8sdeploy/k8sdeploy/actions/runs/4242/attempts/2"
    }
    assert ci["buildDefinition"]["resolvedDependencies"] == [
        {"uri": "git+https://github.com/k8sdeploy/k8sdeploy", "digest": {"gitCommit": "c" * 40}},
        {"uri": "debootstrap:python", "digest": {"sha256": "f" * 64}, "name": "base"},
        {"uri": "requirements/app.lock", "digest": {"sha256": "e" * 64}, "name": "lock"},
    ]
    assert provenance(version, images, {}, lock, "oci", {})["runDetails"]["metadata"] == {}


def test_a_signature_vouches_only_for_the_repository_it_names() -> None:
    """The simple-signing payload's docker-reference is compared: the same digest's signature, copied from
    another repository, does not make an image there signed."""
    key, digest = generate(), "sha256:" + "ab" * 32
    layer = signature(key, "registry.example.org/suite/person", digest)
    assert signs(layer, key.public, digest, "registry.example.org/suite/person")
    assert not signs(layer, key.public, digest, "registry.example.org/other/person")
    assert not signs(layer, key.public, "sha256:" + "cd" * 32, "registry.example.org/suite/person")
    assert not signs(layer, generate().public, digest, "registry.example.org/suite/person")
