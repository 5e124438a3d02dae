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


def current_token() -> TokenInfo | None:
    secret = presented_secret()
    if secret:
        return current().store.verify_token(secret)
    if "token_id" in session:
        return TokenInfo(session["token_id"], session["name"], session["role"])
    return None
