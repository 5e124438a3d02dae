"""Pure availability functions and the source adapters' parsing and failure paths."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report import availability as av
from sscp_ops.report.sources import (
    CommandEventSource,
    SourceError,
    SqliteBackupCatalogue,
    event_from_json,
    steps_for,
    ticket_from_json,
)

U, D, M = av.UP, av.DOWN, av.MISSING


def grid(n: int, step: int = 60) -> av.Grid:
    return av.Grid(0.0, float(n * step), step)


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"a": [U, U, D, M, M], "b": [U, D, U, U, D]}, [U, D, D, M, D]),
        ({"a": [U, M]}, [U, M]),
        ({}, [M, M]),
    ],
)
def test_platform_states(columns, expected) -> None:
    assert av.platform_states(columns, grid(len(expected))) == expected


def test_points_are_placed_on_the_grid() -> None:
    g = grid(4)
    assert av.target_states([(0, 1), (60, 0), (180, 1), (240, 1), (-60, 0)], g) == [U, D, M, U]


def test_summary_never_counts_missing() -> None:
    g = grid(6)
    s = av.summarise([U, U, D, M, M, U], g)
    assert (s.up_seconds, s.down_seconds, s.missing_seconds) == (180, 60, 120)
    assert s.ratio == Fraction(3, 4)
    assert av.summarise([M, M], grid(2)).ratio is None


def test_interval_mask_edges() -> None:
    start = datetime(2026, 10, 1, tzinfo=CHINA_TZ)
    g = av.grid_for(start, start + timedelta(hours=1), 60)
    mask = av.interval_mask(g, [(start + timedelta(minutes=10), start + timedelta(minutes=20))])
    assert [k for k, v in enumerate(mask) if v] == list(range(10, 20))


def test_outages_merge_runs_and_name_targets() -> None:
    g = grid(6)
    cols = {"a": [U, D, D, U, U, D], "b": [U, U, D, U, U, U]}
    runs = av.outages(cols, av.platform_states(cols, g), g)
    assert [(o.start, o.end, o.targets) for o in runs] == [
        (60, 180, ("a", "b")),
        (300, 360, ("a",)),
    ]


def test_runs_of_a_state() -> None:
    g = grid(6)
    assert av.runs([M, U, M, M, U, M], g, M) == [(0, 60), (120, 240), (300, 360)]
    assert av.runs([U, U], grid(2), D) == []


def test_step_must_divide_the_period() -> None:
    start = datetime(2026, 10, 1, tzinfo=CHINA_TZ)
    with pytest.raises(ValueError, match="divide"):
        av.grid_for(start, start + timedelta(seconds=90), 60)


def test_chart_steps() -> None:
    assert steps_for(31 * 86400) == 1800
    assert steps_for(86400) == 300
    assert steps_for(365 * 86400) % 3600 == 0


def test_ticket_json_in_the_api_format() -> None:
    """The API's field names (docs/api.md); the live API is read in test_report_real_sources."""
    t = ticket_from_json(
        {
            "id": 7,
            "kind": "incident",
            "starts_at": "2026-10-03T00:58:00.000Z",
            "created_at": "2026-10-03T01:00:00.000Z",
            "acknowledged_at": "2026-10-03T01:10:00.000Z",
            "resolved_at": None,
            "recurrence_of": 3,
            "problem_id": None,
            "sla": {"response_seconds": 600.0},
        }
    )
    assert t.id == "7" and t.recurrence_of == "3" and t.problem_id is None
    assert t.start == datetime(2026, 10, 3, 1, 0, tzinfo=UTC)  # created_at, as the webhook
    assert t.fired == datetime(2026, 10, 3, 0, 58, tzinfo=UTC)
    assert t.done is None
    with pytest.raises(SourceError, match="no created_at"):
        ticket_from_json({"id": 1, "kind": "incident"})


def test_event_json_of_logs_events() -> None:
    e = event_from_json(
        {
            "key": "sshd:1:0",
            "time": 1790000000.0,
            "source": "sshd",
            "type": "brute_force",
            "rule": "sshd-failures",
            "client_ip": "203.0.113.9",
            "account": "admin",
            "detail": "",
            "time_iso": "2026-09-21T22:13:20+08:00",
        }
    )
    assert (e.kind, e.source, e.log) == ("brute_force", "203.0.113.9", "sshd")
    assert e.time == datetime.fromtimestamp(1790000000, UTC)
    with pytest.raises(KeyError):
        event_from_json({"type": "xss"})


def test_event_command_failures(tmp_path: Path) -> None:
    since = datetime(2026, 10, 1, tzinfo=CHINA_TZ)
    until = since + timedelta(days=1)
    bad = tmp_path / "bad.py"
    bad.write_text("import sys; print('boom', file=sys.stderr); sys.exit(3)")
    with pytest.raises(SourceError, match="exit 3: boom"):
        CommandEventSource([sys.executable, str(bad)]).events(since, until)
    lines = tmp_path / "lines.py"
    lines.write_text("print('{\"time\": 1}'); print('{\"time\": 2}')")
    with pytest.raises(SourceError, match="not JSON"):
        CommandEventSource([sys.executable, str(lines)]).events(since, until)
    with pytest.raises(SourceError):
        CommandEventSource([str(tmp_path / "missing")]).events(since, until)
    cmd = CommandEventSource(["sscp-ops", "logs", "events"], config_file="/etc/x.yml").command
    assert cmd[-2:] == ["--config.file", "/etc/x.yml"]
    assert "--config.file" not in CommandEventSource(["x", "--db", "e"], config_file="c").command


def test_sqlite_catalogue_failures(tmp_path: Path) -> None:
    since = datetime(2026, 10, 1, tzinfo=CHINA_TZ)
    until = datetime(2026, 11, 1, tzinfo=CHINA_TZ)
    with pytest.raises(SourceError, match="not found"):
        SqliteBackupCatalogue(tmp_path / "none.sqlite").runs(since, until)
    path = tmp_path / "c.sqlite"
    sqlite3.connect(path).close()
    with pytest.raises(SourceError, match="no such table"):
        SqliteBackupCatalogue(path).runs(since, until)


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({"seconds": 10, "calls": 100, "no_index_used": 3}, "建立索引"),
        ({"seconds": 10, "calls": 100, "rows_examined": 50000, "rows_sent": 100}, "500 倍"),
        ({"seconds": 10, "calls": 100, "tmp_disk_tables": 1}, "tmp_table_size"),
        ({"seconds": 10, "calls": 100, "sort_merge_passes": 2}, "sort_buffer_size"),
        ({"seconds": 300, "calls": 100}, "EXPLAIN"),
        ({"seconds": 10, "calls": 100, "rows_examined": 50000, "rows_sent": 0}, "调用次数"),
    ],
)
def test_statement_advice(row, needle) -> None:
    from sscp_ops.report.build import statement_advice

    assert any(needle in a for a in statement_advice(row)), statement_advice(row)
