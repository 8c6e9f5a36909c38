"""`doctor` for a gke environment (deploy/targets/gke/doctor.py) against the fakes of every API it reads, with
staging's example configuration and its rendered objects: one test per check and failure mode, a ready project
finding nothing, and no fake recording a write."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials

from deploy import clients
from deploy.model.doctor import Finding, failures
from deploy.model.environments import Environment, load_environment
from deploy.model.googleapis import GoogleApis
from deploy.render.objects import render
from deploy.targets.gke import permissions
from deploy.targets.gke.doctor_identity import Token, admitted, condition_for, refused_tokens
from deploy.targets.gke.doctor_sizing import Machine, allocatable
from deploy.targets.gke.kind import gke_doctor
from deploy.targets.gke.target import GkeTarget
from tests.certificates import certificate
from tests.deploy.inputs import fake_images
from tests.deploy.targets.gke.conftest import ENV, TOKEN, Cloud, readers_endpoints
from tests.deploy.targets.gke.readers import Readers
from tests.deploy.targets.kube.objects import single_pod
from tests.fakes.compute import FakeCompute
from tests.fakes.gke import FakeGke
from tests.helpers import k8sdeploy

CONFIG = Path(__file__).parents[4] / "k8sdeploy.toml"


def staging(**gke: object) -> Environment:
    """Staging as k8sdeploy.toml has it, with CI identities and `gke` settings changed."""
    environment = load_environment("staging", CONFIG)
    assert environment.gke is not None
    settings = {"machine_type": "e2-standard-2", **gke}
    return environment.model_copy(update={"gke": environment.gke.model_copy(update=settings)})


EXAMPLE = staging()
assert EXAMPLE.gke is not None and EXAMPLE.gke.ci is not None and EXAMPLE.gke.ci.deploy and EXAMPLE.gke.ci.preview
PROJECT, NODES, CI = EXAMPLE.gke.project, EXAMPLE.gke.node_service_account, EXAMPLE.gke.ci
DEPLOY, PREVIEW = CI.deploy.provider, CI.preview.provider


def objects_of(environment: Environment) -> tuple[dict, ...]:
    registry = environment.registry
    return render(environment, environment.layout, fake_images(registry), "1.0.0").objects


@dataclass
class Project:
    gke: FakeGke
    compute: FakeCompute
    readers: Readers

    def apis(self) -> GoogleApis:
        return GoogleApis(
            Credentials(token=TOKEN),
            self.gke.address,
            self.compute.address,
            "http",
            poll=0.01,
            **readers_endpoints(self.readers),
        )

    def doctor(self, environment: Environment, purpose: str = "up") -> list[Finding]:
        return list(gke_doctor(environment, self.apis())(objects_of(environment), purpose))

    def writes(self) -> list[tuple[str, str]]:
        return [*self.gke.mutating_requests(), *self.compute.mutating_requests(), *self.readers.mutating_requests()]


@pytest.fixture
def project() -> Iterator[Project]:
    """A ready project for staging: no cluster yet, the APIs enabled, the providers made as docs/ say."""
    # no cluster is created: the fake GKE's endpoint is never used
    gke = FakeGke("127.0.0.1:9", b"", projects=(PROJECT,), token=TOKEN).start()
    compute = FakeCompute(projects=(PROJECT,), token=TOKEN).start()
    readers = Readers.start(TOKEN, PROJECT, accounts=(NODES,))
    readers.ready(staging())
    yield Project(gke, compute, readers)
    for fake in (gke, compute, *readers.fakes()):
        fake.stop()


def failing(findings: list[Finding], check: str) -> list[str]:
    return [f.line() for f in failures(findings) if f.check == check]


def test_a_ready_project_finds_nothing_missing_and_nothing_is_written(project: Project) -> None:
    for purpose in ("up", "diff", "promote"):
        findings = project.doctor(staging(), purpose)
        assert failures(findings) == (), "\n".join(f.line() for f in findings)
    checks = {f.check for f in findings}
    assert {"apis", "permissions", "quota", "capacity", "identity"} <= checks
    assert project.writes() == []
    assert project.readers.resource_manager.asked  # asked, not guessed


def test_a_disabled_api_is_named_with_the_command_that_enables_it(project: Project) -> None:
    project.readers.service_usage.enabled[PROJECT] -= {"container.googleapis.com", "sts.googleapis.com"}
    (line,) = failing(project.doctor(staging()), "apis")
    assert "container.googleapis.com, sts.googleapis.com" in line
    assert "gcloud services enable container.googleapis.com sts.googleapis.com --project auth-suite-staging" in line
    assert project.writes() == []


def test_service_usage_disabled_itself_is_a_finding_not_a_traceback(project: Project) -> None:
    project.readers.service_usage.disabled = True
    (line,) = failing(project.doctor(staging()), "apis")
    assert "gcloud services enable serviceusage.googleapis.com --project auth-suite-staging" in line


def test_a_missing_permission_is_named_with_a_role_that_holds_it(project: Project) -> None:
    project.readers.resource_manager.denied = {"compute.firewalls.create", "container.secrets.update"}
    (line,) = failing(project.doctor(staging()), "permissions")
    assert "compute.firewalls.create, container.secrets.update" in line
    assert "roles/compute.securityAdmin" in line and "roles/container.admin" in line
    assert project.writes() == []


def test_resource_manager_disabled_is_a_finding(project: Project) -> None:
    project.readers.resource_manager.disabled = True
    (line,) = failing(project.doctor(staging()), "permissions")
    assert "gcloud services enable cloudresourcemanager.googleapis.com" in line


def test_the_nodes_account_must_be_one_the_caller_may_act_as(project: Project) -> None:
    project.readers.iam.act_as_denied = {NODES}
    (line,) = failing(project.doctor(staging()), "permissions")
    assert NODES in line and "roles/iam.serviceAccountUser" in line


def test_the_preview_is_asked_only_for_reads(project: Project) -> None:
    project.doctor(staging(), "diff")
    asked = {p for request in project.readers.resource_manager.asked for p in request}
    assert asked and not any(p.rsplit(".", 1)[1] in ("create", "update", "delete", "actAs") for p in asked)
    assert not any(p.startswith("container.secrets.") for p in asked)  # Secrets it may not read go uncompared


def test_creating_permissions_are_asked_only_while_there_is_no_cluster(project: Project) -> None:
    environment = staging()
    needed = {use.permission for use in permissions.needed("up", objects_of(environment), True, True)}
    existing = {use.permission for use in permissions.needed("up", objects_of(environment), False, True)}
    assert needed - existing == {"container.clusters.create", "container.operations.get"}


def test_a_quota_shortfall_names_the_metric_the_region_the_need_and_the_headroom(project: Project) -> None:
    project.compute.region_quotas["europe-west1"]["CPUS"] = [24.0, 23.0]
    project.compute.region_quotas["europe-west1"]["IN_USE_ADDRESSES"] = [8.0, 7.0]
    lines = failing(project.doctor(staging()), "quota")
    assert len(lines) == 2
    assert (
        "CPUS in europe-west1: the cluster needs 2 (1 x e2-standard-2 x 1 zone(s) = 1 node(s), 2 vCPUs each)"
        in lines[0]
    )
    assert "23 of 24 used, 1 free: 1 short" in lines[0]
    assert "IN_USE_ADDRESSES in europe-west1: the cluster needs 2" in lines[1]


def test_a_regional_cluster_counts_its_nodes_in_every_zone(project: Project) -> None:
    project.gke.locations.add("europe-west1")
    project.compute.region_quotas["europe-west1"]["SSD_TOTAL_GB"] = [500.0, 0.0]
    environment = staging(location="europe-west1", node_count=2)
    (line,) = failing(project.doctor(environment), "quota")
    assert "SSD_TOTAL_GB in europe-west1: the cluster needs 600 (6 boot disk(s) of 100 GB pd-balanced)" in line


def test_no_quota_is_asked_of_a_cluster_that_exists(project: Project) -> None:
    project.gke.clusters[(PROJECT, "europe-west1-b", "ms-auth")] = {"name": "ms-auth", "status": "RUNNING"}
    project.compute.region_quotas["europe-west1"]["CPUS"] = [24.0, 24.0]
    findings = project.doctor(staging())
    assert failing(findings, "quota") == []
    assert any("exists" in f.message for f in findings if f.check == "quota")


def test_staging_on_one_e2_small_cannot_hold_the_suite_beside_gkes_system_pods(project: Project) -> None:
    (line,) = failing(project.doctor(staging(machine_type="e2-small")), "capacity")
    assert "e2-small x 1: 940m CPU / 1.4 GiB allocatable each" in line
    assert "GKE's system pods about 795m / 706 MiB" in line
    assert "e2-standard-2: 1930m / 6.1 GiB" in line


def test_an_unknown_machine_type_is_named(project: Project) -> None:
    (line,) = failing(project.doctor(staging(machine_type="e2-huge-96")), "capacity")
    assert "zone europe-west1-b has no machine type e2-huge-96" in line


def test_allocatable_follows_gkes_documented_reservations() -> None:
    # plan-node-sizes: n1-standard-1 (1 vCPU, 3.75 GiB): 940m; 3840 - 25% - 100 MiB eviction
    assert allocatable(Machine("n1-standard-1", 1, 3840)) == (940, 2780)
    # 4 vCPUs: 6% + 1% + 2 x 0.5% = 80m reserved; 16 GiB: 1024 + 819.2 + 819.2 reserved, 100 eviction
    assert allocatable(Machine("e2-standard-4", 4, 16384)) == (3920, 13621)


def test_a_missing_provider_is_named(project: Project) -> None:
    project.readers.iam.providers.pop(DEPLOY)
    (line,) = failing(project.doctor(staging()), "identity")
    assert "no workload identity provider" in line and "providers create-oidc staging-deploy" in line


def test_a_provider_without_a_condition_admits_every_repository(project: Project) -> None:
    project.readers.iam.providers[PREVIEW].pop("attributeCondition")
    (line,) = failing(project.doctor(staging()), "identity")
    assert "admits every repository on GitHub" in line
    assert "--attribute-condition=\"assertion.repository == 'my-org/k8sdeploy' && assertion.environment" in line


@pytest.mark.parametrize(
    ("condition", "admits"),
    [
        ("assertion.repository_owner == 'my-org'", "another repository (my-org/k8sdeploy-other)"),
        ("assertion.repository.endsWith('/k8sdeploy')", "another repository (my-org-fork/k8sdeploy)"),
        ("assertion.repository == 'my-org/k8sdeploy'", "the preview job's environment staging-preview"),
        (
            "assertion.repository == 'my-org/k8sdeploy' && assertion.environment == 'staging' "
            "&& assertion.event_name == 'push'",
            "another branch (refs/heads/feature)",
        ),
        (
            "assertion.repository == 'my-org/k8sdeploy' && assertion.environment == 'staging' "
            "&& assertion.ref == 'refs/heads/main'",
            "a pull_request event",
        ),
    ],
)
def test_a_condition_that_admits_another_job_is_named(project: Project, condition: str, admits: str) -> None:
    project.readers.iam.providers[DEPLOY]["attributeCondition"] = condition
    lines = failing(project.doctor(staging()), "identity")
    assert any(f"deploy: provider {DEPLOY} admits {admits}" in line for line in lines), lines


def test_a_condition_that_refuses_this_job_is_named(project: Project) -> None:
    provider = project.readers.iam.providers[DEPLOY]
    provider["attributeCondition"] = "assertion.repository == 'my-org/k8sdeploy' && assertion.job_workflow_ref == 'x'"
    (line,) = failing(project.doctor(staging()), "identity")
    assert "refuses this job's token (my-org/k8sdeploy, environment staging, refs/heads/main, push)" in line


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"state": "DELETED"}, "is DELETED"),
        ({"disabled": True}, "is disabled"),
        ({"oidc": {"issuerUri": "https://gitlab.com"}}, "trusts issuer https://gitlab.com"),
        ({"attributeMapping": {"attribute.repository": "assertion.repository"}}, "maps no google.subject"),
    ],
)
def test_a_provider_that_cannot_serve_is_named(project: Project, change: dict, said: str) -> None:
    project.readers.iam.providers[DEPLOY].update(change)
    lines = failing(project.doctor(staging()), "identity")
    assert any(said in line for line in lines), lines


def test_a_provider_the_caller_may_not_read_is_a_finding(project: Project) -> None:
    project.readers.iam.denied = {"iam.workloadIdentityPoolProviders.get"}
    lines = failing(project.doctor(staging()), "identity")
    assert len(lines) == 2 and all("roles/iam.workloadIdentityPoolViewer" in line for line in lines)


def test_the_suggested_condition_admits_exactly_its_job() -> None:
    for job, identity in (("deploy", CI.deploy), ("preview", CI.preview)):
        assert identity is not None
        provider = {
            "attributeMapping": {"google.subject": "assertion.sub"},
            "attributeCondition": condition_for(CI, identity),
        }
        assert admitted(provider, Token.of(CI, identity))
        refused = refused_tokens(CI, job, identity)
        assert refused and not any(admitted(provider, token) for _, token in refused)


def test_a_claim_the_token_lacks_refuses_it() -> None:
    provider = {
        "attributeMapping": {"google.subject": "assertion.sub"},
        "attributeCondition": "assertion.missing == 'x'",
    }
    assert not admitted(provider, Token.of(CI, CI.deploy))


def test_the_preview_is_asked_exactly_the_permissions_docs_give_it() -> None:
    """docs/targets.md "The preview's permissions" lists the custom role's permissions in a text block."""
    text = (CONFIG.parent / "docs" / "targets.md").read_text()
    section = text[text.index("## The preview's permissions") :]
    block = section[section.index("```text") + len("```text") : section.index("```", section.index("```text") + 7)]
    documented = set(block.split())
    asked = {use.permission for use in permissions.needed("diff", objects_of(EXAMPLE), True, True)}
    assert asked == documented


