"""The version of a source tree, from git: the one place where image tags and source times come from.

On a commit tagged `vX.Y.Z` the version is `X.Y.Z`; otherwise `X.Y.Z-N-gSHA` (git describe style,
N commits after the tag; `0.0.0-N-gSHA` before any tag). A tree with uncommitted changes gets
`-dirty-HASH`, HASH being a digest of those changes, so that two different dirty trees never share
a version tag (tags are immutable). Files that documented CI steps write into the checkout (CI_FILES) are not
changes: the version of a CI run is its commit's.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from deploy.model.errors import ConfigError

RELEASE_TAG = re.compile(r"^v(\d+\.\d+\.\d+)$")
DESCRIBED = re.compile(r"^v(\d+\.\d+\.\d+)-(\d+)-g([0-9a-f]+)$")
CHANNELS = ("develop",)  # `latest` moves only through an explicit release, never through build
# What documented CI steps leave in the checkout, never source: google-github-actions/auth writes its credentials
# file `gha-creds-<16 hex>.json` into $GITHUB_WORKSPACE, the checkout unless actions/checkout was given a `path:`
# (src/main.ts "We explicitly and intentionally export to GITHUB_WORKSPACE"; src/utils.ts
# generateCredentialsFilename), and its README asks for the pattern in .gitignore. Top-level only, as it writes it.
CI_FILES = ("gha-creds-*.json",)
NOT_SOURCE = tuple(f":(exclude,glob,top){pattern}" for pattern in CI_FILES)


@dataclass(frozen=True)
class Version:
    """What an image is tagged with and stamped by."""

    version: str  # the immutable tag
    commit: str  # full SHA of HEAD
    epoch: int  # commit time of HEAD (SOURCE_DATE_EPOCH), seconds since 1970
    dirty: bool = False
    source: str = ""  # where the source lives (remote URL without credentials), for the OCI label

    @property
    def created(self) -> str:
        return datetime.fromtimestamp(self.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(
            f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}",
            "build from a git checkout with at least one commit",
        )
    return result.stdout.strip()


def _describe(root: Path) -> str:
    """The version from the last release tag; "" before there is one."""
    try:
        described = _git(root, "describe", "--tags", "--long", "--match", "v[0-9]*.[0-9]*.[0-9]*", "--abbrev=7")
    except ConfigError:  # no release tag yet
        return ""
    match = DESCRIBED.match(described)
    if not match:
        raise ConfigError(f"git describe gave {described!r}", "name release tags vX.Y.Z")
    release, distance, sha = match.groups()
    return release if distance == "0" else f"{release}-{distance}-g{sha}"


def _changes_digest(root: Path) -> str:
    """A digest of uncommitted changes (tracked diffs and untracked files), or "" for a clean tree."""
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *NOT_SOURCE)
    if not status:
        return ""
    digest = hashlib.sha256(
        subprocess.run(["git", "-C", str(root), "diff", "HEAD", "--binary"], capture_output=True, check=True).stdout
    )
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", *NOT_SOURCE).split("\0")
    for name in sorted(filter(None, untracked)):
        digest.update(name.encode() + b"\0" + _content(root / name))
    return digest.hexdigest()[:8]


def _content(path: Path) -> bytes:
    """What git would record of an untracked entry: a symlink's target (git lists a symlink to a directory as
    one entry, which read_bytes cannot read), a file's bytes."""
    return os.readlink(path).encode() if path.is_symlink() else path.read_bytes()


def source_url(remote: str) -> str:
    """The origin as one https-style URL whatever the clone used (ssh or https, with or without .git),
    so that clones of one repository stamp the same label; never with credentials. A clone of a local
    path gets no label: the path means nothing elsewhere and would make the digest depend on it."""
    if remote.strip().startswith(("/", ".", "file:")):
        return ""
    url = re.sub(r"^(?:ssh://)?git@([^:/]+)[:/]", r"https://\1/", remote.strip())
    url = re.sub(r"//[^/@]*@", "//", url)
    return url.removesuffix(".git").rstrip("/")


def _source_url(root: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), "config", "--get", "remote.origin.url"], capture_output=True, text=True
    )
    return source_url(result.stdout)


def version_of(root: Path) -> Version:
    """The version of the checkout at `root` (git asked side by side)."""
    with ThreadPoolExecutor(4) as pool:
        head = pool.submit(_git, root, "log", "-1", "--format=%H %ct", "HEAD")
        described = pool.submit(_describe, root)
        changes = pool.submit(_changes_digest, root)
        source = pool.submit(_source_url, root)
        commit, epoch = head.result().split()
        version = described.result() or f"0.0.0-{_git(root, 'rev-list', '--count', 'HEAD')}-g{commit[:7]}"
    if changes.result():
        version = f"{version}-dirty-{changes.result()}"
    return Version(
        version=version, commit=commit, epoch=int(epoch), dirty=bool(changes.result()), source=source.result()
    )


def last_changes(root: Path, sources: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """last_change of each set of paths, by name, asked of git side by side."""
    with ThreadPoolExecutor(4) as pool:
        stamps = {name: pool.submit(last_change, root, paths) for name, paths in sources.items()}
        return {name: stamp.result() for name, stamp in stamps.items()}


def last_change(root: Path, paths: tuple[str, ...]) -> int:
    """Commit time of the last commit touching `paths`: the file time of a layer made from them.

    Layers take their time from their own sources rather than from HEAD, so a commit that does
    not touch a layer's sources leaves the layer, and its digest, as it was.
    """
    stamp = _git(root, "log", "-1", "--format=%ct", "HEAD", "--", *paths)
    return int(stamp) if stamp else int(_git(root, "log", "-1", "--format=%ct", "HEAD"))
