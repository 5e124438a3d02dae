"""HTTP front of the exporter: ``/metrics``, a landing page at ``/`` and ``/healthz``.

A small threaded WSGI server from the standard library; every request encodes the metric
families of its own scrape (:mod:`exporters.exposition`), so nothing is shared between scrapes
but the collectors themselves.
"""

from __future__ import annotations

import gzip
import html
import logging
import socket
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import ProcessCollector

from exporters.core import ScrapeRunner
from exporters.exposition import encode

log = logging.getLogger("exporter")

_LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>sscp-ops exporter</title></head>
<body><h1>sscp-ops exporter</h1>
<p>Version {version}. <a href="/metrics">Metrics</a> · <a href="/healthz">Health</a></p>
<h2>Enabled collectors</h2><ul>{items}</ul></body></html>
"""


def _scrape_timeout(environ: dict) -> float | None:
    raw = environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def make_app(runner: ScrapeRunner, version: str, process_metrics: bool = True) -> Callable:
    """The WSGI application serving one :class:`ScrapeRunner`."""

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            metrics = runner.scrape(_scrape_timeout(environ))
            if process_metrics:
                metrics += ProcessCollector(registry=None).collect()
            body, content_type = encode(metrics, environ.get("HTTP_ACCEPT", ""))
            headers = [("Content-Type", content_type)]
            if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
                body = gzip.compress(body, compresslevel=1)
                headers.append(("Content-Encoding", "gzip"))
            start_response("200 OK", headers)
            return [body]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"OK\n"]
        if path == "/":
            seen: list[str] = []
            for c in runner.collectors:
                label = c.name if c.target is None else f"{c.name} ({c.target})"
                seen.append(f"<li>{html.escape(label)}</li>")
            page = _LANDING.format(version=html.escape(version), items="".join(seen))
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [page.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not Found\n"]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("request", extra={"kv": {"line": format % args}})


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


def bind(address: str, app: Callable) -> WSGIServer:
    """Bind a threaded server to ``host:port``; raises ``OSError`` when that fails."""
    host, port = split_address(address)
    server_class = _IPv6Server if ":" in host else _Server
    return make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)


def serve(server: WSGIServer, stop: threading.Event) -> None:
    """Serve until ``stop`` is set (by a signal handler), then close the socket."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
