"""The benchmark scripts (bench/, run by `make bench`) load against the code as it is: a renamed or moved
function of deploy/ fails here, not on the day someone measures."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from tests.infra import ROOT

SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


@contextmanager
def loaded(script: Path) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)  # the imports and definitions; main() runs only as a script
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_a_bench_script_loads(script: Path) -> None:
    with loaded(script) as module:
        assert callable(getattr(module, "main", None)), f"{script.name} has no main()"


def test_the_login_flood_bench_reads_its_options_and_prints_its_table() -> None:
    """bench/login_flood_bench.py without a suite: its options (the honest spacing is the gateway's login rate, as
    the suite from source runs it), and its table from made-up series."""
    with loaded(ROOT / "bench" / "login_flood_bench.py") as bench:
        defaults = bench.arguments([])
        assert (defaults.flooders, defaults.concurrency, defaults.logins) == (6, 4, 20)
        assert defaults.interval == 3.0  # 20r/m
        assert bench.arguments(["--logins", "3", "--base", "HEAD"]).logins == 3
        with pytest.raises(SystemExit):
            bench.arguments(["--flooders", "0"])
        honest = bench.Series(seconds=[0.1, 0.2, 0.3, 4.0], statuses=Counter({"302": 3, "429": 1}), ok=3)
        flood = Counter({"401": 10, "429": 500, "error: ReadTimeout": 2})
        rows = [
            bench.Row("before abc1234", bench.RETURNING, 0, honest, None),
            bench.Row("after abc1234 + changes", bench.NEW, 6, honest, flood),
        ]
        lines = bench.table(rows).splitlines()
        assert len(lines) == 4 and all(line.count("|") == 11 for line in lines)
        assert lines[2] == "| before abc1234 | returning browser | 0 | 250 | 4000 | 3/4 | 1 | 0 | - | - |"
        assert lines[3].endswith("| 512 | 10/500/0 (+ error: ReadTimeout: 2) |")
        assert bench.percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


def test_the_login_flood_bench_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "login_flood_bench.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--logins" in done.stdout and "--base" in done.stdout


def test_there_are_bench_scripts() -> None:
    assert len(SCRIPTS) >= 3
