"""What an image's layers hold, read from the layers the builder wrote: the Python distributions installed in
its dependencies layer, the Debian packages of its base (dpkg's status file), and whether it has application
files; with the lock's hashes for each distribution."""

from __future__ import annotations

import re
import tarfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from deploy.builders.spec import APP_DIR, DEPS_DIR
from deploy.model.suite import GATEWAY_CONF, GATEWAY_LUA_DIR

DPKG_STATUS = "var/lib/dpkg/status"
DIST_INFO = re.compile(rf"^{re.escape(DEPS_DIR.strip('/'))}/[^/]+\.dist-info/METADATA$")
APPLICATION = (APP_DIR.strip("/") + "/", GATEWAY_CONF.strip("/"), GATEWAY_LUA_DIR.strip("/") + "/")
LOCKED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def normalized(name: str) -> str:
    """PEP 503's name: runs of -, _ and . as one -, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str


@dataclass(frozen=True)
class Contents:
    python: tuple[Distribution, ...] = ()
    debian: tuple[DebianPackage, ...] = ()
    application: bool = False

    def __add__(self, other: Contents) -> Contents:
        return Contents(self.python + other.python, self.debian + other.debian, self.application or other.application)


def dpkg_status(text: str) -> tuple[DebianPackage, ...]:
    """The packages dpkg's status file says are installed."""
    packages = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", paragraph, re.MULTILINE))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages.append(DebianPackage(fields["Package"], fields["Version"], fields.get("Architecture", "")))
    return tuple(sorted(packages, key=lambda package: package.name))


def read_layer(path: Path) -> Contents:
    """One gzipped tar layer, read once from start to end."""
    python: list[Distribution] = []
    debian: tuple[DebianPackage, ...] = ()
    application = False
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            name = member.name.lstrip("./")
            application = application or name.startswith(APPLICATION)
            if not member.isfile() or not (name == DPKG_STATUS or DIST_INFO.match(name)):
                continue
            handle = tar.extractfile(member)
            text = handle.read().decode("utf-8", "replace") if handle else ""
            if name == DPKG_STATUS:
                debian = dpkg_status(text)
            else:
                headers = HeaderParser().parsestr(text, headersonly=True)
                python.append(Distribution(headers["Name"], headers["Version"]))
    return Contents(tuple(sorted(python, key=lambda d: normalized(d.name))), debian, application)


class LayerContents:
    """Reads each layer once per run (the bases and the dependencies layer are shared by several images)."""

    def __init__(self) -> None:
        self._read: dict[str, Contents] = {}
        self._lock = threading.Lock()

    def of(self, layers: Sequence[tuple[str, Path]]) -> Contents:
        """The contents of an image's layers, given as (digest, path of the gzipped tar)."""
        total = Contents()
        for digest, path in layers:
            with self._lock:
                if digest not in self._read:
                    self._read[digest] = read_layer(path)
                total = total + self._read[digest]
        return total


def locked_hashes(lock: str) -> Mapping[str, tuple[str, tuple[str, ...]]]:
    """normalized name -> (version, sha256 hashes) of a `pip-compile --generate-hashes` lock."""
    found: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in lock.splitlines():
        match = LOCKED.match(line)
        if match:
            current = normalized(match[1])
            found[current] = (match[2], [])
        elif current:
            found[current][1].extend(HASH.findall(line))
    return {name: (version, tuple(hashes)) for name, (version, hashes) in found.items()}
