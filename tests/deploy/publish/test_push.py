"""Publishing to a real registry (Debian's docker-registry on loopback): HEAD before upload, mounts,
immutable version tags, channels, auth (htpasswd, bearer with google-auth tokens), retries on faults."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path

import google.oauth2.credentials
import httpx
import pytest

from deploy.clients import Clients
from deploy.model.errors import BuildError, ConfigError, PublishError
from deploy.model.images import PublishedImage
from deploy.publish.push import RegistryPublisher
from deploy.registry.auth import DockerConfigCredentials, GoogleCredentials, trusted_realm
from deploy.registry.client import RegistryAddress, RetryPolicy, Traffic
from tests.deploy.conftest import FAST_RETRY, FAULT_SEEDS, BuiltSuite, build_suite, clone, git
from tests.infra import free_port_block
from tests.registries import ProxyRules, Registry, registry_proxy

TAG = "1.0.0"


def publish(
    host: str, suite: BuiltSuite, clients: Clients | None = None, channels: tuple[str, ...] = (), path: str = "suite"
) -> tuple[Mapping[str, PublishedImage], Traffic]:
    clients = clients or Clients(retry=FAST_RETRY)
    publisher = RegistryPublisher(RegistryAddress.parse(f"{host}/{path}"), clients.registry(host))
    return publisher.publish(suite.images, TAG, channels), clients.traffic


def unique_blobs(suite: BuiltSuite) -> set[str]:
    return {blob.digest for image in suite.images for blob in image.blobs}


@pytest.fixture(scope="module")
def retagged_build(tmp_path_factory: pytest.TempPathFactory, source_repo: Path) -> BuiltSuite:
    """v1.0.0 again, but on a commit where one service differs: someone moved the release tag."""
    checkout = clone(source_repo, tmp_path_factory.mktemp("retagged") / "suite")
    (checkout / "services" / "person" / "app.py").write_text(
        (checkout / "services" / "person" / "app.py").read_text() + "\n# changed\n"
    )
    git(checkout, "commit", "-q", "-am", "change person")
    git(checkout, "tag", "-f", "v1.0.0")
    return build_suite(checkout, tmp_path_factory.mktemp("retagged-store"))


def test_publish_pushes_each_blob_once_and_a_rerun_uploads_nothing(
    fresh_registry: Registry, suite_build: BuiltSuite
) -> None:
    published, traffic = publish(fresh_registry.host, suite_build)
    for image in suite_build.images:
        assert published[image.name].ref == f"{fresh_registry.host}/suite/{image.name}:{TAG}@{image.digest}"
        assert fresh_registry.digest(f"suite/{image.name}", TAG) == image.digest
    assert traffic.blobs_uploaded == len(unique_blobs(suite_build))
    assert traffic.blobs_mounted == 2 * 4  # base and dependency layers, into the four other services
    _, again = publish(fresh_registry.host, suite_build)
    assert (again.blobs_uploaded, again.blobs_mounted, again.manifests_put) == (0, 0, 0)
    assert again.requests == 1 + len(suite_build.images)  # the /v2/ check and one HEAD per tag
    assert fresh_registry.tags("suite/person") == [TAG]  # no latest, no develop


def test_develop_channel_moves_and_latest_never(fresh_registry: Registry, suite_build: BuiltSuite) -> None:
    publish(fresh_registry.host, suite_build, channels=("develop",))
    assert sorted(fresh_registry.tags("suite/session")) == [TAG, "develop"]
    assert fresh_registry.digest("suite/session", "develop") == suite_build.image("session").digest


def test_same_version_with_other_content_is_refused_before_anything_moves(
    fresh_registry: Registry, suite_build: BuiltSuite, retagged_build: BuiltSuite
) -> None:
    assert retagged_build.version.version == TAG
    assert retagged_build.image("person").digest != suite_build.image("person").digest
    publish(fresh_registry.host, suite_build)
    with pytest.raises(PublishError, match="immutable") as refused:
        publish(fresh_registry.host, retagged_build)
    assert "version 1.0.0 already exists" in str(refused.value) and "person is sha256:" in str(refused.value)
    assert fresh_registry.digest("suite/person", TAG) == suite_build.image("person").digest
    changed = retagged_build.image("person")
    assert fresh_registry.digest("suite/person", changed.digest) is None  # not even untagged


def test_unreachable_registry_is_one_clear_error(suite_build: BuiltSuite) -> None:
    with pytest.raises(PublishError, match=r"cannot reach registry 127\.0\.0\.1:\d+") as error:
        publish(f"127.0.0.1:{free_port_block(1)}", suite_build)
    assert "check the registry address" in str(error.value)


def docker_config(path: Path, host: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {f"https://{host}": {"auth": auth}}}))
    return path


def test_basic_auth_from_docker_config(tmp_path: Path, auth_registry: Registry, suite_build: BuiltSuite) -> None:
    config = docker_config(tmp_path / "config.json", auth_registry.host, "ci", "s3cret")
    clients = Clients(retry=FAST_RETRY, credentials=lambda host: DockerConfigCredentials(host, config))
    publish(auth_registry.host, suite_build, clients)
    assert auth_registry.digest("suite/frontend", TAG) == suite_build.image("frontend").digest


@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong-password", "anonymous"])
def test_refused_credentials_are_one_clear_error(
    tmp_path: Path, auth_registry: Registry, suite_build: BuiltSuite, password: str | None
) -> None:
    config = tmp_path / "config.json"
    if password:
        docker_config(config, auth_registry.host, "ci", password)
    clients = Clients(retry=FAST_RETRY, credentials=lambda host: DockerConfigCredentials(host, config))
    with pytest.raises(PublishError, match=r"refused the credentials for 127\.0\.0\.1:\d+ in .*config\.json") as error:
        publish(auth_registry.host, suite_build, clients, path="refused")
    assert "wrong" not in str(error.value)
    assert auth_registry.tags("refused/session") == []


def publish_through(registry: Registry, suite_build: BuiltSuite, rules: ProxyRules, retry: RetryPolicy) -> None:
    """Publish the suite to `registry` through a proxy that injects faults by `rules`; check every image landed."""
    with registry_proxy(registry.host, rules) as proxy:
        publisher = RegistryPublisher(RegistryAddress.parse(f"{proxy}/suite"), Clients(retry=retry).registry(proxy))
        publisher.publish(suite_build.images, TAG)
    for image in suite_build.images:
        assert registry.digest(f"suite/{image.name}", TAG) == image.digest


def test_retries_ride_out_dropped_connections_and_503s(fresh_registry: Registry, suite_build: BuiltSuite) -> None:
    # Uploads run in parallel, so one request's retries can keep landing on every third request;
    # retrying each for up to 30 s makes a run of failures that long vanishingly rare.
    rules = ProxyRules(fault_every=3)
    publish_through(fresh_registry, suite_build, rules, RetryPolicy(deadline=30, initial=0.05, maximum=0.5))
    assert rules.faults >= 5


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_thirty_percent_faults_converge(fresh_registry: Registry, suite_build: BuiltSuite, seed: int) -> None:
    """30% of requests answered 503, dropped before the registry sees them, or acted on with the answer lost
    (before: a blob's POST and PUT had to succeed in the same attempt, five attempts in all, and the last
    error blamed the repository and credentials: 3 runs of 4 failed)."""
    rules = ProxyRules(fault_share=0.3, seed=seed)
    publish_through(fresh_registry, suite_build, rules, RetryPolicy(deadline=30, initial=0.02, maximum=0.2))
    assert rules.faults >= 10


def test_a_registry_that_keeps_failing_is_named_as_such(fresh_registry: Registry, suite_build: BuiltSuite) -> None:
    rules = ProxyRules(fault_share=1.0)
    with registry_proxy(fresh_registry.host, rules) as proxy:
        clients = Clients(retry=RetryPolicy(deadline=1, initial=0.05, maximum=0.2))
        publisher = RegistryPublisher(RegistryAddress.parse(f"{proxy}/suite"), clients.registry(proxy))
        with pytest.raises(PublishError) as caught:
            publisher.publish(suite_build.images, TAG)
    assert "for 1 s" in str(caught.value) and "credentials" not in str(caught.value)


def google_credentials(proxy: str) -> GoogleCredentials:
    user_credentials = google.oauth2.credentials.Credentials(
        token=None,
        refresh_token="refresh",
        client_id="client",
        client_secret="secret",
        token_uri=f"http://{proxy}/oauth2/token",
    )
    return GoogleCredentials(user_credentials)


@pytest.mark.parametrize("lifetime,refreshes", [(3600, 1), (30, 2)], ids=["long-lived", "expiring"])
def test_bearer_challenge_with_google_access_tokens(
    fresh_registry: Registry, suite_build: BuiltSuite, lifetime: int, refreshes: int
) -> None:
    rules = ProxyRules(bearer=True, token_lifetime=lifetime)
    with registry_proxy(fresh_registry.host, rules) as proxy:
        credentials = google_credentials(proxy)
        clients = Clients(retry=FAST_RETRY, credentials=lambda host: credentials)
        publisher = RegistryPublisher(RegistryAddress.parse(f"{proxy}/suite"), clients.registry(proxy))
        publisher.publish(suite_build.images, TAG)
    assert fresh_registry.digest("suite/nginx-lua", TAG) == suite_build.image("nginx-lua").digest
    if refreshes == 1:
        assert len(rules.google_tokens) == 1  # reused while valid
    else:
        assert len(rules.google_tokens) >= refreshes  # refreshed before it expires
    assert not any(token in value for token in rules.google_tokens for value in rules.seen_authorization)


def test_a_refused_token_never_appears_in_the_error(fresh_registry: Registry, suite_build: BuiltSuite) -> None:
    rules = ProxyRules(bearer=True)
    with registry_proxy(fresh_registry.host, rules) as proxy:
        credentials = google_credentials(proxy)
        credentials.get()
        rules.google_tokens.clear()  # the fake token endpoint forgets: the registry refuses the token
        clients = Clients(retry=FAST_RETRY, credentials=lambda host: credentials)
        with pytest.raises(PublishError, match="refused Google application default credentials") as error:
            RegistryPublisher(RegistryAddress.parse(f"{proxy}/suite"), clients.registry(proxy)).publish(
                suite_build.images, TAG
            )
    assert "ya29" not in str(error.value)


def test_a_base_from_a_registry_is_pulled_by_digest_and_its_layers_mounted(
    tmp_path: Path, fresh_registry: Registry, suite_build: BuiltSuite, source_repo: Path
) -> None:
    host = fresh_registry.host
    clients = Clients(retry=FAST_RETRY)
    RegistryPublisher(RegistryAddress.parse(f"{host}/bases"), clients.registry(host)).publish(
        [suite_build.image("authorisation")], TAG
    )
    base = f"{host}/bases/authorisation@{suite_build.image('authorisation').digest}"
    checkout = clone(source_repo, tmp_path / "suite")
    rebased = build_suite(checkout, tmp_path / "store", clients, bases={"python": base})
    person = rebased.image("person")
    assert person.layers[:3] == suite_build.image("authorisation").layers  # base, deps, app of the base image
    published, traffic = publish(host, rebased, Clients(retry=FAST_RETRY))
    assert fresh_registry.digest("suite/person", TAG) == person.digest
    assert traffic.blobs_mounted >= 3


def test_a_missing_or_unpinned_base_is_one_clear_error(
    tmp_path: Path, fresh_registry: Registry, source_repo: Path
) -> None:
    checkout = clone(source_repo, tmp_path / "suite")
    missing = f"{fresh_registry.host}/bases/python@sha256:{'0' * 64}"
    with pytest.raises(BuildError, match="is not in its registry"):
        build_suite(checkout, tmp_path / "store", bases={"person": missing})
    with pytest.raises(ConfigError, match="not pinned by digest"):
        build_suite(checkout, tmp_path / "store", bases={"python": "python:3.11-slim"})


def test_a_token_realm_on_another_host_is_never_sent_the_credentials(
    fresh_registry: Registry, suite_build: BuiltSuite
) -> None:
    """The registry names a realm on another host (here: `localhost`, which is not the 127.0.0.1 it was asked
    as): the token is asked for without the credentials, the registry refuses, and the push fails."""
    rules = ProxyRules(bearer=True)
    with registry_proxy(fresh_registry.host, rules) as proxy:
        rules.realm = f"http://localhost:{proxy.rsplit(':', 1)[1]}/token"
        credentials = google_credentials(proxy)
        clients = Clients(retry=FAST_RETRY, credentials=lambda host: credentials)
        with pytest.raises(PublishError):
            RegistryPublisher(RegistryAddress.parse(f"{proxy}/suite"), clients.registry(proxy)).publish(
                suite_build.images[:1], TAG
            )
    assert rules.seen_token_authorization and set(rules.seen_token_authorization) == {""}


@pytest.mark.parametrize(
    "realm, registry, trusted",
    [
        ("https://europe-docker.pkg.dev/v2/token", "https://europe-docker.pkg.dev/v2/", True),
        ("https://gcr.io/v2/token", "https://gcr.io/v2/", True),
        ("http://europe-docker.pkg.dev/v2/token", "https://europe-docker.pkg.dev/v2/", False),  # in clear
        ("https://auth.example.org/token", "https://registry.example.org/v2/", False),  # another host
        ("https://registry.example.org:8443/token", "https://registry.example.org/v2/", False),  # another port
        ("http://127.0.0.1:5000/token", "http://127.0.0.1:5000/v2/", True),  # the loopback registry itself
        ("http://127.0.0.1:5001/token", "http://127.0.0.1:5000/v2/", False),
        ("not a url", "https://registry.example.org/v2/", False),
    ],
)
def test_which_token_realms_are_trusted(realm: str, registry: str, trusted: bool) -> None:
    assert trusted_realm(realm, httpx.URL(registry)) is trusted
