"""HTTP fetching shared by the collectors of HTTP targets (Nginx ``stub_status``, Tomcat manager).

One :class:`requests.Session` per target keeps its connection alive across scrapes; requests
re-opens it by itself when the server closed it. Every failure to get a 200 answer becomes
:class:`~exporters.core.TargetUnavailable` with a message that holds neither the password nor
the response body.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from exporters.core import TargetUnavailable
from sscp_ops.config.base import TlsConfig


def make_session(tls: TlsConfig | None, auth: tuple[str, str] | None = None) -> requests.Session:
    """A session with the target's TLS settings and basic auth; environment proxies ignored."""
    session = requests.Session()
    session.trust_env = False  # never send monitoring traffic through an HTTP(S)_PROXY
    session.headers["User-Agent"] = "sscp-ops-exporter"
    if auth is not None:
        session.auth = auth
    if tls is not None:
        if tls.insecure_skip_verify:
            session.verify = False
        elif tls.ca_file is not None:
            session.verify = str(tls.ca_file)
        if tls.cert_file is not None:
            session.cert = (
                (str(tls.cert_file), str(tls.key_file)) if tls.key_file else str(tls.cert_file)
            )
    return session


def safe_url(url: str) -> str:
    """``url`` without user info and query, for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def fetch_text(session: requests.Session, url: str, timeout: float) -> str:
    """GET ``url`` and return its body; anything but a 200 raises :class:`TargetUnavailable`."""
    return fetch(session, url, timeout).text


def fetch(session: requests.Session, url: str, timeout: float) -> requests.Response:
    """GET ``url``: the response (body decoded as UTF-8 when the server names no charset);
    anything but a 200 raises :class:`TargetUnavailable`."""
    try:
        response = session.get(url, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise TargetUnavailable(f"{safe_url(url)}: no answer within {timeout:g}s") from None
    except requests.RequestException as exc:
        raise TargetUnavailable(f"{safe_url(url)}: {_reason(exc)}") from None
    if response.status_code != 200:
        hint = " (check user and password)" if response.status_code in (401, 403) else ""
        raise TargetUnavailable(f"{safe_url(url)}: HTTP {response.status_code}{hint}")
    if response.encoding is None:
        response.encoding = "utf-8"
    return response


def _reason(exc: BaseException) -> str:
    """The innermost OS error (``Connection refused``), else the exception type's name."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__
