"""The example CI workflow uses only commands and options that exist, and its preview, deploy and promote jobs run
as written, step by step, with a stand-in for each action that does what the action documents
(tests/workflow_runner.py), against a loopback `staging` on the real control plane."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
import pytest
import yaml

from cli import main
from deploy.builders.store import default_cache_dir
from deploy.model.environments import load_environment
from deploy.model.images import pinning_problem
from deploy.publish.bases import BASE_NAMES, SERVER
from deploy.registry.client import MANIFEST_TYPES
from tests.controlplane import KubeCluster, kubeconfig_for
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry, registry_server
from tests.workflow_runner import Context, JobRun, checkout, google_auth, run_job, setup_python, upload_artifact
from tools.cluster.controlplane import Cluster

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "staging.yml"


def run_lines() -> list[str]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    return [
        line.strip()
        for job in jobs.values()
        for step in job["steps"]
        if "run" in step
        for line in step["run"].splitlines()
        if line.strip()
    ]


def test_every_k8sdeploy_command_of_the_workflow_parses() -> None:
    commands = [line for line in run_lines() if line.startswith(".venv/bin/k8sdeploy ")]
    assert {shlex.split(line)[1] for line in commands} >= {"up", "status", "diff"}
    for line in commands:
        words = shlex.split(line.split(">")[0])[1:]
        command = main.get_command(click.Context(main), words[0])
        assert command is not None, line
        with click.Context(main) as parent:
            command.make_context(words[0], words[1:], parent=parent)  # raises on an unknown option or choice
        if words[0] not in ("diff", "doctor"):  # diff's text goes to the summary, doctor's to the log; kept: JSON
            assert "--output" in words and words[words.index("--output") + 1] == "json", line


def test_every_make_target_of_the_workflow_exists() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    used = {line.split()[1] for line in run_lines() if line.startswith("make ")}
    assert used and used <= targets


def test_every_action_is_pinned_by_commit() -> None:
    """A tag such as v4 can be moved to other code by whoever controls the action; a commit cannot."""
    text = WORKFLOW.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for action, comment in uses:
        name, _, ref = action.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{name} is pinned to {ref!r}, not a commit"
        assert re.search(r"#\s*v\d", comment), f"{name}: say which release the commit is"


def test_staging_pins_every_debian_base_by_digest() -> None:
    """The deploy job installs no debootstrap: a base staging does not pin would be built with it, as root (the
    MariaDB server's only with database = "mysql" and no mysql_image)."""
    staging = load_environment("staging", ROOT / "k8sdeploy.toml")
    own_server = staging.database == "mysql" and not staging.mysql_image
    for name in (name for name in BASE_NAMES if name != SERVER or own_server):
        reference = staging.bases.get(name, "")
        assert not pinning_problem(reference) and not reference.startswith("debootstrap:"), (name, reference)


# -- who may do what ----------------------------------------------------------------------------------------


def workflow_jobs() -> dict[str, dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def logs_in_to_google(job: dict) -> bool:
    return any(step.get("uses", "").startswith("google-github-actions/auth@") for step in job["steps"])


def test_no_job_a_pull_request_runs_holds_the_deploy_account() -> None:
    jobs = workflow_jobs()
    never_for_a_pull_request = {
        name for name, job in jobs.items() if job.get("if", "").startswith("github.event_name != 'pull_request' &&")
    }
    assert never_for_a_pull_request == {"deploy", "promote"}
    for name, job in jobs.items():
        if name not in never_for_a_pull_request:
            for account in ("GCP_DEPLOY_SERVICE_ACCOUNT", "GCP_PRODUCTION_SERVICE_ACCOUNT", "secrets."):
                assert account not in yaml.safe_dump(job), name
    assert "GCP_PREVIEW_SERVICE_ACCOUNT" in yaml.safe_dump(jobs["preview"])
    assert jobs["preview"]["environment"] != jobs["deploy"]["environment"] == "staging"
    assert jobs["promote"]["environment"] == "production"  # its required reviewers approve each promotion
    assert "GCP_DEPLOY_SERVICE_ACCOUNT" not in yaml.safe_dump(jobs["promote"])  # staging's account stays there


def test_the_promote_job_runs_on_a_version_tag_or_by_hand_never_for_a_pull_request() -> None:
    condition = workflow_jobs()["promote"]["if"]
    assert condition == (
        "github.event_name != 'pull_request' && (startsWith(github.ref, 'refs/tags/v') || "
        "github.event_name == 'workflow_dispatch')"
    )
    assert yaml.safe_load(WORKFLOW.read_text())[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads `on` as True


def test_the_deploy_job_runs_only_on_main_and_never_for_a_pull_request() -> None:
    condition = workflow_jobs()["deploy"]["if"]
    assert condition == "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"


def test_only_jobs_that_log_in_to_google_may_ask_for_an_identity_token() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "id-token" not in workflow["permissions"]
    for name, job in workflow["jobs"].items():
        asks = (job.get("permissions") or {}).get("id-token") == "write"
        assert "permissions" in job, f"{name} states its permissions"
        assert asks == logs_in_to_google(job), name


def test_no_job_runs_pull_request_code_after_logging_in_but_diff() -> None:
    """The preview installs (the pull request's Makefile) before the login; only `k8sdeploy diff` runs after it,
    as the read-only account."""
    steps = workflow_jobs()["preview"]["steps"]
    login = next(i for i, step in enumerate(steps) if step.get("uses", "").startswith("google-github-actions/auth@"))
    assert [step.get("run") for step in steps[:login] if "run" in step] == ["make venv"]
    assert all("k8sdeploy diff" in step["run"] for step in steps[login + 1 :] if "run" in step)


def test_each_identity_has_a_provider_of_its_own_and_the_checkout_is_beside_the_credentials() -> None:
    """A provider has one attribute condition: three jobs of different trust need three (docs/ci.md). The auth
    action writes its credentials file into $GITHUB_WORKSPACE: every job that logs in checks out into a
    sub-directory and runs its steps there."""
    providers = {}
    for name, job in workflow_jobs().items():
        if not logs_in_to_google(job):
            continue
        login = next(step for step in job["steps"] if step.get("uses", "").startswith("google-github-actions/auth@"))
        provider, account = login["with"]["workload_identity_provider"], login["with"]["service_account"]
        providers[name] = provider
        assert provider.replace("WORKLOAD_IDENTITY_PROVIDER", "") == account.replace("SERVICE_ACCOUNT", ""), name
        checkout = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["path"] == job["defaults"]["run"]["working-directory"] == "src", name
    assert sorted(providers) == ["deploy", "preview", "promote"]
    assert len(set(providers.values())) == 3


# -- the jobs, run ------------------------------------------------------------------------------------------

# What the repository's settings give the jobs: a provider and an account per trust boundary (docs/ci.md).
VARS = {
    "GCP_PREVIEW_WORKLOAD_IDENTITY_PROVIDER": "projects/111111111111/locations/global/workloadIdentityPools/github/"
    "providers/staging-preview",
    "GCP_PREVIEW_SERVICE_ACCOUNT": "k8sdeploy-preview@auth-suite-staging.iam.gserviceaccount.com",
    "GCP_DEPLOY_WORKLOAD_IDENTITY_PROVIDER": "projects/111111111111/locations/global/workloadIdentityPools/github/"
    "providers/staging-deploy",
    "GCP_DEPLOY_SERVICE_ACCOUNT": "k8sdeploy-deploy@auth-suite-staging.iam.gserviceaccount.com",
    "GCP_PRODUCTION_WORKLOAD_IDENTITY_PROVIDER": "projects/222222222222/locations/global/workloadIdentityPools/"
    "github/providers/production-promote",
    "GCP_PRODUCTION_SERVICE_ACCOUNT": "k8sdeploy-promote@auth-suite-production.iam.gserviceaccount.com",
}


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def repository_of_working_tree(dest: Path) -> Path:
    """What GitHub holds of the repository: the files as they are in the working tree (tracked, and new ones not
    ignored), committed once in a fresh repository, which the checkout stand-in clones."""
    names = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, names):
        source, target = ROOT / name, dest / name
        if not source.is_file() and not source.is_symlink():
            continue  # deleted or moved in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "the working tree")
    return dest


def with_our_virtualenv(checkout: Path) -> None:
    """What the hosted runner would install anew, here shared: `.venv` is the repository's own virtualenv, and the
    files `make venv` depends on are older than it, so the job's `make venv` finds it up to date: it must not
    reinstall (`pip install -e .` would point the shared virtualenv at this copy)."""
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    with (checkout / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("/.venv\n")  # .gitignore's `.venv/` matches a directory, not this symlink to one
    for path in (
        *checkout.glob("requirements/*.lock"),
        checkout / "pyproject.toml",
    ):  # what .venv/.installed is made of
        os.utime(path, (946684800, 946684800))  # 2000-01-01


@dataclass
class Runner:
    """A hosted runner for the workflow's jobs: each job in a fresh workspace and temp directory, the repository
    checked out by the stand-in of actions/checkout, the Google login by the auth action's stand-in."""

    tmp_path: Path
    config: Path
    source: Path
    credentials_file: bool = True  # whether the auth stand-in writes its gha-creds-*.json, as the action does

    def run(self, name: str, label: str, event: str = "push", ref: str = "refs/heads/main") -> JobRun:
        job = workflow_jobs()[name]
        workspace, temp, cache = (self.tmp_path / label / part for part in ("workspace", "temp", "cache"))
        env = runner_environment(self.tmp_path, self.config, temp, cache) | {
            "GITHUB_EVENT_NAME": event,
            "GITHUB_REF": ref,
            "GITHUB_REF_NAME": ref.rpartition("/")[2],
        }
        actions = {
            "actions/checkout": checkout(self.source, with_our_virtualenv),
            "actions/setup-python": setup_python,
            "google-github-actions/auth": google_auth(self.credentials_file),
            "actions/upload-artifact": upload_artifact,
        }
        return run_job(job, workspace, env, actions, Context(vars=VARS, runner_temp=str(temp)))


def runner_environment(tmp_path: Path, config: Path, runner_temp: Path, cache: Path) -> dict[str, str]:
    """A stock runner's environment, as far as the job can tell: no debootstrap on PATH (it lives in /usr/sbin
    here), an empty k8sdeploy cache (but the wheels of requirements/app.lock, which PyPI would give it), a home
    of its own, RUNNER_TEMP, and no Docker Engine (the job needs none)."""
    cache.mkdir(parents=True)
    wheels = default_cache_dir() / "deps"  # the dependency trees this machine installed from PyPI already
    if wheels.is_dir():
        (cache / "deps").symlink_to(wheels)
    (tmp_path / "home").mkdir(exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_STEP_SUMMARY": str(runner_temp / "step-summary.md"),
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_REPOSITORY": "k8sdeploy/k8sdeploy",
        "GITHUB_ACTOR": "ci-bot",
        "K8SDEPLOY_CONFIG": str(config),
        "K8SDEPLOY_CACHE": str(cache),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "DOCKER_HOST": "unix:///nonexistent.sock",
    }


def loopback_staging(kube: KubeCluster, kubeconfig: Path, registry: Registry) -> str:
    """`staging` as a kubeconfig environment on the tests' control plane (KWOK runs no container: no smoke
    login), pushing to a registry on loopback."""
    return (
        "\n".join(
            [
                "[environments.staging]",
                f'kubeconfig = {{ file = "{kubeconfig}", context = "test" }}',
                f'registry = "{registry.host}/suite"',
                f'namespace = "{kube.namespace}"',
                'layout = "single-pod"',
                'service_type = "NodePort"',
                "smoke = false",
                "allow_plain_http = true",
            ]
        )
        + "\n"
    )


def manifest(registry: Registry, repository: str, reference: str) -> dict:
    answer = httpx.get(
        f"http://{registry.host}/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
    )
    answer.raise_for_status()
    return answer.json()


def loopback_production(kube: KubeCluster, kubeconfig: Path, registry: Registry) -> str:
    """`production` as another namespace of the control plane, with a registry of its own, taking staging's
    releases by `promote`."""
    return (
        loopback_staging(kube, kubeconfig, registry).replace("[environments.staging]", "[environments.production]")
        + 'promote_from = "staging"\n'
    )


def deployed_digests(kube: KubeCluster) -> dict[str, str]:
    deployment = kube.get("deployments", "auth-suite")
    return {c["name"]: c["image"].split("@")[1] for c in deployment["spec"]["template"]["spec"]["containers"]}


def artifact(run: JobRun, name: str) -> dict[str, dict]:
    """The JSON documents an upload-artifact step kept, by file name, each checked against the schema."""
    return {path.name: valid(path.read_text()) for path in run.artifacts[name]}


def test_the_auth_stand_in_does_what_the_action_documents(tmp_path: Path) -> None:
    """Its credentials file lands in the workspace root with the action's name, the variables naming it and the
    project reach the later steps, and its post step removes it; without `id-token: write` it fails."""
    job = {
        "permissions": {"id-token": "write"},
        "steps": [
            {"uses": "google-github-actions/auth@x", "with": {"workload_identity_provider": "${{ vars.P }}",
                                                              "service_account": "a@proj-1.iam.gserviceaccount.com"}},
            {"run": 'ls "$GITHUB_WORKSPACE" > "$RUNNER_TEMP/ls"; cat "$GOOGLE_APPLICATION_CREDENTIALS" > '
                    '"$RUNNER_TEMP/creds"; echo "$GOOGLE_CLOUD_PROJECT" > "$RUNNER_TEMP/project"'},
        ],
    }  # fmt: skip
    env = {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(tmp_path / "temp")}
    done = run_job(job, tmp_path / "ws", env, {"google-github-actions/auth": google_auth()}, Context(vars={"P": "pp"}))
    assert not done.failed, done.stderr
    (written,) = (tmp_path / "temp" / "ls").read_text().split()
    assert re.fullmatch(r"gha-creds-[0-9a-f]{16}\.json", written)
    assert json.loads((tmp_path / "temp" / "creds").read_text())["audience"] == "//iam.googleapis.com/pp"
    assert (tmp_path / "temp" / "project").read_text().strip() == "proj-1"
    assert list((tmp_path / "ws").iterdir()) == []  # the post step removed it
    refused = run_job({**job, "permissions": {}}, tmp_path / "ws2", {**env, "RUNNER_TEMP": str(tmp_path / "t2")},
                      {"google-github-actions/auth": google_auth()}, Context(vars={"P": "pp"}))  # fmt: skip
    assert refused.failed and "ACTIONS_ID_TOKEN_REQUEST_TOKEN" in refused.stderr


@pytest.mark.timeout(900)
def test_the_jobs_run_as_written_against_a_loopback_staging(
    kube_cluster: KubeCluster, control_plane: Cluster, tmp_path: Path
) -> None:
    """The preview, deploy and promote jobs, step by step, with the actions' stand-ins: the auth action's
    credentials file is written into the workspace as on GitHub, and the version deployed is the commit's."""
    installed = (ROOT / ".venv" / ".installed").stat().st_mtime
    config = tmp_path / "k8sdeploy.toml"
    source = repository_of_working_tree(tmp_path / "github")
    runner = Runner(tmp_path, config, source)
    with registry_server(tmp_path / "registry") as registry:
        config.write_text(
            loopback_staging(kube_cluster, kubeconfig_for(kube_cluster.cluster, tmp_path / "kubeconfig"), registry)
        )

        # Unpinned, `up` would build the Debian bases with debootstrap, which the job does not have: it fails,
        # the status step still runs (if: always()), and so does the job.
        assert shutil.which("debootstrap", path="/usr/local/bin:/usr/bin:/bin") is None
        unpinned = runner.run("deploy", "unpinned")
        assert unpinned.failed, unpinned.stderr[-3000:]
        assert "debootstrap" in unpinned.stderr
        documents = artifact(unpinned, "staging-deploy")
        failed = documents["up.json"]
        assert (failed["command"], failed["result"], failed["exit_code"]) == ("up", "failed", 3)
        assert documents["status.json"]["result"] != "ok"

        # The bases published once (from the machine's cache; debootstrap only on a machine's first run) and
        # their table pasted into the configuration: the job runs through.
        published = k8sdeploy("bases", "--registry", f"{registry.host}/bases", env="staging", config=config)
        assert published.exit_code == 0, published.stderr
        config.write_text(config.read_text() + published.stdout)
        pins = load_environment("staging", config).bases
        assert sorted(pins) == sorted(BASE_NAMES)
        assert all(re.fullmatch(rf"{registry.host}/bases/{name}@sha256:[0-9a-f]{{64}}", pins[name]) for name in pins)

        # A pull request's preview: diff in the job summary, exit 1 (changes to make) not failing the job.
        previewed = runner.run("preview", "preview", event="pull_request", ref="refs/pull/7/merge")
        assert not previewed.failed, previewed.stderr[-5000:]
        summary = Path(previewed.env["GITHUB_STEP_SUMMARY"]).read_text()
        assert "### What merging this would change in staging" in summary
        assert "create Deployment/auth-suite" in summary and "would change nothing" not in summary
        assert kube_cluster.get("deployments", "auth-suite") is None  # the preview changed nothing

        done = runner.run("deploy", "deploy")
        assert not done.failed, done.stderr[-5000:]
        assert "Nothing to be done for 'venv'" in done.stdout
        assert (ROOT / ".venv" / ".installed").stat().st_mtime == installed  # make venv did not reinstall
        # the auth action wrote its credentials file into the workspace, and exported its name to the steps
        if runner.credentials_file:
            credentials = Path(done.env["GOOGLE_APPLICATION_CREDENTIALS"])
            assert credentials.parent == done.workspace
            assert re.fullmatch(r"gha-creds-[0-9a-f]{16}\.json", credentials.name)
        documents = artifact(done, "staging-deploy")
        up, status = documents["up.json"], documents["status.json"]
        assert (up["command"], up["result"], up["environment"]) == ("up", "ok", "staging")
        # beyond loopback a dirty checkout is refused: whatever the steps write must not make it dirty
        assert "dirty" not in up["version"], up["version"]
        assert up["commit"] == git(source, "rev-parse", "HEAD").strip()
        assert (status["result"], status["release"]) == ("ok", up["version"])
        assert status["services"] and all(service["ready"] for service in status["services"])

        # the bases came from the registry, nothing was debootstrapped, and the images are built on them
        assert not (tmp_path / "deploy" / "cache" / "bases").exists() and "building base" not in done.stderr
        python = pins["python"].rpartition("@")[2]
        base_layers = [layer["digest"] for layer in manifest(registry, "bases/python", python)["layers"]]
        person = up["images"]["person"]
        image_layers = [layer["digest"] for layer in manifest(registry, "suite/person", person["digest"])["layers"]]
        assert image_layers[: len(base_layers)] == base_layers

        # A manual run of the promote job: production (another namespace, another registry) gets staging's release
        # by digest, nothing built.
        production = KubeCluster.new(control_plane, tmp_path / "production")
        try:
            with registry_server(tmp_path / "production-registry") as production_registry:
                kubeconfig = kubeconfig_for(kube_cluster.cluster, tmp_path / "kubeconfig")
                config.write_text(config.read_text() + loopback_production(production, kubeconfig, production_registry))
                promoted = runner.run("promote", "promote", event="workflow_dispatch")
                assert not promoted.failed, promoted.stderr[-5000:]
                documents = artifact(promoted, "production-promote")
                document = documents["promote.json"]
                assert (document["command"], document["result"], document["version"]) == (
                    "promote",
                    "ok",
                    up["version"],
                )
                assert document["promoted_from"]["environment"] == "staging"
                assert documents["status.json"]["release"] == up["version"]
                assert deployed_digests(production) == deployed_digests(kube_cluster)
                assert "building" not in promoted.stderr
        finally:
            production.cleanup()
