"""Reproducible layers: a sorted tar of fixed owners, modes and times, gzipped without a timestamp."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import IO, cast

from deploy.builders.store import OCI_LAYER, BlobStore, Layer

GZIP_LEVEL = 6


@dataclass(frozen=True)
class FileEntry:
    """One entry of a layer: a directory, a file (from `source` on disk or `data`) or a symlink."""

    path: str  # absolute path in the image
    kind: str = "file"  # file | dir | symlink
    source: Path | None = None
    data: bytes | None = None
    link: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int | None = None  # None: the layer's time

    def file(self) -> Path:
        """The file on disk a file entry without `data` is read from."""
        if self.source is None:
            raise ValueError(f"{self.path}: a file entry needs data or a source")
        return self.source


@dataclass(frozen=True)
class LayerSpec:
    """What a layer holds and the time its entries carry (SOURCE_DATE_EPOCH of its sources).

    `files`: the entries, or what lists them when they are first needed; `sealed`: when the entries come from a
    directory that is never changed once made (deps.install_dependencies), a name for that directory by which the
    layer is known without listing it (inputs_key)."""

    name: str
    files: tuple[FileEntry, ...] | Callable[[], Iterable[FileEntry]]
    epoch: int
    sealed: str = ""

    @cached_property
    def entries(self) -> tuple[FileEntry, ...]:
        return self.files if isinstance(self.files, tuple) else tuple(self.files())

    def with_parents(self) -> tuple[FileEntry, ...]:
        """The entries plus any missing parent directories (root-owned, 0755), sorted by path."""
        by_path = {entry.path.rstrip("/") or "/": entry for entry in self.entries}
        for entry in self.entries:
            for parent in PurePosixPath(entry.path).parents:
                key = str(parent)
                if key != "/" and key not in by_path:
                    by_path[key] = FileEntry(key, kind="dir", mode=0o755)
        return tuple(by_path[key] for key in sorted(by_path))


def tree_entries(source: Path, target: str, *, bytecode: bool = False) -> list[FileEntry]:
    """The files and directories under `source`, placed under `target`; modes normalised to 0644/0755. Compiled
    Python (__pycache__) is left out, but for a tree that was compiled reproducibly on purpose (`bytecode`)."""
    exclude = () if bytecode else ("__pycache__",)
    entries = [FileEntry(target, kind="dir", mode=0o755)]
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(name for name in dirnames if name not in exclude)
        base = PurePosixPath(target) / Path(dirpath).relative_to(source).as_posix()
        for name in dirnames:
            entries.append(FileEntry(str(base / name), kind="dir", mode=0o755))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix == ".pyc" and not bytecode:
                continue
            if path.is_symlink():
                entries.append(FileEntry(str(base / name), kind="symlink", link=os.readlink(path), mode=0o777))
            else:
                executable = path.stat().st_mode & stat.S_IXUSR
                entries.append(FileEntry(str(base / name), source=path, mode=0o755 if executable else 0o644))
    return entries


def _tarinfo(entry: FileEntry, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path.lstrip("/") + ("/" if entry.kind == "dir" else ""))
    info.mode, info.uid, info.gid = entry.mode, entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = epoch if entry.mtime is None else entry.mtime
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.link
    elif entry.data is not None:
        info.size = len(entry.data)
    else:
        info.size = entry.file().stat().st_size
    return info


def write_tar(spec: LayerSpec, out: IO[bytes]) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in spec.with_parents():
            info = _tarinfo(entry, spec.epoch)
            if entry.kind != "file":
                tar.addfile(info)
            elif entry.data is not None:
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                with entry.file().open("rb") as handle:
                    tar.addfile(info, handle)


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what passes through to `inner`."""

    def __init__(self, inner: IO[bytes]):
        self.inner, self.hash, self.size = inner, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)


def inputs_key(spec: LayerSpec) -> str:
    """A digest of what the layer's bytes are made from, read from the file system's metadata rather than the
    files: each entry's path, kind, mode, owner, time, link or data, and for a file on disk its size, modification
    and change times, inode and device (what git's index trusts to tell a file unchanged); and how tars are written
    and compressed here; for a sealed layer, the name of its directory instead. Equal keys, equal layers: the layer
    is not written again to learn its digest."""
    digest = hashlib.sha256(f"layer tar v1 gzip {GZIP_LEVEL} epoch {spec.epoch}\0".encode())
    if spec.sealed:
        digest.update(f"sealed {spec.sealed}".encode())
        return digest.hexdigest()
    for entry in spec.entries:
        digest.update(
            repr((entry.path, entry.kind, entry.mode, entry.uid, entry.gid, entry.mtime, entry.link)).encode()
        )
        if entry.data is not None:
            digest.update(hashlib.sha256(entry.data).digest())
        elif entry.kind == "file":
            st = entry.file().stat()
            digest.update(repr((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)).encode())
    return digest.hexdigest()


def build_layer(spec: LayerSpec, store: BlobStore) -> Layer:
    """The layer of `spec` in `store`: known by its inputs (inputs_key) when they did not change since it was
    written; else the tar is written, and gzip runs only when this exact tar was never compressed before."""
    key = inputs_key(spec)
    known = store.note("layer-inputs", key)
    if known and store.has(known["digest"]):
        return Layer(known["digest"], known["size"], OCI_LAYER, known["diff_id"])
    layer = _build_layer(spec, store)
    store.note("layer-inputs", key, {"digest": layer.digest, "size": layer.size, "diff_id": layer.diff_id})
    return layer


def _build_layer(spec: LayerSpec, store: BlobStore) -> Layer:
    with store.writer() as plain:
        hashing = _Hashing(plain)
        write_tar(spec, cast(IO[bytes], hashing))  # a raw binary stream, all tarfile writes to
        diff_id = "sha256:" + hashing.hash.hexdigest()
        known = store.note("layers", diff_id)
        if known and store.has(known["digest"]):
            return Layer(known["digest"], known["size"], OCI_LAYER, diff_id)
        plain.flush()
        plain.seek(0)
        layer = _compress(plain, store, diff_id)
    store.note("layers", diff_id, {"digest": layer.digest, "size": layer.size})
    return layer


def _compress(plain: IO[bytes], store: BlobStore, diff_id: str) -> Layer:
    with store.writer() as packed:
        hashing = _Hashing(packed)
        with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0, compresslevel=GZIP_LEVEL) as gz:
            shutil.copyfileobj(plain, gz, 1 << 20)
        digest = "sha256:" + hashing.hash.hexdigest()
        store.commit(packed, digest)
    return Layer(digest, hashing.size, OCI_LAYER, diff_id)
