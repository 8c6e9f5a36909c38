"""The `k8sdeploy` entry point (pyproject.toml: `cli:main`). The commands are in deploy/commands/, one module per
group of them."""

from deploy.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
