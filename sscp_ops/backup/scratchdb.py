"""A throwaway MariaDB server for restore drills, so that a drill never writes production.

:func:`throwaway_mariadb` makes a fresh data directory (``mariadb-install-db``) and starts the
host's own ``mariadbd`` on it with a Unix socket in a private directory and no TCP port
(``--skip-networking``), no binary log and the event scheduler off: restored EVENTs, triggers
and routines can run only against the throwaway copy, never against the production server.
The server is stopped and both directories removed on exit, whatever happened.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql


class ScratchServerError(Exception):
    """The throwaway server could not be made or did not start."""


@dataclass(frozen=True)
class ScratchServer:
    socket: Path
    user: str = "root"

    def connect(self):
        return pymysql.connect(
            unix_socket=str(self.socket), user=self.user, autocommit=True, connect_timeout=10
        )


def _program(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
        if path:
            return path
    raise ScratchServerError(
        f"{names[0]} is not installed (Debian: mariadb-server): the drill restores into a"
        " throwaway server it starts itself (or set drill.server: shared)"
    )


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()[-800:]
    except OSError:
        return ""


@contextmanager
def throwaway_mariadb(work: Path | None = None, timeout: float = 120.0) -> Iterator[ScratchServer]:
    """A private ``mariadbd`` with its data under ``work`` (default: the temp directory)."""
    install = _program("mariadb-install-db", "mysql_install_db")
    server = _program("mariadbd", "mysqld")
    user = pwd.getpwuid(os.geteuid()).pw_name
    base = Path(tempfile.mkdtemp(prefix="sscp-drill-db-", dir=work))  # 0700
    # A socket path is limited to 107 bytes: it lives in a short private directory of its own.
    run = Path(tempfile.mkdtemp(prefix="sscp-drill-"))
    datadir, log = base / "data", base / "error.log"
    proc: subprocess.Popen | None = None
    try:
        done = subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                f"--user={user}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise ScratchServerError(
                f"mariadb-install-db exited {done.returncode}: {done.stderr.strip()[-800:]}"
            )
        socket = run / "mysqld.sock"
        proc = subprocess.Popen(
            [
                server,
                "--no-defaults",
                f"--user={user}",
                f"--datadir={datadir}",
                f"--socket={socket}",
                f"--pid-file={run / 'mysqld.pid'}",
                f"--log-error={log}",
                "--skip-networking",
                "--skip-log-bin",
                "--event-scheduler=OFF",  # events can be created, none runs
                "--innodb-buffer-pool-size=128M",
                "--max-allowed-packet=1G",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        scratch = ScratchServer(socket)
        _wait_ready(scratch, proc, log, timeout)
        yield scratch
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(scratch: ScratchServer, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ScratchServerError(f"mariadbd exited {proc.returncode}: {_tail(log)}")
        if scratch.socket.exists():
            try:
                scratch.connect().close()
                return
            except pymysql.MySQLError:
                pass
        if time.monotonic() > deadline:
            raise ScratchServerError(f"mariadbd did not accept connections in {timeout:.0f}s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
