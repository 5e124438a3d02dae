"""``POST /api/v1/alerts`` (Alertmanager's webhook) and ``POST /api/v1/heartbeat`` (Watchdog).

Answers: 200 applied (duplicates included), 400 unusable body (JSON error naming the field),
401 no or wrong token, 413 over ``webhook.max_body_bytes`` (1 MiB), 503 store down (the only
case Alertmanager should retry).
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify

from webhook.auth import alertmanager_ok
from webhook.body import json_body
from webhook.events import PayloadError, parse_alertmanager
from webhook.services import current

bp = Blueprint("alerts", __name__)
log = logging.getLogger("webhook.alerts")

HEARTBEAT_ALERTS = ("Watchdog",)


def _payload():
    if not alertmanager_ok():
        abort(401, "missing or invalid Alertmanager token")
    data = json_body()
    if data is None:
        return None, (jsonify(error="body is not JSON", field="(body)"), 400)
    return data, None


@bp.post("/api/v1/alerts")
def receive():
    data, error = _payload()
    if error:
        return error
    svc = current()
    try:
        events = parse_alertmanager(data, per=svc.config.incident_per)
    except PayloadError as exc:
        return jsonify(error=str(exc), field=exc.field), 400
    heartbeat = any(ev.alertname in HEARTBEAT_ALERTS for ev in events)
    events = [ev for ev in events if ev.alertname not in HEARTBEAT_ALERTS]
    results = svc.store.ingest_many(
        events,
        svc.planner,
        reopen_window=svc.config.reopen_window,
        problem_at=svc.config.problem_at,
        problem_window=svc.config.problem_window,
        is_fault=svc.config.faults.is_fault,
    )
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    if heartbeat:
        _beat()
    log.debug("notification", extra={"kv": {"alerts": len(results), **outcomes}})
    return jsonify(received=len(results), outcomes=outcomes)


def _beat() -> None:
    store = current().store
    store.set_setting("heartbeat_at", store.clock().isoformat())


@bp.post("/api/v1/heartbeat")
def heartbeat():
    data, error = _payload()
    if error:
        return error
    try:
        parse_alertmanager(data)
    except PayloadError as exc:
        return jsonify(error=str(exc), field=exc.field), 400
    _beat()
    return jsonify(status="ok")
