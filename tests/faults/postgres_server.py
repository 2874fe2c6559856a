"""A PostgreSQL server of a test's own on 127.0.0.1, to stop, restart or crash, and its streaming standby, to promote
(the suite's shared server on 5432 is never touched). Debian's binaries, run as the ``postgres`` user as they must
be."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..hubproc import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class PostgresServer:
    """``directory`` is made under /tmp (the postgres user cannot pass through pytest's own, 0700)."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="agora-pg-", dir="/tmp")))
    port: int = field(default_factory=free_port)
    settings: tuple[str, ...] = ()  # more -c settings of the server

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=60, check=check)

    def start(self) -> PostgresServer:
        self._own_directory()
        self._as_postgres(str(BIN / "initdb"), "-D", str(self.directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self._start()
        return self

    def standby(self, *settings: str) -> PostgresServer:
        """A streaming standby of this server, started: a base backup (``-R``: it follows this server)."""
        standby = PostgresServer(settings=settings)
        standby._own_directory()
        standby._as_postgres(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-D", str(standby.directory / "data"), "-R", "-X", "stream")
        standby._start()
        return standby

    def promote(self) -> None:
        """A standby becomes a primary (it takes writes from now on)."""
        self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-w", "promote")

    def _own_directory(self) -> None:
        if os.geteuid() != 0 or not (BIN / "pg_ctl").exists() or shutil.which("runuser") is None:
            pytest.skip("needs root and Debian's postgresql 15 binaries to run a PostgreSQL server of the test's own")
        self.directory.chmod(0o755)
        shutil.chown(self.directory, "postgres", "postgres")

    def _start(self) -> None:
        options = " ".join([f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off", *(f"-c {s}" for s in self.settings)])
        self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-l", str(self.directory / "server.log"), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self, away: float = 3.0) -> None:
        """Stop (``-m fast``: sessions are cut), stay away ``away`` seconds, start again on the same port."""
        self.stop()
        time.sleep(away)
        self._start()
