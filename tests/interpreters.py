"""Pythons for hubs whose listing code runs as users of its own: the test run's own one may sit where other users
cannot reach it (a pyenv in root's home, mode 0700), as a new user's often does."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from agora.hosting.sandbox import _closed_on_the_way, _sdk_dirs

# Debian's own Python of this run's minor version: under /usr, open to every user, and able to load this run's packages.
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


def python_in(directory: Path) -> str:
    """A virtualenv at ``directory`` made from :data:`SYSTEM_PYTHON` that sees this run's packages: Agora installed
    there, as a user would install it (in a private home, or under /opt)."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} (Debian's python3 package) is not installed")
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(directory)], check=True)
    paths = sysconfig.get_paths()
    site = Path(subprocess.check_output([str(directory / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    adds = "; ".join(f"site.addsitedir({p!r})" for p in dict.fromkeys([paths["purelib"], paths["platlib"]]))
    (site / "agora-test-run.pth").write_text(f"import site; {adds}\n")
    return str(directory / "bin" / "python")


def readable_python(directory: Path) -> str:
    """:func:`python_in`, where every user may run it: skipped when this run's packages are themselves closed to them."""
    paths = sysconfig.get_paths()
    closed = _closed_on_the_way([Path(paths["purelib"]), Path(paths["platlib"]), *map(Path, _sdk_dirs())])
    if closed is not None:
        pytest.skip(f"this run's packages are closed to other users at {closed}")
    assert _closed_on_the_way([directory]) is None, f"{directory} is closed to other users"
    return python_in(directory)
