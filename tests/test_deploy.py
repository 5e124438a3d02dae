"""What deploy/ ships: configs that the real tools accept."""

from __future__ import annotations

import subprocess

import yaml
from helpers import ROOT, free_port, require_binary

from sscp_ops.config import load_config

DEPLOY = ROOT / "deploy"


def test_example_config_is_valid_and_has_every_section() -> None:
    from sscp_ops.config import Config

    cfg = load_config(DEPLOY / "config.example.yml")
    raw = yaml.safe_load((DEPLOY / "config.example.yml").read_text())
    for section in ("exporter", "targets", "logs", "backup", "webhook", "report", "journeys"):
        assert section in raw and section in Config.model_fields
    assert cfg.targets.mysql[0].password_file is not None  # secrets by file, never inline
    assert "password:" not in (DEPLOY / "config.example.yml").read_text()


def test_fleet_prometheus_config_passes_promtool(tmp_path) -> None:
    promtool = require_binary("promtool")
    # promtool resolves rule_files relative to the config: check it where it is shipped.
    result = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus-fleet.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    targets = yaml.safe_load((DEPLOY / "prometheus" / "targets" / "hosts-platform.yml").read_text())
    assert all(t["labels"]["host"] for t in targets)


def test_systemd_units_verify(tmp_path) -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} >= {"sscp-ops-exporter.service", "sscp-ops-webhook.service"}
    for unit in units:
        text = unit.read_text()
        assert "ExecStart=" in text
        if "exporter" in unit.name or "webhook" in unit.name:
            for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=sscp-ops"):
                assert hardening in text, (unit.name, hardening)


def test_nginx_proxy_config_is_accepted_by_nginx(tmp_path) -> None:
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=ops.example.gov.cn",
            "-keyout",
            str(tmp_path / "ops.key"),
            "-out",
            str(tmp_path / "ops.crt"),
        ],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "sscp-ops.conf").read_text()
    site = (
        site.replace("/etc/sscp-ops/tls/", f"{tmp_path}/")
        .replace("listen 443", f"listen 127.0.0.1:{free_port()}")
        .replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\n{site}\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_production_prometheus_keeps_what_the_reports_need(tmp_path) -> None:
    """The drop-in for Debian's prometheus.service sets a retention of at least
    PrometheusRetentionTooShort.min_days (400), and a real Prometheus started with its flags
    runs with it (Debian's 2.42 has no prometheus_tsdb_retention_limit_seconds yet: its
    runtime info says it)."""
    import re
    import shlex

    from fx_prometheus import run_prometheus

    dropin = (DEPLOY / "systemd" / "prometheus.service.d" / "sscp-ops.conf").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", dropin, re.M)
    flags = dict(a.split("=", 1) for a in shlex.split(exec_start)[1:] if a.startswith("--"))
    assert flags["--config.file"] == "/opt/sscp-ops/deploy/prometheus/prometheus.yml"
    retention = flags["--storage.tsdb.retention.time"]
    need = yaml.safe_load((ROOT / "rules" / "thresholds.yml").read_text())["alerts"][
        "PrometheusRetentionTooShort"
    ]["min_days"]
    assert retention == "400d" and int(retention.removesuffix("d")) >= need
    assert "prometheus.service.d/sscp-ops.conf" in (DEPLOY / "install.sh").read_text()
    config = "global: {scrape_interval: 1h}\nscrape_configs: []\n"
    with run_prometheus(config, tmp_path, retention=retention) as prom:
        info = prom.api("status/runtimeinfo")
    assert info["storageRetention"] == "400d"
