"""What `dev` does for a saved file (deploy/dev/watch.py), by where the file is in the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.dev.watch import actions_for
from deploy.targets.local.mounts import SERVICE_NAMES, sources_of


@pytest.mark.parametrize(
    ("saved", "described"),
    [
        ("services/person/app.py", "restart person"),
        ("services/common/context.py", f"restart {', '.join(sorted(SERVICE_NAMES))}"),
        ("suitekit/passwords.py", f"restart {', '.join(sorted(SERVICE_NAMES))}"),
        ("nginx-lua/lua/gateway.lua", "reload the gateway"),
        ("nginx-lua/nginx.conf.j2", "render nginx.conf; reload the gateway"),
        ("requirements/app.lock", "rebuild (requirements/app.lock)"),
        ("services/person/__pycache__/app.cpython-311.pyc", ""),
        ("docs/suite.md", ""),
    ],
)
def test_a_saved_file_asks_for_what_its_place_needs(tmp_path: Path, saved: str, described: str) -> None:
    assert actions_for([tmp_path / saved], tmp_path).describe() == described


def test_every_service_is_served_the_code_it_imports(tmp_path: Path) -> None:
    for name in SERVICE_NAMES:
        served = {path.relative_to(tmp_path).as_posix() for path in sources_of(name, tmp_path).values()}
        assert served == {"services/common", f"services/{name}", "suitekit"}
