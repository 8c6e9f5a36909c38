"""`python -m build` makes a wheel that works outside the repository: installed in a fresh virtualenv, its
`k8sdeploy render` prints the same objects as the editable install of the checkout (manifests/ and nginx-lua/
travel in the wheel as package data). Building one leaves the checkout clean, so the next version is not `-dirty-`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.model.images import IMAGE_NAMES, BuildRecord, PublishedImage
from deploy.model.version import version_of
from tests.infra import ROOT

EDITABLE = ROOT / ".venv" / "bin" / "k8sdeploy"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `python -m build` makes from the sdist (so MANIFEST.in is checked too), offline."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (found,) = out.glob("k8sdeploy-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv outside the repository with the wheel installed. Its dependencies are the locked ones
    already installed here, reached through a path entry (not a .pth scan: the checkout's editable install,
    which is a .pth file there, stays invisible)."""
    venv = tmp_path_factory.mktemp("venv") / "wheel-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "locked-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


def test_the_wheel_carries_the_templates_as_package_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    templates = {name for name in names if name.startswith("deploy/assets/")}
    for tree in ("manifests", "nginx-lua"):
        shipped = {path.relative_to(ROOT).as_posix() for path in (ROOT / tree).rglob("*") if path.is_file()}
        assert {f"deploy/assets/{path}" for path in shipped} <= templates, tree
    assert "cli.py" in names and "deploy/schemas/output.schema.json" in names


def test_the_installed_k8sdeploy_runs_from_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import cli, deploy.render.objects as o; print(cli.__file__); print(o.MANIFESTS_DIR)",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(str(installed) in path and str(ROOT) not in path for path in where), where


@pytest.mark.parametrize("env", ["local", "staging"])
def test_render_from_the_wheel_prints_what_the_editable_install_prints(
    installed: Path, tmp_path: Path, env: str
) -> None:
    config = tmp_path / "elsewhere" / "k8sdeploy.toml"
    config.parent.mkdir()
    shutil.copy(ROOT / "k8sdeploy.toml", config)
    record = tmp_path / "record.json"
    BuildRecord(
        "1.2.3",
        "c0ffee" + "0" * 34,
        {
            name: PublishedImage(f"registry.example/suite/{name}", "1.2.3", f"sha256:{index + 1:064x}", 100)
            for index, name in enumerate(IMAGE_NAMES)
        },
    ).save(record)
    command = ["render", "--config", str(config), "--env", env, "--layout", "split-pods", "--build-record", str(record)]
    outputs = [
        subprocess.run([str(program), *command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        for program in (installed / "bin" / "k8sdeploy", EDITABLE)
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr
    from_wheel, editable = outputs
    assert "kind: Deployment" in from_wheel.stdout and from_wheel.stdout.count("\n---\n") >= 10
    assert from_wheel.stdout == editable.stdout


def test_building_a_wheel_leaves_the_checkout_clean(tmp_path: Path) -> None:
    """`pip wheel .` builds in the tree (build/, the egg-info) and `python -m build` writes dist/ there: all ignored
    by git, or the next `k8sdeploy build` of that checkout would be a `-dirty-` version. A fresh clone of HEAD, so
    that what is uncommitted in this checkout does not count."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    wheels = tmp_path / "wheels"
    for build in (
        ["pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(clone)],
        ["build", "--no-isolation", "--wheel", str(clone)],  # into clone/dist/, where a developer's run puts it
    ):
        subprocess.run([sys.executable, "-m", *build], check=True, capture_output=True, text=True, timeout=300)
    assert list(wheels.glob("k8sdeploy-*.whl")) and list((clone / "dist").glob("k8sdeploy-*.whl"))
    assert (clone / "build").is_dir(), "pip wheel left no build/ in the clone: this test no longer tests anything"
    status = subprocess.run(
        ["git", "-C", str(clone), "status", "--porcelain"], check=True, capture_output=True, text=True
    ).stdout
    assert not status, f"building the wheel left files git does not ignore (add them to .gitignore):\n{status}"
    version = version_of(clone).version
    assert "dirty" not in version, version
