"""Benchmark (not a test): what holds a local pod, the 2 MB pause image against the pod's first image
(the suite's own, about 150 MB), side by side in one run. Prints a table: for each layout and each
infra image, the wall time of apply, of waiting until every service is ready, and of `down`.

    .venv/bin/python bench/local_bench.py     # about a minute on 2 cores with vfs, half a minute with overlay2

It builds this checkout into the local Docker Engine first (nothing is timed there), then deploys
environment `bench` (the suite's fixed ports 8080-8085 must be free) and removes it after each row.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.clients import docker_client  # noqa: E402
from deploy.compose import build  # noqa: E402
from deploy.model.environments import Environment  # noqa: E402
from deploy.publish.stage import BuildOptions  # noqa: E402
from deploy.render.objects import render  # noqa: E402
from deploy.targets.local.pause import BUSYBOX  # noqa: E402
from deploy.targets.local.target import LocalTarget  # noqa: E402

ENV = "bench"
LAYOUTS = ("single-pod", "split-pods")


@dataclass
class Row:
    layout: str
    infra: str
    apply: float
    wait: float
    down: float


def timed(action) -> float:  # noqa: ANN001
    started = time.monotonic()
    action()
    return time.monotonic() - started


def measure(objects: tuple[dict, ...], layout: str, infra: str, busybox: Path, state: Path) -> Row:
    target = LocalTarget(docker_client(), ENV, state_dir=state)
    target.engine.busybox = busybox
    target.down(volumes=True)
    apply = timed(lambda: target.apply(objects))
    wait = timed(lambda: target.wait(180))
    down = timed(lambda: target.down(volumes=True))
    return Row(layout, infra, apply, wait, down)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="k8sdeploy-bench-") as work:
        environment = Environment(name=ENV, target="local")
        options = BuildOptions(source=ROOT, allow_dirty=True)
        record = build(environment, options, lambda line: print(line, file=sys.stderr), Path(work) / "record.json")
        rows = []
        for layout in LAYOUTS:
            objects = render(environment, layout, record.images, record.version).objects
            for infra, busybox in (("pause (2 MB)", BUSYBOX), ("first image", Path(work) / "no-busybox")):
                rows.append(measure(objects, layout, infra, busybox, Path(work) / "state"))
                print(f"measured {layout} with {infra}", file=sys.stderr)
    print(f"Docker Engine storage driver: {docker_client().info()['Driver']}\n")
    print("| layout | infra image | apply | wait | down |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row.layout} | {row.infra} | {row.apply:.1f} s | {row.wait:.1f} s | {row.down:.1f} s |")


if __name__ == "__main__":
    main()
