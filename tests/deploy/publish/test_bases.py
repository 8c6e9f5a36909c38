"""`k8sdeploy bases`: the Debian bases pushed to a registry on loopback as images, pinned by digest; again a no-op;
a tag that holds other bases is refused before anything is pushed. The bases come from the machine's k8sdeploy
cache (debootstrap only the first time on a machine, as root). The MariaDB server alone (publish_server): pushed
under the bases' tag scheme, again a no-op, never moving a tag that holds other content."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from deploy.builders.bases import BaseResolver
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.clients import Clients
from deploy.model.environments import Environment
from deploy.model.errors import PublishError
from deploy.publish.bases import BASE_NAMES, SERVER, base_image, publish_server
from deploy.publish.push import RegistryPublisher
from deploy.registry.client import MANIFEST_TYPES, RegistryAddress, RegistryClient
from tests.deploy.conftest import FAST_RETRY
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry

ENV = "bases-test"


def bases(config: Path, registry: str, *args: str) -> Result:
    return k8sdeploy("bases", "--registry", registry, *args, env=ENV, config=config)


@pytest.mark.timeout(900)
def test_bases_are_pushed_by_digest_and_printed_as_the_table_to_paste(config: Path, registry: Registry) -> None:
    first = bases(config, f"{registry.host}/first/bases")
    assert first.exit_code == 0, first.stderr
    table = tomllib.loads(first.stdout)["environments"][ENV]["bases"]
    assert sorted(table) == ["mariadb", "nginx", "python"] == sorted(BASE_NAMES)
    Environment(name=ENV, target="local", bases=table)  # what the configuration accepts
    for name, reference in table.items():
        repository, _, digest = reference.removeprefix(f"{registry.host}/").partition("@")
        assert repository == f"first/bases/{name}"
        [tag] = registry.tags(repository)
        assert tag.startswith("bookworm-") and registry.digest(repository, tag) == digest
        manifest = httpx.get(
            f"http://{registry.host}/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_TYPES}
        ).json()
        config_blob = httpx.get(f"http://{registry.host}/v2/{repository}/blobs/{manifest['config']['digest']}")
        assert json.loads(config_blob.content)["rootfs"]["diff_ids"]  # an image: config and layers, all there

    again = bases(config, f"{registry.host}/first/bases", "--output", "json")
    assert again.exit_code == 0, again.stderr
    assert again.stderr.count("already published with this digest; nothing to push") == len(BASE_NAMES)
    document = valid(again.stdout)
    assert (document["command"], document["result"], document["environment"]) == ("bases", "ok", ENV)
    assert document["pins"] == table and document["toml"] == first.stdout


@pytest.mark.timeout(900)
def test_a_tag_holding_other_bases_is_refused_and_nothing_is_pushed(config: Path, registry: Registry) -> None:
    first = bases(config, f"{registry.host}/one/bases", "--output", "json")
    assert first.exit_code == 0, first.stderr
    published = valid(first.stdout)["bases"]
    tag, nginx = published["nginx"]["tag"], published["nginx"]["digest"]
    # other/bases/python:TAG is the nginx base: someone else's bases of the same day
    with httpx.Client() as http:
        client = RegistryClient(registry.host, http)
        manifest = client.get_manifest("one/bases/nginx", nginx)
        assert manifest is not None
        for blob in [json.loads(manifest[0])["config"], *json.loads(manifest[0])["layers"]]:
            assert client.mount_blob("other/bases/python", blob["digest"], "one/bases/nginx")
        client.put_manifest("other/bases/python", tag, *manifest)

    refused = bases(config, f"{registry.host}/other/bases")
    assert refused.exit_code == 3
    assert f"bases {tag} already exist in {registry.host}/other/bases with other content" in refused.stderr
    assert f"python is {nginx} there" in refused.stderr and "nothing was pushed" in refused.stderr
    assert f"pin the bases already there ({registry.host}/other/bases/python@{nginx})" in refused.stderr
    assert refused.stdout == ""
    assert registry.tags("other/bases/nginx") == [] and registry.digest("other/bases/python", tag) == nginx


@pytest.mark.timeout(900)
def test_the_server_is_published_alone_by_digest_and_never_moves_a_tag(tmp_path: Path, registry: Registry) -> None:
    clients = Clients(retry=FAST_RETRY)
    resolver = BaseResolver(BlobStore(tmp_path / "store"), default_cache_dir(), clients.registry)

    def publisher(path: str) -> RegistryPublisher:
        address = RegistryAddress.parse(f"{registry.host}/{path}")
        return RegistryPublisher(address, clients.registry(address.host))

    server = publish_server(resolver, publisher("server/one"))
    built = resolver.resolve("debootstrap:mariadb")
    assert (server.repository, server.digest) == (f"{registry.host}/server/one/mariadb", built.digest)
    assert server.tag == f"bookworm-{built.config_json['created'][:10].replace('-', '')}"
    assert registry.tags("server/one/mariadb") == [server.tag]
    assert registry.digest("server/one/mariadb", server.tag) == server.digest
    assert publish_server(resolver, publisher("server/one")) == server  # again: nothing to push

    # server/two/mariadb:TAG holds other content already (the nginx base, pushed under that name): it stays
    other = base_image(SERVER, resolver.resolve("debootstrap:nginx"), resolver.store)
    publisher("server/two").publish([other], server.tag)
    with pytest.raises(PublishError, match="already exist in .* with other content") as refused:
        publish_server(resolver, publisher("server/two"))
    assert f"mariadb is {other.digest} there, {server.digest} here" in str(refused.value)
    assert registry.digest("server/two/mariadb", server.tag) == other.digest
