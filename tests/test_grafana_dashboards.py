"""Grafana: provisioning files, the dashboard JSON model, and every panel query run against a
real Prometheus loaded with the shipped rules, scraping our real exporter (pointed at a real
Nginx with stub_status and an access log, a real Tomcat, a private Redis, the MariaDB, an HTTPS
site, a backup catalogue, apt) and the real webhook app (tickets, notices, vulnerabilities).

Every panel query must return data, except the few in VALID_ONLY, each with the reason this
machine cannot have the data; for those the query must still be valid PromQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_client
import requests
import yaml
from fx_backup import fill_catalogue
from fx_logs import send, wait_lines
from fx_prometheus import shipped_config
from fx_servers import redis_server
from fx_webhook import LiveWebhook, payload
from helpers import ROOT

from sscp_ops.backup.catalogue import Catalogue
from webhook.events import parse_alertmanager
from webhook.worker import Worker

GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
UIDS = {
    "overview.json": "sscp-overview",
    "host.json": "sscp-host",
    "middleware.json": "sscp-middleware",
    "mysql.json": "sscp-mysql",
    "availability.json": "sscp-availability",
    "backup.json": "sscp-backup",
    "tickets.json": "sscp-tickets",
    "security.json": "sscp-security",
}
CJK = re.compile(r"[\u4e00-\u9fff]")

# Grafana's built-in variables, as Grafana would fill them for a 1-hour view.
BUILTINS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range_s": "3600",
    "$__range": "1h",
}
# Panels (dashboard, title) whose queries are checked for validity only: this machine cannot
# produce their data. Keep this list short and say why.
VALID_ONLY = {
    ("mysql.json", "主从复制延迟"): "no MySQL replica here (needs a source and a replica)",
    ("mysql.json", "复制延迟"): "no MySQL replica here (needs a source and a replica)",
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out += panel.get("panels", [])
    return out


def test_dashboards_are_built_from_build_py() -> None:
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "build.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_dashboard_present_with_stable_uid() -> None:
    assert {p.name: _load(p)["uid"] for p in DASHBOARDS} == UIDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_model(path: Path) -> None:
    board = _load(path)
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert CJK.search(board["title"])
    assert board["time"]["from"] and board["time"]["to"] == "now"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    queries = [v for v in variables.values() if v["type"] == "query"]
    assert queries, "a target/instance variable"
    for var in queries:
        assert CJK.search(var["label"]) or var["label"] in ("Nginx", "Tomcat", "Redis")
        assert re.fullmatch(r"label_values\([a-z_:]+, [a-z_]+\)", var["query"]["query"])
        assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    panels = _panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in grid.values())
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert CJK.search(panel["title"]) or panel["title"] in ("Nginx", "Tomcat", "Redis")
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"])
        assert "defaults" in panel["fieldConfig"]
    # Every query variable is used by some panel query.
    exprs = " ".join(t["expr"] for p in panels for t in p.get("targets", []))
    for var in queries:
        assert f"${var['name']}" in exprs, var["name"]


def test_provisioning() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "sscp.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://127.0.0.1:9090"
    assert source["isDefault"] is True and source["uid"]
    boards = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sscp.yml").read_text())
    (provider,) = boards["providers"]
    assert provider["type"] == "file" and CJK.search(provider["folder"])
    assert provider["options"]["path"].endswith("/grafana/dashboards")
    assert provider["allowUiUpdates"] is False


# --- every panel query against a real Prometheus ---------------------------------------


def _another_backup_run(cat: Catalogue) -> None:
    """A run finished while Prometheus watches: the 30-day ratio needs runs within its window."""
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run = cat.start_run("platform", run_id, time.time())
    cat.record_copy(run, "/a", "local", f"/a/platform/{run_id}", "ok", None, 130)
    cat.finish_run(run, True, None, 130, "z" * 64)


@pytest.fixture
def ticket_webhook(webhook_config, make_services, gateway, clock):
    """The real webhook app over HTTP with tickets acknowledged, resolved, recurring and open;
    SMS delivered through a local gateway, robot messages refused (failed), notices pending,
    and two vulnerability tickets (one fixed, one overdue)."""
    svc = make_services(
        webhook_config(
            sms={"backend": "http", "limits": [], "http": {"url": f"{gateway.url}/sms/send"}},
            robots=[{"name": "ops-group", "kind": "wecom", "url": f"{gateway.url}/robot/reject"}],
        )
    )
    store = svc.store
    [down] = parse_alertmanager(payload("firing-hostdown.json"))
    store.ingest_many([down, *parse_alertmanager(payload("firing-diskfull.json"))], svc.planner)
    clock.advance(600)
    store.transition(1, "ack", "token:ops")
    clock.advance(600)
    store.transition(1, "resolve", "token:ops", "重启")
    store.transition(2, "resolve", "token:ops", "误报")
    Worker(store, svc.config).deliver_due()
    clock.advance(7200)  # resolved after the 2-hour resolution SLA: a breach
    store.transition(3, "resolve", "token:ops", "扩容")
    # The same alert again a day later: a recurrence; its notices stay pending (no worker).
    again = dataclasses.replace(down, starts_at=down.starts_at + dt.timedelta(days=1))
    store.ingest_many([again], svc.planner)
    found = clock.now - dt.timedelta(hours=50)
    store.upsert_vulnerability(
        "scan:1", {"risk": "high", "title": "弱口令", "found_at": found}, "t"
    )
    fixed, _ = store.upsert_vulnerability(
        "scan:2", {"risk": "medium", "title": "目录遍历", "found_at": found}, "t"
    )
    store.transition(fixed["id"], "resolve", "token:ops", "已修复")
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no access log lines in the test output
    hook = LiveWebhook(svc)
    yield hook
    hook.close()
    quiet.setLevel(level)


def _exporter_configs(tmp: Path, site, nginx, nginx_log, tomcat, redis, mysql_user, catalogue):
    """The main exporter's config (every collector a panel reads) and the patches-only one."""
    fmt = nginx_log.log_format.replace("'", "''")
    backup_dir = tmp / "backup-a"
    backup_dir.mkdir()
    config = {
        "exporter": {"collectors": {"host": True, "probe": True}},
        "targets": {
            "probe": [
                {"name": "home", "url": f"{site.http}/ok", "keyword": "智慧监管"},
                {"name": "login", "url": f"{site.https}/ok", "tls": {"ca_file": str(site.ca_file)}},
            ],
            "nginx": [{"name": "web1", "url": nginx.stub_status_url}],
            "tomcat": [
                {
                    "name": "app1",
                    "url": tomcat.status_url,
                    "user": tomcat.user,
                    "password_file": str(tomcat.password_file),
                }
            ],
            "redis": [{"name": "cache1", "address": redis.address}],
            "mysql": [
                {
                    "name": "db1",
                    "address": mysql_user.address,
                    "user": mysql_user.user,
                    "password_file": str(mysql_user.password_file),
                }
            ],
        },
        "backup": {
            "catalog": str(catalogue),
            "sets": [
                {
                    "name": "platform",
                    "config_paths": ["/etc/hostname"],
                    "locations": [{"kind": "local", "path": str(backup_dir)}],
                }
            ],
        },
    }
    logs = (
        "logs:\n"
        f"  positions_dir: {tmp / 'positions'}\n"
        f"  events_db: {tmp / 'events.sqlite'}\n"
        "  exports: {max_requests: 3, window: 3600}\n"
        f"  files: [{{name: web1, path: {nginx_log.access_log}, kind: nginx, format: '{fmt}'}}]\n"
    )
    main = yaml.safe_dump(config, allow_unicode=True) + logs
    patches = "exporter: {collectors: {host: false, probe: false, patches: true}, deadline: 60}\n"
    return main, patches


