"""The infra ("pause") image of local pods: the host's static busybox alone, about 2 MB.

On the vfs storage driver every container gets a full copy of its image's files, so an infra container made
from one of the suite's images (150 MB) costs a second or more to create and as much to remove, once per pod.
On overlay2 a container shares its image's layers and costs little either way, but an infra container needs
no more than a process that sleeps: this image is right on both drivers, and keeps a pod's lifetime
independent of the suite's images. It holds only /bin/busybox (from Debian's busybox-static) and the two
applets the local target runs in it, `sleep` and `chown`. It is imported into the engine with no registry,
tagged by a digest of its contents, so it is made once per busybox. Where there is no static busybox, the
pods' own images hold the pods, as they did before.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import docker
from docker.errors import ImageNotFound

BUSYBOX = Path("/bin/busybox")
REPOSITORY = "k8sdeploy/pause"
APPLETS = ("sleep", "chown")
PT_INTERP = 3  # an ELF program header naming the dynamic loader


def is_static_executable(path: Path) -> bool:
    """An ELF file with no program interpreter: it runs in an image that has no libc and no loader."""
    with path.open("rb") as elf:
        header = elf.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] not in (1, 2) or header[5] not in (1, 2):
            return False
        order = "<" if header[5] == 1 else ">"
        if header[4] == 2:  # 64-bit: e_phoff at 32; e_phentsize, e_phnum at 54
            offset = struct.unpack_from(order + "Q", header, 32)[0]
            entry_size, count = struct.unpack_from(order + "HH", header, 54)
        else:  # 32-bit: e_phoff at 28; e_phentsize, e_phnum at 42
            offset = struct.unpack_from(order + "I", header, 28)[0]
            entry_size, count = struct.unpack_from(order + "HH", header, 42)
        elf.seek(offset)
        for _ in range(count):
            entry = elf.read(entry_size)
            if len(entry) < 4:
                return False
            if struct.unpack_from(order + "I", entry)[0] == PT_INTERP:
                return False
    return True


def root_fs(
    busybox: Path,
    applets: Sequence[str] = APPLETS,
    directories: Sequence[str] = (),
    files: Mapping[str, bytes] = MappingProxyType({}),
) -> bytes:
    """A one-layer root file system: /bin/busybox with links for `applets`, plus empty `directories` and
    `files`; byte for byte the same for the same input (no times, no owners)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", *directories):
            directory = tarfile.TarInfo(name)
            directory.type, directory.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(directory)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = busybox.stat().st_size, 0o755
        with busybox.open("rb") as binary:
            tar.addfile(info, binary)
        for applet in applets:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def pause_image(client: docker.DockerClient, busybox: Path = BUSYBOX) -> str | None:
    """The pause image's ID, imported first if the engine lacks it; None without a static busybox."""
    if not busybox.is_file() or not is_static_executable(busybox):
        return None
    layer = root_fs(busybox)
    reference = f"{REPOSITORY}:{hashlib.sha256(layer).hexdigest()[:12]}"
    try:
        return client.images.get(reference).id
    except ImageNotFound:
        pass
    repository, _, tag = reference.partition(":")
    client.api.import_image_from_data(layer, repository=repository, tag=tag, changes=["ENV PATH=/bin"])
    return client.images.get(reference).id
