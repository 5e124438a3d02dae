"""A real Alertmanager (Debian's 0.25) on the config the stack renders, delivering to the real
webhook app and to a local SMTP server: large groups fit the webhook's body limit and the cut
alerts are counted on a ticket; the alert pipeline's own alerts reach the on-call person by
e-mail when the webhook is down (issue 14, items 2 and 3)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from fx_webhook import AM_TOKEN
from helpers import ROOT, free_port, parse_exposition, require_binary, running, wait_for

from sscp_ops.alertmanager import (
    EXTERNAL_URL_BYTES,
    SILENT_ACTION,
    AlertLimits,
    alert_size,
    shipped_alert_size,
)
from sscp_ops.config import Config
from sscp_ops.stack import Ports, StackPlan, alertmanager_config
from webhook.events import TRUNCATION_PREFIX

pytestmark = pytest.mark.slow


class Alertmanager:
    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, alerts: list[dict]) -> None:
        requests.post(f"{self.base}/api/v2/alerts", json=alerts, timeout=30).raise_for_status()

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        return parse_exposition(requests.get(f"{self.base}/metrics", timeout=5).text)

    def counter(self, name: str, integration: str) -> float:
        key = (name, frozenset({("integration", integration)}))
        return self.metrics().get(key, 0.0)


@contextmanager
def alertmanager(tmp_path: Path, webhook_port: int, kit: dict | None = None) -> Iterator:
    """Alertmanager on a free port with the config `sscp-ops stack` renders for a webhook on
    ``webhook_port`` (token AM_TOKEN) and the sscp-ops config ``kit``."""
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    data = tmp_path / "am"
    data.mkdir()
    (data / "alertmanager.token").write_text(AM_TOKEN + "\n")
    plan = StackPlan(root=ROOT, data=data, ports=Ports(webhook=webhook_port))
    shipped = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    config = alertmanager_config(plan, shipped, Config.model_validate(kit or {}))
    (data / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        binary,
        f"--config.file={data / 'alertmanager.yml'}",
        f"--storage.path={data / 'storage'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with (data / "stderr").open("w") as log, running(cmd, ready_url=f"{base}/-/ready", stderr=log):
        yield Alertmanager(base)


def _alert(labels: dict, summary: str, description: str, url: str = "") -> dict:
    now = dt.datetime.now(dt.UTC)
    return {
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"docs/runbooks/{labels['alertname']}.md",
        },
        # Now, not earlier: Alertmanager sends a group at once (without group_wait) when its
        # first alert started more than group_wait ago, and then only the alerts it has so far.
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
        "generatorURL": url,
    }


def _disk_alerts(count: int) -> list[dict]:
    """``count`` HostDiskSpaceCritical alerts of one host (one group), as Prometheus sends them."""
    out = []
    for i in range(count):
        mount = f"/srv/data/volume-{i:05d}"
        out.append(
            _alert(
                {
                    "alertname": "HostDiskSpaceCritical",
                    "severity": "critical",
                    "instance": "10.0.0.1:9810",
                    "job": "sscp-ops",
                    "device": f"/dev/mapper/vg-data{i:05d}",
                    "fstype": "ext4",
                    "mountpoint": mount,
                    "platform": "sscp",
                },
                f"10.0.0.1:9810 {mount} 磁盘空间严重不足",
                f"主机 10.0.0.1:9810 的 {mount} 可用空间仅剩 3.2%，低于 5%，请立即清理或扩容。",
                "http://prometheus:9090/graph?g0.expr=instance%3Anode_filesystem_avail%3Aratio"
                "+%3C+0.05&g0.tab=1",
            )
        )
    return out


def test_a_group_of_4000_alerts_is_ticketed_and_the_cut_alerts_are_counted(
    tmp_path: Path, live_webhook
) -> None:
    store = live_webhook.services.store
    port = int(live_webhook.url.rsplit(":", 1)[1])
    alerts = _disk_alerts(4000)
    with alertmanager(tmp_path, port) as am:
        am.post(alerts)
        # Alertmanager sends the group after group_wait (10 s for critical) and counts the
        # notification as sent or failed (the webhook's 413 is final for it).
        wait_for(
            lambda: (
                am.counter("alertmanager_notifications_total", "webhook") >= 1
                and (
                    store.count_tickets()
                    or am.counter("alertmanager_notifications_failed_total", "webhook")
                )
            ),
            60,
            "the group's notification",
            interval=0.2,
        )
        failed = am.counter("alertmanager_notifications_failed_total", "webhook")
    tickets = store.list_tickets(limit=5000)
    cut = [t for t in tickets if t["fingerprint"].startswith(TRUNCATION_PREFIX)]
    listed = [t for t in tickets if t not in cut]
    assert {t["alertname"] for t in tickets} == {"HostDiskSpaceCritical"}
    assert failed == 0
    shipped = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    (hook,) = next(r for r in shipped["receivers"] if r["name"] == "ticket-webhook")[
        "webhook_configs"
    ]
    assert 0 < hook["max_alerts"] < 4000
    assert len(listed) == hook["max_alerts"]
    # One more ticket for the group says how many alerts Alertmanager did not list.
    (note,) = cut
    assert note["severity"] == "critical" and note["target"] == "10.0.0.1:9810"
    numbers = [int(n) for n in re.findall(r"(\d+) 条", note["summary"])]
    assert 4000 - hook["max_alerts"] in numbers
    assert len(listed) + int(numbers[0]) == len(alerts)


# --- the largest notification fits the body limit ---------------------------------------


class MeasuredWebhook:
    """The real webhook app over HTTP (werkzeug, threaded) that records each request's body
    size and status."""

    def __init__(self, services) -> None:
        from werkzeug.serving import make_server

        from webhook.app import create_app

        app = create_app(services.config, services)
        self.seen: list[tuple[str, int, int]] = []

        def measured(environ, start_response):
            size = int(environ.get("CONTENT_LENGTH") or 0)

            def start(status, headers, exc_info=None):
                self.seen.append((environ["PATH_INFO"], size, int(status.split()[0])))
                return start_response(status, headers, exc_info)

            return app(environ, start)

        self.server = make_server("127.0.0.1", free_port(), measured, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _worst_case_alerts(count: int, limits: AlertLimits, rule: dict) -> list[dict]:
    """``count`` alerts of one group at the largest size the shipped limits allow: every label
    there may be, names and values at their longest, values of ``<`` (6 bytes each in Go's
    JSON), ``rule``'s annotations with every printing action at its largest, and the longest
    generatorURL."""
    value = "<" * limits.label_value_length_limit
    names = ["alertname", "severity", "instance", "target"]
    count_labels = limits.label_limit - 1 + 1 + len(rule["labels"]) + limits.external_labels
    names += [f"l{i:02d}".ljust(limits.label_name_length_limit, "x") for i in range(count_labels)]
    names = names[:count_labels]
    annotations = {}
    for key, template in rule["annotations"].items():
        annotations[key] = re.sub(
            r"\{\{(.*?)\}\}",
            lambda m: "" if SILENT_ACTION.match(m.group(1).strip()) else value,
            template,
        )
    expr = " ".join(rule["expr"].split())
    url = (
        "http://"
        + "p" * (EXTERNAL_URL_BYTES - len("http://"))
        + "/graph?g0.expr="
        + "%3C" * (2 * len(expr))
        + "&g0.tab=1"
    )
    out = []
    for i in range(count):
        labels = {name: value for name in names}
        labels.update(alertname=rule["alert"], severity="critical")
        labels[names[-1]] = value[:-5] + f"{i:05d}"  # one alert per value, same size
        alert = _alert(labels, "", "", url)
        alert["annotations"] = annotations
        out.append(alert)
    return out


def test_the_largest_notification_fits_the_body_limit(tmp_path: Path, services) -> None:
    size = shipped_alert_size(ROOT)
    prometheus = yaml.safe_load(
        (ROOT / "deploy" / "prometheus" / "prometheus-fleet.yml").read_text()
    )
    limits = AlertLimits.from_prometheus(prometheus)
    rules = [
        r
        for path in sorted((ROOT / "rules").glob("*.rules.yml"))
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    rule = max(rules, key=lambda r: alert_size([r], limits).annotations)
    limit = services.config.max_body_bytes
    max_alerts = size.max_alerts(limit)
    alerts = _worst_case_alerts(max_alerts + 50, limits, rule)
    hook = MeasuredWebhook(services)
    try:
        with alertmanager(tmp_path, hook.port) as am:
            am.post(alerts)
            wait_for(
                lambda: [s for s in hook.seen if s[0] == "/api/v1/alerts"],
                60,
                "the notification",
                interval=0.2,
            )
    finally:
        hook.close()
    ((path, body, status),) = hook.seen
    print(
        f"worst-case notification: {max_alerts} alerts, {body} bytes "
        f"(bound {size.envelope + max_alerts * size.alert}, limit {limit})"
    )
    assert status == 200 and body <= size.envelope + max_alerts * size.alert <= limit
    tickets = services.store.list_tickets(limit=500)
    cut = [t for t in tickets if t["fingerprint"].startswith(TRUNCATION_PREFIX)]
    assert len(tickets) - len(cut) == max_alerts
    assert [t["labels"] for t in cut] and "另有 50 条告警未列出" in cut[0]["summary"]


# --- the second way out: Alertmanager's own e-mail -------------------------------------


class Mailbox:
    """A local SMTP server (aiosmtpd) that takes AUTH without TLS on loopback and keeps every
    message with the credentials it came with."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[tuple[str, email.message.Message]] = []
        self.logins: list[tuple[str, str]] = []
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                box.messages.append((session.auth_data, parsed))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            login = (auth_data.login.decode(), auth_data.password.decode())
            box.logins.append(login)
            return AuthResult(success=True, auth_data=login)

        self.port = free_port()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # AUTH without TLS: loopback only, for the test
            self.controller = Controller(
                Handler(),
                hostname="127.0.0.1",
                port=self.port,
                authenticator=authenticator,
                auth_require_tls=False,
                # Alertmanager's LOGIN expects "Username:" challenges; aiosmtpd sends
                # "User Name": PLAIN, which every mail server offers, is the one tested.
                auth_exclude_mechanism=["LOGIN"],
            )
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    pytest.importorskip("aiosmtpd")
    box = Mailbox()
    try:
        yield box
    finally:
        box.close()


