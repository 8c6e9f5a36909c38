"""Where k8sdeploy keeps what it can make again between runs: built layers, dependency trees, base images, compiled
templates. $K8SDEPLOY_CACHE, else $XDG_CACHE_HOME/k8sdeploy (default ~/.cache/k8sdeploy)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    if os.environ.get("K8SDEPLOY_CACHE"):
        return Path(os.environ["K8SDEPLOY_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "k8sdeploy"
