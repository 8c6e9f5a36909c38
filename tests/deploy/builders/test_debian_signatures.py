"""A Debian base is built only from an archive whose Release file carries a good signature of Debian's archive
keys: a mirror that serves the packages' index unsigned (a tampering mirror, or a proxy in between) stops the
build (debootstrap --keyring ... --force-check-gpg)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from deploy.builders.bases import SUITE, BaseResolver
from deploy.builders.store import BlobStore
from deploy.model.errors import BuildError
from tests.fakes.server import serve

RELEASE = f"Origin: Debian\nSuite: stable\nCodename: {SUITE}\nArchitectures: amd64\nComponents: main\nSHA256:\n"


@pytest.fixture
def unsigned_mirror(tmp_path: Path) -> Iterator[str]:
    """A mirror on loopback whose dists/bookworm/ has a Release file and no InRelease or Release.gpg."""
    dists = tmp_path / "mirror" / "debian" / "dists" / SUITE
    dists.mkdir(parents=True)
    (dists / "Release").write_text(RELEASE)

    class Mirror(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(tmp_path / "mirror"), **kwargs)

    server = serve(Mirror)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unsigned_archive_stops_the_base_build(tmp_path: Path, unsigned_mirror: str) -> None:
    store = BlobStore(tmp_path / "store")
    resolver = BaseResolver(store, tmp_path / "cache", lambda host: None, mirror=unsigned_mirror)  # type: ignore[arg-type]
    (tmp_path / "cache").mkdir()
    with pytest.raises(BuildError) as refused:
        resolver._debootstrap("python", store)
    assert "debootstrap of base 'python' failed" in refused.value.message
    assert "Release.gpg" in refused.value.message  # the signature it could not find
