"""Each cloud failure ends in one message naming what to fix, with exit code 8 (2 for configuration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import clients
from deploy.model.errors import CloudError, CredentialsError, QuotaError
from deploy.targets.gke.kind import gke_target
from tests.deploy.targets.gke.conftest import ENV, Cloud, config_file, environment
from tests.deploy.targets.kube.objects import single_pod
from tests.helpers import k8sdeploy


def failure(cloud: Cloud, **settings: str) -> CloudError:
    target = gke_target(environment(cloud.namespace, **settings), lambda _line: None, cloud.apis())
    with pytest.raises(CloudError) as caught:
        target.apply(single_pod(ENV))
    assert caught.value.exit_code == 8
    return caught.value


def test_unknown_project(cloud: Cloud) -> None:
    assert str(failure(cloud, project="nosuch")) == (
        "project 'nosuch' does not exist or these credentials cannot see it; "
        "set project in [environments.staging-test.gke] to an existing project id"
    )


def test_unknown_zone(cloud: Cloud) -> None:
    assert str(failure(cloud, location="europe-west1-q")) == (
        "GKE has no location 'europe-west1-q' in project 'my-project'; set location in "
        "[environments.staging-test.gke] to a zone (europe-west1-b) or a region (europe-west1)"
    )


@pytest.mark.parametrize("api", ["gke", "compute"])
def test_an_api_not_enabled_names_the_api_to_enable(cloud: Cloud, api: str) -> None:
    fake = cloud.gke if api == "gke" else cloud.compute
    fake.disabled = True  # compute: the cluster is created, then opening the firewall fails
    message = str(failure(cloud))
    assert message.startswith(f"{fake.service} is not enabled in project 'my-project' (while ")
    assert message.endswith(
        f"enable it: gcloud services enable {fake.service} --project my-project (or in the "
        "console's API library), wait a minute, and run again"
    )


def test_permission_denied(cloud: Cloud) -> None:
    cloud.gke.denied.add("container.clusters.create")
    assert str(failure(cloud)) == (
        "permission denied while creating cluster ms-auth: Required 'container.clusters.create' permission for "
        "'projects/my-project'.; grant the credentials' account roles/container.admin and "
        "roles/compute.securityAdmin on project my-project"
    )


def test_failed_cluster_operation(cloud: Cloud) -> None:
    cloud.gke.fail_next = 'Insufficient regional quota to satisfy request: resource "CPUS"'
    message = str(failure(cloud))
    assert message.startswith(
        "creating cluster ms-auth failed: Insufficient regional quota to satisfy request: "
        'resource "CPUS"; GKE deletes the failed cluster; fix that (quota, permissions or '
        "[environments.staging-test.gke]) and run again; operation operation-1-create_cluster"
    )


def test_failed_firewall_operation(cloud: Cloud) -> None:
    cloud.compute.fail_next = "Quota 'FIREWALLS' exceeded.  Limit: 100.0 globally."
    assert str(failure(cloud)).startswith(
        "opening the gateway's ports in firewall rule "
        "k8sdeploy-ms-auth-staging-test-gateway failed: Quota 'FIREWALLS' exceeded."
    )


def test_rejected_token(cloud: Cloud) -> None:
    target = gke_target(environment(cloud.namespace), lambda _line: None, cloud.apis(token="expired"))
    with pytest.raises(
        CredentialsError,
        match=r"^no usable Google credentials while looking for cluster ms-auth "
        r"\(The credentials do not contain the necessary fields need to "
        r"refresh the access token.*\); set GOOGLE_APPLICATION_CREDENTIALS",
    ):
        target.status()


def test_missing_credentials_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/gcloud/application_default_credentials.json
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # not on a GCE VM: do not ask a metadata server
    result = k8sdeploy("status", env=ENV, config=config_file(tmp_path / "k.toml"))
    assert result.exit_code == 8
    assert result.stderr.startswith("error: no Google credentials found (")
    assert result.stderr.rstrip().endswith(
        "; set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or "
        "run where workload identity or application default credentials are "
        "set up)"
    )


def test_status_and_down_through_the_cli(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients, "google_apis", cloud.apis)
    config = str(config_file(tmp_path / "k.toml", cloud.namespace))
    gke_target(environment(cloud.namespace), lambda _line: None, cloud.apis()).apply(single_pod(ENV))
    cloud.controller.wait_idle()
    result = k8sdeploy("status", env=ENV, config=config)
    assert result.exit_code in (0, 5) and "cluster ms-auth in europe-west1-b: RUNNING" in result.stderr
    assert result.stdout.splitlines()[0].split() == ["SERVICE", "VERSION", "DIGEST", "READY", "REASON"]
    kept = k8sdeploy("down", "--yes", "--keep-cluster", env=ENV, config=config)
    assert kept.exit_code == 0, kept.stderr
    assert "removed Service/gateway" in kept.stdout and "cluster" not in kept.stdout
    assert cloud.gke.clusters and cloud.compute.everything() == []
    gone = k8sdeploy("down", "--yes", env=ENV, config=config)
    assert gone.stdout == "removed cluster ms-auth\n" and cloud.gke.clusters == {}
    again = k8sdeploy("down", "--yes", env=ENV, config=config)
    assert again.exit_code == 0 and again.stdout == "" and "nothing of environment" in again.stderr
    local = k8sdeploy("down", "--yes", "--keep-cluster", env=ENV.replace("staging", "x"), config=config)
    assert local.exit_code == 2


def test_up_without_a_node_account_is_refused_before_google_is_asked(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes made with no account named would pull as the Compute Engine default account, which may have no
    roles: `up` stops with exit 2 naming the account to create and its roles, before any request to Google."""
    monkeypatch.setattr(clients, "google_apis", cloud.apis)
    config = config_file(tmp_path / "k.toml", cloud.namespace, node_service_account="")
    result = k8sdeploy("up", env=ENV, config=config)
    assert result.exit_code == 2, result.stderr
    assert "sets no node_service_account" in result.stderr
    assert (
        "create k8sdeploy-nodes@my-project.iam.gserviceaccount.com, grant it roles/artifactregistry.reader, "
        "roles/logging.logWriter, roles/monitoring.metricWriter on project my-project" in result.stderr
    )
    assert cloud.gke.requests == [] and cloud.compute.requests == []


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("cluster", "Auth_Suite", "is not a GKE cluster name"),
        ("cluster", "a" * 41, "is not a GKE cluster name"),
        ("project", "My Project", "is not a project id"),
        ("network", "my_vpc", "is not a Compute network"),
        ("node_service_account", "nodes@example.com", "is not a service account's e-mail address"),
    ],
)
def test_names_google_refuses_are_refused_when_the_configuration_is_read(
    tmp_path: Path, setting: str, value: str, said: str
) -> None:
    result = k8sdeploy("status", env=ENV, config=config_file(tmp_path / "k.toml", **{setting: value}))
    assert result.exit_code == 2 and said in result.stderr and f"gke.{setting}" in result.stderr


