"""Vulnerability findings from scanners, reconciled into vulnerability tickets.

Inputs: OWASP ZAP's *Traditional JSON* report, and a generic CSV for penetration-test findings
(columns in :data:`CSV_COLUMNS`, documented in docs/vulnerabilities.md). Each is parsed by a pure
function into a :class:`Scan`: the scan time, the sites it covered and one :class:`Finding` per
distinct finding, keyed by *check id + URL (without query string) + parameter* (ZAP: plugin id).
Informational ZAP alerts (risk 0) and false positives (confidence 0) are not findings.

:func:`reconcile` compares a scan with the existing tickets of the same source and sites and
returns the actions: create a ticket for a new finding, update one whose risk or title changed,
close open tickets whose finding is gone (``fixed_at`` = scan time) and reopen resolved or
closed tickets whose finding came back (found again at the scan time). Due dates follow the
risk: high 48 h, medium 7 days, low 30 days after the finding was found (or found again).

The tickets live in the ticket service (the webhook); :class:`VulnTicketClient` is the small
interface the importer needs and :class:`HttpVulnTicketClient` speaks the webhook's ticket API
(contract in docs/vulnerabilities.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import html
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from sscp_ops.masking import mask_text

RISKS = ("high", "medium", "low")
OPEN, CLOSED = ("open", "acknowledged"), ("resolved", "closed")
DUE_AFTER = {
    "high": dt.timedelta(hours=48),
    "medium": dt.timedelta(days=7),
    "low": dt.timedelta(days=30),
}
ZAP_RISK = {"3": "high", "2": "medium", "1": "low"}  # 0 = informational: not filed
CSV_COLUMNS = ("check", "title", "risk", "url", "param", "found_at", "description", "solution")
CSV_RISK = {"high": "high", "高": "high", "高危": "high", "critical": "high", "严重": "high",
            "medium": "medium", "中": "medium", "中危": "medium",
            "low": "low", "低": "low", "低危": "low"}  # fmt: skip


class ReportError(ValueError):
    """A report file that cannot be read; the message names what is wrong and where."""


@dataclass(frozen=True)
class Finding:
    key: str  # finding_key(source, check, url, param)
    source: str  # zap, pentest
    check: str  # ZAP plugin id, or the CSV check column
    title: str
    risk: str  # high, medium, low
    site: str  # scheme://host:port
    url: str  # without query string and fragment
    param: str
    instances: int = 1
    cwe: str = ""
    description: str = ""
    solution: str = ""


@dataclass(frozen=True)
class Scan:
    source: str
    scanned_at: dt.datetime  # aware, UTC
    sites: frozenset[str]
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class VulnTicket:
    id: str
    key: str
    status: str  # open, acknowledged, resolved, closed
    risk: str
    title: str
    site: str
    found_at: dt.datetime  # found, or found again (the ticket's last_starts_at)
    due_at: dt.datetime
    fixed_at: dt.datetime | None = None  # the ticket's resolved_at


@dataclass(frozen=True)
class Action:
    kind: str  # create, update, close, reopen
    finding: Finding | None = None
    ticket: VulnTicket | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


# --- parsing -----------------------------------------------------------------------------


def finding_key(source: str, check: str, url: str, param: str) -> str:
    """``zap:40012:<16 hex>``: stable across scans, short, and safe in a URL path (the URL and
    parameter are hashed; they travel in the ticket's labels)."""
    digest = hashlib.blake2b(f"{url}\0{param}".encode(), digest_size=8).hexdigest()
    return f"{source}:{check}:{digest}"


def _site_and_url(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReportError(f"not an http(s) URL: {uri[:80]!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    site = f"{parts.scheme}://{parts.hostname.lower()}:{port}"
    url = urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", "", ""))
    return site, url


def _plain(text: str, limit: int = 2000) -> str:
    """ZAP's HTML paragraphs to plain text, personal data masked, bounded."""
    text = re.sub(r"</p>\s*<p>", "\n", text or "")
    text = html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
    return mask_text(text)[:limit]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 (``2026-11-28T09:00:00Z``, with up to 9 fractional digits) -> aware UTC."""
    s = text.strip().replace("Z", "+00:00")
    s = re.sub(r"(\.\d{6})\d+", r"\1", s)  # ZAP writes nanoseconds
    try:
        return _utc(dt.datetime.fromisoformat(s))
    except ValueError:
        raise ReportError(f"not an ISO 8601 time: {text!r}") from None


def parse_zap_json(text: str) -> Scan:
    """ZAP's Traditional JSON report -> :class:`Scan` (scan time from ``created``, or from
    ``@generated`` taken as UTC on reports of ZAP before 2.12)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("site"), list):
        raise ReportError("not a ZAP traditional-json report: no 'site' list")
    if doc.get("created"):
        scanned_at = parse_time(doc["created"])
    elif doc.get("@generated"):
        try:
            scanned_at = _utc(parsedate_to_datetime(doc["@generated"]))
        except (TypeError, ValueError):
            raise ReportError(f"bad @generated time: {doc['@generated']!r}") from None
    else:
        raise ReportError("no 'created' or '@generated' time in the report")
    findings: dict[str, Finding] = {}
    sites: set[str] = set()
    for i, site in enumerate(doc["site"]):
        try:
            site_key, _ = _site_and_url(site["@name"])
            sites.add(site_key)
            alerts = site.get("alerts") or []
        except (KeyError, TypeError):
            raise ReportError(f"site[{i}]: no '@name'") from None
        for j, alert in enumerate(alerts):
            where = f"site[{i}].alerts[{j}]"
            try:
                plugin, riskcode = str(alert["pluginid"]), str(alert["riskcode"])
                title, instances = alert.get("name") or alert["alert"], alert["instances"]
            except (KeyError, TypeError) as exc:
                raise ReportError(f"{where}: missing {exc}") from None
            risk = ZAP_RISK.get(riskcode)
            if risk is None or str(alert.get("confidence", "")) == "0":
                continue
            for inst in instances:
                s, url = _site_and_url(inst.get("uri", ""))
                param = inst.get("param", "") or ""
                key = finding_key("zap", plugin, url, param)
                have = findings.get(key)
                if have is not None:
                    findings[key] = replace(have, instances=have.instances + 1)
                    continue
                findings[key] = Finding(
                    key=key,
                    source="zap",
                    check=plugin,
                    title=_plain(title, 200),
                    risk=risk,
                    site=s,
                    url=url,
                    param=param,
                    cwe=str(alert.get("cweid", "")),
                    description=_plain(alert.get("desc", "")),
                    solution=_plain(alert.get("solution", "")),
                )
    return Scan("zap", scanned_at, frozenset(sites), tuple(findings.values()))


def parse_findings_csv(text: str, scanned_at: dt.datetime | None = None) -> Scan:
    """The generic CSV (UTF-8, header row with :data:`CSV_COLUMNS`) -> :class:`Scan`.

    The scan time is ``scanned_at`` or else the latest ``found_at``; the sites are those of the
    URLs in the file.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ReportError(f"CSV header lacks column(s): {', '.join(missing)}")
    findings: dict[str, Finding] = {}
    sites: set[str] = set()
    latest: dt.datetime | None = None
    for n, row in enumerate(reader, start=2):
        try:
            risk = CSV_RISK.get((row["risk"] or "").strip().lower())
            if risk is None:
                raise ReportError(f"risk {row['risk']!r}: expected high, medium or low")
            site, url = _site_and_url(row["url"] or "")
            found = parse_time(row["found_at"] or "")
            check = (row["check"] or "").strip()
            if not check:
                raise ReportError("empty check")
        except ReportError as exc:
            raise ReportError(f"line {n}: {exc}") from None
        latest = found if latest is None or found > latest else latest
        sites.add(site)
        param = (row["param"] or "").strip()
        key = finding_key("pentest", check, url, param)
        have = findings.get(key)
        findings[key] = (
            replace(have, instances=have.instances + 1)
            if have
            else Finding(
                key=key,
                source="pentest",
                check=check,
                title=mask_text((row["title"] or check).strip())[:200],
                risk=risk,
                site=site,
                url=url,
                param=param,
                description=mask_text(row["description"] or "")[:2000],
                solution=mask_text(row["solution"] or "")[:2000],
            )
        )
    when = scanned_at or latest
    if when is None:
        raise ReportError("CSV has no findings and no scan time was given")
    return Scan("pentest", _utc(when), frozenset(sites), tuple(findings.values()))


# --- reconciling -------------------------------------------------------------------------


def due_at(risk: str, found_at: dt.datetime) -> dt.datetime:
    return found_at + DUE_AFTER[risk]


def reconcile(scan: Scan, tickets: Iterable[VulnTicket]) -> list[Action]:
    """What to do with the tickets so that they match the scan (see the module docstring).

    Only tickets of the scan's source and sites take part: a scan of one site never closes
    the findings of another. A scan older than a ticket's fix does not reopen it, and one older
    than its finding does not close it (an old report imported late changes nothing it cannot
    know about).
    """
    prefix = f"{scan.source}:"
    mine = {t.key: t for t in tickets if t.key.startswith(prefix) and t.site in scan.sites}
    actions: list[Action] = []
    seen: set[str] = set()
    for f in scan.findings:
        seen.add(f.key)
        t = mine.get(f.key)
        if t is None:
            actions.append(
                Action(
                    "create",
                    finding=f,
                    fields={"found_at": scan.scanned_at, "due_at": due_at(f.risk, scan.scanned_at)},
                )
            )
        else:
            if t.status in CLOSED and (t.fixed_at is None or scan.scanned_at > t.fixed_at):
                again = {"found_at": scan.scanned_at, "due_at": due_at(f.risk, scan.scanned_at)}
                actions.append(Action("reopen", finding=f, ticket=t, fields=again))
            wanted = {"risk": f.risk, "title": f.title}
            changes = {k: v for k, v in wanted.items() if getattr(t, k) != v}
            if changes:  # the service recomputes the due time from the risk
                actions.append(Action("update", finding=f, ticket=t, fields=changes))
    for key, t in sorted(mine.items()):
        if key not in seen and t.status in OPEN and scan.scanned_at >= t.found_at:
            actions.append(Action("close", ticket=t, fields={"fixed_at": scan.scanned_at}))
    return actions


# --- the ticket service ------------------------------------------------------------------


class TicketServiceError(Exception):
    """The ticket service refused a request or cannot be reached (message has no secret)."""


class VulnTicketClient(Protocol):
    def list(self, source: str) -> list[VulnTicket]: ...

    def create(self, finding: Finding, found_at: dt.datetime) -> None: ...

    def update(self, key: str, fields: Mapping[str, Any]) -> None: ...

    def close(self, key: str, fixed_at: dt.datetime) -> None: ...

    def reopen(self, key: str, found_at: dt.datetime) -> None: ...


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


class HttpVulnTicketClient:
    """The webhook's ticket API with a bearer token (operator role); see docs/vulnerabilities.md.

    Lists through ``GET /api/v1/tickets?kind=vulnerability``, files through
    ``POST /api/v1/vulnerabilities`` and changes through ``PATCH /api/v1/vulnerabilities/<key>``.
    """

    PAGE = 1000

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.api = base_url.rstrip("/") + "/api/v1"
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> Any:
        payload = None if body is None else {k: _iso(v) for k, v in body.items()}
        try:
            resp = self.session.request(method, url, json=payload, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TicketServiceError(f"{method} {url}: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            try:
                detail = str(resp.json().get("error", ""))
            except ValueError:
                detail = resp.text[:200]
            raise TicketServiceError(f"{method} {url}: HTTP {resp.status_code} {detail}".strip())
        return resp.json() if resp.content else None

    def list(self, source: str) -> list[VulnTicket]:
        out: list[VulnTicket] = []
        offset = 0
        while True:
            url = f"{self.api}/tickets?kind=vulnerability&limit={self.PAGE}&offset={offset}"
            page = self._call("GET", url).get("tickets", [])
            for item in page:
                key = item.get("external_key") or ""
                if not key.startswith(f"{source}:"):
                    continue
                fixed = item.get("resolved_at") or item.get("closed_at")
                found = item.get("last_starts_at") or item["starts_at"]
                out.append(
                    VulnTicket(
                        id=str(item["id"]),
                        key=key,
                        status=item["status"],
                        risk=item["risk"],
                        title=item.get("summary") or "",
                        site=(item.get("labels") or {}).get("site", ""),
                        found_at=parse_time(found),
                        due_at=parse_time(item["due_at"]),
                        fixed_at=parse_time(fixed) if fixed else None,
                    )
                )
            if len(page) < self.PAGE:
                return out
            offset += self.PAGE

    def _key_url(self, key: str) -> str:
        return f"{self.api}/vulnerabilities/{quote(key, safe=':')}"

    def create(self, finding: Finding, found_at: dt.datetime) -> None:
        text = finding.description
        if finding.solution:
            text += "\n\n修复建议：\n" + finding.solution
        body = {
            "external_key": finding.key,
            "risk": finding.risk,
            "title": finding.title,
            "target": finding.url[:255],
            "name": f"{finding.source}:{finding.check}"[:200],
            "description": text,
            "found_at": found_at,
            "labels": {
                "source": finding.source,
                "check": finding.check,
                "site": finding.site,
                "url": finding.url,
                "param": finding.param,
                "cwe": finding.cwe,
                "instances": str(finding.instances),
            },
        }
        self._call("POST", f"{self.api}/vulnerabilities", body)

    def update(self, key: str, fields: Mapping[str, Any]) -> None:
        self._call("PATCH", self._key_url(key), fields)

    def close(self, key: str, fixed_at: dt.datetime) -> None:
        note = f"复测未再发现（扫描时间 {_iso(fixed_at)}）"
        body = {"status": "closed", "fixed_at": fixed_at, "note": note}
        self._call("PATCH", self._key_url(key), body)

    def reopen(self, key: str, found_at: dt.datetime) -> None:
        note = f"复测再次发现（扫描时间 {_iso(found_at)}）"
        body = {"status": "open", "found_at": found_at, "note": note}
        self._call("PATCH", self._key_url(key), body)


def apply_actions(client: VulnTicketClient, actions: Iterable[Action]) -> dict[str, int]:
    """Carry out the actions; returns how many of each kind were done."""
    done = {"create": 0, "update": 0, "close": 0, "reopen": 0}
    for a in actions:
        if a.kind == "create" and a.finding is not None:
            client.create(a.finding, a.fields["found_at"])
        elif a.kind == "update" and a.ticket is not None:
            client.update(a.ticket.key, a.fields)
        elif a.kind == "close" and a.ticket is not None:
            client.close(a.ticket.key, a.fields["fixed_at"])
        elif a.kind == "reopen" and a.ticket is not None:
            client.reopen(a.ticket.key, a.fields["found_at"])
        else:
            raise ValueError(f"malformed action {a!r}")
        done[a.kind] += 1
    return done


# --- metrics (for the ticket service's /metrics; docs/metrics-vulns.md) -------------------

FIX_WINDOW = dt.timedelta(days=90)


@dataclass(frozen=True)
class VulnRecord:
    """What the metrics need of one vulnerability ticket."""

    risk: str
    status: str  # open, acknowledged, resolved, closed
    found_at: dt.datetime  # found, or found again when reopened
    due_at: dt.datetime


def vulnerability_metric_families(records: Iterable[VulnRecord], now: dt.datetime) -> list:
    """The metrics of docs/metrics-vulns.md from the vulnerability tickets, computed now.

    The ticket service calls this at scrape time, so the names, labels and the definition of
    the fix ratio live in one place."""
    from prometheus_client.core import GaugeMetricFamily

    open_c = dict.fromkeys(RISKS, 0)
    overdue_c = dict.fromkeys(RISKS, 0)
    oldest: dict[str, dt.datetime] = {}
    counted = fixed = 0
    for r in records:
        if r.risk not in open_c:
            continue
        is_open = r.status in OPEN
        if is_open:
            open_c[r.risk] += 1
            if r.due_at < now:
                overdue_c[r.risk] += 1
            if r.risk not in oldest or r.found_at < oldest[r.risk]:
                oldest[r.risk] = r.found_at
        if now - r.found_at <= FIX_WINDOW and (not is_open or r.due_at < now):
            counted += 1
            fixed += 0 if is_open else 1
    fams = []
    for name, doc, values in (
        ("sscp_vulnerabilities_open", "Open vulnerability tickets.", open_c),
        (
            "sscp_vulnerabilities_overdue",
            "Open vulnerability tickets past their due time (high 48 h, medium 7 d, low 30 d).",
            overdue_c,
        ),
    ):
        fam = GaugeMetricFamily(name, doc, labels=["risk"])
        for risk in RISKS:
            fam.add_metric([risk], values[risk])
        fams.append(fam)
    fam = GaugeMetricFamily(
        "sscp_vulnerabilities_oldest_open_timestamp_seconds",
        "When the oldest open vulnerability of each risk was found (or found again).",
        labels=["risk"],
    )
    for risk in RISKS:
        if risk in oldest:
            fam.add_metric([risk], oldest[risk].timestamp())
    fams.append(fam)
    if counted:
        fams.append(
            GaugeMetricFamily(
                "sscp_vulnerability_fix_ratio",
                "Of the vulnerabilities found in the last 90 days that are fixed or past due, "
                "the share fixed.",
                value=fixed / counted,
            )
        )
    return fams
