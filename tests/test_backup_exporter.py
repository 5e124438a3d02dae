"""The backup collector: metrics from a catalogue, through the real exporter, promtool-clean."""

from __future__ import annotations

from pathlib import Path

import requests
from fx_backup import fill_catalogue
from helpers import parse_exposition, promtool_check_metrics

from exporters.backup import metrics_for
from sscp_ops.backup.catalogue import SetSummary, connect_readonly, summarise


def test_summary_follows_the_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "backup.db"
    fill_catalogue(path).close()
    db = connect_readonly(path)
    (s, never) = summarise(db, ["platform", "never"])
    db.close()
    assert (s.runs_total, s.failures_total, s.last_run_success) == (2, 1, False)
    assert s.size == 100  # the last successful run's size
    # Newest run with copies: two local, off-site failed; offline: the confirmed older copy.
    assert s.copies == {"local": 2, "offsite": 0, "offline": 1}
    assert not s.compliant_321
    assert s.copy_verified == {"/a": 1, "/b": 0, "/off": 1, "/usb": 1}
    assert s.drill_success and s.drill_duration == 1000
    assert never == SetSummary("never")


def test_never_run_set_reports_zero_times_so_alerts_fire() -> None:
    text = "\n".join(f"{s.name} {s.samples}" for s in metrics_for([SetSummary("p")]) if s.samples)
    assert "backup_last_success_timestamp_seconds" in text
    assert "restore_drill_last_timestamp_seconds" in text
    assert "restore_drill_last_success" not in text  # never drilled is overdue, not failed


def test_exporter_serves_backup_metrics_that_pass_promtool(
    tmp_path: Path, exporter, write_config
) -> None:
    path = tmp_path / "backup.db"
    fill_catalogue(path).close()
    (tmp_path / "a").mkdir()
    base = exporter(
        f"""\
        exporter: {{collectors: {{host: false}}}}
        backup:
          catalog: {path}
          sets:
            - name: platform
              config_paths: [/etc/hostname]
              locations: [{{kind: local, path: {tmp_path / "a"}}}]
        """
    )
    text = requests.get(f"{base}/metrics", timeout=10).text
    m = parse_exposition(text)
    assert m[("backup_runs_total", frozenset({("set", "platform")}))] == 2
    assert m[("backup_failures_total", frozenset({("set", "platform")}))] == 1
    assert m[("backup_321_compliant", frozenset({("set", "platform")}))] == 0
    assert m[("backup_copy_verified", frozenset({("set", "platform"), ("location", "/b")}))] == 0
    assert m[("sscp_exporter_collector_success", frozenset({("collector", "backup")}))] == 1
    for name in (
        "backup_last_success_timestamp_seconds",
        "backup_last_duration_seconds",
        "backup_size_bytes",
        "backup_copies",
        "restore_drill_last_timestamp_seconds",
        "restore_drill_last_success",
        "restore_drill_duration_seconds",
    ):
        assert any(k[0] == name for k in m), name
    backup_only = "".join(
        line + "\n" for line in text.splitlines() if "backup_" in line or "restore_drill" in line
    )
    r = promtool_check_metrics(backup_only)
    assert r.returncode == 0, r.stdout + r.stderr