def _label_values(prom, query: str) -> list[str]:
    metric, label = re.fullmatch(r"label_values\(([a-z_:]+), ([a-z_]+)\)", query).groups()
    series = prom.api("series", **{"match[]": metric})
    return sorted({s[label] for s in series if label in s})


def _substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, expr
    return expr


def _traffic(nginx_log) -> int:
    """Requests to the logging Nginx: pages, two SQL injections, exports over the limit."""
    sent = [("/index.html", "Mozilla/5.0"), ("/missing", "Mozilla/5.0")]
    sent += [("/item?id=1%27%20OR%20%271%27=%271", "Mozilla/5.0")] * 2
    sent += [("/export/cases.csv", "Mozilla/5.0")] * 4
    for target, ua in sent:
        send(nginx_log, target, ua)
    return len(sent)


@pytest.mark.slow
def test_panel_queries_against_real_prometheus(
    tmp_path,
    exporter,
    prometheus,
    probe_site,
    nginx,
    nginx_log,
    tomcat,
    mysql_user,
    ticket_webhook,
) -> None:
    cat = fill_catalogue(tmp_path / "backup.db")
    lines = _traffic(nginx_log)
    wait_lines(nginx_log.access_log, lines)
    with redis_server(tmp_path / "redis") as redis:
        # maxmemory set, so the "share of maxmemory" panels have data.
        client = redis_client.Redis(host=redis.host, port=redis.port)
        client.config_set("maxmemory", "64mb")
        client.set("sscp_grafana_test", "x")
        client.close()
        main, patches = _exporter_configs(
            tmp_path,
            probe_site,
            nginx,
            nginx_log,
            tomcat,
            redis,
            mysql_user,
            tmp_path / "backup.db",
        )
        base = exporter(main)
        apt = exporter(patches)
        requests.get(f"{apt}/metrics", timeout=90)  # apt runs once, then is cached for 1 h
        prom = prometheus(
            shipped_config({"sscp-ops": [base, apt], "sscp-ops-webhook": [ticket_webhook.url]})
        )
        prom.wait_for('count(up{job=~"sscp-ops.*"} == 1) == 3')
        # Counters must move while Prometheus watches for rates and increases to be non-zero.
        wait_lines(nginx_log.access_log, lines + _traffic(nginx_log))
        _another_backup_run(cat)
        cat.close()
        prom.wait_for('sum(increase(sscp_security_events_total{type="sql_injection"}[1h])) > 0')
        prom.wait_for("set:backup_success_ratio:30d")
        prom.wait_for('target:sla_probe_success:avg5m{target="login"}')
        # The overview reads the platform rule once a minute (as the report does): wait for
        # the first whole minute with an evaluation in it.
        prom.wait_for("avg_over_time(platform:sla_availability:up[1h:1m])", timeout=90)
        prom.wait_for("instance:node_cpu_utilisation:rate5m")
        prom.wait_for("target:mysql_slow_queries:rate5m")
        prom.wait_for('ALERTS{alertname!="Watchdog"}')
        failures, checked, valid_only = _check_every_panel(prom)
    assert failures == [], "\n".join(failures)
    assert checked >= 100
    # Every VALID_ONLY entry names a panel that exists (the list cannot rot silently).
    assert valid_only == set(VALID_ONLY)


