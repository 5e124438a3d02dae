"""TLS collector against a real nginx (certificates made with openssl in a temp dir)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from fx_tls import TlsLab
from helpers import free_port, parse_exposition, promtool_check_metrics

from exporters.core import ParseError
from exporters.tls import cert_not_after, endpoints, is_https_redirect
from sscp_ops.config import parse_config


@pytest.mark.parametrize(
    ("status", "location", "ok"),
    [
        (301, "https://zhjg.example.gov.cn/", True),
        (308, "HTTPS://x/", True),
        (302, "http://zhjg.example.gov.cn/login", False),
        (200, None, False),
        (301, None, False),
    ],
)
def test_is_https_redirect(status: int, location: str | None, ok: bool) -> None:
    assert is_https_redirect(status, location) is ok


def test_cert_not_after_rejects_garbage() -> None:
    with pytest.raises(ParseError):
        cert_not_after(b"not a certificate")


def test_endpoints_from_config_and_probes() -> None:
    cfg = parse_config(
        """
targets:
  probe:
    - {name: home, url: "https://zhjg.example.gov.cn/"}
    - {name: api, url: "http://10.0.0.5:8080/health"}
    - {name: portal, url: "https://zhjg.example.gov.cn/portal/"}
tls_checks:
  endpoints:
    - {name: portal, url: "https://zhjg.example.gov.cn:8443/", redirect_check: false}
"""
    )
    eps = {e.name: e for e in endpoints(cfg)}
    assert set(eps) == {"portal", "home"}
    assert eps["portal"].port == 8443 and eps["portal"].http_url is None
    assert eps["home"].port == 443 and eps["home"].http_url == "http://zhjg.example.gov.cn/"


def config(lab: TlsLab, down: int) -> str:
    return f"""
exporter: {{collectors: {{host: false, tls: true}}, deadline: 20}}
tls_checks:
  endpoints:
    - {{name: weak, url: "https://localhost:{lab.weak}/", ca_file: {lab.ca},
        http_url: "http://127.0.0.1:{lab.plain}/"}}
    - {{name: strong, url: "https://localhost:{lab.strong}/", ca_file: {lab.ca},
        http_url: "http://127.0.0.1:{lab.redirect}/"}}
    - {{name: expired, url: "https://localhost:{lab.expired}/", ca_file: {lab.ca},
        redirect_check: false}}
    - {{name: untrusted, url: "https://localhost:{lab.strong}/", redirect_check: false}}
    - {{name: down, url: "https://localhost:{down}/", ca_file: {lab.ca}}}
"""


def test_tls_checks_against_nginx(tls_lab: TlsLab, exporter) -> None:
    base = exporter(config(tls_lab, free_port()))
    text = requests.get(f"{base}/metrics", timeout=60).text
    m = parse_exposition(text)

    def v(name: str, **labels: str) -> float:
        return m[(name, frozenset(labels.items()))]

    for t in ("weak", "strong", "expired", "untrusted"):
        assert v("sscp_tls_up", target=t) == 1
    assert v("sscp_tls_up", target="down") == 0
    down = [k[0] for k in m if ("target", "down") in k[1] and k[0].startswith("sscp_tls_")]
    assert down == ["sscp_tls_up"]
    assert v("sscp_exporter_collector_success", collector="sscp_tls", target="down") == 1

    assert v("sscp_tls_chain_valid", target="strong") == 1
    assert v("sscp_tls_chain_valid", target="untrusted") == 0  # CA not in the system store
    assert v("sscp_tls_chain_valid", target="expired") == 0

    leaf = v("sscp_tls_cert_expiry_timestamp_seconds", target="strong")
    now = dt.datetime.now(dt.UTC).timestamp()
    assert 19 * 86400 < leaf - now <= 20 * 86400 + 60
    expired = v("sscp_tls_cert_expiry_timestamp_seconds", target="expired")
    assert expired == dt.datetime(2025, 2, 1, tzinfo=dt.UTC).timestamp()

    offered = {
        (t, ver): v("sscp_tls_protocol_offered", target=t, version=ver)
        for t in ("weak", "strong")
        for ver in ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    }
    assert offered == {
        ("weak", "TLSv1.0"): 1, ("weak", "TLSv1.1"): 1, ("weak", "TLSv1.2"): 1,
        ("weak", "TLSv1.3"): 1, ("strong", "TLSv1.0"): 0, ("strong", "TLSv1.1"): 0,
        ("strong", "TLSv1.2"): 1, ("strong", "TLSv1.3"): 1,
    }  # fmt: skip

    assert v("sscp_tls_http_redirect", target="strong") == 1
    assert v("sscp_tls_http_redirect", target="weak") == 0
    assert ("sscp_tls_http_redirect", frozenset({("target", "expired")})) not in m

    lint = promtool_check_metrics(text)
    assert lint.returncode == 0, lint.stdout + lint.stderr
