"""Where the product's templates are found: `manifests/` and `nginx-lua/` sit at the top of the source tree (the
product's visible layout) and are shipped in the wheel as `deploy/assets/` (setup.py copies them there)."""

from __future__ import annotations

from pathlib import Path

PACKAGED = Path(__file__).resolve().parents[1] / "assets"  # an installed wheel
SOURCE_TREE = Path(__file__).resolve().parents[2]  # a checkout, or an editable install of it


def asset_dir(name: str) -> Path:
    """The directory `name` (manifests or nginx-lua) of the wheel when installed from one, else of the checkout."""
    packaged = PACKAGED / name
    return packaged if packaged.is_dir() else SOURCE_TREE / name
