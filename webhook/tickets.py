"""The REST API under ``/api/v1/``: tickets, problems, changes, vulnerabilities, tokens.

Roles (least privilege): ``viewer`` reads; ``operator`` also acknowledges, resolves, closes,
comments, files changes and vulnerabilities; ``admin`` also manages problems and API tokens.
Every mutation writes an audit record in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from flask import Blueprint, abort, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from webhook.auth import require_role
from webhook.body import bad_request as _bad_request
from webhook.body import json_body
from webhook.columns import TEXT_CHARS
from webhook.services import current
from webhook.store import STATUSES, Conflict, Invalid, NotFound
from webhook.views import notice_json, plain_json, ticket_json

bp = Blueprint("tickets", __name__, url_prefix="/api/v1")
CLOCK_SKEW = dt.timedelta(minutes=5)  # a scanner's clock may run a little ahead of ours


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AckBody(_Body):
    assignee: Annotated[str, Field(max_length=64)] | None = None
    note: Annotated[str, Field(max_length=4000)] = ""


class ResolveBody(_Body):
    note: Annotated[str, Field(min_length=1, max_length=4000)]


class CloseBody(_Body):
    note: Annotated[str, Field(max_length=4000)] = ""


class CommentBody(_Body):
    body: Annotated[str, Field(min_length=1, max_length=10000)]


class VulnerabilityBody(_Body):
    external_key: Annotated[str, Field(min_length=1, max_length=200)]
    risk: Literal["high", "medium", "low"]
    title: Annotated[str, Field(min_length=1, max_length=500)]
    target: Annotated[str, Field(max_length=255)] = ""
    name: Annotated[str, Field(max_length=200)] = "vulnerability"
    description: str = ""
    found_at: dt.datetime | None = None
    labels: dict[str, str] = {}


class VulnerabilityPatch(_Body):
    risk: Literal["high", "medium", "low"] | None = None
    title: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    target: Annotated[str, Field(max_length=255)] | None = None
    description: str | None = None
    labels: dict[str, str] | None = None
    status: Literal["resolved", "closed", "open"] | None = None
    fixed_at: dt.datetime | None = None  # with status resolved/closed: when it was gone
    found_at: dt.datetime | None = None  # with status open: when it was found again
    note: Annotated[str, Field(max_length=4000)] = ""

    @model_validator(mode="after")
    def _times_go_with_status(self) -> VulnerabilityPatch:
        if self.fixed_at is not None and self.status not in ("resolved", "closed"):
            raise ValueError("fixed_at needs status resolved or closed")
        if self.found_at is not None and self.status != "open":
            raise ValueError("found_at needs status open (POST corrects when it was found)")
        return self


#: Free text kept in a TEXT column (MySQL: 64 KB, up to 4 bytes a character).
LongText = Annotated[str, Field(max_length=TEXT_CHARS)]


class ChangeBody(_Body):
    title: Annotated[str, Field(min_length=1, max_length=500)]
    reason: Annotated[str, Field(min_length=1, max_length=TEXT_CHARS)]
    problem_id: int | None = None
    planned_start: dt.datetime | None = None
    planned_end: dt.datetime | None = None
    executor: Annotated[str, Field(max_length=64)] | None = None
    result: Literal["success", "failed", "rolled_back"] | None = None
    verification: LongText | None = None


class ChangePatch(ChangeBody):
    title: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=TEXT_CHARS)] | None = None


class ProblemPatch(_Body):
    status: Literal["open", "known_error", "closed"] | None = None
    title: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    root_cause: LongText | None = None


class TokenBody(_Body):
    role: Literal["viewer", "operator", "admin"]
    name: Annotated[str, Field(min_length=1, max_length=64)]


def body(model: type[BaseModel]):
    data = json_body()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        abort(_bad_request("(body)", "expected a JSON object"))
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        abort(_bad_request(field, err["msg"]))
    return parsed


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        abort(_bad_request("time", "timestamps need a time zone (use ISO 8601 with Z)"))
    return value


def _ticket(t: dict):
    cfg = current().config
    return ticket_json(
        t,
        cfg.response_sla,
        cfg.resolution_sla,
        current().store.clock(),
        t["kind"] == "incident" and cfg.faults.is_fault(t["alertname"], t["severity"]),
    )


def _actor() -> str:
    return g.token.actor


@bp.errorhandler(NotFound)
def _not_found(exc):
    return jsonify(error=str(exc)), 404


@bp.errorhandler(Invalid)
def _invalid(exc: Invalid):
    return _bad_request(exc.field, exc.problem)


@bp.errorhandler(Conflict)
def _conflict(exc):
    return jsonify(error=str(exc)), 409


# -- tickets ----------------------------------------------------------------------------------
@bp.get("/tickets")
@require_role("viewer")
def list_tickets():
    status = [s for s in request.args.get("status", "").split(",") if s]
    for s in status:
        if s not in STATUSES:
            abort(_bad_request("status", f"unknown status {s!r}"))
    kind = request.args.get("kind") or None
    since = _time_arg("since")
    until = _time_arg("until")
    limit = min(_int_arg("limit", 100, 1, None), 1000)
    offset = _int_arg("offset", 0, 0, MAX_OFFSET)
    rows = current().store.list_tickets(status, kind, since, until, limit, offset)
    return jsonify(tickets=[_ticket(t) for t in rows], limit=limit, offset=offset)


#: Far past any list (a 64-bit OFFSET on MySQL, SQLite's integers).
MAX_OFFSET = 10**9


def _int_arg(name: str, default: int, low: int, high: int | None) -> int:
    """A whole-number query parameter in ``[low, high]``; a limit above its cap is capped."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text) if len(text) <= 12 else None
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        top = f"..{high}" if high is not None else " or more"
        abort(_bad_request(name, f"expected a whole number {low}{top}, got {text[:40]!r}"))
    return value


