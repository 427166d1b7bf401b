"""``fhir.resources`` and our ``fhir.<module>`` import side by side in every install mode.

DESIGN.md, "The fhir name": fhir.resources installs a regular package ``fhir``; ours extends
its path.  Each mode runs a fresh interpreter from a directory outside the repository.  The
fresh virtual environments reuse the project venv's already-installed dependencies through a
``.pth`` path entry (plain path entries do not run that venv's own ``.pth`` hooks, so its
editable install of this project stays invisible), and the project is installed into them
with ``--no-deps --no-build-isolation``: no download.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK = (
    "import fhir.resources.R4B.observation as obs, fhir.codes as codes; "
    "assert obs.Observation.__name__ == 'Observation'; "
    "print(codes.__file__)"
)


def _run_check(python: Path | str, cwd: Path) -> Path:
    done = subprocess.run(
        [str(python), "-c", CHECK], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip()).resolve()


def _copy_sources(target: Path) -> Path:
    """A clean copy of the tracked sources (building must not write into the repository)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = REPO / name
        if source.is_file():
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
    return target


def _fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "zz_project_dependencies.pth").write_text(deps + "\n")
    return python


def _pip_install(python: Path, *args: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_from_the_repository_root() -> None:
    assert _run_check(sys.executable, REPO).is_relative_to(REPO)


@pytest.mark.slow
def test_after_pip_install(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path / "src")
    python = _fresh_venv(tmp_path / "venv")
    _pip_install(python, str(source))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    location = _run_check(python, elsewhere)
    assert location.is_relative_to((tmp_path / "venv").resolve()), location


@pytest.mark.slow
def test_after_editable_install(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path / "src")
    python = _fresh_venv(tmp_path / "venv")
    _pip_install(python, "-e", str(source))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    location = _run_check(python, elsewhere)
    assert location.is_relative_to(source.resolve()), location
