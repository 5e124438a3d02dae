"""SLA probe collector against a real local web site (HTTP and HTTPS), and agreement with
Debian's blackbox exporter probing the same URLs in the same test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import yaml
from fx_probe import KEYWORD, PAGE, SLOW_SECONDS, make_self_signed
from helpers import free_port, parse_exposition, promtool_check_metrics, require_binary, running

from exporters.catalog import CATALOG
from exporters.probe import ProbeCollector, body_has_keyword, cert_expiry
from sscp_ops.config import parse_config
from sscp_ops.config.targets import ProbeTarget


def test_keyword_decoded_with_declared_charset() -> None:
    assert body_has_keyword(PAGE.encode("gbk"), "gbk", KEYWORD)
    assert body_has_keyword(PAGE.encode(), None, KEYWORD)
    assert not body_has_keyword(PAGE.encode(), "utf-8", "不存在")
    assert body_has_keyword(PAGE.encode(), "no-such-charset", KEYWORD)


def test_cert_expiry_reads_not_after(tmp_path: Path) -> None:
    import ssl

    cert, _ = make_self_signed(tmp_path, days=10)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    left = cert_expiry(der) - time.time()
    assert 10 * 86400 - 120 < left <= 10 * 86400 + 1


def test_unreadable_certificate_gives_no_expiry() -> None:
    from exporters.probe import _expiry_or_none

    with pytest.raises(ValueError):
        cert_expiry(b"not a certificate")
    assert _expiry_or_none(b"not a certificate") is None
    assert _expiry_or_none(None) is None


def test_catalog_builds_one_collector_per_probe() -> None:
    cfg = parse_config(
        "targets:\n  probe:\n"
        "    - {name: home, url: 'http://127.0.0.1:1/'}\n"
        "    - {name: login, url: 'http://127.0.0.1:1/login', keyword: 登录}\n"
    )
    collectors = CATALOG["probe"].build(cfg)
    assert [c.target for c in collectors] == ["home", "login"]
    assert all(isinstance(c, ProbeCollector) for c in collectors)
    for c in collectors:
        c.close()


def _collect(probe: ProbeTarget, deadline: float = 5.0) -> dict:
    collector = ProbeCollector(probe)
    try:
        metrics = list(collector.collect(deadline))
    finally:
        collector.close()
    return {m.name: m.samples[0].value for m in metrics}


def test_in_process_ok_and_session_reused(probe_site) -> None:
    collector = ProbeCollector(ProbeTarget(name="home", url=probe_site.http + "/ok"))
    try:
        for _ in range(3):
            got = {m.name: m.samples[0] for m in collector.collect(5.0)}
            assert got["sla_probe_up"].value == 1
            assert got["sla_probe_success"].value == 1
            assert got["sla_probe_success"].labels == {"target": "home"}
            assert got["sla_probe_http_status_code"].value == 200
            assert 0 < got["sla_probe_duration_seconds"].value < 1
            assert "sla_probe_tls_cert_expiry_timestamp_seconds" not in got
        pool = collector._session.get_adapter("http://").poolmanager.pools
        assert len(pool.keys()) == 1  # one connection pool, kept across scrapes
    finally:
        collector.close()


def test_gbk_page_keyword_found(probe_site) -> None:
    # Blackbox matches the raw bytes, so it would miss a keyword on a GBK page; we decode.
    got = _collect(ProbeTarget(name="gbk", url=probe_site.http + "/gbk", keyword=KEYWORD))
    assert got["sla_probe_success"] == 1


def test_hanging_site_is_a_failed_probe_within_the_deadline(probe_site) -> None:
    start = time.monotonic()
    got = _collect(ProbeTarget(name="slow", url=probe_site.http + "/slow", timeout=5), 1.2)
    assert time.monotonic() - start < SLOW_SECONDS
    assert got["sla_probe_up"] == 1  # the prober worked: the platform is the finding
    assert got["sla_probe_success"] == 0
    assert got["sla_probe_http_status_code"] == 0


def test_site_down_is_a_finding_not_an_unavailable_target() -> None:
    port = free_port()  # nothing listens there
    got = _collect(ProbeTarget(name="down", url=f"http://127.0.0.1:{port}/"))
    assert got == {
        "sla_probe_up": 1,
        "sla_probe_success": 0,
        "sla_probe_duration_seconds": pytest.approx(got["sla_probe_duration_seconds"]),
        "sla_probe_http_status_code": 0,
        "sla_probe_platform": 1,  # platform: true by default (issue 16 item 11)
    }


# (name, scheme, path, our probe options, blackbox module options, expected success, status)
CASES = [
    ("ok", "http", "/ok", {"keyword": KEYWORD}, {}, 1, 200),
    ("nokw", "http", "/ok", {"keyword": "不存在的词"}, {}, 0, 200),
    ("missing", "http", "/missing", {}, {}, 0, 404),
    ("want404", "http", "/missing", {"expect_status": 404}, {}, 1, 404),
    ("redirect", "http", "/redirect", {}, {}, 1, 200),
    ("head", "http", "/ok", {"method": "HEAD"}, {}, 1, 200),
    ("slow", "http", "/slow", {"timeout": 1}, {}, 0, 0),
    ("refused", "refused", "/", {}, {}, 0, 0),
    ("tls_ca", "https", "/ok", {"keyword": KEYWORD, "tls": "ca"}, {}, 1, 200),
    ("tls_untrusted", "https", "/ok", {}, {}, 0, 0),
    ("tls_insecure", "https", "/ok", {"tls": "insecure"}, {}, 1, 200),
]


def _blackbox_module(opts: dict, ca_file: Path) -> dict:
    http: dict = {
        "method": opts.get("method", "GET"),
        "valid_status_codes": [opts.get("expect_status", 200)],
        "preferred_ip_protocol": "ip4",
    }
    if "keyword" in opts:
        http["fail_if_body_not_matches_regexp"] = [opts["keyword"]]
    if opts.get("tls") == "ca":
        http["tls_config"] = {"ca_file": str(ca_file)}
    elif opts.get("tls") == "insecure":
        http["tls_config"] = {"insecure_skip_verify": True}
    return {"prober": "http", "timeout": f"{opts.get('timeout', 5)}s", "http": http}


def _our_probe(name: str, url: str, opts: dict, ca_file: Path) -> dict:
    probe: dict = {"name": name, "url": url}
    for key in ("method", "expect_status", "keyword", "timeout"):
        if key in opts:
            probe[key] = opts[key]
    if opts.get("tls") == "ca":
        probe["tls"] = {"ca_file": str(ca_file)}
    elif opts.get("tls") == "insecure":
        probe["tls"] = {"insecure_skip_verify": True}
    return probe


@pytest.mark.slow
def test_agrees_with_blackbox_exporter(exporter, probe_site, tmp_path: Path) -> None:
    blackbox = require_binary("prometheus-blackbox-exporter", "blackbox_exporter")
    refused = f"http://127.0.0.1:{free_port()}"
    bases = {"http": probe_site.http, "https": probe_site.https, "refused": refused}
    urls = {name: bases[scheme] + path for name, scheme, path, *_ in CASES}
    probes = [_our_probe(n, urls[n], opts, probe_site.ca_file) for n, _, _, opts, *_ in CASES]
    modules = {
        n: _blackbox_module({**opts, **bb}, probe_site.ca_file) for n, _, _, opts, bb, *_ in CASES
    }
    config = {
        "exporter": {"collectors": {"host": False, "probe": True}, "deadline": 8},
        "targets": {"probe": probes},
    }
    ours_url = exporter(yaml.safe_dump(config, allow_unicode=True)) + "/metrics"
    bb_cfg = tmp_path / "blackbox.yml"
    bb_cfg.write_text(yaml.safe_dump({"modules": modules}, allow_unicode=True))
    port = free_port()
    cmd = [blackbox, f"--config.file={bb_cfg}", f"--web.listen-address=127.0.0.1:{port}"]
    with running(cmd, ready_url=f"http://127.0.0.1:{port}/-/healthy"):
        ours = parse_exposition(requests.get(ours_url, timeout=15).text)
        for name, _, _, _, _, success, status in CASES:
            resp = requests.get(
                f"http://127.0.0.1:{port}/probe",
                params={"target": urls[name], "module": name},
                timeout=15,
            )
            theirs = parse_exposition(resp.text)
            label = frozenset({("target", name)})
            got = (
                ours[("sla_probe_success", label)],
                ours[("sla_probe_http_status_code", label)],
            )
            none = frozenset()
            ref = (theirs[("probe_success", none)], theirs[("probe_http_status_code", none)])
            assert got == ref == (success, status), name
            assert ours[("sla_probe_up", label)] == 1, name
            expiry = ours.get(("sla_probe_tls_cert_expiry_timestamp_seconds", label))
            if name in ("tls_ca", "tls_insecure"):
                assert expiry == theirs[("probe_ssl_earliest_cert_expiry", frozenset())], name
            else:
                assert expiry is None, name
            if success:
                ratio = (
                    ours[("sla_probe_duration_seconds", label)]
                    / theirs[("probe_duration_seconds", frozenset())]
                )
                assert 0.01 < ratio < 100, name  # same order of magnitude on a local site
        success_key = (
            "sscp_exporter_collector_success",
            frozenset({("collector", "sla_probe"), ("target", "slow")}),
        )
        assert ours[success_key] == 1


def test_probe_exposition_passes_promtool_check_metrics(exporter, probe_site) -> None:
    config = {
        "exporter": {"collectors": {"host": False, "probe": True}},
        "targets": {
            "probe": [
                {"name": "home", "url": probe_site.http + "/ok"},
                {
                    "name": "tls",
                    "url": probe_site.https + "/ok",
                    "tls": {"insecure_skip_verify": True},
                },
            ]
        },
    }
    text = requests.get(exporter(yaml.safe_dump(config)) + "/metrics", timeout=10).text
    assert 'sla_probe_tls_cert_expiry_timestamp_seconds{target="tls"}' in text
    result = promtool_check_metrics(text)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip()
