"""`sscp-ops stack` (what `make run` starts) takes every child with it (issue 14, item 10).

A closed terminal or a lost SSH session sends SIGHUP; systemd and `kill` send SIGTERM; Ctrl-C
SIGINT; and the stack itself may be killed with SIGKILL. In each case exporter, webhook (with
its gunicorn workers and notice worker), Prometheus and Alertmanager must be gone within a
few seconds, so the next `make run` finds its ports free.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import ROOT, free_port, require_binary

from sscp_ops.stack import Ports, Stack, StackPlan

pytestmark = pytest.mark.slow


def start_stack(tmp_path: Path) -> tuple[subprocess.Popen, Ports]:
    ports = Ports(**{name: free_port() for name in vars(Ports())})
    cmd = [
        sys.executable,
        "-m",
        "sscp_ops",
        "stack",
        "--data-dir",
        str(tmp_path / "var"),
        "--root",
        str(ROOT),
        *[arg for name, port in vars(ports).items() for arg in (f"--{name}-port", str(port))],
    ]
    stack = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    os.set_blocking(stack.stdout.fileno(), False)
    out = b""
    deadline = time.monotonic() + 60
    with selectors.DefaultSelector() as sel:
        sel.register(stack.stdout, selectors.EVENT_READ)
        while b"data and logs" not in out:
            assert time.monotonic() < deadline, out.decode()
            sel.select(deadline - time.monotonic())
            chunk = stack.stdout.read() or b""
            assert chunk or stack.poll() is None, out.decode()
            out += chunk
    return stack, ports


def alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:80]}")
        except psutil.NoSuchProcess:
            pass
    return left


@pytest.mark.parametrize(
    "sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name
)
def test_every_child_stops_with_the_stack(tmp_path: Path, sig: signal.Signals) -> None:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    stack, ports = start_stack(tmp_path)
    try:
        children = psutil.Process(stack.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for part in ("exporter", "webhook worker", "prometheus", "alertmanager"):
            assert part in names, names
        assert len(children) >= 6  # + 2 gunicorn workers
        t0 = time.monotonic()
        os.kill(stack.pid, sig)  # the stack only, as a hangup or `kill` would
        deadline = t0 + 20
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - t0
        assert alive(children) == [], f"left running {took:.1f}s after {sig.name}"
        rc = stack.wait(5)
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
        for p in psutil.process_iter(["cmdline"]):  # what a failed run left, orphans too
            if str(tmp_path) in " ".join(p.info["cmdline"] or []):
                p.kill()
        stack.stdout.close()
    print(json.dumps({"signal": sig.name, "children": len(children), "all_gone_s": round(took, 2)}))
    if sig != signal.SIGKILL:
        assert rc == 0
    # the next `make run` finds its ports free
    Stack(StackPlan(root=ROOT, data=tmp_path / "var", ports=ports)).check_ports()
