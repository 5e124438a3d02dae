"""Ticket rows -> what people and the API see: ISO 8601 UTC times, masked personal data, SLA."""

from __future__ import annotations

import datetime as dt
import json

from sscp_ops.masking import mask_phone, mask_text
from webhook.notices import ACK_LINK

TIME_FIELDS = (
    "starts_at",
    "last_starts_at",
    "created_at",
    "notified_at",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "escalated_at",
    "due_at",
    "response_from",
)
TEXT_FIELDS = ("summary", "description", "resolution_note", "assignee", "target", "alertname")


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _masked_json(text: str) -> dict:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return {k: mask_text(str(v)) for k, v in data.items()} if isinstance(data, dict) else {}


def _seconds(delta: dt.timedelta) -> float:
    """A duration for the SLA fields: never negative (a fault that ended before its ticket was
    filed, because the alert reached us late, took none of our time)."""
    return max(0.0, round(delta.total_seconds(), 3))


def sla(ticket: dict, response_sla: float, resolution_sla: float, now: dt.datetime) -> dict:
    """Seconds to respond / resolve, and whether the 15 min / 2 h targets are (being) missed.
    The response clock starts at creation, or at the last reopen (``response_from``)."""
    created = ticket["created_at"]
    start = ticket.get("response_from") or created
    ack = ticket.get("acknowledged_at")
    if ack is not None and ack < start:
        ack = None  # acknowledged before the reopen: this episode is not answered yet
    resolved = ticket.get("resolved_at")
    response = ((ack or resolved or now) - start).total_seconds()
    resolution = ((resolved or now) - created).total_seconds()
    return {
        "response_seconds": _seconds(ack - start) if ack else None,
        "resolution_seconds": _seconds(resolved - created) if resolved else None,
        "response_from": iso(start),
        "response_due_at": iso(start + dt.timedelta(seconds=response_sla)),
        "resolution_due_at": iso(created + dt.timedelta(seconds=resolution_sla)),
        "response_breached": response > response_sla,
        "resolution_breached": resolution > resolution_sla,
    }


def ticket_json(
    t: dict, response_sla: float, resolution_sla: float, now: dt.datetime, fault: bool = True
) -> dict:
    """``fault``: whether the incident counts toward response time (``webhook.faults``)."""
    out = {
        "id": t["id"],
        "kind": t["kind"],
        "status": t["status"],
        "severity": t["severity"],
        "fingerprint": t["fingerprint"],
        "labels": _masked_json(t["labels"]),
        "resolution_source": t["resolution_source"],
        "reopen_count": t["reopen_count"],
        "recurrence_of": t["recurrence_of"],
        "problem_id": t["problem_id"],
        "risk": t["risk"],
        "external_key": t["external_key"],
        "fault": fault,
    }
    for f in TEXT_FIELDS:
        out[f] = mask_text(t[f]) if t[f] is not None else None
    for f in TIME_FIELDS:
        out[f] = iso(t[f])
    out["sla"] = sla(t, response_sla, resolution_sla, now)
    if "comments" in t:
        out["comments"] = [
            {
                "id": c["id"],
                "author": mask_text(c["author"]),
                "body": mask_text(c["body"]),
                "created_at": iso(c["created_at"]),
            }
            for c in t["comments"]
        ]
    if "audit" in t:
        out["audit"] = [audit_json(a) for a in t["audit"]]
    return out


def audit_json(a: dict) -> dict:
    return {
        "id": a["id"],
        "at": iso(a["at"]),
        "actor": mask_text(a["actor"]),
        "action": a["action"],
        "object_type": a["object_type"],
        "object_id": a["object_id"],
        "detail": _mask_deep(json.loads(a["detail"])),
    }


def _mask_deep(value):
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_deep(v) for v in value]
    return value


def notice_json(n: dict) -> dict:
    return {
        "id": n["id"],
        "ticket_id": n["ticket_id"],
        "reason": n["reason"],
        "channel": n["channel"],
        "recipient": mask_phone(n["recipient"]) if n["channel"] == "sms" else n["recipient"],
        "body": ACK_LINK.sub("/a/…", mask_text(n["body"])),
        "status": n["status"],
        "attempts": n["attempts"],
        "created_at": iso(n["created_at"]),
        "sent_at": iso(n["sent_at"]),
        "last_error": n["last_error"],
    }


def plain_json(row: dict) -> dict:
    """Problems and changes: datetimes to ISO strings, text masked."""
    out = {}
    for k, v in row.items():
        if isinstance(v, dt.datetime):
            out[k] = iso(v)
        elif isinstance(v, str):
            out[k] = mask_text(v)
        else:
            out[k] = v
    return out
