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


def _rendered_alertmanager(tmp_path: Path, kit: dict) -> dict:
    import yaml

    from sscp_ops.config import Config
    from sscp_ops.stack import alertmanager_config

    shipped = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    plan = StackPlan(root=ROOT, data=tmp_path, ports=Ports(webhook=19811))
    return alertmanager_config(plan, shipped, Config.model_validate(kit))


def test_rendered_alertmanager_follows_the_kit_config(tmp_path: Path, monkeypatch) -> None:
    from sscp_ops.alertmanager import shipped_alert_size

    # No alertmanager.email: the pipeline's alerts still make tickets, and no e-mail receiver
    # is left that would fail on every send.
    cfg = _rendered_alertmanager(tmp_path, {})
    receivers = {r["name"]: r for r in cfg["receivers"]}
    assert "email_configs" not in receivers["pipeline"]
    assert receivers["pipeline"]["webhook_configs"][0]["url"].startswith("http://127.0.0.1:19811/")
    # max_alerts follows webhook.max_body_bytes.
    size = shipped_alert_size(ROOT)
    cfg = _rendered_alertmanager(tmp_path, {"webhook": {"max_body_bytes": 4 * 1024 * 1024}})
    hooks = [h for r in cfg["receivers"] for h in r["webhook_configs"] if "max_alerts" in h]
    assert len(hooks) == 2
    assert {h["max_alerts"] for h in hooks} == {size.max_alerts(4 * 1024 * 1024)} != {23}
    # The SMTP password from an environment variable: into a 0600 file, never inline.
    monkeypatch.setenv("SSCP_SMTP_PASSWORD", "from-env")
    kit = {
        "alertmanager": {
            "email": {
                "to": ["oncall@example.gov.cn"],
                "sender": "am@example.gov.cn",
                "smarthost": "smtp.example.gov.cn:587",
                "auth_username": "am",
                "auth_password_env": "SSCP_SMTP_PASSWORD",
            }
        }
    }
    cfg = _rendered_alertmanager(tmp_path, kit)
    (mail,) = {r["name"]: r for r in cfg["receivers"]}["pipeline"]["email_configs"]
    assert mail["to"] == "oncall@example.gov.cn" and mail["from"] == "am@example.gov.cn"
    assert mail["smarthost"] == "smtp.example.gov.cn:587" and mail["require_tls"] is True
    assert mail["text"] == '{{ template "sscp.text" . }}'
    secret = Path(mail["auth_password_file"])
    assert secret.read_text() == "from-env" and secret.stat().st_mode & 0o777 == 0o600
    assert "from-env" not in str(cfg)


def test_prometheus_keeps_the_history_the_reports_need(tmp_path: Path) -> None:
    # Prometheus' default is 15 days; PrometheusRetentionTooShort fires below min_days.
    import yaml

    thresholds = yaml.safe_load((ROOT / "rules" / "thresholds.yml").read_text())
    days = thresholds["alerts"]["PrometheusRetentionTooShort"]["min_days"]
    children = Stack(plan_with(0, tmp_path)).prepare()
    (prometheus,) = [c for c in children if c.name == "prometheus"]
    assert f"--storage.tsdb.retention.time={days}d" in prometheus.argv


def test_the_data_directory_is_private_under_umask_022(tmp_path: Path) -> None:
    """``make run`` keeps the ticket store, tokens, logs and metrics in its data directory:
    0700 directories and 0600 files whatever the umask, an older 0755 one tightened."""
    import os
    import stat

    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # a data directory of an older run
    old = os.umask(0o022)
    try:
        Stack(StackPlan(root=ROOT, data=data, ports=Ports())).prepare()
    finally:
        os.umask(old)
    loose = []
    for path in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{path.relative_to(tmp_path)} {mode:o}")
    assert loose == []
    assert (data / "alertmanager.token").stat().st_size > 20
