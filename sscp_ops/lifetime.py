"""Child processes that end with their parent, and one that is started again when it dies.

Used by ``sscp-ops stack`` (exporter, webhook, Prometheus, Alertmanager) and by
``sscp-ops webhook`` (its notice worker). A parent killed with SIGKILL cannot stop its
children, so each child asks the kernel for a signal when its parent goes (Linux
``prctl(PR_SET_PDEATHSIG)``); where that is missing, a Python child watches its parent's pid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("lifetime")

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def exit_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child (any program) gets ``sig``
    when the thread that started it ends, as when this process is killed with SIGKILL.

    Linux ties the signal to the *thread* that forked: start children from a thread that
    lives as long as they should (the main thread). Elsewhere this does nothing; Python
    children can also :func:`watch_parent`."""
    parent = os.getpid()
    prctl = _prctl()  # looked up before the fork: the child only calls it

    def in_child() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal
            os.kill(os.getpid(), sig)

    return in_child


def watch_parent(parent: int, on_exit: Callable[[], None], interval: float = 1.0) -> None:
    """Call ``on_exit`` once the parent process ``parent`` is gone (its pid no longer is this
    process's parent pid), from a daemon thread that checks every ``interval`` seconds: the
    portable fallback to :func:`exit_with_parent`."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("parent process gone: stopping", extra={"kv": {"parent": parent}})
        on_exit()

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def spawn(argv: Sequence[str]) -> subprocess.Popen:
    """Start ``argv`` as a child that ends with this process (:func:`exit_with_parent`)."""
    return subprocess.Popen(list(argv), preexec_fn=exit_with_parent())


class Supervised:
    """A child process kept running: started again when it exits, at once after a steady run
    (``steady`` seconds or more), else after 1, 2, 4 ... ``longest`` seconds, so a child that
    dies at start does not spin. :meth:`check` does the work; call it often (it does not
    block). Started with :func:`exit_with_parent`, from the thread that calls :meth:`start`
    and :meth:`check`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        steady: float = 60.0,
        first: float = 1.0,
        longest: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        spawn: Callable[[Sequence[str]], subprocess.Popen] = spawn,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.steady, self.first, self.longest = steady, first, longest
        self.clock = clock
        self.spawn = spawn
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._quick_exits = 0
        self._started_at = 0.0
        self._due: float | None = None
        self._stopped = False

    def start(self) -> None:
        self.proc = self.spawn(self.argv)
        self._started_at = self.clock()
        self._due = None

    def delay(self) -> float:
        """Seconds to wait before the next start, from the exits in a row within ``steady``."""
        if not self._quick_exits:
            return 0.0
        return min(self.first * 2 ** (self._quick_exits - 1), self.longest)

    def check(self) -> None:
        if self.proc is None or self._stopped:
            return
        now = self.clock()
        if self._due is None:
            code = self.proc.poll()
            if code is None:
                return
            lived = now - self._started_at
            self._quick_exits = 0 if lived >= self.steady else self._quick_exits + 1
            self.restarts += 1
            self._due = now + self.delay()
            log.error(
                f"{self.name} exited",
                extra={
                    "kv": {
                        "pid": self.proc.pid,
                        "returncode": code,
                        "ran_s": round(lived, 1),
                        "restart_in_s": self.delay(),
                        "restarts": self.restarts,
                    }
                },
            )
        if now >= self._due:
            self.start()
            log.info(f"{self.name} started again", extra={"kv": {"pid": self.proc.pid}})

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; no start after this."""
        self._stopped = True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
