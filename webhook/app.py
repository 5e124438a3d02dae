"""The Flask application factory of the ticket webhook.

``create_app(config=None, services=None)``: ``config`` is the ``webhook:`` section (defaults when
``None``); ``services`` (store, planner) are built from it unless a test hands in its own. The
blueprints only reach the services through :func:`webhook.services.current`.
"""

from __future__ import annotations

import secrets

from flask import Flask, jsonify
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from sscp_ops.config.webhook import WebhookConfig
from webhook.services import Services
from webhook.store import StoreUnavailable


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key instead
    of on every request (Flask opens the session for API calls too)."""

    _cached: tuple = (None, None)

    def get_signing_serializer(self, app: Flask):
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        seen, serializer = self._cached
        if seen != key:
            serializer = super().get_signing_serializer(app)
            self._cached = (key, serializer)
        return serializer


def create_app(config: WebhookConfig | None = None, services: Services | None = None) -> Flask:
    config = config or WebhookConfig()
    app = Flask(__name__)
    # Over the limit: 413, final for Alertmanager (its max_alerts keeps notifications below).
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = _Sessions()
    # Behind the TLS proxy (public_url https://…) the session cookie never travels in clear.
    app.config["SESSION_COOKIE_SECURE"] = str(config.public_url).startswith("https:")
    app.json.ensure_ascii = False
    if services is None:
        services = Services.from_config(config)
    services.init_app(app)
    app.secret_key = services.store.setting_once("session_secret", lambda: secrets.token_hex(32))

    from webhook import alerts, metrics, tickets, ui

    app.register_blueprint(alerts.bp)
    app.register_blueprint(tickets.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(metrics.bp)

    @app.errorhandler(StoreUnavailable)
    def _store_down(exc):
        # The one case where a retry helps: Alertmanager retries 5xx.
        return jsonify(error="store unavailable, retry later"), 503

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.response is not None:
            return exc.response
        return jsonify(error=exc.description or exc.name), exc.code

    return app
