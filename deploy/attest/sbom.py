"""An SPDX 2.3 JSON document per image, from what its layers hold: the Python distributions (versions and the
lock's hashes, pkg:pypi PURLs), the base's Debian packages (pkg:deb/debian PURLs), the application as the commit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from deploy import __version__
from deploy.attest.contents import Contents, DebianPackage, Distribution, normalized
from deploy.model.images import PublishedImage
from deploy.model.version import Version

DEBIAN_RELEASE = "debian-12"  # bookworm, what builders/bases.py debootstraps


def spdx_id(*parts: str) -> str:
    return "SPDXRef-" + "-".join(re.sub(r"[^A-Za-z0-9.]+", "-", part).strip("-") for part in parts)


def purl_ref(purl: str) -> dict:
    return {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}


def python_package(distribution: Distribution, hashes: tuple[str, ...]) -> dict:
    name = normalized(distribution.name)
    return {
        "name": distribution.name,
        "SPDXID": spdx_id("pypi", name),
        "versionInfo": distribution.version,
        "downloadLocation": f"https://pypi.org/project/{name}/{distribution.version}/",
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": value} for value in hashes],
        "externalRefs": [purl_ref(f"pkg:pypi/{name}@{quote(distribution.version, safe='')}")],
        "primaryPackagePurpose": "LIBRARY",
    }


def debian_package(package: DebianPackage, index: int) -> dict:
    qualifiers = f"?arch={package.architecture}&distro={DEBIAN_RELEASE}" if package.architecture else ""
    return {
        "name": package.name,
        "SPDXID": spdx_id("deb", str(index), package.name),
        "versionInfo": package.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "supplier": "Organization: Debian",
        "externalRefs": [purl_ref(f"pkg:deb/debian/{package.name}@{quote(package.version, safe='')}{qualifiers}")],
        "primaryPackagePurpose": "OPERATING-SYSTEM" if package.name == "base-files" else "LIBRARY",
    }


def application_package(name: str, version: Version) -> dict:
    location = f"git+{version.source}@{version.commit}" if version.source.startswith("https://") else "NOASSERTION"
    return {
        "name": f"{name} application",
        "SPDXID": spdx_id("application", name),
        "versionInfo": version.commit,
        "downloadLocation": location,
        "filesAnalyzed": False,
        "comment": f"the application's files, from commit {version.commit} (k8sdeploy version {version.version})",
        "primaryPackagePurpose": "SOURCE",
    }


def image_package(name: str, image: PublishedImage) -> dict:
    repository = quote(image.repository.rsplit("/", 1)[0], safe="")
    purl = f"pkg:oci/{name}@{quote(image.digest, safe='')}?repository_url={repository}%2F{name}&tag={image.tag}"
    return {
        "name": name,
        "SPDXID": spdx_id("image", name),
        "versionInfo": image.tag,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.digest.removeprefix("sha256:")}],
        "externalRefs": [purl_ref(purl)],
        "primaryPackagePurpose": "CONTAINER",
    }


def sbom(
    name: str,
    image: PublishedImage,
    contents: Contents,
    locked: Mapping[str, tuple[str, tuple[str, ...]]],
    version: Version,
) -> dict:
    """The SPDX document of the image `name`: the image, and every package its layers hold, each CONTAINed."""
    top = image_package(name, image)
    packages = [python_package(d, locked.get(normalized(d.name), ("", ()))[1]) for d in contents.python]
    packages += [debian_package(package, index) for index, package in enumerate(contents.debian)]
    if contents.application:
        packages.append(application_package(name, version))
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": top["SPDXID"]}
    ]
    relationships += [
        {"spdxElementId": top["SPDXID"], "relationshipType": "CONTAINS", "relatedSpdxElement": package["SPDXID"]}
        for package in packages
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{name}@{image.digest}",
        "documentNamespace": f"https://k8sdeploy.invalid/spdx/{name}/{image.digest.removeprefix('sha256:')}",
        "creationInfo": {"created": version.created, "creators": [f"Tool: k8sdeploy-{__version__}"]},
        "packages": [top, *packages],
        "relationships": relationships,
    }
