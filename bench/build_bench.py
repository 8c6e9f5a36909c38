"""Benchmark (not a test): our daemonless builder against `--builder docker` (docker build + docker push),
on the same Debian bases, side by side in one run. Prints a table per scenario and builder:
wall time, HTTP requests, blobs and bytes uploaded, manifests put (counted by a proxy in front of
each registry, so both builders are measured the same way).

    .venv/bin/python bench/build_bench.py     # about 5 minutes on 2 cores with vfs, half a minute with overlay2

Scenarios: cold build and push of all six images; a rebuild with nothing changed; a rebuild after
a one-line change to one service (committed, so it is a new version).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from deploy.builders.bases import BaseResolver  # noqa: E402
from deploy.builders.docker import DockerBuilder  # noqa: E402
from deploy.builders.store import BlobStore, default_cache_dir  # noqa: E402
from deploy.clients import Clients  # noqa: E402
from tests.registries import ProxyRules, registry_proxy, registry_server  # noqa: E402

K8SDEPLOY = ROOT / ".venv" / "bin" / "k8sdeploy"
BASES = ("debootstrap:nginx", "debootstrap:python")


@dataclass
class Row:
    scenario: str
    builder: str
    seconds: float
    requests: int
    blobs: int
    sent: int
    manifests: int


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.org",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.org",
        },
    )


def fresh_cache(work: Path) -> Path:
    """A cache with the shared Debian bases and dependency tree (hard links) but no built layers."""
    shared, cache = default_cache_dir(), work / "cache"
    cache.mkdir(parents=True)
    for part in ("bases", "deps"):
        subprocess.run(["cp", "-al", str(shared / part), str(cache / part)], check=True)
    return cache


def purge_docker(engine: docker.DockerClient, cache: Path) -> list[str]:
    """Remove every image built on our bases (a cold docker build cache), then load the bases, as a
    docker user would have pulled them. Returns the base image IDs."""
    resolver = BaseResolver(BlobStore(cache), cache, Clients().registry)
    bases = [resolver.resolve(reference) for reference in BASES]
    builder = DockerBuilder(engine, resolver)
    base_ids = {engine.images.get(builder.base_in_engine(base)).id for base in bases}
    while True:
        derived = [
            image
            for image in engine.images.list(all=True)
            if image.id not in base_ids and any(step["Id"] in base_ids for step in engine.api.history(image.id))
        ]
        if not derived:
            return sorted(base_ids)
        leaf = max(derived, key=lambda image: len(engine.api.history(image.id)))
        engine.images.remove(leaf.id, force=True)


def run(builder: str, checkout: Path, registry: str, cache: Path, rules: ProxyRules, scenario: str) -> Row:
    before = (rules.requests, rules.blobs_uploaded, rules.bytes_uploaded, rules.manifests_put)
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(K8SDEPLOY),
            "build",
            "--builder",
            builder,
            "--registry",
            f"{registry}/bench",
            "--source",
            str(checkout),
            "--record",
            str(checkout.parent / "record.json"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "K8SDEPLOY_CACHE": str(cache)},
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{builder} {scenario} failed:\n{result.stderr}")
    after = (rules.requests, rules.blobs_uploaded, rules.bytes_uploaded, rules.manifests_put)
    requests, blobs, sent, manifests = (a - b for a, b in zip(after, before, strict=True))
    return Row(scenario, builder, seconds, requests, blobs, sent, manifests)


def bench_builder(builder: str, work: Path, engine: docker.DockerClient) -> list[Row]:
    checkout = work / builder / "suite"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    cache = fresh_cache(work / builder)
    if builder == "docker":
        purge_docker(engine, cache)
    rules = ProxyRules()
    rows = []
    with registry_server(work / builder / "registry") as registry, registry_proxy(registry.host, rules) as proxy:
        rows.append(run(builder, checkout, proxy, cache, rules, "cold build + push"))
        rows.append(run(builder, checkout, proxy, cache, rules, "rebuild, nothing changed"))
        app = checkout / "services" / "person" / "app.py"
        app.write_text(app.read_text() + "# one-line change for the benchmark\n")
        git(checkout, "commit", "-qam", "one-line change")
        rows.append(run(builder, checkout, proxy, cache, rules, "rebuild, one line changed"))
    return rows


def size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | builder | wall time | HTTP requests | blobs uploaded | bytes uploaded | manifests put |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scenario in dict.fromkeys(row.scenario for row in rows):
        for row in (row for row in rows if row.scenario == scenario):
            lines.append(
                f"| {row.scenario} | {row.builder} | {row.seconds:.1f} s | {row.requests} | {row.blobs} "
                f"| {size(row.sent)} | {row.manifests} |"
            )
    return "\n".join(lines)


def main() -> None:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="k8sdeploy-bench-"))
    try:
        rows = bench_builder("oci", work, engine) + bench_builder("docker", work, engine)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Docker Engine storage driver: {engine.info()['Driver']}\n")
    print(table(rows))
    cold = {row.builder: row.seconds for row in rows if row.scenario.startswith("cold")}
    print(f"\ncold build + push: oci takes {cold['oci'] / cold['docker']:.0%} of docker's time")


if __name__ == "__main__":
    main()
