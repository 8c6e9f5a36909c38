"""One job of a GitHub Actions workflow run here as a hosted runner runs it: step by step, each `run:` step in a bash
of its own, and each `uses:` action replaced by a stand-in that does to the workspace and the job's environment
what that action's documentation and source say it does (files written, variables exported, paths added), so
that what the actions leave behind meets the `run:` steps as it would on GitHub.

What the runner does between steps (https://docs.github.com/en/actions/reference/workflows-and-actions/
workflow-commands "Setting an environment variable", "Adding a system path"): lines appended to $GITHUB_ENV
(`NAME=value`, or `NAME<<DELIMITER` ... `DELIMITER`) become variables of every later step, lines of $GITHUB_PATH
are put in front of PATH; a `run:` step runs as `bash --noprofile --norc -eo pipefail {0}` (the default shell,
https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#jobsjob_idstepsshell) in
`working-directory` (the step's, else the job's `defaults.run`), relative to $GITHUB_WORKSPACE; once a step has
failed, the later ones run only with `if: always()`; the job fails when a step did; actions' post steps run at
the end, in reverse order.
"""

from __future__ import annotations

import json
import re
import secrets as random_hex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
STEP_KEYS = {"name", "run", "if", "uses", "with", "env", "working-directory"}


@dataclass
class Context:
    """What `${{ }}` expressions of the job may name: secrets, repository variables and the runner's temp."""

    secrets: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    runner_temp: str = ""

    def evaluate(self, text: object) -> str:
        """`text` with each `${{ secrets.X }}`, `${{ vars.X }}` and `${{ runner.temp }}` replaced as the runner
        does (an unset secret or variable is empty); any other expression is refused, not guessed."""

        def value(match: re.Match) -> str:
            expression = match.group(1)
            if expression == "runner.temp":
                return self.runner_temp
            scope, _, name = expression.partition(".")
            if scope in ("secrets", "vars") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                return getattr(self, scope).get(name, "")
            raise AssertionError(f"an expression this runner cannot evaluate: {match.group(0)}")

        return EXPRESSION.sub(value, str(text))


@dataclass
class Step:
    """One step's outcome."""

    name: str
    code: int
    skipped: bool = False


@dataclass
class JobRun:
    """A job's run: its steps, their output, what its artifact steps kept, and where it ran."""

    workspace: Path
    env: dict[str, str]
    steps: list[Step] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    artifacts: dict[str, list[Path]] = field(default_factory=dict)
    posts: list[Callable[[], None]] = field(default_factory=list)

    @property
    def returncode(self) -> int:
        return next((step.code for step in self.steps if step.code), 0)

    @property
    def failed(self) -> bool:
        return self.returncode != 0


# -- the actions' stand-ins ---------------------------------------------------------------------------------

Action = Callable[[JobRun, dict[str, str]], int]


def checkout(source: Path, prepare: Callable[[Path], None] = lambda path: None) -> Action:
    """actions/checkout (its action.yml): the repository cloned into `path`, "Relative path under
    $GITHUB_WORKSPACE to place the repository" (default: the workspace itself), with `fetch-depth` commits (default
    1; 0 for all history and tags). `source` stands in for GitHub's copy of the repository; `prepare` for what the
    hosted runner has beside it (the tests' virtualenv)."""

    def run(job: JobRun, inputs: dict[str, str]) -> int:
        target = (job.workspace / inputs.get("path", "")).resolve()
        assert target == job.workspace or job.workspace in target.parents, "checkout's path leaves the workspace"
        depth = int(inputs.get("fetch-depth", "1"))
        shallow = ["--depth", str(depth)] if depth else []
        target.mkdir(parents=True, exist_ok=True)
        cloned = subprocess.run(
            ["git", "clone", "--quiet", *shallow, f"file://{source}", str(target)], capture_output=True, text=True
        )
        job.stderr += cloned.stderr
        if cloned.returncode == 0:
            prepare(target)
        return cloned.returncode

    return run


