"""A real local web site for the SLA probe tests: HTTP and HTTPS (self-signed, made by openssl).

``probe_site`` (session scope) serves, on loopback, over both schemes:

- ``/ok``       200, a Chinese page holding the keyword ``智慧监管``
- ``/gbk``      200, the same page in GBK (charset declared in Content-Type)
- ``/missing``  404
- ``/redirect`` 302 to ``/ok``
- ``/slow``     200 after ``SLOW_SECONDS``
"""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import require_binary, serving

KEYWORD = "智慧监管"
PAGE = f"<!doctype html><html><head><title>{KEYWORD}综合指挥平台</title></head><body>首页</body>"
SLOW_SECONDS = 2.5


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as nginx (tcp_nodelay): no 40 ms delayed-ACK stalls

    def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the probe gave up (timeout test)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self.path.split("?", 1)[0]
        if path == "/ok":
            self._send(200, PAGE.encode())
        elif path == "/gbk":
            self._send(200, PAGE.encode("gbk"), "text/html; charset=gbk")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, PAGE.encode())
        else:
            self._send(404, b"not found")

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


@dataclass(frozen=True)
class Site:
    http: str  # base URL, no trailing slash
    https: str
    ca_file: Path  # the self-signed certificate, to trust it
    cert_file: Path


def make_self_signed(directory: Path, days: int = 30) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (IP SAN) made with openssl; (cert, key)."""
    openssl = require_binary("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"]
        + ["-keyout", str(key), "-out", str(cert), "-days", str(days)]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    cert, key = make_self_signed(tmp_path_factory.mktemp("tls"))
    plain = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    secure = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
    plain.daemon_threads = secure.daemon_threads = True
    with serving(plain), serving(secure):
        yield Site(
            http=f"http://127.0.0.1:{plain.server_address[1]}",
            https=f"https://127.0.0.1:{secure.server_address[1]}",
            ca_file=cert,
            cert_file=cert,
        )
