"""A real nginx with TLS on free loopback ports, and a CA, server certificates (one expired)
made with the openssl command line in a temp dir."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import free_port, require_binary, wait_tcp

CA_CNF = """\
[ca]
default_ca = local
[local]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
"""
LEAF_EXT = """\
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


@dataclass
class TlsLab:
    dir: Path
    ca: Path
    weak: int  # TLS 1.0-1.3, valid certificate
    strong: int  # TLS 1.2-1.3, valid certificate
    expired: int  # TLS 1.2-1.3, expired certificate
    redirect: int  # plain HTTP, 301 to https://localhost:<strong>/
    plain: int  # plain HTTP, 200 without redirect


def _openssl(openssl: str, *args: str, cwd: Path) -> None:
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> None:
    openssl = require_binary("openssl")
    (d / "newcerts").mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text(CA_CNF.format(dir=d))
    (d / "leaf.ext").write_text(LEAF_EXT)
    _openssl(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "30", "-subj", "/CN=SSCP Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key",
             "-out", "leaf.csr", "-subj", "/CN=localhost", cwd=d)  # fmt: skip
    _openssl(openssl, "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "leaf.pem", "-days", "20", "-extfile", "leaf.ext",
             cwd=d)  # fmt: skip
    _openssl(openssl, "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile",
             "ca.key", "-in", "leaf.csr", "-out", "expired.pem", "-startdate", "20250101000000Z",
             "-enddate", "20250201000000Z", "-extfile", "leaf.ext", cwd=d)  # fmt: skip


NGINX_SERVERS = """\
ssl_certificate_key {d}/leaf.key;
server {{
  listen 127.0.0.1:{weak} ssl;
  ssl_certificate {d}/leaf.pem;
  ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
  ssl_ciphers ALL:@SECLEVEL=0;
  location / {{ return 200 "weak\\n"; }}
}}
server {{
  listen 127.0.0.1:{strong} ssl;
  ssl_certificate {d}/leaf.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  location / {{ return 200 "strong\\n"; }}
}}
server {{
  listen 127.0.0.1:{expired} ssl;
  ssl_certificate {d}/expired.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  location / {{ return 200 "expired\\n"; }}
}}
server {{
  listen 127.0.0.1:{redirect};
  location / {{ return 301 https://localhost:{strong}$request_uri; }}
}}
server {{
  listen 127.0.0.1:{plain};
  location / {{ return 200 "plain\\n"; }}
}}
"""


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsLab]:
    from fx_servers import nginx_running  # a plugin registered after this one

    d = tmp_path_factory.mktemp("tlslab")
    make_pki(d)
    ports = {k: free_port() for k in ("weak", "strong", "expired", "redirect", "plain")}
    with nginx_running(d, NGINX_SERVERS.format(d=d, **ports)):
        for port in ports.values():
            wait_tcp(port)
        yield TlsLab(d, d / "ca.pem", **ports)
