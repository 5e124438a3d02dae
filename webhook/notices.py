"""Who gets which notice (roster, routing by severity) and how it is sent (SMS, group robots).

:class:`Planner` runs inside the ticket transaction and only decides the notices (they go to the
outbox in the same transaction); the senders run in the worker. Every text a person reads is
Chinese and passes through :func:`sscp_ops.masking.mask_text`; a phone number is shown masked
everywhere except in the request to the SMS provider itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

from sscp_ops.config.webhook import (
    ROBOT_TIMEOUT,
    Contact,
    RobotConfig,
    RosterConfig,
    SmsConfig,
    WebhookConfig,
)
from sscp_ops.masking import mask_phone, mask_text, reveal_controls
from webhook.store import ACK_PLACEHOLDER, ACK_TOKEN_CHARS, Notice, utcnow

log = logging.getLogger("webhook.notices")

#: The acknowledge link in an SMS is a credential: never logged or shown back.
ACK_LINK = re.compile(r"/a/[A-Za-z0-9_-]+")
SEVERITY_CN = {"critical": "严重", "warning": "警告", "info": "提示"}
REASON_CN = {
    "new": "新告警",
    "reopened": "告警复发",
    "resolved": "已恢复",
    "escalation": "超时未响应升级",
    "pipeline_down": "监控链路中断",
}


class TemporaryError(Exception):
    """Delivery may succeed later (5xx, timeout, connection refused): retry with backoff."""


class PermanentError(Exception):
    """The provider refused the notice for good (4xx): retrying cannot help."""


def on_call(roster: RosterConfig, now: dt.datetime) -> tuple[Contact | None, Contact | None]:
    """(primary, backup) on duty at ``now`` (rotation by day or week from ``roster.start``)."""
    if not roster.shifts:
        return None, None
    tz = dt.timezone(dt.timedelta(hours=roster.utc_offset_hours))
    hh, mm = (int(x) for x in roster.handover.split(":"))
    first = dt.datetime.combine(roster.start, dt.time(hh, mm), tzinfo=tz)
    period = dt.timedelta(days=1 if roster.rotation == "day" else 7)
    index = int((now - first) // period) % len(roster.shifts)
    shift = roster.shifts[index]
    return shift.primary, shift.backup


def _shown(ticket: dict, field: str) -> str:
    """A ticket's field as a notice shows it: control and bidi characters written out."""
    return reveal_controls(str(ticket.get(field) or ""))


def render_ack_link(text: str, token: str) -> str:
    """The stored text with its acknowledge link put in (the last placeholder: the link is
    the tail of the text, and an alert's own text may hold the placeholder's characters)."""
    head, sep, tail = text.rpartition(ACK_PLACEHOLDER)
    return f"{head}/a/{token}{tail}" if sep else text


def fit(text: str, limit: int, keep_tail: str = "") -> str:
    """Cut ``text`` so that ``text + keep_tail`` is at most ``limit`` characters."""
    room = limit - len(keep_tail)
    if len(text) > room:
        text = text[: max(0, room - 1)] + "…"
    return text + keep_tail


