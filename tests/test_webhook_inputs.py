"""Hostile inputs through the real app on SQLite and the real MariaDB: oversized fields, dates
at the edge of the calendar, deep or broken JSON, list parameters, severities, and the store
going away in the middle of a transaction. Each answer is 200, a 4xx naming the field, or 503."""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import threading
import time

import pytest
from fx_webhook import AM_TOKEN, PHONES, payload, write_webhook_config
from fx_webhook import bearer as auth
from fx_webhook import served_webhook as serve

#: Dates relative to the clock: run also on a clock moved ahead (conftest.time_shift).
pytestmark = pytest.mark.dates

AM = auth(AM_TOKEN)
CUT = "…[截断]"
TEXT_BYTES = 65535  # MySQL TEXT


@pytest.fixture
def db_client(db_url, webhook_config, make_services):
    from webhook.app import create_app

    svc = make_services(webhook_config(database=db_url))
    app = create_app(svc.config, svc)
    app.testing = True
    return app.test_client(), svc


def oversized_notification() -> dict:
    """One notification of five alerts, three of them over the columns' sizes."""
    body = payload("firing-hostdown.json")
    base = body["alerts"][0]
    alerts = []
    for i in range(5):
        alert = copy.deepcopy(base)
        alert["fingerprint"] = f"{i:016x}"
        alert["labels"]["instance"] = f"web{i}:9100"
        alerts.append(alert)
    alerts[1]["annotations"]["description"] = "磁盘写满，" * 20000  # 300 000 bytes
    alerts[2]["labels"]["detail"] = "x" * 70000
    alerts[3]["fingerprint"] = "f" * 100
    alerts[4]["labels"]["alertname"] = "长" * 300
    body["alerts"] = alerts
    return body


def test_oversized_alert_never_blocks_its_notification(db_client):
    client, svc = db_client
    body = oversized_notification()
    r = client.post("/api/v1/alerts", json=body, headers=AM)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.json["outcomes"] == {"created": 5}
    assert svc.store.count_tickets() == 5  # tickets = alerts
    # delivered again (Alertmanager's retry): the long fingerprint still finds its ticket
    r = client.post("/api/v1/alerts", json=body, headers=AM)
    assert r.json["outcomes"] == {"duplicate": 5}
    assert svc.store.count_tickets() == 5
    rows = {t["fingerprint"]: t for t in svc.store.list_tickets()}
    long_fp = "~" + hashlib.sha256(("f" * 100).encode()).hexdigest()[:63]
    assert sorted(rows) == sorted([f"{i:016x}" for i in (0, 1, 2, 4)] + [long_fp])
    desc = rows[f"{1:016x}"]["description"]
    assert desc.endswith(CUT) and len(desc.encode()) <= TEXT_BYTES
    assert desc.startswith("磁盘写满，" * 100)
    labels = json.loads(rows[f"{2:016x}"]["labels"])
    assert labels["detail"].endswith(CUT) and labels["instance"] == "web2:9100"
    assert len(rows[f"{2:016x}"]["labels"].encode()) <= TEXT_BYTES
    assert rows[f"{4:016x}"]["alertname"] == "长" * (200 - len(CUT)) + CUT


def test_same_oversized_bodies_give_the_same_tickets_on_both_stores(
    tmp_path, mariadb_url, webhook_config, make_services
):
    """The cut is deterministic: SQLite and MariaDB store exactly the same rows."""
    from webhook.app import create_app

    body = oversized_notification()
    seen = []
    for url in (f"sqlite:///{tmp_path / 'same.db'}", mariadb_url):
        svc = make_services(webhook_config(database=url))
        client = create_app(svc.config, svc).test_client()
        assert client.post("/api/v1/alerts", json=body, headers=AM).status_code == 200
        seen.append(
            sorted(
                (t["fingerprint"], t["alertname"], t["description"], t["labels"])
                for t in svc.store.list_tickets()
            )
        )
    assert len(seen[0]) == 5 and seen[0] == seen[1]


def test_dates_at_the_calendar_edges_are_400_naming_the_field(db_client):
    client, svc = db_client
    for key, value in (
        ("startsAt", "9999-12-31T23:59:59-01:00"),  # year 10000 in UTC
        ("startsAt", "0001-01-01T00:00:00+01:00"),  # year 0 in UTC
        ("startsAt", "0001-01-01T00:00:01Z"),  # before any DATETIME MySQL holds
        ("endsAt", "9999-12-31T23:59:59-01:00"),
    ):
        body = payload("resolved-hostdown.json")
        body["alerts"][0][key] = value
        r = client.post("/api/v1/alerts", json=body, headers=AM)
        assert r.status_code == 400, (value, r.get_data(as_text=True)[:200])
        assert r.json["field"] == f"alerts[0].{key}"
    body = payload("firing-hostdown.json")
    body["alerts"][0]["startsAt"] = "9999-12-31T22:59:59-01:00"  # the last second it holds
    assert client.post("/api/v1/alerts", json=body, headers=AM).status_code == 200
    assert svc.store.count_tickets() == 1


