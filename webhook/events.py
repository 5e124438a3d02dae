"""Alertmanager's webhook body (version 4) parsed into :class:`AlertEvent` values.

:func:`parse_alertmanager` is pure: unknown fields are ignored, a missing or malformed required
field raises :class:`PayloadError` naming it (the API answers 400: Alertmanager drops 4xx).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

#: Alertmanager sends this for "no end time yet".
_ZERO_TIME = "0001-01-01T00:00:00Z"
_ZERO = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
#: The earliest year a store holds (MySQL DATETIME: 1000-01-01 to 9999-12-31).
MIN_YEAR = 1000
#: Go prints up to nanoseconds; Python keeps microseconds.
_FRACTION = re.compile(r"\.([0-9]+)")


class PayloadError(ValueError):
    """A notification that cannot be used; ``field`` is the JSON path of the bad field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class AlertEvent:
    status: str  # firing | resolved
    fingerprint: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    alertname: str
    severity: str
    target: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    generator_url: str = ""
    receiver: str = ""
    group_key: str = ""


def parse_time(value: Any, where: str) -> dt.datetime | None:
    """RFC 3339 (Alertmanager's Go time, up to nanoseconds) -> aware UTC datetime."""
    if not isinstance(value, str) or not value:
        raise PayloadError(where, "expected an RFC 3339 timestamp")
    if value == _ZERO_TIME:
        return None
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"))
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(where, f"not an RFC 3339 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise PayloadError(where, "timestamp without a time zone")
    try:
        utc = parsed.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is in year 10000
        utc = None
    if utc == _ZERO:
        return None
    if utc is None or utc.year < MIN_YEAR:
        raise PayloadError(where, f"outside the years {MIN_YEAR}-9999 (UTC): {value!r}")
    return utc


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(where, "expected an object")
    return {str(k): str(v) for k, v in value.items()}


def _require(obj: dict, key: str, where: str) -> Any:
    if key not in obj:
        raise PayloadError(f"{where}{key}", "required field is missing")
    return obj[key]


#: The severities routed as they are (docs/webhook.md, roster.routes).
SEVERITIES = ("critical", "warning", "info")


def severity_of(labels: dict[str, str]) -> str:
    """The severity a ticket is routed by: the label in lower case (``Critical`` is
    critical); a missing or unknown one (``page``) is warning. The label itself is kept."""
    value = labels.get("severity", "").strip().lower()
    return value if value in SEVERITIES else "warning"


def unknown_severity(labels: dict[str, str]) -> bool:
    """A severity label that is none of :data:`SEVERITIES`, whatever its case."""
    value = labels.get("severity")
    return value is not None and value.strip().lower() not in SEVERITIES


def target_of(labels: dict[str, str]) -> str:
    for key in ("target", "instance", "service", "job"):
        if labels.get(key):
            return labels[key]
    return ""


def parse_alertmanager(payload: Any, per: str = "alert") -> list[AlertEvent]:
    """One event per alert (``per="alert"``) or one per notification (``per="group"``)."""
    if not isinstance(payload, dict):
        raise PayloadError("(body)", "expected a JSON object")
    version = _require(payload, "version", "")
    if str(version) != "4":
        raise PayloadError("version", f'unsupported version {version!r}, expected "4"')
    alerts = _require(payload, "alerts", "")
    if not isinstance(alerts, list):
        raise PayloadError("alerts", "expected a list")
    receiver = str(payload.get("receiver", ""))
    group_key = str(payload.get("groupKey", ""))
    common = _str_map(payload.get("commonLabels"), "commonLabels")
    events = []
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]."
        if not isinstance(alert, dict):
            raise PayloadError(f"alerts[{i}]", "expected an object")
        status = _require(alert, "status", where)
        if status not in ("firing", "resolved"):
            raise PayloadError(f"{where}status", f"expected firing or resolved, got {status!r}")
        labels = _str_map(_require(alert, "labels", where), f"{where}labels")
        annotations = _str_map(alert.get("annotations"), f"{where}annotations")
        starts_at = parse_time(_require(alert, "startsAt", where), f"{where}startsAt")
        if starts_at is None:
            raise PayloadError(f"{where}startsAt", "zero start time")
        ends_at = parse_time(alert.get("endsAt") or _ZERO_TIME, f"{where}endsAt")
        fingerprint = alert.get("fingerprint")
        if not fingerprint:
            raw = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
            fingerprint = hashlib.sha256(raw.encode()).hexdigest()[:16]
        events.append(
            AlertEvent(
                status=status,
                fingerprint=str(fingerprint),
                starts_at=starts_at,
                ends_at=ends_at if status == "resolved" else None,
                alertname=labels.get("alertname", ""),
                severity=severity_of(labels),
                target=target_of(labels),
                summary=annotations.get("summary", labels.get("alertname", "")),
                description=annotations.get("description", ""),
                labels=labels,
                annotations=annotations,
                generator_url=str(alert.get("generatorURL", "")),
                receiver=receiver,
                group_key=group_key,
            )
        )
    cut = _truncated(payload)
    if per == "group" and events:
        events = [_group_event(events, common, group_key)]
    if cut and payload.get("status") == "firing" and events:
        events.append(_truncation_event(payload, events, common, cut))
    return events


