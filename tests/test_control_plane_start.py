"""The tests' control plane (tools/cluster/controlplane.py) starts even when KWOK's start hangs: a KWOK that has
started no stage controller within its time is started again, and the nodes turn ready (one such hang, past 60 s,
once failed every test of a CI worker). Here the first KWOK is a process that hangs as that one did."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.controlplane import TOKENS
from tests.infra import free_port_block
from tools.cluster.controlplane import ControlPlane


@pytest.mark.timeout(300)
def test_a_kwok_whose_start_hangs_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    plane = ControlPlane(tmp_path / "plane", base_port=free_port_block(5), tokens=TOKENS, die_with_parent=True,
                         say=said.append)  # fmt: skip
    launch, hung = plane.launch, []

    def first_kwok_hangs(name: str, bin_dir: Path, args: list[str]) -> None:
        if name == "kwok" and not hung:
            hung.append(name)  # the log it leaves, then nothing: as the hung one did
            plane.launch_command(name, ["sh", "-c", 'echo \'{"msg":"Starting HTTPS server"}\'; exec sleep 600'])
            return
        launch(name, bin_dir, args)

    monkeypatch.setattr(plane, "launch", first_kwok_hangs)
    monkeypatch.setattr(plane, "start_kwok", lambda bin_dir: ControlPlane.start_kwok(plane, bin_dir, timeout=5))
    try:
        cluster = plane.start()
        assert hung and "KWOK started no stage controller within 5 s; starting it again" in said
        assert cluster.version()
    finally:
        plane.stop()
