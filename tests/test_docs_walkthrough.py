"""A new user on a fresh machine follows Getting started and the marketplace's Try it word for word, as root and as a
normal user (issue 62): the install makes a virtualenv of its own from the machine's Python, the hub, the echo agent
and the talk run in the reader's terminals, and the marketplace instance runs on the hub's own hosting node. Root
reads the Python tabs; the normal user the second ones (the TypeScript agent, the command line), with its own home
(npm's and pip's caches start empty) and the system's PATH."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .docs_blocks import DOCS, blocks, paths
from .docs_session import Session, copy_repository

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory under /tmp that other users may pass (pytest's own is 0700): the reader's machine."""
    base = Path(tempfile.mkdtemp(prefix="agora-walkthrough-", dir="/tmp"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _follow(session: Session, tab: int) -> None:
    try:
        for block in paths(blocks(DOCS / "getting-started.md"))[tab]:
            session.run(block)
        session.activated = True  # the reader's terminal, as Getting started left it
        for block in paths(blocks(DOCS / "concepts" / "marketplace.md"))[0]:
            if block.line > _end_of_try_it():
                break
            session.run(block)
    finally:
        session.close()


def _end_of_try_it() -> int:
    lines = (DOCS / "concepts" / "marketplace.md").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith("## ") and i > 1 and "Try it" not in line)


@pytest.mark.skipif(os.geteuid() != 0, reason="run as root, which also makes the normal user")
def test_root_follows_getting_started_and_the_marketplace(open_dir: Path) -> None:
    work = copy_repository(open_dir / "agora")
    _follow(Session(work, install=True, activated=False), tab=0)


@pytest.mark.skipif(os.geteuid() != 0, reason="run as root, which makes the normal user")
def test_a_normal_user_follows_getting_started_and_the_marketplace(open_dir: Path) -> None:
    uid = 50_000 + os.getpid() % 10_000
    home = open_dir / "home"
    work = copy_repository(home / "agora")
    for directory, _, files in os.walk(home):
        for name in [directory, *(os.path.join(directory, f) for f in files)]:
            os.chown(name, uid, uid)
    session = Session(
        work, install=True, activated=False, home=home, path=SYSTEM_PATH,
        run_as=["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"],
    )  # fmt: skip
    _follow(session, tab=1)
