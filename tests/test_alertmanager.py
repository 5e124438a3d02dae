"""Alertmanager: `amtool check-config`, `amtool config routes test` per route, the Chinese
templates, and a real Alertmanager delivering to a local HTTP receiver (standing in for the
ticket webhook) with the bearer token, the heartbeat route and the inhibition rules."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from helpers import ROOT, free_port, require_binary, running, serving, wait_for

AM = ROOT / "alertmanager"
CONFIG = AM / "alertmanager.yml"
CASES = yaml.safe_load((AM / "tests" / "routes.yml").read_text())


def _amtool() -> str:
    return require_binary("amtool")


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))


def test_amtool_check_config() -> None:
    result = subprocess.run(
        [_amtool(), "check-config", str(CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 templates" in result.stdout


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['labels']['alertname']}")
def test_amtool_routes(case: dict) -> None:
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    result = subprocess.run(
        [_amtool(), "config", "routes", "test", f"--config.file={CONFIG}", "--tree"]
        + [f"--verify.receivers={case['receiver']}", *labels],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tree = [line for line in result.stdout.splitlines() if "──" in line]
    leaf = tree[-1].split("──", 1)[1].strip()
    assert leaf.split("  receiver:")[0].strip() == case["route"]


def test_every_route_has_a_case_and_timings_fit_the_response_target() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    routes = {",".join(r["matchers"]): r for r in config["route"]["routes"]}
    tested = {c["route"].strip("{}") for c in CASES}
    assert set(routes) | {"default-route"} == tested
    critical, warning = routes['severity="critical"'], routes['severity="warning"']
    watchdog = routes['alertname="Watchdog"']
    # A critical alert is out within 30 s and repeated inside the 15-minute response target.
    assert _duration(critical["group_wait"]) <= 30
    assert _duration(critical["repeat_interval"]) <= 15 * 60
    assert _duration(warning["group_wait"]) > _duration(critical["group_wait"])
    assert _duration(warning["group_interval"]) > _duration(critical["group_interval"])
    # Alertmanager re-sends at group_interval ticks once repeat_interval has passed: the
    # heartbeat cadence is repeat_interval rounded up to a whole number of ticks.
    tick, repeat = _duration(watchdog["group_interval"]), _duration(watchdog["repeat_interval"])
    assert -(-repeat // tick) * tick == 60 and watchdog["group_wait"] == "0s"
    # The pipeline's own alerts go out as fast as critical ones.
    for key, route in routes.items():
        if route["receiver"] == "pipeline":
            assert _duration(route["group_wait"]) <= _duration(critical["group_wait"]), key
            assert _duration(route["repeat_interval"]) <= 15 * 60, key
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["url"].startswith("http://127.0.0.1:9811/api/v1/")
            auth = hook["http_config"]["authorization"]
            assert auth["type"] == "Bearer" and "credentials" not in auth
            assert auth["credentials_file"]
            tickets = hook["url"].endswith("/api/v1/alerts")
            assert tickets is (receiver["name"] in ("ticket-webhook", "pipeline"))
            assert hook["send_resolved"] is tickets
            # A notification always fits the webhook's body limit (see below).
            assert (hook.get("max_alerts", 0) > 0) is tickets


def test_pipeline_alerts_have_a_way_out_that_is_not_the_webhook() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    pipeline = receivers["pipeline"]
    assert set(pipeline) == {"name", "webhook_configs", "email_configs"}
    (mail,) = pipeline["email_configs"]
    # Secrets are never inline: the password comes from a file (`sscp-ops stack` fills it in).
    assert not {"auth_password", "auth_secret"} & set(mail)
    assert mail["text"] == '{{ template "sscp.text" . }}' and mail["html"] == ""
    assert mail["headers"]["Subject"] == '{{ template "sscp.title" . }}'
    # Every alert of the pipeline's own rules takes that route.
    names = {
        "AlertPipelineDown",
        "NotificationDeliveryFailing",
        "NoticeWorkerDown",
        "AlertmanagerFailedToSendAlerts",
        "PrometheusNotificationsFailing",
    }
    routed = {c["labels"]["alertname"] for c in CASES if c["receiver"] == "pipeline"}
    assert names | {"TargetDown"} == routed


def test_max_alerts_keeps_the_largest_notification_under_the_body_limit() -> None:
    from sscp_ops.alertmanager import shipped_alert_size
    from sscp_ops.config.webhook import WebhookConfig

    size = shipped_alert_size(ROOT)
    limit = WebhookConfig().max_body_bytes
    config = yaml.safe_load(CONFIG.read_text())
    hooks = [h for r in config["receivers"] for h in r["webhook_configs"] if "max_alerts" in h]
    assert {h["max_alerts"] for h in hooks} == {size.max_alerts(limit)}
    (max_alerts,) = {h["max_alerts"] for h in hooks}
    assert size.envelope + max_alerts * size.alert <= limit
    assert size.envelope + (max_alerts + 1) * size.alert > limit


# --- a real Alertmanager ---------------------------------------------------------------


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict]]

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(  # type: ignore[attr-defined]
            (self.path, self.headers.get("Authorization", ""), json.loads(body))
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def sink() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.received = []  # type: ignore[attr-defined]
    with serving(server):
        yield server


TLS_SUMMARY = "home 的 TLS 证书即将过期"


def _alert(labels: dict, summary: str = "测试") -> dict:
    now = datetime.now(UTC)
    return {
        "labels": labels,
        "annotations": {"summary": summary, "description": f"{summary}的详情", "runbook_url": "x"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


@pytest.mark.slow
def test_real_alertmanager_delivers_heartbeat_tickets_and_inhibits(sink, tmp_path: Path) -> None:
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    token = tmp_path / "webhook.token"
    token.write_text("s3cret-token\n")
    text = CONFIG.read_text().replace(
        "http://127.0.0.1:9811", f"http://127.0.0.1:{sink.server_port}"
    )
    text = text.replace("/etc/sscp-ops/webhook.token", str(token))
    (tmp_path / "templates").symlink_to(AM / "templates")
    (tmp_path / "alertmanager.yml").write_text(text)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        binary,
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with running(cmd, ready_url=f"{base}/-/ready"):
        alerts = [
            _alert({"alertname": "Watchdog", "severity": "none"}, "告警链路心跳"),
            _alert(
                {
                    "alertname": "TlsCertificateExpiringSoon",
                    "severity": "critical",
                    "target": "home",
                    "instance": "e",
                    "job": "sscp-ops",
                },
                TLS_SUMMARY,
            ),
            _alert(
                {
                    "alertname": "TlsCertificateExpiringSoon",
                    "severity": "warning",
                    "target": "home",
                    "instance": "e",
                    "job": "sscp-ops",
                },
                TLS_SUMMARY,
            ),
            _alert(
                {
                    "alertname": "TargetDown",
                    "severity": "critical",
                    "instance": "10.0.0.9:9810",
                    "job": "sscp-ops",
                },
                "采集目标无法抓取",
            ),
            _alert(
                {
                    "alertname": "HostHighCpuUsage",
                    "severity": "critical",
                    "instance": "10.0.0.9:9810",
                    "job": "sscp-ops",
                },
                "主机 CPU 使用率过高",
            ),
            _alert(
                {
                    "alertname": "HostMemoryHigh",
                    "severity": "warning",
                    "instance": "10.0.0.8:9810",
                    "job": "sscp-ops",
                },
                "主机内存使用率过高",
            ),
            _alert(
                {
                    "alertname": "RedisDown",
                    "severity": "critical",
                    "instance": "e",
                    "job": "sscp-ops",
                    "target": "cache1",
                },
                "Redis cache1 不可用",
            ),
            _alert(
                {
                    "alertname": "RedisMemoryHigh",
                    "severity": "warning",
                    "instance": "e",
                    "job": "sscp-ops",
                    "target": "cache1",
                },
                "Redis 内存高",
            ),
        ]
        requests.post(f"{base}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()

        def state() -> dict[tuple, list]:
            got = requests.get(f"{base}/api/v2/alerts", timeout=5).json()
            return {
                (a["labels"]["alertname"], a["labels"]["severity"]): a["status"]["inhibitedBy"]
                for a in got
            }

        inhibited = wait_for(
            lambda: (s := state()) and len(s) == len(alerts) and s,
            10,
            "the inhibitions",
            interval=0.2,
        )
        muted = {key for key, by in inhibited.items() if by}
        assert muted == {
            ("TlsCertificateExpiringSoon", "warning"),  # critical twin
            ("HostHighCpuUsage", "critical"),  # its target is down
            ("RedisMemoryHigh", "warning"),  # Redis itself is down
        }

        # Watchdog at once on the heartbeat endpoint; critical tickets within ~10 s.
        def delivered(path: str, name: str) -> list:
            return [
                (auth, body)
                for p, auth, body in sink.received
                if p == path and body["groupLabels"].get("alertname") == name
            ]

        (auth, beat), *_ = wait_for(
            lambda: delivered("/api/v1/heartbeat", "Watchdog"), 10, "the heartbeat", interval=0.2
        )
        assert auth == "Bearer s3cret-token"
        assert beat["receiver"] == "heartbeat" and beat["status"] == "firing"
        (auth, ticket), *_ = wait_for(
            lambda: delivered("/api/v1/alerts", "RedisDown"),
            20,
            "the RedisDown ticket",
            interval=0.2,
        )
        assert auth == "Bearer s3cret-token"
        assert ticket["receiver"] == "ticket-webhook"
        assert [a["labels"]["target"] for a in ticket["alerts"]] == ["cache1"]
        wait_for(
            lambda: delivered("/api/v1/alerts", "TlsCertificateExpiringSoon"),
            20,
            "the TLS ticket",
            interval=0.2,
        )
        time.sleep(1)
        names = {body["groupLabels"]["alertname"] for p, _, body in sink.received}
        # Inhibited alerts and warnings (2 m group_wait) are not sent in this window.
        assert names == {"Watchdog", "RedisDown", "TlsCertificateExpiringSoon", "TargetDown"}
        tls = delivered("/api/v1/alerts", "TlsCertificateExpiringSoon")[0][1]
        assert [a["labels"]["severity"] for a in tls["alerts"]] == ["critical"]

    # The Chinese templates render the payload Alertmanager really sent.
    data = tmp_path / "payload.json"
    data.write_text(json.dumps(ticket, ensure_ascii=False))
    text = _render('{{ template "sscp.text" . }}', data)
    assert text.startswith("【告警】[严重] RedisDown 共 1 条")
    assert "告警对象：cache1" in text and "告警摘要：Redis cache1 不可用" in text
    assert "处置手册：x" in text and "开始时间：20" in text
    assert "已恢复" not in text
    resolved = dict(ticket, status="resolved")
    resolved["alerts"] = [dict(a, status="resolved") for a in ticket["alerts"]]
    data.write_text(json.dumps(resolved, ensure_ascii=False))
    text = _render('{{ template "sscp.text" . }}', data)
    assert text.startswith("【恢复】") and "== 已恢复（1）==" in text and "恢复时间：" in text
    sms = _render('{{ template "sscp.sms" . }}', data)
    assert sms == "【智慧监管平台】恢复：Redis cache1 不可用"


def _render(template: str, data: Path) -> str:
    result = subprocess.run(
        [_amtool(), "template", "render", f"--template.glob={AM / 'templates' / '*.tmpl'}"]
        + [f"--template.text={template}", f"--template.data={data}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