def test_deep_json_and_lone_surrogates_are_400_naming_the_field(client, tokens):
    deep = b"[" * 100_000 + b"]" * 100_000
    for path, headers in (("/api/v1/alerts", AM), ("/api/v1/tickets/1/ack", auth(tokens["admin"]))):
        r = client.post(path, data=deep, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 400 and r.json["field"] == "(body)", path
    text = json.dumps(payload("firing-hostdown.json"))
    for old, new, field in (
        ('"summary": "', '"summary": "\\ud800', "alerts[0].annotations.summary"),
        ('"job": "node"', '"\\udfff": "node"', "alerts[0].labels"),
        ('"fingerprint": "', '"fingerprint": "\\udc00', "alerts[0].fingerprint"),
    ):
        body = text.replace(old, new, 1).encode()
        assert b"\\u" in body
        r = client.post("/api/v1/alerts", data=body, headers=AM)
        assert r.status_code == 400, r.get_data(as_text=True)[:300]
        assert r.json["field"] == field
    # a surrogate pair is one character (an emoji): accepted
    body = text.replace('"summary": "', '"summary": "\\ud83d\\ude00', 1).encode()
    assert client.post("/api/v1/alerts", data=body, headers=AM).status_code == 200
    r = client.post(
        "/api/v1/tickets/1/comments",
        data=b'{"body": "\\ud800"}',
        headers={**auth(tokens["operator"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json["field"] == "body"


def test_list_parameters_are_validated(db_client):
    client, svc = db_client
    token = svc.store.create_token("viewer", "t")
    for i in range(3):
        body = payload("firing-hostdown.json")
        body["alerts"][0]["fingerprint"] = f"{i:016x}"
        client.post("/api/v1/alerts", json=body, headers=AM)
    for query, field in (
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=" + "9" * 30, "offset"),
        ("since=9999-12-31T23:59:59-01:00", "since"),
        ("until=yesterday", "until"),
        ("since=2026-01-01T00:00:00", "since"),
    ):
        r = client.get(f"/api/v1/tickets?{query}", headers=auth(token))
        assert r.status_code == 400, (query, r.get_data(as_text=True)[:200])
        assert r.json["field"] == field, query
    r = client.get("/api/v1/tickets?limit=2&offset=1", headers=auth(token))
    assert r.status_code == 200 and len(r.json["tickets"]) == 2
    r = client.get("/api/v1/tickets?limit=1000&offset=1000000000", headers=auth(token))
    assert r.status_code == 200 and r.json["tickets"] == []


@pytest.fixture
def served_webhook(tmp_path, am_token_file):
    """``sscp-ops webhook`` (gunicorn) on a free port, SQLite, without the notice worker;
    yields its port."""
    config = write_webhook_config(
        tmp_path / "sscp.yml",
        database=f"sqlite:///{tmp_path / 'var/tickets.db'}",
        alertmanager_token_file=str(am_token_file),
        roster={"shifts": [{"primary": {"name": "张三", "phone": PHONES[0]}}]},
    )
    with serve(config, "--no-worker", log=tmp_path / "webhook.log") as (base, _proc):
        yield int(base.rsplit(":", 1)[1])


def post_chunked(port: int, chunks) -> tuple[int, dict]:
    """POST with Transfer-Encoding: chunked (no Content-Length), as a proxy streaming a body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/api/v1/alerts")
        conn.putheader("Authorization", AM["Authorization"])
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before reading it all
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_413_on_the_real_server(served_webhook):
    pad = b"x" * 65536
    chunks = [b'{"version": "4", "alerts": [], "pad": "'] + [pad] * 256 + [b'"}']  # 16 MiB
    status, answer = post_chunked(served_webhook, chunks)
    assert status == 413, answer
    assert answer["error"]
    # a chunked body within the limit is read as usual
    body = json.dumps(payload("firing-hostdown.json")).encode()
    status, answer = post_chunked(served_webhook, [body[:100], body[100:]])
    assert status == 200 and answer["outcomes"] == {"created": 1}, answer


def test_connection_killed_in_a_transaction_is_503_and_the_retry_files_it(
    mariadb_url, webhook_config, make_services
):
    """The server drops the connection in the middle of the alert transaction (what a MySQL
    shutdown does): the driver's InterfaceError on the dead connection means "retry", 503."""
    import pymysql
    import sqlalchemy as sa

    from webhook.app import create_app

    svc = make_services(webhook_config(database=mariadb_url))
    client = create_app(svc.config, svc).test_client()
    body = payload("firing-hostdown.json")
    alert = body["alerts"][0]
    url = sa.engine.make_url(mariadb_url)
    admin = pymysql.connect(host=url.host, port=url.port, user="root", database=url.database)
    admin.autocommit(False)
    try:
        with admin.cursor() as cur:  # hold the occurrence's key: the webhook's claim waits
            cur.execute(
                "INSERT INTO occurrences (fingerprint, starts_at, received_at)"
                " VALUES (%s, %s, NOW())",
                (alert["fingerprint"], alert["startsAt"].replace("T", " ").rstrip("Z")),
            )
        answers = []
        post = threading.Thread(
            target=lambda: answers.append(client.post("/api/v1/alerts", json=body, headers=AM))
        )
        post.start()
        killer = pymysql.connect(host=url.host, port=url.port, user="root", autocommit=True)
        with killer.cursor() as cur:
            deadline = time.monotonic() + 20
            waiting = ()
            while not waiting and time.monotonic() < deadline:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST"
                    " WHERE INFO LIKE 'INSERT IGNORE INTO occurrences%%'"
                )
                waiting = cur.fetchall()
                time.sleep(0.05)
            assert waiting, "the webhook's claim never waited"
            cur.execute(f"KILL CONNECTION {waiting[0][0]}")
        killer.close()
        post.join(30)
        [r] = answers
        assert r.status_code == 503, r.get_data(as_text=True)[:300]
    finally:
        admin.rollback()
        admin.close()
    r = client.post("/api/v1/alerts", json=body, headers=AM)  # Alertmanager's retry
    assert r.status_code == 200 and r.json["outcomes"] == {"created": 1}


def test_severity_case_is_normalised_and_unknown_ones_page_as_warning(db_client):
    client, svc = db_client
    token = svc.store.create_token("viewer", "t")
    for i, severity in enumerate(("Critical", " WARNING ", "page", "P1")):
        body = payload("firing-hostdown.json")
        alert = body["alerts"][0]
        alert["fingerprint"] = f"{i:016x}"
        alert["labels"]["severity"] = severity
        assert client.post("/api/v1/alerts", json=body, headers=AM).status_code == 200
    tickets = {
        t["fingerprint"]: t
        for t in client.get("/api/v1/tickets", headers=auth(token)).json["tickets"]
    }
    got = [(tickets[f"{i:016x}"]["severity"], tickets[f"{i:016x}"]["labels"]) for i in range(4)]
    assert [s for s, _ in got] == ["critical", "warning", "warning", "warning"]
    assert [labels["severity"] for _, labels in got] == ["Critical", " WARNING ", "page", "P1"]
    # paged at once (not at escalation): critical to primary and backup, warning to primary
    sms = {}
    for t in tickets.values():
        sms[t["severity"]] = sms.get(t["severity"], 0)
        sms[t["severity"]] += sum(
            1 for n in svc.store.outbox_rows(t["id"]) if n["channel"] == "sms"
        )
    assert sms == {"critical": 2, "warning": 3}
    text = client.get("/metrics").get_data(as_text=True)
    assert "sscp_webhook_unknown_severity_total 2.0" in text
    # a repeated notification is not counted again
    client.post("/api/v1/alerts", json=body, headers=AM)
    assert "sscp_webhook_unknown_severity_total 2.0" in client.get("/metrics").get_data(
        as_text=True
    )


def test_change_bodies_the_store_cannot_take_are_400(db_client):
    """Found by tests/test_webhook_properties.py: a change naming a problem that does not
    exist (foreign key) and a reason over a TEXT column gave 500."""
    client, svc = db_client
    op = auth(svc.store.create_token("operator", "t"))
    r = client.post(
        "/api/v1/changes", json={"title": "t", "reason": "r", "problem_id": 999}, headers=op
    )
    assert r.status_code == 400 and r.json["field"] == "problem_id"
    r = client.post("/api/v1/changes", json={"title": "t", "reason": "😀" * 16384}, headers=op)
    assert r.status_code == 400 and r.json["field"] == "reason"
    r = client.post("/api/v1/changes", json={"title": "t", "reason": "😀" * 16383}, headers=op)
    assert r.status_code == 201
    r = client.patch("/api/v1/changes/1", json={"problem_id": 2**40}, headers=op)
    assert r.status_code == 400 and r.json["field"] == "problem_id"


def test_an_alert_the_database_refuses_does_not_block_the_others(db_url, db_client):
    """Whatever the database refuses in one alert (here a trigger, standing for any error no
    cut foresaw), the other alerts of the notification are filed; the answer stays 500 so the
    refused one is retried and seen, and the retry finds the others filed."""
    import sqlalchemy as sa

    client, svc = db_client
    with svc.store.engine.begin() as conn:
        if db_url.startswith("sqlite"):
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON tickets WHEN NEW.fingerprint = 'bad'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON tickets FOR EACH ROW"
                " IF NEW.fingerprint = 'bad' THEN"
                " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF"
            )
    body = payload("firing-hostdown.json")
    good = body["alerts"][0]
    body["alerts"] = [
        {**good, "fingerprint": fp, "labels": {**good["labels"], "instance": fp}}
        for fp in ("a1", "bad", "a2")
    ]
    client.application.testing = False  # answer 500 instead of raising into the test
    r = client.post("/api/v1/alerts", json=body, headers=AM)
    assert r.status_code == 500
    assert sorted(t["fingerprint"] for t in svc.store.list_tickets()) == ["a1", "a2"]
    with svc.store.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse"))
    r = client.post("/api/v1/alerts", json=body, headers=AM)  # Alertmanager's retry
    assert r.status_code == 200 and r.json["outcomes"] == {"created": 1, "duplicate": 2}
