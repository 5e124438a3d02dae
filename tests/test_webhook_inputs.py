"""Hostile inputs through the real app on SQLite and the real MariaDB: oversized fields, dates
at the edge of the calendar, deep or broken JSON, list parameters, severities, and the store
going away in the middle of a transaction. Each answer is 200, a 4xx naming the field, or 503."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import threading
import time

import pytest
from fx_webhook import AM_TOKEN, payload
from fx_webhook import bearer as auth

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
