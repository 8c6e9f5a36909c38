"""Benchmark (not a test): k8sdeploy against kubectl and Helm on one real control plane, side by side in one run.

    .venv/bin/python bench/peers_bench.py      # or `make bench-peers`; about 5 minutes once kubectl and helm are built

It starts the control plane of `make cluster` (tools/cluster: the real API server, controllers and scheduler, KWOK's
nodes, a registry) on free ports of its own, builds and pushes two versions of a clone of this checkout (the second
one a one-line change of the person service), and gives each tool the same objects in a namespace of its own:
k8sdeploy renders and applies them itself (`k8sdeploy up`); kubectl and Helm get exactly what k8sdeploy applied (its
render, its Secrets, the namespace). kubectl and Helm are built from the Go modules pinned in tools/peers
(tools/peers/build.sh, cached like the control plane). Each run of a tool is, in order:

    first deploy      k8sdeploy up | kubectl apply --server-side + rollout status | helm upgrade --install --wait
    nothing changed   the same command again
    one image         the person change (a new version: k8sdeploy labels every image with it, so the objects of all
                      six images change, for each tool)
    layout switch     split-pods to single-pod (kubectl: then `delete` of the objects single-pod does not have)
    teardown          k8sdeploy down --volumes | kubectl delete namespace --wait | helm uninstall --wait and the
                      namespace deleted --wait

Each step's wall time is the median of RUNS runs (BENCH_RUNS, default 3), the tools taking turns within a run; its
writes are the mutating requests the API server's audit log holds from the tool's user for the tool's namespace
(dry runs left out), the figure of the first run. The images are built and pushed before anything is timed, so
k8sdeploy's `up` finds them in the registry (as it does in CI after `k8sdeploy build`), and the version's commit is
checked out before its step's time starts, as kubectl's and Helm's files are written before theirs. k8sdeploy's
bytecode is compiled first, as an install leaves it.
"""

from __future__ import annotations

import compileall
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.cluster.controlplane import Cluster, ControlPlane, audit_mutations  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TOOLS = ("k8sdeploy", "kubectl", "helm")
STEPS = ("first deploy", "nothing changed", "one image", "layout switch", "teardown")
ADMIN = "kubernetes-admin"  # the user of the control plane's kubeconfig, which all three tools use
OWNER = "app.kubernetes.io/managed-by=k8sdeploy,app.kubernetes.io/instance=bench"
SELF_MADE = ("k8sdeploy-users", "k8sdeploy-smoke-users")  # Secrets k8sdeploy applies beside its render


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def free_base_port() -> int:
    """A base port whose four successors are free too (the control plane takes five)."""
    for base in range(26440, 27440, 10):
        try:
            for port in range(base, base + 5):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise SystemExit("no five free ports between 26440 and 27440")


def peers() -> Path:
    """The directory of kubectl and helm, built from tools/peers when their pins changed."""
    done = subprocess.run(["bash", str(ROOT / "tools/peers/build.sh")], stdout=subprocess.PIPE, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def run(argv: Sequence[str], cwd: Path | None = None, env: dict | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(list(argv), cwd=cwd, env=env, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@dataclass(frozen=True)
class Version:
    commit: str
    record: Path  # k8sdeploy's build record of it: the images by digest


class Bench:
    def __init__(self, work: Path, cluster: Cluster, registry: str, bins: Path):
        self.work, self.cluster, self.bins = work, cluster, bins
        self.clone = work / "clone"
        self.config = self.clone / "k8sdeploy.toml"
        self.registry = registry
        self.env = {**os.environ, "HOME": str(work / "home"), "KUBECONFIG": str(cluster.kubeconfig)}
        (work / "home").mkdir()

    # -- the checkout and its two versions ---------------------------------------------------------------
    def prepare(self) -> tuple[Version, Version]:
        run(["git", "clone", "--quiet", str(ROOT), str(self.clone)])
        table = "\n".join(
            [
                "[environments.bench]",
                f'kubeconfig = {{ file = "{self.cluster.kubeconfig}" }}',
                f'registry = "{self.registry}/suite"',
                'namespace = "bench-k8sdeploy"',
                'layout = "split-pods"',
                'service_type = "NodePort"',
                'database = "sqlite"',
                "smoke = false",
                "allow_plain_http = true",
                "demo_users = true",
            ]
        )
        self.config.write_text(table + "\n")
        run(["git", "commit", "--quiet", "-am", "bench environment"], cwd=self.clone, env=self.git_env())
        first = self.build("first")
        app = self.clone / "services/person/app.py"
        app.write_text(app.read_text() + "\n# a one-line change for the bench\n")
        run(["git", "commit", "--quiet", "-am", "one-line change"], cwd=self.clone, env=self.git_env())
        second = self.build("second")
        run(["git", "checkout", "--quiet", first.commit], cwd=self.clone)
        return first, second

    def git_env(self) -> dict:
        return {**self.env, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}  # fmt: skip

    def build(self, name: str) -> Version:
        record = self.work / f"{name}.json"
        say(f"building and pushing the {name} version")
        self.k8sdeploy("build", "--record", str(record))
        commit = run(["git", "rev-parse", "HEAD"], cwd=self.clone).strip()
        return Version(commit, record)

    # -- the three tools -------------------------------------------------------------------------------
    def k8sdeploy(self, *args: str) -> str:
        k8sdeploy = ROOT / ".venv/bin/k8sdeploy"
        return run([str(k8sdeploy), *args, "--env", "bench", "--config", str(self.config)], self.clone, self.env)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return run([str(self.bins / "kubectl"), *args], env=self.env, stdin=stdin)

    def helm(self, *args: str) -> str:
        return run([str(self.bins / "helm"), *args], env=self.env)

    def objects(self, version: Version, layout: str, namespace: str) -> list[dict]:
        """What k8sdeploy applies for `version` and `layout`, in `namespace`: the namespace, k8sdeploy's render and
        the Secrets it applies beside it (the users, the parts' identity keys), read from its own namespace."""
        rendered = json.loads(
            self.k8sdeploy("render", "--layout", layout, "--format", "json", "--build-record", str(version.record))
        )["items"]
        secrets = json.loads(self.kubectl("get", "secrets", "-n", "bench-k8sdeploy", "-l", OWNER, "-o", "json"))
        names = {obj["metadata"]["name"] for obj in rendered}
        kept = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": s["metadata"]["name"], "labels": s["metadata"].get("labels", {})},
                "type": s.get("type", "Opaque"),
                "data": s.get("data", {}),
            }
            for s in secrets["items"]
            if s["metadata"]["name"] not in names
        ]
        objects = [*kept, *rendered]
        for obj in objects:
            obj["metadata"]["namespace"] = namespace
        labels = {"app.kubernetes.io/managed-by": "k8sdeploy", "app.kubernetes.io/instance": "bench",
                  "pod-security.kubernetes.io/enforce": "restricted"}  # fmt: skip
        space = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}}
        return [space, *objects]


