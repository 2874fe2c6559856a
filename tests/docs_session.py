"""Running a docs page's blocks as a reader would (``tests/docs_blocks.py`` says what the markers mean).

A session is one reader at one machine: a copy of the repository as its working directory, terminals opened there (a
bash each), processes left running in the background until the page is done. The hub the pages talk to listens on a
free port: the session sets ``AGORA_PORT`` and ``AGORA_URL`` for every terminal, and reads ``127.0.0.1:8080`` in a block as
that port: the one thing it changes in a page.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .docs_blocks import ROOT, Block, matches, printed
from .hubproc import free_port

BLOCK_TIMEOUT = 180
INSTALL_TIMEOUT = 900
READY_TIMEOUT = 90
STATE = ".docs-variables"  # in the working directory



def _assigned(code: str) -> list[str]:
    """The variables a bash block sets: ``NAME=…`` opening a line, and each of an ``export``'s. (One set only for
    a command, ``NAME=… command``, is not set after it: ``declare -p`` then finds nothing to keep.)"""
    names = re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", code, re.M)
    for line in re.findall(r"^\s*export\s+(.*)$", code, re.M):
        names += re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", line)
    return list(dict.fromkeys(names))


def copy_repository(into: Path) -> Path:
    """The repository's tracked files (what a clone holds), under ``into``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


@dataclass
class Session:
    """``work``: where the reader stands. ``install``: run the install blocks (else the test's own virtualenv, linked
    as ``.venv``, stands in). ``activated``: the reader's terminals have the virtualenv active (every page past getting
    started says so; that page, run from nothing, must say it itself). ``run_as``: a command prefix that runs each
    terminal as another user, whose home is ``home``."""

    work: Path
    install: bool = False
    activated: bool = True
    run_as: list[str] = field(default_factory=list)
    home: Path | None = None
    path: str | None = None  # the terminals' PATH: the test's own, less its virtualenv, unless given
    port: int = field(default_factory=free_port)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    last: Block | None = None
    last_output: str = ""

    def __post_init__(self) -> None:
        if not self.install:
            (self.work / ".venv").symlink_to(sys.prefix)

    @property
    def env(self) -> dict[str, str]:
        path = os.environ["PATH"].split(os.pathsep)
        system = [p for p in path if Path(p).resolve() != Path(sys.prefix, "bin").resolve()]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGORA_", "VIRTUAL_ENV", "PYTEST", "COV_"))}
        env.update(PATH=self.path or os.pathsep.join(system), AGORA_PORT=str(self.port), AGORA_URL=f"http://127.0.0.1:{self.port}")
        if self.home is not None:
            env["HOME"] = str(self.home)
        return env

    def terminal(self, script: str) -> list[str]:
        """A new terminal in the working directory."""
        return [*self.run_as, "bash", "-c", _activated(script) if self.activated else script]

    def start_hub(self) -> None:
        """A hub for a page that talks to one without starting it (the reader has one running)."""
        self._background("agora serve", "agora health", "the session's hub")

    def run(self, block: Block) -> None:
        if block.kind == "output":
            assert self.last is not None, f"{block.where}: an output block follows no run block"
            assert matches(block.code, self.last_output), (
                f"{block.where}: {self.last.where} printed\n{self.last_output}\nnot what the page shows:\n{block.code}"
            )
            return
        if block.kind != "run":
            return
        if "install" in block.options and not self.install:
            return
        if "background" in block.options:
            self._background(self._script(block), block.options.get("ready", ""), block.where)
            return
        timeout = INSTALL_TIMEOUT if "install" in block.options else BLOCK_TIMEOUT
        done = subprocess.run(
            self.terminal(self._script(block)), cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout
        )  # fmt: skip
        assert done.returncode == 0, f"{block.where} failed (exit {done.returncode}):\n{block.code}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        self.last, self.last_output = block, done.stdout
        # curl prints an error answer and exits 0: a page's command that was refused did not do what the page says
        refused = re.search(r'\{"error":\s?\{"code":\s?"[^"]+"', done.stdout)
        assert not refused, f"{block.where} was refused:\n{block.code}\n--- stdout\n{done.stdout[-4000:]}"
        if block.lang == "python" and (said := printed(block.code)):
            lines = iter(line.strip() for line in done.stdout.splitlines())
            missing = [s for s in said if not any(line == s for line in lines)]
            assert not missing, f"{block.where} printed\n{done.stdout}\nwhere the page shows {said}"

    def _script(self, block: Block) -> str:
        return self._at_our_hub(self._written(block))

    def _at_our_hub(self, script: str) -> str:
        """The pages' hub is at 127.0.0.1:8080, the session's on a port of its own: the one word changed."""
        return re.sub(r"(127\.0\.0\.1|localhost):8080\b", rf"\g<1>:{self.port}", script)

    def _written(self, block: Block) -> str:
        if block.lang in ("bash", "sh", "shell"):
            # the variables the page's blocks set (INSTANCE=…) stay set for its next blocks, as in the reader's terminal
            keep = "".join(f"declare -p {name} >> {STATE} 2> /dev/null || true\n" for name in _assigned(block.code))
            return f"set -eo pipefail\nif [ -f {STATE} ]; then . {STATE}; fi\n{block.code}{keep}"
        if block.lang == "python":
            source = self.work / f".docs-block-{block.line}.py"
            source.write_text(self._at_our_hub(block.code))
            return _activated(f"python {shlex.quote(source.name)}")  # run as the page says: with the virtualenv active
        raise AssertionError(f"{block.where}: a {block.lang!r} block cannot run; mark it file: or not run:")

    def _background(self, script: str, ready: str, where: str) -> None:
        log = self.work / f".docs-background-{len(self.background)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                self.terminal("exec 2>&1\n" + script), cwd=self.work, env=self.env, stdout=out, start_new_session=True
            )  # fmt: skip
        self.background.append(process)
        deadline = time.monotonic() + READY_TIMEOUT
        while ready:
            if process.poll() is not None:
                raise AssertionError(f"{where} exited ({process.returncode}) before it was ready:\n{log.read_text()[-4000:]}")
            check = subprocess.run(self.terminal(_activated(ready)), cwd=self.work, env=self.env, capture_output=True, timeout=60)
            if check.returncode == 0:
                return
            assert time.monotonic() < deadline, f"{where} not ready ({ready}) after {READY_TIMEOUT} s:\n{log.read_text()[-4000:]}"
            time.sleep(0.1)

    def close(self) -> None:
        """Stop what the page left running: as a reader's Ctrl-C would, then for good."""
        for process in reversed(self.background):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in reversed(self.background):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def _activated(script: str) -> str:
    return f"if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi\n{script}"


def parses(block: Block) -> None:
    """A block that is not run still parses as what it says it is."""
    if block.lang in ("bash", "sh", "shell"):
        done = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
        assert done.returncode == 0, f"{block.where}: not bash: {done.stderr}"
    elif block.lang == "python":
        compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)  # an async program's part
    elif block.lang == "json":
        json.loads(block.code)
    elif block.lang in ("yaml", "yml"):
        list(yaml.safe_load_all(block.code))