def _check_every_panel(prom) -> tuple[list[str], int, set]:
    failures: list[str] = []
    seen_valid_only: set = set()
    checked = 0
    for path in DASHBOARDS:
        board = _load(path)
        values: dict[str, str] = {}
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = var["query"]["query"]
            found = _label_values(prom, query)
            if not found:
                failures.append(f"{path.name} variable ${var['name']}: {query} has no values")
            # A multi-value variable shows "All" by default; a single one its first value.
            values[var["name"]] = var["allValue"] or (found[:1] or [".*"])[0]
        for panel in _panels(board):
            key = (path.name, panel["title"])
            for target in panel.get("targets", []):
                expr = _substitute(target["expr"], values)
                where = f"{path.name} «{panel['title']}» {target['refId']}"
                try:
                    result = prom.query(expr)
                except AssertionError as exc:
                    failures.append(f"{where}: invalid: {exc}")
                    continue
                checked += 1
                if key in VALID_ONLY:
                    seen_valid_only.add(key)
                    continue
                if not result:  # rules are evaluated every second: give them a moment
                    try:
                        result = prom.wait_for(expr, timeout=10)
                    except TimeoutError:
                        failures.append(f"{where}: no data for {expr}")
                        continue
                for label in re.findall(r"\{\{(\w+)\}\}", target.get("legendFormat", "")):
                    if not all(label in r["metric"] for r in result):
                        failures.append(f"{where}: legend label {label!r} not in the result")
    return failures, checked, seen_valid_only
