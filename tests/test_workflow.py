"""The example CI workflow uses only commands and options that exist, and its preview and deploy jobs run as
written: their `run:` steps, in order, as one bash script, against a loopback `staging` on the real control
plane."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import httpx
import pytest
import yaml

from cli import main
from deploy.builders.store import default_cache_dir
from deploy.model.environments import load_environment
from deploy.model.images import pinning_problem
from deploy.publish.bases import BASE_NAMES
from deploy.registry.client import MANIFEST_TYPES
from tests.controlplane import KubeCluster, kubeconfig_for
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry, registry_server
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
        if words[0] != "diff":  # the job summary takes diff's text; what is kept as an artifact is JSON
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
    """The deploy job installs no debootstrap: a base staging does not pin would be built with it, as root."""
    staging = load_environment("staging", ROOT / "k8sdeploy.toml")
    for name in BASE_NAMES:
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


# -- the deploy job, run ------------------------------------------------------------------------------------

STEP_KEYS = {"name", "run", "if", "uses", "with", "env"}


SECRET = re.compile(r"^\$\{\{ secrets\.([A-Z0-9_]+) \}\}$")


def env_value(value: object, secrets: dict[str, str]) -> str:
    """An env value as the runner gives it: `${{ secrets.NAME }}` is the secret, or empty when it is not set."""
    found = SECRET.match(str(value))
    if found:
        return secrets.get(found.group(1), "")
    assert "${{" not in str(value), f"an expression this script cannot evaluate: {value}"
    return str(value)


def job_script(job: dict, secrets: dict[str, str] | None = None) -> str:
    """The job's `run:` steps as one bash script, as a runner runs them: the job's env exported (`secrets` given
    for `${{ secrets.NAME }}`), each step in a bash of its own with -eo pipefail (GitHub's default shell; -u too),
    a step skipped once one has failed unless it says `if: always()`, and the job failing when any step failed.
    `uses:` steps are left out."""
    secrets = secrets or {}
    lines = ["set -euo pipefail", "failed=0"]
    lines += [
        f"export {name}={shlex.quote(env_value(value, secrets))}" for name, value in (job.get("env") or {}).items()
    ]
    for number, step in enumerate(job["steps"]):
        assert set(step) <= STEP_KEYS, f"step {number} has keys this script does not run: {sorted(step)}"
        if "run" not in step:
            continue
        condition = step.get("if", "success()")
        assert condition in ("success()", "always()"), f"step {number}: cannot run `if: {condition}` here"
        assert "${{" not in step["run"], f"step {number}: an expression this script cannot evaluate"
        env = "".join(
            f"{name}={shlex.quote(env_value(value, secrets))} " for name, value in (step.get("env") or {}).items()
        )
        name = step.get("name") or step["run"].splitlines()[0]
        lines += [
            f"if {'true' if condition == 'always()' else '[ $failed = 0 ]'}; then",
            f"  echo {shlex.quote(f'::step {name}')} >&2",
            f"  {env}bash --noprofile --norc -euo pipefail -c {shlex.quote(step['run'])} || failed=$?",
            "fi",
        ]
    return "\n".join([*lines, 'exit "$failed"']) + "\n"


def artifact_paths(job: dict, workspace: Path, runner_temp: Path) -> list[Path]:
    """The files the job's upload-artifact steps keep: relative to the checkout, `${{ runner.temp }}` being
    `runner_temp`."""
    paths = [
        line.strip()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/upload-artifact@")
        for line in step["with"]["path"].splitlines()
        if line.strip()
    ]
    return [workspace / path.replace("${{ runner.temp }}", str(runner_temp)) for path in paths]


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def checkout_of_working_tree(dest: Path) -> Path:
    """What actions/checkout gives the job: the repository's files as they are in the working tree (tracked, and
    new ones not ignored), committed once in a fresh repository. `.venv` is the repository's own virtualenv, and
    the files `make venv` depends on are older than it, so the job's `make venv` finds it up to date: it must not
    reinstall (`pip install -e .` would point the shared virtualenv at this copy)."""
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
    (dest / ".venv").symlink_to(ROOT / ".venv")
    with (dest / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("/.venv\n")  # .gitignore's `.venv/` matches a directory, not this symlink to one
    for path in (*dest.glob("requirements/*.lock"), dest / "pyproject.toml"):  # what .venv/.installed is made from
        os.utime(path, (946684800, 946684800))  # 2000-01-01
    return dest


def runner_environment(tmp_path: Path, config: Path, runner_temp: Path, cache: Path) -> dict[str, str]:
    """A stock runner's environment, as far as the job can tell: no debootstrap on PATH (it lives in /usr/sbin
    here), an empty k8sdeploy cache (but the wheels of requirements/app.lock, which PyPI would give it), a home
    of its own, RUNNER_TEMP, and no Docker Engine (the job needs none)."""
    cache.mkdir(parents=True)
    wheels = default_cache_dir() / "deps"  # the dependency trees this machine installed from PyPI already
    if wheels.is_dir():
        (cache / "deps").symlink_to(wheels)
    runner_temp.mkdir(parents=True)
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
                'target = "kubeconfig"',
                f'kubeconfig = "{kubeconfig}"',
                'kube_context = "test"',
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


def run_job(script: str, checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=780,
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


@pytest.mark.timeout(900)
def test_the_deploy_job_runs_as_written_against_a_loopback_staging(
    kube_cluster: KubeCluster, control_plane: Cluster, tmp_path: Path
) -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    job = jobs["deploy"]
    script = job_script(job)
    checkout = checkout_of_working_tree(tmp_path / "checkout")
    installed = (ROOT / ".venv" / ".installed").stat().st_mtime
    config = tmp_path / "k8sdeploy.toml"
    with registry_server(tmp_path / "registry") as registry:
        config.write_text(
            loopback_staging(kube_cluster, kubeconfig_for(kube_cluster.cluster, tmp_path / "kubeconfig"), registry)
        )

        # Unpinned, `up` would build the Debian bases with debootstrap, which the job does not have: it fails,
        # the status step still runs (if: always()), and so does the job.
        unpinned_temp, unpinned_cache = tmp_path / "unpinned-temp", tmp_path / "unpinned-cache"
        env = runner_environment(tmp_path, config, unpinned_temp, unpinned_cache)
        assert shutil.which("debootstrap", path=env["PATH"]) is None
        unpinned = run_job(script, checkout, env)
        assert unpinned.returncode != 0, unpinned.stderr[-3000:]
        assert "debootstrap" in unpinned.stderr
        up_json, status_json = artifact_paths(job, checkout, unpinned_temp)
        failed = valid(up_json.read_text())
        assert (failed["command"], failed["result"], failed["exit_code"]) == ("up", "failed", 3)
        assert json.loads(status_json.read_text())["result"] != "ok"

        # The bases published once (from the machine's cache; debootstrap only on a machine's first run) and
        # their table pasted into the configuration: the job runs through.
        published = k8sdeploy("bases", "--registry", f"{registry.host}/bases", env="staging", config=config)
        assert published.exit_code == 0, published.stderr
        config.write_text(config.read_text() + published.stdout)
        pins = load_environment("staging", config).bases
        assert sorted(pins) == sorted(BASE_NAMES)
        assert all(re.fullmatch(rf"{registry.host}/bases/{name}@sha256:[0-9a-f]{{64}}", pins[name]) for name in pins)

        # A pull request's preview: diff in the job summary, exit 1 (changes to make) not failing the job.
        preview_temp, preview_cache = tmp_path / "preview-temp", tmp_path / "preview-cache"
        preview_env = runner_environment(tmp_path, config, preview_temp, preview_cache)
        previewed = run_job(job_script(jobs["preview"]), checkout, preview_env)
        assert previewed.returncode == 0, previewed.stderr[-5000:]
        summary = Path(preview_env["GITHUB_STEP_SUMMARY"]).read_text()
        assert "### What merging this would change in staging" in summary
        assert "create Deployment/auth-suite" in summary and "would change nothing" not in summary
        assert kube_cluster.get("deployments", "auth-suite") is None  # the preview changed nothing

        runner_temp, cache = tmp_path / "runner-temp", tmp_path / "cache"
        done = run_job(script, checkout, runner_environment(tmp_path, config, runner_temp, cache))
        assert done.returncode == 0, done.stderr[-5000:]
        assert "Nothing to be done for 'venv'" in done.stdout
        assert (ROOT / ".venv" / ".installed").stat().st_mtime == installed  # make venv did not reinstall
        up_json, status_json = artifact_paths(job, checkout, runner_temp)
        up, status = valid(up_json.read_text()), valid(status_json.read_text())
        assert (up["command"], up["result"], up["environment"]) == ("up", "ok", "staging")
        # beyond loopback a dirty checkout is refused: whatever the steps write must not land in it
        assert "dirty" not in up["version"], up["version"]
        assert up["commit"] == git(checkout, "rev-parse", "HEAD").strip()
        assert (status["result"], status["release"]) == ("ok", up["version"])
        assert status["services"] and all(service["ready"] for service in status["services"])

        # the bases came from the registry, nothing was debootstrapped, and the images are built on them
        assert not (cache / "bases").exists() and "building base" not in done.stderr
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
                promote_job = jobs["promote"]
                promote_temp, promote_cache = tmp_path / "promote-temp", tmp_path / "promote-cache"
                promote_env = runner_environment(tmp_path, config, promote_temp, promote_cache)
                promoted = run_job(job_script(promote_job), checkout, promote_env)
                assert promoted.returncode == 0, promoted.stderr[-5000:]
                promote_json, production_status = artifact_paths(promote_job, checkout, promote_temp)
                document = valid(promote_json.read_text())
                assert (document["command"], document["result"], document["version"]) == (
                    "promote",
                    "ok",
                    up["version"],
                )
                assert document["promoted_from"]["environment"] == "staging"
                assert valid(production_status.read_text())["release"] == up["version"]
                assert deployed_digests(production) == deployed_digests(kube_cluster)
                assert "building" not in promoted.stderr
        finally:
            production.cleanup()
