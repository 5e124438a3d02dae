"""The ``webhook:`` section: the ticket webhook's store, auth, SLAs, notice channels and roster.

Shape (kept stable: the stack, the tests and the manual rely on it)::

    webhook:
      listen_address: 127.0.0.1:9811
      database: sqlite:///var/tickets.db          # or mysql+pymysql://user@host/db
      database_password_file: /etc/sscp-ops/webhook-db.pass   # optional, for MySQL
      alertmanager_token_file: /etc/sscp-ops/alertmanager.token
      alertmanager_url: http://127.0.0.1:9093    # reconciliation of silenced alerts (optional)
      public_url: https://itss.example.gov.cn    # base of the acknowledge links in SMS
      reopen_window: 3600
      sms:
        backend: log                             # log | http
        http: {url: "https://sms.example.gov.cn/send", body_template: '{"to": "{phone}", ...}'}
        limits: [{count: 1, seconds: 30}, {count: 5, seconds: 3600}]
      robots:
        - {name: ops-group, kind: wecom, url_file: /etc/sscp-ops/wecom.url}
      roster:
        rotation: week                           # day | week
        start: 2026-01-05                        # the first shift begins this day at handover
        handover: "09:00"
        shifts:
          - primary: {name: 张三, phone: "13800000001"}
            backup: {name: 李四, phone: "13800000002"}
        escalation: [{name: 王五, phone: "13800000003"}]
        routes: {critical: [primary, backup], warning: [primary], info: []}
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sscp_ops.config.base import Model, Name, unique_names

Seconds = Annotated[float, Field(gt=0, le=30 * 86400)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://\S+$")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{5,19}$")]
Severity = Literal["critical", "warning", "info"]


def _read_secret(path: Path | None, env: str | None) -> str | None:
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    if env is not None:
        return os.environ.get(env)
    return None


class Contact(Model):
    name: Annotated[str, Field(min_length=1, max_length=32)]
    phone: Phone


class Shift(Model):
    primary: Contact
    backup: Contact | None = None


class RosterConfig(Model):
    rotation: Literal["day", "week"] = "week"
    start: dt.date = dt.date(2026, 1, 5)
    handover: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "09:00"
    #: UTC offset of the roster's wall clock (the city runs on UTC+8).
    utc_offset_hours: Annotated[int, Field(ge=-12, le=14)] = 8
    shifts: list[Shift] = []
    escalation: list[Contact] = []
    routes: dict[Severity, list[Literal["primary", "backup"]]] = {
        "critical": ["primary", "backup"],
        "warning": ["primary"],
        "info": [],
    }


class RateLimit(Model):
    count: Annotated[int, Field(ge=1, le=1000)]
    seconds: Seconds


class HttpSmsConfig(Model):
    """A government SMS gateway reached over HTTP with a request template.

    ``body_template`` is rendered with ``str.format``-style fields ``{phone}``, ``{text}`` and
    ``{out_id}`` (our notice id, which the gateway must use to drop duplicates); values are
    JSON-escaped when ``content_type`` is JSON and form-escaped otherwise.
    """

    url: HttpUrl
    method: Literal["POST", "PUT"] = "POST"
    content_type: str = "application/json"
    body_template: str = '{{"phone": "{phone}", "content": "{text}", "out_id": "{out_id}"}}'
    headers: dict[str, str] = {}
    token_file: Path | None = None
    token_env: str | None = None
    #: Sent as ``Authorization: Bearer <token>`` when a token is configured.
    timeout: Annotated[float, Field(gt=0, le=60)] = 5.0

    def token(self) -> str | None:
        return _read_secret(self.token_file, self.token_env)


class CloudSmsConfig(Model):
    """Aliyun (Dysmsapi) or Tencent Cloud SMS through the official SDK (optional extras
    ``sscp-ops[sms-aliyun]`` / ``sscp-ops[sms-tencent]``). The text goes into one template
    variable; our notice id goes in as OutId (Aliyun) / SessionContext (Tencent)."""

    access_key_id_file: Path | None = None
    access_key_id_env: str | None = None
    access_key_secret_file: Path | None = None
    access_key_secret_env: str | None = None
    sign_name: Annotated[str, Field(min_length=1)]
    #: Aliyun TemplateCode / Tencent TemplateId: an approved template with one text variable.
    template: Annotated[str, Field(min_length=1)]
    #: Aliyun: the name of that variable in TemplateParam.
    template_param: str = "content"
    #: Tencent: SmsSdkAppId and region.
    sdk_app_id: str | None = None
    region: str = "ap-guangzhou"
    #: Override the provider's endpoint (host[:port]); ``protocol: http`` only for tests.
    endpoint: str | None = None
    protocol: Literal["https", "http"] = "https"
    timeout: Annotated[float, Field(gt=0, le=60)] = 10.0

    def credentials(self) -> tuple[str, str]:
        key_id = _read_secret(self.access_key_id_file, self.access_key_id_env)
        secret = _read_secret(self.access_key_secret_file, self.access_key_secret_env)
        if not key_id or not secret:
            raise ValueError("SMS access key id or secret is empty")
        return key_id, secret


class SmsConfig(Model):
    backend: Literal["log", "http", "aliyun", "tencent"] = "log"
    http: HttpSmsConfig | None = None
    aliyun: CloudSmsConfig | None = None
    tencent: CloudSmsConfig | None = None
    #: Characters per message (70 for one Chinese SMS segment; gateways join up to ~500).
    max_length: Annotated[int, Field(ge=40, le=1000)] = 300
    limits: list[RateLimit] = [RateLimit(count=1, seconds=30), RateLimit(count=5, seconds=3600)]
    #: Put the acknowledge link in the text (some providers forbid URLs in template variables).
    ack_links: bool = True

    @model_validator(mode="after")
    def _backend_settings(self):
        if self.backend != "log" and getattr(self, self.backend) is None:
            raise ValueError(f"sms.backend {self.backend} needs an sms.{self.backend} section")
        if self.backend == "tencent" and not self.tencent.sdk_app_id:
            raise ValueError("sms.tencent needs sdk_app_id")
        return self

    def links_allowed(self) -> bool:
        """Cloud providers forbid links in template variables: no acknowledge link there."""
        return self.ack_links and self.backend in ("log", "http")


#: Seconds a WeCom / DingTalk robot call may wait for the connection and again for the answer.
ROBOT_TIMEOUT = 5.0


class RobotConfig(Model):
    name: Name
    kind: Literal["wecom", "dingtalk"]
    url: HttpUrl | None = None
    url_file: Path | None = None
    severities: list[Severity] = ["critical", "warning"]

    @model_validator(mode="after")
    def _one_url(self):
        if (self.url is None) == (self.url_file is None):
            raise ValueError("give url or url_file (the webhook URL holds a key: prefer a file)")
        return self

    def webhook_url(self) -> str:
        return self.url or _read_secret(self.url_file, None) or ""


#: Alerts that remind or notify (due dates, compliance, certificates to renew): never faults.
REMINDERS = [
    "AccountReviewOverdue",
    "RestoreDrillOverdue",
    "OsPatchOverdue",
    "TlsCertificateExpiringSoon",
    "TlsCertificateRenewalDue",
    "HostRebootRequired",
    "HighRiskVulnerabilityDueSoon",
    "HighRiskVulnerabilityOverdue",
    "VulnerabilityFixRateLow",
    "FaultRecurrenceNearLimit",
]


class FaultRule(Model):
    """Which incidents are faults (故障): only they count toward the response time (the webhook's
    response metrics, the API's ``fault``, the report's response indicator) and escalate.
    An alert named in ``not_faults`` never is; one named in ``also_faults`` always is; any
    other is a fault when its severity is in ``severities``."""

    severities: list[Severity] = ["critical", "warning"]
    not_faults: list[str] = REMINDERS
    also_faults: list[str] = []

    def is_fault(self, alertname: str, severity: str) -> bool:
        if alertname in self.not_faults:
            return False
        return alertname in self.also_faults or severity in self.severities


class WebhookConfig(Model):
    listen_address: Annotated[str, Field(pattern=r"^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$")] = (
        "127.0.0.1:9811"
    )
    database: Annotated[str, Field(pattern=r"^(sqlite|mysql\+pymysql)://")] = (
        "sqlite:///var/tickets.db"
    )
    database_password_file: Path | None = None
    alertmanager_token_file: Path | None = None
    alertmanager_url: HttpUrl | None = None
    public_url: HttpUrl = "http://127.0.0.1:9811"
    #: gunicorn worker processes, and threads per process: 1 thread = ``sync`` workers (best on
    #: SQLite), more = ``gthread`` workers (for MySQL on another host).
    workers: Annotated[int, Field(ge=1, le=32)] = 2
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    #: Largest request body (bytes) the webhook takes; a larger one gets 413, which
    #: Alertmanager does not retry. `sscp-ops stack` derives the receivers' max_alerts from it.
    max_body_bytes: Annotated[int, Field(ge=256 * 1024, le=64 * 1024 * 1024)] = 1024 * 1024
    #: One incident per alert occurrence, or one per Alertmanager group.
    incident_per: Literal["alert", "group"] = "alert"
    reopen_window: Seconds = 3600
    response_sla: Seconds = 900
    resolution_sla: Seconds = 7200
    escalate_after: Seconds = 900
    heartbeat_timeout: Seconds = 300
    reconcile_interval: Seconds = 300
    ack_link_ttl: Seconds = 86400
    #: How long a UI login lasts (an absolute limit: a session is never extended); logout,
    #: the token's revocation and this end it, on the server.
    session_lifetime: Seconds = 12 * 3600
    #: The key that signs the UI's session cookies (created once, mode 0600). Default: beside
    #: the SQLite database (``tickets.db`` -> ``tickets.session.key``), or
    #: ``var/webhook-session.key`` with MySQL. Never in the database: whoever reads the
    #: database must not be able to forge a session.
    session_key_file: Path | None = None
    #: Reverse proxies in front of the webhook whose ``X-Forwarded-For`` / ``-Proto`` are
    #: trusted (1 behind the shipped Nginx): the client address that the login limits count.
    trusted_proxies: Annotated[int, Field(ge=0, le=3)] = 0
    #: How long a worker holds the notices it claimed before another may take them over (a
    #: worker that died). Right before a send the claim is renewed for at least the send's
    #: longest possible duration (connect + read timeout), so a slow provider never lets a
    #: second worker send the same notice.
    delivery_lease: Seconds = 60
    #: How long the notice worker may go without a successful pass of its periodic jobs
    #: before ``/healthz`` answers 503 and ``sscp_webhook_worker_up`` is 0.
    worker_timeout: Seconds = 60
    #: The occurrence of one fault (alertname + target) within ``problem_window`` that opens its
    #: problem record (问题管理): 2, early, before the report's limit (docs/sla.md).
    problem_at: Annotated[int, Field(ge=1, le=100)] = 2
    problem_window: Seconds = 183 * 86400
    faults: FaultRule = FaultRule()
    sms: SmsConfig = SmsConfig()
    robots: Annotated[list[RobotConfig], Field(max_length=20)] = []
    roster: RosterConfig = RosterConfig()

    @model_validator(mode="after")
    def _unique_robots(self):
        unique_names(self.robots, "robot")
        return self

    def session_key_path(self) -> Path:
        if self.session_key_file is not None:
            return self.session_key_file
        if self.database.startswith("sqlite:///") and self.database != "sqlite:///:memory:":
            db = Path(self.database.removeprefix("sqlite:///"))
            return db.with_name(f"{db.stem}.session.key")
        return Path("var/webhook-session.key")

    def database_url(self) -> str:
        """The SQLAlchemy URL with the password from ``database_password_file`` filled in."""
        if self.database_password_file is None:
            return self.database
        from sqlalchemy.engine import make_url

        password = _read_secret(self.database_password_file, None)
        return make_url(self.database).set(password=password).render_as_string(False)
