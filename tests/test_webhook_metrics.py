"""/metrics of the webhook: values computed from the store at scrape time."""

from __future__ import annotations

import dataclasses

import pytest
from fx_webhook import bearer as auth
from fx_webhook import payload
from helpers import parse_exposition

from webhook.events import parse_alertmanager
from webhook.worker import Worker

#: Dates relative to the clock: run also on a clock moved ahead (conftest.time_shift).
pytestmark = pytest.mark.dates


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


def test_fault_occurrences_of_open_problems(client, services, clock):
    """``sscp_fault_occurrences{fault,target}`` (fault: the alertname): occurrences in the
    window of each fault with an open problem (from its 2nd occurrence on), for
    FaultRecurrenceNearLimit."""
    import datetime as dt

    [ev] = parse_alertmanager(payload("firing-hostdown.json"))
    [disk, *_] = parse_alertmanager(payload("firing-diskfull.json"))
    store = services.store
    base = clock.now
    clock.now = base - dt.timedelta(days=190)
    for at in (190, 3, 2, 1):  # days ago; each resolved before the next fires
        clock.now = base - dt.timedelta(days=at)
        tid = store.ingest(dataclasses.replace(ev, starts_at=clock.now)).ticket_id
        store.transition(tid, "resolve", "token:ops", "重启")
    clock.now = base
    store.ingest(dataclasses.replace(disk, starts_at=base))  # once: no problem, no series
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    series = {k: v for k, v in m.items() if k[0] == "sscp_fault_occurrences"}
    # 3 in the 183-day window; the one 190 days ago is outside it
    labels = {"fault": ev.alertname, "target": ev.target}  # alertname is the alert's own
    assert series == {("sscp_fault_occurrences", frozenset(labels.items())): 3}
    [problem] = store.list_problems()
    store.update_problem(problem["id"], {"status": "closed"}, "token:ops")
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert [k for k in m if k[0] == "sscp_fault_occurrences"] == []


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


def test_vulnerabilities_stay_out_of_the_incident_sla_timers(client, services, clock):
    """A scan found 3 days ago and imported fixed now: its ticket has a fix-time deadline of
    its own (48 h for high), not the 15 min / 2 h incident timers, and a fix dated before the
    import must not show as a negative resolution time."""
    import datetime as dt

    found = clock.now - dt.timedelta(days=3)
    t, _ = services.store.upsert_vulnerability(
        "scan:2", {"risk": "high", "title": "弱口令", "found_at": found}, "token:scanner"
    )
    services.store.set_vulnerability_status(
        t["id"], "resolved", "token:scanner", at=clock.now - dt.timedelta(days=1)
    )
    services.store.ingest_many(parse_alertmanager(payload("firing-hostdown.json")))
    clock.advance(3 * 3600)
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_tickets_created_total", kind="vulnerability") == 1
    for name in (
        "sscp_ticket_response_seconds_count",
        "sscp_ticket_resolution_seconds_count",
        "sscp_ticket_response_breaches_total",
        "sscp_ticket_resolution_breaches_total",
    ):
        assert sample(m, name, kind="vulnerability") is None, name
    assert sample(m, "sscp_ticket_response_breaches_total", kind="incident") == 1


def test_fault_over_before_its_ticket_counts_zero_resolution_time(client, services, clock, tokens):
    """The webhook was down while a fault came and went: the resolved notification files the
    incident with resolved = endsAt, before the ticket's creation. Its resolution time is 0,
    in /metrics and in the API, not negative."""
    import datetime as dt

    [ev] = parse_alertmanager(payload("resolved-hostdown.json"))
    ev = dataclasses.replace(ev, ends_at=clock.now - dt.timedelta(hours=1))
    [result] = services.store.ingest_many([ev])
    assert result.outcome == "resolved"
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_ticket_resolution_seconds_count", kind="incident") == 1
    assert sample(m, "sscp_ticket_resolution_seconds_sum", kind="incident") == 0
    r = client.get(f"/api/v1/tickets/{result.ticket_id}", headers=auth(tokens["viewer"]))
    assert r.json["sla"]["resolution_seconds"] == 0
