"""TLS options of targets (``tls.ca_file``, ``tls.insecure_skip_verify``) against a real Nginx
serving stub_status over HTTPS and a real Redis on a TLS port, with a certificate made for
the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from fx_probe import make_self_signed
from helpers import free_port, require_binary, running, wait_tcp

from exporters.core import ScrapeRunner
from exporters.nginx import NginxCollector
from exporters.redis import RedisCollector
from sscp_ops.config.base import TlsConfig
from sscp_ops.config.targets import NginxTarget, RedisTarget


@pytest.fixture
def https_nginx(nginx_factory, tmp_path: Path):
    cert, key = make_self_signed(tmp_path)
    port = free_port()
    nginx_factory(
        f"listen 127.0.0.1:{port} ssl;\nssl_certificate {cert};\nssl_certificate_key {key};\n"
    )
    return f"https://127.0.0.1:{port}/stub_status", cert


def up(url: str, tls: TlsConfig | None) -> tuple[float, float]:
    collector = NginxCollector(NginxTarget(name="tls", url=url, tls=tls))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in ScrapeRunner([collector]).scrape()
        for s in fam.samples
    }
    collector.close()
    labels = (("collector", "nginx"), ("target", "tls"))
    return samples[("nginx_up", (("target", "tls"),))], samples[
        ("sscp_exporter_collector_success", labels)
    ]


def test_ca_file_verifies_the_server(https_nginx) -> None:
    url, cert = https_nginx
    assert up(url, TlsConfig(ca_file=cert)) == (1, 1)


def test_unknown_certificate_is_refused(https_nginx, caplog) -> None:
    url, _ = https_nginx
    assert up(url, None) == (0, 1)  # system CAs do not know it: down, not a crash
    assert "target unavailable" in caplog.text


def test_insecure_skip_verify(https_nginx) -> None:
    url, _ = https_nginx
    with pytest.warns(Warning):  # urllib3 warns about unverified HTTPS, as it should
        assert up(url, TlsConfig(insecure_skip_verify=True)) == (1, 1)


@pytest.fixture
def tls_redis(tmp_path: Path):
    cert, key = make_self_signed(tmp_path)
    port = free_port()
    cmd = [
        require_binary("redis-server"),
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(cert),
        "--tls-auth-clients",
        "no",
        "--save",
        "",
        "--dir",
        str(tmp_path),
        "--logfile",
        str(tmp_path / "redis.log"),
    ]
    with running(cmd):
        wait_tcp(port)
        yield f"127.0.0.1:{port}", cert


def redis_up(address: str, tls: TlsConfig | None) -> float:
    collector = RedisCollector(RedisTarget(name="tls", address=address, tls=tls, timeout=2))
    try:
        families = list(collector.collect(3))
    finally:
        collector.close()
    up_family = next(f for f in families if f.name == "redis_up")
    if up_family.samples[0].value == 1:
        assert any(f.name == "redis_uptime_in_seconds" for f in families)
    return up_family.samples[0].value


def test_redis_tls(tls_redis) -> None:
    address, cert = tls_redis
    assert redis_up(address, TlsConfig(ca_file=cert)) == 1
    assert redis_up(address, TlsConfig(insecure_skip_verify=True)) == 1
    assert redis_up(address, TlsConfig()) == 0  # system CAs do not know the certificate
    assert redis_up(address, None) == 0  # plain text to a TLS port
