"""Two Prometheus servers (an HA pair) scraping one ``sscp-ops exporter`` a moment apart, while
the targets are healthy but slow: the second scrape arrives while the first one's collections
are still running. It must get their result (or one of its own), never a false ``<system>_up 0``.

The targets are real servers (Nginx, Redis, MariaDB; a probe of a page Nginx serves) behind a
TCP proxy that holds each request ``delay`` seconds, well inside the scrape deadline.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass

import requests
from fx_servers import SlowProxy, redis_server, slow_proxy
from fx_targets import parse_samples, start_exporter

PAIRS = 4
OFFSET = 0.5  # the second Prometheus scrapes this long after the first
DELAY = 1.5  # each collection's request to a slow target is held this long (deadline 5 s)

Samples = dict[tuple[str, frozenset], float]


@dataclass(frozen=True)
class Watched:
    system: str  # the collector's name: <system>_up{target}
    target: str
    value: str  # a metric only a successful collection yields
    proxy: SlowProxy

    def key(self, name: str) -> tuple[str, frozenset]:
        return (name, frozenset({("target", self.target)}))


class Scrape(threading.Thread):
    """One Prometheus server's GET /metrics, in its own thread."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: Samples = {}
        self.started_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        self.started_at = time.monotonic()
        try:
            resp = requests.get(self.url, timeout=15)
            resp.raise_for_status()
            self.samples = parse_samples(resp.text)
        except BaseException as exc:  # reported by the test
            self.error = exc


def scrape_pair(url: str, watched: list[Watched]) -> tuple[Scrape, Scrape, float]:
    """Scrape A, then, once every slow target has A's request in hand, scrape B ``OFFSET``
    after A started; returns both and how far apart they started."""
    before = [w.proxy.requests for w in watched]
    first = Scrape(url)
    first.start()
    for w, count in zip(watched, before, strict=True):
        assert w.proxy.wait_requests(count + 1, timeout=10), f"{w.system}: no request came"
    # The HA pair's offset is the scenario itself, not a wait for a condition.
    time.sleep(max(0.0, first.started_at + OFFSET - time.monotonic()))
    second = Scrape(url)
    second.start()
    for scrape in (first, second):
        scrape.join(20)
        assert not scrape.is_alive(), "a scrape did not answer"
        assert scrape.error is None, scrape.error
    return first, second, second.started_at - first.started_at


def test_overlapping_scrapes_of_slow_healthy_targets_never_report_up_0(
    nginx, mysql_user, tmp_path
) -> None:
    (nginx.root / "overlap.html").write_text("<html><body>platform ok</body></html>")
    with ExitStack() as stack:
        cache = stack.enter_context(redis_server(tmp_path / "redis"))
        web = stack.enter_context(slow_proxy(("127.0.0.1", nginx.port), DELAY, b"GET "))
        page = stack.enter_context(slow_proxy(("127.0.0.1", nginx.port), DELAY, b"GET "))
        # the INFO command as RESP sends it (not the CLIENT SETINFO of a new connection)
        kv = stack.enter_context(slow_proxy(("127.0.0.1", cache.port), DELAY, b"$4\r\nINFO\r\n"))
        # PROCESSLIST: one statement of the batch a MySQL collection sends once
        db = stack.enter_context(
            slow_proxy((mysql_user.host, mysql_user.port), DELAY, b"PROCESSLIST")
        )
        base = stack.enter_context(
            start_exporter(
                tmp_path,
                f"""
exporter: {{deadline: 5, collectors: {{host: false}}}}
targets:
  nginx: [{{name: web1, url: "{web.url("/stub_status")}", timeout: 4}}]
  redis: [{{name: cache1, address: "{kv.address}", timeout: 4}}]
  mysql: [{{name: db1, address: "{db.address}", user: {mysql_user.user},
           password_file: {mysql_user.password_file}, timeout: 4}}]
  probe: [{{name: home, url: "{page.url("/overlap.html")}", keyword: platform, timeout: 4}}]
""",
            )
        )
        url = f"{base}/metrics"
        watched = [
            Watched("nginx", "web1", "nginx_http_requests_total", web),
            Watched("redis", "cache1", "redis_uptime_in_seconds", kv),
            Watched("mysql", "db1", "mysql_global_variables_max_connections", db),
            Watched("sla_probe", "home", "sla_probe_success", page),
        ]

        # Alone, a scrape finds every slow target healthy (and opens the kept connections).
        alone = requests.get(url, timeout=15)
        got = parse_samples(alone.text)
        for w in watched:
            assert got[w.key(f"{w.system}_up")] == 1, f"{w.system} down when scraped alone"

        false_down: list[str] = []
        without_values: list[str] = []
        offsets = []
        for pair in range(PAIRS):
            first, second, offset = scrape_pair(url, watched)
            offsets.append(offset)
            for name, scrape in (("A", first), ("B", second)):
                for w in watched:
                    where = f"pair {pair} scrape {name} {w.system}"
                    if scrape.samples.get(w.key(f"{w.system}_up")) != 1:
                        false_down.append(where)
                    if w.key(w.value) not in scrape.samples:
                        without_values.append(where)

    scrapes = PAIRS * 2 * len(watched)
    print(
        f"overlapping pairs {PAIRS}, offsets {min(offsets):.2f}-{max(offsets):.2f} s: "
        f"false up 0 in {len(false_down)}/{scrapes} target scrapes, "
        f"without values in {len(without_values)}/{scrapes}"
    )
    assert min(offsets) >= OFFSET
    # one collection per pair (and one alone): the second scrape shared the first one's
    assert [w.proxy.requests for w in watched] == [PAIRS + 1] * len(watched)
    assert false_down == []
    assert without_values == []
