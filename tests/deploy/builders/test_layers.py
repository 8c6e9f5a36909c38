"""Layers are reproducible: same content gives the same digest whatever the file times and paths."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from deploy.builders import layers
from deploy.builders import spec as spec_module
from deploy.builders.layers import FileEntry, LayerSpec, build_layer, tree_entries
from deploy.builders.spec import DEPS_DIR, dependencies_layer
from deploy.builders.store import BlobStore, Layer
from deploy.model.version import Version
from tests.infra import ROOT


def make_tree(root: Path, mtime: int) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "b.py").write_text("b = 2\n")
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (root / "pkg" / "sub" / "run.sh").chmod(0o700)
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime))
    return root / "pkg"


def layer_of(tree: Path, store_dir: Path, epoch: int = 1714564800) -> Layer:
    entries = tuple(tree_entries(tree, "/opt/app")) + (FileEntry("/data", kind="dir", uid=10001, gid=10001),)
    return build_layer(LayerSpec("app", entries, epoch), BlobStore(store_dir))


def members(store_dir: Path, digest: str) -> list[tarfile.TarInfo]:
    data = BlobStore(store_dir).read(digest)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return tar.getmembers()


def test_same_content_same_digest_across_paths_and_file_times(tmp_path: Path) -> None:
    first = layer_of(make_tree(tmp_path / "one", 1_000_000_000), tmp_path / "store-one")
    second = layer_of(make_tree(tmp_path / "elsewhere" / "two", 1_600_000_000), tmp_path / "store-two")
    assert first == second


def test_entries_are_sorted_with_fixed_owner_mode_and_time(tmp_path: Path) -> None:
    layer = layer_of(make_tree(tmp_path / "src", 1_000_000_000), tmp_path / "store")
    infos = members(tmp_path / "store", layer.digest)
    names = [info.name for info in infos]
    assert names == sorted(names)
    assert names == ["data", "opt", "opt/app", "opt/app/a.py", "opt/app/b.py", "opt/app/sub", "opt/app/sub/run.sh"]
    by_name = {info.name: info for info in infos}
    assert {info.mtime for info in infos} == {1714564800}
    assert (by_name["opt/app/a.py"].uid, by_name["opt/app/a.py"].mode) == (0, 0o644)
    assert by_name["opt/app/sub/run.sh"].mode == 0o755
    assert (by_name["data"].uid, by_name["data"].gid) == (10001, 10001)


def test_gzip_carries_no_time_or_name(tmp_path: Path) -> None:
    layer = layer_of(make_tree(tmp_path / "src", 1_000_000_000), tmp_path / "store")
    header = BlobStore(tmp_path / "store").read(layer.digest)[:10]
    assert header[3] == 0  # no FNAME/FEXTRA/FCOMMENT flags
    assert header[4:8] == b"\0\0\0\0"  # MTIME 0


def test_content_or_epoch_change_changes_the_digest(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src", 1_000_000_000)
    before = layer_of(tree, tmp_path / "store")
    assert layer_of(tree, tmp_path / "store", epoch=1714564801).digest != before.digest
    (tree / "a.py").write_text("a = 3\n")
    assert layer_of(tree, tmp_path / "store").digest != before.digest


def test_a_tar_compressed_once_is_not_compressed_again(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src", 1_000_000_000)
    first = layer_of(tree, tmp_path / "store")
    blob = BlobStore(tmp_path / "store").path(first.digest)
    stamp = blob.stat().st_mtime_ns
    assert layer_of(tree, tmp_path / "store") == first
    assert blob.stat().st_mtime_ns == stamp


def test_unchanged_inputs_are_known_without_writing_the_layer_and_a_changed_file_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild learns an unchanged layer's digest from its inputs' metadata (layers.inputs_key), without writing
    the tar; a file written again with the same size and time is a changed input all the same (its change time)."""
    tree = make_tree(tmp_path / "src", 1_000_000_000)
    first = layer_of(tree, tmp_path / "store")
    written: list[str] = []
    real = layers.write_tar
    monkeypatch.setattr(layers, "write_tar", lambda spec, out: written.append(spec.name) or real(spec, out))
    assert layer_of(tree, tmp_path / "store") == first and written == []
    (tree / "a.py").write_text("a = 9\n")  # same size
    os.utime(tree / "a.py", (1_000_000_000, 1_000_000_000))  # same modification time
    changed = layer_of(tree, tmp_path / "store")
    assert written == ["app"] and changed.digest != first.digest
    # the blob gone from the store (a pruned cache): the layer is written again
    (tmp_path / "store" / "blobs" / "sha256" / changed.digest.removeprefix("sha256:")).unlink()
    written.clear()
    assert layer_of(tree, tmp_path / "store") == changed and written == ["app"]


def test_a_sealed_directory_is_known_by_its_name_and_listed_only_to_write_its_layer(tmp_path: Path) -> None:
    """The dependencies' directory is made once and never changed (deps.install_dependencies): a rebuild knows its
    layer without walking its thousands of files; a directory made anew in its place is a new layer."""
    site = make_tree(tmp_path / "deps", 1_000_000_000)
    store = BlobStore(tmp_path / "store")
    listed: list[Path] = []

    def spec(epoch: int = 1714564800) -> LayerSpec:
        sealed = dependencies_layer(site, epoch)
        assert callable(sealed.files)
        walk = sealed.files

        def listing() -> Iterable[FileEntry]:
            listed.append(site)
            return walk()

        return LayerSpec(sealed.name, listing, sealed.epoch, sealed.sealed)

    first = build_layer(spec(), store)
    plain = build_layer(LayerSpec("same", tuple(tree_entries(site, DEPS_DIR, bytecode=True)), 1714564800), store)
    assert first.digest == plain.digest and listed == [site]  # the same bytes as the listed layer's
    assert build_layer(spec(), store) == first and listed == [site]  # known by name: not listed again
    assert build_layer(spec(epoch=1714564801), store).digest != first.digest  # another time, another layer
    replacement = make_tree(tmp_path / "new", 1_000_000_000)
    (replacement / "a.py").write_text("a = 2\n")
    os.replace(site, tmp_path / "old")
    os.replace(replacement, site)
    again = build_layer(spec(), store)
    assert again.digest != first.digest and len(listed) == 3


def test_the_gateway_layer_is_known_by_its_sources_and_renders_its_conf_only_to_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's layer holds an nginx.conf rendered from the checkout's template by k8sdeploy's code: while
    neither changed, a rebuild knows the layer without rendering; a changed Lua file is a new layer."""
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "nginx-lua", root / "nginx-lua")
    rendered: list[Path] = []
    real = spec_module.gateway_entries

    def counting(checkout: Path) -> list[FileEntry]:
        rendered.append(checkout)
        return real(checkout)

    monkeypatch.setattr(spec_module, "gateway_entries", counting)
    store = BlobStore(tmp_path / "store")
    version = Version("1.0.0", "0" * 40, 1714564800)

    def layer() -> Layer:
        return build_layer(spec_module.gateway_spec(root, version, "base", 1714564800).layers[0], store)

    first = layer()
    assert layer() == first and rendered == [root]  # rendered once, to be written
    lua = next((root / "nginx-lua" / "lua").rglob("*.lua"))
    lua.write_text(lua.read_text() + "-- changed\n")
    assert layer().digest != first.digest and rendered == [root, root]