class Planner:
    """Decides the notices for a ticket change: callable as ``planner(ticket, reason)``."""

    def __init__(self, config: WebhookConfig, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.config = config
        self.clock = clock
        self._duty: tuple = (None, (None, None))

    def __call__(self, ticket: dict, reason: str) -> Sequence[Notice]:
        if reason not in REASON_CN or ticket.get("kind") == "vulnerability":
            return ()
        severity = ticket.get("severity", "warning")
        notices: list[Notice] = []
        for contact in self._sms_contacts(severity, reason):
            notices.append(self._sms(ticket, reason, contact))
        for robot in self.config.robots:
            if severity in robot.severities or reason == "pipeline_down":
                notices.append(
                    Notice(robot.kind, robot.name, self.robot_text(ticket, reason), reason)
                )
        return notices

    def _sms_contacts(self, severity: str, reason: str) -> list[Contact]:
        roster = self.config.roster
        if reason == "resolved":
            return []
        if reason == "escalation":
            return list(roster.escalation)
        primary, backup = self._on_duty()
        roles = ["primary"] if reason == "pipeline_down" else roster.routes.get(severity, [])
        people = {"primary": primary, "backup": backup}
        return [people[r] for r in roles if people.get(r) is not None]

    def _on_duty(self) -> tuple[Contact | None, Contact | None]:
        """:func:`on_call` now, worked out once per minute (handovers are on the minute; a
        notification asks once per alert)."""
        minute = self.clock().replace(second=0, microsecond=0)
        seen, duty = self._duty
        if seen != minute:
            duty = on_call(self.config.roster, minute)
            self._duty = (minute, duty)
        return duty

    def _sms(self, ticket: dict, reason: str, contact: Contact) -> Notice:
        sms = self.config.sms
        head = f"【运维{REASON_CN[reason]}】"
        if ticket.get("id"):
            head += f"{SEVERITY_CN.get(ticket.get('severity'), '')} 工单{ticket['id']} "
        body = mask_text(f"{_shown(ticket, 'summary')} 目标:{_shown(ticket, 'target')}")
        if not (sms.links_allowed() and ticket.get("id") and reason != "resolved"):
            return Notice("sms", contact.phone, fit(head + body, sms.max_length), reason)
        # The link is minted by the worker when it sends the SMS (only its hash is stored):
        # the stored text holds the placeholder, and room for the token it becomes.
        tail = f" 确认:{self.config.public_url.rstrip('/')}{ACK_PLACEHOLDER}"
        room = sms.max_length - (ACK_TOKEN_CHARS - len(ACK_PLACEHOLDER) + len("/a/"))
        return Notice("sms", contact.phone, fit(head + body, room, tail), reason, contact.name)

    def robot_text(self, ticket: dict, reason: str) -> str:
        lines = [f"【{REASON_CN[reason]}】{SEVERITY_CN.get(ticket.get('severity'), '')}"]
        if ticket.get("id"):
            lines.append(
                f"工单：#{ticket['id']}  {self.config.public_url.rstrip('/')}"
                f"/tickets/{ticket['id']}"
            )
        lines.append(f"告警：{_shown(ticket, 'alertname')}  目标：{_shown(ticket, 'target')}")
        lines.append(f"摘要：{_shown(ticket, 'summary')}")
        if ticket.get("description"):
            lines.append(f"详情：{_shown(ticket, 'description')}")
        return mask_text("\n".join(lines))[:2000]

    def pipeline_down(self, last: dt.datetime) -> Sequence[Notice]:
        minutes = int((self.clock() - last).total_seconds() // 60)
        ticket = {
            "severity": "critical",
            "alertname": "AlertPipelineDown",
            "target": "alertmanager",
            "summary": f"已 {minutes} 分钟未收到 Watchdog 心跳，告警链路可能中断",
        }
        return self(ticket, "pipeline_down")


def digest_text(bodies: Sequence[str], limit: int) -> str:
    """Several SMS for one number merged into one (the rate limit holds the rest back)."""
    head = f"【运维告警汇总】{len(bodies)}条："
    parts = []
    for i, body in enumerate(bodies, 1):
        parts.append(f"{i}.{body.split('】', 1)[-1]}")
    return fit(head + "；".join(parts), limit)


@dataclass(frozen=True)
class Delivery:
    out_id: str  # our notice id, given to the provider to drop duplicates
    channel: str
    recipient: str
    text: str


class LogSms:
    """The default SMS backend: writes the SMS to the log instead of sending it (number masked,
    acknowledge link hidden: it is a credential)."""

    def send(self, d: Delivery) -> None:
        text = ACK_LINK.sub("/a/…", mask_text(d.text))
        log.info(
            "sms", extra={"kv": {"out_id": d.out_id, "to": mask_phone(d.recipient), "text": text}}
        )


class HttpSms:
    """A government SMS gateway over HTTP: the request body comes from ``body_template``."""

    def __init__(self, config: SmsConfig, session: requests.Session | None = None) -> None:
        assert config.http is not None
        self.http = config.http
        self.session = session or requests.Session()

    def render(self, d: Delivery) -> str:
        json_body = "json" in self.http.content_type

        def esc(value: str) -> str:
            return (
                json.dumps(value, ensure_ascii=False)[1:-1]
                if json_body
                else (urllib.parse.quote_plus(value))
            )

        return self.http.body_template.format(
            phone=esc(d.recipient), text=esc(d.text), out_id=esc(d.out_id)
        )

    def send(self, d: Delivery) -> None:
        headers = {"Content-Type": f"{self.http.content_type}; charset=utf-8", **self.http.headers}
        token = self.http.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = self.session.request(
                self.http.method,
                self.http.url,
                data=self.render(d).encode("utf-8"),
                headers=headers,
                timeout=self.http.timeout,
            )
        except requests.RequestException as exc:
            raise TemporaryError(type(exc).__name__) from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TemporaryError(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise PermanentError(f"HTTP {resp.status_code}")


class Robot:
    """A WeCom or DingTalk group robot (both take ``{"msgtype": "text", ...}``)."""

    def __init__(self, config: RobotConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()

    def send(self, d: Delivery) -> None:
        body = {"msgtype": "text", "text": {"content": d.text}}
        try:
            resp = self.session.post(self.config.webhook_url(), json=body, timeout=ROBOT_TIMEOUT)
        except requests.RequestException as exc:
            raise TemporaryError(type(exc).__name__) from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TemporaryError(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise PermanentError(f"HTTP {resp.status_code}")
        try:
            code = resp.json().get("errcode", 0)
        except ValueError:
            raise TemporaryError("robot answered non-JSON") from None
        if code != 0:
            raise TemporaryError(f"robot errcode {code}")


class AliyunSms:
    """Aliyun Dysmsapi SendSms through the official SDK; our notice id is the OutId."""

    #: Answers worth retrying (provider-side flow control and internal errors).
    RETRY = ("isv.BUSINESS_LIMIT_CONTROL", "isp.RAM_PERMISSION_DENY", "isp.SYSTEM_ERROR")

    def __init__(self, config: SmsConfig) -> None:
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi import models as open_api

        assert config.aliyun is not None
        self.cfg = config.aliyun
        key_id, secret = self.cfg.credentials()
        self.client = Client(
            open_api.Config(
                access_key_id=key_id,
                access_key_secret=secret,
                endpoint=self.cfg.endpoint or "dysmsapi.aliyuncs.com",
                protocol=self.cfg.protocol,
                read_timeout=int(self.cfg.timeout * 1000),
                connect_timeout=int(self.cfg.timeout * 1000),
            )
        )

    def send(self, d: Delivery) -> None:
        from alibabacloud_dysmsapi20170525 import models

        request = models.SendSmsRequest(
            phone_numbers=d.recipient,
            sign_name=self.cfg.sign_name,
            template_code=self.cfg.template,
            template_param=json.dumps({self.cfg.template_param: d.text}, ensure_ascii=False),
            out_id=d.out_id,
        )
        try:
            body = self.client.send_sms(request).body
        except Exception as exc:  # noqa: BLE001 - the SDK raises Tea/transport errors of all kinds
            raise TemporaryError(f"aliyun: {type(exc).__name__}") from None
        if body.code == "OK":
            return
        if body.code in self.RETRY or str(body.code).startswith("isp."):
            raise TemporaryError(f"aliyun {body.code}")
        raise PermanentError(f"aliyun {body.code}")


class TencentSms:
    """Tencent Cloud SMS SendSms (2021-01-11) through the official SDK; our notice id is the
    SessionContext."""

    def __init__(self, config: SmsConfig) -> None:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        assert config.tencent is not None
        self.cfg = config.tencent
        key_id, secret = self.cfg.credentials()
        http = HttpProfile(
            endpoint=self.cfg.endpoint or "sms.tencentcloudapi.com",
            protocol=self.cfg.protocol,
            reqTimeout=int(self.cfg.timeout),
        )
        self.client = sms_client.SmsClient(
            credential.Credential(key_id, secret), self.cfg.region, ClientProfile(httpProfile=http)
        )

    def send(self, d: Delivery) -> None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.sms.v20210111 import models

        request = models.SendSmsRequest()
        phone = d.recipient if d.recipient.startswith("+") else f"+86{d.recipient}"
        request.PhoneNumberSet = [phone]
        request.SmsSdkAppId = self.cfg.sdk_app_id
        request.SignName = self.cfg.sign_name
        request.TemplateId = self.cfg.template
        request.TemplateParamSet = [d.text]
        request.SessionContext = d.out_id
        try:
            status = self.client.SendSms(request).SendStatusSet[0]
        except TencentCloudSDKException as exc:
            raise TemporaryError(f"tencent {exc.get_code()}") from None
        except Exception as exc:  # noqa: BLE001 - transport errors
            raise TemporaryError(f"tencent: {type(exc).__name__}") from None
        if status.Code == "Ok":
            return
        if status.Code.startswith(("LimitExceeded", "InternalError")):
            raise TemporaryError(f"tencent {status.Code}")
        raise PermanentError(f"tencent {status.Code}")


SMS_BACKENDS = {
    "log": lambda c: LogSms(),
    "http": HttpSms,
    "aliyun": AliyunSms,
    "tencent": TencentSms,
}


def build_senders(config: WebhookConfig) -> dict[tuple[str, str], object]:
    """(channel, recipient-or-"*") -> sender."""
    senders: dict[tuple[str, str], object] = {
        ("sms", "*"): SMS_BACKENDS[config.sms.backend](config.sms)
    }
    for robot in config.robots:
        senders[(robot.kind, robot.name)] = Robot(robot)
    return senders