def test_pipeline_alerts_reach_the_on_call_mailbox_when_the_webhook_is_down(
    tmp_path: Path, mailbox: Mailbox, monkeypatch
) -> None:
    password = tmp_path / "smtp.pass"
    password.write_text("smtp-s3cret\n")
    kit = {
        "alertmanager": {
            "email": {
                "to": ["oncall@example.gov.cn", "lead@example.gov.cn"],
                "sender": "alertmanager@example.gov.cn",
                "smarthost": f"127.0.0.1:{mailbox.port}",
                "auth_username": "alertmanager",
                "auth_password_file": str(password),
                "require_tls": False,
            }
        }
    }
    webhook_port = free_port()  # nothing listens: the webhook is down
    pipeline = [
        _alert(
            {
                "alertname": "TargetDown",
                "severity": "critical",
                "job": "sscp-ops-webhook",
                "instance": f"127.0.0.1:{webhook_port}",
            },
            f"采集目标 sscp-ops-webhook 127.0.0.1:{webhook_port} 无法抓取",
            "Prometheus 连续 2m 无法抓取 sscp-ops-webhook 作业，其上所有指标和告警失效。",
        ),
        _alert(
            {"alertname": "NotificationDeliveryFailing", "severity": "critical", "channel": "sms"},
            "sms 通知发送失败或积压",
            "sms 渠道有通知超过 10 分钟未送达，值班人员可能收不到告警短信。",
        ),
        _alert(
            {
                "alertname": "AlertmanagerFailedToSendAlerts",
                "severity": "critical",
                "integration": "webhook",
                "instance": "127.0.0.1:9093",
            },
            "Alertmanager webhook 通知发送失败",
            "Alertmanager 127.0.0.1:9093 在 10 分钟内有 1 次 webhook 通知发送失败且已放弃重试。",
        ),
    ]
    others = [
        _alert(
            {"alertname": "HostHighCpuUsage", "severity": "critical", "instance": "10.0.0.1:9810"},
            "主机 CPU 使用率过高",
            "主机 10.0.0.1:9810 CPU 使用率 95%。",
        )
    ]
    with alertmanager(tmp_path, webhook_port, kit) as am:
        am.post(pipeline + others)
        wait_for(lambda: len(mailbox.messages) >= len(pipeline), 60, "three e-mails", interval=0.2)
        # The webhook is tried too, for every group (and fails): the e-mail did not wait for
        # it, and once all four groups were flushed no other e-mail can come.
        wait_for(
            lambda: (
                am.counter("alertmanager_notification_requests_failed_total", "webhook")
                >= len(pipeline) + len(others)
            ),
            30,
            "a webhook attempt per group",
            interval=0.2,
        )
        sent = am.counter("alertmanager_notifications_total", "email")
    rendered = yaml.safe_load((tmp_path / "am" / "alertmanager.yml").read_text())
    (mail_config,) = next(r for r in rendered["receivers"] if r["name"] == "pipeline")[
        "email_configs"
    ]
    # The secret is not inline; Alertmanager reads a copy without the file's final newline
    # (it would send it as part of the password), readable by its owner only.
    assert "smtp-s3cret" not in (tmp_path / "am" / "alertmanager.yml").read_text()
    copy = Path(mail_config["auth_password_file"])
    assert copy.read_text() == "smtp-s3cret" and copy.stat().st_mode & 0o777 == 0o600
    # One e-mail per pipeline alert group, none for other alerts; the password from the file.
    assert len(mailbox.messages) == len(pipeline) == sent
    assert mailbox.logins == [("alertmanager", "smtp-s3cret")] * len(pipeline)
    subjects = sorted(m["Subject"] for _, m in mailbox.messages)
    assert subjects == sorted(
        f"【告警】[严重] {a['labels']['alertname']} 共 1 条" for a in pipeline
    )
    for _, message in mailbox.messages:
        assert message["To"] == "oncall@example.gov.cn, lead@example.gov.cn"
        assert message["From"] == "alertmanager@example.gov.cn"
        body = message.get_body(("plain",)).get_content()
        assert "== 正在告警（1）==" in body and "处置手册：docs/runbooks/" in body
    bodies = "".join(m.get_body(("plain",)).get_content() for _, m in mailbox.messages)
    assert f"采集目标 sscp-ops-webhook 127.0.0.1:{webhook_port} 无法抓取" in bodies
    assert "HostHighCpuUsage" not in bodies
