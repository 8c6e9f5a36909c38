"""k8sdeploy: build, publish, render, apply, wait for, smoke-test and tear down the auth suite."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line client when it is imported (rich, pygments: 25 ms of every run) and falls back to a
# stub when that import fails; k8sdeploy never runs it. A None in sys.modules makes the import fail.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
