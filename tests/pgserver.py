"""A private PostgreSQL server for the tests and benchmarks: ``initdb`` and ``pg_ctl start`` in a
temporary directory, listening only on a unix socket there, stopped and removed by ``stop()``.

initdb refuses to run as root, so under root (CI) the cluster belongs to an unprivileged user
(``postgres`` when it exists, else ``nobody``) and every server command runs as that user;
root still connects through the socket. Local connections are trusted (the socket lives in a
0700-ish private directory for the test's life).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["PgServer", "find_bindir"]

SUPERUSER: Final = "smppgw_test"
START_TIMEOUT: Final = 60  # seconds for pg_ctl -w


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: $PG_BINDIR, the newest /usr/lib/postgresql/N/bin
    (Debian), or the PATH. None when PostgreSQL is not installed."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                    else 0)
    if debian:
        return debian[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PgServer:
    """One cluster. ``start()`` returns once it accepts connections; ``url(database)`` is the
    libpq URL of a database on it; ``stop()`` stops it and deletes its directory."""

    def __init__(
        self, bindir: Path, *, fsync: bool = True, base: str | None = None,
        shared_buffers: str = "64MB",
    ) -> None:
        """``fsync`` off suits tests that kill smppgw, never the server; benchmarks keep it on
        and PostgreSQL's default ``shared_buffers`` (128MB)."""
        self.bindir = bindir
        self.fsync = fsync
        self.shared_buffers = shared_buffers
        self.root = Path(tempfile.mkdtemp(prefix="smppgw-pg-", dir=base))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self._user: pwd.struct_passwd | None = None
        self._options = ""
        self.started = False

    def _run_as(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise RuntimeError("running as root and neither 'postgres' nor 'nobody' exists")

    def _command(self, *args: str) -> None:
        user = self._user
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=START_TIMEOUT + 30,
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None, cwd=self.root, check=False,
            env={**os.environ, "LC_ALL": "C.UTF-8"})
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):"
                               f" {result.stderr.strip()} {log[-2000:]}")

    def start(self) -> PgServer:
        self._user = self._run_as()
        self.socket_dir.mkdir()
        if self._user is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self._command(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                      "--auth=trust", "-E", "UTF8", "--no-sync")
        options = [
            "-c listen_addresses=''", f"-c unix_socket_directories='{self.socket_dir}'",
            "-c max_connections=200", f"-c shared_buffers={self.shared_buffers}",
            f"-c fsync={'on' if self.fsync else 'off'}",
        ]
        if not self.fsync:
            options += ["-c full_page_writes=off"]
        self._options = " ".join(options)
        self.resume()
        return self

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}"

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: fast, or immediate as after a crash) and remove it."""
        if self.started:
            self.started = False
            with contextlib.suppress(RuntimeError):
                self._command(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode,
                              "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def pause(self) -> None:
        """Stop the server, keeping its data (``resume`` starts it again)."""
        self._command(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")

    def resume(self) -> None:
        self._command(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                      "-w", "-t", str(START_TIMEOUT), "-o", self._options, "start")
        self.started = True
