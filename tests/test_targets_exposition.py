"""The fast encoders write the same bytes as prometheus_client's, on a full real scrape."""

from __future__ import annotations

import time

import pytest
from helpers import FIXTURES
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, Summary
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporters.core import ScrapeRunner
from exporters.exposition import encode, encode_openmetrics, encode_text
from exporters.host import HostCollector
from exporters.mysql import global_status_metrics, global_variables_metrics, parse_server_values
from exporters.nginx import NginxCollector
from exporters.redis import info_metrics, parse_redis_info
from exporters.tomcat import parse_tomcat_status, status_metrics


class _Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []

    def collect(self) -> list[Metric]:
        return self.metrics


def tsv(name: str) -> list[tuple[str, str]]:
    text = (FIXTURES / "mysql" / name).read_text()
    return [tuple(line.split("\t", 1)) for line in text.splitlines()]


def tricky() -> list[Metric]:
    g = GaugeMetricFamily(
        "odd_values", 'Help with \\ backslash,\n newline and "quotes".', labels=["a", "b"]
    )
    g.add_metric(['quote " here', "back\\slash"], 1)
    g.add_metric(["new\nline", "中文 标签"], float("inf"))
    g.add_metric(["x", "y"], float("-inf"))
    g.add_metric(["nan", "y"], float("nan"))
    g.add_metric(["big", "y"], 1.23456789e12)
    g.add_metric(["small", "y"], 1.5e-7)
    g.add_metric(["int", "y"], 7)
    g.add_metric(["neg", "y"], -2500000.0)
    g.add_metric(["edge", "y"], 999999.5)
    c = CounterMetricFamily("with_created", "Counter with created.", labels=["k"], created=1.7e9)
    c.add_metric(["v"], 3, created=1.7e9)
    u = UnknownMetricFamily("untyped_thing", "Untyped.", value=4)
    i = InfoMetricFamily("build", "Build info.", value={"version": "1.0"})
    return [g, c, u, i]


def library_metrics() -> list[Metric]:
    registry = CollectorRegistry()
    h = Histogram("req_seconds", "Request time.", ["path"], registry=registry)
    h.labels("/a").observe(0.3)
    s = Summary("payload_bytes", "Payload size.", registry=registry)
    s.observe(512)
    Counter("events", "Events.", registry=registry).inc(2)
    return list(registry.collect())


@pytest.fixture(scope="module")
def scrape() -> list[Metric]:
    from sscp_ops.config.targets import NginxTarget

    runner = ScrapeRunner(
        [HostCollector(), NginxCollector(NginxTarget(name="n", url="http://127.0.0.1:1/x"))]
    )
    metrics = runner.scrape()
    metrics += global_status_metrics("db1", parse_server_values(tsv("global_status.tsv")))
    metrics += global_variables_metrics("db1", parse_server_values(tsv("global_variables.tsv")))
    info = parse_redis_info((FIXTURES / "redis" / "info.txt").read_text())
    metrics += info_metrics("cache1", info, 0, 16)
    xml = (FIXTURES / "tomcat" / "status.xml").read_text()
    metrics += status_metrics("app1", parse_tomcat_status(xml))
    metrics += ProcessCollector(registry=None).collect()
    return [*metrics, *tricky(), *library_metrics()]


def test_text_bytes_equal_prometheus_client(scrape) -> None:
    assert sum(len(m.samples) for m in scrape) > 1000
    assert encode_text(scrape) == generate_latest(_Fixed(scrape))


def test_openmetrics_bytes_equal_prometheus_client(scrape) -> None:
    assert encode_openmetrics(scrape) == generate_openmetrics(_Fixed(scrape))


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("", "text/plain; version=0.0.4"),
        ("text/plain", "text/plain; version=0.0.4"),
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text; version=1.0.0",
        ),
    ],
)
def test_negotiation(scrape, accept: str, content_type: str) -> None:
    body, got = encode(scrape, accept)
    assert got.startswith(content_type)
    assert body.endswith(b"# EOF\n") == content_type.startswith("application/openmetrics")


def test_faster_than_prometheus_client(scrape) -> None:
    def cost(fn) -> float:
        start = time.process_time()
        for _ in range(5):
            fn()
        return time.process_time() - start

    ours = cost(lambda: encode_openmetrics(scrape))
    theirs = cost(lambda: generate_openmetrics(_Fixed(scrape)))
    assert ours < theirs / 2, (ours, theirs)
