"""Rate limits on guessing (Flask-Limiter), counted in the ticket store so that every gunicorn
worker (and every host on one MySQL store) sees the same counts.

Only failures count (``deduct_when``); once a limit is reached every request it covers gets
429 until its window ends, the right credential included (else the answer would tell a guess
that is right from one that is wrong):

- ``POST /login``: 10 failed logins a minute and 50 an hour per client address, and 100 a
  minute over all addresses. A login names no account (the token is the whole credential),
  so every guess is a guess at every account: the per-account limit is one bucket for all.
- the API (``/api/v1/`` except Alertmanager's endpoints): 30 requests a minute per client
  address answered 401 (no or a wrong token);
- acknowledge links ``/a/<token>``: 30 unknown links a minute per client address.

Flask-Limiter's memory storage would count per gunicorn worker (2 workers: twice the limit,
and the counts vary with which worker answers); Redis or Memcached would be one more service
to run. The store is already shared: :class:`StoreStorage` keeps the counters in its
``rate_limits`` table (one row per key and window, a primary-key read per limited request).
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from limits.storage import Storage

from webhook.store import Store, StoreUnavailable

LOGIN_PER_ADDRESS = "10 per minute;50 per hour"
LOGIN_ALL_ADDRESSES = "100 per minute"
API_FAILURES_PER_ADDRESS = "30 per minute"
ACK_LINK_MISSES_PER_ADDRESS = "30 per minute"


def client_address() -> str:
    """The client's address (behind ``webhook.trusted_proxies`` proxies: the one they saw)."""
    return request.remote_addr or "unknown"


class StoreStorage(Storage):
    """A ``limits`` storage on the ticket store (fixed windows)."""

    STORAGE_SCHEME = ["sscp-store"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions)
        self.store: Store = options["store"]

    @property
    def base_exceptions(self):
        return StoreUnavailable

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.store.limit_incr(key, expiry, amount)

    def get(self, key: str) -> int:
        return self.store.limit_get(key)[0]

    def get_expiry(self, key: str) -> float:
        _, ends = self.store.limit_get(key)
        return (ends or self.store.clock()).timestamp()

    def check(self) -> bool:
        try:
            self.store.ping()
        except StoreUnavailable:
            return False
        return True

    def reset(self) -> int | None:
        return self.store.limit_clear()

    def clear(self, key: str) -> None:
        self.store.limit_clear(key)


def init_app(app: Flask, store: Store) -> Limiter:
    """A limiter for ``app`` (one per app: Flask-Limiter keeps its storage on the instance)
    with the limits above on the views already registered."""
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri="sscp-store://",
        storage_options={"store": store},
        strategy="fixed-window",
        headers_enabled=True,
    )

    def status(code: int):
        return lambda response: response.status_code == code

    def limit(endpoint: str, *limits) -> None:
        view = app.view_functions[endpoint]
        for lim in limits:
            view = lim(view)
        app.view_functions[endpoint] = view

    login = dict(
        methods=["POST"], deduct_when=status(401), error_message="尝试过于频繁，请稍后再试"
    )
    limit(
        "ui.login",
        limiter.limit(LOGIN_PER_ADDRESS, scope="login-address", **login),
        limiter.limit(LOGIN_ALL_ADDRESSES, key_func=lambda: "all", scope="login-all", **login),
    )
    limit(
        "ui.ack_link",
        limiter.limit(ACK_LINK_MISSES_PER_ADDRESS, deduct_when=status(404), scope="ack-link"),
    )
    limiter.limit(API_FAILURES_PER_ADDRESS, deduct_when=status(401), scope="api")(
        app.blueprints["tickets"]
    )
    return limiter
