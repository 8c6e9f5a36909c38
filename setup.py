"""The wheel carries manifests/ and nginx-lua/ as package data in deploy/assets/ (deploy/render/assets.py finds
them there), while the repository keeps them at its top level. Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = ("manifests", "nginx-lua")


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout
            return
        for name in ASSETS:
            target = Path(self.build_lib) / "deploy" / "assets" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(Path(__file__).parent / name, target)


setup(cmdclass={"build_py": BuildWithAssets})
