"""Every code block in the docs is marked and tested (issue 62): the runnable ones run, in order, page by page (once
per tab position) against a hub, with the output the page shows checked; the example files the pages show are the
repository's; the rest parse and are validated as their marker says. ``tests/docs_blocks.py`` has the markers."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REQUIRE_SERVICES
from .docs_blocks import KINDS, ROOT, Block, blocks, pages, paths
from .docs_session import Session, copy_repository, parses

ALL = [b for page in pages() for b in blocks(page)]
RUNS = [
    pytest.param(page, k, id=f"{page.relative_to(ROOT / 'docs')}[{k}]")
    for page in pages()
    for k, path in enumerate(paths(blocks(page)))
    if any(b.kind == "run" for b in path)
]


def test_every_block_says_whether_and_how_it_is_tested() -> None:
    unmarked = [b.where for b in ALL if b.kind not in KINDS]
    assert not unmarked, f"blocks without a marker (tests/docs_blocks.py lists them): {unmarked}"
    assert not [b.where for b in ALL if b.kind == "not run" and not b.options.get("why")], "a block not run must say why"
    assert any(b.kind == "run" for b in ALL)


def test_the_example_files_shown_are_the_repository_s() -> None:
    for block in (b for b in ALL if b.kind == "file"):
        path = ROOT / block.options["file"]
        assert path.is_file(), f"{block.where}: {block.options['file']} is not in the repository"
        assert block.code.strip() in path.read_text(), f"{block.where} differs from {block.options['file']}"


@pytest.mark.parametrize("block", [b for b in ALL if b.kind in ("not run", "run", "file")], ids=lambda b: b.where)
def test_blocks_parse_and_those_not_run_are_checked(block: Block) -> None:
    parses(block)
    if check := block.options.get("check"):
        env = {**os.environ, "PATH": f"{Path(sys.prefix, 'bin')}{os.pathsep}{os.environ['PATH']}"}
        tool = shlex.split(check)[0]
        if shutil.which(tool, path=env["PATH"]) is None:  # as the tests of what it checks do (kubectl: deploy's)
            message = f"{block.where} is checked with {tool}, which is not installed"
            pytest.fail(message) if REQUIRE_SERVICES else pytest.skip(message)
        done = subprocess.run(["bash", "-c", check], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{block.where}: its check failed ({check}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="agora-docs-") as directory:
        yield copy_repository(Path(directory))


@pytest.mark.slow  # about two minutes in all: run one page with -k "page.md"
@pytest.mark.parametrize(("doc", "k"), [p.values for p in RUNS], ids=[p.id for p in RUNS])
def test_the_page_runs_as_written(doc: Path, k: int, workdir: Path) -> None:
    path = paths(blocks(doc))[k]
    session = Session(workdir)
    try:
        if not any("agora serve" in b.code for b in path if b.kind == "run"):
            session.start_hub()
        for block in path:
            session.run(block)
    finally:
        session.close()
