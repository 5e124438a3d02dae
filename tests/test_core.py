"""The scrape runner: concurrency, deadline, failures reported per collector."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import pytest
import requests
from helpers import parse_exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.core import Collector, ParseError, ScrapeRunner, TargetCollector, TargetUnavailable
from exporters.server import bind, make_app, serve


class Fixed(Collector):
    name = "fixed"

    def __init__(self, value: float = 1.0) -> None:
        self.value = value

    def collect(self, timeout: float) -> Iterable[Metric]:
        yield GaugeMetricFamily("fixed_value", "A fixed value.", value=self.value)


class Hangs(Collector):
    name = "hangs"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self, timeout: float) -> Iterable[Metric]:
        self.calls += 1
        self.release.wait(30)
        return [GaugeMetricFamily("hangs_value", "never seen", value=1)]


class Raises(Collector):
    name = "raises"

    def collect(self, timeout: float) -> Iterable[Metric]:
        raise RuntimeError("boom")


class Remote(TargetCollector):
    name = "remote"

    def __init__(self, target: str, behaviour: str) -> None:
        super().__init__(target)
        self.behaviour = behaviour

    def scrape(self, timeout: float) -> Iterable[Metric]:
        if self.behaviour == "down":
            raise TargetUnavailable("connection refused")
        if self.behaviour == "garbage":
            raise ParseError("truncated")
        fam = CounterMetricFamily("remote_requests_total", "Requests.", labels=["target"])
        fam.add_metric([self.target], 42)
        yield fam


def samples(metrics: list[Metric]) -> dict:
    out = {}
    for fam in metrics:
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def key(name: str, **labels: str):
    return (name, frozenset(labels.items()))


def test_hanging_collector_is_cut_at_deadline_and_others_still_report() -> None:
    hang = Hangs()
    runner = ScrapeRunner([Fixed(7), hang, Raises()], deadline=0.5)
    start = time.monotonic()
    got = samples(runner.scrape())
    elapsed = time.monotonic() - start
    hang.release.set()
    assert 0.45 <= elapsed < 1.0
    assert got[key("fixed_value")] == 7
    assert got[key("sscp_exporter_collector_success", collector="fixed")] == 1
    assert got[key("sscp_exporter_collector_success", collector="hangs")] == 0
    assert got[key("sscp_exporter_collector_success", collector="raises")] == 0
    assert got[key("sscp_exporter_collector_duration_seconds", collector="hangs")] >= 0.45
    assert not any(name == "hangs_value" for name, _ in got)


def test_still_running_collector_is_not_started_twice() -> None:
    hang = Hangs()
    runner = ScrapeRunner([hang], deadline=0.2)
    runner.scrape()
    got = samples(runner.scrape())
    assert hang.calls == 1
    assert got[key("sscp_exporter_collector_success", collector="hangs")] == 0
    hang.release.set()
    time.sleep(0.1)
    hang.release = threading.Event()
    hang.release.set()
    got = samples(runner.scrape())
    assert hang.calls == 2
    assert got[key("sscp_exporter_collector_success", collector="hangs")] == 1


class Slow(TargetCollector):
    """A healthy target that answers when released; counts its collections."""

    name = "slow"

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def scrape(self, timeout: float) -> Iterable[Metric]:
        self.calls += 1
        self.entered.set()
        self.release.wait(timeout)
        fam = GaugeMetricFamily("slow_value", "A value.", labels=["target"])
        fam.add_metric([self.target], self.calls)
        return [fam]


def test_overlapping_scrape_shares_the_running_collection() -> None:
    slow = [Slow("a"), Slow("b")]
    runner = ScrapeRunner(slow, deadline=5)
    results: dict[str, list[Metric]] = {}

    def scrape(name: str, scrape_timeout: float | None = None) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: results.__setitem__(name, runner.scrape(scrape_timeout))
        )
        thread.start()
        return thread

    first = scrape("first")
    assert all(s.entered.wait(5) for s in slow)
    second = scrape("second")
    # a third scrape with a short deadline gives up on the shared collection in time
    start = time.monotonic()
    third = scrape("third", scrape_timeout=0.8)
    third.join(5)
    assert 0.25 <= time.monotonic() - start < 1.5
    for s in slow:
        s.release.set()
    first.join(5)
    second.join(5)
    assert [s.calls for s in slow] == [1, 1], "one collection per collector"
    for name in ("first", "second"):
        metrics = results[name]
        got = samples(metrics)
        for target in ("a", "b"):
            assert got[key("slow_up", target=target)] == 1, name
            assert got[key("slow_value", target=target)] == 1, name
            assert got[key("sscp_exporter_collector_success", collector="slow", target=target)]
        # each scrape merges its own copy of the shared families: no sample twice
        assert sum(len(m.samples) for m in metrics if m.name == "slow_value") == 2, name
    got = samples(results["third"])
    assert got[key("slow_up", target="a")] == 0
    assert got[key("sscp_exporter_collector_success", collector="slow", target="a")] == 0


def test_scrape_timeout_header_lowers_the_deadline() -> None:
    runner = ScrapeRunner([], deadline=5)
    assert runner.effective_deadline(None) == 5
    assert runner.effective_deadline(2.0) == 1.5
    assert runner.effective_deadline(10.0) == 5
    assert runner.effective_deadline(0.3) == 0.1


def test_target_collectors_share_families_and_report_up() -> None:
    runner = ScrapeRunner(
        [Remote("a", "ok"), Remote("b", "down"), Remote("c", "garbage")], deadline=2
    )
    metrics = runner.scrape()
    names = [m.name for m in metrics]
    assert len(names) == len(set(names)), "each family exposed once"
    got = samples(metrics)
    assert got[key("remote_up", target="a")] == 1
    assert got[key("remote_requests_total", target="a")] == 42
    assert got[key("remote_up", target="b")] == 0
    assert got[key("remote_up", target="c")] == 0
    # unreachable is a finding, garbage is a collector failure
    assert got[key("sscp_exporter_collector_success", collector="remote", target="b")] == 1
    assert got[key("sscp_exporter_collector_success", collector="remote", target="c")] == 0


@pytest.fixture
def served():
    servers = []

    def start(collectors, deadline=5.0):
        runner = ScrapeRunner(collectors, deadline=deadline)
        server = bind("127.0.0.1:0", make_app(runner, "test"))
        stop = threading.Event()
        thread = threading.Thread(target=serve, args=(server, stop), daemon=True)
        thread.start()
        servers.append((stop, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for stop, thread in servers:
        stop.set()
        thread.join(5)


def test_http_scrape_answers_within_deadline_plus_one_second(served) -> None:
    hang = Hangs()
    base = served([Fixed(3), hang], deadline=1.0)
    start = time.monotonic()
    resp = requests.get(f"{base}/metrics", timeout=10)
    elapsed = time.monotonic() - start
    hang.release.set()
    assert resp.status_code == 200
    assert elapsed < 2.0
    got = parse_exposition(resp.text)
    assert got[key("fixed_value")] == 3
    assert got[key("sscp_exporter_collector_success", collector="hangs")] == 0


def test_http_header_deadline(served) -> None:
    hang = Hangs()
    base = served([hang], deadline=5.0)
    start = time.monotonic()
    resp = requests.get(
        f"{base}/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"}, timeout=10
    )
    hang.release.set()
    assert resp.status_code == 200
    assert time.monotonic() - start < 1.5


def test_landing_health_and_404(served) -> None:
    base = served([Fixed(), Remote("cache1", "ok")])
    page = requests.get(base + "/", timeout=5)
    assert page.status_code == 200 and "fixed" in page.text and "remote (cache1)" in page.text
    assert requests.get(base + "/healthz", timeout=5).text == "OK\n"
    assert requests.get(base + "/nope", timeout=5).status_code == 404
    gz = requests.get(base + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert gz.headers["Content-Encoding"] == "gzip" and "fixed_value" in gz.text
    om = requests.get(
        base + "/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=5
    )
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")
