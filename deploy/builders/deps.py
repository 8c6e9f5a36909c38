"""The services' locked dependencies installed for the image's Python, without running anything in it."""

from __future__ import annotations

import compileall
import hashlib
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy.builders.spec import DEPS_DIR
from deploy.model.errors import BuildError

# Wheels that run on Debian bookworm's glibc 2.36 on linux/amd64, newest tag first.
PLATFORMS = (
    "manylinux_2_36_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "linux_x86_64",
)


@dataclass(frozen=True)
class Target:
    """The interpreter the dependencies are installed for."""

    python_version: str = "3.11"
    platforms: tuple[str, ...] = PLATFORMS
    implementation: str = "cp"

    def key(self, lock: bytes) -> str:
        text = f"{self.python_version}|{self.implementation}|{','.join(self.platforms)}|bytecode|"
        return hashlib.sha256(text.encode() + lock).hexdigest()[:16]


def install_dependencies(lock: Path, cache_dir: Path, target: Target = Target()) -> Path:
    """A directory of the packages in `lock` (hash-checked wheels only), made once per lock and target."""
    directory = cache_dir / "deps" / target.key(lock.read_bytes())
    if directory.exists():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".incoming-"))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--target",
        str(staging),
        "--python-version",
        target.python_version,
        "--implementation",
        target.implementation,
        *[arg for platform in target.platforms for arg in ("--platform", platform)],
        "-r",
        str(lock),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BuildError(
            f"installing {lock.name} for Python {target.python_version} failed: {last}",
            "check that PyPI is reachable and every locked package has a wheel",
        )
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts carry the build machine's python path
    compile_bytecode(staging, target)
    os.replace(staging, directory)
    return directory


def compile_bytecode(tree: Path, target: Target, image_path: str = DEPS_DIR) -> None:
    """Byte-compile the tree once here, so that a service does not compile its libraries at every start (about
    2 s of each start on 2 cores), when this Python is the image's version. The files are reproducible: keyed
    by the source's hash, not its time, and naming the path they have in the image."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != target.python_version:
        return
    compileall.compile_dir(
        str(tree),
        ddir=image_path,
        quiet=2,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
