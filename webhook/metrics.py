"""``/metrics`` (collected from the store at scrape time) and ``/healthz``.

sscp_tickets_open{kind="incident",severity="critical",status="open"} 2
sscp_ticket_response_seconds_bucket{kind="incident",le="900.0"} 41
sscp_tickets_response_overdue 1
sscp_notices{channel="sms",status="pending"} 3
sscp_outbox_oldest_pending_age_seconds{channel="sms"} 12.5
sscp_webhook_heartbeat_last_timestamp_seconds 1.7646e+09
sscp_webhook_unknown_severity_total 0
sscp_webhook_login_failures_total 12
sscp_vulnerabilities_overdue{risk="high"} 1
sscp_fault_occurrences{fault="HostDown",target="app1"} 2

The response/resolution timers (``sscp_ticket_response_*``, ``sscp_ticket_resolution_*``,
the breaches) measure incidents only, the contract's fault response and resolution; a
vulnerability is timed against its own deadline. The vulnerability metrics
(``sscp_vulnerabilities_*``, ``sscp_vulnerability_fix_ratio``) are
computed by the shared ``sscp_ops.vulns.vulnerability_metric_families`` (docs/metrics-vulns.md).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from sscp_ops.vulns import VulnRecord, vulnerability_metric_families
from webhook.services import Services, current
from webhook.store import (
    UNKNOWN_SEVERITY_SETTING,
    StoreUnavailable,
    outbox,
    problems,
    tickets,
)
from webhook.worker import WorkerStatus

bp = Blueprint("metrics", __name__)

RESPONSE_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200)
RESOLUTION_BUCKETS = (600, 1800, 3600, 7200, 14400, 43200, 86400)


def _histogram(name, doc, values_by_kind: dict[str, list[float]], buckets) -> Metric:
    h = HistogramMetricFamily(name, doc, labels=["kind"])
    for kind, values in sorted(values_by_kind.items()):
        counts = [(str(float(b)), sum(1 for v in values if v <= b)) for b in buckets]
        counts.append(("+Inf", len(values)))
        h.add_metric([kind], counts, sum(values))
    return h


class TicketCollector:
    def __init__(self, services: Services) -> None:
        self.svc = services

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sscp_webhook_store_up", "1 when the ticket store answers.")
        try:
            metrics = list(self._collect(self.svc.store.clock()))
        except StoreUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _collect(self, now: dt.datetime) -> Iterator[Metric]:
        cfg = self.svc.config
        store = self.svc.store
        with store._read() as conn:
            rows = conn.execute(
                sa.select(
                    tickets.c.kind,
                    tickets.c.status,
                    tickets.c.alertname,
                    tickets.c.severity,
                    tickets.c.response_from,
                    tickets.c.created_at,
                    tickets.c.acknowledged_at,
                    tickets.c.resolved_at,
                    tickets.c.escalated_at,
                    tickets.c.resolution_source,
                    tickets.c.recurrence_of,
                    tickets.c.due_at,
                    tickets.c.risk,
                    tickets.c.starts_at,
                    tickets.c.last_starts_at,
                )
            ).all()
            notices = conn.execute(
                sa.select(outbox.c.channel, outbox.c.status, sa.func.count()).group_by(
                    outbox.c.channel, outbox.c.status
                )
            ).all()
            oldest = conn.execute(
                sa.select(outbox.c.channel, sa.func.min(outbox.c.created_at))
                .where(outbox.c.status.in_(("pending", "sending")))
                .group_by(outbox.c.channel)
            ).all()
            open_problems = conn.execute(
                sa.select(sa.func.count())
                .select_from(problems)
                .where(problems.c.status != "closed")
            ).scalar()
            since = now - dt.timedelta(seconds=cfg.problem_window)
            fault_match = (tickets.c.alertname == problems.c.alertname) & (
                tickets.c.target == problems.c.target
            )
            occurrences = conn.execute(
                sa.select(problems.c.alertname, problems.c.target, sa.func.count(tickets.c.id))
                .select_from(problems.join(tickets, fault_match))
                .where(problems.c.status != "closed")
                .where(tickets.c.kind == "incident")
                .where(tickets.c.starts_at >= since)
                .group_by(problems.c.alertname, problems.c.target)
            ).all()
        heartbeat = store.get_setting("heartbeat_at")
        worker = WorkerStatus.read(store)
        unknown_severity = int(store.get_setting(UNKNOWN_SEVERITY_SETTING) or 0)
        login_failures = store.count_login_failures()

        open_g = GaugeMetricFamily(
            "sscp_tickets_open", "Tickets not yet resolved.", labels=["kind", "severity", "status"]
        )
        created = CounterMetricFamily(
            "sscp_tickets_created",
            "Tickets created (resolution rate denominator).",
            labels=["kind"],
        )
        resolved = CounterMetricFamily(
            "sscp_tickets_resolved",
            "Tickets resolved or closed, by resolution source.",
            labels=["kind", "source"],
        )
        open_c, created_c, resolved_c = Counter(), Counter(), Counter()
        response: dict[str, list[float]] = {}
        resolution: dict[str, list[float]] = {}
        response_breach = Counter()
        resolution_breach = Counter()
        overdue = 0
        vulns: list[VulnRecord] = []
        recurrences = 0
        for r in rows:
            created_c[r.kind] += 1
            if r.recurrence_of is not None:
                recurrences += 1
            if r.kind == "vulnerability" and r.risk and r.due_at is not None:
                found = r.last_starts_at or r.starts_at or r.created_at
                vulns.append(VulnRecord(r.risk, r.status, found, r.due_at))
            if r.status in ("open", "acknowledged"):
                open_c[(r.kind, r.severity, r.status)] += 1
            else:
                resolved_c[(r.kind, r.resolution_source or "manual")] += 1
            if r.kind != "incident":
                # Vulnerabilities are timed against their own deadline (48 h for high, see
                # vulnerability_metric_families); changes have no response/resolution SLA.
                continue
            # Response time: faults only (reminders and compliance notices never), measured
            # from the response clock's start (creation, or the last reopen).
            start = r.response_from or r.created_at
            if not cfg.faults.is_fault(r.alertname, r.severity):
                pass
            elif r.acknowledged_at is not None and r.acknowledged_at >= start:
                secs = max(0.0, (r.acknowledged_at - start).total_seconds())
                response.setdefault(r.kind, []).append(secs)
                if secs > cfg.response_sla:
                    response_breach[r.kind] += 1
            else:
                # Not acknowledged (in this episode): responded to by resolution, or waiting.
                waited = ((r.resolved_at or now) - start).total_seconds()
                if waited > cfg.response_sla:
                    response_breach[r.kind] += 1
                    if r.status == "open" and r.kind == "incident":
                        overdue += 1
            if r.resolved_at is not None:
                # A fault that ended before its ticket was filed (the alert reached us late)
                # took none of our resolution time: 0, never negative.
                secs = max(0.0, (r.resolved_at - r.created_at).total_seconds())
                resolution.setdefault(r.kind, []).append(secs)
                if secs > cfg.resolution_sla:
                    resolution_breach[r.kind] += 1
        for (kind, sev, status), n in sorted(open_c.items()):
            open_g.add_metric([kind, sev, status], n)
        for kind, n in sorted(created_c.items()):
            created.add_metric([kind], n)
        for (kind, source), n in sorted(resolved_c.items()):
            resolved.add_metric([kind, source], n)
        yield open_g
        yield created
        yield resolved
        yield _histogram(
            "sscp_ticket_response_seconds",
            "Time from ticket creation to acknowledgement.",
            response,
            RESPONSE_BUCKETS,
        )
        yield _histogram(
            "sscp_ticket_resolution_seconds",
            "Time from ticket creation to resolution.",
            resolution,
            RESOLUTION_BUCKETS,
        )
        for name, doc, counts in (
            (
                "sscp_ticket_response_breaches",
                "Faults acknowledged late or not yet and late (since creation or reopen).",
                response_breach,
            ),
            (
                "sscp_ticket_resolution_breaches",
                "Tickets resolved after the resolution SLA.",
                resolution_breach,
            ),
        ):
            c = CounterMetricFamily(name, doc, labels=["kind"])
            for kind, n in sorted(counts.items()):
                c.add_metric([kind], n)
            yield c
        yield GaugeMetricFamily(
            "sscp_tickets_response_overdue",
            "Open faults not acknowledged within the response SLA of their creation or reopen.",
            value=overdue,
        )
        yield from vulnerability_metric_families(vulns, now)
        yield CounterMetricFamily(
            "sscp_ticket_recurrences",
            "Incidents that are a recurrence of an earlier one.",
            value=recurrences,
        )
        yield GaugeMetricFamily(
            "sscp_problems_open", "Problem records not closed.", value=open_problems
        )
        faults = GaugeMetricFamily(
            "sscp_fault_occurrences",
            "Occurrences within problem_window of each fault (alertname + target) with an open "
            "problem record (from its problem_at-th occurrence on).",
            labels=["fault", "target"],
        )
        for alertname, target, count in sorted(occurrences):
            faults.add_metric([alertname, target], count)
        yield faults
        n = GaugeMetricFamily(
            "sscp_notices",
            "Notices in the outbox by channel and status.",
            labels=["channel", "status"],
        )
        for channel, status, count in sorted(notices):
            n.add_metric([channel, status], count)
        yield n
        age = GaugeMetricFamily(
            "sscp_outbox_oldest_pending_age_seconds",
            "Age of the oldest notice not yet delivered.",
            labels=["channel"],
        )
        for channel, first in sorted(oldest):
            age.add_metric([channel], max(0.0, (now - first).total_seconds()))
        yield age
        yield CounterMetricFamily(
            "sscp_webhook_unknown_severity",
            "Firing alerts filed whose severity label is not critical, warning or info "
            "(routed as warning; the label is kept in the ticket).",
            value=unknown_severity,
        )
        yield CounterMetricFamily(
            "sscp_webhook_login_failures",
            "UI logins refused for a wrong token (the audit rows login_failed; those refused "
            "by the rate limit with 429 never reach the check and are not counted).",
            value=login_failures,
        )
        if heartbeat:
            yield GaugeMetricFamily(
                "sscp_webhook_heartbeat_last_timestamp_seconds",
                "When the last Watchdog heartbeat arrived.",
                value=dt.datetime.fromisoformat(heartbeat).timestamp(),
            )
        yield from _worker_metrics(worker, now, cfg.worker_timeout)


def _worker_metrics(worker: WorkerStatus | None, now: dt.datetime, timeout: float):
    """The notice worker's liveness, from the record it writes after each pass."""
    yield GaugeMetricFamily(
        "sscp_webhook_worker_up",
        "1 when a notice worker completed a pass within webhook.worker_timeout.",
        value=1 if worker is not None and worker.alive(now, timeout) else 0,
    )
    if worker is None:
        return
    yield GaugeMetricFamily(
        "sscp_webhook_worker_last_pass_timestamp_seconds",
        "When the notice worker last completed a pass of its periodic jobs.",
        value=worker.at.timestamp(),
    )
    yield CounterMetricFamily(
        "sscp_webhook_worker_errors",
        "Errors the notice worker's loops caught and retried, since it started.",
        value=worker.errors,
    )
    loops = GaugeMetricFamily(
        "sscp_webhook_worker_loop_last_success_timestamp_seconds",
        "When each loop of the notice worker (delivery per channel, jobs, ...) last succeeded.",
        labels=["loop"],
    )
    for name, at in sorted(worker.loops.items()):
        loops.add_metric([name], at.timestamp())
    yield loops


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TicketCollector(current()))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


@bp.get("/healthz")
def healthz():
    """200 while the store answers and a notice worker completed a pass within
    ``webhook.worker_timeout`` (or the app started less than that ago); else 503 naming what
    failed. A store that does not answer: 503 through the StoreUnavailable handler."""
    svc = current()
    svc.store.ping()
    now = svc.store.clock()
    timeout = svc.config.worker_timeout
    worker = WorkerStatus.read(svc.store)
    if worker is not None and worker.alive(now, timeout):
        return jsonify(status="ok", store="ok", worker="ok")
    if worker is None and (now - svc.started_at).total_seconds() <= timeout:
        return jsonify(status="ok", store="ok", worker="starting")
    last = worker.at.isoformat() if worker else None
    return jsonify(status="degraded", store="ok", worker="stale", worker_last_pass=last), 503
