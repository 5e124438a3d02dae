"""The Flask application factory of the ticket webhook.

``create_app(config=None, services=None)``: ``config`` is the ``webhook:`` section (defaults when
``None``); ``services`` (store, planner) are built from it unless a test hands in its own. The
blueprints only reach the services through :func:`webhook.services.current`.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask, abort, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from sscp_ops.config.webhook import WebhookConfig
from sscp_ops.filemode import secret_once
from webhook.services import Services
from webhook.store import StoreUnavailable

#: Writes: what needs a CSRF token when it is authenticated by the session cookie.
WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))


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
    app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(seconds=config.session_lifetime)
    # Flask-WTF: one CSRF secret per session (set at login), tokens valid as long as it; the
    # check runs in _csrf below, for the requests that need it.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config["WTF_CSRF_FIELD_NAME"] = "csrf"
    app.config["WTF_CSRF_TIME_LIMIT"] = int(config.session_lifetime)
    app.json.ensure_ascii = False
    if config.trusted_proxies:
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    if services is None:
        services = Services.from_config(config)
    services.init_app(app)
    # A file of its own (0600), never the database: a database reader must not forge sessions.
    app.secret_key = secret_once(config.session_key_path())
    csrf = CSRFProtect(app)

    from webhook import alerts, limits, metrics, tickets, ui
    from webhook.auth import cookie_authenticated

    app.register_blueprint(alerts.bp)
    app.register_blueprint(tickets.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(metrics.bp)
    limits.init_app(app, services.store)

    @app.before_request
    def _csrf():
        """Writes authenticated by the session cookie need the session's CSRF token, and the
        JSON API's need ``Content-Type: application/json`` (a form or ``text/plain`` body is
        what a page of another site can send). Calls with an ``Authorization`` header (API
        tokens, Alertmanager) carry their credential themselves and need neither; the
        acknowledge link's token is itself the secret."""
        if request.method not in WRITES or not cookie_authenticated():
            return
        if request.blueprint == "alerts" or request.endpoint == "ui.ack_link":
            return
        csrf.protect()
        if request.blueprint == "tickets" and request.method != "DELETE" and not request.is_json:
            abort(415, "the API takes Content-Type: application/json")

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        if request.blueprint == "ui":
            return jsonify(error="表单已过期，请刷新页面后重试", reason=exc.description), 400
        return jsonify(error=f"CSRF check failed: {exc.description}"), 400

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
