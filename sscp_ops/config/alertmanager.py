"""The ``alertmanager:`` section: what the kit writes into Alertmanager's config.

Shape::

    alertmanager:
      email:                                  # the alert pipeline's own alerts, sent by
        to: [oncall@example.gov.cn]           # Alertmanager itself (not via the webhook)
        sender: alertmanager@example.gov.cn
        smarthost: smtp.example.gov.cn:587
        auth_username: alertmanager@example.gov.cn
        auth_password_file: /etc/sscp-ops/smtp.pass
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from sscp_ops.config.base import Model

Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]


class EmailConfig(Model):
    """Alertmanager's own e-mail (``email_configs``) for the alert pipeline's alerts
    (AlertPipelineDown, NotificationDeliveryFailing, AlertmanagerFailedToSendAlerts, TargetDown
    of the webhook or Alertmanager): the page that does not depend on the webhook."""

    to: Annotated[list[Email], Field(min_length=1, max_length=20)]
    #: The From address (Alertmanager's ``from``).
    sender: Email
    #: host:port of the SMTP server (a local MTA, or the mail server on 587 / 465).
    smarthost: Annotated[str, Field(pattern=r"^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$")]
    #: The name sent in EHLO.
    hello: Annotated[str, Field(min_length=1, max_length=253)] = "localhost"
    auth_username: str | None = None
    auth_password_file: Path | None = None
    auth_password_env: str | None = None
    #: STARTTLS required (port 465, implicit TLS, works either way).
    require_tls: bool = True
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_password(self):
        if self.auth_password_file is not None and self.auth_password_env is not None:
            raise ValueError("give auth_password_file or auth_password_env, not both")
        has_password = self.auth_password_file is not None or self.auth_password_env is not None
        if has_password and not self.auth_username:
            raise ValueError("a password needs auth_username")
        return self


class AlertmanagerConfig(Model):
    email: EmailConfig | None = None
