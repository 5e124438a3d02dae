"""The Alertmanager config the kit renders: how many alerts fit one webhook notification, and
the e-mail way out for the alert pipeline's own alerts.

**max_alerts.** The webhook refuses a body over ``webhook.max_body_bytes`` (413), which
Alertmanager treats as final: the whole group is lost. So the webhook receivers carry
``max_alerts`` (Alertmanager lists that many alerts and sends the rest as a count,
``truncatedAlerts``), chosen so that the largest notification fits:

    body <= envelope + max_alerts * alert

where ``alert`` is the worst-case JSON size of one alert as Alertmanager 0.25 writes it and
``envelope`` the rest of the body. Both follow from what Prometheus lets into an alert, which
the shipped ``deploy/prometheus/prometheus.yml`` bounds with scrape limits (a scrape over them
fails as a whole, so ``TargetDown`` fires; nothing is cut silently):

- labels: at most ``label_limit`` labels per scraped sample (``__name__`` included, which an
  alert drops), plus ``alertname``, the rule's own labels and the external labels; a name is at
  most ``label_name_length_limit`` bytes, a value at most ``label_value_length_limit`` bytes;
- annotations: each rule's templates (rules/*.rules.yml), with every action that prints a
  label or the value taken at its largest;
- Go's JSON encoder writes ``<``, ``>``, ``&`` and control characters as ``\\u003c`` (6 bytes for
  1), so every byte of a label value may cost 6 bytes in the body;
- generatorURL: Prometheus' external URL (at most ``EXTERNAL_URL_BYTES``) + ``/graph?g0.expr=``
  + the expression query-escaped (3 bytes per byte at most, the printed expression taken as at
  most twice the rule's text) + ``&g0.tab=1``.

docs/webhook.md shows the arithmetic with the shipped figures.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from sscp_ops.config.alertmanager import EmailConfig

#: Longest external URL of Prometheus (--web.external-url) and Alertmanager we allow for.
EXTERNAL_URL_BYTES = 256
#: Longest text a template action prints from the value ($value, humanize, printf "%.2f" of
#: 1.8e308 is 312 digits).
VALUE_BYTES = 330
#: Longest time Alertmanager writes (RFC 3339 with nanoseconds and an offset).
TIME_BYTES = 35
#: Go's JSON writes these as \u00XX / \u2028 (6 bytes), these as \" \\ \n \r \t (2 bytes).
_SIX = set("<>&\u2028\u2029") | {chr(c) for c in range(0x20)} - set("\n\r\t")
_TWO = set('"\\\n\r\t')
#: Template actions that print nothing.
SILENT_ACTION = re.compile(r"^-?\s*(if|else|end|with|define|template|block)\b|^-?\s*\$\w+\s*:=")
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)


def go_json_bytes(text: str) -> int:
    """Bytes of ``text`` as a JSON string written by Go's encoding/json (quotes included)."""
    out = 2
    for ch in text:
        out += 6 if ch in _SIX else 2 if ch in _TWO else len(ch.encode("utf-8"))
    return out


@dataclass(frozen=True)
class AlertLimits:
    """What Prometheus lets into one alert (the shipped scrape limits and external labels)."""

    label_limit: int
    label_name_length_limit: int
    label_value_length_limit: int
    external_labels: int

    @property
    def label_bytes(self) -> int:
        """One ``"name":"value",`` pair at its largest."""
        return self.label_name_length_limit + 6 * self.label_value_length_limit + 6

    @classmethod
    def from_prometheus(cls, config: dict) -> AlertLimits:
        """The loosest limits over the scrape jobs of a Prometheus config; every job must set
        all three (Prometheus' default is no limit)."""
        keys = ("label_limit", "label_name_length_limit", "label_value_length_limit")
        found = {key: 0 for key in keys}
        for job in config.get("scrape_configs", []):
            for key in keys:
                if not job.get(key):
                    raise ValueError(f"scrape job {job.get('job_name')!r} sets no {key}")
                found[key] = max(found[key], int(job[key]))
        external = len((config.get("global") or {}).get("external_labels") or {})
        return cls(**found, external_labels=external)


def _annotation_bytes(rule: dict, limits: AlertLimits) -> int:
    printed = max(6 * limits.label_value_length_limit, VALUE_BYTES)
    total = 0
    for key, template in (rule.get("annotations") or {}).items():
        actions = _ACTION.findall(template)
        static = _ACTION.sub("", template)
        if any(re.match(r"^-?\s*range\b", a.strip()) for a in actions):
            raise ValueError(f"{rule['alert']}: a range in an annotation has no size bound")
        loud = sum(1 for a in actions if not SILENT_ACTION.match(a.strip()))
        total += go_json_bytes(key) + 1 + go_json_bytes(static) + loud * printed + 1
    return total


def _url_bytes(rule: dict) -> int:
    expr = " ".join(str(rule["expr"]).split())
    prefix = "/graph?g0.expr="
    return 2 + EXTERNAL_URL_BYTES + len(prefix) + 3 * 2 * len(expr) + len("\\u0026g0.tab=1")