def test_a_quota_short_create_is_a_quota_error_naming_the_metric_and_region(cloud: Cloud) -> None:
    """GKE refuses a create beyond a regional quota at once, 403 before any operation (before: "permission denied
    ...; grant the credentials' account roles/container.admin", which would not have helped)."""
    cloud.gke.quota.limits["CPUS"] = 1.0  # one e2-small node needs 2
    error = failure(cloud)
    assert isinstance(error, QuotaError)
    message = str(error)
    assert message.startswith(
        "quota CPUS of project 'my-project' in region europe-west1 is too small while creating cluster ms-auth: the "
        "request needs 2 and is short by 1; ask for more CPUS in region europe-west1"
    )
    assert "1 node of e2-small" in message
    assert "role" not in message and "grant" not in message and "permission" not in message
    assert cloud.gke.clusters == {} and cloud.gke.operations == {}


def test_a_regional_clusters_nodes_count_in_every_zone(cloud: Cloud) -> None:
    """initialNodeCount is per zone: production's example (2 x e2-standard-2 in europe-west1) is 6 nodes, whose
    600 GB of pd-balanced boot disks a new project's 500 GB of SSD_TOTAL_GB does not cover."""
    settings = {"location": "europe-west1", "machine_type": "e2-standard-2", "node_count": 2}
    target = gke_target(environment(cloud.namespace, **settings), lambda _line: None, cloud.apis())
    with pytest.raises(QuotaError) as caught:
        target.apply(single_pod(ENV))
    assert caught.value.exit_code == 8
    assert str(caught.value).startswith(
        "quota SSD_TOTAL_GB of project 'my-project' in region europe-west1 is too small while creating cluster "
        "ms-auth: the request needs 600 and is short by 100; "
    )
    assert "6 nodes (2 per zone x 3 zones) of e2-standard-2" in str(caught.value)


def test_a_create_gke_refuses_as_invalid_names_its_reason(cloud: Cloud) -> None:
    message = str(failure(cloud, machine_type="e2-nosuch"))
    assert message.startswith(
        'creating cluster ms-auth failed: 400 Machine type "e2-nosuch" is not available in location "europe-west1-b".'
    )
    assert cloud.gke.operations == {}