def setup_python(job: JobRun, inputs: dict[str, str]) -> int:
    """actions/setup-python (src/find-python.ts): the asked version's directory and its bin/ put on PATH, and
    pythonLocation, Python_ROOT_DIR, Python2_ROOT_DIR, Python3_ROOT_DIR and PKG_CONFIG_PATH exported. Here the
    machine's own Python of that version stands in for the tool cache's; nothing is written to the workspace."""
    wanted = inputs.get("python-version", "")
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wanted != have:
        job.stderr += f"setup-python stand-in: this machine has Python {have}, not {wanted}\n"
        return 1
    home = Path(sys.base_prefix)
    append(job.env["GITHUB_PATH"], [str(home), str(home / "bin")])
    exported = {
        name: str(home) for name in ("pythonLocation", "Python_ROOT_DIR", "Python2_ROOT_DIR", "Python3_ROOT_DIR")
    }
    append(job.env["GITHUB_ENV"], [f"{name}={value}" for name, value in exported.items()])
    append(job.env["GITHUB_ENV"], [f"PKG_CONFIG_PATH={home / 'lib' / 'pkgconfig'}"])
    return 0


def google_auth(write_credentials_file: bool = True) -> Action:
    """google-github-actions/auth v2 (src/main.ts at the pinned commit; its action.yml): with
    `workload_identity_provider` it needs the job's OIDC token (`permissions: id-token: write`, which makes the
    runner inject ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN); unless `create_credentials_file: false` it writes an
    external_account credentials file `gha-creds-<16 hex>.json` into $GITHUB_WORKSPACE ("We explicitly and
    intentionally export to GITHUB_WORKSPACE instead of RUNNER_TEMP"), and unless `export_environment_variables:
    false` exports CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE, GOOGLE_APPLICATION_CREDENTIALS and GOOGLE_GHA_CREDS_PATH
    naming it, and the project (from the service account's address) as CLOUDSDK_CORE_PROJECT, CLOUDSDK_PROJECT,
    GCLOUD_PROJECT, GCP_PROJECT and GOOGLE_CLOUD_PROJECT; its post step removes the file (`cleanup_credentials`).
    `write_credentials_file=False` leaves the file out (what this stand-in did not model before)."""

    def run(job: JobRun, inputs: dict[str, str]) -> int:
        provider, account = inputs.get("workload_identity_provider", ""), inputs.get("service_account", "")
        if not provider:
            job.stderr += (
                'auth: the workflow must specify exactly one of "workload_identity_provider" or "credentials_json"\n'
            )
            return 1
        if not job.env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
            job.stderr += (
                "auth: GitHub Actions did not inject $ACTIONS_ID_TOKEN_REQUEST_TOKEN or $ACTIONS_ID_TOKEN_REQUEST_URL\n"
            )
            return 1
        exported: dict[str, str] = {}
        if inputs.get("create_credentials_file", "true") == "true" and write_credentials_file:
            path = job.workspace / f"gha-creds-{random_hex.token_hex(8)}.json"
            path.write_text(json.dumps(external_account(provider, account, job.env)))
            path.chmod(0o600)
            exported |= dict.fromkeys(
                ("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH"),
                str(path),
            )
            if inputs.get("cleanup_credentials", "true") == "true":
                job.posts.append(lambda: path.unlink(missing_ok=True))
        project = inputs.get("project_id") or account.partition("@")[2].removesuffix(".iam.gserviceaccount.com")
        if project:
            exported |= dict.fromkeys(
                ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT", "GOOGLE_CLOUD_PROJECT"),
                project,
            )
        if inputs.get("export_environment_variables", "true") == "true":
            append(job.env["GITHUB_ENV"], [f"{name}={value}" for name, value in exported.items()])
        return 0

    return run


def external_account(provider: str, account: str, env: Mapping[str, str]) -> dict:
    """The credentials file the action writes for workload identity federation
    (src/client/workload_identity_federation.ts createCredentialsFile)."""
    audience = f"//iam.googleapis.com/{provider}"
    document: dict = {
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {
            "url": f"{env['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience=https://iam.googleapis.com/{provider}",
            "headers": {"Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"},
            "format": {"type": "json", "subject_token_field_name": "value"},
        },
    }
    if account:
        document["service_account_impersonation_url"] = (
            f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{account}:generateAccessToken"
        )
    return document


