"""Helpers for tests that talk to real programs: free ports, waiting, starting processes.

In CI (``CI=true``) a missing program is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """Skip the test where ``what`` is not installed; fail in CI, where it must be."""
    if in_ci():
        pytest.fail(f"{what} is required in CI but missing")
    pytest.skip(f"{what} not installed")


def require_binary(*names: str) -> str:
    """The path of the first program found among ``names`` (Debian names differ by package)."""
    for name in names:
        path = shutil.which(name) or (
            name if os.path.isabs(name) and os.access(name, os.X_OK) else None
        )
        if path:
            return path
    missing(" or ".join(names))
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str = "the condition", interval: float = 0.1):
    """Call ``check()`` until it returns something true (returned), at most ``timeout``
    seconds; then fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers with any HTTP status (or raise, showing the process' stderr)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(
                f"process exited with {proc.returncode} before {url} answered: {err}"
            )
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def wait_tcp(port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not accept connections within {timeout}s")


def sscp_ops_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sscp_ops", *args]


@contextmanager
def running(
    cmd: Sequence[str],
    ready_url: str | None = None,
    env: dict | None = None,
    timeout: float = 20.0,
    stderr=subprocess.PIPE,
    **kwargs,
) -> Iterator[subprocess.Popen]:
    """Start ``cmd``, wait for ``ready_url``, and stop it (SIGTERM, then SIGKILL) afterwards.

    stderr is a pipe by default (tests read it); a long-lived process that logs on every
    request must get a file instead, or the unread pipe fills and stalls it.
    """
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        **kwargs,
    )
    try:
        if ready_url:
            wait_http(ready_url, timeout=timeout, proc=proc)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


@contextmanager
def exporter_running(
    config: Path, *extra: str, env: dict | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``sscp-ops exporter --config.file config`` on a free port, ready (``/healthz``) and
    stopped after; yields (base URL, process)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = sscp_ops_cmd(
        "exporter",
        "--config.file",
        str(config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        *extra,
    )
    with running(cmd, ready_url=f"{base}/healthz", env=env) as proc:
        yield base, proc


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[socketserver.BaseServer]:
    """Run an http.server/socketserver server in a thread; shut it down and close it after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def promtool_check_metrics(exposition: str) -> subprocess.CompletedProcess:
    """``promtool check metrics`` over an exposition (its findings in stdout/stderr)."""
    return subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=30,
    )


def parse_exposition(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out
