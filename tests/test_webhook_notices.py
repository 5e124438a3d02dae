"""Notices: roster and routing, the outbox worker against a fake SMS gateway (500 then
recovery, rate limits merged into a digest, kill -9 mid-delivery), robots, escalation, the
acknowledge link, the heartbeat watchdog and masking of phone numbers in logs."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import subprocess
import time

import pytest
import yaml
from fx_webhook import AM_TOKEN, PHONES, payload
from fx_webhook import bearer as auth
from helpers import sscp_ops_cmd

from sscp_ops.config.webhook import RosterConfig
from webhook.events import parse_alertmanager
from webhook.notices import on_call
from webhook.worker import Worker

#: Dates relative to the clock: run also on a clock moved ahead (conftest.time_shift).
pytestmark = pytest.mark.dates


def http_sms(gateway, **extra):
    return {"backend": "http", "http": {"url": f"{gateway.url}/sms/send"}, **extra}


def fire(services, name="firing-hostdown.json", **changes):
    import dataclasses

    out = []
    for ev in parse_alertmanager(payload(name)):
        ev = dataclasses.replace(ev, **changes)
        out.append(services.store.ingest(ev, services.planner).ticket_id)
    return out


def test_roster_rotation_by_day_and_week():
    roster = RosterConfig.model_validate(
        {
            "rotation": "day",
            "start": "2026-01-05",
            "handover": "09:00",
            "shifts": [
                {"primary": {"name": "甲", "phone": PHONES[0]}},
                {"primary": {"name": "乙", "phone": PHONES[1]}},
            ],
        }
    )
    at = lambda s: dt.datetime.fromisoformat(s)  # noqa: E731
    assert on_call(roster, at("2026-01-05T01:00:00+00:00"))[0].name == "甲"  # 09:00 +08
    assert on_call(roster, at("2026-01-06T00:59:00+00:00"))[0].name == "甲"
    assert on_call(roster, at("2026-01-06T01:00:00+00:00"))[0].name == "乙"
    weekly = roster.model_copy(update={"rotation": "week"})
    assert on_call(weekly, at("2026-01-11T12:00:00+00:00"))[0].name == "甲"
    assert on_call(weekly, at("2026-01-12T02:00:00+00:00"))[0].name == "乙"


def test_planner_pages_whoever_is_on_duty_at_the_handover_minute(webhook_config, clock):
    """The planner works the roster out once per minute: the page right after the 09:00
    (+08) handover goes to the next shift, the one a second before to the previous one."""
    from webhook.notices import Planner

    planner = Planner(webhook_config(), clock)
    ticket = {"id": 1, "severity": "warning", "summary": "磁盘将满", "target": "db1"}
    clock.now = dt.datetime(2026, 1, 6, 0, 59, 59, tzinfo=dt.UTC)
    assert [n.recipient for n in planner(ticket, "new")] == [PHONES[0]]
    assert [n.recipient for n in planner(ticket, "new")] == [PHONES[0]]
    clock.advance(1)
    assert [n.recipient for n in planner(ticket, "new")] == [PHONES[1]]


def test_routing_by_severity(services):
    [tid] = fire(services)  # critical: primary and backup
    rows = services.store.outbox_rows(tid)
    assert sorted(r["recipient"] for r in rows) == sorted(PHONES[:2])
    fire(services, "firing-diskfull.json")  # warning: primary only, one per alert
    warn = [r for r in services.store.outbox_rows() if r["ticket_id"] != tid]
    assert len(warn) == 2 and len({r["recipient"] for r in warn}) == 1
    sms = rows[0]["body"]
    # stored with a placeholder; the worker puts the 16-character link token in when it sends
    assert len(sms) - len("…") + 16 <= services.config.sms.max_length
    assert sms.endswith("确认:https://itss.example.gov.cn/a/…")


def test_gateway_500_then_recovery(webhook_config, make_services, gateway, clock):
    svc = make_services(webhook_config(sms=http_sms(gateway, limits=[])))
    [tid] = fire(svc)
    worker = Worker(svc.store, svc.config, planner=svc.planner)
    gateway.fail_next = 4  # both notices fail twice
    worker.deliver_due()
    rows = svc.store.outbox_rows()
    assert {r["status"] for r in rows} == {"pending"} and rows[0]["last_error"] == "HTTP 500"
    assert worker.deliver_due() == 0  # backoff: nothing due yet
    clock.advance(5)
    worker.deliver_due()
    assert {r["attempts"] for r in svc.store.outbox_rows()} == {2}
    clock.advance(10)
    worker.deliver_due()
    rows = svc.store.outbox_rows()
    assert {r["status"] for r in rows} == {"sent"} and {r["attempts"] for r in rows} == {3}
    assert {m["out_id"] for m in gateway.sms()} == {str(r["id"]) for r in rows}
    assert sorted(m["phone"] for m in gateway.sms()) == sorted(PHONES[:2])
    assert gateway.duplicates == []
    assert svc.store.get_ticket(tid)["notified_at"] == clock.now


def test_gateway_timeout_then_recovery(webhook_config, make_services, gateway, clock):
    sms = http_sms(gateway, limits=[])
    sms["http"]["timeout"] = 0.3
    svc = make_services(webhook_config(sms=sms))
    fire(svc)
    worker = Worker(svc.store, svc.config)
    gateway.delay = 1.0  # slower than our timeout: the gateway may still accept the request
    worker.deliver_due()
    rows = svc.store.outbox_rows()
    assert {r["status"] for r in rows} == {"pending"}
    assert {r["last_error"] for r in rows} == {"ReadTimeout"}
    time.sleep(1.2)  # let the slow gateway finish: it accepted both
    gateway.delay = 0
    clock.advance(5)
    worker.deliver_due()
    rows = svc.store.outbox_rows()
    assert {r["status"] for r in rows} == {"sent"}
    # the retry carried the same out_id: the gateway dropped it, each number got one SMS
    assert sorted(gateway.duplicates) == sorted(str(r["id"]) for r in rows)
    assert len(gateway.sms()) == 2


def test_gateway_refusal_is_permanent(webhook_config, make_services, gateway, clock):
    sms = http_sms(gateway, limits=[])
    sms["http"]["url"] = f"{gateway.url}/sms/reject"
    svc = make_services(webhook_config(sms=sms))
    fire(svc)
    worker = Worker(svc.store, svc.config)
    worker.deliver_due()
    rows = svc.store.outbox_rows()
    assert {r["status"] for r in rows} == {"failed"} and rows[0]["last_error"] == "HTTP 400"
    clock.advance(3600)
    assert worker.deliver_due() == 0  # a 4xx is not retried
    assert len(gateway.requests) == 2


def test_rate_limit_merges_into_digest(webhook_config, make_services, gateway, clock):
    svc = make_services(webhook_config(sms=http_sms(gateway, limits=[{"count": 1, "seconds": 30}])))
    base = parse_alertmanager(payload("firing-hostdown.json"))[0].starts_at
    for i in range(3):
        fire(svc, fingerprint=f"fp{i}", starts_at=base, target=f"web{i}")
    worker = Worker(svc.store, svc.config)
    worker.deliver_due()
    per_phone = {}
    for m in gateway.sms():
        per_phone.setdefault(m["phone"], []).append(m)
    assert {p: len(v) for p, v in per_phone.items()} == {PHONES[0]: 1, PHONES[1]: 1}
    clock.advance(29)
    worker.deliver_due()
    assert len(gateway.sms()) == 2
    clock.advance(2)
    worker.deliver_due()
    sms = gateway.sms()
    assert len(sms) == 4  # one digest per number, nothing dropped
    digests = [m for m in sms if m["content"].startswith("【运维告警汇总】2条")]
    assert len(digests) == 2
    rows = svc.store.outbox_rows()
    assert sorted(r["status"] for r in rows) == ["merged"] * 2 + ["sent"] * 4
    assert all(r["sent_at"] for r in rows)


def test_robots_receive_text(webhook_config, make_services, gateway):
    svc = make_services(
        webhook_config(
            robots=[
                {
                    "name": "ops-wecom",
                    "kind": "wecom",
                    "url": f"{gateway.url}/cgi-bin/webhook/send",
                },
                {
                    "name": "ops-ding",
                    "kind": "dingtalk",
                    "url": f"{gateway.url}/robot/send",
                    "severities": ["critical"],
                },
            ]
        )
    )
    fire(svc)
    Worker(svc.store, svc.config).deliver_due()
    robots = [r for r in gateway.requests if "webhook" in r["path"] or "robot" in r["path"]]
    assert len(robots) == 2
    import json

    content = json.loads(robots[0]["body"])["text"]["content"]
    assert content.startswith("【新告警】严重") and "138****5678" in content
    assert "13812345678" not in content


def test_escalation_after_15_minutes(services, clock):
    [tid] = fire(services)
    worker = Worker(services.store, services.config, senders={})
    clock.advance(14 * 60)
    assert worker.escalate() == []
    clock.advance(61)
    assert worker.escalate() == [tid]
    assert worker.escalate() == []
    esc = [r for r in services.store.outbox_rows() if r["reason"] == "escalation"]
    assert [r["recipient"] for r in esc] == [PHONES[2]]
    t = services.store.get_ticket(tid)
    assert t["escalated_at"] == clock.now
    assert "escalate" in [a["action"] for a in t["audit"]]


class Recorder:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, d) -> None:
        self.sent.append(d)


def test_ack_link_single_use_and_expiring(client, services, clock):
    client.post("/api/v1/alerts", json=payload("firing-hostdown.json"), headers=auth(AM_TOKEN))
    sms = Recorder()
    Worker(services.store, services.config, senders={("sms", "*"): sms}).deliver_due()
    tokens = [re.search(r"/a/([A-Za-z0-9_-]{16})$", d.text).group(1) for d in sms.sent]
    assert len(tokens) == 2
    r = client.get(f"/a/{tokens[0]}")
    assert r.status_code == 200 and "确认响应工单" in r.get_data(as_text=True)
    assert services.store.get_ticket(1)["status"] == "open"  # a GET never acknowledges
    r = client.post(f"/a/{tokens[0]}")
    assert r.status_code == 200 and "已确认响应" in r.get_data(as_text=True)
    t = services.store.get_ticket(1)
    assert t["status"] == "acknowledged" and t["assignee"] in ("张三", "李四")
    assert t["audit"][-1]["actor"].startswith("sms:")
    assert client.post(f"/a/{tokens[0]}").status_code == 404  # single use
    clock.advance(services.config.ack_link_ttl + 1)
    assert client.get(f"/a/{tokens[1]}").status_code == 404  # expired
    assert client.post("/a/guessed-token-123").status_code == 404


def test_heartbeat_watchdog(services, clock):
    worker = Worker(services.store, services.config, senders={})
    services.store.set_setting("heartbeat_at", clock.now.isoformat())
    clock.advance(299)
    assert worker.check_heartbeat() is False
    clock.advance(2)
    assert worker.check_heartbeat() is True
    assert worker.check_heartbeat() is False  # one notice per outage
    down = [r for r in services.store.outbox_rows() if r["reason"] == "pipeline_down"]
    assert len(down) == 1 and "监控链路中断" in down[0]["body"]
    services.store.set_setting("heartbeat_at", clock.now.isoformat())
    clock.advance(301)
    assert worker.check_heartbeat() is True


@pytest.fixture
def logfmt_log():
    """Everything logged, formatted as the service writes it (logfmt with its key=values)."""
    import io

    from sscp_ops.logs import LogfmtFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield out
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_no_phone_number_reaches_a_log(client, services, tokens, logfmt_log):
    """Real-looking numbers through alerts, comments, notices, API and UI: none in a log."""
    body = payload("firing-hostdown.json")
    body["alerts"][0]["annotations"]["summary"] = "用户 13912345678 身份证 11010519491231002X 投诉"
    client.post("/api/v1/alerts", json=body, headers=auth(AM_TOKEN))
    client.post(
        "/api/v1/tickets/1/comments",
        json={"body": "已联系 15011112222"},
        headers=auth(tokens["operator"]),
    )
    Worker(services.store, services.config).deliver_due()  # log SMS backend
    api = client.get("/api/v1/tickets/1", headers=auth(tokens["viewer"])).get_data(as_text=True)
    login_page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', login_page).group(1)
    assert client.post("/login", data={"token": tokens["viewer"], "csrf": csrf}).status_code == 302
    pages = client.get("/").get_data(as_text=True) + client.get("/tickets/1").get_data(as_text=True)
    assert "工单 #1" in pages
    text = logfmt_log.getvalue()
    assert "msg=sms" in text and "to=138****5678" in text and "139****5678" in text
    assert "/a/…" in text and not re.search(r"/a/[A-Za-z0-9_-]{8}", text)  # links are secrets
    for number in (*PHONES, "13912345678", "11010519491231002X"):
        assert number not in text
        assert number not in api
        assert number not in pages


def _worker_config(tmp_path, db, gateway, lease):
    path = tmp_path / "worker.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "webhook": {
                    "database": db,
                    "delivery_lease": lease,
                    "sms": {"backend": "http", "limits": [], "http": {"url": f"{gateway.url}/sms"}},
                    "roster": {
                        "shifts": [
                            {
                                "primary": {"name": "张三", "phone": PHONES[0]},
                                "backup": {"name": "李四", "phone": PHONES[1]},
                            }
                        ]
                    },
                }
            },
            allow_unicode=True,
        )
    )
    return path


@pytest.mark.slow  # a worker process on the real clock
def test_worker_killed_mid_delivery_loses_nothing_sends_nothing_twice(
    tmp_path, webhook_config, make_services, gateway
):
    cfg = webhook_config()
    svc = make_services(cfg)
    import dataclasses

    ev = parse_alertmanager(payload("firing-hostdown.json"))[0]
    for i in range(3):  # 3 critical incidents: 6 SMS
        svc.store.ingest(dataclasses.replace(ev, fingerprint=f"k{i}"), svc.planner)
    config = _worker_config(tmp_path, cfg.database, gateway, lease=2)
    gateway.delay = 1.5  # the provider is slow: the worker dies while a request is in flight
    cmd = sscp_ops_cmd("webhook", "worker", "--config.file", str(config))
    first = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not gateway.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gateway.requests, "worker never called the gateway"
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        first.wait(10)
    time.sleep(1.6)  # the gateway still accepts the request the dead worker sent
    assert len(gateway.accepted) == 1
    gateway.delay = 0
    second = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if {r["status"] for r in svc.store.outbox_rows()} == {"sent"}:
                break
            time.sleep(0.2)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(10)
    rows = svc.store.outbox_rows()
    assert {r["status"] for r in rows} == {"sent"}
    assert sorted(gateway.accepted) == sorted(str(r["id"]) for r in rows)  # nothing lost
    # the notice in flight at the kill was offered again under the same id and dropped
    assert len(gateway.duplicates) == 1
    assert len(gateway.sms()) == 6


def test_worker_checkpoints_the_wal_requests_do_not(services, tmp_path):
    """SQLite: a committing request leaves its pages in the WAL (no checkpoint under the write
    lock); the worker's checkpoint thread copies them into the database file, and the WAL
    then starts again from its beginning instead of growing."""
    import dataclasses
    import threading

    db, wal = tmp_path / "tickets.db", tmp_path / "tickets.db-wal"
    services.store.checkpoint()
    before = db.stat().st_size
    [ev] = parse_alertmanager(payload("firing-hostdown.json"))

    def burst(first: int, n: int) -> None:
        for i in range(first, first + n):
            services.store.ingest(
                dataclasses.replace(ev, fingerprint=f"{i:016x}", target=f"host{i}"),
                services.planner,
            )

    burst(0, 200)
    assert db.stat().st_size == before
    assert wal.stat().st_size > 200 * 4096
    grown = wal.stat().st_size
    stop = threading.Event()
    worker = Worker(services.store, services.config, senders={})
    thread = threading.Thread(target=worker.checkpoints, args=(stop, 0.05))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while db.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size > before
        time.sleep(0.2)
        burst(200, 100)  # written from the start of the WAL again: it does not grow
        assert wal.stat().st_size <= grown
    finally:
        stop.set()
        thread.join()
    assert services.store.count_tickets() == 300