VERBS = {"create": "create", "patch": "update", "update": "update", "delete": "delete", "deletecollection": "delete"}


def used(cloud: Cloud, since: object) -> set[str]:
    """The permissions the fakes checked, and the writes the API server logged as GKE's IAM names them."""
    iam_names = {name.lower(): name for name in permissions.RESOURCES.values()} | {"leases": "leases"}
    writes = {
        f"container.{iam_names[line.split()[1].split('/')[0]]}.{VERBS[line.split()[0]]}"
        for line in cloud.kube.mutations(since, user="google-user")  # type: ignore[arg-type]
    }
    checked = {*cloud.gke.asked_permissions, *cloud.compute.asked_permissions}
    cloud.gke.asked_permissions.clear()
    cloud.compute.asked_permissions.clear()
    return checked | writes


def test_the_table_holds_every_permission_the_gke_target_uses(cloud: Cloud, target: GkeTarget) -> None:
    """up, diff and down against the fakes and the real API server: each permission the fakes checked and each
    write the API server logged is in the table's list for that command (a new call without its row fails)."""
    objects = single_pod(ENV)
    for command, run in (
        ("up", lambda: target.apply(objects)),
        ("diff", lambda: target.diff(objects)),
        ("down", lambda: target.down()),
    ):
        since = cloud.kube.mark()
        run()
        listed = {use.permission for use in permissions.needed(command, objects, True, False)}
        assert used(cloud, since) - listed == set(), command


