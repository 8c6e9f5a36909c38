"""The benchmark scripts (bench/, run by `make bench`) load against the code as it is: a renamed or moved
function of deploy/ fails here, not on the day someone measures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.infra import ROOT

SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_a_bench_script_loads(script: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)  # the imports and definitions; main() runs only as a script
    finally:
        del sys.modules[spec.name]
    assert callable(getattr(module, "main", None)), f"{script.name} has no main()"


def test_there_are_bench_scripts() -> None:
    assert len(SCRIPTS) >= 3
