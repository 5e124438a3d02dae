"""Which incidents are faults, and when their response clock starts (issue 16, items 5 and 6).

Item 5: only faults count toward response time (by severity and alertname; reminders and
compliance notices never), and only paged faults escalate. The webhook's
``sscp_tickets_response_overdue`` / ``sscp_ticket_response_breaches_total`` and the report's
response indicator (through the ticket API's ``fault``) use the same rule.

Item 6: the response clock of a reopened fault starts at the reopen.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from fractions import Fraction

import pytest
from fx_webhook import bearer, payload
from helpers import parse_exposition

from sscp_ops.report import indicators as ind
from sscp_ops.report.sources import ticket_from_json
from webhook.events import parse_alertmanager
from webhook.worker import Worker

pytestmark = pytest.mark.dates

MIN = 60


def sample(metrics: dict, name: str, **labels) -> float | None:
    return metrics.get((name, frozenset(labels.items())))


def _events():
    """3 faults (HostDown critical, DiskFull warning x2), 1 warning reminder by name
    (AccountReviewOverdue), 5 info compliance reminders that page nobody."""
    events = parse_alertmanager(payload("firing-hostdown.json"))
    events += parse_alertmanager(payload("firing-diskfull.json"))
    base = events[0]
    events.append(
        dataclasses.replace(
            base, fingerprint="review", alertname="AccountReviewOverdue", severity="warning"
        )
    )
    for i in range(5):
        events.append(
            dataclasses.replace(
                base, fingerprint=f"remind{i}", alertname=f"ComplianceReminder{i}", severity="info"
            )
        )
    return events


def _report_response(client, token: str):
    items = client.get("/api/v1/tickets?limit=500", headers=bearer(token)).get_json()["tickets"]
    incidents = [ticket_from_json(t) for t in items if t["kind"] == "incident"]
    return ind.response(incidents, dt.timedelta(minutes=15), 3, Fraction(1), "test")


# (faults setting, faults counted, escalated) worked by hand from _events(): never
# acknowledged, 20 minutes later.
CASES = [
    # default: critical + warning are faults; AccountReviewOverdue is a reminder; info never
    (None, 3, 3),
    # only critical faults: DiskFull x2 no longer count
    ({"severities": ["critical"]}, 1, 1),
    # an info alert named as a fault counts, but nobody was paged for it: no escalation
    ({"also_faults": ["ComplianceReminder0"]}, 4, 3),
]


@pytest.mark.parametrize(("faults", "counted", "escalated"), CASES)
def test_only_faults_count_and_only_paged_faults_escalate(
    webhook_config, make_services, clock, faults, counted, escalated
):
    cfg = webhook_config(**({"faults": faults} if faults else {}))
    svc = make_services(cfg)
    from webhook.app import create_app

    client = create_app(cfg, svc).test_client()
    svc.store.ingest_many(_events(), svc.planner)
    assert len(svc.store.list_tickets(kind="incident", limit=100)) == 9
    clock.advance(20 * MIN)
    worker = Worker(svc.store, svc.config, senders={})
    assert len(worker.escalate()) == escalated
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_tickets_response_overdue") == counted
    assert sample(m, "sscp_ticket_response_breaches_total", kind="incident") == counted
    token = svc.store.create_token("viewer", "report")
    report = _report_response(client, token)
    assert report.measured == counted  # late responses in the report: the same rule
    sms = [r for r in svc.store.outbox_rows() if r["reason"] == "escalation"]
    assert len(sms) == escalated  # one escalation contact in the roster


def test_reopened_fault_clock_starts_at_the_reopen(services, client, clock):
    [ev] = parse_alertmanager(payload("firing-hostdown.json"))
    tid = services.store.ingest(ev, services.planner).ticket_id
    # resolved by its alert after 5 minutes (responded by resolution: in time)
    clock.advance(5 * MIN)
    services.store.ingest(dataclasses.replace(ev, status="resolved", ends_at=clock.now))
    # fires again 35 minutes later, within the reopen window: reopened, 40 min after creation
    clock.advance(35 * MIN)
    again = dataclasses.replace(ev, starts_at=clock.now)
    assert services.store.ingest(again, services.planner).outcome == "reopened"
    reopened_at = clock.now
    worker = Worker(services.store, services.config, senders={})
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert worker.escalate() == []  # before: escalated at once (created 40 min ago)
    assert sample(m, "sscp_tickets_response_overdue") == 0  # before: 1 at once
    clock.advance(14 * MIN)
    assert worker.escalate() == []
    clock.advance(2 * MIN)
    assert worker.escalate() == [tid]  # 16 minutes after the reopen
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_tickets_response_overdue") == 1
    t = services.store.get_ticket(tid)
    assert t["response_from"] == reopened_at and t["reopen_count"] == 1


def test_reopened_fault_acknowledged_in_time_is_not_late(services, client, clock, tokens):
    [ev] = parse_alertmanager(payload("firing-hostdown.json"))
    tid = services.store.ingest(ev, services.planner).ticket_id
    services.store.transition(tid, "ack", "token:ops")  # 0 s
    clock.advance(10 * MIN)
    services.store.transition(tid, "resolve", "token:ops", "重启")
    clock.advance(60 * MIN)
    services.store.transition(tid, "reopen", "token:ops", "又出现")  # manual reopen at 70 min
    clock.advance(5 * MIN)
    services.store.transition(tid, "ack", "token:ops")  # 5 min after the reopen
    m = parse_exposition(client.get("/metrics").get_data(as_text=True))
    assert sample(m, "sscp_ticket_response_breaches_total", kind="incident") in (None, 0)
    assert sample(m, "sscp_ticket_response_seconds_sum", kind="incident") == 5 * MIN
    token = services.store.create_token("viewer", "report")
    item = client.get(f"/api/v1/tickets/{tid}", headers=bearer(token)).get_json()
    assert item["sla"]["response_seconds"] == 5 * MIN
    assert item["sla"]["response_breached"] is False
    report = _report_response(client, token)
    assert report.measured == 0
