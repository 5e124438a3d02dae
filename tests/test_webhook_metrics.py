"""/metrics of the webhook: values computed from the store at scrape time."""

from __future__ import annotations

import dataclasses

from fx_webhook import payload
from helpers import parse_exposition

from webhook.events import parse_alertmanager
from webhook.worker import Worker


def sample(metrics: dict, name: str, **labels) -> float | None:
    return metrics.get((name, frozenset(labels.items())))


def test_ticket_metrics(client, services, clock, tokens):
    events = parse_alertmanager(payload("firing-hostdown.json"))
    events += parse_alertmanager(payload("firing-diskfull.json"))
    services.store.ingest_many(events, services.planner)
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_webhook_store_up") == 1
    assert sample(m, "sscp_tickets_open", kind="incident", severity="critical", status="open") == 1
    assert sample(m, "sscp_tickets_open", kind="incident", severity="warning", status="open") == 2
    assert sample(m, "sscp_tickets_created_total", kind="incident") == 3
    assert sample(m, "sscp_notices", channel="sms", status="pending") == 4
    assert sample(m, "sscp_tickets_response_overdue") == 0
    # 10 minutes: the critical one is acknowledged in time; 20 minutes: the others are overdue
    clock.advance(600)
    services.store.transition(1, "ack", "token:ops")
    clock.advance(600)
    services.store.transition(2, "resolve", "token:ops", "误报")
    Worker(services.store, services.config).deliver_due()
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_tickets_response_overdue") == 1
    assert sample(m, "sscp_ticket_response_seconds_count", kind="incident") == 1
    assert sample(m, "sscp_ticket_response_seconds_bucket", kind="incident", le="600.0") == 1
    assert sample(m, "sscp_ticket_response_seconds_bucket", kind="incident", le="300.0") == 0
    assert sample(m, "sscp_ticket_resolution_seconds_sum", kind="incident") == 1200
    assert sample(m, "sscp_ticket_response_breaches_total", kind="incident") == 2
    assert sample(m, "sscp_tickets_resolved_total", kind="incident", source="manual") == 1
    assert sample(m, "sscp_notices", channel="sms", status="sent") == 2  # one per number
    assert sample(m, "sscp_outbox_oldest_pending_age_seconds", channel="sms") == 1200


def test_recurrence_and_problem_metrics(client, services):
    [ev] = parse_alertmanager(payload("firing-hostdown.json"))
    import datetime as dt

    for day in range(5):
        tid = services.store.ingest(
            dataclasses.replace(ev, starts_at=ev.starts_at + dt.timedelta(days=day))
        ).ticket_id
        services.store.transition(tid, "resolve", "token:ops", "重启")
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_ticket_recurrences_total") == 4
    assert sample(m, "sscp_problems_open") == 1


def test_sms_without_links_for_strict_providers(webhook_config, make_services):
    svc = make_services(webhook_config(sms={"ack_links": False, "max_length": 70}))
    svc.store.ingest_many(parse_alertmanager(payload("firing-hostdown.json")), svc.planner)
    bodies = [r["body"] for r in svc.store.outbox_rows()]
    assert bodies and all("http" not in b and len(b) <= 70 for b in bodies)


def test_vulnerability_deadline_metric(client, services, clock):
    import datetime as dt

    found = clock.now - dt.timedelta(hours=47)
    services.store.upsert_vulnerability(
        "scan:1", {"risk": "high", "title": "弱口令", "found_at": found}, "token:scanner"
    )
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_vulnerabilities_open", risk="high") == 1
    assert sample(m, "sscp_vulnerabilities_overdue", risk="high") == 0
    assert sample(m, "sscp_vulnerabilities_oldest_open_timestamp_seconds", risk="high") == (
        found.timestamp()
    )
    assert not any(name == "sscp_vulnerability_fix_ratio" for name, _ in m)  # nothing due yet
    clock.advance(2 * 3600)
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_vulnerabilities_overdue", risk="high") == 1
    assert sample(m, "sscp_vulnerabilities_overdue", risk="medium") == 0
    assert sample(m, "sscp_vulnerability_fix_ratio") == 0
    # no second implementation: the old severity-labelled series is gone
    assert not any(
        name == "sscp_vulnerabilities_overdue" and dict(labels).keys() != {"risk"}
        for name, labels in m
    )
