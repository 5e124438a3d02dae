"""`sscp-ops stack` start-up checks (the whole-pipeline run is tests/test_stack_e2e.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from helpers import ROOT

from sscp_ops.stack import Ports, Stack, StackPlan


def plan_with(port: int, tmp_path: Path) -> StackPlan:
    return StackPlan(
        root=ROOT,
        data=tmp_path,
        ports=Ports(exporter=port, webhook=0, prometheus=0, alertmanager=0),
    )


def test_a_listening_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"cannot use 127.0.0.1:{port} for exporter"):
            Stack(plan_with(port, tmp_path)).check_ports()


def test_time_wait_from_a_previous_run_is_no_conflict(tmp_path: Path) -> None:
    # The server side closes first, as our servers do when stopped: its port is in TIME_WAIT.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()
    server.close()
    client.recv(1)
    client.close()
    Stack(plan_with(port, tmp_path)).check_ports()  # a second `make run` starts
