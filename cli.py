"""The `k8sdeploy` entry point (pyproject.toml: `cli:main`). The commands are in deploy/commands/, one module per
group of them. Their modules load with the collector off, then are frozen out of its reach: see LOADING there."""

import gc

gc.disable()
from deploy.commands import main  # noqa: E402

gc.freeze()
gc.enable()
__all__ = ["main"]

if __name__ == "__main__":
    main()