@dataclass(frozen=True)
class Untimed:
    """A step with what must be done before it, outside its time."""

    before: Callable[[], object]
    step: Callable[[], object]


Action = Callable[[], object] | Untimed


class Steps:
    """Each tool's namespace and its five steps, each a callable, for the two versions."""

    def __init__(self, bench: Bench, first: Version, second: Version):
        self.bench, self.first, self.second = bench, first, second

    def of(self, tool: str) -> tuple[str, dict[str, Action]]:
        return getattr(self, tool.replace("-", "_"))()

    def k8sdeploy(self) -> tuple[str, dict[str, Action]]:
        bench = self.bench

        def up(version: Version, layout: str = "split-pods") -> Untimed:
            """The version checked out first, untimed: kubectl and Helm are given their files ready too."""

            def checkout() -> object:
                return run(["git", "checkout", "--quiet", version.commit], cwd=bench.clone)

            return Untimed(checkout, lambda: bench.k8sdeploy("up", "--layout", layout))

        return "bench-k8sdeploy", {
            "first deploy": up(self.first),
            "nothing changed": up(self.first),
            "one image": up(self.second),
            "layout switch": up(self.second, "single-pod"),
            "teardown": lambda: bench.k8sdeploy("down", "--volumes", "--yes"),
        }

    def kubectl(self) -> tuple[str, dict[str, Action]]:
        bench, namespace = self.bench, "bench-kubectl"
        files = {
            (version.commit, layout): json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": bench.objects(version, layout, namespace)}
            )
            for version in (self.first, self.second)
            for layout in ("split-pods", "single-pod")
        }

        def apply(version: Version, layout: str = "split-pods", after: str = "") -> Callable[[], object]:
            """`after`: the layout applied before, whose objects not in this one are deleted (kubectl's --prune does
            not work with server-side apply), claims kept as k8sdeploy keeps them."""
            wanted = json.loads(files[(version.commit, layout)])["items"]
            before = json.loads(files[(version.commit, after)])["items"] if after else []
            names = {(obj["kind"], obj["metadata"]["name"]) for obj in wanted}
            stale = [
                f"{obj['kind'].lower()}/{obj['metadata']['name']}"
                for obj in before
                if (obj["kind"], obj["metadata"]["name"]) not in names and obj["kind"] != "PersistentVolumeClaim"
            ]

            def step() -> object:
                bench.kubectl("apply", "--server-side", "-f", "-", stdin=files[(version.commit, layout)])
                if stale:
                    bench.kubectl("delete", "-n", namespace, *stale)
                return bench.kubectl("rollout", "status", "-n", namespace, "deployment,statefulset", "-l", OWNER)

            return step

        return namespace, {
            "first deploy": apply(self.first),
            "nothing changed": apply(self.first),
            "one image": apply(self.second),
            "layout switch": apply(self.second, "single-pod", after="split-pods"),
            "teardown": lambda: bench.kubectl("delete", "namespace", namespace, "--wait"),
        }

    def helm(self) -> tuple[str, dict[str, Action]]:
        bench, namespace = self.bench, "bench-helm"
        charts = {}
        for version in (self.first, self.second):
            for layout in ("split-pods", "single-pod"):
                chart = bench.work / f"chart-{version.commit[:8]}-{layout}"
                (chart / "templates").mkdir(parents=True)
                (chart / "Chart.yaml").write_text("apiVersion: v2\nname: auth-suite\nversion: 0.1.0\n")
                # the objects verbatim: Files.Get is not templated again (a {{ in a ConfigMap stays as it is)
                (chart / "templates/objects.yaml").write_text('{{ .Files.Get "objects.yaml" }}\n')
                items = [obj for obj in bench.objects(version, layout, namespace) if obj["kind"] != "Namespace"]
                (chart / "objects.yaml").write_text("\n---\n".join(json.dumps(obj) for obj in items) + "\n")
                charts[(version.commit, layout)] = chart

        def upgrade(version: Version, layout: str = "split-pods") -> Callable[[], object]:
            chart = charts[(version.commit, layout)]
            return lambda: bench.helm(
                "upgrade", "--install", "auth-suite", str(chart), "-n", namespace, "--create-namespace", "--wait",
                "--timeout", "3m",
            )  # fmt: skip

        def teardown() -> object:
            bench.helm("uninstall", "auth-suite", "-n", namespace, "--wait")
            return bench.kubectl("delete", "namespace", namespace, "--wait")

        return namespace, {
            "first deploy": upgrade(self.first),
            "nothing changed": upgrade(self.first),
            "one image": upgrade(self.second),
            "layout switch": upgrade(self.second, "single-pod"),
            "teardown": teardown,
        }