@dataclass(frozen=True)
class AlertSize:
    """Worst-case bytes of the parts of one webhook notification (Alertmanager 0.25)."""

    labels: int  # the "labels" object of one alert
    annotations: int  # the largest "annotations" object of any alert rule
    url: int  # the largest generatorURL
    fixed: int  # status, times, fingerprint, keys and punctuation
    envelope: int  # everything but the alerts (common labels and annotations, groupKey...)

    @property
    def alert(self) -> int:
        return self.labels + self.annotations + self.url + self.fixed

    def max_alerts(self, body_limit: int) -> int:
        """The most alerts a notification may list and still fit ``body_limit`` bytes."""
        room = body_limit - self.envelope
        if room < self.alert:
            raise ValueError(
                f"a body limit of {body_limit} bytes cannot hold one alert of {self.alert} bytes"
            )
        return math.floor(room / self.alert)


def alert_size(rules: Iterable[dict], limits: AlertLimits, group_labels: int = 4) -> AlertSize:
    """The worst case over the alerting ``rules`` (rule dicts of rules/*.rules.yml)."""
    alerting = [r for r in rules if "alert" in r]
    own = max(len(r.get("labels") or {}) for r in alerting)
    # A sample's labels minus __name__, plus alertname, the rule's labels, the external ones.
    count = limits.label_limit - 1 + 1 + own + limits.external_labels
    labels = 2 + count * limits.label_bytes
    annotations = 2 + max(_annotation_bytes(r, limits) for r in alerting)
    url = max(_url_bytes(r) for r in alerting)
    fixed = len(
        '{"status":"resolved","labels":,"annotations":,"startsAt":,"endsAt":,'
        '"generatorURL":,"fingerprint":"0123456789abcdef"},'
    ) + 2 * (TIME_BYTES + 2)
    group = 2 + group_labels * limits.label_bytes
    envelope = (
        len(
            '{"receiver":,"status":"resolved","alerts":[],"groupLabels":,"commonLabels":,'
            '"commonAnnotations":,"externalURL":,"version":"4","groupKey":,'
            '"truncatedAlerts":18446744073709551615}'
        )
        + 2 * 64  # the receiver's name
        + 2
        + EXTERNAL_URL_BYTES
        + group  # groupLabels
        + labels  # commonLabels: at most one alert's labels
        + annotations  # commonAnnotations
        + 2 * 1024
        + 2 * group  # groupKey: the route's matchers and the group's labels (%q)
    )
    return AlertSize(labels, annotations, url, fixed, envelope)


#: The shipped Prometheus configs (one host, a fleet) whose limits bound an alert.
PROMETHEUS_CONFIGS = ("prometheus.yml", "prometheus-fleet.yml")


def shipped_alert_size(root: Path) -> AlertSize:
    """The worst case for the checkout's rules and the loosest of its Prometheus configs."""
    rules = []
    for path in sorted((root / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += group["rules"]
    sizes = [
        alert_size(rules, AlertLimits.from_prometheus(yaml.safe_load(path.read_text())))
        for path in (root / "deploy" / "prometheus" / name for name in PROMETHEUS_CONFIGS)
    ]
    return max(sizes, key=lambda size: size.alert + size.envelope)


def with_max_alerts(config: dict, max_alerts: int) -> dict:
    """``config`` with ``max_alerts`` on every webhook that posts alerts (not the heartbeat)."""
    out = copy.deepcopy(config)
    for receiver in out.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            if hook["url"].endswith("/api/v1/alerts"):
                hook["max_alerts"] = max_alerts
    return out


def with_email(config: dict, email: EmailConfig | None, password_file: Path | None) -> dict:
    """``config`` with the ``alertmanager.email`` settings in every receiver's
    ``email_configs`` (the shipped file's subject and text templates kept), or, with no
    e-mail configured, without ``email_configs``: Alertmanager would fail on every send.

    ``password_file`` is where Alertmanager reads the SMTP password (``auth_password_file``):
    the configured file, or a file the caller wrote from ``auth_password_env``."""
    out = copy.deepcopy(config)
    for receiver in out.get("receivers", []):
        if "email_configs" not in receiver:
            continue
        if email is None:
            del receiver["email_configs"]
            continue
        mails = []
        for shipped in receiver["email_configs"]:
            mail = {k: v for k, v in shipped.items() if not k.startswith("auth_")}
            mail.update(
                to=", ".join(email.to),
                **{"from": email.sender},
                smarthost=email.smarthost,
                hello=email.hello,
                require_tls=email.require_tls,
                send_resolved=email.send_resolved,
            )
            if email.auth_username:
                mail["auth_username"] = email.auth_username
            if password_file is not None:
                mail["auth_password_file"] = str(password_file)
            mails.append(mail)
        receiver["email_configs"] = mails
    return out
