"""The services the blueprints use, bound to the app with ``init_app`` (tests hand in their own)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import Flask, current_app

from sscp_ops.config.webhook import WebhookConfig
from sscp_ops.secretfile import SecretFile
from webhook.notices import Planner
from webhook.store import Store


@dataclass
class Services:
    config: WebhookConfig
    store: Store
    planner: Planner
    alertmanager_token: SecretFile = field(init=False)
    #: When these services were made (the grace before /healthz expects a worker's pass).
    started_at: dt.datetime = field(init=False)

    def __post_init__(self) -> None:
        self.alertmanager_token = SecretFile(self.config.alertmanager_token_file)
        self.started_at = self.store.clock()

    @classmethod
    def from_config(cls, config: WebhookConfig, migrate: bool = True) -> Services:
        store = Store(config.database_url())
        store.ack_link_ttl = config.ack_link_ttl
        if migrate:
            store.migrate()
        return cls(config, store, Planner(config, store.clock))

    def init_app(self, app: Flask) -> None:
        app.extensions["sscp_webhook"] = self


def current() -> Services:
    return current_app.extensions["sscp_webhook"]
