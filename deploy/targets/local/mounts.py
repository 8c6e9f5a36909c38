"""The sources `dev` serves from the checkout: each service's code, services/common and suitekit, and the
gateway's Lua, bound read-only over what the images hold, so a saved file is in its container at once; each
service runs under services/common/devserver.py, which starts it anew on SIGHUP."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from deploy.builders.spec import APP_DIR
from deploy.model.suite import GATEWAY, GATEWAY_LUA_DIR, SERVICES

SERVICE_NAMES = tuple(service.name for service in SERVICES)
DEVSERVER = "services.common.devserver"  # forks the service anew on SIGHUP


def sources_of(container: str, checkout: Path) -> dict[str, Path]:
    """Mount path -> directory of the checkout, for the container of `container` (a service or the gateway)."""
    if container == GATEWAY:
        return {GATEWAY_LUA_DIR: checkout / "nginx-lua" / "lua"}
    if container in SERVICE_NAMES:
        return {
            f"{APP_DIR}/services/common": checkout / "services" / "common",
            f"{APP_DIR}/services/{container}": checkout / "services" / container,
            f"{APP_DIR}/suitekit": checkout / "suitekit",
        }
    return {}


def with_sources(objects: Sequence[dict], checkout: Path) -> tuple[dict, ...]:
    """The rendered objects with the checkout's sources bound into the suite's containers (hostPath volumes,
    which only a local target that was given `checkout` runs)."""
    found = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        spec = obj.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") if obj.get("kind") != "Pod" else spec
        if pod:
            for container in pod.get("containers", []):
                for target, directory in sources_of(container["name"], checkout.resolve()).items():
                    volume = f"dev-{directory.relative_to(checkout.resolve()).as_posix().replace('/', '-')}"
                    if volume not in {v["name"] for v in pod.setdefault("volumes", [])}:
                        pod["volumes"].append({"name": volume, "hostPath": {"path": str(directory)}})
                    container.setdefault("volumeMounts", []).append(
                        {"name": volume, "mountPath": target, "readOnly": True}
                    )
                if container["name"] in SERVICE_NAMES:  # restarted by SIGHUP, its libraries kept imported
                    container["command"], container["args"] = ["python3"], ["-m", DEVSERVER, container["name"]]
        found.append(obj)
    return tuple(found)