#: Fingerprints of the tickets that count a group's alerts Alertmanager did not list (never a
#: fingerprint Alertmanager gives: those are hexadecimal).
TRUNCATION_PREFIX = "t"
#: The first character of a group's fingerprint (``incident_per: group``); Alertmanager's own
#: fingerprints are hexadecimal, so neither prefix can be one of theirs.
GROUP_PREFIX = "g"
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def _truncated(payload: dict) -> int:
    value = payload.get("truncatedAlerts", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError("truncatedAlerts", "expected a non-negative integer")
    return value


def _truncation_event(
    payload: dict, events: list[AlertEvent], common: dict[str, str], cut: int
) -> AlertEvent:
    """One firing occurrence per group saying that ``cut`` alerts were not listed (over the
    receiver's ``max_alerts``): they have no ticket of their own. Keyed by the group and the
    earliest start of the listed alerts, so Alertmanager's repeats change nothing."""
    group_key = str(payload.get("groupKey", ""))
    group = _str_map(payload.get("groupLabels"), "groupLabels") or common
    first = min(events, key=lambda e: e.starts_at)
    severity = common.get("severity") or min(
        (e.severity for e in events), key=lambda s: _SEVERITY_RANK.get(s, 1)
    )
    alertname = common.get("alertname", first.alertname)
    target = target_of(common)
    matchers = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}"
    url = str(payload.get("externalURL", "")).rstrip("/")
    link = f"{url}/#/alerts?filter={urllib.parse.quote(matchers)}" if url else "Alertmanager 页面"
    where = f"（{target}）" if target else ""
    return AlertEvent(
        status="firing",
        fingerprint=TRUNCATION_PREFIX + hashlib.sha256(group_key.encode()).hexdigest()[:15],
        starts_at=first.starts_at,
        ends_at=None,
        alertname=alertname,
        severity=severity,
        target=target,
        summary=f"告警组 {alertname}{where}另有 {cut} 条告警未列出，未单独建单",
        description=(
            f"Alertmanager 发送此告警组 {matchers} 时只列出了 {len(payload['alerts'])} 条告警"
            f"（单次通知上限 max_alerts），另有 {cut} 条告警未列出，没有各自的工单和短信。"
            f"请在 Alertmanager 查看该组全部告警：{link} 。"
            "已列出的告警恢复后，其余仍在触发的告警会在后续通知中列出并建单；处理完毕后手工关闭此工单。"
        ),
        labels={**common, "truncated_alerts": str(cut)},
        annotations={},
        receiver=str(payload.get("receiver", "")),
        group_key=group_key,
    )


def _group_event(events: list[AlertEvent], common: dict[str, str], group_key: str) -> AlertEvent:
    firing = [e for e in events if e.status == "firing"]
    first = min(events, key=lambda e: e.starts_at)
    resolved = not firing
    ends = [e.ends_at for e in events if e.ends_at is not None]
    summary = first.summary if len(events) == 1 else f"{first.summary} 等 {len(events)} 条告警"
    return AlertEvent(
        status="resolved" if resolved else "firing",
        fingerprint=GROUP_PREFIX + hashlib.sha256(group_key.encode()).hexdigest()[:15],
        starts_at=first.starts_at,
        ends_at=max(ends) if resolved and ends else None,
        alertname=common.get("alertname", first.alertname),
        severity=severity_of(common) if "severity" in common else first.severity,
        target=target_of(common) or first.target,
        summary=summary,
        description="\n".join(sorted({e.description for e in events if e.description})),
        labels=common or first.labels,
        annotations=first.annotations,
        generator_url=first.generator_url,
        receiver=first.receiver,
        group_key=group_key,
    )
