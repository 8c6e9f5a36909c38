"""The `k8sdeploy` entry point (pyproject.toml: `cli:main`). The commands are in deploy/commands/, one module per
group of them."""

import gc

# The commands' modules make a few hundred thousand objects (pydantic's schemas, click's, jinja's) that live as long
# as the process: the collector would scan them again and again while they load, and once more at exit. They are
# loaded with it off, then frozen out of its reach (`gc.freeze`); what the command makes is collected as usual.
gc.disable()
from deploy.commands import main  # noqa: E402

gc.freeze()
gc.enable()

__all__ = ["main"]

if __name__ == "__main__":
    main()