def writes(cluster: Cluster, namespace: str, since: datetime.datetime) -> int:
    """Mutating requests of the tools' user for `namespace` (its objects, or the namespace itself) since `since`."""
    return len(audit_mutations(cluster.audit_log, {ADMIN}, since, namespace=namespace))


def measure(bench: Bench, steps: Steps) -> dict[tuple[str, str], tuple[list[float], int]]:
    found: dict[tuple[str, str], tuple[list[float], int]] = {}
    # a first k8sdeploy deploy makes the Secrets kubectl and Helm are given: its namespace is up while they are made
    bench.k8sdeploy("up")
    plans = {tool: steps.of(tool) for tool in TOOLS}
    bench.k8sdeploy("down", "--volumes", "--yes")
    for number in range(1, RUNS + 1):
        for step in STEPS:
            for tool in TOOLS:
                namespace, actions = plans[tool]
                action = actions[step]
                if isinstance(action, Untimed):
                    action.before()
                    action = action.step
                since = datetime.datetime.now(datetime.UTC)
                started = time.monotonic()
                action()
                seconds = time.monotonic() - started
                times, first = found.get((tool, step), ([], -1))
                found[(tool, step)] = (
                    [*times, seconds],
                    first if first >= 0 else writes(bench.cluster, namespace, since),
                )
        say(f"run {number} of {RUNS} measured")
    return found


def table(found: dict[tuple[str, str], tuple[list[float], int]]) -> str:
    lines = [
        f"| step | {' | '.join(TOOLS)} |",
        "|---|" + "---:|" * len(TOOLS),
    ]
    for step in STEPS:
        cells = []
        for tool in TOOLS:
            times, count = found[(tool, step)]
            cells.append(f"{statistics.median(times):.2f} s, {count} writes")
        lines.append(f"| {step} | {' | '.join(cells)} |")
    return "\n".join(lines)


def compiled() -> None:
    """k8sdeploy's bytecode as an install leaves it (the Makefile's compileall): a checkout changed since, run with
    PYTHONDONTWRITEBYTECODE set, would otherwise compile its changed modules at every run of the bench."""
    for part in ("cli.py", "deploy", "services"):
        path = ROOT / part
        done = compileall.compile_file(path, quiet=2) if path.is_file() else compileall.compile_dir(path, quiet=2)
        if not done:
            raise SystemExit(f"compiling {path} failed")


def main() -> None:
    compiled()
    bins = peers()
    with tempfile.TemporaryDirectory(prefix="k8sdeploy-peers-") as work:
        base = free_base_port()
        plane = ControlPlane(Path(work) / "cluster", base, registry=True, die_with_parent=True, say=say)
        cluster = plane.start()
        try:
            bench = Bench(Path(work), cluster, f"127.0.0.1:{base + 4}", bins)
            first, second = bench.prepare()
            found = measure(bench, Steps(bench, first, second))
        finally:
            plane.stop()
    kubectl = run([str(bins / "kubectl"), "version", "--client", "-o", "json"])
    helm = run([str(bins / "helm"), "version", "--short"]).strip()
    print(f"kubectl {json.loads(kubectl)['clientVersion']['gitVersion']}, helm {helm}, {RUNS} runs (median)\n")
    print(table(found))


if __name__ == "__main__":
    main()