def test_doctor_on_the_command_line_exits_0_on_a_ready_project_and_11_naming_what_is_missing(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`k8sdeploy doctor --env staging` of the example, made ready: a key pair of its own, real base digests and
    the TLS certificate for its host given; then the example as shipped (placeholders). No fake takes a write."""
    monkeypatch.setattr(clients, "google_apis", project.apis)
    monkeypatch.delenv("K8SDEPLOY_SIGNING_KEY", raising=False)
    assert k8sdeploy("keygen", "--prefix", str(tmp_path / "staging")).exit_code == 0
    made = certificate(tmp_path / "tls", dns_name="staging.auth.example.org")
    ready = CONFIG.read_text().replace(
        'verify = { key = "staging.pub" }', f'verify = {{ key = "{tmp_path / "staging.pub"}" }}'
    )
    ready = ready.replace("sha256:" + "0" * 63 + "1", "sha256:" + "ab" * 32).replace("0" * 63 + "2", "cd" * 32)
    (tmp_path / "ready.toml").write_text(ready)
    environ = {
        "K8SDEPLOY_SIGNING_KEY": (tmp_path / "staging.key").read_text(),
        "K8SDEPLOY_TLS_CERT": (made / "tls.crt").read_text(),
        "K8SDEPLOY_TLS_KEY": (made / "tls.key").read_text(),
    }
    done = k8sdeploy("doctor", env="staging", config=tmp_path / "ready.toml", environ=environ)
    assert done.exit_code == 0, done.stdout + done.stderr
    checks = {line.split(":")[0] for line in done.stdout.splitlines()}
    assert checks >= {f"ok   {name}" for name in ("config", "bases", "keys", "tls", "apis", "permissions", "identity")}

    shipped = k8sdeploy("doctor", env="staging", config=CONFIG)
    assert shipped.exit_code == 11, shipped.stdout + shipped.stderr
    failed = {line.split(":")[0].split()[1] for line in shipped.stdout.splitlines() if line.startswith("FAIL")}
    assert {"bases", "keys", "tls"} <= failed
    assert "is not ready for `up`" in shipped.stderr
    assert project.writes() == []