def upload_artifact(job: JobRun, inputs: dict[str, str]) -> int:
    """actions/upload-artifact v4 (action.yml): the files of `path` (one per line; relative to the workspace) kept
    under `name`; with `if-no-files-found` warn (the default) a missing file is a warning, with error a failure."""
    paths = [job.workspace / line.strip() for line in inputs["path"].splitlines() if line.strip()]
    found = [path for path in paths if path.is_file()]
    if not found:
        job.stderr += f"upload-artifact: no files were found with the provided path: {inputs['path']}\n"
        if inputs.get("if-no-files-found", "warn") == "error":
            return 1
    job.artifacts[inputs["name"]] = found
    return 0


# -- the runner -----------------------------------------------------------------------------------------------


def append(path: str, lines: list[str]) -> None:
    with open(path, "a") as file:
        file.writelines(line + "\n" for line in lines)


def exported(path: Path) -> dict[str, str]:
    """The variables a step appended to $GITHUB_ENV: NAME=value lines, and NAME<<DELIMITER blocks."""
    found: dict[str, str] = {}
    lines = iter(path.read_text().splitlines()) if path.exists() else iter(())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, _, delimiter = line.partition("<<")
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            found[name] = "\n".join(block)
        elif "=" in line:
            name, _, value = line.partition("=")
            found[name] = value
    return found


def run_job(
    job: dict,
    workspace: Path,
    env: Mapping[str, str],
    actions: Mapping[str, Action],
    context: Context,
    timeout: float = 780,
) -> JobRun:
    """Run `job` (a parsed job of the workflow) in `workspace`: `env` is the runner's environment, `actions` the
    stand-in of each action by its name (owner/repo, the part before @), `context` what expressions name."""
    workspace.mkdir(parents=True, exist_ok=True)
    temp = Path(env["RUNNER_TEMP"])
    temp.mkdir(parents=True, exist_ok=True)
    files = {name: temp / f"_{name.lower()}" for name in ("GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT")}
    for path in files.values():
        path.touch()
    base = {**env, "GITHUB_WORKSPACE": str(workspace), **{name: str(path) for name, path in files.items()}}
    if (job.get("permissions") or {}).get("id-token") == "write":  # the runner injects these only then
        base |= {
            "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.example/idtoken?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token",
        }
    base |= {name: context.evaluate(value) for name, value in (job.get("env") or {}).items()}
    directory = ((job.get("defaults") or {}).get("run") or {}).get("working-directory", "")
    result = JobRun(workspace, dict(base))
    for number, step in enumerate(job["steps"]):
        assert set(step) <= STEP_KEYS, f"step {number} has keys this runner does not run: {sorted(step)}"
        name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
        condition = step.get("if", "success()")
        assert condition in ("success()", "always()"), f"step {number}: cannot run `if: {condition}` here"
        if result.failed and condition != "always()":
            result.steps.append(Step(name, 0, skipped=True))
            continue
        step_env = {**result.env, **exported(files["GITHUB_ENV"])}
        added = [line for line in files["GITHUB_PATH"].read_text().splitlines() if line]
        step_env["PATH"] = ":".join([*reversed(added), env["PATH"]])
        step_env |= {key: context.evaluate(value) for key, value in (step.get("env") or {}).items()}
        if "uses" in step:
            action = step["uses"].partition("@")[0]
            assert action in actions, f"no stand-in for {action}"
            inputs = {key: context.evaluate(value) for key, value in (step.get("with") or {}).items()}
            job_view = JobRun(workspace, step_env, result.steps, artifacts=result.artifacts, posts=result.posts)
            code = actions[action](job_view, inputs)
            result.stderr += job_view.stderr
        else:
            assert "${{" not in step["run"], f"step {number}: an expression in a run step (use env:)"
            cwd = workspace / step.get("working-directory", directory)
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=cwd,
                env=step_env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            code = done.returncode
            result.stdout += done.stdout
            result.stderr += f"::step {name}\n" + done.stderr
        result.steps.append(Step(name, code))
    for post in reversed(result.posts):
        post()
    result.env = {**result.env, **exported(files["GITHUB_ENV"])}
    return result
