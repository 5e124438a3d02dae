from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import textwrap
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import exporter_running, free_port, require_binary, running

pytest_plugins = [
    "fx_probe",
    "fx_prometheus",
    "fx_report",
    "fx_mask",
    "fx_tls",
    "fx_accounts",
    "fx_webhook",
    "fx_logs",
    "fx_backup",
    "fx_servers",
    "fx_targets",
    "fx_journeys",
]


#: How far ``time_shift`` moves the clock for the second run of a test marked ``dates``:
#: a year and a month, so a date fixed in a fixture, a year boundary or a contract year
#: that ends shows up as a failure today instead of on a later day.
TIME_SHIFT = dt.timedelta(days=365 + 31)


def pytest_generate_tests(metafunc):
    """Tests marked ``dates`` run twice: on today's clock and on a clock moved ahead by
    TIME_SHIFT (time-machine moves time.time and datetime.now for the whole process, threads
    included; subprocesses keep the real clock, so tests marked ``slow`` run once)."""
    marked = metafunc.definition.get_closest_marker
    if marked("dates") and not marked("slow") and "time_shift" in metafunc.fixturenames:
        metafunc.parametrize(
            "time_shift", [None, TIME_SHIFT], ids=["today", "shifted"], indirect=True
        )


@pytest.fixture(autouse=True)
def time_shift(request):
    """Moves the clock by ``request.param`` (a timedelta) for the test, ticking on."""
    shift = getattr(request, "param", None)
    if not shift:
        yield None
        return
    import time_machine

    with time_machine.travel(dt.datetime.now(dt.UTC) + shift, tick=True):
        yield shift


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a YAML config (dedented) into the test's temp dir and return its path."""

    def write(text: str, name: str = "config.yml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def exporter(write_config):
    """Factory: start ``sscp-ops exporter`` on a free port with a config; returns its base URL.

    Every exporter started is stopped (SIGTERM) at the end of the test.
    """
    with ExitStack() as stack:

        def start(config_text: str = "exporter: {collectors: {host: true}}\n", *extra: str) -> str:
            cfg = write_config(config_text, f"exporter-{secrets.token_hex(4)}.yml")
            base, _ = stack.enter_context(exporter_running(cfg, *extra))
            return base

        yield start


@pytest.fixture(scope="session")
def node_exporter():
    """Debian's node_exporter 1.5 on a free loopback port; yields its /metrics URL."""
    binary = require_binary("prometheus-node-exporter", "node_exporter")
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with running(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        ready_url=url,
        stderr=subprocess.DEVNULL,  # it logs failing collectors on every scrape; nobody reads it
    ):
        yield url
