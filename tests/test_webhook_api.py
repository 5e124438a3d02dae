"""The HTTP API through the Flask app: Alertmanager auth and error codes, tickets with roles,
audit, vulnerabilities, problems, changes, and masking of personal data in every answer."""

from __future__ import annotations

import base64
import json
import re

import pytest
from fx_webhook import AM_TOKEN, payload
from fx_webhook import bearer as auth

from webhook.events import TRUNCATION_PREFIX
from webhook.store import StoreUnavailable

#: Dates relative to the clock: run also on a clock moved ahead (conftest.time_shift).
pytestmark = pytest.mark.dates

AM = auth(AM_TOKEN)


def post_alerts(client, name="firing-hostdown.json", headers=AM, **kw):
    return client.post("/api/v1/alerts", json=payload(name), headers=headers, **kw)


def test_alert_auth_bearer_basic_and_401(client):
    assert post_alerts(client, headers={}).status_code == 401
    assert post_alerts(client, headers=auth("wrong")).status_code == 401
    basic = base64.b64encode(f"alertmanager:{AM_TOKEN}".encode()).decode()
    r = post_alerts(client, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200 and r.json["outcomes"] == {"created": 1}
    r = post_alerts(client)
    assert r.status_code == 200 and r.json["outcomes"] == {"duplicate": 1}


def test_no_token_configured_refuses_everything(webhook_config, make_services):
    from webhook.app import create_app

    svc = make_services(webhook_config(alertmanager_token_file=None))
    client = create_app(svc.config, svc).test_client()
    assert post_alerts(client).status_code == 401


def test_rotated_token_is_taken_at_once_and_unreadable_file_means_retry(
    client, am_token_file, caplog
):
    assert post_alerts(client).status_code == 200
    am_token_file.write_text("rotated-token-0123456789\n")
    assert post_alerts(client).status_code == 401  # the old token no longer works
    assert post_alerts(client, headers=auth("rotated-token-0123456789")).status_code == 200
    am_token_file.unlink()
    # a broken config must not make Alertmanager drop the notification (it drops 4xx)
    r = post_alerts(client, headers=auth("rotated-token-0123456789"))
    assert r.status_code == 503
    assert "token file unreadable" in caplog.text and "rotated-token" not in caplog.text


def test_body_limits_and_bad_payloads(client):
    big = b'{"version": "4", "alerts": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = client.post("/api/v1/alerts", data=big, headers={**AM, "Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/api/v1/alerts", data=b"not json", headers=AM)
    assert r.status_code == 400 and r.json["field"] == "(body)"
    body = payload("firing-hostdown.json")
    del body["alerts"][0]["startsAt"]
    r = client.post("/api/v1/alerts", json=body, headers=AM)
    assert r.status_code == 400
    assert r.json["field"] == "alerts[0].startsAt" and "startsAt" in r.json["error"]


def test_body_limit_is_the_webhook_setting(webhook_config, make_services):
    from webhook.app import create_app

    services = make_services(webhook_config(max_body_bytes=300 * 1024))
    client = create_app(services.config, services).test_client()
    headers = {**AM, "Content-Type": "application/json"}

    def body(size: int) -> bytes:
        data = payload("firing-hostdown.json")
        data["pad"] = ""
        text = json.dumps(data).encode()
        data["pad"] = "x" * (size - len(text))
        return json.dumps(data).encode()

    assert len(body(300 * 1024)) == 300 * 1024
    r = client.post("/api/v1/alerts", data=body(300 * 1024), headers=headers)
    assert r.status_code == 200 and r.json["received"] == 1
    r = client.post("/api/v1/alerts", data=body(300 * 1024 + 1), headers=headers)
    assert r.status_code == 413
    assert services.store.count_tickets() == 1


def test_alerts_cut_by_max_alerts_are_counted_on_one_ticket_of_the_group(client, services):
    """Alertmanager lists max_alerts alerts and sends the rest as ``truncatedAlerts``: the
    group gets one more ticket saying how many; repeats of the notification add nothing."""
    body = payload("firing-hostdown.json")
    body["truncatedAlerts"] = 57
    r = client.post("/api/v1/alerts", json=body, headers=AM)
    assert r.status_code == 200 and r.json["received"] == 2
    tickets = services.store.list_tickets()
    (note,) = [t for t in tickets if t["fingerprint"].startswith(TRUNCATION_PREFIX)]
    listed = [t for t in tickets if t is not note]
    assert len(listed) == len(body["alerts"]) == 1
    assert "另有 57 条告警未列出" in note["summary"]
    assert "只列出了 1 条告警" in note["description"] and "另有 57 条" in note["description"]
    assert note["severity"] == listed[0]["severity"] and note["status"] == "open"
    # The on-call person is told like for any new ticket of that severity.
    assert any("另有 57 条告警未列出" in n["body"] for n in services.store.outbox_rows(note["id"]))
    # Alertmanager's repeats (even with another count) and a later notice without cut alerts
    # change nothing.
    for cut in (57, 60, 0):
        body["truncatedAlerts"] = cut
        assert client.post("/api/v1/alerts", json=body, headers=AM).status_code == 200
    assert services.store.count_tickets() == 2
    # Reconciliation with Alertmanager's alerts leaves it open (no alert has its fingerprint);
    # the alert's own ticket, gone from Alertmanager, is resolved.
    assert services.store.reconcile(set(), grace=-60) == [listed[0]["id"]]
    assert services.store.get_ticket(note["id"])["status"] == "open"


@pytest.mark.parametrize("bad", ["3", -1, True, 1.5])
def test_a_bad_truncated_alerts_count_is_named(client, bad):
    body = payload("firing-hostdown.json")
    body["truncatedAlerts"] = bad
    r = client.post("/api/v1/alerts", json=body, headers=AM)
    assert r.status_code == 400 and r.json["field"] == "truncatedAlerts"


def test_store_down_is_503(client, services, monkeypatch):
    def down(*a, **kw):
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(services.store, "ingest_many", down)
    assert post_alerts(client).status_code == 503


def test_mysql_stopped_is_503(webhook_config, make_services):
    """A MySQL URL nobody listens on: the store is down, Alertmanager must retry."""
    from helpers import free_port

    from webhook.app import create_app
    from webhook.services import Services
    from webhook.store import Store

    good = make_services(webhook_config())
    cfg = webhook_config(database=f"mysql+pymysql://root@127.0.0.1:{free_port()}/x")
    svc = Services(cfg, Store(cfg.database), good.planner)
    client = create_app(cfg, svc).test_client()
    assert post_alerts(client).status_code == 503
    svc.store.close()


def test_resolved_notification_resolves(client, tokens):
    post_alerts(client)
    post_alerts(client, "resolved-hostdown.json")
    [t] = client.get("/api/v1/tickets", headers=auth(tokens["viewer"])).json["tickets"]
    assert t["status"] == "resolved" and t["resolution_source"] == "alert"
    assert t["resolved_at"].endswith("Z") and t["starts_at"].endswith("Z")


def test_watchdog_heartbeat(client, services):
    body = payload("firing-hostdown.json")
    body["alerts"][0]["labels"]["alertname"] = "Watchdog"
    assert client.post("/api/v1/heartbeat", json=body, headers=AM).status_code == 200
    assert services.store.get_setting("heartbeat_at")
    assert client.post("/api/v1/heartbeat", json=body).status_code == 401
    assert services.store.count_tickets() == 0


def test_roles_least_privilege(client, tokens):
    post_alerts(client)
    assert client.get("/api/v1/tickets").status_code == 401
    assert client.get("/api/v1/tickets", headers=auth("sscp_nope")).status_code == 401
    assert client.get("/api/v1/tickets/1", headers=auth(tokens["viewer"])).status_code == 200
    r = client.post("/api/v1/tickets/1/ack", json={}, headers=auth(tokens["viewer"]))
    assert r.status_code == 403
    r = client.post(
        "/api/v1/tokens", json={"role": "admin", "name": "x"}, headers=auth(tokens["operator"])
    )
    assert r.status_code == 403
    r = client.post(
        "/api/v1/tokens", json={"role": "viewer", "name": "report"}, headers=auth(tokens["admin"])
    )
    assert r.status_code == 201
    assert client.get("/api/v1/tickets", headers=auth(r.json["token"])).status_code == 200


def test_ticket_workflow_through_the_api(client, tokens, services):
    post_alerts(client)
    op = auth(tokens["operator"])
    r = client.post("/api/v1/tickets/1/ack", json={"assignee": "张三"}, headers=op)
    assert r.status_code == 200 and r.json["status"] == "acknowledged"
    assert r.json["sla"]["response_seconds"] is not None
    assert client.post("/api/v1/tickets/1/ack", json={}, headers=op).status_code == 409
    r = client.post("/api/v1/tickets/1/resolve", json={}, headers=op)
    assert r.status_code == 400 and r.json["field"] == "note"
    r = client.post(
        "/api/v1/tickets/1/comments", json={"body": "联系 13912345678 处理"}, headers=op
    )
    assert r.status_code == 201
    r = client.post("/api/v1/tickets/1/resolve", json={"note": "已重启"}, headers=op)
    assert r.json["status"] == "resolved" and r.json["resolution_source"] == "manual"
    r = client.post("/api/v1/tickets/1/close", json={}, headers=op)
    assert r.json["status"] == "closed"
    assert client.get("/api/v1/tickets/99", headers=op).status_code == 404
    t = client.get("/api/v1/tickets/1", headers=op).json
    assert [a["action"] for a in t["audit"]] == ["create", "ack", "comment", "resolve", "close"]
    assert all(a["actor"] == "token:test-operator" for a in t["audit"][1:])
    closed = client.get("/api/v1/tickets?status=closed", headers=op).json["tickets"]
    assert [x["id"] for x in closed] == [1]
    assert client.get("/api/v1/tickets?status=open", headers=op).json["tickets"] == []
    assert client.get("/api/v1/tickets?status=bogus", headers=op).status_code == 400


def test_personal_data_masked_in_api(client, tokens):
    post_alerts(client)  # the captured description holds 13812345678
    text = client.get("/api/v1/tickets/1", headers=auth(tokens["viewer"])).get_data(as_text=True)
    assert "13812345678" not in text and "138****5678" in text
    t = json.loads(text)
    assert t["notices"] and all("****" in n["recipient"] for n in t["notices"])
    assert all("/a/…" in n["body"] for n in t["notices"] if n["channel"] == "sms")


def test_vulnerability_file_update_close(client, tokens):
    op = auth(tokens["operator"])
    body = {
        "external_key": "nessus:12345:10.0.0.5",
        "risk": "high",
        "title": "Tomcat 远程代码执行",
        "target": "10.0.0.5",
        "found_at": "2026-11-27T08:00:00Z",
    }
    r = client.post("/api/v1/vulnerabilities", json=body, headers=op)
    assert r.status_code == 201
    assert r.json["kind"] == "vulnerability" and r.json["due_at"] == "2026-11-29T08:00:00.000Z"
    r = client.post("/api/v1/vulnerabilities", json=body, headers=op)
    assert r.status_code == 200
    r = client.patch(
        "/api/v1/vulnerabilities/nessus:12345:10.0.0.5",
        json={"status": "closed", "note": "已升级"},
        headers=op,
    )
    assert r.status_code == 200 and r.json["status"] == "closed"
    r = client.post("/api/v1/vulnerabilities", json={**body, "risk": "urgent"}, headers=op)
    assert r.status_code == 400 and r.json["field"] == "risk"
    vulns = client.get("/api/v1/tickets?kind=vulnerability", headers=op).json["tickets"]
    assert len(vulns) == 1


def test_vulnerability_fixed_at_and_reopen(client, tokens, clock):
    """The importer's contract: close with the re-scan's time, reopen when found again."""
    import datetime as dt

    clock.now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    op = auth(tokens["operator"])
    key = "/api/v1/vulnerabilities/zap:40018:00aa11bb22cc33dd"
    body = {
        "external_key": "zap:40018:00aa11bb22cc33dd",
        "risk": "high",
        "title": "SQL 注入",
        "found_at": "2026-11-20T02:00:00Z",
        "labels": {"site": "https://zhjg.example.gov.cn:443", "param": "size"},
    }
    assert client.post("/api/v1/vulnerabilities", json=body, headers=op).status_code == 201
    # a fix before it was found contradicts the ticket
    r = client.patch(key, json={"status": "closed", "fixed_at": "2026-11-19T00:00:00Z"}, headers=op)
    assert r.status_code == 409 and "before it was found" in r.json["error"]
    r = client.patch(key, json={"status": "closed", "fixed_at": "2026-11-29T00:00:00Z"}, headers=op)
    assert r.status_code == 400 and r.json["field"] == "fixed_at"
    r = client.patch(key, json={"fixed_at": "2026-11-27T03:00:00Z"}, headers=op)
    assert r.status_code == 400 and "fixed_at needs status" in r.json["error"]
    r = client.patch(key, json={"status": "open"}, headers=op)
    assert r.status_code == 409  # it is open
    r = client.patch(
        key,
        json={"status": "closed", "fixed_at": "2026-11-27T03:00:00Z", "note": "复测未再发现"},
        headers=op,
    )
    assert r.status_code == 200
    t = r.json
    assert t["status"] == "closed" and t["resolution_source"] == "scan"
    assert t["resolved_at"] == t["closed_at"] == "2026-11-27T03:00:00.000Z"
    # found again before the fix: refused; after it: reopened with a new deadline
    r = client.patch(key, json={"status": "open", "found_at": "2026-11-26T00:00:00Z"}, headers=op)
    assert r.status_code == 409 and "before it was fixed" in r.json["error"]
    r = client.patch(key, json={"found_at": "2026-11-28T01:00:00Z"}, headers=op)
    assert r.status_code == 400 and "found_at needs status open" in r.json["error"]
    r = client.patch(
        key,
        json={"status": "open", "found_at": "2026-11-28T01:00:00Z", "risk": "medium"},
        headers=op,
    )
    assert r.status_code == 200
    t = r.json
    assert t["status"] == "open" and t["reopen_count"] == 1
    assert t["resolved_at"] is None and t["closed_at"] is None and t["resolution_source"] is None
    assert t["starts_at"] == "2026-11-20T02:00:00.000Z"  # first found: kept
    assert t["last_starts_at"] == "2026-11-28T01:00:00.000Z"
    assert t["due_at"] == "2026-12-05T01:00:00.000Z"  # medium: 7 days after found again
    assert t["labels"] == body["labels"]  # a PATCH changes only what it names
    full = client.get(f"/api/v1/tickets/{t['id']}", headers=op).json
    assert [a["action"] for a in full["audit"]] == ["create", "close", "update", "reopen"]
    assert [c["body"] for c in full["comments"]] == ["复测未再发现"]
    # closing without fixed_at: now, by hand
    r = client.patch(key, json={"status": "resolved", "note": "已修复"}, headers=op)
    assert r.json["resolved_at"] == "2026-11-28T12:00:00.000Z"
    assert r.json["resolution_source"] == "manual"
    r = client.patch(key, json={"status": "closed"}, headers=op)
    assert r.json["closed_at"] == "2026-11-28T12:00:00.000Z"
    assert r.json["resolved_at"] == "2026-11-28T12:00:00.000Z"


def test_changes_and_problems(client, tokens):
    op, admin = auth(tokens["operator"]), auth(tokens["admin"])
    r = client.post(
        "/api/v1/changes",
        json={
            "title": "升级 Tomcat",
            "reason": "修复漏洞",
            "planned_start": "2026-12-01T14:00:00Z",
            "planned_end": "2026-12-01T15:00:00Z",
            "executor": "张三",
        },
        headers=op,
    )
    assert r.status_code == 201 and r.json["planned_start"] == "2026-12-01T14:00:00.000Z"
    r = client.patch(
        f"/api/v1/changes/{r.json['id']}",
        json={"result": "success", "verification": "首页可访问"},
        headers=op,
    )
    assert r.status_code == 200 and r.json["result"] == "success"
    r = client.post(
        "/api/v1/changes",
        json={"title": "x", "reason": "y", "planned_start": "2026-12-01T14:00:00"},
        headers=op,
    )
    assert r.status_code == 400
    assert client.get("/api/v1/problems", headers=op).json == {"problems": []}
    assert (
        client.patch("/api/v1/problems/1", json={"status": "closed"}, headers=op).status_code == 403
    )
    assert (
        client.patch("/api/v1/problems/1", json={"status": "closed"}, headers=admin).status_code
        == 404
    )


@pytest.mark.parametrize("per", ["alert", "group"])
def test_incident_per_alert_or_group(webhook_config, make_services, per):
    from webhook.app import create_app

    svc = make_services(webhook_config(incident_per=per))
    client = create_app(svc.config, svc).test_client()
    assert post_alerts(client, "firing-diskfull.json").status_code == 200
    assert svc.store.count_tickets() == (2 if per == "alert" else 1)
    post_alerts(client, "resolved-diskfull.json")
    assert {t["status"] for t in svc.store.list_tickets()} == {"resolved"}


@pytest.mark.parametrize("public_url", ["https://itss.example.gov.cn", "http://127.0.0.1:9811"])
def test_session_cookie_secure_behind_tls(webhook_config, make_services, tokens, public_url):
    """The UI's session cookie: HttpOnly and SameSite always, Secure when the service is
    published over HTTPS (the TLS proxy), so the browser never sends it in clear."""
    from webhook.app import create_app

    svc = make_services(webhook_config(public_url=public_url))
    client = create_app(svc.config, svc).test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    token = svc.store.create_token("viewer", "browser")
    r = client.post("/login", data={"token": token, "csrf": csrf})
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) == public_url.startswith("https:")
