"""Authentication: Alertmanager's shared token, and API tokens with roles (least privilege)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from functools import wraps

from flask import abort, g, request, session

from webhook.services import current
from webhook.store import ROLES, TokenInfo

log = logging.getLogger("webhook.auth")
RANK = {role: i for i, role in enumerate(ROLES)}


def presented_secret() -> str | None:
    """The token of ``Authorization: Bearer T``, or the password of basic auth."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def alertmanager_ok() -> bool:
    try:
        expected = current().alertmanager_token.get()
    except OSError as exc:
        # A config problem, not the sender's: 503 so Alertmanager retries instead of dropping.
        log.error("alertmanager token file unreadable", extra={"kv": {"err": exc.strerror}})
        abort(503, "alertmanager token file unreadable")
    got = presented_secret()
    if not expected or got is None:
        return False
    return hmac.compare_digest(got.encode(), expected.encode())


def require_role(role: str):
    """API endpoints: a bearer API token (or the UI session) whose role is at least ``role``."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            info = current_token()
            if info is None:
                abort(401, "missing or invalid API token")
            if RANK[info.role] < RANK[role]:
                abort(403, f"role {info.role} may not do this (needs {role})")
            g.token = info
            return view(*args, **kwargs)

        return wrapped

    return decorator


def cookie_authenticated() -> bool:
    """True unless the request brings its own credential (``Authorization``): then the
    session cookie is not looked at, so it needs no CSRF token either."""
    return "Authorization" not in request.headers


def current_token() -> TokenInfo | None:
    if not cookie_authenticated():
        secret = presented_secret()
        return current().store.verify_token(secret) if secret else None
    return session_token()


def session_token() -> TokenInfo | None:
    """The token of the request's UI session, looked up in the store on every request (the
    cookie holds only a session id): a session ended by logout, expired, or whose token was
    revoked is logged out, and the role is the token's, never what a cookie says."""
    if "session_token" in g:
        return g.session_token
    sid = session.get("sid")
    info = current().store.session_token(sid) if isinstance(sid, str) else None
    if info is None and "sid" in session:
        session.clear()
    g.session_token = info
    return info
