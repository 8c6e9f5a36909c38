"""The SLSA v1 provenance of one build: its six images as subjects, the source and commit, the bases and the lock
by digest as resolved dependencies, k8sdeploy as the builder and, in CI, the run (https://slsa.dev/spec/v1.0/provenance)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from deploy import __version__
from deploy.model.images import PublishedImage
from deploy.model.version import Version

BUILD_TYPE = "https://k8sdeploy.invalid/build/v1"
BUILDER = "https://k8sdeploy.invalid/builder"


def run_identity(environ: Mapping[str, str]) -> dict:
    """The CI run that built (GitHub Actions names it), else nothing."""
    if not environ.get("GITHUB_RUN_ID"):
        return {}
    server = environ.get("GITHUB_SERVER_URL", "https://github.com")
    repository = environ.get("GITHUB_REPOSITORY", "")
    run = f"{server}/{repository}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return {"invocationId": f"{run}/attempts/{environ.get('GITHUB_RUN_ATTEMPT', '1')}"}


def digest_of(value: str) -> dict:
    algorithm, _, hexdigest = value.partition(":")
    return {algorithm: hexdigest}


def provenance(
    version: Version,
    images: Mapping[str, PublishedImage],
    bases: Mapping[str, str],
    lock: tuple[str, str],
    builder: str,
    environ: Mapping[str, str] | None = None,
) -> dict:
    """The predicate; `bases` maps each base reference to its manifest digest, `lock` is (path, sha256:...)."""
    environ = os.environ if environ is None else environ
    source = version.source or "unknown"
    dependencies = [{"uri": f"git+{source}", "digest": {"gitCommit": version.commit}}]
    dependencies += [
        {"uri": reference.partition("@")[0], "digest": digest_of(digest), "name": "base"}
        for reference, digest in sorted(bases.items())
    ]
    dependencies.append({"uri": lock[0], "digest": digest_of(lock[1]), "name": "lock"})
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "source": source,
                "version": version.version,
                "builder": builder,
                "repositories": {name: image.repository for name, image in images.items()},
            },
            "internalParameters": {"dirty": version.dirty},
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER, "version": {"k8sdeploy": __version__}},
            "metadata": run_identity(environ),
        },
    }
