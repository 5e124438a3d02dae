"""The backup dashboard: built by grafana/build.py like the others, stable uid, Chinese title,
datasource variable, only backup metrics, valid queries. (tests/test_grafana_dashboards.py runs
every panel against a Prometheus scraping a real backup catalogue and requires data.)"""

from __future__ import annotations

import importlib.util
import json
import re

import requests
from helpers import ROOT, free_port, require_binary, running

DASHBOARD = ROOT / "grafana" / "dashboards" / "backup.json"
KNOWN = {
    "backup_last_success_timestamp_seconds",
    "backup_last_duration_seconds",
    "backup_last_run_success",
    "backup_size_bytes",
    "backup_runs_total",
    "backup_failures_total",
    "backup_copies",
    "backup_copy_verified",
    "backup_321_compliant",
    "restore_drill_last_timestamp_seconds",
    "restore_drill_last_success",
    "restore_drill_duration_seconds",
    "set:backup_success_ratio:30d",
}


def targets(dashboard: dict) -> list[dict]:
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def test_built_by_the_one_generator() -> None:
    spec = importlib.util.spec_from_file_location("grafana_build", ROOT / "grafana" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.DASHBOARDS["backup"] is build.backup
    assert json.loads(DASHBOARD.read_text()) == build.backup()


def test_copy_table_shows_location_and_state() -> None:
    d = json.loads(DASHBOARD.read_text())
    (table,) = [p for p in d["panels"] if p["type"] == "table"]
    organize = table["transformations"][0]["options"]
    assert "Value" not in organize["excludeByName"]
    assert organize["renameByName"]["Value"] == "状态"
    assert organize["renameByName"]["location"] == "位置"


def test_dashboard_shape() -> None:
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] == "sscp-backup"
    assert d["title"] == "备份与灾难恢复"
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for panel in d["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert any("\u4e00" <= c <= "\u9fff" for c in panel["title"]), panel["title"]
    for t in targets(d):
        names = set(re.findall(r"[a-z_:0-9]*(?:backup|restore_drill)[a-z_:0-9]*", t["expr"]))
        assert names and names <= KNOWN, t["expr"]


def test_every_query_is_valid_promql_for_a_real_prometheus(tmp_path) -> None:
    binary = require_binary("prometheus")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    cmd = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(cmd, ready_url=f"{url}/-/ready", timeout=30):
        for t in targets(json.loads(DASHBOARD.read_text())):
            expr = t["expr"].replace("$set", ".*")
            r = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
            assert r.status_code == 200 and r.json()["status"] == "success", (expr, r.text)
