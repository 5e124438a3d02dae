"""The report's security section reads the events in process (issue 16, item 16): before, the
default source ran a bare ``sscp-ops logs events``, which fails unless ``.venv/bin`` is on PATH
(as under the shipped systemd unit). Run here as the unit runs it: the console script by its
absolute path, with a PATH holding only the system directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from helpers import free_port

from sscp_ops.events import Event, EventStore
from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report.period import month
from sscp_ops.report.sources import StoreEventSource

H = timedelta(hours=1)
UNIT = Path(__file__).resolve().parents[1] / "deploy/systemd/sscp-ops-report-monthly.service"


def _seed(db: Path, start: datetime) -> None:
    store = EventStore(db)
    rows = [
        ("sql_injection", start + 5 * H),
        ("xss", start + 6 * H),
        ("brute_force", start + 7 * H),
        ("xss", start - H),  # the month before: not counted
    ]
    store.add(
        Event(f"k{i}", t.timestamp(), "nginx", kind, "r", "198.51.100.9", "", "x")
        for i, (kind, t) in enumerate(rows)
    )
    store.close()


def test_security_section_without_venv_on_path(tmp_path: Path) -> None:
    period = month("2026-10", CHINA_TZ)  # a fixed month: the events are stamped inside it
    db = tmp_path / "events.sqlite"
    _seed(db, period.start)
    config = tmp_path / "config.yml"
    config.write_text(f"logs:\n  events_db: {db}\n  positions_dir: {tmp_path / 'pos'}\n")
    script = Path(sys.executable).with_name("sscp-ops")
    assert script.exists()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PATH")}
    env["PATH"] = "/usr/bin:/bin"  # as systemd gives a unit: no .venv/bin
    out = tmp_path / "out"
    done = subprocess.run(
        [
            str(script),
            "report",
            "monthly",
            "--config.file",
            str(config),
            "--month",
            period.label,
            "--prometheus-url",
            f"http://127.0.0.1:{free_port()}",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    sec = json.loads((out / "report.json").read_text())["security"]
    assert "error" not in sec, sec
    counts = {k["kind"]: k["count"] for k in sec["by_kind"]}
    assert counts == {"sql_injection": 1, "xss": 1, "brute_force": 1}
    assert sec["total"] == 3


def test_store_event_source_maps_fields(tmp_path: Path) -> None:
    start = datetime(2026, 10, 1, tzinfo=CHINA_TZ)
    _seed(tmp_path / "e.sqlite", start)
    got = StoreEventSource(tmp_path / "e.sqlite").events(start, start + 24 * H)
    assert [(e.kind, e.source, e.log, e.rule) for e in got] == [
        ("sql_injection", "198.51.100.9", "nginx", "r"),
        ("xss", "198.51.100.9", "nginx", "r"),
        ("brute_force", "198.51.100.9", "nginx", "r"),
    ]
    assert got[0].time == start + 5 * H


def test_shipped_unit_runs_the_venv_script_with_a_path_to_it() -> None:
    text = UNIT.read_text()
    assert "exec /opt/sscp-ops/.venv/bin/sscp-ops report monthly" in text
    assert "Environment=PATH=/opt/sscp-ops/.venv/bin:" in text