def _time_arg(name: str) -> dt.datetime | None:
    """An ISO 8601 query parameter with a time zone, as UTC."""
    text = request.args.get(name)
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if value.tzinfo is None:
            abort(_bad_request(name, "timestamps need a time zone (use ISO 8601 with Z)"))
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        abort(_bad_request(name, f"expected an ISO 8601 time, got {text[:40]!r}"))


@bp.get("/tickets/<int:tid>")
@require_role("viewer")
def get_ticket(tid: int):
    svc = current()
    out = _ticket(svc.store.get_ticket(tid))
    out["notices"] = [notice_json(n) for n in svc.store.outbox_rows(tid)]
    return jsonify(out)


@bp.post("/tickets/<int:tid>/ack")
@require_role("operator")
def ack(tid: int):
    b = body(AckBody)
    t = current().store.transition(
        tid, "ack", _actor(), b.note, assignee=b.assignee or g.token.name
    )
    return jsonify(_ticket(t))


@bp.post("/tickets/<int:tid>/resolve")
@require_role("operator")
def resolve(tid: int):
    b = body(ResolveBody)
    t = current().store.transition(tid, "resolve", _actor(), b.note)
    return jsonify(_ticket(t))


@bp.post("/tickets/<int:tid>/close")
@require_role("operator")
def close(tid: int):
    b = body(CloseBody)
    t = current().store.transition(tid, "close", _actor(), b.note)
    return jsonify(_ticket(t))


@bp.post("/tickets/<int:tid>/comments")
@require_role("operator")
def comment(tid: int):
    b = body(CommentBody)
    c = current().store.add_comment(tid, _actor(), b.body)
    return jsonify(plain_json(c)), 201


# -- vulnerabilities --------------------------------------------------------------------------
@bp.post("/vulnerabilities")
@require_role("operator")
def file_vulnerability():
    """File a finding, or update the one with the same ``external_key`` (scans repeat)."""
    b = body(VulnerabilityBody)
    fields = b.model_dump(exclude={"external_key"}, exclude_none=True)
    if "found_at" in fields:
        fields["found_at"] = _aware(fields["found_at"])
    t, created = current().store.upsert_vulnerability(b.external_key, fields, _actor())
    return jsonify(_ticket(t)), 201 if created else 200


@bp.get("/vulnerabilities/<path:key>")
@require_role("viewer")
def get_vulnerability(key: str):
    return jsonify(_ticket(current().store.find_by_external_key(key)))


@bp.patch("/vulnerabilities/<path:key>")
@require_role("operator")
def patch_vulnerability(key: str):
    """Change fields and/or the status: ``resolved`` / ``closed`` (fixed at ``fixed_at``, a
    re-scan's time, default now) or ``open`` (reopen, found again at ``found_at``)."""
    b = body(VulnerabilityPatch)
    store = current().store
    t = store.find_by_external_key(key)
    at = b.fixed_at if b.fixed_at is not None else b.found_at
    if at is not None:
        field = "fixed_at" if b.fixed_at is not None else "found_at"
        if at.tzinfo is None:
            abort(_bad_request(field, "timestamps need a time zone (use ISO 8601 with Z)"))
        if at > store.clock() + CLOCK_SKEW:
            abort(_bad_request(field, "lies in the future"))
    fields = b.model_dump(exclude={"status", "note", "fixed_at", "found_at"}, exclude_none=True)
    if fields:
        t, _ = store.upsert_vulnerability(key, fields, _actor())
    if b.status is not None:
        t = store.set_vulnerability_status(t["id"], b.status, _actor(), b.note, at)
    return jsonify(_ticket(store.get_ticket(t["id"])))


# -- problems and changes ---------------------------------------------------------------------
@bp.get("/problems")
@require_role("viewer")
def list_problems():
    return jsonify(problems=[plain_json(p) for p in current().store.list_problems()])


@bp.patch("/problems/<int:pid>")
@require_role("admin")
def patch_problem(pid: int):
    b = body(ProblemPatch)
    p = current().store.update_problem(pid, b.model_dump(exclude_none=True), _actor())
    return jsonify(plain_json(p))


@bp.get("/changes")
@require_role("viewer")
def list_changes():
    return jsonify(changes=[plain_json(c) for c in current().store.list_changes()])


@bp.post("/changes")
@require_role("operator")
def create_change():
    b = body(ChangeBody)
    fields = b.model_dump(exclude_none=True)
    for k in ("planned_start", "planned_end"):
        if k in fields:
            _aware(fields[k])
    return jsonify(plain_json(current().store.create_change(fields, _actor()))), 201


@bp.patch("/changes/<int:cid>")
@require_role("operator")
def patch_change(cid: int):
    b = body(ChangePatch)
    fields = b.model_dump(exclude_none=True)
    for k in ("planned_start", "planned_end"):
        if k in fields:
            _aware(fields[k])
    return jsonify(plain_json(current().store.update_change(cid, fields, _actor())))


# -- tokens -----------------------------------------------------------------------------------
@bp.post("/tokens")
@require_role("admin")
def create_token():
    b = body(TokenBody)
    token = current().store.create_token(b.role, b.name, actor=_actor())
    return jsonify(token=token, role=b.role, name=b.name), 201


@bp.get("/tokens")
@require_role("admin")
def list_tokens():
    return jsonify(tokens=[plain_json(t) for t in current().store.list_tokens()])


@bp.delete("/tokens/<int:token_id>")
@require_role("admin")
def revoke_token(token_id: int):
    """Revoke a token: it stops working at once, and its UI sessions end (audited)."""
    return jsonify(plain_json(current().store.revoke_token(token_id, _actor())))
